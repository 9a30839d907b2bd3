//! The UDP fragmentation check (`check --mtu`): the size ladder on every UDP
//! target that answered, a TCP probe of the same address when large messages
//! were lost, and the findings against the INVITE Bolna would send.
//!
//! [`mtu_ladder`] is the reusable unit (one target, no trunk needed); the daemon
//! can call it on its own schedule. [`run_ladders`] adds ladders to a `check` report.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{evaluate, HealthyCodes, Outcome, Report};
use crate::checks::mtu::{estimate_invite, findings, MtuResult, TcpFallback, DEFAULT_SIZES};
use crate::transport::{self, ladder, ExchangeConfig, Target};
use crate::trunk::{Transport, Trunk};

/// Deadline of one rung: T1 retransmissions at 0, 0.5 and 1.5 s fit in it.
pub const DEFAULT_RUNG_TIMEOUT: Duration = Duration::from_secs(2);

/// Ladders run at once in [`run_ladders`] (each is sequential inside).
const LADDERS_IN_FLIGHT: usize = 8;

/// How to run the ladder.
#[derive(Debug, Clone)]
pub struct MtuConfig {
    /// Total message sizes, smallest first.
    pub sizes: Vec<usize>,
    /// Deadline of each rung's transaction.
    pub rung_timeout: Duration,
    /// User agent and extra headers of the rungs; its timeout bounds the TCP fallback probe.
    pub exchange: ExchangeConfig,
    /// Final codes that count as `ok` for the TCP fallback probe.
    pub healthy: HealthyCodes,
    /// Probe the same address over TCP when UDP lost messages.
    pub tcp_fallback: bool,
}

impl MtuConfig {
    /// The default ladder (600 to 4000 bytes), rungs of at most 2 s (less when
    /// the probe timeout is shorter), TCP fallback on.
    pub fn new(exchange: ExchangeConfig, healthy: HealthyCodes) -> MtuConfig {
        MtuConfig {
            sizes: DEFAULT_SIZES.to_vec(),
            rung_timeout: exchange.timeout.min(DEFAULT_RUNG_TIMEOUT),
            exchange,
            healthy,
            tcp_fallback: true,
        }
    }
}

/// Runs the size ladder against one UDP target and, when large messages were
/// lost, probes the same address and port over TCP. `invite_bytes` is left unset
/// (it depends on the trunk; see [`crate::checks::mtu::estimate_invite`]).
pub async fn mtu_ladder(target: &Target, config: &MtuConfig) -> MtuResult {
    let udp = Target {
        transport: Transport::Udp,
        ..target.clone()
    };
    let run = ladder::run(&udp, &config.exchange, &config.sizes, config.rung_timeout).await;
    let mut result = MtuResult::new(udp.addr, run.rungs, run.path_mtu, run.pmtu_discovery);
    if config.tcp_fallback && result.wants_tcp_fallback() {
        let tcp = Target {
            transport: Transport::Tcp,
            ..udp
        };
        let probed = evaluate(
            transport::exchange(&tcp, &config.exchange).await,
            &config.healthy,
        );
        result.tcp_fallback = Some(TcpFallback {
            outcome: probed.outcome,
            status_code: probed.status_code,
            reason: probed.reason,
            rtt: probed.rtt,
        });
    }
    result
}

/// Runs the ladder on every UDP target of `report` that answered its OPTIONS,
/// stores each result on the target (`mtu`), adds the findings to its trunk and
/// summarises again. `trunks` are the trunks `report` was made from, in order.
pub async fn run_ladders(report: &mut Report, trunks: &[Trunk], config: &MtuConfig) {
    let started = std::time::Instant::now();
    let limit = Arc::new(Semaphore::new(LADDERS_IN_FLIGHT));
    let mut jobs: JoinSet<((usize, usize, usize), MtuResult)> = JoinSet::new();
    for (ti, t) in report.trunks.iter().enumerate() {
        for (gi, g) in t.gateways.iter().enumerate() {
            for (ai, r) in g.targets.iter().enumerate() {
                let answered = matches!(r.outcome, Outcome::Ok | Outcome::SipError);
                let (Some(ip), Transport::Udp, true) = (r.ip, r.transport, answered) else {
                    continue;
                };
                let target = Target {
                    host: g.host.as_str().into(),
                    addr: std::net::SocketAddr::new(ip, r.port),
                    transport: Transport::Udp,
                };
                let config = config.clone();
                let limit = limit.clone();
                jobs.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    ((ti, gi, ai), mtu_ladder(&target, &config).await)
                });
            }
        }
    }
    let mut done = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        if let Ok(item) = joined {
            done.push(item);
        }
    }
    done.sort_by_key(|(k, _)| *k);
    for ((ti, gi, ai), mut result) in done {
        let trunk_report = &mut report.trunks[ti];
        let gateway = &trunk_report.gateways[gi];
        if let Some(trunk) = trunks.get(ti) {
            let invite = estimate_invite(trunk, &gateway.host, result.target.port());
            result.invite_bytes = Some(invite.bytes);
            for f in findings(&result, invite) {
                if !trunk_report.findings.contains(&f) {
                    trunk_report.findings.push(f);
                }
            }
            trunk_report
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        trunk_report.gateways[gi].targets[ai].mtu = Some(result);
    }
    report.duration += started.elapsed();
    report.summarise();
}
