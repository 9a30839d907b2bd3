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
