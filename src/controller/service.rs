//! From a Kubernetes `Service` to what the allocator needs: whether the Service is ours, its allocation
//! [`Request`], and the addresses its status already shows. Pure functions. Whether a Service is ours at all is
//! [`crate::service_filter`], shared with the speaker.

use ferrolb_ipam::{
    CreationOrder, Family, FamilyPolicy, FamilyRequest, PortSpec, Protocol, Refusal, Request,
    ServiceKey, TrafficPolicy, annotations,
};
use k8s_openapi::api::core::v1::Service;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The Service's `namespace/name`.
pub fn key_of(svc: &Service) -> ServiceKey {
    ServiceKey::new(
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

/// The allocation request a Service makes, or why it is malformed (a refusal with reason `InvalidRequest`).
pub fn request_of(svc: &Service) -> Result<Request, Refusal> {
    let empty = BTreeMap::new();
    let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let spec = svc.spec.clone().unwrap_or_default();
    let requested_ips = annotations::requested_ips(spec.load_balancer_ip.as_deref(), ann)?;
    let pool = annotations::address_pool(ann)?;
    let sharing_key = annotations::sharing_key(ann)?;
    let share_with_namespaces = annotations::share_with_namespaces(ann)?;
    let families = family_request(
        spec.ip_families.as_deref().unwrap_or_default(),
        spec.ip_family_policy.as_deref(),
        &requested_ips,
    )?;
    let ports = spec
        .ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let protocol = match p.protocol.as_deref() {
                None | Some("TCP") => Protocol::Tcp,
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                Some(_) => return None,
            };
            let port = u16::try_from(p.port).ok()?;
            Some(PortSpec { protocol, port })
        })
        .collect();
    let traffic_policy = match spec.external_traffic_policy.as_deref() {
        Some("Local") => TrafficPolicy::Local {
            selector: spec.selector.unwrap_or_default(),
        },
        _ => TrafficPolicy::Cluster,
    };
    Ok(Request {
        requested_ips,
        pool,
        families,
        sharing_key,
        ports,
        traffic_policy,
        created: creation_order(svc),
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        // The caller adds the Namespace's labels (see `ControllerState`).
        namespace_labels: Default::default(),
        share_with_namespaces,
    })
}

/// `spec.ipFamilies` / `spec.ipFamilyPolicy` as a [`FamilyRequest`]. With no families listed (the API server
/// always fills them in; this is for hand-made objects), the requested addresses' families are used, else IPv4.
fn family_request(
    families: &[String],
    policy: Option<&str>,
    requested: &[IpAddr],
) -> Result<FamilyRequest, Refusal> {
    let mut parsed = Vec::with_capacity(families.len());
    for family in families {
        let family = match family.as_str() {
            "IPv4" => Family::V4,
            "IPv6" => Family::V6,
            other => {
                return Err(Refusal::InvalidRequest {
                    reason: format!("unknown IP family {other:?} in spec.ipFamilies"),
                });
            }
        };
        if !parsed.contains(&family) {
            parsed.push(family);
        }
    }
    if parsed.is_empty() {
        parsed = requested.iter().map(|&ip| Family::of(ip)).collect();
        parsed.dedup();
    }
    if parsed.is_empty() {
        parsed.push(Family::V4);
    }
    let policy = match policy {
        None | Some("SingleStack") => FamilyPolicy::SingleStack,
        Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
        Some(other) => {
            return Err(Refusal::InvalidRequest {
                reason: format!("unknown spec.ipFamilyPolicy {other:?}"),
            });
        }
    };
    if policy == FamilyPolicy::SingleStack {
        parsed.truncate(1);
    }
    Ok(FamilyRequest {
        families: parsed,
        policy,
    })
}

/// The Service's age: `metadata.creationTimestamp`, then `metadata.uid`.
pub fn creation_order(svc: &Service) -> CreationOrder {
    CreationOrder {
        created_unix_secs: svc
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(i64::MAX),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
    }
}

/// The object's `metadata.resourceVersion` as a number (etcd revisions), for ordering watch events against our
/// own writes.
pub fn resource_version(svc: &Service) -> Option<u64> {
    svc.metadata.resource_version.as_deref()?.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service_filter::ingress_ips;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    /// A `LoadBalancer` Service as the API server stores it (families filled in), created at `created` seconds.
    pub(crate) fn lb_service(ns: &str, name: &str, created: i64) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                generation: Some(1),
                resource_version: Some("1".into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ip_family_policy: Some("SingleStack".into()),
                ports: Some(vec![ServicePort {
                    port: 80,
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    /// The Service after the API server applied a merge `patch` to it.
    pub(crate) fn applied(svc: &Service, patch: &serde_json::Value) -> Service {
        let mut value = serde_json::to_value(svc).unwrap();
        merge(&mut value, patch);
        serde_json::from_value(value).unwrap()
    }

    fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        use serde_json::Value;
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }

    pub(crate) fn annotate(svc: &mut Service, k: &str, v: &str) {
        svc.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
    }

    #[test]
    fn annotations_and_spec_become_a_request() {
        let mut svc = lb_service("a", "dns", 100);
        annotate(&mut svc, "metallb.universe.tf/address-pool", "gold");
        annotate(&mut svc, "ferrolb.io/allow-shared-ip", "dns");
        annotate(
            &mut svc,
            "metallb.universe.tf/loadBalancerIPs",
            "203.0.113.7",
        );
        let spec = svc.spec.as_mut().unwrap();
        spec.external_traffic_policy = Some("Local".into());
        spec.selector = Some(BTreeMap::from([("app".into(), "dns".into())]));
        spec.ports = Some(vec![
            ServicePort {
                port: 53,
                protocol: Some("UDP".into()),
                ..ServicePort::default()
            },
            ServicePort {
                port: 53,
                protocol: None,
                ..ServicePort::default()
            },
        ]);
        let req = request_of(&svc).unwrap();
        assert_eq!(req.pool.as_deref(), Some("gold"));
        assert_eq!(req.sharing_key.as_deref(), Some("dns"));
        assert_eq!(
            req.requested_ips,
            vec!["203.0.113.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(req.ports, vec![PortSpec::udp(53), PortSpec::tcp(53)]);
        assert_eq!(
            req.traffic_policy,
            TrafficPolicy::Local {
                selector: BTreeMap::from([("app".into(), "dns".into())])
            }
        );
        assert_eq!(req.families, FamilyRequest::single(Family::V4));
        assert_eq!(req.created.created_unix_secs, 100);
        assert_eq!(req.created.uid, "uid-dns");
    }

    #[test]
    fn load_balancer_ip_and_annotation_together_is_invalid() {
        let mut svc = lb_service("a", "s", 1);
        svc.spec.as_mut().unwrap().load_balancer_ip = Some("203.0.113.7".into());
        annotate(&mut svc, "ferrolb.io/loadBalancerIPs", "203.0.113.7");
        assert_eq!(
            request_of(&svc).unwrap_err().reason_code(),
            "InvalidRequest"
        );
    }

    #[test]
    fn dual_stack_policies_map_to_family_requests() {
        let mut svc = lb_service("a", "s", 1);
        let spec = svc.spec.as_mut().unwrap();
        spec.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
        spec.ip_family_policy = Some("RequireDualStack".into());
        assert_eq!(
            request_of(&svc).unwrap().families,
            FamilyRequest::dual(Family::V6, FamilyPolicy::RequireDualStack)
        );
        svc.spec.as_mut().unwrap().ip_family_policy = Some("SingleStack".into());
        assert_eq!(
            request_of(&svc).unwrap().families,
            FamilyRequest::single(Family::V6)
        );
        svc.spec.as_mut().unwrap().ip_family_policy = Some("Sometimes".into());
        assert!(request_of(&svc).is_err());
    }

    #[test]
    fn ingress_ips_and_resource_version_read_the_status() {
        let mut svc = lb_service("a", "s", 1);
        assert_eq!(ingress_ips(&svc), Vec::<IpAddr>::new());
        svc.status = Some(serde_json::from_value(serde_json::json!({
            "loadBalancer": {"ingress": [{"ip": "203.0.113.1"}, {"hostname": "x"}, {"ip": "2001:db8::1"}]}
        }))
        .unwrap());
        assert_eq!(
            ingress_ips(&svc),
            vec![
                "203.0.113.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(resource_version(&svc), Some(1));
    }
}
