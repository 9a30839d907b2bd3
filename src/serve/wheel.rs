//! Every target's next probe and next ladder in one timer queue, driven by
//! one task that spawns each when due under the `--concurrency` bound.
//!
//! Scale: at 100,000 targets every byte a waiting target holds counts; a
//! waiting target is only its [`TargetJob`] and a queue entry here.
//!
//! Timers fall on a grid of [`TICK`]: every probe due within one tick starts
//! at the same instant, so the runtime, the UDP driver and the socket wake once
//! for a batch of probes instead of once for each. At 10,000 targets and 500
//! probes/s, one wake-up chain per probe (timer, task, driver, reply, task)
//! was most of the daemon's CPU, much of it in the kernel (context switches):
//! 6.0% of a core with 1 ms timers, 3.8% on a 20 ms grid, 2.4% on a 50 ms
//! one (`bench/vs_dispatcher.sh`, where Kamailio's dispatcher, pinging every
//! destination in one burst per interval, spent about 3%). At 10,000 targets
//! and 167 probes/s a 250 ms grid took 45-55% off the 50 ms one's CPU (two
//! daemons side by side, 60 s windows): what is left per probe is mostly cache
//! misses on the target's own state, and a batch of 40 shares the rest.
//!
//! A tick delays a probe by less than [`TICK`] from the phase its jitter gave
//! it, once: the grid keeps whole-second intervals exact, and lateness is
//! measured from the grid time, where the probe was due. A batch larger than
//! `--concurrency` waits for slots, which the lateness histogram shows.

use std::collections::BinaryHeap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::target::TargetJob;

/// What the wheel starts when a timer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    Probe,
    Ladder,
}

/// The wheel's grid: timers are rounded up to a multiple of this.
pub(super) const TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// One timer of the wheel: a target's next probe or ladder.
pub(super) struct Timer {
    pub(super) at: Instant,
    pub(super) due: Due,
    pub(super) job: Arc<TargetJob>,
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
pub struct Wheel {
    tx: mpsc::UnboundedSender<Timer>,
    /// Where the grid of [`TICK`]s starts.
    origin: Instant,
}

impl Wheel {
    /// Starts the wheel's task; at most `concurrency` probes (`--concurrency`;
    /// ladders have their own limit) run at once.
    pub fn start(stop: watch::Receiver<bool>, concurrency: usize) -> Wheel {
        let (tx, rx) = mpsc::unbounded_channel();
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(run_wheel(rx, stop, limit));
        Wheel {
            tx,
            origin: Instant::now(),
        }
    }

    /// Starts `job`'s `due` at the first tick at or after `at`.
    pub(super) fn at(&self, at: Instant, due: Due, job: Arc<TargetJob>) {
        let at = on_grid(self.origin, at);
        // Fails only after the stop signal, when nothing new starts anyway.
        let _ = self.tx.send(Timer { at, due, job });
    }
}

/// The first multiple of [`TICK`] after `origin` at or after `at` (`origin`
/// for anything before it).
pub(super) fn on_grid(origin: Instant, at: Instant) -> Instant {
    let since = at.saturating_duration_since(origin).as_nanos();
    let tick = TICK.as_nanos();
    let ticks = since.div_ceil(tick);
    // u64 nanoseconds hold 584 years: no daemon runs past them.
    origin + std::time::Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
}

impl Timer {
    /// A probe of an address takes a `--concurrency` slot (a gateway without an
    /// address only records a `dns_error`; ladders have their own limit).
    pub(super) fn needs_slot(&self) -> bool {
        self.due == Due::Probe && self.job.target.is_ok()
    }
}

pub(super) async fn run_wheel(
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
pub(super) async fn acquire_if(limit: &Arc<Semaphore>, wanted: bool) -> OwnedSemaphorePermit {
    if wanted {
        if let Ok(p) = limit.clone().acquire_owned().await {
            return p;
        }
    }
    std::future::pending().await
}

/// Sleeps until `at`; pending forever with `None`.
pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_round_up_to_the_next_tick_and_whole_intervals_stay_exact() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_grid(origin, origin), origin);
        assert_eq!(on_grid(origin, origin + ms(1)), origin + TICK);
        assert_eq!(on_grid(origin, origin + TICK), origin + TICK);
        assert_eq!(on_grid(origin, origin + TICK + ms(1)), origin + TICK * 2);
        assert_eq!(
            on_grid(origin + ms(5), origin),
            origin + ms(5),
            "before the grid"
        );
        // A probe on the grid plus a whole-second interval is on the grid.
        let t = on_grid(origin, origin + ms(1234));
        assert_eq!(
            on_grid(origin, t + Duration::from_secs(30)),
            t + Duration::from_secs(30)
        );
        assert!(t - (origin + ms(1234)) < TICK);
    }
}
