//! The INVITE Bolna would send on a trunk (an Asterisk PJSIP stack at
//! 13.200.45.61), rendered with realistic headers and the trunk's SDP: the size
//! ladder compares its size with what the path carries.

use serde::Serialize;

use crate::trunk::{MediaEncryption, Trunk};

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

/// What an SDP offer carries: the codecs (Asterisk names, preference order),
/// our media address, SDES keys (`a=crypto` lines' key params), ICE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    pub codecs: &'a [String],
    pub media: std::net::SocketAddr,
    /// `inline:` key params for AES_CM_128_HMAC_SHA1_80 and _32: `RTP/SAVP`.
    pub sdes: Option<[&'a str; 2]>,
    /// `media_encryption_optimistic`: the keys on `RTP/AVP`, so a carrier
    /// without SRTP can answer in clear (what Asterisk offers then).
    pub optimistic: bool,
    /// ICE candidates on our address (what `ice_support=true` adds).
    pub ice: bool,
}

/// The SDP offer Bolna's Asterisk sends: the codecs plus telephone-event/8000
/// on payload type 101, ptime 20.
pub fn offer_sdp(o: &Offer<'_>) -> String {
    let ip = o.media.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let port = o.media.port();
    let mut payloads = Vec::new();
    let mut attrs = String::new();
    for (i, codec) in o.codecs.iter().enumerate() {
        let (pt, map, fmtp) = codec_sdp(codec, 96 + i);
        payloads.push(pt.to_string());
        attrs.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        if let Some(f) = fmtp {
            attrs.push_str(&format!("a=fmtp:{pt} {f}\r\n"));
        }
    }
    payloads.push("101".into());
    attrs.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    let mut sdp =
        format!(
        "v=0\r\no=- 1716823451 1716823453 IN {family} {ip}\r\ns=Asterisk\r\nc=IN {family} {ip}\r\n\
         t=0 0\r\nm=audio {port} {} {}\r\n{attrs}a=ptime:20\r\na=maxptime:150\r\n",
        if o.sdes.is_some() && !o.optimistic { "RTP/SAVP" } else { "RTP/AVP" },
        payloads.join(" ")
    );
    if o.ice {
        sdp.push_str(&format!(
            "a=ice-ufrag:5d1f3a7c2b0e6f48\r\na=ice-pwd:0b9c2e7f4a1d6c3e8f5a2b9d0c7e4f1a\r\n\
             a=candidate:Hd0c82d3d 1 UDP 2130706431 {ip} {port} typ host\r\n\
             a=candidate:Hd0c82d3d 2 UDP 2130706430 {ip} {} typ host\r\n",
            port.saturating_add(1)
        ));
    }
    if let Some([k80, k32]) = o.sdes {
        sdp.push_str(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 {k80}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 {k32}\r\n"
        ));
    }
    sdp.push_str("a=sendrecv\r\n");
    sdp
}

/// The estimated INVITE as text: (start line and headers with the blank line, SDP).
/// The template of a real call ([`super::request::build`] and [`offer_sdp`]),
/// from Bolna's address, with placeholder identifiers of realistic length and
/// the headers a forwarded call adds (Route, P-Asserted-Identity, Diversion).
pub fn render_invite(trunk: &Trunk, host: &str, port: u16) -> (String, String) {
    use super::request::{build, CallLeg, RequestParts};
    const BOLNA: &str = "13.200.45.61";
    let bolna: std::net::SocketAddr =
        (BOLNA.parse::<std::net::IpAddr>().expect("literal"), 5060).into();
    let sdes = trunk.media_encryption.valid() == Some(MediaEncryption::Sdes);
    let codecs = trunk.effective_codecs();
    let sdp = offer_sdp(&Offer {
        codecs: &codecs,
        media: (bolna.ip(), 14382).into(),
        sdes: sdes.then_some([
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj",
        ]),
        optimistic: trunk.media_encryption_optimistic,
        ice: trunk.ice_support,
    });
    let leg = CallLeg::new(
        "+14155550123",
        host,
        port,
        crate::trunk::Transport::Udp,
        "+919876543210",
        bolna,
        "3f6a1c9e-7b2d-4c8e-a1f0-5d9b2e7c4a13".into(),
        "9d7b3e1a-4c6f-4a2e-8b0d-2f5c7e9a1b3d".into(),
        "Asterisk PBX 20.5.2".into(),
    );
    let uri_host = super::request::uri_host(host);
    let route = vec![format!("<sip:{uri_host}:{port};lr>")];
    let extra = vec![
        (
            "P-Asserted-Identity".to_string(),
            format!("\"Bolna\" <sip:+919876543210@{BOLNA}>"),
        ),
        (
            "Diversion".to_string(),
            format!("<sip:+919876543210@{BOLNA}>;reason=unconditional;privacy=off;counter=1"),
        ),
    ];
    let message = build(
        "INVITE",
        &leg,
        &RequestParts {
            branch: "z9hG4bKPj8c1e4f7a-2b3d-4e5f-9a0b-1c2d3e4f5a6b",
            cseq: 18234,
            route: &route,
            extra: &extra,
            sdp: Some(sdp.as_bytes()),
            ..RequestParts::default()
        },
    );
    let text = String::from_utf8_lossy(&message).into_owned();
    let split = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    (text[..split].to_string(), text[split..].to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{parse_codecs, Field, Transport};

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
}
