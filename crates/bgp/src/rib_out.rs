//! Adj-RIB-Out: the routes sent to one peer, and the packed UPDATEs that bring the peer to the
//! desired set.
//!
//! One [`AdjRibOut`] lives for one established session. The caller hands it the whole desired
//! table ([`AdjRibOut::set_desired`]); it answers with the UPDATEs for the difference from what
//! it already sent, and records them as sent:
//! - prefixes with identical [`Attributes`] share UPDATEs, packed greedily up to the session's
//!   maximum message length (4096, or 65535 with extended messages); withdrawals likewise;
//! - IPv4 unicast uses the classic NLRI and Withdrawn Routes fields with NEXT_HOP; IPv6 unicast
//!   uses MP_REACH_NLRI (global next hop) and MP_UNREACH_NLRI, over an IPv4 or IPv6 session;
//! - ORIGIN is IGP; AS_PATH is empty toward iBGP peers and `[local AS]` toward eBGP peers
//!   (AS_TRANS plus AS4_PATH toward a 2-octet peer when the AS needs 4 octets, RFC 6793 §4.2.2);
//!   LOCAL_PREF goes only to iBGP peers, 100 unless set; NEXT_HOP is the session's local
//!   address given to [`AdjRibOut::new`].
//!
//! A route whose family the session did not negotiate, or for which there is no next hop of its
//! family, is not sent; [`AdjRibOut::unsendable`] counts those of the last call.
//! [`AdjRibOut::resend_family`] answers a ROUTE-REFRESH; [`AdjRibOut::end_of_rib`] gives the
//! marker to send after the initial table.
//!
//! Memory: the sent table holds one `Arc` per attribute set, shared by all its prefixes, so a
//! route costs one B-tree entry (about 40 octets).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net};

use crate::wire::{
    AsPath, Family, HEADER_LEN, LargeCommunity, Message, MpReach, MpUnreach, Origin,
    PathAttributes, SessionContext, Update,
};

/// LOCAL_PREF sent to iBGP peers when a route sets none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attributes a caller sets per route. The rest (ORIGIN, AS_PATH, NEXT_HOP) follow from
/// the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attributes {
    /// LOCAL_PREF for iBGP peers ([`DEFAULT_LOCAL_PREF`] when `None`); never sent to eBGP peers.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// COMMUNITIES (RFC 1997), each `(asn << 16) | value`.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED COMMUNITIES (RFC 4360), opaque 8-octet values (e.g. link bandwidth).
    pub extended_communities: Vec<[u8; 8]>,
}

/// The routes sent to one peer during one session.
#[derive(Debug, Clone)]
pub struct AdjRibOut {
    ctx: SessionContext,
    next_hop_v4: Option<Ipv4Addr>,
    next_hop_v6: Option<Ipv6Addr>,
    sent: BTreeMap<IpNet, Arc<Attributes>>,
    unsendable: usize,
}

impl AdjRibOut {
    /// An empty Adj-RIB-Out for a session that negotiated `ctx`, whose local addresses (the
    /// next hops) are `next_hop_v4` and `next_hop_v6`.
    pub fn new(
        ctx: &SessionContext,
        next_hop_v4: Option<Ipv4Addr>,
        next_hop_v6: Option<Ipv6Addr>,
    ) -> Self {
        AdjRibOut {
            ctx: ctx.clone(),
            next_hop_v4,
            next_hop_v6,
            sent: BTreeMap::new(),
            unsendable: 0,
        }
    }

    /// Number of prefixes the peer has from us.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether the peer has no prefix from us.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The routes sent, in prefix order.
    pub fn sent(&self) -> impl Iterator<Item = (&IpNet, &Attributes)> {
        self.sent.iter().map(|(p, a)| (p, a.as_ref()))
    }

    /// Desired routes the last [`AdjRibOut::set_desired`] could not send (family not negotiated,
    /// no next hop of the family, or attributes too large for one message).
    pub fn unsendable(&self) -> usize {
        self.unsendable
    }

    fn sendable(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(_) => self.next_hop_v4.is_some() && self.ctx.supports(Family::Ipv4Unicast),
            IpNet::V6(_) => self.next_hop_v6.is_some() && self.ctx.supports(Family::Ipv6Unicast),
        }
    }

    /// Make the peer's table `desired`: returns the UPDATEs (withdrawals first) that get it
    /// there from what was sent, and records them as sent. Calling it twice with the same table
    /// returns nothing the second time.
    pub fn set_desired(&mut self, desired: &BTreeMap<IpNet, Attributes>) -> Vec<Message> {
        let mut withdraw_v4: Vec<Ipv4Net> = Vec::new();
        let mut withdraw_v6: Vec<IpNet> = Vec::new();
        self.sent.retain(|prefix, _| {
            let keep = desired.contains_key(prefix);
            if !keep {
                match prefix {
                    IpNet::V4(p) => withdraw_v4.push(*p),
                    IpNet::V6(_) => withdraw_v6.push(*prefix),
                }
            }
            keep
        });
        let mut unsendable = 0;
        let mut groups: BTreeMap<&Attributes, Vec<IpNet>> = BTreeMap::new();
        for (prefix, attrs) in desired {
            if !self.sendable(prefix) {
                unsendable += 1;
                if self.sent.remove(prefix).is_some() {
                    match prefix {
                        IpNet::V4(p) => withdraw_v4.push(*p),
                        IpNet::V6(_) => withdraw_v6.push(*prefix),
                    }
                }
                continue;
            }
            if self.sent.get(prefix).is_some_and(|a| a.as_ref() == attrs) {
                continue;
            }
            groups.entry(attrs).or_default().push(*prefix);
        }
        let mut out = Vec::new();
        self.pack_withdrawals(&withdraw_v4, &withdraw_v6, &mut out);
        for (attrs, prefixes) in groups {
            let shared = Arc::new(attrs.clone());
            let sent_count = self.pack_announcements(&shared, &prefixes, &mut out);
            unsendable += prefixes.len() - sent_count;
            for prefix in prefixes.into_iter().take(sent_count) {
                self.sent.insert(prefix, Arc::clone(&shared));
            }
        }
        self.unsendable = unsendable;
        out
    }

    /// The UPDATEs announcing every sent route of `family` again (for a ROUTE-REFRESH). Follow
    /// them with [`AdjRibOut::end_of_rib`] if the peer wants to know they are complete.
    pub fn resend_family(&self, family: Family) -> Vec<Message> {
        let mut groups: BTreeMap<&Arc<Attributes>, Vec<IpNet>> = BTreeMap::new();
        for (prefix, attrs) in &self.sent {
            let f = match prefix {
                IpNet::V4(_) => Family::Ipv4Unicast,
                IpNet::V6(_) => Family::Ipv6Unicast,
            };
            if f == family {
                groups.entry(attrs).or_default().push(*prefix);
            }
        }
        let mut out = Vec::new();
        for (attrs, prefixes) in groups {
            self.pack_announcements(attrs, &prefixes, &mut out);
        }
        out
    }

    /// The End-of-RIB marker for `family` (RFC 4724 §2).
    pub fn end_of_rib(&self, family: Family) -> Message {
        Message::Update(Update::end_of_rib(family))
    }

    /// The attributes of an UPDATE for `attrs` in `family`, with no NLRI yet.
    pub fn path_attributes(&self, attrs: &Attributes, family: Family) -> PathAttributes {
        let ctx = &self.ctx;
        let (as_path, as4_path) = if ctx.ibgp {
            (AsPath::default(), None)
        } else if !ctx.four_octet_as && ctx.local_asn > u32::from(u16::MAX) {
            // RFC 6793 §4.2.2: toward an OLD speaker, AS_TRANS in AS_PATH and the real path in
            // AS4_PATH.
            (
                AsPath::sequence(vec![ctx.local_asn]),
                Some(AsPath::sequence(vec![ctx.local_asn])),
            )
        } else {
            (AsPath::sequence(vec![ctx.local_asn]), None)
        };
        let mp_reach = match (family, self.next_hop_v6) {
            (Family::Ipv6Unicast, Some(nh)) => Some(MpReach {
                family,
                next_hop: IpAddr::V6(nh),
                link_local_next_hop: None,
                nlri: Vec::new(),
            }),
            _ => None,
        };
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(as_path),
            next_hop: match family {
                Family::Ipv4Unicast => self.next_hop_v4,
                Family::Ipv6Unicast => None,
            },
            med: attrs.med,
            local_pref: ctx
                .ibgp
                .then(|| attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)),
            communities: attrs.communities.clone(),
            mp_reach,
            extended_communities: attrs.extended_communities.clone(),
            as4_path,
            large_communities: attrs.large_communities.clone(),
            ..PathAttributes::default()
        }
    }

    /// Octets of the attribute field, or `None` if it cannot be encoded.
    fn attribute_len(&self, attributes: &PathAttributes) -> Option<usize> {
        let mut buf = BytesMut::new();
        attributes.encode(&self.ctx, &mut buf).ok()?;
        Some(buf.len())
    }

    /// Room for NLRI (or withdrawn prefixes) in one UPDATE whose attribute field is
    /// `attribute_len` octets: the maximum length less the header, the two length fields and the
    /// attributes.
    fn nlri_room(&self, attribute_len: usize) -> usize {
        self.ctx
            .max_message_len()
            .saturating_sub(HEADER_LEN + 4 + attribute_len)
    }

    fn pack_withdrawals(&self, v4: &[Ipv4Net], v6: &[IpNet], out: &mut Vec<Message>) {
        let room = self.nlri_room(0);
        for chunk in chunks(v4, room, |p| prefix_wire_len(p.prefix_len())) {
            out.push(Message::Update(Update {
                withdrawn: chunk.to_vec(),
                ..Update::default()
            }));
        }
        // MP_UNREACH_NLRI with no prefixes, counted with the 2-octet length it gets once it
        // holds more than 255 octets: flags, type, length (2), AFI, SAFI.
        let room = self.nlri_room(7);
        for chunk in chunks(v6, room, |p| prefix_wire_len(p.prefix_len())) {
            out.push(Message::Update(Update {
                attributes: PathAttributes {
                    mp_unreach: Some(MpUnreach {
                        family: Family::Ipv6Unicast,
                        withdrawn: chunk.to_vec(),
                    }),
                    ..PathAttributes::default()
                },
                ..Update::default()
            }));
        }
    }

    /// Append the UPDATEs announcing `prefixes` (sorted; IPv4 before IPv6) with `attrs`.
    /// Returns how many prefixes, from the front, could be packed.
    fn pack_announcements(
        &self,
        attrs: &Attributes,
        prefixes: &[IpNet],
        out: &mut Vec<Message>,
    ) -> usize {
        let split = prefixes.partition_point(|p| matches!(p, IpNet::V4(_)));
        let (v4, v6) = prefixes.split_at(split);
        let mut packed = 0;
        if !v4.is_empty() {
            let base = self.path_attributes(attrs, Family::Ipv4Unicast);
            let Some(alen) = self.attribute_len(&base) else {
                return packed;
            };
            let room = self.nlri_room(alen);
            if room < 5 {
                return packed;
            }
            for chunk in chunks(v4, room, |p| prefix_wire_len(p.prefix_len())) {
                let nlri = chunk
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V4(p) => Some(*p),
                        IpNet::V6(_) => None,
                    })
                    .collect();
                out.push(Message::Update(Update {
                    attributes: base.clone(),
                    nlri,
                    ..Update::default()
                }));
            }
            packed += v4.len();
        }
        if !v6.is_empty() {
            let base = self.path_attributes(attrs, Family::Ipv6Unicast);
            // +1: MP_REACH_NLRI takes the 2-octet length once its NLRI push it past 255.
            let Some(alen) = self.attribute_len(&base).map(|l| l + 1) else {
                return packed;
            };
            let room = self.nlri_room(alen);
            if room < 17 || base.mp_reach.is_none() {
                return packed;
            }
            for chunk in chunks(v6, room, |p| prefix_wire_len(p.prefix_len())) {
                let mut attributes = base.clone();
                if let Some(mp) = attributes.mp_reach.as_mut() {
                    mp.nlri = chunk.to_vec();
                }
                out.push(Message::Update(Update {
                    attributes,
                    ..Update::default()
                }));
            }
            packed += v6.len();
        }
        packed
    }
}

/// Octets a prefix of this length takes in NLRI encoding.
fn prefix_wire_len(len: u8) -> usize {
    1 + usize::from(len).div_ceil(8)
}

/// Split `items` greedily into runs whose summed `cost` fits `room`. Every item's cost must be
/// at most `room` (true for prefixes when `room` ≥ 17).
fn chunks<T>(items: &[T], room: usize, cost: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let c = cost(item);
        if used + c > room && i > start {
            out.push(&items[start..i]);
            start = i;
            used = 0;
        }
        used += c;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AsSegment, AsSegmentKind, LargeCommunity, try_parse};
    use std::collections::BTreeSet;

    fn ctx(ibgp: bool, four_octet_as: bool, local_asn: u32) -> SessionContext {
        SessionContext {
            local_asn,
            peer_asn: if ibgp { local_asn } else { 65002 },
            four_octet_as,
            ibgp,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            ..SessionContext::before_open()
        }
    }

    const NH4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn nh6() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }

    fn hosts(n: u32) -> BTreeMap<IpNet, Attributes> {
        (0..n)
            .map(|i| {
                let a = Ipv4Addr::from(0xc612_0000 + i); // 198.18.0.0 onwards
                (
                    IpNet::V4(Ipv4Net::new(a, 32).unwrap()),
                    Attributes::default(),
                )
            })
            .collect()
    }

    fn encode_all(msgs: &[Message], ctx: &SessionContext) -> Vec<bytes::Bytes> {
        msgs.iter().map(|m| m.encode(ctx).unwrap()).collect()
    }

    /// Decode what was sent and collect (announced, withdrawn).
    fn sent_prefixes(msgs: &[Message], ctx: &SessionContext) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
        let mut announced = BTreeSet::new();
        let mut withdrawn = BTreeSet::new();
        for bytes in encode_all(msgs, ctx) {
            assert!(bytes.len() <= ctx.max_message_len());
            let mut buf = BytesMut::from(&bytes[..]);
            let Some(Message::Update(u)) = try_parse(&mut buf, ctx).unwrap() else {
                panic!("not an UPDATE");
            };
            assert!(u.issues.is_empty(), "{:?}", u.issues);
            announced.extend(u.all_announced());
            withdrawn.extend(u.all_withdrawn());
        }
        (announced, withdrawn)
    }

    #[test]
    fn ten_thousand_hosts_fill_the_optimal_number_of_4096_octet_updates() {
        let c = ctx(false, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let desired = hosts(10_000);
        let msgs = rib.set_desired(&desired);
        // eBGP attributes: ORIGIN 4 + AS_PATH 9 + NEXT_HOP 7 = 20 octets, so each UPDATE has
        // room for (4096 - 23 - 20) / 5 = 810 /32s: ceil(10000 / 810) = 13.
        assert_eq!(msgs.len(), 13);
        let (announced, withdrawn) = sent_prefixes(&msgs, &c);
        assert_eq!(announced, desired.keys().copied().collect());
        assert!(withdrawn.is_empty());
        assert_eq!(rib.len(), 10_000);
        // The first 12 are full to the octet.
        for b in encode_all(&msgs[..12], &c) {
            assert_eq!(b.len(), 23 + 20 + 810 * 5);
        }
    }

    #[test]
    fn withdrawing_ten_thousand_hosts_splits_at_4096_octets() {
        let c = ctx(false, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        rib.set_desired(&hosts(10_000));
        let msgs = rib.set_desired(&BTreeMap::new());
        // (4096 - 23) / 5 = 814 withdrawals per UPDATE: ceil(10000 / 814) = 13.
        assert_eq!(msgs.len(), 13);
        let (announced, withdrawn) = sent_prefixes(&msgs, &c);
        assert!(announced.is_empty());
        assert_eq!(withdrawn.len(), 10_000);
        assert!(rib.is_empty());
    }

    #[test]
    fn extended_messages_pack_more_per_update() {
        let c = SessionContext {
            extended_message: true,
            ..ctx(false, true, 65001)
        };
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let msgs = rib.set_desired(&hosts(20_000));
        // (65535 - 43) / 5 = 13098 per UPDATE.
        assert_eq!(msgs.len(), 2);
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 20_000);
    }

    #[test]
    fn only_the_difference_is_sent() {
        let c = ctx(true, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let mut desired = hosts(3);
        assert_eq!(rib.set_desired(&desired).len(), 1);
        assert_eq!(rib.set_desired(&desired), vec![], "nothing changed");

        let first = *desired.keys().next().unwrap();
        let last = *desired.keys().last().unwrap();
        desired.remove(&first);
        desired.insert(
            last,
            Attributes {
                local_pref: Some(200),
                ..Attributes::default()
            },
        );
        let msgs = rib.set_desired(&desired);
        assert_eq!(msgs.len(), 2, "one withdrawal, one re-announcement");
        let Message::Update(w) = &msgs[0] else {
            panic!()
        };
        assert_eq!(w.all_withdrawn(), vec![first]);
        let Message::Update(a) = &msgs[1] else {
            panic!()
        };
        assert_eq!(a.all_announced(), vec![last]);
        assert_eq!(a.attributes.local_pref, Some(200));
        assert_eq!(rib.len(), 2);
    }

    #[test]
    fn ibgp_gets_an_empty_as_path_and_local_pref_100() {
        let c = ctx(true, true, 65001);
        let rib = AdjRibOut::new(&c, Some(NH4), None);
        let a = rib.path_attributes(&Attributes::default(), Family::Ipv4Unicast);
        assert_eq!(a.as_path, Some(AsPath::default()));
        assert_eq!(a.local_pref, Some(DEFAULT_LOCAL_PREF));
        assert_eq!(a.next_hop, Some(NH4));
        assert_eq!(a.origin, Some(Origin::Igp));
    }

    #[test]
    fn ebgp_gets_our_as_and_no_local_pref() {
        let c = ctx(false, true, 4_200_000_001);
        let rib = AdjRibOut::new(&c, Some(NH4), None);
        let attrs = Attributes {
            local_pref: Some(300),
            med: Some(7),
            communities: vec![(65001 << 16) | 1],
            large_communities: vec![LargeCommunity {
                global_admin: 65001,
                local_data1: 2,
                local_data2: 3,
            }],
            extended_communities: vec![[0x40, 0x04, 0xfd, 0xe9, 0x47, 0xf4, 0x24, 0x00]],
        };
        let a = rib.path_attributes(&attrs, Family::Ipv4Unicast);
        assert_eq!(a.as_path, Some(AsPath::sequence(vec![4_200_000_001])));
        assert_eq!(a.as4_path, None);
        assert_eq!(a.local_pref, None);
        assert_eq!(a.med, Some(7));
        assert_eq!(a.communities, attrs.communities);
        assert_eq!(a.large_communities, attrs.large_communities);
        assert_eq!(a.extended_communities, attrs.extended_communities);
    }

    #[test]
    fn a_two_octet_peer_gets_as_trans_and_as4_path_on_the_wire() {
        let c = ctx(false, false, 4_200_000_001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let one = hosts(1);
        let msgs = rib.set_desired(&one);
        let bytes = msgs[0].encode(&c).unwrap();
        let expected: Vec<u8> = [
            &[0xff; 16][..],
            &[0, 55, 2, 0, 0, 0, 27][..],
            &[0x40, 1, 1, 0][..],                          // ORIGIN IGP
            &[0x40, 2, 4, 2, 1, 0x5b, 0xa0][..],           // AS_PATH [23456]
            &[0x40, 3, 4, 198, 18, 0, 1][..],              // NEXT_HOP
            &[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 1][..], // AS4_PATH [4200000001]
            &[32, 198, 18, 0, 0][..],
        ]
        .concat();
        assert_eq!(bytes.as_ref(), &expected[..]);
        let mut buf = BytesMut::from(&bytes[..]);
        let Some(Message::Update(u)) = try_parse(&mut buf, &c).unwrap() else {
            panic!()
        };
        assert_eq!(
            u.attributes.as4_path.unwrap().segments,
            vec![AsSegment {
                kind: AsSegmentKind::Sequence,
                asns: vec![4_200_000_001]
            }]
        );
    }

    #[test]
    fn ipv6_routes_go_in_mp_reach_with_the_global_next_hop_over_an_ipv4_session() {
        let c = ctx(false, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
        let p6: IpNet = "2001:db8:7::1/128".parse().unwrap();
        let p4: IpNet = "203.0.113.7/32".parse().unwrap();
        let desired: BTreeMap<IpNet, Attributes> =
            [(p4, Attributes::default()), (p6, Attributes::default())]
                .into_iter()
                .collect();
        let msgs = rib.set_desired(&desired);
        assert_eq!(msgs.len(), 2);
        let Message::Update(u6) = &msgs[1] else {
            panic!()
        };
        let mp = u6.attributes.mp_reach.as_ref().unwrap();
        assert_eq!(mp.next_hop, IpAddr::V6(nh6()));
        assert_eq!(mp.nlri, vec![p6]);
        assert_eq!(u6.attributes.next_hop, None);
        assert!(u6.nlri.is_empty());
        let (announced, _) = sent_prefixes(&msgs, &c);
        assert_eq!(announced.len(), 2);

        let msgs = rib.set_desired(&BTreeMap::new());
        let (_, withdrawn) = sent_prefixes(&msgs, &c);
        assert_eq!(withdrawn, [p4, p6].into_iter().collect());
    }

    #[test]
    fn many_ipv6_hosts_pack_into_4096_octets() {
        let c = ctx(true, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
        let desired: BTreeMap<IpNet, Attributes> = (0..1000u128)
            .map(|i| {
                let a = Ipv6Addr::from(0x2001_0db8_0007_0000_0000_0000_0000_0000u128 + i);
                (
                    IpNet::V6(ipnet::Ipv6Net::new(a, 128).unwrap()),
                    Attributes::default(),
                )
            })
            .collect();
        let msgs = rib.set_desired(&desired);
        // iBGP IPv6 attributes: ORIGIN 4 + AS_PATH 3 + LOCAL_PREF 7 + MP_REACH header 4 +
        // AFI/SAFI/NH len/NH/reserved 21 = 39 octets; (4096 - 23 - 39) / 17 = 237 per UPDATE.
        assert_eq!(msgs.len(), 1000usize.div_ceil(237));
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 1000);
        let withdrawals = rib.set_desired(&BTreeMap::new());
        // (4096 - 23 - 7) / 17 = 239 per UPDATE.
        assert_eq!(withdrawals.len(), 1000usize.div_ceil(239));
        assert_eq!(sent_prefixes(&withdrawals, &c).1.len(), 1000);
    }

    #[test]
    fn routes_without_a_next_hop_or_family_are_not_sent() {
        let c = SessionContext {
            families: vec![Family::Ipv4Unicast],
            ..ctx(false, true, 65001)
        };
        let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
        let mut desired = hosts(2);
        desired.insert("2001:db8::7/128".parse().unwrap(), Attributes::default());
        let msgs = rib.set_desired(&desired);
        assert_eq!(rib.unsendable(), 1);
        assert_eq!(rib.len(), 2);
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 2);

        let no_v6 = AdjRibOut::new(&ctx(false, true, 65001), Some(NH4), None)
            .set_desired(&desired)
            .len();
        assert_eq!(no_v6, 1);
    }

    #[test]
    fn route_refresh_resends_the_family_and_end_of_rib_follows() {
        let c = ctx(false, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
        let mut desired = hosts(900);
        desired.insert("2001:db8::7/128".parse().unwrap(), Attributes::default());
        rib.set_desired(&desired);
        let again = rib.resend_family(Family::Ipv4Unicast);
        assert_eq!(again.len(), 2);
        assert_eq!(sent_prefixes(&again, &c).0.len(), 900);
        assert_eq!(rib.resend_family(Family::Ipv6Unicast).len(), 1);
        assert_eq!(
            rib.end_of_rib(Family::Ipv6Unicast)
                .encode(&c)
                .unwrap()
                .as_ref(),
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1
            ]
        );
    }

    #[test]
    fn different_attribute_sets_get_their_own_updates() {
        let c = ctx(false, true, 65001);
        let mut rib = AdjRibOut::new(&c, Some(NH4), None);
        let mut desired = hosts(10);
        for (i, attrs) in desired.values_mut().enumerate() {
            attrs.communities = vec![(i % 3) as u32];
        }
        let msgs = rib.set_desired(&desired);
        assert_eq!(msgs.len(), 3);
        assert_eq!(sent_prefixes(&msgs, &c).0.len(), 10);
    }

    mod property {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        fn prefix() -> impl Strategy<Value = IpNet> {
            prop_oneof![
                (any::<u32>(), 8u8..=32).prop_map(|(a, l)| IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()
                )),
                (any::<u128>(), 16u8..=128).prop_map(|(a, l)| IpNet::V6(
                    ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()
                )),
            ]
        }

        fn attributes() -> impl Strategy<Value = Attributes> {
            (
                proptest::option::of(0u32..3),
                vec(0u32..3, 0..3),
                proptest::option::of(0u32..2),
            )
                .prop_map(|(local_pref, communities, med)| Attributes {
                    local_pref,
                    med,
                    communities,
                    ..Attributes::default()
                })
        }

        fn tables() -> impl Strategy<Value = Vec<BTreeMap<IpNet, Attributes>>> {
            vec(btree_map(prefix(), attributes(), 0..400), 1..5)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Whatever sequence of tables is set, a peer applying the UPDATEs ends up with
            /// exactly the last table, with the right attributes, and no UPDATE is too long.
            #[test]
            fn the_peer_converges_on_the_desired_table(
                steps in tables(), ibgp in any::<bool>(), extended in any::<bool>()
            ) {
                let c = SessionContext {
                    extended_message: extended,
                    ..ctx(ibgp, true, 65001)
                };
                let mut rib = AdjRibOut::new(&c, Some(NH4), Some(nh6()));
                let mut peer: BTreeMap<IpNet, PathAttributes> = BTreeMap::new();
                for desired in &steps {
                    for m in rib.set_desired(desired) {
                        let bytes = m.encode(&c).unwrap();
                        prop_assert!(bytes.len() <= c.max_message_len());
                        let mut buf = BytesMut::from(&bytes[..]);
                        let Some(Message::Update(u)) = try_parse(&mut buf, &c).unwrap() else {
                            panic!("not an UPDATE")
                        };
                        for p in u.all_withdrawn() {
                            prop_assert!(peer.remove(&p).is_some(), "withdrew unknown {}", p);
                        }
                        let mut attrs = u.attributes.clone();
                        attrs.mp_reach = None;
                        for p in u.all_announced() {
                            peer.insert(p, attrs.clone());
                        }
                    }
                    prop_assert_eq!(rib.set_desired(desired), vec![]);
                    let keys: Vec<_> = peer.keys().collect();
                    prop_assert_eq!(keys, desired.keys().collect::<Vec<_>>());
                    for (p, want) in desired {
                        let family = match p {
                            IpNet::V4(_) => Family::Ipv4Unicast,
                            IpNet::V6(_) => Family::Ipv6Unicast,
                        };
                        let mut expected = rib.path_attributes(want, family);
                        expected.mp_reach = None;
                        prop_assert_eq!(&peer[p], &expected);
                    }
                }
            }
        }
    }
}
