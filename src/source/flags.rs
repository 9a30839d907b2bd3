//! A trunk described on the command line (`--gateway HOST[:PORT]` and friends),
//! for probing a carrier before the trunk exists on Bolna.

use super::SourceError;
use crate::trunk::{
    parse_codecs, parse_host_port, Field, Gateway, MediaEncryption, Transport, Trunk,
};

/// The trunk-shaping flags, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagTrunk {
    pub name: Option<String>,
    /// `HOST`, `HOST:PORT`, `IPV6`, `[IPV6]` or `[IPV6]:PORT`, in priority order.
    pub gateways: Vec<String>,
    /// `udp|tcp|tls` or the API's `transport-udp|...`.
    pub transport: Option<String>,
    /// Comma-separated codecs, as in the API.
    pub allow: Option<String>,
    pub disallow: Option<String>,
    /// `no` or `sdes`.
    pub media_encryption: Option<String>,
}

/// A not-yet-created trunk (`id` is `None`) with the documented defaults and the
/// given flags. A gateway without a port gets 5061 on TLS and 5060 otherwise
/// (the guide: "default port is 5060 for UDP/TCP and 5061 for TLS"); gateway
/// priorities follow the order given (1, 2, ...). An unknown transport or media
/// encryption becomes [`Field::Invalid`] (a lint finding); a gateway that is not
/// `HOST[:PORT]` is [`SourceError::BadFlag`].
///
/// The trunk is `ip-based` with no identifiers (flags cannot describe account
/// auth); use [`crate::checks::lint_flag_trunk`] to skip the auth checks.
pub fn trunk_from_flags(f: &FlagTrunk) -> Result<Trunk, SourceError> {
    let mut t = Trunk::with_defaults("");
    if let Some(s) = &f.transport {
        t.transport = Transport::parse(s).map_or_else(|| Field::Invalid(s.clone()), Field::Valid);
    }
    if let Some(s) = &f.media_encryption {
        t.media_encryption =
            MediaEncryption::parse(s).map_or_else(|| Field::Invalid(s.clone()), Field::Valid);
    }
    if let Some(s) = &f.allow {
        t.allow = parse_codecs(s);
    }
    if let Some(s) = &f.disallow {
        t.disallow = parse_codecs(s);
    }
    let default_port = t.transport.valid().unwrap_or(Transport::Udp).default_port();
    for (i, raw) in f.gateways.iter().enumerate() {
        let (host, port) = parse_host_port(raw).map_err(|reason| SourceError::BadFlag {
            flag: "--gateway".into(),
            value: raw.clone(),
            reason,
        })?;
        t.gateways.push(Gateway {
            address: host,
            port: i64::from(port.unwrap_or(default_port)),
            priority: i as i64 + 1,
        });
    }
    t.name = match &f.name {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => t
            .gateways
            .first()
            .map(|g| g.address.clone())
            .unwrap_or_else(|| "flags".into()),
    };
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(s: &[&str], transport: Option<&str>) -> Result<Trunk, SourceError> {
        trunk_from_flags(&FlagTrunk {
            gateways: s.iter().map(|s| s.to_string()).collect(),
            transport: transport.map(String::from),
            ..FlagTrunk::default()
        })
    }

    #[test]
    fn ports_default_by_transport_and_priorities_follow_order() {
        let t = gw(&["a.example", "b.example:5080", "[2001:db8::1]:5070"], None).unwrap();
        let got: Vec<_> = t
            .gateways
            .iter()
            .map(|g| (g.address.as_str(), g.port, g.priority))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.example", 5060, 1),
                ("b.example", 5080, 2),
                ("2001:db8::1", 5070, 3)
            ]
        );
        assert_eq!(t.id, None);
        assert_eq!(t.name, "a.example");
        assert_eq!(t.transport, Field::Valid(Transport::Udp));

        let t = gw(&["a.example", "2001:db8::2", "[::1]"], Some("TLS")).unwrap();
        assert!(t.gateways.iter().all(|g| g.port == 5061));
        assert_eq!(t.gateways[1].address, "2001:db8::2");
        assert_eq!(t.transport, Field::Valid(Transport::Tls));
    }

    #[test]
    fn unknown_transport_is_a_field_not_an_error() {
        let t = gw(&["a"], Some("sctp")).unwrap();
        assert_eq!(t.transport, Field::Invalid("sctp".into()));
        assert_eq!(t.gateways[0].port, 5060);
    }

    #[test]
    fn other_flags_apply() {
        let t = trunk_from_flags(&FlagTrunk {
            name: Some(" Carrier X ".into()),
            gateways: vec!["h".into()],
            allow: Some("ALAW, g729".into()),
            disallow: Some("all".into()),
            media_encryption: Some("sdes".into()),
            transport: Some("transport-tls".into()),
        })
        .unwrap();
        assert_eq!(t.name, "Carrier X");
        assert_eq!(t.allow, vec!["alaw", "g729"]);
        assert_eq!(t.media_encryption, Field::Valid(MediaEncryption::Sdes));
    }

    #[test]
    fn unparsable_gateways_are_bad_flags() {
        for bad in [
            "",
            ":5060",
            "host:",
            "host:abc",
            "host:0",
            "host:70000",
            "sip:host:5060",
            "[2001:db8::1",
            "[nothost]:5060",
            "[::1]5060",
            "1:2:3",
            "host/path",
            "user@host",
        ] {
            match gw(&[bad], None) {
                Err(SourceError::BadFlag { flag, value, .. }) => {
                    assert_eq!(flag, "--gateway");
                    assert_eq!(value, bad);
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
