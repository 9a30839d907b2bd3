//! `--pcap FILE`: the probes' SIP messages as a capture Wireshark and tshark
//! open and dissect. Written with `pcap-file` (the file format) and
//! `etherparse` (IP and UDP headers with their checksums); nothing here is
//! hand-rolled but the choice of what to write.
//!
//! Every message becomes one IPv4 or IPv6 UDP datagram (link type RAW) from its
//! sender's address and port to its receiver's, stamped with the time it
//! crossed the wire. UDP messages are exactly what went out and came in. TCP
//! and TLS messages are written the same way, as the SIP bytes after framing
//! (and for TLS after decryption), one datagram per message between the same
//! addresses and ports, so tshark dissects them as SIP without a key; for the
//! encrypted bytes themselves, capture with tcpdump and set `SSLKEYLOGFILE`
//! (see [`crate::transport::TlsSettings`]).

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

use crate::error::{Error, Result};
use crate::outcome::WireMessage;

/// Largest UDP payload an IPv4 datagram holds; a longer message (SIP allows
/// 64 KiB over a stream) is cut there, and the record says how long it was.
const MAX_PAYLOAD: usize = 65_507;

/// An open capture file.
pub struct Capture {
    writer: PcapWriter<BufWriter<File>>,
    path: PathBuf,
    packets: usize,
}

impl Capture {
    /// Creates (or truncates, as `tcpdump -w` does) the file at `path`.
    pub fn create(path: &Path) -> Result<Capture> {
        let io = |source| Error::Io {
            context: format!("cannot write the capture {}", path.display()),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| io(io::Error::other(e.to_string())))?;
        Ok(Capture {
            writer,
            path: path.to_path_buf(),
            packets: 0,
        })
    }

    /// One SIP message, from trunkprobe to the peer or back.
    pub fn sip(&mut self, m: &WireMessage) -> Result<()> {
        let local = m
            .local
            .unwrap_or_else(|| SocketAddr::new(unspecified(m.remote.ip()), 0));
        let (src, dst) = if m.sent {
            (local, m.remote)
        } else {
            (m.remote, local)
        };
        self.datagram(m.wall, src, dst, &m.bytes)
    }

    /// One UDP datagram `payload` from `src` to `dst` at `at`.
    pub fn datagram(
        &mut self,
        at: SystemTime,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<()> {
        let data = packet(src, dst, &payload[..payload.len().min(MAX_PAYLOAD)]);
        let ts = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let orig_len = (data.len() + payload.len().saturating_sub(MAX_PAYLOAD)) as u32;
        self.writer
            .write_packet(&PcapPacket::new(ts, orig_len, &data))
            .map_err(|e| Error::Io {
                context: format!("cannot write the capture {}", self.path.display()),
                source: io::Error::other(e.to_string()),
            })?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Flushes the file; the number of packets in it.
    pub fn finish(self) -> Result<usize> {
        let packets = self.packets;
        let path = self.path.clone();
        let mut w = self.writer.into_writer();
        io::Write::flush(&mut w).map_err(|source| Error::Io {
            context: format!("cannot write the capture {}", path.display()),
            source,
        })?;
        Ok(packets)
    }
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// An IP packet carrying `payload` in UDP. A dual-stack socket's `::ffff:a.b.c.d`
/// is written as IPv4; a pair of mixed families keeps the destination's.
fn packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let (s, d) = (src.ip().to_canonical(), dst.ip().to_canonical());
    let builder = match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        (_, IpAddr::V4(d)) => PacketBuilder::ipv4([0; 4], d.octets(), 64),
        (_, IpAddr::V6(d)) => PacketBuilder::ipv6([0; 16], d.octets(), 64),
    }
    .udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    // Cannot fail: the payload fits a datagram (cut to MAX_PAYLOAD above).
    let _ = builder.write(&mut out, payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_becomes_an_ipv4_udp_datagram_with_valid_checksums() {
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let dst: SocketAddr = "127.0.0.2:5060".parse().unwrap();
        let p = packet(src, dst, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let parsed = etherparse::SlicedPacket::from_ip(&p).unwrap();
        match parsed.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert_eq!((u.source_port(), u.destination_port()), (40000, 5060));
                assert_eq!(u.payload(), b"OPTIONS sip:x SIP/2.0\r\n\r\n");
            }
            other => panic!("{other:?}"),
        }
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
        assert_eq!(
            packet(mapped, dst, b"x")[0] >> 4,
            4,
            "v4-mapped written as IPv4"
        );
        let v6: SocketAddr = "[::1]:5060".parse().unwrap();
        assert_eq!(packet("[::1]:4000".parse().unwrap(), v6, b"x")[0] >> 4, 6);
    }

    #[test]
    fn the_file_opens_as_a_raw_ip_capture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        let mut c = Capture::create(&path).unwrap();
        let at = SystemTime::now();
        c.datagram(
            at,
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            b"hi",
        )
        .unwrap();
        assert_eq!(c.finish().unwrap(), 1);
        let mut r = pcap_file::pcap::PcapReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(r.header().datalink, DataLink::RAW);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.data.len(), 20 + 8 + 2);
        assert!(Capture::create(Path::new("/nonexistent/dir/c.pcap")).is_err());
    }
}
