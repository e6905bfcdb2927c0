//! The README's configuration reference cannot drift from the parser: each object's table (after a
//! `<!-- keys: OBJECT -->` marker) lists exactly the keys [`ferrolb_config::known_keys`] gives for it, and
//! every key ferrolb rejects as not supported yet is named in the reference.

use ferrolb_config::{known_keys, unsupported_keys};
use std::collections::BTreeSet;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    std::fs::read_to_string(path).expect("README.md at the repository root")
}

/// The keys in the first column of the table following `<!-- keys: object -->`, or None without a marker.
fn documented_keys(readme: &str, object: &str) -> Option<BTreeSet<String>> {
    let marker = format!("<!-- keys: {object} -->");
    let (_, after) = readme.split_once(&marker)?;
    let mut keys = BTreeSet::new();
    let mut in_table = false;
    for line in after.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let first = line
            .trim_start_matches('|')
            .split('|')
            .next()
            .unwrap_or("")
            .trim();
        // `key` rows only: the header ("Key") and the separator (---) have no backticks.
        if let Some(key) = first.strip_prefix('`').and_then(|k| k.split('`').next()) {
            assert!(
                keys.insert(key.to_owned()),
                "{object}: `{key}` documented twice"
            );
        }
    }
    Some(keys)
}

#[test]
fn every_object_has_a_reference_table_with_exactly_its_keys() {
    let readme = readme();
    for (object, keys) in known_keys() {
        let documented = documented_keys(&readme, object)
            .unwrap_or_else(|| panic!("README.md has no `<!-- keys: {object} -->` table"));
        let known: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        let missing: Vec<&String> = known.difference(&documented).collect();
        let unknown: Vec<&String> = documented.difference(&known).collect();
        assert!(
            missing.is_empty(),
            "{object}: keys the parser accepts but README.md does not document: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "{object}: keys README.md documents but the parser rejects: {unknown:?}"
        );
    }
}

#[test]
fn no_reference_table_for_an_object_the_parser_does_not_have() {
    let readme = readme();
    let objects: BTreeSet<&str> = known_keys().map(|(o, _)| o).collect();
    for chunk in readme.split("<!-- keys: ").skip(1) {
        let object = chunk.split(" -->").next().unwrap_or("");
        assert!(
            objects.contains(object),
            "README.md has a key table for unknown object {object:?}"
        );
    }
}

#[test]
fn keys_not_supported_yet_are_named_in_the_reference() {
    let readme = readme();
    for (object, key) in unsupported_keys() {
        assert!(
            readme.contains(&format!("`{key}`")),
            "README.md does not say that `{key}` ({object}) is rejected as not supported yet"
        );
    }
}
