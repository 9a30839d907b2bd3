//! SDP bodies (RFC 4566/8866) as a carrier advertises them in an OPTIONS reply:
//! media lines with their RTP profile, payload types mapped to codecs
//! (`a=rtpmap` or the static RFC 3551 table) and SDES `a=crypto` suites (RFC 4568).
//!
//! Lenient and sans-IO: unknown lines are ignored, malformed `m=`/`a=` lines are
//! counted and skipped, and nothing here panics on garbage.

use std::fmt;

/// Why a body is not SDP at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not SDP (no v= line)")]
    NotSdp,
}

/// The transport protocol of a media line (`m=audio 4000 RTP/AVP 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// `RTP/AVP`: plain RTP.
    RtpAvp,
    /// `RTP/AVPF`: plain RTP with feedback.
    RtpAvpf,
    /// `RTP/SAVP`: SRTP (keys by SDES `a=crypto`).
    RtpSavp,
    /// `RTP/SAVPF`: SRTP with feedback.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP(F)`: DTLS-SRTP (keys by DTLS, not SDES).
    DtlsSrtp,
    /// Anything else, verbatim.
    Other(String),
}

impl Profile {
    pub fn parse(s: &str) -> Profile {
        match s.to_ascii_uppercase().as_str() {
            "RTP/AVP" => Profile::RtpAvp,
            "RTP/AVPF" => Profile::RtpAvpf,
            "RTP/SAVP" => Profile::RtpSavp,
            "RTP/SAVPF" => Profile::RtpSavpf,
            "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF" => Profile::DtlsSrtp,
            _ => Profile::Other(s.to_string()),
        }
    }

    /// SRTP is mandatory on this line.
    pub fn is_secure(&self) -> bool {
        matches!(
            self,
            Profile::RtpSavp | Profile::RtpSavpf | Profile::DtlsSrtp
        )
    }

    /// RTP of any kind (payload types are numbers).
    pub fn is_rtp(&self) -> bool {
        !matches!(self, Profile::Other(_))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::RtpAvp => "RTP/AVP",
            Profile::RtpAvpf => "RTP/AVPF",
            Profile::RtpSavp => "RTP/SAVP",
            Profile::RtpSavpf => "RTP/SAVPF",
            Profile::DtlsSrtp => "UDP/TLS/RTP/SAVP",
            Profile::Other(s) => s,
        })
    }
}

/// A codec, named as Asterisk (and so Bolna's `allow`/`disallow`) names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    Ulaw,
    Alaw,
    G729,
    Gsm,
    G722,
    G723,
    G726,
    Opus,
    Ilbc,
    Speex,
    /// RFC 4733 DTMF: not an audio codec.
    TelephoneEvent,
    /// RFC 3389 comfort noise: not an audio codec.
    ComfortNoise,
    /// Any other encoding name, lower case.
    Other(String),
}

impl Codec {
    /// From an `a=rtpmap` encoding name (any case).
    pub fn from_encoding(name: &str) -> Codec {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "pcmu" => Codec::Ulaw,
            "pcma" => Codec::Alaw,
            "g729" | "g729a" | "g729ab" => Codec::G729,
            "gsm" => Codec::Gsm,
            "g722" => Codec::G722,
            "g723" => Codec::G723,
            "opus" => Codec::Opus,
            "ilbc" => Codec::Ilbc,
            "speex" => Codec::Speex,
            "telephone-event" => Codec::TelephoneEvent,
            "cn" => Codec::ComfortNoise,
            s if s.starts_with("g726") || s.starts_with("aal2-g726") => Codec::G726,
            _ => Codec::Other(lower),
        }
    }

    /// The static payload types of RFC 3551 that name a codec without `a=rtpmap`.
    pub fn from_static_pt(pt: u8) -> Option<Codec> {
        Some(match pt {
            0 => Codec::Ulaw,
            3 => Codec::Gsm,
            4 => Codec::G723,
            8 => Codec::Alaw,
            9 => Codec::G722,
            13 => Codec::ComfortNoise,
            18 => Codec::G729,
            _ => return None,
        })
    }

    /// Asterisk's spelling (`ulaw`), as in a trunk's `allow` list.
    pub fn name(&self) -> &str {
        match self {
            Codec::Ulaw => "ulaw",
            Codec::Alaw => "alaw",
            Codec::G729 => "g729",
            Codec::Gsm => "gsm",
            Codec::G722 => "g722",
            Codec::G723 => "g723",
            Codec::G726 => "g726",
            Codec::Opus => "opus",
            Codec::Ilbc => "ilbc",
            Codec::Speex => "speex",
            Codec::TelephoneEvent => "telephone-event",
            Codec::ComfortNoise => "cn",
            Codec::Other(s) => s,
        }
    }

    /// Carries audio (DTMF events and comfort noise do not).
    pub fn is_audio(&self) -> bool {
        !matches!(self, Codec::TelephoneEvent | Codec::ComfortNoise)
    }

    /// G.711 (ulaw or alaw), what Bolna speaks.
    pub fn is_g711(&self) -> bool {
        matches!(self, Codec::Ulaw | Codec::Alaw)
    }
}

/// An SRTP crypto suite of `a=crypto` (RFC 4568 §6.2, RFC 6188).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    /// Any other suite, verbatim.
    Other(String),
}

impl CryptoSuite {
    pub fn parse(s: &str) -> CryptoSuite {
        match s.to_ascii_uppercase().as_str() {
            "AES_CM_128_HMAC_SHA1_80" => CryptoSuite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => CryptoSuite::AesCm128HmacSha1_32,
            _ => CryptoSuite::Other(s.to_string()),
        }
    }

    /// One of the two suites Bolna's SDES supports.
    pub fn is_supported(&self) -> bool {
        !matches!(self, CryptoSuite::Other(_))
    }

    pub fn as_str(&self) -> &str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::Other(s) => s,
        }
    }
}

/// One `a=crypto` line. The key itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: CryptoSuite,
}

/// One payload type of a media line and the codec it names, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub pt: u8,
    /// From `a=rtpmap`, else the static table; `None` for an unmapped dynamic type.
    pub codec: Option<Codec>,
}

/// One `m=` line with its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, ... (lower case).
    pub kind: String,
    pub port: u16,
    pub profile: Profile,
    /// In the order offered (preference order).
    pub payloads: Vec<Payload>,
    pub crypto: Vec<Crypto>,
    /// `a=fingerprint` present (DTLS-SRTP keying).
    pub fingerprint: bool,
}

impl Media {
    /// Audio codecs in offer order, without DTMF and comfort noise, each once.
    pub fn audio_codecs(&self) -> Vec<Codec> {
        let mut out: Vec<Codec> = Vec::new();
        for c in self.payloads.iter().filter_map(|p| p.codec.clone()) {
            if c.is_audio() && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    pub media: Vec<Media>,
    /// `m=`, `a=rtpmap` and `a=crypto` lines that could not be parsed (skipped).
    pub malformed_lines: usize,
}

impl Sdp {
    /// The `m=audio` lines with a non-zero port (port 0 means rejected/disabled).
    pub fn audio(&self) -> impl Iterator<Item = &Media> {
        self.media
            .iter()
            .filter(|m| m.kind == "audio" && m.port != 0)
    }
}

/// Parses an SDP body. Fails only when the body is empty or has no `v=` line.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(SdpError::Empty);
    }
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty())
        .collect();
    if !lines.iter().any(|l| l.starts_with("v=")) {
        return Err(SdpError::NotSdp);
    }
    let mut sdp = Sdp::default();
    // rtpmap entries of the current media line, applied when it ends.
    let mut rtpmap: Vec<(u8, Codec)> = Vec::new();
    for line in lines {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                finish(&mut sdp, &mut rtpmap);
                match parse_media(value) {
                    Some(m) => sdp.media.push(m),
                    None => sdp.malformed_lines += 1,
                }
            }
            // Session-level attributes (before any m=) say nothing about codecs or SDES.
            "a" if !sdp.media.is_empty() => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let media = sdp.media.last_mut().expect("checked non-empty");
                match name.to_ascii_lowercase().as_str() {
                    "rtpmap" => match parse_rtpmap(arg) {
                        Some(entry) => rtpmap.push(entry),
                        None => sdp.malformed_lines += 1,
                    },
                    "crypto" => match parse_crypto(arg) {
                        Some(c) => media.crypto.push(c),
                        None => sdp.malformed_lines += 1,
                    },
                    "fingerprint" => media.fingerprint = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    finish(&mut sdp, &mut rtpmap);
    Ok(sdp)
}

/// Applies the collected rtpmap to the last media line.
fn finish(sdp: &mut Sdp, rtpmap: &mut Vec<(u8, Codec)>) {
    if let Some(m) = sdp.media.last_mut() {
        for p in &mut m.payloads {
            if let Some((_, c)) = rtpmap.iter().find(|(pt, _)| *pt == p.pt) {
                p.codec = Some(c.clone());
            }
        }
    }
    rtpmap.clear();
}

/// `audio 4000[/2] RTP/AVP 0 8 101`
fn parse_media(value: &str) -> Option<Media> {
    let mut parts = value.split_ascii_whitespace();
    let kind = parts.next()?.to_ascii_lowercase();
    let port_field = parts.next()?;
    let port = port_field.split('/').next()?.parse::<u16>().ok()?;
    let profile = Profile::parse(parts.next()?);
    let payloads = if profile.is_rtp() {
        parts
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
            .map(|pt| Payload {
                pt,
                codec: Codec::from_static_pt(pt),
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(Media {
        kind,
        port,
        profile,
        payloads,
        crypto: Vec::new(),
        fingerprint: false,
    })
}

/// `0 PCMU/8000` (after `a=rtpmap:`)
fn parse_rtpmap(arg: &str) -> Option<(u8, Codec)> {
    let (pt, rest) = arg.trim().split_once(char::is_whitespace)?;
    let pt = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let encoding = rest.trim().split('/').next()?;
    if encoding.is_empty() {
        return None;
    }
    Some((pt, Codec::from_encoding(encoding)))
}

/// `1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:32` (after `a=crypto:`); the key is dropped.
fn parse_crypto(arg: &str) -> Option<Crypto> {
    let mut parts = arg.split_ascii_whitespace();
    let tag = parts.next()?.parse::<u32>().ok()?;
    let suite = parts.next()?;
    // The key parameters are mandatory (RFC 4568 §9.1).
    parts.next()?;
    Some(Crypto {
        tag,
        suite: CryptoSuite::parse(suite),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU_PCMA: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
        t=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

    #[test]
    fn pcmu_pcma_with_dtmf() {
        let sdp = parse(PCMU_PCMA.as_bytes()).unwrap();
        let audio: Vec<&Media> = sdp.audio().collect();
        assert_eq!(audio.len(), 1);
        assert_eq!(audio[0].profile, Profile::RtpAvp);
        assert_eq!(audio[0].audio_codecs(), vec![Codec::Ulaw, Codec::Alaw]);
        assert_eq!(audio[0].payloads[2].codec, Some(Codec::TelephoneEvent));
        assert!(audio[0].crypto.is_empty());
        assert_eq!(sdp.malformed_lines, 0);
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = parse(b"v=0\nm=audio 5004 RTP/AVP 18 3 9 4 13\n").unwrap();
        let m = sdp.audio().next().unwrap();
        assert_eq!(
            m.audio_codecs(),
            vec![Codec::G729, Codec::Gsm, Codec::G722, Codec::G723]
        );
    }

    #[test]
    fn rtpmap_overrides_and_dynamic_types() {
        let sdp = parse(
            b"v=0\nm=audio 5004 RTP/AVP 96 97 98\na=rtpmap:96 opus/48000/2\n\
              a=rtpmap:97 G726-32/8000\n",
        )
        .unwrap();
        let m = sdp.audio().next().unwrap();
        assert_eq!(m.audio_codecs(), vec![Codec::Opus, Codec::G726]);
        assert_eq!(m.payloads[2].codec, None, "unmapped dynamic type");
    }

    #[test]
    fn savp_with_crypto_suites_and_no_key_kept() {
        let sdp = parse(
            b"v=0\nm=audio 5004 RTP/SAVP 0\n\
              a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\n\
              a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:secretsecret\n\
              a=crypto:3 AES_CM_128_HMAC_SHA1_32\n",
        )
        .unwrap();
        let m = sdp.audio().next().unwrap();
        assert!(m.profile.is_secure());
        assert_eq!(m.crypto.len(), 2);
        assert_eq!(m.crypto[0].suite, CryptoSuite::AesCm128HmacSha1_80);
        assert!(!m.crypto[1].suite.is_supported());
        assert_eq!(sdp.malformed_lines, 1, "crypto without key params");
        assert!(!format!("{sdp:?}").contains("inline"));
    }

    #[test]
    fn profiles() {
        assert_eq!(Profile::parse("udp/tls/rtp/savpf"), Profile::DtlsSrtp);
        assert!(Profile::parse("RTP/SAVPF").is_secure());
        assert!(!Profile::parse("RTP/AVP").is_secure());
        assert_eq!(
            Profile::parse("TCP/MRCPv2"),
            Profile::Other("TCP/MRCPv2".into())
        );
    }

    #[test]
    fn rejected_and_non_audio_streams_are_not_audio() {
        let sdp = parse(b"v=0\nm=audio 0 RTP/AVP 0\nm=video 5006 RTP/AVP 96\n").unwrap();
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.audio().count(), 0);
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b" \r\n"), Err(SdpError::Empty));
        assert_eq!(parse(b"<html>502</html>"), Err(SdpError::NotSdp));
        for garbage in [
            &b"v=0\nm=\nm=audio\nm=audio x RTP/AVP 0\nm=audio 70000 RTP/AVP 0\n"[..],
            b"v=0\na=rtpmap:0 PCMU/8000\nm=audio 1 RTP/AVP 300 -1 abc 0\na=rtpmap:\na=rtpmap:999 X/1\n",
            b"v=0\nm=audio 1 RTP/AVP 0\na=crypto:\na=crypto:x y z\na=rtpmap:0 /8000\n",
            b"v=0\n=\n==\na\nm=audio 1/2/3 RTP/AVP\n",
            &[0xff, 0xfe, b'v', b'=', b'0', b'\n', b'm', b'=', 0xc3][..],
        ] {
            let _ = parse(garbage);
        }
        let sdp = parse(b"v=0\nm=audio 1 RTP/AVP 300 -1 abc 0\na=rtpmap:999 X/1\n").unwrap();
        assert_eq!(sdp.media[0].payloads.len(), 1);
        assert_eq!(sdp.malformed_lines, 1);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = super::parse(&body);
        }

        #[test]
        fn sdp_shaped_lines_never_panic(lines in proptest::collection::vec(
            "(v|m|a|c)=(audio|crypto:|rtpmap:)?[ 0-9A-Za-z/:_|^-]{0,40}", 0..12)) {
            let _ = super::parse(lines.join("\r\n").as_bytes());
        }
    }
}
