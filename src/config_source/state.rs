//! The one configuration state of both daemons: the configuration in force, whether the newest input was
//! refused (stale), and why. Fed by either source (the ConfigMap or the metallb.io objects) with a
//! [`Candidate`] and a fingerprint of the input it came from, so identical input changes nothing.

use ferrolb_config::{Config, ConfigError};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// What a source currently offers.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// Nothing (the ConfigMap or its `config` key is gone; no metallb.io object at all).
    Missing,
    /// The input does not make a valid configuration: every problem found (never empty).
    Invalid(Vec<ConfigError>),
    /// A valid configuration.
    Valid(Config),
}

impl Candidate {
    /// The candidate for a ConfigMap's `config` text (`None`: the ConfigMap or its key is missing).
    pub fn from_config_text(text: Option<&str>) -> Candidate {
        match text {
            None => Candidate::Missing,
            Some(text) => match Config::from_yaml(text) {
                Ok(config) => Candidate::Valid(config),
                Err(errors) => Candidate::Invalid(errors.into_iter().collect()),
            },
        }
    }
}

/// A fingerprint of anything hashable (the input a candidate was made from).
pub fn fingerprint(input: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    input.hash(&mut hasher);
    hasher.finish()
}

/// Why the newest input is not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input is not a valid configuration: every problem found.
    Invalid(Vec<ConfigError>),
    /// The configuration is valid but the daemon refused it (the controller's allocator cannot take its pools).
    Refused(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Invalid(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Rejection::Refused(message) => f.write_str(message),
        }
    }
}

/// What an offered input did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The same input as last time: nothing changed.
    Unchanged,
    /// A new configuration is in force (`T`: what the daemon's own check returned).
    Loaded(T),
    /// The input was rejected; the last good configuration (if any) stays in force.
    Rejected(Rejection),
    /// The source has nothing; the last good configuration (if any) stays in force.
    Missing,
}

impl<T> Outcome<T> {
    /// The same outcome with the daemon's value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Unchanged => Outcome::Unchanged,
            Outcome::Loaded(value) => Outcome::Loaded(f(value)),
            Outcome::Rejected(rejection) => Outcome::Rejected(rejection),
            Outcome::Missing => Outcome::Missing,
        }
    }
}

/// The configuration in force and the state of the newest input.
#[derive(Debug, Default)]
pub struct ConfigState {
    /// The fingerprint of the newest input (None before any).
    seen: Option<u64>,
    config: Option<Arc<Config>>,
    stale: bool,
    rejection: Option<Rejection>,
}

impl ConfigState {
    /// The configuration in force.
    pub fn config(&self) -> Option<&Arc<Config>> {
        self.config.as_ref()
    }

    /// Whether a valid configuration is in force (`ferrolb_k8s_client_config_loaded_bool`).
    pub fn loaded(&self) -> bool {
        self.config.is_some()
    }

    /// Whether the newest input was rejected or is missing, so what is in force (if anything) is older
    /// (`ferrolb_k8s_client_config_stale_bool`).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Why the newest input was rejected, while it is the newest.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref()
    }

    /// Offers the source's newest input, identified by `fingerprint`; `candidate` makes the candidate (called
    /// only when the input is new). A valid candidate goes through `check` (the daemon's own test, which may
    /// still refuse it) before it is put in force.
    pub fn offer<T>(
        &mut self,
        fingerprint: u64,
        candidate: impl FnOnce() -> Candidate,
        check: impl FnOnce(&Config) -> Result<T, String>,
    ) -> Outcome<T> {
        if self.seen == Some(fingerprint) {
            return Outcome::Unchanged;
        }
        self.seen = Some(fingerprint);
        let rejection = match candidate() {
            Candidate::Missing => {
                self.stale = true;
                self.rejection = None;
                return Outcome::Missing;
            }
            Candidate::Invalid(errors) => Rejection::Invalid(errors),
            Candidate::Valid(config) => match check(&config) {
                Ok(value) => {
                    self.config = Some(Arc::new(config));
                    self.stale = false;
                    self.rejection = None;
                    return Outcome::Loaded(value);
                }
                Err(message) => Rejection::Refused(message),
            },
        };
        self.stale = true;
        self.rejection = Some(rejection.clone());
        Outcome::Rejected(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "address-pools:\n- {name: a, protocol: bgp, addresses: [203.0.113.0/28]}\n";
    const OTHER: &str =
        "address-pools:\n- {name: b, protocol: bgp, addresses: [203.0.113.16/28]}\n";
    const BAD: &str = "address-pools:\n- {name: a, protocol: bgp, addresses: [not-an-ip]}\n";

    fn offer_text(state: &mut ConfigState, text: Option<&str>) -> Outcome<()> {
        state.offer(
            fingerprint(&text),
            || Candidate::from_config_text(text),
            |_| Ok(()),
        )
    }

    fn pool_names(state: &ConfigState) -> Vec<String> {
        state
            .config()
            .map(|c| c.address_pools.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn loads_then_identical_input_is_unchanged() {
        let mut state = ConfigState::default();
        assert!(!state.loaded() && !state.stale());
        assert_eq!(offer_text(&mut state, Some(GOOD)), Outcome::Loaded(()));
        assert!(state.loaded() && !state.stale());
        assert_eq!(offer_text(&mut state, Some(GOOD)), Outcome::Unchanged);
        assert_eq!(pool_names(&state), ["a"]);
    }

    #[test]
    fn rejected_keeps_the_last_good_and_is_stale_until_recovered() {
        let mut state = ConfigState::default();
        offer_text(&mut state, Some(GOOD));
        let Outcome::Rejected(Rejection::Invalid(errors)) = offer_text(&mut state, Some(BAD))
        else {
            panic!("not rejected");
        };
        assert_eq!(errors[0].path, "address-pools[0].addresses[0]");
        assert!(state.loaded() && state.stale());
        assert_eq!(pool_names(&state), ["a"]);
        assert!(matches!(state.rejection(), Some(Rejection::Invalid(_))));
        // The same bad input again: nothing new to report.
        assert_eq!(offer_text(&mut state, Some(BAD)), Outcome::Unchanged);
        assert_eq!(offer_text(&mut state, Some(OTHER)), Outcome::Loaded(()));
        assert!(state.loaded() && !state.stale() && state.rejection().is_none());
        assert_eq!(pool_names(&state), ["b"]);
    }

    #[test]
    fn rejected_before_any_good_is_stale_and_not_loaded() {
        let mut state = ConfigState::default();
        assert!(matches!(
            offer_text(&mut state, Some(BAD)),
            Outcome::Rejected(_)
        ));
        assert!(!state.loaded() && state.stale());
    }

    #[test]
    fn missing_keeps_the_last_good_and_is_stale() {
        let mut state = ConfigState::default();
        offer_text(&mut state, Some(GOOD));
        offer_text(&mut state, Some(BAD));
        assert_eq!(offer_text(&mut state, None), Outcome::Missing);
        assert!(state.loaded() && state.stale() && state.rejection().is_none());
        assert_eq!(offer_text(&mut state, None), Outcome::Unchanged);
        // Recovered: the same text as before the removal loads again.
        assert_eq!(offer_text(&mut state, Some(GOOD)), Outcome::Loaded(()));
        assert!(!state.stale());
    }

    #[test]
    fn missing_at_start_is_stale_and_not_loaded() {
        let mut state = ConfigState::default();
        assert_eq!(offer_text(&mut state, None), Outcome::Missing);
        assert!(!state.loaded() && state.stale());
    }

    #[test]
    fn a_refusal_by_the_daemon_is_a_rejection() {
        let mut state = ConfigState::default();
        offer_text(&mut state, Some(GOOD));
        let outcome = state.offer(
            fingerprint(&Some(OTHER)),
            || Candidate::from_config_text(Some(OTHER)),
            |_| Err::<(), _>("pool b overlaps".to_owned()),
        );
        assert_eq!(
            outcome,
            Outcome::Rejected(Rejection::Refused("pool b overlaps".into()))
        );
        assert!(state.stale());
        assert_eq!(pool_names(&state), ["a"]);
        assert_eq!(
            state.rejection().map(ToString::to_string).as_deref(),
            Some("pool b overlaps")
        );
    }
}
