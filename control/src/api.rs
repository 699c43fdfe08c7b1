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
    pub prefix: String,
    pub port: String,
    pub via: Option<String>,
    pub source: String,
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
    }
}
