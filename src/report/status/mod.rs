//! The daemon's status page (`/`) and probe logs (`/logs?id=N`), after
//! blackbox_exporter's: what `serve` knows now (trunks, targets, findings,
//! origination, test calls, registrations) and the last `--history-limit`
//! probes with their SIP trace and evidence.
//!
//! [`StatusBoard`] is the page's memory: `serve` records into it beside the
//! metrics; [`html`] renders it. It holds the latest row per target (bounded
//! by the fleet) and a ring of recent probes (bounded by the limit), nothing
//! else.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::checks::call::Judgement;
use crate::checks::origination::OriginationResult;
use crate::checks::Finding;
use crate::outcome::credentials::CredentialsEvidence;
use crate::outcome::{Outcome, TargetResult};

pub mod html;

/// Default of `--history-limit`.
pub const DEFAULT_HISTORY: usize = 100;

/// What the page knows; shared by the daemon's loops and its HTTP handlers.
pub struct StatusBoard {
    started: SystemTime,
    limit: usize,
    /// The probes' deadline, for their explanations.
    timeout: std::time::Duration,
    inner: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    /// By trunk key (`trunk_id`), then target address.
    targets: BTreeMap<String, BTreeMap<String, TargetRow>>,
    findings: HashMap<String, Vec<Finding>>,
    calls: BTreeMap<String, CallRow>,
    registrations: BTreeMap<String, RegistrationRow>,
    origination: Option<(SystemTime, Vec<OriginationResult>)>,
    history: VecDeque<Arc<ProbeLog>>,
    next_id: u64,
    /// The last address a carrier said it saw us at (for the explanations).
    seen_as: Option<IpAddr>,
}

/// Who a probe was for: the labels of its series.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub trunk_key: &'a str,
    pub trunk: &'a str,
    pub gateway: &'a str,
    /// `ip:port`.
    pub target: &'a str,
}

/// The latest probe of one target.
#[derive(Debug, Clone)]
pub struct TargetRow {
    pub trunk: String,
    pub gateway: String,
    pub target: String,
    pub transport: &'static str,
    /// Up after hysteresis (what `trunkprobe_target_up` says).
    pub up: bool,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    pub rtt_ms: Option<f64>,
    pub detail: String,
    /// Why it failed and what to do (`None` when up).
    pub cause: Option<String>,
    pub fix: Option<String>,
    pub at: SystemTime,
    /// The address carriers saw us at (Via `received`), and ours.
    pub received: Option<IpAddr>,
    pub local: Option<SocketAddr>,
    /// The probe in the history (`/logs?id=N`), while it is there.
    pub log: u64,
}

impl TargetRow {
    /// Whether a new probe's row would say what this one says: the same
    /// subject and an OK with the same status line (any other outcome's words
    /// depend on more than the row keeps).
    fn answers_as(&self, s: &Subject<'_>, r: &TargetResult) -> bool {
        r.outcome == Outcome::Ok
            && self.outcome == Outcome::Ok
            && self.status_code == r.status_code
            && self.reason == r.reason
            && self.transport == r.transport.as_str()
            && self.trunk == s.trunk
            && self.gateway == s.gateway
    }
}

/// One probe of the history.
#[derive(Debug)]
pub struct ProbeLog {
    pub id: u64,
    pub at: SystemTime,
    pub trunk_key: String,
    pub trunk: String,
    pub gateway: String,
    pub target: String,
    pub up: bool,
    pub result: TargetResult,
}

/// The last test call of a trunk.
#[derive(Debug, Clone)]
pub struct CallRow {
    pub trunk: String,
    pub to: String,
    pub verdict: &'static str,
    pub ok: bool,
    pub detail: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
    pub mos: Option<f64>,
    pub at: SystemTime,
}

/// The last registration check of a trunk.
#[derive(Debug, Clone)]
pub struct RegistrationRow {
    pub trunk: String,
    pub gateway: String,
    pub result: &'static str,
    pub bindings: usize,
    pub bolna_bound: bool,
    pub at: SystemTime,
}

impl StatusBoard {
    /// A board keeping the last `history_limit` probes (0: none, and no
    /// traces) of probes with this deadline.
    pub fn new(history_limit: usize, timeout: std::time::Duration) -> StatusBoard {
        StatusBoard {
            started: SystemTime::now(),
            limit: history_limit,
            timeout,
            inner: Mutex::new(Board::default()),
        }
    }

    /// Whether probes should keep their SIP messages (for `/logs`).
    pub fn wants_traces(&self) -> bool {
        self.limit > 0
    }

    pub fn history_limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One probe's result: the target's row, and an entry of the history.
    pub fn record_probe(&self, s: &Subject<'_>, r: &TargetResult, up: bool) {
        let at = SystemTime::now();
        let mut b = self.lock();
        b.next_id += 1;
        let id = b.next_id;
        if r.received.is_some() {
            b.seen_as = r.received;
        }
        // A target answering as it did last time (most probes of a fleet): the
        // row already says what the answer means, only its numbers change. An
        // OK's explanation is its status line, so this is exactly what a new
        // row would hold, without building one (strings, an explanation).
        let steady = b
            .targets
            .get_mut(s.trunk_key)
            .and_then(|rows| rows.get_mut(s.target))
            .filter(|row| row.answers_as(s, r))
            .map(|row| {
                row.up = up;
                row.rtt_ms = r.rtt.map(crate::text::ms);
                row.at = at;
                row.received = r.received;
                row.local = r.local;
                row.log = id;
                (row.detail.clone(), row.cause.clone(), row.fix.clone())
            });
        if let Some(words) = steady {
            if self.limit > 0 {
                let result = self.logged(r, words);
                self.push_log(&mut b, id, at, s, up, result);
            }
            return;
        }
        // The daemon's results carry evidence only; say what it means, as `check` does.
        let explained = (r.outcome != Outcome::DnsError).then(|| {
            let ctx = crate::checks::reachability::Context {
                timeout: self.timeout,
                seen_as: b.seen_as,
            };
            crate::checks::reachability::explain(r, &ctx)
        });
        let (detail, cause, fix) = match explained {
            Some(e) => (e.detail, e.cause, e.fix),
            None => (r.detail.clone(), r.cause.clone(), r.fix.clone()),
        };
        let row = TargetRow {
            trunk: s.trunk.to_string(),
            gateway: s.gateway.to_string(),
            target: s.target.to_string(),
            transport: r.transport.as_str(),
            up,
            outcome: r.outcome,
            status_code: r.status_code,
            reason: r.reason.clone(),
            rtt_ms: r.rtt.map(crate::text::ms),
            detail,
            cause,
            fix,
            at,
            received: r.received,
            local: r.local,
            log: id,
        };
        let log = (self.limit > 0)
            .then(|| self.logged(r, (row.detail.clone(), row.cause.clone(), row.fix.clone())));
        // Most probes update a row that exists: no new keys.
        let rows = match b.targets.get_mut(s.trunk_key) {
            Some(rows) => rows,
            None => b.targets.entry(s.trunk_key.to_string()).or_default(),
        };
        match rows.get_mut(s.target) {
            Some(slot) => *slot = row,
            None => {
                rows.insert(s.target.to_string(), row);
            }
        }
        if let Some(result) = log {
            self.push_log(&mut b, id, at, s, up, result);
        }
    }

    /// The result as the history keeps it: the row's words, no parsed response
    /// (it is already in the trace and the fields).
    fn logged(
        &self,
        r: &TargetResult,
        (detail, cause, fix): (String, Option<String>, Option<String>),
    ) -> TargetResult {
        let mut result = r.clone();
        result.response = None;
        result.detail = detail;
        result.cause = cause;
        result.fix = fix;
        result
    }

    fn push_log(
        &self,
        b: &mut Board,
        id: u64,
        at: SystemTime,
        s: &Subject<'_>,
        up: bool,
        result: TargetResult,
    ) {
        b.history.push_front(Arc::new(ProbeLog {
            id,
            at,
            trunk_key: s.trunk_key.to_string(),
            trunk: s.trunk.to_string(),
            gateway: s.gateway.to_string(),
            target: s.target.to_string(),
            up,
            result,
        }));
        b.history.truncate(self.limit);
    }

    /// A target that is no longer probed.
    pub fn forget_target(&self, trunk_key: &str, target: &str) {
        let mut b = self.lock();
        if let Some(t) = b.targets.get_mut(trunk_key) {
            t.remove(target);
            if t.is_empty() {
                b.targets.remove(trunk_key);
            }
        }
    }

    /// A trunk that left the list: its rows and findings go (its history stays).
    pub fn forget_trunk(&self, trunk_key: &str) {
        let mut b = self.lock();
        b.targets.remove(trunk_key);
        b.findings.remove(trunk_key);
        b.calls.remove(trunk_key);
        b.registrations.remove(trunk_key);
    }

    pub fn record_findings(&self, trunk_key: &str, findings: &[Finding]) {
        self.lock()
            .findings
            .insert(trunk_key.to_string(), findings.to_vec());
    }

    pub fn record_origination(&self, results: &[OriginationResult]) {
        self.lock().origination = Some((SystemTime::now(), results.to_vec()));
    }

    pub fn record_call(
        &self,
        trunk_key: &str,
        trunk: &str,
        to: &str,
        j: &Judgement,
        mos: Option<f64>,
    ) {
        let row = CallRow {
            trunk: trunk.to_string(),
            to: to.to_string(),
            verdict: j.verdict.as_str(),
            ok: j.verdict == crate::checks::call::Verdict::TwoWayAudio,
            detail: j.detail.clone(),
            cause: j.cause.clone(),
            fix: j.fix.clone(),
            mos,
            at: SystemTime::now(),
        };
        self.lock().calls.insert(trunk_key.to_string(), row);
    }

    pub fn record_registration(
        &self,
        trunk_key: &str,
        trunk: &str,
        gateway: &str,
        e: &CredentialsEvidence,
    ) {
        let row = RegistrationRow {
            trunk: trunk.to_string(),
            gateway: gateway.to_string(),
            result: e.result.as_str(),
            bindings: e.bindings.len(),
            bolna_bound: e.bolna_bound,
            at: SystemTime::now(),
        };
        self.lock().registrations.insert(trunk_key.to_string(), row);
    }

    /// The probe `id` of the history, while it is there.
    pub fn log(&self, id: u64) -> Option<Arc<ProbeLog>> {
        self.lock().history.iter().find(|l| l.id == id).cloned()
    }
}
