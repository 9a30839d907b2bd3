//! `trunkprobe call` against SIPp as the carrier on loopback: a carrier that
//! answers and echoes RTP (two-way audio), one that answers and sends nothing
//! (one-way), a busy line, a 488, a line that rings forever (CANCEL at the
//! cap), and a SIGINT in the middle of a call (the BYE reaches the peer). What
//! SIPp received is read from its `-trace_msg` log.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_udp_port, Sipp, SippTransport};
use serde_json::Value;

/// A SIPp carrier running `scenario`, logging every message it gets.
struct Carrier {
    sipp: Sipp,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Carrier {
    fn start(scenario: &str, echo: bool) -> Carrier {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("messages.log");
        let media = free_udp_port().to_string();
        let mut args = vec![
            "-mi",
            "127.0.0.1",
            "-mp",
            &media,
            "-trace_msg",
            "-message_file",
            log.to_str().unwrap(),
        ];
        if echo {
            args.push("-rtp_echo");
        }
        let sipp = Sipp::start(scenario, SippTransport::Udp, &args);
        Carrier {
            sipp,
            log,
            _dir: dir,
        }
    }

    /// The start lines of the messages SIPp received and sent.
    fn messages(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether SIPp received a request of `method` (a start line `METHOD sip:...`).
    fn received(&self, method: &str) -> bool {
        self.messages()
            .lines()
            .any(|l| l.starts_with(&format!("{method} sip:")))
    }

    fn wait_received(&self, method: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.received(method) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

fn call_cmd(c: &Carrier, extra: &[&str]) -> Command {
    let mut cmd = Command::new(common::bin());
    cmd.args(["call", "--to", "+14155550100", "--timeout", "2s"])
        .args(["--gateway", &c.sipp.addr().to_string()])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("TRUNKPROBE_AUTH_PASSWORD");
    cmd
}

/// The child's exit status, which must come within `limit` of `since`.
fn exit_within(child: &mut Child, since: Instant, limit: Duration) -> std::process::ExitStatus {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(since.elapsed() < limit, "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(c: &Carrier, extra: &[&str]) -> (Output, Value) {
    let out = call_cmd(c, &[&["--format", "json"], extra].concat())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

#[test]
fn an_echoing_carrier_is_two_way_audio_and_the_call_ends_with_bye() {
    let c = Carrier::start("call_answer.xml", true);
    let (out, r) = run(&c, &["--duration", "2s"]);
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
    assert_eq!(out.status.code(), Some(0));
    let m = &r["call"]["media"];
    assert!(m["outbound"]["packets"].as_u64().unwrap() >= 90, "{m}");
    assert!(m["inbound"]["packets"].as_u64().unwrap() >= 90, "{m}");
    assert!(m["echoed"].as_u64().unwrap() >= 90, "{m}");
    assert_eq!(r["call"]["signalling"]["kind"], "answered");
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
    assert!(c.received("ACK") && c.received("BYE"), "{}", c.messages());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("calling +14155550100"),
        "said before dialling: {stderr}"
    );
}

#[test]
fn a_carrier_that_sends_no_rtp_is_no_inbound_audio() {
    let c = Carrier::start("call_answer.xml", false);
    let (out, r) = run(&c, &["--duration", "2s"]);
    assert_eq!(r["verdict"], "no_inbound_audio", "{r}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["call"]["media"]["inbound"]["packets"], 0);
    assert!(r["cause"].as_str().unwrap().contains("one-way audio"));
    assert!(c.received("BYE"), "the call still ends: {}", c.messages());
}

#[test]
fn a_busy_line_and_a_488_are_rejections_with_their_codes() {
    let busy = Carrier::start("call_busy.xml", false);
    let (out, r) = run(&busy, &[]);
    assert_eq!(r["verdict"], "busy", "{r}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["call"]["signalling"]["code"], 486);
    assert!(busy.wait_received("ACK", Duration::from_secs(2)));

    let refused = Carrier::start("call_488.xml", false);
    let (_, r) = run(&refused, &[]);
    assert_eq!(r["verdict"], "codec_mismatch", "{r}");
    assert!(r["patch"]["allow"].is_string(), "{r}");
    assert!(refused.wait_received("ACK", Duration::from_secs(2)));
}

#[test]
fn a_line_that_rings_forever_is_cancelled_at_the_cap() {
    let c = Carrier::start("call_ring_forever.xml", false);
    let started = Instant::now();
    let (out, r) = run(&c, &["--duration", "1s", "--max-duration", "3s"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(r["verdict"], "no_answer", "{r}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["call"]["ended_by"], "cancel", "{r}");
    assert!(
        c.received("CANCEL") && c.received("ACK"),
        "{}",
        c.messages()
    );
}

/// SIGINT in the middle of an answered call: the BYE reaches the carrier and
/// the process ends soon after.
#[test]
fn sigint_mid_call_sends_bye() {
    let c = Carrier::start("call_answer.xml", true);
    let mut child: Child = call_cmd(&c, &["--duration", "30s", "--max-duration", "40s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Answered: SIPp has our ACK.
    assert!(
        c.wait_received("ACK", Duration::from_secs(10)),
        "{}",
        c.messages()
    );
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    assert!(
        c.wait_received("BYE", Duration::from_secs(5)),
        "no BYE after SIGINT: {}",
        c.messages()
    );
    let status = exit_within(&mut child, stopped, Duration::from_secs(10));
    assert!(
        status.code().is_some(),
        "ended by itself, not by the signal"
    );
    let mut text = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("ended by our BYE"), "{text}");
}

/// The SIP messages of `method` SIPp received, whole (the log holds each one
/// between its start line and a blank line).
fn requests<'a>(log: &'a str, method: &str) -> Vec<&'a str> {
    log.split("\n\n")
        .filter_map(|m| m.find(&format!("{method} sip:")).map(|at| &m[at..]))
        .collect()
}

fn call_id(message: &str) -> Option<&str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID:").map(str::trim))
}

/// The Call-IDs of the requests of `method` SIPp received.
fn call_ids<'a>(log: &'a str, method: &str) -> std::collections::BTreeSet<&'a str> {
    requests(log, method)
        .into_iter()
        .filter_map(call_id)
        .collect()
}

#[test]
fn several_calls_from_one_process_are_each_a_dialog_with_its_own_rtp_and_bye() {
    let c = Carrier::start("call_answer.xml", true);
    let (out, r) = run(
        &c,
        &["--calls", "4", "--call-rate", "20", "--duration", "2s"],
    );
    assert_eq!(out.status.code(), Some(0), "{r}");
    assert_eq!(r["requested"], 4);
    assert_eq!(r["placed"], 4);
    assert_eq!(r["verdicts"]["two_way_audio"], 4, "{r}");
    let calls = r["calls"].as_array().unwrap();
    let mut ports = std::collections::BTreeSet::new();
    for call in calls {
        assert_eq!(call["verdict"], "two_way_audio", "{call}");
        assert_eq!(call["call"]["ended_by"]["bye"]["code"], 200, "{call}");
        let m = &call["call"]["media"];
        assert!(m["echoed"].as_u64().unwrap() >= 90, "{m}");
        ports.insert(m["local"].as_str().unwrap().to_string());
    }
    assert_eq!(ports.len(), 4, "an RTP port pair per call: {ports:?}");
    let log = c.messages();
    let (invites, byes) = (call_ids(&log, "INVITE"), call_ids(&log, "BYE"));
    assert_eq!(invites.len(), 4, "a Call-ID per call: {log}");
    assert_eq!(byes, invites, "every call ended with its own BYE");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 calls, 20 per second"), "{stderr}");
}

/// SIGINT while calls of a `--calls` run are up and more are due: every call
/// that was answered gets its BYE, no more are started, and the report says
/// how many were placed.
#[test]
fn sigint_during_several_calls_ends_every_one_and_starts_no_more() {
    let c = Carrier::start("call_answer.xml", true);
    let mut child: Child = call_cmd(
        &c,
        &[
            "--calls",
            "6",
            "--call-rate",
            "2",
            "--duration",
            "30s",
            "--max-duration",
            "40s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while requests(&c.messages(), "ACK").len() < 2 {
        assert!(Instant::now() < until, "{}", c.messages());
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    let status = exit_within(&mut child, stopped, Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(1),
        "not every requested call was placed"
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = c.messages();
    let (invites, byes) = (call_ids(&log, "INVITE"), call_ids(&log, "BYE"));
    assert!(invites.len() < 6, "no more calls after the signal: {log}");
    assert_eq!(byes, invites, "every answered call got its BYE: {log}");
    let mut text = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains(&format!("{} of 6 calls", invites.len())),
        "{text}"
    );
}

/// `--calls` in text: a line per call, then the whole report (cause, fix) of
/// the first call of each verdict that is not two-way audio.
#[test]
fn several_one_way_calls_show_the_first_ones_cause_once() {
    let c = Carrier::start("call_answer.xml", false);
    let out = call_cmd(
        &c,
        &["--calls", "2", "--call-rate", "10", "--duration", "1s"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("first no_inbound_audio:").count(), 1, "{text}");
    assert_eq!(text.matches("  cause: ").count(), 1, "{text}");
    assert!(text.contains("2 of 2 calls: 2 no_inbound_audio"), "{text}");
    assert_eq!(requests(&c.messages(), "BYE").len(), 2, "{}", c.messages());
}
