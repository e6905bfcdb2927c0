//! Advertisements limited to named peers, to nodes and to Services; unannounced pools;
//! sessions of one address family.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::NodeSelector;
use std::collections::BTreeMap;

/// [`config`] with peers named `tor-a` (198.18.0.1) and `tor-b` (198.18.0.2).
fn named_config() -> AnnounceConfig {
    let mut cfg = config();
    cfg.peers[0].name = Some("tor-a".into());
    cfg.peers[1].name = Some("tor-b".into());
    cfg
}

fn selector(key: &str, value: &str) -> NodeSelector {
    NodeSelector {
        match_labels: [(key.to_owned(), value.to_owned())].into(),
        ..NodeSelector::default()
    }
}

/// Asserts that the explanation of `default/web` contains `line`.
fn assert_explained(d: &AnnounceDecision, line: &str) {
    let text = explain(d, "default/web");
    assert!(text.contains(line), "{text}");
}

/// [`config`] with 198.18.0.1 carrying IPv4 only, and a dual-stack Service ready on node-1.
fn v4_only_peer_and_dual_stack_service() -> (AnnounceConfig, Service) {
    let mut cfg = config();
    cfg.peers[0].dual_stack = false;
    let dual = service(
        "default/dual",
        &["203.0.113.5", "2001:db8:1::5"],
        vec![ready("node-1")],
    );
    (cfg, dual)
}

fn web() -> Service {
    service("default/web", &["203.0.113.5"], vec![ready("node-1")])
}

#[test]
fn an_advertisement_limited_to_a_peer_reaches_only_that_peer_with_only_its_attributes() {
    let mut cfg = named_config();
    cfg.pools[0].advertisements = vec![
        Advertisement {
            communities: vec![Community(1)],
            ..Advertisement::default()
        },
        Advertisement {
            local_pref: Some(300),
            communities: vec![Community(2)],
            peers: vec!["tor-b".into()],
            ..Advertisement::default()
        },
        Advertisement {
            aggregation_length: 24,
            peers: vec!["tor-b".into()],
            ..Advertisement::default()
        },
    ];
    let d = decide(&node("node-1"), &[web()], &cfg);
    let host = net("203.0.113.5/32");
    let aggregate = net("203.0.113.0/24");

    let a = d.routes_for(&peer_key("198.18.0.1")).unwrap();
    assert_eq!(a.keys().copied().collect::<Vec<_>>(), [host]);
    assert_eq!(
        a[&host].attributes,
        RouteAttributes {
            local_pref: None,
            communities: [Community(1)].into(),
            ..RouteAttributes::default()
        }
    );
    let b = d.routes_for(&peer_key("198.18.0.2")).unwrap();
    assert_eq!(b.keys().copied().collect::<Vec<_>>(), [aggregate, host]);
    assert_eq!(
        b[&host].attributes,
        RouteAttributes {
            local_pref: Some(300),
            communities: [Community(1), Community(2)].into(),
            ..RouteAttributes::default()
        }
    );
    // tor-b gets everything: the union table; tor-a its own class.
    assert_eq!(d.table_of(&peer_key("198.18.0.2")), Some(PeerTable::All));
    assert_eq!(
        d.table_of(&peer_key("198.18.0.1")),
        Some(PeerTable::Class(0))
    );
    assert_eq!(d.tables.len(), 1);
    assert_eq!(d.announced_ips(), [ip("203.0.113.5")]);
    let sd = &d.services["default/web"];
    assert!(sd.reasons.contains(&Reason::AdvertisementLimitedToPeers {
        pool: "v4".into(),
        peers: vec!["tor-b".into()],
    }));
    assert_explained(&d, "a BGPAdvertisement of pool v4 goes only to peers tor-b");
}

#[test]
fn peers_selected_by_the_same_advertisements_share_one_table() {
    let mut cfg = named_config();
    cfg.peers.push(peer("198.18.0.3", true));
    cfg.peers[2].name = Some("tor-c".into());
    cfg.pools[0].advertisements = vec![Advertisement {
        peers: vec!["tor-b".into(), "tor-c".into()],
        ..Advertisement::default()
    }];
    let d = decide(&node("node-1"), &[web()], &cfg);
    assert_eq!(d.tables.len(), 1);
    assert_eq!(
        d.table_of(&peer_key("198.18.0.1")),
        Some(PeerTable::Class(0))
    );
    assert_eq!(d.table_of(&peer_key("198.18.0.2")), Some(PeerTable::All));
    assert_eq!(d.table_of(&peer_key("198.18.0.3")), Some(PeerTable::All));
    assert!(d.routes_for(&peer_key("198.18.0.1")).unwrap().is_empty());
    // Unselected peers get nothing, not an empty table.
    cfg.peers[0].selects_node = false;
    let d = decide(&node("node-1"), &[web()], &cfg);
    assert_eq!(
        d.table_of(&peer_key("198.18.0.1")),
        Some(PeerTable::Unselected)
    );
    assert_eq!(d.routes_for(&peer_key("198.18.0.1")), None);
    assert!(d.tables.is_empty());
}

#[test]
fn an_advertisement_whose_node_selectors_skip_this_node_announces_nothing_from_it() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![Advertisement {
        selects_node: false,
        ..Advertisement::default()
    }];
    let d = decide(&node("node-1"), &[web()], &cfg);
    assert!(d.routes.is_empty());
    let sd = &d.services["default/web"];
    assert!(!sd.announce);
    assert!(
        sd.reasons
            .contains(&Reason::NoAdvertisementSelectsNode { pool: "v4".into() })
    );
    assert_eq!(
        Reason::NoAdvertisementSelectsNode { pool: "v4".into() }.effect(),
        Effect::Blocks
    );
    // Another advertisement of the pool that selects the node still announces, with only its
    // own attributes.
    cfg.pools[0].advertisements.push(Advertisement {
        communities: vec![Community(7)],
        ..Advertisement::default()
    });
    cfg.pools[0].advertisements[0].local_pref = Some(500);
    let d = decide(&node("node-1"), &[web()], &cfg);
    let route = &d.routes[&net("203.0.113.5/32")];
    assert_eq!(route.attributes.local_pref, None);
    assert_eq!(route.attributes.communities, [Community(7)].into());
}

#[test]
fn the_new_model_fields_are_carried_over_with_node_selectors_evaluated() {
    let yaml = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64512
address-pools:
- name: p
  protocol: bgp
  addresses: [203.0.113.0/24]
  bgp-advertisements:
  - localpref: 100
";
    // The ConfigMap format has no such keys; the metallb.io CRDs set them.
    let mut config = ferrolb_config::Config::from_yaml(yaml).unwrap();
    let adv = &mut config.address_pools[0].bgp_advertisements[0];
    adv.node_selectors = vec![selector("rack", "r1")];
    adv.service_selectors = vec![selector("tier", "gold")];
    adv.peers = vec!["tor-a".into()];
    config.peers[0].name = Some("tor-a".into());
    config.peers[0].dual_stack_address_family = false;
    let mut n = node("node-1");
    let ac = AnnounceConfig::from_config(&config, &n);
    let ad = &ac.pools[0].advertisements[0];
    assert!(!ad.selects_node);
    assert_eq!(ad.peers, ["tor-a"]);
    assert_eq!(ad.service_selectors, [selector("tier", "gold")]);
    assert!(ac.pools[0].announced);
    assert_eq!(ac.peers[0].name.as_deref(), Some("tor-a"));
    assert!(!ac.peers[0].dual_stack);
    n.labels.insert("rack".into(), "r1".into());
    let ac = AnnounceConfig::from_config(&config, &n);
    assert!(ac.pools[0].advertisements[0].selects_node);
    config.address_pools[0].announced = false;
    assert!(!AnnounceConfig::from_config(&config, &n).pools[0].announced);
}

#[test]
fn service_selectors_limit_an_advertisement_to_matching_services() {
    let mut cfg = config();
    cfg.pools[0].advertisements = vec![
        Advertisement {
            service_selectors: vec![selector("tier", "gold")],
            local_pref: Some(200),
            ..Advertisement::default()
        },
        Advertisement {
            aggregation_length: 24,
            service_selectors: vec![selector("tier", "silver"), selector("app", "db")],
            ..Advertisement::default()
        },
    ];
    let mut gold = web();
    gold.labels = vec![("tier".into(), "gold".into())];
    let mut db = service("default/db", &["203.0.113.6"], vec![ready("node-1")]);
    db.labels = vec![("app".into(), "db".into())];
    let plain = service("default/plain", &["203.0.113.7"], vec![ready("node-1")]);
    let d = decide(&node("node-1"), &[gold, db, plain], &cfg);
    assert_eq!(prefixes(&d), ["203.0.113.0/24", "203.0.113.5/32"]);
    assert_eq!(
        d.routes[&net("203.0.113.5/32")].attributes.local_pref,
        Some(200)
    );
    assert_eq!(
        d.routes[&net("203.0.113.0/24")].covered_ips,
        [ip("203.0.113.6")]
    );
    let sd = &d.services["default/plain"];
    assert!(!sd.announce);
    assert!(
        sd.reasons
            .contains(&Reason::NoAdvertisementSelectsService { pool: "v4".into() })
    );
}

#[test]
fn an_unannounced_pool_announces_nothing_and_says_why() {
    let mut cfg = config();
    cfg.pools[0].announced = false;
    let d = decide(&node("node-1"), &[web()], &cfg);
    assert!(d.routes.is_empty());
    assert!(d.announced_ips().is_empty());
    let sd = &d.services["default/web"];
    assert!(!sd.announce);
    assert!(
        sd.reasons
            .contains(&Reason::PoolNotAdvertised { pool: "v4".into() })
    );
    assert_explained(
        &d,
        "- pool v4 has no BGPAdvertisement, so its IPs are not announced",
    );
}

#[test]
fn a_single_family_peer_gets_only_routes_of_its_family() {
    let (mut cfg, dual) = v4_only_peer_and_dual_stack_service();
    let d = decide(&node("node-1"), &[dual], &cfg);
    let v4_only = d.routes_for(&peer_key("198.18.0.1")).unwrap();
    assert_eq!(
        v4_only.keys().copied().collect::<Vec<_>>(),
        [net("203.0.113.5/32")]
    );
    let both = d.routes_for(&peer_key("198.18.0.2")).unwrap();
    assert_eq!(both.len(), 2);
    assert!(d.node_reasons.contains(&Reason::PeerSingleFamily {
        peer: peer_key("198.18.0.1")
    }));
    // An IPv6 peer carrying only IPv6.
    cfg.peers[1] = peer("2001:db8::1", true);
    cfg.peers[1].dual_stack = false;
    let d = decide(
        &node("node-1"),
        &[service(
            "default/v4",
            &["203.0.113.5"],
            vec![ready("node-1")],
        )],
        &cfg,
    );
    assert!(d.routes_for(&peer_key("2001:db8::1")).unwrap().is_empty());
    assert_eq!(d.routes_for(&peer_key("198.18.0.1")).unwrap().len(), 1);
}

#[test]
fn service_attributes_reach_the_host_route_in_every_peer_table() {
    let (cfg, dual) = v4_only_peer_and_dual_stack_service();
    let mut d = decide(&node("node-1"), &[dual], &cfg);
    assert_eq!(d.tables.len(), 1);
    let attrs = ServiceAttributes {
        local_pref: Some(250),
        communities: [Community(9)].into(),
        ..ServiceAttributes::default()
    };
    apply_service_attributes(&mut d, &BTreeMap::from([("default/dual".into(), attrs)]));
    let host = net("203.0.113.5/32");
    for peer in ["198.18.0.1", "198.18.0.2"] {
        let route = &d.routes_for(&peer_key(peer)).unwrap()[&host];
        assert_eq!(route.attributes.local_pref, Some(250), "{peer}");
        assert_eq!(
            route.attributes.communities,
            [Community(9)].into(),
            "{peer}"
        );
    }
}
