//! Errors that stop trunkprobe itself from doing its job (exit code 2).
//!
//! A trunk failing a check is not an error: it is a finding or a target outcome.
//! Every variant can give a one-line hint for the user; no variant ever carries
//! the API token or a SIP password.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading trunk definitions failed (API, file or flags).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A command-line value could not be used.
    #[error("{0}")]
    Usage(String),
    /// The extra CA bundle given with `--ca-file` could not be used.
    #[error("cannot use CA file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    /// A local socket or runtime could not be set up.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short suggestion of what to do next, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Source(e) => e.hint(),
            Error::Usage(_) => Some("run `trunkprobe check --help` for the flags".into()),
            Error::CaFile { .. } => {
                Some("pass a PEM file holding one or more CA certificates".into())
            }
            Error::Io { .. } => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why trunk definitions could not be loaded. No variant ever holds the API
/// token or a SIP password.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The trunk file could not be read.
    #[error("cannot read trunk file {}: {source}", path.display())]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file or stdin is not JSON.
    #[error("{origin} is not valid JSON: {detail} (line {line}, column {column})")]
    InvalidJson {
        origin: String,
        line: usize,
        column: usize,
        detail: String,
    },
    /// JSON, but not a trunk list, a trunk, or a create request.
    #[error("{origin} does not hold trunks: {detail}")]
    WrongShape { origin: String, detail: String },
    /// The API answered 401 or 403.
    #[error("the trunk API {url} refused the token ({status})")]
    ApiUnauthorized { url: String, status: u16 },
    /// The API answered another non-success status. `excerpt` is a short,
    /// control-character-free start of the body.
    #[error("the trunk API {url} answered {status}{}", quote_excerpt(excerpt))]
    ApiStatus {
        url: String,
        status: u16,
        excerpt: String,
    },
    /// No complete answer within the overall timeout.
    #[error("the trunk API {url} did not answer within {}", fmt_duration(*timeout))]
    ApiTimeout { url: String, timeout: Duration },
    /// Connecting or talking to the API failed (DNS, refused, TLS, reset).
    #[error("cannot reach the trunk API {url}: {detail}")]
    ApiConnect { url: String, detail: String },
    /// The API answered 2xx with a body that is not JSON.
    #[error("the trunk API {url} sent invalid JSON: {detail} (line {line}, column {column})")]
    ApiInvalidJson {
        url: String,
        line: usize,
        column: usize,
        detail: String,
    },
    /// The API body exceeded [`crate::source::MAX_BODY_BYTES`].
    #[error("the trunk API {url} sent more than {limit} bytes")]
    ApiBodyTooLarge { url: String, limit: usize },
    /// Neither `--token-file` nor `BOLNA_API_KEY` gave a token.
    #[error("no API token given")]
    TokenMissing,
    /// The token file could not be read.
    #[error("cannot read token file {}: {source}", path.display())]
    TokenFileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The token file holds only whitespace.
    #[error("token file {} is empty", path.display())]
    TokenFileEmpty { path: PathBuf },
    /// The token has characters an HTTP header cannot carry.
    #[error("the API token contains characters that cannot be sent in an HTTP header")]
    TokenMalformed,
    /// A command-line value could not be used.
    #[error("invalid {flag} value {value:?}: {reason}")]
    BadFlag {
        flag: String,
        value: String,
        reason: String,
    },
}

fn quote_excerpt(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt:?}")
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl SourceError {
    /// One line saying what to do next, in the user's terms.
    pub fn hint(&self) -> Option<String> {
        let h = match self {
            SourceError::FileUnreadable { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => "check the trunk file path",
                io::ErrorKind::PermissionDenied => "check the trunk file's permissions",
                _ => "check the trunk file path and that it is a readable file",
            },
            SourceError::InvalidJson { .. } => "fix the JSON syntax at the line and column shown",
            SourceError::WrongShape { .. } => {
                "give the GET /sip-trunks/trunks list, one trunk object, or a create-trunk \
                 request body (see tests/fixtures/trunks/)"
            }
            SourceError::ApiUnauthorized { status: 403, .. } => {
                "check BOLNA_API_KEY / --token-file: the API rejected the token (SIP trunking \
                 is in beta; the account may need access from enterprise@bolna.ai)"
            }
            SourceError::ApiUnauthorized { .. } => {
                "check BOLNA_API_KEY / --token-file: the API rejected the token"
            }
            SourceError::ApiStatus { status, .. } => match status {
                500..=599 => "Bolna's API is failing; retry later",
                429 => "the API is rate-limiting this token; retry later or refresh less often",
                404 => "check --api-url: it should be the API root, e.g. https://api.bolna.ai",
                _ => "check --api-url and the token's account",
            },
            SourceError::ApiTimeout { .. } => {
                "check --api-url and network reachability (or allow a longer API timeout)"
            }
            SourceError::ApiConnect { .. } => {
                "check --api-url and network reachability (DNS, proxy, firewall)"
            }
            SourceError::ApiInvalidJson { .. } | SourceError::ApiBodyTooLarge { .. } => {
                "check --api-url points at Bolna's API (https://api.bolna.ai), not a web page or \
                 proxy"
            }
            SourceError::TokenMissing => {
                "set BOLNA_API_KEY or pass --token-file with your Bolna API key"
            }
            SourceError::TokenFileUnreadable { .. } => {
                "check the --token-file path and its permissions"
            }
            SourceError::TokenFileEmpty { .. } => "put your Bolna API key in the --token-file file",
            SourceError::TokenMalformed => {
                "check the key in BOLNA_API_KEY / --token-file: no quotes, spaces or line breaks \
                 inside it"
            }
            SourceError::BadFlag { .. } => "run `trunkprobe check --help` for the flag formats",
        };
        Some(h.to_string())
    }
}
