//! The daemon's probe schedule: every target probed at its trunk's
//! `qualify_frequency` (first probes jittered over the interval) and given the
//! UDP size ladder when due, a semaphore bounding probes in flight, gateway
//! names re-resolved as their TTL allows (a task per name; IP literals need
//! none), up/down hysteresis, sharding, and applying a new trunk list (add,
//! remove, reschedule) without losing the state of unchanged trunks.
//!
//! Scale: at 100,000 targets every byte a waiting target holds counts. One
//! [`Wheel`] (a timer queue and its task) holds every target's next probe and
//! ladder and spawns each as a task when due; a waiting target is only its
//! [`TargetJob`] (labels, address, health) and a queue entry.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::diagnostics::{self, MtuSchedule, SharedFindings, TrunkFindings};
use crate::checks::{self, mtu::MtuResult, reachability};
use crate::metrics::{Metrics, TargetLabels, TrunkState};
use crate::probe::{self, HealthyCodes, Outcome, TargetResult};
use crate::resolve::{DnsFailure, GatewayResolver, Resolution};
use crate::transport::{ExchangeConfig, Target, UdpProber};
use crate::trunk::{Transport, Trunk};

/// Shortest and longest time between two lookups of a gateway name (TTL clamped to this).
/// The shortest is the default of `--dns-min-interval`.
pub const DNS_MIN_INTERVAL: Duration = Duration::from_secs(30);
pub const DNS_MAX_INTERVAL: Duration = Duration::from_secs(300);

/// `--down-after` / `--up-after`: consecutive results needed to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    pub down_after: u32,
    pub up_after: u32,
}

/// A state change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The first probe of the target decided its state.
    Initial { up: bool },
    /// Up to down or down to up.
    Changed { up: bool },
}

/// Up/down state of one target, like Kamailio's dispatcher: the first result
/// sets it, then it flips only after enough consecutive opposite results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    up: Option<bool>,
    ok_run: u32,
    fail_run: u32,
}

impl Health {
    /// Feeds one probe result; returns the transition it caused, if any.
    pub fn observe(&mut self, ok: bool, h: Hysteresis) -> Option<Transition> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        match self.up {
            None => {
                self.up = Some(ok);
                Some(Transition::Initial { up: ok })
            }
            Some(true) if self.fail_run >= h.down_after.max(1) => {
                self.up = Some(false);
                Some(Transition::Changed { up: false })
            }
            Some(false) if self.ok_run >= h.up_after.max(1) => {
                self.up = Some(true);
                Some(Transition::Changed { up: true })
            }
            _ => None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up == Some(true)
    }
}

/// `--shard I/N`: this instance probes the targets whose stable hash modulo N is I (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not I/N with 0 <= I < N, e.g. 0/3");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard probes the target with this key.
    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % self.count == self.index
    }

    /// Trunk-level series (info, findings, counts) come from shard 0 only, so
    /// summing over instances does not count them N times.
    pub fn reports_trunks(&self) -> bool {
        self.index == 0
    }
}

/// FNV-1a 64: the same value on every build and platform (unlike std's hasher).
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The stable identity of a target, hashed for sharding.
pub fn target_key(trunk_id: &str, addr: &str, transport: Transport) -> String {
    format!("{trunk_id}|{addr}|{}", transport.as_str())
}

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
    pub metrics: Arc<Metrics>,
    pub resolver: GatewayResolver,
    pub exchange: ExchangeConfig,
    pub healthy: HealthyCodes,
    /// UDP probes share one socket per address family and its transaction table.
    pub udp: UdpProber,
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

struct Running {
    /// Shared with the trunk's findings.
    trunk: Arc<Trunk>,
    generation: u64,
    /// The targets of its IP-literal (and pinned) gateways; dropped, they stop.
    targets: Vec<TargetHandle>,
    /// A task per gateway name that DNS resolves, owning that gateway's
    /// targets. Dropping the set aborts them all. `None` while there is no such
    /// gateway (an empty set still allocates; 25,000 IP-literal trunks, 1.8 MB).
    tasks: Option<JoinSet<()>>,
    /// Static and learnt findings, shared with the trunk's probe loops.
    findings: SharedFindings,
}

/// The trunks being probed, keyed by trunk id (or name when there is no id).
pub struct Fleet {
    ctx: Arc<Ctx>,
    running: HashMap<String, Running>,
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

/// Whether a change needs the trunk's probes restarted (rather than only new findings).
fn probing_changed(a: &Trunk, b: &Trunk) -> bool {
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
        let states: Vec<TrunkState> = trunks.iter().map(TrunkState::of).collect();
        for (key, trunk) in keys.into_iter().zip(trunks) {
            let trunk = Arc::new(trunk);
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
            let lint = self.lint(&trunk);
            if let Some(r) = self.running.get_mut(&key) {
                r.trunk = trunk;
                let mut f = diagnostics::lock(&r.findings);
                f.trunk = r.trunk.clone();
                f.lint = lint;
                f.publish(&self.ctx.metrics, r.generation, &key);
            }
        }
        if self.ctx.shard.reports_trunks() {
            self.ctx.metrics.source_loaded(&states);
        }
    }

    fn lint(&self, trunk: &Trunk) -> Vec<checks::Finding> {
        if self.ctx.skip_auth_checks {
            checks::lint::lint_flag_trunk(trunk)
        } else {
            checks::lint(trunk)
        }
    }

    fn stop_trunk(&mut self, key: &str) {
        if let Some(mut r) = self.running.remove(key) {
            if let Some(tasks) = &mut r.tasks {
                tasks.abort_all();
            }
            self.ctx.metrics.forget_trunk(key);
        }
    }

    fn start_trunk(&mut self, key: String, trunk: Arc<Trunk>) {
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
struct TrunkJob {
    ctx: Arc<Ctx>,
    /// The trunk's key in the fleet.
    key: Arc<str>,
    findings: SharedFindings,
    /// Of the trunk's series in the metric store.
    generation: u64,
    /// `qualify_frequency`.
    interval: Duration,
}

impl TrunkJob {
    /// Sets the trunk's findings series from `f` (its locked findings).
    fn publish(&self, f: &TrunkFindings) {
        f.publish(&self.ctx.metrics, self.generation, &self.key);
    }
}

/// One gateway of a trunk whose name DNS resolves: follows its answers and runs
/// a loop per address.
struct GatewayJob {
    trunk: Arc<TrunkJob>,
    /// With an empty target.
    labels: TargetLabels,
    host: Arc<str>,
    port: u16,
    transport: Transport,
}

/// A probed address, or `None` while the gateway has never resolved.
type Addr = Option<IpAddr>;

impl GatewayJob {
    /// Re-resolves the gateway as its TTL allows until the stop signal, keeping
    /// a loop per address of the latest answer.
    async fn run(self) {
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
                    let mut f = diagnostics::lock(&self.trunk.findings);
                    f.forget_target(diagnostics::target_key(&labels));
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
    fn resolved(&self, res: &Resolution) -> Vec<TargetJob> {
        self.owned(res, &mut Vec::new(), false)
            .into_iter()
            .map(|a| self.target_job(a, res.failure.clone()))
            .collect()
    }

    /// Records an answer and returns the addresses this shard probes: the
    /// answer's, else (a failed lookup) the last known ones in `current`, else
    /// `None` (probes record `dns_error`). Publishes the findings if the
    /// addresses changed and `publish` says so.
    fn owned(&self, res: &Resolution, current: &mut Vec<IpAddr>, publish: bool) -> Vec<Addr> {
        self.trunk
            .ctx
            .metrics
            .record_dns(self.trunk.generation, &self.labels, res);
        let wanted: Vec<Addr> = match &res.failure {
            None => {
                current.clone_from(&res.addresses);
                let mut f = diagnostics::lock(&self.trunk.findings);
                if f.observe_addresses(&self.host, current) && publish {
                    self.trunk.publish(&f);
                }
                current.iter().copied().map(Some).collect()
            }
            Some(f) if !current.is_empty() => {
                tracing::warn!(gateway = %self.labels.0[2], failure = %f.describe(), "gateway did not resolve; probing its last known addresses");
                current.iter().copied().map(Some).collect()
            }
            Some(_) => vec![None],
        };
        wanted
            .into_iter()
            .filter(|a| self.trunk.ctx.shard.owns(&self.key(*a)))
            .collect()
    }

    fn key(&self, a: Addr) -> String {
        let addr = match a {
            Some(ip) => SocketAddr::new(ip, self.port).to_string(),
            None => format!("{}:{}", self.host, self.port),
        };
        target_key(&self.labels.0[0], &addr, self.transport)
    }

    fn target_job(&self, a: Addr, failure: Option<DnsFailure>) -> TargetJob {
        let labels = match a {
            Some(ip) => self
                .labels
                .with_target(&SocketAddr::new(ip, self.port).to_string()),
            None => self.labels.with_target("unresolved"),
        };
        TargetJob {
            trunk: self.trunk.clone(),
            labels,
            target: match a {
                Some(ip) => Ok(Target {
                    host: self.host.clone(),
                    addr: SocketAddr::new(ip, self.port),
                    transport: self.transport,
                }),
                None => Err(failure.unwrap_or(DnsFailure::NoAddress)),
            },
            port: self.port,
            transport: self.transport,
            state: Default::default(),
        }
    }
}

/// What the wheel starts when a timer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Probe,
    Ladder,
}

/// One timer of the wheel: a target's next probe or ladder.
struct Timer {
    at: Instant,
    due: Due,
    job: Arc<TargetJob>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    /// Reversed: the earliest timer is the greatest, on top of the (max-)heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

/// Every target's next probe and next ladder in one timer queue, driven by one
/// task that spawns a probe (or a ladder) when it is due. A waiting target
/// costs its [`TargetJob`] and a queue entry, not a task sleeping on its own
/// timer (~1.2 KB each, 120 MB at 100,000 targets). Ends at the stop signal.
#[derive(Clone)]
pub struct Wheel(mpsc::UnboundedSender<Timer>);

impl Wheel {
    /// Starts the wheel's task; at most `concurrency` probes (`--concurrency`;
    /// ladders have their own limit) run at once.
    pub fn start(stop: watch::Receiver<bool>, concurrency: usize) -> Wheel {
        let (tx, rx) = mpsc::unbounded_channel();
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(run_wheel(rx, stop, limit));
        Wheel(tx)
    }

    fn at(&self, at: Instant, due: Due, job: Arc<TargetJob>) {
        // Fails only after the stop signal, when nothing new starts anyway.
        let _ = self.0.send(Timer { at, due, job });
    }
}

impl Timer {
    /// A probe of an address takes a `--concurrency` slot (a gateway without an
    /// address only records a `dns_error`; ladders have their own limit).
    fn needs_slot(&self) -> bool {
        self.due == Due::Probe && self.job.target.is_ok()
    }
}

async fn run_wheel(
    mut rx: mpsc::UnboundedReceiver<Timer>,
    mut stop: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    let mut queue: BinaryHeap<Timer> = BinaryHeap::new();
    // Probes that are due while every `--concurrency` slot is taken (many
    // targets timing out at once), oldest first. They wait here as timers: a
    // task spawned to wait for its slot would hold ~1.2 KB, 120 MB at 100,000
    // targets, exactly when a carrier outage makes them all slow.
    let mut waiting: std::collections::VecDeque<Timer> = Default::default();
    loop {
        let next = queue.peek().map(|t| t.at);
        tokio::select! {
            // Due timers first: a steady stream of new ones must not starve them.
            biased;
            _ = stop.wait_for(|s| *s) => return,
            permit = acquire_if(&limit, !waiting.is_empty()) => {
                // This slot and any others free by now go to the oldest waiting.
                let mut slot = Some(permit);
                while let Some(p) = slot.take() {
                    let Some(t) = waiting.pop_front() else { break };
                    t.job.fire(t.due, t.at, Some(p));
                    slot = limit.clone().try_acquire_owned().ok();
                }
            }
            _ = sleep_until_some(next) => {
                let now = Instant::now();
                while let Some(t) = queue.peek_mut() {
                    if t.at > now {
                        break;
                    }
                    let t = std::collections::binary_heap::PeekMut::pop(t);
                    if !t.needs_slot() {
                        t.job.fire(t.due, t.at, None);
                        continue;
                    }
                    // Behind the waiting ones, even if a slot just came free.
                    let slot = if waiting.is_empty() {
                        limit.clone().try_acquire_owned().ok()
                    } else {
                        None
                    };
                    match slot {
                        Some(p) => t.job.fire(t.due, t.at, Some(p)),
                        None => waiting.push_back(t),
                    }
                }
            }
            t = rx.recv() => match t {
                Some(t) => {
                    queue.push(t);
                    while let Ok(t) = rx.try_recv() {
                        queue.push(t);
                    }
                }
                None => return,
            },
        }
    }
}

/// One of `limit`'s permits once `wanted`; pending forever otherwise.
async fn acquire_if(limit: &Arc<Semaphore>, wanted: bool) -> OwnedSemaphorePermit {
    if wanted {
        if let Ok(p) = limit.clone().acquire_owned().await {
            return p;
        }
    }
    std::future::pending().await
}

/// Sleeps until `at`; pending forever with `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A scheduled target as its trunk or gateway holds it; dropped, it stops
/// (nothing new starts, a probe or ladder in flight is aborted).
struct TargetHandle(Arc<TargetJob>);

impl TargetHandle {
    /// Schedules the target's first probe (jittered over the interval) and ladder.
    fn start(job: TargetJob) -> TargetHandle {
        let job = Arc::new(job);
        let now = Instant::now();
        let jitter_ms = job.trunk.interval.as_millis().max(1) as u64;
        let jitter = Duration::from_millis(rand::rng().random_range(0..jitter_ms));
        job.trunk
            .ctx
            .wheel
            .at(now + jitter, Due::Probe, job.clone());
        if let Some((mtu, _)) = job.ladder_target() {
            job.trunk
                .ctx
                .wheel
                .at(now + mtu.first_delay(), Due::Ladder, job.clone());
        }
        TargetHandle(job)
    }

    /// Stops the target and waits until nothing of it runs (nor records).
    async fn stop(self) {
        let (probe, ladder) = self.0.halt();
        for task in [probe, ladder].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
    }

    /// After the stop signal: the ladder is dropped, a probe in flight
    /// finishes and counts.
    async fn join(self) {
        let (probe, ladder) = self.0.halt();
        if let Some(ladder) = ladder {
            ladder.abort();
        }
        if let Some(probe) = probe {
            let _ = probe.await;
        }
    }
}

impl Drop for TargetHandle {
    fn drop(&mut self) {
        let (probe, ladder) = self.0.halt();
        for task in [probe, ladder].into_iter().flatten() {
            task.abort();
        }
    }
}

/// One address of a gateway: OPTIONS every `interval` and, on a UDP target with
/// `--mtu-interval`, the size ladder on its slow schedule. The [`Wheel`] starts
/// each as a task of its own when due; in between the target is only this struct.
struct TargetJob {
    trunk: Arc<TrunkJob>,
    labels: TargetLabels,
    /// The address probed, or why the gateway has none yet (each tick records a `dns_error`).
    target: std::result::Result<Target, DnsFailure>,
    port: u16,
    transport: Transport,
    state: std::sync::Mutex<TargetState>,
}

/// What changes as a target is probed.
#[derive(Default)]
struct TargetState {
    health: Health,
    /// The latest probe got an answer: the ladder runs only then (against a
    /// silent target it would only say "inconclusive").
    answered: bool,
    /// The ladder is due and waits for an answer.
    ladder_waiting: bool,
    /// Removed, replaced or shutting down: nothing new starts.
    stopped: bool,
    /// The probe and the ladder in flight, each at most one.
    probe: Option<JoinHandle<()>>,
    ladder: Option<JoinHandle<()>>,
}

impl TargetJob {
    fn lock(&self) -> std::sync::MutexGuard<'_, TargetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the target stopped; returns its tasks in flight.
    fn halt(&self) -> (Option<JoinHandle<()>>, Option<JoinHandle<()>>) {
        let mut s = self.lock();
        s.stopped = true;
        (s.probe.take(), s.ladder.take())
    }

    /// Whether new work may start (not stopped, no stop signal).
    fn live(&self, s: &TargetState) -> bool {
        !s.stopped && !*self.trunk.ctx.stop.borrow()
    }

    /// A timer of the wheel is due: starts the probe (with its `--concurrency`
    /// slot, if it probes an address) or the ladder.
    fn fire(self: Arc<Self>, due: Due, at: Instant, slot: Option<OwnedSemaphorePermit>) {
        let mut s = self.lock();
        if !self.live(&s) {
            return;
        }
        match due {
            Due::Probe => {
                let job = self.clone();
                s.probe = Some(tokio::spawn(job.probe_once(at, slot)));
            }
            Due::Ladder if !s.answered => s.ladder_waiting = true,
            Due::Ladder => {
                let job = self.clone();
                s.ladder = Some(tokio::spawn(job.ladder_once()));
            }
        }
    }

    /// One probe, scheduled at `scheduled`; then the next one an interval
    /// later (at once if this one ended later than that).
    /// `_slot`, its `--concurrency` slot, is held until the task ends.
    async fn probe_once(self: Arc<Self>, scheduled: Instant, _slot: Option<OwnedSemaphorePermit>) {
        let result = self.probe(scheduled).await;
        self.record(&result);
        let now = Instant::now();
        let mut s = self.lock();
        // This task ends here: dropping its handle frees it at once.
        s.probe = None;
        if !self.live(&s) {
            return;
        }
        let next = (scheduled + self.trunk.interval).max(now);
        self.trunk.ctx.wheel.at(next, Due::Probe, self.clone());
        if s.answered && s.ladder_waiting {
            s.ladder_waiting = false;
            self.trunk.ctx.wheel.at(now, Due::Ladder, self.clone());
        }
    }

    /// One UDP size ladder; then the next one an interval (±10%) later.
    async fn ladder_once(self: Arc<Self>) {
        let Some((mtu, target)) = self.ladder_target() else {
            return;
        };
        let mut result = {
            let _permit = mtu.limit.acquire().await;
            probe::mtu_ladder(target, &mtu.config).await
        };
        self.record_ladder(target, &mut result);
        let mut s = self.lock();
        s.ladder = None;
        if self.live(&s) {
            let next = Instant::now() + mtu.next_delay();
            self.trunk.ctx.wheel.at(next, Due::Ladder, self.clone());
        }
    }

    /// The ladder's schedule and target, if this target gets ladders.
    fn ladder_target(&self) -> Option<(&MtuSchedule, &Target)> {
        match (&self.trunk.ctx.mtu, &self.target) {
            (Some(mtu), Ok(target)) if target.transport == Transport::Udp => Some((mtu, target)),
            _ => None,
        }
    }

    /// Feeds a probe result to the target's health, metrics and findings.
    fn record(&self, result: &TargetResult) {
        let ok = result.outcome == Outcome::Ok;
        let (transition, up) = {
            let mut s = self.lock();
            s.answered = matches!(result.outcome, Outcome::Ok | Outcome::SipError);
            let t = s.health.observe(ok, self.trunk.ctx.hysteresis);
            (t, s.health.is_up())
        };
        if let Some(t) = transition {
            self.log(t, result);
        }
        self.trunk
            .ctx
            .metrics
            .record_probe(self.trunk.generation, &self.labels, result, up);
        let mut f = diagnostics::lock(&self.trunk.findings);
        if f.observe_reply(diagnostics::target_key(&self.labels), result) {
            self.trunk.publish(&f);
        }
    }

    fn record_ladder(&self, target: &Target, result: &mut MtuResult) {
        let mut f = diagnostics::lock(&self.trunk.findings);
        f.observe_mtu(diagnostics::target_key(&self.labels), &target.host, result);
        self.trunk.publish(&f);
        drop(f);
        self.trunk
            .ctx
            .metrics
            .record_mtu(self.trunk.generation, &self.labels, result);
        tracing::debug!(target = %target.addr, verdict = ?result.verdict, largest = ?result.largest_answered, first_lost = ?result.first_lost, "UDP size ladder");
    }

    async fn probe(&self, scheduled: Instant) -> TargetResult {
        match &self.target {
            Ok(target) => {
                self.trunk
                    .ctx
                    .metrics
                    .observe_lateness(Instant::now().saturating_duration_since(scheduled));
                if !self
                    .trunk
                    .ctx
                    .first_probe_sent
                    .swap(true, Ordering::Relaxed)
                {
                    tracing::info!(
                        since_start_ms = self.trunk.ctx.started.elapsed().as_millis() as u64,
                        "first probe sent"
                    );
                }
                if target.transport == Transport::Udp {
                    let ex = self.trunk.ctx.udp.exchange(target).await;
                    return probe::evaluate(ex, &self.trunk.ctx.healthy);
                }
                probe::probe_one(target, &self.trunk.ctx.exchange, &self.trunk.ctx.healthy).await
            }
            Err(failure) => probe::dns_failure_result(failure, self.port, self.transport),
        }
    }

    fn log(&self, t: Transition, r: &TargetResult) {
        let ctx = reachability::Context {
            timeout: self.trunk.ctx.exchange.timeout,
            seen_as: None,
        };
        let detail = if r.outcome == Outcome::DnsError {
            r.detail.clone()
        } else {
            reachability::explain(r, &ctx).detail
        };
        let [trunk_id, trunk, gateway, target, transport] = &self.labels.0;
        let (up, initial) = match t {
            Transition::Initial { up } => (up, true),
            Transition::Changed { up } => (up, false),
        };
        if up {
            tracing::info!(%trunk_id, %trunk, %gateway, %target, %transport, initial, outcome = r.outcome.as_str(), %detail, "target up");
        } else {
            tracing::warn!(%trunk_id, %trunk, %gateway, %target, %transport, initial, outcome = r.outcome.as_str(), %detail, "target down");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Hysteresis = Hysteresis {
        down_after: 2,
        up_after: 1,
    };

    #[test]
    fn hysteresis_needs_consecutive_failures_to_go_down() {
        let mut h = Health::default();
        assert_eq!(h.observe(true, H), Some(Transition::Initial { up: true }));
        assert_eq!(h.observe(false, H), None);
        assert!(h.is_up());
        assert_eq!(h.observe(true, H), None, "a success resets the failure run");
        assert_eq!(h.observe(false, H), None);
        assert_eq!(h.observe(false, H), Some(Transition::Changed { up: false }));
        assert_eq!(h.observe(false, H), None, "logged once");
        assert_eq!(h.observe(true, H), Some(Transition::Changed { up: true }));
    }

    #[test]
    fn hysteresis_up_after_three() {
        let h3 = Hysteresis {
            down_after: 1,
            up_after: 3,
        };
        let mut h = Health::default();
        assert_eq!(
            h.observe(false, h3),
            Some(Transition::Initial { up: false })
        );
        assert_eq!(h.observe(true, h3), None);
        assert_eq!(h.observe(true, h3), None);
        assert_eq!(h.observe(true, h3), Some(Transition::Changed { up: true }));
        assert_eq!(
            h.observe(false, h3),
            Some(Transition::Changed { up: false })
        );
    }

    #[test]
    fn shards_partition_targets_stably() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
        // The hash is pinned: instances of different builds agree.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut counts = [0; 3];
        for n in 0..300 {
            let key = target_key("t", &format!("10.0.0.{n}:5060"), Transport::Udp);
            let owners: Vec<usize> = (0..3).filter(|i| shards[*i].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "exactly one shard owns {key}");
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }

    #[test]
    fn dns_refresh_respects_ttl_within_bounds() {
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

    fn test_ctx(mtu: bool) -> Arc<Ctx> {
        // The stop signal never comes (a dropped sender would end the wheel).
        let (stop_tx, stop) = watch::channel(false);
        std::mem::forget(stop_tx);
        let exchange = ExchangeConfig::new(Duration::from_secs(1));
        let healthy = HealthyCodes::default();
        Arc::new(Ctx {
            metrics: Arc::new(Metrics::new(None)),
            resolver: GatewayResolver::with_server("127.0.0.1:53".parse().unwrap()).unwrap(),
            exchange: exchange.clone(),
            healthy: healthy.clone(),
            udp: UdpProber::new(exchange.clone()),
            hysteresis: H,
            shard: Shard::default(),
            skip_auth_checks: false,
            dns_min_interval: DNS_MIN_INTERVAL,
            stop: stop.clone(),
            mtu: mtu.then(|| MtuSchedule {
                config: crate::probe::MtuConfig::new(exchange, healthy),
                interval: Duration::from_secs(3600),
                limit: Arc::new(Semaphore::new(1)),
            }),
            started: Instant::now(),
            first_probe_sent: false.into(),
            wheel: Wheel::start(stop, 1),
        })
    }

    fn test_gateway(ctx: Arc<Ctx>) -> GatewayJob {
        test_gateway_every(ctx, Duration::from_secs(60))
    }

    fn test_gateway_every(ctx: Arc<Ctx>, interval: Duration) -> GatewayJob {
        let findings: SharedFindings = Arc::new(std::sync::Mutex::new(TrunkFindings::new(
            Trunk::with_defaults("t"),
            Vec::new(),
            true,
            true,
        )));
        GatewayJob {
            trunk: Arc::new(TrunkJob {
                ctx,
                key: "t".into(),
                findings,
                generation: 1,
                interval,
            }),
            labels: TargetLabels::new("t", "t", "192.0.2.1:5060", "", "udp"),
            host: "192.0.2.1".into(),
            port: 5060,
            transport: Transport::Udp,
        }
    }

    /// What every waiting target holds: its [`TargetJob`] (and the heap behind
    /// its labels) and a timer on the wheel, no task. At 100,000 targets each
    /// 100 bytes here are 10 MB, so the sizes are pinned.
    #[tokio::test]
    async fn a_waiting_target_stays_small() {
        let gw = test_gateway(test_ctx(true));
        let target = std::mem::size_of::<TargetJob>();
        let timer = std::mem::size_of::<Timer>();
        let gateway = std::mem::size_of_val(&gw.run());
        println!("TargetJob {target} B, a timer {timer} B, a DNS gateway's task {gateway} B");
        assert!(target <= 192, "TargetJob is {target} bytes");
        assert!(timer <= 32, "a timer is {timer} bytes");
        assert!(gateway <= 1100, "a gateway's future is {gateway} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_target_no_longer_records() {
        use std::sync::atomic::AtomicU64;
        let gw = test_gateway(test_ctx(false));
        for _ in 0..20 {
            let job = Arc::new(gw.target_job(Some("192.0.2.1".parse().unwrap()), None));
            let records = Arc::new(AtomicU64::new(0));
            let r = records.clone();
            // Like a probe in flight: an await, then a record in the same poll (made
            // slow here, so the abort lands while it runs on the other worker).
            job.lock().probe = Some(tokio::spawn(async move {
                loop {
                    tokio::task::yield_now().await;
                    std::thread::sleep(Duration::from_millis(2));
                    r.fetch_add(1, Ordering::SeqCst);
                }
            }));
            let handle = TargetHandle(job.clone());
            tokio::time::sleep(Duration::from_millis(3)).await;
            handle.stop().await;
            let after_stop = records.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(
                records.load(Ordering::SeqCst),
                after_stop,
                "recorded after stop"
            );
            let s = job.lock();
            assert!(s.stopped && s.probe.is_none());
            drop(s);
            // Nothing new starts on a stopped target.
            job.clone().fire(Due::Probe, Instant::now(), None);
            assert!(job.lock().probe.is_none());
        }
    }

    /// The wheel starts a probe when its time comes, then schedules the next
    /// one an interval later; a dropped handle stops the target.
    #[tokio::test]
    async fn the_wheel_probes_each_interval() {
        let gw = test_gateway_every(test_ctx(false), Duration::from_millis(50));
        // No address: each tick records a dns_error without any network.
        let handle = TargetHandle::start(gw.target_job(None, None));
        let job = handle.0.clone();
        let probes = |job: &TargetJob| job.lock().health.fail_run;
        tokio::time::sleep(Duration::from_millis(520)).await;
        let n = probes(&job);
        assert!((8..=11).contains(&n), "{n} probes in 10 intervals");
        drop(handle);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let n = probes(&job);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(probes(&job), n, "stopped");
    }

    /// With the only `--concurrency` slot held by a probe of a silent target,
    /// the other due probes wait on the wheel as timers, not as tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn due_probes_wait_for_a_slot_without_a_task() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut gw = test_gateway_every(test_ctx(false), Duration::from_millis(10));
        gw.host = "127.0.0.1".into();
        gw.port = silent.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        // The wheel and the UDP driver, once the first probe has started it.
        let _first = TargetHandle::start(gw.target_job(Some(ip), None));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = tasks();
        let _more: Vec<TargetHandle> = (0..50)
            .map(|_| TargetHandle::start(gw.target_job(Some(ip), None)))
            .collect();
        let mut most = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            most = most.max(tasks());
        }
        assert!(
            most <= before + 1,
            "{most} tasks alive with 51 targets due and one slot (before: {before})"
        );
    }

    /// Probes that waited for a slot all get one: with one slot and 20 targets
    /// due at once (a closed port refuses each probe at once), every target
    /// is probed, and again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_probes_all_run() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut gw = test_gateway_every(test_ctx(false), Duration::from_millis(20));
        gw.host = "127.0.0.1".into();
        gw.port = port;
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let handles: Vec<TargetHandle> = (0..20)
            .map(|_| TargetHandle::start(gw.target_job(Some(ip), None)))
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let probed: Vec<u32> = handles.iter().map(|h| h.0.lock().health.fail_run).collect();
        assert!(
            probed.iter().all(|n| *n >= 2),
            "probes per target: {probed:?}"
        );
    }

    #[test]
    fn trunk_keys_are_unique() {
        let mut a = Trunk::with_defaults("same");
        let b = Trunk::with_defaults("same");
        let keys = trunk_keys(&[a.clone(), b]);
        assert_eq!(keys, vec!["same", "same#2"]);
        a.id = Some("id".into());
        assert_eq!(trunk_keys(&[a]), vec!["id"]);
    }
}
