//! The speaker's watches: one reflector per kind of object, keeping a store of what the speaker reads of each
//! object (a compact view, or the object stripped), and marking every change as pending for the coalescing loop.

use crate::watch::{WatchLists, retrying_watch};
use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::Resource;
use kube::runtime::reflector::{self, Lookup};
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// Watch events that arrived and are not yet reflected in a decision: when the first of them arrived.
#[derive(Clone, Default)]
pub struct Pending {
    first: Arc<Mutex<Option<Instant>>>,
    /// Woken on every change.
    pub notify: Arc<Notify>,
}

impl Pending {
    /// Records a change (the first since the last [`Pending::take`] sets the time).
    pub fn mark(&self) {
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert_with(Instant::now);
        }
        self.notify.notify_one();
    }

    /// When the oldest change not yet taken arrived.
    pub fn take(&self) -> Option<Instant> {
        self.first.lock().ok().and_then(|mut f| f.take())
    }
}

/// Sleeps until `at`, or forever.
pub async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs one reflector: keeps `writer`'s store current with `convert(object)` for every object the watch sees,
/// and marks `pending` on every change; each complete LIST (at start, and every re-list) is counted in `lists`. Each object is converted as it arrives and then dropped, so a store
/// never holds more of an object than `convert` keeps.
pub fn spawn_reflector<K, V>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<V>,
    mut convert: impl FnMut(K) -> V + Send + 'static,
    pending: Pending,
    what: &'static str,
    lists: WatchLists,
) where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    V: Lookup + Clone + Send + Sync + 'static,
    V::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    tokio::spawn(async move {
        let events =
            retrying_watch(api, config, what).map_ok(move |event| map_event(event, &mut convert));
        let mut stream = reflector::reflector(writer, events).boxed();
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Ok(Some(watcher::Event::InitDone)) => {
                    tracing::info!(watch = what, "listed");
                    lists.listed(what);
                    pending.mark();
                }
                Ok(Some(_)) => pending.mark(),
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(watch = what, error = %err, "watch failed; keeping the last known state and retrying");
                }
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
