#!/usr/bin/env bash
# The network-namespace lab: two sites joined by two WAN circuits through the userspace WAN
# emulator (sdwan-wanem). Run as root.
#
#   scripts/lab.sh up [--router sdwand|kernel]   build the lab (tears down an old one first)
#   scripts/lab.sh down                          remove everything (idempotent)
#   scripts/lab.sh status                        namespaces, processes, emulator settings/counters
#   scripts/lab.sh impair CIRCUIT [dir a2b|b2a] [delay MS] [jitter MS] [loss PCT]
#                         [duplicate PCT] [reorder PCT] [rate MBIT] [blackhole]
#   scripts/lab.sh clear [CIRCUIT]               no impairments (all circuits when none named)
#   scripts/lab.sh exec NODE CMD...              run CMD in hostA|siteA|transport|siteB|hostB
#   scripts/lab.sh ctl ARGS...                   sdwan-wanem ctl on the lab's socket (show --json)
#
#   hostA:lan ── lan0:siteA:inet ── a-inet:transport:b-inet ── inet:siteB:lan0 ── lan:hostB
#                     siteA:mpls ── a-mpls:transport:b-mpls ── mpls:siteB
#
# hostA lan: 10.1.0.2/24 fd00:1::2/64 (+ 10.1.100.2/32 fd00:1:100::2/128, sources for the
# second circuit), gateway 10.1.0.1 / fd00:1::1; hostB the same with 10.2.*, fd00:2:*.
# The transport namespace runs `sdwan-wanem run --circuit inet:a-inet:b-inet
# --circuit mpls:a-mpls:b-mpls` (a2b = site A -> site B). Router mode "kernel": the sites route
# in the kernel (for testing the emulator); "sdwand": the sites' veths have no kernel addresses
# and IPv6 off, and sdwand runs in each site with conf/lab/site-{a,b}.yaml.
#
# Environment: LAB_PREFIX (sdw) prefixes the namespaces; LAB_DIR (/run/sdwan-lab) holds pid
# files, logs, exit statuses (NAME.rc) and sockets; WANEM and SDWAND name the binaries (default
# ${CARGO_TARGET_DIR:-target}/release/{sdwan-wanem,sdwand}, relative to the repository root).
set -euo pipefail

ORIG_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

abspath() { if [[ $1 == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$ORIG_PWD/$1"; fi; }

P=${LAB_PREFIX:-sdw}
LAB_DIR=$(abspath "${LAB_DIR:-/run/sdwan-lab}")
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    CARGO_TARGET_DIR=$(abspath "$CARGO_TARGET_DIR")
    export CARGO_TARGET_DIR
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WANEM_GIVEN=${WANEM:+1}
WANEM=$( [[ -n ${WANEM:-} ]] && abspath "$WANEM" || echo "$TARGET/release/sdwan-wanem")
SDWAND=$( [[ -n ${SDWAND:-} ]] && abspath "$SDWAND" || echo "$TARGET/release/sdwand")
WANEM_SOCK=$LAB_DIR/wanem.sock

NS_HOSTA=$P-hostA
NS_SITEA=$P-siteA
NS_TRANSPORT=$P-transport
NS_SITEB=$P-siteB
NS_HOSTB=$P-hostB
NAMESPACES=("$NS_HOSTA" "$NS_SITEA" "$NS_TRANSPORT" "$NS_SITEB" "$NS_HOSTB")
# Processes the lab starts, by name: LAB_DIR/NAME.pid, NAME.start (start time), NAME.log.
PROCS=(site-a site-b wanem)

log() { echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_exists() { [[ -e /run/netns/$1 ]]; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, AF_PACKET)"; }

need_tools() {
    local t
    for t in ip ethtool sysctl setsid; do
        command -v "$t" >/dev/null || die "$t not found: run scripts/setup.sh"
    done
}

ensure_wanem() {
    [[ -x $WANEM ]] && return 0
    if [[ -n $WANEM_GIVEN ]]; then
        die "WANEM=$WANEM does not exist or is not executable"
    fi
    command -v cargo >/dev/null || die "$WANEM is missing and cargo is not in PATH to build it"
    log "building sdwan-wanem (cargo build --release -p sdwan-wanem)"
    cargo build --release -p sdwan-wanem >&2
    [[ -x $WANEM ]] || die "built sdwan-wanem, but $WANEM is still missing (CARGO_TARGET_DIR?)"
}

wanem_ctl() { "$WANEM" ctl --socket "$WANEM_SOCK" "$@"; }

# Start time of a process (clock ticks since boot, field 22 of /proc/PID/stat): with the pid,
# it identifies the process we started even if the binary is a wrapper or the pid is reused.
proc_start() {
    local stat rest fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    read -ra fields <<<"$rest"
    echo "${fields[19]}"
}

# The pid in LAB_DIR/NAME.pid if that process is alive and still the one we started.
live_pid() { # name
    local f=$LAB_DIR/$1.pid pid start
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    start=$(proc_start "$pid") || return 1
    [[ -s $LAB_DIR/$1.start && $(<"$LAB_DIR/$1.start") == "$start" ]] || return 1
    echo "$pid"
}

# Start a command in the background, detached (own session), stdin from /dev/null, output to
# LAB_DIR/NAME.log; its pid (the program's: `ip netns exec` and `env` exec it) goes to
# LAB_DIR/NAME.pid, and its exit status, once it has exited, to LAB_DIR/NAME.rc (128+N when
# killed by signal N). A small bash wrapper, the program's parent, waits for it to record that.
spawn() { # name cmd...
    local name=$1; shift
    local pidf=$LAB_DIR/$name.pid tmp=$LAB_DIR/.$name.pid rcf=$LAB_DIR/$name.rc i start
    rm -f "$pidf" "$tmp" "$LAB_DIR/$name.start" "$rcf"
    # The pid is written as soon as the program is forked; its start time is recorded next to
    # it (if it has exited already, wait_socket reports that with its log). Nothing signals the
    # wrapper: it lives in the root namespace, in its own session, and stop_procs signals the pid.
    # shellcheck disable=SC2016
    setsid bash -c 'rcf=$1; shift; "$@" & echo $! >"$0"; wait $!; echo $? >"$rcf"' \
        "$tmp" "$rcf" "$@" </dev/null >"$LAB_DIR/$name.log" 2>&1 &
    for ((i = 0; i < 100; i++)); do
        if [[ -s $tmp ]]; then
            start=$(proc_start "$(<"$tmp")") || start=gone
            echo "$start" >"$LAB_DIR/$name.start"
            mv "$tmp" "$pidf"
            return 0
        fi
        sleep 0.02
    done
    die "could not start $name"
}

wait_socket() { # name socket timeout_s
    local name=$1 sock=$2 timeout=$3 i
    for ((i = 0; i < timeout * 20; i++)); do
        [[ -S $sock ]] && return 0
        if ! live_pid "$name" >/dev/null; then
            log "$name exited during start-up; last lines of $LAB_DIR/$name.log:"
            tail -n 20 "$LAB_DIR/$name.log" >&2 || true
            die "$name did not start"
        fi
        sleep 0.05
    done
    log "last lines of $LAB_DIR/$name.log:"
    tail -n 20 "$LAB_DIR/$name.log" >&2 || true
    die "$name: no socket $sock after ${timeout}s"
}

# SIGTERM to the lab's processes, up to 10 s for them to exit, then SIGKILL.
stop_procs() {
    local name pid i names=() pids=() left
    for name in "${PROCS[@]}"; do
        if pid=$(live_pid "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            names+=("$name") pids+=("$pid")
        fi
    done
    for ((i = 0; i < 100 && ${#pids[@]} > 0; i++)); do
        left=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            log "${names[$i]} (pid ${pids[$i]}) did not exit within 10 s of SIGTERM: SIGKILL"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
    done
    # Report how each one ended (LAB_DIR/NAME.rc, written by spawn's wrapper; kept for tests).
    for i in "${!names[@]}"; do
        name=${names[$i]}
        for ((left = 0; left < 20; left++)); do
            [[ -s $LAB_DIR/$name.rc ]] && break
            sleep 0.05
        done
        if [[ -s $LAB_DIR/$name.rc ]]; then
            log "${name} (pid ${pids[$i]}) exited with status $(<"$LAB_DIR/$name.rc")"
        else
            log "${name} (pid ${pids[$i]}) stopped (exit status unknown)"
        fi
    done
    for name in "${PROCS[@]}"; do rm -f "$LAB_DIR/$name.pid" "$LAB_DIR/$name.start"; done
}

mk_ns() { # ns
    ip netns add "$1"
    nsx "$1" ip link set lo up
    # Addresses usable at once (no duplicate address detection), no autoconfiguration.
    nsx "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
        net.ipv6.conf.all.autoconf=0 net.ipv6.conf.default.autoconf=0 >/dev/null
}

mk_veth() { # ns1 if1 ns2 if2
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
}

# Offloads off so AF_PACKET readers (the emulator, DPDK's net_af_packet) see real frames with
# correct checksums and no GSO/GRO super-frames; MTU 1500; link up.
if_up() { # ns if
    nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null
    # No VLAN acceleration either (best effort). Note the kernel still moves a received VLAN
    # tag into packet metadata for AF_PACKET; sdwan-wanem and DPDK's net_af_packet put it back.
    nsx "$1" ethtool -K "$2" txvlan off rxvlan off >/dev/null 2>&1 || true
    ip -n "$1" link set "$2" mtu 1500 up
}

setup_host() { # ns n(1|2)
    local ns=$1 n=$2
    ip -n "$ns" addr add "10.$n.0.2/24" dev lan
    ip -n "$ns" addr add "fd00:$n::2/64" dev lan
    ip -n "$ns" addr add "10.$n.100.2/32" dev lan
    ip -n "$ns" addr add "fd00:$n:100::2/128" dev lan
    ip -n "$ns" route add default via "10.$n.0.1"
    ip -n "$ns" -6 route add default via "fd00:$n::1"
}

setup_kernel_site() { # ns n(1|2) peer(2|1)
    local ns=$1 n=$2 m=$3
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
    ip -n "$ns" addr add "10.$n.0.1/24" dev lan0
    ip -n "$ns" addr add "fd00:$n::1/64" dev lan0
    ip -n "$ns" addr add "198.18.1.$n/24" dev inet
    ip -n "$ns" addr add "fd00:ff:1::$n/64" dev inet
    ip -n "$ns" addr add "198.18.2.$n/24" dev mpls
    ip -n "$ns" addr add "fd00:ff:2::$n/64" dev mpls
    # The hosts' extra addresses (second-circuit sources) are behind the LAN.
    ip -n "$ns" route add "10.$n.100.0/24" via "10.$n.0.2"
    ip -n "$ns" -6 route add "fd00:$n:100::/64" via "fd00:$n::2"
    # The far site: its LAN over inet, its extra addresses over mpls.
    ip -n "$ns" route add "10.$m.0.0/24" via "198.18.1.$m"
    ip -n "$ns" route add "10.$m.100.0/24" via "198.18.2.$m"
    ip -n "$ns" -6 route add "fd00:$m::/64" via "fd00:ff:1::$m"
    ip -n "$ns" -6 route add "fd00:$m:100::/64" via "fd00:ff:2::$m"
}

lab_present() {
    local ns name
    for ns in "${NAMESPACES[@]}"; do ns_exists "$ns" && return 0; done
    for name in "${PROCS[@]}"; do [[ -e $LAB_DIR/$name.pid ]] && return 0; done
    return 1
}

up_failed() {
    local rc=$?
    log "up failed (exit $rc); tearing the lab down"
    cmd_down || true
    exit "$rc"
}

# Wait until every lab veth is operationally up (the kernel reports it with a short delay).
wait_links_up() {
    local spec ns ifc state i
    for spec in "$NS_HOSTA:lan" "$NS_HOSTB:lan" "$NS_SITEA:lan0" "$NS_SITEA:inet" "$NS_SITEA:mpls" \
        "$NS_SITEB:lan0" "$NS_SITEB:inet" "$NS_SITEB:mpls" "$NS_TRANSPORT:a-inet" \
        "$NS_TRANSPORT:a-mpls" "$NS_TRANSPORT:b-inet" "$NS_TRANSPORT:b-mpls"; do
        ns=${spec%%:*} ifc=${spec#*:}
        for ((i = 0; i < 100; i++)); do
            state=$(ip -n "$ns" -br link show dev "$ifc" | awk '{ print $2 }')
            [[ $state == UP ]] && break
            sleep 0.05
        done
        [[ $state == UP ]] || die "$ns/$ifc is not up (state $state)"
    done
}

cmd_up() {
    local router=sdwand
    while [[ $# -gt 0 ]]; do
        case $1 in
            --router) [[ $# -ge 2 ]] || die "--router needs sdwand or kernel"; router=$2; shift 2 ;;
            --router=*) router=${1#--router=}; shift ;;
            *) die "unknown argument to up: $1" ;;
        esac
    done
    [[ $router == sdwand || $router == kernel ]] || die "--router must be sdwand or kernel, not '$router'"
    need_root
    need_tools
    ensure_wanem
    if [[ $router == sdwand ]]; then
        [[ -x $SDWAND ]] || die "sdwand binary not found at $SDWAND: build it (cargo build --release) or set SDWAND=/path/to/sdwand (or use --router kernel)"
        local c
        for c in conf/lab/site-a.yaml conf/lab/site-b.yaml; do
            [[ -f $c ]] || die "missing $ROOT/$c"
        done
    fi
    if lab_present; then
        log "a lab is up already: tearing it down first"
        cmd_down
    fi

    trap up_failed EXIT
    mkdir -p "$LAB_DIR"
    echo "$router" >"$LAB_DIR/router"

    local ns
    for ns in "${NAMESPACES[@]}"; do mk_ns "$ns"; done
    # The transport namespace only bridges: its kernel must stay silent on the circuits.
    nsx "$NS_TRANSPORT" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null

    mk_veth "$NS_HOSTA" lan "$NS_SITEA" lan0
    mk_veth "$NS_HOSTB" lan "$NS_SITEB" lan0
    mk_veth "$NS_SITEA" inet "$NS_TRANSPORT" a-inet
    mk_veth "$NS_SITEA" mpls "$NS_TRANSPORT" a-mpls
    mk_veth "$NS_SITEB" inet "$NS_TRANSPORT" b-inet
    mk_veth "$NS_SITEB" mpls "$NS_TRANSPORT" b-mpls

    local ifc
    if [[ $router == sdwand ]]; then
        # sdwand owns these ports (net_af_packet): no kernel IPv6 on them (no RS/ND/MLD noise).
        for ns in "$NS_SITEA" "$NS_SITEB"; do
            for ifc in lan0 inet mpls; do
                nsx "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" >/dev/null
            done
        done
    fi
    if_up "$NS_HOSTA" lan
    if_up "$NS_HOSTB" lan
    for ifc in lan0 inet mpls; do if_up "$NS_SITEA" "$ifc"; if_up "$NS_SITEB" "$ifc"; done
    for ifc in a-inet a-mpls b-inet b-mpls; do if_up "$NS_TRANSPORT" "$ifc"; done

    setup_host "$NS_HOSTA" 1
    setup_host "$NS_HOSTB" 2
    if [[ $router == kernel ]]; then
        setup_kernel_site "$NS_SITEA" 1 2
        setup_kernel_site "$NS_SITEB" 2 1
    fi

    wait_links_up

    rm -f "$WANEM_SOCK"
    spawn wanem ip netns exec "$NS_TRANSPORT" "$WANEM" run --socket "$WANEM_SOCK" \
        --circuit inet:a-inet:b-inet --circuit mpls:a-mpls:b-mpls
    wait_socket wanem "$WANEM_SOCK" 10

    if [[ $router == sdwand ]]; then
        local site
        for site in a b; do
            ns=$NS_SITEA
            [[ $site == b ]] && ns=$NS_SITEB
            rm -f "$LAB_DIR/site-$site.sock"
            spawn "site-$site" ip netns exec "$ns" env LAB_DIR="$LAB_DIR" \
                "$SDWAND" --config "conf/lab/site-$site.yaml"
        done
        wait_socket site-a "$LAB_DIR/site-a.sock" 20
        wait_socket site-b "$LAB_DIR/site-b.sock" 20
    fi
    trap - EXIT
    log "up (router $router): namespaces ${NAMESPACES[*]}; state in $LAB_DIR"
}

cmd_down() {
    local name ns pids pid i
    stop_procs
    for ns in "${NAMESPACES[@]}"; do
        ns_exists "$ns" || continue
        # Anything else still running in the lab's namespaces (a test's iperf3, a shell...).
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            log "stopping processes left in $ns: ${pids//$'\n'/ }"
            for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
            for ((i = 0; i < 20; i++)); do
                pids=$(ip netns pids "$ns" 2>/dev/null || true)
                [[ -z $pids ]] && break
                sleep 0.1
            done
            for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        fi
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -f "$WANEM_SOCK" "$LAB_DIR/site-a.sock" "$LAB_DIR/site-b.sock" "$LAB_DIR/router"
    log "down (logs kept in $LAB_DIR/*.log)"
}

cmd_status() {
    local ns name pid ok=0 router=none
    [[ -f $LAB_DIR/router ]] && router=$(<"$LAB_DIR/router")
    echo "router mode: $router   state: $LAB_DIR"
    echo "namespaces:"
    for ns in "${NAMESPACES[@]}"; do
        if ns_exists "$ns"; then echo "  $ns  present"; else echo "  $ns  absent"; ok=1; fi
    done
    echo "processes:"
    for name in "${PROCS[@]}"; do
        [[ $router != sdwand && $name == site-* ]] && continue
        if pid=$(live_pid "$name"); then
            echo "  $name  running (pid $pid, log $LAB_DIR/$name.log)"
        else
            echo "  $name  NOT running (log $LAB_DIR/$name.log)"
            ok=1
        fi
    done
    if [[ -x $WANEM && -S $WANEM_SOCK ]]; then
        echo "wan emulator:"
        wanem_ctl show | sed 's/^/  /' || ok=1
    fi
    return "$ok"
}

cmd_impair() {
    [[ $# -ge 1 ]] || die "usage: lab.sh impair CIRCUIT [dir a2b|b2a] [delay MS] [jitter MS] [loss PCT] [duplicate PCT] [reorder PCT] [rate MBIT] [blackhole]"
    ensure_wanem
    wanem_ctl set "$@"
}

cmd_clear() {
    ensure_wanem
    if [[ $# -eq 0 ]]; then
        wanem_ctl clear inet
        wanem_ctl clear mpls
    else
        local c
        for c in "$@"; do wanem_ctl clear "$c"; done
    fi
}

cmd_exec() {
    [[ $# -ge 2 ]] || die "usage: lab.sh exec hostA|siteA|transport|siteB|hostB CMD..."
    local node=$1; shift
    case $node in
        hostA | siteA | transport | siteB | hostB) ;;
        *) die "unknown node '$node' (hostA, siteA, transport, siteB, hostB)" ;;
    esac
    exec ip netns exec "$P-$node" "$@"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
    up) cmd_up "$@" ;;
    down) need_root; cmd_down ;;
    status) cmd_status ;;
    impair) cmd_impair "$@" ;;
    clear) cmd_clear "$@" ;;
    exec) cmd_exec "$@" ;;
    ctl) ensure_wanem; wanem_ctl "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
