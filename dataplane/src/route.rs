//! Longest-prefix-match routing tables for IPv4 and IPv6.
//!
//! One hash map per prefix length in use, probed from the longest length down. Branch sites
//! carry a few hundred to a few thousand prefixes in a handful of distinct lengths, so a lookup
//! is two or three probes. Tables are built by the control thread and published whole; the
//! data plane only reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

use crate::hash::FastMap;

/// Where a route sends a packet: out of a port, to a next hop (or, for a connected route, to
/// the destination itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NextHop {
    pub port: u16,
    pub via: Option<IpAddr>,
}

/// Where a tenant's route sends a packet: out of one of the tenant's LAN ports, or into a
/// tunnel to a peer (`Tables::tunnels[tunnel]`), over one circuit of it or spread over all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantHop {
    Local(NextHop),
    Tunnel {
        tunnel: u16,
        /// Index into the tunnel's circuits; `None`: a flow hash picks one.
        circuit: Option<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSource {
    Connected,
    Static,
    /// Learned from another site through BGP.
    Bgp,
}

/// One routing table entry as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteEntry<H = NextHop> {
    pub prefix: IpNet,
    pub next_hop: H,
    pub source: RouteSource,
}

#[derive(Debug, Clone, Default)]
struct Lpm<K, H> {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// `by_length[len]`: masked address -> next hop.
    by_length: Vec<FastMap<K, H>>,
}

trait Key: Copy + Eq + std::hash::Hash + Default {
    const BITS: u8;
    fn mask(self, len: u8) -> Self;
}

impl Key for u32 {
    const BITS: u8 = 32;
    #[inline]
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len)))
        }
    }
}

impl Key for u128 {
    const BITS: u8 = 128;
    #[inline]
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len)))
        }
    }
}

impl<K: Key, H: Copy> Lpm<K, H> {
    fn new() -> Self {
        Self {
            lengths: Vec::new(),
            by_length: (0..=K::BITS).map(|_| FastMap::default()).collect(),
        }
    }

    /// Inserts or replaces; the first route for a prefix wins only if `replace` is false.
    fn insert(&mut self, addr: K, len: u8, hop: H, replace: bool) {
        let map = &mut self.by_length[usize::from(len)];
        let key = addr.mask(len);
        if replace || !map.contains_key(&key) {
            map.insert(key, hop);
        }
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    #[inline]
    fn lookup(&self, addr: K) -> Option<&H> {
        for &len in &self.lengths {
            if let Some(hop) = self.by_length[usize::from(len)].get(&addr.mask(len)) {
                return Some(hop);
            }
        }
        None
    }
}

/// The routing table of one routing domain: the underlay (`H` = [`NextHop`]) or a tenant
/// (`H` = [`TenantHop`]).
#[derive(Debug, Clone)]
pub struct RouteTable<H = NextHop> {
    v4: Lpm<u32, H>,
    v6: Lpm<u128, H>,
    entries: Vec<RouteEntry<H>>,
    /// Where each prefix is in `entries` (a table of learned routes has thousands).
    index: crate::hash::FastMap<IpNet, usize>,
}

impl<H: Copy> Default for RouteTable<H> {
    fn default() -> Self {
        Self {
            v4: Lpm::new(),
            v6: Lpm::new(),
            entries: Vec::new(),
            index: Default::default(),
        }
    }
}

impl<H: Copy> RouteTable<H> {
    /// Adds a route. A later route for the same prefix replaces an earlier one, except that a
    /// connected route is never replaced by a static one.
    pub fn insert(&mut self, prefix: IpNet, next_hop: H, source: RouteSource) {
        let prefix = prefix.trunc();
        if let Some(existing) = self
            .index
            .get(&prefix)
            .and_then(|&i| self.entries.get_mut(i))
        {
            // Connected beats configured beats learned.
            let rank = |s: RouteSource| match s {
                RouteSource::Connected => 0,
                RouteSource::Static => 1,
                RouteSource::Bgp => 2,
            };
            if rank(source) > rank(existing.source) {
                return;
            }
            *existing = RouteEntry {
                prefix,
                next_hop,
                source,
            };
        } else {
            self.index.insert(prefix, self.entries.len());
            self.entries.push(RouteEntry {
                prefix,
                next_hop,
                source,
            });
        }
        match prefix {
            IpNet::V4(n) => self
                .v4
                .insert(u32::from(n.network()), n.prefix_len(), next_hop, true),
            IpNet::V6(n) => self
                .v6
                .insert(u128::from(n.network()), n.prefix_len(), next_hop, true),
        }
    }

    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Option<&H> {
        self.v4.lookup(u32::from(dst))
    }

    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr) -> Option<&H> {
        self.v6.lookup(u128::from(dst))
    }

    pub fn lookup(&self, dst: IpAddr) -> Option<&H> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
    }

    /// Every entry, in insertion order, for display.
    pub fn entries(&self) -> &[RouteEntry<H>] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(port: u16) -> NextHop {
        NextHop { port, via: None }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.insert("0.0.0.0/0".parse().unwrap(), hop(0), RouteSource::Static);
        t.insert("10.0.0.0/8".parse().unwrap(), hop(1), RouteSource::Static);
        t.insert("10.2.0.0/24".parse().unwrap(), hop(2), RouteSource::Static);
        t.insert("10.2.0.7/32".parse().unwrap(), hop(3), RouteSource::Static);
        let port = |a: &str| t.lookup(a.parse().unwrap()).map(|h| h.port);
        assert_eq!(port("10.2.0.7"), Some(3));
        assert_eq!(port("10.2.0.8"), Some(2));
        assert_eq!(port("10.3.0.1"), Some(1));
        assert_eq!(port("192.0.2.1"), Some(0));
        assert_eq!(port("::1"), None);
    }

    #[test]
    fn ipv6_and_host_bits() {
        let mut t = RouteTable::default();
        t.insert("fd00:2::/64".parse().unwrap(), hop(1), RouteSource::Static);
        t.insert("fd00::/16".parse().unwrap(), hop(2), RouteSource::Static);
        assert_eq!(
            t.lookup("fd00:2::99".parse().unwrap()).map(|h| h.port),
            Some(1)
        );
        assert_eq!(
            t.lookup("fd00:3::99".parse().unwrap()).map(|h| h.port),
            Some(2)
        );
        assert_eq!(t.lookup("fe80::1".parse().unwrap()), None);
    }

    #[test]
    fn connected_not_overridden_by_static() {
        let mut t = RouteTable::default();
        t.insert(
            "10.1.0.0/24".parse().unwrap(),
            hop(0),
            RouteSource::Connected,
        );
        t.insert("10.1.0.0/24".parse().unwrap(), hop(5), RouteSource::Static);
        assert_eq!(
            t.lookup("10.1.0.9".parse().unwrap()).map(|h| h.port),
            Some(0)
        );
        assert_eq!(t.entries().len(), 1);
    }
}
