//! What the receiver tells: its statistics ([`ReceiverStats`]), its events
//! ([`MediaEvent`]), and the carrier's report on our stream
//! ([`CarrierReport`]). Plain data, filled in by [`super::receiver`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtcp::reception_report::ReceptionReport;

use super::g711::CLOCK_RATE;
use super::packet::SenderInfo;
use super::srtp::SrtpError;

/// A report block about our stream, from the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierReport {
    /// The SSRC of the report's sender.
    pub reporter: u32,
    /// The block about our SSRC.
    pub block: ReceptionReport,
    /// When the report arrived (for [`RtpSender::round_trip`](super::RtpSender::round_trip)).
    pub arrived: Instant,
}

impl CarrierReport {
    /// How many of our packets the carrier says it received, given our first
    /// sequence number: (extended highest − first + 1) − cumulative lost.
    pub fn packets_received(&self, our_first_seq: u16) -> i64 {
        let highest = i64::from(self.block.last_sequence_number);
        let mut expected = highest - i64::from(our_first_seq) + 1;
        if expected <= 0 {
            // Its count started after our sequence numbers wrapped.
            expected += 1 << 16;
        }
        expected - self.cumulative_lost()
    }

    /// The cumulative loss field, sign-extended from 24 bits.
    pub fn cumulative_lost(&self) -> i64 {
        let v = self.block.total_lost & 0xFF_FFFF;
        i64::from(((v << 8) as i32) >> 8)
    }

    /// The fraction lost in the last interval, in percent.
    pub fn fraction_lost_percent(&self) -> f64 {
        f64::from(self.block.fraction_lost) * 100.0 / 256.0
    }

    /// The jitter the carrier measured on our stream, in ms.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.block.jitter) * 1000.0 / f64::from(CLOCK_RATE)
    }
}

/// Something that happened, in order of arrival.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The first RTP packet.
    FirstPacket {
        /// When.
        at: Instant,
        /// From where.
        from: SocketAddr,
        /// Its SSRC.
        ssrc: u32,
    },
    /// RTP from another SSRC than before.
    NewSsrc {
        /// The new SSRC.
        ssrc: u32,
    },
    /// RTP from an address not seen before (after the first).
    NewAddress {
        /// The address.
        from: SocketAddr,
    },
    /// The first packet above the silence threshold.
    FirstAudio {
        /// When.
        at: Instant,
    },
    /// The first of our own frames coming back.
    FirstEcho {
        /// How long after it was due to be sent.
        delay: Duration,
    },
    /// The first SRTP or SRTCP failure.
    SrtpFailing {
        /// Why.
        error: SrtpError,
    },
    /// The carrier reported on our stream.
    CarrierReport(CarrierReport),
    /// The carrier sent an SR/RR with no block for our SSRC.
    ReportWithoutOurBlock {
        /// The reporter's SSRC.
        reporter: u32,
    },
    /// The carrier's source left (RTCP BYE).
    Bye {
        /// The SSRC that left.
        ssrc: u32,
    },
    /// A DTMF digit received as a telephone-event.
    Dtmf {
        /// The digit.
        digit: char,
    },
}

/// A source address and what came from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSeen {
    /// The address.
    pub addr: SocketAddr,
    /// Datagrams from it.
    pub packets: u64,
    /// When the first arrived.
    pub first_at: Instant,
}

/// One remote SSRC's statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceStats {
    /// The SSRC.
    pub ssrc: u32,
    /// Datagrams from it.
    pub packets: u64,
    /// Packets expected (RFC 3550 A.3), 0 while on probation.
    pub expected: u64,
    /// Cumulative lost (negative with duplicates).
    pub lost: i64,
    /// The extended highest sequence number.
    pub highest_seq: u32,
    /// Interarrival jitter in ms.
    pub jitter_ms: f64,
    /// When its first packet arrived.
    pub first_at: Instant,
}

/// Everything counted so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverStats {
    /// RTP packets read (after SRTP).
    pub packets: u64,
    /// Their datagram bytes.
    pub bytes: u64,
    /// Datagrams on the RTP port that were not RTP.
    pub not_rtp: u64,
    /// SRTP packets that failed authentication (wrong key, tampering, plain RTP).
    pub srtp_auth_failures: u64,
    /// SRTP packets refused for another reason (short, malformed, SSRC cap).
    pub srtp_other_failures: u64,
    /// The address of the last SRTP failure.
    pub srtp_failure_from: Option<SocketAddr>,
    /// When the first RTP packet arrived.
    pub first_packet_at: Option<Instant>,
    /// When the last RTP packet arrived.
    pub last_packet_at: Option<Instant>,
    /// The addresses RTP came from, first seen first.
    pub addresses: Vec<AddressSeen>,
    /// Packets from addresses past the kept ones.
    pub other_address_packets: u64,
    /// Per remote SSRC.
    pub sources: Vec<SourceStats>,
    /// Packets of SSRCs past the tracked ones.
    pub untracked_packets: u64,
    /// Packets of a codec payload type.
    pub audio_packets: u64,
    /// Audio packets above the silence threshold.
    pub audible_packets: u64,
    /// The RMS level of all decoded audio, in dBov.
    pub level_dbov: f64,
    /// RFC 3389 comfort-noise packets.
    pub cn_packets: u64,
    /// The last comfort-noise level, in -dBov.
    pub cn_level: Option<u8>,
    /// Telephone-event packets.
    pub dtmf_packets: u64,
    /// Digits received as telephone-events.
    pub dtmf_digits: String,
    /// Packets of any other payload type.
    pub other_pt_packets: u64,
    /// Received packets that are our own frames.
    pub echoed_packets: u64,
    /// Shortest echo delay.
    pub echo_delay_min: Option<Duration>,
    /// Longest echo delay.
    pub echo_delay_max: Option<Duration>,
    /// RTCP datagrams read.
    pub rtcp_packets: u64,
    /// RTCP datagrams or parts that did not parse.
    pub rtcp_malformed: u64,
    /// SRTCP packets that failed authentication (or had the E bit clear).
    pub srtcp_auth_failures: u64,
    /// The addresses RTCP came from.
    pub rtcp_addresses: Vec<AddressSeen>,
    /// The carrier's last sender info: its SSRC, the SR, when it arrived.
    pub carrier_sender: Option<(u32, SenderInfo, Instant)>,
    /// The carrier's last report block about our stream.
    pub carrier_report: Option<CarrierReport>,
    /// SR/RRs from the carrier with a block for our SSRC.
    pub reports_with_our_block: u64,
    /// SR/RRs from the carrier without one.
    pub reports_without_our_block: u64,
    /// SSRCs that said BYE.
    pub byes: Vec<u32>,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
}

impl ReceiverStats {
    /// Packets lost over all remote sources, in percent of those expected.
    pub fn loss_percent(&self) -> f64 {
        let expected: u64 = self.sources.iter().map(|s| s.expected).sum();
        let lost: i64 = self.sources.iter().map(|s| s.lost).sum();
        if expected == 0 {
            return 0.0;
        }
        (lost.max(0) as f64 * 100.0 / expected as f64).min(100.0)
    }

    /// The jitter of the source with the most packets, in ms.
    pub fn jitter_ms(&self) -> f64 {
        self.sources
            .iter()
            .max_by_key(|s| s.packets)
            .map_or(0.0, |s| s.jitter_ms)
    }

    /// The share (0–1) of audio packets above the silence threshold.
    pub fn audible_share(&self) -> f64 {
        if self.audio_packets == 0 {
            return 0.0;
        }
        self.audible_packets as f64 / self.audio_packets as f64
    }

    /// "The carrier reports receiving N of our packets", if it reported.
    pub fn carrier_received_of_ours(&self, our_first_seq: u16) -> Option<i64> {
        self.carrier_report
            .as_ref()
            .map(|r| r.packets_received(our_first_seq))
    }
}
