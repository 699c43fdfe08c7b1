//! `sdwan-cli` through the real binaries: without a daemon (exit 1, "not running"), with a bad
//! command (exit 2, usage), and against a real `sdwand` on DPDK `net_null` virtual devices
//! (`--no-huge`): every `show` command, the counters moving, and a clean stop on SIGTERM.
//!
//! The daemon test needs root (DPDK's EAL) and the DPDK libraries; as another user it is
//! skipped with a note.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, run, sdwan_cli, sdwand, stderr, stdout, TempDir};
use serde_json::Value;

#[test]
fn cli_without_daemon_exits_1() {
    let out = run(
        &sdwan_cli(),
        &["--socket", "/tmp/nonexistent.sock", "show", "stats"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("sdwand is not running"), "stderr: {err}");
    assert!(err.contains("/tmp/nonexistent.sock"), "stderr: {err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn cli_bad_command_exits_2_with_usage() {
    for args in [
        &["show", "bogus"][..],
        &["reboot"][..],
        &[][..],
        &["--socket"][..],
    ] {
        let out = run(&sdwan_cli(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("usage: sdwan-cli"), "{args:?}: {err}");
    }
    let out = run(&sdwan_cli(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for cmd in [
        "sa [SPI]",
        "bgp summary",
        "bgp routes [TENANT]",
        "sites",
        "version}",
    ] {
        assert!(help.contains(cmd), "{cmd} in the usage: {help}");
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        set
    };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i < CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// A configuration with two `net_null` ports: `lan0` receives an endless stream of zero-filled
/// frames (all dropped as not for us), `wan0` receives nothing (`no-rx=1`).
fn null_config(socket: &Path) -> String {
    let cpus = allowed_cpus();
    // One worker on the second allowed CPU (core 1 on this project's machines), the control
    // thread on the first. With one CPU, the worker shares it: the control thread is EAL lcore
    // 1 mapped onto that CPU (a worker needs a core number of its own in the configuration).
    let (worker, control, lcores) = match cpus.as_slice() {
        [first, second, ..] => (*second, *first, String::new()),
        [only] => (
            *only,
            only + 1,
            format!(", \"--lcores\", \"{}@{only}\"", only + 1),
        ),
        [] => unreachable!(),
    };
    format!(
        "\
node:
  name: e2e
dpdk:
  eal_args: [\"--no-huge\", \"-m\", \"256\", \"--no-pci\", \"--no-shconf\"{lcores}]
  mbufs: 4095
workers:
  cores: [{worker}]
  control_core: {control}
  idle_sleep_max_us: 200
management:
  socket: {}
ports:
  - name: lan0
    device: net_null_e2e0
    role: lan
    addresses: [10.1.0.1/24, \"fd00:1::1/64\"]
  - name: wan0
    device: net_null_e2e1,no-rx=1
    role: wan
    addresses: [198.18.1.1/24]
routes:
  - {{ prefix: 10.2.0.0/24, via: 198.18.1.2, port: wan0 }}
",
        socket.display()
    )
}

/// A running sdwand; killed (SIGKILL) if the test fails before it stopped it.
struct Daemon {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Fails with the daemon's log when it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!("sdwand exited ({status}); its log:\n{}", self.log());
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
        let t0 = Instant::now();
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait for sdwand") {
                return status;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sdwand did not exit within {limit:?} of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `sdwan-cli --socket SOCKET ARGS...`: asserts success and returns stdout.
#[track_caller]
fn cli(socket: &Path, args: &[&str]) -> String {
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&sdwan_cli(), &all);
    assert!(
        out.status.success(),
        "sdwan-cli {args:?}: {}\n{}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

#[track_caller]
fn cli_json(socket: &Path, args: &[&str]) -> Value {
    let text = cli(socket, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

fn counter(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {pointer} in {v}"))
}

#[test]
fn cli_against_running_daemon() {
    if !is_root() {
        eprintln!("skipped: starting sdwand (DPDK EAL) needs root");
        return;
    }
    let cli_exe = sdwan_cli(); // built before the daemon takes a core
    assert!(cli_exe.is_file());
    let dir = TempDir::new("daemon");
    let socket = dir.path().join("sdwand.sock");
    let config = dir.write("e2e.yaml", &null_config(&socket));
    let log = dir.path().join("sdwand.log");
    let log_file = std::fs::File::create(&log).expect("create the log");
    let child = Command::new(sdwand())
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup the log"))
        .stderr(log_file)
        .spawn()
        .expect("start sdwand");
    let mut daemon = Daemon {
        child: Some(child),
        log: log.clone(),
    };

    // The socket appears once the ports and workers run.
    let t0 = Instant::now();
    while !socket.exists() {
        daemon.assert_running();
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no management socket after 30 s; log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // show interfaces: the table, then the JSON.
    let text = cli(&socket, &["show", "interfaces"]);
    assert!(text.starts_with("Interface"), "{text}");
    for word in ["lan0", "wan0", "net_null", "10.1.0.1/24", "198.18.1.1/24"] {
        assert!(text.contains(word), "{word:?} in:\n{text}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let ifs = cli_json(&socket, &["show", "interfaces", "--json"]);
    let ifs = ifs.as_array().expect("a list of interfaces");
    assert_eq!(ifs.len(), 2, "{ifs:?}");
    assert_eq!(ifs[0]["name"], "lan0");
    assert_eq!(ifs[0]["role"], "lan");
    assert_eq!(ifs[1]["name"], "wan0");
    assert_eq!(ifs[1]["role"], "wan");
    for i in ifs {
        let driver = i["driver"].as_str().unwrap_or_default();
        assert!(driver.contains("net_null"), "driver {driver:?}");
        assert_eq!(i["mtu"], 1500);
    }
    assert_eq!(ifs[0]["addresses"][0], "10.1.0.1/24");
    assert_eq!(ifs[0]["addresses"][1], "fd00:1::1/64");
    assert!(
        counter(&ifs[0], "/rx_packets") > 0,
        "lan0 received: {}",
        ifs[0]
    );
    assert_eq!(counter(&ifs[1], "/rx_packets"), 0, "wan0 has no-rx=1");

    // show stats: receive counters grow; zero-filled frames are not for us.
    let s1 = cli_json(&socket, &["show", "stats", "--json"]);
    std::thread::sleep(Duration::from_millis(300));
    let s2 = cli_json(&socket, &["show", "stats", "--json"]);
    assert_eq!(s2["node"], "e2e");
    let (rx1, rx2) = (
        counter(&s1, "/total/rx_packets"),
        counter(&s2, "/total/rx_packets"),
    );
    assert!(rx2 > rx1 && rx1 > 0, "rx_packets grows: {rx1} -> {rx2}");
    assert!(
        counter(&s2, "/total/drops/not_for_us") > 0,
        "{}",
        s2["total"]["drops"]
    );
    assert_eq!(counter(&s2, "/total/forwarded"), 0);
    assert_eq!(s2["workers"].as_array().map(Vec::len), Some(1));
    assert!(counter(&s2, "/table_generation") >= 1);
    let text = cli(&socket, &["show", "stats"]);
    assert!(text.contains("node e2e"), "{text}");
    assert!(text.contains("not_for_us"), "{text}");

    // show routes: connected subnets and the static route.
    let text = cli(&socket, &["show", "routes"]);
    assert!(
        text.lines()
            .any(|l| l.contains("10.1.0.0/24") && l.contains("connected") && l.contains("lan0")),
        "connected 10.1.0.0/24 on lan0 in:\n{text}"
    );
    let routes = cli_json(&socket, &["show", "routes", "--json"]);
    let routes = routes.as_array().expect("a list of routes");
    let find = |p: &str| routes.iter().find(|r| r["prefix"] == p);
    let r = find("10.1.0.0/24").expect("10.1.0.0/24 in show routes --json");
    assert_eq!(
        (&r["port"], &r["source"]),
        (&"lan0".into(), &"connected".into())
    );
    let r = find("fd00:1::/64").expect("fd00:1::/64 in show routes --json");
    assert_eq!(r["source"], "connected");
    let r = find("10.2.0.0/24").expect("10.2.0.0/24 in show routes --json");
    assert_eq!(
        (&r["port"], &r["via"], &r["source"]),
        (&"wan0".into(), &"198.18.1.2".into(), &"static".into())
    );

    // show neighbors (nobody answered an ARP request on net_null) and show version.
    let n = cli_json(&socket, &["show", "neighbors", "--json"]);
    assert!(n.is_array(), "{n}");
    let v = cli_json(&socket, &["show", "version", "--json"]);
    let version = v["version"].as_str().unwrap_or_default();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
    assert_eq!(v["node"], "e2e");
    let text = cli(&socket, &["show", "version"]);
    assert!(text.starts_with("sdwand "), "{text}");
    assert!(text.contains(" on e2e "), "{text}");

    // SIGTERM: exit status 0 within 10 s, the socket removed, the totals logged.
    daemon.assert_running();
    let status = daemon.terminate(Duration::from_secs(10));
    let log_text = daemon.log();
    assert!(status.success(), "exit status {status}; log:\n{log_text}");
    assert!(!socket.exists(), "the socket is removed at exit");
    assert!(
        log_text.contains("sdwand: stopped: rx "),
        "log:\n{log_text}"
    );

    // And now the CLI says so.
    let out = run(
        &sdwan_cli(),
        &["--socket", socket.to_str().unwrap(), "show", "stats"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}
