//! The `ferrolb.io/BGPAttributesAccepted` condition: a Service's BGP attribute annotations checked against its
//! pool's `allowed-service-*` policy with [`ferrolb_announce::service_attributes`]. Pure.
//!
//! The speaker applies the same check when it announces (and uses the pool's defaults on refusal); the
//! controller owns the Service status, so it is the one that tells the Service's owner.

use ferrolb_announce::{
    AnnounceConfig, Node, ServiceAttributes, service_attributes,
    service_attributes::ATTRIBUTE_ANNOTATIONS,
};
use ferrolb_config::{CommunityValue, Config};
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::status::{DesiredCondition, REASON_ATTRIBUTES_ACCEPTED};

/// What Services may set, from the configuration in force.
#[derive(Clone, Debug, Default)]
pub struct AttributePolicy {
    pools: AnnounceConfig,
    aliases: BTreeMap<String, CommunityValue>,
}

impl AttributePolicy {
    /// The policy of a loaded configuration.
    pub fn from_config(config: &Config) -> AttributePolicy {
        AttributePolicy {
            pools: AnnounceConfig::from_config(config, &Node::default()),
            aliases: config.bgp_communities.clone(),
        }
    }

    /// The condition a Service with these `annotations`, holding `ips`, should carry: `None` when it has none of
    /// the attribute annotations, or holds no address of a configured pool (nothing is announced for it then).
    /// Each pool its addresses lie in must allow everything; the first refusal is reported.
    pub fn condition(
        &self,
        annotations: &BTreeMap<String, String>,
        ips: &[IpAddr],
    ) -> Option<DesiredCondition> {
        let annotated = ATTRIBUTE_ANNOTATIONS
            .iter()
            .any(|a| annotations.contains_key(*a));
        if !annotated {
            return None;
        }
        let mut pools: Vec<_> = ips
            .iter()
            .filter_map(|&ip| self.pools.pool_of(ip))
            .collect();
        pools.dedup_by(|a, b| a.name == b.name);
        let mut accepted = None;
        for pool in pools {
            match service_attributes(annotations, pool, &self.aliases) {
                Ok(attributes) => accepted = Some(attributes),
                Err(refusal) => {
                    return Some(DesiredCondition {
                        ok: false,
                        reason: refusal.reason().to_owned(),
                        message: refusal.message(),
                    });
                }
            }
        }
        accepted.map(|attributes| DesiredCondition {
            ok: true,
            reason: REASON_ATTRIBUTES_ACCEPTED.to_owned(),
            message: accepted_message(&attributes),
        })
    }
}

/// `announced with local-pref 200, communities 65000:100, large communities 65000:1:2, as-path-prepend 65000:3`.
fn accepted_message(attributes: &ServiceAttributes) -> String {
    let mut parts = Vec::new();
    if let Some(lp) = attributes.local_pref {
        parts.push(format!("local-pref {lp}"));
    }
    if !attributes.communities.is_empty() {
        let list: Vec<String> = attributes
            .communities
            .iter()
            .map(|c| c.to_string())
            .collect();
        parts.push(format!("communities {}", list.join(" ")));
    }
    if !attributes.large_communities.is_empty() {
        let list: Vec<String> = attributes
            .large_communities
            .iter()
            .map(|c| c.to_string())
            .collect();
        parts.push(format!("large communities {}", list.join(" ")));
    }
    if let Some(p) = attributes.as_path_prepend {
        parts.push(format!("as-path-prepend {p}"));
    }
    if parts.is_empty() {
        "no attributes requested".to_owned()
    } else {
        format!("announced with {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
bgp-communities:
  blackhole: 65535:666
  tag: 65000:100
address-pools:
- name: default
  protocol: bgp
  addresses: [203.0.113.0/28]
  bgp-advertisements:
  - allowed-service-communities: [tag, 65000:200, large:65000:1:2]
    allowed-service-localprefs: [100-300]
    allowed-service-as-path-prepends: [{asn: 65000, max-count: 3}]
- name: strict
  protocol: bgp
  addresses: [198.51.100.0/28]
";

    fn policy() -> AttributePolicy {
        AttributePolicy::from_config(&Config::from_yaml(CONFIG).unwrap())
    }

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn no_annotation_or_no_address_means_no_condition() {
        let p = policy();
        assert_eq!(
            p.condition(&ann(&[("other", "x")]), &[ip("203.0.113.1")]),
            None
        );
        assert_eq!(
            p.condition(&ann(&[("ferrolb.io/bgp-local-pref", "200")]), &[]),
            None
        );
    }

    #[test]
    fn allowed_attributes_are_accepted_with_what_is_announced() {
        let c = policy()
            .condition(
                &ann(&[
                    ("ferrolb.io/bgp-communities", "tag, 65000:200"),
                    ("ferrolb.io/bgp-large-communities", "65000:1:2"),
                    ("ferrolb.io/bgp-local-pref", "250"),
                    ("ferrolb.io/bgp-as-path-prepend", "65000:3"),
                ]),
                &[ip("203.0.113.1")],
            )
            .unwrap();
        assert_eq!(
            c,
            DesiredCondition {
                ok: true,
                reason: "Accepted".into(),
                message: "announced with local-pref 250, communities 65000:100 65000:200, \
                          large communities 65000:1:2, as-path-prepend 65000:3"
                    .into(),
            }
        );
    }

    #[test]
    fn forbidden_or_invalid_values_are_refused_with_the_typed_reason() {
        let p = policy();
        let c = p
            .condition(
                &ann(&[("ferrolb.io/bgp-communities", "blackhole")]),
                &[ip("203.0.113.1")],
            )
            .unwrap();
        assert!(!c.ok);
        assert_eq!(c.reason, "CommunityNotAllowed");
        assert!(c.message.contains("65535:666"), "{}", c.message);
        let c = p
            .condition(
                &ann(&[("ferrolb.io/bgp-local-pref", "high")]),
                &[ip("203.0.113.1")],
            )
            .unwrap();
        assert_eq!((c.ok, c.reason.as_str()), (false, "InvalidLocalPref"));
        // The strict pool allows nothing.
        let c = p
            .condition(
                &ann(&[("ferrolb.io/bgp-local-pref", "200")]),
                &[ip("198.51.100.1")],
            )
            .unwrap();
        assert_eq!((c.ok, c.reason.as_str()), (false, "LocalPrefNotAllowed"));
        // A prepend alone is an attribute annotation too; 4 copies are more than allowed.
        let c = p
            .condition(
                &ann(&[("ferrolb.io/bgp-as-path-prepend", "65000:4")]),
                &[ip("203.0.113.1")],
            )
            .unwrap();
        assert_eq!(
            c,
            DesiredCondition {
                ok: false,
                reason: "AsPathPrependNotAllowed".into(),
                message: "ferrolb.io/bgp-as-path-prepend: 65000:4 is not in \
                          allowed-service-as-path-prepends of pool \"default\"; announcing with \
                          the pool's attributes instead"
                    .into(),
            }
        );
    }
}
