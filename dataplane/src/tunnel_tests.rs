//! Two sites, A and B, in one process: A's tenant traffic goes through `process` into the
//! tunnel, the frame it sends is fed to B's `process`, and what comes out is checked byte for
//! byte. Nothing here needs DPDK.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::esp::Backend;
use crate::forward::{process, process_handoff, ByteBuf};
use crate::route::NextHop;
use crate::tables::NeighborKey;
use crate::wire::{checksum, udp};

const HOST_A: MacAddr = [0x02, 0, 0, 0, 0xa0, 0x02];
const HOST_B: MacAddr = [0x02, 0, 0, 0, 0xb0, 0x02];

fn mac(site: u8, port: u8) -> MacAddr {
    [0x02, 0, 0, 0, site, port]
}

const KEY_AB: [u8; 20] = [0x11; 20];
const KEY_BA: [u8; 20] = [0x22; 20];

/// Site A (`a` true) or B: port 0 = LAN of tenant "blue" (VNI 100), port 1 = inet, port 2 =
/// mpls; one tunnel of `kind` to the other site over both circuits (a plain tunnel over inet
/// only). A sends with SPIs 0x1000.., B with 0x2000...
fn site(a: bool, kind: TunnelKind) -> Tables {
    site_with(a, kind, |t| vec![t], 0)
}

/// [`site`], with the tunnels `tunnels` makes of the one to the other site, and the routes to
/// the other site into tunnel `route_to`.
fn site_with(
    a: bool,
    kind: TunnelKind,
    tunnels: impl FnOnce(TunnelInfo) -> Vec<TunnelInfo>,
    route_to: u16,
) -> Tables {
    let (me, them, n) = if a { (0xa0, 0xb0, 1) } else { (0xb0, 0xa0, 2) };
    let other = 3 - n;
    let ports = vec![
        PortInfo::new(
            "lan0",
            mac(me, 0),
            1500,
            &[
                format!("10.{n}.0.1/24").parse().unwrap(),
                format!("fd00:{n}::1/64").parse().unwrap(),
            ],
        ),
        PortInfo::new(
            "inet",
            mac(me, 1),
            1500,
            &[
                format!("198.18.1.{n}/24").parse().unwrap(),
                format!("fd00:ff:1::{n}/64").parse().unwrap(),
            ],
        ),
        PortInfo::new(
            "mpls",
            mac(me, 2),
            1500,
            &[format!("198.18.2.{n}/24").parse().unwrap()],
        ),
    ];
    let plain = kind != TunnelKind::Overlay;
    let circuits: Vec<CircuitInfo> = [(1u16, 1u8), (2, 2)]
        .iter()
        .take(if plain { 1 } else { 2 })
        .map(|&(port, net)| CircuitInfo {
            port,
            local: format!("198.18.{net}.{n}").parse().unwrap(),
            remote: format!("198.18.{net}.{other}").parse().unwrap(),
            transport: "internet".into(),
            trusted: false,
        })
        .collect();
    let (out_spi, in_spi) = if a {
        (0x1000, 0x2000)
    } else {
        (0x2000, 0x1000)
    };
    let tunnel = TunnelInfo {
        peer: if a { "b".into() } else { "a".into() },
        tenant: 0,
        kind,
        loopbacks: (!plain).then(|| {
            (
                format!("10.255.0.{n}").parse().unwrap(),
                format!("10.255.0.{other}").parse().unwrap(),
            )
        }),
        circuits,
        out_spi,
        in_spi,
        senders: if plain { 1 } else { SENDERS },
        suite: Suite::Aes128Gcm,
        esn: true,
        replay_window: 1024,
        first_slot: 0,
        peer_index: None,
        out_key: 0,
        in_key: 0,
    };
    let tun = |circuit| TenantHop::Tunnel {
        tunnel: route_to,
        circuit,
    };
    let routes = vec![
        (format!("10.{other}.0.0/24").parse().unwrap(), tun(None)),
        (format!("fd00:{other}::/64").parse().unwrap(), tun(None)),
        (
            format!("10.{other}.100.0/24").parse().unwrap(),
            tun(Some(1)),
        ),
    ];
    let tenant = TenantSpec {
        name: "blue".into(),
        vni: 100,
        lan_ports: vec![0],
        routes,
    };
    let mut t = Tables::new(ports, &[]).with_tenants(vec![tenant], tunnels(tunnel));
    t.neighbors.insert(
        NeighborKey::new(1, format!("198.18.1.{other}").parse().unwrap()),
        mac(them, 1),
    );
    t.neighbors.insert(
        NeighborKey::new(2, format!("198.18.2.{other}").parse().unwrap()),
        mac(them, 2),
    );
    let host = if a { HOST_A } else { HOST_B };
    t.neighbors.insert(
        NeighborKey::new(0, format!("10.{n}.0.2").parse().unwrap()),
        host,
    );
    t.neighbors.insert(
        NeighborKey::new(0, format!("fd00:{n}::2").parse().unwrap()),
        host,
    );
    t
}

fn context(t: &Tables, a: bool, worker: u16, workers: u16) -> Context {
    let (out, inbound) = if a {
        (KEY_AB, KEY_BA)
    } else {
        (KEY_BA, KEY_AB)
    };
    let keys: Vec<TunnelKeys> = t
        .tunnels
        .iter()
        .map(|_| TunnelKeys {
            out: Zeroizing::new(out.to_vec()),
            inbound: Zeroizing::new(inbound.to_vec()),
        })
        .collect();
    Context {
        sas: SaState::new(worker, workers, &t.tunnels, &keys, Backend::AwsLc).unwrap(),
        ..Context::default()
    }
}

/// A UDP packet from host A to `dst` with `payload` bytes of data, DF set when `df`.
fn udp4(src: &str, dst: &str, ttl: u8, payload: usize, df: bool) -> Vec<u8> {
    let total = 20 + 8 + payload;
    let mut f = vec![0u8; 14 + total];
    ethernet::write_header(&mut f, &mac(0xa0, 0), &HOST_A, ethernet::ETHERTYPE_IPV4);
    let src: Ipv4Addr = src.parse().unwrap();
    let dst: Ipv4Addr = dst.parse().unwrap();
    ipv4::write_header(&mut f[14..], total as u16, ttl, ipv4::PROTO_UDP, src, dst);
    if df {
        f[20] |= 0x40;
        f[24..26].fill(0);
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    udp::write_header(&mut f[34..], 1234, 5678, (8 + payload) as u16, 0);
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn udp6(dst: &str, payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + payload];
    ethernet::write_header(&mut f, &mac(0xa0, 0), &HOST_A, ethernet::ETHERTYPE_IPV6);
    let src: Ipv6Addr = "fd00:1::2".parse().unwrap();
    let dst: Ipv6Addr = dst.parse().unwrap();
    ipv6::write_header(&mut f[14..], (8 + payload) as u16, 17, 64, &src, &dst);
    udp::write_header(&mut f[54..], 1234, 5678, (8 + payload) as u16, 0);
    let c = udp::ipv6_checksum(&src, &dst, &f[54..]);
    f[60..62].copy_from_slice(&c.to_be_bytes());
    f
}

fn run(t: &Tables, fx: &mut Context, port: u16, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = ByteBuf::new(frame);
    let v = process(t, port, &mut b, fx);
    (v, b.data().to_vec())
}

/// A sends `frame` from its LAN; returns the port and the frame it puts on the wire.
fn seal_at_a(ta: &Tables, fa: &mut Context, frame: &[u8]) -> (u16, Vec<u8>) {
    match run(ta, fa, 0, frame) {
        (Verdict::Forward(p), out) => (p, out),
        (v, _) => panic!("A did not forward into the tunnel: {v:?}"),
    }
}

#[test]
fn overlay_round_trip_ipv4() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
    let inner = udp4("10.1.0.2", "10.2.0.2", 64, 100, true);
    let (port, wire) = seal_at_a(&ta, &mut fa, &inner);
    assert!(port == 1 || port == 2, "out of a WAN port, not {port}");
    assert_eq!(fa.encrypted, 1);
    // What went on the wire is the ARCHITECTURE.md format.
    let o = overlay::parse_outer(&wire).unwrap();
    assert_eq!(o.vni, 100);
    assert_eq!(o.spi, 0x1000, "worker 0 sends with the first SPI");
    assert_eq!(o.src_port, overlay::source_port(0x1000));
    assert_eq!(o.loopback_src, "10.255.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(o.loopback_dst, "10.255.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(&wire[0..6], &mac(0xb0, port as u8), "to B's circuit MAC");
    assert!(
        !wire.windows(32).any(|w| w == &inner[42..74]),
        "payload in the clear"
    );
    // B opens it and delivers the client's packet, TTL decremented once per router.
    let (v, out) = run(&tb, &mut fb, port, &wire);
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(fb.decrypted, 1);
    assert_eq!(&out[0..6], &HOST_B);
    assert_eq!(&out[6..12], &mac(0xb0, 0));
    assert_eq!(out.len(), inner.len());
    assert_eq!(out[14 + 8], 62, "TTL");
    assert_eq!(&out[34..], &inner[34..], "UDP header and payload unchanged");
    assert!(ipv4::Packet::new_checked(&out[14..])
        .unwrap()
        .verify_checksum());
    // The same packet again is a replay; the SA counted one packet.
    assert_eq!(
        run(&tb, &mut fb, port, &wire).0,
        Verdict::Drop(DropReason::Replay)
    );
    fb.sas.publish();
    let st = &fb.sas.stats().inbound[0];
    assert_eq!((st.packets.get(), st.replay.get()), (1, 1));
    assert_eq!(st.circuits.get(), 1 << (port - 1));
}

#[test]
fn overlay_round_trip_ipv6_and_pinned_circuit() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
    let inner = udp6("fd00:2::2", 500);
    let (port, wire) = seal_at_a(&ta, &mut fa, &inner);
    let (v, out) = run(&tb, &mut fb, port, &wire);
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(out[14 + 7], 62, "hop limit");
    assert_eq!(&out[54..], &inner[54..]);
    // 10.2.100.0/24 is pinned to circuit 1 (mpls, port 2), whatever the flow.
    for host in 1..20 {
        let f = udp4("10.1.0.2", &format!("10.2.100.{host}"), 64, 10, false);
        assert_eq!(seal_at_a(&ta, &mut fa, &f).0, 2);
    }
}

#[test]
fn tampered_wrong_vni_unknown_spi_and_wrong_circuit_are_dropped() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
    let (port, wire) = seal_at_a(&ta, &mut fa, &udp4("10.1.0.2", "10.2.0.2", 64, 64, false));
    let o = overlay::parse_outer(&wire).unwrap();
    // A flipped ciphertext bit: ICV failure, and the window does not move, so the untouched
    // packet is still accepted afterwards.
    let mut bad = wire.clone();
    bad[o.esp_range.start + 20] ^= 1;
    assert_eq!(
        run(&tb, &mut fb, port, &bad).0,
        Verdict::Drop(DropReason::AuthFailed)
    );
    // Another VNI (UDP checksum is zero over IPv4, so editing the VNI keeps it valid).
    let mut vni = wire.clone();
    let vx = 14 + 20 + 8;
    vni[vx + 6] ^= 1;
    assert_eq!(
        run(&tb, &mut fb, port, &vni).0,
        Verdict::Drop(DropReason::TunnelMismatch)
    );
    // Arriving on the LAN port's circuit: not one of the tunnel's.
    let mut lan = wire.clone();
    lan[0..6].copy_from_slice(&mac(0xb0, 0));
    assert_ne!(run(&tb, &mut fb, 0, &lan).0, Verdict::Forward(0));
    // An SPI nobody configured.
    let mut spi = wire.clone();
    spi[o.esp_range.start + 3] ^= 0x80;
    assert_eq!(
        run(&tb, &mut fb, port, &spi).0,
        Verdict::Drop(DropReason::UnknownSpi)
    );
    assert_eq!(run(&tb, &mut fb, port, &wire).0, Verdict::Forward(0));
    fb.sas.publish();
    assert_eq!(fb.sas.stats().inbound[0].auth_failed.get(), 1);
}

#[test]
fn plain_esp_and_esp_in_udp_round_trip() {
    for kind in [TunnelKind::Esp, TunnelKind::EspUdp] {
        let (ta, tb) = (site(true, kind), site(false, kind));
        let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
        let inner = udp4("10.1.0.2", "10.2.0.2", 64, 300, true);
        let (port, wire) = seal_at_a(&ta, &mut fa, &inner);
        assert_eq!(port, 1);
        let ip = ipv4::Packet::new_checked(&wire[14..]).unwrap();
        assert!(ip.dont_fragment());
        match kind {
            TunnelKind::Esp => assert_eq!(ip.protocol(), PROTO_ESP),
            _ => {
                assert_eq!(ip.protocol(), ipv4::PROTO_UDP);
                assert_eq!(&wire[34..38], &[0x11, 0x94, 0x11, 0x94], "4500 -> 4500");
            }
        }
        let (v, out) = run(&tb, &mut fb, port, &wire);
        assert_eq!(v, Verdict::Forward(0), "{kind:?}");
        assert_eq!(&out[34..], &inner[34..]);
    }
}

#[test]
fn nat_keepalive_and_ike_on_4500() {
    let tb = site(false, TunnelKind::EspUdp);
    let mut fb = context(&tb, false, 0, 1);
    let mut f = vec![0u8; 14 + 20 + 8 + 1];
    ethernet::write_header(
        &mut f,
        &mac(0xb0, 1),
        &mac(0xa0, 1),
        ethernet::ETHERTYPE_IPV4,
    );
    let (s, d) = ("198.18.1.1".parse().unwrap(), "198.18.1.2".parse().unwrap());
    ipv4::write_header(&mut f[14..], 29, 64, ipv4::PROTO_UDP, s, d);
    udp::write_header(&mut f[34..], 4500, 4500, 9, 0);
    f[42] = 0xff;
    assert_eq!(run(&tb, &mut fb, 1, &f).0, Verdict::Consumed);
    assert_eq!(fb.nat_keepalives, 1);
    let mut ike = vec![0u8; 14 + 20 + 8 + 8];
    ike[..14].copy_from_slice(&f[..14]);
    ipv4::write_header(&mut ike[14..], 36, 64, ipv4::PROTO_UDP, s, d);
    udp::write_header(&mut ike[34..], 4500, 4500, 16, 0);
    assert_eq!(
        run(&tb, &mut fb, 1, &ike).0,
        Verdict::Drop(DropReason::LocalUnhandled)
    );
}

#[test]
fn too_big_with_df_gets_frag_needed_with_the_tunnel_mtu() {
    let ta = site(true, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    let mtu = max_inner_len(1500, ta.tunnels[0].header_len(&ta.tunnels[0].circuits[0]));
    assert_eq!(mtu, 1394, "1500 - 70 bytes of headers - 36 of ESP, padded");
    // The largest packet that fits goes through; one byte more does not.
    let fits = udp4("10.1.0.2", "10.2.0.2", 64, mtu - 28, true);
    let (_, wire) = seal_at_a(&ta, &mut fa, &fits);
    assert!(
        wire.len() - 14 <= 1500,
        "outer packet {} bytes",
        wire.len() - 14
    );
    let big = udp4("10.1.0.2", "10.2.0.2", 64, mtu - 27, true);
    let (v, out) = run(&ta, &mut fa, 0, &big);
    assert_eq!(v, Verdict::Reply(0), "ICMP back to the LAN host");
    assert_eq!(&out[0..6], &HOST_A);
    let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(ip.protocol(), ipv4::PROTO_ICMP);
    assert_eq!(ip.src(), "10.1.0.1".parse::<Ipv4Addr>().unwrap());
    let icmp_msg = ip.payload();
    assert_eq!((icmp_msg[0], icmp_msg[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp_msg[6], icmp_msg[7]]) as usize, mtu);
    // Without DF: dropped and counted, never fragmented.
    let nodf = udp4("10.1.0.2", "10.2.0.2", 64, mtu - 27, false);
    assert_eq!(
        run(&ta, &mut fa, 0, &nodf).0,
        Verdict::Drop(DropReason::MtuExceeded)
    );
    // IPv6: packet too big.
    let (v, out) = run(&ta, &mut fa, 0, &udp6("fd00:2::2", 1400));
    assert_eq!(v, Verdict::Reply(0));
    assert_eq!(out[14 + 40], icmp::V6_PACKET_TOO_BIG);
    let reported = u32::from_be_bytes([out[58], out[59], out[60], out[61]]);
    assert_eq!(reported as usize, mtu.max(1280));
}

#[test]
fn ttl_expiring_at_b_is_reported_back_through_the_tunnel() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
    // TTL 2: A decrements to 1, B may not forward it.
    let (port, wire) = seal_at_a(&ta, &mut fa, &udp4("10.1.0.2", "10.2.0.2", 2, 20, false));
    let (v, back) = run(&tb, &mut fb, port, &wire);
    let Verdict::Reply(back_port) = v else {
        panic!("B did not answer: {v:?}");
    };
    assert!(back_port == 1 || back_port == 2);
    // A opens B's ICMP error and delivers it to the host, from B's LAN address.
    let (v, icmp_frame) = run(&ta, &mut fa, back_port, &back);
    assert_eq!(v, Verdict::Forward(0));
    let ip = ipv4::Packet::new_checked(&icmp_frame[14..]).unwrap();
    assert_eq!(ip.src(), "10.2.0.1".parse::<Ipv4Addr>().unwrap());
    assert_eq!(ip.dst(), "10.1.0.2".parse::<Ipv4Addr>().unwrap());
    assert_eq!(ip.payload()[0], icmp::V4_TIME_EXCEEDED);
}

#[test]
fn echo_to_the_remote_lan_address_is_answered_through_the_tunnel() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
    let mut f = vec![0u8; 14 + 20 + 16];
    ethernet::write_header(&mut f, &mac(0xa0, 0), &HOST_A, ethernet::ETHERTYPE_IPV4);
    let (s, d) = ("10.1.0.2".parse().unwrap(), "10.2.0.1".parse().unwrap());
    ipv4::write_header(&mut f[14..], 36, 64, ipv4::PROTO_ICMP, s, d);
    f[34] = icmp::V4_ECHO_REQUEST;
    f[42..50].copy_from_slice(b"pingpong");
    icmp::v4_fill_checksum(&mut f[34..50]);
    let (port, wire) = seal_at_a(&ta, &mut fa, &f);
    let (v, reply) = run(&tb, &mut fb, port, &wire);
    let Verdict::Reply(p) = v else {
        panic!("{v:?}")
    };
    let (v, out) = run(&ta, &mut fa, p, &reply);
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(out[34], icmp::V4_ECHO_REPLY);
    assert_eq!(&out[42..50], b"pingpong");
}

#[test]
fn packets_for_another_workers_sa_are_handed_off_untouched() {
    let (ta, tb) = (
        site(true, TunnelKind::Overlay),
        site(false, TunnelKind::Overlay),
    );
    // A's worker 1 of 2 sends with SPI 0x1001 and IV sender bits 1.
    let mut fa1 = context(&ta, true, 1, 2);
    let (port, wire) = seal_at_a(&ta, &mut fa1, &udp4("10.1.0.2", "10.2.0.2", 64, 40, false));
    let o = overlay::parse_outer(&wire).unwrap();
    assert_eq!(o.spi, 0x1001);
    assert_eq!(
        wire[o.esp_range.start + 8],
        1,
        "IV carries the sender index"
    );
    // At B, sender 1 belongs to worker 1 of 2: worker 0 hands it over unchanged.
    let mut fb0 = context(&tb, false, 0, 2);
    let mut fb1 = context(&tb, false, 1, 2);
    let mut b = ByteBuf::new(&wire);
    let v = process(&tb, port, &mut b, &mut fb0);
    assert_eq!(
        v,
        Verdict::Handoff {
            worker: 1,
            stage: Stage::Frame
        }
    );
    assert_eq!(b.data(), &wire[..]);
    assert_eq!(
        process_handoff(&tb, port, Stage::Frame, &mut b, &mut fb1),
        Verdict::Forward(0)
    );
    // A plain tunnel's outbound SA lives on worker 0 (tunnel 0 % 2): worker 1 hands over at
    // the tenant stage, and worker 0 seals it.
    let tp = site(true, TunnelKind::Esp);
    let (mut w0, mut w1) = (context(&tp, true, 0, 2), context(&tp, true, 1, 2));
    let mut b = ByteBuf::new(&udp4("10.1.0.2", "10.2.0.2", 64, 40, false));
    assert_eq!(
        process(&tp, 0, &mut b, &mut w1),
        Verdict::Handoff {
            worker: 0,
            stage: Stage::Tenant(0)
        }
    );
    assert_eq!(b.data()[14 + 8], 63, "TTL decremented once");
    assert_eq!(
        process_handoff(&tp, 0, Stage::Tenant(0), &mut b, &mut w0),
        Verdict::Forward(1)
    );
    let ip = ipv4::Packet::new_checked(&b.data()[14..]).unwrap();
    assert_eq!(ip.protocol(), PROTO_ESP);
}

#[test]
fn unresolved_circuit_next_hop_is_solicited() {
    let mut ta = site(true, TunnelKind::Overlay);
    ta.neighbors.clear();
    let mut fa = context(&ta, true, 0, 1);
    let (v, _) = run(
        &ta,
        &mut fa,
        0,
        &udp4("10.1.0.2", "10.2.100.2", 64, 10, false),
    );
    assert_eq!(v, Verdict::Drop(DropReason::NeighborUnresolved));
    assert_eq!(fa.solicit.as_slice(), &[(2, "198.18.2.2".parse().unwrap())]);
    let hops = next_hops(&ta);
    assert!(
        hops.contains(&(1, "198.18.1.2".parse().unwrap())),
        "{hops:?}"
    );
    assert!(
        hops.contains(&(2, "198.18.2.2".parse().unwrap())),
        "{hops:?}"
    );
}

#[test]
fn tenant_lan_is_not_reachable_from_the_underlay() {
    let ta = site(true, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    // From the WAN, to the tenant's LAN host: the underlay has no route there.
    let mut f = udp4("198.18.1.2", "10.1.0.2", 64, 10, false);
    f[0..6].copy_from_slice(&mac(0xa0, 1));
    assert_eq!(
        run(&ta, &mut fa, 1, &f).0,
        Verdict::Drop(DropReason::NoRoute)
    );
    assert!(ta.routes.lookup("10.1.0.2".parse().unwrap()).is_none());
    assert_eq!(
        ta.tenants[0].routes.lookup("10.1.0.2".parse().unwrap()),
        Some(&TenantHop::Local(NextHop { port: 0, via: None }))
    );
}

#[test]
fn tunnel_mtu_arithmetic() {
    // Plain ESP over IPv4 at 1500: 20 + 16 + pad + 2 + 16.
    assert_eq!(max_inner_len(1500, 20), 1446);
    for inner in 1300..1500 {
        for hdr in [20usize, 28, 70, 110] {
            let fits = outer_len(inner, hdr) <= 1500;
            assert_eq!(
                fits,
                inner <= max_inner_len(1500, hdr),
                "inner {inner} hdr {hdr}"
            );
        }
    }
}

#[test]
fn fast_path_matches_the_slow_path() {
    for kind in [TunnelKind::Overlay, TunnelKind::Esp, TunnelKind::EspUdp] {
        let (ta, tb) = (site(true, kind), site(false, kind));
        let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
        // The first packet takes the slow path and fills the caches; the next ones of the
        // flow take the fast path (no route lookup happens: the cache entry is the proof).
        let first = udp4("10.1.0.2", "10.2.0.2", 64, 100, true);
        let (port, slow) = seal_at_a(&ta, &mut fa, &first);
        let r = fa.sas.routes[route_slot(0, u32::from(Ipv4Addr::new(10, 2, 0, 2)))];
        assert_eq!(
            (r.tunnel, r.tag),
            (0, generation_tag(ta.generation)),
            "{kind:?}"
        );
        let (port2, fast) = seal_at_a(&ta, &mut fa, &first);
        assert_eq!(port, port2);
        let hdr = fa.sas.templates.iter().find(|t| t.len > 0).unwrap().len;
        assert_eq!(
            &fast[..hdr],
            &slow[..hdr],
            "{kind:?}: same headers for the same size"
        );
        assert_eq!(fast.len(), slow.len());
        let o = hdr + 4;
        assert_eq!(
            u32::from_be_bytes([fast[o], fast[o + 1], fast[o + 2], fast[o + 3]]),
            2,
            "{kind:?}: the next sequence number"
        );
        // Other sizes patch every length and checksum: B accepts each and delivers it whole.
        for (i, payload) in [100usize, 0, 1, 333, 1200].into_iter().enumerate() {
            let inner = udp4("10.1.0.2", "10.2.0.2", 64, payload, i % 2 == 0);
            let (p, wire) = seal_at_a(&ta, &mut fa, &inner);
            let ip = ipv4::Packet::new_checked(&wire[14..]).unwrap();
            assert!(ip.verify_checksum(), "{kind:?} outer checksum");
            assert_eq!(ip.total_len(), wire.len() - 14);
            // B: the first packet fills its LAN route cache, the others are delivered from it.
            let (v, out) = run(&tb, &mut fb, p, &wire);
            assert_eq!(v, Verdict::Forward(0), "{kind:?} payload {payload}");
            assert_eq!(&out[0..6], &HOST_B);
            assert_eq!(&out[6..12], &mac(0xb0, 0));
            assert_eq!(out[14 + 8], 62, "TTL");
            assert!(ipv4::Packet::new_checked(&out[14..])
                .unwrap()
                .verify_checksum());
            assert_eq!(&out[34..], &inner[34..]);
        }
        let cached = fb.sas.lan_routes[route_slot(0, u32::from(Ipv4Addr::new(10, 2, 0, 2)))];
        assert_eq!(
            (cached.port, cached.tag),
            (0, generation_tag(tb.generation))
        );
        fa.sas.publish();
        assert_eq!(fa.sas.stats().outbound[0].packets.get(), 7, "{kind:?}");
        assert_eq!(fa.encrypted, 7);
    }
}

#[test]
fn fast_path_steps_aside_for_what_it_does_not_handle() {
    let ta = site(true, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    let f = udp4("10.1.0.2", "10.2.0.2", 64, 100, true);
    seal_at_a(&ta, &mut fa, &f);
    // Too big for the tunnel: the slow path answers with "fragmentation needed".
    let big = udp4("10.1.0.2", "10.2.0.2", 64, 1400, true);
    assert_eq!(run(&ta, &mut fa, 0, &big).0, Verdict::Reply(0));
    // TTL 1: time exceeded from the slow path.
    let ttl1 = udp4("10.1.0.2", "10.2.0.2", 1, 100, true);
    assert_eq!(run(&ta, &mut fa, 0, &ttl1).0, Verdict::Reply(0));
    // A bad header checksum: dropped and counted by the slow path.
    let mut bad = f.clone();
    bad[24] ^= 0xff;
    assert_eq!(
        run(&ta, &mut fa, 0, &bad).0,
        Verdict::Drop(DropReason::BadChecksum)
    );
    // A new table generation (a neighbor changed): the caches are stale, the slow path
    // rebuilds them with the new next hop's MAC.
    let mut t2 = ta.clone();
    t2.generation += 1;
    for (port, peer) in [(1, "198.18.1.2"), (2, "198.18.2.2")] {
        t2.neighbors.insert(
            NeighborKey::new(port, peer.parse().unwrap()),
            [0x02, 0, 0, 0, 0xee, 0xee],
        );
    }
    for _ in 0..2 {
        match run(&t2, &mut fa, 0, &f) {
            (Verdict::Forward(_), wire) => assert_eq!(&wire[0..6], &[0x02, 0, 0, 0, 0xee, 0xee]),
            (v, _) => panic!("{v:?}"),
        }
    }
}

#[test]
fn batch_mode_seals_a_burst_per_sa_and_matches_one_by_one() {
    for kind in [TunnelKind::Overlay, TunnelKind::Esp, TunnelKind::EspUdp] {
        let (ta, tb) = (site(true, kind), site(false, kind));
        let (mut fa, mut fb) = (context(&ta, true, 0, 1), context(&tb, false, 0, 1));
        // Warm the caches with one packet the ordinary way.
        seal_at_a(&ta, &mut fa, &udp4("10.1.0.2", "10.2.0.2", 64, 10, true));
        fa.sas.defer = true;
        // A burst: 40 tunnel packets (more than one AEAD batch), with a packet for the box
        // itself and one too big for the tunnel among them.
        let mut burst: Vec<ByteBuf> = (0..40)
            .map(|i| ByteBuf::new(&udp4("10.1.0.2", "10.2.0.2", 64, 20 + i * 30, true)))
            .collect();
        burst[5] = ByteBuf::new(&udp4("10.1.0.2", "10.1.0.1", 64, 10, true));
        burst[9] = ByteBuf::new(&udp4("10.1.0.2", "10.2.0.2", 64, 1450, true));
        let inners: Vec<Vec<u8>> = burst.iter().map(|b| b.data().to_vec()).collect();
        let mut verdicts = Vec::new();
        for (i, b) in burst.iter_mut().enumerate() {
            fa.sas.burst_index = i;
            verdicts.push(process(&ta, 0, b, &mut fa));
        }
        let mut failed = Vec::new();
        seal_pending(&mut burst, &mut fa, |i, r| failed.push((i, r)));
        assert!(failed.is_empty(), "{kind:?}: {failed:?}");
        assert_eq!(fa.sas.pending_len, 0);
        for (i, (v, b)) in verdicts.iter().zip(&burst).enumerate() {
            match i {
                5 => assert_ne!(*v, Verdict::Forward(1), "local"),
                9 => assert_eq!(*v, Verdict::Reply(0), "frag needed"),
                _ => {
                    let Verdict::Forward(p) = *v else {
                        panic!("{kind:?} {i}: {v:?}")
                    };
                    let (v, out) = run(&tb, &mut fb, p, b.data());
                    assert_eq!(v, Verdict::Forward(0), "{kind:?} packet {i}");
                    assert_eq!(&out[34..], &inners[i][34..]);
                }
            }
        }
        fb.sas.publish();
        let opened: u64 = fb.sas.stats().inbound.iter().map(|s| s.packets.get()).sum();
        assert_eq!(opened, 38, "{kind:?}");
    }
}

fn flow_circuit(f: &[u8], n: usize) -> usize {
    crate::multipath::choose_circuit(None, || crate::multipath::flow_hash(f), n, u32::MAX)
}

#[test]
fn flows_spread_over_circuits_and_keep_theirs() {
    let mut seen = [0usize; 4];
    for host in 0..200u8 {
        let f = udp4("10.1.0.2", &format!("10.2.{host}.7"), 64, 10, false);
        let c = flow_circuit(&f, 4);
        assert_eq!(c, flow_circuit(&f, 4), "the same flow, the same circuit");
        let other = udp4("10.1.0.2", &format!("10.2.{host}.7"), 64, 11, false);
        assert_eq!(
            c,
            flow_circuit(&other, 4),
            "the addresses decide, not the ports"
        );
        seen[c] += 1;
    }
    assert!(
        seen.iter().all(|&k| k > 20),
        "200 flows over 4 circuits: {seen:?}"
    );
    assert_eq!(
        flow_circuit(&udp4("10.1.0.2", "10.2.0.2", 64, 10, false), 1),
        0
    );
}

fn prober(t: &Tables, a: bool) -> Box<crate::multipath::Prober> {
    let (out, inbound) = if a {
        (KEY_AB, KEY_BA)
    } else {
        (KEY_BA, KEY_AB)
    };
    let keys = vec![crate::multipath::ProbeKeys {
        out: Zeroizing::new(out.to_vec()),
        inbound: vec![Zeroizing::new(inbound.to_vec())],
    }];
    Box::new(
        crate::multipath::Prober::new(
            &t.peers,
            keys,
            crate::pathmon::MonitorConfig::default(),
            4793,
            t.board.clone(),
            Backend::AwsLc,
            std::time::Instant::now(),
        )
        .unwrap(),
    )
}

/// Both sites with probing on: (tables, worker 0's context) each.
fn probing_sites() -> ((Tables, Context), (Tables, Context)) {
    let mut ta = site(true, TunnelKind::Overlay);
    let mut tb = site(false, TunnelKind::Overlay);
    ta.probe_port = 4793;
    tb.probe_port = 4793;
    let mut fa = context(&ta, true, 0, 1);
    let mut fb = context(&tb, false, 0, 1);
    fa.prober = Some(prober(&ta, true));
    fb.prober = Some(prober(&tb, false));
    ((ta, fa), (tb, fb))
}

#[test]
fn probes_are_answered_on_each_path_and_bring_the_paths_up() {
    let ((ta, mut fa), (tb, mut fb)) = probing_sites();
    assert_eq!(ta.peers.len(), 1);
    assert_eq!(ta.tunnels[0].peer_index, Some(0));
    let mut requests = Vec::new();
    fa.prober.as_mut().unwrap().poll(&ta, false, |port, f| {
        requests.push((port, f.to_vec()));
        true
    });
    assert_eq!(
        requests.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2],
        "one request per path, each on its circuit"
    );
    for (port, req) in &requests {
        // UDP 4793 -> 4793 from A's circuit address to B's, a valid UDP checksum.
        assert_eq!(&req[36..38], &4793u16.to_be_bytes());
        let dgram = udp::Datagram::new_checked(&req[34..]).unwrap();
        let (s, d) = (
            Ipv4Addr::new(req[26], req[27], req[28], req[29]),
            Ipv4Addr::new(req[30], req[31], req[32], req[33]),
        );
        assert_eq!(
            udp::ipv4_checksum(&s, &d, dgram.datagram()),
            dgram.checksum()
        );
        let mut b = ByteBuf::new(req);
        assert_eq!(process(&tb, *port, &mut b, &mut fb), Verdict::Reply(*port));
        let reply = b.data().to_vec();
        assert_eq!(&reply[0..6], &mac(0xa0, *port as u8), "back to A's circuit");
        let mut r = ByteBuf::new(&reply);
        assert_eq!(process(&ta, *port, &mut r, &mut fa), Verdict::Consumed);
    }
    for (i, st) in ta.board.peers[0].paths.iter().enumerate() {
        assert_eq!(st.state.get(), 1, "path {i} up");
    }
    assert_eq!(ta.board.usable(0), 0b11);
    // A reply fed again is ignored (answered already); B never saw its own probes answered.
    assert_eq!(tb.board.peers[0].paths[0].state.get(), 0);
}

#[test]
fn forged_and_stray_probes_are_dropped() {
    let ((ta, mut fa), (tb, mut fb)) = probing_sites();
    let mut requests = Vec::new();
    fa.prober.as_mut().unwrap().poll(&ta, false, |port, f| {
        requests.push((port, f.to_vec()));
        true
    });
    let (port, req) = &requests[0];
    // Any altered byte of the probe (the UDP checksum is not checked: the tag is).
    for at in [50, 60, 80, req.len() - 1] {
        let mut bad = req.clone();
        bad[at] ^= 1;
        let mut b = ByteBuf::new(&bad);
        assert_eq!(
            process(&tb, *port, &mut b, &mut fb),
            Verdict::Drop(DropReason::ProbeRejected),
            "byte {at}"
        );
    }
    // From an address that is no peer's on that circuit, or on the other circuit.
    let mut stray = req.clone();
    stray[29] = 9;
    let sum = checksum::checksum(&{
        let mut h = stray[14..34].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    stray[24..26].copy_from_slice(&sum.to_be_bytes());
    let mut b = ByteBuf::new(&stray);
    assert_eq!(
        process(&tb, *port, &mut b, &mut fb),
        Verdict::Drop(DropReason::ProbeRejected)
    );
    let mut elsewhere = req.clone();
    elsewhere[0..6].copy_from_slice(&mac(0xb0, 2));
    let mut b = ByteBuf::new(&elsewhere);
    assert_eq!(
        process(&tb, 2, &mut b, &mut fb),
        Verdict::Drop(DropReason::ProbeRejected),
        "inet's probe arriving on mpls"
    );
    // Another worker hands a probe to worker 0, which runs the monitors.
    let mut f1 = context(&tb, false, 1, 2);
    let mut b = ByteBuf::new(req);
    assert_eq!(
        process(&tb, *port, &mut b, &mut f1),
        Verdict::Handoff {
            worker: 0,
            stage: Stage::Frame
        }
    );
}

#[test]
fn a_path_that_is_down_steers_its_traffic_to_another() {
    let ta = site(true, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    // 10.2.100.0/24 prefers circuit 1 (mpls).
    let pinned = udp4("10.1.0.2", "10.2.100.7", 64, 10, false);
    let mut b = ByteBuf::new(&pinned);
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(2));
    // mpls goes down: the same packet, fast path and slow path alike, leaves over inet.
    ta.board.peers[0]
        .usable
        .store(0b01, std::sync::atomic::Ordering::Relaxed);
    for _ in 0..3 {
        let mut b = ByteBuf::new(&pinned);
        assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
        assert_eq!(&b.data()[26..34], &[198, 18, 1, 1, 198, 18, 1, 2]);
    }
    // Flows without a preference all leave over inet too, and come back when mpls does.
    for host in 0..20u8 {
        let f = udp4("10.1.0.2", &format!("10.2.0.{host}"), 64, 10, false);
        let mut b = ByteBuf::new(&f);
        assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
    }
    ta.board.peers[0]
        .usable
        .store(0b11, std::sync::atomic::Ordering::Relaxed);
    let mut b = ByteBuf::new(&pinned);
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(2));
    // Every path down: the preferred one all the same (better than dropping).
    ta.board.peers[0]
        .usable
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let mut b = ByteBuf::new(&pinned);
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(2));
}

/// Site A and B with mpls (circuit 1) trusted at both ends and a policy sending UDP to port
/// 5010 unencrypted.
fn clear_sites(trusted_at_b: bool) -> (Tables, Tables) {
    let mut ta = site(true, TunnelKind::Overlay);
    let mut tb = site(false, TunnelKind::Overlay);
    for (t, trusted) in [(&mut ta, true), (&mut tb, trusted_at_b)] {
        t.tunnels[0].circuits[1].trusted = trusted;
        t.peers[0].paths[1].trusted = trusted;
        t.policies = vec![crate::policy::Policy {
            name: "clear".into(),
            tenant: 0,
            src: Vec::new(),
            dst: Vec::new(),
            protocol: Some(17),
            src_ports: Vec::new(),
            dst_ports: vec![(5010, 5010)],
            dscp: 0,
            sla_name: None,
            sla: None,
            mode: crate::policy::Mode::Best,
            circuits: vec![2],
            weights: Vec::new(),
            encrypt: false,
        }];
    }
    (ta, tb)
}

fn udp4_to_port(dst_port: u16) -> Vec<u8> {
    let mut f = udp4("10.1.0.2", "10.2.0.2", 64, 24, false);
    f[36..38].copy_from_slice(&dst_port.to_be_bytes());
    // UDP checksum 0 (none) keeps the frame valid after the port change.
    f[40..42].fill(0);
    f
}

#[test]
fn differential_encryption_sends_clear_vxlan_on_a_trusted_circuit_only() {
    let (ta, tb) = clear_sites(true);
    let mut fa = context(&ta, true, 0, 1);
    let mut fb = context(&tb, false, 0, 1);
    let inner = udp4_to_port(5010);
    let mut b = ByteBuf::new(&inner);
    assert_eq!(
        process(&ta, 0, &mut b, &mut fa),
        Verdict::Forward(2),
        "over mpls"
    );
    let wire = b.data().to_vec();
    assert_eq!(wire[42] & overlay::FLAG_CLEAR, overlay::FLAG_CLEAR);
    // The client's packet is there in clear after the inner Ethernet header, TTL one less.
    let client = &wire[14 + 20 + 8 + 8 + 14..];
    assert_eq!(&client[12..20], &inner[26..34], "addresses in clear");
    assert_eq!(client[8], inner[22] - 1);
    assert_eq!(fa.clear_out, 1);
    let mut r = ByteBuf::new(&wire);
    assert_eq!(process(&tb, 2, &mut r, &mut fb), Verdict::Forward(0));
    assert_eq!(&r.data()[34..], &inner[34..], "delivered to B's LAN intact");
    assert_eq!(fb.clear_in, 1);
    // Other traffic is encrypted as before.
    let mut e = ByteBuf::new(&udp4_to_port(5011));
    assert_eq!(process(&ta, 0, &mut e, &mut fa), Verdict::Forward(1));
    assert_eq!(e.data()[42] & overlay::FLAG_CLEAR, 0);
}

#[test]
fn clear_tunnel_traffic_on_an_untrusted_circuit_is_dropped() {
    let (ta, tb) = clear_sites(false);
    let mut fa = context(&ta, true, 0, 1);
    let mut fb = context(&tb, false, 0, 1);
    let mut b = ByteBuf::new(&udp4_to_port(5010));
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(2));
    let mut r = ByteBuf::new(b.data());
    assert_eq!(
        process(&tb, 2, &mut r, &mut fb),
        Verdict::Drop(DropReason::ClearUntrusted),
        "B does not trust its mpls circuit"
    );
    // And from an address that is not the peer's: not accepted either.
    let mut forged = b.data().to_vec();
    forged[29] = 77;
    forged[24..26].fill(0);
    let sum = checksum::checksum(&forged[14..34]);
    forged[24..26].copy_from_slice(&sum.to_be_bytes());
    let (_, tb) = clear_sites(true);
    let mut r = ByteBuf::new(&forged);
    assert_eq!(
        process(&tb, 2, &mut r, &mut fb),
        Verdict::Drop(DropReason::TunnelMismatch)
    );
}

#[test]
fn tunnel_traffic_only_from_the_peers_address_on_that_circuit() {
    let ta = site(true, TunnelKind::Overlay);
    let tb = site(false, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    let mut fb = context(&tb, false, 0, 1);
    let mut b = ByteBuf::new(&udp4("10.1.0.2", "10.2.0.2", 64, 10, false));
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
    // The same sealed frame from another source address: not the peer's.
    let mut spoofed = b.data().to_vec();
    spoofed[29] = 99;
    spoofed[24..26].fill(0);
    let sum = checksum::checksum(&spoofed[14..34]);
    spoofed[24..26].copy_from_slice(&sum.to_be_bytes());
    let mut r = ByteBuf::new(&spoofed);
    assert_eq!(
        process(&tb, 1, &mut r, &mut fb),
        Verdict::Drop(DropReason::TunnelMismatch)
    );
    // From the peer's address it opens (the window has not moved for the spoofed one).
    let mut r = ByteBuf::new(b.data());
    assert_eq!(process(&tb, 1, &mut r, &mut fb), Verdict::Forward(0));
}

#[test]
fn paths_without_traffic_or_an_sla_class_are_probed_at_the_idle_interval() {
    let ta = site(true, TunnelKind::Overlay);
    let mut fa = context(&ta, true, 0, 1);
    let mut p = prober(&ta, true);
    p.watch_traffic(vec![fa.sas.stats_cell()]);
    const S: u64 = 1_000_000_000;
    p.update_activity(&ta, S);
    assert!(p.monitor(0, 0).unwrap().active(), "at start: active");
    p.update_activity(&ta, 6 * S);
    assert!(
        !p.monitor(0, 0).unwrap().active(),
        "no traffic for 5 s: idle"
    );
    assert!(!p.monitor(0, 1).unwrap().active());
    // Traffic over inet (path 0): it is active again, mpls stays idle.
    let mut b = ByteBuf::new(&udp4("10.1.0.2", "10.2.0.2", 64, 10, false));
    assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
    fa.sas.publish();
    p.update_activity(&ta, 7 * S);
    assert!(p.monitor(0, 0).unwrap().active());
    assert!(!p.monitor(0, 1).unwrap().active());
    assert_eq!(ta.board.peers[0].paths[0].active.get(), 1);
}

fn policy_for_port(name: &str, port: u16, mode: crate::policy::Mode) -> crate::policy::Policy {
    crate::policy::Policy {
        name: name.into(),
        tenant: 0,
        src: Vec::new(),
        dst: Vec::new(),
        protocol: Some(17),
        src_ports: Vec::new(),
        dst_ports: vec![(port, port)],
        dscp: 0,
        sla_name: None,
        sla: None,
        mode,
        circuits: Vec::new(),
        weights: Vec::new(),
        encrypt: true,
    }
}

#[test]
fn drop_and_breakout_policies() {
    let mut ta = site(true, TunnelKind::Overlay);
    ta.policies = vec![
        policy_for_port("drop", 6000, crate::policy::Mode::Drop),
        policy_for_port("breakout", 6001, crate::policy::Mode::Breakout),
    ];
    // The underlay has a way to 10.2.0.0/24 for the breakout: a default route on inet.
    ta.routes.insert(
        "0.0.0.0/0".parse().unwrap(),
        NextHop {
            port: 1,
            via: Some("198.18.1.2".parse().unwrap()),
        },
        crate::route::RouteSource::Static,
    );
    let mut fa = context(&ta, true, 0, 1);
    for _ in 0..2 {
        // Twice: the second time the tunnel route is cached (fast path).
        let mut b = ByteBuf::new(&udp4_to_port(6000));
        assert_eq!(
            process(&ta, 0, &mut b, &mut fa),
            Verdict::Drop(DropReason::Policy)
        );
        let inner = udp4_to_port(6001);
        let mut b = ByteBuf::new(&inner);
        assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
        let out = b.data();
        assert_eq!(out.len(), inner.len(), "not encapsulated");
        assert_eq!(&out[0..6], &mac(0xb0, 1), "to the underlay's next hop");
        assert_eq!(&out[26..34], &inner[26..34], "the client's own addresses");
        // Other traffic still goes into the tunnel.
        let mut b = ByteBuf::new(&udp4_to_port(6002));
        assert_eq!(process(&ta, 0, &mut b, &mut fa), Verdict::Forward(1));
        assert!(b.data().len() > inner.len() + 50, "encapsulated");
    }
}

#[test]
fn the_probe_worker_publishes_which_sla_classes_each_path_meets() {
    let mut ta = site(true, TunnelKind::Overlay);
    let mut tb = site(false, TunnelKind::Overlay);
    let mut voice = policy_for_port("voice", 5004, crate::policy::Mode::Best);
    voice.sla_name = Some("realtime".into());
    voice.sla = Some(crate::policy::Sla {
        max_rtt_ns: Some(50_000_000),
        max_loss_pct: None,
        max_jitter_ns: None,
    });
    ta.policies = vec![voice];
    ta.board = std::sync::Arc::new(crate::multipath::PathBoard::new(&ta.peers, 1));
    ta.probe_port = 4793;
    tb.probe_port = 4793;
    let mut fa = context(&ta, true, 0, 1);
    let mut fb = context(&tb, false, 0, 1);
    fa.prober = Some(prober(&ta, true));
    fb.prober = Some(prober(&tb, false));
    let prober_a = fa.prober.as_mut().unwrap();
    prober_a.steer_classes(&ta);
    assert_eq!(ta.board.peers[0].paths[0].sla_met.get(), 0, "no RTT yet");
    let mut requests = Vec::new();
    prober_a.poll(&ta, false, |port, f| {
        requests.push((port, f.to_vec()));
        true
    });
    // Only inet's probe is answered.
    let (port, req) = &requests[0];
    let mut b = ByteBuf::new(req);
    assert_eq!(process(&tb, *port, &mut b, &mut fb), Verdict::Reply(*port));
    let reply = b.data().to_vec();
    let mut r = ByteBuf::new(&reply);
    assert_eq!(process(&ta, *port, &mut r, &mut fa), Verdict::Consumed);
    fa.prober.as_mut().unwrap().steer_classes(&ta);
    assert_eq!(ta.board.peers[0].paths[0].sla_met.get(), 1, "inet meets it");
    assert_eq!(ta.board.peers[0].paths[1].sla_met.get(), 0, "mpls: no RTT");
    assert_eq!(ta.board.class_paths(0, 0).0, 0, "so voice goes on inet");
}

fn keyset(out: &[u8], inbound: &[u8]) -> Option<Arc<TunnelKeys>> {
    Some(Arc::new(TunnelKeys {
        out: Zeroizing::new(out.to_vec()),
        inbound: Zeroizing::new(inbound.to_vec()),
    }))
}

/// The ESP sequence number of an overlay frame.
fn esp_seq(wire: &[u8]) -> u32 {
    let o = overlay::parse_outer(wire).unwrap();
    let esp = &wire[o.esp_range.start..];
    u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]])
}

#[test]
fn new_generations_keep_live_sas_and_rekeys_are_make_before_break() {
    const KEY_NEW: [u8; 20] = [0x33; 20];
    let ids = |mut t: TunnelInfo, out: u64, inb: u64| {
        t.out_key = out;
        t.in_key = inb;
        t
    };
    // Generation 1: one tunnel each way, keys in the tables, SAs from `sync`.
    let mut ta = site_with(true, TunnelKind::Overlay, |t| vec![ids(t, 10, 11)], 0);
    ta.keys = vec![keyset(&KEY_AB, &KEY_BA)];
    let mut tb = site_with(false, TunnelKind::Overlay, |t| vec![ids(t, 12, 13)], 0);
    tb.keys = vec![keyset(&KEY_BA, &KEY_AB)];
    let mut fa = Context {
        sas: SaState::empty(0, 1, Backend::AwsLc).unwrap(),
        ..Context::default()
    };
    let mut fb = Context {
        sas: SaState::empty(0, 1, Backend::AwsLc).unwrap(),
        ..Context::default()
    };
    assert!(fa.sas.sync(&ta));
    assert!(fb.sas.sync(&tb));
    assert!(!fb.sas.sync(&tb), "the same generation changes nothing");
    let inner = udp4("10.1.0.2", "10.2.0.2", 64, 100, true);
    for seq in 1..=3 {
        let (port, wire) = seal_at_a(&ta, &mut fa, &inner);
        assert_eq!(esp_seq(&wire), seq);
        assert_eq!(run(&tb, &mut fb, port, &wire).0, Verdict::Forward(0));
    }

    // Generation 2 at A: another peer's tunnel comes first, ours moves to index 1 with the
    // same key ids: the SA is kept, its sequence numbers go on.
    let decoy = |t: &TunnelInfo| {
        let mut d = t.clone();
        d.peer = "c".into();
        d.loopbacks = Some(("10.255.0.1".parse().unwrap(), "10.255.0.9".parse().unwrap()));
        d.out_spi = 0x7000;
        d.in_spi = 0x7100;
        d.out_key = 90;
        d.in_key = 91;
        d
    };
    let mut ta2 = site_with(
        true,
        TunnelKind::Overlay,
        |t| vec![decoy(&t), ids(t, 10, 11)],
        1,
    );
    ta2.generation = 2;
    ta2.keys = vec![keyset(&[0x44; 20], &[0x55; 20]), keyset(&KEY_AB, &KEY_BA)];
    fa.sas.sync(&ta2);
    let (port, wire) = seal_at_a(&ta2, &mut fa, &inner);
    assert_eq!(esp_seq(&wire), 4, "the moved SA kept its counter");
    // B, generation 2: the inbound SA of A's next key is installed before A uses it.
    let new_inbound = |t: &TunnelInfo| {
        let mut n = t.clone();
        n.out_spi = 0; // inbound only
        n.in_spi = 0x3000;
        n.out_key = 0;
        n.in_key = 23;
        n
    };
    let mut tb2 = site_with(
        false,
        TunnelKind::Overlay,
        |t| {
            let n = new_inbound(&t);
            vec![ids(t, 12, 13), n]
        },
        0,
    );
    tb2.generation = 2;
    tb2.keys = vec![keyset(&KEY_BA, &KEY_AB), keyset(&[], &KEY_NEW)];
    assert!(fb.sas.sync(&tb2), "new inbound slots");
    assert_eq!(run(&tb2, &mut fb, port, &wire).0, Verdict::Forward(0));
    assert_eq!(
        run(&tb2, &mut fb, port, &wire).0,
        Verdict::Drop(DropReason::Replay),
        "the kept inbound SA kept its replay window"
    );
    // A packet sealed with the old key and delayed on the way.
    let (late_port, late) = seal_at_a(&ta2, &mut fa, &inner);
    let (late2_port, late2) = seal_at_a(&ta2, &mut fa, &inner);

    // Generation 3 at A: it sends with the new key and SPI.
    let mut ta3 = site_with(
        true,
        TunnelKind::Overlay,
        |t| {
            let mut t = ids(t, 20, 11);
            t.out_spi = 0x3000;
            vec![decoy(&t), t]
        },
        1,
    );
    ta3.generation = 3;
    ta3.keys = vec![keyset(&[0x44; 20], &[0x55; 20]), keyset(&KEY_NEW, &KEY_BA)];
    fa.sas.sync(&ta3);
    let (port, wire) = seal_at_a(&ta3, &mut fa, &inner);
    let o = overlay::parse_outer(&wire).unwrap();
    assert_eq!((o.spi, esp_seq(&wire)), (0x3000, 1), "a new SA starts at 1");
    assert_eq!(run(&tb2, &mut fb, port, &wire).0, Verdict::Forward(0));
    // The old SA is still there for what was on its way.
    assert_eq!(run(&tb2, &mut fb, late_port, &late).0, Verdict::Forward(0));
    // B, generation 3: the grace period is over, the old inbound SA goes.
    let mut tb3 = site_with(false, TunnelKind::Overlay, |t| vec![new_inbound(&t)], 0);
    tb3.generation = 3;
    tb3.keys = vec![keyset(&[], &KEY_NEW)];
    fb.sas.sync(&tb3);
    assert_eq!(
        run(&tb3, &mut fb, late2_port, &late2).0,
        Verdict::Drop(DropReason::UnknownSpi)
    );
    let (port, wire) = seal_at_a(&ta3, &mut fa, &inner);
    assert_eq!(run(&tb3, &mut fb, port, &wire).0, Verdict::Forward(0));
}

#[test]
fn an_spi_is_looked_up_with_the_peer_it_came_from() {
    // B has two peers that both send with SPI 0x1000: the packet finds the SA of its sender.
    let (ta, _) = (site(true, TunnelKind::Overlay), ());
    let mut fa = context(&ta, true, 0, 1);
    let other_peer = |t: &TunnelInfo| {
        let mut o = t.clone();
        o.peer = "c".into();
        o.loopbacks = Some(("10.255.0.2".parse().unwrap(), "10.255.0.9".parse().unwrap()));
        o.out_spi = 0x5000;
        o
    };
    let mut tb = site_with(false, TunnelKind::Overlay, |t| vec![other_peer(&t), t], 1);
    // Peer c's tunnel (index 0) has A's SPI but another key.
    tb.keys = vec![keyset(&[0x66; 20], &[0x77; 20]), keyset(&KEY_BA, &KEY_AB)];
    let mut fb = Context {
        sas: SaState::empty(0, 1, Backend::AwsLc).unwrap(),
        ..Context::default()
    };
    fb.sas.sync(&tb);
    assert_eq!(tb.spis.len(), 2 * SENDERS as usize);
    let inner = udp4("10.1.0.2", "10.2.0.2", 64, 100, true);
    let (port, wire) = seal_at_a(&ta, &mut fa, &inner);
    assert_eq!(run(&tb, &mut fb, port, &wire).0, Verdict::Forward(0));
}

/// A prober that takes its peers and keys from the tables (as with learned peers).
fn synced_prober(t: &Tables) -> Box<crate::multipath::Prober> {
    let mut p = Box::new(
        crate::multipath::Prober::new(
            &[],
            Vec::new(),
            crate::pathmon::MonitorConfig::default(),
            4793,
            t.board.clone(),
            Backend::AwsLc,
            std::time::Instant::now(),
        )
        .unwrap(),
    );
    p.sync(t);
    p
}

/// One round of probes from `x` to `y` on every path: how many replies `x` accepted.
fn probe_round(tx: &Tables, fx: &mut Context, ty: &Tables, fy: &mut Context) -> usize {
    let mut requests = Vec::new();
    let p = fx.prober.as_mut().unwrap();
    // Every path is due at once only at the start: force a round by polling far ahead.
    p.poll(tx, false, |port, f| {
        requests.push((port, f.to_vec()));
        true
    });
    let mut ok = 0;
    for (port, req) in &requests {
        let mut b = ByteBuf::new(req);
        if process(ty, *port, &mut b, fy) != Verdict::Reply(*port) {
            continue;
        }
        let reply = b.data().to_vec();
        let mut r = ByteBuf::new(&reply);
        if process(tx, *port, &mut r, fx) == Verdict::Consumed {
            ok += 1;
        }
    }
    ok
}

#[test]
fn probes_follow_the_keys_of_the_tables_through_a_rekey() {
    const KEY_NEW: [u8; 20] = [0x77; 20];
    let ids = |mut t: TunnelInfo, out: u64, inb: u64| {
        t.out_key = out;
        t.in_key = inb;
        t
    };
    let with = |a: bool, tunnels: Vec<TunnelInfo>, keys: Vec<Option<Arc<TunnelKeys>>>, v: u64| {
        let mut t = site_with(a, TunnelKind::Overlay, |_| tunnels, 0);
        t.keys = keys;
        t.probe_port = 4793;
        t.overlay_version = v;
        t.generation = v;
        t
    };
    let base_a = site(true, TunnelKind::Overlay).tunnels[0].clone();
    let base_b = site(false, TunnelKind::Overlay).tunnels[0].clone();
    let ta = with(
        true,
        vec![ids(base_a.clone(), 1, 2)],
        vec![keyset(&KEY_AB, &KEY_BA)],
        1,
    );
    let tb = with(
        false,
        vec![ids(base_b.clone(), 3, 4)],
        vec![keyset(&KEY_BA, &KEY_AB)],
        1,
    );
    let mut fa = Context {
        sas: SaState::empty(0, 1, Backend::AwsLc).unwrap(),
        prober: Some(synced_prober(&ta)),
        ..Context::default()
    };
    let mut fb = Context {
        sas: SaState::empty(0, 1, Backend::AwsLc).unwrap(),
        prober: Some(synced_prober(&tb)),
        ..Context::default()
    };
    fa.sas.sync(&ta);
    fb.sas.sync(&tb);
    assert_eq!(
        probe_round(&ta, &mut fa, &tb, &mut fb),
        2,
        "both paths answered"
    );
    // B installs the inbound SA of A's next key (make-before-break): probes still pass.
    let mut new_in = base_b.clone();
    new_in.out_spi = 0;
    new_in.in_spi = 0x3000;
    let tb2 = with(
        false,
        vec![ids(base_b.clone(), 3, 4), ids(new_in, 0, 5)],
        vec![keyset(&KEY_BA, &KEY_AB), keyset(&[], &KEY_NEW)],
        2,
    );
    fb.sas.sync(&tb2);
    fb.prober.as_mut().unwrap().sync(&tb2);
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(probe_round(&ta, &mut fa, &tb2, &mut fb), 2);
    // A sends with the new key: its probes too.
    let mut a_new = base_a.clone();
    a_new.out_spi = 0x3000;
    let ta2 = with(
        true,
        vec![ids(a_new, 6, 2)],
        vec![keyset(&KEY_NEW, &KEY_BA)],
        2,
    );
    fa.sas.sync(&ta2);
    fa.prober.as_mut().unwrap().sync(&ta2);
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(probe_round(&ta2, &mut fa, &tb2, &mut fb), 2, "A's new key");
    // And B's probes to A, keyed with B's unchanged outbound key.
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(probe_round(&tb2, &mut fb, &ta2, &mut fa), 2, "B to A");
}
