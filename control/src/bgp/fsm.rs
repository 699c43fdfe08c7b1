//! The BGP session state machine (RFC 4271 §8), sans-IO: the owner feeds it events (start,
//! stop, the TCP connection's fate, received bytes, the clock) and carries out the actions it
//! returns (connect, send, close, and what the RIB must hear). It never touches a socket or
//! reads the clock itself, so every transition is a unit test.
//!
//! ```text
//!            start                 connected                OPEN ok
//!   Idle ─────────────▶ Connect ───────────────▶ OpenSent ─────────▶ OpenConfirm
//!    ▲  ◀── retry timer ── │ (passive: Active)       │ error/close         │ KEEPALIVE
//!    │                      └── failed ─▶ Idle        ▼                     ▼
//!    └──────────────── any error, NOTIFICATION, hold timer, close ◀── Established
//! ```
//! Simplifications, each deliberate: a neighbor is either active (we connect) or passive (we
//! only accept), so there is no connection collision to resolve (§6.8); no DelayOpen; the
//! connect-retry timer doubles after each failure up to 4 times its configured value (the
//! "damping" §8.1.1 allows), with jitter, so a reflector that is down is not hammered.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::wire::notification::{cease_subcode, code, fsm_subcode, open_subcode};
use super::wire::{
    frame, DecodeError, Message, Notification, Open, Received, RouteRefresh, Session, Update,
    UpdateOutcome,
};

/// RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// As FRR's `show bgp summary` prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// What the session is configured with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The AS the peer must announce.
    pub remote_as: u32,
    /// Our BGP identifier (the peer must not announce the same).
    pub router_id: Ipv4Addr,
    /// We only accept connections (no connect attempts).
    pub passive: bool,
    /// Hold time we offer; the session uses the smaller of both (0: no keepalives).
    pub hold_time: u16,
    /// Base connect-retry interval.
    pub connect_retry: Duration,
}

/// What the owner must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report `connected` or `connect_failed`.
    Connect,
    /// Write these bytes (whole messages) to the connection.
    Send(Vec<u8>),
    /// Close the connection (after writing what was sent before).
    Close,
    /// The session is up: what both sides agreed on, and the peer's OPEN.
    Up { session: Session, remote: Box<Open> },
    /// The session went down from Established (the RIB drops or marks stale the peer's
    /// routes, per graceful restart).
    Down { reason: String },
    /// An UPDATE arrived (with its RFC 7606 outcome).
    Update(Box<UpdateOutcome>),
    /// The peer asks us to send our routes again (RFC 2918, RFC 7313).
    RouteRefresh(RouteRefresh),
}

/// Counters as `show bgp summary` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub msgs_received: u64,
    pub msgs_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    /// Times the session reached Established.
    pub established: u64,
    /// Times it left Established.
    pub dropped: u64,
}

/// Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large value").
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// Most doublings of the connect-retry interval (4x): a reflector that comes back is
/// reached again within a few intervals.
const MAX_BACKOFF_SHIFT: u32 = 2;

/// One BGP session with one peer.
#[derive(Debug)]
pub struct Fsm {
    cfg: SessionConfig,
    local_open: Open,
    state: State,
    /// Set while the session should run (between `start` and `stop`).
    enabled: bool,
    rx: Vec<u8>,
    session: Option<Session>,
    /// The peer's OPEN, between OpenSent and Established.
    pending_open: Option<Box<Open>>,
    hold: Duration,
    hold_deadline: Option<Instant>,
    keepalive_deadline: Option<Instant>,
    retry_deadline: Option<Instant>,
    failures: u32,
    /// When the state last changed to or from Established (`Up/Down` column).
    pub since: Option<Instant>,
    pub stats: Stats,
    /// Why the session last went down or failed, for the operator.
    pub last_error: Option<String>,
    /// A small deterministic jitter source (xorshift), seeded per session.
    jitter: u64,
}

impl Fsm {
    /// A session in Idle; `local_open` is the OPEN we send.
    pub fn new(cfg: SessionConfig, local_open: Open, seed: u64) -> Self {
        Fsm {
            cfg,
            local_open,
            state: State::Idle,
            enabled: false,
            rx: Vec::new(),
            session: None,
            pending_open: None,
            hold: Duration::ZERO,
            hold_deadline: None,
            keepalive_deadline: None,
            retry_deadline: None,
            failures: 0,
            since: None,
            stats: Stats::default(),
            last_error: None,
            jitter: seed | 1,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// The OPEN sent on the next connections (the current one keeps what it sent).
    pub fn set_local_open(&mut self, open: Open) {
        self.local_open = open;
    }

    /// What was negotiated, while Established.
    pub fn session(&self) -> Option<&Session> {
        self.session
            .as_ref()
            .filter(|_| self.state == State::Established)
    }

    /// The earliest time [`poll`](Self::poll) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.hold_deadline,
            self.keepalive_deadline,
            self.retry_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// ManualStart (event 1), or ManualStart_with_PassiveTcpEstablishment (event 4).
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.enabled = true;
        if self.state != State::Idle {
            return Vec::new();
        }
        self.begin(now)
    }

    fn begin(&mut self, now: Instant) -> Vec<Action> {
        self.retry_deadline = Some(now + self.retry_interval());
        if self.cfg.passive {
            self.state = State::Active;
            Vec::new()
        } else {
            self.state = State::Connect;
            vec![Action::Connect]
        }
    }

    /// ManualStop (event 2): a Cease / Administrative Shutdown with `reason` (RFC 9003) if
    /// the connection is open; the session stays in Idle until `start`.
    pub fn stop(&mut self, now: Instant, reason: &str) -> Vec<Action> {
        self.enabled = false;
        let n = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, reason)
            .unwrap_or_else(|_| {
                Notification::new(code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN, vec![])
            });
        let mut out = Vec::new();
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            self.send(now, &Message::Notification(n), &mut out);
        }
        self.go_idle(now, "administratively stopped".into(), false, &mut out);
        self.retry_deadline = None;
        out
    }

    /// The TCP connection is up (events 16/17): we connected, or accepted the peer's.
    pub fn connected(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Connect | State::Active => {
                self.rx.clear();
                self.retry_deadline = None;
                self.send(now, &Message::Open(self.local_open.clone()), &mut out);
                self.state = State::OpenSent;
                self.hold_deadline = Some(now + OPEN_HOLD);
            }
            // A second connection while one is in use: refuse it (no collision handling).
            _ => out.push(Action::Close),
        }
        out
    }

    /// Whether a connection the peer opened would be taken now.
    pub fn accepts(&self) -> bool {
        self.enabled && matches!(self.state, State::Active | State::Connect)
    }

    /// The connect attempt failed (event 18).
    pub fn connect_failed(&mut self, now: Instant, why: &str) -> Vec<Action> {
        if self.state == State::Connect {
            self.last_error = Some(format!("connect: {why}"));
            self.failures = self.failures.saturating_add(1);
            self.state = State::Active;
            self.retry_deadline = Some(now + self.retry_interval());
        }
        Vec::new()
    }

    /// The connection closed or failed (event 18 after connected).
    pub fn closed(&mut self, now: Instant, why: &str) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            self.go_idle(now, format!("connection closed: {why}"), true, &mut out);
        }
        out
    }

    /// Bytes read from the connection: every whole message in them is handled.
    pub fn received(&mut self, now: Instant, bytes: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        self.rx.extend_from_slice(bytes);
        loop {
            if !matches!(
                self.state,
                State::OpenSent | State::OpenConfirm | State::Established
            ) {
                self.rx.clear();
                break;
            }
            let n = match frame(&self.rx) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    self.fail(now, &e, &mut out);
                    break;
                }
            };
            let msg: Vec<u8> = self.rx.drain(..n).collect();
            self.stats.msgs_received += 1;
            let codec = self
                .session
                .clone()
                .unwrap_or_else(|| Session::all_families(true));
            match Message::decode(&msg, &codec) {
                Ok(m) => self.handle(now, m, &mut out),
                Err(e) => self.fail(now, &e, &mut out),
            }
        }
        out
    }

    /// Timers (events 9-11): connect retry, hold, keepalive.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.hold_deadline.is_some_and(|d| now >= d) {
            let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new());
            self.send(now, &Message::Notification(n), &mut out);
            self.go_idle(now, "hold timer expired".into(), true, &mut out);
        }
        if self.keepalive_deadline.is_some_and(|d| now >= d) {
            self.send(now, &Message::Keepalive, &mut out);
            self.keepalive_deadline = self.keepalive_interval().map(|k| now + k);
        }
        if self.retry_deadline.is_some_and(|d| now >= d) {
            self.retry_deadline = None;
            match self.state {
                State::Idle if self.enabled => out.extend(self.begin(now)),
                State::Connect | State::Active if !self.cfg.passive => {
                    self.state = State::Connect;
                    self.retry_deadline = Some(now + self.retry_interval());
                    out.push(Action::Connect);
                }
                State::Active => self.retry_deadline = Some(now + self.retry_interval()),
                _ => {}
            }
        }
        out
    }

    /// Encodes an UPDATE for the established session.
    pub fn send_update(&mut self, now: Instant, update: &Update) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Established
            && self.send(now, &Message::Update(update.clone()), &mut out)
        {
            self.stats.updates_sent += 1;
        }
        out
    }

    /// Sends any message the owner built (ROUTE-REFRESH, an End-of-RIB, ...).
    pub fn send_message(&mut self, now: Instant, m: &Message) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Established {
            self.send(now, m, &mut out);
        }
        out
    }

    fn handle(&mut self, now: Instant, m: Received, out: &mut Vec<Action>) {
        match (self.state, m) {
            (_, Received::Notification(n)) => {
                let why = format!("NOTIFICATION received: {n}");
                self.go_idle(now, why, true, out);
            }
            (State::OpenSent, Received::Open(remote)) => {
                if let Err(n) = self.check_open(&remote) {
                    let why = format!("OPEN refused: {n}");
                    self.send(now, &Message::Notification(n), out);
                    self.go_idle(now, why, true, out);
                    return;
                }
                let session = Session::negotiate(&self.local_open, &remote);
                self.hold =
                    Duration::from_secs(u64::from(self.local_open.hold_time.min(remote.hold_time)));
                self.session = Some(session);
                self.send(now, &Message::Keepalive, out);
                self.state = State::OpenConfirm;
                self.arm_hold(now);
                self.keepalive_deadline = self.keepalive_interval().map(|k| now + k);
                self.pending_open = Some(Box::new(remote));
            }
            (State::OpenConfirm, Received::Keepalive) => {
                self.state = State::Established;
                self.failures = 0;
                self.since = Some(now);
                self.stats.established += 1;
                self.last_error = None;
                self.arm_hold(now);
                if let (Some(session), Some(remote)) =
                    (self.session.clone(), self.pending_open.take())
                {
                    out.push(Action::Up { session, remote });
                }
            }
            (State::Established, Received::Keepalive) => self.arm_hold(now),
            (State::Established, Received::Update(u)) => {
                self.arm_hold(now);
                self.stats.updates_received += 1;
                out.push(Action::Update(Box::new(u)));
            }
            (State::Established, Received::RouteRefresh(r)) => {
                self.arm_hold(now);
                out.push(Action::RouteRefresh(r));
            }
            (state, m) => {
                // RFC 6608: an unexpected message gets an FSM error naming the state.
                let sub = match state {
                    State::OpenSent => fsm_subcode::UNEXPECTED_IN_OPEN_SENT,
                    State::OpenConfirm => fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM,
                    State::Established => fsm_subcode::UNEXPECTED_IN_ESTABLISHED,
                    _ => fsm_subcode::UNSPECIFIED,
                };
                let n = Notification::new(code::FSM, sub, Vec::new());
                let why = format!(
                    "unexpected {} in {}",
                    m.into_message().kind().name(),
                    state.name()
                );
                self.send(now, &Message::Notification(n), out);
                self.go_idle(now, why, true, out);
            }
        }
    }

    /// RFC 4271 §6.2 checks the codec cannot make: the peer's AS, its identifier, its hold
    /// time.
    fn check_open(&self, remote: &Open) -> Result<(), Notification> {
        let peer_as = remote.asn();
        if peer_as != self.cfg.remote_as {
            return Err(Notification::new(
                code::OPEN_MESSAGE,
                open_subcode::BAD_PEER_AS,
                Vec::new(),
            ));
        }
        let id = remote.bgp_id;
        if id.is_unspecified() || id == self.cfg.router_id {
            return Err(Notification::new(
                code::OPEN_MESSAGE,
                open_subcode::BAD_BGP_IDENTIFIER,
                Vec::new(),
            ));
        }
        if remote.hold_time == 1 || remote.hold_time == 2 {
            return Err(Notification::new(
                code::OPEN_MESSAGE,
                open_subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
            ));
        }
        Ok(())
    }

    /// Reports a broken message: its NOTIFICATION, then Idle.
    fn fail(&mut self, now: Instant, e: &DecodeError, out: &mut Vec<Action>) {
        let why = format!("sent NOTIFICATION: {e}");
        self.send(now, &Message::Notification(e.notification().clone()), out);
        self.go_idle(now, why, true, out);
    }

    fn send(&mut self, now: Instant, m: &Message, out: &mut Vec<Action>) -> bool {
        let codec = self
            .session
            .clone()
            .unwrap_or_else(|| Session::all_families(true));
        match m.encode(&codec) {
            Ok(bytes) => {
                self.stats.msgs_sent += 1;
                out.push(Action::Send(bytes));
                // Any message resets the keepalive timer (RFC 4271 §4.4).
                if self.state == State::Established {
                    self.keepalive_deadline = self.keepalive_interval().map(|k| now + k);
                }
                true
            }
            Err(e) => {
                self.last_error = Some(format!("could not encode a message: {e}"));
                false
            }
        }
    }

    fn go_idle(&mut self, now: Instant, why: String, restart: bool, out: &mut Vec<Action>) {
        let was = self.state;
        if matches!(
            was,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            out.push(Action::Close);
        }
        if was == State::Established {
            self.stats.dropped += 1;
            self.since = Some(now);
            out.push(Action::Down {
                reason: why.clone(),
            });
        }
        self.last_error = Some(why);
        self.state = State::Idle;
        self.session = None;
        self.pending_open = None;
        self.rx.clear();
        self.hold_deadline = None;
        self.keepalive_deadline = None;
        if restart && self.enabled {
            self.failures = self.failures.saturating_add(1);
            self.retry_deadline = Some(now + self.retry_interval());
        }
    }

    fn arm_hold(&mut self, now: Instant) {
        self.hold_deadline = (!self.hold.is_zero()).then(|| now + self.hold);
    }

    fn keepalive_interval(&self) -> Option<Duration> {
        (!self.hold.is_zero()).then(|| self.hold / 3)
    }

    /// The connect-retry interval: doubled per failure (at most 4x), minus up to 25% jitter
    /// (RFC 4271 §10).
    fn retry_interval(&mut self) -> Duration {
        let base = self.cfg.connect_retry * (1 << self.failures.min(MAX_BACKOFF_SHIFT));
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let cut = (self.jitter % 1000) as u32;
        base - base * cut / 4000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::wire::open::Capability;
    use crate::bgp::wire::Family;

    fn open(asn: u32, id: [u8; 4], hold: u16) -> Open {
        Open::new(
            asn,
            hold,
            Ipv4Addr::from(id),
            vec![
                Capability::Multiprotocol(Family::IPV4_VPN),
                Capability::RouteRefresh,
            ],
        )
    }

    fn fsm(asn_expected: u32, id: [u8; 4], passive: bool, hold: u16) -> Fsm {
        Fsm::new(
            SessionConfig {
                remote_as: asn_expected,
                router_id: Ipv4Addr::from(id),
                passive,
                hold_time: hold,
                connect_retry: Duration::from_secs(5),
            },
            open(65000, id, hold),
            u64::from(u32::from_be_bytes(id)),
        )
    }

    fn sent(actions: &[Action]) -> Vec<u8> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Drives A (active) and B (passive) to Established.
    fn established(hold: u16) -> (Fsm, Fsm, Instant) {
        let t0 = Instant::now();
        let mut a = fsm(65000, [10, 0, 0, 1], false, hold);
        let mut b = fsm(65000, [10, 0, 0, 2], true, hold);
        assert_eq!(a.start(t0), vec![Action::Connect]);
        assert!(b.start(t0).is_empty());
        assert_eq!(b.state(), State::Active);
        assert!(b.accepts());
        let a_open = a.connected(t0);
        let b_open = b.connected(t0);
        assert_eq!((a.state(), b.state()), (State::OpenSent, State::OpenSent));
        let a_ka = a.received(t0, &sent(&b_open));
        let b_ka = b.received(t0, &sent(&a_open));
        assert_eq!(
            (a.state(), b.state()),
            (State::OpenConfirm, State::OpenConfirm)
        );
        let a_up = a.received(t0, &sent(&b_ka));
        let b_up = b.received(t0, &sent(&a_ka));
        assert!(a_up.iter().any(|x| matches!(x, Action::Up { .. })));
        assert!(b_up.iter().any(|x| matches!(x, Action::Up { .. })));
        assert_eq!(
            (a.state(), b.state()),
            (State::Established, State::Established)
        );
        (a, b, t0)
    }

    #[test]
    fn two_speakers_reach_established_and_keep_it_with_keepalives() {
        let (mut a, mut b, t0) = established(9);
        assert_eq!(a.session().unwrap().families, vec![Family::IPV4_VPN]);
        // Keepalives every hold/3 = 3 s keep the other side's hold timer from firing.
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_secs(3);
            let ka = a.poll(now);
            assert!(!sent(&ka).is_empty(), "A sends a keepalive every 3 s");
            assert!(b.received(now, &sent(&ka)).is_empty());
            let kb = b.poll(now);
            a.received(now, &sent(&kb));
        }
        assert_eq!(b.state(), State::Established);
    }

    #[test]
    fn hold_timer_expiry_sends_notification_4_and_goes_down() {
        let (_, mut b, t0) = established(9);
        let out = b.poll(t0 + Duration::from_secs(10));
        let bytes = sent(&out);
        assert_eq!(bytes[18], 3, "a NOTIFICATION");
        assert_eq!(bytes[19], code::HOLD_TIMER_EXPIRED);
        assert!(out.iter().any(|x| matches!(x, Action::Down { .. })));
        assert!(out.contains(&Action::Close));
        assert_eq!(b.state(), State::Idle);
        assert_eq!(b.stats.dropped, 1);
        // It listens again after the retry interval (passive).
        b.poll(t0 + Duration::from_secs(60));
        assert_eq!(b.state(), State::Active);
    }

    #[test]
    fn a_peer_with_the_wrong_as_is_refused_with_open_error_2_2() {
        let t0 = Instant::now();
        let mut a = fsm(65001, [10, 0, 0, 1], false, 90); // expects 65001, the peer is 65000
        let b_open = {
            let mut b = fsm(65000, [10, 0, 0, 2], true, 90);
            b.start(t0);
            b.connected(t0)
        };
        a.start(t0);
        a.connected(t0);
        let out = a.received(t0, &sent(&b_open));
        let n = sent(&out);
        assert_eq!((n[18], n[19], n[20]), (3, 2, 2));
        assert_eq!(a.state(), State::Idle);
        assert!(a.last_error.as_deref().unwrap().contains("OPEN refused"));
    }

    #[test]
    fn the_same_router_id_and_a_one_second_hold_time_are_refused() {
        let t0 = Instant::now();
        for (id, hold, sub) in [
            ([10, 0, 0, 1], 90, open_subcode::BAD_BGP_IDENTIFIER),
            ([10, 0, 0, 2], 1, open_subcode::UNACCEPTABLE_HOLD_TIME),
        ] {
            let mut a = fsm(65000, [10, 0, 0, 1], false, 90);
            a.start(t0);
            a.connected(t0);
            let bytes = Message::Open(open(65000, id, hold))
                .encode(&Session::all_families(true))
                .unwrap();
            let n = sent(&a.received(t0, &bytes));
            assert_eq!((n[19], n[20]), (code::OPEN_MESSAGE, sub));
        }
    }

    #[test]
    fn garbage_and_unexpected_messages_get_the_right_notification() {
        // A broken marker: Message Header Error / Connection Not Synchronized.
        let (mut a, _, t0) = established(90);
        let n = sent(&a.received(t0, &[0u8; 19]));
        assert_eq!((n[19], n[20]), (1, 1));
        assert_eq!(a.state(), State::Idle);
        // An OPEN in Established: FSM error 5/3 (RFC 6608).
        let (mut a, _, t0) = established(90);
        let bytes = Message::Open(open(65000, [10, 0, 0, 2], 90))
            .encode(&Session::all_families(true))
            .unwrap();
        let n = sent(&a.received(t0, &bytes));
        assert_eq!(
            (n[19], n[20]),
            (code::FSM, fsm_subcode::UNEXPECTED_IN_ESTABLISHED)
        );
    }

    #[test]
    fn messages_split_across_reads_are_reassembled() {
        let (mut a, mut b, t0) = established(90);
        let u = Update::end_of_rib(Family::IPV4_VPN);
        let bytes = sent(&a.send_update(t0, &u));
        let (x, y) = bytes.split_at(7);
        assert!(b.received(t0, x).is_empty());
        let out = b.received(t0, y);
        assert!(matches!(out.as_slice(), [Action::Update(_)]));
        assert_eq!(b.stats.updates_received, 1);
    }

    /// RFC 7606 at the session: an UPDATE with a malformed attribute that the RFC treats as
    /// withdraw (or discards) keeps the session; a broken NLRI field resets it.
    #[test]
    fn malformed_updates_keep_the_session_unless_the_rfc_says_reset() {
        use crate::bgp::wire::attributes::attr_type;
        use crate::bgp::wire::nlri::VpnRoute;
        use crate::bgp::wire::rd::RouteDistinguisher;
        use crate::bgp::wire::{AttrValue, Nlri, PathAttribute};
        let (mut a, mut b, t0) = established(90);
        let route = Nlri::Vpn(VpnRoute::new(
            100,
            RouteDistinguisher::As2 {
                asn: 65000,
                number: 1,
            },
            "10.1.0.0/24".parse().unwrap(),
        ));
        let good = Update::announce(
            Family::IPV4_VPN,
            "10.255.0.1".parse().unwrap(),
            vec![
                PathAttribute::new(AttrValue::Origin(crate::bgp::wire::attributes::Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(
                    crate::bgp::wire::attributes::AsPath::sequence(Vec::new()),
                )),
            ],
            vec![route],
        );
        // ORIGIN 9: treat-as-withdraw; the session stays up and the RIB gets a withdrawal.
        let mut bad = good.clone();
        for x in &mut bad.attributes {
            if x.type_code() == attr_type::ORIGIN {
                x.value = AttrValue::Other {
                    type_code: attr_type::ORIGIN,
                    value: vec![9],
                };
            }
        }
        let out = b.received(t0, &sent(&a.send_update(t0, &bad)));
        match out.as_slice() {
            [Action::Update(u)] => {
                assert!(u.treat_as_withdraw.is_some());
                assert_eq!(u.update.withdrawals().len(), 1);
                assert!(u.update.announced().is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.state(), State::Established);
        // An AGGREGATOR of the wrong length: discarded, the route stands.
        let mut agg = good.clone();
        agg.attributes.push(PathAttribute::new(AttrValue::Other {
            type_code: attr_type::AGGREGATOR,
            value: vec![1, 2, 3],
        }));
        let out = b.received(t0, &sent(&a.send_update(t0, &agg)));
        match out.as_slice() {
            [Action::Update(u)] => {
                assert_eq!(u.discarded.len(), 1);
                assert_eq!(u.update.announced().len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.state(), State::Established);
        // A Withdrawn Routes length that runs past the message: session reset, 3/1.
        let mut bytes = sent(&a.send_update(t0, &good));
        bytes[19] = 0xff;
        let out = b.received(t0, &bytes);
        let n = sent(&out);
        assert_eq!((n[19], n[20]), (code::UPDATE_MESSAGE, 1));
        assert_eq!(b.state(), State::Idle);
    }

    #[test]
    fn stop_sends_an_administrative_shutdown_with_its_reason() {
        let (mut a, mut b, t0) = established(90);
        let out = a.stop(t0, "maintenance");
        let n = sent(&out);
        assert_eq!(
            (n[19], n[20]),
            (code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN)
        );
        assert!(out.iter().any(|x| matches!(x, Action::Down { .. })));
        let down = b.received(t0, &n);
        assert!(down
            .iter()
            .any(|x| matches!(x, Action::Down { reason } if reason.contains("maintenance"))));
        // A stopped session stays down.
        assert!(a.poll(t0 + Duration::from_secs(600)).is_empty());
        assert_eq!(a.state(), State::Idle);
    }

    #[test]
    fn connect_retries_back_off_with_jitter() {
        let t0 = Instant::now();
        let mut a = fsm(65000, [10, 0, 0, 1], false, 90);
        a.start(t0);
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..6 {
            a.connect_failed(now, "refused");
            let next = a.next_deadline().unwrap();
            gaps.push(next - now);
            now = next;
            assert_eq!(a.poll(now), vec![Action::Connect]);
        }
        assert!(gaps[0] <= Duration::from_secs(10) && gaps[0] > Duration::from_secs(7));
        assert!(gaps[5] <= Duration::from_secs(20) && gaps[5] >= Duration::from_secs(15));
    }
}
