//! Tunnel Encapsulation attribute (RFC 9012, path attribute 23). Placeholder: keeps the value
//! as raw bytes until the full codec lands.

/// The decoded attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelEncap {
    pub raw: Vec<u8>,
}

/// Why an attribute value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelEncapError {
    #[error("tunnel encapsulation attribute: {0}")]
    Malformed(&'static str),
}

impl TunnelEncap {
    /// Decodes the attribute's value (without the attribute header).
    pub fn decode(value: &[u8]) -> Result<TunnelEncap, TunnelEncapError> {
        Ok(TunnelEncap {
            raw: value.to_vec(),
        })
    }

    /// Appends the attribute's value (without the attribute header) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw);
    }
}
