//! SD-WAN NLRI of SAFI 74 (draft-ietf-idr-sdwan-edge-discovery). Placeholder until the codec
//! lands.

use std::net::IpAddr;

/// SAFI of the SD-WAN capability routes.
pub const SAFI_SDWAN: u8 = 74;

/// One SD-WAN NLRI (route type 1): a WAN port of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdWanNlri {
    pub port_local_id: u32,
    pub color: u32,
    pub node: IpAddr,
}

/// Why an NLRI could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdWanError {
    #[error("SD-WAN NLRI: {0}")]
    Malformed(&'static str),
}

impl SdWanNlri {
    /// Decodes one NLRI at the start of `bytes`; returns it and the bytes it took.
    pub fn decode(_bytes: &[u8]) -> Result<(SdWanNlri, usize), SdWanError> {
        Err(SdWanError::Malformed("not implemented yet"))
    }

    /// Appends the NLRI to `out`.
    pub fn encode(&self, _out: &mut Vec<u8>) {}
}
