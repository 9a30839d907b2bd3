//! The credentials check, driven: a [`RegisterQuery`] (a REGISTER without
//! Contact, its challenge answered once) over a [`SipChannel`] to one
//! registrar address, and its end as [`CredentialsEvidence`].

use std::net::SocketAddr;
use std::time::Instant;

use crate::outcome::credentials::{CredentialsEvidence, CredentialsResult};
use crate::outcome::WireMessage;
use crate::sip::call::Credentials;
use crate::sip::register::{bindings, RegisterEnd, RegisterLeg, RegisterQuery};
use crate::sip::TransactionIds;
use crate::transport::call::SipChannel;
use crate::transport::{ExchangeConfig, Target, TransportFailure};

/// Queries the bindings of `username` at `target` and answers the challenge
/// with `password` when there is one. Never changes a binding.
pub async fn check(
    target: &Target,
    exchange: &ExchangeConfig,
    username: &str,
    password: Option<&crate::trunk::Secret>,
) -> CredentialsEvidence {
    query(target, exchange, false, username, password).await
}

/// An OPTIONS to `target` whose 401/407 is answered with the credentials (a
/// probe of a carrier that challenges OPTIONS); the evidence's result is the
/// final answer (`accepted` for a 2xx after the challenge).
pub async fn options(
    target: &Target,
    exchange: &ExchangeConfig,
    username: &str,
    password: &crate::trunk::Secret,
) -> CredentialsEvidence {
    query(target, exchange, true, username, Some(password)).await
}

async fn query(
    target: &Target,
    exchange: &ExchangeConfig,
    options: bool,
    username: &str,
    password: Option<&crate::trunk::Secret>,
) -> CredentialsEvidence {
    let started = Instant::now();
    let mut evidence = CredentialsEvidence {
        target: target.addr,
        transport: target.transport,
        aor: String::new(),
        username: username.to_string(),
        result: CredentialsResult::Timeout,
        realm: None,
        algorithm: None,
        qop: false,
        bindings: Vec::new(),
        bolna_bound: false,
        responses: Vec::new(),
        messages: None,
    };
    let deadline = started + exchange.timeout;
    let (mut channel, opened) = match SipChannel::open(target, exchange, deadline).await {
        Ok(c) => c,
        Err((failure, _)) => {
            evidence.result = CredentialsResult::NetworkError { failure };
            return evidence;
        }
    };
    let Some(local) = opened.local else {
        evidence.result = CredentialsResult::NetworkError {
            failure: TransportFailure::Io {
                detail: "no local address".into(),
            },
        };
        return evidence;
    };
    let ids = TransactionIds::generate(&mut rand::rng());
    let leg = RegisterLeg::new(
        username,
        &target.host,
        target.addr.port(),
        target.transport,
        local,
        &ids,
        exchange.user_agent.clone(),
    );
    let leg = if options { leg.options() } else { leg };
    evidence.aor = leg.aor.clone();
    let credentials = password.map(|p| Credentials {
        username: username.to_string(),
        password: p.clone(),
    });
    let now = Instant::now();
    let remaining = deadline.saturating_duration_since(now);
    let mut q = RegisterQuery::new(
        leg,
        ids,
        credentials,
        target.addr,
        target.transport,
        now,
        remaining,
    );
    let mut trace = exchange.trace.then(Vec::new);
    let mut keep = |sent: bool, remote: SocketAddr, bytes: &[u8]| {
        if let Some(t) = trace.as_mut().filter(|t| t.len() < 32) {
            let at = Instant::now();
            t.push(WireMessage::new(
                started,
                at,
                sent,
                target.transport,
                Some(local),
                remote,
                bytes,
            ));
        }
    };
    loop {
        while let Some(bytes) = q.poll_transmit() {
            keep(true, target.addr, &bytes);
            if let Err(failure) = channel.send(&bytes).await {
                evidence.result = CredentialsResult::NetworkError { failure };
                return finish(evidence, &q, trace);
            }
        }
        if q.end().is_some() {
            break;
        }
        let Some(wake) = q.poll_timeout() else { break };
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => q.handle_timeout(Instant::now()),
            r = channel.recv() => match r {
                Ok((bytes, from)) => {
                    keep(false, from, &bytes);
                    q.handle_message(Instant::now(), from, &bytes)
                }
                Err(failure) => {
                    evidence.result = CredentialsResult::NetworkError { failure };
                    return finish(evidence, &q, trace);
                }
            },
        }
    }
    evidence.result = match q.end() {
        Some(RegisterEnd::Final { response, answered }) => {
            let code = response.code;
            let reason = crate::text::printable(&response.reason);
            if (200..300).contains(&code) {
                evidence.bindings = bindings(response);
                evidence.bolna_bound = evidence.bindings.iter().any(|b| b.bolna);
                if *answered {
                    CredentialsResult::Accepted { code }
                } else {
                    CredentialsResult::NotChallenged { code }
                }
            } else if code == 403 && *answered {
                CredentialsResult::Rejected { code, reason }
            } else {
                CredentialsResult::Refused { code, reason }
            }
        }
        Some(RegisterEnd::ChallengedAgain { code, reason }) => CredentialsResult::Rejected {
            code: *code,
            reason: reason.clone(),
        },
        Some(RegisterEnd::NoPassword { code }) => CredentialsResult::NoPassword { code: *code },
        Some(RegisterEnd::BadChallenge { code, why }) => CredentialsResult::BadChallenge {
            code: *code,
            why: why.clone(),
        },
        Some(RegisterEnd::Timeout) | None => CredentialsResult::Timeout,
    };
    finish(evidence, &q, trace)
}

fn finish(
    mut evidence: CredentialsEvidence,
    q: &RegisterQuery,
    trace: Option<Vec<WireMessage>>,
) -> CredentialsEvidence {
    evidence.messages = trace;
    if let Some((realm, algorithm, qop)) = &q.challenge {
        evidence.realm = Some(crate::text::printable(realm));
        evidence.algorithm = Some(crate::text::printable(algorithm));
        evidence.qop = *qop;
    }
    evidence.responses = q.responses.clone();
    evidence
}
