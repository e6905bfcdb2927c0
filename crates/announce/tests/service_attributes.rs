//! Per-Service attributes: annotations checked against the pool's `allowed-service-*`, refused
//! with a reason and message (and the pool's defaults kept), or added to the Service's route.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::Config;
use std::collections::BTreeMap;

const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64512
bgp-communities:
  no-export: 65535:65281
  gold: 64512:100
  big: large:64512:9:9
address-pools:
- name: tenants
  protocol: bgp
  addresses: [203.0.113.0/28]
  bgp-advertisements:
  - localpref: 100
    communities: [64512:1]
    allowed-service-communities: [gold, 64512:200, large:64512:1:2, big]
    allowed-service-localprefs: [50, 150-200]
  - aggregation-length: 28
    communities: [64512:28]
- name: locked
  protocol: bgp
  addresses: [198.51.100.0/28]
";

fn setup() -> (Config, AnnounceConfig) {
    let config = Config::from_yaml(YAML).unwrap();
    let ac = AnnounceConfig::from_config(&config, &node("n1"));
    (config, ac)
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(pool: &str, pairs: &[(&str, &str)]) -> Result<ServiceAttributes, AttributeRefusal> {
    let (config, ac) = setup();
    let pool = ac.pools.iter().find(|p| p.name == pool).unwrap();
    service_attributes(&annotations(pairs), pool, &config.bgp_communities)
}

#[test]
fn permitted_values_and_aliases_are_accepted() {
    let got = check(
        "tenants",
        &[
            (COMMUNITIES_ANNOTATION, "gold, 64512:200"),
            (LARGE_COMMUNITIES_ANNOTATION, "64512:1:2"),
            (LOCAL_PREF_ANNOTATION, "175"),
        ],
    )
    .unwrap();
    assert_eq!(
        got,
        ServiceAttributes {
            local_pref: Some(175),
            communities: [
                Community((64512 << 16) | 100),
                Community((64512 << 16) | 200)
            ]
            .into(),
            large_communities: [LargeCommunity {
                global_admin: 64512,
                local_data1: 1,
                local_data2: 2
            }]
            .into(),
            as_path_prepend: None,
        }
    );
    // An alias for a large community may be given in the communities annotation.
    let big = check("tenants", &[(COMMUNITIES_ANNOTATION, "big")]).unwrap();
    assert_eq!(big.large_communities.len(), 1);
    assert!(check("tenants", &[]).unwrap().is_empty());
    assert!(check("locked", &[("unrelated", "x")]).unwrap().is_empty());
}

#[test]
fn a_forbidden_community_is_refused_with_a_reason_and_message() {
    let r = check(
        "tenants",
        &[
            (COMMUNITIES_ANNOTATION, "gold,no-export"),
            (LOCAL_PREF_ANNOTATION, "150"),
        ],
    )
    .unwrap_err();
    assert_eq!(r.reason(), "CommunityNotAllowed");
    assert_eq!(
        r.message(),
        "ferrolb.io/bgp-communities: community 65535:65281 is not in allowed-service-communities \
         of pool \"tenants\"; announcing with the pool's attributes instead"
    );
}

#[test]
fn invalid_values_are_refused_and_every_problem_is_reported() {
    let r = check(
        "tenants",
        &[
            (COMMUNITIES_ANNOTATION, "silver, 64512:70000, 1:2:3"),
            (LARGE_COMMUNITIES_ANNOTATION, "64512:1"),
            (LOCAL_PREF_ANNOTATION, "-5"),
        ],
    )
    .unwrap_err();
    let reasons: Vec<&str> = r.problems.iter().map(AttributeProblem::reason).collect();
    assert_eq!(
        reasons,
        [
            "InvalidCommunity",
            "InvalidCommunity",
            "InvalidCommunity",
            "InvalidCommunity",
            "InvalidLocalPref"
        ]
    );
    assert_eq!(r.reason(), "InvalidCommunity");
    assert_eq!(
        r.problems[4].to_string(),
        "ferrolb.io/bgp-local-pref: \"-5\" is not a number from 0 to 4294967295"
    );
}

#[test]
fn a_local_pref_outside_the_allowances_is_refused() {
    for (value, reason) in [
        ("100", "LocalPrefNotAllowed"),
        ("201", "LocalPrefNotAllowed"),
        ("4294967296", "InvalidLocalPref"),
        ("high", "InvalidLocalPref"),
        ("", "InvalidLocalPref"),
    ] {
        let r = check("tenants", &[(LOCAL_PREF_ANNOTATION, value)]).unwrap_err();
        assert_eq!(r.reason(), reason, "{value}");
    }
    for value in ["50", "150", "200", " 160 "] {
        assert!(
            check("tenants", &[(LOCAL_PREF_ANNOTATION, value)]).is_ok(),
            "{value}"
        );
    }
    // A pool that allows nothing refuses everything.
    let r = check("locked", &[(LOCAL_PREF_ANNOTATION, "150")]).unwrap_err();
    assert_eq!(
        r.problems,
        [AttributeProblem::LocalPrefNotAllowed {
            value: 150,
            pool: "locked".into()
        }]
    );
}

#[test]
fn accepted_attributes_go_on_the_host_route_and_refused_ones_leave_the_pool_defaults() {
    let (config, ac) = setup();
    let services = vec![
        service("team-a/web", &["203.0.113.5"], vec![ready("n1")]),
        service("team-b/api", &["203.0.113.6"], vec![ready("n1")]),
    ];
    let mut d = decide(&node("n1"), &services, &ac);
    let pool = &ac.pools[0];
    let mut accepted = BTreeMap::new();
    let web = annotations(&[
        (COMMUNITIES_ANNOTATION, "gold"),
        (LOCAL_PREF_ANNOTATION, "50"),
    ]);
    let api = annotations(&[(COMMUNITIES_ANNOTATION, "no-export")]);
    for (key, ann) in [("team-a/web", &web), ("team-b/api", &api)] {
        if let Ok(attrs) = service_attributes(ann, pool, &config.bgp_communities) {
            accepted.insert(key.to_string(), attrs);
        }
    }
    assert_eq!(accepted.keys().collect::<Vec<_>>(), ["team-a/web"]);
    let pool_defaults = d.routes[&net("203.0.113.6/32")].attributes.clone();
    apply_service_attributes(&mut d, &accepted);
    let web_route = &d.routes[&net("203.0.113.5/32")].attributes;
    assert_eq!(web_route.local_pref, Some(50));
    assert_eq!(
        web_route.communities,
        [Community((64512 << 16) | 1), Community((64512 << 16) | 100)].into()
    );
    // The refused Service keeps the pool's attributes; the shared aggregate is untouched.
    assert_eq!(d.routes[&net("203.0.113.6/32")].attributes, pool_defaults);
    assert_eq!(pool_defaults.local_pref, Some(100));
    assert_eq!(
        d.routes[&net("203.0.113.0/28")].attributes.communities,
        [Community((64512 << 16) | 28)].into()
    );
    // Level-triggered: applying again changes nothing.
    let once = d.clone();
    apply_service_attributes(&mut d, &accepted);
    assert_eq!(d, once);
}

#[test]
fn services_sharing_an_ip_get_the_highest_local_pref() {
    let (_, ac) = setup();
    let services = vec![
        service("a/x", &["203.0.113.9"], vec![ready("n1")]),
        service("b/y", &["203.0.113.9"], vec![ready("n1")]),
    ];
    let mut d = decide(&node("n1"), &services, &ac);
    let lp = |v| ServiceAttributes {
        local_pref: Some(v),
        ..ServiceAttributes::default()
    };
    let accepted: BTreeMap<String, ServiceAttributes> =
        [("a/x".to_string(), lp(200)), ("b/y".to_string(), lp(150))].into();
    apply_service_attributes(&mut d, &accepted);
    assert_eq!(
        d.routes[&net("203.0.113.9/32")].attributes.local_pref,
        Some(200)
    );
}
