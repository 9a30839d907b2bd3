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
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
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
