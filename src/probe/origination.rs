//! The origination check's probes: every origination URI resolved, every
//! address probed (each its own target), and each result explained by
//! [`crate::checks::origination`].

use std::net::{IpAddr, SocketAddr};

use super::{fan_out, Prober};
use crate::checks::origination::{explain, OriginationResult, OriginationUri, DEFAULT_HOST};
use crate::checks::reachability;
use crate::outcome::{blank_result, Outcome};
use crate::resolve::GatewayResolver;
use crate::transport::Target;
use crate::trunk::BOLNA_SIP_IP;

/// Resolves and probes every URI (each address is its own target).
pub async fn check(
    uris: &[OriginationUri],
    resolver: &GatewayResolver,
    prober: &Prober,
    concurrency: usize,
) -> Vec<OriginationResult> {
    let mut results = Vec::with_capacity(uris.len());
    let mut targets = Vec::new();
    for (ui, u) in uris.iter().enumerate() {
        let dns = resolver.resolve(&u.host, u.transport).await;
        let guide_ip: IpAddr = BOLNA_SIP_IP.parse().expect("a literal IP");
        let resolves_to_guide_ip = (u.host.eq_ignore_ascii_case(DEFAULT_HOST) && !dns.literal)
            .then(|| dns.addresses.contains(&guide_ip));
        let mut r = OriginationResult {
            uri: u.uri.clone(),
            host: u.host.clone(),
            port: u.port,
            transport: u.transport,
            dns: dns.clone(),
            guide_ip: BOLNA_SIP_IP,
            resolves_to_guide_ip,
            targets: Vec::new(),
            ok: false,
        };
        if let Some(f) = &dns.failure {
            let mut t = blank_result(None, u.port, u.transport, Outcome::DnsError);
            t.detail = f.describe();
            r.targets.push(explain(u, t));
        }
        for ip in &dns.addresses {
            let target = Target {
                host: u.host.as_str().into(),
                addr: SocketAddr::new(*ip, u.port),
                transport: u.transport,
            };
            targets.push((ui, target));
        }
        results.push(r);
    }
    let done = fan_out(targets, concurrency, |(ui, target)| {
        let prober = prober.clone();
        async move { (ui, prober.probe(&target).await) }
    })
    .await;
    let ctx = reachability::Context {
        timeout: prober.exchange_config().timeout,
        seen_as: None,
    };
    for (ui, mut t) in done {
        t.detail = reachability::explain(&t, &ctx).detail;
        let target = explain(&uris[ui], t);
        results[ui].targets.push(target);
    }
    for r in &mut results {
        r.ok = !r.targets.is_empty() && r.targets.iter().all(|t| t.result.outcome == Outcome::Ok);
    }
    results
}
