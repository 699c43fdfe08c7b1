//! The sans-IO impairment scheduler of one direction of one circuit.
//!
//! A frame that arrives at time `now` (monotonic nanoseconds) goes through, in order:
//! blackhole → random loss → the rate limiter (a link of `rate` bit/s with a tail-drop queue of
//! [`RATE_QUEUE_NS`] worth of bytes) → delay ± jitter → FIFO clamp (a frame is never released
//! before the one queued ahead of it, so jitter alone does not reorder) → optional reordering
//! (the frame is put ahead of its predecessor) → optional duplication (a copy released right
//! after it). The result is a release timestamp; the I/O layer asks [`Direction::next_release`]
//! for its poll timeout and pops due frames with [`Direction::pop_due`].

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Largest frame the emulator carries (jumbo frames; offloads are off in the lab).
pub const MAX_FRAME: usize = 9216;
/// The rate limiter's queue holds this much time of traffic at the configured rate.
pub const RATE_QUEUE_NS: u64 = 50_000_000;
/// Hard cap on the bytes one direction holds (delay × packet rate could grow without bound).
pub const MAX_QUEUED_BYTES: usize = 64 << 20;
/// Upper bounds accepted for settings.
pub const MAX_DELAY_MS: f64 = 60_000.0;
pub const MAX_RATE_MBIT: f64 = 1_000_000.0;

/// Impairments of one direction. All zero / false = a clean wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// One-way delay, milliseconds.
    pub delay_ms: f64,
    /// Uniform random variation of the delay, ± milliseconds (the result is clamped at 0, and
    /// FIFO order is kept).
    pub jitter_ms: f64,
    /// Random loss, percent per frame.
    pub loss_pct: f64,
    /// Duplication, percent per frame.
    pub duplicate_pct: f64,
    /// Reordering, percent per frame: the frame is sent ahead of its predecessor when that one
    /// is still queued (so it needs a delay or a backlog, as with netem).
    pub reorder_pct: f64,
    /// Rate limit in Mbit/s of Ethernet frame bytes (0 = unlimited).
    pub rate_mbit: f64,
    /// Drop everything silently (carrier stays up on both ends).
    pub blackhole: bool,
}

impl Settings {
    pub fn validate(&self) -> Result<(), String> {
        let ms = |name: &str, v: f64| -> Result<(), String> {
            if !v.is_finite() || !(0.0..=MAX_DELAY_MS).contains(&v) {
                return Err(format!(
                    "{name} must be between 0 and {MAX_DELAY_MS} ms, got {v}"
                ));
            }
            Ok(())
        };
        let pct = |name: &str, v: f64| -> Result<(), String> {
            if !v.is_finite() || !(0.0..=100.0).contains(&v) {
                return Err(format!(
                    "{name} must be a percentage between 0 and 100, got {v}"
                ));
            }
            Ok(())
        };
        ms("delay", self.delay_ms)?;
        ms("jitter", self.jitter_ms)?;
        pct("loss", self.loss_pct)?;
        pct("duplicate", self.duplicate_pct)?;
        pct("reorder", self.reorder_pct)?;
        if !self.rate_mbit.is_finite() || !(0.0..=MAX_RATE_MBIT).contains(&self.rate_mbit) {
            return Err(format!(
                "rate must be between 0 (unlimited) and {MAX_RATE_MBIT} Mbit/s, got {}",
                self.rate_mbit
            ));
        }
        Ok(())
    }

    pub fn is_clear(&self) -> bool {
        *self == Settings::default()
    }

    /// The same words `ctl set` takes, e.g. `delay 40 jitter 5 loss 1`; "clear" when none.
    pub fn describe(&self) -> String {
        let mut w = Vec::new();
        let f = |v: f64| {
            let s = format!("{v:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        if self.delay_ms > 0.0 {
            w.push(format!("delay {}", f(self.delay_ms)));
        }
        if self.jitter_ms > 0.0 {
            w.push(format!("jitter {}", f(self.jitter_ms)));
        }
        if self.loss_pct > 0.0 {
            w.push(format!("loss {}", f(self.loss_pct)));
        }
        if self.duplicate_pct > 0.0 {
            w.push(format!("duplicate {}", f(self.duplicate_pct)));
        }
        if self.reorder_pct > 0.0 {
            w.push(format!("reorder {}", f(self.reorder_pct)));
        }
        if self.rate_mbit > 0.0 {
            w.push(format!("rate {}", f(self.rate_mbit)));
        }
        if self.blackhole {
            w.push("blackhole".into());
        }
        if w.is_empty() {
            "clear".into()
        } else {
            w.join(" ")
        }
    }
}

/// Counters of one direction. `rx` counts frames read from the ingress interface, `tx` frames
/// written to the egress interface (duplicates included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub rx: u64,
    pub tx: u64,
    pub dropped_loss: u64,
    pub dropped_blackhole: u64,
    /// Tail drops of the rate limiter's queue (or of the hard cap on held bytes).
    pub dropped_queue: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Frames held for a non-zero time (delay, jitter, rate-limit backlog).
    pub delayed: u64,
    /// Frames the egress socket refused (e.g. ENOBUFS).
    pub dropped_tx_error: u64,
    /// Frames larger than [`MAX_FRAME`] (truncated on read, never forwarded).
    pub dropped_oversize: u64,
    /// Frames the kernel dropped before the emulator read them (PACKET_STATISTICS).
    pub rx_kernel_drops: u64,
    /// Worst lateness of a release against its scheduled time, µs (scheduling noise of the
    /// emulator itself, e.g. when the host's CPUs are busy).
    pub release_late_max_us: u64,
}

#[derive(Debug)]
struct Pending {
    release_at: u64,
    frame: Vec<u8>,
}

/// The scheduler of one direction.
#[derive(Debug)]
pub struct Direction {
    settings: Settings,
    rng: Rng,
    /// Ordered by release: `release_at` never decreases from front to back.
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    /// Rate limiter: when the emulated link finishes serializing what it has accepted.
    link_free_at: u64,
    pub counters: Counters,
}

impl Direction {
    pub fn new(seed: u64) -> Self {
        Direction {
            settings: Settings::default(),
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            queued_bytes: 0,
            link_free_at: 0,
            counters: Counters::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replace the settings. Frames already queued keep their release times (they are "in
    /// the provider network"), except that a blackhole drops them.
    pub fn set_settings(&mut self, settings: Settings, now: u64) {
        if settings.rate_mbit != self.settings.rate_mbit {
            self.link_free_at = self.link_free_at.min(now);
        }
        if settings.blackhole {
            self.counters.dropped_blackhole += self.queue.len() as u64;
            self.queue.clear();
            self.queued_bytes = 0;
        }
        self.settings = settings;
    }

    pub fn queued_packets(&self) -> usize {
        self.queue.len()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Accept a frame that arrived at `now`.
    pub fn enqueue(&mut self, now: u64, frame: Vec<u8>) {
        self.counters.rx += 1;
        let s = &self.settings;
        if s.blackhole {
            self.counters.dropped_blackhole += 1;
            return;
        }
        if self.rng.chance(s.loss_pct / 100.0) {
            self.counters.dropped_loss += 1;
            return;
        }
        if self.queued_bytes + frame.len() > MAX_QUEUED_BYTES {
            self.counters.dropped_queue += 1;
            return;
        }

        // Rate limiter: a link of `rate` bit/s in front of a queue of RATE_QUEUE_NS worth of
        // bytes (a token bucket one frame deep, i.e. pacing at the line rate). An idle link
        // always accepts one frame, however large, so low rates still pass jumbo frames.
        let mut t = now;
        if s.rate_mbit > 0.0 {
            let serialize_ns = (frame.len() as f64 * 8.0 * 1e3 / s.rate_mbit).ceil() as u64;
            let backlog_ns = self.link_free_at.saturating_sub(now);
            if backlog_ns > 0 && backlog_ns + serialize_ns > RATE_QUEUE_NS {
                self.counters.dropped_queue += 1;
                return;
            }
            self.link_free_at = self.link_free_at.max(now) + serialize_ns;
            t = self.link_free_at;
        }

        // Delay ± jitter (uniform), clamped at 0.
        let mut delay_ms = s.delay_ms;
        if s.jitter_ms > 0.0 {
            delay_ms += s.jitter_ms * (2.0 * self.rng.unit() - 1.0);
        }
        if delay_ms > 0.0 {
            t += (delay_ms * 1e6) as u64;
        }

        let reorder = self.rng.chance(s.reorder_pct / 100.0) && !self.queue.is_empty();
        let duplicate = self.rng.chance(s.duplicate_pct / 100.0);

        let n = self.queue.len();
        let idx = if reorder {
            // Go ahead of the last queued frame, not before the one ahead of that.
            let floor = if n >= 2 {
                self.queue[n - 2].release_at
            } else {
                0
            };
            t = t.min(self.queue[n - 1].release_at).max(floor);
            self.counters.reordered += 1;
            n - 1
        } else {
            if let Some(last) = self.queue.back() {
                t = t.max(last.release_at);
            }
            n
        };
        if t > now {
            self.counters.delayed += 1;
        }
        self.queued_bytes += frame.len();
        if duplicate {
            self.counters.duplicated += 1;
            self.queued_bytes += frame.len();
            self.queue.insert(
                idx,
                Pending {
                    release_at: t,
                    frame: frame.clone(),
                },
            );
        }
        self.queue.insert(
            idx,
            Pending {
                release_at: t,
                frame,
            },
        );
    }

    /// When the next frame is due, if any is queued.
    pub fn next_release(&self) -> Option<u64> {
        self.queue.front().map(|p| p.release_at)
    }

    /// The next frame due at `now`, in order.
    pub fn pop_due(&mut self, now: u64) -> Option<Vec<u8>> {
        if self.queue.front()?.release_at > now {
            return None;
        }
        let p = self.queue.pop_front()?;
        self.queued_bytes -= p.frame.len();
        let late_us = (now - p.release_at) / 1000;
        if late_us > self.counters.release_late_max_us {
            self.counters.release_late_max_us = late_us;
        }
        Some(p.frame)
    }

    /// The I/O layer reports the fate of a popped frame.
    pub fn note_tx(&mut self, ok: bool) {
        if ok {
            self.counters.tx += 1;
        } else {
            self.counters.dropped_tx_error += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A frame whose first 8 bytes carry a sequence number, padded to `len`.
    fn frame(seq: u64, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len.max(8)];
        f[..8].copy_from_slice(&seq.to_be_bytes());
        f
    }

    fn seq(f: &[u8]) -> u64 {
        u64::from_be_bytes(f[..8].try_into().unwrap())
    }

    fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = Settings::default();
        f(&mut s);
        s.validate().unwrap();
        s
    }

    /// Run `d` until empty, stepping the clock 1 µs; return (release time, seq) of each frame.
    fn drain(d: &mut Direction, mut now: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while let Some(next) = d.next_release() {
            now = now.max(next);
            while let Some(f) = d.pop_due(now) {
                d.note_tx(true);
                out.push((now, seq(&f)));
            }
        }
        out
    }

    #[test]
    fn clean_wire_releases_immediately_in_order() {
        let mut d = Direction::new(1);
        for i in 0..10 {
            d.enqueue(1000 + i, frame(i, 64));
            assert_eq!(d.next_release(), Some(1000 + i));
            assert_eq!(seq(&d.pop_due(1000 + i).unwrap()), i);
            assert!(d.pop_due(1000 + i).is_none());
        }
        assert_eq!(d.counters.rx, 10);
        assert_eq!(d.counters.delayed, 0);
    }

    #[test]
    fn fixed_delay() {
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.delay_ms = 40.0), 0);
        d.enqueue(5 * MS, frame(0, 100));
        d.enqueue(6 * MS, frame(1, 100));
        assert!(d.pop_due(44 * MS).is_none());
        assert_eq!(d.next_release(), Some(45 * MS));
        assert_eq!(seq(&d.pop_due(45 * MS).unwrap()), 0);
        assert!(d.pop_due(45 * MS + 999_999).is_none());
        assert_eq!(seq(&d.pop_due(46 * MS).unwrap()), 1);
        assert_eq!(d.counters.delayed, 2);
        assert_eq!(d.queued_packets(), 0);
        assert_eq!(d.queued_bytes(), 0);
    }

    #[test]
    fn jitter_keeps_fifo_order_and_mean() {
        let mut d = Direction::new(42);
        d.set_settings(
            settings(|s| {
                s.delay_ms = 20.0;
                s.jitter_ms = 10.0;
            }),
            0,
        );
        // One frame per 100 µs: jitter (±10 ms) is far larger than the gap, so without the
        // FIFO clamp frames would overtake each other constantly.
        let n = 5000u64;
        for i in 0..n {
            d.enqueue(i * 100_000, frame(i, 64));
        }
        let out = drain(&mut d, 0);
        assert_eq!(out.len(), n as usize);
        for (i, (_, s)) in out.iter().enumerate() {
            assert_eq!(*s, i as u64, "reordered by jitter alone");
        }
        assert_eq!(d.counters.reordered, 0);
        // Sparse traffic (one frame per 100 ms > 2 × jitter): the delay is delay ± jitter, mean
        // ≈ delay, spread over the whole range.
        let mut d = Direction::new(43);
        d.set_settings(
            settings(|s| {
                s.delay_ms = 20.0;
                s.jitter_ms = 10.0;
            }),
            0,
        );
        let (mut sum, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
        for i in 0..2000u64 {
            let t = i * 100 * MS;
            d.enqueue(t, frame(i, 64));
            let r = d.next_release().unwrap();
            assert!(d.pop_due(r).is_some());
            let delay = r - t;
            sum += delay;
            lo = lo.min(delay);
            hi = hi.max(delay);
        }
        let mean_ms = sum as f64 / 2000.0 / MS as f64;
        assert!((mean_ms - 20.0).abs() < 0.5, "mean {mean_ms}");
        assert!((10 * MS..11 * MS).contains(&lo), "min {lo}");
        assert!(hi <= 30 * MS && hi > 29 * MS, "max {hi}");
    }

    #[test]
    fn loss_ratio() {
        let mut d = Direction::new(7);
        d.set_settings(settings(|s| s.loss_pct = 10.0), 0);
        let n = 100_000u64;
        for i in 0..n {
            d.enqueue(i, frame(i, 64));
        }
        let out = drain(&mut d, 0);
        let lost = d.counters.dropped_loss;
        assert_eq!(out.len() as u64 + lost, n);
        let ratio = lost as f64 / n as f64;
        assert!((ratio - 0.10).abs() < 0.005, "loss ratio {ratio}");
        // Survivors stay in order.
        assert!(out.windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn seeded_runs_are_reproducible() {
        let run = |seed| {
            let mut d = Direction::new(seed);
            d.set_settings(
                settings(|s| {
                    s.loss_pct = 20.0;
                    s.jitter_ms = 5.0;
                    s.delay_ms = 5.0;
                    s.duplicate_pct = 5.0;
                    s.reorder_pct = 5.0;
                }),
                0,
            );
            for i in 0..1000 {
                d.enqueue(i * MS, frame(i, 64));
            }
            drain(&mut d, 0)
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn blackhole_drops_everything_and_flushes_queue() {
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.delay_ms = 100.0), 0);
        for i in 0..5 {
            d.enqueue(i, frame(i, 64));
        }
        d.set_settings(settings(|s| s.blackhole = true), 10);
        for i in 5..10 {
            d.enqueue(20 + i, frame(i, 64));
        }
        assert!(d.next_release().is_none());
        assert_eq!(d.counters.dropped_blackhole, 10);
        d.set_settings(Settings::default(), 100);
        d.enqueue(200, frame(10, 64));
        assert_eq!(seq(&d.pop_due(200).unwrap()), 10);
    }

    #[test]
    fn rate_limit_paces_and_tail_drops() {
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.rate_mbit = 8.0), 0); // 1 byte per µs
                                                            // 1000-byte frames take 1 ms each. Offer a burst of 100 at once: the queue holds 50 ms.
        for i in 0..100 {
            d.enqueue(0, frame(i, 1000));
        }
        assert_eq!(d.counters.dropped_queue, 50);
        let out = drain(&mut d, 0);
        assert_eq!(out.len(), 50);
        for (i, (t, s)) in out.iter().enumerate() {
            assert_eq!(*s, i as u64);
            assert_eq!(*t, (i as u64 + 1) * MS);
        }
        // Offered load below the rate: nothing dropped, each frame waits only its own
        // serialization time.
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.rate_mbit = 8.0), 0);
        for i in 0..100u64 {
            d.enqueue(i * 2 * MS, frame(i, 1000));
            assert_eq!(d.next_release(), Some(i * 2 * MS + MS));
            assert!(d.pop_due(i * 2 * MS + MS).is_some());
        }
        assert_eq!(d.counters.dropped_queue, 0);
    }

    #[test]
    fn rate_limit_long_run_throughput() {
        // Offer 30 Mbit/s of 1500-byte frames to a 20 Mbit/s link for 2 s: 20 Mbit/s comes
        // out, the surplus is tail-dropped, and the standing queue stays ≤ 50 ms.
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.rate_mbit = 20.0), 0);
        let gap = (1500.0 * 8.0 / 30e6 * 1e9) as u64; // 400 µs
        let end = 2_000 * MS;
        let mut now = 0;
        let mut sent_bytes = 0u64;
        let mut i = 0;
        while now < end {
            d.enqueue(now, frame(i, 1500));
            i += 1;
            while let Some(f) = d.pop_due(now) {
                sent_bytes += f.len() as u64;
            }
            if let Some(r) = d.next_release() {
                assert!(r - now <= RATE_QUEUE_NS + MS, "queue over 50 ms");
            }
            now += gap;
        }
        let mbit = sent_bytes as f64 * 8.0 / 2.0 / 1e6;
        assert!((mbit - 20.0).abs() < 0.5, "throughput {mbit} Mbit/s");
        assert!(d.counters.dropped_queue > 0);
    }

    #[test]
    fn rate_limit_admits_one_jumbo_frame_at_low_rate() {
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.rate_mbit = 0.1), 0);
        d.enqueue(0, frame(0, MAX_FRAME));
        assert_eq!(d.counters.dropped_queue, 0);
        d.enqueue(0, frame(1, 64));
        assert_eq!(d.counters.dropped_queue, 1);
    }

    #[test]
    fn rate_then_delay() {
        let mut d = Direction::new(1);
        d.set_settings(
            settings(|s| {
                s.rate_mbit = 8.0;
                s.delay_ms = 10.0;
            }),
            0,
        );
        d.enqueue(0, frame(0, 1000));
        d.enqueue(0, frame(1, 1000));
        assert_eq!(drain(&mut d, 0), vec![(11 * MS, 0), (12 * MS, 1)]);
    }

    #[test]
    fn reorder_puts_frame_ahead_of_predecessor() {
        let mut d = Direction::new(1);
        d.set_settings(
            settings(|s| {
                s.delay_ms = 10.0;
                s.reorder_pct = 100.0;
            }),
            0,
        );
        // The first frame has no queued predecessor, so it cannot be reordered.
        d.enqueue(0, frame(0, 64));
        d.enqueue(MS, frame(1, 64));
        assert_eq!(d.counters.reordered, 1);
        let out = drain(&mut d, 0);
        assert_eq!(out.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1, 0]);
        // Both leave when the predecessor was due: the overtaker is never late.
        assert_eq!(out[0].0, 10 * MS);

        // At 10 %: about 10 % of frames overtake exactly one predecessor.
        let mut d = Direction::new(9);
        d.set_settings(
            settings(|s| {
                s.delay_ms = 10.0;
                s.reorder_pct = 10.0;
            }),
            0,
        );
        let n = 20_000u64;
        for i in 0..n {
            d.enqueue(i * 100_000, frame(i, 64));
        }
        let out = drain(&mut d, 0);
        assert_eq!(out.len(), n as usize);
        let ratio = d.counters.reordered as f64 / n as f64;
        assert!((ratio - 0.10).abs() < 0.01, "reorder ratio {ratio}");
        // Release times never go backwards, and each frame is at most a few places from home.
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let inversions = out.windows(2).filter(|w| w[0].1 > w[1].1).count();
        assert!(inversions > 0);
        for (pos, (_, s)) in out.iter().enumerate() {
            assert!((pos as i64 - *s as i64).abs() <= 8);
        }
    }

    #[test]
    fn duplicate_ratio() {
        let mut d = Direction::new(5);
        d.set_settings(settings(|s| s.duplicate_pct = 10.0), 0);
        let n = 50_000u64;
        for i in 0..n {
            d.enqueue(i, frame(i, 64));
        }
        let out = drain(&mut d, 0);
        let dups = d.counters.duplicated;
        assert_eq!(out.len() as u64, n + dups);
        assert_eq!(d.counters.tx, n + dups);
        let ratio = dups as f64 / n as f64;
        assert!((ratio - 0.10).abs() < 0.01, "duplicate ratio {ratio}");
        // A copy follows its original directly.
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn settings_change_keeps_queued_frames_and_order() {
        let mut d = Direction::new(1);
        d.set_settings(settings(|s| s.delay_ms = 50.0), 0);
        d.enqueue(0, frame(0, 64));
        d.set_settings(Settings::default(), MS);
        // No delay any more, but FIFO: frame 1 leaves after frame 0.
        d.enqueue(2 * MS, frame(1, 64));
        assert!(d.pop_due(2 * MS).is_none());
        assert_eq!(drain(&mut d, 0), vec![(50 * MS, 0), (50 * MS, 1)]);
    }

    #[test]
    fn validation() {
        assert!(settings(|s| s.loss_pct = 100.0).validate().is_ok());
        let bad = [
            Settings {
                loss_pct: 101.0,
                ..Default::default()
            },
            Settings {
                delay_ms: -1.0,
                ..Default::default()
            },
            Settings {
                jitter_ms: f64::NAN,
                ..Default::default()
            },
            Settings {
                rate_mbit: f64::INFINITY,
                ..Default::default()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
        assert_eq!(Settings::default().describe(), "clear");
        let s = Settings {
            delay_ms: 40.0,
            loss_pct: 0.5,
            blackhole: true,
            ..Default::default()
        };
        assert_eq!(s.describe(), "delay 40 loss 0.5 blackhole");
    }
}
