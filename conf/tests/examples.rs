//! The shipped configuration files parse and mean what they say.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use sdwan_conf::{load, Dpdk, PeerType, PortRole, RouteTarget, Suite, Workers};

fn file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn branch_example() {
    let c = load(&file("examples/branch.yaml")).unwrap();
    assert_eq!(c.node.name, "branch-lyon-01");
    assert_eq!(c.dpdk.mbufs, 65535);
    assert_eq!(c.dpdk.mbuf_cache, 256);
    assert_eq!(c.dpdk.eal_args[0], "--file-prefix");
    assert_eq!(c.workers.cores, vec![2, 3]);
    assert_eq!(c.workers.control_core, 0);
    assert_eq!(c.workers.rx_burst, 32);
    assert_eq!(c.workers.idle_sleep_max_us, 50);
    assert_eq!(
        c.management.socket,
        Path::new("/run/sdwand/branch-lyon-01.sock")
    );
    let roles: Vec<_> = c.ports.iter().map(|p| (p.name.as_str(), p.role)).collect();
    assert_eq!(
        roles,
        [
            ("lan", PortRole::Lan),
            ("fiber", PortRole::Wan),
            ("mpls", PortRole::Wan)
        ]
    );
    let lan = &c.ports[0];
    assert_eq!(lan.device, "0000:01:00.0");
    assert_eq!(lan.vdev_name(), "0000:01:00.0");
    assert_eq!(lan.addresses, [net("10.20.0.1/24"), net("fd00:20::1/64")]);
    assert_eq!(lan.mac, Some([0x02, 0x5e, 0x10, 0x00, 0x20, 0x01]));
    assert_eq!(c.ports[2].mtu, 9000);
    assert_eq!(c.ports[1].mac, None);
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[0].prefix, net("0.0.0.0/0"));
    assert_eq!(c.routes[1].via, ip("2001:db8:100::1"));
    assert_eq!(c.routes[2].port, "mpls");
    assert_eq!(c.tenants[0].lan_ports, ["lan", "lan.30"]);
    assert_eq!(c.ports[0].vlans[0].id, 30);
    assert_eq!(c.tenants[0].routes.len(), 6);
    assert_eq!(c.tenants[0].routes[4].port.as_deref(), Some("lan"));
    let kinds: Vec<_> = c.peers.iter().map(|p| (p.name.as_str(), p.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("dc-paris", PeerType::Overlay),
            ("partner-gw", PeerType::Ipsec)
        ]
    );
    let sa = &c.peers[0].sas[0];
    assert_eq!((sa.suite, sa.replay_window), (Suite::Aes256Gcm16, 4096));
    assert_eq!(
        sa.out.key.as_ref().unwrap().expose().len(),
        36,
        "read from keys/"
    );
    assert!(!c.peers[1].sas[0].esn);
    // Serialises (the daemon may show its configuration); the MAC as text.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["ports"][0]["mac"], "02:5e:10:00:20:01");
    assert_eq!(json["ports"][0]["role"], "lan");
    assert_eq!(json["ports"][0]["addresses"][1], "fd00:20::1/64");
}

#[test]
fn lab_site_a() {
    let c = load(&file("lab/site-a.yaml")).unwrap();
    assert_eq!(c.node.name, "site-a");
    assert_eq!(
        c.dpdk.eal_args,
        ["--no-huge", "-m", "256", "--no-pci", "--no-shconf"]
    );
    assert_eq!(c.dpdk.mbufs, 8191);
    assert_eq!(c.dpdk.mbuf_cache, Dpdk::DEFAULT_MBUF_CACHE);
    assert_eq!(c.workers.cores, vec![1]);
    assert_eq!(c.workers.control_core, 0);
    assert_eq!(c.workers.rx_burst, Workers::DEFAULT_RX_BURST);
    assert_eq!(c.workers.idle_sleep_max_us, 200);
    assert_eq!(c.management.socket, Path::new("/run/sdwan-lab/site-a.sock"));
    let ports: Vec<_> = c
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.device.as_str(), p.vdev_name(), p.role))
        .collect();
    assert_eq!(
        ports,
        [
            (
                "lan0",
                "net_af_packet0,iface=lan0,framecnt=4096",
                "net_af_packet0",
                PortRole::Lan
            ),
            (
                "inet",
                "net_af_packet1,iface=inet,framecnt=4096",
                "net_af_packet1",
                PortRole::Wan
            ),
            (
                "mpls",
                "net_af_packet2,iface=mpls,framecnt=4096",
                "net_af_packet2",
                PortRole::Wan
            ),
        ]
    );
    assert_eq!(
        c.ports[0].addresses,
        [net("10.1.0.1/24"), net("fd00:1::1/64")]
    );
    assert_eq!(
        c.ports[1].addresses,
        [net("198.18.1.1/24"), net("fd00:ff:1::1/64")]
    );
    assert_eq!(
        c.ports[2].addresses,
        [net("198.18.2.1/24"), net("fd00:ff:2::1/64")]
    );
    assert!(c.ports.iter().all(|p| p.mac.is_none() && p.mtu == 1500));
    assert!(
        c.routes.is_empty(),
        "the circuits are connected: no underlay route"
    );
    assert_eq!(c.node.loopback, ip("10.255.0.1"));
    let t = &c.tenants[0];
    assert_eq!((t.name.as_str(), t.vni), ("blue", 1001));
    assert_eq!(t.lan_ports, ["lan0"]);
    let routes: Vec<_> = t
        .routes
        .iter()
        .map(|r| {
            (
                r.prefix.to_string(),
                r.peer.as_deref(),
                r.circuit.as_deref(),
                r.port.as_deref(),
                r.via,
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            (
                "10.2.0.0/24".into(),
                Some("site-b"),
                Some("inet"),
                None,
                None
            ),
            (
                "fd00:2::/64".into(),
                Some("site-b"),
                Some("inet"),
                None,
                None
            ),
            (
                "10.2.100.0/24".into(),
                Some("site-b"),
                Some("mpls"),
                None,
                None
            ),
            (
                "fd00:2:100::/64".into(),
                Some("site-b"),
                Some("mpls"),
                None,
                None
            ),
            (
                "10.1.100.0/24".into(),
                None,
                None,
                Some("lan0"),
                ip("10.1.0.2")
            ),
            (
                "fd00:1:100::/64".into(),
                None,
                None,
                Some("lan0"),
                ip("fd00:1::2")
            ),
        ]
    );
    let p = &c.peers[0];
    assert_eq!(
        (p.name.as_str(), p.kind, p.loopback),
        ("site-b", PeerType::Overlay, ip("10.255.0.2"))
    );
    let circuits: Vec<_> = p
        .circuits
        .iter()
        .map(|x| (x.port.as_str(), Some(x.address)))
        .collect();
    assert_eq!(
        circuits,
        [("inet", ip("198.18.1.2")), ("mpls", ip("198.18.2.2"))]
    );
    let sa = &p.sas[0];
    assert_eq!(
        (sa.tenant.as_str(), sa.suite, sa.esn, sa.replay_window),
        ("blue", Suite::Aes128Gcm16, true, 1024)
    );
    assert_eq!((sa.out.spi, sa.inbound.spi), (0x1000, 0x2000));
    // The key files were read (20 bytes each: AES-128 and the salt), and differ.
    let (k_out, k_in) = (
        sa.out.key.as_ref().unwrap(),
        sa.inbound.key.as_ref().unwrap(),
    );
    assert_eq!((k_out.expose().len(), k_in.expose().len()), (20, 20));
    assert_ne!(k_out.expose(), k_in.expose());
    // Keys never show: not in Debug, not in the serialised configuration.
    let shown = format!("{c:?}") + &serde_json::to_string(&c).unwrap();
    let hex: String = k_out.expose().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&hex), "a key is shown");
    assert!(format!("{k_out:?}").contains("20 bytes"));
}

#[test]
fn crlf_line_endings() {
    let text = std::fs::read_to_string(file("lab/site-a.yaml")).unwrap();
    let crlf = text.replace('\n', "\r\n");
    // The real path: key files are found beside the configuration.
    let path = &file("lab/site-a.yaml");
    assert_eq!(
        sdwan_conf::parse(&crlf, path).unwrap(),
        sdwan_conf::parse(&text, path).unwrap()
    );
    // Lines are still counted right.
    let bad = crlf.replace("- { port: mpls, address", "- { port: wan9, address");
    let err = sdwan_conf::parse(&bad, path).unwrap_err();
    let line = text
        .lines()
        .position(|l| l.contains("- { port: mpls, address"))
        .unwrap()
        + 1;
    assert_eq!(err.line(), Some(line), "{err}");
    assert_eq!(err.field(), Some("peers[0].circuits[1].port"));
}

#[test]
fn lab_site_b() {
    let c = load(&file("lab/site-b.yaml")).unwrap();
    assert_eq!(c.node.name, "site-b");
    assert_eq!(c.dpdk.mbufs, 8191);
    assert_eq!(c.workers.cores, vec![0]);
    assert_eq!(c.workers.control_core, 1);
    assert_eq!(c.management.socket, Path::new("/run/sdwan-lab/site-b.sock"));
    assert_eq!(
        c.ports[0].addresses,
        [net("10.2.0.1/24"), net("fd00:2::1/64")]
    );
    assert_eq!(
        c.ports[1].addresses,
        [net("198.18.1.2/24"), net("fd00:ff:1::2/64")]
    );
    assert_eq!(
        c.ports[2].addresses,
        [net("198.18.2.2/24"), net("fd00:ff:2::2/64")]
    );
    assert!(c.routes.is_empty());
    assert_eq!(c.node.loopback, ip("10.255.0.2"));
    let sa = &c.peers[0].sas[0];
    assert_eq!((sa.out.spi, sa.inbound.spi), (0x2000, 0x1000));
    // Each site's outbound key is the other's inbound one.
    let a = load(&file("lab/site-a.yaml")).unwrap();
    let sa_a = &a.peers[0].sas[0];
    assert_eq!(sa.out.key, sa_a.inbound.key);
    assert_eq!(sa.inbound.key, sa_a.out.key);
}

#[test]
fn minimal_config_takes_defaults() {
    let text = "\
node: {name: n1}
ports:
  - name: p0
    device: net_tap0
    role: lan
    addresses: [192.0.2.1/24]
";
    let c = sdwan_conf::parse(text, Path::new("min.yaml")).unwrap();
    assert_eq!(c.dpdk, Dpdk::default());
    assert_eq!(
        c.dpdk.eal_args,
        ["--no-huge", "-m", "512", "--no-pci", "--no-shconf"]
    );
    assert_eq!(c.dpdk.mbufs, 16383);
    assert_eq!(c.workers, Workers::default());
    assert_eq!(c.workers.cores, vec![1]);
    assert_eq!(c.management.socket, Path::new("/run/sdwand/n1.sock"));
    assert_eq!(c.ports[0].mtu, 1500);
    assert!(c.routes.is_empty());
}

#[test]
fn empty_optional_sections_take_defaults() {
    let text = "\
node: {name: n1}
dpdk:
workers:
management:
ports:
  - name: p0
    device: net_tap0
    role: wan
    addresses:
      - fd00:9::1/64
    mac: ~
routes:
  - prefix: fd00:10::/64
    port: p0
";
    let c = sdwan_conf::parse(text, Path::new("min.yaml")).unwrap();
    assert_eq!(c.dpdk, Dpdk::default());
    assert_eq!(c.workers, Workers::default());
    assert_eq!(c.management.socket, Path::new("/run/sdwand/n1.sock"));
    assert_eq!(c.ports[0].addresses, [net("fd00:9::1/64")]);
    assert_eq!(c.routes[0].via, None);
}

#[test]
fn branch_bgp_example() {
    let c = load(&file("examples/branch-bgp.yaml")).unwrap();
    assert_eq!(c.node.name, "branch-nantes-01");
    let wan: Vec<_> = c
        .interfaces()
        .into_iter()
        .filter(|i| i.role == PortRole::Wan)
        .map(|i| (i.name, i.transport, i.trusted))
        .collect();
    assert_eq!(
        wan,
        [
            ("fiber".to_string(), "internet".to_string(), false),
            ("mpls".to_string(), "mpls".to_string(), true)
        ]
    );
    assert!(c.peers.is_empty(), "peers are learned");
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(b.asn, 65000);
    assert_eq!(
        b.router_id,
        std::net::Ipv4Addr::new(10, 255, 30, 1),
        "node.loopback"
    );
    assert_eq!(
        (b.hold_time_s, b.connect_retry_s, b.graceful_restart_s),
        (90, 5, 120)
    );
    assert_eq!(
        (b.transport_id("internet"), b.transport_id("mpls")),
        (Some(1), Some(2))
    );
    assert_eq!(b.keys.suite, Suite::Aes256Gcm16);
    assert_eq!(
        (
            b.keys.rotate_s,
            b.keys.grace_s,
            b.keys.switch_after_s,
            b.keys.replay_window
        ),
        (3600, 30, 5, 1024)
    );
    assert_eq!((&b.listen, &b.route_reflector), (&None, &None));
    assert!(b.groups.is_empty());
    // Route targets: given, and the default <asn>:<vni>.
    let rts: Vec<_> = c.tenants.iter().map(|t| t.route_target).collect();
    assert_eq!(
        rts,
        [
            Some(RouteTarget::As2 {
                asn: 65000,
                local: 1001
            }),
            Some(RouteTarget::As2 {
                asn: 65000,
                local: 2001
            })
        ]
    );
    assert_eq!(c.tenants[0].advertise, [net("10.31.0.0/16")]);
    assert!(c.tenants[1].advertise.is_empty());
    // The one neighbor, the reflector, resolved.
    let n = c.bgp_neighbors();
    assert_eq!(n.len(), 1);
    let n = &n[0];
    assert_eq!(n.address, ip("192.0.2.10").unwrap());
    assert_eq!((n.remote_as, n.port, n.hold_time_s), (65000, 179, 30));
    assert_eq!(n.local_address, ip("203.0.113.34"));
    assert!(!n.passive && !n.route_reflector_client);
    assert_eq!(n.tenants, ["corp", "guest"], "all tenants");
    // The password was read from keys/, without its line break, and never shows.
    let pw = n.password.as_ref().unwrap();
    assert_eq!(pw.expose(), b"example-nantes-Xq3v9");
    let shown = format!("{c:?}{n:?}") + &serde_json::to_string(&c).unwrap();
    assert!(!shown.contains("example-nantes"), "a password is shown");
}

#[test]
fn reflector_example() {
    let c = load(&file("examples/reflector.yaml")).unwrap();
    assert!(c.ports.is_empty(), "a pure reflector has no ports");
    assert!(c.tenants.iter().all(|t| t.lan_ports.is_empty()));
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(b.router_id, std::net::Ipv4Addr::new(10, 255, 0, 100));
    assert_eq!(
        b.route_reflector.as_ref().unwrap().cluster_id,
        std::net::Ipv4Addr::new(10, 255, 0, 100)
    );
    let l = b.listen.as_ref().unwrap();
    assert_eq!((l.address, l.port), (ip("0.0.0.0").unwrap(), 179));
    let groups: Vec<_> = b
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.tenants.clone().unwrap()))
        .collect();
    assert_eq!(
        groups,
        [
            ("corp-sites", vec!["corp".to_string()]),
            ("guest-sites", vec!["guest".to_string()])
        ]
    );
    // Route targets match the edge's (same AS, same VNIs).
    let edge = load(&file("examples/branch-bgp.yaml")).unwrap();
    let rts = |c: &sdwan_conf::Config| -> Vec<_> {
        c.tenants
            .iter()
            .map(|t| (t.name.clone(), t.route_target))
            .collect()
    };
    assert_eq!(rts(&c), rts(&edge));
    let n = c.bgp_neighbors();
    let summary: Vec<_> = n
        .iter()
        .map(|n| {
            (
                n.address.to_string(),
                n.group.as_deref().unwrap(),
                n.remote_as,
                n.hold_time_s,
                n.route_reflector_client,
                n.passive,
                n.tenants.join(","),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "198.51.100.21".into(),
                "corp-sites",
                65000,
                30,
                true,
                true,
                "corp".into()
            ),
            (
                "198.51.100.22".into(),
                "corp-sites",
                65000,
                30,
                true,
                true,
                "corp".into()
            ),
            (
                "198.51.100.41".into(),
                "guest-sites",
                65000,
                90,
                true,
                true,
                "guest".into()
            ),
            (
                "203.0.113.34".into(),
                "corp-sites",
                65000,
                30,
                true,
                true,
                "corp,guest".into()
            ),
        ]
    );
    // Passwords: the group's, or the neighbor's own (the same file as the edge's).
    assert_eq!(
        n[0].password.as_ref().unwrap().expose(),
        b"example-corp-7hTz2"
    );
    assert_eq!(
        n[2].password.as_ref().unwrap().expose(),
        b"example-guest-Lp4w8"
    );
    assert_eq!(n[3].password, edge.bgp_neighbors()[0].password);
}
