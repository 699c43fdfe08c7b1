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
//! |                        sequence number                        |
//! +---------------------------------------------------------------+
//! |             sender's timestamp (ns, 64 bits)                  |
//! +---------------------------------------------------------------+
//! |   echoed timestamp (ns, 64 bits; a reply: the request's)      |
//! +---------------------------------------------------------------+
//! |         responder's hold time (ns; a reply: rx to tx)         |
//! +---------------------------------------------------------------+
//! |                   authentication tag (16 bytes)               |
//! +---------------------------------------------------------------+
//! ```
//!
//! The GCM nonce is the key's salt and `kind || sender's circuit || receiver's circuit || 0 ||
//! sequence`: unique per key as long as a sender never reuses a sequence number on a path in
//! one direction, which the monitor guarantees (it counts up and the key changes before it
//! wraps). The busy flag lets a responder say it is shedding load, so the requester does not
//! read its own side's overload as loss on the underlay.

use std::fmt;

use crate::esp::AeadKey;

pub const MAGIC: [u8; 4] = *b"SDWP";
pub const VERSION: u8 = 1;
/// Bytes of a probe, tag included.
pub const LEN: usize = 52;
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
    pub seq: u32,
    pub sent_ns: u64,
    /// A reply: the request's `sent_ns`.
    pub echoed_ns: u64,
    /// A reply: how long the responder held the request.
    pub hold_ns: u32,
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

fn iv(kind: u8, sender: u8, receiver: u8, seq: u32) -> [u8; 8] {
    let s = seq.to_be_bytes();
    [kind, sender, receiver, 0, s[0], s[1], s[2], s[3]]
}

impl Probe {
    /// Writes the probe into `out` (at least [`LEN`] bytes) and authenticates it with `key`
    /// (the sender's key for this direction); returns the length, or `None` when `out` is too
    /// short or the AEAD refused.
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
        b[12..16].copy_from_slice(&self.seq.to_be_bytes());
        b[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        b[24..32].copy_from_slice(&self.echoed_ns.to_be_bytes());
        b[32..36].copy_from_slice(&self.hold_ns.to_be_bytes());
        let (msg, tag) = b.split_at_mut(TAG_AT);
        let iv = iv(
            self.kind as u8,
            self.sender_circuit,
            self.receiver_circuit,
            self.seq,
        );
        key.seal(&iv, msg, &mut [], tag).then_some(LEN)
    }

    /// Reads and verifies a probe with `key` (the peer's key for this direction). Never
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
            seq: be32(12),
            sent_ns: be64(16),
            echoed_ns: be64(24),
            hold_ns: be32(32),
        };
        let iv = iv(b[5], p.sender_circuit, p.receiver_circuit, p.seq);
        if !key.open(&iv, &b[..TAG_AT], &mut [], &b[TAG_AT..]) {
            return Err(ProbeError::AuthFailed);
        }
        Ok(p)
    }

    /// The reply to this request, sent at `now_ns` after holding it `hold_ns`.
    pub fn reply(&self, now_ns: u64, hold_ns: u32, busy: bool) -> Probe {
        Probe {
            kind: Kind::Reply,
            busy,
            sender_circuit: self.receiver_circuit,
            receiver_circuit: self.sender_circuit,
            domain: self.domain,
            seq: self.seq,
            sent_ns: now_ns,
            echoed_ns: self.sent_ns,
            hold_ns,
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
            seq: 41,
            sent_ns: 1_234_567_890_123,
            echoed_ns: 0,
            hold_ns: 0,
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
                let reply = request().reply(99, 1500, true);
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
