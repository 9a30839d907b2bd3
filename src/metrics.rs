//! Prometheus metrics of the monitoring daemon: the only place that maps probe
//! results, findings and source health to series. The metric names are part of
//! the product (dashboards and alert rules query them); see the README.
//!
//! Every label value is bounded: closed enums, addresses, and trunk names cut to
//! [`MAX_LABEL`] printable characters. No token, password or URI user part is
//! ever a label. Series of a trunk or target that leaves are removed
//! ([`Metrics::forget_trunk`], [`Metrics::forget_target`]).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod diagnostics;
pub use diagnostics::{DiagnosticMetrics, MAX_EGRESS_ADDRESSES};

use crate::checks::Finding;
use crate::probe::{Outcome, TargetResult};
use crate::resolve::Resolution;
use crate::trunk::{Field, Trunk};

/// Longest label value taken from user data (trunk names, hosts).
pub const MAX_LABEL: usize = 64;

/// RTT histogram buckets, 1 ms to 5 s.
pub const RTT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0,
];

const TARGET_LABELS: [&str; 5] = ["trunk_id", "trunk", "gateway", "target", "transport"];
const GATEWAY_LABELS: [&str; 3] = ["trunk_id", "trunk", "gateway"];

/// Labels of one probed target: `trunk_id, trunk, gateway, target, transport`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetLabels(pub [String; 5]);

impl TargetLabels {
    /// `gateway` is the configured `host:port`, `target` the probed `ip:port`
    /// (or `unresolved` while the gateway has no address).
    pub fn new(trunk_id: &str, trunk: &str, gateway: &str, target: &str, transport: &str) -> Self {
        TargetLabels([
            bounded(trunk_id),
            bounded(trunk),
            bounded(gateway),
            bounded(target),
            bounded(transport),
        ])
    }

    fn values(&self) -> [&str; 5] {
        [&self.0[0], &self.0[1], &self.0[2], &self.0[3], &self.0[4]]
    }

    fn gateway(&self) -> [&str; 3] {
        [&self.0[0], &self.0[1], &self.0[2]]
    }
}

/// Why a trunk source load failed: the `reason` label of
/// `trunkprobe_source_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorReason {
    Timeout,
    Unauthorized,
    HttpStatus,
    Connect,
    InvalidBody,
    File,
    Token,
}

impl SourceErrorReason {
    pub const ALL: [SourceErrorReason; 7] = [
        SourceErrorReason::Timeout,
        SourceErrorReason::Unauthorized,
        SourceErrorReason::HttpStatus,
        SourceErrorReason::Connect,
        SourceErrorReason::InvalidBody,
        SourceErrorReason::File,
        SourceErrorReason::Token,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceErrorReason::Timeout => "timeout",
            SourceErrorReason::Unauthorized => "unauthorized",
            SourceErrorReason::HttpStatus => "http_status",
            SourceErrorReason::Connect => "connect",
            SourceErrorReason::InvalidBody => "invalid_body",
            SourceErrorReason::File => "file",
            SourceErrorReason::Token => "token",
        }
    }

    pub fn of(e: &crate::source::SourceError) -> SourceErrorReason {
        use crate::source::SourceError as E;
        match e {
            E::ApiTimeout { .. } => SourceErrorReason::Timeout,
            E::ApiUnauthorized { .. } => SourceErrorReason::Unauthorized,
            E::ApiStatus { .. } => SourceErrorReason::HttpStatus,
            E::ApiConnect { .. } => SourceErrorReason::Connect,
            E::ApiInvalidJson { .. }
            | E::ApiBodyTooLarge { .. }
            | E::InvalidJson { .. }
            | E::WrongShape { .. }
            | E::InvalidField { .. }
            | E::BadFlag { .. } => SourceErrorReason::InvalidBody,
            E::FileUnreadable { .. } => SourceErrorReason::File,
            E::TokenMissing
            | E::TokenFileUnreadable { .. }
            | E::TokenFileEmpty { .. }
            | E::TokenMalformed => SourceErrorReason::Token,
        }
    }
}

/// How a trunk of the list is treated: the `state` label of `trunkprobe_trunks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrunkState {
    /// Active and probed.
    Active,
    /// `is_active=false`: linted and shown, not probed.
    Inactive,
    /// Active but not probed: `qualify_frequency` 0 (or negative) or an invalid transport.
    Disabled,
}

impl TrunkState {
    pub fn of(trunk: &Trunk) -> TrunkState {
        if !trunk.is_active {
            TrunkState::Inactive
        } else if trunk.qualify_frequency <= 0 || trunk.transport.valid().is_none() {
            TrunkState::Disabled
        } else {
            TrunkState::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrunkState::Active => "active",
            TrunkState::Inactive => "inactive",
            TrunkState::Disabled => "disabled",
        }
    }
}

/// Lateness histogram buckets (probe start against its schedule), 1 ms to 5 s.
pub const LATENESS_BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The series of one target, looked up once when it is first recorded: an
/// observation then touches its counters without hashing five label values per metric.
#[derive(Default)]
struct TargetHandles {
    up: Option<IntGauge>,
    rtt: Option<Histogram>,
    last_status: Option<IntGauge>,
    /// By [`Outcome::ALL`] index, created on first use like the labelled form.
    probes: [Option<IntCounter>; 7],
    last_probe: Option<Gauge>,
    tls_not_after: Option<Gauge>,
}

/// The label set a trunk's series were created with, so they can be removed.
#[derive(Default)]
struct TrunkSeries {
    generation: u64,
    targets: HashMap<TargetLabels, TargetHandles>,
    gateways: HashSet<[String; 3]>,
    info: Option<[String; 6]>,
    findings: HashSet<[String; 4]>,
}

/// The daemon's registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    options_up: IntGaugeVec,
    options_rtt: HistogramVec,
    last_status: IntGaugeVec,
    probes_total: IntCounterVec,
    last_probe: GaugeVec,
    tls_not_after: GaugeVec,
    dns_lookup: GaugeVec,
    dns_addresses: IntGaugeVec,
    trunk_info: IntGaugeVec,
    finding: IntGaugeVec,
    source_last_success: Gauge,
    source_errors: IntCounterVec,
    trunks: IntGaugeVec,
    /// MTU ladder, origination and egress series.
    pub diag: DiagnosticMetrics,
    lateness: Histogram,
    tasks: IntGauge,
    tracked: Mutex<(u64, HashMap<String, TrunkSeries>)>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// A registry with every metric; `location` becomes a constant label on all series.
    pub fn new(location: Option<&str>) -> Metrics {
        let registry = registry_for(location);
        let m = Metrics {
            options_up: IntGaugeVec::new(
                opts(
                    "trunkprobe_options_up",
                    "1 if the target answers OPTIONS healthily, after up/down hysteresis.",
                ),
                &TARGET_LABELS,
            )
            .unwrap(),
            options_rtt: HistogramVec::new(
                HistogramOpts::new(
                    "trunkprobe_options_rtt_seconds",
                    "OPTIONS round-trip time, first send to final response.",
                )
                .buckets(RTT_BUCKETS.to_vec()),
                &TARGET_LABELS,
            )
            .unwrap(),
            last_status: IntGaugeVec::new(
                opts(
                    "trunkprobe_options_last_status_code",
                    "SIP status code of the last final response (0 when none).",
                ),
                &TARGET_LABELS,
            )
            .unwrap(),
            probes_total: IntCounterVec::new(
                opts(
                    "trunkprobe_options_probes_total",
                    "OPTIONS probes by outcome (ok, sip_error, timeout, refused, tls_error, dns_error, network_error).",
                ),
                &[&TARGET_LABELS[..], &["outcome"]].concat(),
            )
            .unwrap(),
            last_probe: GaugeVec::new(
                opts(
                    "trunkprobe_options_last_probe_timestamp_seconds",
                    "Unix time the last probe of the target finished.",
                ),
                &TARGET_LABELS,
            )
            .unwrap(),
            tls_not_after: GaugeVec::new(
                opts(
                    "trunkprobe_tls_cert_not_after_timestamp_seconds",
                    "Unix time the target's TLS leaf certificate expires.",
                ),
                &TARGET_LABELS,
            )
            .unwrap(),
            dns_lookup: GaugeVec::new(
                opts(
                    "trunkprobe_dns_lookup_seconds",
                    "Duration of the gateway's last A/AAAA lookup (0 for an IP literal).",
                ),
                &GATEWAY_LABELS,
            )
            .unwrap(),
            dns_addresses: IntGaugeVec::new(
                opts(
                    "trunkprobe_dns_addresses",
                    "Addresses the gateway resolved to at the last lookup.",
                ),
                &GATEWAY_LABELS,
            )
            .unwrap(),
            trunk_info: IntGaugeVec::new(
                opts("trunkprobe_trunk_info", "Trunk definition, always 1."),
                &[
                    "trunk_id",
                    "trunk",
                    "provider",
                    "transport",
                    "media_encryption",
                    "auth_type",
                ],
            )
            .unwrap(),
            finding: IntGaugeVec::new(
                opts(
                    "trunkprobe_finding",
                    "1 while a finding holds for the trunk (static, or learnt from probing: media, ip_identifiers, MTU).",
                ),
                &["trunk_id", "trunk", "check", "severity"],
            )
            .unwrap(),
            source_last_success: Gauge::with_opts(opts(
                "trunkprobe_source_last_success_timestamp_seconds",
                "Unix time the trunk list was last loaded successfully.",
            ))
            .unwrap(),
            source_errors: IntCounterVec::new(
                opts(
                    "trunkprobe_source_errors_total",
                    "Failed loads of the trunk list, by reason.",
                ),
                &["reason"],
            )
            .unwrap(),
            trunks: IntGaugeVec::new(
                opts("trunkprobe_trunks", "Trunks in the loaded list, by state."),
                &["state"],
            )
            .unwrap(),
            diag: DiagnosticMetrics::new(&registry),
            lateness: Histogram::with_opts(
                HistogramOpts::new(
                    "trunkprobe_probe_lateness_seconds",
                    "How late each scheduled probe started against its schedule (queueing for a --concurrency slot included).",
                )
                .buckets(LATENESS_BUCKETS.to_vec()),
            )
            .unwrap(),
            tasks: IntGauge::with_opts(opts(
                "trunkprobe_runtime_tasks",
                "Async tasks alive in the prober's runtime (flat in steady state; growth is a leak).",
            ))
            .unwrap(),
            tracked: Mutex::new((0, HashMap::new())),
            registry,
        };
        let build = IntGaugeVec::new(
            opts(
                "trunkprobe_build_info",
                "Build of the prober, always 1; the version is a label.",
            ),
            &["version"],
        )
        .unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let r = &m.registry;
        r.register(Box::new(build)).unwrap();
        r.register(Box::new(m.tasks.clone())).unwrap();
        r.register(Box::new(m.options_up.clone())).unwrap();
        r.register(Box::new(m.options_rtt.clone())).unwrap();
        r.register(Box::new(m.last_status.clone())).unwrap();
        r.register(Box::new(m.probes_total.clone())).unwrap();
        r.register(Box::new(m.last_probe.clone())).unwrap();
        r.register(Box::new(m.tls_not_after.clone())).unwrap();
        r.register(Box::new(m.dns_lookup.clone())).unwrap();
        r.register(Box::new(m.dns_addresses.clone())).unwrap();
        r.register(Box::new(m.trunk_info.clone())).unwrap();
        r.register(Box::new(m.finding.clone())).unwrap();
        r.register(Box::new(m.source_last_success.clone())).unwrap();
        r.register(Box::new(m.source_errors.clone())).unwrap();
        r.register(Box::new(m.trunks.clone())).unwrap();
        r.register(Box::new(m.lateness.clone())).unwrap();
        for reason in SourceErrorReason::ALL {
            m.source_errors.with_label_values(&[reason.as_str()]);
        }
        for state in [
            TrunkState::Active,
            TrunkState::Inactive,
            TrunkState::Disabled,
        ] {
            m.trunks.with_label_values(&[state.as_str()]);
        }
        m
    }

    /// The text exposition format of every series.
    pub fn render(&self) -> String {
        self.diag.refresh_egress();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.tasks.set(rt.metrics().num_alive_tasks() as i64);
        }
        encode(&self.registry)
    }

    /// Starts (or restarts) tracking a trunk; records are accepted only with the
    /// returned generation, so a probe finishing after [`forget_trunk`](Self::forget_trunk)
    /// cannot bring its series back.
    pub fn track_trunk(&self, trunk_id: &str) -> u64 {
        let mut t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += 1;
        let generation = t.0;
        t.1.entry(bounded(trunk_id)).or_default().generation = generation;
        generation
    }

    fn with_trunk(&self, trunk_id: &str, generation: u64, f: impl FnOnce(&mut TrunkSeries)) {
        let mut t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = t.1.get_mut(trunk_id) {
            if s.generation == generation {
                f(s);
            }
        }
    }

    /// Records one probe of a target and its state after hysteresis.
    pub fn record_probe(&self, gen: u64, l: &TargetLabels, r: &TargetResult, up: bool) {
        self.with_trunk(&l.0[0], gen, |s| {
            if !s.targets.contains_key(l) {
                s.targets.insert(l.clone(), TargetHandles::default());
            }
            let Some(h) = s.targets.get_mut(l) else {
                return;
            };
            let v = l.values();
            h.up.get_or_insert_with(|| self.options_up.with_label_values(&v))
                .set(up as i64);
            if let Some(rtt) = r.rtt {
                h.rtt
                    .get_or_insert_with(|| self.options_rtt.with_label_values(&v))
                    .observe(rtt.as_secs_f64());
            }
            h.last_status
                .get_or_insert_with(|| self.last_status.with_label_values(&v))
                .set(r.status_code.unwrap_or(0) as i64);
            let i = Outcome::ALL
                .iter()
                .position(|o| *o == r.outcome)
                .unwrap_or(0);
            h.probes[i]
                .get_or_insert_with(|| {
                    let mut with_outcome = v.to_vec();
                    with_outcome.push(r.outcome.as_str());
                    self.probes_total.with_label_values(&with_outcome)
                })
                .inc();
            h.last_probe
                .get_or_insert_with(|| self.last_probe.with_label_values(&v))
                .set(unix_now());
            if let Some(cert) = r.tls.as_ref().and_then(|t| t.cert.as_ref()) {
                h.tls_not_after
                    .get_or_insert_with(|| self.tls_not_after.with_label_values(&v))
                    .set(cert.not_after as f64);
            }
            self.diag.observe_egress(l, r);
        });
    }

    /// Records one UDP size ladder run on a target.
    pub fn record_mtu(&self, gen: u64, l: &TargetLabels, r: &crate::checks::mtu::MtuResult) {
        self.with_trunk(&l.0[0], gen, |s| {
            s.targets.entry(l.clone()).or_default();
            self.diag.record_mtu(l, r);
        });
    }

    /// How late a scheduled probe started (the daemon's scheduling accuracy).
    pub fn observe_lateness(&self, late: std::time::Duration) {
        self.lateness.observe(late.as_secs_f64());
    }

    /// Records a gateway's last lookup.
    pub fn record_dns(&self, gen: u64, l: &TargetLabels, res: &Resolution) {
        self.with_trunk(&l.0[0], gen, |s| {
            let g = l.gateway();
            s.gateways.insert(g.map(str::to_string));
            self.dns_lookup
                .with_label_values(&g)
                .set(res.lookup_time.as_secs_f64());
            self.dns_addresses
                .with_label_values(&g)
                .set(res.addresses.len() as i64);
        });
    }

    /// Sets a trunk's info series and its current findings (findings that no
    /// longer hold are removed).
    pub fn record_trunk(&self, gen: u64, trunk_id: &str, trunk: &Trunk, findings: &[Finding]) {
        let id = bounded(trunk_id);
        let name = bounded(trunk.label());
        self.with_trunk(&id, gen, |s| {
            let info = [
                id.clone(),
                name.clone(),
                token_label(&trunk.provider),
                field_label(&trunk.transport, |t| t.as_str()),
                field_label(&trunk.media_encryption, |m| m.as_str()),
                field_label(&trunk.auth_type, |a| a.as_str()),
            ];
            if s.info.as_ref() != Some(&info) {
                if let Some(old) = s.info.take() {
                    let _ = self.trunk_info.remove_label_values(&strs(&old));
                }
                self.trunk_info.with_label_values(&strs(&info)).set(1);
                s.info = Some(info);
            }
            self.set_findings(s, &id, &name, findings);
        });
    }

    /// Sets a trunk's current findings only (no info series): for `--shard`
    /// instances other than 0, which publish what their own targets showed.
    pub fn record_findings(&self, gen: u64, trunk_id: &str, trunk: &Trunk, findings: &[Finding]) {
        let id = bounded(trunk_id);
        let name = bounded(trunk.label());
        self.with_trunk(&id, gen, |s| self.set_findings(s, &id, &name, findings));
    }

    fn set_findings(&self, s: &mut TrunkSeries, id: &str, name: &str, findings: &[Finding]) {
        let now: HashSet<[String; 4]> = findings
            .iter()
            .map(|f| {
                [
                    id.to_string(),
                    name.to_string(),
                    f.check.as_str().to_string(),
                    f.severity.as_str().to_string(),
                ]
            })
            .collect();
        for gone in s.findings.difference(&now) {
            let _ = self.finding.remove_label_values(&strs(gone));
        }
        for f in &now {
            self.finding.with_label_values(&strs(f)).set(1);
        }
        s.findings = now;
    }

    /// Removes every series of one target (its address left the gateway's DNS answer).
    pub fn forget_target(&self, gen: u64, l: &TargetLabels) {
        self.with_trunk(&l.0[0], gen, |s| {
            s.targets.remove(l);
            self.remove_target(l);
        });
    }

    fn remove_target(&self, l: &TargetLabels) {
        let v = l.values();
        let _ = self.options_up.remove_label_values(&v);
        let _ = self.options_rtt.remove_label_values(&v);
        let _ = self.last_status.remove_label_values(&v);
        let _ = self.last_probe.remove_label_values(&v);
        let _ = self.tls_not_after.remove_label_values(&v);
        self.diag.remove_target(l);
        for o in Outcome::ALL {
            let mut with_outcome = v.to_vec();
            with_outcome.push(o.as_str());
            let _ = self.probes_total.remove_label_values(&with_outcome);
        }
    }

    /// Removes every series of a trunk (it left the list or is rescheduled) and
    /// stops accepting records of its current generation.
    pub fn forget_trunk(&self, trunk_id: &str) {
        let mut t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = t.1.remove(&bounded(trunk_id)) else {
            return;
        };
        for l in s.targets.keys() {
            self.remove_target(l);
        }
        for g in &s.gateways {
            let _ = self.dns_lookup.remove_label_values(&strs(g));
            let _ = self.dns_addresses.remove_label_values(&strs(g));
        }
        if let Some(info) = &s.info {
            let _ = self.trunk_info.remove_label_values(&strs(info));
        }
        for f in &s.findings {
            let _ = self.finding.remove_label_values(&strs(f));
        }
    }

    /// A successful load of the trunk list, with the count of trunks per state.
    pub fn source_loaded(&self, states: &[TrunkState]) {
        self.source_last_success.set(unix_now());
        for state in [
            TrunkState::Active,
            TrunkState::Inactive,
            TrunkState::Disabled,
        ] {
            let n = states.iter().filter(|s| **s == state).count();
            self.trunks
                .with_label_values(&[state.as_str()])
                .set(n as i64);
        }
    }

    /// A failed load of the trunk list.
    pub fn source_failed(&self, reason: SourceErrorReason) {
        self.source_errors
            .with_label_values(&[reason.as_str()])
            .inc();
    }
}

/// A registry with `location` as constant label when given.
pub fn registry_for(location: Option<&str>) -> Registry {
    let labels = location.map(|l| HashMap::from([("location".to_string(), bounded(l))]));
    Registry::new_custom(None, labels).unwrap_or_default()
}

/// Text exposition of a registry.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// A label value from user data: printable characters only, at most [`MAX_LABEL`],
/// and nothing up to an `@` (no user part of a URI).
pub fn bounded(s: &str) -> String {
    let s = s.rsplit_once('@').map_or(s, |(_, host)| host);
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL)
        .collect()
}

/// A short token (`twilio`, `custom`): lower-case letters, digits, `-` and `_`,
/// anything else becomes `other`.
fn token_label(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        s
    } else {
        "other".into()
    }
}

fn field_label<T: Copy>(f: &Field<T>, name: impl Fn(T) -> &'static str) -> String {
    match f {
        Field::Valid(v) => name(*v).to_string(),
        Field::Invalid(_) => "invalid".to_string(),
    }
}

fn strs<const N: usize>(a: &[String; N]) -> [&str; N] {
    std::array::from_fn(|i| a[i].as_str())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(bounded("sip:alice@gw.example.com"), "gw.example.com");
        assert_eq!(bounded(&"x".repeat(300)).len(), MAX_LABEL);
        assert_eq!(bounded("a\nb\x1b"), "ab");
        assert_eq!(token_label("Twilio"), "twilio");
        assert_eq!(token_label("free text here"), "other");
    }

    #[test]
    fn every_metric_has_help_and_location_when_set() {
        let m = Metrics::new(Some("eu-west"));
        let text = m.render();
        for name in [
            "trunkprobe_build_info",
            "trunkprobe_source_errors_total",
            "trunkprobe_trunks",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        }
        assert!(text.contains("location=\"eu-west\""), "{text}");
    }

    #[test]
    fn forgetting_a_trunk_removes_its_series_and_late_records() {
        let m = Metrics::new(None);
        let mut trunk = Trunk::with_defaults("t1");
        trunk.id = Some("id1".into());
        let gen = m.track_trunk("id1");
        m.record_trunk(gen, "id1", &trunk, &crate::checks::lint(&trunk));
        assert!(m.render().contains("trunkprobe_trunk_info{"));
        m.forget_trunk("id1");
        m.record_trunk(gen, "id1", &trunk, &[]);
        assert!(!m.render().contains("trunk_id=\"id1\""), "{}", m.render());
    }
}
