//! Cost of one full announce decision at the scale: 10,000 Services with one /32 each,
//! three ready endpoints spread over 100 nodes (this node
//! hosts one of every other Service), three peers, two pools (one aggregating). And the cost of
//! one EndpointSlice event at 1,000 and 10,000 Services: the full decision again, against
//! [`DecisionState::apply`] of the one Service it touches.

use criterion::{Criterion, criterion_group, criterion_main};
use ferrolb_announce::{
    Advertisement, AnnounceConfig, DecisionState, Endpoint, Node, Peer, PeerKey, Pool, Service,
    ServiceChange, ServiceInput, StateConfig, TrafficPolicy, decide, explain,
};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const SERVICES: u32 = 10_000;

/// Pools over 198.18.0.0/15 stand in for a large IPv4 space (benchmark data only, never sent).
fn config() -> AnnounceConfig {
    let pool = |name: &str, cidr: &str, ads: Vec<Advertisement>| Pool {
        name: name.into(),
        addresses: vec![cidr.parse::<ipnet::IpNet>().unwrap().into()],
        advertisements: ads,
        ..Pool::default()
    };
    AnnounceConfig {
        pools: vec![
            pool("host", "198.18.0.0/16", vec![]),
            pool(
                "agg",
                "198.19.0.0/16",
                vec![
                    Advertisement {
                        local_pref: Some(200),
                        ..Advertisement::default()
                    },
                    Advertisement {
                        aggregation_length: 24,
                        ..Advertisement::default()
                    },
                ],
            ),
        ],
        peers: (1..=3)
            .map(|i| {
                Peer::new(
                    PeerKey {
                        address: IpAddr::V4(Ipv4Addr::new(198, 18, 255, i)),
                        port: 179,
                        device: None,
                    },
                    true,
                )
            })
            .collect(),
    }
}

fn services(count: u32) -> Vec<Service> {
    (0..count)
        .map(|i| {
            let third = if i % 2 == 0 { 18 } else { 19 };
            let ip = IpAddr::V4(Ipv4Addr::new(198, third, (i >> 8) as u8, i as u8));
            Service {
                key: format!("ns-{}/svc-{i}", i % 50),
                ingress_ips: vec![ip],
                traffic_policy: TrafficPolicy::Local,
                requested_pool: None,
                labels: Default::default(),
                ours: true,
                // Node node-0 hosts an endpoint of every other Service.
                endpoints: (0..3)
                    .map(|k| Endpoint {
                        node_name: Some(match k {
                            0 => format!("node-{}", i % 2).into(),
                            _ => format!("node-{}", 2 + (i * k * 7) % 98).into(),
                        }),
                        ready: true,
                        serving: true,
                        terminating: false,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let svcs = services(SERVICES);
    let node = Node {
        name: "node-0".into(),
        ..Node::default()
    };
    let d = decide(&node, &svcs, &cfg);
    assert!(d.routes.len() > 1000, "benchmark must announce routes");
    c.bench_function("decide 10k services, 3 peers", |b| {
        b.iter(|| decide(black_box(&node), black_box(&svcs), black_box(&cfg)))
    });
    c.bench_function("explain one service of 10k", |b| {
        b.iter(|| explain(black_box(&d), black_box("ns-0/svc-0")))
    });
}

/// One EndpointSlice event: the endpoint of Service 0 on this node turns not ready, or ready
/// again (alternately, so that every iteration changes a route).
fn event(c: &mut Criterion) {
    let cfg = config();
    let node = Node {
        name: "node-0".into(),
        ..Node::default()
    };
    for count in [1_000, 10_000] {
        let mut svcs = services(count);
        let inputs = || {
            services(count).into_iter().map(|service| ServiceInput {
                service,
                ..ServiceInput::default()
            })
        };
        let state_config = StateConfig {
            announce: cfg.clone(),
            ..StateConfig::default()
        };
        let mut state = DecisionState::new(node.clone(), state_config, inputs());
        let mut flip = false;
        c.bench_function(&format!("event at {count}: full decide"), |b| {
            b.iter(|| {
                flip = !flip;
                svcs[0].endpoints[0].ready = flip;
                decide(black_box(&node), black_box(&svcs), black_box(&cfg))
            })
        });
        let mut one = svcs[0].clone();
        c.bench_function(&format!("event at {count}: incremental apply"), |b| {
            b.iter(|| {
                flip = !flip;
                one.endpoints[0].ready = flip;
                let changed = state.apply([ServiceChange::Upsert(ServiceInput {
                    service: one.clone(),
                    ..ServiceInput::default()
                })]);
                assert_eq!(changed.len(), 1);
                changed
            })
        });
    }
}

criterion_group!(benches, bench, event);
criterion_main!(benches);
