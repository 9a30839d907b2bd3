//! Probing: every trunk's gateways are resolved and every address gets one
//! OPTIONS exchange; the evidence becomes a [`TargetResult`] with an outcome
//! from a closed set. This is the one place that orchestrates I/O for `check`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::checks::{self, Finding, Severity};
use crate::resolve::{DnsFailure, GatewayResolver, Resolution};
use crate::sip::{Response, TxOutcome};
use crate::transport::shared_udp::UdpProber;
use crate::transport::{self, Exchange, ExchangeConfig, Target, TlsObservation, TransportFailure};
use crate::trunk::{Field, Transport, Trunk};
use crate::util::{printable, ser_ms, ser_opt_ms};

pub mod mtu;
pub use mtu::{mtu_ladder, MtuConfig};

/// What happened to one target. A closed set: metrics and exit codes rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A final response whose code is in the healthy set.
    Ok,
    /// Any other final response: a SIP stack answered, but not as hoped.
    SipError,
    /// No final response before the deadline (or no TCP connection).
    Timeout,
    /// ICMP port unreachable on UDP, RST on TCP.
    Refused,
    /// The TLS handshake failed.
    TlsError,
    /// The gateway name did not resolve.
    DnsError,
    /// Any other network failure (reset, closed, unframeable bytes, no route).
    NetworkError,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::SipError,
        Outcome::Timeout,
        Outcome::Refused,
        Outcome::TlsError,
        Outcome::DnsError,
        Outcome::NetworkError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::SipError => "sip_error",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::TlsError => "tls_error",
            Outcome::DnsError => "dns_error",
            Outcome::NetworkError => "network_error",
        }
    }
}

/// Final response codes that count as healthy (`--healthy-codes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthyCodes(Vec<(u16, u16)>);

impl Default for HealthyCodes {
    /// Any 2xx.
    fn default() -> Self {
        HealthyCodes(vec![(200, 299)])
    }
}

impl HealthyCodes {
    /// Parses a comma-separated list of codes (`200`), classes (`2xx`) and ranges (`200-299`).
    pub fn parse(s: &str) -> Result<HealthyCodes, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad =
                || format!("{part:?} is not a SIP status code, class (2xx) or range (200-299)");
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    let c: u16 = class.parse().map_err(|_| bad())?;
                    (c * 100, c * 100 + 99)
                } else if let Some((a, b)) = part.split_once('-') {
                    (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    )
                } else {
                    let c: u16 = part.parse().map_err(|_| bad())?;
                    (c, c)
                };
            if range.0 < 100 || range.1 > 699 || range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("no status codes given".into());
        }
        Ok(HealthyCodes(ranges))
    }

    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

/// The result of probing one target (or of failing to resolve its gateway).
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    /// The probed address; `None` when the gateway did not resolve.
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub transport: Transport,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    /// First send to final response.
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
    /// TCP connect (plus TLS handshake) time.
    #[serde(rename = "connect_ms", serialize_with = "ser_opt_ms")]
    pub connect_time: Option<Duration>,
    pub retransmissions: u32,
    /// Provisional (1xx) codes seen before the final response.
    pub provisional: Vec<u16>,
    /// Messages that reached our socket but did not belong to the transaction.
    pub stray_responses: u32,
    /// A response matching the transaction came from this other address; it was
    /// not counted (only the probed address may answer).
    pub reply_from: Option<SocketAddr>,
    /// `Server` (or `User-Agent`) of the responder.
    pub server: Option<String>,
    /// `received` / `rport` of the top Via: the address the gateway saw us at.
    pub received: Option<IpAddr>,
    pub rport: Option<u16>,
    pub local: Option<SocketAddr>,
    pub request_bytes: usize,
    /// What went wrong at the transport, when something did.
    pub failure: Option<TransportFailure>,
    pub tls: Option<TlsObservation>,
    /// One line: what was observed.
    pub detail: String,
    /// The likely cause and what to do, for anything but `ok`.
    pub cause: Option<String>,
    pub fix: Option<String>,
    /// The UDP size ladder (`check --mtu`), when it ran on this target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<crate::checks::mtu::MtuResult>,
    /// The final response itself (for media checks); not part of the JSON report.
    #[serde(skip)]
    pub response: Option<Response>,
}

/// One gateway of a trunk and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayReport {
    pub host: String,
    pub port: i64,
    pub priority: i64,
    /// `None` when the gateway was not resolved (bad port or transport).
    pub dns: Option<Resolution>,
    pub targets: Vec<TargetResult>,
}

/// Whether and how a trunk was probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkStatus {
    Probed,
    /// `is_active=false`: listed, linted, not probed.
    SkippedInactive,
    /// The transport is not one of the documented values, so there is nothing to probe with.
    SkippedInvalidTransport,
}

/// One trunk: its findings and its gateways' results.
#[derive(Debug, Clone, Serialize)]
pub struct TrunkReport {
    pub id: Option<String>,
    pub name: String,
    pub provider: String,
    /// `udp`, `tcp` or `tls`; the raw value when invalid.
    pub transport: String,
    pub active: bool,
    pub status: TrunkStatus,
    pub findings: Vec<Finding>,
    pub gateways: Vec<GatewayReport>,
}

impl TrunkReport {
    pub fn targets(&self) -> impl Iterator<Item = &TargetResult> {
        self.gateways.iter().flat_map(|g| g.targets.iter())
    }

    /// Healthy: every target ok and no error-level finding. Skipped trunks only count their findings.
    pub fn healthy(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
            && self.targets().all(|t| t.outcome == Outcome::Ok)
    }
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub trunks: usize,
    pub trunks_probed: usize,
    pub trunks_skipped: usize,
    pub trunks_healthy: usize,
    pub targets: usize,
    pub targets_ok: usize,
    pub targets_failed: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub findings: BTreeMap<&'static str, usize>,
    /// Every probed target ok and no error-level finding.
    pub healthy: bool,
    /// Origination URI addresses that answered healthy / did not.
    pub origination_ok: usize,
    pub origination_failed: usize,
}

/// The whole `check` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    /// RFC 3339 time the run started.
    pub started_at: String,
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
    pub trunks: Vec<TrunkReport>,
    pub summary: Summary,
    /// The address carriers saw this prober at, and whether it is behind NAT.
    pub egress: checks::path::Egress,
    /// Bolna's inbound side as a carrier reaches it (empty with `--no-origination`).
    pub origination: Vec<crate::origination::OriginationResult>,
}

impl Report {
    fn summarise(&mut self) {
        let mut s = Summary {
            trunks: self.trunks.len(),
            ..Summary::default()
        };
        for o in Outcome::ALL {
            s.outcomes.insert(o.as_str(), 0);
        }
        for sev in [Severity::Error, Severity::Warning, Severity::Info] {
            s.findings.insert(sev.as_str(), 0);
        }
        for t in &self.trunks {
            match t.status {
                TrunkStatus::Probed => s.trunks_probed += 1,
                _ => s.trunks_skipped += 1,
            }
            if t.healthy() {
                s.trunks_healthy += 1;
            }
            for f in &t.findings {
                *s.findings.entry(f.severity.as_str()).or_default() += 1;
            }
            for target in t.targets() {
                s.targets += 1;
                *s.outcomes.entry(target.outcome.as_str()).or_default() += 1;
                if target.outcome == Outcome::Ok {
                    s.targets_ok += 1;
                } else {
                    s.targets_failed += 1;
                }
            }
        }
        for o in self.origination.iter().flat_map(|o| o.targets.iter()) {
            if o.result.outcome == Outcome::Ok {
                s.origination_ok += 1;
            } else {
                s.origination_failed += 1;
            }
        }
        s.healthy = s.trunks_healthy == s.trunks && s.origination_failed == 0;
        self.summary = s;
    }

    /// Attaches the origination results and summarises again (a failed
    /// origination address makes the run unhealthy).
    pub fn set_origination(&mut self, results: Vec<crate::origination::OriginationResult>) {
        self.origination = results;
        self.summarise();
    }

    /// 0 when every probed target is ok and no error-level finding exists, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.summary.healthy {
            0
        } else {
            1
        }
    }
}

/// How `check` probes.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Skip the account-level auth checks (for a trunk described by flags,
    /// which cannot say how it authenticates).
    pub skip_auth_checks: bool,
}

/// Lints, resolves and probes every trunk, and summarises.
pub async fn check(
    trunks: Vec<Trunk>,
    resolver: &GatewayResolver,
    settings: &CheckSettings,
) -> Report {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut reports = Vec::with_capacity(trunks.len());
    let mut jobs: JoinSet<((usize, usize, usize), TargetResult)> = JoinSet::new();

    let udp = Arc::new(UdpProber::new(settings.exchange.clone()));
    for (ti, trunk) in trunks.iter().enumerate() {
        let status = match (&trunk.transport, trunk.is_active) {
            (_, false) => TrunkStatus::SkippedInactive,
            (Field::Invalid(_), _) => TrunkStatus::SkippedInvalidTransport,
            (Field::Valid(_), true) => TrunkStatus::Probed,
        };
        let transport_label = match &trunk.transport {
            Field::Valid(t) => t.as_str().to_string(),
            Field::Invalid(raw) => raw.clone(),
        };
        let mut report = TrunkReport {
            id: trunk.id.clone(),
            name: trunk.name.clone(),
            provider: trunk.provider.clone(),
            transport: transport_label,
            active: trunk.is_active,
            status,
            findings: if settings.skip_auth_checks {
                checks::lint::lint_flag_trunk(trunk)
            } else {
                checks::lint(trunk)
            },
            gateways: Vec::new(),
        };
        let mut gateways: Vec<_> = trunk.gateways.iter().collect();
        gateways.sort_by_key(|g| g.priority);
        for (gi, gw) in gateways.into_iter().enumerate() {
            let mut g = GatewayReport {
                host: gw.address.clone(),
                port: gw.port,
                priority: gw.priority,
                dns: None,
                targets: Vec::new(),
            };
            let (Some(transport), Some(port), TrunkStatus::Probed) =
                (trunk.transport.valid(), gw.port(), status)
            else {
                report.gateways.push(g);
                continue;
            };
            let resolution = resolver.resolve(&gw.address, transport).await;
            if let Some(failure) = &resolution.failure {
                g.targets.push(dns_failure_result(failure, port, transport));
            }
            for (ai, ip) in resolution.addresses.iter().enumerate() {
                let target = Target {
                    host: gw.address.as_str().into(),
                    addr: SocketAddr::new(*ip, port),
                    transport,
                };
                let config = settings.exchange.clone();
                let healthy = settings.healthy.clone();
                let limit = limit.clone();
                let udp = udp.clone();
                jobs.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    // UDP over the shared socket: ICMP errors still end a probe as
                    // refused, and an answer from another address is seen (and
                    // reported) instead of being dropped by a connected socket.
                    let ex = match target.transport {
                        Transport::Udp => udp.exchange(&target).await,
                        _ => transport::exchange(&target, &config).await,
                    };
                    ((ti, gi, ai), evaluate(ex, &healthy))
                });
            }
            g.dns = Some(resolution);
            report.gateways.push(g);
        }
        reports.push(report);
    }

    let mut done: Vec<((usize, usize, usize), TargetResult)> = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        if let Ok(item) = joined {
            done.push(item);
        }
    }
    done.sort_by_key(|(k, _)| *k);
    for ((ti, gi, _), result) in done {
        reports[ti].gateways[gi].targets.push(result);
    }

    explain_all(&mut reports, settings.exchange.timeout);
    add_media_and_path_findings(&trunks, &mut reports, settings.skip_auth_checks);
    let egress = checks::path::egress(reports.iter().flat_map(|t| t.targets()));
    let mut report = Report {
        version: env!("CARGO_PKG_VERSION"),
        started_at,
        duration: started.elapsed(),
        trunks: reports,
        summary: Summary::default(),
        egress,
        origination: Vec::new(),
    };
    report.summarise();
    report
}

/// Probes one target once: the OPTIONS exchange and its outcome (no cause or fix yet).
pub async fn probe_one(
    target: &Target,
    config: &ExchangeConfig,
    healthy: &HealthyCodes,
) -> TargetResult {
    evaluate(transport::exchange(target, config).await, healthy)
}

/// The result standing for a gateway that did not resolve.
pub fn dns_failure_result(failure: &DnsFailure, port: u16, transport: Transport) -> TargetResult {
    let mut r = blank(None, port, transport, Outcome::DnsError);
    r.detail = failure.describe();
    let (cause, fix) = checks::reachability::explain_dns(failure);
    r.cause = Some(cause);
    r.fix = Some(fix);
    r
}

/// Appends each probed trunk's media findings (from the SDP of its replies) and
/// ip_identifiers findings (from its gateways' addresses), keeping the findings
/// sorted most severe first.
fn add_media_and_path_findings(trunks: &[Trunk], reports: &mut [TrunkReport], skip_auth: bool) {
    for (trunk, report) in trunks.iter().zip(reports.iter_mut()) {
        if report.status != TrunkStatus::Probed {
            continue;
        }
        let mut extra = checks::media::media(trunk, report.targets());
        let resolved: Vec<(&str, &[IpAddr])> = report
            .gateways
            .iter()
            .filter_map(|g| Some((g.host.as_str(), g.dns.as_ref()?.addresses.as_slice())))
            .collect();
        if !skip_auth {
            extra.extend(checks::path::ip_identifiers(trunk, &resolved));
        }
        report.findings.extend(extra);
        report
            .findings
            .sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

/// A blank result for a target (all evidence empty), for callers outside this module.
pub fn blank_result(
    ip: Option<IpAddr>,
    port: u16,
    transport: Transport,
    outcome: Outcome,
) -> TargetResult {
    blank(ip, port, transport, outcome)
}

fn blank(ip: Option<IpAddr>, port: u16, transport: Transport, outcome: Outcome) -> TargetResult {
    TargetResult {
        ip,
        port,
        transport,
        outcome,
        status_code: None,
        reason: None,
        rtt: None,
        connect_time: None,
        retransmissions: 0,
        provisional: Vec::new(),
        stray_responses: 0,
        reply_from: None,
        server: None,
        received: None,
        rport: None,
        local: None,
        request_bytes: 0,
        failure: None,
        tls: None,
        detail: String::new(),
        cause: None,
        fix: None,
        mtu: None,
        response: None,
    }
}

/// Turns the evidence of one exchange into a result with an outcome, cause and fix.
pub fn evaluate(ex: Exchange, healthy: &HealthyCodes) -> TargetResult {
    let t = &ex.target;
    let mut r = blank(
        Some(t.addr.ip()),
        t.addr.port(),
        t.transport,
        Outcome::NetworkError,
    );
    r.local = ex.local;
    r.connect_time = ex.connect_time;
    r.tls = ex.tls.clone();
    r.request_bytes = ex.request_size;
    if let Some(tx) = &ex.transaction {
        r.retransmissions = tx.retransmissions();
        r.provisional = tx.provisionals().iter().map(|(c, _)| *c).collect();
        r.stray_responses = tx.strays();
        r.reply_from = tx.answered_from_elsewhere();
    }
    let final_response = ex.transaction.as_ref().and_then(|tx| match tx.outcome() {
        Some(TxOutcome::Final { response, rtt }) => Some((response.clone(), *rtt)),
        _ => None,
    });
    r.outcome = match (&final_response, &ex.failure) {
        (Some((resp, _)), _) if healthy.contains(resp.code) => Outcome::Ok,
        (Some(_), _) => Outcome::SipError,
        (None, Some(TransportFailure::Refused)) => Outcome::Refused,
        (None, Some(TransportFailure::ConnectTimeout)) => Outcome::Timeout,
        (None, Some(TransportFailure::Tls(_))) => Outcome::TlsError,
        (None, Some(_)) => Outcome::NetworkError,
        (None, None) => Outcome::Timeout,
    };
    if let Some((resp, rtt)) = final_response {
        r.status_code = Some(resp.code);
        r.reason = Some(printable(&resp.reason));
        r.rtt = Some(rtt);
        r.server = resp.server.as_deref().map(printable);
        r.received = resp.via_received;
        r.rport = resp.via_rport;
        r.response = Some(resp);
    }
    r.failure = ex.failure;
    r
}

/// Fills `detail`, `cause` and `fix` of every target result, once all are known
/// (a timeout can then name the address other carriers saw this prober at).
pub fn explain_all(reports: &mut [TrunkReport], timeout: Duration) {
    let seen_as = reports
        .iter()
        .flat_map(|t| t.targets())
        .find_map(|t| t.received);
    let ctx = checks::reachability::Context { timeout, seen_as };
    for t in reports
        .iter_mut()
        .flat_map(|t| t.gateways.iter_mut())
        .flat_map(|g| g.targets.iter_mut())
    {
        if t.outcome == Outcome::DnsError {
            continue;
        }
        let e = checks::reachability::explain(t, &ctx);
        t.detail = e.detail;
        t.cause = e.cause;
        t.fix = e.fix;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_codes_parse_classes_ranges_and_codes() {
        let h = HealthyCodes::parse("2xx, 401,480-489").unwrap();
        assert!(h.contains(200) && h.contains(299) && h.contains(401) && h.contains(486));
        assert!(!h.contains(403) && !h.contains(300));
        assert!(HealthyCodes::parse("abc").is_err());
        assert!(HealthyCodes::parse("").is_err());
        assert!(HealthyCodes::parse("99").is_err());
        assert!(HealthyCodes::parse("300-200").is_err());
        assert!(HealthyCodes::default().contains(202));
    }
}
