//! Properties of the decision over random clusters.

mod common;

use common::*;
use ferrolb_announce::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Addresses inside and around the pools of [`cluster_config`].
fn service_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..=255).prop_map(|b| IpAddr::V4(Ipv4Addr::new(203, 0, 113, b))),
        (0u8..=255).prop_map(|b| IpAddr::V4(Ipv4Addr::new(198, 51, 100, b))),
        (0u16..=0x1ff).prop_map(|b| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, b))),
    ]
}

fn service_strategy() -> impl Strategy<Value = Service> {
    (
        0u32..1000,
        prop::collection::vec(service_ip(), 0..3),
        any::<bool>(),
        prop::bool::weighted(0.9),
        prop::collection::vec(endpoint_strategy(), 0..6),
    )
        .prop_map(|(id, ips, local, ours, endpoints)| Service {
            key: format!("ns/svc-{id}"),
            ingress_ips: ips,
            traffic_policy: if local {
                TrafficPolicy::Local
            } else {
                TrafficPolicy::Cluster
            },
            requested_pool: None,
            labels: Default::default(),
            ours,
            endpoints,
        })
}

/// A /26 v4 pool aggregating at /28, a range pool with announce-from all-nodes, a v6 pool
/// aggregating at /124; two peers whose selection is random.
fn cluster_config() -> impl Strategy<Value = AnnounceConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(p1, p2, all_nodes)| {
        let mut agg = pool("agg", &["203.0.113.0/26"]);
        agg.advertisements = vec![
            Advertisement::default(),
            Advertisement {
                aggregation_length: 28,
                local_pref: Some(150),
                ..Advertisement::default()
            },
        ];
        let mut ranged = pool("ranged", &[]);
        ranged.addresses = vec![AddressRange {
            first: ip("203.0.113.100"),
            last: ip("203.0.113.120"),
        }];
        if all_nodes {
            ranged.announce_from = AnnounceFrom::AllNodes;
        }
        let mut v6 = pool("v6", &["2001:db8:1::/120"]);
        v6.advertisements = vec![Advertisement {
            aggregation_length_v6: 124,
            ..Advertisement::default()
        }];
        AnnounceConfig {
            pools: vec![agg, ranged, v6],
            peers: vec![peer("198.18.0.1", p1), peer("198.18.0.2", p2)],
        }
    })
}

fn node_strategy() -> impl Strategy<Value = Node> {
    (
        0..NODES.len(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(i, excluded, unavailable)| {
            let mut n = node(NODES[i]);
            if excluded {
                n.labels.insert(EXCLUDE_LABEL.into(), String::new());
            }
            n.network_unavailable = unavailable;
            n
        })
}

fn usable_here(node: &str, svc: &Service) -> bool {
    let any_ready = svc.endpoints.iter().any(|e| e.ready);
    svc.endpoints.iter().any(|e| {
        e.node_name.as_deref() == Some(node)
            && if any_ready {
                e.ready
            } else {
                e.serving && e.terminating
            }
    })
}

proptest! {
    #[test]
    fn every_announced_ip_is_inside_a_pool_and_its_prefix(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let d = decide(&n, &svcs, &cfg);
        for (prefix, route) in &d.routes {
            prop_assert!(!route.covered_ips.is_empty());
            prop_assert!(route.covered_ips.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
            for ip in &route.covered_ips {
                prop_assert!(cfg.pool_of(*ip).is_some(), "{ip} announced outside the pools");
                prop_assert!(prefix.contains(ip));
            }
        }
        for sd in d.services.values() {
            for ip in &sd.announced_ips {
                prop_assert!(cfg.pool_of(*ip).is_some());
            }
            prop_assert_eq!(sd.announce, !sd.announced_ips.is_empty());
        }
    }

    #[test]
    fn a_node_without_usable_endpoints_announces_only_all_nodes_cluster_services(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let d = decide(&n, &svcs, &cfg);
        for svc in &svcs {
            if usable_here(&n.name, svc) {
                continue;
            }
            let Some(sd) = d.services.get(&svc.key) else { continue };
            // Keys may repeat in random input; the last Service with the key wins.
            if svcs.iter().rev().find(|s| s.key == svc.key) != Some(svc) {
                continue;
            }
            for ip in &sd.announced_ips {
                let pool = cfg.pool_of(*ip).unwrap();
                prop_assert_eq!(pool.announce_from, AnnounceFrom::AllNodes);
                prop_assert_eq!(svc.traffic_policy, TrafficPolicy::Cluster);
            }
        }
    }

    #[test]
    fn an_ineligible_or_unpeered_node_announces_nothing(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let d = decide(&n, &svcs, &cfg);
        let eligible = !n.labels.contains_key(EXCLUDE_LABEL) && !n.network_unavailable;
        let peered = cfg.peers.iter().any(|p| p.selects_node);
        if !(eligible && peered) {
            prop_assert!(d.routes.is_empty());
            prop_assert!(d.services.values().all(|s| !s.announce));
        }
    }

    #[test]
    fn routes_do_not_depend_on_service_order(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        // Distinct keys, so that the per-Service map is comparable too.
        let mut svcs = svcs;
        for (i, s) in svcs.iter_mut().enumerate() {
            s.key = format!("ns/svc-{i}");
        }
        let forward = decide(&n, &svcs, &cfg);
        svcs.reverse();
        let backward = decide(&n, &svcs, &cfg);
        prop_assert_eq!(&forward.routes, &backward.routes);
        prop_assert_eq!(&forward.services, &backward.services);
    }
    #[test]
    fn an_eligible_node_with_usable_endpoints_announces_every_pooled_ip(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let mut svcs = svcs;
        for (i, s) in svcs.iter_mut().enumerate() {
            s.key = format!("ns/svc-{i}");
        }
        let d = decide(&n, &svcs, &cfg);
        let eligible = !n.labels.contains_key(EXCLUDE_LABEL) && !n.network_unavailable;
        let peered = cfg.peers.iter().any(|p| p.selects_node);
        for svc in &svcs {
            if !(eligible && peered && svc.ours && usable_here(&n.name, svc)) {
                continue;
            }
            let sd = &d.services[&svc.key];
            for ip in &svc.ingress_ips {
                let pooled = cfg.pool_of(*ip).is_some();
                prop_assert_eq!(sd.announced_ips.contains(ip), pooled, "{}", ip);
                if pooled {
                    prop_assert!(d.routes.values().any(|r| r.covered_ips.contains(ip)));
                }
            }
        }
    }
}

/// [`cluster_config`] with peer names `a` and `b`, each advertisement limited to a random subset
/// of {a, b, c} (empty: every peer), and peers that carry one family or both.
fn restricted_config() -> impl Strategy<Value = AnnounceConfig> {
    (
        cluster_config(),
        prop::collection::vec(0u8..8, 3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut cfg, limits, dual_a, dual_b)| {
            let ads = cfg.pools.iter_mut().flat_map(|p| &mut p.advertisements);
            for (ad, mask) in ads.zip(limits) {
                ad.peers = ["a", "b", "c"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            for (p, (name, dual)) in cfg.peers.iter_mut().zip([("a", dual_a), ("b", dual_b)]) {
                p.name = Some(name.into());
                p.dual_stack = dual;
            }
            cfg
        })
}

/// The routes `peer` must get, computed the slow way: decide with only the advertisements
/// that select it (a pool left with none is not announced), then drop the families its
/// session does not carry.
fn routes_one_peer_at_a_time(
    n: &Node,
    svcs: &[Service],
    cfg: &AnnounceConfig,
    peer: &Peer,
) -> std::collections::BTreeMap<ipnet::IpNet, Route> {
    let mut own = cfg.clone();
    for pool in &mut own.pools {
        if pool.advertisements.is_empty() {
            continue;
        }
        pool.advertisements
            .retain(|a| a.selects_peer(peer.name.as_deref()));
        pool.announced = !pool.advertisements.is_empty();
        for a in &mut pool.advertisements {
            a.peers.clear();
        }
    }
    decide(n, svcs, &own)
        .routes
        .into_iter()
        .filter(|(prefix, _)| peer.carries(prefix))
        .collect()
}

proptest! {
    #[test]
    fn without_restrictions_every_selected_peer_gets_every_route(
        n in node_strategy(),
        cfg in cluster_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let d = decide(&n, &svcs, &cfg);
        prop_assert!(d.tables.is_empty());
        for p in &cfg.peers {
            let want = p.selects_node.then_some(&d.routes);
            prop_assert_eq!(d.routes_for(&p.key), want);
        }
    }

    #[test]
    fn each_peer_gets_the_routes_of_the_advertisements_selecting_it(
        n in node_strategy(),
        cfg in restricted_config(),
        svcs in prop::collection::vec(service_strategy(), 0..12),
    ) {
        let d = decide(&n, &svcs, &cfg);
        for p in &cfg.peers {
            let got = d.routes_for(&p.key);
            if p.selects_node {
                let want = routes_one_peer_at_a_time(&n, &svcs, &cfg, p);
                prop_assert_eq!(got, Some(&want), "peer {:?}", p.name);
            } else {
                prop_assert_eq!(got, None);
            }
        }
        // The union holds every peer's prefixes.
        for p in &d.peers {
            if let Some(routes) = d.routes_for(&p.peer) {
                prop_assert!(routes.keys().all(|k| d.routes.contains_key(k)));
            }
        }
    }
}
