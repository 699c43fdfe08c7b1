//! Security associations: an outbound SA seals inner IP packets into ESP (tunnel mode), an
//! inbound SA opens them. Both work in place on a [`PacketBuf`] the caller owns and have a
//! batch call that hands the whole batch to the AEAD backend at once.
//!
//! Owning rule (ARCHITECTURE.md): an outbound SA belongs to one worker, so its sequence
//! counter is a plain integer; an inbound SA is processed by one worker at a time. The
//! counters are plain fields for the same reason: the owning worker is the only writer, and
//! publishes them to the control thread.
//!
//! Outbound, in place (headroom for the header and IV, tailroom for the trailer and ICV):
//! ```text
//!   before:                  | inner IP packet |
//!   after:  | SPI | seq | IV | inner IP packet | pad | pad len | nh | ICV |
//!                             \______________ encrypted ______________/
//! ```
//! The explicit IV is the 64-bit sequence number (unique per SA, as RFC 4106 §3.1 suggests),
//! so an SA never reuses a nonce as long as it never reuses a sequence number, and it never
//! does: at 2^32 - 1 (2^64 - 1 with ESN) `seal` refuses with `SequenceExhausted` until the SA
//! is replaced.
//!
//! Inbound: length and SPI checks → replay pre-check (no state change) → ICV verification and
//! decryption → replay window update (only now, after the ICV verified) → trailer check →
//! the inner packet. On success the buffer is cut after the inner packet (trailer and ICV
//! gone) and [`Opened::inner`] says where it starts (after the ESP header and IV): removing
//! the bytes in front of it is the caller's (`PacketBuf::adj`, `rte_pktmbuf_adj` for an mbuf).

use std::ops::Range;

use super::crypto::{AeadJob, AeadKey, Backend, Suite, IV_LEN, MAX_ESP_AAD_LEN, TAG_LEN};
use super::replay::ReplayWindow;
use super::wire::{self, PAYLOAD_OFFSET, TRAILER_LEN};
use super::EspError;
use crate::forward::PacketBuf;

/// Packets handed to the AEAD backend per call by the batch functions (a burst is cut into
/// chunks of this size; the per-chunk state lives on the stack).
pub const BATCH: usize = 32;

/// Per-SA counters, written only by the owning worker. Bytes count the inner packets (what
/// was sealed, what was delivered).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SaCounters {
    pub packets: u64,
    pub bytes: u64,
    pub replay: u64,
    pub replay_window: u64,
    pub auth_failed: u64,
    pub malformed: u64,
    pub dummy: u64,
    pub bad_next_header: u64,
    pub no_room: u64,
    pub seq_exhausted: u64,
}

impl SaCounters {
    /// Counts a drop. `UnknownSpi` is not the SA's (the caller found no SA, or the wrong one)
    /// and is not counted here.
    #[inline]
    pub fn count_drop(&mut self, e: EspError) {
        let c = match e {
            EspError::Replay => &mut self.replay,
            EspError::ReplayWindow => &mut self.replay_window,
            EspError::AuthFailed => &mut self.auth_failed,
            EspError::Malformed => &mut self.malformed,
            EspError::Dummy => &mut self.dummy,
            EspError::BadNextHeader => &mut self.bad_next_header,
            EspError::NoRoom => &mut self.no_room,
            EspError::SequenceExhausted => &mut self.seq_exhausted,
            EspError::UnknownSpi => return,
        };
        *c += 1;
    }

    /// All drops counted here.
    pub fn drops(&self) -> u64 {
        self.replay
            + self.replay_window
            + self.auth_failed
            + self.malformed
            + self.dummy
            + self.bad_next_header
            + self.no_room
            + self.seq_exhausted
    }
}

/// The AAD with ESN: SPI || seq high || seq low (RFC 4106 §5). Without ESN the AAD is the
/// packet's own first 8 bytes.
#[inline]
fn esn_aad(spi: u32, seq: u64) -> [u8; MAX_ESP_AAD_LEN] {
    let mut a = [0u8; MAX_ESP_AAD_LEN];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    a[4..].copy_from_slice(&seq.to_be_bytes());
    a
}

/// The next header for an inner packet in tunnel mode, from its IP version.
#[inline]
pub fn inner_next_header(inner: &[u8]) -> Result<u8, EspError> {
    match inner.first().map(|b| b >> 4) {
        Some(4) => Ok(wire::NEXT_HEADER_IPV4),
        Some(6) => Ok(wire::NEXT_HEADER_IPV6),
        _ => Err(EspError::Malformed),
    }
}

/// Lays out an ESP packet around the payload in `pkt`, in place: SPI, the low 32 bits of
/// `seq` and `iv` in the headroom; padding, pad length, `next_header` and room for the ICV in
/// the tailroom. The payload is still clear afterwards: `seal_framed` encrypts it. On error
/// the buffer is as it was.
pub fn frame<P: PacketBuf + ?Sized>(
    pkt: &mut P,
    spi: u32,
    seq: u64,
    iv: &[u8; IV_LEN],
    next_header: u8,
) -> Result<(), EspError> {
    let inner = pkt.data().len();
    let pad = wire::pad_len(inner);
    let tail = inner + pad + TRAILER_LEN + TAG_LEN;
    if !pkt.set_len(tail) {
        return Err(EspError::NoRoom);
    }
    if !pkt.prepend(PAYLOAD_OFFSET) {
        pkt.set_len(inner);
        return Err(EspError::NoRoom);
    }
    let d = pkt.data_mut();
    if d.len() != PAYLOAD_OFFSET + tail {
        return Err(EspError::NoRoom); // a PacketBuf that broke its contract
    }
    wire::write_header(d, spi, seq as u32, iv);
    wire::write_trailer(&mut d[PAYLOAD_OFFSET + inner..], pad as u8, next_header);
    Ok(())
}

/// Encrypts a packet laid out by `frame` (the whole ESP packet in `esp`) and writes its ICV.
/// False if `esp` is too short to be one (or the AEAD refused, which it does not for sizes a
/// buffer can hold).
#[inline]
pub fn seal_framed(key: &AeadKey, seq: u64, esn: bool, esp: &mut [u8]) -> bool {
    let p = wire::split_mut(esp);
    if p.header.is_empty() {
        return false;
    }
    let esn_aad_buf;
    let aad: &[u8] = if esn {
        let spi = u32::from_be_bytes([p.header[0], p.header[1], p.header[2], p.header[3]]);
        esn_aad_buf = esn_aad(spi, seq);
        &esn_aad_buf
    } else {
        p.header
    };
    key.seal(&p.iv, aad, p.text, p.icv)
}

/// Low-level tunnel-mode encapsulation with an explicit IV: `frame` then `seal_framed`. The
/// caller guarantees that (key, IV) is never used twice; `OutboundSa::seal` does (IV = the
/// sequence number). For test vectors whose IV is not the sequence number.
pub fn encapsulate<P: PacketBuf + ?Sized>(
    key: &AeadKey,
    spi: u32,
    seq: u64,
    esn: bool,
    iv: &[u8; IV_LEN],
    next_header: u8,
    pkt: &mut P,
) -> Result<(), EspError> {
    frame(pkt, spi, seq, iv, next_header)?;
    if !seal_framed(key, seq, esn, pkt.data_mut()) {
        return Err(EspError::Malformed);
    }
    Ok(())
}

/// The sending side of an SA.
#[derive(Debug)]
pub struct OutboundSa {
    spi: u32,
    esn: bool,
    /// The last sequence number used (0: none yet; the first packet gets 1).
    seq: u64,
    /// OR-ed into the explicit IV: the sender's index in the top 8 bits (see `with_sender`).
    iv_high: u64,
    key: AeadKey,
    pub counters: SaCounters,
}

/// With `with_sender`, sequence numbers stay below this so the sender bits of the IV are
/// never touched.
const SENDER_SEQ_LIMIT: u64 = (1 << 56) - 1;

impl OutboundSa {
    pub fn new(spi: u32, esn: bool, key: AeadKey) -> Self {
        Self {
            spi,
            esn,
            seq: 0,
            iv_high: 0,
            key,
            counters: SaCounters::default(),
        }
    }

    /// One of several senders of one SA that share its key, each with its own SPI and
    /// sequence numbers (one SPI per sending worker, the idea of RFC 9611): sender `index`
    /// puts its index in the top 8 bits of the explicit IV, so no two senders ever use the
    /// same nonce with the key (RFC 4106 §3.1 asks only that the IV be unique per key; the
    /// receiver takes the IV from the packet). Sequence numbers then stop at 2^56 - 1.
    pub fn with_sender(mut self, index: u8) -> Self {
        self.iv_high = u64::from(index) << 56;
        self
    }

    #[inline]
    pub fn spi(&self) -> u32 {
        self.spi
    }

    #[inline]
    pub fn esn(&self) -> bool {
        self.esn
    }

    pub fn suite(&self) -> Suite {
        self.key.suite()
    }

    pub fn backend(&self) -> Backend {
        self.key.backend()
    }

    /// The last sequence number used (0 before the first packet).
    #[inline]
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// The highest sequence number this SA may use.
    #[inline]
    pub fn max_seq(&self) -> u64 {
        if self.esn {
            if self.iv_high != 0 {
                SENDER_SEQ_LIMIT
            } else {
                u64::MAX
            }
        } else {
            u64::from(u32::MAX)
        }
    }

    /// Packets this SA can still seal; the key manager rekeys well before this reaches 0.
    #[inline]
    pub fn remaining(&self) -> u64 {
        self.max_seq() - self.seq
    }

    /// Moves the counter forward so that the next packet gets `last + 1` (never backward:
    /// false, and nothing changes, when `last` is not ahead of the counter or past the
    /// maximum). For tests of exhaustion and for an SA that resumes a known counter.
    pub fn advance_seq_to(&mut self, last: u64) -> bool {
        if last <= self.seq || last > self.max_seq() {
            return false;
        }
        self.seq = last;
        true
    }

    #[inline]
    fn peek_next(&self) -> Result<u64, EspError> {
        if self.seq >= self.max_seq() {
            return Err(EspError::SequenceExhausted);
        }
        Ok(self.seq + 1)
    }

    /// Frames the inner packet with the next sequence number (consumed only on success).
    #[inline]
    fn prepare<P: PacketBuf + ?Sized>(&mut self, pkt: &mut P) -> Result<u64, EspError> {
        let nh = inner_next_header(pkt.data())?;
        let seq = self.peek_next()?;
        frame(pkt, self.spi, seq, &(self.iv_high | seq).to_be_bytes(), nh)?;
        self.seq = seq;
        Ok(seq)
    }

    /// Seals the inner IP packet in `pkt` into an ESP packet in place; returns the sequence
    /// number it got. On error the buffer is unchanged (except after an AEAD failure, which
    /// does not happen for a buffer's sizes: then the packet must be dropped).
    pub fn seal<P: PacketBuf + ?Sized>(&mut self, pkt: &mut P) -> Result<u64, EspError> {
        let inner = pkt.data().len() as u64;
        let r = self.prepare(pkt).and_then(|seq| {
            if seal_framed(&self.key, seq, self.esn, pkt.data_mut()) {
                Ok(seq)
            } else {
                Err(EspError::Malformed)
            }
        });
        match r {
            Ok(_) => {
                self.counters.packets += 1;
                self.counters.bytes += inner;
            }
            Err(e) => self.counters.count_drop(e),
        }
        r
    }

    /// Seals `pkts` (inner IP packets) in place, the AEAD running once per chunk of `BATCH`;
    /// `results[i]` is the outcome for `pkts[i]`. Only the first `min(pkts.len(),
    /// results.len())` packets are processed.
    pub fn seal_batch<P: PacketBuf>(
        &mut self,
        pkts: &mut [P],
        results: &mut [Result<u64, EspError>],
    ) {
        let n = pkts.len().min(results.len());
        for (p, r) in pkts[..n]
            .chunks_mut(BATCH)
            .zip(results[..n].chunks_mut(BATCH))
        {
            self.seal_chunk(p, r);
        }
    }

    /// Seals up to `BATCH` packets taken from `pkts` (distinct buffers, e.g. a selection of a
    /// burst), the AEAD running once for all of them; `results[k]` is the outcome for the
    /// `k`-th packet taken. Returns how many were taken (fewer than `BATCH` only when the
    /// iterator ran out). The worker calls it with the packets of one SA from a burst.
    pub fn seal_from<'a, P: PacketBuf + 'a>(
        &mut self,
        pkts: &mut impl Iterator<Item = &'a mut P>,
        results: &mut [Result<u64, EspError>; BATCH],
    ) -> usize {
        let mut inner_len = [0u64; BATCH];
        let mut aads = [[0u8; MAX_ESP_AAD_LEN]; BATCH];
        let mut aad_slots = aads.iter_mut();
        let mut jobs: [AeadJob<'_>; BATCH] = Default::default();
        let mut which = [0usize; BATCH];
        let (mut taken, mut n) = (0, 0);
        for (k, p) in pkts.take(BATCH).enumerate() {
            taken += 1;
            let Some(slot) = aad_slots.next() else { break };
            inner_len[k] = p.data().len() as u64;
            results[k] = self.prepare(p);
            let seq = match results[k] {
                Ok(seq) => seq,
                Err(e) => {
                    self.counters.count_drop(e);
                    continue;
                }
            };
            let parts = wire::split_mut(p.data_mut());
            let aad: &[u8] = if self.esn {
                *slot = esn_aad(self.spi, seq);
                &slot[..]
            } else {
                parts.header
            };
            jobs[n] = AeadJob {
                iv: parts.iv,
                aad,
                text: parts.text,
                tag: parts.icv,
                ok: false,
            };
            which[n] = k;
            n += 1;
        }
        self.key.seal_batch(&mut jobs[..n]);
        for (j, &k) in jobs[..n].iter().zip(&which[..n]) {
            if j.ok {
                self.counters.packets += 1;
                self.counters.bytes += inner_len[k];
            } else {
                results[k] = Err(EspError::Malformed);
                self.counters.count_drop(EspError::Malformed);
            }
        }
        taken
    }

    fn seal_chunk<P: PacketBuf>(&mut self, pkts: &mut [P], results: &mut [Result<u64, EspError>]) {
        let mut inner_len = [0u64; BATCH];
        let mut aads = [[0u8; MAX_ESP_AAD_LEN]; BATCH];
        for (i, (p, r)) in pkts.iter_mut().zip(results.iter_mut()).enumerate() {
            inner_len[i] = p.data().len() as u64;
            *r = self.prepare(p);
            match *r {
                Ok(seq) => aads[i] = esn_aad(self.spi, seq),
                Err(e) => self.counters.count_drop(e),
            }
        }
        let mut jobs: [AeadJob<'_>; BATCH] = Default::default();
        let mut which = [0usize; BATCH];
        let mut n = 0;
        for (i, (p, r)) in pkts.iter_mut().zip(results.iter()).enumerate() {
            if r.is_err() {
                continue;
            }
            let parts = wire::split_mut(p.data_mut());
            jobs[n] = AeadJob {
                iv: parts.iv,
                aad: if self.esn { &aads[i] } else { parts.header },
                text: parts.text,
                tag: parts.icv,
                ok: false,
            };
            which[n] = i;
            n += 1;
        }
        self.key.seal_batch(&mut jobs[..n]);
        for (j, &i) in jobs[..n].iter().zip(&which[..n]) {
            if j.ok {
                self.counters.packets += 1;
                self.counters.bytes += inner_len[i];
            } else {
                results[i] = Err(EspError::Malformed);
                self.counters.count_drop(EspError::Malformed);
            }
        }
    }
}

/// What `InboundSa::open` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// 4 (IPv4) or 41 (IPv6).
    pub next_header: u8,
    /// The full (64-bit) sequence number.
    pub seq: u64,
    /// Where the inner packet lies in the buffer's data (it ends at the data's end).
    pub inner: Range<usize>,
}

/// The receiving side of an SA.
#[derive(Debug)]
pub struct InboundSa {
    spi: u32,
    /// Shared by the SPIs of one overlay SA (one per sending worker of the peer): one key
    /// schedule, not sixteen.
    key: std::sync::Arc<AeadKey>,
    window: ReplayWindow,
    pub counters: SaCounters,
}

impl InboundSa {
    /// `window` carries the ESN setting and the window size.
    pub fn new(spi: u32, key: impl Into<std::sync::Arc<AeadKey>>, window: ReplayWindow) -> Self {
        Self {
            spi,
            key: key.into(),
            window,
            counters: SaCounters::default(),
        }
    }

    #[inline]
    pub fn spi(&self) -> u32 {
        self.spi
    }

    #[inline]
    pub fn esn(&self) -> bool {
        self.window.esn()
    }

    pub fn suite(&self) -> Suite {
        self.key.suite()
    }

    pub fn backend(&self) -> Backend {
        self.key.backend()
    }

    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// Length, SPI and replay pre-check of the ESP packet in `esp`: its full sequence number.
    #[inline]
    fn precheck(&self, esp: &[u8]) -> Result<u64, EspError> {
        let p = wire::Packet::new_checked(esp).map_err(|_| EspError::Malformed)?;
        if p.spi() != self.spi {
            return Err(EspError::UnknownSpi);
        }
        Ok(self.window.check(p.seq_low())?)
    }

    /// After the ICV verified: window update, trailer, and the cut after the inner packet.
    #[inline]
    fn finish<P: PacketBuf + ?Sized>(&mut self, pkt: &mut P, seq: u64) -> Result<Opened, EspError> {
        self.window.update(seq)?;
        let d = pkt.data();
        let text = d
            .get(PAYLOAD_OFFSET..d.len().saturating_sub(TAG_LEN))
            .ok_or(EspError::Malformed)?;
        let t = wire::parse_trailer(text).map_err(|_| EspError::Malformed)?;
        match t.next_header {
            wire::NEXT_HEADER_IPV4 | wire::NEXT_HEADER_IPV6 => {}
            wire::NEXT_HEADER_NONE => return Err(EspError::Dummy),
            _ => return Err(EspError::BadNextHeader),
        }
        let end = PAYLOAD_OFFSET + t.payload_len;
        if !pkt.set_len(end) {
            return Err(EspError::Malformed);
        }
        self.counters.packets += 1;
        self.counters.bytes += t.payload_len as u64;
        Ok(Opened {
            next_header: t.next_header,
            seq,
            inner: PAYLOAD_OFFSET..end,
        })
    }

    /// Opens the ESP packet in `pkt` (its data is exactly the ESP packet, SPI first, ICV
    /// last) in place. On success the data ends with the inner packet, at `Opened::inner`.
    /// On error the packet must be dropped (after an ICV failure its payload is garbage).
    pub fn open<P: PacketBuf + ?Sized>(&mut self, pkt: &mut P) -> Result<Opened, EspError> {
        let r = self.open_one(pkt);
        if let Err(e) = r {
            self.counters.count_drop(e);
        }
        r
    }

    fn open_one<P: PacketBuf + ?Sized>(&mut self, pkt: &mut P) -> Result<Opened, EspError> {
        let seq = self.precheck(pkt.data())?;
        let p = wire::split_mut(pkt.data_mut());
        let esn_aad_buf;
        let aad: &[u8] = if self.window.esn() {
            esn_aad_buf = esn_aad(self.spi, seq);
            &esn_aad_buf
        } else {
            p.header
        };
        if !self.key.open(&p.iv, aad, p.text, p.icv) {
            return Err(self.icv_failure(seq));
        }
        self.finish(pkt, seq)
    }

    /// What an ICV failure of a packet read as number `seq` counts as: too old when ESN
    /// placed it past the window's 2^32 subspace (see
    /// [`ReplayWindow::read_as_next_subspace`]), else an authentication failure.
    #[inline]
    fn icv_failure(&self, seq: u64) -> EspError {
        if self.window.read_as_next_subspace(seq) {
            EspError::ReplayWindow
        } else {
            EspError::AuthFailed
        }
    }

    /// Opens `pkts` in place, the AEAD running once per chunk of `BATCH`; `results[i]` is the
    /// outcome for `pkts[i]`. Only the first `min(pkts.len(), results.len())` packets are
    /// processed. A sequence number twice in one batch is delivered once.
    pub fn open_batch<P: PacketBuf>(
        &mut self,
        pkts: &mut [P],
        results: &mut [Result<Opened, EspError>],
    ) {
        let n = pkts.len().min(results.len());
        for (p, r) in pkts[..n]
            .chunks_mut(BATCH)
            .zip(results[..n].chunks_mut(BATCH))
        {
            self.open_chunk(p, r);
        }
    }

    fn open_chunk<P: PacketBuf>(
        &mut self,
        pkts: &mut [P],
        results: &mut [Result<Opened, EspError>],
    ) {
        let mut seqs = [0u64; BATCH];
        let mut aads = [[0u8; MAX_ESP_AAD_LEN]; BATCH];
        let mut pending = [false; BATCH];
        for (i, (p, r)) in pkts.iter().zip(results.iter_mut()).enumerate() {
            match self.precheck(p.data()) {
                Ok(seq) => {
                    seqs[i] = seq;
                    aads[i] = esn_aad(self.spi, seq);
                    pending[i] = true;
                }
                Err(e) => *r = Err(e),
            }
        }
        {
            let esn = self.window.esn();
            let mut jobs: [AeadJob<'_>; BATCH] = Default::default();
            let mut which = [0usize; BATCH];
            let mut n = 0;
            for (i, p) in pkts.iter_mut().enumerate() {
                if !pending[i] {
                    continue;
                }
                let parts = wire::split_mut(p.data_mut());
                jobs[n] = AeadJob {
                    iv: parts.iv,
                    aad: if esn { &aads[i] } else { parts.header },
                    text: parts.text,
                    tag: parts.icv,
                    ok: false,
                };
                which[n] = i;
                n += 1;
            }
            self.key.open_batch(&mut jobs[..n]);
            for (j, &i) in jobs[..n].iter().zip(&which[..n]) {
                if !j.ok {
                    pending[i] = false;
                    results[i] = Err(self.icv_failure(seqs[i]));
                }
            }
        }
        for (i, (p, r)) in pkts.iter_mut().zip(results.iter_mut()).enumerate() {
            if pending[i] {
                *r = self.finish(p, seqs[i]);
            }
            if let Err(e) = r {
                self.counters.count_drop(*e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::replay::DEFAULT_WINDOW;
    use crate::forward::ByteBuf;

    const SPI: u32 = 0x0102_0304;

    fn keymat(suite: Suite) -> Vec<u8> {
        (0..suite.keymat_len())
            .map(|i| (i as u8).wrapping_mul(29) ^ 0xc3)
            .collect()
    }

    fn pair(backend: Backend, esn: bool) -> (OutboundSa, InboundSa) {
        let s = Suite::Aes128Gcm;
        let out = OutboundSa::new(SPI, esn, AeadKey::new(backend, s, &keymat(s)).unwrap());
        let win = ReplayWindow::new(DEFAULT_WINDOW, esn).unwrap();
        let inb = InboundSa::new(SPI, AeadKey::new(backend, s, &keymat(s)).unwrap(), win);
        (out, inb)
    }

    fn ipv4(len: usize, tag: u8) -> Vec<u8> {
        let mut p = vec![tag; len];
        p[0] = 0x45;
        p
    }

    fn sealed(out: &mut OutboundSa, inner: &[u8]) -> ByteBuf {
        let mut b = ByteBuf::new(inner);
        out.seal(&mut b).unwrap();
        b
    }

    fn inner_of(b: &ByteBuf, o: &Opened) -> Vec<u8> {
        b.data()[o.inner.clone()].to_vec()
    }

    #[test]
    fn seal_then_open_both_esn_settings() {
        for backend in Backend::ALL {
            for esn in [false, true] {
                let (mut out, mut inb) = pair(backend, esn);
                for len in [1usize, 20, 21, 22, 23, 64, 1400] {
                    let inner = ipv4(len, len as u8);
                    let mut b = sealed(&mut out, &inner);
                    let d = b.data();
                    assert_eq!(d.len(), 16 + len + wire::pad_len(len) + 2 + 16);
                    assert_eq!(&d[..4], &SPI.to_be_bytes());
                    assert_eq!(
                        u64::from_be_bytes(d[8..16].try_into().unwrap()),
                        out.last_seq()
                    );
                    let o = inb.open(&mut b).unwrap();
                    assert_eq!(o.next_header, wire::NEXT_HEADER_IPV4);
                    assert_eq!(o.seq, out.last_seq());
                    assert_eq!(inner_of(&b, &o), inner);
                    assert_eq!(b.data().len(), o.inner.end);
                }
                assert_eq!(out.counters.packets, 7);
                assert_eq!(inb.counters.packets, 7);
                assert_eq!(inb.counters.bytes, out.counters.bytes);
            }
        }
    }

    #[test]
    fn ipv6_inner_gets_next_header_41_and_others_are_refused() {
        let (mut out, mut inb) = pair(Backend::default(), false);
        let mut v6 = vec![0u8; 48];
        v6[0] = 0x60;
        let mut b = sealed(&mut out, &v6);
        assert_eq!(
            inb.open(&mut b).unwrap().next_header,
            wire::NEXT_HEADER_IPV6
        );
        for bad in [&[][..], &[0x10u8, 0, 0][..]] {
            let mut b = ByteBuf::new(bad);
            assert_eq!(out.seal(&mut b), Err(EspError::Malformed));
            assert_eq!(b.data(), bad);
        }
        assert_eq!(out.last_seq(), 1);
        assert_eq!(out.counters.malformed, 2);
    }

    #[test]
    fn duplicate_is_replay_and_counted() {
        for esn in [false, true] {
            let (mut out, mut inb) = pair(Backend::default(), esn);
            let b = sealed(&mut out, &ipv4(100, 1));
            let copy = b.data().to_vec();
            let mut b = b;
            inb.open(&mut b).unwrap();
            let mut again = ByteBuf::new(&copy);
            assert_eq!(inb.open(&mut again), Err(EspError::Replay));
            assert_eq!(
                again.data(),
                &copy[..],
                "refused before decryption: untouched"
            );
            assert_eq!(inb.counters.replay, 1);
            assert_eq!(inb.counters.packets, 1);
        }
    }

    #[test]
    fn too_old_is_replay_window_and_unseen_inside_is_accepted() {
        let (mut out, mut inb) = pair(Backend::default(), false);
        let packets: Vec<Vec<u8>> = (0..1100)
            .map(|i| sealed(&mut out, &ipv4(60, i as u8)).data().to_vec())
            .collect();
        // Deliver 1100 (seq 1100) first, then the others out of order.
        let mut last = ByteBuf::new(&packets[1099]);
        inb.open(&mut last).unwrap();
        // Seq 77 is the lowest inside a 1024 window topped at 1100; 76 is below it.
        let mut b = ByteBuf::new(&packets[75]);
        assert_eq!(inb.open(&mut b), Err(EspError::ReplayWindow));
        for seq in [77usize, 1099, 500] {
            let mut b = ByteBuf::new(&packets[seq - 1]);
            let o = inb.open(&mut b).unwrap();
            assert_eq!(o.seq, seq as u64);
            assert_eq!(inner_of(&b, &o), ipv4(60, (seq - 1) as u8));
        }
        assert_eq!(inb.counters.replay_window, 1);
        assert_eq!(inb.window().top(), 1100);
    }

    #[test]
    fn with_esn_a_packet_more_than_a_window_late_is_too_old_not_forged() {
        // Under ESN a number below the window reads as the next 2^32 subspace, so its ICV
        // fails (RFC 4303 A2.2): it counts as too old. A tampered packet inside the window is
        // still an authentication failure. One by one and in a batch.
        for batch in [false, true] {
            let (mut out, mut inb) = pair(Backend::default(), true);
            let packets: Vec<Vec<u8>> = (0..1100)
                .map(|i| sealed(&mut out, &ipv4(60, i as u8)).data().to_vec())
                .collect();
            inb.open(&mut ByteBuf::new(&packets[1099])).unwrap();
            let mut tampered = packets[599].clone();
            tampered[20] ^= 1;
            let mut bufs = [ByteBuf::new(&packets[75]), ByteBuf::new(&tampered)];
            let results: Vec<_> = if batch {
                let mut r = [Err(EspError::Malformed), Err(EspError::Malformed)];
                inb.open_batch(&mut bufs, &mut r);
                r.to_vec()
            } else {
                bufs.iter_mut().map(|b| inb.open(b)).collect()
            };
            assert_eq!(
                results,
                [Err(EspError::ReplayWindow), Err(EspError::AuthFailed)],
                "batch {batch}"
            );
            assert_eq!(inb.counters.replay_window, 1);
            assert_eq!(inb.counters.auth_failed, 1);
            assert_eq!(inb.window().top(), 1100);
        }
    }

    #[test]
    fn bad_icv_leaves_the_window_unchanged() {
        for backend in Backend::ALL {
            for esn in [false, true] {
                let (mut out, mut inb) = pair(backend, esn);
                let good = sealed(&mut out, &ipv4(80, 9)).data().to_vec();
                // Corrupt the ciphertext, the ICV, the IV, the sequence number's use in the
                // AAD: all fail authentication, and none may mark seq 1 as seen.
                for at in [20usize, good.len() - 1, 9] {
                    let mut bad = good.clone();
                    bad[at] ^= 0x01;
                    let mut b = ByteBuf::new(&bad);
                    assert_eq!(inb.open(&mut b), Err(EspError::AuthFailed), "{at}");
                }
                assert_eq!(inb.window().top(), 0);
                assert_eq!(inb.counters.auth_failed, 3);
                let mut b = ByteBuf::new(&good);
                assert_eq!(inb.open(&mut b).unwrap().seq, 1);
                assert_eq!(inb.window().top(), 1);
            }
        }
    }

    #[test]
    fn wrong_spi_is_unknown_spi_not_counted() {
        let (mut out, mut inb) = pair(Backend::default(), false);
        let mut bytes = sealed(&mut out, &ipv4(40, 2)).data().to_vec();
        bytes[3] ^= 0xff;
        let mut b = ByteBuf::new(&bytes);
        assert_eq!(inb.open(&mut b), Err(EspError::UnknownSpi));
        assert_eq!(inb.counters.drops(), 0);
    }

    #[test]
    fn sequence_exhaustion_without_esn() {
        let (mut out, mut inb) = pair(Backend::default(), false);
        assert!(out.advance_seq_to(u64::from(u32::MAX) - 2));
        assert!(!out.advance_seq_to(5), "never backward");
        let mut seqs = vec![];
        for _ in 0..2 {
            let mut b = sealed(&mut out, &ipv4(40, 3));
            seqs.push(inb.open(&mut b).unwrap().seq);
        }
        assert_eq!(seqs, [u64::from(u32::MAX) - 1, u64::from(u32::MAX)]);
        assert_eq!(out.remaining(), 0);
        for _ in 0..3 {
            let mut b = ByteBuf::new(&ipv4(40, 3));
            assert_eq!(out.seal(&mut b), Err(EspError::SequenceExhausted));
            assert_eq!(b.data(), &ipv4(40, 3)[..], "buffer untouched");
        }
        assert_eq!(out.last_seq(), u64::from(u32::MAX));
        assert_eq!(out.counters.seq_exhausted, 3);
        assert!(!out.advance_seq_to(u64::from(u32::MAX) + 1));
    }

    #[test]
    fn senders_of_one_key_never_share_an_iv() {
        let s = Suite::Aes128Gcm;
        let key = || AeadKey::new(Backend::default(), s, &keymat(s)).unwrap();
        let mut w0 = OutboundSa::new(SPI, true, key()).with_sender(0);
        let mut w1 = OutboundSa::new(SPI + 1, true, key()).with_sender(1);
        let mut ivs = std::collections::HashSet::new();
        for _ in 0..50 {
            for sa in [&mut w0, &mut w1] {
                let b = sealed(sa, &ipv4(40, 4));
                let iv: [u8; 8] = b.data()[8..16].try_into().unwrap();
                assert!(ivs.insert(iv), "IV {iv:?} used twice under one key");
            }
        }
        // Sender 1's IVs carry its index in the top byte; sequence numbers stop below it.
        let b = sealed(&mut w1, &ipv4(40, 4));
        assert_eq!(b.data()[8], 1);
        assert_eq!(w1.max_seq(), (1 << 56) - 1);
        assert!(w1.advance_seq_to((1 << 56) - 1));
        assert_eq!(
            w1.seal(&mut ByteBuf::new(&ipv4(40, 4))),
            Err(EspError::SequenceExhausted)
        );
        // One receiver opens both senders' packets (each SPI has its own window).
        let mut r0 = InboundSa::new(SPI, key(), ReplayWindow::new(DEFAULT_WINDOW, true).unwrap());
        let mut b = sealed(&mut w0, &ipv4(40, 4));
        assert!(r0.open(&mut b).is_ok());
    }

    #[test]
    fn sequence_exhaustion_with_esn() {
        let (mut out, mut inb) = pair(Backend::default(), true);
        // The receiver has followed the sender up to near the end of the space.
        assert!(out.advance_seq_to(u64::MAX - 3));
        let mut b = sealed(&mut out, &ipv4(40, 4));
        let mut inb_far = {
            let w = ReplayWindow::new(DEFAULT_WINDOW, true).unwrap();
            let s = Suite::Aes128Gcm;
            let k = AeadKey::new(Backend::default(), s, &keymat(s)).unwrap();
            InboundSa::new(SPI, k, w)
        };
        // A fresh receiver (top 0) cannot place low bits this close to 2^32 (they would
        // belong before sequence number 0): below its window.
        assert_eq!(inb.open(&mut b), Err(EspError::ReplayWindow));
        inb_far.window.update(u64::MAX - 10).unwrap();
        let mut b = sealed(&mut out, &ipv4(40, 4));
        assert_eq!(inb_far.open(&mut b).unwrap().seq, u64::MAX - 1);
        let mut b = sealed(&mut out, &ipv4(40, 4));
        assert_eq!(inb_far.open(&mut b).unwrap().seq, u64::MAX);
        let mut b = ByteBuf::new(&ipv4(40, 4));
        assert_eq!(out.seal(&mut b), Err(EspError::SequenceExhausted));
        assert_eq!(out.remaining(), 0);
        assert_eq!(out.last_seq(), u64::MAX);
    }

    #[test]
    fn esn_crosses_2_pow_32_with_both_ends_agreeing() {
        for backend in Backend::ALL {
            let (mut out, mut inb) = pair(backend, true);
            let start = (1u64 << 32) - 5;
            out.advance_seq_to(start - 1);
            inb.window.update(start - 1).unwrap();
            let pkts: Vec<Vec<u8>> = (0..10)
                .map(|i| sealed(&mut out, &ipv4(50, i)).data().to_vec())
                .collect();
            // The low 32 bits on the wire wrap to 0.
            assert_eq!(&pkts[5][4..8], &[0, 0, 0, 0]);
            // Deliver reordered across the wrap: 2^32+2 before 2^32-3.
            for i in [7usize, 2, 9, 0, 5, 1, 8, 3, 6, 4] {
                let mut b = ByteBuf::new(&pkts[i]);
                let o = inb.open(&mut b).unwrap();
                assert_eq!(o.seq, start + i as u64);
                assert_eq!(inner_of(&b, &o), ipv4(50, i as u8));
            }
            let mut b = ByteBuf::new(&pkts[6]);
            assert_eq!(inb.open(&mut b), Err(EspError::Replay));
        }
    }

    #[test]
    fn batch_matches_one_by_one_and_catches_duplicates_in_a_batch() {
        for backend in Backend::ALL {
            for esn in [false, true] {
                let (mut out1, mut inb) = pair(backend, esn);
                let (mut out2, _) = pair(backend, esn);
                let inners: Vec<Vec<u8>> = (0..70).map(|i| ipv4(20 + i * 13, i as u8)).collect();
                let mut bufs: Vec<ByteBuf> = inners.iter().map(|p| ByteBuf::new(p)).collect();
                let mut res = vec![Ok(0); bufs.len()];
                out1.seal_batch(&mut bufs, &mut res);
                for (i, (b, r)) in bufs.iter().zip(&res).enumerate() {
                    assert_eq!(*r, Ok(i as u64 + 1));
                    assert_eq!(b.data(), sealed(&mut out2, &inners[i]).data());
                }
                assert_eq!(out1.counters, out2.counters);
                // Duplicate packet 3 inside the batch, corrupt packet 40, truncate 41.
                let dup = bufs[3].data().to_vec();
                bufs.push(ByteBuf::new(&dup));
                bufs[40].data_mut()[30] ^= 4;
                let short = bufs[41].data()[..20].to_vec();
                bufs[41] = ByteBuf::new(&short);
                let mut opened = vec![Err(EspError::UnknownSpi); bufs.len()];
                inb.open_batch(&mut bufs, &mut opened);
                for (i, r) in opened.iter().enumerate() {
                    match i {
                        40 => assert_eq!(*r, Err(EspError::AuthFailed)),
                        41 => assert_eq!(*r, Err(EspError::Malformed)),
                        70 => assert_eq!(*r, Err(EspError::Replay)),
                        _ => {
                            let o = r.as_ref().unwrap();
                            assert_eq!(inner_of(&bufs[i], o), inners[i]);
                        }
                    }
                }
                assert_eq!(inb.counters.packets, 68);
                assert_eq!(
                    (
                        inb.counters.auth_failed,
                        inb.counters.malformed,
                        inb.counters.replay
                    ),
                    (1, 1, 1)
                );
            }
        }
    }

    /// A buffer with no headroom or no tailroom.
    struct Tight {
        bytes: Vec<u8>,
        head: usize,
        len: usize,
    }

    impl PacketBuf for Tight {
        fn data(&self) -> &[u8] {
            &self.bytes[self.head..self.head + self.len]
        }
        fn data_mut(&mut self) -> &mut [u8] {
            &mut self.bytes[self.head..self.head + self.len]
        }
        fn prepend(&mut self, n: usize) -> bool {
            if n > self.head {
                return false;
            }
            self.head -= n;
            self.len += n;
            true
        }
        fn adj(&mut self, n: usize) -> bool {
            if n > self.len {
                return false;
            }
            self.head += n;
            self.len -= n;
            true
        }
        fn set_len(&mut self, len: usize) -> bool {
            if self.head + len > self.bytes.len() {
                return false;
            }
            self.len = len;
            true
        }
    }

    #[test]
    fn no_room_leaves_the_buffer_and_the_counter() {
        let (mut out, _) = pair(Backend::default(), false);
        let inner = ipv4(40, 5);
        // No headroom, plenty of tailroom; then headroom but no tailroom.
        for (head, tail) in [(0usize, 100usize), (15, 100), (16, 10)] {
            let mut bytes = vec![0u8; head + inner.len() + tail];
            bytes[head..head + inner.len()].copy_from_slice(&inner);
            let mut t = Tight {
                bytes,
                head,
                len: inner.len(),
            };
            assert_eq!(out.seal(&mut t), Err(EspError::NoRoom));
            assert_eq!(t.data(), &inner[..]);
            assert_eq!(t.head, head);
        }
        assert_eq!(out.last_seq(), 0, "no sequence number consumed");
        assert_eq!(out.counters.no_room, 3);
    }

    fn encapsulated(nh: u8, tamper_pad: bool) -> (InboundSa, ByteBuf) {
        let (_, inb) = pair(Backend::default(), false);
        let s = Suite::Aes128Gcm;
        let k = AeadKey::new(Backend::default(), s, &keymat(s)).unwrap();
        let mut b = ByteBuf::new(&ipv4(41, 6)); // 41 + 2: 1 byte of padding
        frame(&mut b, SPI, 1, &1u64.to_be_bytes(), nh).unwrap();
        if tamper_pad {
            let n = b.data().len();
            b.data_mut()[n - TAG_LEN - 3] = 7;
        }
        assert!(seal_framed(&k, 1, false, b.data_mut()));
        (inb, b)
    }

    #[test]
    fn dummy_bad_next_header_and_bad_padding_after_a_valid_icv() {
        let (mut inb, mut b) = encapsulated(wire::NEXT_HEADER_NONE, false);
        assert_eq!(inb.open(&mut b), Err(EspError::Dummy));
        assert_eq!(inb.counters.dummy, 1);
        let (mut inb, mut b) = encapsulated(17, false);
        assert_eq!(inb.open(&mut b), Err(EspError::BadNextHeader));
        let (mut inb, mut b) = encapsulated(4, true);
        assert_eq!(inb.open(&mut b), Err(EspError::Malformed));
        // The ICV verified, so the sequence number counts as received.
        assert_eq!(inb.window().top(), 1);
        let (mut inb, mut b) = encapsulated(4, false);
        assert_eq!(inb.open(&mut b).unwrap().seq, 1);
    }

    #[test]
    fn debug_of_sas_shows_no_key() {
        let s = Suite::Aes256Gcm;
        let km: Vec<u8> = (0..s.keymat_len() as u8).map(|i| 0x80 | i).collect();
        let hex: String = km.iter().map(|b| format!("{b:02x}")).collect();
        for backend in Backend::ALL {
            let out = OutboundSa::new(SPI, true, AeadKey::new(backend, s, &km).unwrap());
            let inb = InboundSa::new(
                SPI,
                AeadKey::new(backend, s, &km).unwrap(),
                ReplayWindow::new(64, true).unwrap(),
            );
            let text = format!("{out:?}\n{inb:#?}").to_lowercase();
            assert!(
                text.contains("redacted") && text.contains("aes256gcm"),
                "{text}"
            );
            for i in 0..km.len() - 2 {
                assert!(!text.contains(&hex[2 * i..2 * i + 6]), "{text}");
                let dec = format!("{}, {}, {}", km[i], km[i + 1], km[i + 2]);
                assert!(!text.contains(&dec), "{text}");
            }
        }
    }
}
