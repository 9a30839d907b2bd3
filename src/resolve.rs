//! Gateway resolution (RFC 3263): a configured gateway becomes the addresses to probe.
//!
//! The trunk always names a port (the API defaults it to 5060), so per RFC 3263
//! §4.2 a hostname gets A and AAAA lookups and every address becomes its own
//! target. SRV and NAPTR records of the domain are looked up as well and reported
//! as information: they show what a carrier publishes, but Bolna dials the
//! configured host and port.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use serde::Serialize;

use crate::trunk::Transport;

/// Why a name did not resolve. Each is a distinct outcome for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DnsFailure {
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no A or AAAA record.
    NoAddress,
    /// No DNS server answered in time.
    Timeout,
    /// Anything else (server failure, refused, malformed name, ...).
    Other { detail: String },
}

impl DnsFailure {
    fn from_net(e: &NetError) -> DnsFailure {
        if e.is_nx_domain() {
            DnsFailure::NxDomain
        } else if e.is_no_records_found() {
            DnsFailure::NoAddress
        } else if matches!(e, NetError::Timeout) {
            DnsFailure::Timeout
        } else {
            DnsFailure::Other {
                detail: e.to_string(),
            }
        }
    }

    /// A short phrase for reports.
    pub fn describe(&self) -> String {
        match self {
            DnsFailure::NxDomain => "the name does not exist (NXDOMAIN)".into(),
            DnsFailure::NoAddress => "the name has no A or AAAA record".into(),
            DnsFailure::Timeout => "no DNS server answered in time".into(),
            DnsFailure::Other { detail } => format!("DNS lookup failed: {detail}"),
        }
    }
}

/// An SRV record seen for the gateway's domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvInfo {
    pub name: String,
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// A NAPTR record seen for the gateway's domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NaptrInfo {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    pub replacement: String,
}

/// What resolving one gateway produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    /// Addresses to probe, IPv4 first, in the order DNS gave them.
    pub addresses: Vec<IpAddr>,
    /// Whether the gateway was an IP literal (no DNS involved).
    pub literal: bool,
    /// Whether the answer came from `--resolve` rather than DNS.
    pub pinned: bool,
    /// Time spent on the A/AAAA lookup.
    #[serde(rename = "lookup_ms", serialize_with = "crate::text::ser_ms")]
    pub lookup_time: Duration,
    /// Smallest TTL of the address records, when known.
    pub ttl: Option<u32>,
    pub failure: Option<DnsFailure>,
    pub srv: Vec<SrvInfo>,
    pub naptr: Vec<NaptrInfo>,
}

impl Resolution {
    fn literal(ip: IpAddr) -> Resolution {
        Resolution {
            addresses: vec![ip],
            literal: true,
            pinned: false,
            lookup_time: Duration::ZERO,
            ttl: None,
            failure: None,
            srv: Vec::new(),
            naptr: Vec::new(),
        }
    }
}

/// Resolves gateways with hickory, against the system's DNS or a given server.
#[derive(Clone)]
pub struct GatewayResolver {
    inner: TokioResolver,
    /// Names answered locally (`--resolve HOST:IP`, the demo), never sent to DNS.
    pinned: HashMap<String, Vec<IpAddr>>,
    /// `-4` (`Some(true)`) or `-6` (`Some(false)`): only that family's addresses.
    family: Option<bool>,
    /// Resolutions asking DNS at once, shared by every clone: `serve` starting
    /// 10,000 named gateways would otherwise put 10,000 lookups (30,000
    /// queries with SRV and NAPTR) in flight together, a burst a resolver may
    /// rate-limit, each holding its query state: at 2,000 TLS gateways the
    /// in-flight lookups were most of the daemon's peak memory.
    lookups: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Gateway resolutions in flight at once ([`GatewayResolver`]'s `lookups`).
const LOOKUPS_IN_FLIGHT: usize = 64;

impl GatewayResolver {
    /// Uses the system configuration (`/etc/resolv.conf`, `/etc/hosts`).
    pub fn system() -> Result<GatewayResolver, String> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| e.to_string())?;
        tune(builder.options_mut());
        let inner = builder.build().map_err(|e| e.to_string())?;
        Ok(GatewayResolver {
            inner,
            pinned: HashMap::new(),
            family: None,
            lookups: std::sync::Arc::new(tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT)),
        })
    }

    /// Sends every query to `server` (UDP, falling back to TCP) and nowhere else.
    pub fn with_server(server: SocketAddr) -> Result<GatewayResolver, String> {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        tune(builder.options_mut());
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        let inner = builder.build().map_err(|e| e.to_string())?;
        Ok(GatewayResolver {
            inner,
            pinned: HashMap::new(),
            family: None,
            lookups: std::sync::Arc::new(tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT)),
        })
    }

    /// Answers `host` with `ip` without asking DNS (like curl's `--resolve`).
    /// Keeps only IPv4 (`v4`) or only IPv6 addresses of every resolution (`-4`, `-6`).
    pub fn only_family(&mut self, v4: bool) {
        self.family = Some(v4);
    }

    pub fn pin(&mut self, host: &str, ip: IpAddr) {
        self.pinned
            .entry(host.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(ip);
    }

    /// The answer for an IP literal or a pinned name, which never asks DNS (and
    /// never changes); `None` for a name DNS has to resolve.
    pub fn resolve_locally(&self, host: &str) -> Option<Resolution> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Resolution::literal(ip));
        }
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let ips = self.pinned.get(&key)?;
        let mut r = Resolution::literal(*ips.first()?);
        r.addresses = ips.clone();
        r.literal = false;
        r.pinned = true;
        Some(r)
    }

    /// Resolves a configured gateway address for a trunk on `transport`.
    pub async fn resolve(&self, host: &str, transport: Transport) -> Resolution {
        let mut r = self.resolve_any(host, transport).await;
        if let Some(v4) = self.family {
            let had = !r.addresses.is_empty();
            r.addresses.retain(|ip| ip.is_ipv4() == v4);
            if had && r.addresses.is_empty() && r.failure.is_none() {
                r.failure = Some(DnsFailure::NoAddress);
            }
        }
        r
    }

    async fn resolve_any(&self, host: &str, transport: Transport) -> Resolution {
        if let Some(r) = self.resolve_locally(host) {
            return r;
        }
        // Never closed: a permit always comes.
        let _permit = self.lookups.acquire().await;
        let fqdn = absolute(host);
        let started = Instant::now();
        let ips = self.inner.lookup_ip(fqdn.as_str());
        let srv_name = format!("{}.{fqdn}", srv_prefix(transport));
        let srv = self.inner.lookup(srv_name.as_str(), RecordType::SRV);
        let naptr = self.inner.lookup(fqdn.as_str(), RecordType::NAPTR);
        let (ips, srv, naptr) = tokio::join!(
            async {
                let r = ips.await;
                (r, started.elapsed())
            },
            srv,
            naptr
        );
        let (ips, lookup_time) = ips;

        let mut res = Resolution {
            addresses: Vec::new(),
            literal: false,
            pinned: false,
            lookup_time,
            ttl: None,
            failure: None,
            srv: Vec::new(),
            naptr: Vec::new(),
        };
        match ips {
            Ok(lookup) => {
                let mut v4: Vec<IpAddr> = Vec::new();
                let mut v6: Vec<IpAddr> = Vec::new();
                for ip in lookup.iter() {
                    let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
                    if !list.contains(&ip) {
                        list.push(ip);
                    }
                }
                res.ttl = lookup.as_lookup().answers().iter().map(|r| r.ttl).min();
                res.addresses = v4.into_iter().chain(v6).collect();
                if res.addresses.is_empty() {
                    res.failure = Some(DnsFailure::NoAddress);
                }
            }
            Err(e) => res.failure = Some(DnsFailure::from_net(&e)),
        }
        if let Ok(lookup) = srv {
            for r in lookup.answers() {
                if let RData::SRV(s) = &r.data {
                    res.srv.push(SrvInfo {
                        name: srv_name.trim_end_matches('.').to_string(),
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_string().trim_end_matches('.').to_string(),
                    });
                }
            }
            res.srv
                .sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        }
        if let Ok(lookup) = naptr {
            for r in lookup.answers() {
                if let RData::NAPTR(n) = &r.data {
                    res.naptr.push(NaptrInfo {
                        order: n.order,
                        preference: n.preference,
                        flags: String::from_utf8_lossy(&n.flags).into_owned(),
                        service: String::from_utf8_lossy(&n.services).into_owned(),
                        replacement: n.replacement.to_string().trim_end_matches('.').to_string(),
                    });
                }
            }
            res.naptr.sort_by_key(|n| (n.order, n.preference));
        }
        res
    }
}

fn tune(opts: &mut hickory_resolver::config::ResolverOpts) {
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.ndots = 0;
}

/// The name with a trailing dot, so no search domain is appended.
fn absolute(host: &str) -> String {
    if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    }
}

/// The RFC 3263 SRV service label for a transport.
pub fn srv_prefix(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS server that never answers: what it has been asked so far shows
    /// how many resolutions are in flight at once.
    #[tokio::test(flavor = "current_thread")]
    async fn no_more_than_the_bound_of_resolutions_ask_dns_at_once() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let resolver = GatewayResolver::with_server(server.local_addr().unwrap()).unwrap();
        let lookups: Vec<_> = (0..200)
            .map(|i| {
                let r = resolver.clone();
                tokio::spawn(async move { r.resolve(&format!("gw{i}.test"), Transport::Udp).await })
            })
            .collect();
        let mut names = std::collections::BTreeSet::new();
        let mut buf = [0u8; 512];
        let until = tokio::time::Instant::now() + Duration::from_millis(700);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, server.recv_from(&mut buf)).await
        {
            // The question's labels after the 12-byte header; the gateway's is
            // the one that starts "gw" (SRV names start with _sip._udp).
            let mut at = 12;
            while at < n && buf[at] != 0 {
                let len = buf[at] as usize;
                let label = &buf[at + 1..(at + 1 + len).min(n)];
                if label.starts_with(b"gw") {
                    names.insert(label.to_vec());
                }
                at += 1 + len;
            }
        }
        assert!(names.len() >= 10, "lookups do run: {}", names.len());
        assert!(
            names.len() <= LOOKUPS_IN_FLIGHT,
            "{} in flight",
            names.len()
        );
        for l in lookups {
            l.abort();
        }
    }

    #[test]
    fn srv_labels_follow_rfc3263() {
        assert_eq!(srv_prefix(Transport::Udp), "_sip._udp");
        assert_eq!(srv_prefix(Transport::Tls), "_sips._tcp");
        assert_eq!(absolute("gw.example.com"), "gw.example.com.");
        assert_eq!(absolute("gw.example.com."), "gw.example.com.");
    }

    #[tokio::test]
    async fn ip_literals_skip_dns() {
        // A resolver pointed at a closed port proves no query is made.
        let r = GatewayResolver::with_server("127.0.0.1:9".parse().unwrap()).unwrap();
        let res = r.resolve("::1", Transport::Udp).await;
        assert!(res.literal);
        assert_eq!(res.addresses, vec!["::1".parse::<IpAddr>().unwrap()]);
        assert!(res.failure.is_none());
    }
}
