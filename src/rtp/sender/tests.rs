use std::time::{Duration, Instant};

use rtcp::reception_report::ReceptionReport;

use super::*;
use crate::rtp::dtmf::TelephoneEvent;
use crate::rtp::packet::{ntp_middle, parse_rtcp, parse_rtp};
use crate::rtp::sdes::{MasterKey, SrtpSuite};
use crate::rtp::srtp::SrtpInbound;

const MS: Duration = Duration::from_millis(1);

fn sender(now: Instant) -> RtpSender {
    RtpSender::with_start(
        now,
        0x1122_3344,
        0,
        Codec::Pcmu,
        None,
        65_530,
        4_294_967_000,
    )
}

/// Drives the sender from `from` to `to` in 1 ms steps, as a driver would.
fn run(s: &mut RtpSender, from: Instant, to: Instant) -> Vec<(Instant, rtp::packet::Packet)> {
    let mut out = Vec::new();
    let mut now = from;
    while now < to {
        while let Some(p) = s.poll_transmit(now) {
            out.push((now, parse_rtp(&p).unwrap()));
        }
        now += MS;
    }
    out
}

#[test]
fn rtp_sender_paces_50_packets_a_second() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    assert_eq!(s.poll_timeout(), Some(t0));
    let sent = run(&mut s, t0, t0 + Duration::from_secs(1));
    assert_eq!(sent.len(), 50);
    for (i, (at, p)) in sent.iter().enumerate() {
        assert_eq!(*at, t0 + FRAME * i as u32, "packet {i} sent on time");
        assert_eq!(p.header.sequence_number, 65_530u16.wrapping_add(i as u16));
        assert_eq!(
            p.header.timestamp,
            4_294_967_000u32.wrapping_add(160 * i as u32)
        );
        assert_eq!(p.header.marker, i == 0);
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.ssrc, 0x1122_3344);
        assert_eq!(p.payload.len(), 160);
    }
    assert_eq!(s.poll_timeout(), Some(t0 + FRAME * 50));
    let st = s.stats();
    assert_eq!((st.packets, st.octets, st.audio_packets), (50, 8000, 50));
    assert_eq!((st.late_sends, st.skipped_frames), (0, 0));
}

#[test]
fn rtp_sender_late_skips_to_now_without_bursting() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    let first = parse_rtp(&s.poll_transmit(t0).unwrap()).unwrap();
    // Woken 75 ms later: frames 1, 2 and 3 are due; only 3 is sent.
    let now = t0 + 75 * MS;
    let late = parse_rtp(&s.poll_transmit(now).unwrap()).unwrap();
    assert_eq!(s.poll_transmit(now), None);
    assert_eq!(
        late.header.sequence_number,
        first.header.sequence_number.wrapping_add(1)
    );
    assert_eq!(
        late.header.timestamp,
        first.header.timestamp.wrapping_add(3 * 160)
    );
    assert!(!late.header.marker);
    assert_eq!(s.poll_timeout(), Some(t0 + 80 * MS));
    let st = s.stats();
    assert_eq!((st.late_sends, st.skipped_frames, st.packets), (1, 2, 2));
    // A few ms late is not late.
    assert!(s.poll_transmit(t0 + 85 * MS).is_some());
    assert_eq!(s.stats().late_sends, 1);
}

#[test]
fn rtp_sender_payloads_are_our_marked_frames() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    let reference = s.echo_reference();
    let sent = run(&mut s, t0, t0 + 200 * MS);
    for (i, (_, p)) in sent.iter().enumerate() {
        let echo_at = t0 + FRAME * i as u32 + 90 * MS;
        assert_eq!(
            reference.check(echo_at, &p.payload),
            Some((i as u64, 90 * MS))
        );
    }
}

#[test]
fn rtp_sender_dtmf_events() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    run(&mut s, t0, t0 + 40 * MS); // two audio frames
    s.send_dtmf("1", 101).unwrap();
    assert!(s.dtmf_pending());
    assert!(s.send_dtmf("9x", 101).is_err());
    let sent = run(&mut s, t0 + 40 * MS, t0 + 300 * MS);
    // 100 ms digit: 4 updates + 3 end packets, then audio again.
    let events: Vec<_> = sent.iter().take(7).map(|(_, p)| p).collect();
    let ts = events[0].header.timestamp;
    for (k, p) in events.iter().enumerate() {
        assert_eq!(p.header.payload_type, 101);
        assert_eq!(p.header.timestamp, ts, "one timestamp per event");
        assert_eq!(p.header.marker, k == 0);
        let e = TelephoneEvent::parse(&p.payload).unwrap();
        assert_eq!(e.event, 1);
        assert_eq!(e.volume, 10);
        assert_eq!(e.end, k >= 4);
        assert_eq!(e.duration, 160 * (k.min(4) as u16 + 1));
    }
    let seqs: Vec<u16> = sent.iter().map(|(_, p)| p.header.sequence_number).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert_eq!(sent[7].1.header.payload_type, 0);
    assert!(!sent[7].1.header.marker);
    assert_eq!(sent[7].1.header.timestamp, ts.wrapping_add(7 * 160));
    assert_eq!(s.stats().dtmf_packets, 7);
    assert!(!s.dtmf_pending());
}

#[test]
fn rtp_sender_rtcp_sr_every_5_s_with_counts_and_blocks() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    let block = ReceptionReport {
        ssrc: 0xCA11_E500,
        fraction_lost: 3,
        total_lost: 7,
        last_sequence_number: 1234,
        jitter: 16,
        last_sender_report: 0,
        delay: 0,
    };
    let mut reports = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(13) {
        while s.poll_transmit(now).is_some() {}
        if let Some(r) = s.poll_rtcp(now, std::slice::from_ref(&block)) {
            reports.push((now, parse_rtcp(&r), s.stats().packets));
        }
        assert!(s.poll_timeout().unwrap() > now);
        now += MS;
    }
    assert_eq!(s.next_rtcp(), Some(t0 + 17_500 * MS));
    let at: Vec<Duration> = reports.iter().map(|(t, _, _)| *t - t0).collect();
    assert_eq!(at, [2500 * MS, 7500 * MS, 12_500 * MS]);
    for (_, c, packets) in &reports {
        let r = &c.reports[0];
        assert_eq!(r.ssrc, 0x1122_3344);
        let info = r.sender.unwrap();
        assert_eq!(u64::from(info.packets), *packets);
        assert_eq!(u64::from(info.octets), packets * 160);
        assert_eq!(r.blocks, std::slice::from_ref(&block));
        assert_eq!(c.other, 1, "the SDES CNAME");
        assert_eq!(c.malformed, 0);
    }
    // The SR's RTP time is the sampling instant's: 2.5 s = 20000 units.
    let info = reports[0].1.reports[0].sender.unwrap();
    assert_eq!(info.rtp_time, 4_294_967_000u32.wrapping_add(20_000));
    assert_eq!(info.ntp >> 32, 2);
    assert_eq!(s.stats().rtcp_packets, 3);
}

#[test]
fn rtp_sender_round_trip_from_lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    s.set_wall_clock(t0, Duration::from_secs(1_700_000_000));
    s.poll_transmit(t0);
    let at = t0 + 2500 * MS;
    let sr = parse_rtcp(&s.poll_rtcp(at, &[]).unwrap());
    let ntp = sr.reports[0].sender.unwrap().ntp;
    assert_eq!(ntp >> 32, 1_700_000_002 + 2_208_988_800);
    let block = ReceptionReport {
        ssrc: s.ssrc(),
        last_sender_report: ntp_middle(ntp),
        delay: 65_536, // held 1 s by the carrier
        ..Default::default()
    };
    let rtt = s.round_trip(&block, at + 1200 * MS).unwrap();
    assert!((rtt.as_secs_f64() - 0.2).abs() < 0.000_1, "{rtt:?}");
    let unknown = ReceptionReport {
        last_sender_report: 42,
        ..block.clone()
    };
    assert_eq!(s.round_trip(&unknown, at + 1200 * MS), None);
    let zero = ReceptionReport {
        last_sender_report: 0,
        ..block
    };
    assert_eq!(s.round_trip(&zero, at), None);
}

#[test]
fn rtp_sender_srtp_protects_rtp_and_rtcp() {
    let t0 = Instant::now();
    let key = MasterKey::generate();
    let suite = SrtpSuite::AesCm128HmacSha1_32;
    let out = SrtpOutbound::new(&key, suite).unwrap();
    let mut s = RtpSender::new(t0, 7, 8, Codec::Pcma, Some(out));
    let mut inb = SrtpInbound::new(&key, suite).unwrap();
    let mut now = t0;
    let mut n = 0;
    while now < t0 + Duration::from_secs(3) {
        if let Some(p) = s.poll_transmit(now) {
            assert_eq!(p.len(), 12 + 160 + 4);
            let plain = inb.unprotect_rtp(&p).unwrap();
            assert_eq!(parse_rtp(&plain).unwrap().header.payload_type, 8);
            n += 1;
        }
        if let Some(r) = s.poll_rtcp(now, &[]) {
            let plain = inb.unprotect_rtcp(&r).unwrap();
            assert_eq!(parse_rtcp(&plain).reports[0].ssrc, 7);
        }
        now += MS;
    }
    assert_eq!(n, 150);
    assert_eq!(s.stats().send_errors, 0);
}

#[test]
fn rtp_sender_bye_ends_it() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    s.poll_transmit(t0);
    let bye = parse_rtcp(&s.bye(t0 + MS, &[]).unwrap());
    assert_eq!(bye.bye, [0x1122_3344]);
    assert_eq!(s.poll_transmit(t0 + Duration::from_secs(1)), None);
    assert_eq!(s.poll_rtcp(t0 + Duration::from_secs(10), &[]), None);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.next_rtcp(), None);
    assert_eq!(s.bye(t0 + MS, &[]), None);
}

#[test]
fn rtp_sender_rr_before_any_rtp() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    // Never polled for RTP: the report is an RR.
    let r = parse_rtcp(&s.poll_rtcp(t0 + Duration::from_secs(3), &[]).unwrap());
    assert_eq!(r.reports[0].sender, None);
}
