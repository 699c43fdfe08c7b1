//! Path attributes (RFC 4271 §4.3, §5): the header, the typed values this codec reads, and
//! what each one's errors cost under RFC 7606 §7 (the UPDATE decoder in `update` applies it).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |O|T|P|E|0 0 0 0|  Type Code    | Length (1 octet, or 2 if E)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Value (Length octets)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!   O optional, T transitive, P partial, E extended length
//!
//! AS_PATH / AS4_PATH segment:
//! +---------------+---------------+-----------------------------------+
//! | Segment type  | Segment length| AS numbers (2 or 4 octets each)   |
//! +---------------+---------------+-----------------------------------+
//!   1 AS_SET, 2 AS_SEQUENCE, 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET
//! ```
//!
//! A [`PathAttribute`] keeps the flags octet as received (the E bit included, even on a short
//! value, and the unused low bits), so an attribute re-encodes to its own bytes. An attribute
//! this codec does not know is kept whole ([`AttrValue::Other`]) and passed on.
//!
//! AS numbers are 2 or 4 octets in AS_PATH and AGGREGATOR depending on the session
//! (RFC 6793 §4); AS4_PATH and AS4_AGGREGATOR always carry 4. Encoding for a 2-octet session
//! writes AS_TRANS (23456) for numbers that do not fit; [`AsPath::split_for_two_octet`] and
//! [`AsPath::merge_as4`] do the RFC 6793 §4.2 translation in each direction.

use std::fmt;
use std::net::Ipv4Addr;

use super::extcomm::ExtCommunity;
use super::mp::{MpReach, MpUnreach};
use super::notification::update_subcode as sub;
use super::tunnel_encap::TunnelEncap;
use super::update::Handling;
use super::{EncodeError, Reader, Session};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const TUNNEL_ENCAPSULATION: u8 = 23;
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// The 2-octet stand-in for a 4-octet AS (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// The IANA name of an attribute type, for logs.
pub fn type_name(t: u8) -> &'static str {
    use attr_type::*;
    match t {
        ORIGIN => "ORIGIN",
        AS_PATH => "AS_PATH",
        NEXT_HOP => "NEXT_HOP",
        MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
        LOCAL_PREF => "LOCAL_PREF",
        ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        AGGREGATOR => "AGGREGATOR",
        COMMUNITIES => "COMMUNITIES",
        ORIGINATOR_ID => "ORIGINATOR_ID",
        CLUSTER_LIST => "CLUSTER_LIST",
        MP_REACH_NLRI => "MP_REACH_NLRI",
        MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
        AS4_PATH => "AS4_PATH",
        AS4_AGGREGATOR => "AS4_AGGREGATOR",
        TUNNEL_ENCAPSULATION => "TUNNEL_ENCAPSULATION",
        LARGE_COMMUNITIES => "LARGE_COMMUNITY",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    /// RFC 5065.
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentType {
    fn from_u8(t: u8) -> Option<Self> {
        Some(match t {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    fn is_confed(self) -> bool {
        matches!(self, SegmentType::ConfedSequence | SegmentType::ConfedSet)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// AS_PATH or AS4_PATH: segments in order, AS numbers widened to 32 bits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A community (RFC 1997), shown as `high:low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xffff_0000);
    /// RFC 9494.
    pub const LLGR_STALE: Community = Community(0xffff_0006);
    pub const NO_LLGR: Community = Community(0xffff_0007);
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// A large community (RFC 8092), shown as `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global_admin, self.local1, self.local2)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(Vec<Community>),
    /// RFC 4456.
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    ExtCommunities(Vec<ExtCommunity>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    TunnelEncap(TunnelEncap),
    LargeCommunities(Vec<LargeCommunity>),
    /// Any other attribute, kept whole to be passed on (with the Partial bit set by whoever
    /// passes on an optional transitive one, RFC 4271 §5).
    Other {
        type_code: u8,
        value: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathAttribute {
    /// As received (or [`AttrValue::standard_flags`]); the E bit is also set on encode when
    /// the value needs two length octets.
    pub flags: u8,
    pub value: AttrValue,
}

impl AttrValue {
    pub fn type_code(&self) -> u8 {
        use attr_type::*;
        match self {
            AttrValue::Origin(_) => ORIGIN,
            AttrValue::AsPath(_) => AS_PATH,
            AttrValue::NextHop(_) => NEXT_HOP,
            AttrValue::Med(_) => MULTI_EXIT_DISC,
            AttrValue::LocalPref(_) => LOCAL_PREF,
            AttrValue::AtomicAggregate => ATOMIC_AGGREGATE,
            AttrValue::Aggregator(_) => AGGREGATOR,
            AttrValue::Communities(_) => COMMUNITIES,
            AttrValue::OriginatorId(_) => ORIGINATOR_ID,
            AttrValue::ClusterList(_) => CLUSTER_LIST,
            AttrValue::MpReach(_) => MP_REACH_NLRI,
            AttrValue::MpUnreach(_) => MP_UNREACH_NLRI,
            AttrValue::ExtCommunities(_) => EXTENDED_COMMUNITIES,
            AttrValue::As4Path(_) => AS4_PATH,
            AttrValue::As4Aggregator(_) => AS4_AGGREGATOR,
            AttrValue::TunnelEncap(_) => TUNNEL_ENCAPSULATION,
            AttrValue::LargeCommunities(_) => LARGE_COMMUNITIES,
            AttrValue::Other { type_code, .. } => *type_code,
        }
    }

    /// The flags the attribute's RFC gives it (optional transitive for unknown ones).
    pub fn standard_flags(&self) -> u8 {
        match expected_flags(self.type_code()) {
            Some((false, _)) => flags::TRANSITIVE,
            Some((true, false)) => flags::OPTIONAL,
            Some((true, true)) | None => flags::OPTIONAL | flags::TRANSITIVE,
        }
    }

    fn encode(&self, session: &Session, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            AttrValue::Origin(o) => out.push(*o as u8),
            AttrValue::AsPath(p) => p.encode(session.four_octet_as, out),
            AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => {
                out.extend_from_slice(&a.octets())
            }
            AttrValue::Med(v) | AttrValue::LocalPref(v) => out.extend_from_slice(&v.to_be_bytes()),
            AttrValue::AtomicAggregate => {}
            AttrValue::Aggregator(a) => {
                if session.four_octet_as {
                    out.extend_from_slice(&a.asn.to_be_bytes());
                } else {
                    out.extend_from_slice(&two_octet(a.asn).to_be_bytes());
                }
                out.extend_from_slice(&a.address.octets());
            }
            AttrValue::Communities(c) => c
                .iter()
                .for_each(|c| out.extend_from_slice(&c.0.to_be_bytes())),
            AttrValue::ClusterList(ids) => {
                ids.iter().for_each(|a| out.extend_from_slice(&a.octets()))
            }
            AttrValue::MpReach(m) => m.encode_value(out)?,
            AttrValue::MpUnreach(m) => m.encode_value(out)?,
            AttrValue::ExtCommunities(c) => {
                c.iter().for_each(|c| out.extend_from_slice(&c.to_bytes()))
            }
            AttrValue::As4Path(p) => p.encode(true, out),
            AttrValue::As4Aggregator(a) => {
                out.extend_from_slice(&a.asn.to_be_bytes());
                out.extend_from_slice(&a.address.octets());
            }
            AttrValue::TunnelEncap(t) => t.encode(out),
            AttrValue::LargeCommunities(c) => c.iter().for_each(|c| {
                out.extend_from_slice(&c.global_admin.to_be_bytes());
                out.extend_from_slice(&c.local1.to_be_bytes());
                out.extend_from_slice(&c.local2.to_be_bytes());
            }),
            AttrValue::Other { value, .. } => out.extend_from_slice(value),
        }
        Ok(())
    }
}

impl PathAttribute {
    /// The attribute with the flags its RFC gives it.
    pub fn new(value: AttrValue) -> Self {
        PathAttribute {
            flags: value.standard_flags(),
            value,
        }
    }

    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    /// Appends flags, type, length and value. The E bit is kept when set and added when the
    /// value is longer than 255 bytes.
    pub fn encode(&self, session: &Session, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[self.flags, self.type_code(), 0, 0]);
        let value_start = out.len();
        self.value.encode(session, out)?;
        let len = out.len() - value_start;
        let type_code = self.type_code();
        let len16 =
            u16::try_from(len).map_err(|_| EncodeError::AttributeTooLong { type_code, len })?;
        match u8::try_from(len) {
            Ok(len8) if self.flags & flags::EXTENDED_LENGTH == 0 => {
                // One length octet: drop the placeholder's second byte.
                out.remove(value_start - 1);
                if let Some(l) = out.get_mut(start + 2) {
                    *l = len8;
                }
            }
            _ => {
                if let Some(f) = out.get_mut(start) {
                    *f |= flags::EXTENDED_LENGTH;
                }
                if let Some(l) = out.get_mut(start + 2..start + 4) {
                    l.copy_from_slice(&len16.to_be_bytes());
                }
            }
        }
        Ok(())
    }

    /// Bytes on the wire, header included.
    pub fn encoded_len(&self, session: &Session) -> Result<usize, EncodeError> {
        let mut tmp = Vec::new();
        self.encode(session, &mut tmp)?;
        Ok(tmp.len())
    }
}

/// What decoding one attribute found wrong, and what RFC 7606 (or the attribute's own RFC)
/// says it costs. `subcode` is the RFC 4271 §6.3 UPDATE error subcode, for when the error
/// ends in a NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub handling: Handling,
    pub subcode: u8,
    pub reason: String,
}

fn problem(handling: Handling, subcode: u8, reason: impl Into<String>) -> Problem {
    Problem {
        handling,
        subcode,
        reason: reason.into(),
    }
}

/// A decoded value and, when part of it was dropped (AS_CONFED segments in AS4_PATH), why.
pub(crate) struct Decoded {
    pub value: AttrValue,
    pub note: Option<String>,
}

/// The Optional and Transitive bits the RFCs fix for the attributes this codec knows.
pub(crate) fn expected_flags(t: u8) -> Option<(bool, bool)> {
    use attr_type::*;
    match t {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some((false, true)),
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            Some((true, false))
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | TUNNEL_ENCAPSULATION | LARGE_COMMUNITIES => Some((true, true)),
        _ => None,
    }
}

/// Checks the flags of a known attribute: the O and T bits as its RFC fixes them (RFC 7606
/// §3 c), and the P bit clear where RFC 4271 §4.3 requires it (well-known and optional
/// non-transitive attributes). `None` when they are right or the type is unknown.
pub(crate) fn flags_problem(t: u8, f: u8) -> Option<Problem> {
    use attr_type::*;
    let (optional, transitive) = expected_flags(t)?;
    let o = f & flags::OPTIONAL != 0;
    let tr = f & flags::TRANSITIVE != 0;
    let p = f & flags::PARTIAL != 0;
    let reason = if o != optional || tr != transitive {
        format!(
            "flags 0x{f:02x}, but {} is {}",
            type_name(t),
            match (optional, transitive) {
                (false, _) => "well-known",
                (true, false) => "optional non-transitive",
                (true, true) => "optional transitive",
            }
        )
    } else if p && !(optional && transitive) {
        format!("flags 0x{f:02x}: Partial bit on {}", type_name(t))
    } else {
        return None;
    };
    // What a flags error costs, attribute by attribute.
    let handling = match t {
        // RFC 7606 §5.3: an MP attribute with flags other than RFC 4760's is incorrect, and
        // its NLRI cannot be trusted.
        MP_REACH_NLRI | MP_UNREACH_NLRI => Handling::SessionReset,
        // RFC 7606 §3 f: cases that used to reset the session for these are discards.
        ATOMIC_AGGREGATE | AGGREGATOR => Handling::AttributeDiscard,
        // RFC 6793 §6: a malformed AS4_* attribute is discarded.
        AS4_PATH | AS4_AGGREGATOR => Handling::AttributeDiscard,
        // RFC 7606 §3 c, §3 e; RFC 9012 §13 for a non-transitive Tunnel Encapsulation.
        _ => Handling::TreatAsWithdraw,
    };
    Some(problem(handling, sub::ATTRIBUTE_FLAGS, reason))
}

/// Decodes the value of one attribute, applying RFC 7606 §7 (and RFC 6793 §6, RFC 7607,
/// RFC 8092 §6, RFC 9012 §13) to say what an error costs.
pub(crate) fn decode_value(t: u8, value: &[u8], session: &Session) -> Result<Decoded, Problem> {
    use attr_type::*;
    use Handling::*;
    let len = value.len();
    let length = |handling, want: &str| {
        problem(
            handling,
            sub::ATTRIBUTE_LENGTH,
            format!("{} of {len} bytes, expected {want}", type_name(t)),
        )
    };
    let mut r = Reader::new(value);
    let v =
        match t {
            // RFC 7606 §7.1.
            ORIGIN => match value {
                [0] => AttrValue::Origin(Origin::Igp),
                [1] => AttrValue::Origin(Origin::Egp),
                [2] => AttrValue::Origin(Origin::Incomplete),
                [o] => {
                    return Err(problem(
                        TreatAsWithdraw,
                        sub::INVALID_ORIGIN,
                        format!("undefined ORIGIN {o}"),
                    ))
                }
                _ => return Err(length(TreatAsWithdraw, "1")),
            },
            // RFC 7606 §7.2; AS 0 is malformed too (RFC 7607 §2).
            AS_PATH => {
                let path = AsPath::decode(value, session.four_octet_as)
                    .map_err(|e| problem(TreatAsWithdraw, sub::MALFORMED_AS_PATH, e))?;
                if path.contains_as0() {
                    return Err(problem(
                        TreatAsWithdraw,
                        sub::MALFORMED_AS_PATH,
                        "AS_PATH contains AS 0 (RFC 7607)",
                    ));
                }
                AttrValue::AsPath(path)
            }
            // RFC 7606 §7.3. Whether the address is usable (not ours, not martian) is the RIB's
            // check: it knows the local addresses.
            NEXT_HOP => AttrValue::NextHop(
                r.ipv4()
                    .filter(|_| len == 4)
                    .ok_or_else(|| length(TreatAsWithdraw, "4"))?,
            ),
            // RFC 7606 §7.4, §7.5. LOCAL_PREF from an external peer is to be discarded (§7.5):
            // the session knows which peers are external, the codec does not.
            MULTI_EXIT_DISC | LOCAL_PREF => {
                let v = r
                    .u32()
                    .filter(|_| len == 4)
                    .ok_or_else(|| length(TreatAsWithdraw, "4"))?;
                if t == MULTI_EXIT_DISC {
                    AttrValue::Med(v)
                } else {
                    AttrValue::LocalPref(v)
                }
            }
            // RFC 7606 §7.6.
            ATOMIC_AGGREGATE if len == 0 => AttrValue::AtomicAggregate,
            ATOMIC_AGGREGATE => return Err(length(AttributeDiscard, "0")),
            // RFC 7606 §7.7: 6 bytes, or 8 when both sides speak 4-octet AS; AS 0 (RFC 7607).
            AGGREGATOR => {
                let want = if session.four_octet_as { 8 } else { 6 };
                if len != want {
                    return Err(length(AttributeDiscard, &want.to_string()));
                }
                let asn = if session.four_octet_as {
                    r.u32()
                } else {
                    r.u16().map(u32::from)
                };
                let a = asn
                    .zip(r.ipv4())
                    .map(|(asn, address)| Aggregator { asn, address })
                    .ok_or_else(|| length(AttributeDiscard, &want.to_string()))?;
                if a.asn == 0 {
                    return Err(problem(
                        AttributeDiscard,
                        sub::OPTIONAL_ATTRIBUTE,
                        "AGGREGATOR with AS 0 (RFC 7607)",
                    ));
                }
                AttrValue::Aggregator(a)
            }
            // RFC 7606 §7.8.
            COMMUNITIES => AttrValue::Communities(
                chunks::<4>(value)
                    .ok_or_else(|| length(TreatAsWithdraw, "a non-zero multiple of 4"))?
                    .map(|c| Community(u32::from_be_bytes(c)))
                    .collect(),
            ),
            // RFC 7606 §7.9. From an external peer it is to be discarded: the session's call.
            ORIGINATOR_ID => AttrValue::OriginatorId(
                r.ipv4()
                    .filter(|_| len == 4)
                    .ok_or_else(|| length(TreatAsWithdraw, "4"))?,
            ),
            // RFC 7606 §7.10.
            CLUSTER_LIST => AttrValue::ClusterList(
                chunks::<4>(value)
                    .ok_or_else(|| length(TreatAsWithdraw, "a non-zero multiple of 4"))?
                    .map(Ipv4Addr::from)
                    .collect(),
            ),
            // RFC 7606 §7.11, §5.3: no way to locate the NLRI, so the session resets.
            MP_REACH_NLRI => AttrValue::MpReach(
                MpReach::decode(value, session)
                    .map_err(|e| problem(SessionReset, sub::OPTIONAL_ATTRIBUTE, e))?,
            ),
            MP_UNREACH_NLRI => AttrValue::MpUnreach(
                MpUnreach::decode(value, session)
                    .map_err(|e| problem(SessionReset, sub::OPTIONAL_ATTRIBUTE, e))?,
            ),
            // RFC 7606 §7.14.
            EXTENDED_COMMUNITIES => AttrValue::ExtCommunities(
                chunks::<8>(value)
                    .ok_or_else(|| length(TreatAsWithdraw, "a non-zero multiple of 8"))?
                    .map(ExtCommunity::from_bytes)
                    .collect(),
            ),
            // RFC 6793 §6: not expected between 4-octet speakers; malformed ones are discarded.
            AS4_PATH | AS4_AGGREGATOR if session.four_octet_as => {
                return Err(problem(
                    AttributeDiscard,
                    sub::OPTIONAL_ATTRIBUTE,
                    format!(
                        "{} from a peer that speaks 4-octet AS (RFC 6793 §6)",
                        type_name(t)
                    ),
                ))
            }
            AS4_PATH => {
                let discard = |e: String| problem(AttributeDiscard, sub::OPTIONAL_ATTRIBUTE, e);
                if len == 0 {
                    return Err(discard("empty AS4_PATH".into()));
                }
                let mut path = AsPath::decode(value, true).map_err(discard)?;
                if path.contains_as0() {
                    return Err(discard("AS4_PATH contains AS 0 (RFC 7607)".into()));
                }
                let before = path.segments.len();
                path.segments.retain(|s| !s.kind.is_confed());
                if path.segments.is_empty() {
                    // Nothing left: an empty AS4_PATH would itself be malformed.
                    return Err(discard(
                        "AS4_PATH of AS_CONFED segments only (RFC 6793 §6)".into(),
                    ));
                }
                let note = (path.segments.len() != before)
                    .then(|| "AS_CONFED segments removed from AS4_PATH (RFC 6793 §6)".to_owned());
                return Ok(Decoded {
                    value: AttrValue::As4Path(path),
                    note,
                });
            }
            AS4_AGGREGATOR => {
                if len != 8 {
                    return Err(length(AttributeDiscard, "8"));
                }
                let a = r
                    .u32()
                    .zip(r.ipv4())
                    .map(|(asn, address)| Aggregator { asn, address })
                    .ok_or_else(|| length(AttributeDiscard, "8"))?;
                if a.asn == 0 {
                    return Err(problem(
                        AttributeDiscard,
                        sub::OPTIONAL_ATTRIBUTE,
                        "AS4_AGGREGATOR with AS 0 (RFC 7607)",
                    ));
                }
                AttrValue::As4Aggregator(a)
            }
            // RFC 9012 §13: a Tunnel Encapsulation attribute that does not parse (no valid TLV, a
            // TLV whose sub-TLVs overrun it) is treat-as-withdraw. A zero length is a syntax
            // error for any attribute but AS_PATH and ATOMIC_AGGREGATE (RFC 7606 §4).
            TUNNEL_ENCAPSULATION => {
                if len == 0 {
                    return Err(length(TreatAsWithdraw, "at least one tunnel TLV"));
                }
                AttrValue::TunnelEncap(TunnelEncap::decode(value).map_err(|e| {
                    problem(TreatAsWithdraw, sub::OPTIONAL_ATTRIBUTE, e.to_string())
                })?)
            }
            // RFC 8092 §6.
            LARGE_COMMUNITIES => AttrValue::LargeCommunities(
                chunks::<12>(value)
                    .ok_or_else(|| length(TreatAsWithdraw, "a non-zero multiple of 12"))?
                    .map(|c| {
                        let [a, b, c, d, e, f, g, h, i, j, k, l] = c;
                        LargeCommunity {
                            global_admin: u32::from_be_bytes([a, b, c, d]),
                            local1: u32::from_be_bytes([e, f, g, h]),
                            local2: u32::from_be_bytes([i, j, k, l]),
                        }
                    })
                    .collect(),
            ),
            _ => AttrValue::Other {
                type_code: t,
                value: value.to_vec(),
            },
        };
    Ok(Decoded {
        value: v,
        note: None,
    })
}

/// `N`-byte items of a value that must hold a non-zero whole number of them.
fn chunks<const N: usize>(value: &[u8]) -> Option<impl Iterator<Item = [u8; N]> + '_> {
    (!value.is_empty() && value.len().is_multiple_of(N)).then(|| {
        value
            .chunks_exact(N)
            .filter_map(|c| <[u8; N]>::try_from(c).ok())
    })
}

fn two_octet(asn: u32) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS)
}

impl AsPath {
    /// One AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> Self {
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// RFC 4271 §4.3 and RFC 7606 §7.2: an unknown segment type, a segment that overruns
    /// the attribute, a lone byte after the last segment, or an empty segment is malformed.
    fn decode(b: &[u8], four_octet: bool) -> Result<Self, String> {
        let width = if four_octet { 4 } else { 2 };
        let mut r = Reader::new(b);
        let mut segments = Vec::new();
        while !r.is_empty() {
            let (Some(t), Some(n)) = (r.u8(), r.u8()) else {
                return Err("one byte left after the last segment".into());
            };
            let kind =
                SegmentType::from_u8(t).ok_or_else(|| format!("unknown segment type {t}"))?;
            if n == 0 {
                return Err("segment of length 0".into());
            }
            let bytes = r.take(usize::from(n) * width).ok_or_else(|| {
                format!("segment of {n} AS numbers overruns the attribute ({width}-octet AS)")
            })?;
            let asns = if four_octet {
                bytes
                    .chunks_exact(4)
                    .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
                    .collect()
            } else {
                bytes
                    .chunks_exact(2)
                    .filter_map(|c| c.try_into().ok().map(|c| u32::from(u16::from_be_bytes(c))))
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
        }
        Ok(AsPath { segments })
    }

    /// Writes the segments with 4- or 2-octet AS numbers (AS_TRANS for those that do not fit
    /// in 2). Segments of more than 255 AS numbers are split; empty ones are left out.
    fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            for part in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                out.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
                for &asn in part {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        out.extend_from_slice(&two_octet(asn).to_be_bytes());
                    }
                }
            }
        }
    }

    fn contains_as0(&self) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&0))
    }

    /// The length used by best-path selection (RFC 4271 §9.1.2.2): a set counts one, the
    /// confederation segments nothing (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The AS that sent the route: the first of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        self.segments
            .first()
            .filter(|s| s.kind == SegmentType::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    /// For a 2-octet peer (RFC 6793 §4.2.2): the AS_PATH with AS_TRANS standing for AS
    /// numbers above 65535, and the AS4_PATH to send beside it when there were any (without
    /// confederation segments).
    pub fn split_for_two_octet(&self) -> (AsPath, Option<AsPath>) {
        let two = AsPath {
            segments: self
                .segments
                .iter()
                .map(|s| AsSegment {
                    kind: s.kind,
                    asns: s.asns.iter().map(|&a| u32::from(two_octet(a))).collect(),
                })
                .collect(),
        };
        let needs_as4 = self
            .segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)));
        let as4 = needs_as4.then(|| AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned()
                .collect(),
        });
        (two, as4)
    }

    /// The path a 2-octet peer meant (RFC 6793 §4.2.3): this AS_PATH's leading AS numbers,
    /// as many as it has more than `as4`, then `as4`. When `as4` is the longer, it is
    /// ignored. Leading confederation segments, and those among the ones taken, are kept.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let (total, total4) = (self.path_len(), as4.path_len());
        if total < total4 {
            return self.clone();
        }
        let mut need = total - total4;
        let mut out: Vec<AsSegment> = Vec::new();
        for seg in &self.segments {
            match seg.kind {
                SegmentType::ConfedSequence | SegmentType::ConfedSet => {
                    let leading = out.iter().all(|s| s.kind.is_confed());
                    if leading || need > 0 {
                        out.push(seg.clone());
                    }
                }
                _ if need == 0 => break,
                SegmentType::Set => {
                    out.push(seg.clone());
                    need -= 1;
                }
                SegmentType::Sequence => {
                    let take = need.min(seg.asns.len());
                    out.push(AsSegment {
                        kind: SegmentType::Sequence,
                        asns: seg.asns.iter().take(take).copied().collect(),
                    });
                    need -= take;
                }
            }
        }
        for seg in &as4.segments {
            match out.last_mut() {
                Some(last)
                    if last.kind == SegmentType::Sequence && seg.kind == SegmentType::Sequence =>
                {
                    last.asns.extend_from_slice(&seg.asns)
                }
                _ => out.push(seg.clone()),
            }
        }
        AsPath { segments: out }
    }
}

impl fmt::Display for AsPath {
    /// `65000 65001 {1,2} (3 4) [5,6]`: sequences plain, sets in braces, confederation
    /// sequences in parentheses and sets in brackets, as FRR shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .segments
            .iter()
            .map(|s| {
                let sep = match s.kind {
                    SegmentType::Set | SegmentType::ConfedSet => ",",
                    _ => " ",
                };
                let inner = s
                    .asns
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(sep);
                match s.kind {
                    SegmentType::Sequence => inner,
                    SegmentType::Set => format!("{{{inner}}}"),
                    SegmentType::ConfedSequence => format!("({inner})"),
                    SegmentType::ConfedSet => format!("[{inner}]"),
                }
            })
            .collect();
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s4() -> Session {
        Session::all_families(true)
    }

    fn s2() -> Session {
        Session::all_families(false)
    }

    fn round_trip(attr: PathAttribute, session: &Session) -> Vec<u8> {
        let mut b = Vec::new();
        attr.encode(session, &mut b).unwrap();
        assert_eq!(b.len(), attr.encoded_len(session).unwrap());
        let hdr = if b[0] & flags::EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        assert_eq!(b[0], attr.flags | (b[0] & flags::EXTENDED_LENGTH));
        let got = decode_value(b[1], &b[hdr..], session).ok().unwrap().value;
        assert_eq!(got, attr.value);
        b
    }

    #[test]
    fn every_typed_attribute_round_trips() {
        let s = s4();
        let rt: ExtCommunity = "65000:100"
            .parse::<crate::bgp::wire::extcomm::RouteTarget>()
            .unwrap()
            .into();
        for v in [
            AttrValue::Origin(Origin::Incomplete),
            AttrValue::AsPath(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentType::ConfedSequence,
                        asns: vec![64512],
                    },
                    AsSegment {
                        kind: SegmentType::Sequence,
                        asns: vec![65000, 4_200_000_000],
                    },
                    AsSegment {
                        kind: SegmentType::Set,
                        asns: vec![1, 2],
                    },
                ],
            }),
            AttrValue::AsPath(AsPath::default()),
            AttrValue::NextHop("192.0.2.1".parse().unwrap()),
            AttrValue::Med(10),
            AttrValue::LocalPref(200),
            AttrValue::AtomicAggregate,
            AttrValue::Aggregator(Aggregator {
                asn: 4_200_000_000,
                address: "10.0.0.1".parse().unwrap(),
            }),
            AttrValue::Communities(vec![Community(65000 << 16 | 1), Community::NO_EXPORT]),
            AttrValue::OriginatorId("10.0.0.9".parse().unwrap()),
            AttrValue::ClusterList(vec![
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
            ]),
            AttrValue::ExtCommunities(vec![rt, ExtCommunity::color(7)]),
            // VXLAN with a Tunnel Egress Endpoint sub-TLV (type 6: reserved, AFI 1, 192.0.2.1).
            AttrValue::TunnelEncap(
                TunnelEncap::decode(&[0, 8, 0, 12, 6, 10, 0, 0, 0, 0, 0, 1, 192, 0, 2, 1]).unwrap(),
            ),
            AttrValue::LargeCommunities(vec![LargeCommunity {
                global_admin: 4_200_000_000,
                local1: 1,
                local2: 2,
            }]),
            AttrValue::Other {
                type_code: 99,
                value: vec![1, 2, 3],
            },
        ] {
            round_trip(PathAttribute::new(v), &s);
        }
        // AS4_* only between a 4-octet and a 2-octet speaker.
        let s = s2();
        round_trip(
            PathAttribute::new(AttrValue::As4Path(AsPath::sequence(vec![4_200_000_000]))),
            &s,
        );
        round_trip(
            PathAttribute::new(AttrValue::As4Aggregator(Aggregator {
                asn: 4_200_000_000,
                address: "10.0.0.1".parse().unwrap(),
            })),
            &s,
        );
        round_trip(
            PathAttribute::new(AttrValue::Aggregator(Aggregator {
                asn: 65000,
                address: "10.0.0.1".parse().unwrap(),
            })),
            &s,
        );
    }

    #[test]
    fn flags_are_kept_and_the_extended_length_bit_too() {
        let s = s4();
        // MED with the E bit although 4 bytes fit in one length octet, plus a stray low bit.
        let attr = PathAttribute {
            flags: flags::OPTIONAL | flags::EXTENDED_LENGTH | 0x01,
            value: AttrValue::Med(5),
        };
        let b = round_trip(attr, &s);
        assert_eq!(b, [0x91, 4, 0, 4, 0, 0, 0, 5]);
        // A long value gets the E bit though the flags lacked it.
        let long = PathAttribute::new(AttrValue::Communities(vec![Community(1); 100]));
        let b = round_trip(long, &s);
        assert_eq!(&b[..4], &[0xd0, 8, 1, 144]);
        let too_long = PathAttribute::new(AttrValue::Other {
            type_code: 99,
            value: vec![0; 70_000],
        });
        assert!(matches!(
            too_long.encode(&s, &mut Vec::new()),
            Err(EncodeError::AttributeTooLong { type_code: 99, .. })
        ));
    }

    #[test]
    fn two_octet_sessions_write_as_trans() {
        let path = AsPath::sequence(vec![65000, 4_200_000_000]);
        let mut b = Vec::new();
        PathAttribute::new(AttrValue::AsPath(path.clone()))
            .encode(&s2(), &mut b)
            .unwrap();
        assert_eq!(b, [0x40, 2, 6, 2, 2, 0xfd, 0xe8, 0x5b, 0xa0]);
        let (two, as4) = path.split_for_two_octet();
        assert_eq!(two, AsPath::sequence(vec![65000, 23456]));
        assert_eq!(as4, Some(path.clone()));
        assert_eq!(AsPath::sequence(vec![1, 2]).split_for_two_octet().1, None);
    }

    #[test]
    fn as4_path_merge() {
        // RFC 6793 §4.2.3: AS_PATH 65001 23456 23456 65002, AS4_PATH 4200000000 4200000001 65002
        let old = AsPath::sequence(vec![65001, 23456, 23456, 65002]);
        let as4 = AsPath::sequence(vec![4_200_000_000, 4_200_000_001, 65002]);
        assert_eq!(
            old.merge_as4(&as4),
            AsPath::sequence(vec![65001, 4_200_000_000, 4_200_000_001, 65002])
        );
        // A longer AS4_PATH is ignored.
        assert_eq!(
            AsPath::sequence(vec![1]).merge_as4(&as4),
            AsPath::sequence(vec![1])
        );
        // Leading confederation segments stay.
        let confed = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![23456],
                },
            ],
        };
        let merged = confed.merge_as4(&AsPath::sequence(vec![4_200_000_000]));
        assert_eq!(merged.to_string(), "(64512) 4200000000");
        assert_eq!(merged.path_len(), 1);
    }

    #[test]
    fn as_path_display_and_length() {
        let p = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![65000, 65001],
                },
                AsSegment {
                    kind: SegmentType::Set,
                    asns: vec![1, 2],
                },
                AsSegment {
                    kind: SegmentType::ConfedSet,
                    asns: vec![3, 4],
                },
            ],
        };
        assert_eq!(p.to_string(), "65000 65001 {1,2} [3,4]");
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65000));
    }

    fn err(t: u8, value: &[u8], s: &Session) -> Problem {
        match decode_value(t, value, s) {
            Err(p) => p,
            Ok(d) => panic!("type {t} {value:?} decoded as {:?}", d.value),
        }
    }

    #[test]
    fn each_malformed_attribute_costs_what_its_rfc_says() {
        use attr_type::*;
        use Handling::*;
        let s = s4();
        for (t, value, handling, subcode) in [
            (ORIGIN, &[3u8][..], TreatAsWithdraw, sub::INVALID_ORIGIN),
            (ORIGIN, &[0, 0][..], TreatAsWithdraw, sub::ATTRIBUTE_LENGTH),
            (
                AS_PATH,
                &[5, 1, 0, 0, 0, 1][..],
                TreatAsWithdraw,
                sub::MALFORMED_AS_PATH,
            ),
            (
                AS_PATH,
                &[2, 2, 0, 0, 0, 1][..],
                TreatAsWithdraw,
                sub::MALFORMED_AS_PATH,
            ),
            (
                AS_PATH,
                &[2, 1, 0, 0, 0, 1, 2][..],
                TreatAsWithdraw,
                sub::MALFORMED_AS_PATH,
            ),
            (
                AS_PATH,
                &[2, 0][..],
                TreatAsWithdraw,
                sub::MALFORMED_AS_PATH,
            ),
            (
                AS_PATH,
                &[2, 1, 0, 0, 0, 0][..],
                TreatAsWithdraw,
                sub::MALFORMED_AS_PATH,
            ),
            (
                NEXT_HOP,
                &[1, 2, 3][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                MULTI_EXIT_DISC,
                &[1, 2, 3, 4, 5][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (LOCAL_PREF, &[][..], TreatAsWithdraw, sub::ATTRIBUTE_LENGTH),
            (
                ATOMIC_AGGREGATE,
                &[1][..],
                AttributeDiscard,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                AGGREGATOR,
                &[0, 1, 10, 0, 0, 1][..],
                AttributeDiscard,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                AGGREGATOR,
                &[0, 0, 0, 0, 10, 0, 0, 1][..],
                AttributeDiscard,
                sub::OPTIONAL_ATTRIBUTE,
            ),
            (COMMUNITIES, &[][..], TreatAsWithdraw, sub::ATTRIBUTE_LENGTH),
            (
                COMMUNITIES,
                &[1, 2, 3][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                ORIGINATOR_ID,
                &[1, 2, 3, 4, 5][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                CLUSTER_LIST,
                &[1, 2][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                EXTENDED_COMMUNITIES,
                &[0; 7][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                LARGE_COMMUNITIES,
                &[0; 13][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                TUNNEL_ENCAPSULATION,
                &[][..],
                TreatAsWithdraw,
                sub::ATTRIBUTE_LENGTH,
            ),
            (
                MP_REACH_NLRI,
                &[0, 1, 1][..],
                SessionReset,
                sub::OPTIONAL_ATTRIBUTE,
            ),
            (
                MP_UNREACH_NLRI,
                &[0, 1][..],
                SessionReset,
                sub::OPTIONAL_ATTRIBUTE,
            ),
            // Between 4-octet speakers, AS4_* are discarded whatever they hold.
            (
                AS4_PATH,
                &[2, 1, 0, 0, 0, 1][..],
                AttributeDiscard,
                sub::OPTIONAL_ATTRIBUTE,
            ),
            (
                AS4_AGGREGATOR,
                &[0, 0, 0, 1, 1, 2, 3, 4][..],
                AttributeDiscard,
                sub::OPTIONAL_ATTRIBUTE,
            ),
        ] {
            let p = err(t, value, &s);
            assert_eq!(
                (p.handling, p.subcode),
                (handling, subcode),
                "{} {value:?}: {}",
                type_name(t),
                p.reason
            );
        }
        let s = s2();
        for (t, value) in [
            (AS4_PATH, &[][..]),
            (AS4_PATH, &[2, 1, 0, 0][..]),
            (AS4_PATH, &[2, 1, 0, 0, 0, 0][..]),
            (AS4_AGGREGATOR, &[0, 0, 0, 1][..]),
            (AS4_AGGREGATOR, &[0, 0, 0, 0, 1, 2, 3, 4][..]),
            (AGGREGATOR, &[0, 0, 0, 1, 1, 2, 3, 4][..]),
        ] {
            assert_eq!(
                err(t, value, &s).handling,
                AttributeDiscard,
                "{} {value:?}",
                type_name(t)
            );
        }
    }

    #[test]
    fn as4_path_loses_its_confederation_segments() {
        let d = decode_value(
            attr_type::AS4_PATH,
            &[3, 1, 0, 0, 0xfc, 0, 2, 1, 0xfa, 0x56, 0xea, 0],
            &s2(),
        )
        .ok()
        .unwrap();
        assert_eq!(
            d.value,
            AttrValue::As4Path(AsPath::sequence(vec![4_200_000_000]))
        );
        assert!(d.note.is_some());
    }

    #[test]
    fn malformed_tunnel_encapsulation_is_treat_as_withdraw() {
        // A tunnel TLV whose length (16) runs past the attribute: RFC 9012 §13 malformed.
        let value = [0, 8, 0, 16, 1, 2];
        match decode_value(attr_type::TUNNEL_ENCAPSULATION, &value, &s4()) {
            Err(p) => assert_eq!(p.handling, Handling::TreatAsWithdraw),
            Ok(_) => panic!("a tunnel TLV running past the attribute is malformed"),
        }
    }

    #[test]
    fn flag_checks() {
        use attr_type::*;
        assert_eq!(flags_problem(ORIGIN, 0x40), None);
        assert_eq!(flags_problem(ORIGIN, 0x50), None); // E bit is not a conflict
        assert_eq!(flags_problem(AGGREGATOR, 0xe0), None); // Partial on optional transitive
        assert_eq!(flags_problem(99, 0x00), None); // unknown: nothing to check
        for (t, f, h) in [
            (ORIGIN, 0xc0, Handling::TreatAsWithdraw),
            (ORIGIN, 0x60, Handling::TreatAsWithdraw), // Partial on well-known
            (MULTI_EXIT_DISC, 0xc0, Handling::TreatAsWithdraw),
            (ORIGINATOR_ID, 0xa0, Handling::TreatAsWithdraw),
            (ATOMIC_AGGREGATE, 0x80, Handling::AttributeDiscard),
            (AGGREGATOR, 0x80, Handling::AttributeDiscard),
            (AS4_PATH, 0x40, Handling::AttributeDiscard),
            (MP_REACH_NLRI, 0xc0, Handling::SessionReset),
            (MP_UNREACH_NLRI, 0x40, Handling::SessionReset),
            (TUNNEL_ENCAPSULATION, 0x80, Handling::TreatAsWithdraw),
            (EXTENDED_COMMUNITIES, 0x40, Handling::TreatAsWithdraw),
        ] {
            let p = flags_problem(t, f).unwrap();
            assert_eq!(
                (p.handling, p.subcode),
                (h, sub::ATTRIBUTE_FLAGS),
                "{}",
                type_name(t)
            );
        }
    }
}
