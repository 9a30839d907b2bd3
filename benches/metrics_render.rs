//! `/metrics` of a daemon with N targets, rendered in-process: time, bytes and
//! bytes per target, for each `--rtt-histogram` mode. `cargo bench --bench
//! metrics_render [TARGETS]` (default 100,000; 4 targets per trunk, IP-literal
//! gateways as in bench/daemon_scale.sh). Best of 3 renders; the HTTP transfer
//! is not included (`daemon_scale.sh` measures the endpoint end to end). Each
//! mode runs in a child process of its own, so its RSS column is its store's.

use std::hint::black_box;
use std::time::{Duration, Instant};

use trunkprobe::metrics::{Metrics, RttHistogram, TargetLabels};
use trunkprobe::probe::{blank_result, Outcome};
use trunkprobe::resolve::Resolution;
use trunkprobe::trunk::{Transport, Trunk};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let modes = [
        ("target", RttHistogram::Target),
        ("trunk", RttHistogram::Trunk),
        ("off", RttHistogram::Off),
    ];
    // `--mode NAME` (internal): one mode in this process, so its RSS is its own.
    if let Some(i) = args.iter().position(|a| a == "--mode") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or_default();
        let (name, mode) = modes
            .into_iter()
            .find(|(m, _)| *m == name)
            .expect("--mode target|trunk|off");
        run(name, mode, n);
        return;
    }
    println!(
        "| mode | targets | render ms (best of 3) | MB | bytes per target | store RSS bytes per target |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let exe = std::env::current_exe().expect("own path");
    for (name, _) in modes {
        let status = std::process::Command::new(&exe)
            .args([n.to_string().as_str(), "--mode", name])
            .status()
            .expect("run one mode");
        assert!(status.success());
    }
}

/// Fills a store in this process and renders it: one row of the table. The
/// last column is the growth of this process's RSS (`/proc/self/statm`) over the
/// fill, per target: what the store costs, allocator overhead included.
fn run(name: &str, mode: RttHistogram, n: usize) {
    let m = Metrics::with_rtt_histogram(None, mode);
    let before = rss();
    fill(&m, n);
    let store = rss().saturating_sub(before);
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = 0;
        m.render_chunks(&mut |chunk| {
            bytes += black_box(chunk).len();
            true
        });
        best = best.min(t.elapsed());
    }
    println!(
        "| {name} | {n} | {:.0} | {:.1} | {} | {} |",
        best.as_secs_f64() * 1000.0,
        bytes as f64 / 1e6,
        bytes / n.max(1),
        store / n.max(1)
    );
}

/// Resident set size of this process in bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

/// `n` answered UDP targets, four per trunk, with their DNS and trunk series.
fn fill(m: &Metrics, n: usize) {
    for t in 0..n.div_ceil(4) {
        let id = format!("bench-{t:06}");
        let mut trunk = Trunk::with_defaults(format!("bench trunk {t}"));
        trunk.id = Some(id.clone());
        let gen = m.track_trunk(&id);
        m.record_trunk(gen, &id, &trunk, &[]);
        for g in 0..4.min(n - t * 4) {
            let i = t * 4 + g;
            let ip = std::net::Ipv4Addr::from(0x7f00_0000u32 + 1 + i as u32);
            let addr = format!("{ip}:5060");
            let l = TargetLabels::new(&id, trunk.label(), &addr, &addr, "udp");
            let mut r = blank_result(Some(ip.into()), 5060, Transport::Udp, Outcome::Ok);
            r.status_code = Some(200);
            r.rtt = Some(Duration::from_micros(300 + (i % 5000) as u64));
            m.record_probe(gen, &l, &r, true);
            let res = Resolution {
                addresses: vec![ip.into()],
                literal: true,
                pinned: false,
                lookup_time: Duration::ZERO,
                ttl: None,
                failure: None,
                srv: vec![],
                naptr: vec![],
            };
            m.record_dns(gen, &l, &res);
        }
    }
}
