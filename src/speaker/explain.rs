//! `ferrolb speaker --explain namespace/name`: reads the API once and prints why this node does or does not
//! announce the Service. [`explain_service`] is the one place an explanation is made, from the views of the
//! Service and its EndpointSlices ([`super::views`]); the speaker's `/explain` endpoint ([`super::explain_http`])
//! uses it too, on its stores.

use super::SpeakerArgs;
use super::translate;
use super::views::{self, NodeNames, ServiceView, SliceView};
use crate::config_source::SourceKind;
use crate::config_source::metallb;
use crate::config_source::state::Candidate;
use anyhow::Context;
use ferrolb_announce::{
    AnnounceConfig, Explanation, decide, explanation, not_known, service_attributes,
};
use ferrolb_config::Config;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::{Api, Client};

/// Reads the configuration once from the configured source (the ConfigMap or the metallb.io objects).
async fn read_config(args: &SpeakerArgs, client: &Client) -> anyhow::Result<Config> {
    let candidate = match args.cluster.config_source {
        SourceKind::Configmap => {
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
            Candidate::from_config_text(Some(text))
        }
        SourceKind::Metallb => {
            let mut snapshots = metallb::start(client, &args.cluster).await?;
            let first = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                snapshots.wait_for(Option::is_some),
            )
            .await
            .context("the metallb.io objects were not all listed within 30 s")?
            .context("the metallb.io watchers stopped")?;
            match first.as_ref() {
                Some(snapshot) => snapshot.candidate.clone(),
                None => Candidate::Missing,
            }
        }
    };
    match candidate {
        Candidate::Valid(config) => Ok(config),
        Candidate::Missing => Err(anyhow::anyhow!(
            "no configuration in {}",
            args.cluster.source_ref()
        )),
        Candidate::Invalid(errors) => Err(anyhow::anyhow!(
            "the configuration in {} is invalid: {}",
            args.cluster.source_ref(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// Prints the explanation for Service `key` on this node.
pub async fn run(args: &SpeakerArgs, key: &str) -> anyhow::Result<()> {
    let (ns, name) = key
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .with_context(|| format!("--explain wants namespace/name, got {key:?}"))?;
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or $KUBECONFIG)")?;
    let config = read_config(args, &client).await?;
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
    let filter = args.cluster.service_filter();
    let names = &mut NodeNames::default();
    let slices: Vec<SliceView> = slices
        .items
        .iter()
        .map(|s| SliceView::new(s, names))
        .collect();
    match explain_service(
        &args.node_name,
        node.as_ref(),
        &config,
        &ServiceView::new(&filter, &svc, names),
        &slices,
    ) {
        Some(e) => print!("{e}"),
        None => println!("{}", not_known(key, &args.node_name)),
    }
    Ok(())
}

/// Why node `node_name` (its object `node`, if known) does or does not announce `svc` under `config`, given
/// the Service's EndpointSlices. `None` when the speaker does not handle it at all (not of type
/// LoadBalancer).
pub fn explain_service<'a>(
    node_name: &str,
    node: Option<&Node>,
    config: &Config,
    svc: &ServiceView,
    slices: impl IntoIterator<Item = &'a SliceView>,
) -> Option<Explanation> {
    let node = translate::node_of(node_name, node);
    let service = views::with_endpoints(svc, slices)?;
    let key = service.key.clone();
    let announce_config = AnnounceConfig::from_config(config, &node);
    let mut decision = decide(&node, std::slice::from_ref(&service), &announce_config);
    // The Service's own accepted attributes, as the running speaker applies them.
    let accepted = service_attributes::accepted_service_attributes(
        &decision,
        &announce_config,
        &config.bgp_communities,
        [(key.clone(), &svc.attribute_annotations)],
    );
    service_attributes::apply_service_attributes(&mut decision, &accepted);
    explanation(&decision, &key)
}
