//! The demo's media carriers: small in-process user agents that answer an
//! INVITE (100, then 200 with an SDP answer), take the ACK and the BYE, and
//! do one thing with the caller's RTP: echo it back (two-way audio), drop it
//! and send nothing (one-way audio), or, over TLS with SDES, decrypt it with
//! the offer's key and echo it encrypted with their own.
//!
//! For `demo` and tests only: they answer anything, never retransmit (the
//! demo runs on loopback) and end each call's media after [`MEDIA_CAP`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::rtp::sdes::{CryptoAttribute, SrtpSuite};
use crate::rtp::srtp::{SrtpInbound, SrtpOutbound};
use crate::sip::{build_response, parse_request, sdp, Request, StreamFramer};
use crate::transport::MAX_MESSAGE;

/// A demo call's media ends by then whatever happens.
pub const MEDIA_CAP: Duration = Duration::from_secs(120);

/// What a media carrier does with the caller's RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Sends every packet back to where it came from.
    Echo,
    /// Answers, then sends nothing: one-way audio.
    Silent,
    /// Requires SDES (`RTP/SAVP` with `a=crypto`, else 488) and echoes the
    /// caller's SRTP re-encrypted under its own key.
    SdesEcho,
    /// As `SdesEcho`, but encrypts under another key than the one it answered:
    /// a carrier-side SRTP fault no real peer produces on purpose.
    SdesWrongKey,
}

/// The calls of one carrier: Call-ID to the media task.
type Calls = HashMap<String, JoinHandle<()>>;

/// A media carrier on UDP at the returned address.
pub async fn udp_call_carrier(
    bind: SocketAddr,
    media: Media,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = UdpSocket::bind(bind).await?;
    let addr = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let mut calls = Calls::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            for reply in answer(&buf[..n], from, addr, "udp", media, &mut calls).await {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    Ok((addr, task))
}

/// A media carrier on TCP, or TLS when `tls` is given, at the returned address.
pub async fn stream_call_carrier(
    bind: SocketAddr,
    media: Media,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let transport = if tls.is_some() { "tls" } else { "tcp" };
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(s) = acceptor.accept(tcp).await {
                            serve(s, peer, addr, transport, media).await;
                        }
                    }
                    None => serve(tcp, peer, addr, transport, media).await,
                }
            });
        }
    });
    Ok((addr, task))
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: &str,
    media: Media,
) {
    let mut calls = Calls::new();
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Ok(Some(msg)) = framer.next_message() {
            for reply in answer(&msg, peer, local, transport, media, &mut calls).await {
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
            }
        }
    }
    for (_, task) in calls {
        task.abort();
    }
}

/// The responses to one request.
async fn answer(
    bytes: &[u8],
    from: SocketAddr,
    local: SocketAddr,
    transport: &str,
    media: Media,
    calls: &mut Calls,
) -> Vec<Vec<u8>> {
    let Ok(req) = parse_request(bytes) else {
        return Vec::new();
    };
    let call_id = req.header("Call-ID").unwrap_or_default().to_string();
    let reply = |code: u16, reason: &str, headers: &[(String, String)], body: Option<&[u8]>| {
        build_response(
            &req,
            from,
            code,
            reason,
            "demo-uas",
            headers,
            body.map(|b| ("application/sdp", b)),
        )
    };
    match req.method.as_str() {
        "INVITE" => {
            if calls.contains_key(&call_id) {
                // A retransmission or a re-INVITE: the demo keeps its first answer.
                return Vec::new();
            }
            let trying = reply(100, "Trying", &[], None);
            let (code, reason, sdp) = match start_media(&req, media).await {
                Ok((sdp, task)) => {
                    calls.insert(call_id, task);
                    (200, "OK", Some(sdp))
                }
                Err(why) => (488, why, None),
            };
            let contact = vec![(
                "Contact".to_string(),
                format!("<sip:demo@{local};transport={transport}>"),
            )];
            vec![trying, reply(code, reason, &contact, sdp.as_deref())]
        }
        "BYE" | "CANCEL" => {
            if let Some(task) = calls.remove(&call_id) {
                task.abort();
            }
            vec![reply(200, "OK", &[], None)]
        }
        "ACK" => Vec::new(),
        _ => vec![reply(200, "OK", &[], None)],
    }
}

/// Binds the call's media socket and starts its task; the SDP answer, or the
/// reason phrase of a 488.
async fn start_media(
    req: &Request,
    media: Media,
) -> Result<(Vec<u8>, JoinHandle<()>), &'static str> {
    let offer = sdp::parse(&req.body).map_err(|_| "Not Acceptable Here (no SDP)")?;
    let m = offer
        .media
        .iter()
        .find(|m| m.port != 0 && m.kind == "audio")
        .ok_or("Not Acceptable Here (no audio)")?;
    // Media is echoed to where it comes from; the offer's address says
    // which family and interface to bind.
    let ip: std::net::IpAddr = m
        .connection
        .as_deref()
        .and_then(|c| c.parse().ok())
        .ok_or("Not Acceptable Here (no c= address)")?;
    let keys = match media {
        Media::SdesEcho | Media::SdesWrongKey => {
            let text = String::from_utf8_lossy(&req.body);
            let theirs = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("a=crypto:"))
                .filter_map(|v| CryptoAttribute::parse(v).ok())
                .find(|a| a.suite == SrtpSuite::AesCm128HmacSha1_80)
                .filter(|_| m.profile.is_secure())
                .ok_or("Not Acceptable Here (SRTP required)")?;
            let ours = CryptoAttribute::generate(theirs.tag, SrtpSuite::AesCm128HmacSha1_80);
            let inbound = SrtpInbound::new(&theirs.key, theirs.suite).map_err(|_| "Bad Key")?;
            let sending = match media {
                Media::SdesWrongKey => crate::rtp::sdes::MasterKey::generate(),
                _ => ours.key.clone(),
            };
            let outbound = SrtpOutbound::new(&sending, ours.suite).map_err(|_| "Bad Key")?;
            Some((ours, inbound, outbound))
        }
        _ => None,
    };
    let bind = SocketAddr::new(ip, 0);
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|_| "Not Acceptable Here (no media port)")?;
    let port = socket
        .local_addr()
        .map_err(|_| "Not Acceptable Here (no media port)")?
        .port();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut answer = format!(
        "v=0\r\no=demo 1 1 IN {family} {ip}\r\ns=trunkprobe demo\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} {} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n",
        if keys.is_some() { "RTP/SAVP" } else { "RTP/AVP" }
    );
    let crypto = keys.as_ref().map(|(ours, _, _)| ours.to_string());
    if let Some(c) = crypto {
        answer.push_str(&format!("a=crypto:{c}\r\n"));
    }
    answer.push_str("a=sendrecv\r\n");
    let task = tokio::spawn(async move {
        let mut keys = keys.map(|(_, i, o)| (i, o));
        let mut buf = vec![0u8; 2048];
        let until = tokio::time::Instant::now() + MEDIA_CAP;
        loop {
            let r = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await;
            let Ok(Ok((n, from))) = r else { return };
            let packet = &buf[..n];
            let back = match (media, keys.as_mut()) {
                (Media::Silent, _) => continue,
                (Media::SdesEcho | Media::SdesWrongKey, Some((inbound, outbound))) => {
                    let Ok(plain) = inbound.unprotect_rtp(packet) else {
                        continue;
                    };
                    let Ok(p) = outbound.protect_rtp(&plain) else {
                        continue;
                    };
                    p
                }
                _ => packet.to_vec(),
            };
            let _ = socket.send_to(&back, from).await;
        }
    });
    Ok((answer.into_bytes(), task))
}
