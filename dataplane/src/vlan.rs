//! 802.1Q VLAN tags (IEEE 802.1Q-2018 §9): a VLAN sub-interface is a port of its own in the
//! tables (its addresses, neighbors and tenant); the worker takes the tag off on the way in
//! and puts it on on the way out, so the pipeline only ever sees untagged frames.
//!
//! ```text
//! untagged: | dst MAC (6) | src MAC (6) | EtherType (2) | payload
//! tagged:   | dst MAC (6) | src MAC (6) | 0x8100 | PCP(3) DEI(1) VID(12) | EtherType | payload
//! ```

use crate::forward::PacketBuf;

/// The Tag Protocol Identifier of a C-VLAN tag.
pub const TPID: u16 = 0x8100;
/// Length of the tag.
pub const TAG_LEN: usize = 4;

/// The VLAN ID of a tagged frame; `None` when the frame carries no 802.1Q tag (or is too
/// short to). A priority tag (VID 0) gives `Some(0)`.
#[inline]
pub fn vid(frame: &[u8]) -> Option<u16> {
    if frame.len() < 18 || frame[12..14] != TPID.to_be_bytes() {
        return None;
    }
    Some(u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff)
}

/// Removes the tag: the MAC addresses move 4 bytes up and the front 4 bytes become headroom.
/// False, and nothing changes, for a frame without a tag.
#[inline]
pub fn pop<B: PacketBuf>(pkt: &mut B) -> bool {
    if vid(pkt.data()).is_none() {
        return false;
    }
    pkt.data_mut().copy_within(0..12, TAG_LEN);
    pkt.adj(TAG_LEN)
}

/// Inserts a tag with `vid` (priority 0) after the MAC addresses, in the headroom. False, and
/// nothing changes, without 4 bytes of headroom or for a frame shorter than an Ethernet header.
#[inline]
pub fn push<B: PacketBuf>(pkt: &mut B, vid: u16) -> bool {
    if pkt.data().len() < 14 || !pkt.prepend(TAG_LEN) {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    d[12..14].copy_from_slice(&TPID.to_be_bytes());
    d[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    true
}

/// The table port a frame received on `port` belongs to: a tagged frame's VLAN (its tag
/// removed), or `port` itself for an untagged or priority-tagged one. `None`: a VLAN not
/// configured on the port (the frame must be dropped).
#[inline]
pub fn classify<B: PacketBuf>(pkt: &mut B, port: u16, map: &[(u16, u16, u16)]) -> Option<u16> {
    match vid(pkt.data()) {
        None => Some(port),
        Some(0) => {
            pop(pkt);
            Some(port)
        }
        Some(v) => {
            let (_, _, sub) = map.iter().find(|&&(p, id, _)| p == port && id == v)?;
            pop(pkt);
            Some(*sub)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::ByteBuf;

    fn frame(ethertype: u16) -> Vec<u8> {
        let mut f: Vec<u8> = (0..12).collect();
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(b"payload!");
        f
    }

    #[test]
    fn push_then_pop_is_the_identity() {
        let f = frame(0x0800);
        let mut b = ByteBuf::new(&f);
        assert!(push(&mut b, 100));
        let d = b.data();
        assert_eq!(d.len(), f.len() + 4);
        assert_eq!(&d[0..12], &f[0..12]);
        assert_eq!(&d[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&d[16..], &f[12..]);
        assert_eq!(vid(d), Some(100));
        assert!(pop(&mut b));
        assert_eq!(b.data(), &f[..]);
        assert!(!pop(&mut b), "no tag left");
    }

    #[test]
    fn classify_by_port_and_vid() {
        let map = [(0u16, 100u16, 3u16), (0, 200, 4), (1, 100, 5)];
        let tagged = |v: u16| {
            let mut b = ByteBuf::new(&frame(0x0800));
            assert!(push(&mut b, v));
            b
        };
        assert_eq!(
            classify(&mut ByteBuf::new(&frame(0x0800)), 0, &map),
            Some(0)
        );
        let mut b = tagged(200);
        assert_eq!(classify(&mut b, 0, &map), Some(4));
        assert_eq!(b.data(), &frame(0x0800)[..], "tag removed");
        assert_eq!(classify(&mut tagged(100), 1, &map), Some(5));
        assert_eq!(classify(&mut tagged(300), 0, &map), None, "not configured");
        assert_eq!(
            classify(&mut tagged(200), 1, &map),
            None,
            "VLAN of another port"
        );
        assert_eq!(classify(&mut tagged(0), 1, &map), Some(1), "priority tag");
        // Too short for a tag: untagged, whatever bytes 12..14 say.
        let mut short = ByteBuf::new(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00]);
        assert_eq!(classify(&mut short, 2, &map), Some(2));
    }
}
