//! The AEAD behind ESP: AES-GCM with a 16-byte ICV as RFC 4106 uses it, over three software
//! backends (RustCrypto `aes-gcm`, AWS-LC through `aws-lc-rs`, and Intel's intel-ipsec-mb
//! through a bindgen FFI), with a batch in-place seal / open call.
//!
//! RFC 4106 in brief: the keying material of an SA is the AES key followed by a 4-byte salt
//! (§8.1: 20, 28 or 36 bytes); the 12-byte GCM nonce is salt || the 8-byte explicit IV carried
//! in each packet (§4); the AAD is SPI || 32-bit sequence number, or SPI || high 32 bits ||
//! low 32 bits with extended sequence numbers (§5); the ICV is the full 16-byte GCM tag.
//!
//! ## Enum, not trait object
//! The backend is a closed set chosen per SA at run time (configuration, or per packet size
//! if a CPU ever measures that way), and an SA lives in a table the worker indexes. An enum
//! needs no `Box<dyn>` and no vtable call per packet, lets the compiler inline each
//! backend's call into the batch loop, and dispatches once per batch. (The key schedules
//! themselves are on the heap, allocated once at key setup and never per call, so an SA stays
//! small.)
//! A further backend (a DPDK cryptodev) is one more variant.
//!
//! ## intel-ipsec-mb
//! Debian's `libipsec-mb-dev` 1.3, bound by `build.rs` (bindgen over the real header) and linked
//! dynamically (`-lIPSec_MB`; `libipsec-mb1` at run time). It uses the library's *direct* GCM
//! API (`IMB_AES128_GCM_ENC` / `_DEC` and the 192 / 256 variants, `IMB_AESxxx_GCM_PRE`): one
//! call per packet with the precomputed key data and a `gcm_context_data` on the stack. In 1.3
//! the job / burst API runs GCM synchronously through the same single-buffer code (there is no
//! multi-buffer GCM), so it only adds job set-up; the direct API is the fast path.
//!
//! Those macros call through function pointers in an `IMB_MGR`. An `IMB_MGR` is not
//! thread-safe, but only its job queues are state: the direct GCM functions take no manager and
//! keep all their state in the caller's `gcm_context_data` and the read-only key data. So the
//! process allocates one manager, once (`init_mb_mgr_auto`: the best code for the CPU, VAES +
//! AVX-512 on Sapphire Rapids), copies the GCM function pointers out of it and frees it. No
//! `IMB_MGR` outlives that initialisation, each key holds its key data and two plain function
//! pointers, and an `AeadKey` of this backend is `Send + Sync` like the others, without an
//! `unsafe impl`. (One shared write remains: the library, built with `SAFE_PARAM`, clears its
//! process-wide `imb_errno` on every call. That is a plain 32-bit store, harmless for
//! correctness, but with several workers sealing at once the cache line moves between cores.)
//!
//! ## Keys
//! Key bytes are never logged or shown: the `Debug` impls print the suite and the backend
//! only. The RustCrypto key schedule (AES round keys, GHASH key) is zeroized on drop (the
//! crate's `zeroize` feature); AWS-LC frees its `EVP_AEAD_CTX` with `OPENSSL_free`, which
//! cleanses the allocation first. The intel-ipsec-mb key data (round keys, GHASH key powers)
//! is cleared with the library's `imb_clear_mem` on drop; the `gcm_context_data` each call
//! leaves on the stack holds no key material (GHASH state, counters, the last keystream block:
//! nothing the caller does not already hold in plaintext). The salt is held in `Zeroizing`. The
//! keying material the caller passes in is the caller's to zeroize.

use std::ffi::c_void;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use aes_gcm::aead::array::typenum::U12;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aes::Aes192;
use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, AesGcm, KeyInit, Nonce, Tag};
use aws_lc_rs::aead as awslc;
use zeroize::Zeroizing;

/// Nonces built ahead of the AEAD calls in a batch (see `AeadKey::batch`): the data plane's
/// batch, `esp::sa::BATCH`.
const NONCE_CHUNK: usize = 32;

/// Length of the explicit IV in each ESP packet (RFC 4106 §3.1).
pub const IV_LEN: usize = 8;
/// Length of the salt at the end of the keying material (RFC 4106 §4).
pub const SALT_LEN: usize = 4;
/// Length of the ICV: the full GCM tag (RFC 4106 "AES-GCM with a 16 octet ICV").
pub const TAG_LEN: usize = 16;
/// Longest AAD ESP uses: SPI || seq high || seq low (RFC 4106 §5, extended sequence numbers).
pub const MAX_ESP_AAD_LEN: usize = 12;
/// Longest text one GCM invocation may encrypt: 2^39 - 256 bits (NIST SP 800-38D §5.2.1.1).
const GCM_MAX_TEXT_LEN: u64 = (1 << 36) - 32;

type Aes192Gcm = AesGcm<Aes192, U12>;

/// The ciphers an SA can use. The IKEv2 transform IDs (RFC 5996 / IANA "Transform Type 1")
/// are 20 (`ENCR_AES_GCM_16`) with key length 128, 192 or 256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    Aes128Gcm,
    Aes192Gcm,
    Aes256Gcm,
}

impl Suite {
    /// Length of the AES key.
    pub const fn key_len(self) -> usize {
        match self {
            Suite::Aes128Gcm => 16,
            Suite::Aes192Gcm => 24,
            Suite::Aes256Gcm => 32,
        }
    }

    /// Length of the keying material: key || salt (RFC 4106 §8.1).
    pub const fn keymat_len(self) -> usize {
        self.key_len() + SALT_LEN
    }

    /// The name operators know (`swanctl`, `ip xfrm`: `rfc4106(gcm(aes))` with a key length).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "aes128gcm16",
            Suite::Aes192Gcm => "aes192gcm16",
            Suite::Aes256Gcm => "aes256gcm16",
        }
    }
}

/// Which implementation runs the AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// RustCrypto `aes-gcm` 0.11: pure Rust, AES-NI / VAES and CLMUL picked at run time.
    RustCrypto,
    /// AWS-LC (`aws-lc-rs`): the BoringSSL / OpenSSL assembly, stitched AES-CTR + GHASH with
    /// AVX2 / AVX-512 VAES where the CPU has it.
    AwsLc,
    /// intel-ipsec-mb 1.3 (Debian's `libIPSec_MB`, linked dynamically): Intel's GCM assembly,
    /// the best of SSE / AVX / AVX2 / AVX-512 (+ VAES, VPCLMULQDQ) chosen at run time, through
    /// its direct GCM API (see the module notes).
    ///
    /// The default, at every packet size, chosen by measurement: `cargo run --release -p
    /// sdwan-dataplane --example esp_bench`, batches of 32, ns per packet, best of 7 rounds
    /// (and of 2 runs), on the build machine (Intel Xeon "Sapphire Rapids", family 6 model
    /// 143, 2 vCPUs under KVM, AES-NI + VAES + VPCLMULQDQ + AVX-512; intel-ipsec-mb runs its
    /// `avx512+vaes` code), intel-ipsec-mb 1.3.0, aws-lc-rs 1.19 (AWS-LC 0.47), aes-gcm
    /// 0.11.1, the workspace's release profile without `target-cpu=native`:
    ///
    /// | AEAD call, seal / open | ipsec-mb  | aws-lc    | aes-gcm   |
    /// |------------------------|----------:|----------:|----------:|
    /// | AES-128-GCM, 64 B      |  30 / 29  | 104 / 101 | 193 / 199 |
    /// | AES-128-GCM, 576 B     |  66 / 61  | 173 / 171 | 346 / 349 |
    /// | AES-128-GCM, 1420 B    | 135 / 132 | 221 / 215 | 535 / 531 |
    /// | AES-256-GCM, 64 B      |  33 / 31  | 122 / 112 | 212 / 213 |
    /// | AES-256-GCM, 576 B     |  81 / 75  | 186 / 182 | 389 / 382 |
    /// | AES-256-GCM, 1420 B    | 150 / 146 | 245 / 240 | 587 / 571 |
    ///
    /// The whole SA (`seal_batch` / `open_batch`: framing, sequence, replay window, trailer),
    /// AES-128-GCM: ipsec-mb 41 / 79 / 139 ns, aws-lc 118 / 175 / 227 ns (seal, 64 / 576 /
    /// 1420 B). intel-ipsec-mb is 1.6x (1420 B) to 3.5x (64 B) faster than AWS-LC, so there is
    /// no per-size split. (Earlier runs of the same example: with `RUSTFLAGS="-C
    /// target-cpu=native"` aes-gcm improves to 120 / 239 / 371 ns and AWS-LC stays at 111 /
    /// 170 / 219 ns, still behind.) For reference, DPDK's own path to the same library
    /// (`dpdk-test-crypto-perf` on the `crypto_aesni_gcm` cryptodev, `sdwan-perf
    /// crypto-baseline`) takes 53 / 90 / 150 ns per AES-128 encryption (64 / 576 / 1420 B) on
    /// this machine: the direct calls skip its per-operation `rte_crypto_op` and mbuf work.
    /// Re-run both on the appliance's CPU before changing this.
    #[default]
    IpsecMb,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::RustCrypto, Backend::AwsLc, Backend::IpsecMb];

    pub fn name(self) -> &'static str {
        match self {
            Backend::RustCrypto => "rustcrypto",
            Backend::AwsLc => "aws-lc",
            Backend::IpsecMb => "ipsec-mb",
        }
    }

    /// Which code the backend runs on this CPU, for logs and benchmarks: intel-ipsec-mb's
    /// architecture (`sse`, `avx2`, `avx512`, with `+vaes` where it uses VAES / VPCLMULQDQ),
    /// `unavailable` if the library could not be initialised. The others pick their code per
    /// call and say `runtime`.
    pub fn implementation(self) -> &'static str {
        match self {
            Backend::RustCrypto | Backend::AwsLc => "runtime",
            Backend::IpsecMb => imb::lib().map_or("unavailable", |l| l.arch),
        }
    }
}

/// Why a key could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The keying material is not key || 4-byte salt for the suite.
    BadLength { expected: usize, got: usize },
    /// The backend refused the key (should not happen for a right length).
    Rejected,
    /// The backend cannot run here (intel-ipsec-mb failed to initialise: library older than
    /// the header it was built against, or no manager could be allocated).
    Unavailable,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::BadLength { expected, got } => write!(
                f,
                "keying material must be key || 4-byte salt: {expected} bytes, got {got}"
            ),
            KeyError::Rejected => write!(f, "the crypto backend rejected the key"),
            KeyError::Unavailable => write!(f, "the crypto backend is not available here"),
        }
    }
}

impl std::error::Error for KeyError {}

/// One packet of a batch: the explicit IV, the AAD, the text sealed or opened in place, and
/// its tag (written by seal, read by open). `ok` is the outcome, set by the batch call.
/// `Default` gives an empty job so a caller can fill a fixed array without allocating.
#[derive(Default)]
pub struct AeadJob<'a> {
    pub iv: [u8; IV_LEN],
    pub aad: &'a [u8],
    pub text: &'a mut [u8],
    /// Exactly `TAG_LEN` bytes; any other length fails the job.
    pub tag: &'a mut [u8],
    pub ok: bool,
}

impl fmt::Debug for AeadJob<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadJob")
            .field("text_len", &self.text.len())
            .field("aad_len", &self.aad.len())
            .field("ok", &self.ok)
            .finish_non_exhaustive()
    }
}

/// The RustCrypto key schedule, per key size. Zeroized on drop by the crate.
enum RcKey {
    A128(Aes128Gcm),
    A192(Aes192Gcm),
    A256(Aes256Gcm),
}

impl RcKey {
    fn new(suite: Suite, key: &[u8]) -> Result<Self, KeyError> {
        let rejected = |_| KeyError::Rejected;
        Ok(match suite {
            Suite::Aes128Gcm => RcKey::A128(Aes128Gcm::new_from_slice(key).map_err(rejected)?),
            Suite::Aes192Gcm => RcKey::A192(Aes192Gcm::new_from_slice(key).map_err(rejected)?),
            Suite::Aes256Gcm => RcKey::A256(Aes256Gcm::new_from_slice(key).map_err(rejected)?),
        })
    }

    #[inline]
    fn seal(&self, nonce: &Nonce<U12>, aad: &[u8], text: &mut [u8]) -> Option<Tag> {
        let buf = InOutBuf::from(text);
        match self {
            RcKey::A128(k) => k.encrypt_inout_detached(nonce, aad, buf),
            RcKey::A192(k) => k.encrypt_inout_detached(nonce, aad, buf),
            RcKey::A256(k) => k.encrypt_inout_detached(nonce, aad, buf),
        }
        .ok()
    }

    #[inline]
    fn open(&self, nonce: &Nonce<U12>, aad: &[u8], text: &mut [u8], tag: &Tag) -> bool {
        let buf = InOutBuf::from(text);
        match self {
            RcKey::A128(k) => k.decrypt_inout_detached(nonce, aad, buf, tag),
            RcKey::A192(k) => k.decrypt_inout_detached(nonce, aad, buf, tag),
            RcKey::A256(k) => k.decrypt_inout_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

/// Every variant keeps the key schedule on the heap (AWS-LC inside its `EVP_AEAD_CTX`), so an
/// SA stays small in the tables; the one allocation happens when the key is set up.
enum Imp {
    RustCrypto(Box<RcKey>),
    AwsLc(awslc::LessSafeKey),
    IpsecMb(Box<imb::Key>),
}

/// An AES-GCM key with its salt, ready to seal or open ESP payloads. Built once per SA on the
/// control thread (the key schedule is computed here); the calls do not allocate.
pub struct AeadKey {
    suite: Suite,
    backend: Backend,
    salt: Zeroizing<[u8; SALT_LEN]>,
    imp: Imp,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("suite", &self.suite)
            .field("backend", &self.backend)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AeadKey {
    /// Sets up `suite` on `backend` from keying material = key || 4-byte salt (RFC 4106 §8.1).
    pub fn new(backend: Backend, suite: Suite, keymat: &[u8]) -> Result<Self, KeyError> {
        if keymat.len() != suite.keymat_len() {
            return Err(KeyError::BadLength {
                expected: suite.keymat_len(),
                got: keymat.len(),
            });
        }
        let (key, salt_bytes) = keymat.split_at(suite.key_len());
        let mut salt = Zeroizing::new([0u8; SALT_LEN]);
        salt.copy_from_slice(salt_bytes);
        let imp = match backend {
            Backend::RustCrypto => Imp::RustCrypto(Box::new(RcKey::new(suite, key)?)),
            Backend::AwsLc => {
                let alg = match suite {
                    Suite::Aes128Gcm => &awslc::AES_128_GCM,
                    Suite::Aes192Gcm => &awslc::AES_192_GCM,
                    Suite::Aes256Gcm => &awslc::AES_256_GCM,
                };
                let unbound = awslc::UnboundKey::new(alg, key).map_err(|_| KeyError::Rejected)?;
                Imp::AwsLc(awslc::LessSafeKey::new(unbound))
            }
            Backend::IpsecMb => Imp::IpsecMb(imb::Key::new(suite, key)?),
        };
        Ok(Self {
            suite,
            backend,
            salt,
            imp,
        })
    }

    #[inline]
    pub fn suite(&self) -> Suite {
        self.suite
    }

    #[inline]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    #[inline]
    fn nonce(&self, iv: &[u8; IV_LEN]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..SALT_LEN].copy_from_slice(&self.salt[..]);
        n[SALT_LEN..].copy_from_slice(iv);
        n
    }

    /// Encrypts `text` in place and writes the tag. False if `tag` is not `TAG_LEN` bytes or
    /// the text is longer than GCM allows.
    #[inline]
    pub fn seal(&self, iv: &[u8; IV_LEN], aad: &[u8], text: &mut [u8], tag: &mut [u8]) -> bool {
        let nonce = self.nonce(iv);
        match &self.imp {
            Imp::RustCrypto(k) => rc_seal(k, nonce, aad, text, tag),
            Imp::AwsLc(k) => lc_seal(k, nonce, aad, text, tag),
            Imp::IpsecMb(k) => k.seal(&nonce, aad, text, tag),
        }
    }

    /// Verifies the tag and decrypts `text` in place. False when the tag does not verify (the
    /// text may then hold garbage: drop the packet) or `tag` is not `TAG_LEN` bytes.
    #[inline]
    pub fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], text: &mut [u8], tag: &[u8]) -> bool {
        let nonce = self.nonce(iv);
        match &self.imp {
            Imp::RustCrypto(k) => rc_open(k, nonce, aad, text, tag),
            Imp::AwsLc(k) => lc_open(k, nonce, aad, text, tag),
            Imp::IpsecMb(k) => k.open(&nonce, aad, text, tag),
        }
    }

    /// Seals every job in place under this key (one dispatch on the backend for the whole
    /// batch); sets each job's `ok`. Returns how many failed (a failure is a caller error: a
    /// tag slice of the wrong length).
    pub fn seal_batch(&self, jobs: &mut [AeadJob<'_>]) -> usize {
        self.batch(jobs, rc_seal, lc_seal, |k, n, a, t, g| k.seal(n, a, t, g))
    }

    /// Opens every job in place under this key; sets each job's `ok` (false: the ICV did not
    /// verify). Returns how many failed.
    pub fn open_batch(&self, jobs: &mut [AeadJob<'_>]) -> usize {
        self.batch(
            jobs,
            |k, n, a, t, g| rc_open(k, n, a, t, g),
            |k, n, a, t, g| lc_open(k, n, a, t, g),
            |k, n, a, t, g| k.open(n, a, t, g),
        )
    }

    /// Runs one operation over every job, choosing the backend once for the whole batch so the
    /// per-packet loop has no dispatch in it.
    #[inline(always)]
    fn batch(
        &self,
        jobs: &mut [AeadJob<'_>],
        rc: impl Fn(&RcKey, [u8; 12], &[u8], &mut [u8], &mut [u8]) -> bool,
        lc: impl Fn(&awslc::LessSafeKey, [u8; 12], &[u8], &mut [u8], &mut [u8]) -> bool,
        mb: impl Fn(&imb::Key, &[u8; 12], &[u8], &mut [u8], &mut [u8]) -> bool,
    ) -> usize {
        let mut failed = 0;
        match &self.imp {
            Imp::RustCrypto(k) => {
                for j in jobs.iter_mut() {
                    j.ok = rc(k, self.nonce(&j.iv), j.aad, j.text, j.tag);
                    failed += usize::from(!j.ok);
                }
            }
            Imp::AwsLc(k) => {
                for j in jobs.iter_mut() {
                    j.ok = lc(k, self.nonce(&j.iv), j.aad, j.text, j.tag);
                    failed += usize::from(!j.ok);
                }
            }
            Imp::IpsecMb(k) => {
                // Every nonce of a chunk is written before the first call. The library reads
                // the nonce with a masked 16-byte load, which the two stores that just built
                // it cannot forward to: it waits until they commit, that is until the previous
                // packet's code has retired, and consecutive packets no longer overlap in the
                // pipeline. Measured: 64-byte packets 50 ns -> 30 ns each.
                let mut nonces = [[0u8; 12]; NONCE_CHUNK];
                for chunk in jobs.chunks_mut(NONCE_CHUNK) {
                    for (n, j) in nonces.iter_mut().zip(chunk.iter()) {
                        *n = self.nonce(&j.iv);
                    }
                    for (n, j) in nonces.iter().zip(chunk.iter_mut()) {
                        j.ok = mb(k, n, j.aad, j.text, j.tag);
                        failed += usize::from(!j.ok);
                    }
                }
            }
        }
        failed
    }
}

#[inline(always)]
fn rc_seal(k: &RcKey, nonce: [u8; 12], aad: &[u8], text: &mut [u8], tag: &mut [u8]) -> bool {
    if tag.len() != TAG_LEN {
        return false;
    }
    match k.seal(&Nonce::from(nonce), aad, text) {
        Some(t) => {
            tag.copy_from_slice(&t);
            true
        }
        None => false,
    }
}

#[inline(always)]
fn rc_open(k: &RcKey, nonce: [u8; 12], aad: &[u8], text: &mut [u8], tag: &[u8]) -> bool {
    let Ok(tag16) = <[u8; TAG_LEN]>::try_from(tag) else {
        return false;
    };
    k.open(&Nonce::from(nonce), aad, text, &Tag::from(tag16))
}

#[inline(always)]
fn lc_seal(
    k: &awslc::LessSafeKey,
    nonce: [u8; 12],
    aad: &[u8],
    text: &mut [u8],
    tag: &mut [u8],
) -> bool {
    if tag.len() != TAG_LEN {
        return false;
    }
    let n = awslc::Nonce::assume_unique_for_key(nonce);
    match k.seal_in_place_separate_tag(n, awslc::Aad::from(aad), text) {
        Ok(t) => {
            tag.copy_from_slice(t.as_ref());
            true
        }
        Err(_) => false,
    }
}

#[inline(always)]
fn lc_open(
    k: &awslc::LessSafeKey,
    nonce: [u8; 12],
    aad: &[u8],
    text: &mut [u8],
    tag: &[u8],
) -> bool {
    if tag.len() != TAG_LEN {
        return false;
    }
    let n = awslc::Nonce::assume_unique_for_key(nonce);
    k.open_in_place_separate_tag(n, awslc::Aad::from(aad), tag, text)
        .is_ok()
}

/// The intel-ipsec-mb backend: the process-wide table of GCM entry points and the per-key data.
mod imb {
    use super::*;

    /// What `build.rs` generated from `/usr/include/intel-ipsec-mb.h`.
    #[allow(
        non_upper_case_globals,
        non_camel_case_types,
        non_snake_case,
        dead_code,
        unnecessary_transmutes,
        clippy::all
    )]
    mod sys {
        include!(concat!(env!("OUT_DIR"), "/ipsec_mb.rs"));
    }

    /// `IMB_AESxxx_GCM_ENC` / `_DEC`: (key data, context, out, in, len, iv, aad, aad len, tag,
    /// tag len). In place is allowed (`out == in`).
    type GcmFn = unsafe extern "C" fn(
        *const sys::gcm_key_data,
        *mut sys::gcm_context_data,
        *mut u8,
        *const u8,
        u64,
        *const u8,
        *const u8,
        u64,
        *mut u8,
        u64,
    );
    /// `IMB_AESxxx_GCM_PRE`: (AES key, key data out) expands the round keys and the GHASH key
    /// powers.
    type PreFn = unsafe extern "C" fn(*const c_void, *mut sys::gcm_key_data);

    #[derive(Clone, Copy)]
    struct Fns {
        pre: PreFn,
        enc: GcmFn,
        dec: GcmFn,
    }

    /// The GCM entry points of the architecture `init_mb_mgr_auto` chose, per key size.
    pub(super) struct Lib {
        pub(super) arch: &'static str,
        gcm: [Fns; 3],
    }

    static LIB: OnceLock<Option<Lib>> = OnceLock::new();

    /// Initialises the library once per process (allocate a manager, let it pick the best
    /// code for this CPU, copy the GCM function pointers out, free it). `None` if the library
    /// at run time is older than the header the crate was built with, or it fails to set up.
    pub(super) fn lib() -> Option<&'static Lib> {
        LIB.get_or_init(|| {
            // SAFETY: plain C calls; `mgr` is checked for null, initialised before it is read
            // and freed exactly once, after the last read. The function pointers point into
            // the library's code, which stays mapped: it is linked, never dlopen()ed.
            unsafe {
                if sys::imb_get_version() < sys::IMB_VERSION_NUM {
                    return None;
                }
                let mgr = sys::alloc_mb_mgr(0);
                if mgr.is_null() {
                    return None;
                }
                let mut arch: sys::IMB_ARCH = sys::IMB_ARCH_IMB_ARCH_NONE;
                sys::init_mb_mgr_auto(mgr, &mut arch);
                let m = &*mgr;
                let fns = |pre: sys::aes_gcm_pre_t,
                           enc: sys::aes_gcm_enc_dec_t,
                           dec: sys::aes_gcm_enc_dec_t| {
                    Some(Fns {
                        pre: pre?,
                        enc: enc?,
                        dec: dec?,
                    })
                };
                let vaes = m.features & u64::from(sys::IMB_FEATURE_VAES) != 0
                    && m.features & u64::from(sys::IMB_FEATURE_VPCLMULQDQ) != 0;
                let lib = (|| {
                    if m.imb_errno != 0 {
                        return None;
                    }
                    Some(Lib {
                        arch: match (arch, vaes) {
                            (sys::IMB_ARCH_IMB_ARCH_NOAESNI, _) => "no-aesni",
                            (sys::IMB_ARCH_IMB_ARCH_SSE, _) => "sse",
                            (sys::IMB_ARCH_IMB_ARCH_AVX, _) => "avx",
                            (sys::IMB_ARCH_IMB_ARCH_AVX2, false) => "avx2",
                            (sys::IMB_ARCH_IMB_ARCH_AVX2, true) => "avx2+vaes",
                            (sys::IMB_ARCH_IMB_ARCH_AVX512, false) => "avx512",
                            (sys::IMB_ARCH_IMB_ARCH_AVX512, true) => "avx512+vaes",
                            _ => return None,
                        },
                        gcm: [
                            fns(m.gcm128_pre, m.gcm128_enc, m.gcm128_dec)?,
                            fns(m.gcm192_pre, m.gcm192_enc, m.gcm192_dec)?,
                            fns(m.gcm256_pre, m.gcm256_enc, m.gcm256_dec)?,
                        ],
                    })
                })();
                sys::free_mb_mgr(mgr);
                lib
            }
        })
        .as_ref()
    }

    /// One key: the library's precomputed key data (64-byte aligned, on the heap inside the
    /// `Box` the caller keeps) and the entry points for its size. Read-only after `new`, so
    /// any number of threads may seal and open with it at once.
    pub(super) struct Key {
        data: sys::gcm_key_data,
        enc: GcmFn,
        dec: GcmFn,
    }

    impl Key {
        pub(super) fn new(suite: Suite, key: &[u8]) -> Result<Box<Self>, KeyError> {
            let lib = lib().ok_or(KeyError::Unavailable)?;
            let f = lib.gcm[match suite {
                Suite::Aes128Gcm => 0,
                Suite::Aes192Gcm => 1,
                Suite::Aes256Gcm => 2,
            }];
            if key.len() != suite.key_len() {
                return Err(KeyError::Rejected);
            }
            // Zeroed key data first, so the key is expanded straight into the heap and no copy
            // of the schedule is left behind on the stack.
            let mut k = Box::new(Key {
                data: sys::gcm_key_data::default(),
                enc: f.enc,
                dec: f.dec,
            });
            // SAFETY: `key` holds `suite.key_len()` bytes, the size `pre` reads; `k.data` is
            // a valid, 64-byte aligned `gcm_key_data` that `pre` fills.
            unsafe { (f.pre)(key.as_ptr().cast(), &mut k.data) };
            Ok(k)
        }

        /// Encrypts `text` in place and writes the 16-byte tag.
        #[inline(always)]
        pub(super) fn seal(
            &self,
            nonce: &[u8; 12],
            aad: &[u8],
            text: &mut [u8],
            tag: &mut [u8],
        ) -> bool {
            if tag.len() != TAG_LEN || text.len() as u64 > GCM_MAX_TEXT_LEN {
                return false;
            }
            let mut ctx = MaybeUninit::<sys::gcm_context_data>::uninit();
            let p = text.as_mut_ptr();
            // SAFETY: every pointer is valid for the length passed with it (the nonce is the
            // 12 bytes the library reads; the tag slice is `TAG_LEN` long); `ctx` is written
            // by the call before it is read; in and out may be the same buffer. The checks
            // above are all the library's own parameter checks can fail on, so it always
            // writes the text and the tag.
            unsafe {
                (self.enc)(
                    &self.data,
                    ctx.as_mut_ptr(),
                    p,
                    p,
                    text.len() as u64,
                    nonce.as_ptr(),
                    aad.as_ptr(),
                    aad.len() as u64,
                    tag.as_mut_ptr(),
                    TAG_LEN as u64,
                )
            };
            true
        }

        /// Decrypts `text` in place and checks the tag in constant time. On a mismatch the
        /// text is zeroed (the library decrypts before the tag can be checked), so no
        /// unauthenticated plaintext is left for a careless caller.
        #[inline(always)]
        pub(super) fn open(
            &self,
            nonce: &[u8; 12],
            aad: &[u8],
            text: &mut [u8],
            tag: &[u8],
        ) -> bool {
            let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
                return false;
            };
            if text.len() as u64 > GCM_MAX_TEXT_LEN {
                return false;
            }
            let mut ctx = MaybeUninit::<sys::gcm_context_data>::uninit();
            let mut computed = [0u8; TAG_LEN];
            let p = text.as_mut_ptr();
            // SAFETY: as in `seal`; `computed` receives the tag the library computes.
            unsafe {
                (self.dec)(
                    &self.data,
                    ctx.as_mut_ptr(),
                    p,
                    p,
                    text.len() as u64,
                    nonce.as_ptr(),
                    aad.as_ptr(),
                    aad.len() as u64,
                    computed.as_mut_ptr(),
                    TAG_LEN as u64,
                )
            };
            let ok = ct_eq(&computed, tag);
            if !ok {
                text.fill(0);
            }
            ok
        }
    }

    impl Drop for Key {
        fn drop(&mut self) {
            // SAFETY: clears exactly the key data this `Key` owns.
            unsafe {
                sys::imb_clear_mem(
                    (&mut self.data as *mut sys::gcm_key_data).cast(),
                    std::mem::size_of::<sys::gcm_key_data>(),
                )
            };
        }
    }

    /// Tag comparison that does not stop at the first differing byte.
    #[inline(always)]
    fn ct_eq(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
        let x = u128::from_ne_bytes(*a) ^ u128::from_ne_bytes(*b);
        std::hint::black_box(x) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4106 has no vectors of its own; the GCM spec's test case 4 (McGrew & Viega) with
    // the first 4 IV bytes as the salt.
    const KEY: &str = "feffe9928665731c6d6a8f9467308308";
    const IV12: &str = "cafebabefacedbaddecaf888";
    const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                      1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    const CT: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                      21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091";
    const TAG: &str = "5bc94fbc3221a5db94fae95ae7121a47";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(backend: Backend) -> AeadKey {
        let mut km = hex(KEY);
        km.extend_from_slice(&hex(IV12)[..4]);
        AeadKey::new(backend, Suite::Aes128Gcm, &km).unwrap()
    }

    fn iv() -> [u8; IV_LEN] {
        hex(IV12)[4..].try_into().unwrap()
    }

    #[test]
    fn gcm_test_case_4_every_backend() {
        for b in Backend::ALL {
            let k = key(b);
            let mut text = hex(PT);
            let mut tag = [0u8; TAG_LEN];
            assert!(k.seal(&iv(), &hex(AAD), &mut text, &mut tag));
            assert_eq!(text, hex(CT), "{b:?}");
            assert_eq!(tag.to_vec(), hex(TAG), "{b:?}");
            assert!(k.open(&iv(), &hex(AAD), &mut text, &tag));
            assert_eq!(text, hex(PT));
            let mut bad = hex(CT);
            bad[3] ^= 0x20;
            assert!(!k.open(&iv(), &hex(AAD), &mut bad, &tag), "{b:?}");
            let mut ct = hex(CT);
            assert!(!k.open(&iv(), &hex(AAD)[1..], &mut ct, &tag), "{b:?}");
        }
    }

    #[test]
    fn batch_sets_each_outcome() {
        for b in Backend::ALL {
            let k = key(b);
            let mut bufs = [[7u8; 40], [9u8; 40], [1u8; 40]];
            let mut tags = [[0u8; TAG_LEN]; 3];
            let aad = [1u8, 2, 3, 4, 0, 0, 0, 9];
            let mut jobs: [AeadJob<'_>; 3] = Default::default();
            for (i, ((j, t), tag)) in jobs.iter_mut().zip(&mut bufs).zip(&mut tags).enumerate() {
                j.iv = [i as u8; IV_LEN];
                j.aad = &aad;
                j.text = t;
                j.tag = tag;
            }
            assert_eq!(k.seal_batch(&mut jobs), 0);
            assert!(jobs.iter().all(|j| j.ok));
            jobs[1].text[5] ^= 1;
            jobs[2].tag = &mut [];
            assert_eq!(k.open_batch(&mut jobs), 2);
            assert_eq!(
                jobs.iter().map(|j| j.ok).collect::<Vec<_>>(),
                [true, false, false]
            );
            assert_eq!(jobs[0].text, &[7u8; 40]);
        }
    }

    #[test]
    fn keymat_length_is_checked() {
        for b in Backend::ALL {
            for s in [Suite::Aes128Gcm, Suite::Aes192Gcm, Suite::Aes256Gcm] {
                assert!(AeadKey::new(b, s, &vec![1u8; s.keymat_len()]).is_ok());
                assert_eq!(
                    AeadKey::new(b, s, &vec![1u8; s.key_len()]).err(),
                    Some(KeyError::BadLength {
                        expected: s.keymat_len(),
                        got: s.key_len()
                    })
                );
            }
        }
    }

    #[test]
    fn keys_are_send_and_sync_and_ipsec_mb_is_available() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AeadKey>();
        let arch = Backend::IpsecMb.implementation();
        assert_ne!(arch, "unavailable");
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("vaes") {
            assert_eq!(arch, "avx512+vaes");
        }
    }

    #[test]
    fn one_key_used_by_several_threads_at_once() {
        // The documented claim behind `Sync`: the key data is read-only after set-up.
        for b in Backend::ALL {
            let k = std::sync::Arc::new(key(b));
            let threads: Vec<_> = (0..4u8)
                .map(|t| {
                    let k = k.clone();
                    std::thread::spawn(move || {
                        for i in 0..2000u32 {
                            let len = (i as usize * 7 + t as usize) % 300;
                            let plain: Vec<u8> = (0..len).map(|x| x as u8 ^ t).collect();
                            let mut text = plain.clone();
                            let mut tag = [0u8; TAG_LEN];
                            let iv = [t, 0, 0, 0, (i >> 8) as u8, i as u8, 1, 2];
                            assert!(k.seal(&iv, &[t; 8], &mut text, &mut tag));
                            assert!(k.open(&iv, &[t; 8], &mut text, &tag));
                            assert_eq!(text, plain);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
    }

    #[test]
    fn failed_open_leaves_no_plaintext_with_ipsec_mb() {
        // intel-ipsec-mb decrypts before the tag is checked: a failure must not leave the
        // decrypted (unauthenticated) text in the buffer.
        let k = key(Backend::IpsecMb);
        let mut text = hex(CT);
        let mut tag: [u8; TAG_LEN] = hex(TAG).try_into().unwrap();
        tag[15] ^= 1;
        assert!(!k.open(&iv(), &hex(AAD), &mut text, &tag));
        assert!(text.iter().all(|&b| b == 0));
    }

    #[test]
    fn debug_does_not_show_key_or_salt() {
        let km: Vec<u8> = (0xa0..0xa0 + 36).collect();
        for b in Backend::ALL {
            let k = AeadKey::new(b, Suite::Aes256Gcm, &km).unwrap();
            let s = format!("{k:?} {k:#?}");
            assert!(s.contains("redacted"), "{s}");
            for w in km.windows(2) {
                for pat in [
                    format!("{:02x}{:02x}", w[0], w[1]),
                    format!("{}, {}", w[0], w[1]),
                ] {
                    assert!(!s.to_lowercase().contains(&pat), "{pat} in {s}");
                }
            }
        }
    }
}
