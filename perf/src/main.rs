//! `sdwan-perf forward`: the foundation's throughput scenario. The same traffic (a capture of
//! UDP frames replayed endlessly from memory by `net_pcap` with `infinite_rx=1`) goes into
//! sdwand's forwarding worker (IPv4 checks and header checksum, route lookup, TTL, MAC
//! rewrite, counters) and into `dpdk-testpmd` on the same devices, each on one core with a
//! `net_null` sink, in the same run. testpmd runs in three modes, as three references:
//! - `io`: no packet is touched at all (the framework's ceiling);
//! - `macswap`: swaps the two MAC addresses;
//! - `mac`: writes both MAC addresses (the least any router does to a packet).
//!
//! Rounds alternate between all of them so that background load hits each alike; the best
//! round of each is reported, with our ratio to each.

mod cryptoperf;
mod report;
mod tunnel;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sdwan_dataplane::route::NextHop;
use sdwan_dataplane::wire::checksum;
use sdwan_dataplane::{eal, pcapfile, Engine, EngineSpec, PortSpec};

const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];

/// EAL settings shared by both sides, so they run on identically configured DPDK.
const EAL_ARGS: &[&str] = &[
    "--no-huge",
    "-m",
    "1024",
    "--no-pci",
    "--no-shconf",
    "--log-level",
    "*:error",
];

struct Options {
    seconds: u64,
    size: usize,
    flows: usize,
    rounds: usize,
    main_core: usize,
    worker_core: usize,
    json: bool,
}

const USAGE: &str =
    "usage: sdwan-perf forward [--seconds N] [--size BYTES] [--flows N] [--rounds N]
                          [--main-core C] [--worker-core C] [--json]
       sdwan-perf tunnel [--seconds N] [--rounds N] [--sizes 64,imix,1420] [--json]
       sdwan-perf crypto-baseline --help
       sdwan-perf report --rows ROWS.jsonl --out DIR [--meta META.json]";

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("forward") => {}
        Some("crypto-baseline") => return cryptoperf::main(args),
        Some("tunnel") => return tunnel::main(args),
        Some("report") => return report::main(args),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    let mut o = Options {
        seconds: 4,
        size: 64,
        flows: 256,
        rounds: 2,
        main_core: 0,
        worker_core: 1,
        json: false,
    };
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a number\n{USAGE}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--seconds" => o.seconds = num("--seconds") as u64,
            "--size" => o.size = num("--size"),
            "--flows" => o.flows = num("--flows"),
            "--rounds" => o.rounds = num("--rounds"),
            "--main-core" => o.main_core = num("--main-core"),
            "--worker-core" => o.worker_core = num("--worker-core"),
            "--json" => o.json = true,
            _ => {
                eprintln!("unknown argument {a}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if !(60..=1514).contains(&o.size) || o.flows == 0 || o.flows > 65536 || o.seconds < 2 {
        eprintln!("--size must be 60..1514, --flows 1..65536, --seconds at least 2");
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("sdwan-perf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("in.pcap");
    pcapfile::write(&pcap, &frames(o.size, o.flows)).expect("write capture");

    let eal_args: Vec<String> = EAL_ARGS
        .iter()
        .chain(&["-l"])
        .map(|s| s.to_string())
        .chain([o.main_core.to_string()])
        .collect();
    eal::init(&eal_args).unwrap_or_else(|e| {
        eprintln!("sdwan-perf: {e}");
        std::process::exit(1)
    });

    const MODES: [(&str, &str); 3] = [
        ("io", "no packet touched: the framework's ceiling"),
        ("macswap", "swaps the MAC addresses"),
        ("mac", "writes both MAC addresses"),
    ];
    let mut ours = Vec::new();
    let mut testpmd: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..o.rounds {
        ours.push(run_worker(&o, &pcap, round));
        for (i, (mode, _)) in MODES.iter().enumerate() {
            testpmd[i].push(
                run_testpmd(
                    &pcap,
                    o.flows,
                    o.main_core,
                    &[o.worker_core],
                    mode,
                    o.seconds,
                )
                .unwrap_or_else(|e| {
                    eprintln!("sdwan-perf: dpdk-testpmd --forward-mode={mode}: {e}");
                    std::process::exit(1)
                }),
            );
        }
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let o_best = best(&ours);
    let ratio = |t: f64| if t > 0.0 { o_best / t } else { 0.0 };
    if o.json {
        let refs: Vec<_> = MODES
            .iter()
            .zip(&testpmd)
            .map(|((mode, what), rounds)| {
                serde_json::json!({ "testpmd_mode": mode, "what": what, "mpps": best(rounds), "ratio": ratio(best(rounds)), "rounds": rounds })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "scenario": "forward", "frame_bytes": o.size, "flows": o.flows, "worker_cores": 1,
                "devices": "net_pcap(infinite_rx) -> net_null",
                "sdwand_mpps": o_best, "rounds_sdwand": ours, "references": refs,
            })
        );
    } else {
        println!(
            "scenario  forward, {} B frames, {} flows, 1 worker core, net_pcap(infinite_rx) -> net_null, best of {} rounds",
            o.size, o.flows, o.rounds
        );
        println!("{:<26} {:>7}  {:>6}", "", "Mpps", "ratio");
        println!(
            "{:<26} {:>7.2}  {:>6}  IPv4 checks, route, TTL, MAC rewrite; rounds {:?}",
            "sdwand forwarding worker",
            o_best,
            "",
            round2(&ours)
        );
        for ((mode, what), rounds) in MODES.iter().zip(&testpmd) {
            let t = best(rounds);
            println!(
                "{:<26} {:>7.2}  {:>6.3}  {what}; rounds {:?}",
                format!("dpdk-testpmd {mode}"),
                t,
                ratio(t),
                round2(rounds)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn round2(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 100.0).round() / 100.0).collect()
}

/// UDP frames from a LAN host to `flows` destinations in 10.2.0.0/16, addressed to the router.
fn frames(size: usize, flows: usize) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|i| {
            let mut f = vec![0u8; size];
            f[0..6].copy_from_slice(&ROUTER_MAC);
            f[6..12].copy_from_slice(&HOST_MAC);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let total = (size - 14) as u16;
            let ip = &mut f[14..34];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40;
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&[10, 1, 0, 2]);
            ip[16..20].copy_from_slice(&[10, 2, (i >> 8) as u8, i as u8]);
            let c = checksum::checksum(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f[34..36].copy_from_slice(&(1024 + i as u16).to_be_bytes());
            f[36..38].copy_from_slice(&5001u16.to_be_bytes());
            f[38..40].copy_from_slice(&(total - 20).to_be_bytes());
            f
        })
        .collect()
}

fn run_worker(o: &Options, pcap: &Path, round: usize) -> f64 {
    let spec = EngineSpec {
        name: format!("perf{round}"),
        mbufs: 16383,
        mbuf_cache: 256,
        worker_cores: vec![o.worker_core],
        rx_burst: 32,
        idle_sleep_max_us: 0,
        ports: vec![
            PortSpec {
                name: "lan0".into(),
                device: format!(
                    "net_pcap_perf{round},rx_pcap={},infinite_rx=1",
                    pcap.display()
                ),
                role: "lan".into(),
                mac: Some(ROUTER_MAC),
                mtu: 1500,
                addresses: vec!["10.1.0.1/24".parse().unwrap()],
                vlan: None,
                internet: false,
            },
            PortSpec {
                name: "inet".into(),
                device: format!("net_null_perf{round},no-rx=1"),
                role: "wan".into(),
                mac: None,
                mtu: 1500,
                addresses: vec!["198.18.1.1/24".parse().unwrap()],
                vlan: None,
                internet: false,
            },
        ],
        routes: vec![(
            "10.2.0.0/16".parse().unwrap(),
            NextHop {
                port: 1,
                via: Some("198.18.1.2".parse().unwrap()),
            },
        )],
        static_neighbors: vec![(1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_MAC)],
        tenants: Vec::new(),
        tunnels: Vec::new(),
        tunnel_keys: Vec::new(),
        backend: Default::default(),
        path_monitor: Default::default(),
        probe_port: 0,
        policies: Vec::new(),
    };
    measure_worker(spec, o.seconds, "forward")
}

/// Starts the engine, lets it warm up for a second, and returns the Mpps its workers forwarded
/// together over the remaining `seconds - 1`; warns about drops (labelled `what`).
pub(crate) fn measure_worker(spec: EngineSpec, seconds: u64, what: &str) -> f64 {
    let engine = Engine::start(spec).unwrap_or_else(|e| {
        eprintln!("sdwan-perf: {e}");
        std::process::exit(1)
    });
    let forwarded = |e: &Engine| -> u64 { e.workers().iter().map(|w| w.counters.forwarded).sum() };
    std::thread::sleep(Duration::from_secs(1));
    let start = (Instant::now(), forwarded(&engine));
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(1).max(1)));
    let end = (Instant::now(), forwarded(&engine));
    let workers = engine.workers();
    engine.shutdown();
    let mut drops: Vec<(String, u64)> = Vec::new();
    for w in &workers {
        for (reason, n) in w.counters.drops.iter().filter(|d| d.1 > 0) {
            match drops.iter_mut().find(|d| d.0 == *reason) {
                Some(d) => d.1 += n,
                None => drops.push((reason.to_string(), *n)),
            }
        }
    }
    if !drops.is_empty() {
        eprintln!("sdwan-perf: warning: {what}: the workers dropped packets: {drops:?}");
    }
    if end.1 == 0 {
        eprintln!("sdwan-perf: {what}: nothing went through");
    }
    (end.1 - start.1) as f64 / end.0.duration_since(start.0).as_secs_f64() / 1e6
}

/// Runs `dpdk-testpmd` in forwarding mode `mode` on the same kind of devices (the capture
/// replayed from memory into a `net_null` sink), with one forwarding core and queue per entry
/// of `worker_cores`, and returns the median of its per-second transmit rates after the first
/// second. `net_pcap` keeps the whole capture (`frames` frames) in mbufs, per queue.
pub(crate) fn run_testpmd(
    pcap: &Path,
    frames: usize,
    main_core: usize,
    worker_cores: &[usize],
    mode: &str,
    seconds: u64,
) -> Result<f64, String> {
    let queues = worker_cores.len().max(1);
    let cores: Vec<String> = std::iter::once(main_core)
        .chain(worker_cores.iter().copied())
        .map(|c| c.to_string())
        .collect();
    let rx_pcaps = vec![format!("rx_pcap={}", pcap.display()); queues].join(",");
    let mut child = Command::new("stdbuf")
        .args(["-oL", "dpdk-testpmd"])
        .args(EAL_ARGS)
        .arg("-l")
        .arg(cores.join(","))
        .arg(format!("--vdev=net_pcap0,{rx_pcaps},infinite_rx=1"))
        .arg("--vdev=net_null0,no-rx=1")
        .args(["--", "--auto-start", "--stats-period", "1"])
        .arg(format!("--total-num-mbufs={}", (frames + 16384) * queues))
        .arg(format!("--nb-cores={queues}"))
        .arg(format!("--rxq={queues}"))
        .arg(format!("--txq={queues}"))
        .arg(format!("--forward-mode={mode}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start (is the dpdk package installed? run scripts/setup.sh): {e}")
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // The measurement runs `seconds` from testpmd's first non-zero rate: its start-up (loading
    // the capture, slow on a loaded host) and the first period's rate (a partial second) are
    // not part of it. It goes on past `seconds` until at least one rate is in; a testpmd
    // that has none in 30 s is given up on.
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut deadline: Option<Instant> = None;
    let mut rates = Vec::new();
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("NIC statistics for port").nth(1) {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok());
        }
        if port == Some(1) {
            if let Some(v) = line
                .trim()
                .strip_prefix("Tx-pps:")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|&v| v > 0.0)
            {
                if deadline.is_some() {
                    rates.push(v / 1e6);
                } else {
                    deadline = Some(Instant::now() + Duration::from_secs(seconds));
                }
            }
        }
        let now = Instant::now();
        if now > give_up || (!rates.is_empty() && deadline.is_some_and(|d| now > d)) {
            break;
        }
    }
    // SIGINT: testpmd stops its ports and exits cleanly on it.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    if rates.is_empty() {
        return Err("printed no throughput statistics".into());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    Ok(rates[rates.len() / 2])
}
