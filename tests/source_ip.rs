//! `--source-ip`: every probe leaves from the address given, over UDP and TCP, and so does a
//! test call's SIP and RTP; checked on the wire by an nftables counter at the carrier, in two
//! network namespaces the test makes (the prober's side has two addresses). `-4`/`-6` keep
//! one address family. Needs root (`ip netns`, nftables).

mod common;

use std::process::Command;

use common::netns::{Netns, UAS_IP};
use common::sipp_call::SippCall;
use serde_json::Value;

const SECOND_IP: &str = "10.213.7.3";

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn every_probe_and_call_leaves_from_the_source_ip() {
    let net = Netns::new("src", 1500);
    common::netns::run(Command::new("ip").args([
        "-n",
        &net.client,
        "addr",
        "add",
        &format!("{SECOND_IP}/24"),
        "dev",
        "veth-cli",
    ]));
    let udp = SippCall::start_in_netns("options_200.xml", &net.uas, UAS_IP, false);
    let tcp = SippCall::start_in_netns_tcp("options_200.xml", &net.uas, UAS_IP);
    Netns::nft(
        &net.uas,
        &format!(
            "table ip t {{\n counter from_second {{}}\n counter from_other {{}}\n chain c {{\n  \
             type filter hook input priority 0; policy accept;\n  ip saddr {SECOND_IP} counter \
             name from_second\n  ip saddr != {SECOND_IP} ip saddr != 127.0.0.0/8 counter name \
             from_other\n }}\n}}\n"
        ),
    );
    for (transport, sipp) in [("udp", &udp), ("tcp", &tcp)] {
        let out = Netns::command(&net.client, &common::bin())
            .args([
                "check",
                "--no-origination",
                "--format",
                "json",
                "--timeout",
                "2s",
            ])
            .args([
                "--gateway",
                &sipp.addr().to_string(),
                "--transport",
                transport,
            ])
            .args(["--source-ip", SECOND_IP])
            .output()
            .unwrap();
        let r = json(&out);
        let t = &r["trunks"][0]["gateways"][0]["targets"][0];
        assert_eq!(t["outcome"], "ok", "{transport}: {t}");
        let local = t["local"].as_str().unwrap();
        assert!(
            local.starts_with(&format!("{SECOND_IP}:")),
            "{transport}: {local}"
        );
    }
    assert!(Netns::counter(&net.uas, "from_second") >= 2);
    assert_eq!(
        Netns::counter(&net.uas, "from_other"),
        0,
        "nothing left from the other address"
    );

    // A test call: SIP and RTP from the source address too.
    drop((udp, tcp));
    let carrier = SippCall::start_in_netns("invite_answer_echo.xml", &net.uas, UAS_IP, true);
    let out = Netns::command(&net.client, &common::bin())
        .args([
            "call",
            "--to",
            "+14155550100",
            "--format",
            "json",
            "--duration",
            "2s",
        ])
        .args([
            "--gateway",
            &carrier.addr().to_string(),
            "--source-ip",
            SECOND_IP,
        ])
        .output()
        .unwrap();
    let r = json(&out);
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
    let local = r["call"]["media"]["local"].as_str().unwrap();
    assert!(
        local.starts_with(&format!("{SECOND_IP}:")),
        "RTP from {local}"
    );
    assert!(
        Netns::counter(&net.uas, "from_second") >= 100,
        "SIP and RTP counted"
    );
    assert_eq!(Netns::counter(&net.uas, "from_other"), 0);
}

#[test]
fn an_address_family_filter_keeps_only_its_addresses() {
    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--format",
            "json",
            "--timeout",
            "1s",
            "-6",
        ])
        .args(["--gateway", "127.0.0.1:5099"])
        .output()
        .unwrap();
    let r = json(&out);
    let t = &r["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(
        t["outcome"], "dns_error",
        "-6 leaves no address for an IPv4 literal: {t}"
    );

    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--source-ip",
            "192.0.2.77",
            "--gateway",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address of this host"));
}
