//! `trunkprobe check` against a hostile trunk API on 127.0.0.1: HTML error
//! pages, stalled and 100 MB bodies, JSON of the wrong shape, 10,000 gateways,
//! unknown enum values and control characters. Where the check cannot go on it
//! exits 2 with a one-line message and a hint; nothing panics; nothing raw
//! reaches the terminal. (`tests/source_api.rs` covers the client on its own:
//! 401/403/500, timeouts, invalid JSON, Content-Length and endless bodies.)

mod common;

use std::collections::HashSet;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

use common::{FakeApi, Reply, TrunkJson};

const TOKEN: &str = "tp-hostile-token-51c0ffee";
/// Generous bound on one run of the binary (a shared, noisy machine).
const RUN_LIMIT: Duration = Duration::from_secs(120);

async fn check(api: &FakeApi, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(common::bin());
    // No origination probe: no traffic off loopback.
    cmd.args(["check", "--no-origination", "--api-url", &api.url()])
        .args(args)
        .env("BOLNA_API_KEY", TOKEN)
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .expect("check must finish")
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2, one clear `trunkprobe:` line plus a hint, nothing on stdout, no
/// panic, no token.
fn assert_clean_failure(out: &Output, expect: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("trunkprobe: "), "{err}");
    assert!(first.contains(expect), "expected {expect:?} in {err}");
    assert!(err.contains("hint: "), "{err}");
    assert!(err.lines().count() <= 3, "{err}");
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
}

#[tokio::test]
async fn bad_gateway_with_an_html_page_exits_2() {
    let page = "<!DOCTYPE html>\r\n<html><head><title>502 Bad Gateway</title></head>\r\n\
                <body>\x1b[31m<h1>502 Bad Gateway</h1>\x07</body></html>\r\n"
        .repeat(50);
    let api = FakeApi::start(Reply::body(502, "text/html", page));
    let out = check(&api, &[]).await;
    assert_clean_failure(&out, "502");
}

#[tokio::test]
async fn a_stalled_body_hits_the_api_timeout() {
    let api = FakeApi::start(Reply::raw(|mut sock| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                    Content-Length: 100000\r\n\r\n[{\"name\": \"half";
        let _ = sock.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(120)).await;
    }));
    let out = check(&api, &["--api-timeout", "1s"]).await;
    assert_clean_failure(&out, "did not answer within 1s");
}

#[tokio::test]
async fn a_100_mb_body_is_capped() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let api = FakeApi::start(Reply::raw(move |mut sock| {
        let counter = counter.clone();
        async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\n";
            if sock.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = format!("{:x}\r\n", 1 << 20).into_bytes();
            chunk.extend(std::iter::repeat_n(b' ', 1 << 20));
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..100 {
                if sock.write_all(&chunk).await.is_err() {
                    return;
                }
                counter.fetch_add(1 << 20, Ordering::Relaxed);
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
        }
    }));
    let out = check(&api, &["--api-timeout", "60s"]).await;
    assert_clean_failure(&out, "sent more than");
    // The client hung up near the 32 MiB cap; it did not take all 100 MB.
    assert!(sent.load(Ordering::Relaxed) < 100 << 20);
}

#[tokio::test]
async fn valid_json_of_the_wrong_shape_exits_2() {
    let cases = [
        (json!({"data": [], "next": null}), "does not hold trunks"),
        (json!("trunks"), "does not hold trunks"),
        (json!([1, 2, 3]), "trunk #0"),
        (json!(null), "does not hold trunks"),
        (
            json!({"error": 500, "message": "boom\u{1b}[2J"}),
            "API error object",
        ),
    ];
    for (doc, expect) in cases {
        let api = FakeApi::start(doc.clone());
        let out = check(&api, &["--format", "json"]).await;
        assert_clean_failure(&out, expect);
    }
}

/// A trunk record of the wrong shape inside a list is reported, not fatal.
#[tokio::test]
async fn a_malformed_trunk_in_a_list_is_reported_and_exits_1() {
    let cases = [
        (
            json!([{"name": "x", "gateways": "sip.example.com"}]),
            "gateways",
        ),
        (
            json!([{"name": "x", "gateways": [{"port": "5060;evil"}]}]),
            "gateways[0].port",
        ),
        (json!([{"name": {"nested": true}}]), "name"),
    ];
    for (doc, field) in cases {
        let api = FakeApi::start(doc.clone());
        let out = check(&api, &["--format", "json"]).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked") && !err.contains(TOKEN), "{err}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        let t = &report["trunks"][0];
        assert_eq!(t["status"], "invalid_definition", "{t}");
        let f = &t["findings"][0];
        assert_eq!(f["check"], "definition_invalid", "{t}");
        assert_eq!(f["severity"], "error", "{t}");
        let message = f["message"].as_str().unwrap();
        assert!(message.contains(&format!("field {field}:")), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }
}

#[tokio::test]
async fn ten_thousand_gateways_probe_with_bounded_concurrency() {
    // Every gateway is the same UDP responder, which answers after a short
    // delay and records how many requests were ever outstanding at once.
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let port = socket.local_addr().unwrap().port();
    let outstanding = Arc::new(Mutex::new((HashSet::<String>::new(), 0usize)));
    let (sock, track) = (socket.clone(), outstanding.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(req) = trunkprobe::sip::parse_request(&buf[..n]) else {
                continue;
            };
            let call_id = req.header("Call-ID").unwrap_or_default().to_string();
            {
                let mut t = track.lock().unwrap();
                t.0.insert(call_id.clone());
                t.1 = t.1.max(t.0.len());
            }
            let (sock, track) = (sock.clone(), track.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                track.lock().unwrap().0.remove(&call_id);
                let reply = trunkprobe::sip::build_response(&req, from, 200, "OK", "x", &[], None);
                let _ = sock.send_to(&reply, from).await;
            });
        }
    });
    let gateways: Vec<Value> = (0..10_000)
        .map(|i| json!({"gateway_address": "127.0.0.1", "port": port, "priority": i}))
        .collect();
    let api = FakeApi::start(json!([TrunkJson::new("t1")
        .name("wide")
        .gateways(gateways)
        .build()]));
    let started = std::time::Instant::now();
    let out = check(&api, &["--format", "json", "--concurrency", "16"]).await;
    let err = stderr(&out);
    let peak = outstanding.lock().unwrap().1;
    eprintln!(
        "10,000 targets in {:?}, peak {peak} in flight",
        started.elapsed()
    );
    assert!(!err.contains("panicked"), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["summary"]["targets"], 10_000, "{err}");
    assert_eq!(doc["summary"]["targets_ok"], 10_000);
    // Findings (duplicate gateways, media) may make it 1; it ran to the end.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    assert!(
        (1..=16).contains(&peak),
        "{peak} requests outstanding at once"
    );
}

#[tokio::test]
async fn unknown_transports_codecs_and_enums_are_findings() {
    let sctp = TrunkJson::new("t1")
        .name("sctp trunk")
        .gateways(vec![json!({"gateway_address": "127.0.0.1"})])
        .transport("transport-sctp")
        .set("allow", json!("speex,,foo;bar,\u{0}"))
        .set("disallow", json!("everything"))
        .set("auth_type", json!("kerberos"))
        .set("media_encryption", json!("zrtp"))
        .qualify(-5)
        .build();
    let api = FakeApi::start(json!([sctp]));
    let out = check(&api, &["--format", "json"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &doc["trunks"][0];
    assert_eq!(t["status"], "skipped_invalid_transport");
    let checks: Vec<&str> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for want in [
        "transport_invalid",
        "auth_type_invalid",
        "media_encryption_invalid",
        "codec_no_g711",
        "codec_compressed",
        "qualify_frequency_negative",
    ] {
        assert!(checks.contains(&want), "{want} missing from {checks:?}");
    }
}

#[tokio::test]
async fn control_characters_never_reach_the_terminal_raw() {
    let evil = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nHEALTHY: all good\u{8}\u{9b}31m";
    let t = TrunkJson::new(evil)
        .gateway(evil, 5060)
        .set("provider", json!(evil))
        .transport(evil)
        .set("allow", json!(evil))
        .ip_identifiers(&[evil])
        .build();
    let ok = TrunkJson::new("t1")
        .name(evil)
        .gateway("127.0.0.1", 9)
        .transport("transport-tcp")
        .build();
    let api = FakeApi::start(json!([t, ok]));

    let out = check(&api, &["--format", "text", "--timeout", "1s"]).await;
    let text = stdout(&out);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{text}");
    assert!(!err.contains("panicked"), "{err}");
    for (i, c) in text.char_indices() {
        assert!(
            !c.is_control() || c == '\n',
            "control character {c:?} at byte {i} of the text report:\n{text}"
        );
    }
    for line in text.lines().chain(err.lines()) {
        assert!(!line.starts_with("HEALTHY"), "injected line: {line:?}");
    }
    assert!(text.contains("evil"), "{text}");

    // JSON keeps the values exactly; the encoder escapes C0 controls (ESC, CR,
    // LF, BEL...). C1 characters such as U+009B are valid JSON and stay as is.
    let out = check(&api, &["--format", "json", "--timeout", "1s"]).await;
    let raw = stdout(&out);
    assert!(
        !raw.chars().any(|c| c.is_ascii_control() && c != '\n'),
        "{raw:?}"
    );
    let doc: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(doc["trunks"][0]["name"], evil);
}
