//! `trunkprobe call` against carriers that do more than answer: a Kamailio edge
//! proxy that wants digest credentials (407) before it relays to a SIPp UAS,
//! with the right, a wrong, and no password; a SIPp carrier that plays early
//! media and then rejects; one that hangs up first; one that answers with
//! G.729 only; and a call over TCP. What the carrier saw is read from SIPp's
//! `-trace_msg` log.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::kamailio_auth::{AuthOpts, KamailioAuth};
use common::sipp_call::SippCall;
use common::SippTransport;
use serde_json::Value;

const PASSWORD: &str = "s3cret-Trunk-pw";

fn call(gateway: &str, extra: &[&str], password: Option<&str>) -> (Output, Value) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["call", "--to", "+14155550100", "--timeout", "2s"])
        .args(["--gateway", gateway, "--format", "json"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("TRUNKPROBE_AUTH_PASSWORD");
    if let Some(p) = password {
        cmd.env("TRUNKPROBE_AUTH_PASSWORD", p);
    }
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn no_password_in(out: &Output) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(PASSWORD),
            "the password is in {name}"
        );
    }
}

#[test]
fn a_challenging_proxy_gets_one_authenticated_invite_and_the_call_goes_through() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let proxy = KamailioAuth::start(AuthOpts::new(PASSWORD, Some(carrier.addr())));
    let gw = proxy.addr().to_string();
    let (out, r) = call(
        &gw,
        &["--duration", "2s", "--auth-username", "bolna-trunk"],
        Some(PASSWORD),
    );
    no_password_in(&out);
    assert_eq!(r["verdict"], "two_way_audio", "{r}\n{}", proxy.logs());
    assert_eq!(r["call"]["authenticated"][0], "carrier.test", "{r}");
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
    // The first INVITE was challenged, the second carried credentials.
    let flow = r["call"]["flow"].as_array().unwrap();
    let lines: Vec<&str> = flow.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains("407")), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("INVITE")).count(),
        2,
        "{lines:?}"
    );
    // The carrier behind the proxy saw one INVITE, with the proxy's route,
    // and our ACK and BYE came through the Record-Route.
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(5));
    assert_eq!(carrier.received_requests("INVITE").len(), 1);
    assert!(carrier.saw_ack(), "{}", carrier.messages());
    let invite = &carrier.received_requests("INVITE")[0];
    assert!(!invite.contains(PASSWORD), "never the password on the wire");
}

#[test]
fn a_qop_auth_challenge_is_answered_with_nc_and_cnonce() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let proxy = KamailioAuth::start(AuthOpts {
        qop: true,
        ..AuthOpts::new(PASSWORD, Some(carrier.addr()))
    });
    let (out, r) = call(
        &proxy.addr().to_string(),
        &["--duration", "1s", "--auth-username", "bolna-trunk"],
        Some(PASSWORD),
    );
    no_password_in(&out);
    assert_eq!(r["verdict"], "two_way_audio", "{r}\n{}", proxy.logs());
    let logs = proxy.logs();
    let creds = logs
        .lines()
        .find(|l| l.contains("credentials: Digest"))
        .unwrap_or_else(|| panic!("no credentials logged: {logs}"));
    for part in [
        "qop=auth",
        "nc=00000001",
        "cnonce=",
        "username=\"bolna-trunk\"",
    ] {
        assert!(creds.contains(part), "{part} missing: {creds}");
    }
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(5));
}

#[test]
fn a_wrong_password_is_auth_rejected_and_never_reaches_the_carrier() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let proxy = KamailioAuth::start(AuthOpts::new(PASSWORD, Some(carrier.addr())));
    let (out, r) = call(
        &proxy.addr().to_string(),
        &["--auth-username", "bolna-trunk"],
        Some("not-the-password"),
    );
    assert_eq!(r["verdict"], "auth_rejected", "{r}\n{}", proxy.logs());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["call"]["signalling"]["answered"], true, "{r}");
    assert!(
        r["cause"].as_str().unwrap().contains("does not accept"),
        "{r}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not-the-password"));
    assert!(!carrier.saw_invite(), "{}", carrier.messages());
}

#[test]
fn without_a_password_the_challenge_is_the_verdict() {
    let proxy = KamailioAuth::start(AuthOpts::new(PASSWORD, None));
    let (_, r) = call(&proxy.addr().to_string(), &[], None);
    assert_eq!(r["verdict"], "auth_rejected", "{r}");
    assert_eq!(r["call"]["signalling"]["code"], 407, "{r}");
    assert_eq!(r["call"]["signalling"]["answered"], false, "{r}");
    assert!(r["fix"].as_str().unwrap().contains("--auth-password-file"));
}

#[test]
fn early_media_then_486_is_busy_and_the_486_is_acked() {
    let carrier = SippCall::start("invite_183_then_486.xml", SippTransport::Udp, true);
    let (_, r) = call(&carrier.addr().to_string(), &["--duration", "5s"], None);
    assert_eq!(r["verdict"], "busy", "{r}");
    assert_eq!(r["call"]["provisional"], serde_json::json!([100, 183]));
    carrier.wait_for("the ACK", |c| c.saw_ack(), Duration::from_secs(3));
    assert!(!carrier.saw_cancel(), "a final response needs no CANCEL");
}

#[test]
fn until_early_media_measures_the_183_and_answers_nothing() {
    let carrier = SippCall::start("invite_183_then_486.xml", SippTransport::Udp, true);
    // The carrier ends the early media with its 486 at 2 s, before our 5 s.
    let (_, r) = call(
        &carrier.addr().to_string(),
        &["--until", "early-media", "--duration", "5s"],
        None,
    );
    assert_eq!(r["call"]["signalling"]["kind"], "early_media", "{r}");
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
    let m = &r["call"]["media"];
    assert!(m["echoed"].as_u64().unwrap() >= 50, "{m}");
    assert!(r["call"]["answer_ms"].is_null(), "never answered: {r}");
    carrier.wait_for("the ACK", |c| c.saw_ack(), Duration::from_secs(3));
}

#[test]
fn a_carrier_that_hangs_up_first_gets_its_200() {
    let carrier = SippCall::answer_then_bye(SippTransport::Udp, true, Duration::from_millis(1500));
    let (_, r) = call(&carrier.addr().to_string(), &["--duration", "10s"], None);
    assert_eq!(r["call"]["ended_by"], "carrier", "{r}");
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
    assert!(r["call"]["duration_ms"].as_f64().unwrap() < 8000.0, "{r}");
    carrier.wait_for(
        "our 200 for its BYE",
        |c| !c.received_responses(200).is_empty(),
        Duration::from_secs(3),
    );
}

#[test]
fn a_g729_only_answer_is_codec_mismatch_and_hung_up_at_once() {
    let carrier = SippCall::start("invite_answer_no_sdp_codec.xml", SippTransport::Udp, false);
    let started = Instant::now();
    let (_, r) = call(&carrier.addr().to_string(), &["--duration", "30s"], None);
    assert_eq!(r["verdict"], "codec_mismatch", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("g729"), "{r}");
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
    assert_eq!(r["call"]["media"]["outbound"]["packets"], 0, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not held for --duration"
    );
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));
}

#[test]
fn a_call_over_tcp_is_two_way_audio() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Tcp, true);
    let (_, r) = call(
        &carrier.addr().to_string(),
        &["--transport", "tcp", "--duration", "2s"],
        None,
    );
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
    assert_eq!(r["call"]["transport"], "tcp", "{r}");
    assert_eq!(r["call"]["retransmissions"], 0, "no Timer A over TCP: {r}");
    carrier.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(5));
}

#[test]
fn dtmf_goes_out_as_telephone_events_and_the_echo_brings_them_back() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let (_, r) = call(
        &carrier.addr().to_string(),
        &["--duration", "3s", "--dtmf", "12#"],
        None,
    );
    let m = &r["call"]["media"];
    assert_eq!(m["dtmf_sent"], "12#", "{m}");
    assert_eq!(m["dtmf_received"], "12#", "echoed back: {m}");
    assert_eq!(m["dtmf_not_offered"], false);
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
}

#[test]
fn dtmf_is_not_sent_when_the_answer_has_no_telephone_event() {
    let carrier = SippCall::start("call_answer_no_dtmf.xml", SippTransport::Udp, true);
    let (_, r) = call(
        &carrier.addr().to_string(),
        &["--duration", "2s", "--dtmf", "1"],
        None,
    );
    let m = &r["call"]["media"];
    assert_eq!(m["dtmf_not_offered"], true, "{m}");
    assert_eq!(m["dtmf_sent"], "", "{m}");
    assert_eq!(r["call"]["answer"]["telephone_event"], false, "{r}");
    assert_eq!(r["verdict"], "two_way_audio", "{r}");
}
