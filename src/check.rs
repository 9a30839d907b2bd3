//! `trunkprobe check`: lint every trunk, resolve and probe every gateway
//! address, run the size ladders (`--mtu`) and the origination check, and
//! build the [`Report`] with every failure explained.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::checks::origination::OriginationPlan;
use crate::checks::{self, mtu::findings as mtu_findings, reachability};
use crate::error::Result;
use crate::outcome::credentials::CredentialsResult;
use crate::outcome::WireMessage;
use crate::outcome::{MtuResult, Outcome};
use crate::probe::mtu::{mtu_ladder, MtuConfig, CHECK_LADDERS_IN_FLIGHT};
use crate::probe::{self, fan_out, ProbeSettings, Prober};
use crate::report::pcap::Capture;
use crate::report::progress::Progress;
use crate::report::{
    print_report, Format, GatewayReport, Report, Summary, TrunkReport, TrunkStatus,
};
use crate::resolve::GatewayResolver;
use crate::sip::invite::estimate_invite;
use crate::source::Source;
use crate::transport::Target;
use crate::trunk::{AuthType, Field, Transport, Trunk};

/// Validated settings of `check`.
pub struct Settings {
    pub source: Source,
    /// `--trunk`: only these trunks (ids or names); empty for all.
    pub only: Vec<String>,
    pub resolver: GatewayResolver,
    pub probe: ProbeSettings,
    /// The credentials check (REGISTER query) of userpass gateways; `None`
    /// with `--no-register`.
    pub credentials: Option<CredentialsPlan>,
    /// The size ladder's configuration with `--mtu`.
    pub mtu: Option<MtuConfig>,
    pub origination: OriginationPlan,
    pub format: Format,
    /// `--trace`: the messages stay in the report.
    pub trace: bool,
    /// `--pcap FILE`: the messages go to a capture.
    pub pcap: Option<std::path::PathBuf>,
}

/// Who the credentials check registers as.
#[derive(Clone, Default)]
pub struct CredentialsPlan {
    /// Overrides each trunk's auth_username (and, with `--gateway`, makes the
    /// trunk a userpass one).
    pub username: Option<String>,
    /// The password when the trunk carries none (a create-request body does).
    pub password: Option<crate::trunk::Secret>,
}

/// Runs `check`: loads the trunks, checks them, prints the report. The value is
/// the exit code (0 healthy, 1 problems found).
pub async fn run(settings: Settings) -> Result<u8> {
    let trunks = select(settings.source.load().await?, &settings.only)?;
    // Nothing is probed before the capture file can be written.
    let mut capture = match &settings.pcap {
        Some(path) => Some(Capture::create(path)?),
        None => None,
    };
    let mut report = check_all(trunks, &settings).await;
    let messages = take_messages(&mut report, settings.trace);
    if let Some(c) = &mut capture {
        for m in &messages {
            c.sip(m)?;
        }
    }
    print_report(&report, settings.format);
    if let (Some(c), Some(path)) = (capture, &settings.pcap) {
        let n = c.finish()?;
        eprintln!("{n} SIP messages written to {}", path.display());
    }
    Ok(report.exit_code())
}

/// Every SIP message of the report, in the order they crossed the wire; left
/// in the report when `keep` (`--trace`), else taken out of it.
fn take_messages(report: &mut Report, keep: bool) -> Vec<WireMessage> {
    let mut all = Vec::new();
    let mut take = |m: &mut Option<Vec<WireMessage>>| {
        if keep {
            all.extend(m.iter().flatten().cloned());
        } else {
            all.extend(m.take().into_iter().flatten());
        }
    };
    for g in report.trunks.iter_mut().flat_map(|t| t.gateways.iter_mut()) {
        for t in &mut g.targets {
            take(&mut t.messages);
            if let Some(a) = &mut t.authenticated {
                take(&mut a.messages);
            }
        }
        if let Some(c) = &mut g.credentials {
            take(&mut c.messages);
        }
    }
    for o in &mut report.origination {
        for t in &mut o.targets {
            take(&mut t.result.messages);
        }
    }
    all.sort_by_key(|m| m.wall);
    all
}

/// The trunks `--trunk` names (by id or name), in the list's order; all when
/// none is named. A name that matches nothing is an error listing what exists.
pub fn select(trunks: Vec<Trunk>, only: &[String]) -> Result<Vec<Trunk>> {
    if only.is_empty() {
        return Ok(trunks);
    }
    let named = |t: &Trunk, w: &str| t.id.as_deref() == Some(w) || t.name == w;
    let unknown: Vec<&String> = only
        .iter()
        .filter(|w| !trunks.iter().any(|t| named(t, w)))
        .collect();
    if !unknown.is_empty() {
        let there: Vec<String> = trunks
            .iter()
            .map(|t| match &t.id {
                Some(id) if *id != t.name => format!("{id} ({})", t.name),
                _ => t.name.clone(),
            })
            .collect();
        return Err(crate::error::Error::Usage(format!(
            "no trunk {}; the list has: {}",
            unknown
                .iter()
                .map(|u| format!("{:?}", crate::text::printable(u)))
                .collect::<Vec<_>>()
                .join(", "),
            if there.is_empty() {
                "none".to_string()
            } else {
                there.join(", ")
            }
        )));
    }
    Ok(trunks
        .into_iter()
        .filter(|t| only.iter().any(|w| named(t, w)))
        .collect())
}

/// Checks `trunks` and the origination URIs (at the same time), then runs the
/// ladders when asked, and returns the summarised report.
pub async fn check_all(trunks: Vec<Trunk>, settings: &Settings) -> Report {
    use std::io::IsTerminal;
    let progress = if std::io::stderr().is_terminal() {
        Progress::enabled()
    } else {
        Progress::default()
    };
    let line = ProgressLine::start(&progress);
    let prober = Prober::from_settings(&settings.probe);
    let uris = settings.origination.uris(&trunks);
    let (mut report, origination) = tokio::join!(
        check(
            &trunks,
            &settings.resolver,
            &prober,
            &settings.probe,
            &progress
        ),
        probe::origination::check(
            &uris,
            &settings.resolver,
            &prober,
            settings.probe.concurrency
        )
    );
    if let Some(plan) = &settings.credentials {
        progress.stage("credentials checks", 0);
        run_credentials(&mut report, &trunks, plan, &settings.probe).await;
    }
    if let Some(mtu) = &settings.mtu {
        run_ladders(&mut report, &trunks, mtu, &progress).await;
    }
    line.finish().await;
    report.set_origination(origination);
    report
}

/// Draws the progress line on stderr every 200 ms while `check` runs (only
/// when [`Progress`] is enabled: stderr is a terminal); erases it at the end.
struct ProgressLine {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressLine {
    fn start(progress: &Progress) -> ProgressLine {
        if !progress.is_enabled() {
            return ProgressLine {
                stop: None,
                task: None,
            };
        }
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let progress = progress.clone();
        let task = tokio::spawn(async move {
            use std::io::Write as _;
            let mut drawn = false;
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Some(line) = progress.line() {
                            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
                            drawn = true;
                        }
                    }
                    _ = &mut stopped => break,
                }
            }
            if drawn {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        });
        ProgressLine {
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Lints, resolves and probes every trunk, and summarises.
pub async fn check(
    trunks: &[Trunk],
    resolver: &GatewayResolver,
    prober: &Prober,
    settings: &ProbeSettings,
    progress: &Progress,
) -> Report {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut reports: Vec<TrunkReport> = trunks
        .iter()
        .map(|t| trunk_report(t, settings.skip_auth_checks))
        .collect();

    // Every gateway to resolve, as (trunk, gateway) positions in the report.
    let mut lookups = Vec::new();
    for (ti, (trunk, report)) in trunks.iter().zip(&reports).enumerate() {
        let (Some(transport), TrunkStatus::Probed) = (trunk.transport.valid(), report.status)
        else {
            continue;
        };
        for (gi, g) in report.gateways.iter().enumerate() {
            if let Ok(port) = u16::try_from(g.port) {
                if port != 0 {
                    lookups.push((ti, gi, g.host.clone(), port, transport));
                }
            }
        }
    }
    progress.stage("resolving gateways", lookups.len());
    let resolved = fan_out(
        lookups,
        settings.concurrency,
        |(ti, gi, host, port, transport)| {
            let (resolver, progress) = (resolver.clone(), progress.clone());
            async move {
                let resolution = resolver.resolve(&host, transport).await;
                progress.tick();
                (ti, gi, host, port, transport, resolution)
            }
        },
    )
    .await;

    let mut targets = Vec::new();
    for (ti, gi, host, port, transport, resolution) in resolved {
        let g = &mut reports[ti].gateways[gi];
        if let Some(failure) = &resolution.failure {
            g.targets
                .push(reachability::dns_failure_result(failure, port, transport));
        }
        for ip in &resolution.addresses {
            let target = Target {
                host: host.as_str().into(),
                addr: SocketAddr::new(*ip, port),
                transport,
            };
            targets.push(((ti, gi), target));
        }
        g.dns = Some(resolution);
    }
    progress.stage("probing targets", targets.len());
    let probed = fan_out(targets, settings.concurrency, |(at, target)| {
        let (prober, progress) = (prober.clone(), progress.clone());
        async move {
            let r = prober.probe(&target).await;
            progress.tick();
            (at, r)
        }
    })
    .await;
    for ((ti, gi), result) in probed {
        reports[ti].gateways[gi].targets.push(result);
    }

    explain_all(&mut reports, settings.exchange.timeout);
    add_media_and_path_findings(trunks, &mut reports, settings.skip_auth_checks);
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

/// A trunk's entry before probing: its status, lint findings and gateways in
/// priority order.
fn trunk_report(trunk: &Trunk, skip_auth_checks: bool) -> TrunkReport {
    let status = match (&trunk.transport, trunk.is_active) {
        _ if trunk.invalid.is_some() => TrunkStatus::InvalidDefinition,
        (_, false) => TrunkStatus::SkippedInactive,
        (Field::Invalid(_), _) => TrunkStatus::SkippedInvalidTransport,
        (Field::Valid(_), true) => TrunkStatus::Probed,
    };
    let transport = match &trunk.transport {
        Field::Valid(t) => t.as_str().to_string(),
        Field::Invalid(raw) => raw.clone(),
    };
    let mut gateways: Vec<_> = trunk.gateways.iter().collect();
    gateways.sort_by_key(|g| g.priority);
    TrunkReport {
        id: trunk.id.clone(),
        name: trunk.name.clone(),
        provider: trunk.provider.clone(),
        transport,
        active: trunk.is_active,
        status,
        findings: if skip_auth_checks {
            checks::lint::lint_flag_trunk(trunk)
        } else {
            checks::lint(trunk)
        },
        gateways: gateways
            .into_iter()
            .map(|gw| GatewayReport {
                host: gw.address.clone(),
                port: gw.port,
                priority: gw.priority,
                dns: None,
                targets: Vec::new(),
                credentials: None,
            })
            .collect(),
    }
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

/// Fills `detail`, `cause` and `fix` of every target result, once all are known
/// (a timeout can then name the address other carriers saw this prober at).
pub fn explain_all(reports: &mut [TrunkReport], timeout: Duration) {
    let seen_as = reports
        .iter()
        .flat_map(|t| t.targets())
        .find_map(|t| t.received);
    let ctx = reachability::Context { timeout, seen_as };
    for t in reports
        .iter_mut()
        .flat_map(|t| t.gateways.iter_mut())
        .flat_map(|g| g.targets.iter_mut())
    {
        if t.outcome == Outcome::DnsError {
            continue;
        }
        let e = reachability::explain(t, &ctx);
        t.detail = e.detail;
        t.cause = e.cause;
        t.fix = e.fix;
    }
}

/// Sends the REGISTER query (a credentials check that changes no binding) to
/// the first address of each gateway of a userpass trunk that answered its
/// OPTIONS, stores the evidence on the gateway, adds the findings to its trunk
/// and summarises again.
pub async fn run_credentials(
    report: &mut Report,
    trunks: &[Trunk],
    plan: &CredentialsPlan,
    settings: &ProbeSettings,
) {
    let started = Instant::now();
    let mut queries = Vec::new();
    let mut retries = Vec::new();
    for (ti, (t, trunk)) in report.trunks.iter().zip(trunks).enumerate() {
        let userpass = trunk.auth_type.valid() == Some(AuthType::Userpass);
        let username = plan
            .username
            .clone()
            .or_else(|| trunk.auth_username.clone().filter(|_| userpass))
            .filter(|u| !u.is_empty());
        let (TrunkStatus::Probed, Some(username)) = (t.status, username) else {
            continue;
        };
        let password = trunk
            .auth_password
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| plan.password.clone());
        for (gi, g) in t.gateways.iter().enumerate() {
            let answered = g
                .targets
                .iter()
                .find(|r| r.ip.is_some() && matches!(r.outcome, Outcome::Ok | Outcome::SipError));
            let Some(r) = answered else { continue };
            let Some(ip) = r.ip else { continue };
            let target = Target {
                host: g.host.as_str().into(),
                addr: SocketAddr::new(ip, r.port),
                transport: r.transport,
            };
            queries.push(((ti, gi), target, username.clone(), password.clone()));
        }
        // OPTIONS answered 401/407: asked again with the credentials.
        let Some(password) = &password else { continue };
        for (gi, g) in t.gateways.iter().enumerate() {
            for (ai, r) in g.targets.iter().enumerate() {
                let (Some(ip), Some(401 | 407)) = (r.ip, r.status_code) else {
                    continue;
                };
                let target = Target {
                    host: g.host.as_str().into(),
                    addr: SocketAddr::new(ip, r.port),
                    transport: r.transport,
                };
                retries.push(((ti, gi, ai), target, username.clone(), password.clone()));
            }
        }
    }
    let exchange = settings.exchange.clone();
    let retried = fan_out(
        retries,
        settings.concurrency,
        |(at, target, username, password)| {
            let exchange = exchange.clone();
            async move {
                let e = probe::credentials::options(&target, &exchange, &username, &password).await;
                (at, e)
            }
        },
    )
    .await;
    let ctx = reachability::Context {
        timeout: settings.exchange.timeout,
        seen_as: None,
    };
    for ((ti, gi, ai), evidence) in retried {
        let r = &mut report.trunks[ti].gateways[gi].targets[ai];
        if let CredentialsResult::Accepted { code } = evidence.result {
            r.status_code = Some(code);
            r.reason = evidence
                .responses
                .last()
                .and_then(|l| l.split_once(' '))
                .map(|(_, reason)| reason.to_string());
            r.outcome = if settings.healthy.contains(code) {
                Outcome::Ok
            } else {
                Outcome::SipError
            };
            let e = reachability::explain(r, &ctx);
            r.detail = format!("{} (after a digest answer to its challenge)", e.detail);
            r.cause = e.cause;
            r.fix = e.fix;
        }
        r.authenticated = Some(Box::new(evidence));
    }
    let done = fan_out(
        queries,
        settings.concurrency,
        |(at, target, username, password)| {
            let exchange = exchange.clone();
            async move {
                let e = probe::credentials::check(&target, &exchange, &username, password.as_ref())
                    .await;
                (at, e)
            }
        },
    )
    .await;
    for ((ti, gi), evidence) in done {
        let trunk_report = &mut report.trunks[ti];
        let host = trunk_report.gateways[gi].host.clone();
        if let Some(f) = checks::credentials::finding(&host, &evidence) {
            trunk_report.findings.push(f);
            trunk_report
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        trunk_report.gateways[gi].credentials = Some(evidence);
    }
    report.duration += started.elapsed();
    report.summarise();
}

/// Runs the ladder on every UDP target of `report` that answered its OPTIONS,
/// stores each result on the target (`mtu`), adds the findings to its trunk and
/// summarises again. `trunks` are the trunks `report` was made from, in order.
pub async fn run_ladders(
    report: &mut Report,
    trunks: &[Trunk],
    config: &MtuConfig,
    progress: &Progress,
) {
    let started = Instant::now();
    let mut ladders = Vec::new();
    for (ti, t) in report.trunks.iter().enumerate() {
        for (gi, g) in t.gateways.iter().enumerate() {
            for (ai, r) in g.targets.iter().enumerate() {
                let answered = matches!(r.outcome, Outcome::Ok | Outcome::SipError);
                let (Some(ip), Transport::Udp, true) = (r.ip, r.transport, answered) else {
                    continue;
                };
                let target = Target {
                    host: g.host.as_str().into(),
                    addr: SocketAddr::new(ip, r.port),
                    transport: Transport::Udp,
                };
                ladders.push(((ti, gi, ai), target));
            }
        }
    }
    progress.stage("UDP size ladders", ladders.len());
    let done: Vec<(_, MtuResult)> = fan_out(ladders, CHECK_LADDERS_IN_FLIGHT, |(at, target)| {
        let (config, progress) = (config.clone(), progress.clone());
        async move {
            let r = mtu_ladder(&target, &config).await;
            progress.tick();
            (at, r)
        }
    })
    .await;
    for ((ti, gi, ai), mut result) in done {
        let trunk_report = &mut report.trunks[ti];
        let gateway = &trunk_report.gateways[gi];
        if let Some(trunk) = trunks.get(ti) {
            let invite = estimate_invite(trunk, &gateway.host, result.target.port());
            result.invite_bytes = Some(invite.bytes);
            for f in mtu_findings(&result, invite) {
                if !trunk_report.findings.contains(&f) {
                    trunk_report.findings.push(f);
                }
            }
            trunk_report
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        trunk_report.gateways[gi].targets[ai].mtu = Some(result);
    }
    report.duration += started.elapsed();
    report.summarise();
}
