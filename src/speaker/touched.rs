//! Which Services a batch of watch events touches, so that the speaker decides only those again.
//!
//! The reflectors record the key of every object an event concerns ([`Touched`]). A Service event touches that
//! Service; an EndpointSlice event touches the Service the slice belonged to and the one it belongs to now (the
//! [`SliceIndex`] remembers the former, since a deleted slice is no longer in its store); a re-list of any watch
//! needs the full recompute. An event about this Node or the configuration touches no Service by itself: the
//! caller compares the node's labels and conditions and the configuration in force with those of the decision,
//! and recomputes fully when they differ (a Node's status heartbeats change neither, and cost nothing).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// `(namespace, name)` of an object.
pub type Key = (String, String);

/// A labelled slice's name and its Service's name, as the slice's view holds them (shared).
pub type Shared = (Arc<str>, Arc<str>);

/// The kinds of object the speaker watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Services.
    Service,
    /// EndpointSlices.
    EndpointSlice,
    /// This node's Node object.
    Node,
    /// The configuration (ConfigMap or metallb.io objects).
    Config,
}

impl Kind {
    /// The name of its watch (in logs and in the watch-list metric).
    pub fn watch_name(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Node => "node",
            Kind::Config => "configmap",
        }
    }
}

/// What the watch events since the last decision concern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Services added, changed or deleted.
    pub services: BTreeSet<Key>,
    /// EndpointSlices added, changed or deleted.
    pub slices: BTreeSet<Key>,
    /// Whether the full recompute is needed (a re-list).
    pub full: bool,
}

impl Touched {
    /// Records an event about the object `key` of `kind`.
    pub fn object(&mut self, kind: Kind, key: Key) {
        match kind {
            Kind::Service => {
                self.services.insert(key);
            }
            Kind::EndpointSlice => {
                self.slices.insert(key);
            }
            Kind::Node | Kind::Config => {}
        }
    }

    /// Records a re-list of a watch: its store was replaced whole.
    pub fn relisted(&mut self) {
        self.full = true;
    }
}

/// Which Service each EndpointSlice belongs to, and the slices of each Service, by namespace. Every slice of
/// the cluster has an entry, so names are held once each (shared between both directions) and a Service's
/// slices are a short sorted vector rather than a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceIndex {
    namespaces: HashMap<Box<str>, Namespace>,
}

/// One namespace of a [`SliceIndex`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Namespace {
    /// Each slice's Service.
    service_of: HashMap<Arc<str>, Arc<str>>,
    /// Each Service's slices, sorted.
    slices_of: HashMap<Arc<str>, Vec<Arc<str>>>,
}

impl SliceIndex {
    /// The index of `slices`: each slice's key and the name of its Service (same namespace), if labelled.
    #[cfg(test)]
    pub fn new<'a>(slices: impl IntoIterator<Item = (Key, Option<&'a str>)>) -> Self {
        let mut index = SliceIndex::default();
        for (key, service) in slices {
            index.set(key, service);
        }
        index
    }

    /// The index of `slices`: each slice's key and, if it is labelled, its name and its Service's name as the
    /// slice's view holds them (see [`Self::set_shared`]).
    pub fn new_shared(slices: impl IntoIterator<Item = (Key, Option<Shared>)>) -> Self {
        let mut index = SliceIndex::default();
        for (key, now) in slices {
            index.set_shared(key, now);
        }
        index
    }

    /// [`Self::set_shared`] with names of its own.
    #[cfg(test)]
    pub fn set(&mut self, key: Key, service: Option<&str>) -> Vec<Key> {
        let now = service.map(|s| (Arc::from(key.1.as_str()), Arc::from(s)));
        self.set_shared(key, now)
    }

    /// Records that the slice `key` now belongs to a Service (`now`: the slice's name and the Service's name,
    /// both as the slice's view holds them, so the index keeps no copy of its own), or is gone, or has no
    /// Service label (`None`). Returns the Services touched: the one it belonged to and the one it belongs to
    /// now.
    pub fn set_shared(&mut self, (namespace, name): Key, now: Option<Shared>) -> Vec<Key> {
        let mut touched = Vec::with_capacity(2);
        let ns = match self.namespaces.get_mut(namespace.as_str()) {
            Some(ns) => ns,
            None => self
                .namespaces
                .entry(Box::from(namespace.as_str()))
                .or_default(),
        };
        if let Some((slice, old)) = ns.service_of.remove_entry(name.as_str()) {
            if let Some(slices) = ns.slices_of.get_mut(&old) {
                slices.retain(|s| *s != slice);
                if slices.is_empty() {
                    ns.slices_of.remove(&old);
                }
            }
            touched.push((namespace.clone(), old.to_string()));
        }
        if let Some((slice, service)) = now {
            // One copy of the Service's name per namespace: the one indexed already, else this one.
            let service = match ns.slices_of.get_key_value(&*service) {
                Some((indexed, _)) => indexed.clone(),
                None => service,
            };
            let slices = ns.slices_of.entry(service.clone()).or_default();
            if let Err(at) = slices.binary_search(&slice) {
                slices.insert(at, slice.clone());
            }
            ns.service_of.insert(slice, service.clone());
            let service = (namespace.clone(), service.to_string());
            if !touched.contains(&service) {
                touched.push(service);
            }
        }
        if ns.service_of.is_empty() {
            self.namespaces.remove(namespace.as_str());
        }
        touched
    }

    /// The names of the slices of the Service `(namespace, name)`.
    pub fn slices_of(&self, (namespace, name): &Key) -> impl Iterator<Item = &str> {
        self.namespaces
            .get(namespace.as_str())
            .and_then(|ns| ns.slices_of.get(name.as_str()))
            .into_iter()
            .flatten()
            .map(|s| &**s)
    }
}

/// The Services whose decision must be made again after `touched` (the slices' Services looked up with
/// `service_of_slice`, the store's current label of a slice, `None` when it is gone), updating `index`. `None`:
/// the full recompute.
pub fn services_to_decide(
    touched: Touched,
    index: &mut SliceIndex,
    service_of_slice: impl Fn(&Key) -> Option<Shared>,
) -> Option<BTreeSet<Key>> {
    if touched.full {
        return None;
    }
    let mut services = touched.services;
    for slice in touched.slices {
        let now = service_of_slice(&slice);
        services.extend(index.set_shared(slice, now));
    }
    Some(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> Key {
        (ns.to_owned(), name.to_owned())
    }

    /// What the store says of any slice: labelled for `service`.
    fn labelled(service: &'static str) -> impl Fn(&Key) -> Option<Shared> {
        move |(_, name): &Key| Some((Arc::from(name.as_str()), Arc::from(service)))
    }

    fn index() -> SliceIndex {
        SliceIndex::new([
            (key("a", "web-1"), Some("web")),
            (key("a", "web-2"), Some("web")),
            (key("b", "web-1"), Some("web")),
            (key("a", "orphan"), None),
        ])
    }

    #[test]
    fn a_service_event_touches_that_service_only() {
        let mut t = Touched::default();
        t.object(Kind::Service, key("a", "web"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, |_| panic!("no slice was touched"));
        assert_eq!(got, Some([key("a", "web")].into()));
        assert_eq!(idx, index());
    }

    #[test]
    fn an_endpointslice_event_touches_its_service_in_its_namespace() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("b", "web-1"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, labelled("web"));
        assert_eq!(got, Some([key("b", "web")].into()));
        assert_eq!(idx, index());
    }

    #[test]
    fn a_new_slice_is_indexed_and_touches_its_service() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("a", "db-1"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, labelled("db"));
        assert_eq!(got, Some([key("a", "db")].into()));
        assert_eq!(idx.slices_of(&key("a", "db")).collect::<Vec<_>>(), ["db-1"]);
    }

    #[test]
    fn a_deleted_slice_touches_the_service_it_belonged_to() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("a", "web-2"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, |_| None);
        assert_eq!(got, Some([key("a", "web")].into()));
        assert_eq!(
            idx.slices_of(&key("a", "web")).collect::<Vec<_>>(),
            ["web-1"]
        );
    }

    #[test]
    fn a_slice_moved_to_another_service_touches_both() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("a", "web-1"));
        t.object(Kind::Service, key("c", "x"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, labelled("api"));
        assert_eq!(
            got,
            Some([key("a", "web"), key("a", "api"), key("c", "x")].into())
        );
        assert_eq!(
            idx.slices_of(&key("a", "web")).collect::<Vec<_>>(),
            ["web-2"]
        );
        assert_eq!(
            idx.slices_of(&key("a", "api")).collect::<Vec<_>>(),
            ["web-1"]
        );
    }

    #[test]
    fn a_services_slices_are_listed_sorted_and_an_emptied_index_is_empty() {
        let mut idx = SliceIndex::default();
        for name in ["web-3", "web-1", "web-2", "web-1"] {
            assert_eq!(idx.set(key("a", name), Some("web")), [key("a", "web")]);
        }
        assert_eq!(
            idx.slices_of(&key("a", "web")).collect::<Vec<_>>(),
            ["web-1", "web-2", "web-3"]
        );
        for name in ["web-1", "web-2", "web-3"] {
            assert_eq!(idx.set(key("a", name), None), [key("a", "web")]);
        }
        assert_eq!(idx.set(key("a", "never-seen"), None), []);
        assert_eq!(idx, SliceIndex::default());
    }

    #[test]
    fn the_index_holds_the_views_names_not_copies() {
        let (slice, service): Shared = (Arc::from("web-1"), Arc::from("web"));
        let mut idx = SliceIndex::default();
        idx.set_shared(key("a", "web-1"), Some((slice.clone(), service.clone())));
        // Each name twice in the index (both directions), and once here.
        assert_eq!(Arc::strong_count(&slice), 3);
        assert_eq!(Arc::strong_count(&service), 3);
        // A new view of the slice, with names of its own: the index follows it and lets the old names go.
        let (slice2, service2): Shared = (Arc::from("web-1"), Arc::from("web"));
        let touched = idx.set_shared(key("a", "web-1"), Some((slice2.clone(), service2.clone())));
        assert_eq!(touched, [key("a", "web")]);
        assert_eq!(Arc::strong_count(&slice), 1);
        assert_eq!(Arc::strong_count(&service), 1);
        assert_eq!(Arc::strong_count(&slice2), 3);
        assert_eq!(Arc::strong_count(&service2), 3);
        // A second slice of the same Service shares the name indexed already.
        let (slice3, service3): Shared = (Arc::from("web-2"), Arc::from("web"));
        idx.set_shared(key("a", "web-2"), Some((slice3.clone(), service3.clone())));
        assert_eq!(Arc::strong_count(&service3), 1);
        assert_eq!(Arc::strong_count(&service2), 4);
        assert_eq!(
            idx.slices_of(&key("a", "web")).collect::<Vec<_>>(),
            ["web-1", "web-2"]
        );
    }

    #[test]
    fn an_unlabelled_slice_touches_nothing() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("a", "orphan"));
        let got = services_to_decide(t, &mut index(), |_| None);
        assert_eq!(got, Some(BTreeSet::new()));
    }

    #[test]
    fn node_and_config_events_touch_no_service_and_a_relist_needs_the_full_recompute() {
        for kind in [Kind::Node, Kind::Config] {
            let mut t = Touched::default();
            t.object(Kind::Service, key("a", "web"));
            t.object(kind, key("", "node-1"));
            assert_eq!(
                services_to_decide(t, &mut index(), |_| None),
                Some([key("a", "web")].into())
            );
        }
        for kind in [Kind::Service, Kind::EndpointSlice, Kind::Node, Kind::Config] {
            let mut t = Touched::default();
            t.object(kind, key("a", "web"));
            t.relisted();
            assert_eq!(services_to_decide(t, &mut index(), |_| None), None);
        }
    }
}
