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
/// Flows (destinations or sources) in each capture.
const FLOWS: usize = 256;

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
    json: bool,
    /// Scenario names to run (all when empty); `forward` always runs, as the reference.
    only: Vec<String>,
    /// Also run dpdk-test-crypto-perf (the AEAD alone) as a same-run reference.
    crypto_perf: bool,
    backend: Backend,
}

const USAGE: &str = "usage: sdwan-perf tunnel [--seconds N] [--rounds N] [--sizes 64,imix,1420]
                         [--only 'encrypt esp,decrypt overlay,...'] [--backend NAME]
                         [--no-crypto-perf] [--main-core C]
                         [--worker-core C] [--json]";

pub fn main(mut args: impl Iterator<Item = String>) {
    let mut o = Options {
        seconds: 4,
        rounds: 2,
        sizes: vec!["64".into(), "imix".into(), "1420".into()],
        main_core: 0,
        worker_core: 1,
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

    const SCENARIOS: [(&str, Dir, Option<TunnelKind>); 5] = [
        ("forward", Dir::Forward, None),
        ("encrypt esp", Dir::Encrypt, Some(TunnelKind::Esp)),
        ("encrypt overlay", Dir::Encrypt, Some(TunnelKind::Overlay)),
        ("decrypt esp", Dir::Decrypt, Some(TunnelKind::Esp)),
        ("decrypt overlay", Dir::Decrypt, Some(TunnelKind::Overlay)),
    ];
    let mut results = Vec::new();
    let mut run_id = 0usize;
    for size in &o.sizes {
        let lan = lan_frames(size);
        let avg_bytes = lan.iter().map(Vec::len).sum::<usize>() as f64 / lan.len() as f64;
        let lan_pcap = dir.join(format!("lan-{size}.pcap"));
        pcapfile::write(&lan_pcap, &lan).expect("write capture");
        let mut wan_pcaps = Vec::new();
        for kind in [TunnelKind::Esp, TunnelKind::Overlay] {
            let p = dir.join(format!("wan-{size}-{}.pcap", kind.name()));
            pcapfile::write(&p, &sealed_by_peer(&peer_frames(size), kind)).expect("write capture");
            wan_pcaps.push((kind, p));
        }
        let mut best = [0f64; SCENARIOS.len()];
        let mut all: Vec<Vec<f64>> = vec![Vec::new(); SCENARIOS.len()];
        let mut crypto = [(0f64, Vec::new()), (0f64, Vec::new())];
        for _round in 0..o.rounds {
            if o.crypto_perf {
                for (k, op) in ["encrypt", "decrypt"].into_iter().enumerate() {
                    match crypto_perf(&o, size, op) {
                        Ok(m) => {
                            crypto[k].0 = f64::max(crypto[k].0, m);
                            crypto[k].1.push(m);
                        }
                        Err(e) => eprintln!("sdwan-perf: dpdk-test-crypto-perf {op}: {e}"),
                    }
                }
            }
            for (i, &(name, dir_, kind)) in SCENARIOS.iter().enumerate() {
                if i > 0 && !o.only.is_empty() && !o.only.iter().any(|x| x == name) {
                    continue;
                }
                let pcap = match (dir_, kind) {
                    (Dir::Decrypt, Some(k)) => {
                        &wan_pcaps.iter().find(|(x, _)| *x == k).expect("capture").1
                    }
                    _ => &lan_pcap,
                };
                run_id += 1;
                let mpps = run(&o, dir_, kind, pcap, run_id);
                all[i].push(mpps);
                best[i] = best[i].max(mpps);
            }
        }
        for (i, (name, dir_, _)) in SCENARIOS.iter().enumerate() {
            if all[i].is_empty() {
                continue;
            }
            let ceiling = match dir_ {
                Dir::Encrypt => crypto[0].0,
                Dir::Decrypt => crypto[1].0,
                Dir::Forward => 0.0,
            };
            results.push(Row {
                size: size.clone(),
                name,
                mpps: best[i],
                gbps: best[i] * avg_bytes * 8.0 / 1e3,
                vs_forward: best[i] / best[0].max(1e-9),
                vs_crypto: (ceiling > 0.0).then(|| best[i] / ceiling),
                rounds: all[i].clone(),
            });
        }
        for (k, name) in ["crypto-perf enc", "crypto-perf dec"]
            .into_iter()
            .enumerate()
        {
            if crypto[k].1.is_empty() {
                continue;
            }
            results.push(Row {
                size: size.clone(),
                name,
                mpps: crypto[k].0,
                gbps: crypto[k].0 * avg_bytes * 8.0 / 1e3,
                vs_forward: crypto[k].0 / best[0].max(1e-9),
                vs_crypto: None,
                rounds: crypto[k].1.clone(),
            });
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if o.json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({"size": r.size, "scenario": r.name, "mpps": r.mpps, "gbit_s": r.gbps,
                    "ratio_to_forward": r.vs_forward, "ratio_to_crypto_perf": r.vs_crypto, "rounds": r.rounds})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"suite": "aes128gcm16", "esn": true, "worker_cores": 1, "backend": o.backend.name(),
                "devices": "net_pcap(infinite_rx) -> net_null", "results": rows})
        );
    } else {
        println!(
            "scenario  tunnel, AES-128-GCM (ESN, backend {}), 1 worker core, net_pcap(infinite_rx) -> net_null, best of {} rounds of {} s",
            o.backend.name(),
            o.rounds,
            o.seconds
        );
        println!(
            "{:<6} {:<16} {:>7} {:>8} {:>10} {:>11}  rounds",
            "size", "scenario", "Mpps", "Gbit/s", "vs forward", "vs crypto"
        );
        for r in &results {
            let rounds: Vec<f64> = r
                .rounds
                .iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect();
            let vs_crypto = r
                .vs_crypto
                .map_or_else(|| "-".into(), |v| format!("{v:.3}"));
            println!(
                "{:<6} {:<16} {:>7.2} {:>8.2} {:>10.3} {:>11}  {rounds:?}",
                r.size, r.name, r.mpps, r.gbps, r.vs_forward, vs_crypto
            );
        }
    }
}

struct Row {
    size: String,
    name: &'static str,
    mpps: f64,
    gbps: f64,
    vs_forward: f64,
    /// Ours over dpdk-test-crypto-perf's AEAD alone, same direction and sizes.
    vs_crypto: Option<f64>,
    rounds: Vec<f64>,
}

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

/// The client frames of a size class: `FLOWS` flows; IMIX cycles 7 x 64, 4 x 576, 1 x 1500.
fn sizes_of(size: &str) -> Vec<usize> {
    if size == "imix" {
        let pattern = [64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576, 64];
        (0..FLOWS).map(|i| pattern[i % pattern.len()]).collect()
    } else {
        vec![size.parse().unwrap_or(64); FLOWS]
    }
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

/// Our LAN host to `FLOWS` destinations in 10.2.0.0/16.
fn lan_frames(size: &str) -> Vec<Vec<u8>> {
    sizes_of(size)
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            udp_frame(
                len,
                &ROUTER_LAN_MAC,
                &HOST_MAC,
                [10, 1, 0, 2],
                [10, 2, (i >> 8) as u8, i as u8],
                1024 + i as u16,
            )
        })
        .collect()
}

/// The peer's LAN hosts (`FLOWS` of them) to our LAN host, as the peer's LAN sends them.
fn peer_frames(size: &str) -> Vec<Vec<u8>> {
    sizes_of(size)
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            udp_frame(
                len,
                &PEER_LAN_MAC,
                &HOST_MAC,
                [10, 2, (i >> 8) as u8, i as u8],
                [10, 1, 0, 2],
                1024 + i as u16,
            )
        })
        .collect()
}

fn tunnel_info(kind: TunnelKind, us: bool) -> TunnelInfo {
    let (me, them) = if us { (1u8, 2u8) } else { (2, 1) };
    TunnelInfo {
        peer: if us { "peer".into() } else { "us".into() },
        tenant: 0,
        kind,
        loopbacks: (kind == TunnelKind::Overlay).then_some((
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, me)),
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, them)),
        )),
        circuits: vec![CircuitInfo {
            port: 1,
            local: IpAddr::V4(Ipv4Addr::new(198, 18, 1, me)),
            remote: IpAddr::V4(Ipv4Addr::new(198, 18, 1, them)),
            transport: "internet".into(),
            trusted: false,
        }],
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
        vec![tunnel_info(kind, false)],
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

/// One run of one scenario; returns the worker's Mpps (packets it sent on).
fn run(o: &Options, dir: Dir, kind: Option<TunnelKind>, pcap: &Path, id: usize) -> f64 {
    let rx = format!("net_pcap_tun{id},rx_pcap={},infinite_rx=1", pcap.display());
    let null = format!("net_null_tun{id},no-rx=1");
    let (lan_dev, wan_dev) = if dir == Dir::Decrypt {
        (null, rx)
    } else {
        (rx, null)
    };
    let ports = vec![
        PortSpec {
            name: "lan0".into(),
            device: lan_dev,
            role: "lan".into(),
            mac: Some(ROUTER_LAN_MAC),
            mtu: 1500,
            addresses: vec!["10.1.0.1/16".parse().expect("net")],
            vlan: None,
            internet: false,
        },
        PortSpec {
            name: "inet".into(),
            device: wan_dev,
            role: "wan".into(),
            mac: Some(ROUTER_WAN_MAC),
            mtu: WAN_MTU,
            addresses: vec!["198.18.1.1/24".parse().expect("net")],
            vlan: None,
            internet: false,
        },
    ];
    let (tenants, tunnels, tunnel_keys, routes) = match kind {
        None => (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            vec![(
                "10.2.0.0/16".parse().expect("net"),
                NextHop {
                    port: 1,
                    via: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2))),
                },
            )],
        ),
        Some(kind) => (
            vec![tenant_to("10.2.0.0/16")],
            vec![tunnel_info(kind, true)],
            vec![keys(true)],
            Vec::new(),
        ),
    };
    let spec = EngineSpec {
        name: format!("tun{id}"),
        mbufs: 16383,
        mbuf_cache: 256,
        worker_cores: vec![o.worker_core],
        rx_burst: 32,
        idle_sleep_max_us: 0,
        ports,
        routes,
        static_neighbors: vec![
            (1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_WAN_MAC),
            (0, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), HOST_MAC),
        ],
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
