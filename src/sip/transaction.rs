//! The non-INVITE client transaction of one OPTIONS probe (RFC 3261 §17.1.2),
//! and of any other non-INVITE request (the credentials check's REGISTER): a
//! response matches on the request's own method in its CSeq.
//!
//! Sans-IO: the caller sends what [`OptionsTransaction::poll_transmit`] hands
//! out, feeds received messages to [`OptionsTransaction::handle_message`] and
//! calls [`OptionsTransaction::handle_timeout`] at [`OptionsTransaction::poll_timeout`].
//! Time is always passed in.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::message::{parse_request, parse_response, ParseError, Response, TransactionIds};
use crate::trunk::Transport;

/// RFC 3261 T1: round-trip estimate, first retransmission interval on UDP.
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: the cap of the retransmission interval for non-INVITE requests.
pub const T2: Duration = Duration::from_secs(4);

/// Provisional responses remembered per transaction; more are counted as seen
/// but not stored.
const MAX_PROVISIONALS: usize = 16;

/// Messages a traced transaction keeps (request, retransmissions, answers);
/// later ones are not kept, so a chatty peer cannot grow it without bound.
const MAX_TRACED: usize = 32;

/// One message of a transaction as it crossed the wire (`--trace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    /// Since the transaction started (the first transmission).
    pub at: Duration,
    /// `true`: the request (or a retransmission) we sent.
    pub sent: bool,
    /// Where a received message came from; the peer for one sent.
    pub remote: SocketAddr,
    pub bytes: Vec<u8>,
}

/// How a transaction ended.
// One outcome per probe, so the size difference costs nothing; boxing the
// response would only make matching on it clumsier for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TxOutcome {
    /// A final (2xx–6xx) response; `rtt` runs from the first transmission.
    Final { response: Response, rtt: Duration },
    /// No final response before the deadline (Timer F's role).
    Timeout,
}

/// What [`OptionsTransaction::handle_message`] made of one received message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// A matching 1xx; the transaction keeps waiting for the final response.
    Provisional(u16),
    /// A matching final response; the transaction is complete.
    Final(u16),
    /// A well-formed message that is not ours; counted, changes nothing.
    Stray(StrayReason),
    /// Not a parseable SIP message; changes nothing.
    Garbage(ParseError),
    /// Arrived after the transaction ended (e.g. a retransmitted 200).
    Ignored,
}

/// Why a message was not accepted as a response of this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrayReason {
    /// Not from the probed address (exact IP and port).
    WrongSource,
    /// Top Via branch is not ours.
    WrongBranch,
    WrongCallId,
    /// CSeq number or method differs from ours.
    WrongCSeq,
    /// A request (e.g. the gateway probing us back), not a response.
    NotAResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Done,
}

/// One OPTIONS probe's client transaction.
#[derive(Debug)]
pub struct OptionsTransaction {
    request: Vec<u8>,
    /// The request's method (its CSeq method), from its start line.
    method: String,
    ids: TransactionIds,
    peer: SocketAddr,
    transport: Transport,
    started: Instant,
    deadline: Instant,
    state: State,
    /// A transmission is due (initial send, or Timer E fired).
    send_due: bool,
    sent_once: bool,
    /// Timer E: when to retransmit next (UDP only).
    timer_e: Option<Instant>,
    /// The interval Timer E was last started with.
    interval: Duration,
    retransmissions: u32,
    provisionals: Vec<(u16, String)>,
    strays: u32,
    garbage: u32,
    /// A response that matched branch, Call-ID and CSeq but came from another address.
    elsewhere: Option<SocketAddr>,
    outcome: Option<TxOutcome>,
    /// When the pending transmission became due (for the trace's timestamps).
    due_at: Instant,
    /// Every message in and out, when traced.
    trace: Option<Vec<WireRecord>>,
}

impl OptionsTransaction {
    /// Starts the transaction. `request` is the output of
    /// [`build_options`](super::build_options) for `ids`; `peer` is the address
    /// probed; the first transmission is taken to happen at `now` (call
    /// [`poll_transmit`](Self::poll_transmit) right away). The transaction ends
    /// with [`TxOutcome::Timeout`] at `now + timeout` at the latest.
    pub fn new(
        request: Vec<u8>,
        ids: TransactionIds,
        peer: SocketAddr,
        transport: Transport,
        now: Instant,
        timeout: Duration,
    ) -> Self {
        let method = request
            .split(|b| *b == b' ')
            .next()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_default();
        OptionsTransaction {
            request,
            method,
            ids,
            peer,
            transport,
            started: now,
            deadline: now + timeout,
            state: State::Trying,
            send_due: true,
            sent_once: false,
            timer_e: (!transport.is_reliable()).then(|| now + T1),
            interval: T1,
            retransmissions: 0,
            provisionals: Vec::new(),
            strays: 0,
            garbage: 0,
            elsewhere: None,
            outcome: None,
            due_at: now,
            trace: None,
        }
    }

    /// Keeps every message sent and received from now on (`--trace`); call
    /// right after [`new`](Self::new).
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// The messages kept since [`enable_trace`](Self::enable_trace), in order
    /// (at most 32); empty when not traced.
    pub fn trace(&self) -> &[WireRecord] {
        self.trace.as_deref().unwrap_or(&[])
    }

    fn keep(&mut self, at: Instant, sent: bool, remote: SocketAddr, bytes: &[u8]) {
        let started = self.started;
        if let Some(t) = self.trace.as_mut().filter(|t| t.len() < MAX_TRACED) {
            t.push(WireRecord {
                at: at.saturating_duration_since(started),
                sent,
                remote,
                bytes: bytes.to_vec(),
            });
        }
    }

    /// Bytes of the request (what [`poll_transmit`](Self::poll_transmit) hands out).
    pub fn request_len(&self) -> usize {
        self.request.len()
    }

    /// Bytes to send now, if any: the request once at the start, then once each
    /// time [`handle_timeout`](Self::handle_timeout) fires Timer E (UDP only).
    /// Call after `new` and after every `handle_timeout`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if !self.send_due || self.state == State::Done {
            return None;
        }
        self.send_due = false;
        if self.sent_once {
            self.retransmissions += 1;
        }
        self.sent_once = true;
        if self.trace.is_some() {
            let request = std::mem::take(&mut self.request);
            self.keep(self.due_at, true, self.peer, &request);
            self.request = request;
        }
        Some(self.request.clone())
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called (Timer E
    /// or the overall deadline, whichever is first); `None` once done.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done => None,
            _ => Some(match self.timer_e {
                Some(e) => e.min(self.deadline),
                None => self.deadline,
            }),
        }
    }

    /// Advances timers to `now`: ends the transaction at the deadline, or makes a
    /// retransmission due when Timer E has fired. Harmless to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        if now >= self.deadline {
            self.finish(TxOutcome::Timeout);
            return;
        }
        if let Some(e) = self.timer_e {
            if now >= e {
                self.send_due = true;
                self.due_at = now;
                // RFC 3261 §17.1.2.2: Trying doubles up to T2; Proceeding uses T2.
                self.interval = match self.state {
                    State::Trying => (self.interval * 2).min(T2),
                    _ => T2,
                };
                self.timer_e = Some(now + self.interval);
            }
        }
    }

    /// Feeds one received message (a UDP datagram, or one message from a
    /// [`StreamFramer`](super::StreamFramer)) and the address it came from.
    pub fn handle_message(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Disposition {
        self.keep(now, false, from, bytes);
        if self.state == State::Done {
            return Disposition::Ignored;
        }
        let response = match parse_response(bytes) {
            Ok(r) => r,
            Err(ParseError::NotAResponse) if parse_request(bytes).is_ok() => {
                return self.stray(StrayReason::NotAResponse);
            }
            Err(e) => {
                self.garbage += 1;
                return Disposition::Garbage(e);
            }
        };
        if let Some(reason) = self.mismatch(from, &response) {
            if reason == StrayReason::WrongSource
                && self.elsewhere.is_none()
                && self.mismatch(self.peer, &response).is_none()
            {
                // Our answer, from the wrong address: still not counted, but worth saying.
                self.elsewhere = Some(from);
            }
            return self.stray(reason);
        }
        let code = response.code;
        if code < 200 {
            if self.provisionals.len() < MAX_PROVISIONALS {
                self.provisionals.push((code, response.reason));
            }
            self.state = State::Proceeding;
            return Disposition::Provisional(code);
        }
        let rtt = now.saturating_duration_since(self.started);
        self.finish(TxOutcome::Final { response, rtt });
        Disposition::Final(code)
    }

    fn mismatch(&self, from: SocketAddr, response: &Response) -> Option<StrayReason> {
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare canonically.
        let same_source = from.ip().to_canonical() == self.peer.ip().to_canonical()
            && from.port() == self.peer.port();
        if !same_source {
            return Some(StrayReason::WrongSource);
        }
        if response.via_branch.as_deref() != Some(self.ids.branch.as_str()) {
            return Some(StrayReason::WrongBranch);
        }
        if response.call_id.as_deref() != Some(self.ids.call_id.as_str()) {
            return Some(StrayReason::WrongCallId);
        }
        match &response.cseq {
            Some((n, method))
                if *n == self.ids.cseq && method.eq_ignore_ascii_case(&self.method) =>
            {
                None
            }
            _ => Some(StrayReason::WrongCSeq),
        }
    }

    fn stray(&mut self, reason: StrayReason) -> Disposition {
        self.strays += 1;
        Disposition::Stray(reason)
    }

    fn finish(&mut self, outcome: TxOutcome) {
        self.state = State::Done;
        self.send_due = false;
        self.timer_e = None;
        self.outcome = Some(outcome);
    }

    /// The result, once [`is_done`](Self::is_done).
    pub fn outcome(&self) -> Option<&TxOutcome> {
        self.outcome.as_ref()
    }

    /// The result, moved out (a second call returns `None`): for a caller
    /// that is done with the transaction and wants the response without a copy.
    pub fn take_outcome(&mut self) -> Option<TxOutcome> {
        self.outcome.take()
    }

    /// Whether a final response arrived or the deadline passed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Retransmissions handed out by `poll_transmit` (the first send not counted).
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// Matching 1xx responses seen, in order (at most 16 kept).
    pub fn provisionals(&self) -> &[(u16, String)] {
        &self.provisionals
    }

    /// Messages that were well-formed but not ours.
    /// The address a response matching this transaction (branch, Call-ID, CSeq)
    /// came from when that was not the probed address: such a response never
    /// completes the transaction, but it tells that the carrier answers from
    /// elsewhere (a load balancer, asymmetric routing).
    pub fn answered_from_elsewhere(&self) -> Option<SocketAddr> {
        self.elsewhere
    }

    pub fn strays(&self) -> u32 {
        self.strays
    }

    /// Messages that did not parse as SIP.
    pub fn garbage(&self) -> u32 {
        self.garbage
    }

    pub fn ids(&self) -> &TransactionIds {
        &self.ids
    }

    /// When the transaction started (its first transmission).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The address probed (where the request goes, where the answer must come from).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The transport this transaction runs over (decides retransmission).
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{build_options, build_response, parse_request, OptionsSpec};

    const PEER: &str = "198.51.100.7:5060";
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn ids() -> TransactionIds {
        TransactionIds {
            branch: "z9hG4bKtxtesttxtesttxtest01".into(),
            call_id: "txcallid".into(),
            from_tag: "txfromtag".into(),
            cseq: 7,
        }
    }

    fn request(transport: Transport) -> Vec<u8> {
        let spec = OptionsSpec {
            target_host: "198.51.100.7".into(),
            target_port: 5060,
            transport,
            local: "192.0.2.10:40000".parse().unwrap(),
            user_agent: "trunkprobe/test".into(),
            extra_headers: vec![],
        };
        build_options(&spec, &ids())
    }

    fn tx(transport: Transport, t0: Instant) -> OptionsTransaction {
        let peer = PEER.parse().unwrap();
        OptionsTransaction::new(request(transport), ids(), peer, transport, t0, TIMEOUT)
    }

    /// A response to our request as the peer would send it.
    fn answer(code: u16, reason: &str) -> Vec<u8> {
        let req = parse_request(&request(Transport::Udp)).unwrap();
        build_response(
            &req,
            "192.0.2.10:40000".parse().unwrap(),
            code,
            reason,
            "tt",
            &[],
            None,
        )
    }

    fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }

    /// Runs the timer loop with no responses; returns the send times (offsets from t0).
    fn send_times(tx: &mut OptionsTransaction, t0: Instant) -> Vec<Duration> {
        let mut sends = vec![];
        let mut now = t0;
        loop {
            if tx.poll_transmit().is_some() {
                sends.push(now - t0);
            }
            let Some(at) = tx.poll_timeout() else { break };
            now = at;
            tx.handle_timeout(now);
        }
        sends
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn a_traced_transaction_keeps_each_send_and_every_answer_with_its_time() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        t.enable_trace();
        assert!(t.poll_transmit().is_some());
        t.handle_timeout(t0 + T1);
        assert!(t.poll_transmit().is_some(), "Timer E retransmission");
        let peer: SocketAddr = PEER.parse().unwrap();
        let other: SocketAddr = "203.0.113.9:5060".parse().unwrap();
        t.handle_message(t0 + ms(&[600])[0], other, &answer(200, "OK"));
        t.handle_message(t0 + ms(&[700])[0], peer, &answer(200, "OK"));
        t.handle_message(t0 + ms(&[800])[0], peer, &answer(200, "OK"));
        let kept: Vec<_> = t.trace().iter().map(|r| (r.at, r.sent, r.remote)).collect();
        assert_eq!(
            kept,
            vec![
                (Duration::ZERO, true, peer),
                (T1, true, peer),
                (ms(&[600])[0], false, other),
                (ms(&[700])[0], false, peer),
                (ms(&[800])[0], false, peer),
            ],
            "the stray and the late retransmitted 200 are shown too"
        );
        assert!(t.trace()[0].bytes.starts_with(b"OPTIONS "));
        assert!(tx(Transport::Udp, t0).trace().is_empty(), "off by default");
    }

    #[test]
    fn a_trace_is_bounded() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        t.enable_trace();
        let peer: SocketAddr = PEER.parse().unwrap();
        for _ in 0..100 {
            t.handle_message(t0, peer, &answer(100, "Trying"));
        }
        assert_eq!(t.trace().len(), MAX_TRACED);
    }

    #[test]
    fn udp_retransmits_on_timer_e_until_deadline() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        assert_eq!(send_times(&mut t, t0), ms(&[0, 500, 1500, 3500]));
        assert_eq!(t.retransmissions(), 3);
        assert_eq!(t.outcome(), Some(&TxOutcome::Timeout));
        assert!(t.is_done() && t.poll_timeout().is_none() && t.poll_transmit().is_none());
    }

    #[test]
    fn udp_interval_is_capped_at_t2() {
        let t0 = Instant::now();
        let peer = PEER.parse().unwrap();
        let mut t = OptionsTransaction::new(
            request(Transport::Udp),
            ids(),
            peer,
            Transport::Udp,
            t0,
            Duration::from_secs(20),
        );
        assert_eq!(
            send_times(&mut t, t0),
            ms(&[0, 500, 1500, 3500, 7500, 11500, 15500, 19500])
        );
        assert_eq!(t.retransmissions(), 7);
    }

    #[test]
    fn tcp_never_retransmits() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Tcp, t0);
        assert_eq!(send_times(&mut t, t0), ms(&[0]));
        assert_eq!(t.retransmissions(), 0);
        assert_eq!(t.outcome(), Some(&TxOutcome::Timeout));
    }

    #[test]
    fn matching_response_completes_with_rtt() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        assert!(t.poll_transmit().is_some());
        let at = t0 + Duration::from_millis(120);
        let ok = answer(200, "OK");
        assert_eq!(
            t.handle_message(at, PEER.parse().unwrap(), &ok),
            Disposition::Final(200)
        );
        match t.outcome() {
            Some(TxOutcome::Final { response, rtt }) => {
                assert_eq!(response.code, 200);
                assert_eq!(*rtt, Duration::from_millis(120));
            }
            other => panic!("{other:?}"),
        }
        assert!(t.is_done() && t.poll_timeout().is_none());
        // A retransmitted 200 after completion changes nothing.
        assert_eq!(
            t.handle_message(at, PEER.parse().unwrap(), &ok),
            Disposition::Ignored
        );
        assert_eq!(t.strays(), 0);
    }

    #[test]
    fn mismatches_are_stray_and_do_not_complete() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        t.poll_transmit();
        let ok = answer(200, "OK");
        let peer: SocketAddr = PEER.parse().unwrap();
        let cases: Vec<(SocketAddr, Vec<u8>, StrayReason)> = vec![
            (
                "198.51.100.7:5080".parse().unwrap(),
                ok.clone(),
                StrayReason::WrongSource,
            ),
            (
                "198.51.100.8:5060".parse().unwrap(),
                ok.clone(),
                StrayReason::WrongSource,
            ),
            (
                peer,
                replace(&ok, "z9hG4bKtxtest", "z9hG4bKother"),
                StrayReason::WrongBranch,
            ),
            (
                peer,
                replace(&ok, "txcallid", "othercallid"),
                StrayReason::WrongCallId,
            ),
            (
                peer,
                replace(&ok, "CSeq: 7 OPTIONS", "CSeq: 8 OPTIONS"),
                StrayReason::WrongCSeq,
            ),
            (
                peer,
                replace(&ok, "CSeq: 7 OPTIONS", "CSeq: 7 INVITE"),
                StrayReason::WrongCSeq,
            ),
            (peer, request(Transport::Udp), StrayReason::NotAResponse),
        ];
        let n = cases.len() as u32;
        for (from, bytes, reason) in cases {
            assert_eq!(
                t.handle_message(t0, from, &bytes),
                Disposition::Stray(reason)
            );
            assert!(!t.is_done());
        }
        assert_eq!(t.strays(), n);
        assert!(matches!(
            t.handle_message(t0, peer, b"\x00garbage"),
            Disposition::Garbage(_)
        ));
        assert_eq!((t.strays(), t.garbage()), (n, 1));
        // The real 200 still completes the transaction afterwards.
        let at = t0 + Duration::from_millis(80);
        assert_eq!(t.handle_message(at, peer, &ok), Disposition::Final(200));
        assert!(
            matches!(t.outcome(), Some(TxOutcome::Final { rtt, .. }) if *rtt == Duration::from_millis(80))
        );
    }

    #[test]
    fn ipv4_mapped_source_matches() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        let mapped: SocketAddr = "[::ffff:198.51.100.7]:5060".parse().unwrap();
        assert_eq!(
            t.handle_message(t0, mapped, &answer(200, "OK")),
            Disposition::Final(200)
        );
    }

    #[test]
    fn provisional_then_final_with_t2_retransmits_in_proceeding() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        let peer = PEER.parse().unwrap();
        assert!(t.poll_transmit().is_some());
        let d = t.handle_message(
            t0 + Duration::from_millis(100),
            peer,
            &answer(100, "Trying"),
        );
        assert_eq!(d, Disposition::Provisional(100));
        assert_eq!(t.provisionals(), &[(100, "Trying".to_string())]);
        assert!(!t.is_done());
        // Timer E already running fires at 0.5 s, then every T2 in Proceeding.
        let mut sends = vec![];
        let mut now = t0;
        while let Some(at) = t.poll_timeout() {
            if at >= t0 + Duration::from_millis(4600) {
                break;
            }
            now = at;
            t.handle_timeout(now);
            if t.poll_transmit().is_some() {
                sends.push(now - t0);
            }
        }
        assert_eq!(sends, ms(&[500, 4500]));
        let d = t.handle_message(now, peer, &answer(183, "Session Progress"));
        assert_eq!(d, Disposition::Provisional(183));
        let at = t0 + Duration::from_millis(4600);
        assert_eq!(
            t.handle_message(at, peer, &answer(200, "OK")),
            Disposition::Final(200)
        );
        assert_eq!(t.provisionals().len(), 2);
        assert!(
            matches!(t.outcome(), Some(TxOutcome::Final { rtt, .. }) if *rtt == Duration::from_millis(4600))
        );
    }

    #[test]
    fn provisionals_are_bounded() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Tcp, t0);
        for _ in 0..100 {
            t.handle_message(t0, PEER.parse().unwrap(), &answer(180, "Ringing"));
        }
        assert_eq!(t.provisionals().len(), MAX_PROVISIONALS);
    }

    #[test]
    fn final_error_codes_complete() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Tls, t0);
        let d = t.handle_message(t0, PEER.parse().unwrap(), &answer(403, "Forbidden"));
        assert_eq!(d, Disposition::Final(403));
        assert!(t.is_done());
    }

    #[test]
    fn timeout_outcome_and_late_response_ignored() {
        let t0 = Instant::now();
        let mut t = tx(Transport::Udp, t0);
        t.poll_transmit();
        t.handle_timeout(t0 + TIMEOUT);
        assert_eq!(t.outcome(), Some(&TxOutcome::Timeout));
        assert!(t.poll_transmit().is_none());
        let late = t.handle_message(t0 + TIMEOUT, PEER.parse().unwrap(), &answer(200, "OK"));
        assert_eq!(late, Disposition::Ignored);
        assert_eq!(t.outcome(), Some(&TxOutcome::Timeout));
    }
}
