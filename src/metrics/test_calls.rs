//! Prometheus series of `serve`'s scheduled test calls and registration
//! checks. Part of [`super::Metrics`]. Labels are bounded: one series per
//! configured test-call trunk (and per verdict of the closed set, or per
//! direction), one per registration-checked gateway.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::{bounded, gauge_vec as gauge, int_gauge_vec as int_gauge, unix_now};
use crate::checks::call::Verdict;
use crate::outcome::call::{CallEvidence, DirectionStats};
use crate::outcome::credentials::{CredentialsEvidence, CredentialsResult};

const CALL: [&str; 2] = ["trunk_id", "trunk"];
const CALL_VERDICT: [&str; 3] = ["trunk_id", "trunk", "verdict"];
const CALL_DIRECTION: [&str; 3] = ["trunk_id", "trunk", "direction"];
const REG: [&str; 3] = ["trunk_id", "trunk", "gateway"];
const REG_RESULT: [&str; 4] = ["trunk_id", "trunk", "gateway", "result"];

/// Every registration result, as the `result` label spells it.
pub const REGISTRATION_RESULTS: [&str; 8] = [
    "accepted",
    "rejected",
    "no_password",
    "not_challenged",
    "refused",
    "bad_challenge",
    "timeout",
    "network_error",
];

/// The `result` label of a registration check.
pub fn registration_result(r: &CredentialsResult) -> &'static str {
    r.as_str()
}

/// The test-call and registration series.
pub struct TestCallMetrics {
    verdict: IntGaugeVec,
    calls: IntCounterVec,
    setup: GaugeVec,
    packets: IntGaugeVec,
    loss: GaugeVec,
    jitter: GaugeVec,
    mos: GaugeVec,
    level: GaugeVec,
    last_call: GaugeVec,
    reg_result: IntGaugeVec,
    reg_bindings: IntGaugeVec,
    reg_bolna: IntGaugeVec,
    reg_last: GaugeVec,
    /// Label sets written, to forget a trunk that is no longer called.
    calls_seen: Mutex<HashSet<[String; 2]>>,
    regs_seen: Mutex<HashSet<[String; 3]>>,
}

impl TestCallMetrics {
    /// Creates and registers the series in `r`.
    pub fn new(r: &Registry) -> TestCallMetrics {
        let calls = IntCounterVec::new(
            Opts::new(
                "trunkprobe_test_calls_total",
                "Scheduled test calls placed, by verdict.",
            ),
            &CALL_VERDICT,
        )
        .unwrap();
        r.register(Box::new(calls.clone())).unwrap();
        TestCallMetrics {
            verdict: int_gauge(
                r,
                "trunkprobe_test_call_verdict",
                "1 for the verdict of the trunk's last test call, 0 for every other verdict of the closed set.",
                &CALL_VERDICT,
            ),
            calls,
            setup: gauge(
                r,
                "trunkprobe_test_call_setup_seconds",
                "INVITE to the first 18x or 2xx of the last test call (absent when none came).",
                &CALL,
            ),
            packets: int_gauge(
                r,
                "trunkprobe_test_call_rtp_packets",
                "RTP packets of the last test call, by direction (sent, received).",
                &CALL_DIRECTION,
            ),
            loss: gauge(
                r,
                "trunkprobe_test_call_loss_ratio",
                "Packet loss of the last test call (0-1), by direction: received from sequence gaps, sent from the carrier's RTCP (absent without it).",
                &CALL_DIRECTION,
            ),
            jitter: gauge(
                r,
                "trunkprobe_test_call_jitter_seconds",
                "RFC 3550 interarrival jitter of the last test call's received RTP.",
                &CALL_DIRECTION,
            ),
            mos: gauge(
                r,
                "trunkprobe_test_call_mos",
                "ITU-T G.107 MOS estimate of the last test call's received audio (absent without RTP).",
                &CALL,
            ),
            level: gauge(
                r,
                "trunkprobe_test_call_audio_level_dbov",
                "RMS level of the last test call's received audio, dBov (absent without audio).",
                &CALL,
            ),
            last_call: gauge(
                r,
                "trunkprobe_test_call_last_timestamp_seconds",
                "Unix time the trunk's last test call ended.",
                &CALL,
            ),
            reg_result: int_gauge(
                r,
                "trunkprobe_registration_result",
                "1 for the result of the gateway's last REGISTER query (credentials check), 0 for the others.",
                &REG_RESULT,
            ),
            reg_bindings: int_gauge(
                r,
                "trunkprobe_registration_bindings",
                "Bindings the registrar listed at the last REGISTER query (none changed).",
                &REG,
            ),
            reg_bolna: int_gauge(
                r,
                "trunkprobe_registration_bolna_binding",
                "1 if a binding for Bolna's address (13.200.45.61) was listed at the last REGISTER query.",
                &REG,
            ),
            reg_last: gauge(
                r,
                "trunkprobe_registration_last_timestamp_seconds",
                "Unix time of the gateway's last REGISTER query.",
                &REG,
            ),
            calls_seen: Mutex::new(HashSet::new()),
            regs_seen: Mutex::new(HashSet::new()),
        }
    }

    /// Records one finished test call of `trunk_id`/`trunk`.
    pub fn record_call(&self, trunk_id: &str, trunk: &str, verdict: Verdict, call: &CallEvidence) {
        let (id, name) = (bounded(trunk_id), bounded(trunk));
        let l = [id.as_str(), name.as_str()];
        for v in Verdict::ALL {
            self.verdict
                .with_label_values(&[l[0], l[1], v.as_str()])
                .set(i64::from(v == verdict));
        }
        self.calls
            .with_label_values(&[l[0], l[1], verdict.as_str()])
            .inc();
        match call.setup_ms {
            Some(ms) => self.setup.with_label_values(&l).set(ms / 1000.0),
            None => {
                let _ = self.setup.remove_label_values(&l);
            }
        }
        let empty = DirectionStats::default();
        let media = call.media.as_ref();
        for (dir, d) in [
            ("sent", media.map_or(&empty, |m| &m.outbound)),
            ("received", media.map_or(&empty, |m| &m.inbound)),
        ] {
            let dl = [l[0], l[1], dir];
            self.packets.with_label_values(&dl).set(d.packets as i64);
            let ratio = d.lost.map(|lost| {
                let expected = d.packets.max(1) + if dir == "received" { lost } else { 0 };
                (lost as f64 / expected as f64).min(1.0)
            });
            match ratio {
                Some(r) => self.loss.with_label_values(&dl).set(r),
                None => {
                    let _ = self.loss.remove_label_values(&dl);
                }
            }
            match d.jitter_ms {
                Some(j) => self.jitter.with_label_values(&dl).set(j / 1000.0),
                None => {
                    let _ = self.jitter.remove_label_values(&dl);
                }
            }
        }
        match media.and_then(|m| m.mos) {
            Some(v) => self.mos.with_label_values(&l).set(v),
            None => {
                let _ = self.mos.remove_label_values(&l);
            }
        }
        match media.and_then(|m| m.inbound.level_dbov) {
            Some(v) => self.level.with_label_values(&l).set(v),
            None => {
                let _ = self.level.remove_label_values(&l);
            }
        }
        self.last_call.with_label_values(&l).set(unix_now());
        self.calls_seen.lock().unwrap().insert([id, name]);
    }

    /// Records one REGISTER query of `gateway` for `trunk_id`/`trunk`.
    pub fn record_registration(
        &self,
        trunk_id: &str,
        trunk: &str,
        gateway: &str,
        e: &CredentialsEvidence,
    ) {
        let (id, name, gw) = (bounded(trunk_id), bounded(trunk), bounded(gateway));
        let l = [id.as_str(), name.as_str(), gw.as_str()];
        let current = registration_result(&e.result);
        for r in REGISTRATION_RESULTS {
            self.reg_result
                .with_label_values(&[l[0], l[1], l[2], r])
                .set(i64::from(r == current));
        }
        self.reg_bindings
            .with_label_values(&l)
            .set(e.bindings.len() as i64);
        self.reg_bolna
            .with_label_values(&l)
            .set(i64::from(e.bolna_bound));
        self.reg_last.with_label_values(&l).set(unix_now());
        self.regs_seen.lock().unwrap().insert([id, name, gw]);
    }

    /// Drops the series of test-call trunks not in `keep` (trunk ids).
    pub fn retain_calls(&self, keep: &HashSet<String>) {
        let mut seen = self.calls_seen.lock().unwrap();
        seen.retain(|[id, name]| {
            if keep.contains(id) {
                return true;
            }
            let l = [id.as_str(), name.as_str()];
            for v in Verdict::ALL {
                let _ = self.verdict.remove_label_values(&[l[0], l[1], v.as_str()]);
                let _ = self.calls.remove_label_values(&[l[0], l[1], v.as_str()]);
            }
            for g in [&self.setup, &self.mos, &self.level, &self.last_call] {
                let _ = g.remove_label_values(&l);
            }
            for dir in ["sent", "received"] {
                let dl = [l[0], l[1], dir];
                let _ = self.packets.remove_label_values(&dl);
                let _ = self.loss.remove_label_values(&dl);
                let _ = self.jitter.remove_label_values(&dl);
            }
            false
        });
    }

    /// Drops the registration series of trunks not in `keep` (trunk ids).
    pub fn retain_registrations(&self, keep: &HashSet<String>) {
        let mut seen = self.regs_seen.lock().unwrap();
        seen.retain(|[id, name, gw]| {
            if keep.contains(id) {
                return true;
            }
            let l = [id.as_str(), name.as_str(), gw.as_str()];
            for r in REGISTRATION_RESULTS {
                let _ = self.reg_result.remove_label_values(&[l[0], l[1], l[2], r]);
            }
            let _ = self.reg_bindings.remove_label_values(&l);
            let _ = self.reg_bolna.remove_label_values(&l);
            let _ = self.reg_last.remove_label_values(&l);
            false
        });
    }
}
