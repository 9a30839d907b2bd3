//! `trunkprobe completions` and `trunkprobe man`: the bash script loads in a real bash and
//! completes commands and flags; the manual page renders with man(1), one section per command.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

fn run(args: &[&str]) -> String {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_commands_and_flags() {
    let script = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunkprobe.bash");
    std::fs::write(&path, script).unwrap();
    let complete = |words: &str, cword: usize| {
        let prog = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _trunkprobe trunkprobe \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let out = Command::new("bash").args(["-c", &prog]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(complete("trunkprobe ca", 1).trim(), "call");
    assert!(complete("trunkprobe check --no-r", 2).contains("--no-register"));
    assert!(complete("trunkprobe serve --test-call-u", 2).contains("--test-call-until"));
    for shell in ["zsh", "fish"] {
        assert!(
            run(&["completions", shell]).contains("trunkprobe"),
            "{shell}"
        );
    }
}

#[test]
fn the_manual_page_renders_with_a_section_per_command() {
    let roff = run(&["man"]);
    assert!(
        roff.contains(".TH trunkprobe 1"),
        "{}",
        &roff[..200.min(roff.len())]
    );
    for cmd in ["check", "call", "ping", "serve", "demo"] {
        assert!(
            roff.contains(&format!(".TH trunkprobe-{cmd} ")),
            "no section for {cmd}"
        );
    }
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("man(1): apt-get install man-db");
    man.stdin
        .take()
        .unwrap()
        .write_all(roff.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--test-call"),
        "rendered: {}",
        &text[..400.min(text.len())]
    );
}
