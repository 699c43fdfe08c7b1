//! Frame templates and the packet plan: which class, size and flow each packet has. Built once
//! before sending; per packet the transmit loop copies a template and patches the flow fields
//! (destination address, source port, header checksum) and the signature. Sans-IO.

use std::net::Ipv4Addr;

use sdwan_dataplane::wire::checksum::checksum;
use sdwan_dataplane::wire::MacAddr;

use super::cli::{hosts_in_prefix, Config, Size, IMIX, SPORT_SPAN, VOICE_FRAME};
use super::payload::{Class, Signature, HEADERS_LEN};

pub const TOS_EF: u8 = 0xb8;
const OFF_IP: usize = 14;
const OFF_CSUM: usize = OFF_IP + 10;
const OFF_DST: usize = OFF_IP + 16;
const OFF_SPORT: usize = OFF_IP + 20;

/// The addresses of flow `i` of `n`: destination = network + 1 + (i mod hosts) (the network
/// address is skipped; for /31 and /32 the prefix's own addresses), source port = 1024 +
/// (i / hosts) % 60000.
pub fn flow(net: Ipv4Addr, len: u8, i: u64) -> (Ipv4Addr, u16) {
    let hosts = hosts_in_prefix(len);
    let first = if len >= 31 { 0 } else { 1 };
    let dst = u32::from(net).wrapping_add(first + (i % hosts) as u32);
    let sport = 1024 + ((i / hosts) % SPORT_SPAN) as u16;
    (Ipv4Addr::from(dst), sport)
}

/// Writes an Ethernet/IPv4/UDP frame of `len` bytes with a zero payload: IPv4 header checksum
/// correct, UDP checksum 0 (none), DF set, TTL 64.
#[allow(clippy::too_many_arguments)]
pub fn write_frame(
    buf: &mut [u8],
    dst_mac: &MacAddr,
    src_mac: &MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    tos: u8,
) {
    let len = buf.len();
    buf.fill(0);
    buf[0..6].copy_from_slice(dst_mac);
    buf[6..12].copy_from_slice(src_mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut buf[OFF_IP..OFF_IP + 20];
    ip[0] = 0x45;
    ip[1] = tos;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp = &mut buf[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
}

/// Changes a template's flow fields in place and fixes the header checksum.
#[inline]
pub fn patch_flow(frame: &mut [u8], dst: [u8; 4], sport: u16) {
    frame[OFF_DST..OFF_DST + 4].copy_from_slice(&dst);
    frame[OFF_SPORT..OFF_SPORT + 2].copy_from_slice(&sport.to_be_bytes());
    frame[OFF_CSUM..OFF_CSUM + 2].fill(0);
    let c = checksum(&frame[OFF_IP..OFF_IP + 20]);
    frame[OFF_CSUM..OFF_CSUM + 2].copy_from_slice(&c.to_be_bytes());
}

#[inline]
pub fn patch_signature(frame: &mut [u8], sig: &Signature) -> bool {
    match frame.get_mut(HEADERS_LEN..) {
        Some(p) => sig.encode(p),
        None => false,
    }
}

/// One packet of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub class: Class,
    /// Index into `Plan::templates`.
    pub template: usize,
    pub len: usize,
    pub flow: usize,
}

/// Everything the transmit loop needs, built before it starts.
pub struct Plan {
    /// Frame templates of flow 0: one per bulk size slot, then the voice template (if any).
    pub templates: Vec<Vec<u8>>,
    /// (destination address, source port) per flow.
    pub flows: Vec<([u8; 4], u16)>,
    bulk_slots: Vec<usize>,
    voice_template: Option<usize>,
    /// Every `voice_every`-th packet is voice (0 = none).
    voice_every: u64,
    counter: u64,
    flow_cursor: usize,
    size_cursor: usize,
}

impl Plan {
    pub fn new(c: &Config, src_mac: &MacAddr, dst_mac: &MacAddr) -> Plan {
        let sizes: Vec<usize> = match c.size {
            Size::Fixed(n) => vec![n],
            Size::Imix => IMIX.to_vec(),
        };
        let flows: Vec<([u8; 4], u16)> = (0..c.flows)
            .map(|i| {
                let (d, s) = flow(c.dst_net, c.dst_len, i);
                (d.octets(), s)
            })
            .collect();
        let (d0, s0) = flow(c.dst_net, c.dst_len, 0);
        let mut templates: Vec<Vec<u8>> = Vec::new();
        let mut bulk_slots = Vec::new();
        for &len in &sizes {
            let idx = match templates.iter().position(|t| t.len() == len) {
                Some(i) => i,
                None => {
                    let mut t = vec![0u8; len];
                    write_frame(&mut t, dst_mac, src_mac, c.src_ip, d0, s0, c.dst_port, 0);
                    templates.push(t);
                    templates.len() - 1
                }
            };
            bulk_slots.push(idx);
        }
        let (voice_template, voice_every) = match c.voice_pct {
            Some(pct) => {
                let mut t = vec![0u8; VOICE_FRAME];
                write_frame(
                    &mut t,
                    dst_mac,
                    src_mac,
                    c.src_ip,
                    d0,
                    s0,
                    c.voice_port,
                    TOS_EF,
                );
                templates.push(t);
                (
                    Some(templates.len() - 1),
                    (100.0 / pct).round().max(1.0) as u64,
                )
            }
            None => (None, 0),
        };
        Plan {
            templates,
            flows,
            bulk_slots,
            voice_template,
            voice_every,
            counter: 0,
            flow_cursor: 0,
            size_cursor: 0,
        }
    }

    /// The next packet, without advancing.
    #[inline]
    pub fn peek(&self) -> Next {
        let voice = self.voice_every > 0 && self.counter % self.voice_every == self.voice_every - 1;
        let (class, template) = match (voice, self.voice_template) {
            (true, Some(t)) => (Class::Voice, t),
            _ => (Class::Bulk, self.bulk_slots[self.size_cursor]),
        };
        Next {
            class,
            template,
            len: self.templates[template].len(),
            flow: self.flow_cursor,
        }
    }

    /// Moves past the packet `peek` returned.
    #[inline]
    pub fn advance(&mut self, n: &Next) {
        self.counter += 1;
        self.flow_cursor += 1;
        if self.flow_cursor == self.flows.len() {
            self.flow_cursor = 0;
        }
        if n.class == Class::Bulk {
            self.size_cursor += 1;
            if self.size_cursor == self.bulk_slots.len() {
                self.size_cursor = 0;
            }
        }
    }

    /// Writes packet `n` into `out` (exactly `n.len` bytes): template, flow fields, signature.
    #[inline]
    pub fn write(&self, n: &Next, sig: &Signature, out: &mut [u8]) {
        out.copy_from_slice(&self.templates[n.template]);
        if n.flow != 0 {
            let (d, s) = self.flows[n.flow];
            patch_flow(out, d, s);
        }
        patch_signature(out, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::cli::parse;
    use crate::pktgen::payload::{classify, Received};

    fn cfg(s: &str) -> Config {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flows_cover_hosts_then_ports() {
        let net = Ipv4Addr::new(10, 2, 0, 0);
        assert_eq!(flow(net, 16, 0), (Ipv4Addr::new(10, 2, 0, 1), 1024));
        assert_eq!(flow(net, 16, 65533), (Ipv4Addr::new(10, 2, 255, 254), 1024));
        assert_eq!(flow(net, 16, 65534), (Ipv4Addr::new(10, 2, 0, 1), 1025));
        assert_eq!(flow(net, 32, 5), (net, 1029));
        let c = cfg("--tx x --flows 100000");
        let p = Plan::new(&c, &[2; 6], &[4; 6]);
        let mut set: Vec<_> = p.flows.clone();
        set.sort();
        set.dedup();
        assert_eq!(set.len(), 100_000);
    }

    #[test]
    fn frames_are_valid_and_ours() {
        let c = cfg("--tx x --flows 3 --voice 25 --size 64");
        let mut p = Plan::new(&c, &[2; 6], &[4; 6]);
        let mut seen = Vec::new();
        for seq in 0..8u64 {
            let n = p.peek();
            p.advance(&n);
            let mut buf = vec![0u8; n.len];
            let sig = Signature {
                run: 3,
                class: n.class,
                warmup: false,
                seq,
                tx_tsc: 7,
            };
            p.write(&n, &sig, &mut buf);
            assert_eq!(checksum(&buf[14..34]), 0, "IPv4 header checksum verifies");
            assert_eq!(classify(&buf, 3), Received::Ours(sig));
            let dport = u16::from_be_bytes([buf[36], buf[37]]);
            seen.push((n.class, n.len, buf[15], dport, buf[33], n.flow));
        }
        // Every 4th packet is voice: 200 bytes, EF, port 5004.
        assert_eq!(seen[3], (Class::Voice, 200, TOS_EF, 5004, 1, 0));
        assert_eq!(seen[0], (Class::Bulk, 64, 0, 5001, 1, 0));
        assert_eq!(seen[1].4, 2);
        assert_eq!(seen[2].4, 3);
        assert_eq!(seen[7].0, Class::Voice);
    }

    #[test]
    fn imix_cycle() {
        let c = cfg("--tx x --size imix");
        let mut p = Plan::new(&c, &[2; 6], &[4; 6]);
        let lens: Vec<usize> = (0..24)
            .map(|_| {
                let n = p.peek();
                p.advance(&n);
                n.len
            })
            .collect();
        assert_eq!(lens[..12], IMIX);
        assert_eq!(lens[12..], IMIX);
        assert_eq!(p.templates.len(), 3);
    }
}
