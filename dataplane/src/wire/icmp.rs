//! The ICMPv4 (RFC 792) and ICMPv6 (RFC 4443, RFC 4861) messages the router itself answers or
//! originates: echo, time exceeded, neighbor solicitation and advertisement.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   message body (echo: identifier, sequence, data; time        |
//! |   exceeded: unused (4) + as much of the invoking packet as    |
//! |   fits; NS/NA: flags (4) + target address (16) + options)     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Neighbor Discovery option (RFC 4861 section 4.6):
//! |     Type      |    Length (units of 8 octets)   |  value ...
//! Type 1 = source link-layer address, 2 = target link-layer address.
//! ```

use std::net::Ipv6Addr;

use super::{checksum, ipv6, MacAddr, WireError};

pub const V4_ECHO_REPLY: u8 = 0;
pub const V4_ECHO_REQUEST: u8 = 8;
pub const V4_TIME_EXCEEDED: u8 = 11;
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// Code of "destination unreachable": fragmentation needed and DF set (RFC 1191).
pub const V4_FRAG_NEEDED: u8 = 4;
pub const V6_PACKET_TOO_BIG: u8 = 2;

pub const V6_TIME_EXCEEDED: u8 = 3;
pub const V6_ECHO_REQUEST: u8 = 128;
pub const V6_ECHO_REPLY: u8 = 129;
pub const V6_NEIGHBOR_SOLICIT: u8 = 135;
pub const V6_NEIGHBOR_ADVERT: u8 = 136;

pub const ND_OPT_SOURCE_LL: u8 = 1;
pub const ND_OPT_TARGET_LL: u8 = 2;

/// NS and NA body: type, code, checksum, 4 bytes of flags/reserved, 16 bytes of target.
pub const ND_MIN_LEN: usize = 24;
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;

/// Verifies an ICMPv4 message's checksum (it covers the message alone).
pub fn v4_checksum_ok(msg: &[u8]) -> bool {
    msg.len() >= 4 && checksum::checksum(msg) == 0
}

/// Fills the checksum of an ICMPv4 message in place.
pub fn v4_fill_checksum(msg: &mut [u8]) {
    msg[2..4].fill(0);
    let c = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Verifies an ICMPv6 message's checksum (pseudo-header included).
pub fn v6_checksum_ok(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    let Ok(len) = u32::try_from(msg.len()) else {
        return false;
    };
    msg.len() >= 4
        && checksum::finish(checksum::sum(
            ipv6::pseudo_header_sum(src, dst, len, ipv6::NEXT_HEADER_ICMPV6),
            msg,
        )) == 0
}

/// Fills the checksum of an ICMPv6 message in place.
pub fn v6_fill_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &mut [u8]) {
    msg[2..4].fill(0);
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let c = checksum::finish(checksum::sum(
        ipv6::pseudo_header_sum(src, dst, len, ipv6::NEXT_HEADER_ICMPV6),
        msg,
    ));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// A neighbor solicitation or advertisement, checked for length.
pub struct NeighborMessage<'a> {
    msg: &'a [u8],
}

impl<'a> NeighborMessage<'a> {
    pub fn new_checked(msg: &'a [u8]) -> Result<Self, WireError> {
        if msg.len() < ND_MIN_LEN {
            return Err(WireError::Truncated);
        }
        if msg[1] != 0 {
            return Err(WireError::Malformed);
        }
        Ok(Self { msg })
    }

    pub fn kind(&self) -> u8 {
        self.msg[0]
    }

    pub fn flags(&self) -> u8 {
        self.msg[4]
    }

    pub fn target(&self) -> Ipv6Addr {
        let o: [u8; 16] = self.msg[8..24].try_into().unwrap_or_default();
        Ipv6Addr::from(o)
    }

    /// The link-layer address in the first option of type `kind`, if any. Options of length
    /// zero are malformed (RFC 4861 section 4.6) and end the walk.
    pub fn link_layer_option(&self, kind: u8) -> Result<Option<MacAddr>, WireError> {
        let mut rest = &self.msg[ND_MIN_LEN..];
        while rest.len() >= 2 {
            let len = usize::from(rest[1]) * 8;
            if len == 0 || len > rest.len() {
                return Err(WireError::Malformed);
            }
            if rest[0] == kind && len >= 8 {
                return Ok(rest[2..8].try_into().ok());
            }
            rest = &rest[len..];
        }
        Ok(None)
    }
}

/// Writes an NS (with source link-layer option) or NA (with target link-layer option) body of
/// 32 bytes into `msg`, checksum left to the caller (it needs the IPv6 addresses).
pub fn write_neighbor_message(
    msg: &mut [u8],
    kind: u8,
    flags: u8,
    target: &Ipv6Addr,
    mac: &MacAddr,
) -> usize {
    msg[0] = kind;
    msg[1] = 0;
    msg[2..4].fill(0);
    msg[4] = flags;
    msg[5..8].fill(0);
    msg[8..24].copy_from_slice(&target.octets());
    msg[24] = if kind == V6_NEIGHBOR_SOLICIT {
        ND_OPT_SOURCE_LL
    } else {
        ND_OPT_TARGET_LL
    };
    msg[25] = 1;
    msg[26..32].copy_from_slice(mac);
    32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_roundtrip_with_checksum() {
        let src: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let target: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let dst = ipv6::solicited_node(&target);
        let mut msg = [0u8; 32];
        write_neighbor_message(
            &mut msg,
            V6_NEIGHBOR_SOLICIT,
            0,
            &target,
            &[2, 0, 0, 0, 0, 9],
        );
        v6_fill_checksum(&src, &dst, &mut msg);
        assert!(v6_checksum_ok(&src, &dst, &msg));
        msg[10] ^= 1;
        assert!(!v6_checksum_ok(&src, &dst, &msg));
        msg[10] ^= 1;
        let ns = NeighborMessage::new_checked(&msg).unwrap();
        assert_eq!(ns.kind(), V6_NEIGHBOR_SOLICIT);
        assert_eq!(ns.target(), target);
        assert_eq!(
            ns.link_layer_option(ND_OPT_SOURCE_LL),
            Ok(Some([2, 0, 0, 0, 0, 9]))
        );
        assert_eq!(ns.link_layer_option(ND_OPT_TARGET_LL), Ok(None));
    }

    #[test]
    fn zero_length_option_is_malformed() {
        let mut msg = [0u8; 32];
        write_neighbor_message(
            &mut msg,
            V6_NEIGHBOR_SOLICIT,
            0,
            &Ipv6Addr::LOCALHOST,
            &[0; 6],
        );
        msg[25] = 0;
        let ns = NeighborMessage::new_checked(&msg).unwrap();
        assert_eq!(
            ns.link_layer_option(ND_OPT_SOURCE_LL),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn v4_checksum() {
        let mut m = [V4_ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 2, b'h', b'i'];
        v4_fill_checksum(&mut m);
        assert!(v4_checksum_ok(&m));
        m[0] = V4_ECHO_REPLY;
        assert!(!v4_checksum_ok(&m));
    }
}
