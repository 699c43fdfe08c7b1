//! The pktgen signature: the first bytes of the UDP payload of every generated packet, and the
//! sans-IO classifier of received frames (ours / ARP / stray).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      magic 0x53 0x44 ("SD")   |         run (u16)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     class     |     flags     |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                    sequence number (u64, per class)           |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                  tx timestamp (u64, TSC ticks)                |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |  zero padding to frame size ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! All fields in network byte order; 22 bytes in all, so a 64-byte frame (14 Ethernet + 20
//! IPv4 + 8 UDP + 22) holds exactly one signature. `run`: random per generator start; a
//! receiver counts a packet of another run (left in a ring by the previous trial) as `stale`,
//! neither received nor lost. `class`: 0 bulk, 1 voice (others are rejected). `flags`: bit 0 = warmup (the receiver ignores the packet: not counted as
//! received, lost or stray); the other bits are sent as 0 and ignored on receipt.

/// "SD".
pub const MAGIC: [u8; 2] = *b"SD";
pub const SIGNATURE_LEN: usize = 22;
pub const FLAG_WARMUP: u8 = 0x01;

/// Ethernet (14) + IPv4 without options (20) + UDP (8).
pub const HEADERS_LEN: usize = 42;
/// The smallest frame that holds the headers and a signature.
pub const MIN_FRAME: usize = HEADERS_LEN + SIGNATURE_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Bulk = 0,
    Voice = 1,
}

impl Class {
    pub const ALL: [Class; 2] = [Class::Bulk, Class::Voice];

    pub fn name(self) -> &'static str {
        match self {
            Class::Bulk => "bulk",
            Class::Voice => "voice",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The generator run that sent it.
    pub run: u16,
    pub class: Class,
    pub warmup: bool,
    pub seq: u64,
    pub tx_tsc: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Short,
    BadMagic,
    BadClass,
}

impl Signature {
    /// Writes the signature into the first `SIGNATURE_LEN` bytes of `buf`; false if too short.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> bool {
        let Some(b) = buf.get_mut(..SIGNATURE_LEN) else {
            return false;
        };
        b[0..2].copy_from_slice(&MAGIC);
        b[2..4].copy_from_slice(&self.run.to_be_bytes());
        b[4] = self.class as u8;
        b[5] = if self.warmup { FLAG_WARMUP } else { 0 };
        b[6..14].copy_from_slice(&self.seq.to_be_bytes());
        b[14..22].copy_from_slice(&self.tx_tsc.to_be_bytes());
        true
    }

    /// Reads a signature from the start of a UDP payload.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Signature, DecodeError> {
        let b = buf.get(..SIGNATURE_LEN).ok_or(DecodeError::Short)?;
        if b[0..2] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let class = match b[4] {
            0 => Class::Bulk,
            1 => Class::Voice,
            _ => return Err(DecodeError::BadClass),
        };
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[6..14]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[14..22]);
        Ok(Signature {
            run: u16::from_be_bytes([b[2], b[3]]),
            class,
            warmup: b[5] & FLAG_WARMUP != 0,
            seq: u64::from_be_bytes(seq),
            tx_tsc: u64::from_be_bytes(ts),
        })
    }
}

/// What a received frame is, for the receive loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A pktgen packet of this run.
    Ours(Signature),
    /// A pktgen packet of another run (counted as `stale`).
    OtherRun,
    /// An ARP frame (handed to the ARP module).
    Arp,
    /// Anything else: not ours (counted as `stray`).
    Stray,
}

/// Classifies an Ethernet frame: IPv4 (any header length) / UDP whose payload starts with a
/// valid signature of run `run` is ours. Never panics, whatever the bytes.
#[inline]
pub fn classify(frame: &[u8], run: u16) -> Received {
    if frame.len() < 14 {
        return Received::Stray;
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => return Received::Arp,
        0x0800 => {}
        _ => return Received::Stray,
    }
    let ip = &frame[14..];
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return Received::Stray;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    // A fragment other than the first has no UDP header.
    let frag_off = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if ihl < 20 || frag_off != 0 {
        return Received::Stray;
    }
    let Some(udp) = ip.get(ihl..) else {
        return Received::Stray;
    };
    let Some(payload) = udp.get(8..) else {
        return Received::Stray;
    };
    match Signature::decode(payload) {
        Ok(s) if s.run == run => Received::Ours(s),
        Ok(_) => Received::OtherRun,
        Err(_) => Received::Stray,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: u16 = 0xa55a;

    fn sig() -> Signature {
        Signature {
            run: RUN,
            class: Class::Voice,
            warmup: false,
            seq: 0x0102_0304_0506_0708,
            tx_tsc: 0x1112_1314_1516_1718,
        }
    }

    #[test]
    fn fits_in_a_64_byte_frame() {
        assert_eq!(MIN_FRAME, 64);
    }

    #[test]
    fn roundtrip_and_layout() {
        let mut b = [0u8; 30];
        assert!(sig().encode(&mut b));
        assert_eq!(&b[..6], b"SD\xa5\x5a\x01\x00");
        assert_eq!(&b[6..14], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &b[14..22],
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
        assert_eq!(Signature::decode(&b), Ok(sig()));
        let w = Signature {
            warmup: true,
            class: Class::Bulk,
            ..sig()
        };
        assert!(w.encode(&mut b));
        assert_eq!(b[5], FLAG_WARMUP);
        assert_eq!(Signature::decode(&b), Ok(w));
    }

    #[test]
    fn rejects_short_and_garbled() {
        let mut b = [0u8; 22];
        assert!(!sig().encode(&mut b[..21]));
        sig().encode(&mut b);
        for n in 0..22 {
            assert_eq!(Signature::decode(&b[..n]), Err(DecodeError::Short));
        }
        let mut bad = b;
        bad[0] ^= 1;
        assert_eq!(Signature::decode(&bad), Err(DecodeError::BadMagic));
        let mut bad = b;
        bad[4] = 2;
        assert_eq!(Signature::decode(&bad), Err(DecodeError::BadClass));
        // Unknown flag bits are ignored.
        let mut f = b;
        f[5] = 0xfe;
        assert!(!Signature::decode(&f).unwrap().warmup);
    }

    fn frame(ethertype: u16, proto: u8, ihl: u8) -> Vec<u8> {
        let ihl_bytes = usize::from(ihl) * 4;
        let mut f = vec![0u8; 14 + ihl_bytes + 8 + SIGNATURE_LEN];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = 0x40 | ihl;
        f[14 + 9] = proto;
        sig().encode(&mut f[14 + ihl_bytes + 8..]);
        f
    }

    #[test]
    fn classifies_frames() {
        assert_eq!(classify(&frame(0x0800, 17, 5), RUN), Received::Ours(sig()));
        assert_eq!(classify(&frame(0x0800, 17, 6), RUN), Received::Ours(sig()));
        // A packet of an earlier run (a trial before this one) is not counted as ours.
        assert_eq!(classify(&frame(0x0800, 17, 5), RUN ^ 1), Received::OtherRun);
        assert_eq!(classify(&frame(0x0800, 6, 5), RUN), Received::Stray);
        assert_eq!(classify(&frame(0x86dd, 17, 5), RUN), Received::Stray);
        assert_eq!(classify(&frame(0x0806, 0, 5), RUN), Received::Arp);
        assert_eq!(classify(&frame(0x0800, 17, 4), RUN), Received::Stray);
        let f = frame(0x0800, 17, 5);
        for n in 0..f.len() {
            assert_eq!(classify(&f[..n], RUN), Received::Stray, "truncated to {n}");
        }
    }

    /// A small xorshift generator: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 128];
        let mut ours = 0;
        for i in 0..200_000 {
            let len = (rng.next() % 129) as usize;
            for b in buf.iter_mut() {
                *b = rng.next() as u8;
            }
            // Half the time, make the frame look like IPv4/UDP with the magic in place so the
            // decoder's deeper paths are exercised too.
            if i % 2 == 0 {
                buf[12] = 8;
                buf[13] = 0;
                buf[14] = 0x40 | (buf[14] & 0x0f);
                buf[14 + 9] = 17;
                buf[20] &= 0xe0;
                buf[21] = 0;
                let ihl = usize::from(buf[14] & 0x0f) * 4;
                if ihl >= 20 && 14 + ihl + 8 + 4 <= buf.len() {
                    buf[14 + ihl + 8..14 + ihl + 10].copy_from_slice(&MAGIC);
                    buf[14 + ihl + 10..14 + ihl + 12].copy_from_slice(&RUN.to_be_bytes());
                }
            }
            if let Received::Ours(_) = classify(&buf[..len], RUN) {
                ours += 1;
            }
            let _ = Signature::decode(&buf[..len.min(40)]);
        }
        assert!(
            ours > 0,
            "the fuzz loop should reach the decoder's success path"
        );
    }
}
