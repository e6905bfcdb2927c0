//! BGP communities: standard `a:b` (RFC 1997, 16:16 bits) and large `a:b:c` or `large:a:b:c`
//! (RFC 8092, 32:32:32 bits).

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A community value, as advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommunityValue {
    /// A standard community: `(high, low)`, written `high:low`.
    Standard(u16, u16),
    /// A large community: `(global administrator, local data 1, local data 2)`, written
    /// `large:a:b:c` (MetalLB's newer form) or `a:b:c`.
    Large(u32, u32, u32),
}

impl CommunityValue {
    /// The standard community as the 32-bit value carried in the COMMUNITIES attribute.
    pub fn standard_bits(&self) -> Option<u32> {
        match *self {
            CommunityValue::Standard(hi, lo) => Some((u32::from(hi) << 16) | u32::from(lo)),
            CommunityValue::Large(..) => None,
        }
    }
}

/// Why a community did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// Neither `a:b`, `a:b:c` nor `large:a:b:c`.
    #[error(
        "invalid community {0:?}: expected a:b (16-bit numbers), a:b:c or large:a:b:c (32-bit numbers), or a bgp-communities alias"
    )]
    Malformed(String),
    /// A part that is not a number or too large.
    #[error("invalid community {text:?}: {part:?} is not a number from 0 to {max}")]
    BadPart {
        /// The community as written.
        text: String,
        /// The failing part.
        part: String,
        /// The largest value for this kind of community.
        max: u32,
    },
}

impl FromStr for CommunityValue {
    type Err = CommunityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text.strip_prefix("large:");
        let parts: Vec<&str> = body.unwrap_or(text).split(':').collect();
        let part = |p: &str, max: u32| -> Result<u32, CommunityError> {
            let bad = || CommunityError::BadPart {
                text: text.to_string(),
                part: p.to_string(),
                max,
            };
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u32>().ok().filter(|v| *v <= max).ok_or_else(bad)
        };
        match (body.is_some(), parts.as_slice()) {
            (false, [a, b]) => {
                let max = u32::from(u16::MAX);
                let (a, b) = (part(a, max)?, part(b, max)?);
                Ok(CommunityValue::Standard(
                    u16::try_from(a).unwrap_or(u16::MAX),
                    u16::try_from(b).unwrap_or(u16::MAX),
                ))
            }
            (_, [a, b, c]) => Ok(CommunityValue::Large(
                part(a, u32::MAX)?,
                part(b, u32::MAX)?,
                part(c, u32::MAX)?,
            )),
            _ => Err(CommunityError::Malformed(text.to_string())),
        }
    }
}

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityValue::Standard(a, b) => write!(f, "{a}:{b}"),
            CommunityValue::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

impl Serialize for CommunityValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse() {
        assert_eq!(
            "65535:65282".parse::<CommunityValue>().unwrap(),
            CommunityValue::Standard(65535, 65282)
        );
        assert_eq!(
            "65535:65282"
                .parse::<CommunityValue>()
                .unwrap()
                .standard_bits(),
            Some(0xFFFF_FF02)
        );
        assert_eq!(
            "4200000000:1:2".parse::<CommunityValue>().unwrap(),
            CommunityValue::Large(4_200_000_000, 1, 2)
        );
        assert_eq!(
            "large:64500:1:4294967295"
                .parse::<CommunityValue>()
                .unwrap(),
            CommunityValue::Large(64500, 1, u32::MAX)
        );
        assert_eq!(CommunityValue::Large(1, 2, 3).to_string(), "large:1:2:3");
    }

    #[test]
    fn bad_forms_say_why() {
        let e = |s: &str| s.parse::<CommunityValue>().unwrap_err();
        assert_eq!(
            e("65536:1"),
            CommunityError::BadPart {
                text: "65536:1".into(),
                part: "65536".into(),
                max: 65535
            }
        );
        assert_eq!(e("1"), CommunityError::Malformed("1".into()));
        assert_eq!(
            e("large:1:2"),
            CommunityError::Malformed("large:1:2".into())
        );
        assert_eq!(e("1:2:3:4"), CommunityError::Malformed("1:2:3:4".into()));
        assert!(matches!(e("1:-2"), CommunityError::BadPart { .. }));
        assert!(matches!(
            e("4294967296:0:0"),
            CommunityError::BadPart { .. }
        ));
    }
}
