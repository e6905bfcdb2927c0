//! A set of free indexes kept as maximal runs, so that every operation is O(log runs) and nothing scans.

use std::collections::BTreeMap;

/// Free indexes as disjoint, non-adjacent runs `start -> end` (both inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FreeRuns {
    runs: BTreeMap<u128, u128>,
}

impl FreeRuns {
    /// Adds a whole run of free indexes. The run must not overlap or touch the existing runs' contents (the pool
    /// builder adds disjoint ranges); adjacent runs are merged.
    pub(crate) fn add_run(&mut self, start: u128, end: u128) {
        let mut start = start;
        let mut end = end;
        if let Some((&ls, &le)) = self.runs.range(..start).next_back()
            && le.checked_add(1) == Some(start)
        {
            self.runs.remove(&ls);
            start = ls;
        }
        if let Some(next) = end.checked_add(1)
            && let Some(ne) = self.runs.remove(&next)
        {
            end = ne;
        }
        self.runs.insert(start, end);
    }

    /// The lowest free index.
    pub(crate) fn first(&self) -> Option<u128> {
        self.runs.first_key_value().map(|(&s, _)| s)
    }

    /// Whether an index is free.
    pub(crate) fn contains(&self, index: u128) -> bool {
        self.runs
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &end)| index <= end)
    }

    /// Marks an index used. Returns false (and changes nothing) when it was not free.
    pub(crate) fn take(&mut self, index: u128) -> bool {
        let Some((&start, &end)) = self.runs.range(..=index).next_back() else {
            return false;
        };
        if index > end {
            return false;
        }
        self.runs.remove(&start);
        if start < index {
            self.runs.insert(start, index - 1);
        }
        if index < end {
            self.runs.insert(index + 1, end);
        }
        true
    }

    /// Marks an index free again. Returns false (and changes nothing) when it was already free.
    pub(crate) fn put(&mut self, index: u128) -> bool {
        if self.contains(index) {
            return false;
        }
        self.add_run(index, index);
        true
    }

    /// The number of runs (for tests and memory accounting).
    #[cfg(test)]
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(f: &FreeRuns) -> Vec<(u128, u128)> {
        f.runs.iter().map(|(&s, &e)| (s, e)).collect()
    }

    #[test]
    fn take_splits_and_put_merges_back() {
        let mut f = FreeRuns::default();
        f.add_run(10, 20);
        assert!(f.take(15));
        assert_eq!(runs(&f), vec![(10, 14), (16, 20)]);
        assert!(!f.take(15));
        assert!(f.take(10));
        assert_eq!(f.first(), Some(11));
        assert!(f.put(15));
        assert_eq!(runs(&f), vec![(11, 20)]);
        assert!(!f.put(15));
        assert!(f.put(10));
        assert_eq!(runs(&f), vec![(10, 20)]);
        assert_eq!(f.run_count(), 1);
    }

    #[test]
    fn take_outside_any_run_is_refused() {
        let mut f = FreeRuns::default();
        f.add_run(10, 20);
        assert!(!f.take(9));
        assert!(!f.take(21));
        assert!(!f.contains(21));
        assert!(f.contains(20));
    }

    #[test]
    fn extremes_of_u128_do_not_overflow() {
        let mut f = FreeRuns::default();
        f.add_run(0, u128::MAX);
        assert!(f.take(u128::MAX));
        assert!(f.take(0));
        assert_eq!(runs(&f), vec![(1, u128::MAX - 1)]);
        assert!(f.put(u128::MAX));
        assert!(f.put(0));
        assert_eq!(runs(&f), vec![(0, u128::MAX)]);
    }

    #[test]
    fn exhausting_a_run_leaves_nothing() {
        let mut f = FreeRuns::default();
        f.add_run(7, 8);
        assert!(f.take(7));
        assert!(f.take(8));
        assert_eq!(f.first(), None);
    }
}
