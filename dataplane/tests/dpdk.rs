//! The data plane on real DPDK with virtual devices (`--no-huge`, `net_pcap`, `net_null`):
//! EAL start, the pipeline's exact bytes out of a pcap-in/pcap-out run, ARP, clean shutdown.
//! One EAL per test process; every test makes its own uniquely named devices and pool.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sdwan_dataplane::route::NextHop;
use sdwan_dataplane::wire::checksum;
use sdwan_dataplane::{eal, pcapfile, Engine, EngineSpec, PortSpec};

fn eal() {
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "-l",
        "0",
        "--log-level",
        "*:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    eal::init(&args).expect("EAL starts with virtual devices and no hugepages");
}

fn worker_core() -> usize {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        1
    } else {
        0
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sdwan-dp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const ROUTER_LAN_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
const ROUTER_WAN_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x02];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x02];

/// An Ethernet + IPv4 + UDP frame, written field by field (independently of the crate's
/// builders, so the test checks the pipeline against a second implementation).
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0x00];
    ip.extend_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, ttl, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn arp_request(sender_mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

fn spec(
    name: &str,
    lan_dev: String,
    wan_dev: String,
    static_neighbors: Vec<(u16, IpAddr, [u8; 6])>,
) -> EngineSpec {
    EngineSpec {
        name: name.into(),
        mbufs: 2047,
        mbuf_cache: 32,
        worker_cores: vec![worker_core()],
        rx_burst: 32,
        idle_sleep_max_us: 100,
        ports: vec![
            PortSpec {
                name: "lan0".into(),
                device: lan_dev,
                role: "lan".into(),
                mac: Some(ROUTER_LAN_MAC),
                mtu: 1500,
                addresses: vec!["10.1.0.1/24".parse().unwrap()],
                vlan: None,
                internet: false,
            },
            PortSpec {
                name: "inet".into(),
                device: wan_dev,
                role: "wan".into(),
                mac: Some(ROUTER_WAN_MAC),
                mtu: 1500,
                addresses: vec!["198.18.1.1/24".parse().unwrap()],
                vlan: None,
                internet: false,
            },
        ],
        routes: vec![(
            "10.2.0.0/24".parse().unwrap(),
            NextHop {
                port: 1,
                via: Some("198.18.1.2".parse().unwrap()),
            },
        )],
        static_neighbors,
        tenants: Vec::new(),
        tunnels: Vec::new(),
        tunnel_keys: Vec::new(),
        backend: Default::default(),
        path_monitor: Default::default(),
        probe_port: 0,
        policies: Vec::new(),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pcap_in_pcap_out_exact_bytes() {
    eal();
    let dir = tmpdir("pcap");
    let forward_me = udp_frame(
        ROUTER_LAN_MAC,
        HOST_MAC,
        [10, 1, 0, 2],
        [10, 2, 0, 2],
        64,
        b"hello, branch B",
    );
    let expire_me = udp_frame(
        ROUTER_LAN_MAC,
        HOST_MAC,
        [10, 1, 0, 2],
        [10, 2, 0, 9],
        1,
        b"ttl",
    );
    let no_route = udp_frame(
        ROUTER_LAN_MAC,
        HOST_MAC,
        [10, 1, 0, 2],
        [192, 0, 2, 1],
        64,
        b"nowhere",
    );
    let not_for_us = udp_frame(
        PEER_MAC,
        HOST_MAC,
        [10, 1, 0, 2],
        [10, 2, 0, 2],
        64,
        b"other",
    );
    let to_unresolved = udp_frame(
        ROUTER_LAN_MAC,
        HOST_MAC,
        [10, 1, 0, 2],
        [10, 1, 0, 99],
        64,
        b"who?",
    );
    let who_has_router = arp_request(HOST_MAC, [10, 1, 0, 2], [10, 1, 0, 1]);
    let lan_in = vec![
        who_has_router,
        forward_me.clone(),
        expire_me.clone(),
        no_route,
        not_for_us,
        to_unresolved,
    ];
    pcapfile::write(&dir.join("lan_in.pcap"), &lan_in).unwrap();
    pcapfile::write(&dir.join("wan_in.pcap"), &[]).unwrap();
    let dev = |n: &str, side: &str| {
        format!(
            "net_pcap_{n},rx_pcap={}/{side}_in.pcap,tx_pcap={}/{side}_out.pcap",
            dir.display(),
            dir.display()
        )
    };
    let neighbors = vec![
        (1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_MAC),
        (0, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), HOST_MAC),
    ];
    let engine =
        Engine::start(spec("pcapx", dev("x0", "lan"), dev("x1", "wan"), neighbors)).unwrap();
    wait_for("all six frames", || {
        engine.workers()[0].counters.rx_packets >= 6
    });
    // The unresolved neighbor triggers an ARP request; give the worker a moment to send it.
    wait_for("the solicitation", || {
        engine.workers()[0].counters.solicitations >= 1
    });
    let w = engine.workers()[0].counters.clone();
    engine.shutdown();

    let drops: std::collections::HashMap<_, _> = w.drops.iter().cloned().collect();
    assert_eq!(w.forwarded, 1);
    assert_eq!(drops["no_route"], 1);
    assert_eq!(drops["not_for_us"], 1);
    assert_eq!(drops["neighbor_unresolved"], 1);
    assert_eq!(
        w.local_replies, 2,
        "the ARP reply and the ICMP time exceeded"
    );

    let wan_out = pcapfile::read(&dir.join("wan_out.pcap")).unwrap();
    let mut expected = forward_me.clone();
    expected[0..6].copy_from_slice(&PEER_MAC);
    expected[6..12].copy_from_slice(&ROUTER_WAN_MAC);
    expected[22] = 63;
    expected[24..26].fill(0);
    let c = checksum::checksum(&expected[14..34]);
    expected[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        wan_out,
        vec![expected],
        "exactly the routed frame leaves on the WAN port"
    );

    let lan_out = pcapfile::read(&dir.join("lan_out.pcap")).unwrap();
    assert_eq!(
        lan_out.len(),
        3,
        "ARP reply, time exceeded, ARP request: {lan_out:02x?}"
    );
    let mut arp_reply = HOST_MAC.to_vec();
    arp_reply.extend_from_slice(&ROUTER_LAN_MAC);
    arp_reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    arp_reply.extend_from_slice(&ROUTER_LAN_MAC);
    arp_reply.extend_from_slice(&[10, 1, 0, 1]);
    arp_reply.extend_from_slice(&HOST_MAC);
    arp_reply.extend_from_slice(&[10, 1, 0, 2]);
    arp_reply.resize(60, 0);
    assert_eq!(lan_out[0], arp_reply);

    let te = &lan_out[1];
    assert_eq!(
        &te[0..14],
        &[
            HOST_MAC.as_slice(),
            ROUTER_LAN_MAC.as_slice(),
            &[0x08, 0x00]
        ]
        .concat()[..]
    );
    assert_eq!(checksum::checksum(&te[14..34]), 0, "IP header checksum");
    assert_eq!(
        (&te[26..30], &te[30..34]),
        (&[10u8, 1, 0, 1][..], &[10u8, 1, 0, 2][..])
    );
    assert_eq!((te[34], te[35]), (11, 0), "ICMP time exceeded in transit");
    assert_eq!(checksum::checksum(&te[34..]), 0, "ICMP checksum");
    assert_eq!(&te[42..], &expire_me[14..], "quotes the expired datagram");

    let who_has = &lan_out[2];
    assert_eq!(
        who_has,
        &arp_like_request(ROUTER_LAN_MAC, [10, 1, 0, 1], [10, 1, 0, 99])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn arp_like_request(mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    arp_request(mac, sender, target)
}

#[test]
fn null_devices_run_and_count_drops() {
    eal();
    // net_null produces zero-filled frames forever: not addressed to us, so each is dropped
    // and counted; the sink side transmits nothing.
    let engine = Engine::start(spec(
        "nullx",
        "net_null_y0".into(),
        "net_null_y1,no-rx=1".into(),
        vec![],
    ))
    .unwrap();
    wait_for("packets from net_null", || {
        engine.workers()[0].counters.rx_packets > 10_000
    });
    let ifaces = engine.interfaces();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0].driver, "net_null");
    assert_eq!(ifaces[0].mac, "02:00:00:00:01:01");
    assert!(ifaces[0].stats.rx_packets > 0);
    let w = engine.workers()[0].counters.clone();
    let not_for_us = w.drops.iter().find(|(n, _)| n == "not_for_us").unwrap().1;
    assert!(not_for_us > 10_000, "{w:?}");
    assert_eq!(w.forwarded, 0);
    engine.shutdown();
}

#[test]
fn a_second_eal_with_other_arguments_is_refused() {
    eal();
    let err = eal::init(&["--no-huge".to_string()]).unwrap_err();
    assert!(err.to_string().contains("already initialised"), "{err}");
}

#[test]
fn unknown_device_is_a_clear_error() {
    eal();
    let err = Engine::start(spec(
        "badx",
        "0000:99:00.0".into(),
        "net_null_z1".into(),
        vec![],
    ))
    .err()
    .expect("fails");
    assert!(err.to_string().contains("0000:99:00.0"), "{err}");
}

/// `PacketBuf::adj` on a real mbuf, and the overlay in a default mbuf: IPv4 over IPv4 fits
/// the 128-byte headroom, IPv6 over IPv6 (140 bytes) is refused with `NoRoom`.
#[test]
fn mbuf_adj_and_overlay_in_default_headroom() {
    use sdwan_dataplane::esp::replay::DEFAULT_WINDOW;
    use sdwan_dataplane::esp::{AeadKey, Backend, InboundSa, OutboundSa, ReplayWindow, Suite};
    use sdwan_dataplane::forward::PacketBuf;
    use sdwan_dataplane::mbuf::Mbuf;
    use sdwan_dataplane::mempool::Mempool;
    use sdwan_dataplane::overlay::{self, OverlayError, OverlayPath};

    eal();
    let pool = Mempool::new("ovl_adj", 63, 0).unwrap();
    let mut m = Mbuf::alloc(&pool).unwrap();
    assert!(m.extend_from_slice(&[1, 2, 3, 4, 5]));
    assert!(m.adj(2));
    assert_eq!(m.data(), &[3, 4, 5]);
    assert!(!m.adj(4));
    assert_eq!(m.data(), &[3, 4, 5]);
    assert!(m.prepend(2));
    assert_eq!(m.data(), &[1, 2, 3, 4, 5]);
    drop(m);

    let s = Suite::Aes128Gcm;
    let km: Vec<u8> = (0..s.keymat_len()).map(|i| i as u8).collect();
    let mut out = OutboundSa::new(7, false, AeadKey::new(Backend::default(), s, &km).unwrap());
    let win = ReplayWindow::new(DEFAULT_WINDOW, false).unwrap();
    let mut inb = InboundSa::new(7, AeadKey::new(Backend::default(), s, &km).unwrap(), win);
    let mut path = OverlayPath {
        outer_src_mac: [2, 0, 0, 0, 0, 1],
        outer_dst_mac: [2, 0, 0, 0, 0, 2],
        outer_src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        outer_dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        inner_src_mac: [2, 0, 0, 0, 1, 1],
        inner_dst_mac: [2, 0, 0, 0, 1, 2],
        loopback_src: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        loopback_dst: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
        vni: 100,
        ttl: 64,
    };
    let mut inner = vec![0u8; 60];
    inner[0] = 0x45;
    let mut m = Mbuf::alloc(&pool).unwrap();
    assert!(m.extend_from_slice(&inner));
    assert_eq!(overlay::encapsulate(&path, &mut out, &mut m), Ok(1));
    let info = overlay::parse_outer(m.data()).unwrap();
    assert_eq!(info.vni, 100);
    assert_eq!(overlay::decapsulate(&mut inb, &mut m, &info), Ok(4));
    assert_eq!(m.data(), &inner[..]);

    path.outer_src = "2001:db8::1".parse().unwrap();
    path.outer_dst = "2001:db8::2".parse().unwrap();
    path.loopback_src = "fd00::1".parse().unwrap();
    path.loopback_dst = "fd00::2".parse().unwrap();
    let mut m = Mbuf::alloc(&pool).unwrap();
    assert!(m.extend_from_slice(&inner));
    assert_eq!(
        overlay::encapsulate(&path, &mut out, &mut m),
        Err(OverlayError::NoRoom)
    );
    assert_eq!(m.data(), &inner[..]);
}

/// `frame` with an 802.1Q tag for `vid` after the MAC addresses.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

#[test]
fn vlan_sub_interface_through_real_devices() {
    eal();
    let dir = tmpdir("vlan");
    // Into the LAN port: VLAN 100 (the sub-interface lan0.100) asks for its router and sends
    // to the far network; VLAN 300 is not configured.
    let who_has = tagged(
        &arp_request(HOST_MAC, [10, 1, 200, 2], [10, 1, 200, 1]),
        100,
    );
    let up = udp_frame(
        ROUTER_LAN_MAC,
        HOST_MAC,
        [10, 1, 200, 2],
        [10, 2, 0, 2],
        64,
        b"from vlan 100",
    );
    let stray = tagged(&up, 300);
    // Into the WAN port: a reply to the VLAN's host.
    let down = udp_frame(
        ROUTER_WAN_MAC,
        PEER_MAC,
        [10, 2, 0, 2],
        [10, 1, 200, 2],
        64,
        b"to vlan 100",
    );
    pcapfile::write(
        &dir.join("lan_in.pcap"),
        &[who_has, tagged(&up, 100), stray],
    )
    .unwrap();
    pcapfile::write(&dir.join("wan_in.pcap"), std::slice::from_ref(&down)).unwrap();
    let dev = |n: &str, side: &str| {
        format!(
            "net_pcap_{n},rx_pcap={}/{side}_in.pcap,tx_pcap={}/{side}_out.pcap",
            dir.display(),
            dir.display()
        )
    };
    let neighbors = vec![
        (1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_MAC),
        (2, IpAddr::V4(Ipv4Addr::new(10, 1, 200, 2)), HOST_MAC),
    ];
    let mut s = spec("vlanx", dev("v0", "lan"), dev("v1", "wan"), neighbors);
    s.ports.push(PortSpec {
        name: "lan0.100".into(),
        device: String::new(),
        role: "lan".into(),
        mac: None,
        mtu: 1500,
        addresses: vec!["10.1.200.1/24".parse().unwrap()],
        vlan: Some((0, 100)),
        internet: false,
    });
    let engine = Engine::start(s).unwrap();
    wait_for("all four frames", || {
        engine.workers()[0].counters.rx_packets >= 4
    });
    let names: Vec<_> = engine
        .interfaces()
        .into_iter()
        .map(|i| (i.name, i.driver))
        .collect();
    assert_eq!(names[2], ("lan0.100".to_string(), "vlan".to_string()));
    let w = engine.workers()[0].counters.clone();
    engine.shutdown();
    let drops: std::collections::HashMap<_, _> = w.drops.iter().cloned().collect();
    assert_eq!(drops["unknown_vlan"], 1);
    assert_eq!((w.forwarded, w.local_replies), (2, 1));

    // Up: the tag is gone on the WAN side, the frame routed as usual.
    let mut routed_up = up.clone();
    routed_up[0..6].copy_from_slice(&PEER_MAC);
    routed_up[6..12].copy_from_slice(&ROUTER_WAN_MAC);
    routed_up[22] = 63;
    routed_up[24..26].fill(0);
    let c = checksum::checksum(&routed_up[14..34]);
    routed_up[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        pcapfile::read(&dir.join("wan_out.pcap")).unwrap(),
        vec![routed_up]
    );

    // Down the LAN port, both tagged 100: the ARP reply from 10.1.200.1, and the routed reply.
    let mut arp_reply = HOST_MAC.to_vec();
    arp_reply.extend_from_slice(&ROUTER_LAN_MAC);
    arp_reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    arp_reply.extend_from_slice(&ROUTER_LAN_MAC);
    arp_reply.extend_from_slice(&[10, 1, 200, 1]);
    arp_reply.extend_from_slice(&HOST_MAC);
    arp_reply.extend_from_slice(&[10, 1, 200, 2]);
    arp_reply.resize(60, 0);
    let mut routed_down = down.clone();
    routed_down[0..6].copy_from_slice(&HOST_MAC);
    routed_down[6..12].copy_from_slice(&ROUTER_LAN_MAC);
    routed_down[22] = 63;
    routed_down[24..26].fill(0);
    let c = checksum::checksum(&routed_down[14..34]);
    routed_down[24..26].copy_from_slice(&c.to_be_bytes());
    let mut lan_out = pcapfile::read(&dir.join("lan_out.pcap")).unwrap();
    let mut want = vec![tagged(&arp_reply, 100), tagged(&routed_down, 100)];
    lan_out.sort();
    want.sort();
    assert_eq!(lan_out, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two workers, one inbound SA: the SA's sender index says which worker owns it, the other
/// hands its packets over through the handoff queue, and a packet that arrives on both queues
/// is delivered once (one replay window, one owner).
#[test]
fn two_workers_one_inbound_sa_owner_and_handoff() {
    use sdwan_dataplane::esp::{Backend, Suite};
    use sdwan_dataplane::forward::{process, ByteBuf, Context, PacketBuf, Verdict};
    use sdwan_dataplane::route::TenantHop;
    use sdwan_dataplane::tables::{NeighborKey, PortInfo, Tables};
    use sdwan_dataplane::tunnel::{
        CircuitInfo, SaState, TenantSpec, TunnelInfo, TunnelKeys, TunnelKind,
    };
    use zeroize::Zeroizing;

    eal();
    let dir = tmpdir("handoff");
    let tunnel = |me: u8| {
        let other = 3 - me;
        TunnelInfo {
            peer: "peer".into(),
            tenant: 0,
            kind: TunnelKind::Overlay,
            loopbacks: Some((
                IpAddr::V4(Ipv4Addr::new(10, 255, 0, me)),
                IpAddr::V4(Ipv4Addr::new(10, 255, 0, other)),
            )),
            circuits: vec![CircuitInfo {
                port: 1,
                local: IpAddr::V4(Ipv4Addr::new(198, 18, 1, me)),
                remote: IpAddr::V4(Ipv4Addr::new(198, 18, 1, other)),
                transport: "internet".into(),
                trusted: false,
            }],
            out_spi: if me == 1 { 0x1000 } else { 0x2000 },
            in_spi: if me == 1 { 0x2000 } else { 0x1000 },
            senders: 16,
            suite: Suite::Aes128Gcm,
            esn: true,
            replay_window: 1024,
            first_slot: 0,
            peer_index: None,
            out_key: 0,
            in_key: 0,
        }
    };
    let keys = |me: u8| {
        let (a, b) = ([0x31u8; 20], [0x42u8; 20]);
        let (out, inbound) = if me == 1 { (a, b) } else { (b, a) };
        TunnelKeys {
            out: Zeroizing::new(out.to_vec()),
            inbound: Zeroizing::new(inbound.to_vec()),
        }
    };
    let tenant = |other: u8| TenantSpec {
        name: "blue".into(),
        vni: 77,
        lan_ports: vec![0],
        routes: vec![(
            format!("10.{other}.0.0/24").parse().unwrap(),
            TenantHop::Tunnel {
                tunnel: 0,
                circuit: None,
            },
        )],
    };
    // The peer (site 2) seals 20 frames to our LAN host as its worker 1: SPI 0x2001 (its
    // block starts at 0x2000), which our worker 1 of 2 owns.
    let peer_ports = vec![
        PortInfo::new(
            "lan0",
            [2, 0, 0, 0, 9, 1],
            1500,
            &["10.2.0.1/24".parse().unwrap()],
        ),
        PortInfo::new("inet", PEER_MAC, 1500, &["198.18.1.2/24".parse().unwrap()]),
    ];
    let mut peer = Tables::new(peer_ports, &[]).with_tenants(vec![tenant(1)], vec![tunnel(2)]);
    peer.neighbors.insert(
        NeighborKey::new(1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1))),
        ROUTER_WAN_MAC,
    );
    let mut cx = Context {
        sas: SaState::new(1, 2, &peer.tunnels, &[keys(2)], Backend::default()).unwrap(),
        ..Context::default()
    };
    let sealed: Vec<Vec<u8>> = (0..20u8)
        .map(|i| {
            let f = udp_frame(
                [2, 0, 0, 0, 9, 1],
                PEER_MAC,
                [10, 2, 0, 2],
                [10, 1, 0, 2],
                64,
                &[i; 20],
            );
            let mut b = ByteBuf::new(&f);
            assert_eq!(process(&peer, 0, &mut b, &mut cx), Verdict::Forward(1));
            b.data().to_vec()
        })
        .collect();
    // Queue 0 gets frames 0..10 and a copy of 15; queue 1 gets 10..20 and a copy of 5.
    let q0: Vec<Vec<u8>> = sealed[..10].iter().chain([&sealed[15]]).cloned().collect();
    let q1: Vec<Vec<u8>> = sealed[10..].iter().chain([&sealed[5]]).cloned().collect();
    pcapfile::write(&dir.join("wan_q0.pcap"), &q0).unwrap();
    pcapfile::write(&dir.join("wan_q1.pcap"), &q1).unwrap();
    pcapfile::write(&dir.join("empty.pcap"), &[]).unwrap();
    let d = dir.display();
    let lan_dev = format!(
        "net_pcap_h0,rx_pcap={d}/empty.pcap,rx_pcap={d}/empty.pcap,tx_pcap={d}/lan_q0.pcap,tx_pcap={d}/lan_q1.pcap"
    );
    let wan_dev = format!(
        "net_pcap_h1,rx_pcap={d}/wan_q0.pcap,rx_pcap={d}/wan_q1.pcap,tx_pcap={d}/wan_t0.pcap,tx_pcap={d}/wan_t1.pcap"
    );
    let mut s = spec(
        "handoffx",
        lan_dev,
        wan_dev,
        vec![
            (1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_MAC),
            (0, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), HOST_MAC),
        ],
    );
    s.worker_cores = vec![0, worker_core()];
    s.routes.clear();
    s.tenants = vec![tenant(2)];
    s.tunnels = vec![tunnel(1)];
    s.tunnel_keys = vec![keys(1)];
    let engine = Engine::start(s).unwrap();
    wait_for("22 frames in, 20 out", || {
        let w = engine.workers();
        let rx: u64 = w.iter().map(|w| w.counters.rx_packets).sum();
        let fwd: u64 = w.iter().map(|w| w.counters.forwarded).sum();
        let dropped: u64 = w.iter().map(|w| w.counters.total_drops()).sum();
        rx >= 22 && fwd + dropped >= 22
    });
    // SA counters are published by the owner every 100 ms.
    wait_for("the SA's counters", || {
        engine
            .sas()
            .iter()
            .any(|s| s.direction == "in" && s.spi == 0x2001 && s.packets == 20)
    });
    let w = engine.workers();
    let sas = engine.sas();
    engine.shutdown();
    let (w0, w1) = (&w[0].counters, &w[1].counters);
    assert_eq!(
        w0.handed_off, 11,
        "worker 0 owns nothing of SPI 0x2001: {w0:?}"
    );
    assert_eq!(w1.handoffs_received, 11);
    assert_eq!(w1.decrypted, 20, "the owner opened every frame once");
    assert_eq!(w0.decrypted, 0);
    let replays: u64 = w
        .iter()
        .map(|w| {
            w.counters
                .drops
                .iter()
                .find(|d| d.0 == "replay")
                .map_or(0, |d| d.1)
        })
        .sum();
    assert_eq!(
        replays, 2,
        "each copy is a replay, whichever queue it came in on"
    );
    let sa = sas
        .iter()
        .find(|s| s.direction == "in" && s.spi == 0x2001)
        .expect("SPI 0x2001 listed");
    assert_eq!((sa.packets, sa.replay_drops, sa.worker), (20, 2, 1));
    let mut out = pcapfile::read(&dir.join("lan_q0.pcap")).unwrap();
    out.extend(pcapfile::read(&dir.join("lan_q1.pcap")).unwrap());
    let mut payloads: Vec<u8> = out.iter().map(|f| f[f.len() - 1]).collect();
    payloads.sort_unstable();
    assert_eq!(
        payloads,
        (0..20).collect::<Vec<u8>>(),
        "each frame delivered exactly once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tunnels learned after the start (as the BGP control plane hands them over) reach the
/// workers through the published tables: each worker sets up its SAs between bursts, a rekey
/// replaces the outbound SA and keeps the old inbound one while it is listed, and the paths
/// of a learned peer get monitors.
#[test]
fn learned_tunnels_reach_the_workers_and_rekeys_replace_their_sas() {
    use std::sync::Arc;

    use sdwan_dataplane::engine::LearnedOverlay;
    use sdwan_dataplane::esp::Suite;
    use sdwan_dataplane::tunnel::{CircuitInfo, TenantSpec, TunnelInfo, TunnelKeys, TunnelKind};
    use zeroize::Zeroizing;

    eal();
    let dir = tmpdir("learned");
    pcapfile::write(&dir.join("empty.pcap"), &[]).unwrap();
    let d = dir.display();
    let mut s = spec(
        "learned",
        format!("net_pcap_l0,rx_pcap={d}/empty.pcap,tx_pcap={d}/lan.pcap"),
        format!("net_pcap_l1,rx_pcap={d}/empty.pcap,tx_pcap={d}/wan.pcap"),
        vec![(1, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)), PEER_MAC)],
    );
    s.tenants = vec![TenantSpec {
        name: "blue".into(),
        vni: 77,
        lan_ports: vec![0],
        routes: Vec::new(),
    }];
    s.probe_port = 4793;
    let engine = Engine::start(s).unwrap();
    assert!(engine.sas().is_empty());
    let tunnel = |out_spi: u32, in_spi: u32, out_key: u64, in_key: u64| TunnelInfo {
        peer: "10.255.0.2".into(),
        tenant: 0,
        kind: TunnelKind::Overlay,
        loopbacks: Some((
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
        )),
        circuits: vec![CircuitInfo {
            port: 1,
            local: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
            remote: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
            transport: "internet".into(),
            trusted: false,
        }],
        out_spi,
        in_spi,
        senders: 16,
        suite: Suite::Aes128Gcm,
        esn: true,
        replay_window: 1024,
        first_slot: 0,
        peer_index: None,
        out_key,
        in_key,
    };
    let keys = |b: u8| {
        Arc::new(TunnelKeys {
            out: Zeroizing::new(vec![b; 20]),
            inbound: Zeroizing::new(vec![b + 1; 20]),
        })
    };
    let spis = |e: &Engine, dir: &str| {
        let mut v: Vec<u32> = e
            .sas()
            .iter()
            .filter(|s| s.direction == dir)
            .map(|s| s.spi)
            .collect();
        v.sort_unstable();
        v
    };
    // A peer is learned: one tunnel, routes of the tenant into it.
    engine.set_overlay(&LearnedOverlay {
        tunnels: vec![(tunnel(0x5000, 0x6000, 1, 2), keys(0x10))],
        routes: vec![(0, "10.2.0.0/24".parse().unwrap(), 0)],
    });
    wait_for("the worker's SAs", || {
        spis(&engine, "out") == [0x5000] && spis(&engine, "in") == [0x6000]
    });
    assert!(engine
        .tenant_routes()
        .iter()
        .any(|r| r.entry.prefix.to_string() == "10.2.0.0/24"));
    wait_for("a monitor on the learned peer's path", || {
        engine
            .paths()
            .iter()
            .any(|p| p.peer == "10.255.0.2" && p.probes_sent > 0)
    });
    // Rekey: a new outbound SA; the old inbound one stays as an inbound-only tunnel.
    let mut old_in = tunnel(0, 0x6000, 0, 2);
    old_in.out_spi = 0;
    engine.set_overlay(&LearnedOverlay {
        tunnels: vec![
            (tunnel(0x5100, 0x6100, 3, 4), keys(0x20)),
            (old_in, keys(0x10)),
        ],
        routes: vec![(0, "10.2.0.0/24".parse().unwrap(), 0)],
    });
    wait_for("the new SAs, and the old inbound one", || {
        spis(&engine, "out") == [0x5100] && spis(&engine, "in") == [0x6000, 0x6100]
    });
    // The peer is withdrawn: its SAs and routes go.
    engine.set_overlay(&LearnedOverlay::default());
    wait_for("no SA left", || engine.sas().is_empty());
    assert!(!engine
        .tenant_routes()
        .iter()
        .any(|r| r.entry.prefix.to_string() == "10.2.0.0/24"));
    engine.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
