//! Allocator throughput: 100,000 allocations (target ≤ 100 ms), steady-state churn, and restart re-registration.
//!
//! Each benchmark runs twice: once timed by wall clock (`ipam-wall/...`, criterion's default) and once by the
//! benchmark thread's own CPU time (`ipam-cpu/...`), which stays meaningful on a machine shared with other jobs.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ferrolb_ipam::{Allocator, Family, FamilyRequest, PoolDef, Request, ServiceKey};

const SERVICES: usize = 100_000;

/// CPU time consumed by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn pools() -> Vec<PoolDef> {
    // 2001:db8::/108: 1,048,576 addresses, enough for 100,000 Services.
    let first: IpAddr = "2001:db8::".parse().unwrap();
    let last: IpAddr = "2001:db8::f:ffff".parse().unwrap();
    vec![PoolDef {
        name: "bench".into(),
        ranges: vec![(first, last)],
        avoid_buggy_ips: false,
        auto_assign: true,
        allocation: None,
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

fn bench<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let pools = pools();
    let keys = keys();
    let request = request();

    let mut group = c.benchmark_group(group_name);
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

fn wall(c: &mut Criterion) {
    bench(c, "ipam-wall");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    bench(c, "ipam-cpu");
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
