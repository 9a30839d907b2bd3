//! Errors that stop trunkprobe itself from doing its job (exit code 2).
//!
//! A trunk failing a check is not an error: it is a finding or a target outcome.
//! Every variant can give a one-line hint for the user; no variant ever carries
//! the API token or a SIP password.

use std::path::PathBuf;

use crate::source::SourceError;

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
