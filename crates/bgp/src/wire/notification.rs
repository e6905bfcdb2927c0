//! NOTIFICATION messages (RFC 4271 §4.5) and the typed errors they carry.
//!
//! [`Notification`] is the message as it is on the wire (code, subcode, data). [`NotificationError`]
//! is the same thing typed: one variant per code/subcode this crate can detect or name, carrying the
//! data RFC 4271 (and RFC 4486, 5492, 6608, 7313, 8538, 9003, 9384) puts in the message.
//! `NotificationError -> Notification` builds the message to send, [`Notification::error`] reads a
//! received one back, and `Display` on either gives the words a person reads
//! ("OPEN Message Error / Bad Peer AS").

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Error code 1 (RFC 4271 §4.5).
pub const MESSAGE_HEADER_ERROR: u8 = 1;
/// Error code 2.
pub const OPEN_MESSAGE_ERROR: u8 = 2;
/// Error code 3.
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
/// Error code 4.
pub const HOLD_TIMER_EXPIRED: u8 = 4;
/// Error code 5.
pub const FSM_ERROR: u8 = 5;
/// Error code 6.
pub const CEASE: u8 = 6;
/// Error code 7 (RFC 7313).
pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;

/// A NOTIFICATION message as carried on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode (0 when the code has none).
    pub subcode: u8,
    /// Data whose meaning depends on code and subcode.
    pub data: Bytes,
}

impl Notification {
    /// The typed error this notification carries (an [`NotificationError::Other`] for codes and
    /// subcodes this crate does not name).
    pub fn error(&self) -> NotificationError {
        NotificationError::from_parts(self.code, self.subcode, &self.data)
    }

    /// Cease / Administrative Shutdown with an RFC 9003 shutdown communication.
    pub fn administrative_shutdown(communication: &str) -> Self {
        NotificationError::Cease(Cease::AdministrativeShutdown {
            communication: communication.to_owned(),
        })
        .into()
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error().fmt(f)
    }
}

impl From<NotificationError> for Notification {
    fn from(error: NotificationError) -> Self {
        Notification {
            code: error.code(),
            subcode: error.subcode(),
            data: error.data(),
        }
    }
}

/// Every error a NOTIFICATION can report, typed, with the data it carries on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NotificationError {
    /// 1/1: the marker was not all ones.
    #[error("Message Header Error / Connection Not Synchronized")]
    ConnectionNotSynchronized,
    /// 1/2: the length field is out of range for the message type. Data: the length.
    #[error("Message Header Error / Bad Message Length ({length})")]
    BadMessageLength {
        /// The erroneous length field.
        length: u16,
    },
    /// 1/3: unknown message type. Data: the type.
    #[error("Message Header Error / Bad Message Type ({message_type})")]
    BadMessageType {
        /// The erroneous type octet.
        message_type: u8,
    },
    /// 2/0: an OPEN optional parameter or capability is recognised but malformed (RFC 4271
    /// §6.2: "the Error Subcode MUST be set to 0 (Unspecific)").
    #[error("OPEN Message Error / Unspecific")]
    OpenUnspecific,
    /// 2/1: unsupported version. Data: the largest version we support (4).
    #[error("OPEN Message Error / Unsupported Version Number (supported: {supported})")]
    UnsupportedVersionNumber {
        /// Largest supported version.
        supported: u16,
    },
    /// 2/2: the peer's AS is not the one configured.
    #[error("OPEN Message Error / Bad Peer AS")]
    BadPeerAs,
    /// 2/3: the BGP Identifier is not acceptable.
    #[error("OPEN Message Error / Bad BGP Identifier")]
    BadBgpIdentifier,
    /// 2/4: an optional parameter other than capabilities.
    #[error("OPEN Message Error / Unsupported Optional Parameter")]
    UnsupportedOptionalParameter,
    /// 2/6: hold time 1 or 2 seconds (or refused by local policy).
    #[error("OPEN Message Error / Unacceptable Hold Time")]
    UnacceptableHoldTime,
    /// 2/7 (RFC 5492): a capability we require is missing. Data: the capabilities concerned,
    /// encoded as in the OPEN.
    #[error("OPEN Message Error / Unsupported Capability")]
    UnsupportedCapability {
        /// The capability tuples (code, length, value).
        capabilities: Bytes,
    },
    /// 3/1: the attribute list is malformed (length overrun, duplicate attribute).
    #[error("UPDATE Message Error / Malformed Attribute List")]
    MalformedAttributeList,
    /// 3/2: a well-known attribute we do not recognise. Data: the attribute.
    #[error("UPDATE Message Error / Unrecognized Well-known Attribute")]
    UnrecognizedWellKnownAttribute {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/3: a mandatory well-known attribute is missing. Data: its type code.
    #[error("UPDATE Message Error / Missing Well-known Attribute (type {type_code})")]
    MissingWellKnownAttribute {
        /// Type code of the missing attribute.
        type_code: u8,
    },
    /// 3/4: flags conflict with the type code. Data: the attribute.
    #[error("UPDATE Message Error / Attribute Flags Error")]
    AttributeFlagsError {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/5: length conflicts with the type code. Data: the attribute.
    #[error("UPDATE Message Error / Attribute Length Error")]
    AttributeLengthError {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/6: ORIGIN has an undefined value. Data: the attribute.
    #[error("UPDATE Message Error / Invalid ORIGIN Attribute")]
    InvalidOriginAttribute {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/8: NEXT_HOP is syntactically incorrect. Data: the attribute.
    #[error("UPDATE Message Error / Invalid NEXT_HOP Attribute")]
    InvalidNextHopAttribute {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/9: an optional attribute has a bad value. Data: the attribute.
    #[error("UPDATE Message Error / Optional Attribute Error")]
    OptionalAttributeError {
        /// The attribute (flags, type, length, value).
        attribute: Bytes,
    },
    /// 3/10: the NLRI field is syntactically incorrect.
    #[error("UPDATE Message Error / Invalid Network Field")]
    InvalidNetworkField,
    /// 3/11: AS_PATH is malformed.
    #[error("UPDATE Message Error / Malformed AS_PATH")]
    MalformedAsPath,
    /// 4/0: no message within the hold time.
    #[error("Hold Timer Expired")]
    HoldTimerExpired,
    /// 5/x (RFC 6608): a message the state machine did not expect.
    #[error("Finite State Machine Error / {0}")]
    FiniteStateMachine(FsmErrorSubcode),
    /// 6/x (RFC 4486): the session is closed on purpose.
    #[error("Cease / {0}")]
    Cease(Cease),
    /// 7/1 (RFC 7313): ROUTE-REFRESH with a bad length. Data: the whole message.
    #[error("ROUTE-REFRESH Message Error / Invalid Message Length")]
    RouteRefreshInvalidLength {
        /// The erroneous message.
        message: Bytes,
    },
    /// Any other code/subcode.
    #[error("{} / subcode {subcode}", code_name(*code))]
    Other {
        /// Error code.
        code: u8,
        /// Error subcode.
        subcode: u8,
        /// Data.
        data: Bytes,
    },
}

/// Subcodes of the Finite State Machine Error (RFC 6608).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsmErrorSubcode {
    /// 0: unspecified.
    Unspecified,
    /// 1: Receive Unexpected Message in OpenSent State.
    UnexpectedInOpenSent,
    /// 2: Receive Unexpected Message in OpenConfirm State.
    UnexpectedInOpenConfirm,
    /// 3: Receive Unexpected Message in Established State.
    UnexpectedInEstablished,
    /// Any other subcode.
    Other(u8),
}

impl FsmErrorSubcode {
    fn value(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::UnexpectedInOpenSent => 1,
            Self::UnexpectedInOpenConfirm => 2,
            Self::UnexpectedInEstablished => 3,
            Self::Other(v) => v,
        }
    }

    fn from_value(v: u8) -> Self {
        match v {
            0 => Self::Unspecified,
            1 => Self::UnexpectedInOpenSent,
            2 => Self::UnexpectedInOpenConfirm,
            3 => Self::UnexpectedInEstablished,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for FsmErrorSubcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unspecified => f.write_str("Unspecified Error"),
            Self::UnexpectedInOpenSent => {
                f.write_str("Receive Unexpected Message in OpenSent State")
            }
            Self::UnexpectedInOpenConfirm => {
                f.write_str("Receive Unexpected Message in OpenConfirm State")
            }
            Self::UnexpectedInEstablished => {
                f.write_str("Receive Unexpected Message in Established State")
            }
            Self::Other(v) => write!(f, "subcode {v}"),
        }
    }
}

/// Cease subcodes (RFC 4486, RFC 8538, RFC 9384) with their data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cease {
    /// 1: Maximum Number of Prefixes Reached. Data: optional AFI, SAFI, upper bound.
    MaximumPrefixes {
        /// Raw data.
        data: Bytes,
    },
    /// 2: Administrative Shutdown, with an RFC 9003 shutdown communication (may be empty).
    AdministrativeShutdown {
        /// UTF-8 text, at most 255 octets (longer text is cut at a character boundary).
        communication: String,
    },
    /// 3: Peer De-configured.
    PeerDeconfigured,
    /// 4: Administrative Reset, with an RFC 9003 shutdown communication (may be empty).
    AdministrativeReset {
        /// UTF-8 text, at most 255 octets.
        communication: String,
    },
    /// 5: Connection Rejected.
    ConnectionRejected,
    /// 6: Other Configuration Change.
    OtherConfigurationChange,
    /// 7: Connection Collision Resolution.
    ConnectionCollisionResolution,
    /// 8: Out of Resources.
    OutOfResources,
    /// 9 (RFC 8538): Hard Reset. Data: the code, subcode and data of the underlying error.
    HardReset {
        /// Raw data.
        data: Bytes,
    },
    /// 10 (RFC 9384): BFD Down.
    BfdDown,
    /// Any other subcode.
    Other {
        /// Subcode.
        subcode: u8,
        /// Data.
        data: Bytes,
    },
}

impl fmt::Display for Cease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cease::MaximumPrefixes { .. } => f.write_str("Maximum Number of Prefixes Reached"),
            Cease::AdministrativeShutdown { communication } => {
                f.write_str("Administrative Shutdown")?;
                write_communication(f, communication)
            }
            Cease::PeerDeconfigured => f.write_str("Peer De-configured"),
            Cease::AdministrativeReset { communication } => {
                f.write_str("Administrative Reset")?;
                write_communication(f, communication)
            }
            Cease::ConnectionRejected => f.write_str("Connection Rejected"),
            Cease::OtherConfigurationChange => f.write_str("Other Configuration Change"),
            Cease::ConnectionCollisionResolution => f.write_str("Connection Collision Resolution"),
            Cease::OutOfResources => f.write_str("Out of Resources"),
            Cease::HardReset { data } => {
                f.write_str("Hard Reset")?;
                if let [code, subcode, rest @ ..] = data.as_ref() {
                    let inner = NotificationError::from_parts(*code, *subcode, rest);
                    write!(f, " ({inner})")?;
                }
                Ok(())
            }
            Cease::BfdDown => f.write_str("BFD Down"),
            Cease::Other { subcode, .. } => write!(f, "subcode {subcode}"),
        }
    }
}

fn write_communication(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.is_empty() {
        Ok(())
    } else {
        write!(f, ": {text:?}")
    }
}

/// The human name of an error code.
pub fn code_name(code: u8) -> &'static str {
    match code {
        MESSAGE_HEADER_ERROR => "Message Header Error",
        OPEN_MESSAGE_ERROR => "OPEN Message Error",
        UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
        HOLD_TIMER_EXPIRED => "Hold Timer Expired",
        FSM_ERROR => "Finite State Machine Error",
        CEASE => "Cease",
        ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH Message Error",
        _ => "Unknown Error Code",
    }
}

/// RFC 9003 §2: the shutdown communication is a length octet followed by at most 255 octets of
/// UTF-8. Text is cut at a character boundary to fit.
fn encode_communication(text: &str) -> Bytes {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = text.get(..end).unwrap_or_default().as_bytes();
    let mut out = BytesMut::with_capacity(text.len() + 1);
    // At most 255 octets by construction.
    out.put_u8(u8::try_from(text.len()).unwrap_or(u8::MAX));
    out.put_slice(text);
    out.freeze()
}

/// RFC 9003 §3: a communication whose length overruns the data or that is not UTF-8 is not
/// shown as sent; we keep what can be read (lossy) rather than failing.
fn decode_communication(data: &[u8]) -> String {
    match data.split_first() {
        None => String::new(),
        Some((&len, rest)) => {
            let text = rest.get(..usize::from(len)).unwrap_or(rest);
            String::from_utf8_lossy(text).into_owned()
        }
    }
}

impl NotificationError {
    /// The error code on the wire.
    pub fn code(&self) -> u8 {
        use NotificationError::*;
        match self {
            ConnectionNotSynchronized | BadMessageLength { .. } | BadMessageType { .. } => {
                MESSAGE_HEADER_ERROR
            }
            OpenUnspecific
            | UnsupportedVersionNumber { .. }
            | BadPeerAs
            | BadBgpIdentifier
            | UnsupportedOptionalParameter
            | UnacceptableHoldTime
            | UnsupportedCapability { .. } => OPEN_MESSAGE_ERROR,
            MalformedAttributeList
            | UnrecognizedWellKnownAttribute { .. }
            | MissingWellKnownAttribute { .. }
            | AttributeFlagsError { .. }
            | AttributeLengthError { .. }
            | InvalidOriginAttribute { .. }
            | InvalidNextHopAttribute { .. }
            | OptionalAttributeError { .. }
            | InvalidNetworkField
            | MalformedAsPath => UPDATE_MESSAGE_ERROR,
            HoldTimerExpired => HOLD_TIMER_EXPIRED,
            FiniteStateMachine(_) => FSM_ERROR,
            Cease(_) => CEASE,
            RouteRefreshInvalidLength { .. } => ROUTE_REFRESH_MESSAGE_ERROR,
            Other { code, .. } => *code,
        }
    }

    /// The error subcode on the wire.
    pub fn subcode(&self) -> u8 {
        use NotificationError::*;
        match self {
            ConnectionNotSynchronized => 1,
            BadMessageLength { .. } => 2,
            BadMessageType { .. } => 3,
            OpenUnspecific => 0,
            UnsupportedVersionNumber { .. } => 1,
            BadPeerAs => 2,
            BadBgpIdentifier => 3,
            UnsupportedOptionalParameter => 4,
            UnacceptableHoldTime => 6,
            UnsupportedCapability { .. } => 7,
            MalformedAttributeList => 1,
            UnrecognizedWellKnownAttribute { .. } => 2,
            MissingWellKnownAttribute { .. } => 3,
            AttributeFlagsError { .. } => 4,
            AttributeLengthError { .. } => 5,
            InvalidOriginAttribute { .. } => 6,
            InvalidNextHopAttribute { .. } => 8,
            OptionalAttributeError { .. } => 9,
            InvalidNetworkField => 10,
            MalformedAsPath => 11,
            HoldTimerExpired => 0,
            FiniteStateMachine(s) => s.value(),
            Cease(c) => match c {
                self::Cease::MaximumPrefixes { .. } => 1,
                self::Cease::AdministrativeShutdown { .. } => 2,
                self::Cease::PeerDeconfigured => 3,
                self::Cease::AdministrativeReset { .. } => 4,
                self::Cease::ConnectionRejected => 5,
                self::Cease::OtherConfigurationChange => 6,
                self::Cease::ConnectionCollisionResolution => 7,
                self::Cease::OutOfResources => 8,
                self::Cease::HardReset { .. } => 9,
                self::Cease::BfdDown => 10,
                self::Cease::Other { subcode, .. } => *subcode,
            },
            RouteRefreshInvalidLength { .. } => 1,
            Other { subcode, .. } => *subcode,
        }
    }

    /// The data field on the wire.
    pub fn data(&self) -> Bytes {
        use NotificationError::*;
        match self {
            BadMessageLength { length } => Bytes::copy_from_slice(&length.to_be_bytes()),
            BadMessageType { message_type } => Bytes::copy_from_slice(&[*message_type]),
            UnsupportedVersionNumber { supported } => {
                Bytes::copy_from_slice(&supported.to_be_bytes())
            }
            UnsupportedCapability { capabilities } => capabilities.clone(),
            UnrecognizedWellKnownAttribute { attribute }
            | AttributeFlagsError { attribute }
            | AttributeLengthError { attribute }
            | InvalidOriginAttribute { attribute }
            | InvalidNextHopAttribute { attribute }
            | OptionalAttributeError { attribute } => attribute.clone(),
            MissingWellKnownAttribute { type_code } => Bytes::copy_from_slice(&[*type_code]),
            Cease(c) => match c {
                self::Cease::AdministrativeShutdown { communication }
                | self::Cease::AdministrativeReset { communication } => {
                    encode_communication(communication)
                }
                self::Cease::MaximumPrefixes { data }
                | self::Cease::HardReset { data }
                | self::Cease::Other { data, .. } => data.clone(),
                _ => Bytes::new(),
            },
            RouteRefreshInvalidLength { message } => message.clone(),
            Other { data, .. } => data.clone(),
            ConnectionNotSynchronized
            | OpenUnspecific
            | BadPeerAs
            | BadBgpIdentifier
            | UnsupportedOptionalParameter
            | UnacceptableHoldTime
            | MalformedAttributeList
            | InvalidNetworkField
            | MalformedAsPath
            | HoldTimerExpired
            | FiniteStateMachine(_) => Bytes::new(),
        }
    }

    /// Read a received code, subcode and data. Never fails: unknown or malformed combinations
    /// become [`NotificationError::Other`].
    pub fn from_parts(code: u8, subcode: u8, data: &[u8]) -> Self {
        use NotificationError::*;
        let bytes = || Bytes::copy_from_slice(data);
        let u16_data = || match data {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        };
        let other = || Other {
            code,
            subcode,
            data: Bytes::copy_from_slice(data),
        };
        match (code, subcode) {
            (MESSAGE_HEADER_ERROR, 1) => ConnectionNotSynchronized,
            (MESSAGE_HEADER_ERROR, 2) => match u16_data() {
                Some(length) => BadMessageLength { length },
                None => other(),
            },
            (MESSAGE_HEADER_ERROR, 3) => match data {
                [message_type] => BadMessageType {
                    message_type: *message_type,
                },
                _ => other(),
            },
            (OPEN_MESSAGE_ERROR, 0) => OpenUnspecific,
            (OPEN_MESSAGE_ERROR, 1) => match u16_data() {
                Some(supported) => UnsupportedVersionNumber { supported },
                None => other(),
            },
            (OPEN_MESSAGE_ERROR, 2) => BadPeerAs,
            (OPEN_MESSAGE_ERROR, 3) => BadBgpIdentifier,
            (OPEN_MESSAGE_ERROR, 4) => UnsupportedOptionalParameter,
            (OPEN_MESSAGE_ERROR, 6) => UnacceptableHoldTime,
            (OPEN_MESSAGE_ERROR, 7) => UnsupportedCapability {
                capabilities: bytes(),
            },
            (UPDATE_MESSAGE_ERROR, 1) => MalformedAttributeList,
            (UPDATE_MESSAGE_ERROR, 2) => UnrecognizedWellKnownAttribute { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 3) => match data {
                [type_code] => MissingWellKnownAttribute {
                    type_code: *type_code,
                },
                _ => other(),
            },
            (UPDATE_MESSAGE_ERROR, 4) => AttributeFlagsError { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 5) => AttributeLengthError { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 6) => InvalidOriginAttribute { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 8) => InvalidNextHopAttribute { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 9) => OptionalAttributeError { attribute: bytes() },
            (UPDATE_MESSAGE_ERROR, 10) => InvalidNetworkField,
            (UPDATE_MESSAGE_ERROR, 11) => MalformedAsPath,
            (HOLD_TIMER_EXPIRED, 0) => HoldTimerExpired,
            (FSM_ERROR, s) => FiniteStateMachine(FsmErrorSubcode::from_value(s)),
            (CEASE, s) => Cease(match s {
                1 => self::Cease::MaximumPrefixes { data: bytes() },
                2 => self::Cease::AdministrativeShutdown {
                    communication: decode_communication(data),
                },
                3 => self::Cease::PeerDeconfigured,
                4 => self::Cease::AdministrativeReset {
                    communication: decode_communication(data),
                },
                5 => self::Cease::ConnectionRejected,
                6 => self::Cease::OtherConfigurationChange,
                7 => self::Cease::ConnectionCollisionResolution,
                8 => self::Cease::OutOfResources,
                9 => self::Cease::HardReset { data: bytes() },
                10 => self::Cease::BfdDown,
                subcode => self::Cease::Other {
                    subcode,
                    data: bytes(),
                },
            }),
            (ROUTE_REFRESH_MESSAGE_ERROR, 1) => RouteRefreshInvalidLength { message: bytes() },
            _ => other(),
        }
    }
}
