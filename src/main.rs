//! `sdwand`: the SD-WAN edge appliance. Loads the YAML configuration, starts DPDK (EAL, ports,
//! one pinned poll-mode worker per configured core) and runs the control loop on the main
//! thread: it merges what the workers learn into new table generations and serves the
//! management socket, until SIGINT or SIGTERM. Then it stops the workers, stops and closes the
//! ports (which completes pcap captures) and exits 0.

mod bgp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sdwan_conf::{Config, Encapsulation, PeerType, PortRole, SteeringMode};
use sdwan_control::api::{self, Request, Response};
use sdwan_control::mgmt;
use sdwan_dataplane::counters::CounterSnapshot;
use sdwan_dataplane::engine::TenantSpec;
use sdwan_dataplane::esp::{Backend, Suite};
use sdwan_dataplane::pathmon::MonitorConfig;
use sdwan_dataplane::policy;
use sdwan_dataplane::route::{NextHop, RouteSource, TenantHop};
use sdwan_dataplane::tunnel::{self, CircuitInfo, TunnelInfo, TunnelKeys, TunnelKind};
use sdwan_dataplane::{eal, Engine, EngineSpec, PortSpec};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

macro_rules! log {
    ($($arg:tt)*) => {{
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        eprintln!("[{}.{:03}] sdwand: {}", t.as_secs(), t.subsec_millis(), format!($($arg)*));
    }};
}

const USAGE: &str = "usage: sdwand --config FILE [--check]
  --config FILE   the appliance's YAML configuration (see README.md, conf/examples/)
  --check         validate the configuration and exit
  --version       print the version";

fn main() -> ExitCode {
    let mut config_path: Option<PathBuf> = None;
    let mut check_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => config_path = args.next().map(PathBuf::from),
            "--check" => check_only = true,
            "--version" | "-V" => {
                println!(
                    "sdwand {} ({})",
                    env!("CARGO_PKG_VERSION"),
                    env!("SDWAN_GIT_REV")
                );
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("sdwand: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(config_path) = config_path else {
        eprintln!("sdwand: --config FILE is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let config = match sdwan_conf::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sdwand: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("{}: configuration is valid", config_path.display());
        return ExitCode::SUCCESS;
    }
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// EAL arguments: the configured ones, plus the control core as the only EAL lcore unless the
/// configuration chose lcores itself. Workers are not EAL lcores: they register themselves.
fn eal_args(config: &Config) -> Vec<String> {
    let mut args = config.dpdk.eal_args.clone();
    let chose_lcores = args
        .iter()
        .any(|a| a == "-l" || a == "-c" || a.starts_with("--lcores") || a.starts_with("-l"));
    if !chose_lcores {
        args.push("-l".into());
        args.push(config.workers.control_core.to_string());
    }
    args
}

fn engine_spec(config: &Config) -> Result<EngineSpec, String> {
    // The table ports: the ports in order, then their VLAN sub-interfaces.
    let interfaces = config.interfaces();
    let index_of = |name: &str| {
        interfaces
            .iter()
            .position(|p| p.name == name)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or_else(|| format!("route names unknown port {name:?}"))
    };
    let routes = config
        .routes
        .iter()
        .map(|r| {
            Ok((
                r.prefix,
                NextHop {
                    port: index_of(&r.port)?,
                    via: r.via,
                },
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (tenants, tunnels, tunnel_keys) = tenants_and_tunnels(config, &interfaces, &index_of)?;
    Ok(EngineSpec {
        name: config.node.name.clone(),
        mbufs: config.dpdk.mbufs,
        mbuf_cache: config.dpdk.mbuf_cache,
        worker_cores: config.workers.cores.clone(),
        rx_burst: config.workers.rx_burst,
        idle_sleep_max_us: config.workers.idle_sleep_max_us,
        ports: interfaces
            .iter()
            .enumerate()
            .map(|(k, i)| {
                // Ports come first, so a port's interface index is its own.
                let port = &config.ports[i.vlan.map_or(k, |(p, _)| p)];
                PortSpec {
                    name: i.name.clone(),
                    device: port.device.clone(),
                    role: match i.role {
                        PortRole::Lan => "lan".into(),
                        PortRole::Wan => "wan".into(),
                    },
                    mac: port.mac,
                    mtu: i.mtu,
                    addresses: i.addresses.clone(),
                    vlan: i.vlan.map(|(p, vid)| (p as u16, vid)),
                    internet: i.role == PortRole::Wan && !i.trusted,
                }
            })
            .collect(),
        routes,
        static_neighbors: Vec::new(),
        tenants,
        tunnels,
        tunnel_keys,
        backend: Backend::default(),
        policies: policies(config, &index_of)?,
        path_monitor: monitor_config(&config.path_monitor),
        probe_port: if config.path_monitor.enabled {
            config.path_monitor.port
        } else {
            0
        },
    })
}

/// The steering policies, with their SLA classes, tenants and circuits resolved.
fn policies(
    config: &Config,
    index_of: &dyn Fn(&str) -> Result<u16, String>,
) -> Result<Vec<policy::Policy>, String> {
    const MS: u64 = 1_000_000;
    config
        .policies
        .iter()
        .map(|p| {
            let sla = p
                .sla
                .as_ref()
                .and_then(|n| config.sla_classes.iter().find(|k| &k.name == n))
                .map(|k| policy::Sla {
                    max_rtt_ns: k.max_latency_ms.map(|v| u64::from(v) * MS),
                    max_loss_pct: k.max_loss_pct,
                    max_jitter_ns: k.max_jitter_ms.map(|v| u64::from(v) * MS),
                });
            Ok(policy::Policy {
                name: p.name.clone(),
                tenant: config
                    .tenants
                    .iter()
                    .position(|t| t.name == p.tenant)
                    .ok_or_else(|| format!("policy {}: unknown tenant {}", p.name, p.tenant))?
                    as u16,
                src: p.matches.src.clone(),
                dst: p.matches.dst.clone(),
                protocol: p.matches.protocol,
                src_ports: p.matches.src_ports.clone(),
                dst_ports: p.matches.dst_ports.clone(),
                dscp: p.matches.dscp.iter().fold(0u64, |m, &d| m | 1 << d),
                sla_name: p.sla.clone(),
                sla,
                mode: match p.mode {
                    SteeringMode::Best => policy::Mode::Best,
                    SteeringMode::Spread => policy::Mode::Spread,
                    SteeringMode::Replicate => policy::Mode::Replicate,
                    SteeringMode::Fec => policy::Mode::Fec(p.fec_k),
                    SteeringMode::Breakout => policy::Mode::Breakout,
                    SteeringMode::Drop => policy::Mode::Drop,
                },
                circuits: p
                    .circuits
                    .iter()
                    .map(|c| index_of(c))
                    .collect::<Result<_, _>>()?,
                weights: p.weights.clone(),
                encrypt: p.encrypt,
            })
        })
        .collect()
}

/// The path monitors' settings from `path_monitor`.
fn monitor_config(m: &sdwan_conf::PathMonitor) -> MonitorConfig {
    const MS: u64 = 1_000_000;
    MonitorConfig {
        idle_interval: u64::from(m.idle_interval_ms) * MS,
        down_after: m.down_after,
        holddown: u64::from(m.holddown_ms) * MS,
        min_timeout: u64::from(m.min_timeout_ms) * MS,
        ..MonitorConfig::with_interval(u64::from(m.interval_ms) * MS)
    }
}

type Tunnels = (Vec<TenantSpec>, Vec<TunnelInfo>, Vec<TunnelKeys>);

/// The tenants, and one tunnel per (peer, SA) with its keys. The configuration was validated:
/// names resolve, and every SA has its key bytes (`key_file`s were read by `conf`).
fn tenants_and_tunnels(
    config: &Config,
    interfaces: &[sdwan_conf::Interface],
    index_of: &dyn Fn(&str) -> Result<u16, String>,
) -> Result<Tunnels, String> {
    let mut tunnels = Vec::new();
    let mut keys = Vec::new();
    // (peer name, tenant name) -> tunnel index.
    let mut by_pair = std::collections::HashMap::new();
    for p in &config.peers {
        let circuits = p
            .circuits
            .iter()
            .map(|c| {
                let port = index_of(&c.port)?;
                let local = interfaces[usize::from(port)]
                    .addresses
                    .iter()
                    .find(|n| n.contains(&c.address))
                    .or_else(|| {
                        interfaces[usize::from(port)]
                            .addresses
                            .iter()
                            .find(|n| n.addr().is_ipv4() == c.address.is_ipv4())
                    })
                    .map(|n| n.addr())
                    .ok_or_else(|| format!("port {} has no address for {}", c.port, c.address))?;
                let iface = &interfaces[usize::from(port)];
                Ok(CircuitInfo {
                    port,
                    local,
                    remote: c.address,
                    transport: iface.transport.clone(),
                    trusted: iface.trusted,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        for sa in &p.sas {
            let tenant = config
                .tenants
                .iter()
                .position(|t| t.name == sa.tenant)
                .ok_or_else(|| format!("unknown tenant {}", sa.tenant))?;
            let (kind, senders, loopbacks) = match p.kind {
                PeerType::Overlay => (
                    TunnelKind::Overlay,
                    tunnel::SENDERS,
                    config.node.loopback.zip(p.loopback),
                ),
                PeerType::Ipsec => (
                    match p.encapsulation {
                        Encapsulation::None => TunnelKind::Esp,
                        Encapsulation::Udp => TunnelKind::EspUdp,
                    },
                    1,
                    None,
                ),
            };
            let secret = |k: &sdwan_conf::SaKeys| {
                k.key
                    .as_ref()
                    .map(|s| zeroize::Zeroizing::new(s.expose().to_vec()))
                    .ok_or_else(|| format!("peer {}: SA for {} has no key", p.name, sa.tenant))
            };
            by_pair.insert((p.name.clone(), sa.tenant.clone()), tunnels.len() as u16);
            tunnels.push(TunnelInfo {
                peer: p.name.clone(),
                tenant: tenant as u16,
                kind,
                loopbacks,
                circuits: circuits.clone(),
                out_spi: sa.out.spi,
                in_spi: sa.inbound.spi,
                senders,
                suite: match sa.suite {
                    sdwan_conf::Suite::Aes128Gcm16 => Suite::Aes128Gcm,
                    sdwan_conf::Suite::Aes256Gcm16 => Suite::Aes256Gcm,
                },
                esn: sa.esn,
                replay_window: sa.replay_window,
                first_slot: 0,
                peer_index: None,
                out_key: 0,
                in_key: 0,
            });
            keys.push(TunnelKeys {
                out: secret(&sa.out)?,
                inbound: secret(&sa.inbound)?,
            });
        }
    }
    let tenants = config
        .tenants
        .iter()
        .map(|t| {
            let lan_ports = t
                .lan_ports
                .iter()
                .map(|n| index_of(n))
                .collect::<Result<Vec<_>, _>>()?;
            let routes = t
                .routes
                .iter()
                .map(|r| {
                    let hop = match (&r.peer, &r.port) {
                        (Some(peer), _) => {
                            let tunnel = *by_pair
                                .get(&(peer.clone(), t.name.clone()))
                                .ok_or_else(|| format!("peer {peer} has no SA for {}", t.name))?;
                            let circuit = match &r.circuit {
                                Some(c) => Some(
                                    config
                                        .peers
                                        .iter()
                                        .find(|p| &p.name == peer)
                                        .and_then(|p| p.circuits.iter().position(|x| &x.port == c))
                                        .ok_or_else(|| format!("peer {peer} has no circuit {c}"))?
                                        as u8,
                                ),
                                None => None,
                            };
                            TenantHop::Tunnel { tunnel, circuit }
                        }
                        (None, Some(port)) => TenantHop::Local(NextHop {
                            port: index_of(port)?,
                            via: r.via,
                        }),
                        (None, None) => return Err("a tenant route without peer or port".into()),
                    };
                    Ok((r.prefix, hop))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(TenantSpec {
                name: t.name.clone(),
                vni: t.vni,
                lan_ports,
                routes,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((tenants, tunnels, keys))
}

fn bgp_log(m: &str) {
    log!("bgp: {m}");
}

/// The BGP speaker with its sockets, when the configuration has a `bgp` section.
fn start_bgp(config: &Config) -> Result<Option<bgp::BgpIo>, String> {
    let Some(speaker) = bgp::speaker(config)? else {
        return Ok(None);
    };
    let listen = config
        .bgp
        .as_ref()
        .and_then(|b| b.listen.as_ref())
        .map(|l| std::net::SocketAddr::new(l.address, l.port));
    let mut io = bgp::BgpIo::new(speaker, listen, bgp_log)
        .map_err(|e| format!("bgp: listen on {listen:?}: {e}"))?;
    io.start(Instant::now());
    log!(
        "bgp: AS {} router id {}, {} neighbor(s){}",
        io.speaker.config().asn,
        io.speaker.config().router_id,
        io.speaker.sessions().count(),
        listen.map_or_else(String::new, |l| format!(", listening on {l}"))
    );
    Ok(Some(io))
}

fn install_signal_handlers() {
    // SAFETY: installs async-signal-safe handlers that only store to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// A pure route reflector (`bgp.route_reflector` and no ports): BGP and the management
/// socket, no data plane.
fn run_reflector(config: &Config) -> Result<(), String> {
    install_signal_handlers();
    let server = mgmt::Server::bind(&config.management.socket).map_err(|e| e.to_string())?;
    log!(
        "starting node {} as a route reflector (no data plane); management socket {}",
        config.node.name,
        server.path().display()
    );
    let started = Instant::now();
    let mut bgp = start_bgp(config)?.ok_or("a reflector needs the bgp section")?;
    while !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        bgp.run(now);
        server.poll(|req| handle_reflector(req, config, &mut bgp, started));
        std::thread::sleep(bgp.idle_for(Instant::now(), Duration::from_millis(5)));
    }
    log!("stopping");
    bgp.stop(Instant::now());
    Ok(())
}

fn run(config: &Config) -> Result<(), String> {
    if config.ports.is_empty() {
        return run_reflector(config);
    }
    install_signal_handlers();
    let server = mgmt::Server::bind(&config.management.socket).map_err(|e| e.to_string())?;
    let args = eal_args(config);
    log!(
        "starting node {} (EAL {})",
        config.node.name,
        args.join(" ")
    );
    eal::init(&args).map_err(|e| e.to_string())?;
    let spec = engine_spec(config)?;
    let engine = Engine::start(spec).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in engine.interfaces() {
        log!(
            "port {} ({}) {} mac {} addresses {}",
            i.name,
            i.driver,
            i.device,
            i.mac,
            i.addresses.join(" ")
        );
    }
    log!(
        "{} worker(s) on core(s) {:?}; management socket {}",
        config.workers.cores.len(),
        config.workers.cores,
        server.path().display()
    );

    let mut bgp = start_bgp(config)?;
    let mut overlay = bgp::OverlayBuilder::default();
    let mut next_sa_look = Instant::now();
    let mut next_overlay = Instant::now();
    let mut confirmed = std::collections::HashSet::new();
    while !STOP.load(Ordering::Relaxed) {
        let learned = engine.apply_neighbor_events();
        if learned > 0 {
            log!(
                "learned {learned} neighbor(s); tables now generation {}",
                engine.generation()
            );
        }
        let now = Instant::now();
        let mut sleep = Duration::from_millis(5);
        if let Some(b) = bgp.as_mut() {
            b.run(now);
            // New overlay tables at most every 100 ms: while a reflector sends thousands of
            // routes, one publication takes in many UPDATEs (each costs the workers a resync).
            if now >= next_overlay && b.speaker.take_overlay_changed() {
                next_overlay = now + Duration::from_millis(100);
                overlay.note_keys(&b.speaker, now);
                let learned = overlay.build(config, &b.speaker);
                // Confirmations of SAs that are gone are not needed any more.
                confirmed.retain(|k| overlay.inbound.contains_key(k));
                let (sites, _) = b.speaker.sites().counts();
                engine.set_overlay(&learned);
                log!(
                    "overlay: {} learned tunnel(s) to {sites} site(s), {} route(s); tables now generation {}",
                    learned.tunnels.len(),
                    learned.routes.len(),
                    engine.generation()
                );
                for line in overlay.sending_changes.drain(..) {
                    log!("keys: {line}");
                }
            }
            // Rekey confirmations: an inbound SA of new keys that carried traffic.
            if now >= next_sa_look && !overlay.inbound.is_empty() {
                next_sa_look = now + Duration::from_millis(200);
                for (peer, spi) in engine.inbound_with_traffic() {
                    let base = spi & !0xf;
                    if let Some(&vni) = overlay.inbound.get(&(peer, base)) {
                        if confirmed.insert((peer, base)) {
                            b.inbound_seen(peer, vni, spi, now);
                        }
                    }
                }
            }
            sleep = b.idle_for(Instant::now(), sleep);
        }
        server.poll(|req| {
            handle(
                req,
                config,
                &engine,
                started,
                bgp.as_mut().map(|b| (b, &overlay)),
            )
        });
        std::thread::sleep(sleep);
    }

    log!("stopping");
    if let Some(b) = bgp.as_mut() {
        b.stop(Instant::now());
    }
    let totals = CounterSnapshot::sum(engine.workers().iter().map(|w| &w.counters));
    engine.shutdown();
    drop(server);
    eal::cleanup();
    log!(
        "stopped: rx {} tx {} forwarded {} dropped {}",
        totals.rx_packets,
        totals.tx_packets,
        totals.forwarded,
        totals.total_drops()
    );
    Ok(())
}

fn counters(s: &CounterSnapshot) -> api::Counters {
    api::Counters {
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        forwarded: s.forwarded,
        local_replies: s.local_replies,
        solicitations: s.solicitations,
        neighbors_learned: s.neighbors_learned,
        busy_polls: s.busy_polls,
        idle_polls: s.idle_polls,
        sleeps: s.sleeps,
        encrypted: s.encrypted,
        decrypted: s.decrypted,
        handed_off: s.handed_off,
        replicated: s.replicated,
        fec_parity: s.fec_parity,
        fec_rebuilt: s.fec_rebuilt,
        fec_late: s.fec_late,
        reorder_held: s.reorder_held,
        reorder_gaps: s.reorder_gaps,
        clear_out: s.clear_out,
        clear_in: s.clear_in,
        drops: s.drops.iter().cloned().collect(),
    }
}

fn source_name(s: RouteSource) -> String {
    match s {
        RouteSource::Connected => "connected".into(),
        RouteSource::Static => "static".into(),
        RouteSource::Bgp => "bgp".into(),
    }
}

/// The underlay's routes ("default"), then each tenant's.
fn routes(config: &Config, engine: &Engine) -> Vec<api::Route> {
    let port_name = |p: u16| {
        config
            .ports
            .get(usize::from(p))
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let mut v: Vec<api::Route> = engine
        .routes()
        .into_iter()
        .map(|r| api::Route {
            table: api::Route::DEFAULT_TABLE.into(),
            prefix: r.prefix.to_string(),
            port: port_name(r.next_hop.port),
            via: r.next_hop.via.map(|v| v.to_string()),
            peer: None,
            circuit: None,
            source: source_name(r.source),
        })
        .collect();
    let sas = engine.tunnels();
    for r in engine.tenant_routes() {
        let (port, via, peer, circuit) = match r.entry.next_hop {
            TenantHop::Local(nh) => (
                port_name(nh.port),
                nh.via.map(|v| v.to_string()),
                None,
                None,
            ),
            TenantHop::Tunnel { tunnel, circuit } => {
                let t = sas.get(usize::from(tunnel));
                (
                    String::new(),
                    None,
                    t.map(|t| t.peer.clone()),
                    circuit.and_then(|c| {
                        t.and_then(|t| t.circuits.get(usize::from(c)))
                            .map(|c| port_name(c.port))
                    }),
                )
            }
        };
        v.push(api::Route {
            table: r.tenant,
            prefix: r.entry.prefix.to_string(),
            port,
            via,
            peer,
            circuit,
            source: source_name(r.entry.source),
        });
    }
    v
}

fn sa(s: sdwan_dataplane::engine::SaStatus) -> api::Sa {
    api::Sa {
        tenant: s.tenant,
        peer: s.peer,
        kind: s.kind.into(),
        direction: s.direction.into(),
        spi: s.spi,
        suite: s.suite.into(),
        esn: s.esn,
        replay_window: s.replay_window,
        circuits: s.circuits,
        paths: s
            .paths
            .into_iter()
            .map(|p| api::SaPath {
                port: p.port,
                local: p.local.to_string(),
                remote: p.remote.to_string(),
                tunnel_mtu: p.tunnel_mtu,
            })
            .collect(),
        loopbacks: s.loopbacks.map(|(a, b)| (a.to_string(), b.to_string())),
        packets: s.packets,
        bytes: s.bytes,
        replay_drops: s.replay_drops,
        auth_failed: s.auth_failed,
        other_drops: s.other_drops,
        seq: s.seq,
        age_secs: s.age_secs,
        worker: s.worker,
    }
}

/// The BGP requests (an error when BGP is not configured).
fn handle_bgp(
    req: Request,
    config: &Config,
    bgp: Option<(&mut bgp::BgpIo, &bgp::OverlayBuilder)>,
) -> Response {
    let Some((b, overlay)) = bgp else {
        return Response::error("BGP is not configured (no bgp section)");
    };
    let now = Instant::now();
    let data = match req {
        Request::ShowBgpSummary => serde_json::to_value(b.summary(now)),
        Request::ShowBgpRoutes { tenant } => {
            if let Some(t) = &tenant {
                if !config.tenants.iter().any(|x| &x.name == t) {
                    return Response::error(format!("no tenant {t:?}"));
                }
            }
            serde_json::to_value(b.routes(config, tenant.as_deref()))
        }
        Request::ShowSites => serde_json::to_value(overlay.sites(config, &b.speaker, now)),
        Request::RotateKeys { tenant } => match b.rotate_keys(config, tenant.as_deref(), now) {
            Ok(r) => serde_json::to_value(r),
            Err(e) => return Response::error(e),
        },
        _ => return Response::error("not a BGP request"),
    };
    match data {
        Ok(d) => Response::ok(d),
        Err(e) => Response::error(e.to_string()),
    }
}

/// A pure reflector answers the BGP requests and `show version`.
fn handle_reflector(
    req: Request,
    config: &Config,
    b: &mut bgp::BgpIo,
    _started: Instant,
) -> Response {
    match req {
        Request::ShowVersion => match serde_json::to_value(api::Version {
            version: concat!(env!("CARGO_PKG_VERSION"), " (", env!("SDWAN_GIT_REV"), ")").into(),
            dpdk: String::new(),
            node: config.node.name.clone(),
        }) {
            Ok(d) => Response::ok(d),
            Err(e) => Response::error(e.to_string()),
        },
        Request::ShowBgpSummary | Request::ShowBgpRoutes { .. } | Request::ShowSites => {
            let empty = bgp::OverlayBuilder::default();
            handle_bgp(req, config, Some((b, &empty)))
        }
        _ => Response::error("a route reflector has no data plane: only show bgp and show version"),
    }
}

fn handle(
    req: Request,
    config: &Config,
    engine: &Engine,
    started: Instant,
    bgp: Option<(&mut bgp::BgpIo, &bgp::OverlayBuilder)>,
) -> Response {
    let data = match req {
        Request::ShowBgpSummary
        | Request::ShowBgpRoutes { .. }
        | Request::ShowSites
        | Request::RotateKeys { .. } => {
            return handle_bgp(req, config, bgp);
        }
        Request::ShowInterfaces => serde_json::to_value(
            engine
                .interfaces()
                .into_iter()
                .map(|i| api::Interface {
                    name: i.name,
                    role: i.role,
                    device: i.device,
                    driver: i.driver,
                    port_id: i.port_id,
                    mac: i.mac,
                    mtu: i.mtu,
                    addresses: i.addresses,
                    link_up: i.link.up,
                    speed_mbps: i.link.speed_mbps,
                    rx_packets: i.stats.rx_packets,
                    rx_bytes: i.stats.rx_bytes,
                    tx_packets: i.stats.tx_packets,
                    tx_bytes: i.stats.tx_bytes,
                    rx_missed: i.stats.rx_missed,
                    rx_errors: i.stats.rx_errors,
                    tx_errors: i.stats.tx_errors,
                    rx_no_mbuf: i.stats.rx_no_mbuf,
                })
                .collect::<Vec<_>>(),
        ),
        Request::ShowStats => {
            let workers = engine.workers();
            let total = CounterSnapshot::sum(workers.iter().map(|w| &w.counters));
            serde_json::to_value(api::Stats {
                node: config.node.name.clone(),
                uptime_secs: started.elapsed().as_secs(),
                table_generation: engine.generation(),
                mbufs_free: engine.pool_available(),
                total: counters(&total),
                workers: workers
                    .iter()
                    .map(|w| api::WorkerStats {
                        index: w.index,
                        core: w.core,
                        counters: counters(&w.counters),
                    })
                    .collect(),
            })
        }
        Request::ShowRoutes => serde_json::to_value(routes(config, engine)),
        Request::ShowSa { spi } => {
            let all: Vec<api::Sa> = engine.sas().into_iter().map(sa).collect();
            match spi {
                None => serde_json::to_value(all),
                Some(spi) => match all.into_iter().find(|s| s.spi == spi) {
                    Some(s) => serde_json::to_value(s),
                    None => return Response::error(format!("no SA with SPI 0x{spi:08x}")),
                },
            }
        }
        Request::ShowPaths => serde_json::to_value(
            engine
                .paths()
                .into_iter()
                .map(|p| api::Path {
                    peer: p.peer,
                    port: p.port,
                    transport: p.transport,
                    trusted: p.trusted,
                    local: p.local.to_string(),
                    remote: p.remote.to_string(),
                    state: p.state.into(),
                    active: p.active,
                    sla_met: p.sla_met,
                    since_secs: p.since_secs,
                    rtt_p50_ms: p.rtt_p50_ms,
                    rtt_p99_ms: p.rtt_p99_ms,
                    loss_pct: p.loss_pct,
                    jitter_ms: p.jitter_ms,
                    probes_sent: p.probes_sent,
                    probes_answered: p.probes_answered,
                    probes_lost: p.probes_lost,
                    downs: p.downs,
                    false_alarms: p.false_alarms,
                    packets_out: p.packets_out,
                    packets_in: p.packets_in,
                })
                .collect::<Vec<_>>(),
        ),
        Request::ShowFlows => serde_json::to_value(
            engine
                .flows()
                .into_iter()
                .map(|f| api::Flow {
                    tenant: f.tenant,
                    src: f.src.to_string(),
                    dst: f.dst.to_string(),
                    protocol: f.protocol,
                    src_port: f.src_port,
                    dst_port: f.dst_port,
                    dscp: f.dscp,
                    policy: f.policy,
                    mode: f.mode.into(),
                    sla: f.sla,
                    peer: f.peer,
                    path: f.path,
                    second: f.second,
                    packets: f.packets,
                    idle_secs: f.idle_secs,
                    worker: f.worker,
                })
                .collect::<Vec<_>>(),
        ),
        Request::ShowPolicies => serde_json::to_value(
            engine
                .classes()
                .into_iter()
                .map(|c| api::PolicyPaths {
                    policy: c.policy,
                    tenant: c.tenant,
                    mode: c.mode.into(),
                    sla: c.sla,
                    peer: c.peer,
                    path: c.path,
                    second: c.second,
                    moves: c.moves,
                })
                .collect::<Vec<_>>(),
        ),
        Request::ShowNeighbors => serde_json::to_value(
            engine
                .neighbors()
                .into_iter()
                .map(|n| api::Neighbor {
                    port: n.port,
                    ip: n.ip.to_string(),
                    mac: n.mac,
                })
                .collect::<Vec<_>>(),
        ),
        Request::ShowVersion => serde_json::to_value(api::Version {
            version: concat!(env!("CARGO_PKG_VERSION"), " (", env!("SDWAN_GIT_REV"), ")").into(),
            dpdk: eal::version(),
            node: config.node.name.clone(),
        }),
    };
    match data {
        Ok(d) => Response::ok(d),
        Err(e) => Response::error(e.to_string()),
    }
}
