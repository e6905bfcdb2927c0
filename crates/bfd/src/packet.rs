//! The BFD Control packet (RFC 5880 §4.1): exact encoding and the reception checks of §6.8.6.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! Authentication is not supported: a packet with the A bit set is discarded, as §6.8.6 requires
//! of a session that has no authentication configured.

use std::fmt;

/// Length in bytes of a Control packet without an authentication section.
pub const CONTROL_PACKET_LEN: usize = CONTROL_PACKET_LEN_U8 as usize;
/// [`CONTROL_PACKET_LEN`] as its Length field carries it.
const CONTROL_PACKET_LEN_U8: u8 = 24;

/// The only protocol version defined (RFC 5880 §4.1).
pub const VERSION: u8 = 1;

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// Session state as carried in the `Sta` field (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: the session is administratively held down.
    AdminDown,
    /// 1: the session is down or has just been created.
    Down,
    /// 2: the remote system is communicating and the session is coming up.
    Init,
    /// 3: the session is up.
    Up,
}

impl State {
    /// The 2-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// Decodes a 2-bit wire value (only the low two bits are looked at).
    pub fn from_code(code: u8) -> State {
        match code & 0x03 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code: why the sender's session last changed state (RFC 5880 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0: no diagnostic.
    None,
    /// 1: control detection time expired.
    ControlDetectionTimeExpired,
    /// 2: echo function failed.
    EchoFunctionFailed,
    /// 3: neighbor signaled session down.
    NeighborSignaledSessionDown,
    /// 4: forwarding plane reset.
    ForwardingPlaneReset,
    /// 5: path down.
    PathDown,
    /// 6: concatenated path down.
    ConcatenatedPathDown,
    /// 7: administratively down.
    AdministrativelyDown,
    /// 8: reverse concatenated path down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use; kept so that a packet re-encodes to the same bytes.
    Reserved(u8),
}

impl Diagnostic {
    /// The 5-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Reserved(code) => code & 0x1f,
        }
    }

    /// Decodes a 5-bit wire value (only the low five bits are looked at).
    pub fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Reserved(other),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::None => f.write_str("no diagnostic"),
            Diagnostic::ControlDetectionTimeExpired => {
                f.write_str("control detection time expired")
            }
            Diagnostic::EchoFunctionFailed => f.write_str("echo function failed"),
            Diagnostic::NeighborSignaledSessionDown => {
                f.write_str("neighbor signaled session down")
            }
            Diagnostic::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diagnostic::PathDown => f.write_str("path down"),
            Diagnostic::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diagnostic::AdministrativelyDown => f.write_str("administratively down"),
            Diagnostic::ReverseConcatenatedPathDown => {
                f.write_str("reverse concatenated path down")
            }
            Diagnostic::Reserved(code) => write!(f, "reserved diagnostic {code}"),
        }
    }
}

/// Why a received datagram was discarded (RFC 5880 §6.8.6). Each variant is one rule, so the
/// driver can count discards by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DiscardReason {
    /// The datagram is shorter than the 24-byte mandatory section.
    #[error("datagram of {len} bytes is shorter than a BFD Control packet (24 bytes)")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The version field is not 1.
    #[error("unsupported BFD version {version}")]
    BadVersion {
        /// The version received.
        version: u8,
    },
    /// The Length field is below the minimum (24, or 26 with the A bit set).
    #[error("length field {length} is below the minimum of {minimum}")]
    LengthTooSmall {
        /// The Length field.
        length: u8,
        /// The minimum for this packet.
        minimum: u8,
    },
    /// The Length field is larger than the UDP payload.
    #[error("length field {length} exceeds the {payload}-byte payload")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// Bytes received.
        payload: usize,
    },
    /// Detect Mult is zero.
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// The Multipoint bit is set.
    #[error("multipoint bit is set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while the sender is neither Down nor AdminDown.
    #[error("your discriminator is zero in state {state}")]
    ZeroYourDiscriminator {
        /// The sender's state.
        state: State,
    },
    /// Both Poll and Final are set, which §4.1 forbids.
    #[error("poll and final bits are both set")]
    PollAndFinal,
    /// The A bit is set; this implementation has no authentication configured.
    #[error("authentication present but not configured")]
    AuthenticationNotConfigured,
    /// Your Discriminator names no session of ours.
    #[error("your discriminator {discriminator} matches no session")]
    UnknownDiscriminator {
        /// The discriminator received.
        discriminator: u32,
    },
    /// Received with an IP TTL / hop limit below 255 (RFC 5881 §5, GTSM).
    #[error("received with TTL {ttl}, single-hop BFD requires 255")]
    TtlBelow255 {
        /// The TTL or hop limit the packet arrived with.
        ttl: u8,
    },
    /// The local session is AdminDown, which discards every packet.
    #[error("session is administratively down")]
    SessionAdminDown,
}

impl DiscardReason {
    /// A short stable name for the rule, fit for a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscardReason::Truncated { .. } => "truncated",
            DiscardReason::BadVersion { .. } => "bad_version",
            DiscardReason::LengthTooSmall { .. } => "length_too_small",
            DiscardReason::LengthExceedsPayload { .. } => "length_exceeds_payload",
            DiscardReason::ZeroDetectMult => "zero_detect_mult",
            DiscardReason::Multipoint => "multipoint",
            DiscardReason::ZeroMyDiscriminator => "zero_my_discriminator",
            DiscardReason::ZeroYourDiscriminator { .. } => "zero_your_discriminator",
            DiscardReason::PollAndFinal => "poll_and_final",
            DiscardReason::AuthenticationNotConfigured => "authentication_not_configured",
            DiscardReason::UnknownDiscriminator { .. } => "unknown_discriminator",
            DiscardReason::TtlBelow255 { .. } => "ttl_below_255",
            DiscardReason::SessionAdminDown => "session_admin_down",
        }
    }
}

/// A decoded BFD Control packet. Intervals are in microseconds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diagnostic code.
    pub diagnostic: Diagnostic,
    /// The sender's session state.
    pub state: State,
    /// Poll (P) bit: the sender requests verification of connectivity or of a parameter change.
    pub poll: bool,
    /// Final (F) bit: the packet answers a Poll.
    pub final_bit: bool,
    /// Control Plane Independent (C) bit.
    pub control_plane_independent: bool,
    /// Demand (D) bit: the sender wishes to run Demand mode.
    pub demand: bool,
    /// Detect Mult: the sender's detection time multiplier.
    pub detect_mult: u8,
    /// My Discriminator: the sender's discriminator for this session (never zero once decoded).
    pub my_discriminator: u32,
    /// Your Discriminator: the receiver's discriminator, or zero if unknown.
    pub your_discriminator: u32,
    /// Desired Min TX Interval, microseconds.
    pub desired_min_tx_us: u32,
    /// Required Min RX Interval, microseconds; zero asks the receiver to stop periodic sending.
    pub required_min_rx_us: u32,
    /// Required Min Echo RX Interval, microseconds; zero means no Echo support.
    pub required_min_echo_rx_us: u32,
}

impl ControlPacket {
    /// Encodes to the 24-byte wire form (A and M clear, Length 24).
    pub fn encode(&self) -> [u8; CONTROL_PACKET_LEN] {
        let mut out = [0u8; CONTROL_PACKET_LEN];
        out[0] = (VERSION << 5) | self.diagnostic.code();
        let mut flags = self.state.code() << 6;
        if self.poll {
            flags |= FLAG_POLL;
        }
        if self.final_bit {
            flags |= FLAG_FINAL;
        }
        if self.control_plane_independent {
            flags |= FLAG_CPI;
        }
        if self.demand {
            flags |= FLAG_DEMAND;
        }
        out[1] = flags;
        out[2] = self.detect_mult;
        out[3] = CONTROL_PACKET_LEN_U8;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        out
    }

    /// Decodes a UDP payload and applies the session-independent checks of RFC 5880 §6.8.6, in
    /// the RFC's order. Never panics, whatever the input.
    pub fn decode(payload: &[u8]) -> Result<ControlPacket, DiscardReason> {
        let Some(fixed) = payload.first_chunk::<CONTROL_PACKET_LEN>() else {
            return Err(DiscardReason::Truncated { len: payload.len() });
        };
        // RFC 5880 §4.1: the six 32-bit words of the mandatory section.
        let [
            vers_diag,
            flags,
            detect_mult,
            length,
            m0,
            m1,
            m2,
            m3,
            y0,
            y1,
            y2,
            y3,
            t0,
            t1,
            t2,
            t3,
            r0,
            r1,
            r2,
            r3,
            e0,
            e1,
            e2,
            e3,
        ] = *fixed;
        let version = vers_diag >> 5;
        if version != VERSION {
            return Err(DiscardReason::BadVersion { version });
        }
        let auth = flags & FLAG_AUTH != 0;
        let minimum: u8 = if auth { 26 } else { 24 };
        if length < minimum {
            return Err(DiscardReason::LengthTooSmall { length, minimum });
        }
        if usize::from(length) > payload.len() {
            return Err(DiscardReason::LengthExceedsPayload {
                length,
                payload: payload.len(),
            });
        }
        if detect_mult == 0 {
            return Err(DiscardReason::ZeroDetectMult);
        }
        if flags & FLAG_MULTIPOINT != 0 {
            return Err(DiscardReason::Multipoint);
        }
        let my_discriminator = u32::from_be_bytes([m0, m1, m2, m3]);
        if my_discriminator == 0 {
            return Err(DiscardReason::ZeroMyDiscriminator);
        }
        let your_discriminator = u32::from_be_bytes([y0, y1, y2, y3]);
        let state = State::from_code(flags >> 6);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DiscardReason::ZeroYourDiscriminator { state });
        }
        let poll = flags & FLAG_POLL != 0;
        let final_bit = flags & FLAG_FINAL != 0;
        if poll && final_bit {
            return Err(DiscardReason::PollAndFinal);
        }
        if auth {
            return Err(DiscardReason::AuthenticationNotConfigured);
        }
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_code(vers_diag),
            state,
            poll,
            final_bit,
            control_plane_independent: flags & FLAG_CPI != 0,
            demand: flags & FLAG_DEMAND != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us: u32::from_be_bytes([t0, t1, t2, t3]),
            required_min_rx_us: u32::from_be_bytes([r0, r1, r2, r3]),
            required_min_echo_rx_us: u32::from_be_bytes([e0, e1, e2, e3]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FRR bfdd packet as seen on the wire: Up, Poll, mult 3, discriminators 0x00000001 /
    /// 0x8a2b3c4d, 300 ms / 300 ms / 50 ms.
    const UP_POLL: [u8; 24] = [
        0x20, 0xe0, 0x03, 0x18, 0x00, 0x00, 0x00, 0x01, 0x8a, 0x2b, 0x3c, 0x4d, 0x00, 0x04, 0x93,
        0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
    ];

    fn up_poll() -> ControlPacket {
        ControlPacket {
            diagnostic: Diagnostic::None,
            state: State::Up,
            poll: true,
            final_bit: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 1,
            your_discriminator: 0x8a2b_3c4d,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 50_000,
        }
    }

    #[test]
    fn decodes_and_encodes_exact_bytes() {
        assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up_poll()));
        assert_eq!(up_poll().encode(), UP_POLL);
    }

    #[test]
    fn down_packet_with_diag_and_final_round_trips() {
        let packet = ControlPacket {
            diagnostic: Diagnostic::ControlDetectionTimeExpired,
            state: State::Down,
            poll: false,
            final_bit: true,
            control_plane_independent: true,
            demand: true,
            detect_mult: 255,
            my_discriminator: 0xffff_ffff,
            your_discriminator: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 0,
            required_min_echo_rx_us: 0,
        };
        let bytes = packet.encode();
        assert_eq!(
            bytes,
            [
                0x21, 0x5a, 0xff, 0x18, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40,
                0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        assert_eq!(ControlPacket::decode(&bytes), Ok(packet));
    }

    #[test]
    fn every_state_and_diagnostic_code_round_trips() {
        for code in 0..4 {
            assert_eq!(State::from_code(code).code(), code);
        }
        for code in 0..32 {
            assert_eq!(Diagnostic::from_code(code).code(), code);
        }
        assert_eq!(Diagnostic::from_code(7), Diagnostic::AdministrativelyDown);
        assert_eq!(Diagnostic::from_code(9), Diagnostic::Reserved(9));
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut long = UP_POLL.to_vec();
        long.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(ControlPacket::decode(&long), Ok(up_poll()));
    }

    fn with(mut bytes: [u8; 24], edit: impl FnOnce(&mut [u8; 24])) -> [u8; 24] {
        edit(&mut bytes);
        bytes
    }

    #[test]
    fn discards_each_malformed_packet_with_its_reason() {
        assert_eq!(
            ControlPacket::decode(&UP_POLL[..23]),
            Err(DiscardReason::Truncated { len: 23 })
        );
        assert_eq!(
            ControlPacket::decode(&[]),
            Err(DiscardReason::Truncated { len: 0 })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[0] = 0x40)),
            Err(DiscardReason::BadVersion { version: 2 })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[3] = 23)),
            Err(DiscardReason::LengthTooSmall {
                length: 23,
                minimum: 24
            })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| {
                b[1] |= FLAG_AUTH;
                b[3] = 25;
            })),
            Err(DiscardReason::LengthTooSmall {
                length: 25,
                minimum: 26
            })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[3] = 25)),
            Err(DiscardReason::LengthExceedsPayload {
                length: 25,
                payload: 24
            })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[2] = 0)),
            Err(DiscardReason::ZeroDetectMult)
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[1] |= FLAG_MULTIPOINT)),
            Err(DiscardReason::Multipoint)
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[4..8].fill(0))),
            Err(DiscardReason::ZeroMyDiscriminator)
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[8..12].fill(0))),
            Err(DiscardReason::ZeroYourDiscriminator { state: State::Up })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| {
                b[8..12].fill(0);
                b[1] = 0x80;
            })),
            Err(DiscardReason::ZeroYourDiscriminator { state: State::Init })
        );
        assert_eq!(
            ControlPacket::decode(&with(UP_POLL, |b| b[1] |= FLAG_FINAL)),
            Err(DiscardReason::PollAndFinal)
        );
        let mut authed = with(UP_POLL, |b| {
            b[1] |= FLAG_AUTH;
            b[3] = 26;
        })
        .to_vec();
        authed.extend_from_slice(&[1, 2]);
        assert_eq!(
            ControlPacket::decode(&authed),
            Err(DiscardReason::AuthenticationNotConfigured)
        );
    }

    #[test]
    fn zero_your_discriminator_is_accepted_when_down_or_admin_down() {
        for sta in [0x00u8, 0x40] {
            let bytes = with(UP_POLL, |b| {
                b[8..12].fill(0);
                b[1] = sta;
            });
            let packet = ControlPacket::decode(&bytes).unwrap();
            assert_eq!(packet.your_discriminator, 0);
            assert_eq!(packet.state.code(), sta >> 6);
        }
    }
}
