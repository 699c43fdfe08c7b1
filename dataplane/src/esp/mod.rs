//! ESP (RFC 4303) in tunnel mode with AES-GCM (RFC 4106), sans-IO: security associations that
//! seal and open packets in buffers the caller owns.
//!
//! - [`wire`]: the packet format, padding and trailer (zero-copy).
//! - [`replay`]: the RFC 6479 anti-replay window with 64-bit extended sequence numbers.
//! - [`crypto`]: the AEAD backends (intel-ipsec-mb, AWS-LC, RustCrypto `aes-gcm`) with a batch
//!   call.
//! - [`sa`]: outbound and inbound SAs, their counters, and the low-level encapsulation.
//!
//! Every way a packet can fail is an [`EspError`], one drop counter each. Nothing here
//! allocates after an SA is built, and no packet bytes can make it panic: every length is
//! checked before it is used.

pub mod crypto;
pub mod replay;
pub mod sa;
pub mod wire;

use std::fmt;

pub use crypto::{AeadJob, AeadKey, Backend, KeyError, Suite};
pub use replay::{ReplayError, ReplayWindow, WindowSizeError};
pub use sa::{InboundSa, Opened, OutboundSa, SaCounters};

/// Why ESP refused a packet. Each is a drop counter; the names follow what operators know
/// from the kernel's `/proc/net/xfrm_stat` and `ip -s xfrm state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum EspError {
    /// The sequence number was received before (inside the window).
    Replay,
    /// The sequence number is below the replay window.
    ReplayWindow,
    /// The ICV did not verify: wrong key, forged or corrupted packet (or, with ESN, a
    /// sequence number whose high bits were inferred for the wrong subspace).
    AuthFailed,
    /// Too short for an ESP packet, a bad trailer (pad bytes, pad length) after decryption,
    /// or an inner packet that is not IPv4 or IPv6 when sealing.
    Malformed,
    /// No inbound SA for the SPI (the caller's lookup), or a packet given to the wrong SA.
    UnknownSpi,
    /// The outbound sequence number would wrap (2^32 - 1 sent without ESN, 2^64 - 1 with
    /// it): the SA must be rekeyed; a number is never reused.
    SequenceExhausted,
    /// Not enough headroom or tailroom in the buffer for the ESP header and trailer.
    NoRoom,
    /// A dummy packet (next header 59, RFC 4303 §2.6): authentic, dropped silently.
    Dummy,
    /// Next header other than IPv4 (4) or IPv6 (41) in tunnel mode (the kernel's "mode
    /// error").
    BadNextHeader,
}

impl EspError {
    pub const ALL: [EspError; 9] = [
        EspError::Replay,
        EspError::ReplayWindow,
        EspError::AuthFailed,
        EspError::Malformed,
        EspError::UnknownSpi,
        EspError::SequenceExhausted,
        EspError::NoRoom,
        EspError::Dummy,
        EspError::BadNextHeader,
    ];

    /// The counter name.
    pub fn name(self) -> &'static str {
        match self {
            EspError::Replay => "replay",
            EspError::ReplayWindow => "replay_window",
            EspError::AuthFailed => "auth_failed",
            EspError::Malformed => "malformed",
            EspError::UnknownSpi => "unknown_spi",
            EspError::SequenceExhausted => "seq_exhausted",
            EspError::NoRoom => "no_room",
            EspError::Dummy => "dummy",
            EspError::BadNextHeader => "bad_next_header",
        }
    }
}

impl fmt::Display for EspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EspError::Replay => "replayed sequence number",
            EspError::ReplayWindow => "sequence number below the replay window",
            EspError::AuthFailed => "ICV verification failed",
            EspError::Malformed => "malformed ESP packet",
            EspError::UnknownSpi => "unknown SPI",
            EspError::SequenceExhausted => "sequence number space exhausted: rekey the SA",
            EspError::NoRoom => "no headroom or tailroom for ESP",
            EspError::Dummy => "dummy packet (next header 59)",
            EspError::BadNextHeader => "next header is not IPv4 or IPv6",
        })
    }
}

impl std::error::Error for EspError {}

impl From<ReplayError> for EspError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Duplicate => EspError::Replay,
            ReplayError::TooOld => EspError::ReplayWindow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_all_is_complete() {
        let mut names: Vec<_> = EspError::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EspError::ALL.len());
        for (i, e) in EspError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
    }
}
