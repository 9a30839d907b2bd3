//! Every verdict of the closed set from the evidence that decides it.

use super::*;
use crate::outcome::call::{AnswerSdp, DirectionStats, EndedBy, MediaEvidence};

const SDP_ADDR: &str = "127.0.0.1:30000";

fn answered() -> CallEvidence {
    CallEvidence {
        host: "gw.example.com".into(),
        gateway: "127.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
        request_uri: "sip:+15550100@gw.example.com".into(),
        from: "+15550199".into(),
        invite_bytes: 900,
        signalling: Signalling::Answered { code: 200 },
        ended_by: EndedBy::Bye { code: Some(200) },
        provisional: vec![100, 180],
        setup_ms: Some(12.0),
        answer_ms: Some(40.0),
        authenticated: None,
        offered_srtp: false,
        offered_codecs: vec!["ulaw".into(), "alaw".into()],
        answer: Some(AnswerSdp {
            codecs: vec!["ulaw".into()],
            telephone_event: true,
            srtp: false,
            rtp_address: Some(SDP_ADDR.parse().unwrap()),
        }),
        media: Some(MediaEvidence {
            outbound: DirectionStats {
                packets: 500,
                ..DirectionStats::default()
            },
            inbound: DirectionStats {
                packets: 498,
                audio_ratio: Some(1.0),
                level_dbov: Some(-10.0),
                ..DirectionStats::default()
            },
            rtp_from: vec![SDP_ADDR.parse().unwrap()],
            echoed: 498,
            mos: Some(4.4),
            ..MediaEvidence::default()
        }),
        flow: Vec::new(),
        strays: 0,
        retransmissions: 0,
        duration_ms: 10_000.0,
        packets: Vec::new(),
    }
}

fn verdict(c: &CallEvidence) -> Verdict {
    judge(c, &Context::default()).verdict
}

fn media(c: &mut CallEvidence) -> &mut MediaEvidence {
    c.media.as_mut().unwrap()
}

#[test]
fn an_echoed_stream_is_two_way_audio() {
    let j = judge(&answered(), &Context::default());
    assert_eq!(j.verdict, Verdict::TwoWayAudio);
    assert!(j.detail.contains("MOS 4.4"), "{}", j.detail);
    assert!(j.cause.is_none() && j.patch.is_none());
}

#[test]
fn a_carrier_report_confirms_outbound_without_an_echo() {
    let mut c = answered();
    media(&mut c).echoed = 0;
    media(&mut c).reported_received = Some(490);
    assert_eq!(verdict(&c), Verdict::TwoWayAudio);
    media(&mut c).reported_received = None;
    assert_eq!(verdict(&c), Verdict::OutboundUnconfirmed);
}

#[test]
fn nothing_inbound_is_no_inbound_audio() {
    let mut c = answered();
    media(&mut c).inbound = DirectionStats::default();
    media(&mut c).echoed = 0;
    assert_eq!(verdict(&c), Verdict::NoInboundAudio);
}

#[test]
fn rtcp_that_never_mentions_us_is_outbound_not_received() {
    let mut c = answered();
    media(&mut c).echoed = 0;
    media(&mut c).report_without_our_stream = true;
    assert_eq!(verdict(&c), Verdict::OutboundNotReceived);
    media(&mut c).report_without_our_stream = false;
    media(&mut c).reported_received = Some(0);
    assert_eq!(verdict(&c), Verdict::OutboundNotReceived);
}

#[test]
fn silence_is_silent_inbound() {
    let mut c = answered();
    media(&mut c).inbound.audio_ratio = Some(0.0);
    media(&mut c).inbound.level_dbov = Some(-90.0);
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::SilentInbound);
    assert!(j.detail.contains("-90 dBov"), "{}", j.detail);
}

#[test]
fn rtp_from_elsewhere_than_the_sdp_says() {
    let mut c = answered();
    media(&mut c).rtp_from = vec!["127.0.0.2:40000".parse().unwrap()];
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::RtpFromUnexpectedAddress);
    assert_eq!(
        j.patch,
        Some(json!({"rtp_symmetric": true, "force_rport": true}))
    );
}

#[test]
fn srtp_verdicts() {
    // Offered SDES, answered clear: a mismatch, unless optimistic.
    let mut c = answered();
    c.offered_srtp = true;
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::SrtpMismatch);
    assert_eq!(j.patch, Some(json!({"media_encryption_optimistic": true})));
    let optimistic = Context {
        optimistic: true,
        ..Context::default()
    };
    assert_eq!(judge(&c, &optimistic).verdict, Verdict::TwoWayAudio);

    // Answered with keys that could not be used.
    c.answer.as_mut().unwrap().srtp = true;
    media(&mut c).srtp_error = Some("the answer's a=crypto (tag 7, X) matches none".into());
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::SrtpMismatch);
    assert!(j.detail.contains("tag 7"), "{}", j.detail);

    // Keyed, but nothing decrypts.
    media(&mut c).srtp_error = None;
    media(&mut c).inbound = DirectionStats::default();
    media(&mut c).srtp_auth_failures = 250;
    assert_eq!(verdict(&c), Verdict::SrtpAuthFailed);

    // 488 to an SDES offer.
    c.signalling = Signalling::Rejected {
        code: 488,
        reason: "Not Acceptable Here".into(),
    };
    assert_eq!(verdict(&c), Verdict::SrtpMismatch);
    c.offered_srtp = false;
    assert_eq!(verdict(&c), Verdict::CodecMismatch);
}

#[test]
fn no_common_codec_is_codec_mismatch() {
    let mut c = answered();
    c.answer.as_mut().unwrap().codecs = vec!["g729".into()];
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::CodecMismatch);
    assert!(j.detail.contains("g729"), "{}", j.detail);
    c.answer = None;
    assert_eq!(verdict(&c), Verdict::CodecMismatch);
}

#[test]
fn final_responses() {
    let mut c = answered();
    c.media = None;
    for (code, v) in [
        (486, Verdict::Busy),
        (600, Verdict::Busy),
        (403, Verdict::Rejected),
        (404, Verdict::Rejected),
        (503, Verdict::Rejected),
    ] {
        c.signalling = Signalling::Rejected {
            code,
            reason: "x".into(),
        };
        assert_eq!(verdict(&c), v, "{code}");
    }
    c.signalling = Signalling::NoAnswer;
    assert_eq!(verdict(&c), Verdict::NoAnswer);
    c.signalling = Signalling::AuthFailed {
        code: 407,
        realm: Some("carrier".into()),
        why: "credentials refused".into(),
        answered: true,
    };
    let j = judge(&c, &Context::default());
    assert_eq!(j.verdict, Verdict::AuthRejected);
    assert!(j.cause.unwrap().contains("does not accept"));
}

#[test]
fn a_silent_udp_invite_beside_answered_options_points_at_fragmentation() {
    let mut c = answered();
    c.signalling = Signalling::NoResponse;
    c.media = None;
    let plain = judge(&c, &Context::default());
    assert_eq!(plain.verdict, Verdict::Timeout);
    assert!(plain.patch.is_none());
    let ctx = Context {
        options_answered: true,
        ..Context::default()
    };
    let j = judge(&c, &ctx);
    assert_eq!(j.patch, Some(json!({"transport": "transport-tcp"})));
    assert!(j.cause.unwrap().contains("fragmented"));
}
