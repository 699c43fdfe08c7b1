//! Forward error correction for the overlay, sans-IO: one XOR parity packet per `k` sealed ESP
//! packets of a tunnel, sent on another path, from which the receiver rebuilds one lost packet
//! of the group.
//!
//! # On the wire
//! A protected data packet is an ordinary overlay packet whose VXLAN header carries the group
//! in its reserved bits (RFC 7348 lets a receiver ignore them, so a peer without FEC still
//! opens it):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|P|D|        FEC group              | index | k - 1 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! D: a data packet of the group; P: the group's parity packet. A parity packet has the
//! overlay's headers with inner IP protocol 253 (RFC 3692, experimentation) instead of ESP, and
//! carries the SPI, the XOR of the group's ESP lengths, then the XOR of its ESP packets (each
//! padded with zeros to the longest):
//!
//! ```text
//! +---------------------------------------------------------------+
//! |                    SPI of the protected packets               |
//! +-------------------------------+---------------+---------------+
//! |     XOR of the ESP lengths    |     k - 1     |   reserved    |
//! +-------------------------------+---------------+---------------+
//! |             XOR of the group's ESP packets ...                |
//! ```
//!
//! The parity is not authenticated itself: a rebuilt packet is an ESP packet like any other
//! and is opened only if its ICV verifies and the anti-replay window accepts it (a copy that
//! arrives after all is then a replay).
//!
//! # Receiving
//! The receiver XORs each protected packet into its group's accumulator as it arrives, before
//! opening it. Once the parity is in and exactly one packet of the group is missing, the
//! accumulator holds that packet: it is rebuilt whichever of the parity and the last data
//! packet comes last.

/// VXLAN flag bits (reserved in RFC 7348).
pub const FLAG_DATA: u8 = 0x01;
pub const FLAG_PARITY: u8 = 0x02;
/// Set only on a frame the receiver rebuilt and feeds back to itself, so that its opening is
/// counted as a recovery (a peer setting it only skews that counter).
pub const FLAG_REBUILT: u8 = 0x04;
/// Inner IP protocol of a parity packet.
pub const PROTO_PARITY: u8 = 253;
/// Bytes of the parity header before the XOR.
pub const PARITY_HEADER: usize = 8;
/// The longest ESP packet FEC protects.
pub const MAX_ESP: usize = 2048;
/// Groups a receiver keeps open per SA: a parity and its data may arrive this many groups
/// apart. A faster parity path, or a receiver draining a backlog on one circuit after the
/// other, puts the parity far ahead (1,000 packets/s with k = 4 is 250 groups a second). A
/// power of two that divides 65,536, so the group numbers wrap onto the same slots. Memory:
/// each open group holds one XOR as long as its longest packet (up to 2 MiB per SA at
/// MAX_ESP; about 200 KiB for a voice stream).
const OPEN_GROUPS: usize = 1024;

/// The FEC fields of a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub parity: bool,
    pub group: u16,
    pub index: u8,
    pub k: u8,
}

/// Writes `m` into the VXLAN header `vx` (8 bytes; the I flag and VNI kept).
pub fn write_mark(vx: &mut [u8], m: Mark) {
    vx[0] = (vx[0] & !(FLAG_DATA | FLAG_PARITY)) | if m.parity { FLAG_PARITY } else { FLAG_DATA };
    vx[1..3].copy_from_slice(&m.group.to_be_bytes());
    vx[3] = ((m.index & 0x0f) << 4) | (m.k.saturating_sub(1) & 0x0f);
}

/// The FEC fields of the VXLAN header `vx`, if it has any.
pub fn read_mark(vx: &[u8]) -> Option<Mark> {
    let f = *vx.first()?;
    if f & (FLAG_DATA | FLAG_PARITY) == 0 || vx.len() < 4 {
        return None;
    }
    Some(Mark {
        parity: f & FLAG_PARITY != 0,
        group: u16::from_be_bytes([vx[1], vx[2]]),
        index: vx[3] >> 4,
        k: (vx[3] & 0x0f) + 1,
    })
}

/// Clears the FEC fields of a VXLAN header.
pub fn clear_mark(vx: &mut [u8]) {
    vx[0] &= !(FLAG_DATA | FLAG_PARITY | FLAG_REBUILT);
    vx[1..4].fill(0);
}

fn xor_into(acc: &mut [u8], data: &[u8]) {
    for (a, b) in acc.iter_mut().zip(data) {
        *a ^= b;
    }
}

/// The sending side of one tunnel in one worker: groups of `k` packets and their parity.
#[derive(Debug)]
pub struct Encoder {
    k: u8,
    group: u16,
    count: u8,
    len_xor: u16,
    max_len: usize,
    acc: Box<[u8; MAX_ESP]>,
}

impl Encoder {
    /// `k`: 2..=16 packets per parity.
    pub fn new(k: u8) -> Self {
        Self {
            k: k.clamp(2, 16),
            group: 0,
            count: 0,
            len_xor: 0,
            max_len: 0,
            acc: Box::new([0; MAX_ESP]),
        }
    }

    pub fn k(&self) -> u8 {
        self.k
    }

    /// Adds a sealed ESP packet to the current group; returns the mark to put on it, and
    /// whether the group is now complete (then [`parity`](Self::parity) is ready and the next
    /// `add` starts a new group). `None`: too long to protect (it goes unprotected).
    pub fn add(&mut self, esp: &[u8]) -> Option<(Mark, bool)> {
        if esp.len() > MAX_ESP {
            return None;
        }
        if self.count >= self.k {
            self.next_group();
        }
        xor_into(&mut self.acc[..], esp);
        self.len_xor ^= esp.len() as u16;
        self.max_len = self.max_len.max(esp.len());
        let mark = Mark {
            parity: false,
            group: self.group,
            index: self.count,
            k: self.k,
        };
        self.count += 1;
        Some((mark, self.count == self.k))
    }

    /// The completed group's parity: its mark, and the payload (header + XOR) written into
    /// `out`; returns the payload's length.
    pub fn parity(&self, spi: u32, out: &mut [u8]) -> Option<(Mark, usize)> {
        let len = PARITY_HEADER + self.max_len;
        let b = out.get_mut(..len)?;
        b[0..4].copy_from_slice(&spi.to_be_bytes());
        b[4..6].copy_from_slice(&self.len_xor.to_be_bytes());
        b[6] = self.k - 1;
        b[7] = 0;
        b[PARITY_HEADER..].copy_from_slice(&self.acc[..self.max_len]);
        let mark = Mark {
            parity: true,
            group: self.group,
            index: 0,
            k: self.k,
        };
        Some((mark, len))
    }

    fn next_group(&mut self) {
        self.acc[..self.max_len].fill(0);
        self.group = self.group.wrapping_add(1);
        self.count = 0;
        self.len_xor = 0;
        self.max_len = 0;
    }
}

/// A parity payload, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParityHeader {
    pub spi: u32,
    pub len_xor: u16,
    pub k: u8,
}

/// Reads a parity payload's header; `None` if too short or longer than [`MAX_ESP`] of XOR.
pub fn read_parity(b: &[u8]) -> Option<ParityHeader> {
    if b.len() < PARITY_HEADER || b.len() - PARITY_HEADER > MAX_ESP {
        return None;
    }
    Some(ParityHeader {
        spi: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        len_xor: u16::from_be_bytes([b[4], b[5]]),
        k: b[6].saturating_add(1),
    })
}

/// One group being received. `k == 0`: the slot is free.
#[derive(Debug, Default)]
struct Group {
    id: u16,
    k: u8,
    received: u16,
    parity: bool,
    done: bool,
    len_xor: u16,
    /// The XOR so far, as long as the longest packet of the group (it keeps its capacity
    /// when the slot is reused, so a steady stream allocates nothing).
    acc: Vec<u8>,
}

impl Group {
    fn xor(&mut self, data: &[u8]) {
        if self.acc.len() < data.len() {
            self.acc.resize(data.len(), 0);
        }
        xor_into(&mut self.acc, data);
    }
}

/// The receiving side of one inbound SA: the open groups, direct-mapped by group number
/// (group `g` in slot `g % OPEN_GROUPS`), so that a parity and its data may arrive up to
/// OPEN_GROUPS groups apart, in either order, at one slot lookup per packet.
#[derive(Debug, Default)]
pub struct Decoder {
    groups: Vec<Group>,
    /// Packets rebuilt (when the parity comes before the group's last packet, that packet
    /// is rebuilt before it arrives, and then it comes: [`Outcome::Late`]), and groups given
    /// up with more than one packet missing (counted when their slot is taken by a newer
    /// group).
    pub rebuilt: u64,
    pub unrecoverable: u64,
}

/// What the decoder did with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Nothing to rebuild (yet, or any more).
    Nothing,
    /// The missing packet of the group, rebuilt.
    Rebuilt(&'a [u8]),
    /// The packet that was rebuilt came after all: it was late, not lost (the parity overtook
    /// it). The anti-replay window drops it; a recovery count subtracts it.
    Late,
}

impl Decoder {
    /// The slot of group `id` of `k` packets: its own, or a fresh one in place of an older
    /// group. `None` for a packet of a group older than the slot's (more than OPEN_GROUPS
    /// late: it is opened without FEC).
    fn group(&mut self, id: u16, k: u8) -> Option<&mut Group> {
        if self.groups.is_empty() {
            self.groups.resize_with(OPEN_GROUPS, Group::default);
        }
        let g = &mut self.groups[usize::from(id) % OPEN_GROUPS];
        if g.k == k && g.id == id {
            return Some(g);
        }
        // A newer group holds the slot (a different k means the sender started over: it wins).
        if g.k == k && (g.id.wrapping_sub(id) as i16) > 0 {
            return None;
        }
        if g.k != 0 && !g.done && g.parity && (g.received.count_ones() as u8) < g.k - 1 {
            self.unrecoverable += 1;
        }
        g.id = id;
        g.k = k;
        g.received = 0;
        g.parity = false;
        g.done = false;
        g.len_xor = 0;
        g.acc.clear();
        Some(g)
    }

    fn try_rebuild(&mut self, id: u16) -> Outcome<'_> {
        let g = &mut self.groups[usize::from(id) % OPEN_GROUPS];
        if g.done || !g.parity || g.received.count_ones() as u8 != g.k - 1 {
            return Outcome::Nothing;
        }
        g.done = true;
        let len = usize::from(g.len_xor);
        if len == 0 || len > MAX_ESP || len > g.acc.len() {
            return Outcome::Nothing;
        }
        self.rebuilt += 1;
        Outcome::Rebuilt(&g.acc[..len])
    }

    /// A protected data packet (`esp`, before it is opened) of the group `m` arrived.
    pub fn on_data(&mut self, m: Mark, esp: &[u8]) -> Outcome<'_> {
        if m.parity || m.index >= m.k || esp.len() > MAX_ESP {
            return Outcome::Nothing;
        }
        let Some(g) = self.group(m.group, m.k) else {
            return Outcome::Nothing;
        };
        let bit = 1u16 << m.index;
        if g.received & bit != 0 {
            return Outcome::Nothing; // a duplicate
        }
        if g.done {
            // The group was rebuilt: this is the packet that was missing, late.
            g.received |= bit;
            return Outcome::Late;
        }
        g.received |= bit;
        g.xor(esp);
        g.len_xor ^= esp.len() as u16;
        self.try_rebuild(m.group)
    }

    /// The parity payload `payload` (header and XOR) of group `m` arrived.
    pub fn on_parity(&mut self, m: Mark, payload: &[u8]) -> Outcome<'_> {
        let Some(h) = read_parity(payload) else {
            return Outcome::Nothing;
        };
        if !m.parity || h.k != m.k {
            return Outcome::Nothing;
        }
        let Some(g) = self.group(m.group, m.k) else {
            return Outcome::Nothing;
        };
        if g.parity || g.done {
            return Outcome::Nothing;
        }
        g.parity = true;
        g.xor(&payload[PARITY_HEADER..]);
        g.len_xor ^= h.len_xor;
        self.try_rebuild(m.group)
    }
}

/// Sets the lengths and checksums of an overlay frame (outer IPv4 with a zero UDP checksum,
/// inner IPv4 or IPv6) whose inner IP payload is now `payload_len` bytes of protocol `proto`;
/// `vxlan_off`: where its VXLAN header starts. Returns the frame's new length, or `None` for
/// another kind of frame (which FEC leaves alone).
pub fn fix_overlay(d: &mut [u8], vxlan_off: usize, payload_len: usize, proto: u8) -> Option<usize> {
    use crate::wire::{checksum, ethernet, ipv4, ipv6};
    let outer = ethernet::HEADER_LEN;
    let udp = vxlan_off.checked_sub(8)?;
    let inner_eth = vxlan_off + 8;
    let inner = inner_eth + ethernet::HEADER_LEN;
    if d.len() < inner + ipv6::HEADER_LEN.min(ipv4::MIN_HEADER_LEN)
        || d[12..14] != [0x08, 0x00]
        || d[udp + 6..udp + 8] != [0, 0]
    {
        return None;
    }
    let end = match u16::from_be_bytes([d[inner_eth + 12], d[inner_eth + 13]]) {
        ethernet::ETHERTYPE_IPV4 => {
            let ihl = usize::from(d[inner] & 0x0f) * 4;
            let end = inner + ihl + payload_len;
            if ihl < ipv4::MIN_HEADER_LEN || end > d.len() || ihl + payload_len > 0xffff {
                return None;
            }
            d[inner + 2..inner + 4].copy_from_slice(&((ihl + payload_len) as u16).to_be_bytes());
            d[inner + 9] = proto;
            d[inner + 10..inner + 12].fill(0);
            let c = checksum::checksum(&d[inner..inner + ihl]);
            d[inner + 10..inner + 12].copy_from_slice(&c.to_be_bytes());
            end
        }
        ethernet::ETHERTYPE_IPV6 => {
            let end = inner + ipv6::HEADER_LEN + payload_len;
            if end > d.len() || payload_len > 0xffff {
                return None;
            }
            d[inner + 4..inner + 6].copy_from_slice(&(payload_len as u16).to_be_bytes());
            d[inner + 6] = proto;
            end
        }
        _ => return None,
    };
    let udp_len = end - udp;
    let outer_len = end - outer;
    if outer_len > 0xffff {
        return None;
    }
    d[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let ohl = usize::from(d[outer] & 0x0f) * 4;
    if ohl < ipv4::MIN_HEADER_LEN || outer + ohl > udp {
        return None;
    }
    d[outer + 2..outer + 4].copy_from_slice(&(outer_len as u16).to_be_bytes());
    d[outer + 10..outer + 12].fill(0);
    let c = checksum::checksum(&d[outer..outer + ohl]);
    d[outer + 10..outer + 12].copy_from_slice(&c.to_be_bytes());
    Some(end)
}

/// Builds the parity frame of `enc`'s completed group into `out`: the headers of `frame` (a
/// sealed data packet of the group, its payload at `payload_off`, VXLAN at `vxlan_off`), then
/// the parity payload. Returns its length.
pub fn parity_frame(
    frame: &[u8],
    payload_off: usize,
    vxlan_off: usize,
    spi: u32,
    enc: &Encoder,
    out: &mut [u8],
) -> Option<usize> {
    let head = frame.get(..payload_off)?;
    out.get_mut(..payload_off)?.copy_from_slice(head);
    let (mark, plen) = enc.parity(spi, out.get_mut(payload_off..)?)?;
    write_mark(out.get_mut(vxlan_off..vxlan_off + 8)?, mark);
    fix_overlay(out, vxlan_off, plen, PROTO_PARITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn packets(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let len = 40 + rng.below(1400) as usize;
                rng.bytes(len)
            })
            .collect()
    }

    /// Encodes `pkts` (a multiple of k) and returns (mark, bytes) of each data packet and each
    /// group's parity, in sending order.
    fn encode(k: u8, pkts: &[Vec<u8>]) -> Vec<(Mark, Vec<u8>)> {
        let mut e = Encoder::new(k);
        let mut out = Vec::new();
        for p in pkts {
            let (m, complete) = e.add(p).unwrap();
            out.push((m, p.clone()));
            if complete {
                let mut buf = vec![0u8; PARITY_HEADER + MAX_ESP];
                let (pm, len) = e.parity(0x1234, &mut buf).unwrap();
                buf.truncate(len);
                out.push((pm, buf));
            }
        }
        out
    }

    #[test]
    fn marks_round_trip_through_a_vxlan_header() {
        let mut vx = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];
        assert_eq!(read_mark(&vx), None);
        let m = Mark {
            parity: false,
            group: 0xbeef,
            index: 3,
            k: 16,
        };
        write_mark(&mut vx, m);
        assert_eq!(read_mark(&vx), Some(m));
        assert_eq!(vx[0] & 0x08, 0x08, "I flag kept");
        assert_eq!(&vx[4..], &[0x12, 0x34, 0x56, 0], "VNI kept");
        clear_mark(&mut vx);
        assert_eq!(vx, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    }

    #[test]
    fn any_single_loss_in_a_group_is_rebuilt_whatever_the_order() {
        let mut rng = Rng(11);
        for k in [2u8, 4, 7, 16] {
            let pkts = packets(&mut rng, usize::from(k) * 3);
            let sent = encode(k, &pkts);
            for lost in 0..pkts.len() {
                // Deliver everything but `lost`, the parity of each group first or last.
                for parity_first in [false, true] {
                    let mut d = Decoder::default();
                    let mut rebuilt = Vec::new();
                    let mut late = 0;
                    let mut order: Vec<&(Mark, Vec<u8>)> = sent.iter().collect();
                    if parity_first {
                        order.sort_by_key(|(m, _)| (m.group, !m.parity));
                    }
                    for (m, b) in order {
                        if !m.parity
                            && m.group as usize * usize::from(k) + usize::from(m.index) == lost
                        {
                            continue;
                        }
                        let out = if m.parity {
                            d.on_parity(*m, b)
                        } else {
                            d.on_data(*m, b)
                        };
                        match out {
                            Outcome::Rebuilt(r) => rebuilt.push(r.to_vec()),
                            Outcome::Late => late += 1,
                            Outcome::Nothing => {}
                        }
                    }
                    // The lost packet is rebuilt. With the parity first, the last packet of
                    // each intact group is "rebuilt" too before it arrives: the same bytes,
                    // which the anti-replay window then keeps from being delivered twice.
                    assert!(
                        rebuilt.contains(&pkts[lost]),
                        "k {k} lost {lost} parity first {parity_first}"
                    );
                    assert!(
                        rebuilt.iter().all(|r| pkts.contains(r)),
                        "only real packets"
                    );
                    assert_eq!(
                        rebuilt.len() - late,
                        1,
                        "rebuilt less late: the one real loss"
                    );
                }
            }
        }
    }

    #[test]
    fn two_losses_in_a_group_rebuild_nothing_and_nothing_is_rebuilt_twice() {
        let mut rng = Rng(5);
        let pkts = packets(&mut rng, 8);
        let sent = encode(4, &pkts);
        let mut d = Decoder::default();
        for (m, b) in &sent {
            if !m.parity && m.group == 0 && m.index < 2 {
                continue; // two of group 0 lost
            }
            let out = if m.parity {
                d.on_parity(*m, b)
            } else {
                d.on_data(*m, b)
            };
            assert_eq!(out, Outcome::Nothing);
        }
        assert_eq!(d.rebuilt, 0);
        // Nothing lost: the late duplicate of a packet changes nothing either.
        let mut d = Decoder::default();
        for (m, b) in &sent {
            let out = if m.parity {
                d.on_parity(*m, b)
            } else {
                d.on_data(*m, b)
            };
            assert_eq!(out, Outcome::Nothing);
        }
        assert_eq!(d.on_data(sent[0].0, &sent[0].1), Outcome::Nothing);
    }

    /// Feeds one packet (data or parity) to the decoder; the rebuilt bytes, if any.
    fn feed(d: &mut Decoder, m: Mark, b: &[u8]) -> Option<Vec<u8>> {
        let out = if m.parity {
            d.on_parity(m, b)
        } else {
            d.on_data(m, b)
        };
        match out {
            Outcome::Rebuilt(r) => Some(r.to_vec()),
            _ => None,
        }
    }

    #[test]
    fn parities_far_ahead_of_their_data_still_rebuild() {
        // 600 groups' parities first (a faster parity path, or a receiver that drained one
        // circuit's backlog before the other's), then the data, one packet of each group
        // lost: every loss is rebuilt. Slots for 64 groups lost all but the last 64.
        let mut rng = Rng(21);
        let pkts = packets(&mut rng, 4 * 600);
        let sent = encode(4, &pkts);
        let mut d = Decoder::default();
        for (m, b) in sent.iter().filter(|(m, _)| m.parity) {
            assert_eq!(feed(&mut d, *m, b), None);
        }
        let mut rebuilt = 0;
        for (m, b) in sent.iter().filter(|(m, _)| !m.parity) {
            if usize::from(m.index) == usize::from(m.group) % 4 {
                continue; // lost
            }
            if let Some(r) = feed(&mut d, *m, b) {
                let lost = usize::from(m.group) * 4 + usize::from(m.group) % 4;
                assert_eq!(r, pkts[lost], "group {}", m.group);
                rebuilt += 1;
            }
        }
        assert_eq!(rebuilt, 600);
    }

    #[test]
    fn a_packet_a_whole_window_late_leaves_the_newer_group_alone() {
        let mut rng = Rng(8);
        let pkts = packets(&mut rng, 4 * (OPEN_GROUPS + 2));
        let sent = encode(4, &pkts);
        let of = |g: usize| sent.iter().filter(move |(m, _)| usize::from(m.group) == g);
        let mut d = Decoder::default();
        // Group OPEN_GROUPS + 1 (slot 1): its parity and two of its packets.
        let newer: Vec<_> = of(OPEN_GROUPS + 1).collect();
        for (m, b) in newer.iter().filter(|(m, _)| m.parity || m.index < 2) {
            assert_eq!(feed(&mut d, *m, b), None);
        }
        // Group 1 (slot 1 too) comes now, a whole window late: ignored.
        for (m, b) in of(1) {
            assert_eq!(feed(&mut d, *m, b), None, "group 1 {m:?}");
        }
        // The newer group is intact: its third packet rebuilds the fourth.
        let (m, b) = newer
            .iter()
            .find(|(m, _)| !m.parity && m.index == 2)
            .unwrap();
        assert_eq!(
            feed(&mut d, *m, b),
            Some(pkts[(OPEN_GROUPS + 1) * 4 + 3].clone())
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(3);
        let mut d = Decoder::default();
        for _ in 0..3000 {
            let len = rng.below(2200) as usize;
            let b = rng.bytes(len);
            let m = Mark {
                parity: rng.below(2) == 0,
                group: rng.below(8) as u16,
                index: rng.below(16) as u8,
                k: 1 + rng.below(16) as u8,
            };
            let _ = if m.parity {
                d.on_parity(m, &b)
            } else {
                d.on_data(m, &b)
            };
        }
        assert!(read_parity(&[0; 7]).is_none());
    }
}
