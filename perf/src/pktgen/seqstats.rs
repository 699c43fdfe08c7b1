//! Sans-IO sequence tracking for one traffic class: unique packets, duplicates and reordering,
//! with a sliding bitmap window for duplicate detection.
//!
//! - `highest` is the highest sequence number seen so far.
//! - A sequence above `highest` is new and in order (a gap is loss until filled).
//! - A sequence below `highest` but within `WINDOW` of it is looked up in the bitmap: seen
//!   before = duplicate, else a reordered (late) arrival that fills a gap.
//! - A sequence `WINDOW` or more below `highest` can no longer be checked: it counts as
//!   received and reordered, and also as `late` (it may in truth be a very old duplicate; the
//!   window is large enough that a duplicate that old does not happen through one device).
//!
//! Loss is `sent - unique`, computed by the caller once the drain time is over.

/// Size of the duplicate-detection window, in sequence numbers.
pub const WINDOW: u64 = 65536;
const WORDS: usize = (WINDOW / 64) as usize;

#[derive(Debug, Clone)]
pub struct SeqTracker {
    bits: Box<[u64; WORDS]>,
    highest: Option<u64>,
    /// Distinct sequence numbers received (duplicates excluded).
    pub unique: u64,
    pub duplicates: u64,
    /// Arrived below the highest sequence seen so far (not a duplicate); includes `late`.
    pub reordered: u64,
    /// Reordered by more than the window: not checked for duplication.
    pub late: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    InOrder,
    Reordered,
    Late,
    Duplicate,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self {
            bits: Box::new([0; WORDS]),
            highest: None,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            late: 0,
        }
    }

    #[inline]
    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    #[inline]
    fn clear(&mut self, seq: u64) {
        let (w, m) = Self::slot(seq);
        self.bits[w] &= !m;
    }

    /// Records one arrival.
    #[inline]
    pub fn record(&mut self, seq: u64) -> Verdict {
        let verdict = match self.highest {
            None => {
                self.highest = Some(seq);
                Verdict::InOrder
            }
            Some(h) if seq > h => {
                // Slide the window: the slots of h+1..=seq last held sequences WINDOW (or
                // more) older, which fall out of the window now.
                if seq - h >= WINDOW {
                    self.bits.fill(0);
                } else {
                    for s in h + 1..seq {
                        self.clear(s);
                    }
                    self.clear(seq);
                }
                self.highest = Some(seq);
                Verdict::InOrder
            }
            Some(h) if h - seq >= WINDOW => {
                self.unique += 1;
                self.reordered += 1;
                self.late += 1;
                return Verdict::Late;
            }
            Some(_) => {
                let (w, m) = Self::slot(seq);
                if self.bits[w] & m != 0 {
                    self.duplicates += 1;
                    return Verdict::Duplicate;
                }
                self.reordered += 1;
                Verdict::Reordered
            }
        };
        let (w, m) = Self::slot(seq);
        self.bits[w] |= m;
        self.unique += 1;
        verdict
    }

    /// Packets sent but never received (as far as unique sequence numbers tell).
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.unique)
    }

    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn run(seqs: &[u64]) -> (SeqTracker, Vec<Verdict>) {
        let mut t = SeqTracker::new();
        let v = seqs.iter().map(|&s| t.record(s)).collect();
        (t, v)
    }

    #[test]
    fn in_order_no_loss() {
        let (t, v) = run(&(0..1000).collect::<Vec<_>>());
        assert!(v.iter().all(|&x| x == InOrder));
        assert_eq!((t.unique, t.duplicates, t.reordered), (1000, 0, 0));
        assert_eq!(t.lost(1000), 0);
    }

    #[test]
    fn loss_is_sent_minus_unique() {
        let seqs: Vec<u64> = (0..100).filter(|s| s % 10 != 3).collect();
        let (t, _) = run(&seqs);
        assert_eq!(t.unique, 90);
        assert_eq!(t.lost(100), 10);
        assert_eq!(t.reordered, 0);
        // Tail loss is loss too.
        assert_eq!(t.lost(105), 15);
    }

    #[test]
    fn reorder_and_duplicate() {
        let (t, v) = run(&[0, 2, 1, 2, 1, 3, 0]);
        assert_eq!(
            v,
            [InOrder, InOrder, Reordered, Duplicate, Duplicate, InOrder, Duplicate]
        );
        assert_eq!((t.unique, t.duplicates, t.reordered), (4, 3, 1));
        assert_eq!(t.lost(4), 0);
    }

    #[test]
    fn duplicate_of_highest() {
        let (t, v) = run(&[5, 5]);
        assert_eq!(v, [InOrder, Duplicate]);
        assert_eq!(t.unique, 1);
    }

    #[test]
    fn window_edges() {
        let w = WINDOW;
        // w-1 behind the highest: still inside the window, so checked.
        let (t, v) = run(&[0, w - 1, 0, 1]);
        assert_eq!(v, [InOrder, InOrder, Duplicate, Reordered]);
        assert_eq!(t.late, 0);
        // Exactly w behind: outside, counted late (not dup), even though it was seen.
        let (t, v) = run(&[0, w, 0]);
        assert_eq!(v, [InOrder, InOrder, Late]);
        assert_eq!((t.unique, t.duplicates, t.reordered, t.late), (3, 0, 1, 1));
        // A slot reused after the window slid is not mistaken for a duplicate.
        let (_, v) = run(&[0, 1, w + 1, 1 + w / 2, w + 1]);
        assert_eq!(v, [InOrder, InOrder, InOrder, Reordered, Duplicate]);
        let (_, v) = run(&[3, w + 3, 3 + w - 1, 3 + 1]);
        assert_eq!(v, [InOrder, InOrder, Reordered, Reordered]);
        // A jump of more than the window clears everything.
        let (_, v) = run(&[0, 1, 10 * w, 10 * w - 1, 10 * w - w + 1, 1]);
        assert_eq!(v, [InOrder, InOrder, InOrder, Reordered, Reordered, Late]);
    }

    #[test]
    fn slides_over_many_windows() {
        let mut t = SeqTracker::new();
        for s in 0..5 * WINDOW {
            assert_eq!(t.record(s), InOrder);
            if s >= 100 && s % 1000 == 0 {
                assert_eq!(t.record(s - 100), Duplicate);
            }
        }
        assert_eq!(t.unique, 5 * WINDOW);
        assert_eq!(t.reordered, 0);
    }
}
