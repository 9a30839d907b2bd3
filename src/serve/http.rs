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
    /// The last trunk list loaded (`None` before the first), for `/sd`.
    pub trunks: tokio::sync::watch::Receiver<Option<Arc<Vec<crate::trunk::Trunk>>>>,
    pub metrics: Arc<Metrics>,
    /// The status page's memory.
    pub board: Arc<crate::report::status::StatusBoard>,
    /// Set once the first trunk list is loaded.
    pub loaded: AtomicBool,
    /// Set at shutdown.
    pub stopping: AtomicBool,
    pub resolver: GatewayResolver,
    /// The daemon's prober (its UDP socket is shared with the scheduled probes).
    pub prober: Prober,
    pub location: Option<String>,
    /// `/probe?module=call`, when `--allow-probe-calls` allows it.
    pub probe_calls: Option<ProbeCalls>,
}

/// What `/probe?module=call` may do: anyone who reaches the port could make the
/// prober place calls, so it is off unless allowed, and one runs at a time.
pub struct ProbeCalls {
    /// Media measured (shortened to fit the scrape timeout).
    pub duration: Duration,
    pub slot: tokio::sync::Semaphore,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/logs", get(logs))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/-/healthy", get(|| async { "ok\n" }))
        .route("/-/ready", get(ready))
        .route("/probe", get(probe_handler))
        .route("/sd", get(sd_handler))
        .with_state(state)
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

const HTML: &str = "text/html; charset=utf-8";

/// The status page: trunks, targets, findings, origination and egress, test
/// calls and registrations, and the recent probes (see [`crate::report::status`]).
async fn index(State(s): State<Arc<AppState>>) -> Response {
    let trunks = s.trunks.borrow().clone();
    let page = s
        .board
        .render_index(trunks.as_deref().map(Vec::as_slice), s.location.as_deref());
    ([(header::CONTENT_TYPE, HTML)], page).into_response()
}

#[derive(Deserialize)]
struct LogQuery {
    id: Option<String>,
}

/// One recent probe: its result, SIP trace and evidence.
async fn logs(State(s): State<Arc<AppState>>, Query(q): Query<LogQuery>) -> Response {
    let Some(id) = q.id.as_deref().and_then(|i| i.parse::<u64>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            "logs: give ?id=N (a probe of the status page)\n",
        )
            .into_response();
    };
    match s.board.log(id) {
        Some(log) => ([(header::CONTENT_TYPE, HTML)], s.board.render_log(&log)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "probe {id} is not in the history (the last {} probes are kept: --history-limit)\n",
                s.board.history_limit()
            ),
        )
            .into_response(),
    }
}

/// Prometheus HTTP service discovery (`http_sd_configs`): every gateway of every
/// active trunk as a SIP URI `/probe` takes, labelled `trunk_id`, `trunk`,
/// `gateway` and `transport`. 503 until the first trunk list is loaded.
async fn sd_handler(State(s): State<Arc<AppState>>) -> Response {
    let Some(trunks) = s.trunks.borrow().clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no trunk list loaded yet\n",
        )
            .into_response();
    };
    let groups = service_discovery(&trunks);
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&groups).expect("plain JSON"),
    )
        .into_response()
}

/// One `http_sd_configs` target group.
#[derive(Debug, serde::Serialize, PartialEq)]
pub struct SdGroup {
    pub targets: Vec<String>,
    pub labels: std::collections::BTreeMap<&'static str, String>,
}

/// The `/sd` target groups of `trunks`: one per gateway of each active trunk
/// with a valid transport and port, in the list's order, duplicates dropped.
pub fn service_discovery(trunks: &[crate::trunk::Trunk]) -> Vec<SdGroup> {
    use crate::trunk::Transport;
    let mut out: Vec<SdGroup> = Vec::new();
    for t in trunks.iter().filter(|t| t.is_active && t.invalid.is_none()) {
        let Some(transport) = t.transport.valid() else {
            continue;
        };
        for g in &t.gateways {
            let Some(port) = g.port() else { continue };
            let host = crate::sip::request::uri_host(&g.address);
            let uri = match transport {
                Transport::Udp => format!("sip:{host}:{port}"),
                Transport::Tcp => format!("sip:{host}:{port};transport=tcp"),
                Transport::Tls => format!("sip:{host}:{port};transport=tls"),
            };
            let labels = [
                ("trunk_id", t.id.clone().unwrap_or_else(|| t.name.clone())),
                ("trunk", t.name.clone()),
                ("gateway", format!("{host}:{port}")),
                ("transport", transport.as_str().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k, metrics::bounded(&v)))
            .collect();
            let group = SdGroup {
                targets: vec![uri],
                labels,
            };
            if !out.contains(&group) {
                out.push(group);
            }
        }
    }
    out
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
    /// `options` (default) or `call`.
    module: Option<String>,
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
    let scrape_limit = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.6)
        .map(|v| Duration::from_secs_f64(v - 0.5));
    match q.module.as_deref().unwrap_or("options") {
        "options" => {}
        "call" => return call_probe(&s, &raw, scrape_limit).await,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown module {:?}: options or call\n",
                    crate::text::printable(other)
                ),
            )
                .into_response()
        }
    }
    let target = match ProbeTarget::parse(&raw) {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad target: {e}\n")).into_response(),
    };
    // Like blackbox: finish within Prometheus' scrape timeout.
    let mut timeout = s.prober.exchange_config().timeout;
    if let Some(limit) = scrape_limit {
        timeout = timeout.min(limit);
    }
    let body = run_probe(&s, &target, timeout).await;
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// `/probe?module=call&target=sip:NUMBER@host[:port][;transport=...]`: one test
/// call (plain RTP, ulaw and alaw) with `call`'s safety rules, ended within the
/// scrape timeout, rendered as that call's metrics alone.
async fn call_probe(s: &AppState, raw: &str, scrape_limit: Option<Duration>) -> Response {
    let Some(calls) = &s.probe_calls else {
        return (
            StatusCode::FORBIDDEN,
            "module=call is off: anyone who reaches this port could make the prober place \
             calls; start serve with --allow-probe-calls to allow it\n",
        )
            .into_response();
    };
    let (scheme, rest) = match raw.split_once(':') {
        Some((sch, rest))
            if sch.eq_ignore_ascii_case("sip") || sch.eq_ignore_ascii_case("sips") =>
        {
            (sch, rest)
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "bad target: sip:NUMBER@host[:port][;transport=udp|tcp|tls]\n",
            )
                .into_response()
        }
    };
    let Some((number, gateway)) = rest
        .split_once('@')
        .filter(|(n, g)| !n.is_empty() && !g.is_empty())
    else {
        return (
            StatusCode::BAD_REQUEST,
            "bad target: module=call needs the number to call, sip:NUMBER@host\n",
        )
            .into_response();
    };
    let target = match ProbeTarget::parse(&format!("{scheme}:{gateway}")) {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad target: {e}\n")).into_response(),
    };
    let Ok(_slot) = calls.slot.try_acquire() else {
        return (StatusCode::TOO_MANY_REQUESTS, "a probe call is in flight\n").into_response();
    };
    let started = Instant::now();
    let budget = scrape_limit.unwrap_or(calls.duration + Duration::from_secs(20));
    let res = s.resolver.resolve(&target.host, target.transport).await;
    let Some(ip) = res.addresses.first().copied() else {
        return (
            StatusCode::OK,
            "# HELP probe_success 1 if the test call had two-way audio (the target did not resolve).\n\
             # TYPE probe_success gauge\nprobe_success 0\n"
                .to_string(),
        )
            .into_response();
    };
    let plan = crate::probe::call::CallPlan {
        target: Target {
            host: target.host.as_str().into(),
            addr: (ip, target.port).into(),
            transport: target.transport,
        },
        exchange: s.prober.exchange_config().clone(),
        to: number.to_string(),
        from: "trunkprobe".into(),
        credentials: None,
        codecs: vec!["ulaw".into(), "alaw".into()],
        sdes: false,
        optimistic: false,
        media_ip: None,
        duration: calls
            .duration
            .min(budget / 2)
            .max(Duration::from_millis(500)),
        until: crate::probe::call::Until::Answer,
        max_duration: budget.max(Duration::from_secs(1)),
        dtmf: String::new(),
        trace: false,
        capture: false,
        media_grid: None,
    };
    let mut stop = calls.stop.clone();
    let evidence = crate::probe::call::place(&plan, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    let j = crate::checks::call::judge(&evidence, &crate::checks::call::Context::default());
    tracing::info!(target = %crate::text::printable(raw), verdict = j.verdict.as_str(), "probe call ended");
    let body = metrics::render_call_probe(
        s.location.as_deref(),
        j.verdict,
        &evidence,
        started.elapsed(),
    );
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
