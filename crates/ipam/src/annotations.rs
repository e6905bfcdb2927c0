//! The Service annotations ferrolb reads, and pure parsing of the ones that feed a [`crate::Request`].
//!
//! The `ferrolb.io/` name and the MetalLB names are accepted alike. When one Service sets several names of one
//! annotation, they must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::refusal::Refusal;

/// Requested addresses, comma-separated (one per family).
pub const LOAD_BALANCER_IPS: [&str; 2] = [
    "ferrolb.io/loadBalancerIPs",
    "metallb.universe.tf/loadBalancerIPs",
];
/// The pool to allocate from.
pub const ADDRESS_POOL: [&str; 3] = [
    "ferrolb.io/address-pool",
    "metallb.universe.tf/address-pool",
    "metallb.io/address-pool",
];
/// The sharing key.
pub const ALLOW_SHARED_IP: [&str; 2] = [
    "ferrolb.io/allow-shared-ip",
    "metallb.universe.tf/allow-shared-ip",
];

/// The namespaces a Service agrees to share its address with (comma-separated; ferrolb only). Services of two
/// namespaces share an address only when both name each other's namespace.
pub const SHARE_WITH_NAMESPACES: &str = "ferrolb.io/share-with-namespaces";

/// The namespaces named in [`SHARE_WITH_NAMESPACES`] (empty when absent); a refusal naming the first invalid name.
pub fn share_with_namespaces(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, Refusal> {
    let Some(text) = annotations.get(SHARE_WITH_NAMESPACES) else {
        return Ok(BTreeSet::new());
    };
    let mut out = BTreeSet::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let valid = ferrolb_config::is_dns_label(name);
        if !valid {
            return Err(Refusal::InvalidRequest {
                reason: format!(
                    "annotation {SHARE_WITH_NAMESPACES}: {name:?} is not a namespace name"
                ),
            });
        }
        out.insert(name.to_owned());
    }
    Ok(out)
}

/// The single value of an annotation known under several names; a refusal when the names disagree.
fn one_of<'a>(
    annotations: &'a BTreeMap<String, String>,
    names: &[&str],
) -> Result<Option<&'a str>, Refusal> {
    let mut found: Option<(&str, &str)> = None;
    for &name in names {
        if let Some(value) = annotations.get(name) {
            let value = value.trim();
            match found {
                Some((first, v)) if v != value => {
                    return Err(Refusal::InvalidRequest {
                        reason: format!("annotations {first} and {name} disagree"),
                    });
                }
                Some(_) => {}
                None => found = Some((name, value)),
            }
        }
    }
    Ok(found.map(|(_, v)| v).filter(|v| !v.is_empty()))
}

/// The requested addresses: `spec.loadBalancerIP` or the `loadBalancerIPs` annotation, never both.
pub fn requested_ips(
    load_balancer_ip: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<IpAddr>, Refusal> {
    let spec = load_balancer_ip.map(str::trim).filter(|s| !s.is_empty());
    let annotated = one_of(annotations, &LOAD_BALANCER_IPS)?;
    let text = match (spec, annotated) {
        (Some(_), Some(_)) => {
            return Err(Refusal::InvalidRequest {
                reason: "spec.loadBalancerIP and the loadBalancerIPs annotation are both set"
                    .into(),
            });
        }
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => return Ok(Vec::new()),
    };
    text.split(',')
        .map(str::trim)
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| Refusal::InvalidRequest {
                reason: format!("{s:?} is not an IP address"),
            })
        })
        .collect()
}

/// The annotated pool name.
pub fn address_pool(annotations: &BTreeMap<String, String>) -> Result<Option<String>, Refusal> {
    Ok(one_of(annotations, &ADDRESS_POOL)?.map(str::to_owned))
}

/// The sharing key.
pub fn sharing_key(annotations: &BTreeMap<String, String>) -> Result<Option<String>, Refusal> {
    Ok(one_of(annotations, &ALLOW_SHARED_IP)?.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn share_with_namespaces_is_a_trimmed_set_of_namespace_names() {
        let a = ann(&[(SHARE_WITH_NAMESPACES, " team-b, team-c,,team-b ")]);
        assert_eq!(
            share_with_namespaces(&a).unwrap(),
            BTreeSet::from(["team-b".to_owned(), "team-c".to_owned()])
        );
        assert_eq!(share_with_namespaces(&ann(&[])).unwrap(), BTreeSet::new());
        let bad = ann(&[(SHARE_WITH_NAMESPACES, "team-b,Team_C")]);
        assert_eq!(
            share_with_namespaces(&bad).unwrap_err().to_string(),
            "invalid request: annotation ferrolb.io/share-with-namespaces: \"Team_C\" is not a namespace name"
        );
    }

    #[test]
    fn spec_field_and_annotation_together_are_refused() {
        let a = ann(&[("metallb.universe.tf/loadBalancerIPs", "203.0.113.5")]);
        let err = requested_ips(Some("203.0.113.5"), &a).unwrap_err();
        assert_eq!(err.reason_code(), "InvalidRequest");
    }

    #[test]
    fn dual_stack_annotation_parses_both() {
        let a = ann(&[("ferrolb.io/loadBalancerIPs", "203.0.113.5, 2001:db8::5")]);
        assert_eq!(
            requested_ips(None, &a).unwrap(),
            vec![
                "203.0.113.5".parse::<IpAddr>().unwrap(),
                "2001:db8::5".parse().unwrap()
            ]
        );
        assert_eq!(
            requested_ips(Some(" "), &BTreeMap::new()).unwrap(),
            Vec::<IpAddr>::new()
        );
        assert!(requested_ips(Some("203.0.113.300"), &BTreeMap::new()).is_err());
    }

    #[test]
    fn pool_names_must_agree() {
        let a = ann(&[
            ("ferrolb.io/address-pool", "gold"),
            ("metallb.io/address-pool", "gold"),
        ]);
        assert_eq!(address_pool(&a).unwrap(), Some("gold".into()));
        let b = ann(&[
            ("ferrolb.io/address-pool", "gold"),
            ("metallb.io/address-pool", "silver"),
        ]);
        assert!(address_pool(&b).is_err());
        let c = ann(&[("metallb.universe.tf/allow-shared-ip", "dns")]);
        assert_eq!(sharing_key(&c).unwrap(), Some("dns".into()));
    }
}
