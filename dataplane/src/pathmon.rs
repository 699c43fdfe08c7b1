//! The monitor of one path (a pair of circuits to a peer), sans-IO: it says when to send the
//! next probe ([`PathMonitor::poll`]), takes the replies ([`PathMonitor::on_reply`]) and the
//! probes that could not be sent ([`PathMonitor::on_send_failed`]), and keeps the path's state
//! and figures: RTT percentiles (an HDR histogram over the recent probes), loss over a sliding
//! window, jitter (the RFC 3550 estimator over successive round-trip times).
//!
//! # Detection
//! BFD declares a path down after `multiplier x interval` without a packet: 300 ms with
//! 100 ms x 3. To fail over faster with the same probe rate, a probe here is *late* once
//! unanswered for a timeout derived from the path's own RTT (`2 x` the largest recent RTT,
//! at least `min_timeout`), not at the next interval; a late probe makes the monitor suspect
//! the path and probe it every `fast_interval` until a reply comes; `down_after` late probes
//! in a row take it down. A cut is then detected `interval` (worst case, until the next
//! probe) plus about `min_timeout + (down_after - 1) x fast_interval` after it happens:
//! 50..150 ms with the defaults on a short path.
//!
//! A path whose delay jumps (a reroute in the provider) looks like a cut until the first
//! late reply comes: that reply, to one of the probes that took the path down, proves it was
//! only slow, so the path is up again at once (a *false alarm*, counted) and the timeout has
//! grown with the new RTT.
//!
//! - **Up** again after a real outage only when replies have come for `holddown` without a
//!   miss, so a flapping path does not attract traffic back at once; the first reply of a new
//!   path brings it up at once.
//! - **Idle** paths (no traffic with an SLA on them) are probed every `idle_interval`.
//! - A probe that could not be sent here (the worker's tx queue was full) is neither a miss nor
//!   a loss, and no probe times out while the worker says it is overloaded ([`PathMonitor::poll`]
//!   `local_overload`): replies may be waiting in its own rx queue, so local overload is not
//!   mistaken for loss on the underlay.

use std::collections::VecDeque;

use hdrhistogram::Histogram;

/// Settings of a path monitor; all times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Probe interval of a path in use (10 ms ..= 10 s; default 100 ms).
    pub interval: u64,
    /// Probe interval of an idle path (default 1 s).
    pub idle_interval: u64,
    /// Late probes in a row that take the path down (default 3).
    pub down_after: u32,
    /// Replies without a miss needed for this long before a path that was down is up again
    /// (default 1 s).
    pub holddown: u64,
    /// Probes in the loss and RTT windows (default 100).
    pub window: usize,
    /// The shortest time a probe may take before it is late (default 20 ms).
    pub min_timeout: u64,
    /// The probe interval while a path is suspect (default: a tenth of `interval`, at least
    /// 10 ms).
    pub fast_interval: u64,
}

pub const MS: u64 = 1_000_000;

impl MonitorConfig {
    /// The defaults with probes every `interval`.
    pub fn with_interval(interval: u64) -> Self {
        Self {
            interval,
            fast_interval: (interval / 10).max(10 * MS).min(interval),
            ..Self::default()
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: 100 * MS,
            idle_interval: 1000 * MS,
            down_after: 3,
            holddown: 1000 * MS,
            window: 100,
            min_timeout: 20 * MS,
            fast_interval: 10 * MS,
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

impl PathState {
    pub fn name(self) -> &'static str {
        match self {
            PathState::Unknown => "unknown",
            PathState::Up => "up",
            PathState::Down => "down",
        }
    }
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

/// What [`PathMonitor::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Poll {
    /// Send a probe with this sequence number now.
    pub send: Option<u32>,
    /// The path's state changed (to down: probes went unanswered).
    pub change: Option<PathState>,
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
    /// Times the path went down, and of those, false alarms (only slow, see the module doc).
    pub downs: u64,
    pub false_alarms: u64,
}

/// RTTs are recorded in microseconds, 1 µs ..= 60 s, 2 significant digits (1%: plenty for an
/// SLA in milliseconds), with 32-bit counts: about 12 KiB a histogram, where 3 digits and
/// 64-bit counts took 200 KiB, which 1,000 learned sites (two per path) made 400 MB.
fn histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds are valid")
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
    /// RTTs of the current and the previous `window` replies (two halves of a sliding window:
    /// percentiles cover the last `window ..= 2 x window` replies).
    rtt_now: Histogram<u32>,
    rtt_before: Histogram<u32>,
    /// The largest RTT in the last `window` replies (the timeout's base).
    recent_max: VecDeque<u64>,
    last_rtt: Option<u64>,
    /// RFC 3550 §6.4.1 jitter, in ns, scaled by 16 (kept as an integer, as the RFC's code).
    jitter16: u64,
    missed_in_row: u32,
    /// The sequence number of the first late probe of the current run of them.
    run_first: u32,
    /// While down: the probes that took the path down (a late reply to one is a false alarm).
    downed_by: Option<(u32, u32)>,
    /// A path that was down: when its current run of replies without a miss began.
    recovering_since: Option<u64>,
    total_sent: u64,
    total_answered: u64,
    total_lost: u64,
    downs: u64,
    false_alarms: u64,
}

impl PathMonitor {
    pub fn new(cfg: MonitorConfig) -> Self {
        Self {
            cfg,
            state: PathState::Unknown,
            active: true,
            next_seq: 1,
            next_due: 0,
            sent: VecDeque::with_capacity(cfg.window.max(1)),
            rtt_now: histogram(),
            rtt_before: histogram(),
            recent_max: VecDeque::with_capacity(cfg.window.max(1)),
            last_rtt: None,
            jitter16: 0,
            missed_in_row: 0,
            run_first: 0,
            downed_by: None,
            recovering_since: None,
            total_sent: 0,
            total_answered: 0,
            total_lost: 0,
            downs: 0,
            false_alarms: 0,
        }
    }

    pub fn state(&self) -> PathState {
        self.state
    }

    /// Whether the path is probed at the active interval.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Whether traffic with an SLA uses the path (probed every `interval`) or not
    /// (every `idle_interval`).
    pub fn set_active(&mut self, active: bool) {
        if active && !self.active {
            // Probe at the active rate from now on, not after the idle interval.
            self.next_due = self.next_due.min(
                self.sent
                    .back()
                    .map_or(0, |s| s.at.saturating_add(self.cfg.interval)),
            );
        }
        self.active = active;
    }

    fn interval(&self) -> u64 {
        if self.active {
            self.cfg.interval
        } else {
            self.cfg.idle_interval
        }
    }

    /// How long a probe may go unanswered before it is late.
    pub fn timeout(&self) -> u64 {
        let max = self.recent_max.iter().copied().max().unwrap_or(0);
        max.saturating_mul(2).max(self.cfg.min_timeout)
    }

    /// When [`poll`](Self::poll) has something to do next (a probe due or one to time out).
    pub fn next_event(&self) -> u64 {
        let timeout = self.timeout();
        self.sent
            .iter()
            .filter(|s| s.fate == Fate::Pending)
            .map(|s| s.at.saturating_add(timeout))
            .min()
            .unwrap_or(u64::MAX)
            .min(self.next_due)
    }

    /// At `now`: counts the probes whose timeout has passed as late (not while
    /// `local_overload`: their replies may be waiting in our own queue), and says whether to
    /// send a probe now and whether the path's state changed.
    pub fn poll(&mut self, now: u64, local_overload: bool) -> Poll {
        let mut out = Poll::default();
        if !local_overload {
            let timeout = self.timeout();
            for i in 0..self.sent.len() {
                let s = self.sent[i];
                if s.fate != Fate::Pending || now < s.at.saturating_add(timeout) {
                    continue;
                }
                self.sent[i].fate = Fate::Lost;
                self.total_lost += 1;
                if self.missed_in_row == 0 {
                    self.run_first = s.seq;
                }
                self.missed_in_row += 1;
                self.recovering_since = None;
                if self.missed_in_row >= self.cfg.down_after.max(1) && self.state != PathState::Down
                {
                    self.state = PathState::Down;
                    self.downs += 1;
                    self.downed_by = Some((self.run_first, s.seq));
                    out.change = Some(PathState::Down);
                }
            }
        }
        // A suspect path (late probes, not yet down) is probed fast.
        let suspect = self.missed_in_row > 0 && self.state != PathState::Down;
        if suspect {
            let fast_due = self
                .sent
                .back()
                .map_or(0, |s| s.at.saturating_add(self.cfg.fast_interval));
            self.next_due = self.next_due.min(fast_due);
        }
        if now < self.next_due {
            return out;
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
        self.next_due = now
            + if suspect {
                self.cfg.fast_interval
            } else {
                self.interval()
            };
        out.send = Some(seq);
        out
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
        let late = match s.fate {
            Fate::Pending => false,
            // A late reply: the probe was counted lost; it was not.
            Fate::Lost => true,
            Fate::Answered | Fate::NotSent => return None,
        };
        if late {
            self.total_lost -= 1;
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
        let window = self.cfg.window.max(1);
        if self.rtt_now.len() as usize >= window {
            std::mem::swap(&mut self.rtt_now, &mut self.rtt_before);
            self.rtt_now.reset();
        }
        let _ = self.rtt_now.record((rtt / 1000).clamp(1, 60_000_000));
        if self.recent_max.len() == window {
            self.recent_max.pop_front();
        }
        self.recent_max.push_back(rtt);
        self.missed_in_row = 0;
        match self.state {
            PathState::Unknown => {
                self.state = PathState::Up;
                Some(PathState::Up)
            }
            PathState::Down => {
                // A late reply to a probe that took the path down: it was slow, not cut.
                let false_alarm = late
                    && self.downed_by.is_some_and(|(first, last)| {
                        seq.wrapping_sub(first) <= last.wrapping_sub(first)
                    });
                let since = *self.recovering_since.get_or_insert(now);
                if false_alarm || now - since >= self.cfg.holddown {
                    if false_alarm {
                        self.false_alarms += 1;
                    }
                    self.state = PathState::Up;
                    self.recovering_since = None;
                    self.downed_by = None;
                    Some(PathState::Up)
                } else {
                    None
                }
            }
            PathState::Up => None,
        }
    }

    /// The median of the last `n` RTTs: the short-term latency the SLA checks read.
    pub fn recent_rtt(&self, n: usize) -> Option<u64> {
        let k = self.recent_max.len().min(n.max(1));
        if k == 0 {
            return None;
        }
        let mut last = [0u64; 64];
        let k = k.min(last.len());
        for (d, s) in last.iter_mut().zip(self.recent_max.iter().rev().take(k)) {
            *d = *s;
        }
        let last = &mut last[..k];
        last.sort_unstable();
        Some(last[k / 2])
    }

    /// The path's figures now.
    pub fn stats(&self) -> PathStats {
        let mut h = self.rtt_before.clone();
        let _ = h.add(&self.rtt_now);
        let pct =
            |p: f64| -> Option<u64> { (!h.is_empty()).then(|| h.value_at_quantile(p) * 1000) };
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
            downs: self.downs,
            false_alarms: self.false_alarms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `m` from `from` to `to` in 1 ms steps; each probe sent at `t` is answered at
    /// `t + rtt(seq, t)` when `rtt` gives `Some`. Returns the state changes with their times.
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
            let p = m.poll(t, false);
            if let Some(c) = p.change {
                changes.push((t, c));
            }
            if let Some(seq) = p.send {
                if let Some(r) = rtt(seq, t) {
                    in_flight.push((t + r, seq));
                }
            }
            t += MS;
        }
        changes
    }

    /// Approximate equality of a histogram value (3 significant digits).
    /// Within the histogram's precision (2 significant digits: 1%).
    fn near(got: Option<u64>, want: u64) -> bool {
        got.is_some_and(|g| g.abs_diff(want) <= want / 100 + 1000)
    }

    #[test]
    fn steady_path_is_up_with_its_rtt_and_no_loss() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        assert_eq!(m.state(), PathState::Unknown);
        let changes = drive(&mut m, 0, 10_000 * MS, |_, _| Some(20 * MS));
        assert_eq!(changes, [(20 * MS, PathState::Up)]);
        let s = m.stats();
        assert!(
            near(s.rtt_p50_ns, 20 * MS) && near(s.rtt_p99_ns, 20 * MS),
            "{s:?}"
        );
        assert_eq!(s.loss_pct, Some(0.0));
        assert_eq!(s.jitter_ns, 0);
        assert_eq!(s.sent, 100, "every 100 ms for 10 s");
        assert_eq!(m.timeout(), 40 * MS, "twice the largest recent RTT");
    }

    #[test]
    fn a_blackhole_takes_the_path_down_well_within_three_intervals() {
        // Cuts at several phases of the probe interval: detection from the cut is the time to
        // the next probe, its timeout and two fast probes' timeouts.
        for phase in [0, 1, 37, 50, 99] {
            let mut m = PathMonitor::new(MonitorConfig::default());
            let cut = 2000 * MS + phase * MS;
            let changes = drive(&mut m, 0, 3000 * MS, |_, t| (t < cut).then_some(MS));
            let down = changes.iter().find(|c| c.1 == PathState::Down).unwrap().0;
            assert!(
                down > cut && down - cut <= 160 * MS,
                "phase {phase}: down {} ms after the cut",
                (down - cut) / MS
            );
            assert_eq!(m.stats().downs, 1);
        }
    }

    #[test]
    fn after_an_outage_holddown_brings_it_back() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let cut = 2000 * MS;
        let back = 4000 * MS;
        let changes = drive(&mut m, 0, 8000 * MS, |_, t| {
            (t < cut || t >= back).then_some(10 * MS)
        });
        let ups: Vec<u64> = changes
            .iter()
            .filter(|c| c.1 == PathState::Up)
            .map(|c| c.0)
            .collect();
        assert_eq!(ups.len(), 2, "{changes:?}");
        // The first reply after the outage comes a little after 4 s; up a hold-down later.
        assert!(
            ups[1] >= back + 1000 * MS && ups[1] < back + 1200 * MS,
            "up at {} ms",
            ups[1] / MS
        );
        let s = m.stats();
        assert!(
            (20..=25).contains(&s.lost),
            "the 2 s outage at 100 ms plus the fast probes: {}",
            s.lost
        );
        assert_eq!((s.downs, s.false_alarms), (1, 0));
    }

    #[test]
    fn a_delay_jump_is_a_false_alarm_and_the_path_comes_back_at_once() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let jump = 2000 * MS;
        // RTT 1 ms, then 161 ms (80 ms more each way): the first probes after the jump are late.
        let changes = drive(&mut m, 0, 4000 * MS, |_, t| {
            Some(if t < jump { MS } else { 161 * MS })
        });
        let down = changes.iter().find(|c| c.1 == PathState::Down).unwrap().0;
        let up = changes.iter().rfind(|c| c.1 == PathState::Up).unwrap().0;
        assert!(up > down && up - down < 170 * MS, "{changes:?}");
        assert_eq!(m.state(), PathState::Up);
        let s = m.stats();
        assert_eq!((s.downs, s.false_alarms), (1, 1));
        assert_eq!(s.lost, 0, "late, not lost");
        assert!(m.timeout() >= 322 * MS, "the timeout follows the new RTT");
        assert_eq!(
            changes.len(),
            3,
            "no more changes once adapted: {changes:?}"
        );
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
        assert!((8.0..=11.0).contains(&loss), "loss {loss}%");
        assert_eq!(
            m.state(),
            PathState::Up,
            "isolated losses do not take it down"
        );
        assert_eq!(s.downs, 0);
    }

    #[test]
    fn probes_not_sent_here_are_not_loss() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let mut t = 0;
        for _ in 0..50 {
            let p = m.poll(t, false);
            assert_eq!(p.change, None);
            // Local overload: the worker could not send it.
            m.on_send_failed(p.send.unwrap());
            t += 100 * MS;
        }
        let s = m.stats();
        assert_eq!((s.sent, s.lost, s.loss_pct), (0, 0, None));
        assert_eq!(m.state(), PathState::Unknown);
    }

    #[test]
    fn no_probe_times_out_while_the_worker_is_overloaded() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        let seq = m.poll(0, false).send.unwrap();
        assert_eq!(m.on_reply(MS, seq, 0), Some(PathState::Up));
        let seq = m.poll(100 * MS, false).send.unwrap();
        // The reply waits 500 ms in our own rx queue while we are overloaded.
        for t in (101..600).map(|t| t * MS) {
            assert_eq!(m.poll(t, true).change, None);
        }
        assert_eq!(m.on_reply(600 * MS, seq, 0), None);
        let s = m.stats();
        assert_eq!((s.lost, s.downs), (0, 0));
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        // RTT alternating 10 / 14 ms: |D| = 4 ms every time; J converges to 4 ms.
        drive(&mut m, 0, 60_000 * MS, |seq, _| {
            Some(if seq % 2 == 0 { 10 * MS } else { 14 * MS })
        });
        let s = m.stats();
        assert!(s.jitter_ns > 3_900_000 && s.jitter_ns <= 4 * MS, "{s:?}");
        assert!(
            near(s.rtt_p50_ns, 10 * MS) && near(s.rtt_p99_ns, 14 * MS),
            "{s:?}"
        );
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
        let seq = m.poll(0, false).send.unwrap();
        assert_eq!(m.on_reply(5 * MS, seq + 7, 0), None);
        assert_eq!(m.on_reply(5 * MS, seq, 0), Some(PathState::Up));
        assert_eq!(m.on_reply(6 * MS, seq, 0), None);
        assert_eq!(m.stats().answered, 1);
    }

    #[test]
    fn next_event_is_the_next_probe_or_timeout() {
        let mut m = PathMonitor::new(MonitorConfig::default());
        assert_eq!(m.next_event(), 0);
        m.poll(0, false);
        assert_eq!(m.next_event(), 20 * MS, "the first probe's timeout");
        let p = m.poll(20 * MS, false);
        assert_eq!(p.send, Some(2), "suspect: a fast probe at once");
        assert_eq!(m.next_event(), 30 * MS);
    }
}
