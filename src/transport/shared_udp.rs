//! OPTIONS over one shared UDP socket per address family: the prober of `ping`
//! and of the daemon, where a socket and a task per probe cost more than the
//! probe itself. A driver task owns the socket and a sans-IO
//! [`TransactionTable`]; callers hand it a target and await the [`Exchange`].
//!
//! The socket is not connected, so ICMP errors are read with `IP_RECVERR` /
//! `IPV6_RECVERR` from the socket's error queue (`MSG_ERRQUEUE`), which names the
//! destination that was unreachable: its transactions end as `refused`, as on a
//! connected socket, and nobody else's. A datagram from another address than
//! the probed one reaches the socket (the kernel no longer drops it) and is
//! counted as a stray of the transaction its branch names.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, OnceCell};

use super::cache::GenerationalCache;
use super::{start_from_template, Exchange, ExchangeConfig, Target, TransportFailure, MAX_MESSAGE};
use crate::sip::table::Finished;
use crate::sip::{OptionsTemplate, TransactionTable};
use crate::trunk::Transport;

/// Probes UDP targets over shared sockets (one per address family, opened on first use).
pub struct UdpProber {
    config: Arc<ExchangeConfig>,
    v4: OnceCell<mpsc::UnboundedSender<Submit>>,
    v6: OnceCell<mpsc::UnboundedSender<Submit>>,
    strays: Arc<AtomicU64>,
}

struct Submit {
    target: Target,
    deadline: Instant,
    done: oneshot::Sender<Exchange>,
}

/// What the driver keeps per transaction besides the transaction itself.
struct Pending {
    target: Target,
    local: SocketAddr,
    request_size: usize,
    done: oneshot::Sender<Exchange>,
}

impl UdpProber {
    pub fn new(config: ExchangeConfig) -> UdpProber {
        UdpProber {
            config: Arc::new(config),
            v4: OnceCell::new(),
            v6: OnceCell::new(),
            strays: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Datagrams so far that named no transaction in flight (late, duplicate,
    /// forged, garbage). Those that named a transaction's branch but not its
    /// source, Call-ID or CSeq are that transaction's strays instead.
    pub fn strays(&self) -> u64 {
        self.strays.load(Ordering::Relaxed)
    }

    /// Sends one OPTIONS to a UDP `target` and waits for its final response or
    /// the deadline (`timeout` of the config).
    pub async fn exchange(&self, target: &Target) -> Exchange {
        self.exchange_within(target, self.config.timeout).await
    }

    /// [`UdpProber::exchange`] with a deadline of its own (a `/probe` request
    /// bounded by the scrape timeout).
    pub async fn exchange_within(&self, target: &Target, timeout: Duration) -> Exchange {
        let deadline = Instant::now() + timeout;
        let v4 = target.addr.is_ipv4();
        let cell = if v4 { &self.v4 } else { &self.v6 };
        let failed = |e: &io::Error| {
            let mut ex = Exchange::new(target);
            ex.failure = Some(TransportFailure::from_io(e));
            ex
        };
        let submit = match cell
            .get_or_try_init(|| async {
                start_driver(v4, self.config.clone(), self.strays.clone())
            })
            .await
        {
            Ok(s) => s,
            Err(e) => return failed(&e),
        };
        let (done, rx) = oneshot::channel();
        let job = Submit {
            target: target.clone(),
            deadline,
            done,
        };
        if submit.send(job).is_err() {
            return failed(&io::Error::other("the UDP prober stopped"));
        }
        rx.await
            .unwrap_or_else(|_| failed(&io::Error::other("the UDP prober stopped")))
    }
}

fn start_driver(
    v4: bool,
    config: Arc<ExchangeConfig>,
    strays: Arc<AtomicU64>,
) -> io::Result<mpsc::UnboundedSender<Submit>> {
    let bind = config.bind_family(v4);
    let std_socket = std::net::UdpSocket::bind(bind)?;
    std_socket.set_nonblocking(true)?;
    // Best effort: without it ICMP errors are lost and closed ports time out.
    let _ = enable_recverr(std_socket.as_raw_fd(), v4);
    let socket = UdpSocket::from_std(std_socket)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(Driver::new(socket, config, strays).run(rx));
    Ok(tx)
}

struct Driver {
    socket: UdpSocket,
    config: Arc<ExchangeConfig>,
    table: TransactionTable<Pending>,
    /// The source address the kernel picks for each destination (the Via sent-by).
    /// Bounded, so a destination that left the fleet (its DNS answer moved on)
    /// ages out instead of staying for the life of the daemon.
    sources: GenerationalCache<IpAddr, IpAddr>,
    /// The request for each transport, port and local address, for any
    /// target host, built once and stamped per probe.
    templates: GenerationalCache<(Transport, u16, SocketAddr), OptionsTemplate>,
    port: u16,
    /// The prober's count of datagrams no transaction took (shared by both families).
    strays: Arc<AtomicU64>,
    /// Retransmissions and finished transactions of one timer run, reused.
    sends: Vec<(SocketAddr, Vec<u8>)>,
    finished: Vec<Finished<Pending>>,
}

/// Datagrams read in one go after a wake-up, before due timers and new
/// requests get their turn again.
const BATCH: usize = 64;

/// Destinations whose source address is kept (twice this at most, ≈ 10 MB),
/// above the 100,000 targets `serve` is sized for: a plain cap below the fleet
/// would cost a routing lookup on every probe.
const SOURCES: usize = 1 << 17;

/// Request templates kept (twice this at most), one per port and local
/// address: a fleet with more combinations rebuilds some requests, which
/// costs CPU, not correctness.
const TEMPLATES: usize = 256;

impl Driver {
    fn new(socket: UdpSocket, config: Arc<ExchangeConfig>, strays: Arc<AtomicU64>) -> Driver {
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        Driver {
            socket,
            config,
            table: TransactionTable::new(),
            sources: GenerationalCache::new(SOURCES),
            templates: GenerationalCache::new(TEMPLATES),
            port,
            strays,
            sends: Vec::new(),
            finished: Vec::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Submit>) {
        // Capacity only: recv_buf_from appends without zeroing, and the buffer is reused.
        let mut buf: Vec<u8> = Vec::with_capacity(MAX_MESSAGE);
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut open = true;
        // The last read left datagrams queued (a burst, or a flood of strays).
        let mut backlog = false;
        loop {
            if backlog {
                // Reads come first below, so an answer is stamped as soon as it is
                // in; but datagrams come at whatever rate anyone sends them, and
                // must not hold retransmissions, deadlines and new requests for as
                // long as they keep coming. After each full batch, those go first.
                backlog = false;
                if self
                    .table
                    .poll_timeout()
                    .is_some_and(|at| at <= Instant::now())
                {
                    self.fire_timers().await;
                }
                while open {
                    match rx.try_recv() {
                        Ok(job) => self.start(job).await,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                    }
                }
            }
            if !open && self.table.is_empty() {
                return;
            }
            let wake = self.table.poll_timeout();
            if let Some(at) = wake {
                if sleep.deadline() != at.into() {
                    sleep.as_mut().reset(at.into());
                }
            }
            tokio::select! {
                biased;
                r = self.socket.recv_buf_from(&mut buf) => {
                    self.received(r, &mut buf);
                    // Take whatever else is queued before sleeping again.
                    backlog = true;
                    for _ in 0..BATCH {
                        match self.socket.try_recv_buf_from(&mut buf) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                backlog = false;
                                break;
                            }
                            r => self.received(r, &mut buf),
                        }
                    }
                }
                job = rx.recv(), if open => match job {
                    Some(job) => {
                        self.start(job).await;
                        while let Ok(job) = rx.try_recv() {
                            self.start(job).await;
                        }
                    }
                    None => open = false,
                },
                _ = &mut sleep, if wake.is_some() => self.fire_timers().await,
            }
        }
    }

    /// Runs the table's due timers: retransmissions go out, timed-out
    /// transactions end.
    async fn fire_timers(&mut self) {
        let (mut sends, mut finished) = (
            std::mem::take(&mut self.sends),
            std::mem::take(&mut self.finished),
        );
        self.table
            .handle_timeout(Instant::now(), &mut sends, &mut finished);
        for (peer, bytes) in sends.drain(..) {
            if let Err(e) = self.send(&bytes, peer).await {
                self.fail_peer(peer, &e);
            }
        }
        for f in finished.drain(..) {
            complete(f, None);
        }
        (self.sends, self.finished) = (sends, finished);
    }

    fn received(&mut self, r: io::Result<(usize, SocketAddr)>, buf: &mut Vec<u8>) {
        match r {
            Ok((_, from)) => {
                let unmatched = self.table.unmatched();
                if let Some(f) = self.table.handle_datagram(Instant::now(), from, buf) {
                    complete(f, None);
                } else if self.table.unmatched() > unmatched {
                    self.strays.fetch_add(1, Ordering::Relaxed);
                }
            }
            // IP_RECVERR: an ICMP error is pending; the queue says for whom.
            Err(_) => self.drain_errors(),
        }
        buf.clear();
    }

    async fn start(&mut self, job: Submit) {
        let dst = job.target.addr;
        let source = match self.source_for(dst.ip()) {
            Ok(ip) => ip,
            Err(e) => {
                let mut ex = Exchange::new(&job.target);
                ex.failure = Some(TransportFailure::from_io(&e));
                let _ = job.done.send(ex);
                return;
            }
        };
        let local = SocketAddr::new(source, self.port);
        let config = &self.config;
        let template = self
            .templates
            .get_or_insert_with((job.target.transport, dst.port(), local), |_| {
                OptionsTemplate::any_host(&config.options_spec(&job.target, local))
            });
        let tx = start_from_template(template, &job.target, job.deadline, config.trace);
        let branch = tx.ids().branch.clone();
        let pending = Pending {
            target: job.target,
            local,
            request_size: 0,
            done: job.done,
        };
        let bytes = match self.table.insert(pending, tx) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(f) => {
                return complete(
                    f,
                    Some(TransportFailure::Io {
                        detail: "duplicate branch".into(),
                    }),
                )
            }
        };
        if let Some((p, _)) = self.table.get_mut(&branch) {
            p.request_size = bytes.len();
        }
        if let Err(e) = self.send(&bytes, dst).await {
            if let Some(f) = self.table.remove(&branch) {
                complete(f, Some(TransportFailure::from_io(&e)));
            }
        }
    }

    /// Sends one datagram. A pending ICMP error of another destination can
    /// surface on any call: it is routed from the error queue and the send retried.
    async fn send(&mut self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        match self.socket.send_to(bytes, to).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.drain_errors();
                self.socket.send_to(bytes, to).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    fn drain_errors(&mut self) {
        for (dst, e) in read_error_queue(self.socket.as_raw_fd()) {
            self.fail_peer(dst, &e);
        }
    }

    fn fail_peer(&mut self, peer: SocketAddr, e: &io::Error) {
        for f in self.table.remove_peer(peer) {
            complete(f, Some(TransportFailure::from_io(e)));
        }
    }

    fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        if let Some(ip) = self.sources.get(&dst) {
            return Ok(*ip);
        }
        let bound = self.config.bind_for(dst).ip();
        if !bound.is_unspecified() {
            // --source-ip: every datagram leaves from it.
            return Ok(bound);
        }
        // A connected UDP socket sends nothing; it only asks the routing table.
        let unspecified: IpAddr = if dst.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let probe = std::net::UdpSocket::bind((unspecified, 0))?;
        probe.connect((dst, 9))?;
        let ip = probe.local_addr()?.ip();
        self.sources.insert(dst, ip);
        Ok(ip)
    }
}

fn complete((p, tx): Finished<Pending>, failure: Option<TransportFailure>) {
    let mut ex = Exchange::new(&p.target);
    ex.local = Some(p.local);
    ex.request_size = p.request_size;
    ex.transaction = Some(tx);
    ex.failure = failure;
    let _ = p.done.send(ex);
}

fn enable_recverr(fd: RawFd, v4: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let (level, name) = if v4 {
        (libc::SOL_IP, libc::IP_RECVERR)
    } else {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    };
    // SAFETY: fd is an open socket; the option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Every queued ICMP error: the destination of the datagram that caused it and
/// the error (`ECONNREFUSED` for port unreachable, `EHOSTUNREACH`...).
fn read_error_queue(fd: RawFd) -> Vec<(SocketAddr, io::Error)> {
    let mut out = Vec::new();
    // Bounded: the queue is bounded by the socket buffer anyway.
    for _ in 0..1024 {
        // SAFETY: zeroed sockaddr_storage / msghdr are valid; every pointer
        // handed to recvmsg points into locals that outlive the call, with their sizes.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut data = [0u8; 512];
        let mut control = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            break;
        }
        let mut errno = None;
        // SAFETY: the CMSG macros walk the control buffer recvmsg just filled.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            let c = unsafe { &*cmsg };
            let ours = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            if ours {
                let ee = unsafe {
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::sock_extended_err)
                };
                errno = Some(ee.ee_errno as i32);
            }
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        if let (Some(dst), Some(e)) = (sockaddr(&name), errno) {
            out.push((dst, io::Error::from_raw_os_error(e)));
        }
    }
    out
}

fn sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), 0, a.sin6_scope_id).into())
        }
        _ => None,
    }
}
