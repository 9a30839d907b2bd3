//! SDP bodies (RFC 8866): each `m=` line with its port, transport profile,
//! payload types mapped to codecs (`a=rtpmap` or the static RFC 3551 table),
//! connection address (`c=`, media level over session level), SDES `a=crypto`
//! suites (RFC 4568) and whether DTLS keys it (`a=fingerprint`, RFC 8122).
//!
//! The parser says what the body holds, not what it means. The same
//! `m=audio 0 RTP/AVP 0 8` line is a capability in an OPTIONS reply, where an SDP
//! describes what the UA supports and its ports are commonly 0 (RFC 3261 §11.2,
//! RFC 3264 §9), and a rejected stream in the answer to an offer (RFC 3264 §6).
//! So every media line keeps its port and the caller picks the reading of its
//! context: [`Sdp::audio`] for capabilities, [`Sdp::accepted_audio`] for an answer.
//!
//! Lenient and sans-IO: CRLF, LF or CR line ends, blanks around lines and any case
//! of encoding names and profiles are accepted; unknown lines are ignored,
//! malformed `m=`/`a=` lines are counted and skipped, and nothing here panics on
//! garbage.

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
    /// `audio`, `video`, `image` (T.38), ... (lower case).
    pub kind: String,
    /// As written; 0 is common in capability SDP (see [`Media::rejected_in_answer`]).
    pub port: u16,
    pub profile: Profile,
    /// In the order offered (preference order).
    pub payloads: Vec<Payload>,
    pub crypto: Vec<Crypto>,
    /// `a=fingerprint` on this line or at session level (DTLS-SRTP keying).
    pub fingerprint: bool,
    /// The address of the `c=` line that applies (this line's, else the
    /// session's), without a multicast TTL; `None` when there is none.
    pub connection: Option<String>,
}

impl Media {
    /// In the answer to an offer, port 0 rejects the stream (RFC 3264 §6). Only
    /// that context gives port 0 this meaning: capability SDP (an OPTIONS reply)
    /// advertises port-0 lines like any other.
    pub fn rejected_in_answer(&self) -> bool {
        self.port == 0
    }

    /// SRTP keys come from a DTLS handshake, not from SDES: a `UDP/TLS/RTP/*`
    /// profile (RFC 5764), or an SRTP profile with `a=fingerprint` and no
    /// `a=crypto` (as on `RTP/SAVPF` lines of DTLS-SRTP endpoints). A
    /// fingerprint beside a plain RTP profile keys nothing.
    pub fn dtls_keyed(&self) -> bool {
        self.profile == Profile::DtlsSrtp
            || (self.profile.is_secure() && self.fingerprint && self.crypto.is_empty())
    }

    /// The `a=crypto` lines that offer SDES keys: none on a DTLS profile, where
    /// SDES does not apply (RFC 5764 §4.1.2 keys SRTP by DTLS only).
    pub fn sdes_crypto(&self) -> &[Crypto] {
        if self.profile == Profile::DtlsSrtp {
            &[]
        } else {
            &self.crypto
        }
    }

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
    /// Every `m=audio` line, whatever its port: what a capability SDP advertises.
    pub fn audio(&self) -> impl Iterator<Item = &Media> {
        self.media.iter().filter(|m| m.kind == "audio")
    }

    /// The `m=audio` lines an answer accepts (non-zero port, RFC 3264 §6).
    pub fn accepted_audio(&self) -> impl Iterator<Item = &Media> {
        self.audio().filter(|m| !m.rejected_in_answer())
    }
}

/// Parses an SDP body. Fails only when the body is empty or has no `v=` line.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(SdpError::Empty);
    }
    let lines: Vec<&str> = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !lines.iter().any(|l| l.starts_with("v=")) {
        return Err(SdpError::NotSdp);
    }
    let mut sdp = Sdp::default();
    // Session level: apply to every media line unless it has its own.
    let mut session_connection: Option<String> = None;
    let mut session_fingerprint = false;
    // rtpmap entries of the current media line, applied when it ends.
    let mut rtpmap: Vec<(u8, Codec)> = Vec::new();
    for line in lines {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let media = sdp.media.last_mut();
        match (kind.trim_end(), media) {
            ("m", _) => {
                finish(&mut sdp, &mut rtpmap);
                match parse_media(value) {
                    Some(mut m) => {
                        m.connection = session_connection.clone();
                        m.fingerprint = session_fingerprint;
                        sdp.media.push(m);
                    }
                    None => sdp.malformed_lines += 1,
                }
            }
            ("c", media) => {
                if let Some(addr) = parse_connection(value) {
                    match media {
                        Some(m) => m.connection = Some(addr),
                        None => session_connection = Some(addr),
                    }
                }
            }
            // Of the session-level attributes only a=fingerprint concerns media
            // (RFC 8122 §5); rtpmap and crypto are media-level.
            ("a", None) => {
                let name = value.split(':').next().unwrap_or("");
                if name.trim().eq_ignore_ascii_case("fingerprint") {
                    session_fingerprint = true;
                }
            }
            ("a", Some(media)) => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                match name.trim().to_ascii_lowercase().as_str() {
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
        connection: None,
    })
}

/// `IN IP4 192.0.2.1` or `IN IP4 224.2.1.1/127` (after `c=`): the address.
fn parse_connection(value: &str) -> Option<String> {
    let mut parts = value.split_ascii_whitespace();
    let (_net, _addrtype) = (parts.next()?, parts.next()?);
    let addr = parts.next()?.split('/').next()?;
    (!addr.is_empty()).then(|| addr.to_string())
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

    /// Shaped like RFC 3261 §11.2's OPTIONS response: capabilities on port 0.
    const RFC3261_OPTIONS_200: &str = "v=0\r\n\
        o=carol 28908764872 28908764872 IN IP4 100.3.6.6\r\ns=-\r\nt=0 0\r\n\
        c=IN IP4 192.0.2.4\r\nm=audio 0 RTP/AVP 0 1 3 99\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:1 1016/8000\r\na=rtpmap:3 GSM/8000\r\na=rtpmap:99 SX7300/8000\r\n\
        m=video 0 RTP/AVP 31 34\r\na=rtpmap:31 H261/90000\r\na=rtpmap:34 H263/90000\r\n";

    #[test]
    fn port_zero_lines_are_kept_with_their_port() {
        let sdp = parse(RFC3261_OPTIONS_200.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), 2);
        let audio: Vec<&Media> = sdp.audio().collect();
        assert_eq!(audio.len(), 1, "port 0 is a capability here");
        assert_eq!(audio[0].port, 0);
        assert!(audio[0].rejected_in_answer());
        assert_eq!(
            audio[0].audio_codecs(),
            vec![
                Codec::Ulaw,
                Codec::Other("1016".into()),
                Codec::Gsm,
                Codec::Other("sx7300".into())
            ]
        );
        assert_eq!(audio[0].connection.as_deref(), Some("192.0.2.4"));
        // The same lines read as an answer: every stream rejected.
        assert_eq!(sdp.accepted_audio().count(), 0);
        let sdp = parse(b"v=0\nm=audio 0 RTP/AVP 0\nm=audio 49170 RTP/AVP 8\n").unwrap();
        let accepted: Vec<u16> = sdp.accepted_audio().map(|m| m.port).collect();
        assert_eq!(accepted, [49170]);
        assert_eq!(sdp.audio().count(), 2);
    }

    #[test]
    fn kamailio_g729_srtp_only_capability() {
        let sdp = parse(
            b"v=0\r\no=- 0 0 IN IP4 203.0.113.10\r\ns=kamailio\r\nc=IN IP4 203.0.113.10\r\n\
              t=0 0\r\nm=audio 0 RTP/SAVP 18\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n\
              a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n",
        )
        .unwrap();
        let m = sdp.audio().next().expect("the port-0 line is advertised");
        assert_eq!(m.port, 0);
        assert_eq!(m.profile, Profile::RtpSavp);
        assert_eq!(m.audio_codecs(), vec![Codec::G729]);
        assert_eq!(m.sdes_crypto().len(), 1);
        assert!(!m.dtls_keyed());
        assert_eq!(sdp.malformed_lines, 0);
    }

    #[test]
    fn video_or_t38_only_has_no_audio() {
        let sdp = parse(
            b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
              m=image 0 udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n\
              m=video 0 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n",
        )
        .unwrap();
        assert_eq!(sdp.audio().count(), 0);
        let kinds: Vec<&str> = sdp.media.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["image", "video"]);
        assert_eq!(sdp.media[0].profile, Profile::Other("udptl".into()));
        assert!(
            sdp.media[0].payloads.is_empty(),
            "t38 is not an RTP payload type"
        );
    }

    #[test]
    fn best_effort_srtp_as_two_audio_lines() {
        // One SBC's offer of the same codecs in the clear and with SDES.
        let sdp = parse(
            b"v=0\r\no=SBC 1653 1653 IN IP4 192.0.2.20\r\ns=SBC\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
              m=audio 0 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
              a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
              m=audio 0 RTP/SAVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
              a=rtpmap:101 telephone-event/8000\r\n\
              a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32\r\n\
              a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\r\n",
        )
        .unwrap();
        let audio: Vec<&Media> = sdp.audio().collect();
        assert_eq!(audio.len(), 2);
        assert_eq!(audio[0].profile, Profile::RtpAvp);
        assert!(
            audio[0].crypto.is_empty(),
            "crypto belongs to the second line"
        );
        assert_eq!(audio[1].profile, Profile::RtpSavp);
        assert_eq!(audio[1].crypto.len(), 2);
        for m in audio {
            assert_eq!(m.audio_codecs(), vec![Codec::Ulaw, Codec::Alaw]);
            assert_eq!(m.payloads[2].codec, Some(Codec::TelephoneEvent));
        }
    }

    #[test]
    fn dtls_srtp_is_not_sdes() {
        // WebRTC-style RTP/SAVPF with a media-level fingerprint.
        let savpf = parse(
            b"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
              m=audio 9 RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n\
              a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
              a=setup:actpass\r\n",
        )
        .unwrap();
        let m = savpf.audio().next().unwrap();
        assert_eq!(m.profile, Profile::RtpSavpf);
        assert!(m.profile.is_secure() && m.dtls_keyed());
        assert!(m.sdes_crypto().is_empty());
        assert_eq!(m.audio_codecs(), vec![Codec::Opus, Codec::Ulaw]);
        assert_eq!(m.connection.as_deref(), Some("0.0.0.0"));

        // UDP/TLS/RTP/SAVP with a session-level fingerprint, and a stray a=crypto
        // that cannot key a DTLS profile.
        let udptls = parse(
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.30\r\ns=-\r\nt=0 0\r\n\
              a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\n\
              m=audio 0 UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\n\
              a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
        )
        .unwrap();
        let m = udptls.audio().next().unwrap();
        assert_eq!(m.profile, Profile::DtlsSrtp);
        assert!(
            m.fingerprint,
            "session-level fingerprint applies to the line"
        );
        assert!(m.dtls_keyed());
        assert!(m.sdes_crypto().is_empty());

        // RTP/SAVP offering both SDES and DTLS keys: SDES is usable.
        let both = parse(
            b"v=0\nm=audio 0 RTP/SAVP 0\na=fingerprint:sha-256 AB:CD\n\
              a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n",
        )
        .unwrap();
        let m = both.audio().next().unwrap();
        assert!(!m.dtls_keyed());
        assert_eq!(m.sdes_crypto().len(), 1);

        // A session-level fingerprint reaches a plain line too, and keys nothing there.
        let plain = parse(
            b"v=0\na=fingerprint:sha-256 AB:CD\nm=audio 0 UDP/TLS/RTP/SAVP 0\nm=audio 0 RTP/AVP 0\n",
        )
        .unwrap();
        let keyed: Vec<(bool, bool)> = plain
            .audio()
            .map(|m| (m.fingerprint, m.dtls_keyed()))
            .collect();
        assert_eq!(keyed, [(true, true), (true, false)]);
    }

    #[test]
    fn encoding_names_in_any_case_and_dynamic_types() {
        let sdp = parse(
            b"v=0\nm=audio 0 rtp/avp 0 8 18 96 97 98\na=rtpmap:0 pcmu/8000\na=RTPMAP:8 Pcma/8000\n\
              a=rtpmap:18 g729/8000\na=rtpmap:96 PCMU/8000\na=rtpmap:97 G729A/8000\n\
              a=rtpmap:98 Telephone-Event/8000\n",
        )
        .unwrap();
        let m = sdp.audio().next().unwrap();
        assert_eq!(m.profile, Profile::RtpAvp);
        assert_eq!(
            m.audio_codecs(),
            vec![Codec::Ulaw, Codec::Alaw, Codec::G729]
        );
        assert_eq!(m.payloads[3].codec, Some(Codec::Ulaw), "dynamic PCMU");
        assert_eq!(m.payloads[4].codec, Some(Codec::G729));
        assert_eq!(m.payloads[5].codec, Some(Codec::TelephoneEvent));
        // A dynamic type mapped away from its static meaning follows a=rtpmap.
        let sdp = parse(b"v=0\nm=audio 0 RTP/AVP 18\na=rtpmap:18 PCMA/8000\n").unwrap();
        assert_eq!(
            sdp.audio().next().unwrap().audio_codecs(),
            vec![Codec::Alaw]
        );
    }

    #[test]
    fn session_and_media_connection_lines() {
        let sdp = parse(
            b"v=0\r\no=- 7 7 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
              m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
              m=audio 0 RTP/AVP 8\r\nc=IN IP6 2001:db8::1\r\na=rtpmap:8 PCMA/8000\r\n\
              m=audio 0 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\nc=IN IP4 233.252.0.1/127\r\n",
        )
        .unwrap();
        let got: Vec<(Option<&str>, Vec<Codec>)> = sdp
            .audio()
            .map(|m| (m.connection.as_deref(), m.audio_codecs()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("192.0.2.1"), vec![Codec::Ulaw]),
                (Some("2001:db8::1"), vec![Codec::Alaw]),
                (Some("233.252.0.1"), vec![Codec::G729]),
            ]
        );
        let bare = parse(b"v=0\nm=audio 0 RTP/AVP 0\nc=IN\n").unwrap();
        assert_eq!(bare.media[0].connection, None);
    }

    #[test]
    fn line_ends_and_blanks_do_not_matter() {
        let lf = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
            m=audio 0 RTP/SAVP 0 8\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n";
        let want = parse(lf.as_bytes()).unwrap();
        assert_eq!(want.audio().next().unwrap().crypto.len(), 1);
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        let blanks = lf.replace('\n', " \t\r\n").replace("m=audio", "  m=audio");
        let no_final_eol = lf.trim_end().to_string();
        for body in [crlf, cr, blanks, no_final_eol] {
            assert_eq!(parse(body.as_bytes()).unwrap(), want, "{body:?}");
        }
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
            "(v|m|a|c)=(audio|image|crypto:|rtpmap:|fingerprint:|IN IP4)?[ 0-9A-Za-z/:_|^-]{0,40}", 0..12),
            eol in "(\r\n|\n|\r)") {
            let _ = super::parse(lines.join(&eol).as_bytes());
        }
    }
}
