//! `sdwand`: the SD-WAN edge appliance. Loads the YAML configuration, starts DPDK (EAL, ports,
//! one pinned poll-mode worker per configured core) and runs the control loop on the main
//! thread: it merges what the workers learn into new table generations and serves the
//! management socket, until SIGINT or SIGTERM. Then it stops the workers, stops and closes the
//! ports (which completes pcap captures) and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sdwan_conf::{Config, PortRole};
use sdwan_control::api::{self, Request, Response};
use sdwan_control::mgmt;
use sdwan_dataplane::counters::CounterSnapshot;
use sdwan_dataplane::route::{NextHop, RouteSource};
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
    let index_of = |name: &str| {
        config
            .ports
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
    Ok(EngineSpec {
        name: config.node.name.clone(),
        mbufs: config.dpdk.mbufs,
        mbuf_cache: config.dpdk.mbuf_cache,
        worker_cores: config.workers.cores.clone(),
        rx_burst: config.workers.rx_burst,
        idle_sleep_max_us: config.workers.idle_sleep_max_us,
        ports: config
            .ports
            .iter()
            .map(|p| PortSpec {
                name: p.name.clone(),
                device: p.device.clone(),
                role: match p.role {
                    PortRole::Lan => "lan".into(),
                    PortRole::Wan => "wan".into(),
                },
                mac: p.mac,
                mtu: p.mtu,
                addresses: p.addresses.clone(),
            })
            .collect(),
        routes,
        static_neighbors: Vec::new(),
    })
}

fn run(config: &Config) -> Result<(), String> {
    // SAFETY: installs async-signal-safe handlers that only store to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
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

    while !STOP.load(Ordering::Relaxed) {
        let learned = engine.apply_neighbor_events();
        if learned > 0 {
            log!(
                "learned {learned} neighbor(s); tables now generation {}",
                engine.generation()
            );
        }
        server.poll(|req| handle(req, config, &engine, started));
        std::thread::sleep(Duration::from_millis(5));
    }

    log!("stopping");
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
        drops: s.drops.iter().cloned().collect(),
    }
}

fn handle(req: Request, config: &Config, engine: &Engine, started: Instant) -> Response {
    let data = match req {
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
        Request::ShowRoutes => {
            let ports = engine.interfaces();
            serde_json::to_value(
                engine
                    .routes()
                    .into_iter()
                    .map(|r| api::Route {
                        prefix: r.prefix.to_string(),
                        port: ports
                            .get(usize::from(r.next_hop.port))
                            .map(|p| p.name.clone())
                            .unwrap_or_default(),
                        via: r.next_hop.via.map(|v| v.to_string()),
                        source: match r.source {
                            RouteSource::Connected => "connected".into(),
                            RouteSource::Static => "static".into(),
                        },
                    })
                    .collect::<Vec<_>>(),
            )
        }
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
