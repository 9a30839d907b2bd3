//! The statistics of one remote RTP source (one SSRC), as RFC 3550 Appendix A
//! computes them: extended sequence numbers and loss (A.1, A.3), interarrival
//! jitter (A.8), and the report block we send about it (§6.4.1).
//!
//! By hand: this is the receiver half of RTP and the `rtp`/`rtcp` crates have
//! no receiver statistics (webrtc-rs keeps them in its interceptor crate, tied
//! to its async streams).

use std::time::{Duration, Instant};

use rtcp::reception_report::ReceptionReport;

/// A.1: a source is valid after this many packets in sequence.
const MIN_SEQUENTIAL: u32 = 2;
/// A.1: largest forward jump still taken as the same stream.
const MAX_DROPOUT: u16 = 3000;
/// A.1: largest backward jump taken as reordering, not a restart.
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What one packet did to a source's sequence state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Counted: in order, a jump forward within MAX_DROPOUT, or a late packet.
    Counted,
    /// Not counted yet: the source is on probation (A.1).
    Probation,
    /// A large jump, not counted; a second packet in sequence after it restarts
    /// the numbering.
    Jump,
}

/// One remote SSRC's state.
#[derive(Debug, Clone)]
pub struct Source {
    /// The SSRC.
    pub ssrc: u32,
    /// Datagrams from this SSRC (counted or not).
    pub packets: u64,
    /// When its first packet arrived.
    pub first_at: Instant,
    /// When its last packet arrived.
    pub last_at: Instant,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the last packet (A.8), in timestamp units.
    transit: Option<i64>,
    /// Jitter estimate in timestamp units (A.8), kept as a real number.
    jitter: f64,
    /// The middle 32 bits of the NTP time of the last SR from this source,
    /// and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Source {
    /// A source first seen at `now` with sequence number `seq` (A.1's
    /// `init_seq` with probation; call [`update`](Self::update) with the same
    /// packet next).
    pub fn new(ssrc: u32, seq: u16, now: Instant) -> Self {
        let mut s = Source {
            ssrc,
            packets: 0,
            first_at: now,
            last_at: now,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1's `update_seq` for one packet.
    pub fn update(&mut self, seq: u16, now: Instant) -> SeqVerdict {
        self.packets += 1;
        self.last_at = now;
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Counted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two in sequence after a jump: the sender restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Jump;
            }
        }
        // Else a duplicate or reordered packet: counted, max unchanged.
        self.received += 1;
        SeqVerdict::Counted
    }

    /// A.8: updates the jitter with a packet of RTP timestamp `ts` that arrived
    /// `arrival` after the receiver started, at `clock_rate` Hz.
    pub fn update_jitter(&mut self, ts: u32, arrival: Duration, clock_rate: u32) {
        let arrival_units = (arrival.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as i64;
        // Differences of 32-bit timestamps wrap; transit is kept modulo 2^32
        // as a signed offset.
        let transit = i64::from((arrival_units as u32).wrapping_sub(ts) as i32);
        if let Some(prev) = self.transit {
            let d = i64::from((transit - prev) as i32).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Remembers an SR from this source (for LSR/DLSR).
    pub fn note_sr(&mut self, ntp_middle: u32, now: Instant) {
        self.last_sr = Some((ntp_middle, now));
    }

    /// True once out of probation.
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    /// Packets counted by A.1 (duplicates included, probation excluded).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The extended highest sequence number received (cycles | max_seq).
    pub fn extended_max(&self) -> u32 {
        self.cycles | u32::from(self.max_seq)
    }

    /// A.3: packets expected since the first counted one.
    pub fn expected(&self) -> u64 {
        if !self.is_valid() {
            return 0;
        }
        (u64::from(self.cycles) + u64::from(self.max_seq)).saturating_sub(u64::from(self.base_seq))
            + 1
    }

    /// A.3: cumulative packets lost (negative with duplicates).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Jitter in timestamp units.
    pub fn jitter_units(&self) -> f64 {
        self.jitter
    }

    /// Jitter in milliseconds at `clock_rate`.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        self.jitter * 1000.0 / f64::from(clock_rate.max(1))
    }

    /// The report block about this source at `now` (A.3's fraction lost over
    /// the interval since the last block; LSR/DLSR from its last SR), and
    /// starts the next interval.
    pub fn report_block(&mut self, now: Instant) -> ReceptionReport {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        // 24-bit signed cumulative loss, clamped (RFC 3550 §6.4.1).
        let total_lost = (self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32 as u32) & 0xFF_FFFF;
        let (lsr, dlsr) = match self.last_sr {
            Some((middle, at)) => {
                let since = now.saturating_duration_since(at);
                (
                    middle,
                    (since.as_micros() * 65536 / 1_000_000).min(u128::from(u32::MAX)) as u32,
                )
            }
            None => (0, 0),
        };
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost,
            total_lost,
            last_sequence_number: self.extended_max(),
            jitter: self.jitter.min(f64::from(u32::MAX)) as u32,
            last_sender_report: lsr,
            delay: dlsr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut Source, seqs: &[u16], now: Instant) -> Vec<SeqVerdict> {
        seqs.iter().map(|&q| s.update(q, now)).collect()
    }

    #[test]
    fn rtp_source_probation_then_counting() {
        let now = Instant::now();
        let mut s = Source::new(1, 100, now);
        assert_eq!(
            feed(&mut s, &[100, 101, 102], now),
            [
                SeqVerdict::Probation,
                SeqVerdict::Counted,
                SeqVerdict::Counted
            ]
        );
        assert!(s.is_valid());
        assert_eq!((s.expected(), s.received(), s.lost()), (2, 2, 0));
        assert_eq!(s.packets, 3);
    }

    #[test]
    fn rtp_source_loss_and_wrap() {
        let now = Instant::now();
        let mut s = Source::new(1, 65530, now);
        let seqs: Vec<u16> = (0..20u16)
            .map(|i| 65530u16.wrapping_add(i))
            .filter(|q| *q != 65535 && *q != 3)
            .collect();
        feed(&mut s, &seqs, now);
        // Counting starts at 65531; 65535 and 3 lost; highest 13 in cycle 1.
        assert_eq!(s.extended_max(), (1 << 16) | 13);
        assert_eq!(s.expected(), 19);
        assert_eq!(s.lost(), 2);
        let b = s.report_block(now);
        assert_eq!(b.total_lost, 2);
        assert_eq!(b.fraction_lost, (2 * 256 / 19) as u8);
        assert_eq!(b.last_sequence_number, 0x1_000D);
        // Next interval: nothing new, nothing lost.
        assert_eq!(s.report_block(now).fraction_lost, 0);
    }

    #[test]
    fn rtp_source_duplicates_make_loss_negative_and_reordering_is_counted() {
        let now = Instant::now();
        let mut s = Source::new(1, 10, now);
        feed(&mut s, &[10, 11, 12, 12, 12, 14, 13], now);
        assert_eq!(s.extended_max(), 14);
        assert_eq!(s.expected(), 4);
        assert_eq!(s.received(), 6);
        assert_eq!(s.lost(), -2);
        let b = s.report_block(now);
        assert_eq!(b.total_lost, 0xFF_FFFE); // -2 in 24 bits
        assert_eq!(b.fraction_lost, 0);
    }

    #[test]
    fn rtp_source_restart_after_a_big_jump() {
        let now = Instant::now();
        let mut s = Source::new(1, 10, now);
        feed(&mut s, &[10, 11, 12], now);
        assert_eq!(s.update(40_000, now), SeqVerdict::Jump);
        assert_eq!(s.update(40_001, now), SeqVerdict::Counted);
        assert_eq!(s.expected(), 1);
        assert_eq!(s.received(), 1);
    }

    #[test]
    fn rtp_source_jitter_of_steady_and_shaken_arrivals() {
        let now = Instant::now();
        let mut steady = Source::new(1, 0, now);
        let mut shaken = Source::new(2, 0, now);
        for i in 0..500u32 {
            let at = Duration::from_millis(u64::from(i) * 20);
            steady.update_jitter(1000 + i * 160, at, 8000);
            // Every other packet 10 ms late: |D| = 80 units each time.
            let late = if i % 2 == 1 {
                Duration::from_millis(10)
            } else {
                Duration::ZERO
            };
            shaken.update_jitter(i * 160, at + late, 8000);
        }
        assert_eq!(steady.jitter_units(), 0.0);
        assert!((shaken.jitter_units() - 80.0).abs() < 0.5);
        assert!((shaken.jitter_ms(8000) - 10.0).abs() < 0.1);
        // Timestamps that wrap around 2^32 do not disturb it.
        let mut wrap = Source::new(3, 0, now);
        for i in 0..100u32 {
            wrap.update_jitter(
                (u32::MAX - 800).wrapping_add(i * 160),
                Duration::from_millis(u64::from(i) * 20),
                8000,
            );
        }
        assert_eq!(wrap.jitter_units(), 0.0);
    }

    #[test]
    fn rtp_source_lsr_and_dlsr() {
        let now = Instant::now();
        let mut s = Source::new(1, 0, now);
        s.note_sr(0xABCD_0123, now);
        let b = s.report_block(now + Duration::from_millis(1500));
        assert_eq!(b.last_sender_report, 0xABCD_0123);
        assert_eq!(b.delay, 98_304); // 1.5 s in 1/65536 s
    }
}
