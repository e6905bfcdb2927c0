//! Per-Service BGP attributes: the `ferrolb.io/bgp-communities`,
//! `ferrolb.io/bgp-large-communities`, `ferrolb.io/bgp-local-pref` and
//! `ferrolb.io/bgp-as-path-prepend` annotations, checked against what the Service's pool allows
//! (`allowed-service-*`).
//!
//! A Service owner must not steer the routers at will, so anything the pool does not list is
//! refused, as is any value that does not parse. A refusal is all or nothing: the Service is
//! announced with its pool's defaults, and the glue records the [`AttributeRefusal`] as a
//! Warning Event and a status condition. Nothing is dropped silently.

use crate::decision::{AnnounceDecision, RouteAttributes, ServiceDecision, longest_prepend};
use crate::from_config::split_communities;
use crate::input::{AnnounceConfig, Community, LargeCommunity, Pool};
use ferrolb_config::{AsPathPrepend, CommunityValue};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Standard communities (`a:b` or `bgp-communities` aliases), comma-separated.
pub const COMMUNITIES_ANNOTATION: &str = "ferrolb.io/bgp-communities";
/// Large communities (`a:b:c` or `large:a:b:c`), comma-separated.
pub const LARGE_COMMUNITIES_ANNOTATION: &str = "ferrolb.io/bgp-large-communities";
/// One LOCAL_PREF value (sent to iBGP peers only).
pub const LOCAL_PREF_ANNOTATION: &str = "ferrolb.io/bgp-local-pref";
/// AS_PATH prepending, `ASN:COUNT` (a count of 1 to 10).
pub const AS_PATH_PREPEND_ANNOTATION: &str = "ferrolb.io/bgp-as-path-prepend";
/// Every annotation [`service_attributes`] reads.
pub const ATTRIBUTE_ANNOTATIONS: [&str; 4] = [
    COMMUNITIES_ANNOTATION,
    LARGE_COMMUNITIES_ANNOTATION,
    LOCAL_PREF_ANNOTATION,
    AS_PATH_PREPEND_ANNOTATION,
];
/// The Service status condition type that reports whether its annotations were applied.
pub const CONDITION_TYPE: &str = "ferrolb.io/BGPAttributesAccepted";

/// The attributes a Service adds to its own host routes, once accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAttributes {
    /// LOCAL_PREF, replacing the pool's.
    pub local_pref: Option<u32>,
    /// COMMUNITIES added to the pool's.
    pub communities: BTreeSet<Community>,
    /// LARGE_COMMUNITIES added to the pool's.
    pub large_communities: BTreeSet<LargeCommunity>,
    /// AS_PATH prepending; the route keeps the pool's when that one is longer.
    pub as_path_prepend: Option<AsPathPrepend>,
}

impl ServiceAttributes {
    /// True when the Service asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.local_pref.is_none()
            && self.communities.is_empty()
            && self.large_communities.is_empty()
            && self.as_path_prepend.is_none()
    }
}

/// One thing wrong with a Service's attribute annotations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeProblem {
    /// A value that is not a community of the annotation's kind nor an alias.
    #[error("{annotation}: {value:?} is not {expected}")]
    InvalidCommunity {
        /// The annotation.
        annotation: &'static str,
        /// The value as written.
        value: String,
        /// What the annotation takes, in words.
        expected: &'static str,
    },
    /// A community the pool does not allow Services to set.
    #[error(
        "{annotation}: community {community} is not in allowed-service-communities of pool {pool:?}"
    )]
    CommunityNotAllowed {
        /// The annotation.
        annotation: &'static str,
        /// The community, as ferrolb writes it.
        community: String,
        /// The Service's pool.
        pool: String,
    },
    /// A LOCAL_PREF that is not a number from 0 to 4294967295.
    #[error("ferrolb.io/bgp-local-pref: {0:?} is not a number from 0 to 4294967295")]
    InvalidLocalPref(String),
    /// A LOCAL_PREF the pool does not allow.
    #[error(
        "ferrolb.io/bgp-local-pref: {value} is not in allowed-service-localprefs of pool {pool:?}"
    )]
    LocalPrefNotAllowed {
        /// The value.
        value: u32,
        /// The Service's pool.
        pool: String,
    },
    /// A prepend that is not `ASN:COUNT` with an AS of 1 to 4294967295 and a count of 1 to 10.
    #[error("ferrolb.io/bgp-as-path-prepend: {0}")]
    InvalidAsPathPrepend(ferrolb_config::AsPathPrependError),
    /// A prepend the pool does not allow.
    #[error(
        "ferrolb.io/bgp-as-path-prepend: {prepend} is not in allowed-service-as-path-prepends of pool {pool:?}"
    )]
    AsPathPrependNotAllowed {
        /// The prepend, `ASN:COUNT`.
        prepend: AsPathPrepend,
        /// The Service's pool.
        pool: String,
    },
}

impl AttributeProblem {
    /// A CamelCase reason for an Event or condition.
    pub fn reason(&self) -> &'static str {
        match self {
            AttributeProblem::InvalidCommunity { .. } => "InvalidCommunity",
            AttributeProblem::CommunityNotAllowed { .. } => "CommunityNotAllowed",
            AttributeProblem::InvalidLocalPref(_) => "InvalidLocalPref",
            AttributeProblem::LocalPrefNotAllowed { .. } => "LocalPrefNotAllowed",
            AttributeProblem::InvalidAsPathPrepend(_) => "InvalidAsPathPrepend",
            AttributeProblem::AsPathPrependNotAllowed { .. } => "AsPathPrependNotAllowed",
        }
    }
}

/// Why a Service's attribute annotations were refused: every problem found (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeRefusal {
    /// The problems, in annotation order (communities, large communities, local-pref, prepend).
    pub problems: Vec<AttributeProblem>,
}

impl AttributeRefusal {
    /// The reason for the Warning Event and the `False` condition: the first problem's.
    pub fn reason(&self) -> &'static str {
        self.problems
            .first()
            .map_or("AttributesRefused", AttributeProblem::reason)
    }

    /// The message for the Event and condition: every problem, then what happens instead.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AttributeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            write!(f, "{p}; ")?;
        }
        f.write_str("announcing with the pool's attributes instead")
    }
}

impl std::error::Error for AttributeRefusal {}

/// The comma-separated items of an annotation, trimmed, empty ones skipped.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Reads and checks a Service's attribute annotations against `pool`'s allowances (the union
/// over its advertisements; the configuration allows them on host-route advertisements only).
/// `aliases` are the configuration's `bgp-communities`. A Service without these annotations
/// gets empty attributes.
pub fn service_attributes(
    annotations: &BTreeMap<String, String>,
    pool: &Pool,
    aliases: &BTreeMap<String, CommunityValue>,
) -> Result<ServiceAttributes, AttributeRefusal> {
    let mut problems = Vec::new();
    let mut requested: Vec<(&'static str, CommunityValue)> = Vec::new();
    if let Some(text) = annotations.get(COMMUNITIES_ANNOTATION) {
        for item in items(text) {
            match aliases.get(item).copied().map_or_else(
                || {
                    item.parse::<CommunityValue>()
                        .ok()
                        .filter(|c| c.standard_bits().is_some())
                },
                Some,
            ) {
                Some(c) => requested.push((COMMUNITIES_ANNOTATION, c)),
                None => problems.push(AttributeProblem::InvalidCommunity {
                    annotation: COMMUNITIES_ANNOTATION,
                    value: item.to_string(),
                    expected: "a community a:b (16-bit numbers) or a bgp-communities alias",
                }),
            }
        }
    }
    if let Some(text) = annotations.get(LARGE_COMMUNITIES_ANNOTATION) {
        for item in items(text) {
            match item.parse::<CommunityValue>() {
                Ok(c @ CommunityValue::Large(..)) => {
                    requested.push((LARGE_COMMUNITIES_ANNOTATION, c))
                }
                _ => problems.push(AttributeProblem::InvalidCommunity {
                    annotation: LARGE_COMMUNITIES_ANNOTATION,
                    value: item.to_string(),
                    expected: "a large community a:b:c or large:a:b:c (32-bit numbers)",
                }),
            }
        }
    }
    let allowances = pool.advertisements.iter().map(|a| &a.service_allowances);
    let mut out = ServiceAttributes::default();
    for (annotation, c) in requested {
        let mut standard = Vec::new();
        let mut large = Vec::new();
        split_communities(&[c], &mut standard, &mut large);
        let allowed = allowances.clone().any(|a| {
            standard.iter().all(|s| a.communities.contains(s))
                && large.iter().all(|l| a.large_communities.contains(l))
        });
        if allowed {
            out.communities.extend(standard);
            out.large_communities.extend(large);
        } else {
            problems.push(AttributeProblem::CommunityNotAllowed {
                annotation,
                community: c.to_string(),
                pool: pool.name.clone(),
            });
        }
    }
    if let Some(text) = annotations.get(LOCAL_PREF_ANNOTATION) {
        let t = text.trim();
        let value = (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten();
        match value {
            None => problems.push(AttributeProblem::InvalidLocalPref(text.clone())),
            Some(v)
                if allowances
                    .clone()
                    .any(|a| a.local_prefs.iter().any(|(lo, hi)| *lo <= v && v <= *hi)) =>
            {
                out.local_pref = Some(v)
            }
            Some(value) => problems.push(AttributeProblem::LocalPrefNotAllowed {
                value,
                pool: pool.name.clone(),
            }),
        }
    }
    if let Some(text) = annotations.get(AS_PATH_PREPEND_ANNOTATION) {
        match text.parse::<AsPathPrepend>() {
            Err(e) => problems.push(AttributeProblem::InvalidAsPathPrepend(e)),
            Ok(p)
                if allowances
                    .clone()
                    .any(|a| a.as_path_prepends.iter().any(|x| x.allows(p))) =>
            {
                out.as_path_prepend = Some(p)
            }
            Ok(prepend) => problems.push(AttributeProblem::AsPathPrependNotAllowed {
                prepend,
                pool: pool.name.clone(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(AttributeRefusal { problems })
    }
}

/// The per-Service attributes this node applies: for each Service of `decision` that this
/// node announces and that asks for attributes (`annotations` yields `namespace/name` and its
/// `metadata.annotations`), the [`service_attributes`] accepted by the pool of every IP it
/// announces. A Service refused by any of its pools is left out, so its routes keep the pool's
/// defaults (the controller reports the refusal; the speaker only applies what is accepted).
pub fn accepted_service_attributes<'a>(
    decision: &AnnounceDecision,
    config: &AnnounceConfig,
    aliases: &BTreeMap<String, CommunityValue>,
    annotations: impl IntoIterator<Item = (String, &'a BTreeMap<String, String>)>,
) -> BTreeMap<String, ServiceAttributes> {
    let mut accepted = BTreeMap::new();
    for (key, annotations) in annotations {
        let Some(sd) = decision.services.get(&key) else {
            continue;
        };
        if let Some(a) = accepted_for(sd, config, aliases, annotations) {
            accepted.insert(key, a);
        }
    }
    accepted
}

/// The attributes one Service's `annotations` add to its routes: `None` when it is not
/// announced, when a pool of its announced IPs refuses them, or when they add nothing.
pub fn accepted_for(
    sd: &ServiceDecision,
    config: &AnnounceConfig,
    aliases: &BTreeMap<String, CommunityValue>,
    annotations: &BTreeMap<String, String>,
) -> Option<ServiceAttributes> {
    if !sd.announce || annotations.is_empty() {
        return None;
    }
    let mut pools: Vec<&Pool> = Vec::new();
    for pool in sd.announced_ips.iter().filter_map(|ip| config.pool_of(*ip)) {
        if !pools.iter().any(|p| p.name == pool.name) {
            pools.push(pool);
        }
    }
    let mut attrs = None;
    for pool in pools {
        attrs = Some(service_attributes(annotations, pool, aliases).ok()?);
    }
    attrs.filter(|a| !a.is_empty())
}

/// Adds the accepted attributes of the Services sharing one route to it: their communities are
/// added to the pool's; the highest LOCAL_PREF among them replaces the pool's; the longest prepend
/// among them and the pool's stays ([`longest_prepend`]).
pub(crate) fn add_service_attributes<'a>(
    route: &mut RouteAttributes,
    services: impl IntoIterator<Item = &'a ServiceAttributes>,
) {
    let mut local_pref = None;
    for attrs in services {
        route.communities.extend(attrs.communities.iter().copied());
        route
            .large_communities
            .extend(attrs.large_communities.iter().copied());
        local_pref = local_pref.max(attrs.local_pref);
        route.as_path_prepend = longest_prepend(route.as_path_prepend, attrs.as_path_prepend);
    }
    if local_pref.is_some() {
        route.local_pref = local_pref;
    }
}

/// Adds accepted per-Service attributes (keyed `namespace/name`) to the Services' host routes
/// in `decision`, as [`add_service_attributes`] says, in every table. Aggregated routes and
/// Services this node does not announce are left alone. Running it twice changes nothing more.
pub fn apply_service_attributes(
    decision: &mut AnnounceDecision,
    attributes: &BTreeMap<String, ServiceAttributes>,
) {
    let mut by_prefix: BTreeMap<ipnet::IpNet, Vec<&ServiceAttributes>> = BTreeMap::new();
    for (key, attrs) in attributes {
        let Some(sd) = decision.services.get(key) else {
            continue;
        };
        for prefix in sd
            .prefixes
            .iter()
            .filter(|p| p.prefix_len() == p.max_prefix_len())
        {
            by_prefix.entry(*prefix).or_default().push(attrs);
        }
    }
    for (prefix, attrs) in by_prefix {
        for route in decision
            .route_tables_mut()
            .filter_map(|t| t.get_mut(&prefix))
        {
            add_service_attributes(&mut route.attributes, attrs.iter().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    //! The wiring semantics: accepted attributes + the pool's advertisement → what is sent.
    use super::*;
    use crate::decision::{RouteAttributes, decide};
    use crate::input::{Endpoint, Node, Service, TrafficPolicy};
    use ferrolb_config::Config;

    const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
bgp-communities:
  gold: 64512:100
address-pools:
- name: tenants
  protocol: bgp
  addresses: [203.0.113.0/28]
  bgp-advertisements:
  - localpref: 120
    communities: [64512:1, large:64512:0:1]
    allowed-service-communities: [gold, large:64512:1:2]
    allowed-service-localprefs: [50, 150-200]
- name: plain
  protocol: bgp
  addresses: [198.51.100.0/28]
  bgp-advertisements:
  - allowed-service-localprefs: [300]
";

    fn service(key: &str, ip: &str) -> Service {
        Service {
            key: key.into(),
            ingress_ips: vec![ip.parse().unwrap()],
            traffic_policy: TrafficPolicy::Local,
            requested_pool: None,
            labels: Default::default(),
            ours: true,
            endpoints: vec![Endpoint {
                node_name: Some("n1".into()),
                ready: true,
                serving: true,
                terminating: false,
            }],
        }
    }

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The attributes sent for each /32 after `decide` and the wiring, given each Service's
    /// annotations.
    fn wired(services: &[(&str, &str, BTreeMap<String, String>)]) -> Vec<RouteAttributes> {
        let config = Config::from_yaml(YAML).unwrap();
        let node = Node {
            name: "n1".into(),
            labels: BTreeMap::new(),
            network_unavailable: false,
        };
        let ac = AnnounceConfig::from_config(&config, &node);
        let inputs: Vec<Service> = services.iter().map(|(k, ip, _)| service(k, ip)).collect();
        let mut decision = decide(&node, &inputs, &ac);
        let accepted = accepted_service_attributes(
            &decision,
            &ac,
            &config.bgp_communities,
            services.iter().map(|(k, _, a)| (k.to_string(), a)),
        );
        apply_service_attributes(&mut decision, &accepted);
        services
            .iter()
            .map(|(_, ip, _)| {
                let prefix: ipnet::IpNet = format!("{ip}/32").parse().unwrap();
                decision.routes[&prefix].attributes.clone()
            })
            .collect()
    }

    fn c(high: u32, low: u32) -> Community {
        Community((high << 16) | low)
    }

    fn lc(global_admin: u32, local_data1: u32, local_data2: u32) -> LargeCommunity {
        LargeCommunity {
            global_admin,
            local_data1,
            local_data2,
        }
    }

    fn pool_defaults() -> RouteAttributes {
        RouteAttributes {
            local_pref: Some(120),
            communities: [c(64512, 1)].into(),
            large_communities: [lc(64512, 0, 1)].into(),
            as_path_prepend: None,
        }
    }

    #[test]
    fn accepted_communities_are_added_to_the_pools_and_local_pref_replaces_the_pools() {
        let got = wired(&[(
            "a/web",
            "203.0.113.5",
            ann(&[
                (COMMUNITIES_ANNOTATION, "gold"),
                (LARGE_COMMUNITIES_ANNOTATION, "64512:1:2"),
                (LOCAL_PREF_ANNOTATION, "50"),
            ]),
        )]);
        assert_eq!(
            got,
            [RouteAttributes {
                local_pref: Some(50),
                communities: [c(64512, 1), c(64512, 100)].into(),
                large_communities: [lc(64512, 0, 1), lc(64512, 1, 2)].into(),
                as_path_prepend: None,
            }]
        );
    }

    #[test]
    fn communities_alone_keep_the_pools_local_pref() {
        let got = wired(&[(
            "a/web",
            "203.0.113.5",
            ann(&[(COMMUNITIES_ANNOTATION, "64512:100")]),
        )]);
        let mut want = pool_defaults();
        want.communities.insert(c(64512, 100));
        assert_eq!(got, [want]);
    }

    #[test]
    fn a_refusal_of_any_value_leaves_exactly_the_pools_defaults() {
        for refused in [
            ann(&[(COMMUNITIES_ANNOTATION, "gold, 65535:666")]),
            ann(&[
                (COMMUNITIES_ANNOTATION, "gold"),
                (LOCAL_PREF_ANNOTATION, "abc"),
            ]),
            ann(&[
                (COMMUNITIES_ANNOTATION, "gold"),
                (LOCAL_PREF_ANNOTATION, "149"),
            ]),
            ann(&[(LOCAL_PREF_ANNOTATION, "")]),
            ann(&[(LARGE_COMMUNITIES_ANNOTATION, "1:2")]),
        ] {
            let got = wired(&[("a/web", "203.0.113.5", refused.clone())]);
            assert_eq!(got, [pool_defaults()], "{refused:?}");
        }
    }

    #[test]
    fn each_service_is_judged_by_its_own_pool_and_others_are_untouched() {
        let got = wired(&[
            (
                "a/web",
                "203.0.113.5",
                ann(&[(LOCAL_PREF_ANNOTATION, "300")]),
            ),
            (
                "b/api",
                "198.51.100.5",
                ann(&[(LOCAL_PREF_ANNOTATION, "300")]),
            ),
            ("c/none", "203.0.113.6", BTreeMap::new()),
        ]);
        // 300 is allowed by "plain" only; "plain" has no localpref of its own.
        assert_eq!(
            got,
            [
                pool_defaults(),
                RouteAttributes {
                    local_pref: Some(300),
                    ..RouteAttributes::default()
                },
                pool_defaults(),
            ]
        );
    }

    #[test]
    fn a_service_in_two_pools_needs_both_to_accept() {
        let config = Config::from_yaml(YAML).unwrap();
        let node = Node {
            name: "n1".into(),
            labels: BTreeMap::new(),
            network_unavailable: false,
        };
        let ac = AnnounceConfig::from_config(&config, &node);
        let mut svc = service("a/web", "203.0.113.5");
        svc.ingress_ips.push("198.51.100.5".parse().unwrap());
        let decision = decide(&node, &[svc], &ac);
        assert_eq!(decision.services["a/web"].announced_ips.len(), 2);
        let accepted = |lp: &str| {
            let a = ann(&[(LOCAL_PREF_ANNOTATION, lp)]);
            accepted_service_attributes(
                &decision,
                &ac,
                &config.bgp_communities,
                [("a/web".to_string(), &a)],
            )
        };
        // 300 only "plain" allows, 150 only "tenants": refused either way.
        assert!(accepted("300").is_empty());
        assert!(accepted("150").is_empty());
    }

    #[test]
    fn services_this_node_does_not_announce_get_nothing() {
        let config = Config::from_yaml(YAML).unwrap();
        let node = Node {
            name: "n2".into(),
            labels: BTreeMap::new(),
            network_unavailable: false,
        };
        let ac = AnnounceConfig::from_config(&config, &node);
        let decision = decide(&node, &[service("a/web", "203.0.113.5")], &ac);
        let a = ann(&[(LOCAL_PREF_ANNOTATION, "50")]);
        let accepted = accepted_service_attributes(
            &decision,
            &ac,
            &config.bgp_communities,
            [("a/web".to_string(), &a)],
        );
        assert!(accepted.is_empty());
    }
}
