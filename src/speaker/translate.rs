//! From the Kubernetes objects in the speaker's stores to the announce decision's plain inputs. Pure functions.

use crate::service_filter::{Handling, ServiceFilter, ingress_ips};
use ferrolb_announce as announce;
use k8s_openapi::api::core::v1::{ConfigMap, Node, NodeStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The label an EndpointSlice carries to name its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `kubectl apply`'s copy of the whole object, often the largest annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What no reader of the speaker's caches uses, on any object: managed fields, owner references and
/// `kubectl apply`'s copy. Name, namespace, uid and resourceVersion stay (Events refer to them).
fn strip_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.owner_references = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// This node reduced to its labels and conditions (its image list alone can be tens of kilobytes).
pub fn strip_node(node: &mut Node) {
    strip_metadata(&mut node.metadata);
    node.metadata.annotations = None;
    node.spec = None;
    if let Some(status) = node.status.take() {
        node.status = Some(NodeStatus {
            conditions: status.conditions,
            ..NodeStatus::default()
        });
    }
}

/// The configuration ConfigMap without its managed fields and `kubectl apply` copy.
pub fn strip_config_map(cm: &mut ConfigMap) {
    strip_metadata(&mut cm.metadata);
}

/// This node as the decision sees it: name, labels, and whether `NetworkUnavailable` is `True`.
pub fn node_of(name: &str, node: Option<&Node>) -> announce::Node {
    let labels = node
        .and_then(|n| n.metadata.labels.clone())
        .map(|l| l.into_iter().collect::<BTreeMap<_, _>>())
        .unwrap_or_default();
    let network_unavailable = node
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
        });
    announce::Node {
        name: name.to_owned(),
        labels,
        network_unavailable,
    }
}

/// The `namespace/name` key of a namespaced object.
pub fn object_key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

/// The decision's view of a Service without its endpoints (the EndpointSlices add them, see
/// [`super::views::with_endpoints`]), or `None` when it is not of type `LoadBalancer`.
pub fn service_of(filter: &ServiceFilter, svc: &Service) -> Option<announce::Service> {
    let ours = match filter.handling(svc) {
        Handling::Ours => true,
        Handling::OtherClass => false,
        Handling::NotLoadBalancer => return None,
    };
    let traffic_policy = match svc
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
    {
        Some("Local") => announce::TrafficPolicy::Local,
        _ => announce::TrafficPolicy::Cluster,
    };
    let requested_pool = svc.metadata.annotations.as_ref().and_then(|a| {
        ferrolb_ipam::annotations::ADDRESS_POOL
            .iter()
            .find_map(|k| a.get(*k))
            .map(|p| p.trim().to_owned())
    });
    Some(announce::Service {
        key: object_key(
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ),
        ingress_ips: ingress_ips(svc),
        traffic_policy,
        // From the API's sorted map, so sorted, and allocated to the exact length.
        labels: svc
            .metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        requested_pool,
        ours,
        endpoints: Vec::new(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeCondition, NodeStatus, ServiceSpec,
        ServiceStatus,
    };
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// node, ready, serving, terminating
    pub(crate) type Conditions<'a> = (&'a str, Option<bool>, Option<bool>, Option<bool>);

    pub(crate) fn slice(service: &str, endpoints: &[Conditions<'_>]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(format!("{service}-abcde")),
                labels: Some([(SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: endpoints
                .iter()
                .map(|(node, ready, serving, terminating)| Endpoint {
                    addresses: vec!["198.19.1.5".into()],
                    node_name: Some((*node).to_owned()),
                    conditions: Some(EndpointConditions {
                        ready: *ready,
                        serving: *serving,
                        terminating: *terminating,
                    }),
                    ..Endpoint::default()
                })
                .collect(),
            ports: None,
        }
    }

    pub(crate) fn lb_service(policy: &str, class: Option<&str>) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some("whoami".into()),
                annotations: Some(
                    [(
                        "metallb.universe.tf/address-pool".to_owned(),
                        "public-pool".to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                external_traffic_policy: Some(policy.into()),
                load_balancer_class: class.map(str::to_owned),
                ..ServiceSpec::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![
                        LoadBalancerIngress {
                            ip: Some("203.0.113.10".into()),
                            ..LoadBalancerIngress::default()
                        },
                        LoadBalancerIngress {
                            hostname: Some("no-ip.example".into()),
                            ..LoadBalancerIngress::default()
                        },
                    ]),
                }),
                ..ServiceStatus::default()
            }),
        }
    }

    #[test]
    fn node_labels_and_network_unavailable_are_read() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("node-1".into()),
                labels: Some([("rack".to_owned(), "r1".to_owned())].into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![
                    NodeCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..NodeCondition::default()
                    },
                    NodeCondition {
                        type_: "NetworkUnavailable".into(),
                        status: "True".into(),
                        ..NodeCondition::default()
                    },
                ]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        let got = node_of("node-1", Some(&node));
        assert_eq!(got.labels.get("rack").map(String::as_str), Some("r1"));
        assert!(got.network_unavailable);
        let unknown = node_of("node-9", None);
        assert_eq!(unknown.name, "node-9");
        assert!(unknown.labels.is_empty());
        assert!(!unknown.network_unavailable);
    }

    #[test]
    fn a_stripped_node_translates_exactly_as_the_whole_one() {
        use k8s_openapi::api::core::v1::{ContainerImage, NodeSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let managed = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..ManagedFieldsEntry::default()
        }]);
        let mut node = Node {
            metadata: ObjectMeta {
                name: Some("node-1".into()),
                labels: Some([("rack".to_owned(), "r1".to_owned())].into()),
                managed_fields: managed,
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some("198.19.0.0/24".into()),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "NetworkUnavailable".into(),
                    status: "True".into(),
                    ..NodeCondition::default()
                }]),
                images: Some(vec![ContainerImage {
                    names: Some(vec!["registry.example/whoami:1".into()]),
                    size_bytes: Some(1),
                }]),
                ..NodeStatus::default()
            }),
        };
        let whole = node_of("node-1", Some(&node));
        strip_node(&mut node);
        assert_eq!(node_of("node-1", Some(&node)), whole);
        assert!(whole.network_unavailable);
        assert_eq!(node.status.as_ref().unwrap().images, None);
        assert_eq!(node.spec, None);
    }

    #[test]
    fn other_classes_are_kept_as_not_ours_and_other_types_dropped() {
        let other = service_of(
            &ServiceFilter::default(),
            &lb_service("Cluster", Some("other.io/lb")),
        )
        .unwrap();
        assert!(!other.ours);
        assert_eq!(other.traffic_policy, announce::TrafficPolicy::Cluster);
        let mut cluster_ip = lb_service("Cluster", None);
        if let Some(spec) = cluster_ip.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
        }
        assert_eq!(service_of(&ServiceFilter::default(), &cluster_ip), None);
    }

    #[test]
    fn every_name_of_the_pool_annotation_is_read_as_the_controller_reads_it() {
        for name in [
            "ferrolb.io/address-pool",
            "metallb.io/address-pool",
            "metallb.universe.tf/address-pool",
        ] {
            let mut svc = lb_service("Cluster", None);
            svc.metadata.annotations = Some([(name.to_owned(), " gold ".to_owned())].into());
            let got = service_of(&ServiceFilter::default(), &svc).unwrap();
            assert_eq!(got.requested_pool.as_deref(), Some("gold"), "{name}");
        }
        let mut none = lb_service("Cluster", None);
        none.metadata.annotations = None;
        let got = service_of(&ServiceFilter::default(), &none).unwrap();
        assert_eq!(got.requested_pool, None);
    }
}
