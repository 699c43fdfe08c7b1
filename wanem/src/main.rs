//! `sdwan-wanem`: WAN circuit emulator (I/O half). See `lib.rs` and `impair.rs`.
//!
//! ```text
//! sdwan-wanem run [--socket PATH] [--seed N] --circuit NAME:IFACE_A:IFACE_B [--circuit ...]
//! sdwan-wanem ctl [--socket PATH] set CIRCUIT [dir a2b|b2a] [delay MS] [jitter MS] [loss PCT]
//!                 [duplicate PCT] [reorder PCT] [rate MBIT] [blackhole]
//! sdwan-wanem ctl [--socket PATH] clear CIRCUIT
//! sdwan-wanem ctl [--socket PATH] show [--json]
//! ```

use std::ffi::CString;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sdwan_wanem::ctl::{self, Circuit, Request, Response};
use sdwan_wanem::impair::{Counters, MAX_FRAME};

const DEFAULT_SOCKET: &str = "/run/sdwan-lab/wanem.sock";

const USAGE: &str = "\
usage:
  sdwan-wanem run [--socket PATH] [--seed N] --circuit NAME:IFACE_A:IFACE_B [--circuit ...]
  sdwan-wanem ctl [--socket PATH] set CIRCUIT [dir a2b|b2a|both] [delay MS] [jitter MS]
                  [loss PCT] [duplicate PCT] [reorder PCT] [rate MBIT] [blackhole]
  sdwan-wanem ctl [--socket PATH] clear CIRCUIT
  sdwan-wanem ctl [--socket PATH] show [--json]

`set` replaces the circuit's settings as a whole (unspecified = off), in both directions
unless `dir` names one (a2b = from IFACE_A to IFACE_B). Delay is one-way per direction;
jitter is a uniform +/- variation of the delay (FIFO order kept); loss, duplicate and reorder
are percentages per frame and direction (a reordered frame overtakes its predecessor while that
one is still queued, so reorder needs a delay or a rate backlog, as with netem); rate is
Mbit/s of Ethernet frames (queue of 50 ms, tail drop); blackhole drops everything silently.
Default socket: /run/sdwan-lab/wanem.sock (or $WANEM_SOCKET).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => cmd_run(&args[1..]),
        Some("ctl") => cmd_ctl(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sdwan-wanem: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_socket() -> PathBuf {
    std::env::var_os("WANEM_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_SOCKET.into())
}

fn now_ns() -> u64 {
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// ctl

fn cmd_ctl(args: &[String]) -> Result<(), String> {
    let mut socket = default_socket();
    let mut json = false;
    let mut words: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().ok_or("--socket needs a path")?.into(),
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => words.push(a.clone()),
        }
    }
    let (req, what) = match words.first().map(String::as_str) {
        Some("set") => {
            let circuit = words.get(1).ok_or("set needs a circuit name")?.clone();
            let (dir, settings) = ctl::parse_set_words(&words[2..])?;
            let what = format!("{circuit} ({}): {}", dir.as_str(), settings.describe());
            (
                Request::Set {
                    circuit,
                    dir,
                    settings,
                },
                Some(what),
            )
        }
        Some("clear") => {
            let circuit = words.get(1).ok_or("clear needs a circuit name")?.clone();
            if words.len() > 2 {
                return Err(format!(
                    "clear takes one circuit name, got {:?}",
                    &words[1..]
                ));
            }
            (
                Request::Clear {
                    circuit: circuit.clone(),
                },
                Some(format!("{circuit}: clear")),
            )
        }
        Some("show") => {
            if words.len() > 1 {
                return Err(format!("show takes no arguments, got {:?}", &words[1..]));
            }
            (Request::Show, None)
        }
        Some(other) => return Err(format!("unknown ctl command {other:?} (set, clear, show)")),
        None => return Err("ctl needs a command: set, clear or show".into()),
    };
    let resp = request(&socket, &req)?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "request failed".into()));
    }
    match (req, what) {
        (Request::Show, _) => {
            let circuits = resp.circuits.unwrap_or_default();
            if json {
                let v = serde_json::json!({ "circuits": circuits });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
            } else {
                print!("{}", ctl::render_show(&circuits));
            }
        }
        (_, Some(what)) => println!("{what}"),
        _ => {}
    }
    Ok(())
}

fn request(socket: &Path, req: &Request) -> Result<Response, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to {}: {e} (is `sdwan-wanem run` running?)",
            socket.display()
        )
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| format!("write to {}: {e}", socket.display()))?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(|e| format!("read from {}: {e}", socket.display()))?;
    serde_json::from_str(&reply).map_err(|e| format!("bad reply {reply:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// AF_PACKET

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_OUTGOING: u8 = 4;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const SOCK_BUF: libc::c_int = 8 << 20;

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

#[repr(C)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to an int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Outcome of one read from a raw socket.
enum Rx {
    /// A frame, as `buf[start..end]`.
    Frame(usize, usize),
    /// Something to skip (our own sends, if PACKET_IGNORE_OUTGOING is unavailable).
    Skip,
    Oversize,
    Empty,
}

struct RawSock {
    fd: OwnedFd,
    name: String,
}

/// Headroom before the received frame so a VLAN tag the kernel moved into metadata can be put
/// back in the frame without copying it.
const HEADROOM: usize = 4;

impl RawSock {
    fn open(name: &str) -> Result<RawSock, String> {
        let cname = CString::new(name).map_err(|_| format!("bad interface name {name:?}"))?;
        // SAFETY: valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as libc::c_int;
        if ifindex == 0 {
            return Err(format!("no interface {name:?} in this network namespace"));
        }
        let err = |what: &str| format!("{name}: {what}: {}", io::Error::last_os_error());
        // Protocol 0 at creation: receive nothing until bound to the interface below.
        // SAFETY: plain syscall.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(err("socket(AF_PACKET) (needs CAP_NET_RAW)"));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        // Never see (and so never re-forward) what this host sends on the interface, our own
        // forwarded frames included. Older kernels: sll_pkttype is checked as well.
        let _ = setsockopt_int(raw, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        setsockopt_int(raw, SOL_PACKET, PACKET_AUXDATA, 1)
            .map_err(|e| format!("{name}: PACKET_AUXDATA: {e}"))?;
        if setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCK_BUF).is_err() {
            let _ = setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCK_BUF);
        }
        if setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCK_BUF).is_err() {
            let _ = setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCK_BUF);
        }
        // SAFETY: zeroed sockaddr_ll is valid; we fill the fields bind needs.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: pointer and size of a sockaddr_ll.
        let r = unsafe {
            libc::bind(
                raw,
                &sll as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(err("bind"));
        }
        let mreq = PacketMreq {
            mr_ifindex: ifindex,
            mr_type: PACKET_MR_PROMISC,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: pointer and size of a packet_mreq.
        let r = unsafe {
            libc::setsockopt(
                raw,
                SOL_PACKET,
                PACKET_ADD_MEMBERSHIP,
                &mreq as *const _ as *const libc::c_void,
                size_of::<PacketMreq>() as u32,
            )
        };
        if r < 0 {
            return Err(err("PACKET_ADD_MEMBERSHIP promiscuous"));
        }
        Ok(RawSock {
            fd,
            name: name.into(),
        })
    }

    /// Read one frame into `buf` (of HEADROOM + MAX_FRAME bytes), non-blocking.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Rx> {
        let mut iov = libc::iovec {
            iov_base: buf[HEADROOM..].as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len() - HEADROOM,
        };
        // SAFETY: zeroed sockaddr_ll / msghdr are valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut cmsg_buf = [0u64; 16];
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = &mut sll as *mut _ as *mut libc::c_void;
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::Interrupted => Ok(Rx::Empty),
                _ => Err(e),
            };
        }
        if sll.sll_pkttype == PACKET_OUTGOING {
            return Ok(Rx::Skip);
        }
        let n = n as usize;
        if n > buf.len() - HEADROOM || msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Ok(Rx::Oversize);
        }
        // The kernel strips an 802.1Q/802.1ad tag into metadata on receive; put it back.
        let mut aux: Option<TpacketAuxdata> = None;
        // SAFETY: iterating the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                    aux = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(c) as *const TpacketAuxdata
                    ));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if let Some(a) = aux {
            if (a.tp_vlan_tci != 0 || a.tp_status & TP_STATUS_VLAN_VALID != 0) && n >= 12 {
                let tpid = if a.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    a.tp_vlan_tpid
                } else {
                    0x8100
                };
                buf.copy_within(HEADROOM..HEADROOM + 12, 0);
                buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                buf[14..16].copy_from_slice(&a.tp_vlan_tci.to_be_bytes());
                return Ok(Rx::Frame(0, HEADROOM + n));
            }
        }
        Ok(Rx::Frame(HEADROOM, HEADROOM + n))
    }

    fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: pointer and length of a live slice; the socket is bound to the interface.
        let r = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        r == frame.len() as isize
    }

    /// The pending socket error (SO_ERROR), cleared by reading it.
    fn take_error(&self) -> Option<io::Error> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: pointer and size of an int.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut v as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        (r == 0 && v != 0).then(|| io::Error::from_raw_os_error(v))
    }

    /// Frames the kernel dropped on this socket since the last call.
    fn kernel_drops(&self) -> u64 {
        let mut st = TpacketStats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: pointer and size of a tpacket_stats.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                &mut st as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            st.tp_drops as u64
        }
    }
}

// ---------------------------------------------------------------------------------------------
// run

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

fn cmd_run(args: &[String]) -> Result<(), String> {
    let mut socket = default_socket();
    let mut seed: Option<u64> = None;
    let mut specs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().ok_or("--socket needs a path")?.into(),
            "--circuit" => specs.push(Circuit::parse_spec(
                it.next().ok_or("--circuit needs NAME:IFACE_A:IFACE_B")?,
            )?),
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                seed = Some(v.parse().map_err(|_| format!("bad --seed {v:?}"))?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} to run\n{USAGE}")),
        }
    }
    if specs.is_empty() {
        return Err("run needs at least one --circuit NAME:IFACE_A:IFACE_B".into());
    }
    for (i, (n, a, b)) in specs.iter().enumerate() {
        if a == b {
            return Err(format!("circuit {n}: both ends are {a}"));
        }
        for (n2, a2, b2) in &specs[..i] {
            if n == n2 {
                return Err(format!("circuit {n} given twice"));
            }
            for x in [a, b] {
                if x == a2 || x == b2 {
                    return Err(format!("interface {x} used by circuits {n2} and {n}"));
                }
            }
        }
    }
    let seed = seed.unwrap_or_else(|| now_ns() ^ ((std::process::id() as u64) << 32));

    let mut circuits = Vec::new();
    let mut socks = Vec::new(); // circuit i: socks[2i] = A side, socks[2i+1] = B side
    for (i, (n, a, b)) in specs.iter().enumerate() {
        circuits.push(Circuit::new(
            n,
            a,
            b,
            seed.wrapping_add(i as u64 * 0x9e37_79b9),
        ));
        socks.push(RawSock::open(a)?);
        socks.push(RawSock::open(b)?);
    }

    // Signals: blocked, and read from a signalfd in the poll set.
    // SAFETY: sigset manipulation on a local set; signalfd returns a new descriptor.
    let sigfd = unsafe {
        let mut set: libc::sigset_t = zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(format!("signalfd: {}", io::Error::last_os_error()));
        }
        OwnedFd::from_raw_fd(fd)
    };
    // Tighter timer slack: release times are honoured to a few µs, not the default 50 µs.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };

    let listener = bind_control(&socket)?;
    eprintln!(
        "sdwan-wanem: running, control socket {}, seed {seed}, circuits: {}",
        socket.display(),
        circuits
            .iter()
            .map(|c| format!("{}={}<->{}", c.name, c.iface_a, c.iface_b))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let result = event_loop(&mut circuits, &socks, &listener, &sigfd);
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    collect_kernel_drops(&mut circuits, &socks);
    let reports: Vec<_> = circuits.iter().map(Circuit::report).collect();
    eprint!(
        "sdwan-wanem: exiting; final counters:\n{}",
        ctl::render_show(&reports)
    );
    result
}

fn bind_control(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
    }
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{} is in use: another sdwan-wanem is running",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

fn collect_kernel_drops(circuits: &mut [Circuit], socks: &[RawSock]) {
    for (i, c) in circuits.iter_mut().enumerate() {
        c.dirs[0].counters.rx_kernel_drops += socks[2 * i].kernel_drops();
        c.dirs[1].counters.rx_kernel_drops += socks[2 * i + 1].kernel_drops();
    }
}

fn event_loop(
    circuits: &mut [Circuit],
    socks: &[RawSock],
    listener: &UnixListener,
    sigfd: &OwnedFd,
) -> Result<(), String> {
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; HEADROOM + MAX_FRAME];
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    const RX_BATCH: usize = 256;
    loop {
        // 1. Send what is due.
        let now = now_ns();
        let mut next: Option<u64> = None;
        for (i, c) in circuits.iter_mut().enumerate() {
            for (d, out) in [(0usize, 2 * i + 1), (1, 2 * i)] {
                let dir = &mut c.dirs[d];
                while let Some(f) = dir.pop_due(now) {
                    let ok = socks[out].send(&f);
                    dir.note_tx(ok);
                }
                if let Some(t) = dir.next_release() {
                    next = Some(next.map_or(t, |n: u64| n.min(t)));
                }
            }
        }

        // 2. Wait for input or the next release.
        pfds.clear();
        let ev = libc::POLLIN;
        pfds.push(libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: ev,
            revents: 0,
        });
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: ev,
            revents: 0,
        });
        for s in socks {
            pfds.push(libc::pollfd {
                fd: s.fd.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        for c in &clients {
            pfds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        let ts;
        let tsp = match next {
            Some(t) => {
                let wait = t.saturating_sub(now_ns());
                ts = libc::timespec {
                    tv_sec: (wait / 1_000_000_000) as _,
                    tv_nsec: (wait % 1_000_000_000) as _,
                };
                &ts as *const libc::timespec
            }
            None => std::ptr::null(),
        };
        // SAFETY: pfds is a live array of pollfd; tsp is null or points at `ts`.
        let r = unsafe {
            libc::ppoll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                tsp,
                std::ptr::null(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("ppoll: {e}"));
        }
        if r == 0 {
            continue;
        }

        // 3. Frames in.
        let base = 2;
        for (si, s) in socks.iter().enumerate() {
            let re = pfds[base + si].revents;
            if re == 0 {
                continue;
            }
            if re & libc::POLLNVAL != 0 {
                return Err(format!("interface {}: socket invalid", s.name));
            }
            if re & libc::POLLERR != 0 {
                // The interface went down (ENETDOWN): report, clear, carry on; the socket
                // receives again when it comes back up.
                if let Some(e) = s.take_error() {
                    eprintln!("sdwan-wanem: {}: {e}", s.name);
                }
            }
            let (ci, d) = (si / 2, si % 2);
            for _ in 0..RX_BATCH {
                match s.recv(&mut buf) {
                    Ok(Rx::Frame(a, b)) => {
                        circuits[ci].dirs[d].enqueue(now_ns(), buf[a..b].to_vec())
                    }
                    Ok(Rx::Skip) => {}
                    Ok(Rx::Oversize) => {
                        let c: &mut Counters = &mut circuits[ci].dirs[d].counters;
                        c.rx += 1;
                        c.dropped_oversize += 1;
                    }
                    Ok(Rx::Empty) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                        eprintln!("sdwan-wanem: {}: {e}", s.name);
                        break;
                    }
                    Err(e) => return Err(format!("{}: recv: {e}", s.name)),
                }
            }
        }

        // 4. Control.
        let cbase = base + socks.len();
        let mut closed = Vec::new();
        for (k, c) in clients.iter_mut().enumerate() {
            if pfds[cbase + k].revents != 0 && !serve_client(c, circuits, socks) {
                closed.push(k);
            }
        }
        for k in closed.into_iter().rev() {
            clients.swap_remove(k);
        }
        if pfds[1].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // Blocking with a timeout: reads happen only after POLLIN, replies are small.
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                        if clients.len() < 64 {
                            clients.push(Client {
                                stream,
                                buf: Vec::new(),
                            });
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        eprintln!("sdwan-wanem: accept: {e}");
                        break;
                    }
                }
            }
        }
        if pfds[0].revents != 0 {
            // SAFETY: reading a signalfd_siginfo-sized record into a local buffer.
            let mut si = [0u8; 128];
            unsafe {
                libc::read(
                    sigfd.as_raw_fd(),
                    si.as_mut_ptr() as *mut libc::c_void,
                    si.len(),
                )
            };
            let signo = u32::from_ne_bytes(si[..4].try_into().unwrap());
            eprintln!("sdwan-wanem: signal {signo}, shutting down");
            return Ok(());
        }
    }
}

/// Read what the client sent and answer complete lines. False = close it.
fn serve_client(c: &mut Client, circuits: &mut [Circuit], socks: &[RawSock]) -> bool {
    let mut tmp = [0u8; 4096];
    let n = match c.stream.read(&mut tmp) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            return true
        }
        Err(_) => return false,
    };
    c.buf.extend_from_slice(&tmp[..n]);
    while let Some(pos) = c.buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.buf.drain(..=pos).collect();
        let line = String::from_utf8_lossy(&line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let resp = match serde_json::from_str::<Request>(line) {
            Ok(req) => {
                let log = match &req {
                    Request::Set {
                        circuit,
                        dir,
                        settings,
                    } => Some(format!(
                        "set {circuit} {}: {}",
                        dir.as_str(),
                        settings.describe()
                    )),
                    Request::Clear { circuit } => Some(format!("clear {circuit}")),
                    Request::Show => {
                        collect_kernel_drops(circuits, socks);
                        None
                    }
                };
                let resp = ctl::handle(circuits, req, now_ns());
                if let Some(log) = log {
                    match &resp.error {
                        None => eprintln!("sdwan-wanem: {log}"),
                        Some(e) => eprintln!("sdwan-wanem: {log}: refused: {e}"),
                    }
                }
                resp
            }
            Err(e) => Response::err(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&resp).unwrap_or_else(|_| r#"{"ok":false}"#.into());
        out.push('\n');
        if c.stream.write_all(out.as_bytes()).is_err() {
            return false;
        }
    }
    c.buf.len() <= 65536
}
