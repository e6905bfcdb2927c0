//! Behaviour of the allocator through its public API.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_ipam::{
    Allocator, CreationOrder, Family, FamilyPolicy, FamilyRequest, PoolDef, PoolError, PortSpec,
    Refusal, Request, ServiceKey, SharingMismatch, TrafficPolicy,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, ranges: &[(&str, &str)]) -> PoolDef {
    PoolDef {
        name: name.into(),
        ranges: ranges.iter().map(|(a, b)| (ip(a), ip(b))).collect(),
        avoid_buggy_ips: false,
        auto_assign: true,
        allocation: None,
    }
}

fn svc(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

fn aged(secs: i64) -> Request {
    Request {
        created: CreationOrder {
            created_unix_secs: secs,
            uid: format!("uid-{secs}"),
        },
        ..Request::default()
    }
}

fn shared(key: &str, ports: &[PortSpec]) -> Request {
    Request {
        sharing_key: Some(key.into()),
        ports: ports.to_vec(),
        ..Request::default()
    }
}

fn ips(a: &ferrolb_ipam::Assignment) -> Vec<IpAddr> {
    a.ips()
}

fn two_pools() -> Allocator {
    Allocator::new(&[
        pool("a", &[("203.0.113.0", "203.0.113.3")]),
        pool(
            "b",
            &[
                ("198.51.100.10", "198.51.100.20"),
                ("2001:db8::10", "2001:db8::1f"),
            ],
        ),
    ])
    .unwrap()
}

#[test]
fn lowest_free_address_wins_and_a_released_one_is_reused_first() {
    let mut a = two_pools();
    let r = Request::default();
    for (i, want) in ["203.0.113.0", "203.0.113.1", "203.0.113.2"]
        .iter()
        .enumerate()
    {
        let got = a.allocate(&svc(&format!("s{i}")), &r).unwrap();
        assert_eq!(ips(&got), vec![ip(want)]);
        assert_eq!(got.addresses[0].pool.as_deref(), Some("a"));
    }
    assert_eq!(
        a.release(&svc("s1")).map(|x| x.ips()),
        Some(vec![ip("203.0.113.1")])
    );
    assert_eq!(
        ips(&a.allocate(&svc("s9"), &r).unwrap()),
        vec![ip("203.0.113.1")]
    );
}

#[test]
fn auto_assign_pools_are_used_in_config_order_then_exhaust() {
    let mut a = two_pools();
    let r = Request::default();
    for i in 0..4 {
        a.allocate(&svc(&format!("a{i}")), &r).unwrap();
    }
    // Pool a is full: the next comes from b.
    assert_eq!(
        ips(&a.allocate(&svc("next"), &r).unwrap()),
        vec![ip("198.51.100.10")]
    );
    for i in 0..10 {
        a.allocate(&svc(&format!("b{i}")), &r).unwrap();
    }
    assert_eq!(
        a.allocate(&svc("late"), &r),
        Err(Refusal::PoolExhausted {
            family: Family::V4,
            pool: None
        })
    );
    assert_eq!(a.assignment(&svc("late")), None);
}

#[test]
fn auto_assign_false_pool_is_only_used_when_asked_for() {
    let mut quiet = pool("quiet", &[("203.0.113.0", "203.0.113.0")]);
    quiet.auto_assign = false;
    let mut a =
        Allocator::new(&[quiet, pool("open", &[("198.51.100.1", "198.51.100.1")])]).unwrap();
    assert_eq!(
        ips(&a.allocate(&svc("x"), &Request::default()).unwrap()),
        vec![ip("198.51.100.1")]
    );
    let by_pool = Request {
        pool: Some("quiet".into()),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("y"), &by_pool).unwrap()),
        vec![ip("203.0.113.0")]
    );
    a.release(&svc("y"));
    let by_ip = Request {
        requested_ips: vec![ip("203.0.113.0")],
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("z"), &by_ip).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        a.allocate(&svc("w"), &Request::default()),
        Err(Refusal::PoolExhausted {
            family: Family::V4,
            pool: None
        })
    );
}

#[test]
fn pool_annotation_picks_the_pool_and_an_unknown_pool_is_refused() {
    let mut a = two_pools();
    let r = Request {
        pool: Some("b".into()),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &r).unwrap()),
        vec![ip("198.51.100.10")]
    );
    let missing = Request {
        pool: Some("gold".into()),
        ..Request::default()
    };
    let err = a.allocate(&svc("y"), &missing).unwrap_err();
    assert_eq!(
        err,
        Refusal::NoSuchPool {
            pool: "gold".into()
        }
    );
    assert_eq!(err.reason_code(), "NoPool");
    assert_eq!(err.to_string(), "address pool \"gold\" does not exist");
}

#[test]
fn requested_address_is_honoured_or_refused_with_the_reason() {
    let mut a = two_pools();
    let want = |s: &str| Request {
        requested_ips: vec![ip(s)],
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &want("203.0.113.2")).unwrap()),
        vec![ip("203.0.113.2")]
    );
    let err = a.allocate(&svc("y"), &want("203.0.113.2")).unwrap_err();
    assert_eq!(
        err,
        Refusal::InUse {
            ip: ip("203.0.113.2"),
            by: svc("x")
        }
    );
    assert_eq!(err.reason_code(), "RequestedIPUnavailable");
    assert_eq!(
        err.to_string(),
        "requested address 203.0.113.2 is in use by default/x"
    );
    assert_eq!(
        a.allocate(&svc("y"), &want("192.0.2.1")).unwrap_err(),
        Refusal::NotInAnyPool {
            ip: ip("192.0.2.1")
        }
    );
    let wrong_pool = Request {
        pool: Some("b".into()),
        ..want("203.0.113.1")
    };
    assert_eq!(
        a.allocate(&svc("y"), &wrong_pool).unwrap_err(),
        Refusal::NotInRequestedPool {
            ip: ip("203.0.113.1"),
            pool: "b".into()
        }
    );
    // Auto allocation skips the requested address that is taken.
    assert_eq!(
        ips(&a.allocate(&svc("z"), &Request::default()).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("w"), &Request::default()).unwrap()),
        vec![ip("203.0.113.1")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("v"), &Request::default()).unwrap()),
        vec![ip("203.0.113.3")]
    );
}

#[test]
fn avoid_buggy_ips_never_hands_out_dot_zero_or_dot_255() {
    let mut p = pool("p", &[("203.0.113.0", "203.0.113.255")]);
    p.avoid_buggy_ips = true;
    let mut a = Allocator::new(&[p]).unwrap();
    let mut got = Vec::new();
    for i in 0..254 {
        got.extend(ips(&a
            .allocate(&svc(&format!("s{i}")), &Request::default())
            .unwrap()));
    }
    assert_eq!(got.first(), Some(&ip("203.0.113.1")));
    assert_eq!(got.last(), Some(&ip("203.0.113.254")));
    assert!(matches!(
        a.allocate(&svc("more"), &Request::default()),
        Err(Refusal::PoolExhausted { .. })
    ));
    let req = Request {
        requested_ips: vec![ip("203.0.113.255")],
        ..Request::default()
    };
    assert_eq!(
        a.allocate(&svc("edge"), &req).unwrap_err(),
        Refusal::AvoidedAddress {
            ip: ip("203.0.113.255"),
            pool: "p".into()
        }
    );
}

#[test]
fn sharing_key_with_disjoint_ports_shares_one_address() {
    let mut a = two_pools();
    let tcp = shared("dns", &[PortSpec::tcp(53)]);
    let udp = shared("dns", &[PortSpec::udp(53)]);
    let x = a.allocate(&svc("dns-tcp"), &tcp).unwrap();
    let y = a.allocate(&svc("dns-udp"), &udp).unwrap();
    assert_eq!(ips(&x), vec![ip("203.0.113.0")]);
    assert_eq!(ips(&y), vec![ip("203.0.113.0")]);
    assert_eq!(
        a.holders(ip("203.0.113.0")),
        vec![svc("dns-tcp"), svc("dns-udp")]
    );
    assert_eq!(a.pool_stats()[0].in_use, 1);
    // Releasing one keeps the address held by the other.
    a.release(&svc("dns-tcp"));
    assert_eq!(
        ips(&a.allocate(&svc("other"), &Request::default()).unwrap()),
        vec![ip("203.0.113.1")]
    );
    a.release(&svc("dns-udp"));
    assert_eq!(
        ips(&a.allocate(&svc("again"), &Request::default()).unwrap()),
        vec![ip("203.0.113.0")]
    );
}

#[test]
fn sharing_port_clash_is_a_sharing_conflict_naming_the_port() {
    let mut a = two_pools();
    a.allocate(&svc("web"), &shared("k", &[PortSpec::tcp(80)]))
        .unwrap();
    let clash = Request {
        requested_ips: vec![ip("203.0.113.0")],
        ..shared("k", &[PortSpec::tcp(443), PortSpec::tcp(80)])
    };
    let err = a.allocate(&svc("web2"), &clash).unwrap_err();
    assert_eq!(
        err,
        Refusal::SharingConflict {
            ip: ip("203.0.113.0"),
            with: svc("web"),
            mismatch: SharingMismatch::Port(PortSpec::tcp(80))
        }
    );
    assert_eq!(err.reason_code(), "SharingConflict");
    assert_eq!(
        err.to_string(),
        "cannot share 203.0.113.0 with default/web: both use port TCP/80"
    );
    // Without a requested address the clashing Service simply gets another address.
    let auto = shared("k", &[PortSpec::tcp(80)]);
    assert_eq!(
        ips(&a.allocate(&svc("web3"), &auto).unwrap()),
        vec![ip("203.0.113.1")]
    );
}

#[test]
fn local_policy_shares_only_with_identical_selectors() {
    let mut a = two_pools();
    let local = |app: &str, port| Request {
        traffic_policy: TrafficPolicy::Local {
            selector: BTreeMap::from([("app".to_owned(), app.to_owned())]),
        },
        ..shared("k", &[PortSpec::tcp(port)])
    };
    assert_eq!(
        ips(&a.allocate(&svc("a"), &local("web", 80)).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("b"), &local("web", 81)).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("c"), &local("db", 82)).unwrap()),
        vec![ip("203.0.113.1")]
    );
    let forced = Request {
        requested_ips: vec![ip("203.0.113.0")],
        ..local("db", 83)
    };
    assert!(matches!(
        a.allocate(&svc("d"), &forced),
        Err(Refusal::SharingConflict {
            mismatch: SharingMismatch::Backends,
            ..
        })
    ));
}

#[test]
fn dual_stack_gets_one_address_per_family_in_spec_order() {
    let mut a = two_pools();
    let r = Request {
        families: FamilyRequest::dual(Family::V6, FamilyPolicy::RequireDualStack),
        ..Request::default()
    };
    // Pool a has no IPv6, so both come from b, IPv6 first as the Service lists it.
    let got = a.allocate(&svc("ds"), &r).unwrap();
    assert_eq!(ips(&got), vec![ip("2001:db8::10"), ip("198.51.100.10")]);
    let v6 = Request {
        families: FamilyRequest::single(Family::V6),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("v6"), &v6).unwrap()),
        vec![ip("2001:db8::11")]
    );
    let stats = a.pool_stats();
    assert_eq!(stats.len(), 3);
    assert_eq!(
        (
            stats[2].pool.as_str(),
            stats[2].family,
            stats[2].total,
            stats[2].in_use
        ),
        ("b", Family::V6, 16, 2)
    );
}

#[test]
fn require_dual_stack_without_a_dual_pool_is_refused_and_prefer_falls_back() {
    let mut a = Allocator::new(&[
        pool("v4", &[("203.0.113.0", "203.0.113.0")]),
        pool("v6", &[("2001:db8::", "2001:db8::")]),
    ])
    .unwrap();
    let require = Request {
        families: FamilyRequest::dual(Family::V4, FamilyPolicy::RequireDualStack),
        ..Request::default()
    };
    let err = a.allocate(&svc("r"), &require).unwrap_err();
    assert_eq!(err, Refusal::NoDualStackPool { pool: None });
    assert_eq!(err.reason_code(), "NoPool");
    let prefer = Request {
        families: FamilyRequest::dual(Family::V4, FamilyPolicy::PreferDualStack),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("p"), &prefer).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("q"), &prefer).unwrap()),
        vec![ip("2001:db8::")]
    );
    assert_eq!(
        a.allocate(&svc("s"), &prefer).unwrap_err(),
        Refusal::PoolExhausted {
            family: Family::V4,
            pool: None
        }
    );
    let only_v6_in_v4_pool = Request {
        families: FamilyRequest::single(Family::V6),
        pool: Some("v4".into()),
        ..Request::default()
    };
    assert_eq!(
        a.allocate(&svc("t"), &only_v6_in_v4_pool).unwrap_err(),
        Refusal::FamilyUnavailable {
            family: Family::V6,
            pool: Some("v4".into())
        }
    );
}

#[test]
fn requested_addresses_must_match_the_families() {
    let mut a = two_pools();
    let r = Request {
        requested_ips: vec![ip("2001:db8::10")],
        ..Request::default()
    };
    assert_eq!(
        a.allocate(&svc("x"), &r).unwrap_err().reason_code(),
        "InvalidRequest"
    );
    let two_v4 = Request {
        requested_ips: vec![ip("203.0.113.1"), ip("203.0.113.2")],
        families: FamilyRequest::dual(Family::V4, FamilyPolicy::RequireDualStack),
        ..Request::default()
    };
    assert_eq!(
        a.allocate(&svc("x"), &two_v4).unwrap_err().reason_code(),
        "InvalidRequest"
    );
    let both = Request {
        requested_ips: vec![ip("198.51.100.15"), ip("2001:db8::15")],
        families: FamilyRequest::dual(Family::V6, FamilyPolicy::RequireDualStack),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &both).unwrap()),
        vec![ip("2001:db8::15"), ip("198.51.100.15")]
    );
}

#[test]
fn allocate_is_idempotent_and_keeps_a_valid_assignment_when_the_request_changes() {
    let mut a = two_pools();
    let r = Request::default();
    let first = a.allocate(&svc("x"), &r).unwrap();
    a.allocate(&svc("y"), &r).unwrap();
    a.release(&svc("y"));
    assert_eq!(a.allocate(&svc("x"), &r).unwrap(), first);
    // Ports changing does not move the address.
    let more_ports = Request {
        ports: vec![PortSpec::tcp(8080)],
        ..r.clone()
    };
    assert_eq!(a.allocate(&svc("x"), &more_ports).unwrap(), first);
    // A pool annotation that the address does not satisfy moves it.
    let to_b = Request {
        pool: Some("b".into()),
        ..r.clone()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &to_b).unwrap()),
        vec![ip("198.51.100.10")]
    );
    // The old address is free again.
    assert_eq!(
        ips(&a.allocate(&svc("z"), &r).unwrap()),
        vec![ip("203.0.113.0")]
    );
    // Annotating the pool the address is already in changes nothing.
    assert_eq!(
        ips(&a
            .allocate(
                &svc("z"),
                &Request {
                    pool: Some("a".into()),
                    ..r
                }
            )
            .unwrap()),
        vec![ip("203.0.113.0")]
    );
}

#[test]
fn sharing_key_change_with_a_sharer_moves_the_changed_service() {
    let mut a = two_pools();
    a.allocate(&svc("p"), &shared("k", &[PortSpec::tcp(1)]))
        .unwrap();
    a.allocate(&svc("q"), &shared("k", &[PortSpec::tcp(2)]))
        .unwrap();
    let got = a
        .allocate(&svc("q"), &shared("k", &[PortSpec::tcp(1)]))
        .unwrap();
    assert_eq!(ips(&got), vec![ip("203.0.113.1")]);
    assert_eq!(a.holders(ip("203.0.113.0")), vec![svc("p")]);
}

#[test]
fn re_registration_keeps_exact_addresses_and_the_older_claim_wins() {
    let mut a = two_pools();
    a.register_existing(&svc("new"), &aged(200), &[ip("203.0.113.2")])
        .unwrap();
    // An older Service claiming the same address displaces the newer one.
    let reg = a
        .register_existing(&svc("old"), &aged(100), &[ip("203.0.113.2")])
        .unwrap();
    assert_eq!(reg.displaced, vec![svc("new")]);
    assert_eq!(a.holders(ip("203.0.113.2")), vec![svc("old")]);
    // A newer one is refused.
    let err = a
        .register_existing(&svc("newer"), &aged(300), &[ip("203.0.113.2")])
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::InUse {
            ip: ip("203.0.113.2"),
            by: svc("old")
        }
    );
    // New allocations never hand out a re-registered address.
    assert_eq!(
        ips(&a.allocate(&svc("n1"), &Request::default()).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("n2"), &Request::default()).unwrap()),
        vec![ip("203.0.113.1")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("n3"), &Request::default()).unwrap()),
        vec![ip("203.0.113.3")]
    );
}

#[test]
fn from_existing_does_not_depend_on_list_order() {
    let pools = [pool("a", &[("203.0.113.0", "203.0.113.3")])];
    let entries = vec![
        (svc("young"), aged(50), vec![ip("203.0.113.1")]),
        (svc("old"), aged(10), vec![ip("203.0.113.1")]),
        (svc("other"), aged(30), vec![ip("203.0.113.3")]),
    ];
    let (a, refused) = Allocator::from_existing(&pools, entries.clone()).unwrap();
    let mut reversed = entries;
    reversed.reverse();
    let (b, refused_b) = Allocator::from_existing(&pools, reversed).unwrap();
    assert_eq!(
        refused,
        vec![(
            svc("young"),
            Refusal::InUse {
                ip: ip("203.0.113.1"),
                by: svc("old")
            }
        )]
    );
    assert_eq!(refused, refused_b);
    let snap = |x: &Allocator| {
        x.assignments()
            .map(|(k, v)| (k.clone(), v.ips()))
            .collect::<Vec<_>>()
    };
    assert_eq!(snap(&a), snap(&b));
    assert_eq!(
        snap(&a),
        vec![
            (svc("old"), vec![ip("203.0.113.1")]),
            (svc("other"), vec![ip("203.0.113.3")])
        ]
    );
}

#[test]
fn re_registration_refuses_addresses_that_do_not_fit_the_request() {
    let mut a = two_pools();
    let in_b = Request {
        pool: Some("b".into()),
        ..Request::default()
    };
    assert_eq!(
        a.register_existing(&svc("x"), &in_b, &[ip("203.0.113.1")])
            .unwrap_err(),
        Refusal::NotInRequestedPool {
            ip: ip("203.0.113.1"),
            pool: "b".into()
        }
    );
    assert_eq!(
        a.register_existing(&svc("x"), &Request::default(), &[ip("2001:db8::10")])
            .unwrap_err()
            .reason_code(),
        "InvalidRequest"
    );
    // An address in no pool is kept, as stranded.
    a.register_existing(&svc("x"), &Request::default(), &[ip("198.51.100.99")])
        .unwrap();
    assert_eq!(a.stranded(), vec![(svc("x"), ip("198.51.100.99"))]);
    assert!(a.assignment(&svc("x")).unwrap().is_stranded());
}

#[test]
fn pool_change_keeps_stranded_addresses_and_never_reuses_them() {
    let mut a = two_pools();
    let r = Request::default();
    a.allocate(&svc("x"), &r).unwrap(); // 203.0.113.0
    a.allocate(&svc("y"), &r).unwrap(); // 203.0.113.1
    // Shrink pool a to .1-.3: .0 is stranded.
    let change = a
        .set_pools(&[
            pool("a", &[("203.0.113.1", "203.0.113.3")]),
            pool("b", &[("198.51.100.10", "198.51.100.20")]),
        ])
        .unwrap();
    assert_eq!(change.stranded, vec![(svc("x"), ip("203.0.113.0"))]);
    assert!(change.misplaced.is_empty());
    // The stranded Service keeps its address on the next reconcile.
    assert_eq!(
        ips(&a.allocate(&svc("x"), &r).unwrap()),
        vec![ip("203.0.113.0")]
    );
    assert_eq!(a.pool_stats()[0].in_use, 1);
    assert_eq!(
        ips(&a.allocate(&svc("z"), &r).unwrap()),
        vec![ip("203.0.113.2")]
    );
    // Growing the pool back adopts it again; nobody else got it in the meantime.
    let change = a
        .set_pools(&[pool("a", &[("203.0.113.0", "203.0.113.3")])])
        .unwrap();
    assert!(change.stranded.is_empty());
    assert_eq!(a.pool_stats()[0].in_use, 3);
    assert_eq!(
        ips(&a.allocate(&svc("w"), &r).unwrap()),
        vec![ip("203.0.113.3")]
    );
    // Releasing a stranded address does not put it into any pool.
    a.set_pools(&[pool("c", &[("198.51.100.0", "198.51.100.0")])])
        .unwrap();
    a.release(&svc("x"));
    assert_eq!(a.pool_stats()[0].in_use, 0);
    assert_eq!(
        ips(&a.allocate(&svc("v"), &r).unwrap()),
        vec![ip("198.51.100.0")]
    );
}

#[test]
fn invalid_pools_leave_the_old_ones_in_force() {
    let mut a = two_pools();
    a.allocate(&svc("x"), &Request::default()).unwrap();
    let err = a
        .set_pools(&[
            pool("a", &[("203.0.113.0", "203.0.113.9")]),
            pool("a", &[("198.51.100.0", "198.51.100.9")]),
        ])
        .unwrap_err();
    assert_eq!(err, PoolError::DuplicateName { name: "a".into() });
    assert_eq!(a.pool_stats()[0].total, 4);
    assert_eq!(
        ips(&a.allocate(&svc("y"), &Request::default()).unwrap()),
        vec![ip("203.0.113.1")]
    );
}

#[test]
fn pool_change_reports_services_now_outside_their_annotated_pool() {
    let mut a = two_pools();
    let in_a = Request {
        pool: Some("a".into()),
        ..Request::default()
    };
    a.allocate(&svc("x"), &in_a).unwrap();
    let change = a
        .set_pools(&[
            pool("a", &[("203.0.113.1", "203.0.113.3")]),
            pool("b", &[("203.0.113.0", "203.0.113.0")]),
        ])
        .unwrap();
    assert_eq!(change.misplaced, vec![svc("x")]);
    assert!(change.stranded.is_empty());
    assert_eq!(
        ips(&a.allocate(&svc("x"), &in_a).unwrap()),
        vec![ip("203.0.113.1")]
    );
}

#[test]
fn huge_ipv6_pools_count_without_per_address_storage() {
    let mut a = Allocator::new(&[pool(
        "v6",
        &[("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")],
    )])
    .unwrap();
    let v6 = Request {
        families: FamilyRequest::single(Family::V6),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &v6).unwrap()),
        vec![ip("2001:db8::")]
    );
    let stats = a.pool_stats();
    assert_eq!(stats[0].total, 1u128 << 64);
    assert_eq!(stats[0].in_use, 1);
}

#[test]
fn reordering_ip_families_keeps_the_addresses_and_follows_the_new_order() {
    let mut a = two_pools();
    let v6_first = Request {
        families: FamilyRequest::dual(Family::V6, FamilyPolicy::RequireDualStack),
        ..Request::default()
    };
    let v4_first = Request {
        families: FamilyRequest::dual(Family::V4, FamilyPolicy::PreferDualStack),
        ..Request::default()
    };
    assert_eq!(
        ips(&a.allocate(&svc("x"), &v6_first).unwrap()),
        vec![ip("2001:db8::10"), ip("198.51.100.10")]
    );
    assert_eq!(
        ips(&a.allocate(&svc("x"), &v4_first).unwrap()),
        vec![ip("198.51.100.10"), ip("2001:db8::10")]
    );
    assert_eq!(
        ips(&a.assignment(&svc("x")).unwrap()),
        vec![ip("198.51.100.10"), ip("2001:db8::10")]
    );
}

#[test]
fn a_stranded_address_inside_a_pool_is_never_shared_out() {
    let mut p = pool("p", &[("198.51.100.0", "198.51.100.3")]);
    let mut a = Allocator::new(std::slice::from_ref(&p)).unwrap();
    let want = Request {
        requested_ips: vec![ip("198.51.100.0")],
        ..shared("k", &[PortSpec::tcp(80)])
    };
    a.allocate(&svc("x"), &want).unwrap();
    // avoid-buggy-ips now excludes .0: x keeps it (stranded), nobody else may join it.
    p.avoid_buggy_ips = true;
    let change = a.set_pools(&[p]).unwrap();
    assert_eq!(change.stranded, vec![(svc("x"), ip("198.51.100.0"))]);
    let join = Request {
        requested_ips: vec![ip("198.51.100.0")],
        ..shared("k", &[PortSpec::tcp(81)])
    };
    assert_eq!(
        a.allocate(&svc("y"), &join).unwrap_err(),
        Refusal::AvoidedAddress {
            ip: ip("198.51.100.0"),
            pool: "p".into()
        }
    );
    assert_eq!(
        ips(&a.allocate(&svc("x"), &want).unwrap()),
        vec![ip("198.51.100.0")]
    );
}

#[test]
fn restart_with_1000_services_keeps_every_address_and_gives_50_new_distinct_ones() {
    let pools = [pool("v6", &[("2001:db8::", "2001:db8::fff")])];
    let v6 = |i: usize| Request {
        families: FamilyRequest::single(Family::V6),
        created: CreationOrder {
            created_unix_secs: i as i64,
            uid: format!("uid-{i}"),
        },
        ..Request::default()
    };
    let mut before = Allocator::new(&pools).unwrap();
    for i in 0..1100 {
        before.allocate(&svc(&format!("s{i}")), &v6(i)).unwrap();
    }
    // Holes: every 11th Service was deleted, so the pool is fragmented.
    for i in (0..1100).step_by(11) {
        before.release(&svc(&format!("s{i}")));
    }
    let recorded: BTreeMap<ServiceKey, Vec<IpAddr>> = before
        .assignments()
        .map(|(k, a)| (k.clone(), a.ips()))
        .collect();
    assert_eq!(recorded.len(), 1000);
    // The controller restarts: status is re-read (in list order, here reversed), then 50 new Services arrive.
    let listed: Vec<_> = recorded
        .iter()
        .rev()
        .map(|(k, ips)| {
            let i: usize = k.name.trim_start_matches('s').parse().unwrap();
            (k.clone(), v6(i), ips.clone())
        })
        .collect();
    let (mut after, refused) = Allocator::from_existing(&pools, listed).unwrap();
    assert!(refused.is_empty());
    let mut new_ips = BTreeSet::new();
    for i in 2000..2050 {
        let got = after
            .allocate(&svc(&format!("s{i}")), &v6(i))
            .unwrap()
            .ips();
        assert!(new_ips.insert(got[0]), "{} handed out twice", got[0]);
        assert!(
            recorded.values().all(|v| v[0] != got[0]),
            "{} was already in use",
            got[0]
        );
    }
    // Existing Services reconcile without any change.
    for (k, ips_before) in &recorded {
        let i: usize = k.name.trim_start_matches('s').parse().unwrap();
        assert_eq!(&after.allocate(k, &v6(i)).unwrap().ips(), ips_before);
    }
    // The 50 filled the 100 holes from the lowest up.
    assert_eq!(new_ips.first(), Some(&ip("2001:db8::")));
    assert_eq!(
        new_ips.last(),
        Some(&ip(&format!("2001:db8::{:x}", 49 * 11)))
    );
}
