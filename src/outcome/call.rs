//! The evidence of one test call: how the signalling went (the call flow, the
//! final response, who ended the call and how) and what the media did in each
//! direction. [`crate::checks::call`] turns it into a verdict.

use std::net::SocketAddr;

use serde::Serialize;

use crate::transport::TransportFailure;
use crate::trunk::Transport;

/// How the signalling of the call ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signalling {
    /// A 2xx: the call was answered (and ended by BYE).
    Answered { code: u16 },
    /// `--until early-media`: media measured in a 18x with SDP, then CANCEL.
    EarlyMedia { code: u16 },
    /// A final 3xx-6xx (after any authentication).
    Rejected { code: u16, reason: String },
    /// A digest challenge could not be met.
    AuthFailed {
        code: u16,
        realm: Option<String>,
        why: String,
        /// Credentials were sent and challenged again (refused).
        answered: bool,
    },
    /// Nothing answered the INVITE (Timer B).
    NoResponse,
    /// It rang until the deadline; trunkprobe cancelled it.
    NoAnswer,
    /// Stopped (signal or `--max-duration`) before an answer; cancelled.
    Stopped,
    /// The connection (TCP/TLS) or socket failed.
    NetworkError { failure: TransportFailure },
}

/// One message of the call flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowLine {
    /// Milliseconds since the INVITE.
    pub at_ms: f64,
    /// `true`: trunkprobe to the carrier.
    pub sent: bool,
    pub line: String,
    /// The CSeq method.
    pub method: String,
    /// The whole message (escaped), with `--trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How the call was ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// Our BYE, with the carrier's final response code (`None`: no answer by Timer F).
    Bye { code: Option<u16> },
    /// Our CANCEL.
    Cancel,
    /// The carrier's BYE.
    Carrier,
    /// Nothing to end: rejected, or never answered.
    NothingToEnd,
}

/// What the carrier's SDP answer (or 18x) offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnswerSdp {
    /// Codec names, as Bolna names them (`ulaw`, `alaw`, `g729`, ...).
    pub codecs: Vec<String>,
    pub telephone_event: bool,
    /// `RTP/SAVP` with `a=crypto`.
    pub srtp: bool,
    /// Where the carrier asks for our RTP.
    pub rtp_address: Option<SocketAddr>,
}

/// One direction of the media.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirectionStats {
    pub packets: u64,
    pub bytes: u64,
    /// Sequence gaps (inbound), or the cumulative loss in the carrier's latest RTCP
    /// report about our stream (outbound; `None` without one).
    pub lost: Option<u64>,
    pub jitter_ms: Option<f64>,
    /// After the 18x/200 that started the media.
    pub first_packet_ms: Option<f64>,
    /// RMS level of the decoded audio, dBov (inbound only).
    pub level_dbov: Option<f64>,
    /// Share of packets above the silence threshold (inbound only).
    pub audio_ratio: Option<f64>,
}

/// What the media did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaEvidence {
    /// Our RTP address (c=/m= of the offer).
    pub local: Option<SocketAddr>,
    pub outbound: DirectionStats,
    pub inbound: DirectionStats,
    /// Addresses the carrier's RTP came from.
    pub rtp_from: Vec<SocketAddr>,
    /// Our own packets that came back (an RTP echo): evidence the carrier got them.
    pub echoed: u64,
    /// The carrier's RTCP said it received this many of ours.
    pub reported_received: Option<u64>,
    /// The carrier sent RTCP, none with a block for our stream.
    pub report_without_our_stream: bool,
    pub rtcp_received: u64,
    /// The media was SRTP, keyed by SDES both ways.
    pub srtp: bool,
    /// Why SRTP could not be keyed from the answer (then no media was sent).
    pub srtp_error: Option<String>,
    /// Inbound packets that failed SRTP authentication.
    pub srtp_auth_failures: u64,
    /// ITU-T G.107 estimate from the inbound stream.
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
    /// DTMF digits sent (RFC 4733).
    pub dtmf_sent: String,
    /// DTMF digits the carrier sent (RFC 4733).
    pub dtmf_received: String,
    /// `--dtmf` was given but the answer offers no telephone-event: none sent.
    pub dtmf_not_offered: bool,
    /// Half the RTCP round trip (RFC 3550 §6.4.1), when the carrier reported on us.
    pub one_way_delay_ms: Option<f64>,
}

/// Everything one test call showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvidence {
    /// The gateway name and the address called.
    pub host: String,
    pub gateway: SocketAddr,
    pub transport: Transport,
    pub request_uri: String,
    pub from: String,
    pub invite_bytes: usize,
    pub signalling: Signalling,
    pub ended_by: EndedBy,
    /// Provisional codes, in order.
    pub provisional: Vec<u16>,
    /// INVITE to the first 18x or 2xx.
    pub setup_ms: Option<f64>,
    /// INVITE to the 2xx.
    pub answer_ms: Option<f64>,
    /// The realm and algorithm of a challenge that was answered.
    pub authenticated: Option<(String, String)>,
    /// We offered SDES (`RTP/SAVP` with `a=crypto`).
    pub offered_srtp: bool,
    pub offered_codecs: Vec<String>,
    pub answer: Option<AnswerSdp>,
    pub media: Option<MediaEvidence>,
    pub flow: Vec<FlowLine>,
    /// Messages received that were not this call's.
    pub strays: u32,
    pub retransmissions: u32,
    pub duration_ms: f64,
    /// `--pcap`: every SIP, RTP and RTCP datagram of the call, in order.
    #[serde(skip)]
    pub packets: Vec<super::CapturedPacket>,
}
