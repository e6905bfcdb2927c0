//! The rise/fall gate: the address is announced only after `rise` consecutive successful health checks, and
//! withdrawn after `fall` consecutive failures. It starts withdrawn. Pure.

/// The health state behind the announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    rise: u32,
    fall: u32,
    successes: u32,
    failures: u32,
    healthy: bool,
}

impl Gate {
    /// A gate that is withdrawn until `rise` successes in a row (`rise` and `fall` are at least 1; 0 is
    /// taken as 1).
    pub fn new(rise: u32, fall: u32) -> Gate {
        Gate {
            rise: rise.max(1),
            fall: fall.max(1),
            successes: 0,
            failures: 0,
            healthy: false,
        }
    }

    /// Records one check's result; returns the new state when it changes (true: announce, false: withdraw).
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if !self.healthy && self.successes >= self.rise {
                self.healthy = true;
                return Some(true);
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.healthy && self.failures >= self.fall {
                self.healthy = false;
                return Some(false);
            }
        }
        None
    }

    /// Records a check that failed beyond doubt (nothing listens on the API server's port: the process is gone,
    /// where one shutting down keeps its listener): withdraws at once, as `fall` failures would. Returns the new
    /// state when it changes.
    pub fn down_now(&mut self) -> Option<bool> {
        self.successes = 0;
        self.failures = self.failures.max(self.fall);
        if self.healthy {
            self.healthy = false;
            return Some(false);
        }
        None
    }

    /// Whether the address is to be announced.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Successful checks in a row (0 after a failure).
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// Failed checks in a row (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `results` (`+` success, `-` failure) and returns the transitions as `U` / `D`, `.` for none.
    fn run(gate: &mut Gate, results: &str) -> String {
        results
            .chars()
            .map(|c| match gate.record(c == '+') {
                Some(true) => 'U',
                Some(false) => 'D',
                None => '.',
            })
            .collect()
    }

    #[test]
    fn starts_withdrawn_and_rises_after_rise_successes_in_a_row() {
        let mut g = Gate::new(2, 3);
        assert!(!g.healthy());
        assert_eq!(run(&mut g, "+-+-"), "....");
        assert!(!g.healthy());
        assert_eq!(run(&mut g, "++"), ".U");
        assert!(g.healthy());
        assert_eq!(g.successes(), 2);
    }

    #[test]
    fn falls_after_fall_failures_in_a_row_and_a_success_resets_the_count() {
        let mut g = Gate::new(2, 3);
        assert_eq!(run(&mut g, "++--+--+"), ".U......");
        assert!(g.healthy());
        assert_eq!(run(&mut g, "---"), "..D");
        assert!(!g.healthy());
        assert_eq!(g.failures(), 3);
        assert_eq!(g.successes(), 0);
        // Further failures change nothing; rising again takes `rise` successes.
        assert_eq!(run(&mut g, "--+++"), "...U.");
    }

    #[test]
    fn down_now_withdraws_at_once_and_rising_again_takes_rise_successes() {
        let mut g = Gate::new(2, 3);
        assert_eq!(run(&mut g, "++"), ".U");
        assert_eq!(g.down_now(), Some(false));
        assert!(!g.healthy());
        assert_eq!((g.successes(), g.failures()), (0, 3));
        assert_eq!(g.down_now(), None);
        assert_eq!(run(&mut g, "+-++"), "...U");
        // While withdrawn (before the first rise) it changes nothing but the counts.
        let mut fresh = Gate::new(2, 3);
        assert_eq!(fresh.down_now(), None);
        assert_eq!(run(&mut fresh, "++"), ".U");
    }

    #[test]
    fn rise_and_fall_of_one_follow_every_check() {
        let mut g = Gate::new(1, 1);
        assert_eq!(run(&mut g, "+-+--++"), "UDUD.U.");
        let mut zero = Gate::new(0, 0);
        assert_eq!(run(&mut zero, "+-"), "UD");
    }
}
