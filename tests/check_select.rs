//! `check --trunk ID|NAME` picks trunks from a list; an unknown one is exit 2 with the names
//! that exist (nothing is probed then).

mod common;

use std::process::Command;

use common::{Sipp, TrunkJson};
use serde_json::Value;

#[test]
fn trunks_are_picked_by_id_or_name_and_an_unknown_one_lists_them() {
    let sipp = Sipp::uas_udp("options_200.xml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunks.json");
    let trunks = serde_json::json!([
        TrunkJson::g711("t-1", "127.0.0.1", sipp.addr().port())
            .name("Twilio Production")
            .build(),
        TrunkJson::g711("t-2", "127.0.0.1", sipp.addr().port())
            .name("Plivo Backup")
            .build(),
        TrunkJson::g711("t-3", "127.0.0.1", sipp.addr().port())
            .name("Zadarma")
            .build(),
    ]);
    std::fs::write(&file, serde_json::to_vec(&trunks).unwrap()).unwrap();
    let check = |extra: &[&str]| {
        Command::new(common::bin())
            .args([
                "check",
                "--no-origination",
                "--no-register",
                "--format",
                "json",
                "--trunks",
            ])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = check(&["--trunk", "Plivo Backup", "--trunk", "t-3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = r["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t-2", "t-3"], "the list's order");

    let out = check(&["--trunk", "Vonage"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no trunk \"Vonage\""), "{err}");
    for name in [
        "t-1 (Twilio Production)",
        "t-2 (Plivo Backup)",
        "t-3 (Zadarma)",
    ] {
        assert!(err.contains(name), "{err}");
    }
    assert!(out.stdout.is_empty(), "nothing probed, no report");
}
