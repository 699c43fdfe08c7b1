//! Raw bindings to DPDK 22.11 as Debian ships it. Nothing here is safe: the `sdwan-dataplane`
//! crate wraps what the appliance uses. Functions prefixed `sdwan_` come from `shim.c` and
//! forward to DPDK's `static inline` fast-path functions.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
