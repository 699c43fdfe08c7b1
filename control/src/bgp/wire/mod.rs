//! The BGP wire format, sans-IO: bytes in, typed messages out, and back. One file per format,
//! each with its RFC diagram.
//!
//! - `header`: the 19-byte header and stream framing (RFC 4271 §4.1, §6.1).
//! - `open`: OPEN and its capabilities (RFC 4271 §4.2, RFC 5492, RFC 9072).
//! - `update`: UPDATE and the RFC 7606 error handling; `attributes`: the path attributes;
//!   `mp`: MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760); `nlri`: address families and NLRI
//!   (prefixes, VPN routes with labels, Route Target membership); `rd`: Route Distinguishers;
//!   `extcomm`: extended communities (Route Target, Color, Encapsulation).
//! - `notification`: NOTIFICATION, error code names, shutdown communication (RFC 9003).
//! - `route_refresh`: ROUTE-REFRESH (RFC 2918, RFC 7313).
//! - `tunnel_encap`: the Tunnel Encapsulation attribute (RFC 9012, attribute 23) and the
//!   SD-WAN sub-TLVs of tunnel type 25 (draft-ietf-idr-sdwan-edge-discovery).
//! - `sdwan`: the SD-WAN NLRI of SAFI 74 (the same draft).
//!
//! Decoding never panics on input: every read is a checked slice. What the codec rejects comes
//! back as a [`DecodeError`] carrying the NOTIFICATION to send; an UPDATE whose attributes are
//! malformed in a way RFC 7606 tolerates comes back as an [`update::UpdateOutcome`] that says
//! what was discarded and whether its routes are to be treated as withdrawn.
//!
//! Messages the codec decodes re-encode to the same bytes (the test vectors from GoBGP, ExaBGP
//! and FRR check it), with one exception: the bits after a prefix's length, which RFC 4271
//! §4.3 calls irrelevant, are cleared on decode so that the RIB sees one key per prefix.

pub mod attributes;
pub mod extcomm;
pub mod header;
pub mod mp;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod rd;
pub mod route_refresh;
pub mod sdwan;
pub mod tunnel_encap;
pub mod update;

pub use attributes::{AttrValue, PathAttribute};
pub use header::{frame, MessageType, HEADER_LEN, MAX_MESSAGE_LEN};
pub use nlri::{Family, Nlri};
pub use notification::Notification;
pub use open::{Capability, Open};
pub use route_refresh::RouteRefresh;
pub use update::{Handling, Malformed, Update, UpdateOutcome};

/// What a session negotiated that changes how UPDATEs are encoded and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers, and AS4_PATH / AS4_AGGREGATOR are not expected.
    pub four_octet_as: bool,
    /// The address families both sides announced (RFC 4760). MP_REACH_NLRI / MP_UNREACH_NLRI
    /// of another family are kept as raw bytes and never parsed, so a family we did not ask
    /// for cannot reset the session with a format we do not read.
    pub families: Vec<Family>,
}

impl Session {
    pub fn new(four_octet_as: bool, families: Vec<Family>) -> Self {
        Session {
            four_octet_as,
            families,
        }
    }

    /// Every family this codec parses: for offline decoding (tests, fuzzing, `show`).
    pub fn all_families(four_octet_as: bool) -> Self {
        Session::new(four_octet_as, Family::KNOWN.to_vec())
    }

    /// What two OPENs agree on: 4-octet AS when both carry capability 65, and the families
    /// both list. A side that lists no multiprotocol capability speaks IPv4 unicast only
    /// (RFC 4760 §8).
    pub fn negotiate(local: &Open, remote: &Open) -> Self {
        let four_octet_as = local.four_octet_as().is_some() && remote.four_octet_as().is_some();
        let ours = local.families_or_default();
        let theirs = remote.families_or_default();
        let families = ours.into_iter().filter(|f| theirs.contains(f)).collect();
        Session::new(four_octet_as, families)
    }

    pub fn has_family(&self, family: Family) -> bool {
        self.families.contains(&family)
    }
}

/// A BGP message, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A message as [`Message::decode`] read it; for an UPDATE, with the RFC 7606 outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Open(Open),
    Update(UpdateOutcome),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Received {
    /// The message itself (for an UPDATE, what is left after RFC 7606 handling).
    pub fn into_message(self) -> Message {
        match self {
            Received::Open(o) => Message::Open(o),
            Received::Update(u) => Message::Update(u.update),
            Received::Notification(n) => Message::Notification(n),
            Received::Keepalive => Message::Keepalive,
            Received::RouteRefresh(r) => Message::RouteRefresh(r),
        }
    }
}

impl Message {
    /// Decodes one whole message (header included), as [`frame`] delimited it.
    pub fn decode(msg: &[u8], session: &Session) -> Result<Received, DecodeError> {
        let kind = header::check(msg)?;
        let body = msg.get(HEADER_LEN..).unwrap_or_default();
        Ok(match kind {
            MessageType::Open => Received::Open(Open::decode(body)?),
            MessageType::Update => Received::Update(Update::decode(body, session)?),
            MessageType::Notification => Received::Notification(Notification::decode(body)?),
            MessageType::Keepalive => Received::Keepalive,
            MessageType::RouteRefresh => Received::RouteRefresh(RouteRefresh::decode(body)?),
        })
    }

    pub fn kind(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// The whole message, header included.
    pub fn encode(&self, session: &Session) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(session, &mut out)?;
        Ok(out)
    }

    /// Appends the whole message to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, session: &Session, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        header::begin(out, self.kind());
        let body = match self {
            Message::Open(o) => o.encode_body(out),
            Message::Update(u) => u.encode_body(session, out),
            Message::Notification(n) => {
                n.encode_body(out);
                Ok(())
            }
            Message::Keepalive => Ok(()),
            Message::RouteRefresh(r) => {
                r.encode_body(out);
                Ok(())
            }
        };
        let done = body.and_then(|()| header::finish(out, start, self.kind()));
        if done.is_err() {
            out.truncate(start);
        }
        done
    }
}

/// Why a received message cannot be used: the session must send `notification` and close
/// (RFC 4271 §6; for UPDATEs, the "session reset" of RFC 7606).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message header: {reason} ({notification})")]
    Header {
        reason: String,
        notification: Notification,
    },
    #[error("OPEN: {reason} ({notification})")]
    Open {
        reason: String,
        notification: Notification,
    },
    #[error("UPDATE: {reason} ({notification})")]
    Update {
        reason: String,
        notification: Notification,
    },
    #[error("NOTIFICATION: {reason}")]
    Notification {
        reason: String,
        notification: Notification,
    },
    #[error("ROUTE-REFRESH: {reason} ({notification})")]
    RouteRefresh {
        reason: String,
        notification: Notification,
    },
}

impl DecodeError {
    /// The NOTIFICATION RFC 4271 (or RFC 7313 for ROUTE-REFRESH) says to send.
    pub fn notification(&self) -> &Notification {
        match self {
            DecodeError::Header { notification, .. }
            | DecodeError::Open { notification, .. }
            | DecodeError::Update { notification, .. }
            | DecodeError::Notification { notification, .. }
            | DecodeError::RouteRefresh { notification, .. } => notification,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            DecodeError::Header { reason, .. }
            | DecodeError::Open { reason, .. }
            | DecodeError::Update { reason, .. }
            | DecodeError::Notification { reason, .. }
            | DecodeError::RouteRefresh { reason, .. } => reason,
        }
    }
}

/// Why a message cannot be encoded. Only values built by hand can fail: whatever was decoded
/// encodes again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{kind:?} message would be {len} bytes, more than {MAX_MESSAGE_LEN}")]
    TooLong { kind: MessageType, len: usize },
    #[error("path attribute {type_code} value is {len} bytes, more than 65535")]
    AttributeTooLong { type_code: u8, len: usize },
    #[error("OPEN optional parameters are {len} bytes, more than 65535")]
    ParametersTooLong { len: usize },
    #[error("capability {code} value is {len} bytes, more than 255")]
    CapabilityTooLong { code: u8, len: usize },
    #[error("{0}")]
    Invalid(&'static str),
}

/// Checked big-endian reads over a byte slice: each returns `None` when the bytes run out, so
/// a decoder turns a short input into its own error instead of panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn ipv4(&mut self) -> Option<std::net::Ipv4Addr> {
        self.array::<4>().map(std::net::Ipv4Addr::from)
    }

    pub(crate) fn ipv6(&mut self) -> Option<std::net::Ipv6Addr> {
        self.array::<16>().map(std::net::Ipv6Addr::from)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0102));
        assert_eq!(r.u16(), None);
        assert_eq!(r.u8(), Some(3));
        assert!(r.is_empty());
        assert_eq!(r.take(1), None);
        assert_eq!(r.take(0), Some(&[][..]));
    }

    #[test]
    fn keepalive_round_trip() {
        let s = Session::all_families(true);
        let bytes = Message::Keepalive.encode(&s).unwrap();
        assert_eq!(bytes.len(), 19);
        assert_eq!(&bytes[..16], &[0xff; 16]);
        assert_eq!(&bytes[16..], &[0, 19, 4]);
        assert_eq!(frame(&bytes).unwrap(), Some(19));
        assert_eq!(Message::decode(&bytes, &s).unwrap(), Received::Keepalive);
    }

    #[test]
    fn negotiate_takes_the_common_families() {
        let local = Open::new(
            65000,
            90,
            "10.0.0.1".parse().unwrap(),
            vec![
                Capability::Multiprotocol(Family::IPV4_VPN),
                Capability::Multiprotocol(Family::IPV6_VPN),
            ],
        );
        let remote = Open::new(
            4_200_000_000,
            90,
            "10.0.0.2".parse().unwrap(),
            vec![Capability::Multiprotocol(Family::IPV4_VPN)],
        );
        let s = Session::negotiate(&local, &remote);
        assert!(s.four_octet_as);
        assert_eq!(s.families, vec![Family::IPV4_VPN]);
        // No multiprotocol capability at all: IPv4 unicast (RFC 4760 §8).
        let mut old = remote.clone();
        old.params.clear();
        let s = Session::negotiate(&local, &old);
        assert!(!s.four_octet_as);
        assert!(s.families.is_empty());
    }
}
