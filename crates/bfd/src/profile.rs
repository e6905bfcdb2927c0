//! BFD profiles with MetalLB's fields, defaults and ranges (`bfd-profiles` in the v0.12 ConfigMap).

use std::ops::RangeInclusive;
use std::time::Duration;

/// Accepted `receive-interval` values, milliseconds (MetalLB: 10–60000).
pub const RECEIVE_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `transmit-interval` values, milliseconds (MetalLB: 10–60000).
pub const TRANSMIT_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `detect-multiplier` values (MetalLB: 2–255).
pub const DETECT_MULTIPLIER: RangeInclusive<u32> = 2..=255;
/// Accepted `echo-interval` values, milliseconds (MetalLB: 10–60000).
pub const ECHO_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `minimum-ttl` values (MetalLB: 1–254).
pub const MINIMUM_TTL: RangeInclusive<u32> = 1..=254;

/// A BFD profile as MetalLB defines it. Field names follow the YAML keys; the defaults are
/// MetalLB's (FRR's): 300 ms / 300 ms / ×3, echo 50 ms off, active, minimum TTL 254.
///
/// `minimum-ttl` only applies to multi-hop sessions, which this crate does not implement:
/// single-hop sessions always send with TTL 255 and drop anything received below 255 (RFC 5881).
/// The value is still range-checked so that configs MetalLB rejects are rejected here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    /// `receive-interval`: the minimum interval between received packets we can accept, ms.
    pub receive_interval_ms: u32,
    /// `transmit-interval`: the minimum interval at which we want to send, ms.
    pub transmit_interval_ms: u32,
    /// `detect-multiplier`: how many remote intervals may be missed before the session goes Down.
    pub detect_multiplier: u32,
    /// `echo-interval`: the echo transmit interval, ms (echo mode is not supported).
    pub echo_interval_ms: u32,
    /// `echo-mode`: must be false; echo mode is not implemented.
    pub echo_mode: bool,
    /// `passive-mode`: wait for the remote to speak first (RFC 5880 §6.1 passive role).
    pub passive_mode: bool,
    /// `minimum-ttl`: multi-hop only; see the type's documentation.
    pub minimum_ttl: u32,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            receive_interval_ms: 300,
            transmit_interval_ms: 300,
            detect_multiplier: 3,
            echo_interval_ms: 50,
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
        }
    }
}

/// A profile value that cannot be used, naming the field as it is spelt in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A numeric field lies outside MetalLB's range.
    #[error("{field} is {value}, must be between {min} and {max}")]
    OutOfRange {
        /// The YAML key (`receive-interval`, ...).
        field: &'static str,
        /// The value given.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// `echo-mode: true` was requested.
    #[error(
        "echo-mode is not supported by ferrolb's BFD (asynchronous mode only); remove it or set it to false"
    )]
    EchoModeUnsupported,
}

/// Validated session timers in the units the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timers {
    /// bfd.DesiredMinTxInterval once the session is Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult.
    pub detect_mult: u8,
}

fn check(
    field: &'static str,
    value: u32,
    range: &RangeInclusive<u32>,
) -> Result<u32, ProfileError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ProfileError::OutOfRange {
            field,
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

impl Profile {
    /// Checks every field against MetalLB's ranges and rejects the unsupported echo mode.
    pub fn validate(&self) -> Result<(), ProfileError> {
        check(
            "receive-interval",
            self.receive_interval_ms,
            &RECEIVE_INTERVAL_MS,
        )?;
        check(
            "transmit-interval",
            self.transmit_interval_ms,
            &TRANSMIT_INTERVAL_MS,
        )?;
        check(
            "detect-multiplier",
            self.detect_multiplier,
            &DETECT_MULTIPLIER,
        )?;
        check("echo-interval", self.echo_interval_ms, &ECHO_INTERVAL_MS)?;
        check("minimum-ttl", self.minimum_ttl, &MINIMUM_TTL)?;
        if self.echo_mode {
            return Err(ProfileError::EchoModeUnsupported);
        }
        Ok(())
    }

    /// Validates and returns the protocol timers.
    pub fn timers(&self) -> Result<Timers, ProfileError> {
        self.validate()?;
        let detect_mult =
            u8::try_from(self.detect_multiplier).map_err(|_| ProfileError::OutOfRange {
                field: "detect-multiplier",
                value: self.detect_multiplier,
                min: *DETECT_MULTIPLIER.start(),
                max: *DETECT_MULTIPLIER.end(),
            })?;
        Ok(Timers {
            desired_min_tx: Duration::from_millis(u64::from(self.transmit_interval_ms)),
            required_min_rx: Duration::from_millis(u64::from(self.receive_interval_ms)),
            detect_mult,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_metallb_default() {
        let timers = Profile::default().timers().unwrap();
        assert_eq!(
            timers,
            Timers {
                desired_min_tx: Duration::from_millis(300),
                required_min_rx: Duration::from_millis(300),
                detect_mult: 3,
            }
        );
    }

    #[test]
    fn range_edges_are_accepted() {
        let low = Profile {
            receive_interval_ms: 10,
            transmit_interval_ms: 10,
            detect_multiplier: 2,
            echo_interval_ms: 10,
            minimum_ttl: 1,
            ..Profile::default()
        };
        assert_eq!(low.validate(), Ok(()));
        let high = Profile {
            receive_interval_ms: 60_000,
            transmit_interval_ms: 60_000,
            detect_multiplier: 255,
            echo_interval_ms: 60_000,
            minimum_ttl: 254,
            passive_mode: true,
            ..Profile::default()
        };
        assert_eq!(high.timers().unwrap().detect_mult, 255);
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let cases = [
            (
                Profile {
                    receive_interval_ms: 9,
                    ..Profile::default()
                },
                "receive-interval",
                9,
                10,
                60_000,
            ),
            (
                Profile {
                    transmit_interval_ms: 60_001,
                    ..Profile::default()
                },
                "transmit-interval",
                60_001,
                10,
                60_000,
            ),
            (
                Profile {
                    detect_multiplier: 1,
                    ..Profile::default()
                },
                "detect-multiplier",
                1,
                2,
                255,
            ),
            (
                Profile {
                    detect_multiplier: 256,
                    ..Profile::default()
                },
                "detect-multiplier",
                256,
                2,
                255,
            ),
            (
                Profile {
                    echo_interval_ms: 0,
                    ..Profile::default()
                },
                "echo-interval",
                0,
                10,
                60_000,
            ),
            (
                Profile {
                    minimum_ttl: 255,
                    ..Profile::default()
                },
                "minimum-ttl",
                255,
                1,
                254,
            ),
        ];
        for (profile, field, value, min, max) in cases {
            assert_eq!(
                profile.validate(),
                Err(ProfileError::OutOfRange {
                    field,
                    value,
                    min,
                    max
                })
            );
        }
        let err = Profile {
            receive_interval_ms: 9,
            ..Profile::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "receive-interval is 9, must be between 10 and 60000"
        );
    }

    #[test]
    fn echo_mode_is_a_clear_error() {
        let profile = Profile {
            echo_mode: true,
            ..Profile::default()
        };
        assert_eq!(profile.timers(), Err(ProfileError::EchoModeUnsupported));
        assert!(
            profile
                .validate()
                .unwrap_err()
                .to_string()
                .contains("echo-mode is not supported")
        );
    }
}
