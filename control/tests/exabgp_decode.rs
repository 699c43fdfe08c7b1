//! ExaBGP as an oracle: every kind of message this codec sends is decoded by ExaBGP 4.2 and
//! what ExaBGP reads must be what was encoded.
//!
//! UPDATEs go through `exabgp --decode HEX CONFIG` (it needs a configuration naming the
//! families; the environment variables keep it from dropping privileges or opening its CLI
//! pipes). ExaBGP 4.2's `--decode` does nothing with OPEN, KEEPALIVE or ROUTE-REFRESH and
//! misreads a NOTIFICATION by one byte, so those go through tests/interop/exabgp_decode.py,
//! which hands the message body to ExaBGP's own classes and prints ExaBGP's API JSON.
//!
//! Without `exabgp` on PATH the test says so and passes, unless `CI` is set: then it fails.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use sdwan_control::bgp::wire::attributes::{AsPath, Community, LargeCommunity, Origin};
use sdwan_control::bgp::wire::extcomm::{ExtCommunity, RouteTarget};
use sdwan_control::bgp::wire::nlri::VpnRoute;
use sdwan_control::bgp::wire::notification::cease_subcode;
use sdwan_control::bgp::wire::open::{GrFamily, GracefulRestart};
use sdwan_control::bgp::wire::rd::RouteDistinguisher;
use sdwan_control::bgp::wire::*;

fn exabgp() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("exabgp"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "exabgp is not on PATH and CI is set: install it (apt-get install -y exabgp)"
        );
        eprintln!("skip: exabgp is not on PATH (apt-get install -y exabgp to run this test)");
    }
    found
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A scratch directory with the configuration `exabgp --decode` reads.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("exabgp-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("decode.conf"),
            "neighbor 127.0.0.2 {\n  router-id 10.0.0.1;\n  local-address 127.0.0.1;\n  \
             local-as 65000;\n  peer-as 65000;\n  family {\n    ipv4 unicast;\n    \
             ipv4 mpls-vpn;\n    ipv6 mpls-vpn;\n  }\n}\n",
        )
        .unwrap();
        Scratch(dir)
    }

    fn conf(&self) -> PathBuf {
        self.0.join("decode.conf")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env_cmd(program: &Path) -> Command {
    let mut c = Command::new(program);
    // Run as whoever runs the test, no CLI pipes, log to stdout where the JSON is read.
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    c.env("exabgp.daemon.user", user)
        .env("exabgp.daemon.drop", "false")
        .env("exabgp.api.cli", "false")
        .env("exabgp.log.destination", "stdout");
    c
}

/// ExaBGP's JSON for an UPDATE (its "update" object, or the message for an End-of-RIB),
/// from `exabgp --decode`.
fn decode_update(exabgp: &Path, scratch: &Scratch, msg: &[u8]) -> Value {
    let out = env_cmd(exabgp)
        .arg("--decode")
        .arg(hex(msg))
        .arg(scratch.conf())
        .output()
        .expect("run exabgp");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let json = text
        .lines()
        .find_map(|l| l.split_once("update json ").map(|(_, j)| j))
        .unwrap_or_else(|| panic!("exabgp did not decode {}:\n{text}", hex(msg)));
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    // Routes come under "update"; an End-of-RIB as "eor" beside it.
    let m = &v["neighbor"]["message"];
    match m.get("update") {
        Some(u) => u.clone(),
        None => m.clone(),
    }
}

/// ExaBGP's JSON for the other message kinds, from tests/interop/exabgp_decode.py.
fn decode_other(msgs: &[Vec<u8>]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/exabgp_decode.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args(msgs.iter().map(|m| hex(m)))
        .output()
        .expect("run exabgp_decode.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn session() -> Session {
    Session::all_families(true)
}

fn rd(s: &str) -> RouteDistinguisher {
    s.parse().unwrap()
}

fn rt(s: &str) -> ExtCommunity {
    s.parse::<RouteTarget>().unwrap().into()
}

fn vpn(label: u32, rd_: &str, prefix: &str) -> Nlri {
    Nlri::Vpn(VpnRoute::new(label, rd(rd_), prefix.parse().unwrap()))
}

fn base_attributes() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttrValue::Origin(Origin::Igp)),
        PathAttribute::new(AttrValue::AsPath(AsPath::default())),
        PathAttribute::new(AttrValue::LocalPref(150)),
    ]
}

#[test]
fn exabgp_reads_what_we_send() {
    let Some(exabgp) = exabgp() else { return };
    let scratch = Scratch::new();
    let s = session();
    let nh: IpAddr = "192.0.2.1".parse().unwrap();

    // VPN-IPv4: two routes, Route Targets in three forms, ORIGINATOR_ID and CLUSTER_LIST as a
    // route reflector would add them.
    let mut attrs = base_attributes();
    attrs.push(PathAttribute::new(AttrValue::ExtCommunities(vec![
        rt("65000:100"),
        rt("10.0.0.1:5"),
        rt("4200000000:7"),
    ])));
    attrs.push(PathAttribute::new(AttrValue::OriginatorId(
        "10.0.0.9".parse().unwrap(),
    )));
    attrs.push(PathAttribute::new(AttrValue::ClusterList(vec![
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
    ])));
    let u = Update::announce(
        Family::IPV4_VPN,
        nh,
        attrs,
        vec![
            vpn(100, "65000:100", "10.1.0.0/24"),
            vpn(101, "10.0.0.1:5", "10.1.1.0/24"),
        ],
    );
    let j = decode_update(&exabgp, &scratch, &u.encode(&s).unwrap());
    let a = &j["attribute"];
    assert_eq!(a["origin"], "igp");
    assert_eq!(a["local-preference"], 150);
    assert_eq!(a["originator-id"], "10.0.0.9");
    assert_eq!(
        a["cluster-list"],
        serde_json::json!(["10.0.0.1", "10.0.0.2"])
    );
    let ecs: Vec<&str> = a["extended-community"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["string"].as_str().unwrap())
        .collect();
    // ExaBGP marks every 4-byte AS Route Target with L.
    assert_eq!(
        ecs,
        [
            "target:65000:100",
            "target:10.0.0.1:5",
            "target:4200000000L:7"
        ]
    );
    let routes = j["announce"]["ipv4 mpls-vpn"]["192.0.2.1"]
        .as_array()
        .unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["nlri"], "10.1.0.0/24");
    assert_eq!(routes[0]["rd"], "65000:100");
    assert_eq!(routes[0]["label"], serde_json::json!([[100]]));
    assert_eq!(routes[1]["nlri"], "10.1.1.0/24");
    assert_eq!(routes[1]["rd"], "10.0.0.1:5");
    assert_eq!(routes[1]["label"], serde_json::json!([[101]]));

    // VPN-IPv6 via an IPv6 next hop, with a 4-byte AS RD.
    let mut attrs = base_attributes();
    attrs.push(PathAttribute::new(AttrValue::ExtCommunities(vec![rt(
        "65000:200",
    )])));
    let u = Update::announce(
        Family::IPV6_VPN,
        "2001:db8::1".parse().unwrap(),
        attrs,
        vec![vpn(200, "4200000000:9", "2001:db8:1::/48")],
    );
    let j = decode_update(&exabgp, &scratch, &u.encode(&s).unwrap());
    let routes = j["announce"]["ipv6 mpls-vpn"]["2001:db8::1"]
        .as_array()
        .unwrap();
    assert_eq!(routes[0]["nlri"], "2001:db8:1::/48");
    assert_eq!(routes[0]["rd"], "4200000000:9");
    assert_eq!(routes[0]["label"], serde_json::json!([[200]]));

    // IPv4 unicast with the community kinds and an AS_PATH with a 4-byte AS.
    let u = Update::announce(
        Family::IPV4_UNICAST,
        nh,
        vec![
            PathAttribute::new(AttrValue::Origin(Origin::Incomplete)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence(vec![
                65001,
                4_200_000_000,
            ]))),
            PathAttribute::new(AttrValue::Med(20)),
            PathAttribute::new(AttrValue::Communities(vec![
                Community(65000 << 16 | 1),
                Community::NO_EXPORT,
            ])),
            PathAttribute::new(AttrValue::LargeCommunities(vec![LargeCommunity {
                global_admin: 65000,
                local1: 1,
                local2: 2,
            }])),
        ],
        vec![Nlri::Prefix("10.20.0.0/16".parse().unwrap())],
    );
    let j = decode_update(&exabgp, &scratch, &u.encode(&s).unwrap());
    let a = &j["attribute"];
    assert_eq!(a["origin"], "incomplete");
    assert_eq!(a["as-path"], serde_json::json!([65001, 4_200_000_000u32]));
    assert_eq!(a["med"], 20);
    assert_eq!(
        a["community"],
        serde_json::json!([[65000, 1], [65535, 65281]])
    );
    assert_eq!(a["large-community"], serde_json::json!([[65000, 1, 2]]));
    assert_eq!(
        j["announce"]["ipv4 unicast"]["192.0.2.1"][0]["nlri"],
        "10.20.0.0/16"
    );

    // Withdrawals: VPN-IPv4 with the 0x800000 label, IPv4 unicast in the legacy field.
    let w = Update::withdraw(
        Family::IPV4_VPN,
        vec![Nlri::Vpn(VpnRoute::withdrawal(
            rd("65000:100"),
            "10.1.0.0/24".parse().unwrap(),
        ))],
    );
    let j = decode_update(&exabgp, &scratch, &w.encode(&s).unwrap());
    let gone = &j["withdraw"]["ipv4 mpls-vpn"][0];
    assert_eq!(gone["nlri"], "10.1.0.0/24");
    assert_eq!(gone["rd"], "65000:100");
    let w = Update::withdraw(
        Family::IPV4_UNICAST,
        vec![Nlri::Prefix("10.20.0.0/16".parse().unwrap())],
    );
    let j = decode_update(&exabgp, &scratch, &w.encode(&s).unwrap());
    assert_eq!(j["withdraw"]["ipv4 unicast"][0]["nlri"], "10.20.0.0/16");

    // End-of-RIB, both encodings.
    for (family, afi, safi) in [
        (Family::IPV4_VPN, "ipv4", "mpls-vpn"),
        (Family::IPV6_VPN, "ipv6", "mpls-vpn"),
        (Family::IPV4_UNICAST, "ipv4", "unicast"),
    ] {
        let j = decode_update(
            &exabgp,
            &scratch,
            &Update::end_of_rib(family).encode(&s).unwrap(),
        );
        assert_eq!(j["eor"]["afi"], afi, "{j}");
        assert_eq!(j["eor"]["safi"], safi, "{j}");
    }
}

#[test]
fn exabgp_reads_our_other_messages() {
    if exabgp().is_none() {
        return;
    }
    let s = session();
    let open = Open::new(
        4_200_000_000,
        90,
        "10.0.0.1".parse().unwrap(),
        vec![
            Capability::Multiprotocol(Family::IPV4_VPN),
            Capability::Multiprotocol(Family::IPV6_VPN),
            Capability::Multiprotocol(Family::IPV4_RT_CONSTRAINT),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                flags: 0,
                restart_time: 120,
                families: vec![GrFamily {
                    family: Family::IPV4_VPN,
                    flags: GrFamily::FORWARDING_PRESERVED,
                }],
            }),
        ],
    );
    let msgs: Vec<Vec<u8>> = [
        Message::Open(open),
        Message::Keepalive,
        Message::Notification(
            Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "maintenance").unwrap(),
        ),
        Message::RouteRefresh(RouteRefresh::request(Family::IPV4_VPN)),
        Message::RouteRefresh(RouteRefresh::begin(Family::IPV6_VPN)),
        Message::RouteRefresh(RouteRefresh::end(Family::IPV6_VPN)),
    ]
    .iter()
    .map(|m| m.encode(&s).unwrap())
    .collect();
    let j = decode_other(&msgs);
    assert_eq!(j.len(), msgs.len());

    assert_eq!(j[0]["type"], "open");
    let o = &j[0]["neighbor"]["open"];
    assert_eq!(o["version"], 4);
    assert_eq!(o["asn"], 23456, "AS_TRANS in My AS");
    assert_eq!(o["hold_time"], 90);
    assert_eq!(o["router_id"], "10.0.0.1");
    let caps = &o["capabilities"];
    assert_eq!(
        caps["1"]["families"],
        serde_json::json!(["ipv4/mpls-vpn", "ipv6/mpls-vpn", "ipv4/rtc"])
    );
    assert_eq!(caps["65"]["asn4"], 4_200_000_000u32);
    assert_eq!(caps["2"]["name"], "route-refresh");
    assert_eq!(caps["70"]["name"], "enhanced-route-refresh");
    assert_eq!(caps["64"]["time"], 120);
    assert_eq!(
        caps["64"]["address-family-flags"]["ipv4/mpls-vpn"],
        serde_json::json!(["restart"])
    );

    assert_eq!(j[1]["type"], "keepalive");

    assert_eq!(j[2]["type"], "notification");
    let n = &j[2]["neighbor"]["notification"];
    assert_eq!(
        (n["code"].as_u64(), n["subcode"].as_u64()),
        (Some(6), Some(2))
    );
    // Length 11, then "maintenance" (ExaBGP 4.2 leaves the data as hex, see the script).
    assert_eq!(
        n["data"].as_str().unwrap().to_lowercase(),
        format!("0x0b{}", hex(b"maintenance"))
    );

    // ExaBGP calls subtype 0 (a plain request) "query".
    for (i, subtype, afi) in [
        (3, "query", "ipv4"),
        (4, "begin", "ipv6"),
        (5, "end", "ipv6"),
    ] {
        assert_eq!(j[i]["type"], "refresh");
        let r = &j[i]["neighbor"]["route-refresh"];
        assert_eq!(r["afi"], afi);
        assert_eq!(r["safi"], "mpls-vpn");
        assert_eq!(r["subtype"], subtype);
    }
}
