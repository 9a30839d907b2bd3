//! Prometheus metrics of the monitoring daemon: the only place that maps probe
//! results, findings and source health to series. The metric names are part of
//! the product (dashboards and alert rules query them); see the README.
//!
//! Every label value is bounded: closed enums, addresses, and trunk names cut to
//! [`MAX_LABEL`] printable characters. No token, password or URI user part is
//! ever a label. Series of a trunk or target that leaves are removed
//! ([`Metrics::forget_trunk`], [`Metrics::forget_target`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

mod origination_egress;
mod probe;
pub mod store;
mod test_calls;
pub use origination_egress::{OriginationEgressMetrics, MAX_EGRESS_ADDRESSES};
pub use probe::{render_call_probe, render_probe, ProbeRun};
use store::Store;
pub use test_calls::{registration_result, TestCallMetrics, REGISTRATION_RESULTS};

use crate::checks::Finding;
use crate::outcome::{MtuResult, TargetResult};
use crate::resolve::Resolution;
use crate::trunk::{Field, Trunk};

/// Longest label value taken from user data (trunk names, hosts).
pub const MAX_LABEL: usize = 64;

/// RTT histogram buckets, 1 ms to 5 s.
pub const RTT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0,
];

const TARGET_LABELS: [&str; 5] = ["trunk_id", "trunk", "gateway", "target", "transport"];

/// Labels of one probed target: `trunk_id, trunk, gateway, target, transport`.
///
/// Shared strings: the targets of a gateway clone its labels and replace only
/// `target`, so at 100,000 targets the other four are one allocation per
/// gateway or trunk rather than four per target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetLabels {
    pub trunk_id: Arc<str>,
    pub trunk: Arc<str>,
    /// The configured `host:port`.
    pub gateway: Arc<str>,
    /// The probed `ip:port`, or `unresolved`; the key the findings use for a target.
    pub target: Arc<str>,
    pub transport: Arc<str>,
}

impl TargetLabels {
    /// `gateway` is the configured `host:port`, `target` the probed `ip:port`
    /// (or `unresolved` while the gateway has no address).
    pub fn new(trunk_id: &str, trunk: &str, gateway: &str, target: &str, transport: &str) -> Self {
        TargetLabels {
            trunk_id: bounded(trunk_id).into(),
            trunk: bounded(trunk).into(),
            gateway: bounded(gateway).into(),
            target: bounded(target).into(),
            transport: bounded(transport).into(),
        }
    }

    /// The label values in `TARGET_LABELS` order.
    pub fn values(&self) -> [&str; 5] {
        [
            &self.trunk_id,
            &self.trunk,
            &self.gateway,
            &self.target,
            &self.transport,
        ]
    }

    /// `ip:port` of the target, as the findings key targets.
    pub fn addr(&self) -> &str {
        &self.target
    }

    /// The same labels for another `target` (`ip:port`, or `unresolved`).
    pub fn with_target(&self, target: &str) -> Self {
        let mut l = self.clone();
        l.target = bounded(target).into();
        l
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
    /// One trunk record of a list that does not fit the schema (counted per record and load).
    InvalidRecord,
}

impl SourceErrorReason {
    pub const ALL: [SourceErrorReason; 8] = [
        SourceErrorReason::Timeout,
        SourceErrorReason::Unauthorized,
        SourceErrorReason::HttpStatus,
        SourceErrorReason::Connect,
        SourceErrorReason::InvalidBody,
        SourceErrorReason::File,
        SourceErrorReason::Token,
        SourceErrorReason::InvalidRecord,
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
            SourceErrorReason::InvalidRecord => "invalid_record",
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
    /// The record does not fit the schema and no good definition of it was
    /// seen: shown (info, findings), not probed.
    Invalid,
}

impl TrunkState {
    pub const ALL: [TrunkState; 4] = [
        TrunkState::Active,
        TrunkState::Inactive,
        TrunkState::Disabled,
        TrunkState::Invalid,
    ];

    pub fn of(trunk: &Trunk) -> TrunkState {
        if trunk.invalid.is_some() {
            TrunkState::Invalid
        } else if !trunk.is_active {
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
            TrunkState::Invalid => "invalid",
        }
    }
}

/// Lateness histogram buckets (probe start against its schedule), 1 ms to 5 s.
pub const LATENESS_BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How much of the OPTIONS round-trip time goes into the
/// `trunkprobe_options_rtt_seconds` histogram (`serve --rtt-histogram`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RttHistogram {
    /// One histogram per target (16 series each).
    Target,
    /// One histogram per trunk and transport (labels `trunk_id, trunk, transport`).
    ///
    /// The default: a target is probed once per `qualify_frequency` (60 s by
    /// default), so its own histogram holds no more than its
    /// `trunkprobe_options_last_rtt_seconds` sampled at each scrape, while it
    /// costs 16 series a target (1.6 million at 100,000 targets, most of
    /// `/metrics`).
    #[default]
    Trunk,
    /// No histogram; `trunkprobe_options_last_rtt_seconds` still has each target's RTT.
    Off,
}

/// The daemon's metrics: the small prober-wide families in a `prometheus` registry,
/// every per-target, per-gateway and per-trunk family in the compact [`store`].
pub struct Metrics {
    registry: Registry,
    source_last_success: Gauge,
    source_errors: IntCounterVec,
    trunks: IntGaugeVec,
    /// Origination and egress series.
    pub origination_egress: OriginationEgressMetrics,
    /// Scheduled test calls and registration checks.
    pub test_calls: TestCallMetrics,
    lateness: Histogram,
    tasks: IntGauge,
    /// Hands out trunk generations.
    generations: AtomicU64,
    store: Store,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

/// A gauge family with `labels`, registered in `r`.
fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap();
    r.register(Box::new(g.clone())).unwrap();
    g
}

/// A float gauge family with `labels`, registered in `r`.
fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::GaugeVec {
    let g = prometheus::GaugeVec::new(Opts::new(name, help), labels).unwrap();
    r.register(Box::new(g.clone())).unwrap();
    g
}

impl Metrics {
    /// A registry with every metric; `location` becomes a constant label on all series.
    pub fn new(location: Option<&str>) -> Metrics {
        Metrics::with_rtt_histogram(location, RttHistogram::default())
    }

    /// Like [`Metrics::new`], with the RTT histogram's granularity.
    pub fn with_rtt_histogram(location: Option<&str>, rtt: RttHistogram) -> Metrics {
        let registry = registry_for(location);
        let m = Metrics {
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
            origination_egress: OriginationEgressMetrics::new(&registry),
            test_calls: TestCallMetrics::new(&registry),
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
            generations: AtomicU64::new(0),
            store: Store::new(location.map(bounded).as_deref(), rtt),
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
        r.register(Box::new(m.source_last_success.clone())).unwrap();
        r.register(Box::new(m.source_errors.clone())).unwrap();
        r.register(Box::new(m.trunks.clone())).unwrap();
        r.register(Box::new(m.lateness.clone())).unwrap();
        for reason in SourceErrorReason::ALL {
            m.source_errors.with_label_values(&[reason.as_str()]);
        }
        for state in TrunkState::ALL {
            m.trunks.with_label_values(&[state.as_str()]);
        }
        m
    }

    /// The text exposition format of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.render_chunks(&mut |chunk| {
            text.push_str(&chunk);
            true
        });
        text
    }

    /// The text exposition format of every series, in chunks of about
    /// [`store::CHUNK`] bytes handed to `sink` until it returns false: a scrape
    /// of 100,000 targets never holds the whole text.
    pub fn render_chunks(&self, sink: &mut dyn FnMut(String) -> bool) {
        let (public, behind_nat) = self.store.egress();
        self.origination_egress.set_egress(&public, behind_nat);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.tasks.set(rt.metrics().num_alive_tasks() as i64);
        }
        if sink(encode(&self.registry)) {
            self.store.render(sink);
        }
    }

    /// Starts (or restarts) tracking a trunk; records are accepted only with the
    /// returned generation, so a probe finishing after [`forget_trunk`](Self::forget_trunk)
    /// cannot bring its series back.
    pub fn track_trunk(&self, trunk_id: &str) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.store.track(&bounded(trunk_id), generation);
        generation
    }

    /// Records one probe of a target and its state after hysteresis.
    pub fn record_probe(&self, gen: u64, l: &TargetLabels, r: &TargetResult, up: bool) {
        self.store.record_probe(gen, l, r, up);
    }

    /// Records one UDP size ladder run on a target.
    pub fn record_mtu(&self, gen: u64, l: &TargetLabels, r: &MtuResult) {
        self.store.record_mtu(gen, l, r);
    }

    /// How late a scheduled probe started (the daemon's scheduling accuracy).
    pub fn observe_lateness(&self, late: std::time::Duration) {
        self.lateness.observe(late.as_secs_f64());
    }

    /// Records a gateway's last lookup.
    pub fn record_dns(&self, gen: u64, l: &TargetLabels, res: &Resolution) {
        self.store.record_dns(gen, l, res);
    }

    /// Sets a trunk's info series and its current findings (findings that no
    /// longer hold are removed).
    pub fn record_trunk(&self, gen: u64, trunk_id: &str, trunk: &Trunk, findings: &[Finding]) {
        let id = bounded(trunk_id);
        let name = bounded(trunk.label());
        let info = [
            token_label(&trunk.provider),
            field_label(&trunk.transport, |t| t.as_str()),
            field_label(&trunk.media_encryption, |m| m.as_str()),
            field_label(&trunk.auth_type, |a| a.as_str()),
        ];
        self.store
            .set_info(gen, [&id, &name, &info[0], &info[1], &info[2], &info[3]]);
        self.set_findings(gen, &id, &name, findings);
    }

    /// Sets a trunk's current findings only (no info series): for `--shard`
    /// instances other than 0, which publish what their own targets showed.
    pub fn record_findings(&self, gen: u64, trunk_id: &str, trunk: &Trunk, findings: &[Finding]) {
        self.set_findings(gen, &bounded(trunk_id), &bounded(trunk.label()), findings);
    }

    fn set_findings(&self, gen: u64, id: &str, name: &str, findings: &[Finding]) {
        let pairs: Vec<(&str, &str)> = findings
            .iter()
            .map(|f| (f.check.as_str(), f.severity.as_str()))
            .collect();
        self.store.set_findings(gen, id, name, &pairs);
    }

    /// Removes every series of one target (its address left the gateway's DNS answer).
    pub fn forget_target(&self, gen: u64, l: &TargetLabels) {
        self.store.forget_target(gen, l);
    }

    /// Removes every series of a trunk (it left the list or is rescheduled) and
    /// stops accepting records of its current generation.
    pub fn forget_trunk(&self, trunk_id: &str) {
        self.store.forget(&bounded(trunk_id));
    }

    /// A successful load of the trunk list, with the count of trunks per state.
    pub fn source_loaded(&self, states: &[TrunkState]) {
        self.source_last_success.set(unix_now());
        for state in TrunkState::ALL {
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

    /// A load whose list held `n` records that do not fit the schema.
    pub fn source_invalid_records(&self, n: usize) {
        self.source_errors
            .with_label_values(&[SourceErrorReason::InvalidRecord.as_str()])
            .inc_by(n as u64);
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

    #[test]
    fn egress_is_unknown_until_a_carrier_reports_it() {
        use crate::outcome::{self, Outcome};
        let m = Metrics::new(None);
        let unknown = "trunkprobe_egress_info{behind_nat=\"unknown\",public_ip=\"unknown\"} 1";
        assert!(m.render().contains(unknown));
        let gen = m.track_trunk("t");
        let l = TargetLabels::new("t", "t", "gw:5060", "192.0.2.1:5060", "udp");
        let mut t = outcome::blank_result(None, 5060, crate::trunk::Transport::Udp, Outcome::Ok);
        t.response = Some(crate::sip::message::parse_response(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bK1;received=203.0.113.7;rport=61000\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap());
        t.local = Some("10.0.0.5:40000".parse().unwrap());
        t.received = Some("203.0.113.7".parse().unwrap());
        t.rport = Some(61000);
        m.record_probe(gen, &l, &t, true);
        let text = m.render();
        assert!(
            text.contains(
                "trunkprobe_egress_info{behind_nat=\"true\",public_ip=\"203.0.113.7\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("public_ip=\"unknown\""), "{text}");
        m.forget_target(gen, &l);
        assert!(m.render().contains(unknown));
    }
}
