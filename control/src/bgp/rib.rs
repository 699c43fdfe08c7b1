//! The RIB, sans-IO (RFC 4271 §3.2, §9): what each peer sent (Adj-RIB-In), the best path of
//! every route (Loc-RIB), and what each peer was sent (Adj-RIB-Out); route reflection
//! (RFC 4456) with Route Target authorization per peer; graceful restart's stale routes
//! (RFC 4724).
//!
//! The owner feeds it UPDATEs and session events and calls [`Rib::flush`], which recomputes
//! the best path of every route that changed and returns what changed in the Loc-RIB (for the
//! site table) and the UPDATEs each established peer must be sent, packed under 4096 bytes.
//!
//! Export rules:
//! - an edge (not a reflector) sends only its own routes: routes learned over iBGP are not
//!   passed to other iBGP peers (RFC 4271 §9.2);
//! - a reflector sends a route learned from a client to every other peer, a route from a
//!   non-client to the clients only, its own routes to everyone; it sets ORIGINATOR_ID when
//!   absent and puts its cluster id in front of CLUSTER_LIST (RFC 4456 §8), and drops routes
//!   that carry its own cluster id or router id (loops);
//! - a peer with a set of authorized Route Targets (the tenants of its group) is neither sent
//!   nor accepted a VPN or SD-WAN route without one of them: an edge learns the routes and
//!   keys of its tenants and of no other.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::wire::attributes::attr_type;
use super::wire::nlri::{Label, RtConstraint, VpnRoute};
use super::wire::rd::RouteDistinguisher;
use super::wire::sdwan::SdWanNlri;
use super::wire::{AttrValue, Family, Nlri, PathAttribute, Session, Update, UpdateOutcome};

/// Routes announced together: one family, one next hop, one attribute set.
type AnnounceGroup = (Family, IpAddr, *const Vec<PathAttribute>);

/// A peer's index in the RIB.
pub type PeerId = usize;

/// Our own routes' "peer".
pub const LOCAL: PeerId = usize::MAX;

/// A route: what identifies it in its family (labels are part of the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKey {
    /// VPN-IPv4 / VPN-IPv6 (SAFI 128).
    Vpn {
        rd: RouteDistinguisher,
        prefix: IpNet,
    },
    /// An SD-WAN NLRI (SAFI 74).
    SdWan(SdWanNlri),
    /// A Route Target membership (RFC 4684, AFI 1 SAFI 132): the peer wants the VPN and
    /// SD-WAN routes of that Route Target.
    Rtc(RtConstraint),
}

impl RouteKey {
    pub fn family(&self) -> Family {
        match self {
            RouteKey::Vpn {
                prefix: IpNet::V4(_),
                ..
            } => Family::IPV4_VPN,
            RouteKey::Vpn { .. } => Family::IPV6_VPN,
            RouteKey::SdWan(n) if n.node.is_ipv4() => Family::IPV4_SDWAN,
            RouteKey::SdWan(_) => Family::IPV6_SDWAN,
            RouteKey::Rtc(_) => Family::IPV4_RT_CONSTRAINT,
        }
    }

    /// The key of an NLRI we keep (VPN, SD-WAN), with its labels.
    pub fn of(n: &Nlri) -> Option<(RouteKey, Vec<Label>)> {
        match n {
            Nlri::Vpn(v) => Some((
                RouteKey::Vpn {
                    rd: v.rd,
                    prefix: v.prefix,
                },
                v.labels.clone(),
            )),
            Nlri::SdWan(s) => Some((RouteKey::SdWan(*s), Vec::new())),
            Nlri::RtConstraint(r) => Some((RouteKey::Rtc(*r), Vec::new())),
            _ => None,
        }
    }

    fn announce(&self, labels: &[Label]) -> Nlri {
        match self {
            RouteKey::Vpn { rd, prefix } => Nlri::Vpn(VpnRoute {
                labels: labels.to_vec(),
                rd: *rd,
                prefix: *prefix,
            }),
            RouteKey::SdWan(s) => Nlri::SdWan(*s),
            RouteKey::Rtc(r) => Nlri::RtConstraint(*r),
        }
    }

    fn withdrawal(&self) -> Nlri {
        match self {
            RouteKey::Vpn { rd, prefix } => Nlri::Vpn(VpnRoute::withdrawal(*rd, *prefix)),
            RouteKey::SdWan(s) => Nlri::SdWan(*s),
            RouteKey::Rtc(r) => Nlri::RtConstraint(*r),
        }
    }
}

/// A path to a route: its attributes (without the MP attributes), next hop and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub attributes: Arc<Vec<PathAttribute>>,
    pub next_hop: IpAddr,
    pub labels: Vec<Label>,
    /// Who sent it (`LOCAL`: ours).
    pub from: PeerId,
    /// Kept from a peer that restarts gracefully, until it sends End-of-RIB or its restart
    /// time ends.
    pub stale: bool,
}

impl Path {
    fn attr(&self, t: u8) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.type_code() == t)
            .map(|a| &a.value)
    }

    pub fn local_pref(&self) -> u32 {
        match self.attr(attr_type::LOCAL_PREF) {
            Some(AttrValue::LocalPref(v)) => *v,
            _ => 100,
        }
    }

    /// The Route Targets (8 bytes each) of the path's extended communities.
    pub fn route_targets(&self) -> Vec<[u8; 8]> {
        match self.attr(attr_type::EXTENDED_COMMUNITIES) {
            Some(AttrValue::ExtCommunities(v)) => v
                .iter()
                .filter(|c| c.route_target().is_some())
                .map(|c| c.to_bytes())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        match self.attr(attr_type::ORIGINATOR_ID) {
            Some(AttrValue::OriginatorId(a)) => Some(*a),
            _ => None,
        }
    }

    pub fn cluster_list(&self) -> &[Ipv4Addr] {
        match self.attr(attr_type::CLUSTER_LIST) {
            Some(AttrValue::ClusterList(v)) => v,
            _ => &[],
        }
    }

    pub fn tunnel_encap(&self) -> Option<&super::wire::tunnel_encap::TunnelEncap> {
        match self.attr(attr_type::TUNNEL_ENCAPSULATION) {
            Some(AttrValue::TunnelEncap(t)) => Some(t),
            _ => None,
        }
    }

    fn as_path_len(&self) -> usize {
        match self.attr(attr_type::AS_PATH) {
            Some(AttrValue::AsPath(p)) => p.path_len(),
            _ => 0,
        }
    }

    fn origin(&self) -> u8 {
        match self.attr(attr_type::ORIGIN) {
            Some(AttrValue::Origin(o)) => *o as u8,
            _ => 2,
        }
    }

    fn med(&self) -> u32 {
        match self.attr(attr_type::MULTI_EXIT_DISC) {
            Some(AttrValue::Med(v)) => *v,
            _ => 0,
        }
    }
}

/// How the RIB treats a peer.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// The peer's BGP identifier (learned from its OPEN).
    pub router_id: Ipv4Addr,
    pub address: IpAddr,
    /// A reflector's client.
    pub client: bool,
    /// The Route Targets the peer may send and receive (`None`: all).
    pub allowed: Option<HashSet<[u8; 8]>>,
}

#[derive(Debug)]
struct PeerState {
    policy: PeerPolicy,
    adj_in: HashMap<RouteKey, Arc<Path>>,
    adj_out: HashMap<RouteKey, Arc<Path>>,
    session: Option<Session>,
    /// The peer came up and must be sent everything, then End-of-RIB.
    full_sync: bool,
    /// Graceful restart: its stale routes go at this time.
    stale_until: Option<Instant>,
    /// RFC 4684: the peer negotiated Route Target constraint and sent its End-of-RIB for it,
    /// so what it is sent follows its memberships (before that, nothing is sent to it).
    rtc_complete: bool,
    /// Our End-of-RIB for the memberships went to the peer.
    rtc_eor_sent: bool,
    /// Routes received, accepted (for `show bgp summary`).
    pub accepted: usize,
    /// The families whose End-of-RIB the peer sent since it came up.
    eor: BTreeSet<Family>,
}

/// A change of the Loc-RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocChange {
    /// The best path of `key` is now `path` (new or replaced).
    Best(RouteKey, Arc<Path>),
    /// `key` has no path any more.
    Gone(RouteKey),
}

/// The RIB's role and identity.
#[derive(Debug, Clone)]
pub struct RibConfig {
    pub router_id: Ipv4Addr,
    /// `Some`: route reflector with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    pub local_as: u32,
}

/// Counters for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RibStats {
    /// Routes dropped on import because the peer may not send their Route Targets.
    pub unauthorized: u64,
    /// Routes dropped as reflection loops.
    pub loops: u64,
    /// UPDATEs whose routes were treated as withdrawn (RFC 7606).
    pub treated_as_withdraw: u64,
    /// Attributes discarded (RFC 7606).
    pub attributes_discarded: u64,
}

#[derive(Debug)]
pub struct Rib {
    cfg: RibConfig,
    peers: BTreeMap<PeerId, PeerState>,
    local: HashMap<RouteKey, Arc<Path>>,
    loc: HashMap<RouteKey, Arc<Path>>,
    dirty: BTreeSet<RouteKey>,
    /// Bumped at every Loc-RIB change (`TblVer`).
    pub version: u64,
    /// While set, nothing is sent (a restarting reflector waits for its peers' tables,
    /// RFC 4724 §4.1); peers that came up meanwhile get their whole table once it is cleared.
    pub hold: bool,
    pub stats: RibStats,
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Self {
        Rib {
            cfg,
            peers: BTreeMap::new(),
            local: HashMap::new(),
            loc: HashMap::new(),
            dirty: BTreeSet::new(),
            version: 0,
            hold: false,
            stats: RibStats::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// Adds a peer (not established yet).
    pub fn add_peer(&mut self, id: PeerId, policy: PeerPolicy) {
        self.peers.insert(
            id,
            PeerState {
                policy,
                adj_in: HashMap::new(),
                adj_out: HashMap::new(),
                session: None,
                full_sync: false,
                stale_until: None,
                rtc_complete: false,
                rtc_eor_sent: false,
                accepted: 0,
                eor: BTreeSet::new(),
            },
        );
    }

    /// Whether peer `id` sent End-of-RIB since its session came up.
    pub fn eor_received(&self, id: PeerId) -> bool {
        self.peers.get(&id).is_some_and(|p| !p.eor.is_empty())
    }

    /// Whether peer `id` sent End-of-RIB for a family of routes (not only for its Route
    /// Target memberships, whose End-of-RIB a reflector sends while it may still hold its
    /// routes back: RFC 4684 §4, RFC 4724 §4.1) since its session came up.
    pub fn routes_eor_received(&self, id: PeerId) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.eor.iter().any(|f| *f != Family::IPV4_RT_CONSTRAINT))
    }

    /// The session with `id` is up: it will be sent every route it may have, then
    /// End-of-RIB. `router_id` is the peer's, from its OPEN.
    pub fn peer_up(&mut self, id: PeerId, session: Session, router_id: Ipv4Addr) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.session = Some(session);
            p.policy.router_id = router_id;
            p.full_sync = true;
            p.eor.clear();
            p.rtc_complete = false;
            p.rtc_eor_sent = false;
            p.adj_out.clear();
        }
    }

    /// The session with `id` went down. With graceful restart (`keep` = the restart time the
    /// peer announced), its routes stay, marked stale, until it comes back and sends
    /// End-of-RIB or the time ends; otherwise they go now.
    pub fn peer_down(&mut self, id: PeerId, keep: Option<Duration>, now: Instant) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        p.session = None;
        p.full_sync = false;
        p.adj_out.clear();
        match keep {
            Some(t) if !t.is_zero() => {
                for path in p.adj_in.values_mut() {
                    let mut s = (**path).clone();
                    s.stale = true;
                    *path = Arc::new(s);
                }
                p.stale_until = Some(now + t);
                self.dirty.extend(p.adj_in.keys().copied());
            }
            _ => {
                self.dirty.extend(p.adj_in.keys().copied());
                p.adj_in.clear();
                p.stale_until = None;
            }
        }
        p.accepted = p.adj_in.len();
    }

    /// Removes a peer and its routes.
    pub fn remove_peer(&mut self, id: PeerId) {
        if let Some(p) = self.peers.remove(&id) {
            self.dirty.extend(p.adj_in.keys().copied());
        }
    }

    /// Originates (or replaces) one of our routes.
    pub fn originate(&mut self, key: RouteKey, path: Path) {
        let path = Arc::new(Path {
            from: LOCAL,
            stale: false,
            ..path
        });
        if self.local.get(&key) != Some(&path) {
            self.local.insert(key, path);
            self.dirty.insert(key);
        }
    }

    /// The peer asked for our routes again (ROUTE-REFRESH): it is sent its whole table.
    pub fn resend(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id) {
            if p.session.is_some() {
                p.full_sync = true;
                p.adj_out.clear();
            }
        }
    }

    /// Withdraws one of our routes.
    pub fn withdraw_local(&mut self, key: &RouteKey) {
        if self.local.remove(key).is_some() {
            self.dirty.insert(*key);
        }
    }

    /// Our routes now.
    pub fn local_keys(&self) -> Vec<RouteKey> {
        self.local.keys().copied().collect()
    }

    /// An UPDATE from `id`, after the codec's RFC 7606 handling.
    pub fn receive(&mut self, id: PeerId, outcome: &UpdateOutcome) {
        self.stats.attributes_discarded += outcome.discarded.len() as u64;
        let u = &outcome.update;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(family) = u.end_of_rib_family() {
            peer.eor.insert(family);
            if family == Family::IPV4_RT_CONSTRAINT {
                // RFC 4684 §4: its memberships are complete: its VPN routes may go now.
                peer.rtc_complete = true;
            }
            // RFC 4724 §4.2: routes still stale once the peer re-sent its table are gone.
            let stale: Vec<RouteKey> = peer
                .adj_in
                .iter()
                .filter(|(k, p)| p.stale && k.family() == family)
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                peer.adj_in.remove(&k);
                self.dirty.insert(k);
            }
            if !peer.adj_in.values().any(|p| p.stale) {
                peer.stale_until = None;
            }
            peer.accepted = peer.adj_in.len();
            return;
        }
        for (_, n) in u.withdrawals() {
            if let Some((k, _)) = RouteKey::of(&n) {
                if peer.adj_in.remove(&k).is_some() {
                    self.dirty.insert(k);
                }
            }
        }
        let announced = u.announced();
        if outcome.treat_as_withdraw.is_some() {
            self.stats.treated_as_withdraw += 1;
            for (_, n) in announced {
                if let Some((k, _)) = RouteKey::of(&n) {
                    if peer.adj_in.remove(&k).is_some() {
                        self.dirty.insert(k);
                    }
                }
            }
            peer.accepted = peer.adj_in.len();
            return;
        }
        if announced.is_empty() {
            return;
        }
        let next_hop = u
            .mp_reach()
            .and_then(|m| m.next_hop.address())
            .or_else(|| u.next_hop().map(IpAddr::V4));
        let attributes: Arc<Vec<PathAttribute>> = Arc::new(
            u.attributes
                .iter()
                .filter(|a| !matches!(a.value, AttrValue::MpReach(_) | AttrValue::MpUnreach(_)))
                .cloned()
                .collect(),
        );
        let probe = Path {
            attributes: attributes.clone(),
            next_hop: next_hop.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            labels: Vec::new(),
            from: id,
            stale: false,
        };
        // Loops (RFC 4456 §8): our own router id as originator, our cluster in the list.
        let looped = probe.originator_id() == Some(self.cfg.router_id)
            || self
                .cfg
                .cluster_id
                .is_some_and(|c| probe.cluster_list().contains(&c));
        let authorized = match &peer.policy.allowed {
            None => true,
            Some(set) => probe.route_targets().iter().any(|rt| set.contains(rt)),
        };
        let mut memberships_changed = false;
        for (_, n) in announced {
            let Some((k, labels)) = RouteKey::of(&n) else {
                continue;
            };
            // A membership is authorized by the Route Target it names.
            let authorized = match (&k, &peer.policy.allowed) {
                (RouteKey::Rtc(_), None) => true,
                (
                    RouteKey::Rtc(RtConstraint::Member {
                        route_target,
                        rt_bits: 64,
                        ..
                    }),
                    Some(set),
                ) => set.contains(route_target),
                (RouteKey::Rtc(_), Some(_)) => false,
                _ => authorized,
            };
            memberships_changed |= matches!(k, RouteKey::Rtc(_));
            if looped || !authorized || next_hop.is_none() {
                if looped {
                    self.stats.loops += 1;
                } else if !authorized {
                    self.stats.unauthorized += 1;
                }
                // A replacement we may not take withdraws what the peer sent before.
                if peer.adj_in.remove(&k).is_some() {
                    self.dirty.insert(k);
                }
                continue;
            }
            let path = Arc::new(Path {
                labels,
                ..probe.clone()
            });
            peer.adj_in.insert(k, path);
            self.dirty.insert(k);
        }
        peer.accepted = peer.adj_in.len();
        // New memberships after the first complete set: the peer's table is redone.
        if memberships_changed && peer.rtc_complete {
            peer.full_sync = true;
        }
    }

    /// Whether peer `p` asked (RFC 4684) for routes with these Route Targets: a default
    /// membership takes everything; a partial one (fewer than 64 bits) its prefix.
    fn wants(p: &PeerState, rts: &[[u8; 8]]) -> bool {
        p.adj_in.keys().any(|k| match k {
            RouteKey::Rtc(RtConstraint::Default) => true,
            RouteKey::Rtc(RtConstraint::Member {
                route_target,
                rt_bits,
                ..
            }) => rts.iter().any(|rt| {
                let bits = u32::from((*rt_bits).min(64));
                let a = u64::from_be_bytes(*rt);
                let b = u64::from_be_bytes(*route_target);
                bits == 0 || (a ^ b) >> (64 - bits) == 0
            }),
            _ => false,
        })
    }

    /// The graceful-restart timers: stale routes of peers that did not come back in time go.
    pub fn poll(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            if p.stale_until.is_some_and(|t| now >= t) {
                p.stale_until = None;
                let stale: Vec<RouteKey> = p
                    .adj_in
                    .iter()
                    .filter(|(_, x)| x.stale)
                    .map(|(k, _)| *k)
                    .collect();
                for k in stale {
                    p.adj_in.remove(&k);
                    self.dirty.insert(k);
                }
                p.accepted = p.adj_in.len();
            }
        }
    }

    /// The earliest graceful-restart deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers.values().filter_map(|p| p.stale_until).min()
    }

    /// Recomputes the best paths of what changed; returns the Loc-RIB changes and, per
    /// established peer, the UPDATEs to send (End-of-RIB after a peer's first full table).
    pub fn flush(&mut self) -> (Vec<LocChange>, Vec<(PeerId, Vec<Update>)>) {
        let mut changes = Vec::new();
        let dirty = std::mem::take(&mut self.dirty);
        for k in &dirty {
            let best = self.best(k);
            let old = self.loc.get(k).cloned();
            match (old, best) {
                (Some(o), Some(b)) if o == b => {}
                (_, Some(b)) => {
                    self.loc.insert(*k, b.clone());
                    changes.push(LocChange::Best(*k, b));
                }
                (Some(_), None) => {
                    self.loc.remove(k);
                    changes.push(LocChange::Gone(*k));
                }
                (None, None) => {}
            }
        }
        if !changes.is_empty() {
            self.version += 1;
        }
        if self.hold {
            return (changes, Vec::new());
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            let updates = self.export(id, &dirty);
            if !updates.is_empty() {
                out.push((id, updates));
            }
        }
        (changes, out)
    }

    /// RFC 4271 §9.1.2.2 with the reflection tie-breaks of RFC 4456 §9: highest LOCAL_PREF,
    /// shortest AS_PATH, lowest ORIGIN, lowest MED, lowest originator id, shortest
    /// CLUSTER_LIST, lowest peer address; our own routes first, fresh before stale.
    fn best(&self, k: &RouteKey) -> Option<Arc<Path>> {
        if let Some(p) = self.local.get(k) {
            return Some(p.clone());
        }
        let mut cands: Vec<(&PeerState, &Arc<Path>)> = self
            .peers
            .values()
            .filter_map(|p| p.adj_in.get(k).map(|x| (p, x)))
            .collect();
        cands.sort_by(|(pa, a), (pb, b)| {
            a.stale
                .cmp(&b.stale)
                .then(b.local_pref().cmp(&a.local_pref()))
                .then(a.as_path_len().cmp(&b.as_path_len()))
                .then(a.origin().cmp(&b.origin()))
                .then(a.med().cmp(&b.med()))
                .then(
                    a.originator_id()
                        .unwrap_or(pa.policy.router_id)
                        .cmp(&b.originator_id().unwrap_or(pb.policy.router_id)),
                )
                .then(a.cluster_list().len().cmp(&b.cluster_list().len()))
                .then(pa.policy.address.cmp(&pb.policy.address))
        });
        cands.first().map(|(_, p)| (*p).clone())
    }

    /// What peer `id` must have of route `k` (its Loc-RIB best, if exportable to it), with
    /// the attributes reflection adds.
    fn export_path(&self, id: PeerId, k: &RouteKey) -> Option<Arc<Path>> {
        let peer = self.peers.get(&id)?;
        let best = self.loc.get(k)?;
        if best.from == id {
            return None;
        }
        // Memberships are not passed on (one level of reflection: a reflector filters for its
        // own clients); ours go to every peer that speaks RFC 4684.
        if let RouteKey::Rtc(_) = k {
            return (best.from == LOCAL).then(|| best.clone());
        }
        // A peer that speaks RFC 4684 gets what it asked for, once its set is complete.
        let rtc = peer
            .session
            .as_ref()
            .is_some_and(|s| s.has_family(Family::IPV4_RT_CONSTRAINT));
        if rtc && (!peer.rtc_complete || !Self::wants(peer, &best.route_targets())) {
            return None;
        }
        if let Some(allowed) = &peer.policy.allowed {
            if !best.route_targets().iter().any(|rt| allowed.contains(rt)) {
                return None;
            }
        }
        if best.from == LOCAL {
            return Some(best.clone());
        }
        let cluster = self.cfg.cluster_id?;
        let from_client = self.peers.get(&best.from).is_some_and(|p| p.policy.client);
        if !from_client && !peer.policy.client {
            return None;
        }
        // Not back to the originator.
        let originator = best
            .originator_id()
            .or_else(|| self.peers.get(&best.from).map(|p| p.policy.router_id));
        if originator == Some(peer.policy.router_id) {
            return None;
        }
        let mut attrs: Vec<PathAttribute> = best
            .attributes
            .iter()
            .filter(|a| {
                a.type_code() != attr_type::ORIGINATOR_ID
                    && a.type_code() != attr_type::CLUSTER_LIST
            })
            .cloned()
            .collect();
        if let Some(o) = originator {
            attrs.push(PathAttribute::new(AttrValue::OriginatorId(o)));
        }
        let mut list = vec![cluster];
        list.extend_from_slice(best.cluster_list());
        attrs.push(PathAttribute::new(AttrValue::ClusterList(list)));
        Some(Arc::new(Path {
            attributes: Arc::new(attrs),
            ..(**best).clone()
        }))
    }

    fn export(&mut self, id: PeerId, dirty: &BTreeSet<RouteKey>) -> Vec<Update> {
        let Some(peer) = self.peers.get(&id) else {
            return Vec::new();
        };
        let Some(session) = peer.session.clone() else {
            return Vec::new();
        };
        // RFC 4684 §4: until the peer's memberships are complete, only ours go (and their
        // End-of-RIB); its table waits (full_sync stays set).
        let waiting_rtc = session.has_family(Family::IPV4_RT_CONSTRAINT) && !peer.rtc_complete;
        let full = peer.full_sync;
        let keys: Vec<RouteKey> = if full {
            self.loc.keys().copied().collect()
        } else {
            dirty.iter().copied().collect()
        };
        let keys: Vec<RouteKey> = if waiting_rtc {
            keys.into_iter()
                .filter(|k| matches!(k, RouteKey::Rtc(_)))
                .collect()
        } else {
            keys
        };
        let mut announce: HashMap<AnnounceGroup, (Arc<Path>, Vec<Nlri>)> = HashMap::new();
        let mut withdraw: BTreeMap<Family, Vec<Nlri>> = BTreeMap::new();
        let mut sent = Vec::new();
        for k in keys {
            let want = self
                .export_path(id, &k)
                .filter(|_| session.has_family(k.family()));
            let had = self.peers.get(&id).and_then(|p| p.adj_out.get(&k)).cloned();
            match (want, had) {
                (Some(w), Some(h)) if w == h => {}
                (Some(w), _) => {
                    let e = announce
                        .entry((k.family(), w.next_hop, Arc::as_ptr(&w.attributes)))
                        .or_insert_with(|| (w.clone(), Vec::new()));
                    e.1.push(k.announce(&w.labels));
                    sent.push((k, Some(w)));
                }
                (None, Some(_)) => {
                    withdraw.entry(k.family()).or_default().push(k.withdrawal());
                    sent.push((k, None));
                }
                (None, None) => {}
            }
        }
        let mut updates = Vec::new();
        for (family, routes) in withdraw {
            if let Ok(u) = Update::pack_withdrawals(family, routes, &session) {
                updates.extend(u);
            }
        }
        let mut groups: Vec<_> = announce.into_iter().collect();
        groups.sort_by_key(|((f, nh, _), _)| (*f, *nh));
        for ((family, next_hop, _), (path, routes)) in groups {
            if let Ok(u) = Update::pack_announcements(
                family,
                next_hop,
                (*path.attributes).clone(),
                routes,
                &session,
            ) {
                updates.extend(u);
            }
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return updates;
        };
        for (k, p) in sent {
            match p {
                Some(p) => peer.adj_out.insert(k, p),
                None => peer.adj_out.remove(&k),
            };
        }
        if waiting_rtc {
            if !peer.rtc_eor_sent {
                peer.rtc_eor_sent = true;
                updates.push(Update::end_of_rib(Family::IPV4_RT_CONSTRAINT));
            }
        } else if full {
            peer.full_sync = false;
            for f in &session.families {
                if *f == Family::IPV4_RT_CONSTRAINT && peer.rtc_eor_sent {
                    continue;
                }
                updates.push(Update::end_of_rib(*f));
            }
            peer.rtc_eor_sent = true;
        }
        updates
    }

    /// The best path of every route, for `show bgp routes`.
    pub fn loc_rib(&self) -> impl Iterator<Item = (&RouteKey, &Arc<Path>)> {
        self.loc.iter()
    }

    /// Per peer: routes accepted and routes sent (`PfxRcd`, `PfxSnt`).
    pub fn peer_counts(&self, id: PeerId) -> (usize, usize) {
        self.peers
            .get(&id)
            .map_or((0, 0), |p| (p.accepted, p.adj_out.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::attributes::{AsPath, Origin};
    use crate::bgp::wire::extcomm::{ExtCommunity, RouteTarget};
    use crate::bgp::wire::nlri::RtConstraint;
    use crate::bgp::wire::update::UpdateOutcome;

    const BLUE: RouteTarget = RouteTarget::As2 {
        asn: 65000,
        number: 1001,
    };
    const RED: RouteTarget = RouteTarget::As2 {
        asn: 65000,
        number: 1002,
    };

    fn session() -> Session {
        Session::new(true, vec![Family::IPV4_VPN, Family::IPV4_SDWAN])
    }

    fn attrs(rt: RouteTarget) -> Vec<PathAttribute> {
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(Vec::new()))),
            PathAttribute::new(AttrValue::LocalPref(100)),
            PathAttribute::new(AttrValue::ExtCommunities(vec![ExtCommunity::RouteTarget(
                rt,
            )])),
        ]
    }

    fn vpn(rd_ip: [u8; 4], prefix: &str) -> Nlri {
        Nlri::Vpn(VpnRoute::new(
            100,
            RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::from(rd_ip),
                number: 1,
            },
            prefix.parse().unwrap(),
        ))
    }

    fn announce(next_hop: [u8; 4], rt: RouteTarget, routes: Vec<Nlri>) -> UpdateOutcome {
        UpdateOutcome {
            update: Update::announce(
                Family::IPV4_VPN,
                IpAddr::V4(Ipv4Addr::from(next_hop)),
                attrs(rt),
                routes,
            ),
            discarded: Vec::new(),
            treat_as_withdraw: None,
        }
    }

    fn policy(id: [u8; 4], client: bool, allowed: &[RouteTarget]) -> PeerPolicy {
        PeerPolicy {
            router_id: Ipv4Addr::from(id),
            address: IpAddr::V4(Ipv4Addr::from(id)),
            client,
            allowed: (!allowed.is_empty()).then(|| {
                allowed
                    .iter()
                    .map(|rt| ExtCommunity::RouteTarget(*rt).to_bytes())
                    .collect()
            }),
        }
    }

    /// A reflector with clients 1 (blue), 2 (blue) and 3 (red), all up.
    fn reflector() -> Rib {
        let mut rib = Rib::new(RibConfig {
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            cluster_id: Some(Ipv4Addr::new(10, 0, 0, 100)),
            local_as: 65000,
        });
        for (id, rt) in [(1, BLUE), (2, BLUE), (3, RED)] {
            rib.add_peer(id, policy([10, 0, 0, id as u8], true, &[rt]));
            rib.peer_up(id, session(), Ipv4Addr::new(10, 0, 0, id as u8));
        }
        rib.flush(); // the End-of-RIBs of the empty tables
        rib
    }

    fn announced_to(out: &[(PeerId, Vec<Update>)], id: PeerId) -> Vec<Update> {
        out.iter()
            .filter(|(p, _)| *p == id)
            .flat_map(|(_, u)| u.clone())
            .collect()
    }

    #[test]
    fn a_reflector_passes_a_tenants_routes_to_that_tenants_clients_only() {
        let mut rib = reflector();
        rib.receive(
            1,
            &announce(
                [10, 255, 0, 1],
                BLUE,
                vec![vpn([10, 255, 0, 1], "10.1.0.0/24")],
            ),
        );
        let (changes, out) = rib.flush();
        assert_eq!(changes.len(), 1);
        let to2 = announced_to(&out, 2);
        assert_eq!(to2.len(), 1);
        let u = &to2[0];
        assert_eq!(u.announced().len(), 1);
        assert_eq!(u.originator_id(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(u.cluster_list(), &[Ipv4Addr::new(10, 0, 0, 100)]);
        assert_eq!(u.route_targets(), vec![BLUE]);
        assert!(announced_to(&out, 1).is_empty(), "not back to its sender");
        assert!(announced_to(&out, 3).is_empty(), "red never hears of blue");
        assert_eq!(rib.peer_counts(2), (0, 1));
        assert_eq!(rib.peer_counts(3), (0, 0));
    }

    /// RFC 4684: a client that speaks Route Target constraint gets nothing until its
    /// memberships are complete, then only the routes of the Route Targets it asked for
    /// (within what it is authorized for); a new membership brings that tenant's routes.
    #[test]
    fn route_target_constraint_sends_what_a_client_asked_for() {
        let mut rib = reflector();
        let rtc_session = Session::new(true, vec![Family::IPV4_VPN, Family::IPV4_RT_CONSTRAINT]);
        rib.add_peer(4, policy([10, 0, 0, 4], true, &[BLUE, RED]));
        rib.peer_up(4, rtc_session, Ipv4Addr::new(10, 0, 0, 4));
        rib.receive(
            1,
            &announce(
                [10, 255, 0, 1],
                BLUE,
                vec![vpn([10, 255, 0, 1], "10.1.0.0/24")],
            ),
        );
        rib.receive(
            3,
            &announce(
                [10, 255, 0, 3],
                RED,
                vec![vpn([10, 255, 0, 3], "10.3.0.0/24")],
            ),
        );
        let (_, out) = rib.flush();
        let to4 = announced_to(&out, 4);
        assert!(
            to4.iter().all(|u| u.announced().is_empty()),
            "nothing before its memberships"
        );
        let membership = |rt: RouteTarget| UpdateOutcome {
            update: Update::announce(
                Family::IPV4_RT_CONSTRAINT,
                "10.0.0.4".parse().unwrap(),
                vec![
                    PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                    PathAttribute::new(AttrValue::AsPath(AsPath::sequence(Vec::new()))),
                ],
                vec![Nlri::RtConstraint(RtConstraint::new(
                    65000,
                    ExtCommunity::RouteTarget(rt),
                ))],
            ),
            discarded: Vec::new(),
            treat_as_withdraw: None,
        };
        let eor = |f: Family| UpdateOutcome {
            update: Update::end_of_rib(f),
            discarded: Vec::new(),
            treat_as_withdraw: None,
        };
        rib.receive(4, &membership(RED));
        rib.receive(4, &eor(Family::IPV4_RT_CONSTRAINT));
        let (_, out) = rib.flush();
        let got: Vec<_> = announced_to(&out, 4)
            .iter()
            .flat_map(|u| u.route_targets())
            .collect();
        assert_eq!(got, vec![RED], "red only, as asked");
        rib.receive(4, &membership(BLUE));
        let (_, out) = rib.flush();
        let got: Vec<_> = announced_to(&out, 4)
            .iter()
            .flat_map(|u| u.route_targets())
            .collect();
        assert!(got.contains(&BLUE), "blue once asked for: {got:?}");
    }

    #[test]
    fn a_client_may_not_announce_another_tenants_routes() {
        let mut rib = reflector();
        rib.receive(
            3,
            &announce(
                [10, 255, 0, 3],
                BLUE,
                vec![vpn([10, 255, 0, 3], "10.3.0.0/24")],
            ),
        );
        let (changes, out) = rib.flush();
        assert!(changes.is_empty());
        assert!(out.is_empty());
        assert_eq!(rib.stats.unauthorized, 1);
    }

    #[test]
    fn reflection_loops_are_dropped() {
        let mut rib = reflector();
        let mut o = announce(
            [10, 255, 0, 1],
            BLUE,
            vec![vpn([10, 255, 0, 1], "10.1.0.0/24")],
        );
        o.update
            .attributes
            .push(PathAttribute::new(AttrValue::ClusterList(vec![
                Ipv4Addr::new(10, 0, 0, 100),
            ])));
        rib.receive(1, &o);
        assert!(rib.flush().0.is_empty());
        assert_eq!(rib.stats.loops, 1);
    }

    #[test]
    fn withdrawals_and_treat_as_withdraw_reach_the_other_clients() {
        let mut rib = reflector();
        let routes = vec![
            vpn([10, 255, 0, 1], "10.1.0.0/24"),
            vpn([10, 255, 0, 1], "10.1.1.0/24"),
        ];
        rib.receive(1, &announce([10, 255, 0, 1], BLUE, routes.clone()));
        rib.flush();
        // The same routes again with an invalid ORIGIN (RFC 7606 §7.1: treat-as-withdraw),
        // through the codec.
        let mut bad = announce([10, 255, 0, 1], BLUE, routes).update;
        for a in &mut bad.attributes {
            if a.type_code() == attr_type::ORIGIN {
                a.value = AttrValue::Other {
                    type_code: attr_type::ORIGIN,
                    value: vec![9],
                };
            }
        }
        let bytes = crate::bgp::wire::Message::Update(bad)
            .encode(&session())
            .unwrap();
        let bad = match crate::bgp::wire::Message::decode(&bytes, &session()).unwrap() {
            crate::bgp::wire::Received::Update(o) => o,
            other => panic!("{other:?}"),
        };
        assert!(bad.treat_as_withdraw.is_some());
        rib.receive(1, &bad);
        let (changes, out) = rib.flush();
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| matches!(c, LocChange::Gone(_))));
        let to2 = announced_to(&out, 2);
        let withdrawn: usize = to2.iter().map(|u| u.withdrawals().len()).sum();
        assert_eq!(withdrawn, 2);
        assert_eq!(rib.stats.treated_as_withdraw, 1);
    }

    #[test]
    fn graceful_restart_keeps_stale_routes_until_end_of_rib_or_the_restart_time() {
        let mut rib = reflector();
        let t0 = Instant::now();
        let a = vpn([10, 255, 0, 1], "10.1.0.0/24");
        let b = vpn([10, 255, 0, 1], "10.1.1.0/24");
        rib.receive(1, &announce([10, 255, 0, 1], BLUE, vec![a.clone(), b]));
        rib.flush();
        rib.peer_down(1, Some(Duration::from_secs(120)), t0);
        let (changes, out) = rib.flush();
        assert!(changes
            .iter()
            .all(|c| matches!(c, LocChange::Best(_, p) if p.stale)));
        assert!(announced_to(&out, 2)
            .iter()
            .all(|u| u.withdrawals().is_empty()));
        // It comes back and re-announces only `a`, then End-of-RIB: `b` goes.
        rib.peer_up(1, session(), Ipv4Addr::new(10, 0, 0, 1));
        rib.receive(1, &announce([10, 255, 0, 1], BLUE, vec![a]));
        rib.receive(
            1,
            &UpdateOutcome {
                update: Update::end_of_rib(Family::IPV4_VPN),
                discarded: Vec::new(),
                treat_as_withdraw: None,
            },
        );
        let (changes, _) = rib.flush();
        let gone = changes
            .iter()
            .filter(|c| matches!(c, LocChange::Gone(_)))
            .count();
        assert_eq!(gone, 1);
        assert_eq!(rib.loc_rib().count(), 1);
        assert!(rib.loc_rib().all(|(_, p)| !p.stale));
        // Down again, and it does not come back in time: everything goes.
        rib.peer_down(1, Some(Duration::from_secs(120)), t0);
        rib.poll(t0 + Duration::from_secs(121));
        rib.flush();
        assert_eq!(rib.loc_rib().count(), 0);
    }

    #[test]
    fn an_edge_sends_its_own_routes_and_end_of_rib_but_not_what_it_learned() {
        let mut rib = Rib::new(RibConfig {
            router_id: Ipv4Addr::new(10, 255, 0, 1),
            cluster_id: None,
            local_as: 65000,
        });
        rib.add_peer(0, policy([10, 0, 0, 100], false, &[]));
        let (k, _) = RouteKey::of(&vpn([10, 255, 0, 1], "10.1.0.0/24")).unwrap();
        rib.originate(
            k,
            Path {
                attributes: Arc::new(attrs(BLUE)),
                next_hop: "10.255.0.1".parse().unwrap(),
                labels: vec![Label::new(1001, true)],
                from: LOCAL,
                stale: false,
            },
        );
        rib.peer_up(0, session(), Ipv4Addr::new(10, 0, 0, 100));
        let (_, out) = rib.flush();
        let u = announced_to(&out, 0);
        assert_eq!(u.iter().map(|u| u.announced().len()).sum::<usize>(), 1);
        let eors: Vec<_> = u.iter().filter_map(|u| u.end_of_rib_family()).collect();
        assert_eq!(eors, vec![Family::IPV4_VPN, Family::IPV4_SDWAN]);
        // A route learned from the reflector is not sent back to it.
        rib.receive(
            0,
            &announce(
                [10, 255, 0, 2],
                BLUE,
                vec![vpn([10, 255, 0, 2], "10.2.0.0/24")],
            ),
        );
        let (changes, out) = rib.flush();
        assert_eq!(changes.len(), 1);
        assert!(announced_to(&out, 0).is_empty());
        // Withdrawing our route sends a withdrawal.
        rib.withdraw_local(&k);
        let (_, out) = rib.flush();
        assert_eq!(announced_to(&out, 0)[0].withdrawals().len(), 1);
    }

    #[test]
    fn many_routes_are_packed_into_updates_under_4096_bytes() {
        let mut rib = reflector();
        let routes: Vec<Nlri> = (0..2000u32)
            .map(|i| vpn([10, 255, 0, 1], &format!("10.{}.{}.0/24", i / 256, i % 256)))
            .collect();
        rib.receive(1, &announce([10, 255, 0, 1], BLUE, routes));
        let (changes, out) = rib.flush();
        assert_eq!(changes.len(), 2000);
        let to2 = announced_to(&out, 2);
        assert!(to2.len() > 1);
        let mut total = 0;
        for u in &to2 {
            let len = u.encoded_len(&session()).unwrap();
            assert!(len <= 4096, "{len}");
            total += u.announced().len();
        }
        assert_eq!(total, 2000);
    }
}
