//! `trunkprobe serve`: the monitoring daemon an operator leaves running. It
//! keeps the trunk list fresh (API refresh, file re-read on SIGHUP), probes every
//! target on its trunk's schedule, and serves Prometheus metrics over HTTP.

pub mod diagnostics;
pub mod http;
pub mod scheduler;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::cli::{parse_duration, OriginationArgs, ProbeArgs, SourceArgs};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, RttHistogram, SourceErrorReason};
use crate::probe::{CheckSettings, HealthyCodes, MtuConfig};
use crate::resolve::GatewayResolver;
use crate::source::{self, ApiSource, SourceError};
use crate::transport::ExchangeConfig;
use crate::trunk::Trunk;

use diagnostics::{MtuSchedule, OriginationPlan};
use scheduler::{Ctx, Fleet, Hysteresis, Shard};

/// Log line format of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Address of the HTTP server (/metrics, /healthz, /-/ready, /probe).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "IP:PORT")]
    pub listen: SocketAddr,
    /// How often the trunk list is re-fetched from the API.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub refresh: Duration,
    /// Consecutive failed probes before a target turns down.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub down_after: u32,
    /// Consecutive healthy probes before a down target turns up.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub up_after: u32,
    /// Probe only the targets whose stable hash falls in shard I of N (0-based), e.g. 0/3.
    #[arg(long, value_parser = Shard::parse, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Adds a location="NAME" label to every series (compare probers in several regions).
    #[arg(long, value_name = "NAME")]
    pub location: Option<String>,
    /// Granularity of the trunkprobe_options_rtt_seconds histogram: per trunk and
    /// transport, per target (16 series each), or off. Each target's last RTT is
    /// always in trunkprobe_options_last_rtt_seconds.
    #[arg(long, value_enum, default_value_t = RttHistogram::Trunk, value_name = "MODE")]
    pub rtt_histogram: RttHistogram,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How often the UDP size ladder (fragmentation / path MTU check) runs on each UDP
    /// target that answers, jittered ±10%; 0 turns it off.
    #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub mtu_interval: Duration,
    /// Total message sizes of the ladder in bytes.
    #[arg(long, value_name = "BYTES,...", value_parser = crate::checks::mtu::parse_sizes)]
    pub mtu_sizes: Option<SizeList>,
    #[command(flatten)]
    pub origination: OriginationArgs,
    /// How often the origination URIs (Bolna's inbound side) are checked.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub origination_interval: Duration,
    /// Shortest time between two lookups of a gateway name, whatever its TTL (1s to 5m).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub dns_min_interval: Duration,
}

/// Sizes taken as one flag value (`600,1200`), not a repeated flag.
type SizeList = Vec<usize>;

/// Where the daemon's trunk list comes from.
pub enum Source {
    /// Re-fetched every `--refresh`; the last good list survives failures.
    Api(ApiSource),
    /// Re-read on SIGHUP.
    File(PathBuf),
    /// Flags or stdin: loaded once.
    Fixed(Vec<Trunk>),
}

impl Source {
    async fn load(&self) -> std::result::Result<Vec<Trunk>, SourceError> {
        match self {
            Source::Api(api) => api.fetch().await,
            Source::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || source::load_file(&path))
                    .await
                    .unwrap_or_else(|_| Ok(Vec::new()))
            }
            Source::Fixed(trunks) => Ok(trunks.clone()),
        }
    }
}

/// Validated settings of `serve`.
pub struct Settings {
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
}

impl ServeArgs {
    pub async fn settings(&self) -> Result<Settings> {
        let (check, resolver) = self.probe.settings()?;
        if self.refresh < Duration::from_secs(1) {
            return Err(Error::Usage("--refresh must be at least 1s".into()));
        }
        if self.dns_min_interval < Duration::from_secs(1)
            || self.dns_min_interval > scheduler::DNS_MAX_INTERVAL
        {
            return Err(Error::Usage(
                "--dns-min-interval must be between 1s and 5m".into(),
            ));
        }
        if self.down_after == 0 || self.up_after == 0 {
            return Err(Error::Usage(
                "--down-after and --up-after must be at least 1".into(),
            ));
        }
        if !self.mtu_interval.is_zero() && self.mtu_interval < Duration::from_secs(1) {
            return Err(Error::Usage(
                "--mtu-interval must be at least 1s (or 0 to turn the ladder off)".into(),
            ));
        }
        if self.origination_interval < Duration::from_secs(1) {
            return Err(Error::Usage(
                "--origination-interval must be at least 1s (--no-origination turns it off)".into(),
            ));
        }
        let mtu = (!self.mtu_interval.is_zero()).then(|| {
            let mut config = MtuConfig::new(check.exchange.clone(), check.healthy.clone());
            if let Some(sizes) = &self.mtu_sizes {
                config.sizes = sizes.clone();
            }
            (config, self.mtu_interval)
        });
        let origination = if self.origination.no_origination {
            OriginationPlan::Off
        } else if !self.origination.origination.is_empty() {
            OriginationPlan::Uris(self.origination.origination.clone())
        } else {
            OriginationPlan::Guide
        };
        let s = &self.source;
        let source = match &s.trunks {
            Some(path) if path.as_os_str() != "-" => {
                // Fail fast on a file that cannot be used at start-up.
                source::load_file(path)?;
                Source::File(path.clone())
            }
            _ if s.trunks.is_some() || !s.gateway.is_empty() => Source::Fixed(s.load().await?),
            _ => Source::Api(s.api()?),
        };
        Ok(Settings {
            source,
            resolver,
            exchange: check.exchange,
            healthy: check.healthy,
            concurrency: check.concurrency,
            skip_auth_checks: !s.gateway.is_empty(),
            refresh: self.refresh,
            hysteresis: Hysteresis {
                down_after: self.down_after,
                up_after: self.up_after,
            },
            shard: self.shard.unwrap_or_default(),
            location: self.location.clone(),
            rtt_histogram: self.rtt_histogram,
            mtu,
            origination,
            origination_interval: self.origination_interval,
            dns_min_interval: self.dns_min_interval,
        })
    }
}

/// Entry point of `trunkprobe serve`: binds `--listen`, runs until SIGTERM or SIGINT.
pub async fn serve(args: ServeArgs) -> Result<u8> {
    let settings = args.settings().await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Io {
            context: format!("cannot listen on {}", args.listen),
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
    let state = Arc::new(http::AppState {
        metrics: metrics.clone(),
        loaded: false.into(),
        stopping: false.into(),
        resolver: settings.resolver.clone(),
        exchange: settings.exchange.clone(),
        healthy: settings.healthy.clone(),
        location: settings.location.clone(),
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
        resolver: settings.resolver.clone(),
        exchange: settings.exchange.clone(),
        healthy: settings.healthy.clone(),
        udp: crate::transport::UdpProber::new(settings.exchange.clone()),
        hysteresis: settings.hysteresis,
        shard: settings.shard,
        skip_auth_checks: settings.skip_auth_checks,
        dns_min_interval: settings.dns_min_interval,
        stop: stop_rx.clone(),
        mtu: settings.mtu.clone().map(|(config, interval)| MtuSchedule {
            config,
            interval,
            limit: Arc::new(Semaphore::new(diagnostics::MTU_LADDERS_IN_FLIGHT)),
        }),
        started,
        first_probe_sent: false.into(),
        wheel: scheduler::Wheel::start(stop_rx.clone(), settings.concurrency),
    });
    // Origination is prober-wide: shard 0 checks it.
    let (uris_tx, uris_rx) = watch::channel(None);
    let origination = (settings.origination != OriginationPlan::Off
        && settings.shard.reports_trunks())
    .then(|| {
        tokio::spawn(diagnostics::origination_loop(
            metrics.clone(),
            settings.resolver.clone(),
            CheckSettings {
                exchange: settings.exchange.clone(),
                healthy: settings.healthy.clone(),
                concurrency: settings.concurrency,
                skip_auth_checks: settings.skip_auth_checks,
            },
            settings.origination_interval,
            uris_rx,
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
                tracing::info!(trunks = trunks.len(), "trunk list loaded");
                let uris = settings.origination.uris(&trunks);
                uris_tx.send_if_modified(|old| {
                    let changed = old.as_ref() != Some(&uris);
                    *old = Some(uris);
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
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("stopped");
    Ok(())
}
