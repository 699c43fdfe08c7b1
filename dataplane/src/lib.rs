//! The data plane of `sdwand`: a thin, safe layer over DPDK (EAL, mempools, mbufs, ports,
//! pinned workers) and the sans-IO packet pipeline it drives.

pub mod counters;
pub mod eal;
pub mod engine;
pub mod error;
pub mod esp;
pub mod fec;
pub mod forward;
pub mod hash;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod multipath;
pub mod overlay;
pub mod pathmon;
pub mod pcapfile;
pub mod policy;
pub mod port;
pub mod probe;
pub mod reorder;
pub mod route;
pub mod tables;
#[doc(hidden)]
pub mod testing;
pub mod tunnel;
pub mod vlan;
pub mod wire;
pub mod worker;

pub use engine::{Engine, EngineSpec, PortSpec};
pub use error::DataplaneError;
