//! The daemons' watches: [`retrying_watch`] opens one with the retry policy both daemons use, and [`WatchLists`] is
//! `ferrolb_k8s_watch_lists_total{watch}`, the complete LISTs of each watch. The first LIST comes at start;
//! each later one is a re-list after the watch broke (API server away, watch expired), so a rise shows that
//! the daemon re-read the cluster's state after an outage.

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of the watch-lists counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// Which watch: `services`, `endpointslices`, `node`, `namespaces`, `configmap`.
    pub watch: &'static str,
}

/// The counter family; clones share the series.
#[derive(Clone, Debug, Default)]
pub struct WatchLists(Family<WatchLabels, Counter>);

impl WatchLists {
    /// A new family registered in `registry` (which adds the `ferrolb_` prefix).
    pub fn registered(registry: &mut Registry) -> WatchLists {
        let lists = WatchLists::default();
        registry.register(
            "k8s_watch_lists",
            "Complete LISTs of each watch: 1 at start, +1 per re-list after the watch broke",
            lists.0.clone(),
        );
        lists
    }

    /// Counts one complete LIST of `watch`.
    pub fn listed(&self, watch: &'static str) {
        self.0.get_or_create(&WatchLabels { watch }).inc();
    }
}

/// Whether a watch error is the API server's 410 Gone ("too old resource version"): the position the watch
/// resumes from is older than the API server's watch cache, as after the API server restarted.
pub fn is_expired(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// The watch of `api` with `config`, retried with kube's default backoff (0.8 s doubling to 30 s, with jitter)
/// on every error except 410 Gone ([`is_expired`]): on that one the watcher has already dropped its position
/// and re-lists at its next poll, so backing off first would only delay the re-list (by 30 to 60 s measured in
/// the lab after the API server was killed for 60 s). client-go's reflector re-lists at once too. `what` names
/// the watch in the log.
pub fn retrying_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
) -> BoxStream<'static, watcher::Result<watcher::Event<K>>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config)
        .filter(move |event| {
            let expired = matches!(event, Err(e) if is_expired(e));
            if expired {
                tracing::info!(watch = what, "watch expired (410 Gone): re-listing at once");
            }
            futures::future::ready(!expired)
        })
        .default_backoff()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_410_gone_counts_as_expired() {
        let status = |code: u16| {
            let mut s = kube::core::Status::failure("too old resource version: 1 (2)", "Expired");
            s.code = code;
            watcher::Error::WatchError(Box::new(s))
        };
        assert!(is_expired(&status(410)));
        assert!(!is_expired(&status(403)));
        assert!(!is_expired(&status(500)));
        assert!(!is_expired(&watcher::Error::NoResourceVersion));
    }

    #[test]
    fn each_watch_counts_its_lists_under_its_name() {
        let mut registry = Registry::with_prefix("ferrolb");
        let lists = WatchLists::registered(&mut registry);
        lists.listed("services");
        lists.listed("services");
        lists.listed("node");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("ferrolb_k8s_watch_lists_total{watch=\"services\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_k8s_watch_lists_total{watch=\"node\"} 1\n"),
            "{text}"
        );
    }
}
