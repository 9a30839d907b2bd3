//! One-way audio made by a real network: `trunkprobe call` in one network namespace,
//! a SIPp carrier that echoes RTP in another, and an nftables rule dropping RTP in one
//! direction only. The carrier's RTP never reaching the prober is `no_inbound_audio`;
//! ours never reaching the carrier (so nothing comes back either) is the same verdict
//! from the prober's side, and the rule's counter proves which packets were dropped.
//! The call still ends with BYE at the carrier. Needs root (`ip netns`, nftables).

mod common;

use std::time::Duration;

use common::netns::{Netns, CLIENT_IP, UAS_IP};
use common::sipp_call::{SippCall, NETNS_MEDIA_PORT};
use serde_json::Value;

fn call(net: &Netns, gateway: &str) -> Value {
    let out = Netns::command(&net.client, &common::bin())
        .args(["call", "--to", "+14155550100", "--gateway", gateway])
        .args(["--duration", "2s", "--timeout", "2s", "--format", "json"])
        .env_remove("TRUNKPROBE_AUTH_PASSWORD")
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

/// A `table ip t` with one counted drop rule in `chain` (a filter hook).
fn drop_rule(hook: &str, matching: &str) -> String {
    format!(
        "table ip t {{\n counter dropped {{}}\n chain c {{\n  type filter hook {hook} priority 0; \
         policy accept;\n  {matching} counter name dropped drop\n }}\n}}\n"
    )
}

#[test]
fn the_carriers_rtp_dropped_on_the_way_in_is_no_inbound_audio() {
    let net = Netns::new("call", 1500);
    let carrier = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    // At the prober: drop what comes from the carrier's media port; SIP passes.
    Netns::nft(
        &net.client,
        &drop_rule(
            "input",
            &format!("ip saddr {UAS_IP} udp sport {NETNS_MEDIA_PORT}"),
        ),
    );
    let r = call(&net, &carrier.addr().to_string());
    assert_eq!(r["verdict"], "no_inbound_audio", "{r}");
    let m = &r["call"]["media"];
    assert_eq!(m["inbound"]["packets"], 0, "{m}");
    assert!(m["outbound"]["packets"].as_u64().unwrap() >= 90, "{m}");
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
    let dropped = Netns::counter(&net.client, "dropped");
    assert!(dropped >= 90, "the echo was sent and dropped: {dropped}");
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));
}

#[test]
fn our_rtp_dropped_on_the_way_out_never_comes_back() {
    let net = Netns::new("call", 1500);
    let carrier = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    // At the prober: drop our RTP to the carrier's media port; SIP passes.
    Netns::nft(
        &net.client,
        &drop_rule(
            "output",
            &format!("ip saddr {CLIENT_IP} ip daddr {UAS_IP} udp dport {NETNS_MEDIA_PORT}"),
        ),
    );
    let r = call(&net, &carrier.addr().to_string());
    assert_eq!(r["verdict"], "no_inbound_audio", "{r}");
    let m = &r["call"]["media"];
    assert_eq!(m["echoed"], 0, "{m}");
    assert!(Netns::counter(&net.client, "dropped") >= 90);
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));

    // Without the rule the same carrier is two-way.
    let net = Netns::new("call", 1500);
    let carrier = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    let r = call(&net, &carrier.addr().to_string());
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
}

#[test]
fn rtp_from_another_port_than_the_sdp_names_is_a_nat_finding() {
    let net = Netns::new("call", 1500);
    let carrier = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    // A NAT between carrier and prober: the carrier's RTP arrives from port 17000 while
    // its SDP names 16000 (rewritten statelessly as it enters the prober's namespace).
    Netns::nft(
        &net.client,
        &format!(
            "table ip t {{\n counter rewritten {{}}\n chain c {{\n  type filter hook prerouting \
             priority -300; policy accept;\n  ip saddr {UAS_IP} udp sport {NETNS_MEDIA_PORT} \
             counter name rewritten udp sport set 17000\n }}\n}}\n"
        ),
    );
    let r = call(&net, &carrier.addr().to_string());
    assert_eq!(r["verdict"], "rtp_from_unexpected_address", "{r}");
    assert_eq!(
        r["call"]["media"]["rtp_from"][0],
        format!("{UAS_IP}:17000"),
        "{r}"
    );
    assert_eq!(
        r["patch"],
        serde_json::json!({"rtp_symmetric": true, "force_rport": true})
    );
    assert!(Netns::counter(&net.client, "rewritten") >= 90);
}

/// The setup guide's fragmentation symptom, end to end: OPTIONS fit in one packet and are
/// answered, the INVITE (with its SDP, over a 576-byte link) is fragmented and the fragments
/// are dropped before reassembly at the carrier, so only the INVITE times out; the same call
/// over TCP is answered, which confirms it. Takes Timer B (32 s).
#[test]
fn a_fragmented_udp_invite_times_out_and_tcp_confirms_it() {
    let net = Netns::new("frag", 576);
    let udp = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    let tcp = SippCall::start_in_netns_tcp("invite_answer_echo.xml", &net.uas, UAS_IP);
    Netns::nft(
        &net.uas,
        "table ip t {\n counter fragments {}\n chain c {\n  type filter hook prerouting priority \
         -450; policy accept;\n  ip frag-off & 0x3fff != 0 counter name fragments drop\n }\n}\n",
    );
    let out = Netns::command(&net.client, &common::bin())
        .args([
            "call",
            "--to",
            "+14155550100",
            "--gateway",
            &udp.addr().to_string(),
        ])
        .args(["--duration", "1s", "--timeout", "2s", "--format", "json"])
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["verdict"], "timeout", "{r}");
    assert_eq!(
        r["patch"],
        serde_json::json!({"transport": "transport-tcp"}),
        "{r}"
    );
    assert!(
        r["detail"].as_str().unwrap().contains("answered there"),
        "{r}"
    );
    assert!(r["cause"].as_str().unwrap().contains("fragmented"), "{r}");
    assert_eq!(r["options"], "ok", "the OPTIONS fit and were answered: {r}");
    assert_eq!(r["tcp_retry"]["signalling"]["kind"], "answered", "{r}");
    assert!(Netns::counter(&net.uas, "fragments") > 0);
    assert!(
        !udp.saw_invite(),
        "no whole INVITE reached the carrier over UDP"
    );
    tcp.wait_for("the BYE over TCP", |c| c.saw_bye(), Duration::from_secs(3));
}
