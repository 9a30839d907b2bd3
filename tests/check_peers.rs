//! `trunkprobe check` end to end: the real binary against real peers on
//! loopback (SIPp, Kamailio over UDP/TCP/TLS, dnsmasq), plus closed ports and a
//! silent gateway. Every peer is started and torn down by the test.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Output};

use common::{
    closed_tcp_port, closed_udp_port, silent_udp, DnsRecord, Dnsmasq, Kamailio, KamailioOpts, Sipp,
    TestPki, TrunkJson,
};
use serde_json::{json, Value};

const GW_NAME: &str = "gw.test.local";

/// Runs `trunkprobe check --format json` on `trunks` with extra args.
fn check(trunks: &[Value], args: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunks.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&Value::Array(trunks.to_vec())).unwrap(),
    )
    .unwrap();
    let out = run(&file, args);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

fn run(file: &Path, args: &[&str]) -> Output {
    Command::new(common::bin())
        // Never probe sip.bolna.ai from a test.
        .args([
            "check",
            "--no-origination",
            "--format",
            "json",
            "--timeout",
            "2s",
        ])
        .arg("--trunks")
        .arg(file)
        .args(args)
        .env_remove("BOLNA_API_KEY")
        .output()
        .unwrap()
}

/// All targets of the trunk with `id`.
fn targets<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    let trunk = doc["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no trunk {id} in {doc:#}"));
    trunk["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["targets"].as_array().unwrap().iter())
        .collect()
}

fn only_target<'a>(doc: &'a Value, id: &str) -> &'a Value {
    let t = targets(doc, id);
    assert_eq!(t.len(), 1, "{id}: {t:#?}");
    t[0]
}

#[test]
fn sipp_answers_over_udp_and_tcp() {
    let udp = Sipp::uas_udp("options_200.xml");
    let tcp = Sipp::uas_tcp("options_200.xml");
    let (out, doc) = check(
        &[
            TrunkJson::g711("udp", "127.0.0.1", udp.addr().port())
                .qualify(60)
                .build(),
            TrunkJson::g711("tcp", "127.0.0.1", tcp.addr().port())
                .transport("TCP")
                .qualify(60)
                .build(),
        ],
        &[],
    );
    for id in ["udp", "tcp"] {
        let t = only_target(&doc, id);
        assert_eq!(t["outcome"], "ok", "{id}: {t:#}\nsipp: {}", udp.logs());
        assert_eq!(t["status_code"], 200);
        assert_eq!(t["retransmissions"], 0);
        assert!(t["rtt_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(only_target(&doc, "tcp")["transport"], "tcp");
    assert!(only_target(&doc, "tcp")["connect_ms"].as_f64().is_some());
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["targets_ok"], 2);
}

#[test]
fn sipp_403_is_a_sip_error_with_the_acl_advice() {
    let gw = Sipp::uas_udp("options_403.xml");
    let (out, doc) = check(
        &[TrunkJson::g711("t", "127.0.0.1", gw.addr().port())
            .qualify(60)
            .build()],
        &[],
    );
    let t = only_target(&doc, "t");
    assert_eq!(t["outcome"], "sip_error", "{t:#}");
    assert_eq!(t["status_code"], 403);
    assert!(
        t["cause"].as_str().unwrap().contains("13.200.45.61"),
        "{t:#}"
    );
    assert!(t["fix"].as_str().unwrap().contains("Whitelist"), "{t:#}");
    assert_eq!(out.status.code(), Some(1));

    // 403 can be declared healthy for carriers that always answer it.
    let (out, doc) = check(
        &[TrunkJson::g711("t", "127.0.0.1", gw.addr().port())
            .qualify(60)
            .build()],
        &["--healthy-codes", "2xx,403"],
    );
    assert_eq!(only_target(&doc, "t")["outcome"], "ok");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn kamailio_over_udp_tcp_and_tls_with_a_test_ca() {
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid(GW_NAME)),
        ..Default::default()
    });
    let dns = Dnsmasq::start(&[DnsRecord::host(GW_NAME, &["127.0.0.1".parse().unwrap()])]);
    let dns_addr = dns.addr().to_string();
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let (out, doc) = check(
        &[
            TrunkJson::g711("udp", "127.0.0.1", kam.udp_addr().port())
                .qualify(60)
                .build(),
            TrunkJson::g711("tcp", "127.0.0.1", kam.tcp_addr().port())
                .transport("transport-tcp")
                .qualify(60)
                .build(),
            TrunkJson::g711("tls", GW_NAME, kam.tls_addr().port())
                .transport("transport-tls")
                .qualify(60)
                .build(),
        ],
        &["--dns-server", &dns_addr, "--ca-file", &ca],
    );
    for id in ["udp", "tcp", "tls"] {
        let t = only_target(&doc, id);
        assert_eq!(t["outcome"], "ok", "{id}: {t:#}\n{}", kam.logs());
        assert_eq!(t["status_code"], 200);
        // Kamailio fills in where it saw us (RFC 3581).
        assert_eq!(t["received"], "127.0.0.1", "{t:#}");
        assert_eq!(
            t["rport"],
            t["local"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        );
    }
    let tls = only_target(&doc, "tls");
    let cert = &tls["tls"]["cert"];
    assert!(
        cert["san"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "DNS:gw.test.local"),
        "{tls:#}"
    );
    assert!(cert["not_after"].as_i64().unwrap() > 0);
    assert!(tls["tls"]["version"]
        .as_str()
        .unwrap()
        .starts_with("TLSv1_"));
    // The TLS gateway is not on 5061 here: a warning, which does not fail the run.
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
}

#[test]
fn tls_failures_say_why() {
    let pki = TestPki::new();
    let wrong = Kamailio::start(KamailioOpts {
        tls: Some(pki.wrong_name()),
        ..Default::default()
    });
    let expired = Kamailio::start(KamailioOpts {
        tls: Some(pki.expired(GW_NAME)),
        ..Default::default()
    });
    let good = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid(GW_NAME)),
        ..Default::default()
    });
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let pin = format!("{GW_NAME}:127.0.0.1");
    let trunks = [
        TrunkJson::g711("wrong", GW_NAME, wrong.tls_addr().port())
            .transport("transport-tls")
            .qualify(60)
            .build(),
        TrunkJson::g711("expired", GW_NAME, expired.tls_addr().port())
            .transport("transport-tls")
            .qualify(60)
            .build(),
        TrunkJson::g711("good", GW_NAME, good.tls_addr().port())
            .transport("transport-tls")
            .qualify(60)
            .build(),
    ];
    let (out, doc) = check(&trunks, &["--resolve", &pin, "--ca-file", &ca]);
    let kind = |id: &str| only_target(&doc, id)["failure"]["kind"].clone();
    assert_eq!(only_target(&doc, "wrong")["outcome"], "tls_error");
    assert_eq!(kind("wrong"), "name_mismatch", "{doc:#}");
    assert_eq!(only_target(&doc, "expired")["outcome"], "tls_error");
    assert_eq!(kind("expired"), "expired", "{doc:#}");
    // The expired leaf is still described.
    let not_after = only_target(&doc, "expired")["tls"]["cert"]["not_after"]
        .as_i64()
        .unwrap();
    assert!(not_after < 1_700_000_000, "{not_after}");
    assert_eq!(only_target(&doc, "good")["outcome"], "ok", "{doc:#}");
    assert_eq!(out.status.code(), Some(1));

    // Without the test CA, the same good server has an unknown issuer.
    let (_, doc) = check(&trunks[2..], &["--resolve", &pin]);
    let good = only_target(&doc, "good");
    assert_eq!(good["failure"]["kind"], "unknown_issuer", "{doc:#}");
    assert!(good["fix"].as_str().unwrap().contains("--ca-file"));
}

#[test]
fn dnsmasq_a_aaaa_srv_naptr_and_nxdomain() {
    let gw = Sipp::uas_udp("options_200.xml");
    let lo4: IpAddr = "127.0.0.1".parse().unwrap();
    let lo6: IpAddr = "::1".parse().unwrap();
    let dns = Dnsmasq::start(&[
        DnsRecord::host("sip.test.local", &[lo4, lo6]),
        DnsRecord::srv(
            "_sip._udp.sip.test.local",
            "sip.test.local",
            gw.addr().port(),
            10,
            60,
        ),
        DnsRecord::naptr_s(
            "sip.test.local",
            10,
            10,
            "SIP+D2U",
            "_sip._udp.sip.test.local",
        ),
    ]);
    let dns_addr = dns.addr().to_string();
    let (out, doc) = check(
        &[
            TrunkJson::g711("dual", "sip.test.local", gw.addr().port())
                .qualify(60)
                .build(),
            TrunkJson::g711("missing", "missing.test.local", 5060)
                .qualify(60)
                .build(),
        ],
        &["--dns-server", &dns_addr],
    );
    let dual = targets(&doc, "dual");
    assert_eq!(dual.len(), 2, "every address is its own target: {doc:#}");
    assert_eq!(dual[0]["ip"], "127.0.0.1");
    assert_eq!(dual[0]["outcome"], "ok", "{doc:#}");
    assert_eq!(dual[1]["ip"], "::1");
    // SIPp listens on 127.0.0.1 only, so ::1 answers with ICMP port unreachable.
    assert_eq!(dual[1]["outcome"], "refused", "{doc:#}");
    let gw_dns = &doc["trunks"][0]["gateways"][0]["dns"];
    assert_eq!(gw_dns["srv"][0]["port"], gw.addr().port());
    assert_eq!(gw_dns["srv"][0]["target"], "sip.test.local");
    assert_eq!(gw_dns["naptr"][0]["service"], "SIP+D2U");

    let missing = only_target(&doc, "missing");
    assert_eq!(missing["outcome"], "dns_error");
    assert!(missing["ip"].is_null());
    assert!(
        missing["detail"].as_str().unwrap().contains("NXDOMAIN"),
        "{missing:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn closed_ports_are_refused_and_silence_times_out() {
    let silent = silent_udp();
    let (out, doc) = check(
        &[
            TrunkJson::g711("closed-udp", "127.0.0.1", closed_udp_port())
                .qualify(60)
                .build(),
            TrunkJson::g711("closed-tcp", "127.0.0.1", closed_tcp_port())
                .transport("transport-tcp")
                .qualify(60)
                .build(),
            TrunkJson::g711("silent", "127.0.0.1", silent.addr().port())
                .qualify(60)
                .build(),
        ],
        &[],
    );
    let udp = only_target(&doc, "closed-udp");
    assert_eq!(udp["outcome"], "refused", "{udp:#}");
    assert!(udp["detail"]
        .as_str()
        .unwrap()
        .contains("ICMP port unreachable"));
    let tcp = only_target(&doc, "closed-tcp");
    assert_eq!(tcp["outcome"], "refused", "{tcp:#}");
    assert!(tcp["detail"].as_str().unwrap().contains("RST"));
    let t = only_target(&doc, "silent");
    assert_eq!(t["outcome"], "timeout", "{t:#}");
    // Sent at 0, 0.5 and 1.5 s within the 2 s deadline: two retransmissions (Timer E).
    assert_eq!(t["retransmissions"], 2, "{t:#}");
    assert_eq!(silent.received(), 3);
    assert!(t["cause"].as_str().unwrap().contains("13.200.45.61"));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn inactive_trunks_are_listed_but_not_probed() {
    let silent = silent_udp();
    let t = TrunkJson::g711("off", "127.0.0.1", silent.addr().port())
        .qualify(60)
        .set("is_active", json!(false))
        .build();
    let (out, doc) = check(&[t], &[]);
    assert_eq!(doc["trunks"][0]["status"], "skipped_inactive");
    assert!(targets(&doc, "off").is_empty());
    assert_eq!(silent.received(), 0);
    assert_eq!(doc["summary"]["trunks_skipped"], 1);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn flags_describe_a_trunk_not_created_yet() {
    let gw = Sipp::uas_tcp("options_200.xml");
    let gateway = SocketAddr::new("127.0.0.1".parse().unwrap(), gw.addr().port()).to_string();
    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--format",
            "json",
            "--timeout",
            "2s",
            "--gateway",
            &gateway,
        ])
        .args([
            "--transport",
            "tcp",
            "--allow",
            "alaw",
            "--media-encryption",
            "sdes",
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let trunk = &doc["trunks"][0];
    let t = &trunk["gateways"][0]["targets"][0];
    assert_eq!(t["outcome"], "ok", "{doc:#}");
    let checks: Vec<&str> = trunk["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"sdes_requires_tls"), "{checks:?}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "sdes on TCP is an error finding"
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, b"[{\"name\": \"x\", ").unwrap();
    let out = run(&bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = run(&dir.path().join("missing.json"), &[]);
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(common::bin())
        .args(["check", "--no-origination", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--api-url",
            "http://127.0.0.1:9",
        ])
        .env_remove("BOLNA_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOLNA_API_KEY"));
}

#[test]
fn an_answer_from_another_address_is_reported_but_not_counted() {
    // SIPp bound to 0.0.0.0 answers a request sent to 127.0.0.2 from 127.0.0.1:
    // a real carrier behind a load balancer does the same.
    let gw = common::Sipp::start_at(
        "options_200.xml",
        common::SippTransport::Udp,
        None,
        &["-i", "0.0.0.0"],
    );
    let port = gw.addr().port();
    let (out, doc) = check(
        &[TrunkJson::g711("lb", "127.0.0.2", port).qualify(60).build()],
        &[],
    );
    let t = only_target(&doc, "lb");
    assert_eq!(t["outcome"], "timeout", "{t:#}");
    assert_eq!(t["reply_from"], format!("127.0.0.1:{port}"), "{t:#}");
    assert!(t["stray_responses"].as_u64().unwrap() >= 1);
    assert!(
        t["detail"].as_str().unwrap().contains("not counted"),
        "{t:#}"
    );
    assert_eq!(
        doc["egress"]["replies_from_elsewhere"][0],
        format!("127.0.0.2:{port} answered from 127.0.0.1:{port}")
    );
    assert_eq!(out.status.code(), Some(1));
}
