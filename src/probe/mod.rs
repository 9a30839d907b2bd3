//! Orchestration of probes, the one way trunkprobe probes a target: a
//! [`Prober`] sends OPTIONS over the shared UDP socket for UDP targets and over
//! a connection of its own for TCP/TLS, and [`fan_out`] runs many such jobs
//! with bounded concurrency, results in input order. `check`, the origination
//! check, the size ladders, the daemon's scheduler and `/probe` all use them.
//!
//! UDP goes over one unconnected socket (a [`UdpProber`]): ICMP errors still
//! end a probe as refused, an answer from another address than the one probed
//! is seen and reported instead of being dropped by a connected socket, and
//! thousands of targets cost one file descriptor.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::outcome::{evaluate, HealthyCodes, TargetResult};
use crate::transport::{self, Exchange, ExchangeConfig, Target, UdpProber};
use crate::trunk::Transport;

pub mod call;
pub mod credentials;
pub mod mtu;
pub mod origination;

pub use mtu::{mtu_ladder, MtuConfig};

/// How probes are sent and judged, shared by `check`, `serve` and the origination check.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Skip the account-level auth checks (for a trunk described by flags,
    /// which cannot say how it authenticates).
    pub skip_auth_checks: bool,
}

/// Probes targets: UDP over one shared socket per address family, TCP and TLS
/// over a new connection per probe. Cheap to clone; clones share the socket.
#[derive(Clone)]
pub struct Prober {
    udp: Arc<UdpProber>,
    exchange: ExchangeConfig,
    healthy: HealthyCodes,
}

impl Prober {
    pub fn new(exchange: ExchangeConfig, healthy: HealthyCodes) -> Prober {
        Prober {
            udp: Arc::new(UdpProber::new(exchange.clone())),
            exchange,
            healthy,
        }
    }

    /// The settings' exchange and healthy codes.
    pub fn from_settings(settings: &ProbeSettings) -> Prober {
        Prober::new(settings.exchange.clone(), settings.healthy.clone())
    }

    pub fn exchange_config(&self) -> &ExchangeConfig {
        &self.exchange
    }

    pub fn healthy(&self) -> &HealthyCodes {
        &self.healthy
    }

    /// One OPTIONS exchange with `target`: the raw evidence.
    pub async fn exchange(&self, target: &Target) -> Exchange {
        self.exchange_within(target, self.exchange.timeout).await
    }

    /// [`Prober::exchange`] with its own deadline.
    pub async fn exchange_within(&self, target: &Target, timeout: Duration) -> Exchange {
        match target.transport {
            Transport::Udp => self.udp.exchange_within(target, timeout).await,
            _ if timeout == self.exchange.timeout => {
                transport::exchange(target, &self.exchange).await
            }
            _ => {
                let config = ExchangeConfig {
                    timeout,
                    ..self.exchange.clone()
                };
                transport::exchange(target, &config).await
            }
        }
    }

    /// Probes `target` once: the exchange and its outcome (no cause or fix yet).
    pub async fn probe(&self, target: &Target) -> TargetResult {
        evaluate(self.exchange(target).await, &self.healthy)
    }

    /// [`Prober::probe`] with its own deadline.
    pub async fn probe_within(&self, target: &Target, timeout: Duration) -> TargetResult {
        evaluate(self.exchange_within(target, timeout).await, &self.healthy)
    }
}

/// Runs `job` on every item, at most `limit` at once, each on a task of its
/// own; the results come back in the order of `items`. A job that panics is
/// left out (the panic is reported by tokio).
pub async fn fan_out<T, R, F, Fut>(items: Vec<T>, limit: usize, job: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limit.max(1)));
    let mut jobs = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let slots = slots.clone();
        let run = job(item);
        jobs.spawn(async move {
            let _slot = slots.acquire_owned().await;
            (i, run.await)
        });
    }
    let mut done = Vec::with_capacity(jobs.len());
    while let Some(joined) = jobs.join_next().await {
        if let Ok(item) = joined {
            done.push(item);
        }
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_keeps_input_order_and_the_bound() {
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let items: Vec<u64> = (0..40).collect();
        let out = fan_out(items, 3, |i| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                // Later items finish first: order must come from the input.
                tokio::time::sleep(Duration::from_millis(40 - i)).await;
                running.fetch_sub(1, SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(out, (0..40).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    }
}
