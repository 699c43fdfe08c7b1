//! The overlay between two appliances (ARCHITECTURE.md, "Wire format between two
//! appliances"), sans-IO: encapsulation of a client's IP packet into an ESP-protected VXLAN
//! frame, and the way back.
//!
//! ```text
//! Eth | IP wan_a→wan_b | UDP sport=f(SPI) dport=4789 | VXLAN VNI=tenant |
//!     Eth | IP loopback_a→loopback_b proto 50 | ESP SPI,seq | IV | enc(client packet | pad | nh) | ICV
//! ```
//!
//! Sending ([`encapsulate`]): the client's packet is sealed in place by the tenant's outbound
//! SA, then the inner IP header (loopback to loopback, protocol 50), the inner Ethernet
//! header, VXLAN, UDP, the outer IP header (the circuit's WAN addresses) and the outer
//! Ethernet header are written in front of it, all in the buffer's headroom. Nothing is
//! copied and nothing allocates.
//!
//! Receiving: [`parse_outer`] validates every header up to the ESP packet and reports the VNI
//! and the SPI, so the worker can find the inbound SA; [`decapsulate`] then strips the headers,
//! opens the ESP packet and leaves exactly the client's packet in the buffer.
//!
//! Headroom ([`headroom_needed`]): the ESP header and IV (16 bytes), the inner IP header
//! (20 or 40), the inner Ethernet header (14), VXLAN (8), UDP (8), the outer IP header (20 or
//! 40) and the outer Ethernet header (14):
//!
//! | outer | loopbacks | headroom |
//! |-------|-----------|----------|
//! | IPv4  | IPv4      | 100      |
//! | IPv4  | IPv6      | 120      |
//! | IPv6  | IPv4      | 120      |
//! | IPv6  | IPv6      | 140      |
//!
//! A default mbuf (`RTE_PKTMBUF_HEADROOM` = 128) is enough for all but IPv6 over IPv6, which
//! needs 140 bytes: DPDK built with a larger `RTE_PKTMBUF_HEADROOM` (e.g. 192), or the packet
//! moved into a buffer that has it. Short headroom is [`OverlayError::NoRoom`], detected
//! before the SA consumes a sequence number. The tailroom the ESP trailer needs is the SA's
//! (at most 21 bytes, `esp::wire::MAX_OVERHEAD` - 16).
//!
//! Not handled (the packet is refused): VLAN tags and IP options or extension headers on the
//! inner headers, IPv6 extension headers on the outer one, and fragments (the overlay sets DF
//! and sizes its packets by path MTU instead).

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use crate::esp::{self, EspError, InboundSa, OutboundSa};
use crate::forward::PacketBuf;
use crate::wire::{be16, checksum, ethernet, ipv4, ipv6, udp, vxlan, MacAddr};

/// IP protocol number of ESP.
pub const PROTO_ESP: u8 = 50;

/// The overlay headers in front of the ESP packet, for the outer and loopback families.
#[inline]
pub const fn header_len(outer_v6: bool, loopback_v6: bool) -> usize {
    ethernet::HEADER_LEN
        + ip_header_len(outer_v6)
        + udp::HEADER_LEN
        + vxlan::HEADER_LEN
        + ethernet::HEADER_LEN
        + ip_header_len(loopback_v6)
}

/// The headroom [`encapsulate`] needs in front of the client's packet (see the table in the
/// module documentation).
#[inline]
pub const fn headroom_needed(outer_v6: bool, loopback_v6: bool) -> usize {
    header_len(outer_v6, loopback_v6) + esp::wire::PAYLOAD_OFFSET
}

/// The most headroom any path needs (IPv6 outer, IPv6 loopbacks): 140 bytes.
pub const MAX_HEADROOM: usize = headroom_needed(true, true);

const fn ip_header_len(v6: bool) -> usize {
    if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    }
}

const fn ethertype(v6: bool) -> u16 {
    if v6 {
        ethernet::ETHERTYPE_IPV6
    } else {
        ethernet::ETHERTYPE_IPV4
    }
}

/// Why the overlay refused a packet; each is a drop counter ([`OverlayError::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverlayError {
    /// The outer Ethernet header is truncated or does not carry IPv4 or IPv6.
    OuterEthernet,
    /// The outer IP header is truncated or malformed, its checksum is wrong, it is a
    /// fragment, or it does not carry UDP.
    OuterIp,
    /// The UDP header is truncated, its length is wrong, or its checksum does not verify.
    Udp,
    /// UDP, but not to the VXLAN port.
    WrongPort,
    /// The VXLAN header is truncated or its I flag is clear.
    NotVxlan,
    /// The inner Ethernet header is truncated or does not carry IPv4 or IPv6.
    InnerEthernet,
    /// The inner IP header is truncated or malformed (or a fragment).
    InnerIp,
    /// The inner IP packet is not ESP (clear VXLAN: accepted only on trusted circuits, by the
    /// caller).
    NotEsp,
    /// An [`OverlayPath`] with mixed address families or a VNI over 24 bits.
    BadPath,
    /// Not enough headroom or tailroom in the buffer (or a packet too long for the headers'
    /// length fields).
    NoRoom,
    /// ESP refused the packet (`EspError::NoRoom` is reported as [`OverlayError::NoRoom`]).
    Esp(EspError),
}

impl OverlayError {
    /// The drop counter name (for `Esp`, the ESP counter's).
    pub fn name(self) -> &'static str {
        match self {
            OverlayError::OuterEthernet => "outer_ethernet",
            OverlayError::OuterIp => "outer_ip",
            OverlayError::Udp => "udp",
            OverlayError::WrongPort => "wrong_port",
            OverlayError::NotVxlan => "not_vxlan",
            OverlayError::InnerEthernet => "inner_ethernet",
            OverlayError::InnerIp => "inner_ip",
            OverlayError::NotEsp => "not_esp",
            OverlayError::BadPath => "bad_path",
            OverlayError::NoRoom => "no_room",
            OverlayError::Esp(e) => e.name(),
        }
    }
}

impl fmt::Display for OverlayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverlayError::OuterEthernet => f.write_str("malformed outer Ethernet header"),
            OverlayError::OuterIp => f.write_str("malformed outer IP header"),
            OverlayError::Udp => f.write_str("malformed UDP header or bad checksum"),
            OverlayError::WrongPort => f.write_str("UDP destination port is not VXLAN (4789)"),
            OverlayError::NotVxlan => f.write_str("malformed VXLAN header (I flag clear)"),
            OverlayError::InnerEthernet => f.write_str("malformed inner Ethernet header"),
            OverlayError::InnerIp => f.write_str("malformed inner IP header"),
            OverlayError::NotEsp => f.write_str("inner packet is not ESP"),
            OverlayError::BadPath => f.write_str("overlay path mixes address families or VNI"),
            OverlayError::NoRoom => f.write_str("no headroom or tailroom for the overlay"),
            OverlayError::Esp(e) => write!(f, "ESP: {e}"),
        }
    }
}

impl std::error::Error for OverlayError {}

impl From<EspError> for OverlayError {
    fn from(e: EspError) -> Self {
        match e {
            EspError::NoRoom => OverlayError::NoRoom,
            e => OverlayError::Esp(e),
        }
    }
}

/// Everything [`encapsulate`] writes that is not the ESP packet: one tenant over one circuit
/// to one peer. `outer_src`/`outer_dst` are the circuit's WAN addresses (one family);
/// `loopback_src`/`loopback_dst` the two appliances' loopbacks (one family, which may differ
/// from the outer one); `vni` the tenant's segment (24 bits); `ttl` is the TTL or hop limit of
/// both IP headers. The inner Ethernet addresses are what the peer's VXLAN endpoint expects
/// (its loopback interface's MAC, by convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayPath {
    pub outer_src_mac: MacAddr,
    pub outer_dst_mac: MacAddr,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    pub inner_src_mac: MacAddr,
    pub inner_dst_mac: MacAddr,
    pub loopback_src: IpAddr,
    pub loopback_dst: IpAddr,
    pub vni: u32,
    pub ttl: u8,
}

impl OverlayPath {
    /// The families (outer is IPv6, loopbacks are IPv6), or `BadPath`.
    #[inline]
    pub fn families(&self) -> Result<(bool, bool), OverlayError> {
        let outer = match (self.outer_src, self.outer_dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(OverlayError::BadPath),
        };
        let loopback = match (self.loopback_src, self.loopback_dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(OverlayError::BadPath),
        };
        if self.vni > vxlan::VNI_MAX {
            return Err(OverlayError::BadPath);
        }
        Ok((outer, loopback))
    }

    /// The headroom this path needs.
    pub fn headroom(&self) -> Result<usize, OverlayError> {
        let (o, l) = self.families()?;
        Ok(headroom_needed(o, l))
    }
}

/// The UDP source port for an SA: a fixed function of the SPI into the ephemeral range
/// 49152..=65535 (RFC 6335), the top 14 bits of a multiplicative (Fibonacci) hash of the SPI.
///
/// Every packet of an SA over a circuit then has the same outer 5-tuple, so the receiver's
/// NIC (receive-side scaling over addresses and ports) puts them all on one queue, and the
/// inbound SA stays on one core, as the owning rule wants; different SAs spread over queues
/// and over ECMP paths. An SA carried over several circuits differs in its outer addresses
/// per circuit: to keep it on one core across circuits the receiver's RSS must hash the UDP
/// ports only for port 4789 (or the worker that receives it hands it on by SPI). The cost is
/// that one SA's packets are never spread over cores or paths, and that they stay in order.
#[inline]
pub fn source_port(spi: u32) -> u16 {
    0xc000 | (spi.wrapping_mul(0x9e37_79b1) >> 18) as u16
}

/// Encapsulates the client's IP packet in `pkt` (no Ethernet header) for `path`: sealed by
/// `sa`, then the overlay headers written in the headroom (outer IPv4 with DF set and a valid
/// header checksum and a zero UDP checksum; outer IPv6 with the UDP checksum computed).
/// Returns the ESP sequence number used.
///
/// On `BadPath` and `NoRoom` (headroom, checked first) the buffer is unchanged and no
/// sequence number is used; on an ESP error the buffer is as `OutboundSa::seal` leaves it.
pub fn encapsulate<B: PacketBuf>(
    path: &OverlayPath,
    sa: &mut OutboundSa,
    pkt: &mut B,
) -> Result<u64, OverlayError> {
    let (outer_v6, loopback_v6) = path.families()?;
    let hdr = header_len(outer_v6, loopback_v6);
    // Every length field (IPv4 total length, UDP length) must hold the result.
    if pkt.data().len() + hdr + esp::wire::MAX_OVERHEAD > usize::from(u16::MAX) {
        return Err(OverlayError::NoRoom);
    }
    // Probe the headroom before the SA consumes a sequence number.
    let need = hdr + esp::wire::PAYLOAD_OFFSET;
    if !pkt.prepend(need) {
        return Err(OverlayError::NoRoom);
    }
    if !pkt.adj(need) {
        return Err(OverlayError::NoRoom); // a PacketBuf that broke its contract
    }
    let seq = sa.seal(pkt)?;
    let esp_len = pkt.data().len();
    if !pkt.prepend(hdr) {
        return Err(OverlayError::NoRoom);
    }
    let sport = source_port(sa.spi());
    let d = pkt.data_mut();
    if d.len() != hdr + esp_len {
        return Err(OverlayError::NoRoom); // a PacketBuf that broke its contract
    }

    let outer_ip = ethernet::HEADER_LEN;
    let udp_off = outer_ip + ip_header_len(outer_v6);
    let vxlan_off = udp_off + udp::HEADER_LEN;
    let inner_eth = vxlan_off + vxlan::HEADER_LEN;
    let inner_ip = inner_eth + ethernet::HEADER_LEN;

    // Lengths fit 16 bits: checked against u16::MAX above.
    match (path.loopback_src, path.loopback_dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => ipv4::write_header(
            &mut d[inner_ip..],
            (ipv4::MIN_HEADER_LEN + esp_len) as u16,
            path.ttl,
            PROTO_ESP,
            s,
            t,
        ),
        (IpAddr::V6(s), IpAddr::V6(t)) => ipv6::write_header(
            &mut d[inner_ip..],
            esp_len as u16,
            PROTO_ESP,
            path.ttl,
            &s,
            &t,
        ),
        _ => return Err(OverlayError::BadPath),
    }
    ethernet::write_header(
        &mut d[inner_eth..],
        &path.inner_dst_mac,
        &path.inner_src_mac,
        ethertype(loopback_v6),
    );
    write_outer(d, path, outer_v6, vxlan_off, 0, sport)?;
    Ok(seq)
}

/// Writes the VXLAN header at `vxlan_off` (flags `extra_flags` besides I) and, in front of it,
/// the outer UDP, IP (IPv4 with DF, RFC 7348 §4.3; IPv6 with the UDP checksum, which covers
/// what follows) and Ethernet headers of `path`, for a frame that ends at `d`'s end.
fn write_outer(
    d: &mut [u8],
    path: &OverlayPath,
    outer_v6: bool,
    vxlan_off: usize,
    extra_flags: u8,
    sport: u16,
) -> Result<(), OverlayError> {
    let outer_ip = ethernet::HEADER_LEN;
    let udp_off = vxlan_off - udp::HEADER_LEN;
    vxlan::write_header(&mut d[vxlan_off..], path.vni);
    d[vxlan_off] |= extra_flags;
    let udp_len = d.len() - udp_off;
    udp::write_header(&mut d[udp_off..], sport, vxlan::PORT, udp_len as u16, 0);
    match (path.outer_src, path.outer_dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            let h = &mut d[outer_ip..];
            ipv4::write_header(
                h,
                (ipv4::MIN_HEADER_LEN + udp_len) as u16,
                path.ttl,
                ipv4::PROTO_UDP,
                s,
                t,
            );
            // Don't fragment (RFC 7348 §4.3 recommends it for VXLAN over IPv4).
            let old = be16(h, 6);
            h[6] |= 0x40;
            let c = checksum::update16(be16(h, 10), old, be16(h, 6));
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            ipv6::write_header(
                &mut d[outer_ip..],
                udp_len as u16,
                ipv4::PROTO_UDP,
                path.ttl,
                &s,
                &t,
            );
            let c = udp::ipv6_checksum(&s, &t, &d[udp_off..]);
            d[udp_off + 6..udp_off + 8].copy_from_slice(&c.to_be_bytes());
        }
        _ => return Err(OverlayError::BadPath),
    }
    ethernet::write_header(
        d,
        &path.outer_dst_mac,
        &path.outer_src_mac,
        ethertype(outer_v6),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Differential encryption: the tenant's traffic in clear VXLAN over a trusted circuit.
//
// ```text
// Eth | IP wan_a→wan_b | UDP sport=f(VNI) dport=4789 | VXLAN flags I+C, VNI=tenant |
//     Eth loopback MACs | client packet
// ```
// The C flag (a reserved bit of RFC 7348) says the payload is the client's packet, not ESP
// between the loopbacks; the receiver accepts it only on a circuit it trusts.

/// VXLAN flag bit (reserved in RFC 7348): the frame carries the client's packet in clear.
pub const FLAG_CLEAR: u8 = 0x20;

/// Encapsulates the client's IP packet in `pkt` (no Ethernet header) for `path` in clear VXLAN
/// (no ESP; the loopbacks only give the inner Ethernet addresses).
pub fn encapsulate_clear<B: PacketBuf>(
    path: &OverlayPath,
    pkt: &mut B,
) -> Result<(), OverlayError> {
    let (outer_v6, _) = path.families()?;
    let client_v6 = match pkt.data().first().map(|b| b >> 4) {
        Some(4) => false,
        Some(6) => true,
        _ => return Err(OverlayError::BadPath),
    };
    let hdr = ethernet::HEADER_LEN
        + ip_header_len(outer_v6)
        + udp::HEADER_LEN
        + vxlan::HEADER_LEN
        + ethernet::HEADER_LEN;
    if pkt.data().len() + hdr > usize::from(u16::MAX) {
        return Err(OverlayError::NoRoom);
    }
    if !pkt.prepend(hdr) {
        return Err(OverlayError::NoRoom);
    }
    let d = pkt.data_mut();
    let outer_ip = ethernet::HEADER_LEN;
    let udp_off = outer_ip + ip_header_len(outer_v6);
    let vxlan_off = udp_off + udp::HEADER_LEN;
    let inner_eth = vxlan_off + vxlan::HEADER_LEN;
    ethernet::write_header(
        &mut d[inner_eth..],
        &path.inner_dst_mac,
        &path.inner_src_mac,
        ethertype(client_v6),
    );
    let sport = source_port(path.vni.wrapping_mul(0x0100_0193));
    write_outer(d, path, outer_v6, vxlan_off, FLAG_CLEAR, sport)?;
    Ok(())
}

/// What [`parse_clear`] found in a clear overlay frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearInfo {
    pub vni: u32,
    /// The peer's WAN address (who sent it, over which circuit).
    pub outer_src: IpAddr,
    /// Where the client's IP packet starts, and its next header (4: IPv4, 41: IPv6).
    pub client_off: usize,
    pub next_header: u8,
    /// Where the UDP datagram, and so the client's packet, ends.
    pub end: usize,
}

/// The VXLAN flags of an overlay frame (Ethernet, IP, UDP to 4789), if it is one.
pub fn vxlan_flags(frame: &[u8]) -> Option<u8> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let outer = parse_ip(
        &frame[ethernet::HEADER_LEN..],
        eth.ethertype(),
        OverlayError::OuterIp,
    )
    .ok()?;
    if outer.protocol != ipv4::PROTO_UDP {
        return None;
    }
    frame
        .get(ethernet::HEADER_LEN + outer.payload.start + udp::HEADER_LEN)
        .copied()
}

/// Parses a clear overlay frame (VXLAN with the C flag): outer headers checked like
/// [`parse_outer`]'s, then the inner Ethernet header of an IPv4 or IPv6 packet.
pub fn parse_clear(frame: &[u8]) -> Result<ClearInfo, OverlayError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| OverlayError::OuterEthernet)?;
    let outer_ip = ethernet::HEADER_LEN;
    let outer = parse_ip(&frame[outer_ip..], eth.ethertype(), OverlayError::OuterIp)?;
    if outer.protocol != ipv4::PROTO_UDP {
        return Err(OverlayError::OuterIp);
    }
    let udp_off = outer_ip + outer.payload.start;
    let dgram = udp::Datagram::new_checked(&frame[udp_off..outer_ip + outer.payload.end])
        .map_err(|_| OverlayError::Udp)?;
    if dgram.dst_port() != vxlan::PORT {
        return Err(OverlayError::WrongPort);
    }
    let checksum_ok = match (outer.src, outer.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => udp::verify_ipv4(&s, &t, dgram.datagram()),
        (IpAddr::V6(s), IpAddr::V6(t)) => udp::verify_ipv6(&s, &t, dgram.datagram()),
        _ => false,
    };
    if !checksum_ok {
        return Err(OverlayError::Udp);
    }
    let vx = vxlan::Header::new_checked(dgram.payload()).map_err(|_| OverlayError::NotVxlan)?;
    if vx.flags() & FLAG_CLEAR == 0 {
        return Err(OverlayError::NotVxlan);
    }
    let inner_eth = udp_off + udp::HEADER_LEN + vxlan::HEADER_LEN;
    let inner =
        ethernet::Frame::new_checked(vx.payload()).map_err(|_| OverlayError::InnerEthernet)?;
    let next_header = match inner.ethertype() {
        ethernet::ETHERTYPE_IPV4 => esp::wire::NEXT_HEADER_IPV4,
        ethernet::ETHERTYPE_IPV6 => esp::wire::NEXT_HEADER_IPV6,
        _ => return Err(OverlayError::InnerEthernet),
    };
    // The client's packet ends where the UDP datagram does (Ethernet padding left out).
    let end = udp_off + dgram.len();
    let client_off = inner_eth + ethernet::HEADER_LEN;
    if client_off >= end {
        return Err(OverlayError::InnerIp);
    }
    Ok(ClearInfo {
        vni: vx.vni(),
        outer_src: outer.src,
        client_off,
        next_header,
        end,
    })
}

/// What [`parse_outer`] found in a received overlay frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuterInfo {
    /// The tenant's segment.
    pub vni: u32,
    /// The ESP packet's SPI: the key of the inbound SA lookup.
    pub spi: u32,
    /// The peer's WAN address (the circuit it came over) and ours.
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    /// The UDP source port (what the peer derived from the SPI).
    pub src_port: u16,
    /// The peer's loopback and ours.
    pub loopback_src: IpAddr,
    pub loopback_dst: IpAddr,
    /// Where the ESP packet lies in the frame (Ethernet padding and anything past the IP and
    /// UDP lengths left out); for a parity packet, its payload.
    pub esp_range: Range<usize>,
    /// Where the VXLAN header starts (FEC marks live there).
    pub vxlan_off: usize,
    /// An FEC parity packet (inner protocol [`fec::PROTO_PARITY`]), not ESP.
    pub parity: bool,
}

/// An IP header found by `parse_ip`: addresses, protocol, and the payload's offset and
/// length relative to the header's start.
struct IpFound {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload: Range<usize>,
}

/// Reads the IP header at the start of `b` for the Ethernet type `ethertype`; `err` for any
/// fault (wrong type or version, truncated, bad IPv4 checksum, a fragment).
#[inline]
fn parse_ip(b: &[u8], ethertype: u16, err: OverlayError) -> Result<IpFound, OverlayError> {
    match ethertype {
        ethernet::ETHERTYPE_IPV4 => {
            let p = ipv4::Packet::new_checked(b).map_err(|_| err)?;
            // MF set or a non-zero offset: a fragment, which the overlay never sends.
            if !p.verify_checksum() || be16(b, 6) & 0x3fff != 0 {
                return Err(err);
            }
            Ok(IpFound {
                src: IpAddr::V4(p.src()),
                dst: IpAddr::V4(p.dst()),
                protocol: p.protocol(),
                payload: p.header_len()..p.total_len(),
            })
        }
        ethernet::ETHERTYPE_IPV6 => {
            let p = ipv6::Packet::new_checked(b).map_err(|_| err)?;
            Ok(IpFound {
                src: IpAddr::V6(p.src()),
                dst: IpAddr::V6(p.dst()),
                protocol: p.next_header(),
                payload: ipv6::HEADER_LEN..ipv6::HEADER_LEN + p.payload_len(),
            })
        }
        _ => Err(err),
    }
}

/// Validates a received overlay frame up to the ESP packet: outer Ethernet (IPv4 or IPv6),
/// outer IP (IPv4 header checksum, no fragment, protocol UDP), UDP (length, destination port
/// 4789, checksum: verified when present over IPv4, required over IPv6), VXLAN (I flag),
/// inner Ethernet, inner IP with protocol 50, and an ESP packet at least as long as the
/// shortest one. Never panics, whatever the bytes.
pub fn parse_outer(frame: &[u8]) -> Result<OuterInfo, OverlayError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| OverlayError::OuterEthernet)?;
    let et = eth.ethertype();
    if et != ethernet::ETHERTYPE_IPV4 && et != ethernet::ETHERTYPE_IPV6 {
        return Err(OverlayError::OuterEthernet);
    }
    let outer_ip = ethernet::HEADER_LEN;
    let outer = parse_ip(&frame[outer_ip..], et, OverlayError::OuterIp)?;
    if outer.protocol != ipv4::PROTO_UDP {
        return Err(OverlayError::OuterIp);
    }
    let udp_off = outer_ip + outer.payload.start;
    let ip_payload = &frame[udp_off..outer_ip + outer.payload.end];
    let dgram = udp::Datagram::new_checked(ip_payload).map_err(|_| OverlayError::Udp)?;
    if dgram.dst_port() != vxlan::PORT {
        return Err(OverlayError::WrongPort);
    }
    let checksum_ok = match (outer.src, outer.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => udp::verify_ipv4(&s, &t, dgram.datagram()),
        (IpAddr::V6(s), IpAddr::V6(t)) => udp::verify_ipv6(&s, &t, dgram.datagram()),
        _ => false,
    };
    if !checksum_ok {
        return Err(OverlayError::Udp);
    }
    let vx = vxlan::Header::new_checked(dgram.payload()).map_err(|_| OverlayError::NotVxlan)?;
    let inner_eth_off = udp_off + udp::HEADER_LEN + vxlan::HEADER_LEN;
    let inner_eth =
        ethernet::Frame::new_checked(vx.payload()).map_err(|_| OverlayError::InnerEthernet)?;
    let et = inner_eth.ethertype();
    if et != ethernet::ETHERTYPE_IPV4 && et != ethernet::ETHERTYPE_IPV6 {
        return Err(OverlayError::InnerEthernet);
    }
    let inner = parse_ip(inner_eth.payload(), et, OverlayError::InnerIp)?;
    let parity = inner.protocol == crate::fec::PROTO_PARITY;
    if inner.protocol != PROTO_ESP && !parity {
        return Err(OverlayError::NotEsp);
    }
    let inner_ip_off = inner_eth_off + ethernet::HEADER_LEN;
    let esp_range = inner_ip_off + inner.payload.start..inner_ip_off + inner.payload.end;
    let esp = frame
        .get(esp_range.clone())
        .filter(|e| e.len() >= esp::wire::MIN_LEN)
        .ok_or(OverlayError::Esp(EspError::Malformed))?;
    Ok(OuterInfo {
        vni: vx.vni(),
        spi: u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]),
        outer_src: outer.src,
        outer_dst: outer.dst,
        src_port: dgram.src_port(),
        loopback_src: inner.src,
        loopback_dst: inner.dst,
        esp_range,
        vxlan_off: udp_off + udp::HEADER_LEN,
        parity,
    })
}

/// Decapsulates the frame in `pkt` that [`parse_outer`] described in `info`: cuts the buffer
/// to the ESP packet (`set_len` then `adj`), opens it with `sa` (the inbound SA for
/// `info.spi`) and strips the ESP header and IV, so the buffer holds exactly the client's IP
/// packet. Returns its next header (4: IPv4, 41: IPv6). On error the packet must be dropped.
pub fn decapsulate<B: PacketBuf>(
    sa: &mut InboundSa,
    pkt: &mut B,
    info: &OuterInfo,
) -> Result<u8, OverlayError> {
    open_esp(sa, pkt, &info.esp_range)
}

// ---------------------------------------------------------------------------------------------
// Plain RFC 4303 tunnel mode, for third-party IPsec gateways.
//
// ```text
// ESP:            Eth | IP local→gateway proto 50 | ESP SPI,seq | IV | enc(client packet | pad | nh) | ICV
// ESP in UDP:     Eth | IP local→gateway proto 17 | UDP 4500→4500 | ESP ...            (RFC 3948)
// ```
// In UDP, the first four bytes after the UDP header tell ESP (a non-zero SPI) from IKE (the
// zero "non-ESP marker"); a single byte 0xFF is a NAT keepalive (RFC 3948 §2.2, §2.3).

/// The IKE / ESP-in-UDP port (RFC 3948).
pub const NAT_T_PORT: u16 = 4500;

/// Everything [`encapsulate_plain`] writes around the ESP packet: one SA over one circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainPath {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// Our circuit address and the gateway's (one family).
    pub src: IpAddr,
    pub dst: IpAddr,
    /// ESP in UDP 4500 (RFC 3948) instead of IP protocol 50.
    pub udp: bool,
    pub ttl: u8,
}

impl PlainPath {
    /// The headers in front of the ESP packet.
    pub fn header_len(&self) -> usize {
        ethernet::HEADER_LEN
            + ip_header_len(self.src.is_ipv6())
            + if self.udp { udp::HEADER_LEN } else { 0 }
    }
}

/// Encapsulates the client's IP packet in `pkt` (no Ethernet header) in plain tunnel mode:
/// sealed by `sa`, then (UDP and) the outer IP header with DF set, and Ethernet. Returns the
/// sequence number used. Errors as [`encapsulate`].
pub fn encapsulate_plain<B: PacketBuf>(
    path: &PlainPath,
    sa: &mut OutboundSa,
    pkt: &mut B,
) -> Result<u64, OverlayError> {
    let v6 = match (path.src, path.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(OverlayError::BadPath),
    };
    let hdr = path.header_len();
    if pkt.data().len() + hdr + esp::wire::MAX_OVERHEAD > usize::from(u16::MAX) {
        return Err(OverlayError::NoRoom);
    }
    let need = hdr + esp::wire::PAYLOAD_OFFSET;
    if !pkt.prepend(need) || !pkt.adj(need) {
        return Err(OverlayError::NoRoom);
    }
    let seq = sa.seal(pkt)?;
    let esp_len = pkt.data().len();
    if !pkt.prepend(hdr) {
        return Err(OverlayError::NoRoom);
    }
    let d = pkt.data_mut();
    if d.len() != hdr + esp_len {
        return Err(OverlayError::NoRoom);
    }
    let ip_off = ethernet::HEADER_LEN;
    let l4_off = ip_off + ip_header_len(v6);
    let (proto, l4_len) = if path.udp {
        let len = udp::HEADER_LEN + esp_len;
        udp::write_header(&mut d[l4_off..], NAT_T_PORT, NAT_T_PORT, len as u16, 0);
        (ipv4::PROTO_UDP, len)
    } else {
        (PROTO_ESP, esp_len)
    };
    match (path.src, path.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            let h = &mut d[ip_off..];
            ipv4::write_header(
                h,
                (ipv4::MIN_HEADER_LEN + l4_len) as u16,
                path.ttl,
                proto,
                s,
                t,
            );
            let old = be16(h, 6);
            h[6] |= 0x40;
            let c = checksum::update16(be16(h, 10), old, be16(h, 6));
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => {
            ipv6::write_header(&mut d[ip_off..], l4_len as u16, proto, path.ttl, &s, &t);
            if path.udp {
                // RFC 3948 §2.1 allows a zero checksum over IPv4 only.
                let c = udp::ipv6_checksum(&s, &t, &d[l4_off..]);
                d[l4_off + 6..l4_off + 8].copy_from_slice(&c.to_be_bytes());
            }
        }
        _ => return Err(OverlayError::BadPath),
    }
    ethernet::write_header(d, &path.dst_mac, &path.src_mac, ethertype(v6));
    Ok(seq)
}

/// What [`parse_plain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainFrame {
    /// An ESP packet (directly in IP, or in UDP 4500 when `udp`).
    Esp {
        spi: u32,
        outer_src: IpAddr,
        outer_dst: IpAddr,
        udp: bool,
        esp_range: Range<usize>,
    },
    /// A NAT keepalive on UDP 4500: consumed.
    NatKeepalive,
    /// IKE on UDP 4500 (the non-ESP marker): for the slow path.
    Ike,
}

/// Parses a frame carrying ESP in IP (protocol 50) or in UDP 4500 to one of our addresses
/// (the caller checked the destination and the protocol or port). Never panics.
pub fn parse_plain(frame: &[u8]) -> Result<PlainFrame, OverlayError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| OverlayError::OuterEthernet)?;
    let ip_off = ethernet::HEADER_LEN;
    let outer = parse_ip(&frame[ip_off..], eth.ethertype(), OverlayError::OuterIp)?;
    let payload = ip_off + outer.payload.start..ip_off + outer.payload.end;
    let (esp_range, udp) = match outer.protocol {
        PROTO_ESP => (payload, false),
        ipv4::PROTO_UDP => {
            let dgram = udp::Datagram::new_checked(&frame[payload.clone()])
                .map_err(|_| OverlayError::Udp)?;
            if dgram.dst_port() != NAT_T_PORT {
                return Err(OverlayError::WrongPort);
            }
            let ok = match (outer.src, outer.dst) {
                (IpAddr::V4(s), IpAddr::V4(t)) => udp::verify_ipv4(&s, &t, dgram.datagram()),
                (IpAddr::V6(s), IpAddr::V6(t)) => udp::verify_ipv6(&s, &t, dgram.datagram()),
                _ => false,
            };
            if !ok {
                return Err(OverlayError::Udp);
            }
            let body = dgram.payload();
            if body == [0xff] {
                return Ok(PlainFrame::NatKeepalive);
            }
            if body.len() >= 4 && body[..4] == [0, 0, 0, 0] {
                return Ok(PlainFrame::Ike);
            }
            let start = payload.start + udp::HEADER_LEN;
            (start..start + body.len(), true)
        }
        _ => return Err(OverlayError::OuterIp),
    };
    let esp = frame
        .get(esp_range.clone())
        .filter(|e| e.len() >= esp::wire::MIN_LEN)
        .ok_or(OverlayError::Esp(EspError::Malformed))?;
    Ok(PlainFrame::Esp {
        spi: u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]),
        outer_src: outer.src,
        outer_dst: outer.dst,
        udp,
        esp_range,
    })
}

/// Opens the ESP packet at `esp_range` of the frame in `pkt` with `sa` and leaves exactly
/// the client's IP packet in the buffer; returns its next header. For both the overlay
/// ([`OuterInfo::esp_range`]) and plain tunnel mode.
pub fn open_esp<B: PacketBuf>(
    sa: &mut InboundSa,
    pkt: &mut B,
    esp_range: &Range<usize>,
) -> Result<u8, OverlayError> {
    let r = esp_range;
    if r.start > r.end || r.end > pkt.data().len() {
        return Err(OverlayError::Esp(EspError::Malformed));
    }
    if !pkt.set_len(r.end) || !pkt.adj(r.start) {
        return Err(OverlayError::NoRoom);
    }
    let opened = sa.open(pkt)?;
    if !pkt.adj(opened.inner.start) {
        return Err(OverlayError::Esp(EspError::Malformed));
    }
    Ok(opened.next_header)
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
