//! Which problems with metallb.io objects to report: each distinct (object, message) once while it persists;
//! one that goes away and comes back is reported again.

use super::state::Rejection;
use ferrolb_config::metallb::{ObjectId, Warning};
use std::collections::BTreeSet;

/// Event reason of an error that invalidates the configuration.
pub const REASON_INVALID: &str = "ConfigInvalid";
/// Event reason of a warning that does not.
pub const REASON_WARNING: &str = "ConfigIgnored";

/// One problem with one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The object it is about.
    pub object: ObjectId,
    /// The Event reason ([`REASON_INVALID`] or [`REASON_WARNING`]).
    pub reason: &'static str,
    /// What to tell the user (`spec.addresses[1]: invalid CIDR ...`).
    pub message: String,
}

/// The problems of the newest input: every error that names an object (of a rejection), and every warning.
pub fn problems_of(rejection: Option<&Rejection>, warnings: &[Warning]) -> BTreeSet<Problem> {
    let errors = match rejection {
        Some(Rejection::Invalid(errors)) => errors.as_slice(),
        _ => &[],
    };
    let errors = errors.iter().filter_map(|e| {
        let object = e.object.as_deref()?.clone();
        let message = if e.path.is_empty() {
            e.message()
        } else {
            format!("{}: {}", e.path, e.message())
        };
        Some(Problem {
            object,
            reason: REASON_INVALID,
            message,
        })
    });
    let warnings = warnings.iter().map(|w| Problem {
        object: w.object.clone(),
        reason: REASON_WARNING,
        message: w.message.clone(),
    });
    errors.chain(warnings).collect()
}

/// The problems already reported, while they persist.
#[derive(Debug, Default)]
pub struct Reported(BTreeSet<Problem>);

impl Reported {
    /// Takes the current problems; returns those not reported yet, and forgets those that went away.
    pub fn fresh(&mut self, current: BTreeSet<Problem>) -> Vec<Problem> {
        let new = current.difference(&self.0).cloned().collect();
        self.0 = current;
        new
    }

    /// Forgets everything (a new leader reports the current problems again).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_config::metallb::Kind;
    use ferrolb_config::{ConfigError, ConfigErrorKind};

    fn id(kind: Kind, name: &str) -> ObjectId {
        ObjectId {
            kind,
            namespace: "metallb-system".into(),
            name: name.into(),
        }
    }

    fn error(object: Option<ObjectId>, path: &str) -> ConfigError {
        let mut e = ConfigError::new(path, 0, ConfigErrorKind::BadIp("x".into()));
        e.object = object.map(Box::new);
        e
    }

    #[test]
    fn errors_with_an_object_and_warnings_are_problems() {
        let pool = id(Kind::IpAddressPool, "public");
        let l2 = id(Kind::L2Advertisement, "l2");
        let rejection = Rejection::Invalid(vec![
            error(Some(pool.clone()), "spec.addresses[1]"),
            error(None, "address-pools[0]"),
        ]);
        let warnings = [Warning {
            object: l2.clone(),
            message: "ignored".into(),
        }];
        let problems: Vec<_> = problems_of(Some(&rejection), &warnings)
            .into_iter()
            .collect();
        assert_eq!(
            problems,
            [
                Problem {
                    object: pool,
                    reason: REASON_INVALID,
                    message: "spec.addresses[1]: invalid IP address \"x\"".into(),
                },
                Problem {
                    object: l2,
                    reason: REASON_WARNING,
                    message: "ignored".into(),
                },
            ]
        );
        assert!(problems_of(Some(&Rejection::Refused("no".into())), &[]).is_empty());
    }

    #[test]
    fn each_problem_is_reported_once_while_it_persists_and_again_when_it_returns() {
        let p = |name: &str| Problem {
            object: id(Kind::IpAddressPool, name),
            reason: REASON_INVALID,
            message: "bad".into(),
        };
        let mut reported = Reported::default();
        assert_eq!(reported.fresh([p("a")].into()), [p("a")]);
        assert_eq!(reported.fresh([p("a"), p("b")].into()), [p("b")]);
        assert_eq!(reported.fresh([p("b")].into()), []);
        assert_eq!(reported.fresh(BTreeSet::new()), []);
        assert_eq!(reported.fresh([p("a"), p("b")].into()), [p("a"), p("b")]);
        reported.clear();
        assert_eq!(reported.fresh([p("a")].into()), [p("a")]);
    }
}
