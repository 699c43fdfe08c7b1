//! The data plane's one error type at its boundary with the daemon.

use std::ffi::CStr;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("DPDK EAL initialisation failed: {0} (check dpdk.eal_args)")]
    EalInit(String),
    #[error("DPDK EAL is already initialised in this process with other arguments")]
    EalAlreadyInitialised,
    #[error("cannot create mempool {name} of {count} mbufs: {reason}")]
    Mempool {
        name: String,
        count: u32,
        reason: String,
    },
    #[error("no DPDK port named {0:?} (is the device string right, and the driver present?)")]
    PortNotFound(String),
    #[error("port {port}: {op} failed: {reason}")]
    Port {
        port: String,
        op: &'static str,
        reason: String,
    },
    #[error("port {port} supports {max} {kind} queues, {needed} are needed (one per worker)")]
    TooFewQueues {
        port: String,
        kind: &'static str,
        max: u16,
        needed: u16,
    },
    #[error("worker {index}: cannot pin to core {core}: {reason}")]
    Pin {
        index: usize,
        core: usize,
        reason: String,
    },
    #[error("worker {index}: rte_thread_register failed: {reason}")]
    ThreadRegister { index: usize, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// DPDK's message for an error number (`rte_errno` or a negative return value).
pub fn dpdk_strerror(code: i32) -> String {
    let code = code.abs();
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    let msg = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code)) };
    format!("{} (errno {code})", msg.to_string_lossy())
}

/// The message for the current `rte_errno`.
pub fn last_dpdk_error() -> String {
    // SAFETY: reads the calling thread's rte_errno.
    dpdk_strerror(unsafe { dpdk_sys::sdwan_errno() })
}
