//! Loopback port helpers.
//!
//! A "free" port is found by binding port 0 and releasing it, so another process may still take it
//! before the peer binds it; the peer constructors retry with fresh ports when a peer exits early.
//! Within one test binary a port is never handed out twice.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Records `port` as handed out; false if this binary handed it out before.
fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A UDP port on 127.0.0.1 that nothing was bound to a moment ago.
///
/// ```ignore
/// let port = common::free_udp_port();
/// ```
pub fn free_udp_port() -> u16 {
    loop {
        let s = UdpSocket::bind((LOOPBACK, 0)).expect("bind udp 127.0.0.1:0");
        let port = s.local_addr().unwrap().port();
        if claim(port) {
            return port;
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_tcp_port() -> u16 {
    loop {
        let s = TcpListener::bind((LOOPBACK, 0)).expect("bind tcp 127.0.0.1:0");
        let port = s.local_addr().unwrap().port();
        if claim(port) {
            return port;
        }
    }
}

/// A port on 127.0.0.1 free for both UDP and TCP (a gateway on 5060/udp+tcp, dnsmasq on 53).
pub fn free_udp_tcp_port() -> u16 {
    loop {
        let t = TcpListener::bind((LOOPBACK, 0)).expect("bind tcp 127.0.0.1:0");
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind((LOOPBACK, port)).is_ok() && claim(port) {
            return port;
        }
    }
}

/// A UDP port on 127.0.0.1 where nothing listens: a datagram sent there draws an ICMP
/// port-unreachable, which a *connected* UDP socket reports as `ConnectionRefused` on the next
/// send/recv.
pub fn closed_udp_port() -> u16 {
    free_udp_port()
}

/// A TCP port on 127.0.0.1 where nothing listens: `connect` gets a RST (`ConnectionRefused`).
pub fn closed_tcp_port() -> u16 {
    free_tcp_port()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((LOOPBACK, port))
}
