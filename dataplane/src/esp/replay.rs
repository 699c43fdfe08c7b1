//! The receiver's anti-replay window (RFC 4303 §3.4.3) for 64-bit extended sequence numbers,
//! as the block ring of RFC 6479: the bitmap is a ring of 64-bit blocks, and moving the window
//! forward clears the blocks it enters instead of shifting the whole bitmap. A check costs one
//! comparison and one bit test; an advance clears at most the ring's block count, usually one
//! block or none.
//!
//! ```text
//!   block ring (N = 2^k blocks of 64 bits; block b holds sequence numbers 64b .. 64b+63):
//!
//!   | blk i+1 | blk i+2 | ... | blk i+N-1 | blk i (top's block) |   indexed by (seq / 64) mod N
//!                                                  ^ top
//!   accepted: seq > top (new), or top - W < seq <= top with its bit clear (unseen)
//! ```
//!
//! With N >= W/64 + 1 blocks, the W numbers below and including the top always lie in blocks
//! that are still in the ring. W is configurable from 64 to 65536, rounded up to a multiple
//! of 64. The default, 1024, is well above strongSwan's 32 and VPP's 64: packets of one SA
//! spread over several circuits arrive reordered by the circuits' delay differences.
//!
//! Use: `check` the received low 32 bits before decrypting (no state changes: a forged packet
//! costs nothing); `update` with the full number after the ICV verified. `update` checks
//! again, so two copies of one packet in a batch, both pre-checked before either was
//! authenticated, still count once.
//!
//! With ESN the high 32 bits are never sent: `check` infers them from the window (RFC 4303
//! Appendix A2.2) and they enter the ICV through the AAD, so a packet whose high bits were
//! guessed wrong (it is really older than the window, or 2^32 ahead) fails authentication.

use std::fmt;

/// Smallest, default and largest window (bits).
pub const MIN_WINDOW: u32 = 64;
pub const DEFAULT_WINDOW: u32 = 1024;
pub const MAX_WINDOW: u32 = 65536;

/// Why a sequence number is refused. The names follow the kernel's counters: `replay`
/// (a number seen before) and `replay-window` (a number below the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Inside the window and already received.
    Duplicate,
    /// Below the window (or 0, which a sender never uses).
    TooOld,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::Duplicate => "sequence number already received",
            ReplayError::TooOld => "sequence number below the replay window",
        })
    }
}

impl std::error::Error for ReplayError {}

/// A window size outside `MIN_WINDOW..=MAX_WINDOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSizeError(pub u32);

impl fmt::Display for WindowSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay window {} outside {MIN_WINDOW}..={MAX_WINDOW}",
            self.0
        )
    }
}

impl std::error::Error for WindowSizeError {}

/// The window of one inbound SA. Allocated once when the SA is built (the ring is at most
/// 16 KiB for the largest window, 256 bytes for the default); no allocation afterwards.
#[derive(Clone)]
pub struct ReplayWindow {
    /// W, a multiple of 64.
    size: u64,
    /// Highest sequence number authenticated so far (0: none yet).
    top: u64,
    esn: bool,
    /// False: anti-replay is off ([`ReplayWindow::disabled`]).
    enabled: bool,
    /// `blocks.len() - 1`; the length is a power of two.
    mask: u64,
    blocks: Box<[u64]>,
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("top", &self.top)
            .field("esn", &self.esn)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// A window of `size` bits (rounded up to a multiple of 64), with or without ESN.
    pub fn new(size: u32, esn: bool) -> Result<Self, WindowSizeError> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&size) {
            return Err(WindowSizeError(size));
        }
        let size = u64::from(size.div_ceil(64) * 64);
        let n = (size / 64 + 1).next_power_of_two();
        Ok(Self {
            size,
            top: 0,
            esn,
            enabled: true,
            mask: n - 1,
            blocks: vec![0u64; n as usize].into_boxed_slice(),
        })
    }

    /// No anti-replay: every authentic packet is accepted, duplicates included. RFC 4303
    /// §3.4.3 lets a receiver choose this (`ip xfrm state ... replay-window 0`); it serves
    /// benchmarks that replay one capture endlessly. With ESN the high bits are still inferred
    /// from the highest number seen, over a notional window of 2^31.
    pub fn disabled(esn: bool) -> Self {
        Self {
            // Only ESN inference reads the size when anti-replay is off: half the sequence
            // space (RFC 4303 A2 allows any W below 2^32), so a replayed capture is taken in
            // the subspace of the highest number seen rather than the next one.
            size: 1 << 31,
            top: 0,
            esn,
            enabled: false,
            mask: 1,
            blocks: vec![0u64; 2].into_boxed_slice(),
        }
    }

    /// Whether anti-replay is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// W in bits (after rounding).
    #[inline]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Highest sequence number authenticated so far (0 before the first).
    #[inline]
    pub fn top(&self) -> u64 {
        self.top
    }

    #[inline]
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The full sequence number for received low 32 bits: the low bits themselves without
    /// ESN, else the high bits inferred per RFC 4303 Appendix A2.2. None when the inference
    /// lands before 0 or past 2^64 - 1 (no sender can have sent it).
    #[inline]
    pub fn infer(&self, seq_low: u32) -> Option<u64> {
        if !self.esn {
            return Some(u64::from(seq_low));
        }
        let tl = self.top as u32;
        let th = self.top >> 32;
        let w = self.size as u32; // at most 65536
        let seq_high = if tl >= w - 1 {
            // Case A: the window lies within one 2^32 subspace.
            if seq_low >= tl - (w - 1) {
                th
            } else {
                th.checked_add(1).filter(|&h| h <= u64::from(u32::MAX))?
            }
        } else {
            // Case B: the window straddles two subspaces.
            if seq_low >= tl.wrapping_sub(w - 1) {
                th.checked_sub(1)?
            } else {
                th
            }
        };
        Some(seq_high << 32 | u64::from(seq_low))
    }

    /// Whether `seq` (from [`infer`](Self::infer)) lies in the 2^32 subspace after the top's:
    /// under ESN, a low number below the window is read that way (RFC 4303 A2.2, case A). A
    /// packet whose ICV then fails is far more likely one that came more than a window late
    /// (reordering across circuits, a queue drained after a failover) than one 2^32 packets
    /// ahead, so it counts as too old rather than as an authentication failure.
    #[inline]
    pub fn read_as_next_subspace(&self, seq: u64) -> bool {
        self.esn && (seq >> 32) > (self.top >> 32)
    }

    /// The pre-check before decryption: the full sequence number if it may be accepted. Does
    /// not change the window.
    #[inline]
    pub fn check(&self, seq_low: u32) -> Result<u64, ReplayError> {
        let seq = self.infer(seq_low).ok_or(ReplayError::TooOld)?;
        self.check_full(seq)?;
        Ok(seq)
    }

    /// Whether the full number `seq` may be accepted now.
    #[inline]
    pub fn check_full(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top || !self.enabled {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        }
        if self.blocks[self.index(seq)] & bit(seq) != 0 {
            return Err(ReplayError::Duplicate);
        }
        Ok(())
    }

    /// Marks `seq` received after its ICV verified, advancing the window if it is the new
    /// top. Checks again first (a batch may hold the same number twice), and changes nothing
    /// when that fails.
    #[inline]
    pub fn update(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check_full(seq)?;
        if !self.enabled {
            self.top = self.top.max(seq);
            return Ok(());
        }
        if seq > self.top {
            let cur = self.top >> 6;
            let new = seq >> 6;
            // Clear the blocks the window moves into; all of them after a long jump.
            let clear = (new - cur).min(self.mask + 1);
            for i in 1..=clear {
                let idx = ((cur + i) & self.mask) as usize;
                self.blocks[idx] = 0;
            }
            self.top = seq;
        }
        let idx = self.index(seq);
        self.blocks[idx] |= bit(seq);
        Ok(())
    }

    #[inline]
    fn index(&self, seq: u64) -> usize {
        ((seq >> 6) & self.mask) as usize
    }
}

#[inline]
fn bit(seq: u64) -> u64 {
    1u64 << (seq & 63)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::testing::Rng;

    /// The obvious window: every number seen, and the top.
    struct Model {
        size: u64,
        top: u64,
        seen: BTreeSet<u64>,
    }

    impl Model {
        fn check(&self, seq: u64) -> Result<(), ReplayError> {
            if seq == 0 {
                return Err(ReplayError::TooOld);
            }
            if seq > self.top {
                return Ok(());
            }
            if self.top - seq >= self.size {
                return Err(ReplayError::TooOld);
            }
            if self.seen.contains(&seq) {
                return Err(ReplayError::Duplicate);
            }
            Ok(())
        }

        fn update(&mut self, seq: u64) -> Result<(), ReplayError> {
            self.check(seq)?;
            self.top = self.top.max(seq);
            self.seen.insert(seq);
            Ok(())
        }
    }

    #[test]
    fn disabled_window_accepts_duplicates_and_old_numbers() {
        for esn in [false, true] {
            let mut w = ReplayWindow::disabled(esn);
            assert!(!w.enabled());
            for seq in [5u64, 5, 1, 100_000, 2, 100_000, 99_990] {
                assert_eq!(w.check(seq as u32), Ok(seq), "esn {esn}");
                w.update(seq).unwrap();
            }
            assert_eq!(w.top(), 100_000);
            assert_eq!(
                w.check_full(0),
                Err(ReplayError::TooOld),
                "0 is never a sequence number"
            );
        }
    }

    fn window(size: u32) -> ReplayWindow {
        ReplayWindow::new(size, false).unwrap()
    }

    #[test]
    fn sizes_round_up_and_are_bounded() {
        assert_eq!(window(64).size(), 64);
        assert_eq!(window(65).size(), 128);
        assert_eq!(window(1000).size(), 1024);
        assert_eq!(window(DEFAULT_WINDOW).size(), 1024);
        assert_eq!(window(4096).size(), 4096);
        assert_eq!(window(MAX_WINDOW).size(), 65536);
        assert_eq!(
            ReplayWindow::new(63, false).err(),
            Some(WindowSizeError(63))
        );
        assert_eq!(ReplayWindow::new(0, false).err(), Some(WindowSizeError(0)));
        assert_eq!(
            ReplayWindow::new(65537, true).err(),
            Some(WindowSizeError(65537))
        );
        // Ring sizes: a power of two with room for W/64 + 1 blocks.
        assert_eq!(window(64).blocks.len(), 2);
        assert_eq!(window(1024).blocks.len(), 32);
        assert_eq!(window(65536).blocks.len(), 2048);
    }

    #[test]
    fn in_order_duplicate_too_old() {
        let mut w = window(64);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        for s in 1..=200u64 {
            assert_eq!(w.check(s as u32), Ok(s));
            w.update(s).unwrap();
            assert_eq!(w.check(s as u32), Err(ReplayError::Duplicate));
        }
        assert_eq!(w.top(), 200);
        // 137..=200 are the 64 numbers in the window, all seen.
        assert_eq!(w.check(137), Err(ReplayError::Duplicate));
        assert_eq!(w.check(136), Err(ReplayError::TooOld));
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
        assert_eq!(w.update(200), Err(ReplayError::Duplicate));
        assert_eq!(w.update(100), Err(ReplayError::TooOld));
        assert_eq!(w.top(), 200);
    }

    #[test]
    fn unseen_inside_the_window_is_accepted_once() {
        let mut w = window(1024);
        w.update(5000).unwrap();
        for s in [4999u64, 4000, 3977, 4500] {
            assert_eq!(w.check(s as u32), Ok(s));
            w.update(s).unwrap();
            assert_eq!(w.check(s as u32), Err(ReplayError::Duplicate));
        }
        // The lowest number inside: top - W + 1.
        assert_eq!(w.check(3976), Err(ReplayError::TooOld));
        assert_eq!(w.check(3977), Err(ReplayError::Duplicate));
        assert_eq!(w.check(3978), Ok(3978));
        assert_eq!(w.top(), 5000);
    }

    #[test]
    fn check_does_not_change_state() {
        let mut w = window(128);
        w.update(10).unwrap();
        for _ in 0..3 {
            assert_eq!(w.check(500), Ok(500));
            assert_eq!(w.check(7), Ok(7));
        }
        assert_eq!(w.top(), 10);
        assert_eq!(w.check(10), Err(ReplayError::Duplicate));
    }

    #[test]
    fn long_jumps_clear_the_ring() {
        for size in [64u32, 128, 192, 1024] {
            let mut w = window(size);
            let mut m = Model {
                size: w.size(),
                top: 0,
                seen: BTreeSet::new(),
            };
            let n = w.blocks.len() as u64;
            // Mark every number of the whole ring, then jump by exactly the ring, by more, by
            // one block less, and by many rings: nothing stale may survive in the window.
            for s in 1..64 * n {
                w.update(s).unwrap();
                m.update(s).unwrap();
            }
            for jump in [64 * n, 64 * n + 13, 64 * (n - 1), 64 * n * 5 + 1, 1, 63, 64] {
                let top = w.top() + jump;
                w.update(top).unwrap();
                m.update(top).unwrap();
                for s in top.saturating_sub(w.size() + 70)..=top + 1 {
                    assert_eq!(
                        w.check_full(s),
                        m.check(s),
                        "size {size} jump {jump} seq {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn matches_the_model_on_random_traffic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for size in [64u32, 100, 128, 1024, 4096, 65536] {
            let mut w = window(size);
            let mut m = Model {
                size: w.size(),
                top: 0,
                seen: BTreeSet::new(),
            };
            let mut next = 1u64;
            for _ in 0..20_000 {
                // Mostly in order with reordering, some duplicates, some jumps, some ancient.
                let s = match rng.below(10) {
                    0..=5 => {
                        next += 1 + rng.below(3);
                        next
                    }
                    6 => next.saturating_sub(rng.below(w.size() + 64)),
                    7 => next.saturating_sub(rng.below(8)),
                    8 => {
                        next += rng.below(w.size() * 3);
                        next
                    }
                    _ => rng.below(next + 1),
                };
                assert_eq!(w.check_full(s), m.check(s), "size {size} seq {s}");
                // A packet whose ICV fails is never updated: skip some.
                if rng.below(8) != 0 {
                    assert_eq!(w.update(s), m.update(s), "size {size} seq {s}");
                }
                assert_eq!(w.top(), m.top);
            }
        }
    }

    #[test]
    fn esn_inference_across_the_low_32_bit_wrap() {
        const B32: u64 = 1 << 32;
        let mut w = ReplayWindow::new(64, true).unwrap();
        // Startup: top 0, case B. Small numbers are in subspace 0; numbers just below 2^32
        // would be in subspace -1: impossible, so too old.
        assert_eq!(w.check(1), Ok(1));
        assert_eq!(w.check(u32::MAX), Err(ReplayError::TooOld));
        w.update(B32 - 10).unwrap();
        // Case A: Tl = 2^32 - 10.
        assert_eq!(w.infer(5), Some(B32 + 5)); // wrapped: next subspace
        assert_eq!(w.check((B32 - 20) as u32), Ok(B32 - 20)); // inside the window
                                                              // Tl - W: below the window, so by the RFC's rule it is taken for the next subspace
                                                              // (2^33 - 74), new to the window; the ICV (high bits in the AAD) then refuses it.
        assert_eq!(w.check((B32 - 74) as u32), Ok(2 * B32 - 74));
        assert_eq!(w.check((B32 - 73) as u32), Ok(B32 - 73)); // Tl - W + 1
                                                              // Accept 2^32 + 5: the window now straddles the wrap (case B, Th = 1, Tl = 5).
        w.update(B32 + 5).unwrap();
        assert_eq!(w.top(), B32 + 5);
        assert_eq!(w.check((B32 - 20) as u32), Ok(B32 - 20)); // Th - 1, still inside
        assert_eq!(w.check((B32 - 10) as u32), Err(ReplayError::Duplicate));
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
        assert_eq!(w.check(4), Ok(B32 + 4));
        assert_eq!(w.check(6), Ok(B32 + 6));
        // Tl - W + 1 = 5 - 63 mod 2^32: the oldest number in the window.
        assert_eq!(w.check((B32 - 58) as u32), Ok(B32 - 58));
        // Below that, the RFC's inference takes the low bits as the *next* subspace (2^33 -
        // 59): new by the window, and the ICV (high bits in the AAD) decides.
        assert_eq!(w.check((B32 - 59) as u32), Ok(2 * B32 - 59));
        w.update(B32 - 20).unwrap();
        assert_eq!(w.check((B32 - 20) as u32), Err(ReplayError::Duplicate));
    }

    #[test]
    fn esn_model_across_several_wraps() {
        // A sender crossing 2^32 and 2^33 with reordering inside the window: every number
        // is inferred exactly, and duplicates are caught across the wrap.
        let mut rng = Rng(42);
        for size in [64u32, 1024] {
            let mut w = ReplayWindow::new(size, true).unwrap();
            let wsz = w.size();
            let mut m = Model {
                size: wsz,
                top: 0,
                seen: BTreeSet::new(),
            };
            let start = (1u64 << 32) - 3000;
            w.update(start).unwrap();
            m.update(start).unwrap();
            let mut next = start;
            while next < (2u64 << 32) + 3000 {
                let s = if rng.below(4) == 0 {
                    next.saturating_sub(rng.below(wsz))
                } else {
                    next += 1 + rng.below(40);
                    if rng.below(500) == 0 {
                        next += (1 << 32) - 20_000; // jump close to the next wrap
                    }
                    next
                };
                let low = s as u32;
                match m.check(s) {
                    Ok(()) => {
                        assert_eq!(w.check(low), Ok(s), "size {size} seq {s:#x}");
                        w.update(s).unwrap();
                        m.update(s).unwrap();
                    }
                    Err(e) => {
                        // Duplicates are found; "too old" may infer the next subspace
                        // (then the ICV fails), never a number inside the window.
                        match w.check(low) {
                            Err(got) => assert_eq!(got, e, "seq {s:#x}"),
                            Ok(full) => {
                                assert_eq!(e, ReplayError::TooOld);
                                assert!(full > w.top(), "seq {s:#x} inferred {full:#x}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn esn_end_of_the_number_space() {
        let mut w = ReplayWindow::new(64, true).unwrap();
        w.update(u64::MAX - 1).unwrap();
        assert_eq!(w.check(u32::MAX), Ok(u64::MAX));
        // Past 2^64 - 1 there is nothing: a small low part cannot be inferred.
        assert_eq!(w.check(3), Err(ReplayError::TooOld));
        w.update(u64::MAX).unwrap();
        assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate));
    }

    #[test]
    fn without_esn_the_low_bits_are_the_number() {
        let mut w = window(64);
        w.update(u64::from(u32::MAX)).unwrap();
        assert_eq!(w.check(1), Err(ReplayError::TooOld));
        assert_eq!(w.check(u32::MAX - 1), Ok(u64::from(u32::MAX - 1)));
    }
}
