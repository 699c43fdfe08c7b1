//! The key manager of one edge: its per-tenant key pairs, what it knows of each peer's, and
//! the SAs of every (peer, tenant) pair, with make-before-break rekeying.
//!
//! # The rule (details and reasons in `docs/keys.md`)
//! - Inbound SAs of a pair = our live key pairs x the peer's live public keys (at most 4).
//!   A new local key's inbound SAs are derived in the same step that makes the key, before
//!   [`KeyEvent::Advertise`]; a new peer key's as soon as it is learned.
//! - Outbound SA = (our sending key, the peer's latest key). A newer peer key is used at once
//!   (the peer installed the matching inbound SA before advertising it). Our own sending key
//!   moves to our newest key when the peer is known to have it: a packet arrives on an
//!   inbound SA of the new key ([`KeyManager::inbound_seen`]), or `switch_after` passed with
//!   no packet from the peer on an SA of an older key of ours (one-way traffic).
//! - Keys stay `switch_after + grace` after they are replaced, and longer while they are
//!   still sent with; then their SAs go, and a local private key is dropped (zeroed).
//! - SPI bases are unique among the inbound SAs from one peer (all tenants). A new local key
//!   whose SAs would collide is drawn again before anyone sees it; a collision found when a
//!   peer's key is learned blocks that one combination on both edges (see `docs/keys.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::derive::{derive_pair, DerivedSa, Hex, KeyPair, PairKeys, SaContext, PUBLIC_KEY_LEN};
use super::{DirectionSa, KeyConfig, KeyError, KeyEvent, PairSas, RandomSource};

/// An advertisement up to this many generations behind the peer's latest is stale (a path
/// through a slower reflector) and ignored. Anything else that differs is a newer key: the
/// next generation (a rotation), or a jump (a restart of the peer with a fresh random start,
/// or missed rotations), after which the peer's older keys are dead.
pub const STALE_WINDOW: u32 = 1024;

/// How many key pairs a rotation draws, at most, looking for one whose SAs collide with no
/// SPI in use or recently used. One collision is a 2^-28 event, so a second draw is already
/// rare; after the last one the key is taken and the collision is blocked instead.
const MAX_DRAWS: usize = 8;

/// A new key's SAs with each pair of its tenant: (peer, [(local gen, peer gen, keys)]).
type Derived = Vec<(IpAddr, Vec<(u32, u32, PairKeys)>)>;

/// A direction, from this edge's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Local -> peer (the peer's inbound).
    Out,
    /// Peer -> local (our inbound).
    In,
}

/// What a test hook sees of each derived SA; it may replace the SPI base to force a
/// collision (`None`: keep it).
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct HookArgs {
    pub dir: Dir,
    pub local_generation: u32,
    pub peer_generation: u32,
    pub local_public: [u8; PUBLIC_KEY_LEN],
}

#[cfg(test)]
pub(crate) type SpiHook = Box<dyn FnMut(&HookArgs) -> Option<u32> + Send>;
#[cfg(test)]
type Hook = Option<SpiHook>;
#[cfg(not(test))]
type Hook = ();

/// One of our key pairs.
#[derive(Debug)]
struct LocalKey {
    generation: u32,
    created: Instant,
    /// When the key was last sent to the network (a session came up and the whole table
    /// went out again): the peers need the propagation time from then on.
    advertised: Instant,
    pair: KeyPair,
}

/// A tenant's key pairs.
#[derive(Debug)]
struct Tenant {
    current: LocalKey,
    /// The key before `current`, until it is no longer needed.
    previous: Option<LocalKey>,
    /// When `previous` may go (if nothing still sends with it).
    previous_until: Instant,
    /// When the next rotation is due.
    rotate_at: Instant,
}

/// A public key of a peer.
struct PeerKey {
    generation: u32,
    public: [u8; PUBLIC_KEY_LEN],
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKey")
            .field("generation", &self.generation)
            .field("public", &Hex(&self.public))
            .finish()
    }
}

/// One direction of a combination: its SA, or blocked by an SPI collision (never installed,
/// never sent on).
#[derive(Debug)]
enum Slot {
    Live(DerivedSa),
    Blocked,
}

impl Slot {
    fn live(&self) -> Option<&DerivedSa> {
        match self {
            Slot::Live(sa) => Some(sa),
            Slot::Blocked => None,
        }
    }
}

/// The SAs of one (local key, peer key) combination.
#[derive(Debug)]
struct Combo {
    local: u32,
    peer: u32,
    out: Slot,
    inb: Slot,
}

impl Combo {
    fn slot(&self, dir: Dir) -> &Slot {
        match dir {
            Dir::Out => &self.out,
            Dir::In => &self.inb,
        }
    }
}

/// What we hold for one (peer, tenant).
#[derive(Debug)]
struct Pair {
    latest: PeerKey,
    previous: Option<PeerKey>,
    /// When the peer's previous key may go; `None` while the peer cannot yet switch away from
    /// it (the combination it would switch to is blocked).
    previous_until: Option<Instant>,
    /// The generation of our key we send with.
    sending: u32,
    /// The (local, peer) generations of the outbound SA.
    out: Option<(u32, u32)>,
    combos: Vec<Combo>,
    /// The last packet from the peer on an SA of one of our older keys: the peer is sending
    /// and has not learned our newest key yet, so our switch waits for its confirmation.
    last_seen_old: Option<Instant>,
    /// The peer's routes were withdrawn at this time; the pair goes after `grace`.
    withdrawn_at: Option<Instant>,
    /// The peer was seen sending on an SA of its latest key: it has switched, so the SAs of
    /// its previous key may go once `previous_until` came. Until then they stay (up to one
    /// rotation period): a peer may switch late, for its own switch waits for BGP to carry
    /// its key (after a reflector outage, from when its session came back).
    peer_switched: bool,
}

impl Pair {
    fn new(latest: PeerKey, sending: u32) -> Self {
        Pair {
            latest,
            previous: None,
            previous_until: None,
            sending,
            out: None,
            combos: Vec::new(),
            last_seen_old: None,
            withdrawn_at: None,
            peer_switched: false,
        }
    }

    fn combo(&self, local: u32, peer: u32) -> Option<&Combo> {
        self.combos
            .iter()
            .find(|c| c.local == local && c.peer == peer)
    }

    fn live(&self, local: u32, peer: u32, dir: Dir) -> bool {
        self.combo(local, peer)
            .is_some_and(|c| c.slot(dir).live().is_some())
    }

    fn blocked(&self, local: u32, peer: u32, dir: Dir) -> bool {
        self.combo(local, peer)
            .is_some_and(|c| matches!(c.slot(dir), Slot::Blocked))
    }

    /// The peer's live generations, older first.
    fn peer_keys(&self) -> impl Iterator<Item = &PeerKey> {
        self.previous.iter().chain(std::iter::once(&self.latest))
    }

    /// Whether our own sending uses the local key `generation`.
    fn sends_with_local(&self, generation: u32) -> bool {
        self.sending == generation || self.out.is_some_and(|(l, _)| l == generation)
    }

    /// The outbound SA to use: (sending, latest) when it is live; else the current one while
    /// it is live (a blocked combination must not stop what works); else the best live one.
    fn choose_out(&self) -> Option<(u32, u32)> {
        let preferred = (self.sending, self.latest.generation);
        if self.live(preferred.0, preferred.1, Dir::Out) {
            return Some(preferred);
        }
        if let Some((l, p)) = self.out {
            if self.live(l, p, Dir::Out) {
                return Some((l, p));
            }
        }
        self.combos
            .iter()
            .filter(|c| c.out.live().is_some())
            .max_by_key(|c| {
                (
                    c.peer == self.latest.generation,
                    c.local == self.sending,
                    c.local,
                )
            })
            .map(|c| (c.local, c.peer))
    }

    /// Sets `out` from [`Pair::choose_out`]; true when it changed.
    fn refresh_out(&mut self) -> bool {
        let out = self.choose_out();
        let changed = out != self.out;
        self.out = out;
        changed
    }
}

/// An SPI base that was in use recently, so a new key does not reuse it while the peer may
/// still hold it (its view of the pair's keys lags ours by up to one BGP propagation time).
#[derive(Debug)]
struct Tombstone {
    peer: IpAddr,
    dir: Dir,
    spi_base: u32,
    until: Instant,
}

/// The key manager of one edge. Sans-IO: inputs are method calls with the time, outputs are
/// [`KeyEvent`]s from [`KeyManager::poll`] and the state read with [`KeyManager::sas`] and
/// [`KeyManager::local_key`]. Call `poll` after every input and when
/// [`KeyManager::next_deadline`] comes.
pub struct KeyManager {
    cfg: KeyConfig,
    local: IpAddr,
    rng: Box<dyn RandomSource + Send>,
    tenants: BTreeMap<u32, Tenant>,
    /// By (peer loopback, tenant): a peer's pairs are one range, since SPI bases must be
    /// unique across all of them.
    pairs: BTreeMap<(IpAddr, u32), Pair>,
    tombstones: Vec<Tombstone>,
    changed: BTreeSet<(IpAddr, u32)>,
    advertise: BTreeSet<u32>,
    failures: Vec<KeyEvent>,
    hook: Hook,
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("cfg", &self.cfg)
            .field("local", &self.local)
            .field("tenants", &self.tenants)
            .field("pairs", &self.pairs)
            .field("tombstones", &self.tombstones.len())
            .finish_non_exhaustive()
    }
}

/// `t + d`, or `t` if that is not representable (the configuration's bounds keep `d` small).
fn at(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

impl KeyManager {
    /// A key manager for the edge whose loopback is `local_loopback` (the address BGP carries
    /// as its next hop: the peers derive with the same one).
    pub fn new(
        cfg: KeyConfig,
        local_loopback: IpAddr,
        rng: impl RandomSource + Send + 'static,
    ) -> Result<Self, KeyError> {
        cfg.validate()?;
        Ok(KeyManager {
            cfg,
            local: local_loopback.to_canonical(),
            rng: Box::new(rng),
            tenants: BTreeMap::new(),
            pairs: BTreeMap::new(),
            tombstones: Vec::new(),
            changed: BTreeSet::new(),
            advertise: BTreeSet::new(),
            failures: Vec::new(),
            hook: Hook::default(),
        })
    }

    pub fn config(&self) -> &KeyConfig {
        &self.cfg
    }

    /// Starts a tenant with a fresh key pair (its generation counter starts at a random
    /// value, so a restarted edge does not reuse generations) and queues
    /// [`KeyEvent::Advertise`]. A tenant already there is left as it is.
    pub fn add_tenant(&mut self, tenant: u32, now: Instant) -> Result<(), KeyError> {
        if self.tenants.contains_key(&tenant) {
            return Ok(());
        }
        let mut start = [0u8; 4];
        self.rng.fill(&mut start)?;
        let current = LocalKey {
            generation: u32::from_be_bytes(start),
            created: now,
            advertised: now,
            pair: KeyPair::generate(self.rng.as_mut())?,
        };
        let rotate_at = self.next_rotation(now);
        self.tenants.insert(
            tenant,
            Tenant {
                current,
                previous: None,
                previous_until: now,
                rotate_at,
            },
        );
        self.advertise.insert(tenant);
        Ok(())
    }

    /// Drops a tenant: its keys and all its pairs' SAs, at once (the tenant is gone from the
    /// configuration; nothing of it is forwarded any more). Queues `SasChanged` for each pair.
    pub fn remove_tenant(&mut self, tenant: u32, now: Instant) -> bool {
        let existed = self.tenants.remove(&tenant).is_some();
        let keys: Vec<_> = self
            .pairs
            .keys()
            .filter(|(_, t)| *t == tenant)
            .copied()
            .collect();
        for k in keys {
            if let Some(pair) = self.pairs.remove(&k) {
                self.bury(k.0, &pair.combos, now);
                self.changed.insert(k);
            }
        }
        self.advertise.remove(&tenant);
        existed
    }

    /// Asks for a rotation of the tenant's key now (an operator's rekey; tests). It happens
    /// at the next `poll`, under the same conditions as a scheduled one.
    pub fn rekey(&mut self, tenant: u32, now: Instant) -> Result<(), KeyError> {
        let t = self
            .tenants
            .get_mut(&tenant)
            .ok_or(KeyError::UnknownTenant { tenant })?;
        t.rotate_at = t.rotate_at.min(now);
        Ok(())
    }

    /// Whether a rotation of the tenant's key asked for now would wait for our previous key
    /// to go (its `switch_after + grace`, or our sending with it): two keys at most.
    pub fn rotation_waits_for_previous(&self, tenant: u32, now: Instant) -> bool {
        let Some(t) = self.tenants.get(&tenant) else {
            return false;
        };
        let Some(prev) = &t.previous else {
            return false;
        };
        now < t.previous_until || self.local_previous_state(tenant, prev.generation).0
    }

    /// Our keys were just sent to the network again (a BGP session came up after none was):
    /// a key not confirmed yet gets `switch_after` from now before it is sent with, since a
    /// peer may learn it only now.
    pub fn advertised(&mut self, now: Instant) {
        for t in self.tenants.values_mut() {
            t.current.advertised = t.current.advertised.max(now);
        }
    }

    /// What BGP should advertise for the tenant now: (generation, public key). Its inbound
    /// SAs are already in [`KeyManager::sas`] for every known peer.
    pub fn local_key(&self, tenant: u32) -> Option<(u32, [u8; PUBLIC_KEY_LEN])> {
        self.tenants
            .get(&tenant)
            .map(|t| (t.current.generation, *t.current.pair.public()))
    }

    /// The generations of the tenant's live key pairs, older first (for `show` and tests).
    pub fn local_generations(&self, tenant: u32) -> Vec<u32> {
        self.tenants.get(&tenant).map_or_else(Vec::new, |t| {
            t.previous
                .iter()
                .chain(std::iter::once(&t.current))
                .map(|k| k.generation)
                .collect()
        })
    }

    /// The generations of the peer's live public keys, older first.
    pub fn peer_generations(&self, peer: IpAddr, tenant: u32) -> Vec<u32> {
        self.pairs
            .get(&(peer.to_canonical(), tenant))
            .map_or_else(Vec::new, |p| p.peer_keys().map(|k| k.generation).collect())
    }

    /// A peer's public key for a tenant, learned from BGP. `Ok(true)`: the SAs changed (and
    /// `SasChanged` is queued). A repeat of the latest key, or a stale one (up to
    /// [`STALE_WINDOW`] generations older), changes nothing. Wrong length or a low-order
    /// point is an error and leaves the state as it was.
    pub fn peer_key(
        &mut self,
        peer: IpAddr,
        tenant: u32,
        generation: u32,
        public: &[u8],
        now: Instant,
    ) -> Result<bool, KeyError> {
        let peer = peer.to_canonical();
        let public: [u8; PUBLIC_KEY_LEN] = public
            .try_into()
            .map_err(|_| KeyError::PublicKeyLength { len: public.len() })?;
        if peer == self.local {
            return Err(KeyError::OwnLoopback { peer });
        }
        let t = self
            .tenants
            .get(&tenant)
            .ok_or(KeyError::UnknownTenant { tenant })?;

        enum Update {
            New,
            Repeat,
            Stale,
            Next,
            Jump,
        }
        let update = match self.pairs.get(&(peer, tenant)) {
            None => Update::New,
            Some(p) if p.latest.generation == generation && p.latest.public == public => {
                Update::Repeat
            }
            Some(p) => {
                let behind = p.latest.generation.wrapping_sub(generation);
                if (1..=STALE_WINDOW).contains(&behind) {
                    Update::Stale
                } else if generation == p.latest.generation.wrapping_add(1) {
                    Update::Next
                } else {
                    Update::Jump
                }
            }
        };
        match update {
            Update::Stale => return Ok(false),
            Update::Repeat => {
                // A re-advertisement after a withdraw: the pair stays, and gets the SAs of
                // any key we made meanwhile.
                let Some(pair) = self.pairs.get_mut(&(peer, tenant)) else {
                    return Ok(false);
                };
                if pair.withdrawn_at.take().is_none() {
                    return Ok(false);
                }
                return Ok(self.fill_missing(peer, tenant, Vec::new()));
            }
            Update::New | Update::Next | Update::Jump => {}
        }

        // Derive with every live key of ours first: a key we cannot use is refused before
        // anything changes.
        let keep = self.cfg.switch_after + self.cfg.grace;
        let ctx = self.ctx(tenant, peer);
        let mut fresh = Vec::new();
        for lk in t.previous.iter().chain(std::iter::once(&t.current)) {
            let keys = derive_for(&ctx, lk, generation, &public, &mut self.hook)?;
            fresh.push((lk.generation, generation, keys));
        }
        let current = t.current.generation;
        // Whether the peer may be sending to our previous key because its SA to our current
        // one is blocked (see `local_previous_state`); if this update ends that, the peer
        // needs a moment to move, so our previous key gets its grace again from now.
        let held_before = self
            .pairs
            .get(&(peer, tenant))
            .is_some_and(|p| p.blocked(current, p.latest.generation, Dir::In));

        let new_key = PeerKey { generation, public };
        match update {
            Update::New => {
                // A new pair sends with our current key: the peer learned whatever we
                // advertise now.
                self.pairs
                    .insert((peer, tenant), Pair::new(new_key, current));
            }
            Update::Next | Update::Jump => {
                let Some(pair) = self.pairs.get_mut(&(peer, tenant)) else {
                    return Ok(false);
                };
                let dropped: Vec<u32> = match update {
                    // The latest becomes the previous; the one before is long gone at the
                    // peer (a rotation waits for its previous key's grace).
                    Update::Next => pair.previous.iter().map(|k| k.generation).collect(),
                    // A restart or missed rotations: the peer holds none of the old keys.
                    _ => pair.peer_keys().map(|k| k.generation).collect(),
                };
                let old = std::mem::replace(&mut pair.latest, new_key);
                pair.previous = match update {
                    Update::Next => Some(old),
                    _ => None,
                };
                if matches!(update, Update::Jump) {
                    // A restarted peer learned us afresh, from what we advertise now.
                    pair.sending = current;
                }
                pair.previous_until = pair.previous.as_ref().map(|_| at(now, keep));
                pair.peer_switched = false;
                pair.withdrawn_at = None;
                let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut pair.combos)
                    .into_iter()
                    .partition(|c| !dropped.contains(&c.peer));
                pair.combos = kept;
                self.bury(peer, &gone, now);
            }
            Update::Stale | Update::Repeat => {}
        }
        self.fill_missing(peer, tenant, fresh);
        let mut held_after = false;
        if let Some(pair) = self.pairs.get_mut(&(peer, tenant)) {
            held_after = pair.blocked(current, pair.latest.generation, Dir::In);
            // The peer cannot switch away from its previous key while the combination it
            // would switch to is blocked: keep the previous key until that changes.
            if pair.previous.is_some() && held_after {
                pair.previous_until = None;
            }
            pair.refresh_out();
        }
        if held_before && !held_after {
            if let Some(t) = self.tenants.get_mut(&tenant) {
                t.previous_until = t.previous_until.max(at(now, keep));
            }
        }
        self.changed.insert((peer, tenant));
        Ok(true)
    }

    /// The peer's routes for the tenant were withdrawn. A withdraw is real (reflector
    /// restarts are covered by BGP graceful restart), but the SAs stay for `grace`: packets
    /// already in flight still decrypt, and a withdraw followed by the same key again (a
    /// flap) changes nothing. Then the pair goes (`SasChanged`, `sas()` is `None`).
    pub fn peer_gone(&mut self, peer: IpAddr, tenant: u32, now: Instant) {
        if let Some(pair) = self.pairs.get_mut(&(peer.to_canonical(), tenant)) {
            pair.withdrawn_at.get_or_insert(now);
        }
    }

    /// The data plane saw an authenticated packet on the inbound SA whose SPI is `spi` (any
    /// of the 16 of an SA; the low 4 bits are ignored). A packet on an SA of our newest key
    /// confirms that the peer has it, so we switch our sending to it at once.
    pub fn inbound_seen(&mut self, peer: IpAddr, tenant: u32, spi: u32, now: Instant) {
        let key = (peer.to_canonical(), tenant);
        let spi_base = spi & !0xf;
        let (Some(pair), Some(t)) = (self.pairs.get_mut(&key), self.tenants.get(&tenant)) else {
            return;
        };
        if pair.withdrawn_at.is_some() {
            return;
        }
        let Some((local, from)) = pair
            .combos
            .iter()
            .find(|c| c.inb.live().is_some_and(|sa| sa.spi_base == spi_base))
            .map(|c| (c.local, c.peer))
        else {
            return;
        };
        if from == pair.latest.generation {
            pair.peer_switched = true;
        }
        if local == t.current.generation {
            if try_switch(pair, t, &self.cfg, now, true) {
                self.changed.insert(key);
            }
        } else {
            pair.last_seen_old = Some(pair.last_seen_old.map_or(now, |s| s.max(now)));
        }
    }

    /// The SAs the data plane should hold for the peer and tenant now; `None` when there is
    /// no such pair (never learned, removed, or its tenant removed).
    pub fn sas(&self, peer: IpAddr, tenant: u32) -> Option<PairSas> {
        let pair = self.pairs.get(&(peer.to_canonical(), tenant))?;
        let sa = |c: &Combo, slot: &Slot| {
            slot.live().map(|d| DirectionSa {
                spi_base: d.spi_base,
                keymat: d.keymat.clone(),
                local_generation: c.local,
                peer_generation: c.peer,
            })
        };
        let outbound = pair.out.and_then(|(l, p)| {
            let c = pair.combo(l, p)?;
            sa(c, &c.out)
        });
        let inbound = pair.combos.iter().filter_map(|c| sa(c, &c.inb)).collect();
        Some(PairSas {
            suite: self.cfg.suite,
            outbound,
            inbound,
        })
    }

    /// Runs the timers due at `now` and returns what changed since the last call: every
    /// `SasChanged` (sorted), then failures, then every `Advertise`.
    pub fn poll(&mut self, now: Instant) -> Vec<KeyEvent> {
        self.tombstones.retain(|t| t.until > now);
        self.expire_withdrawn(now);
        let tenants: Vec<u32> = self.tenants.keys().copied().collect();
        for tenant in tenants {
            self.switch_timeouts(tenant, now);
            self.retire_peer_previous(tenant, now);
            self.retire_local_previous(tenant, now);
            self.rotate_if_due(tenant, now);
        }
        let mut events: Vec<KeyEvent> = std::mem::take(&mut self.changed)
            .into_iter()
            .map(|(peer, tenant)| KeyEvent::SasChanged { peer, tenant })
            .collect();
        events.append(&mut self.failures);
        events.extend(
            std::mem::take(&mut self.advertise)
                .into_iter()
                .map(|tenant| KeyEvent::Advertise { tenant }),
        );
        events
    }

    /// When `poll` next has something to do without any input; `None`: nothing is timed.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for pair in self.pairs.values() {
            if let Some(w) = pair.withdrawn_at {
                consider(at(w, self.cfg.grace));
            }
        }
        for (&tenant, t) in &self.tenants {
            let current = t.current.generation;
            for pair in self.tenant_pairs(tenant) {
                if pair.sending != current && pair.live(current, pair.latest.generation, Dir::Out) {
                    consider(switch_deadline(pair, t, &self.cfg));
                }
                if let (Some(prev), Some(until)) = (&pair.previous, pair.previous_until) {
                    if pair.out.is_none_or(|(_, p)| p != prev.generation) {
                        consider(if pair.peer_switched {
                            until
                        } else {
                            at(until, self.cfg.rotate_every)
                        });
                    }
                }
            }
            match &t.previous {
                None => consider(t.rotate_at),
                Some(prev) => {
                    let (in_use, held) = self.local_previous_state(tenant, prev.generation);
                    if !in_use && !held {
                        consider(t.previous_until);
                    }
                    if in_use {
                        consider(at(t.rotate_at, self.cfg.rotate_every));
                    } else {
                        consider(t.rotate_at.max(t.previous_until));
                    }
                }
            }
        }
        next
    }

    #[cfg(test)]
    pub(crate) fn set_spi_hook(&mut self, hook: SpiHook) {
        self.hook = Some(hook);
    }

    /// True when one of the pair's combinations is blocked (tests).
    #[cfg(test)]
    pub(crate) fn has_blocked(&self, peer: IpAddr, tenant: u32) -> bool {
        self.pairs.get(&(peer, tenant)).is_some_and(|p| {
            p.combos
                .iter()
                .any(|c| matches!(c.out, Slot::Blocked) || matches!(c.inb, Slot::Blocked))
        })
    }

    fn ctx(&self, tenant: u32, peer: IpAddr) -> SaContext {
        SaContext {
            suite: self.cfg.suite,
            tenant,
            local: self.local,
            peer,
        }
    }

    fn next_rotation(&mut self, now: Instant) -> Instant {
        // Up to 10 % earlier, so edges started together do not rotate together for ever.
        let mut r = [0u8; 4];
        let r = match self.rng.fill(&mut r) {
            Ok(()) => u128::from(u32::from_be_bytes(r)),
            Err(_) => 0,
        };
        let span = self.cfg.rotate_every.as_nanos() / 10;
        let jitter = Duration::from_nanos(u64::try_from((span * r) >> 32).unwrap_or(0));
        at(now, self.cfg.rotate_every.saturating_sub(jitter))
    }

    fn tenant_pairs(&self, tenant: u32) -> impl Iterator<Item = &Pair> {
        self.pairs
            .iter()
            .filter(move |((_, t), p)| *t == tenant && p.withdrawn_at.is_none())
            .map(|(_, p)| p)
    }

    /// Whether our previous key is still sent with (by us, to some live pair), and whether
    /// it is held for a peer that may still send to it (its switch to our current key is
    /// blocked).
    fn local_previous_state(&self, tenant: u32, previous: u32) -> (bool, bool) {
        let current = self.tenants.get(&tenant).map(|t| t.current.generation);
        let mut in_use = false;
        let mut held = false;
        for pair in self.tenant_pairs(tenant) {
            in_use |= pair.sends_with_local(previous);
            held |= current.is_some_and(|c| pair.blocked(c, pair.latest.generation, Dir::In));
        }
        (in_use, held)
    }

    /// SPI bases in use toward or from `peer` (all tenants), with recent ones if asked.
    fn occupied(&self, peer: IpAddr, dir: Dir, recent: bool) -> Vec<u32> {
        let mut spis: Vec<u32> = self
            .pairs
            .range((peer, 0)..=(peer, u32::MAX))
            .flat_map(|(_, p)| p.combos.iter())
            .filter_map(|c| c.slot(dir).live().map(|sa| sa.spi_base))
            .collect();
        if recent {
            spis.extend(
                self.tombstones
                    .iter()
                    .filter(|t| t.peer == peer && t.dir == dir)
                    .map(|t| t.spi_base),
            );
        }
        spis
    }

    /// Remembers the SPI bases of removed combinations for `switch_after + grace`.
    fn bury(&mut self, peer: IpAddr, combos: &[Combo], now: Instant) {
        let until = at(now, self.cfg.switch_after + self.cfg.grace);
        for c in combos {
            for dir in [Dir::Out, Dir::In] {
                if let Some(sa) = c.slot(dir).live() {
                    self.tombstones.push(Tombstone {
                        peer,
                        dir,
                        spi_base: sa.spi_base,
                        until,
                    });
                }
            }
        }
    }

    /// Derives and installs every combination of our live keys and the peer's that the pair
    /// lacks, in a fixed order (our older key first, then the peer's older key first: both
    /// edges then settle a collision between two new combinations the same way). `fresh`
    /// holds combinations already derived. A combination whose SPI base collides with a live
    /// inbound SA of the same receiver is blocked. True when something was added.
    fn fill_missing(
        &mut self,
        peer: IpAddr,
        tenant: u32,
        mut fresh: Vec<(u32, u32, PairKeys)>,
    ) -> bool {
        let ctx = self.ctx(tenant, peer);
        let (Some(t), Some(pair)) = (self.tenants.get(&tenant), self.pairs.get(&(peer, tenant)))
        else {
            return false;
        };
        let mut todo = Vec::new();
        for lk in t.previous.iter().chain(std::iter::once(&t.current)) {
            for pk in pair.peer_keys() {
                if pair.combo(lk.generation, pk.generation).is_some() {
                    continue;
                }
                let keys = match fresh
                    .iter()
                    .position(|(l, p, _)| *l == lk.generation && *p == pk.generation)
                {
                    Some(i) => Ok(fresh.swap_remove(i).2),
                    None => derive_for(&ctx, lk, pk.generation, &pk.public, &mut self.hook),
                };
                // Keys already accepted once cannot fail; if the library ever did, the
                // combination is simply not there (as if blocked).
                if let Ok(keys) = keys {
                    todo.push((lk.generation, pk.generation, keys));
                }
            }
        }
        if todo.is_empty() {
            return false;
        }
        let mut out_used = self.occupied(peer, Dir::Out, false);
        let mut in_used = self.occupied(peer, Dir::In, false);
        let Some(pair) = self.pairs.get_mut(&(peer, tenant)) else {
            return false;
        };
        for (local, peer_gen, keys) in todo {
            let slot = |sa: DerivedSa, used: &mut Vec<u32>| {
                if used.contains(&sa.spi_base) {
                    Slot::Blocked
                } else {
                    used.push(sa.spi_base);
                    Slot::Live(sa)
                }
            };
            pair.combos.push(Combo {
                local,
                peer: peer_gen,
                out: slot(keys.outbound, &mut out_used),
                inb: slot(keys.inbound, &mut in_used),
            });
        }
        pair.refresh_out();
        self.changed.insert((peer, tenant));
        true
    }

    fn expire_withdrawn(&mut self, now: Instant) {
        let gone: Vec<(IpAddr, u32)> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.withdrawn_at.is_some_and(|w| at(w, self.cfg.grace) <= now))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            if let Some(pair) = self.pairs.remove(&k) {
                self.bury(k.0, &pair.combos, now);
                self.changed.insert(k);
            }
        }
    }

    fn switch_timeouts(&mut self, tenant: u32, now: Instant) {
        let Some(t) = self.tenants.get(&tenant) else {
            return;
        };
        for ((peer, pt), pair) in self.pairs.iter_mut() {
            if *pt == tenant && try_switch(pair, t, &self.cfg, now, false) {
                self.changed.insert((*peer, tenant));
            }
        }
    }

    /// Drops the peers' previous keys whose time has come and that we no longer send to.
    fn retire_peer_previous(&mut self, tenant: u32, now: Instant) {
        let mut buried = Vec::new();
        let rotate_every = self.cfg.rotate_every;
        for ((peer, pt), pair) in self.pairs.iter_mut() {
            if *pt != tenant {
                continue;
            }
            let Some(prev) = pair.previous.as_ref().map(|k| k.generation) else {
                continue;
            };
            let due = pair
                .previous_until
                .is_some_and(|u| u <= now && (pair.peer_switched || now >= at(u, rotate_every)));
            if !due || pair.out.is_some_and(|(_, p)| p == prev) {
                continue;
            }
            pair.previous = None;
            pair.previous_until = None;
            let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut pair.combos)
                .into_iter()
                .partition(|c| c.peer != prev);
            pair.combos = kept;
            pair.refresh_out();
            buried.push((*peer, gone));
            self.changed.insert((*peer, tenant));
        }
        for (peer, gone) in buried {
            self.bury(peer, &gone, now);
        }
    }

    /// Drops our previous key when its time has come, nothing of ours sends with it, and no
    /// peer may still send to it.
    fn retire_local_previous(&mut self, tenant: u32, now: Instant) {
        let Some(t) = self.tenants.get(&tenant) else {
            return;
        };
        let Some(prev) = t.previous.as_ref().map(|k| k.generation) else {
            return;
        };
        if now < t.previous_until {
            return;
        }
        let (in_use, held) = self.local_previous_state(tenant, prev);
        if !in_use && !held {
            self.drop_local_previous(tenant, now);
        }
    }

    /// Removes our previous key and every SA made with it; the key pair is dropped here
    /// (AWS-LC zeroes the private key).
    fn drop_local_previous(&mut self, tenant: u32, now: Instant) {
        let Some(t) = self.tenants.get_mut(&tenant) else {
            return;
        };
        let Some(prev) = t.previous.take() else {
            return;
        };
        let current = t.current.generation;
        let mut buried = Vec::new();
        for ((peer, pt), pair) in self.pairs.iter_mut() {
            if *pt != tenant {
                continue;
            }
            let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut pair.combos)
                .into_iter()
                .partition(|c| c.local != prev.generation);
            pair.combos = kept;
            if pair.sending == prev.generation {
                pair.sending = current;
            }
            let out_changed = pair.refresh_out();
            if !gone.is_empty() || out_changed {
                self.changed.insert((*peer, tenant));
            }
            buried.push((*peer, gone));
        }
        for (peer, gone) in buried {
            self.bury(peer, &gone, now);
        }
        drop(prev);
    }

    fn rotate_if_due(&mut self, tenant: u32, now: Instant) {
        let Some(t) = self.tenants.get(&tenant) else {
            return;
        };
        if now < t.rotate_at {
            return;
        }
        if let Some(prev) = &t.previous {
            // The previous key must go to make room (two keys at most). It may go when its
            // grace is over and we no longer send with it; a peer that may still send to
            // it (its switch is blocked) does not hold the rotation back, since the peer's
            // own next rotation is what unblocks it. Only if our own sending stays stuck
            // for a whole extra period is the rotation forced over it.
            let forced = now >= at(t.rotate_at, self.cfg.rotate_every);
            let (in_use, _) = self.local_previous_state(tenant, prev.generation);
            if !forced && (in_use || now < t.previous_until) {
                return;
            }
            self.drop_local_previous(tenant, now);
        }
        match self.draw_key(tenant, now) {
            Ok((key, derived)) => self.install_key(tenant, key, derived, now),
            Err(error) => {
                if let Some(t) = self.tenants.get_mut(&tenant) {
                    t.rotate_at = at(now, self.cfg.switch_after);
                }
                self.failures
                    .push(KeyEvent::RotationFailed { tenant, error });
            }
        }
    }

    /// Draws the tenant's next key pair and derives its SAs with every live pair of the
    /// tenant. A draw whose SPI bases collide with one in use or recently used toward the
    /// same peer (either direction), or with each other, is thrown away unseen: no peer
    /// knows that key yet, so this is the one moment a collision costs nothing.
    fn draw_key(&mut self, tenant: u32, now: Instant) -> Result<(LocalKey, Derived), KeyError> {
        let generation = self
            .tenants
            .get(&tenant)
            .ok_or(KeyError::UnknownTenant { tenant })?
            .current
            .generation
            .wrapping_add(1);
        let peers: Vec<(IpAddr, Vec<_>)> = self
            .pairs
            .iter()
            .filter(|((_, t), p)| *t == tenant && p.withdrawn_at.is_none())
            .map(|((peer, _), p)| {
                (
                    *peer,
                    p.peer_keys().map(|k| (k.generation, k.public)).collect(),
                )
            })
            .collect();
        let mut draw = 0;
        loop {
            draw += 1;
            let key = LocalKey {
                generation,
                created: now,
                advertised: now,
                pair: KeyPair::generate(self.rng.as_mut())?,
            };
            let mut derived = Vec::new();
            let mut collides = false;
            for (peer, peer_keys) in &peers {
                let ctx = self.ctx(tenant, *peer);
                let mut out_used = self.occupied(*peer, Dir::Out, true);
                let mut in_used = self.occupied(*peer, Dir::In, true);
                let mut list = Vec::new();
                for (pg, public) in peer_keys {
                    let Ok(keys) = derive_for(&ctx, &key, *pg, public, &mut self.hook) else {
                        continue;
                    };
                    for (spi, used) in [
                        (keys.outbound.spi_base, &mut out_used),
                        (keys.inbound.spi_base, &mut in_used),
                    ] {
                        collides |= used.contains(&spi);
                        used.push(spi);
                    }
                    list.push((generation, *pg, keys));
                }
                derived.push((*peer, list));
            }
            if !collides || draw >= MAX_DRAWS {
                return Ok((key, derived));
            }
        }
    }

    /// Makes `key` the tenant's current key: its inbound SAs go in now, its advertisement
    /// is queued after them. Our sending stays on the old key until the switch.
    fn install_key(&mut self, tenant: u32, key: LocalKey, derived: Derived, now: Instant) {
        let rotate_at = self.next_rotation(now);
        let keep = self.cfg.switch_after + self.cfg.grace;
        let Some(t) = self.tenants.get_mut(&tenant) else {
            return;
        };
        let old = std::mem::replace(&mut t.current, key);
        let current = t.current.generation;
        t.previous = Some(old);
        t.previous_until = at(now, keep);
        t.rotate_at = rotate_at;
        for (peer, list) in derived {
            self.fill_missing(peer, tenant, list);
            if let Some(pair) = self.pairs.get_mut(&(peer, tenant)) {
                // A peer held on its previous key by a blocked combination may now switch
                // (to our new key): its previous key gets its normal time from here.
                if pair.previous.is_some()
                    && pair.previous_until.is_none()
                    && !pair.blocked(current, pair.latest.generation, Dir::In)
                {
                    pair.previous_until = Some(at(now, keep));
                }
            }
            self.changed.insert((peer, tenant));
        }
        self.advertise.insert(tenant);
    }
}

/// When our sending to the pair may move to our current key without a confirmation:
/// `switch_after` after the key was made, or after the last packet the peer sent to one of
/// our older keys (the peer is sending, so its confirmation will come once it has the key;
/// waiting for it avoids sending to a key the peer does not have yet).
fn switch_deadline(pair: &Pair, t: &Tenant, cfg: &KeyConfig) -> Instant {
    let created = t.current.created.max(t.current.advertised);
    // A peer whose SA toward our current key is blocked cannot confirm it: its traffic to
    // our older key is then no sign that it lacks the key, and must not hold us back.
    if pair.blocked(t.current.generation, pair.latest.generation, Dir::In) {
        return at(created, cfg.switch_after);
    }
    let since = pair.last_seen_old.map_or(created, |s| s.max(created));
    at(since, cfg.switch_after)
}

/// Moves our sending to our current key if it is not there yet, the SA it needs is live, and
/// the peer confirmed it has the key or the switch deadline passed. True when the outbound
/// SA changed.
fn try_switch(pair: &mut Pair, t: &Tenant, cfg: &KeyConfig, now: Instant, confirmed: bool) -> bool {
    let current = t.current.generation;
    if pair.sending == current || pair.withdrawn_at.is_some() {
        return false;
    }
    if !pair.live(current, pair.latest.generation, Dir::Out) {
        return false;
    }
    if !confirmed && now < switch_deadline(pair, t, cfg) {
        return false;
    }
    pair.sending = current;
    pair.refresh_out()
}

/// `derive_pair` for one combination, through the test hook in tests.
fn derive_for(
    ctx: &SaContext,
    local: &LocalKey,
    peer_generation: u32,
    peer_public: &[u8; PUBLIC_KEY_LEN],
    hook: &mut Hook,
) -> Result<PairKeys, KeyError> {
    #[allow(unused_mut)]
    let mut keys = derive_pair(ctx, &local.pair, peer_public)?;
    #[cfg(test)]
    if let Some(h) = hook.as_mut() {
        for (dir, sa) in [(Dir::Out, &mut keys.outbound), (Dir::In, &mut keys.inbound)] {
            let args = HookArgs {
                dir,
                local_generation: local.generation,
                peer_generation,
                local_public: *local.pair.public(),
            };
            if let Some(spi) = h(&args) {
                sa.spi_base = spi;
            }
        }
    }
    #[cfg(not(test))]
    let _ = (peer_generation, hook);
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::sim::{lab_config, TestRng, TENANT};
    use std::net::Ipv4Addr;

    const LO_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1));
    const LO_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 5, 5, 5));

    fn manager(lo: IpAddr, seed: u64, now: Instant) -> KeyManager {
        let mut km = KeyManager::new(lab_config(), lo, TestRng::new(seed)).unwrap();
        km.add_tenant(TENANT, now).unwrap();
        km
    }

    fn key_of(km: &KeyManager) -> (u32, [u8; 32]) {
        km.local_key(TENANT).unwrap()
    }

    #[test]
    fn new_refuses_a_bad_configuration() {
        let cfg = KeyConfig {
            rotate_every: Duration::from_secs(5),
            ..lab_config()
        };
        assert!(matches!(
            KeyManager::new(cfg, LO_A, TestRng::new(1)),
            Err(KeyError::Config(_))
        ));
    }

    /// Bad input from the network is an error and changes nothing.
    #[test]
    fn bad_peer_keys_change_nothing() {
        let now = Instant::now();
        let mut a = manager(LO_A, 1, now);
        assert_eq!(
            a.peer_key(LO_B, TENANT, 1, &[7u8; 31], now),
            Err(KeyError::PublicKeyLength { len: 31 })
        );
        assert_eq!(
            a.peer_key(LO_B, TENANT, 1, &[0u8; 32], now),
            Err(KeyError::LowOrderPublicKey)
        );
        let b = manager(LO_B, 2, now);
        let (g, p) = key_of(&b);
        assert_eq!(
            a.peer_key(LO_B, TENANT + 1, g, &p, now),
            Err(KeyError::UnknownTenant { tenant: TENANT + 1 })
        );
        assert_eq!(
            a.peer_key(LO_A, TENANT, g, &p, now),
            Err(KeyError::OwnLoopback { peer: LO_A })
        );
        assert!(a.sas(LO_B, TENANT).is_none());
        assert_eq!(a.poll(now), vec![KeyEvent::Advertise { tenant: TENANT }]);
        // A low-order key for a known pair leaves the pair as it was.
        assert_eq!(a.peer_key(LO_B, TENANT, g, &p, now), Ok(true));
        let before = a.sas(LO_B, TENANT);
        assert_eq!(
            a.peer_key(LO_B, TENANT, g.wrapping_add(1), &[0u8; 32], now),
            Err(KeyError::LowOrderPublicKey)
        );
        assert_eq!(a.sas(LO_B, TENANT), before);
        assert_eq!(a.peer_generations(LO_B, TENANT), vec![g]);
    }

    /// The SAs of a peer's previous key stay until the peer is seen on its new key (then
    /// `grace`), however late its switch comes, up to one rotation period.
    #[test]
    fn a_peers_previous_key_stays_until_the_peer_switched() {
        let t0 = Instant::now();
        let mut a = manager(LO_A, 1, t0);
        let mut b = manager(LO_B, 2, t0);
        let (g, p) = key_of(&b);
        a.peer_key(LO_B, TENANT, g, &p, t0).unwrap();
        let (ga, pa) = key_of(&a);
        b.peer_key(LO_A, TENANT, ga, &pa, t0).unwrap();
        a.poll(t0);
        b.poll(t0);
        // B rotates; A learns the new key at t0.
        b.rekey(TENANT, t0).unwrap();
        b.poll(t0);
        let (g2, p2) = key_of(&b);
        a.peer_key(LO_B, TENANT, g2, &p2, t0).unwrap();
        a.poll(t0);
        let peer_gens = |a: &KeyManager| {
            let mut v: Vec<u32> = a
                .sas(LO_B, TENANT)
                .unwrap()
                .inbound
                .iter()
                .map(|s| s.peer_generation)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let cfg = lab_config();
        let late = t0 + cfg.switch_after + cfg.grace + Duration::from_secs(1);
        a.poll(late);
        assert!(peer_gens(&a).contains(&g), "kept: B has not switched yet");
        // B's packets on its new key reach A: the old one goes after its time.
        let spi = a
            .sas(LO_B, TENANT)
            .unwrap()
            .inbound
            .iter()
            .find(|s| s.peer_generation == g2)
            .unwrap()
            .spi_base;
        a.inbound_seen(LO_B, TENANT, spi + 3, late);
        a.poll(late);
        assert_eq!(peer_gens(&a), vec![g2]);
    }

    /// A key not confirmed yet waits `switch_after` from its last advertisement (a session
    /// that came back after the key was made), not from its creation.
    #[test]
    fn a_readvertised_key_waits_switch_after_again() {
        let t0 = Instant::now();
        let mut a = manager(LO_A, 1, t0);
        let b = manager(LO_B, 2, t0);
        let (g, p) = key_of(&b);
        a.peer_key(LO_B, TENANT, g, &p, t0).unwrap();
        a.poll(t0);
        let sending = |a: &KeyManager| {
            a.sas(LO_B, TENANT)
                .unwrap()
                .outbound
                .unwrap()
                .local_generation
        };
        let first = sending(&a);
        a.rekey(TENANT, t0).unwrap();
        a.poll(t0);
        let new = key_of(&a).0;
        assert_ne!(new, first);
        let sa = lab_config().switch_after;
        // The key was made at t0 but could only be advertised at t0 + 1 h (no session).
        let later = t0 + Duration::from_secs(3600);
        a.advertised(later);
        a.poll(later);
        assert_eq!(sending(&a), first, "not switched at once");
        a.poll(later + sa - Duration::from_millis(1));
        assert_eq!(sending(&a), first);
        a.poll(later + sa);
        assert_eq!(
            sending(&a),
            new,
            "switched switch_after after the advertisement"
        );
    }

    /// Repeat, stale, next, jump (a restart, even to a lower number).
    #[test]
    fn peer_key_updates() {
        let now = Instant::now();
        let mut a = manager(LO_A, 1, now);
        let (g, p) = key_of(&manager(LO_B, 2, now));
        let (_, p2) = key_of(&manager(LO_B, 3, now));
        let (_, p3) = key_of(&manager(LO_B, 4, now));
        assert_eq!(a.peer_key(LO_B, TENANT, g, &p, now), Ok(true));
        a.poll(now);
        assert_eq!(a.peer_key(LO_B, TENANT, g, &p, now), Ok(false));
        assert_eq!(a.poll(now), vec![]);
        assert_eq!(
            a.peer_key(LO_B, TENANT, g.wrapping_add(1), &p2, now),
            Ok(true)
        );
        assert_eq!(a.peer_generations(LO_B, TENANT), vec![g, g.wrapping_add(1)]);
        // Stale: up to STALE_WINDOW behind, seen or not.
        assert_eq!(a.peer_key(LO_B, TENANT, g, &p, now), Ok(false));
        assert_eq!(
            a.peer_key(LO_B, TENANT, g.wrapping_sub(STALE_WINDOW - 2), &p3, now),
            Ok(false)
        );
        // Far away, below: a restart with a fresh random start; the old keys are dead.
        let restart = g.wrapping_sub(1_000_000);
        assert_eq!(a.peer_key(LO_B, TENANT, restart, &p3, now), Ok(true));
        assert_eq!(a.peer_generations(LO_B, TENANT), vec![restart]);
        let sas = a.sas(LO_B, TENANT).unwrap();
        assert_eq!(sas.inbound.len(), 1);
        assert_eq!(sas.outbound.unwrap().peer_generation, restart);
        // IPv4-mapped IPv6 is the same peer.
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 5, 5, 5).to_ipv6_mapped());
        assert_eq!(a.peer_key(mapped, TENANT, restart, &p3, now), Ok(false));
    }

    /// Both edges' views agree, a confirmation switches at once, and a packet on an
    /// unknown SPI is ignored.
    #[test]
    fn confirmation_switches_at_once() {
        let now = Instant::now();
        let mut a = manager(LO_A, 1, now);
        let mut b = manager(LO_B, 2, now);
        let (ga, pa) = key_of(&a);
        let (gb, pb) = key_of(&b);
        a.peer_key(LO_B, TENANT, gb, &pb, now).unwrap();
        b.peer_key(LO_A, TENANT, ga, &pa, now).unwrap();
        let (sa, sb) = (a.sas(LO_B, TENANT).unwrap(), b.sas(LO_A, TENANT).unwrap());
        assert_eq!(sa.outbound.as_ref().unwrap().keymat, sb.inbound[0].keymat);
        assert_eq!(sb.outbound.as_ref().unwrap().keymat, sa.inbound[0].keymat);

        let t1 = now + Duration::from_secs(1);
        a.rekey(TENANT, t1).unwrap();
        let events = a.poll(t1);
        assert_eq!(
            events,
            vec![
                KeyEvent::SasChanged {
                    peer: LO_B,
                    tenant: TENANT
                },
                KeyEvent::Advertise { tenant: TENANT }
            ]
        );
        let (ga2, pa2) = key_of(&a);
        assert_eq!(ga2, ga.wrapping_add(1));
        // The new key's inbound SA is there before the advertisement.
        let sa = a.sas(LO_B, TENANT).unwrap();
        assert!(sa.inbound.iter().any(|s| s.local_generation == ga2));
        assert_eq!(sa.outbound.as_ref().unwrap().local_generation, ga);
        // Noise: an unknown SPI changes nothing.
        a.inbound_seen(LO_B, TENANT, 0x4242_4240, t1);
        assert_eq!(a.poll(t1), vec![]);
        // B learns it and sends on it: A switches at once, long before switch_after.
        let t2 = t1 + Duration::from_millis(200);
        b.peer_key(LO_A, TENANT, ga2, &pa2, t2).unwrap();
        let spi = b.sas(LO_A, TENANT).unwrap().outbound.unwrap().spi_base;
        a.inbound_seen(LO_B, TENANT, spi + 3, t2);
        assert_eq!(
            a.poll(t2),
            vec![KeyEvent::SasChanged {
                peer: LO_B,
                tenant: TENANT
            }]
        );
        assert_eq!(
            a.sas(LO_B, TENANT)
                .unwrap()
                .outbound
                .unwrap()
                .local_generation,
            ga2
        );
    }

    #[test]
    fn remove_tenant_drops_everything() {
        let now = Instant::now();
        let mut a = manager(LO_A, 1, now);
        let (g, p) = key_of(&manager(LO_B, 2, now));
        a.peer_key(LO_B, TENANT, g, &p, now).unwrap();
        a.poll(now);
        assert!(a.remove_tenant(TENANT, now));
        assert_eq!(
            a.poll(now),
            vec![KeyEvent::SasChanged {
                peer: LO_B,
                tenant: TENANT
            }]
        );
        assert!(a.sas(LO_B, TENANT).is_none());
        assert!(a.local_key(TENANT).is_none());
        assert_eq!(a.next_deadline(), None);
        assert_eq!(
            a.peer_key(LO_B, TENANT, g, &p, now),
            Err(KeyError::UnknownTenant { tenant: TENANT })
        );
        assert!(!a.remove_tenant(TENANT, now));
    }

    /// The first rotation comes between 90 % and 100 % of `rotate_every`, and only then.
    #[test]
    fn scheduled_rotation() {
        let now = Instant::now();
        let mut a = manager(LO_A, 1, now);
        a.poll(now);
        let (g, _) = key_of(&a);
        let due = a.next_deadline().unwrap();
        let period = lab_config().rotate_every;
        assert!(due >= now + period.mul_f64(0.9) && due <= now + period);
        assert_eq!(a.poll(due - Duration::from_millis(1)), vec![]);
        assert_eq!(a.poll(due), vec![KeyEvent::Advertise { tenant: TENANT }]);
        assert_eq!(key_of(&a).0, g.wrapping_add(1));
        assert_eq!(a.local_generations(TENANT), vec![g, g.wrapping_add(1)]);
        // No peer: the previous key goes after switch_after + grace.
        let gone = a.next_deadline().unwrap();
        assert_eq!(gone, due + Duration::from_secs(10));
        a.poll(gone);
        assert_eq!(a.local_generations(TENANT), vec![g.wrapping_add(1)]);
    }
}
