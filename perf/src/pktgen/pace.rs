//! Sans-IO transmit pacing on the TSC.
//!
//! Each packet has a due time; the next packet's due time is the previous one's plus its cost
//! (1/pps, or frame bits / bit rate). When the next packet is due, a burst goes out holding
//! every packet due within the next `lookahead` (up to the burst size), so bursts are sent at
//! most one lookahead early and the long-run rate is exact. After a stall (the process was
//! descheduled, tx was slow), the schedule is pulled forward so that at most one burst's worth
//! of backlog remains: the generator never sends a catch-up flood, and the achieved rate it
//! reports is lower instead.

use super::cli::Rate;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Send now.
    Send,
    /// Not due yet, and close: poll (rx) and look again.
    Spin,
    /// Not due for this many ticks (more than the sleep threshold).
    Sleep(u64),
}

#[derive(Debug, Clone)]
pub struct Pacer {
    rate: Rate,
    hz: f64,
    next_due: f64,
    lookahead: f64,
    sleep_threshold: f64,
    burst: usize,
}

impl Pacer {
    /// `lookahead_us`: how early a burst may leave; `sleep_us`: how far ahead the schedule must
    /// be before sleeping rather than spinning.
    pub fn new(
        rate: Rate,
        hz: u64,
        now: u64,
        burst: usize,
        lookahead_us: f64,
        sleep_us: f64,
    ) -> Self {
        let hz = hz as f64;
        Self {
            rate,
            hz,
            next_due: now as f64,
            lookahead: lookahead_us * hz / 1e6,
            sleep_threshold: sleep_us * hz / 1e6,
            burst,
        }
    }

    /// Ticks one packet of `len` frame bytes uses up.
    #[inline]
    pub fn cost(&self, len: usize) -> f64 {
        match self.rate {
            Rate::Pps(pps) => self.hz / pps,
            Rate::Bps(bps) => (len * 8) as f64 * self.hz / bps,
            // Resolved before pacing (`cli::resolve_line`); unresolved, it does not pace.
            Rate::Max | Rate::Line => 0.0,
        }
    }

    /// Whether to send now; `next_len`: the next packet's frame length.
    #[inline]
    pub fn check(&mut self, now: u64, next_len: usize) -> Wait {
        if matches!(self.rate, Rate::Max | Rate::Line) {
            return Wait::Send;
        }
        let now = now as f64;
        // Cap the backlog at one burst's worth.
        let cap = self.cost(next_len) * self.burst as f64;
        if self.next_due < now - cap {
            self.next_due = now - cap;
        }
        if self.next_due <= now {
            Wait::Send
        } else if self.next_due - now > self.sleep_threshold {
            Wait::Sleep((self.next_due - now) as u64)
        } else {
            Wait::Spin
        }
    }

    /// During a burst that started at `now`: may the next packet (of `len` bytes) join it? If
    /// so, it is taken off the schedule.
    #[inline]
    pub fn admit(&mut self, now: u64, len: usize) -> bool {
        if matches!(self.rate, Rate::Max | Rate::Line) {
            return true;
        }
        if self.next_due <= now as f64 + self.lookahead {
            self.next_due += self.cost(len);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000_000; // 1 tick = 1 ns

    /// Simulates a sender that wakes exactly when told; returns packets sent by `end`.
    fn simulate(rate: Rate, len: usize, end: u64, stall: Option<(u64, u64)>) -> (u64, u64) {
        let mut p = Pacer::new(rate, HZ, 0, 32, 100.0, 50.0);
        let mut now = 0u64;
        let mut sent = 0;
        let mut bursts = 0;
        while now < end {
            if let Some((at, len)) = stall {
                if now >= at && now < at + len {
                    now = at + len;
                }
            }
            match p.check(now, len) {
                Wait::Send => {
                    let mut n = 0;
                    while n < 32 && p.admit(now, len) {
                        n += 1;
                    }
                    assert!(n > 0);
                    sent += n;
                    bursts += 1;
                    now += 100; // the burst itself takes a little time
                }
                Wait::Spin => now += 1_000,
                Wait::Sleep(t) => {
                    assert!(t > 50_000);
                    now += t;
                }
            }
        }
        (sent, bursts)
    }

    #[test]
    fn packet_rate_is_exact_over_time() {
        let (sent, bursts) = simulate(Rate::Pps(100_000.0), 64, 1_000_000_000, None);
        assert!((99_990..=100_020).contains(&sent), "{sent}");
        // ~10 packets per 100 us lookahead: bursts, not one packet per wakeup.
        assert!(bursts < 15_000, "{bursts}");
    }

    #[test]
    fn bit_rate_counts_frame_bytes() {
        // 1 Gbit/s of 1000-byte frames = 125000 pps.
        let (sent, _) = simulate(Rate::Bps(1e9), 1000, 1_000_000_000, None);
        assert!((124_990..=125_020).contains(&sent), "{sent}");
    }

    #[test]
    fn a_stall_does_not_cause_a_flood() {
        // 100 ms stall at 100 kpps: 10000 packets' worth; at most one burst is made up.
        let (sent, _) = simulate(
            Rate::Pps(100_000.0),
            64,
            1_000_000_000,
            Some((500_000_000, 100_000_000)),
        );
        assert!(sent < 90_000 + 32 + 20 && sent > 89_900, "{sent}");
    }

    #[test]
    fn max_always_sends() {
        let mut p = Pacer::new(Rate::Max, HZ, 0, 32, 100.0, 50.0);
        assert_eq!(p.check(0, 64), Wait::Send);
        assert!((0..1000).all(|_| p.admit(0, 64)));
    }

    #[test]
    fn sleeps_only_when_far_ahead() {
        let mut p = Pacer::new(Rate::Pps(1000.0), HZ, 0, 32, 100.0, 50.0);
        assert_eq!(p.check(0, 64), Wait::Send);
        assert!(p.admit(0, 64));
        assert!(!p.admit(0, 64), "1 ms apart: one per burst");
        assert_eq!(p.check(10_000, 64), Wait::Sleep(990_000));
        assert_eq!(p.check(960_000, 64), Wait::Spin);
        assert_eq!(p.check(1_000_000, 64), Wait::Send);
    }
}
