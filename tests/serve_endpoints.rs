//! `trunkprobe serve` at its edges: `/probe` over TLS against Kamailio with a test
//! CA, the live metric names against the README's list, `/healthz` and `/-/ready`
//! before and after the first load, JSON logs with each state change once, and
//! SIGTERM while probes to a silent peer are in flight.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use common::kamailio_auth::{AuthOpts, KamailioAuth};
use common::serve::{sample, samples, write_trunks, Daemon, SERVE_TOKEN};
use common::sipp_call::SippCall;
use common::{
    silent_udp, FakeApi, Kamailio, KamailioOpts, Reply, Sipp, SippTransport, TestPki, TrunkJson,
};

/// The leaf certificate's notAfter, Unix seconds.
fn not_after(pem_path: &std::path::Path) -> f64 {
    let pem = std::fs::read(pem_path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    cert.validity().not_after.timestamp() as f64
}

/// Metric names in the README's tables: first cells like `` `trunkprobe_options_up` ``.
fn readme_metric_names() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name))
        .filter(|n| {
            n.starts_with("trunkprobe_") && n.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// Metric family names of a scrape (`# TYPE name kind`).
fn scraped_names(m: &str) -> BTreeSet<String> {
    m.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn tls_probe_with_a_test_ca_and_every_exported_metric_is_documented() {
    let pki = TestPki::new();
    let good = pki.valid("gw.test.local");
    let good_expiry = not_after(&good.cert);
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(good),
        ..Default::default()
    });
    let wrong = Kamailio::start(KamailioOpts {
        tls: Some(pki.wrong_name()),
        ..Default::default()
    });
    let (tls_port, wrong_port) = (kam.tls_addr().port(), wrong.tls_addr().port());
    // A UDP carrier that drops requests of 1400 bytes and more: every MTU series, first lost too.
    let frag = Sipp::uas_udp("options_200_small_only.xml");
    // Origination at sip.bolna.ai pinned to loopback: every origination series, never off-machine.
    let origination = format!("sip:sip.bolna.ai:{}", kam.udp_addr().port());
    // A test call to a SIPp echo and a registration check at a Kamailio registrar: every
    // test-call and registration series.
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let registrar = KamailioAuth::start(AuthOpts::new("reg-pw", None));
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("reg.pw");
    std::fs::write(&password, "reg-pw").unwrap();
    let password_arg = format!("registrar={}", password.display());
    let file = write_trunks(
        dir.path(),
        &[
            TrunkJson::probed("tls-1")
                .gateway("gw.test.local", tls_port)
                .transport("transport-tls")
                .build(),
            // Not probed, still linted: a `qualify_disabled` finding.
            TrunkJson::probed("quiet")
                .gateway("127.0.0.1", 5060)
                .qualify(0)
                .build(),
            TrunkJson::probed("frag").gateway_at(frag.addr()).build(),
            TrunkJson::probed("echo")
                .gateway_at(echo.addr())
                .g711_only()
                .build(),
            TrunkJson::probed("registrar")
                .userpass("bolna-trunk")
                .gateway_at(registrar.addr())
                .build(),
        ],
    );
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "3s",
        "--resolve",
        "gw.test.local:127.0.0.1",
        "--ca-file",
        &ca,
        "--mtu-interval",
        "1s",
        "--origination",
        &origination,
        "--resolve",
        "sip.bolna.ai:127.0.0.1",
        "--origination-interval",
        "1s",
        "--test-call",
        "echo=100",
        "--test-call-duration",
        "1s",
        "--auth-password-file",
        &password_arg,
    ]);

    // /probe, blackbox style, over TLS with the test CA.
    let (code, body) = d
        .get(&format!("/probe?target=sips:gw.test.local:{tls_port}"))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(sample(&body, "probe_success", &[]), Some(1.0), "{body}");
    assert_eq!(sample(&body, "probe_sip_status_code", &[]), Some(200.0));
    assert_eq!(
        sample(&body, "probe_ssl_earliest_cert_expiry", &[]),
        Some(good_expiry),
        "{body}"
    );
    let (_, body) = d
        .get(&format!(
            "/probe?target=sip:gw.test.local:{wrong_port}%3Btransport%3Dtls"
        ))
        .unwrap();
    assert_eq!(sample(&body, "probe_success", &[]), Some(0.0), "{body}");
    assert_eq!(
        sample(&body, "probe_sip_outcome", &[("outcome", "tls_error")]),
        Some(1.0),
        "{body}"
    );

    // The daemon's own TLS target carries the same expiry.
    let tls = [("trunk_id", "tls-1"), ("transport", "tls")];
    d.wait_for("the TLS trunk up", |d| {
        let m = d.metrics();
        sample(&m, "trunkprobe_options_up", &tls) == Some(1.0)
            && sample(&m, "trunkprobe_options_rtt_seconds_count", &tls).is_some()
            && sample(
                &m,
                "trunkprobe_mtu_first_lost_bytes",
                &[("trunk_id", "frag")],
            )
            .is_some()
            && sample(&m, "trunkprobe_origination_rtt_seconds", &[]).is_some()
            && sample(&m, "trunkprobe_test_call_mos", &[("trunk_id", "echo")]).is_some()
            && sample(
                &m,
                "trunkprobe_registration_result",
                &[("trunk_id", "registrar"), ("result", "accepted")],
            ) == Some(1.0)
    });
    let m = d.metrics();
    assert_eq!(
        sample(&m, "trunkprobe_tls_cert_not_after_timestamp_seconds", &tls),
        Some(good_expiry)
    );

    // Every exported name is in the README's metric list and vice versa.
    let scraped = scraped_names(&m);
    let documented = readme_metric_names();
    let undocumented: Vec<_> = scraped.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&scraped).collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in the README's metric tables: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in the README but not in this scrape (a series this test's fleet does not \
         produce? extend the fleet): {missing:?}\n{m}"
    );
    eprintln!("{} metric names exported and documented", scraped.len());
    drop(wrong);
}

fn failed_probes(m: &str, target: &str) -> f64 {
    ["refused", "timeout", "network_error"]
        .iter()
        .filter_map(|o| {
            sample(
                m,
                "trunkprobe_options_probes_total",
                &[("target", target), ("outcome", o)],
            )
        })
        .sum()
}

#[test]
fn healthz_waits_for_the_first_list_and_json_logs_each_state_change_once() {
    let mut gw = Sipp::uas_udp("options_200.xml");
    let target = gw.addr().to_string();
    let api = FakeApi::start(Reply::down(503));
    let url = api.url();
    let mut d = Daemon::spawn(&[
        "--api-url",
        &url,
        "--refresh",
        "1s",
        "--timeout",
        "1s",
        "--log-format",
        "json",
    ]);

    // No list yet: not healthy, not ready, but alive and scrapeable.
    d.wait_for("the failing API counted", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_source_errors_total",
            &[("reason", "http_status")],
        )
        .unwrap_or(0.0)
            >= 1.0
    });
    assert_eq!(d.get("/healthz").map(|r| r.0), Some(503));
    assert_eq!(d.get("/-/ready").map(|r| r.0), Some(503));
    assert_eq!(d.get("/-/healthy").map(|r| r.0), Some(200));

    api.set(json!([TrunkJson::probed("json-1")
        .gateway_at(gw.addr())
        .build()]));
    d.wait_for("/healthz 200 after the first load", |d| {
        d.get("/healthz").is_some_and(|r| r.0 == 200)
    });
    assert_eq!(d.get("/-/ready").map(|r| r.0), Some(200));
    d.wait_for("several healthy probes", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_options_probes_total",
            &[("target", &target), ("outcome", "ok")],
        )
        .unwrap_or(0.0)
            >= 3.0
    });
    gw.stop();
    d.wait_for("down, and failing well past --down-after", |d| {
        let m = d.metrics();
        sample(&m, "trunkprobe_options_up", &[("target", &target)]) == Some(0.0)
            && failed_probes(&m, &target) >= 4.0
    });

    let logs = d.logs();
    let mut changes = Vec::new();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}\n{logs}"));
        assert!(v.is_object(), "{line}");
        let f = &v["fields"];
        let msg = f["message"].as_str().unwrap_or_default();
        if msg == "target up" || msg == "target down" {
            assert_eq!(f["target"], Value::from(target.as_str()), "{line}");
            assert_eq!(f["trunk_id"], Value::from("json-1"), "{line}");
            changes.push((msg.to_string(), f["outcome"].as_str().map(str::to_string)));
        }
    }
    assert_eq!(changes.len(), 2, "one line per state change:\n{logs}");
    assert_eq!(changes[0], ("target up".into(), Some("ok".into())));
    assert_eq!(changes[1].0, "target down");
    assert!(
        logs.contains("loading the trunk list failed"),
        "the API failure is logged\n{logs}"
    );
    assert!(!logs.contains(SERVE_TOKEN) && !d.metrics().contains(SERVE_TOKEN));
}

#[test]
fn sigterm_with_probes_in_flight_exits_zero_within_the_probe_timeout() {
    let silent = silent_udp();
    let dir = tempfile::tempdir().unwrap();
    let trunks: Vec<_> = (0..3)
        .map(|i| {
            TrunkJson::probed(&format!("silent-{i}"))
                .gateway_at(silent.addr())
                .build()
        })
        .collect();
    let file = write_trunks(dir.path(), &trunks);
    let mut d = Daemon::start(&["--trunks", file.to_str().unwrap(), "--timeout", "3s"]);
    // Probes take 3 s and qualify_frequency is 1 s: once one timed out, the
    // loops probe back to back, so some are always in flight.
    d.wait_for("a probe timed out", |d| {
        samples(
            &d.metrics(),
            "trunkprobe_options_probes_total",
            &[("outcome", "timeout")],
        )
        .iter()
        .sum::<f64>()
            >= 1.0
    });
    let sent = silent.received();
    d.wait_for("requests still arriving at the silent peer", |_| {
        silent.received() > sent
    });
    let (status, took) = d.sigterm();
    eprintln!("SIGTERM with probes in flight (--timeout 3s): exited in {took:?}");
    let logs = d.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(
        took < Duration::from_secs(12),
        "SIGTERM took {took:?}\n{logs}"
    );
    assert!(logs.contains("waiting for the ones in flight"), "{logs}");
    assert!(logs.contains("stopped"), "{logs}");
}

#[test]
fn a_dns_min_interval_out_of_bounds_is_a_usage_error() {
    for bad in ["0s", "10m", "soon"] {
        let out = std::process::Command::new(common::bin())
            .args(["serve", "--gateway", "127.0.0.1", "--listen", "127.0.0.1:0"])
            .args(["--dns-min-interval", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--dns-min-interval"), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
