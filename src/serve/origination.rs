//! The origination URIs (Bolna's inbound side) checked on their own interval
//! by shard 0, and at once when the set changes; until the daemon's stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::checks::origination::OriginationUri;
use crate::probe;

use super::fleet::Ctx;

/// Checks the origination URIs every `interval` (and at once when the set
/// changes) until the daemon stops; `uris` is `None` until the first trunk list loads.
pub async fn origination_loop(
    ctx: Arc<Ctx>,
    concurrency: usize,
    interval: Duration,
    mut uris: watch::Receiver<Option<Vec<OriginationUri>>>,
) {
    let mut stop = ctx.stop.clone();
    loop {
        let current = uris.borrow_and_update().clone();
        if let Some(list) = current.filter(|l| !l.is_empty()) {
            let results = tokio::select! {
                r = probe::origination::check(&list, &ctx.resolver, &ctx.prober, concurrency) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            for r in results.iter().filter(|r| !r.ok) {
                let outcomes: Vec<&str> = r
                    .targets
                    .iter()
                    .map(|t| t.result.outcome.as_str())
                    .collect();
                tracing::warn!(uri = %r.uri, ?outcomes, "origination URI does not answer healthily");
            }
            ctx.metrics.origination_egress.record_origination(&results);
            ctx.board.record_origination(&results);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            r = uris.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
