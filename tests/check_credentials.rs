//! `check`'s credentials check against a Kamailio registrar (auth module, 401 with a
//! configured password; registrar and usrloc in memory): a REGISTER without Contact
//! answered once, the bindings it lists (Bolna's among them or not), a wrong password,
//! no password, and `--no-register`. The password never appears in the output.

mod common;

use std::process::{Command, Output};

use common::kamailio_auth::{AuthOpts, KamailioAuth};
use common::TrunkJson;
use serde_json::Value;

const PASSWORD: &str = "Reg1ster-s3cret";

fn check(
    reg: &KamailioAuth,
    trunk: Value,
    extra: &[&str],
    password: Option<&str>,
) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunks.json");
    std::fs::write(&file, serde_json::to_vec(&trunk).unwrap()).unwrap();
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "check",
        "--no-origination",
        "--format",
        "json",
        "--timeout",
        "2s",
    ])
    .arg("--trunks")
    .arg(&file)
    .args(extra)
    .env_remove("TRUNKPROBE_AUTH_PASSWORD")
    .env_remove("RUST_LOG");
    if let Some(p) = password {
        cmd.env("TRUNKPROBE_AUTH_PASSWORD", p);
    }
    let out = cmd.output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            reg.logs()
        )
    });
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(PASSWORD),
            "the password leaked"
        );
    }
    (out, report)
}

fn userpass_trunk(reg: &KamailioAuth) -> Value {
    TrunkJson::new("t-userpass")
        .userpass("bolna-trunk")
        .ranked_gateway("127.0.0.1", reg.addr().port(), 1)
        .g711_only()
        .build()
}

fn findings(r: &Value) -> Vec<String> {
    r["trunks"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        // No SDP in the registrar's OPTIONS reply: not what these tests are about.
        .filter(|c| c != "media_not_advertised")
        .collect()
}

#[test]
fn accepted_credentials_list_the_bindings_and_say_whether_bolnas_is_there() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let (out, r) = check(&reg, userpass_trunk(&reg), &[], Some(PASSWORD));
    let c = &r["trunks"][0]["gateways"][0]["credentials"];
    assert_eq!(c["result"]["kind"], "accepted", "{c}\n{}", reg.logs());
    assert_eq!(c["realm"], "carrier.test");
    assert_eq!(c["algorithm"], "MD5");
    assert_eq!(c["bindings"], serde_json::json!([]));
    assert_eq!(c["bolna_bound"], false);
    assert_eq!(
        c["responses"],
        serde_json::json!(["401 Unauthorized", "200 OK"])
    );
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert!(findings(&r).is_empty(), "{r}");

    // Bolna registered, and a phone beside it: both listed, neither changed.
    reg.seed_binding("bolna-trunk", "sip:bolna@13.200.45.61:5060", 300);
    reg.seed_binding("bolna-trunk", "sip:desk@127.0.0.2:5070", 120);
    let (_, r) = check(&reg, userpass_trunk(&reg), &[], Some(PASSWORD));
    let c = &r["trunks"][0]["gateways"][0]["credentials"];
    assert_eq!(c["bolna_bound"], true, "{c}");
    let contacts: Vec<&str> = c["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["contact"].as_str().unwrap())
        .collect();
    assert!(
        contacts.contains(&"sip:bolna@13.200.45.61:5060"),
        "{contacts:?}"
    );
    assert!(
        contacts.contains(&"sip:desk@127.0.0.2:5070"),
        "{contacts:?}"
    );
    // A second query sees the same two: the check changed nothing.
    let (_, again) = check(&reg, userpass_trunk(&reg), &[], Some(PASSWORD));
    assert_eq!(
        again["trunks"][0]["gateways"][0]["credentials"]["bindings"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The text report says it in words.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.json");
    std::fs::write(&file, serde_json::to_vec(&userpass_trunk(&reg)).unwrap()).unwrap();
    let text = Command::new(common::bin())
        .args(["check", "--no-origination", "--timeout", "2s", "--trunks"])
        .arg(&file)
        .env("TRUNKPROBE_AUTH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("credentials accepted"), "{text}");
    assert!(
        text.contains("Bolna's registration (13.200.45.61) is present"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
}

#[test]
fn a_wrong_password_is_credentials_rejected() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let (out, r) = check(&reg, userpass_trunk(&reg), &[], Some("wrong-password"));
    let c = &r["trunks"][0]["gateways"][0]["credentials"];
    assert_eq!(c["result"]["kind"], "rejected", "{c}\n{}", reg.logs());
    assert_eq!(c["result"]["code"], 401);
    assert_eq!(findings(&r), ["credentials_rejected"], "{r}");
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong-password"));
}

#[test]
fn without_a_password_the_challenge_is_reported_and_nothing_else() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let (_, r) = check(&reg, userpass_trunk(&reg), &[], None);
    let c = &r["trunks"][0]["gateways"][0]["credentials"];
    assert_eq!(c["result"]["kind"], "no_password", "{c}");
    assert_eq!(c["responses"], serde_json::json!(["401 Unauthorized"]));
    assert_eq!(findings(&r), ["credentials_untested"], "{r}");
}

#[test]
fn a_create_request_body_carries_its_own_password_and_no_register_sends_none() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let body = TrunkJson::new("unused")
        .userpass("bolna-trunk")
        .set("auth_password", serde_json::json!(PASSWORD))
        .remove("id")
        .ranked_gateway("127.0.0.1", reg.addr().port(), 1)
        .g711_only()
        .build();
    let (_, r) = check(&reg, body.clone(), &[], None);
    assert_eq!(
        r["trunks"][0]["gateways"][0]["credentials"]["result"]["kind"], "accepted",
        "{r}"
    );
    let (_, r) = check(&reg, body, &["--no-register"], None);
    assert!(
        r["trunks"][0]["gateways"][0].get("credentials").is_none(),
        "{r}"
    );
}

#[test]
fn an_ip_based_trunk_gets_no_register_unless_asked_with_auth_username() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let trunk = TrunkJson::g711("t-ip", "127.0.0.1", reg.addr().port()).build();
    let (_, r) = check(&reg, trunk.clone(), &[], Some(PASSWORD));
    assert!(
        r["trunks"][0]["gateways"][0].get("credentials").is_none(),
        "{r}"
    );
    let (_, r) = check(
        &reg,
        trunk,
        &["--auth-username", "bolna-trunk"],
        Some(PASSWORD),
    );
    assert_eq!(
        r["trunks"][0]["gateways"][0]["credentials"]["result"]["kind"], "accepted",
        "{r}"
    );
}

#[test]
fn options_answered_401_are_asked_again_with_the_credentials() {
    let reg = KamailioAuth::start(AuthOpts {
        challenge_options: true,
        ..AuthOpts::new(PASSWORD, None)
    });
    let (out, r) = check(&reg, userpass_trunk(&reg), &[], Some(PASSWORD));
    let t = &r["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(t["outcome"], "ok", "{t}");
    assert_eq!(t["status_code"], 200, "{t}");
    assert_eq!(
        t["authenticated"]["responses"],
        serde_json::json!(["401 Unauthorized", "200 OK"])
    );
    assert!(t["detail"].as_str().unwrap().contains("digest"), "{t}");
    assert_eq!(out.status.code(), Some(0), "{r}");

    // Without the password the 401 stays what the probe saw.
    let (out, r) = check(&reg, userpass_trunk(&reg), &[], None);
    let t = &r["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(t["status_code"], 401, "{t}");
    assert!(t.get("authenticated").is_none(), "{t}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_traced_check_shows_the_register_exchange_with_the_digest_hash_and_never_the_password() {
    let reg = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let (_, r) = check(&reg, userpass_trunk(&reg), &["--trace"], Some(PASSWORD));
    let c = &r["trunks"][0]["gateways"][0]["credentials"];
    let lines: Vec<(bool, &str)> = c["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {c}"))
        .iter()
        .map(|m| (m["sent"].as_bool().unwrap(), m["line"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].0 && lines[0].1.starts_with("REGISTER sip:"),
        "{lines:?}"
    );
    assert_eq!(lines[1], (false, "SIP/2.0 401 Unauthorized"));
    assert!(
        lines[2].0 && lines[2].1.starts_with("REGISTER sip:"),
        "{lines:?}"
    );
    assert_eq!(lines[3], (false, "SIP/2.0 200 OK"));
    let answer = c["messages"][2]["message"].as_str().unwrap();
    assert!(answer.contains("Authorization: Digest "), "{answer}");
    assert!(answer.contains("response=\""), "{answer}");
    // The OPTIONS probe of the same gateway is traced too.
    let target = &r["trunks"][0]["gateways"][0]["targets"][0];
    assert_eq!(target["messages"][0]["sent"], true, "{target}");
    assert!(target["messages"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("OPTIONS sip:"));
}
