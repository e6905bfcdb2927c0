//! What the controller keeps of each Service: a projection made once, when the object arrives, of what the
//! reconcile reads. The cache holds every Service of the cluster, so it holds no Kubernetes object: of the
//! metadata the generation and version, of the spec whether it is a `LoadBalancer` of which class and the
//! allocation [`Request`] already derived from it, of the annotations only the BGP attribute ones, and of the
//! status the ingress addresses and the conditions (the status patch keeps other writers' conditions). Pure.

use ferrolb_ipam::{Refusal, Request, ServiceKey};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::service::{key_of, request_of, resource_version};
use super::status::IP_MODE;
use crate::service_filter::{Handling, ServiceFilter, attribute_annotations, ingress_ips};

/// A Service as the controller keeps it (its key is the cache's key).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    /// `spec.type` is `LoadBalancer`.
    pub load_balancer: bool,
    /// `spec.loadBalancerClass`.
    pub class: Option<String>,
    /// The allocation request (without its Namespace's labels, which the state adds), or why it is malformed.
    pub request: Result<Request, Refusal>,
    /// The BGP attribute annotations it carries (the others are read only into the request).
    pub attribute_annotations: BTreeMap<String, String>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `metadata.resourceVersion` as a number (etcd revisions), for ordering watch events against our writes.
    pub resource_version: Option<u64>,
    /// What its status says.
    pub status: StoredStatus,
}

/// What a Service's status says, as far as the controller writes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredStatus {
    /// The addresses in `status.loadBalancer.ingress`, in order (entries without a parseable `ip` left out).
    pub ingress: Vec<IpAddr>,
    /// Every ingress entry is an address (none is a hostname only, or unparseable).
    pub only_ips: bool,
    /// Every ingress entry has `ipMode: VIP`.
    pub all_vip: bool,
    /// `status.conditions`, whole and in order.
    pub conditions: Vec<Condition>,
}

impl ServiceView {
    /// The Service's key and what the controller keeps of it.
    pub fn of(svc: &Service) -> (ServiceKey, ServiceView) {
        let spec = svc.spec.as_ref();
        let view = ServiceView {
            load_balancer: spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            class: spec.and_then(|s| s.load_balancer_class.clone()),
            request: request_of(svc),
            attribute_annotations: attribute_annotations(svc),
            generation: svc.metadata.generation,
            resource_version: resource_version(svc),
            status: StoredStatus::of(svc),
        };
        (key_of(svc), view)
    }

    /// How ferrolb treats the Service under `filter`.
    pub fn handling(&self, filter: &ServiceFilter) -> Handling {
        filter.handling_of(self.load_balancer, self.class.as_deref())
    }

    /// The stored condition of type `type_`.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }
}

impl StoredStatus {
    /// What `svc`'s status says.
    pub fn of(svc: &Service) -> StoredStatus {
        let status = svc.status.as_ref();
        let entries = status
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_deref())
            .unwrap_or_default();
        let ingress = ingress_ips(svc);
        StoredStatus {
            only_ips: ingress.len() == entries.len(),
            all_vip: entries
                .iter()
                .all(|i| i.ip_mode.as_deref() == Some(IP_MODE)),
            ingress,
            conditions: status
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::service::tests::{annotate, lb_service};
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn the_view_keeps_what_the_controller_reads() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": "s", "uid": "u-1", "generation": 3, "resourceVersion": "42",
                         "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"},
                         "annotations": {"metallb.universe.tf/allow-shared-ip": "k",
                                         "ferrolb.io/bgp-local-pref": "200",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "ferrolb.io/bgp", "loadBalancerIP": "203.0.113.7",
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Local",
                     "selector": {"app": "web"}, "clusterIP": "10.0.0.1",
                     "ports": [{"name": "http", "port": 80, "protocol": "UDP", "targetPort": 8080,
                                "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7", "ipMode": "VIP"}]},
                       "conditions": [{"type": "Other", "status": "True", "reason": "R", "message": "m",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let (key, view) = ServiceView::of(&svc);
        assert_eq!(key, ServiceKey::new("a", "s"));
        assert_eq!(
            view,
            ServiceView {
                load_balancer: true,
                class: Some("ferrolb.io/bgp".into()),
                request: request_of(&svc),
                attribute_annotations: BTreeMap::from([(
                    "ferrolb.io/bgp-local-pref".to_owned(),
                    "200".to_owned()
                )]),
                generation: Some(3),
                resource_version: Some(42),
                status: StoredStatus {
                    ingress: vec!["203.0.113.7".parse().unwrap()],
                    only_ips: true,
                    all_vip: true,
                    conditions: svc.status.clone().unwrap().conditions.unwrap(),
                },
            }
        );
        let request = view.request.as_ref().unwrap();
        assert_eq!(request.sharing_key.as_deref(), Some("k"));
        assert_eq!(request.created.uid, "u-1");
        assert_eq!(
            view.condition("Other").map(|c| c.reason.as_str()),
            Some("R")
        );
        assert_eq!(view.condition("ferrolb.io/AddressAssigned"), None);
        assert_eq!(
            view.handling(&ServiceFilter::default()),
            Handling::Ours,
            "our class"
        );
        let strict = ServiceFilter {
            class: "example.com/other".into(),
            default_class: false,
        };
        assert_eq!(view.handling(&strict), Handling::OtherClass);
    }

    #[test]
    fn hostname_entries_missing_ip_mode_and_malformed_requests_are_kept_as_such() {
        let mut svc = lb_service("a", "s", 1);
        svc.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        annotate(&mut svc, "ferrolb.io/loadBalancerIPs", "not-an-ip");
        svc.status = Some(
            serde_json::from_value(serde_json::json!({"loadBalancer": {"ingress": [
                {"ip": "203.0.113.1", "ipMode": "VIP"}, {"hostname": "x"}, {"ip": "2001:db8::1"}]}}))
            .unwrap(),
        );
        let (_, view) = ServiceView::of(&svc);
        assert_eq!(
            view.status.ingress,
            vec![
                "203.0.113.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(!view.status.only_ips);
        assert!(!view.status.all_vip);
        assert_eq!(view.status.conditions, Vec::new());
        assert_eq!(
            view.request.as_ref().unwrap_err().reason_code(),
            "InvalidRequest"
        );
        assert_eq!(
            view.handling(&ServiceFilter::default()),
            Handling::NotLoadBalancer
        );
        assert_eq!(view.attribute_annotations, BTreeMap::new());

        // No status at all: nothing stored, trivially all VIP.
        let (_, bare) = ServiceView::of(&lb_service("a", "t", 1));
        assert_eq!(
            bare.status,
            StoredStatus {
                ingress: Vec::new(),
                only_ips: true,
                all_vip: true,
                conditions: Vec::new(),
            }
        );
        assert_eq!(
            bare.request.unwrap().created.created_unix_secs,
            Timestamp::from_second(1).unwrap().as_second()
        );
    }
}
