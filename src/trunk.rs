//! The SIP trunk as Bolna's API describes it: plain data, already defaulted.
//!
//! `source` turns the wire JSON (list response, one trunk object, or a create
//! request) into these types, applying the documented create defaults. Values the
//! API would reject (an unknown transport, say) are kept as [`Field::Invalid`] so
//! that lint can report them as findings instead of the loader failing.

use std::fmt;
use std::net::Ipv6Addr;

/// A setting that is either one of the documented values or something else the
/// user wrote (kept verbatim so the report can quote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<T> {
    Valid(T),
    Invalid(String),
}

impl<T: Copy> Field<T> {
    /// The documented value, if it is one.
    pub fn valid(&self) -> Option<T> {
        match self {
            Field::Valid(v) => Some(*v),
            Field::Invalid(_) => None,
        }
    }
}

/// SIP signalling transport of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Parses `transport-udp|transport-tcp|transport-tls` and `udp|tcp|tls`, any case.
    pub fn parse(s: &str) -> Option<Transport> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("transport-").unwrap_or(&s);
        match s {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }

    /// Lower-case short name (`udp`), as used in Via headers, labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The API's spelling (`transport-udp`), as used in PATCH bodies.
    pub fn api_name(self) -> &'static str {
        match self {
            Transport::Udp => "transport-udp",
            Transport::Tcp => "transport-tcp",
            Transport::Tls => "transport-tls",
        }
    }

    /// Whether the transport is reliable (no retransmissions, Content-Length framing).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The port a gateway on this transport normally listens on.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }
}

impl serde::Serialize for Transport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How Bolna authenticates to / recognises the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Userpass,
    IpBased,
}

impl AuthType {
    pub fn parse(s: &str) -> Option<AuthType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "userpass" => Some(AuthType::Userpass),
            "ip-based" | "ip_based" | "ipbased" => Some(AuthType::IpBased),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Userpass => "userpass",
            AuthType::IpBased => "ip-based",
        }
    }
}

/// RTP encryption mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEncryption {
    No,
    Sdes,
}

impl MediaEncryption {
    pub fn parse(s: &str) -> Option<MediaEncryption> {
        match s.trim().to_ascii_lowercase().as_str() {
            "no" | "none" | "false" => Some(MediaEncryption::No),
            "sdes" => Some(MediaEncryption::Sdes),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaEncryption::No => "no",
            MediaEncryption::Sdes => "sdes",
        }
    }
}

/// A value that must never be printed: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is sent to its owner (never to logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One carrier gateway as configured on the trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Hostname or IP literal, as configured (brackets around IPv6 removed).
    pub address: String,
    /// As configured; may be out of range (lint reports it, probing skips it).
    pub port: i64,
    /// Lower is preferred.
    pub priority: i64,
}

impl Gateway {
    /// The port, when it is a valid TCP/UDP port.
    pub fn port(&self) -> Option<u16> {
        u16::try_from(self.port).ok().filter(|p| *p != 0)
    }

    /// The address as an IP literal, if it is one.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.address.parse().ok()
    }
}

/// A DID registered on the trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    pub id: Option<String>,
    pub phone_number: String,
    pub deleted: bool,
}

/// A trunk, with the documented create defaults applied to missing fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// `None` for a trunk not created yet (create-request body or flags).
    pub id: Option<String>,
    pub name: String,
    pub provider: String,
    pub description: Option<String>,
    pub auth_type: Field<AuthType>,
    pub auth_username: Option<String>,
    /// Only present in create-request bodies; never printed.
    pub auth_password: Option<Secret>,
    pub gateways: Vec<Gateway>,
    /// `ip_address` of each identifier, verbatim.
    pub ip_identifiers: Vec<String>,
    pub phone_numbers: Vec<PhoneNumber>,
    /// Codec names, lower-case, in order, empty entries removed.
    pub allow: Vec<String>,
    pub disallow: Vec<String>,
    pub transport: Field<Transport>,
    pub direct_media: bool,
    pub rtp_symmetric: bool,
    pub force_rport: bool,
    pub ice_support: bool,
    pub media_encryption: Field<MediaEncryption>,
    pub media_encryption_optimistic: bool,
    pub qualify_frequency: i64,
    pub inbound_enabled: bool,
    pub outbound_leading_plus_enabled: bool,
    pub is_active: bool,
    /// Set when the record did not fit the create-trunk schema: the trunk is
    /// then only its id and name (when they could be read), reported and not
    /// probed, so one odd record never hides the others.
    pub invalid: Option<Box<InvalidDefinition>>,
}

/// Where and how a trunk record failed the create-trunk schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDefinition {
    /// Where the record came from (`trunk file trunks.json`, the API URL).
    pub origin: String,
    /// Its position in the document, from 0.
    pub index: usize,
    /// Its `name`, when that could be read.
    pub name: Option<String>,
    /// The field path inside the record (`gateways[0].port`); empty when the
    /// record itself is not an object.
    pub field: String,
    /// What was found there (a JSON type, with the value when it is short and
    /// not a secret).
    pub found: String,
    /// What the create-trunk reference expects there.
    pub expected: String,
}

impl InvalidDefinition {
    /// One line: which record, which field, what was found, what is expected.
    pub fn describe(&self) -> String {
        let name = self
            .name
            .as_ref()
            .map(|n| format!(" ({n:?})"))
            .unwrap_or_default();
        let at = format!("{}: trunk #{}{name}", self.origin, self.index);
        if self.field.is_empty() {
            format!("{at} is {}, not {}", self.found, self.expected)
        } else {
            format!(
                "{at}: field {}: found {}; the create-trunk reference expects {}",
                self.field, self.found, self.expected
            )
        }
    }
}

impl Trunk {
    /// A trunk with every documented create default and no gateways.
    pub fn with_defaults(name: impl Into<String>) -> Trunk {
        Trunk {
            id: None,
            name: name.into(),
            provider: "custom".into(),
            description: None,
            auth_type: Field::Valid(AuthType::IpBased),
            auth_username: None,
            auth_password: None,
            gateways: Vec::new(),
            ip_identifiers: Vec::new(),
            phone_numbers: Vec::new(),
            allow: parse_codecs(DEFAULT_ALLOW),
            disallow: parse_codecs(DEFAULT_DISALLOW),
            transport: Field::Valid(Transport::Udp),
            direct_media: false,
            rtp_symmetric: true,
            force_rport: true,
            ice_support: false,
            media_encryption: Field::Valid(MediaEncryption::No),
            media_encryption_optimistic: false,
            qualify_frequency: DEFAULT_QUALIFY_FREQUENCY,
            inbound_enabled: false,
            outbound_leading_plus_enabled: true,
            is_active: true,
            invalid: None,
        }
    }

    /// A short label for reports and logs: the name, or the id when unnamed.
    pub fn label(&self) -> &str {
        if !self.name.is_empty() {
            &self.name
        } else {
            self.id.as_deref().unwrap_or("(unnamed)")
        }
    }

    /// A trunk record that did not fit the schema: only what could be read of
    /// it (`id`, `name`), the position standing in for a missing name.
    pub fn invalid(id: Option<String>, why: InvalidDefinition) -> Trunk {
        let name = why.name.clone();
        let mut t = Trunk::with_defaults(name.unwrap_or_else(|| format!("trunk #{}", why.index)));
        t.id = id;
        // Nothing about how to reach it is known.
        t.transport = Field::Invalid("unknown".into());
        t.invalid = Some(Box::new(why));
        t
    }

    /// Codecs the trunk offers, in preference order: `allow` minus the codecs
    /// `disallow` names explicitly. `disallow=all` is the usual reset before
    /// `allow` (the documented default pair `ulaw,alaw` / `all`) and removes none
    /// of the allowed codecs; `disallow=ulaw` does remove ulaw.
    pub fn effective_codecs(&self) -> Vec<String> {
        self.allow
            .iter()
            .filter(|c| *c != "all" && !self.disallow.contains(c))
            .cloned()
            .collect()
    }

    /// Phone numbers not marked deleted.
    pub fn live_phone_numbers(&self) -> impl Iterator<Item = &PhoneNumber> {
        self.phone_numbers.iter().filter(|p| !p.deleted)
    }
}

/// Documented defaults of `SIPTrunkCreateRequest`.
pub const DEFAULT_ALLOW: &str = "ulaw,alaw";
pub const DEFAULT_DISALLOW: &str = "all";
pub const DEFAULT_QUALIFY_FREQUENCY: i64 = 60;
pub const DEFAULT_GATEWAY_PORT: i64 = 5060;
pub const DEFAULT_GATEWAY_PRIORITY: i64 = 1;

/// Bolna's SIP media server address, which carriers must allow-list.
pub const BOLNA_SIP_IP: &str = "13.200.45.61";

/// Splits a comma-separated codec list into lower-case names.
pub fn parse_codecs(s: &str) -> Vec<String> {
    s.split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The one `HOST[:PORT]` grammar (`--gateway`, gateway URIs, `/probe` targets):
/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal, port 1-65535.
/// The error says what is wrong in the user's terms.
pub fn parse_host_port(raw: &str) -> Result<(String, Option<u16>), String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty gateway; expected HOST[:PORT]".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("missing ']' after the IPv6 address")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected ':PORT' after ']'")?),
        };
        (v6.to_string(), port)
    } else {
        match s.matches(':').count() {
            0 => (s.to_string(), None),
            1 => {
                let (h, p) = s.split_once(':').unwrap_or((s, ""));
                (h.to_string(), Some(p))
            }
            _ => {
                s.parse::<Ipv6Addr>().map_err(|_| {
                    "expected HOST[:PORT]; write an IPv6 address with a port as [ADDR]:PORT"
                        .to_string()
                })?;
                (s.to_string(), None)
            }
        }
    };
    if host.is_empty() {
        return Err("missing host; expected HOST[:PORT]".into());
    }
    if host.contains(['/', ';', '@', ' ', '?', '#']) {
        return Err("expected a bare HOST[:PORT], not a URI".into());
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if !host.chars().all(host_char) {
        return Err(format!("{host:?} is not a host name or IP address"));
    }
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n != 0 => Ok(n),
            _ => Err(format!("port {p:?} is not a number from 1 to 65535")),
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_accepts_api_and_short_names_in_any_case() {
        assert_eq!(Transport::parse("transport-udp"), Some(Transport::Udp));
        assert_eq!(Transport::parse("TCP"), Some(Transport::Tcp));
        assert_eq!(Transport::parse(" Transport-TLS "), Some(Transport::Tls));
        assert_eq!(Transport::parse("sctp"), None);
        assert_eq!(Transport::parse("transport-"), None);
    }

    #[test]
    fn effective_codecs_follow_asterisk_allow_disallow() {
        let mut t = Trunk::with_defaults("t");
        assert_eq!(t.effective_codecs(), vec!["ulaw", "alaw"]);
        t.disallow = parse_codecs("ulaw");
        t.allow = parse_codecs("ulaw,alaw,g729");
        assert_eq!(t.effective_codecs(), vec!["alaw", "g729"]);
    }

    #[test]
    fn secret_is_never_formatted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }
}
