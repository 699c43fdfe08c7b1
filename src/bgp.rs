//! `sdwand`'s BGP: the configuration turned into a [`Speaker`], the sockets it asks for (all
//! non-blocking, served from the control loop), and the learned sites turned into data-plane
//! tunnels ([`OverlayBuilder`]).
//!
//! BGP runs over the host's network stack (the namespace's kernel interfaces: a management
//! network to the reflectors), not over the DPDK ports.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdwan_conf::{Config, PortRole};
use sdwan_control::bgp::speaker::{
    CircuitConfig, Io, NeighborConfig, Speaker, SpeakerConfig, TenantConfig,
};
use sdwan_control::bgp::transport;
use sdwan_control::keys::{self, KeyConfig, KeyManager, SystemRandom};
use sdwan_dataplane::engine::LearnedOverlay;
use sdwan_dataplane::esp::Suite;
use sdwan_dataplane::tunnel::{self, CircuitInfo, TunnelInfo, TunnelKeys, TunnelKind};
use zeroize::Zeroizing;

/// The speaker's configuration, and the key manager of an edge (`None` on a pure reflector:
/// no tenant to key).
pub fn speaker(config: &Config) -> Result<Option<Speaker>, String> {
    let Some(b) = &config.bgp else {
        return Ok(None);
    };
    let interfaces = config.interfaces();
    let loopback = config.node.loopback;
    let edge = loopback.is_some() && !config.ports.is_empty();
    let tenants = if edge {
        config
            .tenants
            .iter()
            .map(|t| {
                let rt = t
                    .route_target
                    .as_ref()
                    .map(|r| r.to_extended_community())
                    .ok_or_else(|| format!("tenant {}: no route target", t.name))?;
                // The LAN ports' subnets and what the tenant advertises besides.
                let mut prefixes: Vec<ipnet::IpNet> = interfaces
                    .iter()
                    .filter(|i| t.lan_ports.contains(&i.name))
                    .flat_map(|i| i.addresses.iter().map(|a| a.trunc()))
                    .filter(|n| !matches!(n.addr(), IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80))
                    .collect();
                prefixes.extend(t.advertise.iter().copied());
                prefixes.sort();
                prefixes.dedup();
                Ok(TenantConfig {
                    rt,
                    vni: t.vni,
                    prefixes,
                })
            })
            .collect::<Result<Vec<_>, String>>()?
    } else {
        Vec::new()
    };
    let circuits = if edge {
        interfaces
            .iter()
            .filter(|i| i.role == PortRole::Wan)
            .flat_map(|i| {
                let t = b.transport_id(&i.transport).unwrap_or(0);
                i.addresses
                    .iter()
                    .filter(|a| !matches!(a.addr(), IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80))
                    .map(move |a| CircuitConfig {
                        address: a.addr(),
                        transport: t,
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    let rt_of = |name: &str| {
        config
            .tenants
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.route_target.as_ref())
            .map(|r| r.to_extended_community())
    };
    let neighbors = config
        .bgp_neighbors()
        .into_iter()
        .map(|n| NeighborConfig {
            address: n.address,
            port: n.port,
            local_address: n.local_address,
            remote_as: n.remote_as,
            passive: n.passive,
            hold_time: n.hold_time_s,
            md5: n
                .password
                .as_ref()
                .map(|s| Arc::new(Zeroizing::new(s.expose().to_vec()))),
            client: n.route_reflector_client,
            // Every tenant is the same as no restriction only when all tenants are listed.
            allowed: (n.tenants.len() != config.tenants.len() || b.route_reflector.is_some())
                .then(|| n.tenants.iter().filter_map(|t| rt_of(t)).collect()),
        })
        .collect();
    let cfg = SpeakerConfig {
        asn: b.asn,
        router_id: b.router_id,
        loopback: loopback.filter(|_| edge),
        connect_retry: Duration::from_secs(u64::from(b.connect_retry_s)),
        graceful_restart: b.graceful_restart_s,
        cluster_id: b.route_reflector.as_ref().map(|r| r.cluster_id),
        neighbors,
        tenants,
        circuits,
        key_duration_s: b.keys.rotate_s,
    };
    let keys = match (edge, loopback) {
        (true, Some(lo)) => {
            let kc = KeyConfig {
                rotate_every: Duration::from_secs(u64::from(b.keys.rotate_s)),
                grace: Duration::from_secs(u64::from(b.keys.grace_s)),
                switch_after: Duration::from_secs(u64::from(b.keys.switch_after_s)),
                suite: match b.keys.suite {
                    sdwan_conf::Suite::Aes128Gcm16 => keys::Suite::Aes128Gcm16,
                    sdwan_conf::Suite::Aes256Gcm16 => keys::Suite::Aes256Gcm16,
                },
            };
            Some(KeyManager::new(kc, lo, SystemRandom).map_err(|e| format!("bgp.keys: {e}"))?)
        }
        _ => None,
    };
    Ok(Some(Speaker::new(cfg, keys)))
}

/// A neighbor's connection.
enum Conn {
    None,
    Connecting(TcpStream),
    Up { stream: TcpStream, out: Vec<u8> },
}

/// The speaker and its sockets.
pub struct BgpIo {
    pub speaker: Speaker,
    listener: Option<TcpListener>,
    conns: Vec<Conn>,
    log: fn(&str),
}

/// Most bytes read from one connection per call of [`BgpIo::run`] (the rest waits).
const READ_BUDGET: usize = 1 << 20;

impl BgpIo {
    pub fn new(speaker: Speaker, listen: Option<SocketAddr>, log: fn(&str)) -> io::Result<Self> {
        let listener = match listen {
            Some(addr) => {
                let l = transport::listen(addr)?;
                // The MD5 keys of the neighbors that may connect (the kernel drops the SYNs
                // of the others).
                for (_, n, _) in speaker.sessions() {
                    if let Some(k) = &n.md5 {
                        transport::set_md5(l.as_raw_fd(), n.address, k)?;
                    }
                }
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let conns = speaker.sessions().map(|_| Conn::None).collect();
        Ok(BgpIo {
            speaker,
            listener,
            conns,
            log,
        })
    }

    pub fn start(&mut self, now: Instant) {
        let io = self.speaker.start(now);
        self.apply(io, now);
    }

    /// Stops the sessions with a Cease and flushes what can be sent.
    pub fn stop(&mut self, now: Instant) {
        let io = self.speaker.stop(now, "sdwand is stopping");
        self.apply(io, now);
    }

    /// One round: new connections, connects that completed, reads, timers, writes.
    pub fn run(&mut self, now: Instant) {
        let mut accepted = Vec::new();
        if let Some(l) = &self.listener {
            loop {
                match l.accept() {
                    Ok(x) => accepted.push(x),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        (self.log)(&format!("accept: {e}"));
                        break;
                    }
                }
            }
        }
        for (s, from) in accepted {
            let ip = from.ip().to_canonical();
            match self.speaker.accepts(ip) {
                Some(p) if matches!(self.conns.get(p), Some(Conn::None)) => {
                    let _ = s.set_nonblocking(true);
                    let _ = s.set_nodelay(true);
                    self.conns[p] = Conn::Up {
                        stream: s,
                        out: Vec::new(),
                    };
                    let io = self.speaker.connected(p, now);
                    self.apply(io, now);
                }
                _ => (self.log)(&format!("refused a BGP connection from {from}")),
            }
        }
        for p in 0..self.conns.len() {
            if let Conn::Connecting(s) = &self.conns[p] {
                match transport::connect_done(s) {
                    Ok(false) => {}
                    Ok(true) => {
                        let Conn::Connecting(s) = std::mem::replace(&mut self.conns[p], Conn::None)
                        else {
                            continue;
                        };
                        self.conns[p] = Conn::Up {
                            stream: s,
                            out: Vec::new(),
                        };
                        let io = self.speaker.connected(p, now);
                        self.apply(io, now);
                    }
                    Err(e) => {
                        self.conns[p] = Conn::None;
                        let io = self.speaker.connect_failed(p, now, &e.to_string());
                        self.apply(io, now);
                    }
                }
            }
        }
        let mut buf = vec![0u8; 65536];
        for p in 0..self.conns.len() {
            let mut got = 0;
            while got < READ_BUDGET {
                let Conn::Up { stream, .. } = &mut self.conns[p] else {
                    break;
                };
                match stream.read(&mut buf) {
                    Ok(0) => {
                        self.conns[p] = Conn::None;
                        let io = self.speaker.closed(p, now, "closed by the peer");
                        self.apply(io, now);
                        break;
                    }
                    Ok(n) => {
                        got += n;
                        let io = self.speaker.received(p, now, &buf[..n]);
                        self.apply(io, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.conns[p] = Conn::None;
                        let io = self.speaker.closed(p, now, &e.to_string());
                        self.apply(io, now);
                        break;
                    }
                }
            }
        }
        let io = self.speaker.poll(now);
        self.apply(io, now);
        for p in 0..self.conns.len() {
            self.flush(p, now);
        }
    }

    /// `request keys rotate [TENANT]`: asks for a new key pair for every tenant, or one.
    pub fn rotate_keys(
        &mut self,
        config: &Config,
        tenant: Option<&str>,
        now: Instant,
    ) -> Result<Vec<sdwan_control::api::KeyRotation>, String> {
        if let Some(t) = tenant {
            if !config.tenants.iter().any(|x| x.name == t) {
                return Err(format!("no tenant {t:?}"));
            }
        }
        let mut out = Vec::new();
        for t in config
            .tenants
            .iter()
            .filter(|t| tenant.is_none_or(|n| n == t.name))
        {
            let (generation, waits) = self.speaker.rotate_key(t.vni, now)?;
            (self.log)(&format!(
                "tenant {} (VNI {}): key rotation asked for by the operator",
                t.name, t.vni
            ));
            out.push(sdwan_control::api::KeyRotation {
                tenant: t.name.clone(),
                vni: t.vni,
                generation,
                waits_for: waits.map(str::to_owned),
            });
        }
        Ok(out)
    }

    /// Tells the speaker the data plane saw traffic on an inbound SA.
    pub fn inbound_seen(&mut self, peer: IpAddr, vni: u32, spi: u32, now: Instant) {
        let io = self.speaker.inbound_seen(peer, vni, spi, now);
        self.apply(io, now);
    }

    fn apply(&mut self, io: Vec<Io>, now: Instant) {
        for x in io {
            match x {
                Io::Connect(p) => {
                    let Some(n) = self.speaker.neighbor(p) else {
                        continue;
                    };
                    let addr = SocketAddr::new(n.address, n.port);
                    let md5 = n.md5.clone();
                    match transport::start_connect(
                        addr,
                        n.local_address,
                        md5.as_deref().map(|k| k.as_slice()),
                    ) {
                        Ok(s) => self.conns[p] = Conn::Connecting(s),
                        Err(e) => {
                            let io = self.speaker.connect_failed(p, now, &e.to_string());
                            self.apply(io, now);
                        }
                    }
                }
                Io::Send(p, bytes) => {
                    if let Some(Conn::Up { out, .. }) = self.conns.get_mut(p) {
                        out.extend_from_slice(&bytes);
                    }
                    self.flush(p, now);
                }
                Io::Close(p) => {
                    self.flush(p, now);
                    if let Some(c) = self.conns.get_mut(p) {
                        *c = Conn::None;
                    }
                }
                Io::Log(m) => (self.log)(&m),
            }
        }
    }

    fn flush(&mut self, p: usize, now: Instant) {
        let Some(Conn::Up { stream, out }) = self.conns.get_mut(p) else {
            return;
        };
        while !out.is_empty() {
            match stream.write(out) {
                Ok(0) => break,
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.conns[p] = Conn::None;
                    let io = self.speaker.closed(p, now, &e.to_string());
                    self.apply(io, now);
                    return;
                }
            }
        }
    }

    /// How long the control loop may sleep before BGP needs it (at most `max`).
    pub fn idle_for(&self, now: Instant, max: Duration) -> Duration {
        let pending_writes = self.conns.iter().any(|c| {
            matches!(c, Conn::Up { out, .. } if !out.is_empty()) || matches!(c, Conn::Connecting(_))
        });
        if pending_writes {
            return Duration::from_millis(1).min(max);
        }
        self.speaker
            .next_deadline()
            .map_or(max, |d| d.saturating_duration_since(now).min(max))
    }
}

/// Turns the learned sites and their keys into data-plane tunnels, keeping each key's id
/// for as long as the key lives (so the workers keep its SA).
#[derive(Debug, Default)]
pub struct OverlayBuilder {
    ids: HashMap<KeyIdentity, u64>,
    next_id: u64,
    /// What the last build installed: inbound SPI base -> (peer, VNI), for rekey
    /// confirmations from the SA counters.
    pub inbound: HashMap<(IpAddr, u32), u32>,
    /// Per (site, VNI): the key generation last seen and when it was first seen.
    key_seen: HashMap<(IpAddr, u32), (u32, Instant)>,
    /// Per (site, VNI): what the last build sends with (our generation, the site's, SPI).
    sending: HashMap<(IpAddr, u32), (u32, u32, u32)>,
    /// Lines for the log: the outbound SAs that changed in the last build (no key).
    pub sending_changes: Vec<String>,
}

/// What identifies one direction of one SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct KeyIdentity {
    peer: IpAddr,
    vni: u32,
    outbound: bool,
    spi: u32,
    local_generation: u32,
    peer_generation: u32,
}

impl KeyIdentity {
    fn of(peer: IpAddr, vni: u32, outbound: bool, sa: &keys::DirectionSa) -> Self {
        KeyIdentity {
            peer,
            vni,
            outbound,
            spi: sa.spi_base,
            local_generation: sa.local_generation,
            peer_generation: sa.peer_generation,
        }
    }
}

impl OverlayBuilder {
    fn id(&mut self, used: &mut HashMap<KeyIdentity, u64>, k: KeyIdentity) -> u64 {
        let id = *self.ids.entry(k).or_insert_with(|| {
            self.next_id += 1;
            self.next_id
        });
        used.insert(k, id);
        id
    }

    /// The tunnels to every usable site of our tenants: for each (site, tenant), the tunnel
    /// that sends (with the inbound SA of the newest keys) and one inbound-only tunnel per
    /// other live inbound SA (make-before-break); its circuits pair ours and the site's by
    /// transport domain.
    pub fn build(&mut self, config: &Config, speaker: &Speaker) -> LearnedOverlay {
        let mut out = LearnedOverlay::default();
        let (Some(b), Some(keys)) = (&config.bgp, speaker.keys()) else {
            return out;
        };
        let interfaces = config.interfaces();
        let loopback = config.node.loopback;
        let mut used = HashMap::new();
        let mut sending = HashMap::new();
        self.inbound.clear();
        // Static overlay peers take precedence over learned ones.
        let statics: Vec<IpAddr> = config.peers.iter().filter_map(|p| p.loopback).collect();
        let mut sites: BTreeMap<(IpAddr, u32), _> = BTreeMap::new();
        for k in speaker.sites().keys() {
            if let Some(vni) = speaker.vni_of(&k.rt) {
                sites.insert((k.node, vni), *k);
            }
        }
        for ((node, vni), key) in sites {
            if statics.contains(&node) || Some(node) == loopback {
                continue;
            }
            let Some(site) = speaker.sites().get(&key).filter(|s| s.usable()) else {
                continue;
            };
            let Some(tenant) = config.tenants.iter().position(|t| t.vni == vni) else {
                continue;
            };
            let Some(sas) = keys.sas(node, vni) else {
                continue;
            };
            let mut circuits = Vec::new();
            for (i, iface) in interfaces.iter().enumerate() {
                if iface.role != PortRole::Wan {
                    continue;
                }
                let Some(t) = b.transport_id(&iface.transport) else {
                    continue;
                };
                for rc in site.circuits.iter().filter(|c| c.transport == t) {
                    let Some(local) = iface
                        .addresses
                        .iter()
                        .find(|a| a.contains(&rc.address))
                        .or_else(|| {
                            iface
                                .addresses
                                .iter()
                                .find(|a| a.addr().is_ipv4() == rc.address.is_ipv4())
                        })
                    else {
                        continue;
                    };
                    if circuits.len() < 16 {
                        circuits.push(CircuitInfo {
                            port: i as u16,
                            local: local.addr(),
                            remote: rc.address,
                            transport: iface.transport.clone(),
                            trusted: iface.trusted,
                        });
                    }
                }
            }
            if circuits.is_empty() {
                continue;
            }
            let suite = match sas.suite {
                keys::Suite::Aes128Gcm16 => Suite::Aes128Gcm,
                keys::Suite::Aes256Gcm16 => Suite::Aes256Gcm,
            };
            let template = TunnelInfo {
                peer: node.to_string(),
                tenant: tenant as u16,
                kind: TunnelKind::Overlay,
                loopbacks: loopback.map(|l| (l, node)),
                circuits,
                out_spi: 0,
                in_spi: 0,
                senders: tunnel::SENDERS,
                suite,
                esn: true,
                replay_window: b.keys.replay_window,
                first_slot: 0,
                peer_index: None,
                out_key: 0,
                in_key: 0,
            };
            // The inbound SA paired with the outbound one: the one of the newest keys.
            let mut inbound = sas.inbound.clone();
            inbound.sort_by_key(|s| std::cmp::Reverse((s.local_generation, s.peer_generation)));
            let mut first = true;
            let mut primary = None;
            if let Some(o) = &sas.outbound {
                let Some(i) = inbound.first() else {
                    continue;
                };
                let now_sending = (o.local_generation, o.peer_generation, o.spi_base);
                if self.sending.get(&(node, vni)) != Some(&now_sending) {
                    self.sending_changes.push(format!(
                        "site {node} VNI {vni}: sending under our key generation {} and its {} (SPI {:#010x})",
                        o.local_generation, o.peer_generation, o.spi_base
                    ));
                }
                sending.insert((node, vni), now_sending);
                let mut t = template.clone();
                t.out_spi = o.spi_base;
                t.in_spi = i.spi_base;
                t.out_key = self.id(&mut used, KeyIdentity::of(node, vni, true, o));
                t.in_key = self.id(&mut used, KeyIdentity::of(node, vni, false, i));
                self.inbound.insert((node, i.spi_base), vni);
                primary = Some(out.tunnels.len() as u16);
                out.tunnels.push((
                    t,
                    Arc::new(TunnelKeys {
                        out: o.keymat.clone(),
                        inbound: i.keymat.clone(),
                    }),
                ));
            } else {
                first = false;
            }
            for i in inbound.iter().skip(usize::from(first)) {
                let mut t = template.clone();
                t.in_spi = i.spi_base;
                t.in_key = self.id(&mut used, KeyIdentity::of(node, vni, false, i));
                self.inbound.insert((node, i.spi_base), vni);
                out.tunnels.push((
                    t,
                    Arc::new(TunnelKeys {
                        out: Zeroizing::new(Vec::new()),
                        inbound: i.keymat.clone(),
                    }),
                ));
            }
            if let Some(p) = primary {
                for prefix in &site.prefixes {
                    out.routes.push((tenant as u16, *prefix, p));
                }
            }
        }
        // Ids of keys that are gone are forgotten (they are never reused: the counter only
        // grows).
        self.ids = used;
        self.sending = sending;
        out
    }
}

/// The text of a Route Target's 8 bytes (`65000:1001`), or hex for another community.
fn rt_text(rt: &[u8; 8]) -> String {
    use sdwan_control::bgp::wire::extcomm::ExtCommunity;
    match ExtCommunity::from_bytes(*rt).route_target() {
        Some(r) => r.to_string(),
        None => rt.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The name of the tenant of a Route Target, if it is one of ours.
fn tenant_of(config: &Config, rt: &[u8; 8]) -> Option<String> {
    config
        .tenants
        .iter()
        .find(|t| t.route_target.as_ref().map(|r| r.to_extended_community()) == Some(*rt))
        .map(|t| t.name.clone())
}

impl BgpIo {
    /// `show bgp summary`.
    pub fn summary(&self, now: Instant) -> sdwan_control::api::BgpSummary {
        use sdwan_control::api;
        let s = &self.speaker;
        let rib = s.rib();
        api::BgpSummary {
            router_id: s.config().router_id.to_string(),
            asn: s.config().asn,
            role: if s.config().cluster_id.is_some() {
                "route-reflector".into()
            } else {
                "edge".into()
            },
            table_version: rib.version,
            routes: rib.loc_rib().count(),
            neighbors: s
                .sessions()
                .map(|(id, n, f)| {
                    let (rcvd, snt) = rib.peer_counts(id);
                    let out_q = match self.conns.get(id) {
                        Some(Conn::Up { out, .. }) => out.len() as u64,
                        _ => 0,
                    };
                    api::BgpNeighbor {
                        neighbor: n.address.to_string(),
                        version: 4,
                        remote_as: n.remote_as,
                        msg_rcvd: f.stats.msgs_received,
                        msg_sent: f.stats.msgs_sent,
                        tbl_ver: rib.version,
                        in_q: 0,
                        out_q,
                        up_down_secs: f.since.map(|t| now.saturating_duration_since(t).as_secs()),
                        state: f.state().name().into(),
                        pfx_rcd: rcvd,
                        pfx_snt: snt,
                        last_error: f.last_error.clone(),
                        route_reflector_client: n.client,
                        route_targets: n.allowed.iter().flatten().map(rt_text).collect(),
                    }
                })
                .collect(),
            treated_as_withdraw: rib.stats.treated_as_withdraw,
            attributes_discarded: rib.stats.attributes_discarded,
            unauthorized_routes: rib.stats.unauthorized,
            reflection_loops: rib.stats.loops,
        }
    }

    /// `show bgp routes [tenant]`: the Loc-RIB, sorted.
    pub fn routes(
        &self,
        config: &Config,
        tenant: Option<&str>,
    ) -> Vec<sdwan_control::api::BgpRoute> {
        use sdwan_control::api;
        use sdwan_control::bgp::rib::{RouteKey, LOCAL};
        let mut v: Vec<api::BgpRoute> = self
            .speaker
            .rib()
            .loc_rib()
            .map(|(k, p)| {
                let rts = p.route_targets();
                let (rd, prefix) = match k {
                    RouteKey::Vpn { rd, prefix } => (Some(rd.to_string()), prefix.to_string()),
                    RouteKey::SdWan(n) => {
                        (None, format!("{}/{}/{}", n.node, n.port_local_id, n.color))
                    }
                    RouteKey::Rtc(r) => (
                        None,
                        r.route_target().map_or_else(
                            || "membership default".into(),
                            |rt| format!("membership {}", rt_text(&rt.to_bytes())),
                        ),
                    ),
                };
                let circuits = p
                    .tunnel_encap()
                    .map(|e| {
                        e.sdwan_circuits()
                            .map(|c| {
                                format!(
                                    "{}:{}",
                                    c.extended_port.transport_network_id,
                                    c.extended_port.public_addr
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let key_generation = p.tunnel_encap().and_then(|e| {
                    e.sdwan_circuits()
                        .find_map(|c| c.sa_ids.and_then(|ids| ids.first().copied()))
                });
                api::BgpRoute {
                    family: k.family().to_string(),
                    rd,
                    prefix,
                    next_hop: p.next_hop.to_string(),
                    tenants: rts.iter().filter_map(|rt| tenant_of(config, rt)).collect(),
                    route_targets: rts.iter().map(rt_text).collect(),
                    labels: p.labels.iter().map(|l| l.value()).collect(),
                    from: if p.from == LOCAL {
                        "local".into()
                    } else {
                        self.speaker
                            .neighbor(p.from)
                            .map_or_else(String::new, |n| n.address.to_string())
                    },
                    stale: p.stale,
                    originator_id: p.originator_id().map(|a| a.to_string()),
                    cluster_list: p.cluster_list().iter().map(|a| a.to_string()).collect(),
                    circuits,
                    key_generation,
                }
            })
            .filter(|r| tenant.is_none_or(|t| r.tenants.iter().any(|x| x == t)))
            .collect();
        v.sort_by(|a, b| (&a.family, &a.rd, &a.prefix).cmp(&(&b.family, &b.rd, &b.prefix)));
        v
    }
}

impl OverlayBuilder {
    /// `show sites`: every remote site's tenant, with what we hold for it.
    pub fn sites(
        &self,
        config: &Config,
        speaker: &Speaker,
        now: Instant,
    ) -> Vec<sdwan_control::api::Site> {
        use sdwan_control::api;
        let mut v = Vec::new();
        for k in speaker.sites().keys() {
            let Some(site) = speaker.sites().get(k) else {
                continue;
            };
            let vni = speaker.vni_of(&k.rt);
            let sas = vni
                .and_then(|vni| speaker.keys().and_then(|keys| keys.sas(k.node, vni)))
                .map(|s| {
                    let mut v: Vec<api::SiteSa> = s
                        .outbound
                        .iter()
                        .map(|o| ("out", o))
                        .chain(s.inbound.iter().map(|i| ("in", i)))
                        .map(|(d, x)| api::SiteSa {
                            direction: d.into(),
                            spi: x.spi_base,
                            local_generation: x.local_generation,
                            peer_generation: x.peer_generation,
                        })
                        .collect();
                    v.sort_by_key(|s| (s.direction.clone(), s.spi));
                    v
                })
                .unwrap_or_default();
            let key_age_secs = vni
                .and_then(|vni| self.key_seen.get(&(k.node, vni)))
                .filter(|(g, _)| Some(*g) == site.key.map(|k| k.generation))
                .map(|(_, t)| now.saturating_duration_since(*t).as_secs());
            v.push(api::Site {
                node: k.node.to_string(),
                tenant: tenant_of(config, &k.rt).unwrap_or_else(|| rt_text(&k.rt)),
                circuits: site
                    .circuits
                    .iter()
                    .map(|c| api::SiteCircuit {
                        transport: c.transport,
                        address: c.address.to_string(),
                        port: c.port,
                    })
                    .collect(),
                prefixes: site.prefixes.iter().map(|p| p.to_string()).collect(),
                key_generation: site.key.map(|k| k.generation),
                key_age_secs,
                sas,
            });
        }
        v
    }

    /// Remembers when each site's key generation was first seen (for `key_age_secs`).
    pub fn note_keys(&mut self, speaker: &Speaker, now: Instant) {
        for k in speaker.sites().keys() {
            let (Some(vni), Some(g)) = (
                speaker.vni_of(&k.rt),
                speaker
                    .sites()
                    .get(k)
                    .and_then(|s| s.key)
                    .map(|k| k.generation),
            ) else {
                continue;
            };
            let e = self.key_seen.entry((k.node, vni)).or_insert((g, now));
            if e.0 != g {
                *e = (g, now);
            }
        }
    }
}
