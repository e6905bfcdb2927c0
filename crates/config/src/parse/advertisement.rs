//! One `bgp-advertisements` entry of a pool, with ferrolb's extensions: weighted ECMP, per-Service
//! allowances, `node-selectors` and AS_PATH prepending.

use super::node_selector;
use crate::address::AddressRange;
use crate::community::CommunityValue;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::fields::{Object, Schema, bool_value, index, integer, string, u32_value};
use crate::model::BgpAdvertisement;
use crate::prepend::{AsPathPrepend, AsPathPrependAllowance, MAX_PREPEND_COUNT};
use crate::service_policy::{Bandwidth, LocalPrefRange};
use crate::yaml::Node;
use std::collections::BTreeMap;

pub(crate) const ADVERTISEMENT: Schema = Schema {
    known: &[
        "aggregation-length",
        "aggregation-length-v6",
        "localpref",
        "communities",
        "weighted-ecmp",
        "link-bandwidth-per-endpoint",
        "allowed-service-communities",
        "allowed-service-localprefs",
        "allowed-service-as-path-prepends",
        "as-path-prepend",
        "node-selectors",
    ],
    not_supported: &[],
};

/// An advertisement's `as-path-prepend`.
pub(crate) const AS_PATH_PREPEND: Schema = Schema {
    known: &["asn", "count"],
    not_supported: &[],
};

/// One `allowed-service-as-path-prepends` entry.
pub(crate) const PREPEND_ALLOWANCE: Schema = Schema {
    known: &["asn", "max-count"],
    not_supported: &[],
};

/// `{asn, <count_key>}` read with `schema`: an AS of 1 to 4294967295 and a count of 1 to 10, both required.
fn asn_and_count(
    node: &Node,
    path: String,
    schema: &Schema,
    count_key: &'static str,
    errs: &mut Vec<ConfigError>,
) -> Option<(u32, u8)> {
    let obj = Object::read(node, path, schema, errs)?;
    let before = errs.len();
    let asn = obj.required("asn", errs, u32_value);
    if asn == Some(0) {
        errs.push(obj.error("asn", ConfigErrorKind::ZeroAsn("asn")));
    }
    let count = obj.required(count_key, errs, |n| {
        let v = integer(n, u64::from(MAX_PREPEND_COUNT), "1 to 10")?;
        match u8::try_from(v) {
            Ok(c) if c >= 1 => Ok(c),
            _ => Err(ConfigErrorKind::OutOfRange {
                value: v.to_string(),
                range: "1 to 10",
            }),
        }
    });
    if errs.len() != before {
        return None;
    }
    Some((asn?, count?))
}

pub(crate) fn advertisement(
    node: &Node,
    path: String,
    aliases: &BTreeMap<String, CommunityValue>,
    addresses: &[(AddressRange, String)],
    errs: &mut Vec<ConfigError>,
) -> Option<BgpAdvertisement> {
    let obj = Object::read(node, path, &ADVERTISEMENT, errs)?;
    let before = errs.len();
    let defaults = BgpAdvertisement::default();
    let length = |key: &str, v4: bool, errs: &mut Vec<ConfigError>| {
        let (max, family) = if v4 { (32, "IPv4") } else { (128, "IPv6") };
        let len = obj.get(key, errs, |n| {
            let v = integer(n, u64::from(u8::MAX), "0 to 255")?;
            let len = u8::try_from(v).unwrap_or(u8::MAX);
            if len > max {
                return Err(ConfigErrorKind::AggregationTooLong {
                    length: len,
                    family,
                    max,
                });
            }
            Ok(len)
        })?;
        // No shorter than any prefix of this family in the pool (MetalLB's rule).
        for (range, range_path) in addresses.iter().filter(|(r, _)| r.is_ipv4() == v4) {
            let prefix = range.shortest_prefix_len();
            if len < prefix {
                errs.push(obj.error(
                    key,
                    ConfigErrorKind::AggregationTooShort {
                        length: len,
                        prefix,
                        entry: range.to_string(),
                        entry_path: range_path.clone(),
                    },
                ));
                return None;
            }
        }
        Some(len)
    };
    let aggregation_length = length("aggregation-length", true, errs);
    let aggregation_length_v6 = length("aggregation-length-v6", false, errs);
    let localpref = obj.get("localpref", errs, u32_value);
    let communities = community_list(&obj, "communities", aliases, errs);
    let weighted_ecmp = obj.get("weighted-ecmp", errs, bool_value).unwrap_or(false);
    let bandwidth = obj.get("link-bandwidth-per-endpoint", errs, |n| {
        string(n).and_then(|text| text.parse::<Bandwidth>().map_err(Into::into))
    });
    if bandwidth.is_some() && !weighted_ecmp {
        errs.push(obj.error(
            "link-bandwidth-per-endpoint",
            ConfigErrorKind::BandwidthWithoutWeightedEcmp,
        ));
    }
    let allowed_service_communities =
        community_list(&obj, "allowed-service-communities", aliases, errs);
    let mut allowed_service_localprefs = Vec::new();
    for (i, r) in obj
        .seq("allowed-service-localprefs", errs)
        .iter()
        .enumerate()
    {
        let path = index(&obj.path_of("allowed-service-localprefs"), i);
        match string(r).and_then(|text| text.parse::<LocalPrefRange>().map_err(Into::into)) {
            Ok(v) if !allowed_service_localprefs.contains(&v) => allowed_service_localprefs.push(v),
            Ok(_) => {}
            Err(kind) => errs.push(ConfigError::new(path, r.line, kind)),
        }
    }
    let as_path_prepend = obj.entry("as-path-prepend").and_then(|e| {
        let (asn, count) = asn_and_count(
            &e.value,
            obj.path_of("as-path-prepend"),
            &AS_PATH_PREPEND,
            "count",
            errs,
        )?;
        Some(AsPathPrepend { asn, count })
    });
    let mut allowed_service_as_path_prepends = Vec::new();
    let key = "allowed-service-as-path-prepends";
    for (i, n) in obj.seq(key, errs).iter().enumerate() {
        let path = index(&obj.path_of(key), i);
        if let Some((asn, max_count)) =
            asn_and_count(n, path, &PREPEND_ALLOWANCE, "max-count", errs)
        {
            let a = AsPathPrependAllowance { asn, max_count };
            if !allowed_service_as_path_prepends.contains(&a) {
                allowed_service_as_path_prepends.push(a);
            }
        }
    }
    let mut node_selectors = Vec::new();
    for (i, sel) in obj.seq("node-selectors", errs).iter().enumerate() {
        if let Some(s) = node_selector(sel, index(&obj.path_of("node-selectors"), i), errs) {
            node_selectors.push(s);
        }
    }
    // Weights and per-Service attributes belong to one Service's own route, never to an
    // aggregate several Services share.
    let aggregate = [
        aggregation_length.filter(|l| *l != 32),
        aggregation_length_v6.filter(|l| *l != 128),
    ]
    .into_iter()
    .flatten()
    .next();
    if let Some(length) = aggregate {
        let present = [
            ("weighted-ecmp", weighted_ecmp),
            ("link-bandwidth-per-endpoint", bandwidth.is_some()),
            (
                "allowed-service-communities",
                !allowed_service_communities.is_empty(),
            ),
            (
                "allowed-service-localprefs",
                !allowed_service_localprefs.is_empty(),
            ),
            (
                "allowed-service-as-path-prepends",
                !allowed_service_as_path_prepends.is_empty(),
            ),
        ];
        for (key, _) in present.into_iter().filter(|(_, set)| *set) {
            errs.push(obj.error(key, ConfigErrorKind::NeedsHostRoutes { key, length }));
        }
    }
    if errs.len() != before {
        return None;
    }
    Some(BgpAdvertisement {
        aggregation_length: aggregation_length.unwrap_or(defaults.aggregation_length),
        aggregation_length_v6: aggregation_length_v6.unwrap_or(defaults.aggregation_length_v6),
        localpref,
        communities,
        weighted_ecmp,
        link_bandwidth_per_endpoint: bandwidth.unwrap_or(defaults.link_bandwidth_per_endpoint),
        allowed_service_communities,
        allowed_service_localprefs,
        allowed_service_as_path_prepends,
        as_path_prepend,
        node_selectors,
        ..BgpAdvertisement::default()
    })
}

/// A list of communities at `key` (aliases resolved, duplicates dropped, errors pushed).
fn community_list(
    obj: &Object<'_>,
    key: &str,
    aliases: &BTreeMap<String, CommunityValue>,
    errs: &mut Vec<ConfigError>,
) -> Vec<CommunityValue> {
    let mut communities = Vec::new();
    for (i, c) in obj.seq(key, errs).iter().enumerate() {
        let path = index(&obj.path_of(key), i);
        let value = string(c).and_then(|text| match aliases.get(&text) {
            Some(v) => Ok(*v),
            None => text.parse::<CommunityValue>().map_err(Into::into),
        });
        match value {
            Ok(v) if !communities.contains(&v) => communities.push(v),
            Ok(_) => {}
            Err(kind) => errs.push(ConfigError::new(path, c.line, kind)),
        }
    }
    communities
}
