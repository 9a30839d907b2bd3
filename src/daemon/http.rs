//! The daemon's HTTP face: `/metrics` for Prometheus, `/healthz` and `/-/ready`
//! for orchestrators, and a blackbox-exporter-style `/probe?target=sip:...` that
//! probes one target now and answers with metrics of that probe alone.

use std::net::IpAddr;
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
use crate::trunk::Transport;

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

async fn metrics_handler(State(s): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], s.metrics.render()).into_response()
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl ProbeTarget {
    pub fn parse(s: &str) -> Result<ProbeTarget, String> {
        let s = s.trim();
        let (rest, mut transport) = if let Some(r) = strip_ci(s, "sips:") {
            (r, Transport::Tls)
        } else if let Some(r) = strip_ci(s, "sip:") {
            (r, Transport::Udp)
        } else {
            (s, Transport::Udp)
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            if k.eq_ignore_ascii_case("transport") {
                transport = Transport::parse(&v.to_ascii_lowercase())
                    .ok_or_else(|| format!("transport {v:?} is not udp, tcp or tls"))?;
            }
        }
        if hostport.contains('@') {
            return Err("the target must not have a user part (sip:host:port)".into());
        }
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(format!("{hostport:?} is not a host name or IP address"));
        }
        Ok(ProbeTarget {
            host,
            port: port.unwrap_or(transport.default_port()),
            transport,
        })
    }
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = || format!("{s:?} has an invalid port");
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?} is missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| bad_port())?),
            None if after.is_empty() => None,
            None => return Err(bad_port()),
        };
        return Ok((ip.to_string(), port));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_string(), None));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p.parse().map_err(|_| bad_port())?;
            if port == 0 {
                return Err(bad_port());
            }
            Ok((h.to_string(), Some(port)))
        }
        None => Ok((s.to_string(), None)),
    }
}

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
                host: target.host.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_targets_parse_like_sip_uris() {
        let t = ProbeTarget::parse("sip:gw.example.com:5080;transport=tcp").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("gw.example.com", 5080, Transport::Tcp)
        );
        let t = ProbeTarget::parse("sips:gw.example.com").unwrap();
        assert_eq!((t.port, t.transport), (5061, Transport::Tls));
        let t = ProbeTarget::parse("127.0.0.1:5060").unwrap();
        assert_eq!((t.port, t.transport), (5060, Transport::Udp));
        let t = ProbeTarget::parse("sip:[::1]:5070;transport=UDP").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5070));
        assert!(ProbeTarget::parse("sip:alice@gw.example.com").is_err());
        assert!(ProbeTarget::parse("sip:gw:99999").is_err());
        assert!(ProbeTarget::parse("sip:gw;transport=sctp").is_err());
        assert!(ProbeTarget::parse("sip:").is_err());
        assert!(ProbeTarget::parse("sip:a/b").is_err());
    }
}
