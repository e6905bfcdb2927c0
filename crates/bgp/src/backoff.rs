//! Connect-retry backoff: exponential, capped, with jitter (RFC 4271 §10).
//!
//! Pure: the caller supplies the random input, so the same inputs always give the same
//! delays. The FSM owns one [`ConnectRetryBackoff`] per peer and resets it only after a
//! session has stayed Established for a while, never after an OPEN exchange that ended in
//! a NOTIFICATION (the loop MetalLB fell into, metallb#1114).

use std::time::Duration;

/// Exponential connect-retry backoff with jitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRetryBackoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl ConnectRetryBackoff {
    /// A backoff that starts at `initial` and doubles per failure up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// How many failures were recorded since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt, before jitter: `initial * 2^(failures-1)`,
    /// capped at `max` (the first failure waits `initial`).
    pub fn base_delay(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(30);
        self.initial
            .checked_mul(1u32 << shift)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Records a failed attempt and returns how long to wait before the next one.
    ///
    /// `random` is a uniformly distributed 32-bit value; RFC 4271 §10 jitter multiplies the
    /// delay by a factor in `[0.75, 1.0]`.
    pub fn record_failure(&mut self, random: u32) -> Duration {
        self.failures = self.failures.saturating_add(1);
        jitter(self.base_delay(), random)
    }

    /// Forgets past failures: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Scales `delay` by a factor in `[0.75, 1.0]` chosen by `random`.
pub fn jitter(delay: Duration, random: u32) -> Duration {
    // factor = 0.75 + 0.25 * random / 2^32, in integer nanoseconds to stay exact.
    let nanos = delay.as_nanos();
    let quarter = nanos / 4;
    let extra = (quarter * u128::from(random)) >> 32;
    let total = nanos - quarter + extra;
    Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
}

/// A small deterministic pseudo-random source (SplitMix64) for jitter, seeded by the caller.
#[derive(Clone, Debug)]
pub struct JitterSource(u64);

impl JitterSource {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 32-bit value.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn delay_doubles_per_failure_up_to_the_cap() {
        let mut b = ConnectRetryBackoff::new(S, 8 * S);
        // random = u32::MAX gives a factor just under 1.0; 0 gives exactly 0.75.
        let got: Vec<Duration> = (0..6).map(|_| b.record_failure(0)).collect();
        assert_eq!(
            got,
            vec![
                Duration::from_millis(750),
                Duration::from_millis(1500),
                Duration::from_millis(3000),
                Duration::from_millis(6000),
                Duration::from_millis(6000),
                Duration::from_millis(6000),
            ]
        );
        assert_eq!(b.failures(), 6);
        assert_eq!(b.base_delay(), 8 * S);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = ConnectRetryBackoff::new(S, 60 * S);
        b.record_failure(0);
        b.record_failure(0);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.record_failure(0), Duration::from_millis(750));
    }

    #[test]
    fn jitter_stays_within_three_quarters_and_one() {
        assert_eq!(jitter(S, 0), Duration::from_millis(750));
        assert_eq!(jitter(S, 1 << 31), Duration::from_millis(875));
        let top = jitter(S, u32::MAX);
        assert!(top < S && top > Duration::from_millis(999));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let mut b = ConnectRetryBackoff::new(S, 120 * S);
        for _ in 0..1000 {
            b.record_failure(u32::MAX);
        }
        assert_eq!(b.base_delay(), 120 * S);
    }

    #[test]
    fn jitter_source_is_deterministic() {
        let mut a = JitterSource::new(7);
        let mut b = JitterSource::new(7);
        let xs: Vec<u32> = (0..4).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..4).map(|_| b.next_u32()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], xs[1]);
    }
}
