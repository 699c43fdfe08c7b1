//! The DPDK side: EAL, ports, gateway resolution, the transmit / receive loops.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdwan_dataplane::eal;
use sdwan_dataplane::forward::PacketBuf;
use sdwan_dataplane::lcore::{self, Backoff};
use sdwan_dataplane::mbuf::{Burst, Mbuf};
use sdwan_dataplane::mempool::Mempool;
use sdwan_dataplane::port::{self, Port, PortConfig};
use sdwan_dataplane::wire::{format_mac, MacAddr};

use super::arp::{self, ArpEvent, Resolver, ResolverAction, ARP_FRAME_LEN};
use super::cli::{resolve_line, Config, Rate};
use super::frame::Plan;
use super::pace::{Pacer, Wait};
use super::payload::{classify, Class, Received, Signature};
use super::stats::{RxStats, TxStats};

/// Packets per transmit burst.
pub const TX_BURST: usize = 32;
/// tx_burst calls for one burst before what is left is freed and counted as dropped.
const TX_TRIES: usize = 16;
/// A burst may leave this early (the pacer's lookahead).
const LOOKAHEAD_US: f64 = 100.0;
/// Sleep rather than spin when the next burst is further away than this.
const SLEEP_THRESHOLD_US: f64 = 50.0;
/// Longest single sleep while pacing: received packets wait in the ring at most about this
/// long before being time-stamped (a bound on the generator's own receive delay).
const MAX_SLEEP_US: u64 = 20;
/// How long a memif client waits for its server's socket.
const START_WAIT: Duration = Duration::from_secs(10);
/// Most sleep of the idle receive back-off.
const RX_BACKOFF_MAX_US: u32 = 20;

fn file_prefix(c: &Config) -> String {
    c.file_prefix
        .clone()
        .unwrap_or_else(|| format!("sdwan-pktgen-{}", std::process::id()))
}

/// The EAL arguments for `c`.
pub fn eal_args(c: &Config) -> Vec<String> {
    let prefix = file_prefix(c);
    let mut a: Vec<String> = vec!["--no-huge".into(), "-m".into(), c.mem_mb.to_string()];
    let allows_pci = c
        .eal_extra
        .iter()
        .any(|x| x == "-a" || x.starts_with("--allow") || x.starts_with("-a"));
    if !allows_pci {
        a.push("--no-pci".into());
    }
    a.extend(["--file-prefix".into(), prefix]);
    a.extend(["-l".into(), c.tx_core.to_string()]);
    a.extend(["--log-level".into(), "*:error".into()]);
    a.extend(c.eal_extra.iter().cloned());
    a
}

fn device_name(devargs: &str) -> &str {
    devargs.split(',').next().unwrap_or(devargs)
}

fn is_vdev(devargs: &str) -> bool {
    devargs.starts_with("net_") || devargs.starts_with("eth_")
}

fn open_port(devargs: &str, pool: &Mempool) -> Result<Port, String> {
    if is_vdev(devargs) {
        eal::vdev_init(devargs).map_err(|e| format!("creating device {devargs:?}: {e}"))?;
    }
    let name = device_name(devargs);
    let mut p = Port::by_name(name).map_err(|e| format!("port {name:?}: {e}"))?;
    p.configure(&PortConfig::default(), pool)
        .map_err(|e| format!("configuring {name:?}: {e}"))?;
    p.set_promiscuous();
    // A memif client waits for its server (see `Port::start_memif_client`).
    match port::memif_client_socket(devargs) {
        Some(sock) => p.start_memif_client(&sock, START_WAIT),
        None => p.start(),
    }
    .map_err(|e| format!("starting {name:?}: {e}"))?;
    Ok(p)
}

fn wait_link(p: &Port, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while !p.link().up {
        if start.elapsed() > timeout {
            return Err(format!(
                "link of {} did not come up within {} s (memif: is the peer running, with the \
                 same socket and id, and the other role?)",
                p.name(),
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Sends one prepared frame (ARP) on `port_id`; best effort.
fn send_frame(port_id: u16, pool: &Mempool, frame: &[u8]) -> bool {
    let Some(mut m) = Mbuf::alloc(pool) else {
        return false;
    };
    if !m.extend_from_slice(frame) {
        return false;
    }
    let mut b = Burst::new();
    let _ = b.push(m);
    port::tx_burst(port_id, 0, &mut b) == 1
}

/// Where ARP replies for a port go: out directly (this thread owns the port's tx queue), or to
/// the thread that does.
enum ReplyPath {
    Direct(u16),
    Forward(SyncSender<[u8; ARP_FRAME_LEN]>),
}

/// One port as the receive loop sees it.
struct RxPort {
    id: u16,
    mac: MacAddr,
    /// Addresses answered for ARP on this port.
    answer: Vec<Ipv4Addr>,
    reply: ReplyPath,
    /// This generator run's id: packets of another run are stale.
    run: u16,
}

/// Polls one port once; returns how many frames arrived.
#[inline]
fn poll(
    p: &RxPort,
    burst: &mut Burst,
    stats: &mut RxStats,
    ns_per_tick: f64,
    pool: &Mempool,
    mut resolver: Option<&mut Resolver>,
) -> usize {
    let n = port::rx_burst(p.id, 0, burst, usize::MAX);
    if n == 0 {
        return 0;
    }
    let now = eal::rdtsc();
    let mut out = [0u8; ARP_FRAME_LEN];
    for m in burst.as_mut_slice() {
        let data = m.data();
        match classify(data, p.run) {
            Received::Ours(sig) => stats.record(&sig, m.pkt_len() as usize, now, ns_per_tick),
            Received::Arp => {
                let want = resolver.as_ref().map(|r| r.target);
                match arp::handle(data, &p.mac, &p.answer, want, &mut out) {
                    ArpEvent::Reply => {
                        stats.arp_replies += 1;
                        match &p.reply {
                            ReplyPath::Direct(id) => {
                                send_frame(*id, pool, &out);
                            }
                            ReplyPath::Forward(tx) => match tx.try_send(out) {
                                Ok(()) | Err(TrySendError::Full(_)) => {}
                                Err(TrySendError::Disconnected(_)) => {}
                            },
                        }
                    }
                    ev @ ArpEvent::Learned { .. } => {
                        if let Some(r) = resolver.as_deref_mut() {
                            r.on_event(ev);
                        }
                    }
                    ArpEvent::Ignore => {}
                }
            }
            Received::OtherRun => stats.stale += 1,
            Received::Stray => stats.stray += 1,
        }
    }
    burst.clear();
    n
}

/// An id for this run, different from the previous trial's with probability 1 - 2^-16: the
/// TSC and the process id, mixed (splitmix64's finalizer).
fn run_id() -> u16 {
    let mut z = eal::rdtsc() ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u16
}

fn set_timer_slack() {
    // SAFETY: prctl on the calling thread; short pacing sleeps need a small timer slack (the
    // default 50 us would round every sleep up).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0, 0, 0) };
}

/// Everything a run measured.
pub struct Outcome {
    pub tx: TxStats,
    pub rx: RxStats,
    pub dst_mac: MacAddr,
}

pub fn run(c: &Config) -> Result<Outcome, String> {
    eal::init(&eal_args(c)).map_err(|e| format!("EAL: {e}"))?;
    let result = run_inner(c);
    eal::cleanup();
    // EAL leaves its runtime directory (the multi-process socket and config) behind; with a
    // prefix per run they would pile up.
    let runtime = std::path::Path::new("/var/run/dpdk").join(file_prefix(c));
    let _ = std::fs::remove_dir_all(runtime);
    result
}

fn run_inner(c: &Config) -> Result<Outcome, String> {
    let pool = Arc::new(Mempool::new("pktgen", 16383, 256).map_err(|e| format!("mempool: {e}"))?);
    let tx_port = open_port(&c.tx, &pool)?;
    let rx_port = match &c.rx {
        Some(r) if device_name(r) != device_name(&c.tx) => Some(open_port(r, &pool)?),
        _ => None,
    };
    wait_link(&tx_port, Duration::from_secs(10))?;
    if let Some(r) = &rx_port {
        wait_link(r, Duration::from_secs(10))?;
    }
    let outcome = traffic(c, &pool, &tx_port, rx_port.as_ref());
    drop(rx_port);
    drop(tx_port);
    outcome
}

fn traffic(
    c: &Config,
    pool: &Arc<Mempool>,
    tx_port: &Port,
    rx_port: Option<&Port>,
) -> Result<Outcome, String> {
    set_timer_slack();
    let hz = eal::tsc_hz();
    let ns_per_tick = 1e9 / hz as f64;
    let tx_mac = tx_port.mac();
    let two_threads = c.rx_core.is_some();

    // The tx port answers for --src-ip, the rx port for --rx-ip; one port doing both answers
    // for both.
    let same_port = rx_port.is_none();
    let both = vec![c.src_ip, c.rx_ip];
    let (fwd_tx, fwd_rx) = sync_channel::<[u8; ARP_FRAME_LEN]>(64);
    let run = run_id();
    let tx_side = RxPort {
        id: tx_port.id(),
        mac: tx_mac,
        answer: if same_port {
            both.clone()
        } else {
            vec![c.src_ip]
        },
        reply: ReplyPath::Direct(tx_port.id()),
        run,
    };
    let rx_side = match rx_port {
        Some(p) => RxPort {
            id: p.id(),
            mac: p.mac(),
            answer: vec![c.rx_ip],
            reply: ReplyPath::Direct(p.id()),
            run,
        },
        None => RxPort {
            id: tx_port.id(),
            mac: tx_mac,
            answer: both,
            reply: if two_threads {
                ReplyPath::Forward(fwd_tx.clone())
            } else {
                ReplyPath::Direct(tx_port.id())
            },
            run,
        },
    };

    let mut rx_stats = RxStats::default();
    let mut burst = Burst::new();

    // Gateway resolution.
    let dst_mac = match c.dst_mac {
        Some(m) => m,
        None => {
            let mut r = Resolver::new(
                c.gateway,
                Instant::now(),
                Duration::from_millis(100),
                Duration::from_secs(5),
            );
            let mut req = [0u8; ARP_FRAME_LEN];
            arp::request(&mut req, &tx_mac, c.src_ip, c.gateway);
            let mut scratch = RxStats::default();
            loop {
                match r.poll(Instant::now()) {
                    ResolverAction::Done(m) => break m,
                    ResolverAction::GiveUp => {
                        return Err(format!(
                            "ARP: no reply from gateway {} on {} within 5 s (give --dst-mac to skip ARP)",
                            c.gateway,
                            tx_port.name()
                        ))
                    }
                    ResolverAction::SendRequest => {
                        send_frame(tx_side.id, pool, &req);
                    }
                    ResolverAction::Wait => {}
                }
                poll(
                    &tx_side,
                    &mut burst,
                    &mut scratch,
                    ns_per_tick,
                    pool,
                    Some(&mut r),
                );
                if !same_port {
                    poll(&rx_side, &mut burst, &mut scratch, ns_per_tick, pool, None);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let plan = Plan::new(c, &tx_mac, &dst_mac);

    // The receiver thread, with two cores.
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = sync_channel::<RxStats>(1);
    let (rx_handle, local_rx) = match c.rx_core {
        Some(core) => {
            let stop = stop.clone();
            let pool = pool.clone();
            let busy = c.busy;
            let side = rx_side;
            let h = lcore::spawn_pinned(1, core, move || {
                set_timer_slack();
                let mut stats = RxStats::default();
                let mut burst = Burst::new();
                let mut backoff = Backoff::new(if busy { 0 } else { RX_BACKOFF_MAX_US });
                while !stop.load(Ordering::Acquire) {
                    let n = poll(&side, &mut burst, &mut stats, ns_per_tick, &pool, None);
                    if let Some(d) = backoff.after_poll(n) {
                        std::thread::sleep(d);
                    }
                }
                let _ = done_tx.send(stats);
            })
            .map_err(|e| format!("receiver thread on core {core}: {e}"))?;
            (Some(h), None)
        }
        None => (None, Some(rx_side)),
    };
    // In one-thread mode this thread polls the rx side itself (`local_rx`); in either mode it
    // polls the tx port when that is a different port (ARP for --src-ip), and sends the ARP
    // replies the receiver thread forwards.

    let mut tx = TxStats::default();
    let rate = resolve_line(c.rate, tx_port.link().speed_mbps, c.size);
    if c.rate == Rate::Line {
        eprintln!(
            "sdwan-pktgen: line rate of {} ({} Mbit/s): {rate:?}",
            tx_port.name(),
            tx_port.link().speed_mbps
        );
    }
    let mut pacer = Pacer::new(
        rate,
        hz,
        eal::rdtsc(),
        TX_BURST,
        LOOKAHEAD_US,
        SLEEP_THRESHOLD_US,
    );
    let mut plan = plan;
    let mut seq = [0u64; 2];
    let mut warm_seq = [0u64; 2];
    let mut tx_burst = Burst::new();
    let mut classes = [Class::Bulk; TX_BURST];
    let mut lens = [0usize; TX_BURST];
    let secs = |s: f64| (s * hz as f64) as u64;
    let t0 = eal::rdtsc();
    let mut warmup = c.warmup_s > 0.0;
    let mut phase_end = t0 + secs(if warmup { c.warmup_s } else { c.duration_s });
    let mut measure_start = t0;

    loop {
        let now = eal::rdtsc();
        if now >= phase_end {
            if warmup {
                warmup = false;
                measure_start = now;
                phase_end = now + secs(c.duration_s);
                continue;
            }
            break;
        }
        let next = plan.peek();
        match pacer.check(now, next.len) {
            Wait::Send => {
                let ts = eal::rdtsc();
                let mut n = 0;
                while n < TX_BURST {
                    let next = plan.peek();
                    // Out of mbufs: the schedule is not advanced, this burst is just shorter.
                    let Some(mut m) = Mbuf::alloc(pool) else {
                        break;
                    };
                    if !m.set_len(next.len) || !pacer.admit(ts, next.len) {
                        break;
                    }
                    let k = next.class.index();
                    let s = if warmup {
                        &mut warm_seq[k]
                    } else {
                        &mut seq[k]
                    };
                    let sig = Signature {
                        run,
                        class: next.class,
                        warmup,
                        seq: *s,
                        tx_tsc: ts,
                    };
                    *s += 1;
                    plan.write(&next, &sig, m.data_mut());
                    plan.advance(&next);
                    classes[n] = next.class;
                    lens[n] = next.len;
                    let _ = tx_burst.push(m);
                    n += 1;
                }
                let mut accepted = 0;
                for _ in 0..TX_TRIES {
                    accepted += port::tx_burst(tx_side.id, 0, &mut tx_burst);
                    if tx_burst.is_empty() {
                        break;
                    }
                }
                let refused = tx_burst.len();
                tx_burst.clear();
                if warmup {
                    tx.warmup_packets += accepted as u64;
                } else {
                    for i in 0..accepted {
                        tx.sent[classes[i].index()] += 1;
                        tx.bytes += lens[i] as u64;
                    }
                    tx.packets += accepted as u64;
                    tx.dropped += refused as u64;
                }
            }
            Wait::Spin => {}
            Wait::Sleep(ticks) if !c.busy => {
                if let Some(side) = &local_rx {
                    poll(side, &mut burst, &mut rx_stats, ns_per_tick, pool, None);
                }
                let us = ((ticks as f64 * 1e6 / hz as f64) as u64).clamp(1, MAX_SLEEP_US);
                std::thread::sleep(Duration::from_micros(us));
            }
            Wait::Sleep(_) => {}
        }
        if let Some(side) = &local_rx {
            poll(side, &mut burst, &mut rx_stats, ns_per_tick, pool, None);
        }
        if !same_port {
            poll(&tx_side, &mut burst, &mut rx_stats, ns_per_tick, pool, None);
        }
        forward_replies(&fwd_rx, tx_side.id, pool);
    }
    let tx_end = eal::rdtsc();
    tx.seconds = (tx_end - measure_start) as f64 / hz as f64;

    // Drain: keep receiving (and answering ARP) for --drain-ms.
    let drain_end = Instant::now() + Duration::from_millis(c.drain_ms);
    let mut backoff = Backoff::new(if c.busy { 0 } else { RX_BACKOFF_MAX_US });
    while Instant::now() < drain_end {
        let mut n = 0;
        if let Some(side) = &local_rx {
            n += poll(side, &mut burst, &mut rx_stats, ns_per_tick, pool, None);
        }
        if !same_port {
            n += poll(&tx_side, &mut burst, &mut rx_stats, ns_per_tick, pool, None);
        }
        forward_replies(&fwd_rx, tx_side.id, pool);
        if let Some(d) = backoff.after_poll(n) {
            std::thread::sleep(d);
        }
    }
    stop.store(true, Ordering::Release);
    if let Some(h) = rx_handle {
        let _ = h.join();
        let mut s = done_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "receiver thread ended without its statistics".to_string())?;
        // This thread saw only the tx port's own frames (ARP, strays).
        s.stray += rx_stats.stray;
        s.stale += rx_stats.stale;
        s.arp_replies += rx_stats.arp_replies;
        rx_stats = s;
    }
    drop(fwd_tx);
    Ok(Outcome {
        tx,
        rx: rx_stats,
        dst_mac,
    })
}

fn forward_replies(rx: &Receiver<[u8; ARP_FRAME_LEN]>, port_id: u16, pool: &Mempool) {
    while let Ok(f) = rx.try_recv() {
        send_frame(port_id, pool, &f);
    }
}

pub fn describe_mac(m: &MacAddr) -> String {
    format_mac(m)
}
