#!/usr/bin/env bash
# Installs what this project needs on Debian bookworm (build, lab, tests): the Debian packages
# below and the rustup components rustfmt and clippy. Idempotent: run it as often as you like
# (apt-get install of installed packages and `rustup component add` of present components
# change nothing). Run as root, or as a user with sudo. Rust itself (rustup, cargo) must be
# installed already: https://rustup.rs
#
# Keep ONE package list below; add packages to it, one per line, with a comment.
set -euo pipefail

PACKAGES=(
    # --- build: DPDK 22.11 and the bindgen FFI (dpdk-sys) ---
    libdpdk-dev     # DPDK headers and libraries (pkg-config libdpdk)
    dpdk            # DPDK drivers (net_af_packet, net_null, net_pcap, ...) and tools
    dpdk-dev        # DPDK development tools (dpdk-devbind, ...)
    libclang-dev    # bindgen parses the DPDK headers with libclang
    clang           # C compiler for the dpdk-sys shim (cc crate) and bindgen's headers
    pkg-config      # finds DPDK's include paths and link lines
    libpcap-dev     # net_pcap virtual devices (DPDK tests) link libpcap
    libnuma-dev     # static DPDK links libnuma (also a dependency of libdpdk-dev)
    libbsd-dev      # static DPDK links libbsd (strlcpy; also a dependency of libdpdk-dev)
    libipsec-mb-dev # intel-ipsec-mb 1.3: the ESP AEAD backend Backend::IpsecMb (dataplane/build.rs)
    build-essential # gcc, make, libc headers for build scripts and linking
    # --- network-namespace lab (scripts/lab.sh) and its tests (tests/*.sh) ---
    iproute2        # ip netns / link / addr / route, ss
    ethtool         # offloads off on the lab's veths
    procps          # sysctl
    util-linux      # setsid
    iputils-ping    # ping in tests/lab_*.sh and scripts/demo.sh
    iperf3          # throughput through the WAN emulator (tests/lab_impair.sh)
    jq              # reads the JSON of `sdwan-wanem ctl show --json` and `sdwan-cli ... --json`
    tcpdump         # captures the lab's circuits (tests/lab_forwarding.sh)
    python3         # helper scripts
    # --- interop: independent implementations the tests check the appliance against ---
    python3-scapy   # ESP / VXLAN built and decrypted by scapy (tests/interop/overlay_scapy.py)
    python3-cryptography # scapy's AES-GCM
    user-mode-linux # a Linux kernel with XFRM (ESP) for tests/interop_xfrm.sh; the host has none
    kmod            # modprobe of the guest kernel's modules (tests/interop/uml.sh)
    tshark          # decrypts the ESP on the interop test's wire with the keys
    frr             # FRR 8.4 bgpd: the route reflector of tests/lab_bgp.sh
    exabgp          # ExaBGP 4.2: JSON log of what a reflector sends (tests/lab_bgp.sh), and
                    # `exabgp --decode`, the oracle of control/tests/exabgp_decode.rs
    # --- performance matrix (perf/run.sh) ---
    gnuplot-nox     # the matrix's plot (results.png)
    # --- lint ---
    shellcheck      # shellcheck scripts/*.sh tests/*.sh
)

SUDO=
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
fi
echo "setup: apt-get update && apt-get install ${#PACKAGES[@]} packages" >&2
# A mirror may fail for a moment: three tries each.
apt_get() {
    local i
    for i in 1 2 3; do
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" && return 0
        [[ $i -lt 3 ]] && { echo "setup: apt-get $1 failed; retrying in 10 s" >&2; sleep 10; }
    done
    return 1
}
apt_get update -q
apt_get install -y -q --no-install-recommends "${PACKAGES[@]}"

# Rust components for `cargo fmt` and `cargo clippy` (scripts/test.sh). Rust comes from rustup.
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup component list --installed 2>/dev/null || true)
    missing=()
    for c in rustfmt clippy; do
        grep -q "^$c\(-\|$\)" <<<"$installed" || missing+=("$c")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "setup: rustup component add ${missing[*]}" >&2
        rustup component add "${missing[@]}"
    else
        echo "setup: rustup components rustfmt and clippy present" >&2
    fi
elif command -v cargo >/dev/null 2>&1; then
    for c in fmt clippy; do
        cargo "$c" --version >/dev/null 2>&1 \
            || echo "setup: warning: cargo $c is missing and there is no rustup to add it" >&2
    done
else
    echo "setup: warning: no Rust toolchain found; install one with rustup (https://rustup.rs)" >&2
fi
echo "setup: done" >&2
