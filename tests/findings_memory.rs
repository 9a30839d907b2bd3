//! What the daemon's per-trunk findings (`serve::findings::TrunkFindings`) keep
//! at scale: 25,000 trunks × 4 IP-literal gateways, each target answering OPTIONS
//! with a 200 without a body (bench/responder.py), filled the way the scheduler
//! does (`observe_addresses` per gateway, `observe_reply` per target, then
//! `observe_mtu` per target for a clean UDP size ladder). A counting allocator
//! reports the live bytes each step leaves behind; the bounds pin them so a
//! regression shows. `cargo test --test findings_memory -- --nocapture` prints them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};

use trunkprobe::outcome::MtuResult;
use trunkprobe::outcome::{blank_result, Outcome, TargetResult};
use trunkprobe::serve::findings::TrunkFindings;
use trunkprobe::sip::message::parse_response;
use trunkprobe::transport::ladder::{Rung, RungStatus};
use trunkprobe::trunk::{Transport, Trunk};

/// Requested bytes and blocks alive (what heaptrack reports as "consumed"; the
/// allocator's own rounding and headers come on top).
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
            LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE_BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE_BYTES.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> (isize, isize) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

const TRUNKS: usize = 25_000;
const GATEWAYS: usize = 4;
const TARGETS: usize = TRUNKS * GATEWAYS;
const PORT: u16 = 5060;

/// Live bytes per target the replies and gateway addresses may keep.
/// (404 B with `BTreeMap`s keyed by `String`; 64 B as sorted `Vec`s of compact entries.)
const MAX_REPLIES_AND_ADDRESSES_PER_TARGET: isize = 80;
/// Live bytes per target a clean ladder may keep: nothing, it has no finding
/// (152 B when an empty list was kept per target).
const MAX_CLEAN_LADDER_PER_TARGET: isize = 0;
/// Live bytes per target a ladder with one finding may keep (1,375 B today, most
/// of it the finding's own strings and JSON patch; 1,751 B with a `Vec` per target).
const MAX_LOSSY_LADDER_PER_TARGET: isize = 1500;

/// bench/responder.py's answer: a 200 without a body or Content-Type.
fn answered(ip: IpAddr) -> TargetResult {
    let msg = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 10.255.0.1:40000;branch=z9hG4bKabcdefghijklmnop0123;rport=40000\r\n\
        From: <sip:trunkprobe@10.255.0.1>;tag=fromtag012345678\r\n\
        To: <sip:10.0.0.1:5060>;tag=bench\r\n\
        Call-ID: callid0123456789callid0123456789\r\n\
        CSeq: 42 OPTIONS\r\n\
        Server: trunkprobe-bench-responder\r\n\
        Content-Length: 0\r\n\r\n";
    let mut r = blank_result(Some(ip), PORT, Transport::Udp, Outcome::Ok);
    r.response = Some(parse_response(msg.as_bytes()).unwrap());
    r.status_code = Some(200);
    r
}

/// A ladder answered up to `answered` bytes, larger sizes lost.
fn ladder(addr: SocketAddr, answered: usize) -> MtuResult {
    let rungs = [600, 900, 1200, 1400]
        .into_iter()
        .map(|size| Rung {
            size,
            bytes: size,
            status: if size <= answered {
                RungStatus::Answered
            } else {
                RungStatus::Lost
            },
            status_code: (size <= answered).then_some(200),
            rtt: None,
            retransmissions: 0,
            detail: None,
        })
        .collect();
    MtuResult::new(addr, rungs, Some(1500), None)
}

fn gateway_ip(trunk: usize, gw: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (trunk * GATEWAYS + gw) as u32))
}

fn per_target(before: (isize, isize), after: (isize, isize)) -> (f64, f64, isize, isize) {
    let bytes = after.0 - before.0;
    let blocks = after.1 - before.1;
    (
        bytes as f64 / TARGETS as f64,
        blocks as f64 / TARGETS as f64,
        bytes,
        blocks,
    )
}

#[test]
fn findings_of_100k_targets_stay_small() {
    let mut all: Vec<TrunkFindings> = (0..TRUNKS)
        .map(|t| {
            TrunkFindings::new(
                Trunk::with_defaults(format!("t{t}")),
                Vec::new(),
                true,
                true,
            )
        })
        .collect();
    // Built outside the measured steps: the daemon's key is its target label.
    let keys: Vec<Vec<String>> = (0..TRUNKS)
        .map(|t| {
            (0..GATEWAYS)
                .map(|g| SocketAddr::new(gateway_ip(t, g), PORT).to_string())
                .collect()
        })
        .collect();
    let template = answered(gateway_ip(0, 0));

    let start = live();
    for (t, f) in all.iter_mut().enumerate() {
        for g in 0..GATEWAYS {
            let ip = gateway_ip(t, g);
            assert!(f.observe_addresses(&ip.to_string(), &[ip]));
        }
    }
    let addressed = live();
    for (t, f) in all.iter_mut().enumerate() {
        for (g, key) in keys[t].iter().enumerate() {
            let mut r = template.clone();
            r.ip = Some(gateway_ip(t, g));
            assert!(f.observe_reply(key, &r));
            assert!(
                !f.observe_reply(key, &r),
                "the same reply again changes nothing"
            );
        }
    }
    let replied = live();
    for (t, f) in all.iter_mut().enumerate() {
        for (g, key) in keys[t].iter().enumerate() {
            let addr = SocketAddr::new(gateway_ip(t, g), PORT);
            f.observe_mtu(key, &addr.ip().to_string(), &mut ladder(addr, 1400));
        }
    }
    let laddered = live();
    // Then every path loses large messages: a finding per target, told apart by address.
    for (t, f) in all.iter_mut().enumerate() {
        for (g, key) in keys[t].iter().enumerate() {
            let addr = SocketAddr::new(gateway_ip(t, g), PORT);
            f.observe_mtu(key, &addr.ip().to_string(), &mut ladder(addr, 900));
        }
    }
    let lossy = live();

    let report = |what: &str, (b, k, total, blocks): (f64, f64, isize, isize)| {
        println!(
            "{what:<28} {:>10.1} MB {b:>7.1} B/target {k:>5.2} blocks/target ({blocks} blocks)",
            total as f64 / 1e6
        );
    };
    println!("{TRUNKS} trunks x {GATEWAYS} gateways = {TARGETS} targets, live requested bytes:");
    report("observe_addresses", per_target(start, addressed));
    report("observe_reply", per_target(addressed, replied));
    report("replies + addresses", per_target(start, replied));
    report("observe_mtu (clean ladder)", per_target(replied, laddered));
    report("observe_mtu (large lost)", per_target(replied, lossy));

    // What the findings say: every target answered without SDP and loses large messages.
    let f = all[0].all();
    assert_eq!(f.len(), 1 + GATEWAYS, "{f:?}");
    assert!(
        f.iter().any(|f| f.message.contains("carried no SDP")),
        "{f:?}"
    );

    let (b, ..) = per_target(start, replied);
    assert!(
        b <= MAX_REPLIES_AND_ADDRESSES_PER_TARGET as f64,
        "replies and addresses keep {b:.1} B per target"
    );
    let (b, ..) = per_target(replied, laddered);
    assert!(
        b <= MAX_CLEAN_LADDER_PER_TARGET as f64,
        "clean ladders keep {b:.1} B per target"
    );
    let (b, ..) = per_target(replied, lossy);
    assert!(
        b <= MAX_LOSSY_LADDER_PER_TARGET as f64,
        "lossy ladders keep {b:.1} B per target"
    );
    drop(all);
}
