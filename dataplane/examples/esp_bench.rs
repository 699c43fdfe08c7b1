//! ESP micro-benchmark: ns per packet to seal and to open, for each AEAD backend (RustCrypto,
//! AWS-LC, intel-ipsec-mb: `Backend::ALL`), at 64, 576 and 1420-byte inner packets, in batches of 32 (the data plane's call pattern). Two layers:
//! `aead` is the backend's batch call alone (the text ESP encrypts: packet + padding +
//! trailer, 8-byte AAD); `sa` is the whole `OutboundSa::seal_batch` / `InboundSa::open_batch`
//! (framing, sequence numbers, replay window, trailer checks).
//!
//! Run it in release, on an idle machine:
//!   cargo run --release -p sdwan-dataplane --example esp_bench [-- --quick] [--backend NAME]
//! Each figure is the best of several rounds (the least disturbed by other load). `--backend`
//! (`rustcrypto`, `aws-lc`, `ipsec-mb`; repeatable) measures only the backends named.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sdwan_dataplane::esp::sa::BATCH;
use sdwan_dataplane::esp::{
    wire, AeadJob, AeadKey, Backend, EspError, InboundSa, Opened, OutboundSa, ReplayWindow, Suite,
};
use sdwan_dataplane::forward::ByteBuf;

const SIZES: [usize; 3] = [64, 576, 1420];

fn inner_packet(len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    p[0] = 0x45;
    p
}

fn key(backend: Backend, suite: Suite) -> AeadKey {
    let km: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8 ^ 0x5a).collect();
    AeadKey::new(backend, suite, &km).expect("key")
}

struct Figures {
    seal_ns: f64,
    open_ns: f64,
}

/// The AEAD batch call alone.
fn bench_aead(backend: Backend, suite: Suite, size: usize, budget: Duration) -> Figures {
    let k = key(backend, suite);
    let text_len = size + wire::pad_len(size) + wire::TRAILER_LEN;
    let mut texts = vec![vec![0xabu8; text_len]; BATCH];
    let mut tags = vec![[0u8; 16]; BATCH];
    let aad = [0x11u8, 0x22, 0x33, 0x44, 0, 0, 0, 1];
    let (mut best_seal, mut best_open) = (f64::MAX, f64::MAX);
    let rounds = 7;
    for _ in 0..rounds {
        let (mut seal_t, mut open_t, mut n) = (Duration::ZERO, Duration::ZERO, 0u64);
        let round_start = Instant::now();
        while round_start.elapsed() < budget / rounds {
            for _ in 0..16 {
                let mut jobs: [AeadJob<'_>; BATCH] = Default::default();
                for (i, ((j, t), tag)) in jobs.iter_mut().zip(&mut texts).zip(&mut tags).enumerate()
                {
                    j.iv = (i as u64 + 1).to_be_bytes();
                    j.aad = &aad;
                    j.text = t;
                    j.tag = tag;
                }
                let t0 = Instant::now();
                let failed = k.seal_batch(black_box(&mut jobs));
                let t1 = Instant::now();
                let failed_open = k.open_batch(black_box(&mut jobs));
                let t2 = Instant::now();
                assert_eq!((failed, failed_open), (0, 0));
                seal_t += t1 - t0;
                open_t += t2 - t1;
                n += BATCH as u64;
            }
        }
        best_seal = best_seal.min(seal_t.as_nanos() as f64 / n as f64);
        best_open = best_open.min(open_t.as_nanos() as f64 / n as f64);
    }
    Figures {
        seal_ns: best_seal,
        open_ns: best_open,
    }
}

/// Whole SAs: seal a batch with an outbound SA, open it with the inbound one.
fn bench_sa(backend: Backend, suite: Suite, size: usize, budget: Duration) -> Figures {
    let inner = inner_packet(size);
    let mut out = OutboundSa::new(0x1000, true, key(backend, suite));
    let mut inb = InboundSa::new(
        0x1000,
        key(backend, suite),
        ReplayWindow::new(1024, true).expect("window"),
    );
    let mut bufs: Vec<ByteBuf> = (0..BATCH).map(|_| ByteBuf::new(&[])).collect();
    let mut sealed: Vec<Result<u64, EspError>> = vec![Ok(0); BATCH];
    let mut opened: Vec<Result<Opened, EspError>> = vec![Err(EspError::Malformed); BATCH];
    let (mut best_seal, mut best_open) = (f64::MAX, f64::MAX);
    let rounds = 7;
    for _ in 0..rounds {
        let (mut seal_t, mut open_t, mut n) = (Duration::ZERO, Duration::ZERO, 0u64);
        let round_start = Instant::now();
        while round_start.elapsed() < budget / rounds {
            for _ in 0..16 {
                for b in bufs.iter_mut() {
                    b.refill(&inner, ByteBuf::HEADROOM);
                }
                let t0 = Instant::now();
                out.seal_batch(black_box(&mut bufs), &mut sealed);
                let t1 = Instant::now();
                inb.open_batch(black_box(&mut bufs), &mut opened);
                let t2 = Instant::now();
                assert!(sealed.iter().all(|r| r.is_ok()), "{:?}", sealed[0]);
                assert!(opened.iter().all(|r| r.is_ok()), "{:?}", opened[0]);
                seal_t += t1 - t0;
                open_t += t2 - t1;
                n += BATCH as u64;
            }
        }
        best_seal = best_seal.min(seal_t.as_nanos() as f64 / n as f64);
        best_open = best_open.min(open_t.as_nanos() as f64 / n as f64);
    }
    Figures {
        seal_ns: best_seal,
        open_ns: best_open,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let named: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--backend")
        .map(|w| w[1].as_str())
        .collect();
    let backends: Vec<Backend> = Backend::ALL
        .into_iter()
        .filter(|b| named.is_empty() || named.contains(&b.name()))
        .collect();
    assert!(
        !backends.is_empty(),
        "--backend: one of rustcrypto, aws-lc, ipsec-mb"
    );
    let budget = Duration::from_millis(if quick { 150 } else { 1200 });
    println!(
        "ESP micro-benchmark: ns per packet, batch of {BATCH}, best of 7 rounds ({} ms per case)",
        budget.as_millis()
    );
    for b in &backends {
        println!("  {:<12} code: {}", b.name(), b.implementation());
    }
    println!(
        "{:<6} {:<12} {:<12} {:>6} {:>9} {:>9} {:>10} {:>10}",
        "layer", "suite", "backend", "size", "seal ns", "open ns", "seal Gb/s", "open Gb/s"
    );
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        for (layer, f) in [
            (
                "aead",
                bench_aead as fn(Backend, Suite, usize, Duration) -> Figures,
            ),
            ("sa", bench_sa),
        ] {
            for size in SIZES {
                for &backend in &backends {
                    let r = f(backend, suite, size, budget);
                    let gbps = |ns: f64| size as f64 * 8.0 / ns;
                    println!(
                        "{:<6} {:<12} {:<12} {:>6} {:>9.1} {:>9.1} {:>10.2} {:>10.2}",
                        layer,
                        suite.name(),
                        backend.name(),
                        size,
                        r.seal_ns,
                        r.open_ns,
                        gbps(r.seal_ns),
                        gbps(r.open_ns)
                    );
                }
            }
        }
    }
}
