//! Application steering policies: which packets of a tenant a policy takes (prefixes,
//! protocol, ports, DSCP), the SLA its paths must meet, and how its packets travel (best path,
//! spreading, replication, FEC, local breakout, drop). The first policy that matches a packet
//! decides; a packet no policy matches follows its route.
//!
//! The choice of a policy's path per peer is made by the probe worker from the paths' figures
//! ([`choose_class_path`], with hysteresis and stickiness) and published on the
//! [`crate::multipath::PathBoard`]; the workers only read it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::pathmon::PathState;
use crate::wire::{ethernet, ipv4, ipv6};

/// How a policy's packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Best,
    Spread,
    Replicate,
    Fec(u8),
    Breakout,
    Drop,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Best => "best",
            Mode::Spread => "spread",
            Mode::Replicate => "replicate",
            Mode::Fec(_) => "fec",
            Mode::Breakout => "breakout",
            Mode::Drop => "drop",
        }
    }

    /// Whether the policy's traffic has a second path (a copy, or the parity packets).
    pub fn has_second(self) -> bool {
        matches!(self, Mode::Replicate | Mode::Fec(_))
    }
}

/// The limits of an SLA class (`None`: not checked).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sla {
    pub max_rtt_ns: Option<u64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ns: Option<u64>,
}

/// A path's figures as the SLA check reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathFigures {
    pub state: PathState,
    /// Down for less than [`SETTLE_NS`]: the packets already avoid it (the data plane skips
    /// paths that are down), but a class keeps it as its path in case it was a false alarm.
    pub fresh_down: bool,
    /// Median of the last few RTTs.
    pub rtt_ns: Option<u64>,
    pub loss_pct: Option<f64>,
    pub jitter_ns: u64,
}

/// How long a class keeps a path that went down as its path (see [`PathFigures::fresh_down`]).
pub const SETTLE_NS: u64 = 1_000_000_000;

/// A path must be this much better than a limit to be chosen, and leaves the SLA only past
/// the limit itself: a path near a limit does not make a class flap.
pub const HYSTERESIS: f64 = 0.8;

impl Sla {
    /// Whether `f` meets the limits scaled by `factor` (1 to stay, [`HYSTERESIS`] to enter).
    /// A path with no RTT figure yet does not meet a latency limit.
    pub fn met_by(&self, f: &PathFigures, factor: f64) -> bool {
        if f.state == PathState::Down {
            return false;
        }
        let within = |v: f64, max: f64| v <= max * factor;
        self.max_rtt_ns
            .is_none_or(|m| f.rtt_ns.is_some_and(|r| within(r as f64, m as f64)))
            && self
                .max_loss_pct
                .is_none_or(|m| f.loss_pct.is_none_or(|l| within(l, m)))
            && self
                .max_jitter_ns
                .is_none_or(|m| within(f.jitter_ns as f64, m as f64))
    }
}

/// A policy as the data plane runs it.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub tenant: u16,
    pub src: Vec<IpNet>,
    pub dst: Vec<IpNet>,
    pub protocol: Option<u8>,
    pub src_ports: Vec<(u16, u16)>,
    pub dst_ports: Vec<(u16, u16)>,
    /// Bit `d`: DSCP `d` matches; 0 matches every DSCP.
    pub dscp: u64,
    pub sla_name: Option<String>,
    pub sla: Option<Sla>,
    pub mode: Mode,
    /// Our circuits (port indexes) in order of preference; empty: all, in path order.
    pub circuits: Vec<u16>,
    /// `spread`: the weight of each of `circuits` (empty: 1 each).
    pub weights: Vec<u32>,
    /// False: on a trusted circuit, send in clear VXLAN (differential encryption).
    pub encrypt: bool,
}

/// What policies match on, read from a frame (Ethernet + IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// 0 when the protocol has no ports (or a later fragment).
    pub src_port: u16,
    pub dst_port: u16,
    pub dscp: u8,
}

impl FlowKey {
    /// The key of an IPv4 or IPv6 frame; `None` if it is neither or too short.
    pub fn of(d: &[u8]) -> Option<FlowKey> {
        let ip = d.get(ethernet::HEADER_LEN..)?;
        let (src, dst, protocol, l4, dscp, ports_ok) = match ip.first()? >> 4 {
            4 => {
                let p = ipv4::Packet::new_checked(ip).ok()?;
                (
                    IpAddr::V4(p.src()),
                    IpAddr::V4(p.dst()),
                    p.protocol(),
                    p.header_len(),
                    ip[1] >> 2,
                    !p.is_later_fragment(),
                )
            }
            6 => {
                let p = ipv6::Packet::new_checked(ip).ok()?;
                let tc = (ip[0] << 4) | (ip[1] >> 4);
                (
                    IpAddr::V6(p.src()),
                    IpAddr::V6(p.dst()),
                    ip[6],
                    ipv6::HEADER_LEN,
                    tc >> 2,
                    true,
                )
            }
            _ => return None,
        };
        let (src_port, dst_port) = match (protocol, ports_ok, ip.get(l4..l4 + 4)) {
            (6 | 17, true, Some(p)) => (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ),
            _ => (0, 0),
        };
        Some(FlowKey {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            dscp,
        })
    }
}

fn in_ranges(p: u16, ranges: &[(u16, u16)]) -> bool {
    ranges.is_empty() || ranges.iter().any(|&(lo, hi)| lo <= p && p <= hi)
}

fn in_prefixes(a: IpAddr, nets: &[IpNet]) -> bool {
    nets.is_empty() || nets.iter().any(|n| n.contains(&a))
}

impl Policy {
    pub fn matches(&self, tenant: u16, k: &FlowKey) -> bool {
        self.tenant == tenant
            && self.protocol.is_none_or(|p| p == k.protocol)
            && (self.dscp == 0 || self.dscp & (1 << k.dscp) != 0)
            && in_ranges(k.dst_port, &self.dst_ports)
            && in_ranges(k.src_port, &self.src_ports)
            && in_prefixes(k.dst, &self.dst)
            && in_prefixes(k.src, &self.src)
    }
}

/// The first policy of tenant `tenant` that matches the frame `d`.
#[inline]
pub fn classify(policies: &[Policy], tenant: u16, d: &[u8]) -> Option<u16> {
    classify_key(policies, tenant, d).map(|(p, _)| p)
}

/// [`classify`], and the flow's key.
#[inline]
pub fn classify_key(policies: &[Policy], tenant: u16, d: &[u8]) -> Option<(u16, FlowKey)> {
    if policies.is_empty() {
        return None;
    }
    let k = FlowKey::of(d)?;
    policies
        .iter()
        .position(|p| p.matches(tenant, &k))
        .map(|i| (i as u16, k))
}

/// Slots of a worker's flow table (direct-mapped; a newer flow takes an older one's slot).
pub const FLOW_SLOTS: usize = 1024;

/// A flow a policy steered, as a worker last saw it (`show flows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEntry {
    pub tenant: u16,
    pub key: FlowKey,
    pub policy: u16,
    pub tunnel: u16,
    pub path: u8,
    /// The copy's or the parity's path ([`NO_PATH`]: none).
    pub second: u8,
    pub packets: u64,
    /// The worker's tick (its housekeeping count, every 100 ms) when last seen.
    pub tick: u32,
}

/// A worker's recently steered flows. Recording one is a hash and a slot write; the table is
/// copied out for `show flows` now and then.
#[derive(Debug)]
pub struct FlowTable {
    slots: Box<[Option<FlowEntry>]>,
    /// Advanced by the worker every 100 ms.
    pub tick: u32,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self {
            slots: vec![None; FLOW_SLOTS].into_boxed_slice(),
            tick: 0,
        }
    }
}

fn flow_slot(tenant: u16, k: &FlowKey) -> usize {
    let fold = |a: IpAddr| -> u32 {
        match a {
            IpAddr::V4(v) => u32::from(v),
            IpAddr::V6(v) => {
                let o = v.octets();
                u32::from_be_bytes([o[12], o[13], o[14], o[15]])
                    ^ u32::from_be_bytes([o[8], o[9], o[10], o[11]])
            }
        }
    };
    let mut h = fold(k.src).wrapping_mul(0x9e37_79b1) ^ fold(k.dst);
    h = h.wrapping_mul(0x85eb_ca6b)
        ^ (u32::from(k.src_port) << 16 | u32::from(k.dst_port))
        ^ (u32::from(k.protocol) << 8)
        ^ u32::from(tenant);
    h = h.wrapping_mul(0x9e37_79b1);
    (h >> 22) as usize % FLOW_SLOTS
}

impl FlowTable {
    /// Records a packet of a steered flow.
    #[inline]
    pub fn record(
        &mut self,
        tenant: u16,
        key: &FlowKey,
        policy: u16,
        tunnel: u16,
        path: u8,
        second: u8,
    ) {
        let tick = self.tick;
        let slot = &mut self.slots[flow_slot(tenant, key)];
        match slot {
            Some(e) if e.tenant == tenant && e.key == *key => {
                e.packets += 1;
                e.tick = tick;
                e.policy = policy;
                e.tunnel = tunnel;
                e.path = path;
                e.second = second;
            }
            _ => {
                *slot = Some(FlowEntry {
                    tenant,
                    key: *key,
                    policy,
                    tunnel,
                    path,
                    second,
                    packets: 1,
                    tick,
                })
            }
        }
    }

    /// The flows seen in the last `ticks` ticks.
    pub fn recent(&self, ticks: u32) -> impl Iterator<Item = &FlowEntry> {
        let now = self.tick;
        self.slots
            .iter()
            .flatten()
            .filter(move |e| now.wrapping_sub(e.tick) <= ticks)
    }
}

/// No path chosen (yet): the packet's route decides.
pub const NO_PATH: u8 = u8::MAX;

/// The path of a policy's traffic to one peer, given the figures of the peer's paths and
/// which of them the policy may use, in its order of preference (`candidates`, path indexes):
/// - the current path (`current`) as long as it is up and meets the SLA (stickiness);
/// - else the most preferred candidate that meets the SLA with the hysteresis margin; else
///   one that meets it at all; else the usable candidate with the lowest RTT (the SLA cannot
///   be met: the least bad); else none.
pub fn choose_class_path(
    sla: Option<&Sla>,
    current: u8,
    candidates: &[usize],
    paths: &[PathFigures],
) -> u8 {
    let none = Sla::default();
    let sla = sla.unwrap_or(&none);
    let fig = |i: usize| paths.get(i);
    if current != NO_PATH
        && candidates.contains(&usize::from(current))
        && fig(usize::from(current)).is_some_and(|f| f.fresh_down || sla.met_by(f, 1.0))
    {
        return current;
    }
    for factor in [HYSTERESIS, 1.0] {
        if let Some(&i) = candidates
            .iter()
            .find(|&&i| fig(i).is_some_and(|f| sla.met_by(f, factor)))
        {
            return i as u8;
        }
    }
    candidates
        .iter()
        .filter(|&&i| fig(i).is_some_and(|f| f.state != PathState::Down))
        .min_by_key(|&&i| fig(i).and_then(|f| f.rtt_ns).unwrap_or(u64::MAX))
        .map_or(NO_PATH, |&i| i as u8)
}

/// A second path for a copy or the parity: the most preferred other candidate that meets the
/// SLA, else any other usable one.
pub fn choose_second_path(
    sla: Option<&Sla>,
    first: u8,
    candidates: &[usize],
    paths: &[PathFigures],
) -> u8 {
    let others: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| i != usize::from(first))
        .collect();
    choose_class_path(sla, NO_PATH, &others, paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pathmon::MS;

    fn up(rtt_ms: u64) -> PathFigures {
        PathFigures {
            state: PathState::Up,
            fresh_down: false,
            rtt_ns: Some(rtt_ms * MS),
            loss_pct: Some(0.0),
            jitter_ns: 0,
        }
    }

    const SLA50: Sla = Sla {
        max_rtt_ns: Some(50 * MS),
        max_loss_pct: Some(2.0),
        max_jitter_ns: None,
    };

    #[test]
    fn the_preferred_path_that_meets_the_sla_and_stickiness() {
        let paths = [up(10), up(20)];
        // Prefers path 1, then 0.
        assert_eq!(choose_class_path(Some(&SLA50), NO_PATH, &[1, 0], &paths), 1);
        // Path 1 gets 80 ms: the class moves to 0.
        let slow = [up(10), up(80)];
        assert_eq!(choose_class_path(Some(&SLA50), 1, &[1, 0], &slow), 0);
        // Path 1 recovers to 20 ms: the class stays on 0 (it still meets the SLA).
        assert_eq!(choose_class_path(Some(&SLA50), 0, &[1, 0], &paths), 0);
        // Without an SLA a class stays where it is while the path is up.
        assert_eq!(choose_class_path(None, 1, &[1, 0], &slow), 1);
    }

    #[test]
    fn hysteresis_keeps_a_path_near_the_limit_from_attracting_a_class() {
        // Path 1 at 45 ms meets 50 ms but not 40 (50 x 0.8): a class leaving path 0 prefers
        // a path with margin, though 1 is listed first.
        let mut paths = [up(90), up(45), up(30)];
        assert_eq!(choose_class_path(Some(&SLA50), 0, &[1, 2, 0], &paths), 2);
        // A class on path 1 stays there at 45 ms and leaves at 55 ms.
        assert_eq!(choose_class_path(Some(&SLA50), 1, &[1, 2, 0], &paths), 1);
        paths[1] = up(55);
        assert_eq!(choose_class_path(Some(&SLA50), 1, &[1, 2, 0], &paths), 2);
    }

    #[test]
    fn down_paths_loss_and_no_path_meeting_the_sla() {
        let mut paths = [up(10), up(20)];
        paths[0].state = PathState::Down;
        paths[0].fresh_down = true;
        assert_eq!(
            choose_class_path(Some(&SLA50), 0, &[0, 1], &paths),
            0,
            "just down: kept (the packets go elsewhere meanwhile)"
        );
        assert_eq!(choose_class_path(Some(&SLA50), 1, &[0, 1], &paths), 1);
        paths[0].fresh_down = false;
        assert_eq!(choose_class_path(Some(&SLA50), 0, &[0, 1], &paths), 1);
        paths[1].loss_pct = Some(5.0);
        // Nothing meets it: the least bad usable path.
        assert_eq!(choose_class_path(Some(&SLA50), 0, &[0, 1], &paths), 1);
        paths[1].state = PathState::Down;
        assert_eq!(choose_class_path(Some(&SLA50), 0, &[0, 1], &paths), NO_PATH);
        // Not a candidate: never chosen.
        assert_eq!(choose_class_path(None, NO_PATH, &[1], &[up(1), up(2)]), 1);
        assert_eq!(choose_second_path(None, 1, &[1, 0], &[up(1), up(2)]), 0);
        assert_eq!(choose_second_path(None, 1, &[1], &[up(1), up(2)]), NO_PATH);
    }

    fn frame(proto: u8, sport: u16, dport: u16, tos: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        f[12] = 0x08;
        ipv4::write_header(
            &mut f[14..],
            28,
            64,
            proto,
            "10.1.0.2".parse().unwrap(),
            "10.2.0.9".parse().unwrap(),
        );
        f[15] = tos;
        let c = crate::wire::checksum::checksum(&{
            let mut h = f[14..34].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn policy(name: &str) -> Policy {
        Policy {
            name: name.into(),
            tenant: 0,
            src: Vec::new(),
            dst: Vec::new(),
            protocol: None,
            src_ports: Vec::new(),
            dst_ports: Vec::new(),
            dscp: 0,
            sla_name: None,
            sla: None,
            mode: Mode::Best,
            circuits: Vec::new(),
            weights: Vec::new(),
            encrypt: true,
        }
    }

    #[test]
    fn classification_takes_the_first_match() {
        let voice = Policy {
            protocol: Some(17),
            dst_ports: vec![(16384, 32767)],
            dscp: 1 << 46,
            ..policy("voice")
        };
        let web = Policy {
            protocol: Some(6),
            dst_ports: vec![(443, 443)],
            dst: vec!["10.2.0.0/24".parse().unwrap()],
            ..policy("web")
        };
        let other_tenant = Policy {
            tenant: 1,
            ..policy("x")
        };
        let all = Policy {
            src: vec!["10.1.0.0/16".parse().unwrap()],
            ..policy("rest")
        };
        let ps = [other_tenant, voice, web, all];
        let ef = 46 << 2;
        assert_eq!(classify(&ps, 0, &frame(17, 5000, 20000, ef)), Some(1));
        assert_eq!(
            classify(&ps, 0, &frame(17, 5000, 20000, 0)),
            Some(3),
            "no EF: not voice"
        );
        assert_eq!(classify(&ps, 0, &frame(17, 5000, 40000, ef)), Some(3));
        assert_eq!(classify(&ps, 0, &frame(6, 5000, 443, 0)), Some(2));
        assert_eq!(classify(&ps, 1, &frame(6, 5000, 443, 0)), Some(0));
        assert_eq!(classify(&ps[1..3], 0, &frame(1, 0, 0, 0)), None);
        assert_eq!(classify(&[], 0, &frame(1, 0, 0, 0)), None);
        assert_eq!(classify(&ps, 0, &[0u8; 20]), None, "not IP");
    }
}
