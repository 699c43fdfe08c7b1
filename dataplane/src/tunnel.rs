//! Tenants and tunnels in the pipeline: a tenant's LAN traffic routed in the tenant's own
//! table, sealed into the SA of the peer its route names, and carried over one of the peer's
//! circuits; and the way back, from a circuit through the SA to the tenant's LAN.
//!
//! Two kinds of tunnel (ARCHITECTURE.md, "Wire format"):
//! - **overlay**, between two appliances: ESP between the loopbacks inside VXLAN
//!   ([`overlay::encapsulate`]); the same SA over every circuit of the peer, a different
//!   circuit changes only the outer headers;
//! - **plain** RFC 4303 tunnel mode to a third-party IPsec gateway, ESP in IP or in UDP 4500
//!   ([`overlay::encapsulate_plain`]).
//!
//! # Owning rule
//! An SA's state (sequence counter, replay window) belongs to one worker and is never shared:
//! - overlay, outbound: every worker has its own SPI (`out_spi + worker index`) and its own
//!   sequence numbers under the SA's one key, the IVs kept apart by the sender index
//!   ([`OutboundSa::with_sender`]); inbound: the peer's sender `s` (SPI `in_spi + s`) is
//!   owned by worker `s % workers`;
//! - plain: one SPI each way (a third-party gateway knows nothing else), owned by worker
//!   `SPI % workers` (by SPI, so a tunnel keeps its owner when the tables renumber it).
//!
//! A packet that reaches a worker which does not own its SA is handed to the owner
//! ([`Verdict::Handoff`]) before anything about it changes (inbound: before decryption;
//! outbound: after routing, resumed there), the way VPP's IPsec handoff nodes do. The receive
//! side scaling of the NIC keeps that rare: the UDP source port of an overlay SA is derived
//! from its SPI ([`overlay::source_port`]), so one SA's packets land on one queue.
//!
//! # MTU
//! The overhead is known per tunnel and circuit. An inner packet that does not fit the
//! circuit's MTU once encapsulated gets, when it may not be fragmented (IPv4 with DF, and all
//! of IPv6), an ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201)
//! back to its sender with the largest inner size that fits ([`max_inner_len`]). IPv4 without
//! DF that does not fit is dropped and counted (`mtu_exceeded`): the overlay never fragments,
//! neither the outer packet (it sets DF) nor the inner one. Hosts doing path MTU discovery
//! (the default of Linux, Windows and macOS for TCP) adapt; the tunnel MTU of every circuit
//! is shown by `sdwan-cli show sa SPI`.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::counters::{Counter, DropReason};
use crate::esp::{
    self, AeadKey, Backend, EspError, InboundSa, KeyError, OutboundSa, ReplayWindow, Suite,
};
use crate::fec;
use crate::forward::{self, Context, Ingress, PacketBuf, Stage, Verdict};
use crate::mbuf::MAX_BURST;
use crate::multipath::{self, MAX_PATHS};
use crate::overlay::{self, OverlayError, OverlayPath, PlainFrame, PlainPath, PROTO_ESP};
use crate::policy;
use crate::route::{NextHop, RouteTable, TenantHop};
use crate::tables::{addr_key, NeighborKey, PortInfo, SpiKey, Tables};
use crate::wire::{checksum, ethernet, icmp, ipv4, ipv6, vxlan, MacAddr, BROADCAST_MAC};

/// TTL / hop limit of the outer headers.
const OUTER_TTL: u8 = 64;

/// A tenant as configured: name, VNI, LAN ports (port indexes), routes.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    pub name: String,
    pub vni: u32,
    pub lan_ports: Vec<u16>,
    pub routes: Vec<(ipnet::IpNet, TenantHop)>,
}

/// A tenant's routing domain.
#[derive(Debug, Clone)]
pub struct TenantTable {
    pub name: String,
    pub vni: u32,
    /// Its LAN ports (indexes into `Tables::ports`); the first one's addresses are the
    /// source of ICMP errors about packets that came out of a tunnel.
    pub lan_ports: Vec<u16>,
    pub routes: RouteTable<TenantHop>,
}

/// How a tunnel's packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelKind {
    /// ESP between loopbacks inside VXLAN, to another appliance.
    Overlay,
    /// Plain RFC 4303 tunnel mode, ESP in IP (protocol 50).
    Esp,
    /// Plain tunnel mode in UDP 4500 (RFC 3948).
    EspUdp,
}

impl TunnelKind {
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Overlay => "overlay",
            TunnelKind::Esp => "esp",
            TunnelKind::EspUdp => "esp-udp",
        }
    }
}

/// One circuit of a tunnel: our WAN port, our address on it and the peer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CircuitInfo {
    pub port: u16,
    pub local: IpAddr,
    pub remote: IpAddr,
    /// The transport domain of our circuit (`internet`, `mpls-a`, ...).
    pub transport: String,
    /// Our circuit is a trusted (private) transport.
    pub trusted: bool,
}

/// A tunnel: one tenant's SA with one peer (both directions), and the circuits it uses.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelInfo {
    pub peer: String,
    pub tenant: u16,
    pub kind: TunnelKind,
    /// (ours, the peer's), overlay only.
    pub loopbacks: Option<(IpAddr, IpAddr)>,
    pub circuits: Vec<CircuitInfo>,
    /// The first outbound SPI (overlay: worker `w` sends with `out_spi + w`).
    pub out_spi: u32,
    /// The first inbound SPI (overlay: the peer's sender `s` uses `in_spi + s`).
    pub in_spi: u32,
    /// Inbound SPIs: [`SENDERS`] for an overlay tunnel, 1 for a plain one.
    pub senders: u32,
    #[serde(serialize_with = "serialize_suite")]
    pub suite: Suite,
    pub esn: bool,
    pub replay_window: u32,
    /// Where this tunnel's inbound SAs start in the workers' inbound slots.
    pub first_slot: u32,
    /// Overlay: the peer's index in `Tables::peers` (its paths); filled in by the tables.
    pub peer_index: Option<u16>,
    /// Which keying material the outbound and inbound SAs use: a worker keeps an SA (its
    /// sequence counter, its replay window) across table generations as long as the id stays,
    /// wherever the tunnel moves in the table, and sets up a new one when it changes. Unique
    /// per key and direction; 0: the tables number them (static configurations).
    #[serde(skip)]
    pub out_key: u64,
    #[serde(skip)]
    pub in_key: u64,
}

fn serialize_suite<S: serde::Serializer>(s: &Suite, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.name())
}

/// SPIs per overlay SA and direction: one per sending worker, so at most this many workers
/// send into an overlay tunnel.
pub const SENDERS: u32 = 16;

/// The keying material of a tunnel (key || salt), each way. Zeroed when dropped; never shown.
pub struct TunnelKeys {
    pub out: Zeroizing<Vec<u8>>,
    pub inbound: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TunnelKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelKeys(..)")
    }
}

impl TunnelInfo {
    /// The headers in front of the ESP packet, outer Ethernet excluded.
    pub fn header_len(&self, circuit: &CircuitInfo) -> usize {
        let outer_ip = if circuit.remote.is_ipv6() {
            ipv6::HEADER_LEN
        } else {
            ipv4::MIN_HEADER_LEN
        };
        match self.kind {
            TunnelKind::Overlay => {
                let inner_ip = match self.loopbacks {
                    Some((IpAddr::V6(_), _)) => ipv6::HEADER_LEN,
                    _ => ipv4::MIN_HEADER_LEN,
                };
                outer_ip + 8 + vxlan::HEADER_LEN + ethernet::HEADER_LEN + inner_ip
            }
            TunnelKind::Esp => outer_ip,
            TunnelKind::EspUdp => outer_ip + 8,
        }
    }

    /// Whether this tunnel sends: an inbound-only tunnel (an older SA of a peer kept through
    /// a rekey, make-before-break) has no outbound SPI (0 is reserved, RFC 4303 §2.1).
    #[inline]
    pub fn sends(&self) -> bool {
        self.out_spi != 0
    }

    /// Whether worker `w` of `workers` owns inbound slot `sender` of this tunnel.
    #[inline]
    pub(crate) fn inbound_owner(&self, _tunnel: usize, sender: u32, workers: u16) -> u16 {
        let w = u32::from(workers.max(1));
        match self.kind {
            TunnelKind::Overlay => (sender % w) as u16,
            _ => (self.in_spi % w) as u16,
        }
    }

    /// The worker that owns the outbound SA (`None`: every worker has its own).
    #[inline]
    pub(crate) fn outbound_owner(&self, _tunnel: usize, workers: u16) -> Option<u16> {
        // By SPI, not by the tunnel's place in the table: a tunnel that moves keeps its owner,
        // so its sequence counter is never restarted under the same key by another worker.
        match self.kind {
            TunnelKind::Overlay => None,
            _ => Some((self.out_spi % u32::from(workers.max(1))) as u16),
        }
    }
}

/// The largest inner IP packet that fits `mtu` once encapsulated with `header_len` bytes of
/// headers (outer Ethernet excluded): ESP adds its header and IV (16), padding to a multiple
/// of 4 with the 2 trailer bytes, and the ICV (16).
pub fn max_inner_len(mtu: u16, header_len: usize) -> usize {
    let room = usize::from(mtu).saturating_sub(header_len + esp::wire::PAYLOAD_OFFSET + 16);
    (room & !3).saturating_sub(2)
}

/// The outer IP packet's length for an inner packet of `inner` bytes.
#[inline]
fn outer_len(inner: usize, header_len: usize) -> usize {
    header_len + esp::wire::PAYLOAD_OFFSET + ((inner + 2 + 3) & !3) + 16
}

/// Per-SA counters a worker publishes for the management API (one writer each).
#[derive(Debug, Default)]
pub struct SaStat {
    pub packets: Counter,
    pub bytes: Counter,
    pub replay: Counter,
    pub replay_window: Counter,
    pub auth_failed: Counter,
    /// Malformed, bad next header, dummy, no room, sequence exhausted.
    pub other_drops: Counter,
    /// The highest sequence number sent (outbound) or accepted (inbound).
    pub seq: Counter,
    /// Bit `i`: circuit `i` of the tunnel carried packets of this SA.
    pub circuits: Counter,
}

impl SaStat {
    fn publish(&self, c: &esp::SaCounters, seq: u64, circuits: u32) {
        self.packets.set(c.packets);
        self.bytes.set(c.bytes);
        self.replay.set(c.replay);
        self.replay_window.set(c.replay_window);
        self.auth_failed.set(c.auth_failed);
        self.other_drops
            .set(c.malformed + c.bad_next_header + c.dummy + c.no_room + c.seq_exhausted);
        self.seq.set(seq);
        self.circuits.set(u64::from(circuits));
    }
}

/// A worker's published SA counters: `outbound[tunnel]`, `inbound[slot]`; and its packets
/// per path, `[peer * MAX_PATHS + path]`.
#[derive(Debug, Default)]
pub struct SaStats {
    pub outbound: Vec<SaStat>,
    pub inbound: Vec<SaStat>,
    pub path_tx: Vec<Counter>,
    pub path_rx: Vec<Counter>,
    /// The flows steered in the last 30 s, copied out every 500 ms (the worker only tries the
    /// lock: it never waits for it).
    pub flows: std::sync::Mutex<Vec<policy::FlowEntry>>,
}

/// A worker's SAs: the outbound SA of every tunnel it sends into and the inbound SAs it owns;
/// and the caches of its fast path ([`fast_encrypt`]).
#[derive(Debug)]
pub struct SaState {
    pub worker: u16,
    pub workers: u16,
    backend: Backend,
    /// The key id of each outbound SA (by tunnel) and of each inbound slot with its sender
    /// index (0: none of this worker's), as of `synced_generation`.
    out_ids: Vec<u64>,
    in_ids: Vec<(u64, u32)>,
    synced_generation: u64,
    /// Where the management API finds `stats` (replaced when the SAs change).
    stats_cell: Arc<arc_swap::ArcSwap<SaStats>>,
    outbound: Vec<Option<OutboundSa>>,
    inbound: Vec<Option<InboundSa>>,
    out_circuits: Vec<u32>,
    in_circuits: Vec<u32>,
    /// Each tunnel's overlay peer (`NO_PEER`: a plain tunnel), for the path counters.
    tunnel_peer: Vec<u16>,
    /// Packets sent / received per path: `[peer * MAX_PATHS + path]`.
    path_tx: Vec<u64>,
    path_rx: Vec<u64>,
    stats: Arc<SaStats>,
    routes: Box<[TunnelRoute]>,
    /// `templates[tunnel * MAX_CIRCUITS + circuit]`.
    templates: Vec<Template>,
    lan_routes: Box<[LanRoute]>,
    /// Batch mode (the worker's): the fast path prepares packets and leaves the sealing to
    /// [`seal_pending`] once per burst, so the AEAD runs over many packets per call.
    pub defer: bool,
    /// The index in the current burst of the packet being processed (batch mode).
    pub burst_index: usize,
    /// Prepared packets of the burst: (index in the burst, tunnel, circuit).
    pending: [(u8, u16, u8); MAX_BURST],
    pending_len: usize,
    /// What to do with packets of the burst once sealed, for their policies: (index in the
    /// burst, tunnel, second circuit, k): k = 0 sends a copy on the circuit (replication),
    /// else the packet joins an FEC group of k whose parity goes on the circuit. The worker
    /// does it.
    pub copies: [(u8, u16, u8, u8); MAX_BURST],
    pub copies_len: usize,
    /// FEC encoders by tunnel and decoders by inbound slot, made when first needed.
    fec_tx: Vec<Option<Box<fec::Encoder>>>,
    fec_rx: Vec<Option<Box<fec::Decoder>>>,
    /// Packets FEC rebuilt that the worker must feed back to the pipeline (frames, and the
    /// ports they came in on), at most [`REBUILT_SLOTS`] per burst.
    pub rebuilt: Box<[[u8; REBUILT_MAX]; REBUILT_SLOTS]>,
    pub rebuilt_len: [usize; REBUILT_SLOTS],
    pub rebuilt_port: [u16; REBUILT_SLOTS],
    pub rebuilt_count: usize,
    /// FEC: parity packets sent; packets rebuilt and accepted; originals that came after
    /// their group was rebuilt (late, not lost: the parity overtook them).
    pub fec_parity_sent: u64,
    pub fec_rebuilt: u64,
    pub fec_late: u64,

    /// The next sequence number of spread packets, by tunnel.
    pub spread_seq: Vec<u32>,
    /// Set by `receive` for a spread packet it opened: (inbound slot, its sequence number).
    /// The worker puts the packet through that slot's reorder buffer.
    pub held: Option<(u32, u32)>,
    /// Packets spread so far (weighted spreading walks its wheel with it).
    pub spread: u32,
    /// The flows policies steered lately (`show flows`).
    pub flows: policy::FlowTable,
}

impl Default for SaState {
    fn default() -> Self {
        Self {
            worker: 0,
            workers: 1,
            backend: Backend::default(),
            out_ids: Vec::new(),
            in_ids: Vec::new(),
            synced_generation: 0,
            stats_cell: Arc::new(arc_swap::ArcSwap::from_pointee(SaStats::default())),
            outbound: Vec::new(),
            inbound: Vec::new(),
            out_circuits: Vec::new(),
            in_circuits: Vec::new(),
            tunnel_peer: Vec::new(),
            path_tx: Vec::new(),
            path_rx: Vec::new(),
            stats: Arc::default(),
            routes: vec![TunnelRoute::default(); ROUTE_SLOTS].into_boxed_slice(),
            templates: Vec::new(),
            lan_routes: vec![LanRoute::default(); ROUTE_SLOTS].into_boxed_slice(),
            defer: false,
            burst_index: 0,
            pending: [(0, 0, 0); MAX_BURST],
            pending_len: 0,
            copies: [(0, 0, 0, 0); MAX_BURST],
            copies_len: 0,
            fec_tx: Vec::new(),
            fec_rx: Vec::new(),
            // Built on the heap: REBUILT_SLOTS × REBUILT_MAX is 147 KiB.
            rebuilt: vec![[0; REBUILT_MAX]; REBUILT_SLOTS]
                .into_boxed_slice()
                .try_into()
                .expect("REBUILT_SLOTS elements"),
            rebuilt_len: [0; REBUILT_SLOTS],
            rebuilt_port: [0; REBUILT_SLOTS],
            rebuilt_count: 0,
            fec_parity_sent: 0,
            fec_rebuilt: 0,
            fec_late: 0,

            spread_seq: Vec::new(),
            held: None,
            spread: 0,
            flows: policy::FlowTable::default(),
        }
    }
}

/// Circuits per tunnel (a mask of them is a `u32`; the product's limit is 16).
const MAX_CIRCUITS: usize = 16;
/// Slots of the tunnel route cache (direct-mapped, 16 bytes each: 64 KiB).
const ROUTE_SLOTS: usize = 4096;
const NO_CIRCUIT: u8 = u8::MAX;
/// `SaState::copies`' k of a spread packet: number it (no second path).
pub const SEQUENCE: u8 = u8::MAX;
/// The longest frame FEC rebuilds (headers and an ESP packet of [`fec::MAX_ESP`]).
pub const REBUILT_MAX: usize = fec::MAX_ESP + 256;
/// Rebuilt packets a burst may leave for the worker to feed back: one per packet of the burst,
/// since a packet (data or parity) completes at most its own group. With fewer slots a burst
/// that completed more groups lost the extra rebuilds silently: after a stall of a loaded
/// host, a burst of parity packets that overtook their groups' last data packets does that.
pub const REBUILT_SLOTS: usize = MAX_BURST;
/// Flows seen in the last 30 s (in 100 ms ticks) are shown.
const FLOW_RECENT_TICKS: u32 = 300;
/// `SaState::tunnel_peer` of a plain tunnel.
const NO_PEER: u16 = u16::MAX;

/// A cached tenant route into a tunnel: (tenant, IPv4 destination) -> (tunnel, circuit), valid
/// for one table generation (`tag`, never 0), like the underlay's route cache.
#[derive(Debug, Clone, Copy, Default)]
struct TunnelRoute {
    dst: u32,
    tag: u32,
    tenant: u16,
    tunnel: u16,
    circuit: u8,
}

/// A cached tenant route to a LAN host, for what comes out of a tunnel: (tenant, IPv4
/// destination) -> egress port, its MTU and the frame's two MAC addresses; valid for one table
/// generation. Only ever filled for destinations that are not the box's own.
#[derive(Debug, Clone, Copy, Default)]
struct LanRoute {
    dst: u32,
    tag: u32,
    tenant: u16,
    port: u16,
    mtu: u16,
    macs: [u8; 12],
}

/// The headers in front of the ESP packet on one circuit of one tunnel, as the slow path
/// last wrote them (IPv4 outer; IPv4 loopbacks for the overlay): the fast path copies them
/// and patches the lengths and checksums. Valid for one table generation (the next hop's MAC).
#[derive(Debug, Clone)]
struct Template {
    generation: u64,
    port: u16,
    len: usize,
    kind: TunnelKind,
    /// The largest inner packet that fits the circuit's MTU.
    max_inner: usize,
    bytes: [u8; 128],
}

impl Default for Template {
    fn default() -> Self {
        Self {
            generation: 0,
            port: 0,
            len: 0,
            kind: TunnelKind::Esp,
            max_inner: 0,
            bytes: [0; 128],
        }
    }
}

#[inline]
fn route_slot(tenant: u16, dst: u32) -> usize {
    ((dst ^ u32::from(tenant).rotate_left(16)).wrapping_mul(0x9e37_79b1) >> 20) as usize
        % ROUTE_SLOTS
}

#[inline]
fn generation_tag(generation: u64) -> u32 {
    (generation as u32).max(1)
}

/// Why a worker's SAs could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaSetupError {
    #[error("tunnel to {peer}: {what} key: {error}")]
    Key {
        peer: String,
        what: &'static str,
        error: String,
    },
    #[error("tunnel to {peer}: {error}")]
    Window { peer: String, error: String },
    #[error("{workers} workers, but an overlay SA has {SENDERS} SPIs, one per sending worker")]
    TooManyWorkers { workers: u16 },
}

impl SaState {
    /// The SAs worker `worker` of `workers` owns, keyed from `keys` (parallel to `tunnels`).
    pub fn new(
        worker: u16,
        workers: u16,
        tunnels: &[TunnelInfo],
        keys: &[TunnelKeys],
        backend: Backend,
    ) -> Result<SaState, SaSetupError> {
        let mut s = SaState::empty(worker, workers, backend)?;
        s.rebuild(tunnels, |i| keys.get(i))?;
        Ok(s)
    }

    /// A worker's state with no SA yet; [`sync`](Self::sync) adds them.
    pub fn empty(worker: u16, workers: u16, backend: Backend) -> Result<SaState, SaSetupError> {
        if u32::from(workers) > SENDERS {
            return Err(SaSetupError::TooManyWorkers { workers });
        }
        Ok(SaState {
            worker,
            workers: workers.max(1),
            backend,
            ..SaState::default()
        })
    }

    /// Follows the tunnels of a new table generation (the worker calls this once per burst;
    /// it returns at once unless the generation changed): keeps every SA whose key id is still
    /// there, wherever its tunnel moved, with its sequence counter, replay window and FEC
    /// state; sets up the new ones from the keys in the tables; drops the rest (their keys are
    /// zeroed). Returns whether the inbound slots changed (the worker then releases what its
    /// reorder buffers hold). An SA whose key cannot be set up stays absent: its packets are
    /// dropped as `unknown_spi` (the control plane checks keys before it publishes them).
    pub fn sync(&mut self, t: &Tables) -> bool {
        if t.generation == self.synced_generation {
            return false;
        }
        self.synced_generation = t.generation;
        let before = self.in_ids.clone();
        if self
            .rebuild(&t.tunnels, |i| t.keys.get(i).and_then(|k| k.as_deref()))
            .is_err()
        {
            // Only a worker count above SENDERS fails as a whole, and `empty` refused that.
        }
        before != self.in_ids
    }

    /// The outbound key id this worker wants for tunnel `i`: 0 when it does not send on it.
    fn wanted_out(&self, i: usize, t: &TunnelInfo) -> u64 {
        if !t.sends() {
            return 0;
        }
        match t.outbound_owner(i, self.workers) {
            None => t.out_key,
            Some(owner) if owner == self.worker => t.out_key,
            Some(_) => 0,
        }
    }

    /// Makes the SAs those of `tunnels` (see [`sync`](Self::sync)).
    fn rebuild<'k>(
        &mut self,
        tunnels: &[TunnelInfo],
        key_of: impl Fn(usize) -> Option<&'k TunnelKeys>,
    ) -> Result<(), SaSetupError> {
        let wanted_out: Vec<u64> = tunnels
            .iter()
            .enumerate()
            .map(|(i, t)| self.wanted_out(i, t))
            .collect();
        let mut wanted_in: Vec<(u64, u32)> = Vec::new();
        for (i, t) in tunnels.iter().enumerate() {
            for sender in 0..t.senders {
                let owned = t.inbound_owner(i, sender, self.workers) == self.worker;
                wanted_in.push(if owned {
                    (t.in_key, sender)
                } else {
                    (0, sender)
                });
            }
        }
        let peers_now: Vec<u16> = tunnels
            .iter()
            .map(|t| match t.kind {
                TunnelKind::Overlay => t.peer_index.unwrap_or(NO_PEER),
                _ => NO_PEER,
            })
            .collect();
        if wanted_out == self.out_ids && wanted_in == self.in_ids && peers_now == self.tunnel_peer {
            return Ok(());
        }
        let key_err = |t: &TunnelInfo, what: &'static str, e: KeyError| SaSetupError::Key {
            peer: t.peer.clone(),
            what,
            error: e.to_string(),
        };
        let mut first_error = None;
        // What to keep, by key id: (SA, circuits used, next spread number, FEC encoder).
        type KeptOut = (OutboundSa, u32, u32, Option<Box<fec::Encoder>>);
        let mut old_out: std::collections::HashMap<u64, KeptOut> = Default::default();
        for (i, id) in std::mem::take(&mut self.out_ids).into_iter().enumerate() {
            if let Some(Some(sa)) = self.outbound.get_mut(i).map(Option::take) {
                let fec = self.fec_tx.get_mut(i).and_then(Option::take);
                let seq = self.spread_seq.get(i).copied().unwrap_or(0);
                let circuits = self.out_circuits.get(i).copied().unwrap_or(0);
                old_out.insert(id, (sa, circuits, seq, fec));
            }
        }
        type KeptIn = (InboundSa, u32, Option<Box<fec::Decoder>>);
        let mut old_in: std::collections::HashMap<(u64, u32), KeptIn> = Default::default();
        for (slot, id) in std::mem::take(&mut self.in_ids).into_iter().enumerate() {
            if let Some(Some(sa)) = self.inbound.get_mut(slot).map(Option::take) {
                let fec = self.fec_rx.get_mut(slot).and_then(Option::take);
                let circuits = self.in_circuits.get(slot).copied().unwrap_or(0);
                old_in.insert(id, (sa, circuits, fec));
            }
        }
        let n = tunnels.len();
        self.outbound = Vec::with_capacity(n);
        self.out_circuits = Vec::with_capacity(n);
        self.spread_seq = Vec::with_capacity(n);
        self.fec_tx = Vec::with_capacity(n);
        for (i, (t, &id)) in tunnels.iter().zip(&wanted_out).enumerate() {
            let mut kept = if id == 0 { None } else { old_out.remove(&id) };
            if kept.is_none() && id != 0 {
                let built = key_of(i)
                    .ok_or(KeyError::BadLength {
                        expected: t.suite.keymat_len(),
                        got: 0,
                    })
                    .and_then(|k| AeadKey::new(self.backend, t.suite, &k.out))
                    .map_err(|e| key_err(t, "outbound", e));
                match built {
                    Ok(key) => {
                        let sa = match t.outbound_owner(i, self.workers) {
                            None => OutboundSa::new(
                                t.out_spi.wrapping_add(u32::from(self.worker)),
                                t.esn,
                                key,
                            )
                            .with_sender(self.worker as u8),
                            Some(_) => OutboundSa::new(t.out_spi, t.esn, key),
                        };
                        kept = Some((sa, 0, 0, None));
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match kept {
                Some((sa, circuits, seq, fec)) => {
                    self.outbound.push(Some(sa));
                    self.out_circuits.push(circuits);
                    self.spread_seq.push(seq);
                    self.fec_tx.push(fec);
                }
                None => {
                    self.outbound.push(None);
                    self.out_circuits.push(0);
                    self.spread_seq.push(0);
                    self.fec_tx.push(None);
                }
            }
        }
        self.out_ids = wanted_out;
        let slots = wanted_in.len();
        self.inbound = Vec::with_capacity(slots);
        self.in_circuits = Vec::with_capacity(slots);
        self.fec_rx = Vec::with_capacity(slots);
        let mut slot = 0usize;
        for (i, t) in tunnels.iter().enumerate() {
            // One key schedule for all the tunnel's inbound SPIs this worker sets up.
            let mut shared: Option<Arc<AeadKey>> = None;
            for sender in 0..t.senders {
                let id = wanted_in.get(slot).copied().unwrap_or((0, sender));
                slot += 1;
                let mut kept = if id.0 == 0 { None } else { old_in.remove(&id) };
                if kept.is_none() && id.0 != 0 {
                    let key = match &shared {
                        Some(k) => Ok(k.clone()),
                        None => key_of(i)
                            .ok_or(KeyError::BadLength {
                                expected: t.suite.keymat_len(),
                                got: 0,
                            })
                            .and_then(|k| AeadKey::new(self.backend, t.suite, &k.inbound))
                            .map(Arc::new),
                    };
                    if let Ok(k) = &key {
                        shared = Some(k.clone());
                    }
                    let built = key.map_err(|e| key_err(t, "inbound", e)).and_then(|key| {
                        let window = if t.replay_window == 0 {
                            Ok(ReplayWindow::disabled(t.esn))
                        } else {
                            ReplayWindow::new(t.replay_window, t.esn)
                        }
                        .map_err(|e| SaSetupError::Window {
                            peer: t.peer.clone(),
                            error: e.to_string(),
                        })?;
                        Ok(InboundSa::new(t.in_spi.wrapping_add(sender), key, window))
                    });
                    match built {
                        Ok(sa) => kept = Some((sa, 0, None)),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match kept {
                    Some((sa, circuits, fec)) => {
                        self.inbound.push(Some(sa));
                        self.in_circuits.push(circuits);
                        self.fec_rx.push(fec);
                    }
                    None => {
                        self.inbound.push(None);
                        self.in_circuits.push(0);
                        self.fec_rx.push(None);
                    }
                }
            }
        }
        self.in_ids = wanted_in;
        // Path counters by overlay peer (the tables keep a peer's index while it stays).
        let peers = peers_now
            .iter()
            .filter(|&&p| p != NO_PEER)
            .map(|&p| usize::from(p) + 1)
            .max()
            .unwrap_or(0);
        self.tunnel_peer = peers_now;
        let path_slots = peers * MAX_PATHS;
        self.path_tx.resize(path_slots, 0);
        self.path_rx.resize(path_slots, 0);
        self.templates = vec![Template::default(); n * MAX_CIRCUITS];
        let stats = Arc::new(SaStats {
            outbound: (0..n).map(|_| SaStat::default()).collect(),
            inbound: (0..slots).map(|_| SaStat::default()).collect(),
            path_tx: (0..path_slots).map(|_| Counter::default()).collect(),
            path_rx: (0..path_slots).map(|_| Counter::default()).collect(),
            flows: std::sync::Mutex::default(),
        });
        self.stats = stats.clone();
        self.stats_cell.store(stats);
        self.publish();
        // The old SAs left in the maps are dropped here, their keys zeroed.
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The counters this worker publishes.
    pub fn stats(&self) -> Arc<SaStats> {
        self.stats.clone()
    }

    /// Where the current counters are, across SA changes (the engine keeps this).
    pub fn stats_cell(&self) -> Arc<arc_swap::ArcSwap<SaStats>> {
        self.stats_cell.clone()
    }

    /// Asks the worker, for the current packet of the burst once it is sealed, to send a
    /// copy on the second path or to add it to the tunnel's FEC group (nothing happens when
    /// the burst has no room left for the request).
    #[inline]
    pub fn request_second(&mut self, ti: usize, second: multipath::Second) {
        let (ci, k) = match second {
            multipath::Second::None => return,
            multipath::Second::Copy(ci) => (ci, 0),
            multipath::Second::Parity(ci, k) => (ci, k),
            multipath::Second::Sequence => (0, SEQUENCE),
        };
        if self.copies_len < MAX_BURST && self.burst_index < MAX_BURST {
            self.copies[self.copies_len] = (self.burst_index as u8, ti as u16, ci as u8, k);
            self.copies_len += 1;
        }
    }

    /// The FEC encoder of tunnel `ti` for groups of `k` (a new one when `k` changed).
    pub fn fec_encoder(&mut self, ti: usize, k: u8) -> Option<&mut fec::Encoder> {
        let slot = self.fec_tx.get_mut(ti)?;
        if slot.as_ref().is_none_or(|e| e.k() != k.clamp(2, 16)) {
            *slot = Some(Box::new(fec::Encoder::new(k)));
        }
        slot.as_deref_mut()
    }

    /// Inbound SA slots (of every worker; this worker owns some of them).
    pub fn inbound_slots(&self) -> usize {
        self.inbound.len()
    }

    /// The FEC decoder of inbound slot `slot`.
    fn fec_decoder(&mut self, slot: usize) -> Option<&mut fec::Decoder> {
        let d = self.fec_rx.get_mut(slot)?;
        Some(d.get_or_insert_with(Box::default))
    }

    /// Counts a packet sent on path `path` of overlay peer `peer`.
    #[inline]
    pub fn count_path_tx(&mut self, peer: u16, path: u8) {
        if let Some(c) = self
            .path_tx
            .get_mut(usize::from(peer) * MAX_PATHS + usize::from(path))
        {
            *c += 1;
        }
    }

    /// Counts a packet received on path `path` of overlay peer `peer`.
    #[inline]
    pub fn count_path_rx(&mut self, peer: u16, path: u8) {
        if let Some(c) = self
            .path_rx
            .get_mut(usize::from(peer) * MAX_PATHS + usize::from(path))
        {
            *c += 1;
        }
    }

    /// Advances the flow table's clock (the worker calls this every 100 ms) and, every fifth
    /// time, copies the recent flows out if the lock is free.
    pub fn flow_tick(&mut self) {
        self.flows.tick = self.flows.tick.wrapping_add(1);
        if !self.flows.tick.is_multiple_of(5) {
            return;
        }
        if let Ok(mut v) = self.stats.flows.try_lock() {
            v.clear();
            v.extend(self.flows.recent(FLOW_RECENT_TICKS).copied());
        }
    }

    /// Copies every SA's counters to the published block (the worker calls this now and then;
    /// a plain store per counter).
    pub fn publish(&self) {
        for (c, st) in self.path_tx.iter().zip(&self.stats.path_tx) {
            st.set(*c);
        }
        for (c, st) in self.path_rx.iter().zip(&self.stats.path_rx) {
            st.set(*c);
        }
        for (i, sa) in self.outbound.iter().enumerate() {
            if let (Some(sa), Some(st)) = (sa, self.stats.outbound.get(i)) {
                st.publish(&sa.counters, sa.last_seq(), self.out_circuits[i]);
            }
        }
        for (i, sa) in self.inbound.iter().enumerate() {
            if let (Some(sa), Some(st)) = (sa, self.stats.inbound.get(i)) {
                st.publish(&sa.counters, sa.window().top(), self.in_circuits[i]);
            }
        }
    }
}

/// The inner Ethernet address of an overlay endpoint: locally administered, from its loopback.
fn loopback_mac(a: IpAddr) -> MacAddr {
    let b = match a {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(v) => {
            let o = v.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

fn drop_for(e: OverlayError) -> DropReason {
    match e {
        OverlayError::Esp(e) => match e {
            EspError::Replay | EspError::ReplayWindow => DropReason::Replay,
            EspError::AuthFailed => DropReason::AuthFailed,
            EspError::UnknownSpi => DropReason::UnknownSpi,
            EspError::SequenceExhausted => DropReason::SeqExhausted,
            EspError::NoRoom => DropReason::NoBuffer,
            EspError::Malformed | EspError::Dummy | EspError::BadNextHeader => {
                DropReason::EspMalformed
            }
        },
        OverlayError::NoRoom => DropReason::NoBuffer,
        OverlayError::BadPath => DropReason::Malformed,
        _ => DropReason::TunnelMalformed,
    }
}

/// The inner packet's destination, and whether it is IPv6: the frame holds Ethernet and a
/// validated IP header.
#[inline]
fn inner_dst(d: &[u8]) -> Option<IpAddr> {
    let ip = d.get(ethernet::HEADER_LEN..)?;
    match ip.first()? >> 4 {
        4 => Some(IpAddr::V4(ipv4::Packet::new_checked(ip).ok()?.dst())),
        6 => Some(IpAddr::V6(ipv6::Packet::new_checked(ip).ok()?.dst())),
        _ => None,
    }
}

/// Routes a packet of tenant `tn` (Ethernet + IP, TTL already decremented) in the tenant's
/// table: to one of its LAN ports, to the box itself, or into a tunnel.
pub(crate) fn tenant_route<B: PacketBuf>(
    t: &Tables,
    tn: u16,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let Some(tenant) = t.tenants.get(usize::from(tn)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let Some(dst) = inner_dst(pkt.data()) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    // Steering policies apply to what comes from the tenant's LAN.
    let policy = if ingress.tenant == Some(tn) && tenant.lan_ports.contains(&ingress.port) {
        policy::classify_key(&t.policies, tn, pkt.data())
    } else {
        None
    };
    match policy
        .and_then(|(k, _)| t.policies.get(usize::from(k)))
        .map(|p| p.mode)
    {
        Some(policy::Mode::Drop) => return Verdict::Drop(DropReason::Policy),
        Some(policy::Mode::Breakout) => return breakout(t, dst, pkt, fx),
        _ => {}
    }
    let Some(hop) = tenant.routes.lookup(dst).copied() else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    match hop {
        TenantHop::Local(nh) => local_out(t, tn, nh, dst, pkt, fx),
        TenantHop::Tunnel { tunnel, circuit } => {
            if let IpAddr::V4(d) = dst {
                let dst = u32::from(d);
                fx.sas.routes[route_slot(tn, dst)] = TunnelRoute {
                    dst,
                    tag: generation_tag(t.generation),
                    tenant: tn,
                    tunnel,
                    circuit: circuit.unwrap_or(NO_CIRCUIT),
                };
            }
            send(
                t,
                tn,
                usize::from(tunnel),
                circuit,
                policy,
                ingress,
                pkt,
                fx,
            )
        }
    }
}

/// Local internet breakout: out of the underlay's routes, not through a tunnel (no address
/// translation: the underlay must route the tenant's addresses).
fn breakout<B: PacketBuf>(t: &Tables, dst: IpAddr, pkt: &mut B, fx: &mut Context) -> Verdict {
    let Some(hop) = t.routes.lookup(dst).copied() else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let next = hop.via.unwrap_or(dst);
    let Some(mac) = t.neighbor(hop.port, next).copied() else {
        fx.solicit.push((hop.port, next));
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    let Some(out) = t.ports.get(usize::from(hop.port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let d = pkt.data_mut();
    if d.len() - ethernet::HEADER_LEN > usize::from(out.mtu) {
        return Verdict::Drop(DropReason::MtuExceeded);
    }
    d[0..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&out.mac);
    Verdict::Forward(hop.port)
}

/// Out of a LAN port: neighbor, MTU, Ethernet addresses.
fn local_out<B: PacketBuf>(
    t: &Tables,
    tn: u16,
    nh: NextHop,
    dst: IpAddr,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let next = nh.via.unwrap_or(dst);
    let Some(mac) = t.neighbor(nh.port, next).copied() else {
        fx.solicit.push((nh.port, next));
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    let Some(out) = t.ports.get(usize::from(nh.port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if let IpAddr::V4(d) = dst {
        let dst = u32::from(d);
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&mac);
        macs[6..].copy_from_slice(&out.mac);
        fx.sas.lan_routes[route_slot(tn, dst)] = LanRoute {
            dst,
            tag: generation_tag(t.generation),
            tenant: tn,
            port: nh.port,
            mtu: out.mtu,
            macs,
        };
    }
    let d = pkt.data_mut();
    if d.len() - ethernet::HEADER_LEN > usize::from(out.mtu) {
        return Verdict::Drop(DropReason::MtuExceeded);
    }
    d[0..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&out.mac);
    Verdict::Forward(nh.port)
}

/// Seals the packet (Ethernet + IP) of tenant `tn` into tunnel `ti` and sends it over the
/// path [`multipath::steer`] picks for it: its policy's, else `circuit`, else the flow's by
/// hash (a copy goes on a second path when the policy replicates).
#[allow(clippy::too_many_arguments)]
pub(crate) fn send<B: PacketBuf>(
    t: &Tables,
    tn: u16,
    ti: usize,
    circuit: Option<u8>,
    policy: Option<(u16, policy::FlowKey)>,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let Some(info) = t.tunnels.get(ti) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    if fx.sas.outbound.get(ti).is_none_or(Option::is_none) {
        return match info.outbound_owner(ti, fx.sas.workers) {
            Some(owner) if owner != fx.sas.worker => Verdict::Handoff {
                worker: owner,
                stage: Stage::Tenant(tn),
            },
            _ => Verdict::Drop(DropReason::NoRoute),
        };
    }
    let n = info.circuits.len();
    if n == 0 {
        return Verdict::Drop(DropReason::NoRoute);
    }
    let (ci, second) = multipath::steer(
        t,
        info,
        policy.map(|(k, _)| k),
        circuit,
        pkt.data(),
        &mut fx.sas.spread,
    );
    if let Some((k, key)) = &policy {
        let second = second.path().map_or(policy::NO_PATH, |c| c as u8);
        fx.sas
            .flows
            .record(tn, key, *k, ti as u16, ci as u8, second);
    }
    let c = &info.circuits[ci];
    // The underlay's next hop towards the peer's address on this circuit.
    let Some(hop) = t
        .routes
        .lookup(c.remote)
        .copied()
        .filter(|h| h.port == c.port)
    else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let next = hop.via.unwrap_or(c.remote);
    let Some(mac) = t.neighbor(c.port, next).copied() else {
        fx.solicit.push((c.port, next));
        return Verdict::Drop(DropReason::NeighborUnresolved);
    };
    let Some(out) = t.ports.get(usize::from(c.port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let header_len = info.header_len(c);
    let inner = pkt.data().len().saturating_sub(ethernet::HEADER_LEN);
    if outer_len(inner, header_len) > usize::from(out.mtu) {
        return too_big(t, tn, ingress, pkt, fx, max_inner_len(out.mtu, header_len));
    }
    if !pkt.adj(ethernet::HEADER_LEN) {
        return Verdict::Drop(DropReason::Malformed);
    }
    // Differential encryption: a policy may send its traffic in clear VXLAN on a trusted
    // circuit.
    let clear = c.trusted
        && policy
            .and_then(|(k, _)| t.policies.get(usize::from(k)))
            .is_some_and(|p| !p.encrypt);
    let overlay_path = info.loopbacks.map(|(ours, theirs)| OverlayPath {
        outer_src_mac: out.mac,
        outer_dst_mac: mac,
        outer_src: c.local,
        outer_dst: c.remote,
        inner_src_mac: loopback_mac(ours),
        inner_dst_mac: loopback_mac(theirs),
        loopback_src: ours,
        loopback_dst: theirs,
        vni: t.tenants.get(usize::from(tn)).map_or(0, |x| x.vni),
        ttl: OUTER_TTL,
    });
    if let (true, TunnelKind::Overlay, Some(path)) = (clear, info.kind, &overlay_path) {
        return match overlay::encapsulate_clear(path, pkt) {
            Ok(()) => {
                if let Some(peer) = info.peer_index {
                    fx.sas.count_path_tx(peer, ci as u8);
                }
                fx.clear_out += 1;
                Verdict::Forward(c.port)
            }
            Err(e) => Verdict::Drop(drop_for(e)),
        };
    }
    let Some(Some(sa)) = fx.sas.outbound.get_mut(ti) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let sealed = match (info.kind, &overlay_path) {
        (TunnelKind::Overlay, Some(path)) => overlay::encapsulate(path, sa, pkt),
        (TunnelKind::Esp | TunnelKind::EspUdp, _) => {
            let path = PlainPath {
                src_mac: out.mac,
                dst_mac: mac,
                src: c.local,
                dst: c.remote,
                udp: info.kind == TunnelKind::EspUdp,
                ttl: OUTER_TTL,
            };
            overlay::encapsulate_plain(&path, sa, pkt)
        }
        (TunnelKind::Overlay, None) => Err(OverlayError::BadPath),
    };
    match sealed {
        Ok(_) => {
            let hdr = ethernet::HEADER_LEN + header_len;
            let v4 = c.remote.is_ipv4() && info.loopbacks.is_none_or(|(l, _)| l.is_ipv4());
            if let Some(tpl) = fx
                .sas
                .templates
                .get_mut(ti * MAX_CIRCUITS + ci)
                .filter(|_| v4)
            {
                if let Some(h) = pkt.data().get(..hdr).filter(|h| h.len() <= tpl.bytes.len()) {
                    tpl.bytes[..hdr].copy_from_slice(h);
                    tpl.len = hdr;
                    tpl.port = c.port;
                    tpl.kind = info.kind;
                    tpl.max_inner = max_inner_len(out.mtu, header_len);
                    tpl.generation = t.generation;
                }
            }
            fx.sas.out_circuits[ti] |= 1 << ci;
            if let Some(peer) = info.peer_index {
                fx.sas.count_path_tx(peer, ci as u8);
            }
            fx.sas.request_second(ti, second);
            fx.encrypted += 1;
            Verdict::Forward(c.port)
        }
        Err(e) => Verdict::Drop(drop_for(e)),
    }
}

/// The fast path of a tenant's LAN traffic into a tunnel: an IPv4 frame for our MAC with a
/// 20-byte header, a good checksum and TTL > 1, whose (tenant, destination) is in the tunnel
/// route cache and whose circuit has a header template of the current table generation, that
/// fits the tunnel MTU, into a tunnel this worker has the outbound SA of. One cache probe
/// replaces the tenant's and the underlay's lookups and the neighbor lookup, and a copy of the
/// template replaces writing the headers field by field. Anything else returns `None` with
/// the frame untouched: the slow path handles it (errors included), and fills the caches.
#[inline]
pub(crate) fn fast_encrypt<B: PacketBuf>(
    t: &Tables,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
) -> Option<Verdict> {
    let tn = port.tenant?;
    let d = pkt.data_mut();
    if d.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN
        || d[12..15] != [0x08, 0x00, 0x45]
        || d[0..6] != port.mac
    {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    if total < ipv4::MIN_HEADER_LEN || ethernet::HEADER_LEN + total != d.len() || d[22] <= 1 {
        return None;
    }
    if checksum::checksum(&d[14..34]) != 0 {
        return None;
    }
    let dst = u32::from_be_bytes([d[30], d[31], d[32], d[33]]);
    let r = fx.sas.routes[route_slot(tn, dst)];
    if r.dst != dst || r.tenant != tn || r.tag != generation_tag(t.generation) {
        return None;
    }
    let ti = usize::from(r.tunnel);
    let info = t.tunnels.get(ti)?;
    let policy = policy::classify_key(&t.policies, tn, d);
    if let Some((k, _)) = policy {
        // Drop, breakout and clear traffic take the slow path.
        if t.policies.get(usize::from(k)).is_some_and(|p| {
            !p.encrypt || matches!(p.mode, policy::Mode::Drop | policy::Mode::Breakout)
        }) {
            return None;
        }
    }
    let preferred = (r.circuit != NO_CIRCUIT).then_some(r.circuit);
    let spread_before = fx.sas.spread;
    let (ci, second) = multipath::steer(
        t,
        info,
        policy.map(|(k, _)| k),
        preferred,
        d,
        &mut fx.sas.spread,
    );
    let ready = fx
        .sas
        .templates
        .get(ti * MAX_CIRCUITS + ci)
        .is_some_and(|tpl| {
            tpl.generation == t.generation && tpl.len != 0 && total <= tpl.max_inner
        })
        && fx.sas.outbound.get(ti).is_some_and(Option::is_some);
    if !ready {
        // The slow path takes it: it must choose the same path (and make its template), so
        // the spreading wheel steps back.
        fx.sas.spread = spread_before;
        return None;
    }
    let tpl = fx.sas.templates.get(ti * MAX_CIRCUITS + ci)?;
    if let Some((k, key)) = &policy {
        let second = second.path().map_or(policy::NO_PATH, |c| c as u8);
        fx.sas
            .flows
            .record(tn, key, *k, ti as u16, ci as u8, second);
    }
    // Committed: TTL, then seal, then the headers.
    d[22] -= 1;
    let sum = u32::from(u16::from_be_bytes([d[24], d[25]])) + 0x0100;
    d[24..26].copy_from_slice(&((sum + (sum >> 16)) as u16).to_be_bytes());
    let (hdr, out_port, kind) = (tpl.len, tpl.port, tpl.kind);
    let need = hdr + esp::wire::PAYLOAD_OFFSET;
    if !pkt.adj(ethernet::HEADER_LEN) {
        return Some(Verdict::Drop(DropReason::Malformed));
    }
    // Probe the headroom before the SA consumes a sequence number.
    if !pkt.prepend(need) || !pkt.adj(need) {
        return Some(Verdict::Drop(DropReason::NoBuffer));
    }
    fx.sas.request_second(ti, second);
    if fx.sas.defer && fx.sas.pending_len < MAX_BURST && fx.sas.burst_index < MAX_BURST {
        fx.sas.pending[fx.sas.pending_len] = (fx.sas.burst_index as u8, ti as u16, ci as u8);
        fx.sas.pending_len += 1;
        return Some(Verdict::Forward(out_port));
    }
    let Some(Some(sa)) = fx.sas.outbound.get_mut(ti) else {
        return Some(Verdict::Drop(DropReason::NoRoute));
    };
    if let Err(e) = sa.seal(pkt) {
        return Some(Verdict::Drop(drop_for(e.into())));
    }
    Some(add_headers(pkt, fx, ti, ci, out_port, kind, hdr))
}

/// Puts the circuit's header template in front of a sealed ESP packet and patches it.
#[inline]
fn add_headers<B: PacketBuf>(
    pkt: &mut B,
    fx: &mut Context,
    ti: usize,
    ci: usize,
    out_port: u16,
    kind: TunnelKind,
    hdr: usize,
) -> Verdict {
    let esp_len = pkt.data().len();
    if !pkt.prepend(hdr) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let Some(tpl) = fx.sas.templates.get(ti * MAX_CIRCUITS + ci) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let d = pkt.data_mut();
    d[..hdr].copy_from_slice(&tpl.bytes[..hdr]);
    // Lengths and checksums: outer IPv4 at 14, UDP at 34, the overlay's inner IPv4 at 64.
    let outer = ethernet::HEADER_LEN;
    match kind {
        TunnelKind::Esp => set_len16(d, outer + 2, Some(outer + 10), 20 + esp_len),
        TunnelKind::EspUdp => {
            set_len16(d, outer + 20 + 4, None, 8 + esp_len);
            set_len16(d, outer + 2, Some(outer + 10), 28 + esp_len);
        }
        TunnelKind::Overlay => {
            let inner = outer + 20 + 8 + vxlan::HEADER_LEN + ethernet::HEADER_LEN;
            set_len16(d, inner + 2, Some(inner + 10), 20 + esp_len);
            let udp_len = d.len() - (outer + 20);
            set_len16(d, outer + 20 + 4, None, udp_len);
            set_len16(d, outer + 2, Some(outer + 10), 20 + udp_len);
        }
    }
    fx.sas.out_circuits[ti] |= 1 << ci;
    if let Some(&peer) = fx.sas.tunnel_peer.get(ti) {
        fx.sas.count_path_tx(peer, ci as u8);
    }
    fx.encrypted += 1;
    Verdict::Forward(out_port)
}

/// Seals the packets of the burst `pkts` that the fast path prepared in batch mode, one AEAD
/// call per SA and chunk of packets, and puts their headers on. `failed(i, reason)` is called
/// for each packet that must not be sent after all (the worker marks it dropped).
pub fn seal_pending<B: PacketBuf>(
    pkts: &mut [B],
    fx: &mut Context,
    mut failed: impl FnMut(usize, DropReason),
) {
    let n = std::mem::take(&mut fx.sas.pending_len);
    if n == 0 {
        return;
    }
    let pending = fx.sas.pending;
    let mut done = 0u64; // pending entries handled, by position
    for first in 0..n {
        if done & (1 << first) != 0 {
            continue;
        }
        let ti = pending[first].1;
        // This SA's packets, in burst order, with their circuits.
        let mut mask = 0u64;
        let mut circuit = [0u8; MAX_BURST];
        for (k, &(i, t, c)) in pending[..n].iter().enumerate() {
            if t == ti {
                done |= 1 << k;
                mask |= 1 << i;
                circuit[usize::from(i)] = c;
            }
        }
        let ti = usize::from(ti);
        let Some(Some(sa)) = fx.sas.outbound.get_mut(ti) else {
            for i in (0..MAX_BURST).filter(|i| mask & (1 << i) != 0) {
                failed(i, DropReason::NoRoute);
            }
            continue;
        };
        let mut indexes = [0usize; MAX_BURST];
        let mut count = 0;
        for i in (0..pkts.len().min(MAX_BURST)).filter(|i| mask & (1 << i) != 0) {
            indexes[count] = i;
            count += 1;
        }
        let mut selected = pkts
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i < MAX_BURST && mask & (1 << i) != 0);
        let mut results = [Ok(0); esp::sa::BATCH];
        let mut outcomes = [Ok(0u64); MAX_BURST];
        let mut at = 0;
        while at < count {
            let mut refs = selected.by_ref().map(|(_, p)| p);
            let taken = sa.seal_from(&mut refs, &mut results);
            if taken == 0 {
                break;
            }
            outcomes[at..at + taken].copy_from_slice(&results[..taken]);
            at += taken;
        }
        for (k, &i) in indexes[..count].iter().enumerate() {
            let ci = usize::from(circuit[i]);
            let Some(pkt) = pkts.get_mut(i) else { continue };
            if let Err(e) = outcomes[k] {
                failed(i, drop_for(e.into()));
                continue;
            }
            let Some(tpl) = fx.sas.templates.get(ti * MAX_CIRCUITS + ci) else {
                failed(i, DropReason::NoRoute);
                continue;
            };
            let (port, kind, hdr) = (tpl.port, tpl.kind, tpl.len);
            if let Verdict::Drop(r) = add_headers(pkt, fx, ti, ci, port, kind, hdr) {
                failed(i, r);
            }
        }
    }
}

/// The entry to [`receive`] without the slow path's parsing: an IPv4 frame for this port's
/// MAC and one of its addresses, carrying ESP, or UDP to the VXLAN or NAT-T port. `receive`
/// validates every header itself.
#[inline]
pub(crate) fn fast_receive<B: PacketBuf>(
    t: &Tables,
    in_port: u16,
    port: &PortInfo,
    pkt: &mut B,
    fx: &mut Context,
) -> Option<Verdict> {
    let d = pkt.data();
    if d.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN
        || d[12..15] != [0x08, 0x00, 0x45]
        || d[0..6] != port.mac
        || port.tenant.is_some()
        || !port.owns_v4(std::net::Ipv4Addr::new(d[30], d[31], d[32], d[33]))
    {
        return None;
    }
    let frame = tunnel_frame(d, t.probe_port)?;
    let src_mac = [d[6], d[7], d[8], d[9], d[10], d[11]];
    let ingress = Ingress {
        port: in_port,
        src_mac,
        tenant: None,
    };
    Some(receive(t, ingress, frame, pkt, fx))
}

/// Writes the 16-bit length at `at` and, with `check_at`, updates that header checksum for
/// the change (RFC 1624).
#[inline]
fn set_len16(d: &mut [u8], at: usize, check_at: Option<usize>, len: usize) {
    let old = u16::from_be_bytes([d[at], d[at + 1]]);
    let new = len as u16;
    d[at..at + 2].copy_from_slice(&new.to_be_bytes());
    if let Some(c) = check_at {
        let sum = checksum::update16(u16::from_be_bytes([d[c], d[c + 1]]), old, new);
        d[c..c + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An inner packet too big for the tunnel: ICMP "fragmentation needed" / ICMPv6 "packet too
/// big" with `mtu` when it may not be fragmented, else a counted drop (see the module
/// documentation).
fn too_big<B: PacketBuf>(
    t: &Tables,
    tn: u16,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
    mtu: usize,
) -> Verdict {
    let d = pkt.data();
    let Some(source_port) = source_port(t, tn, ingress) else {
        return Verdict::Drop(DropReason::MtuExceeded);
    };
    match d.get(ethernet::HEADER_LEN).map(|b| b >> 4) {
        Some(4) => {
            let df = ipv4::Packet::new_checked(&d[ethernet::HEADER_LEN..])
                .is_ok_and(|p| p.dont_fragment());
            if !df {
                return Verdict::Drop(DropReason::MtuExceeded);
            }
            let mtu = mtu.min(usize::from(u16::MAX)) as u32;
            forward::icmp4_error(
                t,
                ingress,
                source_port,
                pkt,
                fx,
                icmp::V4_DEST_UNREACHABLE,
                icmp::V4_FRAG_NEEDED,
                mtu,
                DropReason::MtuExceeded,
            )
        }
        Some(6) => {
            // RFC 8200 §5: every link carries 1280 bytes; a tunnel that cannot would fragment.
            let mtu = mtu.max(1280) as u32;
            forward::icmp6_error(
                t,
                ingress,
                source_port,
                pkt,
                fx,
                icmp::V6_PACKET_TOO_BIG,
                0,
                mtu,
                DropReason::MtuExceeded,
            )
        }
        _ => Verdict::Drop(DropReason::Malformed),
    }
}

/// The port whose address is the source of an ICMP error in tenant `tn`: the ingress port
/// when the packet came from the tenant's LAN, else the tenant's first LAN port.
fn source_port(t: &Tables, tn: u16, ingress: Ingress) -> Option<&PortInfo> {
    let tenant = t.tenants.get(usize::from(tn))?;
    let port = if tenant.lan_ports.contains(&ingress.port) {
        ingress.port
    } else {
        *tenant.lan_ports.first()?
    };
    t.ports.get(usize::from(port))
}

/// What a frame (Ethernet + IP to one of our addresses) carries, if it is tunnel traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunnelFrame {
    /// UDP to the VXLAN port: the overlay.
    Overlay,
    /// ESP in IP, or UDP to the NAT-T port: plain tunnel mode.
    Plain,
    /// UDP to the probe port: a path probe ([`crate::multipath`]).
    Probe,
}

/// Classifies a frame by its IP protocol and UDP destination port (the decoders validate the
/// rest); `None`: not tunnel traffic.
#[inline]
pub(crate) fn tunnel_frame(d: &[u8], probe_port: u16) -> Option<TunnelFrame> {
    let ip = &d[ethernet::HEADER_LEN.min(d.len())..];
    let (proto, l4) = match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= ipv4::MIN_HEADER_LEN => (ip[9], usize::from(ip[0] & 0x0f) * 4),
        Some(6) if ip.len() >= ipv6::HEADER_LEN => (ip[6], ipv6::HEADER_LEN),
        _ => return None,
    };
    match proto {
        PROTO_ESP => Some(TunnelFrame::Plain),
        ipv4::PROTO_UDP => match ip
            .get(l4 + 2..l4 + 4)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
        {
            Some(vxlan::PORT) => Some(TunnelFrame::Overlay),
            Some(overlay::NAT_T_PORT) => Some(TunnelFrame::Plain),
            Some(p) if p == probe_port && p != 0 => Some(TunnelFrame::Probe),
            _ => None,
        },
        _ => None,
    }
}

/// Receives tunnel traffic (`frame`, from [`tunnel_frame`]) that arrived on `ingress.port`: finds
/// the inbound SA, checks that the packet came where that SA goes, hands it to the owning
/// worker or opens it, and routes the client's packet in the tenant.
pub(crate) fn receive<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    frame: TunnelFrame,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    if frame == TunnelFrame::Probe {
        return multipath::receive_probe(t, ingress, pkt, fx);
    }

    let d = pkt.data();
    // What the outer headers say: SPI, where the ESP packet lies, the kind, and (overlay) the
    // VNI and loopbacks to check against the SA's tunnel.
    let mut fec_vxlan = None;
    let mut overlay_rebuilt_flag = false;
    let mut spread_seq = None;
    let (spi, esp_range, kind, overlay_check, outer_src) = if frame == TunnelFrame::Overlay {
        match overlay::parse_outer(d) {
            Ok(o) => {
                let flags = d.get(o.vxlan_off).copied().unwrap_or(0);
                if flags & overlay::FLAG_CLEAR != 0 {
                    return receive_clear(t, ingress, pkt, fx);
                }
                if flags & (fec::FLAG_DATA | fec::FLAG_PARITY) != 0 || o.parity {
                    fec_vxlan = Some(o.vxlan_off);
                }
                overlay_rebuilt_flag = flags & fec::FLAG_REBUILT != 0;
                spread_seq = d
                    .get(o.vxlan_off..o.vxlan_off + 8)
                    .and_then(crate::reorder::read_seq);
                (
                    o.spi,
                    o.esp_range,
                    TunnelKind::Overlay,
                    Some((o.vni, o.loopback_src, o.loopback_dst)),
                    o.outer_src,
                )
            }
            // A clear frame's inner packet is the client's, not ESP (looked at only then).
            Err(_) if overlay::vxlan_flags(d).is_some_and(|f| f & overlay::FLAG_CLEAR != 0) => {
                return receive_clear(t, ingress, pkt, fx);
            }
            Err(e) => return Verdict::Drop(drop_for(e)),
        }
    } else {
        match overlay::parse_plain(d) {
            Ok(PlainFrame::Esp {
                spi,
                udp,
                esp_range,
                outer_src,
                ..
            }) => (
                spi,
                esp_range,
                if udp {
                    TunnelKind::EspUdp
                } else {
                    TunnelKind::Esp
                },
                None,
                outer_src,
            ),
            Ok(PlainFrame::NatKeepalive) => {
                fx.nat_keepalives += 1;
                return Verdict::Consumed;
            }
            Ok(PlainFrame::Ike) => return Verdict::Drop(DropReason::LocalUnhandled),
            Err(e) => return Verdict::Drop(drop_for(e)),
        }
    };
    let key = SpiKey {
        spi,
        peer: overlay_check.map_or(0, |(_, from, _)| addr_key(from)),
    };
    let Some(&(ti, sender)) = t.spis.get(&key) else {
        return Verdict::Drop(DropReason::UnknownSpi);
    };
    let Some(info) = t.tunnels.get(usize::from(ti)) else {
        return Verdict::Drop(DropReason::UnknownSpi);
    };
    let tn = info.tenant;
    let Some(tenant) = t.tenants.get(usize::from(tn)) else {
        return Verdict::Drop(DropReason::TunnelMismatch);
    };
    if info.kind != kind {
        return Verdict::Drop(DropReason::TunnelMismatch);
    }
    if let Some((vni, from, to)) = overlay_check {
        if vni != tenant.vni || info.loopbacks != Some((to, from)) {
            return Verdict::Drop(DropReason::TunnelMismatch);
        }
    }
    // Only from the peer's address on the circuit it came in on (a known peer).
    let Some(ci) = info
        .circuits
        .iter()
        .position(|c| c.port == ingress.port && c.remote == outer_src)
    else {
        return Verdict::Drop(DropReason::TunnelMismatch);
    };
    let slot = (info.first_slot + u32::from(sender)) as usize;
    let owner = info.inbound_owner(usize::from(ti), u32::from(sender), fx.sas.workers);
    if owner != fx.sas.worker {
        return Verdict::Handoff {
            worker: owner,
            stage: Stage::Frame,
        };
    }
    // FEC: a parity packet, or a protected data packet (marked in its VXLAN header).
    let rebuilt_here = overlay_rebuilt_flag;
    if let Some(vx) = fec_vxlan {
        if receive_fec(fx, slot, ingress.port, vx, &esp_range, pkt) == FecStep::Consumed {
            return Verdict::Consumed;
        }
    }
    let Some(Some(sa)) = fx.sas.inbound.get_mut(slot) else {
        return Verdict::Drop(DropReason::UnknownSpi);
    };
    let nh = match overlay::open_esp(sa, pkt, &esp_range) {
        Ok(nh) => nh,
        Err(OverlayError::Esp(EspError::Dummy)) => return Verdict::Consumed,
        Err(e) => return Verdict::Drop(drop_for(e)),
    };
    fx.sas.in_circuits[slot] |= 1 << ci;
    if let Some(peer) = info.peer_index {
        fx.sas.count_path_rx(peer, ci as u8);
    }
    if rebuilt_here {
        fx.sas.fec_rebuilt += 1;
    }
    if let Some(seq) = spread_seq {
        fx.sas.held = Some((slot as u32, seq));
    }
    fx.decrypted += 1;
    deliver(t, tn, ingress, nh, pkt, fx)
}

/// Receives a clear overlay frame (differential encryption): only from a peer's address on a
/// circuit we trust, for a tenant that peer has a tunnel of; then delivered like a decrypted
/// packet.
#[inline(never)]
fn receive_clear<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let c = match overlay::parse_clear(pkt.data()) {
        Ok(c) => c,
        Err(e) => return Verdict::Drop(drop_for(e)),
    };
    let Some(&(peer, ci)) = t.path_of.get(&NeighborKey::new(ingress.port, c.outer_src)) else {
        return Verdict::Drop(DropReason::TunnelMismatch);
    };
    let trusted = t
        .peers
        .get(usize::from(peer))
        .and_then(|p| p.paths.get(usize::from(ci)))
        .is_some_and(|p| p.trusted);
    if !trusted {
        return Verdict::Drop(DropReason::ClearUntrusted);
    }
    let Some(tn) = t
        .tunnels
        .iter()
        .find(|x| {
            x.peer_index == Some(peer)
                && t.tenants
                    .get(usize::from(x.tenant))
                    .is_some_and(|tt| tt.vni == c.vni)
        })
        .map(|x| x.tenant)
    else {
        return Verdict::Drop(DropReason::TunnelMismatch);
    };
    // Cut to the client's packet (Ethernet padding past the UDP datagram dropped).
    if !pkt.set_len(c.end) || !pkt.adj(c.client_off) {
        return Verdict::Drop(DropReason::Malformed);
    }
    fx.sas.count_path_rx(peer, ci);
    fx.clear_in += 1;
    deliver(t, tn, ingress, c.next_header, pkt, fx)
}

/// Delivers a client's packet that came out of a tunnel (`pkt` holds its IP packet, `nh` the
/// next header: 4 IPv4, 41 IPv6) in tenant `tn` (one of `t.tenants`).
#[inline]
fn deliver<B: PacketBuf>(
    t: &Tables,
    tn: u16,
    ingress: Ingress,
    nh: u8,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    // The client's packet gets an Ethernet header again (its addresses are written on the way
    // out) and is routed in the tenant like one from its LAN, TTL first.
    if !pkt.prepend(ethernet::HEADER_LEN) {
        return Verdict::Drop(DropReason::NoBuffer);
    }
    let ethertype = if nh == esp::wire::NEXT_HEADER_IPV6 {
        ethernet::ETHERTYPE_IPV6
    } else {
        ethernet::ETHERTYPE_IPV4
    };
    let inner = Ingress {
        port: ingress.port,
        src_mac: BROADCAST_MAC,
        tenant: Some(tn),
    };
    let d = pkt.data_mut();
    ethernet::write_header(d, &BROADCAST_MAC, &BROADCAST_MAC, ethertype);
    // The port whose address answers for the tenant (ICMP errors, echo), looked up only off
    // the common path.
    let icmp_port = || source_port(t, tn, inner);
    let len = d.len() - ethernet::HEADER_LEN;
    if ethertype == ethernet::ETHERTYPE_IPV4 {
        let Ok(mut ip) = ipv4::Packet::new_checked(&mut d[ethernet::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if ip.total_len() != len || !ip.verify_checksum() {
            return Verdict::Drop(DropReason::Malformed);
        }
        let dst = ip.dst();
        // The common case: a LAN host this worker delivered to in this table generation.
        let key = u32::from(dst);
        let r = fx.sas.lan_routes[route_slot(tn, key)];
        if r.dst == key
            && r.tenant == tn
            && r.tag == generation_tag(t.generation)
            && ip.ttl() > 1
            && len <= usize::from(r.mtu)
        {
            ip.decrement_ttl();
            d[0..12].copy_from_slice(&r.macs);
            return Verdict::Forward(r.port);
        }
        if tenant_owns(t, tn, IpAddr::V4(dst)) {
            return forward::ipv4_local(t, inner, pkt, fx);
        }
        if ip.ttl() <= 1 {
            let Some(icmp_port) = icmp_port() else {
                return Verdict::Drop(DropReason::TtlExceeded);
            };
            return forward::icmp4_error(
                t,
                inner,
                icmp_port,
                pkt,
                fx,
                icmp::V4_TIME_EXCEEDED,
                0,
                0,
                DropReason::TtlExceeded,
            );
        }
        ip.decrement_ttl();
    } else {
        let Ok(mut ip) = ipv6::Packet::new_checked(&mut d[ethernet::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        if ipv6::HEADER_LEN + ip.payload_len() != len {
            return Verdict::Drop(DropReason::Malformed);
        }
        let dst = ip.dst();
        if tenant_owns(t, tn, IpAddr::V6(dst)) {
            let Some(icmp_port) = icmp_port() else {
                return Verdict::Drop(DropReason::NoRoute);
            };
            return forward::ipv6_local(t, inner, icmp_port, pkt, fx);
        }
        if ip.hop_limit() <= 1 {
            let Some(icmp_port) = icmp_port() else {
                return Verdict::Drop(DropReason::TtlExceeded);
            };
            return forward::icmp6_error(
                t,
                inner,
                icmp_port,
                pkt,
                fx,
                icmp::V6_TIME_EXCEEDED,
                0,
                0,
                DropReason::TtlExceeded,
            );
        }
        ip.decrement_hop_limit();
    }
    tenant_route(t, tn, inner, pkt, fx)
}

/// What [`receive_fec`] made of a packet.
#[derive(Debug, PartialEq, Eq)]
enum FecStep {
    /// A parity packet, taken in: nothing to deliver.
    Consumed,
    /// A data packet: open it as usual.
    Continue,
}

/// FEC on receive, by the worker that owns inbound slot `slot` (before anything is opened):
/// a data packet is XORed into its group, a parity packet taken in. When either completes a
/// group with one packet missing, the rebuilt frame (this packet's headers, the rebuilt ESP
/// packet, marked [`fec::FLAG_REBUILT`]) goes to `fx.sas.rebuilt` for the worker to feed back
/// through its own queue, where it is opened like any other.
#[inline(never)]
fn receive_fec<B: PacketBuf>(
    fx: &mut Context,
    slot: usize,
    port: u16,
    vxlan_off: usize,
    payload: &std::ops::Range<usize>,
    pkt: &mut B,
) -> FecStep {
    let d = pkt.data();
    let is_parity = d
        .get(vxlan_off + 8 + ethernet::HEADER_LEN..)
        .and_then(|ip| match ip.first().map(|b| b >> 4) {
            Some(4) => ip.get(9),
            Some(6) => ip.get(6),
            _ => None,
        })
        == Some(&fec::PROTO_PARITY);
    let mark = d.get(vxlan_off..vxlan_off + 8).and_then(fec::read_mark);
    let (Some(mark), Some(body)) = (mark, d.get(payload.clone())) else {
        // Parity without a mark is of no use; a data packet is opened as usual.
        return if is_parity {
            FecStep::Consumed
        } else {
            FecStep::Continue
        };
    };
    if mark.parity != is_parity {
        return if is_parity {
            FecStep::Consumed
        } else {
            FecStep::Continue
        };
    }
    let head_len = payload.start;
    let after = if mark.parity {
        FecStep::Consumed
    } else {
        FecStep::Continue
    };
    let Some(dec) = fx.sas.fec_decoder(slot) else {
        return after;
    };
    let mut esp = [0u8; fec::MAX_ESP];
    let outcome = if mark.parity {
        dec.on_parity(mark, body)
    } else {
        dec.on_data(mark, body)
    };
    let len = match outcome {
        fec::Outcome::Rebuilt(r) => {
            esp[..r.len()].copy_from_slice(r);
            r.len()
        }
        fec::Outcome::Late => {
            fx.sas.fec_late += 1;
            return after;
        }
        fec::Outcome::Nothing => return after,
    };
    let k = fx.sas.rebuilt_count;
    if head_len + len <= REBUILT_MAX && k < REBUILT_SLOTS {
        let out = &mut fx.sas.rebuilt[k][..];
        out[..head_len].copy_from_slice(&pkt.data()[..head_len]);
        out[head_len..head_len + len].copy_from_slice(&esp[..len]);
        fec::clear_mark(&mut out[vxlan_off..vxlan_off + 8]);
        out[vxlan_off] |= fec::FLAG_REBUILT;
        if let Some(end) = fec::fix_overlay(&mut out[..head_len + len], vxlan_off, len, PROTO_ESP) {
            fx.sas.rebuilt_len[k] = end;
            fx.sas.rebuilt_port[k] = port;
            fx.sas.rebuilt_count += 1;
        }
    }
    after
}

/// Whether `a` is an address of one of tenant `tn`'s LAN ports.
fn tenant_owns(t: &Tables, tn: u16, a: IpAddr) -> bool {
    t.tenants.get(usize::from(tn)).is_some_and(|x| {
        x.lan_ports.iter().any(|&p| {
            t.ports.get(usize::from(p)).is_some_and(|p| match a {
                IpAddr::V4(v) => p.owns_v4(v),
                IpAddr::V6(v) => p.owns_v6(&v),
            })
        })
    })
}

/// The next hops tunnels and tenant routes need resolved: each circuit's underlay next hop
/// and the tenants' LAN next hops.
pub fn next_hops(t: &Tables) -> Vec<(u16, IpAddr)> {
    let mut v = Vec::new();
    for info in &t.tunnels {
        for c in &info.circuits {
            if let Some(h) = t.routes.lookup(c.remote).filter(|h| h.port == c.port) {
                v.push((c.port, h.via.unwrap_or(c.remote)));
            }
        }
    }
    for tenant in &t.tenants {
        for e in tenant.routes.entries() {
            if let TenantHop::Local(NextHop {
                port,
                via: Some(via),
            }) = e.next_hop
            {
                v.push((port, via));
            }
        }
    }
    v.sort_unstable_by_key(|&(p, a)| (p, a));
    v.dedup();
    v
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;
