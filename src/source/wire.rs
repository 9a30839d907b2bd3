//! Bolna's wire JSON for trunks (list response, one `SIPTrunkResponse`, or a
//! `SIPTrunkCreateRequest` body) and its conversion to [`Trunk`].
//!
//! These DTOs are private to `source`: everything past this module sees only the
//! defaulted [`Trunk`]. Missing and `null` fields take the documented create
//! defaults; unknown fields are ignored; enum values outside the documented set
//! are kept as [`Field::Invalid`] for lint to report.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use crate::trunk::{
    parse_codecs, AuthType, Field, Gateway, MediaEncryption, PhoneNumber, Secret, Transport, Trunk,
    DEFAULT_GATEWAY_PORT, DEFAULT_GATEWAY_PRIORITY, DEFAULT_QUALIFY_FREQUENCY,
};

/// One trunk as the API (or a create request) spells it. All fields optional:
/// `Option` makes serde treat both "missing" and `null` as `None`.
#[derive(Deserialize)]
pub(super) struct WireTrunk {
    id: Option<String>,
    name: Option<String>,
    provider: Option<String>,
    description: Option<String>,
    auth_type: Option<String>,
    auth_username: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    auth_password: Option<Secret>,
    gateways: Option<Vec<WireGateway>>,
    ip_identifiers: Option<Vec<WireIpIdentifier>>,
    phone_numbers: Option<Vec<WirePhoneNumber>>,
    allow: Option<String>,
    disallow: Option<String>,
    transport: Option<String>,
    direct_media: Option<bool>,
    rtp_symmetric: Option<bool>,
    force_rport: Option<bool>,
    ice_support: Option<bool>,
    media_encryption: Option<String>,
    media_encryption_optimistic: Option<bool>,
    #[serde(default, deserialize_with = "int_lenient")]
    qualify_frequency: Option<i64>,
    inbound_enabled: Option<bool>,
    outbound_leading_plus_enabled: Option<bool>,
    is_active: Option<bool>,
}

#[derive(Deserialize)]
struct WireGateway {
    gateway_address: Option<String>,
    #[serde(default, deserialize_with = "int_lenient")]
    port: Option<i64>,
    #[serde(default, deserialize_with = "int_lenient")]
    priority: Option<i64>,
}

/// `{"ip_address": "..."}` as documented; a bare string is accepted too.
struct WireIpIdentifier(String);

impl<'de> Deserialize<'de> for WireIpIdentifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = "expected {\"ip_address\": \"...\"} or a string";
        match Value::deserialize(d)? {
            Value::String(s) => Ok(WireIpIdentifier(s)),
            Value::Object(mut o) => match o.remove("ip_address") {
                None | Some(Value::Null) => Ok(WireIpIdentifier(String::new())),
                Some(Value::String(s)) => Ok(WireIpIdentifier(s)),
                Some(other) => Err(de::Error::custom(format_args!(
                    "ip_address: expected a string, found {}",
                    kind(&other)
                ))),
            },
            other => Err(de::Error::custom(format_args!(
                "{expected}, found {}",
                kind(&other)
            ))),
        }
    }
}

#[derive(Deserialize)]
struct WirePhoneNumber {
    id: Option<String>,
    phone_number: Option<String>,
    deleted: Option<bool>,
}

/// An integer, or a string of decimal digits (some tools stringify numbers).
/// `null` and missing are `None`; anything else is a type error.
fn int_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom(format_args!("expected an integer, found {n}"))),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            de::Error::custom(format_args!(
                "expected an integer, found the string {:?}",
                excerpt(&s, 40)
            ))
        }),
        Some(other) => Err(de::Error::custom(format_args!(
            "expected an integer, found {}",
            kind(&other)
        ))),
    }
}

/// The SIP password: a string or `null`. Errors never quote the value.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Secret::new(s))),
        Some(other) => Err(de::Error::custom(format_args!(
            "expected a string, found {} (value not shown)",
            kind(&other)
        ))),
    }
}

/// What the create-trunk reference expects at a field path (`gateways[0].port`),
/// in its words.
pub(super) fn expected(path: &str) -> &'static str {
    let top = path.split(['.', '[']).next().unwrap_or_default();
    let leaf = path.rsplit('.').next().unwrap_or_default();
    match (top, leaf) {
        ("gateways", "gateway_address") => "a string: the gateway's host name or IP address",
        ("gateways", "port") => "an integer port, 1-65535 (default 5060)",
        ("gateways", "priority") => "an integer (lower is preferred; default 1)",
        ("gateways", _) if path.contains('[') => {
            "a gateway object {\"gateway_address\": string, \"port\": integer, \"priority\": integer}"
        }
        ("gateways", _) => {
            "an array of gateway objects {\"gateway_address\": string, \"port\": integer, \"priority\": integer}"
        }
        ("ip_identifiers", _) => "an array of {\"ip_address\": string} objects (IPs or CIDR ranges)",
        ("phone_numbers", _) if path.contains('[') => {
            "a phone number object {\"phone_number\": string}"
        }
        ("phone_numbers", _) => "an array of {\"phone_number\": string} objects",
        ("auth_type", _) => "a string: \"userpass\" or \"ip-based\"",
        ("transport", _) => "a string: \"transport-udp\", \"transport-tcp\" or \"transport-tls\"",
        ("media_encryption", _) => "a string: \"no\" or \"sdes\"",
        ("allow" | "disallow", _) => "a string: comma-separated codec names, e.g. \"ulaw,alaw\"",
        ("qualify_frequency", _) => "an integer: seconds between OPTIONS pings (0 turns them off)",
        (
            "direct_media" | "rtp_symmetric" | "force_rport" | "ice_support"
            | "media_encryption_optimistic" | "inbound_enabled" | "outbound_leading_plus_enabled"
            | "is_active",
            _,
        ) => "a boolean: true or false",
        _ => "a string",
    }
}

/// What serde found at a bad field, from its message (`invalid type: string
/// "x", expected a sequence`): the part after `invalid type: ` / `invalid
/// value: `, else the whole message.
pub(super) fn found(message: &str) -> String {
    let rest = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .or_else(|| message.rsplit_once(", found ").map(|(_, found)| found))
        .unwrap_or(message);
    let found = rest.split(", expected").next().unwrap_or(rest);
    excerpt(found, 80)
}

/// The JSON type of a value, for messages that must not quote it.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` characters of `s`, control characters replaced, `…` if cut.
pub(super) fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// `[2001:db8::1]` -> `2001:db8::1`; anything else unchanged.
fn strip_brackets(addr: String) -> String {
    match addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        Some(inner) => inner.to_string(),
        None => addr,
    }
}

fn field<T>(raw: Option<String>, parse: fn(&str) -> Option<T>, default: T) -> Field<T> {
    match raw {
        None => Field::Valid(default),
        Some(s) => match parse(&s) {
            Some(v) => Field::Valid(v),
            None => Field::Invalid(s),
        },
    }
}

impl WireTrunk {
    pub(super) fn into_trunk(self) -> Trunk {
        let mut t = Trunk::with_defaults(self.name.unwrap_or_default());
        t.id = self.id;
        if let Some(p) = self.provider {
            t.provider = p;
        }
        t.description = self.description;
        t.auth_type = field(self.auth_type, AuthType::parse, AuthType::IpBased);
        t.auth_username = self.auth_username;
        t.auth_password = self.auth_password;
        t.gateways = self
            .gateways
            .unwrap_or_default()
            .into_iter()
            .map(|g| Gateway {
                address: strip_brackets(g.gateway_address.unwrap_or_default()),
                port: g.port.unwrap_or(DEFAULT_GATEWAY_PORT),
                priority: g.priority.unwrap_or(DEFAULT_GATEWAY_PRIORITY),
            })
            .collect();
        t.ip_identifiers = self
            .ip_identifiers
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.0)
            .collect();
        t.phone_numbers = self
            .phone_numbers
            .unwrap_or_default()
            .into_iter()
            .map(|p| PhoneNumber {
                id: p.id,
                phone_number: p.phone_number.unwrap_or_default(),
                deleted: p.deleted.unwrap_or(false),
            })
            .collect();
        if let Some(a) = self.allow {
            t.allow = parse_codecs(&a);
        }
        if let Some(d) = self.disallow {
            t.disallow = parse_codecs(&d);
        }
        t.transport = field(self.transport, Transport::parse, Transport::Udp);
        t.media_encryption = field(
            self.media_encryption,
            MediaEncryption::parse,
            MediaEncryption::No,
        );
        let set = |dst: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut t.direct_media, self.direct_media);
        set(&mut t.rtp_symmetric, self.rtp_symmetric);
        set(&mut t.force_rport, self.force_rport);
        set(&mut t.ice_support, self.ice_support);
        set(
            &mut t.media_encryption_optimistic,
            self.media_encryption_optimistic,
        );
        set(&mut t.inbound_enabled, self.inbound_enabled);
        set(
            &mut t.outbound_leading_plus_enabled,
            self.outbound_leading_plus_enabled,
        );
        set(&mut t.is_active, self.is_active);
        t.qualify_frequency = self.qualify_frequency.unwrap_or(DEFAULT_QUALIFY_FREQUENCY);
        t
    }
}
