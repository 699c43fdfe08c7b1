#!/usr/bin/env bash
# The appliance's main job, end to end, in one command (as root, on Debian bookworm with Rust):
#
#   1. install what the project needs (scripts/setup.sh)
#   2. build sdwand, sdwan-cli and the WAN emulator (cargo build --release)
#   3. start the lab: two sdwand appliances (site A, site B) in network namespaces, joined by
#      two WAN circuits (inet, mpls) through the WAN emulator (scripts/lab.sh up)
#   4. ping from host A to host B through both appliances, encrypted: tenant "blue" travels in one
#      SA between the sites as ESP inside VXLAN; IPv4 over each circuit, and IPv6; then a short
#      iperf3 TCP run over each circuit
#   5. show what the appliances saw: sdwan-cli show sa (both sites) / interfaces / stats /
#      routes / neighbors
#   6. tear the lab down (also when a step fails)
#
# Exit status 0 when every ping got through. Environment: CARGO_TARGET_DIR (cargo's),
# SKIP_SETUP=1 to leave out step 1, SKIP_BUILD=1 to use the binaries already built.
set -euo pipefail

ORIG_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ -n ${CARGO_TARGET_DIR:-} && ${CARGO_TARGET_DIR} != /* ]]; then
    export CARGO_TARGET_DIR=$ORIG_PWD/$CARGO_TARGET_DIR
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export SDWAND=$TARGET/release/sdwand WANEM=$TARGET/release/sdwan-wanem
CLI=$TARGET/release/sdwan-cli
LAB=$ROOT/scripts/lab.sh
LAB_DIR=/run/sdwan-lab
LOGS=$(mktemp -d /tmp/sdwan-demo.XXXXXX)
T0=$SECONDS

STEP=""
step() {
    STEP=$1
    echo
    echo "=== $1 ==="
    [[ $# -gt 1 ]] && { shift; printf '%s\n' "$@"; }
    return 0
}
# quiet LOG_NAME CMD... : runs CMD with its output in a log file; shows the log's end on failure.
quiet() {
    local log=$LOGS/$1.log
    shift
    if ! "$@" >"$log" 2>&1; then
        echo "failed: $* (last lines of $log):"
        tail -n 25 "$log"
        return 1
    fi
    echo "done"
}

LAB_STARTED=0
finish() {
    local rc=$?
    if [[ $LAB_STARTED -eq 1 ]]; then
        echo
        echo "=== 6/6 Tearing the lab down (scripts/lab.sh down) ==="
        if [[ $rc -ne 0 ]]; then
            for s in a b; do
                echo "--- last lines of the sdwand log of site ${s^^} ($LAB_DIR/site-$s.log) ---"
                tail -n 10 "$LAB_DIR/site-$s.log" 2>/dev/null || true
            done
        fi
        "$LAB" down 2>&1 | sed 's/^/  /' || true
    fi
    echo
    if [[ $rc -eq 0 ]]; then
        echo "Demo complete in $((SECONDS - T0)) s: host A reached host B through both appliances, encrypted."
        rm -rf "$LOGS"
    else
        echo "Demo FAILED at step: ${STEP} (exit $rc). Logs: $LOGS"
    fi
}
trap finish EXIT

[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (network namespaces, DPDK)" >&2; exit 2; }

if [[ ${SKIP_SETUP:-0} == 1 ]]; then
    step "1/6 Installing system packages: skipped (SKIP_SETUP=1)"
else
    step "1/6 Installing system packages (scripts/setup.sh: DPDK, clang, iproute2, ...)"
    quiet setup scripts/setup.sh
fi

if [[ ${SKIP_BUILD:-0} == 1 ]]; then
    step "2/6 Building: skipped (SKIP_BUILD=1), using $TARGET/release"
else
    step "2/6 Building sdwand, sdwan-cli and sdwan-wanem (cargo build --release)" \
        "(a few minutes the first time)"
    quiet build cargo build --release -p sdwand -p sdwan-cli -p sdwan-wanem
fi

step "3/6 Starting the lab (scripts/lab.sh up): every box below is a network namespace" \
    "" \
    "  hostA ────── siteA (sdwand) ══ inet 198.18.1.0/24 ══ siteB (sdwand) ────── hostB" \
    "  10.1.0.2     lan0 10.1.0.1  ══ mpls 198.18.2.0/24 ══ lan0 10.2.0.1         10.2.0.2" \
    "  fd00:1::2    lan0 fd00:1::1      (WAN emulator,      lan0 fd00:2::1        fd00:2::2" \
    "  10.1.100.2                       sdw-transport)                            10.2.100.2" \
    "" \
    "  Site A is .1 and site B .2 on both circuits. The LANs belong to tenant \"blue\" (VNI" \
    "  1001); its traffic between the sites travels in one SA (AES-128-GCM, static keys from" \
    "  conf/lab/keys/) as ESP between the loopbacks 10.255.0.1 and 10.255.0.2, inside VXLAN." \
    "  The tenant's routes send 10.2.0.0/24 over inet and 10.2.100.0/24 over mpls" \
    "  (conf/lab/site-a.yaml, site-b.yaml); the SA is the same on both." \
    ""
LAB_STARTED=1
"$LAB" up --router sdwand 2>&1 | sed 's/^/  /'

step "4/6 Host A to host B through both appliances, encrypted" \
    "(ttl=62 in the replies: host B's 64, less one for each appliance the reply crossed)"
# The first packet of each path makes the appliances resolve their next hops (ARP / ND).
warm() {
    local i
    for ((i = 0; i < 40; i++)); do
        "$LAB" exec hostA ping -c 1 -W 1 -q "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 0
}
demo_ping() { # what, ping args...
    local what=$1
    shift
    echo
    echo "--- $what: ping $* ---"
    warm "$@"
    "$LAB" exec hostA ping -c 3 -i 0.2 -W 2 "$@" | sed 's/^/  /'
}
demo_ping "IPv4 over circuit inet (10.2.0.0/24 is routed via inet)" 10.2.0.2
demo_ping "IPv4 over circuit mpls (10.2.100.0/24 is routed via mpls)" -I 10.1.100.2 10.2.100.2
demo_ping "IPv6 over circuit inet" -6 fd00:2::2

demo_iperf() { # what, port, client args...
    local what=$1 port=$2
    shift 2
    echo
    echo "--- $what: iperf3 -c $* -t 2 ---"
    "$LAB" exec hostB iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    local server=$!
    sleep 0.3
    "$LAB" exec hostA iperf3 -c "$@" -p "$port" -t 2 -f m | grep -E 'sender|receiver' | sed 's/^/  /'
    wait "$server" 2>/dev/null || true
}
demo_iperf "TCP over circuit inet" 5201 10.2.0.2
demo_iperf "TCP over circuit mpls" 5202 10.2.100.2 -B 10.1.100.2

step "4b/6 Multipath: inet goes black under a ping every 10 ms" \
    "(both sites probe each path every 100 ms; three late probes take it down; the flow moves)"
echo
"$CLI" --socket "$LAB_DIR/site-a.sock" show paths | sed 's/^/  /'
echo
echo "--- ping -i 0.01 -c 300 10.2.0.2 while 'lab.sh impair inet blackhole' cuts inet 1 s in ---"
( sleep 1; "$LAB" impair inet blackhole >/dev/null ) &
"$LAB" exec hostA ping -q -i 0.01 -c 300 -W 1 10.2.0.2 | tail -n 2 | sed 's/^/  /'
wait
echo "  (each lost ping is 10 ms without a path: the failover time)"
echo
"$CLI" --socket "$LAB_DIR/site-a.sock" show paths | sed 's/^/  /'
"$LAB" clear inet >/dev/null

show() { # site command...
    local site=$1
    shift
    echo
    echo "--- site ${site^^}: sdwan-cli --socket $LAB_DIR/site-$site.sock $* ---"
    "$CLI" --socket "$LAB_DIR/site-$site.sock" "$@" | sed 's/^/  /'
}
step "5/6 What the appliances saw (sdwan-cli)"
echo
echo "Security associations: one SA per tenant with the peer, each way, over both circuits."
echo "What one site sealed, the other opened (but for what the WAN lost); keys are never shown."
show a show sa
show b show sa
show a show sa 0x1000
echo
echo "Interfaces: the DPDK ports (net_af_packet on the lab's veths), their addresses and"
echo "packet counters as the devices count them."
show a show interfaces
show b show interfaces
echo
echo "Statistics: what the worker threads did with each packet: forwarded, answered"
echo "locally (ping to the router, ARP/ND), or dropped, with the reason."
show a show stats
show b show stats
echo
echo "Routes: the underlay (\"default\": the circuits), and tenant blue's table: its LAN and the"
echo "routes into the tunnel to the other site, from conf/lab/site-*.yaml."
show a show routes
show b show routes
echo
echo "Neighbors: the link-layer addresses learned by ARP (IPv4) and neighbor discovery (IPv6)."
show a show neighbors
show b show neighbors
