//! The daemon's `/metrics` text, rendered in-process over a fleet of several trunks
//! and targets (every per-target family, hostile label values, all three
//! `--rtt-histogram` modes), is accepted by `promtool check metrics` and has each
//! family once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::prometheus::promtool_check_metrics;
use trunkprobe::metrics::{Metrics, RttHistogram, TargetLabels};
use trunkprobe::outcome::MtuResult;
use trunkprobe::outcome::{self, Outcome};
use trunkprobe::resolve::Resolution;
use trunkprobe::transport::ladder::{Rung, RungStatus};
use trunkprobe::transport::tls::CertInfo;
use trunkprobe::transport::TlsObservation;
use trunkprobe::trunk::{Transport, Trunk};

fn rung(size: usize, status: RungStatus) -> Rung {
    Rung {
        size,
        bytes: size,
        status,
        status_code: (status == RungStatus::Answered).then_some(200),
        rtt: None,
        retransmissions: 0,
        detail: None,
    }
}

fn fleet(rtt: RttHistogram) -> Metrics {
    let m = Metrics::with_rtt_histogram(Some("eu \"west\" \\ 1"), rtt);
    for t in 0..4 {
        let id = format!("trunk-{t}");
        let mut trunk = Trunk::with_defaults(format!("Trunk \"{t}\" \\ quoted\nname"));
        trunk.id = Some(id.clone());
        let gen = m.track_trunk(&id);
        m.record_trunk(gen, &id, &trunk, &trunkprobe::checks::lint(&trunk));
        for g in 0..3 {
            let transport = [Transport::Udp, Transport::Tcp, Transport::Tls][g % 3];
            let ip = format!("192.0.2.{}", t * 10 + g + 1);
            let l = TargetLabels::new(
                &id,
                trunk.label(),
                &format!("gw{g}.example.com:5060"),
                &format!("{ip}:5060"),
                transport.as_str(),
            );
            let res = Resolution {
                addresses: vec![ip.parse().unwrap()],
                literal: false,
                pinned: false,
                lookup_time: Duration::from_micros(1500),
                ttl: None,
                failure: None,
                srv: vec![],
                naptr: vec![],
            };
            m.record_dns(gen, &l, &res);
            for (i, outcome) in [Outcome::Ok, Outcome::Timeout, Outcome::SipError]
                .into_iter()
                .enumerate()
            {
                let mut r = outcome::blank_result(ip.parse().ok(), 5060, transport, outcome);
                if outcome != Outcome::Timeout {
                    r.rtt = Some(Duration::from_millis(3 + 40 * i as u64));
                    r.status_code = Some(if outcome == Outcome::Ok { 200 } else { 503 });
                }
                if transport == Transport::Tls {
                    r.tls = Some(TlsObservation {
                        version: Some("TLSv1_3".into()),
                        cert: Some(CertInfo {
                            subject: "CN=gw".into(),
                            issuer: "CN=ca".into(),
                            san: vec![],
                            not_after: 1_900_000_000,
                            not_before: 1_700_000_000,
                            self_signed: false,
                        }),
                        identity_via_rfc5922: false,
                    });
                }
                m.record_probe(gen, &l, &r, outcome == Outcome::Ok);
            }
            if transport == Transport::Udp {
                let mut mtu = MtuResult::new(
                    format!("{ip}:5060").parse().unwrap(),
                    vec![
                        rung(600, RungStatus::Answered),
                        rung(1400, RungStatus::Lost),
                    ],
                    Some(1500),
                    None,
                );
                mtu.invite_bytes = Some(1137);
                m.record_mtu(gen, &l, &mtu);
            }
        }
    }
    m
}

/// Family names of `# TYPE` lines, failing on a family declared twice.
fn families(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for name in text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
    {
        assert!(seen.insert(name.to_string()), "{name} declared twice");
    }
    seen
}

#[test]
fn promtool_accepts_a_fleet_in_every_rtt_histogram_mode() {
    for mode in [RttHistogram::Target, RttHistogram::Trunk, RttHistogram::Off] {
        let m = fleet(mode);
        let text = m.render();
        let out = promtool_check_metrics(&text);
        assert!(out.status.success(), "{mode:?}: {out:?}\n{text}");
        let names = families(&text);
        for name in [
            "trunkprobe_options_up",
            "trunkprobe_options_last_rtt_seconds",
            "trunkprobe_tls_cert_not_after_timestamp_seconds",
            "trunkprobe_mtu_first_lost_bytes",
            "trunkprobe_finding",
            "trunkprobe_build_info",
        ] {
            assert!(names.contains(name), "{mode:?}: no {name}\n{text}");
        }
        let histograms = text
            .lines()
            .filter(|l| l.starts_with("trunkprobe_options_rtt_seconds_count{"))
            .count();
        let want = match mode {
            RttHistogram::Target => 12,
            RttHistogram::Trunk => 12, // every trunk here has each transport once
            RttHistogram::Off => 0,
        };
        assert_eq!(histograms, want, "{mode:?}\n{text}");
        if mode == RttHistogram::Trunk {
            assert!(!text.contains("trunkprobe_options_rtt_seconds_count{trunk_id=\"trunk-0\",trunk=\"Trunk \\\"0\\\" \\\\ quotedname\",gateway"), "{text}");
        }
        // Chunked and whole renders agree.
        let mut chunked = String::new();
        m.render_chunks(&mut |c| {
            chunked.push_str(&c);
            true
        });
        assert_eq!(families(&chunked), names);
    }
}
