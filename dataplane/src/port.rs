//! Ethernet ports: configuration (queues, RSS where the device has it, MTU), start/stop,
//! bursts, MAC address, link state and counters.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{dpdk_strerror, DataplaneError};
use crate::mbuf::Burst;
use crate::mempool::Mempool;
use crate::wire::MacAddr;

#[derive(Debug, Clone, Copy)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: 1500,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The device's own counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the device because no rx descriptor was free (the worker was too slow).
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

/// A DPDK port, found by its device name. Stopped and closed on drop (that is what makes a
/// `net_pcap` capture complete).
#[derive(Debug)]
pub struct Port {
    id: u16,
    name: String,
    started: bool,
    closed: bool,
}

impl Port {
    /// The port of device `name` (the part of a device string before the first comma, or a PCI
    /// address).
    pub fn by_name(name: &str) -> Result<Self, DataplaneError> {
        let c = CString::new(name).map_err(|_| DataplaneError::PortNotFound(name.into()))?;
        let mut id = 0u16;
        // SAFETY: c is a valid string, id a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DataplaneError::PortNotFound(name.into()));
        }
        Ok(Self {
            id,
            name: name.into(),
            started: false,
            closed: false,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn err(&self, op: &'static str, code: i32) -> DataplaneError {
        DataplaneError::Port {
            port: self.name.clone(),
            op,
            reason: dpdk_strerror(code),
        }
    }

    fn info(&self) -> Result<dpdk_sys::rte_eth_dev_info, DataplaneError> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port id and out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        if ret != 0 {
            return Err(self.err("rte_eth_dev_info_get", ret));
        }
        Ok(info)
    }

    /// The driver's name (`net_af_packet`, `net_ixgbe`, ...).
    pub fn driver(&self) -> String {
        self.info()
            .ok()
            .filter(|i| !i.driver_name.is_null())
            // SAFETY: driver_name is a static NUL-terminated string of the driver.
            .map(|i| {
                unsafe { CStr::from_ptr(i.driver_name) }
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default()
    }

    /// Configures queues (RSS over IP/TCP/UDP when more than one rx queue and the device can
    /// hash), sets up every queue from `pool`, sets the MTU and promiscuous mode.
    pub fn configure(&mut self, cfg: &PortConfig, pool: &Mempool) -> Result<(), DataplaneError> {
        let info = self.info()?;
        if cfg.rx_queues > info.max_rx_queues {
            return Err(DataplaneError::TooFewQueues {
                port: self.name.clone(),
                kind: "rx",
                max: info.max_rx_queues,
                needed: cfg.rx_queues,
            });
        }
        if cfg.tx_queues > info.max_tx_queues {
            return Err(DataplaneError::TooFewQueues {
                port: self.name.clone(),
                kind: "tx",
                max: info.max_tx_queues,
                needed: cfg.tx_queues,
            });
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        // SAFETY: a constant defined in the shim.
        let rss = unsafe { dpdk_sys::sdwan_rss_ip_tcp_udp };
        if cfg.rx_queues > 1 && info.flow_type_rss_offloads & rss != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss & info.flow_type_rss_offloads;
        }
        // SAFETY: valid port id, conf lives for the call.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        };
        if ret != 0 {
            return Err(self.err("rte_eth_dev_configure", ret));
        }
        // SAFETY: plain query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port; NULL rx_conf = driver defaults; pool outlives the port
            // (the daemon drops ports before pools).
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    cfg.rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret != 0 {
                return Err(self.err("rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: as above.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(self.id, q, cfg.tx_desc, socket, std::ptr::null())
            };
            if ret != 0 {
                return Err(self.err("rte_eth_tx_queue_setup", ret));
            }
        }
        // Virtual devices may not implement MTU setting; the data plane enforces the MTU itself.
        // SAFETY: valid port.
        let _ = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.id, cfg.mtu) };
        Ok(())
    }

    pub fn start(&mut self) -> Result<(), DataplaneError> {
        // SAFETY: configured port.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        if ret != 0 {
            return Err(self.err("rte_eth_dev_start", ret));
        }
        self.started = true;
        Ok(())
    }

    /// Starts a `net_memif` client port whose server listens on `socket` (from
    /// [`memif_client_socket`]), waiting up to `wait` for it. DPDK 22.11's memif client
    /// connects only in `rte_eth_dev_start` and never retries: the start fails while nothing
    /// listens, and a server whose port is not started yet accepts the socket but drops the
    /// client (the start succeeds, the link never comes up). So: wait for the socket to be
    /// bound, then start, and if the link is not up within a second, stop and start again,
    /// with a backoff from 100 ms to 1 s. Only for ports no worker polls yet.
    pub fn start_memif_client(
        &mut self,
        socket: &str,
        wait: Duration,
    ) -> Result<(), DataplaneError> {
        let deadline = Instant::now() + wait;
        let name = self.name.clone();
        let expired = |why: &str| DataplaneError::Port {
            port: name.clone(),
            op: "rte_eth_dev_start",
            reason: format!("{why} (memif socket {socket}, waited {} s)", wait.as_secs()),
        };
        while !unix_socket_bound(socket) {
            if Instant::now() >= deadline {
                return Err(expired("no memif server has bound the socket"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut pause = Duration::from_millis(100);
        loop {
            if self.start().is_ok() {
                let link_by = Instant::now() + Duration::from_secs(1);
                while Instant::now() < link_by {
                    if self.link().up {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.stop();
            }
            if Instant::now() >= deadline {
                return Err(expired("the memif server did not accept the connection"));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Stops a started port (it can be started again).
    fn stop(&mut self) {
        if self.started {
            // SAFETY: started port; callers make sure no worker polls it.
            unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            self.started = false;
        }
    }

    /// Stops and closes the port: a `net_pcap` capture is complete only after this.
    pub fn stop_and_close(&mut self) {
        // No worker polls it any more (workers are joined first).
        self.stop();
        if !self.closed {
            // SAFETY: stopped port.
            unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
            self.closed = true;
        }
    }

    pub fn mac(&self) -> MacAddr {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut addr) };
        addr.addr_bytes
    }

    pub fn set_mac(&mut self, mac: &MacAddr) -> Result<(), DataplaneError> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: *mac };
        // SAFETY: valid port and pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        if ret != 0 {
            return Err(self.err("rte_eth_dev_default_mac_addr_set", ret));
        }
        Ok(())
    }

    /// Best effort: virtual devices may not support it, and then receive everything anyway.
    pub fn set_promiscuous(&mut self) {
        // SAFETY: valid port.
        unsafe { dpdk_sys::rte_eth_promiscuous_enable(self.id) };
    }

    pub fn link(&self) -> LinkStatus {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer; nowait never blocks.
        unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) };
        LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        }
    }

    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out pointer.
        unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        }
    }

    /// Receives up to the burst's free space from `queue`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&self, queue: u16, burst: &mut Burst) -> usize {
        rx_burst(self.id, queue, burst, usize::MAX)
    }

    /// Transmits the burst on `queue`. Sent mbufs leave the burst (the driver owns them);
    /// refused ones stay for the caller to count and free. Returns how many were sent.
    #[inline]
    pub fn tx_burst(&self, queue: u16, burst: &mut Burst) -> usize {
        tx_burst(self.id, queue, burst)
    }
}

/// The Unix socket a `net_memif` device in the client role (DPDK's default role) connects
/// to: `@name` for an abstract one (DPDK 22.11's default, unless `socket-abstract=no`), else
/// a path. `None` for any other device.
pub fn memif_client_socket(devargs: &str) -> Option<String> {
    let mut parts = devargs.split(',');
    if !parts.next()?.starts_with("net_memif") {
        return None;
    }
    let (mut socket, mut abstract_ns) = ("/run/memif.sock".to_owned(), true);
    for kv in parts {
        match kv.trim().split_once('=') {
            Some(("role", "server")) => return None,
            Some(("socket", path)) => socket = path.to_owned(),
            Some(("socket-abstract", v)) => abstract_ns = v != "no",
            _ => {}
        }
    }
    Some(if abstract_ns {
        format!("@{socket}")
    } else {
        socket
    })
}

/// Whether a Unix socket is bound: `@name` in the abstract namespace (read from
/// /proc/net/unix; true if that cannot be read, so the caller tries anyway), else a path.
pub fn unix_socket_bound(sock: &str) -> bool {
    match sock.strip_prefix('@') {
        Some(_) => std::fs::read_to_string("/proc/net/unix")
            .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(sock)))
            .unwrap_or(true),
        None => std::path::Path::new(sock).exists(),
    }
}

/// `rte_eth_rx_burst` by port id, for workers that hold ids rather than `Port`s.
#[inline]
pub fn rx_burst(port_id: u16, queue: u16, burst: &mut Burst, max: usize) -> usize {
    let (ptr, room) = burst.spare_ptrs();
    let room = room.min(u16::try_from(max).unwrap_or(u16::MAX));
    // SAFETY: ptr has room for `room` mbuf pointers; the driver writes that many at most.
    let n = usize::from(unsafe { dpdk_sys::sdwan_eth_rx_burst(port_id, queue, ptr, room) });
    burst.set_filled(n);
    n
}

#[inline]
pub fn tx_burst(port_id: u16, queue: u16, burst: &mut Burst) -> usize {
    let (ptr, n) = burst.held_ptrs();
    if n == 0 {
        return 0;
    }
    // SAFETY: the first n pointers are owned mbufs; the driver takes ownership of `sent`.
    let sent = usize::from(unsafe { dpdk_sys::sdwan_eth_tx_burst(port_id, queue, ptr, n) });
    burst.consume_front(sent);
    sent
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop_and_close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memif_clients_and_their_sockets() {
        assert_eq!(
            memif_client_socket("net_memif0,role=client,socket=/run/a.sock,id=0").as_deref(),
            Some("@/run/a.sock")
        );
        assert_eq!(
            memif_client_socket("net_memif3,socket=/run/b.sock,socket-abstract=no").as_deref(),
            Some("/run/b.sock")
        );
        assert_eq!(
            memif_client_socket("net_memif1").as_deref(),
            Some("@/run/memif.sock")
        );
        assert_eq!(
            memif_client_socket("net_memif0,role=server,socket=/run/a.sock"),
            None
        );
        assert_eq!(memif_client_socket("net_af_packet0,iface=lan0"), None);
        assert_eq!(memif_client_socket("0000:01:00.0"), None);
    }

    #[test]
    fn unix_sockets_by_path_and_in_the_abstract_namespace() {
        let dir = std::env::temp_dir().join(format!("sdwan-port-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let p = path.to_str().unwrap();
        assert!(!unix_socket_bound(p));
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(unix_socket_bound(p));
        assert!(!unix_socket_bound(&format!("@{p}-not-bound")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
