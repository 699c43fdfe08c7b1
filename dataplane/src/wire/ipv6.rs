//! IPv6 fixed headers (RFC 8200).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Source Address (16)                       |
//! |                   Destination Address (16)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv6Addr;

use super::{be16, checksum, WireError};

pub const HEADER_LEN: usize = 40;
pub const NEXT_HEADER_ICMPV6: u8 = 58;

/// A checked view: version 6 and a payload length that fits the buffer.
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + usize::from(be16(b, 4)) > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 4))
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[6]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[7]
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        let o: [u8; 16] = self.buf.as_ref()[8..24].try_into().unwrap_or_default();
        Ipv6Addr::from(o)
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        let o: [u8; 16] = self.buf.as_ref()[24..40].try_into().unwrap_or_default();
        Ipv6Addr::from(o)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        let b = self.buf.as_mut();
        b[7] = b[7].wrapping_sub(1);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.payload_len();
        &mut self.buf.as_mut()[HEADER_LEN..HEADER_LEN + len]
    }
}

/// Writes a 40-byte header at the start of `buf`.
pub fn write_header(
    buf: &mut [u8],
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
) {
    buf[0] = 0x60;
    buf[1..4].fill(0);
    buf[4..6].copy_from_slice(&payload_len.to_be_bytes());
    buf[6] = next_header;
    buf[7] = hop_limit;
    buf[8..24].copy_from_slice(&src.octets());
    buf[24..40].copy_from_slice(&dst.octets());
}

/// The one's-complement sum of the upper-layer pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header_sum(src: &Ipv6Addr, dst: &Ipv6Addr, upper_len: u32, next_header: u8) -> u32 {
    let mut acc = checksum::sum(0, &src.octets());
    acc = checksum::sum(acc, &dst.octets());
    acc = checksum::sum(acc, &upper_len.to_be_bytes());
    acc.wrapping_add(u32::from(next_header))
}

/// The solicited-node multicast address of `addr` (RFC 4291 section 2.7.1).
pub fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of an IPv6 multicast address (RFC 2464 section 7).
pub fn multicast_mac(addr: &Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The EUI-64 link-local address of an interface with this MAC (RFC 4291 appendix A).
pub fn link_local_from_mac(mac: &[u8; 6]) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let mut b = [0u8; 48];
        let (s, d) = ("fd00:1::2".parse().unwrap(), "fd00:2::2".parse().unwrap());
        write_header(&mut b, 8, 17, 64, &s, &d);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 17, 64)
        );
        assert_eq!((p.src(), p.dst()), (s, d));
        p.decrement_hop_limit();
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(
            Packet::new_checked(&b[..47]).err(),
            Some(WireError::Truncated)
        );
        b[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn multicast_helpers() {
        let a: Ipv6Addr = "fd00:1::1:2:3".parse().unwrap();
        assert_eq!(
            solicited_node(&a),
            "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(&solicited_node(&a)),
            [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]
        );
        assert_eq!(
            link_local_from_mac(&[0x02, 0x11, 0x22, 0x33, 0x44, 0x55]),
            "fe80::11:22ff:fe33:4455".parse::<Ipv6Addr>().unwrap()
        );
    }
}
