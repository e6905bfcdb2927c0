//! A small, fast, non-cryptographic hasher for the allocator's lookup tables.
//!
//! The tables are keyed by Service keys and addresses; the default SipHash costs more than the rest of an
//! allocation. This is the multiply-rotate hash used by rustc ("FxHash"). It gives no HashDoS protection, which is
//! acceptable here: the keys are Service names and pool addresses of one cluster, whose users can already create
//! Services at will, and the worst case is slower lookups, not a wrong result.

use std::borrow::Borrow;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use crate::request::ServiceKey;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash state.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // The length goes first, so that zero-padding the last word cannot make two inputs alike.
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Multiplication only carries upwards, so inputs differing in high bits (the last octet of an address read
        // little-endian) would share low bits, which pick the bucket. A final avalanche (murmur3's fmix64) fixes that.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Builds [`FxHasher`]s.
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// Something that can find a Service in a table keyed by [`HashedKey`]: its precomputed hash and the key.
pub(crate) trait KeyProbe {
    /// The key's hash, computed once.
    fn probe_hash(&self) -> u64;
    /// The key.
    fn probe_key(&self) -> &ServiceKey;
}

impl Hash for dyn KeyProbe + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.probe_hash());
    }
}

impl PartialEq for dyn KeyProbe + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.probe_hash() == other.probe_hash() && self.probe_key() == other.probe_key()
    }
}

impl Eq for dyn KeyProbe + '_ {}

fn hash_key(key: &ServiceKey) -> u64 {
    FxBuildHasher::default().hash_one(key)
}

/// A shared Service key with its hash computed once, so that growing a table never re-reads the strings.
#[derive(Debug, Clone)]
pub(crate) struct HashedKey {
    hash: u64,
    key: Arc<ServiceKey>,
}

impl HashedKey {
    pub(crate) fn new(key: &ServiceKey) -> HashedKey {
        HashedKey {
            hash: hash_key(key),
            key: Arc::new(key.clone()),
        }
    }
}

impl AsRef<ServiceKey> for HashedKey {
    fn as_ref(&self) -> &ServiceKey {
        &self.key
    }
}

impl std::ops::Deref for HashedKey {
    type Target = ServiceKey;
    fn deref(&self) -> &ServiceKey {
        &self.key
    }
}

impl KeyProbe for HashedKey {
    fn probe_hash(&self) -> u64 {
        self.hash
    }
    fn probe_key(&self) -> &ServiceKey {
        &self.key
    }
}

impl Hash for HashedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for HashedKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl Eq for HashedKey {}

impl<'a> Borrow<dyn KeyProbe + 'a> for HashedKey {
    fn borrow(&self) -> &(dyn KeyProbe + 'a) {
        self
    }
}

/// A borrowed key to look a Service up with.
pub(crate) struct Probe<'a> {
    hash: u64,
    key: &'a ServiceKey,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(key: &'a ServiceKey) -> Probe<'a> {
        Probe {
            hash: hash_key(key),
            key,
        }
    }
}

impl KeyProbe for Probe<'_> {
    fn probe_hash(&self) -> u64 {
        self.hash
    }
    fn probe_key(&self) -> &ServiceKey {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

    #[test]
    fn sequential_addresses_and_similar_names_hash_apart() {
        let build = FxBuildHasher::default();
        let mut seen = HashSet::new();
        for i in 0u128..10_000 {
            let ip = IpAddr::from((0x2001_0db8u128 << 96 | i).to_be_bytes());
            assert!(seen.insert(build.hash_one(ip)), "{ip}");
            let key = ("default", format!("svc-{i}"));
            assert!(
                seen.insert(build.hash_one(&key)),
                "{key:?} {:x}",
                build.hash_one(&key)
            );
        }
    }

    #[test]
    fn a_probe_finds_a_hashed_key() {
        let mut map: std::collections::HashMap<HashedKey, u32, FxBuildHasher> = Default::default();
        let a = ServiceKey::new("ns", "a");
        map.insert(HashedKey::new(&a), 1);
        map.insert(HashedKey::new(&ServiceKey::new("ns", "b")), 2);
        assert_eq!(map.get(&Probe::new(&a) as &dyn KeyProbe), Some(&1));
        assert_eq!(
            map.get(&Probe::new(&ServiceKey::new("ns", "c")) as &dyn KeyProbe),
            None
        );
    }

    #[test]
    fn sequential_addresses_spread_over_low_bits() {
        // A table of 2^16 buckets indexes by the low 16 bits: 4096 consecutive addresses must not pile up.
        let build = FxBuildHasher::default();
        let buckets: HashSet<u64> = (0u128..4096)
            .map(|i| IpAddr::from((0x2001_0db8u128 << 96 | i).to_be_bytes()))
            .map(|ip| build.hash_one(ip) & 0xffff)
            .collect();
        assert!(
            buckets.len() > 3500,
            "only {} distinct buckets",
            buckets.len()
        );
    }
}
