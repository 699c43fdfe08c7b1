//! The `bgp` section: the appliance's BGP speaker (edge discovery and per-tenant keys between
//! edges, draft-ietf-idr-sdwan-edge-discovery), optionally a route reflector (RFC 4456).
//!
//! The section is optional: without it nothing is learned and the configuration means what it
//! meant before. With it, statically configured `peers` of type overlay still work and take
//! precedence over what BGP learns about the same edge (a learned route or key never replaces
//! a static peer's SAs).
//!
//! # Reading resolved values
//! - [`Bgp::router_id`] and [`RouteReflector::cluster_id`] are always concrete in a parsed
//!   [`crate::Config`]: as written, else `node.loopback` (IPv4) for the router ID and the
//!   router ID for the cluster ID.
//! - [`crate::Tenant::route_target`] is `Some` whenever `bgp` is set: as written, else
//!   `<bgp.asn>:<vni>` ([`RouteTarget::default_for`]).
//! - [`BgpGroup`] and [`BgpNeighbor`] hold what was written (`None` = not given);
//!   [`crate::Config::bgp_neighbors`] gives each neighbor's effective settings
//!   ([`ResolvedNeighbor`]): the neighbor's own value, else its group's, else the section's
//!   default.
//! - `password_file` is read at load time into `password` (a [`Secret`]), like `key_file`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{de, Secret, Suite};

/// The BGP speaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bgp {
    /// This appliance's AS, 1..=4294967295, not 23456 (`AS_TRANS`, RFC 6793).
    pub asn: u32,
    /// BGP identifier: an IPv4 address, not 0.0.0.0. Default `node.loopback` when that is
    /// IPv4 (required otherwise).
    pub router_id: Ipv4Addr,
    /// Proposed hold time, 0 (no keepalives) or 3..=65535 s; default 90.
    pub hold_time_s: u16,
    /// Wait between connection attempts, 1..=3600 s; default 5.
    pub connect_retry_s: u32,
    /// Graceful restart (RFC 4724) restart time, 0..=4095 s; default 120; 0 = off.
    pub graceful_restart_s: u16,
    /// Transport domain name → the 1-byte id BGP carries for it (Extended Port sub-TLV), in
    /// document order. Ids 1..=255, unique. Every WAN port's transport
    /// (`ports[].transport`, default the port's name) must have one.
    #[serde(serialize_with = "serialize_transports")]
    pub transports: Vec<BgpTransport>,
    /// Per-tenant X25519 keys between edges (optional section; defaults apply).
    pub keys: BgpKeys,
    /// Accept sessions (optional: a route reflector, or an edge with passive neighbors).
    pub listen: Option<BgpListen>,
    /// This sdwand reflects routes between its clients (RFC 4456). Present (even empty)
    /// turns it on.
    pub route_reflector: Option<RouteReflector>,
    /// Peer groups: shared settings of neighbors.
    pub groups: Vec<BgpGroup>,
    /// The BGP neighbors, as written; [`crate::Config::bgp_neighbors`] resolves them.
    pub neighbors: Vec<BgpNeighbor>,
}

impl Bgp {
    pub const DEFAULT_HOLD_TIME_S: u16 = 90;
    pub const DEFAULT_CONNECT_RETRY_S: u32 = 5;
    pub const DEFAULT_GRACEFUL_RESTART_S: u16 = 120;
    /// The BGP port (RFC 4271).
    pub const PORT: u16 = 179;
    /// `AS_TRANS` (RFC 6793): stands for a 4-byte AS in 2-byte fields, never configured.
    pub const AS_TRANS: u32 = 23456;

    /// The id of a transport domain, if it has one.
    pub fn transport_id(&self, transport: &str) -> Option<u8> {
        self.transports
            .iter()
            .find(|t| t.name == transport)
            .map(|t| t.id)
    }

    fn default_hold_time() -> u16 {
        Self::DEFAULT_HOLD_TIME_S
    }
    fn default_connect_retry() -> u32 {
        Self::DEFAULT_CONNECT_RETRY_S
    }
    fn default_graceful_restart() -> u16 {
        Self::DEFAULT_GRACEFUL_RESTART_S
    }
}

/// A transport domain and its id on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpTransport {
    /// `[A-Za-z0-9_-]{1,32}`, like `ports[].transport`.
    pub name: String,
    /// 1..=255, unique.
    pub id: u8,
}

fn serialize_transports<S: Serializer>(v: &[BgpTransport], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for t in v {
        m.serialize_entry(&t.name, &t.id)?;
    }
    m.end()
}

/// Per-tenant X25519 key agreement between edges, and the SAs made from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpKeys {
    /// Default `aes128gcm16`.
    #[serde(default = "BgpKeys::default_suite")]
    pub suite: Suite,
    /// A new key pair every so often, 10..=2592000 s (30 days); default 3600.
    #[serde(default = "BgpKeys::default_rotate", deserialize_with = "de::rotate_s")]
    pub rotate_s: u32,
    /// How long the previous inbound SA is still accepted after a rotation, 1..=3600 s,
    /// shorter than `rotate_s`; default 30.
    #[serde(default = "BgpKeys::default_grace", deserialize_with = "de::grace_s")]
    pub grace_s: u32,
    /// How long after announcing a new key the sender switches to it, 1..=600 s, shorter
    /// than `rotate_s`; default 5.
    #[serde(
        default = "BgpKeys::default_switch_after",
        deserialize_with = "de::switch_after_s"
    )]
    pub switch_after_s: u32,
    /// Anti-replay window of the SAs, as `peers[].sas[].replay_window`; default 1024.
    #[serde(
        default = "BgpKeys::default_replay_window",
        deserialize_with = "de::replay_window"
    )]
    pub replay_window: u32,
}

impl BgpKeys {
    pub const DEFAULT_ROTATE_S: u32 = 3600;
    pub const DEFAULT_GRACE_S: u32 = 30;
    pub const DEFAULT_SWITCH_AFTER_S: u32 = 5;

    fn default_suite() -> Suite {
        Suite::Aes128Gcm16
    }
    fn default_rotate() -> u32 {
        Self::DEFAULT_ROTATE_S
    }
    fn default_grace() -> u32 {
        Self::DEFAULT_GRACE_S
    }
    fn default_switch_after() -> u32 {
        Self::DEFAULT_SWITCH_AFTER_S
    }
    fn default_replay_window() -> u32 {
        crate::Sa::DEFAULT_REPLAY_WINDOW
    }
}

impl Default for BgpKeys {
    fn default() -> Self {
        BgpKeys {
            suite: Self::default_suite(),
            rotate_s: Self::DEFAULT_ROTATE_S,
            grace_s: Self::DEFAULT_GRACE_S,
            switch_after_s: Self::DEFAULT_SWITCH_AFTER_S,
            replay_window: crate::Sa::DEFAULT_REPLAY_WINDOW,
        }
    }
}

/// Where sessions are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpListen {
    /// Default 0.0.0.0 (every address); not multicast or broadcast.
    #[serde(
        default = "BgpListen::default_address",
        deserialize_with = "de::listen_address"
    )]
    pub address: IpAddr,
    /// 1..=65535; default 179.
    #[serde(default = "BgpListen::default_port", deserialize_with = "de::tcp_port")]
    pub port: u16,
}

impl BgpListen {
    fn default_address() -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
    fn default_port() -> u16 {
        Bgp::PORT
    }
}

impl Default for BgpListen {
    fn default() -> Self {
        BgpListen {
            address: Self::default_address(),
            port: Bgp::PORT,
        }
    }
}

/// Route reflection (RFC 4456).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteReflector {
    /// IPv4, not 0.0.0.0; default `bgp.router_id`.
    pub cluster_id: Ipv4Addr,
}

/// A peer group: settings its neighbors share and, on a reflector, what its members may
/// learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpGroup {
    /// `[A-Za-z0-9_-]{1,32}`, unique.
    #[serde(deserialize_with = "de::node_name")]
    pub name: String,
    /// Default `bgp.asn`; rules as `bgp.asn`.
    #[serde(default, deserialize_with = "de::opt_asn")]
    pub remote_as: Option<u32>,
    /// Reflect routes to and from the members (default false); only on a route reflector.
    #[serde(default)]
    pub route_reflector_client: bool,
    /// Tenants (`tenants[].name`), non-empty and unique; `None` (not given): all of them. On a
    /// reflector: the route targets the members may receive and send.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// TCP-MD5 (RFC 2385) key, 1..=80 bytes. Exactly one of `password` and
    /// `password_file`, or neither. Read from `password_file` at load time.
    #[serde(default, deserialize_with = "de::password", skip_serializing)]
    pub password: Option<Secret>,
    /// A file holding the password (its bytes, less one final line break), relative to the
    /// configuration file's folder.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Hold time override; rules as `bgp.hold_time_s`.
    #[serde(default, deserialize_with = "de::opt_hold_time")]
    pub hold_time_s: Option<u16>,
}

/// A BGP neighbor as written; `None` fields take the group's value, else the default (see
/// [`crate::Config::bgp_neighbors`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpNeighbor {
    /// IPv4 or IPv6 unicast, unique among neighbors, not one of this appliance's addresses.
    #[serde(deserialize_with = "de::neighbor_address")]
    pub address: IpAddr,
    /// A group's name (`bgp.groups[].name`).
    #[serde(default)]
    pub group: Option<String>,
    /// Default the group's, else `bgp.asn`.
    #[serde(default, deserialize_with = "de::opt_asn")]
    pub remote_as: Option<u32>,
    /// The port we connect to, 1..=65535; default 179. Not with `passive`.
    #[serde(default, deserialize_with = "de::opt_tcp_port")]
    pub port: Option<u16>,
    /// Source address of the session, of `address`'s family.
    #[serde(default, deserialize_with = "de::local_address")]
    pub local_address: Option<IpAddr>,
    /// Default false: we connect. True: we only accept (needs `bgp.listen`).
    #[serde(default)]
    pub passive: bool,
    /// As in groups.
    #[serde(default, deserialize_with = "de::password", skip_serializing)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::opt_hold_time")]
    pub hold_time_s: Option<u16>,
    #[serde(default)]
    pub route_reflector_client: Option<bool>,
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
}

/// A neighbor's effective settings: its own, else its group's, else the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedNeighbor {
    pub address: IpAddr,
    /// The port we connect to.
    pub port: u16,
    pub local_address: Option<IpAddr>,
    pub passive: bool,
    pub group: Option<String>,
    pub remote_as: u32,
    pub hold_time_s: u16,
    /// The TCP-MD5 key, if any (read from a file already).
    pub password: Option<Secret>,
    pub route_reflector_client: bool,
    /// Tenant names, in the order given (all tenants, in `tenants` order, by default).
    pub tenants: Vec<String>,
}

impl crate::Config {
    /// Every BGP neighbor with its effective settings, in `bgp.neighbors` order (empty
    /// without `bgp`).
    pub fn bgp_neighbors(&self) -> Vec<ResolvedNeighbor> {
        let Some(b) = &self.bgp else {
            return Vec::new();
        };
        b.neighbors
            .iter()
            .map(|n| {
                let g = n
                    .group
                    .as_ref()
                    .and_then(|name| b.groups.iter().find(|g| &g.name == name));
                ResolvedNeighbor {
                    address: n.address,
                    port: n.port.unwrap_or(Bgp::PORT),
                    local_address: n.local_address,
                    passive: n.passive,
                    group: n.group.clone(),
                    remote_as: n.remote_as.or(g.and_then(|g| g.remote_as)).unwrap_or(b.asn),
                    hold_time_s: n
                        .hold_time_s
                        .or(g.and_then(|g| g.hold_time_s))
                        .unwrap_or(b.hold_time_s),
                    password: n
                        .password
                        .clone()
                        .or_else(|| g.and_then(|g| g.password.clone())),
                    route_reflector_client: n
                        .route_reflector_client
                        .or(g.map(|g| g.route_reflector_client))
                        .unwrap_or(false),
                    tenants: n
                        .tenants
                        .clone()
                        .or_else(|| g.and_then(|g| g.tenants.clone()))
                        .unwrap_or_else(|| self.tenants.iter().map(|t| t.name.clone()).collect()),
                }
            })
            .collect()
    }
}

/// The section as written (router and cluster IDs not yet defaulted).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    #[serde(deserialize_with = "de::asn")]
    asn: u32,
    #[serde(default, deserialize_with = "de::router_id")]
    router_id: Option<Ipv4Addr>,
    #[serde(default = "Bgp::default_hold_time", deserialize_with = "de::hold_time")]
    hold_time_s: u16,
    #[serde(
        default = "Bgp::default_connect_retry",
        deserialize_with = "de::connect_retry_s"
    )]
    connect_retry_s: u32,
    #[serde(
        default = "Bgp::default_graceful_restart",
        deserialize_with = "de::graceful_restart_s"
    )]
    graceful_restart_s: u16,
    #[serde(default, deserialize_with = "de::transport_ids")]
    transports: Vec<BgpTransport>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    keys: BgpKeys,
    #[serde(default, deserialize_with = "de::present_section")]
    listen: Option<BgpListen>,
    #[serde(default, deserialize_with = "de::present_section")]
    route_reflector: Option<RawRouteReflector>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    groups: Vec<BgpGroup>,
    #[serde(default, deserialize_with = "de::null_as_default")]
    neighbors: Vec<BgpNeighbor>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteReflector {
    #[serde(default, deserialize_with = "de::router_id")]
    cluster_id: Option<Ipv4Addr>,
}

impl RawBgp {
    /// Applies the router and cluster ID defaults. Without an IPv4 `node.loopback` and no
    /// `router_id`, the router ID is left 0.0.0.0, which validation reports (0.0.0.0 cannot be
    /// written).
    pub(crate) fn resolve(self, loopback: Option<IpAddr>) -> Bgp {
        let router_id = self.router_id.unwrap_or(match loopback {
            Some(IpAddr::V4(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        });
        Bgp {
            asn: self.asn,
            router_id,
            hold_time_s: self.hold_time_s,
            connect_retry_s: self.connect_retry_s,
            graceful_restart_s: self.graceful_restart_s,
            transports: self.transports,
            keys: self.keys,
            listen: self.listen,
            route_reflector: self.route_reflector.map(|r| RouteReflector {
                cluster_id: r.cluster_id.unwrap_or(router_id),
            }),
            groups: self.groups,
            neighbors: self.neighbors,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Route targets

/// A route target extended community (RFC 4360 §4, RFC 5668), written `ASN:NUMBER` or
/// `IPV4:NUMBER`: `65000:1001` (a 2-byte AS and a 32-bit number), `4200000001:7` (a 4-byte
/// AS, above 65535, and a 16-bit number), `192.0.2.1:7` (an IPv4 address and a 16-bit
/// number). `65000L:7` forces the 4-byte form for an AS below 65536 (as [`fmt::Display`]
/// writes it), so every value reads back as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Type 0x00 (two-octet AS specific).
    As2 { asn: u16, local: u32 },
    /// Type 0x01 (IPv4 address specific).
    Ipv4 { addr: Ipv4Addr, local: u16 },
    /// Type 0x02 (four-octet AS specific, RFC 5668).
    As4 { asn: u32, local: u16 },
}

/// Why a route target could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteTargetError(String);

impl RouteTarget {
    /// The route target sub-type (RFC 4360 §4).
    pub const SUBTYPE: u8 = 0x02;

    /// The 8 bytes of the extended community: type, sub-type 0x02, then the global and local
    /// administrators in network byte order.
    pub fn to_extended_community(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[1] = Self::SUBTYPE;
        match *self {
            RouteTarget::As2 { asn, local } => {
                b[0] = 0x00;
                b[2..4].copy_from_slice(&asn.to_be_bytes());
                b[4..8].copy_from_slice(&local.to_be_bytes());
            }
            RouteTarget::Ipv4 { addr, local } => {
                b[0] = 0x01;
                b[2..6].copy_from_slice(&addr.octets());
                b[6..8].copy_from_slice(&local.to_be_bytes());
            }
            RouteTarget::As4 { asn, local } => {
                b[0] = 0x02;
                b[2..6].copy_from_slice(&asn.to_be_bytes());
                b[6..8].copy_from_slice(&local.to_be_bytes());
            }
        }
        b
    }

    /// The route target in an extended community, if it is one (transitive types 0x00, 0x01,
    /// 0x02 with sub-type 0x02).
    pub fn from_extended_community(b: [u8; 8]) -> Option<RouteTarget> {
        if b[1] != Self::SUBTYPE {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        match b[0] {
            0x00 => Some(RouteTarget::As2 {
                asn: u16_at(2),
                local: u32_at(4),
            }),
            0x01 => Some(RouteTarget::Ipv4 {
                addr: Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                local: u16_at(6),
            }),
            0x02 => Some(RouteTarget::As4 {
                asn: u32_at(2),
                local: u16_at(6),
            }),
            _ => None,
        }
    }

    /// A tenant's default route target, `<asn>:<vni>`: the 2-byte form for an AS up to
    /// 65535, else the 4-byte form, which holds only a VNI up to 65535 (`None` otherwise).
    pub fn default_for(asn: u32, vni: u32) -> Option<RouteTarget> {
        match u16::try_from(asn) {
            Ok(asn) => Some(RouteTarget::As2 { asn, local: vni }),
            Err(_) => u16::try_from(vni)
                .ok()
                .map(|local| RouteTarget::As4 { asn, local }),
        }
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteTarget::As2 { asn, local } => write!(f, "{asn}:{local}"),
            RouteTarget::Ipv4 { addr, local } => write!(f, "{addr}:{local}"),
            RouteTarget::As4 { asn, local } if asn <= 0xffff => write!(f, "{asn}L:{local}"),
            RouteTarget::As4 { asn, local } => write!(f, "{asn}:{local}"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = RouteTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| RouteTargetError(format!("invalid route target {s:?}: {why}"));
        let form = "expected ASN:NUMBER (65000:100, 4200000000:100) or IPV4:NUMBER (192.0.2.1:100)";
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 10 && t.bytes().all(|b| b.is_ascii_digit());
        let Some((global, local)) = s.split_once(':') else {
            return Err(bad(form));
        };
        if !digits(local) {
            return Err(bad(form));
        }
        let local: u64 = local.parse().map_err(|_| bad(form))?;
        let local16 = || {
            u16::try_from(local)
                .map_err(|_| bad("the number is 0..=65535 after an IPv4 address or a 4-byte AS"))
        };
        if global.contains('.') {
            let addr: Ipv4Addr = global.parse().map_err(|_| bad(form))?;
            return Ok(RouteTarget::Ipv4 {
                addr,
                local: local16()?,
            });
        }
        let (asn, four) = match global.strip_suffix(['L', 'l']) {
            Some(a) => (a, true),
            None => (global, false),
        };
        if !digits(asn) {
            return Err(bad(form));
        }
        let asn: u32 = asn.parse().map_err(|_| bad("the AS is 1..=4294967295"))?;
        if asn == 0 {
            return Err(bad("AS 0 is reserved (RFC 7607)"));
        }
        match u16::try_from(asn) {
            Ok(asn) if !four => Ok(RouteTarget::As2 {
                asn,
                local: u32::try_from(local)
                    .map_err(|_| bad("the number is 0..=4294967295 after a 2-byte AS"))?,
            }),
            _ => Ok(RouteTarget::As4 {
                asn,
                local: local16()?,
            }),
        }
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
