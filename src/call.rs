//! `trunkprobe call`: one test call through a trunk, the way Bolna places it,
//! RTP both ways, and a verdict on the audio.
//!
//! Safety first: nothing is dialled without `--to`; what is about to happen is
//! said on stderr before the INVITE; the call always ends (BYE after a 2xx,
//! CANCEL before one) on completion, error, SIGINT/SIGTERM and at
//! `--max-duration` ([`crate::probe::call::place`]).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::checks::call::{judge, Context, Judgement, Verdict};
use crate::error::{Error, Result};
use crate::outcome::call::Signalling;
use crate::outcome::Outcome;
use crate::probe::call::{place, CallOptions, CallPlan, Until};
use crate::probe::{ProbeSettings, Prober};
use crate::report::call::{to_text, CallReport};
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
    eprintln!(
        "trunkprobe: calling {} through {:?} at {} ({}) from {}; {} of media after {}, ended by {} within {}",
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
    let evidence = place(&plan, stop_signal()?).await;
    if let (Some(mut c), Some(path)) = (capture, &settings.pcap) {
        for p in &evidence.packets {
            c.datagram(p.wall, p.src, p.dst, &p.bytes)?;
        }
        let n = c.finish()?;
        eprintln!("{n} packets (SIP, RTP, RTCP) written to {}", path.display());
    }
    let options = match (options, &evidence.signalling) {
        (None, Signalling::NoResponse) => {
            Some(self::options(&Prober::from_settings(&settings.probe), &plan.target).await)
        }
        (o, _) => o,
    };
    let mut ctx = Context {
        options_answered: options == Some(Outcome::Ok) || options == Some(Outcome::SipError),
        tcp_retry: None,
        optimistic: trunk.media_encryption_optimistic,
    };
    // The guide's fragmentation symptom: confirm it with the same call over TCP.
    if evidence.signalling == Signalling::NoResponse
        && transport == Transport::Udp
        && ctx.options_answered
    {
        eprintln!("trunkprobe: no answer to the INVITE over UDP; trying once over TCP to confirm");
        let mut tcp = plan.clone();
        tcp.target.transport = Transport::Tcp;
        ctx.tcp_retry = Some(Box::new(place(&tcp, stop_signal()?).await));
    }
    let judgement = judge(&evidence, &ctx);
    let report = CallReport {
        version: env!("CARGO_PKG_VERSION"),
        trunk_id: trunk.id.clone(),
        trunk: trunk.label().to_string(),
        options: options.map(Outcome::as_str),
        verdict: judgement.verdict,
        judgement: judgement.clone(),
        call: evidence,
        tcp_retry: ctx.tcp_retry.map(|b| *b),
    };
    match settings.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        ),
        Format::Text => print!("{}", to_text(&report, Style::detect())),
    }
    Ok(exit_code(&judgement))
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

/// Resolves on SIGINT or SIGTERM.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    let io = |source| Error::Io {
        context: "cannot install signal handlers".into(),
        source,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
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
