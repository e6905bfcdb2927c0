//! Property tests over random sequences of allocate, release, pool change and sharing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_ipam::{
    Allocator, Assignment, CreationOrder, Family, FamilyPolicy, FamilyRequest, PoolDef, PortSpec,
    Refusal, Request, ServiceKey, TrafficPolicy,
};
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pool(name: &str, ranges: &[(&str, &str)], avoid_buggy_ips: bool, auto_assign: bool) -> PoolDef {
    PoolDef {
        name: name.into(),
        ranges: ranges.iter().map(|(a, b)| (ip(a), ip(b))).collect(),
        avoid_buggy_ips,
        auto_assign,
        allocation: None,
    }
}

/// Small pool sets, so that exhaustion, stranding and sharing all happen often.
fn pool_set(which: u8) -> Vec<PoolDef> {
    match which % 3 {
        0 => vec![
            pool("p", &[("203.0.113.0", "203.0.113.4")], false, true),
            pool(
                "q",
                &[
                    ("198.51.100.254", "198.51.101.1"),
                    ("2001:db8::1", "2001:db8::3"),
                ],
                true,
                true,
            ),
        ],
        1 => vec![
            pool(
                "q",
                &[
                    ("203.0.113.2", "203.0.113.6"),
                    ("2001:db8::", "2001:db8::1"),
                ],
                false,
                true,
            ),
            pool("r", &[("198.51.100.254", "198.51.101.1")], false, false),
        ],
        _ => vec![
            pool("p", &[("2001:db8::2", "2001:db8::5")], false, true),
            pool(
                "r",
                &[
                    ("203.0.113.0", "203.0.113.1"),
                    ("198.51.101.0", "198.51.101.0"),
                ],
                true,
                true,
            ),
        ],
    }
}

const REQUESTABLE: [&str; 7] = [
    "203.0.113.0",
    "203.0.113.3",
    "203.0.113.6",
    "198.51.100.255",
    "198.51.101.1",
    "2001:db8::2",
    "2001:db8::9",
];

/// The sharing rule, written out independently of the crate's own check.
fn may_share(a: &Request, b: &Request) -> bool {
    let same_key = a.sharing_key.is_some() && a.sharing_key == b.sharing_key;
    let disjoint_ports = a.ports.iter().all(|p| !b.ports.contains(p));
    let same_backends = match (&a.traffic_policy, &b.traffic_policy) {
        (TrafficPolicy::Cluster, TrafficPolicy::Cluster) => true,
        (TrafficPolicy::Local { selector: x }, TrafficPolicy::Local { selector: y }) => x == y,
        _ => false,
    };
    same_key && disjoint_ports && same_backends
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(usize, Box<Request>),
    Release(usize),
    SetPools(u8),
}

fn key(i: usize) -> ServiceKey {
    ServiceKey::new("ns", format!("svc{i}"))
}

fn request_strategy(svc: usize) -> impl Strategy<Value = Request> {
    (
        prop::option::weighted(0.2, prop::sample::select(REQUESTABLE.to_vec())),
        prop::option::weighted(0.25, prop::sample::select(vec!["p", "q", "r", "gold"])),
        0u8..5,
        prop::option::weighted(0.6, prop::sample::select(vec!["k1", "k2"])),
        prop::collection::btree_set(
            prop::sample::select(vec![
                PortSpec::tcp(80),
                PortSpec::tcp(443),
                PortSpec::udp(53),
            ]),
            0..3,
        ),
        0u8..3,
    )
        .prop_map(
            move |(requested, pool, fam, sharing, ports, policy)| Request {
                requested_ips: requested.map(ip).into_iter().collect(),
                pool: pool.map(str::to_owned),
                families: match fam {
                    0 | 1 => FamilyRequest::single(Family::V4),
                    2 => FamilyRequest::single(Family::V6),
                    3 => FamilyRequest::dual(Family::V4, FamilyPolicy::PreferDualStack),
                    _ => FamilyRequest::dual(Family::V6, FamilyPolicy::RequireDualStack),
                },
                sharing_key: sharing.map(str::to_owned),
                ports: ports.into_iter().collect(),
                traffic_policy: match policy {
                    0 | 1 => TrafficPolicy::Cluster,
                    _ => TrafficPolicy::Local {
                        selector: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
                    },
                },
                created: CreationOrder {
                    created_unix_secs: svc as i64,
                    uid: format!("uid{svc}"),
                },
                ..Request::default()
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..10).prop_flat_map(|s| request_strategy(s).prop_map(move |r| Op::Allocate(s, Box::new(r)))),
        2 => (0usize..10).prop_map(Op::Release),
        1 => (0u8..3).prop_map(Op::SetPools),
    ]
}

/// What one run produced, step by step, plus the final state.
#[derive(Debug, PartialEq)]
struct Trace {
    steps: Vec<Result<Vec<IpAddr>, Refusal>>,
    state: Vec<(ServiceKey, Assignment)>,
}

struct Run {
    allocator: Allocator,
    pools: Vec<PoolDef>,
    /// The request each Service currently holds its assignment for.
    requests: BTreeMap<ServiceKey, Request>,
}

impl Run {
    fn new() -> Run {
        let pools = pool_set(0);
        Run {
            allocator: Allocator::new(&pools).unwrap(),
            pools,
            requests: BTreeMap::new(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<Vec<IpAddr>, Refusal> {
        match op {
            Op::Allocate(s, r) => {
                let result = self.allocator.allocate(&key(*s), r).map(|a| a.ips());
                match &result {
                    Ok(_) => self.requests.insert(key(*s), Request::clone(r)),
                    Err(_) => self.requests.remove(&key(*s)),
                };
                result
            }
            Op::Release(s) => {
                self.requests.remove(&key(*s));
                Ok(self
                    .allocator
                    .release(&key(*s))
                    .map(|a| a.ips())
                    .unwrap_or_default())
            }
            Op::SetPools(w) => {
                self.pools = pool_set(*w);
                let change = self.allocator.set_pools(&self.pools).unwrap();
                Ok(change.stranded.into_iter().map(|(_, ip)| ip).collect())
            }
        }
    }

    fn snapshot(&self) -> Vec<(ServiceKey, Assignment)> {
        self.allocator
            .assignments()
            .map(|(k, a)| (k.clone(), a))
            .collect()
    }

    /// Checks the invariants that must hold after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let mut holders: BTreeMap<IpAddr, Vec<ServiceKey>> = BTreeMap::new();
        for (k, a) in self.allocator.assignments() {
            prop_assert!(
                self.requests.contains_key(k),
                "{k} holds addresses without a live request"
            );
            let families: BTreeSet<Family> = a.ips().iter().map(|&i| Family::of(i)).collect();
            prop_assert_eq!(families.len(), a.addresses.len(), "one address per family");
            for addr in &a.addresses {
                holders.entry(addr.ip).or_default().push(k.clone());
                if let Some(p) = &addr.pool {
                    let def = self.pools.iter().find(|d| *d.name == **p).unwrap();
                    prop_assert!(
                        def.ranges.iter().any(|&(lo, hi)| lo <= addr.ip
                            && addr.ip <= hi
                            && Family::of(lo) == Family::of(addr.ip)),
                        "{} attributed to pool {} that does not contain it",
                        addr.ip,
                        p
                    );
                }
            }
        }
        // No address is held by two Services that cannot share it.
        for (addr, hs) in &holders {
            prop_assert_eq!(&self.allocator.holders(*addr), hs);
            for (i, a) in hs.iter().enumerate() {
                for b in &hs[i + 1..] {
                    prop_assert!(
                        may_share(&self.requests[a], &self.requests[b]),
                        "{addr} held by {a} and {b}, which cannot share"
                    );
                }
            }
        }
        // Pool counters agree with the holdings.
        for stat in self.allocator.pool_stats() {
            let in_pool = self
                .allocator
                .assignments()
                .flat_map(|(_, a)| a.addresses)
                .filter(|a| {
                    a.pool.as_deref() == Some(stat.pool.as_str()) && Family::of(a.ip) == stat.family
                })
                .map(|a| a.ip)
                .collect::<BTreeSet<_>>();
            prop_assert_eq!(
                stat.in_use,
                in_pool.len() as u128,
                "in_use of {} {}",
                stat.pool,
                stat.family
            );
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<(Run, Trace), TestCaseError> {
    let mut r = Run::new();
    let mut steps = Vec::new();
    for op in ops {
        steps.push(r.apply(op));
        r.check()?;
    }
    let state = r.snapshot();
    Ok((r, Trace { steps, state }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_address_is_held_by_two_services_that_cannot_share(ops in prop::collection::vec(op_strategy(), 1..60)) {
        run(&ops)?;
    }

    #[test]
    fn allocation_is_deterministic(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let (_, first) = run(&ops)?;
        let (_, second) = run(&ops)?;
        prop_assert_eq!(first, second);
    }

    #[test]
    fn re_registering_a_saved_state_reproduces_it_exactly(
        ops in prop::collection::vec(op_strategy(), 1..60),
        order in prop::collection::vec(any::<u32>(), 10),
        next in request_strategy(99),
    ) {
        let (mut r, _) = run(&ops)?;
        // Settle: the controller reconciles every Service after a config change before the state is "saved".
        for (k, req) in r.requests.clone() {
            let result = r.allocator.allocate(&k, &req);
            if result.is_err() {
                r.requests.remove(&k);
            }
        }
        r.check()?;
        let saved = r.snapshot();
        // Status as the API server would list it, in an arbitrary order.
        let mut listed: Vec<_> = saved
            .iter()
            .map(|(k, a)| (k.clone(), r.requests[k].clone(), a.ips()))
            .collect();
        listed.sort_by_key(|(k, _, _)| {
            let i: usize = k.name.trim_start_matches("svc").parse().unwrap();
            order[i % order.len()]
        });
        let (mut restored, refused) = Allocator::from_existing(&r.pools, listed).unwrap();
        prop_assert_eq!(refused, vec![]);
        let again: Vec<_> = restored.assignments().map(|(k, a)| (k.clone(), a)).collect();
        prop_assert_eq!(&again, &saved);
        prop_assert_eq!(restored.pool_stats(), r.allocator.pool_stats());
        prop_assert_eq!(restored.stranded(), r.allocator.stranded());
        // The restored allocator continues exactly as the original would.
        let newcomer = key(99);
        prop_assert_eq!(restored.allocate(&newcomer, &next), r.allocator.allocate(&newcomer, &next));
    }
}
