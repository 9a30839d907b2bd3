//! `check`'s progress line: on a real terminal (a tmux pane) it is drawn while the probes
//! run and erased when the report is printed; into a pipe it never appears.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sipp, TrunkJson};

/// A trunk list of `n` trunks at a SIPp that never answers: the check takes the
/// whole `--timeout`.
fn slow_trunks(dir: &std::path::Path, silent: &Sipp, n: usize) -> std::path::PathBuf {
    let trunks: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            TrunkJson::probed(&format!("slow-{i}"))
                .gateway_at(silent.addr())
                .build()
        })
        .collect();
    let file = dir.join("trunks.json");
    std::fs::write(&file, serde_json::to_vec(&trunks).unwrap()).unwrap();
    file
}

fn check_args(file: &std::path::Path) -> Vec<String> {
    vec![
        common::bin(),
        "check".into(),
        "--no-origination".into(),
        "--timeout".into(),
        "3s".into(),
        "--trunks".into(),
        file.display().to_string(),
    ]
}

struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("tmux (installed by .ci/install-peers)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn a_terminal_sees_the_progress_line_and_then_only_the_report() {
    let silent = Sipp::uas_udp("options_silent.xml");
    let dir = tempfile::tempdir().unwrap();
    let file = slow_trunks(dir.path(), &silent, 12);
    let done = dir.path().join("done");
    let tmux = Tmux(format!("trunkprobe-test-{}", std::process::id()));
    let cmd = format!(
        "{} 2>&1; touch {}; sleep 60",
        check_args(&file).join(" "),
        done.display()
    );
    tmux.run(&["new-session", "-d", "-x", "200", "-y", "60", &cmd]);
    let start = Instant::now();
    let mut seen = None;
    while start.elapsed() < Duration::from_secs(10) && !done.exists() {
        let pane = tmux.run(&["capture-pane", "-p"]);
        if let Some(line) = pane.lines().find(|l| l.contains("probing targets")) {
            seen = Some(line.to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = seen.expect("a progress line in the pane while the probes run");
    assert!(seen.contains("probing targets 0/12 · "), "{seen}");
    while start.elapsed() < Duration::from_secs(20) && !done.exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pane = tmux.run(&["capture-pane", "-p"]);
    assert!(pane.contains("timeout"), "the report: {pane}");
    assert!(
        !pane.contains("probing targets"),
        "erased before the report: {pane}"
    );
}

#[test]
fn a_pipe_never_sees_it() {
    let silent = Sipp::uas_udp("options_silent.xml");
    let dir = tempfile::tempdir().unwrap();
    let file = slow_trunks(dir.path(), &silent, 3);
    let args = check_args(&file);
    let out = Command::new(&args[0]).args(&args[1..]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("probing") && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("timeout"));
}
