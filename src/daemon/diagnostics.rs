//! The daemon's media and path diagnostics: findings learnt from probing (the
//! carrier's SDP, the gateways' resolved addresses, the UDP size ladder) kept per
//! trunk next to its static findings; the slow MTU ladder schedule; and the
//! periodic origination URI check.
//!
//! Findings do not flap per probe: media is evaluated over the latest final
//! response of each target (a timeout keeps the last reply), ip_identifiers over
//! the latest resolution of each gateway, MTU over the latest ladder of each
//! target; each holds until newer evidence says otherwise.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Semaphore};

use crate::checks::{self, media, mtu::MtuResult, Finding};
use crate::metrics::Metrics;
use crate::origination::{self, OriginationUri};
use crate::probe::{CheckSettings, MtuConfig, TargetResult};
use crate::resolve::GatewayResolver;
use crate::trunk::Trunk;

/// `--mtu-interval` default: the ladder is slow and sends large messages, so hourly.
pub const DEFAULT_MTU_INTERVAL: Duration = Duration::from_secs(3600);
/// `--origination-interval` default.
pub const DEFAULT_ORIGINATION_INTERVAL: Duration = Duration::from_secs(300);
/// Ladders in flight at once across the fleet (each is sequential inside).
pub const MTU_LADDERS_IN_FLIGHT: usize = 4;
/// The first ladder of a target runs at a random time within this (or the interval, if shorter).
pub const MTU_FIRST_RUN_WITHIN: Duration = Duration::from_secs(60);

/// What a trunk's findings are made of; shared by its probe loops and the fleet.
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
    /// What the media check needs of the latest final response of each target, by `ip:port`.
    replies: BTreeMap<String, KeptReply>,
    /// The latest addresses of each gateway host.
    resolved: BTreeMap<String, Vec<IpAddr>>,
    /// The latest ladder findings of each target, by `ip:port`.
    mtu: BTreeMap<String, Vec<Finding>>,
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
            replies: BTreeMap::new(),
            resolved: BTreeMap::new(),
            mtu: BTreeMap::new(),
        }
    }

    /// Keeps a target's probe result if it carries a final response. Returns
    /// whether the advertised media changed (the findings need publishing).
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
            self.replies
                .insert(target.to_string(), KeptReply::new(reply));
        }
        !same
    }

    /// Keeps a gateway's latest addresses; returns whether they changed.
    pub fn observe_addresses(&mut self, host: &str, addresses: &[IpAddr]) -> bool {
        if addresses.is_empty() || self.resolved.get(host).map(Vec::as_slice) == Some(addresses) {
            return false;
        }
        self.resolved.insert(host.to_string(), addresses.to_vec());
        true
    }

    /// Keeps the findings of a target's latest ladder (its INVITE estimated for this trunk).
    pub fn observe_mtu(&mut self, target: &str, host: &str, result: &mut MtuResult) {
        let invite = checks::mtu::estimate_invite(&self.trunk, host, result.target.port());
        result.invite_bytes = Some(invite.bytes);
        self.mtu
            .insert(target.to_string(), checks::mtu::findings(result, invite));
    }

    /// Drops what a target showed (its address left the gateway's DNS answer).
    pub fn forget_target(&mut self, target: &str) {
        self.replies.remove(target);
        self.mtu.remove(target);
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
                self.replies.values().map(KeptReply::view),
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

/// The MTU ladder in `serve` (`--mtu-interval`, off with 0).
pub struct MtuSchedule {
    pub config: MtuConfig,
    pub interval: Duration,
    pub limit: Arc<Semaphore>,
}

impl MtuSchedule {
    /// Delay before a target's first ladder: random within a minute (or the interval).
    pub fn first_delay(&self) -> Duration {
        random_upto(self.interval.min(MTU_FIRST_RUN_WITHIN))
    }

    /// Delay between ladders: the interval ±10%, so a fleet's ladders do not line up.
    pub fn next_delay(&self) -> Duration {
        jittered(self.interval)
    }
}

fn random_upto(d: Duration) -> Duration {
    let ms = d.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(0..ms))
}

/// `d` ±10%.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..=1.1))
}

/// Which origination URIs `serve` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginationPlan {
    /// `--no-origination`.
    Off,
    /// `--origination URI...`.
    Uris(Vec<OriginationUri>),
    /// The setup guide's URIs for the transports the active trunks use.
    Guide,
}

impl OriginationPlan {
    pub fn uris(&self, trunks: &[Trunk]) -> Vec<OriginationUri> {
        match self {
            OriginationPlan::Off => Vec::new(),
            OriginationPlan::Uris(u) => u.clone(),
            OriginationPlan::Guide => OriginationUri::defaults_for(
                trunks
                    .iter()
                    .filter(|t| t.is_active)
                    .filter_map(|t| t.transport.valid()),
            ),
        }
    }
}

/// Checks the origination URIs every `interval` (and at once when the set
/// changes) until `stop`; `uris` is `None` until the first trunk list loads.
pub async fn origination_loop(
    metrics: Arc<Metrics>,
    resolver: GatewayResolver,
    settings: CheckSettings,
    interval: Duration,
    mut uris: watch::Receiver<Option<Vec<OriginationUri>>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let current = uris.borrow_and_update().clone();
        if let Some(list) = current.filter(|l| !l.is_empty()) {
            let results = tokio::select! {
                r = origination::check(&list, &resolver, &settings) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            for r in results.iter().filter(|r| !r.ok) {
                let outcomes: Vec<&str> = r
                    .targets
                    .iter()
                    .map(|t| t.result.outcome.as_str())
                    .collect();
                tracing::warn!(uri = %r.uri, ?outcomes, "origination URI does not answer healthily");
            }
            metrics.diag.record_origination(&results);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            r = uris.changed() => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// `ip:port` of a target's labels, as the findings key targets.
pub fn target_key(labels: &crate::metrics::TargetLabels) -> &str {
    &labels.0[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckId;
    use crate::probe::{blank_result, Outcome};
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

    #[test]
    fn mtu_findings_hold_per_target() {
        use crate::checks::mtu::{Rung, RungStatus};
        let rung = |size, ok: bool| Rung {
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
        };
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

    #[test]
    fn origination_plan_follows_the_trunks_transports() {
        let mut tcp = Trunk::with_defaults("t");
        tcp.transport = Field::Valid(Transport::Tcp);
        let uris = OriginationPlan::Guide.uris(&[tcp, Trunk::with_defaults("u")]);
        let got: Vec<&str> = uris.iter().map(|u| u.uri.as_str()).collect();
        assert_eq!(
            got,
            [
                "sip:sip.bolna.ai:5060",
                "sip:sip.bolna.ai:5060;transport=tcp"
            ]
        );
        assert!(OriginationPlan::Off
            .uris(&[Trunk::with_defaults("u")])
            .is_empty());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(3600));
            assert!(d >= Duration::from_secs(3240) && d <= Duration::from_secs(3960));
        }
    }
}
