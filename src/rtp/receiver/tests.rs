use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rtcp::reception_report::ReceptionReport;

use super::*;
use crate::rtp::dtmf::TelephoneEvent;
use crate::rtp::packet::{build_rtcp, build_rtp, OutgoingReport};
use crate::rtp::sdes::{MasterKey, SrtpSuite};
use crate::rtp::sender::RtpSender;
use crate::rtp::srtp::SrtpOutbound;
use crate::rtp::tone;

const MS: Duration = Duration::from_millis(1);
const OURS: u32 = 0x0A0B_0C0D;
const THEIRS: u32 = 0xCA11_E500;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn receiver(now: Instant) -> RtpReceiver {
    RtpReceiver::new(now, ReceiverConfig::new(OURS), None)
}

/// A carrier stream: PCMU packets `seqs` (0-based offsets from 1000), each
/// sent at its frame time and arriving `delay(i)` later, with `payload`.
fn stream(
    r: &mut RtpReceiver,
    t0: Instant,
    from: SocketAddr,
    offsets: impl IntoIterator<Item = u16>,
    delay: impl Fn(u16) -> Duration,
    payload: &[u8],
) {
    for i in offsets {
        let p = build_rtp(
            0,
            i == 0,
            1000 + i,
            5000 + 160 * u32::from(i),
            THEIRS,
            payload,
        )
        .unwrap();
        let at = t0 + 20 * MS * u32::from(i) + delay(i);
        assert!(matches!(
            r.handle_rtp(at, from, &p),
            RtpDisposition::Accepted { .. }
        ));
    }
}

#[test]
fn rtp_receiver_counts_a_clean_stream() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    let tone = tone::frame(Codec::Pcmu, 1, 0);
    stream(&mut r, t0, from, 0..250, |_| 30 * MS, &tone);
    let s = r.stats();
    assert_eq!(s.packets, 250);
    assert_eq!(s.bytes, 250 * 172);
    assert_eq!(s.first_packet_at, Some(t0 + 30 * MS));
    assert_eq!(s.addresses.len(), 1);
    assert_eq!(s.addresses[0].packets, 250);
    assert_eq!(s.sources.len(), 1);
    assert_eq!(s.sources[0].expected, 249); // the first was on probation
    assert_eq!(s.sources[0].lost, 0);
    assert_eq!(s.loss_percent(), 0.0);
    assert_eq!(s.jitter_ms(), 0.0);
    assert_eq!((s.audio_packets, s.audible_packets), (250, 250));
    assert!((s.level_dbov + 16.15).abs() < 0.5, "{}", s.level_dbov);
    assert_eq!(s.audible_share(), 1.0);
    assert_eq!(s.echoed_packets, 0, "no echo reference configured");
    assert_eq!(
        r.poll_event(),
        Some(MediaEvent::FirstPacket {
            at: t0 + 30 * MS,
            from,
            ssrc: THEIRS
        })
    );
    assert_eq!(
        r.poll_event(),
        Some(MediaEvent::FirstAudio { at: t0 + 30 * MS })
    );
    assert_eq!(r.poll_event(), None);
}

#[test]
fn rtp_receiver_loss_and_jitter() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    // 10 of 200 lost; every other packet 8 ms late.
    let offsets = (0..200u16).filter(|i| i % 20 != 7);
    stream(
        &mut r,
        t0,
        from,
        offsets,
        |i| if i % 2 == 1 { 8 * MS } else { MS },
        &[0xFF; 160],
    );
    let s = r.stats();
    assert_eq!(s.sources[0].expected, 199);
    assert_eq!(s.sources[0].lost, 10);
    assert!((s.loss_percent() - 1000.0 / 199.0).abs() < 1e-9);
    // |D| = 7 ms = 56 units almost every time: J tends to 56 units = 7 ms.
    assert!((s.jitter_ms() - 7.0).abs() < 0.5, "{}", s.jitter_ms());
    // μ-law 0xFF is digital silence.
    assert_eq!((s.audio_packets, s.audible_packets), (190, 0));
    assert_eq!(s.level_dbov, crate::rtp::g711::SILENCE_FLOOR_DBOV);
    let blocks = r.report_blocks(t0 + Duration::from_secs(5));
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].ssrc, THEIRS);
    assert_eq!(blocks[0].total_lost, 10);
    assert_eq!(blocks[0].last_sequence_number, 1199);
    assert_eq!(blocks[0].fraction_lost, (10 * 256 / 199) as u8);
}

#[test]
fn rtp_receiver_comfort_noise_and_quiet_audio_are_not_audible() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    // A-law 0xD5 decodes to +8: about -72 dBov, below -55.
    for i in 0..10u16 {
        let p = build_rtp(8, false, i, u32::from(i) * 160, THEIRS, &[0xD5; 160]).unwrap();
        r.handle_rtp(t0 + 20 * MS * u32::from(i), from, &p);
    }
    let cn = build_rtp(13, false, 10, 1600, THEIRS, &[65]).unwrap();
    r.handle_rtp(t0 + 200 * MS, from, &cn);
    let s = r.stats();
    assert_eq!(
        (s.audio_packets, s.audible_packets, s.cn_packets),
        (10, 0, 1)
    );
    assert_eq!(s.cn_level, Some(65));
    assert!(s.level_dbov < -70.0);
}

#[test]
fn rtp_receiver_notes_every_source_address() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let sdp = addr("192.0.2.10:20000");
    let actual = addr("198.51.100.7:31000");
    stream(&mut r, t0, sdp, 0..3, |_| MS, &[0xFF; 160]);
    stream(&mut r, t0, actual, 3..10, |_| MS, &[0xFF; 160]);
    let s = r.stats();
    let seen: Vec<(SocketAddr, u64)> = s.addresses.iter().map(|a| (a.addr, a.packets)).collect();
    assert_eq!(seen, [(sdp, 3), (actual, 7)]);
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events.contains(&MediaEvent::NewAddress { from: actual }));
}

#[test]
fn rtp_receiver_recognises_our_echo() {
    let t0 = Instant::now();
    let mut sender = RtpSender::new(t0, OURS, 0, Codec::Pcmu, None);
    let mut config = ReceiverConfig::new(OURS);
    config.echo = Some(sender.echo_reference());
    let mut r = RtpReceiver::new(t0, config, None);
    let from = addr("192.0.2.10:20000");
    // The carrier loops our packets back 140 ms later under its own SSRC.
    let mut now = t0;
    let mut queue = std::collections::VecDeque::new();
    while now < t0 + Duration::from_secs(2) {
        if let Some(p) = sender.poll_transmit(now) {
            let mut p = crate::rtp::packet::parse_rtp(&p).unwrap();
            p.header.ssrc = THEIRS;
            let bytes = build_rtp(
                0,
                false,
                p.header.sequence_number,
                p.header.timestamp,
                THEIRS,
                &p.payload,
            )
            .unwrap();
            queue.push_back((now + 140 * MS, bytes));
        }
        while queue.front().is_some_and(|(at, _)| *at <= now) {
            let (_, b) = queue.pop_front().unwrap();
            r.handle_rtp(now, from, &b);
        }
        now += MS;
    }
    let s = r.stats();
    assert_eq!(s.echoed_packets, s.packets);
    assert_eq!(s.packets, 93); // 100 sent, the last 7 still in flight
    assert_eq!(s.echo_delay_min, Some(140 * MS));
    assert_eq!(s.echo_delay_max, Some(140 * MS));
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events.contains(&MediaEvent::FirstEcho { delay: 140 * MS }));
}

#[test]
fn rtp_receiver_counts_srtp_auth_failures() {
    let t0 = Instant::now();
    let key = MasterKey::generate();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut carrier = SrtpOutbound::new(&key, suite).unwrap();
    let inbound = SrtpInbound::new(&key, suite).unwrap();
    let mut r = RtpReceiver::new(t0, ReceiverConfig::new(OURS), Some(inbound));
    let from = addr("192.0.2.10:20000");
    let plain = build_rtp(0, false, 1, 160, THEIRS, &[0xFF; 160]).unwrap();
    let good = carrier.protect_rtp(&plain).unwrap();
    assert!(matches!(
        r.handle_rtp(t0, from, &good),
        RtpDisposition::Accepted { .. }
    ));
    let mut bad = carrier
        .protect_rtp(&build_rtp(0, false, 2, 320, THEIRS, &[0xFF; 160]).unwrap())
        .unwrap();
    bad[40] ^= 0x01;
    assert_eq!(
        r.handle_rtp(t0 + 20 * MS, from, &bad),
        RtpDisposition::SrtpFailed(SrtpError::AuthFailed)
    );
    // Plain RTP on the SRTP session fails too.
    let plain3 = build_rtp(0, false, 3, 480, THEIRS, &[0xFF; 160]).unwrap();
    assert_eq!(
        r.handle_rtp(t0 + 40 * MS, from, &plain3),
        RtpDisposition::SrtpFailed(SrtpError::AuthFailed)
    );
    // SRTCP with a wrong tag.
    let rr = build_rtcp(&OutgoingReport {
        ssrc: THEIRS,
        sender: None,
        blocks: &[],
        cname: "c",
        bye: false,
    })
    .unwrap();
    let mut srtcp = carrier.protect_rtcp(&rr).unwrap();
    let n = srtcp.len();
    srtcp[n - 1] ^= 1;
    assert!(matches!(
        r.handle_rtcp(t0, from, &srtcp),
        RtcpDisposition::SrtcpFailed(_)
    ));
    let s = r.stats();
    assert_eq!(
        (s.packets, s.srtp_auth_failures, s.srtcp_auth_failures),
        (1, 2, 1)
    );
    assert_eq!(s.srtp_failure_from, Some(from));
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    let failing = events
        .iter()
        .filter(|e| matches!(e, MediaEvent::SrtpFailing { .. }))
        .count();
    assert_eq!(failing, 1, "one event, then counters");
}

fn rr_with(blocks: &[ReceptionReport], sr: bool) -> Vec<u8> {
    build_rtcp(&OutgoingReport {
        ssrc: THEIRS,
        sender: sr.then_some(crate::rtp::packet::SenderInfo {
            ntp: 0x0000_0005_8000_0000,
            rtp_time: 40_000,
            packets: 250,
            octets: 40_000,
        }),
        blocks,
        cname: "carrier",
        bye: false,
    })
    .unwrap()
}

#[test]
fn rtp_receiver_reads_the_carriers_report_on_our_stream() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20001");
    // First an SR with no block for us: the carrier hears nothing of ours.
    let other = ReceptionReport {
        ssrc: 0x5555,
        ..Default::default()
    };
    let d = r.handle_rtcp(t0 + Duration::from_secs(5), from, &rr_with(&[other], true));
    assert_eq!(d, RtcpDisposition::Accepted { reports: 1 });
    let s = r.stats();
    assert_eq!(
        (s.reports_with_our_block, s.reports_without_our_block),
        (0, 1)
    );
    assert_eq!(s.carrier_received_of_ours(100), None);
    assert_eq!(s.carrier_sender.unwrap().1.packets, 250);
    // Then an RR about us: we sent seq 65500.. and it lost 12, highest 0x1_0040.
    let block = ReceptionReport {
        ssrc: OURS,
        fraction_lost: 64,
        total_lost: 12,
        last_sequence_number: 0x1_0040,
        jitter: 80,
        last_sender_report: 0,
        delay: 0,
    };
    let at = t0 + Duration::from_secs(10);
    r.handle_rtcp(at, from, &rr_with(std::slice::from_ref(&block), false));
    let s = r.stats();
    assert_eq!(s.reports_with_our_block, 1);
    let report = s.carrier_report.clone().unwrap();
    assert_eq!(report.arrived, at);
    // Expected 65536 + 64 - 65500 + 1 = 101, less 12 lost.
    assert_eq!(s.carrier_received_of_ours(65_500), Some(89));
    assert_eq!(report.fraction_lost_percent(), 25.0);
    assert_eq!(report.jitter_ms(), 10.0);
    // Negative cumulative loss (duplicates) is sign-extended.
    let dup = CarrierReport {
        block: ReceptionReport {
            total_lost: 0xFF_FFFF,
            ..block
        },
        ..report
    };
    assert_eq!(dup.cumulative_lost(), -1);
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events.contains(&MediaEvent::ReportWithoutOurBlock { reporter: THEIRS }));
    assert!(events
        .iter()
        .any(|e| matches!(e, MediaEvent::CarrierReport(c) if c.block.ssrc == OURS)));
    assert_eq!(s.rtcp_addresses[0].addr, from);
}

#[test]
fn rtp_receiver_carrier_count_after_our_sequence_wrapped() {
    let report = CarrierReport {
        reporter: 1,
        block: ReceptionReport {
            ssrc: OURS,
            last_sequence_number: 40,
            ..Default::default()
        },
        arrived: Instant::now(),
    };
    // We started at 65530; the carrier's count began after the wrap.
    assert_eq!(report.packets_received(65_530), 47);
    assert_eq!(report.packets_received(0), 41);
}

#[test]
fn rtp_receiver_rtcp_mux_bye_and_lsr() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    stream(&mut r, t0, from, 0..10, |_| MS, &[0xFF; 160]);
    // An SR on the RTP port: routed as RTCP; its NTP middle becomes our LSR.
    let sr = rr_with(&[], true);
    assert!(matches!(
        r.handle_rtp(t0 + 200 * MS, from, &sr),
        RtpDisposition::Rtcp(_)
    ));
    let blocks = r.report_blocks(t0 + 700 * MS);
    assert_eq!(blocks[0].last_sender_report, 0x0005_8000);
    assert_eq!(blocks[0].delay, 32_768);
    let bye = build_rtcp(&OutgoingReport {
        ssrc: THEIRS,
        sender: None,
        blocks: &[],
        cname: "c",
        bye: true,
    })
    .unwrap();
    r.handle_rtcp(t0 + Duration::from_secs(1), from, &bye);
    assert_eq!(r.stats().byes, [THEIRS]);
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events.contains(&MediaEvent::Bye { ssrc: THEIRS }));
}

#[test]
fn rtp_receiver_dtmf_digits_once_each() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    let mut seq = 0u16;
    for (digit, ts) in [(1u8, 1000u32), (11, 3000)] {
        for k in 0..7u16 {
            let e = TelephoneEvent {
                event: digit,
                end: k >= 4,
                volume: 10,
                duration: 160 * (k.min(4) + 1),
            };
            let p = build_rtp(101, k == 0, seq, ts, THEIRS, &e.to_bytes()).unwrap();
            r.handle_rtp(t0 + 20 * MS * u32::from(seq), from, &p);
            seq += 1;
        }
    }
    let s = r.stats();
    assert_eq!(s.dtmf_digits, "1#");
    assert_eq!(s.dtmf_packets, 14);
    assert_eq!(s.audio_packets, 0);
    assert_eq!(s.jitter_ms(), 0.0, "events are not in the jitter");
}

#[test]
fn rtp_receiver_new_ssrc_and_garbage() {
    let t0 = Instant::now();
    let mut r = receiver(t0);
    let from = addr("192.0.2.10:20000");
    stream(&mut r, t0, from, 0..3, |_| MS, &[0xFF; 160]);
    let other = build_rtp(0, false, 9, 9, 0x7777, &[0xFF; 160]).unwrap();
    r.handle_rtp(t0 + 100 * MS, from, &other);
    assert!(matches!(
        r.handle_rtp(t0, from, b"hello"),
        RtpDisposition::NotRtp(_)
    ));
    assert_eq!(
        r.handle_rtcp(t0, from, b"\x80\xc9\x00"),
        RtcpDisposition::Malformed
    );
    let s = r.stats();
    assert_eq!(s.sources.len(), 2);
    assert_eq!(s.not_rtp, 1);
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(events.contains(&MediaEvent::NewSsrc { ssrc: 0x7777 }));
}

#[test]
fn rtp_receiver_with_our_sender_end_to_end() {
    // Our sender straight into a receiver, as a loopback carrier would.
    let t0 = Instant::now();
    let key = MasterKey::generate();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut a = RtpSender::new(
        t0,
        THEIRS,
        8,
        Codec::Pcma,
        Some(SrtpOutbound::new(&key, suite).unwrap()),
    );
    let mut b = RtpReceiver::new(
        t0,
        ReceiverConfig::new(OURS),
        Some(SrtpInbound::new(&key, suite).unwrap()),
    );
    let from = addr("192.0.2.10:20000");
    let mut now = t0;
    while now < t0 + Duration::from_secs(6) {
        if let Some(p) = a.poll_transmit(now) {
            b.handle_rtp(now + 25 * MS, from, &p);
        }
        if let Some(p) = a.poll_rtcp(now, &[]) {
            b.handle_rtcp(now + 25 * MS, from, &p);
        }
        now += MS;
    }
    let s = b.stats();
    assert_eq!(s.packets, 300);
    assert_eq!(s.srtp_auth_failures, 0);
    assert_eq!(s.sources[0].lost, 0);
    assert_eq!(s.audible_packets, 300);
    assert_eq!(
        s.reports_without_our_block, 1,
        "our sender's SR has no block for OURS"
    );
    // The SR at 2.5 s counts frames 0 to 125.
    assert_eq!(s.carrier_sender.unwrap().1.packets, 126);
}

proptest! {
    #[test]
    fn rtp_receiver_never_panics_on_random_datagrams(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20),
        srtp in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let inbound = srtp.then(|| SrtpInbound::new(&MasterKey::generate(), SrtpSuite::AesCm128HmacSha1_32).unwrap());
        let mut r = RtpReceiver::new(t0, ReceiverConfig::new(OURS), inbound);
        let from = addr("192.0.2.10:20000");
        for (i, d) in datagrams.iter().enumerate() {
            let now = t0 + MS * i as u32;
            let _ = r.handle_rtp(now, from, d);
            let _ = r.handle_rtcp(now, from, d);
        }
        let _ = r.report_blocks(t0 + Duration::from_secs(5));
        let s = r.stats();
        prop_assert!(s.loss_percent() <= 100.0);
    }

    #[test]
    fn rtp_receiver_never_panics_on_rtp_like_datagrams(
        headers in proptest::collection::vec((any::<u16>(), any::<u32>(), 0u8..128, any::<bool>()), 1..60),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let t0 = Instant::now();
        let mut r = receiver(t0);
        let from = addr("192.0.2.10:20000");
        for (i, (seq, ts, pt, marker)) in headers.iter().enumerate() {
            let p = build_rtp(*pt, *marker, *seq, *ts, THEIRS ^ (*pt as u32 % 3), &payload).unwrap();
            r.handle_rtp(t0 + MS * i as u32, from, &p);
        }
        let s = r.stats();
        prop_assert!(s.packets + s.not_rtp + s.rtcp_packets + s.rtcp_malformed >= headers.len() as u64);
        prop_assert!(s.jitter_ms().is_finite());
    }
}
