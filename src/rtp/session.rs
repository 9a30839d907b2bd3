//! One call's media, sans-IO: the [`RtpSender`] and [`RtpReceiver`] of a
//! test call put together with what the SDP offer and answer decided (the
//! codec and its payload type, telephone-event, the carrier's addresses, and
//! with SDES the two SRTP contexts).
//!
//! The driver ([`crate::probe::call`]) offers [`MediaSession::crypto_lines`],
//! calls [`MediaSession::start`] with the carrier's SDP, then moves datagrams:
//! [`MediaSession::poll_transmit`] for what to send (RTP to the SDP's port,
//! RTCP to the port above it), `handle_rtp`/`handle_rtcp` for what arrived,
//! [`MediaSession::bye`] when the call ends, and [`MediaSession::stats`] for
//! the evidence.
//!
//! SDES (RFC 4568 §6.1): each side encrypts what it sends with the key of its
//! own `a=crypto`; the answer picks one of our tags. So our outbound context
//! is our key of the tag the answer names, and the inbound context is the
//! answer's key.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::emodel::{score, Impairments};
use super::g711::Codec;
use super::receiver::{ReceiverConfig, RtpReceiver};
use super::sdes::{CryptoAttribute, SrtpSuite};
use super::sender::RtpSender;
use super::srtp::{SrtpInbound, SrtpOutbound};
use super::tone::FRAME;

/// DTMF starts this long after media does (an IVR's prompt has begun).
pub const DTMF_DELAY: Duration = Duration::from_secs(1);
/// The carrier owes a report block about our stream after this much RTP
/// (two RTCP intervals): RTCP without one by then says it gets nothing.
const REPORT_OWED_AFTER: Duration = Duration::from_secs(10);

/// What the session offers.
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    /// Codecs offered (Asterisk names); the first G.711 one the answer has is sent.
    pub codecs: Vec<String>,
    /// SDES is offered: `a=crypto` lines for AES_CM_128_HMAC_SHA1_80 and _32.
    pub sdes: bool,
    /// `media_encryption_optimistic`: an answer without `a=crypto` means plain RTP.
    pub optimistic: bool,
    /// RFC 4733 digits to send, [`DTMF_DELAY`] after media starts.
    pub dtmf: String,
    /// Start the first frame on this epoch's 20 ms grid (the next point at or
    /// after the start) rather than at the start itself: calls placed together
    /// then all send in the same wake-ups, each still exactly every 20 ms.
    pub grid: Option<Instant>,
}

/// The first instant at or after `now` that is a whole number of frames after `epoch`.
pub fn on_grid(epoch: Instant, now: Instant) -> Instant {
    let Some(since) = now.checked_duration_since(epoch) else {
        return epoch;
    };
    let frame = FRAME.as_nanos();
    let frames = since.as_nanos().div_ceil(frame);
    epoch + Duration::from_nanos(u64::try_from(frames * frame).unwrap_or(u64::MAX))
}

/// What the media showed, at the time asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets sent (audio and DTMF).
    pub sent_packets: u64,
    /// RTP payload octets sent.
    pub sent_bytes: u64,
    /// RTP packets received (and, with SRTP, authenticated).
    pub received_packets: u64,
    /// Their bytes, as they arrived.
    pub received_bytes: u64,
    /// Expected minus received, from the extended highest sequence number.
    pub lost: u64,
    /// RFC 3550 interarrival jitter of the main inbound source.
    pub jitter_ms: f64,
    /// From the start of media to the first inbound packet.
    pub first_packet: Option<Duration>,
    /// RMS level of the decoded inbound audio, dBov.
    pub level_dbov: Option<f64>,
    /// Share of inbound audio packets above the silence threshold.
    pub audio_ratio: Option<f64>,
    /// Addresses the inbound RTP came from.
    pub rtp_from: Vec<SocketAddr>,
    /// Our own frames that came back.
    pub echoed: u64,
    /// RTCP packets received.
    pub rtcp_received: u64,
    /// How many of ours the carrier's RTCP says it received.
    pub reported_received: Option<u64>,
    /// How many of ours its latest report counts as lost (cumulative).
    pub reported_lost: Option<u64>,
    /// The carrier sent RTCP reports, none about our stream, long after we began.
    pub report_without_our_stream: bool,
    /// G.107 R of the inbound stream.
    pub r_factor: Option<f64>,
    /// Its MOS.
    pub mos: Option<f64>,
    /// Media is encrypted (SDES keyed both ways).
    pub srtp: bool,
    /// Inbound SRTP/SRTCP packets that failed authentication.
    pub srtp_auth_failures: u64,
    /// Why SRTP could not be keyed from the answer (no media was sent).
    pub srtp_error: Option<String>,
    /// Digits sent as RFC 4733 events, once their packets went out.
    pub dtmf_sent: String,
    /// Digits the carrier sent as RFC 4733 events.
    pub dtmf_received: String,
    /// Half the RTCP round trip, when the carrier's report allowed it.
    pub one_way_delay_ms: Option<f64>,
}

/// One call's media.
#[derive(Debug)]
pub struct MediaSession {
    config: MediaConfig,
    ssrc: u32,
    /// Our `a=crypto` attributes (tags 1 and 2), when SDES is offered.
    ours: Vec<CryptoAttribute>,
    sender: Option<RtpSender>,
    receiver: Option<RtpReceiver>,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    started: Option<Instant>,
    srtp: bool,
    srtp_error: Option<String>,
    dtmf_at: Option<Instant>,
    dtmf_pt: Option<u8>,
    dtmf_sent: String,
}

impl MediaSession {
    /// A session that has not started; SDES keys are drawn now.
    pub fn new(config: MediaConfig, _now: Instant) -> MediaSession {
        let ours = if config.sdes {
            vec![
                CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80),
                CryptoAttribute::generate(2, SrtpSuite::AesCm128HmacSha1_32),
            ]
        } else {
            Vec::new()
        };
        MediaSession {
            config,
            ssrc: rand::random(),
            ours,
            sender: None,
            receiver: None,
            remote_rtp: None,
            remote_rtcp: None,
            started: None,
            srtp: false,
            srtp_error: None,
            dtmf_at: None,
            dtmf_pt: None,
            dtmf_sent: String::new(),
        }
    }

    /// The `inline:` key params of our offer (AES_CM_128_HMAC_SHA1_80, then
    /// _32), when SDES is offered.
    pub fn sdes_keys(&self) -> Option<[String; 2]> {
        match self.ours.as_slice() {
            [a, b] => Some([a.key.to_inline(), b.key.to_inline()]),
            _ => None,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Media starts: send to `remote` (the carrier's SDP address) in the first
    /// G.711 codec its `answer` lists that we offered, keyed by its
    /// `a=crypto` when SDES was offered. A second call does nothing.
    pub fn start(&mut self, now: Instant, remote: &Option<SocketAddr>, answer: &[u8]) {
        if self.started.is_some() {
            return;
        }
        self.started = Some(now);
        let chosen = self.choose(answer);
        if !chosen.common {
            // Nothing we offered: Bolna would send nothing either.
            return;
        }
        let (codec, pt, event_pt) = chosen.codec;
        let (outbound, inbound) = match self.keys(answer) {
            Ok(Some((o, i))) => {
                self.srtp = true;
                (Some(o), Some(i))
            }
            Ok(None) => (None, None),
            Err(why) => {
                // Sending clear RTP to a carrier that expects SRTP would be
                // noise to it; the verdict says why instead.
                self.srtp_error = Some(why);
                return;
            }
        };
        let first = self.config.grid.map_or(now, |epoch| on_grid(epoch, now));
        let sender = RtpSender::new(first, self.ssrc, pt, codec, outbound);
        let mut rc = ReceiverConfig::new(self.ssrc);
        rc.echo = Some(sender.echo_reference());
        rc.codecs = chosen.audio;
        rc.telephone_event_pt = event_pt;
        self.receiver = Some(RtpReceiver::new(now, rc, inbound));
        self.sender = Some(sender);
        self.dtmf_pt = event_pt;
        if !self.config.dtmf.is_empty() && event_pt.is_some() {
            self.dtmf_at = Some(now + DTMF_DELAY);
        }
        self.remote_rtp = *remote;
        self.remote_rtcp = remote.map(|a| SocketAddr::new(a.ip(), a.port().saturating_add(1)));
    }

    /// The codec we send (with its payload type in the answer), the audio
    /// payload types we decode, and the answer's telephone-event type.
    fn choose(&self, answer: &[u8]) -> Chosen {
        let mut chosen = Chosen {
            codec: (Codec::Pcmu, 0, Some(101)),
            audio: vec![(0, Codec::Pcmu), (8, Codec::Pcma)],
            common: true,
        };
        let Ok(sdp) = crate::sip::sdp::parse(answer) else {
            return chosen;
        };
        let Some(m) = sdp.accepted_audio().next() else {
            return chosen;
        };
        use crate::sip::sdp::Codec as Sdp;
        let offered = |n: &str| self.config.codecs.iter().any(|c| c == n);
        let mut audio = Vec::new();
        let mut first = None;
        let mut event = None;
        for p in &m.payloads {
            let c = match p.codec {
                Some(Sdp::Ulaw) => Codec::Pcmu,
                Some(Sdp::Alaw) => Codec::Pcma,
                Some(Sdp::TelephoneEvent) => {
                    event.get_or_insert(p.pt);
                    continue;
                }
                _ => continue,
            };
            audio.push((p.pt, c));
            if first.is_none() && offered(asterisk_name(c)) {
                first = Some((c, p.pt));
            }
        }
        if !audio.is_empty() {
            chosen.audio = audio;
        }
        match first {
            Some((c, pt)) => chosen.codec = (c, pt, event),
            None => chosen.common = false,
        }
        chosen
    }

    /// The SRTP contexts the answer keys, `None` for plain RTP, or why the
    /// answer cannot be keyed.
    fn keys(&self, answer: &[u8]) -> Result<Option<(SrtpOutbound, SrtpInbound)>, String> {
        if self.ours.is_empty() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(answer);
        let mut refused = None;
        let mut theirs = None;
        for line in text.lines() {
            let Some(value) = line.trim().strip_prefix("a=crypto:") else {
                continue;
            };
            match CryptoAttribute::parse(value) {
                Ok(a) if theirs.is_none() => theirs = Some(a),
                Ok(_) => {}
                Err(e) => refused = Some(e.to_string()),
            }
        }
        let Some(theirs) = theirs else {
            if self.config.optimistic {
                return Ok(None);
            }
            return Err(match refused {
                Some(e) => format!("the answer's a=crypto was refused: {e}"),
                None => "the answer has no a=crypto for our SDES offer".into(),
            });
        };
        let Some(ours) = self
            .ours
            .iter()
            .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
        else {
            return Err(format!(
                "the answer's a=crypto (tag {}, {}) matches none of our offer's",
                theirs.tag,
                theirs.suite.name()
            ));
        };
        let outbound = SrtpOutbound::new(&ours.key, ours.suite).map_err(|e| e.to_string())?;
        let inbound = SrtpInbound::new(&theirs.key, theirs.suite).map_err(|e| e.to_string())?;
        Ok(Some((outbound, inbound)))
    }

    /// The session started and cannot carry media (no codec in common, or
    /// SRTP that cannot be keyed): the call should end now.
    pub fn unusable(&self) -> bool {
        self.started.is_some() && self.sender.is_none()
    }

    /// Packets due now: `(destination, bytes, is_rtcp)`. A late caller gets
    /// one packet and the schedule skips ahead (no burst).
    pub fn poll_transmit(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>, bool)> {
        let mut out = Vec::new();
        let (Some(rtp_to), Some(sender)) = (self.remote_rtp, self.sender.as_mut()) else {
            return out;
        };
        if let (Some(at), Some(pt)) = (self.dtmf_at, self.dtmf_pt) {
            if now >= at {
                self.dtmf_at = None;
                if sender.send_dtmf(&self.config.dtmf, pt).is_ok() {
                    self.dtmf_sent = self.config.dtmf.clone();
                }
            }
        }
        if let Some(p) = sender.poll_transmit(now) {
            out.push((rtp_to, p, false));
        }
        if let (Some(at), Some(to), Some(rx)) =
            (sender.next_rtcp(), self.remote_rtcp, self.receiver.as_mut())
        {
            if now >= at {
                let blocks = rx.report_blocks(now);
                if let Some(p) = sender.poll_rtcp(now, &blocks) {
                    out.push((to, p, true));
                }
            }
        }
        out
    }

    /// When [`MediaSession::poll_transmit`] has something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.sender.as_ref().and_then(RtpSender::poll_timeout)?;
        Some(self.dtmf_at.map_or(next, |d| d.min(next)))
    }

    /// The final RTCP (a BYE) as the call ends; the sender stops.
    pub fn bye(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        let to = self.remote_rtcp?;
        let blocks = self.receiver.as_mut()?.report_blocks(now);
        let p = self.sender.as_mut()?.bye(now, &blocks)?;
        Some((to, p))
    }

    /// One datagram on the RTP socket.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if let Some(rx) = self.receiver.as_mut() {
            rx.handle_rtp(now, from, bytes);
            while rx.poll_event().is_some() {}
        }
    }

    /// One datagram on the RTCP socket.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if let Some(rx) = self.receiver.as_mut() {
            rx.handle_rtcp(now, from, bytes);
            while rx.poll_event().is_some() {}
        }
    }

    /// What the media showed so far.
    pub fn stats(&self) -> MediaStats {
        let mut out = MediaStats {
            srtp: self.srtp,
            srtp_error: self.srtp_error.clone(),
            ..MediaStats::default()
        };
        let (Some(tx), Some(rx), Some(started)) = (&self.sender, &self.receiver, self.started)
        else {
            return out;
        };
        let sent = tx.stats();
        let r = rx.stats();
        out.sent_packets = sent.packets;
        out.sent_bytes = sent.octets;
        out.dtmf_sent = if sent.dtmf_packets > 0 {
            self.dtmf_sent.clone()
        } else {
            String::new()
        };
        out.received_packets = r.packets;
        out.received_bytes = r.bytes;
        out.lost = r.sources.iter().map(|s| s.lost.max(0) as u64).sum();
        out.jitter_ms = r.jitter_ms();
        out.first_packet = r
            .first_packet_at
            .map(|f| f.saturating_duration_since(started));
        out.level_dbov = (r.audio_packets > 0).then_some(r.level_dbov);
        out.audio_ratio = (r.audio_packets > 0).then(|| r.audible_share());
        out.rtp_from = r.addresses.iter().map(|a| a.addr).collect();
        out.echoed = r.echoed_packets;
        out.rtcp_received = r.rtcp_packets;
        out.srtp_auth_failures = r.srtp_auth_failures + r.srtcp_auth_failures;
        out.dtmf_received = r.dtmf_digits.clone();
        out.reported_received = r
            .carrier_received_of_ours(tx.first_sequence())
            .map(|n| n.max(0) as u64);
        out.reported_lost = r
            .carrier_report
            .as_ref()
            .map(|c| c.cumulative_lost().max(0) as u64);
        let rtp_for = r
            .last_packet_at
            .or(r.first_packet_at)
            .map(|l| l.saturating_duration_since(started))
            .unwrap_or_default();
        out.report_without_our_stream = out.reported_received.is_none()
            && r.reports_without_our_block > 0
            && (rtp_for >= REPORT_OWED_AFTER || sent.packets >= 500);
        let rtt = r
            .carrier_report
            .as_ref()
            .and_then(|c| tx.round_trip(&c.block, c.arrived));
        out.one_way_delay_ms = rtt.map(|d| crate::text::ms(d) / 2.0);
        if r.packets > 0 {
            let s = score(&Impairments {
                one_way_delay_ms: out.one_way_delay_ms.unwrap_or(0.0),
                jitter_ms: out.jitter_ms,
                loss_percent: r.loss_percent(),
            });
            out.r_factor = Some(s.r);
            out.mos = Some(s.mos);
        }
        out
    }
}

/// Bolna's (Asterisk's) name of a G.711 law.
fn asterisk_name(c: Codec) -> &'static str {
    match c {
        Codec::Pcmu => "ulaw",
        Codec::Pcma => "alaw",
    }
}

struct Chosen {
    /// What we send: codec, its payload type, the telephone-event type.
    codec: (Codec, u8, Option<u8>),
    /// Payload types decoded as audio.
    audio: Vec<(u8, Codec)>,
    /// The answer has a G.711 law we offered.
    common: bool,
}

#[cfg(test)]
mod tests;
