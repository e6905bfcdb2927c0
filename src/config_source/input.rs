//! The speaker's view of the configuration source: its store of the ConfigMap, or the newest snapshot of the
//! metallb.io objects, offered to the [`ConfigState`] on every update.

use super::log_outcome;
use super::metallb::Snapshot;
use super::state::{Candidate, ConfigState, Outcome, fingerprint};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::Store;
use std::sync::Arc;
use tokio::sync::watch;

/// Where the speaker reads its configuration input.
pub enum ConfigInput {
    /// The store of our ConfigMap.
    ConfigMap(Store<ConfigMap>),
    /// The newest snapshot of the metallb.io objects.
    Metallb(watch::Receiver<Option<Arc<Snapshot>>>),
}

impl ConfigInput {
    /// Waits until the source has listed once.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        match self {
            ConfigInput::ConfigMap(store) => Ok(store.wait_until_ready().await?),
            ConfigInput::Metallb(rx) => {
                rx.wait_for(Option::is_some).await?;
                Ok(())
            }
        }
    }

    /// Our ConfigMap as last seen (`--config-source configmap`), the object Events about it regard.
    pub fn config_map(&self) -> Option<Arc<ConfigMap>> {
        match self {
            ConfigInput::ConfigMap(store) => store.state().into_iter().next(),
            ConfigInput::Metallb(_) => None,
        }
    }

    /// Offers the newest input to `state`, and logs what it did.
    pub fn offer(&self, state: &mut ConfigState, source: &str) -> Outcome<()> {
        match self {
            ConfigInput::ConfigMap(store) => {
                let cm = store.state().into_iter().next();
                let text = cm
                    .as_ref()
                    .and_then(|cm| cm.data.as_ref())
                    .and_then(|d| d.get("config"))
                    .map(String::as_str);
                let outcome = state.offer(
                    fingerprint(&text),
                    || Candidate::from_config_text(text),
                    |_| Ok(()),
                );
                log_outcome(&outcome, &[], source);
                outcome
            }
            ConfigInput::Metallb(rx) => {
                let Some(snapshot) = rx.borrow().clone() else {
                    return Outcome::Unchanged;
                };
                let outcome = state.offer(
                    snapshot.fingerprint,
                    || snapshot.candidate.clone(),
                    |_| Ok(()),
                );
                log_outcome(&outcome, &snapshot.warnings, source);
                outcome
            }
        }
    }
}
