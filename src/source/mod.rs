//! Where trunk definitions come from: Bolna's API, a JSON file, or flags.

use crate::trunk::Trunk;

/// Why trunk definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("placeholder")]
    Placeholder,
}

impl SourceError {
    pub fn hint(&self) -> Option<String> {
        None
    }
}

/// Parses a JSON document holding trunks.
pub fn parse_trunks_json(_bytes: &[u8]) -> Result<Vec<Trunk>, SourceError> {
    Err(SourceError::Placeholder)
}
