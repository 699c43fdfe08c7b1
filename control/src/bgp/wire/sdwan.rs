//! SD-WAN NLRI of SAFI 74, "SD-WAN Capabilities" (draft-ietf-idr-sdwan-edge-discovery),
//! carried in MP_REACH_NLRI / MP_UNREACH_NLRI with AFI 1 or 2. One NLRI per WAN port of an
//! edge; the port's addresses and keys ride in the UPDATE's Tunnel Encapsulation attribute
//! (`tunnel_encap`). The decisions where the draft is ambiguous are in
//! `docs/bgp-encodings.md`.
//!
//! ```text
//! +------------------+
//! |  Route Type      | 2 octets
//! +------------------+
//! |  Length          | 2 octets   (the draft's text says bits, its example octets)
//! +------------------+
//! |  Type-specific   |
//! ~  value           ~
//! +------------------+
//! ```
//!
//! Route type 1 (an SD-WAN edge's WAN port):
//!
//! ```text
//! +------------------+
//! |  Port-Local-ID   | 4 octets
//! +------------------+
//! |  SD-WAN-Color    | 4 octets
//! +------------------+
//! |  SD-WAN-Node-ID  | 4 or 16 octets (the edge's IPv4 or IPv6 address)
//! +------------------+
//! ```
//!
//! We write the length in octets (12 or 24) and read either unit: the four valid lengths of
//! route type 1 (12/24 octets, 96/192 bits) cannot be mistaken for one another.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// SAFI of the SD-WAN capability routes.
pub const SAFI_SDWAN: u8 = 74;

/// Route type of `SdWanNlri`: an edge's WAN port.
pub const ROUTE_TYPE_PORT: u16 = 1;

const HEADER: usize = 4;
const PORT_V4: usize = 12;
const PORT_V6: usize = 24;

/// One SD-WAN NLRI of route type 1: a WAN port of an edge. The RIB key of the underlay route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SdWanNlri {
    pub port_local_id: u32,
    pub color: u32,
    /// SD-WAN-Node-ID: the edge's address; its family gives the AFI (1 or 2).
    pub node: IpAddr,
}

/// The unit the Length field of an NLRI was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthUnit {
    /// Our encoding, and the draft's example.
    #[default]
    Octets,
    /// The draft's text.
    Bits,
}

/// Any SD-WAN NLRI, as it came: route type 1 typed, other route types opaque. Re-encodes
/// byte for byte (the length unit is kept), so a reflector can pass routes on unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SdWanRoute {
    Port {
        nlri: SdWanNlri,
        unit: LengthUnit,
    },
    /// A route type we do not know. RFC 7606 §5.4 (typed NLRI): such routes are discarded,
    /// not treated as errors; this variant lets the caller skip, count or log them.
    Opaque {
        route_type: u16,
        value: Vec<u8>,
        unit: LengthUnit,
    },
}

/// Why an NLRI (or the next hop) could not be decoded.
///
/// `Truncated`, `BadPortLength` and `Overrun` leave the NLRI field unparseable: there is no
/// route left to withdraw, so RFC 7606 §5.3 does not allow treat-as-withdraw; the UPDATE
/// codec applies "AFI/SAFI disable" (RFC 4760 §7) or "session reset". `UnknownRouteType`
/// is not a malformation (RFC 7606 §5.4: discard the route, go on after `consumed` bytes).
/// `BadNextHop` is an MP_REACH_NLRI error, handled as the UPDATE codec handles those.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdWanError {
    #[error("SD-WAN NLRI: {available} byte(s) are too few for a route type and length")]
    Truncated { available: usize },
    #[error(
        "SD-WAN NLRI: route type 1 with length {length} (expected 12 or 24 octets, 96 or 192 \
         bits)"
    )]
    BadPortLength { length: u16 },
    #[error(
        "SD-WAN NLRI: route type {route_type} with length {length} runs past the {available} \
         byte(s) left"
    )]
    Overrun {
        route_type: u16,
        length: u16,
        available: usize,
    },
    #[error("SD-WAN NLRI: route type {route_type} is not one we decode ({consumed} bytes)")]
    UnknownRouteType { route_type: u16, consumed: usize },
    #[error("SD-WAN next hop: {length} octets (expected 4, 16 or 32)")]
    BadNextHop { length: usize },
}

impl SdWanNlri {
    /// Decodes one NLRI at the start of `bytes`; returns it and the bytes it took.
    ///
    /// Only route type 1; another route type is `SdWanError::UnknownRouteType`, which carries
    /// the bytes to skip. Use `SdWanRoute::decode` to keep such routes.
    pub fn decode(bytes: &[u8]) -> Result<(SdWanNlri, usize), SdWanError> {
        match SdWanRoute::decode(bytes)? {
            (SdWanRoute::Port { nlri, .. }, used) => Ok((nlri, used)),
            (SdWanRoute::Opaque { route_type, .. }, used) => Err(SdWanError::UnknownRouteType {
                route_type,
                consumed: used,
            }),
        }
    }

    /// Appends the NLRI to `out`, its length in octets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        SdWanRoute::encode_port(self, LengthUnit::Octets, out);
    }

    /// The AFI of the UPDATE that carries it: 1 for an IPv4 node, 2 for an IPv6 one.
    pub fn afi(&self) -> u16 {
        match self.node {
            IpAddr::V4(_) => 1,
            IpAddr::V6(_) => 2,
        }
    }
}

impl SdWanRoute {
    /// Decodes one NLRI at the start of `bytes`; returns it and the bytes it took.
    ///
    /// Route type 1 must have one of its four valid lengths. For other route types the unit
    /// is unknown: octets when that length fits in `bytes`, else bits when that fits, else
    /// `Overrun` (documented in `docs/bgp-encodings.md`).
    pub fn decode(bytes: &[u8]) -> Result<(SdWanRoute, usize), SdWanError> {
        let [t0, t1, l0, l1] = bytes
            .get(..HEADER)
            .and_then(|h| <[u8; HEADER]>::try_from(h).ok())
            .ok_or(SdWanError::Truncated {
                available: bytes.len(),
            })?;
        let route_type = u16::from_be_bytes([t0, t1]);
        let length = u16::from_be_bytes([l0, l1]);
        let body = bytes.get(HEADER..).unwrap_or_default();
        let overrun = SdWanError::Overrun {
            route_type,
            length,
            available: body.len(),
        };
        if route_type == ROUTE_TYPE_PORT {
            let (octets, unit) = match usize::from(length) {
                n @ (PORT_V4 | PORT_V6) => (n, LengthUnit::Octets),
                n if n == PORT_V4 * 8 || n == PORT_V6 * 8 => (n / 8, LengthUnit::Bits),
                _ => return Err(SdWanError::BadPortLength { length }),
            };
            let value = body.get(..octets).ok_or(overrun)?;
            let nlri = decode_port(value).ok_or(SdWanError::BadPortLength { length })?;
            return Ok((SdWanRoute::Port { nlri, unit }, HEADER + octets));
        }
        let as_octets = usize::from(length);
        let (octets, unit) = if as_octets <= body.len() {
            (as_octets, LengthUnit::Octets)
        } else if length % 8 == 0 && as_octets / 8 <= body.len() {
            (as_octets / 8, LengthUnit::Bits)
        } else {
            return Err(overrun);
        };
        let value = body.get(..octets).ok_or(overrun)?.to_vec();
        Ok((
            SdWanRoute::Opaque {
                route_type,
                value,
                unit,
            },
            HEADER + octets,
        ))
    }

    /// Decodes a whole NLRI field (of MP_REACH_NLRI or MP_UNREACH_NLRI).
    pub fn decode_all(mut field: &[u8]) -> Result<Vec<SdWanRoute>, SdWanError> {
        let mut routes = Vec::new();
        while !field.is_empty() {
            let (route, used) = SdWanRoute::decode(field)?;
            routes.push(route);
            field = field.get(used..).unwrap_or_default();
        }
        Ok(routes)
    }

    /// Appends the NLRI to `out` as it came.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SdWanRoute::Port { nlri, unit } => Self::encode_port(nlri, *unit, out),
            SdWanRoute::Opaque {
                route_type,
                value,
                unit,
            } => {
                out.extend_from_slice(&route_type.to_be_bytes());
                out.extend_from_slice(&length_field(value.len(), *unit).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }

    fn encode_port(nlri: &SdWanNlri, unit: LengthUnit, out: &mut Vec<u8>) {
        let octets = match nlri.node {
            IpAddr::V4(_) => PORT_V4,
            IpAddr::V6(_) => PORT_V6,
        };
        out.extend_from_slice(&ROUTE_TYPE_PORT.to_be_bytes());
        out.extend_from_slice(&length_field(octets, unit).to_be_bytes());
        out.extend_from_slice(&nlri.port_local_id.to_be_bytes());
        out.extend_from_slice(&nlri.color.to_be_bytes());
        match nlri.node {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
}

/// Decodes the next-hop field of an MP_REACH_NLRI of SAFI 74 (without its length octet).
///
/// The draft's underlay UPDATE has the edge itself as next hop: its address, 4 octets (IPv4)
/// or 16 (IPv6), normally the same address as the NLRI's SD-WAN-Node-ID. 32 octets (global
/// and link-local, RFC 2545) are accepted, and the global address is returned.
pub fn decode_next_hop(next_hop: &[u8]) -> Result<IpAddr, SdWanError> {
    let bad = SdWanError::BadNextHop {
        length: next_hop.len(),
    };
    match next_hop.len() {
        4 => <[u8; 4]>::try_from(next_hop)
            .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .map_err(|_| bad),
        16 | 32 => next_hop
            .get(..16)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .ok_or(bad),
        _ => Err(bad),
    }
}

/// Appends the next-hop field of an MP_REACH_NLRI of SAFI 74: the edge's address, 4 or 16
/// octets. The caller writes the length octet (`out`'s growth) before it.
pub fn encode_next_hop(node: IpAddr, out: &mut Vec<u8>) {
    match node {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

fn decode_port(value: &[u8]) -> Option<SdWanNlri> {
    let port_local_id = u32::from_be_bytes(value.get(0..4)?.try_into().ok()?);
    let color = u32::from_be_bytes(value.get(4..8)?.try_into().ok()?);
    let node = match value.get(8..)? {
        v @ [_, _, _, _] => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?)),
        v => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?)),
    };
    Some(SdWanNlri {
        port_local_id,
        color,
        node,
    })
}

/// The Length field for `octets` of value in `unit`. Decoded values always fit; a value built
/// by hand too long for the field is clamped rather than a panic.
fn length_field(octets: usize, unit: LengthUnit) -> u16 {
    let n = match unit {
        LengthUnit::Octets => octets,
        LengthUnit::Bits => octets.saturating_mul(8),
    };
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlri_v4() -> SdWanNlri {
        SdWanNlri {
            port_local_id: 0x0000_0102,
            color: 100,
            node: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    fn nlri_v6() -> SdWanNlri {
        SdWanNlri {
            port_local_id: 7,
            color: 0xdead_beef,
            node: "2001:db8::1".parse().unwrap(),
        }
    }

    fn encoded(n: &SdWanNlri) -> Vec<u8> {
        let mut out = Vec::new();
        n.encode(&mut out);
        out
    }

    #[test]
    fn draft_example_shape_ipv4_length_twelve_octets() {
        // The draft's example route (route type 1, IPv4 node) has Length = 12, in octets.
        // The field values are ours: the example's exact bytes were not available to us.
        let bytes = [
            0x00, 0x01, // route type 1
            0x00, 0x0c, // length 12
            0x00, 0x00, 0x01, 0x02, // Port-Local-ID
            0x00, 0x00, 0x00, 0x64, // SD-WAN-Color 100
            192, 0, 2, 1, // SD-WAN-Node-ID
        ];
        assert_eq!(SdWanNlri::decode(&bytes), Ok((nlri_v4(), 16)));
        assert_eq!(encoded(&nlri_v4()), bytes);
    }

    #[test]
    fn both_families_roundtrip_in_octets() {
        for (n, len) in [(nlri_v4(), 16), (nlri_v6(), 28)] {
            let bytes = encoded(&n);
            assert_eq!(bytes.len(), len);
            assert_eq!(SdWanNlri::decode(&bytes), Ok((n, len)));
            assert_eq!(n.afi(), if n.node.is_ipv4() { 1 } else { 2 });
        }
    }

    #[test]
    fn length_in_bits_is_accepted_and_kept() {
        for (n, bits) in [(nlri_v4(), 96u16), (nlri_v6(), 192)] {
            let mut bytes = encoded(&n);
            bytes[2..4].copy_from_slice(&bits.to_be_bytes());
            let (route, used) = SdWanRoute::decode(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(
                route,
                SdWanRoute::Port {
                    nlri: n,
                    unit: LengthUnit::Bits
                }
            );
            let mut out = Vec::new();
            route.encode(&mut out);
            assert_eq!(out, bytes, "a reflected route keeps its unit");
            // The plain NLRI re-encodes in octets.
            assert_eq!(SdWanNlri::decode(&bytes), Ok((n, bytes.len())));
            assert_eq!(encoded(&n)[2..4], [0, (bits / 8) as u8]);
        }
    }

    #[test]
    fn bad_port_lengths() {
        for length in [0u16, 8, 13, 16, 20, 95, 128, 193] {
            let mut bytes = encoded(&nlri_v6());
            bytes[2..4].copy_from_slice(&length.to_be_bytes());
            assert_eq!(
                SdWanNlri::decode(&bytes),
                Err(SdWanError::BadPortLength { length })
            );
        }
    }

    #[test]
    fn truncated_and_overrun() {
        let bytes = encoded(&nlri_v4());
        for cut in 0..HEADER {
            assert_eq!(
                SdWanNlri::decode(&bytes[..cut]),
                Err(SdWanError::Truncated { available: cut })
            );
        }
        assert_eq!(
            SdWanNlri::decode(&bytes[..15]),
            Err(SdWanError::Overrun {
                route_type: 1,
                length: 12,
                available: 11
            })
        );
        // An unknown route type whose length fits in neither unit.
        assert_eq!(
            SdWanRoute::decode(&[0, 9, 0, 17, 1, 2]),
            Err(SdWanError::Overrun {
                route_type: 9,
                length: 17,
                available: 2
            })
        );
    }

    #[test]
    fn unknown_route_types_are_opaque() {
        let mut field = vec![0, 2, 0, 3, 0xaa, 0xbb, 0xcc]; // type 2, 3 octets
        field.extend(encoded(&nlri_v4()));
        let routes = SdWanRoute::decode_all(&field).unwrap();
        assert_eq!(
            routes[0],
            SdWanRoute::Opaque {
                route_type: 2,
                value: vec![0xaa, 0xbb, 0xcc],
                unit: LengthUnit::Octets
            }
        );
        assert_eq!(
            routes[1],
            SdWanRoute::Port {
                nlri: nlri_v4(),
                unit: LengthUnit::Octets
            }
        );
        let mut out = Vec::new();
        for r in &routes {
            r.encode(&mut out);
        }
        assert_eq!(out, field);
        // The plain decoder says how far to skip.
        assert_eq!(
            SdWanNlri::decode(&field),
            Err(SdWanError::UnknownRouteType {
                route_type: 2,
                consumed: 7
            })
        );
    }

    #[test]
    fn unknown_route_type_length_in_bits_when_octets_cannot_fit() {
        let bytes = [0, 3, 0, 16, 0xaa, 0xbb]; // 16 bits = 2 octets
        let (route, used) = SdWanRoute::decode(&bytes).unwrap();
        assert_eq!(used, 6);
        assert_eq!(
            route,
            SdWanRoute::Opaque {
                route_type: 3,
                value: vec![0xaa, 0xbb],
                unit: LengthUnit::Bits
            }
        );
        let mut out = Vec::new();
        route.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn next_hop() {
        for node in [nlri_v4().node, nlri_v6().node] {
            let mut out = Vec::new();
            encode_next_hop(node, &mut out);
            assert_eq!(out.len(), if node.is_ipv4() { 4 } else { 16 });
            assert_eq!(decode_next_hop(&out), Ok(node));
        }
        let mut both = Vec::new();
        encode_next_hop(nlri_v6().node, &mut both);
        both.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(decode_next_hop(&both), Ok(nlri_v6().node));
        for len in [0, 3, 5, 12, 24, 33] {
            assert_eq!(
                decode_next_hop(&vec![1; len]),
                Err(SdWanError::BadNextHop { length: len })
            );
        }
    }

    use crate::testing::Rng;

    #[test]
    fn property_random_input_never_panics_and_roundtrips() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut ports = 0;
        for _ in 0..50_000 {
            let n = rng.below(40);
            let mut bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            // Steer half the inputs to plausible headers.
            if bytes.len() >= HEADER && rng.below(2) == 0 {
                bytes[0] = 0;
                bytes[1] = rng.below(3) as u8;
                bytes[2] = 0;
                bytes[3] = [12, 24, 96, 192, 3, 16][rng.below(6)];
            }
            let _ = decode_next_hop(&bytes);
            if let Ok((nlri, used)) = SdWanNlri::decode(&bytes) {
                ports += 1;
                assert!(used <= bytes.len());
                let again = encoded(&nlri);
                assert_eq!(SdWanNlri::decode(&again), Ok((nlri, again.len())));
            }
            if let Ok((route, used)) = SdWanRoute::decode(&bytes) {
                let mut out = Vec::new();
                route.encode(&mut out);
                assert_eq!(
                    out,
                    bytes[..used],
                    "decode then encode must reproduce the input"
                );
            }
            let _ = SdWanRoute::decode_all(&bytes);
        }
        assert!(ports > 1_000, "too few valid NLRIs to mean much: {ports}");
    }
}
