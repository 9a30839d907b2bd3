//! `ApiSource::fetch` against the fake of Bolna's trunk API on 127.0.0.1
//! (`tests/common/api.rs`), raw for a chunked body without length. Only
//! loopback traffic.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use common::{FakeApi, Reply};

use trunkprobe::source::{ApiSource, SourceError, MAX_BODY_BYTES};
use trunkprobe::trunk::{Secret, Transport};

const TOKEN: &str = "tok_LIVE_9f8e7d6c5b4a3210";
const LIST: &str = include_str!("fixtures/trunks/list-response.json");
const SINGLE: &str = include_str!("fixtures/trunks/single-trunk.json");

/// The fixture's list behind [`TOKEN`], honouring `is_active`.
fn list_api() -> FakeApi {
    let list: Value = serde_json::from_str(LIST).unwrap();
    FakeApi::start(list).with_token(TOKEN).filter_active()
}

fn source(base: String) -> ApiSource {
    ApiSource {
        base_url: base,
        token: Secret::new(TOKEN),
        include_inactive: false,
        timeout: Duration::from_secs(5),
    }
}

/// The token must not appear in the error, its Debug form or its hint.
fn assert_no_token(e: &SourceError) {
    let all = format!("{e} {e:?} {:?}", e.hint());
    assert!(!all.contains(TOKEN), "token leaked: {all}");
    assert!(!all.contains("9f8e7d6c"), "token part leaked: {all}");
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn fetches_active_trunks_with_bearer_token_and_headers() {
    let api = list_api();
    let trunks = source(format!("{}/", api.url())).fetch().await.unwrap();
    let names: Vec<_> = trunks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Twilio Production",
            "Plivo Elastic Trunk",
            "Twilio Production (encrypted)"
        ]
    );
    assert_eq!(trunks[2].transport.valid(), Some(Transport::Tls));

    let seen = api.requests();
    let req = &seen[0];
    assert_eq!(req.query.get("is_active").map(String::as_str), Some("true"));
    assert_eq!(req.header("accept").unwrap(), "application/json");
    let ua = req.header("user-agent").unwrap();
    assert_eq!(ua, format!("trunkprobe/{}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn include_inactive_omits_the_filter() {
    let api = list_api();
    let mut src = source(api.url());
    src.include_inactive = true;
    let trunks = src.fetch().await.unwrap();
    assert_eq!(trunks.len(), 4);
    assert!(!trunks[3].is_active);
    assert!(api.requests()[0].query.is_empty());
}

#[tokio::test]
async fn inactive_trunks_are_dropped_even_if_the_server_ignores_the_filter() {
    let api = FakeApi::start(Reply::text(200, LIST));
    let trunks = source(api.url()).fetch().await.unwrap();
    assert_eq!(trunks.len(), 3);
    assert!(trunks.iter().all(|t| t.is_active));
}

#[tokio::test]
async fn a_single_trunk_object_is_accepted() {
    let api = FakeApi::start(Reply::text(200, SINGLE));
    let trunks = source(api.url()).fetch().await.unwrap();
    assert_eq!(trunks.len(), 1);
    assert_eq!(trunks[0].id.as_deref(), Some("01HQXYZ123ABC456DEF"));
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let api = list_api();
    let mut src = source(api.url());
    src.token = Secret::new("tok_WRONG_9f8e7d6c5b4a3210");
    let e = src.fetch().await.unwrap_err();
    assert!(
        matches!(e, SourceError::ApiUnauthorized { status: 401, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.hint().unwrap(),
        "check BOLNA_API_KEY / --token-file: the API rejected the token"
    );
    let all = format!("{e} {e:?} {:?}", e.hint());
    assert!(!all.contains("tok_WRONG"), "{all}");
}

#[tokio::test]
async fn forbidden_is_unauthorized_too() {
    let api = FakeApi::start(Reply::text(403, "no sip trunking for you"));
    let e = source(api.url()).fetch().await.unwrap_err();
    assert!(
        matches!(e, SourceError::ApiUnauthorized { status: 403, .. }),
        "{e:?}"
    );
    assert_no_token(&e);
}

#[tokio::test]
async fn server_error_keeps_a_short_clean_excerpt_without_the_token() {
    // An error body that echoes the token and carries control bytes.
    let api = FakeApi::start(Reply::with(|req| {
        let auth = req.header("authorization").unwrap_or_default();
        let body = format!(
            "internal error\x1b[31m\r\nrequest had {auth}\n{}",
            "x".repeat(10_000)
        );
        Reply::text(500, body)
    }));
    let e = source(api.url()).fetch().await.unwrap_err();
    match &e {
        SourceError::ApiStatus {
            status, excerpt, ..
        } => {
            assert_eq!(*status, 500);
            assert!(excerpt.starts_with("internal error"), "{excerpt:?}");
            assert!(excerpt.chars().count() <= 161, "{}", excerpt.len());
            assert!(!excerpt.chars().any(char::is_control), "{excerpt:?}");
            assert!(excerpt.contains("Bearer ***"), "{excerpt:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.hint().unwrap(), "Bolna's API is failing; retry later");
    assert_no_token(&e);
}

#[tokio::test]
async fn slow_api_times_out() {
    let api = FakeApi::start(Reply::text(200, "[]")).delay(Duration::from_secs(30));
    let mut src = source(api.url());
    src.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = src.fetch().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, SourceError::ApiTimeout { .. }), "{e:?}");
    assert!(e.to_string().contains("300ms"), "{e}");
    assert!(e.hint().unwrap().contains("--api-url"));
    assert_no_token(&e);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = source(format!("http://127.0.0.1:{port}"))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::ApiConnect { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_no_token(&e);
}

#[tokio::test]
async fn non_json_body_is_invalid_json() {
    let api = FakeApi::start(Reply::text(200, "<html>\n<body>login</body></html>"));
    let e = source(api.url()).fetch().await.unwrap_err();
    assert!(
        matches!(e, SourceError::ApiInvalidJson { line: 1, .. }),
        "{e:?}"
    );
    assert_no_token(&e);
}

#[tokio::test]
async fn wrong_field_type_names_trunk_and_field() {
    let api = FakeApi::start(Reply::text(
        200,
        r#"[{"name":"A"},{"name":"B","gateways":[{"gateway_address":"h","port":"abc"}]}]"#,
    ));
    // One record of the wrong type is a trunk reported as invalid, not a failed load.
    let trunks = source(api.url()).fetch().await.unwrap();
    let bad: Vec<_> = trunks.iter().filter_map(|t| t.invalid.as_ref()).collect();
    assert_eq!(bad.len(), 1, "{trunks:?}");
    assert_eq!(bad[0].index, 1);
    assert_eq!(bad[0].field, "gateways[0].port");
    assert!(trunks[0].invalid.is_none());
    let described = bad[0].describe();
    assert!(!described.contains(TOKEN), "{described}");
}

#[tokio::test]
async fn oversized_body_with_content_length_is_refused() {
    let api = FakeApi::start(Reply::body(
        200,
        "application/octet-stream",
        vec![b' '; MAX_BODY_BYTES + 1],
    ));
    let e = source(api.url()).fetch().await.unwrap_err();
    assert!(matches!(e, SourceError::ApiBodyTooLarge { .. }), "{e:?}");
    assert_no_token(&e);
}

/// A raw HTTP/1.1 peer streaming a chunked body with no length, forever.
fn spawn_endless_chunked() -> FakeApi {
    FakeApi::start(Reply::raw(|mut sock| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        if sock.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b' '; 1 << 20];
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // Stops when the client hangs up (it should, just past the cap).
        while sock.write_all(&framed).await.is_ok() {}
    }))
}

#[tokio::test]
async fn oversized_chunked_body_is_cut_off() {
    let api = spawn_endless_chunked();
    let mut src = source(api.url());
    src.timeout = Duration::from_secs(20);
    let e = src.fetch().await.unwrap_err();
    assert!(
        matches!(e, SourceError::ApiBodyTooLarge { limit, .. } if limit == MAX_BODY_BYTES),
        "{e:?}"
    );
    assert_no_token(&e);
}
