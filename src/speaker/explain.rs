//! `ferrolb speaker --explain namespace/name`: reads the API once and prints why this node does or does not
//! announce the Service.

use super::SpeakerArgs;
use super::translate;
use crate::controller::service::ServiceFilter;
use anyhow::Context;
use ferrolb_announce::{AnnounceConfig, decide};
use ferrolb_config::Config;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};

/// Prints the explanation for Service `key` on this node.
pub async fn run(args: &SpeakerArgs, key: &str) -> anyhow::Result<()> {
    let (ns, name) = key
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .with_context(|| format!("--explain wants namespace/name, got {key:?}"))?;
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or $KUBECONFIG)")?;
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &args.cluster.config_namespace)
        .get_opt(&args.cluster.config_name)
        .await
        .context("cannot read the configuration ConfigMap")?
        .with_context(|| format!("ConfigMap {} not found", args.cluster.config_ref()))?;
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("config"))
        .context("the ConfigMap has no `config` key")?;
    let config = Config::from_yaml(text)
        .map_err(|e| anyhow::anyhow!("the configuration is invalid: {e}"))?;
    let node = Api::<Node>::all(client.clone())
        .get_opt(&args.node_name)
        .await
        .context("cannot read this node")?;
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .context("cannot read the Service")?
        .with_context(|| format!("Service {key} not found"))?;
    let slices = Api::<EndpointSlice>::namespaced(client, ns)
        .list(&ListParams::default().labels(&format!("{}={name}", translate::SERVICE_NAME_LABEL)))
        .await
        .context("cannot list the Service's EndpointSlices")?;
    let filter = ServiceFilter {
        default_class: !args.cluster.no_default_class,
        ..ServiceFilter::default()
    };
    let node = translate::node_of(&args.node_name, node.as_ref());
    let services: Vec<_> = translate::service_of(&filter, &svc, slices.items.iter())
        .into_iter()
        .collect();
    let decision = decide(
        &node,
        &services,
        &AnnounceConfig::from_config(&config, &node),
    );
    print!("{}", ferrolb_announce::explain(&decision, key));
    Ok(())
}
