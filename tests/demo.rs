//! `trunkprobe demo` runs offline: its check report and its three test calls against the
//! built-in media carriers (echo, silent, SDES over TLS) give the verdicts it promises.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_shows_a_two_way_a_one_way_and_an_srtp_call() {
    let out = Command::new(common::bin())
        .args(["demo", "--format", "json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(r["check"]["summary"]["trunks"], 4, "{r}");
    let verdicts: Vec<&str> = r["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["two_way_audio", "no_inbound_audio", "two_way_audio"]
    );
    let srtp = &r["calls"][2]["call"];
    assert_eq!(srtp["transport"], "tls");
    assert_eq!(srtp["offered_srtp"], true);
    assert_eq!(srtp["media"]["srtp"], true, "{srtp}");
    assert!(srtp["media"]["echoed"].as_u64().unwrap() > 50, "{srtp}");
    for c in r["calls"].as_array().unwrap() {
        assert_eq!(
            c["call"]["ended_by"]["bye"]["code"], 200,
            "every call ends: {c}"
        );
    }

    let text = Command::new(common::bin())
        .args(["demo"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("no_inbound_audio") && text.contains("SRTP (SDES) both ways"),
        "{text}"
    );
}
