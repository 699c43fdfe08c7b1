#!/usr/bin/env bash
# The performance matrix: one command, about 6 minutes on a 2-core machine. Writes
# results.md (the table), results.json (rows and the run's context) and results.png (Mpps
# by frame size, one bar per scenario) to the output directory (default perf/results).
#
#   perf/run.sh [--out DIR] [--quick] [--rounds N] [--seconds S]
#
# What runs (every ratio is to a baseline measured in the same run, on the same devices):
#   1. per worker core, in-process (`sdwan-perf tunnel`): forward, encrypt (ESP in VXLAN),
#      decrypt; 64 B, IMIX (7:4:1 of 64/576/1500) and 1420 B client frames; 1,000 flows; one
#      circuit. Baselines: dpdk-testpmd io on each scenario's input, dpdk-test-crypto-perf
#      (crypto_aesni_gcm) for the AEAD alone;
#   2. flows: encrypt at 64 B with 1 and 100,000 flows;
#   3. circuits: encrypt at 64 B over 2, 4 and 16 WAN circuits;
#   4. workers: encrypt and decrypt at 64 B with 2, 4 and 8 workers, as far as the machine has
#      cores (one stays the main core);
#   5. the full path (perf/fullpath.sh): sdwan-pktgen -> site A -> site B -> sdwan-pktgen over
#      net_memif, two sdwand processes: saturation, no-drop rate, loss and one-way latency
#      percentiles; then the latency of a 1% voice class under load.
# --quick: one size (64 B), one round, 2-second runs, no sweeps (a smoke test of the whole
# chain, about a minute).
# Run as root on a machine set up by scripts/setup.sh (it installs DPDK, jq and gnuplot).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/perf/results
QUICK=0
ROUNDS=2
SECONDS_PER_RUN=3
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "perf/run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for tool in jq gnuplot dpdk-testpmd dpdk-test-crypto-perf; do
    command -v "$tool" >/dev/null || {
        echo "perf/run.sh: $tool is missing: run scripts/setup.sh" >&2
        exit 1
    }
done

START=$(date +%s)
# shellcheck source=perf/steal.sh
. "$ROOT/perf/steal.sh"
TICKS_START=$(cpu_ticks)
log() { echo "[perf $(($(date +%s) - START))s] $*" >&2; }
(cd "$ROOT" && cargo build --release -p sdwand -p sdwan-cli -p sdwan-perf >&2)
PERF=$ROOT/target/release/sdwan-perf
mkdir -p "$OUT"
ROWS=$OUT/rows.jsonl
: >"$ROWS"

SIZES=64,imix,1420
STATUS=0
if [ "$QUICK" = 1 ]; then
    SIZES=64 ROUNDS=1 SECONDS_PER_RUN=2
fi
tunnel() { "$PERF" tunnel --json --rounds "$ROUNDS" --seconds "$SECONDS_PER_RUN" "$@" >>"$ROWS"; }

log "1. forward, encrypt, decrypt per worker core ($SIZES; 1,000 flows)"
tunnel --sizes "$SIZES" --flows 1000 --only "encrypt overlay,decrypt overlay"
if [ "$QUICK" = 0 ]; then
    for flows in 1 100000; do
        log "2. encrypt at 64 B, $flows flow(s)"
        tunnel --sizes 64 --flows "$flows" --only "encrypt overlay" --no-crypto-perf --rounds 1
    done
    for circuits in 2 4 16; do
        log "3. encrypt at 64 B over $circuits circuits"
        tunnel --sizes 64 --circuits "$circuits" --only "encrypt overlay" --no-crypto-perf --rounds 1
    done
    for workers in 2 4 8; do
        if [ "$workers" -lt "$(nproc)" ]; then
            log "4. encrypt and decrypt at 64 B with $workers workers"
            tunnel --sizes 64 --workers "$workers" --only "encrypt overlay,decrypt overlay" --rounds 1
        else
            log "4. $workers workers: not run ($(nproc) cores here, one is the main core)"
        fi
    done
fi
log "5. the full path over memif (pktgen -> A -> B -> pktgen)"
FULL=(--sizes "$SIZES" --voice --out "$ROWS")
[ "$QUICK" = 1 ] && FULL+=(--trial 1)
if ! SKIP_BUILD=1 "$ROOT/perf/fullpath.sh" "${FULL[@]}"; then
    log "warning: the full path failed for some size (see above); the report has what was measured"
    STATUS=1
fi

dpdk_version=$(dpkg-query -W -f '${Version}' dpdk 2>/dev/null || echo unknown)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && commit="$commit (modified)"
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
steal=$(steal_pct "$TICKS_START" "$(cpu_ticks)")
jq -n --arg cpu "$cpu" --argjson cores "$(nproc)" --arg dpdk "$dpdk_version" \
    --arg commit "$commit" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg kernel "$(uname -r)" --arg cmd "perf/run.sh $*" \
    --argjson seconds "$(($(date +%s) - START))" --argjson steal "$steal" \
    '{host: "\($cores) cores, \($cpu)", cpu: $cpu, cores: $cores, kernel: $kernel,
      dpdk: $dpdk, commit: $commit, date: $date, command: $cmd, duration_s: $seconds,
      cpu_steal_pct: $steal}' \
    >"$OUT/meta.json"
"$PERF" report --rows "$ROWS" --out "$OUT" --meta "$OUT/meta.json" >/dev/null
log "done: $OUT/results.md, results.json, results.png"
cat "$OUT/results.md"
exit "$STATUS"
