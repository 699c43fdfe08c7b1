//! A simulated network of edges for the rekey tests: each edge has a [`KeyManager`], a fake
//! data plane (the SAs it was last told to hold) and a fake BGP that delivers advertisements
//! after a delay per direction. Traffic flows every tick; every packet is checked when it
//! arrives: an inbound SA with its SPI and key must be installed at the receiver at that
//! moment, or the packet counts as lost. Packets alternate between a fast and a slow path,
//! so they also arrive out of order, as they do over several circuits.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::manager::{Dir, HookArgs};
use super::*;

/// A seeded generator (xorshift64*): deterministic keys and timers in tests. Not for keys
/// that protect anything.
pub(crate) struct TestRng {
    state: u64,
    /// Every 32-byte draw (private key seeds), so tests can look for them in `Debug` output.
    pub log: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng {
            state: seed.max(1),
            log: Arc::default(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl RandomSource for TestRng {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), KeyError> {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if out.len() == 32 {
            self.log.lock().unwrap().push(out.to_vec());
        }
        Ok(())
    }
}

pub(crate) const TENANT: u32 = 5001;
const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

pub(crate) fn lab_config() -> KeyConfig {
    KeyConfig {
        rotate_every: Duration::from_secs(3600),
        grace: Duration::from_secs(8),
        switch_after: Duration::from_secs(2),
        suite: Suite::Aes128Gcm16,
    }
}

fn loopback(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
}

struct Edge {
    lo: IpAddr,
    km: KeyManager,
    tenants: Vec<u32>,
    /// The fake data plane: what `SasChanged` last published, by (peer, tenant).
    installed: BTreeMap<(IpAddr, u32), PairSas>,
    /// Every 32-byte random draw of this edge's managers.
    rng_log: Arc<Mutex<Vec<Vec<u8>>>>,
}

enum Msg {
    Key { generation: u32, public: [u8; 32] },
    Gone,
}

struct Update {
    at: Instant,
    from: usize,
    to: usize,
    tenant: u32,
    msg: Msg,
}

struct Packet {
    at: Instant,
    from: usize,
    to: usize,
    tenant: u32,
    spi: u32,
    keymat: Vec<u8>,
}

/// A lost packet: when it was found lost (seconds since the start), from, to, why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loss {
    pub at: f64,
    pub from: usize,
    pub to: usize,
    pub why: &'static str,
}

pub(crate) struct Sim {
    pub t0: Instant,
    pub now: Instant,
    tick: Duration,
    edges: Vec<Edge>,
    /// BGP propagation time, [from][to].
    pub bgp_delay: Vec<Vec<Duration>>,
    updates: Vec<Update>,
    packets: Vec<Packet>,
    /// (from, to, tenant): a packet each tick.
    pub flows: Vec<(usize, usize, u32)>,
    pub losses: Vec<Loss>,
    pub delivered: u64,
    sent: u64,
    /// Each time an edge's outbound SA to a peer took a new local generation: (seconds,
    /// edge, peer edge, tenant, local generation).
    pub switches: Vec<(f64, usize, usize, u32, u32)>,
}

impl Sim {
    /// Two edges with the same configuration and tenants, converged (every edge knows every
    /// other's keys) and with traffic both ways between them on the first tenant.
    pub fn pair(cfg: KeyConfig, tenants: &[u32], bgp_delay: Duration) -> Sim {
        Sim::new(&[cfg, cfg], tenants, bgp_delay)
    }

    /// One edge per configuration, otherwise as [`Sim::pair`].
    pub fn new(cfgs: &[KeyConfig], tenants: &[u32], bgp_delay: Duration) -> Sim {
        let n = cfgs.len();
        let t0 = Instant::now();
        let mut sim = Sim {
            t0,
            now: t0,
            tick: 10 * MS,
            edges: Vec::new(),
            bgp_delay: vec![vec![bgp_delay; n]; n],
            updates: Vec::new(),
            packets: Vec::new(),
            flows: Vec::new(),
            losses: Vec::new(),
            delivered: 0,
            sent: 0,
            switches: Vec::new(),
        };
        for (i, cfg) in cfgs.iter().enumerate() {
            let rng = TestRng::new(0x5eed_0000 + i as u64);
            let rng_log = rng.log.clone();
            let mut km = KeyManager::new(*cfg, loopback(i), rng).unwrap();
            for &t in tenants {
                km.add_tenant(t, t0).unwrap();
            }
            sim.edges.push(Edge {
                lo: loopback(i),
                km,
                tenants: tenants.to_vec(),
                installed: BTreeMap::new(),
                rng_log,
            });
        }
        for i in 0..n {
            sim.poll_edge(i);
        }
        sim.run_for(2 * S);
        sim.flows = vec![(0, 1, tenants[0]), (1, 0, tenants[0])];
        sim
    }

    pub fn secs(&self) -> f64 {
        (self.now - self.t0).as_secs_f64()
    }

    pub fn km(&mut self, i: usize) -> &mut KeyManager {
        &mut self.edges[i].km
    }

    pub fn lo(&self, i: usize) -> IpAddr {
        self.edges[i].lo
    }

    pub fn installed(&self, i: usize, peer: usize, tenant: u32) -> Option<&PairSas> {
        self.edges[i].installed.get(&(self.edges[peer].lo, tenant))
    }

    pub fn rng_log(&self, i: usize) -> Vec<Vec<u8>> {
        self.edges[i].rng_log.lock().unwrap().clone()
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// An operator rekey of the tenant at the edge, polled at once.
    pub fn rekey(&mut self, i: usize, tenant: u32) {
        let now = self.now;
        self.edges[i].km.rekey(tenant, now).unwrap();
        self.poll_edge(i);
    }

    /// The edge restarts: a new key manager (another seed), an empty data plane, and, as
    /// from its reflector, every other edge's current keys after the BGP delay.
    pub fn restart(&mut self, i: usize, seed: u64) {
        let now = self.now;
        let cfg = *self.edges[i].km.config();
        let rng = TestRng::new(seed);
        self.edges[i].rng_log = rng.log.clone();
        let mut km = KeyManager::new(cfg, self.edges[i].lo, rng).unwrap();
        for &t in &self.edges[i].tenants {
            km.add_tenant(t, now).unwrap();
        }
        self.edges[i].km = km;
        self.edges[i].installed.clear();
        self.updates.retain(|u| u.to != i);
        for j in 0..self.edges.len() {
            if j == i {
                continue;
            }
            for t in self.edges[j].tenants.clone() {
                if let Some((generation, public)) = self.edges[j].km.local_key(t) {
                    self.updates.push(Update {
                        at: now + self.bgp_delay[j][i],
                        from: j,
                        to: i,
                        tenant: t,
                        msg: Msg::Key { generation, public },
                    });
                }
            }
        }
        self.poll_edge(i);
    }

    /// The edge's routes for the tenant are withdrawn (delivered to the others after the
    /// BGP delay).
    pub fn withdraw(&mut self, i: usize, tenant: u32) {
        for j in 0..self.edges.len() {
            if j != i {
                self.updates.push(Update {
                    at: self.now + self.bgp_delay[i][j],
                    from: i,
                    to: j,
                    tenant,
                    msg: Msg::Gone,
                });
            }
        }
    }

    /// Re-advertises the edge's current key of the tenant.
    pub fn advertise(&mut self, i: usize, tenant: u32) {
        self.enqueue_advertisement(i, tenant);
    }

    fn step(&mut self) {
        self.now += self.tick;
        let now = self.now;

        // BGP, in order of delivery time (one propagation time per direction: in order per
        // session, as BGP is).
        self.updates.sort_by_key(|u| u.at);
        let due: Vec<Update> = {
            let split = self.updates.partition_point(|u| u.at <= now);
            self.updates.drain(..split).collect()
        };
        for u in due {
            let from = self.edges[u.from].lo;
            let km = &mut self.edges[u.to].km;
            match u.msg {
                Msg::Key { generation, public } => {
                    km.peer_key(from, u.tenant, generation, &public, now)
                        .expect("a valid key");
                }
                Msg::Gone => km.peer_gone(from, u.tenant, now),
            }
        }

        // Arrivals: decryptable by an SA installed at the receiver now?
        let (arrived, later): (Vec<Packet>, Vec<Packet>) = std::mem::take(&mut self.packets)
            .into_iter()
            .partition(|p| p.at <= now);
        self.packets = later;
        for p in arrived {
            let from_lo = self.edges[p.from].lo;
            let rx = &mut self.edges[p.to];
            let ok = rx.installed.get(&(from_lo, p.tenant)).is_some_and(|sas| {
                sas.inbound
                    .iter()
                    .any(|sa| sa.spi_base == p.spi & !0xf && sa.keymat[..] == p.keymat[..])
            });
            if ok {
                self.delivered += 1;
                rx.km.inbound_seen(from_lo, p.tenant, p.spi, now);
            } else {
                self.losses.push(Loss {
                    at: (now - self.t0).as_secs_f64(),
                    from: p.from,
                    to: p.to,
                    why: "no inbound SA",
                });
            }
        }

        for i in 0..self.edges.len() {
            self.poll_edge(i);
        }

        // Traffic.
        for (from, to, tenant) in self.flows.clone() {
            let to_lo = self.edges[to].lo;
            let out = self.edges[from]
                .installed
                .get(&(to_lo, tenant))
                .and_then(|s| s.outbound.clone());
            self.sent += 1;
            match out {
                Some(sa) => {
                    // Two paths: 5 ms and 70 ms; the sending worker varies (SPI + worker).
                    let slow = self.sent.is_multiple_of(2);
                    let delay = if slow { 70 * MS } else { 5 * MS };
                    self.packets.push(Packet {
                        at: now + delay,
                        from,
                        to,
                        tenant,
                        spi: sa.spi_base + (self.sent % 16) as u32,
                        keymat: sa.keymat.to_vec(),
                    });
                }
                None => self.losses.push(Loss {
                    at: (now - self.t0).as_secs_f64(),
                    from,
                    to,
                    why: "no outbound SA",
                }),
            }
        }
    }

    fn poll_edge(&mut self, i: usize) {
        let now = self.now;
        let events = self.edges[i].km.poll(now);
        if let Some(d) = self.edges[i].km.next_deadline() {
            assert!(d > now, "edge {i}: a deadline that poll did not act on");
        }
        for e in events {
            match e {
                KeyEvent::SasChanged { peer, tenant } => {
                    let edge = &mut self.edges[i];
                    let before = edge
                        .installed
                        .get(&(peer, tenant))
                        .and_then(|s| s.outbound.as_ref().map(|o| o.local_generation));
                    match edge.km.sas(peer, tenant) {
                        Some(sas) => {
                            assert!(sas.inbound.len() <= 4, "{sas:?}");
                            let mut spis: Vec<u32> =
                                sas.inbound.iter().map(|s| s.spi_base).collect();
                            spis.sort_unstable();
                            spis.dedup();
                            assert_eq!(spis.len(), sas.inbound.len(), "duplicate SPI");
                            let after = sas.outbound.as_ref().map(|o| o.local_generation);
                            if after != before {
                                if let (Some(g), Some(j)) =
                                    (after, self.edges.iter().position(|e| e.lo == peer))
                                {
                                    self.switches.push((
                                        (now - self.t0).as_secs_f64(),
                                        i,
                                        j,
                                        tenant,
                                        g,
                                    ));
                                }
                            }
                            self.edges[i].installed.insert((peer, tenant), sas);
                        }
                        None => {
                            edge.installed.remove(&(peer, tenant));
                        }
                    }
                }
                KeyEvent::Advertise { tenant } => self.enqueue_advertisement(i, tenant),
                KeyEvent::RotationFailed { tenant, error } => {
                    panic!("edge {i} tenant {tenant}: rotation failed: {error}")
                }
            }
        }
        // SPI bases unique among the inbound SAs from one peer, across tenants.
        let mut by_peer: BTreeMap<IpAddr, Vec<u32>> = BTreeMap::new();
        for ((peer, _), sas) in &self.edges[i].installed {
            by_peer
                .entry(*peer)
                .or_default()
                .extend(sas.inbound.iter().map(|s| s.spi_base));
        }
        for (peer, mut spis) in by_peer {
            let n = spis.len();
            spis.sort_unstable();
            spis.dedup();
            assert_eq!(spis.len(), n, "edge {i}: duplicate inbound SPI from {peer}");
        }
    }

    /// BGP advertisement of the edge's current key to every other edge. The key's inbound
    /// SAs must already be in the edge's data plane for every peer it knows.
    fn enqueue_advertisement(&mut self, i: usize, tenant: u32) {
        let Some((generation, public)) = self.edges[i].km.local_key(tenant) else {
            return;
        };
        for ((peer, t), sas) in &self.edges[i].installed {
            if *t == tenant && !self.edges[i].km.has_blocked(*peer, tenant) {
                assert!(
                    sas.inbound.iter().any(|s| s.local_generation == generation),
                    "edge {i} advertises generation {generation} before its inbound SA"
                );
            }
        }
        for j in 0..self.edges.len() {
            if j != i && self.edges[j].tenants.contains(&tenant) {
                self.updates.push(Update {
                    at: self.now + self.bgp_delay[i][j],
                    from: i,
                    to: j,
                    tenant,
                    msg: Msg::Key { generation, public },
                });
            }
        }
    }

    /// The local generation of the edge's outbound SA to the peer.
    pub fn sending_generation(&self, i: usize, peer: usize, tenant: u32) -> Option<u32> {
        self.installed(i, peer, tenant)
            .and_then(|s| s.outbound.as_ref().map(|o| o.local_generation))
    }

    pub fn assert_no_loss(&self) {
        assert!(
            self.losses.is_empty(),
            "{} of {} packets lost, first: {:?}",
            self.losses.len(),
            self.sent,
            &self.losses[..self.losses.len().min(5)]
        );
        assert!(self.delivered > 0);
    }
}

fn hook_args_match(a: &HookArgs, dir: Dir, local: u32, peer: u32) -> bool {
    a.dir == dir && a.local_generation == local && a.peer_generation == peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(sim: &Sim, i: usize, tenant: u32) -> u32 {
        sim.edges[i].km.local_key(tenant).unwrap().0
    }

    /// Edge 0 rotates every 20 s (edge 1 every hour), with traffic both ways, one way, and
    /// the other way, on two tenants: nothing is lost, and old keys go.
    #[test]
    fn one_side_rotates() {
        for flows in [
            vec![(0, 1, TENANT), (1, 0, TENANT)],
            vec![(0, 1, TENANT)],
            vec![(1, 0, TENANT)],
        ] {
            let fast = KeyConfig {
                rotate_every: Duration::from_secs(20),
                ..lab_config()
            };
            let mut sim = Sim::new(&[fast, lab_config()], &[TENANT, TENANT + 1], 300 * MS);
            sim.flows = flows;
            sim.flows.push((0, 1, TENANT + 1));
            let first = generation(&sim, 0, TENANT);
            sim.run_for(Duration::from_secs(100));
            let rotations = generation(&sim, 0, TENANT).wrapping_sub(first);
            // 100 s at 18-20 s a period.
            assert!((5..=6).contains(&rotations), "{rotations} rotations");
            assert_eq!(generation(&sim, 1, TENANT), generation(&sim, 1, TENANT));
            sim.assert_no_loss();
            assert!(sim.km(0).local_generations(TENANT).len() <= 2);
            // Every rotation was switched to, in order.
            let to_1: Vec<u32> = sim
                .switches
                .iter()
                .filter(|s| s.1 == 0 && s.2 == 1 && s.3 == TENANT)
                .map(|s| s.4)
                .collect();
            assert!(
                to_1.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
                "{to_1:?}"
            );
        }
    }

    /// Both edges rotate at the same instant, again and again: nothing is lost.
    #[test]
    fn both_rotate_at_once() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        let g0 = generation(&sim, 0, TENANT);
        let g1 = generation(&sim, 1, TENANT);
        for _ in 0..4 {
            sim.rekey(0, TENANT);
            sim.rekey(1, TENANT);
            sim.run_for(Duration::from_secs(12));
        }
        assert_eq!(generation(&sim, 0, TENANT), g0.wrapping_add(4));
        assert_eq!(generation(&sim, 1, TENANT), g1.wrapping_add(4));
        sim.assert_no_loss();
        // And with each edge's BGP slower one way than the other.
        sim.bgp_delay[0][1] = 1500 * MS;
        sim.bgp_delay[1][0] = 100 * MS;
        for _ in 0..3 {
            sim.rekey(0, TENANT);
            sim.rekey(1, TENANT);
            sim.run_for(Duration::from_secs(12));
        }
        sim.assert_no_loss();
    }

    /// BGP slower than `switch_after` (3.5 s against 2 s). With traffic one way, the sender
    /// switches at `switch_after`, before the peer has its key: packets are lost until the
    /// peer learns it (the documented limit). With traffic both ways, the peer's packets to
    /// the old key hold the switch back until its first packet to the new key: no loss.
    #[test]
    fn bgp_slower_than_switch_after() {
        // One way: a loss window from switch_after to the BGP delay.
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        sim.flows = vec![(0, 1, TENANT)];
        sim.bgp_delay[0][1] = 3500 * MS;
        let t = sim.secs();
        sim.rekey(0, TENANT);
        sim.run_for(Duration::from_secs(15));
        assert!(
            !sim.losses.is_empty(),
            "expected the documented loss window"
        );
        for l in &sim.losses {
            assert!(
                l.at >= t + 2.0 && l.at <= t + 3.5 + 0.1,
                "loss at {:.2} s, rekey at {t:.2} s: {l:?}",
                l.at
            );
        }

        // Both ways: the switch waits for the confirmation.
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        sim.bgp_delay[0][1] = 3500 * MS;
        let old = generation(&sim, 0, TENANT);
        let t = sim.secs();
        sim.rekey(0, TENANT);
        let new = generation(&sim, 0, TENANT);
        assert_eq!(new, old.wrapping_add(1));
        sim.run_for(Duration::from_secs(15));
        sim.assert_no_loss();
        let switched = sim
            .switches
            .iter()
            .find(|s| s.1 == 0 && s.4 == new)
            .expect("edge 0 switched")
            .0;
        assert!(
            switched >= t + 3.5,
            "switched {:.2} s after the rekey, before the peer could know the key",
            switched - t
        );
    }

    /// After `switch_after + grace`, the old SAs are gone and the old key pair is dropped;
    /// before, both are there.
    #[test]
    fn grace_expiry_removes_old_sas_and_keys() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        let old = generation(&sim, 0, TENANT);
        sim.rekey(0, TENANT);
        let new = generation(&sim, 0, TENANT);
        let peer_gen = generation(&sim, 1, TENANT);
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![old, new]);
        let lo0 = sim.lo(0);
        assert_eq!(sim.km(1).peer_generations(lo0, TENANT), vec![old, new]);
        assert_eq!(sim.installed(0, 1, TENANT).unwrap().inbound.len(), 2);
        // The rekey plus switch_after (2 s) plus grace (8 s), and a little.
        sim.run_for(Duration::from_secs(6));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![new]);
        assert_eq!(sim.km(1).peer_generations(lo0, TENANT), vec![new]);
        for (i, peer) in [(0, 1), (1, 0)] {
            let sas = sim.installed(i, peer, TENANT).unwrap();
            assert_eq!(sas.inbound.len(), 1, "edge {i}: {sas:?}");
            let o = sas.outbound.as_ref().unwrap();
            let want = if i == 0 {
                (new, peer_gen)
            } else {
                (peer_gen, new)
            };
            assert_eq!((o.local_generation, o.peer_generation), want);
        }
        sim.assert_no_loss();
    }

    /// A restart makes new generations (a fresh random start), the peer takes the new key
    /// as a restart (its old keys are dead: dropped at once), and traffic flows again.
    #[test]
    fn restart_gets_new_generations() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        let before = generation(&sim, 0, TENANT);
        sim.restart(0, 0xdead_beef);
        let after = generation(&sim, 0, TENANT);
        assert_ne!(after, before);
        assert_ne!(after, before.wrapping_add(1));
        sim.run_for(2 * S);
        let lo0 = sim.lo(0);
        assert_eq!(sim.km(1).peer_generations(lo0, TENANT), vec![after]);
        // Packets to the restarted edge before it knew its peer are lost; after, none.
        sim.losses.clear();
        sim.run_for(Duration::from_secs(20));
        sim.assert_no_loss();
        // A second manager started at the same time draws another start too.
        let other = KeyManager::new(lab_config(), lo0, TestRng::new(1)).map(|mut k| {
            k.add_tenant(TENANT, sim.now).unwrap();
            k.local_key(TENANT).unwrap().0
        });
        assert_ne!(other.unwrap(), after);
    }

    /// The first key pair a rotation draws collides (forced by a hook) with an SA in use:
    /// it is thrown away and another drawn; nobody ever sees it, nothing is blocked or lost.
    #[test]
    fn collision_at_generation_draws_again() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        let initial = sim.km(0).local_key(TENANT).unwrap().1;
        let taken = sim
            .installed(0, 1, TENANT)
            .unwrap()
            .outbound
            .as_ref()
            .unwrap()
            .spi_base;
        let first: Arc<Mutex<Option<[u8; 32]>>> = Arc::default();
        let seen = first.clone();
        sim.km(0).set_spi_hook(Box::new(move |a: &HookArgs| {
            let mut first = seen.lock().unwrap();
            if a.local_public == initial || a.dir != Dir::Out {
                return None;
            }
            match *first {
                None => {
                    *first = Some(a.local_public);
                    Some(taken)
                }
                Some(f) if f == a.local_public => Some(taken),
                Some(_) => None,
            }
        }));
        sim.rekey(0, TENANT);
        let thrown = first.lock().unwrap().expect("the hook saw the first draw");
        let advertised = sim.km(0).local_key(TENANT).unwrap().1;
        assert_ne!(advertised, thrown);
        sim.run_for(Duration::from_secs(15));
        let lo1 = sim.lo(1);
        let lo0 = sim.lo(0);
        assert!(!sim.km(0).has_blocked(lo1, TENANT));
        assert!(!sim.km(1).has_blocked(lo0, TENANT));
        sim.assert_no_loss();
    }

    /// Both edges rotate at once and the new keys' combination collides (forced by a hook
    /// on both edges) with the old keys' SA in the direction 0 -> 1, a collision neither
    /// could see when drawing its key. Both block that combination; edge 0 keeps sending
    /// with its old key, and its next rotation waits. Edge 1's next rotation unblocks it.
    /// Nothing is lost throughout.
    #[test]
    fn collision_between_new_keys_is_blocked_on_both_edges() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        let (a1, b1) = (generation(&sim, 0, TENANT), generation(&sim, 1, TENANT));
        let (a2, b2) = (a1.wrapping_add(1), b1.wrapping_add(1));
        let taken = sim
            .installed(0, 1, TENANT)
            .unwrap()
            .outbound
            .as_ref()
            .unwrap()
            .spi_base;
        sim.km(0).set_spi_hook(Box::new(move |a: &HookArgs| {
            hook_args_match(a, Dir::Out, a2, b2).then_some(taken)
        }));
        sim.km(1).set_spi_hook(Box::new(move |a: &HookArgs| {
            hook_args_match(a, Dir::In, b2, a2).then_some(taken)
        }));
        sim.rekey(0, TENANT);
        sim.rekey(1, TENANT);
        sim.run_for(Duration::from_secs(4));
        let (lo0, lo1) = (sim.lo(0), sim.lo(1));
        assert!(sim.km(0).has_blocked(lo1, TENANT));
        assert!(sim.km(1).has_blocked(lo0, TENANT));
        // Edge 0 sends with a1 to b2; edge 1 switched to b2 -> a2.
        assert_eq!(sim.sending_generation(0, 1, TENANT), Some(a1));
        assert_eq!(sim.sending_generation(1, 0, TENANT), Some(b2));

        // Edge 0's rekey waits: a1 is still sent with.
        sim.rekey(0, TENANT);
        sim.run_for(Duration::from_secs(12));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![a1, a2]);
        assert_eq!(sim.sending_generation(0, 1, TENANT), Some(a1));
        // Edge 1 held a1 for edge 0 beyond its grace.
        assert_eq!(sim.km(1).peer_generations(lo0, TENANT), vec![a1, a2]);

        // Edge 1 rotates (b3): edge 0 can now send with a2 (its deadline is long past), so
        // a1 is free and goes, and edge 0's pending rekey makes a3 at once.
        let t = sim.secs();
        sim.rekey(1, TENANT);
        sim.run_for(Duration::from_secs(4));
        let a3 = a2.wrapping_add(1);
        let to_1: Vec<u32> = sim
            .switches
            .iter()
            .filter(|s| s.0 >= t && s.1 == 0 && s.2 == 1)
            .map(|s| s.4)
            .collect();
        assert_eq!(to_1, vec![a2, a3]);
        assert_eq!(sim.km(0).local_generations(TENANT), vec![a2, a3]);
        sim.run_for(Duration::from_secs(30));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![a3]);
        assert!(!sim.km(0).has_blocked(lo1, TENANT));
        sim.assert_no_loss();
    }

    /// The other direction blocked, with BGP much faster one way (0.1 s from edge 1, 1.5 s
    /// to it): edge 1 switches to b2 on edge 0's first packet, then learns a2 and finds
    /// (b2, a2) blocked, so it goes on sending to a1. Edge 0 cannot be confirmed, so its
    /// switch to a2 happens at `switch_after` despite edge 1's traffic to a1, and it holds
    /// a1 for edge 1. When edge 1 rotates, the hold ends and a1 gets a last grace: edge 1's
    /// packets to a1 still in flight are not lost.
    #[test]
    fn collision_toward_the_faster_side_is_blocked_on_both_edges() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        sim.bgp_delay[0][1] = 1500 * MS;
        sim.bgp_delay[1][0] = 100 * MS;
        let (a1, b1) = (generation(&sim, 0, TENANT), generation(&sim, 1, TENANT));
        let (a2, b2) = (a1.wrapping_add(1), b1.wrapping_add(1));
        let taken = sim
            .installed(1, 0, TENANT)
            .unwrap()
            .outbound
            .as_ref()
            .unwrap()
            .spi_base;
        sim.km(0).set_spi_hook(Box::new(move |a: &HookArgs| {
            hook_args_match(a, Dir::In, a2, b2).then_some(taken)
        }));
        sim.km(1).set_spi_hook(Box::new(move |a: &HookArgs| {
            hook_args_match(a, Dir::Out, b2, a2).then_some(taken)
        }));
        let t = sim.secs();
        sim.rekey(0, TENANT);
        sim.rekey(1, TENANT);
        sim.run_for(Duration::from_secs(4));
        let (lo0, lo1) = (sim.lo(0), sim.lo(1));
        assert!(sim.km(0).has_blocked(lo1, TENANT));
        assert!(sim.km(1).has_blocked(lo0, TENANT));
        let out1 = sim
            .installed(1, 0, TENANT)
            .unwrap()
            .outbound
            .clone()
            .unwrap();
        assert_eq!((out1.local_generation, out1.peer_generation), (b2, a1));
        let switched = sim
            .switches
            .iter()
            .find(|s| s.1 == 0 && s.4 == a2)
            .expect("edge 0 switched to a2")
            .0;
        assert!((t + 2.0..t + 2.2).contains(&switched), "{switched} vs {t}");
        // Long after the grace, a1 is still there for edge 1.
        sim.run_for(Duration::from_secs(20));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![a1, a2]);
        sim.rekey(1, TENANT);
        sim.run_for(Duration::from_secs(15));
        assert_eq!(sim.km(0).local_generations(TENANT), vec![a2]);
        assert!(!sim.km(1).has_blocked(lo0, TENANT));
        sim.assert_no_loss();
    }

    /// A withdraw keeps the SAs for `grace` (a flap of the same key changes nothing), then
    /// removes them.
    #[test]
    fn withdraw_keeps_sas_for_grace() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        sim.flows.clear();
        let lo1 = sim.lo(1);
        sim.withdraw(1, TENANT);
        sim.run_for(Duration::from_secs(4));
        assert!(sim.installed(0, 1, TENANT).is_some());
        // The same key again: nothing changes, and the pair stays.
        sim.advertise(1, TENANT);
        sim.run_for(Duration::from_secs(10));
        assert!(sim.km(0).sas(lo1, TENANT).is_some());
        // Withdrawn for good: gone after grace (8 s).
        sim.withdraw(1, TENANT);
        sim.run_for(Duration::from_secs(7));
        assert!(sim.installed(0, 1, TENANT).is_some());
        sim.run_for(Duration::from_secs(2));
        assert!(sim.installed(0, 1, TENANT).is_none());
        assert!(sim.km(0).sas(lo1, TENANT).is_none());
    }

    /// Three edges, two tenants, everybody rotating on a short schedule: nothing is lost,
    /// and SPIs from one peer stay unique across tenants (checked at every step).
    #[test]
    fn three_edges_two_tenants() {
        let cfg = KeyConfig {
            rotate_every: Duration::from_secs(15),
            grace: Duration::from_secs(5),
            switch_after: Duration::from_secs(1),
            suite: Suite::Aes256Gcm16,
        };
        let mut sim = Sim::new(&[cfg, cfg, cfg], &[TENANT, 7], 200 * MS);
        sim.flows = vec![
            (0, 1, TENANT),
            (1, 0, TENANT),
            (1, 2, 7),
            (2, 1, 7),
            (0, 2, TENANT),
            (2, 0, 7),
        ];
        sim.run_for(Duration::from_secs(120));
        sim.assert_no_loss();
        let lo1 = sim.lo(1);
        let sas = sim.km(0).sas(lo1, TENANT).unwrap();
        assert_eq!(sas.outbound.unwrap().keymat.len(), 36);
    }

    /// No secret in any Debug output: not the private key seeds, not the keying material.
    #[test]
    fn debug_shows_no_secret() {
        let mut sim = Sim::pair(lab_config(), &[TENANT], 300 * MS);
        sim.rekey(0, TENANT);
        sim.run_for(3 * S);
        let lo1 = sim.lo(1);
        let sas = sim.km(0).sas(lo1, TENANT).unwrap();
        let text = format!(
            "{:?} {:#?} {:?} {:#?}",
            sim.edges[0].km, sim.edges[1].km, sas, sas
        );
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut secrets: Vec<Vec<u8>> = sim.rng_log(0);
        secrets.extend(sim.rng_log(1));
        secrets.extend(sas.inbound.iter().map(|s| s.keymat.to_vec()));
        secrets.extend(sas.outbound.iter().map(|s| s.keymat.to_vec()));
        assert!(secrets.len() >= 5);
        for s in &secrets {
            assert!(!text.contains(&hex(s)), "secret in Debug output");
            assert!(
                !text.contains(&hex(&s[..8])),
                "part of a secret in Debug output"
            );
            assert!(!text.contains(&format!("{s:?}")), "secret in Debug output");
        }
        assert!(text.contains("KeyPair") && text.contains("DirectionSa"));
    }
}
