//! Building the decision's configuration from the loaded ferrolb configuration.

use crate::input::{
    AddressRange, Advertisement, AnnounceConfig, AnnounceFrom, Community, LargeCommunity, Node,
    Peer, PeerKey, Pool, ServiceAllowances,
};
use ferrolb_config::{BgpAdvertisement, CommunityValue, Config};

impl AnnounceConfig {
    /// The part of `config` the decision reads, with each peer's and each advertisement's
    /// node-selectors evaluated against `node`'s labels. Pools keep their order; a pool without `bgp-advertisements`
    /// keeps an empty list (the decision then uses [`Advertisement::HOST_ROUTES`]).
    /// Each pool's `announce-from` option is carried over.
    pub fn from_config(config: &Config, node: &Node) -> AnnounceConfig {
        AnnounceConfig {
            pools: config
                .address_pools
                .iter()
                .map(|p| Pool {
                    name: p.name.clone(),
                    addresses: p
                        .addresses
                        .iter()
                        .map(|a| AddressRange {
                            first: a.first(),
                            last: a.last(),
                        })
                        .collect(),
                    advertisements: p
                        .bgp_advertisements
                        .iter()
                        .map(|a| advertisement(a, node))
                        .collect(),
                    announce_from: match p.announce_from {
                        ferrolb_config::AnnounceFrom::AllNodes => AnnounceFrom::AllNodes,
                        _ => AnnounceFrom::NodesWithEndpoints,
                    },
                    announced: p.announced,
                })
                .collect(),
            peers: config
                .peers
                .iter()
                .map(|p| Peer {
                    key: PeerKey::of(p),
                    selects_node: p.selects_node(&node.labels),
                    name: p.name.clone(),
                    dual_stack: p.dual_stack_address_family,
                })
                .collect(),
        }
    }
}

/// One `bgp-advertisements` entry, its communities split into standard and large and its
/// node-selectors evaluated against `node`.
fn advertisement(adv: &BgpAdvertisement, node: &Node) -> Advertisement {
    let mut out = Advertisement {
        aggregation_length: adv.aggregation_length,
        aggregation_length_v6: adv.aggregation_length_v6,
        local_pref: adv.localpref,
        communities: Vec::new(),
        large_communities: Vec::new(),
        as_path_prepend: adv.as_path_prepend,
        link_bandwidth_per_endpoint: adv
            .weighted_ecmp
            .then(|| adv.link_bandwidth_per_endpoint.bits_per_second()),
        service_allowances: ServiceAllowances {
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_prefs: adv
                .allowed_service_localprefs
                .iter()
                .map(|r| (r.first, r.last))
                .collect(),
            as_path_prepends: adv.allowed_service_as_path_prepends.clone(),
        },
        peers: adv.peers.clone(),
        selects_node: adv.selects_node(&node.labels),
        service_selectors: adv.service_selectors.clone(),
    };
    split_communities(
        &adv.communities,
        &mut out.communities,
        &mut out.large_communities,
    );
    split_communities(
        &adv.allowed_service_communities,
        &mut out.service_allowances.communities,
        &mut out.service_allowances.large_communities,
    );
    out
}

/// Appends each community of `values` to `standard` or `large`.
pub(crate) fn split_communities(
    values: &[CommunityValue],
    standard: &mut Vec<Community>,
    large: &mut Vec<LargeCommunity>,
) {
    for c in values {
        match *c {
            CommunityValue::Standard(high, low) => {
                standard.push(Community((u32::from(high) << 16) | u32::from(low)))
            }
            CommunityValue::Large(global_admin, local_data1, local_data2) => {
                large.push(LargeCommunity {
                    global_admin,
                    local_data1,
                    local_data2,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const YAML: &str = "\
peers:
- peer-address: 198.18.0.1
  peer-asn: 64512
  my-asn: 64512
- peer-address: 198.18.0.2
  peer-port: 1179
  peer-asn: 64513
  my-asn: 64512
  node-selectors:
  - match-labels:
      rack: r1
bgp-communities:
  no-advertise: 65535:65282
address-pools:
- name: hosts
  protocol: bgp
  addresses:
  - 203.0.113.0/28
  - 203.0.113.100-203.0.113.110
- name: blocks
  protocol: bgp
  addresses:
  - 198.51.100.0/24
  - 2001:db8:300::/64
  announce-from: all-nodes
  bgp-advertisements:
  - localpref: 100
    communities:
    - no-advertise
    - large:64512:1:100
  - aggregation-length: 24
    aggregation-length-v6: 64
    communities:
    - 64512:24
";

    fn node(labels: &[(&str, &str)]) -> Node {
        Node {
            name: "node-1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            network_unavailable: false,
        }
    }

    #[test]
    fn pools_and_advertisements_come_from_the_config() {
        let config = Config::from_yaml(YAML).unwrap();
        let ac = AnnounceConfig::from_config(&config, &node(&[]));
        assert_eq!(ac.pools.len(), 2);
        let hosts = &ac.pools[0];
        assert_eq!(hosts.name, "hosts");
        assert!(hosts.advertisements.is_empty());
        assert_eq!(
            hosts.addresses,
            [
                AddressRange {
                    first: "203.0.113.0".parse().unwrap(),
                    last: "203.0.113.15".parse().unwrap()
                },
                AddressRange {
                    first: "203.0.113.100".parse().unwrap(),
                    last: "203.0.113.110".parse().unwrap()
                }
            ]
        );
        let blocks = &ac.pools[1];
        assert_eq!(
            blocks.advertisements,
            [
                Advertisement {
                    aggregation_length: 32,
                    aggregation_length_v6: 128,
                    local_pref: Some(100),
                    communities: vec![Community(0xffff_ff02)],
                    large_communities: vec![LargeCommunity {
                        global_admin: 64512,
                        local_data1: 1,
                        local_data2: 100
                    }],
                    link_bandwidth_per_endpoint: None,
                    service_allowances: Default::default(),
                    ..Advertisement::HOST_ROUTES
                },
                Advertisement {
                    aggregation_length: 24,
                    aggregation_length_v6: 64,
                    local_pref: None,
                    communities: vec![Community((64512 << 16) | 24)],
                    large_communities: vec![],
                    link_bandwidth_per_endpoint: None,
                    service_allowances: Default::default(),
                    ..Advertisement::HOST_ROUTES
                }
            ]
        );
        assert_eq!(hosts.announce_from, AnnounceFrom::NodesWithEndpoints);
        assert_eq!(blocks.announce_from, AnnounceFrom::AllNodes);
    }

    #[test]
    fn peers_are_selected_by_the_node_labels() {
        let config = Config::from_yaml(YAML).unwrap();
        let key = |a: &str, port| PeerKey {
            address: a.parse().unwrap(),
            port,
            device: None,
        };
        let ac = AnnounceConfig::from_config(&config, &node(&[("rack", "r2")]));
        assert_eq!(
            ac.peers,
            [
                Peer::new(key("198.18.0.1", 179), true),
                Peer::new(key("198.18.0.2", 1179), false),
            ]
        );
        let ac = AnnounceConfig::from_config(&config, &node(&[("rack", "r1")]));
        assert!(ac.peers.iter().all(|p| p.selects_node));
    }
}
