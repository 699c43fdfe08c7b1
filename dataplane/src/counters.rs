//! Per-worker counters. Each worker owns its block and is its only writer, so an increment is
//! a plain load and store (no locked instruction); the control thread reads them at any time
//! with relaxed loads. Blocks are cache-line aligned so workers never share a line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Why the data plane dropped a packet. Every drop has exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// Shorter than its headers say, or a header field out of range.
    Malformed,
    /// IPv4 header checksum or ICMP checksum wrong.
    BadChecksum,
    /// Unicast frame for another MAC address (seen in promiscuous mode).
    NotForUs,
    /// EtherType the data plane does not handle.
    UnsupportedEthertype,
    /// TTL or hop limit ran out (an ICMP time exceeded is sent when the rate limit allows).
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// Next hop's link-layer address not known yet (a solicitation was sent).
    NeighborUnresolved,
    /// Addressed to the box, but nothing here handles it (the slow path comes later).
    LocalUnhandled,
    /// Multicast, broadcast, link-local or otherwise not forwardable.
    NotForwardable,
    /// Larger than the egress port's MTU.
    MtuExceeded,
    /// The transmit queue refused it.
    TxQueueFull,
    /// No mbuf left to build a reply, or no headroom for the tunnel headers.
    NoBuffer,
    /// A tunnel packet (VXLAN overlay, ESP, ESP in UDP) whose outer headers are malformed.
    TunnelMalformed,
    /// ESP with an SPI this appliance has no inbound SA for.
    UnknownSpi,
    /// ESP whose sequence number was seen before or is below the replay window.
    Replay,
    /// ESP whose ICV did not verify.
    AuthFailed,
    /// ESP that verified but whose trailer or next header is wrong.
    EspMalformed,
    /// ESP of a known SA that arrived where that SA does not go: wrong VNI, loopbacks,
    /// encapsulation or circuit.
    TunnelMismatch,
    /// The outbound SA's sequence numbers are used up (it must be rekeyed).
    SeqExhausted,
    /// An 802.1Q-tagged frame of a VLAN not configured on the port.
    UnknownVlan,
    /// A path probe from an unknown address, malformed, or whose tag did not verify.
    ProbeRejected,
    /// A steering policy with mode `drop` took it.
    Policy,
    /// Clear (unencrypted) tunnel traffic on a circuit that is not trusted.
    ClearUntrusted,
    /// Arrived on an internet-facing circuit, which carries no transit traffic.
    WanFiltered,
    /// A reply the box would send (a ping's, on an internet-facing circuit) over its budget.
    RateLimited,
}

impl DropReason {
    pub const ALL: [DropReason; 25] = [
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::NotForUs,
        DropReason::UnsupportedEthertype,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::NeighborUnresolved,
        DropReason::LocalUnhandled,
        DropReason::NotForwardable,
        DropReason::MtuExceeded,
        DropReason::TxQueueFull,
        DropReason::NoBuffer,
        DropReason::TunnelMalformed,
        DropReason::UnknownSpi,
        DropReason::Replay,
        DropReason::AuthFailed,
        DropReason::EspMalformed,
        DropReason::TunnelMismatch,
        DropReason::SeqExhausted,
        DropReason::UnknownVlan,
        DropReason::ProbeRejected,
        DropReason::Policy,
        DropReason::ClearUntrusted,
        DropReason::WanFiltered,
        DropReason::RateLimited,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::NotForUs => "not_for_us",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::NeighborUnresolved => "neighbor_unresolved",
            DropReason::LocalUnhandled => "local_unhandled",
            DropReason::NotForwardable => "not_forwardable",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::TxQueueFull => "tx_queue_full",
            DropReason::NoBuffer => "no_buffer",
            DropReason::TunnelMalformed => "tunnel_malformed",
            DropReason::UnknownSpi => "unknown_spi",
            DropReason::Replay => "replay",
            DropReason::AuthFailed => "auth_failed",
            DropReason::EspMalformed => "esp_malformed",
            DropReason::TunnelMismatch => "tunnel_mismatch",
            DropReason::SeqExhausted => "seq_exhausted",
            DropReason::UnknownVlan => "unknown_vlan",
            DropReason::ProbeRejected => "probe_rejected",
            DropReason::Policy => "policy",
            DropReason::ClearUntrusted => "clear_untrusted",
            DropReason::WanFiltered => "wan_filtered",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

/// A counter with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Replaces the value (the single writer publishing a count it keeps elsewhere).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerCounters {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
    pub forwarded: Counter,
    /// ARP and ND replies, ICMP echo replies, ICMP errors: what the box answered itself.
    pub local_replies: Counter,
    /// ARP requests and neighbor solicitations sent to resolve next hops.
    pub solicitations: Counter,
    /// Neighbor entries learned (sent to the control thread).
    pub neighbors_learned: Counter,
    /// Polls that returned packets / returned none; sleeps of the adaptive back-off.
    pub busy_polls: Counter,
    pub idle_polls: Counter,
    pub sleeps: Counter,
    /// Packets sealed into a tunnel / opened from one.
    pub encrypted: Counter,
    pub decrypted: Counter,
    /// Packets passed to the worker that owns their SA, and received that way.
    pub handed_off: Counter,
    pub handoffs_received: Counter,
    /// NAT keepalives (RFC 3948 §2.3) received on UDP 4500.
    pub nat_keepalives: Counter,
    /// Copies sent on a second path by a replicating policy.
    pub replicated: Counter,
    /// FEC: parity packets sent; packets rebuilt from a parity and accepted; the
    /// originals that came after their group was rebuilt (late, not lost).
    pub fec_parity: Counter,
    pub fec_rebuilt: Counter,
    pub fec_late: Counter,
    /// Spread packets that waited in a reorder buffer for an earlier one, and gaps given up
    /// (the missing packet did not come in time).
    pub reorder_held: Counter,
    pub reorder_gaps: Counter,
    /// Tenant packets sent and received in clear VXLAN on trusted circuits (differential
    /// encryption).
    pub clear_out: Counter,
    pub clear_in: Counter,
    drops: [Counter; DropReason::ALL.len()],
}

impl WorkerCounters {
    #[inline]
    pub fn drop(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].add(n);
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            rx_packets: self.rx_packets.get(),
            tx_packets: self.tx_packets.get(),
            forwarded: self.forwarded.get(),
            local_replies: self.local_replies.get(),
            solicitations: self.solicitations.get(),
            neighbors_learned: self.neighbors_learned.get(),
            busy_polls: self.busy_polls.get(),
            idle_polls: self.idle_polls.get(),
            sleeps: self.sleeps.get(),
            encrypted: self.encrypted.get(),
            decrypted: self.decrypted.get(),
            handed_off: self.handed_off.get(),
            handoffs_received: self.handoffs_received.get(),
            nat_keepalives: self.nat_keepalives.get(),
            replicated: self.replicated.get(),
            fec_parity: self.fec_parity.get(),
            fec_rebuilt: self.fec_rebuilt.get(),
            fec_late: self.fec_late.get(),
            reorder_held: self.reorder_held.get(),
            reorder_gaps: self.reorder_gaps.get(),
            clear_out: self.clear_out.get(),
            clear_in: self.clear_in.get(),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_owned(), self.dropped(*r)))
                .collect(),
        }
    }
}

/// A plain copy of a worker's counters, for the management API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CounterSnapshot {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub forwarded: u64,
    pub local_replies: u64,
    pub solicitations: u64,
    pub neighbors_learned: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub sleeps: u64,
    #[serde(default)]
    pub encrypted: u64,
    #[serde(default)]
    pub decrypted: u64,
    #[serde(default)]
    pub handed_off: u64,
    #[serde(default)]
    pub handoffs_received: u64,
    #[serde(default)]
    pub nat_keepalives: u64,
    pub replicated: u64,
    pub fec_parity: u64,
    pub fec_rebuilt: u64,
    pub fec_late: u64,
    pub reorder_held: u64,
    pub reorder_gaps: u64,
    pub clear_out: u64,
    pub clear_in: u64,
    /// Drop reason name -> count, in a fixed order.
    pub drops: Vec<(String, u64)>,
}

impl CounterSnapshot {
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// Sums several workers' snapshots.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a CounterSnapshot>) -> CounterSnapshot {
        let mut total = CounterSnapshot::default();
        for s in all {
            total.rx_packets += s.rx_packets;
            total.tx_packets += s.tx_packets;
            total.forwarded += s.forwarded;
            total.local_replies += s.local_replies;
            total.solicitations += s.solicitations;
            total.neighbors_learned += s.neighbors_learned;
            total.busy_polls += s.busy_polls;
            total.idle_polls += s.idle_polls;
            total.sleeps += s.sleeps;
            total.encrypted += s.encrypted;
            total.decrypted += s.decrypted;
            total.handed_off += s.handed_off;
            total.handoffs_received += s.handoffs_received;
            total.nat_keepalives += s.nat_keepalives;
            total.replicated += s.replicated;
            total.fec_parity += s.fec_parity;
            total.fec_rebuilt += s.fec_rebuilt;
            total.fec_late += s.fec_late;
            total.reorder_held += s.reorder_held;
            total.reorder_gaps += s.reorder_gaps;
            total.clear_out += s.clear_out;
            total.clear_in += s.clear_in;
            if total.drops.is_empty() {
                total.drops = s.drops.clone();
            } else {
                for ((_, t), (_, n)) in total.drops.iter_mut().zip(&s.drops) {
                    *t += n;
                }
            }
        }
        total
    }
}
