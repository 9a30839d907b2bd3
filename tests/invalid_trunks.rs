//! One malformed trunk never hides the others: a record of a trunk list that
//! does not fit the create-trunk schema is reported as `definition_invalid`,
//! and every other trunk is checked (`check`) or probed (`serve`). Files and
//! the fake trunk API of `tests/common` feed the lists; a SIPp UAS on loopback
//! answers the valid trunks' probes.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use common::serve::{sample, write_trunks, Daemon};
use common::{FakeApi, Sipp, TrunkJson};
use serde_json::{json, Value};

const PASSWORD: &str = "pw-Hunter2-malformed-XYZZY";

/// A valid trunk whose one gateway is `gw`; break a field with [`TrunkJson::set`].
fn good(id: &str, gw: SocketAddr) -> TrunkJson {
    TrunkJson::probed(id)
        .name(&format!("good {id}"))
        .gateway_at(gw)
}

/// Runs `check --trunks FILE --format json` on `trunks`.
fn check(trunks: &[Value], extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), trunks);
    let out = std::process::Command::new(common::bin())
        .args([
            "check",
            "--no-origination",
            "--timeout",
            "2s",
            "--format",
            "json",
        ])
        .arg("--trunks")
        .arg(&file)
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

fn status_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    let t = report["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no trunk {id} in {report}"));
    &t["status"]
}

/// Every field of the create-trunk reference, in turn, with a value of the
/// wrong type: that trunk is `invalid_definition` naming the field, the one
/// beside it is probed and healthy, and `check` exits 1.
#[test]
fn a_wrong_type_in_each_field_is_reported_and_the_other_trunk_is_checked() {
    let gw = Sipp::uas_udp("options_200.xml");
    let cases: &[(&str, Value)] = &[
        ("name", json!(42)),
        ("provider", json!(["twilio"])),
        ("description", json!({"a": 1})),
        ("auth_type", json!(true)),
        ("auth_username", json!(7)),
        ("auth_password", json!(918_273_645)),
        ("gateways", json!("sip.example.com")),
        ("ip_identifiers", json!("127.0.0.1")),
        ("allow", json!(["ulaw"])),
        ("disallow", json!(1)),
        ("transport", json!(5060)),
        ("direct_media", json!("no")),
        ("rtp_symmetric", json!("yes")),
        ("force_rport", json!(1)),
        ("media_encryption", json!(false)),
        ("media_encryption_optimistic", json!("true")),
        ("qualify_frequency", json!("often")),
        ("inbound_enabled", json!([])),
        ("outbound_leading_plus_enabled", json!({})),
        ("phone_numbers", json!("+14155550123")),
    ];
    for (field, value) in cases {
        let trunks = [
            good("ok", gw.addr()).build(),
            good("broken", gw.addr()).set(field, value.clone()).build(),
        ];
        let (out, report) = check(&trunks, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        assert_eq!(status_of(&report, "ok"), "probed", "{field}");
        assert_eq!(
            status_of(&report, "broken"),
            "invalid_definition",
            "{field}"
        );
        let broken = &report["trunks"][1];
        let f = &broken["findings"][0];
        assert_eq!(f["check"], "definition_invalid", "{field}: {broken}");
        assert_eq!(f["severity"], "error");
        let message = f["message"].as_str().unwrap();
        assert!(message.contains(&format!("field {field}")), "{message}");
        assert!(message.contains("expects"), "{message}");
        assert_eq!(report["summary"]["targets_ok"], 1, "{field}: {report}");
        assert_eq!(report["summary"]["trunks_invalid"], 1);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("918273645"));
    }
}

/// Entries of the list that are not objects are invalid trunks at their
/// position; a list with no object at all is no trunk list (exit 2).
#[test]
fn a_trunk_that_is_not_an_object_is_reported_by_position() {
    let gw = Sipp::uas_udp("options_200.xml");
    let (out, report) = check(
        &[good("ok", gw.addr()).build(), json!("oops"), json!(null)],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let trunks = report["trunks"].as_array().unwrap();
    assert_eq!(trunks.len(), 3);
    assert_eq!(trunks[0]["status"], "probed");
    for (i, t) in trunks.iter().enumerate().skip(1) {
        assert_eq!(t["status"], "invalid_definition");
        assert_eq!(t["name"], format!("trunk #{i}"));
        let message = t["findings"][0]["message"].as_str().unwrap();
        assert!(message.contains("not a trunk object"), "{message}");
    }

    let (out, _) = check(&[json!(1), json!("two")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trunk #0"));
}

/// 1,000 trunks with 10 malformed ones spread through the list: 990 probed,
/// 10 reported, in their places.
#[test]
fn a_thousand_trunks_with_ten_bad_ones() {
    let gw = Sipp::uas_udp("options_200.xml");
    let trunks: Vec<Value> = (0..1000)
        .map(|i| {
            let id = format!("t{i:04}");
            if i % 100 == 37 {
                good(&id, gw.addr())
                    .set("gateways", json!({"gateway_address": "x"}))
                    .build()
            } else {
                good(&id, gw.addr()).build()
            }
        })
        .collect();
    let (out, report) = check(&trunks, &["--concurrency", "32"]);
    assert_eq!(out.status.code(), Some(1));
    let listed = report["trunks"].as_array().unwrap();
    assert_eq!(listed.len(), 1000);
    for (i, t) in listed.iter().enumerate() {
        let want = if i % 100 == 37 {
            "invalid_definition"
        } else {
            "probed"
        };
        assert_eq!(t["status"], want, "trunk {i}");
        assert_eq!(t["id"], format!("t{i:04}"));
    }
    let s = &report["summary"];
    assert_eq!(s["trunks_probed"], 990, "{s}");
    assert_eq!(s["trunks_invalid"], 10, "{s}");
    assert_eq!(s["targets_ok"], 990, "{s}");
}

/// The password of a malformed trunk appears nowhere: text, JSON, logs.
#[test]
fn a_password_inside_a_malformed_trunk_is_never_printed() {
    let gw = Sipp::uas_udp("options_200.xml");
    let t = good("secret", gw.addr())
        .set("gateways", json!("sip.example.com"))
        .set("auth_type", json!("userpass"))
        .set("auth_username", json!("bolna"))
        .set("auth_password", json!(PASSWORD))
        .build();
    let trunks = [good("ok", gw.addr()).build(), t];
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let file = write_trunks(dir.path(), &trunks);
        let out = std::process::Command::new(common::bin())
            .args(["check", "--no-origination", "-vv", "--format", format])
            .arg("--trunks")
            .arg(&file)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("definition_invalid"), "{all}");
        assert!(!all.contains(PASSWORD), "{format}: the password leaked");
    }
}

fn finding(m: &str, trunk_id: &str) -> Option<f64> {
    sample(
        m,
        "trunkprobe_finding",
        &[("trunk_id", trunk_id), ("check", "definition_invalid")],
    )
}

fn ok_probes(m: &str, trunk_id: &str) -> f64 {
    sample(
        m,
        "trunkprobe_options_probes_total",
        &[("trunk_id", trunk_id), ("outcome", "ok")],
    )
    .unwrap_or(0.0)
}

/// `serve` fed by the API: a fresh start with a malformed trunk gets going
/// (the valid one is probed, the bad one shown and not probed); a refresh that
/// turns a good trunk bad keeps probing its last good definition and says so
/// once; good again, the finding goes.
#[test]
fn serve_applies_the_valid_trunks_and_keeps_the_last_good_definition() {
    let gw = Sipp::uas_udp("options_200.xml");
    let never = good("never", gw.addr())
        .set("gateways", json!("sip.example.com"))
        .build();
    let api = FakeApi::start(json!([
        good("steady", gw.addr()).build(),
        good("flip", gw.addr()).build(),
        never,
    ]));
    let url = api.url();
    let mut d = Daemon::start(&["--api-url", &url, "--refresh", "1s", "--timeout", "1s"]);

    d.wait_for("the valid trunks probed, the bad one shown", |d| {
        let m = d.metrics();
        ok_probes(&m, "steady") > 0.0
            && ok_probes(&m, "flip") > 0.0
            && finding(&m, "never") == Some(1.0)
    });
    let m = d.metrics();
    assert_eq!(
        ok_probes(&m, "never"),
        0.0,
        "a never-valid trunk is not probed"
    );
    assert_eq!(
        sample(&m, "trunkprobe_trunks", &[("state", "invalid")]),
        Some(1.0)
    );
    assert!(m.contains("trunkprobe_trunk_info{") && m.contains("trunk_id=\"never\""));
    assert!(
        sample(
            &m,
            "trunkprobe_source_errors_total",
            &[("reason", "invalid_record")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    // "flip" turns bad: still probed with its last good definition, and says so.
    let flipped = good("flip", gw.addr())
        .set("qualify_frequency", json!("often"))
        .build();
    api.set(json!([
        good("steady", gw.addr()).build(),
        flipped,
        good("never", gw.addr()).set("gateways", json!(1)).build(),
    ]));
    d.wait_for("flip's definition_invalid finding", |d| {
        finding(&d.metrics(), "flip") == Some(1.0)
    });
    let before = ok_probes(&d.metrics(), "flip");
    std::thread::sleep(Duration::from_secs(3));
    let m = d.metrics();
    assert!(
        ok_probes(&m, "flip") > before,
        "the last good definition is probed"
    );
    assert_eq!(
        sample(&m, "trunkprobe_options_up", &[("trunk_id", "flip")]),
        Some(1.0)
    );
    let logs = d.logs();
    let warned = logs
        .matches("does not fit the schema; probing its last good definition")
        .count();
    assert_eq!(
        warned, 1,
        "one log line per change, not per refresh:\n{logs}"
    );

    // Good again: the finding goes and the trunk keeps being probed.
    api.set(json!([
        good("steady", gw.addr()).build(),
        good("flip", gw.addr()).build(),
    ]));
    d.wait_for("flip's finding gone", |d| {
        finding(&d.metrics(), "flip").is_none()
    });
    assert!(d.logs().contains("fits the schema again"));
    let before = ok_probes(&d.metrics(), "flip");
    std::thread::sleep(Duration::from_secs(2));
    assert!(ok_probes(&d.metrics(), "flip") > before);
}
