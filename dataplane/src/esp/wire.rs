//! ESP packets (RFC 4303 §2) as AES-GCM lays them out (RFC 4106 §3): an 8-byte explicit IV
//! before the ciphertext and a 16-byte ICV after it.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |               Security Parameters Index (SPI)                 | ^Int.
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |                      Sequence Number                          | |ered
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
//! |                 Initialization Vector (IV, 8 bytes)           | |   ^
//! +                                                               + |   |
//! |                                                               | |   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//! |                    Payload Data (variable)                    | |   |
//! ~                                                               ~ |   |
//! |                                                               | |Conf.
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//! |               |     Padding (0-255 bytes)                     | |ered*
//! +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//! |                               |  Pad Length   | Next Header   | v   v
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//! |         Integrity Check Value-ICV (16 bytes for AES-GCM-16)   |
//! ~                                                               ~
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!   * the IV is not encrypted; with GCM the SPI and sequence number are the AAD
//! ```
//!
//! The padding is 1, 2, 3, ... (RFC 4303 §2.4), and `payload + 2` is aligned to 4 bytes when
//! sealing. On receive the pad bytes are checked strictly, but the alignment is not (GCM is a
//! stream cipher and the ICV covers the whole ciphertext; Linux does not check it either), and
//! any pad length 0-255 is accepted (a peer may add traffic-flow-confidentiality padding).

use super::crypto::{IV_LEN, TAG_LEN};
use crate::wire::WireError;

/// SPI and sequence number.
pub const HEADER_LEN: usize = 8;
/// Header and explicit IV: where the encrypted payload starts.
pub const PAYLOAD_OFFSET: usize = HEADER_LEN + IV_LEN;
/// Pad length and next header.
pub const TRAILER_LEN: usize = 2;
/// Header, IV, ICV and a trailer with no payload and no padding.
pub const MIN_LEN: usize = PAYLOAD_OFFSET + TRAILER_LEN + TAG_LEN;
/// Bytes ESP adds to a payload of length `n`, at most: header, IV, 3 bytes of alignment
/// padding, the trailer and the ICV.
pub const MAX_OVERHEAD: usize = PAYLOAD_OFFSET + 3 + TRAILER_LEN + TAG_LEN;

/// Next header values used in tunnel mode.
pub const NEXT_HEADER_IPV4: u8 = 4;
pub const NEXT_HEADER_IPV6: u8 = 41;
/// A dummy packet for traffic flow confidentiality (RFC 4303 §2.6): drop silently.
pub const NEXT_HEADER_NONE: u8 = 59;

/// A checked view over an ESP packet (SPI first, ICV last): at least `MIN_LEN` bytes. The
/// buffer is the whole packet; nothing after the ICV.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < MIN_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buf })
    }

    #[inline]
    pub fn spi(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The low 32 bits of the sequence number (all of it without ESN).
    #[inline]
    pub fn seq_low(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    #[inline]
    pub fn iv(&self) -> [u8; IV_LEN] {
        let b = self.buf.as_ref();
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&b[HEADER_LEN..PAYLOAD_OFFSET]);
        iv
    }

    /// SPI and sequence number: the AAD without ESN.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buf.as_ref()[..HEADER_LEN]
    }

    /// Encrypted payload, padding and trailer.
    #[inline]
    pub fn ciphertext(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[PAYLOAD_OFFSET..b.len() - TAG_LEN]
    }

    #[inline]
    pub fn icv(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[b.len() - TAG_LEN..]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.buf.as_ref().len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The parts the AEAD works on, borrowed at once.
    #[inline]
    pub fn split_mut(&mut self) -> Parts<'_> {
        split_mut(self.buf.as_mut())
    }
}

/// An ESP packet taken apart for the AEAD: the header (SPI || seq low, the AAD without ESN),
/// the IV, the ciphertext (or plaintext: payload, padding, trailer) and the ICV.
#[derive(Debug, Default)]
pub struct Parts<'a> {
    pub header: &'a [u8],
    pub iv: [u8; IV_LEN],
    pub text: &'a mut [u8],
    pub icv: &'a mut [u8],
}

/// `Packet::split_mut` on a plain buffer. A buffer shorter than `MIN_LEN` gives empty parts
/// (which no AEAD call accepts), never a panic.
#[inline]
pub fn split_mut(b: &mut [u8]) -> Parts<'_> {
    if b.len() < MIN_LEN {
        return Parts::default();
    }
    let (head, rest) = b.split_at_mut(PAYLOAD_OFFSET);
    let ct_len = rest.len() - TAG_LEN;
    let (text, icv) = rest.split_at_mut(ct_len);
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&head[HEADER_LEN..]);
    Parts {
        header: &head[..HEADER_LEN],
        iv,
        text,
        icv,
    }
}

/// Writes SPI, sequence number (low 32 bits) and IV at the start of `buf` (at least
/// `PAYLOAD_OFFSET` bytes).
#[inline]
pub fn write_header(buf: &mut [u8], spi: u32, seq_low: u32, iv: &[u8; IV_LEN]) {
    buf[..4].copy_from_slice(&spi.to_be_bytes());
    buf[4..8].copy_from_slice(&seq_low.to_be_bytes());
    buf[HEADER_LEN..PAYLOAD_OFFSET].copy_from_slice(iv);
}

/// Padding for a payload of `payload_len` bytes so that payload + padding + trailer is a
/// multiple of 4 (RFC 4303 §2.4).
#[inline]
pub const fn pad_len(payload_len: usize) -> usize {
    (4 - (payload_len + TRAILER_LEN) % 4) % 4
}

/// Writes padding 1, 2, ..., `pad`, the pad length and the next header at the start of
/// `buf` (at least `pad + 2` bytes; `pad` at most 255).
#[inline]
pub fn write_trailer(buf: &mut [u8], pad: u8, next_header: u8) {
    let pad_n = usize::from(pad);
    for (i, b) in buf[..pad_n].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    buf[pad_n] = pad;
    buf[pad_n + 1] = next_header;
}

/// The decrypted trailer: where the payload ends and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Length of the payload (the inner packet in tunnel mode) at the start of the plaintext.
    pub payload_len: usize,
    pub pad_len: u8,
    pub next_header: u8,
}

/// Reads the trailer at the end of a decrypted `plaintext` (payload || padding || pad length
/// || next header) and checks every pad byte (1, 2, 3, ...).
#[inline]
pub fn parse_trailer(plaintext: &[u8]) -> Result<Trailer, WireError> {
    let n = plaintext.len();
    if n < TRAILER_LEN {
        return Err(WireError::Truncated);
    }
    let pad_len = plaintext[n - 2];
    let next_header = plaintext[n - 1];
    let Some(payload_len) = n.checked_sub(TRAILER_LEN + usize::from(pad_len)) else {
        return Err(WireError::Malformed);
    };
    let pad = &plaintext[payload_len..n - TRAILER_LEN];
    if pad
        .iter()
        .enumerate()
        .any(|(i, &b)| usize::from(b) != i + 1)
    {
        return Err(WireError::Malformed);
    }
    Ok(Trailer {
        payload_len,
        pad_len,
        next_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_aligns_payload_and_trailer() {
        for n in 0..64 {
            let p = pad_len(n);
            assert!(p < 4);
            assert_eq!((n + p + TRAILER_LEN) % 4, 0, "{n}");
        }
        assert_eq!(pad_len(62), 0);
        assert_eq!(pad_len(40), 2);
    }

    #[test]
    fn trailer_round_trip() {
        for pad in [0u8, 1, 2, 3, 17, 255] {
            let mut b = vec![0xaau8; 5 + usize::from(pad) + 2];
            write_trailer(&mut b[5..], pad, NEXT_HEADER_IPV6);
            let t = parse_trailer(&b).unwrap();
            assert_eq!(
                t,
                Trailer {
                    payload_len: 5,
                    pad_len: pad,
                    next_header: NEXT_HEADER_IPV6
                }
            );
        }
    }

    #[test]
    fn trailer_pad_bytes_are_checked() {
        let mut b = vec![0u8; 10];
        write_trailer(&mut b[4..], 4, NEXT_HEADER_IPV4);
        assert!(parse_trailer(&b).is_ok());
        for i in 4..8 {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert_eq!(parse_trailer(&c), Err(WireError::Malformed), "{i}");
        }
        // Pad length longer than the plaintext.
        assert_eq!(parse_trailer(&[1, 2, 9, 4]), Err(WireError::Malformed));
        // Pad length that eats all of it: an empty payload is well formed.
        assert_eq!(parse_trailer(&[1, 2, 2, 4]).unwrap().payload_len, 0);
        assert_eq!(parse_trailer(&[4]), Err(WireError::Truncated));
        assert_eq!(parse_trailer(&[]), Err(WireError::Truncated));
    }

    #[test]
    fn view_fields() {
        let mut b = vec![0u8; MIN_LEN + 4];
        write_header(&mut b, 0x1234_5678, 0x9abc_def0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let n = b.len();
        b[n - TAG_LEN..].fill(0xee);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.spi(), 0x1234_5678);
        assert_eq!(p.seq_low(), 0x9abc_def0);
        assert_eq!(p.iv(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            p.header(),
            &[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]
        );
        assert_eq!(p.ciphertext().len(), 6);
        assert_eq!(p.icv(), &[0xee; TAG_LEN]);
        let parts = p.split_mut();
        assert_eq!(
            parts.header,
            &[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]
        );
        assert_eq!(parts.iv, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((parts.text.len(), parts.icv.len()), (6, TAG_LEN));
        assert_eq!(
            Packet::new_checked(&b[..MIN_LEN - 1]).err(),
            Some(WireError::Truncated)
        );
        assert!(Packet::new_checked(&b[..MIN_LEN]).is_ok());
        let parts = split_mut(&mut b[..MIN_LEN - 1]);
        assert!(parts.header.is_empty() && parts.text.is_empty() && parts.icv.is_empty());
    }
}
