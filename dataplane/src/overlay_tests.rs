use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::esp::replay::DEFAULT_WINDOW;
use crate::esp::{AeadKey, Backend, ReplayWindow, Suite};
use crate::forward::ByteBuf;

const SPI: u32 = 0xa1b2_c3d4;
const VNI: u32 = 0x00ab_cdef;

fn keymat(suite: Suite) -> Vec<u8> {
    (0..suite.keymat_len())
        .map(|i| (i as u8).wrapping_mul(53) ^ 0x17)
        .collect()
}

fn pair(backend: Backend) -> (OutboundSa, InboundSa) {
    let s = Suite::Aes128Gcm;
    let out = OutboundSa::new(SPI, false, AeadKey::new(backend, s, &keymat(s)).unwrap());
    let win = ReplayWindow::new(DEFAULT_WINDOW, false).unwrap();
    let inb = InboundSa::new(SPI, AeadKey::new(backend, s, &keymat(s)).unwrap(), win);
    (out, inb)
}

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}
fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn path(outer_v6: bool, loopback_v6: bool) -> OverlayPath {
    let (outer_src, outer_dst) = if outer_v6 {
        (v6("2001:db8:a::1"), v6("2001:db8:b::1"))
    } else {
        (v4("198.51.100.1"), v4("203.0.113.9"))
    };
    let (loopback_src, loopback_dst) = if loopback_v6 {
        (v6("fd00:10::1"), v6("fd00:10::2"))
    } else {
        (v4("10.255.0.1"), v4("10.255.0.2"))
    };
    OverlayPath {
        outer_src_mac: [0x02, 0, 0, 0, 0xa, 1],
        outer_dst_mac: [0x02, 0, 0, 0, 0xb, 1],
        outer_src,
        outer_dst,
        inner_src_mac: [0x02, 0, 0, 0, 0xa, 2],
        inner_dst_mac: [0x02, 0, 0, 0, 0xb, 2],
        loopback_src,
        loopback_dst,
        vni: VNI,
        ttl: 64,
    }
}

/// A client packet with a valid IPv4 or IPv6 header and `len` bytes of payload.
fn client(v6: bool, len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let mut p = vec![0u8; if v6 { 40 } else { 20 }];
    if v6 {
        ipv6::write_header(
            &mut p,
            len as u16,
            17,
            63,
            &"fd00:1::10".parse().unwrap(),
            &"fd00:2::20".parse().unwrap(),
        );
    } else {
        ipv4::write_header(
            &mut p,
            (20 + len) as u16,
            63,
            17,
            Ipv4Addr::new(10, 1, 0, 10),
            Ipv4Addr::new(10, 2, 0, 20),
        );
    }
    p.extend_from_slice(&body);
    p
}

/// The Internet checksum, written here independently of `wire::checksum`.
fn csum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in data.chunks(2) {
        s += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The overlay headers for `p` around an ESP packet of `esp_len` bytes, byte by byte from
/// the RFCs; the IPv6 UDP checksum is filled by the caller (it covers the ESP bytes).
fn expected_headers(p: &OverlayPath, esp_len: usize) -> Vec<u8> {
    let outer_v6 = p.outer_src.is_ipv6();
    let loop_v6 = p.loopback_src.is_ipv6();
    let inner_ip_len = if loop_v6 { 40 } else { 20 };
    let udp_len = 8 + 8 + 14 + inner_ip_len + esp_len;
    let mut h = Vec::new();
    h.extend_from_slice(&p.outer_dst_mac);
    h.extend_from_slice(&p.outer_src_mac);
    h.extend_from_slice(if outer_v6 {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    let ip_start = h.len();
    if outer_v6 {
        h.extend_from_slice(&[0x60, 0, 0, 0]);
        h.extend_from_slice(&(udp_len as u16).to_be_bytes());
        h.extend_from_slice(&[17, p.ttl]);
    } else {
        h.extend_from_slice(&[0x45, 0]);
        h.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x40, 0, p.ttl, 17, 0, 0]);
    }
    h.extend_from_slice(&octets(p.outer_src));
    h.extend_from_slice(&octets(p.outer_dst));
    if !outer_v6 {
        let c = csum(&h[ip_start..]);
        h[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
    }
    h.extend_from_slice(&source_port(SPI).to_be_bytes());
    h.extend_from_slice(&[0x12, 0xb5]); // 4789
    h.extend_from_slice(&(udp_len as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&[0x08, 0, 0, 0]);
    h.extend_from_slice(&VNI.to_be_bytes()[1..]);
    h.push(0);
    h.extend_from_slice(&p.inner_dst_mac);
    h.extend_from_slice(&p.inner_src_mac);
    h.extend_from_slice(if loop_v6 {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    let iip = h.len();
    if loop_v6 {
        h.extend_from_slice(&[0x60, 0, 0, 0]);
        h.extend_from_slice(&(esp_len as u16).to_be_bytes());
        h.extend_from_slice(&[50, p.ttl]);
    } else {
        h.extend_from_slice(&[0x45, 0]);
        h.extend_from_slice(&((20 + esp_len) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, p.ttl, 50, 0, 0]);
    }
    h.extend_from_slice(&octets(p.loopback_src));
    h.extend_from_slice(&octets(p.loopback_dst));
    if !loop_v6 {
        let c = csum(&h[iip..]);
        h[iip + 10..iip + 12].copy_from_slice(&c.to_be_bytes());
    }
    h
}

fn buf_for(p: &OverlayPath, pkt: &[u8]) -> ByteBuf {
    ByteBuf::with_headroom(pkt, p.headroom().unwrap().max(ByteBuf::HEADROOM))
}

#[test]
fn headroom_table() {
    assert_eq!(headroom_needed(false, false), 100);
    assert_eq!(headroom_needed(false, true), 120);
    assert_eq!(headroom_needed(true, false), 120);
    assert_eq!(headroom_needed(true, true), 140);
    assert_eq!(MAX_HEADROOM, 140);
    const { assert!(headroom_needed(true, false) <= ByteBuf::HEADROOM) };
}

#[test]
fn round_trip_every_family_and_backend() {
    for backend in Backend::ALL {
        for client_v6 in [false, true] {
            for outer_v6 in [false, true] {
                for loop_v6 in [false, true] {
                    let (mut out, mut inb) = pair(backend);
                    let p = path(outer_v6, loop_v6);
                    for len in [0usize, 1, 3, 100, 1300] {
                        let what = format!(
                            "{backend:?} client_v6 {client_v6} outer_v6 {outer_v6} \
                             loopback_v6 {loop_v6} len {len}"
                        );
                        let inner = client(client_v6, len);
                        let mut b = buf_for(&p, &inner);
                        let seq = encapsulate(&p, &mut out, &mut b).unwrap();
                        assert_eq!(seq, out.last_seq());
                        let frame = b.data().to_vec();
                        let hdr = header_len(outer_v6, loop_v6);
                        let esp_len = frame.len() - hdr;
                        assert_eq!(esp_len % 4, 0, "{what}");

                        // Byte by byte against the independent construction.
                        let mut want = expected_headers(&p, esp_len);
                        if outer_v6 {
                            let udp_off = 14 + 40;
                            let mut pseudo = octets(p.outer_src);
                            pseudo.extend(octets(p.outer_dst));
                            let udp_len = frame.len() - udp_off;
                            pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
                            pseudo.extend_from_slice(&[0, 0, 0, 17]);
                            pseudo.extend_from_slice(&want[udp_off..]);
                            pseudo.extend_from_slice(&frame[hdr..]);
                            let c = csum(&pseudo);
                            let c = if c == 0 { 0xffff } else { c };
                            want[udp_off + 6..udp_off + 8].copy_from_slice(&c.to_be_bytes());
                        }
                        assert_eq!(&frame[..hdr], &want[..], "{what}");

                        // Field by field.
                        let oip = 14;
                        let udp_off = oip + if outer_v6 { 40 } else { 20 };
                        if !outer_v6 {
                            assert_eq!(csum(&frame[oip..oip + 20]), 0, "{what}");
                            assert_eq!(frame[oip + 6] & 0x40, 0x40, "DF {what}");
                            assert_eq!(&frame[udp_off + 6..udp_off + 8], &[0, 0]);
                        } else {
                            assert_ne!(&frame[udp_off + 6..udp_off + 8], &[0, 0]);
                        }
                        let udp_len = u16::from_be_bytes([frame[udp_off + 4], frame[udp_off + 5]]);
                        assert_eq!(usize::from(udp_len), frame.len() - udp_off, "{what}");
                        let sport = u16::from_be_bytes([frame[udp_off], frame[udp_off + 1]]);
                        assert_eq!(sport, source_port(SPI));
                        let vx = udp_off + 8;
                        assert_eq!(frame[vx], 0x08);
                        assert_eq!(&frame[vx + 4..vx + 7], &[0xab, 0xcd, 0xef]);
                        let iip = vx + 8 + 14;
                        let (proto, src, dst) = if loop_v6 {
                            (
                                frame[iip + 6],
                                &frame[iip + 8..iip + 24],
                                &frame[iip + 24..iip + 40],
                            )
                        } else {
                            assert_eq!(csum(&frame[iip..iip + 20]), 0, "{what}");
                            (
                                frame[iip + 9],
                                &frame[iip + 12..iip + 16],
                                &frame[iip + 16..iip + 20],
                            )
                        };
                        assert_eq!(proto, 50);
                        assert_eq!(src, &octets(p.loopback_src)[..]);
                        assert_eq!(dst, &octets(p.loopback_dst)[..]);
                        assert_eq!(&frame[hdr..hdr + 4], &SPI.to_be_bytes());

                        // Receive, with Ethernet padding after the IP packet.
                        let mut padded = frame.clone();
                        padded.extend_from_slice(&[0xee; 9]);
                        let info = parse_outer(&padded).unwrap();
                        assert_eq!(info.vni, VNI);
                        assert_eq!(info.spi, SPI);
                        assert_eq!(info.outer_src, p.outer_src);
                        assert_eq!(info.outer_dst, p.outer_dst);
                        assert_eq!(info.src_port, source_port(SPI));
                        assert_eq!(info.loopback_src, p.loopback_src);
                        assert_eq!(info.loopback_dst, p.loopback_dst);
                        assert_eq!(info.esp_range, hdr..frame.len());
                        let mut rx = ByteBuf::new(&padded);
                        let nh = decapsulate(&mut inb, &mut rx, &info).unwrap();
                        assert_eq!(nh, if client_v6 { 41 } else { 4 }, "{what}");
                        assert_eq!(rx.data(), &inner[..], "{what}");
                    }
                    assert_eq!(inb.counters.packets, 5);
                }
            }
        }
    }
}

#[test]
fn source_port_is_fixed_ephemeral_and_spreads() {
    let mut seen = std::collections::HashSet::new();
    for spi in (0..4096u32).map(|i| i.wrapping_mul(0x0100_0193) ^ 0x1000) {
        let p = source_port(spi);
        assert!(p >= 49152);
        assert_eq!(p, source_port(spi));
        seen.insert(p);
    }
    assert!(seen.len() > 3000, "{} distinct ports", seen.len());
    assert!(source_port(0) >= 49152 && source_port(u32::MAX) >= 49152);
}

#[test]
fn ipv6_over_ipv6_needs_more_than_default_headroom() {
    let (mut out, _) = pair(Backend::default());
    let p = path(true, true);
    let inner = client(false, 64);
    let mut b = ByteBuf::new(&inner);
    assert_eq!(encapsulate(&p, &mut out, &mut b), Err(OverlayError::NoRoom));
    assert_eq!(b.data(), &inner[..], "untouched");
    assert_eq!(out.last_seq(), 0, "no sequence number used");
    let mut b = ByteBuf::with_headroom(&inner, MAX_HEADROOM);
    assert_eq!(encapsulate(&p, &mut out, &mut b), Ok(1));
}

#[test]
fn bad_paths_are_refused() {
    let (mut out, _) = pair(Backend::default());
    let inner = client(false, 10);
    let mut mixed = path(false, false);
    mixed.outer_dst = v6("2001:db8::1");
    let mut mixed_loop = path(false, false);
    mixed_loop.loopback_src = v6("fd00::1");
    let mut big_vni = path(false, false);
    big_vni.vni = 1 << 24;
    for p in [mixed, mixed_loop, big_vni] {
        let mut b = ByteBuf::new(&inner);
        assert_eq!(
            encapsulate(&p, &mut out, &mut b),
            Err(OverlayError::BadPath)
        );
        assert_eq!(b.data(), &inner[..]);
    }
    let mut b = ByteBuf::new(&[0x10, 0, 0]);
    assert_eq!(
        encapsulate(&path(false, false), &mut out, &mut b),
        Err(OverlayError::Esp(EspError::Malformed))
    );
    assert_eq!(out.last_seq(), 0);
}

fn sealed_frame(outer_v6: bool, loop_v6: bool) -> (Vec<u8>, InboundSa) {
    let (mut out, inb) = pair(Backend::default());
    let p = path(outer_v6, loop_v6);
    let mut b = buf_for(&p, &client(false, 40));
    encapsulate(&p, &mut out, &mut b).unwrap();
    (b.data().to_vec(), inb)
}

#[test]
fn wrong_port_and_flags_and_truncation_are_errors() {
    for (outer_v6, loop_v6) in [(false, false), (true, true), (false, true), (true, false)] {
        let (frame, _) = sealed_frame(outer_v6, loop_v6);
        let udp_off = 14 + if outer_v6 { 40 } else { 20 };
        let mut f = frame.clone();
        f[udp_off + 3] ^= 1; // dport 4788
                             // Over IPv6 the checksum would also be wrong: the port is checked first.
        assert_eq!(parse_outer(&f), Err(OverlayError::WrongPort));
        if !outer_v6 {
            let mut f = frame.clone();
            f[udp_off + 8] = 0x00; // I flag clear (checksum is zero over IPv4)
            assert_eq!(parse_outer(&f), Err(OverlayError::NotVxlan));
            let mut f = frame.clone();
            f[udp_off + 8] = 0xf7; // every flag but I
            assert_eq!(parse_outer(&f), Err(OverlayError::NotVxlan));
            let mut f = frame.clone();
            f[udp_off + 8] = 0xff; // reserved bits ignored
            f[udp_off + 9] = 0xff;
            assert!(parse_outer(&f).is_ok());
            let mut f = frame.clone();
            f[14 + 12] ^= 1; // outer source address: IPv4 header checksum fails
            assert_eq!(parse_outer(&f), Err(OverlayError::OuterIp));
            let mut f = frame.clone();
            f[14 + 6] |= 0x20; // MF
            let c = csum(&{
                let mut h = f[14..34].to_vec();
                h[10..12].fill(0);
                h
            });
            f[24..26].copy_from_slice(&c.to_be_bytes());
            assert_eq!(parse_outer(&f), Err(OverlayError::OuterIp));
        } else {
            let mut f = frame.clone();
            f[udp_off + 6..udp_off + 8].fill(0); // zero checksum over IPv6
            assert_eq!(parse_outer(&f), Err(OverlayError::Udp));
            let mut f = frame.clone();
            f[udp_off + 8] = 0; // I flag clear: the checksum catches it first
            assert_eq!(parse_outer(&f), Err(OverlayError::Udp));
        }
        let mut f = frame.clone();
        f[12] = 0x81; // VLAN tag: not handled
        assert_eq!(parse_outer(&f), Err(OverlayError::OuterEthernet));
        for len in 0..frame.len() {
            assert!(parse_outer(&frame[..len]).is_err(), "len {len}");
        }
        assert!(parse_outer(&frame).is_ok());
    }
}

#[test]
fn clear_vxlan_is_not_esp() {
    // A frame built by hand: IPv4 outer, VXLAN, inner IPv4 UDP (not 50).
    let p = path(false, false);
    let mut f = expected_headers(&p, 20);
    f.extend_from_slice(&[0u8; 20]);
    let iip = 14 + 20 + 8 + 8 + 14;
    f[iip + 9] = 17;
    f[iip + 10..iip + 12].fill(0);
    let c = csum(&f[iip..iip + 20]);
    f[iip + 10..iip + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(parse_outer(&f), Err(OverlayError::NotEsp));
}

#[test]
fn tampered_ciphertext_is_auth_failed() {
    let (frame, mut inb) = sealed_frame(false, false);
    let info = parse_outer(&frame).unwrap();
    for at in [info.esp_range.start + 20, frame.len() - 1] {
        let mut f = frame.clone();
        f[at] ^= 0x80;
        let info = parse_outer(&f).unwrap(); // no UDP checksum over IPv4
        let mut b = ByteBuf::new(&f);
        assert_eq!(
            decapsulate(&mut inb, &mut b, &info),
            Err(OverlayError::Esp(EspError::AuthFailed))
        );
    }
    // Over IPv6 the UDP checksum catches it first.
    let (frame, _) = sealed_frame(true, false);
    let mut f = frame.clone();
    let last = f.len() - 1;
    f[last] ^= 0x80;
    assert_eq!(parse_outer(&f), Err(OverlayError::Udp));
    // The untampered frame still opens.
    let mut b = ByteBuf::new(&frame);
    let (_, mut inb6) = pair(Backend::default());
    let info = parse_outer(&frame).unwrap();
    assert_eq!(decapsulate(&mut inb6, &mut b, &info), Ok(4));
}

#[test]
fn any_single_byte_change_never_panics() {
    for (outer_v6, loop_v6) in [(false, false), (true, true)] {
        let (frame, _) = sealed_frame(outer_v6, loop_v6);
        for at in 0..frame.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut f = frame.clone();
                f[at] ^= x;
                if let Ok(info) = parse_outer(&f) {
                    let (_, mut inb) = pair(Backend::default());
                    let mut b = ByteBuf::new(&f);
                    // Only bytes the ESP ICV does not cover may change and still open.
                    if decapsulate(&mut inb, &mut b, &info).is_ok() {
                        assert!(at < info.esp_range.start, "byte {at}");
                    }
                }
            }
        }
    }
}

#[test]
fn decapsulate_refuses_a_range_outside_the_buffer() {
    let (frame, mut inb) = sealed_frame(false, false);
    let mut info = parse_outer(&frame).unwrap();
    info.esp_range.end = frame.len() + 1;
    let mut b = ByteBuf::new(&frame);
    assert!(decapsulate(&mut inb, &mut b, &info).is_err());
}

#[test]
fn error_names_are_unique() {
    let all = [
        OverlayError::OuterEthernet,
        OverlayError::OuterIp,
        OverlayError::Udp,
        OverlayError::WrongPort,
        OverlayError::NotVxlan,
        OverlayError::InnerEthernet,
        OverlayError::InnerIp,
        OverlayError::NotEsp,
        OverlayError::BadPath,
        OverlayError::NoRoom,
        OverlayError::Esp(EspError::AuthFailed),
    ];
    let mut names: Vec<_> = all.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    assert_eq!(OverlayError::from(EspError::NoRoom), OverlayError::NoRoom);
    assert_eq!(
        OverlayError::from(EspError::Replay),
        OverlayError::Esp(EspError::Replay)
    );
}
