//! Prints the heap held by one announce decision at the scale (10,000 announced /32s,
//! three peers), measured with a counting allocator:
//! `cargo run --release -p ferrolb-announce --example decision_memory [ITERATIONS]`.
//!
//! With ITERATIONS, it then decides that many more times, so that the CPU time of one decision
//! can be read off `perf stat -e task-clock` (difference between two iteration counts), which
//! stays meaningful on a loaded machine where wall-clock benchmarks do not.

use ferrolb_announce::{
    AnnounceConfig, Endpoint, Node, Peer, PeerKey, Pool, Service, TrafficPolicy, decide,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    // Pool over 198.18.0.0/16: benchmark data only, never sent anywhere.
    let cfg = AnnounceConfig {
        pools: vec![Pool {
            name: "pool".into(),
            addresses: vec!["198.18.0.0/16".parse::<ipnet::IpNet>().unwrap().into()],
            ..Pool::default()
        }],
        peers: (1..=3)
            .map(|i| {
                Peer::new(
                    PeerKey {
                        address: IpAddr::V4(Ipv4Addr::new(198, 19, 0, i)),
                        port: 179,
                        device: None,
                    },
                    true,
                )
            })
            .collect(),
    };
    let services: Vec<Service> = (0..10_000u32)
        .map(|i| Service {
            key: format!("namespace-{}/service-{i}", i % 50),
            ingress_ips: vec![IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8))],
            traffic_policy: TrafficPolicy::Local,
            requested_pool: None,
            labels: Default::default(),
            ours: true,
            endpoints: vec![Endpoint {
                node_name: Some("node-0".into()),
                ready: true,
                serving: true,
                terminating: false,
            }],
        })
        .collect();
    let node = Node {
        name: "node-0".into(),
        ..Node::default()
    };
    let inputs = LIVE.load(Ordering::Relaxed);
    let decision = decide(&node, &services, &cfg);
    let held = LIVE.load(Ordering::Relaxed) - inputs;
    println!(
        "inputs: {} bytes; decision: {} routes, {} services, {} bytes ({} bytes per Service)",
        inputs,
        decision.routes.len(),
        decision.services.len(),
        held,
        held / decision.services.len().max(1)
    );
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    for _ in 0..iterations {
        std::hint::black_box(decide(
            std::hint::black_box(&node),
            std::hint::black_box(&services),
            &cfg,
        ));
    }
    println!(
        "sizes: Reason {} B, ServiceDecision {} B, Route {} B",
        std::mem::size_of::<ferrolb_announce::Reason>(),
        std::mem::size_of::<ferrolb_announce::ServiceDecision>(),
        std::mem::size_of::<ferrolb_announce::Route>()
    );
}
