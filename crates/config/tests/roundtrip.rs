//! A valid configuration survives serialise → parse unchanged.

use ferrolb_config::{
    AddressPool, AddressRange, AnnounceFrom, BFD_DETECT_MULTIPLIER, BFD_ECHO_INTERVAL_MS,
    BFD_MINIMUM_TTL, BFD_RECEIVE_INTERVAL_MS, BFD_TRANSMIT_INTERVAL_MS, Bandwidth, BfdProfile,
    BgpAdvertisement, CommunityValue, Config, DEFAULT_BANDWIDTH_PER_ENDPOINT, LocalPrefRange,
    NodeSelector, Peer, Protocol, SelectorOperator, SelectorRequirement,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn community() -> impl Strategy<Value = CommunityValue> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| CommunityValue::Standard(a, b)),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| CommunityValue::Large(a, b, c)),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?"
}

fn label_key() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z]{1,8}(\\.[a-z]{1,5}){0,2}"),
        label_name(),
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(p) => format!("{p}/{name}"),
            None => name,
        })
}

fn requirement() -> impl Strategy<Value = SelectorRequirement> {
    (label_key(), 0..4usize, vec(label_name(), 1..3)).prop_map(|(key, op, values)| {
        let operator = [
            SelectorOperator::In,
            SelectorOperator::NotIn,
            SelectorOperator::Exists,
            SelectorOperator::DoesNotExist,
        ][op];
        SelectorRequirement {
            key,
            operator,
            values: if operator.takes_values() {
                values
            } else {
                vec![]
            },
        }
    })
}

fn selector() -> impl Strategy<Value = NodeSelector> {
    (
        btree_map(
            label_key(),
            prop_oneof![Just(String::new()), label_name()],
            0..3,
        ),
        vec(requirement(), 0..3),
    )
        .prop_map(|(match_labels, match_expressions)| NodeSelector {
            match_labels,
            match_expressions,
        })
}

/// 1 to 20 characters (at most 80 bytes, the TCP-MD5 limit), no line breaks, and none of
/// U+0085, U+2028, U+2029: serde_yaml writes those raw inside quotes (YAML 1.1 calls them line
/// breaks, YAML 1.2 does not), and the 1.2 parser reads them back differently.
fn password() -> impl Strategy<Value = String> {
    "[^\r\n\u{85}\u{2028}\u{2029}]{1,20}"
}

/// A peer (by address, IPv4 or IPv6, in a VRF or not, or unnumbered on an interface); `i` makes
/// (address or interface, port, my-asn) unique.
fn peer(i: usize) -> impl Strategy<Value = Peer> {
    (
        (1..=u32::MAX, 1..=u32::MAX, any::<bool>(), 0u8..5),
        (1..=u16::MAX, proptest::option::of(any::<u32>())),
        prop_oneof![Just(0u64), 3..=65535u64],
        any::<u64>(),
        proptest::option::of(password()),
        vec(selector(), 0..3),
    )
        .prop_map(
            move |(
                (my_asn, other_asn, ibgp, kind),
                (port, router_id),
                hold,
                ka,
                password,
                sels,
            )| {
                // 0: IPv4, 1: IPv6, 2: IPv4 in a VRF, 3: unnumbered, 4: IPv6.
                let v6 = kind == 1 || kind == 4;
                let peer_asn = if ibgp { my_asn } else { other_asn };
                let n = u32::try_from(i).unwrap();
                let (peer_address, source_address) = if v6 {
                    let base = 0x2001_0db8_u128 << 96;
                    (
                        IpAddr::V6(Ipv6Addr::from(base + u128::from(n) * 2 + 1)),
                        Some(IpAddr::V6(Ipv6Addr::from(base + u128::from(n) * 2 + 2))),
                    )
                } else {
                    (IpAddr::V4(Ipv4Addr::from(0xC612_0000 + n)), None)
                };
                let device = |prefix: &str| Some(format!("{prefix}{n}").parse().unwrap());
                let (peer_address, interface, vrf) = match kind {
                    2 => (peer_address, None, device("vrf")),
                    3 => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), device("swp"), None),
                    _ => (peer_address, None, None),
                };
                let hold_time = Duration::from_secs(hold);
                let keepalive_time = if hold == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_nanos(ka % (hold * 1_000_000_000 + 1))
                };
                Peer {
                    name: None,
                    my_asn,
                    peer_asn,
                    dynamic_asn: None,
                    local_asn: None,
                    my_asn_from_node_label: None,
                    router_id_from_node_label: None,
                    peer_address,
                    interface,
                    vrf,
                    peer_port: port,
                    source_address,
                    hold_time,
                    keepalive_time,
                    connect_time: None,
                    graceful_restart: None,
                    dual_stack_address_family: true,
                    router_id: router_id.map(Ipv4Addr::from),
                    password: password.map(ferrolb_config::Password::from),
                    ebgp_multihop: !ibgp && my_asn != peer_asn && v6,
                    bfd_profile: None,
                    node_selectors: sels,
                }
            },
        )
}

/// Entry `k` (unique over the config) inside its own block, so entries never overlap.
fn entry(k: u32) -> impl Strategy<Value = AddressRange> {
    (
        any::<bool>(),
        any::<bool>(),
        0u8..=8,
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(move |(v6, cidr, host_bits, a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            if v6 {
                let base = (0x2001_0db8_u128 << 96) + (u128::from(k) << 16);
                let ip = |x: u8| IpAddr::V6(Ipv6Addr::from(base + u128::from(x)));
                if cidr {
                    AddressRange::Cidr {
                        network: ip(0),
                        prefix_len: 128 - host_bits,
                    }
                } else {
                    AddressRange::Range {
                        start: ip(lo),
                        end: ip(hi),
                    }
                }
            } else {
                // 198.18.0.0/15 holds 512 blocks of 256.
                let base = 0xC612_0000u32 + (k << 8);
                let ip = |x: u8| IpAddr::V4(Ipv4Addr::from(base + u32::from(x)));
                if cidr {
                    AddressRange::Cidr {
                        network: ip(0),
                        prefix_len: 32 - host_bits,
                    }
                } else {
                    AddressRange::Range {
                        start: ip(lo),
                        end: ip(hi),
                    }
                }
            }
        })
}

fn advertisement(min_v4: u8, min_v6: u8) -> impl Strategy<Value = BgpAdvertisement> {
    (
        min_v4..=32,
        min_v6..=128,
        proptest::option::of(any::<u32>()),
        vec(community(), 0..4),
        (
            any::<bool>(),
            1..=1_000_000u64,
            vec(community(), 0..3),
            0..=2u32,
        ),
    )
        .prop_map(
            |(
                aggregation_length,
                aggregation_length_v6,
                localpref,
                mut communities,
                (weighted_ecmp, kbps, mut allowed, pref_count),
            )| {
                let mut seen = Vec::new();
                communities.retain(|c| {
                    let new = !seen.contains(c);
                    seen.push(*c);
                    new
                });
                allowed.sort();
                allowed.dedup();
                let host = aggregation_length == 32 && aggregation_length_v6 == 128;
                let weighted_ecmp = weighted_ecmp && host;
                BgpAdvertisement {
                    aggregation_length,
                    aggregation_length_v6,
                    localpref,
                    communities,
                    weighted_ecmp,
                    link_bandwidth_per_endpoint: if weighted_ecmp {
                        Bandwidth::from_bits_per_second(kbps * 1000)
                    } else {
                        DEFAULT_BANDWIDTH_PER_ENDPOINT
                    },
                    allowed_service_communities: if host { allowed } else { Vec::new() },
                    allowed_service_localprefs: if host {
                        (0..pref_count)
                            .map(|i| LocalPrefRange {
                                first: i * 100,
                                last: i * 100 + i,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    ..BgpAdvertisement::default()
                }
            },
        )
}

fn pool(i: u32) -> impl Strategy<Value = AddressPool> {
    (1..4u32)
        .prop_flat_map(move |n| vec_of_entries(i, n))
        .prop_flat_map(move |addresses| {
            let min = |v4: bool| {
                addresses
                    .iter()
                    .filter(|a| a.is_ipv4() == v4)
                    .map(AddressRange::shortest_prefix_len)
                    .max()
                    .unwrap_or(0)
            };
            (
                Just(addresses.clone()),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                vec(advertisement(min(true), min(false)), 0..2),
            )
        })
        .prop_map(
            move |(addresses, avoid_buggy_ips, auto_assign, all_nodes, ads)| {
                let mut bgp_advertisements: Vec<BgpAdvertisement> = Vec::new();
                for ad in ads {
                    let mut sorted = ad.communities.clone();
                    sorted.sort();
                    let dup = bgp_advertisements.iter().any(|b| {
                        let mut s = b.communities.clone();
                        s.sort();
                        (
                            b.aggregation_length,
                            b.aggregation_length_v6,
                            b.localpref,
                            s,
                        ) == (
                            ad.aggregation_length,
                            ad.aggregation_length_v6,
                            ad.localpref,
                            sorted.clone(),
                        )
                    });
                    if !dup {
                        bgp_advertisements.push(ad);
                    }
                }
                AddressPool {
                    name: format!("pool-{i}"),
                    protocol: Protocol::Bgp,
                    addresses,
                    avoid_buggy_ips,
                    auto_assign,
                    announce_from: if all_nodes {
                        AnnounceFrom::AllNodes
                    } else {
                        AnnounceFrom::NodesWithEndpoints
                    },
                    bgp_advertisements,
                    announced: true,
                    service_allocation: None,
                }
            },
        )
}

fn vec_of_entries(pool: u32, n: u32) -> impl Strategy<Value = Vec<AddressRange>> {
    (0..n).map(|j| entry(pool * 4 + j)).collect::<Vec<_>>()
}

fn config() -> impl Strategy<Value = Config> {
    (
        (0..4usize).prop_flat_map(|n| (0..n).map(peer).collect::<Vec<_>>()),
        btree_map("[a-z][a-z0-9-]{0,12}", community(), 0..4),
        (0..4u32).prop_flat_map(|n| (0..n).map(pool).collect::<Vec<_>>()),
        (0..3usize).prop_flat_map(|n| (0..n).map(bfd_profile).collect::<Vec<_>>()),
    )
        .prop_map(
            |(mut peers, bgp_communities, address_pools, bfd_profiles)| {
                // The first peer refers to the first profile, when both exist.
                if let (Some(p), Some(profile)) = (peers.first_mut(), bfd_profiles.first()) {
                    p.bfd_profile = Some(profile.name.clone());
                }
                Config {
                    peers,
                    bgp_communities,
                    bfd_profiles,
                    address_pools,
                }
            },
        )
}

/// BFD profile `i` (named `bfd-i`, so names are unique) with values anywhere in MetalLB's ranges.
fn bfd_profile(i: usize) -> impl Strategy<Value = BfdProfile> {
    (
        BFD_RECEIVE_INTERVAL_MS,
        BFD_TRANSMIT_INTERVAL_MS,
        BFD_DETECT_MULTIPLIER,
        BFD_ECHO_INTERVAL_MS,
        any::<bool>(),
        BFD_MINIMUM_TTL,
    )
        .prop_map(move |(rx, tx, mult, echo, passive, ttl)| BfdProfile {
            name: format!("bfd-{i}"),
            receive_interval: rx,
            transmit_interval: tx,
            detect_multiplier: mult,
            echo_interval: echo,
            echo_mode: false,
            passive_mode: passive,
            minimum_ttl: ttl,
        })
}

proptest! {
    #[test]
    fn serialise_then_parse_is_identity(cfg in config()) {
        let yaml = cfg.to_yaml().unwrap();
        match Config::from_yaml(&yaml) {
            Ok(back) => prop_assert_eq!(back, cfg, "yaml:\n{}", yaml),
            Err(e) => prop_assert!(false, "yaml:\n{}\nerrors:\n{}", yaml, e),
        }
    }
}
