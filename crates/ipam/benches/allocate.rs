//! Allocator throughput: 100,000 allocations (target ≤ 100 ms), steady-state churn, and restart re-registration.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ferrolb_ipam::{Allocator, Family, FamilyRequest, PoolDef, Request, ServiceKey};

const SERVICES: usize = 100_000;

fn pools() -> Vec<PoolDef> {
    // 2001:db8::/108: 1,048,576 addresses, enough for 100,000 Services.
    let first: IpAddr = "2001:db8::".parse().unwrap();
    let last: IpAddr = "2001:db8::f:ffff".parse().unwrap();
    vec![PoolDef {
        name: "bench".into(),
        ranges: vec![(first, last)],
        avoid_buggy_ips: false,
        auto_assign: true,
    }]
}

fn keys() -> Vec<ServiceKey> {
    (0..SERVICES)
        .map(|i| ServiceKey::new(format!("ns{}", i % 100), format!("svc-{i}")))
        .collect()
}

fn request() -> Request {
    Request {
        families: FamilyRequest::single(Family::V6),
        ..Request::default()
    }
}

fn bench(c: &mut Criterion) {
    let pools = pools();
    let keys = keys();
    let request = request();

    let mut group = c.benchmark_group("ipam");
    group.sample_size(10);

    group.bench_function("allocate_100k", |b| {
        b.iter_batched(
            || Allocator::new(&pools).unwrap(),
            |mut allocator| {
                for key in &keys {
                    black_box(allocator.allocate(key, &request).unwrap());
                }
                allocator
            },
            BatchSize::PerIteration,
        );
    });

    let mut full = Allocator::new(&pools).unwrap();
    for key in &keys {
        full.allocate(key, &request).unwrap();
    }
    let existing: Vec<_> = full
        .assignments()
        .map(|(k, a)| (k.clone(), request.clone(), a.ips()))
        .collect();

    group.bench_function("release_then_allocate_in_100k", |b| {
        let mut allocator = full.clone();
        let mut i = 0usize;
        b.iter(|| {
            let key = &keys[i % SERVICES];
            i = i.wrapping_add(7919);
            allocator.release(key);
            black_box(allocator.allocate(key, &request).unwrap());
        });
    });

    group.bench_function("from_existing_100k", |b| {
        b.iter_batched(
            || existing.clone(),
            |existing| black_box(Allocator::from_existing(&pools, existing).unwrap()),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
