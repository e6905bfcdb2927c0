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
