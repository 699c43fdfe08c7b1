//! MP_REACH_NLRI (attribute 14) and MP_UNREACH_NLRI (attribute 15), RFC 4760 §3 and §4.
//!
//! ```text
//! MP_REACH_NLRI                          MP_UNREACH_NLRI
//! +---------------------------------+    +---------------------------------+
//! | AFI (2) | SAFI (1)              |    | AFI (2) | SAFI (1)              |
//! +---------------------------------+    +---------------------------------+
//! | Length of Next Hop (1)          |    | Withdrawn Routes (variable)     |
//! +---------------------------------+    +---------------------------------+
//! | Next Hop (variable)             |
//! +---------------------------------+
//! | Reserved (1)                    |
//! +---------------------------------+
//! | NLRI (variable)                 |
//! +---------------------------------+
//! ```
//!
//! Next hops by family: unicast, SD-WAN and RT membership take 4 (IPv4), 16 (IPv6) or 32
//! (IPv6 global + link-local, RFC 2545 §3) bytes; VPN families take an 8-byte zero RD before
//! each address: 12, 24 or 48 bytes (RFC 4364 §4.3.2, RFC 4659 §3.2.1). Any other length is
//! "inconsistent with that which was expected" (RFC 7606 §7.11): the NLRI cannot be located,
//! so the session resets. A VPN next hop whose RD is not zero is kept raw rather than refused.
//!
//! The reserved byte (once the SNPA count) is ignored on receipt (RFC 4760 §3) but kept, so a
//! re-encoded attribute is the one received.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::nlri::{self, Family, Layout, Nlri};
use super::{EncodeError, Reader, Session};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHop {
    Ipv4(Ipv4Addr),
    Ipv6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
    /// VPN families: a zero RD and an IPv4 address (12 bytes).
    VpnIpv4(Ipv4Addr),
    /// VPN families: zero RD + IPv6 (24 bytes), and again for a link-local one (48 bytes).
    VpnIpv6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
    /// A family this codec does not parse, or an unusual VPN next hop: as received.
    Raw(Vec<u8>),
}

impl NextHop {
    /// The address routes resolve through (the global one for IPv6).
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            NextHop::Ipv4(a) | NextHop::VpnIpv4(a) => Some(IpAddr::V4(*a)),
            NextHop::Ipv6 { global, .. } | NextHop::VpnIpv6 { global, .. } => {
                Some(IpAddr::V6(*global))
            }
            NextHop::Raw(_) => None,
        }
    }

    /// The next hop a route of `family` via `addr` carries: with the zero RD for VPN families.
    pub fn for_family(family: Family, addr: IpAddr) -> Self {
        let vpn = matches!(family.layout(), Layout::Vpn { .. });
        match (addr, vpn) {
            (IpAddr::V4(a), false) => NextHop::Ipv4(a),
            (IpAddr::V4(a), true) => NextHop::VpnIpv4(a),
            (IpAddr::V6(global), false) => NextHop::Ipv6 {
                global,
                link_local: None,
            },
            (IpAddr::V6(global), true) => NextHop::VpnIpv6 {
                global,
                link_local: None,
            },
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        const RD0: [u8; 8] = [0; 8];
        match self {
            NextHop::Ipv4(a) => out.extend_from_slice(&a.octets()),
            NextHop::Ipv6 { global, link_local } => {
                out.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(&ll.octets());
                }
            }
            NextHop::VpnIpv4(a) => {
                out.extend_from_slice(&RD0);
                out.extend_from_slice(&a.octets());
            }
            NextHop::VpnIpv6 { global, link_local } => {
                out.extend_from_slice(&RD0);
                out.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(&RD0);
                    out.extend_from_slice(&ll.octets());
                }
            }
            NextHop::Raw(b) => out.extend_from_slice(b),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            NextHop::Ipv4(_) => 4,
            NextHop::Ipv6 { link_local, .. } => 16 + 16 * usize::from(link_local.is_some()),
            NextHop::VpnIpv4(_) => 12,
            NextHop::VpnIpv6 { link_local, .. } => 24 + 24 * usize::from(link_local.is_some()),
            NextHop::Raw(b) => b.len(),
        }
    }

    fn decode(family: Family, b: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(b);
        let bad = || format!("next hop of {} bytes for {family}", b.len());
        match family.layout() {
            Layout::Raw => Ok(NextHop::Raw(b.to_vec())),
            Layout::Prefix { .. } | Layout::SdWan | Layout::RtConstraint => match b.len() {
                4 => r.ipv4().map(NextHop::Ipv4).ok_or_else(bad),
                16 | 32 => {
                    let global = r.ipv6().ok_or_else(bad)?;
                    let link_local = if r.is_empty() { None } else { r.ipv6() };
                    Ok(NextHop::Ipv6 { global, link_local })
                }
                _ => Err(bad()),
            },
            Layout::Vpn { .. } => {
                if !matches!(b.len(), 12 | 24 | 48) {
                    return Err(bad());
                }
                // The RDs of a VPN next hop are zero (RFC 4364 §4.3.2); other values are
                // odd but harmless, so they are kept as they came.
                let rds_zero = match b.len() {
                    48 => b.get(..8) == Some(&[0; 8]) && b.get(24..32) == Some(&[0; 8]),
                    _ => b.get(..8) == Some(&[0; 8]),
                };
                if !rds_zero {
                    return Ok(NextHop::Raw(b.to_vec()));
                }
                r.take(8);
                if b.len() == 12 {
                    return r.ipv4().map(NextHop::VpnIpv4).ok_or_else(bad);
                }
                let global = r.ipv6().ok_or_else(bad)?;
                let link_local = if b.len() == 48 {
                    r.take(8);
                    r.ipv6()
                } else {
                    None
                };
                Ok(NextHop::VpnIpv6 { global, link_local })
            }
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Ipv4(a) | NextHop::VpnIpv4(a) => a.fmt(f),
            NextHop::Ipv6 { global, link_local } | NextHop::VpnIpv6 { global, link_local } => {
                global.fmt(f)?;
                match link_local {
                    Some(ll) => write!(f, " ({ll})"),
                    None => Ok(()),
                }
            }
            NextHop::Raw(b) => {
                f.write_str("0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

/// The NLRI of an MP attribute: parsed for the families the session negotiated and this
/// codec reads, raw otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpNlri {
    Routes(Vec<Nlri>),
    Raw(Vec<u8>),
}

impl MpNlri {
    pub fn routes(&self) -> &[Nlri] {
        match self {
            MpNlri::Routes(r) => r,
            MpNlri::Raw(_) => &[],
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            MpNlri::Routes(r) => r.is_empty(),
            MpNlri::Raw(b) => b.is_empty(),
        }
    }

    fn decode(family: Family, b: &[u8], session: &Session, withdraw: bool) -> Result<Self, String> {
        if family.layout() == Layout::Raw || !session.has_family(family) {
            return Ok(MpNlri::Raw(b.to_vec()));
        }
        nlri::decode_list(family, b, withdraw)
            .map(MpNlri::Routes)
            .map_err(|e| format!("{family} NLRI: {e}"))
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            MpNlri::Routes(routes) => routes.iter().try_for_each(|n| n.encode(out)),
            MpNlri::Raw(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    /// Zero when sent; whatever came when received (RFC 4760 §3).
    pub reserved: u8,
    pub nlri: MpNlri,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: MpNlri,
}

impl MpReach {
    pub fn new(family: Family, next_hop: NextHop, nlri: Vec<Nlri>) -> Self {
        MpReach {
            family,
            next_hop,
            reserved: 0,
            nlri: MpNlri::Routes(nlri),
        }
    }

    /// RFC 4760 §3; an error here is a session reset (RFC 7606 §7.11, §5.3).
    pub(crate) fn decode(value: &[u8], session: &Session) -> Result<Self, String> {
        if value.len() < 5 {
            return Err(format!(
                "MP_REACH_NLRI of {} bytes, fewer than 5",
                value.len()
            ));
        }
        let mut r = Reader::new(value);
        let family = read_family(&mut r).ok_or("MP_REACH_NLRI too short")?;
        let nh_len = r.u8().ok_or("MP_REACH_NLRI too short")?;
        let nh = r
            .take(usize::from(nh_len))
            .ok_or_else(|| format!("next hop length {nh_len} runs past the attribute"))?;
        let reserved = r
            .u8()
            .ok_or("MP_REACH_NLRI ends before the reserved byte")?;
        let known = session.has_family(family) && family.layout() != Layout::Raw;
        let next_hop = if known {
            NextHop::decode(family, nh)?
        } else {
            NextHop::Raw(nh.to_vec())
        };
        Ok(MpReach {
            family,
            next_hop,
            reserved,
            nlri: MpNlri::decode(family, r.rest(), session, false)?,
        })
    }

    pub(crate) fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.family.afi.to_be_bytes());
        out.push(self.family.safi);
        let nh_len = u8::try_from(self.next_hop.encoded_len())
            .map_err(|_| EncodeError::Invalid("next hop longer than 255 bytes"))?;
        out.push(nh_len);
        self.next_hop.encode(out);
        out.push(self.reserved);
        self.nlri.encode(out)
    }
}

impl MpUnreach {
    pub fn new(family: Family, withdrawn: Vec<Nlri>) -> Self {
        MpUnreach {
            family,
            withdrawn: MpNlri::Routes(withdrawn),
        }
    }

    /// RFC 4760 §4; an error here is a session reset (RFC 7606 §5.3).
    pub(crate) fn decode(value: &[u8], session: &Session) -> Result<Self, String> {
        let mut r = Reader::new(value);
        let family = read_family(&mut r)
            .ok_or_else(|| format!("MP_UNREACH_NLRI of {} bytes, fewer than 3", value.len()))?;
        Ok(MpUnreach {
            family,
            withdrawn: MpNlri::decode(family, r.rest(), session, true)?,
        })
    }

    pub(crate) fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.family.afi.to_be_bytes());
        out.push(self.family.safi);
        self.withdrawn.encode(out)
    }
}

fn read_family(r: &mut Reader<'_>) -> Option<Family> {
    Some(Family::new(r.u16()?, r.u8()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::nlri::VpnRoute;

    fn session() -> Session {
        Session::all_families(true)
    }

    #[test]
    fn vpn_ipv4_reach_round_trip() {
        let reach = MpReach::new(
            Family::IPV4_VPN,
            NextHop::VpnIpv4("192.0.2.1".parse().unwrap()),
            vec![Nlri::Vpn(VpnRoute::new(
                100,
                "65000:100".parse().unwrap(),
                "10.1.0.0/24".parse().unwrap(),
            ))],
        );
        let mut b = Vec::new();
        reach.encode_value(&mut b).unwrap();
        assert_eq!(&b[..5], &[0, 1, 128, 12, 0]);
        assert_eq!(&b[12..16], &[192, 0, 2, 1]);
        assert_eq!(b[16], 0, "reserved");
        assert_eq!(MpReach::decode(&b, &session()).unwrap(), reach);
    }

    #[test]
    fn next_hop_lengths() {
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        for (family, nh) in [
            (
                Family::IPV4_UNICAST,
                NextHop::Ipv4("10.0.0.1".parse().unwrap()),
            ),
            (
                Family::IPV6_UNICAST,
                NextHop::Ipv6 {
                    global: v6,
                    link_local: Some(ll),
                },
            ),
            (
                Family::IPV6_VPN,
                NextHop::VpnIpv6 {
                    global: v6,
                    link_local: None,
                },
            ),
            (
                Family::IPV6_VPN,
                NextHop::VpnIpv6 {
                    global: v6,
                    link_local: Some(ll),
                },
            ),
            // RFC 8950: an IPv6 next hop for VPN-IPv4.
            (
                Family::IPV4_VPN,
                NextHop::VpnIpv6 {
                    global: v6,
                    link_local: None,
                },
            ),
        ] {
            let mut b = Vec::new();
            nh.encode(&mut b);
            assert_eq!(b.len(), nh.encoded_len());
            assert_eq!(NextHop::decode(family, &b).unwrap(), nh, "{family}");
        }
        // Wrong lengths for the family.
        assert!(NextHop::decode(Family::IPV4_VPN, &[0; 4]).is_err());
        assert!(NextHop::decode(Family::IPV4_UNICAST, &[0; 12]).is_err());
        assert!(NextHop::decode(Family::IPV6_UNICAST, &[]).is_err());
        // A VPN next hop with a non-zero RD is kept as it came.
        let odd = [0, 0, 0, 1, 0, 0, 0, 1, 10, 0, 0, 1];
        assert_eq!(
            NextHop::decode(Family::IPV4_VPN, &odd).unwrap(),
            NextHop::Raw(odd.to_vec())
        );
    }

    #[test]
    fn unnegotiated_and_unknown_families_stay_raw() {
        let value = [0, 1, 128, 4, 10, 0, 0, 1, 0, 0xde, 0xad];
        let s = Session::new(true, vec![Family::IPV4_UNICAST]);
        let r = MpReach::decode(&value, &s).unwrap();
        assert_eq!(r.next_hop, NextHop::Raw(vec![10, 0, 0, 1]));
        assert_eq!(r.nlri, MpNlri::Raw(vec![0xde, 0xad]));
        let mut b = Vec::new();
        r.encode_value(&mut b).unwrap();
        assert_eq!(b, value);
        let u = MpUnreach::decode(&[0, 25, 70, 1, 2], &session()).unwrap();
        assert_eq!(u.withdrawn, MpNlri::Raw(vec![1, 2]));
    }

    #[test]
    fn malformed() {
        let s = session();
        assert!(MpReach::decode(&[0, 1, 1, 4], &s).is_err()); // < 5
        assert!(MpReach::decode(&[0, 1, 1, 9, 1, 2, 3], &s).is_err()); // next hop overrun
        assert!(MpReach::decode(&[0, 1, 1, 4, 1, 2, 3, 4], &s).is_err()); // no reserved
        assert!(MpReach::decode(&[0, 1, 1, 4, 1, 2, 3, 4, 0, 33, 1], &s).is_err()); // NLRI
        assert!(MpUnreach::decode(&[0, 1], &s).is_err());
        assert!(MpUnreach::decode(&[0, 1, 1, 24, 10], &s).is_err());
        // End-of-RIB: no NLRI at all.
        let eor = MpUnreach::decode(&[0, 1, 128], &s).unwrap();
        assert!(eor.withdrawn.is_empty());
    }
}
