//! Reachability: what a probe's outcome means for the trunk, and what to do.
//!
//! Pure functions from a probe result to one line of observation, a likely cause
//! and a fix, in the words of Bolna's setup guide where it has them.

use std::net::IpAddr;
use std::time::Duration;

use crate::outcome::{blank_result, Outcome, TargetResult};
use crate::resolve::DnsFailure;
use crate::transport::{TlsFailure, TransportFailure};
use crate::trunk::{Transport, BOLNA_SIP_IP};

/// What the explanation may draw on beyond the result itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The probe deadline.
    pub timeout: Duration,
    /// The address some carrier reported seeing this prober at (`received` of a
    /// Via in any response of the run), when one did.
    pub seen_as: Option<IpAddr>,
}

/// Observation, cause and fix for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub detail: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
}

fn acl_note(ctx: &Context, local: Option<IpAddr>) -> String {
    let seen = match (ctx.seen_as, local) {
        (Some(ip), _) => format!("this prober reached carriers as {ip}"),
        (None, Some(ip)) if !ip.is_unspecified() => {
            format!("this prober sent from {ip} (its public address may differ behind NAT)")
        }
        _ => "this prober's address is not on that list".to_string(),
    };
    format!(
        "Carriers often drop OPTIONS from addresses not on their ACL: they allow-list Bolna's IP \
         {BOLNA_SIP_IP}, not this prober, and {seen}. A silent drop from here does not prove \
         Bolna is dropped."
    )
}

/// Explains a probe result.
pub fn explain(r: &TargetResult, ctx: &Context) -> Explained {
    let secs = ctx.timeout.as_secs_f64();
    let where_ = match r.ip {
        Some(ip) => format!("{}:{}", fmt_ip(ip), r.port),
        None => format!("port {}", r.port),
    };
    let proto = r.transport.as_str().to_ascii_uppercase();
    let local_ip = r.local.map(|l| l.ip());
    match r.outcome {
        Outcome::Ok => Explained {
            detail: format!(
                "{} {}",
                r.status_code.unwrap_or_default(),
                r.reason.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            cause: None,
            fix: None,
        },
        Outcome::SipError => explain_status(r, ctx),
        Outcome::Timeout if r.reply_from.is_some() => {
            let from = r.reply_from.map(|a| a.to_string()).unwrap_or_default();
            Explained {
                detail: format!(
                    "the answer to OPTIONS came from {from}, not from {where_} which was probed \
                     (not counted)"
                ),
                cause: Some(
                    "The carrier answers from another address or port than it receives on (a \
                     load balancer or asymmetric routing). NATs, firewalls and SIP stacks that \
                     match a response to the address the request went to drop such answers, \
                     so calls through this gateway can fail although it is alive."
                        .into(),
                ),
                fix: Some(format!(
                    "Ask the carrier to answer from the address it receives on, or use {from} as \
                     the gateway if that is where it listens."
                )),
            }
        }
        Outcome::Timeout => {
            let detail = match (&r.failure, r.transport) {
                (Some(TransportFailure::ConnectTimeout), _) => {
                    format!("no TCP connection to {where_} within {secs:.1} s (SYN unanswered)")
                }
                (_, Transport::Udp) => format!(
                    "no response to OPTIONS within {secs:.1} s ({} retransmissions)",
                    r.retransmissions
                ),
                _ => format!(
                    "connected, but no final response to OPTIONS within {secs:.1} s{}",
                    if r.provisional.is_empty() {
                        ""
                    } else {
                        " (only provisional responses)"
                    }
                ),
            };
            Explained {
                detail,
                cause: Some(format!(
                    "The gateway is down, a firewall drops {proto} to {where_}, or the carrier \
                     ignores this prober. {}",
                    acl_note(ctx, local_ip)
                )),
                fix: Some(format!(
                    "Check gateway_address and port with the carrier, and that it accepts {proto} \
                     there. Whitelist Bolna's IP {BOLNA_SIP_IP} on the trunk (IP whitelist / ACL); \
                     to make this check conclusive, also allow this prober's address for OPTIONS."
                )),
            }
        }
        Outcome::Refused => {
            let detail = if r.transport == Transport::Udp {
                format!("ICMP port unreachable from {where_}: nothing listens on UDP there")
            } else {
                format!(
                    "TCP connection refused (RST) by {where_}: nothing listens on {proto} there"
                )
            };
            Explained {
                detail,
                cause: Some(format!(
                    "The host is up but no SIP service listens on {proto} port {}.",
                    r.port
                )),
                fix: Some(
                    "Check the gateway port: default port is 5060 for UDP/TCP and 5061 for TLS. \
                     Confirm with the carrier which transports it accepts on that address."
                        .into(),
                ),
            }
        }
        Outcome::TlsError => {
            let failure = match &r.failure {
                Some(TransportFailure::Tls(f)) => f.clone(),
                _ => TlsFailure::Protocol {
                    detail: "unknown".into(),
                },
            };
            let (cause, fix) = explain_tls(&failure);
            Explained {
                detail: format!("TLS handshake with {where_} failed: {}", failure.describe()),
                cause: Some(cause),
                fix: Some(fix),
            }
        }
        Outcome::NetworkError => {
            let detail = match &r.failure {
                Some(TransportFailure::Reset) => {
                    format!("connection to {where_} reset by the peer")
                }
                Some(TransportFailure::Closed) => {
                    format!("{where_} closed the connection before a final response")
                }
                Some(TransportFailure::Framing { detail }) => {
                    format!("{where_} sent bytes that are not valid SIP framing: {detail}")
                }
                Some(TransportFailure::Io { detail }) => format!("network error: {detail}"),
                Some(other) => format!("{other:?}"),
                None => "network error".into(),
            };
            Explained {
                detail,
                cause: Some(
                    "Something on the path or the gateway itself tore the exchange down \
                     (a SIP ALG, a load balancer, or a gateway that rejects this transport)."
                        .into(),
                ),
                fix: Some(format!(
                    "Retry; if it persists, ask the carrier whether {proto} is supported on this \
                     gateway, or try another transport."
                )),
            }
        }
        Outcome::DnsError => Explained {
            detail: "the gateway name did not resolve".into(),
            cause: None,
            fix: None,
        },
    }
}

fn explain_status(r: &TargetResult, ctx: &Context) -> Explained {
    let code = r.status_code.unwrap_or_default();
    let detail = format!("{} {}", code, r.reason.as_deref().unwrap_or(""))
        .trim_end()
        .to_string();
    let (cause, fix) = match code {
        401 | 407 => (
            "The gateway challenges OPTIONS for credentials. It is alive and a SIP stack answers; \
             many carriers authenticate every request."
                .to_string(),
            "If this carrier always challenges OPTIONS, count it as healthy with \
             --healthy-codes 2xx,401,407. Check auth_username on the trunk for calls."
                .to_string(),
        ),
        403 => (
            format!(
                "The carrier rejects requests from this prober's address. {}",
                acl_note(ctx, r.local.map(|l| l.ip()))
            ),
            format!(
                "Whitelist Bolna's IP {BOLNA_SIP_IP} on the trunk (IP whitelist / allowed IP / \
                 ACL); allow this prober too if you want OPTIONS from here to succeed."
            ),
        ),
        404 | 484 => (
            "The gateway does not know the Request-URI it was sent.".to_string(),
            "Check gateway_address: use the host the carrier gives for SIP termination."
                .to_string(),
        ),
        405 | 501 => (
            "The gateway does not implement OPTIONS, but a SIP stack answered: it is reachable."
                .to_string(),
            format!(
                "Count it as healthy with --healthy-codes 2xx,{code} if the carrier confirms \
                 OPTIONS is unsupported."
            ),
        ),
        408 | 480 | 503 | 504 => (
            "The gateway is temporarily unable to handle requests (overload or maintenance)."
                .to_string(),
            "Retry later; if it persists, contact the carrier.".to_string(),
        ),
        500..=599 => (
            "The carrier's gateway reports a server error.".to_string(),
            "Contact the carrier with the time of the failure.".to_string(),
        ),
        _ => (
            format!("The gateway answered {code}, which is not in the healthy set."),
            "If this code is expected from this carrier, add it with --healthy-codes.".to_string(),
        ),
    };
    Explained {
        detail,
        cause: Some(cause),
        fix: Some(fix),
    }
}

/// Cause and fix for a TLS failure.
pub fn explain_tls(f: &TlsFailure) -> (String, String) {
    match f {
        TlsFailure::UnknownIssuer => (
            "The carrier's certificate does not chain to a CA this prober trusts (self-signed or \
             a private CA)."
                .into(),
            "Ask the carrier for a certificate from a public CA, or pass their CA with --ca-file \
             to check it here."
                .into(),
        ),
        TlsFailure::NameMismatch { .. } => (
            "The certificate does not name the gateway host (RFC 5922: subjectAltName DNS or sip: \
             URI)."
                .into(),
            "Set gateway_address to a name the certificate covers, or ask the carrier to reissue \
             the certificate. TLS needs a hostname for certificate validation."
                .into(),
        ),
        TlsFailure::Expired => (
            "The carrier's certificate has expired; TLS calls will fail.".into(),
            "Ask the carrier to renew its certificate, or switch transport to \"transport-tcp\" \
             (and media_encryption to \"no\") until it does."
                .into(),
        ),
        TlsFailure::NotYetValid => (
            "The certificate is not valid yet (or this machine's clock is wrong).".into(),
            "Check this machine's clock; otherwise ask the carrier.".into(),
        ),
        TlsFailure::HandshakeTimeout => (
            "The TCP connection opened but the TLS handshake never finished: the port may speak \
             plain SIP, or a middlebox holds the handshake."
                .into(),
            "Use port 5061 on your gateways for TLS, and confirm the carrier has TLS enabled."
                .into(),
        ),
        TlsFailure::Alert { .. } | TlsFailure::Protocol { .. } => (
            "The carrier refused the TLS session (protocol version, cipher suite or client \
             certificate requirements)."
                .into(),
            "Confirm with the carrier that TLS 1.2 or 1.3 is enabled on this gateway.".into(),
        ),
        TlsFailure::BadCertificate { .. } => (
            "The certificate is malformed or signed with an unsupported algorithm.".into(),
            "Ask the carrier to reissue the certificate.".into(),
        ),
        TlsFailure::Closed { .. } => (
            "The connection closed during the TLS handshake: the port may not speak TLS.".into(),
            "Use port 5061 on your gateways for TLS, and confirm the carrier has TLS enabled."
                .into(),
        ),
    }
}

/// Cause and fix for a gateway that did not resolve.
pub fn explain_dns(f: &DnsFailure) -> (String, String) {
    match f {
        DnsFailure::NxDomain => (
            "The gateway hostname does not exist in DNS.".into(),
            "Check the spelling of gateway_address against the carrier's portal.".into(),
        ),
        DnsFailure::NoAddress => (
            "The name exists but has no A or AAAA record (it may only publish SRV/NAPTR).".into(),
            "Use the host the SRV records point to, or the address the carrier documents.".into(),
        ),
        DnsFailure::Timeout => (
            "No DNS server answered in time.".into(),
            "Check this machine's DNS (or --dns-server) and retry.".into(),
        ),
        DnsFailure::Other { .. } => (
            "The DNS lookup failed.".into(),
            "Check the name and this machine's DNS, then retry.".into(),
        ),
    }
}

fn fmt_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The result standing for a gateway that did not resolve.
pub fn dns_failure_result(failure: &DnsFailure, port: u16, transport: Transport) -> TargetResult {
    let mut r = blank_result(None, port, transport, Outcome::DnsError);
    r.detail = failure.describe();
    let (cause, fix) = explain_dns(failure);
    r.cause = Some(cause);
    r.fix = Some(fix);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_note_names_bolna_and_the_seen_address() {
        let ctx = Context {
            timeout: Duration::from_secs(5),
            seen_as: Some("203.0.113.7".parse().unwrap()),
        };
        let note = acl_note(&ctx, None);
        assert!(note.contains(BOLNA_SIP_IP) && note.contains("203.0.113.7"));
    }
}
