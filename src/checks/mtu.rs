//! UDP fragmentation: the RFC 3261 §18.1.1 size rule, and the verdict and
//! findings drawn from a size-ladder run.
//!
//! Pure. The padding and the INVITE estimate are in [`crate::sip::padding`] and
//! [`crate::sip::invite`], the ladder's socket in [`crate::transport::ladder`],
//! the evidence in [`crate::outcome::MtuResult`], and the orchestration (TCP
//! fallback included) in [`crate::probe::mtu`].

use std::net::SocketAddr;

use serde_json::json;

use super::{CheckId, Finding};
use crate::outcome::{MtuResult, TcpFallback, Verdict};
use crate::sip::invite::InviteEstimate;
use crate::transport::ladder::{PmtuDiscovery, Rung};

/// RFC 3261 §18.1.1: the size above which a request must go over a
/// congestion-controlled transport when the path MTU is unknown.
pub const UNKNOWN_MTU_LIMIT: usize = 1300;

/// The largest request RFC 3261 §18.1.1 allows over UDP: 200 bytes below the
/// path MTU, or 1300 bytes when the MTU is unknown.
pub fn rfc3261_limit(path_mtu: Option<u32>) -> usize {
    match path_mtu {
        Some(mtu) => (mtu as usize).saturating_sub(200),
        None => UNKNOWN_MTU_LIMIT,
    }
}

/// Whether a request of `size` bytes must use a congestion-controlled transport (TCP).
pub fn needs_congestion_control(size: usize, path_mtu: Option<u32>) -> bool {
    size > rfc3261_limit(path_mtu)
}

/// Largest size answered, first (smallest) size not answered, and the verdict.
pub fn verdict(rungs: &[Rung]) -> (Verdict, Option<usize>, Option<usize>) {
    let largest = rungs.iter().filter(|r| r.passed()).map(|r| r.size).max();
    let first_lost = rungs.iter().filter(|r| !r.passed()).map(|r| r.size).min();
    let v = match (largest, first_lost) {
        (_, None) => Verdict::AllAnswered,
        (None, Some(_)) => Verdict::NoneAnswered,
        (Some(ok), Some(lost)) if ok < lost => Verdict::LargeLost,
        _ => Verdict::Irregular,
    };
    (v, largest, first_lost)
}

impl MtuResult {
    /// A result from the rungs and socket facts; verdict and RFC 3261 limit
    /// judged here, so the evidence type needs nothing from this layer.
    pub fn new(
        target: SocketAddr,
        sizes: Vec<Rung>,
        path_mtu: Option<u32>,
        pmtu_discovery: Option<PmtuDiscovery>,
    ) -> MtuResult {
        let (verdict, largest_answered, first_lost) = verdict(&sizes);
        MtuResult {
            target,
            largest_answered,
            first_lost,
            path_mtu,
            pmtu_discovery,
            verdict,
            sizes,
            invite_bytes: None,
            rfc3261_limit: rfc3261_limit(path_mtu),
            tcp_fallback: None,
        }
    }
}

impl TcpFallback {
    fn describe(&self, addr: SocketAddr) -> String {
        match (self.works(), self.status_code) {
            (true, Some(code)) => format!(
                "TCP works there: {addr} answered OPTIONS over TCP with {code} {}",
                self.reason.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            _ => format!(
                "TCP does not work there yet: OPTIONS over TCP to {addr} ended in {}; ask the \
                 carrier to enable SIP over TCP before switching",
                self.outcome.as_str()
            ),
        }
    }
}

/// The guide's troubleshooting entry "Outbound INVITE fails or rings forever on a
/// particular carrier", quoted.
pub const GUIDE_FIX: &str = "Switch `transport` to \"transport-tcp\" -- this avoids UDP \
     fragmentation. You don't need TLS for this; TCP alone is enough.";
const GUIDE_CAUSE: &str = "If your carrier sends large SIP headers (long Diversion, \
     P-Asserted-Identity, multiple Route headers), the INVITE may exceed the UDP MTU and get \
     fragmented or dropped silently.";

/// Findings of one ladder run on a UDP trunk whose INVITE is estimated at `invite`.
pub fn findings(result: &MtuResult, invite: InviteEstimate) -> Vec<Finding> {
    let addr = result.target;
    let patch = Some(json!({"transport": "transport-tcp"}));
    let tcp = result
        .tcp_fallback
        .as_ref()
        .map(|t| format!(" {}.", t.describe(addr)))
        .unwrap_or_default();
    let mtu = match result.path_mtu {
        Some(m) => format!("path MTU {m}"),
        None => "path MTU unknown".to_string(),
    };
    let mut out = Vec::new();
    let mut add = |check: CheckId, message: String, remedy: String, patch: Option<_>| {
        out.push(Finding {
            check,
            severity: check.severity(),
            message,
            remedy,
            patch,
        })
    };
    match (result.verdict, result.largest_answered, result.first_lost) {
        (Verdict::LargeLost, Some(ok), Some(lost)) => {
            let fate = if invite.bytes >= lost {
                "would be lost"
            } else if invite.bytes > ok {
                "is in between and at risk"
            } else {
                "fits today, but longer Diversion/Route headers would push it over"
            };
            add(
                CheckId::UdpLargeMessagesLost,
                format!(
                    "UDP to {addr}: OPTIONS up to {ok} bytes answered, {lost} bytes and larger \
                     lost ({mtu}); Bolna's INVITE on this trunk is about {} bytes and {fate}. \
                     {GUIDE_CAUSE}",
                    invite.bytes
                ),
                format!("{GUIDE_FIX}{tcp}"),
                patch.clone(),
            );
        }
        (Verdict::Irregular, ..) | (Verdict::NoneAnswered, ..) => {
            let lost: Vec<String> = result
                .sizes
                .iter()
                .filter(|r| !r.passed())
                .map(|r| r.size.to_string())
                .collect();
            let what = if result.verdict == Verdict::NoneAnswered {
                "no size of the ladder was answered"
            } else {
                "losses were not in size order"
            };
            add(
                CheckId::MtuLadderInconclusive,
                format!(
                    "UDP to {addr}: the size ladder lost {} bytes; {what} (packet loss or rate \
                     limiting?), so no conclusion on fragmentation.{tcp}",
                    lost.join(", ")
                ),
                "Run `trunkprobe check --mtu` again; if larger sizes keep failing, switch \
                 `transport` to \"transport-tcp\"."
                    .into(),
                None,
            );
        }
        _ => {}
    }
    if needs_congestion_control(invite.bytes, result.path_mtu) {
        let rule = match result.path_mtu {
            Some(m) => format!("within 200 bytes of the path MTU {m}"),
            None => format!("above {UNKNOWN_MTU_LIMIT} bytes with the path MTU unknown"),
        };
        add(
            CheckId::InviteExceedsUdpLimit,
            format!(
                "Bolna's INVITE on this trunk is about {} bytes ({} of SDP), {rule}: RFC 3261 \
                 §18.1.1 requires a congestion-controlled transport (TCP) for it.",
                invite.bytes, invite.sdp_bytes
            ),
            GUIDE_FIX.to_string(),
            patch,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::sip::padding::DEFAULT_SIZES;
    use crate::transport::ladder::RungStatus;

    #[test]
    fn rfc3261_limit_is_200_below_the_mtu_or_1300() {
        assert_eq!(rfc3261_limit(None), 1300);
        assert_eq!(rfc3261_limit(Some(1500)), 1300);
        assert_eq!(rfc3261_limit(Some(1280)), 1080);
        assert_eq!(rfc3261_limit(Some(100)), 0);
        assert!(!needs_congestion_control(1300, None));
        assert!(needs_congestion_control(1301, None));
        assert!(needs_congestion_control(1081, Some(1280)));
        assert!(!needs_congestion_control(1080, Some(1280)));
        assert!(!needs_congestion_control(4000, Some(65_536)));
    }

    fn rung(size: usize, status: RungStatus) -> Rung {
        Rung {
            size,
            bytes: size,
            status,
            status_code: (status == RungStatus::Answered).then_some(200),
            rtt: None,
            retransmissions: 0,
            detail: None,
        }
    }

    fn ladder(statuses: &[RungStatus]) -> Vec<Rung> {
        DEFAULT_SIZES
            .iter()
            .zip(statuses)
            .map(|(s, st)| rung(*s, *st))
            .collect()
    }

    use RungStatus::{Answered as A, Lost as L, TooLarge as T};

    #[test]
    fn verdict_orders_answers_and_losses() {
        assert_eq!(
            verdict(&ladder(&[A, A, A, A, A, A])),
            (Verdict::AllAnswered, Some(4000), None)
        );
        assert_eq!(
            verdict(&ladder(&[A, A, L, L, L, L])),
            (Verdict::LargeLost, Some(1200), Some(1400))
        );
        assert_eq!(
            verdict(&ladder(&[A, A, A, A, A, T])),
            (Verdict::LargeLost, Some(2400), Some(4000))
        );
        assert_eq!(
            verdict(&ladder(&[A, L, A, A, A, A])),
            (Verdict::Irregular, Some(4000), Some(1200))
        );
        assert_eq!(
            verdict(&ladder(&[L, L, L, L, L, L])),
            (Verdict::NoneAnswered, None, Some(600))
        );
    }

    fn addr() -> SocketAddr {
        "10.213.0.1:5060".parse().unwrap()
    }

    #[test]
    fn large_loss_is_an_error_with_the_guides_fix_and_the_tcp_result() {
        let mut r = MtuResult::new(addr(), ladder(&[A, A, L, L, L, L]), Some(1280), None);
        assert!(r.wants_tcp_fallback());
        r.tcp_fallback = Some(TcpFallback {
            outcome: Outcome::Ok,
            status_code: Some(200),
            reason: Some("OK".into()),
            rtt: None,
        });
        let invite = InviteEstimate {
            bytes: 1500,
            sdp_bytes: 300,
        };
        let f = findings(&r, invite);
        assert_eq!(f.len(), 2, "{f:#?}");
        let lost = &f[0];
        assert_eq!(lost.check, CheckId::UdpLargeMessagesLost);
        assert_eq!(lost.severity, crate::checks::Severity::Error);
        assert!(lost
            .message
            .contains("up to 1200 bytes answered, 1400 bytes"));
        assert!(lost.message.contains("path MTU 1280") && lost.message.contains("would be lost"));
        assert!(lost
            .remedy
            .contains("\"transport-tcp\" -- this avoids UDP fragmentation"));
        assert!(lost.remedy.contains("TCP works there"), "{}", lost.remedy);
        assert_eq!(lost.patch, Some(json!({"transport": "transport-tcp"})));
        assert_eq!(f[1].check, CheckId::InviteExceedsUdpLimit);
        assert!(f[1]
            .message
            .contains("within 200 bytes of the path MTU 1280"));

        r.tcp_fallback.as_mut().unwrap().outcome = Outcome::Refused;
        r.tcp_fallback.as_mut().unwrap().status_code = None;
        let f = findings(&r, invite);
        assert!(f[0].remedy.contains("TCP does not work there yet"));
        assert!(f[0].remedy.contains("ended in refused"));
    }

    #[test]
    fn clean_ladders_give_no_finding_unless_the_invite_is_too_big() {
        let r = MtuResult::new(addr(), ladder(&[A, A, A, A, A, A]), Some(65_536), None);
        assert!(!r.wants_tcp_fallback());
        let small = InviteEstimate {
            bytes: 1200,
            sdp_bytes: 250,
        };
        assert!(findings(&r, small).is_empty());
        let r = MtuResult::new(addr(), ladder(&[A, A, A, A, A, A]), None, None);
        let big = InviteEstimate {
            bytes: 1400,
            sdp_bytes: 250,
        };
        let f = findings(&r, big);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].check, CheckId::InviteExceedsUdpLimit);
        assert!(f[0]
            .message
            .contains("above 1300 bytes with the path MTU unknown"));
        let r = MtuResult::new(addr(), ladder(&[A, L, A, A, A, A]), None, None);
        let f = findings(&r, small);
        assert_eq!(f[0].check, CheckId::MtuLadderInconclusive);
        assert_eq!(f[0].severity, crate::checks::Severity::Info);
    }
}
