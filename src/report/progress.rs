//! The progress line `check` keeps on stderr while it works through many
//! targets or ladders: `probing targets 37/120 · 2.1 s`. Only on a terminal
//! (never into a pipe or a file, where it would be noise in a log), redrawn in
//! place with `\r` and erased when done, and only after the first half second:
//! a quick check shows nothing. [`Progress`] holds the counters (cheap clones,
//! ticked from the probes' tasks); the command draws [`Progress::line`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shown only once a run has taken this long.
pub const SHOW_AFTER: Duration = Duration::from_millis(500);

/// Counters of the current stage; a disabled one counts nothing.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Counters>>);

struct Counters {
    started: Instant,
    stage: Mutex<&'static str>,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl Progress {
    /// Counts (for a terminal); [`Progress::default`] is the silent one.
    pub fn enabled() -> Progress {
        Progress::since(Instant::now())
    }

    fn since(started: Instant) -> Progress {
        Progress(Some(Arc::new(Counters {
            started,
            stage: Mutex::new("starting"),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        })))
    }

    /// Whether anything is counted.
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// A new stage of `total` steps (`probing targets`, `UDP size ladders`).
    pub fn stage(&self, name: &'static str, total: usize) {
        if let Some(c) = &self.0 {
            *c.stage.lock().unwrap_or_else(|e| e.into_inner()) = name;
            c.done.store(0, Ordering::Relaxed);
            c.total.store(total, Ordering::Relaxed);
        }
    }

    /// One step of the stage done.
    pub fn tick(&self) {
        if let Some(c) = &self.0 {
            c.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The line to draw now, `None` while it is too early to show one.
    pub fn line(&self) -> Option<String> {
        let c = self.0.as_ref()?;
        let elapsed = c.started.elapsed();
        if elapsed < SHOW_AFTER {
            return None;
        }
        let stage = *c.stage.lock().unwrap_or_else(|e| e.into_inner());
        let (done, total) = (
            c.done.load(Ordering::Relaxed),
            c.total.load(Ordering::Relaxed),
        );
        Some(if total > 0 {
            format!(
                "{stage} {}/{total} · {:.1} s",
                done.min(total),
                elapsed.as_secs_f64()
            )
        } else {
            format!("{stage} · {:.1} s", elapsed.as_secs_f64())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_stage_and_stays_silent_when_disabled() {
        let off = Progress::default();
        off.stage("probing targets", 3);
        off.tick();
        assert!(off.line().is_none() && !off.is_enabled());

        assert!(
            Progress::enabled().line().is_none(),
            "nothing in the first half second"
        );
        let p = Progress::since(Instant::now() - Duration::from_secs(2));
        p.stage("probing targets", 3);
        p.tick();
        p.tick();
        let line = p.line().unwrap();
        assert!(line.starts_with("probing targets 2/3 · 2."), "{line}");
    }
}
