use proptest::prelude::*;

use super::*;

#[test]
fn rtp_sdes_parses_rfc4568_attributes() {
    // RFC 4568 §9.1's example.
    let a = CryptoAttribute::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
    )
    .unwrap();
    assert_eq!(a.tag, 1);
    assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(a.key.lifetime, Some(1 << 20));
    assert_eq!(a.key.mki, Some(Mki { value: 1, len: 4 }));
    assert_eq!(&a.key.key[..3], &[0x3d, 0x2d, 0x6e]);
    assert_eq!(
        a.to_string(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576|1:4"
    );
    let b = CryptoAttribute::parse(
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^31 WSH=64",
    )
    .unwrap();
    assert_eq!((b.tag, b.suite), (2, SrtpSuite::AesCm128HmacSha1_32));
    assert_eq!(b.key.mki, None);
    assert_eq!(b.session_params, ["WSH=64"]);
    // Only the MKI, no lifetime; decimal lifetime.
    let c = MasterKey::parse_inline("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|3:1").unwrap();
    assert_eq!((c.lifetime, c.mki), (None, Some(Mki { value: 3, len: 1 })));
    let d =
        MasterKey::parse_inline("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1000").unwrap();
    assert_eq!(d.lifetime, Some(1000));
}

#[test]
fn rtp_sdes_refuses_what_it_cannot_honour() {
    let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let parse = |s: &str| CryptoAttribute::parse(s).unwrap_err();
    assert_eq!(
        parse(&format!("1 AES_256_CM_HMAC_SHA1_80 {key}")),
        SdesError::UnsupportedSuite("AES_256_CM_HMAC_SHA1_80".into())
    );
    assert_eq!(
        parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTCP"
        )),
        SdesError::UnsupportedSessionParam("UNENCRYPTED_SRTCP".into())
    );
    assert_eq!(
        parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=4")),
        SdesError::UnsupportedSessionParam("KDR=4".into())
    );
    assert!(CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=0")).is_ok());
    assert_eq!(
        parse("x AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
        SdesError::BadTag("x".into())
    );
    assert_eq!(
        parse("1 AES_CM_128_HMAC_SHA1_80"),
        SdesError::Missing("key-params")
    );
    assert_eq!(
        parse("1 AES_CM_128_HMAC_SHA1_80 uri:x"),
        SdesError::NotInline
    );
    assert_eq!(
        parse("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!"),
        SdesError::BadBase64
    );
    assert_eq!(
        parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
        SdesError::KeyLength(3)
    );
    assert!(matches!(
        parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^49")),
        SdesError::BadLifetime(_)
    ));
    assert!(matches!(
        parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|256:1")),
        SdesError::BadMki(_)
    ));
    assert!(matches!(
        parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:0")),
        SdesError::BadMki(_)
    ));
    assert!(matches!(
        parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:4|2^20")),
        SdesError::BadKeyParam(_)
    ));
}

#[test]
fn rtp_sdes_generated_attributes_round_trip_and_differ() {
    let a = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_32);
    let text = a.to_string();
    assert!(text.starts_with("1 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert_eq!(text.len(), "1 AES_CM_128_HMAC_SHA1_32 inline:".len() + 40);
    assert_eq!(CryptoAttribute::parse(&text).unwrap(), a);
    assert_ne!(CryptoAttribute::generate(1, a.suite).key, a.key);
    // Debug output never shows the key.
    assert!(!format!("{:?}", a.key).contains(&format!("{:?}", a.key.key)));
}

proptest! {
    #[test]
    fn rtp_sdes_attribute_parse_never_panics(s in "\\PC{0,120}") {
        let _ = CryptoAttribute::parse(&s);
        let _ = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{s}"));
    }
}
