//! `--trace` on `check` and `ping` against SIPp and Kamailio: the call-flow
//! ladder and every message whole, with time, direction, transport and both
//! addresses; in JSON a `messages` array per target. Credentials are traced in
//! `tests/check_credentials.rs`, calls in `tests/call_carriers.rs`.

mod common;

use std::process::Command;

use common::kamailio::{Kamailio, KamailioOpts};
use common::Sipp;
use serde_json::Value;

#[test]
fn ping_trace_shows_the_flow_then_each_message_whole() {
    let sipp = Sipp::uas_udp("options_200.xml");
    let uri = format!("sip:127.0.0.1:{}", sipp.addr().port());
    let out = Command::new(common::bin())
        .args(["ping", "-c", "2", "-i", "0", "--trace", &uri])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", sipp.logs());
    let peer = sipp.addr().to_string();
    assert_eq!(
        text.matches("──────────────────▶  OPTIONS sip:127.0.0.1:")
            .count(),
        2,
        "one ladder per request: {text}"
    );
    assert_eq!(
        text.matches("◀──────────────────  SIP/2.0 200 OK").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("sent to {peer} (udp) from 127.0.0.1:"))
            .count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches(&format!("received from {peer} (udp) at 127.0.0.1:"))
            .count(),
        2,
        "{text}"
    );
    // Whole messages: SIPp's headers as it sent them.
    assert!(text.contains("Server: sipp-uas"), "{text}");
    assert!(text.contains("Max-Forwards: 70"), "{text}");
    assert!(!text.contains('\r'), "line ends shown as newlines only");
}

fn check_json(gateway: &str, extra: &[&str]) -> Value {
    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--format",
            "json",
            "--gateway",
            gateway,
        ])
        .args(extra)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn check_trace_over_tcp_gives_each_target_its_messages_in_json() {
    let k = Kamailio::start(KamailioOpts::default());
    let gw = format!("127.0.0.1:{}", k.tcp_addr().port());
    let r = check_json(&gw, &["--transport", "tcp", "--trace"]);
    let t = &r["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(t["outcome"], "ok", "{t}\n{}", k.logs());
    let m = t["messages"].as_array().unwrap_or_else(|| panic!("{t}"));
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[0]["sent"], true);
    assert_eq!(m[0]["transport"], "tcp");
    assert_eq!(m[0]["remote"], k.tcp_addr().to_string());
    assert_eq!(m[0]["local"], t["local"]);
    assert!(m[0]["line"]
        .as_str()
        .unwrap()
        .starts_with("OPTIONS sip:127.0.0.1:"));
    assert!(m[0]["message"]
        .as_str()
        .unwrap()
        .contains("Via: SIP/2.0/TCP "));
    assert_eq!(m[1]["sent"], false);
    assert_eq!(m[1]["line"], "SIP/2.0 200 OK");
    assert!(m[1]["at_ms"].as_f64().unwrap() >= m[0]["at_ms"].as_f64().unwrap());
    assert!(m[1]["message"].as_str().unwrap().contains("CSeq: "));

    // Without --trace, no messages.
    let r = check_json(&gw, &["--transport", "tcp"]);
    assert!(r["trunks"][0]["gateways"][0]["targets"][0]
        .get("messages")
        .is_none());
}

#[test]
fn check_trace_of_a_silent_gateway_shows_every_retransmission() {
    let sipp = Sipp::uas_udp("options_silent.xml");
    let gw = format!("127.0.0.1:{}", sipp.addr().port());
    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--timeout",
            "2s",
            "--trace",
            "--gateway",
            &gw,
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // Timer E from T1: sends at 0, 500, 1500 ms before the 2 s deadline.
    assert_eq!(
        text.matches("──────────────────▶  OPTIONS sip:").count(),
        3,
        "{text}"
    );
    assert!(!text.contains("◀──"), "{text}");
}
