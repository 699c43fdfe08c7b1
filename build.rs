//! Stamps the build with the git revision, so `sdwand --version` and `sdwan-cli show version`
//! say exactly which code a branch router runs.

use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SDWAN_GIT_REV={rev}");
    // HEAD and the branch refs change on checkout and commit; watching the index instead would
    // relink on every `git add`.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
