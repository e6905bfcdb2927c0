//! Pools from the parsed ConfigMap (`ferrolb_config`).

use ferrolb_config::{AddressPool, Config};

use crate::pool::PoolDef;

impl From<&AddressPool> for PoolDef {
    fn from(pool: &AddressPool) -> PoolDef {
        PoolDef {
            name: pool.name.clone(),
            ranges: pool
                .addresses
                .iter()
                .map(|r| (r.first(), r.last()))
                .collect(),
            avoid_buggy_ips: pool.avoid_buggy_ips,
            auto_assign: pool.auto_assign,
            allocation: pool.service_allocation.clone(),
        }
    }
}

/// The allocator's pools for a config, in config order (which is the auto-assign order).
pub fn pools_from_config(config: &Config) -> Vec<PoolDef> {
    config.address_pools.iter().map(PoolDef::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Allocator, Family, FamilyRequest, Request, ServiceKey};
    use std::net::IpAddr;

    const CONFIG: &str = r#"
address-pools:
- name: public
  protocol: bgp
  addresses:
  - 203.0.113.0/30
  - 198.51.100.10-198.51.100.12
  - 2001:db8::/126
  avoid-buggy-ips: true
- name: reserved
  protocol: bgp
  auto-assign: false
  addresses:
  - 198.51.100.200/32
"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_and_ranges_become_inclusive_ranges_in_config_order() {
        let config = Config::from_yaml(CONFIG).unwrap();
        let pools = pools_from_config(&config);
        assert_eq!(
            pools,
            vec![
                PoolDef {
                    name: "public".into(),
                    ranges: vec![
                        (ip("203.0.113.0"), ip("203.0.113.3")),
                        (ip("198.51.100.10"), ip("198.51.100.12")),
                        (ip("2001:db8::"), ip("2001:db8::3")),
                    ],
                    avoid_buggy_ips: true,
                    auto_assign: true,
                    allocation: None,
                },
                PoolDef {
                    name: "reserved".into(),
                    ranges: vec![(ip("198.51.100.200"), ip("198.51.100.200"))],
                    avoid_buggy_ips: false,
                    auto_assign: false,
                    allocation: None,
                },
            ]
        );
    }

    #[test]
    fn an_allocator_built_from_the_config_skips_the_buggy_network_address() {
        let config = Config::from_yaml(CONFIG).unwrap();
        let mut allocator = Allocator::new(&pools_from_config(&config)).unwrap();
        let mut got = Vec::new();
        for i in 0..4 {
            let key = ServiceKey::new("default", format!("web{i}"));
            got.extend(allocator.allocate(&key, &Request::default()).unwrap().ips());
        }
        // Lowest address first across the pool's entries; 203.0.113.0 is skipped (avoid-buggy-ips).
        assert_eq!(
            got,
            vec![
                ip("198.51.100.10"),
                ip("198.51.100.11"),
                ip("198.51.100.12"),
                ip("203.0.113.1")
            ]
        );
        let v6 = Request {
            families: FamilyRequest::single(Family::V6),
            ..Request::default()
        };
        let got = allocator
            .allocate(&ServiceKey::new("default", "v6"), &v6)
            .unwrap();
        assert_eq!(got.ips(), vec![ip("2001:db8::")]);
    }
}
