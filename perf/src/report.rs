//! The matrix's results. Every scenario prints one JSON line per measurement, a [`Row`]; `perf/run.sh`
//! collects them in `rows.jsonl` and `sdwan-perf report` renders them three ways:
//! - `results.md`: a Markdown table (what the README shows);
//! - `results.json`: the rows with the run's context (host, DPDK, commit, command);
//! - `results.png`: Mpps by packet size, one bar per scenario (gnuplot).
//!
//! ```text
//! sdwan-perf report --rows DIR/rows.jsonl --out DIR [--meta DIR/meta.json]
//! ```
//!
//! Ratios are always to baselines measured in the same run on the same devices: `dpdk-testpmd`
//! in io mode on the scenario's own input (the framework's ceiling: no packet touched), and
//! `dpdk-test-crypto-perf` with `crypto_aesni_gcm` (the AEAD alone, no packet I/O).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One-way latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One measurement of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `forward`, `encrypt overlay`, `full path`, `voice under load`, or a baseline
    /// (`testpmd io`, `crypto-perf encrypt`, `crypto-perf decrypt`).
    pub scenario: String,
    /// Frame size class: bytes, or `imix` (7:4:1 of 64/576/1500).
    pub size: String,
    pub flows: u64,
    /// WAN circuits the tunnel spreads over (0 where there is no tunnel).
    pub circuits: u32,
    /// Worker cores of the device under test.
    pub workers: u32,
    pub mpps: f64,
    /// Client frames' bytes (Ethernet header to the end of the payload; no preamble, no FCS).
    pub gbit_s: f64,
    #[serde(default)]
    pub latency_us: Option<Latency>,
    /// Percentage of the packets sent that never arrived (scenarios with a receiver).
    #[serde(default)]
    pub loss_pct: Option<f64>,
    /// The same-run `dpdk-testpmd` io rate on this scenario's input.
    #[serde(default)]
    pub testpmd_io_mpps: Option<f64>,
    /// The same-run `dpdk-test-crypto-perf` rate for this direction and size.
    #[serde(default)]
    pub crypto_perf_mpps: Option<f64>,
    /// How it was measured (devices, rounds, search).
    #[serde(default)]
    pub method: String,
    /// Every round's Mpps, where the figure is the best of several.
    #[serde(default)]
    pub rounds: Vec<f64>,
}

impl Row {
    pub fn vs_testpmd(&self) -> Option<f64> {
        ratio(self.mpps, self.testpmd_io_mpps)
    }
    pub fn vs_crypto(&self) -> Option<f64> {
        ratio(self.mpps, self.crypto_perf_mpps)
    }
    /// A baseline, not the product.
    pub fn is_baseline(&self) -> bool {
        self.scenario.starts_with("testpmd") || self.scenario.starts_with("crypto-perf")
    }
}

fn ratio(ours: f64, base: Option<f64>) -> Option<f64> {
    base.filter(|b| *b > 0.0).map(|b| ours / b)
}

/// Reads JSON Lines of rows; an error names the line.
pub fn parse_rows(text: &str, origin: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{origin}:{}: not a result row: {e}", i + 1))
        })
        .collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn size_label(size: &str) -> String {
    if size == "imix" {
        "IMIX".into()
    } else {
        format!("{size} B")
    }
}

/// The Markdown table: the product's rows, then the baselines they are compared to.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | size | flows | circuits | workers | Mpps | Gbit/s | p50 µs | p99 µs | p99.9 µs | loss % | vs testpmd io | vs crypto-perf |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows.iter().filter(|r| !r.is_baseline()) {
        let l = r.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.3} | {:.2} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            size_label(&r.size),
            r.flows,
            if r.circuits == 0 {
                "–".into()
            } else {
                r.circuits.to_string()
            },
            r.workers,
            r.mpps,
            r.gbit_s,
            opt(l.map(|l| l.p50), 1),
            opt(l.map(|l| l.p99), 1),
            opt(l.map(|l| l.p999), 1),
            opt(r.loss_pct, 3),
            opt(r.vs_testpmd(), 3),
            opt(r.vs_crypto(), 3),
        );
    }
    let baselines: Vec<&Row> = rows.iter().filter(|r| r.is_baseline()).collect();
    if !baselines.is_empty() {
        out.push_str("\nSame-run baselines:\n\n| baseline | size | flows | workers | Mpps | Gbit/s |\n|---|---|--:|--:|--:|--:|\n");
        for r in baselines {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.3} | {:.2} |",
                r.scenario,
                size_label(&r.size),
                r.flows,
                r.workers,
                r.mpps,
                r.gbit_s
            );
        }
    }
    out
}

/// The plot's data: one line per size class (in the order first seen), one column per
/// scenario, for the rows of the default point (the most common flows/circuits/workers).
/// Returns the gnuplot data text and the column titles.
pub fn plot_data(rows: &[Row]) -> (String, Vec<String>) {
    let most_common = |key: &dyn Fn(&Row) -> u64| -> u64 {
        let mut counts: Vec<(u64, usize)> = Vec::new();
        for r in rows {
            let k = key(r);
            match counts.iter_mut().find(|c| c.0 == k) {
                Some(c) => c.1 += 1,
                None => counts.push((k, 1)),
            }
        }
        counts.iter().max_by_key(|c| c.1).map_or(0, |c| c.0)
    };
    let flows = most_common(&|r| r.flows);
    let workers = most_common(&|r| u64::from(r.workers));
    // One bar per scenario: the full path by its no-drop rate (not its saturated, half-load
    // or voice lines, whose point is latency).
    let plotted = |r: &Row| {
        !(r.scenario.contains("saturated")
            || r.scenario.contains("half load")
            || r.scenario.starts_with("voice"))
    };
    let at_default = |r: &&Row| {
        plotted(r)
            && (r.flows == flows && u64::from(r.workers) == workers && r.circuits <= 1
                || r.scenario.starts_with("crypto-perf"))
    };
    let mut sizes: Vec<&str> = Vec::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows.iter().filter(at_default) {
        if !sizes.contains(&r.size.as_str()) {
            sizes.push(&r.size);
        }
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    let mut text = String::from("size");
    for s in &scenarios {
        let _ = write!(text, "\t\"{s}\"");
    }
    text.push('\n');
    for size in &sizes {
        let _ = write!(text, "\"{}\"", size_label(size));
        for s in &scenarios {
            let v = rows
                .iter()
                .filter(at_default)
                .find(|r| r.size == *size && r.scenario == *s)
                .map(|r| r.mpps);
            let _ = write!(
                text,
                "\t{}",
                v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
            );
        }
        text.push('\n');
    }
    (text, scenarios.iter().map(|s| s.to_string()).collect())
}

/// The run's context as one Markdown line (empty without it).
fn context_line(meta: &serde_json::Value) -> String {
    let field = |k: &str| {
        meta.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let parts: Vec<String> = [
        ("date", ""),
        ("host", ""),
        ("kernel", "kernel "),
        ("dpdk", "DPDK "),
        ("commit", "commit "),
        ("duration_s", "run took s: "),
        ("cpu_steal_pct", "host CPU steal %: "),
    ]
    .iter()
    .filter_map(|(k, label)| field(k).map(|v| format!("{label}{v}")))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("Run: {}.\n\n", parts.join(", "))
    }
}

fn gnuplot_script(data: &Path, png: &Path, columns: usize, title: &str) -> String {
    let mut s = format!(
        "set terminal png size 1100,600 font ',10'\n\
         set output '{}'\n\
         set title \"{}\"\n\
         set ylabel 'Mpps (log scale)'\n\
         set logscale y\n\
         set xlabel 'frame size'\n\
         set datafile missing '-'\n\
         set style data histogram\n\
         set style histogram clustered gap 1\n\
         set style fill solid 0.85 border -1\n\
         set boxwidth 0.9\n\
         set key outside right top vertical\n\
         set grid ytics\n\
         set yrange [0.05:*]\n\
         plot ",
        png.display(),
        title.replace('"', "'")
    );
    for c in 0..columns {
        if c > 0 {
            s.push_str(", ");
        }
        let _ = write!(
            s,
            "'{}' using {}:xtic(1) title columnheader({})",
            data.display(),
            c + 2,
            c + 2
        );
    }
    s.push('\n');
    s
}

pub fn main(mut args: impl Iterator<Item = String>) {
    const USAGE: &str = "usage: sdwan-perf report --rows ROWS.jsonl --out DIR [--meta META.json]";
    let (mut rows_path, mut out, mut meta) = (None::<PathBuf>, None::<PathBuf>, None::<PathBuf>);
    while let Some(a) = args.next() {
        let mut path = || args.next().map(PathBuf::from);
        match a.as_str() {
            "--rows" => rows_path = path(),
            "--out" => out = path(),
            "--meta" => meta = path(),
            _ => {
                eprintln!("unknown argument {a}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let (Some(rows_path), Some(out)) = (rows_path, out) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let fail = |e: String| -> ! {
        eprintln!("sdwan-perf report: {e}");
        std::process::exit(1)
    };
    let text = std::fs::read_to_string(&rows_path)
        .unwrap_or_else(|e| fail(format!("{}: {e}", rows_path.display())));
    let rows = parse_rows(&text, &rows_path.display().to_string()).unwrap_or_else(|e| fail(e));
    if rows.is_empty() {
        fail(format!("{}: no result rows", rows_path.display()));
    }
    let meta: serde_json::Value = match &meta {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{}: {e}", p.display())))
            .unwrap_or_else(|e| fail(e)),
        None => serde_json::json!({}),
    };
    std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    let json = serde_json::json!({ "meta": meta, "rows": rows });
    let write = |name: &str, body: &str| {
        let p = out.join(name);
        std::fs::write(&p, body).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())));
        p
    };
    write(
        "results.json",
        &serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
    let md = format!("{}{}", context_line(&meta), markdown(&rows));
    write("results.md", &md);
    let (data, columns) = plot_data(&rows);
    write("plot.dat", &data);
    // Relative names: the script runs in `out`, and the files stay valid wherever it is moved.
    let (data_path, png) = (Path::new("plot.dat"), Path::new("results.png"));
    let title = match meta.get("host").and_then(|h| h.as_str()) {
        Some(h) => format!("sdwand per-scenario throughput, {h}"),
        None => "sdwand per-scenario throughput".to_string(),
    };
    write(
        "plot.gp",
        &gnuplot_script(data_path, png, columns.len(), &title),
    );
    match Command::new("gnuplot")
        .current_dir(&out)
        .arg("plot.gp")
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("sdwan-perf report: gnuplot failed ({s}); no plot"),
        Err(e) => {
            eprintln!("sdwan-perf report: gnuplot: {e} (apt-get install gnuplot-nox); no plot")
        }
    }
    print!("{md}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, size: &str, mpps: f64) -> Row {
        Row {
            scenario: scenario.into(),
            size: size.into(),
            flows: 1000,
            circuits: 1,
            workers: 1,
            mpps,
            gbit_s: 0.5,
            latency_us: None,
            loss_pct: None,
            testpmd_io_mpps: Some(mpps * 2.0),
            crypto_perf_mpps: None,
            method: String::new(),
            rounds: Vec::new(),
        }
    }

    #[test]
    fn rows_round_trip_and_errors_name_the_line() {
        let r = row("forward", "64", 3.0);
        let text = format!(
            "{}\n\n{}\n",
            serde_json::to_string(&r).unwrap(),
            "{\"scenario\":1}"
        );
        let err = parse_rows(&text, "rows.jsonl").unwrap_err();
        assert!(err.starts_with("rows.jsonl:3:"), "{err}");
        let ok = parse_rows(&serde_json::to_string(&r).unwrap(), "x").unwrap();
        assert_eq!(ok, vec![r]);
    }

    #[test]
    fn table_has_ratios_and_dashes_for_missing_figures() {
        let mut full = row("full path", "imix", 0.5);
        full.latency_us = Some(Latency {
            p50: 12.0,
            p99: 80.5,
            p999: 150.0,
        });
        full.loss_pct = Some(0.0);
        full.testpmd_io_mpps = None;
        let mut base = row("testpmd io", "64", 20.0);
        base.testpmd_io_mpps = None;
        let md = markdown(&[row("forward", "64", 3.0), full, base]);
        let lines: Vec<&str> = md.lines().collect();
        assert!(
            lines[2].starts_with("| forward | 64 B | 1000 | 1 | 1 | 3.000 |"),
            "{md}"
        );
        assert!(lines[2].contains("| – | – | – | – | 0.500 | – |"), "{md}");
        assert!(
            lines[3].contains("| IMIX |") && lines[3].contains("| 12.0 | 80.5 | 150.0 | 0.000 |"),
            "{md}"
        );
        assert!(
            md.contains("| testpmd io | 64 B | 1000 | 1 | 20.000 |"),
            "{md}"
        );
    }

    #[test]
    fn plot_data_has_a_column_per_scenario_at_the_default_point() {
        let mut many = row("encrypt overlay", "64", 1.0);
        many.flows = 100_000;
        let rows = vec![
            row("forward", "64", 3.0),
            row("forward", "imix", 2.0),
            row("encrypt overlay", "64", 1.5),
            many,
            row("full path, saturated", "64", 0.9),
            row("voice (1%), bulk saturating", "imix", 0.9),
        ];
        let (data, cols) = plot_data(&rows);
        assert_eq!(cols, vec!["forward", "encrypt overlay"]);
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(lines[1], "\"64 B\"\t3.0000\t1.5000");
        assert_eq!(lines[2], "\"IMIX\"\t2.0000\t-");
    }
}
