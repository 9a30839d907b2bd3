//! The RTP/RTCP receiver of a test call, sans-IO: every datagram from the
//! media socket goes to [`RtpReceiver::handle_rtp`] (or
//! [`RtpReceiver::handle_rtcp`] from the RTCP port) with the time it arrived
//! and the address it came from; [`RtpReceiver::stats`] says what arrived and
//! [`RtpReceiver::poll_event`] what happened, in order.
//!
//! What it tells apart, for one-way-audio verdicts:
//! - nothing arrived / something arrived but not from the address in the SDP
//!   (symmetric RTP: every source address is kept, with its count);
//! - packets arrived but failed SRTP authentication (counted, never dropped
//!   silently; the first failure is an event);
//! - audio vs silence or comfort noise: the decoded RMS level of the call and
//!   the share of packets above a silence threshold; RFC 3389 CN counted apart;
//! - our own frames coming back (an echo, or a loop): counted, with delay;
//! - what the carrier says about OUR stream: the report block for our SSRC in
//!   its SR/RR, or the fact that it reports without one.
//!
//! Jitter is computed on audio packets only: telephone-events repeat one
//! timestamp for a whole digit, which A.8 would read as jitter.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rtcp::reception_report::ReceptionReport;

use super::dtmf::{event_digit, TelephoneEvent};
use super::g711::{level_dbov, Codec, CLOCK_RATE};
use super::packet::{is_rtcp, ntp_middle, parse_rtcp, parse_rtp, PacketError};
use super::source::{SeqVerdict, Source};
use super::srtp::{SrtpError, SrtpInbound};
use super::tone::EchoReference;

pub use super::stats::{AddressSeen, CarrierReport, MediaEvent, ReceiverStats, SourceStats};

/// Remote SSRCs tracked; packets of further ones are counted, not tracked.
const MAX_SOURCES: usize = 16;
/// Source addresses kept (RTP and RTCP each); further ones are counted only.
const MAX_ADDRESSES: usize = 16;
/// Events queued before the oldest are dropped (and counted).
const MAX_EVENTS: usize = 1024;
/// DTMF digits kept.
const MAX_DIGITS: usize = 64;
/// The RFC 3389 comfort-noise payload type.
const PT_CN: u8 = 13;
/// Report blocks per RTCP packet we send.
const MAX_BLOCKS: usize = 4;

/// The receiver's settings.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Our SSRC: the one the carrier's report blocks should be about.
    pub our_ssrc: u32,
    /// Recognise our frames echoed back (from [`RtpSender::echo_reference`](super::RtpSender::echo_reference)).
    pub echo: Option<EchoReference>,
    /// Payload types decoded as audio (default: 0 PCMU, 8 PCMA).
    pub codecs: Vec<(u8, Codec)>,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event_pt: Option<u8>,
    /// A packet is audible when its level is above this (default -55 dBov:
    /// comfort noise sits around -60 to -70, speech and tones far above).
    pub silence_threshold_dbov: f64,
}

impl ReceiverConfig {
    /// Defaults for a call in which we send as `our_ssrc`.
    pub fn new(our_ssrc: u32) -> Self {
        ReceiverConfig {
            our_ssrc,
            echo: None,
            codecs: vec![(0, Codec::Pcmu), (8, Codec::Pcma)],
            telephone_event_pt: Some(101),
            silence_threshold_dbov: -55.0,
        }
    }
}

/// What [`RtpReceiver::handle_rtp`] made of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpDisposition {
    /// An RTP packet, read and counted.
    Accepted {
        /// Its SSRC.
        ssrc: u32,
        /// Its sequence number.
        sequence: u16,
        /// What it did to the sequence statistics.
        verdict: SeqVerdict,
    },
    /// RTCP on the RTP port (RFC 5761): handled as by `handle_rtcp`.
    Rtcp(RtcpDisposition),
    /// Not RTP.
    NotRtp(PacketError),
    /// SRTP unprotect failed (counted).
    SrtpFailed(SrtpError),
}

/// What [`RtpReceiver::handle_rtcp`] made of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpDisposition {
    /// Read: this many SR/RR reports in it.
    Accepted {
        /// Reports (SR or RR) in the compound packet.
        reports: usize,
    },
    /// Nothing readable in it.
    Malformed,
    /// SRTCP unprotect failed (counted).
    SrtcpFailed(SrtpError),
}

/// The receiving half of a test call's media.
#[derive(Debug)]
pub struct RtpReceiver {
    start: Instant,
    config: ReceiverConfig,
    srtp: Option<SrtpInbound>,
    sources: Vec<Source>,
    stats: ReceiverStats,
    energy: f64,
    samples: u64,
    last_dtmf: Option<(u32, u32)>,
    events: VecDeque<MediaEvent>,
}

impl RtpReceiver {
    /// A receiver started at `now`, with the carrier's SRTP key if the call
    /// is encrypted.
    pub fn new(now: Instant, config: ReceiverConfig, srtp: Option<SrtpInbound>) -> Self {
        RtpReceiver {
            start: now,
            config,
            srtp,
            sources: Vec::new(),
            stats: ReceiverStats {
                level_dbov: level_dbov(0.0, 0),
                ..Default::default()
            },
            energy: 0.0,
            samples: 0,
            last_dtmf: None,
            events: VecDeque::new(),
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    fn event(&mut self, e: MediaEvent) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> ReceiverStats {
        let mut s = self.stats.clone();
        s.sources = self
            .sources
            .iter()
            .map(|src| SourceStats {
                ssrc: src.ssrc,
                packets: src.packets,
                expected: src.expected(),
                lost: src.lost(),
                highest_seq: src.extended_max(),
                jitter_ms: src.jitter_ms(CLOCK_RATE),
                first_at: src.first_at,
            })
            .collect();
        s
    }

    /// Report blocks about the sources we receive, for our next RTCP packet
    /// (most recently heard first, at most 4); starts the next loss interval.
    pub fn report_blocks(&mut self, now: Instant) -> Vec<ReceptionReport> {
        let mut valid: Vec<&mut Source> =
            self.sources.iter_mut().filter(|s| s.is_valid()).collect();
        valid.sort_by_key(|s| std::cmp::Reverse(s.last_at));
        valid
            .into_iter()
            .take(MAX_BLOCKS)
            .map(|s| s.report_block(now))
            .collect()
    }

    /// One datagram from the RTP port.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> RtpDisposition {
        if is_rtcp(bytes) {
            return RtpDisposition::Rtcp(self.handle_rtcp(now, from, bytes));
        }
        let plain;
        let bytes = match &mut self.srtp {
            Some(srtp) => match srtp.unprotect_rtp(bytes) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(e) => {
                    self.srtp_failed(from, &e, false);
                    return RtpDisposition::SrtpFailed(e);
                }
            },
            None => bytes,
        };
        let packet = match parse_rtp(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.stats.not_rtp += 1;
                return RtpDisposition::NotRtp(e);
            }
        };
        let h = &packet.header;
        self.stats.packets += 1;
        self.stats.bytes += bytes.len() as u64;
        if self.stats.first_packet_at.is_none() {
            self.stats.first_packet_at = Some(now);
            self.event(MediaEvent::FirstPacket {
                at: now,
                from,
                ssrc: h.ssrc,
            });
        }
        self.stats.last_packet_at = Some(now);
        if note_address(
            &mut self.stats.addresses,
            &mut self.stats.other_address_packets,
            from,
            now,
        ) && self.stats.packets > 1
        {
            self.event(MediaEvent::NewAddress { from });
        }
        let verdict = match self.sources.iter().position(|s| s.ssrc == h.ssrc) {
            Some(i) => self.sources[i].update(h.sequence_number, now),
            None if self.sources.len() < MAX_SOURCES => {
                let mut s = Source::new(h.ssrc, h.sequence_number, now);
                let v = s.update(h.sequence_number, now);
                if !self.sources.is_empty() {
                    self.event(MediaEvent::NewSsrc { ssrc: h.ssrc });
                }
                self.sources.push(s);
                v
            }
            None => {
                self.stats.untracked_packets += 1;
                SeqVerdict::Jump
            }
        };
        let (ssrc, sequence, ts, pt) = (h.ssrc, h.sequence_number, h.timestamp, h.payload_type);
        let codec = self
            .config
            .codecs
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| *c);
        if let Some(codec) = codec {
            self.audio(now, ssrc, ts, verdict, codec, &packet.payload);
        } else if Some(pt) == self.config.telephone_event_pt {
            self.telephone_event(ssrc, ts, &packet.payload);
        } else if pt == PT_CN {
            self.stats.cn_packets += 1;
            self.stats.cn_level = packet.payload.first().map(|l| l & 0x7F);
        } else {
            self.stats.other_pt_packets += 1;
        }
        RtpDisposition::Accepted {
            ssrc,
            sequence,
            verdict,
        }
    }

    fn audio(
        &mut self,
        now: Instant,
        ssrc: u32,
        ts: u32,
        verdict: SeqVerdict,
        codec: Codec,
        payload: &[u8],
    ) {
        self.stats.audio_packets += 1;
        if verdict == SeqVerdict::Counted {
            let arrival = now.saturating_duration_since(self.start);
            if let Some(s) = self.sources.iter_mut().find(|s| s.ssrc == ssrc) {
                s.update_jitter(ts, arrival, CLOCK_RATE);
            }
        }
        let (sum, n) = codec.payload_energy(payload);
        self.energy += sum;
        self.samples += n;
        self.stats.level_dbov = level_dbov(self.energy, self.samples);
        if level_dbov(sum, n) > self.config.silence_threshold_dbov {
            self.stats.audible_packets += 1;
            if self.stats.audible_packets == 1 {
                self.event(MediaEvent::FirstAudio { at: now });
            }
        }
        let echo = self.config.echo.and_then(|r| r.check(now, payload));
        if let Some((_, delay)) = echo {
            self.stats.echoed_packets += 1;
            let min = self.stats.echo_delay_min.map_or(delay, |m| m.min(delay));
            let max = self.stats.echo_delay_max.map_or(delay, |m| m.max(delay));
            self.stats.echo_delay_min = Some(min);
            self.stats.echo_delay_max = Some(max);
            if self.stats.echoed_packets == 1 {
                self.event(MediaEvent::FirstEcho { delay });
            }
        }
    }

    fn telephone_event(&mut self, ssrc: u32, ts: u32, payload: &[u8]) {
        self.stats.dtmf_packets += 1;
        let Some(e) = TelephoneEvent::parse(payload) else {
            return;
        };
        // A digit once, at its first end packet (one timestamp per event).
        if !e.end || self.last_dtmf == Some((ssrc, ts)) {
            return;
        }
        self.last_dtmf = Some((ssrc, ts));
        if let Some(digit) = event_digit(e.event) {
            if self.stats.dtmf_digits.len() < MAX_DIGITS {
                self.stats.dtmf_digits.push(digit);
            }
            self.event(MediaEvent::Dtmf { digit });
        }
    }

    fn srtp_failed(&mut self, from: SocketAddr, e: &SrtpError, rtcp: bool) {
        let first = self.stats.srtp_auth_failures
            + self.stats.srtp_other_failures
            + self.stats.srtcp_auth_failures
            == 0;
        match (rtcp, e.is_auth_failure()) {
            (false, true) => self.stats.srtp_auth_failures += 1,
            (false, false) => self.stats.srtp_other_failures += 1,
            (true, true) => self.stats.srtcp_auth_failures += 1,
            (true, false) => self.stats.rtcp_malformed += 1,
        }
        self.stats.srtp_failure_from = Some(from);
        if first {
            self.event(MediaEvent::SrtpFailing { error: e.clone() });
        }
    }

    /// One datagram from the RTCP port (or RTCP on the RTP port).
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> RtcpDisposition {
        let plain;
        let bytes = match &mut self.srtp {
            Some(srtp) => match srtp.unprotect_rtcp(bytes) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(e) => {
                    self.srtp_failed(from, &e, true);
                    return RtcpDisposition::SrtcpFailed(e);
                }
            },
            None => bytes,
        };
        let compound = parse_rtcp(bytes);
        self.stats.rtcp_malformed += u64::from(compound.malformed);
        if compound.reports.is_empty() && compound.bye.is_empty() && compound.other == 0 {
            return RtcpDisposition::Malformed;
        }
        self.stats.rtcp_packets += 1;
        let mut ignored = 0;
        note_address(&mut self.stats.rtcp_addresses, &mut ignored, from, now);
        let reports = compound.reports.len();
        for report in compound.reports {
            if let Some(info) = report.sender {
                self.stats.carrier_sender = Some((report.ssrc, info, now));
                if let Some(s) = self.sources.iter_mut().find(|s| s.ssrc == report.ssrc) {
                    s.note_sr(ntp_middle(info.ntp), now);
                }
            }
            match report
                .blocks
                .into_iter()
                .find(|b| b.ssrc == self.config.our_ssrc)
            {
                Some(block) => {
                    let r = CarrierReport {
                        reporter: report.ssrc,
                        block,
                        arrived: now,
                    };
                    self.stats.reports_with_our_block += 1;
                    self.stats.carrier_report = Some(r.clone());
                    self.event(MediaEvent::CarrierReport(r));
                }
                None => {
                    self.stats.reports_without_our_block += 1;
                    self.event(MediaEvent::ReportWithoutOurBlock {
                        reporter: report.ssrc,
                    });
                }
            }
        }
        for ssrc in compound.bye {
            if self.stats.byes.len() < MAX_SOURCES && !self.stats.byes.contains(&ssrc) {
                self.stats.byes.push(ssrc);
            }
            self.event(MediaEvent::Bye { ssrc });
        }
        RtcpDisposition::Accepted { reports }
    }
}

/// Counts a datagram from `from`; true if the address is new.
fn note_address(
    seen: &mut Vec<AddressSeen>,
    overflow: &mut u64,
    from: SocketAddr,
    now: Instant,
) -> bool {
    if let Some(a) = seen.iter_mut().find(|a| a.addr == from) {
        a.packets += 1;
        return false;
    }
    if seen.len() >= MAX_ADDRESSES {
        *overflow += 1;
        return false;
    }
    seen.push(AddressSeen {
        addr: from,
        packets: 1,
        first_at: now,
    });
    true
}

#[cfg(test)]
mod tests;
