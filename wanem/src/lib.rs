//! `sdwan-wanem`: a userspace WAN circuit emulator for the network-namespace lab.
//!
//! The kernel of the lab host has no netem, so circuits are emulated in userspace: the binary
//! bridges pairs of veth interfaces with AF_PACKET sockets and impairs each direction (delay,
//! jitter, loss, duplication, reordering, rate limit, blackhole). This library is the sans-IO
//! part (scheduler, control protocol); `main.rs` is the I/O.

pub mod ctl;
pub mod impair;
pub mod rng;
