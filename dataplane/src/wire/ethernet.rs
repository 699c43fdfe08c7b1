//! Ethernet II frames (IEEE 802.3), with one optional 802.1Q tag recognised.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Destination MAC (6 octets)                   |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                    Source MAC (6 octets)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          EtherType            |  payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::{be16, MacAddr, WireError};

pub const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// A checked view over an Ethernet frame.
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn dst(&self) -> MacAddr {
        self.buf.as_ref()[0..6].try_into().unwrap_or_default()
    }

    #[inline]
    pub fn src(&self) -> MacAddr {
        self.buf.as_ref()[6..12].try_into().unwrap_or_default()
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), 12)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: &MacAddr) {
        self.buf.as_mut()[0..6].copy_from_slice(mac);
    }

    #[inline]
    pub fn set_src(&mut self, mac: &MacAddr) {
        self.buf.as_mut()[6..12].copy_from_slice(mac);
    }

    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buf.as_mut()[12..14].copy_from_slice(&ethertype.to_be_bytes());
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
}

/// Writes an Ethernet header at the start of `buf` (which must hold at least 14 bytes).
pub fn write_header(buf: &mut [u8], dst: &MacAddr, src: &MacAddr, ethertype: u16) {
    buf[0..6].copy_from_slice(dst);
    buf[6..12].copy_from_slice(src);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// True for group (multicast and broadcast) addresses: the I/G bit of the first octet.
#[inline]
pub fn is_multicast(mac: &MacAddr) -> bool {
    mac[0] & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rewrite() {
        let mut f = [0u8; 20];
        write_header(
            &mut f,
            &[1, 2, 3, 4, 5, 6],
            &[8, 9, 10, 11, 12, 13],
            ETHERTYPE_IPV4,
        );
        let mut frame = Frame::new_checked(&mut f[..]).unwrap();
        assert_eq!(frame.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(frame.src(), [8, 9, 10, 11, 12, 13]);
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(frame.payload().len(), 6);
        frame.set_dst(&[0xff; 6]);
        assert!(is_multicast(&frame.dst()));
        assert!(!is_multicast(&frame.src()));
    }

    #[test]
    fn too_short() {
        assert_eq!(
            Frame::new_checked(&[0u8; 13][..]).err(),
            Some(WireError::Truncated)
        );
    }
}
