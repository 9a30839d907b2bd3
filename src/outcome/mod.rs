//! The evidence of one probe, and what it amounts to: the closed set of target
//! [`Outcome`]s, the healthy status codes, the [`TargetResult`] of one address
//! (filled from an [`Exchange`] by [`evaluate`]) and the [`MtuResult`] of a size
//! ladder. Diagnosis (cause, fix, findings) is [`crate::checks`]' work; this
//! module imports nothing from it or from the layers above.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::sip::{Response, TxOutcome};
use crate::text::{printable, ser_opt_ms};
use crate::transport::ladder::{PmtuDiscovery, Rung};
use crate::transport::{Exchange, TlsObservation, TransportFailure};
use crate::trunk::Transport;

pub mod call;
pub mod credentials;

/// What happened to one target. A closed set: metrics and exit codes rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A final response whose code is in the healthy set.
    Ok,
    /// Any other final response: a SIP stack answered, but not as hoped.
    SipError,
    /// No final response before the deadline (or no TCP connection).
    Timeout,
    /// ICMP port unreachable on UDP, RST on TCP.
    Refused,
    /// The TLS handshake failed.
    TlsError,
    /// The gateway name did not resolve.
    DnsError,
    /// Any other network failure (reset, closed, unframeable bytes, no route).
    NetworkError,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::SipError,
        Outcome::Timeout,
        Outcome::Refused,
        Outcome::TlsError,
        Outcome::DnsError,
        Outcome::NetworkError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::SipError => "sip_error",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::TlsError => "tls_error",
            Outcome::DnsError => "dns_error",
            Outcome::NetworkError => "network_error",
        }
    }
}

/// Final response codes that count as healthy (`--healthy-codes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthyCodes(Vec<(u16, u16)>);

impl Default for HealthyCodes {
    /// Any 2xx.
    fn default() -> Self {
        HealthyCodes(vec![(200, 299)])
    }
}

impl HealthyCodes {
    /// Parses a comma-separated list of codes (`200`), classes (`2xx`) and ranges (`200-299`).
    pub fn parse(s: &str) -> Result<HealthyCodes, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad =
                || format!("{part:?} is not a SIP status code, class (2xx) or range (200-299)");
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    let c: u16 = class.parse().map_err(|_| bad())?;
                    (c * 100, c * 100 + 99)
                } else if let Some((a, b)) = part.split_once('-') {
                    (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    )
                } else {
                    let c: u16 = part.parse().map_err(|_| bad())?;
                    (c, c)
                };
            if range.0 < 100 || range.1 > 699 || range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("no status codes given".into());
        }
        Ok(HealthyCodes(ranges))
    }

    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

/// The result of probing one target (or of failing to resolve its gateway).
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    /// The probed address; `None` when the gateway did not resolve.
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub transport: Transport,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    /// First send to final response.
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
    /// TCP connect (plus TLS handshake) time.
    #[serde(rename = "connect_ms", serialize_with = "ser_opt_ms")]
    pub connect_time: Option<Duration>,
    pub retransmissions: u32,
    /// Provisional (1xx) codes seen before the final response.
    pub provisional: Vec<u16>,
    /// Messages that reached our socket but did not belong to the transaction.
    pub stray_responses: u32,
    /// A response matching the transaction came from this other address; it was
    /// not counted (only the probed address may answer).
    pub reply_from: Option<SocketAddr>,
    /// `Server` (or `User-Agent`) of the responder.
    pub server: Option<String>,
    /// `received` / `rport` of the top Via: the address the gateway saw us at.
    pub received: Option<IpAddr>,
    pub rport: Option<u16>,
    pub local: Option<SocketAddr>,
    pub request_bytes: usize,
    /// What went wrong at the transport, when something did.
    pub failure: Option<TransportFailure>,
    /// The OPTIONS sent again with credentials after a 401/407 (`check` with a
    /// password); the outcome above is then the authenticated answer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<Box<credentials::CredentialsEvidence>>,
    pub tls: Option<TlsObservation>,
    /// One line: what was observed.
    pub detail: String,
    /// The likely cause and what to do, for anything but `ok`.
    pub cause: Option<String>,
    pub fix: Option<String>,
    /// `--trace`: every SIP message of the probe, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<WireMessage>>,
    /// The UDP size ladder (`check --mtu`), when it ran on this target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<MtuResult>,
    /// The final response itself (for media checks); not part of the JSON report.
    #[serde(skip)]
    pub response: Option<Response>,
}

/// A result for a target with every piece of evidence empty: the start of
/// [`evaluate`], and the stand-in for a target that was never probed.
pub fn blank_result(
    ip: Option<IpAddr>,
    port: u16,
    transport: Transport,
    outcome: Outcome,
) -> TargetResult {
    TargetResult {
        ip,
        port,
        transport,
        outcome,
        status_code: None,
        reason: None,
        rtt: None,
        connect_time: None,
        retransmissions: 0,
        provisional: Vec::new(),
        stray_responses: 0,
        reply_from: None,
        server: None,
        received: None,
        rport: None,
        local: None,
        request_bytes: 0,
        failure: None,
        authenticated: None,
        tls: None,
        detail: String::new(),
        cause: None,
        fix: None,
        messages: None,
        mtu: None,
        response: None,
    }
}

/// One SIP message as it crossed the wire (`--trace`, `--pcap`, the status
/// page's logs). The bytes are kept as received; wherever they are shown they
/// go through [`crate::text::escaped`] (the JSON `message` too), so a
/// carrier's bytes cannot drive a terminal or a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireMessage {
    /// Milliseconds since the probe's first transmission.
    pub at_ms: f64,
    /// When it crossed the wire (for a capture's timestamps).
    #[serde(skip)]
    pub wall: std::time::SystemTime,
    /// `true`: trunkprobe to the peer.
    pub sent: bool,
    pub transport: Transport,
    pub local: Option<SocketAddr>,
    pub remote: SocketAddr,
    /// The start line (`OPTIONS sip:... SIP/2.0`, `SIP/2.0 200 OK`), printable.
    pub line: String,
    /// The whole message as sent or received; serialized escaped.
    #[serde(rename = "message", serialize_with = "ser_escaped")]
    pub bytes: Vec<u8>,
}

fn ser_escaped<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::text::escaped(bytes))
}

impl WireMessage {
    /// The trace of `tx`, whose socket was bound at `local`.
    pub fn of(tx: &crate::sip::OptionsTransaction, local: Option<SocketAddr>) -> Vec<WireMessage> {
        let started = tx.started();
        tx.trace()
            .iter()
            .map(|r| {
                let at = started + r.at;
                WireMessage::new(
                    started,
                    at,
                    r.sent,
                    tx.transport(),
                    local,
                    r.remote,
                    &r.bytes,
                )
            })
            .collect()
    }

    /// A message that crossed the wire at `at`, in an exchange begun at `started`.
    pub fn new(
        started: std::time::Instant,
        at: std::time::Instant,
        sent: bool,
        transport: Transport,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        bytes: &[u8],
    ) -> WireMessage {
        // The monotonic clock anchored to the wall clock now.
        let ago = std::time::Instant::now().saturating_duration_since(at);
        let wall_now = std::time::SystemTime::now();
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        WireMessage {
            at_ms: crate::text::ms(at.saturating_duration_since(started)),
            wall: wall_now.checked_sub(ago).unwrap_or(wall_now),
            sent,
            transport,
            local,
            remote,
            line: printable(&crate::text::escaped(first)),
            bytes: bytes.to_vec(),
        }
    }

    /// The whole message, escaped for showing.
    pub fn text(&self) -> String {
        crate::text::escaped(&self.bytes)
    }
}

/// One datagram (a call's SIP message, RTP or RTCP packet) as it crossed the
/// wire, for `--pcap`: sender, receiver, time and the bytes as sent or received
/// (SRTP stays encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPacket {
    pub wall: std::time::SystemTime,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Turns the evidence of one exchange into a result with an outcome, cause and fix.
pub fn evaluate(mut ex: Exchange, healthy: &HealthyCodes) -> TargetResult {
    let t = &ex.target;
    let mut r = blank_result(
        Some(t.addr.ip()),
        t.addr.port(),
        t.transport,
        Outcome::NetworkError,
    );
    r.local = ex.local;
    r.connect_time = ex.connect_time;
    r.tls = ex.tls.clone();
    r.request_bytes = ex.request_size;
    if let Some(tx) = &ex.transaction {
        r.retransmissions = tx.retransmissions();
        r.provisional = tx.provisionals().iter().map(|(c, _)| *c).collect();
        r.stray_responses = tx.strays();
        r.reply_from = tx.answered_from_elsewhere();
        if !tx.trace().is_empty() {
            r.messages = Some(WireMessage::of(tx, ex.local));
        }
    }
    let final_response = ex
        .transaction
        .as_mut()
        .and_then(|tx| match tx.take_outcome() {
            Some(TxOutcome::Final { response, rtt }) => Some((response, rtt)),
            _ => None,
        });
    r.outcome = match (&final_response, &ex.failure) {
        (Some((resp, _)), _) if healthy.contains(resp.code) => Outcome::Ok,
        (Some(_), _) => Outcome::SipError,
        (None, Some(TransportFailure::Refused)) => Outcome::Refused,
        (None, Some(TransportFailure::ConnectTimeout)) => Outcome::Timeout,
        (None, Some(TransportFailure::Tls(_))) => Outcome::TlsError,
        (None, Some(_)) => Outcome::NetworkError,
        (None, None) => Outcome::Timeout,
    };
    if let Some((resp, rtt)) = final_response {
        r.status_code = Some(resp.code);
        r.reason = Some(printable(&resp.reason));
        r.rtt = Some(rtt);
        r.server = resp.server.as_deref().map(printable);
        r.received = resp.via_received;
        r.rport = resp.via_rport;
        r.response = Some(resp);
    }
    r.failure = ex.failure;
    r
}

/// What the ladder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every size was answered: no fragmentation loss on this path.
    AllAnswered,
    /// Small messages answered, every larger one lost: fragments are dropped.
    LargeLost,
    /// Losses not ordered by size (packet loss, rate limiting): rerun.
    Irregular,
    /// Not even the smallest size was answered.
    NoneAnswered,
}

/// The same gateway probed over TCP after UDP lost large messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpFallback {
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
}

impl TcpFallback {
    /// Whether a SIP stack answered over TCP (any final response).
    pub fn works(&self) -> bool {
        matches!(self.outcome, Outcome::Ok | Outcome::SipError)
    }
}

/// Everything one ladder run found on one UDP target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtuResult {
    /// The probed address.
    pub target: SocketAddr,
    pub largest_answered: Option<usize>,
    pub first_lost: Option<usize>,
    /// `IP_MTU` of the connected socket after the ladder: the path MTU the kernel learned.
    pub path_mtu: Option<u32>,
    pub pmtu_discovery: Option<PmtuDiscovery>,
    pub verdict: Verdict,
    pub sizes: Vec<Rung>,
    /// Estimated size of Bolna's INVITE on this trunk (set by the caller that knows the trunk).
    pub invite_bytes: Option<usize>,
    /// RFC 3261 §18.1.1 limit for this path.
    pub rfc3261_limit: usize,
    /// The same address over TCP, probed when UDP lost messages.
    pub tcp_fallback: Option<TcpFallback>,
}

impl MtuResult {
    /// Whether the TCP fallback is worth probing: UDP lost something.
    pub fn wants_tcp_fallback(&self) -> bool {
        self.verdict != Verdict::AllAnswered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_codes_parse_classes_ranges_and_codes() {
        let h = HealthyCodes::parse("2xx, 401,480-489").unwrap();
        assert!(h.contains(200) && h.contains(299) && h.contains(401) && h.contains(486));
        assert!(!h.contains(403) && !h.contains(300));
        assert!(HealthyCodes::parse("abc").is_err());
        assert!(HealthyCodes::parse("").is_err());
        assert!(HealthyCodes::parse("99").is_err());
        assert!(HealthyCodes::parse("300-200").is_err());
        assert!(HealthyCodes::default().contains(202));
    }
}
