//! Which problems with metallb.io objects to report: each distinct (object, message) once while it persists;
//! one that goes away and comes back is reported again.

use super::state::Rejection;
use ferrolb_config::metallb::{ObjectId, Warning};
use kube::runtime::events::{Event, EventType};
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

/// The Warning Event `ConfigInvalid` both daemons post on the ConfigMap when its configuration is rejected.
/// The controller posts one per rejection (leader only); each speaker posts its own, once per distinct
/// rejected input, naming its `node`, so a rejection only speakers see (they read it too) is visible.
pub fn config_rejected_event(message: &str, node: Option<&str>) -> Event {
    let who = node.map_or(String::new(), |n| format!("speaker on {n}: "));
    Event {
        type_: EventType::Warning,
        reason: REASON_INVALID.into(),
        note: Some(truncated(format!(
            "{who}configuration rejected, the last good one stays in force: {message}"
        ))),
        action: "LoadConfig".into(),
        secondary: None,
    }
}

/// `note` cut to the 1,000 bytes an Event note may hold.
pub fn truncated(mut note: String) -> String {
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_config::metallb::Kind;
    use ferrolb_config::{ConfigError, ConfigErrorKind};

    #[test]
    fn the_rejection_event_is_a_warning_naming_the_speaker_s_node_and_fits_an_event_note() {
        let ev = config_rejected_event("address-pools[0].addresses[0]: bad", Some("node-2"));
        assert_eq!(ev.type_, EventType::Warning);
        assert_eq!(ev.reason, "ConfigInvalid");
        assert_eq!(
            ev.note.as_deref(),
            Some(
                "speaker on node-2: configuration rejected, the last good one stays in force: \
                 address-pools[0].addresses[0]: bad"
            )
        );
        let controller = config_rejected_event("bad", None);
        assert_eq!(
            controller.note.as_deref(),
            Some("configuration rejected, the last good one stays in force: bad")
        );
        // Cut at 1,000 bytes, on a character boundary.
        let long = config_rejected_event(&"é".repeat(600), None);
        let note = long.note.unwrap_or_default();
        assert!(note.len() <= 1000 && note.len() >= 998, "{}", note.len());
    }

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
