//! The trunks being probed: applying a new trunk list (add, remove,
//! reschedule) without losing the state of unchanged trunks, and a task per
//! gateway name that DNS resolves, re-resolving as its TTL allows (IP literals
//! need none) and keeping a [`TargetHandle`] per address.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::findings::{self, SharedFindings, TrunkFindings};
use super::health::Hysteresis;
use super::ladders::MtuSchedule;
use super::shard::{shard_key, Shard};
use super::target::{TargetHandle, TargetJob};
use super::wheel::Wheel;
use crate::checks;
use crate::metrics::{Metrics, TargetLabels, TrunkState};
use crate::probe::Prober;
use crate::resolve::{DnsFailure, GatewayResolver, Resolution};
use crate::transport::{StreamProber, Target};
use crate::trunk::{Transport, Trunk};

/// Shortest and longest time between two lookups of a gateway name (TTL clamped to this).
/// The shortest is the default of `--dns-min-interval`.
pub const DNS_MIN_INTERVAL: Duration = Duration::from_secs(30);
pub const DNS_MAX_INTERVAL: Duration = Duration::from_secs(300);
/// Read size of a kept connection: one OPTIONS answer a qualify interval
/// (a few hundred bytes) fits, and 10,000 kept connections hold 20 MiB of
/// buffers rather than the 160 MiB of `ping`'s 16 KiB.
const KEPT_READ_BUFFER: usize = 2 * 1024;

/// How long to keep a lookup: its TTL clamped to `min` ..= [`DNS_MAX_INTERVAL`];
/// failures retry at `min`.
pub fn dns_refresh_after(res: &Resolution, min: Duration) -> Option<Duration> {
    if res.literal || res.pinned {
        return None;
    }
    let min = min.min(DNS_MAX_INTERVAL);
    if res.failure.is_some() {
        return Some(min);
    }
    let ttl = Duration::from_secs(res.ttl.unwrap_or(300) as u64);
    Some(ttl.clamp(min, DNS_MAX_INTERVAL))
}

/// What every loop shares.
pub struct Ctx {
    /// `--tcp-connections kept`: each TCP/TLS target keeps its connection.
    pub kept: Option<Kept>,
    pub metrics: Arc<Metrics>,
    /// The status page's memory (`/`, `/logs`).
    pub board: Arc<crate::report::status::StatusBoard>,
    pub resolver: GatewayResolver,
    /// UDP probes share one socket per address family and its transaction table.
    pub prober: Prober,
    pub hysteresis: Hysteresis,
    pub shard: Shard,
    pub skip_auth_checks: bool,
    /// `--dns-min-interval`: the shortest time between two lookups of a gateway name.
    pub dns_min_interval: Duration,
    /// Becomes true at shutdown: loops stop scheduling, in-flight probes finish.
    pub stop: watch::Receiver<bool>,
    /// The UDP size ladder on its slow schedule; `None` with `--mtu-interval 0`.
    pub mtu: Option<MtuSchedule>,
    /// When the daemon started, for the "first probe sent" log line.
    pub started: Instant,
    /// Set by the first probe sent (start-up time is measured to it).
    pub first_probe_sent: AtomicBool,
    /// Every target's timers.
    pub wheel: Wheel,
}

/// Kept TCP/TLS connections (`--tcp-connections kept`).
#[derive(Debug, Clone, Copy)]
pub struct Kept {
    /// RFC 5626 CRLF ping after this long idle (`--tcp-keepalive`).
    pub keepalive: Option<Duration>,
}

pub(super) struct Running {
    /// Shared with the trunk's findings.
    pub(super) trunk: Arc<Trunk>,
    pub(super) generation: u64,
    /// The targets of its IP-literal (and pinned) gateways; dropped, they stop.
    pub(super) targets: Vec<TargetHandle>,
    /// A task per gateway name that DNS resolves, owning that gateway's
    /// targets. Dropping the set aborts them all. `None` while there is no such
    /// gateway (an empty set still allocates; 25,000 IP-literal trunks, 1.8 MB).
    pub(super) tasks: Option<JoinSet<()>>,
    /// Static and learnt findings, shared with the trunk's probe loops.
    pub(super) findings: SharedFindings,
    /// What is wrong with the latest record of this trunk when it does not fit
    /// the schema (then `trunk` is its last good definition, if it had one).
    pub(super) broken: Option<String>,
}

/// The trunks being probed, keyed by trunk id (or name when there is no id).
pub struct Fleet {
    pub(super) ctx: Arc<Ctx>,
    pub(super) running: HashMap<String, Running>,
}

/// The key of each trunk in a list: its id, else its label, made unique.
pub fn trunk_keys(trunks: &[Trunk]) -> Vec<String> {
    let mut seen = HashSet::new();
    trunks
        .iter()
        .map(|t| {
            let base = t.id.clone().unwrap_or_else(|| t.label().to_string());
            let mut key = base.clone();
            let mut n = 1;
            while !seen.insert(key.clone()) {
                n += 1;
                key = format!("{base}#{n}");
            }
            key
        })
        .collect()
}

/// One log line per change of a trunk's definition between fitting the
/// schema and not (not one per refresh).
fn log_definition(key: &str, trunk: &Trunk, broken: Option<&str>) {
    match (broken, trunk.invalid.is_some()) {
        (Some(why), false) => tracing::warn!(
            trunk_id = %key,
            trunk = %trunk.label(),
            problem = %why,
            "the trunk's new definition does not fit the schema; probing its last good definition"
        ),
        (Some(why), true) => tracing::warn!(
            trunk_id = %key,
            problem = %why,
            "the trunk's definition does not fit the schema; shown, not probed"
        ),
        (None, _) => tracing::info!(
            trunk_id = %key,
            trunk = %trunk.label(),
            "the trunk's definition fits the schema again"
        ),
    }
}

/// Whether a change needs the trunk's probes restarted (rather than only new findings).
pub(super) fn probing_changed(a: &Trunk, b: &Trunk) -> bool {
    a.gateways != b.gateways
        || a.transport != b.transport
        || a.qualify_frequency != b.qualify_frequency
        || a.is_active != b.is_active
        || a.name != b.name
}

impl Fleet {
    pub fn new(ctx: Arc<Ctx>) -> Fleet {
        Fleet {
            ctx,
            running: HashMap::new(),
        }
    }

    /// Applies a freshly loaded list: removed trunks stop and lose their series,
    /// changed ones are rescheduled, new ones start, and every trunk is re-linted.
    pub fn apply(&mut self, trunks: Vec<Trunk>) {
        let keys = trunk_keys(&trunks);
        let wanted: HashSet<&String> = keys.iter().collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for key in gone {
            tracing::info!(trunk_id = %key, "trunk removed from the list; its probes stop");
            self.stop_trunk(&key);
        }
        let mut states = Vec::with_capacity(trunks.len());
        for (key, trunk) in keys.into_iter().zip(trunks) {
            // A record that does not fit the schema keeps its last good
            // definition probing, and says so; one never seen valid is shown only.
            let invalid = trunk.invalid.clone();
            let broken = invalid.as_ref().map(|why| why.describe());
            let last_good = self
                .running
                .get(&key)
                .filter(|r| r.trunk.invalid.is_none())
                .map(|r| r.trunk.clone());
            let trunk = match (&invalid, last_good) {
                (Some(_), Some(good)) => good,
                _ => Arc::new(trunk),
            };
            states.push(TrunkState::of(&trunk));
            let was_broken = self.running.get(&key).and_then(|r| r.broken.clone());
            let restart = match self.running.get(&key) {
                Some(r) if !probing_changed(&r.trunk, &trunk) => false,
                Some(_) => {
                    tracing::info!(trunk_id = %key, trunk = %trunk.label(), "trunk changed; rescheduling its probes");
                    self.stop_trunk(&key);
                    true
                }
                None => true,
            };
            if restart {
                self.start_trunk(key.clone(), trunk.clone());
            }
            let mut lint = self.lint(&trunk);
            if let (Some(why), None) = (&invalid, &trunk.invalid) {
                let mut f = checks::lint::definition_invalid(trunk.id.as_deref(), why);
                f.message
                    .push_str("; the last good definition is probed meanwhile");
                lint.insert(0, f);
            }
            if let Some(r) = self.running.get_mut(&key) {
                if restart {
                    r.broken = was_broken;
                }
                if r.broken != broken {
                    log_definition(&key, &trunk, broken.as_deref());
                    r.broken = broken;
                }
                r.trunk = trunk;
                let mut f = findings::lock(&r.findings);
                f.trunk = r.trunk.clone();
                f.lint = lint;
                f.publish(&self.ctx.metrics, r.generation, &key);
                self.ctx.board.record_findings(&key, &f.all());
            }
        }
        if self.ctx.shard.reports_trunks() {
            self.ctx.metrics.source_loaded(&states);
        }
    }

    pub(super) fn lint(&self, trunk: &Trunk) -> Vec<checks::Finding> {
        if self.ctx.skip_auth_checks {
            checks::lint::lint_flag_trunk(trunk)
        } else {
            checks::lint(trunk)
        }
    }

    pub(super) fn stop_trunk(&mut self, key: &str) {
        if let Some(mut r) = self.running.remove(key) {
            if let Some(tasks) = &mut r.tasks {
                tasks.abort_all();
            }
            self.ctx.metrics.forget_trunk(key);
            self.ctx.board.forget_trunk(key);
        }
    }

    pub(super) fn start_trunk(&mut self, key: String, trunk: Arc<Trunk>) {
        let generation = self.ctx.metrics.track_trunk(&key);
        let findings: SharedFindings = Arc::new(std::sync::Mutex::new(TrunkFindings::new(
            trunk.clone(),
            self.lint(&trunk),
            self.ctx.shard.reports_trunks(),
            !self.ctx.skip_auth_checks,
        )));
        let mut tasks: Option<JoinSet<()>> = None;
        let mut targets = Vec::new();
        if let (TrunkState::Active, Some(transport)) =
            (TrunkState::of(&trunk), trunk.transport.valid())
        {
            let shared = Arc::new(TrunkJob {
                ctx: self.ctx.clone(),
                key: key.as_str().into(),
                findings: findings.clone(),
                generation,
                interval: Duration::from_secs(trunk.qualify_frequency as u64),
            });
            for gw in &trunk.gateways {
                let Some(port) = gw.port() else { continue };
                let labels = TargetLabels::new(
                    &key,
                    trunk.label(),
                    &format!("{}:{port}", gw.address),
                    "",
                    transport.as_str(),
                );
                let gw = GatewayJob {
                    trunk: shared.clone(),
                    labels,
                    host: gw.address.as_str().into(),
                    port,
                    transport,
                };
                // An IP literal (or a pinned name) never changes: its targets go
                // on the wheel at once, with no task watching DNS for them.
                match self.ctx.resolver.resolve_locally(&gw.host) {
                    Some(res) => {
                        for job in gw.resolved(&res) {
                            targets.push(TargetHandle::start(job));
                        }
                    }
                    None => {
                        tasks.get_or_insert_with(JoinSet::new).spawn(gw.run());
                    }
                }
            }
        }
        self.running.insert(
            key,
            Running {
                trunk,
                generation,
                targets,
                tasks,
                findings,
                broken: None,
            },
        );
    }

    /// After the stop signal: waits for every loop to end (in-flight probes
    /// finish or time out), at most `deadline`.
    pub async fn drain(self, deadline: Duration) {
        let _ = tokio::time::timeout(deadline, async {
            for mut r in self.running.into_values() {
                for t in r.targets.drain(..) {
                    t.join().await;
                }
                if let Some(tasks) = &mut r.tasks {
                    while tasks.join_next().await.is_some() {}
                }
            }
        })
        .await;
    }
}

/// What the gateways and targets of one running trunk share (one allocation
/// per trunk rather than these fields in each of its targets).
pub(super) struct TrunkJob {
    pub(super) ctx: Arc<Ctx>,
    /// The trunk's key in the fleet.
    pub(super) key: Arc<str>,
    pub(super) findings: SharedFindings,
    /// Of the trunk's series in the metric store.
    pub(super) generation: u64,
    /// `qualify_frequency`.
    pub(super) interval: Duration,
}

impl TrunkJob {
    /// Sets the trunk's findings series from `f` (its locked findings).
    pub(super) fn publish(&self, f: &TrunkFindings) {
        f.publish(&self.ctx.metrics, self.generation, &self.key);
        self.ctx.board.record_findings(&self.key, &f.all());
    }
}

/// One gateway of a trunk whose name DNS resolves: follows its answers and runs
/// a loop per address.
pub(super) struct GatewayJob {
    pub(super) trunk: Arc<TrunkJob>,
    /// With an empty target.
    pub(super) labels: TargetLabels,
    pub(super) host: Arc<str>,
    pub(super) port: u16,
    pub(super) transport: Transport,
}

/// A probed address, or `None` while the gateway has never resolved.
pub(super) type Addr = Option<IpAddr>;

impl GatewayJob {
    /// Re-resolves the gateway as its TTL allows until the stop signal, keeping
    /// a loop per address of the latest answer.
    pub(super) async fn run(self) {
        let mut stop = self.trunk.ctx.stop.clone();
        // Dropping this map (the trunk's tasks aborted) stops every target.
        let mut loops: HashMap<Addr, (TargetLabels, TargetHandle)> = HashMap::new();
        let mut current: Vec<IpAddr> = Vec::new();
        loop {
            // Boxed: a lookup's future is large and every gateway's task would carry
            // it for its whole life (10,000 gateways held 200 MB that way).
            let res = Box::pin(self.trunk.ctx.resolver.resolve(&self.host, self.transport)).await;
            let owned = self.owned(&res, &mut current, true);
            let stale: Vec<Addr> = loops
                .keys()
                .filter(|a| !owned.contains(a))
                .copied()
                .collect();
            for a in stale {
                if let Some((labels, target_loop)) = loops.remove(&a) {
                    // Wait until the loop has really stopped: a probe finishing
                    // in the same poll as the abort would otherwise record
                    // after the forget and bring the series back.
                    target_loop.stop().await;
                    self.trunk
                        .ctx
                        .metrics
                        .forget_target(self.trunk.generation, &labels);
                    self.trunk
                        .ctx
                        .board
                        .forget_target(&labels.trunk_id, labels.addr());
                    let mut f = findings::lock(&self.trunk.findings);
                    f.forget_target(labels.addr());
                    self.trunk.publish(&f);
                }
            }
            for a in owned {
                if loops.contains_key(&a) {
                    continue;
                }
                let job = self.target_job(a, res.failure.clone());
                let labels = job.labels.clone();
                loops.insert(a, (labels, TargetHandle::start(job)));
            }
            let Some(after) = dns_refresh_after(&res, self.trunk.ctx.dns_min_interval) else {
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep(after) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        // Every loop runs until the stop signal.
        for (_, (_, target_loop)) in loops.drain() {
            target_loop.join().await;
        }
    }

    /// The targets of an answer that never changes (an IP literal, a pinned
    /// name), while the fleet starts the trunk (it publishes the findings once
    /// it is done, not once per gateway).
    pub(super) fn resolved(&self, res: &Resolution) -> Vec<TargetJob> {
        self.owned(res, &mut Vec::new(), false)
            .into_iter()
            .map(|a| self.target_job(a, res.failure.clone()))
            .collect()
    }

    /// Records an answer and returns the addresses this shard probes: the
    /// answer's, else (a failed lookup) the last known ones in `current`, else
    /// `None` (probes record `dns_error`). Publishes the findings if the
    /// addresses changed and `publish` says so.
    pub(super) fn owned(
        &self,
        res: &Resolution,
        current: &mut Vec<IpAddr>,
        publish: bool,
    ) -> Vec<Addr> {
        self.trunk
            .ctx
            .metrics
            .record_dns(self.trunk.generation, &self.labels, res);
        let wanted: Vec<Addr> = match &res.failure {
            None => {
                current.clone_from(&res.addresses);
                let mut f = findings::lock(&self.trunk.findings);
                if f.observe_addresses(&self.host, current) && publish {
                    self.trunk.publish(&f);
                }
                current.iter().copied().map(Some).collect()
            }
            Some(f) if !current.is_empty() => {
                tracing::warn!(gateway = %self.labels.gateway, failure = %f.describe(), "gateway did not resolve; probing its last known addresses");
                current.iter().copied().map(Some).collect()
            }
            Some(_) => vec![None],
        };
        wanted
            .into_iter()
            .filter(|a| self.trunk.ctx.shard.owns(&self.key(*a)))
            .collect()
    }

    pub(super) fn key(&self, a: Addr) -> String {
        let addr = match a {
            Some(ip) => SocketAddr::new(ip, self.port).to_string(),
            None => format!("{}:{}", self.host, self.port),
        };
        shard_key(&self.labels.trunk_id, &addr, self.transport)
    }

    pub(super) fn target_job(&self, a: Addr, failure: Option<DnsFailure>) -> TargetJob {
        let labels = match a {
            Some(ip) => self
                .labels
                .with_target(&SocketAddr::new(ip, self.port).to_string()),
            None => self.labels.with_target("unresolved"),
        };
        let target = match a {
            Some(ip) => Ok(Target {
                host: self.host.clone(),
                addr: SocketAddr::new(ip, self.port),
                transport: self.transport,
            }),
            None => Err(failure.unwrap_or(DnsFailure::NoAddress)),
        };
        let ctx = &self.trunk.ctx;
        let stream = match (&target, ctx.kept) {
            (Ok(t), Some(kept)) if t.transport.is_reliable() => Some(Box::new(
                StreamProber::new(t.clone(), ctx.prober.exchange_config().clone())
                    .with_keepalive(kept.keepalive)
                    .with_read_buffer(KEPT_READ_BUFFER),
            )),
            _ => None,
        };
        TargetJob {
            trunk: self.trunk.clone(),
            labels,
            target,
            stream,
            port: self.port,
            transport: self.transport,
            state: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::DnsFailure;
    #[test]
    pub(super) fn dns_refresh_respects_ttl_within_bounds() {
        let mut r = Resolution {
            addresses: vec![],
            literal: false,
            pinned: false,
            lookup_time: Duration::ZERO,
            ttl: Some(5),
            failure: None,
            srv: vec![],
            naptr: vec![],
        };
        let min = DNS_MIN_INTERVAL;
        assert_eq!(dns_refresh_after(&r, min), Some(DNS_MIN_INTERVAL));
        assert_eq!(
            dns_refresh_after(&r, Duration::from_secs(1)),
            Some(Duration::from_secs(5)),
            "a lower --dns-min-interval lets a short TTL through"
        );
        r.ttl = Some(0);
        assert_eq!(
            dns_refresh_after(&r, Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        r.ttl = Some(120);
        assert_eq!(dns_refresh_after(&r, min), Some(Duration::from_secs(120)));
        r.ttl = Some(86400);
        assert_eq!(dns_refresh_after(&r, min), Some(DNS_MAX_INTERVAL));
        r.failure = Some(DnsFailure::Timeout);
        assert_eq!(dns_refresh_after(&r, min), Some(DNS_MIN_INTERVAL));
        r.literal = true;
        assert_eq!(dns_refresh_after(&r, min), None);
    }

    #[test]
    pub(super) fn trunk_keys_are_unique() {
        let mut a = Trunk::with_defaults("same");
        let b = Trunk::with_defaults("same");
        let keys = trunk_keys(&[a.clone(), b]);
        assert_eq!(keys, vec!["same", "same#2"]);
        a.id = Some("id".into());
        assert_eq!(trunk_keys(&[a]), vec!["id"]);
    }
}
