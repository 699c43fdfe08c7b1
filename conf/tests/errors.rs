//! Each class of error names the file, line, column, field and what is wrong.

use std::path::{Path, PathBuf};

use sdwan_conf::{parse, ConfigError};

/// A valid document; the cases below edit it. Line numbers are given on the right.
const BASE: &str = "\
node:                                         # 1
  name: a                                     # 2
workers:                                      # 3
  cores: [2, 3]                               # 4
  control_core: 0                             # 5
ports:                                        # 6
  - name: lan0                                # 7
    device: net_af_packet0,iface=lan0         # 8
    role: lan                                 # 9
    addresses: [10.1.0.1/24, \"fd00:1::1/64\"]  # 10
  - name: inet                                # 11
    device: net_af_packet1,iface=inet         # 12
    role: wan                                 # 13
    addresses: [198.18.1.1/24]                # 14
routes:                                       # 15
  - prefix: 10.2.0.0/24                       # 16
    via: 198.18.1.2                           # 17
    port: inet                                # 18
";

/// BASE with line `n` (1-based) replaced by `with` (which may hold several lines).
fn edit(n: usize, with: &str) -> String {
    let mut lines: Vec<String> = BASE.lines().map(|l| l.to_string()).collect();
    lines[n - 1] = with.to_string();
    lines.join("\n") + "\n"
}

/// BASE with `with` inserted before line `n`.
fn insert(n: usize, with: &str) -> String {
    let mut lines: Vec<String> = BASE.lines().map(|l| l.to_string()).collect();
    lines.insert(n - 1, with.to_string());
    lines.join("\n") + "\n"
}

struct Want {
    line: usize,
    column: Option<usize>,
    field: &'static str,
    message: &'static str,
}

fn want(line: usize, column: usize, field: &'static str, message: &'static str) -> Want {
    Want {
        line,
        column: Some(column),
        field,
        message,
    }
}

#[track_caller]
fn check(text: &str, w: Want) {
    let file = PathBuf::from("conf/site-x.yaml");
    let err = parse(text, &file).expect_err("accepted an invalid configuration");
    let shown = err.to_string();
    let ConfigError::Invalid {
        file: f,
        line,
        column,
        field,
        message,
    } = err
    else {
        panic!("not an Invalid error: {shown}");
    };
    assert_eq!(f, file, "{shown}");
    assert_eq!(
        (line, field.as_str()),
        (w.line, w.field),
        "wrong place: {shown}\n--- text:\n{text}"
    );
    if let Some(c) = w.column {
        assert_eq!(column, c, "wrong column: {shown}");
    }
    assert!(
        message.contains(w.message),
        "message lacks {:?}: {shown}",
        w.message
    );
    assert_eq!(
        shown,
        format!("conf/site-x.yaml:{line}:{column}: {field}: {message}")
    );
}

#[test]
fn base_is_valid() {
    let c = parse(BASE, Path::new("base.yaml")).unwrap();
    assert_eq!(c.ports.len(), 2);
}

fn remove(from: usize, to: usize) -> String {
    let lines: Vec<&str> = BASE.lines().collect();
    let mut kept: Vec<&str> = lines[..from - 1].to_vec();
    kept.extend_from_slice(&lines[to..]);
    kept.join("\n") + "\n"
}

// ---- syntax

#[test]
fn yaml_syntax_error() {
    check(
        &edit(10, "    addresses: [10.1.0.1/24, \"fd00:1::1/64\""),
        Want {
            line: 11,
            column: None,
            field: "ports[0].addresses",
            message: "",
        },
    );
}

#[test]
fn tab_indentation() {
    check(
        &edit(2, "\tname: a"),
        Want {
            line: 2,
            column: None,
            field: "<document>",
            message: "tab",
        },
    );
}

#[test]
fn empty_document() {
    check(
        "# nothing here\n",
        Want {
            line: 2,
            column: None,
            field: "<document>",
            message: "the document is empty",
        },
    );
}

#[test]
fn second_document() {
    check(
        &(BASE.to_string() + "---\nnode: {name: b}\n"),
        Want {
            line: 20,
            column: None,
            field: "<document>",
            message: "multiple",
        },
    );
}

#[test]
fn duplicate_key() {
    check(
        &insert(3, "  name: b"),
        want(3, 3, "node.name", "duplicate key `name`"),
    );
}

// ---- unknown keys

#[test]
fn unknown_key_in_port() {
    check(
        &insert(14, "    bogus: 1"),
        want(14, 5, "ports[1].bogus", "unknown field `bogus`"),
    );
}

#[test]
fn unknown_top_level_key() {
    check(
        &insert(15, "bogus_section: []"),
        want(15, 1, "bogus_section", "unknown field `bogus_section`"),
    );
}

// ---- wrong types

#[test]
fn string_where_integer() {
    check(
        &edit(4, "  cores: [2, x]"),
        want(4, 14, "workers.cores[1]", "expected an integer"),
    );
}

#[test]
fn quoted_integer() {
    check(
        &insert(6, "  rx_burst: \"32\""),
        want(6, 13, "workers.rx_burst", "expected an integer"),
    );
}

#[test]
fn scalar_where_list() {
    check(
        &edit(10, "    addresses: 10.1.0.1/24"),
        want(10, 16, "ports[0].addresses", ""),
    );
}

#[test]
fn unknown_role() {
    check(
        &edit(9, "    role: dmz"),
        want(9, 11, "ports[0].role", "dmz"),
    );
}

// ---- missing keys

#[test]
fn missing_node_name() {
    check(
        &edit(2, "  {}"),
        want(2, 3, "node.name", "missing required field `name`"),
    );
}

#[test]
fn missing_node() {
    check(
        &remove(1, 2),
        Want {
            line: 1,
            column: None,
            field: "node",
            message: "missing required field `node`",
        },
    );
}

#[test]
fn missing_port_device() {
    check(
        &edit(12, ""),
        want(11, 5, "ports[1].device", "missing required field `device`"),
    );
}

#[test]
fn missing_port_addresses() {
    check(
        &remove(14, 14),
        want(
            11,
            5,
            "ports[1].addresses",
            "missing required field `addresses`",
        ),
    );
}

#[test]
fn missing_ports() {
    check(
        &remove(6, 18),
        want(1, 1, "ports", "at least one port is required"),
    );
}

#[test]
fn empty_ports() {
    check(
        &(remove(6, 18) + "ports: []\n"),
        want(6, 8, "ports", "at least one port is required"),
    );
}

#[test]
fn empty_addresses() {
    check(
        &edit(14, "    addresses: []"),
        want(
            14,
            16,
            "ports[1].addresses",
            "at least one interface address",
        ),
    );
}

// ---- ranges

#[test]
fn rx_burst_out_of_range() {
    check(
        &insert(6, "  rx_burst: 300"),
        want(6, 13, "workers.rx_burst", "300 is out of range 1..=256"),
    );
}

#[test]
fn mtu_out_of_range() {
    check(
        &insert(11, "    mtu: 100"),
        want(11, 10, "ports[0].mtu", "100 is out of range 576..=9000"),
    );
}

#[test]
fn mbufs_out_of_range() {
    check(
        &insert(3, "dpdk: {mbufs: 100}"),
        want(3, 15, "dpdk.mbufs", "100 is out of range 1023..=4194303"),
    );
}

#[test]
fn negative_core() {
    check(
        &edit(4, "  cores: [-1]"),
        want(4, 11, "workers.cores[0]", "-1 is out of range 0..=1023"),
    );
}

#[test]
fn core_too_large() {
    check(
        &edit(5, "  control_core: 1024"),
        want(
            5,
            17,
            "workers.control_core",
            "1024 is out of range 0..=1023",
        ),
    );
}

#[test]
fn idle_sleep_out_of_range() {
    check(
        &insert(6, "  idle_sleep_max_us: 100001"),
        want(
            6,
            22,
            "workers.idle_sleep_max_us",
            "out of range 0..=100000",
        ),
    );
}

// ---- names, addresses, MACs

#[test]
fn invalid_node_name() {
    check(
        &edit(2, "  name: a b"),
        want(2, 9, "node.name", "invalid node name \"a b\""),
    );
}

#[test]
fn port_name_too_long() {
    check(
        &edit(7, "  - name: a-very-long-port-name"),
        want(7, 11, "ports[0].name", "1 to 15 characters"),
    );
}

#[test]
fn invalid_interface_address() {
    check(
        &edit(10, "    addresses: [10.1.0.1/24, 10.0.0.300/24]"),
        want(
            10,
            30,
            "ports[0].addresses[1]",
            "invalid interface address \"10.0.0.300/24\"",
        ),
    );
}

#[test]
fn interface_address_without_prefix_length() {
    check(
        &edit(14, "    addresses:\n      - 198.18.1.1"),
        want(15, 9, "ports[1].addresses[0]", "prefix length is missing"),
    );
}

#[test]
fn interface_address_is_network_address() {
    check(
        &edit(14, "    addresses: [198.18.1.0/24]"),
        want(
            14,
            17,
            "ports[1].addresses[0]",
            "network address of 198.18.1.0/24",
        ),
    );
}

#[test]
fn invalid_prefix_length() {
    check(
        &edit(16, "  - prefix: 10.2.0.0/33"),
        want(
            16,
            13,
            "routes[0].prefix",
            "invalid route prefix \"10.2.0.0/33\"",
        ),
    );
}

#[test]
fn prefix_with_host_bits() {
    check(
        &edit(16, "  - prefix: 10.2.0.1/24"),
        want(
            16,
            13,
            "routes[0].prefix",
            "host bits set (did you mean 10.2.0.0/24?)",
        ),
    );
}

#[test]
fn invalid_next_hop() {
    check(
        &edit(17, "    via: 198.18.1"),
        want(17, 10, "routes[0].via", "invalid next hop \"198.18.1\""),
    );
}

#[test]
fn invalid_mac() {
    check(
        &insert(11, "    mac: \"02:00:00:00:00\""),
        want(
            11,
            10,
            "ports[0].mac",
            "invalid MAC address \"02:00:00:00:00\"",
        ),
    );
}

#[test]
fn multicast_mac() {
    check(
        &insert(11, "    mac: 01:00:5e:00:00:01"),
        want(11, 10, "ports[0].mac", "multicast"),
    );
}

#[test]
fn invalid_device() {
    check(
        &edit(8, "    device: \",iface=lan0\""),
        want(8, 13, "ports[0].device", "invalid device"),
    );
}

#[test]
fn nul_in_eal_argument() {
    check(
        &insert(3, "dpdk:\n  eal_args: [\"--no-huge\", \"-m\\0\"]"),
        want(4, 27, "dpdk.eal_args[1]", "NUL"),
    );
}

#[test]
fn socket_path_too_long() {
    let long = format!("  socket: /run/{}.sock", "x".repeat(100));
    check(
        &insert(3, &format!("management:\n{long}")),
        want(4, 11, "management.socket", "at most 107"),
    );
}

// ---- across fields

#[test]
fn duplicate_port_name() {
    check(
        &edit(11, "  - name: lan0"),
        want(
            11,
            11,
            "ports[1].name",
            "duplicate port name \"lan0\" (also ports[0])",
        ),
    );
}

#[test]
fn duplicate_device() {
    check(
        &edit(12, "    device: net_af_packet0,iface=inet"),
        want(
            12,
            13,
            "ports[1].device",
            "device \"net_af_packet0\" is already used by port \"lan0\"",
        ),
    );
}

#[test]
fn memif_without_multi_process() {
    // The default EAL arguments have --no-shconf, which net_memif cannot work with.
    check(
        &edit(12, "    device: net_memif0,role=server,socket=/tmp/x.sock"),
        want(
            12,
            13,
            "ports[1].device",
            "a net_memif device needs DPDK's multi-process support",
        ),
    );
    let ok = insert(
        1,
        "dpdk: { eal_args: [\"--no-huge\", \"--file-prefix\", \"a\"] }",
    )
    .replace(
        "net_af_packet1,iface=inet",
        "net_memif0,role=server,socket=/tmp/x.sock",
    );
    parse(&ok, Path::new("ok.yaml")).expect("memif with --file-prefix is valid");
}

#[test]
fn duplicate_address() {
    check(
        &edit(14, "    addresses: [198.18.1.1/24, 10.1.0.1/16]"),
        want(
            14,
            32,
            "ports[1].addresses[1]",
            "10.1.0.1 is already assigned",
        ),
    );
}

#[test]
fn duplicate_worker_core() {
    check(
        &edit(4, "  cores: [2, 2]"),
        want(4, 14, "workers.cores[1]", "core 2 is listed twice"),
    );
}

#[test]
fn worker_core_is_control_core() {
    check(
        &edit(4, "  cores: [2, 0]"),
        want(4, 14, "workers.cores[1]", "core 0 is the control core"),
    );
}

#[test]
fn default_worker_core_is_control_core() {
    // cores defaults to [1]: the error points at control_core, which is written.
    check(
        &edit(4, "").replace("control_core: 0", "control_core: 1"),
        want(5, 17, "workers.control_core", "core 1 is the control core"),
    );
}

#[test]
fn empty_worker_cores() {
    check(
        &edit(4, "  cores: []"),
        want(4, 10, "workers.cores", "at least one worker core"),
    );
}

#[test]
fn route_to_unknown_port() {
    check(
        &edit(18, "    port: wan9"),
        want(
            18,
            11,
            "routes[0].port",
            "unknown port \"wan9\" (ports are: lan0, inet)",
        ),
    );
}

#[test]
fn next_hop_of_other_family() {
    check(
        &edit(17, "    via: \"fd00:1::2\""),
        want(
            17,
            10,
            "routes[0].via",
            "next hop fd00:1::2 is IPv6 but prefix 10.2.0.0/24 is IPv4",
        ),
    );
}

#[test]
fn next_hop_outside_connected_subnets() {
    check(
        &edit(17, "    via: 198.18.9.2"),
        want(
            17,
            10,
            "routes[0].via",
            "next hop 198.18.9.2 is not inside a connected subnet of port \"inet\" (connected: 198.18.1.0/24)",
        ),
    );
}

#[test]
fn next_hop_on_other_port() {
    // 10.1.0.2 is connected, but on lan0, not on inet.
    check(
        &edit(17, "    via: 10.1.0.2"),
        want(
            17,
            10,
            "routes[0].via",
            "not inside a connected subnet of port \"inet\"",
        ),
    );
}

#[test]
fn next_hop_without_address_of_its_family() {
    check(
        &edit(16, "  - prefix: \"fd00:2::/64\"").replace("via: 198.18.1.2", "via: \"fd00:1::2\""),
        want(17, 10, "routes[0].via", "it has no IPv6 address"),
    );
}

#[test]
fn next_hop_is_own_address() {
    check(
        &edit(17, "    via: 198.18.1.1"),
        want(
            17,
            10,
            "routes[0].via",
            "is an address of port \"inet\" itself",
        ),
    );
}

#[test]
fn duplicate_route_prefix() {
    let text = BASE.to_string() + "  - prefix: 10.2.0.0/24\n    port: lan0\n";
    check(
        &text,
        want(
            19,
            13,
            "routes[1].prefix",
            "duplicate route for 10.2.0.0/24 (also routes[0])",
        ),
    );
}

#[test]
fn alias_error_points_at_the_use() {
    // Anchors and aliases: the error points where the value is used, not where it is defined.
    let text = edit(17, "    via: &hop 198.18.1.2")
        + "  - prefix: 10.3.0.0/24\n    via: *hop\n    port: lan0\n";
    check(
        &text,
        want(
            20,
            10,
            "routes[1].via",
            "not inside a connected subnet of port \"lan0\"",
        ),
    );
    // The same for an error raised while deserialising.
    let text = edit(17, "    via: &hop 198.18.1.2") + "  - prefix: *hop\n    port: inet\n";
    check(
        &text,
        Want {
            line: 19,
            column: None,
            field: "routes[1].prefix",
            message: "prefix length is missing",
        },
    );
}

// ---- files

#[test]
fn io_error_names_the_file() {
    let err = sdwan_conf::load(Path::new("/nonexistent/site.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/site.yaml: "),
        "{err}"
    );
}

#[test]
fn load_reports_the_path_given() {
    let dir = std::env::temp_dir().join(format!("sdwan-conf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, edit(18, "    port: wan9")).unwrap();
    let err = sdwan_conf::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:18:11: routes[0].port: unknown port \"wan9\" (ports are: lan0, inet)",
            path.display()
        )
    );
}
