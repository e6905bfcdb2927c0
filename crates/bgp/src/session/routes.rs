//! The desired routes between the session's handle and its task: whole tables and per-prefix changes
//! wait in a [`RouteInbox`] until the task takes them, and the task folds them into its [`Desired`]
//! table, learning which prefixes changed — the only ones its Adj-RIB-Out then looks at.

use super::{DesiredRoutes, RouteChanges};
use crate::rib_out::{Attributes, IntoShared, intern};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What the handle gave and the task has not taken yet.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// A whole new table, replacing everything before it.
    table: Option<Arc<DesiredRoutes>>,
    /// Changes after `table` (or after the task's table), the last change of a prefix winning.
    changes: RouteChanges,
}

/// The hand-over point: the handle writes, the task takes.
#[derive(Debug, Default)]
pub(super) struct RouteInbox {
    pending: Mutex<Pending>,
    /// Woken on every hand-over.
    pub(super) notify: Notify,
}

impl RouteInbox {
    /// Replaces the desired routes with `table` (pending changes are dropped).
    pub(super) fn replace(&self, table: Arc<DesiredRoutes>) {
        self.with(|p| {
            p.table = Some(table);
            p.changes.clear();
        });
    }

    /// Adds `changes` to those pending.
    pub(super) fn change(&self, changes: RouteChanges) {
        self.with(|p| {
            if p.changes.is_empty() {
                p.changes = changes;
            } else {
                p.changes.extend(changes);
            }
        });
    }

    fn with(&self, f: impl FnOnce(&mut Pending)) {
        // A poisoned lock means a panic while holding it, which the code above cannot do; the
        // pending routes are still consistent, so they are used.
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut pending);
        drop(pending);
        self.notify.notify_one();
    }

    /// Everything pending, leaving nothing.
    pub(super) fn take(&self) -> Pending {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending)
    }
}

/// The routes the task wants the peer to have. Equal attribute sets share one `Arc` (which the
/// Adj-RIB-Out shares in turn), so a route costs one map entry.
#[derive(Debug, Default)]
pub(super) struct Desired {
    routes: BTreeMap<IpNet, Arc<Attributes>>,
    interned: HashSet<Arc<Attributes>>,
    /// Interned sets at the last pruning of unused ones.
    pruned_at: usize,
}

impl Desired {
    /// The table.
    pub(super) fn routes(&self) -> &BTreeMap<IpNet, Arc<Attributes>> {
        &self.routes
    }

    /// Folds `pending` in; returns the prefixes whose route was added, removed or changed.
    pub(super) fn fold(&mut self, pending: Pending) -> BTreeSet<IpNet> {
        let mut changed = BTreeSet::new();
        if let Some(table) = pending.table {
            self.routes.retain(|prefix, _| {
                let keep = table.contains_key(prefix);
                if !keep {
                    changed.insert(*prefix);
                }
                keep
            });
            for (prefix, attrs) in table.iter() {
                self.put(*prefix, Arc::clone(attrs), &mut changed);
            }
        }
        for (prefix, attrs) in &pending.changes {
            self.set(*prefix, attrs.as_ref(), &mut changed);
        }
        if self.interned.len() > (2 * self.pruned_at).max(16) {
            self.interned.retain(|a| Arc::strong_count(a) > 1);
            self.pruned_at = self.interned.len();
        }
        changed
    }

    fn set(&mut self, prefix: IpNet, attrs: Option<&Attributes>, changed: &mut BTreeSet<IpNet>) {
        match attrs {
            None => {
                if self.routes.remove(&prefix).is_some() {
                    changed.insert(prefix);
                }
            }
            Some(attrs) => self.put(prefix, attrs, changed),
        }
    }

    /// Sets `prefix` to `attrs` (owned, borrowed or a table's shared set), kept as the interned set equal to it.
    fn put(&mut self, prefix: IpNet, attrs: impl IntoShared, changed: &mut BTreeSet<IpNet>) {
        if self
            .routes
            .get(&prefix)
            .is_some_and(|a| **a == *attrs.borrow())
        {
            return;
        }
        let shared = intern(&mut self.interned, attrs);
        self.routes.insert(prefix, shared);
        changed.insert(prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn lp(v: u32) -> Attributes {
        Attributes {
            local_pref: Some(v),
            ..Attributes::default()
        }
    }

    fn prefixes(set: &BTreeSet<IpNet>) -> Vec<String> {
        set.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_table_then_changes_fold_into_the_routes_reporting_only_what_differs() {
        let inbox = RouteInbox::default();
        let mut desired = Desired::default();
        // Two equal sets, not shared by the caller: the session shares them.
        let table: DesiredRoutes = [
            (net("203.0.113.1/32"), Arc::new(lp(100))),
            (net("203.0.113.2/32"), Arc::new(lp(100))),
        ]
        .into();
        inbox.replace(Arc::new(table));
        inbox.change([(net("203.0.113.3/32"), Some(lp(200)))].into());
        // The later change of a prefix wins.
        inbox.change(
            [
                (net("203.0.113.3/32"), Some(lp(100))),
                (net("203.0.113.9/32"), None),
            ]
            .into(),
        );
        let changed = desired.fold(inbox.take());
        assert_eq!(
            prefixes(&changed),
            ["203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"]
        );
        assert_eq!(desired.routes().len(), 3);
        // Equal attributes share one Arc.
        let shared: Vec<&Arc<Attributes>> = desired.routes().values().collect();
        assert!(Arc::ptr_eq(shared[0], shared[1]));
        assert!(Arc::ptr_eq(shared[0], shared[2]));
        // Nothing pending: nothing changes.
        assert!(desired.fold(inbox.take()).is_empty());
        // The same attributes again, a withdrawal and a new value: two changes.
        inbox.change(
            [
                (net("203.0.113.1/32"), Some(lp(100))),
                (net("203.0.113.2/32"), None),
                (net("203.0.113.3/32"), Some(lp(300))),
            ]
            .into(),
        );
        assert_eq!(
            prefixes(&desired.fold(inbox.take())),
            ["203.0.113.2/32", "203.0.113.3/32"]
        );
        assert_eq!(*desired.routes()[&net("203.0.113.3/32")], lp(300));
    }

    #[test]
    fn a_new_table_drops_pending_changes_and_removes_what_it_lacks() {
        let inbox = RouteInbox::default();
        let mut desired = Desired::default();
        inbox.change(
            [
                (net("203.0.113.1/32"), Some(lp(100))),
                (net("203.0.113.2/32"), Some(lp(100))),
            ]
            .into(),
        );
        desired.fold(inbox.take());
        inbox.change([(net("203.0.113.7/32"), Some(lp(100)))].into());
        inbox.replace(Arc::new(
            [(net("203.0.113.2/32"), Arc::new(lp(100)))].into(),
        ));
        let changed = desired.fold(inbox.take());
        assert_eq!(prefixes(&changed), ["203.0.113.1/32"]);
        assert_eq!(
            desired
                .routes()
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["203.0.113.2/32"]
        );
    }

    #[test]
    fn unused_attribute_sets_are_pruned() {
        let mut desired = Desired::default();
        let p = net("203.0.113.1/32");
        for v in 0..100 {
            let pending = Pending {
                table: None,
                changes: [(p, Some(lp(v)))].into(),
            };
            desired.fold(pending);
        }
        assert!(desired.interned.len() <= 17, "{}", desired.interned.len());
        assert!(desired.interned.contains(&lp(99)));
    }
}
