//! Shared by the table-driven refusal tests: one configuration, exactly one error, at this path
//! and line, of this kind.

use ferrolb_config::{Config, ConfigError, ConfigErrorKind};

/// Parses `yaml`, asserts it is refused with exactly one error at `path` and `line` whose kind
/// passes `check`, and returns that error for further checks. `name` labels every failure.
pub fn assert_one_error(
    name: &str,
    yaml: &str,
    path: &str,
    line: usize,
    check: fn(&ConfigErrorKind) -> bool,
) -> ConfigError {
    let errors = match Config::from_yaml(yaml) {
        Ok(c) => panic!("{name}: accepted as {c:?}"),
        Err(e) => e.into_iter().collect::<Vec<_>>(),
    };
    assert_eq!(
        errors.len(),
        1,
        "{name}: expected one error, got {errors:#?}"
    );
    let e = errors.into_iter().next().unwrap();
    assert_eq!(e.path, path, "{name}: path of {e}");
    assert_eq!(e.line, line, "{name}: line of {e}");
    assert!(check(&e.kind), "{name}: unexpected kind {:?}", e.kind);
    e
}

/// One refused configuration for [`assert_cases`].
#[allow(dead_code)] // not every test binary has a table of cases
pub struct Case {
    /// Labels failures.
    pub name: &'static str,
    /// The configuration, after the table's common prefix.
    pub yaml: &'static str,
    /// The path of the one error.
    pub path: &'static str,
    /// Its line, in the whole text (prefix included).
    pub line: usize,
    /// Accepts its kind.
    pub check: fn(&ConfigErrorKind) -> bool,
}

/// [`assert_one_error`] for each case, with `prefix` before its `yaml`.
#[allow(dead_code)]
pub fn assert_cases(prefix: &str, cases: &[Case]) {
    for case in cases {
        let text = format!("{prefix}{}", case.yaml);
        assert_one_error(case.name, &text, case.path, case.line, case.check);
    }
}
