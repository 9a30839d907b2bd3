//! `/metrics` of a daemon with N targets, rendered in-process: time, bytes and
//! bytes per target, for each `--rtt-histogram` mode, and what the store holds
//! per target and how long filling it took (the probes' recording path). `cargo bench --bench metrics_render [TARGETS]` (default 100,000;
//! filled like the daemon of bench/daemon_scale.sh: 4 targets per trunk,
//! IP-literal gateways). Best of 3 renders; the HTTP transfer is not included
//! (`daemon_scale.sh` measures the endpoint end to end). Each mode runs in a
//! child process of its own, so its RSS column is its store's.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use trunkprobe::checks::path::ip_identifiers;
use trunkprobe::checks::{lint, Finding};
use trunkprobe::metrics::{Metrics, RttHistogram, TargetLabels};
use trunkprobe::outcome::MtuResult;
use trunkprobe::outcome::{blank_result, Outcome, TargetResult};
use trunkprobe::resolve::Resolution;
use trunkprobe::sip::message::parse_response;
use trunkprobe::trunk::{Gateway, Transport, Trunk};

/// The daemon's allocator, so the RSS column is what `serve` would hold,
/// counting the bytes asked of it.
#[global_allocator]
static GLOBAL: Counting = Counting(AtomicUsize::new(0));

struct Counting(AtomicUsize);

// SAFETY: every call is passed to mimalloc as it came.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.fetch_add(layout.size(), Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.fetch_sub(layout.size(), Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.0.fetch_add(layout.size(), Relaxed);
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.0.fetch_add(new_size, Relaxed);
        self.0.fetch_sub(layout.size(), Relaxed);
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

/// Bytes allocated and not freed.
fn heap() -> usize {
    GLOBAL.0.load(Relaxed)
}

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
        "| mode | targets | fill ms | render ms (best of 3) | MB | bytes per target | store heap bytes per target | store RSS bytes per target |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
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
/// last two columns are, per target, the bytes the fill left allocated (what
/// the store holds) and the growth of this process's RSS (`/proc/self/statm`)
/// over the fill (the same with the allocator's overhead and slack).
fn run(name: &str, mode: RttHistogram, n: usize) {
    let m = Metrics::with_rtt_histogram(None, mode);
    let mut plan = plan(n);
    let (rss_before, heap_before) = (rss(), heap());
    let t = Instant::now();
    fill(&m, &mut plan);
    let fill_time = t.elapsed();
    let store = rss().saturating_sub(rss_before);
    let store_heap = heap().saturating_sub(heap_before);
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
        "| {name} | {n} | {:.0} | {:.0} | {:.1} | {} | {} | {} |",
        fill_time.as_secs_f64() * 1000.0,
        best.as_secs_f64() * 1000.0,
        bytes as f64 / 1e6,
        bytes / n.max(1),
        store_heap / n.max(1),
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

/// What the daemon of bench/daemon_scale.sh would record for `n` UDP targets,
/// four per trunk, built before the store is measured (the daemon holds these
/// outside the store): its trunks, with their lint plus `ip_identifiers`
/// findings; each gateway an IP literal.
struct Plan {
    trunks: Vec<(Trunk, Vec<Finding>)>,
    /// Labels and address of each target, by trunk.
    targets: Vec<Vec<(TargetLabels, IpAddr)>>,
    /// Filled in by [`fill`] (reserved here so the store's bytes are the store's).
    gens: Vec<u64>,
    lookup: Resolution,
    answer: TargetResult,
    ladder: MtuResult,
}

const PORT: u16 = 45060;
const PER_TRUNK: usize = 4;

fn plan(n: usize) -> Plan {
    // As bench/daemon_scale.sh's JSON, field by field (parsing it would leave
    // freed memory that the store's growth then reuses unseen).
    let trunks = (0..n.div_ceil(PER_TRUNK)).map(|t| {
        let mut trunk = Trunk::with_defaults(format!("bench trunk {t}"));
        trunk.id = Some(format!("bench{t:06}"));
        trunk.ip_identifiers = vec!["127.0.0.0/8".into()];
        trunk.gateways = (t * PER_TRUNK..n.min(t * PER_TRUNK + PER_TRUNK))
            .map(|i| Gateway {
                address: address(i).to_string(),
                port: PORT.into(),
                priority: 1,
            })
            .collect();
        trunk
    });
    let mut plan = Plan {
        trunks: Vec::new(),
        targets: Vec::new(),
        gens: Vec::with_capacity(n.div_ceil(PER_TRUNK)),
        lookup: Resolution {
            addresses: vec![],
            literal: true,
            pinned: false,
            lookup_time: Duration::ZERO,
            ttl: None,
            failure: None,
            srv: vec![],
            naptr: vec![],
        },
        answer: blank_result(None, PORT, Transport::Udp, Outcome::Ok),
        ladder: MtuResult::new(
            SocketAddr::from(([127, 0, 0, 1], PORT)),
            vec![],
            Some(65535),
            None,
        ),
    };
    for trunk in trunks {
        let id = trunk.id.clone().expect("id");
        let mut targets = Vec::new();
        for gw in &trunk.gateways {
            let ip: IpAddr = gw.address.parse().expect("IP literal");
            let addr = format!("{ip}:{PORT}");
            let l = TargetLabels::new(&id, trunk.label(), &addr, &addr, "udp");
            targets.push((l, ip));
        }
        let gws: Vec<(&str, &[IpAddr])> = trunk
            .gateways
            .iter()
            .zip(&targets)
            .map(|(gw, (_, ip))| (gw.address.as_str(), std::slice::from_ref(ip)))
            .collect();
        let mut findings = lint(&trunk);
        findings.extend(ip_identifiers(&trunk, &gws));
        plan.trunks.push((trunk, findings));
        plan.targets.push(targets);
    }
    // A 200 OK whose Via has no `received`, as bench/responder.py sends: the
    // egress is seen.
    let a = &mut plan.answer;
    a.status_code = Some(200);
    a.response = Some(
        parse_response(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("response"),
    );
    a.local = Some(SocketAddr::from(([127, 0, 0, 1], 40000)));
    plan.ladder.largest_answered = Some(4000);
    plan.ladder.invite_bytes = Some(1300);
    plan
}

/// Records `plan` as the daemon does in its first minutes: each gateway's
/// lookup, the trunk's info and findings, two answered probes per target (as
/// the intervals go round) and one UDP size ladder run.
fn fill(m: &Metrics, plan: &mut Plan) {
    let gens = &mut plan.gens;
    for ((trunk, findings), targets) in plan.trunks.iter().zip(&plan.targets) {
        let id = trunk.id.as_deref().expect("id");
        let gen = m.track_trunk(id);
        for (l, ip) in targets {
            plan.lookup.addresses.clear();
            plan.lookup.addresses.push(*ip);
            m.record_dns(gen, l, &plan.lookup);
        }
        m.record_trunk(gen, id, trunk, findings);
        gens.push(gen);
    }
    let gens = &plan.gens;
    for round in 0..2 {
        let mut i = 0;
        for (gen, targets) in gens.iter().zip(&plan.targets) {
            for (l, ip) in targets {
                let r = &mut plan.answer;
                r.ip = Some(*ip);
                r.rtt = Some(Duration::from_micros(300 + ((i + round) % 5000) as u64));
                m.record_probe(*gen, l, r, true);
                i += 1;
            }
        }
    }
    for (gen, targets) in gens.iter().zip(&plan.targets) {
        for (l, ip) in targets {
            plan.ladder.target = SocketAddr::new(*ip, PORT);
            m.record_mtu(*gen, l, &plan.ladder);
        }
    }
}

/// The address of target `i`, over 127.1.0.0 upwards as in bench/daemon_scale.sh.
fn address(i: usize) -> Ipv4Addr {
    let a = 1 + i / 65024;
    let (b, c) = ((i % 65024) / 254, 1 + (i % 65024) % 254);
    Ipv4Addr::new(127, a as u8, b as u8, c as u8)
}
