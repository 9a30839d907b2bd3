//! The requests of a call, as text: INVITE (the one template that both a test
//! call and the size ladder's INVITE estimate use), ACK, CANCEL and BYE, with
//! the header rules of RFC 3261 §8.1.1, §9.1, §12.2.1 and §17.1.1.3.
//!
//! Written with `format!` rather than rsip's builders: the order and spelling
//! of headers are part of what a carrier sees (and of the INVITE size the ladder
//! estimates), and a call needs only these four shapes.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::trunk::Transport;

/// `host` as it stands in a URI: an IPv6 literal in brackets.
pub fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The Via transport token.
fn via_transport(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    }
}

/// `;transport=tcp` for a URI, nothing for UDP.
pub fn transport_param(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    }
}

/// What stays the same for every request of one call (one dialog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLeg {
    /// `sip:NUMBER@host:port[;transport=..]`: the Request-URI of the INVITE.
    pub request_uri: String,
    /// The To header's URI (the Request-URI without parameters).
    pub to_uri: String,
    /// The From header's URI, e.g. `sip:+14155550123@192.0.2.10`.
    pub from_uri: String,
    pub from_tag: String,
    pub call_id: String,
    pub transport: Transport,
    /// Our socket's address: the Via sent-by and the Contact.
    pub local: SocketAddr,
    pub user_agent: String,
}

impl CallLeg {
    /// The leg of a call to `number` at `host:port` from `from_user`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        number: &str,
        host: &str,
        port: u16,
        transport: Transport,
        from_user: &str,
        local: SocketAddr,
        from_tag: String,
        call_id: String,
        user_agent: String,
    ) -> CallLeg {
        let host = uri_host(host);
        let local_host = uri_host(&local.ip().to_string());
        CallLeg {
            request_uri: format!("sip:{number}@{host}:{port}{}", transport_param(transport)),
            to_uri: format!("sip:{number}@{host}"),
            from_uri: format!("sip:{from_user}@{local_host}"),
            from_tag,
            call_id,
            transport,
            local,
            user_agent,
        }
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            via_transport(self.transport),
            self.sent_by()
        )
    }

    fn sent_by(&self) -> String {
        format!(
            "{}:{}",
            uri_host(&self.local.ip().to_string()),
            self.local.port()
        )
    }

    /// Our Contact URI.
    pub fn contact(&self) -> String {
        format!(
            "sip:trunkprobe@{}{}",
            self.sent_by(),
            transport_param(self.transport)
        )
    }
}

/// What a request adds to its leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParts<'a> {
    pub branch: &'a str,
    pub cseq: u32,
    /// The To tag once the dialog has one.
    pub to_tag: Option<&'a str>,
    /// The Request-URI when it is not the leg's (the remote target in a dialog).
    pub request_uri: Option<&'a str>,
    /// Route header values, in order (the dialog's route set).
    pub route: &'a [String],
    /// `Authorization` or `Proxy-Authorization` and its value.
    pub auth: Option<(&'a str, &'a str)>,
    /// More headers, verbatim, before Content-Type.
    pub extra: &'a [(String, String)],
    /// The SDP body, if any.
    pub sdp: Option<&'a [u8]>,
}

/// Builds `method` on `leg`. Header order follows Asterisk PJSIP's, so the
/// estimate of Bolna's INVITE and a real call agree.
pub fn build(method: &str, leg: &CallLeg, p: &RequestParts<'_>) -> Vec<u8> {
    let uri = p.request_uri.unwrap_or(&leg.request_uri);
    let mut h = String::with_capacity(900);
    let _ = write!(h, "{method} {uri} SIP/2.0\r\n");
    let _ = write!(h, "Via: {}\r\n", leg.via(p.branch));
    h.push_str("Max-Forwards: 70\r\n");
    let _ = write!(h, "From: <{}>;tag={}\r\n", leg.from_uri, leg.from_tag);
    match p.to_tag {
        Some(tag) => {
            let _ = write!(h, "To: <{}>;tag={tag}\r\n", leg.to_uri);
        }
        None => {
            let _ = write!(h, "To: <{}>\r\n", leg.to_uri);
        }
    }
    if method == "INVITE" {
        let _ = write!(h, "Contact: <{}>\r\n", leg.contact());
    }
    let _ = write!(h, "Call-ID: {}\r\n", leg.call_id);
    let _ = write!(h, "CSeq: {} {method}\r\n", p.cseq);
    for r in p.route {
        let _ = write!(h, "Route: {r}\r\n");
    }
    if let Some((name, value)) = p.auth {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    if method == "INVITE" {
        h.push_str(
            "Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, INFO, MESSAGE, REFER\r\n\
             Supported: 100rel, timer, replaces, norefersub, histinfo\r\n\
             Session-Expires: 1800\r\n\
             Min-SE: 90\r\n",
        );
    }
    for (name, value) in p.extra {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    let _ = write!(h, "User-Agent: {}\r\n", leg.user_agent);
    let body = p.sdp.unwrap_or_default();
    if !body.is_empty() {
        h.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(h, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = h.into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_request;

    fn leg(transport: Transport) -> CallLeg {
        CallLeg::new(
            "+919876543210",
            "gw.example.com",
            5060,
            transport,
            "+14155550123",
            "192.0.2.10:40000".parse().unwrap(),
            "ftag".into(),
            "cid".into(),
            "trunkprobe/0.1.0".into(),
        )
    }

    #[test]
    fn an_invite_parses_and_carries_its_sdp() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n";
        let msg = build(
            "INVITE",
            &leg(Transport::Tcp),
            &RequestParts {
                branch: "z9hG4bKabc",
                cseq: 1,
                sdp: Some(sdp),
                ..RequestParts::default()
            },
        );
        let req = parse_request(&msg).unwrap();
        assert_eq!(req.method, "INVITE");
        assert_eq!(
            req.uri,
            "sip:+919876543210@gw.example.com:5060;transport=tcp"
        );
        assert_eq!(
            req.header("Via"),
            Some("SIP/2.0/TCP 192.0.2.10:40000;branch=z9hG4bKabc;rport")
        );
        assert_eq!(req.header("To"), Some("<sip:+919876543210@gw.example.com>"));
        assert_eq!(req.header("Content-Type"), Some("application/sdp"));
        assert_eq!(req.body, sdp);
        assert_eq!(
            req.header("Contact"),
            Some("<sip:trunkprobe@192.0.2.10:40000;transport=tcp>")
        );
    }

    #[test]
    fn cancel_has_no_contact_and_a_dialog_ack_goes_to_the_remote_target() {
        let l = leg(Transport::Udp);
        let cancel = build(
            "CANCEL",
            &l,
            &RequestParts {
                branch: "z9hG4bKabc",
                cseq: 1,
                ..RequestParts::default()
            },
        );
        let req = parse_request(&cancel).unwrap();
        assert!(req.header("Contact").is_none());
        assert_eq!(req.header("To"), Some("<sip:+919876543210@gw.example.com>"));
        let route = vec!["<sip:proxy.example.com;lr>".to_string()];
        let ack = build(
            "ACK",
            &l,
            &RequestParts {
                branch: "z9hG4bKnew",
                cseq: 1,
                to_tag: Some("ttag"),
                request_uri: Some("sip:uas@198.51.100.7:5070"),
                route: &route,
                ..RequestParts::default()
            },
        );
        let req = parse_request(&ack).unwrap();
        assert_eq!(req.uri, "sip:uas@198.51.100.7:5070");
        assert_eq!(req.header("Route"), Some("<sip:proxy.example.com;lr>"));
        assert_eq!(
            req.header("To"),
            Some("<sip:+919876543210@gw.example.com>;tag=ttag")
        );
        assert_eq!(req.header("CSeq"), Some("1 ACK"));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let l = CallLeg::new(
            "100",
            "2001:db8::1",
            5060,
            Transport::Udp,
            "200",
            "[2001:db8::2]:5062".parse().unwrap(),
            "t".into(),
            "c".into(),
            "ua".into(),
        );
        assert_eq!(l.request_uri, "sip:100@[2001:db8::1]:5060");
        assert_eq!(l.contact(), "sip:trunkprobe@[2001:db8::2]:5062");
    }
}
