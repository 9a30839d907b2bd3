//! REGISTER as a credentials check, sans-IO (RFC 3261 §10.2.3): a REGISTER
//! without a Contact header asks the registrar for the bindings of the
//! address-of-record and changes none, so it can be sent to a carrier's
//! registrar at any time without disturbing Bolna's own registration. The
//! registrar challenges it like any REGISTER (401), which is what tests the
//! credentials.
//!
//! The transaction is an [`OptionsTransaction`](super::OptionsTransaction)
//! (the non-INVITE client transaction matches on the request's method); the
//! digest answer is [`super::digest`]'s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;

use super::call::Credentials;
use super::digest::Challenge;
use super::message::{Response, TransactionIds};
use super::request::{build, transport_param, uri_host, CallLeg, RequestParts};
use super::transaction::{OptionsTransaction, TxOutcome};
use crate::trunk::Transport;

/// Bolna's SIP address: a binding with this host is Bolna's registration.
pub const BOLNA_SIP_IP: &str = "13.200.45.61";

/// What a REGISTER of one address-of-record carries besides its ids (or an
/// OPTIONS sent the same way, to answer a 401/407 to a probe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterLeg {
    /// `REGISTER`, or `OPTIONS` for an authenticated probe.
    pub method: &'static str,
    /// `sip:host:port[;transport=..]`: the registrar.
    pub request_uri: String,
    /// The address-of-record, `sip:USER@host`, in From and To.
    pub aor: String,
    leg: CallLeg,
}

impl RegisterLeg {
    /// The REGISTER of `username` at the registrar `host:port`, sent from `local`.
    pub fn new(
        username: &str,
        host: &str,
        port: u16,
        transport: Transport,
        local: std::net::SocketAddr,
        ids: &TransactionIds,
        user_agent: String,
    ) -> RegisterLeg {
        let mut leg = CallLeg::new(
            username,
            host,
            port,
            transport,
            username,
            local,
            ids.from_tag.clone(),
            ids.call_id.clone(),
            user_agent,
        );
        let h = uri_host(host);
        let request_uri = format!("sip:{h}:{port}{}", transport_param(transport));
        leg.from_uri = leg.to_uri.clone();
        RegisterLeg {
            method: "REGISTER",
            request_uri,
            aor: leg.to_uri.clone(),
            leg,
        }
    }

    /// The same leg sending `OPTIONS` (a probe answering its 401/407).
    pub fn options(mut self) -> RegisterLeg {
        self.method = "OPTIONS";
        self
    }

    /// The REGISTER for `branch` and `cseq`, with a digest answer when given
    /// (`(header name, value)`). No Contact, no Expires: a query.
    pub fn request(&self, branch: &str, cseq: u32, auth: Option<(&str, &str)>) -> Vec<u8> {
        build(
            self.method,
            &self.leg,
            &RequestParts {
                branch,
                cseq,
                request_uri: Some(&self.request_uri),
                auth,
                ..RequestParts::default()
            },
        )
    }
}

/// How a [`RegisterQuery`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RegisterEnd {
    /// A final response that ends the query: a 2xx (with the bindings), or
    /// any other code. `answered`: our digest answer was in the request.
    Final {
        response: Box<Response>,
        answered: bool,
    },
    /// A 401/407 after our answer: the credentials are refused.
    ChallengedAgain { code: u16, reason: String },
    /// A 401/407 and no password to answer with.
    NoPassword { code: u16 },
    /// A 401/407 whose challenge cannot be answered.
    BadChallenge { code: u16, why: String },
    /// No final response in time.
    Timeout,
}

/// The REGISTER query of one address-of-record, sans-IO: the first REGISTER,
/// and at most one answer to its challenge (two when the registrar says the
/// nonce went stale), each its own non-INVITE transaction.
#[derive(Debug)]
pub struct RegisterQuery {
    leg: RegisterLeg,
    credentials: Option<Credentials>,
    peer: SocketAddr,
    transport: Transport,
    deadline: Instant,
    cseq: u32,
    tx: OptionsTransaction,
    answers: u32,
    /// The challenge's realm, algorithm, and whether it offered qop=auth.
    pub challenge: Option<(String, String, bool)>,
    /// Each final response's status line, in order.
    pub responses: Vec<String>,
    end: Option<RegisterEnd>,
}

impl RegisterQuery {
    /// Starts the query at `now`; it ends by `now + timeout` whatever happens.
    pub fn new(
        leg: RegisterLeg,
        ids: TransactionIds,
        credentials: Option<Credentials>,
        peer: SocketAddr,
        transport: Transport,
        now: Instant,
        timeout: Duration,
    ) -> RegisterQuery {
        let request = leg.request(&ids.branch, ids.cseq, None);
        let cseq = ids.cseq;
        let tx = OptionsTransaction::new(request, ids, peer, transport, now, timeout);
        RegisterQuery {
            leg,
            credentials,
            peer,
            transport,
            deadline: now + timeout,
            cseq,
            tx,
            answers: 0,
            challenge: None,
            responses: Vec::new(),
            end: None,
        }
    }

    /// Bytes to send now.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.poll_transmit()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.end.is_none().then(|| self.tx.poll_timeout()).flatten()
    }

    /// Timers (retransmission, the deadline).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.step(now);
    }

    /// One received message.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.tx.handle_message(now, from, bytes);
        self.step(now);
    }

    /// Messages that were not this query's.
    pub fn strays(&self) -> u32 {
        self.tx.strays()
    }

    /// The end, once there is one.
    pub fn end(&self) -> Option<&RegisterEnd> {
        self.end.as_ref()
    }

    fn step(&mut self, now: Instant) {
        if self.end.is_some() || !self.tx.is_done() {
            return;
        }
        let response = match self.tx.outcome() {
            Some(TxOutcome::Final { response, .. }) => response.clone(),
            _ => {
                self.end = Some(RegisterEnd::Timeout);
                return;
            }
        };
        self.responses.push(format!(
            "{} {}",
            response.code,
            crate::text::printable(&response.reason)
        ));
        let code = response.code;
        if code != 401 && code != 407 {
            self.end = Some(RegisterEnd::Final {
                response: Box::new(response),
                answered: self.answers > 0,
            });
            return;
        }
        let proxy = code == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let challenge = match response.header(header).map(|v| Challenge::parse(v, proxy)) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                self.end = Some(RegisterEnd::BadChallenge {
                    code,
                    why: e.to_string(),
                });
                return;
            }
            None => {
                self.end = Some(RegisterEnd::BadChallenge {
                    code,
                    why: format!("the {code} has no {header} header"),
                });
                return;
            }
        };
        self.challenge = Some((
            challenge.realm.clone(),
            challenge.algorithm.clone(),
            challenge.qop_auth,
        ));
        let stale_retry = challenge.stale && self.answers == 1;
        if self.answers > 0 && !stale_retry {
            self.end = Some(RegisterEnd::ChallengedAgain {
                code,
                reason: crate::text::printable(&response.reason),
            });
            return;
        }
        let Some(creds) = &self.credentials else {
            self.end = Some(RegisterEnd::NoPassword { code });
            return;
        };
        let cnonce = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let answer = match challenge.answer(
            &creds.username,
            creds.password.expose(),
            self.leg.method,
            &self.leg.request_uri,
            &cnonce,
        ) {
            Ok(a) => a,
            Err(e) => {
                self.end = Some(RegisterEnd::BadChallenge {
                    code,
                    why: e.to_string(),
                });
                return;
            }
        };
        self.answers += 1;
        // A new transaction: new branch, next CSeq, same Call-ID and From tag.
        self.cseq += 1;
        let mut ids = self.tx.ids().clone();
        ids.branch = format!(
            "z9hG4bK{}",
            Alphanumeric.sample_string(&mut rand::rng(), 24)
        );
        ids.cseq = self.cseq;
        let request = self.leg.request(
            &ids.branch,
            ids.cseq,
            Some((challenge.answer_header(), &answer)),
        );
        let left = self.deadline.saturating_duration_since(now);
        self.tx = OptionsTransaction::new(request, ids, self.peer, self.transport, now, left);
    }
}

/// One binding the registrar listed in its 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// The Contact URI, as the registrar wrote it (without the angle brackets).
    pub contact: String,
    /// Seconds left: the Contact's `expires`, else the response's Expires.
    pub expires: Option<u32>,
    /// The contact's host is Bolna's SIP address (13.200.45.61).
    pub bolna: bool,
}

/// Bindings listed at most (a registrar could list thousands).
pub const MAX_BINDINGS: usize = 32;

/// The bindings a 2xx to a REGISTER lists: every Contact header, each
/// comma-separated contact in it, with its `expires` or the Expires header.
pub fn bindings(response: &Response) -> Vec<Binding> {
    let default_expires = response
        .header("Expires")
        .and_then(|v| v.trim().parse().ok());
    let mut out = Vec::new();
    for value in response.headers_named("Contact") {
        for contact in split_contacts(value) {
            if out.len() == MAX_BINDINGS {
                return out;
            }
            if contact == "*" {
                continue;
            }
            let (uri, params) = match (contact.find('<'), contact.find('>')) {
                (Some(a), Some(b)) if a < b => (&contact[a + 1..b], &contact[b + 1..]),
                _ => match contact.split_once(';') {
                    Some((u, p)) => (u, p),
                    None => (contact, ""),
                },
            };
            let expires = params
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("expires"))
                .and_then(|(_, v)| v.trim().trim_matches('"').parse().ok())
                .or(default_expires);
            let uri = uri.trim();
            out.push(Binding {
                contact: crate::text::printable(uri),
                expires,
                bolna: contact_host(uri) == Some(BOLNA_SIP_IP),
            });
        }
    }
    out
}

/// Contacts in one header value, split at commas outside `<...>` and quotes.
fn split_contacts(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut angle, mut quoted) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !angle && !quoted => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The host of a `sip:`/`sips:` URI.
fn contact_host(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostport.split([';', '?']).next()?;
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next();
    }
    hostport.split(':').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse_request, parse_response};

    fn ids() -> TransactionIds {
        TransactionIds {
            branch: "z9hG4bKabc".into(),
            call_id: "cid".into(),
            from_tag: "ftag".into(),
            cseq: 7,
        }
    }

    #[test]
    fn a_register_without_contact_queries_the_aor() {
        let leg = RegisterLeg::new(
            "bolna-trunk",
            "sip.carrier.example",
            5061,
            Transport::Tls,
            "192.0.2.10:40000".parse().unwrap(),
            &ids(),
            "trunkprobe/0.1.0".into(),
        );
        let bytes = leg.request("z9hG4bKabc", 7, Some(("Authorization", "Digest x")));
        let req = parse_request(&bytes).unwrap();
        assert_eq!(req.method, "REGISTER");
        assert_eq!(req.uri, "sip:sip.carrier.example:5061;transport=tls");
        assert!(
            req.header("Contact").is_none(),
            "a query changes no binding"
        );
        assert!(req.header("Expires").is_none());
        assert_eq!(
            req.header("From"),
            Some("<sip:bolna-trunk@sip.carrier.example>;tag=ftag")
        );
        assert_eq!(
            req.header("To"),
            Some("<sip:bolna-trunk@sip.carrier.example>")
        );
        assert_eq!(req.header("CSeq"), Some("7 REGISTER"));
        assert_eq!(req.header("Authorization"), Some("Digest x"));
        assert!(req.header("Via").unwrap().starts_with("SIP/2.0/TLS"));
    }

    const PEER: &str = "127.0.0.1:5060";

    fn query(creds: bool, now: Instant) -> RegisterQuery {
        let leg = RegisterLeg::new(
            "bolna-trunk",
            "127.0.0.1",
            5060,
            Transport::Udp,
            "127.0.0.1:40000".parse().unwrap(),
            &ids(),
            "trunkprobe/test".into(),
        );
        RegisterQuery::new(
            leg,
            ids(),
            creds.then(|| Credentials {
                username: "bolna-trunk".into(),
                password: crate::trunk::Secret::new("pw"),
            }),
            PEER.parse().unwrap(),
            Transport::Udp,
            now,
            Duration::from_secs(5),
        )
    }

    /// The response `code` to `request`, echoing its Via, Call-ID and CSeq.
    fn reply(request: &[u8], code: &str, extra: &str) -> Vec<u8> {
        let req = parse_request(request).unwrap();
        format!(
            "SIP/2.0 {code}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=r\r\nCall-ID: {}\r\n\
             CSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
            req.header("Via").unwrap(),
            req.header("From").unwrap(),
            req.header("To").unwrap(),
            req.header("Call-ID").unwrap(),
            req.header("CSeq").unwrap(),
        )
        .into_bytes()
    }

    const CHALLENGE: &str =
        "WWW-Authenticate: Digest realm=\"carrier.test\", nonce=\"n1\", qop=\"auth\"\r\n";

    #[test]
    fn a_challenge_is_answered_once_and_the_200_ends_it() {
        let now = Instant::now();
        let mut q = query(true, now);
        let first = q.poll_transmit().unwrap();
        q.handle_message(
            now,
            PEER.parse().unwrap(),
            &reply(&first, "401 Unauthorized", CHALLENGE),
        );
        assert!(q.end().is_none());
        let second = q.poll_transmit().unwrap();
        let req = parse_request(&second).unwrap();
        let auth = req.header("Authorization").unwrap();
        assert!(
            auth.contains("username=\"bolna-trunk\"") && auth.contains("nc=00000001"),
            "{auth}"
        );
        assert!(
            !String::from_utf8_lossy(&second).contains("pw\""),
            "never the password"
        );
        assert_eq!(req.header("CSeq"), Some("8 REGISTER"));
        assert_ne!(
            req.header("Via"),
            parse_request(&first).unwrap().header("Via")
        );
        q.handle_message(
            now,
            PEER.parse().unwrap(),
            &reply(
                &second,
                "200 OK",
                "Contact: <sip:bolna@13.200.45.61>;expires=60\r\n",
            ),
        );
        match q.end() {
            Some(RegisterEnd::Final { response, answered }) => {
                assert!(*answered);
                assert!(bindings(response)[0].bolna);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(q.responses, ["401 Unauthorized", "200 OK"]);
        assert_eq!(
            q.challenge,
            Some(("carrier.test".into(), "MD5".into(), true))
        );
    }

    #[test]
    fn a_second_challenge_is_a_refusal_not_a_loop() {
        let now = Instant::now();
        let mut q = query(true, now);
        let peer = PEER.parse().unwrap();
        let first = q.poll_transmit().unwrap();
        q.handle_message(now, peer, &reply(&first, "401 Unauthorized", CHALLENGE));
        let second = q.poll_transmit().unwrap();
        q.handle_message(now, peer, &reply(&second, "401 Unauthorized", CHALLENGE));
        assert!(matches!(
            q.end(),
            Some(RegisterEnd::ChallengedAgain { code: 401, .. })
        ));
        assert!(q.poll_transmit().is_none());
    }

    #[test]
    fn without_a_password_the_challenge_is_the_end() {
        let now = Instant::now();
        let mut q = query(false, now);
        let first = q.poll_transmit().unwrap();
        q.handle_message(
            now,
            PEER.parse().unwrap(),
            &reply(&first, "401 Unauthorized", CHALLENGE),
        );
        assert_eq!(q.end(), Some(&RegisterEnd::NoPassword { code: 401 }));
    }

    #[test]
    fn a_forged_answer_from_elsewhere_counts_for_nothing() {
        let now = Instant::now();
        let mut q = query(true, now);
        let first = q.poll_transmit().unwrap();
        q.handle_message(
            now,
            "127.0.0.1:6666".parse().unwrap(),
            &reply(&first, "200 OK", ""),
        );
        assert!(q.end().is_none());
        assert_eq!(q.strays(), 1);
        q.handle_timeout(now + Duration::from_secs(6));
        assert_eq!(q.end(), Some(&RegisterEnd::Timeout));
    }

    #[test]
    fn bindings_are_read_from_every_contact() {
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bKabc\r\n\
            From: <sip:u@h>;tag=f\r\nTo: <sip:u@h>;tag=t\r\nCall-ID: cid\r\nCSeq: 7 REGISTER\r\n\
            Contact: <sip:bolna@13.200.45.61:5060;transport=udp>;expires=287, \"Desk, 2\" <sip:desk@198.51.100.7>\r\n\
            m: sip:other@[2001:db8::1]:5070;expires=60\r\n\
            Expires: 3600\r\nContent-Length: 0\r\n\r\n";
        let r = parse_response(raw.as_bytes()).unwrap();
        let b = bindings(&r);
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(b[0].contact, "sip:bolna@13.200.45.61:5060;transport=udp");
        assert_eq!((b[0].expires, b[0].bolna), (Some(287), true));
        assert_eq!(b[1].contact, "sip:desk@198.51.100.7");
        assert_eq!((b[1].expires, b[1].bolna), (Some(3600), false));
        assert_eq!(b[2].contact, "sip:other@[2001:db8::1]:5070");
        assert_eq!(b[2].expires, Some(60));
    }

    #[test]
    fn no_contact_is_no_binding_and_hostile_values_do_not_panic() {
        let raw = "SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContact: *\r\n\
            Contact: <sip:\x1b[31m@x\r\nContact: ,,,<>,\"\r\nContent-Length: 0\r\n\r\n";
        let r = parse_response(raw.as_bytes()).unwrap();
        let b = bindings(&r);
        assert!(b.iter().all(|b| !b.contact.contains('\x1b')), "{b:?}");
        assert!(b.iter().all(|b| !b.bolna));
    }
}
