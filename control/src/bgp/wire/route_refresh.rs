//! ROUTE-REFRESH (RFC 2918 §3), with the message subtypes of enhanced route refresh
//! (RFC 7313 §3.2) in what was the reserved byte.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      |Subtype| SAFI  |
//! +-------+-------+-------+-------+
//! ```
//!
//! Subtype 0 is a plain refresh request, and may be followed by ORF entries (RFC 5291),
//! which are kept as bytes. Subtypes 1 (Beginning of Route Refresh) and 2 (End of Route
//! Refresh) are exactly 4 bytes, else NOTIFICATION 7/1 with the whole message as data
//! (RFC 7313 §5). Other subtypes decode, and the session ignores them (RFC 7313 §5).

use super::header::{self, MessageType};
use super::nlri::Family;
use super::notification::{code, route_refresh_subcode};
use super::{DecodeError, Notification};

pub const SUBTYPE_REFRESH: u8 = 0;
pub const SUBTYPE_BORR: u8 = 1;
pub const SUBTYPE_EORR: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
    /// ORF entries after a subtype 0 request, as received.
    pub orf: Vec<u8>,
}

impl RouteRefresh {
    /// A plain request for `family` (RFC 2918).
    pub fn request(family: Family) -> Self {
        RouteRefresh {
            family,
            subtype: SUBTYPE_REFRESH,
            orf: Vec::new(),
        }
    }

    /// Beginning of Route Refresh (RFC 7313).
    pub fn begin(family: Family) -> Self {
        RouteRefresh {
            subtype: SUBTYPE_BORR,
            ..RouteRefresh::request(family)
        }
    }

    /// End of Route Refresh (RFC 7313).
    pub fn end(family: Family) -> Self {
        RouteRefresh {
            subtype: SUBTYPE_EORR,
            ..RouteRefresh::request(family)
        }
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let (Some(&[a0, a1, subtype, safi]), rest) = (body.get(..4), body.get(4..).unwrap_or(&[]))
        else {
            return Err(DecodeError::RouteRefresh {
                reason: format!("{} bytes, fewer than 4", body.len()),
                notification: Notification::new(
                    code::MESSAGE_HEADER,
                    super::notification::header_subcode::BAD_MESSAGE_LENGTH,
                    u16::try_from(header::HEADER_LEN + body.len())
                        .unwrap_or(u16::MAX)
                        .to_be_bytes()
                        .to_vec(),
                ),
            });
        };
        if matches!(subtype, SUBTYPE_BORR | SUBTYPE_EORR) && !rest.is_empty() {
            let mut whole = Vec::with_capacity(header::HEADER_LEN + body.len());
            header::begin(&mut whole, MessageType::RouteRefresh);
            whole.extend_from_slice(body);
            // Cannot fail: a body that arrived in a message fits in one.
            let _ = header::finish(&mut whole, 0, MessageType::RouteRefresh);
            return Err(DecodeError::RouteRefresh {
                reason: format!("subtype {subtype} with {} bytes, not 4", body.len()),
                notification: Notification::new(
                    code::ROUTE_REFRESH_MESSAGE,
                    route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                    whole,
                ),
            });
        }
        Ok(RouteRefresh {
            family: Family::new(u16::from_be_bytes([a0, a1]), safi),
            subtype,
            orf: rest.to_vec(),
        })
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.family.afi.to_be_bytes());
        out.push(self.subtype);
        out.push(self.family.safi);
        out.extend_from_slice(&self.orf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::{Message, Received, Session};

    #[test]
    fn round_trips() {
        let s = Session::all_families(true);
        for rr in [
            RouteRefresh::request(Family::IPV4_VPN),
            RouteRefresh::begin(Family::IPV6_VPN),
            RouteRefresh::end(Family::IPV4_UNICAST),
            RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 0,
                orf: vec![1, 0, 0x40, 0, 0],
            },
            RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 9,
                orf: vec![],
            },
        ] {
            let b = Message::RouteRefresh(rr.clone()).encode(&s).unwrap();
            assert_eq!(Message::decode(&b, &s).unwrap(), Received::RouteRefresh(rr));
        }
        let b = Message::RouteRefresh(RouteRefresh::begin(Family::IPV4_VPN))
            .encode(&s)
            .unwrap();
        assert_eq!(&b[16..], &[0, 23, 5, 0, 1, 1, 128]);
    }

    #[test]
    fn borr_and_eorr_must_be_four_bytes() {
        let e = RouteRefresh::decode(&[0, 1, 2, 1, 0]).unwrap_err();
        let n = e.notification();
        assert_eq!((n.code, n.subcode), (7, 1));
        assert_eq!(n.data.len(), 24);
        assert_eq!(&n.data[16..19], &[0, 24, 5]);
        assert!(RouteRefresh::decode(&[0, 1, 0]).is_err());
    }
}
