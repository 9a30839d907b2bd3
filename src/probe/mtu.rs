//! The UDP size ladder (fragmentation / path MTU check) on one target: the
//! rungs over the ladder's socket and, when large messages were lost, a TCP
//! probe of the same address. `check --mtu` runs it on every UDP target that
//! answered, `serve` on its own schedule.

use std::time::Duration;

use super::Prober;
use crate::outcome::{HealthyCodes, MtuResult, TcpFallback};
use crate::sip::padding::SizeList;
use crate::transport::{ladder, ExchangeConfig, Target};
use crate::trunk::Transport;

/// Deadline of one rung: T1 retransmissions at 0, 0.5 and 1.5 s fit in it.
pub const DEFAULT_RUNG_TIMEOUT: Duration = Duration::from_secs(2);

/// Ladders at once in `check --mtu` (each is sequential inside): the user
/// waits for the report, so more run side by side.
pub const CHECK_LADDERS_IN_FLIGHT: usize = 8;

/// Ladders at once in `serve`: they run beside the scheduled probes, whose
/// timing they must not disturb, and nobody waits for them.
pub const SERVE_LADDERS_IN_FLIGHT: usize = 4;

/// How to run the ladder.
#[derive(Debug, Clone)]
pub struct MtuConfig {
    /// Total message sizes, smallest first.
    pub sizes: SizeList,
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
            sizes: SizeList::default(),
            rung_timeout: exchange.timeout.min(DEFAULT_RUNG_TIMEOUT),
            exchange,
            healthy,
            tcp_fallback: true,
        }
    }

    /// The same with `--mtu-sizes` when given.
    pub fn with_sizes(mut self, sizes: Option<&SizeList>) -> MtuConfig {
        if let Some(sizes) = sizes {
            self.sizes = sizes.clone();
        }
        self
    }
}

/// Runs the size ladder against one UDP target and, when large messages were
/// lost, probes the same address and port over TCP. `invite_bytes` is left unset
/// (it depends on the trunk; see [`crate::sip::invite::estimate_invite`]).
pub async fn mtu_ladder(target: &Target, config: &MtuConfig) -> MtuResult {
    let udp = Target {
        transport: Transport::Udp,
        ..target.clone()
    };
    let run = ladder::run(&udp, &config.exchange, &config.sizes.0, config.rung_timeout).await;
    let mut result = MtuResult::new(udp.addr, run.rungs, run.path_mtu, run.pmtu_discovery);
    if config.tcp_fallback && result.wants_tcp_fallback() {
        let tcp = Target {
            transport: Transport::Tcp,
            ..udp
        };
        let probed = Prober::new(config.exchange.clone(), config.healthy.clone())
            .probe(&tcp)
            .await;
        result.tcp_fallback = Some(TcpFallback {
            outcome: probed.outcome,
            status_code: probed.status_code,
            reason: probed.reason,
            rtt: probed.rtt,
        });
    }
    result
}
