//! The speaker's stores of Service and EndpointSlice views: what kube's reflector stores do, keyed compactly.
//!
//! kube's [`Store`](kube::runtime::reflector::Store) keys every object by a full `ObjectRef` (kind, name,
//! namespace, resource version and uid: about a hundred bytes and two allocations before the object). A speaker
//! holds every Service and EndpointSlice of the cluster, so this store keys them by namespace — one shared name
//! per namespace — and then by name alone. It keeps the reflector's semantics: a (re-)list fills a buffer that
//! replaces the contents in one step when it is complete, the last contents stay while the API server is away,
//! and the store is ready once the first list is complete.

use kube::runtime::watcher;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;

/// An object the store can key: its namespace and name.
pub trait Keyed {
    /// `metadata.namespace`.
    fn namespace(&self) -> &str;
    /// `metadata.name`.
    fn name(&self) -> &str;
}

/// An object in its namespace's set, hashed and compared by its name alone: the object is its own key, so
/// the name is not held a second time (as a map's key would hold it).
struct ByName<V>(Arc<V>);

impl<V: Keyed> Borrow<str> for ByName<V> {
    fn borrow(&self) -> &str {
        self.0.name()
    }
}

impl<V: Keyed> Hash for ByName<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it (`Borrow`'s contract).
        self.0.name().hash(state);
    }
}

impl<V: Keyed> PartialEq for ByName<V> {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl<V: Keyed> Eq for ByName<V> {}

/// Objects by namespace, then by name; each namespace's name is held once.
type Namespaces<V> = HashMap<Arc<str>, HashSet<ByName<V>>>;

/// Inserts `v` under its namespace and name, replacing the object there.
fn insert<V: Keyed>(map: &mut Namespaces<V>, v: V) {
    let names = match map.get_mut(v.namespace()) {
        Some(names) => names,
        None => map.entry(Arc::from(v.namespace())).or_default(),
    };
    names.replace(ByName(Arc::new(v)));
}

/// Removes the object with `v`'s namespace and name, and the namespace once it holds nothing.
fn remove<V: Keyed>(map: &mut Namespaces<V>, v: &V) {
    if let Some(names) = map.get_mut(v.namespace()) {
        names.remove(v.name());
        if names.is_empty() {
            map.remove(v.namespace());
        }
    }
}

/// A read handle on the store (cheap to clone).
pub struct Store<V> {
    objects: Arc<RwLock<Namespaces<V>>>,
    ready: watch::Receiver<bool>,
}

impl<V> Clone for Store<V> {
    fn clone(&self) -> Self {
        Store {
            objects: self.objects.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<V: Keyed> Store<V> {
    /// The object `namespace/name`, if the store holds it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<V>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.get(namespace)?.get(name).map(|o| o.0.clone())
    }
}

impl<V> Store<V> {
    /// Every object it holds, in no particular order.
    pub fn state(&self) -> Vec<Arc<V>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects
            .values()
            .flat_map(|n| n.iter().map(|o| o.0.clone()))
            .collect()
    }

    /// How many objects it holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.values().map(HashSet::len).sum()
    }

    /// Whether it holds nothing.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first list is complete; an error when the writer is gone before that.
    pub async fn wait_until_ready(&self) -> Result<(), watch::error::RecvError> {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.map(|_| ())
    }
}

/// The writing side, fed the watch's events in order.
pub struct Writer<V> {
    store: Store<V>,
    ready: watch::Sender<bool>,
    /// The (re-)list in progress.
    buffer: Option<Namespaces<V>>,
}

/// A new empty store and its writer.
pub fn store<V>() -> (Store<V>, Writer<V>) {
    let (ready, ready_rx) = watch::channel(false);
    let store = Store {
        objects: Arc::default(),
        ready: ready_rx,
    };
    let writer = Writer {
        store: store.clone(),
        ready,
        buffer: None,
    };
    (store, writer)
}

impl<V: Keyed> Writer<V> {
    /// Applies one watch event: a change goes in at once, a (re-)list replaces everything when it is complete.
    pub fn apply(&mut self, event: watcher::Event<V>) {
        match event {
            watcher::Event::Init => self.buffer = Some(Namespaces::default()),
            watcher::Event::InitApply(v) => insert(self.buffer.get_or_insert_default(), v),
            watcher::Event::InitDone => {
                let listed = self.buffer.take().unwrap_or_default();
                *self.write() = listed;
                self.ready.send_replace(true);
            }
            watcher::Event::Apply(v) => insert(&mut self.write(), v),
            watcher::Event::Delete(v) => remove(&mut self.write(), &v),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Namespaces<V>> {
        self.store
            .objects
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Obj(&'static str, &'static str, u32);

    impl Keyed for Obj {
        fn namespace(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            self.1
        }
    }

    fn sorted(store: &Store<Obj>) -> Vec<Obj> {
        let mut all: Vec<Obj> = store.state().iter().map(|o| (**o).clone()).collect();
        all.sort_by_key(|o| (o.0, o.1));
        all
    }

    #[tokio::test]
    async fn a_list_replaces_the_contents_in_one_step_and_changes_apply_at_once() {
        let (store, mut w) = store::<Obj>();
        w.apply(watcher::Event::Init);
        w.apply(watcher::Event::InitApply(Obj("a", "x", 1)));
        w.apply(watcher::Event::InitApply(Obj("b", "x", 2)));
        // Not visible, and not ready, until the list is complete.
        assert!(store.is_empty());
        assert!(!*store.ready.borrow());
        w.apply(watcher::Event::InitDone);
        store.wait_until_ready().await.unwrap();
        assert_eq!(sorted(&store), vec![Obj("a", "x", 1), Obj("b", "x", 2)]);
        assert_eq!(store.get("b", "x").as_deref(), Some(&Obj("b", "x", 2)));
        assert_eq!(store.get("a", "y"), None);
        assert_eq!(store.get("c", "x"), None);

        w.apply(watcher::Event::Apply(Obj("a", "x", 3)));
        w.apply(watcher::Event::Apply(Obj("a", "y", 4)));
        w.apply(watcher::Event::Delete(Obj("b", "x", 0)));
        assert_eq!(sorted(&store), vec![Obj("a", "x", 3), Obj("a", "y", 4)]);
        // An emptied namespace is dropped.
        assert!(!store.objects.read().unwrap().contains_key("b"));

        // A re-list: the old contents stay until it is complete, then only what it listed is there.
        w.apply(watcher::Event::Init);
        w.apply(watcher::Event::InitApply(Obj("c", "z", 5)));
        assert_eq!(store.len(), 2);
        w.apply(watcher::Event::InitDone);
        assert_eq!(sorted(&store), vec![Obj("c", "z", 5)]);
        // Deleting what is not there changes nothing.
        w.apply(watcher::Event::Delete(Obj("a", "x", 0)));
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn waiting_for_a_store_whose_writer_is_gone_unlisted_fails() {
        let (store, w) = store::<Obj>();
        drop(w);
        assert!(store.wait_until_ready().await.is_err());
    }
}
