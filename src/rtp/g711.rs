//! G.711 μ-law and A-law (ITU-T G.711), the test tone trunkprobe sends, and
//! the level of what comes back. Written here: a few lines of well-known bit
//! arithmetic, and no maintained crate does only this.

const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(v: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|e| v <= *e).unwrap_or(8)
}

/// A linear 16-bit sample to μ-law (the reference algorithm of G.711).
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(8159) + (0x84 >> 2);
    let seg = segment(v, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    ((((seg as i32) << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask) as u8
}

/// μ-law to a linear 16-bit sample.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = i32::from(!byte);
    let mut t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// A linear 16-bit sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut a = (seg as i32) << 4;
    a |= if seg < 2 {
        (v >> 1) & 0x0F
    } else {
        (v >> seg) & 0x0F
    };
    (a ^ mask) as u8
}

/// A-law to a linear 16-bit sample.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = i32::from(byte ^ 0x55);
    let mut t = (a & 0x0F) << 4;
    match (a & 0x70) >> 4 {
        0 => t += 8,
        1 => t += 0x108,
        seg => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// The codec of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    Ulaw,
    Alaw,
}

impl G711 {
    /// The static payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Ulaw => 0,
            G711::Alaw => 8,
        }
    }

    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Ulaw),
            8 => Some(G711::Alaw),
            _ => None,
        }
    }

    pub fn encode(self, s: i16) -> u8 {
        match self {
            G711::Ulaw => ulaw_encode(s),
            G711::Alaw => alaw_encode(s),
        }
    }

    pub fn decode(self, b: u8) -> i16 {
        match self {
            G711::Ulaw => ulaw_decode(b),
            G711::Alaw => alaw_decode(b),
        }
    }
}

/// Samples per 20 ms packet at 8 kHz.
pub const SAMPLES: usize = 160;

/// 20 ms of the test tone starting at sample `n`: 1 kHz at about -10 dBov,
/// with the packet number spread over its low bits so that echoed packets are
/// told apart from each other.
pub fn tone(codec: G711, n: u64) -> [u8; SAMPLES] {
    let mut out = [0u8; SAMPLES];
    for (i, o) in out.iter_mut().enumerate() {
        let t = (n as usize + i) as f64 / 8000.0;
        let s = (2.0 * std::f64::consts::PI * 1000.0 * t).sin() * 0.316 * 32767.0;
        *o = codec.encode(s as i16);
    }
    out
}

/// The RMS level of a decoded payload in dBov (-96 for digital silence).
pub fn level_dbov(codec: G711, payload: &[u8]) -> f64 {
    if payload.is_empty() {
        return -96.0;
    }
    let sum: f64 = payload
        .iter()
        .map(|b| {
            let s = f64::from(codec.decode(*b)) / 32768.0;
            s * s
        })
        .sum();
    let rms = (sum / payload.len() as f64).sqrt();
    if rms <= 0.0 {
        -96.0
    } else {
        (20.0 * rms.log10()).max(-96.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_laws_round_trip_within_their_quantisation() {
        for codec in [G711::Ulaw, G711::Alaw] {
            for s in (-32_000i32..32_000).step_by(97) {
                let back = i32::from(codec.decode(codec.encode(s as i16)));
                let step = (s.abs() / 16).max(16);
                assert!((back - s).abs() <= step, "{codec:?} {s} -> {back}");
            }
        }
        // Known points: μ-law 0xff and A-law 0xd5 are (near) zero.
        assert!(ulaw_decode(0xff).abs() <= 8);
        assert!(alaw_decode(0xd5).abs() <= 8);
    }

    #[test]
    fn the_tone_is_loud_and_silence_is_quiet() {
        for codec in [G711::Ulaw, G711::Alaw] {
            let l = level_dbov(codec, &tone(codec, 0));
            assert!((-14.0..-10.0).contains(&l), "{codec:?} tone at {l} dBov");
            let silence = [codec.encode(0); SAMPLES];
            assert!(level_dbov(codec, &silence) < -60.0);
        }
    }
}
