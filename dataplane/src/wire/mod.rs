//! Zero-copy views over the packet formats the data plane reads and writes, one file per
//! format, each with its RFC diagram. The views check lengths when created, so the accessors
//! after that cannot read past the buffer; nothing here allocates.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod vxlan;

/// Why a frame could not be read. Each maps to a drop counter of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header (or the length field) says.
    Truncated,
    /// A field holds a value the format forbids (version, header length, ...).
    Malformed,
    /// The header checksum does not verify.
    BadChecksum,
}

pub type MacAddr = [u8; 6];

pub const BROADCAST_MAC: MacAddr = [0xff; 6];

/// The `aa:bb:cc:dd:ee:ff` form operators expect.
pub fn format_mac(mac: &MacAddr) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
