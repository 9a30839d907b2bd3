//! A bounded memo for the shared UDP socket's per-target caches (source
//! address, request template): a miss only costs a rebuild.

/// A bounded memo: at most `2 × capacity` entries, the least recently used
/// generation dropped as a whole. A lookup that hits the older generation moves
/// the entry to the current one, so whatever is used every cycle stays. Cheaper
/// and simpler than an exact LRU for caches where a miss only costs a rebuild.
#[derive(Debug)]
pub struct GenerationalCache<K, V> {
    capacity: usize,
    current: std::collections::HashMap<K, V>,
    previous: std::collections::HashMap<K, V>,
}

impl<K: std::hash::Hash + Eq, V> GenerationalCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        GenerationalCache {
            capacity: capacity.max(1),
            current: Default::default(),
            previous: Default::default(),
        }
    }

    /// The value for `key`; a hit in the older generation moves it to the current one.
    pub fn get(&mut self, key: &K) -> Option<&V>
    where
        K: Clone,
    {
        if !self.current.contains_key(key) {
            let value = self.previous.remove(key)?;
            self.insert(key.clone(), value);
        }
        self.current.get(key)
    }

    /// Adds `key` to the current generation, first retiring it when it is full.
    pub fn insert(&mut self, key: K, value: V) {
        if self.current.len() >= self.capacity && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    /// The value for `key`, made by `make` on a miss.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce(&K) -> V) -> &V {
        if !self.current.contains_key(&key) {
            let value = self.previous.remove(&key).unwrap_or_else(|| make(&key));
            if self.current.len() >= self.capacity {
                self.previous = std::mem::take(&mut self.current);
            }
            return self.current.entry(key).or_insert(value);
        }
        &self.current[&key]
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generational_cache_is_bounded_and_keeps_what_is_used() {
        let mut c = GenerationalCache::new(2);
        let mut made = 0;
        for k in [1, 2, 3, 1, 4, 5, 1] {
            c.get_or_insert_with(k, |k| {
                made += 1;
                k * 10
            });
            assert!(c.len() <= 4);
        }
        // 1 was used in every generation and was built once; 2..5 once each.
        assert_eq!(made, 5);
        assert_eq!(*c.get_or_insert_with(1, |_| 0), 10);
    }

    #[test]
    fn generational_cache_evicts_the_long_unused_and_keeps_a_cycling_working_set() {
        let mut c = GenerationalCache::new(4);
        for n in 0..1000 {
            c.insert(n, n);
            assert!(c.len() <= 8, "{} entries", c.len());
        }
        assert_eq!(c.get(&999), Some(&999));
        assert_eq!(c.get(&0), None, "long unused: evicted");
        // A working set no larger than a generation stays cached as it cycles.
        let mut c = GenerationalCache::new(4);
        for round in 0..10 {
            for n in 0..4 {
                if c.get(&n).is_none() {
                    assert_eq!(round, 0, "{n} missed in round {round}");
                    c.insert(n, n);
                }
            }
        }
        // Used entries survive a rotation: the old generation hands them over.
        let mut c = GenerationalCache::new(2);
        for n in 1..=3 {
            c.insert(n, n);
        }
        assert_eq!(c.get(&1), Some(&1));
        c.insert(4, 4);
        assert_eq!(c.get(&1), Some(&1));
        assert_eq!(c.get(&3), Some(&3));
        assert!(c.len() <= 4);
    }
}
