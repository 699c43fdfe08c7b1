//! Tenants, peers and SAs: each mistake is reported at its file, line and field, and key
//! material never appears in an error.

use std::path::{Path, PathBuf};

use sdwan_conf::{parse, ConfigError, PeerType};

const KEY: &str = "0x00112233445566778899aabbccddeeff01020304";

/// A valid document; the cases below edit it. Line numbers on the right (the comments are
/// taken out, so the cases can match whole lines).
fn base() -> String {
    let text = format!(
        "\
node: {{ name: a, loopback: 10.255.0.1 }}                                 # 1
ports:                                                                   # 2
  - {{ name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24] }}  # 3
  - {{ name: inet, device: net_null1, role: wan, addresses: [198.18.1.1/24] }}  # 4
tenants:                                                                 # 5
  - name: blue                                                           # 6
    vni: 1001                                                            # 7
    lan_ports: [lan0]                                                    # 8
    routes:                                                              # 9
      - {{ prefix: 10.2.0.0/24, peer: b }}                                 # 10
peers:                                                                   # 11
  - name: b                                                              # 12
    loopback: 10.255.0.2                                                 # 13
    circuits:                                                            # 14
      - {{ port: inet, address: 198.18.1.2 }}                              # 15
    sas:                                                                 # 16
      - tenant: blue                                                     # 17
        suite: aes128gcm16                                               # 18
        out: {{ spi: 0x1000, key: \"{KEY}\" }}                               # 19
        in: {{ spi: 0x2000, key: \"{KEY}\" }}                                # 20
"
    );
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim_end().to_owned() + "\n")
        .collect()
}

fn edit(n: usize, with: &str) -> String {
    let b = base();
    let mut lines: Vec<&str> = b.lines().collect();
    lines[n - 1] = with;
    lines.join("\n") + "\n"
}

#[track_caller]
fn check(text: &str, line: usize, field: &str, message: &str) {
    let file = PathBuf::from("/nonexistent/site.yaml");
    let err = parse(text, &file).expect_err("accepted an invalid configuration");
    let shown = err.to_string();
    let ConfigError::Invalid {
        line: l,
        field: f,
        message: m,
        ..
    } = &err
    else {
        panic!("not an Invalid error: {shown}");
    };
    assert_eq!((*l, f.as_str()), (line, field), "{shown}\n{text}");
    assert!(m.contains(message), "{shown} lacks {message:?}");
    assert!(shown.starts_with("/nonexistent/site.yaml:"), "{shown}");
    assert!(!shown.contains(&KEY[2..12]), "a key in an error: {shown}");
}

#[test]
fn base_is_valid_and_means_what_it_says() {
    let c = parse(&base(), Path::new("x.yaml")).unwrap();
    assert_eq!(c.peers[0].kind, PeerType::Overlay);
    assert_eq!(
        c.peers[0].sas[0].out.key.as_ref().unwrap().expose()[..2],
        [0, 0x11]
    );
    assert!(c.peers[0].sas[0].esn, "ESN is the default");
    assert_eq!(c.peers[0].sas[0].replay_window, 1024);
}

#[test]
fn tenant_mistakes() {
    check(
        &edit(8, "    lan_ports: [lan9]"),
        8,
        "tenants[0].lan_ports[0]",
        "unknown port \"lan9\"",
    );
    check(
        &edit(8, "    lan_ports: [inet]"),
        8,
        "tenants[0].lan_ports[0]",
        "role wan",
    );
    check(
        &edit(7, "    vni: 0"),
        7,
        "tenants[0].vni",
        "out of range 1..=16777215",
    );
    check(
        &edit(7, "    vni: 16777216"),
        7,
        "tenants[0].vni",
        "out of range",
    );
    check(
        &edit(10, "      - { prefix: 10.2.0.0/24, peer: c }"),
        10,
        "tenants[0].routes[0].peer",
        "unknown peer \"c\"",
    );
    check(
        &edit(10, "      - { prefix: 10.2.0.0/24, peer: b, port: lan0 }"),
        10,
        "tenants[0].routes[0].peer",
        "either a peer or a port",
    );
    check(
        &edit(
            10,
            "      - { prefix: 10.2.0.0/24, peer: b, circuit: mpls }",
        ),
        10,
        "tenants[0].routes[0].circuit",
        "no circuit on port \"mpls\"",
    );
    check(
        &edit(
            10,
            "      - { prefix: 10.2.0.0/24, port: lan0, via: 10.9.0.1 }",
        ),
        10,
        "tenants[0].routes[0].via",
        "inside a connected subnet",
    );
    let two = base().replace("tenants:\n", "tenants:\n  - { name: red, vni: 1001 }\n");
    check(
        &two,
        8,
        "tenants[1].vni",
        "VNI 1001 is already used by tenant \"red\"",
    );
    let global = base().replace(
        "peers:",
        "routes:\n  - { prefix: 10.9.0.0/24, via: 10.1.0.9, port: lan0 }\npeers:",
    );
    check(&global, 12, "routes[0].port", "belongs to tenant \"blue\"");
}

#[test]
fn peer_mistakes() {
    check(
        &edit(1, "node: { name: a }"),
        1,
        "node",
        "node.loopback is required",
    );
    check(
        &edit(13, "    loopback: 10.255.0.1"),
        13,
        "peers[0].loopback",
        "node.loopback itself",
    );
    check(
        &edit(13, "    loopback: \"fd00::2\""),
        13,
        "peers[0].loopback",
        "IPv6 but node.loopback",
    );
    check(
        &edit(15, "      - { port: lan0, address: 10.1.0.9 }"),
        15,
        "peers[0].circuits[0].port",
        "role lan",
    );
    check(
        &edit(15, "      - { port: inet, address: 203.0.113.9 }"),
        15,
        "peers[0].circuits[0].address",
        "neither in a connected subnet",
    );
    check(
        &edit(17, "      - tenant: green"),
        17,
        "peers[0].sas[0].tenant",
        "unknown tenant \"green\"",
    );
    check(
        &edit(18, "        suite: aes999"),
        18,
        "peers[0].sas[0].suite",
        "unknown variant",
    );
    let ipsec = base().replace(
        "    loopback: 10.255.0.2\n",
        "    type: ipsec\n    encapsulation: udp\n",
    );
    let c = parse(&ipsec, Path::new("x.yaml")).unwrap();
    assert_eq!(c.peers[0].kind, PeerType::Ipsec);
    let two_circuits = ipsec.replace(
        "      - { port: inet, address: 198.18.1.2 }\n",
        "      - { port: inet, address: 198.18.1.2 }\n      - { port: lan0, address: 10.1.0.9 }\n",
    );
    check(
        &two_circuits,
        16,
        "peers[0].circuits",
        "exactly one circuit (2 given)",
    );
    let udp_overlay = base().replace(
        "    loopback: 10.255.0.2\n",
        "    loopback: 10.255.0.2\n    encapsulation: udp\n",
    );
    check(
        &udp_overlay,
        14,
        "peers[0].encapsulation",
        "peers of type ipsec",
    );
}

#[test]
fn sa_and_key_mistakes() {
    check(
        &edit(19, "        out: { spi: 0x1000, key: \"0x0011\" }"),
        19,
        "peers[0].sas[0].out.key",
        "20 bytes (40 hex digits",
    );
    check(
        &edit(
            19,
            "        out: { spi: 0x1000, key: \"0x00112233445566778899aabbccddeeff0102030z\" }",
        ),
        19,
        "peers[0].sas[0].out.key",
        "even number of hex digits",
    );
    check(
        &edit(
            19,
            &format!("        out: {{ spi: 0x1000, key: \"{KEY}\", key_file: k.hex }}"),
        ),
        19,
        "peers[0].sas[0].out.key_file",
        "either key or key_file",
    );
    check(
        &edit(19, "        out: { spi: 0x1000 }"),
        19,
        "peers[0].sas[0].out.spi",
        "a key is required",
    );
    check(
        &edit(19, &format!("        out: {{ spi: 255, key: \"{KEY}\" }}")),
        19,
        "peers[0].sas[0].out.spi",
        "0 to 255 are reserved",
    );
    check(
        &edit(
            19,
            &format!("        out: {{ spi: \"0x1_000\", key: \"{KEY}\" }}"),
        ),
        19,
        "peers[0].sas[0].out.spi",
        "invalid SPI",
    );
    check(
        &edit(
            20,
            &format!("        in: {{ spi: 0xffffffff, key: \"{KEY}\" }}"),
        ),
        20,
        "peers[0].sas[0].in.spi",
        "no room for the 16 SPIs",
    );
    let window = base().replace(
        "        suite: aes128gcm16\n",
        "        suite: aes128gcm16\n        replay_window: 32\n",
    );
    check(&window, 19, "peers[0].sas[0].replay_window", "too small");
    // A second peer whose inbound block overlaps the first one's (0x2000..=0x200f).
    let second = base()
        + "  - name: c\n    type: ipsec\n    circuits: [{ port: inet, address: 198.18.1.3 }]\n    sas:\n      - tenant: blue\n        suite: aes128gcm16\n"
        + &format!("        out: {{ spi: 0x3000, key: \"{KEY}\" }}\n        in: {{ spi: 0x200f, key: \"{KEY}\" }}\n");
    check(
        &second,
        28,
        "peers[1].sas[0].in.spi",
        "overlap those of peers[0].sas[0]",
    );
}

#[test]
fn key_files_are_read_beside_the_configuration() {
    let dir = std::env::temp_dir().join(format!("sdwan-conf-keys-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/in.hex"), format!("{KEY}\n")).unwrap();
    let text = edit(20, "        in: { spi: 0x2000, key_file: keys/in.hex }");
    let c = parse(&text, &dir.join("site.yaml")).unwrap();
    assert_eq!(
        c.peers[0].sas[0]
            .inbound
            .key
            .as_ref()
            .unwrap()
            .expose()
            .len(),
        20
    );
    // Missing: the error names the file it looked for, at the key_file field.
    let err = parse(
        &edit(20, "        in: { spi: 0x2000, key_file: keys/nope.hex }"),
        &dir.join("site.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(":20:") && err.contains("peers[0].sas[0].in.key_file"),
        "{err}"
    );
    assert!(err.contains("keys/nope.hex"), "{err}");
    // The wrong length for the suite: named, the key not shown.
    std::fs::write(dir.join("keys/short.hex"), "00112233\n").unwrap();
    let err = parse(
        &edit(20, "        in: { spi: 0x2000, key_file: keys/short.hex }"),
        &dir.join("site.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("short.hex") && err.contains("4 bytes given"),
        "{err}"
    );
    assert!(!err.contains("00112233"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn at_most_sixteen_workers_send_into_an_overlay() {
    let cores: Vec<String> = (1..=17).map(|c| c.to_string()).collect();
    let text = base().replace(
        "ports:\n",
        &format!("workers: {{ cores: [{}] }}\nports:\n", cores.join(", ")),
    );
    check(
        &text,
        2,
        "workers.cores",
        "17 worker cores, but an overlay SA has 16 SPIs",
    );
}

#[test]
fn vlan_sub_interfaces() {
    let with_vlans = base().replace(
        "  - { name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24] }\n",
        "  - { name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24],\n      vlans: [{ id: 100, addresses: [10.1.100.1/24] }, { id: 200, addresses: [10.1.200.1/24] }] }\n",
    );
    let ok = with_vlans.replace("    lan_ports: [lan0]", "    lan_ports: [lan0, lan0.100]");
    let c = parse(&ok, Path::new("x.yaml")).unwrap();
    let names: Vec<_> = c
        .interfaces()
        .into_iter()
        .map(|i| (i.name, i.vlan))
        .collect();
    assert_eq!(
        names,
        [
            ("lan0".to_string(), None),
            ("inet".to_string(), None),
            ("lan0.100".to_string(), Some((0, 100))),
            ("lan0.200".to_string(), Some((0, 200))),
        ]
    );
    check(
        &with_vlans.replace("{ id: 200,", "{ id: 100,"),
        4,
        "ports[0].vlans[1].id",
        "VLAN 100 is already vlans[0]",
    );
    check(
        &with_vlans.replace("{ id: 200,", "{ id: 4095,"),
        4,
        "ports[0].vlans[1].id",
        "out of range 1..=4094",
    );
    check(
        &with_vlans.replace("[10.1.200.1/24]", "[10.1.0.1/24]"),
        4,
        "ports[0].vlans[1].addresses[0]",
        "already assigned (ports[0].addresses[0])",
    );
    check(
        &with_vlans.replace("    lan_ports: [lan0]", "    lan_ports: [lan0, lan0.300]"),
        9,
        "tenants[0].lan_ports[1]",
        "unknown port \"lan0.300\" (LAN ports are: lan0, lan0.100, lan0.200)",
    );
}

#[test]
fn circuits_and_path_monitor() {
    let c = parse(&base(), Path::new("x.yaml")).unwrap();
    let i = c.interfaces();
    assert_eq!(
        (i[1].transport.as_str(), i[1].trusted),
        ("inet", false),
        "default: the port's name, untrusted"
    );
    assert_eq!(c.path_monitor, sdwan_conf::PathMonitor::default());
    assert_eq!(
        (
            c.path_monitor.interval_ms,
            c.path_monitor.down_after,
            c.path_monitor.port
        ),
        (100, 3, 4793)
    );
    let wan = "  - { name: inet, device: net_null1, role: wan, addresses: [198.18.1.1/24], transport: mpls-a, trusted: true }";
    let c = parse(&edit(4, wan), Path::new("x.yaml")).unwrap();
    let i = c.interfaces();
    assert_eq!((i[1].transport.as_str(), i[1].trusted), ("mpls-a", true));
    check(
        &edit(3, "  - { name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24], trusted: true }"),
        3,
        "ports[0].trusted",
        "trusted applies to WAN ports",
    );
    check(
        &edit(4, &wan.replace("mpls-a", "mpls a")),
        4,
        "ports[1].transport",
        "",
    );
    // A peer circuit's transport, if given, is the port's.
    let with_transport = edit(
        15,
        "      - { port: inet, address: 198.18.1.2, transport: inet }",
    );
    assert!(parse(&with_transport, Path::new("x.yaml")).is_ok());
    check(
        &edit(
            15,
            "      - { port: inet, address: 198.18.1.2, transport: mpls }",
        ),
        15,
        "peers[0].circuits[0].transport",
        "a path pairs circuits of one transport",
    );
    let with_monitor = |m: &str| base() + "path_monitor:\n" + m;
    let c = parse(
        &with_monitor("  interval_ms: 50\n  down_after: 5\n"),
        Path::new("x.yaml"),
    )
    .unwrap();
    assert_eq!(
        (c.path_monitor.interval_ms, c.path_monitor.down_after),
        (50, 5)
    );
    check(
        &with_monitor("  interval_ms: 5\n"),
        22,
        "path_monitor.interval_ms",
        "out of range 10..=10000",
    );
    check(
        &with_monitor("  down_after: 0\n"),
        22,
        "path_monitor.down_after",
        "out of range 1..=100",
    );
    check(
        &with_monitor("  port: 4789\n"),
        22,
        "path_monitor.port",
        "taken by the tunnels",
    );
    check(
        &with_monitor("  interval_ms: 2000\n"),
        22,
        "path_monitor.idle_interval_ms",
        "shorter than interval_ms",
    );
    check(
        &with_monitor("  intervl_ms: 20\n"),
        22,
        "path_monitor.intervl_ms",
        "unknown field",
    );
}
