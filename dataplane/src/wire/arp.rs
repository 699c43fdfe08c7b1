//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Hardware type = 1 (Ethernet) |   Protocol type = 0x0800      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  HLEN = 6     |  PLEN = 4     |  Operation (1 request, 2 reply)|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Sender hardware address (6)  ...  Sender protocol address (4)|
//! |  Target hardware address (6)  ...  Target protocol address (4)|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use super::{be16, ethernet, MacAddr, WireError, BROADCAST_MAC};

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// A checked view over an ARP packet (Ethernet/IPv4 only; anything else is `Malformed`).
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != ethernet::ETHERTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Malformed);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        self.buf.as_ref()[8..14].try_into().unwrap_or_default()
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        self.buf.as_ref()[18..24].try_into().unwrap_or_default()
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// Writes an ARP packet body (28 bytes) into `buf`.
pub fn write(
    buf: &mut [u8],
    op: u16,
    sender_mac: &MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: &MacAddr,
    target_ip: Ipv4Addr,
) {
    buf[0..2].copy_from_slice(&1u16.to_be_bytes());
    buf[2..4].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
    buf[4] = 6;
    buf[5] = 4;
    buf[6..8].copy_from_slice(&op.to_be_bytes());
    buf[8..14].copy_from_slice(sender_mac);
    buf[14..18].copy_from_slice(&sender_ip.octets());
    buf[18..24].copy_from_slice(target_mac);
    buf[24..28].copy_from_slice(&target_ip.octets());
}

/// Length of a whole ARP frame as sent (Ethernet header + ARP, padded to the 60-byte minimum).
pub const FRAME_LEN: usize = 60;

/// Builds a broadcast who-has request for `target_ip` into `buf` (>= 60 bytes); returns the
/// frame length.
pub fn build_request(
    buf: &mut [u8],
    src_mac: &MacAddr,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> usize {
    ethernet::write_header(buf, &BROADCAST_MAC, src_mac, ethernet::ETHERTYPE_ARP);
    write(
        &mut buf[ethernet::HEADER_LEN..],
        OP_REQUEST,
        src_mac,
        src_ip,
        &[0; 6],
        target_ip,
    );
    buf[ethernet::HEADER_LEN + PACKET_LEN..FRAME_LEN].fill(0);
    FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip() {
        let mut buf = [0xaau8; 64];
        let n = build_request(
            &mut buf,
            &[2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        assert_eq!(n, 60);
        let frame = ethernet::Frame::new_checked(&buf[..n]).unwrap();
        assert_eq!(frame.dst(), BROADCAST_MAC);
        assert_eq!(frame.ethertype(), ethernet::ETHERTYPE_ARP);
        let arp = Packet::new_checked(frame.payload()).unwrap();
        assert_eq!(arp.operation(), OP_REQUEST);
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(arp.sender_mac(), [2, 0, 0, 0, 0, 1]);
        assert!(buf[42..60].iter().all(|&b| b == 0), "padding zeroed");
    }

    #[test]
    fn rejects_non_ipv4_arp() {
        let mut buf = [0u8; 28];
        write(
            &mut buf,
            OP_REQUEST,
            &[0; 6],
            Ipv4Addr::UNSPECIFIED,
            &[0; 6],
            Ipv4Addr::UNSPECIFIED,
        );
        buf[5] = 16; // PLEN of IPv6
        assert_eq!(
            Packet::new_checked(&buf[..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Packet::new_checked(&buf[..27]).err(),
            Some(WireError::Truncated)
        );
    }
}
