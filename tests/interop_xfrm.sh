#!/usr/bin/env bash
# Interop test of sdwand's plain RFC 4303 tunnel mode (peer type `ipsec`: AES-GCM ESP directly in
# IP, or in UDP 4500 per RFC 3948) against the Linux kernel's XFRM, which runs in a
# user-mode-linux guest (the host kernel has no ESP; see tests/interop/uml.sh). Run as root.
#
#   sdwx-host                sdwx-gw (sdwand)                         root namespace   UML guest (kernel XFRM)
#  ┌──────────┐           ┌──────────────────────┐                                   ┌─────────────────────────┐
#  │      lan ├───────────┤ lan0            wan0 │ umlv1 ══════════════ umlv0 ~~~~~~~~│ vec0 (raw transport)    │
#  └──────────┘           └──────────────────────┘                                   │ dummy0 172.16.2.1/24    │
#   10.1.0.2/24 gw .1      lan0 10.1.0.1/24  wan0 198.51.100.1/24                     │ vec0 198.51.100.2/24    │
#                                                                                    └─────────────────────────┘
# The tunnel 198.51.100.1 <-> 198.51.100.2 protects 10.1.0.0/24 <-> 172.16.2.0/24. For each case
# (default: plain ESP; ESP in UDP 4500; plain ESP with ESN) sdwand gets a fresh configuration and
# fresh random keys, the guest sets up the mirror SAs and policies with `ip xfrm` and then:
# pings 10.1.0.2 from 172.16.2.1, sends 20000 bytes over TCP to a listener in sdwx-host; while it
# waits, sdwx-host pings 172.16.2.1 and sends 20000 bytes over TCP to a listener in the guest.
# Checks: every ping and TCP exchange; the kernel's SA counters (packets both ways, no failed
# ICVs, no replay drops); tcpdump on umlv0: only ESP (proto 50) or only UDP 4500 with both ports
# 4500, nothing in clear; tshark decrypts both directions and verifies the ICVs (not with ESN:
# Wireshark 4.0 has no ESN); `sdwan-cli show sa --json` lists the SPIs with packets.
# Prints PASS/FAIL per check and ends with `N passed, M failed`; exits non-zero on any failure;
# always removes what it made (KEEP=1 keeps the work folder with captures, configs and logs).
#
#   tests/interop_xfrm.sh
#     env: SDWAND (default ${CARGO_TARGET_DIR:-target}/release/sdwand), CLI (…/sdwan-cli),
#          CASES ("esp:0 udp:0 esp:1": ENCAPSULATION:ESN[:aes128gcm16|aes256gcm16]), KEEP=1
#
# Needs release builds of sdwand and sdwan-cli (it does not build them). Installs user-mode-linux,
# kmod, tcpdump, tshark when missing. About 15 s per case after the first installation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/interop/uml.sh disable=SC1091 # (scripts/test.sh runs shellcheck without -x)
source "$ROOT/tests/interop/uml.sh"

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SDWAND=${SDWAND:-$TARGET/release/sdwand}
CLI=${CLI:-${SDWAN_CLI:-$TARGET/release/sdwan-cli}}
CASES=${CASES:-"esp:0 udp:0 esp:1"}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-120}

P=sdwx
NS_HOST=$P-host
NS_GW=$P-gw
RUN_DIR=/run/sdwx
SOCK=$RUN_DIR/gw.sock
UML_IF=umlv0 # root namespace, the guest's vec0 attaches here
GW_WAN_IF=umlv1 # in sdwx-gw: sdwand's wan0
GUEST_MAC=02:00:00:77:00:02

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
check() { # check "description" COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
info() { echo "      $*"; }
indent() { sed 's/^/      /'; }
die() { echo "tests/interop_xfrm.sh: $*" >&2; exit 2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

SDWAND_PID=
TCPDUMP_PID=
LISTENER_PID=
CASE_DIR=

# Stop what one case started: sdwand (SIGTERM, then SIGKILL after 10 s), tcpdump, the listener.
stop_case_procs() {
    local i
    if [[ -n $SDWAND_PID ]]; then
        kill -TERM "$SDWAND_PID" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$SDWAND_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SDWAND_PID" 2>/dev/null; then
            info "sdwand (pid $SDWAND_PID) did not exit within 10 s of SIGTERM: SIGKILL"
            kill -KILL "$SDWAND_PID" 2>/dev/null || true
        fi
        SDWAND_PID=
    fi
    if [[ -n $TCPDUMP_PID ]]; then
        kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
        TCPDUMP_PID=
    fi
    if [[ -n $LISTENER_PID ]]; then
        kill -TERM "$LISTENER_PID" 2>/dev/null || true
        wait "$LISTENER_PID" 2>/dev/null || true
        LISTENER_PID=
    fi
}

cleanup() {
    local rc=$? ns pids pid
    set +e
    if [[ $rc -ne 0 || $FAILED -gt 0 ]] && [[ -n $CASE_DIR && -f $CASE_DIR/sdwand.log ]]; then
        echo "--- last lines of $CASE_DIR/sdwand.log ---"
        tail -n 20 "$CASE_DIR/sdwand.log"
    fi
    uml_stop_all
    stop_case_procs
    for ns in "$NS_HOST" "$NS_GW"; do
        [[ -e /run/netns/$ns ]] || continue
        # Anything still running there (started by this test).
        pids=$(ip netns pids "$ns" 2>/dev/null)
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    ip link del "$UML_IF" 2>/dev/null
    rm -f "$SOCK"
    if [[ -n ${UML_WORK:-} && -d $UML_WORK ]]; then
        if [[ ${KEEP:-0} == 1 || $rc -ne 0 || $FAILED -gt 0 ]]; then
            echo "work folder kept (keys, captures, logs): $UML_WORK"
        else
            rm -rf "$UML_WORK"
        fi
    fi
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || die "run as root"
[[ -x $SDWAND ]] || die "sdwand not found at $SDWAND (cargo build --release, or set SDWAND=)"
[[ -x $CLI ]] || die "sdwan-cli not found at $CLI (cargo build --release, or set CLI=)"
for t in ip ethtool jq awk grep setsid; do
    command -v "$t" >/dev/null || die "$t missing (scripts/setup.sh)"
done

T0=$SECONDS
echo "=== set-up: packages, namespaces $NS_HOST and $NS_GW, veth $UML_IF <-> $NS_GW/$GW_WAN_IF ==="
uml_install
uml_init ""
uml_tcp_helpers
mkdir -p "$RUN_DIR"

for ns in "$NS_HOST" "$NS_GW"; do
    [[ -e /run/netns/$ns ]] && ip netns del "$ns"
done
ip link del "$UML_IF" 2>/dev/null || true
for ns in "$NS_HOST" "$NS_GW"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 >/dev/null
done
ip link add lan netns "$NS_HOST" type veth peer name lan0 netns "$NS_GW"
ip link add "$UML_IF" type veth peer name "$GW_WAN_IF" netns "$NS_GW"
# sdwand owns lan0 and umlv1 (net_af_packet): no kernel IPv6 or addresses on them, offloads off
# so it sees real frames with correct checksums (as scripts/lab.sh does for its sites).
for ifc in lan0 "$GW_WAN_IF"; do
    nsx "$NS_GW" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" >/dev/null
    nsx "$NS_GW" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null
    nsx "$NS_GW" ethtool -K "$ifc" txvlan off rxvlan off >/dev/null 2>&1 || true
    ip -n "$NS_GW" link set "$ifc" mtu 1500 up
done
nsx "$NS_HOST" ethtool -K lan tx off tso off gso off gro off >/dev/null
ip -n "$NS_HOST" link set lan mtu 1500 up
ip -n "$NS_HOST" addr add 10.1.0.2/24 dev lan
ip -n "$NS_HOST" route add default via 10.1.0.1
# The guest's side: root namespace, no address, no IPv6, checksum/TSO offloads off (else the
# guest's frames arrive with unfilled checksums and as TSO super-frames).
uml_veth_host "$UML_IF"

# The guest's script: guest.sh CASE. Reads $UML_WORK/CASE/guest.xfrm (uml_xfrm_conf).
cat >"$UML_WORK/guest.sh" <<'EOF'
C=$UML_WORK/$1
ip link set vec0 mtu 1500 up
ip addr add 198.51.100.2/24 dev vec0
ip link add dummy0 type dummy
ip link set dummy0 up
ip addr add 172.16.2.1/24 dev dummy0
ip route add 10.1.0.0/24 dev vec0 src 172.16.2.1
set -e
. "$C/guest.xfrm"
set +e
echo "--- guest: ip xfrm state / policy (keys not shown) ---"
ip xfrm state | grep -v aead
ip xfrm policy | grep -E '^src|dir'
/usr/bin/python3 "$UML_WORK/tcp_echo.py" 172.16.2.1 7778 >/run/tcp_echo.log 2>&1 &
rc=0
# The first packets resolve neighbors (sdwand drops the first one to an unresolved next hop).
for i in $(seq 20); do ping -c 1 -W 1 -q 10.1.0.2 >/dev/null 2>&1 && break; done
echo "--- guest: ping -c 5 10.1.0.2 (from 172.16.2.1) ---"
ping -c 5 -i 0.2 -W 2 -I 172.16.2.1 10.1.0.2 || rc=1
/usr/bin/python3 "$UML_WORK/tcp_client.py" 172.16.2.1 10.1.0.2 7777 20000 || rc=1
# Now the host side's turn, while the guest stays up.
touch "$C/guest.ready"
for i in $(seq 600); do [ -e "$C/host.done" ] && break; sleep 0.1; done
[ -e "$C/host.done" ] || { echo "guest: the host side never finished"; rc=1; }
echo "--- guest: ip -s xfrm state ---"
ip -s xfrm state | grep -v aead
exit $rc
EOF

# Start sdwand in sdwx-gw like scripts/lab.sh does: detached, pid file, log, exit status.
start_sdwand() { # config
    local cfg=$1 d=$CASE_DIR i
    rm -f "$SOCK" "$d/sdwand.pid" "$d/sdwand.rc"
    # shellcheck disable=SC2016
    setsid bash -c 'rcf=$1; shift; "$@" & echo $! >"$0"; wait $!; echo $? >"$rcf"' \
        "$d/sdwand.pid" "$d/sdwand.rc" ip netns exec "$NS_GW" "$SDWAND" --config "$cfg" \
        </dev/null >"$d/sdwand.log" 2>&1 &
    for ((i = 0; i < 100; i++)); do [[ -s $d/sdwand.pid ]] && break; sleep 0.02; done
    [[ -s $d/sdwand.pid ]] || { fail "$name: sdwand started"; return 1; }
    SDWAND_PID=$(<"$d/sdwand.pid")
    for ((i = 0; i < 400; i++)); do
        [[ -S $SOCK ]] && return 0
        if ! kill -0 "$SDWAND_PID" 2>/dev/null; then
            fail "$name: sdwand exited during start-up (status $(cat "$d/sdwand.rc" 2>/dev/null || echo '?')):"
            tail -n 20 "$d/sdwand.log" | indent
            SDWAND_PID=
            return 1
        fi
        sleep 0.05
    done
    fail "$name: sdwand: no management socket $SOCK after 20 s"
    tail -n 20 "$d/sdwand.log" | indent
    return 1
}

# Packets of an SA in `ip -s xfrm state` output: xfrm_field OUTPUT SPI packets|failed|replay
xfrm_field() {
    awk -v spi="$2" -v what="$3" '
        /^src / { cur = 0 }
        index($0, "spi " spi "(") || index($0, "spi " spi " ") { cur = 1 }
        cur && what == "packets" && /lifetime current:/ {
            getline
            if (match($0, /[0-9]+\(packets\)/)) { print substr($0, RSTART, RLENGTH - 9); exit }
        }
        cur && what != "packets" && /replay-window [0-9]+ replay [0-9]+ failed [0-9]+/ {
            for (i = 1; i < NF; i++) if ($i == what) { print $(i + 1); exit }
        }
    ' <<<"$1"
}

# ping from sdwx-host; sets SENT RECV OUT.
host_ping() {
    OUT=$(nsx "$NS_HOST" ping "$@" 2>&1) || true
    SENT=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<<"$OUT")
    RECV=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$OUT")
    : "${SENT:=0}" "${RECV:=0}"
}

# One field of the SA with SPI (decimal) in `sdwan-cli show sa --json` (a list of api::Sa).
sa_json_field() { # JSON SPI_DECIMAL FIELD
    jq -r --argjson spi "$2" --arg f "$3" 'map(select(.spi == $spi)) | first | .[$f] // empty' \
        <<<"$1" 2>/dev/null || true
}

n=0
for c in $CASES; do
    IFS=: read -r encap esn suite <<<"$c"
    suite=${suite:-aes128gcm16}
    case $encap in esp | none) encap=none mode=esp ;; udp) mode=udp ;; *) die "bad case $c" ;; esac
    case $esn in 0 | false) esn=0 esn_yaml=false ;; 1 | true) esn=1 esn_yaml=true ;; *) die "bad case $c" ;; esac
    case $suite in aes128gcm16) keylen=20 ;; aes256gcm16) keylen=36 ;; *) die "bad suite in $c" ;; esac
    n=$((n + 1))
    name=$mode-esn$esn
    [[ $suite == aes128gcm16 ]] || name+=-$suite
    CASE_DIR=$UML_WORK/$name
    C=$CASE_DIR
    mkdir -p "$C"
    t_case=$SECONDS
    # sdwand's SAs: out = what it sends (the guest's inbound state), in = what it receives.
    spi_out=$((0xa000 + n))
    spi_in=$((0xb000 + n))
    spi_out_hex=$(printf '0x%08x' "$spi_out")
    spi_in_hex=$(printf '0x%08x' "$spi_in")
    uml_keygen "$C/k_out" "$keylen"
    uml_keygen "$C/k_in" "$keylen"
    # The inbound key goes to sdwand through key_file (relative to the config), the outbound one
    # inline; the files are mode 600 and never printed.
    (umask 077 && printf '0x%s\n' "$(<"$C/k_in")" >"$C/in.key")
    (umask 077 && cat >"$C/gw.yaml" <<EOF
# sdwand configuration for tests/interop_xfrm.sh, case $name
node:
  name: gw
  loopback: 10.255.0.1
dpdk:
  eal_args: ["--no-huge", "-m", "256", "--no-pci", "--no-shconf"]
  mbufs: 8191
workers: { cores: [1], control_core: 0 }
management: { socket: $SOCK }
ports:
  - { name: lan0, device: "net_af_packet0,iface=lan0", role: lan, addresses: [10.1.0.1/24] }
  - { name: wan0, device: "net_af_packet1,iface=$GW_WAN_IF", role: wan, addresses: [198.51.100.1/24] }
tenants:
  - name: blue
    vni: 100
    lan_ports: [lan0]
    routes:
      - { prefix: 172.16.2.0/24, peer: kernel }
peers:
  - name: kernel
    type: ipsec
    encapsulation: $([[ $mode == udp ]] && echo udp || echo none)
    circuits:
      - { port: wan0, address: 198.51.100.2 }
    sas:
      - tenant: blue
        suite: $suite
        esn: $esn_yaml
        replay_window: 1024
        out: { spi: $spi_out_hex, key: "0x$(<"$C/k_out")" }
        in:  { spi: $spi_in_hex, key_file: in.key }
EOF
    )
    uml_xfrm_conf "$C/guest.xfrm" local=198.51.100.2 remote=198.51.100.1 \
        local_net=172.16.2.0/24 remote_net=10.1.0.0/24 \
        spi_out="$spi_in_hex" key_out="$C/k_in" spi_in="$spi_out_hex" key_in="$C/k_out" \
        encap="$([[ $mode == udp ]] && echo udp || echo none)" esn="$esn" replay=1024

    echo "=== case $name: encapsulation $encap, ESN $esn, $suite; sdwand out SPI $spi_out_hex, in SPI $spi_in_hex ==="
    if ! start_sdwand "$C/gw.yaml"; then
        stop_case_procs
        continue
    fi
    ok "$name: sdwand is up with the ipsec peer configuration (pid $SDWAND_PID)"

    nsx "$NS_HOST" /usr/bin/python3 "$UML_WORK/tcp_echo.py" 10.1.0.2 7777 >"$C/listener.log" 2>&1 &
    LISTENER_PID=$!
    tcpdump -i "$UML_IF" -n -U --immediate-mode -s 0 -w "$C/wire.pcap" >"$C/tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do grep -q 'listening on' "$C/tcpdump.log" && break; sleep 0.1; done

    uml_start "guest-$name" "$UML_IF" "$GUEST_MAC" "$GUEST_TIMEOUT" "$UML_WORK/guest.sh" "$name"
    # Wait for the guest's own checks (or its end), then the host side's, while the guest waits.
    for ((i = 0; i < GUEST_TIMEOUT * 10; i++)); do
        [[ -e $C/guest.ready ]] && break
        kill -0 "${UML_PIDS[guest-$name]}" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -e $C/guest.ready ]]; then
        host_ping -c 5 -i 0.2 -W 2 172.16.2.1
        H_SENT=$SENT H_RECV=$RECV H_OUT=$OUT
        H_TCP=$(nsx "$NS_HOST" /usr/bin/python3 "$UML_WORK/tcp_client.py" 10.1.0.2 172.16.2.1 7778 20000 2>&1) \
            && H_TCP_RC=0 || H_TCP_RC=$?
        SA_TEXT=$("$CLI" --socket "$SOCK" show sa 2>&1) || true
        SA_JSON=$("$CLI" --socket "$SOCK" show sa --json 2>&1) && SA_RC=0 || SA_RC=$?
        STATS=$("$CLI" --socket "$SOCK" show stats 2>&1) || true
        touch "$C/host.done"
    else
        H_SENT=0 H_RECV=0 H_OUT="(the guest never got ready)" H_TCP="(not run)" H_TCP_RC=1
        SA_TEXT="" SA_JSON="" SA_RC=1 STATS=""
    fi
    uml_wait "guest-$name"
    G_RC=$UML_RC G_OUT=$UML_OUT G_SECS=$UML_SECS
    # sdwand's SA counters once the guest is done (workers publish them every 100 ms).
    if [[ $SA_RC -eq 0 ]]; then
        sleep 0.3
        SA_TEXT=$("$CLI" --socket "$SOCK" show sa 2>&1) || true
        SA_JSON=$("$CLI" --socket "$SOCK" show sa --json 2>&1) && SA_RC=0 || SA_RC=$?
    fi
    sleep 0.5 # let tcpdump write the last frames
    SDWAND_ALIVE=0
    [[ -n $SDWAND_PID ]] && kill -0 "$SDWAND_PID" 2>/dev/null && SDWAND_ALIVE=1
    stop_case_procs

    FAILED_BEFORE=$FAILED
    info "guest: exit $G_RC after ${G_SECS} s; its ping: $(grep -E 'packets transmitted' <<<"$G_OUT" || echo none)"
    check "$name: the guest's script succeeded (exit $G_RC)" test "$G_RC" = 0
    check "$name: guest 172.16.2.1 -> 10.1.0.2: 5/5 pings through sdwand" \
        grep -q '5 packets transmitted, 5 received' <<<"$G_OUT"
    check "$name: guest -> sdwx-host TCP, 20000 bytes echoed" grep -q '7777, 20000 bytes: echo 20000' <<<"$G_OUT"
    info "sdwx-host ping: $(grep -E 'packets transmitted' <<<"$H_OUT" || echo "$H_OUT")"
    check "$name: sdwx-host 10.1.0.2 -> 172.16.2.1: ${H_RECV}/${H_SENT} pings" test "$H_RECV" -eq 5 -a "$H_SENT" -eq 5
    info "$H_TCP"
    check "$name: sdwx-host -> guest TCP, 20000 bytes echoed" test "$H_TCP_RC" -eq 0
    check "$name: sdwand still running after the traffic" test "$SDWAND_ALIVE" -eq 1

    # The kernel's view: the guest's inbound SA is sdwand's out SA and vice versa.
    g_in_pkts=$(xfrm_field "$G_OUT" "$spi_out_hex" packets)
    g_out_pkts=$(xfrm_field "$G_OUT" "$spi_in_hex" packets)
    g_in_failed=$(xfrm_field "$G_OUT" "$spi_out_hex" failed)
    g_in_replay=$(xfrm_field "$G_OUT" "$spi_out_hex" replay)
    g_in_window=$(xfrm_field "$G_OUT" "$spi_out_hex" replay-window)
    info "kernel SA $spi_out_hex (from sdwand): ${g_in_pkts:-?} packets, failed ${g_in_failed:-?}, replay ${g_in_replay:-?}, replay-window ${g_in_window:-?}; SA $spi_in_hex (to sdwand): ${g_out_pkts:-?} packets"
    check "$name: the kernel decrypted >= 10 packets from sdwand on SA $spi_out_hex (${g_in_pkts:-none})" \
        test "${g_in_pkts:-0}" -ge 10
    check "$name: the kernel sent >= 10 packets to sdwand on SA $spi_in_hex (${g_out_pkts:-none})" \
        test "${g_out_pkts:-0}" -ge 10
    check "$name: no ICV failures, replay or window drops in the kernel (failed ${g_in_failed:-?}, replay ${g_in_replay:-?}, replay-window ${g_in_window:-?})" \
        test "${g_in_failed:-x}" = 0 -a "${g_in_replay:-x}" = 0 -a "${g_in_window:-x}" = 0
    if [[ $esn == 1 ]]; then
        check "$name: the kernel's SAs have ESN on (flag esn)" grep -q 'flag.*esn' <<<"$G_OUT"
    fi

    # The wire (umlv0): only ESP or only UDP 4500, nothing in clear.
    count() { tcpdump -r "$C/wire.pcap" -n "$@" 2>/dev/null | wc -l; }
    w_esp_out=$(count 'ip proto 50 and src host 198.51.100.1')
    w_esp_in=$(count 'ip proto 50 and src host 198.51.100.2')
    w_udp_out=$(count 'udp and src host 198.51.100.1 and src port 4500 and dst port 4500')
    w_udp_in=$(count 'udp and src host 198.51.100.2 and src port 4500 and dst port 4500')
    w_udp_any=$(count 'udp and (port 4500 or port 500)')
    w_clear=$(count 'net 172.16.2.0/24 or net 10.1.0.0/24')
    info "wire: ESP sdwand->guest $w_esp_out, guest->sdwand $w_esp_in; UDP 4500 sdwand->guest $w_udp_out, guest->sdwand $w_udp_in; cleartext inner $w_clear"
    tcpdump -r "$C/wire.pcap" -n -c 4 'src host 198.51.100.1 and (ip proto 50 or udp port 4500)' 2>/dev/null | indent
    if [[ $mode == esp ]]; then
        check "$name: sdwand sent ESP (IP proto 50) to the guest ($w_esp_out >= 10), and no UDP 4500/500 was seen ($w_udp_any)" \
            test "$w_esp_out" -ge 10 -a "$w_esp_in" -ge 10 -a "$w_udp_any" -eq 0
    else
        check "$name: sdwand sent ESP in UDP 4500 -> 4500 ($w_udp_out >= 10), guest too ($w_udp_in), no bare ESP ($((w_esp_out + w_esp_in)))" \
            test "$w_udp_out" -ge 10 -a "$w_udp_in" -ge 10 -a "$((w_esp_out + w_esp_in))" -eq 0
    fi
    check "$name: no inner (10.1.0.0/24, 172.16.2.0/24) packet in clear on the wire ($w_clear)" test "$w_clear" -eq 0

    # An independent ESP implementation: tshark decrypts both directions and checks the ICVs.
    dec=$(uml_tshark_esp "$C/wire.pcap" "esp.spi esp.sequence ip.src ip.dst icmp.type esp.icv_good esp.icv_bad" \
        "198.51.100.1,198.51.100.2,$spi_out_hex,$C/k_out" "198.51.100.2,198.51.100.1,$spi_in_hex,$C/k_in" || true)
    echo "--- tshark: sdwand's first ESP packets decrypted (spi, seq, outer,inner src, dst, icmp.type, icv good, bad) ---"
    awk -F'\t' -v s="$spi_out_hex" '$1 == s' <<<"$dec" | head -n 3 | indent
    d_out=$(awk -F'\t' -v s="$spi_out_hex" '$1 == s && $3 ~ /^198\.51\.100\.1,10\.1\.0\.2$/ && $4 ~ /,172\.16\.2\.1$/' <<<"$dec" | wc -l)
    d_in=$(awk -F'\t' -v s="$spi_in_hex" '$1 == s && $3 ~ /,172\.16\.2\.1$/ && $4 ~ /,10\.1\.0\.2$/' <<<"$dec" | wc -l)
    good_out=$(awk -F'\t' -v s="$spi_out_hex" '$1 == s && $6 == "1"' <<<"$dec" | wc -l)
    bad_out=$(awk -F'\t' -v s="$spi_out_hex" '$1 == s && $7 == "1"' <<<"$dec" | wc -l)
    info "tshark: $d_out decrypted sdwand->guest (inner 10.1.0.2 -> 172.16.2.1), $d_in guest->sdwand; sdwand's ICVs: $good_out good, $bad_out bad"
    check "$name: tshark decrypts sdwand's packets to inner 10.1.0.2 -> 172.16.2.1 ($d_out >= 10) and the guest's ($d_in >= 10)" \
        test "$d_out" -ge 10 -a "$d_in" -ge 10
    if [[ $esn == 0 ]]; then
        check "$name: tshark verifies every ICV of sdwand's packets ($good_out good, $bad_out bad)" \
            test "$good_out" -ge 10 -a "$bad_out" -eq 0
    else
        info "(ESN: Wireshark 4.0 computes the GCM AAD without the high sequence bits: ICVs not checked; the kernel's 'failed 0' above is the check)"
    fi

    # sdwand's own SA counters (`show sa --json`), against the kernel's.
    echo "--- sdwan-cli show sa ---"
    indent <<<"$SA_TEXT"
    check "$name: sdwan-cli show sa --json exits 0 (got $SA_RC)" test "$SA_RC" -eq 0
    local_out=$(sa_json_field "$SA_JSON" "$spi_out" packets)
    local_in=$(sa_json_field "$SA_JSON" "$spi_in" packets)
    dir_out=$(sa_json_field "$SA_JSON" "$spi_out" direction)
    dir_in=$(sa_json_field "$SA_JSON" "$spi_in" direction)
    check "$name: show sa lists $spi_out_hex as out and $spi_in_hex as in ($dir_out, $dir_in)" \
        test "$dir_out/$dir_in" = "out/in"
    check "$name: sdwand sealed at least what the kernel opened on $spi_out_hex (${local_out:-?} >= ${g_in_pkts:-?})" \
        test "${local_out:-0}" -ge "${g_in_pkts:-1}" -a "${local_out:-0}" -gt 0
    check "$name: sdwand opened no more than the kernel sealed on $spi_in_hex (${local_in:-?} <= ${g_out_pkts:-?}, > 0)" \
        test "${local_in:-0}" -le "${g_out_pkts:-0}" -a "${local_in:-0}" -gt 0
    af=$(sa_json_field "$SA_JSON" "$spi_in" auth_failed)
    rd=$(sa_json_field "$SA_JSON" "$spi_in" replay_drops)
    check "$name: sdwand saw no ICV failure or replay on $spi_in_hex (auth_failed ${af:-?}, replay ${rd:-?})" \
        test "${af:-1}" -eq 0 -a "${rd:-1}" -eq 0
    if [[ $FAILED -gt $FAILED_BEFORE ]]; then
        echo "--- guest output ($UML_WORK/guest-$name/output; console: console.log beside it) ---"
        grep -vE '^\s+(0{8} )+|^\s+(limit|expire)|^\s+lifetime config' <<<"$G_OUT" | indent
        echo "--- sdwan-cli show stats ---"
        indent <<<"$STATS"
        echo "--- last lines of $C/sdwand.log ---"
        tail -n 15 "$C/sdwand.log" 2>/dev/null | indent
    fi
    rc=$(cat "$C/sdwand.rc" 2>/dev/null || echo '?')
    info "sdwand exit status after SIGTERM: $rc; case $name took $((SECONDS - t_case)) s"
done

echo "=== $PASSED passed, $FAILED failed ($((SECONDS - T0)) s) ==="
[[ $FAILED -eq 0 ]]
