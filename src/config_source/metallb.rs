//! The metallb.io objects as a configuration source: one watch per kind in the configuration namespace (as
//! `DynamicObject`s, so objects under MetalLB's own CRD definitions and under ferrolb's both work), the
//! `passwordSecret` Secrets fetched by name (RBAC grants only `get` on Secrets), and one [`Snapshot`] published
//! whenever what they translate to may have changed.

use super::state::{Candidate, fingerprint};
use crate::watch::retrying_watch;
use anyhow::Context;
use ferrolb_config::ConfigError;
use ferrolb_config::metallb::{self, Kind, ObjectId, SecretData, Secrets, Warning};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::ListParams;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, TypeMeta};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client, Resource};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the metallb.io objects currently translate to.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// A fingerprint of the objects' specs and labels and of the Secrets used.
    pub fingerprint: u64,
    /// The configuration they make, or every problem.
    pub candidate: Candidate,
    /// Warnings that do not invalidate the configuration.
    pub warnings: Vec<Warning>,
    /// Each object's reference (with its uid), for Events.
    pub references: BTreeMap<ObjectId, ObjectReference>,
}

/// The `ApiResource` of `kind` (group metallb.io, the version the daemons watch).
pub fn api_resource(kind: Kind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(Kind::GROUP, kind.version(), kind.name());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

/// What to install when the CRDs are missing.
const INSTALL_HINT: &str = "install MetalLB's CRDs (e.g. from its Helm chart or config/crd of a MetalLB release) \
or ferrolb's (`kubectl apply -k manifests/components/metallb-crds`), or run with --config-source configmap";

/// Checks that every kind can be listed in `namespace`; returns the kinds to watch. `L2Advertisement` is
/// optional (it is only warned about); every other kind is required.
pub async fn installed_kinds(client: &Client, namespace: &str) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        let ar = api_resource(kind);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => kinds.push(kind),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if kind == Kind::L2Advertisement {
                    tracing::info!(
                        "no L2Advertisement CRD installed; not watching L2Advertisements"
                    );
                    continue;
                }
                anyhow::bail!(
                    "--config-source metallb: the API server has no {}/{} {} ({}); {INSTALL_HINT}",
                    Kind::GROUP,
                    kind.version(),
                    kind.name(),
                    kind.plural(),
                );
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot list {} in namespace {namespace}", kind.plural())
                });
            }
        }
    }
    Ok(kinds)
}

/// Checks that the CRDs are installed ([`installed_kinds`]) in `--config-namespace`, then starts watching them
/// ([`spawn`]) with `--secret-refresh`: what each daemon and `--explain` do for `--config-source metallb`.
pub async fn start(
    client: &Client,
    cluster: &crate::cluster_args::ClusterArgs,
) -> anyhow::Result<watch::Receiver<Option<Arc<Snapshot>>>> {
    let namespace = &cluster.config_namespace;
    let kinds = installed_kinds(client, namespace).await?;
    Ok(spawn(
        client.clone(),
        namespace.clone(),
        kinds,
        cluster.secret_refresh(),
    ))
}

/// Starts watching `kinds` in `namespace`; the receiver holds the newest [`Snapshot`] (None until every kind
/// has listed once). The Secrets the peers use are fetched again whenever an object changes and every
/// `secret_refresh`.
pub fn spawn(
    client: Client,
    namespace: String,
    kinds: Vec<Kind>,
    secret_refresh: Duration,
) -> watch::Receiver<Option<Arc<Snapshot>>> {
    let (tx, rx) = watch::channel(None);
    let (events_tx, events) = mpsc::channel(1024);
    for &kind in &kinds {
        tokio::spawn(watch_kind(
            client.clone(),
            namespace.clone(),
            kind,
            events_tx.clone(),
        ));
    }
    let secrets = Api::<Secret>::namespaced(client, &namespace);
    tokio::spawn(run(kinds, events, secrets, secret_refresh, tx));
    rx
}

/// One kind's watch, forwarded (objects stripped of their managed fields).
async fn watch_kind(
    client: Client,
    namespace: String,
    kind: Kind,
    tx: mpsc::Sender<(Kind, WatchEvent<DynamicObject>)>,
) {
    let ar = api_resource(kind);
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &ar);
    let mut stream = retrying_watch(api, watcher::Config::default(), "metallb.io");
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => {
                let event = event.modify(|obj| {
                    obj.metadata.managed_fields = None;
                    if obj.types.is_none() {
                        obj.types = Some(TypeMeta {
                            api_version: ar.api_version.clone(),
                            kind: ar.kind.clone(),
                        });
                    }
                });
                if tx.send((kind, event)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(kind = kind.name(), error = %err, "metallb.io watch failed; keeping the last known objects and retrying");
            }
        }
    }
}

/// The objects seen, per kind and name.
#[derive(Default)]
struct Objects {
    by_kind: BTreeMap<Kind, BTreeMap<String, DynamicObject>>,
    /// Objects of a (re-)list in progress.
    listing: BTreeMap<Kind, BTreeMap<String, DynamicObject>>,
    listed: BTreeSet<Kind>,
}

impl Objects {
    /// Applies one watch event; returns whether the objects changed.
    fn apply(&mut self, kind: Kind, event: WatchEvent<DynamicObject>) -> bool {
        let name = |o: &DynamicObject| o.metadata.name.clone().unwrap_or_default();
        match event {
            WatchEvent::Init => {
                self.listing.insert(kind, BTreeMap::new());
                false
            }
            WatchEvent::InitApply(obj) => {
                self.listing
                    .entry(kind)
                    .or_default()
                    .insert(name(&obj), obj);
                false
            }
            WatchEvent::InitDone => {
                let listed = self.listing.remove(&kind).unwrap_or_default();
                self.by_kind.insert(kind, listed);
                self.listed.insert(kind);
                true
            }
            WatchEvent::Apply(obj) => {
                self.by_kind
                    .entry(kind)
                    .or_default()
                    .insert(name(&obj), obj);
                true
            }
            WatchEvent::Delete(obj) => {
                self.by_kind.entry(kind).or_default().remove(&name(&obj));
                true
            }
        }
    }

    fn all(&self) -> impl Iterator<Item = (Kind, &DynamicObject)> {
        self.by_kind
            .iter()
            .flat_map(|(kind, objs)| objs.values().map(move |o| (*kind, o)))
    }
}

/// Reads the objects: the parsed ones, the errors of those that could not be read, their references, and
/// the fingerprint of what matters in them (kind, name, labels, spec).
struct Read {
    objects: Vec<metallb::Object>,
    errors: Vec<ConfigError>,
    references: BTreeMap<ObjectId, ObjectReference>,
    fingerprint: u64,
}

fn read(objects: &Objects) -> Read {
    let mut read = Read {
        objects: Vec::new(),
        errors: Vec::new(),
        references: BTreeMap::new(),
        fingerprint: 0,
    };
    let mut inputs = Vec::new();
    for (kind, obj) in objects.all() {
        let id = ObjectId {
            kind,
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            name: obj.metadata.name.clone().unwrap_or_default(),
        };
        read.references
            .insert(id.clone(), obj.object_ref(&api_resource(kind)));
        inputs.push((
            kind.name(),
            id.name.clone(),
            obj.metadata.labels.clone(),
            obj.data.get("spec").map(ToString::to_string),
        ));
        match serde_json::to_string(obj) {
            Ok(json) => match metallb::parse_object_json(&json) {
                Ok(object) => read.objects.push(object),
                Err(errors) => read.errors.extend(errors),
            },
            Err(err) => tracing::error!(object = %id, error = %err, "cannot serialise the object"),
        }
    }
    read.fingerprint = fingerprint(&inputs);
    read
}

/// The fingerprint part of the Secrets.
fn secrets_fingerprint(secrets: &Secrets) -> Vec<(&str, &str, Option<&str>)> {
    secrets
        .iter()
        .map(|(name, s)| (name.as_str(), s.secret_type.as_str(), s.password.as_deref()))
        .collect()
}

/// A Secret as the translation needs it.
pub fn secret_data(secret: &Secret) -> SecretData {
    SecretData {
        secret_type: secret.type_.clone().unwrap_or_default(),
        password: secret
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .and_then(|b| String::from_utf8(b.0.clone()).ok()),
    }
}

/// Fetches the Secrets named `names`; one that cannot be read keeps its last known value (`known`).
async fn fetch_secrets(api: &Api<Secret>, names: &BTreeSet<String>, known: &Secrets) -> Secrets {
    let mut secrets = Secrets::new();
    for name in names {
        match api.get_opt(name).await {
            Ok(Some(secret)) => {
                secrets.insert(name.clone(), secret_data(&secret));
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(secret = %name, error = %err, "cannot read a passwordSecret; keeping its last known value");
                if let Some(data) = known.get(name) {
                    secrets.insert(name.clone(), data.clone());
                }
            }
        }
    }
    secrets
}

/// Translates `read` with `secrets` into a snapshot.
fn snapshot(read: &Read, secrets: &Secrets) -> (Snapshot, BTreeSet<String>) {
    let translation = metallb::translate(&read.objects, secrets);
    let candidate = if read.objects.is_empty() && read.errors.is_empty() {
        Candidate::Missing
    } else {
        match translation.config {
            Ok(config) if read.errors.is_empty() => Candidate::Valid(config),
            Ok(_) => Candidate::Invalid(read.errors.clone()),
            Err(errors) => Candidate::Invalid(read.errors.iter().cloned().chain(errors).collect()),
        }
    };
    let snapshot = Snapshot {
        fingerprint: fingerprint(&(read.fingerprint, secrets_fingerprint(secrets))),
        candidate,
        warnings: translation.warnings,
        references: read.references.clone(),
    };
    (snapshot, translation.secrets_used)
}

async fn run(
    kinds: Vec<Kind>,
    mut events: mpsc::Receiver<(Kind, WatchEvent<DynamicObject>)>,
    secrets_api: Api<Secret>,
    secret_refresh: Duration,
    tx: watch::Sender<Option<Arc<Snapshot>>>,
) {
    let mut objects = Objects::default();
    let mut secrets = Secrets::new();
    let mut used = BTreeSet::new();
    let mut current: Option<Read> = None;
    let mut refresh = tokio::time::interval(secret_refresh.max(Duration::from_secs(1)));
    loop {
        let objects_changed = tokio::select! {
            event = events.recv() => {
                let Some((kind, event)) = event else { return };
                let mut changed = objects.apply(kind, event);
                while let Ok((kind, event)) = events.try_recv() {
                    changed |= objects.apply(kind, event);
                }
                changed
            }
            _ = refresh.tick() => false,
        };
        if kinds.iter().any(|k| !objects.listed.contains(k)) {
            continue;
        }
        if objects_changed || current.is_none() {
            current = Some(read(&objects));
        }
        let Some(read) = &current else { continue };
        // An object change may name other Secrets: translate once to learn which, then fetch them.
        if objects_changed || tx.borrow().is_none() {
            used = snapshot(read, &secrets).1;
        }
        let fetched = fetch_secrets(&secrets_api, &used, &secrets).await;
        if !objects_changed && fetched == secrets && tx.borrow().is_some() {
            continue;
        }
        secrets = fetched;
        let (snap, now_used) = snapshot(read, &secrets);
        used = now_used;
        let changed = tx
            .borrow()
            .as_ref()
            .is_none_or(|old| old.fingerprint != snap.fingerprint);
        if changed {
            tx.send_replace(Some(Arc::new(snap)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_config::metallb::SecretData;

    fn object(kind: Kind, name: &str, spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": format!("metallb.io/{}", kind.version()),
            "kind": kind.name(),
            "metadata": {"name": name, "namespace": "metallb-system", "uid": format!("uid-{name}"),
                         "resourceVersion": "1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn listed(objs: Vec<(Kind, DynamicObject)>) -> Objects {
        let mut objects = Objects::default();
        for kind in Kind::ALL {
            objects.apply(kind, WatchEvent::Init);
        }
        for (kind, obj) in objs {
            objects.apply(kind, WatchEvent::InitApply(obj));
        }
        for kind in Kind::ALL {
            objects.apply(kind, WatchEvent::InitDone);
        }
        objects
    }

    fn pool(addresses: &[&str]) -> DynamicObject {
        object(
            Kind::IpAddressPool,
            "public",
            serde_json::json!({"addresses": addresses}),
        )
    }

    fn peer() -> DynamicObject {
        object(
            Kind::BgpPeer,
            "router",
            serde_json::json!({"myASN": 64512, "peerASN": 64513, "peerAddress": "198.18.0.1",
                "passwordSecret": {"name": "router-password", "namespace": "metallb-system"}}),
        )
    }

    fn secrets(password: &str) -> Secrets {
        [(
            "router-password".to_owned(),
            SecretData {
                secret_type: "kubernetes.io/basic-auth".into(),
                password: Some(password.into()),
            },
        )]
        .into()
    }

    #[test]
    fn objects_translate_and_the_fingerprint_follows_specs_and_secrets_only() {
        let objects = listed(vec![
            (Kind::IpAddressPool, pool(&["203.0.113.0/28"])),
            (Kind::BgpPeer, peer()),
        ]);
        let (snap, used) = snapshot(&read(&objects), &secrets("a"));
        assert_eq!(used, ["router-password".to_owned()].into());
        let Candidate::Valid(config) = &snap.candidate else {
            panic!("{:?}", snap.candidate);
        };
        assert_eq!(config.peers[0].password.as_deref(), Some("a"));
        let pool_id = ObjectId {
            kind: Kind::IpAddressPool,
            namespace: "metallb-system".into(),
            name: "public".into(),
        };
        assert_eq!(snap.references[&pool_id].uid.as_deref(), Some("uid-public"));

        // A new resourceVersion or status (the controller's own write) is the same input.
        let mut touched = pool(&["203.0.113.0/28"]);
        touched.metadata.resource_version = Some("2".into());
        touched.data["status"] = serde_json::json!({"assignedIPv4": 1});
        let mut again = listed(vec![(Kind::BgpPeer, peer())]);
        again.apply(Kind::IpAddressPool, WatchEvent::Apply(touched));
        assert_eq!(
            snapshot(&read(&again), &secrets("a")).0.fingerprint,
            snap.fingerprint
        );
        // A rotated Secret, or a changed spec, is not.
        assert_ne!(
            snapshot(&read(&again), &secrets("b")).0.fingerprint,
            snap.fingerprint
        );
        again.apply(
            Kind::IpAddressPool,
            WatchEvent::Apply(pool(&["203.0.113.16/28"])),
        );
        assert_ne!(
            snapshot(&read(&again), &secrets("a")).0.fingerprint,
            snap.fingerprint
        );
    }

    #[test]
    fn a_bad_object_is_invalid_and_no_object_is_missing() {
        let objects = listed(vec![(Kind::IpAddressPool, pool(&["203.0.113.300/32"]))]);
        let (snap, _) = snapshot(&read(&objects), &Secrets::new());
        let Candidate::Invalid(errors) = &snap.candidate else {
            panic!("{:?}", snap.candidate);
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "spec.addresses[0]");
        assert_eq!(
            errors[0]
                .object
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("IPAddressPool metallb-system/public")
        );
        let mut objects = objects;
        objects.apply(Kind::IpAddressPool, WatchEvent::Delete(pool(&[])));
        let (snap, _) = snapshot(&read(&objects), &Secrets::new());
        assert!(matches!(snap.candidate, Candidate::Missing));
    }

    #[test]
    fn a_secret_is_read_from_its_data() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth",
            "data": {"password": "czNjcmV0"}
        }))
        .unwrap();
        assert_eq!(
            secret_data(&secret),
            SecretData {
                secret_type: "kubernetes.io/basic-auth".into(),
                password: Some("s3cret".into())
            }
        );
    }
}
