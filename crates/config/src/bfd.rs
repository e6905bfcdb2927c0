//! `bfd-profiles` (MetalLB's BFD profiles) and their ranges.
//!
//! The ranges and defaults are the same as `ferrolb_bfd::Profile`'s; they are repeated here so
//! that the configuration crate stays free of the BFD driver's dependencies, and a test checks
//! that the two agree.

use crate::error::{ConfigError, ConfigErrorKind};
use crate::fields::{Object, Schema, bool_value, string, u32_value};
use crate::yaml::Node;
use serde::Serialize;
use std::ops::RangeInclusive;

/// Accepted `receive-interval` values, milliseconds.
pub const BFD_RECEIVE_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `transmit-interval` values, milliseconds.
pub const BFD_TRANSMIT_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `detect-multiplier` values.
pub const BFD_DETECT_MULTIPLIER: RangeInclusive<u32> = 2..=255;
/// Accepted `echo-interval` values, milliseconds.
pub const BFD_ECHO_INTERVAL_MS: RangeInclusive<u32> = 10..=60_000;
/// Accepted `minimum-ttl` values.
pub const BFD_MINIMUM_TTL: RangeInclusive<u32> = 1..=254;

/// One entry of `bfd-profiles`. Defaults are MetalLB's: 300 ms / 300 ms / ×3, echo interval
/// 50 ms, active, minimum TTL 254. Echo mode is rejected when parsing (not supported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BfdProfile {
    /// The profile's unique name, referred to by a peer's `bfd-profile`.
    pub name: String,
    /// The minimum interval between received packets we can accept, ms.
    pub receive_interval: u32,
    /// The minimum interval at which we want to send, ms.
    pub transmit_interval: u32,
    /// How many remote intervals may be missed before the session goes Down.
    pub detect_multiplier: u32,
    /// The echo interval, ms (kept for compatibility; echo mode is not supported).
    pub echo_interval: u32,
    /// Always false: `echo-mode: true` is an error.
    pub echo_mode: bool,
    /// Wait for the router to speak first.
    pub passive_mode: bool,
    /// Multi-hop only; single-hop sessions always require TTL 255.
    pub minimum_ttl: u32,
}

impl BfdProfile {
    /// A profile called `name` with MetalLB's defaults.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        BfdProfile {
            name: name.into(),
            receive_interval: 300,
            transmit_interval: 300,
            detect_multiplier: 3,
            echo_interval: 50,
            echo_mode: false,
            passive_mode: false,
            minimum_ttl: 254,
        }
    }
}

/// The ranges as the error messages spell them; `tests` checks they match the constants.
const MS_RANGE_TEXT: &str = "10 to 60000";
const MULTIPLIER_RANGE_TEXT: &str = "2 to 255";
const TTL_RANGE_TEXT: &str = "1 to 254";

pub(crate) const PROFILE: Schema = Schema {
    known: &[
        "name",
        "receive-interval",
        "transmit-interval",
        "detect-multiplier",
        "echo-interval",
        "echo-mode",
        "passive-mode",
        "minimum-ttl",
    ],
    not_supported: &[],
};

/// The profile names read so far, for duplicate checks and peers' references.
#[derive(Debug, Default)]
pub(crate) struct ProfileNames {
    /// `(name, path, line)` in file order.
    seen: Vec<(String, String, usize)>,
}

impl ProfileNames {
    /// True when a profile of this name was read (even one with other errors, so that a
    /// peer naming it is not reported twice).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.seen.iter().any(|(n, _, _)| n == name)
    }

    /// The names, comma-separated, for error messages.
    pub(crate) fn list(&self) -> String {
        if self.seen.is_empty() {
            return "none are defined".to_string();
        }
        let names: Vec<&str> = self.seen.iter().map(|(n, _, _)| n.as_str()).collect();
        format!("defined: {}", names.join(", "))
    }
}

/// Every entry of `bfd-profiles` in `top` that reads cleanly, and the names defined (for the peers'
/// `bfd-profile`).
pub(crate) fn profiles(
    top: &crate::fields::Object<'_>,
    errs: &mut Vec<ConfigError>,
) -> (Vec<BfdProfile>, ProfileNames) {
    let mut names = ProfileNames::default();
    let mut profiles = Vec::new();
    for (i, node) in top.seq("bfd-profiles", errs).iter().enumerate() {
        let path = crate::fields::index("bfd-profiles", i);
        if let Some(p) = profile(node, path, &mut names, errs) {
            profiles.push(p);
        }
    }
    (profiles, names)
}

/// Reads `bfd-profiles[i]`.
pub(crate) fn profile(
    node: &Node,
    path: String,
    names: &mut ProfileNames,
    errs: &mut Vec<ConfigError>,
) -> Option<BfdProfile> {
    let obj = Object::read(node, path, &PROFILE, errs)?;
    let before = errs.len();
    let name = obj.required("name", errs, string);
    if let Some(n) = &name {
        if n.is_empty() {
            errs.push(obj.error("name", ConfigErrorKind::EmptyBfdProfileName));
        } else if let Some((_, first_path, first_line)) =
            names.seen.iter().find(|(seen, _, _)| seen == n)
        {
            errs.push(obj.error(
                "name",
                ConfigErrorKind::DuplicateBfdProfileName {
                    name: n.clone(),
                    first_path: first_path.clone(),
                    first_line: *first_line,
                },
            ));
        } else {
            names
                .seen
                .push((n.clone(), obj.path_of("name"), obj.line_of("name")));
        }
    }
    let defaults = BfdProfile::with_defaults("");
    let ranged = |key: &'static str,
                  range: &RangeInclusive<u32>,
                  text: &'static str,
                  default: u32,
                  errs: &mut Vec<ConfigError>| {
        if obj.entry(key).is_none() {
            return Some(default);
        }
        let v = obj.get(key, errs, u32_value)?;
        if range.contains(&v) {
            Some(v)
        } else {
            errs.push(obj.error(
                key,
                ConfigErrorKind::OutOfRange {
                    value: v.to_string(),
                    range: text,
                },
            ));
            None
        }
    };
    let receive_interval = ranged(
        "receive-interval",
        &BFD_RECEIVE_INTERVAL_MS,
        MS_RANGE_TEXT,
        defaults.receive_interval,
        errs,
    );
    let transmit_interval = ranged(
        "transmit-interval",
        &BFD_TRANSMIT_INTERVAL_MS,
        MS_RANGE_TEXT,
        defaults.transmit_interval,
        errs,
    );
    let detect_multiplier = ranged(
        "detect-multiplier",
        &BFD_DETECT_MULTIPLIER,
        MULTIPLIER_RANGE_TEXT,
        defaults.detect_multiplier,
        errs,
    );
    let echo_interval = ranged(
        "echo-interval",
        &BFD_ECHO_INTERVAL_MS,
        MS_RANGE_TEXT,
        defaults.echo_interval,
        errs,
    );
    let minimum_ttl = ranged(
        "minimum-ttl",
        &BFD_MINIMUM_TTL,
        TTL_RANGE_TEXT,
        defaults.minimum_ttl,
        errs,
    );
    let echo_mode = obj.get("echo-mode", errs, bool_value).unwrap_or(false);
    if echo_mode {
        errs.push(obj.error("echo-mode", ConfigErrorKind::EchoModeUnsupported));
    }
    let passive_mode = obj.get("passive-mode", errs, bool_value).unwrap_or(false);
    if errs.len() != before {
        return None;
    }
    Some(BfdProfile {
        name: name?,
        receive_interval: receive_interval?,
        transmit_interval: transmit_interval?,
        detect_multiplier: detect_multiplier?,
        echo_interval: echo_interval?,
        echo_mode: false,
        passive_mode,
        minimum_ttl: minimum_ttl?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_texts_spell_the_ranges() {
        let spell = |r: &RangeInclusive<u32>| format!("{} to {}", r.start(), r.end());
        assert_eq!(spell(&BFD_RECEIVE_INTERVAL_MS), MS_RANGE_TEXT);
        assert_eq!(spell(&BFD_TRANSMIT_INTERVAL_MS), MS_RANGE_TEXT);
        assert_eq!(spell(&BFD_ECHO_INTERVAL_MS), MS_RANGE_TEXT);
        assert_eq!(spell(&BFD_DETECT_MULTIPLIER), MULTIPLIER_RANGE_TEXT);
        assert_eq!(spell(&BFD_MINIMUM_TTL), TTL_RANGE_TEXT);
    }
}
