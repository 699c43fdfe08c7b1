//! The control plane of `sdwand`. For now: the management API (`api`, the request and
//! response types shared with `sdwan-cli`) and its Unix-socket server (`mgmt`). BGP, key
//! management and path monitoring join here in later issues.

pub mod api;
pub mod mgmt;
