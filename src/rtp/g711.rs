//! G.711 (ITU-T G.711, 1988): μ-law (PCMU) and A-law (PCMA) companding, and
//! the RMS level of decoded audio in dBov (ITU-T G.100.1).
//!
//! By hand, on purpose: the two laws are a few lines of integer arithmetic each
//! (the segment/mantissa form of the classic Sun reference `g711.c`), and no
//! maintained crate does only this: the audio crates that contain G.711 bring a
//! codec framework or a media stack with them. The tests check every one of
//! the 256 codes of both laws against the decoded values G.711 tabulates at
//! the edges, and that encoding a decoded code gives the code back.
//!
//! Linear samples are 16-bit (`i16`): G.711's 14-bit (μ-law) and 13-bit
//! (A-law) linear ranges shifted left to 16 bits, as RTP stacks do.

/// Samples per second of G.711 (and of its RTP clock, RFC 3551 §4.5.14).
pub const CLOCK_RATE: u32 = 8000;

/// The level reported for digital silence (all samples zero), in dBov; also the
/// floor of every level this module computes.
pub const SILENCE_FLOOR_DBOV: f64 = -100.0;

/// 0 dBov (G.100.1): the RMS of a full-scale square wave of 16-bit samples.
const FULL_SCALE: f64 = 32768.0;

/// μ-law bias added before finding the segment (0x84 = 132, G.711 Table 2a).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law encodes before it clips (32767 - bias, rounded to 8).
const ULAW_CLIP: i32 = 32635;

/// A G.711 law with its static RTP payload type (RFC 3551 Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type: 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type (0 or 8), `None` for any other.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`a=rtpmap:0 PCMU/8000`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Encodes one linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(sample),
            Codec::Pcma => linear_to_alaw(sample),
        }
    }

    /// Decodes one code to a linear sample.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_to_linear(code),
            Codec::Pcma => alaw_to_linear(code),
        }
    }

    /// Encodes `samples` into `out` (appended), one byte per sample.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.extend(samples.iter().map(|&s| self.encode(s)));
    }

    /// The RMS level of a payload of this codec, decoded, in dBov.
    pub fn payload_level_dbov(self, payload: &[u8]) -> f64 {
        let (sum, n) = self.payload_energy(payload);
        level_dbov(sum, n)
    }

    /// Sum of squared decoded samples and the number of samples, so a caller
    /// can accumulate the level of a whole call.
    pub fn payload_energy(self, payload: &[u8]) -> (f64, u64) {
        let sum = payload
            .iter()
            .map(|&c| {
                let s = f64::from(self.decode(c));
                s * s
            })
            .sum();
        (sum, payload.len() as u64)
    }
}

/// μ-law encode (G.711 §2, Table 2a): sign, 3-bit segment, 4-bit mantissa, all
/// bits inverted.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    let pcm = pcm.min(ULAW_CLIP) + ULAW_BIAS;
    // pcm is in 132..=32767, so its top bit is bit 7..=14: segment 0..=7.
    let segment = (31 - (pcm as u32).leading_zeros() - 7) as i32;
    let mantissa = (pcm >> (segment + 3)) & 0x0F;
    !(sign | (segment << 4) as u8 | mantissa as u8)
}

/// μ-law decode: the inverse of [`linear_to_ulaw`]; 0x00 is -32124, 0x80 is
/// +32124, 0xFF and 0x7F are 0.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let segment = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law encode (G.711 §3, Table 1a): 13-bit linear, sign, 3-bit segment, 4-bit
/// mantissa, even bits inverted (XOR 0x55).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // pcm is in 0..=4095: segment 0 covers 0..=31, then one octave each.
    let segment = match pcm {
        0..=31 => 0,
        p => 32 - (p as u32).leading_zeros() as i32 - 5,
    };
    let mantissa = if segment < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> segment) & 0x0F
    };
    ((segment << 4) as u8 | mantissa as u8) ^ mask
}

/// A-law decode: the inverse of [`linear_to_alaw`]; 0xD5 is +8, 0x55 is -8,
/// 0xAA is +32256, 0x2A is -32256.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mantissa = i32::from(a & 0x0F) << 4;
    let segment = (a & 0x70) >> 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        s => (mantissa + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// The RMS level of `n` samples whose squares sum to `sum_squares`, in dBov
/// (G.100.1: 0 dBov is a full-scale square wave, so a full-scale sine is
/// -3.01 dBov). Silence, and `n == 0`, give [`SILENCE_FLOOR_DBOV`].
pub fn level_dbov(sum_squares: f64, n: u64) -> f64 {
    if n == 0 || sum_squares <= 0.0 {
        return SILENCE_FLOOR_DBOV;
    }
    let rms = (sum_squares / n as f64).sqrt();
    (20.0 * (rms / FULL_SCALE).log10()).max(SILENCE_FLOOR_DBOV)
}

/// The RMS level of linear samples, in dBov.
pub fn samples_level_dbov(samples: &[i16]) -> f64 {
    let sum = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    level_dbov(sum, samples.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_g711_ulaw_known_codes() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        // Segment 0, mantissa 14 (code 0xF1 = !0x0E): 14 * 8.
        assert_eq!(ulaw_to_linear(0xF1), 112);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
    }

    #[test]
    fn rtp_g711_alaw_known_codes() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn rtp_g711_every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            // μ-law has two zeros (0x7F is negative zero); it encodes as 0xFF.
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expect,
                "μ-law {code:#04x}"
            );
        }
    }

    #[test]
    fn rtp_g711_decoding_is_monotonic_and_encoding_is_close() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut prev = i16::MIN;
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let d = codec.decode(codec.encode(s));
                assert!(d >= prev, "{codec:?} not monotonic at {s}");
                prev = d;
                // The quantisation error is at most half a step of the top
                // segment (1024 for μ-law, 1024 for A-law in 16-bit units),
                // and about 3% of the magnitude above the first segments.
                let err = (i32::from(d) - i32::from(s)).abs();
                let bound = 48.max(i32::from(s).abs() / 16 + 16).min(1100);
                assert!(err <= bound, "{codec:?} {s} -> {d}");
            }
        }
    }

    #[test]
    fn rtp_g711_levels() {
        assert_eq!(samples_level_dbov(&[0; 160]), SILENCE_FLOOR_DBOV);
        assert_eq!(level_dbov(0.0, 0), SILENCE_FLOOR_DBOV);
        let square = [i16::MAX, i16::MIN].repeat(80);
        assert!(samples_level_dbov(&square).abs() < 0.01);
        let sine: Vec<i16> = (0..8000)
            .map(|n| {
                (32767.0 * (2.0 * std::f64::consts::PI * 1004.0 * n as f64 / 8000.0).sin()) as i16
            })
            .collect();
        assert!((samples_level_dbov(&sine) + 3.01).abs() < 0.05);
        // μ-law silence (0xFF) decodes to exact zeros.
        assert_eq!(
            Codec::Pcmu.payload_level_dbov(&[0xFF; 160]),
            SILENCE_FLOOR_DBOV
        );
        assert_eq!(Codec::Pcma.payload_level_dbov(&[0xD5; 160]).round(), -72.0);
    }

    #[test]
    fn rtp_g711_payload_types() {
        for c in [Codec::Pcmu, Codec::Pcma] {
            assert_eq!(Codec::from_payload_type(c.payload_type()), Some(c));
        }
        assert_eq!(Codec::from_payload_type(18), None);
        assert_eq!(Codec::Pcma.name(), "PCMA");
    }
}
