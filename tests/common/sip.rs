//! Minimal hand-built SIP for readiness checks and smoke tests (independent of trunkprobe's code).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token unique within this process and unlikely to repeat across runs (branch, tag, Call-ID).
pub fn unique_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        nanos & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An OPTIONS request from `local` to `target`; `transport` is `UDP`, `TCP` or `TLS` (Via
/// transport and URI parameter).
///
/// ```ignore
/// let req = sip::options_request("UDP", sock.local_addr()?, gw, &sip::unique_token(), 1);
/// ```
pub fn options_request(
    transport: &str,
    local: SocketAddr,
    target: SocketAddr,
    call_id: &str,
    cseq: u32,
) -> String {
    let t = transport.to_ascii_uppercase();
    let scheme = if t == "TLS" { "sips" } else { "sip" };
    let uri_param = if t == "UDP" {
        String::new()
    } else {
        format!(";transport={}", t.to_ascii_lowercase())
    };
    let token = unique_token();
    format!(
        "OPTIONS {scheme}:ping@{target}{uri_param} SIP/2.0\r\n\
         Via: SIP/2.0/{t} {local};branch=z9hG4bK{token};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={token}\r\n\
         To: <{scheme}:ping@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} OPTIONS\r\n\
         Contact: <sip:probe@{local}{uri_param}>\r\n\
         User-Agent: trunkprobe-harness\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends one OPTIONS over a connected UDP socket and returns the first datagram back.
/// A closed port gives `ConnectionRefused`; a silent peer gives `WouldBlock`/`TimedOut`.
pub fn udp_options(target: SocketAddr, timeout: Duration) -> io::Result<String> {
    let sock = UdpSocket::bind((target.ip(), 0))?;
    sock.connect(target)?;
    sock.set_read_timeout(Some(timeout))?;
    let req = options_request("UDP", sock.local_addr()?, target, &unique_token(), 1);
    sock.send(req.as_bytes())?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Opens a new TCP connection, sends one OPTIONS and reads one SIP message back.
pub fn tcp_options(target: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&target, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let req = options_request("TCP", s.local_addr()?, target, &unique_token(), 1);
    s.write_all(req.as_bytes())?;
    read_sip_message(&mut s)
}

/// Reads one SIP message from a stream: headers up to the blank line, then `Content-Length`
/// bytes of body (accepting SIPp's padded `Content-Length:   0`, and the compact `l:`).
pub fn read_sip_message<R: Read>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = header(&head, "Content-Length")
                .or_else(|| header(&head, "l"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() >= total {
                buf.truncate(total);
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} bytes: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of a SIP response (`SIP/2.0 200 OK` -> 200).
pub fn status_code(msg: &str) -> Option<u16> {
    let line = msg.lines().next()?;
    let mut it = line.split_whitespace();
    if it.next()? != "SIP/2.0" {
        return None;
    }
    it.next()?.parse().ok()
}

/// The value of the first header `name` (case-insensitive), trimmed.
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of a SIP message (after the blank line).
pub fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}
