//! Hostile SIP peers: in-process responders on 127.0.0.1 that misbehave on
//! purpose (garbage, forged or mismatched answers, floods, slowloris, resets,
//! endless streams, stalled TLS). Each probe must end within its deadline (plus
//! generous slack for a loaded machine), never panic, hold at most
//! [`MAX_MESSAGE`] bytes of a stream, and report the right outcome.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use trunkprobe::outcome::{evaluate, HealthyCodes, Outcome, TargetResult};
use trunkprobe::sip::{build_response, parse_request, Request};
use trunkprobe::transport::{
    exchange, Exchange, ExchangeConfig, Target, TlsFailure, TlsSettings, TransportFailure,
    MAX_MESSAGE,
};
use trunkprobe::trunk::Transport;

/// Deadline of every probe here.
const PROBE: Duration = Duration::from_secs(2);
/// How far past its deadline a probe may end before the test calls it stuck
/// (the machine is shared and noisy: this bounds, it does not measure).
const SLACK: Duration = Duration::from_secs(10);
const TLS_HOST: &str = "hostile.trunkprobe.test";

struct Probed {
    result: TargetResult,
    garbage: u32,
}

/// Probes `addr` once and checks the probe ended in bounded time.
async fn probe(addr: SocketAddr, transport: Transport, tls_ca: Option<&[u8]>) -> Probed {
    let target = Target {
        host: if tls_ca.is_some() {
            TLS_HOST.into()
        } else {
            addr.ip().to_string().into()
        },
        addr,
        transport,
    };
    let mut config = ExchangeConfig::new(PROBE);
    if let Some(ca) = tls_ca {
        config.tls = Some(Arc::new(TlsSettings::with_only_roots(ca).unwrap()));
    }
    let started = Instant::now();
    let ex: Exchange = tokio::time::timeout(PROBE + SLACK, exchange(&target, &config))
        .await
        .expect("the probe must end near its deadline");
    assert!(started.elapsed() < PROBE + SLACK);
    let garbage = ex.transaction.as_ref().map_or(0, |tx| tx.garbage());
    Probed {
        result: evaluate(ex, &HealthyCodes::default()),
        garbage,
    }
}

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A correct 200 to `request` as seen from `source`.
fn ok_for(request: &Request, source: SocketAddr) -> String {
    let bytes = build_response(request, source, 200, "OK", "hostile", &[], None);
    String::from_utf8(bytes).unwrap()
}

fn branch_of(request: &Request) -> String {
    let via = request.header("Via").unwrap();
    let at = via.find("branch=").unwrap() + "branch=".len();
    via[at..].split(';').next().unwrap().to_string()
}

/// Replaces the value of the first `name:` header line.
fn set_header(message: &str, name: &str, value: &str) -> String {
    let mut done = false;
    message
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((n, _)) if !done && n.trim().eq_ignore_ascii_case(name) => {
                done = true;
                format!("{n}: {value}")
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

// ---------------------------------------------------------------- UDP peers

/// A UDP peer that answers the first request it receives with `reply`'s
/// datagrams (sent from `socket`, or from `forger` when given) and ignores
/// retransmissions.
async fn udp_peer<F>(reply: F) -> SocketAddr
where
    F: Fn(&Request, SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
{
    udp_peer_from(None, reply).await
}

async fn udp_peer_from<F>(forger: Option<UdpSocket>, reply: F) -> SocketAddr
where
    F: Fn(&Request, SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
{
    let socket = UdpSocket::bind(lo()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut answered = false;
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if answered {
                continue;
            }
            let Ok(request) = parse_request(&buf[..n]) else {
                continue;
            };
            answered = true;
            for datagram in reply(&request, from) {
                let out = forger.as_ref().unwrap_or(&socket);
                let _ = out.send_to(&datagram, from).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn udp_garbage_is_ignored_and_times_out() {
    let addr = udp_peer(|_, _| {
        vec![
            vec![0xff; 1200],
            b"\0\0\0\0".to_vec(),
            b"SIP/2.0 200\r\n".to_vec(),
            b"SIP/2.0 2000 OK\r\n\r\n".to_vec(),
            b"SIP/2.0 200 OK\r\nVia: \xc3\x28\r\n\r\n".to_vec(),
            b"\r\n\r\n".to_vec(),
            (0..=255u8).cycle().take(4000).collect(),
        ]
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::Timeout, "{:?}", p.result);
    assert!(p.garbage >= 5, "garbage counted: {}", p.garbage);
    assert!(p.result.status_code.is_none());
}

/// A peer that floods the shared UDP socket (what `ping`, `check` and `serve` send
/// from) with answers to nobody, from the probed address itself, as fast as two
/// threads can send. The driver must not read the socket ahead of its timers and
/// new requests for as long as datagrams keep coming: the probe of the silent
/// peer retransmits (Timer E) and ends at its deadline, and a probe of another
/// peer started during the flood is sent and retransmitted or answered. (An
/// answer may be dropped by the kernel while the flood fills the socket's
/// queue: a timeout after retransmitting is honest; one without any is a
/// starved driver. Reading first, this failed about one run in six.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_holds_no_deadline_or_request_of_the_shared_socket() {
    use std::sync::atomic::AtomicBool;
    use trunkprobe::transport::UdpProber;

    let flooder = std::net::UdpSocket::bind(lo()).unwrap();
    let silent = flooder.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // Waits for the first request (it names the prober's socket), then floods it.
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            flooder
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let Ok((n, prober)) = flooder.recv_from(&mut buf) else {
                return;
            };
            let request = parse_request(&buf[..n]).unwrap();
            let stray = set_header(
                &ok_for(&request, prober),
                "Via",
                "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnobody",
            );
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let socket = flooder.try_clone().unwrap();
                    let (stop, sent, stray) = (stop.clone(), sent.clone(), stray.clone());
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            if socket.send_to(stray.as_bytes(), prober).is_ok() {
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
        })
    };
    let answering = udp_peer(|request, from| vec![ok_for(request, from).into_bytes()]).await;

    let prober = Arc::new(UdpProber::new(ExchangeConfig::new(PROBE)));
    let target = |addr: SocketAddr| Target {
        host: addr.ip().to_string().into(),
        addr,
        transport: Transport::Udp,
    };
    let started = Instant::now();
    let first = tokio::spawn({
        let prober = prober.clone();
        async move { prober.exchange(&target(silent)).await }
    });
    // The flood is under way before the second probe is submitted.
    while sent.load(Ordering::Relaxed) < 10_000 && started.elapsed() < SLACK {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = tokio::time::timeout(PROBE + SLACK, prober.exchange(&target(answering))).await;
    let first = tokio::time::timeout(PROBE + SLACK, first).await;
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();

    let second = evaluate(
        second.expect("a probe submitted during the flood must end"),
        &HealthyCodes::default(),
    );
    assert!(
        second.outcome == Outcome::Ok || second.retransmissions > 0,
        "{second:?}"
    );
    let first = evaluate(
        first
            .expect("the flooded probe must end near its deadline")
            .unwrap(),
        &HealthyCodes::default(),
    );
    assert_eq!(first.outcome, Outcome::Timeout, "{first:?}");
    assert!(first.retransmissions > 0, "{first:?}");
    assert!(
        prober.strays() > 0,
        "the flood was read and counted as strays"
    );
}

#[tokio::test]
async fn udp_responses_with_wrong_branch_call_id_or_cseq_do_not_count() {
    let addr = udp_peer(|req, from| {
        let ok = ok_for(req, from);
        vec![
            ok.replace(&branch_of(req), "z9hG4bKnot-ours").into_bytes(),
            set_header(&ok, "Call-ID", "someone-else@evil").into_bytes(),
            set_header(&ok, "CSeq", "4242 OPTIONS").into_bytes(),
            set_header(&ok, "CSeq", &format!("{} INVITE", cseq_of(req))).into_bytes(),
        ]
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::Timeout, "{:?}", p.result);
    assert_eq!(p.result.stray_responses, 4);
}

fn cseq_of(req: &Request) -> String {
    req.header("CSeq")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn udp_strays_then_the_real_answer_counts_once() {
    let addr = udp_peer(|req, from| {
        let ok = ok_for(req, from);
        let busy = ok.replacen("200 OK", "486 Busy Here", 1);
        vec![
            set_header(&ok, "Call-ID", "forged").into_bytes(),
            busy.clone().into_bytes(),
            ok.into_bytes(),
        ]
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::SipError, "{:?}", p.result);
    assert_eq!(p.result.status_code, Some(486));
    assert_eq!(p.result.stray_responses, 1);
}

#[tokio::test]
async fn udp_forged_200_from_another_port_or_address_is_not_success() {
    // The probed peer stays silent; a second socket (another port) and a third
    // (another loopback address) send a 200 that is otherwise perfect.
    for forger_bind in ["127.0.0.1:0", "127.0.0.2:0"] {
        let forger = UdpSocket::bind(forger_bind).await.unwrap();
        let addr = udp_peer_from(Some(forger), |req, from| {
            vec![ok_for(req, from).into_bytes()]
        })
        .await;
        let p = probe(addr, Transport::Udp, None).await;
        assert_eq!(
            p.result.outcome,
            Outcome::Timeout,
            "{forger_bind}: {:?}",
            p.result
        );
        assert!(p.result.status_code.is_none());
    }
}

#[tokio::test]
async fn udp_duplicated_responses_count_once() {
    let addr = udp_peer(|req, from| {
        let ok = ok_for(req, from).into_bytes();
        let trying = String::from_utf8(build_response(req, from, 100, "Trying", "", &[], None))
            .unwrap()
            .into_bytes();
        vec![
            trying.clone(),
            trying,
            ok.clone(),
            ok.clone(),
            ok.clone(),
            ok,
        ]
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::Ok, "{:?}", p.result);
    assert_eq!(p.result.status_code, Some(200));
    assert_eq!(p.result.provisional, vec![100, 100]);
    assert_eq!(p.result.stray_responses, 0);
}

#[tokio::test]
async fn udp_a_hundred_provisionals_and_no_final_times_out() {
    let addr = udp_peer(|req, from| {
        (0..100)
            .map(|i| build_response(req, from, 180 + (i % 3), "Ringing", "", &[], None))
            .collect()
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::Timeout, "{:?}", p.result);
    // Remembered provisionals are capped; the report stays small.
    assert!(!p.result.provisional.is_empty());
    assert!(
        p.result.provisional.len() <= 16,
        "{}",
        p.result.provisional.len()
    );
}

#[tokio::test]
async fn udp_the_largest_datagram_is_handled() {
    // 65,507 bytes is the largest UDP payload over IPv4: below MAX_MESSAGE, so a
    // well-formed one is accepted; a truncated body (Content-Length too large)
    // is garbage.
    const MAX_UDP: usize = 65_507;
    let addr = udp_peer(|req, from| {
        let ok = ok_for(req, from);
        let pad = MAX_UDP - ok.len() - "X-Pad: \r\n".len();
        let big = ok.replacen(
            "\r\n\r\n",
            &format!("\r\nX-Pad: {}\r\n\r\n", "a".repeat(pad)),
            1,
        );
        assert_eq!(big.len(), MAX_UDP);
        let lying = set_header(&ok, "Content-Length", "999999999");
        vec![lying.into_bytes(), big.into_bytes()]
    })
    .await;
    let p = probe(addr, Transport::Udp, None).await;
    assert_eq!(p.result.outcome, Outcome::Ok, "{:?}", p.result);
    assert_eq!(p.garbage, 1);
}

// ------------------------------------------------------------ stream peers

/// A stream to a hostile peer: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Default)]
struct Written(Arc<AtomicU64>);

impl Written {
    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A TCP listener (TLS with a fresh test CA when `tls`) running `behaviour` on
/// every connection; `reset` sets SO_LINGER 0 so that closing sends RST.
/// Returns the address, the CA PEM for TLS, and the count of bytes the
/// behaviour managed to write.
async fn stream_peer<F, Fut>(
    tls: bool,
    reset: bool,
    behaviour: F,
) -> (SocketAddr, Option<Vec<u8>>, Written)
where
    F: Fn(Box<dyn Io>, SocketAddr, Written) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(lo()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ca, config) = if tls {
        let (ca, config) = trunkprobe::demo::generate_tls(TLS_HOST).unwrap();
        (Some(ca), Some(config))
    } else {
        (None, None)
    };
    let written = Written::default();
    let counter = written.clone();
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            if reset {
                tcp.set_zero_linger().unwrap();
            }
            let (behaviour, config, counter) = (behaviour.clone(), config.clone(), counter.clone());
            tokio::spawn(async move {
                let io: Box<dyn Io> = match config {
                    Some(c) => match tokio_rustls::TlsAcceptor::from(c).accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => return,
                    },
                    None => Box::new(tcp),
                };
                behaviour(io, peer, counter).await;
            });
        }
    });
    (addr, ca, written)
}

/// Reads one request (OPTIONS has no body) from the stream.
async fn read_request(io: &mut Box<dyn Io>) -> Option<Request> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = io.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    parse_request(&got).ok()
}

/// Writes until the client goes away (or `limit` bytes), counting what went out.
async fn flood(io: &mut Box<dyn Io>, chunk: &[u8], limit: u64, written: &Written) {
    while written.get() < limit {
        if io.write_all(chunk).await.is_err() {
            return;
        }
        written.add(chunk.len());
    }
}

async fn for_both(mut check: impl AsyncFnMut(bool)) {
    check(false).await;
    check(true).await;
}

fn transport(tls: bool) -> Transport {
    if tls {
        Transport::Tls
    } else {
        Transport::Tcp
    }
}

#[tokio::test]
async fn stream_peer_that_sends_nothing_times_out() {
    for_both(async |tls| {
        let (addr, ca, _) = stream_peer(tls, false, |mut io, _, _| async move {
            let _ = read_request(&mut io).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::Timeout,
            "tls={tls}: {:?}",
            p.result
        );
        assert!(p.result.failure.is_none(), "{:?}", p.result.failure);
    })
    .await;
}

#[tokio::test]
async fn slowloris_is_cut_by_the_probe_deadline() {
    for_both(async |tls| {
        let (addr, ca, written) = stream_peer(tls, false, |mut io, peer, written| async move {
            let Some(req) = read_request(&mut io).await else {
                return;
            };
            for b in ok_for(&req, peer).bytes() {
                if io.write_all(&[b]).await.is_err() || io.flush().await.is_err() {
                    return;
                }
                written.add(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::Timeout,
            "tls={tls}: {:?}",
            p.result
        );
        assert!(written.get() >= 1, "the peer did trickle");
    })
    .await;
}

#[tokio::test]
async fn headers_that_never_end_are_a_framing_error() {
    for_both(async |tls| {
        let (addr, ca, written) = stream_peer(tls, false, |mut io, _, written| async move {
            if read_request(&mut io).await.is_none() {
                return;
            }
            let _ = io.write_all(b"SIP/2.0 200 OK\r\n").await;
            flood(
                &mut io,
                b"X-Never-Ends: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                1 << 30,
                &written,
            )
            .await;
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::NetworkError,
            "tls={tls}: {:?}",
            p.result
        );
        assert!(
            matches!(p.result.failure, Some(TransportFailure::Framing { .. })),
            "{:?}",
            p.result.failure
        );
        // The prober stopped reading: far less than the gigabyte offered went out.
        assert!(written.get() < 64 << 20, "{} bytes written", written.get());
    })
    .await;
}

#[tokio::test]
async fn huge_content_length_is_refused_at_once() {
    for_both(async |tls| {
        let (addr, ca, _) = stream_peer(tls, false, |mut io, peer, _| async move {
            let Some(req) = read_request(&mut io).await else {
                return;
            };
            let lying = set_header(&ok_for(&req, peer), "Content-Length", "999999999");
            let _ = io.write_all(lying.as_bytes()).await;
            let _ = io.write_all(&[b'x'; 4096]).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::NetworkError,
            "tls={tls}: {:?}",
            p.result
        );
        match &p.result.failure {
            Some(TransportFailure::Framing { detail }) => {
                assert!(detail.contains("limit"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_gigabyte_stream_stops_at_the_message_cap() {
    for_both(async |tls| {
        // A start line, then a gigabyte without any end of headers.
        let (addr, ca, written) = stream_peer(tls, false, |mut io, _, written| async move {
            if read_request(&mut io).await.is_none() {
                return;
            }
            let _ = io.write_all(b"SIP/2.0 200 OK\r\n").await;
            flood(&mut io, &[b'A'; 64 * 1024], 1 << 30, &written).await;
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::NetworkError,
            "tls={tls}: {:?}",
            p.result
        );
        assert!(matches!(
            p.result.failure,
            Some(TransportFailure::Framing { .. })
        ));
        // What went out is the cap plus socket buffers, not the gigabyte.
        eprintln!("tls={tls}: the peer wrote {} bytes", written.get());
        assert!(written.get() < 64 << 20, "{} bytes written", written.get());
        assert!(written.get() as usize >= MAX_MESSAGE / 2);
    })
    .await;
}

#[tokio::test]
async fn endless_keepalives_end_at_the_deadline() {
    // CRLF keep-alives are skipped, never buffered; the deadline ends the probe.
    let (addr, _, written) = stream_peer(false, false, |mut io, _, written| async move {
        if read_request(&mut io).await.is_none() {
            return;
        }
        flood(&mut io, &b"\r\n".repeat(8192), 1 << 30, &written).await;
    })
    .await;
    let p = probe(addr, Transport::Tcp, None).await;
    assert_eq!(p.result.outcome, Outcome::Timeout, "{:?}", p.result);
    assert!(written.get() > 0);
}

#[tokio::test]
async fn tls_server_that_never_finishes_the_handshake() {
    // Accepts TCP, reads the ClientHello, answers nothing.
    let (addr, _, _) = stream_peer(false, false, |mut io, _, _| async move {
        let mut buf = [0u8; 4096];
        let _ = io.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let (ca, _) = trunkprobe::demo::generate_tls(TLS_HOST).unwrap();
    let p = probe(addr, Transport::Tls, Some(&ca)).await;
    assert_eq!(p.result.outcome, Outcome::TlsError, "{:?}", p.result);
    assert_eq!(
        p.result.failure,
        Some(TransportFailure::Tls(TlsFailure::HandshakeTimeout))
    );
}

#[tokio::test]
async fn tls_server_answering_plain_text_is_a_tls_error() {
    let (addr, _, _) = stream_peer(false, false, |mut io, _, _| async move {
        let mut buf = [0u8; 4096];
        let _ = io.read(&mut buf).await;
        let _ = io
            .write_all(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let (ca, _) = trunkprobe::demo::generate_tls(TLS_HOST).unwrap();
    let p = probe(addr, Transport::Tls, Some(&ca)).await;
    assert_eq!(p.result.outcome, Outcome::TlsError, "{:?}", p.result);
}

#[tokio::test]
async fn reset_mid_response_is_a_network_error() {
    for_both(async |tls| {
        let (addr, ca, _) = stream_peer(tls, true, |mut io, peer, _| async move {
            let Some(req) = read_request(&mut io).await else {
                return;
            };
            let ok = ok_for(&req, peer);
            let _ = io.write_all(&ok.as_bytes()[..ok.len() / 2]).await;
            let _ = io.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(io); // SO_LINGER 0: RST
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(
            p.result.outcome,
            Outcome::NetworkError,
            "tls={tls}: {:?}",
            p.result
        );
        // TCP sees the RST; rustls may report the cut as an unexpected EOF.
        assert!(
            matches!(
                p.result.failure,
                Some(TransportFailure::Reset | TransportFailure::Closed)
            ),
            "tls={tls}: {:?}",
            p.result.failure
        );
        if !tls {
            assert_eq!(p.result.failure, Some(TransportFailure::Reset));
        }
    })
    .await;
}

#[tokio::test]
async fn stream_pipelined_garbage_then_answer() {
    // Unparseable-but-framed messages and a stray precede the real answer on
    // the same connection: the answer still counts.
    for_both(async |tls| {
        let (addr, ca, _) = stream_peer(tls, false, |mut io, peer, _| async move {
            let Some(req) = read_request(&mut io).await else {
                return;
            };
            let ok = ok_for(&req, peer);
            let stray = set_header(&ok, "Call-ID", "not-ours");
            let junk = "HELLO WORLD\r\nx: y\r\n\r\n";
            let all = format!("\r\n\r\n{junk}{stray}\r\n{ok}");
            let _ = io.write_all(all.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        let p = probe(addr, transport(tls), ca.as_deref()).await;
        assert_eq!(p.result.outcome, Outcome::Ok, "tls={tls}: {:?}", p.result);
        assert_eq!(p.result.stray_responses, 1);
        assert_eq!(p.garbage, 1);
    })
    .await;
}

// ------------------------------------------------- through the text report

#[tokio::test]
async fn peer_text_with_control_characters_never_reaches_the_terminal_raw() {
    // Reason phrase, Server, and SDP (codec names, crypto suite) carry escape
    // sequences, a bell and a forged line.
    let evil = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m";
    let addr = udp_peer(move |req, from| {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 96 0\r\na=rtpmap:96 X{evil}/8000\r\n\
             a=crypto:1 AES{evil} inline:x\r\n"
        );
        let headers = vec![("Server".to_string(), format!("carrier{evil}\u{85}HEALTHY"))];
        let reason = format!("OK{evil}");
        let body = ("application/sdp", sdp.as_bytes());
        vec![build_response(
            req,
            from,
            200,
            &reason,
            "evil",
            &headers,
            Some(body),
        )]
    })
    .await;
    let out = tokio::process::Command::new(common::bin())
        .args([
            "check",
            "--no-origination", // no traffic off loopback
            "--gateway",
            &addr.to_string(),
            "--transport",
            "udp",
        ])
        .args(["--format", "text", "--timeout", "2s"])
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PROBE + SLACK, out)
        .await
        .expect("check must finish")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(text.contains(" ok "), "{text}\n{err}");
    for (i, c) in text.char_indices() {
        assert!(
            !c.is_control() || c == '\n',
            "control character {c:?} at byte {i} of the text report:\n{text}"
        );
    }
}
