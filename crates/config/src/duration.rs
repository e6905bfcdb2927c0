//! Durations written as Go's `time.ParseDuration` reads them: `90s`, `1m30s`, `500ms`, `0`.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a sequence of `<number><unit>`.
    #[error("invalid duration {text:?}: {reason}")]
    Invalid {
        /// The text as written.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Nanoseconds per unit, longest unit names first so `ms` is tried before `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go-style duration: one or more `<decimal><unit>` with units `h`, `m`, `s`, `ms`,
/// `us`/`µs` and `ns` (`1m30s`, `1.5s`), or a bare `0`. Negative durations are rejected.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError::Invalid {
        text: text.to_string(),
        reason,
    };
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(err("must not be negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(err("missing unit (use h, m, s, ms, us or ns)"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(err("unknown unit (use h, m, s, ms, us or ns)"));
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err("number too large"))?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(|| err("too large"))?;
        // The fraction, digit by digit, truncated below a nanosecond as Go does.
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            nanos += u128::from(d - b'0') * place;
        }
        total = total.checked_add(nanos).ok_or_else(|| err("too large"))?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("too large"))?;
    let sub = u32::try_from(total % 1_000_000_000).map_err(|_| err("too large"))?;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration so that [`parse_duration`] reads it back unchanged: `90s`, `1500ms`,
/// `0s`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// serde helper: a [`Duration`] as its [`format_duration`] text.
pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// Serialises an optional duration (skipped when `None` by the field's attribute).
pub(crate) fn serialize_opt<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2us").unwrap(), Duration::from_micros(2));
        assert_eq!(parse_duration(".5m").unwrap(), Duration::from_secs(30));
    }

    #[test]
    fn bad_forms_say_why() {
        let e = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(
            e("90"),
            "invalid duration \"90\": missing unit (use h, m, s, ms, us or ns)"
        );
        assert_eq!(e("-3s"), "invalid duration \"-3s\": must not be negative");
        assert_eq!(
            e("3d"),
            "invalid duration \"3d\": unknown unit (use h, m, s, ms, us or ns)"
        );
        assert_eq!(e("s"), "invalid duration \"s\": expected a number");
        assert_eq!(e(""), "invalid duration \"\": empty");
        assert_eq!(
            e("1.2.3s"),
            "invalid duration \"1.2.3s\": expected a number"
        );
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(90),
            Duration::from_millis(1500),
            Duration::from_nanos(7),
        ] {
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
