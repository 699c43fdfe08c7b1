//! Receive-side statistics per class and the final report (JSON and text). Sans-IO.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::cli::{Config, Rate};
use super::payload::{Class, Signature};
use super::seqstats::SeqTracker;

/// Highest latency the histogram holds (60 s); longer ones are recorded as 60 s.
const MAX_NS: u64 = 60_000_000_000;

#[derive(Debug, Clone)]
pub struct ClassRx {
    pub seq: SeqTracker,
    pub latency_ns: Histogram<u64>,
}

impl ClassRx {
    pub fn new() -> Self {
        Self {
            seq: SeqTracker::new(),
            latency_ns: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"),
        }
    }
}

impl Default for ClassRx {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RxStats {
    /// Our measured packets (duplicates included).
    pub packets: u64,
    pub bytes: u64,
    /// Frames that are not ours (nor ARP).
    pub stray: u64,
    /// Our packets from another run (an earlier trial's, left in a ring): ignored.
    pub stale: u64,
    /// Our packets of the warmup: ignored.
    pub warmup: u64,
    pub arp_replies: u64,
    pub classes: [ClassRx; 2],
}

impl RxStats {
    /// Records one of our packets received at `rx_tsc`; `ns_per_tick` converts TSC ticks.
    #[inline]
    pub fn record(&mut self, sig: &Signature, frame_len: usize, rx_tsc: u64, ns_per_tick: f64) {
        if sig.warmup {
            self.warmup += 1;
            return;
        }
        self.packets += 1;
        self.bytes += frame_len as u64;
        let c = &mut self.classes[sig.class.index()];
        if c.seq.record(sig.seq) != super::seqstats::Verdict::Duplicate {
            let ns = (rx_tsc.saturating_sub(sig.tx_tsc) as f64 * ns_per_tick) as u64;
            c.latency_ns.saturating_record(ns);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TxStats {
    /// Accepted by the device (measured phase only).
    pub packets: u64,
    pub bytes: u64,
    /// Offered to the device but refused after retries (never counted as sent).
    pub dropped: u64,
    pub seconds: f64,
    pub sent: [u64; 2],
    pub warmup_packets: u64,
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// The JSON report: one object, see docs/pktgen.md.
pub fn report(c: &Config, tx: &TxStats, rx: &RxStats) -> Value {
    let secs = if tx.seconds > 0.0 {
        tx.seconds
    } else {
        f64::NAN
    };
    let rate = |p: u64, b: u64| {
        let mpps = p as f64 / secs / 1e6;
        let gbit = b as f64 * 8.0 / secs / 1e9;
        (
            if mpps.is_finite() {
                round(mpps, 6)
            } else {
                0.0
            },
            if gbit.is_finite() {
                round(gbit, 6)
            } else {
                0.0
            },
        )
    };
    let (tx_mpps, tx_gbit) = rate(tx.packets, tx.bytes);
    let (rx_mpps, rx_gbit) = rate(rx.packets, rx.bytes);
    let classes: Vec<Class> = if c.voice_pct.is_some() {
        Class::ALL.to_vec()
    } else {
        vec![Class::Bulk]
    };
    let mut lost_total = 0;
    let class_json: Vec<Value> = classes
        .iter()
        .map(|&k| {
            let r = &rx.classes[k.index()];
            let sent = tx.sent[k.index()];
            let lost = r.seq.lost(sent);
            lost_total += lost;
            let h = &r.latency_ns;
            let us = |ns: u64| round(ns as f64 / 1000.0, 3);
            let lat = if h.is_empty() {
                json!({"p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0})
            } else {
                json!({
                    "p50": us(h.value_at_quantile(0.5)),
                    "p99": us(h.value_at_quantile(0.99)),
                    "p999": us(h.value_at_quantile(0.999)),
                    "max": us(h.max()),
                    "mean": round(h.mean() / 1000.0, 3),
                })
            };
            json!({
                "name": k.name(), "sent": sent, "received": r.seq.unique, "lost": lost,
                "reordered": r.seq.reordered, "duplicates": r.seq.duplicates,
                "latency_us": lat,
            })
        })
        .collect();
    let loss_pct = if tx.packets > 0 {
        round(lost_total as f64 * 100.0 / tx.packets as f64, 6)
    } else {
        0.0
    };
    json!({
        "tx": {"packets": tx.packets, "bytes": tx.bytes, "dropped": tx.dropped,
               "seconds": round(tx.seconds, 6), "mpps": tx_mpps, "gbit_s": tx_gbit},
        "rx": {"packets": rx.packets, "bytes": rx.bytes, "mpps": rx_mpps, "gbit_s": rx_gbit,
               "stray": rx.stray, "stale": rx.stale},
        "lost": lost_total,
        "loss_pct": loss_pct,
        "classes": class_json,
        "config": {
            "size": c.size.label(), "flows": c.flows, "rate": c.rate_label,
            "duration_s": c.duration_s, "warmup_s": c.warmup_s,
            "voice_pct": c.voice_pct.unwrap_or(0.0),
        },
    })
}

/// The human-readable form of `report`'s object.
pub fn text(c: &Config, r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let u = |v: &Value| v.as_u64().unwrap_or(0);
    let rate = match c.rate {
        Rate::Max => "max".to_string(),
        _ => c.rate_label.clone(),
    };
    let mut s = format!(
        "sdwan-pktgen: {} B frames, {} flows, rate {rate}, {} s (+{} s warmup)\n",
        c.size.label(),
        c.flows,
        c.duration_s,
        c.warmup_s
    );
    s += &format!(
        "tx  {:>12} packets {:>15} bytes  {:>9.4} Mpps {:>8.4} Gbit/s over {:.3} s  (refused by the device: {})\n",
        u(&r["tx"]["packets"]),
        u(&r["tx"]["bytes"]),
        f(&r["tx"]["mpps"]),
        f(&r["tx"]["gbit_s"]),
        f(&r["tx"]["seconds"]),
        u(&r["tx"]["dropped"]),
    );
    s += &format!(
        "rx  {:>12} packets {:>15} bytes  {:>9.4} Mpps {:>8.4} Gbit/s  (stray frames: {}, stale: {})\n",
        u(&r["rx"]["packets"]),
        u(&r["rx"]["bytes"]),
        f(&r["rx"]["mpps"]),
        f(&r["rx"]["gbit_s"]),
        u(&r["rx"]["stray"]),
        u(&r["rx"]["stale"]),
    );
    s += &format!("lost {} ({:.4} %)\n", u(&r["lost"]), f(&r["loss_pct"]));
    s += &format!(
        "{:<6} {:>12} {:>12} {:>10} {:>10} {:>10} | latency us: {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "class",
        "sent",
        "received",
        "lost",
        "reordered",
        "dups",
        "p50",
        "p99",
        "p99.9",
        "max",
        "mean"
    );
    for k in r["classes"].as_array().into_iter().flatten() {
        let l = &k["latency_us"];
        s += &format!(
            "{:<6} {:>12} {:>12} {:>10} {:>10} {:>10} |             {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}\n",
            k["name"].as_str().unwrap_or(""),
            u(&k["sent"]),
            u(&k["received"]),
            u(&k["lost"]),
            u(&k["reordered"]),
            u(&k["duplicates"]),
            f(&l["p50"]),
            f(&l["p99"]),
            f(&l["p999"]),
            f(&l["max"]),
            f(&l["mean"]),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::cli::parse;

    #[test]
    fn report_counts_loss_per_class() {
        let c = parse(&["--tx".into(), "x".into(), "--voice".into(), "10".into()]).unwrap();
        let mut rx = RxStats::default();
        let tx = TxStats {
            packets: 10,
            bytes: 640,
            seconds: 1.0,
            sent: [9, 1],
            ..Default::default()
        };
        for seq in 0..8 {
            let sig = Signature {
                run: 1,
                class: Class::Bulk,
                warmup: false,
                seq,
                tx_tsc: 1000,
            };
            rx.record(&sig, 64, 1000 + 2000, 1.0);
        }
        rx.record(
            &Signature {
                run: 1,
                class: Class::Voice,
                warmup: true,
                seq: 0,
                tx_tsc: 0,
            },
            200,
            10,
            1.0,
        );
        let r = report(&c, &tx, &rx);
        assert_eq!(r["lost"], 2);
        assert_eq!(r["classes"][0]["lost"], 1);
        assert_eq!(r["classes"][1]["lost"], 1);
        assert_eq!(r["classes"][0]["latency_us"]["p50"], 2.0);
        assert_eq!(r["rx"]["packets"], 8);
        assert_eq!(r["loss_pct"], 20.0);
        assert_eq!(rx.warmup, 1);
        assert!(text(&c, &r).contains("voice"));
    }
}
