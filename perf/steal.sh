# shellcheck shell=bash
# Sourced by perf/run.sh and perf/fullpath.sh: the CPU time the hypervisor gave to other
# guests ("steal", field 9 of /proc/stat's cpu line). A stalled vCPU shows as loss and latency
# that are the host's, not the appliance's, so every measurement records it.

# cpu_ticks : prints "STEAL TOTAL", in ticks since boot.
cpu_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat; }

# steal_pct BEFORE AFTER : the percentage of CPU time stolen between two cpu_ticks readings.
steal_pct() {
    awk -v b="$1" -v a="$2" 'BEGIN {
        split(b, x, " "); split(a, y, " "); d = y[2] - x[2];
        printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
