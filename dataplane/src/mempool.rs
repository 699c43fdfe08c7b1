//! Packet buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{last_dpdk_error, DataplaneError};

pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
}

// SAFETY: DPDK mempools are thread-safe (per-lcore caches for registered threads, a lock-free
// ring behind them).
unsafe impl Send for Mempool {}
unsafe impl Sync for Mempool {}

/// Data room of each mbuf: 2048 bytes of packet plus the 128-byte headroom.
pub const DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

impl Mempool {
    /// `count` mbufs (best as 2^n - 1), `cache` per lcore. Names are global to the process and
    /// at most 25 bytes.
    pub fn new(name: &str, count: u32, cache: u32) -> Result<Self, DataplaneError> {
        let err = |reason: String| DataplaneError::Mempool {
            name: name.into(),
            count,
            reason,
        };
        let cname = CString::new(name).map_err(|_| err("name contains NUL".into()))?;
        // SAFETY: plain constructor call; returns NULL with rte_errno set on failure.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), count, cache, 0, DATA_ROOM, -1)
        };
        let raw = NonNull::new(raw).ok_or_else(|| err(last_dpdk_error()))?;
        Ok(Self {
            raw,
            name: name.into(),
        })
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs currently free in the pool (caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for self's lifetime.
        unsafe { dpdk_sys::sdwan_mempool_avail_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: every mbuf of the pool must be back by now: ports are closed before pools drop.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
