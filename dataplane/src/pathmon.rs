//! The monitor of one path (a pair of circuits to a peer), sans-IO: it says when to send the
//! next probe ([`PathMonitor::poll`]), takes the replies ([`PathMonitor::on_reply`]) and the
//! probes that could not be sent ([`PathMonitor::on_send_failed`]), and keeps the path's state
//! and figures: RTT percentiles, loss over a sliding window, jitter (the RFC 3550 estimator
//! over successive round-trip times).
//!
//! - **Down** after `down_after` probes in a row went unanswered (BFD's detection: with the
//!   defaults, 3 x 100 ms). A probe counts as missed when the next one is due and it has no
//!   reply yet.
//! - **Up** again only after replies have come for `holddown` without a miss, so a flapping
//!   path does not attract traffic back at once; the first reply of a new path brings it up
//!   at once.
//! - **Idle** paths (no traffic with an SLA on them) are probed every `idle_interval`.
//! - A probe that could not be sent here (the worker's tx queue was full) is neither a miss nor
//!   a loss: local overload is not mistaken for loss on the underlay.

use std::collections::VecDeque;

/// Settings of a path monitor; all times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Probe interval of a path in use (10 ms ..= 10 s; default 100 ms).
    pub interval: u64,
    /// Probe interval of an idle path (default 1 s).
    pub idle_interval: u64,
    /// Missed probes in a row that take the path down (default 3).
    pub down_after: u32,
    /// Replies without a miss needed for this long before a path that was down is up again
    /// (default 1 s).
    pub holddown: u64,
    /// Probes in the loss and RTT windows (default 100).
    pub window: usize,
}

pub const MS: u64 = 1_000_000;

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: 100 * MS,
            idle_interval: 1000 * MS,
            down_after: 3,
            holddown: 1000 * MS,
            window: 100,
        }
    }
}

/// A path's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathState {
    /// No reply yet.
    Unknown,
    Up,
    Down,
}

/// What happened to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Answered,
    Lost,
    NotSent,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u32,
    at: u64,
    fate: Fate,
}

/// A path's figures, for `show paths` and the steering policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathStats {
    pub state: PathState,
    pub rtt_p50_ns: Option<u64>,
    pub rtt_p99_ns: Option<u64>,
    /// Lost over answered + lost in the window, in percent (`None` before any probe ended).
    pub loss_pct: Option<f64>,
    pub jitter_ns: u64,
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
}

/// The monitor of one path.
#[derive(Debug, Clone)]
pub struct PathMonitor {
    cfg: MonitorConfig,
    state: PathState,
    active: bool,
    next_seq: u32,
    next_due: u64,
    /// The last `window` probes, oldest first.
    sent: VecDeque<Sent>,
    /// The last `window` round-trip times, oldest first.
    rtts: VecDeque<u64>,
    last_rtt: Option<u64>,
    /// RFC 3550 §6.4.1 jitter, in ns, scaled by 16 (kept as an integer, as the RFC's code).
    jitter16: u64,
    missed_in_row: u32,
    /// A path that was down: when its current run of replies without a miss began.
    recovering_since: Option<u64>,
    total_sent: u64,
    total_answered: u64,
    total_lost: u64,
}

impl PathMonitor {
    pub fn new(cfg: MonitorConfig) -> Self {
        Self {
            cfg,
            state: PathState::Unknown,
            active: true,
            next_seq: 1,
            next_due: 0,
            sent: VecDeque::with_capacity(cfg.window),
            rtts: VecDeque::with_capacity(cfg.window),
            last_rtt: None,
            jitter16: 0,
            missed_in_row: 0,
            recovering_since: None,
            total_sent: 0,
            total_answered: 0,
            total_lost: 0,
        }
    }

    pub fn state(&self) -> PathState {
        self.state
    }

    /// Whether traffic with an SLA uses the path (probed every `interval`) or not
    /// (every `idle_interval`).
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    fn interval(&self) -> u64 {
        if self.active {
            self.cfg.interval
        } else {
            self.cfg.idle_interval
        }
    }

    /// At `now`: the sequence number of the probe to send now, if one is due. The previous
    /// probe, still unanswered, is counted missed; the returned state change, if any, is the
    /// path going down.
    pub fn poll(&mut self, now: u64) -> Option<(u32, Option<PathState>)> {
        if now < self.next_due {
            return None;
        }
        let mut change = None;
        if let Some(prev) = self.sent.back_mut() {
            if prev.fate == Fate::Pending {
                prev.fate = Fate::Lost;
                self.total_lost += 1;
                self.missed_in_row += 1;
                self.recovering_since = None;
                if self.missed_in_row >= self.cfg.down_after && self.state != PathState::Down {
                    self.state = PathState::Down;
                    change = Some(PathState::Down);
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        if self.sent.len() == self.cfg.window.max(1) {
            self.sent.pop_front();
        }
        self.sent.push_back(Sent {
            seq,
            at: now,
            fate: Fate::Pending,
        });
        self.total_sent += 1;
        self.next_due = now + self.interval();
        Some((seq, change))
    }

    /// The probe `seq` could not be sent (local overload): it counts for nothing.
    pub fn on_send_failed(&mut self, seq: u32) {
        if let Some(s) = self.sent.iter_mut().find(|s| s.seq == seq) {
            if s.fate == Fate::Pending {
                s.fate = Fate::NotSent;
                self.total_sent -= 1;
            }
        }
    }

    /// A reply to probe `seq` arrived at `now`; `hold_ns` is how long the responder held it.
    /// Returns the state change it causes, if any. A reply to a probe no longer in the window,
    /// or answered already, is ignored.
    pub fn on_reply(&mut self, now: u64, seq: u32, hold_ns: u64) -> Option<PathState> {
        let s = self.sent.iter_mut().find(|s| s.seq == seq)?;
        match s.fate {
            Fate::Pending => {}
            // A late reply: the probe was counted lost; it was not.
            Fate::Lost => self.total_lost -= 1,
            Fate::Answered | Fate::NotSent => return None,
        }
        s.fate = Fate::Answered;
        let rtt = now.saturating_sub(s.at).saturating_sub(hold_ns);
        self.total_answered += 1;
        if let Some(prev) = self.last_rtt {
            // J = J + (|D| - J) / 16, in units of 1/16 ns.
            let d = rtt.abs_diff(prev);
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.last_rtt = Some(rtt);
        if self.rtts.len() == self.cfg.window.max(1) {
            self.rtts.pop_front();
        }
        self.rtts.push_back(rtt);
        self.missed_in_row = 0;
        match self.state {
            PathState::Unknown => {
                self.state = PathState::Up;
                Some(PathState::Up)
            }
            PathState::Down => {
                let since = *self.recovering_since.get_or_insert(now);
                if now - since >= self.cfg.holddown {
                    self.state = PathState::Up;
                    self.recovering_since = None;
                    Some(PathState::Up)
                } else {
                    None
                }
            }
            PathState::Up => None,
        }
    }

    /// The path's figures now.
    pub fn stats(&self) -> PathStats {
        let mut r: Vec<u64> = self.rtts.iter().copied().collect();
        r.sort_unstable();
        let pct = |p: f64| -> Option<u64> {
            if r.is_empty() {
                return None;
            }
            let i = ((p * r.len() as f64).ceil() as usize).clamp(1, r.len()) - 1;
            Some(r[i])
        };
        let (answered, lost) = self
            .sent
            .iter()
            .fold((0u64, 0u64), |(a, l), s| match s.fate {
                Fate::Answered => (a + 1, l),
                Fate::Lost => (a, l + 1),
                _ => (a, l),
            });
        PathStats {
            state: self.state,
            rtt_p50_ns: pct(0.50),
            rtt_p99_ns: pct(0.99),
            loss_pct: (answered + lost > 0).then(|| lost as f64 * 100.0 / (answered + lost) as f64),
            jitter_ns: self.jitter16 >> 4,
            sent: self.total_sent,
            answered: self.total_answered,
            lost: self.total_lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `m` from `from` to `to` in 1 ms steps; each probe sent at `t` is answered at
    /// `t + rtt(seq)` when `rtt` gives `Some`. Returns the state changes with their times.
    fn drive(
        m: &mut PathMonitor,
        from: u64,
        to: u64,
        mut rtt: impl FnMut(u32, u64) -> Option<u64>,
    ) -> Vec<(u64, PathState)> {
        let mut changes = Vec::new();
        let mut in_flight: Vec<(u64, u32)> = Vec::new();
        let mut t = from;
        while t < to {
            in_flight.sort_unstable();
            while let Some(&(at, seq)) = in_flight.first() {
                if at > t {
                    break;
                }
                in_flight.remove(0);
                if let Some(c) = m.on_reply(at, seq, 0) {
                    changes.push((at, c));
                }
            }
            if let Some((seq, c)) = m.poll(t) {
                if let Some(c) = c {
                    changes.push((t, c));
                }
                if let Some(r) = rtt(seq, t) {
                    in_flight.push((t + r, seq));
                }
            }
            t += MS;
        }
        changes
    }

    #[test]
    fn steady_path_is_up_with_its_rtt_and_no_loss() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        assert_eq!(m.state(), PathState::Unknown);
        let changes = drive(&mut m, 0, 10_000 * MS, |_, _| Some(20 * MS));
        assert_eq!(changes, [(20 * MS, PathState::Up)]);
        let s = m.stats();
        assert_eq!((s.rtt_p50_ns, s.rtt_p99_ns), (Some(20 * MS), Some(20 * MS)));
        assert_eq!(s.loss_pct, Some(0.0));
        assert_eq!(s.jitter_ns, 0);
        assert_eq!(s.sent, 100, "every 100 ms for 10 s");
    }

    #[test]
    fn a_blackhole_takes_the_path_down_within_three_intervals_and_holddown_brings_it_back() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let cut = 2000 * MS;
        let back = 4000 * MS;
        let changes = drive(&mut m, 0, 8000 * MS, |_, t| {
            (t < cut || t >= back).then_some(10 * MS)
        });
        let down = changes.iter().find(|c| c.1 == PathState::Down).unwrap().0;
        assert!(
            down > cut && down <= cut + 300 * MS,
            "down at {} ms",
            down / MS
        );
        let up_again = changes
            .iter()
            .filter(|c| c.1 == PathState::Up)
            .nth(1)
            .unwrap()
            .0;
        // The first reply after the cut comes at 4010 ms; up only a hold-down later.
        assert!(
            up_again >= back + 1000 * MS && up_again < back + 1200 * MS,
            "up at {} ms",
            up_again / MS
        );
        let s = m.stats();
        assert_eq!(s.lost, 20, "the 20 probes of the 2 s cut");
    }

    #[test]
    fn loss_over_the_window_and_late_replies() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        // Every 10th probe lost; one reply (seq 5) arrives 150 ms late, after it was counted.
        drive(&mut m, 0, 20_000 * MS, |seq, _| match seq {
            5 => Some(150 * MS),
            s if s % 10 == 0 => None,
            _ => Some(5 * MS),
        });
        let s = m.stats();
        let loss = s.loss_pct.unwrap();
        assert!((9.0..=11.0).contains(&loss), "loss {loss}%");
        assert_eq!(
            m.state(),
            PathState::Up,
            "isolated losses do not take it down"
        );
        // Seq 10, 20, .. 190 counted lost (200 is still pending), and seq 5 was late, not lost.
        assert_eq!(s.lost, 19);
    }

    #[test]
    fn probes_not_sent_here_are_not_loss() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let mut t = 0;
        for _ in 0..50 {
            let (seq, change) = m.poll(t).unwrap();
            assert_eq!(change, None);
            // Local overload: the worker could not send it.
            m.on_send_failed(seq);
            t += 100 * MS;
        }
        let s = m.stats();
        assert_eq!((s.sent, s.lost, s.loss_pct), (0, 0, None));
        assert_eq!(m.state(), PathState::Unknown);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        // RTT alternating 10 / 14 ms: |D| = 4 ms every time; J converges to 4 ms.
        drive(&mut m, 0, 60_000 * MS, |seq, _| {
            Some(if seq % 2 == 0 { 10 * MS } else { 14 * MS })
        });
        let j = m.stats().jitter_ns;
        assert!(j > 3_900_000 && j <= 4 * MS, "jitter {j} ns");
        let s = m.stats();
        assert_eq!((s.rtt_p50_ns, s.rtt_p99_ns), (Some(10 * MS), Some(14 * MS)));
    }

    #[test]
    fn idle_paths_are_probed_less_often() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        m.set_active(false);
        drive(&mut m, 0, 10_000 * MS, |_, _| Some(MS));
        assert_eq!(m.stats().sent, 10);
        m.set_active(true);
        drive(&mut m, 10_000 * MS, 11_000 * MS, |_, _| Some(MS));
        assert_eq!(m.stats().sent, 20);
    }

    #[test]
    fn unknown_and_duplicate_replies_are_ignored() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let (seq, _) = m.poll(0).unwrap();
        assert_eq!(m.on_reply(5 * MS, seq + 7, 0), None);
        assert_eq!(m.on_reply(5 * MS, seq, 0), Some(PathState::Up));
        assert_eq!(m.on_reply(6 * MS, seq, 0), None);
        assert_eq!(m.stats().answered, 1);
    }
}
