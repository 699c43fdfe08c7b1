//! The BGP wire format: one file per format, each with its RFC diagram.
//!
//! - `tunnel_encap`: the Tunnel Encapsulation attribute (RFC 9012, attribute 23) and the
//!   SD-WAN sub-TLVs of tunnel type 25 (draft-ietf-idr-sdwan-edge-discovery).
//! - `sdwan`: the SD-WAN NLRI of SAFI 74 (the same draft).

pub mod sdwan;
pub mod tunnel_encap;
