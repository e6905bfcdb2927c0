//! The speaker's compact copies of Services and EndpointSlices.
//!
//! The speaker watches every Service and EndpointSlice of the cluster, so what it keeps per object is most of its
//! memory. A k8s-openapi object costs about a kilobyte even with every unread field stripped (its structs are
//! large when empty), so each object is converted on arrival into a view holding only what the decision, the
//! per-Service attributes, `/explain` and the Events read, and the object itself is dropped. The views live in
//! the speaker's [`super::store`], keyed compactly, with a reflector store's semantics.

use super::store::Keyed;
use super::translate::{self, SERVICE_NAME_LABEL};
use crate::service_filter::ServiceFilter;
use ferrolb_announce as announce;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What the speaker keeps of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// `metadata.namespace` (shared: see [`NodeNames`]).
    pub namespace: Arc<str>,
    /// `metadata.name`.
    pub name: Box<str>,
    /// `metadata.uid`, for the Events about the Service.
    pub uid: Option<Uid>,
    /// What the decision reads of it ([`with_endpoints`] adds the key, `namespace/name` already held above, and
    /// the endpoints), or `None` when it is not of type `LoadBalancer`.
    pub service: Option<LbService>,
    /// The per-Service BGP attribute annotations it carries (and no other annotation).
    pub attribute_annotations: BTreeMap<String, String>,
}

impl ServiceView {
    /// The view of `svc`, which `filter` says whether ferrolb handles, its namespace shared through `names`.
    pub fn new(filter: &ServiceFilter, svc: &Service, names: &mut NodeNames) -> ServiceView {
        let attribute_annotations = crate::service_filter::attribute_annotations(svc);
        ServiceView {
            namespace: names.get(svc.metadata.namespace.as_deref().unwrap_or_default()),
            name: svc.metadata.name.as_deref().unwrap_or_default().into(),
            uid: svc.metadata.uid.as_deref().map(Uid::new),
            service: translate::service_of(filter, svc).map(LbService::of),
            attribute_annotations,
        }
    }

    /// A reference to the Service, for an Event about it.
    pub fn object_reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(self.namespace.to_string()),
            name: Some(self.name.to_string()),
            uid: self.uid.as_ref().map(ToString::to_string),
            ..ObjectReference::default()
        }
    }
}

/// The decision's view of a `LoadBalancer` Service without its key and endpoints, in exact-size boxes (the
/// speaker keeps one per Service; `announce::Service` holds an empty key and endpoint vector besides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbService {
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress_ips: Box<[std::net::IpAddr]>,
    /// `spec.externalTrafficPolicy`.
    pub traffic_policy: announce::TrafficPolicy,
    /// `metadata.labels`, sorted by key.
    pub labels: Box<[(String, String)]>,
    /// The pool its annotation names, if any.
    pub requested_pool: Option<Box<str>>,
    /// Whether ferrolb handles it.
    pub ours: bool,
}

impl LbService {
    /// The compact form of `service` (its key and endpoints are dropped).
    pub fn of(service: announce::Service) -> LbService {
        LbService {
            ingress_ips: service.ingress_ips.into(),
            traffic_policy: service.traffic_policy,
            labels: service.labels.into(),
            requested_pool: service.requested_pool.map(String::into_boxed_str),
            ours: service.ours,
        }
    }

    /// The decision's `announce::Service` of it, with `key` and `endpoints`.
    pub fn to_service(&self, key: String, endpoints: Vec<announce::Endpoint>) -> announce::Service {
        announce::Service {
            key,
            ingress_ips: self.ingress_ips.to_vec(),
            traffic_policy: self.traffic_policy,
            labels: self.labels.to_vec(),
            requested_pool: self.requested_pool.as_deref().map(str::to_owned),
            ours: self.ours,
            endpoints,
        }
    }
}

/// An object's `metadata.uid`: a UUID in its canonical text form (what the API server generates) in 16 bytes,
/// anything else as its text. At 10,000 Services this keeps about 0.5 MB less than a `String` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uid {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hexadecimal, as bytes.
    Uuid([u8; 16]),
    /// Any other text, kept as it was.
    Text(Box<str>),
}

impl Uid {
    /// The uid `text`, compact when it is a lowercase canonical UUID (so that it prints back exactly).
    pub fn new(text: &str) -> Uid {
        let digits = text.as_bytes();
        let canonical = digits.len() == 36
            && digits.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
            });
        if !canonical {
            return Uid::Text(text.into());
        }
        let mut bytes = [0u8; 16];
        let mut nibbles = digits.iter().filter(|b| **b != b'-').map(|b| match b {
            b'0'..=b'9' => b - b'0',
            _ => b - b'a' + 10,
        });
        for byte in &mut bytes {
            let (hi, lo) = (nibbles.next().unwrap_or(0), nibbles.next().unwrap_or(0));
            *byte = hi << 4 | lo;
        }
        Uid::Uuid(bytes)
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uid::Text(text) => f.write_str(text),
            Uid::Uuid(bytes) => {
                for (i, b) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// What the speaker keeps of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceView {
    /// `metadata.namespace` (shared: see [`NodeNames`]).
    pub namespace: Arc<str>,
    /// `metadata.name` (shared with the speaker's EndpointSlice index).
    pub name: Arc<str>,
    /// The name of its Service (label `kubernetes.io/service-name`), in the same namespace (shared with the
    /// index too).
    pub service: Option<Arc<str>>,
    /// Its endpoints, with the API's defaults for unset conditions.
    pub endpoints: Vec<announce::Endpoint>,
}

/// The node names of the endpoints and the namespaces of the objects seen so far, shared: every endpoint on a node
/// and every object of a namespace holds the same name rather than its own copy (a cluster has a few hundred nodes
/// and namespaces, so the set is never pruned).
#[derive(Debug, Default)]
pub struct NodeNames(HashSet<Arc<str>>);

impl NodeNames {
    /// The shared copy of `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.0.insert(n.clone());
        n
    }
}

impl SliceView {
    /// The view of `slice`, its namespace and node names shared through `names`.
    pub fn new(slice: &EndpointSlice, names: &mut NodeNames) -> SliceView {
        SliceView {
            namespace: names.get(slice.metadata.namespace.as_deref().unwrap_or_default()),
            name: slice.metadata.name.as_deref().unwrap_or_default().into(),
            service: slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(|s| Arc::from(s.as_str())),
            // With the EndpointSlice API's defaults for unset conditions.
            endpoints: slice
                .endpoints
                .iter()
                .map(|e| {
                    let c = e.conditions.as_ref();
                    announce::Endpoint::from_conditions(
                        e.node_name.as_deref().map(|n| names.get(n)),
                        c.and_then(|c| c.ready),
                        c.and_then(|c| c.serving),
                        c.and_then(|c| c.terminating),
                    )
                })
                .collect(),
        }
    }

    /// Whether it belongs to the Service `namespace/name`.
    pub fn belongs_to(&self, namespace: &str, name: &str) -> bool {
        *self.namespace == *namespace && self.service.as_deref() == Some(name)
    }
}

/// The decision's view of one Service with the endpoints of `slices` (its EndpointSlices), or `None` when it is
/// not of type `LoadBalancer`.
pub fn with_endpoints<'a>(
    view: &ServiceView,
    slices: impl IntoIterator<Item = &'a SliceView>,
) -> Option<announce::Service> {
    let service = view.service.as_ref()?;
    let key = translate::object_key(Some(&view.namespace), Some(&view.name));
    let endpoints = slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter().cloned())
        .collect();
    Some(service.to_service(key, endpoints))
}

impl Keyed for ServiceView {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Keyed for SliceView {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speaker::translate::tests::{lb_service, slice};

    #[test]
    fn uids_print_back_exactly() {
        let uuid = "0f8e2c7a-3b1d-4e5f-9a6b-7c8d9e0f1a2b";
        assert_eq!(
            Uid::new(uuid),
            Uid::Uuid([
                0x0f, 0x8e, 0x2c, 0x7a, 0x3b, 0x1d, 0x4e, 0x5f, 0x9a, 0x6b, 0x7c, 0x8d, 0x9e, 0x0f,
                0x1a, 0x2b
            ])
        );
        for text in [
            uuid,
            "u-1",
            "",
            "0F8E2C7A-3B1D-4E5F-9A6B-7C8D9E0F1A2B",
            "0f8e2c7a-3b1d-4e5f-9a6b-7c8d9e0f1a2",
            "0f8e2c7a-3b1d-4e5f-9a6b-7c8d9e0f1a2bc",
            "0f8e2c7a+3b1d-4e5f-9a6b-7c8d9e0f1a2b",
            "0f8e2c7a-3b1d-4e5f-9a6b-7c8d9e0f1a2g",
        ] {
            assert_eq!(Uid::new(text).to_string(), text);
        }
        assert!(matches!(
            Uid::new("0F8E2C7A-3B1D-4E5F-9A6B-7C8D9E0F1A2B"),
            Uid::Text(_)
        ));
    }

    #[test]
    fn a_loadbalancer_service_and_its_slices_become_decision_input() {
        let names = &mut NodeNames::default();
        let s1 = SliceView::new(
            &slice(
                "whoami",
                &[
                    ("node-1", Some(true), None, None),
                    ("node-2", Some(false), Some(true), Some(true)),
                ],
            ),
            names,
        );
        let s2 = SliceView::new(&slice("whoami", &[("node-3", None, None, None)]), names);
        assert!(s1.belongs_to("default", "whoami"));
        assert!(!s1.belongs_to("other", "whoami"));
        let view = ServiceView::new(&ServiceFilter::default(), &lb_service("Local", None), names);
        assert!(Arc::ptr_eq(&view.namespace, &s1.namespace));
        assert_eq!((&*view.namespace, &*view.name), ("default", "whoami"));
        let got = with_endpoints(&view, [&s1, &s2]).unwrap();
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

        let other = SliceView::new(
            &slice("other", &[("node-1", Some(true), None, None)]),
            names,
        );
        // One shared name per node.
        assert!(Arc::ptr_eq(
            other.endpoints[0].node_name.as_ref().unwrap(),
            s1.endpoints[0].node_name.as_ref().unwrap()
        ));
    }

    #[test]
    fn views_keep_what_the_speaker_reads_and_nothing_else() {
        use k8s_openapi::api::core::v1::ServicePort;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};
        let mut svc = lb_service("Local", Some("ferrolb.io/bgp"));
        svc.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..ManagedFieldsEntry::default()
        }]);
        svc.metadata.labels = Some([("app".to_owned(), "whoami".to_owned())].into());
        if let Some(a) = svc.metadata.annotations.as_mut() {
            a.insert(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{\"big\": true}".into(),
            );
            a.insert("ferrolb.io/bgp-local-pref".into(), "200".into());
            a.insert("ferrolb.io/bgp-communities".into(), "64500:1".into());
        }
        svc.metadata.uid = Some("u-1".into());
        if let Some(spec) = svc.spec.as_mut() {
            spec.ports = Some(vec![ServicePort {
                port: 80,
                ..ServicePort::default()
            }]);
        }
        let filter = ServiceFilter {
            class: "ferrolb.io/bgp".into(),
            ..ServiceFilter::default()
        };
        let names = &mut NodeNames::default();
        let view = ServiceView::new(&filter, &svc, names);
        assert_eq!(
            view.attribute_annotations,
            [
                (
                    "ferrolb.io/bgp-communities".to_owned(),
                    "64500:1".to_owned()
                ),
                ("ferrolb.io/bgp-local-pref".to_owned(), "200".to_owned()),
            ]
            .into()
        );
        // The key is the view's namespace and name, added by `with_endpoints`.
        assert_eq!(
            view.service,
            translate::service_of(&filter, &svc).map(LbService::of)
        );
        assert_eq!(
            with_endpoints(&view, []).map(|s| s.key).as_deref(),
            Some("default/whoami")
        );
        assert!(view.service.as_ref().is_some_and(|s| s.ours));
        // Labels are kept for advertisements' service-selectors, as an exact-size vector.
        let labels = &view.service.as_ref().map(|s| s.labels.clone());
        assert_eq!(
            labels.as_deref(),
            Some(&[("app".to_owned(), "whoami".to_owned())][..])
        );
        let reference = view.object_reference();
        assert_eq!(
            (
                reference.kind.as_deref(),
                reference.namespace.as_deref(),
                reference.name.as_deref(),
                reference.uid.as_deref()
            ),
            (
                Some("Service"),
                Some("default"),
                Some("whoami"),
                Some("u-1")
            )
        );
        // Another class: kept as not ours. Not a LoadBalancer: kept without a decision view.
        let other_class = ServiceFilter {
            class: "other.io/lb".into(),
            ..ServiceFilter::default()
        };
        let other = ServiceView::new(&other_class, &svc, names);
        assert!(other.service.as_ref().is_some_and(|s| !s.ours));
        if let Some(spec) = svc.spec.as_mut() {
            spec.type_ = Some("ClusterIP".into());
        }
        assert_eq!(ServiceView::new(&filter, &svc, names).service, None);

        let mut sl = slice("whoami", &[("node-1", Some(true), Some(true), Some(false))]);
        sl.metadata.owner_references = Some(vec![OwnerReference {
            name: "whoami".into(),
            ..OwnerReference::default()
        }]);
        if let Some(l) = sl.metadata.labels.as_mut() {
            l.insert("endpointslice.kubernetes.io/managed-by".into(), "x".into());
        }
        assert_eq!(
            SliceView::new(&sl, &mut NodeNames::default()),
            SliceView {
                namespace: "default".into(),
                name: "whoami-abcde".into(),
                service: Some("whoami".into()),
                endpoints: vec![announce::Endpoint {
                    node_name: Some("node-1".into()),
                    ready: true,
                    serving: true,
                    terminating: false,
                }],
            }
        );
    }
}
