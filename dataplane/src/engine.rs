//! The running data plane: ports, the mbuf pool, the published tables and the workers, with
//! what the control thread needs to steer and observe them. EAL must be initialised first.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use ipnet::IpNet;
use serde::Serialize;

use crate::counters::{CounterSnapshot, WorkerCounters};
use crate::eal;
use crate::error::DataplaneError;
use crate::esp::Backend;
use crate::lcore;
use crate::mempool::Mempool;
use crate::multipath::{probe_keys, Prober};
use crate::pathmon::MonitorConfig;
use crate::port::{memif_client_socket, LinkStatus, Port, PortConfig, PortStats};
use crate::route::{NextHop, RouteEntry, TenantHop};
use crate::tables::{NeighborKey, PortInfo, TablePublisher, Tables};
use crate::tunnel::{SaState, SaStats, TunnelInfo, TunnelKeys};
use crate::wire::{format_mac, MacAddr};
use crate::worker::{self, NeighborEvent, WorkerConfig, WorkerShared};

#[derive(Debug, Clone)]
pub struct PortSpec {
    pub name: String,
    /// DPDK device string: a virtual device with arguments (`net_af_packet0,iface=lan0`) or a
    /// PCI address probed by EAL.
    pub device: String,
    pub role: String,
    pub mac: Option<MacAddr>,
    pub mtu: u16,
    pub addresses: Vec<IpNet>,
    /// An 802.1Q sub-interface: (index of its port in `EngineSpec::ports`, which comes
    /// first, VLAN ID). `device` and `mac` are then unused: it has its port's.
    pub vlan: Option<(u16, u16)>,
    /// An internet-facing circuit (a WAN port not trusted): filtered (see
    /// [`PortInfo::internet`]).
    pub internet: bool,
}

pub use crate::tunnel::TenantSpec;

#[derive(Debug)]
pub struct EngineSpec {
    /// A name unique in the process, used for the mempool.
    pub name: String,
    pub mbufs: u32,
    pub mbuf_cache: u32,
    pub worker_cores: Vec<usize>,
    pub rx_burst: u16,
    pub idle_sleep_max_us: u32,
    pub ports: Vec<PortSpec>,
    /// Static routes: prefix -> (port index, next hop).
    pub routes: Vec<(IpNet, NextHop)>,
    /// Permanent neighbor entries (port index, address, MAC), like `ip neigh ... permanent`.
    pub static_neighbors: Vec<(u16, IpAddr, MacAddr)>,
    pub tenants: Vec<TenantSpec>,
    /// Tunnels and their keys (parallel vectors); `first_slot` is filled in here.
    pub tunnels: Vec<TunnelInfo>,
    pub tunnel_keys: Vec<TunnelKeys>,
    /// The AEAD backend of every SA.
    pub backend: Backend,
    /// Path monitoring of the overlay peers' paths: the monitors' settings and the probes'
    /// UDP port (0: no probing; every path then counts as usable).
    pub path_monitor: MonitorConfig,
    pub probe_port: u16,
    /// Steering policies, tried in order.
    pub policies: Vec<crate::policy::Policy>,
}

/// Device names are virtual devices when they name a vdev driver.
fn is_vdev(device: &str) -> bool {
    device.starts_with("net_") || device.starts_with("eth_")
}

/// How long a `net_memif` client port waits at start for its server: two processes started
/// together (the generator and sdwand, two sdwands) do not choose their order, and DPDK
/// 22.11's memif client connects only in `rte_eth_dev_start`, which fails while no server
/// listens on the socket.
pub const MEMIF_SERVER_WAIT: Duration = Duration::from_secs(30);

/// Adds `qpairs=N` to an af_packet device so every worker gets its own queue pair (the PMD
/// fans packets out over its sockets with PACKET_FANOUT).
fn device_with_queues(device: &str, queues: u16) -> String {
    if device.starts_with("net_af_packet") && queues > 1 && !device.contains("qpairs=") {
        format!("{device},qpairs={queues}")
    } else {
        device.to_owned()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub device: String,
    pub driver: String,
    pub role: String,
    pub port_id: u16,
    pub mac: String,
    pub mtu: u16,
    pub addresses: Vec<String>,
    pub link: LinkStatus,
    pub stats: PortStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub index: usize,
    pub core: usize,
    pub counters: CounterSnapshot,
}

/// One SA in one direction, for `show sa`.
#[derive(Debug, Clone, Serialize)]
pub struct SaStatus {
    pub tenant: String,
    pub peer: String,
    pub kind: &'static str,
    /// "in" or "out".
    pub direction: &'static str,
    pub spi: u32,
    pub suite: &'static str,
    pub esn: bool,
    /// Inbound only.
    pub replay_window: Option<u32>,
    /// The circuits (WAN port names) that carried this SA's packets.
    pub circuits: Vec<String>,
    /// The tunnel's circuits: port, our address, the peer's, and the largest inner packet
    /// that fits the port's MTU once encapsulated.
    pub paths: Vec<CircuitStatus>,
    /// Overlay: (our loopback, the peer's).
    pub loopbacks: Option<(IpAddr, IpAddr)>,
    pub packets: u64,
    pub bytes: u64,
    /// Replayed or below the window.
    pub replay_drops: u64,
    pub auth_failed: u64,
    pub other_drops: u64,
    /// The highest sequence number sent or accepted.
    pub seq: u64,
    pub age_secs: u64,
    pub worker: usize,
}

/// A flow a policy steered, for `show flows`.
#[derive(Debug, Clone, Serialize)]
pub struct FlowStatus {
    pub tenant: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub dscp: u8,
    pub policy: String,
    pub mode: &'static str,
    pub sla: Option<String>,
    pub peer: String,
    /// Our circuit (WAN port) of its path, and of the copy's or parity's path.
    pub path: String,
    pub second: Option<String>,
    pub packets: u64,
    /// Seconds since its last packet (0.5 s resolution).
    pub idle_secs: f64,
    pub worker: usize,
}

/// A policy's choice of paths to one peer, for `show policies`.
#[derive(Debug, Clone, Serialize)]
pub struct ClassStatus {
    pub policy: String,
    pub tenant: String,
    pub mode: &'static str,
    pub sla: Option<String>,
    pub peer: String,
    /// Our circuit of the chosen path (`None`: none chosen yet; the route decides).
    pub path: Option<String>,
    pub second: Option<String>,
    pub moves: u64,
}

/// One path to an overlay peer, for `show paths`.
#[derive(Debug, Clone, Serialize)]
pub struct PathStatus {
    pub peer: String,
    /// Our circuit (WAN port), its transport domain and trust.
    pub port: String,
    pub transport: String,
    pub trusted: bool,
    pub local: IpAddr,
    pub remote: IpAddr,
    /// "unknown" (no reply yet), "up" or "down".
    pub state: &'static str,
    /// Probed at the active interval (carries traffic or an SLA policy's) or idle.
    pub active: bool,
    /// The SLA classes (of the policies) whose limits the path meets now.
    pub sla_met: Vec<String>,
    /// Seconds since the state last changed (`None`: never changed).
    pub since_secs: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    /// Over the last 100 probes.
    pub loss_pct: Option<f64>,
    pub jitter_ms: f64,
    pub probes_sent: u64,
    pub probes_answered: u64,
    pub probes_lost: u64,
    pub downs: u64,
    pub false_alarms: u64,
    /// Tunnel packets sent and received on this path (all tenants).
    pub packets_out: u64,
    pub packets_in: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CircuitStatus {
    pub port: String,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub tunnel_mtu: usize,
}

/// A route of a tenant, for `show routes`.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRouteEntry {
    pub tenant: String,
    pub entry: RouteEntry<TenantHop>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighborEntry {
    pub port: String,
    pub ip: IpAddr,
    pub mac: String,
}

struct WorkerHandle {
    core: usize,
    /// The worker's SA counters (replaced when its SAs change).
    sa_stats: Arc<arc_swap::ArcSwap<SaStats>>,
    counters: Arc<WorkerCounters>,
    events: Arc<ArrayQueue<NeighborEvent>>,
    join: Option<JoinHandle<()>>,
}

pub struct Engine {
    specs: Vec<PortSpec>,
    /// For each logical port (index of `specs`): its physical port in `ports`.
    phys_of: Vec<usize>,
    ports: Vec<Port>,
    created_vdevs: Vec<String>,
    publisher: Arc<TablePublisher>,
    workers: Vec<WorkerHandle>,
    stop: Arc<AtomicBool>,
    /// When the SAs were installed (static keys: at start).
    sa_installed: std::time::Instant,
    /// What the configuration gave, from which every generation with learned tunnels is
    /// built again ([`set_overlay`](Self::set_overlay)).
    base: Base,
    // Dropped last: every mbuf must be back in the pool first.
    pool: Arc<Mempool>,
}

/// The configured part of the tables.
#[derive(Debug, Default)]
struct Base {
    ports: Vec<PortInfo>,
    routes: Vec<(IpNet, NextHop)>,
    tenants: Vec<TenantSpec>,
    tunnels: Vec<TunnelInfo>,
    keys: Vec<Option<Arc<TunnelKeys>>>,
    policies: Vec<crate::policy::Policy>,
}

/// What the control plane learned of the other appliances: tunnels with their keys (key ids
/// set, unique per key and direction, never reused), and the tenants' routes into them.
#[derive(Debug, Default, Clone)]
pub struct LearnedOverlay {
    pub tunnels: Vec<(TunnelInfo, Arc<TunnelKeys>)>,
    /// (tenant index, prefix, index into `tunnels`).
    pub routes: Vec<(u16, IpNet, u16)>,
}

impl Engine {
    /// Creates the pool, creates virtual devices, configures and starts every port with one
    /// rx/tx queue pair per worker, publishes the first tables and starts the workers.
    pub fn start(spec: EngineSpec) -> Result<Engine, DataplaneError> {
        if spec.worker_cores.is_empty() {
            return Err(DataplaneError::InvalidArgument(
                "at least one worker core is needed".into(),
            ));
        }
        let queues = u16::try_from(spec.worker_cores.len())
            .map_err(|_| DataplaneError::InvalidArgument("too many workers".into()))?;
        let pool = Arc::new(Mempool::new(
            &format!("mb_{}", spec.name),
            spec.mbufs,
            spec.mbuf_cache,
        )?);
        let mut engine = Engine {
            specs: spec.ports.clone(),
            phys_of: Vec::new(),
            ports: Vec::new(),
            created_vdevs: Vec::new(),
            publisher: Arc::new(TablePublisher::new(Tables::default())),
            workers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            sa_installed: std::time::Instant::now(),
            base: Base::default(),
            pool,
        };
        let mut infos: Vec<PortInfo> = Vec::new();
        let mut vlans = Vec::new();
        for (i, p) in spec.ports.iter().enumerate() {
            if let Some((parent, vid)) = p.vlan {
                let parent = usize::from(parent);
                if parent >= i || spec.ports[parent].vlan.is_some() {
                    return Err(DataplaneError::InvalidArgument(format!(
                        "VLAN {} must come after its (physical) port",
                        p.name
                    )));
                }
                let mac = infos[parent].mac;
                let mut info = PortInfo::new(&p.name, mac, p.mtu, &p.addresses);
                info.internet = p.internet;
                infos.push(info);
                let phys = engine.phys_of[parent];
                engine.phys_of.push(phys);
                vlans.push(vid);
                continue;
            }
            vlans.push(0);
            engine.phys_of.push(engine.ports.len());
            let name = p.device.split(',').next().unwrap_or(&p.device).to_owned();
            if is_vdev(&p.device) && Port::by_name(&name).is_err() {
                eal::vdev_init(&device_with_queues(&p.device, queues))?;
                engine.created_vdevs.push(name.clone());
            }
            let mut port = Port::by_name(&name)?;
            port.configure(
                &PortConfig {
                    rx_queues: queues,
                    tx_queues: queues,
                    mtu: p.mtu,
                    ..PortConfig::default()
                },
                &engine.pool,
            )?;
            if let Some(mac) = &p.mac {
                // Devices that cannot change their address (net_pcap, some VFs) still get the
                // configured one: the pipeline uses it, and promiscuous mode lets it in.
                if port.set_mac(mac).is_err() {
                    port.set_promiscuous();
                }
            }
            match memif_client_socket(&p.device) {
                Some(socket) => port.start_memif_client(&socket, MEMIF_SERVER_WAIT)?,
                None => port.start()?,
            }
            let mut info = PortInfo::new(
                &p.name,
                p.mac.unwrap_or_else(|| port.mac()),
                p.mtu,
                &p.addresses,
            );
            info.internet = p.internet;
            infos.push(info);
            engine.ports.push(port);
        }
        engine.base = Base {
            ports: infos.clone(),
            routes: spec.routes.clone(),
            tenants: spec.tenants.clone(),
            tunnels: spec.tunnels.clone(),
            keys: Vec::new(),
            policies: spec.policies.clone(),
        };
        let mut tables = Tables::new(infos, &spec.routes).with_policies(
            spec.tenants,
            spec.tunnels,
            spec.policies,
        );
        // The configured tunnels with the key ids the tables gave them.
        engine.base.tunnels = tables.tunnels.clone();
        for &(port, ip, mac) in &spec.static_neighbors {
            tables.neighbors.insert(NeighborKey::new(port, ip), mac);
        }
        if spec.tunnel_keys.len() != tables.tunnels.len() {
            return Err(DataplaneError::InvalidArgument(
                "one set of keys per tunnel is needed".into(),
            ));
        }
        let mut sa_states = Vec::new();
        for index in 0..queues {
            sa_states.push(
                SaState::new(
                    index,
                    queues,
                    &tables.tunnels,
                    &spec.tunnel_keys,
                    spec.backend,
                )
                .map_err(|e| DataplaneError::InvalidArgument(e.to_string()))?,
            );
        }
        tables.probe_port = spec.probe_port;
        // The workers set up the SAs of later generations from the keys in the tables.
        tables.keys = spec
            .tunnel_keys
            .into_iter()
            .map(|k| Some(Arc::new(k)))
            .collect();
        // A prober even with no peer yet: peers learned later are probed too.
        let mut prober = if spec.probe_port != 0 {
            let keys = probe_keys(&tables);
            let mut p = Prober::new(
                &tables.peers,
                keys,
                spec.path_monitor,
                spec.probe_port,
                tables.board.clone(),
                spec.backend,
                engine.sa_installed,
            )
            .map_err(|e| DataplaneError::InvalidArgument(format!("path probe keys: {e}")))?;
            // It watches every worker's packet counts per path to tell idle paths.
            p.watch_traffic(sa_states.iter().map(SaState::stats_cell).collect());
            Some(Box::new(p))
        } else {
            None
        };
        engine.base.keys = tables.keys.clone();
        engine.publisher = Arc::new(TablePublisher::new(tables));
        let port_ids: Vec<u16> = engine
            .phys_of
            .iter()
            .map(|&k| engine.ports[k].id())
            .collect();
        // (untagged logical port, VLAN ID, the VLAN's logical port), for the rx path.
        let vlan_map: Vec<(u16, u16, u16)> = spec
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.vlan.map(|(parent, vid)| (parent, vid, i as u16)))
            .collect();
        let handoff: Arc<Vec<ArrayQueue<worker::Handoff>>> = Arc::new(
            (0..queues)
                .map(|_| ArrayQueue::new(worker::HANDOFF_QUEUE))
                .collect(),
        );
        for ((index, &core), sas) in spec.worker_cores.iter().enumerate().zip(sa_states) {
            let sa_stats = sas.stats_cell();
            let counters = Arc::new(WorkerCounters::default());
            let events = Arc::new(ArrayQueue::new(1024));
            let shared = WorkerShared {
                tables: engine.publisher.clone(),
                counters: counters.clone(),
                events: events.clone(),
                stop: engine.stop.clone(),
                handoff: handoff.clone(),
            };
            let cfg = WorkerConfig {
                index,
                port_ids: port_ids.clone(),
                vlans: vlans.clone(),
                vlan_map: vlan_map.clone(),
                queue: index as u16,
                rx_burst: spec.rx_burst,
                idle_sleep_max_us: spec.idle_sleep_max_us,
                resolver: index == 0,
                sas,
                prober: if index == 0 { prober.take() } else { None },
            };
            let pool = engine.pool.clone();
            let join = lcore::spawn_pinned(index, core, move || worker::run(cfg, pool, shared))?;
            engine.workers.push(WorkerHandle {
                core,
                sa_stats,
                counters,
                events,
                join: Some(join),
            });
        }
        Ok(engine)
    }

    pub fn publisher(&self) -> &Arc<TablePublisher> {
        &self.publisher
    }

    /// Publishes a generation with the configured tunnels and routes and `learned` after them
    /// (the configured ones keep their places, so their SAs never move). The workers take the
    /// new SAs between bursts; those whose key ids stay keep their state. The paths' board
    /// stays while the overlay peers and their paths stay the same.
    pub fn set_overlay(&self, learned: &LearnedOverlay) {
        let current = self.publisher.snapshot();
        let first = self.base.tunnels.len();
        let tenants = self.base.tenants.clone();
        let mut tunnels = self.base.tunnels.clone();
        let mut keys = self.base.keys.clone();
        for (t, k) in &learned.tunnels {
            tunnels.push(t.clone());
            keys.push(Some(k.clone()));
        }
        let mut next = Tables::new(self.base.ports.clone(), &self.base.routes).with_policies(
            tenants,
            tunnels,
            self.base.policies.clone(),
        );
        next.keys = keys;
        for &(tn, prefix, ti) in &learned.routes {
            if let Some(t) = next.tenants.get_mut(usize::from(tn)) {
                t.routes.insert(
                    prefix,
                    TenantHop::Tunnel {
                        tunnel: (first + usize::from(ti)) as u16,
                        circuit: None,
                    },
                    crate::route::RouteSource::Bgp,
                );
            }
        }
        next.neighbors = current.neighbors.clone();
        next.probe_port = current.probe_port;
        let same_peers = next.peers.len() == current.peers.len()
            && next
                .peers
                .iter()
                .zip(&current.peers)
                .all(|(a, b)| a.name == b.name && a.paths == b.paths);
        if same_peers {
            next.board = current.board.clone();
        }
        next.overlay_version = current.overlay_version + 1;
        self.publisher.publish(next);
    }

    /// Merges the neighbors the workers learned into a new table generation; returns how many
    /// entries changed.
    pub fn apply_neighbor_events(&self) -> usize {
        let current = self.publisher.snapshot();
        let mut next: Option<Tables> = None;
        let mut changed = 0;
        for w in &self.workers {
            while let Some(ev) = w.events.pop() {
                let key = NeighborKey::new(ev.port, ev.ip);
                let table = next.get_or_insert_with(|| (*current).clone());
                if table.neighbors.get(&key) != Some(&ev.mac) {
                    table.neighbors.insert(key, ev.mac);
                    changed += 1;
                }
            }
        }
        if let (Some(next), true) = (next, changed > 0) {
            self.publisher.publish(next);
        }
        changed
    }

    pub fn interfaces(&self) -> Vec<InterfaceStatus> {
        let tables = self.publisher.snapshot();
        self.specs
            .iter()
            .zip(&self.phys_of)
            .enumerate()
            .map(|(i, (spec, &phys))| {
                let port = &self.ports[phys];
                let info = tables.ports.get(i);
                // A VLAN has no device counters of its own (its frames are its port's).
                let (device, driver, stats) = match spec.vlan {
                    Some((parent, vid)) => (
                        format!(
                            "802.1Q VLAN {vid} on {}",
                            self.specs
                                .get(usize::from(parent))
                                .map_or("?", |p| p.name.as_str())
                        ),
                        "vlan".to_owned(),
                        PortStats::default(),
                    ),
                    None => (spec.device.clone(), port.driver(), port.stats()),
                };
                InterfaceStatus {
                    name: spec.name.clone(),
                    device,
                    driver,
                    role: spec.role.clone(),
                    port_id: port.id(),
                    mac: format_mac(&info.map_or_else(|| port.mac(), |i| i.mac)),
                    mtu: spec.mtu,
                    addresses: info
                        .map(|p| {
                            p.v4.iter()
                                .map(|n| n.to_string())
                                .chain(p.v6.iter().map(|n| n.to_string()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    link: port.link(),
                    stats,
                }
            })
            .collect()
    }

    pub fn workers(&self) -> Vec<WorkerStatus> {
        self.workers
            .iter()
            .enumerate()
            .map(|(index, w)| WorkerStatus {
                index,
                core: w.core,
                counters: w.counters.snapshot(),
            })
            .collect()
    }

    pub fn routes(&self) -> Vec<RouteEntry> {
        self.publisher.snapshot().routes.entries().to_vec()
    }

    /// The tunnels as the workers see them.
    pub fn tunnels(&self) -> Vec<TunnelInfo> {
        self.publisher.snapshot().tunnels.clone()
    }

    /// Every tenant's routes.
    pub fn tenant_routes(&self) -> Vec<TenantRouteEntry> {
        let t = self.publisher.snapshot();
        t.tenants
            .iter()
            .flat_map(|x| {
                x.routes.entries().iter().map(|e| TenantRouteEntry {
                    tenant: x.name.clone(),
                    entry: e.clone(),
                })
            })
            .collect()
    }

    /// Every SA, each way: per sending worker outbound, per sender seen inbound (the first
    /// inbound SPI always, the others once they carried a packet).
    pub fn sas(&self) -> Vec<SaStatus> {
        let t = self.publisher.snapshot();
        let age_secs = self.sa_installed.elapsed().as_secs();
        let port_name = |p: u16| {
            t.ports
                .get(usize::from(p))
                .map_or_else(String::new, |x| x.name.clone())
        };
        let mut v = Vec::new();
        for (ti, info) in t.tunnels.iter().enumerate() {
            let tenant = t
                .tenants
                .get(usize::from(info.tenant))
                .map_or_else(String::new, |x| x.name.clone());
            let paths: Vec<CircuitStatus> = info
                .circuits
                .iter()
                .map(|c| CircuitStatus {
                    port: port_name(c.port),
                    local: c.local,
                    remote: c.remote,
                    tunnel_mtu: t.ports.get(usize::from(c.port)).map_or(0, |p| {
                        crate::tunnel::max_inner_len(p.mtu, info.header_len(c))
                    }),
                })
                .collect();
            let circuits = |mask: u64| -> Vec<String> {
                info.circuits
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, c)| port_name(c.port))
                    .collect()
            };
            let base = |direction: &'static str,
                        spi: u32,
                        worker: usize,
                        st: &crate::tunnel::SaStat| SaStatus {
                tenant: tenant.clone(),
                peer: info.peer.clone(),
                kind: info.kind.name(),
                direction,
                spi,
                suite: info.suite.name(),
                esn: info.esn,
                replay_window: (direction == "in").then_some(info.replay_window),
                circuits: circuits(st.circuits.get()),
                paths: paths.clone(),
                loopbacks: info.loopbacks,
                packets: st.packets.get(),
                bytes: st.bytes.get(),
                replay_drops: st.replay.get() + st.replay_window.get(),
                auth_failed: st.auth_failed.get(),
                other_drops: st.other_drops.get(),
                seq: st.seq.get(),
                age_secs,
                worker,
            };
            let workers = self.workers.len();
            let stats: Vec<_> = self
                .workers
                .iter()
                .map(|h| h.sa_stats.load_full())
                .collect();
            for (w, h) in stats.iter().enumerate() {
                let Some(st) = h.outbound.get(ti).filter(|_| info.sends()) else {
                    continue;
                };
                let spi = match info.outbound_owner(ti, workers as u16) {
                    None => info.out_spi.wrapping_add(w as u32),
                    Some(owner) if usize::from(owner) == w => info.out_spi,
                    Some(_) => continue,
                };
                v.push(base("out", spi, w, st));
            }
            for s in 0..info.senders {
                let slot = (info.first_slot + s) as usize;
                let owner = usize::from(info.inbound_owner(ti, s, workers as u16));
                let Some(st) = stats.get(owner).and_then(|h| h.inbound.get(slot)) else {
                    continue;
                };
                let seen = st.packets.get()
                    + st.replay.get()
                    + st.replay_window.get()
                    + st.auth_failed.get()
                    + st.other_drops.get();
                if s == 0 || seen > 0 {
                    v.push(base("in", info.in_spi.wrapping_add(s), owner, st));
                }
            }
        }
        v
    }

    /// The inbound overlay SPIs that have opened at least one packet, with the peer's
    /// loopback: what the key manager needs to confirm a rekey. Reads the counters only (no
    /// status strings, unlike [`sas`](Self::sas)).
    pub fn inbound_with_traffic(&self) -> Vec<(IpAddr, u32)> {
        let t = self.publisher.snapshot();
        let stats: Vec<_> = self
            .workers
            .iter()
            .map(|h| h.sa_stats.load_full())
            .collect();
        let workers = self.workers.len() as u16;
        let mut v = Vec::new();
        for (ti, info) in t.tunnels.iter().enumerate() {
            let Some((_, peer)) = info.loopbacks else {
                continue;
            };
            for s in 0..info.senders {
                let slot = (info.first_slot + s) as usize;
                let owner = usize::from(info.inbound_owner(ti, s, workers));
                if stats
                    .get(owner)
                    .and_then(|h| h.inbound.get(slot))
                    .is_some_and(|st| st.packets.get() > 0)
                {
                    v.push((peer, info.in_spi.wrapping_add(s)));
                }
            }
        }
        v
    }

    /// The flows policies steered in the last 30 s, across the workers.
    pub fn flows(&self) -> Vec<FlowStatus> {
        let t = self.publisher.snapshot();
        let port_name = |tunnel: u16, path: u8| -> Option<String> {
            let c = t
                .tunnels
                .get(usize::from(tunnel))?
                .circuits
                .get(usize::from(path))?;
            t.ports.get(usize::from(c.port)).map(|p| p.name.clone())
        };
        let mut v = Vec::new();
        for (w, h) in self.workers.iter().enumerate() {
            let stats = h.sa_stats.load();
            let Ok(flows) = stats.flows.lock() else {
                continue;
            };
            let newest = flows.iter().map(|f| f.tick).max().unwrap_or(0);
            for f in flows.iter() {
                let Some(p) = t.policies.get(usize::from(f.policy)) else {
                    continue;
                };
                v.push(FlowStatus {
                    tenant: t
                        .tenants
                        .get(usize::from(f.tenant))
                        .map_or_else(String::new, |x| x.name.clone()),
                    src: f.key.src,
                    dst: f.key.dst,
                    protocol: f.key.protocol,
                    src_port: f.key.src_port,
                    dst_port: f.key.dst_port,
                    dscp: f.key.dscp,
                    policy: p.name.clone(),
                    mode: p.mode.name(),
                    sla: p.sla_name.clone(),
                    peer: t
                        .tunnels
                        .get(usize::from(f.tunnel))
                        .map_or_else(String::new, |x| x.peer.clone()),
                    path: port_name(f.tunnel, f.path).unwrap_or_default(),
                    second: port_name(f.tunnel, f.second),
                    packets: f.packets,
                    idle_secs: f64::from(newest.wrapping_sub(f.tick)) / 10.0,
                    worker: w,
                });
            }
        }
        v.sort_by(|a, b| {
            (&a.tenant, a.src, a.dst, a.protocol, a.src_port, a.dst_port)
                .cmp(&(&b.tenant, b.src, b.dst, b.protocol, b.src_port, b.dst_port))
        });
        v
    }

    /// Each policy's paths to each overlay peer.
    pub fn classes(&self) -> Vec<ClassStatus> {
        let t = self.publisher.snapshot();
        let mut v = Vec::new();
        for (k, p) in t.policies.iter().enumerate() {
            for (pi, peer) in t.peers.iter().enumerate() {
                let Some(b) = t.board.peers.get(pi) else {
                    continue;
                };
                let (first, second) = t.board.class_paths(pi as u16, k as u16);
                let name = |i: u8| {
                    peer.paths
                        .get(usize::from(i))
                        .and_then(|c| t.ports.get(usize::from(c.port)))
                        .map(|x| x.name.clone())
                };
                v.push(ClassStatus {
                    policy: p.name.clone(),
                    tenant: t
                        .tenants
                        .get(usize::from(p.tenant))
                        .map_or_else(String::new, |x| x.name.clone()),
                    mode: p.mode.name(),
                    sla: p.sla_name.clone(),
                    peer: peer.name.clone(),
                    path: name(first),
                    second: name(second),
                    moves: b.class_moves.get(k).map_or(0, |c| c.get()),
                });
            }
        }
        v
    }

    /// Every path to every overlay peer.
    pub fn paths(&self) -> Vec<PathStatus> {
        let t = self.publisher.snapshot();
        let now = self.sa_installed.elapsed().as_nanos() as u64;
        let ms = |ns: u64| (ns != u64::MAX).then(|| ns as f64 / 1e6);
        let mut v = Vec::new();
        for (pi, peer) in t.peers.iter().enumerate() {
            let Some(board) = t.board.peers.get(pi) else {
                continue;
            };
            for (ci, (c, st)) in peer.paths.iter().zip(&board.paths).enumerate() {
                let slot = pi * crate::multipath::MAX_PATHS + ci;
                let sum = |f: fn(&SaStats) -> &Vec<crate::counters::Counter>| -> u64 {
                    self.workers
                        .iter()
                        .filter_map(|h| f(&h.sa_stats.load()).get(slot).map(|c| c.get()))
                        .sum()
                };
                let changed = st.changed_at.get();
                v.push(PathStatus {
                    peer: peer.name.clone(),
                    port: t
                        .ports
                        .get(usize::from(c.port))
                        .map_or_else(String::new, |p| p.name.clone()),
                    transport: c.transport.clone(),
                    trusted: c.trusted,
                    local: c.local,
                    remote: c.remote,
                    state: match st.state.get() {
                        1 => "up",
                        2 => "down",
                        _ => "unknown",
                    },
                    since_secs: (changed != 0).then(|| now.saturating_sub(changed) as f64 / 1e9),
                    active: st.active.get() != 0,
                    sla_met: {
                        let mask = st.sla_met.get();
                        let mut v: Vec<String> = t
                            .policies
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| *k < 64 && mask & (1 << k) != 0)
                            .filter_map(|(_, p)| p.sla_name.clone())
                            .collect();
                        v.sort();
                        v.dedup();
                        v
                    },
                    rtt_p50_ms: ms(st.rtt_p50.get()),
                    rtt_p99_ms: ms(st.rtt_p99.get()),
                    loss_pct: {
                        let l = st.loss_ppm.get();
                        (l != u64::MAX).then(|| l as f64 / 10_000.0)
                    },
                    jitter_ms: st.jitter.get() as f64 / 1e6,
                    probes_sent: st.probes_sent.get(),
                    probes_answered: st.probes_answered.get(),
                    probes_lost: st.probes_lost.get(),
                    downs: st.downs.get(),
                    false_alarms: st.false_alarms.get(),
                    packets_out: sum(|s| &s.path_tx),
                    packets_in: sum(|s| &s.path_rx),
                });
            }
        }
        v
    }

    pub fn neighbors(&self) -> Vec<NeighborEntry> {
        let t = self.publisher.snapshot();
        let mut v: Vec<NeighborEntry> = t
            .neighbors
            .iter()
            .map(|(k, mac)| NeighborEntry {
                port: t
                    .ports
                    .get(usize::from(k.port))
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                ip: k.ip(),
                mac: format_mac(mac),
            })
            .collect();
        v.sort_by(|a, b| (&a.port, a.ip).cmp(&(&b.port, b.ip)));
        v
    }

    pub fn generation(&self) -> u64 {
        self.publisher.load().generation
    }

    pub fn pool_available(&self) -> u32 {
        self.pool.available()
    }

    /// Stops the workers, then stops and closes every port (completing pcap captures) and
    /// removes the virtual devices this engine created.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
        for p in &mut self.ports {
            p.stop_and_close();
        }
        self.ports.clear();
        for name in self.created_vdevs.drain(..) {
            if let Ok(c) = std::ffi::CString::new(name) {
                // SAFETY: the port of this vdev is closed.
                unsafe { dpdk_sys::rte_vdev_uninit(c.as_ptr()) };
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af_packet_gets_one_queue_pair_per_worker() {
        assert_eq!(
            device_with_queues("net_af_packet0,iface=lan0", 2),
            "net_af_packet0,iface=lan0,qpairs=2"
        );
        assert_eq!(
            device_with_queues("net_af_packet0,iface=lan0", 1),
            "net_af_packet0,iface=lan0"
        );
        assert_eq!(
            device_with_queues("net_af_packet0,iface=x,qpairs=4", 2),
            "net_af_packet0,iface=x,qpairs=4"
        );
        assert_eq!(device_with_queues("net_null0", 4), "net_null0");
        assert!(is_vdev("net_pcap0,rx_pcap=a.pcap"));
        assert!(!is_vdev("0000:01:00.0"));
    }
}
