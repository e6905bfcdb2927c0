//! Criterion benchmarks of the wire codec and the Adj-RIB-Out.
//!
//! - `nlri/encode_update_810x32` and `nlri/decode_update_810x32`: one full 4096-octet UPDATE of
//!   810 /32s (eBGP attributes); criterion reports time per /32 (throughput in elements).
//! - `nlri/encode_prefixes_810x32` / `nlri/decode_prefixes_810x32`: the NLRI field alone.
//! - `rib_out/pack_10000x32`: diffing 10,000 /32s with one attribute set into UPDATEs and
//!   encoding them. Before measuring, the number of UPDATEs is printed next to the optimum.
//!
//! Run: `cargo bench -p ferrolb-bgp --bench wire`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrolb_bgp::rib_out::{AdjRibOut, Attributes};
use ferrolb_bgp::wire::{
    AsPath, Family, HEADER_LEN, MAX_MESSAGE_LEN, Message, Origin, PathAttributes, SessionContext,
    Update, decode_ipv4_prefixes, encode_ipv4_prefixes, try_parse,
};
use ipnet::{IpNet, Ipv4Net};

const PER_UPDATE: usize = 810;

fn ctx() -> SessionContext {
    SessionContext {
        local_asn: 65001,
        peer_asn: 65002,
        four_octet_as: true,
        ibgp: false,
        families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
        ..SessionContext::before_open()
    }
}

fn hosts(n: usize) -> Vec<Ipv4Net> {
    (0..n as u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0xcb00_0000 + i), 32).unwrap())
        .collect()
}

fn full_update() -> Message {
    Message::Update(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65001])),
            next_hop: Some(Ipv4Addr::new(198, 18, 0, 1)),
            ..PathAttributes::default()
        },
        nlri: hosts(PER_UPDATE),
        ..Update::default()
    })
}

fn nlri(c: &mut Criterion) {
    let ctx = ctx();
    let msg = full_update();
    let bytes = msg.encode(&ctx).unwrap();
    assert_eq!(bytes.len(), MAX_MESSAGE_LEN - 3);
    let prefixes = hosts(PER_UPDATE);
    let mut field = BytesMut::new();
    encode_ipv4_prefixes(&prefixes, &mut field);

    let mut g = c.benchmark_group("nlri");
    g.throughput(Throughput::Elements(PER_UPDATE as u64));
    let mut out = BytesMut::with_capacity(MAX_MESSAGE_LEN);
    g.bench_function("encode_update_810x32", |b| {
        b.iter(|| {
            out.clear();
            black_box(&msg).encode_into(&ctx, &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("decode_update_810x32", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(&bytes[..]));
            black_box(try_parse(&mut buf, &ctx).unwrap())
        })
    });
    g.bench_function("encode_prefixes_810x32", |b| {
        b.iter(|| {
            out.clear();
            encode_ipv4_prefixes(black_box(&prefixes), &mut out);
            black_box(out.len())
        })
    });
    let mut decoded = Vec::with_capacity(PER_UPDATE);
    g.bench_function("decode_prefixes_810x32", |b| {
        b.iter(|| {
            decoded.clear();
            decode_ipv4_prefixes(black_box(&field[..]), &mut decoded).unwrap();
            black_box(decoded.len())
        })
    });
    g.finish();
}

fn packing(c: &mut Criterion) {
    let ctx = ctx();
    let desired: BTreeMap<IpNet, Attributes> = hosts(10_000)
        .into_iter()
        .map(|p| (IpNet::V4(p), Attributes::default()))
        .collect();
    let next_hop = Some(Ipv4Addr::new(198, 18, 0, 1));

    let mut rib = AdjRibOut::new(&ctx, next_hop, None);
    let msgs = rib.set_desired(&desired);
    let attrs_len = 20; // ORIGIN 4 + AS_PATH [65001] 9 + NEXT_HOP 7
    let room = MAX_MESSAGE_LEN - HEADER_LEN - 4 - attrs_len;
    let optimum = (desired.len() * 5).div_ceil(room);
    println!(
        "packing: 10000 /32s, one attribute set -> {} UPDATEs of <= 4096 octets (optimum {}, target <= {})",
        msgs.len(),
        optimum,
        optimum + 1
    );
    let withdrawals = rib.set_desired(&BTreeMap::new());
    println!(
        "packing: withdrawing them -> {} UPDATEs (optimum {})",
        withdrawals.len(),
        (desired.len() * 5).div_ceil(MAX_MESSAGE_LEN - HEADER_LEN - 4)
    );

    // Memory: three peers' Adj-RIB-Outs holding the same 10,000 routes (the speaker's share of
    // the 30 MB RSS budget), measured as RSS growth.
    let before = rss_kib();
    let ribs: Vec<AdjRibOut> = (0..3)
        .map(|_| {
            let mut rib = AdjRibOut::new(&ctx, next_hop, None);
            black_box(rib.set_desired(&desired));
            rib
        })
        .collect();
    let after = rss_kib();
    println!(
        "memory: 3 Adj-RIB-Outs x {} routes: RSS {} KiB -> {} KiB (+{} KiB); process RSS {:.1} MiB",
        ribs[0].len(),
        before,
        after,
        after.saturating_sub(before),
        after as f64 / 1024.0
    );
    drop(ribs);

    let mut g = c.benchmark_group("rib_out");
    g.throughput(Throughput::Elements(desired.len() as u64));
    g.bench_function("pack_10000x32", |b| {
        b.iter(|| {
            let mut rib = AdjRibOut::new(&ctx, next_hop, None);
            let msgs = rib.set_desired(black_box(&desired));
            let mut out = BytesMut::with_capacity(msgs.len() * MAX_MESSAGE_LEN);
            for m in &msgs {
                m.encode_into(&ctx, &mut out).unwrap();
            }
            black_box(out.len())
        })
    });
    g.finish();
}

/// Resident set size of this process in KiB (Linux `/proc/self/status`), 0 if unreadable.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

criterion_group!(benches, nlri, packing);
criterion_main!(benches);
