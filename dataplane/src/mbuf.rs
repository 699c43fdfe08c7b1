//! Owned packet buffers. An `Mbuf` frees itself when dropped; sending one hands it to the
//! driver (`into_raw`). A `Burst` is a fixed array of them for rx/tx bursts, so the fast path
//! moves pointers and never allocates.

use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

use crate::forward::PacketBuf;
use crate::mempool::Mempool;

/// `repr(transparent)`: a `Burst`'s pointer array can be viewed as `[Mbuf]` in place.
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one `Mbuf` at a time; moving it between threads is how
// DPDK pipelines work.
unsafe impl Send for Mbuf {}

impl Mbuf {
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: pool is valid; returns NULL when empty.
        NonNull::new(unsafe { dpdk_sys::sdwan_pktmbuf_alloc(pool.as_ptr()) }).map(Mbuf)
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or will free.
    #[inline]
    pub unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(raw)
    }

    /// Gives up ownership (to a driver's transmit queue).
    #[inline]
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively.
        unsafe { self.0.as_mut() }
    }

    /// Length of the packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// True when the whole packet is in this one buffer (the pipeline handles only these).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// The port the packet was received on (set by the driver).
    #[inline]
    pub fn rx_port(&self) -> u16 {
        self.raw().port
    }

    /// Appends `bytes` at the end; false when the buffer has no room.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        let Ok(n) = u16::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: append returns a pointer to n writable bytes, or NULL.
        let p = unsafe { dpdk_sys::sdwan_pktmbuf_append(self.0.as_ptr(), n) };
        if p.is_null() {
            return false;
        }
        // SAFETY: p points to n bytes inside our buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len()) };
        true
    }

    /// Bytes free after the data in this buffer.
    fn tailroom(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off) + usize::from(m.data_len))
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len is the first segment's data, inside the
        // buffer we own.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as above, and we own the mbuf exclusively.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// `rte_pktmbuf_prepend` in Rust, so it inlines into the pipeline: the first segment's
    /// data grows into its headroom.
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if n > m.data_off {
            return false;
        }
        m.data_off -= n;
        m.data_len += n;
        m.pkt_len += u32::from(n);
        true
    }

    /// `rte_pktmbuf_adj` in Rust: removes `n` bytes from the front of the first segment.
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if n > m.data_len {
            return false;
        }
        m.data_off += n;
        m.data_len -= n;
        m.pkt_len -= u32::from(n);
        true
    }

    fn set_len(&mut self, len: usize) -> bool {
        if !self.is_contiguous() {
            return false;
        }
        let cur = usize::from(self.raw().data_len);
        if len > cur && len - cur > self.tailroom() {
            return false;
        }
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        let m = self.raw_mut();
        m.data_len = len16;
        m.pkt_len = u32::from(len16);
        true
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; freeing returns it (and any chained segments) to its pool.
        unsafe { dpdk_sys::sdwan_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Most packets moved by one rx or tx call.
pub const MAX_BURST: usize = 64;

/// A burst of owned mbufs. Mbufs still in it when it is cleared or dropped are freed.
pub struct Burst {
    ptrs: [*mut rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: it owns its mbufs, like a Vec<Mbuf>.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub fn new() -> Self {
        Self {
            ptrs: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    /// Adds an mbuf; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// The held mbufs, still owned by the burst, for in-place processing.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: the first len pointers are valid, non-null mbufs owned by the burst, and
        // `Mbuf` is a transparent wrapper of a non-null pointer, so the layouts agree. The
        // slice borrows the burst, so nothing can take the mbufs out meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Takes the mbufs out, in order.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let n = std::mem::take(&mut self.len);
        // SAFETY: the first n pointers are owned, valid mbufs; ownership moves to the iterator.
        self.ptrs[..n]
            .iter()
            .map(|&p| unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
    }

    /// Moves as many mbufs from the front of `other` as fit here, in order; returns how many.
    #[inline]
    pub fn append(&mut self, other: &mut Burst) -> usize {
        let n = (MAX_BURST - self.len).min(other.len);
        self.ptrs[self.len..self.len + n].copy_from_slice(&other.ptrs[..n]);
        self.len += n;
        other.consume_front(n);
        n
    }

    /// Frees every mbuf still held.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: the first len pointers are owned, valid mbufs.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// For `Port::rx_burst`: the free space to fill, after which `set_filled` records how many
    /// pointers the driver wrote.
    pub(crate) fn spare_ptrs(&mut self) -> (*mut *mut rte_mbuf, u16) {
        // SAFETY: len <= MAX_BURST, so the offset stays inside the array.
        (
            unsafe { self.ptrs.as_mut_ptr().add(self.len) },
            (MAX_BURST - self.len) as u16,
        )
    }

    pub(crate) fn set_filled(&mut self, added: usize) {
        self.len = (self.len + added).min(MAX_BURST);
    }

    /// For `Port::tx_burst`: the held pointers; then `consume_front` drops the sent ones from
    /// the burst (the driver owns them now), keeping the refused ones.
    pub(crate) fn held_ptrs(&mut self) -> (*mut *mut rte_mbuf, u16) {
        (self.ptrs.as_mut_ptr(), self.len as u16)
    }

    #[inline]
    pub(crate) fn consume_front(&mut self, sent: usize) {
        let sent = sent.min(self.len);
        self.ptrs.copy_within(sent..self.len, 0);
        self.len -= sent;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
