//! Typed decode and encode errors.

use super::notification::{Notification, NotificationError};

/// A received message that must reset the session. It carries the NOTIFICATION to send
/// ([`DecodeError::error`]) and a short description of the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({detail})")]
pub struct DecodeError {
    /// The NOTIFICATION error (code, subcode, data) to send before closing.
    pub error: NotificationError,
    /// Which check failed, in words.
    pub detail: &'static str,
}

impl DecodeError {
    /// Build a decode error.
    pub fn new(error: NotificationError, detail: &'static str) -> Self {
        DecodeError { error, detail }
    }
}

impl From<DecodeError> for Notification {
    fn from(e: DecodeError) -> Self {
        e.error.into()
    }
}

impl From<DecodeError> for NotificationError {
    fn from(e: DecodeError) -> Self {
        e.error
    }
}

/// A message that cannot be encoded for this session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum length.
    #[error("message of {length} octets exceeds the maximum of {max}")]
    MessageTooLong {
        /// Length the message would have.
        length: usize,
        /// The session's maximum message length.
        max: usize,
    },
    /// One field does not fit in its length field.
    #[error("{field} of {length} octets does not fit its length field")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        length: usize,
    },
    /// A value cannot be put on the wire as given.
    #[error("cannot encode {0}")]
    Invalid(&'static str),
}
