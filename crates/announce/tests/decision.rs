//! The announce decision, one test per rule of issue 6.

mod common;

use common::*;
use ferrolb_announce::*;

#[test]
fn local_service_is_announced_only_from_nodes_with_a_ready_endpoint() {
    let svc = service(
        "default/whoami",
        &["203.0.113.5"],
        vec![ready("node-1"), ready("node-1"), ready("node-3")],
    );
    let cfg = config();

    let d1 = decide(&node("node-1"), std::slice::from_ref(&svc), &cfg);
    assert_eq!(prefixes(&d1), ["203.0.113.5/32"]);
    let sd = &d1.services["default/whoami"];
    assert!(sd.announce);
    assert_eq!(sd.local_endpoints, 2);
    assert_eq!(sd.announced_ips, [ip("203.0.113.5")]);
    assert_eq!(sd.prefixes, [net("203.0.113.5/32")]);
    assert!(sd.reasons.contains(&Reason::ReadyHere {
        node: "node-1".into(),
        count: 2
    }));
    let route = &d1.routes[&net("203.0.113.5/32")];
    assert_eq!(route.attributes, RouteAttributes::default());
    assert_eq!(route.covered_ips, [ip("203.0.113.5")]);

    let d2 = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert!(d2.routes.is_empty());
    let sd = &d2.services["default/whoami"];
    assert!(!sd.announce);
    assert_eq!(sd.local_endpoints, 0);
    assert!(sd.reasons.contains(&Reason::NoReadyHere {
        ready_on: vec!["node-1".into(), "node-3".into()],
        more_nodes: 0,
        without_node: 0
    }));
}

#[test]
fn cluster_service_follows_the_same_endpoint_rule() {
    let mut svc = service("default/web", &["203.0.113.6"], vec![ready("node-1")]);
    svc.traffic_policy = TrafficPolicy::Cluster;
    let cfg = config();
    assert_eq!(
        prefixes(&decide(&node("node-1"), std::slice::from_ref(&svc), &cfg)),
        ["203.0.113.6/32"]
    );
    let d2 = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert!(d2.routes.is_empty());
    assert!(!d2.services["default/web"].announce);
}

#[test]
fn not_ready_endpoints_do_not_count_while_others_are_ready() {
    let svc = service(
        "default/whoami",
        &["203.0.113.5"],
        vec![starting("node-1"), terminating("node-1"), ready("node-2")],
    );
    let d = decide(&node("node-1"), &[svc], &config());
    assert!(d.routes.is_empty());
    let sd = &d.services["default/whoami"];
    assert!(!sd.reasons.contains(&Reason::FallbackToServing));
    assert_eq!(sd.local_endpoints, 0);
}

/// A one-replica Deployment's pod moves from node-1 to node-2 during a rolling update.
#[test]
fn rolling_update_moves_the_announcement_without_a_gap() {
    let cfg = config();
    let at = |eps: Vec<Endpoint>| -> (bool, bool, Vec<Reason>) {
        let svc = service("default/whoami", &["203.0.113.5"], eps);
        let d1 = decide(&node("node-1"), std::slice::from_ref(&svc), &cfg);
        let d2 = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
        (
            d1.services["default/whoami"].announce,
            d2.services["default/whoami"].announce,
            d1.services["default/whoami"].reasons.clone(),
        )
    };

    // Old pod ready on node-1, new pod starting on node-2.
    let (n1, n2, _) = at(vec![ready("node-1"), starting("node-2")]);
    assert_eq!((n1, n2), (true, false));

    // Old pod terminating (still serving) and the new one not ready yet: fall back.
    let (n1, n2, reasons) = at(vec![terminating("node-1"), starting("node-2")]);
    assert_eq!((n1, n2), (true, false));
    assert!(reasons.contains(&Reason::FallbackToServing));
    assert!(reasons.contains(&Reason::ServingHere {
        node: "node-1".into(),
        count: 1
    }));

    // New pod ready: node-2 takes over, node-1 withdraws although still serving.
    let (n1, n2, reasons) = at(vec![terminating("node-1"), ready("node-2")]);
    assert_eq!((n1, n2), (false, true));
    assert!(reasons.contains(&Reason::NoReadyHere {
        ready_on: vec!["node-2".into()],
        more_nodes: 0,
        without_node: 0
    }));

    // Old pod gone.
    let (n1, n2, _) = at(vec![ready("node-2")]);
    assert_eq!((n1, n2), (false, true));
}

#[test]
fn fallback_counts_only_serving_terminating_endpoints() {
    let cfg = config();
    let svc = service(
        "default/whoami",
        &["203.0.113.5"],
        vec![
            terminating("node-1"),
            terminating("node-1"),
            dying("node-2"),
        ],
    );
    let d1 = decide(&node("node-1"), std::slice::from_ref(&svc), &cfg);
    assert_eq!(d1.services["default/whoami"].local_endpoints, 2);
    assert_eq!(prefixes(&d1), ["203.0.113.5/32"]);

    let d2 = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert!(d2.routes.is_empty());
    assert!(
        d2.services["default/whoami"]
            .reasons
            .contains(&Reason::NoServingHere {
                serving_on: vec!["node-1".into()],
                more_nodes: 0,
                without_node: 0
            })
    );
}

#[test]
fn a_service_with_no_usable_endpoint_is_announced_nowhere() {
    let cfg = config();
    for eps in [vec![], vec![starting("node-1"), dying("node-1")]] {
        let svc = service("default/whoami", &["203.0.113.5"], eps);
        let d = decide(&node("node-1"), &[svc], &cfg);
        assert!(d.routes.is_empty());
        let sd = &d.services["default/whoami"];
        assert!(!sd.announce);
        assert!(sd.reasons.contains(&Reason::NoEndpoints));
    }
}

#[test]
fn ready_endpoints_without_a_node_name_count_only_elsewhere() {
    let mut ep = ready("x");
    ep.node_name = None;
    let svc = service("default/whoami", &["203.0.113.5"], vec![ep]);
    let d = decide(&node("node-1"), &[svc], &config());
    assert!(d.routes.is_empty());
    assert!(
        d.services["default/whoami"]
            .reasons
            .contains(&Reason::NoReadyHere {
                ready_on: vec![],
                more_nodes: 0,
                without_node: 1
            })
    );
}

fn all_nodes_config() -> AnnounceConfig {
    let mut cfg = config();
    cfg.pools[0].announce_from = AnnounceFrom::AllNodes;
    cfg
}

#[test]
fn all_nodes_pool_announces_cluster_services_from_every_eligible_node() {
    let cfg = all_nodes_config();
    let mut svc = service("default/web", &["203.0.113.7"], vec![ready("node-1")]);
    svc.traffic_policy = TrafficPolicy::Cluster;

    let d = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.7/32"]);
    let sd = &d.services["default/web"];
    assert_eq!(sd.local_endpoints, 0);
    assert!(sd.reasons.contains(&Reason::AnnounceFromAllNodes {
        pool: "v4".into(),
        endpoints: 1
    }));
    assert!(
        !sd.reasons
            .iter()
            .any(|r| matches!(r, Reason::NoReadyHere { .. }))
    );

    // Still bound by node eligibility.
    let mut excluded = node("node-2");
    excluded.network_unavailable = true;
    assert!(
        decide(&excluded, std::slice::from_ref(&svc), &cfg)
            .routes
            .is_empty()
    );

    // No endpoint anywhere: nobody announces.
    svc.endpoints = vec![starting("node-1")];
    let d = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert!(d.routes.is_empty());
    assert!(
        d.services["default/web"]
            .reasons
            .contains(&Reason::NoEndpoints)
    );

    // Only terminating endpoints: the fallback keeps every node announcing.
    svc.endpoints = vec![terminating("node-1")];
    let d = decide(&node("node-2"), std::slice::from_ref(&svc), &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.7/32"]);
}

#[test]
fn all_nodes_pool_does_not_apply_to_local_services() {
    let cfg = all_nodes_config();
    let svc = service("default/whoami", &["203.0.113.7"], vec![ready("node-1")]);
    let d = decide(&node("node-2"), &[svc], &cfg);
    assert!(d.routes.is_empty());
    let sd = &d.services["default/whoami"];
    assert!(
        sd.reasons
            .contains(&Reason::AllNodesIgnoredForLocal { pool: "v4".into() })
    );
    assert!(
        sd.reasons
            .iter()
            .any(|r| matches!(r, Reason::NoReadyHere { .. }))
    );
}

#[test]
fn excluded_node_announces_nothing_whatever_the_label_value() {
    let svc = service("default/whoami", &["203.0.113.5"], vec![ready("node-1")]);
    for value in ["", "true", "false"] {
        let mut n = node("node-1");
        n.labels.insert(EXCLUDE_LABEL.into(), value.into());
        let d = decide(&n, std::slice::from_ref(&svc), &config());
        assert!(d.routes.is_empty());
        assert!(d.node_reasons.contains(&Reason::NodeExcluded));
        let sd = &d.services["default/whoami"];
        assert!(!sd.announce);
        // The endpoint count stays known for the explanation.
        assert_eq!(sd.local_endpoints, 1);
    }
}

#[test]
fn node_with_network_unavailable_announces_nothing() {
    let svc = service("default/whoami", &["203.0.113.5"], vec![ready("node-1")]);
    let mut n = node("node-1");
    n.network_unavailable = true;
    let d = decide(&n, &[svc], &config());
    assert!(d.routes.is_empty());
    assert_eq!(d.node_reasons[0], Reason::NodeNetworkUnavailable);
    assert!(!d.services["default/whoami"].announce);
}

#[test]
fn peers_get_the_routes_only_when_their_node_selectors_match() {
    let svc = service("default/whoami", &["203.0.113.5"], vec![ready("node-1")]);
    let mut cfg = config();
    cfg.peers[1].selects_node = false;
    let d = decide(&node("node-1"), std::slice::from_ref(&svc), &cfg);
    assert_eq!(
        d.selected_peers().collect::<Vec<_>>(),
        [peer_key("198.18.0.1")]
    );
    assert_eq!(
        d.routes_for(&peer_key("198.18.0.1"))
            .map(|r| r.keys().copied().collect::<Vec<_>>()),
        Some(vec![net("203.0.113.5/32")])
    );
    assert_eq!(d.routes_for(&peer_key("198.18.0.2")), None);
    assert_eq!(d.routes_for(&peer_key("198.18.0.9")), None);
    assert!(d.node_reasons.contains(&Reason::PeerDoesNotSelectNode {
        peer: peer_key("198.18.0.2")
    }));

    // No peer selects the node: nothing is announced.
    cfg.peers[0].selects_node = false;
    let d = decide(&node("node-1"), std::slice::from_ref(&svc), &cfg);
    assert!(d.routes.is_empty());
    assert!(d.node_reasons.contains(&Reason::NoPeerSelectsNode));
    assert!(!d.services["default/whoami"].announce);
}

#[test]
fn no_peer_configured_means_nothing_announced() {
    let svc = service("default/whoami", &["203.0.113.5"], vec![ready("node-1")]);
    let mut cfg = config();
    cfg.peers.clear();
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert!(d.routes.is_empty());
    assert_eq!(d.node_reasons, [Reason::NoPeersConfigured]);
}

#[test]
fn an_ip_outside_every_pool_is_never_announced() {
    let svc = service(
        "default/rogue",
        &["198.51.100.9", "203.0.113.5"],
        vec![ready("node-1")],
    );
    let d = decide(&node("node-1"), &[svc], &config());
    assert_eq!(prefixes(&d), ["203.0.113.5/32"]);
    let sd = &d.services["default/rogue"];
    assert_eq!(sd.announced_ips, [ip("203.0.113.5")]);
    assert!(sd.reasons.contains(&Reason::IpNotInPool {
        ip: ip("198.51.100.9")
    }));

    let svc = service("default/rogue", &["198.51.100.9"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &config());
    assert!(d.routes.is_empty());
    assert!(!d.services["default/rogue"].announce);
}

#[test]
fn services_of_another_class_are_ignored() {
    let mut svc = service("default/other", &["203.0.113.5"], vec![ready("node-1")]);
    svc.ours = false;
    let d = decide(&node("node-1"), &[svc], &config());
    assert!(d.routes.is_empty());
    assert_eq!(d.services["default/other"].reasons, [Reason::NotOurClass]);
}

#[test]
fn a_service_without_ingress_ip_says_so() {
    let svc = service("default/pending", &[], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &config());
    assert!(d.routes.is_empty());
    assert!(
        d.services["default/pending"]
            .reasons
            .contains(&Reason::NoIngressIp)
    );
}

#[test]
fn ipv6_and_dual_stack_services_are_announced_as_host_routes() {
    let svc = service(
        "default/dual",
        &["203.0.113.5", "2001:db8:1::5"],
        vec![ready("node-1")],
    );
    let d = decide(&node("node-1"), &[svc], &config());
    assert_eq!(prefixes(&d), ["203.0.113.5/32", "2001:db8:1::5/128"]);
    assert_eq!(
        d.services["default/dual"].announced_ips,
        [ip("203.0.113.5"), ip("2001:db8:1::5")]
    );
}

fn aggregating_config() -> AnnounceConfig {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![
        Advertisement {
            local_pref: Some(200),
            communities: vec![Community(0xfde8_0001)],
            ..Advertisement::default()
        },
        Advertisement {
            aggregation_length: 24,
            large_communities: vec![LargeCommunity {
                global_admin: 64500,
                local_data1: 1,
                local_data2: 2,
            }],
            ..Advertisement::default()
        },
    ];
    cfg.pools[1].advertisements = vec![Advertisement {
        aggregation_length_v6: 120,
        ..Advertisement::default()
    }];
    cfg
}

#[test]
fn each_advertisement_yields_a_route_with_its_own_attributes() {
    let cfg = aggregating_config();
    let svc = service("default/a", &["203.0.113.5"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.0/24", "203.0.113.5/32"]);
    let host = &d.routes[&net("203.0.113.5/32")].attributes;
    assert_eq!(host.local_pref, Some(200));
    assert_eq!(
        host.communities
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["65000:1"]
    );
    assert!(host.large_communities.is_empty());
    let agg = &d.routes[&net("203.0.113.0/24")].attributes;
    assert_eq!(agg.local_pref, None);
    assert!(agg.communities.is_empty());
    assert_eq!(
        agg.large_communities
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["64500:1:2"]
    );
    assert!(
        d.services["default/a"]
            .reasons
            .contains(&Reason::Aggregated {
                ip: ip("203.0.113.5"),
                prefix: net("203.0.113.0/24")
            })
    );
}

#[test]
fn the_aggregate_is_announced_while_any_covered_ip_is() {
    let cfg = aggregating_config();
    let a = |eps| service("default/a", &["203.0.113.5"], eps);
    let b = |eps| service("default/b", &["203.0.113.77"], eps);
    let n = node("node-1");

    let d = decide(
        &n,
        &[a(vec![ready("node-1")]), b(vec![ready("node-1")])],
        &cfg,
    );
    assert_eq!(d.announced_ips(), [ip("203.0.113.5"), ip("203.0.113.77")]);
    let agg = &d.routes[&net("203.0.113.0/24")];
    assert_eq!(agg.covered_ips, [ip("203.0.113.5"), ip("203.0.113.77")]);
    assert_eq!(d.routes.len(), 3);

    let d = decide(&n, &[a(vec![]), b(vec![ready("node-1")])], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.0/24", "203.0.113.77/32"]);
    assert_eq!(
        d.routes[&net("203.0.113.0/24")].covered_ips,
        [ip("203.0.113.77")]
    );

    let d = decide(&n, &[a(vec![]), b(vec![ready("node-1")])], &cfg);
    assert_eq!(d.announced_ips(), [ip("203.0.113.77")]);

    let d = decide(&n, &[a(vec![]), b(vec![ready("node-2")])], &cfg);
    assert!(d.routes.is_empty());
    assert!(d.announced_ips().is_empty());
}

#[test]
fn ipv6_aggregation_uses_aggregation_length_v6() {
    let cfg = aggregating_config();
    let svc = service("default/v6", &["2001:db8:1::42"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(prefixes(&d), ["2001:db8:1::/120"]);
}

#[test]
fn identical_prefixes_merge_their_attributes() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![
        Advertisement {
            local_pref: Some(100),
            communities: vec![Community(1)],
            ..Advertisement::default()
        },
        Advertisement {
            local_pref: Some(300),
            communities: vec![Community(2), Community(1)],
            ..Advertisement::default()
        },
    ];
    let svc = service("default/a", &["203.0.113.5"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.5/32"]);
    let attrs = &d.routes[&net("203.0.113.5/32")].attributes;
    assert_eq!(attrs.local_pref, Some(300));
    assert_eq!(
        attrs.communities.iter().copied().collect::<Vec<_>>(),
        [Community(1), Community(2)]
    );
    assert_eq!(d.services["default/a"].prefixes, [net("203.0.113.5/32")]);
}

#[test]
fn a_shared_ip_is_announced_while_either_service_qualifies() {
    let a = service("default/a", &["203.0.113.5"], vec![ready("node-1")]);
    let b = service("default/b", &["203.0.113.5"], vec![ready("node-2")]);
    let d = decide(&node("node-1"), &[a, b], &config());
    assert_eq!(prefixes(&d), ["203.0.113.5/32"]);
    let route = &d.routes[&net("203.0.113.5/32")];
    assert_eq!(route.covered_ips, [ip("203.0.113.5")]);
    assert_eq!(d.services["default/a"].prefixes, [net("203.0.113.5/32")]);
    assert!(d.services["default/b"].prefixes.is_empty());
    assert!(d.services["default/a"].announce);
    assert!(!d.services["default/b"].announce);
}

#[test]
fn an_aggregation_length_too_long_for_the_family_is_skipped_with_a_reason() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![
        Advertisement {
            aggregation_length: 33,
            ..Advertisement::default()
        },
        Advertisement::default(),
    ];
    let svc = service("default/a", &["203.0.113.5"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.5/32"]);
    assert!(
        d.services["default/a"]
            .reasons
            .contains(&Reason::InvalidAggregationLength {
                ip: ip("203.0.113.5"),
                pool: "v4".into(),
                length: 33
            })
    );
}

#[test]
fn the_pool_containing_the_ip_applies_over_the_annotation() {
    let mut cfg = config();
    cfg.pools.push(pool("other", &["198.51.100.0/24"]));
    let mut svc = service("default/a", &["203.0.113.5"], vec![ready("node-1")]);
    svc.requested_pool = Some("other".into());
    let d = decide(&node("node-1"), &[svc], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.5/32"]);
    assert!(
        d.services["default/a"]
            .reasons
            .contains(&Reason::PoolAnnotationMismatch {
                ip: ip("203.0.113.5"),
                requested: "other".into(),
                actual: "v4".into()
            })
    );
}

#[test]
fn deciding_twice_gives_the_same_decision() {
    let cfg = aggregating_config();
    let svcs = vec![
        service("default/a", &["203.0.113.5"], vec![ready("node-1")]),
        service("default/b", &["2001:db8:1::5"], vec![terminating("node-1")]),
    ];
    let n = node("node-1");
    assert_eq!(decide(&n, &svcs, &cfg), decide(&n, &svcs, &cfg));
}

#[test]
fn many_endpoint_nodes_are_named_up_to_a_limit_and_counted_beyond() {
    let eps = (10..30).map(|i| ready(&format!("node-{i}"))).collect();
    let svc = service("default/big", &["203.0.113.5"], eps);
    let d = decide(&node("node-1"), &[svc], &config());
    let named: Vec<std::sync::Arc<str>> = (10..18).map(|i| format!("node-{i}").into()).collect();
    assert!(
        d.services["default/big"]
            .reasons
            .contains(&Reason::NoReadyHere {
                ready_on: named,
                more_nodes: 12,
                without_node: 0
            })
    );
}

/// `endpoint_reason` (for readers without the node's view, `ferrolb status`) gives exactly the endpoint reason
/// `decide` gives, for ready endpoints, the serving-terminating fallback, and none at all.
#[test]
fn endpoint_reason_is_the_decisions_endpoint_reason() {
    let cases = [
        vec![ready("node-1"), ready("node-1"), ready("node-3")],
        vec![terminating("node-1"), starting("node-2")],
        vec![starting("node-1")],
        vec![],
    ];
    let endpoint_fact = |r: &&Reason| {
        matches!(
            r,
            Reason::ReadyHere { .. }
                | Reason::NoReadyHere { .. }
                | Reason::ServingHere { .. }
                | Reason::NoServingHere { .. }
                | Reason::NoEndpoints
        )
    };
    let mut seen = Vec::new();
    for endpoints in cases {
        let svc = service("default/whoami", &["203.0.113.5"], endpoints);
        for n in ["node-1", "node-2"] {
            let d = decide(&node(n), std::slice::from_ref(&svc), &config());
            let from_decision: Vec<&Reason> = d.services["default/whoami"]
                .reasons
                .iter()
                .filter(endpoint_fact)
                .collect();
            let got = endpoints::endpoint_reason(n, &svc);
            assert_eq!(from_decision, [&got], "{n}");
            seen.push(got.to_string());
        }
    }
    assert_eq!(
        seen,
        [
            "node-1 hosts 2 ready endpoints",
            "no ready endpoint on this node (ready on node-1, node-3)",
            "node-1 hosts 1 serving-terminating endpoint",
            "no serving endpoint on this node (serving on node-1)",
            "the Service has no ready or serving endpoint anywhere",
            "the Service has no ready or serving endpoint anywhere",
            "the Service has no ready or serving endpoint anywhere",
            "the Service has no ready or serving endpoint anywhere",
        ]
    );
}
