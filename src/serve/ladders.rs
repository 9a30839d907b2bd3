//! The UDP size ladder's slow schedule in `serve` (`--mtu-interval`): a random
//! first run within a minute, then the interval ±10% so a fleet's ladders do
//! not line up.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;

use crate::probe::MtuConfig;

/// The first ladder of a target runs at a random time within this (or the interval, if shorter).
pub const MTU_FIRST_RUN_WITHIN: Duration = Duration::from_secs(60);

/// The MTU ladder in `serve` (`--mtu-interval`, off with 0).
pub struct MtuSchedule {
    pub config: MtuConfig,
    pub interval: Duration,
    pub limit: Arc<Semaphore>,
}

impl MtuSchedule {
    /// Delay before a target's first ladder: random within a minute (or the interval).
    pub fn first_delay(&self) -> Duration {
        random_upto(self.interval.min(MTU_FIRST_RUN_WITHIN))
    }

    /// Delay between ladders: the interval ±10%, so a fleet's ladders do not line up.
    pub fn next_delay(&self) -> Duration {
        jittered(self.interval)
    }
}

fn random_upto(d: Duration) -> Duration {
    let ms = d.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(0..ms))
}

/// `d` ±10%.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..=1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(3600));
            assert!(d >= Duration::from_secs(3240) && d <= Duration::from_secs(3960));
        }
    }
}
