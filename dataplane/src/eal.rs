//! The DPDK Environment Abstraction Layer. `rte_eal_init` can run once per process and keeps
//! pointers into its argv, so the arguments are leaked for the life of the process.

use std::ffi::{c_char, CString};
use std::sync::{Mutex, OnceLock};

use crate::error::{last_dpdk_error, DataplaneError};

static EAL_ARGS: OnceLock<Vec<String>> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Starts EAL with `args` (without the program name). Idempotent: a second call with the same
/// arguments succeeds without doing anything (the test harness relies on that); with other
/// arguments it is an error, because EAL cannot be restarted.
pub fn init(args: &[String]) -> Result<(), DataplaneError> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = EAL_ARGS.get() {
        return if existing == args {
            Ok(())
        } else {
            Err(DataplaneError::EalAlreadyInitialised)
        };
    }
    let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 1);
    for a in std::iter::once("sdwand").chain(args.iter().map(String::as_str)) {
        let c = CString::new(a).map_err(|_| {
            DataplaneError::InvalidArgument(format!("EAL argument {a:?} contains NUL"))
        })?;
        argv.push(c.into_raw());
    }
    let argc = i32::try_from(argv.len())
        .map_err(|_| DataplaneError::InvalidArgument("too many EAL arguments".into()))?;
    let argv = Box::leak(argv.into_boxed_slice());
    // SAFETY: argv holds argc valid NUL-terminated strings that live for the process.
    let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if ret < 0 {
        return Err(DataplaneError::EalInit(last_dpdk_error()));
    }
    let _ = EAL_ARGS.set(args.to_vec());
    Ok(())
}

/// True once `init` succeeded.
pub fn is_initialised() -> bool {
    EAL_ARGS.get().is_some()
}

/// Releases EAL resources at shutdown, after every port is closed and every worker joined.
pub fn cleanup() {
    if is_initialised() {
        // SAFETY: called once, at the end of the process, with no DPDK object in use.
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}

/// TSC ticks per second (for the workers' timers).
pub fn tsc_hz() -> u64 {
    // SAFETY: plain query after EAL init.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the time-stamp counter.
    unsafe { dpdk_sys::sdwan_rdtsc() }
}

/// Creates a virtual device after EAL start (`net_ring0`, `net_pcap0,rx_pcap=...`).
pub fn vdev_init(device: &str) -> Result<(), DataplaneError> {
    let (name, args) = device.split_once(',').unwrap_or((device, ""));
    let name_c = CString::new(name).map_err(|_| DataplaneError::InvalidArgument(device.into()))?;
    let args_c = CString::new(args).map_err(|_| DataplaneError::InvalidArgument(device.into()))?;
    // SAFETY: both strings are valid for the call.
    let ret = unsafe { dpdk_sys::rte_vdev_init(name_c.as_ptr(), args_c.as_ptr()) };
    if ret < 0 {
        return Err(DataplaneError::Port {
            port: name.into(),
            op: "rte_vdev_init",
            reason: crate::error::dpdk_strerror(ret),
        });
    }
    Ok(())
}

/// DPDK's version string (`rte_version()`), e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) }
        .to_string_lossy()
        .into_owned()
}
