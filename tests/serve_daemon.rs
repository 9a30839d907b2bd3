//! `trunkprobe serve` end to end: the real binary against SIPp UAS peers and an
//! in-process trunk API on loopback, observed only through its HTTP endpoints,
//! its logs and its exit status.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{sample, write_trunks, Daemon, SERVE_TOKEN as TOKEN};
use common::{FakeApi, Reply, Sipp, SippTransport, TrunkJson};
use serde_json::json;

#[test]
fn healthy_target_goes_down_after_failures_and_up_when_restarted() {
    let mut gw = Sipp::uas_udp("options_200.xml");
    let addr = gw.addr();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[TrunkJson::probed("udp1").gateway_at(addr).build()],
    );
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--down-after",
        "3",
        "--location",
        "lab",
    ]);
    let target = addr.to_string();
    let t = [("trunk_id", "udp1"), ("target", target.as_str())];
    // The RTT histogram is the trunk's by default (`--rtt-histogram trunk`).
    let h = [("trunk_id", "udp1"), ("transport", "udp")];
    d.wait_for("target up with an RTT observed", |d| {
        let m = d.metrics();
        sample(&m, "trunkprobe_options_up", &t) == Some(1.0)
            && sample(&m, "trunkprobe_options_last_rtt_seconds", &t).is_some()
            && sample(&m, "trunkprobe_options_rtt_seconds_count", &h).unwrap_or(0.0) >= 1.0
    });
    let m = d.metrics();
    assert!(
        !m.lines()
            .any(|l| l.starts_with("trunkprobe_options_rtt_seconds") && l.contains("target=")),
        "no per-target histogram by default: {m}"
    );
    assert_eq!(
        sample(&m, "trunkprobe_options_last_status_code", &t),
        Some(200.0)
    );
    assert!(m.contains("location=\"lab\""));
    assert_eq!(
        sample(
            &m,
            "trunkprobe_trunk_info",
            &[("trunk_id", "udp1"), ("transport", "udp")]
        ),
        Some(1.0)
    );

    // Probe count over a window follows qualify_frequency=1 (tolerant bounds).
    let ok = |m: &str| {
        sample(
            m,
            "trunkprobe_options_probes_total",
            &[("target", &target), ("outcome", "ok")],
        )
        .unwrap_or(0.0)
    };
    let (before, t0) = (ok(&d.metrics()), Instant::now());
    std::thread::sleep(Duration::from_secs(6));
    let (after, window) = (ok(&d.metrics()), t0.elapsed().as_secs_f64());
    let probes = after - before;
    assert!(
        probes >= window * 0.4 && probes <= window + 2.0,
        "{probes} probes in {window:.1}s at qualify_frequency 1"
    );

    // promtool accepts a live scrape.
    let check = promtool_check(&d.metrics());
    assert!(check.0, "promtool check metrics:\n{}", check.1);

    // The gateway goes away: down only after 3 consecutive failures.
    gw.stop();
    d.wait_for("target down", |d| {
        sample(&d.metrics(), "trunkprobe_options_up", &t) == Some(0.0)
    });
    let m = d.metrics();
    let failures: f64 = ["refused", "timeout", "network_error"]
        .iter()
        .filter_map(|o| {
            sample(
                &m,
                "trunkprobe_options_probes_total",
                &[("target", &target), ("outcome", o)],
            )
        })
        .sum();
    assert!(failures >= 3.0, "down after {failures} failures\n{m}");
    assert_eq!(
        sample(&m, "trunkprobe_options_last_status_code", &t),
        Some(0.0)
    );

    // Restarted on the same port: up again.
    let _gw = Sipp::start_at(
        "options_200.xml",
        SippTransport::Udp,
        Some(addr.port()),
        &[],
    );
    d.wait_for("target up again", |d| {
        sample(&d.metrics(), "trunkprobe_options_up", &t) == Some(1.0)
    });
    let logs = d.logs();
    assert_eq!(logs.matches("target down").count(), 1, "{logs}");
    assert_eq!(logs.matches("target up").count(), 2, "{logs}");
}

fn promtool_check(metrics: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; see .ci/install-peers)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn api_refresh_removes_trunks_and_an_outage_keeps_the_last_list() {
    let gw = Sipp::uas_udp("options_200.xml");
    let api = FakeApi::start(json!([
        TrunkJson::probed("keep").gateway_at(gw.addr()).build(),
        TrunkJson::probed("drop").gateway_at(gw.addr()).build(),
    ]));
    let url = api.url();
    let mut d = Daemon::start(&["--api-url", &url, "--refresh", "1s", "--timeout", "1s"]);
    for id in ["keep", "drop"] {
        d.wait_for("both trunks up", |d| {
            sample(&d.metrics(), "trunkprobe_options_up", &[("trunk_id", id)]) == Some(1.0)
        });
    }
    assert_eq!(
        sample(&d.metrics(), "trunkprobe_trunks", &[("state", "active")]),
        Some(2.0)
    );

    // Removed from the API: every series of the trunk disappears.
    api.set(json!([TrunkJson::probed("keep")
        .gateway_at(gw.addr())
        .build()]));
    d.wait_for("removed trunk gone from /metrics", |d| {
        !d.metrics().contains("trunk_id=\"drop\"")
    });
    assert_eq!(
        sample(&d.metrics(), "trunkprobe_trunks", &[("state", "active")]),
        Some(1.0)
    );

    // The API fails: errors are counted and the last list keeps being probed.
    api.set(Reply::down(500));
    d.wait_for("source errors counted", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_source_errors_total",
            &[("reason", "http_status")],
        )
        .unwrap_or(0.0)
            >= 2.0
    });
    let count = |d: &Daemon| {
        sample(
            &d.metrics(),
            "trunkprobe_options_probes_total",
            &[("trunk_id", "keep"), ("outcome", "ok")],
        )
        .unwrap_or(0.0)
    };
    let before = count(&d);
    d.wait_for("still probing during the outage", |d| {
        count(d) >= before + 2.0
    });
    let m = d.metrics();
    assert_eq!(
        sample(&m, "trunkprobe_options_up", &[("trunk_id", "keep")]),
        Some(1.0)
    );
    assert!(
        d.logs().contains("probing the last good list"),
        "{}",
        d.logs()
    );
    assert!(!m.contains(TOKEN) && !d.logs().contains(TOKEN));
}

#[test]
fn probe_endpoint_answers_blackbox_style_and_sigterm_exits_zero() {
    let gw = Sipp::uas_tcp("options_200.xml");
    let gateway = gw.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[TrunkJson::probed("tcp1")
            .gateway_at(gw.addr())
            .transport("transport-tcp")
            .build()],
    );
    let mut d = Daemon::start(&["--trunks", file.to_str().unwrap(), "--timeout", "2s"]);
    assert_eq!(d.get("/-/ready").map(|r| r.0), Some(200));

    let (code, body) = d
        .get(&format!("/probe?target=sip:{gateway}%3Btransport%3Dtcp"))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(sample(&body, "probe_success", &[]), Some(1.0), "{body}");
    assert_eq!(sample(&body, "probe_sip_status_code", &[]), Some(200.0));
    assert!(sample(&body, "probe_duration_seconds", &[]).is_some());
    assert!(sample(&body, "probe_dns_lookup_time_seconds", &[]).is_some());
    assert!(promtool_check(&body).0, "{body}");

    let closed = common::closed_tcp_port();
    let (_, body) = d
        .get(&format!(
            "/probe?target=sip:127.0.0.1:{closed}%3Btransport%3Dtcp"
        ))
        .unwrap();
    assert_eq!(sample(&body, "probe_success", &[]), Some(0.0), "{body}");
    assert_eq!(
        sample(&body, "probe_sip_outcome", &[("outcome", "refused")]),
        Some(1.0)
    );
    assert_eq!(
        d.get("/probe?target=sip:alice@host").map(|r| r.0),
        Some(400)
    );
    assert_eq!(d.get("/probe").map(|r| r.0), Some(400));

    d.wait_for("the TCP trunk probed", |d| {
        sample(
            &d.metrics(),
            "trunkprobe_options_up",
            &[("transport", "tcp")],
        ) == Some(1.0)
    });
    let (status, took) = d.sigterm();
    assert_eq!(status.code(), Some(0), "{}", d.logs());
    assert!(took < Duration::from_secs(15), "SIGTERM took {took:?}");
}
