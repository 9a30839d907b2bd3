//! The origination URI: Bolna's carrier-facing inbound side (`sip.bolna.ai`),
//! as a carrier routing your DIDs to Bolna would reach it: which URIs to probe,
//! and what a failed probe of one means (cause, fix, what the carrier sees).
//! The probing itself is [`crate::probe::origination`].
//!
//! By default the URIs of the setup guide for the transports the loaded trunks
//! use (`sip:sip.bolna.ai:5060` over UDP and TCP, `sip:sip.bolna.ai:5061;transport=tls`
//! with certificate validation for that hostname); `--origination URI` overrides
//! them (tests point it at loopback peers), `--no-origination` skips it. Each
//! failure says what a carrier would see.

use std::net::IpAddr;

use serde::Serialize;

use crate::outcome::{Outcome, TargetResult};
use crate::resolve::Resolution;
use crate::transport::TransportFailure;
use crate::trunk::{Transport, Trunk, BOLNA_SIP_IP};

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

/// Which origination URIs `check` and `serve` probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginationPlan {
    /// `--no-origination`.
    Off,
    /// `--origination URI...`.
    Uris(Vec<OriginationUri>),
    /// The setup guide's URIs for the transports the active trunks use.
    Guide,
}

impl OriginationPlan {
    /// The URIs to probe for this trunk list.
    pub fn uris(&self, trunks: &[Trunk]) -> Vec<OriginationUri> {
        match self {
            OriginationPlan::Off => Vec::new(),
            OriginationPlan::Uris(u) => u.clone(),
            OriginationPlan::Guide => OriginationUri::defaults_for(
                trunks
                    .iter()
                    .filter(|t| t.is_active)
                    .filter_map(|t| t.transport.valid()),
            ),
        }
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
    use crate::trunk::Field;

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
        let t = crate::outcome::blank_result(
            Some("127.0.0.1".parse().unwrap()),
            5060,
            Transport::Udp,
            Outcome::Timeout,
        );
        let e = explain(&u, t);
        assert!(e.carrier_sees.unwrap().contains("408"));
        let ok = crate::outcome::blank_result(None, 5060, Transport::Udp, Outcome::Ok);
        assert!(explain(&u, ok).carrier_sees.is_none());
    }

    #[test]
    fn origination_plan_follows_the_trunks_transports() {
        let mut tcp = Trunk::with_defaults("t");
        tcp.transport = Field::Valid(Transport::Tcp);
        let uris = OriginationPlan::Guide.uris(&[tcp, Trunk::with_defaults("u")]);
        let got: Vec<&str> = uris.iter().map(|u| u.uri.as_str()).collect();
        assert_eq!(
            got,
            [
                "sip:sip.bolna.ai:5060",
                "sip:sip.bolna.ai:5060;transport=tcp"
            ]
        );
        assert!(OriginationPlan::Off
            .uris(&[Trunk::with_defaults("u")])
            .is_empty());
    }
}
