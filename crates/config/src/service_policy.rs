//! The ferrolb extensions of a `bgp-advertisements` entry: weighted ECMP (`weighted-ecmp`,
//! `link-bandwidth-per-endpoint`) and what a Service may set by annotation
//! (`allowed-service-communities`, `allowed-service-localprefs`).

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A bandwidth in bits per second, written with a unit: `125000bps`, `100kbps`, `1Mbps`, `10Gbps`
/// (decimal units, as routers display link bandwidth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bandwidth(u64);

/// The bandwidth each ready endpoint is worth when none is configured: 1 Mbps (125000 bytes/s).
pub const DEFAULT_BANDWIDTH_PER_ENDPOINT: Bandwidth = Bandwidth(1_000_000);

/// The largest bandwidth per endpoint accepted: 1 Tbps.
pub const MAX_BANDWIDTH_PER_ENDPOINT: Bandwidth = Bandwidth(1_000_000_000_000);

const UNITS: [(&str, u64); 5] = [
    ("Gbps", 1_000_000_000),
    ("Mbps", 1_000_000),
    ("kbps", 1_000),
    ("Kbps", 1_000),
    ("bps", 1),
];

impl Bandwidth {
    /// A bandwidth of `bits` per second.
    pub const fn from_bits_per_second(bits: u64) -> Self {
        Bandwidth(bits)
    }

    /// Bits per second.
    pub const fn bits_per_second(self) -> u64 {
        self.0
    }

    /// Bytes per second, the unit of the link-bandwidth extended community.
    pub fn bytes_per_second(self) -> f64 {
        self.0 as f64 / 8.0
    }
}

/// Why a bandwidth did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BandwidthError {
    /// Not `<integer><unit>`.
    #[error(
        "invalid bandwidth {0:?}: expected a whole number and a unit, e.g. 1Mbps (units: bps, kbps, Mbps, Gbps)"
    )]
    Malformed(String),
    /// Zero, or above the maximum.
    #[error("bandwidth {0:?} is out of range (1bps to 1000Gbps)")]
    OutOfRange(String),
}

impl FromStr for Bandwidth {
    type Err = BandwidthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || BandwidthError::Malformed(text.to_string());
        let (number, scale) = UNITS
            .iter()
            .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
            .ok_or_else(malformed)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let out_of_range = || BandwidthError::OutOfRange(text.to_string());
        let bits = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(out_of_range)?;
        if bits == 0 || bits > MAX_BANDWIDTH_PER_ENDPOINT.0 {
            return Err(out_of_range());
        }
        Ok(Bandwidth(bits))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, scale) = UNITS
            .iter()
            .filter(|(u, _)| *u != "Kbps")
            .find(|(_, scale)| self.0.is_multiple_of(*scale))
            .copied()
            .unwrap_or(("bps", 1));
        write!(f, "{}{unit}", self.0 / scale)
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// LOCAL_PREF values a Service may ask for: one value (`200`) or an inclusive range (`100-300`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPrefRange {
    /// The lowest value allowed.
    pub first: u32,
    /// The highest value allowed (equal to `first` for a single value).
    pub last: u32,
}

impl LocalPrefRange {
    /// Whether `value` is allowed.
    pub fn contains(&self, value: u32) -> bool {
        self.first <= value && value <= self.last
    }
}

/// Why a LOCAL_PREF allowance did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalPrefRangeError {
    /// Not `n` or `n-m` with numbers from 0 to 4294967295.
    #[error(
        "invalid local preference allowance {0:?}: expected a number or a range like 100-300 (0 to 4294967295)"
    )]
    Malformed(String),
    /// A range whose start is after its end.
    #[error("local preference range {0:?} starts after it ends")]
    Reversed(String),
}

impl FromStr for LocalPrefRange {
    type Err = LocalPrefRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
                .ok_or_else(|| LocalPrefRangeError::Malformed(text.to_string()))
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let v = number(text)?;
                (v, v)
            }
        };
        if first > last {
            return Err(LocalPrefRangeError::Reversed(text.to_string()));
        }
        Ok(LocalPrefRange { first, last })
    }
}

impl fmt::Display for LocalPrefRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl Serialize for LocalPrefRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_parse_in_decimal_bits_and_print_in_the_largest_exact_unit() {
        let b = |s: &str| s.parse::<Bandwidth>().unwrap();
        assert_eq!(b("1Mbps").bits_per_second(), 1_000_000);
        assert_eq!(b("1Mbps").bytes_per_second(), 125_000.0);
        assert_eq!(b("100kbps"), b("100Kbps"));
        assert_eq!(b("10Gbps").bits_per_second(), 10_000_000_000);
        assert_eq!(b("1500000bps").to_string(), "1500kbps");
        assert_eq!(b("1000Gbps").to_string(), "1000Gbps");
        assert_eq!(b("7bps").to_string(), "7bps");
        assert_eq!(DEFAULT_BANDWIDTH_PER_ENDPOINT.to_string(), "1Mbps");
    }

    #[test]
    fn bad_bandwidths_say_why() {
        let e = |s: &str| s.parse::<Bandwidth>().unwrap_err();
        assert_eq!(e("1"), BandwidthError::Malformed("1".into()));
        assert_eq!(e("1.5Mbps"), BandwidthError::Malformed("1.5Mbps".into()));
        assert_eq!(e("Mbps"), BandwidthError::Malformed("Mbps".into()));
        assert_eq!(e("1 Mbps"), BandwidthError::Malformed("1 Mbps".into()));
        assert_eq!(e("1MBps"), BandwidthError::Malformed("1MBps".into()));
        assert_eq!(e("0bps"), BandwidthError::OutOfRange("0bps".into()));
        assert_eq!(e("1001Gbps"), BandwidthError::OutOfRange("1001Gbps".into()));
        assert_eq!(
            e("99999999999999999999Gbps"),
            BandwidthError::OutOfRange("99999999999999999999Gbps".into())
        );
    }

    #[test]
    fn local_pref_allowances_are_values_or_ranges() {
        let r = |s: &str| s.parse::<LocalPrefRange>();
        assert_eq!(
            r("200"),
            Ok(LocalPrefRange {
                first: 200,
                last: 200
            })
        );
        assert_eq!(
            r("100-300"),
            Ok(LocalPrefRange {
                first: 100,
                last: 300
            })
        );
        assert_eq!(r("100-300").unwrap().to_string(), "100-300");
        assert_eq!(r("7").unwrap().to_string(), "7");
        assert!(r("100-300").unwrap().contains(300));
        assert!(!r("100-300").unwrap().contains(301));
        assert_eq!(
            r("300-100"),
            Err(LocalPrefRangeError::Reversed("300-100".into()))
        );
        assert_eq!(r("-1"), Err(LocalPrefRangeError::Malformed("-1".into())));
        assert_eq!(
            r("4294967296"),
            Err(LocalPrefRangeError::Malformed("4294967296".into()))
        );
        assert_eq!(
            r("high"),
            Err(LocalPrefRangeError::Malformed("high".into()))
        );
    }
}
