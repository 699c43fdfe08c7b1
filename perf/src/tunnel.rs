//! `sdwan-perf tunnel`: encrypt and decrypt per worker core, measured like the foundation's
//! `forward` scenario (one worker, `net_pcap` replaying a capture from memory with
//! `infinite_rx=1`, a `net_null` sink), with the forwarding worker on the same frames in the
//! same run as the first reference. Scenarios, each at 64 B, IMIX (7:4:1 of 64/576/1500-byte
//! frames) and 1420 B client frames:
//! - `forward`: the foundation's router (no tenant, no tunnel);
//! - `encrypt esp` / `encrypt overlay`: a tenant's LAN frames sealed into plain RFC 4303
//!   tunnel mode / into the overlay (ESP inside VXLAN) and sent out of the WAN port;
//! - `decrypt esp` / `decrypt overlay`: the same, the other way: a capture of sealed frames
//!   (made by the product's own pipeline acting as the peer) opened and routed to the LAN.
//!
//! AES-128-GCM with ESN, the default backend. The decrypting SA has anti-replay off (replay
//! window 0), because the capture repeats its sequence numbers on every pass; the sending SA
//! counts up as it would on a wire. The WAN port's MTU is 9000 so that no size meets the
//! tunnel MTU. Mpps counts client packets; Gbit/s counts the client frames' bytes.
//!
//! The matrix's dimensions: `--flows N` (distinct 5-tuples in the capture: destinations in
//! 10.2.0.0/16, then source ports), `--circuits N` (the tunnel spreads its flows over N WAN
//! ports, each a `net_null` sink; the decrypting side receives on the first), `--workers N`
//! (N worker cores, each with its own queue: `net_pcap` gets the capture once per queue).
//! In the same run, `dpdk-testpmd` in io mode on each scenario's own input capture is the
//! framework's ceiling, and `dpdk-test-crypto-perf` (one core; only with one worker) the
//! AEAD's. With `--json` every measurement is one line in the matrix's row format
//! (`report::Row`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use sdwan_dataplane::engine::TenantSpec;
use sdwan_dataplane::esp::{Backend, Suite};
use sdwan_dataplane::forward::{self, ByteBuf, Context, PacketBuf, Verdict};
use sdwan_dataplane::route::{NextHop, TenantHop};
use sdwan_dataplane::tables::{NeighborKey, PortInfo, Tables};
use sdwan_dataplane::tunnel::{self, CircuitInfo, SaState, TunnelInfo, TunnelKeys, TunnelKind};
use sdwan_dataplane::wire::checksum;
use sdwan_dataplane::{eal, pcapfile, EngineSpec, PortSpec};

use crate::report::Row;
use zeroize::Zeroizing;

const ROUTER_LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const ROUTER_WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x09];
const PEER_WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
const PEER_LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const KEY_OUT: [u8; 20] = [0x5a; 20];
const KEY_IN: [u8; 20] = [0xa5; 20];
const SPI_OUT: u32 = 0x1000;
const SPI_IN: u32 = 0x2000;
const VNI: u32 = 1001;
const WAN_MTU: u16 = 9000;
/// The most WAN circuits a tunnel has.
const MAX_CIRCUITS: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    Forward,
    Encrypt,
    Decrypt,
}

struct Options {
    seconds: u64,
    rounds: usize,
    sizes: Vec<String>,
    main_core: usize,
    worker_core: usize,
    /// Worker cores: `workers` of them from `worker_core` on.
    workers: usize,
    flows: usize,
    circuits: usize,
    /// Also run dpdk-testpmd io on each scenario's input as a same-run reference.
    testpmd: bool,
    json: bool,
    /// Scenario names to run (all when empty); `forward` always runs, as the reference.
    only: Vec<String>,
    /// Also run dpdk-test-crypto-perf (the AEAD alone) as a same-run reference.
    crypto_perf: bool,
    backend: Backend,
}

const USAGE: &str = "usage: sdwan-perf tunnel [--seconds N] [--rounds N] [--sizes 64,imix,1420]
                         [--only 'encrypt esp,decrypt overlay,...'] [--backend NAME]
                         [--flows N] [--circuits N] [--workers N]
                         [--no-crypto-perf] [--no-testpmd] [--main-core C]
                         [--worker-core C] [--json]";

pub fn main(mut args: impl Iterator<Item = String>) {
    let mut o = Options {
        seconds: 4,
        rounds: 2,
        sizes: vec!["64".into(), "imix".into(), "1420".into()],
        main_core: 0,
        worker_core: 1,
        workers: 1,
        flows: 1000,
        circuits: 1,
        testpmd: true,
        json: false,
        only: Vec::new(),
        crypto_perf: true,
        backend: Backend::default(),
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
            "--rounds" => o.rounds = num("--rounds").max(1),
            "--main-core" => o.main_core = num("--main-core"),
            "--worker-core" => o.worker_core = num("--worker-core"),
            "--workers" => o.workers = num("--workers"),
            "--flows" => o.flows = num("--flows"),
            "--circuits" => o.circuits = num("--circuits"),
            "--no-testpmd" => o.testpmd = false,
            "--sizes" => {
                o.sizes = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--json" => o.json = true,
            "--no-crypto-perf" => o.crypto_perf = false,
            "--backend" => {
                let name = args.next().unwrap_or_default();
                o.backend = *Backend::ALL
                    .iter()
                    .find(|b| b.name() == name)
                    .unwrap_or_else(|| {
                        let names: Vec<_> = Backend::ALL.iter().map(|b| b.name()).collect();
                        eprintln!("--backend: one of {}", names.join(", "));
                        std::process::exit(2)
                    });
            }
            "--only" => {
                o.only = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            _ => {
                eprintln!("unknown argument {a}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    if o.seconds < 2 {
        eprintln!("--seconds must be at least 2");
        std::process::exit(2);
    }
    if !(1..=1_000_000).contains(&o.flows)
        || !(1..=MAX_CIRCUITS).contains(&o.circuits)
        || !(1..=64).contains(&o.workers)
    {
        eprintln!("--flows must be 1..1000000, --circuits 1..{MAX_CIRCUITS}, --workers 1..64");
        std::process::exit(2);
    }
    for s in &o.sizes {
        if s != "imix" && !s.parse::<usize>().is_ok_and(|n| (64..=1514).contains(&n)) {
            eprintln!("--sizes: {s:?} is neither imix nor a frame size 64..1514");
            std::process::exit(2);
        }
    }
    let eal_args: Vec<String> = crate::EAL_ARGS
        .iter()
        .chain(&["-l"])
        .map(|s| s.to_string())
        .chain([o.main_core.to_string()])
        .collect();
    eal::init(&eal_args).unwrap_or_else(|e| {
        eprintln!("sdwan-perf: {e}");
        std::process::exit(1)
    });
    let dir = std::env::temp_dir().join(format!("sdwan-perf-tunnel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let worker_cores: Vec<usize> = (o.worker_core..o.worker_core + o.workers).collect();
    let mut rows: Vec<Row> = Vec::new();
    let mut run_id = 0usize;
    for size in &o.sizes {
        let lan = lan_frames(size, o.flows);
        let avg_bytes = lan.iter().map(Vec::len).sum::<usize>() as f64 / lan.len() as f64;
        let lan_pcap = dir.join(format!("lan-{size}.pcap"));
        pcapfile::write(&lan_pcap, &lan).expect("write capture");
        let frames = lan.len();
        drop(lan);
        let selected: Vec<usize> = (0..SCENARIOS.len())
            .filter(|&i| i == 0 || o.only.is_empty() || o.only.iter().any(|x| x == SCENARIOS[i].0))
            .collect();
        let mut wan_pcaps = Vec::new();
        for kind in [TunnelKind::Esp, TunnelKind::Overlay] {
            let wanted = selected
                .iter()
                .any(|&i| SCENARIOS[i].1 == Dir::Decrypt && SCENARIOS[i].2 == Some(kind));
            if !wanted {
                continue;
            }
            let p = dir.join(format!("wan-{size}-{}.pcap", kind.name()));
            let sealed = sealed_by_peer(&peer_frames(size, o.flows), kind);
            let sealed_bytes =
                sealed.iter().map(Vec::len).sum::<usize>() as f64 / sealed.len() as f64;
            pcapfile::write(&p, &sealed).expect("write capture");
            wan_pcaps.push((kind, p, sealed_bytes));
        }
        // The inputs the scenarios read: the LAN capture, and the sealed captures they decrypt.
        let mut inputs: Vec<(&str, &Path, f64)> = vec![("lan", lan_pcap.as_path(), avg_bytes)];
        for (k, p, b) in &wan_pcaps {
            inputs.push((k.name(), p.as_path(), *b));
        }
        let mut best = [0f64; SCENARIOS.len()];
        let mut all: Vec<Vec<f64>> = vec![Vec::new(); SCENARIOS.len()];
        let mut testpmd: Vec<Vec<f64>> = vec![Vec::new(); inputs.len()];
        let mut crypto: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for _round in 0..o.rounds {
            if o.crypto_perf && o.workers == 1 {
                for (k, op) in ["encrypt", "decrypt"].into_iter().enumerate() {
                    match crypto_perf(&o, size, op) {
                        Ok(m) => crypto[k].push(m),
                        Err(e) => eprintln!("sdwan-perf: dpdk-test-crypto-perf {op}: {e}"),
                    }
                }
            }
            if o.testpmd {
                for (j, (_, pcap, _)) in inputs.iter().enumerate() {
                    match crate::run_testpmd(
                        pcap,
                        frames,
                        o.main_core,
                        &worker_cores,
                        "io",
                        o.seconds,
                    ) {
                        Ok(m) => testpmd[j].push(m),
                        Err(e) => eprintln!("sdwan-perf: dpdk-testpmd io: {e}"),
                    }
                }
            }
            for &i in &selected {
                let (_, dir_, kind) = SCENARIOS[i];
                let pcap = match (dir_, kind) {
                    (Dir::Decrypt, Some(k)) => wan_pcaps
                        .iter()
                        .find(|(x, _, _)| *x == k)
                        .expect("capture")
                        .1
                        .as_path(),
                    _ => lan_pcap.as_path(),
                };
                run_id += 1;
                let mpps = run(&o, &worker_cores, frames, dir_, kind, pcap, run_id);
                all[i].push(mpps);
                best[i] = best[i].max(mpps);
            }
        }
        let best_of = |v: &[f64]| v.iter().copied().reduce(f64::max);
        let method = format!(
            "in-process, net_pcap(infinite_rx) -> net_null, best of {} rounds of {} s",
            o.rounds, o.seconds
        );
        let base_row =
            |scenario: &str, mpps: f64, bytes: f64, rounds: Vec<f64>, method: &str| Row {
                scenario: scenario.into(),
                size: size.clone(),
                flows: o.flows as u64,
                circuits: 0,
                workers: o.workers as u32,
                mpps,
                gbit_s: mpps * bytes * 8.0 / 1e3,
                latency_us: None,
                loss_pct: None,
                testpmd_io_mpps: None,
                crypto_perf_mpps: None,
                method: method.into(),
                rounds,
            };
        for &i in &selected {
            let (name, dir_, kind) = SCENARIOS[i];
            let input = match (dir_, kind) {
                (Dir::Decrypt, Some(k)) => k.name(),
                _ => "lan",
            };
            let j = inputs.iter().position(|x| x.0 == input).expect("input");
            let mut row = base_row(name, best[i], avg_bytes, all[i].clone(), &method);
            row.circuits = if kind.is_some() { o.circuits as u32 } else { 0 };
            row.testpmd_io_mpps = best_of(&testpmd[j]);
            row.crypto_perf_mpps = match dir_ {
                Dir::Encrypt => best_of(&crypto[0]),
                Dir::Decrypt => best_of(&crypto[1]),
                Dir::Forward => None,
            };
            rows.push(row);
        }
        for (j, (input, _, bytes)) in inputs.iter().enumerate() {
            if let Some(m) = best_of(&testpmd[j]) {
                let name = if *input == "lan" {
                    "testpmd io".to_string()
                } else {
                    format!("testpmd io ({input} sealed)")
                };
                let what = format!("dpdk-testpmd --forward-mode=io, {method}");
                rows.push(base_row(&name, m, *bytes, testpmd[j].clone(), &what));
            }
        }
        for (k, name) in ["crypto-perf encrypt", "crypto-perf decrypt"]
            .into_iter()
            .enumerate()
        {
            if let Some(m) = best_of(&crypto[k]) {
                let what = "dpdk-test-crypto-perf, crypto_aesni_gcm, AES-128-GCM, one core";
                rows.push(base_row(name, m, avg_bytes, crypto[k].clone(), what));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if o.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r).expect("row"));
        }
    } else {
        println!(
            "scenario  tunnel, AES-128-GCM (ESN, backend {}), {} worker core(s), net_pcap(infinite_rx) -> net_null, best of {} rounds of {} s",
            o.backend.name(),
            o.workers,
            o.rounds,
            o.seconds
        );
        print!("{}", crate::report::markdown(&rows));
    }
}

const SCENARIOS: [(&str, Dir, Option<TunnelKind>); 5] = [
    ("forward", Dir::Forward, None),
    ("encrypt esp", Dir::Encrypt, Some(TunnelKind::Esp)),
    ("encrypt overlay", Dir::Encrypt, Some(TunnelKind::Overlay)),
    ("decrypt esp", Dir::Decrypt, Some(TunnelKind::Esp)),
    ("decrypt overlay", Dir::Decrypt, Some(TunnelKind::Overlay)),
];

/// `dpdk-test-crypto-perf` with `crypto_aesni_gcm` (AES-128-GCM, the AEAD alone, no packet
/// I/O) on the size class's buffer sizes: Mpps of the class's mix (for IMIX, 7:4:1 of the
/// three sizes' times per operation).
fn crypto_perf(o: &Options, size: &str, op: &'static str) -> Result<f64, String> {
    let sizes: Vec<usize> = if size == "imix" {
        vec![64, 576, 1500]
    } else {
        vec![size.parse().unwrap_or(64)]
    };
    let opts = crate::cryptoperf::Options {
        sizes: sizes.clone(),
        total_ops: 4_000_000,
        main_core: o.main_core,
        worker_core: o.worker_core,
        ..crate::cryptoperf::Options::default()
    };
    let rows = crate::cryptoperf::run(&opts, op)?;
    let mpps = |s: usize| rows.iter().find(|r| r.size == s).map_or(0.0, |r| r.mpps);
    if size == "imix" {
        let (a, b, c) = (mpps(64), mpps(576), mpps(1500));
        if a <= 0.0 || b <= 0.0 || c <= 0.0 {
            return Err("no rate for an IMIX size".into());
        }
        Ok(12.0 / (7.0 / a + 4.0 / b + 1.0 / c))
    } else {
        Ok(mpps(sizes[0]))
    }
}

/// The frame sizes of a capture of `flows` flows: one frame per flow; IMIX cycles 7 x 64,
/// 4 x 576, 1 x 1500, and its capture is rounded up to whole cycles (frame `i` belongs to
/// flow `i % flows`), so that even one flow sees the whole mix.
fn sizes_of(size: &str, flows: usize) -> Vec<usize> {
    if size == "imix" {
        let pattern = [64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576, 64];
        let n = flows.div_ceil(pattern.len()) * pattern.len();
        (0..n).map(|i| pattern[i % pattern.len()]).collect()
    } else {
        vec![size.parse().unwrap_or(64); flows]
    }
}

/// Flow `i`'s far-side address (in 10.2.0.0/16) and source port: the address varies first,
/// then the port, so up to 65,536 flows differ in address and more also in port.
fn flow(i: usize) -> ([u8; 4], u16) {
    ([10, 2, (i >> 8) as u8, i as u8], 1024 + (i >> 16) as u16)
}

/// A UDP frame `src` -> `dst` of `len` bytes to `dst_mac`.
fn udp_frame(
    len: usize,
    dst_mac: &[u8; 6],
    src_mac: &[u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    port: u16,
) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(dst_mac);
    f[6..12].copy_from_slice(src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&port.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(total - 20).to_be_bytes());
    f
}

/// Our LAN host to `flows` flows into 10.2.0.0/16.
fn lan_frames(size: &str, flows: usize) -> Vec<Vec<u8>> {
    sizes_of(size, flows)
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let (far, port) = flow(i % flows);
            udp_frame(len, &ROUTER_LAN_MAC, &HOST_MAC, [10, 1, 0, 2], far, port)
        })
        .collect()
}

/// The peer's LAN hosts (`flows` flows) to our LAN host, as the peer's LAN sends them.
fn peer_frames(size: &str, flows: usize) -> Vec<Vec<u8>> {
    sizes_of(size, flows)
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let (far, port) = flow(i % flows);
            udp_frame(len, &PEER_LAN_MAC, &HOST_MAC, far, [10, 1, 0, 2], port)
        })
        .collect()
}

/// The tunnel between us (`.1` on every circuit) and the peer (`.2`); circuit `c` is WAN port
/// `c + 1` on 198.18.(c+1).0/24.
fn tunnel_info(kind: TunnelKind, us: bool, circuits: usize) -> TunnelInfo {
    let (me, them) = if us { (1u8, 2u8) } else { (2, 1) };
    TunnelInfo {
        peer: if us { "peer".into() } else { "us".into() },
        tenant: 0,
        kind,
        loopbacks: (kind == TunnelKind::Overlay).then_some((
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, me)),
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, them)),
        )),
        circuits: (0..circuits)
            .map(|c| CircuitInfo {
                port: c as u16 + 1,
                local: IpAddr::V4(Ipv4Addr::new(198, 18, c as u8 + 1, me)),
                remote: IpAddr::V4(Ipv4Addr::new(198, 18, c as u8 + 1, them)),
                transport: "internet".into(),
                trusted: false,
            })
            .collect(),
        out_spi: if us { SPI_OUT } else { SPI_IN },
        in_spi: if us { SPI_IN } else { SPI_OUT },
        senders: if kind == TunnelKind::Overlay {
            tunnel::SENDERS
        } else {
            1
        },
        suite: Suite::Aes128Gcm,
        esn: true,
        // Our inbound SA sees the capture's sequence numbers again on every pass.
        replay_window: if us { 0 } else { 1024 },
        first_slot: 0,
        peer_index: None,
        out_key: 0,
        in_key: 0,
    }
}

/// Tenant "blue" on LAN port 0, with `prefix` into tunnel 0.
fn tenant_to(prefix: &str) -> TenantSpec {
    TenantSpec {
        name: "blue".into(),
        vni: VNI,
        lan_ports: vec![0],
        routes: vec![(
            prefix.parse().expect("net"),
            TenantHop::Tunnel {
                tunnel: 0,
                circuit: None,
            },
        )],
    }
}

fn keys(us: bool) -> TunnelKeys {
    let (out, inbound) = if us {
        (KEY_OUT, KEY_IN)
    } else {
        (KEY_IN, KEY_OUT)
    };
    TunnelKeys {
        out: Zeroizing::new(out.to_vec()),
        inbound: Zeroizing::new(inbound.to_vec()),
    }
}

/// The frames the peer puts on the wire for `frames` from its LAN: the product's own
/// pipeline, acting as the peer, seals them.
fn sealed_by_peer(frames: &[Vec<u8>], kind: TunnelKind) -> Vec<Vec<u8>> {
    let ports = vec![
        PortInfo::new(
            "lan0",
            PEER_LAN_MAC,
            1500,
            &["10.2.0.1/16".parse().expect("net")],
        ),
        PortInfo::new(
            "inet",
            PEER_WAN_MAC,
            WAN_MTU,
            &["198.18.1.2/24".parse().expect("net")],
        ),
    ];
    let mut t = Tables::new(ports, &[]).with_tenants(
        vec![tenant_to("10.1.0.0/16")],
        vec![tunnel_info(kind, false, 1)],
    );
    t.neighbors.insert(
        NeighborKey::new(1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1))),
        ROUTER_WAN_MAC,
    );
    let mut fx = Context {
        sas: SaState::new(0, 1, &t.tunnels, &[keys(false)], Backend::default()).expect("SAs"),
        ..Context::default()
    };
    frames
        .iter()
        .map(|f| {
            let mut b = ByteBuf::new(f);
            match forward::process(&t, 0, &mut b, &mut fx) {
                Verdict::Forward(1) => b.data().to_vec(),
                v => panic!("the peer did not seal a frame: {v:?}"),
            }
        })
        .collect()
}

/// One run of one scenario; returns the workers' Mpps (packets they sent on). `frames` is
/// the capture's length (net_pcap holds it in mbufs, once per worker queue).
fn run(
    o: &Options,
    worker_cores: &[usize],
    frames: usize,
    dir: Dir,
    kind: Option<TunnelKind>,
    pcap: &Path,
    id: usize,
) -> f64 {
    let queues = worker_cores.len();
    let rx_pcaps = vec![format!("rx_pcap={}", pcap.display()); queues].join(",");
    let rx = format!("net_pcap_tun{id},{rx_pcaps},infinite_rx=1");
    let null = |c: usize| format!("net_null_tun{id}_{c},no-rx=1");
    let circuits = if kind.is_some() { o.circuits } else { 1 };
    let mut ports = vec![PortSpec {
        name: "lan0".into(),
        device: if dir == Dir::Decrypt {
            null(0)
        } else {
            rx.clone()
        },
        role: "lan".into(),
        mac: Some(ROUTER_LAN_MAC),
        mtu: 1500,
        addresses: vec!["10.1.0.1/16".parse().expect("net")],
        vlan: None,
        internet: false,
    }];
    for c in 0..circuits {
        ports.push(PortSpec {
            name: format!("inet{c}"),
            device: if dir == Dir::Decrypt && c == 0 {
                rx.clone()
            } else {
                null(c + 1)
            },
            role: "wan".into(),
            mac: Some(ROUTER_WAN_MAC),
            mtu: WAN_MTU,
            addresses: vec![format!("198.18.{}.1/24", c + 1).parse().expect("net")],
            vlan: None,
            internet: false,
        });
    }
    let peer_addr = |c: usize| IpAddr::V4(Ipv4Addr::new(198, 18, c as u8 + 1, 2));
    let (tenants, tunnels, tunnel_keys, routes) = match kind {
        None => (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            vec![(
                "10.2.0.0/16".parse().expect("net"),
                NextHop {
                    port: 1,
                    via: Some(peer_addr(0)),
                },
            )],
        ),
        Some(kind) => (
            vec![tenant_to("10.2.0.0/16")],
            vec![tunnel_info(kind, true, circuits)],
            vec![keys(true)],
            Vec::new(),
        ),
    };
    let mut static_neighbors: Vec<(u16, IpAddr, [u8; 6])> = (0..circuits)
        .map(|c| (c as u16 + 1, peer_addr(c), PEER_WAN_MAC))
        .collect();
    static_neighbors.push((0, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), HOST_MAC));
    // The capture once per queue, plus room for every queue's rings and bursts.
    let mbufs = ((frames + 8192) * queues + 8192).next_power_of_two() - 1;
    let spec = EngineSpec {
        name: format!("tun{id}"),
        mbufs: u32::try_from(mbufs.max(16383)).unwrap_or(u32::MAX),
        mbuf_cache: 256,
        worker_cores: worker_cores.to_vec(),
        rx_burst: 32,
        idle_sleep_max_us: 0,
        ports,
        routes,
        static_neighbors,
        tenants,
        tunnels,
        tunnel_keys,
        backend: o.backend,
        path_monitor: Default::default(),
        probe_port: 0,
        policies: Vec::new(),
    };
    crate::measure_worker(spec, o.seconds, &format!("{dir:?} {kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imix_captures_hold_whole_cycles_even_for_one_flow() {
        for flows in [1, 1000, 100_000] {
            let sizes = sizes_of("imix", flows);
            assert_eq!(sizes.len() % 12, 0);
            assert!(sizes.len() >= flows);
            let count = |n| sizes.iter().filter(|&&s| s == n).count();
            assert_eq!(
                (count(64), count(576), count(1500)),
                (sizes.len() / 12 * 7, sizes.len() / 12 * 4, sizes.len() / 12)
            );
        }
        assert_eq!(sizes_of("64", 1000).len(), 1000);
    }

    #[test]
    fn flows_are_distinct_five_tuples() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            assert!(seen.insert(flow(i)), "flow {i} repeats");
        }
        let frames = lan_frames("64", 3);
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[2][30..34], &[10, 2, 0, 2]);
    }
}
