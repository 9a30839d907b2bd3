//! The evidence of one credentials check: a REGISTER without Contact to a
//! userpass trunk's gateway, challenged and answered (RFC 3261 §10.2.3), and
//! what the registrar said. [`crate::checks::credentials`] explains it.

use std::net::SocketAddr;

use serde::Serialize;

use crate::sip::register::Binding;
use crate::transport::TransportFailure;
use crate::trunk::Transport;

/// What the registrar made of our credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialsResult {
    /// A 2xx after our digest answer: the carrier accepts the credentials.
    Accepted { code: u16 },
    /// A 2xx without any challenge: the registrar asked for nothing, so the
    /// credentials were not tested.
    NotChallenged { code: u16 },
    /// Challenged again, or 403, after our answer: the credentials are refused.
    Rejected { code: u16, reason: String },
    /// Challenged, and no password to answer with: not tested.
    NoPassword { code: u16 },
    /// Another final response (404, 405, 5xx...): the registrar did not say.
    Refused { code: u16, reason: String },
    /// The challenge could not be answered (an algorithm or qop we lack).
    BadChallenge { code: u16, why: String },
    /// No final response before the deadline.
    Timeout,
    /// The connection (TCP/TLS) or socket failed.
    NetworkError { failure: TransportFailure },
}

impl CredentialsResult {
    /// The result's name (the `result` label of the registration series).
    pub fn as_str(&self) -> &'static str {
        match self {
            CredentialsResult::Accepted { .. } => "accepted",
            CredentialsResult::Rejected { .. } => "rejected",
            CredentialsResult::NoPassword { .. } => "no_password",
            CredentialsResult::NotChallenged { .. } => "not_challenged",
            CredentialsResult::Refused { .. } => "refused",
            CredentialsResult::BadChallenge { .. } => "bad_challenge",
            CredentialsResult::Timeout => "timeout",
            CredentialsResult::NetworkError { .. } => "network_error",
        }
    }
}

/// One REGISTER query and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialsEvidence {
    /// The registrar's address, as called.
    pub target: SocketAddr,
    pub transport: Transport,
    /// The address-of-record queried (`sip:USER@gateway`).
    pub aor: String,
    pub username: String,
    pub result: CredentialsResult,
    /// The challenge's realm and algorithm.
    pub realm: Option<String>,
    pub algorithm: Option<String>,
    /// `qop=auth` was offered and answered.
    pub qop: bool,
    /// The bindings of the 2xx (none changed).
    pub bindings: Vec<Binding>,
    /// A binding for Bolna's address (13.200.45.61) is among them.
    pub bolna_bound: bool,
    /// Status line of each response, in order (`401 Unauthorized`, `200 OK`).
    pub responses: Vec<String>,
    /// `--trace`: every message of the query (digest answers are hashes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<super::WireMessage>>,
}
