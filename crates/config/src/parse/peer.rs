//! Reading a peer (`peers[]`, and a `BGPPeer`'s spec renamed to the same keys): its AS numbers (fixed, from a
//! Node label, or learned from the router's OPEN), address, timers, router ID, password, BFD profile and node
//! selectors.

use super::node_selector;
use crate::DeviceName;
use crate::bfd::ProfileNames;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::fields::{
    Object, Schema, bool_value, duration_value, index, ip_value, string, u16_value, u32_value,
};
use crate::model::{DEFAULT_HOLD_TIME, DEFAULT_PEER_PORT, DynamicAsn, LocalAsn, Peer};
use crate::validate::PeerKey;
use crate::yaml::Node;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// Linux's TCP_MD5SIG_MAXKEYLEN.
pub(crate) const TCP_MD5_MAX_KEY_LEN: usize = 80;

pub(super) const PEER: Schema = Schema {
    known: &[
        "my-asn",
        "my-asn-from-node-label",
        "peer-asn",
        "dynamic-asn",
        "local-asn",
        "local-asn-replace-as",
        "peer-address",
        "interface",
        "vrf",
        "peer-port",
        "source-address",
        "hold-time",
        "keepalive-time",
        "router-id",
        "router-id-from-node-label",
        "connect-time",
        "password",
        "ebgp-multihop",
        "bfd-profile",
        "node-selectors",
    ],
    not_supported: &[],
};

pub(crate) fn peer(
    node: &Node,
    path: String,
    profiles: &ProfileNames,
    keys: &mut Vec<PeerKey>,
    errs: &mut Vec<ConfigError>,
) -> Option<Peer> {
    let obj = Object::read(node, path, &PEER, errs)?;
    let before = errs.len();
    let asn = |key: &'static str, errs: &mut Vec<ConfigError>| {
        let v = obj.required(key, errs, u32_value)?;
        if v == 0 {
            errs.push(obj.error(key, ConfigErrorKind::ZeroAsn(key)));
            return None;
        }
        Some(v)
    };
    let label_key = |key: &'static str, errs: &mut Vec<ConfigError>| {
        obj.get(key, errs, |n| {
            let k = string(n)?;
            if crate::selector::is_label_key(&k) {
                Ok(k)
            } else {
                Err(ConfigErrorKind::BadLabelKey(k))
            }
        })
    };
    // `my-asn` or a Node label; `peer-asn` or `dynamic-asn`: exactly one of each pair.
    let one_of = |a: &'static str, b: &'static str, errs: &mut Vec<ConfigError>| match (
        obj.entry(a).is_some(),
        obj.entry(b).is_some(),
    ) {
        (true, true) => {
            errs.push(obj.error(b, ConfigErrorKind::BothSet(a, b)));
            false
        }
        (false, false) => {
            obj.missing(a, errs);
            false
        }
        (a_set, _) => a_set,
    };
    let my_asn_label = label_key("my-asn-from-node-label", errs);
    let my_asn = if one_of("my-asn", "my-asn-from-node-label", errs) {
        asn("my-asn", errs)
    } else {
        my_asn_label.as_ref().map(|_| 0)
    };
    let dynamic_asn = obj.get("dynamic-asn", errs, |n| match string(n)?.as_str() {
        "internal" => Ok(DynamicAsn::Internal),
        "external" => Ok(DynamicAsn::External),
        other => Err(ConfigErrorKind::BadDynamicAsn(other.to_owned())),
    });
    let peer_asn = if one_of("peer-asn", "dynamic-asn", errs) {
        asn("peer-asn", errs)
    } else {
        dynamic_asn.map(|_| 0)
    };
    let local_asn = match obj.entry("local-asn") {
        None => None,
        Some(_) => asn("local-asn", errs),
    };
    let replace_as = obj.get("local-asn-replace-as", errs, bool_value);
    if replace_as.is_some() && local_asn.is_none() && obj.entry("local-asn").is_none() {
        errs.push(obj.error(
            "local-asn-replace-as",
            ConfigErrorKind::Needs("local-asn-replace-as", "local-asn"),
        ));
    }
    let local_asn = local_asn.map(|asn| LocalAsn {
        asn,
        replace_as: replace_as.unwrap_or(false),
    });
    let connect_time = obj
        .get("connect-time", errs, duration_value)
        .and_then(|(d, text)| {
            if d < Duration::from_secs(1) || d > Duration::from_secs(65535) || d.subsec_nanos() != 0
            {
                errs.push(obj.error(
                    "connect-time",
                    ConfigErrorKind::OutOfRange {
                        value: text,
                        range: "1s to 65535s, whole seconds",
                    },
                ));
                None
            } else {
                Some(d)
            }
        });
    // `peer-address` or `interface` (unnumbered): exactly one.
    let device = |key: &'static str, errs: &mut Vec<ConfigError>| {
        obj.get(key, errs, |n| Ok(string(n)?.parse::<DeviceName>()?))
    };
    let interface = device("interface", errs);
    let vrf = device("vrf", errs);
    if interface.is_some() && vrf.is_some() {
        errs.push(obj.error("vrf", ConfigErrorKind::BothSet("interface", "vrf")));
    }
    let peer_address = match (obj.entry("peer-address"), obj.entry("interface")) {
        (Some(_), Some(_)) => {
            errs.push(obj.error(
                "interface",
                ConfigErrorKind::BothSet("peer-address", "interface"),
            ));
            None
        }
        (None, None) => {
            errs.push(ConfigError::new(
                obj.path.clone(),
                obj.line,
                ConfigErrorKind::NeitherSet("peer-address", "interface"),
            ));
            None
        }
        (Some(_), None) => obj.required("peer-address", errs, ip_value).and_then(|a| {
            if a.is_unspecified() {
                errs.push(obj.error(
                    "peer-address",
                    ConfigErrorKind::UnspecifiedPeerAddress(a.to_string()),
                ));
                None
            } else {
                Some(a)
            }
        }),
        (None, Some(_)) => interface.map(|_| IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    let peer_port = match obj.entry("peer-port") {
        None => Some(DEFAULT_PEER_PORT),
        Some(_) => match obj.get("peer-port", errs, u16_value) {
            Some(0) => {
                errs.push(obj.error(
                    "peer-port",
                    ConfigErrorKind::OutOfRange {
                        value: "0".into(),
                        range: "1 to 65535",
                    },
                ));
                None
            }
            other => other,
        },
    };
    let source_address = obj.get("source-address", errs, ip_value);
    if source_address.is_some() && interface.is_some() {
        // The source of an unnumbered session is the interface's link-local address.
        errs.push(obj.error(
            "source-address",
            ConfigErrorKind::BothSet("interface", "source-address"),
        ));
    }
    if let (Some(src), Some(dst), None) = (source_address, peer_address, interface)
        && src.is_ipv4() != dst.is_ipv4()
    {
        errs.push(obj.error(
            "source-address",
            ConfigErrorKind::SourceFamilyMismatch {
                source_address: src.to_string(),
                peer: dst.to_string(),
            },
        ));
    }
    let hold_time = hold_time(&obj, errs);
    let keepalive = obj.get("keepalive-time", errs, duration_value);
    let keepalive_time = match (hold_time, keepalive) {
        (Some(hold), Some((ka, text))) if ka > hold => {
            errs.push(obj.error(
                "keepalive-time",
                ConfigErrorKind::KeepaliveExceedsHold {
                    keepalive: text,
                    hold: crate::duration::format_duration(hold),
                },
            ));
            None
        }
        (_, Some((ka, _))) => Some(ka),
        (Some(hold), None) => Some(hold / 3),
        (None, None) => None,
    };
    let router_id = obj.get("router-id", errs, |n| match ip_value(n)? {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(v6) => Err(ConfigErrorKind::BadRouterId(v6.to_string())),
    });
    let router_id_label = label_key("router-id-from-node-label", errs);
    if router_id.is_some() && router_id_label.is_some() {
        errs.push(obj.error(
            "router-id-from-node-label",
            ConfigErrorKind::BothSet("router-id", "router-id-from-node-label"),
        ));
    }
    // An empty password means none, as in MetalLB.
    let password = obj
        .get("password", errs, |n| {
            let p = string(n)?;
            if p.len() > TCP_MD5_MAX_KEY_LEN {
                Err(ConfigErrorKind::BadPassword(
                    "is longer than 80 bytes, the TCP-MD5 key limit",
                ))
            } else if p.contains(['\n', '\r']) {
                Err(ConfigErrorKind::BadPassword("contains a line break"))
            } else {
                Ok(p)
            }
        })
        .filter(|p| !p.is_empty())
        .map(crate::Password::from);
    let ebgp_multihop = obj.get("ebgp-multihop", errs, bool_value).unwrap_or(false);
    if let (Some(mine), Some(theirs)) = (my_asn, peer_asn)
        && ebgp_multihop
        && ((mine != 0 && mine == theirs) || dynamic_asn == Some(DynamicAsn::Internal))
    {
        errs.push(obj.error("ebgp-multihop", ConfigErrorKind::EbgpMultihopOnIbgp(mine)));
    }
    let bfd_profile = obj.get("bfd-profile", errs, |n| {
        let name = string(n)?;
        if profiles.contains(&name) {
            Ok(name)
        } else {
            Err(ConfigErrorKind::UnknownBfdProfile {
                name,
                known: profiles.list(),
            })
        }
    });
    let mut node_selectors = Vec::new();
    for (i, sel) in obj.seq("node-selectors", errs).iter().enumerate() {
        if let Some(s) = node_selector(sel, index(&obj.path_of("node-selectors"), i), errs) {
            node_selectors.push(s);
        }
    }
    if let (Some(address), Some(port), Some(my_asn)) = (peer_address, peer_port, my_asn) {
        keys.push(PeerKey {
            path: obj.path.clone(),
            line: obj.line,
            address,
            port,
            my_asn,
            device: interface.or(vrf),
        });
    }
    if errs.len() != before {
        return None;
    }
    Some(Peer {
        name: None,
        my_asn: my_asn?,
        peer_asn: peer_asn?,
        dynamic_asn,
        local_asn,
        my_asn_from_node_label: my_asn_label,
        router_id_from_node_label: router_id_label,
        peer_address: peer_address?,
        interface,
        vrf,
        peer_port: peer_port?,
        source_address,
        hold_time: hold_time?,
        keepalive_time: keepalive_time?,
        connect_time,
        graceful_restart: None,
        dual_stack_address_family: true,
        router_id,
        password,
        ebgp_multihop,
        bfd_profile,
        node_selectors,
    })
}

/// The hold time, truncated to whole seconds as MetalLB does; 0 or 3 s to 65535 s.
fn hold_time(obj: &Object<'_>, errs: &mut Vec<ConfigError>) -> Option<Duration> {
    if obj.entry("hold-time").is_none() {
        return Some(DEFAULT_HOLD_TIME);
    }
    let (d, text) = obj.get("hold-time", errs, duration_value)?;
    let whole = Duration::from_secs(d.as_secs());
    let kind = if whole != Duration::ZERO && whole < Duration::from_secs(3) {
        ConfigErrorKind::HoldTimeTooShort(text)
    } else if whole > Duration::from_secs(u64::from(u16::MAX)) {
        ConfigErrorKind::HoldTimeTooLong(text)
    } else {
        return Some(whole);
    };
    errs.push(obj.error("hold-time", kind));
    None
}
