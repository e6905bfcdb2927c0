//! The README's configuration reference cannot drift from the parser: each object's table (after a
//! `<!-- keys: OBJECT -->` marker) lists exactly the keys [`ferrolb_config::known_keys`] gives for it, and
//! every field ferrolb refuses as not supported yet (the metallb.io objects' `unsupported_fields`, and the
//! ConfigMap's `unsupported_keys`) and every MetalLB v0.12 setting it refuses is named as refused in the reference.

use ferrolb_config::metallb::unsupported_fields;
use ferrolb_config::{Config, known_keys, unsupported_keys};
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
fn fields_refused_as_not_supported_are_named_in_the_reference() {
    let readme = readme();
    let (_, refused) = readme
        .split_once("**Refused, per object, with a message naming the field:**")
        .expect("README.md has the metallb.io objects' refused-fields paragraph");
    let refused = refused.split("\n\n").next().unwrap_or("");
    let fields: Vec<(&str, &str)> = unsupported_fields().chain(unsupported_keys()).collect();
    assert!(
        !fields.is_empty(),
        "nothing is refused as not supported: drop this test and the README paragraph"
    );
    for (kind, field) in fields {
        assert!(
            refused.contains(&format!("`{kind}`")) && refused.contains(&format!("`{field}`")),
            "README.md's refused-fields paragraph does not name {kind}'s `{field}`: {refused}"
        );
    }
}

#[test]
fn metallb_v0_12_settings_ferrolb_refuses_are_documented_as_refused() {
    let readme = readme();
    let pool = "address-pools:\n- name: a\n  addresses: [203.0.113.0/30]\n";
    // (a MetalLB v0.12 document ferrolb refuses, what the README's reference says about it)
    let cases = [
        (
            format!("{pool}  protocol: layer2\n"),
            "protocol `layer2` is not supported",
        ),
        (
            "bfd-profiles:\n- name: p\n  echo-mode: true\n".to_owned(),
            "| `echo-mode` | boolean | false | `true` is an error: echo mode is not supported |",
        ),
    ];
    for (text, documented) in cases {
        let err = Config::from_yaml(&text).expect_err(&text);
        assert!(
            err.to_string().contains("not supported"),
            "{text}: refused, but not as not supported: {err}"
        );
        assert!(
            readme.contains(documented),
            "README.md does not say {documented:?} ({err})"
        );
    }
}
