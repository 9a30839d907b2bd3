//! SIP URIs that name a gateway to probe: `sip:host[:port][;transport=udp|tcp|tls]`,
//! `sips:host[:port]` for TLS. Shared by `ping`, the origination check and the
//! daemon's `/probe` endpoint, so all three read a target the same way.

use crate::trunk::{parse_host_port, Transport};

/// Host, port and transport of a gateway URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUri {
    /// Hostname or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl GatewayUri {
    /// Parses a gateway URI; a bare `host[:port]` (UDP) is accepted too.
    ///
    /// `sips:` means TLS and a `transport` parameter cannot downgrade it. The
    /// port defaults to 5060, or 5061 for TLS. A user part, headers (`?`), a path
    /// or a host with characters no host name has are rejected.
    pub fn parse(s: &str) -> Result<GatewayUri, String> {
        let s = s.trim();
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "sips:") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "sip:") {
            (false, r)
        } else if s.contains("://") {
            return Err(bad(s, "the scheme must be sip: or sips:"));
        } else {
            (false, s)
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        if hostport.contains('@') {
            return Err(bad(s, "a user part names a user, not a gateway"));
        }
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        for param in parts.filter(|p| !p.is_empty()) {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            if k.eq_ignore_ascii_case("transport") {
                let t = Transport::parse(v)
                    .ok_or_else(|| bad(s, "transport must be udp, tcp or tls"))?;
                if !secure {
                    transport = t;
                }
            }
        }
        let (host, port) = parse_host_port(hostport).map_err(|why| bad(s, &why))?;
        Ok(GatewayUri {
            port: port.unwrap_or(transport.default_port()),
            host,
            transport,
        })
    }

    /// Like [`parse`](Self::parse), but the `sip:` or `sips:` scheme is required.
    pub fn parse_with_scheme(s: &str) -> Result<GatewayUri, String> {
        let t = s.trim();
        if strip_prefix_ci(t, "sip:").is_none() && strip_prefix_ci(t, "sips:").is_none() {
            return Err(bad(t, "the scheme must be sip: or sips:"));
        }
        GatewayUri::parse(t)
    }
}

fn bad(s: &str, why: &str) -> String {
    format!("{s:?} is not a SIP URI ({why}); e.g. sip:gw.example.com:5060;transport=udp")
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, u16, Transport) {
        let u = GatewayUri::parse(s).unwrap();
        (u.host, u.port, u.transport)
    }

    #[test]
    fn defaults_and_transports() {
        assert_eq!(
            parts("sip:gw.example.com"),
            ("gw.example.com".into(), 5060, Transport::Udp)
        );
        assert_eq!(
            parts("sip:gw.example.com;transport=tls"),
            ("gw.example.com".into(), 5061, Transport::Tls)
        );
        assert_eq!(
            parts("sips:gw.example.com:5071"),
            ("gw.example.com".into(), 5071, Transport::Tls)
        );
        assert_eq!(
            parts("sips:gw.example.com;transport=udp").2,
            Transport::Tls,
            "sips is not downgraded"
        );
        assert_eq!(
            parts("SIP:[2001:db8::1]:5080;Transport=TCP;lr"),
            ("2001:db8::1".into(), 5080, Transport::Tcp)
        );
        assert_eq!(
            parts("127.0.0.1:5062"),
            ("127.0.0.1".into(), 5062, Transport::Udp)
        );
        assert_eq!(parts("::1"), ("::1".into(), 5060, Transport::Udp));
    }

    #[test]
    fn rejects_what_is_not_a_gateway() {
        for bad in [
            "",
            "sip:",
            "sip:alice@example.com",
            "sip:gw:0",
            "sip:gw:99999",
            "sip:gw;transport=sctp",
            "sip:a/b",
            "sip:ho st",
            "sip:[zz]:5060",
            "http://sip.bolna.ai",
            "sip:gw?x=y",
        ] {
            assert!(GatewayUri::parse(bad).is_err(), "{bad}");
        }
        assert!(GatewayUri::parse("sip.bolna.ai:5060").is_ok());
        assert!(GatewayUri::parse_with_scheme("sip.bolna.ai:5060").is_err());
        let e = GatewayUri::parse("sip:alice@example.com").unwrap_err();
        assert!(e.contains("not a SIP URI"), "{e}");
    }
}
