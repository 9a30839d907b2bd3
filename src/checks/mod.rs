//! Findings about a trunk: what is wrong or risky, how bad, and how to fix it.
//!
//! `lint` holds the static checks derived from Bolna's setup guide and API rules.
//! Every finding has a stable `check` id (part of the JSON output and the metrics),
//! a severity, a message saying what was observed, and a remedy.

use serde::Serialize;

pub mod lint;

pub use lint::lint;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Stable identifiers of every check. Their `as_str` spellings are an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    // filled in by lint
    Placeholder,
}

impl CheckId {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Placeholder => "placeholder",
        }
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing found about a trunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: CheckId,
    pub severity: Severity,
    /// What was observed, in one sentence.
    pub message: String,
    /// What to do about it, in the setup guide's words where it has them.
    pub remedy: String,
    /// The `PATCH /sip-trunks/trunks/{id}` body that fixes it, when an update does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<serde_json::Value>,
}
