//! `service-allocation` rules, namespace fences and sharing across namespaces, through the
//! allocator's public API: each rule with its exact refusal, and properties over random request
//! sequences.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_config::{NodeSelector, ServiceAllocation};
use ferrolb_ipam::{Allocator, Family, PoolDef, PortSpec, Refusal, Request, ServiceKey};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> NodeSelector {
    NodeSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn pool(name: &str, first: &str, last: &str, allocation: Option<ServiceAllocation>) -> PoolDef {
    PoolDef {
        name: name.into(),
        ranges: vec![(ip(first), ip(last))],
        avoid_buggy_ips: false,
        auto_assign: true,
        allocation,
    }
}

fn for_namespaces(names: &[&str], exclusive: bool) -> Option<ServiceAllocation> {
    Some(ServiceAllocation {
        namespaces: names.iter().map(|n| n.to_string()).collect(),
        exclusive,
        ..ServiceAllocation::default()
    })
}

/// `open` (no rules), `team-a` (exclusive for team-a), `web` (Services labelled app=web).
fn tenants() -> Allocator {
    Allocator::new(&[
        pool("open", "198.51.100.1", "198.51.100.4", None),
        pool(
            "team-a",
            "203.0.113.1",
            "203.0.113.2",
            for_namespaces(&["team-a"], true),
        ),
        pool(
            "web",
            "198.18.0.1",
            "198.18.0.2",
            Some(ServiceAllocation {
                service_selectors: vec![selector(&[("app", "web")])],
                ..ServiceAllocation::default()
            }),
        ),
    ])
    .unwrap()
}

fn key(ns: &str, name: &str) -> ServiceKey {
    ServiceKey::new(ns, name)
}

fn requesting(s: &str) -> Request {
    Request {
        requested_ips: vec![ip(s)],
        ..Request::default()
    }
}

fn in_pool(p: &str) -> Request {
    Request {
        pool: Some(p.into()),
        ..Request::default()
    }
}

fn rule(r: Result<ferrolb_ipam::Assignment, Refusal>) -> String {
    match r {
        Err(Refusal::NotAllowed { rule }) => rule,
        other => panic!("expected NotAllowed, got {other:?}"),
    }
}

#[test]
fn a_fenced_namespace_gets_only_its_pools_and_exhausts_there() {
    let mut a = tenants();
    let got: Vec<IpAddr> = (0..2)
        .map(|i| {
            a.allocate(&key("team-a", &format!("s{i}")), &Request::default())
                .unwrap()
                .ips()[0]
        })
        .collect();
    assert_eq!(got, vec![ip("203.0.113.1"), ip("203.0.113.2")]);
    assert_eq!(
        a.allocate(&key("team-a", "s2"), &Request::default()),
        Err(Refusal::PoolExhausted {
            family: Family::V4,
            pool: None
        })
    );
    assert_eq!(
        a.allocate(&key("team-a", "s2"), &Request::default())
            .unwrap_err()
            .reason_code(),
        "PoolExhausted"
    );
}

#[test]
fn a_fenced_namespace_may_not_request_or_annotate_outside_its_pools() {
    let mut a = tenants();
    assert_eq!(
        rule(a.allocate(&key("team-a", "x"), &requesting("198.51.100.3"))),
        "requested address 198.51.100.3: namespace \"team-a\" is fenced in by address pool \"team-a\" (exclusive): it gets addresses only from pools whose namespaces or namespace-selectors select it, and address pool \"open\" does not"
    );
    assert_eq!(
        rule(a.allocate(&key("team-a", "x"), &in_pool("open"))),
        "namespace \"team-a\" is fenced in by address pool \"team-a\" (exclusive): it gets addresses only from pools whose namespaces or namespace-selectors select it, and address pool \"open\" does not"
    );
    assert_eq!(a.assignment(&key("team-a", "x")), None);
}

#[test]
fn other_namespaces_may_not_take_from_a_pool_with_rules() {
    let mut a = tenants();
    assert_eq!(
        rule(a.allocate(&key("team-b", "x"), &requesting("203.0.113.1"))),
        "requested address 203.0.113.1: address pool \"team-a\" does not serve namespace \"team-b\" (its service-allocation names namespaces [team-a])"
    );
    assert_eq!(
        rule(a.allocate(&key("team-b", "x"), &in_pool("team-a"))),
        "address pool \"team-a\" does not serve namespace \"team-b\" (its service-allocation names namespaces [team-a])"
    );
    // Automatic assignment skips it (and the web pool, whose selector the Service does not match).
    let got = a
        .allocate(&key("team-b", "x"), &Request::default())
        .unwrap();
    assert_eq!(got.ips(), vec![ip("198.51.100.1")]);
}

#[test]
fn service_selectors_match_the_services_own_labels() {
    let mut a = tenants();
    let web = Request {
        labels: labels(&[("app", "web")]),
        pool: Some("web".into()),
        ..Request::default()
    };
    assert_eq!(
        a.allocate(&key("team-b", "w"), &web).unwrap().ips(),
        vec![ip("198.18.0.1")]
    );
    assert_eq!(
        rule(a.allocate(&key("team-b", "v"), &in_pool("web"))),
        "address pool \"web\" serves only Services matching its service-selectors, and the labels of team-b/v match none"
    );
    // A fenced namespace may not use a pool that selects only by Service labels.
    assert!(
        rule(a.allocate(&key("team-a", "w"), &web))
            .starts_with("namespace \"team-a\" is fenced in")
    );
}

#[test]
fn namespace_selectors_match_the_namespace_labels_and_priority_orders_pools() {
    let mut a = Allocator::new(&[
        pool("open", "198.51.100.1", "198.51.100.4", None),
        pool(
            "tenant-a",
            "203.0.113.1",
            "203.0.113.2",
            Some(ServiceAllocation {
                priority: Some(10),
                namespace_selectors: vec![selector(&[("tenant", "a")])],
                ..ServiceAllocation::default()
            }),
        ),
        pool(
            "first",
            "198.18.0.1",
            "198.18.0.1",
            Some(ServiceAllocation {
                priority: Some(-1),
                ..ServiceAllocation::default()
            }),
        ),
    ])
    .unwrap();
    let tenant_a = Request {
        namespace_labels: labels(&[("tenant", "a")]).into(),
        ..Request::default()
    };
    let order: Vec<IpAddr> = (0..4)
        .map(|i| {
            a.allocate(&key("x", &format!("s{i}")), &tenant_a)
                .unwrap()
                .ips()[0]
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ip("198.18.0.1"),
            ip("203.0.113.1"),
            ip("203.0.113.2"),
            ip("198.51.100.1")
        ],
        "priority -1, then 10, then the pool without priority"
    );
    let other = a.allocate(&key("y", "s"), &Request::default()).unwrap();
    assert_eq!(other.ips(), vec![ip("198.51.100.2")]);
}

#[test]
fn no_auto_assign_pool_allowed_is_not_allowed_naming_the_rule() {
    let mut a = Allocator::new(&[pool(
        "team-a",
        "203.0.113.1",
        "203.0.113.2",
        for_namespaces(&["team-a"], false),
    )])
    .unwrap();
    assert_eq!(
        rule(a.allocate(&key("team-b", "x"), &Request::default())),
        "no auto-assign address pool serves team-b/x: address pool \"team-a\" does not serve namespace \"team-b\" (its service-allocation names namespaces [team-a])"
    );
}

fn sharing(k: &str, port: u16, with: &[&str]) -> Request {
    Request {
        sharing_key: Some(k.into()),
        ports: vec![PortSpec::tcp(port)],
        share_with_namespaces: with.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
        ..Request::default()
    }
}

#[test]
fn sharing_across_namespaces_needs_both_opt_ins() {
    let mut a = Allocator::new(&[pool("open", "198.51.100.1", "198.51.100.4", None)]).unwrap();
    let first = a
        .allocate(&key("shared", "web"), &sharing("k", 80, &[]))
        .unwrap()
        .ips();
    // Same namespace: shared as today.
    let same = a
        .allocate(&key("shared", "dns"), &sharing("k", 53, &[]))
        .unwrap();
    assert_eq!(same.ips(), first);
    // Another namespace reusing the key gets its own address, and may not request the shared one.
    let other = a
        .allocate(&key("team-b", "x"), &sharing("k", 81, &["shared"]))
        .unwrap();
    assert_ne!(other.ips(), first);
    let mut explicit = sharing("k", 82, &["shared"]);
    explicit.requested_ips = first.clone();
    assert_eq!(
        rule(a.allocate(&key("team-b", "y"), &explicit)),
        "address 198.51.100.1 is held by shared/dns: sharing an address across namespaces needs both Services to name the other's namespace in annotation ferrolb.io/share-with-namespaces"
    );
    // Once both holders opt in, it is shared.
    a.allocate(&key("shared", "web"), &sharing("k", 80, &["team-b"]))
        .unwrap();
    a.allocate(&key("shared", "dns"), &sharing("k", 53, &["team-b"]))
        .unwrap();
    assert_eq!(
        a.allocate(&key("team-b", "y"), &explicit).unwrap().ips(),
        first
    );
    assert_eq!(a.outside_rules(), vec![]);
}

#[test]
fn changes_keep_addresses_and_report_them_outside_the_rules() {
    let mut a = tenants();
    let b = a
        .allocate(&key("team-b", "x"), &Request::default())
        .unwrap();
    assert_eq!(b.ips(), vec![ip("198.51.100.1")]);
    // team-b becomes fenced into a pool of its own: its address stays, reported.
    let mut pools = vec![
        pool("open", "198.51.100.1", "198.51.100.4", None),
        pool(
            "team-b",
            "203.0.113.1",
            "203.0.113.2",
            for_namespaces(&["team-b"], true),
        ),
    ];
    a.set_pools(&pools).unwrap();
    assert_eq!(
        a.allocate(&key("team-b", "x"), &Request::default())
            .unwrap()
            .ips(),
        vec![ip("198.51.100.1")],
        "nothing moves by itself"
    );
    assert_eq!(
        a.outside_rules(),
        vec![(
            key("team-b", "x"),
            ip("198.51.100.1"),
            "namespace \"team-b\" is fenced in by address pool \"team-b\" (exclusive): it gets addresses only from pools whose namespaces or namespace-selectors select it, and address pool \"open\" does not".to_string()
        )]
    );
    // A namespace label change does the same through the request.
    pools[1] = pool(
        "team-b",
        "203.0.113.1",
        "203.0.113.2",
        Some(ServiceAllocation {
            namespace_selectors: vec![selector(&[("tenant", "b")])],
            ..ServiceAllocation::default()
        }),
    );
    a.set_pools(&pools).unwrap();
    assert_eq!(a.outside_rules(), vec![]);
    let labelled = Request {
        namespace_labels: labels(&[("tenant", "b")]).into(),
        pool: Some("team-b".into()),
        ..Request::default()
    };
    let got = a.allocate(&key("team-b", "y"), &labelled).unwrap();
    assert_eq!(got.ips(), vec![ip("203.0.113.1")]);
    a.allocate(&key("team-b", "y"), &in_pool("team-b")).unwrap();
    assert_eq!(
        a.outside_rules(),
        vec![(
            key("team-b", "y"),
            ip("203.0.113.1"),
            "address pool \"team-b\" does not serve namespace \"team-b\" (its service-allocation has 1 namespace-selector, which does not match)".to_string()
        )]
    );
}

/// One step of a random sequence: which namespace, which Service, what it asks for.
#[derive(Debug, Clone)]
enum Step {
    Auto {
        ns: usize,
        svc: u8,
    },
    Requested {
        ns: usize,
        svc: u8,
        last: u8,
        pool: usize,
    },
    Annotated {
        ns: usize,
        svc: u8,
        pool: usize,
    },
    Shared {
        ns: usize,
        svc: u8,
        port: u16,
    },
    Release {
        ns: usize,
        svc: u8,
    },
}

const NAMESPACES: [&str; 3] = ["team-a", "team-b", "shared"];
const POOLS: [(&str, &str); 4] = [
    ("open", "198.51.100."),
    ("team-a", "203.0.113."),
    ("web", "198.18.0."),
    ("open2", "198.18.1."),
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..6u8).prop_map(|(ns, svc)| Step::Auto { ns, svc }),
        (0..3usize, 0..6u8, 1..4u8, 0..4usize).prop_map(|(ns, svc, last, pool)| Step::Requested {
            ns,
            svc,
            last,
            pool
        }),
        (0..3usize, 0..6u8, 0..4usize).prop_map(|(ns, svc, pool)| Step::Annotated {
            ns,
            svc,
            pool
        }),
        (0..3usize, 0..6u8, 1..4u16).prop_map(|(ns, svc, port)| Step::Shared { ns, svc, port }),
        (0..3usize, 0..6u8).prop_map(|(ns, svc)| Step::Release { ns, svc }),
    ]
}

fn prop_pools() -> Vec<PoolDef> {
    let web = Some(ServiceAllocation {
        service_selectors: vec![selector(&[("app", "web")])],
        ..ServiceAllocation::default()
    });
    let allocation = [None, for_namespaces(&["team-a"], true), web, None];
    POOLS
        .iter()
        .zip(allocation)
        .map(|((name, prefix), allocation)| {
            pool(
                name,
                &format!("{prefix}1"),
                &format!("{prefix}3"),
                allocation,
            )
        })
        .collect()
}

fn pool_of(ip: IpAddr) -> &'static str {
    let text = ip.to_string();
    POOLS
        .iter()
        .find(|(_, prefix)| text.starts_with(prefix))
        .map_or("none", |(name, _)| name)
}

proptest! {
    /// No sequence of requests gives team-a an address outside its pool, and no Service of
    /// another namespace an address from team-a's pool or (without app=web) from the web pool.
    #[test]
    fn fences_and_rules_hold_for_any_request_sequence(steps in proptest::collection::vec(step(), 1..40)) {
        let mut a = Allocator::new(&prop_pools()).unwrap();
        for s in steps {
            let (ns, svc, mut request) = match s {
                Step::Auto { ns, svc } => (ns, svc, Request::default()),
                Step::Requested { ns, svc, last, pool } => {
                    (ns, svc, requesting(&format!("{}{last}", POOLS[pool].1)))
                }
                Step::Annotated { ns, svc, pool } => (ns, svc, in_pool(POOLS[pool].0)),
                Step::Shared { ns, svc, port } => {
                    // Services s0, s3 opt in to sharing with every namespace, always.
                    let with: Vec<&str> = if svc % 3 == 0 { NAMESPACES.to_vec() } else { vec![] };
                    (ns, svc, sharing("k", port, &with))
                }
                Step::Release { ns, svc } => {
                    a.release(&key(NAMESPACES[ns], &format!("s{svc}")));
                    continue;
                }
            };
            // A Service's labels and opt-ins never change here (a change keeps its address, outside the rules).
            if svc % 2 == 0 {
                request.labels = labels(&[("app", "web")]);
            }
            let k = key(NAMESPACES[ns], &format!("s{svc}"));
            if let Ok(got) = a.allocate(&k, &request) {
                for address in got.ips() {
                    let p = pool_of(address);
                    if ns == 0 {
                        prop_assert_eq!(p, "team-a", "{} got {}", k, address);
                    } else {
                        prop_assert_ne!(p, "team-a", "{} got {}", k, address);
                        if p == "web" {
                            prop_assert_eq!(request.labels.get("app").map(String::as_str), Some("web"));
                        }
                    }
                }
            }
            // Nothing is ever outside the rules when the rules never changed.
            prop_assert_eq!(a.outside_rules(), vec![]);
            // Every shared address is shared only within a namespace or with both opt-ins.
            for (holder, assignment) in a.assignments() {
                for address in assignment.ips() {
                    for other in a.holders(address) {
                        if other.namespace != holder.namespace {
                            let opted_in = |k: &ServiceKey| k.name == "s0" || k.name == "s3";
                            prop_assert!(opted_in(holder) && opted_in(&other), "{} and {} share {}", holder, other, address);
                        }
                    }
                }
            }
        }
    }
}
