//! UDP fragmentation: the size ladder's rungs and padding, the estimate of the
//! INVITE Bolna would send on a trunk, the RFC 3261 §18.1.1 size rule, and the
//! verdict and findings drawn from a ladder run.
//!
//! Pure: the ladder's sockets live in [`crate::transport::ladder`] and its
//! orchestration (TCP fallback included) in [`crate::probe::mtu`].

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{CheckId, Finding};
use crate::probe::Outcome;
use crate::sip::{build_options, OptionsSpec, TransactionIds};
use crate::trunk::{MediaEncryption, Trunk};
use crate::util::ser_opt_ms;

/// Total message sizes of the default ladder: a bare OPTIONS up to a 4 kB INVITE.
pub const DEFAULT_SIZES: [usize; 6] = [600, 1200, 1400, 1600, 2400, 4000];

/// The harmless extension header that carries the padding (RFC 3261 §8.2.2:
/// unknown headers are ignored).
pub const PAD_HEADER: &str = "X-Trunkprobe-Pad";

/// Smallest and largest rung accepted from the command line (a UDP datagram
/// carries at most 65,507 bytes over IPv4).
pub const MIN_RUNG: usize = 200;
pub const MAX_RUNG: usize = 65_000;

/// RFC 3261 §18.1.1: the size above which a request must go over a
/// congestion-controlled transport when the path MTU is unknown.
pub const UNKNOWN_MTU_LIMIT: usize = 1300;

/// Bytes `PAD_HEADER: ` and the line's CRLF add around the padding value.
const PAD_OVERHEAD: usize = PAD_HEADER.len() + 2 + 2;

/// Parses a comma-separated ladder (`600,1200,4000`): sorted, deduplicated,
/// each within [`MIN_RUNG`]..=[`MAX_RUNG`].
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a message size in bytes"))?;
        if !(MIN_RUNG..=MAX_RUNG).contains(&n) {
            return Err(format!(
                "{n} is outside {MIN_RUNG}-{MAX_RUNG} bytes (a UDP datagram holds at most 65,507)"
            ));
        }
        sizes.push(n);
    }
    if sizes.is_empty() {
        return Err("no sizes given".into());
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// The padding value that turns a message of `unpadded` bytes into exactly
/// `size` bytes once one `X-Trunkprobe-Pad: value` line is added; `None` when
/// the message is already too large for that.
pub fn padding(unpadded: usize, size: usize) -> Option<String> {
    let n = size.checked_sub(unpadded + PAD_OVERHEAD)?;
    (n > 0).then(|| "x".repeat(n))
}

/// The OPTIONS of one rung: `spec` plus a pad header making it exactly `size`
/// bytes, or unpadded when even that is larger than `size`.
pub fn padded_options(spec: &OptionsSpec, ids: &TransactionIds, size: usize) -> Vec<u8> {
    let unpadded = build_options(spec, ids);
    match padding(unpadded.len(), size) {
        Some(pad) => {
            let mut spec = spec.clone();
            spec.extra_headers.push((PAD_HEADER.to_string(), pad));
            build_options(&spec, ids)
        }
        None => unpadded,
    }
}

/// The largest request RFC 3261 §18.1.1 allows over UDP: 200 bytes below the
/// path MTU, or 1300 bytes when the MTU is unknown.
pub fn rfc3261_limit(path_mtu: Option<u32>) -> usize {
    match path_mtu {
        Some(mtu) => (mtu as usize).saturating_sub(200),
        None => UNKNOWN_MTU_LIMIT,
    }
}

/// Whether a request of `size` bytes must use a congestion-controlled transport (TCP).
pub fn needs_congestion_control(size: usize, path_mtu: Option<u32>) -> bool {
    size > rfc3261_limit(path_mtu)
}

/// The size of the INVITE Bolna would send on a trunk, and its SDP part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InviteEstimate {
    pub bytes: usize,
    pub sdp_bytes: usize,
}

/// Estimates the INVITE Bolna (an Asterisk PJSIP stack at 13.200.45.61) would
/// send to `host:port`: its typical headers (Via, Route, Contact, one Diversion,
/// P-Asserted-Identity, Allow, Supported, session timers) and an SDP with the
/// trunk's codecs, SDES `a=crypto` lines when `media_encryption=sdes`, and ICE
/// attributes when `ice_support=true`.
pub fn estimate_invite(trunk: &Trunk, host: &str, port: u16) -> InviteEstimate {
    let (headers, sdp) = render_invite(trunk, host, port);
    InviteEstimate {
        bytes: headers.len() + sdp.len(),
        sdp_bytes: sdp.len(),
    }
}

/// The estimated INVITE as text: (start line and headers with the blank line, SDP).
/// Identifiers are placeholders of realistic length.
pub fn render_invite(trunk: &Trunk, host: &str, port: u16) -> (String, String) {
    const BOLNA: &str = "13.200.45.61";
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let sdes = trunk.media_encryption.valid() == Some(MediaEncryption::Sdes);

    let mut payloads = Vec::new();
    let mut attrs = String::new();
    for (i, codec) in trunk.effective_codecs().iter().enumerate() {
        let (pt, map, fmtp) = codec_sdp(codec, 96 + i);
        payloads.push(pt.to_string());
        attrs.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        if let Some(f) = fmtp {
            attrs.push_str(&format!("a=fmtp:{pt} {f}\r\n"));
        }
    }
    payloads.push("101".into());
    attrs.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    let mut sdp = format!(
        "v=0\r\no=- 1716823451 1716823453 IN IP4 {BOLNA}\r\ns=Asterisk\r\nc=IN IP4 {BOLNA}\r\n\
         t=0 0\r\nm=audio 14382 {} {}\r\n{attrs}a=ptime:20\r\na=maxptime:150\r\n",
        if sdes { "RTP/SAVP" } else { "RTP/AVP" },
        payloads.join(" ")
    );
    if trunk.ice_support {
        sdp.push_str(
            "a=ice-ufrag:5d1f3a7c2b0e6f48\r\na=ice-pwd:0b9c2e7f4a1d6c3e8f5a2b9d0c7e4f1a\r\n\
             a=candidate:Hd0c82d3d 1 UDP 2130706431 13.200.45.61 14382 typ host\r\n\
             a=candidate:Hd0c82d3d 2 UDP 2130706430 13.200.45.61 14383 typ host\r\n",
        );
    }
    if sdes {
        sdp.push_str(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n",
        );
    }
    sdp.push_str("a=sendrecv\r\n");

    let headers = format!(
        "INVITE sip:+14155550123@{host}:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {BOLNA}:5060;rport;branch=z9hG4bKPj8c1e4f7a-2b3d-4e5f-9a0b-1c2d3e4f5a6b\r\n\
         From: \"Bolna\" <sip:+919876543210@{BOLNA}>;tag=3f6a1c9e-7b2d-4c8e-a1f0-5d9b2e7c4a13\r\n\
         To: <sip:+14155550123@{host}>\r\n\
         Contact: <sip:asterisk@{BOLNA}:5060>\r\n\
         Call-ID: 9d7b3e1a-4c6f-4a2e-8b0d-2f5c7e9a1b3d\r\n\
         CSeq: 18234 INVITE\r\n\
         Route: <sip:{host}:{port};lr>\r\n\
         Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, INFO, MESSAGE, REFER\r\n\
         Supported: 100rel, timer, replaces, norefersub, histinfo\r\n\
         Session-Expires: 1800\r\n\
         Min-SE: 90\r\n\
         P-Asserted-Identity: \"Bolna\" <sip:+919876543210@{BOLNA}>\r\n\
         Diversion: <sip:+919876543210@{BOLNA}>;reason=unconditional;privacy=off;counter=1\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: Asterisk PBX 20.5.2\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n",
        sdp.len()
    );
    (headers, sdp)
}

/// Payload type, rtpmap value and fmtp of a codec name as Asterisk offers it;
/// unknown codecs get the dynamic payload type `dynamic`.
fn codec_sdp(codec: &str, dynamic: usize) -> (usize, String, Option<&'static str>) {
    match codec {
        "ulaw" => (0, "PCMU/8000".into(), None),
        "alaw" => (8, "PCMA/8000".into(), None),
        "gsm" => (3, "GSM/8000".into(), None),
        "g722" => (9, "G722/8000".into(), None),
        "g729" => (18, "G729/8000".into(), Some("annexb=no")),
        "opus" => (107, "opus/48000/2".into(), Some("useinbandfec=1")),
        other => (
            dynamic,
            format!("{}/8000", other.to_ascii_uppercase()),
            None,
        ),
    }
}

/// What became of one rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RungStatus {
    /// A final response came back: the message arrived whole.
    Answered,
    /// `513 Message Too Large`: it arrived, and the carrier refuses messages this size.
    TooLarge,
    /// No final response within the rung's deadline.
    Lost,
    /// The socket failed (refused, message too long for the local stack, ...).
    Failed,
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// Requested total message size.
    pub size: usize,
    /// Bytes actually sent (larger than `size` only when the bare request is).
    pub bytes: usize,
    pub status: RungStatus,
    pub status_code: Option<u16>,
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
    pub retransmissions: u32,
    /// The socket error of a `failed` rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Rung {
    pub fn passed(&self) -> bool {
        self.status == RungStatus::Answered
    }
}

/// What the ladder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every size was answered: no fragmentation loss on this path.
    AllAnswered,
    /// Small messages answered, every larger one lost: fragments are dropped.
    LargeLost,
    /// Losses not ordered by size (packet loss, rate limiting): rerun.
    Irregular,
    /// Not even the smallest size was answered.
    NoneAnswered,
}

/// Largest size answered, first (smallest) size not answered, and the verdict.
pub fn verdict(rungs: &[Rung]) -> (Verdict, Option<usize>, Option<usize>) {
    let largest = rungs.iter().filter(|r| r.passed()).map(|r| r.size).max();
    let first_lost = rungs.iter().filter(|r| !r.passed()).map(|r| r.size).min();
    let v = match (largest, first_lost) {
        (_, None) => Verdict::AllAnswered,
        (None, Some(_)) => Verdict::NoneAnswered,
        (Some(ok), Some(lost)) if ok < lost => Verdict::LargeLost,
        _ => Verdict::Irregular,
    };
    (v, largest, first_lost)
}

/// `IP_MTU_DISCOVER` of the ladder's socket, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PmtuDiscovery {
    /// Never set DF; fragment locally.
    Dont,
    /// The Linux default: DF while the datagram fits the known path MTU, fragment above it.
    Want,
    /// Always DF; larger datagrams fail with EMSGSIZE.
    Do,
    Probe,
    Interface,
    Omit,
    Other,
}

impl PmtuDiscovery {
    /// From the `IP_PMTUDISC_*` value.
    pub fn from_raw(v: i32) -> PmtuDiscovery {
        match v {
            0 => PmtuDiscovery::Dont,
            1 => PmtuDiscovery::Want,
            2 => PmtuDiscovery::Do,
            3 => PmtuDiscovery::Probe,
            4 => PmtuDiscovery::Interface,
            5 => PmtuDiscovery::Omit,
            _ => PmtuDiscovery::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PmtuDiscovery::Dont => "dont",
            PmtuDiscovery::Want => "want",
            PmtuDiscovery::Do => "do",
            PmtuDiscovery::Probe => "probe",
            PmtuDiscovery::Interface => "interface",
            PmtuDiscovery::Omit => "omit",
            PmtuDiscovery::Other => "other",
        }
    }
}

/// The same gateway probed over TCP after UDP lost large messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpFallback {
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    #[serde(rename = "rtt_ms", serialize_with = "ser_opt_ms")]
    pub rtt: Option<Duration>,
}

impl TcpFallback {
    /// Whether a SIP stack answered over TCP (any final response).
    pub fn works(&self) -> bool {
        matches!(self.outcome, Outcome::Ok | Outcome::SipError)
    }

    fn describe(&self, addr: SocketAddr) -> String {
        match (self.works(), self.status_code) {
            (true, Some(code)) => format!(
                "TCP works there: {addr} answered OPTIONS over TCP with {code} {}",
                self.reason.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            _ => format!(
                "TCP does not work there yet: OPTIONS over TCP to {addr} ended in {}; ask the \
                 carrier to enable SIP over TCP before switching",
                self.outcome.as_str()
            ),
        }
    }
}

/// Everything one ladder run found on one UDP target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtuResult {
    /// The probed address.
    pub target: SocketAddr,
    pub largest_answered: Option<usize>,
    pub first_lost: Option<usize>,
    /// `IP_MTU` of the connected socket after the ladder: the path MTU the kernel learned.
    pub path_mtu: Option<u32>,
    pub pmtu_discovery: Option<PmtuDiscovery>,
    pub verdict: Verdict,
    pub sizes: Vec<Rung>,
    /// Estimated size of Bolna's INVITE on this trunk (set by the caller that knows the trunk).
    pub invite_bytes: Option<usize>,
    /// RFC 3261 §18.1.1 limit for this path.
    pub rfc3261_limit: usize,
    /// The same address over TCP, probed when UDP lost messages.
    pub tcp_fallback: Option<TcpFallback>,
}

impl MtuResult {
    /// A result from the rungs and socket facts; verdict and limit derived.
    pub fn new(
        target: SocketAddr,
        sizes: Vec<Rung>,
        path_mtu: Option<u32>,
        pmtu_discovery: Option<PmtuDiscovery>,
    ) -> MtuResult {
        let (verdict, largest_answered, first_lost) = verdict(&sizes);
        MtuResult {
            target,
            largest_answered,
            first_lost,
            path_mtu,
            pmtu_discovery,
            verdict,
            sizes,
            invite_bytes: None,
            rfc3261_limit: rfc3261_limit(path_mtu),
            tcp_fallback: None,
        }
    }

    /// Whether the TCP fallback is worth probing: UDP lost something.
    pub fn wants_tcp_fallback(&self) -> bool {
        self.verdict != Verdict::AllAnswered
    }
}

/// The guide's troubleshooting entry "Outbound INVITE fails or rings forever on a
/// particular carrier", quoted.
pub const GUIDE_FIX: &str = "Switch `transport` to \"transport-tcp\" -- this avoids UDP \
     fragmentation. You don't need TLS for this; TCP alone is enough.";
const GUIDE_CAUSE: &str = "If your carrier sends large SIP headers (long Diversion, \
     P-Asserted-Identity, multiple Route headers), the INVITE may exceed the UDP MTU and get \
     fragmented or dropped silently.";

/// Findings of one ladder run on a UDP trunk whose INVITE is estimated at `invite`.
pub fn findings(result: &MtuResult, invite: InviteEstimate) -> Vec<Finding> {
    let addr = result.target;
    let patch = Some(json!({"transport": "transport-tcp"}));
    let tcp = result
        .tcp_fallback
        .as_ref()
        .map(|t| format!(" {}.", t.describe(addr)))
        .unwrap_or_default();
    let mtu = match result.path_mtu {
        Some(m) => format!("path MTU {m}"),
        None => "path MTU unknown".to_string(),
    };
    let mut out = Vec::new();
    let mut add = |check: CheckId, message: String, remedy: String, patch: Option<_>| {
        out.push(Finding {
            check,
            severity: check.severity(),
            message,
            remedy,
            patch,
        })
    };
    match (result.verdict, result.largest_answered, result.first_lost) {
        (Verdict::LargeLost, Some(ok), Some(lost)) => {
            let fate = if invite.bytes >= lost {
                "would be lost"
            } else if invite.bytes > ok {
                "is in between and at risk"
            } else {
                "fits today, but longer Diversion/Route headers would push it over"
            };
            add(
                CheckId::UdpLargeMessagesLost,
                format!(
                    "UDP to {addr}: OPTIONS up to {ok} bytes answered, {lost} bytes and larger \
                     lost ({mtu}); Bolna's INVITE on this trunk is about {} bytes and {fate}. \
                     {GUIDE_CAUSE}",
                    invite.bytes
                ),
                format!("{GUIDE_FIX}{tcp}"),
                patch.clone(),
            );
        }
        (Verdict::Irregular, ..) | (Verdict::NoneAnswered, ..) => {
            let lost: Vec<String> = result
                .sizes
                .iter()
                .filter(|r| !r.passed())
                .map(|r| r.size.to_string())
                .collect();
            let what = if result.verdict == Verdict::NoneAnswered {
                "no size of the ladder was answered"
            } else {
                "losses were not in size order"
            };
            add(
                CheckId::MtuLadderInconclusive,
                format!(
                    "UDP to {addr}: the size ladder lost {} bytes; {what} (packet loss or rate \
                     limiting?), so no conclusion on fragmentation.{tcp}",
                    lost.join(", ")
                ),
                "Run `trunkprobe check --mtu` again; if larger sizes keep failing, switch \
                 `transport` to \"transport-tcp\"."
                    .into(),
                None,
            );
        }
        _ => {}
    }
    if needs_congestion_control(invite.bytes, result.path_mtu) {
        let rule = match result.path_mtu {
            Some(m) => format!("within 200 bytes of the path MTU {m}"),
            None => format!("above {UNKNOWN_MTU_LIMIT} bytes with the path MTU unknown"),
        };
        add(
            CheckId::InviteExceedsUdpLimit,
            format!(
                "Bolna's INVITE on this trunk is about {} bytes ({} of SDP), {rule}: RFC 3261 \
                 §18.1.1 requires a congestion-controlled transport (TCP) for it.",
                invite.bytes, invite.sdp_bytes
            ),
            GUIDE_FIX.to_string(),
            patch,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{parse_codecs, Field, Transport};

    fn ids() -> TransactionIds {
        TransactionIds {
            branch: "z9hG4bKabcdefghijklmnop0123".into(),
            call_id: "callid0123456789callid0123456789".into(),
            from_tag: "fromtag012345678".into(),
            cseq: 42,
        }
    }

    fn spec(host: &str, local: &str) -> OptionsSpec {
        OptionsSpec {
            target_host: host.into(),
            target_port: 5060,
            transport: Transport::Udp,
            local: local.parse().unwrap(),
            user_agent: "trunkprobe/0.1.0".into(),
            extra_headers: vec![],
        }
    }

    #[test]
    fn every_rung_has_exactly_the_requested_size() {
        for (host, local) in [
            ("gw.example.com", "192.0.2.10:40000"),
            ("10.213.0.1", "10.213.0.2:5"),
            ("2001:db8::1", "[2001:db8::2]:65535"),
            (
                "a-rather-long-gateway-name.pstn.carrier.example.net",
                "0.0.0.0:1",
            ),
        ] {
            for size in DEFAULT_SIZES
                .into_iter()
                .chain([1, 501, 1499, 9000, MAX_RUNG])
            {
                let s = spec(host, local);
                let bare = build_options(&s, &ids()).len();
                let msg = padded_options(&s, &ids(), size);
                let text = String::from_utf8(msg.clone()).unwrap();
                if size > bare + PAD_OVERHEAD {
                    assert_eq!(msg.len(), size, "{host} {size}: {text}");
                    assert!(text.contains("\r\nX-Trunkprobe-Pad: xxx"), "{text}");
                    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
                } else {
                    assert_eq!(msg.len(), bare, "{host} {size}");
                }
            }
        }
    }

    #[test]
    fn padding_needs_room_for_the_header_line() {
        assert_eq!(padding(500, 600).unwrap().len(), 80);
        assert_eq!(padding(500, 520), None);
        assert_eq!(padding(500, 521).unwrap().len(), 1);
        assert_eq!(padding(700, 600), None);
    }

    #[test]
    fn sizes_parse_sorted_deduplicated_and_bounded() {
        assert_eq!(parse_sizes("1600, 600,600").unwrap(), vec![600, 1600]);
        assert!(parse_sizes("100").is_err());
        assert!(parse_sizes("70000").is_err());
        assert!(parse_sizes("big").is_err());
        assert!(parse_sizes(" , ").is_err());
    }

    #[test]
    fn invite_estimate_grows_with_codecs_sdes_and_ice() {
        let mut t = Trunk::with_defaults("t");
        let base = estimate_invite(&t, "sip.example.com", 5060);
        let (headers, sdp) = render_invite(&t, "sip.example.com", 5060);
        assert_eq!(base.bytes, headers.len() + sdp.len());
        assert_eq!(base.sdp_bytes, sdp.len());
        assert!(headers.contains(&format!("Content-Length: {}\r\n\r\n", sdp.len())));
        assert!(sdp.contains("m=audio 14382 RTP/AVP 0 8 101\r\n"), "{sdp}");
        assert!(headers.contains("Diversion: ") && headers.contains("P-Asserted-Identity: "));
        // A realistic G.711 INVITE is 1.1-1.4 kB: above the §18.1.1 limit for an unknown MTU.
        assert!((1000..1400).contains(&base.bytes), "{}", base.bytes);

        t.allow = parse_codecs("ulaw,alaw,g729,opus,speex");
        let more = estimate_invite(&t, "sip.example.com", 5060);
        let (_, sdp) = render_invite(&t, "sip.example.com", 5060);
        assert!(sdp.contains("RTP/AVP 0 8 18 107 100 101"), "{sdp}");
        assert!(sdp.contains("a=fmtp:18 annexb=no") && sdp.contains("SPEEX/8000"));
        assert!(more.bytes > base.bytes);

        t.allow = parse_codecs("ulaw,alaw");
        t.transport = Field::Valid(Transport::Tls);
        t.media_encryption = Field::Valid(MediaEncryption::Sdes);
        let (_, sdp) = render_invite(&t, "sip.example.com", 5061);
        assert!(sdp.contains("RTP/SAVP") && sdp.matches("a=crypto:").count() == 2);
        let sdes = estimate_invite(&t, "sip.example.com", 5061);
        assert!(sdes.bytes > base.bytes + 150);

        t.ice_support = true;
        assert!(estimate_invite(&t, "sip.example.com", 5061).bytes > sdes.bytes + 150);
        // IPv6 gateways are bracketed in URIs.
        let (headers, _) = render_invite(&t, "2001:db8::1", 5060);
        assert!(headers.starts_with("INVITE sip:+14155550123@[2001:db8::1]:5060 SIP/2.0\r\n"));
    }

    #[test]
    fn rfc3261_limit_is_200_below_the_mtu_or_1300() {
        assert_eq!(rfc3261_limit(None), 1300);
        assert_eq!(rfc3261_limit(Some(1500)), 1300);
        assert_eq!(rfc3261_limit(Some(1280)), 1080);
        assert_eq!(rfc3261_limit(Some(100)), 0);
        assert!(!needs_congestion_control(1300, None));
        assert!(needs_congestion_control(1301, None));
        assert!(needs_congestion_control(1081, Some(1280)));
        assert!(!needs_congestion_control(1080, Some(1280)));
        assert!(!needs_congestion_control(4000, Some(65_536)));
    }

    fn rung(size: usize, status: RungStatus) -> Rung {
        Rung {
            size,
            bytes: size,
            status,
            status_code: (status == RungStatus::Answered).then_some(200),
            rtt: None,
            retransmissions: 0,
            detail: None,
        }
    }

    fn ladder(statuses: &[RungStatus]) -> Vec<Rung> {
        DEFAULT_SIZES
            .iter()
            .zip(statuses)
            .map(|(s, st)| rung(*s, *st))
            .collect()
    }

    use RungStatus::{Answered as A, Lost as L, TooLarge as T};

    #[test]
    fn verdict_orders_answers_and_losses() {
        assert_eq!(
            verdict(&ladder(&[A, A, A, A, A, A])),
            (Verdict::AllAnswered, Some(4000), None)
        );
        assert_eq!(
            verdict(&ladder(&[A, A, L, L, L, L])),
            (Verdict::LargeLost, Some(1200), Some(1400))
        );
        assert_eq!(
            verdict(&ladder(&[A, A, A, A, A, T])),
            (Verdict::LargeLost, Some(2400), Some(4000))
        );
        assert_eq!(
            verdict(&ladder(&[A, L, A, A, A, A])),
            (Verdict::Irregular, Some(4000), Some(1200))
        );
        assert_eq!(
            verdict(&ladder(&[L, L, L, L, L, L])),
            (Verdict::NoneAnswered, None, Some(600))
        );
    }

    fn addr() -> SocketAddr {
        "10.213.0.1:5060".parse().unwrap()
    }

    #[test]
    fn large_loss_is_an_error_with_the_guides_fix_and_the_tcp_result() {
        let mut r = MtuResult::new(addr(), ladder(&[A, A, L, L, L, L]), Some(1280), None);
        assert!(r.wants_tcp_fallback());
        r.tcp_fallback = Some(TcpFallback {
            outcome: Outcome::Ok,
            status_code: Some(200),
            reason: Some("OK".into()),
            rtt: None,
        });
        let invite = InviteEstimate {
            bytes: 1500,
            sdp_bytes: 300,
        };
        let f = findings(&r, invite);
        assert_eq!(f.len(), 2, "{f:#?}");
        let lost = &f[0];
        assert_eq!(lost.check, CheckId::UdpLargeMessagesLost);
        assert_eq!(lost.severity, crate::checks::Severity::Error);
        assert!(lost
            .message
            .contains("up to 1200 bytes answered, 1400 bytes"));
        assert!(lost.message.contains("path MTU 1280") && lost.message.contains("would be lost"));
        assert!(lost
            .remedy
            .contains("\"transport-tcp\" -- this avoids UDP fragmentation"));
        assert!(lost.remedy.contains("TCP works there"), "{}", lost.remedy);
        assert_eq!(lost.patch, Some(json!({"transport": "transport-tcp"})));
        assert_eq!(f[1].check, CheckId::InviteExceedsUdpLimit);
        assert!(f[1]
            .message
            .contains("within 200 bytes of the path MTU 1280"));

        r.tcp_fallback.as_mut().unwrap().outcome = Outcome::Refused;
        r.tcp_fallback.as_mut().unwrap().status_code = None;
        let f = findings(&r, invite);
        assert!(f[0].remedy.contains("TCP does not work there yet"));
        assert!(f[0].remedy.contains("ended in refused"));
    }

    #[test]
    fn clean_ladders_give_no_finding_unless_the_invite_is_too_big() {
        let r = MtuResult::new(addr(), ladder(&[A, A, A, A, A, A]), Some(65_536), None);
        assert!(!r.wants_tcp_fallback());
        let small = InviteEstimate {
            bytes: 1200,
            sdp_bytes: 250,
        };
        assert!(findings(&r, small).is_empty());
        let r = MtuResult::new(addr(), ladder(&[A, A, A, A, A, A]), None, None);
        let big = InviteEstimate {
            bytes: 1400,
            sdp_bytes: 250,
        };
        let f = findings(&r, big);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].check, CheckId::InviteExceedsUdpLimit);
        assert!(f[0]
            .message
            .contains("above 1300 bytes with the path MTU unknown"));
        let r = MtuResult::new(addr(), ladder(&[A, L, A, A, A, A]), None, None);
        let f = findings(&r, small);
        assert_eq!(f[0].check, CheckId::MtuLadderInconclusive);
        assert_eq!(f[0].severity, crate::checks::Severity::Info);
    }
}
