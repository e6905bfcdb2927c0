//! RFC 7606 outcomes: what the attribute decoder did about an UPDATE error that does not reset
//! the session. Produced by `attribute_decode`, listed in [`super::Update::issues`].

use super::notification::NotificationError;

/// How an UPDATE error is handled without resetting the session (RFC 7606 §2). Session reset
/// is a [`super::DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// The UPDATE's routes are treated as withdrawn; the decoder already moved its NLRI to the
    /// withdrawals and cleared its attributes.
    TreatAsWithdraw,
    /// The malformed attribute was dropped; the rest of the UPDATE stands.
    AttributeDiscard,
}

/// One error of a received UPDATE handled per RFC 7606 without resetting the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeIssue {
    /// Type code of the attribute concerned (0 for the attribute list as a whole).
    pub type_code: u8,
    /// What was done about it.
    pub action: ErrorAction,
    /// The NOTIFICATION RFC 4271 would have sent, for logs.
    pub error: NotificationError,
}
