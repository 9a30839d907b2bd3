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
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts};
use serde::Deserialize;

use crate::metrics::{self, Metrics};
use crate::probe::{self, HealthyCodes, Outcome};
use crate::resolve::GatewayResolver;
use crate::transport::{ExchangeConfig, Target};

/// What the handlers share with the daemon.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// Set once the first trunk list is loaded.
    pub loaded: AtomicBool,
    /// Set at shutdown.
    pub stopping: AtomicBool,
    pub resolver: GatewayResolver,
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
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
    let mut exchange = s.exchange.clone();
    if let Some(limit) = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.6)
    {
        exchange.timeout = exchange.timeout.min(Duration::from_secs_f64(limit - 0.5));
    }
    let body = run_probe(&s, &target, &exchange).await;
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

/// Resolves and probes the first address of `target`, and renders a fresh registry.
async fn run_probe(s: &AppState, target: &ProbeTarget, exchange: &ExchangeConfig) -> String {
    let started = Instant::now();
    let registry = metrics::registry_for(s.location.as_deref());
    let success = int_gauge("probe_success", "1 if the OPTIONS probe was healthy.");
    let duration = gauge(
        "probe_duration_seconds",
        "How long the probe took, DNS included.",
    );
    let dns = gauge(
        "probe_dns_lookup_time_seconds",
        "How long the DNS lookup took.",
    );
    let status = int_gauge(
        "probe_sip_status_code",
        "SIP status code of the final response (0 when none).",
    );
    let rtt = gauge(
        "probe_sip_rtt_seconds",
        "OPTIONS round-trip time, first send to final response.",
    );
    let outcome = IntGaugeVec::new(
        Opts::new(
            "probe_sip_outcome",
            "1 for the outcome of this probe (the closed outcome set of trunkprobe check).",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    let ip_protocol = int_gauge(
        "probe_ip_protocol",
        "IP version of the probed address (4 or 6; 0 when unresolved).",
    );
    for m in [&duration, &dns, &rtt] {
        let _ = registry.register(Box::new(m.clone()));
    }
    for m in [&success, &status, &ip_protocol] {
        let _ = registry.register(Box::new(m.clone()));
    }
    let _ = registry.register(Box::new(outcome.clone()));

    let res = s.resolver.resolve(&target.host, target.transport).await;
    dns.set(res.lookup_time.as_secs_f64());
    let result = match (res.addresses.first(), &res.failure) {
        (Some(ip), _) => {
            ip_protocol.set(if ip.is_ipv4() { 4 } else { 6 });
            let t = Target {
                host: target.host.as_str().into(),
                addr: (*ip, target.port).into(),
                transport: target.transport,
            };
            probe::probe_one(&t, exchange, &s.healthy).await
        }
        (None, failure) => probe::dns_failure_result(
            failure
                .as_ref()
                .unwrap_or(&crate::resolve::DnsFailure::NoAddress),
            target.port,
            target.transport,
        ),
    };
    success.set((result.outcome == Outcome::Ok) as i64);
    status.set(result.status_code.unwrap_or(0) as i64);
    if let Some(d) = result.rtt {
        rtt.set(d.as_secs_f64());
    }
    for o in Outcome::ALL {
        outcome
            .with_label_values(&[o.as_str()])
            .set((o == result.outcome) as i64);
    }
    if let Some(cert) = result.tls.as_ref().and_then(|t| t.cert.as_ref()) {
        let expiry = gauge(
            "probe_ssl_earliest_cert_expiry",
            "Unix time the TLS leaf certificate expires.",
        );
        expiry.set(cert.not_after as f64);
        let _ = registry.register(Box::new(expiry));
    }
    duration.set(started.elapsed().as_secs_f64());
    metrics::encode(&registry)
}
