//! The configuration reference (`config/README.md`) cannot drift from the parser: each object's table (after a
//! `<!-- keys: OBJECT -->` marker) lists exactly the keys [`ferrolb_config::known_keys`] gives for it, and every
//! MetalLB v0.12 setting it refuses is named as refused in the reference.

use ferrolb_config::{Config, known_keys};
use std::collections::BTreeSet;

/// A Markdown file of the repository, by its path from the root.
fn doc(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The configuration reference.
fn reference() -> String {
    doc("config/README.md")
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
    let readme = reference();
    for (object, keys) in known_keys() {
        let documented = documented_keys(&readme, object)
            .unwrap_or_else(|| panic!("config/README.md has no `<!-- keys: {object} -->` table"));
        let known: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        let missing: Vec<&String> = known.difference(&documented).collect();
        let unknown: Vec<&String> = documented.difference(&known).collect();
        assert!(
            missing.is_empty(),
            "{object}: keys the parser accepts but config/README.md does not document: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "{object}: keys config/README.md documents but the parser rejects: {unknown:?}"
        );
    }
}

#[test]
fn no_reference_table_for_an_object_the_parser_does_not_have() {
    let readme = reference();
    let objects: BTreeSet<&str> = known_keys().map(|(o, _)| o).collect();
    for chunk in readme.split("<!-- keys: ").skip(1) {
        let object = chunk.split(" -->").next().unwrap_or("");
        assert!(
            objects.contains(object),
            "config/README.md has a key table for unknown object {object:?}"
        );
    }
}

#[test]
fn metallb_v0_12_settings_ferrolb_refuses_are_documented_as_refused() {
    let readme = reference();
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
            "config/README.md does not say {documented:?} ({err})"
        );
    }
}

/// The repository's root.
fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every Markdown file of the repository (not build output, fuzz corpora or caches), by path from the root.
fn markdown_files() -> Vec<String> {
    fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        let skip = [
            ".git",
            "target",
            "corpus",
            "artifacts",
            "node_modules",
            ".lab",
        ];
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                if !skip.contains(&name.as_str()) {
                    walk(&entry.path(), &path, out);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo(), "", &mut out);
    out.sort();
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings, and its link targets (outside code blocks and code spans).
fn headings_and_links(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut anchors = BTreeSet::new();
    let mut links = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(heading) = line.strip_prefix('#') {
            anchors.insert(anchor(heading.trim_start_matches('#')));
        }
        // Drop code spans, then take every `](target)`.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            if let Some(end) = rest.find(')') {
                links.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    (anchors, links)
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let files = markdown_files();
    assert!(
        files.contains(&"README.md".to_owned()) && files.contains(&"config/README.md".to_owned())
    );
    let mut broken = Vec::new();
    for file in &files {
        let text = doc(file);
        let dir = std::path::Path::new(file)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        for link in headings_and_links(&text).1 {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if path.is_empty() {
                std::path::PathBuf::from(file)
            } else {
                dir.join(path)
            };
            let full = repo().join(&target);
            if !full.exists() {
                broken.push(format!("{file}: {link} (no {})", target.display()));
                continue;
            }
            if !fragment.is_empty() {
                let anchors = if full.is_file() && target.extension().is_some_and(|e| e == "md") {
                    headings_and_links(&std::fs::read_to_string(&full).unwrap()).0
                } else {
                    BTreeSet::new()
                };
                if !anchors.contains(fragment) {
                    broken.push(format!("{file}: {link} (no heading #{fragment})"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_router_guide_shows_each_example_file_verbatim() {
    let guide = doc("config/routers/README.md");
    let mut files: Vec<_> = std::fs::read_dir(repo().join("config/routers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "bird.conf",
            "eos.conf",
            "fortios.conf",
            "frr-leaf-spine.conf",
            "frr.conf",
            "junos.conf"
        ]
    );
    for name in files {
        let text = doc(&format!("config/routers/{name}"));
        assert!(
            guide.contains(&format!("]({name})")) && guide.contains(&format!("```\n{text}```\n")),
            "config/routers/README.md must link {name} and show it verbatim in a code block"
        );
    }
}
