//! The call's signalling against a scripted carrier, on a simulated clock.

use super::*;
use crate::trunk::{Secret, Transport};

const GW: &str = "198.51.100.7:5060";

fn config(transport: Transport, credentials: Option<Credentials>) -> CallConfig {
    let local: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    CallConfig {
        leg: CallLeg::new(
            "+919876543210",
            "198.51.100.7",
            5060,
            transport,
            "+14155550123",
            local,
            "fromtag".into(),
            "callid-1".into(),
            "trunkprobe/test".into(),
        ),
        peer: GW.parse().unwrap(),
        reliable: transport.is_reliable(),
        offer: b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n".to_vec(),
        credentials,
    }
}

fn peer() -> SocketAddr {
    GW.parse().unwrap()
}

/// Everything the call wants to send now, parsed.
fn sent(call: &mut Call) -> Vec<Request> {
    std::iter::from_fn(|| call.poll_transmit())
        .map(|b| parse_request(&b).expect("our requests parse"))
        .collect()
}

fn events(call: &mut Call) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

/// The carrier's answer to `req`.
fn answer(req: &Request, code: u16, extra: &[(&str, &str)], sdp: Option<&[u8]>) -> Vec<u8> {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let tag = if code == 100 { "" } else { "uastag" };
    build_response(
        req,
        "192.0.2.10:40000".parse().unwrap(),
        code,
        "Reason",
        tag,
        &extra,
        sdp.map(|b| ("application/sdp", b)),
    )
}

const ANSWER_SDP: &[u8] = b"v=0\r\no=- 2 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";

#[test]
fn an_answered_call_acks_the_dialog_and_ends_with_bye() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    assert_eq!(invite.method, "INVITE");
    assert_eq!(invite.header("CSeq"), Some("1 INVITE"));

    // Timer A: retransmissions at 0.5 s and 1.5 s while nothing answers.
    call.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(sent(&mut call).len(), 1);
    call.handle_timeout(t0 + Duration::from_millis(1000));
    assert!(sent(&mut call).is_empty(), "the interval doubled");
    call.handle_timeout(t0 + Duration::from_millis(1500));
    assert_eq!(sent(&mut call).len(), 1);

    let t = t0 + Duration::from_secs(2);
    call.handle_message(t, peer(), &answer(&invite, 100, &[], None));
    call.handle_message(t, peer(), &answer(&invite, 180, &[], None));
    call.handle_timeout(t + Duration::from_secs(10));
    assert!(
        sent(&mut call).is_empty(),
        "no retransmission once proceeding"
    );
    assert_eq!(call.phase(), Phase::Proceeding);

    let ok = answer(
        &invite,
        200,
        &[
            ("Contact", "<sip:uas@203.0.113.9:5070>"),
            ("Record-Route", "<sip:p2.example;lr>, <sip:p1.example;lr>"),
        ],
        Some(ANSWER_SDP),
    );
    call.handle_message(t, peer(), &ok);
    let ack = sent(&mut call).remove(0);
    assert_eq!(ack.method, "ACK");
    assert_eq!(ack.uri, "sip:uas@203.0.113.9:5070", "the remote target");
    assert_eq!(ack.header("CSeq"), Some("1 ACK"));
    assert!(ack.header("To").unwrap().ends_with(";tag=uastag"));
    assert_ne!(
        ack.header("Via"),
        invite.header("Via"),
        "a 2xx's ACK is its own transaction"
    );
    let routes: Vec<&str> = ack
        .headers
        .iter()
        .filter(|(n, _)| n == "Route")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(routes, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
    let ev = events(&mut call);
    assert!(
        matches!(
            ev.last(),
            Some(CallEvent::Answered {
                code: 200,
                sdp: Some(_)
            })
        ),
        "{ev:?}"
    );

    // A retransmitted 200: the same ACK again.
    call.handle_message(t, peer(), &ok);
    assert_eq!(sent(&mut call)[0].header("Via"), ack.header("Via"));

    call.hang_up(t + Duration::from_secs(10));
    let bye = sent(&mut call).remove(0);
    assert_eq!(bye.method, "BYE");
    assert_eq!(bye.header("CSeq"), Some("2 BYE"));
    assert_eq!(bye.uri, "sip:uas@203.0.113.9:5070");
    call.handle_message(t, peer(), &answer(&bye, 200, &[], None));
    assert_eq!(events(&mut call), [CallEvent::ByeDone { code: Some(200) }]);
    assert!(call.is_done());
    assert_eq!(call.poll_timeout(), None);
}

#[test]
fn a_busy_carrier_is_acked_in_the_transaction() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    call.handle_message(t0, peer(), &answer(&invite, 486, &[], None));
    let ack = sent(&mut call).remove(0);
    assert_eq!(ack.method, "ACK");
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(ack.header("Via"), invite.header("Via"), "same branch");
    assert_eq!(
        events(&mut call),
        [CallEvent::Rejected {
            code: 486,
            reason: "Reason".into()
        }]
    );
    assert!(call.is_done());
}

#[test]
fn hanging_up_while_ringing_cancels_and_waits_for_the_487() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    // Asked before any provisional: no CANCEL may go yet (RFC 3261 §9.1).
    call.hang_up(t0);
    assert!(sent(&mut call).is_empty());
    call.handle_message(t0, peer(), &answer(&invite, 180, &[], None));
    let cancel = sent(&mut call).remove(0);
    assert_eq!(cancel.method, "CANCEL");
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(cancel.header("Via"), invite.header("Via"));
    assert_eq!(cancel.header("CSeq"), Some("1 CANCEL"));
    call.handle_message(t0, peer(), &answer(&cancel, 200, &[], None));
    call.handle_message(t0, peer(), &answer(&invite, 487, &[], None));
    assert_eq!(sent(&mut call)[0].method, "ACK");
    let ev = events(&mut call);
    assert_eq!(ev.last(), Some(&CallEvent::Cancelled));
    assert!(call.is_done());
}

#[test]
fn a_200_racing_our_cancel_is_acked_and_byed() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    call.handle_message(t0, peer(), &answer(&invite, 180, &[], None));
    call.hang_up(t0);
    assert_eq!(sent(&mut call)[0].method, "CANCEL");
    call.handle_message(t0, peer(), &answer(&invite, 200, &[], Some(ANSWER_SDP)));
    let out: Vec<String> = sent(&mut call).into_iter().map(|r| r.method).collect();
    assert_eq!(out, ["ACK", "BYE"]);
    assert_eq!(call.phase(), Phase::Terminating);
}

#[test]
fn no_response_ends_at_timer_b_after_six_retransmissions() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    sent(&mut call);
    let mut now = t0;
    let mut sends = 0;
    while !call.is_done() {
        now = call.poll_timeout().unwrap();
        call.handle_timeout(now);
        sends += sent(&mut call).len();
    }
    assert_eq!(sends, 6, "0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert_eq!(now, t0 + Duration::from_secs(32));
    assert_eq!(events(&mut call), [CallEvent::NoResponse]);
}

#[test]
fn tcp_never_retransmits() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Tcp, None), t0);
    assert_eq!(sent(&mut call).len(), 1);
    call.handle_timeout(t0 + Duration::from_secs(10));
    assert!(sent(&mut call).is_empty());
    assert_eq!(call.poll_timeout(), Some(t0 + Duration::from_secs(32)));
}

fn creds() -> Credentials {
    Credentials {
        username: "bolna".into(),
        password: Secret::new("s3cret-pw"),
    }
}

#[test]
fn one_authenticated_retry_per_challenge() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, Some(creds())), t0);
    let invite = sent(&mut call).remove(0);
    let challenge = (
        "Proxy-Authenticate",
        "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\"",
    );
    call.handle_message(t0, peer(), &answer(&invite, 407, &[challenge], None));
    let out = sent(&mut call);
    assert_eq!(out[0].method, "ACK");
    let retry = &out[1];
    assert_eq!(retry.method, "INVITE");
    assert_eq!(retry.header("CSeq"), Some("2 INVITE"));
    assert_ne!(retry.header("Via"), invite.header("Via"));
    let auth = retry.header("Proxy-Authorization").unwrap();
    assert!(auth.contains("username=\"bolna\"") && auth.contains("realm=\"carrier\""));
    assert!(!auth.contains("s3cret-pw"));
    assert!(matches!(
        events(&mut call)[..],
        [CallEvent::Authenticating { code: 407, .. }]
    ));
    // Challenged again: the credentials are refused, no retry loop.
    call.handle_message(t0, peer(), &answer(retry, 407, &[challenge], None));
    let out = sent(&mut call);
    assert_eq!(out.len(), 1, "only the ACK");
    assert!(matches!(
        events(&mut call)[..],
        [CallEvent::AuthFailed { answered: true, .. }]
    ));
    assert!(call.is_done());
}

#[test]
fn a_challenge_without_credentials_says_so() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    let challenge = ("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\"");
    call.handle_message(t0, peer(), &answer(&invite, 401, &[challenge], None));
    assert!(matches!(
        events(&mut call)[..],
        [CallEvent::AuthFailed {
            code: 401,
            answered: false,
            ..
        }]
    ));
}

#[test]
fn strays_never_advance_the_call() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    let ok = answer(&invite, 200, &[], Some(ANSWER_SDP));
    // From another address, another Call-ID, garbage: none is an answer.
    call.handle_message(t0, "198.51.100.8:5060".parse().unwrap(), &ok);
    let forged = String::from_utf8(ok.clone())
        .unwrap()
        .replace("callid-1", "callid-2");
    call.handle_message(t0, peer(), forged.as_bytes());
    call.handle_message(t0, peer(), b"\x00\x01garbage");
    assert_eq!(call.strays(), 3);
    assert_eq!(call.phase(), Phase::Calling);
    assert!(events(&mut call).is_empty());
}

#[test]
fn a_bye_from_the_carrier_is_answered() {
    let t0 = Instant::now();
    let mut call = Call::new(config(Transport::Udp, None), t0);
    let invite = sent(&mut call).remove(0);
    call.handle_message(t0, peer(), &answer(&invite, 200, &[], Some(ANSWER_SDP)));
    sent(&mut call);
    let bye = "BYE sip:trunkprobe@192.0.2.10:40000 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKuasbye\r\n\
        From: <sip:+919876543210@198.51.100.7>;tag=uastag\r\n\
        To: <sip:+14155550123@192.0.2.10>;tag=fromtag\r\n\
        Call-ID: callid-1\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
    call.handle_message(t0, peer(), bye.as_bytes());
    let out = std::iter::from_fn(|| call.poll_transmit()).next().unwrap();
    let resp = parse_response(&out).unwrap();
    assert_eq!(resp.code, 200);
    assert_eq!(resp.cseq, Some((7, "BYE".into())));
    assert_eq!(events(&mut call).last(), Some(&CallEvent::RemoteBye));
    assert!(call.is_done());
}
