//! The speaker's watches: one per kind of object, keeping a store of what the speaker reads of each object (a
//! compact view in [`super::store`], or the object stripped in a kube reflector store), and marking every change as pending for the coalescing loop.

use crate::watch::{WatchLists, retrying_watch};
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::Resource;
use kube::runtime::reflector::{self, Lookup};

use super::store::{self, Keyed};
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::touched::{Key, Kind, Touched};

/// Watch events that arrived and are not yet reflected in a decision: when the first of them arrived, and what
/// they concern.
#[derive(Clone, Default)]
pub struct Pending {
    first: Arc<Mutex<(Option<Instant>, Touched)>>,
    /// Woken on every change.
    pub notify: Arc<Notify>,
}

impl Pending {
    /// Records a change to the object `key` of `kind`, or a re-list when `key` is `None` (the first change since
    /// the last [`Pending::take`] sets the time).
    pub fn mark(&self, kind: Kind, key: Option<Key>) {
        if let Ok(mut pending) = self.first.lock() {
            pending.0.get_or_insert_with(Instant::now);
            match key {
                Some(key) => pending.1.object(kind, key),
                None => pending.1.relisted(),
            }
        }
        self.notify.notify_one();
    }

    /// When the oldest change not yet taken arrived, and what the changes concern. When the lock is poisoned
    /// (a panic elsewhere), a full recompute.
    pub fn take(&self) -> (Option<Instant>, Touched) {
        match self.first.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => (
                Some(Instant::now()),
                Touched {
                    full: true,
                    ..Touched::default()
                },
            ),
        }
    }
}

/// When to decide on the events that arrived: at once after a quiet spell, and under sustained load at
/// growing intervals (doubling from `quiet` up to `max`), so that one decision — and one UPDATE, packed with
/// every prefix of the same attributes — carries the changes of many events. A spell without events as long as
/// the interval reached brings it back to "at once".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalescer {
    quiet: Duration,
    max: Duration,
    window: Duration,
}

impl Coalescer {
    /// A coalescer that decides at once on an event arriving at least `quiet` after the last decision, and lets
    /// the interval between decisions under load grow to `max`.
    pub fn new(quiet: Duration, max: Duration) -> Self {
        Coalescer {
            quiet,
            max: max.max(quiet),
            window: Duration::ZERO,
        }
    }

    /// How long to wait, at `now`, before deciding on an event when the last decision ended at `done`.
    pub fn wait(&mut self, done: Instant, now: Instant) -> Duration {
        let since = now.saturating_duration_since(done);
        if since >= self.quiet.max(self.window) {
            self.window = Duration::ZERO;
            return Duration::ZERO;
        }
        self.window = (self.window * 2).max(self.quiet).min(self.max);
        self.window.saturating_sub(since)
    }
}

/// Sleeps until `at`, or forever.
pub async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Where a watch's events go: a store, fed every event in order.
pub trait Sink<V>: Send + 'static {
    /// The `(namespace, name)` of `v`.
    fn key(v: &V) -> Key;
    /// Applies one event to the store.
    fn apply(&mut self, event: watcher::Event<V>);
}

impl<V: Keyed + Send + Sync + 'static> Sink<V> for store::Writer<V> {
    fn key(v: &V) -> Key {
        (v.namespace().to_owned(), v.name().to_owned())
    }

    fn apply(&mut self, event: watcher::Event<V>) {
        store::Writer::apply(self, event);
    }
}

impl<K> Sink<K> for reflector::store::Writer<K>
where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    fn key(v: &K) -> Key {
        (
            v.namespace().unwrap_or_default().into_owned(),
            v.name().unwrap_or_default().into_owned(),
        )
    }

    fn apply(&mut self, event: watcher::Event<K>) {
        self.apply_watcher_event(&event);
    }
}

/// Runs one watch: keeps `sink`'s store current with `convert(object)` for every object the watch sees, and
/// marks `pending` on every change; each complete LIST (at start, and every re-list) is counted in `lists`.
/// Each object is converted as it arrives and then dropped, so a store never holds more of an object than
/// `convert` keeps.
pub fn spawn_reflector<K, V, S: Sink<V>>(
    api: Api<K>,
    config: watcher::Config,
    mut sink: S,
    mut convert: impl FnMut(K) -> V + Send + 'static,
    pending: Pending,
    kind: Kind,
    lists: WatchLists,
) where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    V: Send + 'static,
{
    let what = kind.watch_name();
    tokio::spawn(async move {
        let mut events = retrying_watch(api, config, what)
            .map_ok(move |event| map_event(event, &mut convert))
            .boxed();
        loop {
            let event = match events.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(watch = what, error = %err, "watch failed; keeping the last known state and retrying");
                    continue;
                }
            };
            let changed = match &event {
                watcher::Event::Apply(v) | watcher::Event::Delete(v) => Some(Some(S::key(v))),
                watcher::Event::InitDone => Some(None),
                watcher::Event::Init | watcher::Event::InitApply(_) => None,
            };
            sink.apply(event);
            match changed {
                Some(Some(key)) => pending.mark(kind, Some(key)),
                Some(None) => {
                    tracing::info!(watch = what, "listed");
                    lists.listed(what);
                    pending.mark(kind, None);
                }
                None => {}
            }
        }
    });
}

/// `event` with its object converted by `convert`.
fn map_event<K, V>(
    event: watcher::Event<K>,
    convert: &mut impl FnMut(K) -> V,
) -> watcher::Event<V> {
    match event {
        watcher::Event::Apply(k) => watcher::Event::Apply(convert(k)),
        watcher::Event::Delete(k) => watcher::Event::Delete(convert(k)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(k) => watcher::Event::InitApply(convert(k)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// `strip` as a conversion: the object itself, reduced in place (for the single Node and ConfigMap).
pub fn stripped<K>(strip: fn(&mut K)) -> impl FnMut(K) -> K + Send + 'static
where
    K: 'static,
{
    move |mut k| {
        strip(&mut k);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_after_a_quiet_spell_goes_at_once_and_sustained_load_waits_ever_longer() {
        let ms = Duration::from_millis;
        let mut c = Coalescer::new(ms(10), ms(80));
        let t = Instant::now();
        // Idle: at once.
        assert_eq!(c.wait(t, t + ms(10)), Duration::ZERO);
        assert_eq!(c.wait(t, t + ms(5000)), Duration::ZERO);
        // Events keep coming 3 ms after each decision: 10, 20, 40, 80, 80 ms between decisions.
        let mut done = t;
        for window in [10, 20, 40, 80, 80] {
            assert_eq!(
                c.wait(done, done + ms(3)),
                ms(window - 3),
                "window {window}"
            );
            done += ms(window);
        }
        // A gap shorter than the interval reached is still load.
        assert_eq!(c.wait(done, done + ms(50)), ms(30));
        done += ms(80);
        // A quiet spell as long as the interval: at once, and the next burst starts from 10 ms again.
        assert_eq!(c.wait(done, done + ms(80)), Duration::ZERO);
        done += ms(80);
        assert_eq!(c.wait(done, done + ms(1)), ms(9));
        // No window: always at once.
        let mut none = Coalescer::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.wait(t, t), Duration::ZERO);
        assert_eq!(none.wait(t, t), Duration::ZERO);
    }

    #[test]
    fn pending_changes_are_taken_once_with_the_first_arrival() {
        let p = Pending::default();
        assert_eq!(p.take(), (None, Touched::default()));
        p.mark(Kind::Service, Some(("a".into(), "web".into())));
        p.mark(Kind::EndpointSlice, Some(("a".into(), "web-1".into())));
        let (first, touched) = p.take();
        assert!(first.is_some());
        assert_eq!(
            touched,
            Touched {
                services: [("a".to_owned(), "web".to_owned())].into(),
                slices: [("a".to_owned(), "web-1".to_owned())].into(),
                full: false,
            }
        );
        assert_eq!(p.take(), (None, Touched::default()));
        p.mark(Kind::Service, None);
        assert!(p.take().1.full);
    }
}
