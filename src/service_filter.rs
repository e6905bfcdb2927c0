//! Which Services ferrolb handles (`spec.type`, `spec.loadBalancerClass`), the addresses their status shows and
//! the BGP attribute annotations they carry: shared by the controller (which assigns addresses) and the speaker
//! (which announces them). Pure functions.

use ferrolb_announce::service_attributes::ATTRIBUTE_ANNOTATIONS;
use k8s_openapi::api::core::v1::Service;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The `spec.loadBalancerClass` ferrolb implements.
pub const LOAD_BALANCER_CLASS: &str = "ferrolb.io/bgp";

/// Which Services ferrolb handles (`--no-default-class`: only those of its class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFilter {
    /// The `spec.loadBalancerClass` handled (normally [`LOAD_BALANCER_CLASS`]).
    pub class: String,
    /// Whether Services with no `spec.loadBalancerClass` are handled too.
    pub default_class: bool,
}

impl Default for ServiceFilter {
    fn default() -> ServiceFilter {
        ServiceFilter {
            class: LOAD_BALANCER_CLASS.to_owned(),
            default_class: true,
        }
    }
}

/// What ferrolb does with a Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// A `LoadBalancer` Service of our class: the controller gives it addresses, the speakers announce them.
    Ours,
    /// Not (or no longer) of type `LoadBalancer`: it holds no address; any status we wrote is cleared.
    NotLoadBalancer,
    /// A `LoadBalancer` Service of another implementation's class: never touched.
    OtherClass,
}

impl ServiceFilter {
    /// How ferrolb treats `svc`.
    pub fn handling(&self, svc: &Service) -> Handling {
        let spec = svc.spec.as_ref();
        self.handling_of(
            spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            spec.and_then(|s| s.load_balancer_class.as_deref()),
        )
    }

    /// How ferrolb treats a Service whose `spec.type` is `LoadBalancer` (or not) with this
    /// `spec.loadBalancerClass`.
    pub fn handling_of(&self, load_balancer: bool, class: Option<&str>) -> Handling {
        if !load_balancer {
            return Handling::NotLoadBalancer;
        }
        match class {
            None if self.default_class => Handling::Ours,
            Some(class) if class == self.class => Handling::Ours,
            _ => Handling::OtherClass,
        }
    }
}

/// The addresses in `status.loadBalancer.ingress` (entries without a parseable `ip` are ignored).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The per-Service BGP attribute annotations `svc` carries (and no other annotation).
pub fn attribute_annotations(svc: &Service) -> BTreeMap<String, String> {
    svc.metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| ATTRIBUTE_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn lb_service() -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    #[test]
    fn class_filter_takes_our_class_and_unclassed_unless_no_default() {
        let filter = ServiceFilter::default();
        let mut svc = lb_service();
        assert_eq!(filter.handling(&svc), Handling::Ours);
        svc.spec.as_mut().unwrap().load_balancer_class = Some("ferrolb.io/bgp".into());
        assert_eq!(filter.handling(&svc), Handling::Ours);
        svc.spec.as_mut().unwrap().load_balancer_class = Some("example.com/other".into());
        assert_eq!(filter.handling(&svc), Handling::OtherClass);

        let strict = ServiceFilter {
            default_class: false,
            ..ServiceFilter::default()
        };
        let mut unclassed = lb_service();
        assert_eq!(strict.handling(&unclassed), Handling::OtherClass);
        unclassed.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert_eq!(strict.handling(&unclassed), Handling::NotLoadBalancer);
    }

    #[test]
    fn only_the_bgp_attribute_annotations_are_kept() {
        let mut svc = lb_service();
        assert_eq!(attribute_annotations(&svc), BTreeMap::new());
        svc.metadata.annotations = Some(BTreeMap::from([
            (
                "ferrolb.io/bgp-communities".to_owned(),
                "no-export".to_owned(),
            ),
            (
                "ferrolb.io/bgp-as-path-prepend".to_owned(),
                "65000:2".to_owned(),
            ),
            ("ferrolb.io/address-pool".to_owned(), "gold".to_owned()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                "{}".to_owned(),
            ),
        ]));
        assert_eq!(
            attribute_annotations(&svc),
            BTreeMap::from([
                (
                    "ferrolb.io/bgp-as-path-prepend".to_owned(),
                    "65000:2".to_owned()
                ),
                (
                    "ferrolb.io/bgp-communities".to_owned(),
                    "no-export".to_owned()
                ),
            ])
        );
    }
}
