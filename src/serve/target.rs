//! One scheduled target: OPTIONS at its trunk's `qualify_frequency`, the size
//! ladder on its slow schedule, health and metrics recorded after each.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::findings;
use super::fleet::TrunkJob;
use super::health::{Health, Transition};
use super::ladders::MtuSchedule;
use super::wheel::Due;
use crate::checks::reachability;
use crate::metrics::TargetLabels;
use crate::outcome::{evaluate, MtuResult, Outcome, TargetResult};
use crate::probe::mtu_ladder;
use crate::resolve::DnsFailure;
use crate::transport::{StreamProber, Target};
use crate::trunk::Transport;

/// A scheduled target as its trunk or gateway holds it; dropped, it stops
/// (nothing new starts, a probe or ladder in flight is aborted).
pub(super) struct TargetHandle(Arc<TargetJob>);

impl TargetHandle {
    /// Schedules the target's first probe (jittered over the interval) and ladder.
    pub(super) fn start(job: TargetJob) -> TargetHandle {
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
    pub(super) async fn stop(self) {
        let (probe, ladder) = self.0.halt();
        for task in [probe, ladder].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
    }

    /// After the stop signal: the ladder is dropped, a probe in flight
    /// finishes and counts.
    pub(super) async fn join(self) {
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
pub(super) struct TargetJob {
    pub(super) trunk: Arc<TrunkJob>,
    pub(super) labels: TargetLabels,
    /// The address probed, or why the gateway has none yet (each tick records a `dns_error`).
    pub(super) target: std::result::Result<Target, DnsFailure>,
    /// TCP/TLS with kept connections: the target's one connection (dropped
    /// with the target, which closes it).
    pub(super) stream: Option<Box<StreamProber>>,
    pub(super) port: u16,
    pub(super) transport: Transport,
    pub(super) state: std::sync::Mutex<TargetState>,
}

/// What changes as a target is probed.
#[derive(Default)]
pub(super) struct TargetState {
    pub(super) health: Health,
    /// The latest probe got an answer: the ladder runs only then (against a
    /// silent target it would only say "inconclusive").
    pub(super) answered: bool,
    /// The ladder is due and waits for an answer.
    pub(super) ladder_waiting: bool,
    /// Removed, replaced or shutting down: nothing new starts.
    pub(super) stopped: bool,
    /// The probe and the ladder in flight, each at most one.
    pub(super) probe: Option<JoinHandle<()>>,
    pub(super) ladder: Option<JoinHandle<()>>,
}

impl TargetJob {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, TargetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the target stopped; returns its tasks in flight.
    pub(super) fn halt(&self) -> (Option<JoinHandle<()>>, Option<JoinHandle<()>>) {
        let mut s = self.lock();
        s.stopped = true;
        (s.probe.take(), s.ladder.take())
    }

    /// Whether new work may start (not stopped, no stop signal).
    pub(super) fn live(&self, s: &TargetState) -> bool {
        !s.stopped && !*self.trunk.ctx.stop.borrow()
    }

    /// A timer of the wheel is due: starts the probe (with its `--concurrency`
    /// slot, if it probes an address) or the ladder.
    pub(super) fn fire(self: Arc<Self>, due: Due, at: Instant, slot: Option<OwnedSemaphorePermit>) {
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
    pub(super) async fn probe_once(
        self: Arc<Self>,
        scheduled: Instant,
        _slot: Option<OwnedSemaphorePermit>,
    ) {
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
    pub(super) async fn ladder_once(self: Arc<Self>) {
        let Some((mtu, target)) = self.ladder_target() else {
            return;
        };
        let mut result = {
            let _permit = mtu.limit.acquire().await;
            mtu_ladder(target, &mtu.config).await
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
    pub(super) fn ladder_target(&self) -> Option<(&MtuSchedule, &Target)> {
        match (&self.trunk.ctx.mtu, &self.target) {
            (Some(mtu), Ok(target)) if target.transport == Transport::Udp => Some((mtu, target)),
            _ => None,
        }
    }

    /// Feeds a probe result to the target's health, metrics and findings.
    pub(super) fn record(&self, result: &TargetResult) {
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
        let l = &self.labels;
        let subject = crate::report::status::Subject {
            trunk_key: &l.trunk_id,
            trunk: &l.trunk,
            gateway: &l.gateway,
            target: &l.target,
        };
        self.trunk.ctx.board.record_probe(&subject, result, up);
        let mut f = findings::lock(&self.trunk.findings);
        if f.observe_reply(self.labels.addr(), result) {
            self.trunk.publish(&f);
        }
    }

    pub(super) fn record_ladder(&self, target: &Target, result: &mut MtuResult) {
        let mut f = findings::lock(&self.trunk.findings);
        f.observe_mtu(self.labels.addr(), &target.host, result);
        self.trunk.publish(&f);
        drop(f);
        self.trunk
            .ctx
            .metrics
            .record_mtu(self.trunk.generation, &self.labels, result);
        tracing::debug!(target = %target.addr, verdict = ?result.verdict, largest = ?result.largest_answered, first_lost = ?result.first_lost, "UDP size ladder");
    }

    pub(super) async fn probe(&self, scheduled: Instant) -> TargetResult {
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
                let prober = &self.trunk.ctx.prober;
                match &self.stream {
                    Some(stream) => evaluate(stream.exchange().await, prober.healthy()),
                    None => prober.probe(target).await,
                }
            }
            Err(failure) => reachability::dns_failure_result(failure, self.port, self.transport),
        }
    }

    pub(super) fn log(&self, t: Transition, r: &TargetResult) {
        let ctx = reachability::Context {
            timeout: self.trunk.ctx.prober.exchange_config().timeout,
            seen_as: None,
        };
        let detail = if r.outcome == Outcome::DnsError {
            r.detail.clone()
        } else {
            reachability::explain(r, &ctx).detail
        };
        let [trunk_id, trunk, gateway, target, transport] = self.labels.values();
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
    use std::net::IpAddr;

    use tokio::sync::{watch, Semaphore};

    use super::super::findings::{SharedFindings, TrunkFindings};
    use super::super::fleet::{Ctx, GatewayJob, DNS_MIN_INTERVAL};
    use super::super::health::Hysteresis;
    use super::super::shard::Shard;
    use super::super::wheel::{Timer, Wheel};
    use crate::metrics::Metrics;
    use crate::outcome::HealthyCodes;
    use crate::probe::Prober;
    use crate::resolve::GatewayResolver;
    use crate::transport::ExchangeConfig;
    use crate::trunk::Trunk;

    const H: Hysteresis = Hysteresis {
        down_after: 2,
        up_after: 1,
    };

    pub(super) fn test_ctx(mtu: bool) -> Arc<Ctx> {
        // The stop signal never comes (a dropped sender would end the wheel).
        let (stop_tx, stop) = watch::channel(false);
        std::mem::forget(stop_tx);
        let exchange = ExchangeConfig::new(Duration::from_secs(1));
        let healthy = HealthyCodes::default();
        Arc::new(Ctx {
            kept: None,
            metrics: Arc::new(Metrics::new(None)),
            board: Arc::new(crate::report::status::StatusBoard::new(
                10,
                Duration::from_secs(1),
            )),
            resolver: GatewayResolver::with_server("127.0.0.1:53".parse().unwrap()).unwrap(),
            prober: Prober::new(exchange.clone(), healthy.clone()),
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

    pub(super) fn test_gateway(ctx: Arc<Ctx>) -> GatewayJob {
        test_gateway_every(ctx, Duration::from_secs(60))
    }

    pub(super) fn test_gateway_every(ctx: Arc<Ctx>, interval: Duration) -> GatewayJob {
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
    pub(super) async fn a_waiting_target_stays_small() {
        let gw = test_gateway(test_ctx(true));
        let target = std::mem::size_of::<TargetJob>();
        let timer = std::mem::size_of::<Timer>();
        let gateway = std::mem::size_of_val(&gw.run());
        println!("TargetJob {target} B, a timer {timer} B, a DNS gateway's task {gateway} B");
        // 192 until the kept TCP/TLS connection's pointer (`stream`) came.
        assert!(target <= 200, "TargetJob is {target} bytes");
        assert!(timer <= 32, "a timer is {timer} bytes");
        assert!(gateway <= 1100, "a gateway's future is {gateway} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    pub(super) async fn a_stopped_target_no_longer_records() {
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
    pub(super) async fn the_wheel_probes_each_interval() {
        // One tick of the wheel's grid: a shorter interval would be rounded up to it.
        let tick = super::super::wheel::TICK;
        let gw = test_gateway_every(test_ctx(false), tick);
        // No address: each tick records a dns_error without any network.
        let handle = TargetHandle::start(gw.target_job(None, None));
        let job = handle.0.clone();
        let probes = |job: &TargetJob| job.lock().health.fail_run;
        tokio::time::sleep(tick * 10 + tick / 2).await;
        let n = probes(&job);
        assert!((8..=11).contains(&n), "{n} probes in 10 intervals");
        drop(handle);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let n = probes(&job);
        tokio::time::sleep(tick * 2).await;
        assert_eq!(probes(&job), n, "stopped");
    }

    /// With the only `--concurrency` slot held by a probe of a silent target,
    /// the other due probes wait on the wheel as timers, not as tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    pub(super) async fn due_probes_wait_for_a_slot_without_a_task() {
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
        // Its first probe waits for the next tick of the wheel's grid: count
        // from when it has started the UDP driver, not from a fixed time (on a
        // loaded machine 50 ms was sometimes before it).
        let started = std::time::Instant::now();
        while tasks() < 2 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = tasks();
        let _more: Vec<TargetHandle> = (0..50)
            .map(|_| TargetHandle::start(gw.target_job(Some(ip), None)))
            .collect();
        // They are due at the next tick of the grid: watch past it.
        let mut most = 0;
        let polls = (super::super::wheel::TICK.as_millis() as usize + 200) / 5;
        for _ in 0..polls {
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
    pub(super) async fn waiting_probes_all_run() {
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
}
