//! [`Password`]: a TCP-MD5 password that never shows in `Debug` output, so a configuration, a peer or an error
//! can be logged with `{:?}` without leaking it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// What `Debug` prints instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// A BGP session's TCP-MD5 password. `Debug` prints [`REDACTED`]; there is no `Display`. The text is read
/// with [`Password::expose`] (or through `Deref<Target = str>`, e.g. `peer.password.as_deref()`) by the code
/// that signs segments with it, and written by `Serialize` (the configuration's YAML round trip).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    /// The password itself, for the socket option that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Password")
            .field(&format_args!("{REDACTED}"))
            .finish()
    }
}

impl Deref for Password {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(text: String) -> Password {
        Password(text)
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Password {
        Password(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_the_text_stays_readable() {
        let p = Password::new("s3cr3t-planted");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(format!("{p:#?}"), "Password(\n    <redacted>,\n)");
        assert_eq!(format!("{:?}", Some(&p)), "Some(Password(<redacted>))");
        assert_eq!(p.expose(), "s3cr3t-planted");
        assert_eq!(Some(p.clone()).as_deref(), Some("s3cr3t-planted"));
        assert_eq!(serde_yaml::to_string(&p).unwrap(), "s3cr3t-planted\n");
        let back: Password = serde_yaml::from_str("s3cr3t-planted").unwrap();
        assert_eq!(back, p);
    }
}
