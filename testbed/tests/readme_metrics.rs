//! The README's metrics reference, shared by the tests that check metric names against it (`manifests`,
//! `alerts`).

use std::collections::BTreeSet;
use std::path::Path;

/// The metric names of the README's metrics reference (between `<!-- metrics:begin -->` and
/// `<!-- metrics:end -->`) in the repository at `repo`.
pub fn documented_metrics(repo: &Path) -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README.md");
    let section = readme
        .split_once("<!-- metrics:begin -->")
        .and_then(|(_, r)| r.split_once("<!-- metrics:end -->"))
        .map(|(s, _)| s)
        .expect("README.md has a metrics reference between <!-- metrics:begin --> and <!-- metrics:end -->");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("ferrolb_"))
        .map(|s| s.split(['{', ' ']).next().unwrap_or(s).to_owned())
        .collect()
}
