//! UDP headers (RFC 768) and their checksum over IPv4 and IPv6.
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |                 |                 |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |
//! |          data octets ...
//! +---------------- ...
//! ```
//!
//! Checksum policy (used by the overlay):
//! - IPv4: a zero checksum means "none" (RFC 768). VXLAN senders usually send zero over IPv4
//!   (RFC 7348 §5), and so does `sdwand`: the ESP ICV already protects the payload. A
//!   non-zero checksum is verified on receive.
//! - IPv6: the checksum is mandatory (RFC 8200 §8.1). RFC 6935/6936 allow zero for tunnel
//!   protocols, but only between endpoints configured for it; `sdwand` computes it on send and
//!   requires a valid one on receive ([`verify_ipv6`] refuses zero), so any RFC 8200 host or
//!   middlebox on the path sees a well-formed datagram.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{be16, checksum, ipv4, ipv6, WireError};

pub const HEADER_LEN: usize = 8;

/// A checked view over a UDP datagram: the buffer holds the 8-byte header, and the length
/// field is at least 8 and fits the buffer (the buffer may be longer; [`Datagram::payload`]
/// stops at the length field).
pub struct Datagram<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(b, 4));
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), 0)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }

    /// The length field: header and payload.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 4))
    }

    /// Never true for a checked view (the length is at least the header's); for clippy.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }

    /// The whole datagram (header and payload) up to the length field.
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        &self.buf.as_ref()[..self.len()]
    }

    /// The bytes after the header, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.len()]
    }
}

/// Writes an 8-byte header at the start of `buf`.
#[inline]
pub fn write_header(buf: &mut [u8], src_port: u16, dst_port: u16, len: u16, checksum: u16) {
    buf[0..2].copy_from_slice(&src_port.to_be_bytes());
    buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
    buf[4..6].copy_from_slice(&len.to_be_bytes());
    buf[6..8].copy_from_slice(&checksum.to_be_bytes());
}

/// The checksum over a pseudo-header sum and the datagram, the checksum field itself left
/// out (so it may hold anything); a result of zero is sent as 0xffff (RFC 768).
#[inline]
fn compute(pseudo: u32, datagram: &[u8]) -> u16 {
    let head = &datagram[..datagram.len().min(6)];
    let acc = checksum::sum(pseudo, head);
    let acc = checksum::sum(acc, datagram.get(HEADER_LEN..).unwrap_or_default());
    match checksum::finish(acc) {
        0 => 0xffff,
        c => c,
    }
}

/// The IPv4 pseudo-header sum (RFC 768): source, destination, zero, protocol 17, UDP length.
#[inline]
fn ipv4_pseudo_sum(src: &Ipv4Addr, dst: &Ipv4Addr, udp_len: usize) -> u32 {
    let acc = checksum::sum(0, &src.octets());
    let acc = checksum::sum(acc, &dst.octets());
    acc.wrapping_add(u32::from(ipv4::PROTO_UDP))
        .wrapping_add(udp_len as u32 & 0xffff)
}

/// The checksum field value for `datagram` (header and payload, its checksum field ignored)
/// sent from `src` to `dst` over IPv4.
#[inline]
pub fn ipv4_checksum(src: &Ipv4Addr, dst: &Ipv4Addr, datagram: &[u8]) -> u16 {
    compute(ipv4_pseudo_sum(src, dst, datagram.len()), datagram)
}

/// The checksum field value for `datagram` sent from `src` to `dst` over IPv6 (RFC 8200 §8.1).
#[inline]
pub fn ipv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, datagram: &[u8]) -> u16 {
    let pseudo = ipv6::pseudo_header_sum(src, dst, datagram.len() as u32, ipv4::PROTO_UDP);
    compute(pseudo, datagram)
}

/// Over IPv4: true when the checksum field is zero (no checksum) or verifies.
#[inline]
pub fn verify_ipv4(src: &Ipv4Addr, dst: &Ipv4Addr, datagram: &[u8]) -> bool {
    match datagram.get(6..8) {
        Some([0, 0]) => true,
        Some(f) => u16::from_be_bytes([f[0], f[1]]) == ipv4_checksum(src, dst, datagram),
        None => false,
    }
}

/// Over IPv6: true only when the checksum field is non-zero and verifies (see the module
/// documentation for why zero is refused).
#[inline]
pub fn verify_ipv6(src: &Ipv6Addr, dst: &Ipv6Addr, datagram: &[u8]) -> bool {
    match datagram.get(6..8) {
        Some([0, 0]) | None => false,
        Some(f) => u16::from_be_bytes([f[0], f[1]]) == ipv6_checksum(src, dst, datagram),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_fields_and_payload_stops_at_length() {
        let mut b = [0u8; 16];
        write_header(&mut b, 49152, 4789, 12, 0);
        b[8..12].copy_from_slice(b"abcd");
        let d = Datagram::new_checked(&b[..]).unwrap();
        assert_eq!(d.src_port(), 49152);
        assert_eq!(d.dst_port(), 4789);
        assert_eq!(d.len(), 12);
        assert!(!d.is_empty());
        assert_eq!(d.checksum(), 0);
        assert_eq!(d.payload(), b"abcd");
        assert_eq!(d.datagram().len(), 12);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(
            Datagram::new_checked(&[0u8; 7][..]).err(),
            Some(WireError::Truncated)
        );
        let mut b = [0u8; 12];
        write_header(&mut b, 1, 2, 7, 0);
        assert_eq!(
            Datagram::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        write_header(&mut b, 1, 2, 13, 0);
        assert_eq!(
            Datagram::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
    }

    /// The checksum checked by summing the whole pseudo-header and datagram by hand: the
    /// one's-complement sum including the checksum field must be all ones.
    #[test]
    fn ipv4_checksum_verifies_independently() {
        for len in [8usize, 9, 20, 101] {
            let mut b: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let (src, dst) = (v4("198.18.1.1"), v4("198.18.2.1"));
            write_header(&mut b, 50000, 4789, len as u16, 0xdead);
            let c = ipv4_checksum(&src, &dst, &b);
            b[6..8].copy_from_slice(&c.to_be_bytes());
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(len as u16).to_be_bytes());
            pseudo.extend_from_slice(&b);
            assert_eq!(checksum::checksum(&pseudo), 0, "len {len}");
            assert!(verify_ipv4(&src, &dst, &b));
            b[len - 1] ^= 0x40;
            assert!(!verify_ipv4(&src, &dst, &b));
            b[6..8].fill(0);
            assert!(verify_ipv4(&src, &dst, &b), "zero = no checksum over IPv4");
        }
    }

    #[test]
    fn ipv6_checksum_verifies_and_zero_is_refused() {
        for len in [8usize, 33, 200] {
            let mut b: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
            let (src, dst) = (v6("fd00:ff:1::1"), v6("fd00:ff:2::1"));
            write_header(&mut b, 50000, 4789, len as u16, 0);
            let c = ipv6_checksum(&src, &dst, &b);
            assert_ne!(c, 0);
            b[6..8].copy_from_slice(&c.to_be_bytes());
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&(len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            pseudo.extend_from_slice(&b);
            assert_eq!(checksum::checksum(&pseudo), 0, "len {len}");
            assert!(verify_ipv6(&src, &dst, &b));
            b[9 % len] ^= 1;
            assert!(!verify_ipv6(&src, &dst, &b));
            b[6..8].fill(0);
            assert!(!verify_ipv6(&src, &dst, &b), "zero refused over IPv6");
        }
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Find a datagram whose checksum computes to zero by choosing its last word.
        let (src, dst) = (v4("10.0.0.1"), v4("10.0.0.2"));
        let mut b = [0u8; 10];
        write_header(&mut b, 1, 2, 10, 0);
        let partial = checksum::sum(ipv4_pseudo_sum(&src, &dst, 10), &b[..6]);
        // The word that makes the folded sum 0xffff (checksum 0).
        let mut acc = partial;
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        let w = 0xffff - acc as u16;
        b[8..10].copy_from_slice(&w.to_be_bytes());
        assert_eq!(ipv4_checksum(&src, &dst, &b), 0xffff);
    }
}
