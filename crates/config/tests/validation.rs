//! Table-driven: every validation rule, each case asserting the error's path, line and kind.

mod common;

use common::{Case, assert_cases};
use ferrolb_config::{
    AddressError, CommunityError, Config, ConfigErrorKind as K, DurationError, Overlap,
};

/// A valid pool to append to peer-only cases (lines 1-4 of nothing else).
const CASES: &[Case] = &[
    Case {
        name: "unknown top-level key",
        yaml: "peers: []\nadress-pools: []\n",
        path: "adress-pools",
        line: 2,
        check: |k| matches!(k, K::UnknownKey { key, .. } if key == "adress-pools"),
    },
    Case {
        name: "unknown peer key",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  peer-addres: 198.18.0.2\n",
        path: "peers[0].peer-addres",
        line: 5,
        check: |k| matches!(k, K::UnknownKey { key, expected } if key == "peer-addres" && expected.contains("peer-address")),
    },
    Case {
        name: "unknown advertisement key",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - localpref: 100\n    local-pref: 100\n",
        path: "address-pools[0].bgp-advertisements[0].local-pref",
        line: 7,
        check: |k| matches!(k, K::UnknownKey { key, .. } if key == "local-pref"),
    },
    Case {
        name: "unknown selector key",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  node-selectors:\n  - matchLabels: {a: b}\n",
        path: "peers[0].node-selectors[0].matchLabels",
        line: 6,
        check: |k| matches!(k, K::UnknownKey { key, .. } if key == "matchLabels"),
    },
    Case {
        name: "bfd-profile on a peer must name a defined profile",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  bfd-profile: fast\n",
        path: "peers[0].bfd-profile",
        line: 5,
        check: |k| matches!(k, K::UnknownBfdProfile { name, known } if name == "fast" && known == "none are defined"),
    },
    Case {
        name: "announce-from takes nodes-with-endpoints or all-nodes",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  announce-from: everywhere\n",
        path: "address-pools[0].announce-from",
        line: 5,
        check: |k| matches!(k, K::UnknownAnnounceFrom(v) if v == "everywhere"),
    },
    Case {
        name: "weighted-ecmp takes a boolean",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - weighted-ecmp: please\n",
        path: "address-pools[0].bgp-advertisements[0].weighted-ecmp",
        line: 6,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "true or false",
                    ..
                }
            )
        },
    },
    Case {
        name: "duplicate key",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  my-asn: 64502\n  peer-address: 198.18.0.1\n",
        path: "",
        line: 4,
        check: |k| matches!(k, K::DuplicateKey { key, first_line: 2 } if key == "my-asn"),
    },
    Case {
        name: "missing my-asn",
        yaml: "peers:\n- peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0]",
        line: 2,
        check: |k| *k == K::Missing("my-asn"),
    },
    Case {
        name: "missing peer-asn",
        yaml: "peers:\n- my-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0]",
        line: 2,
        check: |k| *k == K::Missing("peer-asn"),
    },
    Case {
        name: "missing peer-address",
        yaml: "peers:\n- my-asn: 64501\n  peer-asn: 64501\n",
        path: "peers[0]",
        line: 2,
        check: |k| *k == K::NeitherSet("peer-address", "interface"),
    },
    Case {
        name: "peer-address and interface",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  interface: eth1\n",
        path: "peers[0].interface",
        line: 5,
        check: |k| *k == K::BothSet("peer-address", "interface"),
    },
    Case {
        name: "interface name too long",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  interface: eth1234567890abcd\n",
        path: "peers[0].interface",
        line: 4,
        check: |k| matches!(k, K::BadDevice(e) if e.0 == "eth1234567890abcd"),
    },
    Case {
        name: "interface with a colon",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  interface: \"eth1:0\"\n",
        path: "peers[0].interface",
        line: 4,
        check: |k| matches!(k, K::BadDevice(e) if e.0 == "eth1:0"),
    },
    Case {
        name: "interface and source-address",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  interface: eth1\n  source-address: 198.18.0.2\n",
        path: "peers[0].source-address",
        line: 5,
        check: |k| *k == K::BothSet("interface", "source-address"),
    },
    Case {
        name: "interface and vrf",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  interface: eth1\n  vrf: blue\n",
        path: "peers[0].vrf",
        line: 5,
        check: |k| *k == K::BothSet("interface", "vrf"),
    },
    Case {
        name: "unspecified peer-address",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: \"::\"\n",
        path: "peers[0].peer-address",
        line: 4,
        check: |k| *k == K::UnspecifiedPeerAddress("::".into()),
    },
    Case {
        name: "two sessions on one interface",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  interface: eth1\n- my-asn: 64500\n  peer-asn: 64502\n  interface: eth1\n",
        path: "peers[1]",
        line: 5,
        check: |k| matches!(k, K::DuplicatePeer { address, first_line: 2, .. } if address == "interface eth1"),
    },
    Case {
        name: "one address twice in one VRF",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  vrf: blue\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  vrf: blue\n",
        path: "peers[1]",
        line: 6,
        check: |k| matches!(k, K::DuplicatePeer { address, first_line: 2, .. } if address == "198.18.0.1 in VRF blue"),
    },
    Case {
        name: "ASN 0",
        yaml: "peers:\n- my-asn: 0\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0].my-asn",
        line: 2,
        check: |k| *k == K::ZeroAsn("my-asn"),
    },
    Case {
        name: "ASN too large",
        yaml: "peers:\n- my-asn: 4294967296\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0].my-asn",
        line: 2,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "4294967296"),
    },
    Case {
        name: "quoted ASN is not an integer",
        yaml: "peers:\n- my-asn: \"64500\"\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0].my-asn",
        line: 2,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "an integer",
                    ..
                }
            )
        },
    },
    Case {
        name: "invalid peer address",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.300\n",
        path: "peers[0].peer-address",
        line: 4,
        check: |k| *k == K::BadIp("198.18.0.300".into()),
    },
    Case {
        name: "invalid source address",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  source-address: nope\n",
        path: "peers[0].source-address",
        line: 5,
        check: |k| *k == K::BadIp("nope".into()),
    },
    Case {
        name: "source address of the other family",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  source-address: 2001:db8::1\n",
        path: "peers[0].source-address",
        line: 5,
        check: |k| matches!(k, K::SourceFamilyMismatch { .. }),
    },
    Case {
        name: "invalid router id",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  router-id: 1.2.3\n",
        path: "peers[0].router-id",
        line: 5,
        check: |k| *k == K::BadIp("1.2.3".into()),
    },
    Case {
        name: "IPv6 router id",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  router-id: 2001:db8::1\n",
        path: "peers[0].router-id",
        line: 5,
        check: |k| matches!(k, K::BadRouterId(_)),
    },
    Case {
        name: "port 0",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  peer-port: 0\n",
        path: "peers[0].peer-port",
        line: 5,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "0"),
    },
    Case {
        name: "port too large",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  peer-port: 65536\n",
        path: "peers[0].peer-port",
        line: 5,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "65536"),
    },
    Case {
        name: "a bad port is not also a duplicate of a port-179 peer",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  peer-port: 70000\n",
        path: "peers[1].peer-port",
        line: 8,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "70000"),
    },
    Case {
        name: "hold time below 3s",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  hold-time: 2s\n",
        path: "peers[0].hold-time",
        line: 5,
        check: |k| *k == K::HoldTimeTooShort("2s".into()),
    },
    Case {
        name: "hold time above 65535s",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  hold-time: 19h\n",
        path: "peers[0].hold-time",
        line: 5,
        check: |k| *k == K::HoldTimeTooLong("19h".into()),
    },
    Case {
        name: "hold time without unit",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  hold-time: 90\n",
        path: "peers[0].hold-time",
        line: 5,
        check: |k| matches!(k, K::Duration(DurationError::Invalid { text, .. }) if text == "90"),
    },
    Case {
        name: "keepalive above hold",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  hold-time: 9s\n  keepalive-time: 10s\n",
        path: "peers[0].keepalive-time",
        line: 6,
        check: |k| matches!(k, K::KeepaliveExceedsHold { keepalive, hold } if keepalive == "10s" && hold == "9s"),
    },
    Case {
        name: "keepalive above default hold",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  keepalive-time: 91s\n",
        path: "peers[0].keepalive-time",
        line: 5,
        check: |k| matches!(k, K::KeepaliveExceedsHold { hold, .. } if hold == "90s"),
    },
    Case {
        name: "ebgp-multihop on iBGP",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64500\n  peer-address: 198.18.0.1\n  ebgp-multihop: true\n",
        path: "peers[0].ebgp-multihop",
        line: 5,
        check: |k| *k == K::EbgpMultihopOnIbgp(64500),
    },
    Case {
        name: "peer-asn and dynamic-asn together",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  dynamic-asn: external\n  peer-address: 198.18.0.1\n",
        path: "peers[0].dynamic-asn",
        line: 4,
        check: |k| *k == K::BothSet("peer-asn", "dynamic-asn"),
    },
    Case {
        name: "neither my-asn nor its node label",
        yaml: "peers:\n- peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0]",
        line: 2,
        check: |k| *k == K::Missing("my-asn"),
    },
    Case {
        name: "dynamic-asn is internal or external",
        yaml: "peers:\n- my-asn: 64500\n  dynamic-asn: ebgp\n  peer-address: 198.18.0.1\n",
        path: "peers[0].dynamic-asn",
        line: 3,
        check: |k| matches!(k, K::BadDynamicAsn(v) if v == "ebgp"),
    },
    Case {
        name: "ebgp-multihop with dynamic-asn internal",
        yaml: "peers:\n- my-asn: 64500\n  dynamic-asn: internal\n  peer-address: 198.18.0.1\n  ebgp-multihop: true\n",
        path: "peers[0].ebgp-multihop",
        line: 5,
        check: |k| matches!(k, K::EbgpMultihopOnIbgp(_)),
    },
    Case {
        name: "local-asn-replace-as without local-asn",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  local-asn-replace-as: true\n",
        path: "peers[0].local-asn-replace-as",
        line: 5,
        check: |k| *k == K::Needs("local-asn-replace-as", "local-asn"),
    },
    Case {
        name: "local-asn of 0",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  local-asn: 0\n",
        path: "peers[0].local-asn",
        line: 5,
        check: |k| *k == K::ZeroAsn("local-asn"),
    },
    Case {
        name: "my-asn-from-node-label must be a label key",
        yaml: "peers:\n- my-asn-from-node-label: \"not a key\"\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n",
        path: "peers[0].my-asn-from-node-label",
        line: 2,
        check: |k| matches!(k, K::BadLabelKey(v) if v == "not a key"),
    },
    Case {
        name: "router-id and router-id-from-node-label together",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  router-id: 198.18.0.9\n  router-id-from-node-label: example.com/id\n",
        path: "peers[0].router-id-from-node-label",
        line: 6,
        check: |k| *k == K::BothSet("router-id", "router-id-from-node-label"),
    },
    Case {
        name: "connect-time below a second",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  connect-time: 500ms\n",
        path: "peers[0].connect-time",
        line: 5,
        check: |k| matches!(k, K::OutOfRange { value, .. } if value == "500ms"),
    },
    Case {
        name: "ebgp-multihop not a bool",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  ebgp-multihop: \"true\"\n",
        path: "peers[0].ebgp-multihop",
        line: 5,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "true or false",
                    ..
                }
            )
        },
    },
    Case {
        name: "password longer than the TCP-MD5 limit",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  password: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        path: "peers[0].password",
        line: 5,
        check: |k| matches!(k, K::BadPassword(why) if why.contains("80 bytes")),
    },
    Case {
        name: "password with a line break",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  password: \"a\\nb\"\n",
        path: "peers[0].password",
        line: 5,
        check: |k| matches!(k, K::BadPassword(why) if why.contains("line break")),
    },
    Case {
        name: "duplicate peer",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n- my-asn: 64500\n  peer-asn: 64502\n  peer-address: 198.18.0.1\n  peer-port: 179\n",
        path: "peers[1]",
        line: 5,
        check: |k| matches!(k, K::DuplicatePeer { first_path, first_line: 2, port: 179, .. } if first_path == "peers[0]"),
    },
    Case {
        name: "unknown selector operator",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  node-selectors:\n  - match-expressions:\n    - key: rack\n      operator: in\n      values: [a]\n",
        path: "peers[0].node-selectors[0].match-expressions[0].operator",
        line: 8,
        check: |k| *k == K::UnknownOperator("in".into()),
    },
    Case {
        name: "In without values",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  node-selectors:\n  - match-expressions:\n    - key: rack\n      operator: In\n",
        path: "peers[0].node-selectors[0].match-expressions[0].operator",
        line: 8,
        check: |k| {
            matches!(
                k,
                K::SelectorValues {
                    operator: "In",
                    requirement: "needs at least one value"
                }
            )
        },
    },
    Case {
        name: "Exists with values",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  node-selectors:\n  - match-expressions:\n    - key: rack\n      operator: Exists\n      values: [a]\n",
        path: "peers[0].node-selectors[0].match-expressions[0].values",
        line: 9,
        check: |k| {
            matches!(
                k,
                K::SelectorValues {
                    operator: "Exists",
                    requirement: "takes no values"
                }
            )
        },
    },
    Case {
        name: "invalid label key",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: 64501\n  peer-address: 198.18.0.1\n  node-selectors:\n  - match-labels:\n      \"bad key\": x\n",
        path: "peers[0].node-selectors[0].match-labels.bad key",
        line: 7,
        check: |k| *k == K::BadLabelKey("bad key".into()),
    },
    Case {
        name: "missing pool name",
        yaml: "address-pools:\n- protocol: bgp\n  addresses: [203.0.113.0/28]\n",
        path: "address-pools[0]",
        line: 2,
        check: |k| *k == K::Missing("name"),
    },
    Case {
        name: "missing protocol",
        yaml: "address-pools:\n- name: a\n  addresses: [203.0.113.0/28]\n",
        path: "address-pools[0]",
        line: 2,
        check: |k| *k == K::Missing("protocol"),
    },
    Case {
        name: "layer2 is rejected: BGP only",
        yaml: "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [203.0.113.0/28]\n",
        path: "address-pools[0].protocol",
        line: 3,
        check: |k| *k == K::Layer2 && k.to_string().contains("ferrolb is BGP only"),
    },
    Case {
        name: "unknown protocol",
        yaml: "address-pools:\n- name: a\n  protocol: ospf\n  addresses: [203.0.113.0/28]\n",
        path: "address-pools[0].protocol",
        line: 3,
        check: |k| *k == K::UnknownProtocol("ospf".into()),
    },
    Case {
        name: "pool without addresses",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: []\n",
        path: "address-pools[0].addresses",
        line: 4,
        check: |k| *k == K::NoAddresses,
    },
    Case {
        name: "range start after end",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses:\n  - 203.0.113.9-203.0.113.4\n",
        path: "address-pools[0].addresses[0]",
        line: 5,
        check: |k| matches!(k, K::Address(AddressError::StartAfterEnd { .. })),
    },
    Case {
        name: "bad CIDR",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses:\n  - 203.0.113.0/28\n  - 203.0.113.64/33\n",
        path: "address-pools[0].addresses[1]",
        line: 6,
        check: |k| *k == K::Address(AddressError::BadCidr("203.0.113.64/33".into())),
    },
    Case {
        name: "CIDR with host bits",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses:\n  - 203.0.113.5/24\n",
        path: "address-pools[0].addresses[0]",
        line: 5,
        check: |k| matches!(k, K::Address(AddressError::HostBits { network, .. }) if network == "203.0.113.0/24"),
    },
    Case {
        name: "mixed-family range",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses:\n  - 203.0.113.1-2001:db8::1\n",
        path: "address-pools[0].addresses[0]",
        line: 5,
        check: |k| matches!(k, K::Address(AddressError::MixedFamily { .. })),
    },
    Case {
        name: "duplicate pool name",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.16/28]\n",
        path: "address-pools[1].name",
        line: 5,
        check: |k| matches!(k, K::DuplicatePoolName { name, first_path, first_line: 2 } if name == "a" && first_path == "address-pools[0].name"),
    },
    Case {
        name: "overlap across pools",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n- name: b\n  protocol: bgp\n  addresses:\n  - 198.51.100.0/24\n  - 203.0.113.10-203.0.113.20\n",
        path: "address-pools[1].addresses[1]",
        line: 9,
        check: |k| {
            *k == K::Overlap(Box::new(Overlap {
                entry: "203.0.113.10-203.0.113.20".into(),
                pool: "b".into(),
                other_entry: "203.0.113.0/28".into(),
                other_pool: "a".into(),
                other_path: "address-pools[0].addresses[0]".into(),
                other_line: 4,
            }))
        },
    },
    Case {
        name: "overlap within a pool",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses:\n  - 2001:db8::/64\n  - 2001:db8::5-2001:db8::9\n",
        path: "address-pools[0].addresses[1]",
        line: 6,
        check: |k| matches!(k, K::Overlap(o) if o.pool == "a" && o.other_pool == "a"),
    },
    Case {
        name: "overlap where the later entry starts first",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.10/32]\n- name: b\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n",
        path: "address-pools[1].addresses[0]",
        line: 7,
        check: |k| matches!(k, K::Overlap(o) if o.pool == "b" && o.other_pool == "a"),
    },
    Case {
        name: "IPv4 aggregation length over 32",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - aggregation-length: 33\n",
        path: "address-pools[0].bgp-advertisements[0].aggregation-length",
        line: 6,
        check: |k| {
            matches!(
                k,
                K::AggregationTooLong {
                    length: 33,
                    max: 32,
                    ..
                }
            )
        },
    },
    Case {
        name: "IPv6 aggregation length over 128",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [2001:db8::/120]\n  bgp-advertisements:\n  - aggregation-length-v6: 129\n",
        path: "address-pools[0].bgp-advertisements[0].aggregation-length-v6",
        line: 6,
        check: |k| {
            matches!(
                k,
                K::AggregationTooLong {
                    length: 129,
                    max: 128,
                    ..
                }
            )
        },
    },
    Case {
        name: "aggregation shorter than a CIDR",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - aggregation-length: 24\n",
        path: "address-pools[0].bgp-advertisements[0].aggregation-length",
        line: 6,
        check: |k| {
            matches!(k, K::AggregationTooShort { length: 24, prefix: 28, entry, entry_path }
            if entry == "203.0.113.0/28" && entry_path == "address-pools[0].addresses[0]")
        },
    },
    Case {
        name: "aggregation shorter than a range's largest CIDR",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [1.2.3.4-1.2.3.8]\n  bgp-advertisements:\n  - aggregation-length: 29\n",
        path: "address-pools[0].bgp-advertisements[0].aggregation-length",
        line: 6,
        check: |k| {
            matches!(
                k,
                K::AggregationTooShort {
                    length: 29,
                    prefix: 30,
                    ..
                }
            )
        },
    },
    Case {
        name: "duplicate advertisement",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - communities: [\"1:1\", \"2:2\"]\n  - communities: [\"2:2\", \"1:1\"]\n",
        path: "address-pools[0].bgp-advertisements[1]",
        line: 7,
        check: |k| matches!(k, K::DuplicateAdvertisement { first_line: 6, .. }),
    },
    Case {
        name: "malformed community",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - communities:\n    - 65536:1\n",
        path: "address-pools[0].bgp-advertisements[0].communities[0]",
        line: 7,
        check: |k| matches!(k, K::Community(CommunityError::BadPart { part, .. }) if part == "65536"),
    },
    Case {
        name: "unknown community alias",
        yaml: "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/28]\n  bgp-advertisements:\n  - communities: [no-advertize]\n",
        path: "address-pools[0].bgp-advertisements[0].communities[0]",
        line: 6,
        check: |k| matches!(k, K::Community(CommunityError::Malformed(t)) if t == "no-advertize"),
    },
    Case {
        name: "malformed alias value",
        yaml: "bgp-communities:\n  ok: 65535:65282\n  bad: 1:2:3:4\n",
        path: "bgp-communities.bad",
        line: 3,
        check: |k| matches!(k, K::Community(CommunityError::Malformed(_))),
    },
    Case {
        name: "wrong type for a list",
        yaml: "peers: 198.18.0.1\n",
        path: "peers",
        line: 1,
        check: |k| {
            matches!(
                k,
                K::WrongType {
                    expected: "a sequence",
                    ..
                }
            )
        },
    },
    Case {
        name: "YAML syntax error",
        yaml: "peers:\n- my-asn: 64500\n  peer-asn: [64501\n",
        path: "",
        line: 4,
        check: |k| matches!(k, K::Syntax(_)),
    },
];

#[test]
fn every_rule_reports_path_line_and_kind() {
    assert_cases("", CASES);
}

#[test]
fn the_issue_example_message_is_exact() {
    let yaml = "\
address-pools:
- name: a
  protocol: bgp
  addresses: [203.0.113.0/28]
- name: b
  protocol: bgp
  addresses:
  - 203.0.113.9-203.0.113.4
";
    let err = Config::from_yaml(yaml).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address-pools[1].addresses[0] (line 8): range start 203.0.113.9 is after end 203.0.113.4"
    );
}

#[test]
fn all_errors_are_collected_in_line_order() {
    let yaml = "\
peers:
- my-asn: 64500
  peer-asn: 64501
  peer-address: 198.18.0.1
  hold-time: 1s
  bfd-profile: x
address-pools:
- name: a
  protocol: layer2
  addresses: [203.0.113.0/28]
- name: b
  protocol: bgp
  addresses: [203.0.113.8/29]
  colour: blue
";
    let err = Config::from_yaml(yaml).unwrap_err();
    let got: Vec<(String, usize)> = err
        .errors()
        .iter()
        .map(|e| (e.path.clone(), e.line))
        .collect();
    assert_eq!(
        got,
        [
            ("peers[0].hold-time".to_string(), 5),
            ("peers[0].bfd-profile".to_string(), 6),
            ("address-pools[0].protocol".to_string(), 9),
            ("address-pools[1].addresses[0]".to_string(), 13),
            ("address-pools[1].colour".to_string(), 14),
        ]
    );
    assert_eq!(err.to_string().lines().count(), 5);
}

#[test]
fn unnumbered_peers_and_one_address_in_two_vrfs_are_accepted() {
    let yaml = "\
peers:
- my-asn: 64500
  peer-asn: 64501
  interface: eth1
- my-asn: 64500
  dynamic-asn: external
  interface: eth2
- my-asn: 64500
  peer-asn: 64501
  peer-address: 198.18.0.1
  vrf: red
- my-asn: 64500
  peer-asn: 64501
  peer-address: 198.18.0.1
  vrf: blue
";
    let cfg = Config::from_yaml(yaml).unwrap();
    let devices: Vec<(String, Option<String>, Option<String>)> = cfg
        .peers
        .iter()
        .map(|p| {
            (
                p.peer_address.to_string(),
                p.interface.map(|d| d.to_string()),
                p.vrf.map(|d| d.to_string()),
            )
        })
        .collect();
    assert_eq!(
        devices,
        vec![
            ("::".into(), Some("eth1".into()), None),
            ("::".into(), Some("eth2".into()), None),
            ("198.18.0.1".into(), None, Some("red".into())),
            ("198.18.0.1".into(), None, Some("blue".into())),
        ]
    );
}

#[test]
fn ipv6_and_mixed_pools_are_accepted() {
    let yaml = "\
address-pools:
- name: mixed
  protocol: bgp
  addresses:
  - 203.0.113.0/28
  - 2001:db8:1::/120
  - 2001:db8:2::1-2001:db8:2::ff
";
    let cfg = Config::from_yaml(yaml).unwrap();
    assert_eq!(cfg.address_counts(), (16, 256 + 255));
}

#[test]
fn many_pools_overlap_check_finds_each_overlap_once() {
    // 2000 disjoint /128s, then 3 entries overlapping them; the last covers 80 of them and is
    // still reported once.
    let mut yaml = String::from("address-pools:\n- name: big\n  protocol: bgp\n  addresses:\n");
    for i in 0..2000u32 {
        let ip = std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i) * 2,
        );
        yaml.push_str(&format!("  - {ip}/128\n"));
    }
    yaml.push_str("- name: dup\n  protocol: bgp\n  addresses:\n  - 2001:db8::2/128\n  - 2001:db8::100-2001:db8::101\n  - 2001:db8::f00/120\n");
    let err = Config::from_yaml(&yaml).unwrap_err();
    let paths: Vec<&str> = err.errors().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "address-pools[1].addresses[0]",
            "address-pools[1].addresses[1]",
            "address-pools[1].addresses[2]",
        ]
    );
}
