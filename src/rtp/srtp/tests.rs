use proptest::prelude::*;

use super::*;
use crate::rtp::sdes::{MasterKey, Mki, SrtpSuite};

/// libsrtp's reference vectors (test/srtp_driver.c, also in webrtc-srtp's
/// tests): AES_CM_128_HMAC_SHA1_80, SSRC 0xcafebabe, SEQ 0x1234, ROC 0.
const MASTER: [u8; 30] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];
const RTP_PLAIN: [u8; 28] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];
const SRTP_80: [u8; 38] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c,
    0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc,
    0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
];
const RTCP_PLAIN: [u8; 24] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];
const SRTCP_80: [u8; 38] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0x71, 0x28, 0x03, 0x5b, 0xe4, 0x87, 0xb9, 0xbd,
    0xbe, 0xf8, 0x90, 0x41, 0xf9, 0x77, 0xa5, 0xa8, 0x80, 0x00, 0x00, 0x01, 0x99, 0x3e, 0x08, 0xcd,
    0x54, 0xd6, 0xc1, 0x23, 0x07, 0x98,
];

fn reference_key() -> MasterKey {
    MasterKey::from_key_salt(&MASTER)
}

#[test]
fn rtp_srtp_protects_the_libsrtp_reference_vectors() {
    let key = reference_key();
    let mut out = SrtpOutbound::new(&key, SrtpSuite::AesCm128HmacSha1_80).unwrap();
    assert_eq!(out.protect_rtp(&RTP_PLAIN).unwrap(), SRTP_80);
    assert_eq!(out.protect_rtcp(&RTCP_PLAIN).unwrap(), SRTCP_80);
    // _32: the same keystream, the tag cut to 4 bytes; SRTCP keeps 80 bits.
    let mut out = SrtpOutbound::new(&key, SrtpSuite::AesCm128HmacSha1_32).unwrap();
    assert_eq!(out.protect_rtp(&RTP_PLAIN).unwrap(), SRTP_80[..32]);
    assert_eq!(out.protect_rtcp(&RTCP_PLAIN).unwrap(), SRTCP_80);
}

#[test]
fn rtp_srtp_unprotects_the_libsrtp_reference_vectors() {
    let key = reference_key();
    let mut inb = SrtpInbound::new(&key, SrtpSuite::AesCm128HmacSha1_80).unwrap();
    assert_eq!(inb.unprotect_rtp(&SRTP_80).unwrap(), RTP_PLAIN);
    assert_eq!(inb.unprotect_rtcp(&SRTCP_80).unwrap(), RTCP_PLAIN);
    let mut inb = SrtpInbound::new(&key, SrtpSuite::AesCm128HmacSha1_32).unwrap();
    assert_eq!(inb.unprotect_rtp(&SRTP_80[..32]).unwrap(), RTP_PLAIN);
}

#[test]
fn rtp_srtp_tampering_a_wrong_key_and_plain_rtp_fail_authentication() {
    let key = reference_key();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut inb = SrtpInbound::new(&key, suite).unwrap();
    let mut bent = SRTP_80;
    bent[20] ^= 1;
    assert_eq!(inb.unprotect_rtp(&bent), Err(SrtpError::AuthFailed));
    let mut other = SrtpInbound::new(&MasterKey::generate(), suite).unwrap();
    assert_eq!(other.unprotect_rtp(&SRTP_80), Err(SrtpError::AuthFailed));
    // Plain RTP on an SRTP session: its last 10 bytes are taken as a tag.
    assert_eq!(inb.unprotect_rtp(&RTP_PLAIN), Err(SrtpError::AuthFailed));
    assert!(SrtpError::AuthFailed.is_auth_failure());
    let mut bent = SRTCP_80;
    bent[10] ^= 1;
    assert_eq!(inb.unprotect_rtcp(&bent), Err(SrtpError::AuthFailed));
}

#[test]
fn rtp_srtp_refuses_srtcp_with_the_e_bit_clear() {
    // webrtc-srtp would hand this back unauthenticated.
    let mut inb = SrtpInbound::new(&reference_key(), SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let mut clear = SRTCP_80;
    clear[24] &= 0x7F;
    assert_eq!(inb.unprotect_rtcp(&clear), Err(SrtpError::UnencryptedSrtcp));
    assert!(SrtpError::UnencryptedSrtcp.is_auth_failure());
}

#[test]
fn rtp_srtp_short_packets_are_malformed_not_panics() {
    let mut inb = SrtpInbound::new(&reference_key(), SrtpSuite::AesCm128HmacSha1_80).unwrap();
    for n in 0..SRTCP_80.len() {
        let _ = inb.unprotect_rtp(&SRTP_80[..n]);
        let _ = inb.unprotect_rtcp(&SRTCP_80[..n]);
    }
    assert_eq!(
        inb.unprotect_rtcp(&SRTCP_80[..21]),
        Err(SrtpError::Malformed("too short"))
    );
    assert_eq!(
        inb.unprotect_rtp(&SRTP_80[..21]),
        Err(SrtpError::Malformed("too short"))
    );
}

#[test]
fn rtp_srtp_round_trip_with_an_mki() {
    let mut key = MasterKey::generate();
    key.mki = Some(Mki { value: 1, len: 4 });
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let mut out = SrtpOutbound::new(&key, suite).unwrap();
        let mut inb = SrtpInbound::new(&key, suite).unwrap();
        let srtp = out.protect_rtp(&RTP_PLAIN).unwrap();
        assert_eq!(srtp.len(), RTP_PLAIN.len() + 4 + suite.rtp_tag_len());
        assert_eq!(&srtp[28..32], &[0, 0, 0, 1]);
        assert_eq!(inb.unprotect_rtp(&srtp).unwrap(), RTP_PLAIN);
        let srtcp = out.protect_rtcp(&RTCP_PLAIN).unwrap();
        assert_eq!(inb.unprotect_rtcp(&srtcp).unwrap(), RTCP_PLAIN);
        let mut wrong = srtp.clone();
        wrong[31] = 2;
        assert_eq!(inb.unprotect_rtp(&wrong), Err(SrtpError::UnknownMki));
    }
}

#[test]
fn rtp_srtp_sequence_rollover_keeps_authenticating() {
    let key = MasterKey::generate();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut out = SrtpOutbound::new(&key, suite).unwrap();
    let mut inb = SrtpInbound::new(&key, suite).unwrap();
    let mut packet = RTP_PLAIN;
    for i in 0..200u32 {
        let seq = 65_500u16.wrapping_add(i as u16);
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        let srtp = out.protect_rtp(&packet).unwrap();
        assert_eq!(inb.unprotect_rtp(&srtp).unwrap(), packet, "seq {seq}");
    }
}

#[test]
fn rtp_srtp_new_ssrcs_are_capped() {
    let key = MasterKey::generate();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let mut inb = SrtpInbound::new(&key, suite).unwrap();
    let mut packet = SRTP_80;
    for ssrc in 0..MAX_INBOUND_SSRCS as u32 {
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        assert_eq!(inb.unprotect_rtp(&packet), Err(SrtpError::AuthFailed));
    }
    packet[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(inb.unprotect_rtp(&packet), Err(SrtpError::TooManySsrcs));
    packet[8..12].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(inb.unprotect_rtp(&packet), Err(SrtpError::AuthFailed));
}

proptest! {
    #[test]
    fn rtp_srtp_unprotect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = reference_key();
        for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AesCm128HmacSha1_32] {
            let mut inb = SrtpInbound::new(&key, suite).unwrap();
            prop_assert!(inb.unprotect_rtp(&bytes).is_err());
            prop_assert!(inb.unprotect_rtcp(&bytes).is_err());
            let mut with_mki = key.clone();
            with_mki.mki = Some(Mki { value: 9, len: 2 });
            let mut inb = SrtpInbound::new(&with_mki, suite).unwrap();
            prop_assert!(inb.unprotect_rtp(&bytes).is_err());
            prop_assert!(inb.unprotect_rtcp(&bytes).is_err());
        }
    }
}
