//! The control plane of `sdwand`: the management API (`api`, the request and response types
//! shared with `sdwan-cli`) and its Unix-socket server (`mgmt`), and BGP (`bgp`).

pub mod api;
pub mod bgp;
pub mod mgmt;
pub mod sites;
