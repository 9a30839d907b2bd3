//! Issue 4 in `trunkprobe serve`: media, ip_identifiers and MTU findings as
//! `trunkprobe_finding` series that appear and disappear with the evidence (media
//! also from capability SDP on port 0, from SIPp and Kamailio), the UDP size
//! ladder's metrics, and the origination URI check, all against real SIPp and
//! Kamailio peers (and a silent port) on loopback. Never any traffic off loopback:
//! every daemon here runs with a loopback `--origination` or `--no-origination`.

mod common;

use std::net::SocketAddr;

use serde_json::{json, Value};

use common::kamailio::capability_sdp;
use common::serve::{label, sample, write_trunks, Daemon};
use common::{closed_udp_port, silent_udp, Kamailio, KamailioOpts, Sipp, SippTransport, TrunkJson};

/// Waits until `/metrics` satisfies `cond` (an empty text while it does not
/// answer 200) and returns that text.
fn wait_metrics(d: &mut Daemon, what: &str, mut cond: impl FnMut(&str) -> bool) -> String {
    let mut last = String::new();
    d.wait_for(what, |d: &Daemon| {
        last = match d.get("/metrics") {
            Some((200, body)) => body,
            _ => String::new(),
        };
        cond(&last)
    });
    last
}

fn finding(m: &str, trunk_id: &str, check: &str) -> Option<f64> {
    sample(
        m,
        "trunkprobe_finding",
        &[("trunk_id", trunk_id), ("check", check)],
    )
}

#[test]
fn media_and_ip_identifier_findings_follow_the_evidence() {
    // A carrier offering only G.729, then changing its SDP to PCMU/PCMA on the same port.
    let mut g729 = Sipp::uas_udp("options_200_sdp_g729.xml");
    let gw = g729.addr();
    let silent = silent_udp();
    let dir = tempfile::tempdir().unwrap();
    // UDP trunks probed every second that offer PCMU and PCMA.
    let carrier = TrunkJson::probed("carrier")
        .gateway_at(gw)
        .g711_only()
        .build();
    let silent_trunk = TrunkJson::probed("silent")
        .gateway_at(silent.addr())
        .g711_only()
        .build();
    let outside = TrunkJson::probed("outside").gateway_at(gw).g711_only();
    let file = write_trunks(
        dir.path(),
        &[
            carrier.clone(),
            silent_trunk.clone(),
            outside.clone().ip_identifiers(&["10.0.0.0/8"]).build(),
        ],
    );
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--no-origination",
        "--mtu-interval",
        "0",
    ]);
    let m = wait_metrics(
        &mut d,
        "media_codec_mismatch and gateway_outside_ip_identifiers",
        |m| {
            finding(m, "carrier", "media_codec_mismatch") == Some(1.0)
                && finding(m, "outside", "gateway_outside_ip_identifiers") == Some(1.0)
                && sample(
                    m,
                    "trunkprobe_options_probes_total",
                    &[("trunk_id", "silent"), ("outcome", "timeout")],
                )
                .is_some_and(|n| n >= 1.0)
        },
    );
    assert_eq!(
        sample(
            &m,
            "trunkprobe_finding",
            &[("check", "media_codec_mismatch"), ("severity", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        finding(&m, "carrier", "gateway_outside_ip_identifiers"),
        None
    );
    // A silent carrier sent no SDP: nothing is claimed about its media.
    assert!(
        !m.lines().any(|l| l.starts_with("trunkprobe_finding{")
            && l.contains("trunk_id=\"silent\"")
            && (l.contains("media_") || l.contains("sdes_"))),
        "{m}"
    );
    // No MTU series with --mtu-interval 0.
    assert!(
        !m.contains("trunkprobe_mtu_last_run_timestamp_seconds{"),
        "{m}"
    );

    // While the carrier is down the finding holds (the last reply still says G.729).
    g729.stop();
    wait_metrics(&mut d, "the carrier times out", |m| {
        sample(
            m,
            "trunkprobe_options_probes_total",
            &[("trunk_id", "carrier"), ("outcome", "refused")],
        )
        .or_else(|| {
            sample(
                m,
                "trunkprobe_options_probes_total",
                &[("trunk_id", "carrier"), ("outcome", "timeout")],
            )
        })
        .is_some_and(|n| n >= 2.0)
    });
    assert_eq!(
        finding(&d.metrics(), "carrier", "media_codec_mismatch"),
        Some(1.0)
    );

    // The carrier comes back with PCMU/PCMA: the finding disappears.
    let _pcmu = Sipp::start_at(
        "options_200_sdp.xml",
        SippTransport::Udp,
        Some(gw.port()),
        &[],
    );
    wait_metrics(&mut d, "media_codec_mismatch gone", |m| {
        !m.is_empty() && finding(m, "carrier", "media_codec_mismatch").is_none()
    });

    // The trunk's ip_identifiers are fixed (file re-read on SIGHUP): that finding goes too.
    write_trunks(
        dir.path(),
        &[
            carrier,
            silent_trunk,
            outside.ip_identifiers(&["127.0.0.0/8"]).build(),
        ],
    );
    d.signal(libc::SIGHUP);
    // The finding goes at the reload; the trunk is up once its target answers
    // again (it was down while the carrier was, and the carrier's first good
    // reply need not come before this trunk's next probe).
    wait_metrics(
        &mut d,
        "gateway_outside_ip_identifiers gone and the trunk up",
        |m| {
            !m.is_empty()
                && finding(m, "outside", "gateway_outside_ip_identifiers").is_none()
                && sample(m, "trunkprobe_options_up", &[("trunk_id", "outside")]) == Some(1.0)
        },
    );
}

/// The media check ids, as `trunkprobe_finding`'s `check` label names them.
const MEDIA_CHECKS: [&str; 8] = [
    "media_not_advertised",
    "media_codec_mismatch",
    "media_carrier_alaw_only",
    "sdes_carrier_plain_rtp",
    "sdes_carrier_plain_rtp_optimistic",
    "sdes_carrier_srtp_only",
    "sdes_no_supported_suite",
    "sdes_crypto_suite_unsupported",
];

/// The media findings of `trunk_id` in a metrics text: sorted (check, severity).
fn media_findings(m: &str, trunk_id: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = m
        .lines()
        .filter(|l| l.starts_with("trunkprobe_finding{"))
        .filter(|l| label(l, "trunk_id") == Some(trunk_id))
        .filter_map(|l| Some((label(l, "check")?, label(l, "severity")?)))
        .filter(|(c, _)| MEDIA_CHECKS.contains(c))
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect();
    out.sort();
    out
}

/// A trunk against a carrier: (trunk id, carrier, trunk fields, the media
/// findings it must get as (check, severity)).
type Case = (String, SocketAddr, Value, Vec<(&'static str, &'static str)>);

#[test]
fn port_zero_capability_sdp_from_sipp_and_kamailio() {
    // Carriers advertising capabilities on port 0: plain RTP, SRTP only, G.729
    // only (Kamailio's also SRTP only).
    let sipp = [
        Sipp::uas_udp("options_200_sdp_port0_plain.xml"),
        Sipp::uas_udp("options_200_sdp_port0_savp.xml"),
        Sipp::uas_udp("options_200_sdp_port0_g729.xml"),
    ];
    let kam = [
        Kamailio::start(KamailioOpts::with_sdp(capability_sdp::PLAIN)),
        Kamailio::start(KamailioOpts::with_sdp(capability_sdp::SRTP_ONLY)),
        Kamailio::start(KamailioOpts::with_sdp(capability_sdp::G729_SRTP_ONLY)),
    ];
    let sdes = json!({"media_encryption": "sdes"});
    let optimistic = json!({"media_encryption": "sdes", "media_encryption_optimistic": true});
    let no = json!({});
    let mut cases: Vec<Case> = Vec::new();
    for (peer, [plain, srtp, g729], g729_findings) in [
        (
            "sipp",
            [0, 1, 2].map(|i| sipp[i].addr()),
            vec![("media_codec_mismatch", "error")],
        ),
        (
            "kam",
            [0, 1, 2].map(|i| kam[i].udp_addr()),
            vec![
                ("media_codec_mismatch", "error"),
                ("sdes_carrier_srtp_only", "error"),
            ],
        ),
    ] {
        let id = |s: &str| format!("{peer}-{s}");
        cases.extend([
            (id("plain-no"), plain, no.clone(), vec![]),
            (
                id("plain-sdes"),
                plain,
                sdes.clone(),
                vec![("sdes_carrier_plain_rtp", "error")],
            ),
            (
                id("plain-sdes-optimistic"),
                plain,
                optimistic.clone(),
                vec![("sdes_carrier_plain_rtp_optimistic", "warning")],
            ),
            (
                id("srtp-no"),
                srtp,
                no.clone(),
                vec![("sdes_carrier_srtp_only", "error")],
            ),
            (id("srtp-sdes"), srtp, sdes.clone(), vec![]),
            (id("g729-no"), g729, no.clone(), g729_findings),
        ]);
    }
    let trunks: Vec<Value> = cases
        .iter()
        .map(|(id, gw, extra, _)| {
            TrunkJson::probed(id)
                .gateway_at(*gw)
                .g711_only()
                .merge(extra)
                .build()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &trunks);
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--no-origination",
        "--mtu-interval",
        "0",
    ]);
    // Two answered probes per trunk: the first reply's findings are published
    // before the second probe is counted.
    let m = wait_metrics(&mut d, "two answered probes of every trunk", |m| {
        cases.iter().all(|(id, ..)| {
            sample(
                m,
                "trunkprobe_options_probes_total",
                &[("trunk_id", id), ("outcome", "ok")],
            )
            .is_some_and(|n| n >= 2.0)
        })
    });
    let logs = || {
        let mut l: Vec<String> = sipp.iter().map(Sipp::logs).collect();
        l.extend(kam.iter().map(Kamailio::logs));
        l.join("\n")
    };
    for (id, _, _, want) in &cases {
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(c, s)| (c.to_string(), s.to_string()))
            .collect();
        want.sort();
        assert_eq!(
            media_findings(&m, id),
            want,
            "trunk {id}\n{m}\n{}\n{}",
            d.logs(),
            logs()
        );
    }
}

#[test]
fn mtu_ladder_and_origination_metrics() {
    // One carrier drops every request of 1400 bytes and more (as when IP fragments are
    // dropped); one answers every size.
    let small_only = Sipp::uas_udp("options_200_small_only.xml");
    let healthy = Sipp::uas_udp("options_200_sdp.xml");
    let origin = Sipp::uas_udp("options_200.xml");
    let closed = closed_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[
            TrunkJson::probed("frag")
                .gateway_at(small_only.addr())
                .g711_only()
                .build(),
            TrunkJson::probed("whole")
                .gateway_at(healthy.addr())
                .g711_only()
                .build(),
        ],
    );
    let up_uri = format!("sip:127.0.0.1:{}", origin.addr().port());
    let down_uri = format!("sip:127.0.0.1:{closed}");
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--timeout",
        "1s",
        "--mtu-interval",
        "1s",
        "--origination",
        &up_uri,
        "--origination",
        &down_uri,
        "--origination-interval",
        "1s",
    ]);
    let frag = [("trunk_id", "frag")];
    let whole = [("trunk_id", "whole")];
    let m = wait_metrics(
        &mut d,
        "both ladders ran and origination was checked",
        |m| {
            sample(m, "trunkprobe_mtu_last_run_timestamp_seconds", &frag).is_some()
                && sample(m, "trunkprobe_mtu_last_run_timestamp_seconds", &whole).is_some()
                && sample(m, "trunkprobe_origination_up", &[("uri", &down_uri)]).is_some()
        },
    );
    let t = |m: &str, name: &str, l: &[(&str, &str)]| sample(m, name, l);
    assert_eq!(
        t(&m, "trunkprobe_mtu_largest_answered_bytes", &frag),
        Some(1200.0),
        "{m}"
    );
    assert_eq!(
        t(&m, "trunkprobe_mtu_first_lost_bytes", &frag),
        Some(1400.0)
    );
    assert_eq!(
        t(&m, "trunkprobe_mtu_largest_answered_bytes", &whole),
        Some(4000.0)
    );
    assert_eq!(
        t(&m, "trunkprobe_mtu_first_lost_bytes", &whole),
        None,
        "none lost: absent"
    );
    for l in [&frag, &whole] {
        assert!(
            t(&m, "trunkprobe_mtu_path_mtu_bytes", l).is_some_and(|v| v > 60_000.0),
            "loopback's MTU\n{m}"
        );
        assert!(t(&m, "trunkprobe_mtu_invite_estimate_bytes", l).is_some_and(|v| v > 500.0));
    }
    assert_eq!(
        finding(&m, "frag", "udp_large_messages_lost"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(finding(&m, "whole", "udp_large_messages_lost"), None);
    assert!(m.contains("# HELP trunkprobe_mtu_first_lost_bytes "));

    // The ladder keeps running every ~1 s.
    let first = t(&m, "trunkprobe_mtu_last_run_timestamp_seconds", &whole).unwrap();
    wait_metrics(&mut d, "a second ladder", |m| {
        sample(m, "trunkprobe_mtu_last_run_timestamp_seconds", &whole).is_some_and(|v| v > first)
    });

    // Origination: the SIPp URI answers, the closed port does not.
    let m = wait_metrics(&mut d, "origination RTT observed", |m| {
        sample(m, "trunkprobe_origination_rtt_seconds", &[("uri", &up_uri)]).is_some()
    });
    let up_target = origin.addr().to_string();
    assert_eq!(
        t(
            &m,
            "trunkprobe_origination_up",
            &[
                ("uri", &up_uri),
                ("transport", "udp"),
                ("target", &up_target)
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        t(&m, "trunkprobe_origination_up", &[("uri", &down_uri)]),
        Some(0.0)
    );
    assert!(t(&m, "trunkprobe_origination_last_run_timestamp_seconds", &[]).is_some());
    // Not sip.bolna.ai: whether it resolves to the guide's IP is not asked.
    assert!(
        !m.contains("trunkprobe_origination_resolves_to_guide_ip{"),
        "{m}"
    );
    // SIPp echoes Via without received/rport: the egress is unknown, and said so.
    assert_eq!(
        t(
            &m,
            "trunkprobe_egress_info",
            &[("public_ip", "unknown"), ("behind_nat", "unknown")]
        ),
        Some(1.0)
    );
    let check = common::prometheus::promtool_check_metrics(&m);
    assert!(
        check.status.success(),
        "promtool check metrics: {check:?}\n{m}"
    );
}
