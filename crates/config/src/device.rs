//! Network device names (`interface` and `vrf` of a peer): a Linux interface name, held inline so
//! keys that carry one stay `Copy`.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest Linux interface name, in bytes (`IFNAMSIZ` less the NUL).
pub const MAX_DEVICE_NAME_LEN: usize = 15;

/// A Linux network device name: 1 to 15 bytes, not `.` or `..`, without `/`, `:`, whitespace or
/// NUL (what `dev_valid_name` in the kernel accepts, less `:`, which marks an alias).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceName {
    len: u8,
    bytes: [u8; MAX_DEVICE_NAME_LEN],
}

/// Why a text is not a device name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid interface name {0:?}: 1 to 15 bytes, not . or .., without /, :, whitespace or NUL"
)]
pub struct DeviceNameError(pub String);

impl DeviceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        // Built from a `&str` whose bytes were copied whole: always UTF-8.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl FromStr for DeviceName {
    type Err = DeviceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = s.is_empty()
            || s.len() > MAX_DEVICE_NAME_LEN
            || s == "."
            || s == ".."
            || s.chars()
                .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace());
        if bad {
            return Err(DeviceNameError(s.to_owned()));
        }
        let mut bytes = [0u8; MAX_DEVICE_NAME_LEN];
        bytes
            .get_mut(..s.len())
            .ok_or_else(|| DeviceNameError(s.to_owned()))?
            .copy_from_slice(s.as_bytes());
        Ok(DeviceName {
            len: u8::try_from(s.len()).map_err(|_| DeviceNameError(s.to_owned()))?,
            bytes,
        })
    }
}

impl Ord for DeviceName {
    /// By name.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for DeviceName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for DeviceName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_names() {
        for ok in [
            "eth1",
            "swp1s0",
            "vrf-blue",
            "a",
            "enp0s31f6.100",
            "x23456789012345",
        ] {
            assert_eq!(ok.parse::<DeviceName>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            "eth 1",
            "eth1:0",
            "a/b",
            "x234567890123456",
            "a\0b",
        ] {
            assert_eq!(
                bad.parse::<DeviceName>(),
                Err(DeviceNameError(bad.to_owned())),
                "{bad:?}"
            );
        }
        let n: DeviceName = "eth1".parse().unwrap();
        assert_eq!(format!("{n} {n:?}"), "eth1 \"eth1\"");
    }
}
