//! Network path hints: the address carriers see this prober at (NAT), and
//! whether an ip-based trunk's gateways fall inside its `ip_identifiers`.
//!
//! Pure: probe results and resolved addresses in, a summary and findings out.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::Serialize;
use serde_json::{json, Value};

use super::{CheckId, Finding};
use crate::outcome::TargetResult;
use crate::trunk::{AuthType, Field, Trunk};

/// What replies from a different address than the one probed would look like.
pub const OTHER_SOURCE_NOTE: &str = "UDP probes share one unconnected socket, so an answer \
    from another address or port than the probed one is seen, reported per target as \
    reply_from, and never counted; TCP and TLS replies arrive on the probe's own connection";

/// Where this prober's traffic appears to come from, as carriers reported it
/// (Via `received`/`rport`, RFC 3581).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Egress {
    /// Distinct addresses carriers saw this prober at.
    pub public_addresses: Vec<IpAddr>,
    /// Distinct local source addresses the probes were sent from.
    pub local_addresses: Vec<IpAddr>,
    /// Responses that carried `received` or `rport`.
    pub reporting_targets: usize,
    /// A carrier saw another address or port than the local one; `None` when none reported.
    pub behind_nat: Option<bool>,
    /// A carrier saw the local address but another port (a port-rewriting NAT or firewall).
    pub port_translated: bool,
    /// Whether replies from another address than the probed one are detected.
    pub different_source_reply: &'static str,
    /// `probed -> answered from`, for every target answered from elsewhere.
    pub replies_from_elsewhere: Vec<String>,
}

/// One reply's view of this prober's address: the local address the probe
/// was sent from and the Via `received` / `rport` the carrier reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub local: Option<SocketAddr>,
    pub received: Option<IpAddr>,
    pub rport: Option<u16>,
}

impl Sighting {
    pub fn of(t: &TargetResult) -> Sighting {
        Sighting {
            local: t.local,
            received: t.received,
            rport: t.rport,
        }
    }

    /// Whether the carrier reported anything about our address.
    pub fn reported(&self) -> bool {
        self.received.is_some() || self.rport.is_some()
    }

    /// The local address, unless it is the unspecified one (it says nothing).
    pub fn local(&self) -> Option<SocketAddr> {
        self.local.filter(|l| !l.ip().is_unspecified())
    }

    /// Whether the carrier saw another address, and another port, than the
    /// local one; `None` when it reported nothing or the local address is unknown.
    pub fn translation(&self) -> Option<(bool, bool)> {
        let l = self.local().filter(|_| self.reported())?;
        Some((
            self.received.is_some_and(|r| r != l.ip()),
            self.rport.is_some_and(|p| p != l.port()),
        ))
    }
}

/// Summarises what the carriers reported about this prober's address.
pub fn egress<'a>(targets: impl IntoIterator<Item = &'a TargetResult>) -> Egress {
    let mut e = Egress {
        different_source_reply: OTHER_SOURCE_NOTE,
        ..Egress::default()
    };
    for t in targets {
        if let (Some(ip), Some(from)) = (t.ip, t.reply_from) {
            let probed = std::net::SocketAddr::new(ip, t.port);
            e.replies_from_elsewhere
                .push(format!("{probed} answered from {from}"));
        }
        let seen = Sighting::of(t);
        if let Some(l) = seen.local() {
            push_unique(&mut e.local_addresses, l.ip());
        }
        if !seen.reported() {
            continue;
        }
        e.reporting_targets += 1;
        if let Some(ip) = t.received {
            push_unique(&mut e.public_addresses, ip);
        }
        let Some((ip_differs, port_differs)) = seen.translation() else {
            continue;
        };
        if port_differs && !ip_differs {
            e.port_translated = true;
        }
        let nat = ip_differs || port_differs;
        e.behind_nat = Some(e.behind_nat.unwrap_or(false) || nat);
    }
    e
}

fn push_unique(v: &mut Vec<IpAddr>, ip: IpAddr) {
    if !v.contains(&ip) {
        v.push(ip);
    }
}

/// Parses an `ip_identifier` (an IP or a CIDR).
pub fn parse_identifier(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// For an ip-based trunk: a warning when a gateway resolves to an address
/// outside every `ip_identifier` (inbound calls from there would not be matched
/// to the trunk). `gateways` pairs each configured address with what it resolved to.
pub fn ip_identifiers(trunk: &Trunk, gateways: &[(&str, &[IpAddr])]) -> Vec<Finding> {
    if trunk.auth_type != Field::Valid(AuthType::IpBased) {
        return Vec::new();
    }
    let nets: Vec<IpNet> = trunk
        .ip_identifiers
        .iter()
        .filter_map(|s| parse_identifier(s))
        .collect();
    // No usable identifier is lint's finding (ip_based_missing_identifiers / ip_identifier_invalid).
    if nets.is_empty() {
        return Vec::new();
    }
    let mut outside: Vec<(&str, IpAddr)> = Vec::new();
    for (host, ips) in gateways {
        for ip in ips.iter() {
            let inside = nets.iter().any(|n| n.contains(ip));
            if !inside && !outside.iter().any(|(_, o)| o == ip) {
                outside.push((host, *ip));
            }
        }
    }
    if outside.is_empty() {
        return Vec::new();
    }
    let what = outside
        .iter()
        .map(|(host, ip)| {
            if host.parse::<IpAddr>().is_ok() {
                format!("{ip}")
            } else {
                format!("{host:?} ({ip})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut list: Vec<Value> = trunk
        .ip_identifiers
        .iter()
        .map(|s| json!({"ip_address": s}))
        .collect();
    list.extend(
        outside
            .iter()
            .map(|(_, ip)| json!({"ip_address": IpNet::from(*ip).to_string()})),
    );
    vec![Finding {
        check: CheckId::GatewayOutsideIpIdentifiers,
        severity: CheckId::GatewayOutsideIpIdentifiers.severity(),
        message: format!(
            "gateway {what} is outside the trunk's ip_identifiers ({}): inbound calls from that \
             address would not be matched to this trunk",
            trunk.ip_identifiers.join(", ")
        ),
        remedy: "add the carrier's signalling addresses to ip_identifiers (an IP or CIDR each); \
                 ask the carrier for its full list, since it may send calls from more addresses \
                 than its gateway hostname resolves to"
            .into(),
        patch: Some(json!({ "ip_identifiers": list })),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Outcome, TargetResult};
    use crate::trunk::Transport;

    fn target(local: &str, received: Option<&str>, rport: Option<u16>) -> TargetResult {
        let mut t = blank();
        t.local = Some(local.parse().unwrap());
        t.received = received.map(|r| r.parse().unwrap());
        t.rport = rport;
        t
    }

    fn blank() -> TargetResult {
        crate::outcome::blank_result(None, 5060, Transport::Udp, Outcome::Ok)
    }

    #[test]
    fn nat_is_seen_from_received_and_rport() {
        let direct = target("192.0.2.5:40000", Some("192.0.2.5"), Some(40000));
        let e = egress([&direct]);
        assert_eq!(e.behind_nat, Some(false));
        assert_eq!(
            e.public_addresses,
            vec!["192.0.2.5".parse::<IpAddr>().unwrap()]
        );

        let natted = target("10.0.0.5:40000", Some("203.0.113.7"), Some(61000));
        let e = egress([&direct, &natted]);
        assert_eq!(e.behind_nat, Some(true));
        assert_eq!(e.public_addresses.len(), 2);
        assert!(!e.port_translated);

        let port_only = target("10.0.0.5:40000", Some("10.0.0.5"), Some(1234));
        assert!(egress([&port_only]).port_translated);

        // SIPp echoes the Via without received/rport: nothing is claimed.
        let silent = target("10.0.0.5:40000", None, None);
        let e = egress([&silent]);
        assert_eq!(e.behind_nat, None);
        assert_eq!(e.reporting_targets, 0);
        assert!(e.different_source_reply.contains("unconnected socket"));
        assert!(e.replies_from_elsewhere.is_empty());
    }

    fn ip_trunk(ids: &[&str]) -> Trunk {
        let mut t = Trunk::with_defaults("t");
        t.auth_type = Field::Valid(AuthType::IpBased);
        t.ip_identifiers = ids.iter().map(|s| s.to_string()).collect();
        t
    }

    #[test]
    fn gateways_outside_identifiers_get_a_patch() {
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
        let t = ip_trunk(&["127.0.0.1"]);
        let f = ip_identifiers(&t, &[("gw.test.local", &ips)]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message.contains("\"gw.test.local\" (127.0.0.2)"),
            "{}",
            f[0].message
        );
        assert_eq!(
            f[0].patch,
            Some(json!({"ip_identifiers": [
                {"ip_address": "127.0.0.1"}, {"ip_address": "127.0.0.2/32"}
            ]}))
        );
        assert!(ip_identifiers(&ip_trunk(&["127.0.0.0/30"]), &[("gw", &ips)]).is_empty());
        // Not ip-based, or no usable identifier: nothing here (lint covers it).
        let mut userpass = ip_trunk(&["10.0.0.0/8"]);
        userpass.auth_type = Field::Valid(AuthType::Userpass);
        assert!(ip_identifiers(&userpass, &[("gw", &ips)]).is_empty());
        assert!(ip_identifiers(&ip_trunk(&["garbage"]), &[("gw", &ips)]).is_empty());
        let v6: Vec<IpAddr> = vec!["2001:db8::1".parse().unwrap()];
        let f = ip_identifiers(&ip_trunk(&["10.0.0.0/8"]), &[("2001:db8::1", &v6)]);
        assert_eq!(
            f[0].patch.as_ref().unwrap()["ip_identifiers"][1]["ip_address"],
            "2001:db8::1/128"
        );
    }
}
