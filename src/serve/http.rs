//! The daemon's HTTP face: `/metrics` for Prometheus, `/healthz` and `/-/ready`
//! for orchestrators, and a blackbox-exporter-style `/probe?target=sip:...` that
//! probes one target now and answers with metrics of that probe alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::checks::reachability;
use crate::metrics::{self, Metrics, ProbeRun};
use crate::probe::Prober;
use crate::resolve::{DnsFailure, GatewayResolver};
use crate::transport::Target;

/// What the handlers share with the daemon.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// Set once the first trunk list is loaded.
    pub loaded: AtomicBool,
    /// Set at shutdown.
    pub stopping: AtomicBool,
    pub resolver: GatewayResolver,
    /// The daemon's prober (its UDP socket is shared with the scheduled probes).
    pub prober: Prober,
    pub location: Option<String>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/-/healthy", get(|| async { "ok\n" }))
        .route("/-/ready", get(ready))
        .route("/probe", get(probe_handler))
        .with_state(state)
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn index() -> &'static str {
    "trunkprobe serve: /metrics /healthz /-/ready /probe?target=sip:host:port;transport=udp|tcp|tls\n"
}

/// Render chunks in flight between the renderer and the client: a scrape holds
/// at most this many (of about [`metrics::store::CHUNK`] bytes) besides the one
/// being written.
const CHUNKS_IN_FLIGHT: usize = 4;

async fn metrics_handler(State(s): State<Arc<AppState>>) -> Response {
    // Rendered off the async workers (a 100,000-target render is CPU work that
    // would delay every probe scheduled meanwhile) and streamed as it goes, so
    // the whole text is never in memory at once; a client that goes away stops it.
    let metrics = s.metrics.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        metrics.render_chunks(&mut |chunk| tx.blocking_send(chunk).is_ok())
    });
    let chunks = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|c| c.map(|c| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(c))))
    });
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    if s.loaded.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no trunk list loaded yet\n",
        )
            .into_response()
    }
}

async fn ready(State(s): State<Arc<AppState>>) -> Response {
    if s.stopping.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        healthz(State(s)).await
    }
}

#[derive(Deserialize)]
struct ProbeQuery {
    target: Option<String>,
}

/// A `/probe` target: `sip:host[:port][;transport=udp|tcp|tls]`, `sips:` for TLS,
/// or a bare `host[:port]` (UDP).
pub use crate::sip::GatewayUri as ProbeTarget;

async fn probe_handler(
    State(s): State<Arc<AppState>>,
    Query(q): Query<ProbeQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(raw) = q.target else {
        return (StatusCode::BAD_REQUEST, "target parameter is missing\n").into_response();
    };
    let target = match ProbeTarget::parse(&raw) {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad target: {e}\n")).into_response(),
    };
    // Like blackbox: finish within Prometheus' scrape timeout.
    let mut timeout = s.prober.exchange_config().timeout;
    if let Some(limit) = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.6)
    {
        timeout = timeout.min(Duration::from_secs_f64(limit - 0.5));
    }
    let body = run_probe(&s, &target, timeout).await;
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// Resolves and probes the first address of `target`, and renders the metrics
/// of that probe alone.
async fn run_probe(s: &AppState, target: &ProbeTarget, timeout: Duration) -> String {
    let started = Instant::now();
    let res = s.resolver.resolve(&target.host, target.transport).await;
    let ip = res.addresses.first().copied();
    let result = match (ip, &res.failure) {
        (Some(ip), _) => {
            let t = Target {
                host: target.host.as_str().into(),
                addr: (ip, target.port).into(),
                transport: target.transport,
            };
            s.prober.probe_within(&t, timeout).await
        }
        (None, failure) => reachability::dns_failure_result(
            failure.as_ref().unwrap_or(&DnsFailure::NoAddress),
            target.port,
            target.transport,
        ),
    };
    metrics::render_probe(
        s.location.as_deref(),
        &ProbeRun {
            result: &result,
            ip,
            dns_lookup: res.lookup_time,
            duration: started.elapsed(),
        },
    )
}
