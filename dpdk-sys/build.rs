//! Binds Debian's DPDK 22.11 (found with pkg-config `libdpdk`) and builds the C shim for its
//! static inline fast-path functions.
//!
//! Linking: static by default (`SDWAN_DPDK_LINK=static`), with the drivers the appliance uses
//! linked whole so their constructors register them. Measured here, the shared libraries cost
//! a forwarding loop about 11% against `dpdk-testpmd` (calls through the PLT, TLS through
//! `__tls_get_addr`). `SDWAN_DPDK_LINK=shared` links Debian's shared libraries instead; EAL then
//! loads every driver from its plugin directory by itself.

use std::{env, path::PathBuf, process};

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let shared = env::var("SDWAN_DPDK_LINK").as_deref() == Ok("shared");
    let dpdk = match pkg_config::Config::new()
        .range_version("22.11".."23.12")
        .cargo_metadata(shared)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(err) => {
            eprintln!(
                "error: DPDK 22.11 (libdpdk-dev) not found by pkg-config: run `scripts/setup.sh` first ({err})"
            );
            process::exit(1);
        }
    };
    println!("cargo:rerun-if-env-changed=SDWAN_DPDK_LINK");
    match env::var("SDWAN_DPDK_LINK").as_deref() {
        Ok("shared") => {
            // pkg-config already emitted the shared libraries. `rte_vdev_init` lives in the
            // vdev bus driver, which libdpdk.pc leaves out.
            println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");
        }
        Ok("static") | Err(_) => link_static(&dpdk),
        Ok(other) => {
            eprintln!("error: SDWAN_DPDK_LINK={other:?}: use `static` or `shared`");
            process::exit(1);
        }
    }

    // `-include rte_config.h -march=...`: needed by both clang (bindgen) and cc.
    let other_cflags = pkg_config::get_variable("libdpdk", "cflags")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_default();
    let cflags_other = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or(other_cflags);
    let extra: Vec<String> = cflags_other.split_whitespace().map(str::to_owned).collect();

    let mut shim = cc::Build::new();
    shim.file("shim.c").opt_level(3).warnings(false);
    for inc in &dpdk.include_paths {
        shim.include(inc);
    }
    for flag in &extra {
        shim.flag(flag);
    }
    shim.compile("sdwan_dpdk_shim");

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(extra.iter().cloned())
        .clang_args(
            dpdk.include_paths
                .iter()
                .map(|p| format!("-I{}", p.display())),
        )
        .allowlist_function("rte_.*")
        .allowlist_function("sdwan_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .allowlist_var("sdwan_.*")
        .blocklist_function("rte_.*_inline.*")
        // rte_flow and the protocol headers it pulls in (GTP, L2TPv2) have packed structs that
        // Rust cannot represent; the appliance does not use rte_flow.
        .blocklist_item("rte_flow.*")
        .blocklist_item("rte_l2tpv2.*")
        .blocklist_item("rte_gtp.*")
        .blocklist_function("rte_mtr.*")
        .blocklist_function("rte_tm.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .clang_macro_fallback()
        .parse_callbacks(Box::new(FlagsAsU64));
    builder = builder.prepend_enum_name(false);
    let bindings = builder.generate().unwrap_or_else(|err| {
        eprintln!("error: bindgen could not read the DPDK headers (is libclang-dev installed? run `scripts/setup.sh`): {err}");
        process::exit(1);
    });
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}

/// DPDK's flag macros (RSS hash types, offloads, mbuf flags) are 64-bit; without this bindgen
/// makes some of them `u32` or `i32`, and the large ones vanish or turn negative.
#[derive(Debug)]
struct FlagsAsU64;

impl bindgen::callbacks::ParseCallbacks for FlagsAsU64 {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        const U64_PREFIXES: &[&str] = &[
            "RTE_ETH_RSS_",
            "RTE_ETH_RX_OFFLOAD_",
            "RTE_ETH_TX_OFFLOAD_",
            "RTE_MBUF_F_",
            "RTE_ETH_LINK_SPEED_",
        ];
        if U64_PREFIXES.iter().any(|p| name.starts_with(p)) {
            Some(bindgen::callbacks::IntKind::U64)
        } else {
            None
        }
    }
}

/// Drivers linked whole (their constructors register them with EAL): the buses, the mempool
/// handler, the virtual devices the lab, tests and perf use, and the Intel NICs branch
/// routers carry (ixgbe 82599/X5xx, i40e X710/XL710, ice E810, e1000/igb, igc I225, iavf
/// VFs) plus virtio for virtual CPEs.
const DRIVERS: &[&str] = &[
    "rte_bus_pci",
    "rte_bus_vdev",
    "rte_mempool_ring",
    "rte_net_af_packet",
    "rte_net_pcap",
    "rte_net_null",
    "rte_net_ring",
    "rte_net_memif",
    "rte_net_tap",
    "rte_net_ixgbe",
    "rte_net_i40e",
    "rte_net_ice",
    "rte_net_e1000",
    "rte_net_igc",
    "rte_net_iavf",
    "rte_net_virtio",
];

/// Libraries, each before the ones it uses (static linking resolves left to right).
const LIBRARIES: &[&str] = &[
    "rte_common_iavf",
    "rte_gso",
    "rte_ethdev",
    "rte_security",
    "rte_cryptodev",
    "rte_hash",
    "rte_rcu",
    "rte_net",
    "rte_meter",
    "rte_mbuf",
    "rte_mempool",
    "rte_ring",
    "rte_pci",
    "rte_eal",
    "rte_telemetry",
    "rte_kvargs",
];

/// System libraries the static DPDK objects above need.
const SYSTEM: &[&str] = &["pcap", "numa", "bsd", "atomic", "m", "dl", "pthread", "rt"];

fn link_static(dpdk: &pkg_config::Library) {
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    println!("cargo:rustc-link-search=native=/usr/lib/x86_64-linux-gnu");
    for lib in DRIVERS {
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={lib}");
    }
    for lib in LIBRARIES {
        println!("cargo:rustc-link-lib=static:-bundle={lib}");
    }
    for lib in SYSTEM {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
