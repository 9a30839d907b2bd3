//! A running `trunkprobe serve` seen from outside: its HTTP endpoints, its stderr
//! log, signals and exit status; plus helpers to read samples and write trunk files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ports::free_tcp_port;

/// Token in the daemon's environment: it must never show up in logs or metrics.
pub const SERVE_TOKEN: &str = "tp-serve-gaps-secret-token-5e02a1";
/// Generous: the machine is shared and slow; nothing here measures speed.
pub const SERVE_DEADLINE: Duration = Duration::from_secs(45);

/// `trunkprobe serve`, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Daemon {
    /// Starts and waits until `/healthz` answers 200 (the first trunk list is loaded).
    pub fn start(args: &[&str]) -> Daemon {
        let mut d = Daemon::spawn(args);
        d.wait_for("/healthz answers 200", |d| {
            d.get("/healthz").is_some_and(|(code, _)| code == 200)
        });
        d
    }

    /// Starts and waits only until the HTTP server answers at all.
    pub fn spawn(args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let port = free_tcp_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(super::bin())
            .arg("serve")
            .args(["--listen", &listen])
            .args(args)
            // Never probe sip.bolna.ai from a test: no origination unless the test names a URI.
            .args(
                (!args
                    .iter()
                    .any(|a| *a == "--origination" || *a == "--no-origination"))
                .then_some("--no-origination"),
            )
            .env("BOLNA_API_KEY", SERVE_TOKEN)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start trunkprobe serve");
        let mut d = Daemon {
            child,
            port,
            _dir: dir,
            log,
        };
        d.wait_for("the HTTP server answers", |d| d.get("/-/healthy").is_some());
        d
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET over a fresh HTTP/1.0 connection: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let code = buf.split(' ').nth(1)?.parse().ok()?;
        let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    pub fn metrics(&self) -> String {
        match self.get("/metrics") {
            Some((200, body)) => body,
            other => panic!("/metrics: {other:?}\n{}", self.logs()),
        }
    }

    /// Polls `cond` every 100 ms up to [`SERVE_DEADLINE`]; panics with metrics and logs.
    pub fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&Daemon) -> bool) {
        let start = Instant::now();
        while start.elapsed() < SERVE_DEADLINE {
            if cond(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "serve exited ({status}) while waiting for: {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let metrics = self.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        panic!(
            "timed out waiting for: {what}\nmetrics:\n{metrics}\nlogs:\n{}",
            self.logs()
        );
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// SIGTERM, then waits for the exit: (status, time it took).
    pub fn sigterm(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < SERVE_DEADLINE, "serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first sample of `name` whose labels include every pair.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(metrics, name, labels).into_iter().next()
}

/// The values of every sample of `name` whose labels include every pair.
pub fn samples(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            if !labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            {
                return None;
            }
            line.rsplit(' ').next()?.parse().ok()
        })
        .collect()
}

/// The value of label `key` in a sample line.
pub fn label<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Writes (atomically: temp file and rename) `trunks.json` in `dir`.
pub fn write_trunks(dir: &Path, trunks: &[Value]) -> PathBuf {
    write_raw(dir, &serde_json::to_vec(trunks).unwrap())
}

/// Writes any bytes as `trunks.json` in `dir`, atomically.
pub fn write_raw(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("trunks.json");
    let tmp = dir.join("trunks.json.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}
