//! `serve --test-call`: scheduled test calls against SIPp carriers (an echo: two-way; one that
//! answers and sends nothing: one-way) and their series; registration checks of a userpass
//! trunk against a Kamailio registrar (right and wrong password); a SIGTERM during a test call
//! ends it with a BYE at the carrier; a trunk removed from the file stops being called.

mod common;

use std::time::Duration;

use common::kamailio_auth::{AuthOpts, KamailioAuth};
use common::serve::{sample, write_trunks, Daemon};
use common::sipp_call::SippCall;
use common::{SippTransport, TrunkJson};

fn trunk(id: &str, carrier: &SippCall) -> serde_json::Value {
    TrunkJson::probed(id)
        .gateway_at(carrier.addr())
        .g711_only()
        .qualify(60)
        .build()
}

fn verdict(m: &str, id: &str, v: &str) -> Option<f64> {
    sample(
        m,
        "trunkprobe_test_call_verdict",
        &[("trunk_id", id), ("verdict", v)],
    )
}

#[test]
fn scheduled_test_calls_decide_two_way_and_one_way_audio() {
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let silent = SippCall::start("invite_answer_silent.xml", SippTransport::Udp, false);
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[trunk("echo", &echo), trunk("silent", &silent)],
    );
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--test-call",
        "echo=+14155550100",
        "--test-call",
        "Trunk silent=+14155550101",
        "--test-call-duration",
        "2s",
        "--test-call-interval",
        "10m",
    ]);
    d.wait_for("both test calls judged", |d| {
        let m = d.metrics();
        verdict(&m, "echo", "two_way_audio") == Some(1.0)
            && verdict(&m, "silent", "no_inbound_audio") == Some(1.0)
    });
    let m = d.metrics();
    assert_eq!(
        verdict(&m, "echo", "no_inbound_audio"),
        Some(0.0),
        "one series per verdict"
    );
    assert_eq!(
        sample(
            &m,
            "trunkprobe_test_calls_total",
            &[("trunk_id", "echo"), ("verdict", "two_way_audio")]
        ),
        Some(1.0)
    );
    let packets = |id: &str, dir: &str| {
        sample(
            &m,
            "trunkprobe_test_call_rtp_packets",
            &[("trunk_id", id), ("direction", dir)],
        )
        .unwrap_or(-1.0)
    };
    assert!(packets("echo", "received") >= 90.0, "{m}");
    assert!(
        packets("silent", "sent") >= 90.0 && packets("silent", "received") == 0.0,
        "{m}"
    );
    assert!(sample(&m, "trunkprobe_test_call_mos", &[("trunk_id", "echo")]).unwrap() > 4.0);
    assert!(
        sample(&m, "trunkprobe_test_call_mos", &[("trunk_id", "silent")]).is_none(),
        "no RTP, no MOS"
    );
    assert!(sample(
        &m,
        "trunkprobe_test_call_setup_seconds",
        &[("trunk_id", "echo")]
    )
    .is_some());
    assert!(sample(
        &m,
        "trunkprobe_test_call_last_timestamp_seconds",
        &[("trunk_id", "echo")]
    )
    .is_some());
    echo.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));
    silent.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));

    // The silent trunk leaves the file: its series go and it is not called again.
    std::fs::write(&file, serde_json::to_vec(&[trunk("echo", &echo)]).unwrap()).unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for("the removed trunk's series are gone", |d| {
        verdict(&d.metrics(), "silent", "no_inbound_audio").is_none()
    });
    assert_eq!(silent.received_requests("INVITE").len(), 1);
}

#[test]
fn sigterm_during_a_test_call_ends_it_with_bye() {
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &[trunk("echo", &echo)]);
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--test-call",
        "echo=100",
        "--test-call-duration",
        "60s",
    ]);
    echo.wait_for(
        "the call is answered (ACK)",
        |c| c.saw_ack(),
        Duration::from_secs(20),
    );
    let (status, took) = d.sigterm();
    assert!(status.success(), "{status}\n{}", d.logs());
    assert!(
        echo.saw_bye(),
        "the BYE reached the carrier before serve exited: {}",
        echo.messages()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(d.logs().contains("test call ended"), "{}", d.logs());
}

#[test]
fn registration_checks_report_accepted_and_rejected_credentials() {
    let good = KamailioAuth::start(AuthOpts::new("right-pw", None));
    let bad = KamailioAuth::start(AuthOpts::new("right-pw", None));
    good.seed_binding("bolna-trunk", "sip:bolna@13.200.45.61:5060", 300);
    let userpass = |id: &str, reg: &KamailioAuth| {
        TrunkJson::probed(id)
            .userpass("bolna-trunk")
            .gateway_at(reg.addr())
            .g711_only()
            .qualify(60)
            .build()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(
        dir.path(),
        &[userpass("good", &good), userpass("bad", &bad)],
    );
    let pw_dir = dir.path().join("passwords");
    std::fs::create_dir(&pw_dir).unwrap();
    std::fs::write(pw_dir.join("good"), "right-pw\n").unwrap();
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "wrong-pw").unwrap();
    let wrong_arg = format!("bad={}", wrong.display());
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--auth-password-dir",
        pw_dir.to_str().unwrap(),
        "--auth-password-file",
        &wrong_arg,
        "--register-interval",
        "10m",
    ]);
    let result = |m: &str, id: &str, r: &str| {
        sample(
            m,
            "trunkprobe_registration_result",
            &[("trunk_id", id), ("result", r)],
        )
    };
    d.wait_for("both registrations checked", |d| {
        let m = d.metrics();
        result(&m, "good", "accepted") == Some(1.0) && result(&m, "bad", "rejected") == Some(1.0)
    });
    let m = d.metrics();
    assert_eq!(
        sample(
            &m,
            "trunkprobe_registration_bindings",
            &[("trunk_id", "good")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "trunkprobe_registration_bolna_binding",
            &[("trunk_id", "good")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "trunkprobe_registration_bolna_binding",
            &[("trunk_id", "bad")]
        ),
        Some(0.0)
    );
    for secret in ["right-pw", "wrong-pw"] {
        assert!(
            !m.contains(secret) && !d.logs().contains(secret),
            "the password leaked"
        );
    }
}

#[test]
fn probe_module_call_is_off_by_default_and_places_one_call_when_allowed() {
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &[trunk("echo", &echo)]);
    let path = format!("/probe?module=call&target=sip:100@{}", echo.addr());

    let d = Daemon::start(&["--trunks", file.to_str().unwrap()]);
    let (code, body) = d.get(&path).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("--allow-probe-calls"), "{body}");
    assert!(!echo.saw_invite(), "nothing was dialled");
    drop(d);

    let d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--allow-probe-calls",
        "--test-call-duration",
        "2s",
    ]);
    let (code, body) = d.get(&path).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(sample(&body, "probe_success", &[]), Some(1.0), "{body}");
    assert_eq!(
        sample(&body, "probe_call_verdict", &[("verdict", "two_way_audio")]),
        Some(1.0),
        "{body}"
    );
    assert!(
        sample(
            &body,
            "probe_call_rtp_packets",
            &[("direction", "received")]
        )
        .unwrap()
            > 50.0
    );
    echo.wait_for("the BYE", |c| c.saw_bye(), Duration::from_secs(3));
    let (code, _) = d
        .get("/probe?module=call&target=sip:127.0.0.1:5060")
        .unwrap();
    assert_eq!(code, 400, "a call needs a number");
    let (code, _) = d
        .get("/probe?module=nope&target=sip:127.0.0.1:5060")
        .unwrap();
    assert_eq!(code, 400);
}

#[test]
fn the_in_flight_cap_holds_with_more_trunks_than_slots() {
    let echo = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let dir = tempfile::tempdir().unwrap();
    let ids = ["a", "b", "c"];
    let trunks: Vec<_> = ids.iter().map(|id| trunk(id, &echo)).collect();
    let file = write_trunks(dir.path(), &trunks);
    let mut args = vec![
        "--trunks".to_string(),
        file.display().to_string(),
        "--test-calls-in-flight".into(),
        "1".into(),
        "--test-call-duration".into(),
        "1s".into(),
    ];
    for id in ids {
        args.extend(["--test-call".into(), format!("{id}=100")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = Daemon::start(&args);
    d.wait_for("all three trunks called", |d| {
        let m = d.metrics();
        ids.iter()
            .all(|id| verdict(&m, id, "two_way_audio") == Some(1.0))
    });
    // One slot: every call ended before the next was dialled.
    let mut in_flight = 0;
    for line in d.logs().lines() {
        if line.contains("test call: dialling") {
            in_flight += 1;
            assert_eq!(in_flight, 1, "two calls at once:\n{}", d.logs());
        } else if line.contains("test call ended") {
            in_flight -= 1;
        }
    }
}

#[test]
fn test_calls_through_a_challenging_proxy_use_the_trunks_password() {
    let carrier = SippCall::start("invite_answer_echo.xml", SippTransport::Udp, true);
    let proxy = KamailioAuth::start(AuthOpts::new("proxy-pw", Some(carrier.addr())));
    let userpass = |id: &str| {
        TrunkJson::probed(id)
            .userpass("bolna-trunk")
            .gateway_at(proxy.addr())
            .g711_only()
            .qualify(60)
            .build()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write_trunks(dir.path(), &[userpass("right"), userpass("wrong")]);
    let (right, wrong) = (dir.path().join("right.pw"), dir.path().join("wrong.pw"));
    std::fs::write(&right, "proxy-pw").unwrap();
    std::fs::write(&wrong, "not-it").unwrap();
    let (right_arg, wrong_arg) = (
        format!("right={}", right.display()),
        format!("wrong={}", wrong.display()),
    );
    let mut d = Daemon::start(&[
        "--trunks",
        file.to_str().unwrap(),
        "--test-call",
        "right=+14155550100",
        "--test-call",
        "wrong=+14155550100",
        "--test-call-duration",
        "2s",
        "--auth-password-file",
        &right_arg,
        "--auth-password-file",
        &wrong_arg,
        "--register-interval",
        "0",
    ]);
    d.wait_for("both calls judged", |d| {
        let m = d.metrics();
        verdict(&m, "right", "two_way_audio") == Some(1.0)
            && verdict(&m, "wrong", "auth_rejected") == Some(1.0)
    });
    assert_eq!(
        carrier.received_requests("INVITE").len(),
        1,
        "only the right password got through"
    );
    for secret in ["proxy-pw", "not-it"] {
        assert!(!d.logs().contains(secret) && !d.metrics().contains(secret));
    }
}
