//! Per-probe CPU of the SIP code every UDP probe runs: stamping a request from
//! its template (against building it with rsip each time), fresh transaction
//! ids, and parsing the answer. `cargo bench --bench sip_hot_path [FILE]`
//! (default: the SIPp 200 OK fixture). Microseconds per call, best of 5 rounds;
//! the end-to-end numbers against SIPp are `bench/throughput.sh`'s.

use std::hint::black_box;
use std::time::Instant;

use trunkprobe::sip::{
    build_options, parse_response, OptionsSpec, OptionsTemplate, TransactionIds,
};
use trunkprobe::trunk::Transport;

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sip/sipp_200_ok.sip"
            )
            .into()
        });
    let Ok(answer) = std::fs::read(&path) else {
        eprintln!("cannot read {path}");
        std::process::exit(2);
    };
    let spec = OptionsSpec {
        target_host: "127.0.0.1".into(),
        target_port: 5060,
        transport: Transport::Udp,
        local: "127.0.0.1:40000".parse().expect("an address"),
        user_agent: "trunkprobe/0.1.0".into(),
        extra_headers: vec![],
    };
    let template = OptionsTemplate::new(&spec);
    let mut rng = rand::rng();
    let ids = TransactionIds::generate(&mut rng);
    let n = 100_000;
    println!("| step | µs per call |\n| --- | ---: |");
    let rows = [
        (
            "TransactionIds::generate",
            per_call(n, || {
                black_box(TransactionIds::generate(&mut rng));
            }),
        ),
        (
            "build_options (rsip)",
            per_call(n, || {
                black_box(build_options(&spec, black_box(&ids)));
            }),
        ),
        (
            "OptionsTemplate::render",
            per_call(n, || {
                black_box(template.render(black_box(&ids)));
            }),
        ),
        (
            "parse_response",
            per_call(n, || {
                let _ = black_box(parse_response(black_box(&answer)));
            }),
        ),
    ];
    for (step, us) in rows {
        println!("| {step} | {us:.2} |");
    }
}
