//! Media and path checks end to end: the real binary against SIPp and Kamailio
//! answering OPTIONS with SDP (PCMU/PCMA, G.729 only, RTP/SAVP with a=crypto, and
//! the same as capability SDP on port 0), an ip-based trunk whose gateway is
//! outside its identifiers, and the origination URI check pointed at a loopback
//! Kamailio over UDP and TLS. Nothing leaves 127.0.0.1.

mod common;

use std::process::{Command, Output};

use common::kamailio::capability_sdp;
use common::{closed_udp_port, Kamailio, KamailioOpts, Sipp, TestPki, TrunkJson};
use serde_json::{json, Value};

/// `trunkprobe check --format json` on `trunks`; `args` must say how origination is handled.
fn check(trunks: &[Value], args: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunks.json");
    std::fs::write(&file, serde_json::to_vec(trunks).unwrap()).unwrap();
    assert!(
        args.iter()
            .any(|a| *a == "--no-origination" || *a == "--origination"),
        "a test must never probe sip.bolna.ai"
    );
    let out = Command::new(common::bin())
        .args(["check", "--format", "json", "--timeout", "2s", "--trunks"])
        .arg(&file)
        .args(args)
        .env_remove("BOLNA_API_KEY")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

fn findings<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no trunk {id}: {doc:#}"))["findings"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

fn finding<'a>(doc: &'a Value, id: &str, check: &str) -> &'a Value {
    findings(doc, id)
        .into_iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("{id}: no {check} in {doc:#}"))
}

fn checks(doc: &Value, id: &str) -> Vec<String> {
    findings(doc, id)
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sipp_sdp_codecs_pcmu_pcma_and_g729_only() {
    let g711 = Sipp::uas_udp("options_200_sdp.xml");
    let g729 = Sipp::uas_udp("options_200_sdp_g729.xml");
    let plain = Sipp::uas_udp("options_200.xml");
    let (out, doc) = check(
        &[
            TrunkJson::g711("g711", "127.0.0.1", g711.addr().port()).build(),
            TrunkJson::g711("g729", "127.0.0.1", g729.addr().port()).build(),
            TrunkJson::g711("nosdp", "127.0.0.1", plain.addr().port()).build(),
            // The trunk itself excludes G.711: the patch puts it back.
            TrunkJson::g711("trunk-g729", "127.0.0.1", g711.addr().port())
                .set("allow", json!("g729"))
                .build(),
        ],
        &["--no-origination"],
    );
    let media = |id: &str| -> Vec<String> {
        checks(&doc, id)
            .into_iter()
            .filter(|c| c.starts_with("media_") || c.starts_with("sdes_"))
            .collect()
    };
    assert!(media("g711").is_empty(), "{doc:#}\n{}", g711.logs());
    let f = finding(&doc, "g729", "media_codec_mismatch");
    assert_eq!(f["severity"], "error");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("only g729") && msg.contains("488"), "{msg}");
    assert!(msg.contains(&g729.addr().to_string()), "{msg}");
    assert!(f.get("patch").is_none(), "{f:#}");
    assert_eq!(media("nosdp"), vec!["media_not_advertised"]);
    let f = finding(&doc, "trunk-g729", "media_codec_mismatch");
    assert_eq!(f["patch"], json!({"allow": "ulaw,alaw", "disallow": "all"}));
    // Most severe first, media findings included.
    let sev: Vec<&str> = findings(&doc, "trunk-g729")
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    let mut sorted = sev.clone();
    sorted.sort_by_key(|s| match *s {
        "error" => 0,
        "warning" => 1,
        _ => 2,
    });
    assert_eq!(sev, sorted);
    // SIPp echoes the Via without received/rport: no NAT claim.
    assert!(doc["egress"]["behind_nat"].is_null(), "{:#}", doc["egress"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sipp_sdes_mismatches_over_tcp() {
    let plain = Sipp::uas_tcp("options_200_sdp.xml");
    let savp = Sipp::uas_tcp("options_200_sdp_savp.xml");
    let (out, doc) = check(
        &[
            TrunkJson::g711("sdes", "127.0.0.1", plain.addr().port())
                .transport("transport-tcp")
                .set("media_encryption", json!("sdes"))
                .build(),
            TrunkJson::g711("sdes-optimistic", "127.0.0.1", plain.addr().port())
                .transport("transport-tcp")
                .merge(&json!({"media_encryption": "sdes", "media_encryption_optimistic": true}))
                .build(),
            TrunkJson::g711("plain", "127.0.0.1", savp.addr().port())
                .transport("transport-tcp")
                .build(),
        ],
        &["--no-origination"],
    );
    let f = finding(&doc, "sdes", "sdes_carrier_plain_rtp");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("one-way audio"));
    assert_eq!(f["patch"], json!({"media_encryption_optimistic": true}));
    let f = finding(&doc, "sdes-optimistic", "sdes_carrier_plain_rtp_optimistic");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["patch"], json!({"media_encryption": "no"}));
    let f = finding(&doc, "plain", "sdes_carrier_srtp_only");
    assert_eq!(f["severity"], "error", "{doc:#}\n{}", savp.logs());
    assert_eq!(f["patch"]["media_encryption"], "sdes");
    assert_eq!(f["patch"]["transport"], "transport-tls");
    assert_eq!(f["patch"]["gateways"][0]["port"], 5061);
    assert!(!checks(&doc, "plain").contains(&"sdes_crypto_suite_unsupported".to_string()));
    assert_eq!(out.status.code(), Some(1));
}

/// The media check ids, as the report names them.
const MEDIA_CHECKS: [&str; 8] = [
    "media_not_advertised",
    "media_codec_mismatch",
    "media_carrier_alaw_only",
    "sdes_carrier_plain_rtp",
    "sdes_carrier_plain_rtp_optimistic",
    "sdes_carrier_srtp_only",
    "sdes_no_supported_suite",
    "sdes_crypto_suite_unsupported",
];

/// A trunk against a carrier: (trunk id, carrier's port, trunk fields, the
/// media findings it must get as (check, severity)).
type Case = (&'static str, u16, Value, Vec<(&'static str, &'static str)>);

/// Trunks against three carriers answering OPTIONS with capability SDP on port
/// 0 (plain RTP, SRTP only, G.729 only).
fn port_zero_cases(plain: u16, srtp: u16, g729: u16, g729_srtp_only: bool) -> Vec<Case> {
    let sdes = json!({"media_encryption": "sdes"});
    let g729_plain_trunk = if g729_srtp_only {
        vec![
            ("media_codec_mismatch", "error"),
            ("sdes_carrier_srtp_only", "error"),
        ]
    } else {
        vec![("media_codec_mismatch", "error")]
    };
    vec![
        ("plain-no", plain, json!({}), vec![]),
        (
            "plain-sdes",
            plain,
            sdes.clone(),
            vec![("sdes_carrier_plain_rtp", "error")],
        ),
        (
            "plain-sdes-optimistic",
            plain,
            json!({"media_encryption": "sdes", "media_encryption_optimistic": true}),
            vec![("sdes_carrier_plain_rtp_optimistic", "warning")],
        ),
        (
            "srtp-no",
            srtp,
            json!({}),
            vec![("sdes_carrier_srtp_only", "error")],
        ),
        ("srtp-sdes", srtp, sdes, vec![]),
        ("g729-no", g729, json!({}), g729_plain_trunk),
    ]
}

/// Runs `check` on [`port_zero_cases`] over `transport` and asserts every
/// trunk's media findings, by id and severity, nothing more.
fn assert_port_zero_matrix(
    transport: &str,
    (plain, srtp, g729): (u16, u16, u16),
    g729_srtp_only: bool,
    logs: &dyn Fn() -> String,
) {
    let cases = port_zero_cases(plain, srtp, g729, g729_srtp_only);
    let trunks: Vec<Value> = cases
        .iter()
        .map(|(id, port, extra, _)| {
            TrunkJson::g711(id, "127.0.0.1", *port)
                .transport(transport)
                .merge(extra)
                .build()
        })
        .collect();
    let (out, doc) = check(&trunks, &["--no-origination"]);
    for (id, _, _, want) in &cases {
        let mut got: Vec<(String, String)> = findings(&doc, id)
            .iter()
            .filter(|f| MEDIA_CHECKS.contains(&f["check"].as_str().unwrap()))
            .map(|f| {
                (
                    f["check"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(c, s)| (c.to_string(), s.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "trunk {id}: {doc:#}\n{}", logs());
    }
    // The G.729 finding names the carrier's reply it came from.
    let f = finding(&doc, "g729-no", "media_codec_mismatch");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("only g729"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{g729}")), "{msg}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sipp_port_zero_capability_sdp() {
    let plain = Sipp::uas_udp("options_200_sdp_port0_plain.xml");
    let srtp = Sipp::uas_udp("options_200_sdp_port0_savp.xml");
    let g729 = Sipp::uas_udp("options_200_sdp_port0_g729.xml");
    let ports = (plain.addr().port(), srtp.addr().port(), g729.addr().port());
    assert_port_zero_matrix("transport-udp", ports, false, &|| {
        [plain.logs(), srtp.logs(), g729.logs()].join("\n")
    });
}

#[test]
fn kamailio_port_zero_capability_sdp() {
    let plain = Kamailio::start(KamailioOpts::with_sdp(capability_sdp::PLAIN));
    let srtp = Kamailio::start(KamailioOpts::with_sdp(capability_sdp::SRTP_ONLY));
    let g729 = Kamailio::start(KamailioOpts::with_sdp(capability_sdp::G729_SRTP_ONLY));
    let ports = (
        plain.tcp_addr().port(),
        srtp.tcp_addr().port(),
        g729.tcp_addr().port(),
    );
    assert_port_zero_matrix("transport-tcp", ports, true, &|| {
        [plain.logs(), srtp.logs(), g729.logs()].join("\n")
    });
}

#[test]
fn kamailio_tls_sdes_alaw_only_egress_and_ip_identifiers() {
    let pki = TestPki::new();
    let host = "gw.test.local";
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid(host)),
        sdp_body: Some(
            "v=0\r\no=kam 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 20000 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
             a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj\r\n"
                .into(),
        ),
        ..Default::default()
    });
    let tls = TrunkJson::g711("tls", host, kam.tls_addr().port())
        .transport("transport-tls")
        .set("media_encryption", json!("sdes"))
        .build();
    // ip-based, but the identifiers do not cover the gateway's address.
    let outside = TrunkJson::g711("outside", host, kam.tls_addr().port())
        .transport("transport-tls")
        .ip_identifiers(&["10.0.0.0/8"])
        .set("media_encryption", json!("sdes"))
        .build();
    let pin = format!("{host}:127.0.0.1");
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let (out, doc) = check(
        &[tls, outside],
        &["--no-origination", "--resolve", &pin, "--ca-file", &ca],
    );
    let tls_checks = checks(&doc, "tls");
    assert!(
        tls_checks.contains(&"media_carrier_alaw_only".to_string()),
        "{doc:#}\n{}",
        kam.logs()
    );
    assert!(tls_checks.contains(&"sdes_crypto_suite_unsupported".to_string()));
    assert!(!tls_checks.iter().any(|c| c == "sdes_carrier_plain_rtp"));
    let f = finding(&doc, "outside", "gateway_outside_ip_identifiers");
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        f["patch"],
        json!({"ip_identifiers": [{"ip_address": "10.0.0.0/8"}, {"ip_address": "127.0.0.1/32"}]})
    );
    assert!(!checks(&doc, "tls").contains(&"gateway_outside_ip_identifiers".to_string()));
    // Kamailio fills received/rport: the egress section names what it saw.
    let e = &doc["egress"];
    assert_eq!(e["public_addresses"], json!(["127.0.0.1"]), "{e:#}");
    assert_eq!(e["behind_nat"], false);
    assert_eq!(e["reporting_targets"], 2);
    // UDP replies from elsewhere are seen because the socket is unconnected.
    assert!(
        e["different_source_reply"]
            .as_str()
            .unwrap()
            .starts_with("UDP probes share one unconnected socket, so an answer from another"),
        "{e:#}"
    );
    // Warnings only (the TLS port is not 5061 here): exit 0.
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
}

#[test]
fn origination_uri_against_kamailio_over_udp_and_tls() {
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid("sip.bolna.ai")),
        ..Default::default()
    });
    let gw = Sipp::uas_udp("options_200.xml");
    let trunks = [TrunkJson::g711("t", "127.0.0.1", gw.addr().port()).build()];
    let udp = format!("sip:sip.bolna.ai:{}", kam.udp_addr().port());
    let tls = format!("sip:sip.bolna.ai:{};transport=tls", kam.tls_addr().port());
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let base = [
        "--resolve",
        "sip.bolna.ai:127.0.0.1",
        "--origination",
        &udp,
        "--origination",
        &tls,
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--ca-file", ca.as_str()]);
    let (out, doc) = check(&trunks, &args);
    let o = doc["origination"].as_array().unwrap();
    assert_eq!(o.len(), 2, "{doc:#}");
    for (r, transport) in o.iter().zip(["udp", "tls"]) {
        assert_eq!(r["transport"], transport);
        assert_eq!(r["ok"], true, "{r:#}\n{}", kam.logs());
        assert_eq!(r["host"], "sip.bolna.ai");
        assert_eq!(r["dns"]["addresses"], json!(["127.0.0.1"]));
        // Pinned to loopback: not the guide's address, and the report says so.
        assert_eq!(r["resolves_to_guide_ip"], false);
        assert_eq!(r["guide_ip"], "13.200.45.61");
        assert_eq!(r["targets"][0]["outcome"], "ok");
        assert!(r["targets"][0]["carrier_sees"].is_null());
    }
    assert!(o[1]["targets"][0]["tls"]["cert"]["san"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "DNS:sip.bolna.ai"));
    assert_eq!(doc["summary"]["origination_ok"], 2);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");

    // Without the test CA the handshake fails, and a closed port is refused: the
    // report says what a carrier would see, and the run is unhealthy.
    let closed = format!("sip:sip.bolna.ai:{}", closed_udp_port());
    let (out, doc) = check(
        &trunks,
        &[
            base[0],
            base[1],
            "--origination",
            &tls,
            "--origination",
            &closed,
        ],
    );
    let o = doc["origination"].as_array().unwrap();
    let t = &o[0]["targets"][0];
    assert_eq!(t["outcome"], "tls_error", "{t:#}");
    assert!(t["carrier_sees"].as_str().unwrap().contains("handshake"));
    let t = &o[1]["targets"][0];
    assert_eq!(t["outcome"], "refused", "{t:#}");
    assert!(t["carrier_sees"].as_str().unwrap().contains("503"));
    assert_eq!(doc["summary"]["origination_failed"], 2);
    assert_eq!(out.status.code(), Some(1));

    // The text report has the section, with the carrier's view.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunks.json");
    std::fs::write(&file, serde_json::to_vec(&trunks).unwrap()).unwrap();
    let text = Command::new(common::bin())
        .args(["check", "--timeout", "2s", "--trunks"])
        .arg(&file)
        .args([base[0], base[1], "--origination", &closed])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("origination URI"), "{text}");
    assert!(text.contains("a carrier would see:"), "{text}");
    assert!(text.contains("not 13.200.45.61"), "{text}");
}

#[test]
fn bad_origination_uri_exits_2() {
    let out = Command::new(common::bin())
        .args([
            "check",
            "--origination",
            "http://sip.bolna.ai",
            "--gateway",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a SIP URI"), "{err}");
    let out = Command::new(common::bin())
        .args([
            "check",
            "--origination",
            "sip:a",
            "--no-origination",
            "--gateway",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
