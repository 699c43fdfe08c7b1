//! The tables the workers read: ports' own addresses, routes, neighbors. The control thread
//! builds a new `Tables` off the fast path and publishes it whole (read-copy-update through
//! `arc_swap`); a worker loads the current snapshot once per burst, so it never waits and
//! never sees a half-made table. Each snapshot has a generation number, which per-worker
//! caches compare against.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::hash::FastMap;
use crate::multipath::{PathBoard, PeerPaths, MAX_PATHS};
use crate::policy::Policy;
use crate::route::{NextHop, RouteSource, RouteTable, TenantHop};
use crate::tunnel::{TenantSpec, TenantTable, TunnelInfo, TunnelKeys, TunnelKind};
use crate::wire::{ipv6, MacAddr};

/// What the data plane knows of one of its own ports.
#[derive(Debug, Clone, Serialize)]
pub struct PortInfo {
    pub name: String,
    pub mac: MacAddr,
    pub mtu: u16,
    pub v4: Vec<Ipv4Net>,
    /// Configured addresses, then the EUI-64 link-local address.
    pub v6: Vec<Ipv6Net>,
    /// The tenant whose LAN this port is (index into `Tables::tenants`).
    pub tenant: Option<u16>,
    /// An internet-facing circuit (a WAN port not marked trusted): it takes tunnel traffic
    /// from known peers, probes, ARP/ND and (rate-limited) pings to the box; no transit.
    pub internet: bool,
}

impl PortInfo {
    pub fn new(name: &str, mac: MacAddr, mtu: u16, addresses: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in addresses {
            match a {
                IpNet::V4(n) => v4.push(*n),
                IpNet::V6(n) => v6.push(*n),
            }
        }
        if let Ok(ll) = Ipv6Net::new(ipv6::link_local_from_mac(&mac), 64) {
            v6.push(ll);
        }
        Self {
            name: name.to_owned(),
            mac,
            mtu,
            v4,
            v6,
            tenant: None,
            internet: false,
        }
    }

    #[inline]
    pub fn owns_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.iter().any(|n| n.addr() == a)
    }

    #[inline]
    pub fn owns_v6(&self, a: &Ipv6Addr) -> bool {
        self.v6.iter().any(|n| n.addr() == *a)
    }

    /// Our address on the subnet that contains `peer`: the source for ARP and NS to it.
    pub fn v4_source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.v4.iter().find(|n| n.contains(&peer)).map(|n| n.addr())
    }

    pub fn v6_source_for(&self, peer: &Ipv6Addr) -> Option<Ipv6Addr> {
        self.v6.iter().find(|n| n.contains(peer)).map(|n| n.addr())
    }

    /// The address ICMP errors are sent from: the first configured one of the family.
    pub fn first_v4(&self) -> Option<Ipv4Addr> {
        self.v4.first().map(|n| n.addr())
    }

    pub fn first_v6(&self) -> Option<Ipv6Addr> {
        self.v6.first().map(|n| n.addr())
    }
}

/// Key of the neighbor table: the port and the neighbor's address (IPv4 mapped into IPv6 so
/// both families share one integer key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborKey {
    pub port: u16,
    pub addr: u128,
}

impl NeighborKey {
    #[inline]
    pub fn new(port: u16, ip: IpAddr) -> Self {
        Self {
            port,
            addr: addr_key(ip),
        }
    }

    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.addr);
        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
    }
}

/// Key ids of statically configured tunnels start here (the control plane numbers learned
/// keys from 1, far below).
const STATIC_KEY_IDS: u64 = 1 << 62;

/// What finds an inbound SA: the SPI and, for an overlay tunnel, the peer's loopback (the
/// source of the IP header in front of ESP). Overlay SPIs come from each pair's own key
/// exchange, so they are unique per peer, not per box: two peers may pick the same SPI
/// (RFC 4301 §4.1 lets a receiver add the source to the lookup). Plain tunnels: peer 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpiKey {
    pub spi: u32,
    pub peer: u128,
}

impl SpiKey {
    /// The peer half of the key for tunnel `t`.
    pub fn peer_of(t: &TunnelInfo) -> u128 {
        match (t.kind, t.loopbacks) {
            (TunnelKind::Overlay, Some((_, remote))) => addr_key(remote),
            _ => 0,
        }
    }
}

/// An address as 128 bits (IPv4 mapped), as map keys take it.
#[inline]
pub fn addr_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A snapshot of everything the forwarding path reads.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub generation: u64,
    pub ports: Vec<PortInfo>,
    pub routes: RouteTable,
    pub neighbors: FastMap<NeighborKey, MacAddr>,
    pub tenants: Vec<TenantTable>,
    pub tunnels: Vec<TunnelInfo>,
    /// Inbound (SPI, peer) -> (tunnel, sender); see [`SpiKey`].
    pub spis: FastMap<SpiKey, (u16, u16)>,
    /// The keying material of each tunnel (parallel to `tunnels`; `None`: not keyed). Workers
    /// set up the SAs whose key ids they do not have yet from here.
    pub keys: Vec<Option<Arc<TunnelKeys>>>,
    /// Overlay peers and their paths (`TunnelInfo::peer_index` points here).
    pub peers: Vec<PeerPaths>,
    /// (our port, the peer's address on it) -> (peer, path): who sent a probe.
    pub path_of: FastMap<NeighborKey, (u16, u8)>,
    /// UDP port of path probes (0: no probing).
    pub probe_port: u16,
    /// The paths' published state (the same board in every generation while the overlay
    /// peers stay the same).
    pub board: Arc<PathBoard>,
    /// Changes whenever the overlay peers, their paths or their keys change (the prober
    /// follows it).
    pub overlay_version: u64,
    /// Steering policies, in the order they are tried.
    pub policies: Vec<Policy>,
    /// The underlay next hops of the tunnels' circuits: the only neighbors learned on an
    /// internet-facing port.
    pub circuit_hops: FastMap<NeighborKey, ()>,
}

impl Tables {
    /// Builds the first generation from the ports and static routes: each port address adds a
    /// connected route.
    pub fn new(ports: Vec<PortInfo>, static_routes: &[(IpNet, NextHop)]) -> Self {
        let mut routes = RouteTable::default();
        for (i, p) in ports.iter().enumerate() {
            let port = u16::try_from(i).unwrap_or(u16::MAX);
            for n in &p.v4 {
                routes.insert(
                    IpNet::V4(n.trunc()),
                    NextHop { port, via: None },
                    RouteSource::Connected,
                );
            }
            for n in p.v6.iter().filter(|n| !is_link_local(&n.addr())) {
                routes.insert(
                    IpNet::V6(n.trunc()),
                    NextHop { port, via: None },
                    RouteSource::Connected,
                );
            }
        }
        for (prefix, hop) in static_routes {
            routes.insert(*prefix, *hop, RouteSource::Static);
        }
        Self {
            generation: 1,
            ports,
            routes,
            neighbors: FastMap::default(),
            tenants: Vec::new(),
            tunnels: Vec::new(),
            spis: FastMap::default(),
            keys: Vec::new(),
            peers: Vec::new(),
            path_of: FastMap::default(),
            probe_port: 0,
            board: Arc::default(),
            overlay_version: 0,
            policies: Vec::new(),
            circuit_hops: FastMap::default(),
        }
    }

    /// Adds the tenants (name, VNI, LAN ports, routes) and the tunnels: each tenant's LAN
    /// ports leave the underlay's table for the tenant's, with their connected routes.
    pub fn with_tenants(self, tenants: Vec<TenantSpec>, tunnels: Vec<TunnelInfo>) -> Self {
        self.with_policies(tenants, tunnels, Vec::new())
    }

    /// [`with_tenants`](Self::with_tenants), and the steering policies.
    pub fn with_policies(
        mut self,
        tenants: Vec<TenantSpec>,
        mut tunnels: Vec<TunnelInfo>,
        policies: Vec<Policy>,
    ) -> Self {
        self.policies = policies;
        let mut underlay = RouteTable::default();
        for e in self.routes.entries() {
            let tenant_port = tenants
                .iter()
                .any(|t| t.lan_ports.contains(&e.next_hop.port));
            if !tenant_port {
                underlay.insert(e.prefix, e.next_hop, e.source);
            }
        }
        self.routes = underlay;
        for (i, spec) in tenants.into_iter().enumerate() {
            let TenantSpec {
                name,
                vni,
                lan_ports,
                routes,
            } = spec;
            let tn = u16::try_from(i).unwrap_or(u16::MAX);
            let mut table = RouteTable::default();
            for &p in &lan_ports {
                let Some(port) = self.ports.get_mut(usize::from(p)) else {
                    continue;
                };
                port.tenant = Some(tn);
                let nets = port.v4.iter().map(|n| IpNet::V4(n.trunc())).chain(
                    port.v6
                        .iter()
                        .filter(|n| !is_link_local(&n.addr()))
                        .map(|n| IpNet::V6(n.trunc())),
                );
                for net in nets {
                    table.insert(
                        net,
                        TenantHop::Local(NextHop { port: p, via: None }),
                        RouteSource::Connected,
                    );
                }
            }
            for (prefix, hop) in routes {
                table.insert(prefix, hop, RouteSource::Static);
            }
            self.tenants.push(TenantTable {
                name,
                vni,
                lan_ports,
                routes: table,
            });
        }
        let mut slot = 0u32;
        for (i, t) in tunnels.iter_mut().enumerate() {
            t.first_slot = slot;
            if t.out_key == 0 {
                t.out_key = STATIC_KEY_IDS + 2 * i as u64;
            }
            if t.in_key == 0 {
                t.in_key = STATIC_KEY_IDS + 2 * i as u64 + 1;
            }
            let peer = SpiKey::peer_of(t);
            for s in 0..t.senders {
                self.spis.insert(
                    SpiKey {
                        spi: t.in_spi.wrapping_add(s),
                        peer,
                    },
                    (i as u16, s as u16),
                );
            }
            slot += t.senders;
            // The overlay peers, in the order their first tunnel comes: every tunnel to a peer
            // has the peer's circuits, so they are its paths.
            if t.kind == TunnelKind::Overlay {
                let peer = match self.peers.iter().position(|p| p.name == t.peer) {
                    Some(p) => p,
                    None => {
                        self.peers.push(PeerPaths {
                            name: t.peer.clone(),
                            paths: t.circuits.clone(),
                        });
                        self.peers.len() - 1
                    }
                };
                t.peer_index = Some(peer as u16);
            }
        }
        for (pi, p) in self.peers.iter().enumerate() {
            for (ci, c) in p.paths.iter().enumerate().take(MAX_PATHS) {
                self.path_of
                    .insert(NeighborKey::new(c.port, c.remote), (pi as u16, ci as u8));
            }
        }
        self.board = Arc::new(PathBoard::new(&self.peers, self.policies.len()));
        for t in &tunnels {
            for c in &t.circuits {
                if let Some(h) = self.routes.lookup(c.remote).filter(|h| h.port == c.port) {
                    self.circuit_hops
                        .insert(NeighborKey::new(c.port, h.via.unwrap_or(c.remote)), ());
                }
            }
        }
        self.tunnels = tunnels;
        self
    }

    /// Whether a neighbor seen on `port` may be learned: any, except on an internet-facing
    /// port, where only the circuits' next hops are (so strangers cannot fill the table).
    pub fn may_learn(&self, port: u16, ip: IpAddr) -> bool {
        self.ports
            .get(usize::from(port))
            .is_some_and(|p| !p.internet)
            || self.circuit_hops.contains_key(&NeighborKey::new(port, ip))
    }

    #[inline]
    pub fn neighbor(&self, port: u16, ip: IpAddr) -> Option<&MacAddr> {
        self.neighbors.get(&NeighborKey::new(port, ip))
    }
}

pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The channel between the control thread (one writer) and the workers (many readers).
#[derive(Debug)]
pub struct TablePublisher {
    current: ArcSwap<Tables>,
}

impl TablePublisher {
    pub fn new(first: Tables) -> Self {
        Self {
            current: ArcSwap::from_pointee(first),
        }
    }

    /// The current snapshot, for a worker's burst or the management API. Lock-free.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Tables>> {
        self.current.load()
    }

    pub fn snapshot(&self) -> Arc<Tables> {
        self.current.load_full()
    }

    /// Publishes `next` with the next generation number. Only the control thread calls this.
    pub fn publish(&self, mut next: Tables) {
        next.generation = self.current.load().generation + 1;
        self.current.store(Arc::new(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_routes_and_publication() {
        let port = PortInfo::new(
            "lan0",
            [2, 0, 0, 0, 0, 1],
            1500,
            &[
                "10.1.0.1/24".parse().unwrap(),
                "fd00:1::1/64".parse().unwrap(),
            ],
        );
        assert!(
            port.owns_v6(&"fe80::ff:fe00:1".parse().unwrap()),
            "{:?}",
            port.v6
        );
        let t = Tables::new(
            vec![port],
            &[(
                "10.2.0.0/24".parse().unwrap(),
                NextHop {
                    port: 0,
                    via: Some("10.1.0.254".parse().unwrap()),
                },
            )],
        );
        assert_eq!(
            t.routes.lookup("10.1.0.7".parse().unwrap()),
            Some(&NextHop { port: 0, via: None })
        );
        assert_eq!(
            t.routes.lookup("fd00:1::7".parse().unwrap()),
            Some(&NextHop { port: 0, via: None })
        );
        assert!(
            t.routes.lookup("fe80::7".parse().unwrap()).is_none(),
            "link-local is never routed"
        );
        let publisher = TablePublisher::new(t);
        let before = publisher.load().generation;
        let mut next = (**publisher.load()).clone();
        next.neighbors.insert(
            NeighborKey::new(0, "10.1.0.254".parse().unwrap()),
            [2, 0, 0, 0, 0, 2],
        );
        publisher.publish(next);
        let now = publisher.load();
        assert_eq!(now.generation, before + 1);
        assert_eq!(
            now.neighbor(0, "10.1.0.254".parse().unwrap()),
            Some(&[2, 0, 0, 0, 0, 2])
        );
    }

    #[test]
    fn neighbor_key_roundtrip() {
        for ip in ["10.0.0.1", "fd00::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(NeighborKey::new(3, ip).ip(), ip);
        }
    }
}
