//! Runs the built `sdwan-pktgen` binary. The loopback test needs DPDK with the net_ring driver
//! and runs as root (no hugepages needed); each run uses its own EAL --file-prefix.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sdwan-pktgen");

fn prefix(name: &str) -> String {
    format!("pktgen-test-{name}-{}", std::process::id())
}

#[test]
fn loopback_ring_counts_everything_it_sends() {
    let out = Command::new(BIN)
        .args([
            "--tx",
            "net_ring0",
            "--dst-mac",
            "02:00:00:00:00:01",
            "--rate",
            "100kpps",
            "--duration",
            "1",
            "--voice",
            "1",
            "--flows",
            "1000",
            "--json",
            "--file-prefix",
            &prefix("ring"),
        ])
        .output()
        .expect("run sdwan-pktgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let sent = r["tx"]["packets"].as_u64().unwrap();
    assert!(sent > 10_000, "{r}");
    assert_eq!(r["rx"]["packets"].as_u64(), Some(sent), "{r}");
    assert_eq!(r["lost"].as_u64(), Some(0), "{r}");
    assert_eq!(r["rx"]["stray"].as_u64(), Some(0), "{r}");
    assert_eq!(r["tx"]["dropped"].as_u64(), Some(0), "{r}");
    let classes = r["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[1]["name"], "voice");
    assert!(classes[1]["received"].as_u64().unwrap() > 0, "{r}");
    for c in classes {
        assert_eq!(c["sent"], c["received"], "{r}");
        assert_eq!(c["duplicates"].as_u64(), Some(0));
        assert!(c["latency_us"]["p50"].as_f64().unwrap() > 0.0, "{r}");
    }
    let total: u64 = classes.iter().map(|c| c["sent"].as_u64().unwrap()).sum();
    assert_eq!(total, sent);
}

#[test]
fn bad_argument_exits_2_and_names_it() {
    for (args, name) in [
        (&["--tx", "net_null0", "--rate", "lots"][..], "--rate"),
        (&["--tx", "net_null0", "--frobnicate"][..], "--frobnicate"),
        (&["--tx", "net_null0", "--size", "20"][..], "--size"),
        (&["--rate", "1Mpps"][..], "--tx"),
    ] {
        let out = Command::new(BIN).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_prints_usage() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--voice PCT"));
}
