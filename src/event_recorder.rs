//! Publishing Kubernetes Events (`events.k8s.io/v1`) with a small, fixed cost per Event remembered.
//!
//! The semantics are kube's `Recorder`: an Event is keyed by its type, action, reason, reporter, the object it
//! regards and the related object (not by its note), and an Event whose key was published in the last
//! [`SERIES_TTL`] becomes a series: the first Event is patched with `series.count` and
//! `series.lastObservedTime` instead of a new object being created. kube's `Recorder` remembers each Event
//! whole (with a second copy of its references in the key), about 2.5 KB each; at 10,000 Services a speaker
//! kept about 1.5 MB of them. Here the cache keeps a 64-bit hash of the key, the Event's name, its count and
//! when it was last seen (about 100 bytes). When the remembered Event is gone from the API server (Events
//! expire after an hour by default), a new one is created instead.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// How long a published Event is remembered for a series (kube's `Recorder` uses the same).
pub const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// Publishes Events, turning repeats into series (a drop-in for kube's `Recorder::publish`).
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    series: Arc<Mutex<SeriesCache>>,
}

impl EventRecorder {
    /// A recorder that reports as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventRecorder {
            client,
            reporter,
            series: Arc::default(),
        }
    }

    /// Publishes `ev` about `regarding`, in the namespace of `regarding` (`default` for a cluster-scoped
    /// object): a new Event, or the next count of the series its key started within [`SERIES_TTL`].
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = series_key(&self.reporter, ev, regarding);
        let repeat = self.cache().observe(key, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        if let Some(Repeat { name, count }) = repeat {
            let patch = serde_json::json!({
                "series": {"count": count, "lastObservedTime": MicroTime(now)},
            });
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.cache().published(key, &name, count, now);
                    return Ok(());
                }
                // Expired or deleted on the server: start a new Event.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let event = new_event(&self.reporter, ev, regarding, now);
        let name = event.metadata.name.clone().unwrap_or_default();
        events.create(&PostParams::default(), &event).await?;
        self.cache().published(key, &name, 1, now);
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        // The cache holds no invariant a panic could break half-way.
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The series key of `ev` about `regarding` (what kube's `Recorder` keys its cache by), hashed.
pub fn series_key(reporter: &Reporter, ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    matches!(ev.type_, EventType::Warning).hash(&mut h);
    ev.action.hash(&mut h);
    ev.reason.hash(&mut h);
    reporter.controller.hash(&mut h);
    reporter.instance.hash(&mut h);
    hash_reference(regarding, &mut h);
    match &ev.secondary {
        Some(related) => {
            1u8.hash(&mut h);
            hash_reference(related, &mut h);
        }
        None => 0u8.hash(&mut h),
    }
    h.finish()
}

fn hash_reference(r: &ObjectReference, h: &mut DefaultHasher) {
    r.api_version.hash(h);
    r.kind.hash(h);
    r.name.hash(h);
    r.namespace.hash(h);
    r.uid.hash(h);
}

/// The Event object for a first occurrence (the fields kube's `Recorder` sets).
fn new_event(
    reporter: &Reporter,
    ev: &Event,
    regarding: &ObjectReference,
    now: Timestamp,
) -> K8sEvent {
    let instance = reporter
        .instance
        .clone()
        .unwrap_or_else(|| reporter.controller.clone());
    K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: ev.secondary.clone(),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(&reporter.controller),
                now.as_nanosecond()
            )),
            ..ObjectMeta::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(instance),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..K8sEvent::default()
    }
}

/// A repeat of a remembered Event: patch `name` to this `count`.
#[derive(Debug, PartialEq, Eq)]
pub struct Repeat {
    /// The remembered Event's name.
    pub name: String,
    /// The count to write (2 for the first repeat).
    pub count: i32,
}

/// What is remembered of each published Event, by [`series_key`]. Pure: the caller passes the time.
#[derive(Debug, Default)]
pub struct SeriesCache {
    entries: HashMap<u64, Remembered>,
}

#[derive(Debug)]
struct Remembered {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

impl SeriesCache {
    /// Forgets what was last seen [`SERIES_TTL`] or more before `now`, then says whether `key` repeats a
    /// remembered Event.
    pub fn observe(&mut self, key: u64, now: Timestamp) -> Option<Repeat> {
        self.entries.retain(|_, e| e.last + SERIES_TTL > now);
        self.entries.get(&key).map(|e| Repeat {
            name: e.name.to_string(),
            count: e.count.saturating_add(1),
        })
    }

    /// Remembers that the Event `name` of `key` now has `count` occurrences, the last at `now`.
    pub fn published(&mut self, key: u64, name: &str, count: i32, now: Timestamp) {
        self.entries.insert(
            key,
            Remembered {
                name: name.into(),
                count,
                last: now,
            },
        );
    }

    /// How many Events are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("a valid time")
    }

    fn reporter() -> Reporter {
        Reporter {
            controller: "ferrolb-speaker".into(),
            instance: Some("node-1".into()),
        }
    }

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Announce".into(),
            secondary: None,
        }
    }

    fn service(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn the_key_is_kubes_the_note_is_not_part_of_it() {
        let r = reporter();
        let a = service("web", "u1");
        let base = series_key(&r, &event("nodeAnnouncing", "one"), &a);
        assert_eq!(base, series_key(&r, &event("nodeAnnouncing", "two"), &a));
        assert_ne!(base, series_key(&r, &event("nodeWithdrew", "one"), &a));
        // Another object, or the same name with another uid (deleted and created again).
        assert_ne!(
            base,
            series_key(&r, &event("nodeAnnouncing", "one"), &service("db", "u1"))
        );
        assert_ne!(
            base,
            series_key(&r, &event("nodeAnnouncing", "one"), &service("web", "u2"))
        );
        let other_node = Reporter {
            instance: Some("node-2".into()),
            ..reporter()
        };
        assert_ne!(
            base,
            series_key(&other_node, &event("nodeAnnouncing", "one"), &a)
        );
        let mut warning = event("nodeAnnouncing", "one");
        warning.type_ = EventType::Warning;
        assert_ne!(base, series_key(&r, &warning, &a));
        let mut related = event("nodeAnnouncing", "one");
        related.secondary = Some(service("db", "u3"));
        assert_ne!(base, series_key(&r, &related, &a));
    }

    #[test]
    fn a_repeat_within_the_ttl_counts_on_and_an_old_one_starts_again() {
        let mut cache = SeriesCache::default();
        assert_eq!(cache.observe(7, at(0)), None);
        cache.published(7, "web.1a", 1, at(0));
        assert_eq!(
            cache.observe(7, at(100)),
            Some(Repeat {
                name: "web.1a".into(),
                count: 2
            })
        );
        cache.published(7, "web.1a", 2, at(100));
        // Counted from the last occurrence, not the first.
        assert_eq!(
            cache.observe(7, at(100 + 359)),
            Some(Repeat {
                name: "web.1a".into(),
                count: 3
            })
        );
        assert_eq!(cache.observe(7, at(100 + 360)), None);
        assert_eq!(cache.len(), 0, "expired entries are forgotten");
    }

    #[test]
    fn other_keys_are_independent_and_expire_on_their_own() {
        let mut cache = SeriesCache::default();
        cache.published(1, "a.1", 1, at(0));
        cache.published(2, "b.1", 1, at(200));
        assert_eq!(cache.observe(3, at(300)), None);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.observe(1, at(400)), None);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.observe(2, at(400)).map(|r| r.count),
            Some(2),
            "b is still within its TTL"
        );
    }

    #[test]
    fn a_new_event_carries_kubes_fields() {
        let e = new_event(
            &reporter(),
            &event("nodeAnnouncing", "announcing from node-1"),
            &service("web", "u1"),
            at(0),
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("team-a"));
        let name = e.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("web."), "{name}");
        assert_eq!(e.reporting_controller.as_deref(), Some("ferrolb-speaker"));
        assert_eq!(e.reporting_instance.as_deref(), Some("node-1"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.reason.as_deref(), Some("nodeAnnouncing"));
        assert_eq!(e.action.as_deref(), Some("Announce"));
        assert_eq!(e.note.as_deref(), Some("announcing from node-1"));
        assert!(e.series.is_none());
        assert_eq!(e.event_time, Some(MicroTime(at(0))));
    }
}
