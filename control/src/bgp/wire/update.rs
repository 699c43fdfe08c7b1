//! UPDATE (RFC 4271 §4.3) and its error handling (RFC 7606).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable): IPv4 prefixes        |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//!
//! Decoding returns an [`UpdateOutcome`]: the update, the attributes that were discarded,
//! and whether the routes are to be treated as withdrawn; or a [`DecodeError`] when only a
//! session reset will do. The decisions, section by section:
//!
//! - §3 b, §3 i, §5.3: the field lengths must add up and the Withdrawn Routes and NLRI fields
//!   must parse, else nothing can be withdrawn reliably: session reset (3/1, 3/10).
//! - §4: an attribute header or value that overruns the attributes is treat-as-withdraw; the
//!   Total Path Attribute Length still locates the NLRI. If the one that overruns is an MP
//!   attribute its routes are lost, so that is a session reset (3/1).
//! - §3 g: MP_REACH_NLRI or MP_UNREACH_NLRI twice is a session reset (3/1); any other
//!   attribute repeated keeps its first copy and discards the rest.
//! - §5.1, §3 j: the MP attributes are decoded before the others, wherever they are, so the
//!   NLRI are known when another attribute turns out bad. An MP attribute that does not
//!   parse (bad flags, short, next hop length wrong for the family (§7.11), NLRI syntax) is a
//!   session reset (3/4 or 3/9): "AFI/SAFI disable" is optional and not implemented.
//! - §3 c, e, f: wrong Optional/Transitive bits (or a Partial bit where RFC 4271 §4.3 forbids
//!   it) are treat-as-withdraw, except ATOMIC_AGGREGATE / AGGREGATOR (discard), AS4_* (discard,
//!   RFC 6793 §6) and MP attributes (reset).
//! - RFC 4271 §6.3, not revised by RFC 7606: an unrecognized attribute with the Optional bit
//!   clear (a "well-known" one we do not know) is a session reset (3/2).
//! - §7: each attribute's own rule, in `attributes::decode_value`.
//! - §3 d: ORIGIN and AS_PATH missing when the update announces routes, or NEXT_HOP missing
//!   when it announces in the NLRI field (RFC 4760 §3 drops it for MP_REACH only), is
//!   treat-as-withdraw (3/3 data = the type).
//! - §5.2: an UPDATE with attributes other than MP_UNREACH_NLRI and no reachable NLRI cannot
//!   be trusted to have been parsed: any error there worse than attribute discard becomes a
//!   session reset. (Not "ignore it": the RFC is explicit.)
//! - §3 h: several errors, the strongest wins.
//!
//! Under treat-as-withdraw the returned update is rewritten to a withdrawal: the NLRI field
//! joins the Withdrawn Routes, each MP_REACH_NLRI becomes an MP_UNREACH_NLRI of its family
//! (VPN routes with the withdrawal label 0x800000), and the other attributes are dropped, so the RIB can process it like any other update.
//!
//! What the codec cannot judge is left to the session and the RIB, which know the peer:
//! LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from an external peer (discard, §7.5, §7.9,
//! §7.10), AS_CONFED segments from an external peer and the leftmost AS check (§7.2), a
//! NEXT_HOP that is ours or martian (§7.3). RFC 7606 §6 asks for the whole malformed UPDATE
//! in the log: the session has the bytes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::attributes::{
    self, attr_type, flags, type_name, AsPath, AttrValue, Community, LargeCommunity, Origin,
    PathAttribute, Problem, AS_TRANS,
};
use super::extcomm::{ExtCommunity, RouteTarget};
use super::header::{self, MessageType, HEADER_LEN, MAX_MESSAGE_LEN};
use super::mp::{MpNlri, MpReach, MpUnreach, NextHop};
use super::nlri::{self, Family, Label, Nlri, VpnRoute};
use super::notification::{code, update_subcode as sub};
use super::tunnel_encap::TunnelEncap;
use super::{DecodeError, EncodeError, Notification, Reader, Session};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The Withdrawn Routes field (IPv4 unicast).
    pub withdrawn: Vec<Ipv4Net>,
    /// In the order received (or built), flags as received.
    pub attributes: Vec<PathAttribute>,
    /// The NLRI field (IPv4 unicast).
    pub nlri: Vec<Ipv4Net>,
}

/// The approaches of RFC 7606 §2, weakest first, so that `max` picks the one to apply
/// (§3 h). "AFI/SAFI disable" is optional and not offered: those cases reset the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Handling {
    AttributeDiscard,
    TreatAsWithdraw,
    SessionReset,
}

impl fmt::Display for Handling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handling::AttributeDiscard => "attribute discard",
            Handling::TreatAsWithdraw => "treat-as-withdraw",
            Handling::SessionReset => "session reset",
        })
    }
}

/// One error found in an UPDATE, for the log and for the session to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The attribute, when the error is about one.
    pub type_code: Option<u8>,
    pub handling: Handling,
    pub reason: String,
    /// What RFC 4271 §6.3 would send for it; sent only if the error ends in a session reset
    /// (RFC 7606 §5.2).
    pub notification: Notification,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.type_code {
            write!(f, "{} ({t}): ", type_name(t))?;
        }
        write!(f, "{} [{}]", self.reason, self.handling)
    }
}

/// A decoded UPDATE and what RFC 7606 made of its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// What to process: the received update minus discarded attributes, or under
    /// treat-as-withdraw the withdrawal of everything it carried.
    pub update: Update,
    /// Attributes dropped ("attribute discard", repeated attributes, AS4_* between 4-octet
    /// speakers). Log them; the rest of the update stands.
    pub discarded: Vec<Malformed>,
    /// Set when the update's routes are treated as withdrawn: the first reason found.
    pub treat_as_withdraw: Option<Malformed>,
}

/// One attribute as the header walk found it.
struct RawAttr<'a> {
    flags: u8,
    type_code: u8,
    value: &'a [u8],
    /// Flags to value: the data of most UPDATE error NOTIFICATIONs.
    bytes: &'a [u8],
}

fn session_reset(subcode: u8, data: Vec<u8>, reason: String) -> DecodeError {
    DecodeError::Update {
        reason,
        notification: Notification::new(code::UPDATE_MESSAGE, subcode, data),
    }
}

impl Malformed {
    fn from_problem(raw: &RawAttr<'_>, p: Problem) -> Self {
        // RFC 4271 §6.3: most subcodes carry the attribute; these carry nothing.
        let data = match p.subcode {
            sub::MALFORMED_ATTRIBUTE_LIST | sub::INVALID_NETWORK_FIELD | sub::MALFORMED_AS_PATH => {
                Vec::new()
            }
            _ => raw.bytes.to_vec(),
        };
        Malformed {
            type_code: Some(raw.type_code),
            handling: p.handling,
            reason: p.reason,
            notification: Notification::new(code::UPDATE_MESSAGE, p.subcode, data),
        }
    }

    fn into_reset(self) -> DecodeError {
        DecodeError::Update {
            reason: self.to_string(),
            notification: self.notification,
        }
    }
}

impl Update {
    /// Decodes an UPDATE body (after the header) as RFC 7606 says; see the module docs.
    pub fn decode(body: &[u8], session: &Session) -> Result<UpdateOutcome, DecodeError> {
        let list = |reason: &str| {
            session_reset(sub::MALFORMED_ATTRIBUTE_LIST, Vec::new(), reason.to_owned())
        };
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or_else(|| list("no Withdrawn Routes Length"))?;
        let withdrawn_bytes = r
            .take(usize::from(wlen))
            .ok_or_else(|| list("Withdrawn Routes Length runs past the message"))?;
        let alen = r
            .u16()
            .ok_or_else(|| list("no Total Path Attribute Length"))?;
        let attr_bytes = r
            .take(usize::from(alen))
            .ok_or_else(|| list("Total Path Attribute Length runs past the message"))?;
        let field = |what: &str, e: nlri::NlriError| {
            session_reset(
                sub::INVALID_NETWORK_FIELD,
                Vec::new(),
                format!("{what}: {e}"),
            )
        };
        let withdrawn = nlri::decode_ipv4_prefixes(withdrawn_bytes)
            .map_err(|e| field("Withdrawn Routes", e))?;
        let nlri = nlri::decode_ipv4_prefixes(r.rest()).map_err(|e| field("NLRI", e))?;

        let mut discarded = Vec::new();
        let mut withdraw_reason: Option<Malformed> = None;
        let mut raws = Vec::new();
        let mut seen = [false; 256];
        // Whether the update has attributes other than MP_UNREACH_NLRI (RFC 7606 §5.2).
        let mut other_attributes = false;
        let mut w = Reader::new(attr_bytes);
        while !w.is_empty() {
            let start = w.rest();
            other_attributes |= start.get(1) != Some(&attr_type::MP_UNREACH_NLRI);
            let hdr = if start
                .first()
                .is_some_and(|f| f & flags::EXTENDED_LENGTH != 0)
            {
                4
            } else {
                3
            };
            let parsed = (|| {
                let flags = w.u8()?;
                let type_code = w.u8()?;
                let len = if hdr == 4 {
                    w.u16()?
                } else {
                    w.u8().map(u16::from)?
                };
                let value = w.take(usize::from(len))?;
                let bytes = start.get(..hdr + value.len())?;
                Some(RawAttr {
                    flags,
                    type_code,
                    value,
                    bytes,
                })
            })();
            let Some(raw) = parsed else {
                let t = start.get(1).copied();
                if let Some(t @ (attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI)) = t {
                    // Its NLRI are lost: nothing reliable to withdraw (RFC 7606 §3 j).
                    return Err(list(&format!(
                        "{} overruns the path attributes",
                        type_name(t)
                    )));
                }
                // §4: treat-as-withdraw; the Total Path Attribute Length located the NLRI.
                withdraw_reason.get_or_insert(Malformed {
                    type_code: t,
                    handling: Handling::TreatAsWithdraw,
                    reason: format!(
                        "attribute at offset {} overruns the path attributes (RFC 7606 §4)",
                        attr_bytes.len() - start.len()
                    ),
                    notification: Notification::new(
                        code::UPDATE_MESSAGE,
                        sub::ATTRIBUTE_LENGTH,
                        start.to_vec(),
                    ),
                });
                break;
            };
            let t = raw.type_code;
            if std::mem::replace(&mut seen[usize::from(t)], true) {
                if matches!(t, attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI) {
                    return Err(list(&format!(
                        "{} appears twice (RFC 7606 §3 g)",
                        type_name(t)
                    )));
                }
                discarded.push(Malformed {
                    type_code: Some(t),
                    handling: Handling::AttributeDiscard,
                    reason: "repeated; the first copy is kept (RFC 7606 §3 g)".into(),
                    notification: Notification::new(
                        code::UPDATE_MESSAGE,
                        sub::MALFORMED_ATTRIBUTE_LIST,
                        Vec::new(),
                    ),
                });
                continue;
            }
            raws.push(raw);
        }

        // MP attributes first (RFC 7606 §5.1), then the others; each lands at its place.
        let is_mp = |raw: &RawAttr<'_>| {
            matches!(
                raw.type_code,
                attr_type::MP_REACH_NLRI | attr_type::MP_UNREACH_NLRI
            )
        };
        let mut decoded: Vec<Option<PathAttribute>> = vec![None; raws.len()];
        let order = raws
            .iter()
            .enumerate()
            .filter(|(_, r)| is_mp(r))
            .chain(raws.iter().enumerate().filter(|(_, r)| !is_mp(r)));
        for (i, raw) in order {
            let t = raw.type_code;
            if attributes::expected_flags(t).is_none() && raw.flags & flags::OPTIONAL == 0 {
                return Err(session_reset(
                    sub::UNRECOGNIZED_WELL_KNOWN,
                    raw.bytes.to_vec(),
                    format!("unrecognized well-known attribute {t}"),
                ));
            }
            let result = match attributes::flags_problem(t, raw.flags) {
                Some(p) => Err(p),
                None => attributes::decode_value(t, raw.value, session),
            };
            match result {
                Ok(d) => {
                    if let Some(note) = d.note {
                        discarded.push(Malformed {
                            type_code: Some(t),
                            handling: Handling::AttributeDiscard,
                            reason: note,
                            notification: Notification::new(
                                code::UPDATE_MESSAGE,
                                sub::OPTIONAL_ATTRIBUTE,
                                raw.bytes.to_vec(),
                            ),
                        });
                    }
                    if let Some(slot) = decoded.get_mut(i) {
                        *slot = Some(PathAttribute {
                            flags: raw.flags,
                            value: d.value,
                        });
                    }
                }
                Err(p) => {
                    let m = Malformed::from_problem(raw, p);
                    match m.handling {
                        Handling::SessionReset => return Err(m.into_reset()),
                        Handling::TreatAsWithdraw => {
                            withdraw_reason.get_or_insert(m);
                        }
                        Handling::AttributeDiscard => discarded.push(m),
                    }
                }
            }
        }

        let mut update = Update {
            withdrawn,
            attributes: decoded.into_iter().flatten().collect(),
            nlri,
        };
        let reachable =
            !update.nlri.is_empty() || update.mp_reach().is_some_and(|m| !m.nlri.is_empty());
        if reachable {
            let mut mandatory = vec![attr_type::ORIGIN, attr_type::AS_PATH];
            if !update.nlri.is_empty() {
                mandatory.push(attr_type::NEXT_HOP);
            }
            // Attributes that were there but malformed already gave their own reason.
            let present = |t: u8| raws.iter().any(|r| r.type_code == t);
            if let Some(&t) = mandatory.iter().find(|&&t| !present(t)) {
                withdraw_reason.get_or_insert(Malformed {
                    type_code: Some(t),
                    handling: Handling::TreatAsWithdraw,
                    reason: "missing well-known mandatory attribute (RFC 7606 §3 d)".into(),
                    notification: Notification::new(
                        code::UPDATE_MESSAGE,
                        sub::MISSING_WELL_KNOWN,
                        vec![t],
                    ),
                });
            }
        }
        if let Some(m) = &withdraw_reason {
            if !reachable && other_attributes {
                let mut m = m.clone();
                m.reason = format!(
                    "{}; the update announces nothing, so its NLRI cannot be trusted (RFC 7606 §5.2)",
                    m.reason
                );
                return Err(m.into_reset());
            }
            update = update.into_withdrawal();
        }
        Ok(UpdateOutcome {
            update,
            discarded,
            treat_as_withdraw: withdraw_reason,
        })
    }

    /// The same routes, withdrawn (RFC 7606 §2, treat-as-withdraw).
    fn into_withdrawal(self) -> Update {
        let Update {
            mut withdrawn,
            attributes,
            nlri,
        } = self;
        withdrawn.extend(nlri);
        let mut unreach: Vec<MpUnreach> = Vec::new();
        for a in attributes {
            let u = match a.value {
                AttrValue::MpUnreach(u) => u,
                AttrValue::MpReach(r) => MpUnreach {
                    family: r.family,
                    withdrawn: match r.nlri {
                        // Labels mean nothing in a withdrawal (RFC 8277 §2.4): write the
                        // compatibility value, which also reads back the same in MP_UNREACH,
                        // where a 0x000000 entry ends the stack.
                        MpNlri::Routes(routes) => MpNlri::Routes(
                            routes
                                .into_iter()
                                .map(|n| match n {
                                    Nlri::Vpn(v) => Nlri::Vpn(VpnRoute {
                                        labels: vec![Label::WITHDRAW],
                                        ..v
                                    }),
                                    other => other,
                                })
                                .collect(),
                        ),
                        raw => raw,
                    },
                },
                _ => continue,
            };
            let same = unreach.iter_mut().find(|x| x.family == u.family);
            match (same.map(|x| &mut x.withdrawn), u.withdrawn) {
                (Some(MpNlri::Routes(have)), MpNlri::Routes(more)) => have.extend(more),
                (Some(MpNlri::Raw(have)), MpNlri::Raw(more)) => have.extend(more),
                (_, withdrawn) => unreach.push(MpUnreach {
                    family: u.family,
                    withdrawn,
                }),
            }
        }
        Update {
            withdrawn,
            attributes: unreach
                .into_iter()
                .map(|u| PathAttribute::new(AttrValue::MpUnreach(u)))
                .collect(),
            nlri: Vec::new(),
        }
    }

    /// Appends the body (after the header).
    pub fn encode_body(&self, session: &Session, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let too_long = |len| EncodeError::TooLong {
            kind: MessageType::Update,
            len,
        };
        let mut field = |write: &dyn Fn(&mut Vec<u8>) -> Result<(), EncodeError>| {
            let at = out.len();
            out.extend_from_slice(&[0, 0]);
            write(out)?;
            let len = out.len() - at - 2;
            let len16 = u16::try_from(len).map_err(|_| too_long(len))?;
            if let Some(l) = out.get_mut(at..at + 2) {
                l.copy_from_slice(&len16.to_be_bytes());
            }
            Ok::<(), EncodeError>(())
        };
        field(&|out| {
            self.withdrawn
                .iter()
                .for_each(|p| nlri::encode_prefix(IpNet::V4(*p), out));
            Ok(())
        })?;
        field(&|out| {
            self.attributes
                .iter()
                .try_for_each(|a| a.encode(session, out))
        })?;
        self.nlri
            .iter()
            .for_each(|p| nlri::encode_prefix(IpNet::V4(*p), out));
        Ok(())
    }

    /// The whole message, header included.
    pub fn encode(&self, session: &Session) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        header::begin(&mut out, MessageType::Update);
        self.encode_body(session, &mut out)?;
        header::finish(&mut out, 0, MessageType::Update)?;
        Ok(out)
    }

    /// The whole message's length, which may be over [`MAX_MESSAGE_LEN`]: for callers that
    /// pack routes into updates.
    pub fn encoded_len(&self, session: &Session) -> Result<usize, EncodeError> {
        let mut out = Vec::with_capacity(64);
        self.encode_body(session, &mut out)?;
        Ok(HEADER_LEN + out.len())
    }

    pub fn attribute(&self, type_code: u8) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.type_code() == type_code)
            .map(|a| &a.value)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attribute(attr_type::ORIGIN)? {
            AttrValue::Origin(o) => Some(*o),
            _ => None,
        }
    }

    pub fn as_path(&self) -> Option<&AsPath> {
        match self.attribute(attr_type::AS_PATH)? {
            AttrValue::AsPath(p) => Some(p),
            _ => None,
        }
    }

    /// The path to use for selection and loop checks: AS_PATH, merged with AS4_PATH as
    /// RFC 6793 §4.2.3 says when a 2-octet peer sent one (but not when an AGGREGATOR that
    /// is not AS_TRANS comes with an AS4_AGGREGATOR: then AS4_PATH is ignored too).
    pub fn as_path_merged(&self) -> Option<AsPath> {
        let path = self.as_path()?;
        let Some(AttrValue::As4Path(as4)) = self.attribute(attr_type::AS4_PATH) else {
            return Some(path.clone());
        };
        let aggregator_not_trans = matches!(
            (self.attribute(attr_type::AGGREGATOR), self.attribute(attr_type::AS4_AGGREGATOR)),
            (Some(AttrValue::Aggregator(a)), Some(AttrValue::As4Aggregator(_)))
                if a.asn != u32::from(AS_TRANS)
        );
        Some(if aggregator_not_trans {
            path.clone()
        } else {
            path.merge_as4(as4)
        })
    }

    /// NEXT_HOP (the attribute: the next hop of the NLRI field).
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attribute(attr_type::NEXT_HOP)? {
            AttrValue::NextHop(a) => Some(*a),
            _ => None,
        }
    }

    pub fn med(&self) -> Option<u32> {
        match self.attribute(attr_type::MULTI_EXIT_DISC)? {
            AttrValue::Med(v) => Some(*v),
            _ => None,
        }
    }

    pub fn local_pref(&self) -> Option<u32> {
        match self.attribute(attr_type::LOCAL_PREF)? {
            AttrValue::LocalPref(v) => Some(*v),
            _ => None,
        }
    }

    pub fn communities(&self) -> &[Community] {
        match self.attribute(attr_type::COMMUNITIES) {
            Some(AttrValue::Communities(c)) => c,
            _ => &[],
        }
    }

    pub fn ext_communities(&self) -> &[ExtCommunity] {
        match self.attribute(attr_type::EXTENDED_COMMUNITIES) {
            Some(AttrValue::ExtCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn route_targets(&self) -> Vec<RouteTarget> {
        self.ext_communities()
            .iter()
            .filter_map(ExtCommunity::route_target)
            .collect()
    }

    pub fn large_communities(&self) -> &[LargeCommunity] {
        match self.attribute(attr_type::LARGE_COMMUNITIES) {
            Some(AttrValue::LargeCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        match self.attribute(attr_type::ORIGINATOR_ID)? {
            AttrValue::OriginatorId(a) => Some(*a),
            _ => None,
        }
    }

    pub fn cluster_list(&self) -> &[Ipv4Addr] {
        match self.attribute(attr_type::CLUSTER_LIST) {
            Some(AttrValue::ClusterList(c)) => c,
            _ => &[],
        }
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attribute(attr_type::MP_REACH_NLRI)? {
            AttrValue::MpReach(m) => Some(m),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attribute(attr_type::MP_UNREACH_NLRI)? {
            AttrValue::MpUnreach(m) => Some(m),
            _ => None,
        }
    }

    pub fn tunnel_encap(&self) -> Option<&TunnelEncap> {
        match self.attribute(attr_type::TUNNEL_ENCAPSULATION)? {
            AttrValue::TunnelEncap(t) => Some(t),
            _ => None,
        }
    }

    /// Every announced route with its family: the NLRI field and MP_REACH_NLRI (parsed
    /// families only).
    pub fn announced(&self) -> Vec<(Family, Nlri)> {
        let legacy = self
            .nlri
            .iter()
            .map(|p| (Family::IPV4_UNICAST, Nlri::Prefix(IpNet::V4(*p))));
        let mp = self
            .mp_reach()
            .into_iter()
            .flat_map(|m| m.nlri.routes().iter().map(|n| (m.family, n.clone())));
        legacy.chain(mp).collect()
    }

    /// Every withdrawn route with its family: the Withdrawn Routes field and
    /// MP_UNREACH_NLRI (all of them: a treat-as-withdraw update may carry several).
    pub fn withdrawals(&self) -> Vec<(Family, Nlri)> {
        let legacy = self
            .withdrawn
            .iter()
            .map(|p| (Family::IPV4_UNICAST, Nlri::Prefix(IpNet::V4(*p))));
        let mp = self.attributes.iter().flat_map(|a| match &a.value {
            AttrValue::MpUnreach(u) => u
                .withdrawn
                .routes()
                .iter()
                .map(|n| (u.family, n.clone()))
                .collect(),
            _ => Vec::new(),
        });
        legacy.chain(mp).collect()
    }

    /// The End-of-RIB marker of `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast,
    /// an MP_UNREACH_NLRI with no routes otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach::new(
                family,
                Vec::new(),
            )))],
            ..Update::default()
        }
    }

    /// The family whose End-of-RIB marker this is, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [PathAttribute {
                value: AttrValue::MpUnreach(u),
                ..
            }] if u.withdrawn.is_empty() => Some(u.family),
            _ => None,
        }
    }

    /// An update announcing `routes` of `family` via `next_hop` with `attributes` (ORIGIN,
    /// AS_PATH, LOCAL_PREF, extended communities, Tunnel Encapsulation ...). IPv4 unicast
    /// with an IPv4 next hop goes in the NLRI field with a NEXT_HOP attribute; everything
    /// else in an MP_REACH_NLRI, placed first (RFC 7606 §5.1).
    pub fn announce(
        family: Family,
        next_hop: IpAddr,
        attributes: Vec<PathAttribute>,
        routes: Vec<Nlri>,
    ) -> Update {
        let legacy: Option<Vec<Ipv4Net>> = (family == Family::IPV4_UNICAST && next_hop.is_ipv4())
            .then(|| {
                routes
                    .iter()
                    .map(|n| match n {
                        Nlri::Prefix(IpNet::V4(p)) => Some(*p),
                        _ => None,
                    })
                    .collect()
            })
            .flatten();
        match (legacy, next_hop) {
            (Some(nlri), IpAddr::V4(nh)) => {
                let mut attributes = attributes;
                if !attributes
                    .iter()
                    .any(|a| a.type_code() == attr_type::NEXT_HOP)
                {
                    attributes.push(PathAttribute::new(AttrValue::NextHop(nh)));
                }
                Update {
                    withdrawn: Vec::new(),
                    attributes,
                    nlri,
                }
            }
            _ => {
                let reach = MpReach::new(family, NextHop::for_family(family, next_hop), routes);
                let mut all = vec![PathAttribute::new(AttrValue::MpReach(reach))];
                all.extend(attributes);
                Update {
                    withdrawn: Vec::new(),
                    attributes: all,
                    nlri: Vec::new(),
                }
            }
        }
    }

    /// An update withdrawing `routes` of `family`: the Withdrawn Routes field for IPv4
    /// unicast prefixes, MP_UNREACH_NLRI otherwise. VPN routes to withdraw are best built
    /// with [`nlri::VpnRoute::withdrawal`].
    pub fn withdraw(family: Family, routes: Vec<Nlri>) -> Update {
        if family == Family::IPV4_UNICAST {
            let v4: Option<Vec<Ipv4Net>> = routes
                .iter()
                .map(|n| match n {
                    Nlri::Prefix(IpNet::V4(p)) => Some(*p),
                    _ => None,
                })
                .collect();
            if let Some(withdrawn) = v4 {
                return Update {
                    withdrawn,
                    ..Update::default()
                };
            }
        }
        Update {
            attributes: vec![PathAttribute::new(AttrValue::MpUnreach(MpUnreach::new(
                family, routes,
            )))],
            ..Update::default()
        }
    }

    /// [`Update::announce`] split into as many updates as it takes to keep each under
    /// [`MAX_MESSAGE_LEN`].
    pub fn pack_announcements(
        family: Family,
        next_hop: IpAddr,
        attributes: Vec<PathAttribute>,
        routes: Vec<Nlri>,
        session: &Session,
    ) -> Result<Vec<Update>, EncodeError> {
        let base = Update::announce(family, next_hop, attributes.clone(), Vec::new());
        pack(
            base.encoded_len(session)?,
            routes,
            |chunk| Update::announce(family, next_hop, attributes.clone(), chunk),
            session,
        )
    }

    /// [`Update::withdraw`] split into as many updates as it takes.
    pub fn pack_withdrawals(
        family: Family,
        routes: Vec<Nlri>,
        session: &Session,
    ) -> Result<Vec<Update>, EncodeError> {
        let base = Update::withdraw(family, Vec::new());
        pack(
            base.encoded_len(session)?,
            routes,
            |chunk| Update::withdraw(family, chunk),
            session,
        )
    }
}

/// Greedy packing: routes go into the current update while it stays under the limit. One
/// byte is kept in hand for the MP attribute's length growing to two octets.
fn pack(
    base: usize,
    routes: Vec<Nlri>,
    build: impl Fn(Vec<Nlri>) -> Update,
    session: &Session,
) -> Result<Vec<Update>, EncodeError> {
    let budget = MAX_MESSAGE_LEN.saturating_sub(base + 1);
    let mut out = Vec::new();
    let mut chunk = Vec::new();
    let mut used = 0;
    for n in routes {
        let len = n.encoded_len();
        if len > budget {
            return Err(EncodeError::TooLong {
                kind: MessageType::Update,
                len: base + 1 + len,
            });
        }
        if used + len > budget {
            out.push(build(std::mem::take(&mut chunk)));
            used = 0;
        }
        used += len;
        chunk.push(n);
    }
    if !chunk.is_empty() {
        out.push(build(chunk));
    }
    for u in &out {
        let len = u.encoded_len(session)?;
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong {
                kind: MessageType::Update,
                len,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
