//! The verdict of a test call: one of a closed set, each with its cause and
//! fix in the setup guide's words where it has them, and the PATCH body when an
//! update of the trunk fixes it. Pure: a function of the call's evidence.

use serde::Serialize;
use serde_json::{json, Value};

use crate::outcome::call::{CallEvidence, Signalling};
use crate::trunk::{Transport, BOLNA_SIP_IP};

/// What a test call shows. A closed set: exit codes, JSON and metrics rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    TwoWayAudio,
    NoInboundAudio,
    OutboundNotReceived,
    OutboundUnconfirmed,
    SilentInbound,
    SrtpMismatch,
    SrtpAuthFailed,
    CodecMismatch,
    RtpFromUnexpectedAddress,
    Rejected,
    AuthRejected,
    Busy,
    NoAnswer,
    Timeout,
    NetworkError,
}

impl Verdict {
    pub const ALL: [Verdict; 15] = [
        Verdict::TwoWayAudio,
        Verdict::NoInboundAudio,
        Verdict::OutboundNotReceived,
        Verdict::OutboundUnconfirmed,
        Verdict::SilentInbound,
        Verdict::SrtpMismatch,
        Verdict::SrtpAuthFailed,
        Verdict::CodecMismatch,
        Verdict::RtpFromUnexpectedAddress,
        Verdict::Rejected,
        Verdict::AuthRejected,
        Verdict::Busy,
        Verdict::NoAnswer,
        Verdict::Timeout,
        Verdict::NetworkError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TwoWayAudio => "two_way_audio",
            Verdict::NoInboundAudio => "no_inbound_audio",
            Verdict::OutboundNotReceived => "outbound_not_received",
            Verdict::OutboundUnconfirmed => "outbound_unconfirmed",
            Verdict::SilentInbound => "silent_inbound",
            Verdict::SrtpMismatch => "srtp_mismatch",
            Verdict::SrtpAuthFailed => "srtp_auth_failed",
            Verdict::CodecMismatch => "codec_mismatch",
            Verdict::RtpFromUnexpectedAddress => "rtp_from_unexpected_address",
            Verdict::Rejected => "rejected",
            Verdict::AuthRejected => "auth_rejected",
            Verdict::Busy => "busy",
            Verdict::NoAnswer => "no_answer",
            Verdict::Timeout => "timeout",
            Verdict::NetworkError => "network_error",
        }
    }
}

/// A verdict with what it means and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One line: what was observed.
    pub detail: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
    /// The `PATCH /sip-trunks/trunks/{id}` body that would fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
}

/// What the verdict needs besides the call itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// OPTIONS to the same gateway over UDP were answered (a silent INVITE
    /// then points at fragmentation).
    pub options_answered: bool,
    /// The same call retried over TCP after a UDP timeout, when it was.
    pub tcp_retry: Option<Box<CallEvidence>>,
    /// `media_encryption_optimistic` is already on.
    pub optimistic: bool,
}

const GUIDE_SRTP: &str = "The most common cause is an SRTP mismatch between Bolna and your \
    carrier: if the trunk has media_encryption=\"sdes\" but the carrier has SRTP disabled (or \
    vice versa), the call sets up but the media path never establishes.";
const GUIDE_FRAGMENTS: &str = "If your carrier sends large SIP headers (long Diversion, \
    P-Asserted-Identity, multiple Route headers), the INVITE may exceed the UDP MTU and get \
    fragmented or dropped silently.";

fn judged(v: Verdict, detail: String, cause: &str, fix: &str, patch: Option<Value>) -> Judgement {
    Judgement {
        verdict: v,
        detail,
        cause: (!cause.is_empty()).then(|| cause.to_string()),
        fix: (!fix.is_empty()).then(|| fix.to_string()),
        patch,
    }
}

/// The verdict of one call.
pub fn judge(call: &CallEvidence, ctx: &Context) -> Judgement {
    match &call.signalling {
        Signalling::NetworkError { failure } => judged(
            Verdict::NetworkError,
            format!("the call could not be placed: {}", failure.describe()),
            "the connection to the gateway failed before or while the INVITE was sent",
            "check the gateway address, port and transport; `trunkprobe check` shows the same \
             path with OPTIONS",
            None,
        ),
        Signalling::NoResponse => timeout(call, ctx),
        Signalling::NoAnswer => judged(
            Verdict::NoAnswer,
            format!(
                "it rang ({}) until the deadline; trunkprobe cancelled the call",
                codes(&call.provisional)
            ),
            "the called number did not answer",
            "call a number that answers (an echo service or an IVR), or allow longer with \
             --max-duration",
            None,
        ),
        Signalling::Stopped => judged(
            Verdict::NoAnswer,
            "stopped before an answer; trunkprobe cancelled the call".into(),
            "the call was interrupted (signal or --max-duration) before the carrier answered",
            "",
            None,
        ),
        Signalling::AuthFailed {
            code,
            realm,
            why,
            answered,
        } => {
            let realm = realm
                .as_deref()
                .map(|r| format!(" (realm {r:?})"))
                .unwrap_or_default();
            judged(
                Verdict::AuthRejected,
                format!("the carrier challenged the INVITE with {code}{realm}: {why}"),
                if *answered {
                    "the carrier does not accept the trunk's credentials"
                } else {
                    "the carrier asks for digest credentials"
                },
                if *answered {
                    "check auth_username and auth_password against the carrier's portal and \
                     update the trunk (PATCH with both fields)"
                } else {
                    "give the password (--auth-password-file or TRUNKPROBE_AUTH_PASSWORD); for an \
                     ip-based trunk, ask the carrier to allow-list 13.200.45.61 instead"
                },
                None,
            )
        }
        Signalling::Rejected { code, reason } => rejected(call, *code, reason),
        Signalling::Answered { .. } | Signalling::EarlyMedia { .. } => media(call, ctx),
    }
}

fn codes(c: &[u16]) -> String {
    if c.is_empty() {
        "no provisional response".into()
    } else {
        c.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn timeout(call: &CallEvidence, ctx: &Context) -> Judgement {
    let detail = format!(
        "no response to the INVITE ({} bytes) over {} within 32 s",
        call.invite_bytes,
        call.transport.as_str().to_ascii_uppercase()
    );
    if call.transport == Transport::Udp && ctx.options_answered {
        let tcp = match ctx.tcp_retry.as_deref().map(|t| &t.signalling) {
            Some(Signalling::NoResponse) | None => String::new(),
            Some(Signalling::NetworkError { .. }) => {
                " Retried over TCP: the carrier does not take TCP there either.".into()
            }
            Some(_) => {
                " Retried over TCP: the INVITE was answered there, which confirms it.".into()
            }
        };
        return judged(
            Verdict::Timeout,
            format!("{detail}, while OPTIONS over UDP are answered.{tcp}"),
            GUIDE_FRAGMENTS,
            "Switch `transport` to \"transport-tcp\" -- this avoids UDP fragmentation. You don't \
             need TLS for this; TCP alone is enough.",
            Some(json!({"transport": "transport-tcp"})),
        );
    }
    judged(
        Verdict::Timeout,
        detail,
        "the gateway does not answer INVITEs from this prober",
        &format!(
            "check the gateway address and port, and that the carrier accepts calls from this \
             address (Bolna's is {BOLNA_SIP_IP})"
        ),
        None,
    )
}

fn rejected(call: &CallEvidence, code: u16, reason: &str) -> Judgement {
    let detail = format!("the carrier rejected the call with {code} {reason}");
    match code {
        486 | 600 => judged(
            Verdict::Busy,
            detail,
            "the called number is busy",
            "call another number, or again later",
            None,
        ),
        488 | 415 if call.offered_srtp => judged(
            Verdict::SrtpMismatch,
            format!("{detail} to an SDES (RTP/SAVP) offer"),
            GUIDE_SRTP,
            "Confirm SRTP is enabled on your provider's side. If you need a quick test, set \
             media_encryption_optimistic=true -- Bolna will fall back to clear RTP if the carrier \
             does not offer crypto in its SDP. If you don't need encrypted media, set \
             media_encryption=\"no\" and use UDP or TCP transport.",
            Some(json!({"media_encryption_optimistic": true})),
        ),
        488 | 415 => judged(
            Verdict::CodecMismatch,
            format!(
                "{detail} to a plain RTP/AVP offer of {}",
                call.offered_codecs.join(", ")
            ),
            "the carrier accepts nothing in the offer: none of its codecs, or not clear RTP (a \
             carrier that requires SRTP answers a plain offer with 488 too)",
            "Bolna's SIP layer uses G.711 u-law (ulaw) audio by default. Ensure your trunk allows \
             ulaw, or at minimum alaw, on the carrier's side too; if the carrier requires SRTP, \
             use transport-tls with media_encryption=\"sdes\"",
            Some(json!({"allow": "ulaw,alaw", "disallow": "all"})),
        ),
        403 => judged(
            Verdict::Rejected,
            detail,
            &format!(
                "the carrier refuses calls from this source: it must allow-list Bolna's IP \
                 {BOLNA_SIP_IP}, and an ip-based trunk only accepts calls from that IP (a test \
                 from elsewhere is refused the same way)"
            ),
            &format!(
                "whitelist {BOLNA_SIP_IP} on your SIP trunk (IP whitelist, allowed IP, trusted IP \
                 or ACL); test from an address the carrier allows"
            ),
            None,
        ),
        404 | 484 | 604 => judged(
            Verdict::Rejected,
            detail,
            "the carrier does not know the called number",
            "check --to (E.164, with + when outbound_leading_plus_enabled)",
            None,
        ),
        _ => judged(
            Verdict::Rejected,
            detail,
            "the carrier refused the call",
            "the code and reason say why; the carrier's call logs for this Call-ID say more",
            None,
        ),
    }
}

fn media(call: &CallEvidence, ctx: &Context) -> Judgement {
    let Some(answer) = &call.answer else {
        return judged(
            Verdict::CodecMismatch,
            "the carrier answered without an SDP".into(),
            "no media was negotiated",
            "check the carrier's codec settings: ulaw or alaw must be offered",
            None,
        );
    };
    if call.offered_srtp && !answer.srtp && !ctx.optimistic {
        let patch = json!({"media_encryption_optimistic": true});
        return judged(
            Verdict::SrtpMismatch,
            "we offered SDES (RTP/SAVP with a=crypto); the carrier answered plain RTP/AVP".into(),
            GUIDE_SRTP,
            "Confirm SRTP is enabled on your provider's side, or set \
             media_encryption_optimistic=true, or media_encryption=\"no\" with UDP or TCP.",
            Some(patch),
        );
    }
    let common: Vec<&String> = answer
        .codecs
        .iter()
        .filter(|c| call.offered_codecs.contains(c))
        .collect();
    if common.is_empty() {
        return judged(
            Verdict::CodecMismatch,
            format!(
                "the carrier answered with {} for an offer of {}",
                if answer.codecs.is_empty() {
                    "no codec".to_string()
                } else {
                    answer.codecs.join(", ")
                },
                call.offered_codecs.join(", ")
            ),
            "no codec in common",
            "Ensure your trunk allows ulaw, or at minimum alaw, on both sides",
            Some(json!({"allow": "ulaw,alaw", "disallow": "all"})),
        );
    }
    let Some(m) = &call.media else {
        return judged(
            Verdict::NoInboundAudio,
            "no media was exchanged".into(),
            "",
            "",
            None,
        );
    };
    if let Some(why) = &m.srtp_error {
        return judged(
            Verdict::SrtpMismatch,
            format!("SRTP could not be keyed: {why}; no media was sent"),
            GUIDE_SRTP,
            "Confirm SRTP (SDES, AES_CM_128_HMAC_SHA1_80 or _32) is enabled on your provider's \
             side, or set media_encryption_optimistic=true.",
            Some(json!({"media_encryption_optimistic": true})),
        );
    }
    if m.inbound.packets == 0 && m.srtp_auth_failures == 0 {
        return judged(
            Verdict::NoInboundAudio,
            format!(
                "we sent {} RTP packets and received none",
                m.outbound.packets
            ),
            "one-way audio: the carrier's RTP never reached this prober (a firewall or NAT on \
             the path, or the carrier sends to another address than our SDP's)",
            "check that the carrier sends RTP to the address in Bolna's SDP and that UDP from \
             the carrier's media range is allowed; rtp_symmetric=true lets Bolna answer the \
             address the carrier actually sends from",
            None,
        );
    }
    if m.srtp_auth_failures > 0 && m.inbound.packets == 0 {
        return judged(
            Verdict::SrtpAuthFailed,
            format!(
                "{} SRTP packets failed authentication; none could be decrypted",
                m.srtp_auth_failures
            ),
            "the carrier encrypts with other keys than the ones it answered in a=crypto",
            "a carrier-side SRTP bug or a middlebox rewriting SDP: ask the carrier; \
             media_encryption=\"no\" avoids it",
            None,
        );
    }
    let outbound_received = m.echoed > 0 || m.reported_received.is_some_and(|n| n > 0);
    let outbound_denied =
        m.reported_received == Some(0) || (m.report_without_our_stream && m.echoed == 0);
    if outbound_denied {
        return judged(
            Verdict::OutboundNotReceived,
            format!(
                "the carrier's RTCP shows none of our {} RTP packets arrived",
                m.outbound.packets
            ),
            "one-way audio from Bolna's side: the carrier never gets the RTP sent to the \
             address in its SDP",
            &format!(
                "ask the carrier to accept RTP from Bolna's IP {BOLNA_SIP_IP} on its media ports"
            ),
            None,
        );
    }
    if m.inbound.audio_ratio.is_some_and(|r| r < 0.05) {
        return judged(
            Verdict::SilentInbound,
            format!(
                "{} RTP packets arrived, carrying silence (level {})",
                m.inbound.packets,
                m.inbound
                    .level_dbov
                    .map(|l| format!("{l:.0} dBov"))
                    .unwrap_or_else(|| "unknown".into())
            ),
            "the media path works, but the far end sends no audio (a muted line, comfort noise, \
             or an answering system that waits)",
            "call a number that plays audio (an echo service or an IVR)",
            None,
        );
    }
    if let Some(expected) = answer.rtp_address {
        let elsewhere: Vec<String> = m
            .rtp_from
            .iter()
            .filter(|a| **a != expected)
            .map(ToString::to_string)
            .collect();
        if !elsewhere.is_empty() && outbound_received {
            return judged(
                Verdict::RtpFromUnexpectedAddress,
                format!(
                    "the carrier's SDP names {expected}, its RTP comes from {}",
                    elsewhere.join(", ")
                ),
                "a NAT or media relay between the carrier and Bolna: audio works only because \
                 Bolna sends back to where the RTP comes from",
                "keep rtp_symmetric=true and force_rport=true on the trunk",
                Some(json!({"rtp_symmetric": true, "force_rport": true})),
            );
        }
    }
    if !outbound_received {
        return judged(
            Verdict::OutboundUnconfirmed,
            format!(
                "{} RTP packets arrived; the carrier sent no RTCP receiver report and no echo, so \
                 whether it received our {} packets is not known",
                m.inbound.packets, m.outbound.packets
            ),
            "",
            "call an echo service to confirm both directions",
            None,
        );
    }
    judged(
        Verdict::TwoWayAudio,
        format!(
            "RTP both ways: {} packets sent, {} received{}",
            m.outbound.packets,
            m.inbound.packets,
            m.mos.map(|v| format!(", MOS {v:.1}")).unwrap_or_default()
        ),
        "",
        "",
        None,
    )
}

#[cfg(test)]
mod tests;
