//! Static checks of a trunk definition against the setup guide and API rules.
//!
//! Pure functions of a [`Trunk`]: no network. Remedies use the setup guide's
//! words where it has them. A `patch` is the exact `PATCH /sip-trunks/trunks/{id}`
//! body that fixes the finding; only fields the update endpoint accepts are used
//! (it has no `direct_media`, `rtp_symmetric`, `force_rport` or `auth_type`).
//! Patches are computed independently: two findings may both patch `gateways`,
//! so apply one and lint again. Nothing here ever reads `auth_password`'s value.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::{CheckId, Finding};
use crate::trunk::{
    AuthType, Field, Gateway, InvalidDefinition, MediaEncryption, Transport, Trunk,
};

/// Every static finding for one trunk, most severe first; findings of equal
/// severity keep the order of [`CheckId::ALL`].
pub fn lint(trunk: &Trunk) -> Vec<Finding> {
    if let Some(why) = &trunk.invalid {
        return vec![definition_invalid(trunk.id.as_deref(), why)];
    }
    let mut out = Findings(Vec::new());
    enums(trunk, &mut out);
    gateways(trunk, &mut out);
    codecs(trunk, &mut out);
    auth(trunk, &mut out);
    monitoring_and_media(trunk, &mut out);
    let mut v = out.0;
    // Stable: equal severities keep check order.
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// The one finding of a record that does not fit the schema: nothing else
/// about the trunk can be known, so no other check runs on it.
pub fn definition_invalid(id: Option<&str>, why: &InvalidDefinition) -> Finding {
    let remedy = if why.field.is_empty() {
        "Replace this entry of the list with a trunk object, or remove it. Until then it is \
         not probed; the other trunks are."
            .to_string()
    } else {
        format!(
            "Give `{}` its documented type, {}: PATCH /sip-trunks/trunks/{} with the corrected \
             field (or edit the file). Until then this trunk is not probed; the other trunks are.",
            why.field,
            why.expected,
            id.unwrap_or("{id}")
        )
    };
    Finding {
        check: CheckId::DefinitionInvalid,
        severity: CheckId::DefinitionInvalid.severity(),
        message: why.describe(),
        remedy,
        patch: None,
    }
}

/// Checks that apply to a trunk built from command-line flags: [`lint`]
/// without the account-level auth checks, which flags cannot describe.
pub fn lint_flag_trunk(trunk: &Trunk) -> Vec<Finding> {
    const SKIPPED: &[CheckId] = &[
        CheckId::AuthTypeInvalid,
        CheckId::UserpassMissingUsername,
        CheckId::UserpassMissingPassword,
        CheckId::IpBasedMissingIdentifiers,
        CheckId::IpIdentifierInvalid,
        CheckId::IpIdentifierTooBroad,
    ];
    lint(trunk)
        .into_iter()
        .filter(|f| !SKIPPED.contains(&f.check))
        .collect()
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, check: CheckId, message: String, remedy: &str, patch: Option<Value>) {
        self.0.push(Finding {
            check,
            severity: check.severity(),
            message,
            remedy: remedy.to_string(),
            patch,
        });
    }
}

fn default_codecs_patch() -> Value {
    json!({"allow": "ulaw,alaw", "disallow": "all"})
}

fn enums(t: &Trunk, out: &mut Findings) {
    if let Field::Invalid(raw) = &t.transport {
        out.add(
            CheckId::TransportInvalid,
            format!("transport is {raw:?}, not one of the documented values"),
            "set transport to one of \"transport-udp\" (the default), \"transport-tcp\", \
             \"transport-tls\"",
            None,
        );
    }
    if let Field::Invalid(raw) = &t.auth_type {
        out.add(
            CheckId::AuthTypeInvalid,
            format!("auth_type is {raw:?}, not \"userpass\" or \"ip-based\""),
            "auth_type must be \"userpass\" or \"ip-based\"; it cannot be changed by an update, \
             so create the trunk again with the right value",
            None,
        );
    }
    if let Field::Invalid(raw) = &t.media_encryption {
        out.add(
            CheckId::MediaEncryptionInvalid,
            format!("media_encryption is {raw:?}, not \"no\" or \"sdes\""),
            "set media_encryption to \"no\" (plain RTP, the default) or \"sdes\" (TLS trunks only)",
            Some(json!({"media_encryption": "no"})),
        );
    }
    if t.media_encryption == Field::Valid(MediaEncryption::Sdes)
        && t.transport != Field::Valid(Transport::Tls)
    {
        let transport = match &t.transport {
            Field::Valid(tr) => tr.api_name().to_string(),
            Field::Invalid(raw) => raw.clone(),
        };
        out.add(
            CheckId::SdesRequiresTls,
            format!(
                "media_encryption is \"sdes\" but transport is {transport:?}: the API rejects \
                 this with 422 (media_encryption='sdes' requires transport='transport-tls')"
            ),
            "SDES exchanges its keys inside SDP, so it must travel over an encrypted signaling \
             channel. Either switch transport to \"transport-tls\" (and update the gateway port \
             to 5061), or set media_encryption back to \"no\"",
            Some(json!({"media_encryption": "no"})),
        );
    }
}

fn gateway_json(g: &Gateway) -> Value {
    json!({"gateway_address": g.address, "port": g.port, "priority": g.priority})
}

/// The `gateways` PATCH body after applying `fix` to each gateway.
fn gateways_patch(gws: &[Gateway], fix: impl Fn(&Gateway) -> Option<Gateway>) -> Value {
    let list: Vec<Value> = gws
        .iter()
        .map(|g| gateway_json(&fix(g).unwrap_or_else(|| g.clone())))
        .collect();
    json!({ "gateways": list })
}

/// `"a", "b"`: each item quoted once, in first-seen order.
fn quote_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|s| seen.insert(*s))
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn gateways(t: &Trunk, out: &mut Findings) {
    let gws = &t.gateways;
    if gws.is_empty() {
        out.add(
            CheckId::NoGateways,
            "the trunk has no gateways".into(),
            "add at least one gateway: each row needs a hostname and a port; default port is \
             5060 for UDP/TCP and 5061 for TLS",
            None,
        );
        return;
    }
    let transport = t.transport.valid();

    // Addresses.
    let bad: Vec<(&Gateway, &'static str)> = gws
        .iter()
        .filter_map(|g| address_problem(&g.address).map(|p| (g, p)))
        .collect();
    if !bad.is_empty() {
        let what = bad
            .iter()
            .map(|(g, p)| format!("{:?} {p}", g.address))
            .collect::<Vec<_>>()
            .join("; ");
        let fixable = bad
            .iter()
            .all(|(g, _)| normalize_address(&g.address).is_some());
        let patch = fixable.then(|| {
            gateways_patch(gws, |g| {
                address_problem(&g.address)?;
                let (host, port) = normalize_address(&g.address)?;
                Some(Gateway {
                    address: host,
                    port: port.unwrap_or(g.port),
                    priority: g.priority,
                })
            })
        });
        out.add(
            CheckId::GatewayAddressInvalid,
            format!("gateway_address {what}"),
            "set gateway_address to the carrier's bare hostname or IP (e.g. \
             \"sip.zadarma.com\"), and put the port in the gateway's port field",
            patch,
        );
    }

    // Port range.
    let bad_ports: Vec<&Gateway> = gws.iter().filter(|g| g.port().is_none()).collect();
    if !bad_ports.is_empty() {
        let default = i64::from(transport.unwrap_or(Transport::Udp).default_port());
        let what = bad_ports
            .iter()
            .map(|g| format!("{:?} has port {}", g.address, g.port))
            .collect::<Vec<_>>()
            .join("; ");
        out.add(
            CheckId::GatewayPortInvalid,
            format!("gateway {what}, outside 1-65535"),
            "set the gateway port: default port is 5060 for UDP/TCP and 5061 for TLS",
            Some(gateways_patch(gws, |g| {
                g.port().is_none().then(|| Gateway {
                    port: default,
                    ..g.clone()
                })
            })),
        );
    }

    // Port vs transport.
    if transport == Some(Transport::Tls) {
        let off: Vec<&Gateway> = gws
            .iter()
            .filter(|g| g.port().is_some_and(|p| p != 5061))
            .collect();
        if !off.is_empty() {
            let what = off
                .iter()
                .map(|g| format!("{:?} port {}", g.address, g.port))
                .collect::<Vec<_>>()
                .join(", ");
            out.add(
                CheckId::TlsGatewayPort,
                format!("transport is \"transport-tls\" but gateway {what} is not 5061"),
                "TLS (encrypted signaling): use port 5061 on your gateways, unless the carrier \
                 documents another TLS port",
                Some(gateways_patch(gws, |g| {
                    g.port().is_some_and(|p| p != 5061).then(|| Gateway {
                        port: 5061,
                        ..g.clone()
                    })
                })),
            );
        }
    }
    if let Some(tr @ (Transport::Udp | Transport::Tcp)) = transport {
        let on_tls: Vec<&Gateway> = gws.iter().filter(|g| g.port == 5061).collect();
        if !on_tls.is_empty() {
            out.add(
                CheckId::PlainGatewayOn5061,
                format!(
                    "transport is {:?} but gateway {} uses port 5061, the TLS port",
                    tr.api_name(),
                    quote_list(on_tls.iter().map(|g| g.address.as_str()))
                ),
                "default port is 5060 for UDP/TCP and 5061 for TLS: use 5060, or switch \
                 transport to \"transport-tls\" if the carrier expects TLS on 5061",
                Some(gateways_patch(gws, |g| {
                    (g.port == 5061).then(|| Gateway {
                        port: 5060,
                        ..g.clone()
                    })
                })),
            );
        }
    }
    if transport == Some(Transport::Tls) {
        let literal: Vec<&Gateway> = gws.iter().filter(|g| g.ip().is_some()).collect();
        if !literal.is_empty() {
            out.add(
                CheckId::TlsIpLiteralGateway,
                format!(
                    "TLS gateway {} is an IP address: the carrier's certificate is issued for \
                     a hostname, so it cannot be validated",
                    quote_list(literal.iter().map(|g| g.address.as_str()))
                ),
                "use the carrier's TLS hostname as gateway_address (TLS requires a hostname so \
                 certificates can be validated)",
                None,
            );
        }
    }

    // Duplicates (address case-insensitive + port); keep the first.
    let mut seen = HashSet::new();
    let mut dup_idx = Vec::new();
    for (i, g) in gws.iter().enumerate() {
        if !seen.insert((g.address.trim().to_ascii_lowercase(), g.port)) {
            dup_idx.push(i);
        }
    }
    if !dup_idx.is_empty() {
        let what = dup_idx
            .iter()
            .map(|&i| format!("{:?} port {}", gws[i].address, gws[i].port))
            .collect::<Vec<_>>()
            .join(", ");
        let kept: Vec<Value> = gws
            .iter()
            .enumerate()
            .filter(|(i, _)| !dup_idx.contains(i))
            .map(|(_, g)| gateway_json(g))
            .collect();
        out.add(
            CheckId::DuplicateGateway,
            format!("gateway {what} is listed more than once"),
            "remove the duplicate gateway rows (each gateway once, ordered by priority)",
            Some(json!({ "gateways": kept })),
        );
    }
}

/// Why `addr` is not a bare hostname or IP literal, if it is not.
fn address_problem(addr: &str) -> Option<&'static str> {
    if addr.trim().is_empty() {
        return Some("is empty");
    }
    if addr.trim() != addr {
        return Some("has surrounding whitespace");
    }
    if addr.parse::<IpAddr>().is_ok() {
        return None;
    }
    let lower = addr.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("sip:") || lower.starts_with("sips:") {
        return Some("is a URI, not a bare host");
    }
    if addr.contains('@') {
        return Some("contains a user part");
    }
    if addr.contains(';') || addr.contains('?') {
        return Some("contains URI parameters");
    }
    if addr.contains('/') {
        return Some("contains a path");
    }
    if split_host_port(addr).is_some_and(|(_, p)| p.is_some()) {
        return Some("contains a port");
    }
    if !is_hostname(addr) {
        return Some("is not a hostname or IP address");
    }
    None
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    // All-numeric labels would be an IP address, and it did not parse as one.
    labels.iter().all(label_ok) && !labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` -> (host, port). None if not of that form.
fn split_host_port(s: &str) -> Option<(String, Option<i64>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?.into()),
        };
        return Some((v6.to_string(), port));
    }
    match s.split_once(':') {
        None => Some((s.to_string(), None)),
        Some((h, p)) if !p.contains(':') => {
            Some((h.to_string(), Some(p.parse::<u16>().ok()?.into())))
        }
        Some(_) => None,
    }
}

/// The bare host (and port, if one was written) inside a sloppy gateway
/// address such as `sip:carrier.example:5070;transport=udp`, when there is one.
fn normalize_address(addr: &str) -> Option<(String, Option<i64>)> {
    let mut s = addr.trim();
    if let Some(i) = s.find("://") {
        s = &s[i + 3..];
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("sips:") {
        s = &s[5..];
    } else if lower.starts_with("sip:") {
        s = &s[4..];
    }
    if let Some(i) = s.rfind('@') {
        s = &s[i + 1..];
    }
    if let Some(i) = s.find([';', '?', '/']) {
        s = &s[..i];
    }
    let (host, port) = split_host_port(s)?;
    (address_problem(&host).is_none()).then_some((host, port))
}

/// Codec families the guide calls "compressed" (name prefixes, Asterisk spelling).
const COMPRESSED: &[&str] = &[
    "g729", "g723", "g726", "g728", "gsm", "ilbc", "speex", "opus", "amr", "lpc10", "silk",
    "siren", "codec2",
];

fn is_compressed(codec: &str) -> bool {
    COMPRESSED.iter().any(|c| codec.starts_with(c))
}

fn codecs(t: &Trunk, out: &mut Findings) {
    let allow_all = t.allow.iter().any(|c| c == "all");
    let effective = t.effective_codecs();
    let offered = |c: &str| {
        effective.iter().any(|e| e == c) || (allow_all && !t.disallow.iter().any(|d| d == c))
    };
    let (ulaw, alaw) = (offered("ulaw"), offered("alaw"));
    let shown = |v: &[String]| format!("{:?}", v.join(","));

    let ulaw_disallowed =
        t.allow.iter().any(|c| c == "ulaw") && t.disallow.iter().any(|c| c == "ulaw");
    if !ulaw && !alaw {
        out.add(
            CheckId::CodecNoG711,
            format!(
                "neither ulaw nor alaw is offered (allow {}, disallow {})",
                shown(&t.allow),
                shown(&t.disallow)
            ),
            "Bolna's SIP layer uses G.711 u-law (ulaw) audio by default. Ensure your trunk \
             allows ulaw, or at minimum alaw; defaults \"ulaw,alaw\" and \"all\" are correct \
             for most setups",
            Some(default_codecs_patch()),
        );
    }
    if ulaw_disallowed {
        let disallow: Vec<&str> = t
            .disallow
            .iter()
            .map(String::as_str)
            .filter(|c| *c != "ulaw")
            .collect();
        let disallow = if disallow.is_empty() {
            "all".to_string()
        } else {
            disallow.join(",")
        };
        out.add(
            CheckId::CodecUlawDisallowed,
            format!(
                "allow lists ulaw but disallow {} removes it again",
                shown(&t.disallow)
            ),
            "Always include ulaw: remove ulaw from disallow (the default disallow \"all\" is \
             correct for most setups)",
            Some(json!({ "disallow": disallow })),
        );
    } else if !ulaw && alaw {
        let mut allow = vec!["ulaw".to_string()];
        allow.extend(t.allow.iter().filter(|c| *c != "ulaw").cloned());
        out.add(
            CheckId::CodecUlawMissing,
            format!(
                "ulaw is not offered, only alaw among G.711 (allow {})",
                shown(&t.allow)
            ),
            "Bolna's SIP layer uses G.711 u-law (ulaw) audio by default: always include ulaw \
             in allow",
            Some(json!({ "allow": allow.join(",") })),
        );
    }

    let compressed: Vec<&str> = effective
        .iter()
        .map(String::as_str)
        .filter(|c| is_compressed(c))
        .collect();
    if !compressed.is_empty() || allow_all {
        let what = if compressed.is_empty() {
            "allow \"all\" offers every codec, compressed ones included".to_string()
        } else {
            format!("compressed codecs offered: {}", quote_list(compressed))
        };
        let mut kept: Vec<&str> = effective
            .iter()
            .map(String::as_str)
            .filter(|c| !is_compressed(c))
            .collect();
        // The patch must not drop ulaw either: the guide says always include it.
        let allow = if kept.iter().any(|c| *c == "ulaw" || *c == "alaw") {
            if !kept.contains(&"ulaw") {
                kept.insert(0, "ulaw");
            }
            kept.join(",")
        } else {
            "ulaw,alaw".to_string()
        };
        out.add(
            CheckId::CodecCompressed,
            what,
            "G.729 and other compressed codecs are not recommended: allow ulaw (and alaw) only",
            Some(json!({"allow": allow, "disallow": "all"})),
        );
    }
}

fn auth(t: &Trunk, out: &mut Findings) {
    match t.auth_type {
        Field::Valid(AuthType::Userpass) => {
            // The API enforces the username on create, and responses may omit it
            // (the guide's TLS example does): only an empty one, or a create
            // request without one, is reported.
            let missing = match t.auth_username.as_deref() {
                None => t.id.is_none(),
                Some(u) => u.trim().is_empty(),
            };
            if missing {
                out.add(
                    CheckId::UserpassMissingUsername,
                    "auth_type is \"userpass\" but auth_username is missing or empty".into(),
                    "set auth_username (and auth_password): they are required when auth_type \
                     is \"userpass\"",
                    None,
                );
            }
            // Only create requests carry the password; the API never returns it.
            if t.id.is_none() && t.auth_password.as_ref().is_none_or(|p| p.is_empty()) {
                out.add(
                    CheckId::UserpassMissingPassword,
                    "auth_type is \"userpass\" but the create request has no auth_password".into(),
                    "set auth_password: it is required when auth_type is \"userpass\"",
                    None,
                );
            }
        }
        Field::Valid(AuthType::IpBased) => {
            if t.ip_identifiers.is_empty() {
                out.add(
                    CheckId::IpBasedMissingIdentifiers,
                    "auth_type is \"ip-based\" but ip_identifiers is empty".into(),
                    "add ip_identifiers, required when auth_type is \"ip-based\": the \
                     carrier's signaling IPs or CIDR ranges as { \"ip_address\": \"...\" }",
                    None,
                );
            }
        }
        Field::Invalid(_) => {}
    }

    let mut invalid = Vec::new();
    let mut broad = Vec::new();
    for raw in &t.ip_identifiers {
        let s = raw.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            if net.prefix_len() == 0 {
                broad.push(raw.as_str());
            }
        } else if s.parse::<IpAddr>().is_err() {
            invalid.push(raw.as_str());
        }
    }
    if !invalid.is_empty() {
        out.add(
            CheckId::IpIdentifierInvalid,
            format!(
                "ip_identifier {} is not an IP address or CIDR range",
                quote_list(invalid)
            ),
            "each ip_address must be an IP address or CIDR range, e.g. \"15.207.90.192/31\"",
            None,
        );
    }
    if !broad.is_empty() {
        out.add(
            CheckId::IpIdentifierTooBroad,
            format!("ip_identifier {} matches every address", quote_list(broad)),
            "list only the carrier's signaling IPs or CIDR ranges",
            None,
        );
    }
}

fn monitoring_and_media(t: &Trunk, out: &mut Findings) {
    if t.qualify_frequency < 0 {
        out.add(
            CheckId::QualifyFrequencyNegative,
            format!("qualify_frequency is {}", t.qualify_frequency),
            "set qualify_frequency, the SIP OPTIONS ping interval in seconds: default 60; set 0 \
             to disable",
            Some(json!({"qualify_frequency": 60})),
        );
    } else if t.qualify_frequency == 0 {
        out.add(
            CheckId::QualifyDisabled,
            "qualify_frequency is 0: Bolna does not ping the carrier for trunk health".into(),
            "set the SIP OPTIONS ping interval (default 60 seconds) to have Bolna monitor the \
             trunk",
            Some(json!({"qualify_frequency": 60})),
        );
    }
    if t.media_encryption_optimistic && t.media_encryption == Field::Valid(MediaEncryption::No) {
        out.add(
            CheckId::OptimisticWithoutSdes,
            "media_encryption_optimistic is true but media_encryption is \"no\": it has no \
             effect"
                .into(),
            "media_encryption_optimistic only applies when media_encryption=\"sdes\"; set it \
             to false",
            Some(json!({"media_encryption_optimistic": false})),
        );
    }
    const NOT_UPDATABLE: &str = "(the update API does not change this field: create the trunk \
                                 again, or ask Bolna support)";
    if t.direct_media {
        out.add(
            CheckId::DirectMediaEnabled,
            "direct_media is true: RTP would bypass Bolna's media server".into(),
            &format!(
                "direct_media routes RTP directly between caller and callee. Keep false \
                 {NOT_UPDATABLE}"
            ),
            None,
        );
    }
    if !t.rtp_symmetric {
        out.add(
            CheckId::RtpSymmetricDisabled,
            "rtp_symmetric is false: audio may be lost behind NAT".into(),
            &format!(
                "RTP Symmetric: keep enabled for NAT traversal (required for NAT) \
                 {NOT_UPDATABLE}"
            ),
            None,
        );
    }
    if !t.force_rport {
        out.add(
            CheckId::ForceRportDisabled,
            "force_rport is false: SIP responses may not reach a carrier behind NAT".into(),
            &format!(
                "Force rport: keep enabled for NAT traversal (required for NAT) {NOT_UPDATABLE}"
            ),
            None,
        );
    }
    if t.inbound_enabled && t.live_phone_numbers().next().is_none() {
        let deleted = t.phone_numbers.len();
        let tail = if deleted > 0 {
            format!(" ({deleted} deleted)")
        } else {
            String::new()
        };
        out.add(
            CheckId::InboundWithoutNumbers,
            format!("inbound_enabled is true but the trunk has no phone numbers{tail}"),
            "add your DID phone numbers with the Add Phone Number API (POST \
             /sip-trunks/trunks/{trunk_id}/numbers), and point your carrier's origination URI \
             at Bolna",
            None,
        );
    }
    if !t.is_active {
        out.add(
            CheckId::TrunkInactive,
            "is_active is false: the trunk is paused and calls will not be placed".into(),
            "Trunk Active is the master switch: set is_active to true to resume the trunk",
            Some(json!({"is_active": true})),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::*;
    use crate::trunk::{parse_codecs, PhoneNumber, Secret};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/trunks/");

    fn fixture(name: &str) -> Vec<Trunk> {
        let bytes = std::fs::read(format!("{FIXTURES}{name}")).unwrap();
        crate::source::parse_trunks_json(&bytes).unwrap()
    }

    fn gw(address: &str, port: i64) -> Gateway {
        Gateway {
            address: address.into(),
            port,
            priority: 1,
        }
    }

    /// An existing, correctly configured userpass UDP trunk.
    fn base() -> Trunk {
        let mut t = Trunk::with_defaults("Base");
        t.id = Some("01BASE".into());
        t.auth_type = Field::Valid(AuthType::Userpass);
        t.auth_username = Some("user".into());
        t.gateways = vec![gw("sip.example.com", 5060)];
        t
    }

    fn tls(mut t: Trunk) -> Trunk {
        t.transport = Field::Valid(Transport::Tls);
        for g in &mut t.gateways {
            g.port = 5061;
        }
        t
    }

    fn ids(t: &Trunk) -> Vec<CheckId> {
        lint(t).into_iter().map(|f| f.check).collect()
    }

    /// The one finding of `check`, asserting it is there.
    fn finding(t: &Trunk, check: CheckId) -> Finding {
        let all = lint(t);
        let mut it = all.iter().filter(|f| f.check == check);
        let f = it
            .next()
            .unwrap_or_else(|| panic!("{} missing in {all:#?}", check.as_str()))
            .clone();
        assert!(it.next().is_none(), "{} twice", check.as_str());
        assert_eq!(f.severity, check.severity());
        assert!(!f.message.is_empty() && !f.remedy.is_empty());
        f
    }

    fn absent(t: &Trunk, check: CheckId) {
        assert!(
            !ids(t).contains(&check),
            "{} fired: {:#?}",
            check.as_str(),
            lint(t)
        );
    }

    #[test]
    fn well_configured_trunks_are_clean() {
        assert_eq!(lint(&base()), vec![]);
        assert_eq!(lint(&tls(base())), vec![]);
        let mut sdes = tls(base());
        sdes.media_encryption = Field::Valid(MediaEncryption::Sdes);
        sdes.media_encryption_optimistic = true;
        assert_eq!(lint(&sdes), vec![]);
        let mut ip = base();
        ip.auth_type = Field::Valid(AuthType::IpBased);
        ip.auth_username = None;
        ip.ip_identifiers = vec!["15.207.90.192/31".into(), "2001:db8::1".into()];
        ip.transport = Field::Valid(Transport::Tcp);
        assert_eq!(lint(&ip), vec![]);
        let mut create = base();
        create.id = None;
        create.auth_password = Some(Secret::new("pw"));
        assert_eq!(lint(&create), vec![]);
    }

    #[test]
    fn guide_examples_have_no_errors() {
        for file in ["guide-create-requests.json", "guide-create-responses.json"] {
            let trunks = fixture(file);
            assert_eq!(trunks.len(), 3);
            for t in &trunks {
                let errors: Vec<_> = lint(t)
                    .into_iter()
                    .filter(|f| f.severity == Severity::Error)
                    .collect();
                assert_eq!(errors, vec![], "{file}: {}", t.name);
            }
        }
        // The Plivo example enables inbound without numbers: a warning only.
        let plivo = &fixture("guide-create-responses.json")[1];
        assert_eq!(ids(plivo), vec![CheckId::InboundWithoutNumbers]);
        for t in fixture("list-response.json").iter().take(3) {
            assert_eq!(lint(t), vec![], "{}", t.name);
        }
    }

    #[test]
    fn enum_values_outside_the_documented_set() {
        let mut t = base();
        t.transport = Field::Invalid("sctp".into());
        let f = finding(&t, CheckId::TransportInvalid);
        assert!(f.message.contains("\"sctp\""));
        assert_eq!(f.patch, None);
        // Unknown transport: no port-vs-transport guesses.
        t.gateways[0].port = 5061;
        absent(&t, CheckId::PlainGatewayOn5061);
        absent(&t, CheckId::TlsGatewayPort);

        let mut t = base();
        t.auth_type = Field::Invalid("oauth".into());
        let f = finding(&t, CheckId::AuthTypeInvalid);
        assert!(f.message.contains("\"oauth\""));
        assert_eq!(f.patch, None, "auth_type is not an update field");

        let mut t = base();
        t.media_encryption = Field::Invalid("zrtp".into());
        let f = finding(&t, CheckId::MediaEncryptionInvalid);
        assert_eq!(f.patch, Some(json!({"media_encryption": "no"})));

        for c in [
            CheckId::TransportInvalid,
            CheckId::AuthTypeInvalid,
            CheckId::MediaEncryptionInvalid,
        ] {
            absent(&base(), c);
        }
    }

    #[test]
    fn sdes_requires_tls() {
        for transport in [
            Field::Valid(Transport::Udp),
            Field::Valid(Transport::Tcp),
            Field::Invalid("x".into()),
        ] {
            let mut t = base();
            t.transport = transport;
            t.media_encryption = Field::Valid(MediaEncryption::Sdes);
            let f = finding(&t, CheckId::SdesRequiresTls);
            assert!(f.message.contains("422"));
            assert!(f.remedy.contains("transport-tls") && f.remedy.contains("5061"));
            assert_eq!(f.patch, Some(json!({"media_encryption": "no"})));
        }
        let mut t = tls(base());
        t.media_encryption = Field::Valid(MediaEncryption::Sdes);
        absent(&t, CheckId::SdesRequiresTls);
    }

    #[test]
    fn no_gateways() {
        let mut t = base();
        t.gateways.clear();
        finding(&t, CheckId::NoGateways);
        absent(&base(), CheckId::NoGateways);
    }

    #[test]
    fn gateway_addresses() {
        for bad in [
            "",
            "   ",
            " sip.example.com",
            "sip:sip.example.com",
            "SIPS:sip.example.com:5061",
            "udp://sip.example.com",
            "sip.example.com:5060",
            "[2001:db8::1]:5060",
            "sip.example.com/path",
            "user@sip.example.com",
            "sip.example.com;transport=tcp",
            "bad host",
            "-bad.example.com",
            "999.1.1.1",
            "1.2.3",
            "a..b",
        ] {
            let mut t = base();
            t.gateways = vec![gw(bad, 5060)];
            let f = finding(&t, CheckId::GatewayAddressInvalid);
            assert!(f.message.contains(&format!("{bad:?}")), "{}", f.message);
        }
        for good in [
            "sip.example.com",
            "sip.example.com.",
            "21467306465797919.zt.plivo.com",
            "sip_trunk.example",
            "localhost",
            "203.0.113.1",
            "2001:db8::1",
        ] {
            let mut t = base();
            t.gateways = vec![gw(good, 5060)];
            absent(&t, CheckId::GatewayAddressInvalid);
        }
    }

    #[test]
    fn gateway_address_patch_extracts_host_and_port() {
        let mut t = base();
        t.gateways = vec![
            gw("sip:carrier.example.com:5070;transport=udp", 5060),
            gw("ok.example.com", 5060),
            gw("[2001:db8::1]:5080", 5060),
        ];
        t.gateways[1].priority = 2;
        let f = finding(&t, CheckId::GatewayAddressInvalid);
        assert_eq!(
            f.patch,
            Some(json!({"gateways": [
                {"gateway_address": "carrier.example.com", "port": 5070, "priority": 1},
                {"gateway_address": "ok.example.com", "port": 5060, "priority": 2},
                {"gateway_address": "2001:db8::1", "port": 5080, "priority": 1},
            ]}))
        );
        t.gateways.push(gw("", 5060));
        assert_eq!(finding(&t, CheckId::GatewayAddressInvalid).patch, None);
    }

    #[test]
    fn gateway_port_range() {
        for bad in [0, -1, 65536, 70000] {
            let mut t = base();
            t.gateways[0].port = bad;
            let f = finding(&t, CheckId::GatewayPortInvalid);
            assert!(f.message.contains(&bad.to_string()));
            assert_eq!(f.patch.unwrap()["gateways"][0]["port"], 5060);
            let mut t = tls(t);
            t.gateways[0].port = bad;
            let f = finding(&t, CheckId::GatewayPortInvalid);
            assert_eq!(f.patch.unwrap()["gateways"][0]["port"], 5061);
            absent(&t, CheckId::TlsGatewayPort);
        }
        for good in [1, 5080, 65535] {
            let mut t = base();
            t.gateways[0].port = good;
            absent(&t, CheckId::GatewayPortInvalid);
        }
    }

    #[test]
    fn ports_versus_transport() {
        let mut t = tls(base());
        t.gateways.push(gw("b.example.com", 5060));
        let f = finding(&t, CheckId::TlsGatewayPort);
        assert!(f.message.contains("\"b.example.com\" port 5060"));
        assert_eq!(
            f.patch.unwrap()["gateways"],
            json!([
                {"gateway_address": "sip.example.com", "port": 5061, "priority": 1},
                {"gateway_address": "b.example.com", "port": 5061, "priority": 1},
            ])
        );
        absent(&tls(base()), CheckId::TlsGatewayPort);

        for tr in [Transport::Udp, Transport::Tcp] {
            let mut t = base();
            t.transport = Field::Valid(tr);
            t.gateways[0].port = 5061;
            let f = finding(&t, CheckId::PlainGatewayOn5061);
            assert!(f.message.contains(tr.api_name()));
            assert_eq!(f.patch.unwrap()["gateways"][0]["port"], 5060);
        }
        absent(&tls(base()), CheckId::PlainGatewayOn5061);
        absent(&base(), CheckId::PlainGatewayOn5061);
    }

    #[test]
    fn tls_to_ip_literals() {
        for ip in ["203.0.113.5", "2001:db8::1"] {
            let mut t = tls(base());
            t.gateways[0].address = ip.into();
            let f = finding(&t, CheckId::TlsIpLiteralGateway);
            assert!(f.message.contains(ip) && f.remedy.contains("hostname"));
            let mut t = base();
            t.gateways[0].address = ip.into();
            absent(&t, CheckId::TlsIpLiteralGateway);
        }
        absent(&tls(base()), CheckId::TlsIpLiteralGateway);
    }

    #[test]
    fn duplicate_gateways() {
        let mut t = base();
        t.gateways = vec![
            gw("SIP.example.com", 5060),
            gw("b.example.com", 5060),
            gw("sip.example.com", 5060),
        ];
        let f = finding(&t, CheckId::DuplicateGateway);
        assert_eq!(
            f.patch.unwrap()["gateways"],
            json!([
                {"gateway_address": "SIP.example.com", "port": 5060, "priority": 1},
                {"gateway_address": "b.example.com", "port": 5060, "priority": 1},
            ])
        );
        let mut t = base();
        t.gateways.push(gw("sip.example.com", 5080));
        absent(&t, CheckId::DuplicateGateway);
    }

    fn codecs(allow: &str, disallow: &str) -> Trunk {
        let mut t = base();
        t.allow = parse_codecs(allow);
        t.disallow = parse_codecs(disallow);
        t
    }

    #[test]
    fn codec_checks() {
        // alaw only: warning, with ulaw put first.
        let t = codecs("alaw", "all");
        let f = finding(&t, CheckId::CodecUlawMissing);
        assert_eq!(f.patch, Some(json!({"allow": "ulaw,alaw"})));
        absent(&t, CheckId::CodecNoG711);

        // No G.711 at all: error, and the compressed warning.
        let t = codecs("g729,gsm", "all");
        let f = finding(&t, CheckId::CodecNoG711);
        assert!(f.message.contains("\"g729,gsm\""));
        assert_eq!(
            f.patch,
            Some(json!({"allow": "ulaw,alaw", "disallow": "all"}))
        );
        let f = finding(&t, CheckId::CodecCompressed);
        assert!(f
            .remedy
            .starts_with("G.729 and other compressed codecs are not recommended"));
        assert_eq!(f.patch.unwrap()["allow"], "ulaw,alaw");
        // Dropping the compressed codecs of an alaw-only list must not leave ulaw out.
        let mut alaw_g729 = base();
        alaw_g729.allow = parse_codecs("alaw,g729");
        let f = finding(&alaw_g729, CheckId::CodecCompressed);
        assert_eq!(f.patch.unwrap()["allow"], "ulaw,alaw");
        absent(&t, CheckId::CodecUlawMissing);
        finding(&codecs("", "all"), CheckId::CodecNoG711);

        // disallow removing an allowed ulaw: warning, replaces ulaw_missing.
        let t = codecs("ulaw,alaw", "ulaw");
        let f = finding(&t, CheckId::CodecUlawDisallowed);
        assert_eq!(f.patch, Some(json!({"disallow": "all"})));
        absent(&t, CheckId::CodecUlawMissing);
        absent(&t, CheckId::CodecNoG711);
        let t = codecs("ulaw", "g729,ulaw");
        assert_eq!(
            finding(&t, CheckId::CodecUlawDisallowed).patch,
            Some(json!({"disallow": "g729"}))
        );
        finding(&t, CheckId::CodecNoG711);

        // Compressed alongside G.711: patch keeps the G.711 order.
        let t = codecs("alaw,ulaw,opus,g729a,speex16", "all");
        let f = finding(&t, CheckId::CodecCompressed);
        assert!(f.message.contains("\"opus\", \"g729a\", \"speex16\""));
        assert_eq!(f.patch.unwrap()["allow"], "alaw,ulaw");
        // ...but not when disallow removes them.
        absent(&codecs("ulaw,g729", "g729"), CheckId::CodecCompressed);

        // allow=all offers ulaw (so no G.711 errors) and everything else.
        let t = codecs("all", "");
        absent(&t, CheckId::CodecNoG711);
        absent(&t, CheckId::CodecUlawMissing);
        finding(&t, CheckId::CodecCompressed);

        for clean in [("ulaw,alaw", "all"), ("ulaw", "all"), ("ulaw,g722", "all")] {
            assert_eq!(lint(&codecs(clean.0, clean.1)), vec![], "{clean:?}");
        }
    }

    #[test]
    fn userpass_credentials() {
        for name in [Some(""), Some("  ")] {
            let mut t = base();
            t.auth_username = name.map(String::from);
            let f = finding(&t, CheckId::UserpassMissingUsername);
            assert_eq!(f.patch, None);
        }
        // An API response may omit the username; a create request may not.
        let mut t = base();
        t.auth_username = None;
        absent(&t, CheckId::UserpassMissingUsername);
        t.id = None;
        t.auth_password = Some(Secret::new("pw"));
        finding(&t, CheckId::UserpassMissingUsername);
        let mut t = base();
        t.auth_type = Field::Valid(AuthType::IpBased);
        t.auth_username = None;
        t.ip_identifiers = vec!["192.0.2.1".into()];
        absent(&t, CheckId::UserpassMissingUsername);

        // Create requests (no id) must carry the password; API responses never do.
        let mut t = base();
        t.id = None;
        finding(&t, CheckId::UserpassMissingPassword);
        t.auth_password = Some(Secret::new(""));
        finding(&t, CheckId::UserpassMissingPassword);
        t.auth_password = Some(Secret::new("pw"));
        absent(&t, CheckId::UserpassMissingPassword);
        absent(&base(), CheckId::UserpassMissingPassword);
    }

    #[test]
    fn ip_based_identifiers() {
        let mut t = base();
        t.auth_type = Field::Valid(AuthType::IpBased);
        finding(&t, CheckId::IpBasedMissingIdentifiers);
        t.ip_identifiers = vec![
            "15.207.90.192/31".into(),
            "carrier.example.com".into(),
            "1.2.3.4/33".into(),
            "".into(),
            " 198.51.100.7 ".into(),
            "2001:db8::/32".into(),
        ];
        absent(&t, CheckId::IpBasedMissingIdentifiers);
        let f = finding(&t, CheckId::IpIdentifierInvalid);
        assert!(f
            .message
            .contains("\"carrier.example.com\", \"1.2.3.4/33\", \"\""));
        absent(&t, CheckId::IpIdentifierTooBroad);

        t.ip_identifiers = vec!["0.0.0.0/0".into(), "::/0".into()];
        let f = finding(&t, CheckId::IpIdentifierTooBroad);
        assert!(f.message.contains("\"0.0.0.0/0\", \"::/0\""));
        absent(&t, CheckId::IpIdentifierInvalid);
    }

    #[test]
    fn qualify_frequency() {
        let mut t = base();
        t.qualify_frequency = -1;
        let f = finding(&t, CheckId::QualifyFrequencyNegative);
        assert_eq!(f.patch, Some(json!({"qualify_frequency": 60})));
        absent(&t, CheckId::QualifyDisabled);
        t.qualify_frequency = 0;
        finding(&t, CheckId::QualifyDisabled);
        absent(&t, CheckId::QualifyFrequencyNegative);
        t.qualify_frequency = 30;
        absent(&t, CheckId::QualifyDisabled);
    }

    #[test]
    fn optimistic_without_sdes() {
        let mut t = base();
        t.media_encryption_optimistic = true;
        let f = finding(&t, CheckId::OptimisticWithoutSdes);
        assert_eq!(f.patch, Some(json!({"media_encryption_optimistic": false})));
        let mut t = tls(t);
        t.media_encryption = Field::Valid(MediaEncryption::Sdes);
        absent(&t, CheckId::OptimisticWithoutSdes);
    }

    #[test]
    fn nat_settings() {
        let mut t = base();
        t.direct_media = true;
        let f = finding(&t, CheckId::DirectMediaEnabled);
        assert!(f.remedy.contains("Keep false"));
        assert_eq!(f.patch, None, "direct_media is not an update field");
        let mut t = base();
        t.rtp_symmetric = false;
        let f = finding(&t, CheckId::RtpSymmetricDisabled);
        assert!(f.remedy.contains("keep enabled for NAT traversal"));
        let mut t = base();
        t.force_rport = false;
        let f = finding(&t, CheckId::ForceRportDisabled);
        assert!(f.remedy.contains("keep enabled for NAT traversal"));
        assert_eq!(f.patch, None);
    }

    #[test]
    fn inbound_needs_live_numbers() {
        let mut t = base();
        t.inbound_enabled = true;
        finding(&t, CheckId::InboundWithoutNumbers);
        t.phone_numbers.push(PhoneNumber {
            id: Some("n1".into()),
            phone_number: "919876543210".into(),
            deleted: true,
        });
        let f = finding(&t, CheckId::InboundWithoutNumbers);
        assert!(f.message.contains("1 deleted"));
        t.phone_numbers[0].deleted = false;
        absent(&t, CheckId::InboundWithoutNumbers);
        t.phone_numbers.clear();
        t.inbound_enabled = false;
        absent(&t, CheckId::InboundWithoutNumbers);
    }

    #[test]
    fn inactive_trunk() {
        let mut t = base();
        t.is_active = false;
        let f = finding(&t, CheckId::TrunkInactive);
        assert_eq!(f.patch, Some(json!({"is_active": true})));
    }

    #[test]
    fn misconfigured_fixture_is_sorted_stably_and_deterministic() {
        let t = &fixture("misconfigured.json")[0];
        let findings = lint(t);
        assert!(findings.len() >= 15, "{findings:#?}");
        assert_eq!(findings, lint(t));
        let rank = |c: CheckId| CheckId::ALL.iter().position(|x| *x == c).unwrap();
        for w in findings.windows(2) {
            assert!(
                w[0].severity > w[1].severity
                    || (w[0].severity == w[1].severity && rank(w[0].check) < rank(w[1].check)),
                "{:?} before {:?}",
                w[0].check,
                w[1].check
            );
        }
        assert_eq!(findings[0].severity, Severity::Error);
    }

    #[test]
    fn patches_use_only_update_fields() {
        // Fields of PATCH /sip-trunks/trunks/{trunk_id} (update-trunk.txt).
        const UPDATABLE: &[&str] = &[
            "name",
            "description",
            "auth_username",
            "auth_password",
            "gateways",
            "ip_identifiers",
            "allow",
            "disallow",
            "inbound_enabled",
            "outbound_leading_plus_enabled",
            "is_active",
            "qualify_frequency",
            "transport",
            "media_encryption",
            "media_encryption_optimistic",
        ];
        let mut trunks = fixture("misconfigured.json");
        let mut t = base();
        t.media_encryption_optimistic = true;
        t.qualify_frequency = 0;
        t.allow = parse_codecs("alaw");
        trunks.push(t);
        let mut n = 0;
        for t in &trunks {
            for f in lint(t) {
                let Some(p) = f.patch else { continue };
                n += 1;
                for key in p.as_object().expect("patch is an object").keys() {
                    assert!(UPDATABLE.contains(&key.as_str()), "{key}");
                }
            }
        }
        assert!(n >= 8);
    }

    #[test]
    fn password_never_in_findings() {
        let mut t = fixture("misconfigured.json").remove(0);
        t.auth_type = Field::Valid(AuthType::Userpass);
        t.auth_password = Some(Secret::new("S3cr3t-PASSWORD"));
        t.id = None;
        let out = serde_json::to_string(&lint(&t)).unwrap();
        assert!(!out.contains("S3cr3t-PASSWORD"));
        assert!(out.contains("\"check\":\"sdes_requires_tls\""));
    }

    #[test]
    fn flag_trunks_skip_account_checks() {
        let t = crate::source::trunk_from_flags(&crate::source::FlagTrunk {
            gateways: vec!["sip.example.com".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(ids(&t).contains(&CheckId::IpBasedMissingIdentifiers));
        assert_eq!(lint_flag_trunk(&t), vec![]);
        let mut t = t;
        t.transport = Field::Invalid("x".into());
        assert_eq!(
            lint_flag_trunk(&t)
                .iter()
                .map(|f| f.check)
                .collect::<Vec<_>>(),
            vec![CheckId::TransportInvalid]
        );
    }

    #[test]
    fn check_ids_are_unique_snake_case_and_described() {
        let mut seen = HashSet::new();
        for c in CheckId::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'));
            assert_eq!(CheckId::from_id(s), Some(*c));
            assert!(!c.describe().is_empty() && !c.describe().contains('\n'));
            assert_eq!(serde_json::to_value(c).unwrap(), json!(s));
        }
        assert_eq!(CheckId::from_id("nope"), None);
    }

    #[test]
    fn findings_never_hold_the_password() {
        let secret = "pw-Hunter2-XYZZY";
        let doc = format!(
            r#"{{"name":"x","auth_type":"userpass","auth_username":"u","auth_password":"{secret}"}}"#
        );
        let t = crate::source::parse_trunks_json(doc.as_bytes()).unwrap();
        let findings = lint(&t[0]);
        assert!(!format!("{findings:?}").contains(secret));
    }
}
