//! `sdwand --config FILE` through the real binary: an invalid configuration is refused with exit
//! status 2 and a message naming the file, the line and the field; `--check` accepts the lab's
//! configurations. No DPDK, no root: sdwand stops before starting the data plane.

mod common;

use common::{run, sdwand, stderr, stdout, TempDir};

/// A valid configuration; the cases below edit one line of it (line numbers on the right).
const BASE: &str = "\
node:                                          # 1
  name: e2e                                    # 2
ports:                                         # 3
  - name: lan0                                 # 4
    device: net_null_cfg0                      # 5
    role: lan                                  # 6
    addresses: [10.1.0.1/24]                   # 7
  - name: wan0                                 # 8
    device: net_null_cfg1                      # 9
    role: wan                                  # 10
    addresses: [198.18.1.1/24]                 # 11
routes:                                        # 12
  - { prefix: 10.2.0.0/24, via: 198.18.1.2, port: wan0 }   # 13
";

/// BASE with line `n` (1-based) replaced by `with`.
fn edit(n: usize, with: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[n - 1] = with;
    lines.join("\n") + "\n"
}

/// Runs `sdwand --config FILE` on `text`; asserts exit status 2 and that stderr names
/// `FILE:line:` and `field`, and holds `words`.
#[track_caller]
fn refused(name: &str, text: &str, line: usize, field: &str, words: &str) {
    let dir = TempDir::new("cfg");
    let file = dir.write(name, text);
    let out = run(&sdwand(), &["--config", file.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {err}");
    let at = format!("{}:{line}:", file.display());
    assert!(err.contains(&at), "stderr names {at:?}: {err}");
    assert!(
        err.contains(&format!(": {field}: ")),
        "stderr names field {field:?}: {err}"
    );
    assert!(err.contains(words), "stderr says {words:?}: {err}");
    assert!(stdout(&out).is_empty(), "nothing on stdout");
}

#[test]
fn base_configuration_is_valid() {
    let dir = TempDir::new("cfg");
    let file = dir.write("base.yaml", BASE);
    let out = run(&sdwand(), &["--config", file.to_str().unwrap(), "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unknown_key() {
    refused(
        "unknown-key.yaml",
        &edit(10, "    rol: wan"),
        10,
        "ports[1].rol",
        "unknown field `rol`, expected one of name, device, role",
    );
}

#[test]
fn invalid_address() {
    refused(
        "bad-address.yaml",
        &edit(7, "    addresses: [10.1.0.300/24]"),
        7,
        "ports[0].addresses[0]",
        "10.1.0.300/24",
    );
}

#[test]
fn route_to_unknown_port() {
    refused(
        "unknown-port.yaml",
        &edit(
            13,
            "  - { prefix: 10.2.0.0/24, via: 198.18.1.2, port: wan9 }",
        ),
        13,
        "routes[0].port",
        "unknown port \"wan9\"",
    );
}

#[test]
fn missing_file() {
    let dir = TempDir::new("cfg");
    let file = dir.path().join("does-not-exist.yaml");
    let out = run(&sdwand(), &["--config", file.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {err}");
    assert!(
        err.contains(file.to_str().unwrap()),
        "stderr names the file: {err}"
    );
    assert!(err.contains("No such file"), "stderr says why: {err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&sdwand(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--config FILE is required"));
    let out = run(&sdwand(), &["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("usage: sdwand"));
}

#[test]
fn lab_configurations_check() {
    for site in ["a", "b"] {
        let file = format!("{}/conf/lab/site-{site}.yaml", env!("CARGO_MANIFEST_DIR"));
        let out = run(&sdwand(), &["--config", &file, "--check"]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("configuration is valid"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn version() {
    let out = run(&sdwand(), &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("sdwand {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}
