//! The running data plane: ports, the mbuf pool, the published tables and the workers, with
//! what the control thread needs to steer and observe them. EAL must be initialised first.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_queue::ArrayQueue;
use ipnet::IpNet;
use serde::Serialize;

use crate::counters::{CounterSnapshot, WorkerCounters};
use crate::eal;
use crate::error::DataplaneError;
use crate::lcore;
use crate::mempool::Mempool;
use crate::port::{LinkStatus, Port, PortConfig, PortStats};
use crate::route::{NextHop, RouteEntry};
use crate::tables::{NeighborKey, PortInfo, TablePublisher, Tables};
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
}

#[derive(Debug, Clone)]
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
}

/// Device names are virtual devices when they name a vdev driver.
fn is_vdev(device: &str) -> bool {
    device.starts_with("net_") || device.starts_with("eth_")
}

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

#[derive(Debug, Clone, Serialize)]
pub struct NeighborEntry {
    pub port: String,
    pub ip: IpAddr,
    pub mac: String,
}

struct WorkerHandle {
    core: usize,
    counters: Arc<WorkerCounters>,
    events: Arc<ArrayQueue<NeighborEvent>>,
    join: Option<JoinHandle<()>>,
}

pub struct Engine {
    specs: Vec<PortSpec>,
    ports: Vec<Port>,
    created_vdevs: Vec<String>,
    publisher: Arc<TablePublisher>,
    workers: Vec<WorkerHandle>,
    stop: Arc<AtomicBool>,
    // Dropped last: every mbuf must be back in the pool first.
    pool: Arc<Mempool>,
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
            ports: Vec::new(),
            created_vdevs: Vec::new(),
            publisher: Arc::new(TablePublisher::new(Tables::default())),
            workers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            pool,
        };
        let mut infos = Vec::new();
        for p in &spec.ports {
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
            port.start()?;
            infos.push(PortInfo::new(
                &p.name,
                p.mac.unwrap_or_else(|| port.mac()),
                p.mtu,
                &p.addresses,
            ));
            engine.ports.push(port);
        }
        let mut tables = Tables::new(infos, &spec.routes);
        for &(port, ip, mac) in &spec.static_neighbors {
            tables.neighbors.insert(NeighborKey::new(port, ip), mac);
        }
        engine.publisher = Arc::new(TablePublisher::new(tables));
        let port_ids: Vec<u16> = engine.ports.iter().map(Port::id).collect();
        for (index, &core) in spec.worker_cores.iter().enumerate() {
            let counters = Arc::new(WorkerCounters::default());
            let events = Arc::new(ArrayQueue::new(1024));
            let shared = WorkerShared {
                tables: engine.publisher.clone(),
                counters: counters.clone(),
                events: events.clone(),
                stop: engine.stop.clone(),
            };
            let cfg = WorkerConfig {
                index,
                port_ids: port_ids.clone(),
                queue: index as u16,
                rx_burst: spec.rx_burst,
                idle_sleep_max_us: spec.idle_sleep_max_us,
                resolver: index == 0,
            };
            let pool = engine.pool.clone();
            let join = lcore::spawn_pinned(index, core, move || worker::run(cfg, pool, shared))?;
            engine.workers.push(WorkerHandle {
                core,
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
        self.ports
            .iter()
            .zip(&self.specs)
            .enumerate()
            .map(|(i, (port, spec))| {
                let info = tables.ports.get(i);
                InterfaceStatus {
                    name: spec.name.clone(),
                    device: spec.device.clone(),
                    driver: port.driver(),
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
                    stats: port.stats(),
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
