//! A simplified ITU-T G.107 E-model: the R-factor and MOS of a G.711 call from
//! its one-way delay, jitter and packet loss.
//!
//! `R = Ro − Is − Id − Ie,eff + A`, with every G.107 default (Table 3) except
//! the three measured inputs, so `Ro − Is = 93.2` and `A = 0`:
//!
//! - **Delay**, `Id = Idd(Ta)` (G.107 §7.2, the "too-long delay" term):
//!   `Idd = 0` for `Ta ≤ 100 ms`, else with `X = log2(Ta / 100)`,
//!   `Idd = 25 · ((1 + X⁶)^(1/6) − 3·(1 + (X/3)⁶)^(1/6) + 2)`.
//!   The echo terms `Idte` and `Idle` are taken as 0: the far end is a carrier
//!   and phone network whose echo cancellers are assumed to work (a prober
//!   cannot measure TELR).
//! - **Ta**, the mouth-to-ear delay: the measured one-way network delay, plus
//!   one 20 ms frame of packetisation, plus a jitter buffer of twice the
//!   measured interarrival jitter (a buffer of 2·J absorbs nearly all of a
//!   jitter whose mean deviation is J).
//! - **Loss**, `Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)`
//!   (G.107 §7.5) with G.711's `Ie = 0` and, for random loss, `BurstR = 1`.
//!   `Bpl = 25.1`: G.711 with packet loss concealment (G.113 Appendix I, the
//!   G.711 Appendix I PLC), since every SIP phone, SBC and media gateway we
//!   meet conceals losses; without PLC G.113 gives 4.3, which scores the same
//!   loss far worse (1 % loss: R 89.6 with PLC, 75.3 without).
//! - **MOS** from R (G.107 Annex B): 1 below R = 0, 4.5 above R = 100, and
//!   `1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶` between.
//!
//! With no impairment `Ta = 20 ms`, `R = 93.2` and `MOS ≈ 4.41`.

/// `Ro − Is` with all G.107 defaults (the R of a perfect G.711 path).
pub const R_DEFAULT: f64 = 93.2;
/// Packet-loss robustness of G.711 with PLC (G.113 Appendix I).
pub const BPL_G711_PLC: f64 = 25.1;
/// Packet-loss robustness of G.711 without PLC, for comparison (G.113 Appendix I).
pub const BPL_G711_NO_PLC: f64 = 4.3;
/// Equipment impairment of G.711.
pub const IE_G711: f64 = 0.0;
/// Packetisation delay added to the network delay: one 20 ms frame.
pub const PACKETISATION_MS: f64 = 20.0;

/// The measured impairments of one direction of a call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairments {
    /// One-way network delay in ms (e.g. half the RTCP round trip).
    pub one_way_delay_ms: f64,
    /// Interarrival jitter in ms (RFC 3550 §6.4.1).
    pub jitter_ms: f64,
    /// Packets lost, in percent (0–100).
    pub loss_percent: f64,
}

/// An E-model result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The transmission rating R (0–100 after clamping).
    pub r: f64,
    /// The estimated MOS-CQE (1.0–4.5).
    pub mos: f64,
    /// The mouth-to-ear delay Ta used, in ms.
    pub mouth_to_ear_ms: f64,
}

/// The mouth-to-ear delay Ta (ms): network delay, one frame, a 2·jitter buffer.
pub fn mouth_to_ear_ms(i: &Impairments) -> f64 {
    clean(i.one_way_delay_ms) + PACKETISATION_MS + 2.0 * clean(i.jitter_ms)
}

/// G.107's Idd for a mouth-to-ear delay `ta_ms`.
pub fn idd(ta_ms: f64) -> f64 {
    if ta_ms <= 100.0 {
        return 0.0;
    }
    let x = (ta_ms / 100.0).log2();
    25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
        + 2.0)
}

/// G.107's Ie,eff for G.711 with PLC at `loss_percent` random loss.
pub fn ie_eff(loss_percent: f64) -> f64 {
    let ppl = clean(loss_percent).min(100.0);
    IE_G711 + (95.0 - IE_G711) * ppl / (ppl + BPL_G711_PLC)
}

/// R-factor and MOS for `i` (see the module doc for the formula).
pub fn score(i: &Impairments) -> Score {
    let ta = mouth_to_ear_ms(i);
    let r = (R_DEFAULT - idd(ta) - ie_eff(i.loss_percent)).clamp(0.0, 100.0);
    Score {
        r,
        mos: mos_from_r(r),
        mouth_to_ear_ms: ta,
    }
}

/// G.107 Annex B: MOS-CQE from R.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// Negative and NaN inputs count as 0.
fn clean(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(delay: f64, jitter: f64, loss: f64) -> Score {
        score(&Impairments {
            one_way_delay_ms: delay,
            jitter_ms: jitter,
            loss_percent: loss,
        })
    }

    #[test]
    fn rtp_emodel_no_impairment_is_93_2_and_4_41() {
        let s = at(0.0, 0.0, 0.0);
        assert!((s.r - 93.2).abs() < 1e-9);
        assert!((s.mos - 4.41).abs() < 0.005, "{}", s.mos);
        assert_eq!(s.mouth_to_ear_ms, 20.0);
    }

    #[test]
    fn rtp_emodel_known_points() {
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        assert!((mos_from_r(50.0) - 2.58).abs() < 0.01);
        assert!((mos_from_r(70.0) - 3.60).abs() < 0.01);
        assert!((mos_from_r(80.0) - 4.02).abs() < 0.01);
        // G.107 Idd: 0 up to 100 ms; at 200 ms X = 1.
        assert_eq!(idd(100.0), 0.0);
        let x1 = 25.0 * (2f64.powf(1.0 / 6.0) - 3.0 * (1.0 + 1.0 / 729.0f64).powf(1.0 / 6.0) + 2.0);
        assert!((idd(200.0) - x1).abs() < 1e-9);
        assert!((idd(400.0) - 24.07).abs() < 0.01, "{}", idd(400.0));
        // 1 % random loss with PLC: Ie,eff = 95/26.1.
        assert!((ie_eff(1.0) - 95.0 / 26.1).abs() < 1e-9);
        assert!((at(0.0, 0.0, 1.0).r - 89.56).abs() < 0.01);
        // All lost: R = 93.2 - 95 · 100/125.1.
        assert!((at(0.0, 0.0, 100.0).r - (93.2 - 9500.0 / 125.1)).abs() < 1e-9);
    }

    #[test]
    fn rtp_emodel_mos_falls_with_loss_and_delay() {
        let mut prev = at(0.0, 0.0, 0.0).mos;
        for loss in 1..=50 {
            let m = at(0.0, 0.0, f64::from(loss)).mos;
            assert!(m < prev, "loss {loss}%");
            prev = m;
        }
        let mut prev = at(0.0, 0.0, 0.0).mos;
        for delay in (0..=800).step_by(10) {
            let m = at(f64::from(delay), 0.0, 0.0).mos;
            assert!(m <= prev, "delay {delay} ms");
            if delay > 80 {
                assert!(m < prev, "delay {delay} ms");
            }
            prev = m;
        }
        // Jitter counts twice, through the buffer.
        assert_eq!(at(0.0, 60.0, 0.0), at(120.0, 0.0, 0.0));
        assert!(at(150.0, 0.0, 0.0).mos > at(150.0, 30.0, 0.0).mos);
    }

    #[test]
    fn rtp_emodel_garbage_inputs_stay_in_range() {
        for s in [
            at(f64::NAN, f64::INFINITY, -3.0),
            at(-1.0, -1.0, 1e9),
            at(1e12, 1e12, 100.0),
        ] {
            assert!((0.0..=100.0).contains(&s.r));
            assert!((1.0..=4.5).contains(&s.mos));
        }
    }
}
