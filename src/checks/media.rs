//! Media consistency: will calls on this trunk have audio? Compares the trunk's
//! codecs and SRTP mode with the SDP a carrier advertised in its OPTIONS reply.
//!
//! An SDP in an OPTIONS reply states capabilities, not a session (RFC 3261
//! §11.2, RFC 3264 §9): every `m=audio` line is advertised whatever its port, and
//! capability SDP often has port 0. Port 0 rejects a stream only in the answer
//! to an offer (RFC 3264 §6), which an OPTIONS reply is not.
//!
//! Pure: a [`Trunk`] and the final responses of its targets in, findings out.
//! Codecs are the intersection of the trunk's effective codecs, Bolna's codecs
//! (ulaw, then alaw) and the carrier's audio codecs over all its audio lines;
//! SDES compares `media_encryption` with the carrier's RTP profiles and SDES
//! `a=crypto` lines (DTLS-keyed lines offer no SDES keys). A carrier with one
//! plain and one SRTP line supports both. Without SDP, or without audio in it,
//! the result is "not advertised", never a guess. Messages follow the setup
//! guide's "one-way audio" troubleshooting section.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::{CheckId, Finding};
use crate::outcome::TargetResult;
use crate::sip::sdp::{self, Codec, Media, Sdp};
use crate::trunk::{MediaEncryption, Transport, Trunk};

/// Bolna's codecs, in its preference order.
pub const BOLNA_CODECS: [Codec; 2] = [Codec::Ulaw, Codec::Alaw];

/// What one reply said about media.
#[derive(Debug, Clone, PartialEq)]
pub enum Advertised {
    /// No SDP body (or not `application/sdp`).
    Nothing,
    /// An SDP body that is not usable, with why.
    Unusable(String),
    /// SDP without any `m=audio` line: the first kinds of media it has instead
    /// (`video`, `image` for T.38, ...), each once; empty when it has none.
    NoAudio(Vec<String>),
    /// Every `m=audio` line, whatever its port.
    Audio(Vec<Media>),
}

/// Reads the SDP, if any, of a final response's content type and body.
pub fn advertised(content_type: Option<&str>, body: &[u8]) -> Advertised {
    let is_sdp = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/sdp")
    });
    if !is_sdp || body.iter().all(u8::is_ascii_whitespace) {
        return Advertised::Nothing;
    }
    match sdp::parse(body) {
        Err(e) => Advertised::Unusable(e.to_string()),
        Ok(s) => audio_of(&s),
    }
}

/// The capability reading of an SDP: port-0 lines count (see the module doc).
fn audio_of(s: &Sdp) -> Advertised {
    let audio: Vec<Media> = s.audio().cloned().collect();
    if !audio.is_empty() {
        return Advertised::Audio(audio);
    }
    // The first few kinds are enough to say what the SDP is for.
    let mut kinds: Vec<String> = Vec::new();
    for m in &s.media {
        if kinds.len() > SHOWN_KINDS {
            break;
        }
        if !kinds.contains(&m.kind) {
            kinds.push(m.kind.clone());
        }
    }
    Advertised::NoAudio(kinds)
}

/// What the media check reads of one final response: who sent it, its
/// Content-Type and body.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub ip: Option<IpAddr>,
    pub port: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The final response of a probed target, if it got one.
    pub fn of(t: &'a TargetResult) -> Option<Reply<'a>> {
        let resp = t.response.as_ref()?;
        Some(Reply {
            ip: t.ip,
            port: t.port,
            content_type: resp.content_type.as_deref(),
            body: &resp.body,
        })
    }
}

/// Media findings for a trunk from its probed targets' final responses, most
/// severe first. Identical findings from several addresses are merged.
pub fn media<'a>(
    trunk: &Trunk,
    targets: impl IntoIterator<Item = &'a TargetResult>,
) -> Vec<Finding> {
    media_of(trunk, targets.into_iter().filter_map(Reply::of))
}

/// [`media`] over the replies alone (what the daemon keeps of each target).
pub fn media_of<'a>(
    trunk: &Trunk,
    replies_in: impl IntoIterator<Item = Reply<'a>>,
) -> Vec<Finding> {
    let mut merged: Vec<(Finding, Vec<String>)> = Vec::new();
    let mut replies = 0;
    let mut saw_sdp = false;
    // Why the first reply that had SDP told nothing about audio.
    let mut no_audio: Option<String> = None;
    for t in replies_in {
        replies += 1;
        let from = match t.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", t.port),
            Some(ip) => format!("{ip}:{}", t.port),
            None => format!("port {}", t.port),
        };
        match advertised(t.content_type, t.body) {
            Advertised::Nothing => {}
            Advertised::Unusable(why) => {
                no_audio.get_or_insert_with(|| {
                    format!(
                        "the carrier's OPTIONS reply from {from} carried an unusable SDP body \
                         ({why})"
                    )
                });
            }
            Advertised::NoAudio(kinds) => {
                no_audio.get_or_insert_with(|| {
                    format!(
                        "the carrier's OPTIONS reply from {from} advertised no audio (its SDP \
                         has {})",
                        other_media(&kinds)
                    )
                });
            }
            Advertised::Audio(audio) => {
                saw_sdp = true;
                for f in evaluate(trunk, &audio) {
                    match merged.iter_mut().find(|(g, _)| *g == f) {
                        Some((_, froms)) => froms.push(from.clone()),
                        None => merged.push((f, vec![from.clone()])),
                    }
                }
            }
        }
    }
    let mut out: Vec<Finding> = merged
        .into_iter()
        .map(|(mut f, froms)| {
            f.message = format!("{} (SDP from {})", f.message, froms.join(", "));
            f
        })
        .collect();
    if !saw_sdp && replies > 0 {
        let message = match no_audio {
            Some(what) => {
                format!("{what}: codecs and SRTP are not advertised, so they were not checked")
            }
            None => "the carrier's OPTIONS reply carried no SDP: codecs and SRTP are not \
                     advertised, so they were not checked (many carriers show them only in \
                     an INVITE)"
                .to_string(),
        };
        out.push(finding(
            CheckId::MediaNotAdvertised,
            message,
            "nothing to change; make sure the carrier allows ulaw (or alaw) and matches the \
             trunk's media_encryption",
            None,
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// How many media kinds a "no audio" message names.
const SHOWN_KINDS: usize = 4;

/// `only m=video, m=image` for an SDP's media kinds, bounded: a carrier's text
/// of any length or number of lines gives a short message.
fn other_media(kinds: &[String]) -> String {
    if kinds.is_empty() {
        return "no media lines".to_string();
    }
    let mut lines: Vec<String> = kinds
        .iter()
        .take(SHOWN_KINDS)
        .map(|k| format!("m={}", k.chars().take(16).collect::<String>()))
        .collect();
    if kinds.len() > SHOWN_KINDS {
        lines.push("…".to_string());
    }
    format!("only {}", lines.join(", "))
}

fn finding(check: CheckId, message: String, remedy: &str, patch: Option<Value>) -> Finding {
    Finding {
        check,
        severity: check.severity(),
        message,
        remedy: remedy.to_string(),
        patch,
    }
}

fn names(codecs: &[Codec]) -> String {
    codecs
        .iter()
        .map(Codec::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the trunk's allow/disallow lets `c` through (`allow=all` lets
/// through every codec that `disallow` does not name).
fn trunk_allows(trunk: &Trunk, c: &Codec) -> bool {
    let name = c.name();
    if trunk.allow.iter().any(|a| a == "all") {
        return !trunk.disallow.iter().any(|d| d == name);
    }
    trunk.effective_codecs().iter().any(|e| e == name)
}

/// The findings for one reply's audio streams.
pub fn evaluate(trunk: &Trunk, audio: &[Media]) -> Vec<Finding> {
    let mut out = Vec::new();
    codecs(trunk, audio, &mut out);
    sdes(trunk, audio, &mut out);
    out
}

fn codecs(trunk: &Trunk, audio: &[Media], out: &mut Vec<Finding>) {
    let mut carrier: Vec<Codec> = Vec::new();
    for c in audio.iter().flat_map(Media::audio_codecs) {
        if !carrier.contains(&c) {
            carrier.push(c);
        }
    }
    let common: Vec<Codec> = BOLNA_CODECS
        .iter()
        .filter(|c| carrier.contains(c) && trunk_allows(trunk, c))
        .cloned()
        .collect();
    let carrier_g711: Vec<Codec> = carrier.iter().filter(|c| c.is_g711()).cloned().collect();
    if common.is_empty() {
        let (message, patch) = if carrier_g711.is_empty() {
            (
                format!(
                    "the carrier offers only {} and none of Bolna's codecs (ulaw, alaw): calls \
                     would fail with 488 Not Acceptable Here",
                    if carrier.is_empty() {
                        "unknown codecs".to_string()
                    } else {
                        names(&carrier)
                    }
                ),
                None,
            )
        } else {
            (
                format!(
                    "the carrier offers {} but the trunk's codecs ({}) exclude them: calls \
                     would fail with 488 Not Acceptable Here",
                    names(&carrier_g711),
                    trunk.effective_codecs().join(",")
                ),
                Some(json!({"allow": "ulaw,alaw", "disallow": "all"})),
            )
        };
        out.push(finding(
            CheckId::MediaCodecMismatch,
            message,
            "Bolna's SIP layer uses G.711 u-law (ulaw) audio by default: allow ulaw, or at \
             minimum alaw, on both the trunk and the carrier. G.729 and other compressed codecs \
             are not recommended",
            patch,
        ));
    } else if !carrier.contains(&Codec::Ulaw) && common == [Codec::Alaw] {
        out.push(finding(
            CheckId::MediaCarrierAlawOnly,
            format!(
                "the carrier offers alaw but not ulaw ({}): calls will use alaw, not Bolna's \
                 default ulaw",
                names(&carrier)
            ),
            "enable G.711 u-law (ulaw) on the carrier's trunk; alaw works, but ulaw is Bolna's \
             default",
            None,
        ));
    }
}

fn sdes(trunk: &Trunk, audio: &[Media], out: &mut Vec<Finding>) {
    let Some(mode) = trunk.media_encryption.valid() else {
        return;
    };
    // SDES keys only: a=crypto on a DTLS profile keys nothing.
    let crypto: Vec<&sdp::Crypto> = audio.iter().flat_map(|m| m.sdes_crypto()).collect();
    // Every line needs SRTP: a carrier with a plain line too takes plain RTP.
    let srtp_only = audio.iter().all(|m| m.profile.is_secure());
    let dtls = crypto.is_empty() && audio.iter().any(Media::dtls_keyed);
    let profiles = profiles_of(audio.iter());
    let mut unsupported: Vec<&str> = Vec::new();
    for c in crypto.iter().filter(|c| !c.suite.is_supported()) {
        if !unsupported.contains(&c.suite.as_str()) {
            unsupported.push(c.suite.as_str());
        }
    }
    let any_supported = crypto.iter().any(|c| c.suite.is_supported());
    let silence = "the call sets up but the media path never establishes: the caller hears \
                   silence (one-way audio)";

    match mode {
        MediaEncryption::Sdes if crypto.is_empty() => {
            let offered = if dtls {
                let keyed = profiles_of(audio.iter().filter(|m| m.dtls_keyed()));
                let plain = profiles_of(audio.iter().filter(|m| !m.dtls_keyed()));
                if plain.is_empty() {
                    format!("DTLS-SRTP ({keyed} with a=fingerprint), not SDES")
                } else {
                    format!(
                        "{plain} without a=crypto and DTLS-SRTP ({keyed} with a=fingerprint), \
                         not SDES"
                    )
                }
            } else {
                format!("{profiles} without a=crypto")
            };
            if trunk.media_encryption_optimistic && !srtp_only {
                out.push(finding(
                    CheckId::SdesCarrierPlainRtpOptimistic,
                    format!(
                        "media_encryption is \"sdes\" but the carrier offers {offered}: with \
                         media_encryption_optimistic=true Bolna falls back to clear RTP, so \
                         media is not encrypted"
                    ),
                    "confirm SRTP (SDES) is enabled on your provider's side to get encrypted \
                     media; if you don't need encrypted media, set media_encryption=\"no\"",
                    Some(json!({"media_encryption": "no"})),
                ));
            } else {
                out.push(finding(
                    CheckId::SdesCarrierPlainRtp,
                    format!(
                        "media_encryption is \"sdes\" but the carrier offers {offered}: an SRTP \
                         mismatch; {silence}"
                    ),
                    "confirm SRTP is enabled on your provider's side. For a quick test, set \
                     media_encryption_optimistic=true: Bolna will fall back to clear RTP if the \
                     carrier does not offer crypto in its SDP. If you don't need encrypted \
                     media, set media_encryption=\"no\" (PATCH {\"media_encryption\":\"no\"}) \
                     and use UDP or TCP transport",
                    (!srtp_only).then(|| json!({"media_encryption_optimistic": true})),
                ));
            }
        }
        MediaEncryption::Sdes if !any_supported => {
            out.push(finding(
                CheckId::SdesNoSupportedSuite,
                format!(
                    "the carrier's a=crypto offers only {}, which Bolna's SDES does not support \
                     (AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32): {silence}",
                    unsupported.join(", ")
                ),
                "enable AES_CM_128_HMAC_SHA1_80 (or _32) in the carrier's SRTP settings; if you \
                 don't need encrypted media, set media_encryption=\"no\" on both sides",
                None,
            ));
            unsupported.clear();
        }
        MediaEncryption::No if srtp_only => {
            let sdes_possible = any_supported;
            let patch = sdes_possible.then(|| sdes_patch(trunk));
            out.push(finding(
                CheckId::SdesCarrierSrtpOnly,
                format!(
                    "media_encryption is \"no\" but the carrier offers only SRTP ({profiles}{}): \
                     an SRTP mismatch; {silence}",
                    if dtls {
                        ", DTLS keying"
                    } else if crypto.is_empty() {
                        ""
                    } else {
                        " with a=crypto"
                    }
                ),
                if sdes_possible {
                    "disable mandatory SRTP on the carrier's side, or use SDES: set \
                     media_encryption=\"sdes\", which requires transport \"transport-tls\" \
                     (and the gateway port 5061)"
                } else {
                    "disable mandatory SRTP on the carrier's side: Bolna supports plain RTP and \
                     SDES (AES_CM_128_HMAC_SHA1_80/_32) only"
                },
                patch,
            ));
        }
        _ => {}
    }
    if !unsupported.is_empty() {
        out.push(finding(
            CheckId::SdesCryptoSuiteUnsupported,
            format!(
                "the carrier's a=crypto offers {}, not supported by Bolna's SDES (only \
                 AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 are)",
                unsupported.join(", ")
            ),
            "make sure the carrier also offers AES_CM_128_HMAC_SHA1_80 (or _32)",
            None,
        ));
    }
}

/// The distinct profiles of `lines`, in order: `RTP/AVP, RTP/SAVP`; the first
/// few only, so that a carrier's odd profiles cannot make a long message.
fn profiles_of<'a>(lines: impl Iterator<Item = &'a Media>) -> String {
    const SHOWN: usize = 6;
    let mut p: Vec<String> = Vec::new();
    for m in lines {
        let name = m.profile.to_string();
        if !p.contains(&name) {
            if p.len() == SHOWN {
                p.push("…".to_string());
                break;
            }
            p.push(name);
        }
    }
    p.join(", ")
}

/// `{"media_encryption":"sdes"}`, plus the TLS transport and port 5061 when the trunk lacks them.
fn sdes_patch(trunk: &Trunk) -> Value {
    if trunk.transport.valid() == Some(Transport::Tls) {
        return json!({"media_encryption": "sdes"});
    }
    let gateways: Vec<Value> = trunk
        .gateways
        .iter()
        .map(|g| json!({"gateway_address": g.address, "port": 5061, "priority": g.priority}))
        .collect();
    json!({
        "transport": "transport-tls",
        "media_encryption": "sdes",
        "gateways": gateways,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{parse_codecs, Field, Gateway};

    fn trunk(allow: &str, enc: MediaEncryption, transport: Transport) -> Trunk {
        let mut t = Trunk::with_defaults("t");
        t.allow = parse_codecs(allow);
        t.media_encryption = Field::Valid(enc);
        t.transport = Field::Valid(transport);
        t.gateways = vec![Gateway {
            address: "gw.example.com".into(),
            port: 5060,
            priority: 1,
        }];
        t
    }

    fn audio(sdp: &str) -> Vec<Media> {
        match advertised(Some("application/sdp"), sdp.as_bytes()) {
            Advertised::Audio(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn checks(f: &[Finding]) -> Vec<CheckId> {
        f.iter().map(|f| f.check).collect()
    }

    const G711: &str = "v=0\nm=audio 4000 RTP/AVP 0 8 101\na=rtpmap:101 telephone-event/8000\n";
    const ALAW: &str = "v=0\nm=audio 4000 RTP/AVP 8\n";
    const G729: &str = "v=0\nm=audio 4000 RTP/AVP 18 101\na=rtpmap:18 G729/8000\n";
    const SAVP: &str = "v=0\nm=audio 4000 RTP/SAVP 0\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n";
    const SAVP_ODD: &str = "v=0\nm=audio 4000 RTP/SAVP 0\n\
        a=crypto:1 AEAD_AES_256_GCM inline:AAAA\n";

    #[test]
    fn g711_on_both_sides_is_clean() {
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        assert!(evaluate(&t, &audio(G711)).is_empty());
    }

    #[test]
    fn compressed_only_carrier_is_a_488() {
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        let f = evaluate(&t, &audio(G729));
        assert_eq!(checks(&f), vec![CheckId::MediaCodecMismatch]);
        assert!(f[0].message.contains("only g729") && f[0].message.contains("488"));
        assert!(
            f[0].patch.is_none(),
            "the carrier must change, not the trunk"
        );
    }

    #[test]
    fn trunk_without_g711_gets_the_allow_patch() {
        let t = trunk("g729", MediaEncryption::No, Transport::Udp);
        let f = evaluate(&t, &audio(G711));
        assert_eq!(checks(&f), vec![CheckId::MediaCodecMismatch]);
        assert_eq!(
            f[0].patch,
            Some(json!({"allow": "ulaw,alaw", "disallow": "all"}))
        );
        // allow=all lets ulaw through.
        assert!(evaluate(
            &trunk("all", MediaEncryption::No, Transport::Udp),
            &audio(G711)
        )
        .is_empty());
    }

    #[test]
    fn alaw_only_carrier_is_a_warning() {
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        assert_eq!(
            checks(&evaluate(&t, &audio(ALAW))),
            vec![CheckId::MediaCarrierAlawOnly]
        );
        // The trunk without alaw: no common codec at all.
        let t = trunk("ulaw", MediaEncryption::No, Transport::Udp);
        assert_eq!(
            checks(&evaluate(&t, &audio(ALAW))),
            vec![CheckId::MediaCodecMismatch]
        );
    }

    #[test]
    fn sdes_against_plain_rtp() {
        let mut t = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        let f = evaluate(&t, &audio(G711));
        assert_eq!(checks(&f), vec![CheckId::SdesCarrierPlainRtp]);
        assert!(f[0].message.contains("one-way audio"), "{}", f[0].message);
        assert_eq!(
            f[0].patch,
            Some(json!({"media_encryption_optimistic": true}))
        );
        t.media_encryption_optimistic = true;
        let f = evaluate(&t, &audio(G711));
        assert_eq!(checks(&f), vec![CheckId::SdesCarrierPlainRtpOptimistic]);
        assert_eq!(f[0].patch, Some(json!({"media_encryption": "no"})));
    }

    #[test]
    fn plain_trunk_against_srtp_only() {
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        let f = evaluate(&t, &audio(SAVP));
        assert_eq!(checks(&f), vec![CheckId::SdesCarrierSrtpOnly]);
        let patch = f[0].patch.clone().unwrap();
        assert_eq!(patch["transport"], "transport-tls");
        assert_eq!(patch["media_encryption"], "sdes");
        assert_eq!(patch["gateways"][0]["port"], 5061);
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Tls);
        assert_eq!(
            evaluate(&t, &audio(SAVP))[0].patch,
            Some(json!({"media_encryption": "sdes"}))
        );
        // SDES trunk against the same carrier: fine.
        let t = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        assert!(evaluate(&t, &audio(SAVP)).is_empty());
    }

    #[test]
    fn unsupported_suites() {
        let t = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        let f = evaluate(&t, &audio(SAVP_ODD));
        assert_eq!(checks(&f), vec![CheckId::SdesNoSupportedSuite]);
        assert!(f[0].message.contains("AEAD_AES_256_GCM"));
        let mixed = format!("{SAVP}a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:BBBB\n");
        let f = evaluate(&t, &audio(&mixed));
        assert_eq!(checks(&f), vec![CheckId::SdesCryptoSuiteUnsupported]);
        let t = trunk("ulaw,alaw", MediaEncryption::No, Transport::Tls);
        let f = evaluate(&t, &audio(SAVP_ODD));
        assert_eq!(
            checks(&f),
            vec![
                CheckId::SdesCarrierSrtpOnly,
                CheckId::SdesCryptoSuiteUnsupported
            ]
        );
        assert!(f[0].patch.is_none(), "SDES would not help");
    }

    /// Capability SDP as carriers answer OPTIONS (port 0, RFC 3261 §11.2).
    const CAP_G711: &str = "v=0\r\no=- 0 0 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\n\
        t=0 0\r\nm=audio 0 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    const CAP_ALAW: &str = "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 0 RTP/AVP 8\r\n";
    const CAP_G729_SRTP: &str = "v=0\r\no=- 0 0 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\n\
        m=audio 0 RTP/SAVP 18\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
    const CAP_SAVP: &str = "v=0\r\nm=audio 0 RTP/SAVP 0 8\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|2^20|1:32\r\n";
    const CAP_SAVP_ODD: &str = "v=0\r\nm=audio 0 RTP/SAVP 0\r\n\
        a=crypto:1 AEAD_AES_256_GCM inline:AAAA\r\n";
    /// The same codecs in the clear and with SDES (best-effort SRTP).
    const CAP_BEST_EFFORT: &str = "v=0\r\nc=IN IP4 192.0.2.20\r\n\
        m=audio 0 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
        m=audio 0 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n\
        a=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:BBBB\r\n";

    #[test]
    fn port_zero_capabilities_get_the_whole_matrix() {
        let plain = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        let mut sdes = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        assert!(evaluate(&plain, &audio(CAP_G711)).is_empty());
        assert_eq!(
            checks(&evaluate(&plain, &audio(CAP_ALAW))),
            vec![CheckId::MediaCarrierAlawOnly]
        );
        let f = evaluate(&plain, &audio(CAP_G729_SRTP));
        assert_eq!(
            checks(&f),
            vec![CheckId::MediaCodecMismatch, CheckId::SdesCarrierSrtpOnly]
        );
        assert!(f[0].message.contains("only g729"), "{}", f[0].message);
        assert!(f[1].message.contains("RTP/SAVP with a=crypto"));
        assert_eq!(
            checks(&evaluate(&sdes, &audio(CAP_G729_SRTP))),
            vec![CheckId::MediaCodecMismatch]
        );
        assert_eq!(
            checks(&evaluate(&plain, &audio(CAP_SAVP))),
            vec![CheckId::SdesCarrierSrtpOnly]
        );
        assert!(evaluate(&sdes, &audio(CAP_SAVP)).is_empty());
        let f = evaluate(&sdes, &audio(CAP_G711));
        assert_eq!(checks(&f), vec![CheckId::SdesCarrierPlainRtp]);
        assert!(f[0].message.contains("RTP/AVP without a=crypto"));
        assert_eq!(
            checks(&evaluate(&sdes, &audio(CAP_SAVP_ODD))),
            vec![CheckId::SdesNoSupportedSuite]
        );
        sdes.media_encryption_optimistic = true;
        assert_eq!(
            checks(&evaluate(&sdes, &audio(CAP_G711))),
            vec![CheckId::SdesCarrierPlainRtpOptimistic]
        );
    }

    #[test]
    fn best_effort_srtp_suits_plain_and_sdes_trunks() {
        let a = audio(CAP_BEST_EFFORT);
        assert_eq!(a.len(), 2);
        for enc in [MediaEncryption::No, MediaEncryption::Sdes] {
            let f = evaluate(&trunk("ulaw,alaw", enc, Transport::Tls), &a);
            // Only the warning about the extra suite, never an SDES error.
            assert_eq!(
                checks(&f),
                vec![CheckId::SdesCryptoSuiteUnsupported],
                "{enc:?}"
            );
        }
        // The unsupported suite is named once even when two lines repeat it.
        let twice = format!(
            "{CAP_BEST_EFFORT}m=audio 0 RTP/SAVP 0\r\n\
             a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:CCCC\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:DDDD\r\n"
        );
        let t = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        let f = evaluate(&t, &audio(&twice));
        assert_eq!(f[0].message.matches("AES_256_CM_HMAC_SHA1_80").count(), 1);
    }

    #[test]
    fn dtls_keys_are_not_sdes() {
        let savpf = "v=0\r\nm=audio 0 RTP/SAVPF 0\r\n\
            a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6\r\na=setup:actpass\r\n";
        let udptls = "v=0\r\na=fingerprint:sha-256 19:E2:1C:3B\r\n\
            m=audio 0 UDP/TLS/RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n";
        let sdes = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        let plain = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        for (body, profile) in [(savpf, "RTP/SAVPF"), (udptls, "UDP/TLS/RTP/SAVP")] {
            let f = evaluate(&sdes, &audio(body));
            assert_eq!(checks(&f), vec![CheckId::SdesCarrierPlainRtp], "{body}");
            let want = format!("DTLS-SRTP ({profile} with a=fingerprint), not SDES");
            assert!(f[0].message.contains(&want), "{}", f[0].message);
            assert!(
                f[0].patch.is_none(),
                "falling back to clear RTP would not help"
            );
            let f = evaluate(&plain, &audio(body));
            assert_eq!(checks(&f), vec![CheckId::SdesCarrierSrtpOnly]);
            assert!(f[0].message.contains("DTLS keying"), "{}", f[0].message);
            assert!(f[0].patch.is_none(), "SDES would not help");
        }
        // A plain line beside the DTLS one: both are named, and the optimistic
        // fallback to clear RTP is offered.
        let mixed = format!("{savpf}m=audio 0 RTP/AVP 0\r\n");
        let f = evaluate(&sdes, &audio(&mixed));
        assert_eq!(checks(&f), vec![CheckId::SdesCarrierPlainRtp]);
        assert!(
            f[0].message
                .contains("RTP/AVP without a=crypto and DTLS-SRTP (RTP/SAVPF with a=fingerprint)"),
            "{}",
            f[0].message
        );
        assert_eq!(
            f[0].patch,
            Some(json!({"media_encryption_optimistic": true}))
        );
        assert!(evaluate(&plain, &audio(&mixed)).is_empty());
    }

    fn media_of_body(trunk: &Trunk, body: &str) -> Vec<Finding> {
        let reply = Reply {
            ip: Some("192.0.2.9".parse().unwrap()),
            port: 5060,
            content_type: Some("application/sdp"),
            body: body.as_bytes(),
        };
        media_of(trunk, [reply])
    }

    #[test]
    fn replies_with_port_zero_sdp_are_evaluated() {
        let plain = trunk("ulaw,alaw", MediaEncryption::No, Transport::Udp);
        let f = media_of_body(&plain, CAP_G729_SRTP);
        assert_eq!(
            checks(&f),
            vec![CheckId::MediaCodecMismatch, CheckId::SdesCarrierSrtpOnly]
        );
        assert!(f[0].message.ends_with("(SDP from 192.0.2.9:5060)"));
        // Video or T.38 only: no audio capability, and the message says which.
        let f = media_of_body(
            &plain,
            "v=0\r\nm=video 0 RTP/AVP 31 34\r\nm=image 0 udptl t38\r\n",
        );
        assert_eq!(checks(&f), vec![CheckId::MediaNotAdvertised]);
        assert!(
            f[0].message.contains(
                "from 192.0.2.9:5060 advertised no audio (its SDP has only m=video, m=image)"
            ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn what_is_not_sdp_is_not_advertised() {
        assert_eq!(advertised(None, b"v=0\n"), Advertised::Nothing);
        assert_eq!(
            advertised(Some("text/plain"), b"v=0\n"),
            Advertised::Nothing
        );
        assert_eq!(
            advertised(Some("Application/SDP; charset=x"), b"  \r\n"),
            Advertised::Nothing
        );
        assert!(matches!(
            advertised(Some("application/sdp"), b"<html>"),
            Advertised::Unusable(_)
        ));
        assert_eq!(
            advertised(
                Some("application/sdp"),
                b"v=0\nm=video 0 RTP/AVP 31\nm=image 0 udptl t38\n"
            ),
            Advertised::NoAudio(vec!["video".into(), "image".into()])
        );
        assert_eq!(
            advertised(Some("application/sdp"), b"v=0\r\ns=-\r\n"),
            Advertised::NoAudio(vec![])
        );
        assert_eq!(other_media(&[]), "no media lines");
        let many: Vec<String> = ["video", "image", "text", "application", "message"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            other_media(&many),
            "only m=video, m=image, m=text, m=application, …"
        );
        assert_eq!(other_media(&["x".repeat(500)]).len(), "only m=".len() + 16);
        let sdp: String = (0..1000)
            .map(|i| format!("m=kind{i} 0 RTP/AVP 0\n"))
            .collect();
        match advertised(Some("application/sdp"), format!("v=0\n{sdp}").as_bytes()) {
            Advertised::NoAudio(kinds) => assert_eq!(kinds.len(), SHOWN_KINDS + 1),
            other => panic!("{other:?}"),
        }
        let odd: String = (0..1000).map(|i| format!("m=audio 0 X/{i} 0\n")).collect();
        let t = trunk("ulaw,alaw", MediaEncryption::Sdes, Transport::Tls);
        let f = evaluate(&t, &audio(&format!("v=0\n{odd}")));
        let plain = f
            .iter()
            .find(|f| f.check == CheckId::SdesCarrierPlainRtp)
            .unwrap();
        assert!(plain
            .message
            .contains("X/0, X/1, X/2, X/3, X/4, X/5, … without"));
    }
}
