//! Binds intel-ipsec-mb (Debian's `libipsec-mb-dev` 1.3: `/usr/include/intel-ipsec-mb.h`,
//! `libIPSec_MB.so`) for the `IpsecMb` AEAD backend of `esp::crypto`.
//!
//! Only what that backend calls is bound: `IMB_MGR` (whose function pointers are the library's
//! per-architecture GCM entry points), `gcm_key_data`, `gcm_context_data`, and the functions
//! that allocate, initialise and free a manager. bindgen reads the real header, so the layout
//! of `IMB_MGR` (about 300 function pointers) is the header's and not a hand copy.
//!
//! `-DLINUX`: the library is built with it, and the header only declares `gcm_key_data` 64-byte
//! aligned under it; without it the Rust struct would be under-aligned.
//!
//! Linking is dynamic (`-lIPSec_MB`, `libIPSec_MB.so.1` at run time, from `libipsec-mb1`): the
//! backend reaches the GCM code through the manager's function pointers, so there is no PLT call
//! per packet, and the static archive would pull in every architecture's code (about 20 MB).

use std::{env, path::PathBuf, process};

const HEADER: &str = "intel-ipsec-mb.h";
const INCLUDE_DIRS: &[&str] = &["/usr/include", "/usr/local/include"];
const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib64",
];

fn missing(what: &str) -> ! {
    eprintln!(
        "error: intel-ipsec-mb not found ({what}): install the Debian package libipsec-mb-dev (run `scripts/setup.sh`)"
    );
    process::exit(1);
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(include) = INCLUDE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join(HEADER).is_file())
    else {
        missing("no intel-ipsec-mb.h in /usr/include or /usr/local/include")
    };
    let header = include.join(HEADER);
    println!("cargo:rerun-if-changed={}", header.display());
    let Some(libdir) = LIB_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("libIPSec_MB.so").exists())
    else {
        missing("no libIPSec_MB.so")
    };
    println!("cargo:rustc-link-search=native={}", libdir.display());
    println!("cargo:rustc-link-lib=dylib=IPSec_MB");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg("-DLINUX")
        .allowlist_type("IMB_MGR")
        .allowlist_type("IMB_ARCH")
        .allowlist_type("gcm_key_data")
        .allowlist_type("gcm_context_data")
        .allowlist_function("alloc_mb_mgr")
        .allowlist_function("free_mb_mgr")
        .allowlist_function("init_mb_mgr_auto")
        .allowlist_function("imb_get_version")
        .allowlist_function("imb_clear_mem")
        .allowlist_var("IMB_VERSION_NUM")
        .allowlist_var("IMB_FEATURE_.*")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .unwrap_or_else(|err| {
            missing(&format!(
                "bindgen could not read {} ({err}); is libclang-dev installed?",
                header.display()
            ))
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("ipsec_mb.rs"))
        .expect("write ipsec_mb.rs");
}
