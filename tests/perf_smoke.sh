#!/usr/bin/env bash
# The performance matrix end to end, in its quick mode (`perf/run.sh --quick`: 64 B only,
# one round, short runs): every scenario produces its row, sdwan-pktgen's packets cross two
# sdwand processes over memif and come back counted and timed, and the table, the JSON and
# the plot are written. It checks that the chain works and that the figures are coherent,
# not how fast anything is: timing belongs to the benchmark, not to a test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mktemp -d /tmp/sdwan-perf-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
PASSED=0
FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
# check DESCRIPTION JQ-FILTER : passes when the filter over results.json is true.
check() {
    if jq -e "$2" "$OUT/results.json" >/dev/null 2>&1; then pass "$1"; else fail "$1"; fi
}

if ! "$ROOT/perf/run.sh" --quick --out "$OUT" >"$OUT/run.log" 2>&1; then
    tail -n 40 "$OUT/run.log"
    fail "perf/run.sh --quick exits 0"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
pass "perf/run.sh --quick exits 0"
for f in results.md results.json results.png; do
    if [ -s "$OUT/$f" ]; then pass "$f written"; else fail "$f written"; fi
done
if [ "$(head -c 8 "$OUT/results.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    pass "results.png is a PNG"
else
    fail "results.png is a PNG"
fi
row() { echo ".rows[] | select(.scenario == \"$1\" and .size == \"64\")"; }
for s in forward "encrypt overlay" "decrypt overlay" "testpmd io" "crypto-perf encrypt"; do
    check "in-process row '$s' at 64 B with a rate" "[$(row "$s") | .mpps > 0] | any"
done
check "encrypt and decrypt carry same-run baselines (testpmd io and crypto-perf)" \
    "[$(row "encrypt overlay") | .testpmd_io_mpps > 0 and .crypto_perf_mpps > 0] + [$(row "decrypt overlay") | .testpmd_io_mpps > 0 and .crypto_perf_mpps > 0] | length == 2 and all"
check "full path: packets crossed both sites (rate > 0, latency p50 > 0, p50 <= p99 <= p99.9)" \
    "[$(row "full path") | .mpps > 0 and .latency_us.p50 > 0 and .latency_us.p50 <= .latency_us.p99 and .latency_us.p99 <= .latency_us.p999] | any"
check "full path saturated: a loss figure between 0 and 100 %" \
    "[$(row "full path, saturated") | .loss_pct >= 0 and .loss_pct <= 100] | any"
check "voice under load: the voice class's latency is measured" \
    '[.rows[] | select(.scenario | startswith("voice")) | .latency_us.p99 > 0] | length == 2 and all'
check "the run's context: DPDK version, commit, cores" '.meta.dpdk != "" and .meta.commit != "" and .meta.cores > 0'
if grep -q '^| full path |' "$OUT/results.md"; then
    pass "results.md has the full path's line"
else
    fail "results.md has the full path's line"
fi
if [ "$FAILED" -gt 0 ]; then
    echo "--- the rows:"
    jq -c '.rows[] | {scenario, size, mpps, loss_pct, testpmd_io_mpps, crypto_perf_mpps}' \
        "$OUT/results.json" || true
    echo "--- the end of perf/run.sh's output:"
    tail -n 30 "$OUT/run.log"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
