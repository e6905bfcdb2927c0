//! Checks across objects: overlapping addresses, duplicate pools, peers and advertisements.

use crate::address::{AddressRange, to_bits};
use crate::error::{ConfigError, ConfigErrorKind, Overlap};
use crate::model::BgpAdvertisement;
use std::collections::HashMap;
use std::net::IpAddr;

/// One address entry, with where it is.
pub(crate) struct AddressEntry {
    /// Index of its pool in `address-pools`.
    pub pool_index: usize,
    /// Index in the pool's `addresses`.
    pub entry_index: usize,
    /// The pool's name (empty if the name was missing).
    pub pool: String,
    /// `address-pools[i].addresses[j]`.
    pub path: String,
    /// Its line.
    pub line: usize,
    /// The entry.
    pub range: AddressRange,
}

/// What makes two peers the same session.
pub(crate) struct PeerKey {
    /// `peers[i]`.
    pub path: String,
    /// Its line.
    pub line: usize,
    /// `peer-address`.
    pub address: IpAddr,
    /// `peer-port`.
    pub port: u16,
    /// `my-asn`.
    pub my_asn: u32,
    /// `interface` or `vrf`: the device the session is bound to.
    pub device: Option<crate::DeviceName>,
}

/// A pool's name, with where it is.
pub(crate) struct PoolName {
    /// The name.
    pub name: String,
    /// `address-pools[i].name`.
    pub path: String,
    /// Its line.
    pub line: usize,
}

/// Finds every entry that overlaps an earlier one, within a pool or across pools, in
/// O(n log n): sort by (family, first address), then sweep keeping the entry that reaches
/// furthest. Each overlapping entry is reported once, the later one in the file of a pair.
pub(crate) fn overlaps(entries: &mut [AddressEntry], errs: &mut Vec<ConfigError>) {
    let key = |e: &AddressEntry| {
        (
            e.range.is_ipv4(),
            to_bits(e.range.first()),
            e.pool_index,
            e.entry_index,
        )
    };
    entries.sort_by_key(key);
    // Index of the entry, so far in this family, whose last address is highest.
    let mut reach: Option<usize> = None;
    // Entries already reported (an entry covering many others is reported once).
    let mut reported = std::collections::HashSet::new();
    for i in 0..entries.len() {
        let (Some(cur), Some(prev)) = (entries.get(i), reach.and_then(|r| entries.get(r))) else {
            reach = Some(i);
            continue;
        };
        let same_family = cur.range.is_ipv4() == prev.range.is_ipv4();
        if same_family && to_bits(cur.range.first()) <= to_bits(prev.range.last()) {
            let (later, earlier) =
                if (cur.pool_index, cur.entry_index) > (prev.pool_index, prev.entry_index) {
                    (cur, prev)
                } else {
                    (prev, cur)
                };
            // An entry covering many others is reported once, against the first it meets.
            if reported.insert((later.pool_index, later.entry_index)) {
                errs.push(ConfigError::new(
                    later.path.clone(),
                    later.line,
                    ConfigErrorKind::Overlap(Box::new(Overlap {
                        entry: later.range.to_string(),
                        pool: later.pool.clone(),
                        other_entry: earlier.range.to_string(),
                        other_pool: earlier.pool.clone(),
                        other_path: earlier.path.clone(),
                        other_line: earlier.line,
                    })),
                ));
            }
        }
        if !same_family || to_bits(cur.range.last()) > to_bits(prev.range.last()) {
            reach = Some(i);
        }
    }
}

/// Reports every peer with the same address, port and local AS as an earlier one.
pub(crate) fn duplicate_peers(keys: &[PeerKey], errs: &mut Vec<ConfigError>) {
    let mut seen: HashMap<(IpAddr, u16, u32, Option<crate::DeviceName>), &PeerKey> = HashMap::new();
    for k in keys {
        match seen.get(&(k.address, k.port, k.my_asn, k.device)) {
            Some(first) => errs.push(ConfigError::new(
                k.path.clone(),
                k.line,
                ConfigErrorKind::DuplicatePeer {
                    address: match k.device {
                        Some(d) if k.address.is_unspecified() => format!("interface {d}"),
                        Some(d) => format!("{} in VRF {d}", k.address),
                        None => k.address.to_string(),
                    },
                    port: k.port,
                    my_asn: k.my_asn,
                    first_path: first.path.clone(),
                    first_line: first.line,
                },
            )),
            None => {
                seen.insert((k.address, k.port, k.my_asn, k.device), k);
            }
        }
    }
}

/// Reports every pool whose name an earlier pool already has.
pub(crate) fn duplicate_pool_names(names: &[PoolName], errs: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, &PoolName> = HashMap::new();
    for n in names {
        match seen.get(n.name.as_str()) {
            Some(first) => errs.push(ConfigError::new(
                n.path.clone(),
                n.line,
                ConfigErrorKind::DuplicatePoolName {
                    name: n.name.clone(),
                    first_path: first.path.clone(),
                    first_line: first.line,
                },
            )),
            None => {
                seen.insert(&n.name, n);
            }
        }
    }
}

/// Reports `ad` if an earlier advertisement of its pool is identical (communities compared as a
/// set, as MetalLB does).
pub(crate) fn duplicate_advertisement(
    ad: &BgpAdvertisement,
    path: &str,
    line: usize,
    earlier: &[(BgpAdvertisement, String, usize)],
    errs: &mut Vec<ConfigError>,
) {
    let normal = |a: &BgpAdvertisement| {
        let mut c = a.communities.clone();
        c.sort();
        let mut allowed = a.allowed_service_communities.clone();
        allowed.sort();
        let mut prefs = a.allowed_service_localprefs.clone();
        prefs.sort();
        let mut prepends = a.allowed_service_as_path_prepends.clone();
        prepends.sort();
        (
            (
                a.aggregation_length,
                a.aggregation_length_v6,
                a.localpref,
                c,
            ),
            (
                a.weighted_ecmp,
                a.link_bandwidth_per_endpoint,
                allowed,
                prefs,
            ),
            (a.as_path_prepend, prepends, a.node_selectors.clone()),
        )
    };
    if let Some((_, first_path, first_line)) =
        earlier.iter().find(|(e, _, _)| normal(e) == normal(ad))
    {
        errs.push(ConfigError::new(
            path,
            line,
            ConfigErrorKind::DuplicateAdvertisement {
                first_path: first_path.clone(),
                first_line: *first_line,
            },
        ));
    }
}
