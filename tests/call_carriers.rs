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

/// `invite_answer_stream.xml.tmpl` rendered for a WAV (WAVE_FORMAT_MULAW, 8 kHz mono) of
/// `samples`, in `dir`: a carrier that streams that audio and nothing else.
fn streaming_carrier(dir: &std::path::Path, samples: impl Iterator<Item = i16>) -> SippCall {
    use trunkprobe::rtp::g711::Codec;
    let data: Vec<u8> = samples.map(|s| Codec::Pcmu.encode(s)).collect();
    let mut wav = Vec::new();
    let fmt: [u8; 18] = {
        let mut f = [0u8; 18];
        f[0..2].copy_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
        f[2..4].copy_from_slice(&1u16.to_le_bytes());
        f[4..8].copy_from_slice(&8000u32.to_le_bytes());
        f[8..12].copy_from_slice(&8000u32.to_le_bytes());
        f[12..14].copy_from_slice(&1u16.to_le_bytes());
        f[14..16].copy_from_slice(&8u16.to_le_bytes());
        f
    };
    let riff_len = 4 + 8 + fmt.len() + 12 + 8 + data.len();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(riff_len as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    wav.extend_from_slice(&fmt);
    wav.extend_from_slice(b"fact");
    wav.extend_from_slice(&4u32.to_le_bytes());
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let wav_path = dir.join("carrier.wav");
    std::fs::write(&wav_path, wav).unwrap();
    let tmpl =
        std::fs::read_to_string(common::peers_dir().join("sipp/invite_answer_stream.xml.tmpl"))
            .unwrap()
            .replace("@@RTP_FILE@@", &wav_path.display().to_string());
    let scenario = dir.join("invite_answer_stream.xml");
    std::fs::write(&scenario, tmpl).unwrap();
    SippCall::start(scenario.to_str().unwrap(), SippTransport::Udp, false)
}

#[test]
fn audio_without_rtcp_or_echo_is_outbound_unconfirmed() {
    let dir = tempfile::tempdir().unwrap();
    let tone = (0..8000 * 4).map(|i| (8000.0 * (i as f64 * 0.7).sin()) as i16);
    let carrier = streaming_carrier(dir.path(), tone);
    let (_, r) = call(&carrier.addr().to_string(), &["--duration", "3s"], None);
    assert_eq!(
        r["verdict"],
        "outbound_unconfirmed",
        "{r}\n{}",
        carrier.logs()
    );
    let m = &r["call"]["media"];
    assert!(m["inbound"]["packets"].as_u64().unwrap() >= 100, "{m}");
    assert_eq!(m["echoed"], 0);
    assert_eq!(m["rtcp_received"], 0);
    assert!(r["fix"].as_str().unwrap().contains("echo"), "{r}");
}

#[test]
fn a_carrier_that_streams_silence_is_silent_inbound() {
    let dir = tempfile::tempdir().unwrap();
    let carrier = streaming_carrier(dir.path(), std::iter::repeat_n(0i16, 8000 * 4));
    let (_, r) = call(&carrier.addr().to_string(), &["--duration", "3s"], None);
    assert_eq!(r["verdict"], "silent_inbound", "{r}\n{}", carrier.logs());
    let m = &r["call"]["media"];
    assert!(m["inbound"]["packets"].as_u64().unwrap() >= 100, "{m}");
    // SIPp streams the WAV file's header too: one loud packet among 150 silent ones.
    assert!(m["inbound"]["audio_ratio"].as_f64().unwrap() < 0.05, "{m}");
}

#[test]
fn a_closed_tcp_port_is_network_error() {
    let port = common::free_tcp_port();
    let (out, r) = call(&format!("127.0.0.1:{port}"), &["--transport", "tcp"], None);
    assert_eq!(r["verdict"], "network_error", "{r}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["call"]["ended_by"], "nothing_to_end");
}

/// SRTP that fails authentication: no real peer encrypts under another key than the one it
/// answered, so the demo's in-process SDES carrier does it on purpose, over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_under_another_key_than_answered_is_srtp_auth_failed() {
    use trunkprobe::demo::media::{stream_call_carrier, Media};
    let host = "carrier.inprocess.test";
    let (ca, config) = trunkprobe::demo::generate_tls(host).unwrap();
    let (addr, _task) = stream_call_carrier(
        "127.0.0.1:0".parse().unwrap(),
        Media::SdesWrongKey,
        Some(config),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let out = tokio::process::Command::new(common::bin())
        .args([
            "call",
            "--to",
            "+14155550100",
            "--format",
            "json",
            "--duration",
            "2s",
        ])
        .args([
            "--gateway",
            &format!("{host}:{}", addr.port()),
            "--transport",
            "tls",
        ])
        .args([
            "--media-encryption",
            "sdes",
            "--resolve",
            &format!("{host}:127.0.0.1"),
        ])
        .arg("--ca-file")
        .arg(&ca_file)
        .output()
        .await
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["verdict"], "srtp_auth_failed", "{r}");
    let m = &r["call"]["media"];
    assert_eq!(m["inbound"]["packets"], 0, "{m}");
    assert!(
        m["srtp_auth_failures"].as_u64().unwrap() >= 90,
        "counted, not dropped silently: {m}"
    );
    assert_eq!(r["call"]["ended_by"]["bye"]["code"], 200, "{r}");
}

#[test]
fn trace_shows_every_message_whole_and_never_the_password() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let proxy = KamailioAuth::start(AuthOpts::new(PASSWORD, Some(carrier.addr())));
    let gw = proxy.addr().to_string();
    let args = [
        "--duration",
        "1s",
        "--auth-username",
        "bolna-trunk",
        "--trace",
    ];
    let (out, r) = call(&gw, &args, Some(PASSWORD));
    no_password_in(&out);
    let flow = r["call"]["flow"].as_array().unwrap();
    assert!(flow.iter().all(|m| m["message"].is_string()), "{r}");
    let all: String = flow
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert!(all.contains("SIP/2.0 407"), "{all}");
    assert!(
        all.contains("Proxy-Authorization: Digest") && all.contains("response="),
        "{all}"
    );
    assert!(all.contains("m=audio "), "the SDP too");

    // Text: the messages after the flow; without --trace, none.
    let (out, _) = call(
        &gw,
        &["--duration", "1s", "--auth-username", "bolna-trunk"],
        Some(PASSWORD),
    );
    let plain: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plain["call"]["flow"][0].get("message").is_none());
    let text = Command::new(common::bin())
        .args([
            "call",
            "--to",
            "+14155550100",
            "--timeout",
            "2s",
            "--gateway",
            &gw,
        ])
        .args([
            "--duration",
            "1s",
            "--auth-username",
            "bolna-trunk",
            "--trace",
        ])
        .env("TRUNKPROBE_AUTH_PASSWORD", PASSWORD)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ms sent to") && text.contains("ms received from"),
        "{text}"
    );
    assert!(text.contains("  INVITE sip:+14155550100@"), "{text}");
    assert!(!text.contains(PASSWORD));
}
