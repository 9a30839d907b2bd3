//! `--shard I/N`: which targets this instance probes, by a stable hash of the
//! target's identity, so N instances split a fleet with no target on two.

use crate::trunk::Transport;

/// `--shard I/N`: this instance probes the targets whose stable hash modulo N is I (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `I/N`, or `auto/N` with I the ordinal that ends `$HOSTNAME` (a
    /// StatefulSet pod `trunkprobe-2` is shard 2).
    pub fn parse(s: &str) -> Result<Shard, String> {
        Shard::parse_with_host(s, std::env::var("HOSTNAME").ok().as_deref())
    }

    /// [`parse`](Self::parse) with the host name given.
    pub fn parse_with_host(s: &str, hostname: Option<&str>) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not I/N with 0 <= I < N (e.g. 0/3), or auto/N");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i = if i.trim() == "auto" {
            let host = hostname.unwrap_or_default();
            let ordinal = host
                .rsplit_once('-')
                .map(|(_, o)| o)
                .filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    format!(
                        "--shard auto/N takes I from a host name ending in -I (a StatefulSet pod \
                         such as trunkprobe-0); HOSTNAME is {:?}",
                        crate::text::printable(host)
                    )
                })?;
            ordinal.to_string()
        } else {
            i.trim().to_string()
        };
        let index: u64 = i.parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard probes the target with this key.
    pub fn owns(&self, key: &str) -> bool {
        stable_hash(key) % self.count == self.index
    }

    /// Trunk-level series (info, findings, counts) come from shard 0 only, so
    /// summing over instances does not count them N times.
    pub fn reports_trunks(&self) -> bool {
        self.index == 0
    }
}

/// FNV-1a 64: the same value on every build and platform (unlike std's hasher).
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The stable identity of a target (trunk, address, transport), hashed for sharding.
pub fn shard_key(trunk_id: &str, addr: &str, transport: Transport) -> String {
    format!("{trunk_id}|{addr}|{}", transport.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_ordinal_of_the_host_name() {
        let auto = |h: Option<&str>| Shard::parse_with_host("auto/3", h);
        assert_eq!(auto(Some("trunkprobe-2")), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(auto(Some("my-prober-0")), Ok(Shard { index: 0, count: 3 }));
        assert!(auto(Some("trunkprobe-3")).is_err(), "ordinal beyond N");
        let err = auto(Some("laptop")).unwrap_err();
        assert!(err.contains("HOSTNAME is \"laptop\""), "{err}");
        assert!(auto(None).is_err());
        assert!(auto(Some("trunkprobe-")).is_err());
        assert_eq!(
            Shard::parse_with_host("1/2", None),
            Ok(Shard { index: 1, count: 2 })
        );
    }

    #[test]
    fn shards_partition_targets_stably() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
        // The hash is pinned: instances of different builds agree.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut counts = [0; 3];
        for n in 0..300 {
            let key = shard_key("t", &format!("10.0.0.{n}:5060"), Transport::Udp);
            let owners: Vec<usize> = (0..3).filter(|i| shards[*i].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "exactly one shard owns {key}");
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }
}
