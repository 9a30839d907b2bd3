//! `trunkprobe ping`: OPTIONS like `ping(8)`. One line per reply, then a summary
//! with loss and min/avg/max/mdev round-trip times and the achieved rate.
//!
//! Every request is its own transaction (a fresh branch and Call-ID), matched
//! exactly as in `check`. Over UDP all requests share one socket and its
//! transaction table ([`UdpProber`]); over TCP and TLS each opens its own
//! connection, or with `--reuse-connection` all share one ([`StreamProber`]),
//! reopened when it ends. `-i 0` with `--concurrency N` keeps N transactions in
//! flight for as fast as possible.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::error::{Error, Result};
use crate::outcome::{evaluate, HealthyCodes, Outcome, TargetResult};
use crate::resolve::GatewayResolver;
use crate::transport::{exchange, Exchange, ExchangeConfig, StreamProber, Target, UdpProber};
use crate::trunk::Transport;

/// The gateway `ping` sends to (`sip:host[:port][;transport=...]`, `sips:` for TLS).
pub use crate::sip::GatewayUri as PingUri;

/// How to ping.
#[derive(Debug, Clone)]
pub struct PingOptions {
    /// Requests to send; `None` until interrupted.
    pub count: Option<u64>,
    /// Pause between sends; zero sends as fast as `concurrency` allows.
    pub interval: Duration,
    pub concurrency: usize,
    pub quiet: bool,
    /// Append `call-id=...` to each reply line.
    pub show_call_id: bool,
    /// TCP/TLS: run every request over one connection (reopened when it ends)
    /// instead of a connection each. No effect on UDP.
    pub reuse_connection: bool,
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
    /// `--trace`: each exchange's messages after its reply line.
    pub trace: bool,
    /// `--pcap FILE`: every message to a capture, written as the replies come.
    pub pcap: Option<std::path::PathBuf>,
}

/// min/avg/max/mdev of the round-trip times kept as running figures, in
/// constant memory: a long `-i 0` run answers millions of requests, and a list
/// of every RTT grew by 16 bytes each (160 MB at ten million).
#[derive(Debug, Clone, Copy, Default)]
pub struct RttSummary {
    count: u64,
    min_ms: f64,
    max_ms: f64,
    /// Welford's running mean and sum of squared deviations: stable where
    /// ping(8)'s `mean(x²) − mean(x)²` cancels when the spread is tiny.
    mean_ms: f64,
    m2: f64,
}

impl RttSummary {
    pub fn add(&mut self, rtt: Duration) {
        let x = rtt.as_secs_f64() * 1000.0;
        if self.count == 0 {
            (self.min_ms, self.max_ms) = (x, x);
        } else {
            self.min_ms = self.min_ms.min(x);
            self.max_ms = self.max_ms.max(x);
        }
        self.count += 1;
        let delta = x - self.mean_ms;
        self.mean_ms += delta / self.count as f64;
        self.m2 += delta * (x - self.mean_ms);
    }

    /// Round-trip times added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// min, avg, max and mdev (ping(8)'s: the population standard deviation)
    /// in milliseconds; `None` before the first.
    pub fn summary(&self) -> Option<(f64, f64, f64, f64)> {
        (self.count > 0).then(|| {
            let mdev = (self.m2 / self.count as f64).max(0.0).sqrt();
            (self.min_ms, self.mean_ms, self.max_ms, mdev)
        })
    }
}

/// Running totals, printed as the summary.
#[derive(Debug, Clone, Default)]
pub struct PingStats {
    pub sent: u64,
    /// Final responses of any code.
    pub answered: u64,
    pub ok: u64,
    pub rtt: RttSummary,
    pub codes: BTreeMap<u16, u64>,
    pub failures: BTreeMap<&'static str, u64>,
    /// TCP/TLS connections established (connected, and for TLS the handshake
    /// done); `None` over UDP.
    pub connections: Option<u64>,
    /// Responses that answered no request: forged, late or duplicate ones, and
    /// those with a request's branch but not its Call-ID or CSeq.
    pub strays: u64,
    pub elapsed: Duration,
}

impl PingStats {
    pub fn lost(&self) -> u64 {
        self.sent - self.answered
    }

    /// min, avg, max and mean deviation of the round-trip times, in milliseconds.
    pub fn rtt_summary(&self) -> Option<(f64, f64, f64, f64)> {
        self.rtt.summary()
    }

    /// The summary block, as `ping(8)` prints it.
    pub fn render(&self, uri: &str) -> String {
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64();
        let loss = if self.sent == 0 {
            0.0
        } else {
            100.0 * self.lost() as f64 / self.sent as f64
        };
        let _ = writeln!(out, "--- {uri} ping statistics ---");
        let _ = writeln!(
            out,
            "{} requests sent, {} answered ({} ok), {} lost ({loss:.1}% loss), time {:.0} ms, rate {:.1}/s",
            self.sent,
            self.answered,
            self.ok,
            self.lost(),
            secs * 1000.0,
            if secs > 0.0 { self.sent as f64 / secs } else { 0.0 }
        );
        if !self.codes.is_empty() {
            let codes: Vec<String> = self.codes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            let _ = writeln!(out, "responses: {}", codes.join(" "));
        }
        if !self.failures.is_empty() {
            let f: Vec<String> = self
                .failures
                .iter()
                .map(|(k, n)| format!("{k}×{n}"))
                .collect();
            let _ = writeln!(out, "no answer: {}", f.join(" "));
        }
        if let Some(n) = self.connections {
            let _ = writeln!(out, "connections: {n} opened");
        }
        if self.strays > 0 {
            let _ = writeln!(
                out,
                "stray responses: {} (matched no request, not counted)",
                self.strays
            );
        }
        if let Some((min, avg, max, mdev)) = self.rtt_summary() {
            let _ = writeln!(
                out,
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
            );
        }
        out
    }
}

/// Runs `ping` and prints the summary; the exit code is 0 when any reply was
/// healthy, else 1.
pub async fn run_and_print(
    uri: &PingUri,
    raw: &str,
    resolver: &GatewayResolver,
    options: PingOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<u8> {
    let stats = run(uri, raw, resolver, options, stop).await?;
    print!("{}", stats.render(raw));
    Ok(if stats.ok > 0 { 0 } else { 1 })
}

/// Pings `uri` until `count` requests are done or `stop` resolves, printing as it goes.
pub async fn run(
    uri: &PingUri,
    raw: &str,
    resolver: &GatewayResolver,
    options: PingOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<PingStats> {
    let resolution = resolver.resolve(&uri.host, uri.transport).await;
    let Some(ip) = resolution.addresses.first().copied() else {
        let why = resolution.failure.map(|f| f.describe()).unwrap_or_default();
        return Err(Error::Usage(format!("cannot resolve {}: {why}", uri.host)));
    };
    let target = Target {
        host: uri.host.as_str().into(),
        addr: SocketAddr::new(ip, uri.port),
        transport: uri.transport,
    };
    if !options.quiet {
        println!("PING {raw} ({}) over {}", target.addr, uri.transport);
    }
    let mut capture = match &options.pcap {
        Some(path) => Some(crate::report::pcap::Capture::create(path)?),
        None => None,
    };
    let concurrency = options.concurrency.max(1);
    let prober = match uri.transport {
        Transport::Udp => Prober::SharedUdp(UdpProber::new(options.exchange.clone())),
        _ if options.reuse_connection => {
            Prober::SharedStream(StreamProber::new(target.clone(), options.exchange.clone()))
        }
        _ => Prober::PerRequest(options.exchange.clone()),
    };
    // In-flight probes are futures polled here, not spawned tasks: nothing to
    // schedule or allocate a task for, and a probe's reply wakes only this loop.
    let mut jobs = FuturesUnordered::new();
    let mut stats = PingStats {
        connections: (uri.transport != Transport::Udp).then_some(0),
        ..Default::default()
    };
    let started = Instant::now();
    let mut next_send = tokio::time::Instant::now();
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        let more = !stopping && options.count.is_none_or(|c| stats.sent < c);
        if !more && jobs.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut stop, if !stopping => stopping = true,
            Some((seq, result, call_id)) = jobs.next(), if !jobs.is_empty() => {
                let call_id: Option<String> = call_id;
                record(&mut stats, seq, &result, call_id.as_deref(), &options);
                if let Some(c) = &mut capture {
                    for m in result.messages.iter().flatten() {
                        c.sip(m)?;
                    }
                }
            }
            _ = wait_until(next_send), if more && jobs.len() < concurrency => {
                // Keep the cadence; after a stall, restart it from now. With no
                // interval, fill every free slot at once instead of one per wake-up.
                let now = tokio::time::Instant::now();
                next_send = (next_send + options.interval).max(now);
                let burst = if options.interval.is_zero() { concurrency - jobs.len() } else { 1 };
                for _ in 0..burst {
                    if options.count.is_some_and(|c| stats.sent >= c) {
                        break;
                    }
                    stats.sent += 1;
                    let seq = stats.sent;
                    let (target, prober) = (&target, &prober);
                    let healthy = &options.healthy;
                    let show_call_id = options.show_call_id;
                    jobs.push(async move {
                        let ex = prober.exchange(target).await;
                        let call_id = show_call_id
                            .then(|| ex.transaction.as_ref().map(|t| t.ids().call_id.clone()))
                            .flatten();
                        (seq, evaluate(ex, healthy), call_id)
                    });
                }
            }
        }
    }
    stats.elapsed = started.elapsed();
    stats.strays += prober.strays();
    if let (Some(c), Some(path)) = (capture, &options.pcap) {
        let n = c.finish()?;
        eprintln!("{n} SIP messages written to {}", path.display());
    }
    Ok(stats)
}

/// How `ping` sends its requests.
enum Prober {
    /// UDP: one socket shared by every request.
    SharedUdp(UdpProber),
    /// TCP/TLS with `--reuse-connection`: one connection shared by every request.
    SharedStream(StreamProber),
    /// TCP/TLS: a connection per request.
    PerRequest(ExchangeConfig),
}

impl Prober {
    async fn exchange(&self, target: &Target) -> Exchange {
        match self {
            Prober::SharedUdp(udp) => udp.exchange(target).await,
            Prober::SharedStream(stream) => stream.exchange().await,
            Prober::PerRequest(config) => exchange(target, config).await,
        }
    }

    /// Responses that matched no request in flight, beyond those counted by
    /// each transaction (a connection per request has no such responses: each
    /// belongs to its transaction).
    fn strays(&self) -> u64 {
        match self {
            Prober::SharedUdp(udp) => udp.strays(),
            Prober::SharedStream(stream) => stream.strays(),
            Prober::PerRequest(_) => 0,
        }
    }
}

/// Sleeps until `when`, or not at all when it has passed (a timer would round
/// up to the next millisecond tick and cap the rate near 1,000/s).
async fn wait_until(when: tokio::time::Instant) {
    if when > tokio::time::Instant::now() {
        tokio::time::sleep_until(when).await;
    }
}

/// `--trace`: the exchange's messages after its reply line.
fn print_trace(r: &TargetResult) {
    if let Some(wire) = &r.messages {
        let mut out = String::new();
        crate::report::trace::write_wire(&mut out, "  ", wire, crate::report::Style::detect());
        print!("{out}");
    }
}

fn record(
    stats: &mut PingStats,
    seq: u64,
    r: &TargetResult,
    call_id: Option<&str>,
    options: &PingOptions,
) {
    stats.strays += u64::from(r.stray_responses);
    if r.connect_time.is_some() {
        // Only the exchange that opened a connection carries its connect time.
        if let Some(n) = &mut stats.connections {
            *n += 1;
        }
    }
    match (r.status_code, r.rtt) {
        (Some(code), Some(rtt)) => {
            stats.answered += 1;
            stats.rtt.add(rtt);
            *stats.codes.entry(code).or_default() += 1;
            if r.outcome == Outcome::Ok {
                stats.ok += 1;
            }
            if !options.quiet {
                let reason = r.reason.as_deref().unwrap_or("");
                let mut retrans = if r.retransmissions > 0 {
                    format!(" retransmissions={}", r.retransmissions)
                } else {
                    String::new()
                };
                if let Some(id) = call_id {
                    let _ = write!(retrans, " call-id={id}");
                }
                println!(
                    "{code} {reason} from {}: seq={seq} time={:.3} ms{retrans}",
                    r.ip.map(|ip| SocketAddr::new(ip, r.port).to_string())
                        .unwrap_or_default(),
                    rtt.as_secs_f64() * 1000.0
                );
                if options.trace {
                    print_trace(r);
                }
            }
        }
        _ => {
            *stats.failures.entry(r.outcome.as_str()).or_default() += 1;
            if !options.quiet {
                println!("no answer: seq={seq} {}", r.outcome.as_str());
                if options.trace {
                    print_trace(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdev_matches_ping() {
        let mut stats = PingStats::default();
        assert_eq!(stats.rtt_summary(), None);
        for ms in [1, 2, 3] {
            stats.rtt.add(Duration::from_millis(ms));
        }
        let (min, avg, max, mdev) = stats.rtt_summary().unwrap();
        assert_eq!((min, avg, max), (1.0, 2.0, 3.0));
        assert!((mdev - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(stats.rtt.count(), 3);
    }

    /// The running figures agree with the ones computed from every value, and
    /// stay exact where the spread is tiny beside the mean.
    #[test]
    fn running_summary_matches_the_whole_list() {
        let rtts: Vec<Duration> = (0..10_000u64)
            .map(|i| Duration::from_nanos(20_000_000 + (i * 7919) % 1_000))
            .collect();
        let mut running = RttSummary::default();
        rtts.iter().for_each(|d| running.add(*d));
        let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let n = ms.len() as f64;
        let avg = ms.iter().sum::<f64>() / n;
        let var = ms.iter().map(|x| (x - avg) * (x - avg)).sum::<f64>() / n;
        let (min, mean, max, mdev) = running.summary().unwrap();
        assert_eq!(min, ms.iter().cloned().fold(f64::INFINITY, f64::min));
        assert_eq!(max, ms.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        assert!((mean - avg).abs() < 1e-9, "{mean} vs {avg}");
        assert!((mdev - var.sqrt()).abs() < 1e-9, "{mdev} vs {}", var.sqrt());
    }
}
