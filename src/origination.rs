//! The origination URI: Bolna's carrier-facing inbound side (`sip.bolna.ai`),
//! probed the way a carrier routing your DIDs to Bolna would reach it.
//!
//! By default the URIs of the setup guide for the transports the loaded trunks
//! use (`sip:sip.bolna.ai:5060` over UDP and TCP, `sip:sip.bolna.ai:5061;transport=tls`
//! with certificate validation for that hostname); `--origination URI` overrides
//! them (tests point it at loopback peers), `--no-origination` skips it. Each
//! failure says what a carrier would see.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::probe::{self, CheckSettings, Outcome, TargetResult};
use crate::resolve::{GatewayResolver, Resolution};
use crate::transport::{self, Target, TransportFailure};
use crate::trunk::{Transport, BOLNA_SIP_IP};

/// The host of the guide's origination URIs.
pub const DEFAULT_HOST: &str = "sip.bolna.ai";

/// One origination URI to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginationUri {
    pub uri: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl OriginationUri {
    /// Parses `sip:HOST[:PORT][;transport=udp|tcp|tls]` or `sips:HOST[:PORT]`
    /// (TLS). The port defaults to 5060, or 5061 for TLS.
    pub fn parse(s: &str) -> Result<OriginationUri, String> {
        let u = crate::sip::GatewayUri::parse_with_scheme(s)?;
        Ok(OriginationUri {
            uri: s.trim().to_string(),
            host: u.host,
            port: u.port,
            transport: u.transport,
        })
    }

    /// The guide's URI for trunks on `transport`.
    pub fn guide(transport: Transport) -> OriginationUri {
        let uri = match transport {
            Transport::Udp => format!("sip:{DEFAULT_HOST}:5060"),
            Transport::Tcp => format!("sip:{DEFAULT_HOST}:5060;transport=tcp"),
            Transport::Tls => format!("sip:{DEFAULT_HOST}:5061;transport=tls"),
        };
        OriginationUri {
            uri,
            host: DEFAULT_HOST.into(),
            port: transport.default_port(),
            transport,
        }
    }

    /// The guide's URIs for the given transports, once each, in UDP, TCP, TLS order.
    pub fn defaults_for(transports: impl IntoIterator<Item = Transport>) -> Vec<OriginationUri> {
        let mut ts: Vec<Transport> = transports.into_iter().collect();
        ts.sort();
        ts.dedup();
        ts.into_iter().map(OriginationUri::guide).collect()
    }
}

/// One address of an origination URI and what a carrier would see there.
#[derive(Debug, Clone, Serialize)]
pub struct OriginationTarget {
    #[serde(flatten)]
    pub result: TargetResult,
    /// What a carrier sending calls to this URI would experience, when it fails.
    pub carrier_sees: Option<String>,
}

/// One origination URI checked.
#[derive(Debug, Clone, Serialize)]
pub struct OriginationResult {
    pub uri: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub dns: Resolution,
    /// The setup guide's address for Bolna (13.200.45.61).
    pub guide_ip: &'static str,
    /// Whether `sip.bolna.ai` still resolves to the guide's IP; `None` for other hosts.
    pub resolves_to_guide_ip: Option<bool>,
    pub targets: Vec<OriginationTarget>,
    /// Every address answered with a healthy code.
    pub ok: bool,
}

/// Resolves and probes every URI (each address is its own target).
pub async fn check(
    uris: &[OriginationUri],
    resolver: &GatewayResolver,
    settings: &CheckSettings,
) -> Vec<OriginationResult> {
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut results = Vec::with_capacity(uris.len());
    let mut jobs: JoinSet<((usize, usize), TargetResult)> = JoinSet::new();
    for (ui, u) in uris.iter().enumerate() {
        let dns = resolver.resolve(&u.host, u.transport).await;
        let guide_ip: IpAddr = BOLNA_SIP_IP.parse().expect("a literal IP");
        let resolves_to_guide_ip = (u.host.eq_ignore_ascii_case(DEFAULT_HOST) && !dns.literal)
            .then(|| dns.addresses.contains(&guide_ip));
        let mut r = OriginationResult {
            uri: u.uri.clone(),
            host: u.host.clone(),
            port: u.port,
            transport: u.transport,
            dns: dns.clone(),
            guide_ip: BOLNA_SIP_IP,
            resolves_to_guide_ip,
            targets: Vec::new(),
            ok: false,
        };
        if let Some(f) = &dns.failure {
            let mut t = probe::blank_result(None, u.port, u.transport, Outcome::DnsError);
            t.detail = f.describe();
            r.targets.push(explain(u, t));
        }
        for (ai, ip) in dns.addresses.iter().enumerate() {
            let target = Target {
                host: u.host.as_str().into(),
                addr: SocketAddr::new(*ip, u.port),
                transport: u.transport,
            };
            let config = settings.exchange.clone();
            let healthy = settings.healthy.clone();
            let limit = limit.clone();
            jobs.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let ex = transport::exchange(&target, &config).await;
                ((ui, ai), probe::evaluate(ex, &healthy))
            });
        }
        results.push(r);
    }
    let mut done = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        if let Ok(item) = joined {
            done.push(item);
        }
    }
    done.sort_by_key(|(k, _)| *k);
    let ctx = crate::checks::reachability::Context {
        timeout: settings.exchange.timeout,
        seen_as: None,
    };
    for ((ui, _), mut t) in done {
        t.detail = crate::checks::reachability::explain(&t, &ctx).detail;
        let target = explain(&uris[ui], t);
        results[ui].targets.push(target);
    }
    for r in &mut results {
        r.ok = !r.targets.is_empty() && r.targets.iter().all(|t| t.result.outcome == Outcome::Ok);
    }
    results
}

/// Cause, fix and the carrier's view of one origination target.
pub fn explain(u: &OriginationUri, mut t: TargetResult) -> OriginationTarget {
    let proto = u.transport.as_str().to_ascii_uppercase();
    let uri = &u.uri;
    let parts: Option<(String, String, String)> = match t.outcome {
        Outcome::Ok => None,
        Outcome::DnsError => Some((
            format!("{} does not resolve from here: {}", u.host, t.detail),
            format!(
                "check this machine's DNS; carriers that only accept an IP can use \
                 sip:{BOLNA_SIP_IP}:5060 for UDP/TCP (TLS inbound needs the hostname)"
            ),
            format!(
                "a carrier resolving {} the same way cannot route calls to {uri}: your DIDs \
                 would not ring through to Bolna",
                u.host
            ),
        )),
        Outcome::Timeout => Some((
            format!(
                "nothing answered {proto} OPTIONS at {}: a firewall on this network may block \
                 outbound {proto} port {}, or Bolna's side does not answer this prober",
                addr(&t),
                u.port
            ),
            "probe again from a network without egress filtering; if it persists, contact Bolna"
                .to_string(),
            format!(
                "a carrier sending INVITEs to {uri} would get no answer: the call times out \
                 (408) and the caller hears ringing or silence"
            ),
        )),
        Outcome::Refused => Some((
            format!("{} refused {proto}: nothing listens there", addr(&t)),
            format!("check the port of {uri} against the setup guide's origination URIs"),
            format!(
                "a carrier sending calls to {uri} would be refused at once ({}): calls fail \
                 with 503",
                if u.transport == Transport::Udp {
                    "ICMP port unreachable"
                } else {
                    "TCP reset"
                }
            ),
        )),
        Outcome::TlsError => {
            let why = match &t.failure {
                Some(TransportFailure::Tls(f)) => f.describe(),
                _ => t.detail.clone(),
            };
            Some((
                format!("the TLS handshake with {} failed: {why}", u.host),
                format!(
                    "point the carrier at the hostname (sip:{DEFAULT_HOST}:5061;transport=tls), \
                     not an IP: TLS inbound requires a hostname so the carrier can validate \
                     Bolna's TLS certificate"
                ),
                format!(
                    "a carrier validating the certificate of {} would abort the handshake: \
                     inbound TLS calls would fail",
                    u.host
                ),
            ))
        }
        Outcome::SipError => Some((
            format!(
                "{uri} answered OPTIONS with {} {}",
                t.status_code.unwrap_or_default(),
                t.reason.as_deref().unwrap_or("")
            ),
            "if this code is expected from Bolna's side, add it with --healthy-codes".to_string(),
            format!(
                "a carrier monitoring {uri} with OPTIONS would get {} and may mark the route down",
                t.status_code.unwrap_or_default()
            ),
        )),
        Outcome::NetworkError => Some((
            format!("the exchange with {} failed: {}", addr(&t), t.detail),
            "check this machine's network path to Bolna".to_string(),
            format!("a carrier would fail to deliver calls to {uri} the same way"),
        )),
    };
    let (cause, fix, sees) = match parts {
        Some((c, f, w)) => (Some(c), Some(f), Some(w)),
        None => (None, None, None),
    };
    t.cause = cause;
    t.fix = fix;
    OriginationTarget {
        result: t,
        carrier_sees: sees,
    }
}

fn addr(t: &TargetResult) -> String {
    match t.ip {
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", t.port),
        Some(ip) => format!("{ip}:{}", t.port),
        None => format!("port {}", t.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_with_transport_and_default_ports() {
        let u = OriginationUri::parse("sip:sip.bolna.ai:5061;transport=tls").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("sip.bolna.ai", 5061, Transport::Tls)
        );
        let u = OriginationUri::parse("sip:sip.bolna.ai").unwrap();
        assert_eq!((u.port, u.transport), (5060, Transport::Udp));
        let u = OriginationUri::parse("sips:sip.bolna.ai").unwrap();
        assert_eq!((u.port, u.transport), (5061, Transport::Tls));
        let u = OriginationUri::parse("SIP:[::1]:5070;transport=TCP;lr").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("::1", 5070, Transport::Tcp)
        );
        for bad in [
            "",
            "sip.bolna.ai:5060",
            "http://sip.bolna.ai",
            "sip:",
            "sip:host:0",
            "sip:host:99999",
            "sip:user@host",
            "sip:host;transport=sctp",
            "sip:[zz]:5060",
            "sip:ho st",
        ] {
            assert!(OriginationUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_follow_the_guide_for_used_transports() {
        let d = OriginationUri::defaults_for([Transport::Tls, Transport::Udp, Transport::Udp]);
        let uris: Vec<&str> = d.iter().map(|u| u.uri.as_str()).collect();
        assert_eq!(
            uris,
            vec![
                "sip:sip.bolna.ai:5060",
                "sip:sip.bolna.ai:5061;transport=tls"
            ]
        );
        assert!(OriginationUri::defaults_for([]).is_empty());
    }

    #[test]
    fn failures_say_what_the_carrier_sees() {
        let u = OriginationUri::guide(Transport::Udp);
        let t = probe::blank_result(
            Some("127.0.0.1".parse().unwrap()),
            5060,
            Transport::Udp,
            Outcome::Timeout,
        );
        let e = explain(&u, t);
        assert!(e.carrier_sees.unwrap().contains("408"));
        let ok = probe::blank_result(None, 5060, Transport::Udp, Outcome::Ok);
        assert!(explain(&u, ok).carrier_sees.is_none());
    }
}
