//! `--pcap FILE` read back by tshark: `ping` and `check` over UDP against SIPp, and over
//! TLS against Kamailio (messages after decryption, as UDP datagrams). And
//! `SSLKEYLOGFILE`: a capture of the TLS probe taken on loopback by dumpcap is decrypted
//! by tshark with the key log trunkprobe wrote, and shows the OPTIONS and its 200.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Kamailio, KamailioOpts, Sipp, TestPki};

/// `tshark -r FILE -Y sip` as `method|status|cseq-method` lines.
fn sip_lines(file: &Path, extra: &[&str]) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(extra)
        .args(["-Y", "sip", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.CSeq.method",
        ])
        .output()
        .expect("tshark (installed by .ci/install-peers)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn ping_and_check_captures_open_in_tshark_as_sip() {
    let sipp = Sipp::uas_udp("options_200.xml");
    let dir = tempfile::tempdir().unwrap();
    let ping = dir.path().join("ping.pcap");
    let out = Command::new(common::bin())
        .args(["ping", "-q", "-c", "3", "-i", "0"])
        .arg("--pcap")
        .arg(&ping)
        .arg(format!("sip:127.0.0.1:{}", sipp.addr().port()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 SIP messages written to"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("OPTIONS sip:"),
        "--pcap alone prints no trace"
    );
    let lines = sip_lines(&ping, &[]);
    assert_eq!(
        lines.iter().filter(|l| *l == "OPTIONS||OPTIONS").count(),
        3,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "|200|OPTIONS").count(),
        3,
        "{lines:?}"
    );

    let check = dir.path().join("check.pcap");
    let out = Command::new(common::bin())
        .args(["check", "--no-origination", "--format", "json", "--gateway"])
        .arg(format!("127.0.0.1:{}", sipp.addr().port()))
        .arg("--pcap")
        .arg(&check)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !report.contains("\"messages\""),
        "no trace in the report without --trace"
    );
    assert_eq!(
        sip_lines(&check, &[]),
        vec!["OPTIONS||OPTIONS", "|200|OPTIONS"]
    );
    // The addresses are the probe's: to SIPp's port, and back.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&check)
        .args(["-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap();
    let ports = String::from_utf8_lossy(&out.stdout);
    let p = sipp.addr().port().to_string();
    let rows: Vec<Vec<&str>> = ports.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{ports}");
    assert_eq!(rows[0][1], p, "{ports}");
    assert_eq!(rows[1][0], p, "{ports}");
    assert_eq!(rows[0][0], rows[1][1], "{ports}");

    // An unwritable capture is an error before anything is sent.
    let out = Command::new(common::bin())
        .args(["check", "--no-origination", "--gateway", "127.0.0.1:9"])
        .args(["--pcap", "/nonexistent/dir/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot write the capture /nonexistent/dir/x.pcap"));
}

/// dumpcap on loopback into `file` (TCP port `port` only: other tests run beside
/// this one), until killed; waits until it captures.
fn dumpcap(file: &Path, port: u16) -> Child {
    let child = Command::new("dumpcap")
        .args(["-q", "-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dumpcap (with tshark)");
    let start = Instant::now();
    while !file.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The file appears as the capture starts; give it a moment to be live.
    std::thread::sleep(Duration::from_millis(500));
    child
}

#[test]
fn tls_probes_are_captured_decrypted_and_sslkeylogfile_decrypts_a_real_capture() {
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid("gw.test.local")),
        ..Default::default()
    });
    let port = kam.tls_addr().port();
    let dir = tempfile::tempdir().unwrap();
    let (ours, wire, keys) = (
        dir.path().join("ours.pcap"),
        dir.path().join("wire.pcapng"),
        dir.path().join("keys.log"),
    );
    let mut cap = dumpcap(&wire, port);
    let out = Command::new(common::bin())
        .args(["check", "--no-origination", "--transport", "tls"])
        .args(["--gateway", &format!("gw.test.local:{port}")])
        .args(["--resolve", "gw.test.local:127.0.0.1"])
        .arg("--ca-file")
        .arg(pki.ca_path())
        .arg("--pcap")
        .arg(&ours)
        .env("SSLKEYLOGFILE", &keys)
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(cap.id() as i32, libc::SIGINT) };
    let _ = cap.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" tls ok"), "{text}\n{}", kam.logs());

    // Our capture: the SIP after decryption, dissected without any key.
    assert_eq!(
        sip_lines(&ours, &[]),
        vec!["OPTIONS||OPTIONS", "|200|OPTIONS"]
    );

    // The key log: NSS format, TLS 1.3 traffic secrets.
    let log = std::fs::read_to_string(&keys).expect("SSLKEYLOGFILE written");
    assert!(
        log.contains("CLIENT_TRAFFIC_SECRET_0 ") || log.contains("CLIENT_RANDOM "),
        "{log}"
    );

    // The real capture: encrypted on the wire, SIP once tshark has the keys.
    let decode = format!("tcp.port=={port},tls");
    let inner_hint = format!("tls.port=={port},sip");
    assert!(
        sip_lines(&wire, &["-d", &decode, "-d", &inner_hint]).is_empty(),
        "nothing readable without the keys: {:?}",
        sip_lines(&wire, &["-d", &decode, "-d", &inner_hint])
    );
    let keylog = format!("tls.keylog_file:{}", keys.display());
    // On 5061 tshark needs neither hint; on this test's port it is told both layers.
    let inner = format!("tls.port=={port},sip");
    let lines = sip_lines(&wire, &["-d", &decode, "-d", &inner, "-o", &keylog]);
    assert!(lines.contains(&"OPTIONS||OPTIONS".to_string()), "{lines:?}");
    assert!(lines.contains(&"|200|OPTIONS".to_string()), "{lines:?}");
}

#[test]
fn a_call_capture_holds_its_sip_dialog_and_rtp_both_ways() {
    let echo = common::sipp_call::SippCall::start(
        "invite_answer_echo.xml",
        common::SippTransport::Udp,
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.pcap");
    let out = Command::new(common::bin())
        .args([
            "call",
            "--to",
            "+14155550100",
            "--timeout",
            "2s",
            "--duration",
            "1s",
        ])
        .args(["--gateway", &echo.addr().to_string()])
        .arg("--pcap")
        .arg(&file)
        .env_remove("TRUNKPROBE_AUTH_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = sip_lines(&file, &[]);
    for want in [
        "INVITE||INVITE",
        "|200|INVITE",
        "ACK||ACK",
        "BYE||BYE",
        "|200|BYE",
    ] {
        assert!(lines.contains(&want.to_string()), "{want} in {lines:?}");
    }
    // RTP each way: tshark follows the SDP of the INVITE and its 200 to the media ports.
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-Y",
            "rtp",
            "-T",
            "fields",
            "-e",
            "udp.srcport",
            "-e",
            "rtp.p_type",
        ])
        .output()
        .unwrap();
    let rtp = String::from_utf8_lossy(&out.stdout);
    let media = echo.media_port().to_string();
    let from_carrier = rtp
        .lines()
        .filter(|l| l.starts_with(&format!("{media}\t")))
        .count();
    let to_carrier = rtp.lines().count() - from_carrier;
    assert!(
        to_carrier >= 40 && from_carrier >= 40,
        "{to_carrier} sent, {from_carrier} echoed:\n{rtp}"
    );
}
