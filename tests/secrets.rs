//! The API token and every `auth_password` never reach any output: every
//! command in [`cases`] runs at every verbosity (none, `-v`, `-vv`,
//! `RUST_LOG=trace`) in each of its output variants, and its stdout, stderr
//! and (for daemons) fetched HTTP bodies are searched for both secrets.
//!
//! To cover a new command or source, add one line to [`cases`]: `Case::once`
//! for a command that ends, `Case::daemon` for one that listens (the runner
//! adds `--listen 127.0.0.1:PORT`, fetches the paths once the first answers,
//! stops it with SIGTERM and reads its logs).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;

use common::{FakeApi, Reply, TrunkJson};

/// Recognisable secrets; any part of them in an output is a leak.
const TOKEN: &str = "tp-SECRET-TOKEN-c0ffee42d00d";
const PASSWORD: &str = "pw-SECRET-PASSWORD-8badf00d";

const VERBOSITY: [(&str, Option<&str>); 4] = [
    ("quiet", None),
    ("-v", None),
    ("-vv", None),
    ("trace", Some("trace")),
];
const REPORT_FORMATS: &[&[&str]] = &[&["--format", "text"], &["--format", "json"]];
/// `serve`'s log formats.
const LOG_FORMATS: &[&[&str]] = &[&["--log-format", "text"], &["--log-format", "json"]];
/// `ping` has one output: normal and `-q`.
const PING_OUTPUTS: &[&[&str]] = &[&[], &["-q"]];

/// Fixtures every case may point at.
struct Ctx {
    /// The in-process trunk API (`--api-url`).
    api: String,
    /// An API whose errors echo the request headers, token included.
    echo_api: String,
    token_file: String,
    /// A create-request body with `auth_password`.
    create_request: String,
    /// The healthy carrier every trunk points at, as a SIP URI.
    carrier_uri: String,
}

enum Run {
    /// Runs to completion.
    Once,
    /// Listens on `--listen`; the first path is polled until it answers 200,
    /// then (after a moment for the first probes) the others are fetched,
    /// then the daemon is stopped with SIGTERM.
    Daemon { paths: Vec<String> },
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    variants: &'static [&'static [&'static str]],
    run: Run,
    /// Use `--token-file` instead of `BOLNA_API_KEY`.
    env_token: bool,
    /// Text every run must show, proving it got as far as it should.
    shows: &'static str,
}

impl Case {
    fn once(name: &'static str, args: &[&str], shows: &'static str) -> Case {
        Case {
            name,
            shows,
            args: args.iter().map(|a| a.to_string()).collect(),
            variants: REPORT_FORMATS,
            run: Run::Once,
            env_token: true,
        }
    }

    fn daemon(name: &'static str, args: &[&str], paths: &[&str], shows: &'static str) -> Case {
        Case {
            run: Run::Daemon {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            },
            ..Case::once(name, args, shows)
        }
    }

    fn variants(self, variants: &'static [&'static [&'static str]]) -> Case {
        Case { variants, ..self }
    }

    fn no_env_token(self) -> Case {
        Case {
            env_token: false,
            ..self
        }
    }
}

fn cases(ctx: &Ctx) -> Vec<Case> {
    let (api, echo, token_file) = (&ctx.api, &ctx.echo_api, &ctx.token_file);
    let probe = format!("/probe?target={}", ctx.carrier_uri);
    #[rustfmt::skip]
    let cases = vec![
        Case::once("check api", &["check", "--api-url", api], "secret trunk"),
        Case::once("check token file", &["check", "--api-url", api, "--token-file", token_file], "secret trunk").no_env_token(),
        Case::once("check echoing api", &["check", "--api-url", echo], "answered 500"),
        Case::once("check create request", &["check", "--trunks", &ctx.create_request], "secret trunk"),
        Case::once("check create request traced", &["check", "--trace", "--trunks", &ctx.create_request], "secret trunk"),
        Case::daemon("serve api", &["serve", "--api-url", api], &["/healthz", "/metrics", &probe, "/", "/logs?id=1"], "trunkprobe_").variants(LOG_FORMATS),
        Case::daemon("serve create request", &["serve", "--trunks", &ctx.create_request], &["/healthz", "/metrics", "/", "/logs?id=1"], "trunkprobe_").variants(LOG_FORMATS),
        Case::once("ping", &["ping", "-c", "2", "-i", "0.1", &ctx.carrier_uri], "200").variants(PING_OUTPUTS),
    ];
    cases
}

/// Runs one case once; returns everything it wrote or served.
async fn run(
    case: &Case,
    ctx_dir: &Path,
    variant: &[&str],
    verbosity: (&str, Option<&str>),
) -> String {
    let mut cmd = tokio::process::Command::new(common::bin());
    if verbosity.0.starts_with('-') {
        cmd.arg(verbosity.0);
    }
    cmd.args(&case.args).args(variant);
    if case.args[0] == "check" || case.args[0] == "serve" {
        // No origination probe of sip.bolna.ai: no traffic off loopback.
        cmd.arg("--no-origination");
    }
    cmd.env_remove("RUST_LOG")
        .env_remove("BOLNA_API_KEY")
        .current_dir(ctx_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(filter) = verbosity.1 {
        cmd.env("RUST_LOG", filter);
    }
    if case.env_token {
        cmd.env("BOLNA_API_KEY", TOKEN);
    }
    let mut served = String::new();
    let listen = match &case.run {
        Run::Once => None,
        Run::Daemon { .. } => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
            Some(port)
        }
    };
    let mut child = cmd.spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = tokio::spawn(async move {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
        (o, e)
    });
    if let (Run::Daemon { paths }, Some(port)) = (&case.run, listen) {
        for (i, path) in paths.iter().enumerate() {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            served.push_str(&fetch_when_ready(port, path).await);
        }
        // SIGTERM, so that shutdown logging runs too.
        let pid = child.id().unwrap() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the command must end")
        .unwrap();
    let (o, e) = readers.await.unwrap();
    let text = format!(
        "{}\n{}\n{served}",
        String::from_utf8_lossy(&o),
        String::from_utf8_lossy(&e)
    );
    assert!(
        !text.contains("panicked"),
        "{}: {status}: {text}",
        case.name
    );
    assert!(text.contains(case.shows), "{}: {status}: {text}", case.name);
    if verbosity.0 != "quiet" && case.args.iter().any(|a| a == "--api-url") {
        // Logging really was on (the API client logs at debug level).
        assert!(
            text.contains("DEBUG"),
            "{} {}: {text}",
            case.name,
            verbosity.0
        );
    }
    text
}

/// GETs `path` from the daemon, retrying until it answers (20 s at most).
async fn fetch_when_ready(port: u16, path: &str) -> String {
    let url = format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(resp) = reqwest::get(&url).await {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status.is_success() || Instant::now() > deadline {
                return format!("GET {path}: {status}\n{body}\n");
            }
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Secrets, and fragments long enough to identify them.
fn leaks(text: &str) -> Vec<&'static str> {
    [TOKEN, PASSWORD, "c0ffee42d00d", "8badf00d"]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_any_output() {
    let (carrier, _task) = trunkprobe::demo::udp_carrier(
        "127.0.0.1:0".parse().unwrap(),
        trunkprobe::demo::Answer::default(),
    )
    .await
    .unwrap();
    // A userpass trunk (with the password, as a careless API might send it)
    // whose gateway is a healthy carrier on loopback.
    let trunk = TrunkJson::new("t-secret")
        .name("secret trunk")
        .userpass("alice")
        .set("auth_password", json!(PASSWORD))
        .qualify(1)
        .gateway_at(carrier)
        .build();
    let api = FakeApi::start(json!([trunk])).with_token(TOKEN);
    let echo_api = FakeApi::start(Reply::with(|req| {
        let dump: Vec<String> = req
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        Reply::text(500, dump.join("\n"))
    }));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let create_request = dir.path().join("create-request.json");
    let mut body = trunk;
    for key in ["id", "is_active"] {
        body.as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&create_request, body.to_string()).unwrap();
    let ctx = Ctx {
        api: api.url(),
        echo_api: echo_api.url(),
        token_file: token_file.display().to_string(),
        create_request: create_request.display().to_string(),
        carrier_uri: format!("sip:{carrier}"),
    };

    let mut runs = 0;
    for case in cases(&ctx) {
        for variant in case.variants {
            for verbosity in VERBOSITY {
                let text = run(&case, dir.path(), variant, verbosity).await;
                let found = leaks(&text);
                assert!(
                    found.is_empty(),
                    "{} {variant:?} {}: leaked {found:?} in:\n{text}",
                    case.name,
                    verbosity.0
                );
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 8 * 2 * 4);
}

#[tokio::test]
async fn the_runner_sees_secrets_when_they_are_printed() {
    // The search works: a command that does print the password is caught.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, format!("{{\"name\": \"{PASSWORD}\"}}")).unwrap();
    let case = Case::once(
        "check",
        &["check", "--trunks", &file.display().to_string()],
        "8badf00d",
    );
    let text = run(&case, dir.path(), &["--format", "json"], ("quiet", None)).await;
    assert_eq!(leaks(&text), [PASSWORD, "8badf00d"]);
}
