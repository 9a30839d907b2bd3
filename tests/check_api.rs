//! `trunkprobe check` against an in-process trunks API on loopback: the Bearer
//! token, the `is_active` filter, and the failures that must exit 2 with a hint
//! and without the token anywhere in the output.

mod common;

use std::net::SocketAddr;
use std::process::Output;

use common::{FakeApi, Reply, TrunkJson};
use serde_json::{json, Value};

const TOKEN: &str = "tp-test-token-7f3a9c1e5b";

/// The trunks API: an active and a paused trunk, behind [`TOKEN`], honouring `is_active`.
fn api() -> FakeApi {
    let trunks = [("active", true), ("paused", false)]
        .map(|(id, active)| TrunkJson::new(id).set("is_active", json!(active)).build());
    FakeApi::start(json!(trunks))
        .with_token(TOKEN)
        .filter_active()
}

/// The query of each request `api` got, its `key=value` pairs sorted and joined by `&`.
fn queries(api: &FakeApi) -> Vec<String> {
    let pairs = |r: &common::api::Request| {
        let pairs: Vec<_> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("&")
    };
    api.requests().iter().map(pairs).collect()
}

async fn trunkprobe(addr: SocketAddr, token: &str, extra: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.args([
        "check",
        "--format",
        "json",
        "--api-url",
        &format!("http://{addr}"),
        // Never probe sip.bolna.ai from a test.
        "--no-origination",
    ])
    .args(extra)
    .env("BOLNA_API_KEY", token);
    cmd.output().await.unwrap()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn fetches_active_trunks_with_the_bearer_token() {
    let api = api();
    let addr = api.addr();
    let out = trunkprobe(addr, TOKEN, &[]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["active"]);
    assert_eq!(queries(&api), ["is_active=true"]);
    // No gateways is an error finding.
    assert_eq!(out.status.code(), Some(1));
    assert!(!all_output(&out).contains(TOKEN));

    let out = trunkprobe(addr, TOKEN, &["--include-inactive"]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["trunks"].as_array().unwrap().len(), 2);
    assert_eq!(doc["trunks"][1]["status"], "skipped_inactive");
    assert_eq!(queries(&api).last().unwrap(), "");
}

#[tokio::test]
async fn a_rejected_token_exits_2_with_a_hint_and_no_token() {
    let api = api();
    let wrong = "tp-wrong-token-0d9e8f7a6b";
    let out = trunkprobe(api.addr(), wrong, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("hint:"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_failing_api_exits_2() {
    let api = FakeApi::start(Reply::text(500, "<html>upstream down</html>"));
    let out = trunkprobe(api.addr(), TOKEN, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(text.contains("500"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}
