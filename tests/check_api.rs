//! `trunkprobe check` against an in-process trunks API on loopback: the Bearer
//! token, the `is_active` filter, and the failures that must exit 2 with a hint
//! and without the token anywhere in the output.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use common::TrunkJson;

const TOKEN: &str = "tp-test-token-7f3a9c1e5b";

#[derive(Clone, Default)]
struct Api {
    queries: Arc<Mutex<Vec<String>>>,
    status: Option<u16>,
}

async fn list(
    State(api): State<Api>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let mut keys: Vec<_> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    keys.sort();
    api.queries.lock().unwrap().push(keys.join("&"));
    if let Some(code) = api.status {
        return (
            StatusCode::from_u16(code).unwrap(),
            "<html>upstream down</html>",
        )
            .into_response();
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":401,"message":"invalid token"}"#,
        )
            .into_response();
    }
    let all = [("active", true), ("paused", false)];
    let trunks: Vec<Value> = all
        .iter()
        .filter(|(_, active)| {
            q.get("is_active")
                .is_none_or(|want| want == &active.to_string())
        })
        .map(|(id, active)| TrunkJson::new(id).set("is_active", json!(active)).build())
        .collect();
    axum::Json(Value::Array(trunks)).into_response()
}

async fn serve(api: Api) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/sip-trunks/trunks", get(list))
        .with_state(api);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
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
    let api = Api::default();
    let addr = serve(api.clone()).await;
    let out = trunkprobe(addr, TOKEN, &[]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["active"]);
    assert_eq!(api.queries.lock().unwrap().as_slice(), ["is_active=true"]);
    // No gateways is an error finding.
    assert_eq!(out.status.code(), Some(1));
    assert!(!all_output(&out).contains(TOKEN));

    let out = trunkprobe(addr, TOKEN, &["--include-inactive"]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["trunks"].as_array().unwrap().len(), 2);
    assert_eq!(doc["trunks"][1]["status"], "skipped_inactive");
    assert_eq!(api.queries.lock().unwrap().last().unwrap(), "");
}

#[tokio::test]
async fn a_rejected_token_exits_2_with_a_hint_and_no_token() {
    let addr = serve(Api::default()).await;
    let wrong = "tp-wrong-token-0d9e8f7a6b";
    let out = trunkprobe(addr, wrong, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("hint:"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_failing_api_exits_2() {
    let addr = serve(Api {
        status: Some(500),
        ..Api::default()
    })
    .await;
    let out = trunkprobe(addr, TOKEN, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let text = all_output(&out);
    assert!(text.contains("500"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}
