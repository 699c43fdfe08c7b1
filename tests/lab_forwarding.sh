#!/usr/bin/env bash
# End-to-end test of sdwand in the namespace lab: two sdwand instances (sites A and B) joined by
# the two emulated WAN circuits, tenant "blue" carried between them in one SA as ESP inside
# VXLAN (conf/lab/site-*.yaml). Real pings from hostA to hostB (IPv4 and IPv6, over inet and
# over mpls), pings to the routers themselves, ICMP time exceeded from each hop, proof from the
# emulator's, the routers' and the SAs' counters that each circuit carried its traffic and that
# both sites count the same packets, scapy decrypting what site A sent and site B accepting
# ESP that scapy built, iperf3 TCP over each circuit, the neighbor table, and a clean shutdown
# on SIGTERM. Run as root. Prints a PASS/FAIL line per check; exits non-zero on any failure;
# always tears the lab down. Takes about 40 s (after the build).
#
#   tests/lab_forwarding.sh   (env: LAB_PREFIX, WANEM, SDWAND, SDWAN_CLI, CARGO_TARGET_DIR)
#
# Needs release builds of sdwand, sdwan-cli and sdwan-wanem in ${CARGO_TARGET_DIR:-target}/release
# (built with cargo when missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LAB=$ROOT/scripts/lab.sh
P=${LAB_PREFIX:-sdw}
# The lab configurations (conf/lab/site-*.yaml) put the sockets here; lab.sh keeps its state here.
export LAB_DIR=/run/sdwan-lab
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SDWAND=${SDWAND:-$TARGET/release/sdwand}
SDWAN_CLI=${SDWAN_CLI:-$TARGET/release/sdwan-cli}
export SDWAND
SOCK_A=$LAB_DIR/site-a.sock
N=20 # pings per measured phase

CHECKS=0
FAILS=0
pass() { CHECKS=$((CHECKS + 1)); echo "PASS: $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
# check "description" AWK_CONDITION  (variables a, b, c, d from the next arguments)
check() {
    local what=$1 cond=$2 a=${3:-0} b=${4:-0} c=${5:-0} d=${6:-0}
    if awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" "BEGIN { exit !($cond) }"; then
        pass "$what"
    else
        fail "$what"
    fi
}
info() { echo "      $*"; }
indent() { sed 's/^/      /'; }

DOWN_DONE=0
cleanup() {
    local rc=$?
    if [[ $DOWN_DONE -eq 0 ]]; then
        if [[ $FAILS -gt 0 || $rc -ne 0 ]]; then
            echo "--- lab status at the end ---"
            "$LAB" status 2>&1 || true
            for s in a b; do
                echo "--- last lines of $LAB_DIR/site-$s.log ---"
                tail -n 15 "$LAB_DIR/site-$s.log" 2>/dev/null || true
            done
        fi
        "$LAB" down >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "tests/lab_forwarding.sh: run as root" >&2; exit 2; }
for t in ping jq awk ip grep tcpdump iperf3 /usr/bin/python3; do
    command -v "$t" >/dev/null || { echo "tests/lab_forwarding.sh: $t missing (scripts/setup.sh)" >&2; exit 2; }
done
if [[ ! -x $SDWAND || ! -x $SDWAN_CLI ]]; then
    echo "=== building sdwand and sdwan-cli (cargo build --release) ==="
    cargo build --release -p sdwand -p sdwan-cli
fi

inA() { ip netns exec "$P-hostA" "$@"; }
cli() { "$SDWAN_CLI" --socket "$@"; } # cli SOCKET show ...

# ping_count ARGS... : pings from hostA; sets SENT RECV and OUT (the whole output).
ping_count() {
    OUT=$(inA ping "$@" 2>&1) || true
    SENT=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<<"$OUT")
    RECV=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$OUT")
    : "${SENT:=0}" "${RECV:=0}"
}

# total_stat SOCKET JQ_PATH : one number from `sdwan-cli show stats --json` (under .total).
total_stat() { cli "$1" show stats --json | jq -r ".total.$2"; }
# Snapshot of every counter a phase checks, as NAME=VALUE lines: wanem_CIRCUIT_DIR (frames the
# emulator sent on), S_forwarded, S_PORT_rx, S_PORT_tx (S = a | b).
snapshot() {
    local s
    "$LAB" ctl show --json | jq -r '.circuits[] | .name as $c
        | ("a2b", "b2a") as $d | "wanem_\($c)_\($d)=\(.[$d].counters.tx)"'
    for s in a b; do
        cli "$LAB_DIR/site-$s.sock" show sa --json | jq -r --arg s "$s" '
            (map(select(.direction == "out")) | "\($s)_sa_out=\(map(.packets) | add // 0)"),
            (map(select(.direction == "in")) | "\($s)_sa_in=\(map(.packets) | add // 0)"),
            (map(select(.direction == "in")) | "\($s)_sa_auth=\(map(.auth_failed) | add // 0)")'
        cli "$LAB_DIR/site-$s.sock" show stats --json \
            | jq -r --arg s "$s" '"\($s)_forwarded=\(.total.forwarded)"'
        # Tunnel packets per circuit (path probes are not counted: they cross every circuit).
        cli "$LAB_DIR/site-$s.sock" show paths --json \
            | jq -r --arg s "$s" '.[] | "\($s)_path_\(.port)_out=\(.packets_out)"'
        cli "$LAB_DIR/site-$s.sock" show interfaces --json \
            | jq -r --arg s "$s" '.[] | "\($s)_\(.name)_rx=\(.rx_packets)", "\($s)_\(.name)_tx=\(.tx_packets)"'
    done
}
# delta BEFORE AFTER NAME : AFTER[NAME] - BEFORE[NAME].
delta() {
    local x y
    x=$(sed -n "s/^$3=//p" <<<"$1")
    y=$(sed -n "s/^$3=//p" <<<"$2")
    echo $((y - x))
}

T0=$SECONDS
echo "=== lab up (two sdwand routers, circuits inet and mpls through the WAN emulator) ==="
"$LAB" up --router sdwand

# The first packets of each path resolve next hops (ARP / ND on three links each way).
echo "=== waiting for the first replies (neighbor resolution) ==="
for dst in "10.2.0.2" "-I 10.1.100.2 10.2.100.2" "-6 fd00:2::2" "-6 -I fd00:1:100::2 fd00:2:100::2"; do
    ok=0
    for ((i = 0; i < 40; i++)); do
        # shellcheck disable=SC2086
        if inA ping -c 1 -W 1 -q $dst >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || info "no reply yet from ping $dst"
done

echo "=== hostA -> hostB through both routers ==="
ping_count -c 5 -i 0.05 -W 2 10.2.0.2
check "IPv4 hostA -> 10.2.0.2 (over inet): ${RECV}/${SENT} replies" "a == 5 && b == 5" "$RECV" "$SENT"
ping_count -c 5 -i 0.05 -W 2 -I 10.1.100.2 10.2.100.2
check "IPv4 10.1.100.2 -> 10.2.100.2 (over mpls): ${RECV}/${SENT} replies" "a == 5 && b == 5" "$RECV" "$SENT"
ping_count -6 -c 5 -i 0.05 -W 2 fd00:2::2
check "IPv6 hostA -> fd00:2::2 (over inet): ${RECV}/${SENT} replies" "a == 5 && b == 5" "$RECV" "$SENT"
ping_count -6 -c 5 -i 0.05 -W 2 -I fd00:1:100::2 fd00:2:100::2
check "IPv6 fd00:1:100::2 -> fd00:2:100::2 (over mpls): ${RECV}/${SENT} replies" "a == 5 && b == 5" "$RECV" "$SENT"

echo "=== the routers' own addresses ==="
ping_count -c 3 -i 0.05 -W 2 10.1.0.1
check "site A answers on 10.1.0.1: ${RECV}/${SENT}" "a == 3" "$RECV"
ping_count -6 -c 3 -i 0.05 -W 2 fd00:1::1
check "site A answers on fd00:1::1: ${RECV}/${SENT}" "a == 3" "$RECV"
ping_count -c 3 -i 0.05 -W 2 10.2.0.1
check "site B answers on its LAN address 10.2.0.1 (through the tunnel): ${RECV}/${SENT}" "a == 3" "$RECV"

echo "=== TTL: ICMP time exceeded from each hop ==="
ping_count -c 1 -W 2 -t 1 10.2.0.2
info "$(grep -m1 '^From' <<<"$OUT" || echo "(no ICMP error) $OUT")"
if grep -qE '^From 10\.1\.0\.1( |:).*Time to live exceeded' <<<"$OUT"; then
    pass "ping -t 1 10.2.0.2: Time to live exceeded from 10.1.0.1 (site A, ingress lan0)"
else
    fail "ping -t 1 10.2.0.2: Time to live exceeded from 10.1.0.1 (site A, ingress lan0)"
fi
ping_count -c 1 -W 2 -t 2 10.2.0.2
info "$(grep -m1 '^From' <<<"$OUT" || echo "(no ICMP error) $OUT")"
if grep -qE '^From 10\.2\.0\.1( |:).*Time to live exceeded' <<<"$OUT"; then
    pass "ping -t 2 10.2.0.2: Time to live exceeded from 10.2.0.1 (site B, after the tunnel, sent back through it)"
else
    fail "ping -t 2 10.2.0.2: Time to live exceeded from 10.2.0.1 (site B, after the tunnel, sent back through it)"
fi
ping_count -6 -c 1 -W 2 -t 1 fd00:2::2
info "$(grep -m1 '^From' <<<"$OUT" || echo "(no ICMP error) $OUT")"
if grep -qE '^From fd00:1::1( |:).*Time exceeded' <<<"$OUT"; then
    pass "ping -6 -t 1 fd00:2::2: Time exceeded (hop limit) from fd00:1::1 (site A)"
else
    fail "ping -6 -t 1 fd00:2::2: Time exceeded (hop limit) from fd00:1::1 (site A)"
fi

# Each phase: N pings on one circuit, then the counters of the emulator and both routers.
# A ping is a request A->B and a reply B->A, so each router forwards 2 packets per ping.
phase() { # circuit other ping-args...
    local circ=$1 other=$2; shift 2
    local before after d_a2b d_b2a d_o_a2b d_o_b2a fa fb
    echo "=== $N pings that must cross circuit $circ (ping $*) ==="
    before=$(snapshot)
    ping_count -c "$N" -i 0.02 -W 2 "$@"
    sleep 0.3 # the routers' counters are published per burst; let the last one land
    after=$(snapshot)
    d_a2b=$(delta "$before" "$after" "wanem_${circ}_a2b")
    d_b2a=$(delta "$before" "$after" "wanem_${circ}_b2a")
    # The other circuit: the sites' tunnel packets on it (probes cross every circuit).
    d_o_a2b=$(delta "$before" "$after" "a_path_${other}_out")
    d_o_b2a=$(delta "$before" "$after" "b_path_${other}_out")
    fa=$(delta "$before" "$after" a_forwarded)
    fb=$(delta "$before" "$after" b_forwarded)
    info "ping: ${RECV}/${SENT} replies"
    info "emulator frames: $circ a2b +$d_a2b b2a +$d_b2a; tunnel packets on $other: A +$d_o_a2b, B +$d_o_b2a"
    info "site A: forwarded +$fa, lan0 rx +$(delta "$before" "$after" a_lan0_rx) tx +$(delta "$before" "$after" a_lan0_tx), $circ rx +$(delta "$before" "$after" "a_${circ}_rx") tx +$(delta "$before" "$after" "a_${circ}_tx")"
    info "site B: forwarded +$fb, lan0 rx +$(delta "$before" "$after" b_lan0_rx) tx +$(delta "$before" "$after" b_lan0_tx), $circ rx +$(delta "$before" "$after" "b_${circ}_rx") tx +$(delta "$before" "$after" "b_${circ}_tx")"
    check "$circ: all $N pings answered (${RECV}/${SENT})" "a == b && b == c" "$RECV" "$SENT" "$N"
    check "$circ: emulator carried them both ways (a2b +$d_a2b, b2a +$d_b2a >= $N)" \
        "a >= c && b >= c" "$d_a2b" "$d_b2a" "$N"
    check "$circ: not over $other (A +$d_o_a2b, B +$d_o_b2a tunnel packets < $((N / 2)))" \
        "a < c / 2 && b < c / 2" "$d_o_a2b" "$d_o_b2a" "$N"
    check "routers forwarded both directions (site A +$fa, site B +$fb >= $((2 * N)))" \
        "a >= 2 * c && b >= 2 * c" "$fa" "$fb" "$N"
    local ma mb
    ma=$(min_of "$(delta "$before" "$after" a_lan0_rx)" "$(delta "$before" "$after" "a_${circ}_tx")" \
        "$(delta "$before" "$after" "a_${circ}_rx")" "$(delta "$before" "$after" a_lan0_tx)")
    mb=$(min_of "$(delta "$before" "$after" "b_${circ}_rx")" "$(delta "$before" "$after" b_lan0_tx)" \
        "$(delta "$before" "$after" b_lan0_rx)" "$(delta "$before" "$after" "b_${circ}_tx")")
    check "site A: lan0 rx/tx and $circ rx/tx each moved >= $N (least +$ma)" "a >= b" "$ma" "$N"
    check "site B: lan0 rx/tx and $circ rx/tx each moved >= $N (least +$mb)" "a >= b" "$mb" "$N"
    local ao bi bo ai
    ao=$(delta "$before" "$after" a_sa_out); bi=$(delta "$before" "$after" b_sa_in)
    bo=$(delta "$before" "$after" b_sa_out); ai=$(delta "$before" "$after" a_sa_in)
    info "SAs: A out +$ao, B in +$bi; B out +$bo, A in +$ai"
    check "show sa agrees: A sealed $N, B opened $N (+$ao, +$bi)" "a == c && b == c" "$ao" "$bi" "$N"
    check "show sa agrees: B sealed $N, A opened $N (+$bo, +$ai)" "a == c && b == c" "$bo" "$ai" "$N"
}
min_of() { printf '%s\n' "$@" | sort -n | head -n 1; }

phase inet mpls 10.2.0.2
phase mpls inet -I 10.1.100.2 10.2.100.2

echo "=== the wire is encrypted: scapy, an independent ESP, reads and writes it ==="
TMP=$(mktemp -d /tmp/sdwan-lab-test.XXXXXX)
MARKER=5ca1ab1e5eedfeed
ip netns exec "$P-transport" timeout 5 tcpdump -i a-inet -U -w "$TMP/a-inet.pcap" 'udp port 4789' \
    >"$TMP/tcpdump.log" 2>&1 &
TCPDUMP=$!
sleep 1
ping_count -c 5 -i 0.05 -W 2 -p "$MARKER" 10.2.0.2
wait "$TCPDUMP" || true
SCAPY=(/usr/bin/python3 "$ROOT/tests/interop/overlay_scapy.py")
OVERLAY=(--key-file "$ROOT/conf/lab/keys/blue-a-to-b.hex" --loopbacks 10.255.0.1 10.255.0.2
    --vni 1001 --inner-src 10.1.0.2 --inner-dst 10.2.0.2)
if DEC=$("${SCAPY[@]}" decrypt "$TMP/a-inet.pcap" --spi 0x1000 "${OVERLAY[@]}" --marker "$MARKER" 2>&1); then
    pass "scapy decrypts site A's ESP (SPI 0x1000) on inet, marker only inside: $DEC"
else
    fail "scapy decrypts site A's ESP (SPI 0x1000) on inet, marker only inside: $DEC"
fi
# scapy as another sender of the same SA: the SPI of sender 15 (0x100f), A's key.
before=$(snapshot)
BMAC=$(cli "$LAB_DIR/site-b.sock" show interfaces --json | jq -r '.[] | select(.name == "inet") | .mac')
INJ=$(ip netns exec "$P-transport" "${SCAPY[@]}" inject --iface b-inet --dst-mac "$BMAC" \
    --outer 198.18.1.1 198.18.1.2 --spi 0x100f --seq 1 "${OVERLAY[@]}" --marker "$MARKER" 2>&1 | tail -n 1)
info "scapy sent: $INJ"
sleep 0.5
after=$(snapshot)
SA_F=$(cli "$LAB_DIR/site-b.sock" show sa 0x100f --json | jq -r '.packets // 0' 2>/dev/null || echo 0)
check "site B opened scapy's ESP packet (SPI 0x100f: $SA_F packet, auth failures +$(delta "$before" "$after" b_sa_auth))" \
    "a == 1 && b == 0" "$SA_F" "$(delta "$before" "$after" b_sa_auth)"
check "hostB's echo reply to scapy's request came back through the SA (B out +$(delta "$before" "$after" b_sa_out), A in +$(delta "$before" "$after" a_sa_in))" \
    "a == 1 && b == 1" "$(delta "$before" "$after" b_sa_out)" "$(delta "$before" "$after" a_sa_in)"
rm -rf "$TMP"

echo "=== iperf3 TCP over each circuit (ESP in VXLAN) ==="
iperf_phase() { # circuit port client-args...
    local circ=$1 port=$2; shift 2
    local before after out mbit ao bi
    ip netns exec "$P-hostB" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    local server=$!
    sleep 0.3
    before=$(snapshot)
    out=$(inA iperf3 -c "$@" -p "$port" -t 2 -J 2>&1) || true
    wait "$server" 2>/dev/null || true
    sleep 0.3
    after=$(snapshot)
    mbit=$(jq -r '(.end.sum_received.bits_per_second // 0) / 1e6 | floor' <<<"$out" 2>/dev/null || echo 0)
    ao=$(delta "$before" "$after" a_sa_out); bi=$(delta "$before" "$after" b_sa_in)
    info "iperf3 $*: $mbit Mbit/s received, retransmits $(jq -r '.end.sum_sent.retransmits // "?"' <<<"$out" 2>/dev/null)"
    info "emulator: $circ a2b +$(delta "$before" "$after" "wanem_${circ}_a2b"); SAs: A out +$ao, B in +$bi"
    check "iperf3 over $circ completed ($mbit Mbit/s)" "a > 1" "$mbit"
    # (At least 95%: a stalled host's false alarm on the path moves the flow to the other
    # circuit for a moment.)
    check "iperf3 over $circ: the emulator carried it on $circ (+$(delta "$before" "$after" "wanem_${circ}_a2b") frames of $ao)" \
        "a >= 0.95 * b" "$(delta "$before" "$after" "wanem_${circ}_a2b")" "$ao"
    # What A sealed, B opened, but for what the emulator and the veths lost on the way.
    check "iperf3 over $circ: show sa agrees (B opened $bi of the $ao A sealed, none more, at least 95%)" \
        "b <= a && b >= 0.95 * a && a > 1000" "$ao" "$bi"
}
iperf_phase inet 5201 10.2.0.2
iperf_phase mpls 5202 10.2.100.2 -B 10.1.100.2

echo "=== neighbors and drops ==="
NEIGH=$(cli "$SOCK_A" show neighbors)
indent <<<"$NEIGH"
for ip in 10.1.0.2 198.18.1.2 198.18.2.2; do
    if grep -qw -- "$ip" <<<"$NEIGH"; then
        pass "site A's neighbor table lists $ip"
    else
        fail "site A's neighbor table lists $ip"
    fi
done
for s in a b; do
    sock=$LAB_DIR/site-$s.sock
    info "site ${s^^} drops: $(cli "$sock" show stats --json | jq -c '.total.drops | with_entries(select(.value > 0))')"
done
NOROUTE=$(total_stat "$SOCK_A" 'drops.no_route')
check "site A: no packet dropped for want of a route (no_route = $NOROUTE)" "a == 0" "$NOROUTE"

echo "=== SIGTERM: lab.sh down stops both routers cleanly ==="
rm -f "$LAB_DIR/site-a.rc" "$LAB_DIR/site-b.rc"
DOWN_OUT=$("$LAB" down 2>&1) && DOWN_RC=0 || DOWN_RC=$?
DOWN_DONE=1
indent <<<"$DOWN_OUT"
check "lab.sh down exits 0 (got $DOWN_RC)" "a == 0" "$DOWN_RC"
if grep -q "did not exit" <<<"$DOWN_OUT"; then
    fail "every lab process exited within 10 s of SIGTERM"
else
    pass "every lab process exited within 10 s of SIGTERM"
fi
for s in a b; do
    rc=$(cat "$LAB_DIR/site-$s.rc" 2>/dev/null || echo missing)
    check "sdwand site-$s exit status 0 (got $rc)" "a == \"0\"" "$rc"
    line=$(grep -m1 'sdwand: stopped:' "$LAB_DIR/site-$s.log" || true)
    if [[ -n $line ]]; then
        pass "sdwand site-$s logged its clean stop: ${line#*sdwand: }"
    else
        fail "sdwand site-$s logged 'sdwand: stopped:' (see $LAB_DIR/site-$s.log)"
    fi
done

echo "=== ${CHECKS} checks, ${FAILS} failed, $((SECONDS - T0)) s ==="
[[ $FAILS -eq 0 ]]
