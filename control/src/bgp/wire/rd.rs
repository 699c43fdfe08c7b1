//! Route Distinguisher (RFC 4364 §4.2), 8 bytes: a 2-byte type and a 6-byte value made of an
//! administrator and an assigned number.
//!
//! ```text
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |     Type      |                     Value                     |
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//!   type 0:  2-byte AS administrator  | 4-byte assigned number
//!   type 1:  IPv4 address administrator  | 2-byte assigned number
//!   type 2:  4-byte AS administrator  | 2-byte assigned number
//! ```
//!
//! The text form is `admin:number` as FRR, GoBGP and ExaBGP write it: `65000:100`,
//! `10.0.0.1:5`, `4200000000:7`. A type 2 value whose AS fits in 2 bytes is written with an
//! `L` suffix (`65000L:7`, the Junos convention) so that text and bytes map one to one. The
//! same administrator:number forms serve Route Targets ([`super::extcomm::RouteTarget`]).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteDistinguisher {
    /// Type 0.
    As2 { asn: u16, number: u32 },
    /// Type 1.
    Ipv4 { addr: Ipv4Addr, number: u16 },
    /// Type 2.
    As4 { asn: u32, number: u16 },
    /// Any other type, kept as received.
    Other([u8; 8]),
}

/// Why an `admin:number` text is not a Route Distinguisher or Route Target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {reason} (expected ASN:NN, A.B.C.D:NN or ASN4:NN)")]
pub struct ParseAdminError {
    pub input: String,
    pub reason: &'static str,
}

/// The administrator:number pair shared by RDs and Route Targets, with its type number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admin {
    As2(u16, u32),
    Ipv4(Ipv4Addr, u16),
    As4(u32, u16),
}

impl Admin {
    pub(crate) fn type_code(self) -> u8 {
        match self {
            Admin::As2(..) => 0,
            Admin::Ipv4(..) => 1,
            Admin::As4(..) => 2,
        }
    }

    pub(crate) fn value(self) -> [u8; 6] {
        let mut v = [0u8; 6];
        match self {
            Admin::As2(a, n) => {
                v[..2].copy_from_slice(&a.to_be_bytes());
                v[2..].copy_from_slice(&n.to_be_bytes());
            }
            Admin::Ipv4(a, n) => {
                v[..4].copy_from_slice(&a.octets());
                v[4..].copy_from_slice(&n.to_be_bytes());
            }
            Admin::As4(a, n) => {
                v[..4].copy_from_slice(&a.to_be_bytes());
                v[4..].copy_from_slice(&n.to_be_bytes());
            }
        }
        v
    }

    pub(crate) fn from_value(type_code: u8, v: [u8; 6]) -> Option<Admin> {
        let [a, b, c, d, e, f] = v;
        match type_code {
            0 => Some(Admin::As2(
                u16::from_be_bytes([a, b]),
                u32::from_be_bytes([c, d, e, f]),
            )),
            1 => Some(Admin::Ipv4(
                Ipv4Addr::new(a, b, c, d),
                u16::from_be_bytes([e, f]),
            )),
            2 => Some(Admin::As4(
                u32::from_be_bytes([a, b, c, d]),
                u16::from_be_bytes([e, f]),
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Admin::As2(a, n) => write!(f, "{a}:{n}"),
            Admin::Ipv4(a, n) => write!(f, "{a}:{n}"),
            Admin::As4(a, n) if a <= u32::from(u16::MAX) => write!(f, "{a}L:{n}"),
            Admin::As4(a, n) => write!(f, "{a}:{n}"),
        }
    }
}

impl FromStr for Admin {
    type Err = ParseAdminError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseAdminError {
            input: s.to_owned(),
            reason,
        };
        let (admin, number) = s.rsplit_once(':').ok_or_else(|| err("no ':'"))?;
        if admin.contains('.') {
            let addr = admin.parse().map_err(|_| err("bad IPv4 administrator"))?;
            let n = number
                .parse()
                .map_err(|_| err("number must be 0..=65535"))?;
            return Ok(Admin::Ipv4(addr, n));
        }
        if let Some(asn) = admin.strip_suffix(['L', 'l']) {
            let a = asn.parse().map_err(|_| err("bad AS number"))?;
            let n = number
                .parse()
                .map_err(|_| err("number must be 0..=65535"))?;
            return Ok(Admin::As4(a, n));
        }
        let a: u32 = admin.parse().map_err(|_| err("bad AS number"))?;
        match u16::try_from(a) {
            Ok(a) => Ok(Admin::As2(
                a,
                number.parse().map_err(|_| err("bad number"))?,
            )),
            Err(_) => Ok(Admin::As4(
                a,
                number
                    .parse()
                    .map_err(|_| err("number must be 0..=65535 with a 4-byte AS"))?,
            )),
        }
    }
}

impl RouteDistinguisher {
    /// The all-zero RD that prefixes next hops of VPN routes (RFC 4364 §4.3.2).
    pub const ZERO: RouteDistinguisher = RouteDistinguisher::As2 { asn: 0, number: 0 };

    pub fn from_bytes(b: [u8; 8]) -> Self {
        let [t0, t1, v @ ..] = b;
        match (t0, Admin::from_value(t1, v)) {
            (0, Some(admin)) => admin.into(),
            _ => RouteDistinguisher::Other(b),
        }
    }

    pub fn to_bytes(&self) -> [u8; 8] {
        let admin = match *self {
            RouteDistinguisher::As2 { asn, number } => Admin::As2(asn, number),
            RouteDistinguisher::Ipv4 { addr, number } => Admin::Ipv4(addr, number),
            RouteDistinguisher::As4 { asn, number } => Admin::As4(asn, number),
            RouteDistinguisher::Other(b) => return b,
        };
        let mut b = [0u8; 8];
        b[1] = admin.type_code();
        b[2..].copy_from_slice(&admin.value());
        b
    }
}

impl From<Admin> for RouteDistinguisher {
    fn from(a: Admin) -> Self {
        match a {
            Admin::As2(asn, number) => RouteDistinguisher::As2 { asn, number },
            Admin::Ipv4(addr, number) => RouteDistinguisher::Ipv4 { addr, number },
            Admin::As4(asn, number) => RouteDistinguisher::As4 { asn, number },
        }
    }
}

impl fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteDistinguisher::As2 { asn, number } => Admin::As2(asn, number).fmt(f),
            RouteDistinguisher::Ipv4 { addr, number } => Admin::Ipv4(addr, number).fmt(f),
            RouteDistinguisher::As4 { asn, number } => Admin::As4(asn, number).fmt(f),
            RouteDistinguisher::Other(b) => {
                // Not parseable back: an unknown type only comes from the wire.
                write!(f, "type{}:", u16::from_be_bytes([b[0], b[1]]))?;
                b[2..].iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

impl FromStr for RouteDistinguisher {
    type Err = ParseAdminError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Admin>().map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_types_in_text_and_bytes() {
        for (text, bytes) in [
            ("65000:100", [0, 0, 0xfd, 0xe8, 0, 0, 0, 100]),
            ("10.0.0.1:5", [0, 1, 10, 0, 0, 1, 0, 5]),
            ("4200000000:7", [0, 2, 0xfa, 0x56, 0xea, 0x00, 0, 7]),
            ("65000L:7", [0, 2, 0, 0, 0xfd, 0xe8, 0, 7]),
            ("0:0", [0; 8]),
        ] {
            let rd: RouteDistinguisher = text.parse().unwrap();
            assert_eq!(rd.to_bytes(), bytes, "{text}");
            assert_eq!(RouteDistinguisher::from_bytes(bytes), rd, "{text}");
            assert_eq!(rd.to_string(), text);
        }
        assert_eq!(RouteDistinguisher::ZERO.to_bytes(), [0; 8]);
    }

    #[test]
    fn unknown_types_are_kept() {
        let b = [0, 3, 1, 2, 3, 4, 5, 6];
        let rd = RouteDistinguisher::from_bytes(b);
        assert_eq!(rd, RouteDistinguisher::Other(b));
        assert_eq!(rd.to_bytes(), b);
        assert_eq!(rd.to_string(), "type3:010203040506");
        // A non-zero high type byte is not type 0.
        let b = [1, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(RouteDistinguisher::from_bytes(b).to_bytes(), b);
    }

    #[test]
    fn bad_text() {
        for s in [
            "",
            "65000",
            "x:1",
            "10.0.0:1",
            "10.0.0.1:70000",
            "4200000000:70000",
            "65000:4294967296",
            "-1:1",
        ] {
            assert!(s.parse::<RouteDistinguisher>().is_err(), "{s}");
        }
    }
}
