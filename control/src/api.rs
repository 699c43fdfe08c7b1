//! The management API: one JSON request per line on the daemon's Unix socket, one JSON
//! response line back. These types are the contract between `sdwand` and `sdwan-cli` (and any
//! script); field names follow what operators know from `ip -s link`, VPP and FRR.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    ShowInterfaces,
    ShowStats,
    ShowRoutes,
    ShowNeighbors,
    ShowVersion,
    /// Every SA, or (with `spi`) the one with that SPI in detail.
    ShowSa {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spi: Option<u32>,
    },
    /// Every path to every overlay peer.
    ShowPaths,
    /// The flows steering policies took lately.
    ShowFlows,
    /// Each policy's current paths to each peer.
    ShowPolicies,
    /// The BGP sessions, with FRR's `show bgp summary` columns.
    ShowBgpSummary,
    /// The BGP routes (Loc-RIB), all or one tenant's (by name).
    ShowBgpRoutes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// The remote sites learned through BGP: circuits, keys, SAs.
    ShowSites,
    /// Replace our key pair of every tenant, or of one (by name), now (make-before-break,
    /// as a scheduled rotation).
    RotateKeys {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            error: None,
            data,
        }
    }

    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(msg.into()),
            data: serde_json::Value::Null,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub role: String,
    pub device: String,
    pub driver: String,
    pub port_id: u16,
    pub mac: String,
    pub mtu: u16,
    pub addresses: Vec<String>,
    pub link_up: bool,
    pub speed_mbps: u32,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Dropped by the device: no free rx descriptor (the workers could not keep up).
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub forwarded: u64,
    pub local_replies: u64,
    pub solicitations: u64,
    pub neighbors_learned: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub sleeps: u64,
    /// Packets sealed into and opened out of tunnels, handed to the worker owning their SA,
    /// and sent a second time by a replicating policy.
    #[serde(default)]
    pub encrypted: u64,
    #[serde(default)]
    pub decrypted: u64,
    #[serde(default)]
    pub handed_off: u64,
    #[serde(default)]
    pub replicated: u64,
    /// FEC parity packets sent; packets rebuilt from them and accepted; originals that came
    /// after their group was rebuilt (the parity overtook them: late, not lost).
    #[serde(default)]
    pub fec_parity: u64,
    #[serde(default)]
    pub fec_rebuilt: u64,
    #[serde(default)]
    pub fec_late: u64,
    /// Spread packets a reorder buffer held for an earlier one; gaps it gave up.
    #[serde(default)]
    pub reorder_held: u64,
    #[serde(default)]
    pub reorder_gaps: u64,
    /// Tenant packets sent and received in clear VXLAN on trusted circuits.
    #[serde(default)]
    pub clear_out: u64,
    #[serde(default)]
    pub clear_in: u64,
    /// Drop reason -> packets.
    pub drops: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub index: usize,
    pub core: usize,
    pub counters: Counters,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub node: String,
    pub uptime_secs: u64,
    /// Generation of the tables the workers read (grows with every publication).
    pub table_generation: u64,
    pub mbufs_free: u32,
    pub total: Counters,
    pub workers: Vec<WorkerStats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// "default" (the underlay) or the tenant's name.
    #[serde(default = "Route::default_table")]
    pub table: String,
    pub prefix: String,
    /// The egress port (empty for a route into a tunnel).
    pub port: String,
    pub via: Option<String>,
    /// A tenant route into a tunnel: the peer, and the circuit if the route pins one.
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub circuit: Option<String>,
    pub source: String,
}

impl Route {
    pub const DEFAULT_TABLE: &'static str = "default";
    fn default_table() -> String {
        Self::DEFAULT_TABLE.into()
    }
}

/// One SA in one direction (`show sa`). Names follow `swanctl --list-sas` and `ip -s xfrm
/// state`. Keys are never part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sa {
    pub tenant: String,
    pub peer: String,
    /// "overlay" (ESP in VXLAN), "esp" or "esp-udp" (plain tunnel mode).
    pub kind: String,
    /// "in" or "out".
    pub direction: String,
    pub spi: u32,
    pub suite: String,
    pub esn: bool,
    pub replay_window: Option<u32>,
    /// Circuits (WAN ports) that carried the SA's packets.
    pub circuits: Vec<String>,
    pub paths: Vec<SaPath>,
    /// Overlay: our loopback and the peer's.
    pub loopbacks: Option<(String, String)>,
    pub packets: u64,
    pub bytes: u64,
    pub replay_drops: u64,
    pub auth_failed: u64,
    pub other_drops: u64,
    pub seq: u64,
    pub age_secs: u64,
    pub worker: usize,
}

/// A circuit of an SA's tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaPath {
    pub port: String,
    pub local: String,
    pub remote: String,
    /// The largest inner packet that fits the port's MTU once encapsulated.
    pub tunnel_mtu: usize,
}

/// One path to an overlay peer (`show paths`): a pair of circuits, probed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Path {
    pub peer: String,
    /// Our circuit (WAN port), its transport domain and whether it is trusted.
    pub port: String,
    pub transport: String,
    pub trusted: bool,
    pub local: String,
    pub remote: String,
    /// "unknown" (no probe answered yet), "up" or "down".
    pub state: String,
    /// Probed at the active interval (it carries traffic, or an SLA policy's) or, idle, at
    /// the idle interval.
    #[serde(default)]
    pub active: bool,
    /// The SLA classes whose limits the path meets now.
    #[serde(default)]
    pub sla_met: Vec<String>,
    /// Seconds since the state last changed; `None` if it never did.
    pub since_secs: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    /// Probe loss over the last 100 probes.
    pub loss_pct: Option<f64>,
    /// RFC 3550 estimator over successive round-trip times.
    pub jitter_ms: f64,
    pub probes_sent: u64,
    pub probes_answered: u64,
    pub probes_lost: u64,
    /// Times the path went down, and of those the false alarms (it was only slow).
    pub downs: u64,
    pub false_alarms: u64,
    /// Tunnel packets (all tenants) sent and received on the path.
    pub packets_out: u64,
    pub packets_in: u64,
}

/// A flow a steering policy took (`show flows`), seen in the last 30 s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub tenant: String,
    pub src: String,
    pub dst: String,
    /// IP protocol number.
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub dscp: u8,
    /// The policy (the class), its mode and SLA class.
    pub policy: String,
    pub mode: String,
    pub sla: Option<String>,
    pub peer: String,
    /// The circuit of its path, and of its copies' or parity's path.
    pub path: String,
    pub second: Option<String>,
    pub packets: u64,
    pub idle_secs: f64,
    pub worker: usize,
}

/// A policy's current paths to one peer (`show policies`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPaths {
    pub policy: String,
    pub tenant: String,
    pub mode: String,
    pub sla: Option<String>,
    pub peer: String,
    /// None: no path chosen yet (the route decides).
    pub path: Option<String>,
    pub second: Option<String>,
    /// Times its path changed.
    pub moves: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    pub port: String,
    pub ip: String,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub version: String,
    pub dpdk: String,
    pub node: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form() {
        let r: Request = serde_json::from_str(r#"{"command":"show-interfaces"}"#).unwrap();
        assert_eq!(r, Request::ShowInterfaces);
        assert_eq!(
            serde_json::to_string(&Request::ShowStats).unwrap(),
            r#"{"command":"show-stats"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"reboot"}"#).is_err());
        let r: Request = serde_json::from_str(r#"{"command":"show-sa"}"#).unwrap();
        assert_eq!(r, Request::ShowSa { spi: None });
        assert_eq!(
            serde_json::to_string(&Request::ShowSa { spi: Some(4097) }).unwrap(),
            r#"{"command":"show-sa","spi":4097}"#
        );
        let r: Request = serde_json::from_str(r#"{"command":"show-paths"}"#).unwrap();
        assert_eq!(r, Request::ShowPaths);
    }
}

/// `show bgp summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSummary {
    pub router_id: String,
    pub asn: u32,
    /// "edge" or "route-reflector".
    pub role: String,
    /// Loc-RIB version (grows with every change).
    pub table_version: u64,
    pub routes: usize,
    pub neighbors: Vec<BgpNeighbor>,
    /// RFC 7606 and authorization counters.
    pub treated_as_withdraw: u64,
    pub attributes_discarded: u64,
    pub unauthorized_routes: u64,
    pub reflection_loops: u64,
}

/// One BGP neighbor, as FRR's `show bgp summary` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpNeighbor {
    pub neighbor: String,
    pub version: u8,
    pub remote_as: u32,
    pub msg_rcvd: u64,
    pub msg_sent: u64,
    pub tbl_ver: u64,
    pub in_q: u64,
    pub out_q: u64,
    /// Seconds since the session went up (Established) or down; null if never.
    pub up_down_secs: Option<u64>,
    /// The FSM state.
    pub state: String,
    pub pfx_rcd: usize,
    pub pfx_snt: usize,
    /// Why the session last failed or went down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub route_reflector_client: bool,
    /// The tenants (Route Targets) the neighbor may send and receive; empty: all.
    pub route_targets: Vec<String>,
}

/// One route of the Loc-RIB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpRoute {
    /// `vpnv4`, `vpnv6`, `sdwan-ipv4`, `sdwan-ipv6`.
    pub family: String,
    /// VPN: the Route Distinguisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rd: Option<String>,
    /// VPN: the prefix; SD-WAN: `node/port-local-id/color`.
    pub prefix: String,
    pub next_hop: String,
    pub route_targets: Vec<String>,
    /// The tenants of those Route Targets (the ones this box knows).
    pub tenants: Vec<String>,
    pub labels: Vec<u32>,
    /// The neighbor it came from, or `local`.
    pub from: String,
    pub stale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    /// The SD-WAN circuits its Tunnel Encapsulation attribute carries (`transport:address`).
    pub circuits: Vec<String>,
    /// The key generation it carries (never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_generation: Option<u32>,
}

/// `request keys rotate`: one tenant whose rotation was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    pub tenant: String,
    pub vni: u32,
    /// The generation of the key in use when the rotation was asked for; the new one is
    /// the next.
    pub generation: u32,
    /// What the new key waits for, if anything: "a synchronized BGP session" (it could not
    /// reach the other sites before) or "the previous key's grace" (two keys at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
}

/// One remote site's tenant, as learned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The site's loopback.
    pub node: String,
    pub tenant: String,
    pub circuits: Vec<SiteCircuit>,
    pub prefixes: Vec<String>,
    /// The generation of the site's public key, and how long ago we learned it.
    pub key_generation: Option<u32>,
    pub key_age_secs: Option<u64>,
    /// Our SAs with the site in this tenant: the sending one and every accepted one.
    pub sas: Vec<SiteSa>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCircuit {
    pub transport: u8,
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSa {
    /// `out` or `in`.
    pub direction: String,
    /// The SPI base (the sending worker `w` uses base + w).
    pub spi: u32,
    pub local_generation: u32,
    pub peer_generation: u32,
}
