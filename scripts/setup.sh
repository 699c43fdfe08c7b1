#!/usr/bin/env bash
# Installs the Debian packages this project needs (build, lab, tests). Idempotent: run it as
# often as you like. Keep ONE list below; add packages to it, one per line, with a comment.
set -euo pipefail

PACKAGES=(
    # --- network-namespace lab (scripts/lab.sh) and its tests (tests/*.sh) ---
    iproute2        # ip netns / link / addr / route
    ethtool         # offloads off on the lab's veths
    procps          # sysctl
    util-linux      # setsid
    iputils-ping    # ping in tests/lab_impair.sh
    iperf3          # throughput through the WAN emulator (tests/lab_impair.sh)
    jq              # reads `sdwan-wanem ctl show --json` in tests
    # --- lint ---
    shellcheck      # shellcheck scripts/*.sh tests/*.sh
)

SUDO=
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
