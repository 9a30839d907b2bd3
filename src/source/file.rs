//! A JSON file (or stdin) as a trunk source, for `check` runs and tests.

use std::io::Read;
use std::path::Path;

use super::{parse_json, SourceError};
use crate::trunk::Trunk;

/// Loads trunks from a JSON file in any shape [`super::parse_trunks_json`]
/// accepts. The path `-` reads standard input.
pub fn load_file(path: &Path) -> Result<Vec<Trunk>, SourceError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|source| SourceError::FileUnreadable {
                path: path.to_path_buf(),
                source,
            })?;
        return parse_json(&buf, "stdin");
    }
    let bytes = std::fs::read(path).map_err(|source| SourceError::FileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(&bytes, &format!("trunk file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.json");
        std::fs::write(&ok, r#"{"name":"a","gateways":[{"gateway_address":"h"}]}"#).unwrap();
        let trunks = load_file(&ok).unwrap();
        assert_eq!(trunks.len(), 1);
        assert_eq!(trunks[0].gateways[0].port, 5060);

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[\n  {\"name\": }\n]").unwrap();
        let e = load_file(&bad).unwrap_err();
        match &e {
            SourceError::InvalidJson { origin, line, .. } => {
                assert!(origin.contains("bad.json"), "{origin}");
                assert_eq!(*line, 2);
            }
            other => panic!("{other:?}"),
        }

        let missing = dir.path().join("missing.json");
        let e = load_file(&missing).unwrap_err();
        assert!(matches!(e, SourceError::FileUnreadable { .. }));
        assert!(e.to_string().contains("missing.json"));
        assert_eq!(e.hint().as_deref(), Some("check the trunk file path"));
    }

    #[test]
    fn a_directory_is_unreadable_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_file(dir.path()),
            Err(SourceError::FileUnreadable { .. })
        ));
    }
}
