//! The store's allocator: slabs of entries kept in memory order with their
//! label bytes, dead entries' slots reused and compacted when worth it, and
//! the per-stripe interning of the `trunk_id="…",trunk="…"` label prefixes.

/// The entry of `slab` labelled `prefix + rest`, added when new.
pub(super) fn entry<'a, T: Default>(
    prefixes: &mut Prefixes,
    slab: &'a mut Slab<T>,
    prefix: &str,
    rest: &str,
) -> &'a mut T {
    let found = prefixes.find(prefix).and_then(|p| slab.position(p, rest));
    let i = match found {
        Some(i) => i,
        None => slab.insert(prefixes.acquire(prefix), rest),
    };
    &mut slab.items[i as usize].v
}

/// Removes entry `i` of `slab`, and its prefix once no entry uses it.
pub(super) fn kill<T: Default>(prefixes: &mut Prefixes, slab: &mut Slab<T>, i: u32) {
    if let Some(p) = slab.kill(i) {
        prefixes.release(p);
    }
}

/// The `trunk_id="…",trunk="…"` prefixes of a stripe's label sets (normally
/// one per trunk), each with the number of series using it.
#[derive(Default)]
pub(super) struct Prefixes(pub(super) Slab<u32>);

impl Prefixes {
    /// The index of prefix `key`, if a series uses it.
    pub(super) fn find(&self, key: &str) -> Option<u16> {
        let slab = &self.0;
        let i = (0..slab.items.len() as u32)
            .find(|&i| slab.items[i as usize].live() && slab.label(i) == key)?;
        Some(prefix_index(i))
    }

    /// The indices of the prefixes that start with `head`.
    pub(super) fn starting_with(&self, head: &str) -> Vec<u16> {
        let slab = &self.0;
        (0..slab.items.len() as u32)
            .filter(|&i| slab.items[i as usize].live() && slab.label(i).starts_with(head))
            .map(prefix_index)
            .collect()
    }

    /// The index of prefix `key`, counted as used once more (added when new).
    pub(super) fn acquire(&mut self, key: &str) -> u16 {
        let p = match self.find(key) {
            Some(p) => p,
            None => prefix_index(self.0.insert(0, key)),
        };
        self.0.items[usize::from(p)].v += 1;
        p
    }

    /// Counts prefix `p` used once less; drops it with its last user.
    pub(super) fn release(&mut self, p: u16) {
        let users = &mut self.0.items[usize::from(p)].v;
        *users -= 1;
        if *users == 0 {
            self.0.kill(u32::from(p));
        }
    }

    pub(super) fn label(&self, p: u16) -> &str {
        self.0.label(u32::from(p))
    }
}

pub(super) fn prefix_index(i: u32) -> u16 {
    u16::try_from(i).expect("under 65,536 prefixes in a stripe")
}

/// A trunk-level label set (info, finding, trunk histogram): prefix `prefix`
/// of the stripe's [`Prefixes`] and the rest.
pub(super) struct Prefixed {
    pub(super) prefix: u16,
    pub(super) rest: Box<str>,
}

/// One kind of series of a stripe, kept so a render walks memory in order: the
/// entries (numbers inline) in one `Vec`, their label sets in one `String`.
/// A render makes a pass over every target per family; with a map and a heap
/// string per target, 100,000 targets stopped fitting in cache and each pass
/// cost 2.5 times more per target than at 10,000.
///
/// Removed entries are marked dead and their slots reused; their label bytes
/// stay until they are half of the text, when [`Slab::compact`] drops them.
pub(super) struct Slab<T> {
    pub(super) items: Vec<Item<T>>,
    /// Indices of dead entries.
    pub(super) free: Vec<u32>,
    pub(super) text: String,
    /// Bytes of `text` no live entry uses.
    pub(super) dead: usize,
}

pub(super) struct Item<T> {
    /// The label set is prefix `prefix` of [`Slabs::prefixes`] (unused in that
    /// slab itself) followed by `text[start..start + len]`; `start` is [`DEAD`]
    /// once the entry is removed. Label values are bounded
    /// ([`super::MAX_LABEL`] characters), so a set is far under 64 KiB, and a
    /// stripe holds some hundred trunks, far under 65,536.
    pub(super) start: u32,
    pub(super) len: u16,
    pub(super) prefix: u16,
    pub(super) v: T,
}

/// [`Item::start`] of a removed entry.
pub(super) const DEAD: u32 = u32::MAX;

impl<T> Item<T> {
    pub(super) fn live(&self) -> bool {
        self.start != DEAD
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
            text: String::new(),
            dead: 0,
        }
    }
}

impl<T: Default> Slab<T> {
    pub(super) fn label(&self, i: u32) -> &str {
        let it = &self.items[i as usize];
        &self.text[it.start as usize..][..usize::from(it.len)]
    }

    /// The live entry labelled `prefix` and `key`. A scan of the stripe's
    /// entries (about a hundred), mostly comparing prefix and length.
    pub(super) fn position(&self, prefix: u16, key: &str) -> Option<u32> {
        let i = self.items.iter().position(|it| {
            it.prefix == prefix
                && usize::from(it.len) == key.len()
                && it.live()
                && self.text[it.start as usize..][..key.len()] == *key
        })?;
        Some(i as u32)
    }

    /// Adds an entry labelled `prefix` and `key`; returns its index.
    pub(super) fn insert(&mut self, prefix: u16, key: &str) -> u32 {
        let item = Item {
            start: u32::try_from(self.text.len())
                .ok()
                .filter(|s| *s != DEAD)
                .expect("stripe text under 4 GB"),
            len: u16::try_from(key.len()).expect("label set under 64 KiB"),
            prefix,
            v: T::default(),
        };
        if self.text.capacity() - self.text.len() < key.len() {
            let more = growth(self.text.capacity(), key.len());
            self.text.reserve_exact(more);
        }
        self.text.push_str(key);
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = item;
                i
            }
            None => {
                if self.items.len() == self.items.capacity() {
                    self.items.reserve_exact(growth(self.items.capacity(), 1));
                }
                self.items.push(item);
                (self.items.len() - 1) as u32
            }
        }
    }

    /// Marks entry `i` removed; returns its prefix if it was live.
    pub(super) fn kill(&mut self, i: u32) -> Option<u16> {
        let it = &mut self.items[i as usize];
        if !it.live() {
            return None;
        }
        it.start = DEAD;
        it.v = T::default();
        self.dead += usize::from(it.len);
        self.free.push(i);
        Some(it.prefix)
    }

    pub(super) fn wants_compaction(&self) -> bool {
        self.dead > 0 && self.dead * 2 > self.text.len()
    }

    /// Drops the dead entries and their label bytes, keeping the live ones in
    /// order; returns each old index's new one (`u32::MAX` for the dead).
    pub(super) fn compact(&mut self) -> Vec<u32> {
        let mut text = String::with_capacity(self.text.len() - self.dead);
        let mut map = Vec::with_capacity(self.items.len());
        let mut n = 0;
        for it in &mut self.items {
            if it.live() {
                let start = it.start as usize;
                it.start = text.len() as u32;
                text.push_str(&self.text[start..][..usize::from(it.len)]);
                map.push(n);
                n += 1;
            } else {
                map.push(u32::MAX);
            }
        }
        self.items.retain(Item::live);
        self.items.shrink_to(self.items.len() * 5 / 4);
        self.free.clear();
        self.free.shrink_to_fit();
        self.text = text;
        self.dead = 0;
        map
    }

    /// The live entries in memory order, with their prefix.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u16, &str, &T)> {
        self.items.iter().filter(|it| it.live()).map(|it| {
            let rest = &self.text[it.start as usize..][..usize::from(it.len)];
            (it.prefix, rest, &it.v)
        })
    }

    pub(super) fn live(&self) -> usize {
        self.items.len() - self.free.len()
    }
}

/// How much a full slab `Vec` or `String` of capacity `cap` that needs `n`
/// more grows by: a quarter rather than doubling (still amortized O(1)). A
/// stripe holds about 100 targets, and doubling left 25 to 50 % of its slabs
/// unused.
pub(super) fn growth(cap: usize, n: usize) -> usize {
    (cap / 4).max(n).max(4)
}
