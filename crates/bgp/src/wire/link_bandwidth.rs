//! The BGP link-bandwidth extended community (draft-ietf-idr-link-bandwidth): the 8 bytes that
//! make routers such as FRR weight ECMP next hops.
//!
//! Layout: type 0x40 (two-octet-AS-specific, non-transitive), subtype 0x04, the AS in two
//! octets (AS_TRANS when it does not fit), then the bandwidth in bytes per second as an
//! IEEE-754 single-precision float, all big-endian.

use super::open::AS_TRANS;

/// Type octet: two-octet-AS-specific, non-transitive (0x00 with the transitive bit set).
pub const LINK_BANDWIDTH_TYPE: u8 = 0x40;
/// Subtype octet of the link-bandwidth community.
pub const LINK_BANDWIDTH_SUBTYPE: u8 = 0x04;

/// Encodes a link-bandwidth extended community for `asn` (AS_TRANS when above 65535) carrying
/// `bytes_per_second`.
pub fn link_bandwidth_community(asn: u32, bytes_per_second: f32) -> [u8; 8] {
    let as2 = u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes();
    let bw = bytes_per_second.to_be_bytes();
    [
        LINK_BANDWIDTH_TYPE,
        LINK_BANDWIDTH_SUBTYPE,
        as2[0],
        as2[1],
        bw[0],
        bw[1],
        bw[2],
        bw[3],
    ]
}

/// The community for a bandwidth in bits per second (the unit of the decision), converted to
/// the bytes per second the community carries.
// The community holds an IEEE-754 single: rounding to the nearest f32 is the encoding (routers
// compare ratios); u64::MAX / 8 is far below f32::MAX, so nothing overflows.
#[allow(clippy::cast_possible_truncation)]
pub fn link_bandwidth_community_bps(asn: u32, bits_per_second: u64) -> [u8; 8] {
    link_bandwidth_community(asn, (bits_per_second as f64 / 8.0) as f32)
}

/// Reads a link-bandwidth community: `(two-octet AS, bytes per second)`, or None for any other
/// extended community (either transitivity is accepted, as routers do).
pub fn decode_link_bandwidth(community: &[u8; 8]) -> Option<(u16, f32)> {
    let [t, sub, a0, a1, b0, b1, b2, b3] = *community;
    ((t & !0x40) == 0x00 && sub == LINK_BANDWIDTH_SUBTYPE).then(|| {
        (
            u16::from_be_bytes([a0, a1]),
            f32::from_be_bytes([b0, b1, b2, b3]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_value_encodes_to_the_exact_bytes() {
        // 125000 bytes/s (1 Mbps) from AS 64501, as FRR showed it: LB:64501:125000.
        // 125000 = 0x47F42400 in IEEE-754 single precision.
        assert_eq!(
            link_bandwidth_community(64501, 125_000.0),
            [0x40, 0x04, 0xFB, 0xF5, 0x47, 0xF4, 0x24, 0x00]
        );
        // 375000 = 0x48B71B00.
        assert_eq!(
            link_bandwidth_community(64501, 375_000.0),
            [0x40, 0x04, 0xFB, 0xF5, 0x48, 0xB7, 0x1B, 0x00]
        );
    }

    #[test]
    fn a_four_octet_as_becomes_as_trans() {
        // 23456 = 0x5BA0.
        assert_eq!(
            link_bandwidth_community(4_200_000_000, 125_000.0),
            [0x40, 0x04, 0x5B, 0xA0, 0x47, 0xF4, 0x24, 0x00]
        );
        assert_eq!(
            link_bandwidth_community(65_536, 1.0),
            [0x40, 0x04, 0x5B, 0xA0, 0x3F, 0x80, 0x00, 0x00]
        );
        // The largest two-octet AS is kept.
        assert_eq!(link_bandwidth_community(65_535, 0.0)[2..4], [0xFF, 0xFF]);
    }

    #[test]
    fn bits_per_second_are_divided_by_eight() {
        assert_eq!(
            link_bandwidth_community_bps(64501, 3_000_000),
            link_bandwidth_community(64501, 375_000.0)
        );
        // 10 Gbps per endpoint × 3 = 3.75e9 bytes/s = 0x4F5F8476 (rounded to single precision).
        assert_eq!(
            link_bandwidth_community_bps(1, 30_000_000_000),
            [0x40, 0x04, 0x00, 0x01, 0x4F, 0x5F, 0x84, 0x76]
        );
    }

    #[test]
    fn decoding_reverses_encoding_and_ignores_other_communities() {
        let c = link_bandwidth_community(64501, 250_000.0);
        assert_eq!(decode_link_bandwidth(&c), Some((64501, 250_000.0)));
        let transitive = [0x00, 0x04, 0x00, 0x01, 0x47, 0xF4, 0x24, 0x00];
        assert_eq!(decode_link_bandwidth(&transitive), Some((1, 125_000.0)));
        // Route target (type 0x00, subtype 0x02).
        assert_eq!(decode_link_bandwidth(&[0, 2, 0, 1, 0, 0, 0, 1]), None);
        // IPv4-address-specific (type 0x01) with subtype 4 is not link bandwidth.
        assert_eq!(decode_link_bandwidth(&[1, 4, 0, 1, 0, 0, 0, 1]), None);
    }
}
