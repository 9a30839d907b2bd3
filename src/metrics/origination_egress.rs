//! Prometheus series of the prober's own position: the origination URI
//! (Bolna's inbound side, as carriers reach it) and the egress address carriers
//! see this prober at. Part of [`super::Metrics`]; the per-target UDP size ladder (MTU) series
//! live in its compact store. Labels stay bounded like the rest.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use prometheus::{GaugeVec, IntGaugeVec, Registry};

use super::{bounded, gauge_vec as gauge, int_gauge_vec as int_gauge, unix_now};
use crate::checks::origination::OriginationResult;
use crate::outcome::Outcome;

/// At most this many `public_ip` values in `trunkprobe_egress_info` (carriers
/// normally all see one address).
pub const MAX_EGRESS_ADDRESSES: usize = 8;

const ORIGINATION_LABELS: [&str; 3] = ["uri", "transport", "target"];

/// The origination and egress series, registered in the daemon's registry.
pub struct OriginationEgressMetrics {
    origination_up: IntGaugeVec,
    origination_rtt: GaugeVec,
    origination_guide_ip: IntGaugeVec,
    origination_last_run: GaugeVec,
    egress_info: IntGaugeVec,
    /// Origination label sets of the last run (removed when a URI or address goes).
    origination: Mutex<(HashSet<[String; 3]>, HashSet<String>)>,
}

impl OriginationEgressMetrics {
    /// Creates and registers every origination and egress series in `r`.
    pub fn new(r: &Registry) -> OriginationEgressMetrics {
        OriginationEgressMetrics {
            origination_up: int_gauge(
                r,
                "trunkprobe_origination_up",
                "1 if the origination URI's address answered OPTIONS healthily at the last check.",
                &ORIGINATION_LABELS,
            ),
            origination_rtt: gauge(
                r,
                "trunkprobe_origination_rtt_seconds",
                "OPTIONS round trip to the origination URI's address at the last check.",
                &ORIGINATION_LABELS,
            ),
            origination_guide_ip: int_gauge(
                r,
                "trunkprobe_origination_resolves_to_guide_ip",
                "1 if sip.bolna.ai resolves to the setup guide's IP 13.200.45.61 (absent for other hosts).",
                &["uri"],
            ),
            origination_last_run: gauge(
                r,
                "trunkprobe_origination_last_run_timestamp_seconds",
                "Unix time the origination URIs were last checked (absent before the first check).",
                &[],
            ),
            egress_info: int_gauge(
                r,
                "trunkprobe_egress_info",
                "Address carriers saw this prober at (Via received), always 1; behind_nat is true, false or unknown.",
                &["public_ip", "behind_nat"],
            ),
            origination: Mutex::new((HashSet::new(), HashSet::new())),
        }
    }

    /// Sets `trunkprobe_egress_info` from what the targets' last responses said
    /// (called before each scrape is encoded): the distinct Via `received`
    /// addresses, and whether this prober is behind NAT (`None`: unknown).
    pub fn set_egress(&self, public: &[IpAddr], behind_nat: Option<bool>) {
        let nat = match behind_nat {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        self.egress_info.reset();
        if public.is_empty() {
            self.egress_info.with_label_values(&["unknown", nat]).set(1);
        }
        for ip in public.iter().take(MAX_EGRESS_ADDRESSES) {
            self.egress_info
                .with_label_values(&[&ip.to_string(), nat])
                .set(1);
        }
    }

    /// Replaces the origination series with one check's results.
    pub fn record_origination(&self, results: &[OriginationResult]) {
        let mut now: HashSet<[String; 3]> = HashSet::new();
        let mut guide: HashSet<String> = HashSet::new();
        for r in results {
            let uri = bounded(&r.uri);
            if let Some(ok) = r.resolves_to_guide_ip {
                self.origination_guide_ip
                    .with_label_values(&[&uri])
                    .set(ok as i64);
                guide.insert(uri.clone());
            }
            for t in &r.targets {
                let t = &t.result;
                let target = match t.ip {
                    Some(ip) => SocketAddr::new(ip, t.port).to_string(),
                    None => "unresolved".into(),
                };
                let l = [uri.clone(), r.transport.as_str().to_string(), target];
                let v = [l[0].as_str(), l[1].as_str(), l[2].as_str()];
                self.origination_up
                    .with_label_values(&v)
                    .set((t.outcome == Outcome::Ok) as i64);
                match t.rtt {
                    Some(rtt) => self
                        .origination_rtt
                        .with_label_values(&v)
                        .set(rtt.as_secs_f64()),
                    None => {
                        let _ = self.origination_rtt.remove_label_values(&v);
                    }
                }
                now.insert(l);
            }
        }
        let mut prev = lock(&self.origination);
        for gone in prev.0.difference(&now) {
            let v = [gone[0].as_str(), gone[1].as_str(), gone[2].as_str()];
            let _ = self.origination_up.remove_label_values(&v);
            let _ = self.origination_rtt.remove_label_values(&v);
        }
        for gone in prev.1.difference(&guide) {
            let _ = self.origination_guide_ip.remove_label_values(&[gone]);
        }
        *prev = (now, guide);
        self.origination_last_run
            .with_label_values(&[] as &[&str])
            .set(unix_now());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::origination::OriginationTarget;

    use crate::resolve::Resolution;
    use crate::trunk::Transport;
    use std::time::Duration;

    fn origination(uri: &str, ip: &str, outcome: Outcome) -> OriginationResult {
        let ip: IpAddr = ip.parse().unwrap();
        let mut t = crate::outcome::blank_result(Some(ip), 5060, Transport::Udp, outcome);
        t.rtt = (outcome == Outcome::Ok).then_some(Duration::from_millis(3));
        OriginationResult {
            uri: uri.into(),
            host: "sip.bolna.ai".into(),
            port: 5060,
            transport: Transport::Udp,
            dns: Resolution {
                addresses: vec![ip],
                literal: false,
                pinned: false,
                lookup_time: Duration::ZERO,
                ttl: None,
                failure: None,
                srv: vec![],
                naptr: vec![],
            },
            guide_ip: crate::trunk::BOLNA_SIP_IP,
            resolves_to_guide_ip: Some(ip.to_string() == crate::trunk::BOLNA_SIP_IP),
            targets: vec![OriginationTarget {
                result: t,
                carrier_sees: None,
            }],
            ok: outcome == Outcome::Ok,
        }
    }

    #[test]
    fn origination_series_follow_the_last_check() {
        let r = Registry::new();
        let m = OriginationEgressMetrics::new(&r);
        m.record_origination(&[
            origination("sip:sip.bolna.ai:5060", "13.200.45.61", Outcome::Ok),
            origination("sip:other:5060", "127.0.0.2", Outcome::Timeout),
        ]);
        let text = super::super::encode(&r);
        assert!(text.contains("trunkprobe_origination_up{target=\"127.0.0.2:5060\",transport=\"udp\",uri=\"sip:other:5060\"} 0"), "{text}");
        assert!(
            text.contains(
                "trunkprobe_origination_resolves_to_guide_ip{uri=\"sip:sip.bolna.ai:5060\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("trunkprobe_origination_rtt_seconds{target=\"13.200.45.61:5060\""));
        // The second URI is no longer checked: its series go.
        m.record_origination(&[origination(
            "sip:sip.bolna.ai:5060",
            "13.200.45.61",
            Outcome::Ok,
        )]);
        let text = super::super::encode(&r);
        assert!(!text.contains("sip:other:5060"), "{text}");
        assert!(text.contains("trunkprobe_origination_last_run_timestamp_seconds "));
    }
}
