//! The sockets of a test call: the SIP channel to the gateway (a connected UDP
//! socket, or a TCP/TLS connection framed by Content-Length) and the RTP/RTCP
//! socket pair (an even port and the next one, RFC 3550 §11).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::stream::{connect, Connection};
use super::{Exchange, ExchangeConfig, Target, TlsObservation, TransportFailure, MAX_MESSAGE};
use crate::sip::StreamFramer;
use crate::trunk::Transport;

/// The SIP side of a call.
pub struct SipChannel(Channel);

enum Channel {
    /// Connected to the gateway: ICMP errors come back, other sources are dropped.
    /// The buffer is kept: a call polls `recv` on every wake-up (50 a second).
    Udp(UdpSocket, Vec<u8>),
    Stream {
        conn: Connection,
        framer: StreamFramer,
        peer: SocketAddr,
    },
}

/// What opening the channel showed (connect time, TLS facts).
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub local: Option<SocketAddr>,
    pub tls: Option<TlsObservation>,
}

impl SipChannel {
    /// Opens the channel to `target` before `deadline` (connect and handshake).
    pub async fn open(
        target: &Target,
        config: &ExchangeConfig,
        deadline: Instant,
    ) -> Result<(SipChannel, Opened), (TransportFailure, Opened)> {
        if target.transport == Transport::Udp {
            let bind = config.bind_for(target.addr.ip());
            let fail = |e: io::Error| (TransportFailure::from_io(&e), Opened::default());
            let socket = UdpSocket::bind(bind).await.map_err(fail)?;
            socket.connect(target.addr).await.map_err(fail)?;
            let local = socket.local_addr().map_err(fail)?;
            return Ok((
                SipChannel(Channel::Udp(socket, vec![0u8; MAX_MESSAGE])),
                Opened {
                    local: Some(local),
                    tls: None,
                },
            ));
        }
        let mut ex = Exchange::new(target);
        let opened = |ex: &Exchange| Opened {
            local: ex.local,
            tls: ex.tls.clone(),
        };
        match connect(target, config, deadline, &mut ex).await {
            Some((conn, _)) => Ok((
                SipChannel(Channel::Stream {
                    conn,
                    framer: StreamFramer::new(MAX_MESSAGE),
                    peer: target.addr,
                }),
                opened(&ex),
            )),
            None => Err((
                ex.failure.clone().unwrap_or(TransportFailure::Closed),
                opened(&ex),
            )),
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportFailure> {
        let r = match &mut self.0 {
            Channel::Udp(s, _) => s.send(bytes).await.map(|_| ()),
            Channel::Stream { conn, .. } => match conn {
                Connection::Tcp(s) => write_all(s, bytes).await,
                Connection::Tls(s) => write_all(&mut **s, bytes).await,
            },
        };
        r.map_err(|e| TransportFailure::from_io(&e))
    }

    /// The next message and where it came from. Cancel-safe: bytes read
    /// before a cancelled call stay in the framer.
    pub async fn recv(&mut self) -> Result<(Vec<u8>, SocketAddr), TransportFailure> {
        match &mut self.0 {
            Channel::Udp(s, buf) => {
                let (n, from) = s
                    .recv_from(buf)
                    .await
                    .map_err(|e| TransportFailure::from_io(&e))?;
                Ok((buf[..n].to_vec(), from))
            }
            Channel::Stream { conn, framer, peer } => loop {
                match framer.next_message() {
                    Ok(Some(msg)) => return Ok((msg, *peer)),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(TransportFailure::Framing {
                            detail: e.to_string(),
                        })
                    }
                }
                let mut buf = [0u8; 16 * 1024];
                let n = match conn {
                    Connection::Tcp(s) => s.read(&mut buf).await,
                    Connection::Tls(s) => s.read(&mut buf).await,
                }
                .map_err(|e| TransportFailure::from_io(&e))?;
                if n == 0 {
                    return Err(TransportFailure::Closed);
                }
                framer.push(&buf[..n]);
            },
        }
    }
}

async fn write_all<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// An RTP socket on an even port and its RTCP socket on the next one.
pub struct MediaSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl MediaSockets {
    /// Binds a pair on `ip`, trying random even ports of 10000-59998.
    pub async fn bind(ip: IpAddr) -> io::Result<MediaSockets> {
        let mut last = io::Error::other("no free RTP port pair");
        for _ in 0..64 {
            let port = 10_000 + 2 * rand::random_range(0..25_000u16);
            let rtp = match UdpSocket::bind((ip, port)).await {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            match UdpSocket::bind((ip, port + 1)).await {
                Ok(rtcp) => return Ok(MediaSockets { rtp, rtcp }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn rtp_addr(&self) -> io::Result<SocketAddr> {
        self.rtp.local_addr()
    }
}
