//! Weighted ECMP in the decision: a `Local` Service's host route carries a link bandwidth
//! proportional to the node's ready endpoints; `Cluster` Services and aggregates carry none.

mod common;

use common::*;
use ferrolb_announce::*;
use ferrolb_bgp::wire::decode_link_bandwidth;
use ferrolb_config::Config;

const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64501
- peer-address: 198.18.0.2
  peer-asn: 64512
  my-asn: 4200000000
address-pools:
- name: weighted
  protocol: bgp
  addresses: [203.0.113.0/28, 2001:db8::/124]
  bgp-advertisements:
  - weighted-ecmp: true
  - aggregation-length: 28
- name: fast
  protocol: bgp
  addresses: [198.51.100.0/28]
  bgp-advertisements:
  - weighted-ecmp: true
    link-bandwidth-per-endpoint: 10Gbps
- name: plain
  protocol: bgp
  addresses: [198.51.100.16/28]
";

fn decide_on(node_name: &str, services: &[Service]) -> AnnounceDecision {
    let config = Config::from_yaml(YAML).unwrap();
    let n = node(node_name);
    decide(&n, services, &AnnounceConfig::from_config(&config, &n))
}

/// One Service on 203.0.113.5 with 1, 2 and 3 ready endpoints on n1, n2, n3.
fn one_two_three(policy: TrafficPolicy) -> Vec<Service> {
    let mut s = service(
        "default/web",
        &["203.0.113.5"],
        vec![
            ready("n1"),
            ready("n2"),
            ready("n2"),
            ready("n3"),
            ready("n3"),
            ready("n3"),
            starting("n1"),
        ],
    );
    s.traffic_policy = policy;
    vec![s]
}

#[test]
fn one_two_three_endpoints_give_bandwidths_one_two_three() {
    let services = one_two_three(TrafficPolicy::Local);
    let got: Vec<(u64, Vec<[u8; 8]>)> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            let d = decide_on(n, &services);
            let p = net("203.0.113.5/32");
            assert_eq!(
                d.services["default/web"].link_bandwidth,
                d.link_bandwidth.get(&p).copied()
            );
            (d.link_bandwidth[&p], d.extended_communities(&p, 64501))
        })
        .collect();
    assert_eq!(
        got,
        [
            // 1 Mbps = 125000 bytes/s = 0x47F42400; AS 64501 = 0xFBF5.
            (
                1_000_000,
                vec![[0x40, 0x04, 0xFB, 0xF5, 0x47, 0xF4, 0x24, 0x00]]
            ),
            // 250000 = 0x48742400.
            (
                2_000_000,
                vec![[0x40, 0x04, 0xFB, 0xF5, 0x48, 0x74, 0x24, 0x00]]
            ),
            // 375000 = 0x48B71B00.
            (
                3_000_000,
                vec![[0x40, 0x04, 0xFB, 0xF5, 0x48, 0xB7, 0x1B, 0x00]]
            ),
        ]
    );
}

#[test]
fn a_four_octet_local_as_is_sent_as_as_trans() {
    let d = decide_on("n2", &one_two_three(TrafficPolicy::Local));
    assert_eq!(
        d.extended_communities(&net("203.0.113.5/32"), 4_200_000_000),
        [[0x40, 0x04, 0x5B, 0xA0, 0x48, 0x74, 0x24, 0x00]]
    );
}

#[test]
fn cluster_services_carry_no_weight() {
    for n in ["n1", "n2", "n3"] {
        let d = decide_on(n, &one_two_three(TrafficPolicy::Cluster));
        assert!(
            d.routes.contains_key(&net("203.0.113.5/32")),
            "{n} announces"
        );
        assert_eq!(d.services["default/web"].link_bandwidth, None);
        assert!(d.link_bandwidth.is_empty());
        assert!(
            d.extended_communities(&net("203.0.113.5/32"), 64501)
                .is_empty()
        );
    }
}

#[test]
fn aggregates_and_unweighted_pools_carry_no_weight() {
    let mut services = one_two_three(TrafficPolicy::Local);
    services.push(service(
        "default/plain",
        &["198.51.100.17"],
        vec![ready("n3")],
    ));
    let d = decide_on("n3", &services);
    assert_eq!(
        prefixes(&d),
        ["198.51.100.17/32", "203.0.113.0/28", "203.0.113.5/32"]
    );
    assert_eq!(
        d.link_bandwidth.into_iter().collect::<Vec<_>>(),
        [(net("203.0.113.5/32"), 3_000_000)]
    );
    assert_eq!(d.services["default/plain"].link_bandwidth, None);
}

#[test]
fn the_configured_bandwidth_per_endpoint_and_ipv6_are_honoured() {
    let services = vec![
        service(
            "default/fast",
            &["198.51.100.3"],
            vec![ready("n1"), ready("n1")],
        ),
        service(
            "default/v6",
            &["2001:db8::5"],
            vec![ready("n1"), ready("n1"), ready("n2")],
        ),
    ];
    let d = decide_on("n1", &services);
    assert_eq!(d.link_bandwidth[&net("198.51.100.3/32")], 20_000_000_000);
    assert_eq!(d.link_bandwidth[&net("2001:db8::5/128")], 2_000_000);
}

#[test]
fn a_node_without_endpoints_announces_nothing_and_so_no_weight() {
    let services = one_two_three(TrafficPolicy::Local);
    let d = decide_on("n4", &services);
    assert!(d.routes.is_empty());
    assert!(d.link_bandwidth.is_empty());
    assert_eq!(d.services["default/web"].link_bandwidth, None);
}

#[test]
fn serving_terminating_endpoints_weigh_when_none_is_ready() {
    let services = vec![service(
        "default/web",
        &["203.0.113.5"],
        vec![terminating("n1"), terminating("n1"), terminating("n2")],
    )];
    assert_eq!(
        decide_on("n1", &services).link_bandwidth[&net("203.0.113.5/32")],
        2_000_000
    );
}

#[test]
fn services_sharing_an_ip_add_their_weights() {
    let services = vec![
        service("default/http", &["203.0.113.7"], vec![ready("n1")]),
        service(
            "default/dns",
            &["203.0.113.7"],
            vec![ready("n1"), ready("n1")],
        ),
    ];
    let d = decide_on("n1", &services);
    assert_eq!(d.link_bandwidth[&net("203.0.113.7/32")], 3_000_000);
    assert_eq!(d.services["default/http"].link_bandwidth, Some(1_000_000));
    assert_eq!(d.services["default/dns"].link_bandwidth, Some(2_000_000));
}

#[test]
fn scaling_changes_the_weight_and_keeps_the_route() {
    let before = decide_on("n2", &one_two_three(TrafficPolicy::Local));
    let mut scaled = one_two_three(TrafficPolicy::Local);
    scaled[0].endpoints.push(ready("n2"));
    let after = decide_on("n2", &scaled);
    assert_eq!(
        before.routes.keys().collect::<Vec<_>>(),
        after.routes.keys().collect::<Vec<_>>()
    );
    assert_eq!(before.routes, after.routes);
    assert_eq!(after.link_bandwidth[&net("203.0.113.5/32")], 3_000_000);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// For any spread of ready endpoints over nodes, each node's bandwidth is exactly its
        /// count × 1 Mbps (so the ratios between nodes are the ratios of their counts), its
        /// encoded community decodes to count × 125000 bytes/s, and a Cluster Service has none.
        #[test]
        fn bandwidth_is_exactly_proportional_to_local_endpoints(
            counts in proptest::collection::vec(0u32..200, 1..6),
            local in any::<bool>(),
        ) {
            let mut endpoints = Vec::new();
            for (i, n) in counts.iter().enumerate() {
                for _ in 0..*n {
                    endpoints.push(ready(&format!("n{i}")));
                }
            }
            let mut s = service("default/web", &["203.0.113.5"], endpoints);
            s.traffic_policy = if local { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
            let services = vec![s];
            let p = net("203.0.113.5/32");
            for (i, n) in counts.iter().enumerate() {
                let d = decide_on(&format!("n{i}"), &services);
                let want = (local && *n > 0).then(|| u64::from(*n) * 1_000_000);
                prop_assert_eq!(d.link_bandwidth.get(&p).copied(), want);
                let ext = d.extended_communities(&p, 64501);
                match want {
                    Some(_) => {
                        prop_assert_eq!(ext.len(), 1);
                        prop_assert_eq!(
                            decode_link_bandwidth(&ext[0]),
                            Some((64501, *n as f32 * 125_000.0))
                        );
                    }
                    None => prop_assert!(ext.is_empty()),
                }
            }
        }
    }
}
