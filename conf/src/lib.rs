//! The `sdwand` configuration model: one YAML file per appliance, parsed into [`Config`] and
//! validated strictly. Every error names the file, the line and column, and the field path
//! (`ports[1].addresses[0]`, `routes[2].via`, …) — see [`ConfigError`].
//!
//! # YAML front end: `serde-saphyr`
//!
//! `serde_yaml` is archived. Of the maintained serde YAML crates, `serde_yaml_ng` (0.10) and
//! `serde-saphyr` (2.x) were compared on this model: both report the line and column of unknown
//! fields (`deny_unknown_fields`), wrong types and invalid nested values. `serde-saphyr` was
//! chosen because:
//! - it offers [`serde_saphyr::Spanned`], which this crate uses to build a field-path → location
//!   map, so cross-field errors found *after* deserialising (route to an unknown port, duplicate
//!   cores, …) point at the offending value instead of at the document;
//! - it is pure Rust and built to be panic-free, with resource budgets (nesting depth, alias
//!   expansion, node counts) against hostile input, where `serde_yaml_ng` sits on
//!   `unsafe-libyaml` (C transpiled to unsafe Rust);
//! - it is stricter by default where a config loader should be: duplicate mapping keys are an
//!   error (with the second key's location), a null is not silently an empty list (this crate
//!   accepts an empty value, explicitly, only for the optional sections `dpdk`, `workers`,
//!   `management`, `routes`, the lists and sections inside `bgp` and `tenants[].advertise`,
//!   and for `ports`, which must then still be non-empty unless the appliance is a pure route
//!   reflector; an empty `bgp.listen` or `bgp.route_reflector` turns the feature on with its
//!   defaults, an empty `bgp` is an error: its `asn` is missing), and a second YAML document
//!   is an error with a location rather than without one;
//! - it is actively developed.
//!
//! Its cost is a minimum Rust version of 1.89, which the workspace declares (the toolchain in use
//! is newer). `serde_path_to_error` supplies the field path of errors raised while deserialising.
//!
//! # How locations are found
//! - Errors raised while deserialising (syntax, unknown keys, wrong types, values rejected by the
//!   field parsers in `de.rs`) carry the location of the offending token from `serde-saphyr` and
//!   the path from `serde_path_to_error`.
//! - Errors found by the cross-field checks in `validate.rs` carry a field path; the document is
//!   then read a second time into a tree of `Spanned` nodes and the path is looked up there (the
//!   nearest present ancestor when the field was defaulted). This second read happens only on
//!   the error path.
//! - Lines are counted as YAML counts them: LF, CRLF and a lone CR each end a line. Columns are
//!   in characters. With anchors and aliases, the location is where the value is used.
//!
//! # Checks beyond types and ranges
//! Besides what the field documentation states: an interface address may not be unspecified,
//! loopback or multicast, nor (IPv4, prefix length ≤ 30) the subnet's broadcast address; an
//! address is assigned to one port only; a next hop may not be unspecified, loopback, multicast
//! or the port's own address; a MAC override may not be multicast or all-zero; EAL arguments,
//! device strings and the socket path, which go to C, may not hold NUL (devices: no white
//! space, a name of at most 63 bytes); the socket path fits `sun_path` (107 bytes).
//!
//! The `bgp` section, its defaults and how to read resolved values are described in [`Bgp`]
//! (module `bgp.rs`); TCP-MD5 passwords are [`Secret`]s like SA keys.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod bgp;
mod de;
mod locate;
mod validate;

pub use bgp::{
    Bgp, BgpGroup, BgpKeys, BgpListen, BgpNeighbor, BgpTransport, ResolvedNeighbor, RouteReflector,
    RouteTarget, RouteTargetError,
};

/// Largest configuration file accepted (bytes). Real files are a few KiB.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// A configuration error: either the file could not be read, or its content is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (including: not UTF-8).
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The content is invalid. `line` and `column` are 1-based; `field` is the dotted path of the
    /// offending field with sequence indexes (`ports[0].addresses[1]`), or `<document>` when the
    /// error concerns the whole document (for example a YAML syntax error at the top level).
    #[error("{}:{line}:{column}: {field}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

/// The whole configuration of one appliance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub node: Node,
    /// Optional section; defaults apply.
    pub dpdk: Dpdk,
    /// Optional section; defaults apply.
    pub workers: Workers,
    /// Optional section; the socket defaults to `/run/sdwand/<node.name>.sock`.
    pub management: Management,
    /// At least one, except on a pure route reflector (with `bgp.route_reflector`), which may
    /// have none.
    pub ports: Vec<Port>,
    /// Optional, default empty. Routes of the underlay (the global table: WAN circuits and
    /// LAN ports that belong to no tenant).
    pub routes: Vec<StaticRoute>,
    /// Optional, default empty. Each tenant has its own LAN ports and routing table.
    pub tenants: Vec<Tenant>,
    /// Optional, default empty. Other appliances (overlay) and third-party IPsec gateways.
    /// With `bgp`, a static overlay peer takes precedence over what BGP learns about the same
    /// appliance (its SAs are kept, learned keys are not used for it).
    pub peers: Vec<Peer>,
    /// Optional section; defaults apply. Probing of the paths to overlay peers.
    pub path_monitor: PathMonitor,
    /// Optional, default empty. The limits a path must meet for a policy's traffic.
    pub sla_classes: Vec<SlaClass>,
    /// Optional, default empty. Application steering: the first policy whose tenant and match
    /// fit a packet decides how it travels; other traffic follows its route.
    pub policies: Vec<Policy>,
    /// Optional: the BGP speaker (edge discovery, per-tenant keys, route reflection). See
    /// [`Bgp`] and [`Config::bgp_neighbors`].
    pub bgp: Option<Bgp>,
}

/// An SLA class: what a path must offer a policy's traffic. Latency is the path's round-trip
/// time (median of the last 10 probes), loss over the last 100 probes, jitter the RFC 3550
/// estimator; an unset limit is not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaClass {
    /// `[A-Za-z0-9_-]{1,32}`, unique.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    /// 1..=10000.
    #[serde(default, deserialize_with = "de::opt_ms")]
    pub max_latency_ms: Option<u32>,
    /// 0..=100.
    #[serde(default, deserialize_with = "de::opt_pct")]
    pub max_loss_pct: Option<f64>,
    /// 1..=10000.
    #[serde(default, deserialize_with = "de::opt_ms")]
    pub max_jitter_ms: Option<u32>,
}

/// How a policy's packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SteeringMode {
    /// The most preferred path that meets the SLA; a flow moves only when its path leaves it.
    #[default]
    Best,
    /// Packet by packet over the usable circuits, weighted by `weights`.
    Spread,
    /// Each packet on two paths; the receiver keeps the first copy.
    Replicate,
    /// One XOR parity packet per `fec_k` packets, on another path.
    Fec,
    /// Out of the underlay's routes (local internet breakout), not through a tunnel.
    Breakout,
    Drop,
}

/// A steering policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `[A-Za-z0-9_-]{1,32}`, unique.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    /// The tenant whose LAN traffic it applies to.
    pub tenant: String,
    /// What it matches (every given field must match; empty: everything of the tenant).
    #[serde(default, rename = "match", deserialize_with = "de::null_as_default")]
    pub matches: PolicyMatch,
    /// An SLA class (`sla_classes[].name`).
    #[serde(default)]
    pub sla: Option<String>,
    #[serde(default)]
    pub mode: SteeringMode,
    /// Circuits (WAN port names) in order of preference; default: all, in port order.
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub circuits: Vec<String>,
    /// `spread`: a weight per circuit of `circuits` (1..=100 each; default all 1).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub weights: Vec<u32>,
    /// `fec`: data packets per parity packet, 2..=16 (default 4).
    #[serde(default = "Policy::default_fec_k", deserialize_with = "de::fec_k")]
    pub fec_k: u8,
    /// Default true. False: on circuits marked `trusted` the traffic travels as clear VXLAN,
    /// without ESP (differential encryption); elsewhere it is encrypted all the same.
    #[serde(default = "default_true")]
    pub encrypt: bool,
}

impl Policy {
    fn default_fec_k() -> u8 {
        4
    }
}

/// What a policy matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyMatch {
    /// Source prefixes (any of them).
    #[serde(default, deserialize_with = "de::prefixes")]
    pub src: Vec<ipnet::IpNet>,
    /// Destination prefixes (any of them).
    #[serde(default, deserialize_with = "de::prefixes")]
    pub dst: Vec<ipnet::IpNet>,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number 0..=255.
    #[serde(default, deserialize_with = "de::protocol")]
    pub protocol: Option<u8>,
    /// Ports or ranges (`5060`, `"16384-32767"`); tcp and udp only.
    #[serde(default, deserialize_with = "de::port_ranges")]
    pub src_ports: Vec<(u16, u16)>,
    #[serde(default, deserialize_with = "de::port_ranges")]
    pub dst_ports: Vec<(u16, u16)>,
    /// DSCP values 0..=63 (any of them).
    #[serde(default, deserialize_with = "de::dscps")]
    pub dscp: Vec<u8>,
}

/// Path monitoring (multipath): every path to an overlay peer (a pair of circuits) is probed
/// with authenticated UDP probes; a path goes down after `down_after` late probes in a row
/// and comes back after `holddown_ms` of answered probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathMonitor {
    /// Probe paths at all (default true). Off, every path counts as usable.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Probe interval of a path in use, 10..=10000 ms (default 100).
    #[serde(
        default = "PathMonitor::default_interval",
        deserialize_with = "de::probe_interval_ms"
    )]
    pub interval_ms: u32,
    /// Probe interval of an idle path, 10..=60000 ms, at least `interval_ms` (default 1000).
    #[serde(
        default = "PathMonitor::default_idle",
        deserialize_with = "de::idle_interval_ms"
    )]
    pub idle_interval_ms: u32,
    /// Late probes in a row that take a path down, 1..=100 (default 3).
    #[serde(
        default = "PathMonitor::default_down_after",
        deserialize_with = "de::down_after"
    )]
    pub down_after: u32,
    /// Answered probes needed for this long before a path that was down is up again,
    /// 0..=600000 ms (default 1000).
    #[serde(
        default = "PathMonitor::default_holddown",
        deserialize_with = "de::holddown_ms"
    )]
    pub holddown_ms: u32,
    /// The shortest time a probe may take before it counts as late, 1..=10000 ms (default
    /// 20; the timeout is twice the path's largest recent RTT when that is longer).
    #[serde(
        default = "PathMonitor::default_min_timeout",
        deserialize_with = "de::min_timeout_ms"
    )]
    pub min_timeout_ms: u32,
    /// UDP port of the probes on both ends (default 4793).
    #[serde(
        default = "PathMonitor::default_port",
        deserialize_with = "de::udp_port"
    )]
    pub port: u16,
}

fn default_true() -> bool {
    true
}

impl PathMonitor {
    pub const DEFAULT_PORT: u16 = 4793;

    fn default_interval() -> u32 {
        100
    }
    fn default_idle() -> u32 {
        1000
    }
    fn default_down_after() -> u32 {
        3
    }
    fn default_holddown() -> u32 {
        1000
    }
    fn default_min_timeout() -> u32 {
        20
    }
    fn default_port() -> u16 {
        Self::DEFAULT_PORT
    }
}

impl Default for PathMonitor {
    fn default() -> Self {
        PathMonitor {
            enabled: true,
            interval_ms: Self::default_interval(),
            idle_interval_ms: Self::default_idle(),
            down_after: Self::default_down_after(),
            holddown_ms: Self::default_holddown(),
            min_timeout_ms: Self::default_min_timeout(),
            port: Self::default_port(),
        }
    }
}

/// Identity of the appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// `[A-Za-z0-9_-]{1,32}`.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    /// The appliance's loopback: the inner source address of the overlay (ESP between
    /// loopbacks inside VXLAN). Required when a peer of type `overlay` is configured.
    #[serde(default, deserialize_with = "de::loopback")]
    pub loopback: Option<IpAddr>,
}

/// A tenant (a VRF): its VXLAN segment, its LAN ports and its routing table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// `[A-Za-z0-9_-]{1,32}`, unique.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    /// The VXLAN network identifier of the tenant's segment, 1..=16777215, unique.
    #[serde(deserialize_with = "de::vni")]
    pub vni: u32,
    /// Ports (role `lan`) whose traffic belongs to this tenant; a port belongs to at most one
    /// tenant. Their connected subnets are the tenant's.
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub lan_ports: Vec<String>,
    /// The tenant's routes: to a peer (`peer`, optionally pinned to one `circuit`), or to a
    /// next hop on one of the tenant's LAN ports (`port`, optional `via`).
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub routes: Vec<TenantRoute>,
    /// The tenant's route target (only with `bgp`): `65000:1001`, `4200000001:7` or
    /// `192.0.2.1:7` ([`RouteTarget`]), unique among tenants. Resolved when `bgp` is set:
    /// default `<bgp.asn>:<vni>` ([`RouteTarget::default_for`]); `None` without `bgp`.
    #[serde(default)]
    pub route_target: Option<RouteTarget>,
    /// Prefixes BGP announces for the tenant besides its LAN ports' connected subnets (only
    /// with `bgp`); network addresses, unique.
    #[serde(default, deserialize_with = "de::advertise")]
    pub advertise: Vec<ipnet::IpNet>,
}

/// A route in a tenant's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRoute {
    #[serde(deserialize_with = "de::route_prefix")]
    pub prefix: ipnet::IpNet,
    /// A peer that has an SA for this tenant. Exactly one of `peer` and `port`.
    #[serde(default)]
    pub peer: Option<String>,
    /// With `peer`: the preferred circuit (a WAN port name of the peer's circuits), used while
    /// its path is up; without it, flows are spread over the peer's circuits by a hash of
    /// their addresses. Either way a path that is down gives its flows to the others.
    #[serde(default)]
    pub circuit: Option<String>,
    /// One of the tenant's LAN ports.
    #[serde(default)]
    pub port: Option<String>,
    /// With `port`: the next hop, inside a connected subnet of the port.
    #[serde(default, deserialize_with = "de::next_hop")]
    pub via: Option<IpAddr>,
}

/// What a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerType {
    /// Another appliance: ESP between loopbacks inside VXLAN (ARCHITECTURE.md, wire format).
    #[default]
    Overlay,
    /// A third-party IPsec gateway: plain RFC 4303 tunnel mode between the circuit
    /// addresses, the way `ip xfrm state` is configured.
    Ipsec,
}

/// How plain IPsec (`type: ipsec`) packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encapsulation {
    /// ESP directly in IP (protocol 50).
    #[default]
    None,
    /// ESP in UDP port 4500 (RFC 3948), for paths through NAT.
    Udp,
}

/// A peer: another appliance or an IPsec gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// `[A-Za-z0-9_-]{1,32}`, unique.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: PeerType,
    /// The peer's loopback (overlay peers only; same family as `node.loopback`).
    #[serde(default, deserialize_with = "de::loopback")]
    pub loopback: Option<IpAddr>,
    /// ESP directly in IP or in UDP/4500 (ipsec peers only).
    #[serde(default)]
    pub encapsulation: Encapsulation,
    /// The local WAN port and the peer's address on it, one per circuit (ipsec peers: one).
    pub circuits: Vec<Circuit>,
    /// One SA per tenant.
    pub sas: Vec<Sa>,
}

/// One circuit to a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Circuit {
    /// A port of role `wan`.
    pub port: String,
    /// The peer's address on this circuit (reachable through `port`: connected, or by a
    /// static route on it).
    #[serde(deserialize_with = "de::peer_address")]
    pub address: IpAddr,
    /// Optional: the transport domain of the peer's circuit. A path pairs circuits of one
    /// domain, so it must be the port's (`ports[].transport`).
    #[serde(default, deserialize_with = "de::transport")]
    pub transport: Option<String>,
}

/// AEAD suites (the names of `swanctl` proposals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
}

impl Suite {
    /// Bytes of keying material: the AES key and the 4-byte salt (RFC 4106 §8.1).
    pub fn keymat_len(self) -> usize {
        match self {
            Suite::Aes128Gcm16 => 20,
            Suite::Aes256Gcm16 => 36,
        }
    }
}

/// A security association with a peer for one tenant: both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sa {
    /// The tenant's name.
    pub tenant: String,
    pub suite: Suite,
    /// 64-bit extended sequence numbers (RFC 4303 §2.2.1); default true.
    #[serde(default = "Sa::default_esn")]
    pub esn: bool,
    /// Anti-replay window in packets, 64..=65536 (rounded up to a multiple of 64); default
    /// 1024. 0 turns anti-replay off (RFC 4303 §3.4.3; `ip xfrm state ... replay-window 0`):
    /// only for benchmarks that replay one capture, never in production.
    #[serde(
        default = "Sa::default_replay_window",
        deserialize_with = "de::replay_window"
    )]
    pub replay_window: u32,
    /// What this appliance sends.
    pub out: SaKeys,
    /// What this appliance receives.
    #[serde(rename = "in")]
    pub inbound: SaKeys,
}

impl Sa {
    pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;
    fn default_esn() -> bool {
        true
    }
    fn default_replay_window() -> u32 {
        Self::DEFAULT_REPLAY_WINDOW
    }
}

/// One direction of an SA. With an overlay peer the SPI is the first of a block of
/// [`Sa::SENDERS`]: the sender's worker `i` uses `spi + i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaKeys {
    /// 256..=0xffffffff (0..255 are reserved, RFC 4303 §2.1); written in hex or decimal.
    #[serde(deserialize_with = "de::spi")]
    pub spi: u32,
    /// The keying material (AES key then 4-byte salt) as hex, `0x` optional. Exactly one of
    /// `key` and `key_file`.
    #[serde(default, deserialize_with = "de::key", skip_serializing)]
    pub key: Option<Secret>,
    /// A file holding the same hex, relative to the configuration file's folder.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl Sa {
    /// SPIs per overlay SA and direction: one per sending worker.
    pub const SENDERS: u32 = 16;
}

/// Key bytes: never printed (`Debug` shows the length only), zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(zeroize::Zeroizing::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// DPDK environment (EAL) and packet-buffer pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dpdk {
    /// Extra EAL arguments (the program name is not included).
    #[serde(default = "Dpdk::default_eal_args", deserialize_with = "de::eal_args")]
    pub eal_args: Vec<String>,
    /// Mempool size in mbufs, 1023..=4_194_303 (best as 2^n - 1).
    #[serde(default = "Dpdk::default_mbufs", deserialize_with = "de::mbufs")]
    pub mbufs: u32,
    /// Per-lcore mempool cache, 0..=512.
    #[serde(
        default = "Dpdk::default_mbuf_cache",
        deserialize_with = "de::mbuf_cache"
    )]
    pub mbuf_cache: u32,
}

impl Dpdk {
    pub const DEFAULT_MBUFS: u32 = 16383;
    pub const DEFAULT_MBUF_CACHE: u32 = 256;

    pub fn default_eal_args() -> Vec<String> {
        ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    fn default_mbufs() -> u32 {
        Self::DEFAULT_MBUFS
    }
    fn default_mbuf_cache() -> u32 {
        Self::DEFAULT_MBUF_CACHE
    }
}

impl Default for Dpdk {
    fn default() -> Self {
        Dpdk {
            eal_args: Self::default_eal_args(),
            mbufs: Self::DEFAULT_MBUFS,
            mbuf_cache: Self::DEFAULT_MBUF_CACHE,
        }
    }
}

/// Worker threads and their cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workers {
    /// One worker pinned to each core; non-empty, unique, each < 1024, none equal to
    /// `control_core`.
    #[serde(default = "Workers::default_cores", deserialize_with = "de::cores")]
    pub cores: Vec<usize>,
    /// The EAL main lcore / control thread core, < 1024.
    #[serde(default, deserialize_with = "de::core")]
    pub control_core: usize,
    /// Packets per rx burst, 1..=256.
    #[serde(
        default = "Workers::default_rx_burst",
        deserialize_with = "de::rx_burst"
    )]
    pub rx_burst: u16,
    /// Adaptive polling: the longest back-off sleep of an idle worker in µs, 0..=100_000
    /// (0 = always spin).
    #[serde(
        default = "Workers::default_idle_sleep_max_us",
        deserialize_with = "de::idle_sleep_max_us"
    )]
    pub idle_sleep_max_us: u32,
}

impl Workers {
    /// Cores are numbered below this.
    pub const MAX_CORES: usize = 1024;
    pub const DEFAULT_RX_BURST: u16 = 32;
    pub const DEFAULT_IDLE_SLEEP_MAX_US: u32 = 200;

    fn default_cores() -> Vec<usize> {
        vec![1]
    }
    fn default_rx_burst() -> u16 {
        Self::DEFAULT_RX_BURST
    }
    fn default_idle_sleep_max_us() -> u32 {
        Self::DEFAULT_IDLE_SLEEP_MAX_US
    }
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            cores: Self::default_cores(),
            control_core: 0,
            rx_burst: Self::DEFAULT_RX_BURST,
            idle_sleep_max_us: Self::DEFAULT_IDLE_SLEEP_MAX_US,
        }
    }
}

/// The management API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Management {
    /// Unix socket of the management API (at most 107 bytes, the `sun_path` limit).
    pub socket: PathBuf,
}

impl Management {
    /// The default for a node: `/run/sdwand/<node_name>.sock`.
    pub fn default_for(node_name: &str) -> Self {
        Management {
            socket: PathBuf::from(format!("/run/sdwand/{node_name}.sock")),
        }
    }
}

/// One DPDK port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// `[A-Za-z0-9_-]{1,15}`, unique.
    #[serde(deserialize_with = "de::port_name")]
    pub name: String,
    /// DPDK device string: a vdev with arguments (`net_af_packet0,iface=lan0`) or a PCI address
    /// (`0000:01:00.0`). Unique by the part before the first ',' ([`Port::vdev_name`]).
    #[serde(deserialize_with = "de::device")]
    pub device: String,
    pub role: PortRole,
    /// Interface addresses with prefix length; at least one.
    #[serde(deserialize_with = "de::if_addrs")]
    pub addresses: Vec<ipnet::IpNet>,
    /// Optional MAC override; written `"02:00:00:00:00:01"` (serialised the same way).
    #[serde(
        default,
        deserialize_with = "de::mac",
        serialize_with = "de::serialize_mac"
    )]
    pub mac: Option<[u8; 6]>,
    /// 576..=9000.
    #[serde(default = "Port::default_mtu", deserialize_with = "de::mtu")]
    pub mtu: u16,
    /// 802.1Q sub-interfaces, named `PORT.ID` (`lan0.100`) wherever a port name is used.
    #[serde(default, deserialize_with = "de::null_as_default")]
    pub vlans: Vec<Vlan>,
    /// WAN ports: the transport domain of the circuit (`internet`, `mpls-a`, `lte`; default:
    /// the port's name). A path to a peer pairs our circuit with the peer's circuit of the
    /// same domain.
    #[serde(default, deserialize_with = "de::transport")]
    pub transport: Option<String>,
    /// WAN ports: a private, trusted transport (MPLS), default false. The internet and LTE are
    /// not.
    #[serde(default)]
    pub trusted: bool,
}

/// An 802.1Q VLAN sub-interface of a port: its own addresses (and neighbors, and tenant), the
/// port's MAC, role and MTU. Untagged frames belong to the port itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vlan {
    /// The VLAN ID, 1..=4094, unique on the port.
    #[serde(deserialize_with = "de::vlan_id")]
    pub id: u16,
    /// At least one.
    #[serde(deserialize_with = "de::if_addrs")]
    pub addresses: Vec<ipnet::IpNet>,
}

/// A logical interface: a port, or a VLAN sub-interface of one.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// The port's name, or `PORT.ID` for a VLAN.
    pub name: String,
    pub role: PortRole,
    pub addresses: Vec<ipnet::IpNet>,
    pub mtu: u16,
    /// For a VLAN: the index of its port in `ports`, and the VLAN ID.
    pub vlan: Option<(usize, u16)>,
    /// WAN: the transport domain and trust (a VLAN has its port's).
    pub transport: String,
    pub trusted: bool,
}

impl Config {
    /// Every logical interface: the ports in order, then each port's VLANs.
    pub fn interfaces(&self) -> Vec<Interface> {
        let mut v: Vec<Interface> = self
            .ports
            .iter()
            .map(|p| Interface {
                name: p.name.clone(),
                role: p.role,
                addresses: p.addresses.clone(),
                mtu: p.mtu,
                vlan: None,
                transport: p.transport_domain().to_owned(),
                trusted: p.trusted,
            })
            .collect();
        for (i, p) in self.ports.iter().enumerate() {
            for vl in &p.vlans {
                v.push(Interface {
                    name: format!("{}.{}", p.name, vl.id),
                    role: p.role,
                    addresses: vl.addresses.clone(),
                    mtu: p.mtu,
                    vlan: Some((i, vl.id)),
                    transport: p.transport_domain().to_owned(),
                    trusted: p.trusted,
                });
            }
        }
        v
    }
}

impl Port {
    pub const DEFAULT_MTU: u16 = 1500;

    fn default_mtu() -> u16 {
        Self::DEFAULT_MTU
    }

    /// The transport domain: `transport`, or the port's name.
    pub fn transport_domain(&self) -> &str {
        self.transport.as_deref().unwrap_or(&self.name)
    }

    /// The device name: the part of [`Port::device`] before the first ','.
    pub fn vdev_name(&self) -> &str {
        self.device.split(',').next().unwrap_or("")
    }
}

/// What a port faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    Lan,
    Wan,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    /// Destination; a network address (host bits zero).
    #[serde(deserialize_with = "de::route_prefix")]
    pub prefix: ipnet::IpNet,
    /// Next hop, inside a connected subnet of `port`; `None` = directly connected on `port`.
    #[serde(default, deserialize_with = "de::next_hop")]
    pub via: Option<IpAddr>,
    /// The name of a port.
    pub port: String,
}

/// The document as written, before defaults that depend on other fields are applied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node: Node,
    #[serde(default, deserialize_with = "de::null_as_default")]
    dpdk: Dpdk,
    #[serde(default, deserialize_with = "de::null_as_default")]
    workers: Workers,
    #[serde(default, deserialize_with = "de::null_as_default")]
    management: RawManagement,
    #[serde(default, deserialize_with = "de::null_as_default")]
    ports: Vec<Port>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    routes: Vec<StaticRoute>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    tenants: Vec<Tenant>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    peers: Vec<Peer>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    path_monitor: PathMonitor,
    #[serde(default, deserialize_with = "de::null_as_default")]
    sla_classes: Vec<SlaClass>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    policies: Vec<Policy>,
    #[serde(default, deserialize_with = "de::bgp")]
    bgp: Option<bgp::RawBgp>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManagement {
    #[serde(default, deserialize_with = "de::socket")]
    socket: Option<PathBuf>,
}

impl From<RawConfig> for Config {
    fn from(raw: RawConfig) -> Self {
        let management = match raw.management.socket {
            Some(socket) => Management { socket },
            None => Management::default_for(&raw.node.name),
        };
        let loopback = raw.node.loopback;
        Config {
            node: raw.node,
            dpdk: raw.dpdk,
            workers: raw.workers,
            management,
            ports: raw.ports,
            routes: raw.routes,
            tenants: raw.tenants,
            peers: raw.peers,
            path_monitor: raw.path_monitor,
            sla_classes: raw.sla_classes,
            policies: raw.policies,
            bgp: raw.bgp.map(|b| b.resolve(loopback)),
        }
    }
}

/// Reads `path` and parses it with [`parse`].
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates a configuration. `file` is only used in errors.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let invalid = |at: locate::Loc, field: String, message: String| ConfigError::Invalid {
        file: file.to_path_buf(),
        line: at.line,
        column: at.column,
        field,
        message,
    };
    if text.len() > MAX_CONFIG_BYTES {
        return Err(invalid(
            locate::Loc::START,
            locate::DOCUMENT.to_string(),
            format!(
                "file too large ({} bytes, at most {MAX_CONFIG_BYTES})",
                text.len()
            ),
        ));
    }
    let raw: RawConfig = match locate::deserialize(text) {
        Ok(raw) => raw,
        Err(e) => return Err(invalid(e.at, e.field, e.message)),
    };
    let mut config = Config::from(raw);
    if let Err(issue) = validate::validate(&config) {
        let (at, path) = locate::locate_any(text, &issue.paths);
        return Err(invalid(at, path.to_string(), issue.message));
    }
    resolve_route_targets(&mut config);
    if let Err(issue) =
        read_key_files(&mut config, file).and_then(|()| read_password_files(&mut config, file))
    {
        let (at, path) = locate::locate_any(text, &issue.paths);
        return Err(invalid(at, path.to_string(), issue.message));
    }
    Ok(config)
}

/// Largest key file accepted (bytes).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// With `bgp`, every tenant gets its route target (validation checked that the default fits).
fn resolve_route_targets(config: &mut Config) {
    let Some(asn) = config.bgp.as_ref().map(|b| b.asn) else {
        return;
    };
    for t in &mut config.tenants {
        if t.route_target.is_none() {
            t.route_target = RouteTarget::default_for(asn, t.vni);
        }
    }
}

/// Reads a secret file of at most [`MAX_KEY_FILE_BYTES`]; `what` names it in errors.
fn read_secret_file(path: &Path, what: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{what} {} is longer than {MAX_KEY_FILE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Reads every `password_file` of `bgp.groups` and `bgp.neighbors` (relative to the
/// configuration file's folder) into `password`: the file's bytes less one final line break
/// (LF or CRLF).
fn read_password_files(config: &mut Config, file: &Path) -> Result<(), validate::Issue> {
    let Some(b) = config.bgp.as_mut() else {
        return Ok(());
    };
    let base = file.parent().unwrap_or(Path::new("."));
    let groups = b
        .groups
        .iter_mut()
        .map(|g| (&g.password_file, &mut g.password));
    let neighbors = b
        .neighbors
        .iter_mut()
        .map(|n| (&n.password_file, &mut n.password));
    let lists = [
        ("groups", groups.collect::<Vec<_>>()),
        ("neighbors", neighbors.collect()),
    ];
    for (list, entries) in lists {
        for (i, (rel, password)) in entries.into_iter().enumerate() {
            let Some(rel) = rel else { continue };
            let fail = |m: String| validate::Issue {
                paths: vec![locate::FieldPath::root()
                    .key("bgp")
                    .key(list)
                    .index(i)
                    .key("password_file")],
                message: m,
            };
            let path = base.join(rel);
            let mut bytes = read_secret_file(&path, "password file").map_err(fail)?;
            for end in [b"\r\n".as_slice(), b"\n"] {
                if bytes.ends_with(end) {
                    let n = bytes.len() - end.len();
                    bytes.truncate(n);
                    break;
                }
            }
            de::check_password_len(bytes.len())
                .map_err(|m| fail(format!("password file {}: {m}", path.display())))?;
            *password = Some(Secret::new(bytes.to_vec()));
        }
    }
    Ok(())
}

/// Reads every `key_file` (relative to the configuration file's folder) into `key`.
fn read_key_files(config: &mut Config, file: &Path) -> Result<(), validate::Issue> {
    let base = file.parent().unwrap_or(Path::new("."));
    for (i, peer) in config.peers.iter_mut().enumerate() {
        for (k, sa) in peer.sas.iter_mut().enumerate() {
            let suite_sa = sa.clone();
            for (dir, keys) in [("out", &mut sa.out), ("in", &mut sa.inbound)] {
                let Some(rel) = &keys.key_file else { continue };
                let at = locate::FieldPath::root()
                    .key("peers")
                    .index(i)
                    .key("sas")
                    .index(k)
                    .key(dir)
                    .key("key_file");
                let fail = |m: String| validate::Issue {
                    paths: vec![at.clone()],
                    message: m,
                };
                let path = base.join(rel);
                let text = std::fs::File::open(&path)
                    .and_then(|f| {
                        use std::io::Read;
                        let mut s = zeroize::Zeroizing::new(String::new());
                        f.take(MAX_KEY_FILE_BYTES + 1).read_to_string(&mut s)?;
                        Ok(s)
                    })
                    .map_err(|e| fail(format!("cannot read key file {}: {e}", path.display())))?;
                if text.len() as u64 > MAX_KEY_FILE_BYTES {
                    return Err(fail(format!(
                        "key file {} is longer than {MAX_KEY_FILE_BYTES} bytes",
                        path.display()
                    )));
                }
                let secret = de::parse_key_hex(&text)
                    .map_err(|m| fail(format!("key file {}: {m}", path.display())))?;
                validate::check_key_len(&suite_sa, secret.expose().len())
                    .map_err(|m| fail(format!("key file {}: {m}", path.display())))?;
                keys.key = Some(secret);
            }
        }
    }
    Ok(())
}

impl fmt::Display for PortRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortRole::Lan => "lan",
            PortRole::Wan => "wan",
        })
    }
}

impl ConfigError {
    /// The 1-based line of an [`ConfigError::Invalid`] error.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => Some(*line),
            ConfigError::Io { .. } => None,
        }
    }

    /// The field path of an [`ConfigError::Invalid`] error.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Io { .. } => None,
        }
    }
}
