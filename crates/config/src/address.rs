//! Address entries of a pool: a CIDR (`203.0.113.0/28`) or a range (`203.0.113.10-203.0.113.20`).

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One entry of a pool's `addresses`, kept the way it was written (a CIDR stays a CIDR, a range
/// stays a range; ranges are never summarised into CIDRs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressRange {
    /// `network/prefix_len`, with no host bits set.
    Cidr {
        /// The network address.
        network: IpAddr,
        /// The prefix length (≤ 32 for IPv4, ≤ 128 for IPv6).
        prefix_len: u8,
    },
    /// `start-end`, both ends included, same family, `start <= end`.
    Range {
        /// The first address.
        start: IpAddr,
        /// The last address.
        end: IpAddr,
    },
}

/// Why an address entry did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `ip/len`, or the address or length is malformed.
    #[error("invalid CIDR {0:?}")]
    BadCidr(String),
    /// A CIDR whose address has bits set past the prefix.
    #[error("CIDR {written} has host bits set (did you mean {network}?)")]
    HostBits {
        /// The entry as written.
        written: String,
        /// The network it probably means.
        network: String,
    },
    /// One end of a range is not an IP address.
    #[error("invalid IP range {range:?}: {end:?} is not an IP address")]
    BadRangeEnd {
        /// The entry as written.
        range: String,
        /// The end that failed.
        end: String,
    },
    /// A range whose start is after its end.
    #[error("range start {start} is after end {end}")]
    StartAfterEnd {
        /// The start.
        start: IpAddr,
        /// The end.
        end: IpAddr,
    },
    /// A range with one IPv4 and one IPv6 end.
    #[error("range {start}-{end} mixes IPv4 and IPv6")]
    MixedFamily {
        /// The start.
        start: IpAddr,
        /// The end.
        end: IpAddr,
    },
}

/// An address as a number, with its family's width in bits (32 or 128).
pub(crate) fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        // Callers only pass values that came from an IPv4 address, so this cannot truncate.
        IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// The mask of the host part of a `prefix_len` prefix in a `width`-bit family.
fn host_mask(width: u8, prefix_len: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(prefix_len));
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

impl AddressRange {
    /// The first address.
    pub fn first(&self) -> IpAddr {
        match *self {
            AddressRange::Cidr { network, .. } => network,
            AddressRange::Range { start, .. } => start,
        }
    }

    /// The last address.
    pub fn last(&self) -> IpAddr {
        match *self {
            AddressRange::Cidr {
                network,
                prefix_len,
            } => from_bits(
                to_bits(network) | host_mask(width(network), prefix_len),
                network.is_ipv4(),
            ),
            AddressRange::Range { end, .. } => end,
        }
    }

    /// True for an IPv4 entry.
    pub fn is_ipv4(&self) -> bool {
        self.first().is_ipv4()
    }

    /// True when `ip` is in this entry (an address of the other family never is).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4()
            && to_bits(self.first()) <= to_bits(ip)
            && to_bits(ip) <= to_bits(self.last())
    }

    /// How many addresses, saturating at `u128::MAX` (only `::/0` is that big).
    pub fn len(&self) -> u128 {
        (to_bits(self.last()) - to_bits(self.first())).saturating_add(1)
    }

    /// Always false: an entry holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The smallest set of CIDRs covering exactly this entry, in address order, as
    /// `(network, prefix_len)`. A CIDR entry gives itself.
    pub fn cidrs(&self) -> Vec<(IpAddr, u8)> {
        let v4 = self.is_ipv4();
        let w = width(self.first());
        let mut out = Vec::new();
        let mut cur = to_bits(self.first());
        let last = to_bits(self.last());
        loop {
            // The largest block aligned at `cur` that does not pass `last`.
            let align = if cur == 0 {
                u32::from(w)
            } else {
                cur.trailing_zeros().min(u32::from(w))
            };
            let mut host_bits = align;
            while host_bits > 0 {
                let size_minus_one = if host_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                if cur
                    .checked_add(size_minus_one)
                    .is_some_and(|end| end <= last)
                {
                    break;
                }
                host_bits -= 1;
            }
            let prefix_len = w - u8::try_from(host_bits).unwrap_or(w);
            out.push((from_bits(cur, v4), prefix_len));
            let block_end = cur | host_mask(w, prefix_len);
            if block_end >= last {
                break;
            }
            cur = block_end + 1;
        }
        out
    }

    /// The shortest prefix length among [`Self::cidrs`]: an aggregation length must not be
    /// shorter than this.
    pub fn shortest_prefix_len(&self) -> u8 {
        match *self {
            AddressRange::Cidr { prefix_len, .. } => prefix_len,
            AddressRange::Range { .. } => self
                .cidrs()
                .iter()
                .map(|&(_, len)| len)
                .min()
                .unwrap_or(width(self.first())),
        }
    }
}

impl FromStr for AddressRange {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((a, b)) = s.split_once('-') {
            let parse = |end: &str| {
                end.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| AddressError::BadRangeEnd {
                        range: s.to_string(),
                        end: end.trim().to_string(),
                    })
            };
            let (start, end) = (parse(a)?, parse(b)?);
            if start.is_ipv4() != end.is_ipv4() {
                return Err(AddressError::MixedFamily { start, end });
            }
            if to_bits(start) > to_bits(end) {
                return Err(AddressError::StartAfterEnd { start, end });
            }
            return Ok(AddressRange::Range { start, end });
        }
        let bad = || AddressError::BadCidr(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix_len: u8 = len.parse().map_err(|_| bad())?;
        let w = width(network);
        if prefix_len > w {
            return Err(bad());
        }
        let bits = to_bits(network);
        let mask = host_mask(w, prefix_len);
        if bits & mask != 0 {
            return Err(AddressError::HostBits {
                written: s.to_string(),
                network: format!(
                    "{}/{prefix_len}",
                    from_bits(bits & !mask, network.is_ipv4())
                ),
            });
        }
        Ok(AddressRange::Cidr {
            network,
            prefix_len,
        })
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressRange::Cidr {
                network,
                prefix_len,
            } => write!(f, "{network}/{prefix_len}"),
            AddressRange::Range { start, end } => write!(f, "{start}-{end}"),
        }
    }
}

impl Serialize for AddressRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AddressRange {
        s.parse().unwrap()
    }

    #[test]
    fn range_first_last_len_contains() {
        let a = r("1.2.3.4-1.2.3.8");
        assert_eq!(a.first(), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(a.last(), "1.2.3.8".parse::<IpAddr>().unwrap());
        assert_eq!(a.len(), 5);
        assert!(a.contains("1.2.3.8".parse().unwrap()));
        assert!(!a.contains("1.2.3.9".parse().unwrap()));
        assert!(!a.contains("::1".parse().unwrap()));
        assert_eq!(a.to_string(), "1.2.3.4-1.2.3.8");
    }

    #[test]
    fn cidr_last_and_len() {
        let a = r("203.0.113.0/28");
        assert_eq!(a.last(), "203.0.113.15".parse::<IpAddr>().unwrap());
        assert_eq!(a.len(), 16);
        let b = r("2001:db8::/64");
        assert_eq!(b.len(), 1u128 << 64);
        assert_eq!(
            b.last(),
            "2001:db8::ffff:ffff:ffff:ffff".parse::<IpAddr>().unwrap()
        );
        assert_eq!(r("0.0.0.0/0").len(), 1u128 << 32);
        assert_eq!(r("::/0").len(), u128::MAX);
    }

    #[test]
    fn range_with_spaces_is_accepted() {
        assert_eq!(
            r(" 203.0.113.1 - 203.0.113.2 ").to_string(),
            "203.0.113.1-203.0.113.2"
        );
    }

    #[test]
    fn range_decomposes_into_minimal_cidrs() {
        let got: Vec<String> = r("1.2.3.4-1.2.3.8")
            .cidrs()
            .iter()
            .map(|(n, l)| format!("{n}/{l}"))
            .collect();
        assert_eq!(got, ["1.2.3.4/30", "1.2.3.8/32"]);
        assert_eq!(r("1.2.3.4-1.2.3.8").shortest_prefix_len(), 30);
        assert_eq!(
            r("0.0.0.0-255.255.255.255").cidrs(),
            [(r("0.0.0.0/0").first(), 0)]
        );
        assert_eq!(
            r("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").shortest_prefix_len(),
            0
        );
        assert_eq!(r("2001:db8::1-2001:db8::1").cidrs().len(), 1);
    }

    #[test]
    fn bad_entries_say_why() {
        let e = |s: &str| s.parse::<AddressRange>().unwrap_err().to_string();
        assert_eq!(
            e("203.0.113.9-203.0.113.4"),
            "range start 203.0.113.9 is after end 203.0.113.4"
        );
        assert_eq!(
            e("203.0.113.5/24"),
            "CIDR 203.0.113.5/24 has host bits set (did you mean 203.0.113.0/24?)"
        );
        assert_eq!(e("203.0.113.0/33"), "invalid CIDR \"203.0.113.0/33\"");
        assert_eq!(e("203.0.113.0/+3"), "invalid CIDR \"203.0.113.0/+3\"");
        assert_eq!(e("203.0.113.0"), "invalid CIDR \"203.0.113.0\"");
        assert_eq!(
            e("203.0.113.1-2001:db8::1"),
            "range 203.0.113.1-2001:db8::1 mixes IPv4 and IPv6"
        );
        assert_eq!(
            e("203.0.113.1-x"),
            "invalid IP range \"203.0.113.1-x\": \"x\" is not an IP address"
        );
    }
}
