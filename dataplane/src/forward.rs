//! The first pipeline: IPv4/IPv6 routing between ports, with the router's own duties (ARP and
//! neighbor discovery for its addresses and next hops, echo replies, TTL / hop limit and ICMP
//! time exceeded). Sans-IO: `process` takes one frame in a buffer the caller owns and a table
//! snapshot, rewrites the frame in place and returns a verdict; side effects for the control
//! thread (neighbors learned, solicitations wanted) go into `Context`. The DPDK worker loop is
//! a thin layer over this, and the unit tests drive it with plain byte buffers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::counters::DropReason;
use crate::route::{NextHop, TenantHop};
use crate::tables::{is_link_local, PortInfo, Tables};
use crate::tunnel::{self, SaState};
use crate::wire::{arp, ethernet, icmp, ipv4, ipv6, MacAddr, WireError, BROADCAST_MAC};

/// A packet buffer that can grow at the front (headroom) and change length: an mbuf in the
/// data plane, a `Vec` with headroom in tests.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Adds `n` bytes in front of the data; false if there is no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front of the data (they become headroom, like
    /// `rte_pktmbuf_adj`); false, and nothing changes, if the data is shorter than `n`.
    fn adj(&mut self, n: usize) -> bool;
    /// Sets the data length (shrinks, or grows into tailroom); false if it does not fit.
    fn set_len(&mut self, len: usize) -> bool;
}

/// A packet buffer in ordinary memory, with headroom like an mbuf's: for tests, fuzzing and
/// tools that drive the pipeline without DPDK.
pub struct ByteBuf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl ByteBuf {
    /// Headroom and capacity match a default mbuf (128 + 2048 bytes).
    pub const HEADROOM: usize = 128;
    pub const CAPACITY: usize = 2048;

    /// A buffer holding `frame` (at most `CAPACITY` bytes; longer frames are cut).
    pub fn new(frame: &[u8]) -> Self {
        Self::with_headroom(frame, Self::HEADROOM)
    }

    /// Like `new` with `headroom` bytes in front instead of the default mbuf's: for a
    /// mempool built with more headroom (the IPv6-over-IPv6 overlay needs 140 bytes).
    pub fn with_headroom(frame: &[u8], headroom: usize) -> Self {
        let len = frame.len().min(Self::CAPACITY);
        let mut bytes = vec![0u8; headroom + Self::CAPACITY];
        bytes[headroom..headroom + len].copy_from_slice(&frame[..len]);
        Self {
            bytes,
            start: headroom,
            end: headroom + len,
        }
    }

    /// Puts `frame` back at the original headroom without allocating (benchmarks reuse their
    /// buffers). Frames longer than the room after the headroom are cut.
    pub fn refill(&mut self, frame: &[u8], headroom: usize) {
        let headroom = headroom.min(self.bytes.len());
        let len = frame.len().min(self.bytes.len() - headroom);
        self.bytes[headroom..headroom + len].copy_from_slice(&frame[..len]);
        self.start = headroom;
        self.end = headroom + len;
    }
}

impl PacketBuf for ByteBuf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }

    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }

    fn set_len(&mut self, len: usize) -> bool {
        if self.start + len > self.bytes.len() {
            return false;
        }
        self.end = self.start + len;
        true
    }
}

/// What to do with the frame after `process`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this port (index into `Tables::ports`); the frame was rewritten.
    Forward(u16),
    /// A reply the router itself built in the buffer; transmit on this port.
    Reply(u16),
    /// Handled, nothing to send (an ARP reply or NA that taught us a neighbor).
    Consumed,
    Drop(DropReason),
    /// The packet's SA belongs to another worker: pass the frame, unchanged since `stage`,
    /// to that worker, which goes on from there ([`process_handoff`]).
    Handoff {
        worker: u16,
        stage: Stage,
    },
}

/// Where a handed-off packet resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// From the start: a received frame, untouched.
    Frame,
    /// At the route lookup of this tenant: TTL already decremented.
    Tenant(u16),
}

/// A worker's own state for `process`: the side effects of the current burst (bounded so the
/// fast path never allocates; what overflows is dropped, since learning and solicitation are
/// retried by the protocols themselves) and its route cache.
#[derive(Debug)]
pub struct Context {
    pub learned: Bounded<(u16, IpAddr, MacAddr)>,
    pub solicit: Bounded<(u16, IpAddr)>,
    /// ICMP errors this worker may still send in the current interval (RFC 1812 4.3.2.8 and
    /// RFC 4443 2.4(f) ask routers to rate-limit them).
    pub icmp_error_budget: u32,
    pub cache: RouteCache,
    /// The SAs this worker owns.
    pub sas: SaState,
    /// Packets sealed / opened, and NAT keepalives seen, in the current burst (the worker
    /// adds them to its counters).
    pub encrypted: u64,
    pub decrypted: u64,
    pub nat_keepalives: u64,
    /// Tenant packets sent and received in clear VXLAN (differential encryption).
    pub clear_out: u64,
    pub clear_in: u64,
    /// The path monitors (worker 0 only; the others hand probes to it).
    pub prober: Option<Box<crate::multipath::Prober>>,
}

/// A per-worker, direct-mapped cache of IPv4 forwarding decisions: destination → adjacency
/// (egress port, both MAC addresses, egress MTU). One probe replaces the longest-prefix match,
/// the neighbor lookup and the check for the router's own addresses. Entries are 8 bytes and
/// point into a small adjacency table, so the cache stays in L1 beside the packets.
///
/// An entry is valid only for the table generation it was made from (its low 24 bits; a stale
/// entry would have to survive 2^24 publications untouched to alias), so any publication (a
/// route or neighbor change) invalidates the whole cache at once, without the control thread
/// touching it.
#[derive(Debug)]
pub struct RouteCache {
    entries: Box<[CacheEntry]>,
    adjacencies: Vec<Adjacency>,
    /// The generation the adjacency table was built for.
    adjacency_generation: u64,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(8))]
struct CacheEntry {
    dst: u32,
    /// Low 24 bits: the table generation; high 8 bits: the adjacency index.
    tag: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adjacency {
    port: u16,
    mtu: u16,
    /// Destination then source MAC: the 12 bytes written over the frame's Ethernet addresses.
    macs: [u8; 12],
}

const CACHE_SLOTS: usize = 16384;
/// Adjacencies per generation (the index has 8 bits).
const MAX_ADJACENCIES: usize = 256;
const GENERATION_MASK: u32 = 0x00ff_ffff;

impl Default for RouteCache {
    fn default() -> Self {
        Self {
            entries: vec![CacheEntry::default(); CACHE_SLOTS].into_boxed_slice(),
            adjacencies: Vec::with_capacity(MAX_ADJACENCIES),
            adjacency_generation: 0,
        }
    }
}

impl RouteCache {
    #[inline(always)]
    fn slot(dst: u32) -> usize {
        (dst.wrapping_mul(0x9e37_79b1) >> (32 - CACHE_SLOTS.trailing_zeros())) as usize
    }

    /// Never 0, so a fresh (all-zero) entry matches no generation.
    #[inline(always)]
    fn tag(generation: u64) -> u32 {
        ((generation as u32) & GENERATION_MASK).max(1)
    }

    /// Caches `dst` → `adj` for `generation`; does nothing when the adjacency table of this
    /// generation is full (those destinations then take the full path).
    fn insert(&mut self, generation: u64, dst: u32, adj: Adjacency) {
        if self.adjacency_generation != generation {
            self.adjacencies.clear();
            self.adjacency_generation = generation;
        }
        let index = match self.adjacencies.iter().position(|a| *a == adj) {
            Some(i) => i,
            None if self.adjacencies.len() < MAX_ADJACENCIES => {
                self.adjacencies.push(adj);
                self.adjacencies.len() - 1
            }
            None => return,
        };
        self.entries[Self::slot(dst)] = CacheEntry {
            dst,
            tag: Self::tag(generation) | ((index as u32) << 24),
        };
    }
}

impl Default for Context {
    fn default() -> Self {
        const NOWHERE: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Self {
            learned: Bounded::new((0, NOWHERE, [0; 6])),
            solicit: Bounded::new((0, NOWHERE)),
            icmp_error_budget: 100,
            cache: RouteCache::default(),
            sas: SaState::default(),
            encrypted: 0,
            decrypted: 0,
            nat_keepalives: 0,
            clear_out: 0,
            clear_in: 0,
            prober: None,
        }
    }
}

pub const EFFECTS_CAPACITY: usize = 32;

#[derive(Debug)]
pub struct Bounded<T: Copy> {
    items: [T; EFFECTS_CAPACITY],
    len: usize,
}

impl<T: Copy + PartialEq> Bounded<T> {
    fn new(filler: T) -> Self {
        Self {
            items: [filler; EFFECTS_CAPACITY],
            len: 0,
        }
    }

    /// Adds `item` unless it is already there or the buffer is full.
    pub fn push(&mut self, item: T) {
        if self.len < EFFECTS_CAPACITY && !self.as_slice().contains(&item) {
            self.items[self.len] = item;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

const DEFAULT_TTL: u8 = 64;
/// RFC 1812 4.3.2.3: an ICMP error carries as much of the original as fits in 576 bytes.
const ICMP4_ERROR_MAX: usize = 576;
/// RFC 4443 2.4(c): as much as fits in the minimum IPv6 MTU.
const ICMP6_ERROR_MAX: usize = 1280;

/// Processes one frame received on port `in_port`.
#[inline]
pub fn process<B: PacketBuf>(t: &Tables, in_port: u16, pkt: &mut B, fx: &mut Context) -> Verdict {
    match FastPath::new(t, in_port, &fx.cache) {
        Some(fast) => {
            // An internet-facing circuit carries no transit traffic.
            if !fast.internet {
                if let Some(out) = fast.forward(pkt.data_mut()) {
                    return Verdict::Forward(out);
                }
            }
            if let Some(port) = t.ports.get(usize::from(in_port)) {
                if let Some(v) = tunnel::fast_receive(t, in_port, port, pkt, fx) {
                    return v;
                }
            }
        }
        None => {
            if let Some(port) = t.ports.get(usize::from(in_port)) {
                if let Some(v) = tunnel::fast_encrypt(t, port, pkt, fx) {
                    return v;
                }
            }
        }
    }
    process_slow(t, in_port, pkt, fx)
}

/// Goes on with a packet another worker handed over at `stage`.
pub fn process_handoff<B: PacketBuf>(
    t: &Tables,
    in_port: u16,
    stage: Stage,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    match stage {
        Stage::Frame => process_slow(t, in_port, pkt, fx),
        Stage::Tenant(tn) => {
            let ingress = Ingress {
                port: in_port,
                src_mac: BROADCAST_MAC,
                tenant: Some(tn),
            };
            tunnel::tenant_route(t, tn, ingress, pkt, fx)
        }
    }
}

/// The common case, with everything it needs for one burst hoisted out of the per-packet
/// loop: a unicast IPv4 frame for our MAC, a 20-byte header with a good checksum and TTL > 1,
/// to a destination in the route cache. Anything else (every error included) is left to
/// `process_slow`, which counts it.
#[derive(Clone, Copy)]
struct FastPath<'a> {
    mac: MacAddr,
    /// The port is internet-facing: no forwarding (tunnel traffic only).
    internet: bool,
    tag: u32,
    entries: &'a [CacheEntry],
    adjacencies: &'a [Adjacency],
}

impl<'a> FastPath<'a> {
    #[inline]
    fn new(t: &Tables, in_port: u16, cache: &'a RouteCache) -> Option<Self> {
        let port = t.ports.get(usize::from(in_port))?;
        if port.tenant.is_some() {
            return None; // a tenant's LAN: routed in the tenant's table
        }
        Some(Self {
            mac: port.mac,
            internet: port.internet,
            tag: RouteCache::tag(t.generation),
            entries: &cache.entries,
            adjacencies: &cache.adjacencies,
        })
    }

    /// Forwards the frame in place and returns the egress port, or `None` for the full path
    /// (the frame is then untouched).
    #[inline(always)]
    fn forward(&self, d: &mut [u8]) -> Option<u16> {
        if d.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN {
            return None;
        }
        // EtherType 0x0800, then version 4 with a 5-word header: bytes 12..15 as one word.
        if d[12..15] != [0x08, 0x00, 0x45] || d[0..6] != self.mac {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
        let ttl = d[22];
        if total < ipv4::MIN_HEADER_LEN || ethernet::HEADER_LEN + total > d.len() || ttl <= 1 {
            return None;
        }
        // The header checksum, five 32-bit words at a time. The one's-complement sum does not
        // depend on byte order (RFC 1071 section 2(B)), so the words are added as they lie in
        // memory: a valid header still sums to all ones.
        let mut acc = 0u64;
        for w in d[14..34].chunks_exact(4) {
            acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
        acc = (acc & 0xffff_ffff) + (acc >> 32);
        acc = (acc & 0xffff) + (acc >> 16);
        acc = (acc & 0xffff) + (acc >> 16);
        if acc != 0xffff {
            return None;
        }
        let dst = u32::from_be_bytes([d[30], d[31], d[32], d[33]]);
        let e = &self.entries[RouteCache::slot(dst)];
        if e.dst != dst || e.tag & GENERATION_MASK != self.tag {
            return None;
        }
        let adj = self.adjacencies.get((e.tag >> 24) as usize)?;
        if total > usize::from(adj.mtu) {
            return None;
        }
        // TTL is the high byte of header word 4: decrementing it adds 0x0100 to the checksum
        // (RFC 1141, with the end-around carry).
        d[22] = ttl - 1;
        let sum = u32::from(u16::from_be_bytes([d[24], d[25]])) + 0x0100;
        let check = (sum + (sum >> 16)) as u16;
        d[24..26].copy_from_slice(&check.to_be_bytes());
        d[0..12].copy_from_slice(&adj.macs);
        Some(adj.port)
    }
}

/// Everything but the fast path's common case.
fn process_slow<B: PacketBuf>(t: &Tables, in_port: u16, pkt: &mut B, fx: &mut Context) -> Verdict {
    let Some(port) = t.ports.get(usize::from(in_port)) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let frame = match ethernet::Frame::new_checked(pkt.data()) {
        Ok(f) => f,
        Err(e) => return Verdict::Drop(wire_drop(e)),
    };
    let dst_mac = frame.dst();
    let ingress = Ingress {
        port: in_port,
        src_mac: frame.src(),
        tenant: port.tenant,
    };
    let for_us = dst_mac == port.mac;
    let group = ethernet::is_multicast(&dst_mac);
    if !for_us && !group {
        return Verdict::Drop(DropReason::NotForUs);
    }
    match frame.ethertype() {
        ethernet::ETHERTYPE_IPV4 if for_us => ipv4_in(t, ingress, port, pkt, fx),
        ethernet::ETHERTYPE_IPV6 => ipv6_in(t, ingress, port, pkt, fx, for_us),
        ethernet::ETHERTYPE_ARP => arp_in(in_port, port, pkt, fx),
        ethernet::ETHERTYPE_IPV4 => Verdict::Drop(DropReason::NotForwardable),
        _ => Verdict::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Where a frame came from: replies the router builds fall back to the frame's sender when the
/// neighbor table does not know the destination yet (the first echo request after an ARP
/// exchange arrives before the control thread has published the new neighbor).
#[derive(Clone, Copy)]
pub(crate) struct Ingress {
    pub port: u16,
    /// The sender's MAC; broadcast (no fallback) for a packet that came out of a tunnel.
    pub src_mac: MacAddr,
    /// The tenant whose table routes the packet (`None`: the underlay's).
    pub tenant: Option<u16>,
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::BadChecksum => DropReason::BadChecksum,
        WireError::Truncated | WireError::Malformed => DropReason::Malformed,
    }
}

fn arp_in<B: PacketBuf>(in_port: u16, port: &PortInfo, pkt: &mut B, fx: &mut Context) -> Verdict {
    let data = pkt.data_mut();
    let (sender_mac, sender_ip, target_ip, op) =
        match arp::Packet::new_checked(&data[ethernet::HEADER_LEN..]) {
            Ok(a) => (a.sender_mac(), a.sender_ip(), a.target_ip(), a.operation()),
            Err(e) => return Verdict::Drop(wire_drop(e)),
        };
    if ethernet::is_multicast(&sender_mac) {
        return Verdict::Drop(DropReason::Malformed);
    }
    // Learn hosts on our subnets only (RFC 826 "merge"), never from probes (sender 0.0.0.0).
    if !sender_ip.is_unspecified()
        && port.v4_source_for(sender_ip).is_some()
        && !port.owns_v4(sender_ip)
    {
        fx.learned
            .push((in_port, IpAddr::V4(sender_ip), sender_mac));
    }
    if op == arp::OP_REQUEST && port.owns_v4(target_ip) {
        ethernet::write_header(data, &sender_mac, &port.mac, ethernet::ETHERTYPE_ARP);
        arp::write(
            &mut data[ethernet::HEADER_LEN..],
            arp::OP_REPLY,
            &port.mac,
            target_ip,
            &sender_mac,
            sender_ip,
        );
        return Verdict::Reply(in_port);
    }
    Verdict::Consumed
}

fn ipv4_in<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let data = &mut pkt.data_mut()[ethernet::HEADER_LEN..];
    let mut ip = match ipv4::Packet::new_checked(&mut *data) {
        Ok(p) => p,
        Err(e) => return Verdict::Drop(wire_drop(e)),
    };
    if !ip.verify_checksum() {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    let dst = ip.dst();
    if port.owns_v4(dst) || t.ports.iter().any(|p| p.owns_v4(dst)) {
        if ingress.tenant.is_none() {
            if let Some(frame) = tunnel::tunnel_frame(pkt.data(), t.probe_port) {
                return tunnel::receive(t, ingress, frame, pkt, fx);
            }
        }
        return ipv4_local(t, ingress, pkt, fx);
    }
    if port.internet {
        return Verdict::Drop(DropReason::WanFiltered);
    }
    if dst.is_broadcast() || dst.is_multicast() || dst.is_unspecified() || ip.src().is_multicast() {
        return Verdict::Drop(DropReason::NotForwardable);
    }
    if ip.ttl() <= 1 {
        return icmp4_error(
            t,
            ingress,
            port,
            pkt,
            fx,
            icmp::V4_TIME_EXCEEDED,
            0,
            0,
            DropReason::TtlExceeded,
        );
    }
    if let Some(tn) = ingress.tenant {
        ip.decrement_ttl();
        return tunnel::tenant_route(t, tn, ingress, pkt, fx);
    }
    let Some(hop) = t.routes.lookup_v4(dst) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let total = ip.total_len();
    let next = hop.via.unwrap_or(IpAddr::V4(dst));
    let Some(mac) = t.neighbor(hop.port, next) else {
        fx.solicit.push((hop.port, next));
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    let out = &t.ports[usize::from(hop.port)];
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(mac);
    macs[6..].copy_from_slice(&out.mac);
    fx.cache.insert(
        t.generation,
        u32::from(dst),
        Adjacency {
            port: hop.port,
            mtu: out.mtu,
            macs,
        },
    );
    if total > usize::from(out.mtu) {
        return Verdict::Drop(DropReason::MtuExceeded);
    }
    ip.decrement_ttl();
    pkt.data_mut()[0..12].copy_from_slice(&macs);
    Verdict::Forward(hop.port)
}

/// IPv4 addressed to the router: answer echo requests, drop the rest (slow path comes later).
pub(crate) fn ipv4_local<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let data = &mut pkt.data_mut()[ethernet::HEADER_LEN..];
    let Ok(mut ip) = ipv4::Packet::new_checked(&mut *data) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    if ip.protocol() != ipv4::PROTO_ICMP || ip.is_later_fragment() {
        return Verdict::Drop(DropReason::LocalUnhandled);
    }
    let (src, dst, hlen, total) = (ip.src(), ip.dst(), ip.header_len(), ip.total_len());
    let msg = ip.payload_mut();
    if !icmp::v4_checksum_ok(msg) {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    if msg[0] != icmp::V4_ECHO_REQUEST {
        return Verdict::Drop(DropReason::LocalUnhandled);
    }
    if t.ports
        .get(usize::from(ingress.port))
        .is_some_and(|p| p.internet)
    {
        // Pings from the internet share the ICMP budget (no amplification, no flood).
        if fx.icmp_error_budget == 0 {
            return Verdict::Drop(DropReason::RateLimited);
        }
        fx.icmp_error_budget -= 1;
    }
    msg[0] = icmp::V4_ECHO_REPLY;
    icmp::v4_fill_checksum(msg);
    // Rewrite the header (options dropped: shift the message up if there were any).
    let data = pkt.data_mut();
    let ip_start = ethernet::HEADER_LEN;
    if hlen != ipv4::MIN_HEADER_LEN {
        data.copy_within(
            ip_start + hlen..ip_start + total,
            ip_start + ipv4::MIN_HEADER_LEN,
        );
    }
    let new_total = total - hlen + ipv4::MIN_HEADER_LEN;
    ipv4::write_header(
        &mut data[ip_start..],
        new_total as u16,
        DEFAULT_TTL,
        ipv4::PROTO_ICMP,
        dst,
        src,
    );
    if !pkt.set_len(ip_start + new_total) {
        return Verdict::Drop(DropReason::Malformed);
    }
    route_own_packet(t, ingress, pkt, IpAddr::V4(src), fx)
}

/// Builds an ICMPv4 error about the packet in `pkt` in place (the original moves behind the
/// new headers, using the buffer's headroom) and routes it back to the sender. `rest` fills
/// the ICMP header's second word (the next-hop MTU of "fragmentation needed"); `reason` is
/// the drop counted when no error is sent.
#[allow(clippy::too_many_arguments)]
pub(crate) fn icmp4_error<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
    kind: u8,
    code: u8,
    rest: u32,
    reason: DropReason,
) -> Verdict {
    if fx.icmp_error_budget == 0 {
        return Verdict::Drop(reason);
    }
    let Some(our_src) = port.first_v4() else {
        return Verdict::Drop(reason);
    };
    let (orig_src, orig_total) = {
        let Ok(ip) = ipv4::Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        // Never an error about an ICMP error (RFC 1812 4.3.2.7) — approximated as "about any
        // ICMP that is not an echo request" — nor about a non-initial fragment.
        if ip.is_later_fragment() {
            return Verdict::Drop(reason);
        }
        if ip.protocol() == ipv4::PROTO_ICMP
            && ip
                .payload()
                .first()
                .is_some_and(|&k| k != icmp::V4_ECHO_REQUEST)
        {
            return Verdict::Drop(reason);
        }
        (ip.src(), ip.total_len())
    };
    const NEW: usize = ipv4::MIN_HEADER_LEN + 8;
    if !pkt.prepend(NEW) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let quoted = orig_total.min(ICMP4_ERROR_MAX - NEW);
    let total = NEW + quoted;
    if !pkt.set_len(ethernet::HEADER_LEN + total) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let data = pkt.data_mut();
    let ip_start = ethernet::HEADER_LEN;
    ipv4::write_header(
        &mut data[ip_start..],
        total as u16,
        DEFAULT_TTL,
        ipv4::PROTO_ICMP,
        our_src,
        orig_src,
    );
    let msg = &mut data[ip_start + ipv4::MIN_HEADER_LEN..ip_start + total];
    msg[0] = kind;
    msg[1] = code;
    msg[4..8].copy_from_slice(&rest.to_be_bytes());
    icmp::v4_fill_checksum(msg);
    fx.icmp_error_budget -= 1;
    match route_own_packet(t, ingress, pkt, IpAddr::V4(orig_src), fx) {
        Verdict::Drop(DropReason::NeighborUnresolved | DropReason::NoRoute) => {
            Verdict::Drop(reason)
        }
        v => v,
    }
}

fn ipv6_in<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
    for_us: bool,
) -> Verdict {
    let data = &mut pkt.data_mut()[ethernet::HEADER_LEN..];
    let mut ip = match ipv6::Packet::new_checked(&mut *data) {
        Ok(p) => p,
        Err(e) => return Verdict::Drop(wire_drop(e)),
    };
    let dst = ip.dst();
    let src = ip.src();
    if dst.is_multicast() || port.owns_v6(&dst) || t.ports.iter().any(|p| p.owns_v6(&dst)) {
        if for_us && !dst.is_multicast() && ingress.tenant.is_none() {
            if let Some(frame) = tunnel::tunnel_frame(pkt.data(), t.probe_port) {
                return tunnel::receive(t, ingress, frame, pkt, fx);
            }
        }
        return ipv6_local(t, ingress, port, pkt, fx);
    }
    if port.internet {
        return Verdict::Drop(DropReason::WanFiltered);
    }
    if !for_us
        || src.is_multicast()
        || is_link_local(&dst)
        || is_link_local(&src)
        || dst.is_unspecified()
    {
        return Verdict::Drop(DropReason::NotForwardable);
    }
    if ip.hop_limit() <= 1 {
        return icmp6_error(
            t,
            ingress,
            port,
            pkt,
            fx,
            icmp::V6_TIME_EXCEEDED,
            0,
            0,
            DropReason::TtlExceeded,
        );
    }
    if let Some(tn) = ingress.tenant {
        ip.decrement_hop_limit();
        return tunnel::tenant_route(t, tn, ingress, pkt, fx);
    }
    let Some(hop) = t.routes.lookup_v6(dst) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let len = ipv6::HEADER_LEN + ip.payload_len();
    let next = hop.via.unwrap_or(IpAddr::V6(dst));
    let Some(mac) = t.neighbor(hop.port, next) else {
        fx.solicit.push((hop.port, next));
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    let out = &t.ports[usize::from(hop.port)];
    if len > usize::from(out.mtu) {
        return Verdict::Drop(DropReason::MtuExceeded);
    }
    ip.decrement_hop_limit();
    let data = pkt.data_mut();
    data[0..6].copy_from_slice(mac);
    data[6..12].copy_from_slice(&out.mac);
    Verdict::Forward(hop.port)
}

/// IPv6 to the router or to a multicast group: neighbor discovery and echo.
pub(crate) fn ipv6_local<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let in_port = ingress.port;
    let data = &pkt.data()[ethernet::HEADER_LEN..];
    let Ok(ip) = ipv6::Packet::new_checked(data) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let (src, dst, hop_limit) = (ip.src(), ip.dst(), ip.hop_limit());
    if ip.next_header() != ipv6::NEXT_HEADER_ICMPV6 {
        return Verdict::Drop(DropReason::LocalUnhandled);
    }
    let msg = ip.payload();
    if msg.len() < 4 {
        return Verdict::Drop(DropReason::Malformed);
    }
    if !icmp::v6_checksum_ok(&src, &dst, msg) {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    match msg[0] {
        icmp::V6_NEIGHBOR_SOLICIT | icmp::V6_NEIGHBOR_ADVERT => {
            // RFC 4861 7.1.1 / 7.1.2: ND messages must arrive with hop limit 255.
            if hop_limit != 255 {
                return Verdict::Drop(DropReason::Malformed);
            }
            let nd = match icmp::NeighborMessage::new_checked(msg) {
                Ok(nd) => nd,
                Err(e) => return Verdict::Drop(wire_drop(e)),
            };
            let target = nd.target();
            if nd.kind() == icmp::V6_NEIGHBOR_ADVERT {
                let mac = match nd.link_layer_option(icmp::ND_OPT_TARGET_LL) {
                    Ok(Some(mac)) => mac,
                    Ok(None) => ethernet::Frame::new_checked(pkt.data())
                        .map(|f| f.src())
                        .unwrap_or_default(),
                    Err(e) => return Verdict::Drop(wire_drop(e)),
                };
                if !target.is_multicast() && !ethernet::is_multicast(&mac) && !port.owns_v6(&target)
                {
                    fx.learned.push((in_port, IpAddr::V6(target), mac));
                }
                return Verdict::Consumed;
            }
            let source_ll = match nd.link_layer_option(icmp::ND_OPT_SOURCE_LL) {
                Ok(o) => o,
                Err(e) => return Verdict::Drop(wire_drop(e)),
            };
            if !port.owns_v6(&target) {
                return Verdict::Consumed;
            }
            if let Some(mac) = source_ll.filter(|m| !ethernet::is_multicast(m)) {
                if !src.is_unspecified() {
                    fx.learned.push((in_port, IpAddr::V6(src), mac));
                }
            }
            // Answer: to the solicitor (or all nodes for DAD), from the target address.
            let (reply_dst, dst_mac, flags) = if src.is_unspecified() {
                let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                (
                    all_nodes,
                    ipv6::multicast_mac(&all_nodes),
                    icmp::NA_ROUTER | icmp::NA_OVERRIDE,
                )
            } else {
                let Ok(f) = ethernet::Frame::new_checked(pkt.data()) else {
                    return Verdict::Drop(DropReason::Malformed);
                };
                (
                    src,
                    source_ll.unwrap_or(f.src()),
                    icmp::NA_ROUTER | icmp::NA_SOLICITED | icmp::NA_OVERRIDE,
                )
            };
            let len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + 32;
            if !pkt.set_len(len) {
                return Verdict::Drop(DropReason::NoBuffer);
            }
            let data = pkt.data_mut();
            ethernet::write_header(data, &dst_mac, &port.mac, ethernet::ETHERTYPE_IPV6);
            let ip_start = ethernet::HEADER_LEN;
            ipv6::write_header(
                &mut data[ip_start..],
                32,
                ipv6::NEXT_HEADER_ICMPV6,
                255,
                &target,
                &reply_dst,
            );
            let msg = &mut data[ip_start + ipv6::HEADER_LEN..len];
            icmp::write_neighbor_message(msg, icmp::V6_NEIGHBOR_ADVERT, flags, &target, &port.mac);
            icmp::v6_fill_checksum(&target, &reply_dst, msg);
            Verdict::Reply(in_port)
        }
        icmp::V6_ECHO_REQUEST if !dst.is_multicast() => {
            if port.internet {
                if fx.icmp_error_budget == 0 {
                    return Verdict::Drop(DropReason::RateLimited);
                }
                fx.icmp_error_budget -= 1;
            }
            let total = ipv6::HEADER_LEN + ip.payload_len();
            let data = pkt.data_mut();
            let ip_start = ethernet::HEADER_LEN;
            let plen = (total - ipv6::HEADER_LEN) as u16;
            ipv6::write_header(
                &mut data[ip_start..],
                plen,
                ipv6::NEXT_HEADER_ICMPV6,
                DEFAULT_TTL,
                &dst,
                &src,
            );
            let msg = &mut data[ip_start + ipv6::HEADER_LEN..ip_start + total];
            msg[0] = icmp::V6_ECHO_REPLY;
            icmp::v6_fill_checksum(&dst, &src, msg);
            if !pkt.set_len(ip_start + total) {
                return Verdict::Drop(DropReason::Malformed);
            }
            route_own_packet(t, ingress, pkt, IpAddr::V6(src), fx)
        }
        _ if dst.is_multicast() => Verdict::Consumed,
        _ => Verdict::Drop(DropReason::LocalUnhandled),
    }
}

/// The ICMPv6 counterpart of [`icmp4_error`]; `rest` is the MTU of "packet too big".
#[allow(clippy::too_many_arguments)]
pub(crate) fn icmp6_error<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
    kind: u8,
    code: u8,
    rest: u32,
    reason: DropReason,
) -> Verdict {
    if fx.icmp_error_budget == 0 {
        return Verdict::Drop(reason);
    }
    let Some(our_src) = port.first_v6() else {
        return Verdict::Drop(reason);
    };
    let (orig_src, orig_len) = {
        let Ok(ip) = ipv6::Packet::new_checked(&pkt.data()[ethernet::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        // RFC 4443 2.4(e): no error about an ICMPv6 error message (types below 128).
        if ip.next_header() == ipv6::NEXT_HEADER_ICMPV6
            && ip.payload().first().is_some_and(|&k| k < 128)
        {
            return Verdict::Drop(reason);
        }
        (ip.src(), ipv6::HEADER_LEN + ip.payload_len())
    };
    const NEW: usize = ipv6::HEADER_LEN + 8;
    if !pkt.prepend(NEW) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let quoted = orig_len.min(ICMP6_ERROR_MAX - NEW);
    let total = NEW + quoted;
    if !pkt.set_len(ethernet::HEADER_LEN + total) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let data = pkt.data_mut();
    let ip_start = ethernet::HEADER_LEN;
    let mlen = (total - ipv6::HEADER_LEN) as u16;
    ipv6::write_header(
        &mut data[ip_start..],
        mlen,
        ipv6::NEXT_HEADER_ICMPV6,
        DEFAULT_TTL,
        &our_src,
        &orig_src,
    );
    let msg = &mut data[ip_start + ipv6::HEADER_LEN..ip_start + total];
    msg[0] = kind;
    msg[1] = code;
    msg[4..8].copy_from_slice(&rest.to_be_bytes());
    icmp::v6_fill_checksum(&our_src, &orig_src, msg);
    fx.icmp_error_budget -= 1;
    match route_own_packet(t, ingress, pkt, IpAddr::V6(orig_src), fx) {
        Verdict::Drop(DropReason::NeighborUnresolved | DropReason::NoRoute) => {
            Verdict::Drop(reason)
        }
        v => v,
    }
}

/// Routes a packet the router built itself (IP header already written after the Ethernet
/// header): look up `dst` (in the ingress tenant's table, which may lead into a tunnel), fill
/// the Ethernet header. When the route leads back out of the ingress port and the neighbor
/// is not known yet, the frame goes to the sender's MAC.
fn route_own_packet<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    pkt: &mut B,
    dst: IpAddr,
    fx: &mut Context,
) -> Verdict {
    let hop = match ingress.tenant {
        None => t.routes.lookup(dst).copied(),
        Some(tn) => {
            let Some(tenant) = t.tenants.get(usize::from(tn)) else {
                return Verdict::Drop(DropReason::NoRoute);
            };
            match tenant.routes.lookup(dst).copied() {
                Some(TenantHop::Local(nh)) => Some(nh),
                Some(TenantHop::Tunnel { tunnel, circuit }) => {
                    let ethertype = if dst.is_ipv4() {
                        ethernet::ETHERTYPE_IPV4
                    } else {
                        ethernet::ETHERTYPE_IPV6
                    };
                    let d = pkt.data_mut();
                    ethernet::write_header(d, &BROADCAST_MAC, &BROADCAST_MAC, ethertype);
                    return match tunnel::send(
                        t,
                        tn,
                        usize::from(tunnel),
                        circuit,
                        None,
                        ingress,
                        pkt,
                        fx,
                    ) {
                        Verdict::Forward(p) => Verdict::Reply(p),
                        v => v,
                    };
                }
                None => None,
            }
        }
    };
    let Some(NextHop { port, via }) = hop else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let mac = match t.neighbor(port, via.unwrap_or(dst)) {
        Some(mac) => *mac,
        None if port == ingress.port && !ethernet::is_multicast(&ingress.src_mac) => {
            ingress.src_mac
        }
        None => return Verdict::Drop(DropReason::NeighborUnresolved),
    };
    let ethertype = if dst.is_ipv4() {
        ethernet::ETHERTYPE_IPV4
    } else {
        ethernet::ETHERTYPE_IPV6
    };
    let src_mac = t.ports[usize::from(port)].mac;
    ethernet::write_header(pkt.data_mut(), &mac, &src_mac, ethertype);
    Verdict::Reply(port)
}

/// Writes an ARP request or a neighbor solicitation for `target` on `port` into `buf`
/// (at least 86 bytes); returns the frame length, or None when the port has no address on the
/// target's subnet.
pub fn build_solicitation(port: &PortInfo, target: IpAddr, buf: &mut [u8]) -> Option<usize> {
    match target {
        IpAddr::V4(target) => {
            let src = port.v4_source_for(target)?;
            Some(arp::build_request(buf, &port.mac, src, target))
        }
        IpAddr::V6(target) => {
            let src = port
                .v6_source_for(&target)
                .or_else(|| port.v6.last().map(|n| n.addr()))?;
            let group = ipv6::solicited_node(&target);
            let len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + 32;
            if buf.len() < len {
                return None;
            }
            ethernet::write_header(
                buf,
                &ipv6::multicast_mac(&group),
                &port.mac,
                ethernet::ETHERTYPE_IPV6,
            );
            ipv6::write_header(
                &mut buf[ethernet::HEADER_LEN..],
                32,
                ipv6::NEXT_HEADER_ICMPV6,
                255,
                &src,
                &group,
            );
            let msg = &mut buf[ethernet::HEADER_LEN + ipv6::HEADER_LEN..len];
            icmp::write_neighbor_message(msg, icmp::V6_NEIGHBOR_SOLICIT, 0, &target, &port.mac);
            icmp::v6_fill_checksum(&src, &group, msg);
            Some(len)
        }
    }
}

/// The next hops the routes and tunnels point at, with their ports: what the workers keep
/// resolved.
pub fn next_hops(t: &Tables) -> impl Iterator<Item = (u16, IpAddr)> + '_ {
    t.routes
        .entries()
        .iter()
        .filter_map(|e| e.next_hop.via.map(|v| (e.next_hop.port, v)))
        .chain(tunnel::next_hops(t))
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
