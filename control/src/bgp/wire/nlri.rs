//! Address families and the NLRI this codec reads: IP prefixes (RFC 4271 §4.3, RFC 4760 §5),
//! VPN-IPv4 / VPN-IPv6 routes with MPLS labels and a Route Distinguisher (RFC 4364 §4.3.4,
//! RFC 4659 §3.2, RFC 8277 §2), Route Target membership (RFC 4684 §4), and the SD-WAN NLRI of
//! SAFI 74 (read by [`super::sdwan`]). NLRI of other families stay raw bytes.
//!
//! ```text
//! Prefix:            +---------------------------+
//!                    |   Length (1 octet, bits)  |
//!                    +---------------------------+
//!                    |   Prefix (variable)       |
//!                    +---------------------------+
//!
//! VPN route:         +---------------------------+
//!                    |   Length (1 octet, bits)  |  = 24 x labels + 64 + prefix bits
//!                    +---------------------------+
//!                    |   Label (3 octets)        |  label (20 bits) | TC (3) | S (1)
//!                    +---------------------------+  ... until S = 1
//!                    |   Route Distinguisher (8) |
//!                    +---------------------------+
//!                    |   Prefix (variable)       |
//!                    +---------------------------+
//!
//! RT membership:     | Length (bits): 0 = default, or 32..=96 |
//!                    | origin AS (4) | Route Target (0-8, a prefix of it) |
//! ```
//!
//! Labels: RFC 8277 §2.4 has a withdrawal carry the label field 0x800000 (or whatever was
//! announced, which the receiver ignores). Reading stops at the entry with the bottom-of-stack
//! bit, at 0x800000, and in withdrawals also at 0x000000 (what some older speakers send), so a
//! stack of several labels reads as announced and the compatibility values read as one.
//!
//! Syntax errors here are the "syntactically incorrect" NLRI of RFC 7606 §5.3; the caller
//! turns them into a session reset.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::extcomm::ExtCommunity;
use super::rd::RouteDistinguisher;
use super::sdwan::{SdWanNlri, SAFI_SDWAN};
use super::{EncodeError, Reader};

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;
/// RFC 4364 / RFC 4659: labeled VPN routes.
pub const SAFI_MPLS_VPN: u8 = 128;
/// RFC 4684: Route Target membership.
pub const SAFI_RT_CONSTRAINT: u8 = 132;

/// An address family: AFI and SAFI (RFC 4760 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

/// How the NLRI of a family are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Prefix { v6: bool },
    Vpn { v6: bool },
    SdWan,
    RtConstraint,
    Raw,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family::new(AFI_IPV4, SAFI_UNICAST);
    pub const IPV6_UNICAST: Family = Family::new(AFI_IPV6, SAFI_UNICAST);
    pub const IPV4_VPN: Family = Family::new(AFI_IPV4, SAFI_MPLS_VPN);
    pub const IPV6_VPN: Family = Family::new(AFI_IPV6, SAFI_MPLS_VPN);
    pub const IPV4_SDWAN: Family = Family::new(AFI_IPV4, SAFI_SDWAN);
    pub const IPV6_SDWAN: Family = Family::new(AFI_IPV6, SAFI_SDWAN);
    pub const IPV4_RT_CONSTRAINT: Family = Family::new(AFI_IPV4, SAFI_RT_CONSTRAINT);

    /// The families whose NLRI this codec parses.
    pub const KNOWN: [Family; 7] = [
        Family::IPV4_UNICAST,
        Family::IPV6_UNICAST,
        Family::IPV4_VPN,
        Family::IPV6_VPN,
        Family::IPV4_SDWAN,
        Family::IPV6_SDWAN,
        Family::IPV4_RT_CONSTRAINT,
    ];

    pub const fn new(afi: u16, safi: u8) -> Self {
        Family { afi, safi }
    }

    pub(crate) fn layout(self) -> Layout {
        let v6 = self.afi == AFI_IPV6;
        match (self.afi, self.safi) {
            (AFI_IPV4 | AFI_IPV6, SAFI_UNICAST) => Layout::Prefix { v6 },
            (AFI_IPV4 | AFI_IPV6, SAFI_MPLS_VPN) => Layout::Vpn { v6 },
            (AFI_IPV4 | AFI_IPV6, SAFI_SDWAN) => Layout::SdWan,
            (AFI_IPV4, SAFI_RT_CONSTRAINT) => Layout::RtConstraint,
            _ => Layout::Raw,
        }
    }

    /// The name FRR and GoBGP use, for known families.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Family::IPV4_UNICAST => "ipv4-unicast",
            Family::IPV6_UNICAST => "ipv6-unicast",
            Family::IPV4_VPN => "ipv4-vpn",
            Family::IPV6_VPN => "ipv6-vpn",
            Family::IPV4_SDWAN => "ipv4-sdwan",
            Family::IPV6_SDWAN => "ipv6-sdwan",
            Family::IPV4_RT_CONSTRAINT => "rtc",
            _ => return None,
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "afi {} safi {}", self.afi, self.safi),
        }
    }
}

/// One MPLS label stack entry as NLRI carry it: 20-bit label, 3 TC bits, bottom-of-stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(u32);

impl Label {
    /// The compatibility value withdrawals carry (RFC 8277 §2.4).
    pub const WITHDRAW: Label = Label(0x80_0000);

    /// `value` (20 bits; higher bits are dropped) with the bottom-of-stack bit as given.
    pub fn new(value: u32, bottom: bool) -> Self {
        Label(((value & 0x000f_ffff) << 4) | u32::from(bottom))
    }

    /// The 24-bit field as on the wire.
    pub fn from_raw(raw: u32) -> Self {
        Label(raw & 0x00ff_ffff)
    }

    pub fn raw(self) -> u32 {
        self.0
    }

    pub fn value(self) -> u32 {
        self.0 >> 4
    }

    pub fn is_bottom(self) -> bool {
        self.0 & 1 == 1
    }
}

/// A VPN-IPv4 or VPN-IPv6 route (RFC 4364, RFC 4659).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VpnRoute {
    pub labels: Vec<Label>,
    pub rd: RouteDistinguisher,
    pub prefix: IpNet,
}

impl VpnRoute {
    /// A route with one label, as announced.
    pub fn new(label: u32, rd: RouteDistinguisher, prefix: IpNet) -> Self {
        VpnRoute {
            labels: vec![Label::new(label, true)],
            rd,
            prefix: prefix.trunc(),
        }
    }

    /// The NLRI to withdraw `rd` + `prefix` (label field 0x800000, RFC 8277 §2.4).
    pub fn withdrawal(rd: RouteDistinguisher, prefix: IpNet) -> Self {
        VpnRoute {
            labels: vec![Label::WITHDRAW],
            rd,
            prefix: prefix.trunc(),
        }
    }

    fn bits(&self) -> usize {
        24 * self.labels.len() + 64 + usize::from(self.prefix.prefix_len())
    }
}

/// A Route Target membership NLRI (RFC 4684 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RtConstraint {
    /// Length 0: send me every VPN route.
    Default,
    /// `rt_bits` (0..=64) leading bits of `route_target`; the rest are zero.
    Member {
        origin_as: u32,
        route_target: [u8; 8],
        rt_bits: u8,
    },
}

impl RtConstraint {
    /// Membership of one whole Route Target.
    pub fn new(origin_as: u32, route_target: ExtCommunity) -> Self {
        RtConstraint::Member {
            origin_as,
            route_target: route_target.to_bytes(),
            rt_bits: 64,
        }
    }

    /// The Route Target, when the NLRI names a whole one.
    pub fn route_target(&self) -> Option<ExtCommunity> {
        match *self {
            RtConstraint::Member {
                route_target,
                rt_bits: 64,
                ..
            } => Some(ExtCommunity::from_bytes(route_target)),
            _ => None,
        }
    }

    fn bits(&self) -> usize {
        match self {
            RtConstraint::Default => 0,
            RtConstraint::Member { rt_bits, .. } => 32 + usize::from((*rt_bits).min(64)),
        }
    }
}

/// One NLRI of a parsed family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nlri {
    /// Unicast (SAFI 1).
    Prefix(IpNet),
    /// SAFI 128.
    Vpn(VpnRoute),
    /// AFI 1, SAFI 132.
    RtConstraint(RtConstraint),
    /// SAFI 74.
    SdWan(SdWanNlri),
}

/// Why an NLRI field is syntactically incorrect (RFC 7606 §5.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NlriError(pub String);

impl Nlri {
    /// Bytes on the wire; what a caller packing NLRIs into 4096-byte messages adds up.
    pub fn encoded_len(&self) -> usize {
        match self {
            Nlri::Prefix(p) => 1 + bytes_for(usize::from(p.prefix_len())),
            Nlri::Vpn(v) => 1 + bytes_for(v.bits()),
            Nlri::RtConstraint(r) => 1 + bytes_for(r.bits()),
            Nlri::SdWan(s) => {
                let mut tmp = Vec::new();
                s.encode(&mut tmp);
                tmp.len()
            }
        }
    }

    /// Appends the NLRI. Fails only for a VPN route whose labels, RD and prefix exceed the
    /// 255 bits the length octet can say.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Nlri::Prefix(p) => encode_prefix(*p, out),
            Nlri::Vpn(v) => {
                let bits = u8::try_from(v.bits())
                    .map_err(|_| EncodeError::Invalid("VPN NLRI longer than 255 bits"))?;
                out.push(bits);
                for l in &v.labels {
                    out.extend_from_slice(&l.raw().to_be_bytes()[1..]);
                }
                out.extend_from_slice(&v.rd.to_bytes());
                let n = bytes_for(usize::from(v.prefix.prefix_len()));
                out.extend(addr_bytes(v.prefix.addr()).into_iter().take(n));
            }
            Nlri::RtConstraint(RtConstraint::Default) => out.push(0),
            Nlri::RtConstraint(RtConstraint::Member {
                origin_as,
                route_target,
                rt_bits,
            }) => {
                // A Route Target has 64 bits: write no more than exist.
                let rt_bits = (*rt_bits).min(64);
                out.push(32 + rt_bits);
                out.extend_from_slice(&origin_as.to_be_bytes());
                out.extend(
                    route_target
                        .iter()
                        .take(bytes_for(usize::from(rt_bits)))
                        .copied(),
                );
            }
            Nlri::SdWan(s) => s.encode(out),
        }
        Ok(())
    }
}

impl From<IpNet> for Nlri {
    fn from(p: IpNet) -> Self {
        Nlri::Prefix(p)
    }
}

impl From<VpnRoute> for Nlri {
    fn from(v: VpnRoute) -> Self {
        Nlri::Vpn(v)
    }
}

impl fmt::Display for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nlri::Prefix(p) => p.fmt(f),
            Nlri::Vpn(v) => {
                write!(f, "{}:{}", v.rd, v.prefix)?;
                let labels: Vec<String> = v.labels.iter().map(|l| l.value().to_string()).collect();
                write!(f, " label {}", labels.join("/"))
            }
            Nlri::RtConstraint(RtConstraint::Default) => f.write_str("rt default"),
            Nlri::RtConstraint(r @ RtConstraint::Member { origin_as, .. }) => {
                match r.route_target() {
                    Some(rt) => write!(f, "{origin_as}:{rt}"),
                    None => write!(f, "{origin_as}:prefix/{}", r.bits()),
                }
            }
            Nlri::SdWan(s) => write!(
                f,
                "sdwan port {} color {} node {}",
                s.port_local_id, s.color, s.node
            ),
        }
    }
}

fn bytes_for(bits: usize) -> usize {
    bits.div_ceil(8)
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub(crate) fn encode_prefix(p: IpNet, out: &mut Vec<u8>) {
    out.push(p.prefix_len());
    let n = bytes_for(usize::from(p.prefix_len()));
    out.extend(addr_bytes(p.addr()).into_iter().take(n));
}

/// Reads `bits` of an address from `bytes` (exactly the bytes those bits need) and clears
/// the bits after the length (RFC 4271 §4.3: their value is irrelevant).
fn read_prefix(bytes: &[u8], bits: u8, v6: bool) -> Result<IpNet, NlriError> {
    let max = if v6 { 128 } else { 32 };
    if bits > max {
        return Err(NlriError(format!("prefix length {bits} > {max}")));
    }
    if bytes.len() != bytes_for(usize::from(bits)) {
        return Err(NlriError(format!(
            "prefix /{bits} given {} bytes",
            bytes.len()
        )));
    }
    let net = if v6 {
        let mut a = [0u8; 16];
        a.get_mut(..bytes.len())
            .ok_or_else(|| NlriError("prefix too long".into()))?
            .copy_from_slice(bytes);
        Ipv6Net::new(Ipv6Addr::from(a), bits).map(|n| IpNet::V6(n.trunc()))
    } else {
        let mut a = [0u8; 4];
        a.get_mut(..bytes.len())
            .ok_or_else(|| NlriError("prefix too long".into()))?
            .copy_from_slice(bytes);
        Ipv4Net::new(Ipv4Addr::from(a), bits).map(|n| IpNet::V4(n.trunc()))
    };
    net.map_err(|_| NlriError(format!("prefix length {bits} > {max}")))
}

/// The length octet and the bytes it covers.
fn read_bits<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), NlriError> {
    let bits = r.u8().ok_or_else(|| NlriError("missing length".into()))?;
    let n = bytes_for(usize::from(bits));
    let body = r.take(n).ok_or_else(|| {
        NlriError(format!(
            "length {bits} bits needs {n} bytes, {} left",
            r.remaining()
        ))
    })?;
    Ok((bits, body))
}

/// The IPv4 prefixes of the Withdrawn Routes and NLRI fields of an UPDATE (RFC 4271 §4.3).
pub(crate) fn decode_ipv4_prefixes(bytes: &[u8]) -> Result<Vec<Ipv4Net>, NlriError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (bits, body) = read_bits(&mut r)?;
        match read_prefix(body, bits, false)? {
            IpNet::V4(n) => out.push(n),
            IpNet::V6(_) => return Err(NlriError("IPv6 prefix in an IPv4 field".into())),
        }
    }
    Ok(out)
}

/// The NLRI of one family, from MP_REACH_NLRI or MP_UNREACH_NLRI (`withdraw`).
pub(crate) fn decode_list(
    family: Family,
    bytes: &[u8],
    withdraw: bool,
) -> Result<Vec<Nlri>, NlriError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let nlri = match family.layout() {
            Layout::Prefix { v6 } => {
                let (bits, body) = read_bits(&mut r)?;
                Nlri::Prefix(read_prefix(body, bits, v6)?)
            }
            Layout::Vpn { v6 } => {
                let (bits, body) = read_bits(&mut r)?;
                Nlri::Vpn(read_vpn(bits, body, v6, withdraw)?)
            }
            Layout::RtConstraint => {
                let (bits, body) = read_bits(&mut r)?;
                Nlri::RtConstraint(read_rtc(bits, body)?)
            }
            Layout::SdWan => {
                let rest = r.rest();
                let (nlri, used) = SdWanNlri::decode(rest).map_err(|e| NlriError(e.to_string()))?;
                // A decoder that consumed nothing (or more than it had) would loop forever or
                // read past the end: refuse it here rather than trust it.
                if used == 0 || r.take(used).is_none() {
                    return Err(NlriError(format!(
                        "SD-WAN NLRI decoder consumed {used} of {} bytes",
                        rest.len()
                    )));
                }
                Nlri::SdWan(nlri)
            }
            Layout::Raw => return Err(NlriError(format!("family {family} is not parsed"))),
        };
        out.push(nlri);
    }
    Ok(out)
}

fn read_vpn(bits: u8, body: &[u8], v6: bool, withdraw: bool) -> Result<VpnRoute, NlriError> {
    let mut r = Reader::new(body);
    let mut left = usize::from(bits);
    let mut labels = Vec::new();
    loop {
        left = left.checked_sub(24).ok_or_else(|| {
            NlriError(format!(
                "VPN NLRI of {bits} bits ends inside label {}",
                labels.len() + 1
            ))
        })?;
        let [a, b, c] = r
            .array::<3>()
            .ok_or_else(|| NlriError("VPN NLRI ends inside a label".into()))?;
        let label = Label::from_raw(u32::from_be_bytes([0, a, b, c]));
        labels.push(label);
        let compat = label == Label::WITHDRAW || (withdraw && label.raw() == 0);
        if label.is_bottom() || compat {
            break;
        }
    }
    left = left
        .checked_sub(64)
        .ok_or_else(|| NlriError(format!("VPN NLRI of {bits} bits has no room for the RD")))?;
    let rd = r
        .array::<8>()
        .ok_or_else(|| NlriError("VPN NLRI ends inside the RD".into()))?;
    let plen = u8::try_from(left).map_err(|_| NlriError("VPN prefix too long".into()))?;
    let prefix = read_prefix(r.rest(), plen, v6)?;
    Ok(VpnRoute {
        labels,
        rd: RouteDistinguisher::from_bytes(rd),
        prefix,
    })
}

fn read_rtc(bits: u8, body: &[u8]) -> Result<RtConstraint, NlriError> {
    if bits == 0 {
        return Ok(RtConstraint::Default);
    }
    if !(32..=96).contains(&bits) {
        return Err(NlriError(format!(
            "RT membership length {bits}, not 0 or 32..=96"
        )));
    }
    let mut r = Reader::new(body);
    let origin_as = r
        .u32()
        .ok_or_else(|| NlriError("RT membership without origin AS".into()))?;
    let rt_bits = bits - 32;
    let mut route_target = [0u8; 8];
    let rest = r.rest();
    route_target
        .get_mut(..rest.len())
        .ok_or_else(|| NlriError("RT membership too long".into()))?
        .copy_from_slice(rest);
    // Clear the bits after the prefix, as for IP prefixes.
    let keep = u64::MAX.checked_shl(64 - u32::from(rt_bits)).unwrap_or(0);
    let route_target = (u64::from_be_bytes(route_target) & keep).to_be_bytes();
    Ok(RtConstraint::Member {
        origin_as,
        route_target,
        rt_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(n: &Nlri) -> Vec<u8> {
        let mut b = Vec::new();
        n.encode(&mut b).unwrap();
        assert_eq!(b.len(), n.encoded_len(), "{n}");
        b
    }

    #[test]
    fn ipv4_prefixes() {
        let bytes = [24, 10, 1, 0, 0, 32, 192, 0, 2, 1, 9, 0x80, 0x80];
        let v = decode_ipv4_prefixes(&bytes).unwrap();
        assert_eq!(
            v,
            [
                "10.1.0.0/24".parse().unwrap(),
                "0.0.0.0/0".parse().unwrap(),
                "192.0.2.1/32".parse().unwrap(),
                "128.128.0.0/9".parse().unwrap()
            ]
        );
        let mut out = Vec::new();
        for p in v {
            encode_prefix(IpNet::V4(p), &mut out);
        }
        assert_eq!(out, bytes);
    }

    #[test]
    fn trailing_bits_are_cleared() {
        // 10.1.0.255/20 with the host bits of the third byte set.
        let v = decode_ipv4_prefixes(&[20, 10, 1, 0x0f]).unwrap();
        assert_eq!(v, ["10.1.0.0/20".parse().unwrap()]);
    }

    #[test]
    fn bad_prefixes() {
        for bytes in [&[33u8, 1, 2, 3, 4, 5][..], &[24, 10, 1], &[8]] {
            assert!(decode_ipv4_prefixes(bytes).is_err(), "{bytes:?}");
        }
        assert!(decode_list(Family::IPV6_UNICAST, &[129; 18], false).is_err());
        let v6 = decode_list(Family::IPV6_UNICAST, &[32, 0x20, 0x01, 0x0d, 0xb8], false).unwrap();
        assert_eq!(v6, [Nlri::Prefix("2001:db8::/32".parse().unwrap())]);
    }

    #[test]
    fn vpn_route_one_label() {
        // label 100, RD 65000:100, 10.1.0.0/24: 24 + 64 + 24 = 112 bits.
        let bytes = [
            112, 0x00, 0x06, 0x41, 0, 0, 0xfd, 0xe8, 0, 0, 0, 100, 10, 1, 0,
        ];
        let v = decode_list(Family::IPV4_VPN, &bytes, false).unwrap();
        let want = Nlri::Vpn(VpnRoute::new(
            100,
            "65000:100".parse().unwrap(),
            "10.1.0.0/24".parse().unwrap(),
        ));
        assert_eq!(v, std::slice::from_ref(&want));
        assert_eq!(enc(&want), bytes);
        assert_eq!(want.to_string(), "65000:100:10.1.0.0/24 label 100");
    }

    #[test]
    fn vpn_route_label_stack_and_withdraw_labels() {
        let route = VpnRoute {
            labels: vec![Label::new(16, false), Label::new(17, true)],
            rd: "10.0.0.1:5".parse().unwrap(),
            prefix: "2001:db8::/48".parse().unwrap(),
        };
        let b = enc(&Nlri::Vpn(route.clone()));
        assert_eq!(b[0], 48 + 64 + 48);
        assert_eq!(
            decode_list(Family::IPV6_VPN, &b, false).unwrap(),
            [Nlri::Vpn(route)]
        );
        // 0x800000 ends the stack though its S bit is clear.
        let w = Nlri::Vpn(VpnRoute::withdrawal(
            "65000:1".parse().unwrap(),
            "10.2.0.0/16".parse().unwrap(),
        ));
        let b = enc(&w);
        assert_eq!(&b[..4], &[24 + 64 + 16, 0x80, 0, 0]);
        assert_eq!(decode_list(Family::IPV4_VPN, &b, true).unwrap(), [w]);
        // 0x000000 too, in a withdrawal.
        let mut z = b.clone();
        z[1] = 0;
        let got = decode_list(Family::IPV4_VPN, &z, true).unwrap();
        assert!(matches!(&got[0], Nlri::Vpn(v) if v.labels == [Label::from_raw(0)]));
    }

    #[test]
    fn bad_vpn_routes() {
        for bytes in [
            &[80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][..], // 24 + 56: no room for the RD
            &[20, 0, 0, 1][..],                        // ends inside the label
            &[88 + 33, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5][..], // /33
            &[112, 0, 0, 0, 0, 0, 0, 0][..],           // short
            // No bottom of stack: labels run into the length.
            &[112, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert!(
                decode_list(Family::IPV4_VPN, bytes, false).is_err(),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn rt_constraint() {
        let rt: ExtCommunity = "65000:100"
            .parse::<super::super::extcomm::RouteTarget>()
            .unwrap()
            .into();
        let m = Nlri::RtConstraint(RtConstraint::new(65000, rt));
        let b = enc(&m);
        assert_eq!(b.len(), 13);
        assert_eq!(b[0], 96);
        let d = Nlri::RtConstraint(RtConstraint::Default);
        let mut all = b.clone();
        all.extend(enc(&d));
        // Origin AS only (32 bits) and a prefix of an RT (48 bits, trailing bits cleared).
        all.extend([32, 0, 0, 0xfd, 0xe8]);
        all.extend([44, 0, 0, 0xfd, 0xe8, 0x00, 0x0f]);
        let v = decode_list(Family::IPV4_RT_CONSTRAINT, &all, false).unwrap();
        assert_eq!(v[0], m);
        assert_eq!(v[1], d);
        assert_eq!(
            v[3],
            Nlri::RtConstraint(RtConstraint::Member {
                origin_as: 65000,
                route_target: [0, 0, 0, 0, 0, 0, 0, 0],
                rt_bits: 12
            })
        );
        assert_eq!(m.to_string(), "65000:rt:65000:100");
        for bad in [
            &[8u8, 1][..],
            &[97, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert!(decode_list(Family::IPV4_RT_CONSTRAINT, bad, false).is_err());
        }
    }

    #[test]
    fn sdwan_nlri_dispatch_refuses_what_the_decoder_refuses() {
        // A route type and half a length: no SD-WAN decoder accepts that.
        assert!(decode_list(Family::IPV4_SDWAN, &[0, 1, 0], false).is_err());
    }

    #[test]
    fn sdwan_nlri_dispatch_round_trip() {
        let n = SdWanNlri {
            port_local_id: 7,
            color: 100,
            node: "192.0.2.7".parse().unwrap(),
        };
        let mut b = Vec::new();
        n.encode(&mut b);
        assert!(SdWanNlri::decode(&b).is_ok());
        b.extend(b.clone());
        let v = decode_list(Family::IPV4_SDWAN, &b, false).unwrap();
        assert_eq!(v, [Nlri::SdWan(n), Nlri::SdWan(n)]);
        assert_eq!(Nlri::SdWan(n).encoded_len() * 2, b.len());
    }

    #[test]
    fn families() {
        assert_eq!(Family::IPV4_VPN.to_string(), "ipv4-vpn");
        assert_eq!(Family::new(25, 70).to_string(), "afi 25 safi 70");
        assert_eq!(Family::new(2, 132).layout(), Layout::Raw);
        assert!(decode_list(Family::new(25, 70), &[1], false).is_err());
    }

    #[test]
    fn labels() {
        let l = Label::new(100, true);
        assert_eq!(l.raw(), 0x641);
        assert_eq!(l.value(), 100);
        assert!(l.is_bottom());
        assert_eq!(Label::new(0x1f_ffff, false).value(), 0xf_ffff);
        assert_eq!(Label::WITHDRAW.value(), 0x8_0000);
    }
}
