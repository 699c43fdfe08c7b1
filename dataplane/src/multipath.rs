//! Multipath: the paths to each overlay peer, their monitoring by authenticated probes, and
//! the choice of a path for a packet.
//!
//! A **path** is a pair (our circuit, the peer's circuit): one entry of a tunnel's `circuits`,
//! the same list for every tenant's tunnel to that peer, so a path's index is its circuit
//! index there. Every path is probed ([`crate::probe`], UDP to `probe_port` on both ends) and
//! watched by a [`PathMonitor`].
//!
//! # Who does what
//! - **Worker 0** runs every path's monitor ([`Prober`]): it sends the requests, answers the
//!   peer's, and takes the replies; probes that reach another worker are handed to it, like a
//!   packet of an SA another worker owns. The monitor runs in the data plane, not in the control
//!   thread, so the timestamps are the data plane's and a path going down steers traffic
//!   without a round through the control thread: failover speed is the point.
//! - A path's state and figures go to the [`PathBoard`] (atomics, one writer): each peer has a
//!   *usable* mask, read by every worker for every packet into a tunnel (one relaxed load);
//!   the rest is for `show paths`.
//! - [`choose_circuit`] picks a packet's path: the route's preferred circuit, or the flow's by
//!   hash, unless that path is down; then another usable path, by the same flow hash, so a flow
//!   stays on one path. A path no probe has answered yet is usable (a new peer's traffic is
//!   not held back), and when every path is down the preferred one is used all the same.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::counters::{Counter, DropReason};
use crate::esp::{AeadKey, Backend, KeyError};
use crate::forward::{Context, Ingress, PacketBuf, Stage, Verdict};
use crate::pathmon::{MonitorConfig, PathMonitor, PathState, PathStats};
use crate::policy::{self, PathFigures, NO_PATH};
use crate::probe::{self, Kind, Probe};
use crate::tables::{NeighborKey, Tables};
use crate::tunnel::CircuitInfo;
use crate::tunnel::TunnelInfo;
use crate::wire::{ethernet, ipv4, ipv6, udp};

/// Paths per peer (a mask of them is a `u32`).
pub const MAX_PATHS: usize = 16;

/// The default UDP port of path probes (both ends).
pub const DEFAULT_PROBE_PORT: u16 = 4793;

/// The paths to one overlay peer, as the tables know them.
#[derive(Debug, Clone)]
pub struct PeerPaths {
    pub name: String,
    /// The circuits of the peer's tunnels: path `i` is circuit `i` of each of them.
    pub paths: Vec<CircuitInfo>,
}

/// One path's published state and figures (one writer: the probe worker).
#[derive(Debug, Default)]
pub struct PathStat {
    /// 0 unknown, 1 up, 2 down.
    pub state: Counter,
    /// Nanoseconds; `u64::MAX`: no figure yet.
    pub rtt_p50: Counter,
    pub rtt_p99: Counter,
    /// Loss over the window in parts per million; `u64::MAX`: no figure yet.
    pub loss_ppm: Counter,
    pub jitter: Counter,
    pub probes_sent: Counter,
    pub probes_answered: Counter,
    pub probes_lost: Counter,
    pub downs: Counter,
    pub false_alarms: Counter,
    /// When the state last changed, nanoseconds since the engine started (0: never).
    pub changed_at: Counter,
    /// 1: probed at the active interval (it carries traffic, or an SLA policy's); 0: idle.
    pub active: Counter,
    /// Bit `k`: the path meets the SLA of policy `k` (policies without an SLA: never set).
    pub sla_met: Counter,
}

/// The published state of one peer's paths.
#[derive(Debug)]
pub struct PeerBoard {
    /// Bit `i`: path `i` may carry traffic (up, or not known yet).
    pub usable: AtomicU32,
    pub paths: Vec<PathStat>,
    /// Per policy: the path its traffic to this peer takes, and the second path (copies,
    /// parity); [`NO_PATH`]: none chosen, the route decides.
    pub class_path: Vec<AtomicU8>,
    pub class_second: Vec<AtomicU8>,
    /// Per policy: how often its path changed.
    pub class_moves: Vec<Counter>,
}

/// The published state of every peer's paths, shared by the workers and the control thread.
#[derive(Debug, Default)]
pub struct PathBoard {
    pub peers: Vec<PeerBoard>,
}

impl PathBoard {
    pub fn new(peers: &[PeerPaths], policies: usize) -> Self {
        Self {
            peers: peers
                .iter()
                .map(|p| PeerBoard {
                    usable: AtomicU32::new(all_paths(p.paths.len())),
                    paths: p.paths.iter().map(|_| PathStat::default()).collect(),
                    class_path: (0..policies).map(|_| AtomicU8::new(NO_PATH)).collect(),
                    class_second: (0..policies).map(|_| AtomicU8::new(NO_PATH)).collect(),
                    class_moves: (0..policies).map(|_| Counter::default()).collect(),
                })
                .collect(),
        }
    }

    /// The path of policy `policy`'s traffic to peer `peer` and its second path.
    #[inline]
    pub fn class_paths(&self, peer: u16, policy: u16) -> (u8, u8) {
        self.peers
            .get(usize::from(peer))
            .map_or((NO_PATH, NO_PATH), |p| {
                (
                    p.class_path
                        .get(usize::from(policy))
                        .map_or(NO_PATH, |a| a.load(Ordering::Relaxed)),
                    p.class_second
                        .get(usize::from(policy))
                        .map_or(NO_PATH, |a| a.load(Ordering::Relaxed)),
                )
            })
    }

    /// The usable mask of peer `peer` (every path of an unknown peer).
    #[inline]
    pub fn usable(&self, peer: u16) -> u32 {
        self.peers
            .get(usize::from(peer))
            .map_or(u32::MAX, |p| p.usable.load(Ordering::Relaxed))
    }
}

#[inline]
fn all_paths(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

/// A flow's hash over the inner addresses (Ethernet + IP in `d`), so a flow keeps its path.
#[inline]
pub fn flow_hash(d: &[u8]) -> u32 {
    let ip = &d[ethernet::HEADER_LEN.min(d.len())..];
    let addrs = match ip.first().map(|b| b >> 4) {
        Some(4) => ip.get(12..20),
        Some(6) => ip.get(8..40),
        _ => None,
    };
    let mut h = 0u32;
    for w in addrs.unwrap_or(&[]).chunks_exact(4) {
        h = (h ^ u32::from_ne_bytes([w[0], w[1], w[2], w[3]])).wrapping_mul(0x9e37_79b1);
        h ^= h >> 15;
    }
    h
}

/// `h` mapped onto `0..n` by a multiply and shift (no division).
#[inline]
fn scale(h: u32, n: u32) -> u32 {
    ((u64::from(h) * u64::from(n)) >> 32) as u32
}

/// The path of a packet among `n` (see the module documentation): `preferred` (the route's
/// circuit) or the flow's by `hash`, unless it is not in `usable`; then the flow's among the
/// usable ones.
#[inline]
pub fn choose_circuit(
    preferred: Option<u8>,
    hash: impl FnOnce() -> u32,
    n: usize,
    usable: u32,
) -> usize {
    if n <= 1 {
        return 0;
    }
    let ok = usable & all_paths(n);
    let first = match preferred {
        Some(c) => usize::from(c).min(n - 1),
        None => {
            let h = hash();
            let c = scale(h, n as u32) as usize;
            if ok & (1 << c) != 0 || ok == 0 {
                return c;
            }
            return nth_set(ok, scale(rehash(h), ok.count_ones()));
        }
    };
    if ok & (1 << first) != 0 || ok == 0 {
        return first;
    }
    nth_set(ok, scale(rehash(hash()), ok.count_ones()))
}

/// A second, independent hash of a flow: the flows of a failed path spread over all the others
/// rather than onto its neighbours in hash order.
#[inline]
fn rehash(h: u32) -> u32 {
    let h = (h ^ (h >> 16)).wrapping_mul(0x85eb_ca6b);
    h ^ (h >> 13)
}

/// The index of the `k`-th set bit of `mask` (which has more than `k`).
#[inline]
fn nth_set(mut mask: u32, k: u32) -> usize {
    for _ in 0..k {
        mask &= mask - 1;
    }
    mask.trailing_zeros() as usize
}

/// The path of a packet of tunnel `info` and, for a policy that replicates or sends parity,
/// its second path. `policy`: the packet's, from [`policy::classify`]; `preferred`: its
/// route's circuit; `spread`: the worker's packet counter for weighted spreading.
#[inline]
pub fn steer(
    t: &Tables,
    info: &crate::tunnel::TunnelInfo,
    policy: Option<u16>,
    preferred: Option<u8>,
    d: &[u8],
    spread: &mut u32,
) -> (usize, Second) {
    let n = info.circuits.len();
    let Some(peer) = info.peer_index else {
        let c = choose_circuit(preferred, || flow_hash(d), n, u32::MAX);
        return (c, Second::None);
    };
    let usable = t.board.usable(peer);
    let Some((k, p)) = policy.and_then(|k| t.policies.get(usize::from(k)).map(|p| (k, p))) else {
        return (
            choose_circuit(preferred, || flow_hash(d), n, usable),
            Second::None,
        );
    };
    let ok = |c: u8| c != NO_PATH && usize::from(c) < n && (usable & (1 << c) != 0);
    if p.mode == policy::Mode::Spread {
        let c = spread_pick(p, info, usable, spread)
            .unwrap_or_else(|| choose_circuit(preferred, || flow_hash(d), n, usable));
        return (c, Second::Sequence);
    }
    let (first, second) = t.board.class_paths(peer, k);
    let first = if ok(first) {
        usize::from(first)
    } else {
        let pref = p
            .circuits
            .first()
            .and_then(|&port| info.circuits.iter().position(|c| c.port == port))
            .map(|i| i as u8)
            .or(preferred);
        choose_circuit(pref, || flow_hash(d), n, usable)
    };
    let second = if ok(second) && usize::from(second) != first {
        match p.mode {
            policy::Mode::Replicate => Second::Copy(usize::from(second)),
            policy::Mode::Fec(k) => Second::Parity(usize::from(second), k),
            _ => Second::None,
        }
    } else {
        Second::None
    };
    (first, second)
}

/// What a packet's policy sends on a second path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Second {
    None,
    /// A copy of the packet, on this path.
    Copy(usize),
    /// The packet joins an FEC group of `k`; the group's parity goes on this path.
    Parity(usize, u8),
    /// No second path: the packet is spread, and numbered for the receiver's reorder buffer.
    Sequence,
}

impl Second {
    /// The second path, if any.
    pub fn path(self) -> Option<usize> {
        match self {
            Second::None | Second::Sequence => None,
            Second::Copy(c) | Second::Parity(c, _) => Some(c),
        }
    }
}

/// Weighted per-packet spreading over the usable paths of a policy's circuits: the `spread`
/// counter walks a wheel in which each path has its weight's share.
#[inline]
fn spread_pick(
    p: &policy::Policy,
    info: &crate::tunnel::TunnelInfo,
    usable: u32,
    spread: &mut u32,
) -> Option<usize> {
    let weight = |ci: usize| -> u32 {
        let c = &info.circuits[ci];
        if usable & (1 << ci) == 0 {
            return 0;
        }
        if p.circuits.is_empty() {
            return 1;
        }
        match p.circuits.iter().position(|&port| port == c.port) {
            Some(j) => p.weights.get(j).copied().unwrap_or(1),
            None => 0,
        }
    };
    let n = info.circuits.len().min(MAX_PATHS);
    let total: u32 = (0..n).map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut at = *spread % total;
    *spread = spread.wrapping_add(1);
    for ci in 0..n {
        let w = weight(ci);
        if at < w {
            return Some(ci);
        }
        at -= w;
    }
    None
}

/// Rewrites a sealed overlay frame `d`, built for another path of tunnel `ti`, for path `ci`:
/// the outer Ethernet and IP addresses (and the IPv4 header checksum, or the UDP checksum
/// over IPv6). Returns the port to send it on; `None` when the path's next hop is not
/// resolved or its address family differs from the frame's.
pub fn retarget(t: &Tables, ti: usize, ci: usize, d: &mut [u8]) -> Option<u16> {
    let c = t.tunnels.get(ti)?.circuits.get(ci)?;
    let hop = t.routes.lookup(c.remote).filter(|h| h.port == c.port)?;
    let mac = *t.neighbor(c.port, hop.via.unwrap_or(c.remote))?;
    let ours = t.ports.get(usize::from(c.port))?;
    if d.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN {
        return None;
    }
    let ethertype = u16::from_be_bytes([d[12], d[13]]);
    match (ethertype, c.local, c.remote) {
        (ethernet::ETHERTYPE_IPV4, IpAddr::V4(s), IpAddr::V4(r)) => {
            let ip = ethernet::HEADER_LEN;
            let hl = usize::from(d[ip] & 0x0f) * 4;
            if d.len() < ip + hl || hl < ipv4::MIN_HEADER_LEN {
                return None;
            }
            d[ip + 12..ip + 16].copy_from_slice(&s.octets());
            d[ip + 16..ip + 20].copy_from_slice(&r.octets());
            d[ip + 10..ip + 12].fill(0);
            let sum = crate::wire::checksum::checksum(&d[ip..ip + hl]);
            d[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
        }
        (ethernet::ETHERTYPE_IPV6, IpAddr::V6(s), IpAddr::V6(r)) => {
            let ip = ethernet::HEADER_LEN;
            let l4 = ip + ipv6::HEADER_LEN;
            if d.len() < l4 + 8 || d[ip + 6] != ipv4::PROTO_UDP {
                return None;
            }
            d[ip + 8..ip + 24].copy_from_slice(&s.octets());
            d[ip + 24..ip + 40].copy_from_slice(&r.octets());
            d[l4 + 6..l4 + 8].fill(0);
            let sum = udp::ipv6_checksum(&s, &r, &d[l4..]);
            d[l4 + 6..l4 + 8].copy_from_slice(&sum.to_be_bytes());
        }
        _ => return None,
    }
    d[0..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&ours.mac);
    Some(c.port)
}

/// The keys of one peer's probes: ours (derived for our epoch) and the peer's (derived for
/// the epoch its probes carry, when first seen).
struct PeerKeys {
    /// `None`: no usable key (a peer not keyed yet); its paths are not probed.
    tx: Option<AeadKey>,
    /// The base the tx key came from (a new base, after a rekey, makes a new tx key).
    tx_base: Zeroizing<Vec<u8>>,
    counter: u64,
    /// The bases a peer's probes may use: those of its live inbound SAs (during a rekey there
    /// are two or more, make-before-break like the SAs themselves).
    rx: Vec<RxKey>,
}

struct RxKey {
    base: Zeroizing<Vec<u8>>,
    key: Option<(u32, AeadKey)>,
    /// When the key was last derived: a new epoch is accepted at most every 100 ms, so a
    /// stream of forged epochs cannot make us run HKDF per packet.
    derived_at: u64,
}

impl RxKey {
    fn new(base: Zeroizing<Vec<u8>>) -> Self {
        Self {
            base,
            key: None,
            derived_at: 0,
        }
    }
}

struct ProbePeer {
    name: String,
    keys: PeerKeys,
    monitors: Vec<PathMonitor>,
}

/// The base keying material of a peer's probes: the ESP key || salt of one of its SAs each
/// way (see [`probe_keys`]); inbound, every live one.
pub struct ProbeKeys {
    pub out: Zeroizing<Vec<u8>>,
    pub inbound: Vec<Zeroizing<Vec<u8>>>,
}

/// The probe keys of each overlay peer of `t`: those of its tunnels of the tenant with the
/// lowest VNI, which both ends agree on; outbound, the sending tunnel's; inbound, every
/// tunnel's (the sending one first).
pub fn probe_keys(t: &Tables) -> Vec<ProbeKeys> {
    (0..t.peers.len())
        .map(|pi| {
            let vni = |x: &TunnelInfo| {
                t.tenants
                    .get(usize::from(x.tenant))
                    .map_or(u32::MAX, |tn| tn.vni)
            };
            let mine = || {
                t.tunnels
                    .iter()
                    .enumerate()
                    .filter(move |(_, x)| x.peer_index == Some(pi as u16))
            };
            let lowest = mine().map(|(_, x)| vni(x)).min();
            let mut out = Zeroizing::new(Vec::new());
            let mut inbound = Vec::new();
            for (i, x) in mine().filter(|(_, x)| Some(vni(x)) == lowest) {
                let Some(Some(k)) = t.keys.get(i) else {
                    continue;
                };
                if x.sends() && out.is_empty() {
                    out = k.out.clone();
                    inbound.insert(0, k.inbound.clone());
                } else {
                    inbound.push(k.inbound.clone());
                }
            }
            ProbeKeys { out, inbound }
        })
        .collect()
}

/// Path monitoring as worker 0 runs it.
pub struct Prober {
    peers: Vec<ProbePeer>,
    /// Each peer's paths, as the monitors follow them (to match them up in `sync`).
    paths_of: Vec<Vec<CircuitInfo>>,
    board: Arc<PathBoard>,
    cfg: MonitorConfig,
    /// The tables' `overlay_version` the peers were last taken from.
    overlay_version: u64,
    backend: Backend,
    epoch: u32,
    clock: Instant,
    port: u16,
    next_publish: u64,
    /// When `poll` has something to do next.
    next_wake: u64,
    /// Every worker's published counters (packets per path), to tell idle paths.
    traffic: Vec<Arc<arc_swap::ArcSwap<crate::tunnel::SaStats>>>,
    /// Per peer and path: the packets counted at the last look, and when the path last
    /// carried traffic (ns).
    last_packets: Vec<Vec<u64>>,
    last_busy: Vec<Vec<u64>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("peers", &self.peers.len())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// How often the probe worker publishes the figures and steers the policies' traffic (the
/// states are published at once).
const PUBLISH_NS: u64 = 100_000_000;

/// A path that carried no tunnel packet for this long (and is no SLA policy's) is idle.
pub const IDLE_AFTER_NS: u64 = 5_000_000_000;

/// The SLA's latency is the median of this many recent RTTs (1 s of probes at 100 ms): it
/// follows a change within a few probes and ignores a single slow one.
const SLA_RTT_PROBES: usize = 10;

/// The paths a policy may use, in its order of preference: those whose circuit (our port) it
/// lists, in its order; all of them, in path order, when it lists none.
pub fn policy_candidates(p: &policy::Policy, paths: &[CircuitInfo]) -> Vec<usize> {
    if p.circuits.is_empty() {
        return (0..paths.len().min(MAX_PATHS)).collect();
    }
    let mut v = Vec::new();
    for &port in &p.circuits {
        for (i, c) in paths.iter().enumerate().take(MAX_PATHS) {
            if c.port == port {
                v.push(i);
            }
        }
    }
    v
}

impl Prober {
    /// The prober of `peers` (with their probe keys, parallel), sending from and to UDP
    /// `port`; `clock` is the engine's start (the board's timestamps count from it).
    pub fn new(
        peers: &[PeerPaths],
        keys: Vec<ProbeKeys>,
        cfg: MonitorConfig,
        port: u16,
        board: Arc<PathBoard>,
        backend: Backend,
        clock: Instant,
    ) -> Result<Prober, KeyError> {
        let mut e = [0u8; 4];
        aws_lc_rs::rand::fill(&mut e).map_err(|_| KeyError::Unavailable)?;
        let epoch = u32::from_be_bytes(e);
        let mut out = Vec::new();
        for (p, k) in peers.iter().zip(keys) {
            out.push(ProbePeer {
                name: p.name.clone(),
                keys: PeerKeys {
                    tx: Some(probe::derive_key(backend, &k.out, epoch)?),
                    tx_base: k.out,
                    counter: 0,
                    rx: k.inbound.into_iter().map(RxKey::new).collect(),
                },
                monitors: p.paths.iter().map(|_| PathMonitor::new(cfg)).collect(),
            });
        }
        Ok(Prober {
            peers: out,
            paths_of: peers.iter().map(|p| p.paths.clone()).collect(),
            board,
            cfg,
            overlay_version: 0,
            backend,
            epoch,
            clock,
            port,
            next_publish: 0,
            next_wake: 0,
            traffic: Vec::new(),
            last_packets: peers.iter().map(|p| vec![0; p.paths.len()]).collect(),
            last_busy: peers.iter().map(|p| vec![0; p.paths.len()]).collect(),
        })
    }

    /// Nanoseconds since the engine started.
    #[inline]
    pub fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Watches these counters (every worker's) to tell idle paths: a path that carried no
    /// tunnel packet for [`IDLE_AFTER_NS`] and is no SLA policy's path is probed at the idle
    /// interval. Without counters every path counts as active.
    pub fn watch_traffic(&mut self, workers: Vec<Arc<arc_swap::ArcSwap<crate::tunnel::SaStats>>>) {
        self.traffic = workers;
    }

    /// Marks each path active or idle at `now` (see [`watch_traffic`](Self::watch_traffic)).
    pub(crate) fn update_activity(&mut self, t: &Tables, now: u64) {
        if self.traffic.is_empty() {
            return;
        }
        for (pi, peer) in self.peers.iter_mut().enumerate() {
            let board = self.board.peers.get(pi);
            for (ci, m) in peer.monitors.iter_mut().enumerate() {
                let slot = pi * MAX_PATHS + ci;
                let packets: u64 = self
                    .traffic
                    .iter()
                    .map(|s| {
                        let s = s.load();
                        s.path_tx.get(slot).map_or(0, |c| c.get())
                            + s.path_rx.get(slot).map_or(0, |c| c.get())
                    })
                    .sum();
                let (Some(last), Some(busy)) = (
                    self.last_packets.get_mut(pi).and_then(|v| v.get_mut(ci)),
                    self.last_busy.get_mut(pi).and_then(|v| v.get_mut(ci)),
                ) else {
                    continue;
                };
                if packets != *last {
                    *last = packets;
                    *busy = now;
                }
                let sla_path = board.is_some_and(|b| {
                    t.policies.iter().enumerate().any(|(k, p)| {
                        p.sla.is_some()
                            && [&b.class_path, &b.class_second].iter().any(|v| {
                                v.get(k)
                                    .is_some_and(|a| usize::from(a.load(Ordering::Relaxed)) == ci)
                            })
                    })
                });
                // (At start `busy` is 0: every path is active for the first IDLE_AFTER_NS.)
                m.set_active(sla_path || now.saturating_sub(*busy) < IDLE_AFTER_NS);
                if let Some(st) = board.and_then(|b| b.paths.get(ci)) {
                    st.active.set(u64::from(m.active()));
                }
            }
        }
    }

    /// The monitor of path `path` of peer `peer`.
    pub fn monitor(&self, peer: usize, path: usize) -> Option<&PathMonitor> {
        self.peers.get(peer)?.monitors.get(path)
    }

    /// Whether [`poll`](Self::poll) has something to do at `now`.
    #[inline]
    pub fn due(&self, now: u64) -> bool {
        now >= self.next_wake
    }

    /// Runs the monitors: sends the probes that are due through `send(port, frame)` (false:
    /// the frame could not be queued), counts the late ones (not while `local_overload`) and
    /// publishes state changes at once, figures every 100 ms.
    pub fn poll(
        &mut self,
        t: &Tables,
        local_overload: bool,
        mut send: impl FnMut(u16, &[u8]) -> bool,
    ) {
        let now = self.now();
        let mut wake = u64::MAX;
        let mut frame = [0u8; 128];
        for (pi, peer) in self.peers.iter_mut().enumerate() {
            let Some(spec) = t.peers.get(pi) else {
                continue;
            };
            for (ci, m) in peer.monitors.iter_mut().enumerate() {
                let p = m.poll(now, local_overload);
                if let Some(state) = p.change {
                    publish_state(&self.board, pi, ci, state, now);
                }
                let Some(seq) = p.send else { continue };
                let Some(path) = spec.paths.get(ci) else {
                    continue;
                };
                let probe = Probe {
                    kind: Kind::Request,
                    busy: local_overload,
                    sender_circuit: ci as u8,
                    receiver_circuit: 0,
                    domain: 0,
                    epoch: self.epoch,
                    counter: peer.keys.counter,
                    seq,
                    hold_ns: 0,
                    sent_ns: now,
                    echoed_ns: 0,
                };
                peer.keys.counter += 1;
                let sent = peer
                    .keys
                    .tx
                    .as_ref()
                    .and_then(|key| request_frame(t, path, self.port, &probe, key, &mut frame))
                    .is_some_and(|(port, len)| send(port, &frame[..len]));
                if !sent {
                    m.on_send_failed(seq);
                }
            }
            for m in &peer.monitors {
                wake = wake.min(m.next_event());
            }
        }
        if now >= self.next_publish {
            self.next_publish = now + PUBLISH_NS;
            self.publish();
            self.steer_classes(t);
            self.update_activity(t, now);
        }
        self.next_wake = wake.min(self.next_publish);
    }

    /// Copies every path's figures to the board.
    pub fn publish(&self) {
        for (pi, peer) in self.peers.iter().enumerate() {
            let Some(b) = self.board.peers.get(pi) else {
                continue;
            };
            for (m, st) in peer.monitors.iter().zip(&b.paths) {
                let s: PathStats = m.stats();
                st.rtt_p50.set(s.rtt_p50_ns.unwrap_or(u64::MAX));
                st.rtt_p99.set(s.rtt_p99_ns.unwrap_or(u64::MAX));
                st.loss_ppm.set(
                    s.loss_pct
                        .map_or(u64::MAX, |l| (l * 10_000.0).round() as u64),
                );
                st.jitter.set(s.jitter_ns);
                st.probes_sent.set(s.sent);
                st.probes_answered.set(s.answered);
                st.probes_lost.set(s.lost);
                st.downs.set(s.downs);
                st.false_alarms.set(s.false_alarms);
            }
        }
    }

    /// Chooses each policy's path (and second path) to each peer from the paths' figures and
    /// publishes the choices (see [`policy::choose_class_path`]).
    pub fn steer_classes(&self, t: &Tables) {
        if t.policies.is_empty() {
            return;
        }
        let now = self.now();
        for (pi, peer) in self.peers.iter().enumerate() {
            let (Some(spec), Some(b)) = (t.peers.get(pi), self.board.peers.get(pi)) else {
                continue;
            };
            let figures: Vec<PathFigures> = peer
                .monitors
                .iter()
                .zip(&b.paths)
                .map(|(m, st)| {
                    let s = m.stats();
                    PathFigures {
                        state: s.state,
                        fresh_down: s.state == PathState::Down
                            && now.saturating_sub(st.changed_at.get()) < policy::SETTLE_NS,
                        rtt_ns: m.recent_rtt(SLA_RTT_PROBES),
                        loss_pct: s.loss_pct,
                        jitter_ns: s.jitter_ns,
                    }
                })
                .collect();
            for (ci, st) in b.paths.iter().enumerate() {
                let mask = t
                    .policies
                    .iter()
                    .enumerate()
                    .take(64)
                    .filter(|(_, p)| {
                        p.sla
                            .as_ref()
                            .is_some_and(|s| figures.get(ci).is_some_and(|f| s.met_by(f, 1.0)))
                    })
                    .fold(0u64, |m, (k, _)| m | 1 << k);
                st.sla_met.set(mask);
            }
            for (k, p) in t.policies.iter().enumerate() {
                let candidates = policy_candidates(p, &spec.paths);
                let (Some(cur), Some(second), Some(moves)) = (
                    b.class_path.get(k),
                    b.class_second.get(k),
                    b.class_moves.get(k),
                ) else {
                    continue;
                };
                let old = cur.load(Ordering::Relaxed);
                let new = policy::choose_class_path(p.sla.as_ref(), old, &candidates, &figures);
                if new != old {
                    cur.store(new, Ordering::Relaxed);
                    if old != NO_PATH {
                        moves.add(1);
                    }
                }
                let s = if p.mode.has_second() && new != NO_PATH {
                    policy::choose_second_path(p.sla.as_ref(), new, &candidates, &figures)
                } else {
                    NO_PATH
                };
                second.store(s, Ordering::Relaxed);
            }
        }
    }

    /// Opens a probe of peer `peer` sent under `epoch` with the first of the peer's inbound
    /// bases whose key verifies it (each key derived when its epoch is new, rate-limited).
    fn open(&mut self, peer: usize, epoch: u32, body: &[u8], now: u64) -> Option<Probe> {
        let backend = self.backend;
        let k = &mut self.peers.get_mut(peer)?.keys;
        for rx in &mut k.rx {
            if rx.key.as_ref().is_none_or(|(e, _)| *e != epoch) {
                if rx.key.is_some() && now.saturating_sub(rx.derived_at) < 100_000_000 {
                    continue;
                }
                let Ok(key) = probe::derive_key(backend, &rx.base, epoch) else {
                    continue;
                };
                rx.key = Some((epoch, key));
                rx.derived_at = now;
            }
            if let Some(Ok(msg)) = rx.key.as_ref().map(|(_, key)| Probe::read(key, body)) {
                return Some(msg);
            }
        }
        None
    }

    /// Follows the overlay peers of a new table generation (worker 0 calls this once per
    /// burst; it returns at once unless the peers or their keys changed): a peer that stays
    /// keeps its monitors for the paths that stay, and its probe counter unless its key
    /// changed; new peers and paths start unknown; the states go to the tables' board.
    pub fn sync(&mut self, t: &Tables) {
        if t.overlay_version == self.overlay_version {
            return;
        }
        self.overlay_version = t.overlay_version;
        let keys = probe_keys(t);
        let mut old: Vec<Option<ProbePeer>> = std::mem::take(&mut self.peers)
            .into_iter()
            .map(Some)
            .collect();
        let old_paths = std::mem::take(&mut self.paths_of);
        let mut last_packets = Vec::new();
        let mut last_busy = Vec::new();
        for (spec, k) in t.peers.iter().zip(keys) {
            let prev = old
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.name == spec.name))
                .and_then(|i| old.get_mut(i).and_then(Option::take).map(|p| (i, p)));
            let mut monitors = Vec::new();
            let mut packets = Vec::new();
            let mut busy = Vec::new();
            let (mut kept_monitors, kept_paths, kept_traffic, kept_keys) = match prev {
                Some((i, p)) => (
                    p.monitors.into_iter().map(Some).collect::<Vec<_>>(),
                    old_paths.get(i).cloned().unwrap_or_default(),
                    (
                        self.last_packets.get(i).cloned().unwrap_or_default(),
                        self.last_busy.get(i).cloned().unwrap_or_default(),
                    ),
                    Some(p.keys),
                ),
                None => (Vec::new(), Vec::new(), (Vec::new(), Vec::new()), None),
            };
            for c in &spec.paths {
                let at = kept_paths
                    .iter()
                    .position(|o: &CircuitInfo| o.port == c.port && o.remote == c.remote);
                match at.and_then(|j| kept_monitors.get_mut(j).and_then(Option::take)) {
                    Some(m) => {
                        let j = at.unwrap_or(0);
                        monitors.push(m);
                        packets.push(kept_traffic.0.get(j).copied().unwrap_or(0));
                        busy.push(kept_traffic.1.get(j).copied().unwrap_or(0));
                    }
                    None => {
                        monitors.push(PathMonitor::new(self.cfg));
                        packets.push(0);
                        busy.push(0);
                    }
                }
            }
            let keys = match kept_keys {
                Some(mut pk) if *pk.tx_base == *k.out => {
                    pk.rx = k.inbound.into_iter().map(RxKey::new).collect();
                    pk
                }
                // A new key (or a new peer): a new tx key and counter. A peer with no usable
                // key yet (not keyed) is not probed until it has one.
                _ => PeerKeys {
                    tx: probe::derive_key(self.backend, &k.out, self.epoch).ok(),
                    tx_base: k.out,
                    counter: 0,
                    rx: k.inbound.into_iter().map(RxKey::new).collect(),
                },
            };
            self.peers.push(ProbePeer {
                name: spec.name.clone(),
                keys,
                monitors,
            });
            last_packets.push(packets);
            last_busy.push(busy);
            self.paths_of.push(spec.paths.clone());
        }
        self.last_packets = last_packets;
        self.last_busy = last_busy;
        self.board = t.board.clone();
        let now = self.now();
        for (pi, p) in self.peers.iter().enumerate() {
            for (ci, m) in p.monitors.iter().enumerate() {
                publish_state(&self.board, pi, ci, m.state(), now);
            }
        }
        self.publish();
        self.next_wake = 0;
    }
}

fn publish_state(board: &PathBoard, peer: usize, path: usize, state: PathState, now: u64) {
    let Some(b) = board.peers.get(peer) else {
        return;
    };
    if let Some(st) = b.paths.get(path) {
        st.state.set(match state {
            PathState::Unknown => 0,
            PathState::Up => 1,
            PathState::Down => 2,
        });
        st.changed_at.set(now.max(1));
    }
    if path < 32 {
        match state {
            PathState::Down => b.usable.fetch_and(!(1 << path), Ordering::Relaxed),
            _ => b.usable.fetch_or(1 << path, Ordering::Relaxed),
        };
    }
}

/// Writes a probe request on `path` into `out`: Ethernet to the underlay's next hop, IP from
/// our circuit address to the peer's, UDP `port` to `port`. `None`: no route or neighbor yet
/// (the resolver solicits the circuits' next hops) or no room.
fn request_frame(
    t: &Tables,
    path: &CircuitInfo,
    port: u16,
    probe: &Probe,
    key: &AeadKey,
    out: &mut [u8],
) -> Option<(u16, usize)> {
    let hop = t
        .routes
        .lookup(path.remote)
        .filter(|h| h.port == path.port)?;
    let mac = *t.neighbor(path.port, hop.via.unwrap_or(path.remote))?;
    let ours = t.ports.get(usize::from(path.port))?;
    let len = write_frame(
        ours.mac,
        mac,
        path.local,
        path.remote,
        port,
        probe,
        key,
        out,
    )?;
    Some((path.port, len))
}

/// Ethernet / IPv4 or IPv6 / UDP / probe; returns the frame's length.
#[allow(clippy::too_many_arguments)]
fn write_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    probe: &Probe,
    key: &AeadKey,
    out: &mut [u8],
) -> Option<usize> {
    let udp_len = 8 + probe::LEN;
    let (ethertype, ip_len) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (ethernet::ETHERTYPE_IPV4, ipv4::MIN_HEADER_LEN),
        (IpAddr::V6(_), IpAddr::V6(_)) => (ethernet::ETHERTYPE_IPV6, ipv6::HEADER_LEN),
        _ => return None,
    };
    let total = ethernet::HEADER_LEN + ip_len + udp_len;
    let b = out.get_mut(..total)?;
    ethernet::write_header(b, &dst_mac, &src_mac, ethertype);
    let l4 = ethernet::HEADER_LEN + ip_len;
    probe.write(key, &mut b[l4 + 8..])?;
    udp::write_header(&mut b[l4..], port, port, udp_len as u16, 0);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4::write_header(
                &mut b[ethernet::HEADER_LEN..],
                (ip_len + udp_len) as u16,
                64,
                ipv4::PROTO_UDP,
                s,
                d,
            );
            let c = udp::ipv4_checksum(&s, &d, &b[l4..]);
            b[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ipv6::write_header(
                &mut b[ethernet::HEADER_LEN..],
                udp_len as u16,
                ipv4::PROTO_UDP,
                64,
                &s,
                &d,
            );
            let c = udp::ipv6_checksum(&s, &d, &b[l4..]);
            b[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        }
        _ => return None,
    }
    Some(total)
}

/// A probe that arrived on `ingress.port` (a WAN port): checked against the peer whose
/// address on that circuit sent it; a request is answered in the same buffer, a reply goes
/// to the path's monitor. Other workers hand probes to worker 0.
pub(crate) fn receive_probe<B: PacketBuf>(
    t: &Tables,
    ingress: Ingress,
    pkt: &mut B,
    fx: &mut Context,
) -> Verdict {
    let Some(prober) = fx.prober.as_deref_mut() else {
        if fx.sas.worker != 0 {
            return Verdict::Handoff {
                worker: 0,
                stage: Stage::Frame,
            };
        }
        return Verdict::Drop(DropReason::ProbeRejected);
    };
    let now = prober.now();
    let d = pkt.data();
    // The outer headers (the classifier checked the IP version and UDP port).
    let (src, dst, l4) = match d.get(ethernet::HEADER_LEN).map(|b| b >> 4) {
        Some(4) => {
            let Ok(ip) = ipv4::Packet::new_checked(&d[ethernet::HEADER_LEN..]) else {
                return Verdict::Drop(DropReason::Malformed);
            };
            if ip.is_fragment() {
                return Verdict::Drop(DropReason::ProbeRejected);
            }
            (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()), ip.header_len())
        }
        Some(6) => {
            let Ok(ip) = ipv6::Packet::new_checked(&d[ethernet::HEADER_LEN..]) else {
                return Verdict::Drop(DropReason::Malformed);
            };
            (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()), ipv6::HEADER_LEN)
        }
        _ => return Verdict::Drop(DropReason::Malformed),
    };
    let at = ethernet::HEADER_LEN + l4;
    let Ok(dgram) = udp::Datagram::new_checked(&d[at.min(d.len())..]) else {
        return Verdict::Drop(DropReason::Malformed);
    };
    let body = dgram.payload();
    // Which path: the peer's address on the circuit it came in on.
    let Some(&(peer, ci)) = t.path_of.get(&NeighborKey::new(ingress.port, src)) else {
        return Verdict::Drop(DropReason::ProbeRejected);
    };
    let Some(epoch) = probe::peek_epoch(body) else {
        return Verdict::Drop(DropReason::ProbeRejected);
    };
    let Some(msg) = prober.open(usize::from(peer), epoch, body, now) else {
        return Verdict::Drop(DropReason::ProbeRejected);
    };
    match msg.kind {
        Kind::Reply => {
            let Some(m) = prober
                .peers
                .get_mut(usize::from(peer))
                .and_then(|p| p.monitors.get_mut(usize::from(ci)))
            else {
                return Verdict::Drop(DropReason::ProbeRejected);
            };
            // A reply that came back on another path than its request's is not this path's.
            if usize::from(msg.receiver_circuit) != usize::from(ci) {
                return Verdict::Drop(DropReason::ProbeRejected);
            }
            if let Some(state) = m.on_reply(now, msg.seq, u64::from(msg.hold_ns)) {
                publish_state(
                    &prober.board,
                    usize::from(peer),
                    usize::from(ci),
                    state,
                    now,
                );
            }
            Verdict::Consumed
        }
        Kind::Request => {
            let Some(pp) = prober.peers.get_mut(usize::from(peer)) else {
                return Verdict::Drop(DropReason::ProbeRejected);
            };
            let Some(tx) = pp.keys.tx.as_ref() else {
                return Verdict::Drop(DropReason::ProbeRejected);
            };
            let reply = msg.reply(prober.epoch, pp.keys.counter, now, 0, false);
            pp.keys.counter += 1;
            let Some(ours) = t.ports.get(usize::from(ingress.port)) else {
                return Verdict::Drop(DropReason::NoRoute);
            };
            let mut frame = [0u8; 128];
            let Some(len) = write_frame(
                ours.mac,
                ingress.src_mac,
                dst,
                src,
                prober.port,
                &reply,
                tx,
                &mut frame,
            ) else {
                return Verdict::Drop(DropReason::NoBuffer);
            };
            if !pkt.set_len(len) {
                return Verdict::Drop(DropReason::NoBuffer);
            }
            pkt.data_mut().copy_from_slice(&frame[..len]);
            Verdict::Reply(ingress.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_path_unless_it_is_down_then_a_usable_one_by_flow() {
        let h = || 0x8000_0000u32; // scales to the middle
        assert_eq!(choose_circuit(Some(1), h, 2, 0b11), 1);
        assert_eq!(choose_circuit(Some(1), h, 2, 0b01), 0, "1 is down");
        assert_eq!(
            choose_circuit(Some(1), h, 2, 0b00),
            1,
            "all down: preferred anyway"
        );
        assert_eq!(
            choose_circuit(Some(7), h, 2, 0b11),
            1,
            "out of range: the last"
        );
        assert_eq!(choose_circuit(None, h, 4, 0b1111), 2);
        assert_eq!(
            choose_circuit(None, h, 4, 0b1011),
            1,
            "2 down: the middle of 0, 1, 3"
        );
        assert_eq!(choose_circuit(None, h, 1, 0), 0);
    }

    #[test]
    fn a_flow_moves_only_when_its_path_goes_down() {
        // Flows on path 0..4; path 2 goes down: only its flows move, spread over the others.
        let mut moved = [0u32; 4];
        for f in 0..4000u32 {
            let h = f.wrapping_mul(0x9e37_79b1);
            let before = choose_circuit(None, || h, 4, 0b1111);
            let after = choose_circuit(None, || h, 4, 0b1011);
            if before != 2 {
                assert_eq!(before, after, "flow {f} moved off a path that stayed up");
            } else {
                assert_ne!(after, 2);
                moved[after] += 1;
            }
        }
        assert!(
            moved[0] > 200 && moved[1] > 200 && moved[3] > 200,
            "{moved:?}"
        );
    }

    #[test]
    fn nth_set_bit() {
        assert_eq!(nth_set(0b1011, 0), 0);
        assert_eq!(nth_set(0b1011, 1), 1);
        assert_eq!(nth_set(0b1011, 2), 3);
    }
}
