//! RTP and RTCP packets: thin wrappers over the webrtc-rs `rtp` and `rtcp`
//! crates' types and (un)marshalling, with the checks those crates lack.
//!
//! Used from the crates: [`rtp::header::Header`] / [`rtp::packet::Packet`]
//! (parse and build), [`rtcp::sender_report::SenderReport`],
//! [`rtcp::receiver_report::ReceiverReport`],
//! [`rtcp::reception_report::ReceptionReport`],
//! [`rtcp::source_description::SourceDescription`] and
//! [`rtcp::goodbye::Goodbye`]. Added here:
//!
//! - the version check (`rtp` 0.17.2 reads V and does not check it);
//! - [`rtp_extension_is_sound`]: `rtp`'s header parser panics on a one-byte or
//!   two-byte header extension (RFC 8285) whose element length runs past the
//!   end of the datagram (it reads the element with `copy_to_bytes` unchecked),
//!   so every datagram is checked before it reaches the crate, ours and
//!   webrtc-srtp's call of it alike;
//! - a compound RTCP packet is split at the length fields here and each part
//!   parsed alone, so one malformed or unknown part (an XR, an APP, a
//!   vendor's feedback) does not hide the SR or RR beside it; the crate's
//!   `unmarshal` fails the whole datagram instead;
//! - RFC 5761 demultiplexing (RTP and RTCP on one port) by the second byte.

use bytes::Bytes;
use rtcp::goodbye::Goodbye;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use webrtc_util::marshal::{Marshal, Unmarshal};

/// RTCP packet types (RFC 3550 §12.1).
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_BYE: u8 = 203;

/// Why a datagram is not an RTP or RTCP packet we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than a fixed header.
    TooShort,
    /// The version field is not 2.
    BadVersion,
    /// A header extension whose elements run past its end (RFC 8285).
    BadExtension,
    /// The crate refused it (padding, lengths).
    Malformed,
}

/// True if the second byte says RTCP (RFC 5761 §4: packet types 192–223,
/// which no RTP payload type with the marker bit reaches in practice).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && (192..=223).contains(&datagram[1])
}

/// Checks a datagram's RTP header extension (if the X bit is set) the way
/// `rtp`'s parser walks it, so that parser cannot read past the datagram.
pub fn rtp_extension_is_sound(datagram: &[u8]) -> bool {
    let Some(&b0) = datagram.first() else {
        return false;
    };
    if b0 & 0x10 == 0 {
        return true;
    }
    let at = 12 + 4 * usize::from(b0 & 0x0F);
    let Some(head) = datagram.get(at..at + 4) else {
        return false;
    };
    let profile = u16::from_be_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_be_bytes([head[2], head[3]])) * 4;
    let Some(ext) = datagram.get(at + 4..at + 4 + len) else {
        return false;
    };
    let mut i = 0;
    match profile {
        // One-byte elements: ID (4 bits), length - 1 (4 bits); ID 15 stops.
        0xBEDE => {
            while i < ext.len() {
                let b = ext[i];
                i += 1;
                if b == 0 {
                    continue;
                }
                if b >> 4 == 0x0F {
                    break;
                }
                i += usize::from(b & 0x0F) + 1;
                if i > ext.len() {
                    return false;
                }
            }
            true
        }
        // Two-byte elements: ID byte, length byte.
        0x1000 => {
            while i < ext.len() {
                let b = ext[i];
                i += 1;
                if b == 0 {
                    continue;
                }
                let Some(&l) = ext.get(i) else {
                    return false;
                };
                i += 1 + usize::from(l);
                if i > ext.len() {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

/// Parses an RTP datagram (padding removed from the payload).
pub fn parse_rtp(datagram: &[u8]) -> Result<rtp::packet::Packet, PacketError> {
    if datagram.len() < 12 {
        return Err(PacketError::TooShort);
    }
    if datagram[0] >> 6 != 2 {
        return Err(PacketError::BadVersion);
    }
    if !rtp_extension_is_sound(datagram) {
        return Err(PacketError::BadExtension);
    }
    let mut buf = datagram;
    rtp::packet::Packet::unmarshal(&mut buf).map_err(|_| PacketError::Malformed)
}

/// Builds an RTP datagram with no CSRCs, extension or padding.
pub fn build_rtp(
    payload_type: u8,
    marker: bool,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let packet = rtp::packet::Packet {
        header: rtp::header::Header {
            version: 2,
            marker,
            payload_type: payload_type & 0x7F,
            sequence_number,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::copy_from_slice(payload),
    };
    packet
        .marshal()
        .map(|b| b.to_vec())
        .map_err(|_| PacketError::Malformed)
}

/// One report (SR or RR) read from a compound RTCP packet.
#[derive(Debug, Clone, PartialEq)]
pub struct RtcpReport {
    /// The SSRC of the report's sender.
    pub ssrc: u32,
    /// The sender info, if this is an SR.
    pub sender: Option<SenderInfo>,
    /// The report blocks, one per source the reporter receives.
    pub blocks: Vec<ReceptionReport>,
}

/// The sender-info part of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// The 64-bit NTP timestamp of the report.
    pub ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub rtp_time: u32,
    /// Packets sent since the sender started.
    pub packets: u32,
    /// Payload octets sent since the sender started.
    pub octets: u32,
}

/// What one compound RTCP datagram held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtcpCompound {
    /// Its SRs and RRs, in order.
    pub reports: Vec<RtcpReport>,
    /// SSRCs that said BYE.
    pub bye: Vec<u32>,
    /// Parts of other types (SDES, APP, XR, feedback), not read.
    pub other: u32,
    /// Parts that did not parse, or a trailer that is not a whole part.
    pub malformed: u32,
}

/// Splits a compound RTCP datagram at its length fields and reads every SR,
/// RR and BYE; never fails, what it cannot read is counted as `malformed`.
pub fn parse_rtcp(datagram: &[u8]) -> RtcpCompound {
    let mut out = RtcpCompound::default();
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < 4 || rest[0] >> 6 != 2 {
            out.malformed += 1;
            break;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let Some(part) = rest.get(..len) else {
            out.malformed += 1;
            break;
        };
        rest = &rest[len..];
        let mut buf = part;
        match part[1] {
            PT_SR => match SenderReport::unmarshal(&mut buf) {
                Ok(sr) => out.reports.push(RtcpReport {
                    ssrc: sr.ssrc,
                    sender: Some(SenderInfo {
                        ntp: sr.ntp_time,
                        rtp_time: sr.rtp_time,
                        packets: sr.packet_count,
                        octets: sr.octet_count,
                    }),
                    blocks: sr.reports,
                }),
                Err(_) => out.malformed += 1,
            },
            PT_RR => match ReceiverReport::unmarshal(&mut buf) {
                Ok(rr) => out.reports.push(RtcpReport {
                    ssrc: rr.ssrc,
                    sender: None,
                    blocks: rr.reports,
                }),
                Err(_) => out.malformed += 1,
            },
            PT_BYE => match Goodbye::unmarshal(&mut buf) {
                Ok(bye) => out.bye.extend(bye.sources),
                Err(_) => out.malformed += 1,
            },
            _ => out.other += 1,
        }
    }
    out
}

/// What goes into one compound RTCP packet we send (RFC 3550 §6.1: SR or RR
/// first, then SDES with a CNAME, then BYE if leaving).
#[derive(Debug, Clone)]
pub struct OutgoingReport<'a> {
    /// Our SSRC.
    pub ssrc: u32,
    /// Our sender info: an SR if given, else an RR.
    pub sender: Option<SenderInfo>,
    /// Report blocks for the sources we receive (at most 31).
    pub blocks: &'a [ReceptionReport],
    /// Our CNAME.
    pub cname: &'a str,
    /// Add a BYE for our SSRC.
    pub bye: bool,
}

/// Builds the compound RTCP packet `report` describes.
pub fn build_rtcp(report: &OutgoingReport<'_>) -> Result<Vec<u8>, PacketError> {
    let blocks: Vec<ReceptionReport> = report.blocks.iter().take(31).cloned().collect();
    let mut packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> = Vec::with_capacity(3);
    match report.sender {
        Some(s) => packets.push(Box::new(SenderReport {
            ssrc: report.ssrc,
            ntp_time: s.ntp,
            rtp_time: s.rtp_time,
            packet_count: s.packets,
            octet_count: s.octets,
            reports: blocks,
            profile_extensions: Bytes::new(),
        })),
        None => packets.push(Box::new(ReceiverReport {
            ssrc: report.ssrc,
            reports: blocks,
            profile_extensions: Bytes::new(),
        })),
    }
    let cname: Vec<u8> = report.cname.bytes().take(255).collect();
    packets.push(Box::new(SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: report.ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::from(cname),
            }],
        }],
    }));
    if report.bye {
        packets.push(Box::new(Goodbye {
            sources: vec![report.ssrc],
            reason: Bytes::new(),
        }));
    }
    rtcp::packet::marshal(&packets)
        .map(|b| b.to_vec())
        .map_err(|_| PacketError::Malformed)
}

/// The middle 32 bits of an NTP timestamp: the LSR field of a report block.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rtp_packet_round_trip() {
        let bytes = build_rtp(0, true, 65535, 0xDEAD_BEEF, 0x1234_5678, &[0xFF; 160]).unwrap();
        assert_eq!(bytes.len(), 172);
        assert_eq!(&bytes[..2], &[0x80, 0x80]);
        let p = parse_rtp(&bytes).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.sequence_number, 65535);
        assert_eq!(p.header.timestamp, 0xDEAD_BEEF);
        assert_eq!(p.header.ssrc, 0x1234_5678);
        assert_eq!(p.payload.len(), 160);
        assert!(!is_rtcp(&bytes));
    }

    #[test]
    fn rtp_packet_rejects_what_the_crate_would_not() {
        let mut bytes = build_rtp(8, false, 1, 2, 3, &[0xD5; 20]).unwrap();
        assert_eq!(parse_rtp(&bytes[..11]), Err(PacketError::TooShort));
        bytes[0] = 0x40; // version 1
        assert_eq!(parse_rtp(&bytes), Err(PacketError::BadVersion));
        // X bit with a one-byte element claiming 16 bytes in a 4-byte block
        // at the end of the datagram: the crate's parser would panic.
        let evil = [
            0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 1, 0x1F, 0, 0, 0,
        ];
        assert!(!rtp_extension_is_sound(&evil));
        assert_eq!(parse_rtp(&evil), Err(PacketError::BadExtension));
        let evil2 = [
            0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 1, 1, 9, 0, 0,
        ];
        assert_eq!(parse_rtp(&evil2), Err(PacketError::BadExtension));
        // A sound one-byte extension (ID 1, 2 bytes, padding) is fine.
        let good = [
            0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 1, 0x11, 7, 7, 0, 0xAA,
        ];
        assert_eq!(parse_rtp(&good).unwrap().payload.as_ref(), &[0xAA]);
        // Padding longer than the payload.
        let pad = [0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 9];
        assert_eq!(parse_rtp(&pad), Err(PacketError::Malformed));
    }

    #[test]
    fn rtp_packet_rtcp_compound_round_trip() {
        let block = ReceptionReport {
            ssrc: 77,
            fraction_lost: 64,
            total_lost: 12,
            last_sequence_number: 0x1_0005,
            jitter: 40,
            last_sender_report: 0xAABB_CCDD,
            delay: 65536,
        };
        let sender = SenderInfo {
            ntp: 0x0102_0304_0506_0708,
            rtp_time: 160,
            packets: 50,
            octets: 8000,
        };
        let bytes = build_rtcp(&OutgoingReport {
            ssrc: 9,
            sender: Some(sender),
            blocks: std::slice::from_ref(&block),
            cname: "trunkprobe",
            bye: true,
        })
        .unwrap();
        assert!(is_rtcp(&bytes));
        let c = parse_rtcp(&bytes);
        assert_eq!(c.reports.len(), 1);
        assert_eq!(c.reports[0].ssrc, 9);
        assert_eq!(c.reports[0].sender, Some(sender));
        assert_eq!(c.reports[0].blocks, [block]);
        assert_eq!(c.bye, [9]);
        assert_eq!((c.other, c.malformed), (1, 0));
        // An RR, and a trailing half part that is counted, not fatal.
        let mut rr = build_rtcp(&OutgoingReport {
            ssrc: 5,
            sender: None,
            blocks: &[],
            cname: "x",
            bye: false,
        })
        .unwrap();
        rr.extend_from_slice(&[0x80, 0xCC, 0x00]);
        let c = parse_rtcp(&rr);
        assert_eq!(c.reports.len(), 1);
        assert_eq!(c.reports[0].sender, None);
        assert_eq!(c.malformed, 1);
        assert_eq!(ntp_middle(0x0102_0304_0506_0708), 0x0304_0506);
    }

    proptest! {
        #[test]
        fn rtp_packet_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_rtp(&bytes);
            let _ = parse_rtcp(&bytes);
            let _ = is_rtcp(&bytes);
        }

        #[test]
        fn rtp_packet_rtcp_parts_never_panic(
            parts in proptest::collection::vec(
                (0u8..32, 195u8..=210, 0u16..12, proptest::collection::vec(any::<u8>(), 0..60)),
                1..4,
            ),
        ) {
            let mut bytes = Vec::new();
            for (count, pt, words, body) in &parts {
                bytes.extend_from_slice(&[0x80 | count, *pt]);
                bytes.extend_from_slice(&words.to_be_bytes());
                bytes.extend_from_slice(body);
            }
            let c = parse_rtcp(&bytes);
            prop_assert!(c.reports.len() + c.bye.len() + (c.other + c.malformed) as usize >= 1);
        }

        #[test]
        fn rtp_packet_parsers_never_panic_on_near_valid(
            b0 in prop_oneof![Just(0x80u8), Just(0x90), Just(0xA0), Just(0xB0), Just(0x81), Just(0x9F)],
            b1 in any::<u8>(),
            profile in prop_oneof![Just(0xBEDEu16), Just(0x1000), any::<u16>()],
            ext_words in 0u16..4,
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = vec![b0, b1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
            bytes.extend_from_slice(&profile.to_be_bytes());
            bytes.extend_from_slice(&ext_words.to_be_bytes());
            bytes.extend_from_slice(&tail);
            let _ = parse_rtp(&bytes);
            let _ = parse_rtcp(&bytes);
        }
    }
}
