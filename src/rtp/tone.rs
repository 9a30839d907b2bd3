//! The test signal: a 1004 Hz sine at -10 dBm0, one 20 ms frame (160 samples)
//! per RTP packet, with a 32-bit marker in every frame so an echoed stream is
//! recognised as ours, frame by frame.
//!
//! 1004 Hz, not 1000 Hz, as digital test tones customarily are: 1000 Hz is
//! 8000/8, so a 1 kHz sine hits the same eight codes forever, which exercises
//! almost nothing of a path and makes every frame identical.
//!
//! The marker: the least significant bit of the first 32 codes of a frame
//! carries `tag << 16 | frame index` (most significant bit first), where the
//! tag is 16 bits of our SSRC. One LSB is one quantisation step: the tone's
//! level changes by a few hundredths of a dB. A frame is a pure function of
//! (codec, tag, index), so the receiver checks an echo by rebuilding the frame
//! the marker names and comparing all 160 bytes: no set of sent fingerprints
//! is shared between sender and receiver, and a payload that merely carries a
//! plausible marker does not count. A path that transcodes (PCMU ↔ PCMA) or
//! changes the level destroys the match: such an echo is not bit-exact and is
//! not claimed as ours.

use std::time::{Duration, Instant};

use super::g711::Codec;

/// Samples in one 20 ms frame at 8 kHz.
pub const SAMPLES_PER_FRAME: usize = 160;
/// The length of one frame, and the packet interval (50 packets/s).
pub const FRAME: Duration = Duration::from_millis(20);
/// The test tone's frequency in Hz.
pub const TONE_HZ: f64 = 1004.0;
/// The test tone's level in dBm0.
pub const TONE_DBM0: f64 = -10.0;
/// The level of a full-scale sine in dBm0 for both G.711 laws (G.711 §2, §3).
// 3.14 dB is G.711's figure, not an approximation of π.
#[allow(clippy::approx_constant)]
const FULL_SCALE_SINE_DBM0: f64 = 3.14;
/// Codes at the start of a frame whose LSB carries the marker.
const MARKER_BITS: usize = 32;

/// The 16-bit tag of our stream, derived from our SSRC.
pub fn tag_of(ssrc: u32) -> u16 {
    (ssrc >> 16) as u16 ^ ssrc as u16
}

/// The sine's peak amplitude in 16-bit units (≈ 7220 for -10 dBm0).
pub fn tone_amplitude() -> f64 {
    32768.0 * 10f64.powf((TONE_DBM0 - FULL_SCALE_SINE_DBM0) / 20.0)
}

/// The encoded test frame number `index` of the stream tagged `tag`: the sine
/// continues in phase from frame to frame (sample `index * 160 + n`), then the
/// marker is written into the LSBs of the first 32 codes.
pub fn frame(codec: Codec, tag: u16, index: u64) -> Vec<u8> {
    let codes = encoded_period(codec);
    // The phase of sample k is 2π·f·k/8000; 1004/8000 = 251/2000, so only
    // k·251 mod 2000 matters: an index into the one period of the table.
    let first = (index % 2000) * SAMPLES_PER_FRAME as u64;
    let mut out = Vec::with_capacity(SAMPLES_PER_FRAME);
    for n in 0..SAMPLES_PER_FRAME as u64 {
        let k = ((first + n) * 251 % 2000) as usize;
        out.push(codes[k]);
    }
    let marker = marker(tag, index);
    for (i, code) in out.iter_mut().take(MARKER_BITS).enumerate() {
        let bit = ((marker >> (MARKER_BITS - 1 - i)) & 1) as u8;
        *code = (*code & !1) | bit;
    }
    out
}

/// [`sine_period`] encoded with `codec`, once per codec: a frame is then 160
/// lookups, and G.711 encoding per sample was most of what a frame cost.
fn encoded_period(codec: Codec) -> &'static [u8; 2000] {
    static PCMU: std::sync::OnceLock<[u8; 2000]> = std::sync::OnceLock::new();
    static PCMA: std::sync::OnceLock<[u8; 2000]> = std::sync::OnceLock::new();
    let cell = match codec {
        Codec::Pcmu => &PCMU,
        Codec::Pcma => &PCMA,
    };
    cell.get_or_init(|| {
        let sine = sine_period();
        std::array::from_fn(|k| codec.encode(sine[k]))
    })
}

/// The tone's 2000 phases (sample k of the period: `amplitude · sin(2πk/2000)`,
/// rounded), computed once: a call sends a frame and rebuilds one for each echo
/// checked 50 times a second, and `sin` per sample was a tenth of a call's CPU.
fn sine_period() -> &'static [i16; 2000] {
    static SINE: std::sync::OnceLock<[i16; 2000]> = std::sync::OnceLock::new();
    SINE.get_or_init(|| {
        let amplitude = tone_amplitude();
        std::array::from_fn(|k| {
            (amplitude * (2.0 * std::f64::consts::PI * k as f64 / 2000.0).sin()).round() as i16
        })
    })
}

/// The 32-bit marker of frame `index` of the stream tagged `tag`.
pub fn marker(tag: u16, index: u64) -> u32 {
    u32::from(tag) << 16 | (index as u32 & 0xFFFF)
}

/// The marker carried by a payload's first 32 codes, if it has that many.
pub fn read_marker(payload: &[u8]) -> Option<u32> {
    let bits = payload.get(..MARKER_BITS)?;
    Some(bits.iter().fold(0u32, |m, c| m << 1 | u32::from(c & 1)))
}

/// A 64-bit FNV-1a hash of a payload: a fingerprint for logs and tests.
pub fn fingerprint(payload: &[u8]) -> u64 {
    payload.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the receiver needs to recognise our frames coming back: the codec
/// and tag our sender uses, and when its frame 0 was due (frame `i` is due at
/// `start + i × 20 ms`), to tell how long an echo took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReference {
    /// The codec our frames are encoded with.
    pub codec: Codec,
    /// The tag in our markers ([`tag_of`] our SSRC).
    pub tag: u16,
    /// When our frame 0 was due.
    pub start: Instant,
}

impl EchoReference {
    /// If `payload` is bit for bit one of our frames, the frame's index (the
    /// one nearest to what `now` suggests, the marker keeping 16 bits) and how
    /// long after its due time it arrived.
    pub fn check(&self, now: Instant, payload: &[u8]) -> Option<(u64, Duration)> {
        if payload.len() != SAMPLES_PER_FRAME {
            return None;
        }
        let m = read_marker(payload)?;
        if (m >> 16) as u16 != self.tag {
            return None;
        }
        let low = u64::from(m & 0xFFFF);
        // The latest frame due by `now`; an echo is of a frame at or before it.
        let latest =
            (now.saturating_duration_since(self.start).as_micros() / FRAME.as_micros()) as u64;
        let base = latest & !0xFFFF;
        let index = if base + low <= latest {
            base + low
        } else {
            base.checked_sub(0x1_0000)? + low
        };
        if frame(self.codec, self.tag, index) != payload {
            return None;
        }
        let due = self.start + FRAME * index as u32;
        Some((index, now.saturating_duration_since(due)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::g711::samples_level_dbov;

    #[test]
    fn rtp_tone_level_is_minus_10_dbm0() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let decoded: Vec<i16> = (0..50)
                .flat_map(|i| frame(codec, 0x1234, i))
                .map(|c| codec.decode(c))
                .collect();
            // -10 dBm0 = -10 - 3.14 - 3.01 dBov.
            let level = samples_level_dbov(&decoded);
            assert!((level + 16.15).abs() < 0.3, "{codec:?}: {level}");
        }
    }

    #[test]
    fn rtp_tone_frames_from_the_table_are_the_sine_computed_per_sample() {
        // The frame as it was built before the table, sample by sample.
        let direct = |codec: Codec, tag: u16, index: u64| {
            let first = (index % 2000) * SAMPLES_PER_FRAME as u64;
            let mut out: Vec<u8> = (0..SAMPLES_PER_FRAME as u64)
                .map(|n| {
                    let k = ((first + n) * 251 % 2000) as f64;
                    let x = tone_amplitude() * (2.0 * std::f64::consts::PI * k / 2000.0).sin();
                    codec.encode(x.round() as i16)
                })
                .collect();
            for (i, code) in out.iter_mut().take(MARKER_BITS).enumerate() {
                *code = (*code & !1) | ((marker(tag, index) >> (MARKER_BITS - 1 - i)) & 1) as u8;
            }
            out
        };
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for index in [
                0,
                1,
                12,
                13,
                24,
                25,
                1999,
                2000,
                0x1_0005,
                u64::from(u32::MAX) + 7,
            ] {
                assert_eq!(frame(codec, 0xBEEF, index), direct(codec, 0xBEEF, index));
            }
        }
    }

    #[test]
    fn rtp_tone_marker_round_trips_and_frames_differ() {
        let a = frame(Codec::Pcmu, 0xBEEF, 7);
        assert_eq!(a.len(), SAMPLES_PER_FRAME);
        assert_eq!(read_marker(&a), Some(0xBEEF_0007));
        let b = frame(Codec::Pcmu, 0xBEEF, 8);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        // Deterministic: the same frame twice.
        assert_eq!(a, frame(Codec::Pcmu, 0xBEEF, 7));
        assert_eq!(read_marker(&a[..31]), None);
    }

    #[test]
    fn rtp_tone_echo_reference_recognises_our_frames_only() {
        let start = Instant::now();
        let reference = EchoReference {
            codec: Codec::Pcma,
            tag: tag_of(0xDEAD_BEEF),
            start,
        };
        let sent = frame(Codec::Pcma, reference.tag, 100);
        let now = start + FRAME * 100 + Duration::from_millis(130);
        let (index, delay) = reference.check(now, &sent).unwrap();
        assert_eq!(index, 100);
        assert_eq!(delay, Duration::from_millis(130));
        // Another tag, another codec, one flipped bit: not ours.
        assert_eq!(reference.check(now, &frame(Codec::Pcma, 1, 100)), None);
        assert_eq!(
            reference.check(now, &frame(Codec::Pcmu, reference.tag, 100)),
            None
        );
        let mut bent = sent.clone();
        bent[100] ^= 0x10;
        assert_eq!(reference.check(now, &bent), None);
        assert_eq!(reference.check(now, &sent[..80]), None);
    }

    #[test]
    fn rtp_tone_echo_index_unwraps_past_16_bits() {
        let start = Instant::now();
        let reference = EchoReference {
            codec: Codec::Pcmu,
            tag: 9,
            start,
        };
        let index = 0x1_0000 + 5;
        let sent = frame(Codec::Pcmu, 9, index);
        let now = start + FRAME * (index as u32 + 3);
        assert_eq!(reference.check(now, &sent).unwrap().0, index);
        // Frame 0xFFFE echoed just after the wrap of the frame counter.
        let old = frame(Codec::Pcmu, 9, 0xFFFE);
        let now = start + FRAME * 0x1_0001;
        assert_eq!(reference.check(now, &old).unwrap().0, 0xFFFE);
    }
}
