//! The only place that touches sockets: moves bytes between the network and the
//! sans-IO SIP transaction ([`crate::sip::OptionsTransaction`]) and gathers the
//! evidence of one probe into an [`Exchange`].
//!
//! One probe has one deadline: connecting, the TLS handshake and the transaction
//! together never take longer than the configured timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sip::{build_options, OptionsSpec, OptionsTemplate, OptionsTransaction, TransactionIds};
use crate::trunk::Transport;

pub mod cache;
pub mod call;
pub mod ladder;
pub mod shared_stream;
pub mod shared_udp;
pub mod stream;
pub mod tls;
pub mod udp;

pub use shared_stream::StreamProber;
pub use shared_udp::UdpProber;
pub use tls::{CertInfo, TlsFailure, TlsSettings};

/// Largest SIP message accepted from a peer (the one limit of [`crate::sip`]);
/// anything larger is a framing error on a stream.
pub use crate::sip::message::MAX_MESSAGE;

/// One address to probe: a gateway's resolved IP, its port and transport.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The gateway as configured (hostname or IP literal): Request-URI host and
    /// TLS name. Shared: every address of a gateway, and every probe, has it.
    pub host: Arc<str>,
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// How to run one exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// Deadline for the whole probe (connect, handshake, transaction).
    pub timeout: Duration,
    pub user_agent: String,
    /// Extra headers on the OPTIONS request.
    pub extra_headers: Vec<(String, String)>,
    /// Trust settings; required for TLS targets.
    pub tls: Option<Arc<TlsSettings>>,
    /// `--source-ip`: the local IPv4 address every probe to an IPv4 target is sent from.
    pub source_v4: Option<std::net::Ipv4Addr>,
    /// `--source-ip6`: the same for IPv6 targets.
    pub source_v6: Option<std::net::Ipv6Addr>,
    /// `--trace`: every transaction keeps the messages it sent and received.
    pub trace: bool,
}

impl ExchangeConfig {
    /// The local address a socket toward `dst` binds: the `--source-ip` of its
    /// family, else the unspecified address (the kernel picks), port 0.
    pub fn bind_for(&self, dst: std::net::IpAddr) -> SocketAddr {
        self.bind_family(dst.is_ipv4())
    }

    /// [`bind_for`](Self::bind_for) by family.
    pub fn bind_family(&self, v4: bool) -> SocketAddr {
        use std::net::{Ipv4Addr, Ipv6Addr};
        if v4 {
            (self.source_v4.unwrap_or(Ipv4Addr::UNSPECIFIED), 0).into()
        } else {
            (self.source_v6.unwrap_or(Ipv6Addr::UNSPECIFIED), 0).into()
        }
    }

    /// What the OPTIONS to `target` says, sent from a socket bound at `local`.
    pub fn options_spec(&self, target: &Target, local: SocketAddr) -> OptionsSpec {
        OptionsSpec {
            target_host: target.host.to_string(),
            target_port: target.addr.port(),
            transport: target.transport,
            local,
            user_agent: self.user_agent.clone(),
            extra_headers: self.extra_headers.clone(),
        }
    }

    pub fn new(timeout: Duration) -> ExchangeConfig {
        ExchangeConfig {
            timeout,
            user_agent: format!("trunkprobe/{}", env!("CARGO_PKG_VERSION")),
            extra_headers: Vec::new(),
            tls: None,
            source_v4: None,
            source_v6: None,
            trace: false,
        }
    }
}

/// Why the transport could not complete the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransportFailure {
    /// ICMP port unreachable (UDP) or a TCP RST to our SYN.
    Refused,
    /// The TCP connection was not established before the deadline.
    ConnectTimeout,
    /// The peer reset an established connection.
    Reset,
    /// The peer closed the connection before a final response.
    Closed,
    /// The peer sent bytes that cannot be framed as SIP (oversized, bad Content-Length).
    Framing {
        detail: String,
    },
    Tls(TlsFailure),
    /// Any other socket error (no route, address unavailable, ...).
    Io {
        detail: String,
    },
}

impl TransportFailure {
    /// One line, in the user's terms.
    pub fn describe(&self) -> String {
        match self {
            TransportFailure::Refused => "refused (nothing listens there)".into(),
            TransportFailure::ConnectTimeout => "no TCP connection before the deadline".into(),
            TransportFailure::Reset => "the peer reset the connection".into(),
            TransportFailure::Closed => "the peer closed the connection".into(),
            TransportFailure::Framing { detail } => format!("unframeable SIP: {detail}"),
            TransportFailure::Tls(f) => format!("TLS: {}", f.describe()),
            TransportFailure::Io { detail } => detail.clone(),
        }
    }

    pub(crate) fn from_io(e: &std::io::Error) -> TransportFailure {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => TransportFailure::Refused,
            ConnectionReset | ConnectionAborted | BrokenPipe => TransportFailure::Reset,
            UnexpectedEof => TransportFailure::Closed,
            _ => TransportFailure::Io {
                detail: e.to_string(),
            },
        }
    }
}

/// TLS facts from one handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsObservation {
    /// Negotiated protocol version (`TLSv1_3`), when the handshake finished.
    pub version: Option<String>,
    /// The server's leaf certificate, recorded even when validation failed.
    pub cert: Option<CertInfo>,
    /// The certificate matched only through RFC 5922 rules (sip: URI SAN or CN).
    pub identity_via_rfc5922: bool,
}

/// Everything observed while probing one target.
#[derive(Debug)]
pub struct Exchange {
    pub target: Target,
    /// Our local address (the Via sent-by).
    pub local: Option<SocketAddr>,
    /// TCP connect, plus the TLS handshake, for stream transports. On a reused
    /// connection ([`StreamProber`]) only the exchange that opened it has one.
    pub connect_time: Option<Duration>,
    /// The transaction, once a request was sent.
    pub transaction: Option<OptionsTransaction>,
    pub failure: Option<TransportFailure>,
    /// The handshake's facts; on a reused connection, only for the exchange that opened it.
    pub tls: Option<TlsObservation>,
    /// Bytes of the OPTIONS request as sent.
    pub request_size: usize,
}

impl Exchange {
    fn new(target: &Target) -> Exchange {
        Exchange {
            target: target.clone(),
            local: None,
            connect_time: None,
            transaction: None,
            failure: None,
            tls: None,
            request_size: 0,
        }
    }
}

/// Sends one OPTIONS to `target` and waits for its final response or the deadline.
pub async fn exchange(target: &Target, config: &ExchangeConfig) -> Exchange {
    let deadline = Instant::now() + config.timeout;
    match target.transport {
        Transport::Udp => udp::exchange(target, config, deadline).await,
        Transport::Tcp | Transport::Tls => stream::exchange(target, config, deadline).await,
    }
}

/// Builds the request and its transaction for a socket bound at `local`.
fn start_transaction(
    target: &Target,
    config: &ExchangeConfig,
    local: SocketAddr,
    deadline: Instant,
) -> OptionsTransaction {
    let ids = TransactionIds::generate(&mut rand::rng());
    let request = build_options(&config.options_spec(target, local), &ids);
    begin(request, ids, target, deadline, config.trace)
}

/// Like [`start_transaction`], with the request stamped from a template of the
/// same target and local address (built once, reused for every probe).
fn start_from_template(
    template: &OptionsTemplate,
    target: &Target,
    deadline: Instant,
    trace: bool,
) -> OptionsTransaction {
    let ids = TransactionIds::generate(&mut rand::rng());
    let request = template.render_to(&target.host, &ids);
    begin(request, ids, target, deadline, trace)
}

fn begin(
    request: Vec<u8>,
    ids: TransactionIds,
    target: &Target,
    deadline: Instant,
    trace: bool,
) -> OptionsTransaction {
    let now = Instant::now();
    let remaining = deadline.saturating_duration_since(now);
    let mut tx =
        OptionsTransaction::new(request, ids, target.addr, target.transport, now, remaining);
    if trace {
        tx.enable_trace();
    }
    tx
}
