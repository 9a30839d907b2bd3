//! A tiny hand-built DNS client over UDP (A, AAAA, SRV, NAPTR, CNAME), for readiness checks and
//! for asserting what dnsmasq serves without going through trunkprobe's resolver.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Record types this client understands.
pub mod qtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Alias.
    pub const CNAME: u16 = 5;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service location.
    pub const SRV: u16 = 33;
    /// Naming authority pointer.
    pub const NAPTR: u16 = 35;
}

/// RCODE values.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Refused.
    pub const REFUSED: u8 = 5;
}

/// A decoded answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// CNAME target.
    Cname(String),
    /// SRV.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host (no trailing dot).
        target: String,
    },
    /// NAPTR.
    Naptr {
        /// Order.
        order: u16,
        /// Preference.
        preference: u16,
        /// Flags, e.g. `S`.
        flags: String,
        /// Service, e.g. `SIP+D2U`.
        service: String,
        /// Regexp (usually empty).
        regexp: String,
        /// Replacement (no trailing dot; empty for the root).
        replacement: String,
    },
    /// Anything else: type and raw RDATA.
    Other(u16, Vec<u8>),
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name (no trailing dot).
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Decoded data.
    pub data: RData,
}

/// A response: RCODE, AA flag and the answer section.
#[derive(Clone, Debug)]
pub struct Response {
    /// RCODE (see [`rcode`]).
    pub rcode: u8,
    /// Authoritative-answer flag.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
}

/// Sends one query (RD set) for `name`/`qtype` to `server` over UDP and decodes the response.
///
/// ```ignore
/// let r = common::dns::query(dns.addr(), "_sip._udp.gw.test.local", dns::qtype::SRV, Duration::from_secs(2))?;
/// assert_eq!(r.rcode, dns::rcode::NOERROR);
/// ```
pub fn query(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> io::Result<Response> {
    let sock = UdpSocket::bind((server.ip(), 0))?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(timeout))?;
    static NEXT_ID: AtomicU16 = AtomicU16::new(0x5a5a);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u16);
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; QDCOUNT 1
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad(&format!("bad name {name:?}")));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    sock.send(&q)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf)?;
        let msg = &buf[..n];
        if n >= 2 && msg[..2] == id.to_be_bytes() {
            return parse(msg);
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn u16_at(m: &[u8], i: usize) -> io::Result<u16> {
    m.get(i..i + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| bad("truncated"))
}

/// Reads a possibly compressed name at `pos`; returns it and the position after it.
fn read_name(m: &[u8], mut pos: usize) -> io::Result<(String, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *m.get(pos).ok_or_else(|| bad("truncated name"))? as usize;
        if len == 0 {
            return Ok((labels.join("."), end.unwrap_or(pos + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let ptr = (u16_at(m, pos)? & 0x3fff) as usize;
            end.get_or_insert(pos + 2);
            pos = ptr;
            continue;
        }
        let l = m
            .get(pos + 1..pos + 1 + len)
            .ok_or_else(|| bad("truncated label"))?;
        labels.push(String::from_utf8_lossy(l).into_owned());
        pos += 1 + len;
    }
    Err(bad("name loop"))
}

fn char_string(m: &[u8], pos: usize) -> io::Result<(String, usize)> {
    let len = *m.get(pos).ok_or_else(|| bad("truncated string"))? as usize;
    let s = m
        .get(pos + 1..pos + 1 + len)
        .ok_or_else(|| bad("truncated string"))?;
    Ok((String::from_utf8_lossy(s).into_owned(), pos + 1 + len))
}

fn parse(m: &[u8]) -> io::Result<Response> {
    if m.len() < 12 {
        return Err(bad("short DNS message"));
    }
    let flags = u16_at(m, 2)?;
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(m, pos)?.1 + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (name, p) = read_name(m, pos)?;
        let rtype = u16_at(m, p)?;
        let ttl = u32::from(u16_at(m, p + 4)?) << 16 | u32::from(u16_at(m, p + 6)?);
        let rdlen = u16_at(m, p + 8)? as usize;
        let rd = p + 10;
        let rdata = m
            .get(rd..rd + rdlen)
            .ok_or_else(|| bad("truncated rdata"))?;
        let data = match rtype {
            qtype::A if rdlen == 4 => {
                RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))
            }
            qtype::AAAA if rdlen == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(rdata);
                RData::Aaaa(Ipv6Addr::from(o))
            }
            qtype::CNAME => RData::Cname(read_name(m, rd)?.0),
            qtype::SRV => RData::Srv {
                priority: u16_at(m, rd)?,
                weight: u16_at(m, rd + 2)?,
                port: u16_at(m, rd + 4)?,
                target: read_name(m, rd + 6)?.0,
            },
            qtype::NAPTR => {
                let (flags, p1) = char_string(m, rd + 4)?;
                let (service, p2) = char_string(m, p1)?;
                let (regexp, p3) = char_string(m, p2)?;
                RData::Naptr {
                    order: u16_at(m, rd)?,
                    preference: u16_at(m, rd + 2)?,
                    flags,
                    service,
                    regexp,
                    replacement: read_name(m, p3)?.0,
                }
            }
            t => RData::Other(t, rdata.to_vec()),
        };
        answers.push(Record { name, ttl, data });
        pos = rd + rdlen;
    }
    Ok(Response {
        rcode: (flags & 0x000f) as u8,
        authoritative: flags & 0x0400 != 0,
        answers,
    })
}
