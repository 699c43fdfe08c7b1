//! The other sites, as the routes BGP selected describe them: for each remote edge (its
//! loopback) and tenant (a Route Target), the edge's WAN circuits, its X25519 public key and
//! the tenant's client prefixes behind it.
//!
//! Two kinds of route feed it (draft-ietf-bess-bgp-sdwan-usage §5.3): the underlay routes
//! (an SD-WAN NLRI of SAFI 74, or its VPN-IPv4/IPv6 fallback: the loopback's host route) whose
//! Tunnel Encapsulation attribute lists the circuits and the key; and the client routes
//! (VPN-IPv4/IPv6) whose next hop is the loopback. They are joined by the loopback (recursive
//! next-hop resolution, RFC 9012 §8) and the Route Target. Each route is remembered by an id
//! the RIB gives it, so that a withdrawal takes back exactly what the route brought.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::bgp::wire::tunnel_encap::TunnelEncap;

/// A tenant as BGP names it: the 8 bytes of its Route Target extended community.
pub type Rt = [u8; 8];

/// A remote site's tenant: the key of [`Sites`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteKey {
    pub node: IpAddr,
    pub rt: Rt,
}

/// One WAN circuit of a remote edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteCircuit {
    /// The transport domain (`bgp.transports`): a path pairs circuits of one domain.
    pub transport: u8,
    /// Where the edge is reached on it (the NAT's outside address when there is one).
    pub address: IpAddr,
    pub port: u16,
}

/// A remote edge's public key for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteKey {
    pub generation: u32,
    pub public: [u8; 32],
}

/// What is known of one remote site's tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSite {
    pub circuits: Vec<RemoteCircuit>,
    pub key: Option<RemoteKey>,
    pub prefixes: BTreeSet<IpNet>,
}

impl TenantSite {
    /// Whether traffic can flow: a key and at least one circuit.
    pub fn usable(&self) -> bool {
        self.key.is_some() && !self.circuits.is_empty()
    }
}

/// What one route brought.
#[derive(Debug, Clone)]
enum Contribution {
    Underlay {
        keys: Vec<SiteKey>,
        circuits: Vec<RemoteCircuit>,
        key: Option<RemoteKey>,
    },
    Prefix {
        keys: Vec<SiteKey>,
        prefix: IpNet,
    },
}

/// The site table.
#[derive(Debug, Default)]
pub struct Sites {
    by_route: HashMap<u64, Contribution>,
    /// Per site: the routes that contribute to it (several underlay routes may: one per
    /// circuit with SAFI 74).
    sites: BTreeMap<SiteKey, BTreeSet<u64>>,
    /// Site tenants changed since the last [`take_changed`](Self::take_changed).
    changed: BTreeSet<SiteKey>,
}

impl Sites {
    /// An underlay route `route` (an id the RIB gives it, stable until it is withdrawn) for
    /// `node`, in the tenants `rts`, with its Tunnel Encapsulation attribute. A route that
    /// was known before is replaced.
    pub fn underlay(&mut self, route: u64, node: IpAddr, rts: &[Rt], encap: &TunnelEncap) {
        let mut circuits = Vec::new();
        let mut key = None;
        for c in encap.sdwan_circuits() {
            let p = c.extended_port;
            circuits.push(RemoteCircuit {
                transport: p.transport_network_id,
                address: p.public_addr,
                port: p.public_port,
            });
            if key.is_none() {
                if let (Some(k), Some(ids)) = (c.public_key.and_then(|k| k.x25519_key()), c.sa_ids)
                {
                    if let Some(&generation) = ids.first() {
                        key = Some(RemoteKey {
                            generation,
                            public: k,
                        });
                    }
                }
            }
        }
        circuits.sort();
        circuits.dedup();
        let keys = rts.iter().map(|&rt| SiteKey { node, rt }).collect();
        self.put(
            route,
            Contribution::Underlay {
                keys,
                circuits,
                key,
            },
        );
    }

    /// A client route: `prefix` behind `next_hop` (a site's loopback) in the tenants `rts`.
    pub fn prefix(&mut self, route: u64, prefix: IpNet, next_hop: IpAddr, rts: &[Rt]) {
        let keys = rts
            .iter()
            .map(|&rt| SiteKey { node: next_hop, rt })
            .collect();
        self.put(route, Contribution::Prefix { keys, prefix });
    }

    /// The route is gone (withdrawn, or its session ended without graceful restart).
    pub fn withdraw(&mut self, route: u64) {
        if let Some(old) = self.by_route.remove(&route) {
            self.detach(route, &old);
        }
    }

    fn put(&mut self, route: u64, c: Contribution) {
        if let Some(old) = self.by_route.remove(&route) {
            self.detach(route, &old);
        }
        let keys = match &c {
            Contribution::Underlay { keys, .. } | Contribution::Prefix { keys, .. } => keys,
        };
        for k in keys {
            self.sites.entry(*k).or_default().insert(route);
            self.changed.insert(*k);
        }
        self.by_route.insert(route, c);
    }

    fn detach(&mut self, route: u64, old: &Contribution) {
        let keys = match old {
            Contribution::Underlay { keys, .. } | Contribution::Prefix { keys, .. } => keys,
        };
        for k in keys {
            if let Some(set) = self.sites.get_mut(k) {
                set.remove(&route);
                if set.is_empty() {
                    self.sites.remove(k);
                }
            }
            self.changed.insert(*k);
        }
    }

    /// What is known of `key` now (`None`: nothing any more).
    pub fn get(&self, key: &SiteKey) -> Option<TenantSite> {
        let routes = self.sites.get(key)?;
        let mut site = TenantSite::default();
        for r in routes {
            match self.by_route.get(r) {
                Some(Contribution::Underlay {
                    circuits, key: k, ..
                }) => {
                    site.circuits.extend(circuits.iter().cloned());
                    // Of several underlay routes, the newest key generation counts.
                    if let Some(k) = k {
                        if site.key.is_none_or(|cur| k.generation > cur.generation) {
                            site.key = Some(*k);
                        }
                    }
                }
                Some(Contribution::Prefix { prefix, .. }) => {
                    site.prefixes.insert(*prefix);
                }
                None => {}
            }
        }
        site.circuits.sort();
        site.circuits.dedup();
        Some(site)
    }

    /// Every site tenant known.
    pub fn keys(&self) -> impl Iterator<Item = &SiteKey> {
        self.sites.keys()
    }

    /// The site tenants that changed since the last call.
    pub fn take_changed(&mut self) -> BTreeSet<SiteKey> {
        std::mem::take(&mut self.changed)
    }

    /// Sites (loopbacks) known, and site tenants.
    pub fn counts(&self) -> (usize, usize) {
        let nodes: BTreeSet<IpAddr> = self.sites.keys().map(|k| k.node).collect();
        (nodes.len(), self.sites.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::tunnel_encap::WanCircuitAdvert;

    const BLUE: Rt = [0, 2, 0xfd, 0xe8, 0, 0, 0x03, 0xe9];
    const RED: Rt = [0, 2, 0xfd, 0xe8, 0, 0, 0x03, 0xea];

    fn encap(addrs: &[(&str, u8)], key: u8, generation: u32) -> TunnelEncap {
        let circuits: Vec<WanCircuitAdvert> = addrs
            .iter()
            .map(|(a, t)| {
                WanCircuitAdvert::new(a.parse().unwrap(), *t, [key; 32], 3600, generation)
            })
            .collect();
        TunnelEncap::sdwan_edge(&circuits)
    }

    #[test]
    fn underlay_and_prefixes_join_by_loopback_and_route_target() {
        let mut s = Sites::default();
        let lo: IpAddr = "10.255.0.2".parse().unwrap();
        s.underlay(
            1,
            lo,
            &[BLUE],
            &encap(&[("198.18.1.2", 1), ("198.18.2.2", 2)], 7, 5),
        );
        s.prefix(2, "10.2.0.0/24".parse().unwrap(), lo, &[BLUE]);
        s.prefix(3, "10.9.0.0/24".parse().unwrap(), lo, &[RED]);
        let blue = s.get(&SiteKey { node: lo, rt: BLUE }).unwrap();
        assert!(blue.usable());
        assert_eq!(blue.circuits.len(), 2);
        assert_eq!(blue.key.unwrap().generation, 5);
        assert_eq!(blue.key.unwrap().public, [7; 32]);
        assert_eq!(
            blue.prefixes
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["10.2.0.0/24"]
        );
        // Red has a prefix but no underlay route yet: not usable.
        let red = s.get(&SiteKey { node: lo, rt: RED }).unwrap();
        assert!(!red.usable());
        assert_eq!(s.take_changed().len(), 2);
        assert!(s.take_changed().is_empty());
    }

    #[test]
    fn a_replaced_route_and_a_withdrawal_take_back_what_they_brought() {
        let mut s = Sites::default();
        let lo: IpAddr = "10.255.0.3".parse().unwrap();
        let key = SiteKey { node: lo, rt: BLUE };
        s.underlay(1, lo, &[BLUE], &encap(&[("198.18.1.3", 1)], 1, 1));
        s.prefix(2, "10.3.0.0/24".parse().unwrap(), lo, &[BLUE]);
        // Rekey: the same route again with a new key.
        s.underlay(1, lo, &[BLUE], &encap(&[("198.18.1.3", 1)], 2, 2));
        assert_eq!(s.get(&key).unwrap().key.unwrap().generation, 2);
        s.withdraw(2);
        assert!(s.get(&key).unwrap().prefixes.is_empty());
        s.withdraw(1);
        assert_eq!(s.get(&key), None);
        assert!(s.take_changed().contains(&key));
        assert_eq!(s.counts(), (0, 0));
    }
}
