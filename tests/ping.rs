//! `trunkprobe ping` against SIPp on loopback: every reply matched and counted,
//! loss counted against a closed port, and the exit codes.

mod common;

use std::process::Command;

use common::{closed_udp_port, Sipp};

#[test]
fn pings_sipp_over_udp_and_tcp() {
    for sipp in [
        Sipp::uas_udp("options_200.xml"),
        Sipp::uas_tcp("options_200.xml"),
    ] {
        let transport = match sipp.transport() {
            common::SippTransport::Tcp => "tcp",
            common::SippTransport::Udp => "udp",
        };
        let uri = format!("sip:127.0.0.1:{};transport={transport}", sipp.addr().port());
        let out = Command::new(common::bin())
            .args(["ping", "-c", "20", "-i", "0", "--concurrency", "4", &uri])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}\n{}", sipp.logs());
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("200 OK from"))
                .count(),
            20,
            "{text}"
        );
        assert!(
            text.contains("20 requests sent, 20 answered (20 ok), 0 lost"),
            "{text}"
        );
        assert!(text.contains("rtt min/avg/max/mdev = "), "{text}");
    }
}

#[test]
fn quiet_ping_of_a_closed_port_reports_loss_and_exits_1() {
    let uri = format!("sip:127.0.0.1:{}", closed_udp_port());
    let out = Command::new(common::bin())
        .args([
            "ping",
            "-q",
            "-c",
            "3",
            "-i",
            "0.05",
            "--timeout",
            "1s",
            &uri,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("no answer: seq="),
        "quiet prints only the summary: {text}"
    );
    assert!(
        text.contains("3 requests sent, 0 answered (0 ok), 3 lost (100.0% loss)"),
        "{text}"
    );
    assert!(text.contains("refused×3"), "{text}");
}

#[test]
fn a_bad_uri_exits_2() {
    let out = Command::new(common::bin())
        .args(["ping", "sip:alice@example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a SIP URI"));
}
