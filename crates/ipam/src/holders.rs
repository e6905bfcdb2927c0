//! The Services holding one address.

use crate::fast_hash::HashedKey;
use crate::request::ServiceKey;

/// The Services holding one address, sorted by key. One holder, the common case, needs no allocation.
#[derive(Debug, Clone)]
pub(crate) enum Holders {
    /// Exactly one holder.
    One(HashedKey),
    /// Any number of holders (empty once the last one left).
    Many(Vec<HashedKey>),
}

impl Holders {
    /// The holders, sorted.
    pub(crate) fn as_slice(&self) -> &[HashedKey] {
        match self {
            Holders::One(key) => std::slice::from_ref(key),
            Holders::Many(keys) => keys,
        }
    }

    /// The holders, sorted.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, HashedKey> {
        self.as_slice().iter()
    }

    /// Whether nobody holds the address any more.
    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Adds a holder (no-op when present).
    pub(crate) fn insert(&mut self, key: HashedKey) {
        let mut keys = match std::mem::replace(self, Holders::Many(Vec::new())) {
            Holders::One(only) => vec![only],
            Holders::Many(keys) => keys,
        };
        if let Err(at) = keys.binary_search_by(|h| h.as_ref().cmp(key.as_ref())) {
            keys.insert(at, key);
        }
        *self = Holders::Many(keys);
    }

    /// Removes a holder (no-op when absent).
    pub(crate) fn remove(&mut self, key: &ServiceKey) {
        match self {
            Holders::One(only) if only.as_ref() == key => *self = Holders::Many(Vec::new()),
            Holders::One(_) => {}
            Holders::Many(keys) => {
                if let Ok(at) = keys.binary_search_by(|h| h.as_ref().cmp(key)) {
                    keys.remove(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &Holders) -> Vec<String> {
        h.iter().map(|k| k.name.clone()).collect()
    }

    #[test]
    fn holders_stay_sorted_and_unique() {
        let key = |n: &str| ServiceKey::new("ns", n);
        let mut h = Holders::One(HashedKey::new(&key("m")));
        h.insert(HashedKey::new(&key("z")));
        h.insert(HashedKey::new(&key("a")));
        h.insert(HashedKey::new(&key("m")));
        assert_eq!(names(&h), vec!["a", "m", "z"]);
        h.remove(&key("m"));
        h.remove(&key("nobody"));
        assert_eq!(names(&h), vec!["a", "z"]);
        h.remove(&key("a"));
        h.remove(&key("z"));
        assert!(h.is_empty());
        let mut one = Holders::One(HashedKey::new(&key("x")));
        one.remove(&key("y"));
        assert_eq!(names(&one), vec!["x"]);
        one.remove(&key("x"));
        assert!(one.is_empty());
    }
}
