//! `trunkprobe serve`: the monitoring daemon an operator leaves running. It
//! keeps the trunk list fresh (API refresh, file re-read on SIGHUP), probes every
//! target on its trunk's schedule, and serves Prometheus metrics over HTTP.

pub mod findings;
pub mod fleet;
pub mod health;
pub mod http;
pub mod ladders;
pub mod origination;
pub mod shard;
pub mod target;
pub mod test_calls;
pub mod wheel;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::checks::origination::OriginationPlan;
use crate::error::{Error, Result};
use crate::metrics::{Metrics, RttHistogram, SourceErrorReason};
use crate::outcome::HealthyCodes;
use crate::probe::mtu::SERVE_LADDERS_IN_FLIGHT;
use crate::probe::{MtuConfig, Prober};
use crate::resolve::GatewayResolver;
use crate::source::Source;
use crate::transport::ExchangeConfig;

use fleet::{Ctx, Fleet};
use health::Hysteresis;
use ladders::MtuSchedule;
use shard::Shard;

/// How `serve` probes TCP and TLS targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TcpConnections {
    /// One connection per target, opened at its first probe and kept for every
    /// later one (reopened when the peer closes or resets it), as Asterisk and
    /// Kamailio qualify: one handshake instead of one per probe.
    #[default]
    Kept,
    /// A new connection (and TLS handshake) for every probe: each probe looks
    /// like a new caller.
    PerProbe,
}

/// Validated settings of `serve`.
pub struct Settings {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    pub source: Source,
    pub resolver: GatewayResolver,
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
    pub concurrency: usize,
    pub skip_auth_checks: bool,
    pub refresh: Duration,
    pub hysteresis: Hysteresis,
    pub shard: Shard,
    pub location: Option<String>,
    /// Granularity of the RTT histogram.
    pub rtt_histogram: RttHistogram,
    /// The ladder's configuration and interval; `None` when off.
    pub mtu: Option<(MtuConfig, Duration)>,
    pub origination: OriginationPlan,
    pub origination_interval: Duration,
    pub dns_min_interval: Duration,
    /// Scheduled test calls and registration checks.
    pub schedule: test_calls::Schedule,
    /// `/probe?module=call` is allowed.
    pub allow_probe_calls: bool,
    /// `--history-limit`: probes kept for the status page's "recent probes" (0: none).
    pub history_limit: usize,
    /// `--tcp-connections`.
    pub tcp_connections: TcpConnections,
    /// `--tcp-keepalive`: the CRLF ping on an idle kept connection; `None` off.
    pub tcp_keepalive: Option<Duration>,
}

/// Entry point of `trunkprobe serve`: binds `--listen`, runs until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> Result<u8> {
    let listen = settings.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Io {
            context: format!("cannot listen on {listen}"),
            source,
        })?;
    let io = |source| Error::Io {
        context: "cannot install signal handlers".into(),
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    };
    run(settings, listener, shutdown).await?;
    Ok(0)
}

/// Runs the daemon on `listener` until `shutdown` completes; then stops
/// scheduling, lets in-flight probes finish (bounded by the probe timeout) and returns.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::with_rtt_histogram(
        settings.location.as_deref(),
        settings.rtt_histogram,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let board = Arc::new(crate::report::status::StatusBoard::new(
        settings.history_limit,
        settings.exchange.timeout,
    ));
    let mut settings = settings;
    // The recent probes' logs show their SIP messages.
    settings.exchange.trace = board.wants_traces();
    let prober = Prober::new(settings.exchange.clone(), settings.healthy.clone());
    // The loaded trunk list, for /sd, the test calls and the registration checks.
    let (trunks_tx, trunks_rx) = watch::channel(None);
    let state = Arc::new(http::AppState {
        trunks: trunks_rx.clone(),
        metrics: metrics.clone(),
        board: board.clone(),
        loaded: false.into(),
        stopping: false.into(),
        resolver: settings.resolver.clone(),
        prober: prober.clone(),
        location: settings.location.clone(),
        probe_calls: settings.allow_probe_calls.then(|| http::ProbeCalls {
            duration: settings.schedule.call_duration,
            slot: Semaphore::new(1),
            stop: stop_rx.clone(),
        }),
    });
    let addr = listener.local_addr().ok();
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(
        axum::serve(listener, http::router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .into_future(),
    );
    tracing::info!(listen = ?addr, shard = ?settings.shard, "trunkprobe serve started");

    let ctx = Arc::new(Ctx {
        metrics: metrics.clone(),
        board: board.clone(),
        kept: (settings.tcp_connections == TcpConnections::Kept).then_some(fleet::Kept {
            keepalive: settings.tcp_keepalive,
        }),
        resolver: settings.resolver.clone(),
        prober: prober.clone(),
        hysteresis: settings.hysteresis,
        shard: settings.shard,
        skip_auth_checks: settings.skip_auth_checks,
        dns_min_interval: settings.dns_min_interval,
        stop: stop_rx.clone(),
        mtu: settings.mtu.clone().map(|(config, interval)| MtuSchedule {
            config,
            interval,
            limit: Arc::new(Semaphore::new(SERVE_LADDERS_IN_FLIGHT)),
        }),
        started,
        first_probe_sent: false.into(),
        wheel: wheel::Wheel::start(stop_rx.clone(), settings.concurrency),
    });
    // Origination is prober-wide: shard 0 checks it.
    let (uris_tx, uris_rx) = watch::channel(None);
    let origination = (settings.origination != OriginationPlan::Off
        && settings.shard.reports_trunks())
    .then(|| {
        tokio::spawn(origination::origination_loop(
            ctx.clone(),
            settings.concurrency,
            settings.origination_interval,
            uris_rx,
        ))
    });
    // Test calls and registration checks follow the trunk list.
    let loops = Arc::new(test_calls::Loops {
        metrics: metrics.clone(),
        board: board.clone(),
        resolver: settings.resolver.clone(),
        exchange: settings.exchange.clone(),
        schedule: settings.schedule.clone(),
    });
    let call_loop = (settings.shard.reports_trunks()).then(|| {
        tokio::spawn(test_calls::call_loop(
            loops.clone(),
            trunks_rx.clone(),
            stop_rx.clone(),
        ))
    });
    let register_loop = (settings.shard.reports_trunks()).then(|| {
        tokio::spawn(test_calls::register_loop(
            loops.clone(),
            trunks_rx.clone(),
            stop_rx.clone(),
        ))
    });
    let mut fleet = Fleet::new(ctx);
    let mut hup = signal(SignalKind::hangup()).map_err(|source| Error::Io {
        context: "cannot install the SIGHUP handler".into(),
        source,
    })?;
    tokio::pin!(shutdown);
    let mut next_load = Some(Instant::now());
    loop {
        let due = async {
            match next_load {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = due => {}
            _ = hup.recv() => {
                if matches!(settings.source, Source::File(_)) {
                    tracing::info!("SIGHUP: re-reading the trunk file");
                } else {
                    continue;
                }
            }
        }
        let loaded = tokio::select! {
            _ = &mut shutdown => break,
            r = settings.source.load() => r,
        };
        let first_done = state.loaded.load(Ordering::SeqCst);
        match loaded {
            Ok(trunks) => {
                let invalid = trunks.iter().filter(|t| t.invalid.is_some()).count();
                if invalid > 0 {
                    metrics.source_invalid_records(invalid);
                }
                tracing::info!(trunks = trunks.len(), invalid, "trunk list loaded");
                let uris = settings.origination.uris(&trunks);
                uris_tx.send_if_modified(|old| {
                    let changed = old.as_ref() != Some(&uris);
                    *old = Some(uris);
                    changed
                });
                let shared = Arc::new(trunks.clone());
                trunks_tx.send_if_modified(|old| {
                    let changed = old.as_deref() != Some(&*shared);
                    *old = Some(shared);
                    changed
                });
                fleet.apply(trunks);
                state.loaded.store(true, Ordering::SeqCst);
            }
            Err(e) => {
                metrics.source_failed(SourceErrorReason::of(&e));
                if first_done {
                    tracing::warn!(error = %e, "loading the trunk list failed; probing the last good list");
                } else {
                    tracing::error!(error = %e, hint = e.hint().unwrap_or_default(), "loading the trunk list failed; retrying");
                }
            }
        }
        let ok = state.loaded.load(Ordering::SeqCst);
        next_load = match &settings.source {
            Source::Api(_) if ok => Some(Instant::now() + settings.refresh),
            Source::Api(_) | Source::File(_) if !ok => {
                Some(Instant::now() + settings.refresh.min(Duration::from_secs(5)))
            }
            _ => None,
        };
    }

    tracing::info!("shutting down: no new probes; waiting for the ones in flight");
    state.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    fleet
        .drain(settings.exchange.timeout + Duration::from_secs(1))
        .await;
    if let Some(task) = origination {
        let _ = tokio::time::timeout(settings.exchange.timeout, task).await;
    }
    // Test calls in flight hang up on the stop; their BYE or CANCEL (and its
    // answer) takes at most one transaction's time.
    for task in [call_loop, register_loop].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(35), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("stopped");
    Ok(())
}
