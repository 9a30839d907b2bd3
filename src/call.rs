//! `trunkprobe call`: one test call through a trunk, the way Bolna places it,
//! RTP both ways, and a verdict on the audio.
//!
//! Safety first: nothing is dialled without `--to`; what is about to happen is
//! said on stderr before the INVITE; the call always ends (BYE after a 2xx,
//! CANCEL before one) on completion, error, SIGINT/SIGTERM and at
//! `--max-duration` ([`crate::probe::call::place`]).
//!
//! `--calls N` places N such calls from one process, started `--call-rate`
//! per second: each its own dialog, RTP port pair and verdict, all on one
//! runtime (one timer wheel, one poll loop), and every one of them ended by
//! the same rules; SIGINT/SIGTERM ends those up and starts no more.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::checks::call::{judge, Context, Judgement, Verdict};
use crate::error::{Error, Result};
use crate::outcome::call::Signalling;
use crate::outcome::Outcome;
use crate::probe::call::{place, CallOptions, CallPlan, Until};
use crate::probe::{ProbeSettings, Prober};
use crate::report::call::{calls_to_text, to_text, CallReport, CallsReport};
use crate::report::{Format, Style};
use crate::resolve::GatewayResolver;
use crate::source::Source;
use crate::transport::Target;
use crate::trunk::{Secret, Transport, Trunk};

/// Validated settings of `call`.
pub struct Settings {
    pub source: Source,
    pub resolver: GatewayResolver,
    pub probe: ProbeSettings,
    pub to: String,
    pub trunk: Option<String>,
    pub from: Option<String>,
    pub auth_username: Option<String>,
    pub password: Option<Secret>,
    pub duration: Duration,
    pub until: Until,
    pub max_duration: Duration,
    pub dtmf: String,
    pub media_ip: Option<std::net::IpAddr>,
    /// `--trace`: every SIP message whole in the report.
    pub trace: bool,
    /// `--pcap FILE`: the call's SIP, RTP and RTCP as a capture.
    pub pcap: Option<std::path::PathBuf>,
    pub format: Format,
    /// `--calls`: how many calls to place (1 = the one-call report).
    pub calls: usize,
    /// `--call-rate`: calls started per second when there are several.
    pub call_rate: f64,
}

/// Runs `call`; the exit code is 0 for `two_way_audio`, 1 for any other verdict.
pub async fn run(settings: Settings) -> Result<u8> {
    let trunks = settings.source.load().await?;
    let trunk = pick_trunk(&trunks, settings.trunk.as_deref())?;
    let transport = trunk.transport.valid().ok_or_else(|| {
        Error::Usage(format!(
            "trunk {:?} has no valid transport to call over",
            trunk.label()
        ))
    })?;
    // Refuse what cannot be called before resolving or probing anything.
    let shape = |target: Target| {
        CallPlan::for_trunk(
            trunk,
            target,
            settings.probe.exchange.clone(),
            &settings.to,
            &CallOptions {
                from: settings.from.clone(),
                auth_username: settings.auth_username.clone(),
                password: settings.password.clone(),
                duration: settings.duration,
                until: settings.until,
                max_duration: settings.max_duration,
                dtmf: settings.dtmf.clone(),
                media_ip: settings.media_ip,
            },
        )
        .map_err(Error::Usage)
    };
    shape(Target {
        host: "unresolved".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        transport,
    })?;
    let (gateway, options) = first_answering(trunk, transport, &settings).await?;
    let mut plan = shape(gateway)?;
    plan.trace = settings.trace;
    plan.capture = settings.pcap.is_some();
    // Written after the call, but nothing is dialled unless it can be.
    let capture = match &settings.pcap {
        Some(path) => Some(crate::report::pcap::Capture::create(path)?),
        None => None,
    };
    let several = match settings.calls {
        0 | 1 => String::new(),
        n => format!("{n} calls, {} per second, ", settings.call_rate),
    };
    eprintln!(
        "trunkprobe: calling {} {several}through {:?} at {} ({}) from {}; {} of media after {}, ended by {} within {}",
        plan.to,
        trunk.label(),
        plan.target.host,
        addr(plan.target.addr, transport),
        plan.from,
        humantime::format_duration(plan.duration),
        match plan.until {
            Until::Answer => "the answer",
            Until::EarlyMedia => "early media",
        },
        match plan.until {
            Until::Answer => "BYE",
            Until::EarlyMedia => "CANCEL",
        },
        humantime::format_duration(plan.max_duration),
    );
    let stop = stop_on_signal()?;
    let ctx = OneCall {
        trunk,
        options,
        probe: &settings.probe,
        probed: tokio::sync::OnceCell::new(),
        stop: stop.clone(),
    };
    let reports = if settings.calls <= 1 {
        vec![ctx.run(&plan).await]
    } else {
        many(&ctx, &plan, settings.calls, settings.call_rate).await
    };
    if let (Some(mut c), Some(path)) = (capture, &settings.pcap) {
        let mut packets: Vec<_> = reports.iter().flat_map(|r| &r.call.packets).collect();
        packets.sort_by_key(|p| p.wall);
        for p in packets {
            c.datagram(p.wall, p.src, p.dst, &p.bytes)?;
        }
        let n = c.finish()?;
        eprintln!("{n} packets (SIP, RTP, RTCP) written to {}", path.display());
    }
    let code = match reports.iter().map(|r| exit_code(&r.judgement)).max() {
        Some(0) if reports.len() == settings.calls.max(1) => 0,
        _ => 1,
    };
    if settings.calls <= 1 {
        let report = &reports[0];
        match settings.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(report).expect("the report serialises")
            ),
            Format::Text => print!("{}", to_text(report, Style::detect())),
        }
        return Ok(code);
    }
    let mut verdicts = BTreeMap::new();
    for r in &reports {
        *verdicts.entry(r.verdict.as_str()).or_insert(0) += 1;
    }
    let all = CallsReport {
        version: env!("CARGO_PKG_VERSION"),
        trunk_id: trunk.id.clone(),
        trunk: trunk.label().to_string(),
        requested: settings.calls,
        placed: reports.len(),
        call_rate: settings.call_rate,
        verdicts,
        calls: reports,
    };
    match settings.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("the report serialises")
        ),
        Format::Text => print!("{}", calls_to_text(&all, Style::detect())),
    }
    Ok(code)
}

/// What every call of one run shares: the trunk, the first OPTIONS answer,
/// the probe settings (for the OPTIONS a silent INVITE asks) and the stop.
struct OneCall<'a> {
    trunk: &'a Trunk,
    options: Option<Outcome>,
    probe: &'a ProbeSettings,
    /// The OPTIONS a silent INVITE asks, asked once for all the calls of a run.
    probed: tokio::sync::OnceCell<Outcome>,
    stop: watch::Receiver<bool>,
}

impl OneCall<'_> {
    /// Places one call, confirms a silent UDP INVITE over TCP, and judges it.
    async fn run(&self, plan: &CallPlan) -> CallReport {
        let evidence = place(plan, stopped(self.stop.clone())).await;
        let options = match (self.options, &evidence.signalling) {
            (None, Signalling::NoResponse) => Some(
                *self
                    .probed
                    .get_or_init(|| async {
                        self::options(&Prober::from_settings(self.probe), &plan.target).await
                    })
                    .await,
            ),
            (o, _) => o,
        };
        let mut ctx = Context {
            options_answered: options == Some(Outcome::Ok) || options == Some(Outcome::SipError),
            tcp_retry: None,
            optimistic: self.trunk.media_encryption_optimistic,
        };
        // The guide's fragmentation symptom: confirm it with the same call over TCP.
        if evidence.signalling == Signalling::NoResponse
            && plan.target.transport == Transport::Udp
            && ctx.options_answered
            && !*self.stop.borrow()
        {
            eprintln!(
                "trunkprobe: no answer to the INVITE over UDP; trying once over TCP to confirm"
            );
            let mut tcp = plan.clone();
            tcp.target.transport = Transport::Tcp;
            ctx.tcp_retry = Some(Box::new(place(&tcp, stopped(self.stop.clone())).await));
        }
        let judgement = judge(&evidence, &ctx);
        CallReport {
            version: env!("CARGO_PKG_VERSION"),
            trunk_id: self.trunk.id.clone(),
            trunk: self.trunk.label().to_string(),
            options: options.map(Outcome::as_str),
            verdict: judgement.verdict,
            judgement,
            call: evidence,
            tcp_retry: ctx.tcp_retry.map(|b| *b),
        }
    }
}

/// Phases of the shared RTP grid, [`GRID_SLOT`] apart (4 × 5 ms = one frame).
const GRID_SLOTS: usize = 4;
const GRID_SLOT: Duration = Duration::from_millis(5);

/// `--calls N`: the calls started `rate` per second, all in flight together on
/// this task, each its own Call-ID, tags and RTP ports. A stop starts no more.
async fn many(ctx: &OneCall<'_>, plan: &CallPlan, n: usize, rate: f64) -> Vec<CallReport> {
    // A SIP socket and an RTP/RTCP pair each, with the calls in flight together.
    raise_open_files(3 * n as u64 + 64);
    let t0 = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let calls = (0..n).map(|i| {
        let mut stop = ctx.stop.clone();
        // RTP on a shared 20 ms grid in GRID_SLOTS phases: a quarter of the
        // calls send in each wake-up, so one wake serves many calls while no
        // stream waits behind more than a quarter of the others.
        let mut plan = plan.clone();
        plan.media_grid = Some(t0 + GRID_SLOT * (i % GRID_SLOTS) as u32);
        async move {
            let at = t0 + gap.mul_f64(i as f64);
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
            if *stop.borrow() {
                return None;
            }
            Some(ctx.run(&plan).await)
        }
    });
    let done = futures_util::future::join_all(calls).await;
    let placed: Vec<CallReport> = done.into_iter().flatten().collect();
    if placed.len() < n {
        eprintln!(
            "trunkprobe: stopped; {} of {n} calls were placed, all of them ended",
            placed.len()
        );
    }
    placed
}

/// Lifts the soft limit on open files toward `want` (at most the hard
/// limit); where it cannot, a call that finds no socket reports it.
fn raise_open_files(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Resolves once the run is told to stop.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn exit_code(j: &Judgement) -> u8 {
    if j.verdict == Verdict::TwoWayAudio {
        0
    } else {
        1
    }
}

/// The trunk named by `--trunk`, or the only one.
fn pick_trunk<'a>(trunks: &'a [Trunk], wanted: Option<&str>) -> Result<&'a Trunk> {
    let names = || {
        trunks
            .iter()
            .map(|t| match &t.id {
                Some(id) => format!("{id} ({})", t.label()),
                None => t.label().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(w) => trunks
            .iter()
            .find(|t| t.id.as_deref() == Some(w) || t.name == w)
            .ok_or_else(|| Error::Usage(format!("no trunk {w:?}; the list has: {}", names()))),
        None if trunks.len() == 1 => Ok(&trunks[0]),
        None => Err(Error::Usage(format!(
            "{} trunks: name one with --trunk ID|NAME ({})",
            trunks.len(),
            names()
        ))),
    }
    .and_then(|t| match &t.invalid {
        Some(why) => Err(Error::Usage(format!(
            "trunk {:?} cannot be called: {}",
            t.label(),
            why.describe()
        ))),
        None => Ok(t),
    })
}

/// The gateway address to call: with several, the first in priority order
/// that answers OPTIONS (any final response), else the first; with one, that
/// one, unprobed (its OPTIONS are only asked when the INVITE goes unanswered).
async fn first_answering(
    trunk: &Trunk,
    transport: Transport,
    settings: &Settings,
) -> Result<(Target, Option<Outcome>)> {
    let mut gateways: Vec<_> = trunk.gateways.iter().collect();
    gateways.sort_by_key(|g| g.priority);
    let mut candidates = Vec::new();
    for gw in gateways {
        let Some(port) = gw.port() else { continue };
        let res = settings.resolver.resolve(&gw.address, transport).await;
        for ip in &res.addresses {
            candidates.push(Target {
                host: gw.address.as_str().into(),
                addr: SocketAddr::new(*ip, port),
                transport,
            });
        }
    }
    if candidates.len() == 1 {
        return Ok((candidates.remove(0), None));
    }
    let prober = Prober::from_settings(&settings.probe);
    let mut first: Option<(Target, Option<Outcome>)> = None;
    for target in candidates {
        let outcome = options(&prober, &target).await;
        if matches!(outcome, Outcome::Ok | Outcome::SipError) {
            return Ok((target, Some(outcome)));
        }
        first.get_or_insert((target, Some(outcome)));
    }
    first.ok_or_else(|| {
        Error::Usage(format!(
            "trunk {:?} has no gateway address to call (none resolved)",
            trunk.label()
        ))
    })
}

/// One OPTIONS probe of the address, said on stderr.
async fn options(prober: &Prober, target: &Target) -> Outcome {
    let r = prober.probe(target).await;
    eprintln!(
        "trunkprobe: OPTIONS to {} ({}): {}",
        target.host,
        addr(target.addr, target.transport),
        r.outcome.as_str()
    );
    r.outcome
}

/// An address with its transport, as the call's stderr lines show it.
fn addr(a: SocketAddr, t: Transport) -> String {
    format!("{a}/{}", t.as_str())
}

/// A stop that turns true on the first SIGINT or SIGTERM: every call in
/// flight hangs up (CANCEL or BYE) and no more are started.
fn stop_on_signal() -> Result<watch::Receiver<bool>> {
    let io = |source| Error::Io {
        context: "cannot install signal handlers".into(),
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trunk_is_picked_by_id_or_name_and_an_unknown_one_lists_them() {
        let mut a = Trunk::with_defaults("alpha");
        a.id = Some("id-a".into());
        let b = Trunk::with_defaults("beta");
        let list = [a, b];
        assert_eq!(pick_trunk(&list, Some("id-a")).unwrap().name, "alpha");
        assert_eq!(pick_trunk(&list, Some("beta")).unwrap().name, "beta");
        let e = pick_trunk(&list, Some("gamma")).unwrap_err().to_string();
        assert!(e.contains("id-a (alpha)") && e.contains("beta"), "{e}");
        assert!(pick_trunk(&list, None).is_err());
    }
}
