//! `sdwan-pktgen`: a DPDK traffic generator and receiver in one process (one clock, the TSC),
//! measuring rate, loss, reordering, duplication and one-way latency through a device under
//! test. See docs/pktgen.md.
//!
//! Sans-IO parts (tested without DPDK): `payload` (the signature and frame classifier),
//! `seqstats` (loss / reorder / duplicate tracking), `arp`, `pace` (TSC pacing), `frame`
//! (templates and the packet plan), `cli`, `stats` (report). `run` is the DPDK side.

pub mod arp;
pub mod cli;
pub mod frame;
pub mod pace;
pub mod payload;
pub mod run;
pub mod seqstats;
pub mod stats;
