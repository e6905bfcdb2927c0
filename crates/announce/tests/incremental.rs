//! The incremental decision against the full one: after any sequence of Service,
//! EndpointSlice, Node and configuration events, [`DecisionState`] holds what a full recompute
//! from the same cluster gives, and reports exactly the prefixes whose routes changed.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_config::{AsPathPrepend, AsPathPrependAllowance, CommunityValue, NodeSelector};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SERVICES: usize = 6;
const SLICES: usize = 8;

/// Three configurations to swap between: aggregation with LOCAL_PREF and all-nodes; peers
/// limited by named advertisements, a single-family peer, weighted ECMP, service-selectors,
/// AS_PATH prepending and per-Service attributes; and one whose only peer does not select the node.
fn configs() -> Vec<StateConfig> {
    let mut agg = pool("agg", &["203.0.113.0/28"]);
    agg.advertisements = vec![
        Advertisement::default(),
        Advertisement {
            aggregation_length: 30,
            local_pref: Some(150),
            ..Advertisement::default()
        },
    ];
    let mut wide = pool("wide", &["203.0.113.16/28", "2001:db8:1::/124"]);
    wide.announce_from = AnnounceFrom::AllNodes;
    let first = AnnounceConfig {
        pools: vec![agg, wide],
        peers: vec![peer("198.18.0.1", true), peer("198.18.0.2", true)],
    };

    let mut limited = pool("agg", &["203.0.113.0/28"]);
    limited.advertisements = vec![
        Advertisement {
            peers: vec!["tor-b".into()],
            link_bandwidth_per_endpoint: Some(1_000_000),
            as_path_prepend: Some(AsPathPrepend {
                asn: 64500,
                count: 2,
            }),
            service_allowances: ServiceAllowances {
                communities: vec![Community(64500 << 16 | 1)],
                local_prefs: vec![(200, 300)],
                as_path_prepends: vec![AsPathPrependAllowance {
                    asn: 64500,
                    max_count: 4,
                }],
                ..ServiceAllowances::default()
            },
            ..Advertisement::default()
        },
        Advertisement {
            service_selectors: vec![NodeSelector {
                match_labels: [("tier".to_owned(), "gold".to_owned())].into(),
                ..NodeSelector::default()
            }],
            communities: vec![Community(64500 << 16 | 9)],
            ..Advertisement::default()
        },
    ];
    let mut v6 = pool("wide", &["203.0.113.16/28", "2001:db8:1::/124"]);
    v6.advertisements = vec![Advertisement {
        aggregation_length_v6: 126,
        ..Advertisement::default()
    }];
    let mut single = peer("198.18.0.3", true);
    single.dual_stack = false;
    let mut named = peer("198.18.0.2", true);
    named.name = Some("tor-b".into());
    let second = AnnounceConfig {
        pools: vec![limited, v6],
        peers: vec![peer("198.18.0.1", true), named, single],
    };

    let third = AnnounceConfig {
        pools: vec![pool("agg", &["203.0.113.0/28"])],
        peers: vec![peer("198.18.0.1", false)],
    };
    let aliases: BTreeMap<String, CommunityValue> =
        [("gold".to_owned(), "64500:1".parse().unwrap())].into();
    [first, second, third]
        .into_iter()
        .map(|announce| StateConfig {
            announce,
            aliases: aliases.clone(),
        })
        .collect()
}

/// A Service's own fields (its endpoints come from slices).
#[derive(Debug, Clone)]
struct ServiceObject {
    ips: Vec<u8>,
    local: bool,
    ours: bool,
    gold: bool,
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
enum Event {
    ServiceApply(usize, ServiceObject),
    ServiceDelete(usize),
    /// Slice `i` now belongs to Service `svc` with these endpoints.
    SliceApply(usize, usize, Vec<Endpoint>),
    SliceDelete(usize),
    Node(Node),
    Config(usize),
}

fn service_object() -> impl Strategy<Value = ServiceObject> {
    let annotation = prop_oneof![
        Just(BTreeMap::new()),
        Just([(COMMUNITIES_ANNOTATION.to_owned(), "gold".to_owned())].into()),
        Just([(COMMUNITIES_ANNOTATION.to_owned(), "64500:7".to_owned())].into()),
        Just([(LOCAL_PREF_ANNOTATION.to_owned(), "250".to_owned())].into()),
        Just([(LOCAL_PREF_ANNOTATION.to_owned(), "210".to_owned())].into()),
        Just([(AS_PATH_PREPEND_ANNOTATION.to_owned(), "64500:1".to_owned())].into()),
        Just([(AS_PATH_PREPEND_ANNOTATION.to_owned(), "64500:4".to_owned())].into()),
    ];
    (
        // Offsets into 203.0.113.0/27 (two pools, some outside any) and 2001:db8:1::/124.
        prop::collection::vec(0u8..40, 0..3),
        any::<bool>(),
        prop::bool::weighted(0.9),
        any::<bool>(),
        annotation,
    )
        .prop_map(|(ips, local, ours, gold, annotations)| ServiceObject {
            ips,
            local,
            ours,
            gold,
            annotations,
        })
}

fn node_strategy() -> impl Strategy<Value = Node> {
    (prop::bool::weighted(0.2), prop::bool::weighted(0.2)).prop_map(|(excluded, unavailable)| {
        let mut n = node(NODES[0]);
        if excluded {
            n.labels.insert(EXCLUDE_LABEL.into(), String::new());
        }
        n.network_unavailable = unavailable;
        n
    })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..SERVICES, service_object()).prop_map(|(i, s)| Event::ServiceApply(i, s)),
        1 => (0..SERVICES).prop_map(Event::ServiceDelete),
        6 => (0..SLICES, 0..SERVICES, prop::collection::vec(endpoint_strategy(), 0..4))
            .prop_map(|(i, s, e)| Event::SliceApply(i, s, e)),
        1 => (0..SLICES).prop_map(Event::SliceDelete),
        1 => node_strategy().prop_map(Event::Node),
        1 => (0..3usize).prop_map(Event::Config),
    ]
}

/// The cluster as the API server holds it, and what the glue derives from it.
struct Cluster {
    node: Node,
    config: usize,
    services: BTreeMap<usize, ServiceObject>,
    slices: BTreeMap<usize, (usize, Vec<Endpoint>)>,
}

fn key(i: usize) -> String {
    format!("ns/svc-{i}")
}

impl Cluster {
    fn input(&self, i: usize) -> Option<ServiceInput> {
        let s = self.services.get(&i)?;
        let addr = |b: u8| {
            if b < 32 {
                ip(&format!("203.0.113.{b}"))
            } else {
                ip(&format!("2001:db8:1::{:x}", b - 32))
            }
        };
        let mut labels = Vec::new();
        if s.gold {
            labels.push(("tier".to_owned(), "gold".to_owned()));
        }
        Some(ServiceInput {
            service: Service {
                key: key(i),
                ingress_ips: s.ips.iter().map(|b| addr(*b)).collect(),
                traffic_policy: if s.local {
                    TrafficPolicy::Local
                } else {
                    TrafficPolicy::Cluster
                },
                labels,
                requested_pool: None,
                ours: s.ours,
                endpoints: self
                    .slices
                    .values()
                    .filter(|(svc, _)| *svc == i)
                    .flat_map(|(_, e)| e.iter().cloned())
                    .collect(),
            },
            annotations: s.annotations.clone(),
        })
    }

    fn inputs(&self) -> Vec<ServiceInput> {
        self.services
            .keys()
            .filter_map(|i| self.input(*i))
            .collect()
    }

    /// The Services an event touches (as the speaker's glue computes them), or `None` when it
    /// needs the full recompute.
    fn touched(&self, event: &Event) -> Option<Vec<usize>> {
        match event {
            Event::ServiceApply(i, _) | Event::ServiceDelete(i) => Some(vec![*i]),
            Event::SliceApply(i, svc, _) => {
                let mut t = vec![*svc];
                t.extend(self.slices.get(i).map(|(old, _)| *old));
                Some(t)
            }
            Event::SliceDelete(i) => {
                Some(self.slices.get(i).map(|(s, _)| *s).into_iter().collect())
            }
            Event::Node(_) | Event::Config(_) => None,
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::ServiceApply(i, s) => {
                self.services.insert(i, s);
            }
            Event::ServiceDelete(i) => {
                self.services.remove(&i);
            }
            Event::SliceApply(i, svc, e) => {
                self.slices.insert(i, (svc, e));
            }
            Event::SliceDelete(i) => {
                self.slices.remove(&i);
            }
            Event::Node(n) => self.node = n,
            Event::Config(c) => self.config = c,
        }
    }
}

/// The state knows every Service `want` decided, with the same outcome, and decides each again
/// on demand exactly as `want` did (reasons included).
fn assert_same_services(
    state: &DecisionState,
    want: &AnnounceDecision,
    inputs: &[ServiceInput],
) -> Result<(), TestCaseError> {
    prop_assert!(state.decision().services.is_empty());
    let got: Vec<&str> = state.services().map(|(key, _)| &**key).collect();
    let keys: Vec<&str> = want.services.keys().map(String::as_str).collect();
    prop_assert_eq!(got, keys);
    for input in inputs {
        let key = input.service.key.as_str();
        let (Some(sd), Some(outcome)) = (want.services.get(key), state.service(key)) else {
            return Err(TestCaseError::fail(format!("{key} not decided")));
        };
        prop_assert_eq!(outcome.announce(), sd.announce, "{}", key);
        prop_assert_eq!(&outcome.announced_ips(), &sd.announced_ips, "{}", key);
        prop_assert_eq!(&outcome.prefixes(), &sd.prefixes, "{}", key);
        prop_assert_eq!(outcome.link_bandwidth(), sd.link_bandwidth, "{}", key);
        prop_assert_eq!(&state.service_decision(input), sd, "{}", key);
    }
    Ok(())
}

/// Every peer gets the same routes and link bandwidths from both decisions, and everything
/// else but the per-Service decisions is equal (see the module documentation of `incremental`
/// for the differences in form).
fn assert_same_per_peer(
    got: &AnnounceDecision,
    want: &AnnounceDecision,
    cfg: &AnnounceConfig,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&got.node_reasons, &want.node_reasons);
    prop_assert_eq!(&got.routes, &want.routes);
    prop_assert_eq!(&got.link_bandwidth, &want.link_bandwidth);
    for p in &cfg.peers {
        let view = |d: &AnnounceDecision| {
            d.table_of(&p.key)
                .and_then(|t| d.view(t))
                .map(|v| (v.routes.clone(), v.link_bandwidth.clone()))
        };
        prop_assert_eq!(view(got), view(want), "peer {}", p.key);
        prop_assert_eq!(
            got.table_of(&p.key) == Some(PeerTable::All),
            want.table_of(&p.key) == Some(PeerTable::All)
        );
    }
    Ok(())
}

/// The reference: `decide`, then the accepted per-Service attributes.
fn full(node: &Node, cfg: &StateConfig, inputs: &[ServiceInput]) -> AnnounceDecision {
    let services: Vec<Service> = inputs.iter().map(|i| i.service.clone()).collect();
    let mut d = decide(node, &services, &cfg.announce);
    let accepted = service_attributes::accepted_service_attributes(
        &d,
        &cfg.announce,
        &cfg.aliases,
        inputs
            .iter()
            .map(|i| (i.service.key.clone(), &i.annotations)),
    );
    apply_service_attributes(&mut d, &accepted);
    d
}

/// Every prefix whose route or link bandwidth differs between two decisions, in any table a
/// peer gets.
fn differing(
    a: &AnnounceDecision,
    b: &AnnounceDecision,
    cfg: &AnnounceConfig,
) -> BTreeSet<ipnet::IpNet> {
    let mut out = BTreeSet::new();
    let mut views = vec![(a.view(PeerTable::All), b.view(PeerTable::All))];
    for p in &cfg.peers {
        views.push((
            a.table_of(&p.key).and_then(|t| a.view(t)),
            b.table_of(&p.key).and_then(|t| b.view(t)),
        ));
    }
    let empty = BTreeMap::new();
    let empty_bw = BTreeMap::new();
    for (x, y) in views {
        let (xr, xb) = x.map_or((&empty, &empty_bw), |v| (v.routes, v.link_bandwidth));
        let (yr, yb) = y.map_or((&empty, &empty_bw), |v| (v.routes, v.link_bandwidth));
        for prefix in xr.keys().chain(yr.keys()).chain(xb.keys()).chain(yb.keys()) {
            if xr.get(prefix) != yr.get(prefix) || xb.get(prefix) != yb.get(prefix) {
                out.insert(*prefix);
            }
        }
    }
    out
}

/// A peer whose table (its [`PeerTable`]) is the same in `before` and `after` gets its routes in
/// `after` by taking `before`'s and those of the `changed` prefixes from `after`.
fn patching_gives_each_peer_its_table(
    before: &AnnounceDecision,
    after: &AnnounceDecision,
    changed: &BTreeSet<ipnet::IpNet>,
    cfg: &AnnounceConfig,
) -> Result<(), TestCaseError> {
    for p in &cfg.peers {
        let table = after.table_of(&p.key);
        if before.table_of(&p.key) != table {
            continue;
        }
        let (Some(old), Some(new)) = (
            table.and_then(|t| before.view(t)),
            table.and_then(|t| after.view(t)),
        ) else {
            continue;
        };
        let mut routes = old.routes.clone();
        let mut bandwidth = old.link_bandwidth.clone();
        for prefix in changed {
            match new.routes.get(prefix) {
                Some(r) => routes.insert(*prefix, r.clone()),
                None => routes.remove(prefix),
            };
            match new.link_bandwidth.get(prefix) {
                Some(b) => bandwidth.insert(*prefix, *b),
                None => bandwidth.remove(prefix),
            };
        }
        prop_assert_eq!(&routes, new.routes, "peer {}", p.key);
        prop_assert_eq!(&bandwidth, new.link_bandwidth, "peer {}", p.key);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn incremental_equals_a_full_recompute_after_any_events(
        events in prop::collection::vec(event(), 1..40),
    ) {
        let configs = configs();
        let mut cluster = Cluster {
            node: node(NODES[0]),
            config: 0,
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
        };
        let mut state = DecisionState::new(cluster.node.clone(), configs[0].clone(), []);
        for event in events {
            let touched = cluster.touched(&event);
            cluster.apply(event);
            let before = state.decision().clone();
            let cfg = &configs[cluster.config];
            match touched {
                None => {
                    let changed = state.reset(cluster.node.clone(), cfg.clone(), cluster.inputs());
                    patching_gives_each_peer_its_table(&before, state.decision(), &changed, &cfg.announce)?;
                }
                Some(services) => {
                    let changes: Vec<ServiceChange> = services
                        .into_iter()
                        .map(|i| match cluster.input(i) {
                            Some(input) => ServiceChange::Upsert(input),
                            None => ServiceChange::Remove(key(i)),
                        })
                        .collect();
                    let changed = state.apply(changes);
                    // Exactly the prefixes that differ for some peer are reported.
                    let reachable = differing(&before, state.decision(), &cfg.announce);
                    prop_assert!(reachable.is_subset(&changed), "{reachable:?} not in {changed:?}");
                    prop_assert_eq!(&changed, &changed_prefixes(&before, state.decision()));
                    patching_gives_each_peer_its_table(&before, state.decision(), &changed, &cfg.announce)?;
                }
            }
            let inputs = cluster.inputs();
            let fresh = DecisionState::new(cluster.node.clone(), cfg.clone(), inputs.clone());
            prop_assert_eq!(state.decision(), fresh.decision());
            prop_assert_eq!(state.services().collect::<Vec<_>>(), fresh.services().collect::<Vec<_>>());
            let want = full(&cluster.node, cfg, &inputs);
            assert_same_per_peer(state.decision(), &want, &cfg.announce)?;
            assert_same_services(&state, &want, &inputs)?;
        }
    }
}

#[test]
fn an_endpointslice_change_rebuilds_only_its_services_prefixes() {
    let cfg = StateConfig {
        announce: config(),
        ..StateConfig::default()
    };
    let web = |endpoints| ServiceInput {
        service: service("ns/web", &["203.0.113.10"], endpoints),
        ..ServiceInput::default()
    };
    let db = ServiceInput {
        service: service("ns/db", &["203.0.113.11"], vec![ready("node-1")]),
        ..ServiceInput::default()
    };
    let mut state = DecisionState::new(node("node-1"), cfg, [web(vec![]), db]);
    assert_eq!(prefixes(state.decision()), ["203.0.113.11/32"]);
    let changed = state.apply([ServiceChange::Upsert(web(vec![ready("node-1")]))]);
    assert_eq!(changed, [net("203.0.113.10/32")].into());
    // The same again changes nothing.
    let changed = state.apply([ServiceChange::Upsert(web(vec![ready("node-1")]))]);
    assert!(changed.is_empty());
    let changed = state.apply([ServiceChange::Remove("ns/db".into())]);
    assert_eq!(changed, [net("203.0.113.11/32")].into());
    assert_eq!(prefixes(state.decision()), ["203.0.113.10/32"]);
    assert!(state.service("ns/db").is_none());
    assert!(state.service("ns/web").is_some_and(|s| s.announce()));
}

#[test]
fn a_full_recompute_keeps_the_keys_callers_share() {
    let cfg = StateConfig {
        announce: config(),
        ..StateConfig::default()
    };
    let input = |key: &str, ip: &str| ServiceInput {
        service: service(key, &[ip], vec![ready("node-1")]),
        ..ServiceInput::default()
    };
    let mut state = DecisionState::new(
        node("node-1"),
        cfg.clone(),
        [
            input("ns/web", "203.0.113.10"),
            input("ns/db", "203.0.113.11"),
        ],
    );
    let web = state.service_key("ns/web").cloned().expect("web is known");
    state.reset(
        node("node-1"),
        cfg,
        [
            input("ns/web", "203.0.113.10"),
            input("ns/new", "203.0.113.12"),
        ],
    );
    let again = state.service_key("ns/web").expect("web is still known");
    assert!(std::sync::Arc::ptr_eq(&web, again), "the same shared key");
    assert!(state.service_key("ns/db").is_none());
    assert_eq!(state.service_key("ns/new").map(|k| &**k), Some("ns/new"));
    let keys: Vec<&str> = state.services().map(|(key, _)| &**key).collect();
    assert_eq!(keys, ["ns/new", "ns/web"]);
}
