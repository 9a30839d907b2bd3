//! In-process peers that never answer: the cheapest way to get a probe timeout.
//!
//! They beat `options_silent.xml` for timeout tests: no process, ready the moment they exist, and
//! they count what they received.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A UDP socket on 127.0.0.1 that reads and discards every datagram (no ICMP, no answer).
pub struct SilentUdp {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds a [`SilentUdp`] on a free 127.0.0.1 port.
///
/// ```ignore
/// let gw = common::silent_udp();
/// // probe gw.addr() -> expect a timeout; gw.received() >= 1
/// ```
pub fn silent_udp() -> SilentUdp {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind silent udp");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (r, s) = (received.clone(), stop.clone());
    let thread = thread::spawn(move || {
        let mut buf = vec![0u8; 65535];
        while !s.load(Ordering::Relaxed) {
            if sock.recv_from(&mut buf).is_ok() {
                r.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    SilentUdp {
        addr,
        received,
        stop,
        thread: Some(thread),
    }
}

impl SilentUdp {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Datagrams received so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for SilentUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP listener on 127.0.0.1 that accepts, reads and discards, never writes and never closes
/// (until dropped).
pub struct SilentTcp {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Binds a [`SilentTcp`] on a free 127.0.0.1 port.
///
/// ```ignore
/// let gw = common::silent_tcp();
/// // connect succeeds, the OPTIONS is read, no answer ever comes
/// ```
pub fn silent_tcp() -> SilentTcp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind silent tcp");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, b, s) = (accepted.clone(), bytes.clone(), stop.clone());
    let thread = thread::spawn(move || {
        let mut conns: Vec<TcpStream> = Vec::new();
        let mut buf = [0u8; 4096];
        while !s.load(Ordering::Relaxed) {
            while let Ok((c, _)) = listener.accept() {
                let _ = c.set_nonblocking(true);
                a.fetch_add(1, Ordering::Relaxed);
                conns.push(c);
            }
            for c in conns.iter_mut() {
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    b.fetch_add(n, Ordering::Relaxed);
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    SilentTcp {
        addr,
        accepted,
        bytes,
        stop,
        thread: Some(thread),
    }
}

impl SilentTcp {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Bytes read so far over all connections.
    pub fn bytes_received(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for SilentTcp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
