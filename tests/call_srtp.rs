//! `trunkprobe call` with SDES against baresip (its `srtp` module) as the carrier, over TLS:
//! SRTP and SRTCP both ways with the keys of the offer and the answer, baresip's RTCP
//! reporting on our stream, and the `srtp_mismatch` of a plain offer to a carrier that
//! requires SRTP. In two namespaces, an nftables rule dropping our SRTP toward the carrier
//! while its SRTCP passes makes `outbound_not_received`: the carrier's reports say it hears
//! nothing from us.

mod common;

use std::process::Command;

use common::baresip::{Baresip, BaresipOpts, TLS_NAME};
use common::netns::{Netns, UAS_IP};
use common::TrunkJson;
use serde_json::Value;

/// A trunk file for the carrier: TLS, `media_encryption` as given, its name pinned.
fn trunk_file(
    dir: &std::path::Path,
    port: u16,
    sdes: bool,
    optimistic: bool,
) -> std::path::PathBuf {
    let t = TrunkJson::new("t-srtp")
        .set("media_encryption_optimistic", serde_json::json!(optimistic))
        .transport("transport-tls")
        .ranked_gateway(TLS_NAME, port, 1)
        .g711_only()
        .set(
            "media_encryption",
            serde_json::json!(if sdes { "sdes" } else { "no" }),
        )
        .build();
    let path = dir.join("trunk.json");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    path
}

fn call(carrier: &Baresip, ip: &str, sdes: bool, duration: &str, netns: Option<&str>) -> Value {
    call_with(carrier, ip, sdes, false, duration, netns)
}

fn call_with(
    carrier: &Baresip,
    ip: &str,
    sdes: bool,
    optimistic: bool,
    duration: &str,
    netns: Option<&str>,
) -> Value {
    call_to(
        carrier,
        Baresip::USER,
        ip,
        sdes,
        optimistic,
        duration,
        netns,
    )
}

fn call_to(
    carrier: &Baresip,
    to: &str,
    ip: &str,
    sdes: bool,
    optimistic: bool,
    duration: &str,
    netns: Option<&str>,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = trunk_file(dir.path(), carrier.tls_addr().port(), sdes, optimistic);
    let mut cmd = match netns {
        Some(ns) => Netns::command(ns, &common::bin()),
        None => Command::new(common::bin()),
    };
    let out = cmd
        .args(["call", "--to", to, "--format", "json", "--timeout", "3s"])
        .args(["--duration", duration, "--max-duration", "40s"])
        .arg("--trunks")
        .arg(&file)
        .arg("--resolve")
        .arg(format!("{TLS_NAME}:{ip}"))
        .arg("--ca-file")
        .arg(carrier.ca_file())
        .env_remove("TRUNKPROBE_AUTH_PASSWORD")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            carrier.logs()
        )
    })
}

#[test]
fn sdes_over_tls_is_srtp_both_ways_and_the_carrier_reports_on_us() {
    let carrier = Baresip::start(BaresipOpts::default());
    let r = call(&carrier, "127.0.0.1", true, "7s", None);
    assert_eq!(r["verdict"], "two_way_audio", "{r}\n{}", carrier.logs());
    let m = &r["call"]["media"];
    assert_eq!(m["srtp"], true, "{m}");
    assert_eq!(m["srtp_auth_failures"], 0, "{m}");
    assert_eq!(r["call"]["answer"]["srtp"], true);
    assert!(m["inbound"]["packets"].as_u64().unwrap() >= 250, "{m}");
    assert!(
        m["inbound"]["audio_ratio"].as_f64().unwrap() > 0.9,
        "a sine, not silence: {m}"
    );
    // baresip's SRTCP, decrypted, reports on our SSRC.
    assert!(m["rtcp_received"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["reported_received"].as_u64().unwrap() > 100, "{m}");
    assert_eq!(m["outbound"]["lost"], 0, "{m}");
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
    assert!(
        carrier.logs().contains("SRTP is Enabled"),
        "{}",
        carrier.logs()
    );
}

#[test]
fn a_plain_offer_to_a_carrier_that_requires_srtp_gets_its_488_explained() {
    let carrier = Baresip::start(BaresipOpts::default());
    let r = call(&carrier, "127.0.0.1", false, "2s", None);
    // A 488 to a plain offer cannot tell codecs from SRTP apart: the verdict is the
    // issue's codec_mismatch, and the cause names both.
    assert_eq!(r["verdict"], "codec_mismatch", "{r}\n{}", carrier.logs());
    assert_eq!(r["call"]["signalling"]["code"], 488);
    assert!(
        r["cause"].as_str().unwrap().contains("requires SRTP"),
        "{r}"
    );
    assert!(r["fix"].as_str().unwrap().contains("sdes"), "{r}");
}

#[test]
fn an_sdes_offer_to_a_clear_rtp_carrier_is_srtp_mismatch() {
    let carrier = Baresip::start(BaresipOpts {
        mediaenc: "",
        ..BaresipOpts::default()
    });
    let r = call(&carrier, "127.0.0.1", true, "2s", None);
    assert_eq!(r["verdict"], "srtp_mismatch", "{r}\n{}", carrier.logs());
    assert_eq!(
        r["patch"],
        serde_json::json!({"media_encryption_optimistic": true}),
        "{r}"
    );
}

#[test]
fn optimistic_sdes_falls_back_to_clear_rtp_with_a_carrier_without_srtp() {
    let carrier = Baresip::start(BaresipOpts {
        mediaenc: "",
        ..BaresipOpts::default()
    });
    let r = call_with(&carrier, "127.0.0.1", true, true, "6s", None);
    assert_eq!(r["verdict"], "two_way_audio", "{r}\n{}", carrier.logs());
    assert_eq!(r["call"]["offered_srtp"], true);
    assert_eq!(r["call"]["media"]["srtp"], false, "{r}");
}

#[test]
fn a_number_the_carrier_does_not_know_is_rejected_with_its_404() {
    let carrier = Baresip::start(BaresipOpts::default());
    let r = call_to(
        &carrier,
        "+14155550199",
        "127.0.0.1",
        true,
        false,
        "2s",
        None,
    );
    assert_eq!(r["verdict"], "rejected", "{r}");
    assert_eq!(r["call"]["signalling"]["code"], 404);
    assert!(r["cause"]
        .as_str()
        .unwrap()
        .contains("does not know the called number"));
}

#[test]
fn our_srtp_dropped_toward_the_carrier_is_outbound_not_received() {
    let net = Netns::new("srtp", 1500);
    let rtp = 26_100;
    let carrier = Baresip::start(BaresipOpts {
        netns: Some((net.uas.clone(), UAS_IP.into())),
        rtp_port: Some(rtp),
        ..BaresipOpts::default()
    });
    // Our SRTP to its RTP port is dropped; our SRTCP to the port above passes, and so
    // does everything it sends.
    Netns::nft(
        &net.client,
        &format!(
            "table ip t {{\n counter dropped {{}}\n chain c {{\n  type filter hook output \
             priority 0; policy accept;\n  ip daddr {UAS_IP} udp dport {rtp} counter name \
             dropped drop\n }}\n}}\n"
        ),
    );
    let r = call(&carrier, UAS_IP, true, "12s", Some(&net.client));
    assert_eq!(
        r["verdict"],
        "outbound_not_received",
        "{r}\n{}",
        carrier.logs()
    );
    let m = &r["call"]["media"];
    assert!(
        m["inbound"]["packets"].as_u64().unwrap() > 300,
        "its audio arrives: {m}"
    );
    assert!(
        m["report_without_our_stream"] == true || m["reported_received"] == 0,
        "{m}"
    );
    assert!(Netns::counter(&net.client, "dropped") > 300);
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
}
