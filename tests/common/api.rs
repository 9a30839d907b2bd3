//! [`FakeApi`]: the one fake of Bolna's trunk API for tests, on 127.0.0.1.
//!
//! It answers `GET /sip-trunks/trunks` (the list endpoint of
//! `../shared/bolna-docs/list-trunks.txt`; any other path is a 404) with its [`Reply`]: by
//! default `200 application/json` and the document it holds, which may be any JSON value (a
//! list of trunks, valid or not, an object, `null`...). A test swaps the reply at any time
//! with [`FakeApi::set`] (a refresh then sees the new one), and can:
//! - require the Bearer token ([`FakeApi::with_token`]: else 401, as the real API answers);
//! - honour the `is_active` query filter ([`FakeApi::filter_active`]);
//! - fail every Nth request with a 500 ([`FakeApi::fail_every`]: an API that is down now and
//!   then), or delay every answer ([`FakeApi::delay`]);
//! - answer any status, content type and bytes ([`Reply::body`], [`Reply::text`],
//!   [`Reply::down`]), compute the answer from the request ([`Reply::with`]), or take over the
//!   socket after the request head ([`Reply::raw`]: stalled, endless or malformed HTTP);
//! - read back every request it got ([`FakeApi::requests`], [`FakeApi::count`]).
//!
//! It is a small HTTP/1.1 server of its own (one request per connection, `Connection: close`)
//! so that a hostile answer is exactly the bytes a test asks for. It runs on a thread of its own,
//! so sync and async tests use it alike; it stops when the last clone of the handle is dropped.
//!
//! ```ignore
//! let api = FakeApi::start(json!([TrunkJson::probed("a").gateway_at(gw).build()]))
//!     .with_token(TOKEN);
//! let daemon = Daemon::start(&["--api-url", &api.url(), "--refresh", "1s"]);
//! api.set(json!([{"name": {"nested": true}}]));   // the next refresh sees a malformed trunk
//! api.set(Reply::down(503));                      // and then an outage
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The path the fake serves.
pub const LIST_PATH: &str = "/sip-trunks/trunks";
/// The content type of a plain text answer (what axum gives a `String` body).
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// A request head larger than this is dropped.
const MAX_HEAD: usize = 64 * 1024;

/// A handle on a running fake trunk API; clones share it.
#[derive(Clone)]
pub struct FakeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Dropped with the last handle: the server thread then ends.
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

struct State {
    reply: Reply,
    token: Option<String>,
    filter_active: bool,
    fail_every: Option<usize>,
    delay: Duration,
    requests: Vec<Request>,
}

/// One request the fake received on the list path.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The query parameters, percent-decoded.
    pub query: BTreeMap<String, String>,
    /// The headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Respond = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;
type RawFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type RawRespond = Arc<dyn Fn(TcpStream) -> RawFuture + Send + Sync>;

/// What the fake answers a list request with.
#[derive(Clone)]
pub enum Reply {
    /// `200`, `application/json`, this document.
    Json(Value),
    /// Any status, content type and body.
    Body {
        status: u16,
        content_type: String,
        body: Bytes,
    },
    /// The reply this closure computes from the request.
    With(Respond),
    /// The socket itself, once the request head is read: the closure writes what it likes.
    Raw(RawRespond),
}

impl Reply {
    pub fn json(doc: Value) -> Reply {
        Reply::Json(doc)
    }

    pub fn body(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply::Body {
            status,
            content_type: content_type.to_string(),
            body: body.into(),
        }
    }

    /// `status` and `body` as plain text.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::body(status, TEXT_PLAIN, body)
    }

    /// `status` with the text `upstream down`: the API failing.
    pub fn down(status: u16) -> Reply {
        Reply::text(status, "upstream down")
    }

    pub fn with(respond: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::With(Arc::new(respond))
    }

    pub fn raw<F, Fut>(respond: F) -> Reply
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Reply::Raw(Arc::new(move |sock| Box::pin(respond(sock))))
    }
}

impl From<Value> for Reply {
    fn from(doc: Value) -> Reply {
        Reply::Json(doc)
    }
}

impl FakeApi {
    /// Serves `reply` (a [`Reply`], or any JSON value to list) on a free loopback port.
    pub fn start(reply: impl Into<Reply>) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            reply: reply.into(),
            token: None,
            filter_active: false,
            fail_every: None,
            delay: Duration::ZERO,
            requests: Vec::new(),
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    while let Ok((sock, _)) = listener.accept().await {
                        tokio::spawn(serve(sock, shared.clone()));
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = accept => {}
                }
            });
        });
        FakeApi {
            addr,
            state,
            _stop: Arc::new(stop),
        }
    }

    /// Answers 401 to a request without `Authorization: Bearer {token}`.
    pub fn with_token(self, token: &str) -> FakeApi {
        self.state.lock().unwrap().token = Some(token.to_string());
        self
    }

    /// With `?is_active=true` (or `false`), lists only the entries of a JSON list whose
    /// `is_active` is that; without the parameter, all.
    pub fn filter_active(self) -> FakeApi {
        self.state.lock().unwrap().filter_active = true;
        self
    }

    /// The `n`th request, the `2n`th and so on answer [`Reply::down`]`(500)`.
    pub fn fail_every(self, n: usize) -> FakeApi {
        assert!(n > 0);
        self.state.lock().unwrap().fail_every = Some(n);
        self
    }

    /// Waits `delay` before each answer.
    pub fn delay(self, delay: Duration) -> FakeApi {
        self.state.lock().unwrap().delay = delay;
        self
    }

    /// From the next request on, answers `reply` (a [`Reply`], or any JSON value to list).
    pub fn set(&self, reply: impl Into<Reply>) {
        self.state.lock().unwrap().reply = reply.into();
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: what `--api-url` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every list request so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many list requests so far.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }
}

/// One connection: reads a request head, answers, closes.
async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    let Some(req) = read_head(&mut sock).await else {
        return;
    };
    if req.path != LIST_PATH {
        return write(&mut sock, 404, TEXT_PLAIN, b"not found").await;
    }
    let (reply, delay) = {
        let mut s = state.lock().unwrap();
        s.requests.push(req.clone());
        let n = s.requests.len();
        let authorized = s
            .token
            .as_ref()
            .is_none_or(|t| req.header("authorization") == Some(&format!("Bearer {t}")));
        let reply = if s.fail_every.is_some_and(|every| n % every == 0) {
            Reply::down(500)
        } else if !authorized {
            Reply::text(401, r#"{"error":401,"message":"invalid token"}"#)
        } else {
            match (s.reply.clone(), s.filter_active, req.query.get("is_active")) {
                (Reply::Json(Value::Array(list)), true, Some(want)) => {
                    let want = want == "true";
                    let kept = list
                        .into_iter()
                        .filter(|t| t["is_active"].as_bool() == Some(want));
                    Reply::Json(Value::Array(kept.collect()))
                }
                (reply, _, _) => reply,
            }
        };
        (reply, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let reply = match reply {
        Reply::With(respond) => respond(&req),
        other => other,
    };
    match reply {
        Reply::Json(doc) => {
            let body = serde_json::to_vec(&doc).unwrap();
            write(&mut sock, 200, "application/json", &body).await
        }
        Reply::Body {
            status,
            content_type,
            body,
        } => write(&mut sock, status, &content_type, &body).await,
        Reply::With(_) => panic!("a Reply::with closure must not answer Reply::With"),
        Reply::Raw(respond) => respond(sock).await,
    }
}

/// The request line and headers; `None` when the peer hangs up or sends too much first.
async fn read_head(sock: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if head.len() > MAX_HEAD {
            return None;
        }
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
    })
}

/// Form-style percent-decoding (`+` is a space).
fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) if hex.len() == 2 => out.push(v),
                    _ => {
                        out.push(b'%');
                        out.extend_from_slice(&hex);
                    }
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn write(sock: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if sock.write_all(head.as_bytes()).await.is_ok() && sock.write_all(body).await.is_ok() {
        let _ = sock.shutdown().await;
    }
}
