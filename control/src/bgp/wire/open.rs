//! OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and the extended optional parameters
//! length of RFC 9072.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Version    |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |  Optional Parameters (Type 1, Length 1, Value)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! RFC 9072: Opt Parm Len 255 then a parameter type 255 announce the extended form:
//! | 255 | 255 | Extended Opt Parm Length (2) | parameters: Type 1, Length 2, Value |
//!
//! Capability (inside a Capabilities optional parameter, type 2):
//! | Capability Code (1) | Capability Length (1) | Capability Value |
//! ```
//!
//! A 4-octet AS goes in the capability; My AS then carries AS_TRANS (RFC 6793 §4.1).
//! Several capabilities may share one optional parameter or each have their own; the
//! grouping is kept so an OPEN re-encodes to its own bytes.
//!
//! Errors (RFC 4271 §6.2): version other than 4 is 2/1 with the version we speak as data;
//! My AS 0 (RFC 7607) 2/2; BGP Identifier 0 (RFC 6286) 2/3; hold time 1 or 2 s 2/6; an
//! optional parameter other than capabilities 2/4; a malformed parameter or known capability
//! 2/0. Whether a capability is acceptable (2/7), the peer the AS we expected, or the
//! identifier not ours, is the session's judgement.

use std::net::Ipv4Addr;

use super::nlri::Family;
use super::notification::{code, open_subcode};
use super::{DecodeError, EncodeError, Notification, Reader};

pub const BGP_VERSION: u8 = 4;
/// Optional parameter type of capabilities (RFC 5492 §4).
pub const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: the marker in Opt Parm Len and the first parameter type.
const PARAM_EXTENDED: u8 = 255;

/// Capability codes (IANA "Capability Codes").
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// Graceful restart (RFC 4724 §3).
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits) | Restart Time (12 bits)  |
/// +--------------------------------------------------+
/// | AFI (2) | SAFI (1) | Flags for Address Family (1)|  repeated
/// +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The 4 restart flag bits: [`GracefulRestart::RESTARTING`] (R) and
    /// [`GracefulRestart::NOTIFICATION`] (N, RFC 8538).
    pub flags: u8,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrFamily {
    pub family: Family,
    /// [`GrFamily::FORWARDING_PRESERVED`] (F) and reserved bits, as received.
    pub flags: u8,
}

impl GracefulRestart {
    pub const RESTARTING: u8 = 0x8;
    pub const NOTIFICATION: u8 = 0x4;
}

impl GrFamily {
    pub const FORWARDING_PRESERVED: u8 = 0x80;
}

/// ADD-PATH (RFC 7911 §4): per family, whether we receive (1), send (2) or both (3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPathFamily {
    pub family: Family,
    pub send_receive: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760 §8).
    Multiprotocol(Family),
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 6 (RFC 8654); understood, never acted on: messages stay under 4096 bytes.
    ExtendedMessage,
    /// Code 64 (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911). Parsed so it can be shown; this codec does not read path ids.
    AddPath(Vec<AddPathFamily>),
    /// Code 70 (RFC 7313).
    EnhancedRouteRefresh,
    /// Code 71 (RFC 9494), kept as bytes.
    LongLivedGracefulRestart(Vec<u8>),
    /// Code 73 (draft-walton-bgp-hostname-capability): informational. A value that does
    /// not parse as two length-prefixed UTF-8 strings is kept as [`Capability::Other`]
    /// rather than refused.
    Fqdn { hostname: String, domain: String },
    /// Anything else, as received.
    Other { code: u8, value: Vec<u8> },
}

impl Capability {
    pub fn code(&self) -> u8 {
        use cap_code::*;
        match self {
            Capability::Multiprotocol(_) => MULTIPROTOCOL,
            Capability::RouteRefresh => ROUTE_REFRESH,
            Capability::ExtendedMessage => EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => FOUR_OCTET_AS,
            Capability::AddPath(_) => ADD_PATH,
            Capability::EnhancedRouteRefresh => ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart(_) => LONG_LIVED_GRACEFUL_RESTART,
            Capability::Fqdn { .. } => FQDN,
            Capability::Other { code, .. } => *code,
        }
    }

    fn decode(code: u8, v: &[u8]) -> Result<Self, String> {
        use cap_code::*;
        let mut r = Reader::new(v);
        let malformed = || format!("capability {code} with {} bytes", v.len());
        Ok(match code {
            MULTIPROTOCOL => {
                // AFI, reserved, SAFI. The reserved byte is ignored (RFC 4760 §8).
                let [a0, a1, _, safi] = r
                    .array::<4>()
                    .filter(|_| v.len() == 4)
                    .ok_or_else(malformed)?;
                Capability::Multiprotocol(Family::new(u16::from_be_bytes([a0, a1]), safi))
            }
            ROUTE_REFRESH | EXTENDED_MESSAGE | ENHANCED_ROUTE_REFRESH => {
                if !v.is_empty() {
                    return Err(malformed());
                }
                match code {
                    ROUTE_REFRESH => Capability::RouteRefresh,
                    EXTENDED_MESSAGE => Capability::ExtendedMessage,
                    _ => Capability::EnhancedRouteRefresh,
                }
            }
            GRACEFUL_RESTART => {
                let head = r.u16().ok_or_else(malformed)?;
                if !r.remaining().is_multiple_of(4) {
                    return Err(malformed());
                }
                let mut families = Vec::new();
                while let (Some(afi), Some(safi), Some(flags)) = (r.u16(), r.u8(), r.u8()) {
                    families.push(GrFamily {
                        family: Family::new(afi, safi),
                        flags,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    flags: (head >> 12) as u8,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            FOUR_OCTET_AS => {
                Capability::FourOctetAs(r.u32().filter(|_| v.len() == 4).ok_or_else(malformed)?)
            }
            ADD_PATH => {
                if v.is_empty() || !v.len().is_multiple_of(4) {
                    return Err(malformed());
                }
                let mut families = Vec::new();
                while let (Some(afi), Some(safi), Some(send_receive)) = (r.u16(), r.u8(), r.u8()) {
                    families.push(AddPathFamily {
                        family: Family::new(afi, safi),
                        send_receive,
                    });
                }
                Capability::AddPath(families)
            }
            LONG_LIVED_GRACEFUL_RESTART => Capability::LongLivedGracefulRestart(v.to_vec()),
            FQDN => fqdn(v).unwrap_or_else(|| Capability::Other {
                code,
                value: v.to_vec(),
            }),
            _ => Capability::Other {
                code,
                value: v.to_vec(),
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[self.code(), 0]);
        match self {
            Capability::Multiprotocol(f) => {
                out.extend_from_slice(&f.afi.to_be_bytes());
                out.extend_from_slice(&[0, f.safi]);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::GracefulRestart(gr) => {
                let head = (u16::from(gr.flags & 0x0f) << 12) | (gr.restart_time & 0x0fff);
                out.extend_from_slice(&head.to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.family.afi.to_be_bytes());
                    out.extend_from_slice(&[f.family.safi, f.flags]);
                }
            }
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::AddPath(families) => {
                for f in families {
                    out.extend_from_slice(&f.family.afi.to_be_bytes());
                    out.extend_from_slice(&[f.family.safi, f.send_receive]);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for s in [hostname, domain] {
                    let len = u8::try_from(s.len())
                        .map_err(|_| EncodeError::Invalid("FQDN part longer than 255 bytes"))?;
                    out.push(len);
                    out.extend_from_slice(s.as_bytes());
                }
            }
            Capability::LongLivedGracefulRestart(value) | Capability::Other { value, .. } => {
                out.extend_from_slice(value)
            }
        }
        let len = out.len() - start - 2;
        let len8 = u8::try_from(len).map_err(|_| EncodeError::CapabilityTooLong {
            code: self.code(),
            len,
        })?;
        if let Some(l) = out.get_mut(start + 1) {
            *l = len8;
        }
        Ok(())
    }
}

fn fqdn(v: &[u8]) -> Option<Capability> {
    let mut r = Reader::new(v);
    let mut part = || {
        let n = r.u8()?;
        String::from_utf8(r.take(usize::from(n))?.to_vec()).ok()
    };
    let (hostname, domain) = (part()?, part()?);
    r.is_empty()
        .then_some(Capability::Fqdn { hostname, domain })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// 2-octet My AS; AS_TRANS when the real AS needs 4 octets (see [`Open::asn`]).
    pub my_as: u16,
    /// Seconds; 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// One entry per Capabilities optional parameter, in order.
    pub params: Vec<Vec<Capability>>,
    /// The optional parameters used the RFC 9072 extended encoding. Encoding uses it when
    /// set or when the parameters need it.
    pub extended_params: bool,
}

fn open_error(subcode: u8, data: Vec<u8>, reason: String) -> DecodeError {
    DecodeError::Open {
        reason,
        notification: Notification::new(code::OPEN_MESSAGE, subcode, data),
    }
}

impl Open {
    /// An OPEN for `asn`: AS_TRANS in My AS when it needs 4 octets, and the 4-octet AS
    /// capability added when `capabilities` lacks it. All capabilities go in one parameter.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn).unwrap_or(super::attributes::AS_TRANS),
            hold_time,
            bgp_id,
            params: vec![capabilities],
            extended_params: false,
        }
    }

    /// Every capability, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flatten()
    }

    /// The 4-octet AS capability's AS, if the peer sent it.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The speaker's AS: from the 4-octet AS capability, else My AS (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The families of the multiprotocol capabilities.
    pub fn families(&self) -> Vec<Family> {
        self.capabilities()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// The families, or IPv4 unicast for a speaker without multiprotocol capabilities.
    pub(crate) fn families_or_default(&self) -> Vec<Family> {
        let f = self.families();
        if f.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            f
        }
    }

    pub fn has(&self, code: u8) -> bool {
        self.capabilities().any(|c| c.code() == code)
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let short = || {
            open_error(
                open_subcode::UNSPECIFIC,
                Vec::new(),
                format!("{} bytes, fewer than 10", body.len()),
            )
        };
        let version = r.u8().ok_or_else(short)?;
        if version != BGP_VERSION {
            // The data is the largest version we speak, as 2 octets (RFC 4271 §6.2).
            return Err(open_error(
                open_subcode::UNSUPPORTED_VERSION,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
                format!("version {version}"),
            ));
        }
        let my_as = r.u16().ok_or_else(short)?;
        let hold_time = r.u16().ok_or_else(short)?;
        let bgp_id = r.ipv4().ok_or_else(short)?;
        let opt_len = r.u8().ok_or_else(short)?;
        if my_as == 0 {
            return Err(open_error(
                open_subcode::BAD_PEER_AS,
                Vec::new(),
                "My AS 0 (RFC 7607)".into(),
            ));
        }
        if matches!(hold_time, 1 | 2) {
            return Err(open_error(
                open_subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                format!("hold time {hold_time} s"),
            ));
        }
        if bgp_id.is_unspecified() {
            return Err(open_error(
                open_subcode::BAD_BGP_IDENTIFIER,
                Vec::new(),
                "BGP Identifier 0.0.0.0".into(),
            ));
        }
        let malformed = |reason: String| open_error(open_subcode::UNSPECIFIC, Vec::new(), reason);
        // RFC 9072 §2: 255 then a first parameter type of 255 means the extended form.
        let extended_params =
            opt_len == PARAM_EXTENDED && r.rest().first() == Some(&PARAM_EXTENDED);
        let params_bytes = if extended_params {
            r.u8();
            let len = r
                .u16()
                .ok_or_else(|| malformed("extended parameters length cut short".into()))?;
            r.take(usize::from(len))
        } else {
            r.take(usize::from(opt_len))
        }
        .ok_or_else(|| malformed("optional parameters run past the message".into()))?;
        if !r.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the optional parameters",
                r.remaining()
            )));
        }
        let mut p = Reader::new(params_bytes);
        let mut params = Vec::new();
        while !p.is_empty() {
            let t = p
                .u8()
                .ok_or_else(|| malformed("parameter cut short".into()))?;
            let len = if extended_params {
                p.u16()
            } else {
                p.u8().map(u16::from)
            }
            .ok_or_else(|| malformed("parameter length cut short".into()))?;
            let value = p
                .take(usize::from(len))
                .ok_or_else(|| malformed(format!("parameter {t} runs past the parameters")))?;
            if t != PARAM_CAPABILITIES {
                return Err(open_error(
                    open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    format!("optional parameter type {t}"),
                ));
            }
            let mut c = Reader::new(value);
            let mut caps = Vec::new();
            while !c.is_empty() {
                let (Some(code), Some(len)) = (c.u8(), c.u8()) else {
                    return Err(malformed("capability header cut short".into()));
                };
                let v = c.take(usize::from(len)).ok_or_else(|| {
                    malformed(format!("capability {code} runs past its parameter"))
                })?;
                caps.push(Capability::decode(code, v).map_err(malformed)?);
            }
            params.push(caps);
        }
        let open = Open {
            my_as,
            hold_time,
            bgp_id,
            params,
            extended_params,
        };
        if open.four_octet_as() == Some(0) {
            return Err(open_error(
                open_subcode::BAD_PEER_AS,
                Vec::new(),
                "4-octet AS capability with AS 0 (RFC 7607)".into(),
            ));
        }
        Ok(open)
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut params = Vec::new();
        let mut values = Vec::with_capacity(self.params.len());
        for caps in &self.params {
            let mut v = Vec::new();
            caps.iter().try_for_each(|c| c.encode(&mut v))?;
            values.push(v);
        }
        let extended = self.extended_params
            || values.iter().any(|v| v.len() > 255)
            || values.iter().map(|v| 2 + v.len()).sum::<usize>() > 255;
        for v in &values {
            params.push(PARAM_CAPABILITIES);
            if extended {
                let len = u16::try_from(v.len())
                    .map_err(|_| EncodeError::ParametersTooLong { len: v.len() })?;
                params.extend_from_slice(&len.to_be_bytes());
            } else {
                // Fits: checked above.
                params.push(u8::try_from(v.len()).unwrap_or(u8::MAX));
            }
            params.extend_from_slice(v);
        }
        out.push(BGP_VERSION);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        if extended {
            let len = u16::try_from(params.len())
                .map_err(|_| EncodeError::ParametersTooLong { len: params.len() })?;
            out.extend_from_slice(&[PARAM_EXTENDED, PARAM_EXTENDED]);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(u8::try_from(params.len()).unwrap_or(u8::MAX));
        }
        out.extend_from_slice(&params);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::{Message, Received, Session};

    fn ours() -> Open {
        Open::new(
            4_200_000_000,
            90,
            "10.0.0.1".parse().unwrap(),
            vec![
                Capability::Multiprotocol(Family::IPV4_VPN),
                Capability::Multiprotocol(Family::IPV6_VPN),
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::GracefulRestart(GracefulRestart {
                    flags: GracefulRestart::NOTIFICATION,
                    restart_time: 120,
                    families: vec![GrFamily {
                        family: Family::IPV4_VPN,
                        flags: GrFamily::FORWARDING_PRESERVED,
                    }],
                }),
                Capability::AddPath(vec![AddPathFamily {
                    family: Family::IPV4_VPN,
                    send_receive: 1,
                }]),
                Capability::Fqdn {
                    hostname: "edge1".into(),
                    domain: "example.net".into(),
                },
                Capability::LongLivedGracefulRestart(vec![0, 1, 128, 0x80, 0, 0, 60]),
                Capability::ExtendedMessage,
                Capability::Other {
                    code: 128,
                    value: vec![],
                },
            ],
        )
    }

    fn decode(bytes: &[u8]) -> Result<Open, DecodeError> {
        match Message::decode(bytes, &Session::all_families(true))? {
            Received::Open(o) => Ok(o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trip_with_as_trans() {
        let o = ours();
        assert_eq!(o.my_as, 23456);
        assert_eq!(o.asn(), 4_200_000_000);
        let b = Message::Open(o.clone())
            .encode(&Session::all_families(true))
            .unwrap();
        assert_eq!(&b[19..22], &[4, 0x5b, 0xa0]);
        assert_eq!(decode(&b).unwrap(), o);
        assert_eq!(o.families(), [Family::IPV4_VPN, Family::IPV6_VPN]);
        assert!(o.has(cap_code::ENHANCED_ROUTE_REFRESH));
    }

    #[test]
    fn one_capability_per_parameter_is_kept() {
        let mut o = ours();
        o.params = o.params.concat().into_iter().map(|c| vec![c]).collect();
        let b = Message::Open(o.clone())
            .encode(&Session::all_families(true))
            .unwrap();
        assert_eq!(decode(&b).unwrap(), o);
    }

    #[test]
    fn graceful_restart_bits() {
        let v = [0x80 | 0x01, 0x2c, 0, 1, 128, 0x80, 0, 2, 1, 0];
        let c = Capability::decode(cap_code::GRACEFUL_RESTART, &v).unwrap();
        let Capability::GracefulRestart(gr) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(gr.flags, GracefulRestart::RESTARTING);
        assert_eq!(gr.restart_time, 300);
        assert_eq!(gr.families.len(), 2);
        assert_eq!(gr.families[0].flags, GrFamily::FORWARDING_PRESERVED);
        let mut b = Vec::new();
        c.encode(&mut b).unwrap();
        assert_eq!(&b[2..], &v);
        assert!(Capability::decode(cap_code::GRACEFUL_RESTART, &v[..5]).is_err());
    }

    #[test]
    fn extended_parameters_rfc_9072() {
        let mut o = ours();
        // Enough capabilities for more than 255 bytes of parameters.
        o.params[0].extend((0..60).map(|i| Capability::Multiprotocol(Family::new(1, i))));
        let b = Message::Open(o.clone())
            .encode(&Session::all_families(true))
            .unwrap();
        assert_eq!(&b[28..30], &[255, 255]);
        let mut want = o.clone();
        want.extended_params = true;
        assert_eq!(decode(&b).unwrap(), want);
        // The extended form on short parameters survives a round trip too.
        let mut short = ours();
        short.extended_params = true;
        let b = Message::Open(short.clone())
            .encode(&Session::all_families(true))
            .unwrap();
        assert_eq!(decode(&b).unwrap(), short);
    }

    fn open_bytes(version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
        let mut body = vec![version];
        body.extend_from_slice(&my_as.to_be_bytes());
        body.extend_from_slice(&hold.to_be_bytes());
        body.extend_from_slice(&id);
        body.push(params.len() as u8);
        body.extend_from_slice(params);
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(1);
        m.extend(body);
        m
    }

    #[test]
    fn errors_map_to_open_notifications() {
        let id = [10, 0, 0, 1];
        let case = |b: Vec<u8>| {
            let e = decode(&b).unwrap_err();
            let n = e.notification().clone();
            (n.code, n.subcode, n.data)
        };
        assert_eq!(case(open_bytes(3, 65000, 90, id, &[])), (2, 1, vec![0, 4]));
        assert_eq!(case(open_bytes(4, 0, 90, id, &[])), (2, 2, vec![]));
        assert_eq!(case(open_bytes(4, 65000, 90, [0; 4], &[])), (2, 3, vec![]));
        assert_eq!(case(open_bytes(4, 65000, 1, id, &[])), (2, 6, vec![]));
        assert_eq!(case(open_bytes(4, 65000, 2, id, &[])), (2, 6, vec![]));
        // Authentication parameter (type 1, deprecated).
        assert_eq!(
            case(open_bytes(4, 65000, 90, id, &[1, 1, 0])),
            (2, 4, vec![])
        );
        // A capability that runs past its parameter, a malformed known one, AS 0 in it.
        assert_eq!(
            case(open_bytes(4, 65000, 90, id, &[2, 2, 1, 4])),
            (2, 0, vec![])
        );
        assert_eq!(
            case(open_bytes(4, 65000, 90, id, &[2, 4, 65, 2, 0, 1])),
            (2, 0, vec![])
        );
        assert_eq!(
            case(open_bytes(4, 65000, 90, id, &[2, 6, 65, 4, 0, 0, 0, 0])),
            (2, 2, vec![])
        );
        // A parameter that runs past the message.
        let mut b = open_bytes(4, 65000, 90, id, &[2, 0]);
        b[28] = 5;
        assert_eq!(case(b).1, 0);
        // Hold time 0 and 3 are fine; no parameters at all is fine.
        assert!(decode(&open_bytes(4, 65000, 0, id, &[])).is_ok());
        assert!(decode(&open_bytes(4, 65000, 3, id, &[])).is_ok());
    }

    #[test]
    fn odd_fqdn_is_kept_raw() {
        let c = Capability::decode(cap_code::FQDN, &[5, b'a']).unwrap();
        assert_eq!(
            c,
            Capability::Other {
                code: 73,
                value: vec![5, b'a']
            }
        );
        let c = Capability::decode(cap_code::FQDN, &[1, b'a', 0]).unwrap();
        assert_eq!(
            c,
            Capability::Fqdn {
                hostname: "a".into(),
                domain: String::new()
            }
        );
    }
}
