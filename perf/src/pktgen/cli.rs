//! Command line of `sdwan-pktgen`. Parsing is sans-IO: errors name the argument, and the binary
//! prints them and exits with status 2.

use std::net::Ipv4Addr;

use sdwan_dataplane::wire::MacAddr;

use super::payload::MIN_FRAME;

pub const USAGE: &str = "\
usage: sdwan-pktgen --tx DEVARGS [--rx DEVARGS] [options]

Sends Ethernet/IPv4/UDP frames on one DPDK port and receives them (after a device under test)
on another (or the same) port, in one process: rate, loss, reordering, duplicates and one-way
latency per class.

ports and EAL:
  --tx DEVARGS          transmit port: a DPDK vdev string (net_memif0,role=client,socket=/tmp/a.sock;
                        net_null0; net_ring0; net_pcap0,tx_pcap=/tmp/out.pcap) or, for a device
                        EAL probes itself (e.g. a NIC allowed with --eal \"-a 0000:03:00.0\"),
                        its name
  --rx DEVARGS          receive port (default: the tx port itself)
  --file-prefix NAME    EAL --file-prefix (default sdwan-pktgen-<pid>)
  --mem MB              EAL -m, memory without hugepages (default 512)
  --cores C[,C2]        one core (tx and rx in one loop, default 0), or tx on C and rx on C2
  --eal \"ARGS\"          extra EAL arguments, split on whitespace (with -a/--allow, --no-pci is
                        left out)
addresses:
  --src-ip IP           source address of the generated packets (default 10.1.0.2)
  --gateway IP          next hop whose MAC is resolved with ARP on the tx port (default 10.1.0.1)
  --dst-mac MAC         destination MAC: skips ARP resolution
  --rx-ip IP            address answered for ARP on the rx port (default 10.2.0.2)
traffic:
  --dst NET/LEN         destination network (default 10.2.0.0/16)
  --flows N             distinct 5-tuples (default 1)
  --dst-port P          UDP destination port of bulk packets (default 5001)
  --size 64|imix|BYTES  Ethernet frame size without FCS (64..1514; imix = 64/576/1500 7:4:1)
  --rate RATE           1Mpps, 250kpps, 100pps, 500Mbit, 2Gbit, line (the tx link's speed,
                        with the wire's 24 bytes per frame; max where the link reports
                        none), max (default 100kpps); bit
                        rates count frame bytes * 8 (no preamble, inter-frame gap or FCS)
  --duration S          measured seconds (default 5)
  --warmup S            seconds sent before measuring, not counted (default 0)
  --drain-ms MS         receive time after tx stops (default 300)
  --voice PCT           PCT % of packets are voice: 200-byte frames, DSCP EF, --voice-port
  --voice-port P        UDP destination port of voice packets (default 5004)
  --busy                never sleep while pacing (default: sleep when >50 us ahead)
output:
  --json                one JSON object on stdout
  --help                this text";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Pps(f64),
    /// Bits per second of frame bytes (no preamble, IFG or FCS).
    Bps(f64),
    Max,
    /// The tx port's link speed, counted on the wire: every frame also takes 24 bytes there
    /// (preamble 8, FCS 4, inter-frame gap 12). Resolved at start by [`resolve_line`].
    Line,
}

/// Bytes a frame occupies on an Ethernet wire besides the frame itself (without FCS).
pub const WIRE_OVERHEAD: usize = 24;

/// `Rate::Line` as a rate the pacer can keep: the link's bits per second, scaled to frame
/// bytes for the size's average frame; a link that reports no speed (most virtual devices)
/// gives `Max`. Other rates are returned unchanged.
pub fn resolve_line(rate: Rate, link_speed_mbps: u32, size: Size) -> Rate {
    if rate != Rate::Line {
        return rate;
    }
    if link_speed_mbps == 0 {
        return Rate::Max;
    }
    let avg = match size {
        Size::Fixed(n) => n as f64,
        Size::Imix => IMIX.iter().sum::<usize>() as f64 / IMIX.len() as f64,
    };
    Rate::Bps(f64::from(link_speed_mbps) * 1e6 * avg / (avg + WIRE_OVERHEAD as f64))
}

impl Rate {
    pub fn parse(s: &str) -> Option<Rate> {
        let l = s.trim().to_ascii_lowercase();
        if l == "max" {
            return Some(Rate::Max);
        }
        if l == "line" {
            return Some(Rate::Line);
        }
        let split = l
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(l.len());
        let (num, unit) = l.split_at(split);
        let v: f64 = num.parse().ok()?;
        let (mult, pps) = match unit {
            "pps" => (1.0, true),
            "kpps" => (1e3, true),
            "mpps" => (1e6, true),
            "bit" | "bps" => (1.0, false),
            "kbit" | "kbps" => (1e3, false),
            "mbit" | "mbps" => (1e6, false),
            "gbit" | "gbps" => (1e9, false),
            _ => return None,
        };
        let v = v * mult;
        if !v.is_finite() || v <= 0.0 || v > 1e12 {
            return None;
        }
        Some(if pps { Rate::Pps(v) } else { Rate::Bps(v) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Fixed(usize),
    Imix,
}

pub const MAX_FRAME: usize = 1514;
pub const VOICE_FRAME: usize = 200;
/// IMIX 7:4:1 of 64/576/1500, interleaved over a fixed cycle of 12.
pub const IMIX: [usize; 12] = [64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576, 64];

impl Size {
    pub fn parse(s: &str) -> Option<Size> {
        if s.eq_ignore_ascii_case("imix") {
            return Some(Size::Imix);
        }
        let n: usize = s.parse().ok()?;
        (MIN_FRAME..=MAX_FRAME)
            .contains(&n)
            .then_some(Size::Fixed(n))
    }

    pub fn label(&self) -> String {
        match self {
            Size::Fixed(n) => n.to_string(),
            Size::Imix => "imix".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tx: String,
    pub rx: Option<String>,
    pub file_prefix: Option<String>,
    pub mem_mb: u32,
    pub tx_core: usize,
    pub rx_core: Option<usize>,
    pub eal_extra: Vec<String>,
    pub src_ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub dst_mac: Option<MacAddr>,
    pub rx_ip: Ipv4Addr,
    pub dst_net: Ipv4Addr,
    pub dst_len: u8,
    pub flows: u64,
    pub dst_port: u16,
    pub size: Size,
    pub rate: Rate,
    pub rate_label: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub drain_ms: u64,
    pub voice_pct: Option<f64>,
    pub voice_port: u16,
    pub busy: bool,
    pub json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tx: String::new(),
            rx: None,
            file_prefix: None,
            mem_mb: 512,
            tx_core: 0,
            rx_core: None,
            eal_extra: Vec::new(),
            src_ip: Ipv4Addr::new(10, 1, 0, 2),
            gateway: Ipv4Addr::new(10, 1, 0, 1),
            dst_mac: None,
            rx_ip: Ipv4Addr::new(10, 2, 0, 2),
            dst_net: Ipv4Addr::new(10, 2, 0, 0),
            dst_len: 16,
            flows: 1,
            dst_port: 5001,
            size: Size::Fixed(64),
            rate: Rate::Pps(100e3),
            rate_label: "100kpps".into(),
            duration_s: 5.0,
            warmup_s: 0.0,
            drain_ms: 300,
            voice_pct: None,
            voice_port: 5004,
            busy: false,
            json: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    Help,
    Error(String),
}

pub fn parse_mac(s: &str) -> Option<MacAddr> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Hosts usable in a prefix: network and broadcast addresses are skipped up to /30.
pub fn hosts_in_prefix(len: u8) -> u64 {
    match len {
        32 => 1,
        31 => 2,
        l => (1u64 << (32 - l)) - 2,
    }
}

/// Source ports cycle over 1024..1024+60000.
pub const SPORT_SPAN: u64 = 60_000;

pub fn parse(args: &[String]) -> Result<Config, ParseOutcome> {
    let mut c = Config::default();
    let mut it = args.iter();
    let err = |s: String| Err(ParseOutcome::Error(s));
    while let Some(a) = it.next() {
        let a = a.as_str();
        let flag_only = matches!(a, "--help" | "-h" | "--json" | "--busy");
        let val = if flag_only {
            ""
        } else {
            match it.next() {
                Some(v) => v.as_str(),
                None if a.starts_with('-') && is_known(a) => {
                    return err(format!("{a} needs a value"));
                }
                None => return err(format!("unknown argument {a:?}")),
            }
        };
        let bad = |what: &str| ParseOutcome::Error(format!("{a}: invalid value {val:?} ({what})"));
        match a {
            "--help" | "-h" => return Err(ParseOutcome::Help),
            "--json" => c.json = true,
            "--busy" => c.busy = true,
            "--tx" => c.tx = val.into(),
            "--rx" => c.rx = Some(val.into()),
            "--file-prefix" => {
                if val.is_empty() || val.contains('/') {
                    return Err(bad("a name without '/'"));
                }
                c.file_prefix = Some(val.into())
            }
            "--mem" => {
                c.mem_mb = val
                    .parse()
                    .ok()
                    .filter(|&m| (64..=1_048_576).contains(&m))
                    .ok_or_else(|| bad("megabytes, at least 64"))?
            }
            "--cores" => {
                let mut p = val.split(',');
                let core = |s: Option<&str>| s.and_then(|s| s.trim().parse::<usize>().ok());
                c.tx_core = core(p.next()).ok_or_else(|| bad("C or C,C2"))?;
                c.rx_core = match p.next() {
                    None => None,
                    s => Some(core(s).ok_or_else(|| bad("C or C,C2"))?),
                };
                if p.next().is_some() || c.rx_core == Some(c.tx_core) {
                    return Err(bad("one core, or two different cores C,C2"));
                }
            }
            "--eal" => c.eal_extra = val.split_whitespace().map(String::from).collect(),
            "--src-ip" => c.src_ip = val.parse().map_err(|_| bad("an IPv4 address"))?,
            "--gateway" => c.gateway = val.parse().map_err(|_| bad("an IPv4 address"))?,
            "--rx-ip" => c.rx_ip = val.parse().map_err(|_| bad("an IPv4 address"))?,
            "--dst-mac" => {
                c.dst_mac = Some(parse_mac(val).ok_or_else(|| bad("a MAC like 02:00:00:00:00:01"))?)
            }
            "--dst" => {
                let net: ipnet::Ipv4Net =
                    val.parse().map_err(|_| bad("a prefix like 10.2.0.0/16"))?;
                c.dst_net = net.network();
                c.dst_len = net.prefix_len();
            }
            "--flows" => {
                c.flows = val
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| bad("a number of flows, at least 1"))?
            }
            "--dst-port" => c.dst_port = val.parse().map_err(|_| bad("a UDP port"))?,
            "--voice-port" => c.voice_port = val.parse().map_err(|_| bad("a UDP port"))?,
            "--size" => {
                c.size = Size::parse(val)
                    .ok_or_else(|| bad(&format!("64, imix, or bytes {MIN_FRAME}..{MAX_FRAME}")))?
            }
            "--rate" => {
                c.rate = Rate::parse(val)
                    .ok_or_else(|| bad("e.g. 1Mpps, 250kpps, 500Mbit, 2Gbit or max"))?;
                c.rate_label = val.into();
            }
            "--duration" => c.duration_s = seconds(val).ok_or_else(|| bad("seconds > 0"))?,
            "--warmup" => {
                c.warmup_s = val
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && (0.0..=3600.0).contains(s))
                    .ok_or_else(|| bad("seconds >= 0"))?
            }
            "--drain-ms" => {
                c.drain_ms = val
                    .parse()
                    .ok()
                    .filter(|&m| m <= 600_000)
                    .ok_or_else(|| bad("milliseconds"))?
            }
            "--voice" => {
                c.voice_pct = Some(
                    val.trim_end_matches('%')
                        .parse()
                        .ok()
                        .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
                        .ok_or_else(|| bad("a percentage in (0, 100]"))?,
                )
            }
            _ => return err(format!("unknown argument {a:?}")),
        }
    }
    if c.tx.is_empty() {
        return err("--tx is required (a DPDK device, e.g. net_null0)".into());
    }
    let room = hosts_in_prefix(c.dst_len).saturating_mul(SPORT_SPAN);
    if c.flows > room {
        return err(format!(
            "--flows: {} flows do not fit in /{} ({} hosts x {SPORT_SPAN} source ports = {room})",
            c.flows,
            c.dst_len,
            hosts_in_prefix(c.dst_len)
        ));
    }
    if c.flows > 10_000_000 {
        return err("--flows: at most 10000000".into());
    }
    Ok(c)
}

fn seconds(v: &str) -> Option<f64> {
    v.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
}

fn is_known(a: &str) -> bool {
    [
        "--tx",
        "--rx",
        "--file-prefix",
        "--mem",
        "--cores",
        "--eal",
        "--src-ip",
        "--gateway",
        "--dst-mac",
        "--rx-ip",
        "--dst",
        "--flows",
        "--dst-port",
        "--size",
        "--rate",
        "--duration",
        "--warmup",
        "--drain-ms",
        "--voice",
        "--voice-port",
    ]
    .contains(&a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Config, ParseOutcome> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    fn err_of(s: &str) -> String {
        match p(s) {
            Err(ParseOutcome::Error(e)) => e,
            other => panic!("expected an error for {s:?}, got {other:?}"),
        }
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("1Mpps"), Some(Rate::Pps(1e6)));
        assert_eq!(Rate::parse("250kpps"), Some(Rate::Pps(250e3)));
        assert_eq!(Rate::parse("500Mbit"), Some(Rate::Bps(500e6)));
        assert_eq!(Rate::parse("2Gbit"), Some(Rate::Bps(2e9)));
        assert_eq!(Rate::parse("1.5gbps"), Some(Rate::Bps(1.5e9)));
        assert_eq!(Rate::parse("max"), Some(Rate::Max));
        assert_eq!(Rate::parse("line"), Some(Rate::Line));
        // 10 Gbit/s of 64-byte frames (without FCS: 88 bytes each on the wire): 14.20 Mpps.
        let Rate::Bps(b) = resolve_line(Rate::Line, 10_000, Size::Fixed(64)) else {
            panic!("not a bit rate")
        };
        assert!((b / 512.0 - 14.205e6).abs() < 0.001e6, "{b}");
        assert_eq!(resolve_line(Rate::Line, 0, Size::Imix), Rate::Max);
        assert_eq!(
            resolve_line(Rate::Pps(5.0), 10_000, Size::Imix),
            Rate::Pps(5.0)
        );
        for bad in [
            "", "1", "x", "-1pps", "0pps", "1..2pps", "1Tpps", "1e3pps", "nanpps",
        ] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_and_macs() {
        assert_eq!(Size::parse("64"), Some(Size::Fixed(64)));
        assert_eq!(Size::parse("IMIX"), Some(Size::Imix));
        assert_eq!(Size::parse("63"), None);
        assert_eq!(Size::parse("1515"), None);
        assert_eq!(IMIX.iter().filter(|&&s| s == 64).count(), 7);
        assert_eq!(IMIX.iter().filter(|&&s| s == 576).count(), 4);
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:zz"), None);
    }

    #[test]
    fn full_command_line() {
        let c = p(
            "--tx net_ring0 --rx net_ring1 --cores 0,1 --dst 10.3.0.0/24 --flows 1000 \
                   --size imix --rate 2Gbit --duration 2.5 --warmup 1 --voice 1 --json --busy \
                   --dst-mac 02:00:00:00:00:01 --eal -a",
        )
        .unwrap();
        assert_eq!(c.rx.as_deref(), Some("net_ring1"));
        assert_eq!((c.tx_core, c.rx_core), (0, Some(1)));
        assert_eq!(
            (c.dst_net, c.dst_len, c.flows),
            (Ipv4Addr::new(10, 3, 0, 0), 24, 1000)
        );
        assert_eq!(c.size, Size::Imix);
        assert_eq!(c.rate, Rate::Bps(2e9));
        assert_eq!(c.voice_pct, Some(1.0));
        assert!(c.json && c.busy);
        assert_eq!(c.eal_extra, ["-a"]);
    }

    #[test]
    fn errors_name_the_argument() {
        assert!(err_of("--tx net_null0 --rate fast").contains("--rate"));
        assert!(err_of("--tx net_null0 --size 10").contains("--size"));
        assert!(err_of("--tx net_null0 --bogus 1").contains("--bogus"));
        assert!(err_of("--tx net_null0 --flows").contains("--flows"));
        assert!(err_of("--tx net_null0 --cores 1,1").contains("--cores"));
        assert!(err_of("--tx net_null0 --voice 0").contains("--voice"));
        assert!(err_of("--tx net_null0 --dst 10.0.0.0/33").contains("--dst"));
        assert!(err_of("--rate 1Mpps").contains("--tx"));
        // /30 has 2 hosts: 120000 flows fit, 120001 do not.
        assert!(p("--tx n --dst 10.0.0.0/30 --flows 120000").is_ok());
        assert!(err_of("--tx n --dst 10.0.0.0/30 --flows 120001").contains("--flows"));
        assert_eq!(p("--tx n --help"), Err(ParseOutcome::Help));
    }
}
