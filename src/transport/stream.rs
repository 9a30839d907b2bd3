//! OPTIONS over TCP and TLS: connect (and handshake) within the deadline, send
//! once, and frame the answers by Content-Length. No retransmissions: the
//! transport is reliable.
//!
//! `exchange` opens a connection for its one request (a probe sees the carrier
//! as a new caller does); `connect` is shared with
//! [`StreamProber`](super::StreamProber), which keeps one connection for many.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::tls::CertRecord;
use super::{
    start_transaction, Exchange, ExchangeConfig, Target, TlsFailure, TlsObservation,
    TransportFailure, MAX_MESSAGE,
};
use crate::sip::{OptionsTransaction, StreamFramer};
use crate::trunk::Transport;

pub(super) async fn exchange(
    target: &Target,
    config: &ExchangeConfig,
    deadline: Instant,
) -> Exchange {
    let mut ex = Exchange::new(target);
    let Some((connection, local)) = connect(target, config, deadline, &mut ex).await else {
        return ex;
    };
    let mut tx = start_transaction(target, config, local, deadline);
    ex.failure = match connection {
        Connection::Tcp(mut tcp) => {
            drive(&mut tcp, &mut tx, target.addr, &mut ex.request_size).await
        }
        Connection::Tls(mut tls) => {
            drive(&mut *tls, &mut tx, target.addr, &mut ex.request_size).await
        }
    };
    ex.transaction = Some(tx);
    ex
}

/// An established connection to a target, ready for SIP.
pub(super) enum Connection {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A TCP connection to `addr` from the configured `--source-ip` (else the
/// address the kernel picks).
async fn connect_from(config: &ExchangeConfig, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let bind = config.bind_for(addr.ip());
    if bind.ip().is_unspecified() {
        return TcpStream::connect(addr).await;
    }
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(bind)?;
    socket.connect(addr).await
}

/// Connects to `target` (and for TLS completes the handshake) before
/// `deadline`, and returns the connection with its local address. What it
/// observed goes into `ex`: `local`, `connect_time` once established, the TLS
/// version and certificate (also when the handshake failed), or the `failure`.
pub(super) async fn connect(
    target: &Target,
    config: &ExchangeConfig,
    deadline: Instant,
    ex: &mut Exchange,
) -> Option<(Connection, SocketAddr)> {
    let started = Instant::now();
    let tcp = match timeout_at(deadline.into(), connect_from(config, target.addr)).await {
        Err(_) => {
            ex.failure = Some(TransportFailure::ConnectTimeout);
            return None;
        }
        Ok(Err(e)) => {
            ex.failure = Some(TransportFailure::from_io(&e));
            return None;
        }
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    ex.local = tcp.local_addr().ok();
    let Some(local) = ex.local else {
        ex.failure = Some(TransportFailure::Io {
            detail: "no local address".into(),
        });
        return None;
    };

    if target.transport != Transport::Tls {
        ex.connect_time = Some(started.elapsed());
        return Some((Connection::Tcp(tcp), local));
    }

    let Some(settings) = config.tls.as_ref() else {
        ex.failure = Some(TransportFailure::Tls(TlsFailure::Protocol {
            detail: "no TLS settings configured".into(),
        }));
        return None;
    };
    let server_name = match server_name(&target.host) {
        Ok(n) => n,
        Err(detail) => {
            ex.failure = Some(TransportFailure::Tls(TlsFailure::Protocol { detail }));
            return None;
        }
    };
    let record = Arc::new(Mutex::new(CertRecord::default()));
    let connector = tokio_rustls::TlsConnector::from(settings.client_config(record.clone()));
    let handshake = timeout_at(deadline.into(), connector.connect(server_name, tcp)).await;
    let observed = record.lock().map(|r| r.clone()).unwrap_or_default();
    let mut obs = TlsObservation {
        version: None,
        cert: observed.leaf,
        identity_via_rfc5922: observed.identity_via_rfc5922,
    };
    let tls = match handshake {
        Err(_) => {
            ex.failure = Some(TransportFailure::Tls(TlsFailure::HandshakeTimeout));
            ex.tls = Some(obs);
            return None;
        }
        Ok(Err(e)) => {
            ex.failure = Some(TransportFailure::Tls(TlsFailure::from_io(&e, &target.host)));
            ex.tls = Some(obs);
            return None;
        }
        Ok(Ok(s)) => s,
    };
    ex.connect_time = Some(started.elapsed());
    obs.version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}"));
    ex.tls = Some(obs);
    Some((Connection::Tls(Box::new(tls)), local))
}

/// The TLS server name: the configured host (an IP literal verifies against IP SANs).
fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.trim_end_matches('.').to_string())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))
}

/// Runs the transaction over an established stream until it completes, the
/// deadline passes, or the stream fails.
async fn drive<S>(
    stream: &mut S,
    tx: &mut OptionsTransaction,
    peer: SocketAddr,
    sent: &mut usize,
) -> Option<TransportFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(bytes) = tx.poll_transmit() {
            *sent = bytes.len();
            if let Err(e) = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            }
            .await
            {
                return Some(TransportFailure::from_io(&e));
            }
        }
        if tx.is_done() {
            return None;
        }
        let wake = tx.poll_timeout()?;
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = stream.read(&mut buf) => match r {
                Ok(0) => return Some(TransportFailure::Closed),
                Ok(n) => {
                    framer.push(&buf[..n]);
                    loop {
                        match framer.next_frame() {
                            Ok(Some(msg)) => {
                                tx.handle_message(Instant::now(), peer, msg);
                            }
                            Ok(None) => break,
                            Err(e) => {
                                return Some(TransportFailure::Framing { detail: e.to_string() })
                            }
                        }
                    }
                }
                Err(e) => return Some(TransportFailure::from_io(&e)),
            },
        }
    }
}
