//! `trunkprobe ping --reuse-connection`: every TCP/TLS request over one
//! connection, up to `--concurrency` in flight. Against real peers (SIPp `-t t1`,
//! Kamailio over TCP and TLS), and against in-process peers for the faults no
//! real peer produces: a peer closing the connection mid-run, forged answers on
//! the stream, answers split across reads or coalesced in one, oversized
//! answers. The requests themselves are checked on the wire.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    closed_tcp_port, closed_udp_port, Kamailio, KamailioOpts, Sipp, SippTransport, TestPki,
};
use futures_util::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trunkprobe::sip::{build_response, parse_request, StreamFramer, TxOutcome};
use trunkprobe::transport::{
    Exchange, ExchangeConfig, StreamProber, Target, TransportFailure, MAX_MESSAGE,
};
use trunkprobe::trunk::Transport;

const GW_NAME: &str = "gw.test.local";

/// Runs the binary's `ping` with `args`; exit code and stdout.
async fn ping(args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(common::bin())
        .arg("ping")
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `ping -q --reuse-connection -i 0 --concurrency C -c N`, then `extra`, then `uri`.
async fn ping_reusing(
    concurrency: u32,
    count: u32,
    extra: &[&str],
    uri: &str,
) -> (Option<i32>, String) {
    let (c, n) = (concurrency.to_string(), count.to_string());
    let mut args = vec![
        "-q",
        "--reuse-connection",
        "-i",
        "0",
        "--concurrency",
        &c,
        "-c",
        &n,
    ];
    args.extend_from_slice(extra);
    args.push(uri);
    ping(&args).await
}

fn ping_sync(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::bin())
        .arg("ping")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

const REUSE_2000: [&str; 9] = [
    "-q",
    "--reuse-connection",
    "-i",
    "0",
    "--concurrency",
    "32",
    "-c",
    "2000",
    "--timeout=5s",
];

fn all_answered_over_one_connection(code: Option<i32>, text: &str, logs: &str) {
    assert_eq!(code, Some(0), "{text}\n{logs}");
    assert!(
        text.contains("2000 requests sent, 2000 answered (2000 ok), 0 lost"),
        "{text}\n{logs}"
    );
    assert!(text.contains("responses: 200×2000"), "{text}");
    assert!(text.contains("connections: 1 opened\n"), "{text}");
    assert!(!text.contains("stray"), "{text}");
}

// ------------------------------------------------------------- real peers

#[test]
fn sipp_t1_answers_2000_pipelined_requests_over_one_connection() {
    let sipp = Sipp::start(
        "options_200.xml",
        SippTransport::Tcp,
        &["-buff_size", "4194304"],
    );
    let uri = format!("sip:127.0.0.1:{};transport=tcp", sipp.addr().port());
    let mut args = REUSE_2000.to_vec();
    args.push(&uri);
    let (code, text) = ping_sync(&args);
    all_answered_over_one_connection(code, &text, &sipp.logs());
}

#[test]
fn kamailio_answers_2000_pipelined_requests_over_one_tcp_and_one_tls_connection() {
    let pki = TestPki::new();
    let kam = Kamailio::start(KamailioOpts {
        tls: Some(pki.valid(GW_NAME)),
        ..Default::default()
    });
    let ca = pki.ca_path().to_str().unwrap().to_string();
    let pin = format!("{GW_NAME}:127.0.0.1");
    let tcp = format!("sip:127.0.0.1:{};transport=tcp", kam.tcp_addr().port());
    let tls = format!("sip:{GW_NAME}:{};transport=tls", kam.tls_addr().port());
    for uri in [&tcp, &tls] {
        let mut args = REUSE_2000.to_vec();
        args.extend(["--resolve", &pin, "--ca-file", &ca, uri]);
        let (code, text) = ping_sync(&args);
        all_answered_over_one_connection(code, &text, &kam.logs());
    }
}

// ------------------------------------------------------- in-process peers

/// What an in-process peer does on its connections.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// On the first connection, answer this many requests, then close it
    /// (FIN, then read and drop everything until the client closes too);
    /// later connections answer everything.
    CloseFirstAfter(usize),
    /// Before each answer, two forged ones: another branch, then the
    /// request's branch with another Call-ID (both `500 Forged`).
    Forge,
    /// By request number on the connection, modulo 4: the answer split in two
    /// writes 20 ms apart; held back; written together with the held one in one
    /// write; written normally.
    SplitAndCoalesce,
    /// On the first connection, after this many answers, a header announcing a
    /// gigabyte body; later connections answer everything.
    OversizedAfter(usize),
    /// No answer, only RFC 5626 keep-alives (`\r\n\r\n`), as fast as the
    /// connection takes them.
    KeepAliveFlood,
}

/// One request as the peer read it, with the address its connection came from.
struct Seen {
    connection: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

struct Peer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

async fn peer(behaviour: Behaviour) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((tcp, from)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let index = c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp, from, index, behaviour, s.clone()));
        }
    });
    Peer {
        addr,
        seen,
        connections,
    }
}

async fn serve(
    mut tcp: TcpStream,
    from: SocketAddr,
    connection: usize,
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut framer = StreamFramer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    let mut count = 0usize;
    let mut held: Option<Vec<u8>> = None;
    let mut closed = false;
    if let Behaviour::KeepAliveFlood = behaviour {
        let flood = b"\r\n\r\n".repeat(4096);
        while tcp.write_all(&flood).await.is_ok() {}
        return;
    }
    loop {
        let n = match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Ok(Some(bytes)) = framer.next_message() {
            seen.lock().unwrap().push(Seen {
                connection,
                from,
                bytes: bytes.clone(),
            });
            if closed {
                continue;
            }
            let Ok(request) = parse_request(&bytes) else {
                continue;
            };
            let ok = build_response(&request, from, 200, "OK", "peer", &[], None);
            let n = count;
            count += 1;
            let written = match behaviour {
                Behaviour::CloseFirstAfter(k) | Behaviour::OversizedAfter(k)
                    if connection == 0 && n >= k =>
                {
                    closed = true;
                    if let Behaviour::OversizedAfter(_) = behaviour {
                        let _ = tcp
                            .write_all(b"SIP/2.0 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                            .await;
                    }
                    tcp.shutdown().await
                }
                Behaviour::Forge => {
                    let forged = build_response(&request, from, 500, "Forged", "peer", &[], None);
                    let forged = String::from_utf8(forged).unwrap();
                    let other_branch = forged.replace(";branch=z9hG4bK", ";branch=z9hG4bKforged");
                    let call_id = request.header("Call-ID").unwrap();
                    let other_call_id =
                        forged.replace(&format!("Call-ID: {call_id}"), "Call-ID: forged");
                    assert_ne!(other_branch, forged);
                    assert_ne!(other_call_id, forged);
                    let mut w = tcp.write_all(other_branch.as_bytes()).await;
                    if w.is_ok() {
                        w = tcp.write_all(other_call_id.as_bytes()).await;
                    }
                    if w.is_ok() {
                        w = tcp.write_all(&ok).await;
                    }
                    w
                }
                Behaviour::SplitAndCoalesce => match n % 4 {
                    0 => {
                        let w = tcp.write_all(&ok[..30]).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        w.and(tcp.write_all(&ok[30..]).await)
                    }
                    1 => {
                        held = Some(ok);
                        Ok(())
                    }
                    2 => {
                        let both = [held.take().unwrap_or_default(), ok].concat();
                        tcp.write_all(&both).await
                    }
                    _ => tcp.write_all(&ok).await,
                },
                _ => tcp.write_all(&ok).await,
            };
            if written.is_err() {
                return;
            }
        }
    }
}

impl Peer {
    fn uri(&self) -> String {
        format!("sip:127.0.0.1:{};transport=tcp", self.addr.port())
    }

    /// Checks every request the peer read: its own transaction (a distinct
    /// `z9hG4bK` branch and Call-ID), a Via naming TCP, its connection's local
    /// address and `rport`, and a Content-Length that is its body's length.
    fn check_requests_on_the_wire(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        let (mut branches, mut call_ids) = (HashSet::new(), HashSet::new());
        for s in seen.iter() {
            let request = parse_request(&s.bytes).expect("a request");
            let via = request.header("Via").unwrap();
            let want = format!("SIP/2.0/TCP {};", s.from);
            assert!(
                via.starts_with(&want),
                "{via} on connection from {}",
                s.from
            );
            let params: Vec<&str> = via.split(';').skip(1).map(str::trim).collect();
            assert!(params.contains(&"rport"), "{via}");
            let branch = params
                .iter()
                .find_map(|p| p.strip_prefix("branch="))
                .expect("a branch");
            assert!(branch.starts_with("z9hG4bK") && branch.len() > 7, "{via}");
            assert!(branches.insert(branch.to_string()), "branch {branch} twice");
            assert!(call_ids.insert(request.header("Call-ID").unwrap().to_string()));
            let head_end = s.bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let declared: usize = request
                .header("Content-Length")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(declared, s.bytes.len() - head_end);
            assert!(s.connection < self.connections.load(Ordering::SeqCst));
        }
        seen.len()
    }
}

fn count(text: &str, pattern: &str) -> Option<u64> {
    let at = text.find(pattern)? + pattern.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `n` exchanges over `prober`, `in_flight` at a time.
async fn run(prober: &StreamProber, n: usize, in_flight: usize) -> Vec<Exchange> {
    stream::iter(0..n)
        .map(|_| prober.exchange())
        .buffer_unordered(in_flight)
        .collect()
        .await
}

fn target(addr: SocketAddr) -> Target {
    Target {
        host: addr.ip().to_string().into(),
        addr,
        transport: Transport::Tcp,
    }
}

fn answered(ex: &Exchange) -> bool {
    matches!(
        ex.transaction.as_ref().and_then(|t| t.outcome()),
        Some(TxOutcome::Final { .. })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_closing_the_connection_fails_what_is_in_flight_and_ping_reconnects() {
    let peer = peer(Behaviour::CloseFirstAfter(50)).await;
    let uri = peer.uri();
    let (code, text) = ping_reusing(8, 200, &["--timeout", "2s"], &uri).await;
    assert_eq!(code, Some(0), "{text}");
    let answered = count(&text, "requests sent, ").unwrap();
    let lost = count(&text, "network_error×").unwrap();
    // Those in flight when the peer closed failed; every later request was answered.
    assert!((1..=8).contains(&lost), "{text}");
    assert_eq!(answered + lost, 200, "{text}");
    assert!(text.contains("connections: 2 opened\n"), "{text}");
    assert!(!text.contains("timeout"), "{text}");
    assert_eq!(peer.connections.load(Ordering::SeqCst), 2);
    // Requests still queued when the close was read never went out.
    let on_wire = peer.check_requests_on_the_wire() as u64;
    assert!((answered..=200).contains(&on_wire), "{on_wire} {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_transactions_end_as_closed_and_the_next_request_reconnects() {
    let peer = peer(Behaviour::CloseFirstAfter(20)).await;
    let prober = StreamProber::new(
        target(peer.addr),
        ExchangeConfig::new(Duration::from_secs(2)),
    );
    let first = run(&prober, 60, 8).await;
    let closed = first
        .iter()
        .filter(|ex| ex.failure == Some(TransportFailure::Closed))
        .count();
    assert!((1..=8).contains(&closed), "{closed}");
    assert!(first.iter().filter(|ex| ex.failure.is_none()).all(answered));
    assert_eq!(first.iter().filter(|ex| answered(ex)).count(), 60 - closed);
    // Only the exchange that opened a connection carries its connect time.
    assert_eq!(
        first.iter().filter(|ex| ex.connect_time.is_some()).count(),
        2
    );
    let locals: HashSet<_> = first.iter().filter_map(|ex| ex.local).collect();
    assert_eq!(locals.len(), 2, "one local address per connection");
    assert_eq!(prober.strays(), 0);
    let on_wire = peer.check_requests_on_the_wire();
    assert!((60 - closed..=60).contains(&on_wire), "{on_wire}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_answers_on_the_stream_never_count() {
    let peer = peer(Behaviour::Forge).await;
    let uri = peer.uri();
    let (code, text) = ping_reusing(8, 100, &[], &uri).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("100 requests sent, 100 answered (100 ok), 0 lost"),
        "{text}"
    );
    assert!(text.contains("responses: 200×100\n"), "{text}");
    // One forged answer named no transaction, the other its transaction's branch only.
    assert!(
        text.contains("stray responses: 200 (matched no request, not counted)"),
        "{text}"
    );
    assert!(text.contains("connections: 1 opened\n"), "{text}");
    assert_eq!(peer.check_requests_on_the_wire(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_split_across_reads_or_two_in_one_read_all_count() {
    let peer = peer(Behaviour::SplitAndCoalesce).await;
    let uri = peer.uri();
    let (code, text) = ping_reusing(4, 40, &[], &uri).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("40 requests sent, 40 answered (40 ok), 0 lost"),
        "{text}"
    );
    assert!(text.contains("connections: 1 opened\n"), "{text}");
    assert!(!text.contains("stray"), "{text}");
    assert_eq!(peer.check_requests_on_the_wire(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_ends_the_connection_as_framing() {
    let peer = peer(Behaviour::OversizedAfter(10)).await;
    let prober = StreamProber::new(
        target(peer.addr),
        ExchangeConfig::new(Duration::from_secs(2)),
    );
    let all = run(&prober, 40, 4).await;
    let framing = all
        .iter()
        .filter(|ex| matches!(ex.failure, Some(TransportFailure::Framing { .. })))
        .count();
    assert!((1..=4).contains(&framing), "{framing}");
    assert_eq!(all.iter().filter(|ex| answered(ex)).count(), 40 - framing);
    assert_eq!(peer.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_keep_alives_cannot_hold_a_transaction_past_its_deadline() {
    let peer = peer(Behaviour::KeepAliveFlood).await;
    let deadline = Duration::from_millis(500);
    let prober = StreamProber::new(target(peer.addr), ExchangeConfig::new(deadline));
    let started = std::time::Instant::now();
    let all = tokio::time::timeout(Duration::from_secs(10), run(&prober, 4, 4))
        .await
        .expect("every transaction must end near its deadline");
    assert!(started.elapsed() < Duration::from_secs(5));
    for ex in &all {
        assert!(ex.failure.is_none(), "{:?}", ex.failure);
        let outcome = ex.transaction.as_ref().and_then(|t| t.outcome());
        assert_eq!(outcome, Some(&TxOutcome::Timeout));
    }
}

#[tokio::test]
async fn a_closed_port_refuses_every_request_and_opens_nothing() {
    let uri = format!("sip:127.0.0.1:{};transport=tcp", closed_tcp_port());
    let (code, text) = ping_reusing(4, 10, &[], &uri).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("10 requests sent, 0 answered"), "{text}");
    assert!(text.contains("refused×10"), "{text}");
    assert!(text.contains("connections: 0 opened\n"), "{text}");
}

#[tokio::test]
async fn udp_accepts_the_flag_and_has_no_connections() {
    let uri = format!("sip:127.0.0.1:{}", closed_udp_port());
    let (code, text) = ping(&[
        "-q",
        "--reuse-connection",
        "-c",
        "2",
        "-i",
        "0.05",
        "--timeout",
        "1s",
        &uri,
    ])
    .await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("refused×2"), "{text}");
    assert!(!text.contains("connections:"), "{text}");
}

#[test]
fn help_says_what_the_flag_does_on_each_transport() {
    let out = std::process::Command::new(common::bin())
        .args(["ping", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--reuse-connection"), "{help}");
    assert!(help.contains("UDP: no effect"), "{help}");
}

/// `serve` reads its kept connections through a small buffer: answers that
/// span reads (two coalesced answers are more than 512 bytes) still count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_buffer_smaller_than_the_answers_loses_none() {
    let peer = peer(Behaviour::SplitAndCoalesce).await;
    let prober = StreamProber::new(
        target(peer.addr),
        ExchangeConfig::new(Duration::from_secs(2)),
    )
    .with_read_buffer(512);
    let all = run(&prober, 40, 4).await;
    assert_eq!(all.iter().filter(|ex| answered(ex)).count(), 40);
    assert_eq!(prober.strays(), 0);
    assert_eq!(peer.connections.load(Ordering::SeqCst), 1);
}
