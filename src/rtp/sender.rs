//! The RTP sender of a test call, sans-IO: 20 ms G.711 frames of the test tone
//! paced on the clock it is given, RFC 4733 DTMF on request, and RTCP sender
//! reports.
//!
//! Pacing: frame `i` is due at `start + i × 20 ms` and carries RTP timestamp
//! `first_ts + 160·i`. [`RtpSender::poll_transmit`] hands out the frame due,
//! if any. Called late by a whole frame or more, it does not burst the missed
//! frames: it skips to the latest frame due (the timestamp jumps, the sequence
//! number does not, as after silence suppression) and counts one late send and
//! the frames skipped.
//!
//! RTCP: an SR at 2.5 s, then every 5 s. RFC 3550 §6.2 gives `Tmin = 5 s`
//! (2.5 s for the first report), and for a two-party G.711 call the
//! bandwidth-derived interval (5 % of ~80 kbit/s over two members) is far below
//! it, so the interval is `Tmin`. The [0.5, 1.5] randomisation of §6.3.1 is
//! left out: it prevents many participants from synchronising, and a call has
//! two; without it tests can name the instants.
//!
//! NTP time in SRs: from the wall clock given to
//! [`RtpSender::set_wall_clock`]; without one, the time since the sender
//! started (a date in 1900). Either way LSR/DLSR round trips work, since
//! [`RtpSender::round_trip`] matches a report's LSR to the instant the SR left.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtcp::reception_report::ReceptionReport;

use super::dtmf::{DtmfError, DtmfPlayer, DtmfSlot};
use super::g711::{Codec, CLOCK_RATE};
use super::packet::{build_rtcp, build_rtp, ntp_middle, OutgoingReport, SenderInfo};
use super::srtp::SrtpOutbound;
use super::tone::{self, EchoReference, FRAME, SAMPLES_PER_FRAME};

/// The RTCP report interval (RFC 3550 §6.2 Tmin).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// SRs remembered for matching LSRs in reports.
const SR_HISTORY: usize = 16;
/// Default length of one DTMF digit, and the audio gap after it.
pub const DTMF_TONE: Duration = Duration::from_millis(100);
/// Default audio gap between DTMF digits.
pub const DTMF_GAP: Duration = Duration::from_millis(100);

/// The sender's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// RTP packets sent (audio and DTMF).
    pub packets: u64,
    /// RTP payload octets sent (RFC 3550's octet count: no headers, no tags).
    pub octets: u64,
    /// Audio packets among them.
    pub audio_packets: u64,
    /// Telephone-event packets among them.
    pub dtmf_packets: u64,
    /// Sends at least one whole frame late.
    pub late_sends: u64,
    /// Frames skipped by late sends.
    pub skipped_frames: u64,
    /// RTCP compound packets sent.
    pub rtcp_packets: u64,
    /// Packets not sent because SRTP or marshalling failed.
    pub send_errors: u64,
}

/// The sending half of a test call's media.
#[derive(Debug)]
pub struct RtpSender {
    ssrc: u32,
    payload_type: u8,
    codec: Codec,
    srtp: Option<SrtpOutbound>,
    start: Instant,
    first_seq: u16,
    next_seq: u16,
    first_ts: u32,
    /// The index of the next frame due.
    next_frame: u64,
    marker_pending: bool,
    tag: u16,
    dtmf: Option<DtmfPlayer>,
    dtmf_pt: u8,
    dtmf_ts: u32,
    next_rtcp: Instant,
    cname: String,
    wall: Option<(Instant, Duration)>,
    sent_srs: VecDeque<(u32, Instant)>,
    stopped: bool,
    stats: SenderStats,
}

impl RtpSender {
    /// A sender whose first frame is due at `now`, with a random initial
    /// sequence number and timestamp (RFC 3550 §5.1). `payload_type` is the
    /// one negotiated for `codec` (normally its static 0 or 8).
    pub fn new(
        now: Instant,
        ssrc: u32,
        payload_type: u8,
        codec: Codec,
        srtp: Option<SrtpOutbound>,
    ) -> Self {
        Self::with_start(
            now,
            ssrc,
            payload_type,
            codec,
            srtp,
            rand::random(),
            rand::random(),
        )
    }

    /// As [`new`](Self::new) with a given initial sequence number and timestamp.
    pub fn with_start(
        now: Instant,
        ssrc: u32,
        payload_type: u8,
        codec: Codec,
        srtp: Option<SrtpOutbound>,
        first_seq: u16,
        first_ts: u32,
    ) -> Self {
        RtpSender {
            ssrc,
            payload_type: payload_type & 0x7F,
            codec,
            srtp,
            start: now,
            first_seq,
            next_seq: first_seq,
            first_ts,
            next_frame: 0,
            marker_pending: true,
            tag: tone::tag_of(ssrc),
            dtmf: None,
            dtmf_pt: 101,
            dtmf_ts: 0,
            next_rtcp: now + RTCP_INTERVAL / 2,
            cname: format!("trunkprobe-{ssrc:08x}"),
            wall: None,
            sent_srs: VecDeque::with_capacity(SR_HISTORY),
            stopped: false,
            stats: SenderStats::default(),
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number of our first packet (to read carrier reports with).
    pub fn first_sequence(&self) -> u16 {
        self.first_seq
    }

    /// Our CNAME in SDES (`trunkprobe-<ssrc>`).
    pub fn cname(&self) -> &str {
        &self.cname
    }

    /// What a receiver needs to recognise our frames echoed back.
    pub fn echo_reference(&self) -> EchoReference {
        EchoReference {
            codec: self.codec,
            tag: self.tag,
            start: self.start,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// Ties the monotonic clock to the wall clock: at `now` it is
    /// `since_unix_epoch`. SRs carry NTP times from then on.
    pub fn set_wall_clock(&mut self, now: Instant, since_unix_epoch: Duration) {
        self.wall = Some((now, since_unix_epoch));
    }

    /// Queues `digits` (0-9 * # A-D) as RFC 4733 events of payload type
    /// `event_pt`, each [`DTMF_TONE`] long with [`DTMF_GAP`] of audio after
    /// it; digits queued while others play follow them.
    pub fn send_dtmf(&mut self, digits: &str, event_pt: u8) -> Result<(), DtmfError> {
        self.send_dtmf_timed(digits, event_pt, DTMF_TONE, DTMF_GAP)
    }

    /// As [`send_dtmf`](Self::send_dtmf) with the tone and gap lengths given.
    pub fn send_dtmf_timed(
        &mut self,
        digits: &str,
        event_pt: u8,
        tone: Duration,
        gap: Duration,
    ) -> Result<(), DtmfError> {
        let player = DtmfPlayer::new(digits, tone, gap)?;
        self.dtmf_pt = event_pt & 0x7F;
        match &mut self.dtmf {
            Some(playing) if !playing.is_done() => playing.extend(player),
            _ => self.dtmf = Some(player),
        }
        Ok(())
    }

    /// True while DTMF digits are queued or playing.
    pub fn dtmf_pending(&self) -> bool {
        self.dtmf.as_ref().is_some_and(|p| !p.is_done())
    }

    fn due(&self, frame: u64) -> Instant {
        self.start + FRAME * frame as u32
    }

    /// The RTP packet due at `now`, if any: one per 20 ms frame, skipping
    /// ahead (no burst) when called a frame or more late. `None` after
    /// [`bye`](Self::bye).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.stopped || now < self.due(self.next_frame) {
            return None;
        }
        let behind =
            (now.duration_since(self.due(self.next_frame)).as_micros() / FRAME.as_micros()) as u64;
        if behind > 0 {
            self.stats.late_sends += 1;
            self.stats.skipped_frames += behind;
            self.next_frame += behind;
        }
        let frame = self.next_frame;
        self.next_frame += 1;
        let ts = self
            .first_ts
            .wrapping_add((frame as u32).wrapping_mul(SAMPLES_PER_FRAME as u32));
        let slot = self.dtmf.as_mut().and_then(DtmfPlayer::next_slot);
        let (pt, marker, ts, payload) = match slot {
            Some(DtmfSlot::Event { event, first }) => {
                if first {
                    self.dtmf_ts = ts;
                }
                self.stats.dtmf_packets += 1;
                (self.dtmf_pt, first, self.dtmf_ts, event.to_bytes().to_vec())
            }
            Some(DtmfSlot::Gap) | None => {
                self.stats.audio_packets += 1;
                let marker = std::mem::take(&mut self.marker_pending);
                (
                    self.payload_type,
                    marker,
                    ts,
                    tone::frame(self.codec, self.tag, frame),
                )
            }
        };
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let packet = match build_rtp(pt, marker, seq, ts, self.ssrc, &payload) {
            Ok(p) => p,
            Err(_) => {
                self.stats.send_errors += 1;
                return None;
            }
        };
        let packet = match &mut self.srtp {
            Some(srtp) => match srtp.protect_rtp(&packet) {
                Ok(p) => p,
                Err(_) => {
                    self.stats.send_errors += 1;
                    return None;
                }
            },
            None => packet,
        };
        self.stats.packets += 1;
        self.stats.octets += payload.len() as u64;
        Some(packet)
    }

    /// When [`poll_transmit`](Self::poll_transmit) or
    /// [`poll_rtcp`](Self::poll_rtcp) next has something; `None` after
    /// [`bye`](Self::bye).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.stopped).then(|| self.due(self.next_frame).min(self.next_rtcp))
    }

    /// When the next RTCP report is due (so a driver takes
    /// [`report_blocks`](super::RtpReceiver::report_blocks) only then); `None`
    /// after [`bye`](Self::bye).
    pub fn next_rtcp(&self) -> Option<Instant> {
        (!self.stopped).then_some(self.next_rtcp)
    }

    /// The compound RTCP packet (SR, or RR before any RTP was sent, plus SDES)
    /// due at `now`, if any, with `blocks` about the sources we receive (from
    /// [`RtpReceiver::report_blocks`](super::RtpReceiver::report_blocks)).
    pub fn poll_rtcp(&mut self, now: Instant, blocks: &[ReceptionReport]) -> Option<Vec<u8>> {
        if self.stopped || now < self.next_rtcp {
            return None;
        }
        // From now, not from when it was due: a late report does not bring the
        // next one closer.
        self.next_rtcp = now + RTCP_INTERVAL;
        self.rtcp(now, blocks, false)
    }

    /// A final compound RTCP packet with a BYE; the sender sends nothing more.
    pub fn bye(&mut self, now: Instant, blocks: &[ReceptionReport]) -> Option<Vec<u8>> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        self.rtcp(now, blocks, true)
    }

    fn rtcp(&mut self, now: Instant, blocks: &[ReceptionReport], bye: bool) -> Option<Vec<u8>> {
        let ntp = self.ntp(now);
        let sender = (self.stats.packets > 0).then(|| SenderInfo {
            ntp,
            rtp_time: self.rtp_time(now),
            packets: self.stats.packets as u32,
            octets: self.stats.octets as u32,
        });
        let report = OutgoingReport {
            ssrc: self.ssrc,
            sender,
            blocks,
            cname: &self.cname,
            bye,
        };
        let packet = build_rtcp(&report).ok();
        let packet = match (&mut self.srtp, packet) {
            (Some(srtp), Some(p)) => srtp.protect_rtcp(&p).ok(),
            (None, p) => p,
            (_, None) => None,
        };
        let Some(packet) = packet else {
            self.stats.send_errors += 1;
            return None;
        };
        if sender.is_some() {
            if self.sent_srs.len() == SR_HISTORY {
                self.sent_srs.pop_front();
            }
            self.sent_srs.push_back((ntp_middle(ntp), now));
        }
        self.stats.rtcp_packets += 1;
        Some(packet)
    }

    /// The RTP timestamp of the sampling instant `now`.
    fn rtp_time(&self, now: Instant) -> u32 {
        let units = now.saturating_duration_since(self.start).as_nanos() * u128::from(CLOCK_RATE)
            / 1_000_000_000;
        self.first_ts.wrapping_add(units as u32)
    }

    /// The 64-bit NTP timestamp of `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        let t = match self.wall {
            Some((at, unix)) => {
                let since = if now >= at {
                    unix + (now - at)
                } else {
                    unix.saturating_sub(at - now)
                };
                since + Duration::from_secs(NTP_UNIX_OFFSET)
            }
            None => now.saturating_duration_since(self.start),
        };
        let frac = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
        (t.as_secs() << 32) | frac
    }

    /// The round trip a carrier's report block about us implies (RFC 3550
    /// §6.4.1: arrival − LSR − DLSR), if its LSR is one of our recent SRs.
    pub fn round_trip(&self, block: &ReceptionReport, arrived: Instant) -> Option<Duration> {
        if block.last_sender_report == 0 {
            return None;
        }
        let &(_, sent) = self
            .sent_srs
            .iter()
            .rev()
            .find(|(lsr, _)| *lsr == block.last_sender_report)?;
        let dlsr = Duration::from_micros(u64::from(block.delay) * 1_000_000 / 65536);
        arrived.checked_duration_since(sent)?.checked_sub(dlsr)
    }
}

#[cfg(test)]
mod tests;
