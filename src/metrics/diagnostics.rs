//! Prometheus series of the daemon's media and path diagnostics: the UDP size
//! ladder (MTU) per target, the origination URI (Bolna's inbound side), and the
//! egress address carriers see this prober at. Part of [`super::Metrics`], which
//! owns trunk generations and removal; labels stay bounded like the rest.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use super::{bounded, unix_now, TargetLabels, TARGET_LABELS};
use crate::checks::mtu::MtuResult;
use crate::checks::path;
use crate::origination::OriginationResult;
use crate::probe::{self, Outcome, TargetResult};

/// At most this many `public_ip` values in `trunkprobe_egress_info` (carriers
/// normally all see one address).
pub const MAX_EGRESS_ADDRESSES: usize = 8;

const ORIGINATION_LABELS: [&str; 3] = ["uri", "transport", "target"];

/// What one target's last final response said about this prober's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EgressSeen {
    local: Option<SocketAddr>,
    received: Option<IpAddr>,
    rport: Option<u16>,
}

/// The series of the diagnostics, registered in the daemon's registry.
pub struct DiagnosticMetrics {
    mtu_largest: IntGaugeVec,
    mtu_first_lost: IntGaugeVec,
    mtu_path_mtu: IntGaugeVec,
    mtu_invite: IntGaugeVec,
    mtu_last_run: GaugeVec,
    origination_up: IntGaugeVec,
    origination_rtt: GaugeVec,
    origination_guide_ip: IntGaugeVec,
    origination_last_run: GaugeVec,
    egress_info: IntGaugeVec,
    /// Origination label sets of the last run (removed when a URI or address goes).
    origination: Mutex<(HashSet<[String; 3]>, HashSet<String>)>,
    egress: Mutex<HashMap<TargetLabels, EgressSeen>>,
}

fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap();
    r.register(Box::new(g.clone())).unwrap();
    g
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).unwrap();
    r.register(Box::new(g.clone())).unwrap();
    g
}

impl DiagnosticMetrics {
    /// Creates and registers every diagnostics series in `r`.
    pub fn new(r: &Registry) -> DiagnosticMetrics {
        DiagnosticMetrics {
            mtu_largest: int_gauge(
                r,
                "trunkprobe_mtu_largest_answered_bytes",
                "Largest OPTIONS of the UDP size ladder the target answered (absent when none).",
                &TARGET_LABELS,
            ),
            mtu_first_lost: int_gauge(
                r,
                "trunkprobe_mtu_first_lost_bytes",
                "Smallest OPTIONS of the UDP size ladder the target did not answer (absent when none was lost).",
                &TARGET_LABELS,
            ),
            mtu_path_mtu: int_gauge(
                r,
                "trunkprobe_mtu_path_mtu_bytes",
                "Path MTU the kernel learned for the target (IP_MTU after the ladder; absent when unknown).",
                &TARGET_LABELS,
            ),
            mtu_invite: int_gauge(
                r,
                "trunkprobe_mtu_invite_estimate_bytes",
                "Estimated size of the INVITE Bolna would send on the target's trunk.",
                &TARGET_LABELS,
            ),
            mtu_last_run: gauge(
                r,
                "trunkprobe_mtu_last_run_timestamp_seconds",
                "Unix time the UDP size ladder last ran against the target.",
                &TARGET_LABELS,
            ),
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
            egress: Mutex::new(HashMap::new()),
        }
    }

    /// Records one ladder run on a target.
    pub fn record_mtu(&self, l: &TargetLabels, r: &MtuResult) {
        let v = l.values();
        let set = |g: &IntGaugeVec, value: Option<i64>| match value {
            Some(x) => g.with_label_values(&v).set(x),
            None => {
                let _ = g.remove_label_values(&v);
            }
        };
        set(&self.mtu_largest, r.largest_answered.map(|b| b as i64));
        set(&self.mtu_first_lost, r.first_lost.map(|b| b as i64));
        set(&self.mtu_path_mtu, r.path_mtu.map(i64::from));
        set(&self.mtu_invite, r.invite_bytes.map(|b| b as i64));
        self.mtu_last_run.with_label_values(&v).set(unix_now());
    }

    /// Keeps what a target's final response said about this prober's address.
    pub fn observe_egress(&self, l: &TargetLabels, r: &TargetResult) {
        if r.response.is_none() {
            return;
        }
        let seen = EgressSeen {
            local: r.local,
            received: r.received,
            rport: r.rport,
        };
        lock(&self.egress).insert(l.clone(), seen);
    }

    /// Removes a target's ladder series and egress evidence.
    pub fn remove_target(&self, l: &TargetLabels) {
        let v = l.values();
        for g in [
            &self.mtu_largest,
            &self.mtu_first_lost,
            &self.mtu_path_mtu,
            &self.mtu_invite,
        ] {
            let _ = g.remove_label_values(&v);
        }
        let _ = self.mtu_last_run.remove_label_values(&v);
        lock(&self.egress).remove(l);
    }

    /// Sets `trunkprobe_egress_info` from the latest response of every target
    /// (called before each scrape is encoded).
    pub fn refresh_egress(&self) {
        let results: Vec<TargetResult> = lock(&self.egress)
            .values()
            .map(|s| {
                let mut t = probe::blank_result(None, 0, crate::trunk::Transport::Udp, Outcome::Ok);
                t.local = s.local;
                t.received = s.received;
                t.rport = s.rport;
                t
            })
            .collect();
        let e = path::egress(&results);
        let nat = match e.behind_nat {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        self.egress_info.reset();
        if e.public_addresses.is_empty() {
            self.egress_info.with_label_values(&["unknown", nat]).set(1);
        }
        for ip in e.public_addresses.iter().take(MAX_EGRESS_ADDRESSES) {
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
    use crate::origination::OriginationTarget;
    use crate::resolve::Resolution;
    use crate::trunk::Transport;
    use std::time::Duration;

    fn origination(uri: &str, ip: &str, outcome: Outcome) -> OriginationResult {
        let ip: IpAddr = ip.parse().unwrap();
        let mut t = probe::blank_result(Some(ip), 5060, Transport::Udp, outcome);
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
        let m = DiagnosticMetrics::new(&r);
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

    #[test]
    fn egress_is_unknown_until_a_carrier_reports_it() {
        let r = Registry::new();
        let m = DiagnosticMetrics::new(&r);
        m.refresh_egress();
        assert!(super::super::encode(&r)
            .contains("trunkprobe_egress_info{behind_nat=\"unknown\",public_ip=\"unknown\"} 1"));
        let l = TargetLabels::new("t", "t", "gw:5060", "192.0.2.1:5060", "udp");
        let mut t = probe::blank_result(None, 5060, crate::trunk::Transport::Udp, Outcome::Ok);
        t.response = Some(crate::sip::message::parse_response(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bK1;received=203.0.113.7;rport=61000\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap());
        t.local = Some("10.0.0.5:40000".parse().unwrap());
        t.received = Some("203.0.113.7".parse().unwrap());
        t.rport = Some(61000);
        m.observe_egress(&l, &t);
        m.refresh_egress();
        let text = super::super::encode(&r);
        assert!(
            text.contains(
                "trunkprobe_egress_info{behind_nat=\"true\",public_ip=\"203.0.113.7\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("public_ip=\"unknown\""), "{text}");
        m.remove_target(&l);
        m.refresh_egress();
        assert!(super::super::encode(&r).contains("public_ip=\"unknown\""));
    }
}
