//! The process guard shared by all peers.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a peer may take to become ready: 10 s, or `TRUNKPROBE_PEER_READY_SECS`.
pub fn ready_timeout() -> Duration {
    std::env::var("TRUNKPROBE_PEER_READY_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Why a peer did not come up.
#[derive(Debug)]
pub enum StartError {
    /// The binary is not installed (the message names the Debian package).
    Missing(String),
    /// The process exited before it was ready (port taken, bad config, ...); carries its logs.
    Exited(String),
    /// Still not ready at the deadline; carries its logs.
    Timeout(String),
}

impl StartError {
    /// Panics with a readable message; what the peer constructors do on a final failure.
    pub fn panic(self, what: &str) -> ! {
        match self {
            StartError::Missing(m) => panic!("{what}: {m}"),
            StartError::Exited(l) => panic!("{what} exited before it was ready; logs:\n{l}"),
            StartError::Timeout(l) => {
                panic!("{what} not ready within {:?}; logs:\n{l}", ready_timeout())
            }
        }
    }
}

/// `sh -c` wrapper for `watch_stdin`: runs "$@" in the background, kills it when stdin reaches
/// EOF, and exits with its status when it exits by itself.
const WATCHDOG_SH: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
p=$!
(read -r _ <&3; kill -9 "$p" 2>/dev/null) &
w=$!
exec 3<&-
wait "$p"
rc=$?
kill "$w" 2>/dev/null
exit "$rc""#;

/// True if `program` is a path or is found on `PATH`.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// All peers are spawned from one thread that lives as long as the test binary: the parent-death
/// signal (`PR_SET_PDEATHSIG`) fires when the *thread* that forked the child exits, so spawning from
/// a test's own thread would kill a peer as soon as that thread ended.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("peer-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn peer-spawner thread");
        Mutex::new(tx)
    })
}

/// A running peer process: its own process group, stdout/stderr in `stdout.log`/`stderr.log`
/// inside its temp dir, killed (whole group, SIGKILL) on drop.
pub struct PeerProcess {
    name: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    /// Write end of the peer's stdin when spawned with `watch_stdin`: closing it (drop, or the
    /// test binary dying) is the peer wrapper's signal to kill the peer.
    keepalive: Option<ChildStdin>,
    dir: TempDir,
}

impl PeerProcess {
    /// Spawns `program args` with `dir` as working directory. `death_signal` is what the peer gets
    /// if the test binary dies without dropping the guard (SIGTERM for Kamailio so its main process
    /// takes its children down; SIGKILL otherwise). `package` names the Debian package for the
    /// "not installed" message.
    ///
    /// With `watch_stdin` the process gets a pipe as stdin that only this guard writes to: a peer
    /// that changes its credentials (dnsmasq does, even with `--user=root`) loses its
    /// parent-death signal, so it runs under a `sh` wrapper that kills it when stdin hits EOF.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        name: &str,
        dir: TempDir,
        program: &str,
        args: &[String],
        package: &str,
        death_signal: libc::c_int,
        watch_stdin: bool,
    ) -> Result<Self, StartError> {
        let stdout = File::create(dir.path().join("stdout.log")).expect("create stdout.log");
        let stderr = File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        fs::write(
            dir.path().join("cmdline.txt"),
            format!("{program} {}\n", args.join(" ")),
        )
        .expect("write cmdline.txt");
        let mut cmd = if watch_stdin {
            // fd 3 keeps the pipe for the watcher: a background list's stdin is /dev/null.
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(WATCHDOG_SH)
                .arg("peer-watchdog")
                .arg(program)
                .args(args)
                .stdin(Stdio::piped());
            c
        } else {
            let mut c = Command::new(program);
            c.args(args).stdin(Stdio::null());
            c
        };
        if watch_stdin && !program_exists(program) {
            return Err(StartError::Missing(format!(
                "`{program}` not found: apt-get install {package}"
            )));
        }
        cmd.current_dir(dir.path())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((cmd, tx))
            .expect("peer-spawner thread gone");
        match rx.recv().expect("peer-spawner thread gone") {
            Ok(mut child) => Ok(PeerProcess {
                name: name.to_string(),
                keepalive: child.stdin.take(),
                child: Some(child),
                status: None,
                dir,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StartError::Missing(format!(
                "`{program}` not found: apt-get install {package}"
            ))),
            Err(e) => Err(StartError::Missing(format!("cannot run `{program}`: {e}"))),
        }
    }

    /// Polls `probe` (which should itself use short timeouts) until it returns true, failing fast
    /// if the process exits, and giving up at [`ready_timeout`].
    pub fn wait_ready(&mut self, mut probe: impl FnMut() -> bool) -> Result<(), StartError> {
        let deadline = Instant::now() + ready_timeout();
        let mut pause = Duration::from_millis(10);
        loop {
            if self.exit_status().is_some() {
                return Err(StartError::Exited(self.logs()));
            }
            if probe() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Timeout(self.logs()));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The exit status if the process has exited (reaps it), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.status = Some(st);
                }
            }
        }
        self.status
    }

    /// True while the main process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// PID of the main process (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The peer's temp dir (rendered config, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the whole process group now (a gateway going away mid-test). Idempotent; logs stay
    /// readable until the guard is dropped.
    pub fn stop(&mut self) {
        self.keepalive = None;
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain syscalls on our own child's process group.
            unsafe {
                libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = child.kill();
            if let Ok(st) = child.wait() {
                self.status.get_or_insert(st);
            }
            // Kamailio's workers are reparented to init when the main process dies, and init may
            // take a second to reap them; wait (bounded) only until none is still running: a
            // zombie has closed its sockets already.
            let deadline = Instant::now() + Duration::from_secs(3);
            while !live_group_members(child.id()).is_empty() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The command line, stderr, stdout and any other `*.log` file in the temp dir (each cut to its
    /// last 32 KiB), for assertion messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "== {} (pid {}) in {}",
            self.name,
            self.pid(),
            self.dir().display()
        );
        if let Ok(c) = fs::read_to_string(self.dir().join("cmdline.txt")) {
            let _ = write!(out, "$ {c}");
        }
        let mut files: Vec<PathBuf> =
            vec![self.dir().join("stderr.log"), self.dir().join("stdout.log")];
        if let Ok(rd) = fs::read_dir(self.dir()) {
            let mut extra: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log") && !files.contains(p))
                .collect();
            extra.sort();
            files.extend(extra);
        }
        for f in files {
            let Ok(bytes) = fs::read(&f) else { continue };
            let start = bytes.len().saturating_sub(32 * 1024);
            let _ = writeln!(
                out,
                "-- {} ({} bytes{}) --",
                f.file_name().unwrap().to_string_lossy(),
                bytes.len(),
                if start > 0 { ", tail" } else { "" }
            );
            out.push_str(&String::from_utf8_lossy(&bytes[start..]));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PIDs of the processes in process group `pgid` that are not zombies (from `/proc`).
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next();
            let pgrp = f.nth(1).and_then(|g| g.parse::<u32>().ok());
            pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
        })
        .collect()
}

/// Starts a peer with fresh ports up to 3 times: `attempt` picks ports, renders config and spawns;
/// an early exit (typically a port taken between picking and binding) is retried, a missing binary
/// or a timeout is not.
pub fn start_with_retry<T>(what: &str, mut attempt: impl FnMut() -> Result<T, StartError>) -> T {
    let mut last = None;
    for _ in 0..3 {
        match attempt() {
            Ok(t) => return t,
            Err(StartError::Exited(logs)) => last = Some(StartError::Exited(logs)),
            Err(e) => e.panic(what),
        }
    }
    last.expect("at least one attempt").panic(what)
}

/// A fresh temp dir for one peer, named after it (`/tmp/trunkprobe-<prefix>-XXXXXX`), removed on
/// drop unless `TRUNKPROBE_KEEP_PEER_DIRS` is set (to read configs and logs after a failure).
pub fn peer_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("trunkprobe-{prefix}-"))
        .disable_cleanup(std::env::var_os("TRUNKPROBE_KEEP_PEER_DIRS").is_some())
        .tempdir()
        .expect("create peer temp dir")
}
