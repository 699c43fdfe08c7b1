//! The receiver's reorder buffer for per-packet spreading, sans-IO: packets of a spread flow
//! travel over several paths with different delays and arrive out of order; TCP would read
//! that as loss. Spread packets carry a sequence number of their sender (24 bits, in the
//! VXLAN header's reserved bits); the receiver releases them in that order.
//!
//! - In order: released at once (with any held successors).
//! - Early (a gap before it): held, at most `WINDOW` sequence numbers ahead.
//! - A gap that does not fill within the timeout (the packet was lost) is skipped.
//! - Late (behind what was released, or a duplicate): released at once; ESP's anti-replay
//!   window has already dropped true duplicates.
//! - Far ahead (the sender restarted, or a long loss): everything held is released, and the
//!   order starts again from it.
//!
//! The buffer never allocates after it is made and holds at most `WINDOW` packets.

/// VXLAN flag bit (reserved in RFC 7348) of a spread packet: the 24 reserved bits after the
/// flags carry its sequence number.
pub const FLAG_SEQ: u8 = 0x10;

/// Marks the VXLAN header `vx` (8 bytes) with sequence number `seq`.
pub fn write_seq(vx: &mut [u8], seq: u32) {
    vx[0] |= FLAG_SEQ;
    let b = (seq & SEQ_MASK).to_be_bytes();
    vx[1..4].copy_from_slice(&b[1..4]);
}

/// The sequence number of a spread packet's VXLAN header.
pub fn read_seq(vx: &[u8]) -> Option<u32> {
    if vx.len() < 4 || vx[0] & FLAG_SEQ == 0 {
        return None;
    }
    Some(u32::from_be_bytes([0, vx[1], vx[2], vx[3]]))
}

/// Sequence numbers are 24 bits.
pub const SEQ_BITS: u32 = 24;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;
/// Packets a buffer may hold (and how far ahead of the next expected one a packet may be).
pub const WINDOW: usize = 512;

/// A reorder buffer of items `T` (the data plane's: a packet and its egress port).
#[derive(Debug)]
pub struct Reorder<T> {
    next: u32,
    started: bool,
    slots: Vec<Option<(u32, T)>>,
    held: usize,
    /// When the oldest held item arrived (valid while `held > 0`).
    oldest_at: u64,
    /// Gaps skipped after the timeout, and items released late (behind the order).
    pub skipped: u64,
    pub late: u64,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self {
            next: 0,
            started: false,
            slots: (0..WINDOW).map(|_| None).collect(),
            held: 0,
            oldest_at: 0,
            skipped: 0,
            late: 0,
        }
    }
}

impl<T> Reorder<T> {
    /// Items held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// When the oldest held item arrived (`None`: nothing held).
    pub fn oldest(&self) -> Option<u64> {
        (self.held > 0).then_some(self.oldest_at)
    }

    /// Takes item `item` with sequence number `seq` at time `now`; `release` gets every item
    /// that may go now, in order.
    pub fn push(&mut self, seq: u32, item: T, now: u64, mut release: impl FnMut(T)) {
        let seq = seq & SEQ_MASK;
        if !self.started {
            self.started = true;
            self.next = seq;
        }
        let ahead = seq.wrapping_sub(self.next) & SEQ_MASK;
        if ahead == 0 {
            release(item);
            self.next = (self.next + 1) & SEQ_MASK;
            self.drain(&mut release);
        } else if ahead >= 1 << (SEQ_BITS - 1) {
            // Behind the order: late or duplicate.
            self.late += 1;
            release(item);
        } else if (ahead as usize) < WINDOW {
            let slot = &mut self.slots[seq as usize % WINDOW];
            if let Some((_, old)) = slot.take() {
                // The same sequence number again (a duplicate): keep the newer one.
                self.held -= 1;
                release(old);
            }
            if self.held == 0 {
                self.oldest_at = now;
            }
            *slot = Some((seq, item));
            self.held += 1;
        } else {
            // Far ahead: release everything held, in order, and start from this one.
            self.flush(&mut release);
            self.next = seq;
            release(item);
            self.next = (self.next + 1) & SEQ_MASK;
        }
    }

    /// At `now`: when the oldest held item has waited `timeout`, the gap before it is given up
    /// and what follows is released.
    pub fn poll(&mut self, now: u64, timeout: u64, mut release: impl FnMut(T)) {
        while self.held > 0 && now.saturating_sub(self.oldest_at) >= timeout {
            // Skip to the first held sequence number.
            let mut skipped = 0;
            while self.slots[self.next as usize % WINDOW]
                .as_ref()
                .is_none_or(|(s, _)| *s != self.next)
            {
                self.next = (self.next + 1) & SEQ_MASK;
                skipped += 1;
                if skipped > WINDOW {
                    break;
                }
            }
            self.skipped += 1;
            self.drain(&mut release);
            // What is still held arrived later than the gap; give it a fresh wait.
            self.oldest_at = now;
        }
    }

    /// Releases everything held, in order.
    pub fn flush(&mut self, mut release: impl FnMut(T)) {
        for k in 0..WINDOW as u32 {
            if self.held == 0 {
                break;
            }
            let seq = (self.next + k) & SEQ_MASK;
            let slot = &mut self.slots[seq as usize % WINDOW];
            if slot.as_ref().is_some_and(|(s, _)| *s == seq) {
                if let Some((_, item)) = slot.take() {
                    self.held -= 1;
                    release(item);
                }
            }
        }
        // Anything left (sequence numbers outside the window cannot be; defensive).
        for slot in &mut self.slots {
            if let Some((_, item)) = slot.take() {
                release(item);
            }
        }
        self.held = 0;
    }

    fn drain(&mut self, release: &mut impl FnMut(T)) {
        loop {
            let slot = &mut self.slots[self.next as usize % WINDOW];
            match slot {
                Some((s, _)) if *s == self.next => {
                    if let Some((_, item)) = slot.take() {
                        self.held -= 1;
                        release(item);
                    }
                    self.next = (self.next + 1) & SEQ_MASK;
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn run(r: &mut Reorder<u32>, seqs: &[u32], now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        for &s in seqs {
            r.push(s, s, now, |x| out.push(x));
        }
        out
    }

    #[test]
    fn in_order_passes_and_a_swap_is_put_right() {
        let mut r = Reorder::default();
        assert_eq!(run(&mut r, &[5, 6, 8, 7, 9], 0), [5, 6, 7, 8, 9]);
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn two_paths_with_different_delays_come_out_in_order() {
        // Even packets on a fast path, odd ones 3 packets late on the slow one.
        let mut rng = Rng(1);
        let mut arrivals: Vec<(u64, u32)> = (0..2000u32)
            .map(|s| {
                let t = u64::from(s) * 10 + if s % 2 == 1 { 30 + rng.below(5) } else { 0 };
                (t, s)
            })
            .collect();
        arrivals.sort();
        let mut r = Reorder::default();
        let mut out = Vec::new();
        for (t, s) in arrivals {
            r.push(s, s, t, |x| out.push(x));
        }
        assert_eq!(out, (0..2000).collect::<Vec<_>>());
    }

    #[test]
    fn a_lost_packet_is_skipped_after_the_timeout() {
        let mut r = Reorder::default();
        let mut out = run(&mut r, &[0, 1, 3, 4], 100);
        assert_eq!(out, [0, 1]);
        r.poll(105, 10, |x| out.push(x));
        assert_eq!(out, [0, 1], "not yet");
        r.poll(110, 10, |x| out.push(x));
        assert_eq!(out, [0, 1, 3, 4]);
        assert_eq!(r.skipped, 1);
        // 2 comes after all: late, released at once.
        r.push(2, 2, 120, |x| out.push(x));
        assert_eq!(out, [0, 1, 3, 4, 2]);
        assert_eq!(r.late, 1);
        r.push(5, 5, 121, |x| out.push(x));
        assert_eq!(out.last(), Some(&5));
    }

    #[test]
    fn a_jump_far_ahead_flushes_and_restarts_and_the_window_is_bounded() {
        let mut r = Reorder::default();
        let mut out = run(&mut r, &[10, 12, 13], 0);
        assert_eq!(out, [10]);
        r.push(10_000, 10_000, 1, |x| out.push(x));
        assert_eq!(out, [10, 12, 13, 10_000]);
        r.push(10_001, 10_001, 2, |x| out.push(x));
        assert_eq!(out.last(), Some(&10_001));
        // Wrap-around of the 24-bit sequence.
        let mut r = Reorder::default();
        let top = (1 << SEQ_BITS) - 2;
        assert_eq!(run(&mut r, &[top, 0, top + 1, 1], 0), [top, top + 1, 0, 1]);
    }

    #[test]
    fn random_arrivals_release_every_item_exactly_once() {
        let mut rng = Rng(9);
        for _ in 0..50 {
            let mut r = Reorder::default();
            let mut out = Vec::new();
            let mut seqs: Vec<u32> = (0..300).collect();
            // Local shuffles, some losses, some duplicates.
            for i in 0..seqs.len() {
                let j = (i + rng.below(6) as usize).min(seqs.len() - 1);
                seqs.swap(i, j);
            }
            let mut sent = 0;
            for (t, &s) in seqs.iter().enumerate() {
                if rng.below(20) == 0 {
                    continue;
                }
                sent += 1;
                r.push(s, s, t as u64, |x| out.push(x));
                r.poll(t as u64, 8, |x| out.push(x));
            }
            r.flush(|x| out.push(x));
            assert_eq!(out.len(), sent);
            let mut sorted = out.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), sent, "each exactly once");
        }
    }
}
