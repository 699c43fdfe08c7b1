use super::*;
use crate::route::NextHop;
use crate::tables::{NeighborKey, PortInfo, Tables};
use crate::wire::{checksum, ethernet};

const LAN_MAC: MacAddr = [0x02, 0, 0, 0, 0x01, 0x01];
const WAN_MAC: MacAddr = [0x02, 0, 0, 0, 0x02, 0x01];
const HOST_MAC: MacAddr = [0x02, 0, 0, 0, 0x01, 0x02];
const PEER_MAC: MacAddr = [0x02, 0, 0, 0, 0x02, 0x02];

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Port 0 = LAN 10.1.0.1/24 fd00:1::1/64; port 1 = WAN 198.18.1.1/24 fd00:ff:1::1/64;
/// routes to 10.2.0.0/24 and fd00:2::/64 via the WAN peer (.2). The peer is resolved, the
/// LAN host is resolved only when `resolved` is true.
fn tables(resolved: bool) -> Tables {
    let lan = PortInfo::new(
        "lan0",
        LAN_MAC,
        1500,
        &[
            "10.1.0.1/24".parse().unwrap(),
            "fd00:1::1/64".parse().unwrap(),
        ],
    );
    let wan = PortInfo::new(
        "inet",
        WAN_MAC,
        1500,
        &[
            "198.18.1.1/24".parse().unwrap(),
            "fd00:ff:1::1/64".parse().unwrap(),
        ],
    );
    let mut t = Tables::new(
        vec![lan, wan],
        &[
            (
                "10.2.0.0/24".parse().unwrap(),
                NextHop {
                    port: 1,
                    via: Some("198.18.1.2".parse().unwrap()),
                },
            ),
            (
                "fd00:2::/64".parse().unwrap(),
                NextHop {
                    port: 1,
                    via: Some("fd00:ff:1::2".parse().unwrap()),
                },
            ),
        ],
    );
    t.neighbors
        .insert(NeighborKey::new(1, "198.18.1.2".parse().unwrap()), PEER_MAC);
    t.neighbors.insert(
        NeighborKey::new(1, "fd00:ff:1::2".parse().unwrap()),
        PEER_MAC,
    );
    if resolved {
        t.neighbors
            .insert(NeighborKey::new(0, "10.1.0.2".parse().unwrap()), HOST_MAC);
        t.neighbors
            .insert(NeighborKey::new(0, "fd00:1::2".parse().unwrap()), HOST_MAC);
    }
    t
}

fn udp4(dst_mac: MacAddr, src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 4];
    ethernet::write_header(&mut f, &dst_mac, &HOST_MAC, ethernet::ETHERTYPE_IPV4);
    ipv4::write_header(&mut f[14..], 32, ttl, ipv4::PROTO_UDP, ip4(src), ip4(dst));
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&5678u16.to_be_bytes());
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    f[42..46].copy_from_slice(b"data");
    f
}

fn udp6(dst_mac: MacAddr, src: &str, dst: &str, hop_limit: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + 4];
    ethernet::write_header(&mut f, &dst_mac, &HOST_MAC, ethernet::ETHERTYPE_IPV6);
    ipv6::write_header(&mut f[14..], 12, 17, hop_limit, &ip6(src), &ip6(dst));
    f[62..66].copy_from_slice(b"data");
    f
}

fn echo4(dst: &str, ttl: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 8];
    ethernet::write_header(&mut f, &LAN_MAC, &HOST_MAC, ethernet::ETHERTYPE_IPV4);
    ipv4::write_header(
        &mut f[14..],
        36,
        ttl,
        ipv4::PROTO_ICMP,
        ip4("10.1.0.2"),
        ip4(dst),
    );
    f[34] = icmp::V4_ECHO_REQUEST;
    f[38..42].copy_from_slice(&[0, 7, 0, 1]);
    f[42..50].copy_from_slice(b"pingpong");
    icmp::v4_fill_checksum(&mut f[34..50]);
    f
}

fn run(t: &Tables, in_port: u16, frame: &[u8]) -> (Verdict, ByteBuf, Context) {
    let mut buf = ByteBuf::new(frame);
    let mut fx = Context::default();
    let v = process(t, in_port, &mut buf, &mut fx);
    (v, buf, fx)
}

#[test]
fn forwards_ipv4_rewriting_macs_and_ttl() {
    let t = tables(true);
    let (v, out, _) = run(&t, 0, &udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64));
    assert_eq!(v, Verdict::Forward(1));
    let f = ethernet::Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (PEER_MAC, WAN_MAC));
    let ip = ipv4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(
        &out.data()[34..],
        &udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64)[34..],
        "payload untouched"
    );
}

#[test]
fn unresolved_next_hop_drops_and_asks_for_solicitation() {
    let t = tables(false);
    let (v, _, fx) = run(&t, 1, &udp4(WAN_MAC, "10.2.0.2", "10.1.0.2", 64));
    assert_eq!(v, Verdict::Drop(DropReason::NeighborUnresolved));
    assert_eq!(fx.solicit.as_slice(), &[(0, IpAddr::V4(ip4("10.1.0.2")))]);
}

#[test]
fn drops_by_reason() {
    let t = tables(true);
    assert_eq!(
        run(&t, 0, &udp4(LAN_MAC, "10.1.0.2", "192.0.2.1", 64)).0,
        Verdict::Drop(DropReason::NoRoute)
    );
    assert_eq!(
        run(&t, 0, &udp4(PEER_MAC, "10.1.0.2", "10.2.0.2", 64)).0,
        Verdict::Drop(DropReason::NotForUs)
    );
    let mut bad = udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64);
    bad[24] ^= 0xff;
    assert_eq!(run(&t, 0, &bad).0, Verdict::Drop(DropReason::BadChecksum));
    let short = udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64);
    assert_eq!(
        run(&t, 0, &short[..30]).0,
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(
        run(&t, 0, &short[..10]).0,
        Verdict::Drop(DropReason::Malformed)
    );
    let mut other = short.clone();
    other[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    assert_eq!(
        run(&t, 0, &other).0,
        Verdict::Drop(DropReason::UnsupportedEthertype)
    );
    assert_eq!(
        run(&t, 0, &udp4(LAN_MAC, "10.1.0.2", "255.255.255.255", 64)).0,
        Verdict::Drop(DropReason::NotForwardable)
    );
    let mut big = udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64);
    big.resize(14 + 1600, 0);
    ipv4::write_header(
        &mut big[14..],
        1600,
        64,
        ipv4::PROTO_UDP,
        ip4("10.1.0.2"),
        ip4("10.2.0.2"),
    );
    assert_eq!(run(&t, 0, &big).0, Verdict::Drop(DropReason::MtuExceeded));
    assert_eq!(
        run(&t, 0, &udp6(LAN_MAC, "fd00:1::2", "fe80::1", 64)).0,
        Verdict::Drop(DropReason::NotForwardable)
    );
}

#[test]
fn answers_arp_for_own_address_and_learns_sender() {
    let t = tables(false);
    let mut f = vec![0u8; 60];
    ethernet::write_header(
        &mut f,
        &ethernet_broadcast(),
        &HOST_MAC,
        ethernet::ETHERTYPE_ARP,
    );
    arp::write(
        &mut f[14..],
        arp::OP_REQUEST,
        &HOST_MAC,
        ip4("10.1.0.2"),
        &[0; 6],
        ip4("10.1.0.1"),
    );
    let (v, out, fx) = run(&t, 0, &f);
    assert_eq!(v, Verdict::Reply(0));
    assert_eq!(
        fx.learned.as_slice(),
        &[(0, IpAddr::V4(ip4("10.1.0.2")), HOST_MAC)]
    );
    let frame = ethernet::Frame::new_checked(out.data()).unwrap();
    assert_eq!((frame.dst(), frame.src()), (HOST_MAC, LAN_MAC));
    let a = arp::Packet::new_checked(frame.payload()).unwrap();
    assert_eq!(a.operation(), arp::OP_REPLY);
    assert_eq!((a.sender_mac(), a.sender_ip()), (LAN_MAC, ip4("10.1.0.1")));
    assert_eq!((a.target_mac(), a.target_ip()), (HOST_MAC, ip4("10.1.0.2")));

    // A request for someone else's address is not answered; a reply teaches us the sender.
    arp::write(
        &mut f[14..],
        arp::OP_REQUEST,
        &HOST_MAC,
        ip4("10.1.0.2"),
        &[0; 6],
        ip4("10.1.0.77"),
    );
    assert_eq!(run(&t, 0, &f).0, Verdict::Consumed);
    // The same request arriving on the WAN port is for a subnet we do not have there: no learning.
    let (v, _, fx) = run(&t, 1, &f);
    assert_eq!(v, Verdict::Consumed);
    assert!(fx.learned.as_slice().is_empty());
}

fn ethernet_broadcast() -> MacAddr {
    [0xff; 6]
}

#[test]
fn ttl_one_gets_time_exceeded_from_ingress_address() {
    let t = tables(true);
    let orig = udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 1);
    let (v, out, _) = run(&t, 0, &orig);
    assert_eq!(v, Verdict::Reply(0));
    let f = ethernet::Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (HOST_MAC, LAN_MAC));
    let ip = ipv4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.protocol()),
        (ip4("10.1.0.1"), ip4("10.1.0.2"), ipv4::PROTO_ICMP)
    );
    assert!(ip.verify_checksum());
    let msg = ip.payload();
    assert_eq!((msg[0], msg[1]), (icmp::V4_TIME_EXCEEDED, 0));
    assert!(icmp::v4_checksum_ok(msg));
    assert_eq!(&msg[8..], &orig[14..], "quotes the whole original datagram");
    // No error is sent once the budget is spent.
    let mut buf = ByteBuf::new(&orig);
    let mut fx = Context {
        icmp_error_budget: 0,
        ..Context::default()
    };
    assert_eq!(
        process(&t, 0, &mut buf, &mut fx),
        Verdict::Drop(DropReason::TtlExceeded)
    );
}

#[test]
fn echo_reply_to_own_address() {
    let t = tables(true);
    let (v, out, _) = run(&t, 0, &echo4("10.1.0.1", 64));
    assert_eq!(v, Verdict::Reply(0));
    let f = ethernet::Frame::new_checked(out.data()).unwrap();
    let ip = ipv4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst()), (ip4("10.1.0.1"), ip4("10.1.0.2")));
    assert!(ip.verify_checksum());
    assert_eq!(ip.payload()[0], icmp::V4_ECHO_REPLY);
    assert!(icmp::v4_checksum_ok(ip.payload()));
    assert_eq!(
        &ip.payload()[4..],
        &echo4("10.1.0.1", 64)[38..],
        "identifier, sequence and data echoed"
    );
    // The WAN address answers too, from the LAN side (it is the box's address).
    assert_eq!(run(&t, 0, &echo4("198.18.1.1", 64)).0, Verdict::Reply(0));
}

#[test]
fn echo_reply_goes_to_the_sender_before_its_neighbor_entry_is_published() {
    let t = tables(false);
    let (v, out, _) = run(&t, 0, &echo4("10.1.0.1", 64));
    assert_eq!(v, Verdict::Reply(0));
    assert_eq!(&out.data()[0..6], &HOST_MAC);
    // But never out of another port to a guessed address.
    let mut from_wan = echo4("10.1.0.1", 64);
    from_wan[0..6].copy_from_slice(&WAN_MAC);
    assert_eq!(
        run(&t, 1, &from_wan).0,
        Verdict::Drop(DropReason::NeighborUnresolved)
    );
}

#[test]
fn forwards_ipv6_and_expires_hop_limit() {
    let t = tables(true);
    let (v, out, _) = run(&t, 0, &udp6(LAN_MAC, "fd00:1::2", "fd00:2::2", 64));
    assert_eq!(v, Verdict::Forward(1));
    let f = ethernet::Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (PEER_MAC, WAN_MAC));
    assert_eq!(
        ipv6::Packet::new_checked(f.payload()).unwrap().hop_limit(),
        63
    );

    let orig = udp6(LAN_MAC, "fd00:1::2", "fd00:2::2", 1);
    let (v, out, _) = run(&t, 0, &orig);
    assert_eq!(v, Verdict::Reply(0));
    let f = ethernet::Frame::new_checked(out.data()).unwrap();
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst()), (ip6("fd00:1::1"), ip6("fd00:1::2")));
    assert_eq!(ip.payload()[0], icmp::V6_TIME_EXCEEDED);
    assert!(icmp::v6_checksum_ok(&ip.src(), &ip.dst(), ip.payload()));
    assert_eq!(&ip.payload()[8..], &orig[14..]);
}

#[test]
fn neighbor_solicitation_is_answered_and_teaches_the_solicitor() {
    let t = tables(false);
    let lan = &t.ports[0];
    // Build the NS the host would send, with our own builder from the host's point of view.
    let host = PortInfo::new("host", HOST_MAC, 1500, &["fd00:1::2/64".parse().unwrap()]);
    let mut f = vec![0u8; 128];
    let n = build_solicitation(&host, IpAddr::V6(ip6("fd00:1::1")), &mut f).unwrap();
    let (v, out, fx) = run(&t, 0, &f[..n]);
    assert_eq!(v, Verdict::Reply(0));
    assert_eq!(
        fx.learned.as_slice(),
        &[(0, IpAddr::V6(ip6("fd00:1::2")), HOST_MAC)]
    );
    let frame = ethernet::Frame::new_checked(out.data()).unwrap();
    assert_eq!((frame.dst(), frame.src()), (HOST_MAC, lan.mac));
    let ip = ipv6::Packet::new_checked(frame.payload()).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.hop_limit()),
        (ip6("fd00:1::1"), ip6("fd00:1::2"), 255)
    );
    assert!(icmp::v6_checksum_ok(&ip.src(), &ip.dst(), ip.payload()));
    let na = icmp::NeighborMessage::new_checked(ip.payload()).unwrap();
    assert_eq!(na.kind(), icmp::V6_NEIGHBOR_ADVERT);
    assert_eq!(na.target(), ip6("fd00:1::1"));
    assert_eq!(
        na.flags(),
        icmp::NA_ROUTER | icmp::NA_SOLICITED | icmp::NA_OVERRIDE
    );
    assert_eq!(
        na.link_layer_option(icmp::ND_OPT_TARGET_LL),
        Ok(Some(LAN_MAC))
    );

    // An NA from the WAN peer, to our WAN address, teaches us the peer.
    let (peer, ours) = (ip6("fd00:ff:1::2"), ip6("fd00:ff:1::1"));
    let mut na = vec![0u8; 14 + 40 + 32];
    ethernet::write_header(&mut na, &WAN_MAC, &PEER_MAC, ethernet::ETHERTYPE_IPV6);
    ipv6::write_header(
        &mut na[14..],
        32,
        ipv6::NEXT_HEADER_ICMPV6,
        255,
        &peer,
        &ours,
    );
    icmp::write_neighbor_message(
        &mut na[54..],
        icmp::V6_NEIGHBOR_ADVERT,
        icmp::NA_SOLICITED,
        &peer,
        &PEER_MAC,
    );
    icmp::v6_fill_checksum(&peer, &ours, &mut na[54..]);
    let (v, _, fx) = run(&t, 1, &na);
    assert_eq!(v, Verdict::Consumed);
    assert_eq!(fx.learned.as_slice(), &[(1, IpAddr::V6(peer), PEER_MAC)]);

    // ND with a hop limit other than 255 is not trusted (RFC 4861 7.1.1).
    let mut off_link = f[..n].to_vec();
    off_link[14 + 7] = 64;
    let msg_start = 14 + 40;
    let (s, d) = (ip6("fd00:1::2"), ipv6::solicited_node(&ip6("fd00:1::1")));
    icmp::v6_fill_checksum(&s, &d, &mut off_link[msg_start..]);
    assert_eq!(
        run(&t, 0, &off_link).0,
        Verdict::Drop(DropReason::Malformed)
    );
}

#[test]
fn solicitations_are_well_formed() {
    let t = tables(false);
    let mut buf = [0u8; 128];
    let n = build_solicitation(&t.ports[0], IpAddr::V4(ip4("10.1.0.2")), &mut buf).unwrap();
    let a = arp::Packet::new_checked(&buf[14..n]).unwrap();
    assert_eq!(
        (a.operation(), a.sender_ip(), a.target_ip()),
        (arp::OP_REQUEST, ip4("10.1.0.1"), ip4("10.1.0.2"))
    );
    let n = build_solicitation(&t.ports[1], IpAddr::V6(ip6("fd00:ff:1::2")), &mut buf).unwrap();
    let f = ethernet::Frame::new_checked(&buf[..n]).unwrap();
    assert_eq!(f.dst(), [0x33, 0x33, 0xff, 0, 0, 2]);
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(ip.src(), ip6("fd00:ff:1::1"));
    assert!(icmp::v6_checksum_ok(&ip.src(), &ip.dst(), ip.payload()));
    assert!(
        build_solicitation(&t.ports[0], IpAddr::V4(ip4("192.0.2.1")), &mut buf).is_none(),
        "not on our subnet"
    );
    let _ = checksum::checksum(&buf);
}

#[test]
fn never_panics_on_truncations_and_bit_flips() {
    let t = tables(true);
    let mut seeds = vec![
        udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64),
        udp6(LAN_MAC, "fd00:1::2", "fd00:2::2", 1),
        echo4("10.1.0.1", 64),
    ];
    let host = PortInfo::new("host", HOST_MAC, 1500, &["fd00:1::2/64".parse().unwrap()]);
    let mut ns = vec![0u8; 128];
    let n = build_solicitation(&host, IpAddr::V6(ip6("fd00:1::1")), &mut ns).unwrap();
    seeds.push(ns[..n].to_vec());
    let mut rng = 0x1234_5678u32;
    for seed in &seeds {
        for cut in 0..=seed.len() {
            let _ = run(&t, 0, &seed[..cut]);
        }
        for _ in 0..2000 {
            let mut f = seed.clone();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                let i = rng as usize % f.len();
                f[i] ^= (rng >> 8) as u8;
            }
            let _ = run(&t, (rng % 3) as u16, &f);
        }
    }
}

#[test]
fn route_cache_hit_matches_the_full_path_and_follows_new_generations() {
    let mut t = tables(true);
    let mut fx = Context::default();
    let frame = udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 64);
    let mut first = ByteBuf::new(&frame);
    assert_eq!(process(&t, 0, &mut first, &mut fx), Verdict::Forward(1));
    let mut second = ByteBuf::new(&frame);
    assert_eq!(process(&t, 0, &mut second, &mut fx), Verdict::Forward(1));
    assert_eq!(
        first.data(),
        second.data(),
        "the cached decision rewrites exactly like the full path"
    );

    // A new generation with the peer at a new MAC: the cached entry must not be used.
    let new_peer = [0x02, 0, 0, 0, 0x02, 0x99];
    t.neighbors
        .insert(NeighborKey::new(1, "198.18.1.2".parse().unwrap()), new_peer);
    t.generation += 1;
    let mut third = ByteBuf::new(&frame);
    assert_eq!(process(&t, 0, &mut third, &mut fx), Verdict::Forward(1));
    assert_eq!(&third.data()[0..6], &new_peer);

    // A cached destination with TTL 1 still gets its time exceeded.
    let mut expiring = ByteBuf::new(&udp4(LAN_MAC, "10.1.0.2", "10.2.0.2", 1));
    assert_eq!(process(&t, 0, &mut expiring, &mut fx), Verdict::Reply(0));
    assert_eq!(expiring.data()[14 + 20], icmp::V4_TIME_EXCEEDED);

    // And a bad checksum is caught before the cache is consulted.
    let mut bad = frame.clone();
    bad[14 + 8] = 99;
    assert_eq!(
        process(&t, 0, &mut ByteBuf::new(&bad), &mut fx),
        Verdict::Drop(DropReason::BadChecksum)
    );
}

#[test]
fn bytebuf_adj_removes_front_bytes_into_headroom() {
    let mut b = ByteBuf::new(&[1, 2, 3, 4, 5]);
    assert!(b.adj(0));
    assert_eq!(b.data(), &[1, 2, 3, 4, 5]);
    assert!(b.adj(2));
    assert_eq!(b.data(), &[3, 4, 5]);
    // Longer than the data: refused, nothing changes.
    assert!(!b.adj(4));
    assert_eq!(b.data(), &[3, 4, 5]);
    // The removed bytes are headroom again: prepend gives them back.
    assert!(b.prepend(ByteBuf::HEADROOM + 2));
    assert!(!b.prepend(1));
    assert_eq!(&b.data()[ByteBuf::HEADROOM..], &[1, 2, 3, 4, 5]);
    // All of it: an empty buffer, which set_len can grow again.
    let mut b = ByteBuf::new(&[9, 8, 7]);
    assert!(b.adj(3));
    assert!(b.data().is_empty());
    assert!(!b.adj(1));
    assert!(b.set_len(2));
    assert_eq!(b.data().len(), 2);
}

#[test]
fn an_internet_facing_port_takes_no_transit_and_rate_limits_pings() {
    let mut t = tables(true);
    t.ports[1].internet = true;
    // Transit from the internet to the LAN: dropped, IPv4 and IPv6, fast path or not.
    let (v, _, _) = run(&t, 1, &udp4(WAN_MAC, "203.0.113.9", "10.1.0.2", 64));
    assert_eq!(v, Verdict::Drop(DropReason::WanFiltered));
    let (v, _, _) = run(&t, 1, &udp6(WAN_MAC, "2001:db8::9", "fd00:1::2", 64));
    assert_eq!(v, Verdict::Drop(DropReason::WanFiltered));
    // The other way (LAN to the internet circuit) is not affected.
    let (v, _, _) = run(&t, 0, &udp4(LAN_MAC, "10.1.0.2", "10.2.0.9", 64));
    assert_eq!(v, Verdict::Forward(1));
    // Pings to the box's address on the circuit: answered within the ICMP budget only.
    let mut ping = echo4("198.18.1.1", 64);
    ping[0..6].copy_from_slice(&WAN_MAC);
    ping[26..30].copy_from_slice(&[198, 18, 1, 2]); // from the peer's side of the circuit
    ping[24..26].fill(0);
    let sum = crate::wire::checksum::checksum(&ping[14..34]);
    ping[24..26].copy_from_slice(&sum.to_be_bytes());
    let mut fx = Context::default();
    let mut answered = 0;
    let mut limited = 0;
    for _ in 0..150 {
        let mut b = ByteBuf::new(&ping);
        match process(&t, 1, &mut b, &mut fx) {
            Verdict::Reply(1) => answered += 1,
            Verdict::Drop(DropReason::RateLimited) => limited += 1,
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(
        (answered, limited),
        (100, 50),
        "the 100-per-interval budget"
    );
    // The same port, not internet-facing: transit goes through.
    t.ports[1].internet = false;
    let (v, _, _) = run(&t, 1, &udp4(WAN_MAC, "203.0.113.9", "10.1.0.2", 64));
    assert_eq!(v, Verdict::Forward(0));
}

#[test]
fn on_an_internet_facing_port_only_circuit_next_hops_are_learned() {
    let mut t = tables(true);
    assert!(
        t.may_learn(1, "198.18.1.77".parse().unwrap()),
        "not filtered: anyone"
    );
    t.ports[1].internet = true;
    assert!(
        !t.may_learn(1, "198.18.1.77".parse().unwrap()),
        "a stranger"
    );
    t.circuit_hops
        .insert(NeighborKey::new(1, "198.18.1.2".parse().unwrap()), ());
    assert!(
        t.may_learn(1, "198.18.1.2".parse().unwrap()),
        "a circuit's next hop"
    );
    assert!(
        t.may_learn(0, "10.1.0.77".parse().unwrap()),
        "the LAN is not filtered"
    );
}
