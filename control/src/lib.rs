//! The control plane of `sdwand`: the management API (`api`, the request and response types
//! shared with `sdwan-cli`) and its Unix-socket server (`mgmt`), BGP (`bgp`), and the key
//! manager that turns the peers' advertised public keys into ESP SAs (`keys`).

pub mod api;
pub mod bgp;
pub mod keys;
pub mod mgmt;
pub mod sites;
#[cfg(test)]
mod testing;
