use super::*;
use crate::rtp::sdes::MasterKey;

const CARRIER: &str = "127.0.0.1:30000";

fn carrier() -> SocketAddr {
    CARRIER.parse().unwrap()
}

fn session(sdes: bool, optimistic: bool, dtmf: &str) -> MediaSession {
    MediaSession::new(
        MediaConfig {
            codecs: vec!["ulaw".into(), "alaw".into()],
            sdes,
            optimistic,
            dtmf: dtmf.into(),
            grid: None,
        },
        Instant::now(),
    )
}

/// Runs the session's clock from `t0` to `t0 + d`, returning RTP and RTCP sent.
fn run(s: &mut MediaSession, t0: Instant, d: Duration) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut rtp, mut rtcp) = (Vec::new(), Vec::new());
    let mut now = t0;
    while now < t0 + d {
        for (to, p, is_rtcp) in s.poll_transmit(now) {
            if is_rtcp {
                assert_eq!(to.port(), 30001, "RTCP goes to the port above RTP");
                rtcp.push(p);
            } else {
                assert_eq!(to, carrier());
                rtp.push(p);
            }
        }
        now = s.poll_timeout().unwrap();
    }
    (rtp, rtcp)
}

#[test]
fn fifty_packets_a_second_and_an_echo_is_recognised() {
    let t0 = Instant::now();
    let mut s = session(false, false, "");
    assert!(s.sdes_keys().is_none());
    let sdp = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
    s.start(t0, &Some(carrier()), sdp);
    let (sent, _) = run(&mut s, t0, Duration::from_secs(1));
    assert_eq!(sent.len(), 50);
    assert_eq!(
        sent[0][1], 0x80,
        "marker on the first packet, payload type 0"
    );
    for (i, p) in sent.iter().enumerate() {
        let at = t0 + Duration::from_millis(30 + 20 * i as u64);
        s.handle_rtp(at, carrier(), p);
    }
    let st = s.stats();
    assert_eq!(st.sent_packets, 50);
    assert_eq!(st.received_packets, 50);
    assert_eq!(st.echoed, 50);
    assert_eq!(st.lost, 0);
    assert_eq!(st.rtp_from, vec![carrier()]);
    assert!(st.jitter_ms < 1.0, "{}", st.jitter_ms);
    assert!(st.audio_ratio.unwrap() > 0.9);
    assert!(st.mos.unwrap() > 4.2, "{:?}", st.mos);
    assert!(!st.srtp);
}

#[test]
fn the_answers_codec_and_payload_type_are_used() {
    let t0 = Instant::now();
    let mut s = session(false, false, "");
    let sdp = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 8 0\r\n";
    s.start(t0, &Some(carrier()), sdp);
    let (sent, _) = run(&mut s, t0, Duration::from_millis(100));
    assert_eq!(sent[0][1] & 0x7f, 8, "PCMA, the answer's first");
}

#[test]
fn silence_counts_apart_from_audio() {
    let t0 = Instant::now();
    let mut s = session(false, false, "");
    s.start(t0, &Some(carrier()), b"m=audio 30000 RTP/AVP 0\r\n");
    for seq in [10u16, 11, 14, 15] {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&[0xffu8; 160]);
        s.handle_rtp(
            t0 + Duration::from_millis(20 * u64::from(seq)),
            carrier(),
            &p,
        );
    }
    let st = s.stats();
    assert_eq!(st.received_packets, 4);
    assert_eq!(st.audio_ratio, Some(0.0));
    assert_eq!(st.echoed, 0);
}

/// The carrier's side of an SDES call: its key, its answer, its contexts.
struct Carrier {
    answer: String,
    to_us: SrtpOutbound,
    from_us: SrtpInbound,
}

fn sdes_carrier(s: &MediaSession, tag: u32) -> Carrier {
    let [k80, _] = s.sdes_keys().expect("SDES offered");
    assert!(k80.starts_with("inline:"));
    let ours = MasterKey::parse_inline(&k80).unwrap();
    let theirs = CryptoAttribute::generate(tag, SrtpSuite::AesCm128HmacSha1_80);
    Carrier {
        answer: format!(
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/SAVP 0 101\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=crypto:{theirs}\r\n"
        ),
        to_us: SrtpOutbound::new(&theirs.key, theirs.suite).unwrap(),
        from_us: SrtpInbound::new(&ours, SrtpSuite::AesCm128HmacSha1_80).unwrap(),
    }
}

#[test]
fn sdes_keys_both_directions_from_offer_and_answer() {
    let t0 = Instant::now();
    let mut s = session(true, false, "");
    let mut c = sdes_carrier(&s, 1);
    s.start(t0, &Some(carrier()), c.answer.as_bytes());
    let (sent, rtcp) = run(&mut s, t0, Duration::from_secs(3));
    assert!(!rtcp.is_empty(), "an SR at 2.5 s");
    for (i, p) in sent.iter().enumerate() {
        // What we sent is SRTP under our key...
        let plain = c.from_us.unprotect_rtp(p).expect("our key decrypts ours");
        assert_eq!(plain.len() + 10, p.len(), "an 80-bit tag");
        // ...and the carrier echoes it back under its own key.
        let back = c.to_us.protect_rtp(&plain).unwrap();
        s.handle_rtp(
            t0 + Duration::from_millis(25 + 20 * i as u64),
            carrier(),
            &back,
        );
    }
    let st = s.stats();
    assert!(st.srtp);
    assert_eq!(st.srtp_auth_failures, 0);
    assert_eq!(st.received_packets, sent.len() as u64);
    assert_eq!(st.echoed, sent.len() as u64);
}

#[test]
fn srtp_under_the_wrong_key_counts_as_auth_failures() {
    let t0 = Instant::now();
    let mut s = session(true, false, "");
    let c = sdes_carrier(&s, 1);
    s.start(t0, &Some(carrier()), c.answer.as_bytes());
    let mut wrong =
        SrtpOutbound::new(&MasterKey::generate(), SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let (sent, _) = run(&mut s, t0, Duration::from_millis(200));
    let mut plain_ours = c.from_us;
    for p in &sent {
        let plain = plain_ours.unprotect_rtp(p).unwrap();
        s.handle_rtp(t0, carrier(), &wrong.protect_rtp(&plain).unwrap());
    }
    let st = s.stats();
    assert_eq!(st.received_packets, 0);
    assert_eq!(st.srtp_auth_failures, sent.len() as u64);
}

#[test]
fn an_answer_without_crypto_sends_nothing_unless_optimistic() {
    let t0 = Instant::now();
    let clear = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
    let mut strict = session(true, false, "");
    strict.start(t0, &Some(carrier()), clear);
    assert!(strict.unusable());
    assert!(strict.poll_transmit(t0).is_empty());
    assert!(strict.poll_timeout().is_none());
    let st = strict.stats();
    assert!(st.srtp_error.unwrap().contains("no a=crypto"));
    assert_eq!(st.sent_packets, 0);

    let mut optimistic = session(true, true, "");
    optimistic.start(t0, &Some(carrier()), clear);
    let (sent, _) = run(&mut optimistic, t0, Duration::from_millis(100));
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0].len(), 12 + 160, "clear RTP: no tag");
    assert!(!optimistic.stats().srtp);
}

#[test]
fn a_tag_we_never_offered_is_refused() {
    let t0 = Instant::now();
    let mut s = session(true, false, "");
    let c = sdes_carrier(&s, 7);
    s.start(t0, &Some(carrier()), c.answer.as_bytes());
    let err = s.stats().srtp_error.unwrap();
    assert!(err.contains("tag 7"), "{err}");
}

#[test]
fn dtmf_goes_out_a_second_in_on_the_answers_event_type() {
    let t0 = Instant::now();
    let mut s = session(false, false, "12");
    let sdp = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
    s.start(t0, &Some(carrier()), sdp);
    let (sent, _) = run(&mut s, t0, Duration::from_secs(2));
    let events: Vec<usize> = sent
        .iter()
        .enumerate()
        .filter(|(_, p)| p[1] & 0x7f == 96)
        .map(|(i, _)| i)
        .collect();
    assert!(!events.is_empty());
    assert_eq!(events[0], 50, "the first event is due at 1 s");
    assert_eq!(s.stats().dtmf_sent, "12");
}

#[test]
fn bye_ends_the_sender() {
    let t0 = Instant::now();
    let mut s = session(false, false, "");
    s.start(t0, &Some(carrier()), b"m=audio 30000 RTP/AVP 0\r\n");
    run(&mut s, t0, Duration::from_millis(100));
    let (to, p) = s.bye(t0 + Duration::from_millis(100)).unwrap();
    assert_eq!(to.port(), 30001);
    assert!(p.len() >= 8);
    assert!(s.poll_transmit(t0 + Duration::from_secs(1)).is_empty());
    assert!(s.bye(t0 + Duration::from_secs(1)).is_none());
}

#[test]
fn garbage_never_panics() {
    let t0 = Instant::now();
    let mut s = session(true, true, "1");
    s.start(
        t0,
        &Some(carrier()),
        b"m=audio 30000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!\r\n",
    );
    let from = "127.0.0.1:1".parse().unwrap();
    for len in 0..64 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x80) as u8).collect();
        s.handle_rtp(t0, from, &junk);
        s.handle_rtcp(t0, from, &junk);
    }
    let _ = s.stats();
}

#[test]
fn an_answer_without_a_law_we_offered_sends_nothing() {
    let t0 = Instant::now();
    let mut s = session(false, false, "");
    s.start(
        t0,
        &Some(carrier()),
        b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 18\r\n",
    );
    assert!(s.unusable());
    assert!(s.poll_transmit(t0).is_empty());
    assert_eq!(s.stats().sent_packets, 0);
}

#[test]
fn the_grid_is_the_next_whole_frame_after_its_epoch() {
    let e = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(on_grid(e, e), e);
    assert_eq!(on_grid(e, e + Duration::from_nanos(1)), e + ms(20));
    assert_eq!(on_grid(e, e + ms(40)), e + ms(40));
    assert_eq!(on_grid(e, e + ms(1_000_007)), e + ms(1_000_020));
    assert_eq!(
        on_grid(e + ms(5), e),
        e + ms(5),
        "before the epoch: the epoch"
    );
}

#[test]
fn sessions_on_one_grid_send_in_the_same_instants_every_20_ms() {
    let epoch = Instant::now();
    let sdp = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
    let mut due = Vec::new();
    for offset in [3, 11, 19] {
        let mut s = session(false, false, "");
        s.config.grid = Some(epoch);
        let t0 = epoch + Duration::from_millis(offset);
        s.start(t0, &Some(carrier()), sdp);
        assert!(
            s.poll_transmit(t0).is_empty(),
            "nothing before the grid point"
        );
        let mut at = Vec::new();
        let mut now = s.poll_timeout().unwrap();
        while at.len() < 5 {
            if s.poll_transmit(now).iter().any(|(_, _, rtcp)| !rtcp) {
                at.push(now);
            }
            now = s.poll_timeout().unwrap();
        }
        due.push(at);
    }
    let expected: Vec<Instant> = (1..=5)
        .map(|k| epoch + Duration::from_millis(20 * k))
        .collect();
    for at in due {
        assert_eq!(at, expected);
    }
}
