//! The report of a `check` run: a tree of trunks, their gateways and each
//! gateway's targets, with findings, the egress address and the origination
//! results, summarised; rendered as text for people ([`text`]) and as JSON for
//! machines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::checks::origination::OriginationResult;
use crate::checks::path::Egress;
use crate::checks::{Finding, Severity};
use crate::outcome::{Outcome, TargetResult};
use crate::resolve::Resolution;
use crate::text::ser_ms;

pub mod call;
pub mod pcap;
pub mod progress;
pub mod status;
pub mod text;
pub mod trace;

pub use text::{to_text, Style};

/// Output format of `check` and `demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// One gateway of a trunk and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayReport {
    pub host: String,
    pub port: i64,
    pub priority: i64,
    /// `None` when the gateway was not resolved (bad port or transport).
    pub dns: Option<Resolution>,
    pub targets: Vec<TargetResult>,
    /// The REGISTER query of a userpass trunk's gateway (the credentials check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<crate::outcome::credentials::CredentialsEvidence>,
}

/// Whether and how a trunk was probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkStatus {
    Probed,
    /// `is_active=false`: listed, linted, not probed.
    SkippedInactive,
    /// The transport is not one of the documented values, so there is nothing to probe with.
    SkippedInvalidTransport,
    /// The record does not fit the create-trunk schema (`definition_invalid`): not probed.
    InvalidDefinition,
}

/// One trunk: its findings and its gateways' results.
#[derive(Debug, Clone, Serialize)]
pub struct TrunkReport {
    pub id: Option<String>,
    pub name: String,
    pub provider: String,
    /// `udp`, `tcp` or `tls`; the raw value when invalid.
    pub transport: String,
    pub active: bool,
    pub status: TrunkStatus,
    pub findings: Vec<Finding>,
    pub gateways: Vec<GatewayReport>,
}

impl TrunkReport {
    pub fn targets(&self) -> impl Iterator<Item = &TargetResult> {
        self.gateways.iter().flat_map(|g| g.targets.iter())
    }

    /// Healthy: every target ok and no error-level finding. Skipped trunks only count their findings.
    pub fn healthy(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
            && self.targets().all(|t| t.outcome == Outcome::Ok)
    }
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub trunks: usize,
    pub trunks_probed: usize,
    pub trunks_skipped: usize,
    /// Trunks whose definition does not fit the schema (counted in `trunks_skipped` too).
    pub trunks_invalid: usize,
    pub trunks_healthy: usize,
    pub targets: usize,
    pub targets_ok: usize,
    pub targets_failed: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub findings: BTreeMap<&'static str, usize>,
    /// Every probed target ok and no error-level finding.
    pub healthy: bool,
    /// Origination URI addresses that answered healthy / did not.
    pub origination_ok: usize,
    pub origination_failed: usize,
}

/// The whole `check` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    /// RFC 3339 time the run started.
    pub started_at: String,
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
    pub trunks: Vec<TrunkReport>,
    pub summary: Summary,
    /// The address carriers saw this prober at, and whether it is behind NAT.
    pub egress: Egress,
    /// Bolna's inbound side as a carrier reaches it (empty with `--no-origination`).
    pub origination: Vec<OriginationResult>,
}

impl Report {
    /// Counts outcomes and findings again (after ladders or origination results were added).
    pub fn summarise(&mut self) {
        let mut s = Summary {
            trunks: self.trunks.len(),
            ..Summary::default()
        };
        for o in Outcome::ALL {
            s.outcomes.insert(o.as_str(), 0);
        }
        for sev in [Severity::Error, Severity::Warning, Severity::Info] {
            s.findings.insert(sev.as_str(), 0);
        }
        for t in &self.trunks {
            match t.status {
                TrunkStatus::Probed => s.trunks_probed += 1,
                TrunkStatus::InvalidDefinition => {
                    s.trunks_skipped += 1;
                    s.trunks_invalid += 1;
                }
                _ => s.trunks_skipped += 1,
            }
            if t.healthy() {
                s.trunks_healthy += 1;
            }
            for f in &t.findings {
                *s.findings.entry(f.severity.as_str()).or_default() += 1;
            }
            for target in t.targets() {
                s.targets += 1;
                *s.outcomes.entry(target.outcome.as_str()).or_default() += 1;
                if target.outcome == Outcome::Ok {
                    s.targets_ok += 1;
                } else {
                    s.targets_failed += 1;
                }
            }
        }
        for o in self.origination.iter().flat_map(|o| o.targets.iter()) {
            if o.result.outcome == Outcome::Ok {
                s.origination_ok += 1;
            } else {
                s.origination_failed += 1;
            }
        }
        s.healthy = s.trunks_healthy == s.trunks && s.origination_failed == 0;
        self.summary = s;
    }

    /// Attaches the origination results and summarises again (a failed
    /// origination address makes the run unhealthy).
    pub fn set_origination(&mut self, results: Vec<OriginationResult>) {
        self.origination = results;
        self.summarise();
    }

    /// 0 when every probed target is ok and no error-level finding exists, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.summary.healthy {
            0
        } else {
            1
        }
    }
}

/// The report as one JSON document.
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("the report serialises to JSON")
}

/// Prints a report on stdout in the chosen format.
pub fn print_report(report: &Report, format: Format) {
    match format {
        Format::Json => println!("{}", to_json(report)),
        Format::Text => print!("{}", to_text(report, Style::detect())),
    }
}
