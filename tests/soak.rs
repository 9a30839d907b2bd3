//! A bounded soak of `serve`: qualify_frequency 1 s against healthy, slow,
//! flapping and dead peers, with a trunk API that fails every third refresh.
//! Open file descriptors, threads, async tasks and RSS are sampled at intervals and must stay
//! flat (generous bounds), and no target may stop being probed.
//!
//! 60 s by default; `TRUNKPROBE_SOAK_SECS=1800 cargo test --test soak` by hand.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::serve::{sample, samples, Daemon};
use common::{closed_udp_port, silent_tcp, silent_udp, FakeApi, Sipp, SippTransport, TrunkJson};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    threads: usize,
    rss_kb: u64,
    /// `trunkprobe_runtime_tasks`: async tasks alive in the daemon.
    tasks: f64,
}

fn usage(d: &Daemon) -> Usage {
    let pid = d.child.id();
    let tasks = sample(&d.metrics(), "trunkprobe_runtime_tasks", &[]).unwrap_or(-1.0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        fds,
        threads: field("Threads:") as usize,
        rss_kb: field("VmRSS:"),
        tasks,
    }
}

#[test]
fn serve_stays_flat_under_a_mixed_fleet_and_a_flaky_api() {
    let secs: u64 = std::env::var("TRUNKPROBE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let healthy = Sipp::uas_udp("options_200.xml");
    let healthy_tcp = Sipp::uas_tcp("options_200.xml");
    let slow = Sipp::uas_udp("options_200_slow.xml");
    let mut flapping = Sipp::uas_udp("options_200.xml");
    let flap_port = flapping.addr().port();
    let silent = silent_udp();
    let silent_stream = silent_tcp();
    let trunks = vec![
        TrunkJson::probed("healthy")
            .gateway_at(healthy.addr())
            .build(),
        TrunkJson::probed("healthy-tcp")
            .gateway_at(healthy_tcp.addr())
            .transport("transport-tcp")
            .build(),
        TrunkJson::probed("slow").gateway_at(slow.addr()).build(),
        TrunkJson::probed("flapping")
            .gateway("127.0.0.1", flap_port)
            .build(),
        TrunkJson::probed("silent")
            .gateway_at(silent.addr())
            .build(),
        TrunkJson::probed("silent-tcp")
            .gateway_at(silent_stream.addr())
            .transport("transport-tcp")
            .build(),
        TrunkJson::probed("closed")
            .gateway("127.0.0.1", closed_udp_port())
            .build(),
    ];
    // Answers 500 to every third request.
    let api = FakeApi::start(json!(trunks)).fail_every(3);
    let mut daemon = Daemon::start(&[
        "--api-url",
        &api.url(),
        "--refresh",
        "2s",
        "--timeout",
        "2s",
    ]);

    // Warm up: every trunk probed at least once, then take the baseline.
    daemon.wait_for("every target probed", |d| {
        samples(
            &d.metrics(),
            "trunkprobe_options_last_probe_timestamp_seconds",
            &[],
        )
        .len()
            >= trunks.len()
    });
    std::thread::sleep(Duration::from_secs(5));
    let baseline = usage(&daemon);
    let mut peak = baseline;
    let started = Instant::now();
    let mut flaps = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(5));
        // The flapping carrier goes away and comes back on the same port.
        if flaps % 2 == 0 {
            flapping.stop();
        } else {
            flapping = Sipp::start_at("options_200.xml", SippTransport::Udp, Some(flap_port), &[]);
        }
        flaps += 1;
        let u = usage(&daemon);
        peak.fds = peak.fds.max(u.fds);
        peak.threads = peak.threads.max(u.threads);
        peak.rss_kb = peak.rss_kb.max(u.rss_kb);
        peak.tasks = peak.tasks.max(u.tasks);
    }
    let end = usage(&daemon);
    let metrics = daemon.metrics();
    let report = format!(
        "baseline {baseline:?}, peak {peak:?}, end {end:?}, {} API calls",
        api.count()
    );
    eprintln!("soak {secs}s: {report}");

    // Flat: each probe's socket and task is released.
    assert!(
        peak.fds <= baseline.fds + 24,
        "file descriptors grew: {report}"
    );
    assert!(
        peak.threads <= baseline.threads + 4,
        "threads grew: {report}"
    );
    assert!(
        end.rss_kb <= baseline.rss_kb * 3 / 2 + 20_000,
        "RSS grew: {report}"
    );

    // No stuck probe: every target was probed within the last few intervals.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = samples(
        &metrics,
        "trunkprobe_options_last_probe_timestamp_seconds",
        &[],
    );
    assert_eq!(last.len(), trunks.len(), "{metrics}");
    for t in &last {
        assert!(
            now - t < 10.0,
            "a target was last probed {:.1}s ago: {report}\n{metrics}",
            now - t
        );
    }
    // The API failed now and then, the daemon kept the list and counted it.
    let errors: f64 = samples(&metrics, "trunkprobe_source_errors_total", &[])
        .iter()
        .sum();
    assert!(errors >= 1.0, "no source error counted: {metrics}");
    assert_eq!(
        sample(
            &metrics,
            "trunkprobe_options_up",
            &[("trunk_id", "healthy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "trunkprobe_options_up", &[("trunk_id", "silent")]),
        Some(0.0)
    );
    let (status, _) = daemon.sigterm();
    assert!(status.success(), "{}", daemon.logs());
}
