#!/usr/bin/env bash
# End-to-end test of the WAN emulator (sdwan-wanem) in the namespace lab, with kernel routers
# in the sites (no sdwand needed): real pings and a UDP transfer from hostA to hostB through
# the emulated circuits. Run as root. Prints the measured figures and a PASS/FAIL line per
# check; exits non-zero on any failure; always tears the lab down. Takes about 20 s.
#
#   tests/lab_impair.sh            (env: LAB_PREFIX, LAB_DIR, WANEM, CARGO_TARGET_DIR as lab.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$ROOT/scripts/lab.sh
P=${LAB_PREFIX:-sdw}
HOST_B_INET=10.2.0.2        # reached over the inet circuit
HOST_A_MPLS_SRC=10.1.100.2  # hostA's extra source address, routed over mpls
HOST_B_MPLS=10.2.100.2

CHECKS=0
FAILS=0
pass() { CHECKS=$((CHECKS + 1)); echo "PASS: $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
# check "description" AWK_CONDITION  (variables a, b, c from the next arguments)
check() {
    local what=$1 cond=$2 a=${3:-0} b=${4:-0} c=${5:-0}
    if awk -v a="$a" -v b="$b" -v c="$c" "BEGIN { exit !($cond) }"; then pass "$what"; else fail "$what"; fi
}
info() { echo "      $*"; }

IPERF_PID=
cleanup() {
    local rc=$?
    if [[ -n $IPERF_PID ]]; then kill "$IPERF_PID" 2>/dev/null || true; fi
    if [[ $FAILS -gt 0 || $rc -ne 0 ]]; then
        echo "--- lab status at the end ---"
        "$LAB" status 2>&1 || true
    fi
    "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "tests/lab_impair.sh: run as root" >&2; exit 2; }
for t in ping iperf3 jq awk ip; do
    command -v "$t" >/dev/null || { echo "tests/lab_impair.sh: $t missing (scripts/setup.sh)" >&2; exit 2; }
done

inA() { ip netns exec "$P-hostA" "$@"; }
inB() { ip netns exec "$P-hostB" "$@"; }

# ping_stats ARGS... : runs ping -q in hostA; sets SENT RECV DUPS LOSS (percent) AVG MDEV (ms).
ping_stats() {
    local out
    out=$(inA ping -q "$@" 2>&1) || true
    SENT=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<<"$out")
    RECV=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$out")
    DUPS=$(sed -nE 's/.*\+([0-9]+) duplicates.*/\1/p' <<<"$out")
    LOSS=$(grep -oE '[0-9.]+% packet loss' <<<"$out" | cut -d% -f1)
    AVG=$(awk -F/ '/^rtt/ { print $5 }' <<<"$out")
    MDEV=$(awk -F/ '/^rtt/ { sub(/ ms.*/, "", $7); print $7 }' <<<"$out")
    : "${SENT:=0}" "${RECV:=0}" "${DUPS:=0}" "${LOSS:=100}" "${AVG:=nan}" "${MDEV:=nan}"
}

# counter CIRCUIT DIR NAME : one emulator counter.
counter() {
    "$LAB" ctl show --json | jq -r --arg c "$1" --arg d "$2" --arg k "$3" \
        '.circuits[] | select(.name == $c) | .[$d].counters[$k]'
}
T0=$SECONDS
echo "=== lab up (kernel routers) ==="
"$LAB" up --router kernel

# Wait for both paths (ARP / ND along three links each way).
for ((i = 0; i < 50; i++)); do
    inA ping -c 1 -W 1 -q "$HOST_B_INET" >/dev/null 2>&1 \
        && inA ping -c 1 -W 1 -q -I "$HOST_A_MPLS_SRC" "$HOST_B_MPLS" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "=== baseline (inet, 50 pings at 20 ms) ==="
ping_stats -c 50 -i 0.02 -W 1 "$HOST_B_INET"
BASE=$AVG
info "RTT avg ${BASE} ms (mdev ${MDEV} ms), loss ${LOSS}%"
check "baseline: no loss, RTT ${BASE} ms < 5 ms" "a == 0 && b < 5" "$LOSS" "$BASE"

echo "=== delay 40 ms per direction ==="
"$LAB" impair inet delay 40 >/dev/null
ping_stats -c 50 -i 0.02 -W 2 "$HOST_B_INET"
EXPECT=$(awk -v b="$BASE" 'BEGIN { printf "%.3f", b + 80 }')
info "RTT avg ${AVG} ms (mdev ${MDEV} ms), expected ${EXPECT} ms (baseline + 2 x 40), loss ${LOSS}%"
check "delay: RTT ${AVG} ms within 10% of ${EXPECT} ms, no loss" \
    "c == 0 && a >= b * 0.9 && a <= b * 1.1" "$AVG" "$EXPECT" "$LOSS"

echo "=== loss 10% per direction (1000 pings at 2 ms) ==="
"$LAB" impair inet loss 10 >/dev/null
L_A0=$(counter inet a2b dropped_loss); R_A0=$(counter inet a2b rx)
L_B0=$(counter inet b2a dropped_loss); R_B0=$(counter inet b2a rx)
ping_stats -c 1000 -i 0.002 -W 1 "$HOST_B_INET"
L_A=$(($(counter inet a2b dropped_loss) - L_A0)); R_A=$(($(counter inet a2b rx) - R_A0))
L_B=$(($(counter inet b2a dropped_loss) - L_B0)); R_B=$(($(counter inet b2a rx) - R_B0))
info "ping: ${SENT} sent, ${RECV} received, loss ${LOSS}% (expected 1 - 0.9^2 = 19%)"
info "emulator: a2b dropped ${L_A}/${R_A}, b2a dropped ${L_B}/${R_B} frames"
check "loss: round-trip loss ${LOSS}% within 19 +/- 5%" "a >= 14 && a <= 24" "$LOSS"
P_A=$(awk -v x="$L_A" -v y="$R_A" 'BEGIN { printf "%.3f", y ? x / y : 0 }')
P_B=$(awk -v x="$L_B" -v y="$R_B" 'BEGIN { printf "%.3f", y ? x / y : 0 }')
check "loss: each direction drops 10 +/- 4% (a2b ${P_A}, b2a ${P_B})" \
    "a >= 0.06 && a <= 0.14 && b >= 0.06 && b <= 0.14" "$P_A" "$P_B"

echo "=== blackhole inet (mpls keeps working) ==="
"$LAB" impair inet blackhole >/dev/null
BH0=$(counter inet a2b dropped_blackhole)
MPLS_OUT=$(mktemp)
inA ping -q -c 20 -i 0.05 -W 1 -I "$HOST_A_MPLS_SRC" "$HOST_B_MPLS" >"$MPLS_OUT" 2>&1 &
MPLS_PING=$!
ping_stats -c 20 -i 0.05 -W 1 "$HOST_B_INET"
INET_LOSS=$LOSS
wait "$MPLS_PING" || true
MPLS_LOSS=$(grep -oE '[0-9.]+% packet loss' "$MPLS_OUT" | cut -d% -f1)
rm -f "$MPLS_OUT"
: "${MPLS_LOSS:=100}"
BH=$(($(counter inet a2b dropped_blackhole) - BH0))
info "inet loss ${INET_LOSS}% (emulator dropped ${BH} frames a2b); mpls loss ${MPLS_LOSS}% at the same time"
check "blackhole: inet loses 100%" "a == 100 && b >= 20" "$INET_LOSS" "$BH"
check "blackhole: mpls (from ${HOST_A_MPLS_SRC} to ${HOST_B_MPLS}) still passes" "a == 0" "$MPLS_LOSS"
CARRIER=$(ip netns exec "$P-siteA" cat /sys/class/net/inet/carrier 2>/dev/null || echo 0)
check "blackhole: carrier stays up on site A's inet" "a == 1" "$CARRIER"
"$LAB" clear inet >/dev/null
ping_stats -c 20 -i 0.05 -W 1 "$HOST_B_INET"
info "after clear: ${RECV}/${SENT} replies"
check "clear: inet passes again (${RECV}/${SENT})" "a >= 19" "$RECV"

echo "=== duplicate 10% per direction (200 pings) ==="
"$LAB" impair inet duplicate 10 >/dev/null
ping_stats -c 200 -i 0.005 -W 1 "$HOST_B_INET"
info "${RECV} replies, +${DUPS} duplicates (expected about 200 x (1.1^2 - 1) = 42)"
check "duplicate: ${DUPS} duplicates in 15..75, no loss" "a >= 15 && a <= 75 && b == 0" "$DUPS" "$LOSS"

# Twice the rate offered for 4 s: the limiter passes no more than 20 Mbit/s and tail-drops the
# rest. UDP, not TCP: a loaded host that stalls the emulator costs UDP only the stall, while
# TCP backs off for much longer, so the lower bound is loose (the figure is printed).
echo "=== rate 20 Mbit/s (iperf3, UDP, 40 Mbit/s offered, 4 s) ==="
QD0=$(counter inet a2b dropped_queue)
"$LAB" impair inet rate 20 >/dev/null
IPERF_LOG=$(mktemp)
inB iperf3 -s -1 -B "$HOST_B_INET" >/dev/null 2>&1 &
IPERF_PID=$!
for ((i = 0; i < 50; i++)); do
    inB ss -Hltn "sport = :5201" 2>/dev/null | grep -q . && break
    sleep 0.05
done
# 1400-byte datagrams: 1442-byte frames, so 20 Mbit/s of frames is 19.42 Mbit/s of payload.
if inA iperf3 -c "$HOST_B_INET" -u -b 40M -l 1400 -t 4 -J >"$IPERF_LOG" 2>&1; then
    MBIT=$(jq '.end.sum_received.bits_per_second / 1e6 * 100 | round / 100' "$IPERF_LOG")
    OFFERED=$(jq '.end.sum_sent.bits_per_second / 1e6 * 100 | round / 100' "$IPERF_LOG")
    SENT_PKTS=$(jq '.end.sum_sent.packets' "$IPERF_LOG")
else
    MBIT=0 OFFERED=0 SENT_PKTS=0
    sed 's/^/      iperf3: /' "$IPERF_LOG" | tail -n 5
fi
wait "$IPERF_PID" 2>/dev/null || true
IPERF_PID=
rm -f "$IPERF_LOG"
QD=$(( $(counter inet a2b dropped_queue) - QD0 ))
info "UDP: ${OFFERED} Mbit/s offered, ${MBIT} Mbit/s delivered (19.42 at exactly 20 Mbit/s of frames); ${QD} of ${SENT_PKTS} datagrams tail-dropped"
check "rate: no more than 20 Mbit/s of frames passed (${MBIT} Mbit/s of payload)" "a > 0 && a <= 19.42 * 1.03" "$MBIT"
check "rate: the excess was tail-dropped (${QD} of ${SENT_PKTS}, offered ${OFFERED} Mbit/s)" \
    "c >= 30 && a >= 0.25 * b" "$QD" "$SENT_PKTS" "$OFFERED"
check "rate: it passes traffic at that order of rate (${MBIT} Mbit/s, at least half of 19.42)" "a >= 9.7" "$MBIT"
"$LAB" clear inet >/dev/null

echo "=== ${CHECKS} checks, ${FAILS} failed, $((SECONDS - T0)) s ==="
[[ $FAILS -eq 0 ]]
