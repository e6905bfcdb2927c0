//! How long checking a configuration takes as it grows: N address entries (in N/4 pools of
//! four), all validated including the O(n log n) overlap sweep. Ten times the entries should
//! cost about ten times the time, not a hundred.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferrolb_config::Config;
use std::hint::black_box;
use std::net::Ipv6Addr;

/// `entries` disjoint IPv6 /120s, four per pool, in reverse address order so that the sort
/// has work to do.
fn config_text(entries: usize) -> String {
    let mut text = String::from(
        "peers:\n- {my-asn: 64512, peer-asn: 64601, peer-address: 198.18.0.1}\naddress-pools:\n",
    );
    for i in (0..entries).rev() {
        if (entries - 1 - i).is_multiple_of(4) {
            text.push_str(&format!(
                "- name: pool-{i}\n  protocol: bgp\n  addresses:\n"
            ));
        }
        let net = Ipv6Addr::from((0x2001_0db8_u128 << 96) + ((i as u128) << 8));
        text.push_str(&format!("  - {net}/120\n"));
    }
    text
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("from_yaml");
    group.sample_size(10);
    for entries in [1_000, 10_000, 100_000] {
        let text = config_text(entries);
        assert!(Config::from_yaml(&text).is_ok());
        group.throughput(Throughput::Elements(entries as u64));
        group.bench_with_input(BenchmarkId::from_parameter(entries), &text, |b, text| {
            b.iter(|| Config::from_yaml(black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
