//! Address families, and the mapping between addresses and the dense index space the free-run sets work in.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// Position of the family in per-family arrays.
    pub(crate) fn slot(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as an integer within its family.
pub(crate) fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address with the given integer value in a family. IPv4 values above `u32::MAX` are truncated, which the
/// callers never produce (every IPv4 value they hold came from an IPv4 address).
pub(crate) fn from_bits(family: Family, bits: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// How a pool numbers its usable addresses of one family.
///
/// Free space is kept as runs of consecutive *indexes*. With `avoid-buggy-ips`, IPv4 addresses ending in `.0` or
/// `.255` are not numbered at all: index `i` is address `(i / 254) << 8 | (i % 254 + 1)`. The mapping is strictly
/// increasing, so the lowest free index is the lowest free address, and no address needs storage of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// Every address is usable: index = address.
    Dense,
    /// IPv4 addresses ending in `.0` or `.255` are skipped.
    SkipBuggyV4,
}

impl Numbering {
    /// The numbering a pool uses for a family.
    pub(crate) fn for_pool(family: Family, avoid_buggy_ips: bool) -> Numbering {
        if avoid_buggy_ips && family == Family::V4 {
            Numbering::SkipBuggyV4
        } else {
            Numbering::Dense
        }
    }

    /// The index of an address, or `None` when the numbering skips it.
    pub(crate) fn index(self, bits: u128) -> Option<u128> {
        match self {
            Numbering::Dense => Some(bits),
            Numbering::SkipBuggyV4 => {
                let low = bits & 0xff;
                if low == 0 || low == 0xff {
                    None
                } else {
                    Some((bits >> 8) * 254 + low - 1)
                }
            }
        }
    }

    /// The address of an index.
    pub(crate) fn address(self, index: u128) -> u128 {
        match self {
            Numbering::Dense => index,
            Numbering::SkipBuggyV4 => ((index / 254) << 8) | (index % 254 + 1),
        }
    }

    /// The indexes of the usable addresses in `first..=last`, or `None` when there are none.
    pub(crate) fn index_range(self, first: u128, last: u128) -> Option<(u128, u128)> {
        if first > last {
            return None;
        }
        match self {
            Numbering::Dense => Some((first, last)),
            Numbering::SkipBuggyV4 => {
                // Lowest usable address >= first.
                let up = match first & 0xff {
                    0 => first.checked_add(1)?,
                    0xff => first.checked_add(2)?,
                    _ => first,
                };
                // Highest usable address <= last.
                let down = match last & 0xff {
                    0xff => last.checked_sub(1)?,
                    0 => last.checked_sub(2)?,
                    _ => last,
                };
                if up > down {
                    return None;
                }
                Some((self.index(up)?, self.index(down)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        to_bits(s.parse().unwrap())
    }

    #[test]
    fn skip_buggy_numbering_round_trips_and_skips_dot_zero_and_dot_255() {
        let n = Numbering::SkipBuggyV4;
        assert_eq!(n.index(v4("203.0.113.0")), None);
        assert_eq!(n.index(v4("203.0.113.255")), None);
        let a = n.index(v4("203.0.113.254")).unwrap();
        let b = n.index(v4("203.0.114.1")).unwrap();
        assert_eq!(b, a + 1, ".254 and the next /24's .1 are neighbours");
        assert_eq!(n.address(b), v4("203.0.114.1"));
        assert_eq!(n.address(a), v4("203.0.113.254"));
    }

    #[test]
    fn skip_buggy_index_range_trims_the_ends() {
        let n = Numbering::SkipBuggyV4;
        let (lo, hi) = n
            .index_range(v4("203.0.113.0"), v4("203.0.113.255"))
            .unwrap();
        assert_eq!(hi - lo + 1, 254);
        assert_eq!(n.address(lo), v4("203.0.113.1"));
        assert_eq!(n.address(hi), v4("203.0.113.254"));
        assert_eq!(n.index_range(v4("203.0.113.255"), v4("203.0.114.0")), None);
        let (lo, hi) = n
            .index_range(v4("198.51.100.255"), v4("198.51.101.1"))
            .unwrap();
        assert_eq!(
            (n.address(lo), n.address(hi)),
            (v4("198.51.101.1"), v4("198.51.101.1"))
        );
        assert_eq!(n.index_range(0, 0), None);
        assert_eq!(n.index_range(0xffff_ffff, 0xffff_ffff), None);
    }

    #[test]
    fn dense_numbering_is_identity() {
        let n = Numbering::Dense;
        assert_eq!(n.index(v4("203.0.113.0")), Some(v4("203.0.113.0")));
        assert_eq!(n.index_range(5, 4), None);
        assert_eq!(n.index_range(0, u128::MAX), Some((0, u128::MAX)));
    }
}
