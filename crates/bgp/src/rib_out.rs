//! Adj-RIB-Out: the routes sent to one peer, and the packed UPDATEs that bring the peer to the
//! desired set.
//!
//! One [`AdjRibOut`] lives for one established session. The caller hands it the whole desired
//! table ([`AdjRibOut::set_desired`]), or the desired table and the prefixes that changed in it
//! ([`AdjRibOut::apply`], whose cost follows the change, not the table); it answers with the
//! UPDATEs for the difference from what it already sent, and records them as sent:
//! - prefixes with identical [`Attributes`] share UPDATEs, packed greedily up to the session's
//!   maximum message length (4096, or 65535 with extended messages); withdrawals likewise;
//! - IPv4 unicast uses the classic NLRI and Withdrawn Routes fields with NEXT_HOP; IPv6 unicast
//!   uses MP_REACH_NLRI (global next hop) and MP_UNREACH_NLRI, over an IPv4 or IPv6 session;
//! - on a session with no IPv4 next hop whose peer accepts IPv6 next hops for IPv4 (RFC 8950, an
//!   unnumbered session), IPv4 unicast goes in MP_REACH_NLRI / MP_UNREACH_NLRI (AFI 1, SAFI 1)
//!   with the IPv6 next hop, as FRR sends it: global and link-local, or the link-local twice
//!   when the link has no global address ([`AdjRibOut::with_link_local_next_hop`]);
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

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
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
    /// AS_PATH prepending: `count` copies of `asn` after the session's own AS_PATH (see
    /// [`AdjRibOut::as_path`]), to make this path less preferred.
    pub as_path_prepend: Option<AsPathPrepend>,
}

/// Attributes that [`intern`] can keep: owned (moved into the `Arc`), borrowed (cloned) or already shared.
pub trait IntoShared: Borrow<Attributes> {
    /// The `Arc` to keep.
    fn into_shared(self) -> Arc<Attributes>;
}

impl IntoShared for Attributes {
    fn into_shared(self) -> Arc<Attributes> {
        Arc::new(self)
    }
}

impl IntoShared for &Attributes {
    fn into_shared(self) -> Arc<Attributes> {
        Arc::new(self.clone())
    }
}

impl IntoShared for Arc<Attributes> {
    fn into_shared(self) -> Arc<Attributes> {
        self
    }
}

/// The set in `shared` equal to `attrs`, added to it when there is none: equal attribute sets share one `Arc`
/// (a table of thousands of routes then holds a handful of sets). `attrs` becomes an `Arc` only when it is new.
pub fn intern(shared: &mut HashSet<Arc<Attributes>>, attrs: impl IntoShared) -> Arc<Attributes> {
    if let Some(a) = shared.get(attrs.borrow()) {
        return Arc::clone(a);
    }
    let a = attrs.into_shared();
    shared.insert(Arc::clone(&a));
    a
}

/// `count` copies of `asn` added to a route's AS_PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsPathPrepend {
    /// The AS repeated.
    pub asn: u32,
    /// How many times (the configuration allows 1 to 10).
    pub count: u8,
}

/// The routes sent to one peer during one session.
#[derive(Debug, Clone)]
pub struct AdjRibOut {
    ctx: SessionContext,
    next_hop_v4: Option<Ipv4Addr>,
    next_hop_v6: Option<Ipv6Addr>,
    link_local_next_hop: Option<Ipv6Addr>,
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
            link_local_next_hop: None,
            sent: BTreeMap::new(),
            unsendable: 0,
        }
    }

    /// Sets the link-local next hop sent after the global one (RFC 2545 §3: a 32-octet next hop),
    /// for a session over a link-local address. Without a global next hop the link-local address
    /// takes both places.
    pub fn with_link_local_next_hop(mut self, link_local: Option<Ipv6Addr>) -> Self {
        self.link_local_next_hop = link_local;
        self
    }

    /// The IPv6 next hop (global, link-local) routes of this session carry, if it has one.
    fn v6_next_hop(&self) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
        match (self.next_hop_v6, self.link_local_next_hop) {
            (Some(global), ll) => Some((global, ll)),
            (None, Some(ll)) => Some((ll, Some(ll))),
            (None, None) => None,
        }
    }

    /// Whether IPv4 routes travel in MP_REACH_NLRI with an IPv6 next hop (RFC 8950): the session
    /// has no IPv4 next hop and the peer accepts IPv6 ones.
    fn ipv4_over_ipv6(&self) -> bool {
        self.next_hop_v4.is_none() && self.ctx.extended_next_hop_send
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

    /// Desired routes the last [`AdjRibOut::set_desired`] (or, of the prefixes it was given,
    /// [`AdjRibOut::apply`]) could not send (family not negotiated, no next hop of the family, or
    /// attributes too large for one message).
    pub fn unsendable(&self) -> usize {
        self.unsendable
    }

    fn sendable(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(_) => {
                (self.next_hop_v4.is_some()
                    || (self.ipv4_over_ipv6() && self.v6_next_hop().is_some()))
                    && self.ctx.supports(Family::Ipv4Unicast)
            }
            IpNet::V6(_) => self.v6_next_hop().is_some() && self.ctx.supports(Family::Ipv6Unicast),
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
        let groups = groups
            .into_iter()
            .map(|(attrs, prefixes)| (Arc::new(attrs.clone()), prefixes))
            .collect();
        self.emit(&withdraw_v4, &withdraw_v6, groups, unsendable)
    }

    /// Brings the peer's routes for `prefixes` to what `desired` has for them (absent: withdrawn),
    /// leaving every other prefix alone: returns the UPDATEs (withdrawals first) and records them
    /// as sent. Prefixes with equal attributes share UPDATEs as in [`AdjRibOut::set_desired`], and
    /// the sent table shares `desired`'s `Arc`s. The cost follows `prefixes`, not the table.
    pub fn apply<'a>(
        &mut self,
        desired: &BTreeMap<IpNet, Arc<Attributes>>,
        prefixes: impl IntoIterator<Item = &'a IpNet>,
    ) -> Vec<Message> {
        let mut withdraw_v4: Vec<Ipv4Net> = Vec::new();
        let mut withdraw_v6: Vec<IpNet> = Vec::new();
        let mut unsendable = 0;
        let mut groups: BTreeMap<&Attributes, (&Arc<Attributes>, Vec<IpNet>)> = BTreeMap::new();
        for prefix in prefixes {
            let want = desired.get(prefix).filter(|_| {
                let sendable = self.sendable(prefix);
                unsendable += usize::from(!sendable);
                sendable
            });
            match want {
                None => {
                    if self.sent.remove(prefix).is_some() {
                        match prefix {
                            IpNet::V4(p) => withdraw_v4.push(*p),
                            IpNet::V6(_) => withdraw_v6.push(*prefix),
                        }
                    }
                }
                Some(attrs) if self.sent.get(prefix).is_some_and(|a| a == attrs) => {}
                Some(attrs) => groups
                    .entry(attrs)
                    .or_insert((attrs, Vec::new()))
                    .1
                    .push(*prefix),
            }
        }
        let groups = groups
            .into_values()
            .map(|(attrs, mut prefixes)| {
                // Sorted, IPv4 before IPv6, as packing wants them.
                prefixes.sort_unstable();
                (Arc::clone(attrs), prefixes)
            })
            .collect();
        self.emit(&withdraw_v4, &withdraw_v6, groups, unsendable)
    }

    /// The UPDATEs for these withdrawals and announcement groups, recording the announcements
    /// that could be packed as sent; `unsendable` more than those that could not.
    fn emit(
        &mut self,
        withdraw_v4: &[Ipv4Net],
        withdraw_v6: &[IpNet],
        groups: Vec<(Arc<Attributes>, Vec<IpNet>)>,
        mut unsendable: usize,
    ) -> Vec<Message> {
        let mut out = Vec::new();
        self.pack_withdrawals(withdraw_v4, withdraw_v6, &mut out);
        for (shared, prefixes) in groups {
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
        let asns = self.as_path(attrs);
        // RFC 6793 §4.2.2: toward an OLD speaker, an AS that does not fit in two octets goes as
        // AS_TRANS in AS_PATH (the encoder writes it so), and the real path in AS4_PATH.
        let as4_path = (!ctx.four_octet_as && asns.iter().any(|a| *a > u32::from(u16::MAX)))
            .then(|| AsPath::sequence(asns.clone()));
        let as_path = AsPath::sequence(asns);
        let in_mp = match family {
            Family::Ipv4Unicast => self.ipv4_over_ipv6(),
            Family::Ipv6Unicast => true,
        };
        let mp_reach = match self.v6_next_hop() {
            Some((global, link_local)) if in_mp => Some(MpReach {
                family,
                next_hop: IpAddr::V6(global),
                link_local_next_hop: link_local,
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

    /// The AS_PATH of a route we originate with `attrs`, as one AS_SEQUENCE: on eBGP the AS the
    /// session presents, then our real AS when it presents another without replace-as (RFC 7705);
    /// nothing on iBGP; then the route's prepending.
    pub fn as_path(&self, attrs: &Attributes) -> Vec<u32> {
        let ctx = &self.ctx;
        let mut asns = Vec::new();
        if !ctx.ibgp {
            asns.push(ctx.local_asn);
            asns.extend(ctx.real_asn);
        }
        if let Some(p) = attrs.as_path_prepend {
            asns.extend(std::iter::repeat_n(p.asn, usize::from(p.count)));
        }
        asns
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
        if self.ipv4_over_ipv6() {
            // As FRR withdraws what it announced in MP_REACH_NLRI: in MP_UNREACH_NLRI.
            let v4: Vec<IpNet> = v4.iter().map(|p| IpNet::V4(*p)).collect();
            self.pack_mp_withdrawals(Family::Ipv4Unicast, &v4, out);
        } else {
            let room = self.nlri_room(0);
            for chunk in chunks(v4, room, |p| prefix_wire_len(p.prefix_len())) {
                out.push(Message::Update(Update {
                    withdrawn: chunk.to_vec(),
                    ..Update::default()
                }));
            }
        }
        self.pack_mp_withdrawals(Family::Ipv6Unicast, v6, out);
    }

    fn pack_mp_withdrawals(&self, family: Family, prefixes: &[IpNet], out: &mut Vec<Message>) {
        // MP_UNREACH_NLRI with no prefixes, counted with the 2-octet length it gets once it
        // holds more than 255 octets: flags, type, length (2), AFI, SAFI.
        let room = self.nlri_room(7);
        for chunk in chunks(prefixes, room, |p| prefix_wire_len(p.prefix_len())) {
            out.push(Message::Update(Update {
                attributes: PathAttributes {
                    mp_unreach: Some(MpUnreach {
                        family,
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
            if !self.pack_family(attrs, Family::Ipv4Unicast, v4, out) {
                return packed;
            }
            packed += v4.len();
        }
        if !v6.is_empty() && self.pack_family(attrs, Family::Ipv6Unicast, v6, out) {
            packed += v6.len();
        }
        packed
    }

    /// Append the UPDATEs announcing `prefixes`, all of `family`, with `attrs`: in the classic
    /// NLRI field with NEXT_HOP, or in MP_REACH_NLRI when the family's attributes carry one.
    /// Returns false when they cannot be packed (no room beside the attributes).
    fn pack_family(
        &self,
        attrs: &Attributes,
        family: Family,
        prefixes: &[IpNet],
        out: &mut Vec<Message>,
    ) -> bool {
        let base = self.path_attributes(attrs, family);
        let in_mp = base.mp_reach.is_some();
        if family == Family::Ipv6Unicast && !in_mp {
            return false;
        }
        // +1: MP_REACH_NLRI takes the 2-octet length once its NLRI push it past 255.
        let Some(alen) = self.attribute_len(&base).map(|l| l + usize::from(in_mp)) else {
            return false;
        };
        let room = self.nlri_room(alen);
        let widest = match family {
            Family::Ipv4Unicast => 5,
            Family::Ipv6Unicast => 17,
        };
        if room < widest {
            return false;
        }
        for chunk in chunks(prefixes, room, |p| prefix_wire_len(p.prefix_len())) {
            let mut attributes = base.clone();
            let mut nlri = Vec::new();
            match attributes.mp_reach.as_mut() {
                Some(mp) => mp.nlri = chunk.to_vec(),
                None => {
                    nlri = chunk
                        .iter()
                        .filter_map(|p| match p {
                            IpNet::V4(p) => Some(*p),
                            IpNet::V6(_) => None,
                        })
                        .collect();
                }
            }
            out.push(Message::Update(Update {
                attributes,
                nlri,
                ..Update::default()
            }));
        }
        true
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
    let mut rest = items;
    while !rest.is_empty() {
        // The longest non-empty run from the front whose cost fits `room`.
        let mut used = 0;
        let take = rest
            .iter()
            .position(|item| {
                used += cost(item);
                used > room
            })
            .unwrap_or(rest.len())
            .max(1);
        let (run, tail) = rest.split_at(take.min(rest.len()));
        out.push(run);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests;
