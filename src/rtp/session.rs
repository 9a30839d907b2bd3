//! One call's media, sans-IO: our G.711 test tone sent every 20 ms (50
//! packets/s, paced on the clock given), the carrier's RTP measured (packets,
//! sequence-gap loss, RFC 3550 §6.4.1 interarrival jitter, first-packet delay,
//! decoded level, source addresses, our own packets echoed back), its RTCP read
//! for a report block about our stream, our own RTCP SR every 5 s, and an
//! ITU-T G.107 estimate of the inbound quality.
//!
//! The RTP and RTCP headers (12 and 8 bytes, plus 24-byte report blocks) are
//! read and written here: it is a handful of big-endian fields, and the
//! webrtc-rs `rtp`/`rtcp` crates bring their `webrtc-util` stack for it.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::g711::{level_dbov, tone, G711, SAMPLES};

const PACKET: Duration = Duration::from_millis(20);
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Below this a packet counts as silence (comfort noise sits near -70 dBov).
const SILENCE_DBOV: f64 = -55.0;
/// Fingerprints of our last packets kept to recognise an echo.
const ECHO_MEMORY: usize = 2048;

/// What the session offers.
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    /// Codecs offered (Asterisk names); the first G.711 one the answer has is sent.
    pub codecs: Vec<String>,
    /// SDES was asked for (not carried by this session: see [`MediaSession::sdes_keys`]).
    pub sdes: bool,
    /// RFC 4733 digits to send (not sent by this session yet).
    pub dtmf: String,
}

/// What the media showed, at the time asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    /// Expected minus received, from the extended highest sequence number.
    pub lost: u64,
    pub jitter_ms: f64,
    /// From the start of media to the first inbound packet.
    pub first_packet: Option<Duration>,
    pub level_dbov: Option<f64>,
    pub audio_ratio: Option<f64>,
    pub rtp_from: Vec<SocketAddr>,
    pub echoed: u64,
    pub rtcp_received: u64,
    pub reported_received: Option<u64>,
    pub report_without_our_stream: bool,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
}

/// One call's media.
#[derive(Debug)]
pub struct MediaSession {
    config: MediaConfig,
    ssrc: u32,
    codec: G711,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    started: Option<Instant>,
    next_send: Option<Instant>,
    next_rtcp: Option<Instant>,
    seq: u16,
    sent_packets: u64,
    sent_bytes: u64,
    ours: HashSet<u64>,
    ours_order: VecDeque<u64>,
    rx: Receiver,
}

#[derive(Debug, Default)]
struct Receiver {
    packets: u64,
    bytes: u64,
    base_seq: Option<u16>,
    max_ext: u32,
    cycles: u32,
    last_transit: Option<i64>,
    jitter: f64,
    first: Option<Instant>,
    sources: Vec<SocketAddr>,
    level_sum: f64,
    level_n: u64,
    audio_packets: u64,
    echoed: u64,
    remote_ssrc: Option<u32>,
    rtcp: u64,
    reported: Option<u64>,
    report_without_us: bool,
    epoch: Option<Instant>,
}

fn fingerprint(payload: &[u8]) -> u64 {
    // FNV-1a 64 of the payload: stable and cheap; collisions only blur counts.
    payload.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl MediaSession {
    pub fn new(config: MediaConfig, _now: Instant) -> MediaSession {
        MediaSession {
            config,
            ssrc: rand::random(),
            codec: G711::Ulaw,
            remote_rtp: None,
            remote_rtcp: None,
            started: None,
            next_send: None,
            next_rtcp: None,
            seq: rand::random(),
            sent_packets: 0,
            sent_bytes: 0,
            ours: HashSet::new(),
            ours_order: VecDeque::new(),
            rx: Receiver::default(),
        }
    }

    /// SDES keys for our offer. This session carries plain RTP only, so none:
    /// the caller must not offer `RTP/SAVP`.
    pub fn sdes_keys(&self) -> Option<[String; 2]> {
        None
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Media starts: send to `remote` (the carrier's SDP address) in the first
    /// G.711 codec its `answer` lists that we offered.
    pub fn start(&mut self, now: Instant, remote: &Option<SocketAddr>, answer: &[u8]) {
        if self.started.is_some() {
            return;
        }
        if let Ok(sdp) = crate::sip::sdp::parse(answer) {
            let offered = |n: &str| self.config.codecs.iter().any(|c| c == n);
            if let Some(m) = sdp.accepted_audio().next() {
                self.codec = m
                    .audio_codecs()
                    .iter()
                    .find_map(|c| match c.name() {
                        "ulaw" if offered("ulaw") => Some(G711::Ulaw),
                        "alaw" if offered("alaw") => Some(G711::Alaw),
                        _ => None,
                    })
                    .unwrap_or(G711::Ulaw);
            }
        }
        self.remote_rtp = *remote;
        self.remote_rtcp = remote.map(|a| SocketAddr::new(a.ip(), a.port().saturating_add(1)));
        self.started = Some(now);
        self.rx.epoch = Some(now);
        self.next_send = Some(now);
        self.next_rtcp = Some(now + RTCP_INTERVAL);
    }

    /// Packets due now: `(destination, bytes, is_rtcp)`. A late caller gets
    /// one packet and the schedule skips ahead (no burst).
    pub fn poll_transmit(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>, bool)> {
        let mut out = Vec::new();
        let (Some(rtp_to), Some(start)) = (self.remote_rtp, self.started) else {
            return out;
        };
        if let Some(at) = self.next_send.filter(|at| now >= *at) {
            let n = self.sent_packets;
            let payload = tone(self.codec, n * SAMPLES as u64);
            let ts = (n as u32).wrapping_mul(SAMPLES as u32);
            let mut p = Vec::with_capacity(12 + SAMPLES);
            p.push(0x80);
            p.push(self.codec.payload_type() | if n == 0 { 0x80 } else { 0 });
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&self.ssrc.to_be_bytes());
            p.extend_from_slice(&payload);
            self.remember(fingerprint(&payload));
            self.seq = self.seq.wrapping_add(1);
            self.sent_packets += 1;
            self.sent_bytes += payload.len() as u64;
            out.push((rtp_to, p, false));
            let mut next = at + PACKET;
            if next <= now {
                // Late: keep the cadence from now on.
                let behind = now.duration_since(start).as_micros() / PACKET.as_micros();
                next = start + PACKET * (behind as u32 + 1);
            }
            self.next_send = Some(next);
        }
        if let (Some(at), Some(to)) = (self.next_rtcp, self.remote_rtcp) {
            if now >= at {
                out.push((to, self.sender_report(now), true));
                self.next_rtcp = Some(now + RTCP_INTERVAL);
            }
        }
        out
    }

    /// When [`MediaSession::poll_transmit`] has something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_send, self.next_rtcp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn remember(&mut self, f: u64) {
        if self.ours.insert(f) {
            self.ours_order.push_back(f);
        }
        if self.ours_order.len() > ECHO_MEMORY {
            if let Some(old) = self.ours_order.pop_front() {
                self.ours.remove(&old);
            }
        }
    }

    /// One datagram on the RTP socket.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if bytes.len() < 12 || bytes[0] >> 6 != 2 {
            return;
        }
        let cc = usize::from(bytes[0] & 0x0f);
        let mut at = 12 + 4 * cc;
        if bytes[0] & 0x10 != 0 {
            // Header extension: 4 bytes, then `length` 32-bit words.
            let Some(ext) = bytes.get(at + 2..at + 4) else {
                return;
            };
            at += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        }
        let mut end = bytes.len();
        if bytes[0] & 0x20 != 0 {
            end = end.saturating_sub(usize::from(*bytes.last().unwrap_or(&0)));
        }
        let Some(payload) = bytes.get(at..end) else {
            return;
        };
        let pt = bytes[1] & 0x7f;
        let seq = u16::from_be_bytes([bytes[2], bytes[3]]);
        let ts = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let rx = &mut self.rx;
        if self.ours.contains(&fingerprint(payload)) {
            rx.echoed += 1;
        }
        if rx.sources.len() < 8 && !rx.sources.contains(&from) {
            rx.sources.push(from);
        }
        rx.remote_ssrc.get_or_insert(ssrc);
        rx.packets += 1;
        rx.bytes += payload.len() as u64;
        rx.first.get_or_insert(now);
        // Extended sequence numbers (RFC 3550 A.1, without probation).
        match rx.base_seq {
            None => {
                rx.base_seq = Some(seq);
                rx.max_ext = u32::from(seq);
            }
            Some(_) => {
                let max = (rx.max_ext & 0xffff) as u16;
                let delta = seq.wrapping_sub(max);
                if delta != 0 && delta < 0x8000 {
                    if seq < max {
                        rx.cycles = rx.cycles.wrapping_add(1 << 16);
                    }
                    rx.max_ext = rx.cycles | u32::from(seq);
                }
            }
        }
        // Interarrival jitter in timestamp units (RFC 3550 §6.4.1, A.8).
        if let Some(epoch) = rx.epoch {
            let arrival = (now.duration_since(epoch).as_micros() * 8 / 1000) as i64;
            let transit = arrival - i64::from(ts);
            if let Some(last) = rx.last_transit {
                let d = (transit - last).abs() as f64;
                rx.jitter += (d - rx.jitter) / 16.0;
            }
            rx.last_transit = Some(transit);
        }
        if let Some(codec) = G711::from_payload_type(pt) {
            let l = level_dbov(codec, payload);
            rx.level_sum += 10f64.powf(l / 10.0);
            rx.level_n += 1;
            if l > SILENCE_DBOV {
                rx.audio_packets += 1;
            }
        }
    }

    /// One datagram on the RTCP socket: SR/RR report blocks about our stream.
    pub fn handle_rtcp(&mut self, _now: Instant, _from: SocketAddr, bytes: &[u8]) {
        self.rx.rtcp += 1;
        let mut rest = bytes;
        let mut about_us = None;
        let mut any_report = false;
        while rest.len() >= 8 {
            let count = usize::from(rest[0] & 0x1f);
            let pt = rest[1];
            let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
            let Some(packet) = rest.get(..len) else { break };
            let blocks_at = match pt {
                200 => Some(28),
                201 => Some(8),
                _ => None,
            };
            if let Some(start) = blocks_at {
                any_report = true;
                for i in 0..count {
                    let Some(b) = packet.get(start + 24 * i..start + 24 * (i + 1)) else {
                        break;
                    };
                    let ssrc = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    if ssrc == self.ssrc {
                        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
                        let highest = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                        let first = u32::from(self.seq.wrapping_sub(self.sent_packets as u16));
                        let expected = highest.wrapping_sub(first).wrapping_add(1);
                        about_us = Some(u64::from(expected.saturating_sub(lost)));
                    }
                }
            }
            rest = &rest[len..];
        }
        if let Some(n) = about_us {
            self.rx.reported = Some(self.rx.reported.map_or(n, |r| r.max(n)));
        } else if any_report && self.sent_packets > 50 * 5 {
            // A full report interval of our RTP and still no block for it.
            self.rx.report_without_us = true;
        }
    }

    /// An RTCP sender report with one reception report block when we receive.
    fn sender_report(&self, now: Instant) -> Vec<u8> {
        let rx = &self.rx;
        let blocks = usize::from(rx.remote_ssrc.is_some());
        let words = 6 + 6 * blocks;
        let mut p = Vec::with_capacity(4 * (words + 1));
        p.push(0x80 | blocks as u8);
        p.push(200);
        p.extend_from_slice(&(words as u16).to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ntp_secs = unix.as_secs() + 2_208_988_800;
        let frac = (u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000;
        p.extend_from_slice(&(ntp_secs as u32).to_be_bytes());
        p.extend_from_slice(&(frac as u32).to_be_bytes());
        let rtp_ts = self
            .started
            .map(|s| (now.duration_since(s).as_micros() * 8 / 1000) as u32)
            .unwrap_or(0);
        p.extend_from_slice(&rtp_ts.to_be_bytes());
        p.extend_from_slice(&(self.sent_packets as u32).to_be_bytes());
        p.extend_from_slice(&(self.sent_bytes as u32).to_be_bytes());
        if let Some(remote) = rx.remote_ssrc {
            let lost = self.lost().min(0x7f_ffff) as u32;
            p.extend_from_slice(&remote.to_be_bytes());
            p.push(0);
            p.extend_from_slice(&lost.to_be_bytes()[1..]);
            p.extend_from_slice(&rx.max_ext.to_be_bytes());
            p.extend_from_slice(&(rx.jitter as u32).to_be_bytes());
            p.extend_from_slice(&[0; 8]);
        }
        p
    }

    fn lost(&self) -> u64 {
        let rx = &self.rx;
        let Some(base) = rx.base_seq else { return 0 };
        let expected = u64::from(rx.max_ext.wrapping_sub(u32::from(base))) + 1;
        expected.saturating_sub(rx.packets)
    }

    /// What the media showed so far.
    pub fn stats(&self) -> MediaStats {
        let rx = &self.rx;
        let lost = self.lost();
        let jitter_ms = rx.jitter / 8.0;
        let level =
            (rx.level_n > 0).then(|| 10.0 * (rx.level_sum / rx.level_n as f64).max(1e-10).log10());
        let loss_pct = if rx.packets + lost > 0 {
            100.0 * lost as f64 / (rx.packets + lost) as f64
        } else {
            0.0
        };
        let (r, mos) = if rx.packets > 0 {
            let r = r_factor(jitter_ms, loss_pct);
            (Some(r), Some(mos_of(r)))
        } else {
            (None, None)
        };
        MediaStats {
            sent_packets: self.sent_packets,
            sent_bytes: self.sent_bytes,
            received_packets: rx.packets,
            received_bytes: rx.bytes,
            lost,
            jitter_ms,
            first_packet: match (rx.first, self.started) {
                (Some(f), Some(s)) => Some(f.saturating_duration_since(s)),
                _ => None,
            },
            level_dbov: level,
            audio_ratio: (rx.level_n > 0).then(|| rx.audio_packets as f64 / rx.level_n as f64),
            rtp_from: rx.sources.clone(),
            echoed: rx.echoed,
            rtcp_received: rx.rtcp,
            reported_received: rx.reported,
            report_without_our_stream: rx.report_without_us && rx.reported.is_none(),
            r_factor: r,
            mos,
        }
    }
}

/// ITU-T G.107 E-model, simplified for G.711: R = 93.2 − Id − Ie,eff.
/// The one-way delay is taken as 20 ms packetisation + a jitter buffer of
/// twice the measured jitter + 40 ms of network (not measurable from one
/// side); Id = 0.024·d + 0.11·(d − 177.3) above 177.3 ms; Ie,eff with Ie = 0
/// and Bpl = 25.1 (G.711 with packet loss concealment, G.113 Appendix I).
pub fn r_factor(jitter_ms: f64, loss_pct: f64) -> f64 {
    let d = 20.0 + 2.0 * jitter_ms + 40.0;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = 95.0 * loss_pct / (loss_pct + 25.1);
    (93.2 - id - ie_eff).clamp(0.0, 100.0)
}

/// G.107's R to MOS.
pub fn mos_of(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(now: Instant) -> MediaSession {
        let mut s = MediaSession::new(
            MediaConfig {
                codecs: vec!["ulaw".into()],
                ..MediaConfig::default()
            },
            now,
        );
        let sdp = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
        s.start(now, &Some("127.0.0.1:30000".parse().unwrap()), sdp);
        s
    }

    #[test]
    fn fifty_packets_a_second_and_an_echo_is_recognised() {
        let t0 = Instant::now();
        let mut s = started(t0);
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(1) {
            for (_, p, rtcp) in s.poll_transmit(now) {
                if !rtcp {
                    sent.push(p);
                }
            }
            now = s.poll_timeout().unwrap();
        }
        assert_eq!(sent.len(), 50);
        assert_eq!(sent[0][1] & 0x80, 0x80, "marker on the first packet");
        // The carrier echoes every packet back, 30 ms later.
        for (i, p) in sent.iter().enumerate() {
            let at = t0 + Duration::from_millis(30 + 20 * i as u64);
            s.handle_rtp(at, "127.0.0.1:30000".parse().unwrap(), p);
        }
        let st = s.stats();
        assert_eq!(st.received_packets, 50);
        assert_eq!(st.echoed, 50);
        assert_eq!(st.lost, 0);
        assert!(st.jitter_ms < 1.0, "{}", st.jitter_ms);
        assert!(st.audio_ratio.unwrap() > 0.9);
        assert!(st.mos.unwrap() > 4.2, "{:?}", st.mos);
    }

    #[test]
    fn gaps_count_as_loss_and_silence_is_told_apart() {
        let t0 = Instant::now();
        let mut s = started(t0);
        let silence = [0xffu8; 160];
        for seq in [10u16, 11, 14, 15] {
            let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            p.extend_from_slice(&silence);
            s.handle_rtp(t0, "127.0.0.1:30000".parse().unwrap(), &p);
        }
        let st = s.stats();
        assert_eq!((st.received_packets, st.lost), (4, 2));
        assert_eq!(st.audio_ratio, Some(0.0));
        assert_eq!(st.echoed, 0);
    }

    #[test]
    fn garbage_never_panics() {
        let t0 = Instant::now();
        let mut s = started(t0);
        let from = "127.0.0.1:1".parse().unwrap();
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x80) as u8).collect();
            s.handle_rtp(t0, from, &junk);
            s.handle_rtcp(t0, from, &junk);
        }
    }

    #[test]
    fn the_e_model_falls_with_loss() {
        let clean = mos_of(r_factor(0.0, 0.0));
        assert!((4.3..4.5).contains(&clean), "{clean}");
        assert!(mos_of(r_factor(0.0, 5.0)) < clean);
        assert!(mos_of(r_factor(80.0, 0.0)) < clean);
    }
}
