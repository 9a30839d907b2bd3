//! The metrics of one `/probe` request, blackbox_exporter style: a fresh
//! registry holding only that probe (`probe_success`, `probe_duration_seconds`,
//! the SIP status, RTT and outcome, the TLS leaf expiry), rendered at once.

use std::net::IpAddr;
use std::time::Duration;

use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts};

use super::{encode, registry_for};
use crate::outcome::{Outcome, TargetResult};

/// What one `/probe` request found.
pub struct ProbeRun<'a> {
    pub result: &'a TargetResult,
    /// The address probed; `None` when the name did not resolve.
    pub ip: Option<IpAddr>,
    pub dns_lookup: Duration,
    /// The whole request, DNS included.
    pub duration: Duration,
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

/// The text exposition of one probe's registry.
pub fn render_probe(location: Option<&str>, run: &ProbeRun) -> String {
    let registry = registry_for(location);
    let success = int_gauge("probe_success", "1 if the OPTIONS probe was healthy.");
    let duration = gauge(
        "probe_duration_seconds",
        "How long the probe took, DNS included.",
    );
    let dns = gauge(
        "probe_dns_lookup_time_seconds",
        "How long the DNS lookup took.",
    );
    let status = int_gauge(
        "probe_sip_status_code",
        "SIP status code of the final response (0 when none).",
    );
    let rtt = gauge(
        "probe_sip_rtt_seconds",
        "OPTIONS round-trip time, first send to final response.",
    );
    let outcome = IntGaugeVec::new(
        Opts::new(
            "probe_sip_outcome",
            "1 for the outcome of this probe (the closed outcome set of trunkprobe check).",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    let ip_protocol = int_gauge(
        "probe_ip_protocol",
        "IP version of the probed address (4 or 6; 0 when unresolved).",
    );
    for m in [&duration, &dns, &rtt] {
        let _ = registry.register(Box::new(m.clone()));
    }
    for m in [&success, &status, &ip_protocol] {
        let _ = registry.register(Box::new(m.clone()));
    }
    let _ = registry.register(Box::new(outcome.clone()));

    let result = run.result;
    dns.set(run.dns_lookup.as_secs_f64());
    if let Some(ip) = run.ip {
        ip_protocol.set(if ip.is_ipv4() { 4 } else { 6 });
    }
    success.set((result.outcome == Outcome::Ok) as i64);
    status.set(result.status_code.unwrap_or(0) as i64);
    if let Some(d) = result.rtt {
        rtt.set(d.as_secs_f64());
    }
    for o in Outcome::ALL {
        outcome
            .with_label_values(&[o.as_str()])
            .set((o == result.outcome) as i64);
    }
    if let Some(cert) = result.tls.as_ref().and_then(|t| t.cert.as_ref()) {
        let expiry = gauge(
            "probe_ssl_earliest_cert_expiry",
            "Unix time the TLS leaf certificate expires.",
        );
        expiry.set(cert.not_after as f64);
        let _ = registry.register(Box::new(expiry));
    }
    duration.set(run.duration.as_secs_f64());
    encode(&registry)
}

/// The text exposition of one `/probe?module=call` test call: `probe_success`
/// (1 for `two_way_audio`), `probe_duration_seconds`, the verdict (one series
/// per verdict of the closed set), setup time, RTP packets per direction and
/// the MOS estimate.
pub fn render_call_probe(
    location: Option<&str>,
    verdict: crate::checks::call::Verdict,
    call: &crate::outcome::call::CallEvidence,
    duration: Duration,
) -> String {
    use crate::checks::call::Verdict;
    let registry = registry_for(location);
    let success = int_gauge("probe_success", "1 if the test call had two-way audio.");
    let took = gauge(
        "probe_duration_seconds",
        "How long the probe took, the whole call included.",
    );
    let verdicts = IntGaugeVec::new(
        Opts::new(
            "probe_call_verdict",
            "1 for the verdict of this test call (the closed verdict set of trunkprobe call).",
        ),
        &["verdict"],
    )
    .expect("valid metric");
    let packets = IntGaugeVec::new(
        Opts::new(
            "probe_call_rtp_packets",
            "RTP packets of the test call, by direction (sent, received).",
        ),
        &["direction"],
    )
    .expect("valid metric");
    let _ = registry.register(Box::new(success.clone()));
    let _ = registry.register(Box::new(took.clone()));
    let _ = registry.register(Box::new(verdicts.clone()));
    let _ = registry.register(Box::new(packets.clone()));
    success.set((verdict == Verdict::TwoWayAudio) as i64);
    took.set(duration.as_secs_f64());
    for v in Verdict::ALL {
        verdicts
            .with_label_values(&[v.as_str()])
            .set((v == verdict) as i64);
    }
    let m = call.media.as_ref();
    packets
        .with_label_values(&["sent"])
        .set(m.map_or(0, |m| m.outbound.packets) as i64);
    packets
        .with_label_values(&["received"])
        .set(m.map_or(0, |m| m.inbound.packets) as i64);
    if let Some(setup) = call.setup_ms {
        let g = gauge(
            "probe_call_setup_seconds",
            "INVITE to the first 18x or 2xx.",
        );
        g.set(setup / 1000.0);
        let _ = registry.register(Box::new(g));
    }
    if let Some(mos) = m.and_then(|m| m.mos) {
        let g = gauge(
            "probe_call_mos",
            "ITU-T G.107 MOS estimate of the received audio.",
        );
        g.set(mos);
        let _ = registry.register(Box::new(g));
    }
    encode(&registry)
}
