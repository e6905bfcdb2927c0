//! Tests of the session and route-table mapping.

use super::*;
use ferrolb_announce::{Community, LargeCommunity as AnnounceLarge};

const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
  password: foo
- peer-address: 198.18.0.2
  peer-asn: 64513
  my-asn: 65559
  source-address: 198.18.0.11
  router-id: 198.18.0.99
  hold-time: 30s
  node-selectors:
  - match-labels:
      rack: r1
address-pools:
- name: public-pool
  protocol: bgp
  addresses:
  - 203.0.113.10-203.0.113.20
";

fn defaults() -> SessionDefaults {
    SessionDefaults {
        graceful_restart: Some(120),
        state_dir: "/run/ferrolb".into(),
        connect_retry: Duration::from_secs(1),
    }
}

fn key(a: &str) -> PeerKey {
    PeerKey {
        address: a.parse().unwrap(),
        port: 179,
        device: None,
    }
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn only_selecting_peers_get_sessions_with_configured_or_discovered_addresses() {
    let config = Config::from_yaml(YAML).unwrap();
    let discovered: BTreeMap<IpAddr, Discovered> = [(
        "198.18.0.1".parse().unwrap(),
        Discovered {
            source: Some("198.18.0.12".parse().unwrap()),
            router_id: Some("198.18.0.12".parse().unwrap()),
        },
    )]
    .into();
    let s = desired_sessions(&config, &labels(&[]), &defaults(), &discovered);
    assert_eq!(
        s.keys().copied().collect::<Vec<_>>(),
        vec![key("198.18.0.1")]
    );
    let one = &s[&key("198.18.0.1")].session;
    assert_eq!(one.tcp.source, Some("198.18.0.12".parse().unwrap()));
    assert_eq!(one.tcp.password.as_deref(), Some("foo"));
    assert_eq!(one.fsm.router_id, Some("198.18.0.12".parse().unwrap()));
    assert_eq!(one.fsm.hold_time, 90);
    assert_eq!(one.fsm.keepalive_time, Some(Duration::from_secs(30)));
    assert_eq!(one.fsm.graceful_restart.map(|g| g.restart_time), Some(120));

    let s = desired_sessions(
        &config,
        &labels(&[("rack", "r1")]),
        &defaults(),
        &discovered,
    );
    let two = &s[&key("198.18.0.2")].session;
    assert_eq!(two.tcp.source, Some("198.18.0.11".parse().unwrap()));
    assert_eq!(two.fsm.router_id, Some("198.18.0.99".parse().unwrap()));
    assert_eq!(two.fsm.hold_time, 30);
    assert_eq!(two.fsm.keepalive_time, Some(Duration::from_secs(10)));
    assert_eq!((two.fsm.my_asn, two.fsm.peer_asn), (65559, 64513.into()));

    let no_gr = SessionDefaults {
        graceful_restart: None,
        ..defaults()
    };
    let s = desired_sessions(&config, &labels(&[]), &no_gr, &discovered);
    assert_eq!(s[&key("198.18.0.1")].session.fsm.graceful_restart, None);
}

#[test]
fn keepalive_time_reaches_the_session_and_a_change_restarts_it() {
    let yaml = YAML.replace("hold-time: 30s", "hold-time: 30s\n  keepalive-time: 7s");
    let config = Config::from_yaml(&yaml).unwrap();
    let all = labels(&[("rack", "r1")]);
    let s = desired_sessions(&config, &all, &defaults(), &BTreeMap::new());
    let two = &s[&key("198.18.0.2")].session.fsm;
    assert_eq!(
        (two.hold_time, two.keepalive_time),
        (30, Some(Duration::from_secs(7)))
    );
    // What the session will run with once the router accepts the hold time.
    assert_eq!(
        ferrolb_bgp::fsm::keepalive_interval(two.keepalive_time, two.hold_time, 30),
        Duration::from_secs(7)
    );
    let running = desired_sessions(
        &Config::from_yaml(YAML).unwrap(),
        &all,
        &defaults(),
        &BTreeMap::new(),
    );
    assert_eq!(
        plan_sessions(&running, &s),
        SessionPlan {
            start: vec![],
            restart: vec![key("198.18.0.2")],
            stop: vec![],
            retime_bfd: vec![]
        }
    );
}

#[test]
fn only_changed_peers_restart_and_removed_peers_stop() {
    let config = Config::from_yaml(YAML).unwrap();
    let all = labels(&[("rack", "r1")]);
    let running = desired_sessions(&config, &all, &defaults(), &BTreeMap::new());
    assert!(plan_sessions(&running, &running).is_empty());

    let edited = Config::from_yaml(&YAML.replace("hold-time: 30s", "hold-time: 60s")).unwrap();
    let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
    assert_eq!(
        plan_sessions(&running, &desired),
        SessionPlan {
            start: vec![],
            restart: vec![key("198.18.0.2")],
            stop: vec![],
            retime_bfd: vec![]
        }
    );

    // The node loses the label: the second peer no longer selects it.
    let desired = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(
        plan_sessions(&running, &desired),
        SessionPlan {
            start: vec![],
            restart: vec![],
            stop: vec![key("198.18.0.2")],
            retime_bfd: vec![]
        }
    );
    assert_eq!(
        plan_sessions(&desired, &running),
        SessionPlan {
            start: vec![key("198.18.0.2")],
            restart: vec![],
            stop: vec![],
            retime_bfd: vec![]
        }
    );
}

const BFD_YAML: &str = "\
bfd-profiles:
- name: fast
  receive-interval: 50
  transmit-interval: 60
  detect-multiplier: 4
  echo-interval: 70
  passive-mode: true
  minimum-ttl: 10
- name: slow
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
  bfd-profile: fast
- peer-address: 198.18.0.2
  peer-asn: 64513
  my-asn: 65559
";

#[test]
fn a_configured_bfd_profile_maps_field_for_field_and_peers_without_one_get_none() {
    let config = Config::from_yaml(BFD_YAML).unwrap();
    let s = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(
        s[&key("198.18.0.1")].bfd,
        Some(ferrolb_bfd::Profile {
            receive_interval_ms: 50,
            transmit_interval_ms: 60,
            detect_multiplier: 4,
            echo_interval_ms: 70,
            echo_mode: false,
            passive_mode: true,
            minimum_ttl: 10,
        })
    );
    assert_eq!(s[&key("198.18.0.2")].bfd, None);
    // A profile with every field defaulted is the driver's default profile.
    assert_eq!(
        bfd_profile_of(config.bfd_profile("slow").unwrap()),
        ferrolb_bfd::Profile::default()
    );
}

#[test]
fn bfd_timer_changes_apply_in_place_and_gaining_losing_or_passive_changes_restart() {
    let config = Config::from_yaml(BFD_YAML).unwrap();
    let running = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
    let only = |field: &str, of: SessionPlan| (field.to_owned(), of);
    let retime_one = SessionPlan {
        retime_bfd: vec![key("198.18.0.1")],
        ..SessionPlan::default()
    };
    let restart_one = SessionPlan {
        restart: vec![key("198.18.0.1")],
        ..SessionPlan::default()
    };
    for (edited, want) in [
        // Timers only: in place, the BGP session untouched.
        only("detect-multiplier: 4", retime_one.clone()),
        only("receive-interval: 50", retime_one.clone()),
        only("transmit-interval: 60", retime_one.clone()),
        only("echo-interval: 70", retime_one.clone()),
        only("minimum-ttl: 10", retime_one.clone()),
        // The passive role is fixed at creation.
        only("passive-mode: true", restart_one.clone()),
    ] {
        let value = match edited.split_once(": ").unwrap() {
            (k, "true") => format!("{k}: false"),
            (k, v) => format!("{k}: {}", v.parse::<u32>().unwrap() + 1),
        };
        let edited = Config::from_yaml(&BFD_YAML.replace(&edited, &value)).unwrap();
        let desired = desired_sessions(&edited, &labels(&[]), &defaults(), &BTreeMap::new());
        assert_eq!(plan_sessions(&running, &desired), want, "{value}");
    }
    // Switching to a profile that differs in timers only is in place too; one that is not passive
    // restarts ("slow" is active).
    let active_fast = BFD_YAML.replace("  passive-mode: true\n", "");
    let running_active = desired_sessions(
        &Config::from_yaml(&active_fast).unwrap(),
        &labels(&[]),
        &defaults(),
        &BTreeMap::new(),
    );
    let to_slow =
        Config::from_yaml(&active_fast.replace("bfd-profile: fast", "bfd-profile: slow")).unwrap();
    let desired = desired_sessions(&to_slow, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(plan_sessions(&running_active, &desired), retime_one);
    let to_slow =
        Config::from_yaml(&BFD_YAML.replace("bfd-profile: fast", "bfd-profile: slow")).unwrap();
    let desired = desired_sessions(&to_slow, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(plan_sessions(&running, &desired), restart_one);
    // Losing the profile restarts (BGP runs unguarded from now on).
    let removed = Config::from_yaml(&BFD_YAML.replace("  bfd-profile: fast\n", "")).unwrap();
    let desired = desired_sessions(&removed, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(plan_sessions(&running, &desired), restart_one);
    // Gaining one restarts (BGP waits for BFD Up).
    let added = BFD_YAML.replace(
        "  peer-asn: 64513\n",
        "  peer-asn: 64513\n  bfd-profile: slow\n",
    );
    let added = Config::from_yaml(&added).unwrap();
    let desired = desired_sessions(&added, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(desired[&key("198.18.0.2")].bfd, Some(Default::default()));
    assert_eq!(
        plan_sessions(&running, &desired),
        SessionPlan {
            restart: vec![key("198.18.0.2")],
            ..SessionPlan::default()
        }
    );
    // A BGP setting and a BFD timer together: the restart wins.
    let both = Config::from_yaml(
        &BFD_YAML
            .replace("detect-multiplier: 4", "detect-multiplier: 5")
            .replace(
                "  my-asn: 65559\n  bfd-profile: fast",
                "  my-asn: 65559\n  hold-time: 30s\n  bfd-profile: fast",
            ),
    )
    .unwrap();
    let desired = desired_sessions(&both, &labels(&[]), &defaults(), &BTreeMap::new());
    assert_eq!(plan_sessions(&running, &desired), restart_one);
    // A profile no peer uses changes: nothing happens.
    let unused = Config::from_yaml(
        &BFD_YAML.replace("- name: slow", "- name: slow\n  detect-multiplier: 9"),
    )
    .unwrap();
    let desired = desired_sessions(&unused, &labels(&[]), &defaults(), &BTreeMap::new());
    assert!(plan_sessions(&running, &desired).is_empty());
}

#[test]
fn bfd_change_classifies_each_field() {
    let base = ferrolb_bfd::Profile::default();
    let with = |f: &dyn Fn(&mut ferrolb_bfd::Profile)| {
        let mut p = base;
        f(&mut p);
        p
    };
    assert_eq!(bfd_change(None, None), BfdChange::Same);
    assert_eq!(bfd_change(Some(&base), Some(&base)), BfdChange::Same);
    assert_eq!(bfd_change(None, Some(&base)), BfdChange::Restart);
    assert_eq!(bfd_change(Some(&base), None), BfdChange::Restart);
    for timers in [
        with(&|p| p.receive_interval_ms = 100),
        with(&|p| p.transmit_interval_ms = 100),
        with(&|p| p.detect_multiplier = 5),
        with(&|p| p.echo_interval_ms = 100),
        with(&|p| p.minimum_ttl = 200),
    ] {
        assert_eq!(
            bfd_change(Some(&base), Some(&timers)),
            BfdChange::Timers,
            "{timers:?}"
        );
    }
    let passive = with(&|p| p.passive_mode = true);
    assert_eq!(bfd_change(Some(&base), Some(&passive)), BfdChange::Restart);
}

#[test]
fn a_peer_graceful_restart_setting_overrides_the_speaker_default() {
    let config = Config::from_yaml(YAML).unwrap();
    let mut peer = config.peers[0].clone();
    let off = SessionDefaults {
        graceful_restart: None,
        ..defaults()
    };
    let short = SessionDefaults {
        graceful_restart: Some(30),
        ..defaults()
    };
    for (setting, defaults, want) in [
        (None, &short, Some(30)),
        (None, &off, None),
        (Some(false), &short, None),
        (Some(true), &short, Some(30)),
        (Some(true), &off, Some(DEFAULT_RESTART_TIME)),
    ] {
        peer.graceful_restart = setting;
        assert_eq!(defaults.restart_time(&peer), want, "{setting:?}");
    }
}

#[test]
fn per_peer_connect_time_and_graceful_restart_reach_only_that_session() {
    let all = labels(&[("rack", "r1")]);
    let config = Config::from_yaml(YAML).unwrap();
    let running = desired_sessions(&config, &all, &defaults(), &BTreeMap::new());
    let mut edited = config.clone();
    edited.peers[1].connect_time = Some(Duration::from_secs(7));
    let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
    let fsm = |s: &BTreeMap<PeerKey, PeerSession>, k: &str| s[&key(k)].session.fsm.clone();
    assert_eq!(
        fsm(&desired, "198.18.0.2").connect_retry_initial,
        Duration::from_secs(7)
    );
    assert_eq!(
        fsm(&desired, "198.18.0.1").connect_retry_initial,
        Duration::from_secs(1)
    );
    let restart_two = SessionPlan {
        restart: vec![key("198.18.0.2")],
        ..SessionPlan::default()
    };
    assert_eq!(plan_sessions(&running, &desired), restart_two);

    let mut edited = config.clone();
    edited.peers[1].graceful_restart = Some(false);
    let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
    assert_eq!(fsm(&desired, "198.18.0.2").graceful_restart, None);
    assert_eq!(
        fsm(&desired, "198.18.0.1")
            .graceful_restart
            .map(|g| g.restart_time),
        Some(120)
    );
    assert_eq!(plan_sessions(&running, &desired), restart_two);

    let mut edited = config.clone();
    edited.peers[1].password = Some("bar".into());
    let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
    assert_eq!(plan_sessions(&running, &desired), restart_two);

    // Renaming a peer or changing the families it carries changes its routes, not its
    // session.
    let mut edited = config.clone();
    edited.peers[0].name = Some("tor-a".into());
    edited.peers[0].dual_stack_address_family = false;
    let desired = desired_sessions(&edited, &all, &defaults(), &BTreeMap::new());
    assert!(plan_sessions(&running, &desired).is_empty());
}

/// A decision for `peers` (each selecting the node) in which `limited` peers also get an
/// aggregate the others do not.
fn decision_with_limited(peers: &[&str], limited: &[&str]) -> AnnounceDecision {
    use ferrolb_announce::{Advertisement, AnnounceConfig, Node, Peer, Pool, Service};
    let pool = Pool {
        name: "p".into(),
        addresses: vec!["203.0.113.0/24".parse::<ipnet::IpNet>().unwrap().into()],
        advertisements: vec![
            Advertisement::default(),
            Advertisement {
                aggregation_length: 24,
                peers: vec!["limited".into()],
                ..Advertisement::default()
            },
        ],
        ..Pool::default()
    };
    let peers = peers
        .iter()
        .map(|a| {
            let mut p = Peer::new(key(a), true);
            p.name = limited.contains(a).then(|| "limited".into());
            p
        })
        .collect();
    let config = AnnounceConfig {
        pools: vec![pool],
        peers,
    };
    let node = Node {
        name: "n1".into(),
        ..Node::default()
    };
    let service = Service {
        key: "default/web".into(),
        ingress_ips: vec!["203.0.113.5".parse().unwrap()],
        ours: true,
        endpoints: vec![ferrolb_announce::Endpoint::from_conditions(
            Some("n1".into()),
            None,
            None,
            None,
        )],
        ..Service::default()
    };
    ferrolb_announce::decide(&node, &[service], &config)
}

/// Sessions to peers 198.18.0.1 to .4, the first three with local AS 65559, the fourth 64999.
fn four_sessions() -> BTreeMap<PeerKey, PeerSession> {
    let yaml = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 65559
  my-asn: 65559
- peer-address: 198.18.0.2
  peer-asn: 65559
  my-asn: 65559
- peer-address: 198.18.0.3
  peer-asn: 65559
  my-asn: 65559
- peer-address: 198.18.0.4
  peer-asn: 65559
  my-asn: 64999
";
    let config = Config::from_yaml(yaml).unwrap();
    desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new())
}

#[test]
fn sessions_share_a_route_table_unless_their_routes_or_local_as_differ() {
    let sessions = four_sessions();
    let all = ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"];
    let table_of = |handover: &mut Handover<'_>, peer: &str| {
        let key = table_key(
            handover.decision(),
            &key(peer),
            &sessions[&key(peer)].session,
        );
        handover.table(key)
    };
    let nothing = BTreeSet::new();
    // No restriction: one table per local AS.
    let plain = decision_with_limited(&all, &[]);
    let mut handover = Handover::new(&plain, &nothing);
    let [one, two, three, four] = all.map(|p| table_of(&mut handover, p));
    assert!(Arc::ptr_eq(&one, &two) && Arc::ptr_eq(&one, &three));
    assert!(!Arc::ptr_eq(&one, &four));
    assert_eq!(
        one.keys().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["203.0.113.5/32"]
    );
    // Peers 2 and 3 get the aggregate too: they share a table, peer 1 has its own.
    let limited = decision_with_limited(&all, &["198.18.0.2", "198.18.0.3"]);
    let mut handover = Handover::new(&limited, &nothing);
    let [one, two, three, _] = all.map(|p| table_of(&mut handover, p));
    assert!(Arc::ptr_eq(&two, &three));
    assert!(!Arc::ptr_eq(&one, &two));
    assert_eq!(
        two.keys().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["203.0.113.0/24", "203.0.113.5/32"]
    );
    assert_eq!(
        one.keys().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["203.0.113.5/32"]
    );
    // A peer the decision does not know gets nothing.
    let unknown = table_key(
        &limited,
        &key("198.18.0.9"),
        &sessions[&key(all[0])].session,
    );
    assert_eq!(unknown, (65559, PeerTable::Unselected));
    assert!(handover.table(unknown).is_empty());
}

#[test]
fn changes_applied_to_the_old_tables_give_the_new_ones() {
    let sessions = four_sessions();
    let all = ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"];
    let limited = ["198.18.0.2"];
    // The Service's host route goes; the limited peers' aggregate stays.
    let before = decision_with_limited(&all, &limited);
    let mut after = before.clone();
    let host: IpNet = "203.0.113.5/32".parse().unwrap();
    for table in after.route_tables_mut() {
        table.remove(&host);
    }
    let changed: BTreeSet<IpNet> = [host].into();
    let nothing = BTreeSet::new();
    // The route goes, then comes back.
    for (from, to, wanted) in [(&before, &after, false), (&after, &before, true)] {
        let mut old = Handover::new(from, &nothing);
        let mut new = Handover::new(to, &changed);
        assert!(!new.unchanged() && old.unchanged());
        for peer in all {
            let session = &sessions[&key(peer)].session;
            let table = table_key(to, &key(peer), session);
            assert_eq!(table, table_key(from, &key(peer), session), "{peer}");
            let mut routes = (*old.table(table)).clone();
            let changes = new.changes(table);
            assert_eq!(changes.keys().collect::<Vec<_>>(), [&host], "{peer}");
            assert_eq!(changes[&host].is_some(), wanted, "{peer}");
            for (prefix, attributes) in changes {
                match attributes {
                    Some(a) => routes.insert(prefix, Arc::new(a)),
                    None => routes.remove(&prefix),
                };
            }
            assert_eq!(routes, *new.table(table), "{peer}");
        }
    }
}

#[test]
fn weighted_routes_carry_the_link_bandwidth_of_each_local_as() {
    let mut decision = AnnounceDecision::default();
    let weighted: ipnet::IpNet = "203.0.113.5/32".parse().unwrap();
    let plain: ipnet::IpNet = "203.0.113.6/32".parse().unwrap();
    decision.routes.insert(weighted, Default::default());
    decision.routes.insert(plain, Default::default());
    decision.link_bandwidth.insert(weighted, 2_000_000);
    let routes = desired_routes(decision.view(PeerTable::All), 64501);
    assert_eq!(
        routes[&weighted].extended_communities,
        [[0x40, 0x04, 0xFB, 0xF5, 0x48, 0x74, 0x24, 0x00]]
    );
    assert!(routes[&plain].extended_communities.is_empty());
    let four_octet = desired_routes(decision.view(PeerTable::All), 4_200_000_000);
    assert_eq!(
        four_octet[&weighted].extended_communities,
        [[0x40, 0x04, 0x5B, 0xA0, 0x48, 0x74, 0x24, 0x00]]
    );
}

#[test]
fn route_attributes_become_wire_attributes() {
    let attrs = RouteAttributes {
        local_pref: Some(200),
        communities: [Community(0xffff_ff02), Community((64512 << 16) | 7)].into(),
        large_communities: [AnnounceLarge {
            global_admin: 64512,
            local_data1: 1,
            local_data2: 2,
        }]
        .into(),
        as_path_prepend: Some(ferrolb_config::AsPathPrepend {
            asn: 65000,
            count: 3,
        }),
    };
    assert_eq!(
        attributes_of(&attrs),
        Attributes {
            local_pref: Some(200),
            med: None,
            communities: vec![(64512 << 16) | 7, 0xffff_ff02],
            large_communities: vec![LargeCommunity {
                global_admin: 64512,
                local_data1: 1,
                local_data2: 2
            }],
            extended_communities: vec![],
            as_path_prepend: Some(ferrolb_bgp::rib_out::AsPathPrepend {
                asn: 65000,
                count: 3
            }),
        }
    );
}

const FABRIC: &str = "\
peers:
- peer-address: 198.18.0.1
  dynamic-asn: external
  my-asn-from-node-label: example.com/asn
  router-id-from-node-label: example.com/router-id
  connect-time: 5s
- peer-address: 198.18.0.2
  peer-asn: 64512
  my-asn: 64513
  local-asn: 65000
  local-asn-replace-as: true
- peer-address: 198.18.0.3
  dynamic-asn: internal
  my-asn: 64513
address-pools:
- name: public-pool
  protocol: bgp
  addresses:
  - 203.0.113.10-203.0.113.20
";

#[test]
fn fabric_peers_take_their_as_and_router_id_from_the_node_and_the_open() {
    let config = Config::from_yaml(FABRIC).unwrap();
    let rack = labels(&[
        ("example.com/asn", "4200000101"),
        ("example.com/router-id", "198.18.0.11"),
    ]);
    let s = desired_sessions(&config, &rack, &defaults(), &BTreeMap::new());
    let one = &s[&key("198.18.0.1")].session.fsm;
    assert_eq!(one.my_asn, 4_200_000_101);
    assert_eq!(one.peer_asn, PeerAs::External);
    assert_eq!(one.router_id, Some("198.18.0.11".parse().unwrap()));
    assert_eq!(one.connect_retry_initial, Duration::from_secs(5));
    assert_eq!(one.local_as, None);
    let two = &s[&key("198.18.0.2")].session.fsm;
    assert_eq!((two.my_asn, two.peer_asn), (64513, PeerAs::Exact(64512)));
    assert_eq!(
        two.local_as,
        Some(LocalAs {
            asn: 65000,
            replace_as: true
        })
    );
    assert_eq!(two.presented_asn(), 65000);
    assert_eq!(s[&key("198.18.0.3")].session.fsm.peer_asn, PeerAs::Internal);
    assert!(session_config_errors(&config, &rack).is_empty());
}

#[test]
fn a_node_without_its_label_loses_only_that_session_and_says_why() {
    let config = Config::from_yaml(FABRIC).unwrap();
    for (node, why) in [
        (
            labels(&[("example.com/router-id", "198.18.0.11")]),
            "my-asn-from-node-label: the node has no label \"example.com/asn\"",
        ),
        (
            labels(&[
                ("example.com/asn", "rack-7"),
                ("example.com/router-id", "198.18.0.11"),
            ]),
            "my-asn-from-node-label: the node's label \"example.com/asn\" is \"rack-7\", not an AS number from 1 to 4294967295",
        ),
        (
            labels(&[
                ("example.com/asn", "64600"),
                ("example.com/router-id", "0.0.0.0"),
            ]),
            "router-id-from-node-label: the node's label \"example.com/router-id\" is \"0.0.0.0\", not an IPv4 address other than 0.0.0.0",
        ),
    ] {
        let s = desired_sessions(&config, &node, &defaults(), &BTreeMap::new());
        assert_eq!(
            s.keys().copied().collect::<Vec<_>>(),
            vec![key("198.18.0.2"), key("198.18.0.3")]
        );
        let errors: Vec<(PeerKey, String)> = session_config_errors(&config, &node)
            .into_iter()
            .map(|(k, e)| (k, e.to_string()))
            .collect();
        assert_eq!(errors, vec![(key("198.18.0.1"), why.to_owned())]);
    }
}

#[test]
fn unnumbered_and_vrf_peers_bind_their_sessions_to_the_device() {
    let config = Config::from_yaml(
        "\
peers:
- interface: eth1
  peer-asn: 64512
  my-asn: 64513
- peer-address: 198.18.0.1
  vrf: red
  peer-asn: 64512
  my-asn: 64513
- peer-address: 198.18.0.1
  vrf: blue
  peer-asn: 64512
  my-asn: 64513
",
    )
    .unwrap();
    let s = desired_sessions(&config, &labels(&[]), &defaults(), &BTreeMap::new());
    let keys: Vec<String> = s.keys().map(ToString::to_string).collect();
    assert_eq!(keys, vec!["198.18.0.1%blue", "198.18.0.1%red", "eth1"]);
    let device_key = |address: &str, device: &str| PeerKey {
        device: Some(device.parse().unwrap()),
        ..key(address)
    };
    let eth1 = &s[&device_key("::", "eth1")].session;
    assert_eq!(eth1.tcp.bind_device.as_deref(), Some("eth1"));
    assert!(eth1.tcp.peer_on_link);
    assert!(eth1.fsm.extended_next_hop);
    assert_eq!(eth1.tcp.source, None);
    let red = &s[&device_key("198.18.0.1", "red")].session;
    assert_eq!(red.tcp.bind_device.as_deref(), Some("red"));
    assert!(!red.tcp.peer_on_link);
    assert!(!red.fsm.extended_next_hop);
    assert_eq!(red.tcp.peer, "198.18.0.1:179".parse().unwrap());
}
