//! Messages GoBGP 3.10, ExaBGP 4.2 and FRR 8.4 really sent (control/tests/data/bgp/, made by
//! tests/interop/bgp_capture.sh; see the README there): each one frames, decodes without any
//! RFC 7606 complaint, carries what the implementation was told to send, and re-encodes to
//! the very same bytes.

use std::net::{IpAddr, Ipv4Addr};

use sdwan_control::bgp::wire::attributes::{attr_type, AsPath, Community, LargeCommunity};
use sdwan_control::bgp::wire::extcomm::RouteTarget;
use sdwan_control::bgp::wire::mp::NextHop;
use sdwan_control::bgp::wire::nlri::{Label, VpnRoute};
use sdwan_control::bgp::wire::notification::cease_subcode;
use sdwan_control::bgp::wire::open::cap_code;
use sdwan_control::bgp::wire::route_refresh::SUBTYPE_REFRESH;
use sdwan_control::bgp::wire::*;

/// The messages of one capture: comment lines start with '#', each other line is one
/// message in hex, header included.
fn load(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/data/bgp/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

/// Decodes every message of a capture, checking framing, RFC 7606 silence and the byte-for-byte
/// round trip; returns what was received.
fn decode_all(name: &str) -> Vec<Received> {
    // Every capture negotiated 4-octet AS; the families this codec parses cover theirs.
    let session = Session::all_families(true);
    let msgs = load(name);
    assert!(!msgs.is_empty(), "{name}: empty capture");
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            assert_eq!(frame(m).unwrap(), Some(m.len()), "{name} #{}", i + 1);
            let r =
                Message::decode(m, &session).unwrap_or_else(|e| panic!("{name} #{}: {e}", i + 1));
            if let Received::Update(o) = &r {
                assert_eq!(o.discarded, [], "{name} #{}", i + 1);
                assert_eq!(o.treat_as_withdraw, None, "{name} #{}", i + 1);
            }
            let again = r.clone().into_message().encode(&session).unwrap();
            assert_eq!(&again, m, "{name} #{}: re-encoding differs", i + 1);
            r
        })
        .collect()
}

fn updates(received: &[Received]) -> Vec<&Update> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Update(o) => Some(&o.update),
            _ => None,
        })
        .collect()
}

fn open(received: &[Received]) -> &Open {
    match received.first() {
        Some(Received::Open(o)) => o,
        other => panic!("first message {other:?}"),
    }
}

fn notification(received: &[Received]) -> &Notification {
    received
        .iter()
        .find_map(|r| match r {
            Received::Notification(n) => Some(n),
            _ => None,
        })
        .expect("a NOTIFICATION")
}

/// The update announcing `rd:prefix`, and that route.
fn find_vpn<'a>(ups: &[&'a Update], rd: &str, prefix: &str) -> (&'a Update, VpnRoute) {
    let (rd, prefix) = (rd.parse().unwrap(), prefix.parse().unwrap());
    ups.iter()
        .find_map(|u| {
            u.announced().into_iter().find_map(|(_, n)| match n {
                Nlri::Vpn(v) if v.rd == rd && v.prefix == prefix => Some((*u, v)),
                _ => None,
            })
        })
        .unwrap_or_else(|| panic!("no announcement of {rd}:{prefix}"))
}

fn find_prefix<'a>(ups: &[&'a Update], prefix: &str) -> &'a Update {
    let p: ipnet::IpNet = prefix.parse().unwrap();
    ups.iter()
        .copied()
        .find(|u| u.announced().iter().any(|(_, n)| *n == Nlri::Prefix(p)))
        .unwrap_or_else(|| panic!("no announcement of {prefix}"))
}

fn rts(list: &[&str]) -> Vec<RouteTarget> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn eors(ups: &[&Update]) -> Vec<Family> {
    ups.iter().filter_map(|u| u.end_of_rib_family()).collect()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn gobgp() {
    let r = decode_all("gobgp");
    let o = open(&r);
    // eBGP from AS 4200000001: AS_TRANS in My AS, the real one in the capability.
    assert_eq!(o.my_as, 23456);
    assert_eq!(o.asn(), 4_200_000_001);
    assert_eq!(o.bgp_id, v4("10.99.0.2"));
    for f in [
        Family::IPV4_UNICAST,
        Family::IPV6_UNICAST,
        Family::IPV4_VPN,
        Family::IPV6_VPN,
    ] {
        assert!(o.families().contains(&f), "{f}");
    }
    assert!(o.has(cap_code::GRACEFUL_RESTART));

    let ups = updates(&r);
    let nh = NextHop::VpnIpv4(v4("10.99.0.2"));
    // gobgp global rib -a vpnv4 add 10.1.0.0/24 label 100 rd 65000:100 rt 65000:100 nexthop 10.99.0.2
    let (u, v) = find_vpn(&ups, "65000:100", "10.1.0.0/24");
    assert_eq!(v.labels, [Label::new(100, true)]);
    assert_eq!(u.route_targets(), rts(&["65000:100"]));
    assert_eq!(u.mp_reach().unwrap().next_hop, nh);
    assert_eq!(u.as_path(), Some(&AsPath::sequence(vec![4_200_000_001])));
    // ... rd 10.0.0.1:5 rt 10.0.0.1:5 rt 65000:100
    let (u, v) = find_vpn(&ups, "10.0.0.1:5", "10.1.1.0/24");
    assert_eq!(v.labels[0].value(), 101);
    assert_eq!(u.route_targets(), rts(&["10.0.0.1:5", "65000:100"]));
    // ... rd 4200000000:7 rt 4200000000:7: GoBGP's CLI writes them as type 0 with AS 65535.
    let (u, v) = find_vpn(&ups, "65535:7", "10.1.2.0/24");
    assert_eq!(v.labels[0].value(), 102);
    assert_eq!(u.route_targets(), rts(&["65535:7"]));
    // gobgp global rib -a vpnv6 add 2001:db8:1::/48 label 200 rd 65000:200 rt 65000:200 nexthop 2001:db8::2
    let (u, v) = find_vpn(&ups, "65000:200", "2001:db8:1::/48");
    assert_eq!(v.labels[0].value(), 200);
    assert_eq!(u.route_targets(), rts(&["65000:200"]));
    assert_eq!(
        u.mp_reach().unwrap().next_hop.address(),
        Some("2001:db8::2".parse::<IpAddr>().unwrap())
    );
    // gobgp global rib -a ipv4 add 10.10.0.0/24 nexthop 10.99.0.2 med 50 community 65000:1 large-community 65000:1:2
    let u = find_prefix(&ups, "10.10.0.0/24");
    assert_eq!(u.next_hop(), Some(v4("10.99.0.2")));
    assert_eq!(u.med(), Some(50));
    assert_eq!(u.communities(), [Community(65000 << 16 | 1)]);
    assert_eq!(
        u.large_communities(),
        [LargeCommunity {
            global_admin: 65000,
            local1: 1,
            local2: 2
        }]
    );
    let u = find_prefix(&ups, "2001:db8:10::/48");
    assert_eq!(u.mp_reach().unwrap().family, Family::IPV6_UNICAST);
    // The two deletions.
    let withdrawn: Vec<(Family, Nlri)> = ups.iter().flat_map(|u| u.withdrawals()).collect();
    assert!(withdrawn.iter().any(|(f, n)| *f == Family::IPV4_VPN
        && matches!(n, Nlri::Vpn(v) if v.rd.to_string() == "65000:100")));
    assert!(withdrawn.contains(&(
        Family::IPV4_UNICAST,
        Nlri::Prefix("10.10.0.0/24".parse().unwrap())
    )));
    let mut e = eors(&ups);
    e.sort();
    assert_eq!(
        e,
        [
            Family::IPV4_UNICAST,
            Family::IPV4_VPN,
            Family::IPV6_UNICAST,
            Family::IPV6_VPN
        ]
    );
    // gobgp neighbor 10.99.0.1 shutdown --reason "maintenance window" (RFC 8203)
    let n = notification(&r);
    assert_eq!(
        (n.code, n.subcode),
        (6, cease_subcode::ADMINISTRATIVE_SHUTDOWN)
    );
    assert_eq!(n.shutdown_message(), Some(Ok("maintenance window".into())));
}

#[test]
fn exabgp() {
    let r = decode_all("exabgp");
    let o = open(&r);
    assert_eq!(o.asn(), 65000);
    assert_eq!(o.hold_time, 90);
    let ups = updates(&r);
    let (u, v) = find_vpn(&ups, "65000:200", "10.2.0.0/24");
    assert_eq!(v.labels, [Label::new(200, true)]);
    // ExaBGP 4.2 writes `target:10.0.0.2:7` with the type of a 2-byte AS Route Target (0x00,
    // not 0x01): the same 6 bytes, read as 2560:131079.
    assert_eq!(u.route_targets(), rts(&["65000:200", "2560:131079"]));
    assert_eq!(
        u.mp_reach().unwrap().next_hop,
        NextHop::VpnIpv4(v4("10.99.0.2"))
    );
    assert_eq!(u.local_pref(), Some(200));
    assert_eq!(u.originator_id(), Some(v4("10.99.0.9")));
    assert_eq!(u.cluster_list(), [v4("10.99.0.1"), v4("10.99.0.3")]);
    // ExaBGP also sends a NEXT_HOP attribute with VPN routes.
    assert_eq!(u.next_hop(), Some(v4("10.99.0.2")));
    // attribute [ 0x17 0xc0 0x0008000c060a0000000000010a630002 ]: VXLAN to 10.99.0.2.
    let mut te = Vec::new();
    u.tunnel_encap().expect("attribute 23").encode(&mut te);
    assert_eq!(te, [0, 8, 0, 12, 6, 10, 0, 0, 0, 0, 0, 1, 10, 99, 0, 2]);
    let (_, v) = find_vpn(&ups, "10.0.0.2:7", "10.2.1.0/24");
    assert_eq!(v.labels[0].value(), 201);
    // A type 2 RD and RT, which GoBGP's CLI could not make.
    let (u, v) = find_vpn(&ups, "4200000000:7", "10.2.2.0/24");
    assert_eq!(v.labels[0].value(), 203);
    assert_eq!(u.route_targets(), rts(&["4200000000:7"]));
    let (u, v) = find_vpn(&ups, "65000:202", "2001:db8:2::/48");
    assert_eq!(v.labels[0].value(), 202);
    assert_eq!(
        u.mp_reach().unwrap().next_hop,
        NextHop::VpnIpv6 {
            global: "2001:db8::2".parse().unwrap(),
            link_local: None
        }
    );
    let u = find_prefix(&ups, "10.20.0.0/24");
    assert_eq!(u.med(), Some(10));
    assert_eq!(
        u.communities(),
        [Community(65000 << 16 | 2), Community::NO_EXPORT]
    );
    assert_eq!(u.as_path(), Some(&AsPath::sequence(vec![65000, 65001])));
    let mut e = eors(&ups);
    e.sort();
    assert_eq!(
        e,
        [Family::IPV4_UNICAST, Family::IPV4_VPN, Family::IPV6_VPN]
    );
    // ExaBGP's MP_UNREACH End-of-RIB sets the extended-length bit on a 3-byte value; kept.
    let flags: Vec<u8> = ups
        .iter()
        .filter(|u| {
            u.end_of_rib_family()
                .is_some_and(|f| f != Family::IPV4_UNICAST)
        })
        .map(|u| u.attributes[0].flags)
        .collect();
    assert!(flags.iter().all(|f| *f == 0x90), "{flags:x?}");
}

#[test]
fn frr() {
    let r = decode_all("frr");
    let o = open(&r);
    assert_eq!(o.asn(), 65000);
    assert_eq!(o.hold_time, 180);
    assert!(o.capabilities().any(|c| matches!(
        c,
        Capability::Fqdn { hostname, .. } if hostname == "capture"
    )));
    assert!(o.has(cap_code::ADD_PATH));
    assert!(o.has(cap_code::LONG_LIVED_GRACEFUL_RESTART));
    let ups = updates(&r);
    // network 10.3.0.0/24 rd 65000:300 label 300 route-map RT300 (rt 65000:300, local-pref 300)
    let (u, v) = find_vpn(&ups, "65000:300", "10.3.0.0/24");
    assert_eq!(v.labels, [Label::new(300, true)]);
    assert_eq!(u.route_targets(), rts(&["65000:300"]));
    assert_eq!(u.local_pref(), Some(300));
    assert_eq!(
        u.mp_reach().unwrap().next_hop,
        NextHop::VpnIpv4(v4("10.99.0.2"))
    );
    // FRR sets the extended-length bit on MP_REACH_NLRI, and on the empty AS_PATH too.
    assert_eq!(u.attributes[0].flags, 0x90);
    let as_path = u
        .attributes
        .iter()
        .find(|a| a.type_code() == attr_type::AS_PATH)
        .unwrap();
    assert_eq!(as_path.flags, 0x50);
    assert_eq!(u.as_path(), Some(&AsPath::default()));
    // IPv6 VPN over an IPv4 session: an IPv4-mapped next hop.
    let (u, v) = find_vpn(&ups, "65000:302", "2001:db8:3::/48");
    assert_eq!(v.labels[0].value(), 302);
    assert_eq!(
        u.mp_reach().unwrap().next_hop.address(),
        Some("::ffff:10.99.0.2".parse::<IpAddr>().unwrap())
    );
    // no network 10.3.1.0/24 rd 10.0.0.3:9 label 301: withdrawn with the label field 0x000000
    // (no bottom-of-stack bit), which the reader takes for the compatibility value.
    let withdrawn: Vec<(Family, Nlri)> = ups.iter().flat_map(|u| u.withdrawals()).collect();
    let w = withdrawn
        .iter()
        .find_map(|(_, n)| match n {
            Nlri::Vpn(v) if v.rd.to_string() == "10.0.0.3:9" => Some(v),
            _ => None,
        })
        .expect("withdrawal of 10.0.0.3:9:10.3.1.0/24");
    assert_eq!(w.prefix, "10.3.1.0/24".parse::<ipnet::IpNet>().unwrap());
    assert_eq!(w.labels, [Label::from_raw(0)]);
    assert!(find_prefix(&ups, "10.30.0.0/24").next_hop().is_some());
    // clear bgp ipv4 vpn 10.99.0.1 soft in
    let rr = r
        .iter()
        .find_map(|m| match m {
            Received::RouteRefresh(rr) => Some(rr),
            _ => None,
        })
        .expect("ROUTE-REFRESH");
    assert_eq!((rr.family, rr.subtype), (Family::IPV4_VPN, SUBTYPE_REFRESH));
    // neighbor 10.99.0.1 shutdown message maintenance window
    let n = notification(&r);
    assert_eq!(n.shutdown_message(), Some(Ok("maintenance window".into())));
}
