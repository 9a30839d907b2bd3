//! The README documents every check id and outcome the code can produce.

use trunkprobe::checks::CheckId;
use trunkprobe::outcome::Outcome;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn every_check_id_is_documented() {
    let readme = readme();
    for c in CheckId::ALL {
        assert!(
            readme.contains(&format!("`{}`", c.as_str())),
            "README lacks check {}",
            c.as_str()
        );
    }
}

#[test]
fn every_outcome_is_documented() {
    let readme = readme();
    for o in Outcome::ALL {
        assert!(
            readme.contains(&format!("`{}`", o.as_str())),
            "README lacks outcome {}",
            o.as_str()
        );
    }
}
