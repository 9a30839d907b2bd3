//! A real Prometheus (Debian package `prometheus`, which brings `promtool`) on 127.0.0.1, its HTTP
//! query API, and what the dashboard tests need around it: the PromQL of `dashboards/`, template
//! variable substitution, and a fake exporter that serves the daemon's metric names.
//!
//! Std-only like the rest of the harness: the HTTP client is a few lines of HTTP/1.0.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::ports::{free_tcp_port, loopback};
use super::process::{peer_dir, start_with_retry, PeerProcess, StartError};

/// The metric names `trunkprobe serve` defines (issue 3, "Metrics"); a histogram is listed by its
/// base name. The dashboard and the alert rules may use these and Prometheus' own `up` only.
pub const DAEMON_METRICS: &[&str] = &[
    "trunkprobe_options_up",
    "trunkprobe_options_rtt_seconds",
    "trunkprobe_options_last_rtt_seconds",
    "trunkprobe_options_last_status_code",
    "trunkprobe_options_probes_total",
    "trunkprobe_options_last_probe_timestamp_seconds",
    "trunkprobe_tls_cert_not_after_timestamp_seconds",
    "trunkprobe_dns_lookup_seconds",
    "trunkprobe_dns_addresses",
    "trunkprobe_trunk_info",
    "trunkprobe_finding",
    "trunkprobe_source_last_success_timestamp_seconds",
    "trunkprobe_source_errors_total",
    "trunkprobe_trunks",
    "trunkprobe_build_info",
    "trunkprobe_mtu_largest_answered_bytes",
    "trunkprobe_mtu_first_lost_bytes",
    "trunkprobe_mtu_path_mtu_bytes",
    "trunkprobe_mtu_invite_estimate_bytes",
    "trunkprobe_mtu_last_run_timestamp_seconds",
    "trunkprobe_origination_up",
    "trunkprobe_origination_rtt_seconds",
    "trunkprobe_origination_resolves_to_guide_ip",
    "trunkprobe_origination_last_run_timestamp_seconds",
    "trunkprobe_egress_info",
    "trunkprobe_test_call_verdict",
    "trunkprobe_test_calls_total",
    "trunkprobe_test_call_setup_seconds",
    "trunkprobe_test_call_rtp_packets",
    "trunkprobe_test_call_loss_ratio",
    "trunkprobe_test_call_jitter_seconds",
    "trunkprobe_test_call_mos",
    "trunkprobe_test_call_audio_level_dbov",
    "trunkprobe_test_call_last_timestamp_seconds",
    "trunkprobe_registration_result",
    "trunkprobe_registration_bindings",
    "trunkprobe_registration_bolna_binding",
    "trunkprobe_registration_last_timestamp_seconds",
];

/// `dashboards/` in the source tree.
pub fn dashboards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Runs `promtool ARGS` in `dir`; panics with an install hint when it is missing.
pub fn promtool(dir: &Path, args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): apt-get install prometheus"))
}

/// `promtool check metrics` on exposition text (stdin); it wants `# HELP` on every metric.
pub fn promtool_check_metrics(text: &str) -> Output {
    use std::process::Stdio;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): apt-get install prometheus"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .expect("write to promtool");
    child.wait_with_output().expect("promtool")
}

/// A Prometheus server on 127.0.0.1 with a temp storage dir; killed on drop.
pub struct Prometheus {
    proc: PeerProcess,
    addr: SocketAddr,
}

impl Prometheus {
    /// Writes `files` (name, contents; one must be `prometheus.yml`) into a fresh dir and starts
    /// Prometheus on it. Ready when `/-/ready` answers 200.
    ///
    /// ```ignore
    /// let prom = Prometheus::start(&[("prometheus.yml", &cfg), ("alerts.yml", &rules)]);
    /// let series = prom.query("up").unwrap();
    /// ```
    pub fn start(files: &[(&str, &str)]) -> Prometheus {
        start_with_retry("Prometheus", || {
            let dir = peer_dir("prometheus");
            for (name, text) in files {
                fs::write(dir.path().join(name), text).expect("write prometheus file");
            }
            let addr = loopback(free_tcp_port());
            let args: Vec<String> = vec![
                "--config.file=prometheus.yml".into(),
                "--storage.tsdb.path=data".into(),
                format!("--web.listen-address={addr}"),
                "--log.level=warn".into(),
            ];
            let mut proc = PeerProcess::spawn(
                "prometheus",
                dir,
                "prometheus",
                &args,
                "prometheus",
                libc::SIGKILL,
                false,
            )?;
            proc.wait_ready(|| {
                http_get(addr, "/-/ready", Duration::from_millis(300))
                    .map(|(code, _)| code == 200)
                    .unwrap_or(false)
            })?;
            Ok::<_, StartError>(Prometheus { proc, addr })
        })
    }

    /// `127.0.0.1:PORT` of its web UI and API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its command line and logs.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// `GET path` on its API, parsed as JSON; `Err` holds the API's `error` or what went wrong.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (code, body) =
            http_get(self.addr, path, Duration::from_secs(10)).map_err(|e| format!("{e}"))?;
        let doc: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code}, not JSON ({e}): {body}"))?;
        if doc["status"] != "success" {
            return Err(format!(
                "HTTP {code}: {} {}",
                doc["errorType"].as_str().unwrap_or(""),
                doc["error"].as_str().unwrap_or(&body)
            ));
        }
        Ok(doc["data"].clone())
    }

    /// Evaluates `expr` now (`/api/v1/query`); the result vector, or the evaluation error.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        match &data["result"] {
            Value::Array(v) => Ok(v.clone()),
            // A scalar or string result is one value.
            other if !other.is_null() => Ok(vec![other.clone()]),
            _ => Ok(Vec::new()),
        }
    }

    /// All rule groups it loaded (`/api/v1/rules`), flattened to the rules.
    pub fn rules(&self) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/rules")?;
        Ok(data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect())
    }

    /// Active (pending or firing) alerts (`/api/v1/alerts`).
    pub fn alerts(&self) -> Result<Vec<Value>, String> {
        Ok(self.api("/api/v1/alerts")?["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// A minimal HTTP/1.0 GET: (status code, body). Handles chunked bodies.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(bad)?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    Ok((code, if chunked { dechunk(body) } else { body.into() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for a query parameter).
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One PromQL query of the dashboard: where it is and what it says.
#[derive(Clone, Debug)]
pub struct PanelQuery {
    /// Panel title and refId, e.g. `Targets down/A`.
    pub panel: String,
    /// The expression as written, with Grafana variables.
    pub expr: String,
}

/// Every `targets[].expr` of every panel, rows' nested panels included.
pub fn dashboard_queries(dashboard: &Value) -> Vec<PanelQuery> {
    fn walk(panels: &Value, out: &mut Vec<PanelQuery>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(PanelQuery {
                        panel: format!(
                            "{}/{}",
                            p["title"].as_str().unwrap_or("?"),
                            t["refId"].as_str().unwrap_or("?")
                        ),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The `label_values(METRIC_SELECTOR, LABEL)` query variables of the dashboard:
/// (variable name, selector, label).
pub fn label_values_variables(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .or(v["definition"].as_str())
            .unwrap_or_default();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: not label_values(...): {q}", v["name"]));
        let (sel, label) = inner
            .rsplit_once(',')
            .unwrap_or_else(|| panic!("variable {}: label_values needs a label: {q}", v["name"]));
        out.push((
            v["name"].as_str().unwrap_or("?").to_string(),
            sel.trim().to_string(),
            label.trim().to_string(),
        ));
    }
    out
}

/// Replaces Grafana's variables in `expr` the way a dashboard with "All" selected would:
/// interval variables (`$__rate_interval`, `$__interval`, `$__range`, ...) by `interval`, every
/// other `$name` / `${name}` / `${name:format}` by `.*`.
pub fn substitute_vars(expr: &str, interval: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').expect("unclosed ${ in expr");
            (braced[..end].split(':').next().unwrap(), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        assert!(!name.is_empty(), "lone $ in {expr}");
        out.push_str(if name.starts_with("__") {
            interval
        } else {
            ".*"
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The `trunkprobe_*` metric names an expression refers to, with histogram suffixes removed.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("trunkprobe_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if name.starts_with("trunkprobe_options_rtt_seconds") {
                    name = base;
                }
            }
        }
        // Only a name outside label matchers/strings: the character before is not a quote.
        let quoted = i > 0 && rest.as_bytes()[i - 1] == b'"';
        if !quoted && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// Splits an alert expression at its last top-level comparison (`==`, `!=`, `>=`, `<=`, `>`,
/// `<`, outside brackets, braces, parentheses and strings): (left side, operator, right side).
/// The left side is what should return data while the threshold decides whether it fires.
pub fn split_comparison(expr: &str) -> Option<(String, String, String)> {
    let b = expr.as_bytes();
    let (mut depth, mut i, mut found) = (0i32, 0usize, None);
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'=' | b'!' | b'>' | b'<' if depth == 0 => {
                let two = b.get(i + 1) == Some(&b'=');
                let op_len = if two { 2 } else { 1 };
                if two || matches!(b[i], b'>' | b'<') {
                    found = Some((i, op_len));
                }
                i += op_len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let (at, len) = found?;
    Some((
        expr[..at].trim().to_string(),
        expr[at..at + len].to_string(),
        expr[at + len..].trim().to_string(),
    ))
}

/// An in-process stand-in for `trunkprobe serve`'s `/metrics` (and `/probe`): every metric name
/// of [`DAEMON_METRICS`] with the issue's labels, counters and the histogram growing on each
/// scrape. Lets the dashboard and the rules be evaluated by a real Prometheus without the daemon.
pub struct FakeExporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeExporter {
    /// Serves on a free 127.0.0.1 port until dropped. `location` is added to every series.
    pub fn start(location: &str) -> FakeExporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake exporter");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s, location) = (stop.clone(), location.to_string());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
                        let _ = serve_one(conn, n, &location);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeExporter {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FakeExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, n: u64, location: &str) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let k = conn.read(&mut buf)?;
        if k == 0 {
            break;
        }
        req.extend_from_slice(&buf[..k]);
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let body = if path.starts_with("/probe") {
        "# HELP probe_success Whether the probe succeeded.\n# TYPE probe_success gauge\nprobe_success 1\n".to_string()
    } else {
        fake_exposition(n, location)
    };
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The exposition text of the `n`th scrape: a healthy UDP target, a TLS target whose certificate
/// expires in 10 days, and a trunk whose only target is down and that has an error finding.
pub fn fake_exposition(n: u64, location: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let loc = format!("location=\"{location}\"");
    let targets = [
        (
            "t-ok",
            "Fixture UDP",
            "gw-ok.test.local",
            "127.0.0.1:5060",
            "udp",
            true,
        ),
        (
            "t-tls",
            "Fixture TLS",
            "gw-tls.test.local",
            "127.0.0.1:5061",
            "tls",
            true,
        ),
        (
            "t-down",
            "Fixture down",
            "gw-down.test.local",
            "127.0.0.1:5070",
            "udp",
            false,
        ),
    ];
    let mut o = String::new();
    fn family(o: &mut String, name: &str, kind: &str) {
        let _ = writeln!(o, "# HELP {name} Fixture for {name}.\n# TYPE {name} {kind}");
    }
    let tl = |t: &(&str, &str, &str, &str, &str, bool)| {
        format!(
            "trunk_id=\"{}\",trunk=\"{}\",gateway=\"{}\",target=\"{}\",transport=\"{}\",{loc}",
            t.0, t.1, t.2, t.3, t.4
        )
    };
    family(&mut o, "trunkprobe_options_up", "gauge");
    for t in &targets {
        let _ = writeln!(o, "trunkprobe_options_up{{{}}} {}", tl(t), t.5 as u8);
    }
    family(&mut o, "trunkprobe_options_rtt_seconds", "histogram");
    let buckets = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    for t in targets.iter().filter(|t| t.5) {
        for le in buckets {
            let c = if le >= 0.005 { n } else { 0 };
            let _ = writeln!(
                o,
                "trunkprobe_options_rtt_seconds_bucket{{{},le=\"{le}\"}} {c}",
                tl(t)
            );
        }
        let _ = writeln!(
            o,
            "trunkprobe_options_rtt_seconds_bucket{{{},le=\"+Inf\"}} {n}",
            tl(t)
        );
        let _ = writeln!(
            o,
            "trunkprobe_options_rtt_seconds_sum{{{}}} {}",
            tl(t),
            n as f64 * 0.004
        );
        let _ = writeln!(o, "trunkprobe_options_rtt_seconds_count{{{}}} {n}", tl(t));
    }
    family(&mut o, "trunkprobe_options_last_rtt_seconds", "gauge");
    for t in targets.iter().filter(|t| t.5) {
        let _ = writeln!(o, "trunkprobe_options_last_rtt_seconds{{{}}} 0.004", tl(t));
    }
    family(&mut o, "trunkprobe_options_last_status_code", "gauge");
    for t in &targets {
        let _ = writeln!(
            o,
            "trunkprobe_options_last_status_code{{{}}} {}",
            tl(t),
            if t.5 { 200 } else { 0 }
        );
    }
    family(&mut o, "trunkprobe_options_probes_total", "counter");
    for t in &targets {
        for outcome in trunkprobe::outcome::Outcome::ALL {
            let hit =
                (outcome.as_str() == "ok") == t.5 && matches!(outcome.as_str(), "ok" | "timeout");
            let _ = writeln!(
                o,
                "trunkprobe_options_probes_total{{{},outcome=\"{}\"}} {}",
                tl(t),
                outcome.as_str(),
                if hit { n } else { 0 }
            );
        }
    }
    family(
        &mut o,
        "trunkprobe_options_last_probe_timestamp_seconds",
        "gauge",
    );
    for t in &targets {
        let _ = writeln!(
            o,
            "trunkprobe_options_last_probe_timestamp_seconds{{{}}} {now}",
            tl(t)
        );
    }
    family(
        &mut o,
        "trunkprobe_tls_cert_not_after_timestamp_seconds",
        "gauge",
    );
    let _ = writeln!(
        o,
        "trunkprobe_tls_cert_not_after_timestamp_seconds{{{}}} {}",
        tl(&targets[1]),
        now + 10.0 * 86400.0
    );
    family(&mut o, "trunkprobe_dns_lookup_seconds", "gauge");
    for t in &targets {
        let _ = writeln!(
            o,
            "trunkprobe_dns_lookup_seconds{{trunk_id=\"{}\",trunk=\"{}\",gateway=\"{}\",{loc}}} 0.002",
            t.0, t.1, t.2
        );
    }
    family(&mut o, "trunkprobe_dns_addresses", "gauge");
    for t in &targets {
        let _ = writeln!(
            o,
            "trunkprobe_dns_addresses{{trunk_id=\"{}\",trunk=\"{}\",gateway=\"{}\",{loc}}} 1",
            t.0, t.1, t.2
        );
    }
    family(&mut o, "trunkprobe_trunk_info", "gauge");
    for t in &targets {
        let _ = writeln!(
            o,
            "trunkprobe_trunk_info{{trunk_id=\"{}\",trunk=\"{}\",provider=\"custom\",transport=\"{}\",media_encryption=\"{}\",auth_type=\"ip-based\",{loc}}} 1",
            t.0, t.1, t.4, if t.5 { "no" } else { "sdes" }
        );
    }
    family(&mut o, "trunkprobe_finding", "gauge");
    let _ = writeln!(
        o,
        "trunkprobe_finding{{trunk_id=\"t-down\",trunk=\"Fixture down\",check=\"sdes_requires_tls\",severity=\"error\",{loc}}} 1"
    );
    let _ = writeln!(
        o,
        "trunkprobe_finding{{trunk_id=\"t-ok\",trunk=\"Fixture UDP\",check=\"udp_large_messages_lost\",severity=\"error\",{loc}}} 1"
    );
    // The UDP size ladder on the healthy UDP target: 1400 bytes and larger lost.
    for (name, value) in [
        ("trunkprobe_mtu_largest_answered_bytes", 1200.0),
        ("trunkprobe_mtu_first_lost_bytes", 1400.0),
        ("trunkprobe_mtu_path_mtu_bytes", 1500.0),
        ("trunkprobe_mtu_invite_estimate_bytes", 1137.0),
        ("trunkprobe_mtu_last_run_timestamp_seconds", now),
    ] {
        family(&mut o, name, "gauge");
        let _ = writeln!(o, "{name}{{{}}} {value}", tl(&targets[0]));
    }
    // Origination: sip.bolna.ai answers over UDP, not over TLS; it resolves to the guide's IP.
    let guide = "sip:sip.bolna.ai:5060";
    let tls = "sip:sip.bolna.ai:5061;transport=tls";
    family(&mut o, "trunkprobe_origination_up", "gauge");
    let _ = writeln!(
        o,
        "trunkprobe_origination_up{{uri=\"{guide}\",transport=\"udp\",target=\"13.200.45.61:5060\",{loc}}} 1"
    );
    let _ = writeln!(
        o,
        "trunkprobe_origination_up{{uri=\"{tls}\",transport=\"tls\",target=\"13.200.45.61:5061\",{loc}}} 0"
    );
    family(&mut o, "trunkprobe_origination_rtt_seconds", "gauge");
    let _ = writeln!(
        o,
        "trunkprobe_origination_rtt_seconds{{uri=\"{guide}\",transport=\"udp\",target=\"13.200.45.61:5060\",{loc}}} 0.03"
    );
    family(
        &mut o,
        "trunkprobe_origination_resolves_to_guide_ip",
        "gauge",
    );
    let _ = writeln!(
        o,
        "trunkprobe_origination_resolves_to_guide_ip{{uri=\"{guide}\",{loc}}} 1"
    );
    family(
        &mut o,
        "trunkprobe_origination_last_run_timestamp_seconds",
        "gauge",
    );
    let _ = writeln!(
        o,
        "trunkprobe_origination_last_run_timestamp_seconds{{{loc}}} {now}"
    );
    family(&mut o, "trunkprobe_egress_info", "gauge");
    let _ = writeln!(
        o,
        "trunkprobe_egress_info{{public_ip=\"203.0.113.7\",behind_nat=\"true\",{loc}}} 1"
    );
    // Test calls: t-ok is two-way (MOS 4.4), t-down one-way; t-ok's registration is
    // accepted with Bolna's binding, t-tls's rejected.
    family(&mut o, "trunkprobe_test_call_verdict", "gauge");
    for (id, name, current) in [
        ("t-ok", "Fixture UDP", "two_way_audio"),
        ("t-down", "Fixture down", "no_inbound_audio"),
    ] {
        for v in [
            "two_way_audio",
            "no_inbound_audio",
            "outbound_not_received",
            "timeout",
        ] {
            let _ = writeln!(
                o,
                "trunkprobe_test_call_verdict{{trunk_id=\"{id}\",trunk=\"{name}\",verdict=\"{v}\",{loc}}} {}",
                u8::from(v == current)
            );
        }
    }
    family(&mut o, "trunkprobe_test_calls_total", "counter");
    let _ = writeln!(
        o,
        "trunkprobe_test_calls_total{{trunk_id=\"t-ok\",trunk=\"Fixture UDP\",verdict=\"two_way_audio\",{loc}}} {n}"
    );
    let call = "trunk_id=\"t-ok\",trunk=\"Fixture UDP\"";
    for (name, value) in [
        ("trunkprobe_test_call_setup_seconds", 0.12),
        ("trunkprobe_test_call_mos", 4.4),
        ("trunkprobe_test_call_audio_level_dbov", -12.0),
        ("trunkprobe_test_call_last_timestamp_seconds", now),
    ] {
        family(&mut o, name, "gauge");
        let _ = writeln!(o, "{name}{{{call},{loc}}} {value}");
    }
    for (name, value) in [
        ("trunkprobe_test_call_rtp_packets", 500.0),
        ("trunkprobe_test_call_loss_ratio", 0.002),
        ("trunkprobe_test_call_jitter_seconds", 0.003),
    ] {
        family(&mut o, name, "gauge");
        for dir in ["sent", "received"] {
            let _ = writeln!(o, "{name}{{{call},direction=\"{dir}\",{loc}}} {value}");
        }
    }
    family(&mut o, "trunkprobe_registration_result", "gauge");
    for (id, name, current) in [
        ("t-ok", "Fixture UDP", "accepted"),
        ("t-tls", "Fixture TLS", "rejected"),
    ] {
        for r in ["accepted", "rejected", "timeout"] {
            let _ = writeln!(
                o,
                "trunkprobe_registration_result{{trunk_id=\"{id}\",trunk=\"{name}\",gateway=\"gw.test.local\",result=\"{r}\",{loc}}} {}",
                u8::from(r == current)
            );
        }
    }
    let reg = "trunk_id=\"t-ok\",trunk=\"Fixture UDP\",gateway=\"gw.test.local\"";
    for (name, value) in [
        ("trunkprobe_registration_bindings", 1.0),
        ("trunkprobe_registration_bolna_binding", 1.0),
        ("trunkprobe_registration_last_timestamp_seconds", now),
    ] {
        family(&mut o, name, "gauge");
        let _ = writeln!(o, "{name}{{{reg},{loc}}} {value}");
    }
    family(
        &mut o,
        "trunkprobe_source_last_success_timestamp_seconds",
        "gauge",
    );
    let _ = writeln!(
        o,
        "trunkprobe_source_last_success_timestamp_seconds{{{loc}}} {now}"
    );
    family(&mut o, "trunkprobe_source_errors_total", "counter");
    let _ = writeln!(
        o,
        "trunkprobe_source_errors_total{{reason=\"timeout\",{loc}}} {n}"
    );
    family(&mut o, "trunkprobe_trunks", "gauge");
    for (state, k) in [("active", 3), ("inactive", 0), ("disabled", 0)] {
        let _ = writeln!(o, "trunkprobe_trunks{{state=\"{state}\",{loc}}} {k}");
    }
    family(&mut o, "trunkprobe_build_info", "gauge");
    let _ = writeln!(
        o,
        "trunkprobe_build_info{{version=\"{}\",{loc}}} 1",
        env!("CARGO_PKG_VERSION")
    );
    o
}
