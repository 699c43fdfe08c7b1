//! `sdwan-perf crypto-baseline`: the crypto ceiling. Runs DPDK's own `dpdk-test-crypto-perf`
//! (Debian package `dpdk-dev`) in throughput mode on the `crypto_aesni_gcm` virtual device
//! (intel-ipsec-mb behind the cryptodev API), AES-GCM with an ESP-shaped operation (12-byte
//! IV, 8-byte AAD, 16-byte tag), one worker lcore, and prints what it reaches per buffer size,
//! sealing and opening: the reference the ESP data path (`esp_bench`, the forwarding scenarios)
//! is measured against.
//!
//! No hugepages and no PCI: `--no-huge -m 512 --no-pci --no-shconf` (EAL then picks IOVA as VA
//! by itself; `--in-memory` would be tidier but DPDK 22.11 refuses it with `--no-huge`).
//!
//! ```text
//! sdwan-perf crypto-baseline [--key-bits 128|256] [--sizes 64,576,1420,1500] [--ops N]
//!                            [--burst N] [--rounds N] [--main-core C] [--worker-core C] [--json]
//! ```
//!
//! Rounds alternate encrypt and decrypt so that background load hits both alike; the best
//! round of each (direction, size) is reported.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOOL: &str = "dpdk-test-crypto-perf";

const USAGE: &str =
    "usage: sdwan-perf crypto-baseline [--key-bits 128|256] [--sizes 64,576,1420,1500]
            [--ops N] [--burst N] [--rounds N] [--main-core C] [--worker-core C] [--json]";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub key_bits: u32,
    pub sizes: Vec<usize>,
    /// Operations per buffer size and direction.
    pub total_ops: u64,
    pub burst: u32,
    pub rounds: usize,
    pub main_core: usize,
    pub worker_core: usize,
    pub json: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            key_bits: 128,
            sizes: vec![64, 576, 1420, 1500],
            total_ops: 10_000_000,
            burst: 32,
            rounds: 3,
            main_core: 0,
            worker_core: 1,
            json: false,
        }
    }
}

/// One line of the tool's throughput report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `encrypt` or `decrypt`.
    pub op: &'static str,
    pub size: usize,
    pub mpps: f64,
    pub cycles_per_op: f64,
    pub failed: u64,
}

impl Row {
    /// Payload throughput: buffer bytes only, as the tool counts it.
    pub fn gbps(&self) -> f64 {
        self.mpps * self.size as f64 * 8.0 / 1000.0
    }

    pub fn ns_per_op(&self) -> f64 {
        if self.mpps > 0.0 {
            1000.0 / self.mpps
        } else {
            0.0
        }
    }
}

/// Entry point of the subcommand; `args` are the arguments after `crypto-baseline`.
pub fn main(args: impl Iterator<Item = String>) {
    let o = parse_args(args).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2)
    });
    let mut rows: Vec<Row> = Vec::new();
    for _ in 0..o.rounds {
        for op in ["encrypt", "decrypt"] {
            let round = run(&o, op).unwrap_or_else(|e| {
                eprintln!("sdwan-perf: {TOOL} --aead-op {op}: {e}");
                std::process::exit(1)
            });
            for r in round {
                match rows.iter_mut().find(|b| b.op == r.op && b.size == r.size) {
                    Some(b) if r.mpps > b.mpps => *b = r,
                    Some(_) => {}
                    None => rows.push(r),
                }
            }
        }
    }
    rows.sort_by_key(|r| (r.op != "encrypt", r.size));
    if o.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "op": r.op, "size": r.size, "mpps": r.mpps, "gbps": r.gbps(),
                    "ns_per_op": r.ns_per_op(), "cycles_per_op": r.cycles_per_op,
                    "failed": r.failed,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "scenario": "crypto-baseline", "tool": TOOL, "device": "crypto_aesni_gcm",
                "aead": format!("aes-{}-gcm", o.key_bits), "iv": 12, "aad": 8, "tag": 16,
                "burst": o.burst, "ops": o.total_ops, "rounds": o.rounds, "worker_cores": 1,
                "rows": rows,
            })
        );
        return;
    }
    println!(
        "scenario  crypto-baseline: {TOOL}, crypto_aesni_gcm (intel-ipsec-mb), AES-{}-GCM, \
         IV 12, AAD 8, tag 16, burst {}, {} ops per case, 1 worker lcore, best of {} rounds",
        o.key_bits, o.burst, o.total_ops, o.rounds
    );
    println!(
        "{:<8} {:>6} {:>8} {:>8} {:>8}",
        "op", "size", "Mpps", "Gbit/s", "ns/op"
    );
    for r in &rows {
        println!(
            "{:<8} {:>6} {:>8.2} {:>8.2} {:>8.1}{}",
            r.op,
            r.size,
            r.mpps,
            r.gbps(),
            r.ns_per_op(),
            if r.failed > 0 {
                format!("  ({} failed enqueue/dequeue)", r.failed)
            } else {
                String::new()
            }
        );
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--key-bits" => {
                o.key_bits = number("--key-bits", value("--key-bits")?)? as u32;
                if ![128, 192, 256].contains(&o.key_bits) {
                    return Err("--key-bits must be 128, 192 or 256".into());
                }
            }
            "--sizes" => {
                o.sizes = value("--sizes")?
                    .split(',')
                    .map(|s| number("--sizes", s.trim().to_string()).map(|n| n as usize))
                    .collect::<Result<_, _>>()?;
                if o.sizes.is_empty() || o.sizes.iter().any(|&s| s == 0 || s > 9000) {
                    return Err("--sizes: 1..9000 bytes each".into());
                }
            }
            "--ops" => o.total_ops = number("--ops", value("--ops")?)?.max(1000),
            "--burst" => o.burst = number("--burst", value("--burst")?)?.clamp(1, 512) as u32,
            "--rounds" => o.rounds = number("--rounds", value("--rounds")?)?.clamp(1, 100) as usize,
            "--main-core" => o.main_core = number("--main-core", value("--main-core")?)? as usize,
            "--worker-core" => {
                o.worker_core = number("--worker-core", value("--worker-core")?)? as usize
            }
            "--json" => o.json = true,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.main_core == o.worker_core {
        return Err(
            "--main-core and --worker-core must differ (the tool needs a worker lcore)".into(),
        );
    }
    Ok(o)
}

/// The tool's command line for one direction.
pub fn command_args(o: &Options, op: &str) -> Vec<String> {
    let sizes: Vec<String> = o.sizes.iter().map(|s| s.to_string()).collect();
    [
        "-l",
        &format!("{},{}", o.main_core, o.worker_core),
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        "--log-level",
        "*:error",
        "--vdev",
        "crypto_aesni_gcm0",
        "--",
        "--ptest",
        "throughput",
        "--devtype",
        "crypto_aesni_gcm",
        "--optype",
        "aead",
        "--aead-algo",
        "aes-gcm",
        "--aead-op",
        op,
        "--aead-key-sz",
        &(o.key_bits / 8).to_string(),
        "--aead-iv-sz",
        "12",
        "--aead-aad-sz",
        "8",
        "--digest-sz",
        "16",
        "--buffer-sz",
        &sizes.join(","),
        "--total-ops",
        &o.total_ops.to_string(),
        "--burst-sz",
        &o.burst.to_string(),
        "--csv-friendly",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs the tool for one direction (`encrypt` / `decrypt`) and returns one row per size.
pub fn run(o: &Options, op: &'static str) -> Result<Vec<Row>, String> {
    let mut child = Command::new(TOOL)
        .args(command_args(o, op))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start it (package dpdk-dev; run scripts/setup.sh): {e}"))?;
    // Generous: about 1 µs per operation is already ten times slower than this device.
    let limit = Duration::from_secs(30 + o.total_ops * o.sizes.len() as u64 / 1_000_000);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no result after {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let rows = parse_csv(&out, op);
    if !status.success() || rows.len() != o.sizes.len() {
        let tail: Vec<&str> = err.lines().chain(out.lines()).rev().take(6).collect();
        return Err(format!(
            "{status}, {} of {} sizes reported; last lines: {:?}",
            rows.len(),
            o.sizes.len(),
            tail
        ));
    }
    Ok(rows)
}

/// Reads the `--csv-friendly` throughput report:
/// `lcore,size,burst,enqueued,dequeued,failed enq,failed deq,Mops,Gbps,cycles/buf`.
pub fn parse_csv(out: &str, op: &'static str) -> Vec<Row> {
    out.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            if f.len() < 10 {
                return None;
            }
            Some(Row {
                op,
                size: f[1].parse().ok()?,
                mpps: f[7].parse().ok()?,
                cycles_per_op: f[9].parse().ok()?,
                failed: f[5].parse::<u64>().ok()? + f[6].parse::<u64>().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_csv_report() {
        let out = "Allocated pool \"sess_mp_0\" on socket 0\n\
            #lcore id,Buffer Size(B),Burst Size,Enqueued,Dequeued,Failed Enq,Failed Deq,Ops(Millions),Throughput(Gbps),Cycles/Buf\n\
            \n\
            1,64,32,200000,200000,0,0,3.452,1.767,579.374\n\
            1,576,32,200000,200000,0,2,1.010,4.656,1979.289\n\n";
        let rows = parse_csv(out, "decrypt");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].size, rows[0].mpps, rows[0].failed), (64, 3.452, 0));
        assert_eq!((rows[1].size, rows[1].failed), (576, 2));
        assert!((rows[0].gbps() - 1.767).abs() < 0.001);
        assert!((rows[1].ns_per_op() - 990.1).abs() < 0.1);
    }

    #[test]
    fn options_and_command_line() {
        let o = parse_args(
            ["--key-bits", "256", "--sizes", "64,1420", "--ops", "5000"]
                .iter()
                .map(|s| s.to_string()),
        )
        .unwrap();
        assert_eq!(
            (o.key_bits, o.sizes.clone(), o.total_ops),
            (256, vec![64, 1420], 5000)
        );
        let a = command_args(&o, "encrypt").join(" ");
        assert!(a.starts_with("-l 0,1 --no-huge -m 512 --no-pci"), "{a}");
        assert!(a.contains("--aead-key-sz 32 "), "{a}");
        assert!(a.contains("--buffer-sz 64,1420 --total-ops 5000"), "{a}");
        assert!(parse_args(["--key-bits", "100"].iter().map(|s| s.to_string())).is_err());
        assert!(parse_args(["--main-core", "1"].iter().map(|s| s.to_string())).is_err());
    }
}
