//! The `bgp` section: each rule is reported with the exact `file:line:column: field: message`,
//! defaults are resolved, route targets read back as themselves, and passwords never show.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use sdwan_conf::{parse, Bgp, BgpKeys, BgpListen, ConfigError, RouteTarget, Suite};

const FILE: &str = "conf/site-x.yaml";
const PASSWORD: &str = "s3cret-Pa55word";

/// A valid edge; the cases below edit it. Line numbers on the right (the comments are taken
/// out, so the cases can match whole lines).
fn base() -> String {
    let text = "\
node: { name: a, loopback: 10.255.0.1 }                                          # 1
ports:                                                                            # 2
  - { name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24] }        # 3
  - { name: inet, device: net_null1, role: wan, addresses: [198.18.1.1/24], transport: internet }  # 4
  - { name: mpls, device: net_null2, role: wan, addresses: [198.18.2.1/24] }      # 5
tenants:                                                                          # 6
  - name: blue                                                                    # 7
    vni: 1001                                                                     # 8
    lan_ports: [lan0]                                                             # 9
  - name: red                                                                     # 10
    vni: 1002                                                                     # 11
bgp:                                                                              # 12
  asn: 65001                                                                      # 13
  hold_time_s: 90                                                                 # 14
  transports:                                                                     # 15
    internet: 1                                                                   # 16
    mpls: 2                                                                       # 17
  keys:                                                                           # 18
    rotate_s: 3600                                                                # 19
  groups:                                                                         # 20
    - name: rr                                                                    # 21
      remote_as: 65001                                                            # 22
      tenants: [blue]                                                             # 23
  neighbors:                                                                      # 24
    - address: 198.18.1.10                                                        # 25
      group: rr                                                                   # 26
";
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim_end().to_owned() + "\n")
        .collect()
}

/// The base with line `n` (1-based) replaced by `with` (which may hold several lines).
fn edit(n: usize, with: &str) -> String {
    let b = base();
    let mut lines: Vec<&str> = b.lines().collect();
    lines[n - 1] = with;
    lines.join("\n") + "\n"
}

/// The base with `with` inserted before line `n` (`n` = 27: at the end).
fn insert(n: usize, with: &str) -> String {
    let b = base();
    let mut lines: Vec<&str> = b.lines().collect();
    lines.insert(n - 1, with);
    lines.join("\n") + "\n"
}

/// The error is exactly `want`, and shows no password.
#[track_caller]
fn check(text: &str, want: &str) {
    let err = parse(text, Path::new(FILE)).expect_err("accepted an invalid configuration");
    let shown = err.to_string();
    assert!(
        matches!(err, ConfigError::Invalid { .. }),
        "not an Invalid error: {shown}"
    );
    assert_eq!(shown, want, "\n--- text:\n{text}");
    assert!(!shown.contains(PASSWORD), "a password in an error: {shown}");
}

#[test]
fn base_is_valid() {
    let c = parse(&base(), Path::new(FILE)).unwrap();
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(b.asn, 65001);
    assert_eq!(b.transport_id("internet"), Some(1));
    assert_eq!(b.transport_id("mpls"), Some(2));
    assert_eq!(b.transport_id("lte"), None);
}

#[test]
fn without_bgp_nothing_changes() {
    let text: String = base()
        .lines()
        .take(11)
        .map(|l| l.to_owned() + "\n")
        .collect();
    let c = parse(&text, Path::new(FILE)).unwrap();
    assert!(c.bgp.is_none());
    assert!(c.bgp_neighbors().is_empty());
    assert_eq!(c.tenants[0].route_target, None);
    assert!(c.tenants[0].advertise.is_empty());
}

// ---- bgp.asn

#[test]
fn asn_out_of_range() {
    check(
        &edit(13, "  asn: 0"),
        "conf/site-x.yaml:13:8: bgp.asn: 0 is out of range 1..=4294967295",
    );
    check(
        &edit(13, "  asn: 4294967296"),
        "conf/site-x.yaml:13:8: bgp.asn: 4294967296 is out of range 1..=4294967295",
    );
}

#[test]
fn asn_is_not_as_trans() {
    check(
        &edit(13, "  asn: 23456"),
        "conf/site-x.yaml:13:8: bgp.asn: AS 23456 is AS_TRANS (RFC 6793), which stands for a \
         4-byte AS and is never an AS of its own",
    );
}

#[test]
fn asn_is_required() {
    check(
        &edit(13, ""),
        "conf/site-x.yaml:14:3: bgp.asn: missing required field `asn`",
    );
    let empty: String = base()
        .lines()
        .take(12)
        .map(|l| l.to_owned() + "\n")
        .collect();
    check(
        &empty,
        "conf/site-x.yaml:12:4: bgp.asn: missing required field `asn`",
    );
}

#[test]
fn unknown_key_in_bgp() {
    check(
        &insert(14, "  hold_time: 9"),
        "conf/site-x.yaml:14:3: bgp.hold_time: unknown field `hold_time`, expected one of \
         asn, router_id, hold_time_s, connect_retry_s, graceful_restart_s, transports, keys, \
         listen, route_reflector, groups, neighbors",
    );
}

// ---- bgp.router_id

#[test]
fn router_id_must_be_a_nonzero_ipv4_address() {
    check(
        &insert(14, "  router_id: 0.0.0.0"),
        "conf/site-x.yaml:14:14: bgp.router_id: the BGP identifier 0.0.0.0 is not valid \
         (RFC 6286)",
    );
    check(
        &insert(14, "  router_id: \"fd00::1\""),
        "conf/site-x.yaml:14:14: bgp.router_id: invalid BGP identifier \"fd00::1\": a BGP \
         identifier is an IPv4 address",
    );
    check(
        &insert(14, "  router_id: 10.255.0"),
        "conf/site-x.yaml:14:14: bgp.router_id: invalid BGP identifier \"10.255.0\": invalid \
         IP address syntax (expected an IPv4 address, e.g. 10.255.0.1)",
    );
}

#[test]
fn router_id_defaults_to_an_ipv4_loopback_only() {
    check(
        &edit(1, "node: { name: a }"),
        "conf/site-x.yaml:13:3: bgp.router_id: a router ID is required: its default, \
         node.loopback, is not set",
    );
    check(
        &edit(1, "node: { name: a, loopback: \"fd00::1\" }"),
        "conf/site-x.yaml:13:3: bgp.router_id: a router ID is required: its default, \
         node.loopback, is fd00::1, not IPv4",
    );
    // Given, it needs no loopback.
    let text = edit(1, "node: { name: a }")
        .replace("  asn: 65001\n", "  asn: 65001\n  router_id: 10.9.9.9\n");
    let c = parse(&text, Path::new(FILE)).unwrap();
    assert_eq!(c.bgp.unwrap().router_id, Ipv4Addr::new(10, 9, 9, 9));
}

// ---- timers

#[test]
fn hold_time_is_zero_or_at_least_three() {
    check(
        &edit(14, "  hold_time_s: 2"),
        "conf/site-x.yaml:14:16: bgp.hold_time_s: hold time 2 is not allowed: 0 (no \
         keepalives) or 3..=65535 (RFC 4271 4.2)",
    );
    check(
        &edit(14, "  hold_time_s: 65536"),
        "conf/site-x.yaml:14:16: bgp.hold_time_s: 65536 is out of range 0..=65535",
    );
    for ok in ["0", "3", "65535"] {
        let c = parse(&edit(14, &format!("  hold_time_s: {ok}")), Path::new(FILE)).unwrap();
        assert_eq!(c.bgp.unwrap().hold_time_s.to_string(), ok);
    }
}

#[test]
fn connect_retry_range() {
    check(
        &insert(15, "  connect_retry_s: 0"),
        "conf/site-x.yaml:15:20: bgp.connect_retry_s: 0 is out of range 1..=3600",
    );
    check(
        &insert(15, "  connect_retry_s: 3601"),
        "conf/site-x.yaml:15:20: bgp.connect_retry_s: 3601 is out of range 1..=3600",
    );
}

#[test]
fn graceful_restart_range() {
    check(
        &insert(15, "  graceful_restart_s: 4096"),
        "conf/site-x.yaml:15:23: bgp.graceful_restart_s: 4096 is out of range 0..=4095",
    );
    let c = parse(&insert(15, "  graceful_restart_s: 0"), Path::new(FILE)).unwrap();
    assert_eq!(c.bgp.unwrap().graceful_restart_s, 0, "0 = off");
}

// ---- transports

#[test]
fn transport_ids_are_1_to_255() {
    check(
        &edit(16, "    internet: 0"),
        "conf/site-x.yaml:16:15: bgp.transports.internet: 0 is out of range 1..=255",
    );
    check(
        &edit(16, "    internet: 256"),
        "conf/site-x.yaml:16:15: bgp.transports.internet: 256 is out of range 1..=255",
    );
}

#[test]
fn transport_ids_are_unique() {
    check(
        &edit(17, "    mpls: 1"),
        "conf/site-x.yaml:17:11: bgp.transports.mpls: id 1 is already transport \"internet\"'s",
    );
}

#[test]
fn transport_names_follow_the_port_transport_rule() {
    check(
        &insert(18, "    \"lte 4g\": 3"),
        "conf/site-x.yaml:18:5: bgp.transports.lte 4g: invalid transport name \"lte 4g\": use \
         1 to 32 characters from A-Z a-z 0-9 _ -",
    );
}

#[test]
fn every_wan_transport_has_an_id() {
    // The port's transport defaults to its name: the error is at the name.
    check(
        &edit(17, ""),
        "conf/site-x.yaml:5:13: ports[2].name: transport \"mpls\" of WAN port \"mpls\" has no id \
         in bgp.transports (ids are given for: internet)",
    );
    // Given: at the transport.
    check(
        &edit(16, "    inet: 1"),
        "conf/site-x.yaml:4:88: ports[1].transport: transport \"internet\" of WAN port \"inet\" \
         has no id in bgp.transports (ids are given for: inet, mpls)",
    );
    // VLANs share their port's transport; LAN ports need none.
    let vlan = edit(
        5,
        "  - { name: mpls, device: net_null2, role: wan, addresses: [198.18.2.1/24], vlans: [{ id: 7, addresses: [198.18.7.1/24] }] }",
    );
    assert!(parse(&vlan, Path::new(FILE)).is_ok());
}

// ---- keys

#[test]
fn key_settings_ranges() {
    check(
        &edit(19, "    rotate_s: 9"),
        "conf/site-x.yaml:19:15: bgp.keys.rotate_s: 9 is out of range 10..=2592000",
    );
    check(
        &edit(19, "    rotate_s: 2592001"),
        "conf/site-x.yaml:19:15: bgp.keys.rotate_s: 2592001 is out of range 10..=2592000",
    );
    check(
        &insert(20, "    grace_s: 0"),
        "conf/site-x.yaml:20:14: bgp.keys.grace_s: 0 is out of range 1..=3600",
    );
    check(
        &insert(20, "    switch_after_s: 601"),
        "conf/site-x.yaml:20:21: bgp.keys.switch_after_s: 601 is out of range 1..=600",
    );
    check(
        &insert(20, "    replay_window: 32"),
        "conf/site-x.yaml:20:20: bgp.keys.replay_window: replay window 32 is too small: 0 \
         (anti-replay off) or 64..=65536",
    );
    check(
        &insert(20, "    suite: aes64"),
        "conf/site-x.yaml:20:12: bgp.keys.suite: unknown variant `aes64`, expected one \
         of aes128gcm16, aes256gcm16",
    );
    check(
        &insert(20, "    rotate: 9"),
        "conf/site-x.yaml:20:5: bgp.keys.rotate: unknown field `rotate`, expected one of \
         suite, rotate_s, grace_s, switch_after_s, replay_window",
    );
}

#[test]
fn grace_and_switch_are_shorter_than_rotation() {
    check(
        &insert(20, "    grace_s: 3600"),
        "conf/site-x.yaml:20:14: bgp.keys.grace_s: grace_s (3600 s) must be shorter than \
         rotate_s (3600 s)",
    );
    check(
        &edit(
            19,
            "    rotate_s: 10\n    switch_after_s: 10\n    grace_s: 9",
        ),
        "conf/site-x.yaml:20:21: bgp.keys.switch_after_s: switch_after_s (10 s) must be \
         shorter than rotate_s (10 s)",
    );
    // grace_s took its default (30 s): the error is at rotate_s.
    check(
        &edit(19, "    rotate_s: 20"),
        "conf/site-x.yaml:19:15: bgp.keys.rotate_s: grace_s (30 s) must be shorter than \
         rotate_s (20 s)",
    );
}

// ---- listen

#[test]
fn listen_settings() {
    check(
        &insert(20, "  listen: { address: 224.0.0.5 }"),
        "conf/site-x.yaml:20:22: bgp.listen.address: invalid listen address \"224.0.0.5\": a \
         multicast or broadcast address",
    );
    check(
        &insert(20, "  listen: { port: 0 }"),
        "conf/site-x.yaml:20:19: bgp.listen.port: 0 is out of range 1..=65535",
    );
    check(
        &insert(20, "  listen: { address: 10.1.0.1/24 }"),
        "conf/site-x.yaml:20:22: bgp.listen.address: invalid listen address \"10.1.0.1/24\": \
         invalid IP address syntax (expected an IPv4 or IPv6 address without prefix length)",
    );
    // Present but empty: on, with the defaults.
    let c = parse(&insert(20, "  listen:"), Path::new(FILE)).unwrap();
    assert_eq!(
        c.bgp.unwrap().listen,
        Some(BgpListen {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 179
        })
    );
    let c = parse(
        &insert(20, "  listen: { address: \"::\", port: 1179 }"),
        Path::new(FILE),
    )
    .unwrap();
    let l = c.bgp.unwrap().listen.unwrap();
    assert_eq!((l.address.to_string(), l.port), ("::".into(), 1179));
}

// ---- route reflector

#[test]
fn cluster_id_is_an_ipv4_address() {
    check(
        &insert(20, "  route_reflector: { cluster_id: \"fd00::9\" }"),
        "conf/site-x.yaml:20:34: bgp.route_reflector.cluster_id: invalid BGP identifier \
         \"fd00::9\": a BGP identifier is an IPv4 address",
    );
    check(
        &insert(20, "  route_reflector: { cluster: 10.0.0.1 }"),
        "conf/site-x.yaml:20:22: bgp.route_reflector.cluster: unknown field `cluster`, \
         expected one of cluster_id",
    );
}

#[test]
fn route_reflector_clients_need_a_reflector() {
    check(
        &insert(24, "      route_reflector_client: true"),
        "conf/site-x.yaml:24:31: bgp.groups[0].route_reflector_client: route_reflector_client \
         needs bgp.route_reflector (this sdwand reflects no routes)",
    );
    check(
        &insert(27, "      route_reflector_client: true"),
        "conf/site-x.yaml:27:31: bgp.neighbors[0].route_reflector_client: \
         route_reflector_client needs bgp.route_reflector (this sdwand reflects no routes)",
    );
    let ok = insert(24, "      route_reflector_client: true")
        .replace("  groups:\n", "  route_reflector:\n  groups:\n");
    let c = parse(&ok, Path::new(FILE)).unwrap();
    assert!(c.bgp_neighbors()[0].route_reflector_client);
}

// ---- groups

#[test]
fn group_names() {
    check(
        &edit(21, "    - name: \"r r\""),
        "conf/site-x.yaml:21:13: bgp.groups[0].name: invalid node name \"r r\": use 1 to 32 \
         characters from A-Z a-z 0-9 _ -",
    );
    check(
        &insert(24, "    - name: rr"),
        "conf/site-x.yaml:24:13: bgp.groups[1].name: group \"rr\" is defined twice (also \
         bgp.groups[0])",
    );
}

#[test]
fn remote_as_rules() {
    check(
        &edit(22, "      remote_as: 23456"),
        "conf/site-x.yaml:22:18: bgp.groups[0].remote_as: AS 23456 is AS_TRANS (RFC 6793), \
         which stands for a 4-byte AS and is never an AS of its own",
    );
    check(
        &insert(27, "      remote_as: 0"),
        "conf/site-x.yaml:27:18: bgp.neighbors[0].remote_as: 0 is out of range \
         1..=4294967295",
    );
}

#[test]
fn session_tenants() {
    check(
        &edit(23, "      tenants: [blue, green]"),
        "conf/site-x.yaml:23:23: bgp.groups[0].tenants[1]: unknown tenant \"green\" (tenants \
         are: blue, red)",
    );
    check(
        &edit(23, "      tenants: [blue, blue]"),
        "conf/site-x.yaml:23:23: bgp.groups[0].tenants[1]: tenant \"blue\" is already \
         tenants[0]",
    );
    check(
        &edit(23, "      tenants: []"),
        "conf/site-x.yaml:23:16: bgp.groups[0].tenants: at least one tenant (leave tenants out \
         for all of them)",
    );
    check(
        &insert(27, "      tenants: [pink]"),
        "conf/site-x.yaml:27:17: bgp.neighbors[0].tenants[0]: unknown tenant \"pink\" (tenants \
         are: blue, red)",
    );
}

#[test]
fn hold_time_overrides() {
    check(
        &insert(24, "      hold_time_s: 1"),
        "conf/site-x.yaml:24:20: bgp.groups[0].hold_time_s: hold time 1 is not allowed: 0 (no \
         keepalives) or 3..=65535 (RFC 4271 4.2)",
    );
    check(
        &insert(27, "      hold_time_s: 70000"),
        "conf/site-x.yaml:27:20: bgp.neighbors[0].hold_time_s: 70000 is out of range 0..=65535",
    );
}

#[test]
fn unknown_keys_in_groups_and_neighbors() {
    check(
        &insert(24, "      pasword: x"),
        "conf/site-x.yaml:24:7: bgp.groups[0].pasword: unknown field `pasword`, expected one \
         of name, remote_as, route_reflector_client, tenants, password, password_file, \
         hold_time_s",
    );
    check(
        &insert(27, "      ttl: 2"),
        "conf/site-x.yaml:27:7: bgp.neighbors[0].ttl: unknown field `ttl`, expected one of \
         address, group, remote_as, port, local_address, passive, password, password_file, \
         hold_time_s, route_reflector_client, tenants",
    );
}

// ---- passwords

#[test]
fn password_length() {
    check(
        &insert(24, &format!("      password: \"{}\"", "x".repeat(81))),
        "conf/site-x.yaml:24:17: bgp.groups[0].password: a TCP-MD5 password is 1 to 80 bytes; \
         81 given (the password is not shown)",
    );
    check(
        &insert(27, "      password: \"\""),
        "conf/site-x.yaml:27:17: bgp.neighbors[0].password: a TCP-MD5 password is 1 to 80 \
         bytes; 0 given (the password is not shown)",
    );
    let c = parse(
        &insert(24, &format!("      password: \"{}\"", "x".repeat(80))),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(
        c.bgp_neighbors()[0]
            .password
            .as_ref()
            .unwrap()
            .expose()
            .len(),
        80
    );
}

#[test]
fn password_or_password_file() {
    check(
        &insert(
            24,
            &format!("      password: \"{PASSWORD}\"\n      password_file: keys/rr.txt"),
        ),
        "conf/site-x.yaml:25:22: bgp.groups[0].password_file: give either password or \
         password_file, not both",
    );
    check(
        &insert(
            27,
            &format!("      password_file: keys/rr.txt\n      password: \"{PASSWORD}\""),
        ),
        "conf/site-x.yaml:27:22: bgp.neighbors[0].password_file: give either password or \
         password_file, not both",
    );
}

#[test]
fn password_of_another_type_is_not_shown() {
    check(
        &insert(24, &format!("      password: [\"{PASSWORD}\"]")),
        "conf/site-x.yaml:24:17: bgp.groups[0].password: expected string scalar",
    );
    // A plain scalar that looks like a number is the password as written.
    let c = parse(&insert(24, "      password: 0123456"), Path::new(FILE)).unwrap();
    assert_eq!(
        c.bgp_neighbors()[0].password.as_ref().unwrap().expose(),
        b"0123456"
    );
}

#[test]
fn password_files_are_read_beside_the_configuration() {
    let dir = std::env::temp_dir().join(format!("sdwan-conf-bgp-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/rr.txt"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("keys/crlf.txt"), format!("{PASSWORD}\r\n")).unwrap();
    std::fs::write(dir.join("keys/empty.txt"), "\n").unwrap();
    std::fs::write(dir.join("keys/long.txt"), "y".repeat(81)).unwrap();
    let file = dir.join("site.yaml");
    for name in ["rr.txt", "crlf.txt"] {
        let text = insert(24, &format!("      password_file: keys/{name}"));
        let c = parse(&text, &file).unwrap();
        let n = &c.bgp_neighbors()[0];
        assert_eq!(
            n.password.as_ref().unwrap().expose(),
            PASSWORD.as_bytes(),
            "one final line break is not part of the password"
        );
        let group = &c.bgp.as_ref().unwrap().groups[0];
        assert_eq!(group.password, n.password, "read into the group's password");
        // Never shown: not in Debug (the length only), not serialised.
        let shown = format!("{c:?}{n:?}") + &serde_json::to_string(&c).unwrap();
        assert!(!shown.contains(PASSWORD), "a password is shown");
        assert!(format!("{n:?}").contains(&format!("Secret({} bytes)", PASSWORD.len())));
    }
    // Unreadable, empty, too long: at the field, naming the file, never the content.
    let err = |name: &str| {
        parse(
            &insert(27, &format!("      password_file: keys/{name}")),
            &file,
        )
        .unwrap_err()
        .to_string()
    };
    let path = dir.join("keys/nope.txt");
    assert_eq!(
        err("nope.txt"),
        format!(
            "{}:27:22: bgp.neighbors[0].password_file: cannot read password file {}: No such \
             file or directory (os error 2)",
            file.display(),
            path.display()
        )
    );
    assert_eq!(
        err("empty.txt"),
        format!(
            "{}:27:22: bgp.neighbors[0].password_file: password file {}: a TCP-MD5 password is \
             1 to 80 bytes; 0 given (the password is not shown)",
            file.display(),
            dir.join("keys/empty.txt").display()
        )
    );
    let long = err("long.txt");
    assert!(
        long.contains("81 given") && !long.contains("yyyy"),
        "{long}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- neighbors

#[test]
fn neighbor_addresses() {
    check(
        &edit(25, "    - address: 224.0.0.9"),
        "conf/site-x.yaml:25:16: bgp.neighbors[0].address: invalid neighbor address \
         \"224.0.0.9\": an unspecified, loopback, broadcast or multicast address",
    );
    check(
        &insert(27, "    - address: 198.18.1.10"),
        "conf/site-x.yaml:27:16: bgp.neighbors[1].address: neighbor 198.18.1.10 is already \
         bgp.neighbors[0]",
    );
    check(
        &edit(25, "    - address: 198.18.2.1"),
        "conf/site-x.yaml:25:16: bgp.neighbors[0].address: 198.18.2.1 is an address of port \
         \"mpls\" itself",
    );
    check(
        &edit(25, "    - address: 10.255.0.1"),
        "conf/site-x.yaml:25:16: bgp.neighbors[0].address: 10.255.0.1 is node.loopback itself",
    );
    // IPv6 neighbors are fine.
    let c = parse(&edit(25, "    - address: \"fd00:ff::10\""), Path::new(FILE)).unwrap();
    assert!(c.bgp_neighbors()[0].address.is_ipv6());
}

#[test]
fn neighbor_group_must_exist() {
    check(
        &edit(26, "      group: rrr"),
        "conf/site-x.yaml:26:14: bgp.neighbors[0].group: unknown group \"rrr\" (groups are: rr)",
    );
    let no_groups = base().replace(
        "  groups:\n    - name: rr\n      remote_as: 65001\n      tenants: [blue]\n",
        "",
    );
    check(
        &no_groups,
        "conf/site-x.yaml:22:14: bgp.neighbors[0].group: unknown group \"rr\" (groups are: none)",
    );
}

#[test]
fn neighbor_port() {
    check(
        &insert(27, "      port: 0"),
        "conf/site-x.yaml:27:13: bgp.neighbors[0].port: 0 is out of range 1..=65535",
    );
    check(
        &insert(27, "      port: 65536"),
        "conf/site-x.yaml:27:13: bgp.neighbors[0].port: 65536 is out of range 1..=65535",
    );
    let c = parse(&insert(27, "      port: 1179"), Path::new(FILE)).unwrap();
    assert_eq!(c.bgp_neighbors()[0].port, 1179);
}

#[test]
fn neighbor_local_address() {
    check(
        &insert(27, "      local_address: \"fd00::1\""),
        "conf/site-x.yaml:27:22: bgp.neighbors[0].local_address: local address fd00::1 is IPv6 \
         but the neighbor's address 198.18.1.10 is IPv4",
    );
    check(
        &insert(27, "      local_address: 198.18.1.10"),
        "conf/site-x.yaml:27:22: bgp.neighbors[0].local_address: local address 198.18.1.10 is \
         the neighbor's address itself",
    );
    check(
        &insert(27, "      local_address: 0.0.0.0"),
        "conf/site-x.yaml:27:22: bgp.neighbors[0].local_address: invalid local address \
         \"0.0.0.0\": an unspecified, loopback, broadcast or multicast address",
    );
}

#[test]
fn passive_neighbors() {
    check(
        &insert(27, "      passive: true"),
        "conf/site-x.yaml:27:16: bgp.neighbors[0].passive: a passive neighbor needs bgp.listen \
         (where its session is accepted)",
    );
    check(
        &insert(27, "      passive: true\n      port: 1179"),
        "conf/site-x.yaml:28:13: bgp.neighbors[0].port: port is where we connect to; a passive \
         neighbor is only accepted",
    );
    let ok = insert(27, "      passive: true").replace("  groups:\n", "  listen:\n  groups:\n");
    let c = parse(&ok, Path::new(FILE)).unwrap();
    assert!(c.bgp_neighbors()[0].passive);
}

// ---- tenants

#[test]
fn route_target_forms() {
    check(
        &insert(9, "    route_target: \"65000\""),
        "conf/site-x.yaml:9:19: tenants[0].route_target: invalid route target \"65000\": \
         expected ASN:NUMBER (65000:100, 4200000000:100) or IPV4:NUMBER (192.0.2.1:100)",
    );
    check(
        &insert(9, "    route_target: 4200000000:65536"),
        "conf/site-x.yaml:9:19: tenants[0].route_target: invalid route target \
         \"4200000000:65536\": the number is 0..=65535 after an IPv4 address or a 4-byte AS",
    );
    check(
        &insert(9, "    route_target: 192.0.2.1:70000"),
        "conf/site-x.yaml:9:19: tenants[0].route_target: invalid route target \
         \"192.0.2.1:70000\": the number is 0..=65535 after an IPv4 address or a 4-byte AS",
    );
    check(
        &insert(9, "    route_target: 0:5"),
        "conf/site-x.yaml:9:19: tenants[0].route_target: invalid route target \"0:5\": AS 0 is \
         reserved (RFC 7607)",
    );
    let c = parse(
        &insert(9, "    route_target: 65000:4294967295"),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(
        c.tenants[0].route_target,
        Some(RouteTarget::As2 {
            asn: 65000,
            local: u32::MAX
        })
    );
}

#[test]
fn route_targets_are_unique() {
    // Given, against the other tenant's default (65001:1002).
    check(
        &insert(9, "    route_target: \"65001:1002\""),
        "conf/site-x.yaml:12:10: tenants[1].vni: route target 65001:1002 (the default, \
         <bgp.asn>:<vni>) is already tenant \"blue\"'s",
    );
    check(
        &insert(12, "    route_target: \"65001:1001\""),
        "conf/site-x.yaml:12:19: tenants[1].route_target: route target 65001:1001 is already \
         tenant \"blue\"'s",
    );
}

#[test]
fn default_route_target_must_fit() {
    check(
        &edit(13, "  asn: 4200000001").replace("vni: 1002", "vni: 70000"),
        "conf/site-x.yaml:11:10: tenants[1].vni: the default route target 4200000001:70000 \
         does not fit: after a 4-byte AS the number is 0..=65535; give the tenant a route_target",
    );
    let c = parse(
        &edit(13, "  asn: 4200000001")
            .replace("vni: 1002", "vni: 70000\n    route_target: 192.0.2.1:7"),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(
        c.tenants[0].route_target,
        Some(RouteTarget::As4 {
            asn: 4_200_000_001,
            local: 1001
        })
    );
}

#[test]
fn route_target_and_advertise_need_bgp() {
    let no_bgp = |t: &str| -> String {
        t.lines()
            .take_while(|l| *l != "bgp:")
            .map(|l| l.to_owned() + "\n")
            .collect()
    };
    check(
        &no_bgp(&insert(9, "    route_target: \"65001:1\"")),
        "conf/site-x.yaml:9:19: tenants[0].route_target: route_target applies with the bgp \
         section, which is not configured",
    );
    check(
        &no_bgp(&insert(9, "    advertise: [10.9.0.0/16]")),
        "conf/site-x.yaml:9:16: tenants[0].advertise: advertise applies with the bgp section, \
         which is not configured",
    );
}

#[test]
fn advertised_prefixes() {
    check(
        &insert(9, "    advertise: [10.9.0.1/16]"),
        "conf/site-x.yaml:9:17: tenants[0].advertise[0]: prefix \"10.9.0.1/16\" has host bits set \
         (did you mean 10.9.0.0/16?)",
    );
    check(
        &insert(
            9,
            "    advertise: [10.9.0.0/16, \"fd00:9::/48\", 10.9.0.0/16]",
        ),
        "conf/site-x.yaml:9:45: tenants[0].advertise[2]: prefix 10.9.0.0/16 is already \
         advertise[0]",
    );
    let c = parse(
        &insert(9, "    advertise: [10.9.0.0/16, \"fd00:9::/48\"]"),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(c.tenants[0].advertise.len(), 2);
    assert!(c.tenants[1].advertise.is_empty());
}

// ---- ports and the reflector

#[test]
fn ports_may_be_empty_only_on_a_reflector() {
    let no_ports = base()
        .replace(
            "ports:\n  - { name: lan0, device: net_null0, role: lan, addresses: [10.1.0.1/24] }\n  - { name: inet, device: net_null1, role: wan, addresses: [198.18.1.1/24], transport: internet }\n  - { name: mpls, device: net_null2, role: wan, addresses: [198.18.2.1/24] }\n",
            "",
        )
        .replace("    lan_ports: [lan0]\n", "");
    check(
        &no_ports,
        "conf/site-x.yaml:1:1: ports: at least one port is required (only a pure route \
         reflector, with bgp.route_reflector, has none)",
    );
    let reflector = no_ports.replace("  groups:\n", "  route_reflector:\n  groups:\n");
    let c = parse(&reflector, Path::new(FILE)).unwrap();
    assert!(c.ports.is_empty());
    assert!(c.tenants.iter().all(|t| t.lan_ports.is_empty()));
    // A tenant's routes to a LAN port still need that port.
    check(
        &reflector.replace(
            "    vni: 1001\n",
            "    vni: 1001\n    routes: [{ prefix: 10.9.0.0/16, port: lan0 }]\n",
        ),
        "conf/site-x.yaml:5:43: tenants[0].routes[0].port: port \"lan0\" is not a LAN port of \
         tenant \"blue\" (its ports: )",
    );
}

#[test]
fn static_overlay_peers_still_allowed() {
    let key = "0x00112233445566778899aabbccddeeff01020304";
    let text = base()
        + &format!(
            "peers:\n  - name: b\n    loopback: 10.255.0.2\n    circuits: [{{ port: inet, address: 198.18.1.2 }}]\n    sas:\n      - {{ tenant: blue, suite: aes128gcm16, out: {{ spi: 0x1000, key: \"{key}\" }}, in: {{ spi: 0x2000, key: \"{key}\" }} }}\n"
        );
    let c = parse(&text, Path::new(FILE)).unwrap();
    assert_eq!(c.peers.len(), 1);
    assert!(c.bgp.is_some());
}

// ---- resolved values

#[test]
fn defaults_are_resolved() {
    let c = parse(&base(), Path::new(FILE)).unwrap();
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(b.router_id, Ipv4Addr::new(10, 255, 0, 1), "node.loopback");
    assert_eq!(
        (b.hold_time_s, b.connect_retry_s, b.graceful_restart_s),
        (90, 5, 120)
    );
    assert_eq!(
        (
            Bgp::DEFAULT_HOLD_TIME_S,
            Bgp::DEFAULT_CONNECT_RETRY_S,
            Bgp::DEFAULT_GRACEFUL_RESTART_S
        ),
        (90, 5, 120)
    );
    assert_eq!(b.keys, BgpKeys::default());
    assert_eq!(
        (
            b.keys.suite,
            b.keys.rotate_s,
            b.keys.grace_s,
            b.keys.switch_after_s,
            b.keys.replay_window
        ),
        (Suite::Aes128Gcm16, 3600, 30, 5, 1024)
    );
    assert_eq!(b.listen, None);
    assert_eq!(b.route_reflector, None);
    // Tenants: <asn>:<vni>.
    let rts: Vec<String> = c
        .tenants
        .iter()
        .map(|t| t.route_target.unwrap().to_string())
        .collect();
    assert_eq!(rts, ["65001:1001", "65001:1002"]);
    // The neighbor: the group's remote AS and tenants, the section's hold time, port 179.
    let n = &c.bgp_neighbors()[0];
    assert_eq!(n.address, "198.18.1.10".parse::<IpAddr>().unwrap());
    assert_eq!(n.group.as_deref(), Some("rr"));
    assert_eq!((n.remote_as, n.hold_time_s, n.port), (65001, 90, 179));
    assert_eq!(n.tenants, ["blue"]);
    assert_eq!((n.passive, n.route_reflector_client), (false, false));
    assert_eq!((n.local_address, &n.password), (None, &None));
}

#[test]
fn neighbor_overrides_group_overrides_section() {
    let text = base()
        .replace(
            "      tenants: [blue]\n",
            "      tenants: [blue]\n      hold_time_s: 30\n      password: group-pw\n",
        )
        .replace("  groups:\n", "  route_reflector: { cluster_id: 10.255.0.100 }\n  groups:\n")
        + "      remote_as: 65002\n      hold_time_s: 9\n      password: own-pw\n      route_reflector_client: true\n      tenants: [red, blue]\n"
        + "    - address: 198.18.2.20\n      group: rr\n"
        + "    - address: 198.18.2.30\n";
    let c = parse(&text, Path::new(FILE)).unwrap();
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(
        b.route_reflector.as_ref().unwrap().cluster_id,
        Ipv4Addr::new(10, 255, 0, 100)
    );
    let n = c.bgp_neighbors();
    // Its own values.
    assert_eq!((n[0].remote_as, n[0].hold_time_s), (65002, 9));
    assert_eq!(n[0].password.as_ref().unwrap().expose(), b"own-pw");
    assert!(n[0].route_reflector_client);
    assert_eq!(n[0].tenants, ["red", "blue"]);
    // The group's.
    assert_eq!((n[1].remote_as, n[1].hold_time_s), (65001, 30));
    assert_eq!(n[1].password.as_ref().unwrap().expose(), b"group-pw");
    assert!(!n[1].route_reflector_client);
    assert_eq!(n[1].tenants, ["blue"]);
    // No group: the section's defaults, every tenant.
    assert_eq!((n[2].remote_as, n[2].hold_time_s), (65001, 90));
    assert_eq!(n[2].password, None);
    assert_eq!(n[2].tenants, ["blue", "red"]);
    assert!(n[2].group.is_none());
    // The cluster ID defaults to the router ID.
    let c = parse(&insert(20, "  route_reflector:"), Path::new(FILE)).unwrap();
    assert_eq!(
        c.bgp.unwrap().route_reflector.unwrap().cluster_id,
        Ipv4Addr::new(10, 255, 0, 1)
    );
}

#[test]
fn inline_passwords_never_show() {
    let text = insert(24, &format!("      password: \"{PASSWORD}\""));
    let c = parse(&text, Path::new(FILE)).unwrap();
    let shown = format!("{c:?}{:?}", c.bgp_neighbors()) + &serde_json::to_string(&c).unwrap();
    assert!(!shown.contains(PASSWORD), "a password is shown: {shown}");
    assert!(shown.contains(&format!("Secret({} bytes)", PASSWORD.len())));
    // Nor in errors about the rest of its group.
    check(
        &insert(
            24,
            &format!("      password: \"{PASSWORD}\"\n      hold_time_s: 1"),
        ),
        "conf/site-x.yaml:25:20: bgp.groups[0].hold_time_s: hold time 1 is not allowed: 0 (no \
         keepalives) or 3..=65535 (RFC 4271 4.2)",
    );
}

// ---- route targets

#[test]
fn route_target_round_trip() {
    for (text, rt) in [
        (
            "65000:1001",
            RouteTarget::As2 {
                asn: 65000,
                local: 1001,
            },
        ),
        (
            "1:4294967295",
            RouteTarget::As2 {
                asn: 1,
                local: u32::MAX,
            },
        ),
        (
            "4200000001:7",
            RouteTarget::As4 {
                asn: 4_200_000_001,
                local: 7,
            },
        ),
        (
            "65536:65535",
            RouteTarget::As4 {
                asn: 65536,
                local: 65535,
            },
        ),
        (
            "65000L:7",
            RouteTarget::As4 {
                asn: 65000,
                local: 7,
            },
        ),
        (
            "192.0.2.1:7",
            RouteTarget::Ipv4 {
                addr: Ipv4Addr::new(192, 0, 2, 1),
                local: 7,
            },
        ),
    ] {
        assert_eq!(text.parse::<RouteTarget>(), Ok(rt), "{text}");
        assert_eq!(rt.to_string(), text);
        assert_eq!(
            RouteTarget::from_extended_community(rt.to_extended_community()),
            Some(rt)
        );
    }
    for bad in [
        "",
        ":",
        "65000",
        "65000:",
        ":5",
        "a:5",
        "65000:x",
        "65000:-1",
        "+5:5",
        "5:+5",
        "65000:4294967296",
        "4294967296:1",
        "70000:65536",
        "1.2.3:5",
        "1.2.3.4:65536",
        "65000L:65536",
        "0:1",
        "65000:1:2",
        " 65000:1",
    ] {
        assert!(bad.parse::<RouteTarget>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn route_target_encodings() {
    let enc = |s: &str| s.parse::<RouteTarget>().unwrap().to_extended_community();
    // RFC 4360 3.1: type 0x00, sub-type 0x02, 2-byte AS, 4-byte number.
    assert_eq!(
        enc("65000:1001"),
        [0x00, 0x02, 0xfd, 0xe8, 0x00, 0x00, 0x03, 0xe9]
    );
    // RFC 4360 3.2: type 0x01, IPv4 address, 2-byte number.
    assert_eq!(enc("192.0.2.1:7"), [0x01, 0x02, 192, 0, 2, 1, 0x00, 0x07]);
    // RFC 5668: type 0x02, 4-byte AS, 2-byte number.
    assert_eq!(
        enc("4200000001:300"),
        [0x02, 0x02, 0xfa, 0x56, 0xea, 0x01, 0x01, 0x2c]
    );
    assert_eq!(enc("65000L:1"), [0x02, 0x02, 0, 0, 0xfd, 0xe8, 0, 1]);
    // Not route targets: another sub-type (route origin 0x03), a non-transitive type.
    assert_eq!(
        RouteTarget::from_extended_community([0x00, 0x03, 0, 1, 0, 0, 0, 1]),
        None
    );
    assert_eq!(
        RouteTarget::from_extended_community([0x40, 0x02, 0, 1, 0, 0, 0, 1]),
        None
    );
    // Tenant defaults.
    assert_eq!(
        RouteTarget::default_for(65001, 16_777_215),
        Some(RouteTarget::As2 {
            asn: 65001,
            local: 16_777_215
        })
    );
    assert_eq!(
        RouteTarget::default_for(65536, 65535),
        Some(RouteTarget::As4 {
            asn: 65536,
            local: 65535
        })
    );
    assert_eq!(RouteTarget::default_for(65536, 65536), None);
}

#[test]
fn serialises_with_route_targets_and_transports() {
    let c = parse(&base(), Path::new(FILE)).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["tenants"][0]["route_target"], "65001:1001");
    assert_eq!(json["bgp"]["transports"]["mpls"], 2);
    assert_eq!(json["bgp"]["router_id"], "10.255.0.1");
}

#[test]
fn error_file_is_the_one_given() {
    let err = parse(&edit(13, "  asn: 0"), &PathBuf::from("other/dir/r.yaml")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("other/dir/r.yaml:13:8: bgp.asn:"));
}
