//! VXLAN headers (RFC 7348 §5). The payload is an Ethernet frame.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! On receive the I flag must be set and every reserved bit is ignored (RFC 7348 §5); on send
//! the flags are exactly 0x08 and the reserved fields zero.

use super::WireError;

pub const HEADER_LEN: usize = 8;
/// The IANA-assigned UDP destination port (RFC 7348 §5).
pub const PORT: u16 = 4789;
/// The I flag: the VNI is valid.
pub const FLAG_I: u8 = 0x08;
/// The largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// A checked view over a VXLAN header and its payload: 8 bytes present, I flag set.
pub struct Header<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] & FLAG_I == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[0]
    }

    #[inline]
    pub fn vni(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([0, b[4], b[5], b[6]])
    }

    /// The encapsulated Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

/// Writes an 8-byte header at the start of `buf`: flags 0x08, reserved zero, the low 24 bits
/// of `vni` (the caller checks it against [`VNI_MAX`]).
#[inline]
pub fn write_header(buf: &mut [u8], vni: u32) {
    let v = vni.to_be_bytes();
    buf[0..8].copy_from_slice(&[FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse() {
        let mut b = [0xffu8; 10];
        write_header(&mut b, 0x12_3456);
        assert_eq!(&b[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let h = Header::new_checked(&b[..]).unwrap();
        assert_eq!(h.flags(), FLAG_I);
        assert_eq!(h.vni(), 0x12_3456);
        assert_eq!(h.payload(), &[0xff, 0xff]);
        write_header(&mut b, VNI_MAX);
        assert_eq!(Header::new_checked(&b[..]).unwrap().vni(), VNI_MAX);
    }

    #[test]
    fn reserved_bits_are_ignored_on_receive() {
        let b = [0xff, 0xff, 0xff, 0xff, 0, 0, 7, 0xff];
        let h = Header::new_checked(&b[..]).unwrap();
        assert_eq!(h.vni(), 7);
    }

    #[test]
    fn i_flag_required_and_length_checked() {
        let b = [0xf7, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Header::new_checked(&[0x08u8; 7][..]).err(),
            Some(WireError::Truncated)
        );
    }
}
