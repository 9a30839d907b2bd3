//! The credentials check explained: what a REGISTER query's answer
//! ([`CredentialsEvidence`]) means for a userpass trunk, as findings with a
//! remedy. Pure: no I/O.

use serde_json::json;

use super::{CheckId, Finding};
use crate::outcome::credentials::{CredentialsEvidence, CredentialsResult};

/// The finding one query calls for, if any (accepted credentials need none).
pub fn finding(gateway: &str, e: &CredentialsEvidence) -> Option<Finding> {
    let realm = e
        .realm
        .as_deref()
        .map(|r| format!(" (realm {r:?})"))
        .unwrap_or_default();
    let at = format!("{gateway} ({})", e.target);
    let (check, message, remedy, patch) = match &e.result {
        CredentialsResult::Accepted { .. } => return None,
        CredentialsResult::Rejected { code, reason } => (
            CheckId::CredentialsRejected,
            format!(
                "the registrar at {at} refused the credentials of {:?}{realm}: {code} {reason} \
                 after our digest answer",
                e.username
            ),
            "the carrier does not accept this auth_username/auth_password: check both against \
             the carrier's portal and update the trunk with the ones it shows",
            Some(json!({"auth_username": e.username, "auth_password": "<the carrier's password>"})),
        ),
        CredentialsResult::NoPassword { code } => (
            CheckId::CredentialsUntested,
            format!(
                "the registrar at {at} challenges{realm} ({code}); no password was given, so the \
                 credentials were not tested"
            ),
            "give the password with --auth-password-file or TRUNKPROBE_AUTH_PASSWORD (the API \
             never returns it) to test it",
            None,
        ),
        CredentialsResult::NotChallenged { code } => (
            CheckId::CredentialsNotChallenged,
            format!(
                "the registrar at {at} answered the REGISTER query with {code} without asking for \
                 credentials: they were not tested"
            ),
            "nothing to change if the carrier recognises Bolna by IP; otherwise ask the carrier \
             whether this gateway is the registrar for userpass trunks",
            None,
        ),
        CredentialsResult::Refused { code, reason } => (
            CheckId::RegisterUnanswered,
            format!("the gateway {at} answered the REGISTER query with {code} {reason}"),
            "ask the carrier which host registers userpass trunks; credentials were not tested",
            None,
        ),
        CredentialsResult::BadChallenge { code, why } => (
            CheckId::RegisterUnanswered,
            format!("the registrar at {at} challenged ({code}) in a way we cannot answer: {why}"),
            "credentials were not tested; Bolna's stack answers MD5 and SHA-256 with qop=auth",
            None,
        ),
        CredentialsResult::Timeout => (
            CheckId::RegisterUnanswered,
            format!("the gateway {at} answers OPTIONS but not a REGISTER query (no response)"),
            "credentials were not tested; ask the carrier whether this gateway takes REGISTER",
            None,
        ),
        CredentialsResult::NetworkError { failure } => (
            CheckId::RegisterUnanswered,
            format!("the REGISTER query to {at} failed: {}", failure.describe()),
            "credentials were not tested",
            None,
        ),
    };
    Some(Finding {
        check,
        severity: check.severity(),
        message,
        remedy: remedy.to_string(),
        patch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::Transport;

    fn evidence(result: CredentialsResult) -> CredentialsEvidence {
        CredentialsEvidence {
            target: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            aor: "sip:bolna-trunk@gw.example.com".into(),
            username: "bolna-trunk".into(),
            result,
            realm: Some("carrier.test".into()),
            algorithm: Some("MD5".into()),
            qop: false,
            bindings: Vec::new(),
            bolna_bound: false,
            responses: Vec::new(),
            messages: None,
        }
    }

    #[test]
    fn each_result_has_its_check() {
        let gw = "gw.example.com";
        assert!(finding(gw, &evidence(CredentialsResult::Accepted { code: 200 })).is_none());
        let f = finding(
            gw,
            &evidence(CredentialsResult::Rejected {
                code: 401,
                reason: "Unauthorized".into(),
            }),
        )
        .unwrap();
        assert_eq!(f.check, CheckId::CredentialsRejected);
        assert!(f.message.contains("carrier.test") && f.message.contains("bolna-trunk"));
        assert!(!f.patch.unwrap().to_string().contains("pw"));
        for (r, c) in [
            (
                CredentialsResult::NoPassword { code: 401 },
                CheckId::CredentialsUntested,
            ),
            (
                CredentialsResult::NotChallenged { code: 200 },
                CheckId::CredentialsNotChallenged,
            ),
            (CredentialsResult::Timeout, CheckId::RegisterUnanswered),
        ] {
            assert_eq!(finding(gw, &evidence(r)).unwrap().check, c);
        }
    }
}
