//! Path probes between two appliances (the multipath issue): the message, sans-IO. Each
//! appliance sends requests on every path (a pair of circuits) and answers the other's; the
//! requester learns the round-trip time, and from the sequence numbers the loss. Probes are
//! authenticated (AES-GMAC: AES-GCM over an empty text, the message as AAD) with a key per
//! direction, so an internet-facing circuit accepts only probes from known peers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         magic "SDWP"                          |
//! +---------------+---------------+---------------+---------------+
//! |   version 1   |  kind (1 req, |     flags     |   reserved    |
//! |               |   2 reply)    | (bit 0: busy) |               |
//! +---------------+---------------+---------------+---------------+
//! | sender's circ.| receiver's c. |       transport domain        |
//! +---------------+---------------+-------------------------------+
//! |                 sender's epoch (random per start)             |
//! +---------------------------------------------------------------+
//! |               message counter (64 bits, the GCM IV)           |
//! +---------------------------------------------------------------+
//! |               sequence number (a reply: the request's)        |
//! +---------------------------------------------------------------+
//! |         responder's hold time (ns; a reply: rx to tx)         |
//! +---------------------------------------------------------------+
//! |             sender's timestamp (ns, 64 bits)                  |
//! +---------------------------------------------------------------+
//! |   echoed timestamp (ns, 64 bits; a reply: the request's)      |
//! +---------------------------------------------------------------+
//! |                   authentication tag (16 bytes)               |
//! +---------------------------------------------------------------+
//! ```
//!
//! # Keys and nonces
//! The key of a direction is derived per start of its sender ([`derive_key`]: HKDF-SHA256 over
//! the direction's base key and the sender's random epoch, which the message carries), and the
//! GCM nonce is its salt and the sender's 64-bit message counter: no nonce repeats under a
//! key, across paths, kinds and restarts alike. The receiver derives the sender's key when it
//! first sees an epoch. The busy flag lets a responder say it is shedding load, so the
//! requester does not read its own side's overload as loss on the underlay.

use std::fmt;

use crate::esp::{AeadKey, Backend, KeyError, Suite};

pub const MAGIC: [u8; 4] = *b"SDWP";
pub const VERSION: u8 = 1;
/// Bytes of a probe, tag included.
pub const LEN: usize = 64;
const TAG_AT: usize = LEN - 16;

/// Request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request = 1,
    Reply = 2,
}

/// A probe's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub kind: Kind,
    /// The responder is shedding load (its replies may be late or missing for that reason).
    pub busy: bool,
    /// The sender's circuit index and the receiver's: the path.
    pub sender_circuit: u8,
    pub receiver_circuit: u8,
    pub domain: u16,
    /// The sender's epoch: its key is derived from it.
    pub epoch: u32,
    /// The sender's message counter under that key (the nonce).
    pub counter: u64,
    pub seq: u32,
    /// A reply: how long the responder held the request.
    pub hold_ns: u32,
    pub sent_ns: u64,
    /// A reply: the request's `sent_ns`.
    pub echoed_ns: u64,
}

/// Why a received probe was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    /// Not a probe: wrong length, magic or version.
    Malformed,
    /// An unknown kind.
    BadKind,
    /// The tag did not verify: not from the peer this key belongs to, or altered.
    AuthFailed,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeError::Malformed => "malformed probe",
            ProbeError::BadKind => "unknown probe kind",
            ProbeError::AuthFailed => "probe authentication failed",
        })
    }
}

impl std::error::Error for ProbeError {}

/// The key a sender with `epoch` uses for a direction whose base keying material is `base`
/// (any length; the ESP key || salt of the peer's SA in that direction): HKDF-SHA256 with the
/// salt "sdwan probe v1" and the epoch as info, expanded to an AES-128 key and a 4-byte salt.
pub fn derive_key(backend: Backend, base: &[u8], epoch: u32) -> Result<AeadKey, KeyError> {
    use aws_lc_rs::hkdf;
    struct Len20;
    impl hkdf::KeyType for Len20 {
        fn len(&self) -> usize {
            20
        }
    }
    let mut out = zeroize::Zeroizing::new([0u8; 20]);
    let info = epoch.to_be_bytes();
    let info = [&info[..]];
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"sdwan probe v1")
        .extract(base)
        .expand(&info, Len20)
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| KeyError::Rejected)?;
    AeadKey::new(backend, Suite::Aes128Gcm, &out[..])
}

/// The epoch of a probe, before it is verified (to find the sender's key); `None`: not a
/// probe.
pub fn peek_epoch(b: &[u8]) -> Option<u32> {
    if b.len() != LEN || b[0..4] != MAGIC || b[4] != VERSION {
        return None;
    }
    Some(u32::from_be_bytes([b[12], b[13], b[14], b[15]]))
}

impl Probe {
    /// Writes the probe into `out` (at least [`LEN`] bytes) and authenticates it with `key`
    /// (the sender's key of this epoch, whose nonce is `self.counter`: never reuse one);
    /// returns the length, or `None` when `out` is too short or the AEAD refused.
    pub fn write(&self, key: &AeadKey, out: &mut [u8]) -> Option<usize> {
        let b = out.get_mut(..LEN)?;
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = self.kind as u8;
        b[6] = u8::from(self.busy);
        b[7] = 0;
        b[8] = self.sender_circuit;
        b[9] = self.receiver_circuit;
        b[10..12].copy_from_slice(&self.domain.to_be_bytes());
        b[12..16].copy_from_slice(&self.epoch.to_be_bytes());
        b[16..24].copy_from_slice(&self.counter.to_be_bytes());
        b[24..28].copy_from_slice(&self.seq.to_be_bytes());
        b[28..32].copy_from_slice(&self.hold_ns.to_be_bytes());
        b[32..40].copy_from_slice(&self.sent_ns.to_be_bytes());
        b[40..48].copy_from_slice(&self.echoed_ns.to_be_bytes());
        let (msg, tag) = b.split_at_mut(TAG_AT);
        key.seal(&self.counter.to_be_bytes(), msg, &mut [], tag)
            .then_some(LEN)
    }

    /// Reads and verifies a probe with `key` (the peer's key of the probe's epoch). Never
    /// panics, whatever the bytes.
    pub fn read(key: &AeadKey, b: &[u8]) -> Result<Probe, ProbeError> {
        if b.len() != LEN || b[0..4] != MAGIC || b[4] != VERSION {
            return Err(ProbeError::Malformed);
        }
        let kind = match b[5] {
            1 => Kind::Request,
            2 => Kind::Reply,
            _ => return Err(ProbeError::BadKind),
        };
        let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let be64 = |at: usize| (u64::from(be32(at)) << 32) | u64::from(be32(at + 4));
        let p = Probe {
            kind,
            busy: b[6] & 1 != 0,
            sender_circuit: b[8],
            receiver_circuit: b[9],
            domain: u16::from_be_bytes([b[10], b[11]]),
            epoch: be32(12),
            counter: be64(16),
            seq: be32(24),
            hold_ns: be32(28),
            sent_ns: be64(32),
            echoed_ns: be64(40),
        };
        if !key.open(
            &p.counter.to_be_bytes(),
            &b[..TAG_AT],
            &mut [],
            &b[TAG_AT..],
        ) {
            return Err(ProbeError::AuthFailed);
        }
        Ok(p)
    }

    /// The reply to this request, sent by a responder of `epoch` with message counter
    /// `counter` at `now_ns`, after holding it `hold_ns`.
    pub fn reply(&self, epoch: u32, counter: u64, now_ns: u64, hold_ns: u32, busy: bool) -> Probe {
        Probe {
            kind: Kind::Reply,
            busy,
            sender_circuit: self.receiver_circuit,
            receiver_circuit: self.sender_circuit,
            domain: self.domain,
            epoch,
            counter,
            seq: self.seq,
            hold_ns,
            sent_ns: now_ns,
            echoed_ns: self.sent_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::{Backend, Suite};
    use crate::testing::Rng;

    fn key(b: u8, backend: Backend) -> AeadKey {
        AeadKey::new(backend, Suite::Aes128Gcm, &[b; 20]).unwrap()
    }

    fn request() -> Probe {
        Probe {
            kind: Kind::Request,
            busy: false,
            sender_circuit: 2,
            receiver_circuit: 5,
            domain: 7,
            epoch: 0xdead_beef,
            counter: 12,
            seq: 41,
            hold_ns: 0,
            sent_ns: 1_234_567_890_123,
            echoed_ns: 0,
        }
    }

    #[test]
    fn round_trip_on_every_backend_and_across_them() {
        for a in Backend::ALL {
            for b in Backend::ALL {
                let mut buf = [0u8; 64];
                let n = request().write(&key(1, a), &mut buf).unwrap();
                assert_eq!(n, LEN);
                assert_eq!(&buf[0..4], b"SDWP");
                assert_eq!(
                    Probe::read(&key(1, b), &buf[..n]),
                    Ok(request()),
                    "{a:?} -> {b:?}"
                );
                let reply = request().reply(77, 3, 99, 1500, true);
                let n = reply.write(&key(2, a), &mut buf).unwrap();
                let back = Probe::read(&key(2, b), &buf[..n]).unwrap();
                assert_eq!(back, reply);
                assert_eq!(
                    (back.echoed_ns, back.sender_circuit, back.busy),
                    (request().sent_ns, 5, true)
                );
            }
        }
    }

    #[test]
    fn wrong_key_and_every_altered_byte_are_refused() {
        let mut buf = [0u8; LEN];
        request()
            .write(&key(1, Backend::default()), &mut buf)
            .unwrap();
        assert_eq!(
            Probe::read(&key(9, Backend::default()), &buf),
            Err(ProbeError::AuthFailed)
        );
        for i in 0..LEN {
            let mut bad = buf;
            bad[i] ^= 0x10;
            assert!(
                Probe::read(&key(1, Backend::default()), &bad).is_err(),
                "byte {i}"
            );
        }
        assert_eq!(
            Probe::read(&key(1, Backend::default()), &buf[..LEN - 1]),
            Err(ProbeError::Malformed)
        );
        assert!(request()
            .write(&key(1, Backend::default()), &mut [0u8; LEN - 1])
            .is_none());
    }

    #[test]
    fn keys_differ_by_epoch_and_base_and_the_epoch_is_readable_before_verifying() {
        let be = Backend::default();
        let k1 = derive_key(be, &[1; 20], 1).unwrap();
        let mut buf = [0u8; LEN];
        let mut p = request();
        p.epoch = 1;
        p.write(&k1, &mut buf).unwrap();
        assert_eq!(peek_epoch(&buf), Some(1));
        assert_eq!(
            Probe::read(&derive_key(be, &[1; 20], 1).unwrap(), &buf),
            Ok(p)
        );
        for other in [derive_key(be, &[1; 20], 2), derive_key(be, &[2; 20], 1)] {
            assert_eq!(
                Probe::read(&other.unwrap(), &buf),
                Err(ProbeError::AuthFailed)
            );
        }
        assert_eq!(peek_epoch(&buf[1..]), None);
    }

    #[test]
    fn random_bytes_never_panic() {
        let k = key(1, Backend::default());
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let mut b = [0u8; LEN];
            b.copy_from_slice(&rng.bytes(LEN));
            if rng.below(2) == 0 {
                b[0..5].copy_from_slice(b"SDWP\x01");
            }
            assert!(Probe::read(&k, &b).is_err());
        }
    }
}
