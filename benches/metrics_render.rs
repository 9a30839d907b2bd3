//! `/metrics` of a daemon with N targets, rendered in-process: time, bytes and
//! bytes per target, for each `--rtt-histogram` mode. `cargo bench --bench
//! metrics_render [TARGETS]` (default 100,000; 4 targets per trunk, IP-literal
//! gateways as in bench/daemon_scale.sh). Best of 3 renders; the HTTP transfer
//! is not included (`daemon_scale.sh` measures the endpoint end to end).

use std::hint::black_box;
use std::time::{Duration, Instant};

use trunkprobe::metrics::{Metrics, RttHistogram, TargetLabels};
use trunkprobe::probe::{blank_result, Outcome};
use trunkprobe::resolve::Resolution;
use trunkprobe::trunk::{Transport, Trunk};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!("| mode | targets | render ms (best of 3) | MB | bytes per target |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, mode) in [
        ("target", RttHistogram::Target),
        ("trunk", RttHistogram::Trunk),
        ("off", RttHistogram::Off),
    ] {
        let m = Metrics::with_rtt_histogram(None, mode);
        fill(&m, n);
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
            "| {name} | {n} | {:.0} | {:.1} | {} |",
            best.as_secs_f64() * 1000.0,
            bytes as f64 / 1e6,
            bytes / n.max(1)
        );
    }
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
