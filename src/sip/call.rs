//! One outgoing call's signalling, sans-IO: the INVITE client transaction
//! (RFC 3261 §17.1.1: Timer A and B on UDP, none on TCP/TLS), the ACK of a
//! non-2xx inside it and of a 2xx as its own request, CANCEL (§9.1) and BYE
//! as non-INVITE transactions (Timer E/F), the dialog (§12: To tag, route set
//! from Record-Route, remote target from Contact, CSeq), a retransmitted 2xx
//! re-ACKed, a BYE from the carrier answered, and one authenticated retry per
//! digest challenge (401/407).
//!
//! Like [`super::OptionsTransaction`]: bytes and time go in
//! ([`Call::handle_message`], [`Call::handle_timeout`]), requests come out
//! ([`Call::poll_transmit`]), and what happened comes out as [`CallEvent`]s.
//! Every request goes to the one address the INVITE went to (the carrier's
//! gateway), the way a UA behind `force_rport`/`rtp_symmetric` answers: a
//! Contact naming another (often private) address is kept as the Request-URI
//! but never dialled.
//!
//! [`Call::hang_up`] always ends what was started: CANCEL before a final
//! response (sent as soon as a provisional allows it, §9.1), BYE after a 2xx,
//! and a 2xx that arrives after a CANCEL is ACKed and BYEd at once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

use super::digest::{Challenge, DigestError};
use super::message::{
    build_response, canonical_name, parse_request, parse_response, Request, Response,
};
use super::request::{build, CallLeg, RequestParts};
use super::transaction::{T1, T2};

/// Timer B and F: 64 × T1.
const TIMER_64T1: Duration = Duration::from_secs(32);

/// Credentials for a digest challenge. The password never leaves this struct
/// except as a hash.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: crate::trunk::Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What one call sends and where.
#[derive(Debug, Clone)]
pub struct CallConfig {
    pub leg: CallLeg,
    /// The gateway address every request goes to.
    pub peer: SocketAddr,
    /// Reliable transport (TCP/TLS): no retransmissions.
    pub reliable: bool,
    /// Our SDP offer.
    pub offer: Vec<u8>,
    pub credentials: Option<Credentials>,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A provisional response; `sdp` when it carries one (early media).
    Provisional {
        code: u16,
        reason: String,
        sdp: Option<Vec<u8>>,
    },
    /// A digest challenge was answered with the credentials (one retry).
    Authenticating {
        code: u16,
        realm: String,
        algorithm: String,
    },
    /// The carrier answered (2xx); `sdp` is its answer.
    Answered { code: u16, sdp: Option<Vec<u8>> },
    /// A final non-2xx response (after any authentication), not caused by our CANCEL.
    Rejected { code: u16, reason: String },
    /// A challenge that could not be answered (no credentials, or it names an
    /// algorithm or qop we cannot do), or a second challenge after our answer.
    AuthFailed {
        code: u16,
        realm: Option<String>,
        why: String,
        answered: bool,
    },
    /// No response at all to the INVITE (Timer B).
    NoResponse,
    /// Our CANCEL ended the call before an answer (the INVITE got 487, or no final).
    Cancelled,
    /// The carrier hung up (BYE).
    RemoteBye,
    /// Our BYE completed (any final response, or Timer F).
    ByeDone { code: Option<u16> },
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// INVITE sent, no response yet.
    Calling,
    /// A provisional response came.
    Proceeding,
    /// Answered and ACKed.
    Confirmed,
    /// CANCEL sent (or due once a provisional comes).
    Cancelling,
    /// BYE sent.
    Terminating,
    /// Nothing more will be sent.
    Done,
}

/// One message of the call, for the call-flow and the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEntry {
    pub at: Instant,
    pub sent: bool,
    /// The start line (`INVITE sip:... SIP/2.0` or `SIP/2.0 200 OK`).
    pub line: String,
    /// `CSeq` method, for an arrow's label.
    pub cseq: String,
    /// The whole message, carrier-controlled bytes escaped ([`crate::text::escaped`]).
    pub message: String,
}

/// A non-INVITE client transaction of the call (CANCEL or BYE).
#[derive(Debug)]
struct Nict {
    method: &'static str,
    branch: String,
    cseq: u32,
    bytes: Vec<u8>,
    next_send: Option<Instant>,
    interval: Duration,
    deadline: Instant,
    done: bool,
}

/// One call's signalling.
#[derive(Debug)]
pub struct Call {
    config: CallConfig,
    phase: Phase,
    /// The current INVITE: branch, CSeq number, bytes.
    branch: String,
    cseq: u32,
    /// The CSeq of the dialog's next request (BYE).
    local_cseq: u32,
    invite: Vec<u8>,
    /// Timer A (UDP, while Calling) and its interval.
    timer_a: Option<Instant>,
    interval_a: Duration,
    /// Timer B: no response at all by then.
    timer_b: Instant,
    /// After a non-2xx: its ACK, re-sent on a retransmitted final response.
    final_ack: Option<Vec<u8>>,
    /// The dialog once a 2xx came: To tag, remote target, route set, ACK.
    to_tag: Option<String>,
    remote_target: Option<String>,
    route: Vec<String>,
    ack_2xx: Option<Vec<u8>>,
    /// Our hang-up was asked for.
    hangup: bool,
    cancel: Option<Nict>,
    bye: Option<Nict>,
    /// Challenges answered (one per call at most).
    auth_answers: u32,
    /// The answer's header, kept for the ACK of a 2xx and the BYE.
    auth: Option<(&'static str, String)>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<CallEvent>,
    flow: Vec<FlowEntry>,
    strays: u32,
    retransmissions: u32,
    started: Instant,
}

impl Call {
    /// Starts the call: the INVITE is due at once ([`Call::poll_transmit`]).
    pub fn new(config: CallConfig, now: Instant) -> Call {
        let mut rng = rand::rng();
        let branch = new_branch(&mut rng);
        let cseq = 1;
        let invite = build(
            "INVITE",
            &config.leg,
            &RequestParts {
                branch: &branch,
                cseq,
                sdp: Some(&config.offer),
                ..RequestParts::default()
            },
        );
        let reliable = config.reliable;
        let mut call = Call {
            config,
            phase: Phase::Calling,
            branch,
            cseq,
            local_cseq: cseq,
            invite: invite.clone(),
            timer_a: (!reliable).then(|| now + T1),
            interval_a: T1,
            timer_b: now + TIMER_64T1,
            final_ack: None,
            to_tag: None,
            remote_target: None,
            route: Vec::new(),
            ack_2xx: None,
            hangup: false,
            cancel: None,
            bye: None,
            auth_answers: 0,
            auth: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            flow: Vec::new(),
            strays: 0,
            retransmissions: 0,
            started: now,
        };
        call.send(now, invite);
        call
    }

    /// The next message to send to [`Call::peer`], if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// Where every message goes.
    pub fn peer(&self) -> SocketAddr {
        self.config.peer
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Nothing more will be sent or waited for.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The messages sent and received so far, in order.
    pub fn flow(&self) -> &[FlowEntry] {
        &self.flow
    }

    /// Messages that were not ours (another Call-ID, branch or source).
    pub fn strays(&self) -> u32 {
        self.strays
    }

    /// INVITE, CANCEL and BYE retransmissions sent.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// When the INVITE was first sent.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When [`Call::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Done {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if matches!(self.phase, Phase::Calling | Phase::Cancelling) && self.to_tag.is_none() {
            take(self.timer_a);
            take(Some(self.timer_b));
        }
        for n in [&self.cancel, &self.bye].into_iter().flatten() {
            if !n.done {
                take(n.next_send);
                take(Some(n.deadline));
            }
        }
        t
    }

    /// Advances the timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        let awaiting_invite = self.to_tag.is_none() && self.final_ack.is_none();
        if awaiting_invite && matches!(self.phase, Phase::Calling | Phase::Cancelling) {
            if now >= self.timer_b {
                // No response at all: nothing was established, nothing to end.
                self.timer_a = None;
                self.events.push_back(if self.hangup {
                    CallEvent::Cancelled
                } else {
                    CallEvent::NoResponse
                });
                self.phase = Phase::Done;
                return;
            }
            if let Some(a) = self.timer_a.filter(|a| now >= *a) {
                let _ = a;
                self.interval_a *= 2;
                self.timer_a = Some(now + self.interval_a);
                self.retransmissions += 1;
                let invite = self.invite.clone();
                self.send(now, invite);
            }
        }
        let reliable = self.config.reliable;
        let mut resend = Vec::new();
        let mut expired = Vec::new();
        for n in [&mut self.cancel, &mut self.bye].into_iter().flatten() {
            if n.done {
                continue;
            }
            if now >= n.deadline {
                n.done = true;
                expired.push(n.method);
                continue;
            }
            if let Some(s) = n.next_send.filter(|s| now >= *s) {
                let _ = s;
                n.interval = (n.interval * 2).min(T2);
                n.next_send = (!reliable).then(|| now + n.interval);
                resend.push(n.bytes.clone());
            }
        }
        for bytes in resend {
            self.retransmissions += 1;
            self.send(now, bytes);
        }
        for method in expired {
            match method {
                "BYE" => self.finish(CallEvent::ByeDone { code: None }),
                _ => {
                    // CANCEL got no answer by Timer F, and no final to the INVITE came.
                    if self.to_tag.is_none() {
                        self.finish(CallEvent::Cancelled);
                    }
                }
            }
        }
    }

    /// Ends the call: CANCEL before a final response, BYE once answered.
    /// Harmless to call again or once done.
    pub fn hang_up(&mut self, now: Instant) {
        if self.hangup || self.phase == Phase::Done {
            return;
        }
        self.hangup = true;
        match self.phase {
            Phase::Calling => self.phase = Phase::Cancelling,
            Phase::Proceeding => self.send_cancel(now),
            Phase::Confirmed => self.send_bye(now),
            _ => {}
        }
    }

    /// Feeds one received message from `from`.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let same_source = from.ip().to_canonical() == self.config.peer.ip().to_canonical()
            && from.port() == self.config.peer.port();
        if let Ok(resp) = parse_response(bytes) {
            if !same_source || resp.call_id.as_deref() != Some(&self.config.leg.call_id) {
                self.strays += 1;
                return;
            }
            self.received(now, bytes, &resp.cseq);
            self.on_response(now, resp);
        } else if let Ok(req) = parse_request(bytes) {
            if !same_source || req.header("Call-ID") != Some(&self.config.leg.call_id) {
                self.strays += 1;
                return;
            }
            let cseq = req
                .header("CSeq")
                .and_then(|c| c.split_whitespace().nth(1))
                .map(|m| (0, m.to_string()));
            self.received(now, bytes, &cseq);
            self.on_request(now, from, req);
        } else {
            self.strays += 1;
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Some((n, method)) = resp.cseq.clone() else {
            self.strays += 1;
            return;
        };
        let branch = resp.via_branch.clone().unwrap_or_default();
        if method.eq_ignore_ascii_case("INVITE") && n == self.cseq && branch == self.branch {
            self.on_invite_response(now, resp);
            return;
        }
        let mut bye_done = None;
        let mut matched = false;
        for nict in [&mut self.cancel, &mut self.bye].into_iter().flatten() {
            if nict.branch != branch || nict.cseq != n || !nict.method.eq_ignore_ascii_case(&method)
            {
                continue;
            }
            matched = true;
            if resp.code >= 200 && !nict.done {
                nict.done = true;
                if nict.method == "BYE" {
                    bye_done = Some(resp.code);
                }
            } else if resp.code < 200 {
                // Proceeding: stop retransmitting, keep waiting (Timer F).
                nict.next_send = None;
            }
        }
        if let Some(code) = bye_done {
            self.finish(CallEvent::ByeDone { code: Some(code) });
        }
        if matched {
            return;
        }
        self.strays += 1;
    }

    fn on_invite_response(&mut self, now: Instant, resp: Response) {
        let code = resp.code;
        let sdp = sdp_of(&resp);
        if code < 200 {
            if self.to_tag.is_some() || self.final_ack.is_some() {
                return;
            }
            self.timer_a = None;
            if self.phase == Phase::Calling {
                self.phase = Phase::Proceeding;
            }
            self.events.push_back(CallEvent::Provisional {
                code,
                reason: resp.reason.clone(),
                sdp,
            });
            if self.hangup && self.cancel.is_none() {
                self.send_cancel(now);
            }
            return;
        }
        self.timer_a = None;
        if code < 300 {
            self.on_2xx(now, resp, sdp);
            return;
        }
        // A retransmission of the final response we ACKed: ACK again.
        if let Some(ack) = self.final_ack.clone() {
            self.send(now, ack);
            return;
        }
        let ack = build(
            "ACK",
            &self.config.leg,
            &RequestParts {
                branch: &self.branch,
                cseq: self.cseq,
                to_tag: resp.to_tag.as_deref(),
                route: &[],
                ..RequestParts::default()
            },
        );
        self.final_ack = Some(ack.clone());
        self.send(now, ack);
        if (code == 401 || code == 407) && !self.hangup {
            self.retry_with_credentials(now, &resp);
            return;
        }
        if let Some(c) = self.cancel.as_mut() {
            c.done = true;
        }
        self.finish(if self.hangup {
            CallEvent::Cancelled
        } else {
            CallEvent::Rejected {
                code,
                reason: resp.reason.clone(),
            }
        });
    }

    /// Answers a 401/407 once (twice when the first answer's nonce went stale),
    /// or ends the call with [`CallEvent::AuthFailed`].
    fn retry_with_credentials(&mut self, now: Instant, resp: &Response) {
        let code = resp.code;
        let proxy = code == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let challenge = resp
            .header(header)
            .ok_or(DigestError::Missing("challenge header"))
            .and_then(|v| Challenge::parse(v, proxy));
        let fail = |realm: Option<String>, why: String, answered: bool| CallEvent::AuthFailed {
            code,
            realm,
            why,
            answered,
        };
        let challenge = match challenge {
            Ok(c) => c,
            Err(e) => {
                self.finish(fail(None, e.to_string(), self.auth_answers > 0));
                return;
            }
        };
        let stale_retry = challenge.stale && self.auth_answers == 1;
        if self.auth_answers > 0 && !stale_retry {
            self.finish(fail(
                Some(challenge.realm.clone()),
                "the carrier challenged again after our answer: it does not accept these \
                 credentials"
                    .into(),
                true,
            ));
            return;
        }
        let Some(creds) = self.config.credentials.clone() else {
            self.finish(fail(
                Some(challenge.realm.clone()),
                "the carrier asks for digest credentials and none were given".into(),
                false,
            ));
            return;
        };
        let cnonce = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let answer = match challenge.answer(
            &creds.username,
            creds.password.expose(),
            "INVITE",
            &self.config.leg.request_uri,
            &cnonce,
        ) {
            Ok(a) => a,
            Err(e) => {
                self.finish(fail(Some(challenge.realm.clone()), e.to_string(), false));
                return;
            }
        };
        self.auth_answers += 1;
        self.events.push_back(CallEvent::Authenticating {
            code,
            realm: challenge.realm.clone(),
            algorithm: challenge.algorithm.clone(),
        });
        self.auth = Some((challenge.answer_header(), answer));
        // A new transaction: new branch, next CSeq, same Call-ID and From tag.
        self.branch = new_branch(&mut rand::rng());
        self.cseq += 1;
        self.final_ack = None;
        self.invite = build(
            "INVITE",
            &self.config.leg,
            &RequestParts {
                branch: &self.branch,
                cseq: self.cseq,
                auth: self.auth.as_ref().map(|(h, v)| (*h, v.as_str())),
                sdp: Some(&self.config.offer),
                ..RequestParts::default()
            },
        );
        self.phase = Phase::Calling;
        self.interval_a = T1;
        self.timer_a = (!self.config.reliable).then(|| now + T1);
        self.timer_b = now + TIMER_64T1;
        let invite = self.invite.clone();
        self.send(now, invite);
    }

    fn on_2xx(&mut self, now: Instant, resp: Response, sdp: Option<Vec<u8>>) {
        if let (Some(tag), Some(ack)) = (&self.to_tag, &self.ack_2xx) {
            if resp.to_tag.as_ref() == Some(tag) {
                // A retransmitted 2xx: our ACK was lost.
                let ack = ack.clone();
                self.send(now, ack);
                return;
            }
        }
        if self.to_tag.is_some() {
            // A 2xx of another fork: not followed (a second dialog is not kept).
            self.strays += 1;
            return;
        }
        self.to_tag = resp.to_tag.clone();
        self.remote_target = resp.header("Contact").and_then(contact_uri);
        self.route = record_route(&resp);
        let ack = self.in_dialog("ACK", self.cseq, &new_branch(&mut rand::rng()));
        self.ack_2xx = Some(ack.clone());
        self.send(now, ack);
        if let Some(c) = self.cancel.as_mut() {
            c.done = true;
        }
        self.events.push_back(CallEvent::Answered {
            code: resp.code,
            sdp,
        });
        self.phase = Phase::Confirmed;
        if self.hangup {
            self.send_bye(now);
        }
    }

    fn on_request(&mut self, now: Instant, from: SocketAddr, req: Request) {
        let tag = self.to_tag.clone().unwrap_or_default();
        let (code, reason) = match req.method.as_str() {
            "BYE" => (200, "OK"),
            "ACK" => return,
            "OPTIONS" => (200, "OK"),
            _ => (501, "Not Implemented"),
        };
        let resp = build_response(&req, from, code, reason, &tag, &[], None);
        self.send(now, resp);
        if req.method == "BYE" && self.phase != Phase::Done {
            if let Some(b) = self.bye.as_mut() {
                b.done = true;
            }
            self.finish(CallEvent::RemoteBye);
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        let bytes = build(
            "CANCEL",
            &self.config.leg,
            &RequestParts {
                branch: &self.branch,
                cseq: self.cseq,
                ..RequestParts::default()
            },
        );
        self.cancel = Some(self.nict("CANCEL", self.branch.clone(), self.cseq, bytes, now));
        self.phase = Phase::Cancelling;
        // The INVITE's final response (487) is awaited this long after the CANCEL.
        self.timer_b = now + TIMER_64T1;
    }

    fn send_bye(&mut self, now: Instant) {
        let branch = new_branch(&mut rand::rng());
        self.local_cseq = self.local_cseq.max(self.cseq) + 1;
        let bytes = self.in_dialog("BYE", self.local_cseq, &branch);
        self.bye = Some(self.nict("BYE", branch, self.local_cseq, bytes, now));
        self.phase = Phase::Terminating;
    }

    fn nict(
        &mut self,
        method: &'static str,
        branch: String,
        cseq: u32,
        bytes: Vec<u8>,
        now: Instant,
    ) -> Nict {
        self.send(now, bytes.clone());
        Nict {
            method,
            branch,
            cseq,
            bytes,
            next_send: (!self.config.reliable).then(|| now + T1),
            interval: T1,
            deadline: now + TIMER_64T1,
            done: false,
        }
    }

    /// A request inside the dialog (ACK of a 2xx, BYE).
    fn in_dialog(&self, method: &str, cseq: u32, branch: &str) -> Vec<u8> {
        build(
            method,
            &self.config.leg,
            &RequestParts {
                branch,
                cseq,
                to_tag: self.to_tag.as_deref(),
                request_uri: self.remote_target.as_deref(),
                route: &self.route,
                auth: self.auth.as_ref().map(|(h, v)| (*h, v.as_str())),
                ..RequestParts::default()
            },
        )
    }

    fn send(&mut self, now: Instant, bytes: Vec<u8>) {
        let cseq = cseq_method(&bytes);
        self.flow.push(FlowEntry {
            at: now,
            sent: true,
            line: first_line(&bytes),
            cseq,
            message: crate::text::escaped(&bytes),
        });
        self.outbox.push_back(bytes);
    }

    fn received(&mut self, now: Instant, bytes: &[u8], cseq: &Option<(u32, String)>) {
        if self.flow.len() < 256 {
            self.flow.push(FlowEntry {
                at: now,
                sent: false,
                line: first_line(bytes),
                cseq: cseq.as_ref().map(|(_, m)| m.clone()).unwrap_or_default(),
                message: crate::text::escaped(bytes),
            });
        }
    }

    fn finish(&mut self, event: CallEvent) {
        self.events.push_back(event);
        self.phase = Phase::Done;
        self.timer_a = None;
    }
}

fn new_branch<R: rand::Rng + ?Sized>(rng: &mut R) -> String {
    format!("z9hG4bK{}", Alphanumeric.sample_string(rng, 24))
}

fn sdp_of(resp: &Response) -> Option<Vec<u8>> {
    let is_sdp = resp
        .content_type
        .as_deref()
        .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
    (is_sdp && !resp.body.is_empty()).then(|| resp.body.clone())
}

/// The URI of a Contact value (`"x" <sip:a@b>;expires=60` or `sip:a@b;p`).
fn contact_uri(v: &str) -> Option<String> {
    let v = v.trim();
    if v == "*" {
        return None;
    }
    let uri = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    let uri = uri.trim();
    (uri.len() < 512 && (uri.starts_with("sip:") || uri.starts_with("sips:")))
        .then(|| uri.to_string())
}

/// The route set of a dialog: the Record-Route values of the 2xx, reversed
/// (RFC 3261 §12.1.2), each `<uri>` entry separate.
fn record_route(resp: &Response) -> Vec<String> {
    let mut routes: Vec<String> = resp
        .headers
        .iter()
        .filter(|(n, _)| canonical_name(n).eq_ignore_ascii_case("Record-Route"))
        .flat_map(|(_, v)| v.split(">,").map(|s| s.trim().to_string()))
        .map(|s| if s.ends_with('>') { s } else { format!("{s}>") })
        .filter(|s| s.starts_with('<'))
        .take(16)
        .collect();
    routes.reverse();
    routes
}

fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len())
        .min(200);
    crate::text::printable(&String::from_utf8_lossy(&bytes[..end]))
}

fn cseq_method(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]);
    text.lines()
        .find_map(|l| l.strip_prefix("CSeq: "))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests;
