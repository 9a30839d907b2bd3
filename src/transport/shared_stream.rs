//! OPTIONS over one reused TCP or TLS connection: `ping --reuse-connection`,
//! where a connection (and a handshake) per request would measure connection
//! set-up, not the carrier's SIP stack. A UA reuses its connection the same way
//! (RFC 3261 §18.1.1, RFC 5923), and so does SIPp's `-t t1`.
//!
//! Like [`super::UdpProber`], a driver task owns the socket and the sans-IO
//! routing ([`Pipeline`], a transaction table plus the stream's framing);
//! callers submit a request and await its [`Exchange`]. Requests are pipelined:
//! each is written as soon as it is submitted, whatever is still in flight, and
//! each answer is routed to its transaction by its top Via branch and then
//! matched exactly (branch, Call-ID, CSeq); an answer that matches no
//! transaction in flight is a stray ([`StreamProber::strays`]). Each
//! transaction keeps its own deadline.
//!
//! Between requests an idle connection can carry RFC 5626 keep-alives
//! ([`StreamProber::with_keepalive`]): a `CRLF CRLF` ping once it has been
//! idle that long, which keeps NAT and firewall state (and the carrier's view
//! of the flow) alive when probes are further apart than their idle timeouts.
//! The pong (`CRLF`) is skipped by the framing like any keep-alive.
//!
//! The first request opens the connection (the connect and handshake count
//! against its deadline, and its exchange alone carries `connect_time` and the
//! TLS observation). When the connection fails or the peer closes it, every
//! transaction in flight ends with that failure (`reset`, `closed`, `framing`)
//! and the next request opens a new one. Requests that were waiting for a
//! connection that could not be opened end with its failure.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::stream::{connect, Connection};
use super::{
    start_from_template, Exchange, ExchangeConfig, Target, TlsObservation, TransportFailure,
    MAX_MESSAGE,
};
use crate::sip::table::Finished;
use crate::sip::{OptionsTemplate, Pipeline};

/// Probes one TCP or TLS target over one connection at a time, reused for
/// every request and reopened after it ends.
pub struct StreamProber {
    target: Target,
    config: Arc<ExchangeConfig>,
    keepalive: Option<Duration>,
    read_buffer: usize,
    submit: OnceLock<mpsc::UnboundedSender<Submit>>,
    strays: Arc<AtomicU64>,
}

/// Bytes asked of the connection per read, unless [`StreamProber::with_read_buffer`]:
/// enough for a burst of pipelined answers in one read.
const READ_BUFFER: usize = 16 * 1024;

struct Submit {
    deadline: Instant,
    done: oneshot::Sender<Exchange>,
}

/// What the driver keeps per transaction besides the transaction itself.
struct Pending {
    local: SocketAddr,
    request_size: usize,
    /// Set for the request that opened the connection.
    opened: Option<Opened>,
    done: oneshot::Sender<Exchange>,
}

/// How a connection was opened: reported by the exchange that opened it.
struct Opened {
    connect_time: Option<Duration>,
    tls: Option<TlsObservation>,
}

impl StreamProber {
    /// A prober of `target` (TCP or TLS); nothing is opened before the first request.
    pub fn new(target: Target, config: ExchangeConfig) -> StreamProber {
        StreamProber {
            target,
            config: Arc::new(config),
            keepalive: None,
            read_buffer: READ_BUFFER,
            submit: OnceLock::new(),
            strays: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends an RFC 5626 `CRLF CRLF` ping on the open connection whenever it
    /// has been idle (nothing in flight, nothing read or written) for `every`.
    pub fn with_keepalive(mut self, every: Option<Duration>) -> StreamProber {
        self.keepalive = every.filter(|d| !d.is_zero());
        self
    }

    /// Reads at most `bytes` at a time (at least 512) into a buffer the
    /// connection keeps for its life: a prober holding thousands of mostly
    /// idle connections (`serve`) wants it small; a message larger than one
    /// read is put together by the framing as before.
    pub fn with_read_buffer(mut self, bytes: usize) -> StreamProber {
        self.read_buffer = bytes.max(512);
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one OPTIONS over the connection (opening it when there is none)
    /// and waits for its final response or the deadline (`timeout` of the config).
    pub async fn exchange(&self) -> Exchange {
        let deadline = Instant::now() + self.config.timeout;
        let submit = self.submit.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let driver = Driver {
                target: self.target.clone(),
                config: self.config.clone(),
                keepalive: self.keepalive,
                strays: self.strays.clone(),
                buf: vec![0; self.read_buffer],
                finished: Vec::new(),
            };
            tokio::spawn(driver.run(rx));
            tx
        });
        let stopped = || {
            let mut ex = Exchange::new(&self.target);
            ex.failure = Some(TransportFailure::from_io(&io::Error::other(
                "the stream prober stopped",
            )));
            ex
        };
        let (done, rx) = oneshot::channel();
        if submit.send(Submit { deadline, done }).is_err() {
            return stopped();
        }
        rx.await.unwrap_or_else(|_| stopped())
    }

    /// Messages on the connections so far that matched no transaction in
    /// flight (forged, late, duplicate). Those that named a transaction's
    /// branch but not its Call-ID or CSeq are that transaction's strays instead.
    pub fn strays(&self) -> u64 {
        self.strays.load(Ordering::Relaxed)
    }
}

struct Driver {
    target: Target,
    config: Arc<ExchangeConfig>,
    keepalive: Option<Duration>,
    strays: Arc<AtomicU64>,
    /// One read's worth, reused for the life of the prober.
    buf: Vec<u8>,
    finished: Vec<Finished<Pending>>,
}

/// One open connection's transactions and the request they are stamped from.
struct Conn {
    pipe: Pipeline<Pending>,
    /// The request for this connection's local address (Via sent-by, Contact).
    template: OptionsTemplate,
    local: SocketAddr,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Submit>) {
        while let Some(first) = rx.recv().await {
            let mut ex = Exchange::new(&self.target);
            let opened = connect(&self.target, &self.config, first.deadline, &mut ex).await;
            let Some((connection, local)) = opened else {
                // Every request that waited for this connection ends as it did.
                let failure = ex.failure.clone();
                let _ = first.done.send(ex);
                while let Ok(job) = rx.try_recv() {
                    let mut ex = Exchange::new(&self.target);
                    ex.failure = failure.clone();
                    let _ = job.done.send(ex);
                }
                continue;
            };
            let spec = self.config.options_spec(&self.target, local);
            let mut conn = Conn {
                pipe: Pipeline::new(self.target.addr, MAX_MESSAGE),
                template: OptionsTemplate::new(&spec),
                local,
            };
            let opened = Opened {
                connect_time: ex.connect_time,
                tls: ex.tls.take(),
            };
            self.start(&mut conn, first, Some(opened));
            let more = match connection {
                Connection::Tcp(tcp) => self.serve(tcp, conn, &mut rx).await,
                Connection::Tls(tls) => self.serve(*tls, conn, &mut rx).await,
            };
            if !more {
                return;
            }
        }
    }

    /// Runs transactions over one connection until it fails or the peer closes
    /// it (every transaction in flight then ends with that failure; `true`), or
    /// until the prober is gone and nothing is in flight (`false`).
    async fn serve<S: AsyncRead + AsyncWrite>(
        &mut self,
        stream: S,
        mut conn: Conn,
        rx: &mut mpsc::UnboundedReceiver<Submit>,
    ) -> bool {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut open = true;
        // Written bytes a TLS session may still hold: flushed once all are written.
        let mut unflushed = false;
        // Since when requests have waited without the peer taking any of them.
        let mut stalled_since: Option<Instant> = None;
        // The last byte read or written, or request started: keep-alives count from it.
        let mut active = Instant::now();
        loop {
            if !open && conn.pipe.is_empty() {
                return false;
            }
            let unsent = !conn.pipe.unsent().is_empty();
            if !unsent {
                stalled_since = None;
            } else if stalled_since.is_none() {
                stalled_since = Some(Instant::now());
            }
            let stall_limit = stalled_since.map(|t| t + self.config.timeout);
            let ping_at = self
                .keepalive
                .filter(|_| conn.pipe.is_empty() && !unflushed)
                .map(|every| active + every);
            let wake = [conn.pipe.poll_timeout(), stall_limit, ping_at]
                .into_iter()
                .flatten()
                .min();
            if let Some(at) = wake {
                if sleep.deadline() != at.into() {
                    sleep.as_mut().reset(at.into());
                }
            }
            let failure = tokio::select! {
                // Deadlines first, then new requests, then writes: a peer that
                // keeps the read side busy (a flood of keep-alives) can starve
                // none of them.
                biased;
                _ = &mut sleep, if wake.is_some() => {
                    let now = Instant::now();
                    if ping_at.is_some_and(|at| now >= at) {
                        active = now;
                        // RFC 5626 §4.4.1: the CRLF CRLF ping.
                        if let Err(e) = writer.write_all(b"\r\n\r\n").await {
                            fail_all(&self.target, &mut conn, TransportFailure::from_io(&e));
                            return open;
                        }
                        unflushed = true;
                        continue;
                    }
                    conn.pipe.handle_timeout(now, &mut self.finished);
                    for f in self.finished.drain(..) {
                        complete(&self.target, f, None);
                    }
                    match stall_limit {
                        // The peer has not read a byte of our requests for a
                        // whole probe deadline: give up on it rather than
                        // queue requests without end.
                        Some(limit) if now >= limit => Some(TransportFailure::Io {
                            detail: format!(
                                "the peer read none of {} bytes of requests for {:?}",
                                conn.pipe.unsent().len(),
                                self.config.timeout
                            ),
                        }),
                        _ => None,
                    }
                },
                job = rx.recv(), if open => {
                    active = Instant::now();
                    match job {
                        Some(job) => {
                            self.start(&mut conn, job, None);
                            while let Ok(job) = rx.try_recv() {
                                self.start(&mut conn, job, None);
                            }
                        }
                        None => open = false,
                    }
                    None
                },
                r = write_or_flush(&mut writer, conn.pipe.unsent()), if unsent || unflushed => {
                    match r {
                        Ok(Some(0)) => Some(TransportFailure::Closed),
                        Ok(Some(n)) => {
                            active = Instant::now();
                            conn.pipe.wrote(n);
                            stalled_since = None;
                            unflushed = true;
                            None
                        }
                        Ok(None) => {
                            unflushed = false;
                            None
                        }
                        Err(e) => Some(TransportFailure::from_io(&e)),
                    }
                },
                r = reader.read(&mut self.buf) => match r {
                    Ok(0) => Some(TransportFailure::Closed),
                    Ok(n) => {
                        active = Instant::now();
                        self.received(&mut conn, n)
                    }
                    Err(e) => Some(TransportFailure::from_io(&e)),
                },
            };
            if let Some(failure) = failure {
                fail_all(&self.target, &mut conn, failure);
                return open;
            }
        }
    }

    /// Routes the `n` bytes just read; a framing failure ends the connection.
    fn received(&mut self, conn: &mut Conn, n: usize) -> Option<TransportFailure> {
        let before = conn.pipe.unmatched();
        let framed = conn
            .pipe
            .handle_bytes(Instant::now(), &self.buf[..n], &mut self.finished);
        for f in self.finished.drain(..) {
            complete(&self.target, f, None);
        }
        let strays = conn.pipe.unmatched() - before;
        if strays > 0 {
            self.strays.fetch_add(strays, Ordering::Relaxed);
        }
        framed.err().map(|e| TransportFailure::Framing {
            detail: e.to_string(),
        })
    }

    /// Starts the transaction of one request; its bytes go out with the next write.
    fn start(&self, conn: &mut Conn, job: Submit, opened: Option<Opened>) {
        let tx = start_from_template(
            &conn.template,
            &self.target,
            job.deadline,
            self.config.trace,
        );
        let pending = Pending {
            local: conn.local,
            request_size: tx.request_len(),
            opened,
            done: job.done,
        };
        if let Err(f) = conn.pipe.start(pending, tx) {
            let failure = TransportFailure::Io {
                detail: "duplicate branch".into(),
            };
            complete(&self.target, f, Some(failure));
        }
    }
}

/// Writes some of `bytes` (`Some(n)`), or with nothing left to write flushes
/// what a TLS session still holds (`None`).
async fn write_or_flush<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> io::Result<Option<usize>> {
    if bytes.is_empty() {
        w.flush().await.map(|()| None)
    } else {
        w.write(bytes).await.map(Some)
    }
}

/// Ends every transaction in flight on `conn` with `failure`.
fn fail_all(target: &Target, conn: &mut Conn, failure: TransportFailure) {
    for f in conn.pipe.close() {
        complete(target, f, Some(failure.clone()));
    }
}

fn complete(target: &Target, (p, tx): Finished<Pending>, failure: Option<TransportFailure>) {
    let mut ex = Exchange::new(target);
    ex.local = Some(p.local);
    ex.request_size = p.request_size;
    if let Some(opened) = p.opened {
        ex.connect_time = opened.connect_time;
        ex.tls = opened.tls;
    }
    ex.transaction = Some(tx);
    ex.failure = failure;
    let _ = p.done.send(ex);
}
