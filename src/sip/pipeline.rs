//! Many OPTIONS transactions pipelined on one TCP or TLS connection, as a SIP UA
//! reuses its connection (RFC 3261 §18.1.1, RFC 5923) and SIPp's `-t t1` does:
//! requests go out back to back without waiting for each other's answers, the
//! answers come back framed by Content-Length, in any order, and each is routed
//! to its transaction by the branch of its top Via.
//!
//! Sans-IO like the [`TransactionTable`] it wraps: the caller starts
//! transactions with [`Pipeline::start`], writes [`Pipeline::unsent`] to the
//! connection and reports how much went with [`Pipeline::wrote`], feeds every
//! read to [`Pipeline::handle_bytes`], sleeps until [`Pipeline::poll_timeout`]
//! and then calls [`Pipeline::handle_timeout`]; when the connection ends it
//! takes every transaction still in flight with [`Pipeline::close`]. Every
//! message on the connection comes from its peer; the transaction still checks
//! branch, Call-ID and CSeq exactly, so a forged, late or duplicate answer is a
//! stray (of the transaction its branch names, or of nobody:
//! [`Pipeline::unmatched`]), never an answer.

use std::net::SocketAddr;
use std::time::Instant;

use super::framing::{FrameError, StreamFramer};
use super::table::{Finished, TransactionTable};
use super::transaction::OptionsTransaction;

/// The transactions in flight on one connection and its bytes in both directions.
#[derive(Debug)]
pub struct Pipeline<K> {
    table: TransactionTable<K>,
    framer: StreamFramer,
    /// The connection's peer: where every message read from it comes from.
    peer: SocketAddr,
    /// Requests queued for the connection; `out[written..]` is not written yet.
    out: Vec<u8>,
    written: usize,
    /// Retransmissions the table hands out: none, the transport is reliable.
    resend: Vec<(SocketAddr, Vec<u8>)>,
}

impl<K> Pipeline<K> {
    /// A pipeline on a connection to `peer`, refusing answers larger than
    /// `max_message` bytes (see [`StreamFramer::new`]).
    pub fn new(peer: SocketAddr, max_message: usize) -> Self {
        Pipeline {
            table: TransactionTable::new(),
            framer: StreamFramer::new(max_message),
            peer,
            out: Vec::new(),
            written: 0,
            resend: Vec::new(),
        }
    }

    /// Starts a transaction (of a reliable transport): its request is queued
    /// behind the others in [`unsent`](Self::unsent). A transaction whose branch
    /// is already in flight is handed back (`Err`): a caller bug, never a peer's.
    #[allow(clippy::result_large_err)]
    pub fn start(&mut self, token: K, tx: OptionsTransaction) -> Result<(), Finished<K>> {
        if let Some(bytes) = self.table.insert(token, tx)? {
            if self.written > 0 && self.written >= self.out.len() / 2 {
                self.out.drain(..self.written);
                self.written = 0;
            }
            self.out.extend_from_slice(&bytes);
        }
        Ok(())
    }

    /// Request bytes waiting to be written, in order.
    pub fn unsent(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// The first `n` bytes of [`unsent`](Self::unsent) were written.
    pub fn wrote(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
    }

    /// Feeds bytes read from the connection; transactions they complete are
    /// appended to `finished`. A framing error means the stream is out of step:
    /// the connection must end (those completed before it stay completed).
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        bytes: &[u8],
        finished: &mut Vec<Finished<K>>,
    ) -> Result<(), FrameError> {
        self.framer.push(bytes);
        while let Some(message) = self.framer.next_frame()? {
            finished.extend(self.table.handle_datagram(now, self.peer, message));
        }
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run: the
    /// earliest deadline in flight (`None` when idle: the table's stale
    /// wake-ups of answered transactions wait for the next one).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.table.is_empty() {
            return None;
        }
        self.table.poll_timeout()
    }

    /// Ends every transaction whose deadline has passed at `now` (appended to `finished`).
    pub fn handle_timeout(&mut self, now: Instant, finished: &mut Vec<Finished<K>>) {
        self.table.handle_timeout(now, &mut self.resend, finished);
        // Reliable transports never retransmit; nothing to send.
        self.resend.clear();
    }

    /// The connection ended: every transaction still in flight, unfinished.
    pub fn close(&mut self) -> impl Iterator<Item = Finished<K>> + '_ {
        self.out.clear();
        self.written = 0;
        self.table.drain()
    }

    /// Transactions in flight.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Messages that named no transaction in flight (forged, late, duplicate).
    pub fn unmatched(&self) -> u64 {
        self.table.unmatched()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::fixtures::{self, PEER};
    use crate::sip::TxOutcome;
    use crate::trunk::Transport;
    use std::time::Duration;

    fn start(n: u32, t0: Instant, timeout: Duration) -> (OptionsTransaction, Vec<u8>) {
        fixtures::transaction("pipe", n, Transport::Tcp, t0, timeout)
    }

    fn answer(req: &[u8], code: u16) -> Vec<u8> {
        fixtures::answer(req, code, if code == 200 { "OK" } else { "Forged" })
    }

    fn code(tx: &OptionsTransaction) -> Option<u16> {
        match tx.outcome() {
            Some(TxOutcome::Final { response, .. }) => Some(response.code),
            _ => None,
        }
    }

    /// Three transactions in flight, their requests queued in order.
    fn three(t0: Instant) -> (Pipeline<u32>, Vec<Vec<u8>>) {
        let mut p = Pipeline::new(PEER.parse().unwrap(), 64 * 1024);
        let mut reqs = vec![];
        for n in 1..=3 {
            let (tx, req) = start(n, t0, Duration::from_secs(5));
            p.start(n, tx).unwrap();
            reqs.push(req);
        }
        (p, reqs)
    }

    #[test]
    fn requests_go_out_back_to_back() {
        let (mut p, reqs) = three(Instant::now());
        assert_eq!(p.unsent(), reqs.concat());
        p.wrote(10);
        assert_eq!(p.unsent(), &reqs.concat()[10..]);
        let (tx, req) = start(4, Instant::now(), Duration::from_secs(5));
        p.start(4, tx).unwrap();
        assert_eq!(p.unsent(), &[reqs.concat(), req][..].concat()[10..]);
        p.wrote(p.unsent().len());
        assert!(p.unsent().is_empty());
        assert_eq!(p.len(), 4);
        // The same branch twice is handed back.
        let (dup, _) = start(4, Instant::now(), Duration::from_secs(5));
        assert!(p.start(5, dup).is_err());
    }

    #[test]
    fn answers_in_any_order_split_or_together_reach_their_transaction() {
        let t0 = Instant::now();
        let (mut p, reqs) = three(t0);
        let (a1, a2, a3) = (
            answer(&reqs[0], 200),
            answer(&reqs[1], 200),
            answer(&reqs[2], 200),
        );
        let mut done = vec![];
        // The third answer split across two reads, the first and second in one.
        p.handle_bytes(t0, &a3[..20], &mut done).unwrap();
        assert!(done.is_empty());
        p.handle_bytes(t0, &a3[20..], &mut done).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, 3);
        p.handle_bytes(t0, &[a2, a1].concat(), &mut done).unwrap();
        let tokens: Vec<u32> = done.iter().map(|(k, _)| *k).collect();
        assert_eq!(tokens, [3, 2, 1]);
        assert!(done.iter().all(|(_, tx)| code(tx) == Some(200)));
        assert!(p.is_empty() && p.poll_timeout().is_none());
        assert_eq!(p.unmatched(), 0);
    }

    #[test]
    fn forged_late_and_duplicate_answers_never_count() {
        let t0 = Instant::now();
        let (mut p, reqs) = three(t0);
        let mut done = vec![];
        // Another branch: nobody's.
        let forged = answer(&reqs[0], 500);
        let wrong_branch = String::from_utf8(forged)
            .unwrap()
            .replace("z9hG4bKpipe", "z9hG4bKfake");
        // Our branch, another Call-ID: a stray of that transaction.
        let wrong_call_id = String::from_utf8(answer(&reqs[1], 500))
            .unwrap()
            .replace("Call-ID: call2", "Call-ID: forged");
        p.handle_bytes(t0, wrong_branch.as_bytes(), &mut done)
            .unwrap();
        p.handle_bytes(t0, wrong_call_id.as_bytes(), &mut done)
            .unwrap();
        assert!(done.is_empty());
        assert_eq!(p.unmatched(), 1);
        let ok = answer(&reqs[1], 200);
        p.handle_bytes(t0, &ok, &mut done).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].0, code(&done[0].1)), (2, Some(200)));
        assert_eq!(done[0].1.strays(), 1);
        // The same answer again: late, nobody's.
        p.handle_bytes(t0, &ok, &mut done).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(p.unmatched(), 2);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_framing_error_keeps_what_completed_before_it() {
        let t0 = Instant::now();
        let (mut p, reqs) = three(t0);
        let mut done = vec![];
        let bytes = [
            answer(&reqs[0], 200),
            b"SIP/2.0 200 OK\r\nContent-Length: 999999999\r\n\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(
            p.handle_bytes(t0, &bytes, &mut done),
            Err(FrameError::TooLarge { limit: 64 * 1024 })
        );
        assert_eq!(done.len(), 1);
        let mut rest: Vec<u32> = p
            .close()
            .map(|(k, tx)| {
                assert!(!tx.is_done());
                k
            })
            .collect();
        rest.sort_unstable();
        assert_eq!(rest, [2, 3]);
        assert!(p.is_empty() && p.unsent().is_empty() && p.poll_timeout().is_none());
    }

    #[test]
    fn each_transaction_keeps_its_own_deadline() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(PEER.parse().unwrap(), 64 * 1024);
        for (n, ms) in [(1, 300), (2, 100), (3, 200)] {
            let (tx, _) = start(n, t0, Duration::from_millis(ms));
            p.start(n, tx).unwrap();
        }
        let mut done = vec![];
        let mut order = vec![];
        while let Some(at) = p.poll_timeout() {
            p.handle_timeout(at, &mut done);
            for (k, tx) in done.drain(..) {
                assert_eq!(tx.outcome(), Some(&TxOutcome::Timeout));
                assert_eq!(tx.retransmissions(), 0);
                order.push((k, at - t0));
            }
        }
        let ms = Duration::from_millis;
        assert_eq!(order, [(2, ms(100)), (3, ms(200)), (1, ms(300))]);
    }
}
