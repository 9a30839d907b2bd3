//! The per-target, per-gateway and per-trunk series of the daemon, kept as plain
//! numbers and rendered straight to the text exposition format.
//!
//! At 100,000 targets the `prometheus` crate's vecs cost about 9 KB per target and
//! `gather()` built the whole family tree on every scrape (seconds, hundreds of MB).
//! `prometheus-client` encodes straight to a writer, but it too keeps a map of
//! label sets to an atomic metric object per series and family, which is the
//! per-target cost this store avoids; it was considered, not measured.
//! Here each target is a small struct and its pre-rendered, escaped label string
//! (all but the `trunk_id`/`trunk` labels its trunk's series share, kept once);
//! trunks live in [`STRIPES`] mutex-guarded stripes chosen by a hash of the trunk id,
//! so a render holds one stripe for a moment and probes recording meanwhile barely
//! wait. At 100,000 targets the store holds about 400 bytes per target.
//! The render goes family by family (the format wants each family's lines together),
//! handing out chunks of about [`CHUNK`] bytes so a scrape never holds the whole text.
//!
//! Three parts: this module's record API (what a probe, ladder, lookup or
//! trunk list changes), `slab`'s allocator and prefix interning, and
//! `text`'s family table and writer.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use super::{unix_now, RttHistogram, TargetLabels, MAX_EGRESS_ADDRESSES, RTT_BUCKETS};
use crate::checks::path::Sighting;
use crate::outcome::{MtuResult, Outcome, TargetResult};
use crate::resolve::Resolution;

mod slab;
mod text;

use slab::*;
use text::*;

/// Number of trunk stripes. A render locks one at a time, and a probe recording
/// into the stripe being rendered waits (blocking its runtime worker): with 64
/// stripes a 100,000-target render held each for milliseconds and p99 probe
/// lateness rose to 250 ms; 1024 keep every hold to about 100 targets.
pub const STRIPES: usize = 1024;

/// A render hands out its text in chunks of about this many bytes.
pub const CHUNK: usize = 256 * 1024;

/// Bucket counts (not cumulative), count and sum of one RTT histogram; a
/// target's counts are `u32` (see [`Count`]), a trunk's `u64`.
#[derive(Default)]
struct Hist<N> {
    buckets: [N; RTT_BUCKETS.len()],
    count: N,
    sum: f64,
}

impl<N: Count> Hist<N> {
    fn observe(&mut self, v: f64) {
        if let Some(i) = RTT_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i].inc();
        }
        self.count.inc();
        self.sum += v;
    }
}

/// A counter's integer. A target's probe and histogram counters are `u32`:
/// probed at most once a second (`qualify_frequency` ≥ 1 s), a target needs
/// 136 years to count 2^32 probes, and a wrap would read as a counter reset
/// to Prometheus anyway. A trunk's histogram sums all its targets and stays
/// `u64`.
trait Count: Copy + Default + Into<u64> {
    fn inc(&mut self);
}

impl Count for u32 {
    fn inc(&mut self) {
        *self = self.wrapping_add(1);
    }
}

impl Count for u64 {
    fn inc(&mut self) {
        *self = self.wrapping_add(1);
    }
}

/// An absent gauge of a [`Target`]: no sample is written. (`Option<f64>` takes
/// 16 bytes; none of these gauges is ever NaN.)
const ABSENT: f64 = f64::NAN;

/// The gauge's value unless [`ABSENT`].
fn present(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// The last UDP size ladder run on a target. Sizes are of UDP datagrams (at
/// most 65,535 bytes), so `u32`, with [`Mtu::NONE`] for an absent one.
struct Mtu {
    largest: u32,
    first_lost: u32,
    path_mtu: u32,
    invite: u32,
    last_run: f64,
}

impl Mtu {
    const NONE: u32 = u32::MAX;

    fn size(b: Option<usize>) -> u32 {
        b.and_then(|b| u32::try_from(b).ok()).unwrap_or(Mtu::NONE)
    }

    fn get(b: u32) -> Option<u64> {
        (b != Mtu::NONE).then_some(u64::from(b))
    }
}

/// What one target's last final response said about this prober's address.
/// The addresses are interned in the stripe's [`EgressTable`] (most targets
/// share them; a `SocketAddr` and an `IpAddr` inline took 56 bytes), the ports
/// are the target's own.
#[derive(Clone, Copy, Default)]
struct Egress {
    /// 1 + index of the addresses in the table; 0 while no response was seen.
    addrs: u32,
    local_port: u16,
    rport: u16,
}

/// The addresses part of an [`Egress`]: the local address's IP (its port is
/// the target's), the Via `received`, and whether the Via had an `rport`.
#[derive(Clone, Copy, PartialEq)]
struct EgressAddrs {
    local: Option<IpAddr>,
    received: Option<IpAddr>,
    has_rport: bool,
}

/// A stripe's distinct [`EgressAddrs`]; entries no target uses any more are
/// dropped when the table outgrows the stripe's targets.
#[derive(Default)]
struct EgressTable(Vec<EgressAddrs>);

/// Every series of one target.
struct Target {
    /// Unix time the last probe finished; [`ABSENT`] before the first (a ladder
    /// may have run already), when the OPTIONS series are absent.
    last_probe: f64,
    /// [`ABSENT`] until a probe is answered.
    last_rtt: f64,
    /// [`ABSENT`] until a TLS certificate is seen.
    tls_not_after: f64,
    /// Only with [`RttHistogram::Target`].
    rtt: Option<Box<Hist<u32>>>,
    mtu: Option<Box<Mtu>>,
    /// By [`Outcome::ALL`] index; a zero counter is not exported.
    probes: [u32; 7],
    egress: Egress,
    status: u16,
    up: bool,
    /// TCP/TLS connections opened to the target (each probe that carried a connect time).
    connections: u32,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            last_probe: ABSENT,
            last_rtt: ABSENT,
            tls_not_after: ABSENT,
            rtt: None,
            mtu: None,
            probes: [0; 7],
            egress: Egress::default(),
            status: 0,
            up: false,
            connections: 0,
        }
    }
}

#[derive(Default)]
struct Gateway {
    lookup_seconds: f64,
    /// Addresses of the last lookup (a count of DNS records).
    addresses: u32,
}

/// The trunk-level series of one trunk; its targets and gateways are the
/// entries of the stripe's [`Slabs`] under its prefixes.
#[derive(Default)]
struct Trunk {
    id: Box<str>,
    generation: u64,
    rtt: TrunkRtt,
    info: Option<Prefixed>,
    /// Sorted, without duplicates.
    findings: Box<[Prefixed]>,
}

impl Trunk {
    /// Observes `rtt` in the trunk histogram labelled `prefix + rest`.
    fn observe(&mut self, prefixes: &mut Prefixes, prefix: &str, rest: &str, rtt: f64) {
        let p = prefixes.find(prefix);
        let found = self
            .rtt
            .iter_mut()
            .find(|(k, _)| Some(k.prefix) == p && *k.rest == *rest);
        match found {
            Some((_, h)) => h.observe(rtt),
            None => {
                let mut h = Hist::default();
                h.observe(rtt);
                let key = Prefixed {
                    prefix: prefixes.acquire(prefix),
                    rest: rest.into(),
                };
                // Normally the only one: not room for four.
                self.rtt.reserve_exact(1);
                self.rtt.push((key, h));
            }
        }
    }

    /// The trunk-level label sets, each using a prefix.
    fn labels(&mut self) -> impl Iterator<Item = &mut Prefixed> {
        let rtt = self.rtt.iter_mut().map(|(k, _)| k);
        self.info
            .iter_mut()
            .chain(self.findings.iter_mut())
            .chain(rtt)
    }
}

/// A stripe's trunks, sorted by id: found by binary search (a stripe holds some
/// tens), without the empty slots of a hash map (a third of its 136-byte
/// slots on average).
#[derive(Default)]
struct Trunks(Vec<Trunk>);

impl Trunks {
    fn get_mut(&mut self, id: &str) -> Option<&mut Trunk> {
        let i = self.0.binary_search_by(|t| (*t.id).cmp(id)).ok()?;
        Some(&mut self.0[i])
    }

    /// The trunk `id`, added (with no series) when new.
    fn get_or_insert(&mut self, id: &str) -> &mut Trunk {
        let i = match self.0.binary_search_by(|t| (*t.id).cmp(id)) {
            Ok(i) => i,
            Err(i) => {
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact(growth(self.0.capacity(), 1));
                }
                let id = id.into();
                self.0.insert(
                    i,
                    Trunk {
                        id,
                        ..Trunk::default()
                    },
                );
                i
            }
        };
        &mut self.0[i]
    }

    fn remove(&mut self, id: &str) -> Option<Trunk> {
        let i = self.0.binary_search_by(|t| (*t.id).cmp(id)).ok()?;
        let t = self.0.remove(i);
        if self.0.len() * 2 < self.0.capacity() {
            self.0.shrink_to(self.0.len() * 5 / 4);
        }
        Some(t)
    }
}

/// Only with [`RttHistogram::Trunk`]: a trunk's histograms by their label set
/// `trunk_id, trunk, transport` (normally one).
type TrunkRtt = Vec<(Prefixed, Hist<u64>)>;

/// The trunks of one stripe and the series of their targets and gateways.
#[derive(Default)]
struct Stripe {
    trunks: Trunks,
    slabs: Slabs,
}

/// The series of a stripe's targets and gateways. Each label set starts with
/// `trunk_id="…",trunk="…"`, the same for all the series of a trunk: that
/// prefix is kept once, in `prefixes` (with the number of entries using it),
/// and each target and gateway keeps its index and the rest of its label set
/// (from `,gateway=`). Repeated in every entry, it was a third of the text.
#[derive(Default)]
struct Slabs {
    prefixes: Prefixes,
    targets: Slab<Target>,
    gateways: Slab<Gateway>,
    egress: EgressTable,
}

impl Slabs {
    /// The target labelled `prefix + rest`, added when new.
    fn target(&mut self, prefix: &str, rest: &str) -> &mut Target {
        entry(&mut self.prefixes, &mut self.targets, prefix, rest)
    }

    /// The gateway labelled `prefix + rest`, added when new.
    fn gateway(&mut self, prefix: &str, rest: &str) -> &mut Gateway {
        entry(&mut self.prefixes, &mut self.gateways, prefix, rest)
    }

    /// Removes the target labelled `prefix + rest`.
    fn remove_target(&mut self, prefix: &str, rest: &str) {
        if let Some(p) = self.prefixes.find(prefix) {
            if let Some(i) = self.targets.position(p, rest) {
                kill(&mut self.prefixes, &mut self.targets, i);
            }
        }
    }

    /// Removes every target and gateway of trunk `id`: those whose prefix
    /// begins `trunk_id="…",` with its escaped id (exactly theirs: an escaped
    /// value ends at its first unescaped quote).
    fn remove_trunk(&mut self, id: &str) {
        let mut head = String::new();
        push_label(&mut head, "trunk_id", id);
        head.push(',');
        let Slabs {
            prefixes,
            targets,
            gateways,
            ..
        } = self;
        let theirs = prefixes.starting_with(&head);
        for i in 0..targets.items.len() as u32 {
            if theirs.contains(&targets.items[i as usize].prefix) {
                kill(prefixes, targets, i);
            }
        }
        for i in 0..gateways.items.len() as u32 {
            if theirs.contains(&gateways.items[i as usize].prefix) {
                kill(prefixes, gateways, i);
            }
        }
    }
}

impl EgressTable {
    /// The [`Egress::addrs`] of `a`, added when new.
    fn intern(&mut self, a: EgressAddrs, targets: &mut Slab<Target>) -> u32 {
        if let Some(i) = self.0.iter().position(|e| *e == a) {
            return i as u32 + 1;
        }
        if self.0.len() >= 8 && self.0.len() > 2 * targets.live() {
            self.drop_unused(targets);
        }
        self.0.push(a);
        self.0.len() as u32
    }

    /// Drops the entries no target uses, renumbering the targets' (a removed
    /// target's entry is reset, so it uses none).
    fn drop_unused(&mut self, targets: &mut Slab<Target>) {
        let mut map = vec![0; self.0.len()];
        for it in &targets.items {
            if let Some(i) = it.v.egress.addrs.checked_sub(1) {
                map[i as usize] = 1;
            }
        }
        let mut n = 0;
        let mut i = 0;
        self.0.retain(|_| {
            let used = map[i] != 0;
            if used {
                n += 1;
                map[i] = n;
            }
            i += 1;
            used
        });
        for it in &mut targets.items {
            if let Some(i) = it.v.egress.addrs.checked_sub(1) {
                it.v.egress.addrs = map[i as usize];
            }
        }
    }

    fn get(&self, e: Egress) -> Option<Sighting> {
        let a = self.0.get(e.addrs.checked_sub(1)? as usize)?;
        Some(Sighting {
            local: a.local.map(|ip| SocketAddr::new(ip, e.local_port)),
            received: a.received,
            rport: a.has_rport.then_some(e.rport),
        })
    }
}

impl Stripe {
    /// Compacts the slabs that want it, renumbering the prefixes used.
    fn tidy(&mut self) {
        let slabs = &mut self.slabs;
        if slabs.prefixes.0.wants_compaction() {
            let map = slabs.prefixes.0.compact();
            let targets = slabs.targets.items.iter_mut().filter(|it| it.live());
            let gateways = slabs.gateways.items.iter_mut().filter(|it| it.live());
            let entries = targets.map(|it| &mut it.prefix);
            let entries = entries.chain(gateways.map(|it| &mut it.prefix));
            let trunks = self.trunks.0.iter_mut().flat_map(Trunk::labels);
            for p in entries.chain(trunks.map(|l| &mut l.prefix)) {
                *p = map[usize::from(*p)] as u16;
            }
        }
        if slabs.targets.wants_compaction() {
            slabs.targets.compact();
        }
        if slabs.gateways.wants_compaction() {
            slabs.gateways.compact();
        }
    }
}

/// The compact store: see the module documentation.
pub struct Store {
    stripes: Box<[Mutex<Stripe>]>,
    /// `,location="…"` or empty: appended to every label set when rendered
    /// (not kept in each).
    location: String,
    rtt: RttHistogram,
}

thread_local! {
    /// Where a label set is rendered to look its series up without allocating.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

impl Store {
    /// An empty store; `location` (already bounded) is added to every series.
    pub fn new(location: Option<&str>, rtt: RttHistogram) -> Store {
        let mut loc = String::new();
        if let Some(l) = location {
            loc.push(',');
            push_label(&mut loc, "location", l);
        }
        Store {
            stripes: (0..STRIPES)
                .map(|_| Mutex::new(Stripe::default()))
                .collect(),
            location: loc,
            rtt,
        }
    }

    fn stripe(&self, trunk_id: &str) -> MutexGuard<'_, Stripe> {
        // FNV-1a: stable and cheap; the ids are bounded to 64 characters.
        let h = trunk_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        lock(&self.stripes[(h % STRIPES as u64) as usize])
    }

    /// Starts (or restarts) a trunk at `generation`, keeping its series.
    pub fn track(&self, trunk_id: &str, generation: u64) {
        self.stripe(trunk_id)
            .trunks
            .get_or_insert(trunk_id)
            .generation = generation;
    }

    /// Removes a trunk and every series of it.
    pub fn forget(&self, trunk_id: &str) {
        let mut stripe = self.stripe(trunk_id);
        let Stripe { trunks, slabs } = &mut *stripe;
        if let Some(mut t) = trunks.remove(trunk_id) {
            slabs.remove_trunk(trunk_id);
            t.labels().for_each(|l| slabs.prefixes.release(l.prefix));
            stripe.tidy();
        }
    }

    /// Runs `f` on the trunk (and its stripe's slabs) if it is tracked at
    /// `generation`.
    fn with_trunk(&self, trunk_id: &str, generation: u64, f: impl FnOnce(&mut Trunk, &mut Slabs)) {
        let mut stripe = self.stripe(trunk_id);
        let Stripe { trunks, slabs } = &mut *stripe;
        if let Some(t) = trunks.get_mut(trunk_id) {
            if t.generation == generation {
                f(t, slabs);
            }
        }
    }

    /// Runs `f` with the prefix and the rest of a label set that `labels`
    /// renders (in a buffer of this thread: looking a series up allocates
    /// nothing) and splits.
    fn with_labels<R>(
        labels: impl FnOnce(&mut String) -> usize,
        f: impl FnOnce(&str, &str) -> R,
    ) -> R {
        SCRATCH.with_borrow_mut(|key| {
            key.clear();
            let prefix = labels(key);
            let (prefix, rest) = key.split_at(prefix);
            f(prefix, rest)
        })
    }

    /// Appends a target's label set; returns where its prefix
    /// (`trunk_id="…",trunk="…"`) ends.
    fn target_labels(&self, out: &mut String, l: &TargetLabels) -> usize {
        let values = l.values();
        let pairs: [(&str, &str); 5] =
            std::array::from_fn(|i| (super::TARGET_LABELS[i], values[i]));
        push_labels(out, &pairs)
    }

    /// Records one probe of a target and its state after hysteresis.
    pub fn record_probe(&self, gen: u64, l: &TargetLabels, r: &TargetResult, up: bool) {
        let rtt = r.rtt.map(|d| d.as_secs_f64());
        let per_target = self.rtt == RttHistogram::Target;
        let per_trunk = self.rtt == RttHistogram::Trunk;
        let egress = r.response.as_ref().map(|_| EgressAddrs {
            local: r.local.map(|a| a.ip()),
            received: r.received,
            has_rport: r.rport.is_some(),
        });
        let outcome = Outcome::ALL
            .iter()
            .position(|o| *o == r.outcome)
            .unwrap_or(0);
        SCRATCH.with_borrow_mut(|key| {
            // The target's label set, then the trunk histogram's if it has one:
            // looking them up allocates nothing.
            key.clear();
            let prefix = self.target_labels(key, l);
            let end = key.len();
            if per_trunk {
                // `trunk_id, trunk, transport`: the same prefix.
                key.push(',');
                push_labels(key, &[("transport", &l.transport)]);
            }
            let (key, hist_rest) = key.split_at(end);
            let (prefix, rest) = key.split_at(prefix);
            self.with_trunk(&l.trunk_id, gen, |trunk, slabs| {
                let egress = egress.map(|a| slabs.egress.intern(a, &mut slabs.targets));
                let t = slabs.target(prefix, rest);
                t.last_probe = unix_now();
                t.up = up;
                t.status = r.status_code.unwrap_or(0);
                t.probes[outcome].inc();
                if r.transport.is_reliable() && r.connect_time.is_some() {
                    t.connections.inc();
                }
                if let Some(rtt) = rtt {
                    t.last_rtt = rtt;
                    if per_target {
                        t.rtt.get_or_insert_with(Box::default).observe(rtt);
                    }
                }
                if let Some(cert) = r.tls.as_ref().and_then(|t| t.cert.as_ref()) {
                    t.tls_not_after = cert.not_after as f64;
                }
                if let Some(addrs) = egress {
                    t.egress = Egress {
                        addrs,
                        local_port: r.local.map_or(0, |a| a.port()),
                        rport: r.rport.unwrap_or(0),
                    };
                }
                if let (true, Some(rtt)) = (per_trunk, rtt) {
                    trunk.observe(&mut slabs.prefixes, prefix, hist_rest, rtt);
                }
            });
        });
    }

    /// Records one UDP size ladder run on a target.
    pub fn record_mtu(&self, gen: u64, l: &TargetLabels, r: &MtuResult) {
        let mtu = Mtu {
            largest: Mtu::size(r.largest_answered),
            first_lost: Mtu::size(r.first_lost),
            path_mtu: r.path_mtu.unwrap_or(Mtu::NONE),
            invite: Mtu::size(r.invite_bytes),
            last_run: unix_now(),
        };
        let labels = |key: &mut String| self.target_labels(key, l);
        Store::with_labels(labels, |prefix, rest| {
            self.with_trunk(&l.trunk_id, gen, |_, slabs| {
                let t = slabs.target(prefix, rest);
                match &mut t.mtu {
                    Some(m) => **m = mtu,
                    None => t.mtu = Some(Box::new(mtu)),
                }
            });
        });
    }

    /// Records a gateway's last lookup.
    pub fn record_dns(&self, gen: u64, l: &TargetLabels, res: &Resolution) {
        let gateway = [
            ("trunk_id", &*l.trunk_id),
            ("trunk", &*l.trunk),
            ("gateway", &*l.gateway),
        ];
        let labels = |key: &mut String| push_labels(key, &gateway);
        Store::with_labels(labels, |prefix, rest| {
            self.with_trunk(&l.trunk_id, gen, |_, slabs| {
                *slabs.gateway(prefix, rest) = Gateway {
                    lookup_seconds: res.lookup_time.as_secs_f64(),
                    addresses: u32::try_from(res.addresses.len()).unwrap_or(u32::MAX),
                };
            });
        });
    }

    /// Sets a trunk's info series (`trunk_id, trunk, provider, transport,
    /// media_encryption, auth_type`).
    pub fn set_info(&self, gen: u64, info: [&str; 6]) {
        let names = [
            "trunk_id",
            "trunk",
            "provider",
            "transport",
            "media_encryption",
            "auth_type",
        ];
        let pairs: Vec<(&str, &str)> = names.into_iter().zip(info).collect();
        let mut key = String::new();
        let prefix = push_labels(&mut key, &pairs);
        let (prefix, rest) = key.split_at(prefix);
        self.with_trunk(info[0], gen, |t, slabs| {
            let info = Prefixed {
                prefix: slabs.prefixes.acquire(prefix),
                rest: rest.into(),
            };
            if let Some(old) = t.info.replace(info) {
                slabs.prefixes.release(old.prefix);
            }
        });
    }

    /// Replaces a trunk's findings with `(check, severity)` pairs.
    pub fn set_findings(&self, gen: u64, id: &str, name: &str, findings: &[(&str, &str)]) {
        let mut prefix = String::new();
        push_label(&mut prefix, "trunk_id", id);
        prefix.push(',');
        push_label(&mut prefix, "trunk", name);
        let mut now: Vec<Box<str>> = findings
            .iter()
            .map(|(check, severity)| {
                let mut rest = String::from(",");
                push_labels(&mut rest, &[("check", check), ("severity", severity)]);
                rest.into()
            })
            .collect();
        // In the order of the whole label sets: they share the prefix.
        now.sort();
        now.dedup();
        self.with_trunk(id, gen, |t, slabs| {
            let now = now.into_iter().map(|rest| Prefixed {
                prefix: slabs.prefixes.acquire(&prefix),
                rest,
            });
            let old = std::mem::replace(&mut t.findings, now.collect());
            old.iter().for_each(|f| slabs.prefixes.release(f.prefix));
        });
    }

    /// Removes every series of one target.
    pub fn forget_target(&self, gen: u64, l: &TargetLabels) {
        let labels = |key: &mut String| self.target_labels(key, l);
        Store::with_labels(labels, |prefix, rest| {
            let mut stripe = self.stripe(&l.trunk_id);
            let Stripe { trunks, slabs } = &mut *stripe;
            if let Some(t) = trunks.get_mut(&l.trunk_id) {
                if t.generation == gen {
                    slabs.remove_target(prefix, rest);
                    stripe.tidy();
                }
            }
        });
    }

    /// What the targets' last responses said about this prober's address: the
    /// distinct Via `received` addresses (at most [`MAX_EGRESS_ADDRESSES`]) and
    /// whether it is behind NAT (`None` while no carrier reported it), by the
    /// rule of [`Sighting`] that [`crate::checks::path::egress`] applies too.
    pub fn egress(&self) -> (Vec<IpAddr>, Option<bool>) {
        let mut public = Vec::new();
        let mut nat = None;
        for stripe in self.stripes.iter() {
            let stripe = lock(stripe);
            let slabs = &stripe.slabs;
            let seen = slabs.targets.iter().map(|(_, _, t)| t.egress);
            for e in seen.filter_map(|e| slabs.egress.get(e)) {
                if !e.reported() {
                    continue;
                }
                if let Some(ip) = e.received {
                    if public.len() < MAX_EGRESS_ADDRESSES && !public.contains(&ip) {
                        public.push(ip);
                    }
                }
                if let Some((ip_differs, port_differs)) = e.translation() {
                    nat = Some(nat.unwrap_or(false) || ip_differs || port_differs);
                }
            }
        }
        (public, nat)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{self, TargetResult};
    use crate::trunk::Transport;
    use std::time::Duration;

    fn labels() -> TargetLabels {
        TargetLabels::new(
            "id1",
            "Main \"A\" \\ trunk",
            "gw.example.com:5060",
            "192.0.2.1:5060",
            "udp",
        )
    }

    fn answered(ms: u64) -> TargetResult {
        let ip = "192.0.2.1".parse().ok();
        let mut r = outcome::blank_result(ip, 5060, Transport::Udp, Outcome::Ok);
        r.status_code = Some(200);
        r.rtt = Some(Duration::from_millis(ms));
        r
    }

    fn resolution() -> Resolution {
        Resolution {
            addresses: vec!["192.0.2.1".parse().unwrap()],
            literal: false,
            pinned: false,
            lookup_time: Duration::from_millis(2),
            ttl: None,
            failure: None,
            srv: vec![],
            naptr: vec![],
        }
    }

    fn render(s: &Store) -> String {
        let mut text = String::new();
        s.render(&mut |c| {
            text.push_str(&c);
            true
        });
        // The times a probe or ladder finished are the only values not fixed.
        text.lines()
            .map(|l| {
                let now = [
                    "trunkprobe_options_last_probe_timestamp_seconds{",
                    "trunkprobe_mtu_last_run_timestamp_seconds{",
                ];
                match now.iter().find(|p| l.starts_with(**p)) {
                    Some(_) => {
                        let (series, at) = l.rsplit_once(' ').unwrap();
                        assert!(at.parse::<f64>().unwrap() > 1.7e9, "{l}");
                        format!("{series} NOW\n")
                    }
                    None => format!("{l}\n"),
                }
            })
            .collect()
    }

    #[test]
    fn one_target_renders_to_the_expected_text() {
        let s = Store::new(Some("eu-west"), RttHistogram::Target);
        s.track("id1", 7);
        let l = labels();
        s.record_dns(7, &l, &resolution());
        s.record_probe(7, &l, &answered(3), true);
        s.set_info(7, ["id1", &l.trunk, "custom", "udp", "no", "ip-based"]);
        s.set_findings(7, "id1", &l.trunk, &[("qualify_slow", "warning")]);
        let t = r#"trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west""#;
        let mut want = format!(
            "# HELP trunkprobe_options_up 1 if the target answers OPTIONS healthily, after up/down hysteresis.
# TYPE trunkprobe_options_up gauge
trunkprobe_options_up{{{t}}} 1
# HELP trunkprobe_options_last_status_code SIP status code of the last final response (0 when none).
# TYPE trunkprobe_options_last_status_code gauge
trunkprobe_options_last_status_code{{{t}}} 200
# HELP trunkprobe_options_probes_total OPTIONS probes by outcome (ok, sip_error, timeout, refused, tls_error, dns_error, network_error).
# TYPE trunkprobe_options_probes_total counter
trunkprobe_options_probes_total{{{t},outcome=\"ok\"}} 1
# HELP trunkprobe_options_last_probe_timestamp_seconds Unix time the last probe of the target finished.
# TYPE trunkprobe_options_last_probe_timestamp_seconds gauge
trunkprobe_options_last_probe_timestamp_seconds{{{t}}} NOW
# HELP trunkprobe_options_last_rtt_seconds OPTIONS round-trip time of the target's last answered probe (absent until one).
# TYPE trunkprobe_options_last_rtt_seconds gauge
trunkprobe_options_last_rtt_seconds{{{t}}} 0.003
# HELP trunkprobe_options_rtt_seconds OPTIONS round-trip time, first send to final response.
# TYPE trunkprobe_options_rtt_seconds histogram
"
        );
        for (le, n) in [
            ("0.001", 0),
            ("0.0025", 0),
            ("0.005", 1),
            ("0.01", 1),
            ("0.025", 1),
            ("0.05", 1),
            ("0.1", 1),
            ("0.25", 1),
            ("0.5", 1),
            ("1", 1),
            ("2", 1),
            ("3", 1),
            ("5", 1),
            ("+Inf", 1),
        ] {
            want += &format!("trunkprobe_options_rtt_seconds_bucket{{{t},le=\"{le}\"}} {n}\n");
        }
        let g = r#"trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",location="eu-west""#;
        want += &format!(
            "trunkprobe_options_rtt_seconds_sum{{{t}}} 0.003
trunkprobe_options_rtt_seconds_count{{{t}}} 1
# HELP trunkprobe_dns_lookup_seconds Duration of the gateway's last A/AAAA lookup (0 for an IP literal).
# TYPE trunkprobe_dns_lookup_seconds gauge
trunkprobe_dns_lookup_seconds{{{g}}} 0.002
# HELP trunkprobe_dns_addresses Addresses the gateway resolved to at the last lookup.
# TYPE trunkprobe_dns_addresses gauge
trunkprobe_dns_addresses{{{g}}} 1
# HELP trunkprobe_trunk_info Trunk definition, always 1.
# TYPE trunkprobe_trunk_info gauge
trunkprobe_trunk_info{{trunk_id=\"id1\",trunk=\"Main \\\"A\\\" \\\\ trunk\",provider=\"custom\",transport=\"udp\",media_encryption=\"no\",auth_type=\"ip-based\",location=\"eu-west\"}} 1
# HELP trunkprobe_finding 1 while a finding holds for the trunk (static, or learnt from probing: media, ip_identifiers, MTU).
# TYPE trunkprobe_finding gauge
trunkprobe_finding{{trunk_id=\"id1\",trunk=\"Main \\\"A\\\" \\\\ trunk\",check=\"qualify_slow\",severity=\"warning\",location=\"eu-west\"}} 1
"
        );
        assert_eq!(render(&s), want);
    }

    #[test]
    fn trunk_histogram_and_off() {
        let s = Store::new(None, RttHistogram::Trunk);
        s.track("id1", 1);
        let a = labels();
        let mut b = labels();
        b.target = "192.0.2.2:5060".into();
        s.record_probe(1, &a, &answered(3), true);
        s.record_probe(1, &b, &answered(30), true);
        // Unanswered: the last RTT stays.
        let timeout = outcome::blank_result(None, 5060, Transport::Udp, Outcome::Timeout);
        s.record_probe(1, &b, &timeout, false);
        let text = render(&s);
        let h = r#"trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp"} 2"#;
        assert!(text.contains(h), "{text}");
        assert_eq!(
            text.matches("trunkprobe_options_rtt_seconds_count").count(),
            1
        );
        assert!(
            text.contains(r#"target="192.0.2.2:5060",transport="udp"} 0.03"#),
            "{text}"
        );
        assert!(text.contains(r#"outcome="timeout"} 1"#), "{text}");

        let s = Store::new(None, RttHistogram::Off);
        s.track("id1", 1);
        s.record_probe(1, &a, &answered(3), true);
        let text = render(&s);
        assert!(!text.contains("trunkprobe_options_rtt_seconds"), "{text}");
        assert!(
            text.contains("trunkprobe_options_last_rtt_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn generations_and_removal() {
        let s = Store::new(None, RttHistogram::Target);
        s.track("id1", 1);
        let l = labels();
        s.record_probe(1, &l, &answered(3), true);
        s.forget_target(1, &l);
        assert_eq!(render(&s), "");
        // Records of an old generation, or of a forgotten trunk, are dropped.
        s.track("id1", 2);
        s.record_probe(1, &l, &answered(3), true);
        assert_eq!(render(&s), "");
        s.record_probe(2, &l, &answered(3), true);
        assert!(render(&s).contains("trunkprobe_options_up{"));
        s.forget("id1");
        s.record_probe(2, &l, &answered(3), true);
        s.record_dns(2, &l, &resolution());
        assert_eq!(render(&s), "");
    }

    #[test]
    fn removals_reuse_and_compact_the_slabs() {
        let s = Store::new(None, RttHistogram::Off);
        let l = |t: usize, i: usize| {
            let id = format!("trunk{t}");
            let gw = format!("gw{i}:5060");
            TargetLabels::new(&id, &id, &gw, &format!("192.0.2.{i}:5060"), "udp")
        };
        // 2000 trunks over 1024 stripes: most stripes hold several.
        for t in 0..2000 {
            s.track(&format!("trunk{t}"), 1);
            for i in 0..6 {
                s.record_probe(1, &l(t, i), &answered(3), true);
                s.record_dns(1, &l(t, i), &resolution());
            }
        }
        let mut want = std::collections::BTreeSet::new();
        for t in 0..2000 {
            if t % 3 == 0 {
                s.forget(&format!("trunk{t}"));
                continue;
            }
            for i in 0..6 {
                if i < 4 {
                    s.forget_target(1, &l(t, i));
                } else {
                    // Still counted on after the others' slots were freed.
                    s.record_probe(1, &l(t, i), &answered(3), true);
                    want.insert(format!("trunk{t} 192.0.2.{i}:5060"));
                }
            }
            // Takes a freed slot.
            s.record_probe(1, &l(t, 9), &answered(3), true);
            want.insert(format!("trunk{t} 192.0.2.9:5060"));
        }
        let text = render(&s);
        let mut got = std::collections::BTreeSet::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("trunkprobe_options_probes_total{") else {
                continue;
            };
            let field = |k: &str| {
                rest.split(&format!("{k}=\""))
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            };
            let n = if field("target").ends_with(".9:5060") {
                "1"
            } else {
                "2"
            };
            assert!(line.ends_with(&format!("}} {n}")), "{line}");
            assert!(got.insert(format!("{} {}", field("trunk_id"), field("target"))));
        }
        assert_eq!(got, want);
        // Gateways of forgotten trunks are gone, the others stay.
        assert_eq!(text.matches("trunkprobe_dns_addresses{").count(), 1333 * 6);
        assert!(!text.contains("trunk_id=\"trunk0\""));
    }

    /// A store with most of what the daemon records: egress, TLS, MTU, DNS, info
    /// and findings, a target removed and its slot reused, a trunk forgotten so its
    /// stripe's slabs compact, and records of a stale generation.
    fn scenario(mode: RttHistogram) -> Store {
        let s = Store::new(Some("eu-west"), mode);
        let probe = |l: &TargetLabels, gen, r: &TargetResult, up| s.record_probe(gen, l, r, up);
        let egress = |r: &mut TargetResult, local: &str, received: Option<&str>, rport| {
            r.response = Some(
                crate::sip::message::parse_response(
                    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                )
                .unwrap(),
            );
            r.local = Some(local.parse().unwrap());
            r.received = received.map(|a| a.parse().unwrap());
            r.rport = rport;
        };
        let timeout = outcome::blank_result(None, 5060, Transport::Udp, Outcome::Timeout);

        // id1 (stripe 899): two UDP targets behind one gateway, one TLS target.
        s.track("id1", 1);
        let t1 = labels();
        let mut t2 = labels();
        t2.target = "192.0.2.2:5060".into();
        let t3 = TargetLabels::new(
            "id1",
            &t1.trunk,
            "[2001:db8::1]:5061",
            "[2001:db8::1]:5061",
            "tls",
        );
        let mut t4 = labels();
        t4.target = "192.0.2.4:5060".into();
        let mut r = answered(3);
        egress(&mut r, "10.0.0.5:40000", Some("203.0.113.7"), Some(61000));
        probe(&t1, 1, &r, true);
        probe(&t1, 1, &answered(7), true);
        probe(&t1, 1, &timeout, true);
        probe(&t2, 1, &timeout, false);
        let mut r = answered(40);
        r.tls = Some(crate::transport::TlsObservation {
            version: Some("TLSv1_3".into()),
            cert: Some(crate::transport::CertInfo {
                subject: "CN=gw".into(),
                issuer: "CN=ca".into(),
                san: vec![],
                not_after: 1_893_456_000,
                not_before: 1_700_000_000,
                self_signed: false,
            }),
            identity_via_rfc5922: false,
        });
        egress(&mut r, "10.0.0.5:51234", None, None);
        probe(&t3, 1, &r, true);
        let mut r = answered(1200);
        r.outcome = Outcome::SipError;
        r.status_code = Some(503);
        probe(&t3, 1, &r, false);
        let mut mtu = MtuResult::new("192.0.2.1:5060".parse().unwrap(), vec![], Some(1500), None);
        mtu.largest_answered = Some(1400);
        mtu.invite_bytes = Some(1650);
        s.record_mtu(1, &t1, &mtu);
        let mut res = resolution();
        res.addresses.push("192.0.2.2".parse().unwrap());
        s.record_dns(1, &t1, &res);
        let mut literal = resolution();
        literal.lookup_time = Duration::ZERO;
        s.record_dns(1, &t3, &literal);
        // t4 takes t2's slot.
        s.forget_target(1, &t2);
        probe(&t4, 1, &answered(6000), true);
        s.set_info(1, ["id1", &t1.trunk, "custom", "udp", "no", "ip-based"]);
        let f = [
            ("qualify_slow", "warning"),
            ("a_check", "error"),
            ("qualify_slow", "warning"),
        ];
        s.set_findings(1, "id1", &t1.trunk, &f);

        // xba and xkz share stripe 922; forgetting xkz compacts it.
        let x = |id: &str, i: u32| {
            let gw = format!("gw{i}.{id}.example.net:5060");
            TargetLabels::new(
                id,
                &format!("trunk {id}"),
                &gw,
                &format!("198.51.100.{i}:5060"),
                "udp",
            )
        };
        s.track("xba", 2);
        s.track("xkz", 3);
        for i in 1..4 {
            let mut r = answered(u64::from(i) * 11);
            egress(
                &mut r,
                "198.51.100.200:5060",
                Some("198.51.100.200"),
                Some(5060),
            );
            probe(&x("xba", i), 2, &r, true);
            s.record_dns(2, &x("xba", i), &resolution());
            for j in 0..3 {
                probe(&x("xkz", i * 10 + j), 3, &answered(2), true);
                s.record_dns(3, &x("xkz", i * 10 + j), &resolution());
            }
        }
        s.set_findings(3, "xkz", "trunk xkz", &[("qualify_slow", "warning")]);
        s.forget_target(2, &x("xba", 2));
        s.forget("xkz");
        probe(&x("xba", 9), 2, &answered(1), true);
        s.set_info(
            2,
            ["xba", "trunk xba", "twilio", "udp", "srtp", "credentials"],
        );
        // Stale generations are dropped.
        probe(&x("xba", 5), 1, &answered(1), true);
        s.track("xkz", 4);
        probe(&x("xkz", 1), 3, &answered(1), true);
        s
    }

    /// [`scenario`] rendered with `--rtt-histogram off`: every family but the
    /// histogram. Pinned so a change of the store's layout cannot change a byte.
    const SCENARIO_OFF: &str = r##"# HELP trunkprobe_options_up 1 if the target answers OPTIONS healthily, after up/down hysteresis.
# TYPE trunkprobe_options_up gauge
trunkprobe_options_up{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_up{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_up{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 0
trunkprobe_options_up{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_up{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_up{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} 1
# HELP trunkprobe_options_last_status_code SIP status code of the last final response (0 when none).
# TYPE trunkprobe_options_last_status_code gauge
trunkprobe_options_last_status_code{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 0
trunkprobe_options_last_status_code{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} 200
trunkprobe_options_last_status_code{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 503
trunkprobe_options_last_status_code{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} 200
trunkprobe_options_last_status_code{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} 200
trunkprobe_options_last_status_code{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} 200
# HELP trunkprobe_options_probes_total OPTIONS probes by outcome (ok, sip_error, timeout, refused, tls_error, dns_error, network_error).
# TYPE trunkprobe_options_probes_total counter
trunkprobe_options_probes_total{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",outcome="ok"} 2
trunkprobe_options_probes_total{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",outcome="timeout"} 1
trunkprobe_options_probes_total{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",outcome="ok"} 1
trunkprobe_options_probes_total{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",outcome="ok"} 1
trunkprobe_options_probes_total{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",outcome="sip_error"} 1
trunkprobe_options_probes_total{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",outcome="ok"} 1
trunkprobe_options_probes_total{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",outcome="ok"} 1
trunkprobe_options_probes_total{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",outcome="ok"} 1
# HELP trunkprobe_options_last_probe_timestamp_seconds Unix time the last probe of the target finished.
# TYPE trunkprobe_options_last_probe_timestamp_seconds gauge
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} NOW
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} NOW
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} NOW
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} NOW
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} NOW
trunkprobe_options_last_probe_timestamp_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} NOW
# HELP trunkprobe_options_last_rtt_seconds OPTIONS round-trip time of the target's last answered probe (absent until one).
# TYPE trunkprobe_options_last_rtt_seconds gauge
trunkprobe_options_last_rtt_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 0.007
trunkprobe_options_last_rtt_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} 6.0
trunkprobe_options_last_rtt_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 1.2
trunkprobe_options_last_rtt_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} 0.011
trunkprobe_options_last_rtt_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} 0.033
trunkprobe_options_last_rtt_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} 0.001
# HELP trunkprobe_tls_cert_not_after_timestamp_seconds Unix time the target's TLS leaf certificate expires.
# TYPE trunkprobe_tls_cert_not_after_timestamp_seconds gauge
trunkprobe_tls_cert_not_after_timestamp_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 1893456000.0
# HELP trunkprobe_mtu_largest_answered_bytes Largest OPTIONS of the UDP size ladder the target answered (absent when none).
# TYPE trunkprobe_mtu_largest_answered_bytes gauge
trunkprobe_mtu_largest_answered_bytes{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 1400
# HELP trunkprobe_mtu_path_mtu_bytes Path MTU the kernel learned for the target (IP_MTU after the ladder; absent when unknown).
# TYPE trunkprobe_mtu_path_mtu_bytes gauge
trunkprobe_mtu_path_mtu_bytes{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 1500
# HELP trunkprobe_mtu_invite_estimate_bytes Estimated size of the INVITE Bolna would send on the target's trunk.
# TYPE trunkprobe_mtu_invite_estimate_bytes gauge
trunkprobe_mtu_invite_estimate_bytes{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 1650
# HELP trunkprobe_mtu_last_run_timestamp_seconds Unix time the UDP size ladder last ran against the target.
# TYPE trunkprobe_mtu_last_run_timestamp_seconds gauge
trunkprobe_mtu_last_run_timestamp_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} NOW
# HELP trunkprobe_dns_lookup_seconds Duration of the gateway's last A/AAAA lookup (0 for an IP literal).
# TYPE trunkprobe_dns_lookup_seconds gauge
trunkprobe_dns_lookup_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",location="eu-west"} 0.002
trunkprobe_dns_lookup_seconds{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",location="eu-west"} 0.0
trunkprobe_dns_lookup_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",location="eu-west"} 0.002
trunkprobe_dns_lookup_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw2.xba.example.net:5060",location="eu-west"} 0.002
trunkprobe_dns_lookup_seconds{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",location="eu-west"} 0.002
# HELP trunkprobe_dns_addresses Addresses the gateway resolved to at the last lookup.
# TYPE trunkprobe_dns_addresses gauge
trunkprobe_dns_addresses{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",location="eu-west"} 2
trunkprobe_dns_addresses{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",location="eu-west"} 1
trunkprobe_dns_addresses{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",location="eu-west"} 1
trunkprobe_dns_addresses{trunk_id="xba",trunk="trunk xba",gateway="gw2.xba.example.net:5060",location="eu-west"} 1
trunkprobe_dns_addresses{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",location="eu-west"} 1
# HELP trunkprobe_trunk_info Trunk definition, always 1.
# TYPE trunkprobe_trunk_info gauge
trunkprobe_trunk_info{trunk_id="id1",trunk="Main \"A\" \\ trunk",provider="custom",transport="udp",media_encryption="no",auth_type="ip-based",location="eu-west"} 1
trunkprobe_trunk_info{trunk_id="xba",trunk="trunk xba",provider="twilio",transport="udp",media_encryption="srtp",auth_type="credentials",location="eu-west"} 1
# HELP trunkprobe_finding 1 while a finding holds for the trunk (static, or learnt from probing: media, ip_identifiers, MTU).
# TYPE trunkprobe_finding gauge
trunkprobe_finding{trunk_id="id1",trunk="Main \"A\" \\ trunk",check="a_check",severity="error",location="eu-west"} 1
trunkprobe_finding{trunk_id="id1",trunk="Main \"A\" \\ trunk",check="qualify_slow",severity="warning",location="eu-west"} 1
"##;

    /// The histogram family of [`scenario`] with `--rtt-histogram target`; it comes
    /// before `trunkprobe_dns_lookup_seconds`.
    const SCENARIO_TARGET_RTT: &str = r##"# HELP trunkprobe_options_rtt_seconds OPTIONS round-trip time, first send to final response.
# TYPE trunkprobe_options_rtt_seconds histogram
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.005"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.01"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.025"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.05"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.1"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.25"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="0.5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="1"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="2"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="3"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west",le="+Inf"} 2
trunkprobe_options_rtt_seconds_sum{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 0.01
trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.1:5060",transport="udp",location="eu-west"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.005"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.01"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.05"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.1"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.25"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="0.5"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="1"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="2"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="3"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="5"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west",le="+Inf"} 1
trunkprobe_options_rtt_seconds_sum{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} 6.0
trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="gw.example.com:5060",target="192.0.2.4:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.005"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.01"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.05"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.25"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="0.5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="2"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="3"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west",le="+Inf"} 2
trunkprobe_options_rtt_seconds_sum{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 1.24
trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",gateway="[2001:db8::1]:5061",target="[2001:db8::1]:5061",transport="tls",location="eu-west"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.005"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.01"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.025"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.05"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.25"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="0.5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="2"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="3"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west",le="+Inf"} 1
trunkprobe_options_rtt_seconds_sum{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} 0.011
trunkprobe_options_rtt_seconds_count{trunk_id="xba",trunk="trunk xba",gateway="gw1.xba.example.net:5060",target="198.51.100.1:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.005"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.01"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.05"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.25"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="0.5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="2"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="3"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west",le="+Inf"} 1
trunkprobe_options_rtt_seconds_sum{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} 0.033
trunkprobe_options_rtt_seconds_count{trunk_id="xba",trunk="trunk xba",gateway="gw3.xba.example.net:5060",target="198.51.100.3:5060",transport="udp",location="eu-west"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.001"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.0025"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.005"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.01"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.025"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.05"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.25"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="0.5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="2"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="3"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west",le="+Inf"} 1
trunkprobe_options_rtt_seconds_sum{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} 0.001
trunkprobe_options_rtt_seconds_count{trunk_id="xba",trunk="trunk xba",gateway="gw9.xba.example.net:5060",target="198.51.100.9:5060",transport="udp",location="eu-west"} 1
"##;

    /// The same with `--rtt-histogram trunk`.
    const SCENARIO_TRUNK_RTT: &str = r##"# HELP trunkprobe_options_rtt_seconds OPTIONS round-trip time, first send to final response.
# TYPE trunkprobe_options_rtt_seconds histogram
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.005"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.01"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.025"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.05"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.1"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.25"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="0.5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="1"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="2"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="3"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west",le="+Inf"} 3
trunkprobe_options_rtt_seconds_sum{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west"} 6.01
trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="udp",location="eu-west"} 3
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.001"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.0025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.005"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.01"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.025"} 0
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.05"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.25"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="0.5"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="1"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="2"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="3"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="5"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west",le="+Inf"} 2
trunkprobe_options_rtt_seconds_sum{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west"} 1.24
trunkprobe_options_rtt_seconds_count{trunk_id="id1",trunk="Main \"A\" \\ trunk",transport="tls",location="eu-west"} 2
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.001"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.0025"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.005"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.01"} 1
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.025"} 3
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.05"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.1"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.25"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="0.5"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="1"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="2"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="3"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="5"} 4
trunkprobe_options_rtt_seconds_bucket{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west",le="+Inf"} 4
trunkprobe_options_rtt_seconds_sum{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west"} 0.067
trunkprobe_options_rtt_seconds_count{trunk_id="xba",trunk="trunk xba",transport="udp",location="eu-west"} 4
"##;

    #[test]
    fn the_scenario_renders_to_the_pinned_text_in_every_mode() {
        let dns = "# HELP trunkprobe_dns_lookup_seconds";
        let (head, tail) = SCENARIO_OFF.split_at(SCENARIO_OFF.find(dns).unwrap());
        for (mode, rtt) in [
            (RttHistogram::Off, ""),
            (RttHistogram::Target, SCENARIO_TARGET_RTT),
            (RttHistogram::Trunk, SCENARIO_TRUNK_RTT),
        ] {
            let s = scenario(mode);
            let got = render(&s);
            let want = format!("{head}{rtt}{tail}");
            if got != want {
                let line = got.lines().zip(want.lines()).position(|(g, w)| g != w);
                panic!("{mode:?}: first difference at line {line:?}\n{got}");
            }
            let public = ["203.0.113.7", "198.51.100.200"].map(|a| a.parse().unwrap());
            assert_eq!(s.egress(), (public.to_vec(), Some(true)));
        }
    }

    /// A trunk's prefix is kept once per stripe, counted, dropped with its
    /// last entry, and compacted away: the render is what a store fed only the
    /// surviving series shows (in another order: slots were reused).
    #[test]
    fn prefixes_are_shared_counted_and_compacted() {
        // All in stripe 922.
        let ids = [
            "t1826", "t2207", "t3491", "t4911", "t5996", "t6221", "t7675", "t9439",
        ];
        let l = |id: &str, name: &str, i: u32| {
            let a = format!("192.0.2.{i}:5060");
            TargetLabels::new(id, name, &format!("gw{i}:5060"), &a, "udp")
        };
        let fill = |s: &Store, id: &str, name: &str, from: u32| {
            for i in from..from + 3 {
                s.record_probe(1, &l(id, name, i), &answered(3), true);
                s.record_dns(1, &l(id, name, i), &resolution());
            }
        };
        let s = Store::new(None, RttHistogram::Off);
        let survivors = Store::new(None, RttHistogram::Off);
        for id in ids {
            s.track(id, 1);
            fill(&s, id, &format!("trunk {id}"), 1);
        }
        // One trunk's targets under two names: two prefixes.
        fill(&s, "t1826", "renamed", 7);
        for id in &ids[1..7] {
            s.forget(id);
        }
        for i in 1..4 {
            s.forget_target(1, &l("t1826", "trunk t1826", i));
        }
        fill(&s, "t9439", "trunk t9439", 4);
        {
            let stripe = s.stripe("t9439");
            let prefixes: Vec<&str> = stripe.slabs.prefixes.0.iter().map(|(_, p, _)| p).collect();
            // Nine prefixes; the fifth trunk forgotten compacted them to four
            // (the sixth is dead since), in order. `trunk t1826` stays for its
            // gateways.
            assert_eq!(stripe.slabs.prefixes.0.items.len(), 4);
            assert_eq!(
                prefixes,
                [
                    r#"trunk_id="t1826",trunk="trunk t1826""#,
                    r#"trunk_id="t9439",trunk="trunk t9439""#,
                    r#"trunk_id="t1826",trunk="renamed""#,
                ]
            );
        }
        survivors.track("t1826", 1);
        survivors.track("t9439", 1);
        fill(&survivors, "t1826", "trunk t1826", 1);
        for i in 1..4 {
            survivors.forget_target(1, &l("t1826", "trunk t1826", i));
        }
        fill(&survivors, "t9439", "trunk t9439", 1);
        fill(&survivors, "t1826", "renamed", 7);
        fill(&survivors, "t9439", "trunk t9439", 4);
        let sorted = |s: &Store| {
            let mut lines: Vec<String> = render(s).lines().map(String::from).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&s), sorted(&survivors));
    }

    /// What a target, a gateway and a target's histogram cost, before slab
    /// slack and label text: each is paid 100,000 times. (A target was 88 bytes
    /// until `connections` came: 0.8 MB more at 100,000 targets.)
    #[test]
    fn entries_stay_small() {
        assert_eq!(std::mem::size_of::<Item<Target>>(), 96);
        assert_eq!(std::mem::size_of::<Item<Gateway>>(), 24);
        assert_eq!(std::mem::size_of::<Hist<u32>>(), 64);
        assert_eq!(std::mem::size_of::<Mtu>(), 24);
    }

    #[test]
    fn a_client_going_away_stops_the_render() {
        let s = Store::new(None, RttHistogram::Target);
        for i in 0..3000 {
            let id = format!("trunk{i}");
            s.track(&id, 1);
            let l = TargetLabels::new(&id, &id, "gw:5060", "192.0.2.1:5060", "udp");
            s.record_probe(1, &l, &answered(3), true);
        }
        let mut chunks = 0;
        s.render(&mut |c| {
            assert!(c.len() < 2 * CHUNK);
            chunks += 1;
            false
        });
        assert_eq!(chunks, 1);
    }
}
