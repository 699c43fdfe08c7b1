#!/usr/bin/env bash
# The full path: sdwan-pktgen -> site A -> (ESP in VXLAN over N WAN circuits) -> site B ->
# sdwan-pktgen. Two sdwand processes and the generator, joined by net_memif (shared memory
# between DPDK processes); every packet carries a sequence number and a timestamp, so the
# generator sees loss, reordering and one-way latency through both sites.
#
#   perf/fullpath.sh [--sizes 64,imix,1420] [--flows N] [--circuits N] [--trial S]
#                    [--voice] [--at KPPS] [--out ROWS.jsonl]
#
# --at KPPS: instead of the search, one trial per size at that rate, whose pktgen report is
# printed (to look at one operating point).
# Per size:
#   1. saturation: the generator sends as fast as it can for one trial; what arrives per
#      second is the saturation rate (and the loss at that overload is printed);
#   2. no-drop rate (RFC 2544 throughput): a binary search below it for the highest rate
#      with zero loss (4 trials);
#   3. confirmation: a longer trial at that rate, whose loss and latency percentiles are the
#      row's (if it loses packets, 3% lower, at most three tries; all are named in the row);
#   4. the same at half that rate (latency without queues filling up).
# With --voice (the latency-under-load scenario): IMIX bulk (or the first size, if IMIX is not
# in --sizes) with 1% "voice" packets (200 B, DSCP EF, UDP 5004), once at the no-drop rate
# and once with the bulk saturating the worker.
#
# Rows (report::Row, JSON Lines) go to --out (default stdout); progress to stderr.
# Cores: on a 2-core machine the generator shares core 0 with site B's worker (site A's
# worker has core 1) and every process sleeps when idle; with 4 or more cores each gets its
# own. Needs root (DPDK), jq, and the release binaries (built here).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=64,imix,1420
FLOWS=1000
CIRCUITS=1
TRIAL=2
VOICE=0
AT=
# memif rings of 2^12 slots (like a NIC's 4096 descriptors): a 2-core host's scheduling stalls
# of a few milliseconds fit in them. Workers sleep at most 20 us when idle.
RSIZE=${RSIZE:-12}
IDLE_US=${IDLE_US:-20}
OUT=/dev/stdout
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --sizes) SIZES=$2; shift 2 ;;
        --flows) FLOWS=$2; shift 2 ;;
        --circuits) CIRCUITS=$2; shift 2 ;;
        --trial) TRIAL=$2; shift 2 ;;
        --voice) VOICE=1; shift ;;
        --at) AT=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "fullpath.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $CIRCUITS in [1-9] | 1[0-6]) ;; *) echo "fullpath.sh: --circuits must be 1..16" >&2; exit 2 ;; esac

log() { echo "fullpath: $*" >&2; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p sdwand -p sdwan-cli -p sdwan-perf >&2)
fi
BIN=$ROOT/target/release
CLI=$BIN/sdwan-cli

T=$(mktemp -d /tmp/sdwan-fullpath.XXXXXX)
PIDS=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "/var/run/dpdk/fp-a-$$" "/var/run/dpdk/fp-b-$$" "/var/run/dpdk/fp-g-$$"
    if [ "${KEEP:-0}" = 1 ] || ls "$T"/core* >/dev/null 2>&1; then
        log "kept $T (logs, configurations, core dumps)"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

NCPU=$(nproc)
if [ "$NCPU" -ge 4 ]; then
    D_GEN=0,1 D_A=2 D_B=3
else
    D_GEN=0 D_A=1 D_B=0
fi
# The environment may place them otherwise (GEN_CORES=0 A_WORKER=1 B_WORKER=1).
GEN_CORES=${GEN_CORES:-$D_GEN} A_WORKER=${A_WORKER:-$D_A} B_WORKER=${B_WORKER:-$D_B}
# Control threads (mostly asleep) on a core that is not their own worker's.
A_CONTROL=$((A_WORKER == 0 ? 1 : 0)) B_CONTROL=$((B_WORKER == 0 ? 1 : 0))

# Keys for this run only (the lab's key files are for the lab).
head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/a-to-b.hex"
head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/b-to-a.hex"

# site_config NAME ME PEER WORKER CONTROL LOCAL_NET REMOTE_NET ROLE
site_config() {
    local name=$1 me=$2 peer=$3 worker=$4 control=$5 lan=$6 remote=$7 role=$8 c
    cat <<EOF
node: { name: $name, loopback: 10.255.0.$me }
dpdk:
  # net_memif needs DPDK's multi-process channel: --file-prefix, not --no-shconf.
  eal_args: ["--no-huge", "-m", "1024", "--no-pci", "--file-prefix", "fp-$name-$$"]
  mbufs: 32767
workers: { cores: [$worker], control_core: $control, idle_sleep_max_us: $IDLE_US }
management: { socket: $T/$name.sock }
ports:
  - { name: lan0, device: "net_memif0,role=server,socket=$T/$name-lan.sock,id=0,rsize=$RSIZE", role: lan, addresses: [$lan] }
EOF
    for c in $(seq 1 "$CIRCUITS"); do
        echo "  - { name: wan$c, device: \"net_memif$c,role=$role,socket=$T/wan$c.sock,id=0,rsize=$RSIZE\", role: wan, transport: internet, mtu: 9000, addresses: [198.18.$c.$me/24] }"
    done
    cat <<EOF
tenants:
  - name: blue
    vni: 1001
    lan_ports: [lan0]
    routes:
      - { prefix: $remote, peer: site-$peer }
EOF
    if [ "$name" = b ]; then
        # The receiving host (the generator's rx port, 10.3.0.2) stands for the whole of
        # 10.2.0.0/16, so site B resolves one neighbor, not one per flow.
        echo "      - { prefix: 10.2.0.0/16, via: 10.3.0.2, port: lan0 }"
    fi
    cat <<EOF
peers:
  - name: site-$peer
    loopback: 10.255.0.$((3 - me))
    circuits:
EOF
    for c in $(seq 1 "$CIRCUITS"); do
        echo "      - { port: wan$c, address: 198.18.$c.$((3 - me)), transport: internet }"
    done
    local out=a-to-b in=b-to-a
    [ "$name" = b ] && out=b-to-a in=a-to-b
    cat <<EOF
    sas:
      - tenant: blue
        suite: aes128gcm16
        out: { spi: 0x0000$((me))000, key_file: $T/$out.hex }
        in: { spi: 0x0000$((3 - me))000, key_file: $T/$in.hex }
EOF
}
site_config a 1 b "$A_WORKER" "$A_CONTROL" 10.1.0.1/24 10.2.0.0/16 server >"$T/a.yaml"
site_config b 2 a "$B_WORKER" "$B_CONTROL" 10.3.0.1/24 10.1.0.0/16 client >"$T/b.yaml"

launch_site() {
    # A crash leaves a core dump in $T (kernel.core_pattern permitting), and $T is kept.
    (ulimit -c unlimited 2>/dev/null; cd "$T" && exec "$BIN/sdwand" --config "$T/$1.yaml") \
        >"$T/$1.log" 2>&1 &
    PIDS+=($!)
}
# wait_site NAME INDEX : up means answering on its management socket (bound before the ports
# start; the answers come once they have).
wait_site() {
    for _ in $(seq 1 150); do
        [ -S "$T/$1.sock" ] && "$CLI" --socket "$T/$1.sock" show interfaces >/dev/null 2>&1 &&
            return 0
        kill -0 "${PIDS[$2]}" 2>/dev/null || break
        sleep 0.1
    done
    log "site $1 did not start:"
    cat "$T/$1.log" >&2
    exit 1
}
# sites_alive WHEN : stops the run, with both sites' logs, if either has exited.
sites_alive() {
    local p
    for p in "${PIDS[@]}"; do
        if ! kill -0 "$p" 2>/dev/null; then
            log "a site (pid $p) exited $1; the logs:"
            tail -n 30 "$T/a.log" "$T/b.log" >&2
            exit 1
        fi
    done
}
# Site B, whose memif ports are clients, starts first: its ports wait for site A's servers
# (sdwand waits up to 30 s for a memif server), so every run also checks that.
launch_site b
sleep 1
launch_site a
wait_site a 1
wait_site b 0
# Every circuit's path is up at both ends: the sites reach each other over memif.
for _ in $(seq 1 100); do
    sites_alive "while the paths came up"
    up_a=$("$CLI" --socket "$T/a.sock" show paths --json 2>/dev/null |
        jq '[.[] | select(.state == "up")] | length' || echo 0)
    up_b=$("$CLI" --socket "$T/b.sock" show paths --json 2>/dev/null |
        jq '[.[] | select(.state == "up")] | length' || echo 0)
    [ "$up_a" -ge "$CIRCUITS" ] && [ "$up_b" -ge "$CIRCUITS" ] && break
    sleep 0.2
done
if [ "$up_a" -lt "$CIRCUITS" ] || [ "$up_b" -lt "$CIRCUITS" ]; then
    log "paths did not come up (A: $up_a, B: $up_b of $CIRCUITS)"
    "$CLI" --socket "$T/a.sock" show paths >&2 || true
    exit 1
fi
log "sites A and B up, $CIRCUITS circuit(s) each, generator on core(s) $GEN_CORES, workers A $A_WORKER, B $B_WORKER"

# pktgen SIZE RATE SECONDS [ARGS...] : one trial; its JSON report on stdout.
pktgen() {
    local size=$1 rate=$2 secs=$3
    shift 3
    "$BIN/sdwan-pktgen" --file-prefix "fp-g-$$" --cores "$GEN_CORES" \
        --tx "net_memif0,role=client,socket=$T/a-lan.sock,id=0,rsize=$RSIZE" \
        --rx "net_memif1,role=client,socket=$T/b-lan.sock,id=0,rsize=$RSIZE" \
        --src-ip 10.1.0.2 --gateway 10.1.0.1 --rx-ip 10.3.0.2 \
        --dst 10.2.0.0/16 --flows "$FLOWS" --size "$size" --rate "$rate" \
        --duration "$secs" --warmup 0.5 "$@" --json 2>>"$T/pktgen.log"
}

# shellcheck source=perf/steal.sh
. "$ROOT/perf/steal.sh"
# trial SIZE RATE SECONDS [ARGS...] : one pktgen trial; sets TRIAL_JSON (its report) and
# STEAL (the percentage of CPU time the hypervisor gave to others meanwhile). A trial that lost
# packets while more than 2% of the CPU was stolen measured the host, not the appliance: it is
# repeated, at most twice, and STEAL names every try.
trial() {
    local before after try steal
    STEAL=""
    for try in 1 2 3; do
        before=$(cpu_ticks)
        TRIAL_JSON=$(pktgen "$@") || true
        after=$(cpu_ticks)
        sites_alive "during the trial"
        if [ -z "$TRIAL_JSON" ]; then
            log "sdwan-pktgen failed:"
            tail -n 5 "$T/pktgen.log" >&2
            exit 1
        fi
        steal=$(steal_pct "$before" "$after")
        STEAL="$STEAL${STEAL:+, then }$steal"
        if [ "$2" = max ] || [ "$(lost_of "$TRIAL_JSON")" -eq 0 ] ||
            awk -v s="$steal" 'BEGIN { exit !(s <= 2.0) }' || [ "$try" -eq 3 ]; then
            break
        fi
        log "$1 at $2: lost $(lost_of "$TRIAL_JSON") while the host stole $steal% of the CPU: repeating"
    done
}

# row SCENARIO SIZE JSON METHOD : the matrix row of a pktgen report (its bulk class, or the
# class named by CLASS).
row() {
    jq -c --arg s "$1" --arg size "$2" --arg m "$4" --argjson flows "$FLOWS" \
        --argjson circuits "$CIRCUITS" --arg class "${CLASS:-bulk}" '
        (.classes[] | select(.name == $class)) as $c
        | {scenario: $s, size: $size, flows: $flows, circuits: $circuits, workers: 1,
           mpps: .rx.mpps,
           gbit_s: .rx.gbit_s,
           latency_us: {p50: $c.latency_us.p50, p99: $c.latency_us.p99, p999: $c.latency_us.p999},
           loss_pct: (if $c.sent > 0 then 100 * $c.lost / $c.sent else 0 end),
           method: $m}' <<<"$3" >>"$OUT"
}

kpps_of() { jq -r '(.rx.mpps * 1000) | floor' <<<"$1"; }
lost_of() { jq -r '.lost' <<<"$1"; }

IFS=, read -r -a SIZE_LIST <<<"$SIZES"
FAILED=0
if [ -n "$AT" ]; then
    for size in "${SIZE_LIST[@]}"; do
        pktgen "$size" "${AT}kpps" "$TRIAL" | jq -c . >&2
    done
    for site in a b; do
        log "site $site: show stats / show interfaces"
        "$CLI" --socket "$T/$site.sock" show stats >&2
        "$CLI" --socket "$T/$site.sock" show interfaces >&2
    done
    exit 0
fi
for size in "${SIZE_LIST[@]}"; do
    trial "$size" max "$TRIAL"
    sat=$TRIAL_JSON
    sat_kpps=$(kpps_of "$sat")
    log "$size: saturation $sat_kpps kpps delivered at overload (lost $(jq -r .loss_pct <<<"$sat")% of $(jq -r .tx.packets <<<"$sat") sent)"
    if [ "$sat_kpps" -le 0 ]; then
        log "$size: nothing arrived; skipping this size. Site A's and B's counters:"
        for site in a b; do "$CLI" --socket "$T/$site.sock" show stats >&2 || true; done
        tail -n 5 "$T/pktgen.log" >&2
        FAILED=1
        continue
    fi
    CLASS=bulk row "full path, saturated" "$size" "$sat" \
        "pktgen over memif, sending as fast as it can for $TRIAL s (overload); host steal $STEAL%"
    lo=0 hi=$sat_kpps rate=$((sat_kpps * 9 / 10))
    for _ in 1 2 3 4; do
        [ "$rate" -ge 1 ] || rate=1
        trial "$size" "${rate}kpps" "$TRIAL"
        t=$TRIAL_JSON
        if [ "$(lost_of "$t")" -eq 0 ]; then lo=$rate; else hi=$rate; fi
        log "$size: ${rate} kpps -> lost $(lost_of "$t")"
        rate=$(((lo + hi) / 2))
    done
    ndr=$lo
    if [ "$ndr" -le 0 ]; then
        ndr=$((sat_kpps / 10))
        log "$size: no zero-loss trial; confirming at $ndr kpps"
    fi
    # The no-drop rate must also hold for the longer trial: if it does not, 3% lower, up to
    # three times (every try is logged and named in the row).
    tries=""
    for try in 1 2 3; do
        trial "$size" "${ndr}kpps" $((TRIAL * 2 + 1))
        conf=$TRIAL_JSON
        log "$size: confirming at $ndr kpps: lost $(lost_of "$conf"), p99 $(jq -r '.classes[0].latency_us.p99' <<<"$conf") us, host steal $STEAL%"
        tries="$tries${tries:+, }$ndr kpps lost $(lost_of "$conf") (steal $STEAL%)"
        [ "$(lost_of "$conf")" -eq 0 ] || [ "$try" -eq 3 ] && break
        ndr=$((ndr * 97 / 100))
    done
    CLASS=bulk row "full path" "$size" "$conf" \
        "pktgen over memif, no-drop rate: binary search below the saturation ($sat_kpps kpps), confirmed for $((TRIAL * 2 + 1)) s: $tries"
    half=$((ndr / 2 > 0 ? ndr / 2 : 1))
    trial "$size" "${half}kpps" $((TRIAL * 2 + 1))
    t=$TRIAL_JSON
    log "$size: at half that, $half kpps: lost $(lost_of "$t"), p99 $(jq -r '.classes[0].latency_us.p99' <<<"$t") us, host steal $STEAL%"
    CLASS=bulk row "full path, half load" "$size" "$t" \
        "pktgen over memif at half the no-drop rate ($half kpps) for $((TRIAL * 2 + 1)) s; host steal $STEAL%"
    echo "$ndr" >"$T/ndr-$size"
done

if [ "$VOICE" = 1 ]; then
    # IMIX bulk when it was measured, else the first size.
    vsize=${SIZE_LIST[0]}
    for size in "${SIZE_LIST[@]}"; do [ "$size" = imix ] && vsize=imix; done
    ndr=$(cat "$T/ndr-$vsize" 2>/dev/null || echo 10)
    trial "$vsize" "${ndr}kpps" $((TRIAL * 2 + 1)) --voice 1
    v=$TRIAL_JSON
    log "voice at the no-drop rate ($ndr kpps): p99 $(jq -r '.classes[] | select(.name=="voice") | .latency_us.p99' <<<"$v") us"
    CLASS=voice row "voice (1%), bulk at no-drop rate" "$vsize" "$v" \
        "pktgen over memif: 1% of packets 200 B DSCP EF UDP 5004; bulk at $ndr kpps; host steal $STEAL%"
    trial "$vsize" max $((TRIAL * 2 + 1)) --voice 1
    v=$TRIAL_JSON
    log "voice with the worker saturated: p99 $(jq -r '.classes[] | select(.name=="voice") | .latency_us.p99' <<<"$v") us, voice lost $(jq -r '.classes[] | select(.name=="voice") | .lost' <<<"$v")"
    CLASS=voice row "voice (1%), bulk saturating" "$vsize" "$v" \
        "pktgen over memif: 1% of packets 200 B DSCP EF UDP 5004; bulk sent as fast as possible; host steal $STEAL%"
fi
exit "$FAILED"
