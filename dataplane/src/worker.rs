//! The worker loop: rx burst on every port → `forward::process` per packet → tx bursts per
//! egress port; then neighbor events to the control thread and solicitations for unresolved
//! next hops. One tx queue per worker on every port, so no two threads share a queue.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::counters::{DropReason, WorkerCounters};
use crate::eal;
use crate::forward::{self, Context, PacketBuf, Stage, Verdict};
use crate::lcore::Backoff;
use crate::mbuf::{Burst, Mbuf, MAX_BURST};
use crate::mempool::Mempool;
use crate::port;
use crate::reorder::Reorder;
use crate::tables::{NeighborKey, TablePublisher, Tables};
use crate::tunnel::{self, SaState};
use crate::vlan;
use crate::wire::MacAddr;

/// Marks a packet of a burst that is not sent (consumed or dropped).
const NOT_SENT: u16 = u16::MAX;
/// Marks a packet of a burst that goes to the worker owning its SA.
const HANDED_OFF: u16 = u16::MAX - 1;
/// Marks a packet of a burst that goes through a reorder buffer (a spread flow's).
const HELD: u16 = u16::MAX - 2;

/// How long a reorder buffer waits for a missing packet of a spread flow before it gives it
/// up: the largest p99 RTT of the paths (the delays of two paths differ by less than that),
/// plus 10 ms, within these bounds.
const REORDER_TIMEOUT_MIN_MS: u64 = 50;
const REORDER_TIMEOUT_MAX_MS: u64 = 500;

/// A reorder buffer of packets and their egress ports.
type PacketReorder = Reorder<(Mbuf, u16)>;

/// The reorder buffers of spread flows, by inbound SA slot (see [`crate::reorder`]).
struct Reorders {
    bufs: Vec<Option<Box<PacketReorder>>>,
    /// Packets held in all of them.
    held: usize,
    /// In TSC cycles.
    timeout: u64,
}

impl Reorders {
    fn new(slots: usize, hz: u64) -> Self {
        Self {
            bufs: (0..slots).map(|_| None).collect(),
            held: 0,
            timeout: hz / 1000 * REORDER_TIMEOUT_MIN_MS,
        }
    }

    /// Follows the paths' delays (see [`REORDER_TIMEOUT_MIN_MS`]).
    fn set_timeout(&mut self, t: &Tables, hz: u64) {
        let p99_ms = t
            .board
            .peers
            .iter()
            .flat_map(|p| p.paths.iter())
            .map(|s| s.rtt_p99.get())
            .filter(|&v| v != u64::MAX)
            .max()
            .unwrap_or(0)
            / 1_000_000;
        let ms = (p99_ms + 10).clamp(REORDER_TIMEOUT_MIN_MS, REORDER_TIMEOUT_MAX_MS);
        self.timeout = hz / 1000 * ms;
    }

    /// A spread packet of slot `slot` with sequence number `seq`, bound for `port`: through
    /// the slot's buffer; what it releases is queued for transmission.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        slot: u32,
        seq: u32,
        m: Mbuf,
        port: u16,
        tx: &mut [Burst],
        cfg: &WorkerConfig,
        c: &WorkerCounters,
    ) {
        let Some(b) = self.bufs.get_mut(slot as usize) else {
            enqueue(tx, cfg, c, port, m);
            return;
        };
        let b = b.get_or_insert_with(Box::default);
        let before = b.held();
        b.push(seq, (m, port), eal::rdtsc(), |(m, p)| {
            enqueue(tx, cfg, c, p, m)
        });
        if b.held() > before {
            c.reorder_held.add(1);
        }
        self.held = self.held + b.held() - before;
    }

    /// Releases everything held, in order per buffer (the inbound slots are about to change).
    fn release_all(&mut self, tx: &mut [Burst], cfg: &WorkerConfig, c: &WorkerCounters) {
        if self.held == 0 {
            return;
        }
        for b in self.bufs.iter_mut().flatten() {
            b.flush(|(m, p)| enqueue(tx, cfg, c, p, m));
        }
        self.held = 0;
    }

    /// One buffer per inbound slot (made when first needed).
    fn resize(&mut self, slots: usize) {
        self.bufs.clear();
        self.bufs.resize_with(slots, || None);
    }

    /// Gives up the gaps that waited too long.
    fn poll(&mut self, tx: &mut [Burst], cfg: &WorkerConfig, c: &WorkerCounters) {
        if self.held == 0 {
            return;
        }
        let now = eal::rdtsc();
        let mut held = 0;
        for b in self.bufs.iter_mut().flatten() {
            if b.held() > 0 {
                let skipped = b.skipped;
                b.poll(now, self.timeout, |(m, p)| enqueue(tx, cfg, c, p, m));
                c.reorder_gaps.add(b.skipped - skipped);
                held += b.held();
            }
        }
        self.held = held;
    }
}

/// A packet passed from one worker to the worker that owns its SA.
pub struct Handoff {
    pub mbuf: Mbuf,
    pub port: u16,
    pub stage: Stage,
}

/// Packets each worker may have waiting from the others.
pub const HANDOFF_QUEUE: usize = 4096;

/// A neighbor a worker saw; the control thread merges these into the next table generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborEvent {
    pub port: u16,
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// Everything a worker shares with the control thread.
pub struct WorkerShared {
    pub tables: Arc<TablePublisher>,
    pub counters: Arc<WorkerCounters>,
    pub events: Arc<ArrayQueue<NeighborEvent>>,
    pub stop: Arc<AtomicBool>,
    /// `handoff[w]`: packets for worker `w` (its own is drained by it, the others' filled).
    pub handoff: Arc<Vec<ArrayQueue<Handoff>>>,
}

pub struct WorkerConfig {
    pub index: usize,
    /// DPDK port id of each table port index (a VLAN's is its port's).
    pub port_ids: Vec<u16>,
    /// The 802.1Q VLAN ID of each table port index; 0 for a port itself (untagged).
    pub vlans: Vec<u16>,
    /// (port index, VLAN ID, the VLAN's port index): where tagged frames belong.
    pub vlan_map: Vec<(u16, u16, u16)>,
    /// The rx and tx queue this worker owns on every port.
    pub queue: u16,
    pub rx_burst: u16,
    pub idle_sleep_max_us: u32,
    /// Whether this worker keeps the routes' next hops resolved (one worker does).
    pub resolver: bool,
    /// The SAs this worker owns.
    pub sas: SaState,
    /// The path monitors (worker 0, when there are overlay peers to probe).
    pub prober: Option<Box<crate::multipath::Prober>>,
}

/// Direct-mapped memory of recent solicitations, so a flow to an unresolved next hop sends one
/// ARP request or NS per interval, not one per packet.
struct SolicitLimiter {
    slots: [(u16, u128, u64); 64],
    interval: u64,
}

impl SolicitLimiter {
    fn allow(&mut self, port: u16, ip: IpAddr, now: u64) -> bool {
        let key = NeighborKey::new(port, ip);
        let slot = &mut self.slots[(key.addr as usize ^ usize::from(port)) % 64];
        if slot.0 == port
            && slot.1 == key.addr
            && now.wrapping_sub(slot.2) < self.interval
            && slot.2 != 0
        {
            return false;
        }
        *slot = (port, key.addr, now.max(1));
        true
    }
}

pub fn run(mut cfg: WorkerConfig, pool: Arc<Mempool>, shared: WorkerShared) {
    let c = &*shared.counters;
    let hz = eal::tsc_hz().max(1);
    let mut backoff = Backoff::new(cfg.idle_sleep_max_us);
    let mut rx = Burst::new();
    let mut tx: Vec<Burst> = cfg.port_ids.iter().map(|_| Burst::new()).collect();
    let mut fx = Context {
        sas: std::mem::take(&mut cfg.sas),
        prober: cfg.prober.take(),
        ..Context::default()
    };
    // The fast path into tunnels leaves the sealing to one AEAD call per SA and burst.
    fx.sas.defer = true;
    let mut handoff_to = [(0u16, Stage::Frame); MAX_BURST];
    let mut holds = [(0u32, 0u32, 0u16); MAX_BURST];
    let mut reorders = Reorders::new(fx.sas.inbound_slots(), hz);
    let mut polls = 0u32;
    let mut limiter = SolicitLimiter {
        slots: [(0, 0, 0); 64],
        interval: hz / 10,
    };
    let rx_burst = usize::from(cfg.rx_burst).clamp(1, MAX_BURST);
    let mut next_housekeeping = 0u64;
    let mut next_resolve = 0u64;

    while !shared.stop.load(Ordering::Relaxed) {
        let tables = shared.tables.load();
        // New SAs (learned peers, rekeys) take effect here, between bursts.
        if fx.sas.sync(&tables) {
            reorders.release_all(&mut tx, &cfg, c);
            reorders.resize(fx.sas.inbound_slots());
        }
        if let Some(prober) = fx.prober.as_deref_mut() {
            prober.sync(&tables);
        }
        let mut seen = receive_handoffs(
            &tables,
            &mut fx,
            &shared,
            &pool,
            &mut tx,
            &cfg,
            &mut reorders,
        );
        // A full rx burst: this worker has more to do than it can; probe replies may be
        // waiting behind it, so the monitors must not count them late.
        let mut overloaded = false;
        for (in_idx, &port_id) in cfg.port_ids.iter().enumerate() {
            if cfg.vlans[in_idx] != 0 {
                continue; // a VLAN: its frames arrive on its port's queue
            }
            let rx_port = in_idx as u16;
            let n = port::rx_burst(port_id, cfg.queue, &mut rx, rx_burst);
            if n == 0 {
                continue;
            }
            seen += n;
            overloaded |= n == rx_burst;
            // Counted locally and published once per burst: a per-packet store to the shared
            // counters would keep them out of registers. Byte counts come from the devices
            // (`show interfaces`), so the loop never reads an mbuf header. Multi-segment mbufs
            // need no check here: the pipeline reads the first segment only and checks every
            // length against it, so a packet that does not fit there is dropped as malformed.
            let (mut forwarded, mut replies) = (0u64, 0u64);
            let mut outs = [NOT_SENT; MAX_BURST];
            let mut in_ports = [rx_port; MAX_BURST];
            for (i, (out, m)) in outs.iter_mut().zip(rx.as_mut_slice()).enumerate() {
                fx.sas.burst_index = i;
                // Tagged frames belong to the port's VLAN sub-interface, untagged from here on.
                let in_port = if cfg.vlan_map.is_empty() {
                    rx_port
                } else {
                    match vlan::classify(m, rx_port, &cfg.vlan_map) {
                        Some(p) => p,
                        None => {
                            c.drop(DropReason::UnknownVlan, 1);
                            continue;
                        }
                    }
                };
                in_ports[i] = in_port;
                *out = match forward::process(&tables, in_port, m, &mut fx) {
                    Verdict::Forward(port) => {
                        forwarded += 1;
                        port
                    }
                    Verdict::Reply(port) => {
                        replies += 1;
                        port
                    }
                    Verdict::Consumed => NOT_SENT,
                    Verdict::Drop(reason) => {
                        c.drop(reason, 1);
                        NOT_SENT
                    }
                    Verdict::Handoff { worker, stage } => {
                        handoff_to[i] = (worker, stage);
                        HANDED_OFF
                    }
                };
                // A spread flow's packet, opened: it goes through its reorder buffer.
                if fx.sas.held.is_some() {
                    if let Some((slot, seq)) = fx.sas.held.take() {
                        if *out < HELD {
                            holds[i] = (slot, seq, *out);
                            *out = HELD;
                        }
                    }
                }
            }
            tunnel::seal_pending(rx.as_mut_slice(), &mut fx, |i, reason| {
                outs[i] = NOT_SENT;
                forwarded -= 1;
                c.drop(reason, 1);
            });
            if fx.sas.copies_len > 0 {
                send_copies(&tables, &mut fx, &mut rx, &outs, &pool, &mut tx, &cfg, c);
            }
            if fx.sas.rebuilt_count > 0 {
                feed_back_rebuilt(&mut fx, &shared, &pool, &cfg);
            }
            // A run of packets to the same port is staged in a local burst (its length stays
            // in a register) and moved to that port's tx burst in one copy: pushing each packet
            // straight into `tx[port]` made a load-store chain through memory per packet.
            let mut staged = Burst::new();
            let mut staged_port = 0u16;
            for (i, (m, &out)) in rx.drain().zip(outs.iter()).enumerate() {
                if out == NOT_SENT {
                    continue; // consumed or dropped: `m` is freed here
                }
                if out == HANDED_OFF {
                    let (worker, stage) = handoff_to[i];
                    hand_off(&shared, c, worker, in_ports[i], stage, m);
                    continue;
                }
                if out == HELD {
                    let (slot, seq, port) = holds[i];
                    reorders.push(slot, seq, m, port, &mut tx, &cfg, c);
                    continue;
                }
                let mut m = m;
                if !tag_for(&cfg, out, &mut m) {
                    c.drop(DropReason::NoBuffer, 1);
                    continue;
                }
                if out != staged_port && !staged.is_empty() {
                    stage_out(&mut tx, &cfg, c, staged_port, &mut staged);
                }
                staged_port = out;
                // At most one rx burst is staged, so this never overflows.
                let _ = staged.push(m);
            }
            if !staged.is_empty() {
                stage_out(&mut tx, &cfg, c, staged_port, &mut staged);
            }
            c.rx_packets.add(n as u64);
            c.forwarded.add(forwarded);
            c.local_replies.add(replies);
            flush(&mut tx, &cfg, c);
            take_tunnel_counts(&mut fx, c);
        }
        if !fx.learned.as_slice().is_empty() || !fx.solicit.as_slice().is_empty() {
            after_burst(
                &tables,
                &mut fx,
                &shared,
                &pool,
                &mut limiter,
                &mut tx,
                &cfg,
            );
        }
        if reorders.held > 0 {
            reorders.poll(&mut tx, &cfg, c);
            flush(&mut tx, &cfg, c);
        }
        if let Some(prober) = fx.prober.as_deref_mut() {
            if prober.due(prober.now()) {
                prober.poll(&tables, overloaded, |port, frame| {
                    send_frame(&cfg, &pool, c, port, frame)
                });
            }
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(1024) {
            fx.sas.publish();
            reorders.set_timeout(&tables, hz);
        }
        if seen == 0 || next_housekeeping == 0 {
            let now = eal::rdtsc();
            if now >= next_housekeeping {
                // RFC 1812 / RFC 4443 rate limit: 100 ICMP errors per 100 ms per worker.
                fx.icmp_error_budget = 100;
                next_housekeeping = now + hz / 10;
                fx.sas.publish();
                fx.sas.flow_tick();
            }
            if cfg.resolver && now >= next_resolve {
                for (port, ip) in forward::next_hops(&tables) {
                    if tables.neighbor(port, ip).is_none() {
                        fx.solicit.push((port, ip));
                    }
                }
                next_resolve = now + hz;
                after_burst(
                    &tables,
                    &mut fx,
                    &shared,
                    &pool,
                    &mut limiter,
                    &mut tx,
                    &cfg,
                );
            }
        }
        drop(tables);
        if seen > 0 {
            c.busy_polls.add(1);
        } else {
            c.idle_polls.add(1);
        }
        if let Some(d) = backoff.after_poll(seen) {
            c.sleeps.add(1);
            std::thread::sleep(d);
        }
    }
}

/// Adds the tunnel work of a burst to the worker's counters.
#[inline]
fn take_tunnel_counts(fx: &mut Context, c: &WorkerCounters) {
    if fx.sas.fec_rebuilt | fx.sas.fec_late != 0 {
        c.fec_rebuilt.add(std::mem::take(&mut fx.sas.fec_rebuilt));
        c.fec_late.add(std::mem::take(&mut fx.sas.fec_late));
    }
    if fx.clear_in | fx.clear_out != 0 {
        c.clear_in.add(std::mem::take(&mut fx.clear_in));
        c.clear_out.add(std::mem::take(&mut fx.clear_out));
    }
    if fx.encrypted | fx.decrypted | fx.nat_keepalives != 0 {
        c.encrypted.add(fx.encrypted);
        c.decrypted.add(fx.decrypted);
        c.nat_keepalives.add(fx.nat_keepalives);
        fx.encrypted = 0;
        fx.decrypted = 0;
        fx.nat_keepalives = 0;
    }
}

/// Passes `m` to `worker`'s queue; a full queue drops it (counted as `no_buffer`).
fn hand_off(
    shared: &WorkerShared,
    c: &WorkerCounters,
    worker: u16,
    port: u16,
    stage: Stage,
    m: Mbuf,
) {
    let Some(q) = shared.handoff.get(usize::from(worker)) else {
        c.drop(DropReason::NoRoute, 1);
        return;
    };
    match q.push(Handoff {
        mbuf: m,
        port,
        stage,
    }) {
        Ok(()) => c.handed_off.add(1),
        Err(_) => c.drop(DropReason::NoBuffer, 1), // the rejected mbuf is freed here
    }
}

/// Processes what other workers handed to this one; returns how many packets there were.
fn receive_handoffs(
    tables: &Tables,
    fx: &mut Context,
    shared: &WorkerShared,
    pool: &Mempool,
    tx: &mut [Burst],
    cfg: &WorkerConfig,
    reorders: &mut Reorders,
) -> usize {
    let c = &*shared.counters;
    let Some(q) = shared.handoff.get(cfg.index) else {
        return 0;
    };
    let mut n = 0;
    while n < MAX_BURST {
        let Some(Handoff {
            mut mbuf,
            port,
            stage,
        }) = q.pop()
        else {
            break;
        };
        n += 1;
        let verdict = forward::process_handoff(tables, port, stage, &mut mbuf, fx);
        // Copies are made from rx bursts only (they name a packet by its place in one).
        fx.sas.copies_len = 0;
        if fx.sas.rebuilt_count > 0 {
            feed_back_rebuilt(fx, shared, pool, cfg);
        }
        let held = fx.sas.held.take();
        match verdict {
            Verdict::Forward(out) => {
                c.forwarded.add(1);
                match held {
                    Some((slot, seq)) => reorders.push(slot, seq, mbuf, out, tx, cfg, c),
                    None => enqueue(tx, cfg, c, out, mbuf),
                }
            }
            Verdict::Reply(out) => {
                c.local_replies.add(1);
                enqueue(tx, cfg, c, out, mbuf);
            }
            Verdict::Consumed => {}
            Verdict::Drop(reason) => c.drop(reason, 1),
            // The owner never hands a packet on again; counted, not looped.
            Verdict::Handoff { .. } => c.drop(DropReason::NoRoute, 1),
        }
    }
    if n > 0 {
        c.handoffs_received.add(n as u64);
        flush(tx, cfg, c);
        take_tunnel_counts(fx, c);
    }
    n
}

/// Puts the 802.1Q tag of `out` on the frame when `out` is a VLAN; false when there is no
/// headroom for it.
#[inline]
fn tag_for(cfg: &WorkerConfig, out: u16, m: &mut Mbuf) -> bool {
    match cfg.vlans.get(usize::from(out)) {
        Some(&vid) if vid != 0 => vlan::push(m, vid),
        _ => true,
    }
}

#[inline]
fn enqueue(tx: &mut [Burst], cfg: &WorkerConfig, c: &WorkerCounters, out: u16, mut m: Mbuf) {
    if !tag_for(cfg, out, &mut m) {
        c.drop(DropReason::NoBuffer, 1);
        return;
    }
    let i = usize::from(out);
    if tx[i].is_full() {
        flush_one(tx, cfg, c, i);
    }
    // A full burst was just flushed, so this cannot fail; if it did, dropping `m` frees it.
    let _ = tx[i].push(m);
}

/// Moves a staged run into the tx burst of `port`, transmitting when that fills.
#[inline]
fn stage_out(
    tx: &mut [Burst],
    cfg: &WorkerConfig,
    c: &WorkerCounters,
    port: u16,
    staged: &mut Burst,
) {
    let i = usize::from(port);
    while !staged.is_empty() {
        if tx[i].is_full() {
            flush_one(tx, cfg, c, i);
        }
        tx[i].append(staged);
    }
}

fn flush(tx: &mut [Burst], cfg: &WorkerConfig, c: &WorkerCounters) {
    for i in 0..tx.len() {
        if !tx[i].is_empty() {
            flush_one(tx, cfg, c, i);
        }
    }
}

#[inline]
fn flush_one(tx: &mut [Burst], cfg: &WorkerConfig, c: &WorkerCounters, i: usize) {
    let burst = &mut tx[i];
    let pending = burst.len();
    let sent = port::tx_burst(cfg.port_ids[i], cfg.queue, burst);
    if sent < pending {
        // What the queue refused is freed and counted.
        burst.clear();
        c.drop(DropReason::TxQueueFull, (pending - sent) as u64);
    }
    c.tx_packets.add(sent as u64);
}

/// Does what the policies asked for the sealed packets of the burst: a copy on a second
/// path (replication: the packet again, its outer headers rewritten for that path), or the
/// packet's FEC group (its mark in the VXLAN header; the group's parity, once complete, on the
/// second path). A copy or parity that cannot be made is not sent; the original always is.
#[allow(clippy::too_many_arguments)]
fn send_copies(
    tables: &Tables,
    fx: &mut Context,
    rx: &mut Burst,
    outs: &[u16; MAX_BURST],
    pool: &Mempool,
    tx: &mut [Burst],
    cfg: &WorkerConfig,
    c: &WorkerCounters,
) {
    let n = std::mem::take(&mut fx.sas.copies_len);
    for k in 0..n {
        let (i, ti, ci, fec_k) = fx.sas.copies[k];
        let i = usize::from(i);
        if outs
            .get(i)
            .is_none_or(|&o| o == NOT_SENT || o == HANDED_OFF)
        {
            continue;
        }
        let Some(orig) = rx.as_mut_slice().get_mut(i) else {
            continue;
        };
        if fec_k == tunnel::SEQUENCE {
            number_spread(fx, usize::from(ti), orig.data_mut());
            continue;
        }
        let mut frame = [0u8; tunnel::REBUILT_MAX];
        let len = if fec_k == 0 {
            let d = orig.data();
            if d.len() > frame.len() {
                continue;
            }
            frame[..d.len()].copy_from_slice(d);
            d.len()
        } else {
            match fec_add(fx, usize::from(ti), fec_k, orig.data_mut(), &mut frame) {
                Some(len) => len,
                None => continue, // no parity to send yet
            }
        };
        let Some(port) =
            crate::multipath::retarget(tables, usize::from(ti), usize::from(ci), &mut frame[..len])
        else {
            continue;
        };
        let Some(mut m) = Mbuf::alloc(pool) else {
            c.drop(DropReason::NoBuffer, 1);
            continue;
        };
        if !(m.set_len(0) && m.extend_from_slice(&frame[..len])) {
            c.drop(DropReason::NoBuffer, 1);
            continue;
        }
        if let Some(peer) = tables
            .tunnels
            .get(usize::from(ti))
            .and_then(|t| t.peer_index)
        {
            fx.sas.count_path_tx(peer, ci);
        }
        if fec_k == 0 {
            c.replicated.add(1);
        } else {
            c.fec_parity.add(1);
        }
        enqueue(tx, cfg, c, port, m);
    }
}

/// Numbers a sealed overlay frame of a spread flow with its tunnel's next sequence number (in
/// the VXLAN header) for the receiver's reorder buffer. Outer IPv6 frames (whose UDP checksum
/// covers the header) go unnumbered.
fn number_spread(fx: &mut Context, ti: usize, d: &mut [u8]) {
    let Ok(o) = crate::overlay::parse_outer(d) else {
        return;
    };
    if d.get(12..14) != Some(&[0x08, 0x00]) {
        return;
    }
    let Some(next) = fx.sas.spread_seq.get_mut(ti) else {
        return;
    };
    let seq = *next;
    *next = next.wrapping_add(1);
    if let Some(vx) = d.get_mut(o.vxlan_off..o.vxlan_off + 8) {
        crate::reorder::write_seq(vx, seq);
    }
}

/// Adds a sealed overlay frame to its tunnel's FEC group of `k` and marks it; when that
/// completes the group, writes the parity frame into `parity` and returns its length. Frames
/// FEC cannot protect (outer IPv6, too long) go unmarked.
fn fec_add(fx: &mut Context, ti: usize, k: u8, d: &mut [u8], parity: &mut [u8]) -> Option<usize> {
    let o = crate::overlay::parse_outer(d).ok()?;
    if o.parity || d.get(12..14) != Some(&[0x08, 0x00]) {
        return None;
    }
    let enc = fx.sas.fec_encoder(ti, k)?;
    let (mark, complete) = enc.add(d.get(o.esp_range.clone())?)?;
    crate::fec::write_mark(d.get_mut(o.vxlan_off..o.vxlan_off + 8)?, mark);
    if !complete {
        return None;
    }
    crate::fec::parity_frame(d, o.esp_range.start, o.vxlan_off, o.spi, enc, parity)
}

/// Feeds a packet FEC rebuilt back to this worker (through its own handoff queue: it is
/// opened and delivered like any other).
fn feed_back_rebuilt(fx: &mut Context, shared: &WorkerShared, pool: &Mempool, cfg: &WorkerConfig) {
    let n = std::mem::take(&mut fx.sas.rebuilt_count);
    let c = &*shared.counters;
    for k in 0..n {
        let len = fx.sas.rebuilt_len[k];
        let Some(mut m) = Mbuf::alloc(pool) else {
            c.drop(DropReason::NoBuffer, 1);
            continue;
        };
        if m.set_len(0) && m.extend_from_slice(&fx.sas.rebuilt[k][..len]) {
            hand_off(
                shared,
                c,
                cfg.index as u16,
                fx.sas.rebuilt_port[k],
                Stage::Frame,
                m,
            );
        }
    }
}

/// Sends a frame the worker built (a path probe) on `port` at once, in a burst of its own;
/// false when no mbuf was left or the queue refused it (counted either way).
fn send_frame(
    cfg: &WorkerConfig,
    pool: &Mempool,
    c: &WorkerCounters,
    port: u16,
    frame: &[u8],
) -> bool {
    let Some(mut m) = Mbuf::alloc(pool) else {
        c.drop(DropReason::NoBuffer, 1);
        return false;
    };
    if !(m.set_len(0) && m.extend_from_slice(frame) && tag_for(cfg, port, &mut m)) {
        c.drop(DropReason::NoBuffer, 1);
        return false;
    }
    let Some(&port_id) = cfg.port_ids.get(usize::from(port)) else {
        return false;
    };
    let mut burst = Burst::new();
    let _ = burst.push(m);
    if port::tx_burst(port_id, cfg.queue, &mut burst) == 1 {
        c.tx_packets.add(1);
        true
    } else {
        c.drop(DropReason::TxQueueFull, 1);
        false
    }
}

/// Hands learned neighbors to the control thread and sends the solicitations the burst asked
/// for (rate-limited per next hop).
#[allow(clippy::too_many_arguments)]
fn after_burst(
    tables: &Tables,
    fx: &mut Context,
    shared: &WorkerShared,
    pool: &Mempool,
    limiter: &mut SolicitLimiter,
    tx: &mut [Burst],
    cfg: &WorkerConfig,
) {
    let c = &*shared.counters;
    for &(port, ip, mac) in fx.learned.as_slice() {
        if tables.neighbor(port, ip) != Some(&mac)
            && tables.may_learn(port, ip)
            && shared.events.push(NeighborEvent { port, ip, mac }).is_ok()
        {
            c.neighbors_learned.add(1);
        }
    }
    fx.learned.clear();
    let now = eal::rdtsc();
    for &(port, ip) in fx.solicit.as_slice() {
        if !limiter.allow(port, ip, now) {
            continue;
        }
        let Some(info) = tables.ports.get(usize::from(port)) else {
            continue;
        };
        let Some(mut m) = Mbuf::alloc(pool) else {
            c.drop(DropReason::NoBuffer, 1);
            continue;
        };
        let mut frame = [0u8; 128];
        let Some(len) = forward::build_solicitation(info, ip, &mut frame) else {
            continue;
        };
        if m.set_len(0) && m.extend_from_slice(&frame[..len]) {
            c.solicitations.add(1);
            enqueue(tx, cfg, c, port, m);
        }
    }
    fx.solicit.clear();
    flush(tx, cfg, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_one_per_interval() {
        let mut l = SolicitLimiter {
            slots: [(0, 0, 0); 64],
            interval: 100,
        };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.allow(0, ip, 1000));
        assert!(!l.allow(0, ip, 1050));
        assert!(l.allow(1, ip, 1050), "another port is another neighbor");
        assert!(l.allow(0, ip, 1101));
    }
}
