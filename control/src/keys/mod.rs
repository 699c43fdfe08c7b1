//! The key manager: per-tenant X25519 key pairs, the pairwise ESP SAs derived from them, and
//! make-before-break rekeying, all sans-IO (time comes in as `Instant`, randomness through a
//! [`RandomSource`], results go out as [`KeyEvent`]s).
//!
//! Edges learn each other's per-tenant public keys through BGP (seed 000: Versa's model, no
//! IKE between edges). Each pair of edges derives, per tenant and direction, the AES-GCM
//! keying material and the SPI base of an overlay SA ([`derive_pair`]); both edges compute the
//! same two directions from their own view. The [`KeyManager`] decides which SAs the data
//! plane holds at every moment so that rekeying loses no packet. The rules, the derivation
//! (with its exact `info` layout) and the defaults are in `docs/keys.md`.
//!
//! - [`mod@derive`]: the pure derivation (X25519, HKDF-SHA256), and the local key pair type.
//! - [`manager`]: the state machine.

pub mod derive;
pub mod manager;

#[cfg(test)]
mod sim;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

pub use derive::{derive_pair, KeyPair, PairKeys, SaContext, PUBLIC_KEY_LEN};
pub use manager::KeyManager;

/// The AEAD suites of the overlay SAs (the names of `swanctl` proposals; RFC 4106 with a
/// 16-byte ICV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    Aes128Gcm16,
    Aes256Gcm16,
}

impl Suite {
    /// Bytes of keying material: the AES key and the 4-byte salt (RFC 4106 §8.1).
    pub const fn keymat_len(self) -> usize {
        match self {
            Suite::Aes128Gcm16 => 20,
            Suite::Aes256Gcm16 => 36,
        }
    }

    /// The 4 bytes that name the suite in the derivation's `info`: the IKEv2 transform ID
    /// (ENCR_AES_GCM_16 = 20, IANA "Transform Type 1") and the key length in bits, both
    /// big-endian. An existing registry rather than a private numbering, so a new suite
    /// never needs a table of our own to stay distinct.
    pub const fn id(self) -> [u8; 4] {
        let bits: u16 = match self {
            Suite::Aes128Gcm16 => 128,
            Suite::Aes256Gcm16 => 256,
        };
        let t = 20u16.to_be_bytes();
        let b = bits.to_be_bytes();
        [t[0], t[1], b[0], b[1]]
    }

    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm16 => "aes128gcm16",
            Suite::Aes256Gcm16 => "aes256gcm16",
        }
    }
}

/// The key manager's timers. See `docs/keys.md` for why each default is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyConfig {
    /// A tenant's key pair is replaced this often (less up to 10 % of jitter, so edges that
    /// started together drift apart). Default 1 h, at least 10 s (labs).
    pub rotate_every: Duration,
    /// How long SAs stay after they stop being used for sending (packets in flight,
    /// reordering across paths, a peer that is slower to switch). Default 30 s.
    pub grace: Duration,
    /// How long after a new local key is made we start sending with it to a peer from which
    /// we saw no confirmation (one-way traffic). Must exceed the BGP propagation time between
    /// two edges. Default 5 s.
    pub switch_after: Duration,
    pub suite: Suite,
}

impl KeyConfig {
    pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(3600);
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
    pub const DEFAULT_SWITCH_AFTER: Duration = Duration::from_secs(5);
    /// The shortest rotation period accepted (labs).
    pub const MIN_ROTATE_EVERY: Duration = Duration::from_secs(10);
    /// The longest rotation period accepted (30 days): a bound that keeps every `Instant`
    /// computed from the configuration far from overflow, and key hygiene honest.
    pub const MAX_ROTATE_EVERY: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Bounds of `grace` and `switch_after`.
    pub const MIN_TIMER: Duration = Duration::from_millis(100);
    pub const MAX_GRACE: Duration = Duration::from_secs(3600);
    pub const MAX_SWITCH_AFTER: Duration = Duration::from_secs(300);

    /// The defaults with the given suite.
    pub const fn new(suite: Suite) -> Self {
        KeyConfig {
            rotate_every: Self::DEFAULT_ROTATE_EVERY,
            grace: Self::DEFAULT_GRACE,
            switch_after: Self::DEFAULT_SWITCH_AFTER,
            suite,
        }
    }

    /// Checks the bounds. `switch_after + grace` must be shorter than `rotate_every`: a key
    /// must be able to finish its grace before the next one comes (a rotation waits for the
    /// previous key's grace anyway, so a shorter period would silently stretch).
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.rotate_every < Self::MIN_ROTATE_EVERY {
            return Err(KeyError::Config("rotate_every is shorter than 10 s"));
        }
        if self.rotate_every > Self::MAX_ROTATE_EVERY {
            return Err(KeyError::Config("rotate_every is longer than 30 days"));
        }
        if self.grace < Self::MIN_TIMER || self.grace > Self::MAX_GRACE {
            return Err(KeyError::Config("grace must be between 100 ms and 1 h"));
        }
        if self.switch_after < Self::MIN_TIMER || self.switch_after > Self::MAX_SWITCH_AFTER {
            return Err(KeyError::Config(
                "switch_after must be between 100 ms and 5 min",
            ));
        }
        if self.switch_after + self.grace >= self.rotate_every {
            return Err(KeyError::Config(
                "switch_after + grace must be shorter than rotate_every",
            ));
        }
        Ok(())
    }
}

/// Every error of the key manager. None carries key material: a peer's key is described by
/// its length at most.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("peer public key is {len} bytes; X25519 needs 32")]
    PublicKeyLength { len: usize },
    #[error("peer public key is a low-order point (the shared secret would be all zero)")]
    LowOrderPublicKey,
    #[error("tenant {tenant} is not configured")]
    UnknownTenant { tenant: u32 },
    #[error("a key was advertised for our own loopback {peer}")]
    OwnLoopback { peer: IpAddr },
    #[error("key manager configuration: {0}")]
    Config(&'static str),
    #[error("the random source failed")]
    Random,
    #[error("the crypto library refused an operation")]
    Crypto,
}

/// Where randomness comes from: the system's in production ([`SystemRandom`]), a seeded
/// generator in tests, so every run of a test sees the same keys and timers.
pub trait RandomSource {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), KeyError>;
}

/// The operating system's random source, through AWS-LC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), KeyError> {
        aws_lc_rs::rand::fill(out).map_err(|_| KeyError::Random)
    }
}

/// What the key manager asks of the rest of `sdwand`. Apply them in the order given: every
/// `SasChanged` of a `poll` comes before its `Advertise`, because a new local key's inbound
/// SAs must be in the data plane before any peer can learn the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    /// What the data plane should hold for this peer and tenant changed: read
    /// [`KeyManager::sas`] and publish it (`None`: remove them all).
    SasChanged { peer: IpAddr, tenant: u32 },
    /// The tenant has a new local key: advertise [`KeyManager::local_key`] in BGP.
    Advertise { tenant: u32 },
    /// A rotation could not make a key (the random source or the crypto library failed); it
    /// is retried after `switch_after`. The current key stays in use meanwhile.
    RotationFailed { tenant: u32, error: KeyError },
}

/// One direction of an overlay SA: the SPI base (the sending worker `w` uses `spi_base + w`)
/// and the keying material (AES key || 4-byte salt). `Debug` shows no key.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectionSa {
    /// Low 4 bits zero, at least 0x100.
    pub spi_base: u32,
    /// AES key || salt: 20 bytes (aes128gcm16) or 36 (aes256gcm16). Zeroed when dropped.
    pub keymat: Zeroizing<Vec<u8>>,
    /// The generation of our key pair and of the peer's that this SA comes from.
    pub local_generation: u32,
    pub peer_generation: u32,
}

impl fmt::Debug for DirectionSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectionSa")
            .field("spi_base", &format_args!("{:#010x}", self.spi_base))
            .field("keymat", &format_args!("<{} bytes>", self.keymat.len()))
            .field("local_generation", &self.local_generation)
            .field("peer_generation", &self.peer_generation)
            .finish()
    }
}

/// What the data plane holds for one peer and tenant: the SA it sends with, and every SA it
/// accepts (at most 4: our live key pairs times the peer's live public keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSas {
    pub suite: Suite,
    /// `None` only in the rare cases described in `docs/keys.md` (an SPI collision that
    /// could not be avoided, with a rotation forced over it): then nothing is sent.
    pub outbound: Option<DirectionSa>,
    pub inbound: Vec<DirectionSa>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds() {
        let ok = KeyConfig::new(Suite::Aes128Gcm16);
        assert_eq!(ok.validate(), Ok(()));
        let lab = KeyConfig {
            rotate_every: Duration::from_secs(10),
            grace: Duration::from_secs(5),
            switch_after: Duration::from_secs(2),
            ..ok
        };
        assert_eq!(lab.validate(), Ok(()));
        for bad in [
            KeyConfig {
                rotate_every: Duration::from_secs(9),
                ..lab
            },
            KeyConfig {
                rotate_every: Duration::from_secs(31 * 24 * 3600),
                ..ok
            },
            KeyConfig {
                grace: Duration::ZERO,
                ..ok
            },
            KeyConfig {
                switch_after: Duration::from_secs(301),
                ..ok
            },
            KeyConfig {
                grace: Duration::from_secs(8),
                ..lab
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(KeyError::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn suite_ids_and_lengths() {
        assert_eq!(Suite::Aes128Gcm16.id(), [0, 20, 0, 128]);
        assert_eq!(Suite::Aes256Gcm16.id(), [0, 20, 1, 0]);
        assert_eq!(Suite::Aes128Gcm16.keymat_len(), 20);
        assert_eq!(Suite::Aes256Gcm16.keymat_len(), 36);
    }

    #[test]
    fn direction_sa_debug_hides_the_key() {
        let sa = DirectionSa {
            spi_base: 0x1230,
            keymat: Zeroizing::new(vec![0x5a; 20]),
            local_generation: 7,
            peer_generation: 9,
        };
        let s = format!("{sa:?} {sa:#?}");
        assert!(s.contains("0x00001230") && s.contains("<20 bytes>"), "{s}");
        assert!(!s.contains("5a") && !s.contains("90,"), "{s}");
    }
}
