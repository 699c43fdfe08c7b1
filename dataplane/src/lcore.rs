//! Worker threads: plain Rust threads pinned to a core with `core_affinity` and registered
//! with EAL (`rte_thread_register`), which gives them an lcore id and so a per-lcore mempool
//! cache (without it a worker loses about a quarter of its rate). Idle workers back off.

use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{last_dpdk_error, DataplaneError};

/// Spawns `body` on a thread pinned to `core` and registered with EAL. Returns once the thread
/// is pinned and registered (or failed to be), so start-up errors reach the caller.
pub fn spawn_pinned<F>(index: usize, core: usize, body: F) -> Result<JoinHandle<()>, DataplaneError>
where
    F: FnOnce() + Send + 'static,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), DataplaneError>>(1);
    let handle = std::thread::Builder::new()
        .name(format!("sdwan-worker-{index}"))
        .spawn(move || {
            // Not `core_affinity::get_core_ids()`: a thread spawned after `rte_eal_init`
            // inherits the main lcore's one-core mask, so that list would hold only that core.
            // SAFETY: sysconf is always safe to call.
            let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
            if core >= online || !core_affinity::set_for_current(core_affinity::CoreId { id: core })
            {
                let reason = format!(
                    "this machine has cores 0-{} (or the process may not use core {core})",
                    online - 1
                );
                let _ = ready_tx.send(Err(DataplaneError::Pin {
                    index,
                    core,
                    reason,
                }));
                return;
            }
            // SAFETY: a new non-EAL thread registers itself once.
            if unsafe { dpdk_sys::rte_thread_register() } != 0 {
                let _ = ready_tx.send(Err(DataplaneError::ThreadRegister {
                    index,
                    reason: last_dpdk_error(),
                }));
                return;
            }
            // Short sleeps of the idle back-off should be short: the default 50 µs timer slack
            // would round every sleep up.
            // SAFETY: prctl on the calling thread.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0, 0, 0) };
            let _ = ready_tx.send(Ok(()));
            body();
            // SAFETY: the thread registered above and uses no DPDK object after this.
            unsafe { dpdk_sys::rte_thread_unregister() };
        })
        .map_err(|e| DataplaneError::Pin {
            index,
            core,
            reason: e.to_string(),
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(DataplaneError::Pin {
            index,
            core,
            reason: "worker thread died during start".into(),
        }),
    }
}

/// Adaptive polling: a loaded worker spins; after `SPIN_POLLS` empty polls in a row it sleeps,
/// doubling the sleep from 1 µs up to `max`, and snaps back to spinning on the first packet.
/// This keeps a lab of several appliances on two cores usable while costing a loaded worker
/// nothing.
#[derive(Debug)]
pub struct Backoff {
    empty_polls: u32,
    sleep_us: u32,
    max_us: u32,
}

const SPIN_POLLS: u32 = 256;

impl Backoff {
    pub fn new(max_us: u32) -> Self {
        Self {
            empty_polls: 0,
            sleep_us: 0,
            max_us,
        }
    }

    /// Records one poll that saw `packets`; returns the sleep to take now, if any.
    #[inline]
    pub fn after_poll(&mut self, packets: usize) -> Option<Duration> {
        if packets > 0 || self.max_us == 0 {
            self.empty_polls = 0;
            self.sleep_us = 0;
            return None;
        }
        self.empty_polls = self.empty_polls.saturating_add(1);
        if self.empty_polls < SPIN_POLLS {
            return None;
        }
        self.sleep_us = (self.sleep_us * 2).clamp(1, self.max_us);
        Some(Duration::from_micros(u64::from(self.sleep_us)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_while_busy_then_backs_off_exponentially() {
        let mut b = Backoff::new(100);
        for _ in 0..1000 {
            assert_eq!(b.after_poll(5), None);
        }
        for _ in 0..SPIN_POLLS - 1 {
            assert_eq!(b.after_poll(0), None);
        }
        let sleeps: Vec<u128> = (0..9)
            .map(|_| b.after_poll(0).unwrap().as_micros())
            .collect();
        assert_eq!(sleeps, [1, 2, 4, 8, 16, 32, 64, 100, 100]);
        assert_eq!(b.after_poll(1), None, "a packet resets to spinning");
        assert_eq!(b.after_poll(0), None);
    }

    #[test]
    fn zero_max_always_spins() {
        let mut b = Backoff::new(0);
        assert!((0..10_000).all(|_| b.after_poll(0).is_none()));
    }
}
