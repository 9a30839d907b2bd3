//! The transaction table of a shared UDP socket: many OPTIONS transactions in
//! flight on one socket, each found by the branch of the top Via of what arrives.
//!
//! Sans-IO like [`OptionsTransaction`]: the caller inserts transactions, sends
//! what [`TransactionTable::insert`] and [`TransactionTable::handle_timeout`]
//! hand out, feeds every datagram to [`TransactionTable::handle_datagram`] and
//! sleeps until [`TransactionTable::poll_timeout`]. The branch only routes a
//! datagram: the transaction itself still checks source address, branch,
//! Call-ID and CSeq exactly, so a datagram with our branch from anyone else is
//! a stray of that transaction, never its answer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use super::transaction::OptionsTransaction;

/// A transaction that ended (final response or deadline), with its caller's token.
pub type Finished<K> = (K, OptionsTransaction);

/// Transactions in flight on one socket, keyed by Via branch.
#[derive(Debug)]
pub struct TransactionTable<K> {
    live: HashMap<String, (K, OptionsTransaction)>,
    /// Wake-ups `(when, branch)`; entries whose transaction moved on are skipped.
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    /// Datagrams that named no transaction in flight (late, foreign, garbage).
    unmatched: u64,
}

impl<K> Default for TransactionTable<K> {
    fn default() -> Self {
        TransactionTable {
            live: HashMap::new(),
            timers: BinaryHeap::new(),
            unmatched: 0,
        }
    }
}

impl<K> TransactionTable<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fresh transaction; returns the request to send now. A transaction
    /// whose branch is already in flight is handed back unchanged (`Err`): branches
    /// are random, so this means a caller bug, never a peer's doing.
    #[allow(clippy::result_large_err)]
    pub fn insert(
        &mut self,
        token: K,
        mut tx: OptionsTransaction,
    ) -> Result<Option<Vec<u8>>, (K, OptionsTransaction)> {
        let branch = tx.ids().branch.clone();
        if self.live.contains_key(&branch) {
            return Err((token, tx));
        }
        let bytes = tx.poll_transmit();
        if let Some(at) = tx.poll_timeout() {
            self.shed_stale_timers();
            self.timers.push(Reverse((at, branch.clone())));
        }
        self.live.insert(branch, (token, tx));
        Ok(bytes)
    }

    /// Routes one datagram to its transaction; returns it when this completed it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<Finished<K>> {
        let Some(entry) = top_via_branch(bytes).and_then(|b| self.live.get_mut(b)) else {
            self.unmatched += 1;
            return None;
        };
        entry.1.handle_message(now, from, bytes);
        if !entry.1.is_done() {
            return None;
        }
        let branch = entry.1.ids().branch.clone();
        self.live.remove(&branch)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires every timer due at `now`: retransmissions go to `send` as
    /// `(peer, bytes)`, transactions past their deadline to `finished`.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        send: &mut Vec<(SocketAddr, Vec<u8>)>,
        finished: &mut Vec<Finished<K>>,
    ) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, branch))) = self.timers.pop() else {
                break;
            };
            let Some((_, tx)) = self.live.get_mut(&branch) else {
                continue;
            };
            if tx.poll_timeout() != Some(at) {
                continue;
            }
            tx.handle_timeout(now);
            if let Some(bytes) = tx.poll_transmit() {
                send.push((tx.peer(), bytes));
            }
            match tx.poll_timeout() {
                Some(next) => self.timers.push(Reverse((next, branch))),
                None => finished.extend(self.live.remove(&branch)),
            }
        }
        self.shed_stale_timers();
    }

    /// Drops the wake-ups of transactions that ended or moved on, once they
    /// outnumber the live ones four to one: a transaction answered before its
    /// first timer leaves its wake-up behind, and at 60,000 requests a second
    /// over TCP (no retransmission timer, only the 5 s deadline) those piled up
    /// to 300,000 before the first came due. Amortised O(1) a call.
    fn shed_stale_timers(&mut self) {
        if self.timers.len() > 64 && self.timers.len() > 4 * self.live.len() {
            let live = &self.live;
            self.timers.retain(|Reverse((at, b))| {
                live.get(b)
                    .is_some_and(|(_, t)| t.poll_timeout() == Some(*at))
            });
        }
    }

    /// Removes every transaction probing `peer` (an ICMP error named it).
    pub fn remove_peer(&mut self, peer: SocketAddr) -> Vec<Finished<K>> {
        let same = |a: SocketAddr| {
            a.ip().to_canonical() == peer.ip().to_canonical() && a.port() == peer.port()
        };
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, (_, tx))| same(tx.peer()))
            .map(|(b, _)| b.clone())
            .collect();
        gone.iter().filter_map(|b| self.live.remove(b)).collect()
    }

    /// Takes every transaction out (their connection ended); no timer is left.
    pub fn drain(&mut self) -> impl Iterator<Item = Finished<K>> + '_ {
        self.timers.clear();
        self.live.drain().map(|(_, entry)| entry)
    }

    /// The token and transaction in flight under `branch`.
    pub fn get_mut(&mut self, branch: &str) -> Option<&mut (K, OptionsTransaction)> {
        self.live.get_mut(branch)
    }

    /// Takes a transaction out (its send failed); its timers become stale.
    pub fn remove(&mut self, branch: &str) -> Option<Finished<K>> {
        self.live.remove(branch)
    }

    /// Transactions in flight.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Datagrams that named no transaction in flight.
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }
}

/// The `branch` parameter of the first Via header (`Via:` or compact `v:`),
/// found without parsing the message; `None` when there is none.
pub fn top_via_branch(bytes: &[u8]) -> Option<&str> {
    let head_end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    lines.next()?; // start line
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if !(name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")) {
            continue;
        }
        let first = value.split(',').next().unwrap_or("");
        return first.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
        });
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::fixtures::{self, PEER};
    use crate::sip::{Disposition, TxOutcome};
    use crate::trunk::Transport;
    use std::time::Duration;

    /// Transaction `n` over UDP and the 200 that answers it.
    fn start(n: u32, t0: Instant) -> (OptionsTransaction, Vec<u8>) {
        let (tx, req) =
            fixtures::transaction("table", n, Transport::Udp, t0, Duration::from_secs(5));
        (tx, fixtures::answer(&req, 200, "OK"))
    }

    #[test]
    fn branch_is_found_in_long_and_compact_form() {
        let m = b"SIP/2.0 200 OK\r\nFrom: <sip:a>\r\nVIA : SIP/2.0/UDP h;rport=1; Branch=z9hG4bKx,SIP/2.0/UDP b;branch=y\r\n\r\n";
        assert_eq!(top_via_branch(m), Some("z9hG4bKx"));
        let m = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;branch=z9hG4bKc\r\nVia: SIP/2.0/UDP b;branch=y\r\n\r\n";
        assert_eq!(top_via_branch(m), Some("z9hG4bKc"));
        assert_eq!(
            top_via_branch(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n"),
            None
        );
        assert_eq!(top_via_branch(b"\xff\xfe"), None);
    }

    #[test]
    fn datagrams_reach_their_own_transaction_only() {
        let t0 = Instant::now();
        let mut table = TransactionTable::new();
        let (a, ok_a) = start(1, t0);
        let (b, ok_b) = start(2, t0);
        assert!(table.insert("a", a).unwrap().is_some());
        assert!(table.insert("b", b).unwrap().is_some());
        let peer: SocketAddr = PEER.parse().unwrap();
        // Our branch from another address: a stray of that transaction, not its answer.
        let other: SocketAddr = "198.51.100.8:5060".parse().unwrap();
        assert!(table.handle_datagram(t0, other, &ok_b).is_none());
        assert!(table
            .handle_datagram(t0, peer, b"SIP/2.0 200 OK\r\n\r\n")
            .is_none());
        assert_eq!(table.unmatched(), 1);
        let later = t0 + Duration::from_millis(3);
        let (token, tx) = table.handle_datagram(later, peer, &ok_b).unwrap();
        assert_eq!(token, "b");
        assert_eq!(tx.strays(), 1);
        assert!(
            matches!(tx.outcome(), Some(TxOutcome::Final { rtt, .. }) if *rtt == Duration::from_millis(3))
        );
        assert_eq!(table.len(), 1);
        // A retransmitted 200 after completion names nobody.
        assert!(table.handle_datagram(later, peer, &ok_b).is_none());
        assert_eq!(table.unmatched(), 2);
        let (token, _) = table.handle_datagram(later, peer, &ok_a).unwrap();
        assert_eq!(token, "a");
        assert!(table.is_empty());
        let (dup, _) = start(3, t0);
        let (dup2, _) = start(3, t0);
        assert!(table.insert("c", dup).is_ok());
        assert!(table.insert("c2", dup2).is_err());
    }

    #[test]
    fn wake_ups_of_answered_transactions_do_not_pile_up() {
        let t0 = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut table = TransactionTable::new();
        // Each answered at once, long before its first timer: no handle_timeout runs.
        for n in 0..10_000 {
            let (tx, ok) = start(n, t0);
            table.insert(n, tx).unwrap();
            assert!(table.handle_datagram(t0, peer, &ok).is_some());
            assert!(table.timers.len() <= 65, "{} wake-ups", table.timers.len());
        }
        // The live transaction's own wake-up is never shed.
        let (tx, _) = start(10_000, t0);
        table.insert(10_000, tx).unwrap();
        for n in 10_001..10_200 {
            let (tx, ok) = start(n, t0);
            table.insert(n, tx).unwrap();
            table.handle_datagram(t0, peer, &ok).unwrap();
        }
        assert_eq!(table.len(), 1);
        assert!(table.poll_timeout().is_some());
        let (mut send, mut finished) = (Vec::new(), Vec::new());
        table.handle_timeout(t0 + Duration::from_millis(500), &mut send, &mut finished);
        assert_eq!(send.len(), 1, "Timer E of the one in flight still fires");
    }

    #[test]
    fn timers_retransmit_then_time_out() {
        let t0 = Instant::now();
        let mut table = TransactionTable::new();
        let (a, _) = start(1, t0);
        table.insert(1u32, a).unwrap();
        let (mut sends, mut done) = (vec![], vec![]);
        let mut fired = vec![];
        while let Some(at) = table.poll_timeout() {
            let before = sends.len();
            table.handle_timeout(at, &mut sends, &mut done);
            if sends.len() > before {
                fired.push(at - t0);
            }
        }
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(fired, ms(&[500, 1500, 3500]));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1.outcome(), Some(&TxOutcome::Timeout));
        assert!(table.is_empty() && table.poll_timeout().is_none());
    }

    #[test]
    fn an_icmp_error_ends_the_transactions_of_its_peer() {
        let t0 = Instant::now();
        let mut table = TransactionTable::new();
        let (a, ok) = start(1, t0);
        table.insert((), a).unwrap();
        let mapped: SocketAddr = "[::ffff:198.51.100.7]:5060".parse().unwrap();
        assert!(table
            .remove_peer("198.51.100.7:5061".parse().unwrap())
            .is_empty());
        let gone = table.remove_peer(mapped);
        assert_eq!(gone.len(), 1);
        assert!(!gone[0].1.is_done());
        // Its stale timer is skipped and late answers are unmatched.
        let (mut s, mut d) = (vec![], vec![]);
        table.handle_timeout(t0 + Duration::from_secs(9), &mut s, &mut d);
        assert!(s.is_empty() && d.is_empty());
        assert!(table
            .handle_datagram(t0, PEER.parse().unwrap(), &ok)
            .is_none());
        let _ = Disposition::Ignored;
    }
}
