//! The BGP speaker of `sdwand`, sans-IO: the sessions ([`Fsm`]), the [`Rib`], and (on an
//! edge) what turns routes into overlay state: the [`Sites`] table and the [`KeyManager`].
//! The owner does the I/O (sockets, clock) and carries out the [`Io`] it returns; it reads
//! [`Speaker::sites`] and [`Speaker::keys`] when [`Speaker::take_overlay_changed`] says so.
//!
//! What an edge advertises, per tenant (docs/bgp.md):
//! - its client prefixes as VPN-IPv4/VPN-IPv6 routes: RD `loopback:N` (N = the tenant's place
//!   in the configuration, from 1), the tenant's Route Target, next hop = the loopback;
//! - its underlay, in two forms carrying the same Tunnel Encapsulation attribute (tunnel type
//!   25: one tunnel TLV per WAN circuit with the Extended Port, the tenant's X25519 public key
//!   and its generation as IPsec SA id): an SD-WAN NLRI of SAFI 74 per circuit (Port-Local-ID
//!   = the circuit's index, color = the VNI, node = the loopback) to peers that negotiated
//!   SAFI 74; and the loopback's VPN host route (the same RD and Route Target) to every peer,
//!   which a reflector that does not know SAFI 74 (FRR 8.4) reflects unchanged.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::fsm::{Action, Fsm, SessionConfig, State};
use super::rib::{LocChange, Path, PeerId, PeerPolicy, Rib, RibConfig, RouteKey, LOCAL};
use super::wire::attributes::{AsPath, Origin};
use super::wire::extcomm::ExtCommunity;
use super::wire::nlri::{Label, RtConstraint};
use super::wire::open::{Capability, GrFamily, GracefulRestart};
use super::wire::rd::RouteDistinguisher;
use super::wire::sdwan::SdWanNlri;
use super::wire::tunnel_encap::{TunnelEncap, WanCircuitAdvert};
use super::wire::{AttrValue, Family, Open, PathAttribute};
use crate::keys::{KeyEvent, KeyManager};
use crate::sites::{Rt, Sites};

/// One neighbor.
#[derive(Debug, Clone)]
pub struct NeighborConfig {
    pub address: IpAddr,
    pub port: u16,
    pub local_address: Option<IpAddr>,
    pub remote_as: u32,
    pub passive: bool,
    pub hold_time: u16,
    /// TCP-MD5 key (the owner sets it on the sockets).
    pub md5: Option<Arc<zeroize::Zeroizing<Vec<u8>>>>,
    /// A reflector's client.
    pub client: bool,
    /// Route Targets the neighbor may send and receive (`None`: all).
    pub allowed: Option<Vec<Rt>>,
}

/// A tenant this edge advertises.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub rt: Rt,
    pub vni: u32,
    /// Its client prefixes.
    pub prefixes: Vec<IpNet>,
}

/// One of this edge's WAN circuits.
#[derive(Debug, Clone)]
pub struct CircuitConfig {
    pub address: IpAddr,
    pub transport: u8,
}

#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// The edge's loopback (none on a pure reflector).
    pub loopback: Option<IpAddr>,
    pub connect_retry: Duration,
    /// Graceful restart time we announce and honour; 0: off.
    pub graceful_restart: u16,
    /// `Some`: reflector with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    pub neighbors: Vec<NeighborConfig>,
    pub tenants: Vec<TenantConfig>,
    pub circuits: Vec<CircuitConfig>,
    /// How long keys are announced for (the rotation period), for the public key sub-TLV.
    pub key_duration_s: u32,
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Open a connection to the neighbor; report `connected` or `connect_failed`.
    Connect(PeerId),
    Send(PeerId, Vec<u8>),
    Close(PeerId),
    /// Something for the log.
    Log(String),
}

/// The families every speaker announces. Route Target constraint (RFC 4684) is used with
/// the peers that announce it too: an edge asks for its tenants' routes only.
pub const FAMILIES: [Family; 5] = [
    Family::IPV4_VPN,
    Family::IPV6_VPN,
    Family::IPV4_SDWAN,
    Family::IPV6_SDWAN,
    Family::IPV4_RT_CONSTRAINT,
];

/// How long a restarting reflector waits for its peers' tables at most (FRR's
/// `select-defer-time`, shorter: edges reconnect within seconds).
pub const SELECT_DEFER: Duration = Duration::from_secs(30);

/// How long after a session's start our key timers wait for the neighbor's End-of-RIB at
/// most, should one that announced graceful restart never end its first update (FRR's
/// `select-defer-time` default).
pub const EOR_WAIT: Duration = Duration::from_secs(360);

/// Our capabilities: the families, route refresh, graceful restart (with the R bit while
/// `restarting`).
fn capabilities(cfg: &SpeakerConfig, restarting: bool) -> Vec<Capability> {
    let mut caps: Vec<Capability> = FAMILIES
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    caps.push(Capability::RouteRefresh);
    if cfg.graceful_restart > 0 {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            flags: if restarting {
                GracefulRestart::RESTARTING
            } else {
                0
            },
            restart_time: cfg.graceful_restart.min(4095),
            families: FAMILIES
                .iter()
                .map(|f| GrFamily {
                    family: *f,
                    // The data plane keeps forwarding while the control plane restarts.
                    flags: GrFamily::FORWARDING_PRESERVED,
                })
                .collect(),
        }));
    }
    caps
}

/// The key generation marker: an extended community of the experimental, transitive type
/// 0x80 (RFC 7153 §5.1), sub-type 0x5d, value 2 zero bytes and the generation.
pub fn key_generation_community(generation: u32) -> ExtCommunity {
    let g = generation.to_be_bytes();
    ExtCommunity::from_bytes([0x80, 0x5d, 0, 0, g[0], g[1], g[2], g[3]])
}

/// Per neighbor: its session and the graceful-restart time it announced.
#[derive(Debug)]
struct Neighbor {
    cfg: NeighborConfig,
    fsm: Fsm,
    /// The neighbor's restart time, when it announced graceful restart.
    restart: Option<Duration>,
    /// Whether the neighbor announced graceful restart in this session, and so ends its
    /// first update with End-of-RIB (RFC 4724 §2).
    sends_eor: bool,
    /// When the session came up.
    up_at: Option<Instant>,
}

pub struct Speaker {
    /// A reflector deferring its first UPDATEs (see [`Speaker::new`]), until `defer_until`.
    restarting: bool,
    defer_until: Option<Instant>,
    cfg: SpeakerConfig,
    neighbors: Vec<Neighbor>,
    rib: Rib,
    sites: Sites,
    keys: Option<KeyManager>,
    route_ids: HashMap<RouteKey, u64>,
    next_route_id: u64,
    overlay_changed: bool,
    /// Local routes advertised, to withdraw what is no longer wanted.
    advertised: BTreeSet<RouteKey>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("neighbors", &self.neighbors.len())
            .finish_non_exhaustive()
    }
}

impl Speaker {
    /// A speaker with `keys` (an edge) or without (a pure reflector). The sessions start with
    /// [`start`](Self::start).
    pub fn new(cfg: SpeakerConfig, keys: Option<KeyManager>) -> Self {
        // A reflector starts as a restarting speaker (RFC 4724 §4.1): it tells its peers so
        // (R bit) and sends nothing until every peer sent its table or the deferral ends, so
        // that edges that kept its routes as stale do not purge them at its first End-of-RIB.
        let restarting = cfg.cluster_id.is_some() && cfg.graceful_restart > 0;
        let caps = capabilities(&cfg, restarting);
        let mut rib = Rib::new(RibConfig {
            router_id: cfg.router_id,
            cluster_id: cfg.cluster_id,
            local_as: cfg.asn,
        });
        let neighbors = cfg
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, n)| {
                rib.add_peer(
                    i,
                    PeerPolicy {
                        router_id: Ipv4Addr::UNSPECIFIED,
                        address: n.address,
                        client: n.client,
                        allowed: n.allowed.as_ref().map(|v| v.iter().copied().collect()),
                    },
                );
                let seed = u64::from(u32::from(cfg.router_id)) << 16 ^ i as u64;
                Neighbor {
                    cfg: n.clone(),
                    fsm: Fsm::new(
                        SessionConfig {
                            remote_as: n.remote_as,
                            router_id: cfg.router_id,
                            passive: n.passive,
                            hold_time: n.hold_time,
                            connect_retry: cfg.connect_retry,
                        },
                        Open::new(cfg.asn, n.hold_time, cfg.router_id, caps.clone()),
                        seed,
                    ),
                    restart: None,
                    sends_eor: false,
                    up_at: None,
                }
            })
            .collect();
        Speaker {
            restarting,
            defer_until: None,
            cfg,
            neighbors,
            rib,
            sites: Sites::default(),
            keys,
            route_ids: HashMap::new(),
            next_route_id: 1,
            overlay_changed: false,
            advertised: BTreeSet::new(),
        }
    }

    /// Starts every session and originates our routes.
    pub fn start(&mut self, now: Instant) -> Vec<Io> {
        let mut io = Vec::new();
        if self.restarting {
            self.defer_until = Some(now + SELECT_DEFER);
            self.rib.hold = true;
        }
        if let Some(k) = &mut self.keys {
            for t in &self.cfg.tenants {
                if let Err(e) = k.add_tenant(t.vni, now) {
                    io.push(Io::Log(format!("tenant VNI {}: no key: {e}", t.vni)));
                }
            }
        }
        self.originate();
        for i in 0..self.neighbors.len() {
            let a = self.neighbors[i].fsm.start(now);
            self.actions(i, a, now, &mut io);
        }
        self.flush(now, &mut io);
        io
    }

    /// Stops every session (Cease / Administrative Shutdown).
    pub fn stop(&mut self, now: Instant, reason: &str) -> Vec<Io> {
        let mut io = Vec::new();
        for i in 0..self.neighbors.len() {
            let a = self.neighbors[i].fsm.stop(now, reason);
            self.actions(i, a, now, &mut io);
        }
        io
    }

    pub fn connected(&mut self, peer: PeerId, now: Instant) -> Vec<Io> {
        self.event(peer, now, |f| f.connected(now))
    }

    pub fn connect_failed(&mut self, peer: PeerId, now: Instant, why: &str) -> Vec<Io> {
        self.event(peer, now, |f| f.connect_failed(now, why))
    }

    pub fn closed(&mut self, peer: PeerId, now: Instant, why: &str) -> Vec<Io> {
        self.event(peer, now, |f| f.closed(now, why))
    }

    pub fn received(&mut self, peer: PeerId, now: Instant, bytes: &[u8]) -> Vec<Io> {
        self.event(peer, now, |f| f.received(now, bytes))
    }

    /// The neighbor that a connection from `addr` belongs to, if it may connect now.
    pub fn accepts(&self, addr: IpAddr) -> Option<PeerId> {
        self.neighbors
            .iter()
            .position(|n| n.cfg.address == addr && n.fsm.accepts())
    }

    /// Timers of the sessions, the RIB and the keys.
    pub fn poll(&mut self, now: Instant) -> Vec<Io> {
        let mut io = Vec::new();
        for i in 0..self.neighbors.len() {
            let a = self.neighbors[i].fsm.poll(now);
            self.actions(i, a, now, &mut io);
        }
        self.rib.poll(now);
        self.key_events(now, &mut io);
        self.flush(now, &mut io);
        io
    }

    /// Asks for a new key pair for the tenant `vni`, made at the next [`poll`](Self::poll)
    /// (make-before-break, as a scheduled rotation). Returns the generation in use and
    /// what the new key waits for, if anything.
    pub fn rotate_key(
        &mut self,
        vni: u32,
        now: Instant,
    ) -> Result<(u32, Option<&'static str>), String> {
        let synchronized = self.synchronized_at().is_some_and(|at| at <= now);
        let keys = self.keys.as_mut().ok_or("no keys")?;
        let (generation, _) = keys
            .local_key(vni)
            .ok_or_else(|| format!("no key for VNI {vni}"))?;
        keys.rekey(vni, now).map_err(|e| e.to_string())?;
        let waits = if keys.rotation_waits_for_previous(vni, now) {
            Some("the previous key's grace")
        } else if !synchronized {
            Some("a synchronized BGP session")
        } else {
            None
        };
        Ok((generation, waits))
    }

    /// The earliest time [`poll`](Self::poll) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.neighbors
            .iter()
            .filter_map(|n| n.fsm.next_deadline())
            .chain(self.rib.next_deadline())
            .chain(self.defer_until)
            .chain(self.synchronized_at().and_then(|at| {
                self.keys
                    .as_ref()
                    .and_then(KeyManager::next_deadline)
                    .map(|d| d.max(at))
            }))
            .min()
    }

    /// The data plane saw an authenticated packet on an inbound SA (rekey confirmation).
    pub fn inbound_seen(&mut self, peer: IpAddr, vni: u32, spi: u32, now: Instant) -> Vec<Io> {
        let mut io = Vec::new();
        if let Some(k) = &mut self.keys {
            k.inbound_seen(peer, vni, spi, now);
        }
        self.key_events(now, &mut io);
        self.flush(now, &mut io);
        io
    }

    /// Whether the sites or the keys changed since the last call (the owner then publishes
    /// new overlay tables).
    pub fn take_overlay_changed(&mut self) -> bool {
        std::mem::take(&mut self.overlay_changed)
    }

    pub fn sites(&self) -> &Sites {
        &self.sites
    }

    pub fn keys(&self) -> Option<&KeyManager> {
        self.keys.as_ref()
    }

    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// Per neighbor: its configuration and session.
    pub fn sessions(&self) -> impl Iterator<Item = (PeerId, &NeighborConfig, &Fsm)> {
        self.neighbors
            .iter()
            .enumerate()
            .map(|(i, n)| (i, &n.cfg, &n.fsm))
    }

    pub fn neighbor(&self, peer: PeerId) -> Option<&NeighborConfig> {
        self.neighbors.get(peer).map(|n| &n.cfg)
    }

    /// The tenant (VNI) of a Route Target we know.
    pub fn vni_of(&self, rt: &Rt) -> Option<u32> {
        self.cfg.tenants.iter().find(|t| &t.rt == rt).map(|t| t.vni)
    }

    fn event(
        &mut self,
        peer: PeerId,
        now: Instant,
        f: impl FnOnce(&mut Fsm) -> Vec<Action>,
    ) -> Vec<Io> {
        let mut io = Vec::new();
        if let Some(n) = self.neighbors.get_mut(peer) {
            let a = f(&mut n.fsm);
            self.actions(peer, a, now, &mut io);
        }
        self.flush(now, &mut io);
        io
    }

    fn actions(&mut self, peer: PeerId, actions: Vec<Action>, now: Instant, io: &mut Vec<Io>) {
        for a in actions {
            match a {
                Action::Connect => io.push(Io::Connect(peer)),
                Action::Send(b) => io.push(Io::Send(peer, b)),
                Action::Close => io.push(Io::Close(peer)),
                Action::Up { session, remote } => {
                    let restart = remote.capabilities().find_map(|c| match c {
                        Capability::GracefulRestart(g) => {
                            Some(Duration::from_secs(u64::from(g.restart_time)))
                        }
                        _ => None,
                    });
                    if let Some(n) = self.neighbors.get_mut(peer) {
                        n.restart = restart.filter(|_| self.cfg.graceful_restart > 0);
                        n.sends_eor = restart.is_some();
                        n.up_at = Some(now);
                    }
                    io.push(Io::Log(format!(
                        "neighbor {} up (AS {}, id {}, families {})",
                        self.neighbors
                            .get(peer)
                            .map_or_else(String::new, |n| n.cfg.address.to_string()),
                        remote.asn(),
                        remote.bgp_id,
                        session
                            .families
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    )));
                    // Our keys go out again with the table: the peers learn an unconfirmed
                    // key only now, so the switch to it waits switch_after from now.
                    if let Some(k) = &mut self.keys {
                        k.advertised(now);
                    }
                    self.rib.peer_up(peer, session, remote.bgp_id);
                }
                Action::Down { reason } => {
                    let keep = self.neighbors.get(peer).and_then(|n| n.restart);
                    io.push(Io::Log(format!(
                        "neighbor {} down: {reason}{}",
                        self.neighbors
                            .get(peer)
                            .map_or_else(String::new, |n| n.cfg.address.to_string()),
                        if keep.is_some() {
                            " (its routes are kept as stale: graceful restart)"
                        } else {
                            ""
                        }
                    )));
                    self.rib.peer_down(peer, keep, now);
                }
                Action::Update(u) => {
                    if let Some(m) = &u.treat_as_withdraw {
                        io.push(Io::Log(format!("UPDATE from peer {peer}: {m}: its routes are treated as withdrawn (RFC 7606)")));
                    }
                    for m in &u.discarded {
                        io.push(Io::Log(format!("UPDATE from peer {peer}: {m}")));
                    }
                    // The first End-of-RIB of a session: the neighbor (a reflector that
                    // deferred its UPDATEs after its restart, RFC 4724 §4.1) has now passed
                    // on our key too, so the switch to an unconfirmed key of ours counts
                    // switch_after from here (FRR's update-delay can hold it much longer
                    // than the session's start).
                    let routes_eor = u
                        .update
                        .end_of_rib_family()
                        .is_some_and(|f| f != Family::IPV4_RT_CONSTRAINT);
                    if routes_eor && !self.rib.routes_eor_received(peer) {
                        if let Some(k) = &mut self.keys {
                            k.advertised(now);
                        }
                    }
                    self.rib.receive(peer, &u);
                }
                Action::RouteRefresh(_) => self.rib.resend(peer),
            }
        }
    }

    /// Ends the deferral of a restarting reflector: at its deadline, or once every neighbor
    /// is up and sent End-of-RIB.
    fn end_deferral(&mut self, now: Instant, io: &mut Vec<Io>) {
        let Some(until) = self.defer_until else {
            return;
        };
        let all_in = self
            .neighbors
            .iter()
            .enumerate()
            .all(|(i, n)| n.fsm.state() == State::Established && self.rib.eor_received(i));
        if now < until && !all_in {
            return;
        }
        self.defer_until = None;
        self.rib.hold = false;
        io.push(Io::Log(if all_in {
            "every neighbor sent its table: reflecting".into()
        } else {
            format!(
                "route selection deferral ({} s) over: reflecting",
                SELECT_DEFER.as_secs()
            )
        }));
        let caps = capabilities(&self.cfg, false);
        for n in &mut self.neighbors {
            n.fsm.set_local_open(Open::new(
                self.cfg.asn,
                n.cfg.hold_time,
                self.cfg.router_id,
                caps.clone(),
            ));
        }
    }

    /// Recomputes the Loc-RIB, feeds the site table and the keys, and sends the UPDATEs.
    fn flush(&mut self, now: Instant, io: &mut Vec<Io>) {
        self.end_deferral(now, io);
        // Rounds: a key event may re-originate routes, which changes the RIB again.
        for _ in 0..4 {
            let (changes, out) = self.rib.flush();
            for (peer, updates) in out {
                for u in updates {
                    if let Some(n) = self.neighbors.get_mut(peer) {
                        for a in n.fsm.send_update(now, &u) {
                            if let Action::Send(b) = a {
                                io.push(Io::Send(peer, b));
                            }
                        }
                    }
                }
            }
            if changes.is_empty() {
                break;
            }
            for c in changes {
                self.learn(c);
            }
            let changed = self.sites.take_changed();
            if !changed.is_empty() {
                self.overlay_changed = true;
            }
            if let Some(keys) = &mut self.keys {
                for k in changed {
                    let Some(vni) = self
                        .cfg
                        .tenants
                        .iter()
                        .find(|t| t.rt == k.rt)
                        .map(|t| t.vni)
                    else {
                        continue;
                    };
                    match self.sites.get(&k).and_then(|s| s.key) {
                        Some(key) => {
                            if let Err(e) =
                                keys.peer_key(k.node, vni, key.generation, &key.public, now)
                            {
                                io.push(Io::Log(format!(
                                    "site {} VNI {vni}: key refused: {e}",
                                    k.node
                                )));
                            }
                        }
                        None => keys.peer_gone(k.node, vni, now),
                    }
                }
            }
            self.key_events(now, io);
        }
    }

    fn key_events(&mut self, now: Instant, io: &mut Vec<Io>) {
        // With no session synchronized, a new key could not reach the other edges, and a peer
        // that never learns it cannot take the traffic we would switch to it: the key timers
        // wait (the routes and SAs we have stay as they are) until a session is up and its
        // neighbor sent its table. A reflector that restarted sends nothing until it has
        // every client's table (FRR's update-delay, our deferral): its End-of-RIB, not the
        // session's start, says that the others can have our keys.
        if self.synchronized_at().is_none_or(|at| at > now) {
            return;
        }
        let Some(keys) = &mut self.keys else {
            return;
        };
        let mut readvertise = false;
        for e in keys.poll(now) {
            match e {
                KeyEvent::SasChanged { .. } => self.overlay_changed = true,
                KeyEvent::Advertise { tenant } => {
                    readvertise = true;
                    if let Some((generation, _)) = keys.local_key(tenant) {
                        io.push(Io::Log(format!(
                            "tenant VNI {tenant}: new key generation {generation}"
                        )));
                    }
                }
                KeyEvent::RotationFailed { tenant, error } => io.push(Io::Log(format!(
                    "tenant VNI {tenant}: key rotation failed: {error}"
                ))),
            }
        }
        if readvertise {
            self.originate();
        }
    }

    /// A Loc-RIB change into the site table (routes from others only).
    fn learn(&mut self, c: LocChange) {
        let (key, path) = match c {
            LocChange::Best(k, p) => (k, Some(p)),
            LocChange::Gone(k) => (k, None),
        };
        let id = *self.route_ids.entry(key).or_insert_with(|| {
            self.next_route_id += 1;
            self.next_route_id
        });
        let Some(path) = path.filter(|p| p.from != LOCAL && Some(p.next_hop) != self.cfg.loopback)
        else {
            self.sites.withdraw(id);
            self.route_ids.remove(&key);
            return;
        };
        let rts = path.route_targets();
        match key {
            // Memberships only steer what the reflector sends.
            RouteKey::Rtc(_) => self.sites.withdraw(id),
            RouteKey::SdWan(n) => match path.tunnel_encap() {
                Some(encap) => self.sites.underlay(id, n.node, &rts, encap),
                None => self.sites.withdraw(id),
            },
            RouteKey::Vpn { prefix, .. } => {
                let host = prefix.prefix_len() == prefix.max_prefix_len();
                match path.tunnel_encap() {
                    // The fallback form: the loopback's host route with the underlay.
                    Some(encap) if host && prefix.addr() == path.next_hop => {
                        self.sites.underlay(id, path.next_hop, &rts, encap)
                    }
                    _ => self.sites.prefix(id, prefix, path.next_hop, &rts),
                }
            }
        }
    }

    /// Our routes, per tenant: the client prefixes, and the underlay in both forms. A
    /// reflector has one: the default Route Target membership (RFC 4684 §3.2), by which its
    /// clients send it all their routes.
    fn originate(&mut self) {
        if self.cfg.cluster_id.is_some() {
            let base = vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence(Vec::new()))),
                PathAttribute::new(AttrValue::LocalPref(100)),
            ];
            self.rib.originate(
                RouteKey::Rtc(RtConstraint::Default),
                Path {
                    attributes: Arc::new(base),
                    next_hop: IpAddr::V4(self.cfg.router_id),
                    labels: Vec::new(),
                    from: LOCAL,
                    stale: false,
                },
            );
        }
        let Some(loopback) = self.cfg.loopback else {
            return;
        };
        let mut want = BTreeSet::new();
        for (i, t) in self.cfg.tenants.iter().enumerate() {
            let number = u16::try_from(i + 1).unwrap_or(u16::MAX);
            let rd = match loopback {
                IpAddr::V4(a) => RouteDistinguisher::Ipv4 { addr: a, number },
                IpAddr::V6(_) => RouteDistinguisher::Ipv4 {
                    addr: self.cfg.router_id,
                    number,
                },
            };
            let label = Label::new(t.vni & 0xf_ffff, true);
            let base = vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence(Vec::new()))),
                PathAttribute::new(AttrValue::LocalPref(100)),
                PathAttribute::new(AttrValue::ExtCommunities(vec![ExtCommunity::from_bytes(
                    t.rt,
                )])),
            ];
            // RFC 4684: we want this tenant's routes (from peers that speak it).
            let rtc = RouteKey::Rtc(RtConstraint::new(
                self.cfg.asn,
                ExtCommunity::from_bytes(t.rt),
            ));
            self.rib.originate(
                rtc,
                Path {
                    attributes: Arc::new(base[..3].to_vec()),
                    next_hop: IpAddr::V4(self.cfg.router_id),
                    labels: Vec::new(),
                    from: LOCAL,
                    stale: false,
                },
            );
            want.insert(rtc);
            let client = Arc::new(base.clone());
            for p in &t.prefixes {
                let key = RouteKey::Vpn {
                    rd,
                    prefix: p.trunc(),
                };
                self.rib.originate(
                    key,
                    Path {
                        attributes: client.clone(),
                        next_hop: loopback,
                        labels: vec![label],
                        from: LOCAL,
                        stale: false,
                    },
                );
                want.insert(key);
            }
            // The underlay, with the tenant's current key.
            let Some((generation, public)) = self.keys.as_ref().and_then(|k| k.local_key(t.vni))
            else {
                continue;
            };
            // The underlay routes carry the key generation in an extended community too: a
            // reflector that passes the Tunnel Encapsulation attribute on as an unknown one
            // (FRR 8.4) does not see a change of that attribute alone as a new path, and
            // would keep reflecting the old key.
            let mut underlay_base = base.clone();
            underlay_base[3] = PathAttribute::new(AttrValue::ExtCommunities(vec![
                ExtCommunity::from_bytes(t.rt),
                key_generation_community(generation),
            ]));
            let advert = |c: &CircuitConfig, egress: bool| {
                let mut a = WanCircuitAdvert::new(
                    c.address,
                    c.transport,
                    public,
                    self.cfg.key_duration_s,
                    generation,
                );
                a.egress_endpoint = egress.then_some(loopback);
                a
            };
            for (ci, c) in self.cfg.circuits.iter().enumerate() {
                let key = RouteKey::SdWan(SdWanNlri {
                    port_local_id: ci as u32,
                    color: t.vni,
                    node: loopback,
                });
                let mut attrs = underlay_base.clone();
                attrs.push(PathAttribute::new(AttrValue::TunnelEncap(
                    TunnelEncap::sdwan_edge(&[advert(c, false)]),
                )));
                self.rib.originate(
                    key,
                    Path {
                        attributes: Arc::new(attrs),
                        next_hop: loopback,
                        labels: Vec::new(),
                        from: LOCAL,
                        stale: false,
                    },
                );
                want.insert(key);
            }
            if !self.cfg.circuits.is_empty() {
                let adverts: Vec<WanCircuitAdvert> =
                    self.cfg.circuits.iter().map(|c| advert(c, true)).collect();
                let mut attrs = underlay_base.clone();
                attrs.push(PathAttribute::new(AttrValue::TunnelEncap(
                    TunnelEncap::sdwan_edge(&adverts),
                )));
                let host = IpNet::from(loopback);
                let key = RouteKey::Vpn { rd, prefix: host };
                self.rib.originate(
                    key,
                    Path {
                        attributes: Arc::new(attrs),
                        next_hop: loopback,
                        labels: vec![label],
                        from: LOCAL,
                        stale: false,
                    },
                );
                want.insert(key);
            }
        }
        for old in self
            .advertised
            .difference(&want)
            .copied()
            .collect::<Vec<_>>()
        {
            self.rib.withdraw_local(&old);
        }
        self.advertised = want;
    }

    /// From when some session counts as synchronized: up, and its neighbor finished its
    /// first update (End-of-RIB for its routes; the session's start where it sends no
    /// End-of-RIB; [`EOR_WAIT`] after the start where End-of-RIB never comes). `None`: no
    /// session is up.
    fn synchronized_at(&self) -> Option<Instant> {
        self.neighbors
            .iter()
            .enumerate()
            .filter(|(_, n)| n.fsm.state() == State::Established)
            .filter_map(|(i, n)| {
                let up = n.up_at?;
                Some(if !n.sends_eor || self.rib.routes_eor_received(i) {
                    up
                } else {
                    up + EOR_WAIT
                })
            })
            .min()
    }

    /// `show bgp summary`'s `State/PfxRcd`: Established's received count, else the state.
    pub fn state_of(&self, peer: PeerId) -> State {
        self.neighbors
            .get(peer)
            .map_or(State::Idle, |n| n.fsm.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyConfig, Suite, SystemRandom};
    use crate::sites::SiteKey;
    use std::collections::VecDeque;

    const BLUE: Rt = [0, 2, 0xfd, 0xe8, 0, 0, 0x03, 0xe9];
    const RED: Rt = [0, 2, 0xfd, 0xe8, 0, 0, 0x03, 0xea];
    const RR: [u8; 4] = [10, 254, 0, 100];

    fn addr(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn neighbor(
        a: [u8; 4],
        passive: bool,
        client: bool,
        allowed: Option<Vec<Rt>>,
    ) -> NeighborConfig {
        NeighborConfig {
            address: addr(a),
            port: 179,
            local_address: None,
            remote_as: 65000,
            passive,
            hold_time: 9,
            md5: None,
            client,
            allowed,
        }
    }

    /// Edge `n` (loopback 10.255.0.n, control address 10.254.0.n) in `tenants`.
    fn edge(n: u8, tenants: &[(Rt, u32)]) -> Speaker {
        let loopback = addr([10, 255, 0, n]);
        let cfg = SpeakerConfig {
            asn: 65000,
            router_id: Ipv4Addr::new(10, 255, 0, n),
            loopback: Some(loopback),
            connect_retry: Duration::from_secs(1),
            graceful_restart: 120,
            cluster_id: None,
            neighbors: vec![neighbor(RR, false, false, None)],
            tenants: tenants
                .iter()
                .map(|&(rt, vni)| TenantConfig {
                    rt,
                    vni,
                    prefixes: vec![format!("10.{n}.{}.0/24", vni % 256).parse().unwrap()],
                })
                .collect(),
            circuits: vec![
                CircuitConfig {
                    address: addr([198, 18, 1, n]),
                    transport: 1,
                },
                CircuitConfig {
                    address: addr([198, 18, 2, n]),
                    transport: 2,
                },
            ],
            key_duration_s: 3600,
        };
        let keys =
            KeyManager::new(KeyConfig::new(Suite::Aes128Gcm16), loopback, SystemRandom).unwrap();
        Speaker::new(cfg, Some(keys))
    }

    /// The reflector; edge 1 is in both tenants, edge 2 in blue, edge 3 in red (`clients`
    /// false: one that knows no neighbor yet, as after a restart before its configuration).
    fn reflector(clients: bool) -> Speaker {
        reflector_of(if clients { edges() } else { Vec::new() })
    }

    /// The reflector's clients: edge 1 in both tenants, edge 2 in blue, edge 3 in red.
    fn edges() -> Vec<NeighborConfig> {
        vec![
            neighbor([10, 254, 0, 1], true, true, Some(vec![BLUE, RED])),
            neighbor([10, 254, 0, 2], true, true, Some(vec![BLUE])),
            neighbor([10, 254, 0, 3], true, true, Some(vec![RED])),
        ]
    }

    fn reflector_of(neighbors: Vec<NeighborConfig>) -> Speaker {
        Speaker::new(
            SpeakerConfig {
                asn: 65000,
                router_id: Ipv4Addr::from(RR),
                loopback: None,
                connect_retry: Duration::from_secs(1),
                graceful_restart: 120,
                cluster_id: Some(Ipv4Addr::from(RR)),
                neighbors,
                tenants: Vec::new(),
                circuits: Vec::new(),
                key_duration_s: 0,
            },
            None,
        )
    }

    /// Speakers on an in-memory network: speaker `i` is at 10.254.0.(its index's address).
    struct Net {
        nodes: Vec<(IpAddr, Speaker)>,
        /// (node, peer) <-> (node, peer)
        links: HashMap<(usize, PeerId), (usize, PeerId)>,
        queue: VecDeque<(usize, Io)>,
        now: Instant,
        /// Nodes whose connection attempts fail (a site that is down).
        blocked: Vec<usize>,
    }

    impl Net {
        fn run(&mut self) {
            let mut steps = 0;
            while let Some((node, io)) = self.queue.pop_front() {
                steps += 1;
                assert!(steps < 100_000, "no quiescence");
                match io {
                    Io::Connect(p) if self.blocked.contains(&node) => {
                        let out = self.nodes[node].1.connect_failed(p, self.now, "blocked");
                        self.push(node, out);
                    }
                    Io::Connect(p) => {
                        let target = self.nodes[node].1.neighbor(p).unwrap().address;
                        let me = self.nodes[node].0;
                        let Some(t) = self.nodes.iter().position(|(a, _)| *a == target) else {
                            let out = self.nodes[node]
                                .1
                                .connect_failed(p, self.now, "unreachable");
                            self.push(node, out);
                            continue;
                        };
                        let Some(tp) = self.nodes[t].1.accepts(me) else {
                            let out = self.nodes[node].1.connect_failed(p, self.now, "refused");
                            self.push(node, out);
                            continue;
                        };
                        self.links.insert((node, p), (t, tp));
                        self.links.insert((t, tp), (node, p));
                        let out = self.nodes[node].1.connected(p, self.now);
                        self.push(node, out);
                        let out = self.nodes[t].1.connected(tp, self.now);
                        self.push(t, out);
                    }
                    Io::Send(p, bytes) => {
                        if let Some(&(t, tp)) = self.links.get(&(node, p)) {
                            let out = self.nodes[t].1.received(tp, self.now, &bytes);
                            self.push(t, out);
                        }
                    }
                    Io::Close(p) => {
                        if let Some((t, tp)) = self.links.remove(&(node, p)) {
                            self.links.remove(&(t, tp));
                            let out = self.nodes[t].1.closed(tp, self.now, "closed by peer");
                            self.push(t, out);
                        }
                    }
                    Io::Log(_) => {}
                }
            }
        }

        fn push(&mut self, node: usize, io: Vec<Io>) {
            self.queue.extend(io.into_iter().map(|x| (node, x)));
        }

        /// The reflector (node 0) goes away, closing every session, and `next` takes its
        /// place; started, if asked.
        fn replace_reflector(&mut self, next: Speaker, start: bool) {
            let links: Vec<_> = self
                .links
                .keys()
                .filter(|(n, _)| *n == 0)
                .copied()
                .collect();
            for (n, p) in links {
                self.push(n, vec![Io::Close(p)]);
            }
            self.nodes[0].1 = next;
            if start {
                let out = self.nodes[0].1.start(self.now);
                self.push(0, out);
            }
            self.run();
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
            for i in 0..self.nodes.len() {
                let out = self.nodes[i].1.poll(self.now);
                self.push(i, out);
            }
            self.run();
        }
    }

    fn lab() -> Net {
        let now = Instant::now();
        let mut net = Net {
            nodes: vec![
                (addr(RR), reflector(true)),
                (addr([10, 254, 0, 1]), edge(1, &[(BLUE, 1001), (RED, 1002)])),
                (addr([10, 254, 0, 2]), edge(2, &[(BLUE, 1001)])),
                (addr([10, 254, 0, 3]), edge(3, &[(RED, 1002)])),
            ],
            links: HashMap::new(),
            queue: VecDeque::new(),
            now,
            blocked: Vec::new(),
        };
        for i in 0..net.nodes.len() {
            let out = net.nodes[i].1.start(now);
            net.push(i, out);
        }
        net.run();
        net.advance(Duration::from_millis(10));
        net
    }

    fn site(net: &Net, node: usize, of: u8, rt: Rt) -> Option<crate::sites::TenantSite> {
        net.nodes[node].1.sites().get(&SiteKey {
            node: addr([10, 255, 0, of]),
            rt,
        })
    }

    #[test]
    fn edges_learn_the_sites_and_keys_of_their_tenants_only() {
        let mut net = lab();
        for i in 1..4 {
            assert!(net.nodes[i]
                .1
                .sessions()
                .all(|(_, _, f)| f.state() == State::Established));
        }
        // Edge 1 (blue and red) knows edge 2 in blue and edge 3 in red, with circuits,
        // keys and prefixes.
        let b = site(&net, 1, 2, BLUE).expect("edge 1 knows edge 2 in blue");
        assert!(b.usable());
        assert_eq!(b.circuits.len(), 2);
        assert_eq!(
            b.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["10.2.233.0/24"]
        );
        assert!(site(&net, 1, 3, RED).unwrap().usable());
        // Edge 2 knows edge 1 in blue only; edge 3 knows edge 1 in red only.
        assert!(site(&net, 2, 1, BLUE).unwrap().usable());
        assert_eq!(site(&net, 2, 1, RED), None);
        assert_eq!(site(&net, 2, 3, RED), None);
        assert!(site(&net, 3, 1, RED).unwrap().usable());
        assert_eq!(site(&net, 3, 1, BLUE), None);
        assert_eq!(site(&net, 3, 2, BLUE), None);
        // The pairs derived matching SAs: edge 1's outbound to edge 2 is edge 2's inbound.
        let k1 = net.nodes[1].1.keys().unwrap();
        let k2 = net.nodes[2].1.keys().unwrap();
        let s12 = k1.sas(addr([10, 255, 0, 2]), 1001).unwrap();
        let s21 = k2.sas(addr([10, 255, 0, 1]), 1001).unwrap();
        let out = s12.outbound.unwrap();
        assert!(s21
            .inbound
            .iter()
            .any(|i| i.spi_base == out.spi_base && i.keymat == out.keymat));
        // Edge 2 has no SA at all with edge 3.
        assert!(k2.sas(addr([10, 255, 0, 3]), 1002).is_none());
        assert!(net.nodes[2].1.take_overlay_changed());
    }

    #[test]
    fn a_rekey_changes_a_standard_attribute_of_the_underlay_routes() {
        let mut net = lab();
        let marker = |net: &Net| -> Vec<[u8; 8]> {
            net.nodes[2]
                .1
                .rib()
                .loc_rib()
                .filter(|(k, p)| {
                    p.from == LOCAL
                        && matches!(k, RouteKey::Vpn { prefix, .. } if prefix.prefix_len() == 32)
                })
                .flat_map(|(_, p)| {
                    p.attributes
                        .iter()
                        .filter_map(|a| match &a.value {
                            AttrValue::ExtCommunities(v) => Some(v.clone()),
                            _ => None,
                        })
                        .flatten()
                        .map(|c| c.to_bytes())
                        .filter(|b| b[0] == 0x80 && b[1] == 0x5d)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let before = marker(&net);
        assert_eq!(before.len(), 1);
        let (g, _) = net.nodes[2].1.keys().unwrap().local_key(1001).unwrap();
        assert_eq!(before[0][4..], g.to_be_bytes());
        // An hour and a bit later the key rotated, and so did the marker (steps shorter than
        // the hold time: the sessions stay up).
        for _ in 0..80 * 12 {
            net.advance(Duration::from_secs(5));
        }
        let after = marker(&net);
        assert_ne!(before, after);
        // And edge 1 learned edge 2's new key.
        let (g2, _) = net.nodes[2].1.keys().unwrap().local_key(1001).unwrap();
        assert_ne!(g, g2);
        assert_eq!(site(&net, 1, 2, BLUE).unwrap().key.unwrap().generation, g2);
    }

    #[test]
    fn a_restarting_reflector_waits_for_every_table_before_reflecting() {
        let mut net = lab();
        // The reflector restarts while edge 1 is down too.
        net.blocked.push(1);
        net.replace_reflector(reflector(true), true);
        for _ in 0..10 {
            net.advance(Duration::from_secs(1));
        }
        // Edge 2 is back in session, but the reflector holds everything back while edge 1's
        // table is missing: edge 2 keeps edge 1's routes (stale) and its traffic.
        assert_eq!(
            net.nodes[2].1.sessions().next().unwrap().2.state(),
            State::Established
        );
        assert!(site(&net, 2, 1, BLUE).unwrap().usable());
        assert!(net.nodes[2].1.rib().loc_rib().any(|(_, p)| p.stale));
        // The deferral ends after 30 s without edge 1: edge 2 gets End-of-RIB and lets the
        // routes of the site that did not come back go.
        for _ in 0..25 {
            net.advance(Duration::from_secs(1));
        }
        assert_eq!(site(&net, 2, 1, BLUE), None);
        // Edge 1 returns: edge 2 learns it again.
        net.blocked.clear();
        for _ in 0..20 {
            net.advance(Duration::from_secs(1));
        }
        assert!(site(&net, 2, 1, BLUE).unwrap().usable());
    }

    #[test]
    fn a_reflector_restart_keeps_the_sites_as_stale_until_it_returns() {
        let mut net = lab();
        // The reflector goes away: every session closes.
        net.replace_reflector(reflector(false), false);
        assert_eq!(
            net.nodes[2].1.sessions().next().unwrap().2.state(),
            State::Idle
        );
        // Graceful restart: edge 2 still knows edge 1 in blue.
        assert!(site(&net, 2, 1, BLUE).unwrap().usable());
        // The reflector returns with its configuration; the sessions come back.
        net.nodes[0].1 = reflector(true);
        let out = net.nodes[0].1.start(net.now);
        net.push(0, out);
        for _ in 0..40 {
            net.advance(Duration::from_secs(1));
        }
        assert_eq!(
            net.nodes[2].1.sessions().next().unwrap().2.state(),
            State::Established
        );
        assert!(site(&net, 2, 1, BLUE).unwrap().usable());
        let (_, p) = net.nodes[2].1.rib().loc_rib().next().unwrap();
        assert!(!p.stale, "fresh again after End-of-RIB");
    }

    /// The first End-of-RIB from a reflector, not the session's start, is when the other
    /// edges can have our new key: a restarted reflector defers its UPDATEs (here 30 s, for a
    /// client that does not come back, as ExaBGP in the lab), and an edge whose one-way
    /// traffic brings no confirmation must not switch to a key its peer cannot have yet.
    #[test]
    fn a_new_key_is_sent_with_only_after_a_deferring_reflector_passed_it_on() {
        let mut net = lab();
        let mut clients = edges();
        clients.push(neighbor([10, 254, 0, 200], true, true, Some(vec![RED])));
        net.replace_reflector(reflector_of(clients), true);
        for _ in 0..3 {
            net.advance(Duration::from_secs(1));
        }
        assert_eq!(
            net.nodes[2].1.sessions().next().unwrap().2.state(),
            State::Established
        );
        // Edge 2 rotates its blue key while the reflector still holds everything back.
        let (old, _) = net.nodes[2].1.keys().unwrap().local_key(1001).unwrap();
        let now = net.now;
        net.nodes[2]
            .1
            .keys
            .as_mut()
            .unwrap()
            .rekey(1001, now)
            .unwrap();
        // The SAs of `node` with edge `of` in blue.
        let sas = |net: &Net, node: usize, of: u8| {
            net.nodes[node]
                .1
                .keys()
                .unwrap()
                .sas(addr([10, 255, 0, of]), 1001)
                .unwrap()
        };
        for s in 0..50 {
            net.advance(Duration::from_secs(1));
            let out = sas(&net, 2, 1).outbound.unwrap();
            let inbound = sas(&net, 1, 2).inbound;
            assert!(
                inbound.iter().any(|i| i.spi_base == out.spi_base),
                "{s} s after the rotation edge 2 sends under its generation {} an SA edge 1 lacks",
                out.local_generation
            );
        }
        // And it did switch, once edge 1 could have the key.
        let (new, _) = net.nodes[2].1.keys().unwrap().local_key(1001).unwrap();
        assert_ne!(old, new);
        assert_eq!(sas(&net, 2, 1).outbound.unwrap().local_generation, new);
    }
}
