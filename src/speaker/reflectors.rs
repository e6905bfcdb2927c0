//! The speaker's watches: one reflector per kind of object, keeping a store of objects reduced to what the
//! speaker reads, and marking every change as pending for the coalescing loop.

use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::Resource;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
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

/// Runs one reflector: keeps `writer`'s store current with objects reduced by `strip` to what the speaker reads,
/// and marks `pending` on every change.
pub fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    strip: fn(&mut K),
    pending: Pending,
    what: &'static str,
) where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, config)
            .default_backoff()
            .modify(strip)
            .reflect(writer)
            .boxed();
        loop {
            match stream.try_next().await {
                Ok(Some(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Ok(Some(_)) => pending.mark(),
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(watch = what, error = %err, "watch failed; keeping the last known state and retrying");
                }
            }
        }
    });
}
