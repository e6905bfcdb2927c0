//! From the Kubernetes objects in the speaker's stores to the announce decision's plain inputs. Pure functions.

use crate::controller::service::{Handling, ServiceFilter, ingress_ips};
use ferrolb_announce as announce;
use k8s_openapi::api::core::v1::{
    ConfigMap, Node, NodeStatus, Service, ServiceSpec, ServiceStatus,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// The label an EndpointSlice carries to name its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The pool annotations, newest first.
const POOL_ANNOTATIONS: [&str; 2] = [
    "metallb.io/address-pool",
    "metallb.universe.tf/address-pool",
];

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

/// A Service reduced to what the speaker reads (the stores keep every Service of the cluster, so this is most
/// of the speaker's memory): its annotations (pool, per-Service attributes), type, class, traffic policy and
/// load-balancer ingress.
pub fn strip_service(svc: &mut Service) {
    strip_metadata(&mut svc.metadata);
    svc.metadata.labels = None;
    if let Some(spec) = svc.spec.take() {
        svc.spec = Some(ServiceSpec {
            type_: spec.type_,
            load_balancer_class: spec.load_balancer_class,
            external_traffic_policy: spec.external_traffic_policy,
            ..ServiceSpec::default()
        });
    }
    if let Some(status) = svc.status.take() {
        svc.status = Some(ServiceStatus {
            load_balancer: status.load_balancer,
            conditions: None,
        });
    }
}

/// An EndpointSlice reduced to its Service label and each endpoint's node and conditions.
pub fn strip_slice(slice: &mut EndpointSlice) {
    strip_metadata(&mut slice.metadata);
    slice.metadata.annotations = None;
    if let Some(labels) = slice.metadata.labels.as_mut() {
        labels.retain(|k, _| k == SERVICE_NAME_LABEL);
    }
    slice.ports = None;
    for e in &mut slice.endpoints {
        *e = Endpoint {
            node_name: e.node_name.take(),
            conditions: e.conditions.take(),
            ..Endpoint::default()
        };
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

/// The `namespace/name` of the Service an EndpointSlice belongs to, from its `kubernetes.io/service-name` label.
pub fn slice_service_key(slice: &EndpointSlice) -> Option<String> {
    let service = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(object_key(
        slice.metadata.namespace.as_deref(),
        Some(service),
    ))
}

/// Every endpoint of `slices`, with the EndpointSlice API's defaults for unset conditions.
pub fn endpoints_of<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<announce::Endpoint> {
    slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.as_ref();
            announce::Endpoint::from_conditions(
                e.node_name.clone(),
                c.and_then(|c| c.ready),
                c.and_then(|c| c.serving),
                c.and_then(|c| c.terminating),
            )
        })
        .collect()
}

/// The decision's view of a Service, or `None` when it is not of type `LoadBalancer`.
pub fn service_of<'a>(
    filter: &ServiceFilter,
    svc: &Service,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Option<announce::Service> {
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
        POOL_ANNOTATIONS
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
        requested_pool,
        ours,
        endpoints: endpoints_of(slices),
    })
}

/// The decision's view of every `LoadBalancer` Service in `services`, with the endpoints of its EndpointSlices.
pub fn services_of<S, E>(
    filter: &ServiceFilter,
    services: &[S],
    slices: &[E],
) -> Vec<announce::Service>
where
    S: std::ops::Deref<Target = Service>,
    E: std::ops::Deref<Target = EndpointSlice>,
{
    // Keyed by borrowed (namespace, name): this runs on every recompute, over every slice and Service.
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let Some(name) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
        by_service
            .entry((namespace, name.as_str()))
            .or_default()
            .push(slice);
    }
    services
        .iter()
        .filter_map(|svc| {
            let key = (
                svc.metadata.namespace.as_deref().unwrap_or_default(),
                svc.metadata.name.as_deref().unwrap_or_default(),
            );
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or_default();
            service_of(filter, svc, slices.iter().copied())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeCondition, NodeStatus, ServiceSpec,
        ServiceStatus,
    };
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// node, ready, serving, terminating
    type Conditions<'a> = (&'a str, Option<bool>, Option<bool>, Option<bool>);

    fn slice(service: &str, endpoints: &[Conditions<'_>]) -> EndpointSlice {
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

    fn lb_service(policy: &str, class: Option<&str>) -> Service {
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
    fn a_loadbalancer_service_becomes_decision_input() {
        let s1 = slice(
            "whoami",
            &[
                ("node-1", Some(true), None, None),
                ("node-2", Some(false), Some(true), Some(true)),
            ],
        );
        let s2 = slice("whoami", &[("node-3", None, None, None)]);
        let got = service_of(
            &ServiceFilter::default(),
            &lb_service("Local", None),
            [&s1, &s2],
        )
        .unwrap();
        assert_eq!(got.key, "default/whoami");
        assert_eq!(
            got.ingress_ips,
            vec!["203.0.113.10".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(got.traffic_policy, announce::TrafficPolicy::Local);
        assert_eq!(got.requested_pool.as_deref(), Some("public-pool"));
        assert!(got.ours);
        let flat: Vec<(Option<&str>, bool, bool, bool)> = got
            .endpoints
            .iter()
            .map(|e| (e.node_name.as_deref(), e.ready, e.serving, e.terminating))
            .collect();
        assert_eq!(
            flat,
            vec![
                (Some("node-1"), true, true, false),
                (Some("node-2"), false, true, true),
                (Some("node-3"), true, true, false),
            ]
        );
        assert_eq!(slice_service_key(&s1).as_deref(), Some("default/whoami"));

        let other = slice("other", &[("node-1", Some(true), None, None)]);
        let all = services_of(
            &ServiceFilter::default(),
            &[std::sync::Arc::new(lb_service("Local", None))],
            &[
                std::sync::Arc::new(s1),
                std::sync::Arc::new(other),
                std::sync::Arc::new(s2),
            ],
        );
        assert_eq!(all, vec![got]);
    }

    #[test]
    fn stripped_objects_translate_exactly_as_the_whole_ones() {
        use k8s_openapi::api::core::v1::{ContainerImage, NodeSpec, ServicePort};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};
        let managed = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..ManagedFieldsEntry::default()
        }]);
        let mut svc = lb_service("Local", Some("ferrolb.io/bgp"));
        svc.metadata.managed_fields = managed.clone();
        svc.metadata.labels = Some([("app".to_owned(), "whoami".to_owned())].into());
        if let Some(a) = svc.metadata.annotations.as_mut() {
            a.insert(LAST_APPLIED.into(), "{\"big\": true}".into());
            a.insert("ferrolb.io/bgp-local-pref".into(), "200".into());
        }
        svc.metadata.uid = Some("u-1".into());
        if let Some(spec) = svc.spec.as_mut() {
            spec.ports = Some(vec![ServicePort {
                port: 80,
                ..ServicePort::default()
            }]);
            spec.selector = Some([("app".to_owned(), "whoami".to_owned())].into());
        }
        let mut sl = slice("whoami", &[("node-1", Some(true), Some(true), Some(false))]);
        sl.metadata.managed_fields = managed.clone();
        sl.metadata.owner_references = Some(vec![OwnerReference {
            name: "whoami".into(),
            ..OwnerReference::default()
        }]);
        if let Some(l) = sl.metadata.labels.as_mut() {
            l.insert("endpointslice.kubernetes.io/managed-by".into(), "x".into());
        }
        let filter = ServiceFilter {
            class: "ferrolb.io/bgp".into(),
            ..ServiceFilter::default()
        };
        let whole = service_of(&filter, &svc, [&sl]).unwrap();
        let (mut svc2, mut sl2) = (svc.clone(), sl.clone());
        strip_service(&mut svc2);
        strip_slice(&mut sl2);
        assert_eq!(service_of(&filter, &svc2, [&sl2]).unwrap(), whole);
        assert_eq!(slice_service_key(&sl2).as_deref(), Some("default/whoami"));
        // What is kept for the per-Service attributes and Events; what is dropped.
        let a = svc2.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            a.get("ferrolb.io/bgp-local-pref").map(String::as_str),
            Some("200")
        );
        assert!(!a.contains_key(LAST_APPLIED));
        assert_eq!(svc2.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(svc2.metadata.managed_fields, None);
        assert_eq!(svc2.metadata.labels, None);
        assert_eq!(svc2.spec.as_ref().unwrap().ports, None);
        assert_eq!(sl2.metadata.owner_references, None);
        assert_eq!(sl2.endpoints[0].addresses, Vec::<String>::new());
        assert_eq!(sl2.metadata.labels.as_ref().unwrap().len(), 1);

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
            [],
        )
        .unwrap();
        assert!(!other.ours);
        assert_eq!(other.traffic_policy, announce::TrafficPolicy::Cluster);
        let mut cluster_ip = lb_service("Cluster", None);
        if let Some(spec) = cluster_ip.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
        }
        assert_eq!(service_of(&ServiceFilter::default(), &cluster_ip, []), None);
    }
}
