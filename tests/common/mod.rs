//! Helpers shared by the end-to-end tests of the binaries: where `sdwand` and `sdwan-cli` are,
//! running them, temporary directories.

#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `sdwand` binary Cargo built for these tests.
pub fn sdwand() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sdwand"))
}

/// The `sdwan-cli` binary of the same build (same target directory and profile as `sdwand`).
/// Cargo only builds the binaries of the package under test for its integration tests, so
/// the first call runs `cargo build -p sdwan-cli` with that profile (a no-op when it is up to
/// date, as after `cargo build --workspace`); when cargo cannot be run, an existing binary is
/// used as it is.
pub fn sdwan_cli() -> PathBuf {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let sdwand = sdwand();
        let dir = sdwand
            .parent()
            .expect("sdwand has a directory")
            .to_path_buf();
        let exe = dir.join(format!("sdwan-cli{}", std::env::consts::EXE_SUFFIX));
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => "dev".to_string(),
        };
        // target/<profile>/sdwand, or target/<triple>/<profile>/sdwand when cross-building
        // (then cargo's own target selection is kept and the binary looked for where it was).
        let target_dir = dir.parent().expect("profile directory has a parent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "sdwan-cli", "--bin", "sdwan-cli"])
            .args(["--profile", &profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if target_dir.join("CACHEDIR.TAG").exists() {
            cmd.arg("--target-dir").arg(target_dir);
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("note: cargo build -p sdwan-cli failed ({s}); using {exe:?} as it is")
            }
            Err(e) => eprintln!("note: cannot run cargo ({e}); using {exe:?} as it is"),
        }
        assert!(
            exe.is_file(),
            "sdwan-cli is not built at {exe:?}: run `cargo build -p sdwan-cli` (same profile)"
        );
        exe
    })
    .clone()
}

/// Runs `exe` with `args`; stdin is empty.
pub fn run(exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("sdwan-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create a temporary directory");
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a temporary file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
