//! `serve`'s scheduled test calls (`--test-call TRUNK=NUMBER`) and
//! registration checks (a REGISTER without Contact to userpass gateways with
//! a password, `--register-interval`), each on its own jittered interval,
//! with the same safety rules as `call`: every call ends (BYE or CANCEL) on
//! completion, at its hard cap, and on SIGTERM; a trunk that leaves the list
//! or is deactivated is no longer called.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ladders::jittered;
use crate::checks::call::{judge, Context};
use crate::metrics::Metrics;
use crate::probe::call::{place, CallOptions, CallPlan, Until};
use crate::probe::credentials;
use crate::resolve::GatewayResolver;
use crate::transport::{ExchangeConfig, Target};
use crate::trunk::{AuthType, Secret, Trunk};

/// One `--test-call TRUNK=NUMBER`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TestCall {
    /// A trunk id or name.
    pub trunk: String,
    pub number: String,
}

impl TestCall {
    /// Parses `TRUNK=NUMBER`.
    pub fn parse(s: &str) -> Result<TestCall, String> {
        match s.rsplit_once('=') {
            Some((t, n)) if !t.trim().is_empty() && !n.trim().is_empty() => Ok(TestCall {
                trunk: t.trim().to_string(),
                number: n.trim().to_string(),
            }),
            _ => Err(format!(
                "{s:?} is not TRUNK=NUMBER (a trunk id or name, then the number to call)"
            )),
        }
    }
}

/// How `serve` places test calls and checks registrations.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub calls: Vec<TestCall>,
    pub call_interval: Duration,
    pub call_duration: Duration,
    pub call_until: Until,
    /// Test calls in flight at once.
    pub calls_in_flight: usize,
    /// Digest passwords by trunk id or name.
    pub passwords: HashMap<String, Secret>,
    /// 0: no registration checks.
    pub register_interval: Duration,
}

impl Schedule {
    fn password(&self, trunk: &Trunk) -> Option<Secret> {
        trunk
            .id
            .as_ref()
            .and_then(|id| self.passwords.get(id))
            .or_else(|| self.passwords.get(&trunk.name))
            .cloned()
            .or_else(|| trunk.auth_password.clone().filter(|p| !p.is_empty()))
    }
}

/// The first call of a trunk is placed within this (or the interval, if shorter).
pub const FIRST_CALL_WITHIN: Duration = Duration::from_secs(10);
/// A test call's hard cap is its media duration plus this (ringing included).
pub const RING_ALLOWANCE: Duration = Duration::from_secs(30);

/// What the loops share.
pub struct Loops {
    pub metrics: Arc<Metrics>,
    pub board: Arc<crate::report::status::StatusBoard>,
    pub resolver: GatewayResolver,
    pub exchange: ExchangeConfig,
    pub schedule: Schedule,
}

/// The trunk a test call names, if it is in the list, active and valid.
fn find<'a>(trunks: &'a [Trunk], name: &str) -> Option<&'a Trunk> {
    trunks
        .iter()
        .find(|t| t.id.as_deref() == Some(name) || t.name == name)
        .filter(|t| t.is_active && t.invalid.is_none())
}

/// The first address of the trunk's gateways, in priority order.
async fn first_target(resolver: &GatewayResolver, trunk: &Trunk) -> Option<Target> {
    let transport = trunk.transport.valid()?;
    let mut gateways: Vec<_> = trunk.gateways.iter().collect();
    gateways.sort_by_key(|g| g.priority);
    for g in gateways {
        let Some(port) = g.port() else { continue };
        let r = resolver.resolve(&g.address, transport).await;
        if let Some(ip) = r.addresses.first() {
            return Some(Target {
                host: g.address.as_str().into(),
                addr: SocketAddr::new(*ip, port),
                transport,
            });
        }
    }
    None
}

/// Places the scheduled test calls until `stop`; `trunks` is `None` until the
/// first list loads. On stop, calls in flight hang up (BYE/CANCEL) and are
/// waited for.
pub async fn call_loop(
    loops: Arc<Loops>,
    mut trunks: watch::Receiver<Option<Arc<Vec<Trunk>>>>,
    mut stop: watch::Receiver<bool>,
) {
    let s = &loops.schedule;
    if s.calls.is_empty() {
        return;
    }
    let slots = Arc::new(Semaphore::new(s.calls_in_flight.max(1)));
    let mut due: HashMap<TestCall, Instant> = HashMap::new();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut busy: HashSet<TestCall> = HashSet::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<TestCall>();
    loop {
        let list = trunks.borrow_and_update().clone();
        let now = Instant::now();
        if let Some(list) = &list {
            // Trunks that left the list or were deactivated are no longer called.
            let live: Vec<&TestCall> = s
                .calls
                .iter()
                .filter(|c| find(list, &c.trunk).is_some())
                .collect();
            due.retain(|c, _| live.contains(&c));
            let first = s.call_interval.min(FIRST_CALL_WITHIN);
            for (i, c) in live.iter().enumerate() {
                due.entry((*c).clone()).or_insert_with(|| {
                    now + first.mul_f64((i as f64 + 1.0) / (live.len() as f64 + 1.0))
                });
            }
            let keep: HashSet<String> = live
                .iter()
                .filter_map(|c| find(list, &c.trunk))
                .map(|t| t.id.clone().unwrap_or_else(|| t.name.clone()))
                .collect();
            loops.metrics.test_calls.retain_calls(&keep);
            for (c, at) in due.iter_mut() {
                if *at > now || busy.contains(c) {
                    continue;
                }
                let Some(trunk) = find(list, &c.trunk).cloned() else {
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    // Every slot is in use: try again when one frees.
                    continue;
                };
                *at = now + jittered(s.call_interval);
                busy.insert(c.clone());
                let (loops, c, done, stop) =
                    (loops.clone(), c.clone(), done_tx.clone(), stop.clone());
                running.spawn(async move {
                    one_call(&loops, &trunk, &c.number, stop).await;
                    drop(permit);
                    let _ = done.send(c);
                });
            }
        }
        let next = due
            .iter()
            .filter(|(c, _)| !busy.contains(*c))
            .map(|(_, at)| *at)
            .min();
        tokio::select! {
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            Some(c) = done_rx.recv() => { busy.remove(&c); }
            Some(_) = running.join_next(), if !running.is_empty() => {}
            r = trunks.changed() => if r.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // Calls in flight see the stop, hang up and report.
    while running.join_next().await.is_some() {}
}

/// One test call of `trunk` to `number`, judged and recorded.
async fn one_call(loops: &Loops, trunk: &Trunk, number: &str, mut stop: watch::Receiver<bool>) {
    let s = &loops.schedule;
    let label = trunk.id.clone().unwrap_or_else(|| trunk.name.clone());
    let Some(target) = first_target(&loops.resolver, trunk).await else {
        tracing::warn!(trunk = %label, "test call: no gateway address resolved");
        return;
    };
    let options = CallOptions {
        from: None,
        auth_username: None,
        password: s.password(trunk),
        duration: s.call_duration,
        until: s.call_until,
        max_duration: s.call_duration + RING_ALLOWANCE,
        dtmf: String::new(),
        media_ip: None,
    };
    let plan = match CallPlan::for_trunk(trunk, target, loops.exchange.clone(), number, &options) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(trunk = %label, %why, "test call not placed");
            return;
        }
    };
    tracing::info!(trunk = %label, to = %plan.to, gateway = %plan.target.addr, "test call: dialling");
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let evidence = place(&plan, stopped).await;
    let ctx = Context {
        optimistic: trunk.media_encryption_optimistic,
        ..Context::default()
    };
    let j = judge(&evidence, &ctx);
    tracing::info!(
        trunk = %label,
        verdict = j.verdict.as_str(),
        detail = %crate::text::printable(&j.detail),
        "test call ended"
    );
    loops
        .metrics
        .test_calls
        .record_call(&label, &trunk.name, j.verdict, &evidence);
    let mos = evidence.media.as_ref().and_then(|m| m.mos);
    loops
        .board
        .record_call(&label, &trunk.name, &plan.to, &j, mos);
}

/// Checks the registration of every userpass trunk with a password every
/// `register_interval` until `stop`.
pub async fn register_loop(
    loops: Arc<Loops>,
    mut trunks: watch::Receiver<Option<Arc<Vec<Trunk>>>>,
    mut stop: watch::Receiver<bool>,
) {
    let s = &loops.schedule;
    if s.register_interval.is_zero() {
        return;
    }
    loop {
        let list = trunks.borrow_and_update().clone();
        if let Some(list) = list {
            let mut keep = HashSet::new();
            for trunk in list.iter().filter(|t| {
                t.is_active
                    && t.invalid.is_none()
                    && t.auth_type.valid() == Some(AuthType::Userpass)
            }) {
                let (Some(username), Some(password)) = (
                    trunk.auth_username.clone().filter(|u| !u.is_empty()),
                    s.password(trunk),
                ) else {
                    continue;
                };
                let label = trunk.id.clone().unwrap_or_else(|| trunk.name.clone());
                keep.insert(label.clone());
                let Some(target) = first_target(&loops.resolver, trunk).await else {
                    continue;
                };
                let e = tokio::select! {
                    e = credentials::check(&target, &loops.exchange, &username, Some(&password)) => e,
                    _ = stop.wait_for(|s| *s) => return,
                };
                tracing::info!(
                    trunk = %label,
                    gateway = %target.host,
                    result = crate::metrics::registration_result(&e.result),
                    bindings = e.bindings.len(),
                    "registration checked"
                );
                loops
                    .metrics
                    .test_calls
                    .record_registration(&label, &trunk.name, &target.host, &e);
                loops
                    .board
                    .record_registration(&label, &trunk.name, &target.host, &e);
            }
            loops.metrics.test_calls.retain_registrations(&keep);
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(s.register_interval)) => {}
            r = trunks.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_calls_parse() {
        assert_eq!(
            TestCall::parse("Twilio Production=+14155550100").unwrap(),
            TestCall {
                trunk: "Twilio Production".into(),
                number: "+14155550100".into()
            }
        );
        for bad in ["", "=1", "t=", "nothing"] {
            assert!(TestCall::parse(bad).is_err(), "{bad}");
        }
    }
}
