//! Findings `serve` learns from probing (the carrier's SDP, the gateways'
//! resolved addresses, the UDP size ladder), kept per trunk next to its static
//! (lint) findings.
//!
//! Findings do not flap per probe: media is evaluated over the latest final
//! response of each target (a timeout keeps the last reply), ip_identifiers over
//! the latest resolution of each gateway, MTU over the latest ladder of each
//! target; each holds until newer evidence says otherwise.

use std::cmp::Ordering;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::checks::{self, media, Finding};
use crate::metrics::Metrics;
use crate::outcome::{MtuResult, TargetResult};
use crate::sip::invite::estimate_invite;
use crate::trunk::Trunk;

/// What a trunk's findings are made of; shared by its probe loops and the fleet.
///
/// The evidence is kept in `Vec`s sorted by key text (binary search; a trunk has a
/// handful of targets, a name resolving to hundreds at most), in forms that need no
/// heap for what most targets show: at 100,000 targets the `BTreeMap`s with a
/// `String` key per entry kept ~400 B per target, most of it empty node slots
/// (tests/findings_memory.rs).
#[derive(Debug, Clone)]
pub struct TrunkFindings {
    /// Shared with the fleet's copy of the trunk.
    pub trunk: Arc<Trunk>,
    /// The static (lint) findings of the current definition.
    pub lint: Vec<Finding>,
    /// Publish lint and ip_identifiers findings (shard 0 only: every shard resolves every gateway).
    pub trunk_level: bool,
    /// Check ip_identifiers (not for a trunk described by flags).
    pub ip_identifiers: bool,
    /// What the media check needs of the latest final response of each target, by
    /// `ip:port`, in the text order of the keys (the order findings list senders in).
    replies: Vec<ReplyEntry>,
    /// The latest addresses of each gateway host, in the text order of the hosts.
    resolved: Vec<Resolved>,
    /// The latest ladder findings of each target, by `ip:port` in text order; a
    /// ladder without findings keeps nothing (it would add nothing to [`Self::all`]).
    mtu: Vec<(TargetKey, Box<[Finding]>)>,
}

/// Text formatted on the stack: compact keys are compared with, and checked
/// against, the strings they stand for without allocating. 64 bytes hold any
/// `[v6]:port` (47 at most).
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    fn new() -> StackText {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    fn of(v: &impl std::fmt::Display) -> StackText {
        use std::fmt::Write as _;
        let mut t = StackText::new();
        let fits = write!(t, "{v}").is_ok();
        debug_assert!(fits, "an address longer than 64 bytes");
        t
    }

    /// `ip`'s text, as its `Display` writes it. IPv4 without `fmt`: a lookup
    /// compares with a few of these per probe, ~3x faster written by hand.
    fn ip(ip: IpAddr) -> StackText {
        match ip {
            IpAddr::V4(v4) => {
                let mut t = StackText::new();
                t.push_ipv4(v4);
                t
            }
            IpAddr::V6(_) => StackText::of(&ip),
        }
    }

    /// The text of `SocketAddr::new(ip, port)`: `a.b.c.d:port`, `[v6]:port`.
    fn addr(ip: IpAddr, port: u16) -> StackText {
        match ip {
            IpAddr::V4(v4) => {
                let mut t = StackText::new();
                t.push_ipv4(v4);
                t.push(b':');
                t.push_decimal(port);
                t
            }
            IpAddr::V6(_) => StackText::of(&SocketAddr::new(ip, port)),
        }
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn push_decimal(&mut self, n: u16) {
        let mut digits = [0u8; 5];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            self.push(d);
        }
    }

    fn push_ipv4(&mut self, ip: std::net::Ipv4Addr) {
        for (i, o) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            self.push_decimal(o.into());
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s and ASCII digits and dots are copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The text of `SocketAddr::new(ip, port)` compared with `key`.
fn cmp_addr(ip: IpAddr, port: u16, key: &str) -> Ordering {
    StackText::addr(ip, port).as_str().cmp(key)
}

/// A target's key: the address when the key is its canonical text (as
/// [`target_key`] always is for a resolved target), else the text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TargetKey {
    Addr(IpAddr, u16),
    Text(Box<str>),
}

impl TargetKey {
    fn new(key: &str) -> TargetKey {
        match key.parse::<SocketAddr>() {
            Ok(a) if cmp_addr(a.ip(), a.port(), key).is_eq() => TargetKey::Addr(a.ip(), a.port()),
            _ => TargetKey::Text(key.into()),
        }
    }

    /// This key's text compared with `key`.
    fn cmp_str(&self, key: &str) -> Ordering {
        match self {
            TargetKey::Addr(ip, port) => cmp_addr(*ip, *port, key),
            TargetKey::Text(t) => (**t).cmp(key),
        }
    }
}

/// A target and what the media check reads of its latest final response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplyEntry {
    /// Keyed by its address, answered from that address without a Content-Type
    /// or body: what most carriers send (no SDP in an OPTIONS 200). 20 bytes, no heap.
    Bare(IpAddr, u16),
    /// Anything else.
    Kept(TargetKey, Box<KeptReply>),
}

impl ReplyEntry {
    fn new(key: TargetKey, r: media::Reply<'_>) -> ReplyEntry {
        match key {
            TargetKey::Addr(ip, port)
                if r.ip == Some(ip)
                    && r.port == port
                    && r.content_type.is_none()
                    && r.body.is_empty() =>
            {
                ReplyEntry::Bare(ip, port)
            }
            key => ReplyEntry::Kept(key, Box::new(KeptReply::new(r))),
        }
    }

    fn key(&self) -> TargetKey {
        match self {
            ReplyEntry::Bare(ip, port) => TargetKey::Addr(*ip, *port),
            ReplyEntry::Kept(key, _) => key.clone(),
        }
    }

    fn cmp_str(&self, key: &str) -> Ordering {
        match self {
            ReplyEntry::Bare(ip, port) => cmp_addr(*ip, *port, key),
            ReplyEntry::Kept(k, _) => k.cmp_str(key),
        }
    }

    fn view(&self) -> media::Reply<'_> {
        match self {
            ReplyEntry::Bare(ip, port) => media::Reply {
                ip: Some(*ip),
                port: *port,
                content_type: None,
                body: &[],
            },
            ReplyEntry::Kept(_, r) => r.view(),
        }
    }
}

/// The part of a target's latest final response the media check reads. Not the
/// whole [`TargetResult`]: with its parsed headers that was ~3 KB per target
/// (30 MB at 10,000 targets) for a body most carriers leave empty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeptReply {
    ip: Option<IpAddr>,
    port: u16,
    content_type: Option<Box<str>>,
    body: Box<[u8]>,
}

impl KeptReply {
    fn new(r: media::Reply<'_>) -> KeptReply {
        KeptReply {
            ip: r.ip,
            port: r.port,
            content_type: r.content_type.map(Into::into),
            body: r.body.into(),
        }
    }

    fn view(&self) -> media::Reply<'_> {
        media::Reply {
            ip: self.ip,
            port: self.port,
            content_type: self.content_type.as_deref(),
            body: &self.body,
        }
    }
}

/// Whether two replies are the same to the media check (sender, Content-Type, body).
fn same_reply(a: &media::Reply<'_>, b: &media::Reply<'_>) -> bool {
    a.ip == b.ip && a.port == b.port && a.content_type == b.content_type && a.body == b.body
}

/// A gateway host and its latest addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    /// An IP literal (in its canonical text) that resolved to itself: no heap.
    Itself(IpAddr),
    Named(Box<str>, Box<[IpAddr]>),
}

impl Resolved {
    fn new(host: &str, addresses: &[IpAddr]) -> Resolved {
        match addresses {
            [ip] if StackText::ip(*ip).as_str() == host => Resolved::Itself(*ip),
            _ => Resolved::Named(host.into(), addresses.into()),
        }
    }

    fn cmp_str(&self, host: &str) -> Ordering {
        match self {
            Resolved::Itself(ip) => StackText::ip(*ip).as_str().cmp(host),
            Resolved::Named(h, _) => (**h).cmp(host),
        }
    }

    fn host(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Resolved::Itself(ip) => ip.to_string().into(),
            Resolved::Named(h, _) => (**h).into(),
        }
    }

    fn addresses(&self) -> &[IpAddr] {
        match self {
            Resolved::Itself(ip) => std::slice::from_ref(ip),
            Resolved::Named(_, a) => a,
        }
    }
}

/// Inserts at `i` growing by one: most trunks keep 1 to 10 entries for hours, so
/// the `Vec`'s doubling would mostly hold empty slots.
fn insert_exact<T>(v: &mut Vec<T>, i: usize, x: T) {
    v.reserve_exact(1);
    v.insert(i, x);
}

/// Removes entry `i`, giving memory back once half of it is empty.
fn remove_shrinking<T>(v: &mut Vec<T>, i: usize) {
    v.remove(i);
    if v.len() * 2 <= v.capacity() {
        v.shrink_to_fit();
    }
}

/// A trunk's findings behind a lock, as the probe loops hold it.
pub type SharedFindings = Arc<Mutex<TrunkFindings>>;

impl TrunkFindings {
    pub fn new(
        trunk: impl Into<Arc<Trunk>>,
        lint: Vec<Finding>,
        trunk_level: bool,
        ip_identifiers: bool,
    ) -> Self {
        TrunkFindings {
            trunk: trunk.into(),
            lint,
            trunk_level,
            ip_identifiers,
            replies: Vec::new(),
            resolved: Vec::new(),
            mtu: Vec::new(),
        }
    }

    /// Keeps a target's probe result if it carries a final response. Returns
    /// whether the advertised media changed (the findings need publishing).
    pub fn observe_reply(&mut self, target: &str, r: &TargetResult) -> bool {
        let Some(reply) = media::Reply::of(r) else {
            return false;
        };
        match self.replies.binary_search_by(|e| e.cmp_str(target)) {
            Ok(i) => {
                if same_reply(&self.replies[i].view(), &reply) {
                    return false;
                }
                self.replies[i] = ReplyEntry::new(self.replies[i].key(), reply);
            }
            Err(i) => insert_exact(
                &mut self.replies,
                i,
                ReplyEntry::new(TargetKey::new(target), reply),
            ),
        }
        true
    }

    /// Keeps a gateway's latest addresses; returns whether they changed.
    pub fn observe_addresses(&mut self, host: &str, addresses: &[IpAddr]) -> bool {
        if addresses.is_empty() {
            return false;
        }
        match self.resolved.binary_search_by(|e| e.cmp_str(host)) {
            Ok(i) if self.resolved[i].addresses() == addresses => return false,
            Ok(i) => self.resolved[i] = Resolved::new(host, addresses),
            Err(i) => insert_exact(&mut self.resolved, i, Resolved::new(host, addresses)),
        }
        true
    }

    /// Keeps the findings of a target's latest ladder (its INVITE estimated for this trunk).
    pub fn observe_mtu(&mut self, target: &str, host: &str, result: &mut MtuResult) {
        let invite = estimate_invite(&self.trunk, host, result.target.port());
        result.invite_bytes = Some(invite.bytes);
        let findings = checks::mtu::findings(result, invite);
        match self.mtu.binary_search_by(|(k, _)| k.cmp_str(target)) {
            Ok(i) if findings.is_empty() => remove_shrinking(&mut self.mtu, i),
            Ok(i) => self.mtu[i].1 = findings.into(),
            Err(_) if findings.is_empty() => {}
            Err(i) => insert_exact(&mut self.mtu, i, (TargetKey::new(target), findings.into())),
        }
    }

    /// Drops what a target showed (its address left the gateway's DNS answer).
    pub fn forget_target(&mut self, target: &str) {
        if let Ok(i) = self.replies.binary_search_by(|e| e.cmp_str(target)) {
            remove_shrinking(&mut self.replies, i);
        }
        if let Ok(i) = self.mtu.binary_search_by(|(k, _)| k.cmp_str(target)) {
            remove_shrinking(&mut self.mtu, i);
        }
    }

    /// Every finding that holds now, most severe first, each check once per message.
    pub fn all(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        if self.trunk_level {
            out.extend(self.lint.iter().cloned());
        }
        if !self.replies.is_empty() {
            out.extend(media::media_of(
                &self.trunk,
                self.replies.iter().map(ReplyEntry::view),
            ));
        }
        if self.trunk_level && self.ip_identifiers {
            let hosts: Vec<_> = self.resolved.iter().map(Resolved::host).collect();
            let gws: Vec<(&str, &[IpAddr])> = hosts
                .iter()
                .zip(&self.resolved)
                .map(|(h, r)| (&**h, r.addresses()))
                .collect();
            out.extend(checks::path::ip_identifiers(&self.trunk, &gws));
        }
        for f in self.mtu.iter().flat_map(|(_, f)| f.iter()) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    /// Sets the trunk's `trunkprobe_finding` series (and info, on shard 0).
    pub fn publish(&self, metrics: &Metrics, generation: u64, key: &str) {
        let all = self.all();
        if self.trunk_level {
            metrics.record_trunk(generation, key, &self.trunk, &all);
        } else {
            metrics.record_findings(generation, key, &self.trunk, &all);
        }
    }
}

/// Locks a trunk's findings, recovering from a poisoned lock.
pub fn lock(f: &SharedFindings) -> std::sync::MutexGuard<'_, TrunkFindings> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckId;
    use crate::outcome::{blank_result, Outcome};
    use crate::sip::message::parse_response;
    use crate::trunk::{AuthType, Field, Transport};

    fn reply(sdp: Option<&str>) -> TargetResult {
        let mut r = blank_result(
            Some("127.0.0.1".parse().unwrap()),
            5060,
            Transport::Udp,
            Outcome::Ok,
        );
        let body = sdp.unwrap_or("");
        let ct = if sdp.is_some() {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        let msg = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        r.response = Some(parse_response(msg.as_bytes()).unwrap());
        r.status_code = Some(200);
        r
    }

    fn sdp(payloads: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {payloads}\r\n"
        )
    }

    fn checks_of(f: &TrunkFindings) -> Vec<CheckId> {
        f.all().iter().map(|f| f.check).collect()
    }

    #[test]
    fn media_findings_follow_the_latest_reply_and_survive_timeouts() {
        let trunk = Trunk::with_defaults("t");
        let mut f = TrunkFindings::new(trunk, Vec::new(), true, true);
        assert!(f.all().is_empty(), "nothing seen, nothing claimed");
        assert!(f.observe_reply("127.0.0.1:5060", &reply(Some(&sdp("18")))));
        assert_eq!(checks_of(&f), [CheckId::MediaCodecMismatch]);
        assert!(
            !f.observe_reply("127.0.0.1:5060", &reply(Some(&sdp("18")))),
            "the same SDP again needs no publishing"
        );
        let timeout = blank_result(None, 5060, Transport::Udp, Outcome::Timeout);
        assert!(!f.observe_reply("127.0.0.1:5060", &timeout));
        assert_eq!(
            checks_of(&f),
            [CheckId::MediaCodecMismatch],
            "a timeout keeps it"
        );
        assert!(f.observe_reply("127.0.0.1:5060", &reply(Some(&sdp("0 8")))));
        assert!(f.all().is_empty(), "the carrier fixed its SDP");
        assert!(f.observe_reply("127.0.0.1:5060", &reply(None)));
        assert_eq!(checks_of(&f), [CheckId::MediaNotAdvertised]);
        f.forget_target("127.0.0.1:5060");
        assert!(f.all().is_empty());
    }

    #[test]
    fn trunk_level_findings_only_on_shard_zero() {
        let mut trunk = Trunk::with_defaults("t");
        trunk.auth_type = Field::Valid(AuthType::IpBased);
        trunk.ip_identifiers = vec!["10.0.0.0/8".into()];
        let lint = crate::checks::lint(&trunk);
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let mut zero = TrunkFindings::new(trunk.clone(), lint.clone(), true, true);
        assert!(zero.observe_addresses("gw", &ips));
        assert!(!zero.observe_addresses("gw", &ips));
        assert!(checks_of(&zero).contains(&CheckId::GatewayOutsideIpIdentifiers));
        let mut other = TrunkFindings::new(trunk, lint, false, true);
        other.observe_addresses("gw", &ips);
        assert!(other.all().is_empty(), "{:?}", other.all());
    }

    /// One rung of a size ladder: answered with a 200, or lost.
    fn rung(size: usize, ok: bool) -> crate::transport::ladder::Rung {
        use crate::transport::ladder::{Rung, RungStatus};
        Rung {
            size,
            bytes: size,
            status: if ok {
                RungStatus::Answered
            } else {
                RungStatus::Lost
            },
            status_code: ok.then_some(200),
            rtt: None,
            retransmissions: 0,
            detail: None,
        }
    }

    #[test]
    fn mtu_findings_hold_per_target() {
        let addr = "127.0.0.1:5060".parse().unwrap();
        let mut lost = MtuResult::new(addr, vec![rung(600, true), rung(1400, false)], None, None);
        let mut f = TrunkFindings::new(Trunk::with_defaults("t"), Vec::new(), true, true);
        f.observe_mtu("127.0.0.1:5060", "127.0.0.1", &mut lost);
        assert!(lost.invite_bytes.is_some());
        assert!(checks_of(&f).contains(&CheckId::UdpLargeMessagesLost));
        let mut fine = MtuResult::new(addr, vec![rung(600, true), rung(1400, true)], None, None);
        f.observe_mtu("127.0.0.1:5060", "127.0.0.1", &mut fine);
        assert!(!checks_of(&f).contains(&CheckId::UdpLargeMessagesLost));
    }

    /// The findings as they were kept before the sorted `Vec`s (`BTreeMap`s keyed
    /// by `String`, every reply and ladder kept whole): the differential tests
    /// below hold the new representation to the same answers.
    mod old {
        use std::collections::BTreeMap;
        use std::net::IpAddr;

        use crate::checks::{self, media, Finding};
        use crate::outcome::MtuResult;
        use crate::outcome::TargetResult;
        use crate::sip::invite::estimate_invite;
        use crate::trunk::Trunk;

        #[derive(Debug, Clone, PartialEq, Eq)]
        struct KeptReply {
            ip: Option<IpAddr>,
            port: u16,
            content_type: Option<Box<str>>,
            body: Box<[u8]>,
        }

        pub struct OldFindings {
            pub trunk: Trunk,
            pub trunk_level: bool,
            pub ip_identifiers: bool,
            replies: BTreeMap<String, KeptReply>,
            resolved: BTreeMap<String, Vec<IpAddr>>,
            mtu: BTreeMap<String, Vec<Finding>>,
        }

        impl OldFindings {
            pub fn new(trunk: Trunk, trunk_level: bool, ip_identifiers: bool) -> Self {
                OldFindings {
                    trunk,
                    trunk_level,
                    ip_identifiers,
                    replies: BTreeMap::new(),
                    resolved: BTreeMap::new(),
                    mtu: BTreeMap::new(),
                }
            }

            pub fn observe_reply(&mut self, target: &str, r: &TargetResult) -> bool {
                let Some(reply) = media::Reply::of(r) else {
                    return false;
                };
                let same = self.replies.get(target).is_some_and(|o| {
                    o.ip == reply.ip
                        && o.port == reply.port
                        && o.content_type.as_deref() == reply.content_type
                        && *o.body == *reply.body
                });
                if !same {
                    let kept = KeptReply {
                        ip: reply.ip,
                        port: reply.port,
                        content_type: reply.content_type.map(Into::into),
                        body: reply.body.into(),
                    };
                    self.replies.insert(target.to_string(), kept);
                }
                !same
            }

            pub fn observe_addresses(&mut self, host: &str, addresses: &[IpAddr]) -> bool {
                if addresses.is_empty()
                    || self.resolved.get(host).map(Vec::as_slice) == Some(addresses)
                {
                    return false;
                }
                self.resolved.insert(host.to_string(), addresses.to_vec());
                true
            }

            pub fn observe_mtu(&mut self, target: &str, host: &str, result: &mut MtuResult) {
                let invite = estimate_invite(&self.trunk, host, result.target.port());
                result.invite_bytes = Some(invite.bytes);
                self.mtu
                    .insert(target.to_string(), checks::mtu::findings(result, invite));
            }

            pub fn forget_target(&mut self, target: &str) {
                self.replies.remove(target);
                self.mtu.remove(target);
            }

            pub fn all(&self, lint: &[Finding]) -> Vec<Finding> {
                let mut out: Vec<Finding> = Vec::new();
                if self.trunk_level {
                    out.extend(lint.iter().cloned());
                }
                if !self.replies.is_empty() {
                    out.extend(media::media_of(
                        &self.trunk,
                        self.replies.values().map(|k| media::Reply {
                            ip: k.ip,
                            port: k.port,
                            content_type: k.content_type.as_deref(),
                            body: &k.body,
                        }),
                    ));
                }
                if self.trunk_level && self.ip_identifiers {
                    let gws: Vec<(&str, &[IpAddr])> = self
                        .resolved
                        .iter()
                        .map(|(h, a)| (h.as_str(), a.as_slice()))
                        .collect();
                    out.extend(checks::path::ip_identifiers(&self.trunk, &gws));
                }
                for f in self.mtu.values().flatten() {
                    if !out.contains(f) {
                        out.push(f.clone());
                    }
                }
                out.sort_by_key(|f| std::cmp::Reverse(f.severity));
                out
            }
        }
    }

    /// A final response from `ip:port` with this Content-Type and body.
    fn response(ip: Option<IpAddr>, port: u16, ct: Option<&str>, body: &str) -> TargetResult {
        let mut r = blank_result(ip, port, Transport::Udp, Outcome::Ok);
        let ct = ct
            .map(|c| format!("Content-Type: {c}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        r.response = Some(parse_response(msg.as_bytes()).unwrap());
        r.status_code = Some(200);
        r
    }

    /// Keys as the daemon makes them, and keys it never makes (not an address's
    /// canonical text) that must still behave as before.
    const KEYS: [&str; 9] = [
        "10.0.0.2:5060",
        "10.0.0.10:5060",
        "10.0.0.2:5061",
        "[2001:db8::1]:5060",
        "[::ffff:10.0.0.3]:5060",
        "unresolved",
        "[2001:DB8::2]:5060",
        "[fe80::1%2]:5060",
        "010.0.0.1:5060",
    ];
    const HOSTS: [&str; 7] = [
        "10.0.0.1",
        "10.0.0.10",
        "192.0.2.1",
        "2001:db8::1",
        "2001:DB8::1",
        "gw.example.com",
        "010.0.0.1",
    ];
    const IPS: [&str; 6] = [
        "10.0.0.1",
        "10.0.0.10",
        "192.0.2.1",
        "2001:db8::1",
        "::ffff:10.0.0.3",
        "10.0.0.2",
    ];
    const CONTENT_TYPES: [Option<&str>; 4] = [
        None,
        Some("application/sdp"),
        Some("text/plain"),
        Some("Application/SDP; charset=x"),
    ];
    const BODIES: [&str; 7] = [
        "",
        "  \r\n",
        "v=0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n",
        "v=0\r\nm=audio 4000 RTP/AVP 18\r\n",
        "v=0\r\nm=audio 4000 RTP/AVP 8\r\n",
        "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n",
        "<html>",
    ];

    /// One observation of the daemon's.
    #[derive(Debug, Clone)]
    enum Op {
        /// A final response for `KEYS[key]`: from the key's own address (`sender`
        /// 0) or `IPS[sender - 1]`, or without an address (`sender` past `IPS`).
        Reply {
            key: usize,
            sender: usize,
            other_port: bool,
            ct: usize,
            body: usize,
        },
        Timeout(usize),
        Addresses(usize, Vec<usize>),
        /// A ladder of `KEYS[0]`...: 0 clean, 1 large lost, 2 irregular, 3 none answered.
        Mtu(usize, usize),
        Forget(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..KEYS.len(), 0..IPS.len() + 2, proptest::bool::weighted(0.1), 0..CONTENT_TYPES.len(), 0..BODIES.len())
                .prop_map(|(key, sender, other_port, ct, body)| Op::Reply { key, sender, other_port, ct, body }),
            1 => (0..KEYS.len()).prop_map(Op::Timeout),
            3 => (0..HOSTS.len(), proptest::collection::vec(0..IPS.len(), 0..4))
                .prop_map(|(h, a)| Op::Addresses(h, a)),
            2 => (0..KEYS.len(), 0..4usize).prop_map(|(k, l)| Op::Mtu(k, l)),
            2 => (0..KEYS.len()).prop_map(Op::Forget),
        ]
    }

    fn key_addr(key: &str) -> Option<std::net::SocketAddr> {
        key.parse().ok()
    }

    fn ladder(addr: std::net::SocketAddr, kind: usize) -> MtuResult {
        let pattern: &[bool] = match kind {
            0 => &[true, true, true],
            1 => &[true, false, false],
            2 => &[false, true, false],
            _ => &[false, false, false],
        };
        let rungs = pattern
            .iter()
            .zip([600, 1200, 1400])
            .map(|(&ok, size)| rung(size, ok))
            .collect();
        MtuResult::new(addr, rungs, Some(1500), None)
    }

    /// Runs `ops` on both representations; panics where they differ.
    fn differential(trunk: &Trunk, trunk_level: bool, ip_identifiers: bool, ops: &[Op]) {
        let lint = crate::checks::lint(trunk);
        let mut new = TrunkFindings::new(trunk.clone(), lint.clone(), trunk_level, ip_identifiers);
        let mut old = old::OldFindings::new(trunk.clone(), trunk_level, ip_identifiers);
        let fallback: std::net::SocketAddr = "192.0.2.99:5060".parse().unwrap();
        for (n, op) in ops.iter().enumerate() {
            match op {
                Op::Reply {
                    key,
                    sender,
                    other_port,
                    ct,
                    body,
                } => {
                    let own = key_addr(KEYS[*key]);
                    let ip = match sender {
                        0 => own.map(|a| a.ip()),
                        s => IPS.get(s - 1).map(|i| i.parse().unwrap()),
                    };
                    let port = own.map_or(5060, |a| a.port()) + u16::from(*other_port);
                    let r = response(ip, port, CONTENT_TYPES[*ct], BODIES[*body]);
                    assert_eq!(
                        new.observe_reply(KEYS[*key], &r),
                        old.observe_reply(KEYS[*key], &r),
                        "op {n} {op:?}"
                    );
                }
                Op::Timeout(key) => {
                    let r = blank_result(None, 5060, Transport::Udp, Outcome::Timeout);
                    assert_eq!(
                        new.observe_reply(KEYS[*key], &r),
                        old.observe_reply(KEYS[*key], &r),
                        "op {n} {op:?}"
                    );
                }
                Op::Addresses(host, ips) => {
                    let ips: Vec<IpAddr> = ips.iter().map(|i| IPS[*i].parse().unwrap()).collect();
                    assert_eq!(
                        new.observe_addresses(HOSTS[*host], &ips),
                        old.observe_addresses(HOSTS[*host], &ips),
                        "op {n} {op:?}"
                    );
                }
                Op::Mtu(key, kind) => {
                    let addr = key_addr(KEYS[*key]).unwrap_or(fallback);
                    let host = addr.ip().to_string();
                    let (mut a, mut b) = (ladder(addr, *kind), ladder(addr, *kind));
                    new.observe_mtu(KEYS[*key], &host, &mut a);
                    old.observe_mtu(KEYS[*key], &host, &mut b);
                    assert_eq!(a.invite_bytes, b.invite_bytes);
                }
                Op::Forget(key) => {
                    new.forget_target(KEYS[*key]);
                    old.forget_target(KEYS[*key]);
                }
            }
            assert_eq!(new.all(), old.all(&lint), "after op {n} {op:?}");
        }
    }

    fn trunk_of(kind: usize) -> Trunk {
        use crate::trunk::{parse_codecs, MediaEncryption};
        let mut t = Trunk::with_defaults("t");
        t.auth_type = Field::Valid(AuthType::IpBased);
        t.ip_identifiers = vec!["10.0.0.0/8".into()];
        match kind {
            0 => {}
            1 => {
                t.media_encryption = Field::Valid(MediaEncryption::Sdes);
                t.transport = Field::Valid(Transport::Tls);
            }
            _ => t.allow = parse_codecs("g729"),
        }
        t
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any sequence of observations gives the same "changed" answers and the
        /// same findings, in the same order, as the `BTreeMap`s did.
        #[test]
        fn same_findings_as_the_btreemaps(
            trunk in 0..3usize,
            trunk_level in proptest::bool::weighted(0.8),
            ip_identifiers in proptest::bool::weighted(0.8),
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            differential(&trunk_of(trunk), trunk_level, ip_identifiers, &ops);
        }
    }

    #[test]
    fn a_scripted_sequence_matches_the_btreemaps() {
        let reply = |key, sender, ct, body| Op::Reply {
            key,
            sender,
            other_port: false,
            ct,
            body,
        };
        let ops = [
            Op::Addresses(0, vec![0]),
            Op::Addresses(3, vec![3]),
            Op::Addresses(5, vec![2, 0, 2]),
            Op::Addresses(0, vec![0]),
            Op::Addresses(5, vec![]),
            // Bare replies, then SDP from some of them, in key text order.
            reply(1, 0, 0, 0),
            reply(0, 0, 0, 0),
            reply(3, 0, 0, 0),
            reply(0, 0, 1, 3),
            reply(1, 0, 1, 3),
            reply(3, 0, 3, 3),
            reply(0, 0, 1, 3),
            // The SDP goes, then comes back as whitespace, a text body, no Content-Type.
            reply(1, 0, 0, 0),
            reply(1, 0, 1, 1),
            reply(1, 0, 1, 0),
            reply(1, 0, 1, 0),
            reply(1, 0, 2, 2),
            reply(1, 0, 0, 2),
            reply(1, 0, 0, 0),
            // A bare reply from another address, then without one.
            reply(0, 3, 0, 0),
            reply(0, 7, 0, 0),
            reply(0, 0, 0, 0),
            Op::Timeout(0),
            reply(4, 0, 1, 6),
            reply(5, 0, 0, 0),
            Op::Mtu(0, 1),
            Op::Mtu(1, 2),
            Op::Mtu(3, 0),
            Op::Mtu(0, 0),
            Op::Forget(1),
            Op::Forget(3),
            Op::Forget(5),
            Op::Forget(8),
        ];
        for trunk in 0..3 {
            differential(&trunk_of(trunk), true, true, &ops);
        }
    }

    #[test]
    fn senders_are_listed_in_the_text_order_of_their_keys() {
        let mut f = TrunkFindings::new(Trunk::with_defaults("t"), Vec::new(), true, true);
        let g729 = "v=0\r\nm=audio 4000 RTP/AVP 18\r\n";
        for key in ["[2001:db8::1]:5060", "10.0.0.2:5060", "10.0.0.10:5060"] {
            let a: std::net::SocketAddr = key.parse().unwrap();
            let r = response(Some(a.ip()), a.port(), Some("application/sdp"), g729);
            assert!(f.observe_reply(key, &r));
        }
        let all = f.all();
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(
            all[0]
                .message
                .ends_with("(SDP from 10.0.0.10:5060, 10.0.0.2:5060, [2001:db8::1]:5060)"),
            "{}",
            all[0].message
        );
    }

    #[test]
    fn a_bare_reply_needs_no_heap() {
        assert!(std::mem::size_of::<ReplyEntry>() <= 32);
        let mut f = TrunkFindings::new(Trunk::with_defaults("t"), Vec::new(), true, true);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let bare = response(Some(ip), 5060, None, "");
        assert!(f.observe_reply("[2001:db8::1]:5060", &bare));
        assert!(!f.observe_reply("[2001:db8::1]:5060", &bare));
        assert_eq!(f.replies, [ReplyEntry::Bare(ip, 5060)]);
        // Not the canonical text of an address: kept as text, found again.
        assert!(f.observe_reply("[2001:DB8::1]:5060", &bare));
        assert!(!f.observe_reply("[2001:DB8::1]:5060", &bare));
        assert!(matches!(
            &f.replies[0],
            ReplyEntry::Kept(TargetKey::Text(k), _) if &**k == "[2001:DB8::1]:5060"
        ));
    }

    #[test]
    fn an_ip_literal_resolving_to_itself_needs_no_heap() {
        assert!(std::mem::size_of::<Resolved>() <= 32);
        let mut f = TrunkFindings::new(Trunk::with_defaults("t"), Vec::new(), true, true);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(f.observe_addresses("2001:db8::1", &[ip]));
        assert!(!f.observe_addresses("2001:db8::1", &[ip]));
        assert_eq!(f.resolved, [Resolved::Itself(ip)]);
    }

    #[test]
    fn a_clean_ladder_keeps_nothing() {
        let mut f = TrunkFindings::new(Trunk::with_defaults("t"), Vec::new(), true, true);
        let addr: std::net::SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        f.observe_mtu("[2001:db8::1]:5060", "2001:db8::1", &mut ladder(addr, 1));
        assert_eq!(f.mtu.len(), 1);
        f.observe_mtu("[2001:db8::1]:5060", "2001:db8::1", &mut ladder(addr, 0));
        assert!(f.mtu.is_empty(), "a clean ladder adds no finding");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let ips = [
            "0.0.0.0",
            "10.0.0.10",
            "127.0.0.1",
            "255.255.255.255",
            "1.20.199.9",
            "::",
            "::1",
            "2001:db8::1",
            "::ffff:10.0.0.3",
            "fe80::1:2:3:4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(StackText::ip(ip).as_str(), ip.to_string());
            for port in [0, 9, 10, 99, 5060, 5061, 10000, 65535] {
                let text = SocketAddr::new(ip, port).to_string();
                assert_eq!(StackText::addr(ip, port).as_str(), text);
                assert!(cmp_addr(ip, port, &text).is_eq());
                assert_eq!(TargetKey::new(&text), TargetKey::Addr(ip, port));
            }
        }
    }
}
