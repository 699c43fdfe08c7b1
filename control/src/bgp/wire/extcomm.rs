//! Extended communities (RFC 4360), path attribute 16: a list of 8-byte values.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type high    |  Type low(*)  |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+          Value                |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Route Target (sub-type 0x02):  0x00 0x02 | AS (2)   | local (4)
//!                                0x01 0x02 | IPv4 (4) | local (2)
//!                                0x02 0x02 | AS (4)   | local (2)
//! Color (RFC 9012 §4.3):         0x03 0x0b | flags (2) | color (4)
//! Encapsulation (RFC 9012 §4.1): 0x03 0x0c | reserved (4) | tunnel type (2)
//! ```
//!
//! Everything else is kept as its 8 bytes: RFC 7606 §7.14 forbids treating an unknown type
//! as an error. Reserved and flag fields are kept as received so re-encoding is exact.

use std::fmt;
use std::str::FromStr;

use super::rd::{Admin, ParseAdminError};

/// A Route Target (RFC 4360 §4), in one of its three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Type 0x00: 2-byte AS, 4-byte number.
    As2 { asn: u16, number: u32 },
    /// Type 0x01: IPv4 address, 2-byte number.
    Ipv4 {
        addr: std::net::Ipv4Addr,
        number: u16,
    },
    /// Type 0x02: 4-byte AS, 2-byte number.
    As4 { asn: u32, number: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtCommunity {
    RouteTarget(RouteTarget),
    /// Color (0x030b): which tunnels a route may use (RFC 9012 §8).
    Color {
        flags: u16,
        color: u32,
    },
    /// Encapsulation (0x030c): a barebones tunnel of this type (RFC 9012 §4.1).
    Encapsulation {
        reserved: u32,
        tunnel_type: u16,
    },
    /// Any other type, as received.
    Other([u8; 8]),
}

/// Sub-type of the Route Target extended communities.
const SUBTYPE_ROUTE_TARGET: u8 = 0x02;
/// Type of the transitive opaque extended communities (RFC 4360 §3.3).
const TYPE_OPAQUE: u8 = 0x03;
const SUBTYPE_COLOR: u8 = 0x0b;
const SUBTYPE_ENCAPSULATION: u8 = 0x0c;

impl RouteTarget {
    fn admin(self) -> Admin {
        match self {
            RouteTarget::As2 { asn, number } => Admin::As2(asn, number),
            RouteTarget::Ipv4 { addr, number } => Admin::Ipv4(addr, number),
            RouteTarget::As4 { asn, number } => Admin::As4(asn, number),
        }
    }

    fn from_admin(a: Admin) -> Self {
        match a {
            Admin::As2(asn, number) => RouteTarget::As2 { asn, number },
            Admin::Ipv4(addr, number) => RouteTarget::Ipv4 { addr, number },
            Admin::As4(asn, number) => RouteTarget::As4 { asn, number },
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        ExtCommunity::RouteTarget(self).to_bytes()
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.admin().fmt(f)
    }
}

impl FromStr for RouteTarget {
    type Err = ParseAdminError;

    /// `65000:100`, `10.0.0.1:5`, `4200000000:7` (and `65000L:7` for a 4-byte AS that
    /// fits in 2 bytes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(RouteTarget::from_admin)
    }
}

impl ExtCommunity {
    pub fn from_bytes(b: [u8; 8]) -> Self {
        let [t, st, v @ ..] = b;
        let [v0, v1, v2, v3, v4, v5] = v;
        match (t, st) {
            (0x00..=0x02, SUBTYPE_ROUTE_TARGET) => Admin::from_value(t, v)
                .map(|a| ExtCommunity::RouteTarget(RouteTarget::from_admin(a)))
                .unwrap_or(ExtCommunity::Other(b)),
            (TYPE_OPAQUE, SUBTYPE_COLOR) => ExtCommunity::Color {
                flags: u16::from_be_bytes([v0, v1]),
                color: u32::from_be_bytes([v2, v3, v4, v5]),
            },
            (TYPE_OPAQUE, SUBTYPE_ENCAPSULATION) => ExtCommunity::Encapsulation {
                reserved: u32::from_be_bytes([v0, v1, v2, v3]),
                tunnel_type: u16::from_be_bytes([v4, v5]),
            },
            _ => ExtCommunity::Other(b),
        }
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        match *self {
            ExtCommunity::RouteTarget(rt) => {
                let a = rt.admin();
                b[0] = a.type_code();
                b[1] = SUBTYPE_ROUTE_TARGET;
                b[2..].copy_from_slice(&a.value());
            }
            ExtCommunity::Color { flags, color } => {
                b[..2].copy_from_slice(&[TYPE_OPAQUE, SUBTYPE_COLOR]);
                b[2..4].copy_from_slice(&flags.to_be_bytes());
                b[4..].copy_from_slice(&color.to_be_bytes());
            }
            ExtCommunity::Encapsulation {
                reserved,
                tunnel_type,
            } => {
                b[..2].copy_from_slice(&[TYPE_OPAQUE, SUBTYPE_ENCAPSULATION]);
                b[2..6].copy_from_slice(&reserved.to_be_bytes());
                b[6..].copy_from_slice(&tunnel_type.to_be_bytes());
            }
            ExtCommunity::Other(raw) => b = raw,
        }
        b
    }

    /// A Color community as originated: flags zero (RFC 9012 §4.3).
    pub fn color(color: u32) -> Self {
        ExtCommunity::Color { flags: 0, color }
    }

    /// An Encapsulation community as originated: reserved zero (RFC 9012 §4.1).
    pub fn encapsulation(tunnel_type: u16) -> Self {
        ExtCommunity::Encapsulation {
            reserved: 0,
            tunnel_type,
        }
    }

    pub fn route_target(&self) -> Option<RouteTarget> {
        match self {
            ExtCommunity::RouteTarget(rt) => Some(*rt),
            _ => None,
        }
    }
}

impl From<RouteTarget> for ExtCommunity {
    fn from(rt: RouteTarget) -> Self {
        ExtCommunity::RouteTarget(rt)
    }
}

impl fmt::Display for ExtCommunity {
    /// `rt:65000:100`, `color:7`, `encap:8`, or the hex of an unknown one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtCommunity::RouteTarget(rt) => write!(f, "rt:{rt}"),
            ExtCommunity::Color { color, .. } => write!(f, "color:{color}"),
            ExtCommunity::Encapsulation { tunnel_type, .. } => write!(f, "encap:{tunnel_type}"),
            ExtCommunity::Other(b) => {
                f.write_str("0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_targets_in_text_and_bytes() {
        for (text, bytes) in [
            ("65000:100", [0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 100]),
            ("10.0.0.1:5", [0x01, 0x02, 10, 0, 0, 1, 0, 5]),
            ("4200000000:7", [0x02, 0x02, 0xfa, 0x56, 0xea, 0x00, 0, 7]),
            ("65001L:9", [0x02, 0x02, 0, 0, 0xfd, 0xe9, 0, 9]),
        ] {
            let rt: RouteTarget = text.parse().unwrap();
            assert_eq!(rt.to_bytes(), bytes, "{text}");
            assert_eq!(
                ExtCommunity::from_bytes(bytes),
                ExtCommunity::RouteTarget(rt)
            );
            assert_eq!(rt.to_string(), text);
        }
        assert!("65000".parse::<RouteTarget>().is_err());
        assert!("70000:70000".parse::<RouteTarget>().is_err());
    }

    #[test]
    fn color_and_encapsulation() {
        let c = ExtCommunity::color(100);
        assert_eq!(c.to_bytes(), [0x03, 0x0b, 0, 0, 0, 0, 0, 100]);
        assert_eq!(ExtCommunity::from_bytes(c.to_bytes()), c);
        let e = ExtCommunity::encapsulation(8);
        assert_eq!(e.to_bytes(), [0x03, 0x0c, 0, 0, 0, 0, 0, 8]);
        assert_eq!(ExtCommunity::from_bytes(e.to_bytes()), e);
        assert_eq!(e.to_string(), "encap:8");
        // Non-zero reserved and flag bits survive a round trip.
        let odd = [0x03, 0x0c, 1, 2, 3, 4, 0, 2];
        assert_eq!(ExtCommunity::from_bytes(odd).to_bytes(), odd);
        let odd = [0x03, 0x0b, 0x80, 0, 0, 0, 0, 1];
        assert_eq!(ExtCommunity::from_bytes(odd).to_bytes(), odd);
    }

    #[test]
    fn others_are_kept() {
        for b in [
            [0x40, 0x02, 1, 2, 3, 4, 5, 6], // non-transitive, not a Route Target
            [0x00, 0x03, 1, 2, 3, 4, 5, 6], // Route Origin
            [0x80, 0x06, 0, 0, 0, 0, 0, 0], // flow-spec traffic-rate
        ] {
            let c = ExtCommunity::from_bytes(b);
            assert_eq!(c, ExtCommunity::Other(b));
            assert_eq!(c.to_bytes(), b);
        }
        assert_eq!(
            ExtCommunity::Other([0x80, 6, 0, 0, 0, 0, 0, 1]).to_string(),
            "0x8006000000000001"
        );
    }
}
