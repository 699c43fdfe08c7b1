#!/usr/bin/env bash
# Control-plane scale (issue 5): one edge (sdwand with its data plane) learns SITES simulated
# sites (PREFIXES client prefixes each, one X25519 key per site, one tenant) through a route
# reflector (FRR 8.4's bgpd, or sdwand with RR=sdwand). Reports, as JSON on the last line:
# the time from the simulator's first UPDATE to the edge having every route, every site with
# its SAs, and the data plane's tunnels; and the edge's memory (VmRSS) before and after.
# Run as root; a run on purpose (not part of scripts/test.sh):
#
#   perf/bgp_scale.sh [SITES [PREFIXES]]        RR=frr|sdwand (default frr)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SITES=${1:-1000}
PREFIXES=${2:-10}
RR=${RR:-frr}
P=${LAB_PREFIX:-sds}
DIR=${LAB_DIR:-/run/sdwan-bgp-scale}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SDWAND=$TARGET/release/sdwand
CLI=$TARGET/release/sdwan-cli
SIM=$TARGET/release/sdwan-bgp-sim
PASSWORD=scale-secret

log() { echo "bgp_scale: $*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
cli() { "$CLI" --socket "$DIR/$1.sock" "${@:2}"; }

[[ $(id -u) -eq 0 ]] || { log "must run as root"; exit 2; }
cargo build --release -p sdwand -p sdwan-cli -p sdwan-perf >&2

cleanup() {
    local f
    for f in "$DIR"/*.pid "$DIR"/frr/bgpd.pid; do
        if [[ -s $f ]]; then kill "$(<"$f")" 2>/dev/null || true; fi
    done
    sleep 1
    for f in "$DIR"/*.pid "$DIR"/frr/bgpd.pid; do
        if [[ -s $f ]]; then kill -KILL "$(<"$f")" 2>/dev/null || true; fi
    done
    for n in ctl a lan wan; do ip netns del "$P-$n" 2>/dev/null || true; done
    true
}
cleanup
rm -rf "$DIR"
mkdir -p "$DIR/frr"
trap cleanup EXIT

for n in ctl a lan wan; do
    ip netns add "$P-$n"
    nsx "$P-$n" ip link set lo up
    nsx "$P-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add ctl0 netns "$P-a" type veth peer name c-a netns "$P-ctl"
ip -n "$P-a" addr add 10.254.0.1/24 dev ctl0
ip -n "$P-a" link set ctl0 up
ip -n "$P-ctl" addr add 10.254.0.100/24 dev c-a
ip -n "$P-ctl" addr add 10.254.0.201/24 dev c-a
ip -n "$P-ctl" link set c-a up
for pair in "lan0 $P-lan" "inet $P-wan"; do
    read -r ifc ns <<<"$pair"
    ip link add "$ifc" netns "$P-a" type veth peer name peer netns "$ns"
    for x in "$P-a:$ifc" "$ns:peer"; do
        nsx "${x%%:*}" ethtool -K "${x#*:}" tx off tso off gso off gro off >/dev/null
        ip -n "${x%%:*}" link set "${x#*:}" up
    done
done
echo -n "$PASSWORD" >"$DIR/bgp.password"

cat >"$DIR/a.yaml" <<EOF
node: { name: scale-a, loopback: 10.255.0.1 }
dpdk:
  eal_args: ["--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--log-level", "*:warning"]
  mbufs: 8191
workers: { cores: [1], control_core: 0, idle_sleep_max_us: 200 }
management: { socket: $DIR/a.sock }
ports:
  - { name: lan0, device: "net_af_packet0,iface=lan0", role: lan, addresses: [10.1.0.1/24] }
  - { name: inet, device: "net_af_packet1,iface=inet", role: wan, transport: internet, addresses: [10.100.255.254/16] }
tenants:
  - { name: blue, vni: 1001, lan_ports: [lan0] }
bgp:
  asn: 65000
  hold_time_s: 90
  connect_retry_s: 1
  transports: { internet: 1 }
  neighbors:
    - { address: 10.254.0.100, password_file: bgp.password }
path_monitor: { interval_ms: 100, idle_interval_ms: 10000 }
EOF

if [[ $RR == frr ]]; then
    cat >"$DIR/frr/bgpd.conf" <<EOF
frr defaults traditional
hostname rr
log file $DIR/frr/bgpd.log
router bgp 65000
 bgp router-id 10.254.0.100
 bgp cluster-id 10.254.0.100
 no bgp default ipv4-unicast
 neighbor EDGES peer-group
 neighbor EDGES remote-as 65000
 neighbor EDGES password $PASSWORD
 neighbor 10.254.0.1 peer-group EDGES
 neighbor 10.254.0.201 peer-group EDGES
 address-family ipv4 vpn
  neighbor EDGES activate
  neighbor EDGES route-reflector-client
 exit-address-family
EOF
    chown -R frr:frr "$DIR/frr"
    nsx "$P-ctl" /usr/lib/frr/bgpd -d -S -Z -f "$DIR/frr/bgpd.conf" -i "$DIR/frr/bgpd.pid" \
        -z "$DIR/frr/zserv.api" --vty_socket "$DIR/frr" -A 127.0.0.1 -P 0
else
    cat >"$DIR/rr.yaml" <<EOF
node: { name: scale-rr }
management: { socket: $DIR/rr.sock }
ports: []
tenants: [ { name: blue, vni: 1001 } ]
bgp:
  asn: 65000
  router_id: 10.254.0.100
  listen: { address: 0.0.0.0 }
  route_reflector: {}
  transports: {}
  groups: [ { name: edges, route_reflector_client: true, password_file: bgp.password } ]
  neighbors:
    - { address: 10.254.0.1, group: edges, passive: true }
    - { address: 10.254.0.201, group: edges, passive: true }
EOF
    setsid ip netns exec "$P-ctl" "$SDWAND" --config "$DIR/rr.yaml" >"$DIR/rr.log" 2>&1 </dev/null &
    echo $! >"$DIR/rr.pid"
fi

setsid ip netns exec "$P-a" "$SDWAND" --config "$DIR/a.yaml" >"$DIR/a.log" 2>&1 </dev/null &
echo $! >"$DIR/a.pid"
pid=$(<"$DIR/a.pid")
for ((i = 0; i < 200; i++)); do
    [[ $(cli a show bgp summary --json 2>/dev/null | jq -r '.neighbors[0].state') == Established ]] && break
    sleep 0.1
done
sleep 2
rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }
rss_before=$(rss)
routes_expected=$((SITES * (PREFIXES + 1)))
log "edge up (VmRSS ${rss_before} kB); $SITES sites x $PREFIXES prefixes = $routes_expected routes via $RR"

t0=$(date +%s.%N)
setsid ip netns exec "$P-ctl" "$SIM" --peer 10.254.0.100 --local 10.254.0.201 \
    --sites "$SITES" --prefixes "$PREFIXES" --password-file "$DIR/bgp.password" --seconds 600 \
    >"$DIR/sim.json" 2>"$DIR/sim.log" </dev/null &
echo $! >"$DIR/sim.pid"

routes_at="" sites_at="" tunnels_at=""
for ((i = 0; i < 3000; i++)); do
    now=$(date +%s.%N)
    if [[ -z $routes_at ]]; then
        n=$(cli a show bgp summary --json | jq '.neighbors[0].pfx_rcd')
        [[ $n -ge $routes_expected ]] && routes_at=$now
    fi
    if [[ -n $routes_at && -z $sites_at ]]; then
        n=$(cli a show sites --json | jq '[.[] | select((.sas | length) > 0)] | length')
        [[ $n -ge $SITES ]] && sites_at=$now
    fi
    if [[ -n $sites_at && -z $tunnels_at ]]; then
        n=$(cli a show routes --json | jq '[.[] | select(.source == "bgp")] | length')
        [[ $n -ge $((SITES * PREFIXES)) ]] && tunnels_at=$now
    fi
    [[ -n $tunnels_at ]] && break
    sleep 0.2
done
[[ -n $tunnels_at ]] || { log "did not converge in 600 s"; tail "$DIR/a.log" >&2; exit 1; }
sleep 2
rss_after=$(rss)
sas=$(cli a show sa --json | jq 'length')
secs() { awk -v a="$1" -v b="$t0" 'BEGIN { print a - b }'; }
line=$(printf '{"rr": "%s", "sites": %d, "prefixes_per_site": %d, "routes": %d, "bgp_routes_s": %.2f, "sites_keyed_s": %.2f, "data_plane_routes_s": %.2f, "sa_entries": %d, "vmrss_before_kb": %d, "vmrss_after_kb": %d}' \
    "$RR" "$SITES" "$PREFIXES" "$routes_expected" "$(secs "$routes_at")" "$(secs "$sites_at")" \
    "$(secs "$tunnels_at")" "$sas" "$rss_before" "$rss_after")
grep -h "overlay:" "$DIR/a.log" | tail -3 >&2
echo "$line"
