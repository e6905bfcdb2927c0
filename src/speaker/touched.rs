//! Which Services a batch of watch events touches, so that the speaker decides only those again.
//!
//! The reflectors record the key of every object an event concerns ([`Touched`]). A Service event touches that
//! Service; an EndpointSlice event touches the Service the slice belonged to and the one it belongs to now (the
//! [`SliceIndex`] remembers the former, since a deleted slice is no longer in its store); a re-list of any watch
//! needs the full recompute. An event about this Node or the configuration touches no Service by itself: the
//! caller compares the node's labels and conditions and the configuration in force with those of the decision,
//! and recomputes fully when they differ (a Node's status heartbeats change neither, and cost nothing).

use std::collections::{BTreeMap, BTreeSet};

/// `(namespace, name)` of an object.
pub type Key = (String, String);

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

/// Which Service each EndpointSlice belongs to, and the slices of each Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceIndex {
    service_of: BTreeMap<Key, String>,
    slices_of: BTreeMap<Key, BTreeSet<String>>,
}

impl SliceIndex {
    /// The index of `slices`: each slice's key and the name of its Service (same namespace), if labelled.
    pub fn new<'a>(slices: impl IntoIterator<Item = (Key, Option<&'a str>)>) -> Self {
        let mut index = SliceIndex::default();
        for (key, service) in slices {
            index.set(key, service);
        }
        index
    }

    /// Records that the slice `key` now belongs to `service` (or is gone, or has no Service label). Returns the
    /// Services touched: the one it belonged to and the one it belongs to now.
    pub fn set(&mut self, key: Key, service: Option<&str>) -> Vec<Key> {
        let (namespace, name) = key;
        let mut touched = Vec::with_capacity(2);
        let old = match service {
            Some(s) => self
                .service_of
                .insert((namespace.clone(), name.clone()), s.to_owned()),
            None => self.service_of.remove(&(namespace.clone(), name.clone())),
        };
        if let Some(old) = old {
            let service = (namespace.clone(), old);
            if let Some(set) = self.slices_of.get_mut(&service) {
                set.remove(&name);
                if set.is_empty() {
                    self.slices_of.remove(&service);
                }
            }
            touched.push(service);
        }
        if let Some(s) = service {
            let service = (namespace, s.to_owned());
            self.slices_of
                .entry(service.clone())
                .or_default()
                .insert(name);
            if !touched.contains(&service) {
                touched.push(service);
            }
        }
        touched
    }

    /// The names of the slices of the Service `(namespace, name)`.
    pub fn slices_of(&self, service: &Key) -> impl Iterator<Item = &str> {
        self.slices_of
            .get(service)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// The Services whose decision must be made again after `touched` (the slices' Services looked up with
/// `service_of_slice`, the store's current label of a slice, `None` when it is gone), updating `index`. `None`:
/// the full recompute.
pub fn services_to_decide(
    touched: Touched,
    index: &mut SliceIndex,
    service_of_slice: impl Fn(&Key) -> Option<String>,
) -> Option<BTreeSet<Key>> {
    if touched.full {
        return None;
    }
    let mut services = touched.services;
    for slice in touched.slices {
        let now = service_of_slice(&slice);
        services.extend(index.set(slice, now.as_deref()));
    }
    Some(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str) -> Key {
        (ns.to_owned(), name.to_owned())
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
        let got = services_to_decide(t, &mut idx, |_| Some("web".into()));
        assert_eq!(got, Some([key("b", "web")].into()));
        assert_eq!(idx, index());
    }

    #[test]
    fn a_new_slice_is_indexed_and_touches_its_service() {
        let mut t = Touched::default();
        t.object(Kind::EndpointSlice, key("a", "db-1"));
        let mut idx = index();
        let got = services_to_decide(t, &mut idx, |_| Some("db".into()));
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
        let got = services_to_decide(t, &mut idx, |_| Some("api".into()));
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
