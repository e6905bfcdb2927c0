//! AS_PATH prepending (a ferrolb extension): an advertisement's `as-path-prepend`, what a Service may ask
//! for with its `ferrolb.io/bgp-as-path-prepend` annotation (`ASN:COUNT`), and the pool's
//! `allowed-service-as-path-prepends` that bound it.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The largest number of copies of an AS a route may be prepended with.
pub const MAX_PREPEND_COUNT: u8 = 10;

/// `count` copies of `asn` added to a route's AS_PATH after the AS the session presents, to make
/// the path less preferred (routers prefer the shorter AS_PATH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AsPathPrepend {
    /// The AS repeated (1 to 4294967295; normally the speaker's own `my-asn`: a router drops a path
    /// holding its own AS).
    pub asn: u32,
    /// How many copies, 1 to [`MAX_PREPEND_COUNT`].
    pub count: u8,
}

/// Why an `ASN:COUNT` text is not an [`AsPathPrepend`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsPathPrependError {
    /// Not two whole numbers separated by a colon.
    #[error("{0:?} is not ASN:COUNT (an AS number, then a count of 1 to 10), e.g. 65000:3")]
    Malformed(String),
    /// An AS of 0, or one above 4294967295.
    #[error("{0:?}: the AS must be 1 to 4294967295")]
    AsnOutOfRange(String),
    /// A count of 0 or more than 10.
    #[error("{0:?}: the count must be 1 to 10")]
    CountOutOfRange(String),
}

/// A whole decimal number (digits only), or None.
fn digits(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(t.parse::<u64>().unwrap_or(u64::MAX))
}

impl AsPathPrepend {
    /// The prepend of `asn` `count` times, when both are in range.
    pub fn new(asn: u64, count: u64) -> Result<AsPathPrepend, AsPathPrependError> {
        let text = || format!("{asn}:{count}");
        let asn = u32::try_from(asn)
            .ok()
            .filter(|a| *a != 0)
            .ok_or_else(|| AsPathPrependError::AsnOutOfRange(text()))?;
        let count = u8::try_from(count)
            .ok()
            .filter(|c| (1..=MAX_PREPEND_COUNT).contains(c))
            .ok_or_else(|| AsPathPrependError::CountOutOfRange(text()))?;
        Ok(AsPathPrepend { asn, count })
    }
}

impl FromStr for AsPathPrepend {
    type Err = AsPathPrependError;

    /// `ASN:COUNT`, e.g. `65000:3` (spaces around either number are allowed).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || AsPathPrependError::Malformed(text.to_string());
        let (asn, count) = text.split_once(':').ok_or_else(malformed)?;
        let (asn, count) = (
            digits(asn).ok_or_else(malformed)?,
            digits(count).ok_or_else(malformed)?,
        );
        AsPathPrepend::new(asn, count).map_err(|e| match e {
            AsPathPrependError::AsnOutOfRange(_) => AsPathPrependError::AsnOutOfRange(text.into()),
            AsPathPrependError::CountOutOfRange(_) => {
                AsPathPrependError::CountOutOfRange(text.into())
            }
            other => other,
        })
    }
}

impl fmt::Display for AsPathPrepend {
    /// `ASN:COUNT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn, self.count)
    }
}

/// One `allowed-service-as-path-prepends` entry: a Service may prepend `asn` up to `max-count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AsPathPrependAllowance {
    /// The AS a Service may prepend.
    pub asn: u32,
    /// The most copies it may ask for (1 to [`MAX_PREPEND_COUNT`]).
    pub max_count: u8,
}

impl AsPathPrependAllowance {
    /// Whether a Service may ask for `prepend`.
    pub fn allows(&self, prepend: AsPathPrepend) -> bool {
        prepend.asn == self.asn && prepend.count <= self.max_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepends_read_as_asn_colon_count_and_print_back() {
        let p = |s: &str| s.parse::<AsPathPrepend>();
        assert_eq!(
            p("65000:3"),
            Ok(AsPathPrepend {
                asn: 65000,
                count: 3
            })
        );
        assert_eq!(
            p(" 4200000001 : 10 "),
            Ok(AsPathPrepend {
                asn: 4_200_000_001,
                count: 10
            })
        );
        assert_eq!(p("65000:3").unwrap().to_string(), "65000:3");
    }

    #[test]
    fn bad_prepends_say_which_part_is_wrong() {
        let e = |s: &str| s.parse::<AsPathPrepend>().unwrap_err();
        let malformed = |s: &str| AsPathPrependError::Malformed(s.into());
        for bad in [
            "65000",
            "65000:",
            ":3",
            "x:3",
            "65000:-1",
            "65000:3:1",
            "1.5:2",
        ] {
            assert_eq!(e(bad), malformed(bad), "{bad}");
        }
        assert_eq!(e("0:3"), AsPathPrependError::AsnOutOfRange("0:3".into()));
        assert_eq!(
            e("4294967296:3"),
            AsPathPrependError::AsnOutOfRange("4294967296:3".into())
        );
        assert_eq!(
            e("65000:0"),
            AsPathPrependError::CountOutOfRange("65000:0".into())
        );
        assert_eq!(
            e("65000:11"),
            AsPathPrependError::CountOutOfRange("65000:11".into())
        );
        assert_eq!(
            e("65000:99999999999999999999"),
            AsPathPrependError::CountOutOfRange("65000:99999999999999999999".into())
        );
        assert_eq!(
            e("65000:11").to_string(),
            "\"65000:11\": the count must be 1 to 10"
        );
    }

    #[test]
    fn an_allowance_bounds_the_as_and_the_count() {
        let a = AsPathPrependAllowance {
            asn: 65000,
            max_count: 3,
        };
        let p = |asn, count| AsPathPrepend { asn, count };
        assert!(a.allows(p(65000, 1)));
        assert!(a.allows(p(65000, 3)));
        assert!(!a.allows(p(65000, 4)));
        assert!(!a.allows(p(65001, 1)));
    }
}
