//! `dashboards/` (Grafana dashboard, Prometheus alert rules, scrape config) checked with the real
//! tools: promtool validates the files, and a real Prometheus scrapes `trunkprobe serve` (probing
//! SIPp and a TLS Kamailio) and evaluates every PromQL expression of the dashboard and the rules.
//! The same evaluation also runs against an in-process fake exporter, so the files are held to a
//! real Prometheus even where the daemon is not built.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::kamailio_auth::{AuthOpts, KamailioAuth};
use common::prometheus::{
    dashboard_queries, dashboards_dir, fake_exposition, http_get, label_values_variables,
    metric_names, promtool, promtool_check_metrics, split_comparison, substitute_vars,
    FakeExporter, Prometheus, DAEMON_METRICS,
};
use common::sipp_call::SippCall;
use common::{
    closed_udp_port, DnsRecord, Dnsmasq, Kamailio, KamailioOpts, Sipp, SippTransport, TestPki,
    TrunkJson,
};
use serde_json::{json, Value};

const GW_NAME: &str = "gw.test.local";
/// What `$__rate_interval` and friends become: several 1 s scrapes.
const RATE_INTERVAL: &str = "10s";
/// How long all expressions may take to have data (the first probes, two rate() samples, the
/// down hysteresis): generous, the machine is shared.
const DATA_DEADLINE: Duration = Duration::from_secs(90);

fn read(name: &str) -> String {
    fs::read_to_string(dashboards_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("trunk-health.json")).expect("trunk-health.json is JSON")
}

/// Names of the alert rules in alerts.yml, in order (`- alert: NAME` lines).
fn alert_names() -> Vec<String> {
    read("alerts.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// `dashboards/prometheus.yml` made runnable here: 1 s scrapes and rule evaluation, the daemon at
/// `daemon`, and the three example `/probe` targets replaced by `probe_targets`.
fn render_scrape_config(daemon: SocketAddr, probe_targets: [&str; 3]) -> String {
    let mut cfg = read("prometheus.yml");
    let mut replace = |from: &str, to: &str, times: usize| {
        assert_eq!(
            cfg.matches(from).count(),
            times,
            "prometheus.yml changed shape: `{from}`"
        );
        cfg = cfg.replace(from, to);
    };
    replace("scrape_interval: 15s", "scrape_interval: 1s", 1);
    replace("evaluation_interval: 15s", "evaluation_interval: 1s", 1);
    replace("scrape_interval: 60s", "scrape_interval: 2s", 1);
    replace("scrape_timeout: 10s", "scrape_timeout: 2s", 1);
    replace("127.0.0.1:9464", &daemon.to_string(), 2);
    let examples = [
        "- sip:sip.example-carrier.net:5060\n",
        "- sip:sip.example-carrier.net:5060;transport=tcp\n",
        "- sip:sip.example-carrier.net:5061;transport=tls\n",
    ];
    for (from, to) in examples.iter().zip(probe_targets) {
        replace(from, &format!("- \"{to}\"\n"), 1);
    }
    cfg
}

#[test]
fn promtool_accepts_the_rules_and_the_rendered_scrape_config() {
    let out = promtool(&dashboards_dir(), &["check", "rules", "alerts.yml"]);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} rules found", alert_names().len())),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = render_scrape_config(
        "127.0.0.1:19464".parse().unwrap(),
        [
            "sip:127.0.0.1:5060",
            "sip:127.0.0.1:5060;transport=tcp",
            "sip:gw.test.local:5061;transport=tls",
        ],
    );
    fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
    fs::write(dir.path().join("alerts.yml"), read("alerts.yml")).unwrap();
    let out = promtool(dir.path(), &["check", "config", "prometheus.yml"]);
    assert!(
        out.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The examples as shipped are valid too.
    for example in ["prometheus.yml", "prometheus-sd.yml"] {
        let out = promtool(&dashboards_dir(), &["check", "config", example]);
        assert!(out.status.success(), "{example}: {out:?}");
    }
}

#[test]
fn dashboard_is_importable_and_uses_only_daemon_metrics() {
    let d = dashboard();
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["uid"].as_str().is_some_and(|u| u.len() <= 40));
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in ["datasource", "location", "trunk"] {
        assert!(vars.contains(&v), "no ${v} variable: {vars:?}");
    }
    assert_eq!(label_values_variables(&d).len(), 2);

    let queries = dashboard_queries(&d);
    assert!(queries.len() >= 15, "{queries:#?}");
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut walk = vec![&d["panels"]];
    while let Some(panels) = walk.pop() {
        for p in panels.as_array().into_iter().flatten() {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id {p}");
            walk.push(&p["panels"]);
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "panel {} must use the datasource variable",
                p["title"]
            );
            assert!(
                !p["targets"].as_array().unwrap().is_empty(),
                "{}",
                p["title"]
            );
        }
    }
    for q in &queries {
        assert!(!q.expr.trim().is_empty(), "{}: empty expr", q.panel);
        let names = metric_names(&q.expr);
        assert!(!names.is_empty(), "{}: no trunkprobe metric", q.panel);
        for n in names {
            assert!(
                DAEMON_METRICS.contains(&n.as_str()),
                "{}: `{n}` is not a metric the daemon defines",
                q.panel
            );
            used.insert(n);
        }
    }
    // Every daemon metric shows up somewhere on the dashboard.
    for m in DAEMON_METRICS {
        assert!(used.contains(*m), "the dashboard never shows {m}");
    }
    // The alert rules too name only daemon metrics (and Prometheus' own `up`).
    for n in metric_names(&read("alerts.yml")) {
        assert!(DAEMON_METRICS.contains(&n.as_str()), "alerts.yml: {n}");
    }
}

#[test]
fn helpers_substitute_and_split() {
    assert_eq!(
        substitute_vars(
            r#"rate(x{trunk=~"$trunk", l=~"${location:regex}"}[$__rate_interval])"#,
            "10s"
        ),
        r#"rate(x{trunk=~".*", l=~".*"}[10s])"#
    );
    let (lhs, op, rhs) =
        split_comparison(r#"max by (a) (x{b=~"c>d", e!="f"}) == 0"#).expect("split");
    assert_eq!(
        (lhs.as_str(), op.as_str(), rhs.as_str()),
        (r#"max by (a) (x{b=~"c>d", e!="f"})"#, "==", "0")
    );
    let (lhs, op, _) = split_comparison("a - time() < 14 * 86400").unwrap();
    assert_eq!((lhs.as_str(), op.as_str()), ("a - time()", "<"));
    assert!(split_comparison("sum(rate(x[5m]))").is_none());
    assert_eq!(
        metric_names("histogram_quantile(0.5, rate(trunkprobe_options_rtt_seconds_bucket[1m]))"),
        ["trunkprobe_options_rtt_seconds"]
    );
}

/// What a run must show beyond "every expression has data".
struct Expect {
    /// Alerts that must be pending or firing.
    active_alerts: &'static [&'static str],
    /// `location` label value the probers carry.
    location: &'static str,
}

/// Waits until Prometheus has scraped `job="trunkprobe"`, then evaluates every dashboard query,
/// every template variable and every rule through `/api/v1/query`, polling (up to
/// [`DATA_DEADLINE`]) until each returns data. Panics listing every expression that errs or stays
/// empty.
fn evaluate_everything(prom: &Prometheus, expect: &Expect, logs: &dyn Fn() -> String) {
    let d = dashboard();
    let started = Instant::now();
    let deadline = started + DATA_DEADLINE;
    let wait = |what: &str, ok: &dyn Fn() -> Result<bool, String>| loop {
        match ok() {
            Ok(true) => return,
            Err(e) => panic!("{what}: {e}\n{}\n{}", prom.logs(), logs()),
            Ok(false) if Instant::now() > deadline => {
                panic!(
                    "{what}: not within {DATA_DEADLINE:?}\n{}\n{}",
                    prom.logs(),
                    logs()
                )
            }
            Ok(false) => thread::sleep(Duration::from_millis(500)),
        }
    };
    wait("the daemon is scraped", &|| {
        Ok(prom.query(r#"up{job="trunkprobe"} == 1"#)?.len().eq(&1))
    });

    // Every rule of alerts.yml loads, with both annotations, and is evaluated healthy.
    let mut names = alert_names();
    names.sort();
    wait("all rules loaded and healthy", &|| {
        let rules = prom.rules()?;
        let mut loaded: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
        loaded.sort();
        if loaded != names {
            return Err(format!("loaded {loaded:?}, alerts.yml has {names:?}"));
        }
        for r in &rules {
            if r["health"] == "err" {
                return Err(format!("rule {} unhealthy: {}", r["name"], r["lastError"]));
            }
            for a in ["summary", "description"] {
                if r["annotations"][a].as_str().is_none_or(|s| s.len() < 20) {
                    return Err(format!("rule {} lacks a {a}", r["name"]));
                }
            }
        }
        Ok(rules.iter().all(|r| r["health"] == "ok"))
    });

    // (what, expression that must evaluate, expression that must return data).
    let mut checks: Vec<(String, String, String)> = Vec::new();
    for q in dashboard_queries(&d) {
        let e = substitute_vars(&q.expr, RATE_INTERVAL);
        checks.push((format!("panel {}", q.panel), e.clone(), e));
    }
    let variables = label_values_variables(&d);
    for (name, sel, label) in &variables {
        let sel = substitute_vars(sel, RATE_INTERVAL);
        checks.push((
            format!("variable ${name}"),
            sel.clone(),
            format!("group by ({label}) ({sel})"),
        ));
    }
    for r in prom.rules().unwrap() {
        let expr = r["query"].as_str().unwrap().to_string();
        let data = split_comparison(&expr)
            .map(|(lhs, _, _)| lhs)
            .unwrap_or(expr.clone());
        checks.push((format!("rule {}", r["name"]), expr, data));
    }

    let mut pending: Vec<usize> = (0..checks.len()).collect();
    loop {
        let mut errors = Vec::new();
        pending.retain(|&i| {
            let (what, full, data) = &checks[i];
            if let Err(e) = prom.query(full) {
                errors.push(format!("{what}: {e}\n    {full}"));
            }
            match prom.query(data) {
                Ok(v) => v.is_empty(),
                Err(e) => {
                    errors.push(format!("{what}: {e}\n    {data}"));
                    false
                }
            }
        });
        assert!(errors.is_empty(), "PromQL errors:\n{}", errors.join("\n"));
        if pending.is_empty() {
            eprintln!(
                "{} expressions ({} panel queries, {} variables, {} rules) evaluated without error; \
                 all had data {:.1} s after Prometheus started",
                checks.len(),
                dashboard_queries(&d).len(),
                variables.len(),
                names.len(),
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if Instant::now() > deadline {
            let empty: Vec<String> = pending
                .iter()
                .map(|&i| format!("{}: no data\n    {}", checks[i].0, checks[i].2))
                .collect();
            panic!(
                "returned no data within {DATA_DEADLINE:?}:\n{}\n{}",
                empty.join("\n"),
                logs()
            );
        }
        thread::sleep(Duration::from_secs(1));
    }

    // Each variable offers values; the location variable finds the prober's location.
    for (name, sel, label) in &variables {
        let sel = substitute_vars(sel, RATE_INTERVAL);
        let values: BTreeSet<String> = prom
            .query(&format!("group by ({label}) ({sel})"))
            .unwrap()
            .iter()
            .filter_map(|s| s["metric"][label.as_str()].as_str().map(String::from))
            .filter(|v| !v.is_empty())
            .collect();
        assert!(!values.is_empty(), "${name} would offer no value");
        if label == "location" {
            assert_eq!(values.into_iter().collect::<Vec<_>>(), [expect.location]);
        }
    }

    wait("the expected alerts are active", &|| {
        let active: BTreeSet<String> = prom
            .alerts()?
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str().map(String::from))
            .collect();
        Ok(expect.active_alerts.iter().all(|a| active.contains(*a)))
    });
}

/// Starts Prometheus on the rendered example config (with alerts.yml) scraping `daemon`.
fn prometheus_for(daemon: SocketAddr, probe_targets: [&str; 3]) -> Prometheus {
    let cfg = render_scrape_config(daemon, probe_targets);
    Prometheus::start(&[
        ("prometheus.yml", &cfg),
        ("alerts.yml", &read("alerts.yml")),
    ])
}

#[test]
fn prometheus_evaluates_everything_against_a_fake_exporter() {
    // The fixture itself is valid exposition text.
    let text = fake_exposition(1, "fixture");
    let out = promtool_check_metrics(&text);
    assert!(out.status.success(), "{out:?}\n{text}");

    let fake = FakeExporter::start("fixture");
    let prom = prometheus_for(
        fake.addr(),
        [
            "sip:127.0.0.1:5060",
            "sip:127.0.0.1:5060;transport=tcp",
            "sip:gw:5061;transport=tls",
        ],
    );
    evaluate_everything(
        &prom,
        &Expect {
            active_alerts: &[
                "TrunkprobeTargetDown",
                "TrunkprobeTargetDownEverywhere",
                "TrunkprobeTrunkAllTargetsDown",
                "TrunkprobeErrorFinding",
                "TrunkprobeCertificateExpiringSoon",
                "TrunkprobeUdpLargeMessagesLost",
                "TrunkprobeOriginationDown",
                "TrunkprobeOneWayAudio",
                "TrunkprobeCredentialsRejected",
            ],
            location: "fixture",
        },
        &String::new,
    );
}

/// True when this build of trunkprobe has the `serve` command.
fn has_serve() -> bool {
    Command::new(common::bin())
        .args(["serve", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn prometheus_evaluates_everything_against_the_daemon() {
    evaluate_against_the_daemon(&[]);
}

/// `--rtt-histogram target` (the default is `trunk`): a histogram per target, and
/// still every panel and rule has data.
#[test]
fn prometheus_evaluates_everything_against_the_daemon_with_a_histogram_per_target() {
    evaluate_against_the_daemon(&["--rtt-histogram", "target"]);
}

/// Runs the daemon (with `extra` flags) against SIPp, Kamailio and dnsmasq, and a real
/// Prometheus evaluating every expression of the dashboard and the rules against it.
fn evaluate_against_the_daemon(extra: &[&str]) {
    assert!(
        has_serve(),
        "{} has no `serve` command: a stale binary? (with a CARGO_TARGET_DIR shared between \
         worktrees, target/debug/trunkprobe may come from another branch: rebuild it, or set \
         TRUNKPROBE_BIN)",
        common::bin()
    );
    let bin = common::bin();
    let sipp = Sipp::uas_udp("options_200.xml");
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid(GW_NAME)),
        ..Default::default()
    });
    // A carrier whose UDP path loses requests of 1400 bytes and more (the MTU ladder's finding).
    let frag = Sipp::uas_udp("options_200_small_only.xml");
    // sip.bolna.ai is answered by dnsmasq with loopback: origination never leaves the machine.
    let dns = Dnsmasq::start(&[
        DnsRecord::host(GW_NAME, &["127.0.0.1".parse().unwrap()]),
        DnsRecord::host("sip.bolna.ai", &["127.0.0.1".parse().unwrap()]),
    ]);
    // Test calls: an echo (two-way), a silent carrier (one-way), a closed port (failing);
    // a userpass trunk whose registrar refuses the password it is given.
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let silent = SippCall::start("invite_answer_silent.xml", SippTransport::Udp, false);
    let registrar = KamailioAuth::start(AuthOpts::new("the-right-one", None));
    let sdes = TrunkJson::g711("sdes-on-udp", "127.0.0.1", sipp.addr().port())
        .qualify(1)
        .set("media_encryption", json!("sdes"))
        .build();
    let trunks = json!([
        TrunkJson::g711("sipp-udp", "127.0.0.1", sipp.addr().port())
            .qualify(1)
            .build(),
        TrunkJson::g711("kamailio-tls", GW_NAME, kam.tls_addr().port())
            .transport("transport-tls")
            .qualify(1)
            .build(),
        TrunkJson::g711("closed", "127.0.0.1", closed_udp_port())
            .qualify(1)
            .build(),
        sdes,
        TrunkJson::g711("frag", "127.0.0.1", frag.addr().port())
            .qualify(1)
            .build(),
        TrunkJson::g711("echo", "127.0.0.1", echo.addr().port())
            .qualify(1)
            .build(),
        TrunkJson::g711("silent", "127.0.0.1", silent.addr().port())
            .qualify(1)
            .build(),
        TrunkJson::g711("registrar", "127.0.0.1", registrar.addr().port())
            .userpass("bolna-trunk")
            .qualify(1)
            .build(),
    ]);
    let origination_up = format!("sip:sip.bolna.ai:{};transport=tcp", kam.tcp_addr().port());
    let origination_down = format!("sip:127.0.0.1:{}", closed_udp_port());
    let dir = common::process::peer_dir("serve");
    let file = dir.path().join("trunks.json");
    fs::write(&file, serde_json::to_vec_pretty(&trunks).unwrap()).unwrap();
    let wrong_password = dir.path().join("registrar.pw");
    fs::write(&wrong_password, "not-the-right-one").unwrap();
    let password_arg = format!("registrar={}", wrong_password.display());
    let listen = common::ports::loopback(common::free_tcp_port());
    let args: Vec<String> = [
        "serve",
        "--trunks",
        file.to_str().unwrap(),
        "--listen",
        &listen.to_string(),
        "--location",
        "loopback-test",
        "--dns-server",
        &dns.addr().to_string(),
        "--ca-file",
        pki.ca_path().to_str().unwrap(),
        "--timeout",
        "1s",
        "--mtu-interval",
        "1s",
        "--origination",
        &origination_up,
        "--origination",
        &origination_down,
        "--origination-interval",
        "1s",
        "--test-call",
        "echo=+14155550100",
        "--test-call",
        "silent=+14155550101",
        "--test-call",
        "closed=+14155550102",
        "--test-calls-in-flight",
        "3",
        "--test-call-duration",
        "2s",
        "--test-call-interval",
        "10s",
        "--auth-password-file",
        &password_arg,
        "--register-interval",
        "10s",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let mut daemon = common::PeerProcess::spawn(
        "trunkprobe-serve",
        dir,
        &bin,
        &args,
        "trunkprobe",
        libc::SIGKILL,
        false,
    )
    .unwrap_or_else(|e| e.panic("trunkprobe serve"));
    daemon
        .wait_ready(|| {
            http_get(listen, "/healthz", Duration::from_millis(300))
                .map(|(code, _)| code == 200)
                .unwrap_or(false)
        })
        .unwrap_or_else(|e| e.panic("trunkprobe serve"));

    let probe_targets = [
        format!("sip:127.0.0.1:{}", sipp.addr().port()),
        format!("sip:127.0.0.1:{};transport=tcp", kam.tcp_addr().port()),
        format!("sip:{GW_NAME}:{};transport=tls", kam.tls_addr().port()),
    ];
    let prom = prometheus_for(
        listen,
        [&probe_targets[0], &probe_targets[1], &probe_targets[2]],
    );
    let logs = || {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            daemon.logs(),
            daemon_logs(listen),
            sipp.logs(),
            frag.logs(),
            kam.logs()
        )
    };
    evaluate_everything(
        &prom,
        &Expect {
            active_alerts: &[
                "TrunkprobeTargetDown",
                "TrunkprobeTargetDownEverywhere",
                "TrunkprobeTrunkAllTargetsDown",
                "TrunkprobeErrorFinding",
                "TrunkprobeUdpLargeMessagesLost",
                "TrunkprobeOriginationDown",
                "TrunkprobeOriginationNotGuideIp",
                "TrunkprobeTestCallFailing",
                "TrunkprobeOneWayAudio",
                "TrunkprobeCredentialsRejected",
            ],
            location: "loopback-test",
        },
        &logs,
    );

    // Every metric the dashboard needs is exported by the daemon (HELP line per family).
    let (_, scrape) = http_get(listen, "/metrics", Duration::from_secs(5)).unwrap();
    for m in DAEMON_METRICS {
        assert!(
            scrape.contains(&format!("# HELP {m} ")),
            "the daemon does not export {m}:\n{scrape}"
        );
    }
    let out = promtool_check_metrics(&scrape);
    assert!(
        out.status.success(),
        "promtool check metrics: {out:?}\n{scrape}"
    );

    // The blackbox-style job: each SIP URI went to /probe as ?target=, stayed the instance, and
    // the probe succeeded (scraped every 2 s: poll until all three have been scraped).
    let expected: BTreeSet<String> = probe_targets.iter().cloned().collect();
    let deadline = Instant::now() + DATA_DEADLINE;
    loop {
        let probes = prom
            .query(r#"probe_success{job="trunkprobe-probe"}"#)
            .unwrap();
        let ok: BTreeSet<String> = probes
            .iter()
            .filter(|s| s["value"][1] == "1")
            .filter_map(|s| s["metric"]["instance"].as_str().map(String::from))
            .collect();
        if ok == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/probe: want probe_success 1 for {expected:?}, got {probes:#?}\n{}",
            logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
    drop(daemon);
}

/// The daemon's own view, for assertion messages.
fn daemon_logs(listen: SocketAddr) -> String {
    http_get(listen, "/metrics", Duration::from_secs(2))
        .map(|(_, body)| body)
        .unwrap_or_else(|e| format!("(no /metrics: {e})"))
}
