#!/usr/bin/env bash
# Re-creates the BGP test vectors in control/tests/data/bgp/: what GoBGP 3.x, ExaBGP 4.2 and
# FRR 8.4 send to a peer, captured by tests/interop/bgp_capture.py. Each implementation runs
# in turn in a network namespace joined by a veth pair to the capturing speaker's:
#
#   bgpcap-l 10.99.0.1 (bgp_capture.py, AS 65000)  <---->  bgpcap-p 10.99.0.2 (peer)
#
# Needs root. Installs the peers from Debian if missing. Stops every daemon it started by
# PID and removes its namespaces on exit. Usage: tests/interop/bgp_capture.sh [gobgp|exabgp|frr]...
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/control/tests/data/bgp}
WORK=$(mktemp -d /tmp/bgp-capture.XXXXXX)
NS_L=bgpcap-l
NS_P=bgpcap-p
PY=/usr/bin/python3
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$NS_L" 2>/dev/null || true
    ip netns del "$NS_P" 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "work files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

need() {
    command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || apt-get install -y "$2" >/dev/null
}
need gobgpd gobgpd
need exabgp exabgp
need /usr/lib/frr/bgpd frr

ip netns del "$NS_L" 2>/dev/null || true
ip netns del "$NS_P" 2>/dev/null || true
ip netns add "$NS_L"
ip netns add "$NS_P"
ip link add bgpcap0 type veth peer name bgpcap1
ip link set bgpcap0 netns "$NS_L"
ip link set bgpcap1 netns "$NS_P"
ip -n "$NS_L" addr add 10.99.0.1/24 dev bgpcap0
ip -n "$NS_P" addr add 10.99.0.2/24 dev bgpcap1
for ns in "$NS_L" "$NS_P"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_L" link set bgpcap0 up
ip -n "$NS_P" link set bgpcap1 up
mkdir -p "$OUT"

# start_listener NAME: the capturing speaker, writing $OUT/NAME.hex.
start_listener() {
    rm -f "$OUT/$1.hex" # so that wait_for never reads the last run's capture
    ip netns exec "$NS_L" "$PY" "$HERE/bgp_capture.py" --listen 10.99.0.1 \
        --peer-name "$1" --out "$OUT/$1.hex" --duration 90 &
    LISTENER=$!
    PIDS+=("$LISTENER")
    sleep 0.5
}

# wait_for NAME PATTERN [SECONDS]: until the capture holds a comment line matching PATTERN.
wait_for() {
    local i
    for ((i = 0; i < ${3:-30} * 10; i++)); do
        grep -q "$2" "$OUT/$1.hex" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$1: no '$2' in the capture" >&2
    return 1
}

# stop PID: ends one daemon this script started.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

capture_gobgp() {
    cat >"$WORK/gobgpd.toml" <<'EOF'
[global.config]
  as = 4200000001
  router-id = "10.99.0.2"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.99.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "10.99.0.2"
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l3vpn-ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l3vpn-ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
    start_listener gobgp
    ip netns exec "$NS_P" gobgpd -f "$WORK/gobgpd.toml" --api-hosts 127.0.0.1:50051 \
        --pprof-disable -l warn >"$WORK/gobgpd.log" 2>&1 &
    local daemon=$!
    PIDS+=("$daemon")
    wait_for gobgp 'UPDATE' # its End-of-RIB markers: the initial exchange is over
    sleep 1
    local g=(ip netns exec "$NS_P" gobgp)
    # The routes are added once the session is up, so each goes out in its own UPDATE.
    "${g[@]}" global rib -a vpnv4 add 10.1.0.0/24 label 100 rd 65000:100 rt 65000:100 nexthop 10.99.0.2
    "${g[@]}" global rib -a vpnv4 add 10.1.1.0/24 label 101 rd 10.0.0.1:5 rt 10.0.0.1:5 rt 65000:100 nexthop 10.99.0.2
    # GoBGP 3.10's CLI writes an RD or RT with a 4-byte AS as type 0 with AS 65535.
    "${g[@]}" global rib -a vpnv4 add 10.1.2.0/24 label 102 rd 4200000000:7 rt 4200000000:7 nexthop 10.99.0.2
    "${g[@]}" global rib -a vpnv6 add 2001:db8:1::/48 label 200 rd 65000:200 rt 65000:200 nexthop 2001:db8::2
    "${g[@]}" global rib -a ipv4 add 10.10.0.0/24 nexthop 10.99.0.2 med 50 community 65000:1 large-community 65000:1:2
    "${g[@]}" global rib -a ipv6 add 2001:db8:10::/48 nexthop 2001:db8::2
    sleep 2
    "${g[@]}" global rib -a vpnv4 del 10.1.0.0/24 label 100 rd 65000:100
    "${g[@]}" global rib -a ipv4 del 10.10.0.0/24
    sleep 2
    "${g[@]}" neighbor 10.99.0.1 softresetin -a vpnv4
    sleep 2
    # `shutdown` (deprecated) sends the RFC 8203 communication; `disable --reason` does not.
    "${g[@]}" neighbor 10.99.0.1 shutdown --reason "maintenance window" 2>/dev/null
    wait_for gobgp 'NOTIFICATION'
    stop "$LISTENER"
    stop "$daemon"
}

capture_exabgp() {
    # Attribute 23: a VXLAN tunnel (type 8) with a Tunnel Egress Endpoint sub-TLV (6) for
    # 10.99.0.2, as a generic attribute (ExaBGP 4.2 has no syntax of its own for it).
    cat >"$WORK/exabgp.conf" <<'EOF'
neighbor 10.99.0.1 {
    router-id 10.99.0.2;
    local-address 10.99.0.2;
    local-as 65000;
    peer-as 65000;
    hold-time 90;
    capability {
        graceful-restart 120;
        route-refresh;
    }
    family {
        ipv4 unicast;
        ipv4 mpls-vpn;
        ipv6 mpls-vpn;
    }
    static {
        route 10.2.0.0/24 {
            rd 65000:200;
            label 200;
            next-hop 10.99.0.2;
            local-preference 200;
            extended-community [ target:65000:200 target:10.0.0.2:7 ];
            originator-id 10.99.0.9;
            cluster-list [ 10.99.0.1 10.99.0.3 ];
            attribute [ 0x17 0xc0 0x0008000c060a0000000000010a630002 ];
        }
        route 10.2.1.0/24 rd 10.0.0.2:7 label 201 next-hop 10.99.0.2 extended-community [ target:65000:200 ];
        route 10.2.2.0/24 rd 4200000000:7 label 203 next-hop 10.99.0.2 extended-community [ target:4200000000:7 ];
        route 2001:db8:2::/48 rd 65000:202 label 202 next-hop 2001:db8::2 extended-community [ target:65000:202 ];
        route 10.20.0.0/24 next-hop 10.99.0.2 med 10 community [ 65000:2 no-export ] as-path [ 65000 65001 ];
    }
}
EOF
    start_listener exabgp
    ip netns exec "$NS_P" env exabgp.daemon.user=root exabgp.daemon.drop=false \
        exabgp.api.cli=false exabgp.log.destination=stdout \
        exabgp "$WORK/exabgp.conf" >"$WORK/exabgp.log" 2>&1 &
    local daemon=$!
    PIDS+=("$daemon")
    wait_for exabgp 'KEEPALIVE'
    sleep 5
    stop "$daemon" # ExaBGP 4.2 closes the connection without a NOTIFICATION
    stop "$LISTENER"
}

capture_frr() {
    local d=$WORK/frr
    mkdir -p "$d"
    cat >"$d/bgpd.conf" <<'EOF'
frr defaults traditional
hostname capture
! Route maps before the network statements that use them, or FRR ignores those.
route-map RT300 permit 10
 set extcommunity rt 65000:300
 set local-preference 300
route-map RT302 permit 10
 set extcommunity rt 65000:302
router bgp 65000
 bgp router-id 10.99.0.2
 no bgp default ipv4-unicast
 no bgp network import-check
 bgp graceful-restart
 neighbor 10.99.0.1 remote-as 65000
 address-family ipv4 unicast
  neighbor 10.99.0.1 activate
  network 10.30.0.0/24
 exit-address-family
 address-family ipv4 vpn
  neighbor 10.99.0.1 activate
  network 10.3.0.0/24 rd 65000:300 label 300 route-map RT300
  network 10.3.1.0/24 rd 10.0.0.3:9 label 301
 exit-address-family
 address-family ipv6 vpn
  neighbor 10.99.0.1 activate
  network 2001:db8:3::/48 rd 65000:302 label 302 route-map RT302
 exit-address-family
EOF
    chown -R frr:frr "$d" 2>/dev/null || true
    start_listener frr
    ip netns exec "$NS_P" /usr/lib/frr/bgpd -S -Z -f "$d/bgpd.conf" -i "$d/bgpd.pid" \
        -z "$d/zserv.api" --vty_socket "$d" -A 127.0.0.1 -P 0 >"$WORK/frr.log" 2>&1 &
    local daemon=$!
    PIDS+=("$daemon")
    wait_for frr 'KEEPALIVE'
    sleep 4
    local v=(ip netns exec "$NS_P" vtysh --vty_socket "$d")
    "${v[@]}" -c 'configure terminal' -c 'router bgp 65000' -c 'address-family ipv4 vpn' \
        -c 'no network 10.3.1.0/24 rd 10.0.0.3:9 label 301'
    sleep 2
    "${v[@]}" -c 'clear bgp ipv4 vpn 10.99.0.1 soft in'
    sleep 2
    "${v[@]}" -c 'configure terminal' -c 'router bgp 65000' \
        -c 'neighbor 10.99.0.1 shutdown message maintenance window'
    wait_for frr 'NOTIFICATION'
    stop "$LISTENER"
    stop "$daemon"
}

for peer in "${@:-gobgp exabgp frr}"; do
    for p in $peer; do
        echo "== $p"
        "capture_$p"
        grep -c '^#' "$OUT/$p.hex" | sed "s/^/$p: messages: /"
    done
done
