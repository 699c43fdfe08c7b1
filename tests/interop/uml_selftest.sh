#!/usr/bin/env bash
# Self-test of tests/interop/uml.sh without sdwand: two UML guests, kernel XFRM on both sides,
# joined by a veth pair in the host's root namespace (guest A's vec0 on sdwx-ua, guest B's on
# sdwx-ub). For each case (plain ESP and ESP in UDP 4500, ESN off and on) guest A pings guest B's
# protected subnet and runs a TCP exchange through an AES-GCM tunnel-mode SA pair; tcpdump on
# sdwx-ua proves that only ESP (IP protocol 50) or UDP 4500 crossed the wire, and tshark decrypts
# the capture with the keys. Run as root. Prints PASS/FAIL per check and `N passed, M failed`.
#
#   tests/interop/uml_selftest.sh   (env: KEEP=1 keeps the work folder; CASES="MODE:ESN[:BITS] ...",
#                                    default "esp:0 udp:0 esp:1 udp:1 esp:0:256"; BITS 128 or 256)
#
#   guest A  vec0 10.99.0.1/24  dummy0 172.16.1.1/24 ── sdwx-ua ══ sdwx-ub ── guest B  vec0 10.99.0.2/24  dummy0 172.16.2.1/24
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/interop/uml.sh
source "$HERE/uml.sh"

IF_A=sdwx-ua
IF_B=sdwx-ub
MAC_A=02:00:00:77:00:0a
MAC_B=02:00:00:77:00:0b
CASES=${CASES:-"esp:0 udp:0 esp:1 udp:1 esp:0:256"}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-90}

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

TCPDUMP_PID=
cleanup() {
    local rc=$?
    uml_stop_all || true
    if [[ -n $TCPDUMP_PID ]]; then kill "$TCPDUMP_PID" 2>/dev/null || true; wait "$TCPDUMP_PID" 2>/dev/null || true; fi
    ip link del "$IF_A" 2>/dev/null || true
    if [[ -n ${UML_WORK:-} && -d $UML_WORK ]]; then
        if [[ ${KEEP:-0} == 1 || $rc -ne 0 || $FAILED -gt 0 ]]; then
            echo "work folder kept: $UML_WORK"
        else
            rm -rf "$UML_WORK"
        fi
    fi
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "uml_selftest.sh: run as root" >&2; exit 2; }
T0=$SECONDS
uml_install
uml_init ""
uml_tcp_helpers

ip link del "$IF_A" 2>/dev/null || true
ip link add "$IF_A" type veth peer name "$IF_B"
uml_veth_host "$IF_A"
uml_veth_host "$IF_B"

# The guest script, the same for both sides: guest.sh ROLE(a|b) CASE
cat >"$UML_WORK/guest.sh" <<'EOF'
role=$1 case=$2
C=$UML_WORK/$case
if [ "$role" = a ]; then me=1 peer=2; else me=2 peer=1; fi
ip link set vec0 mtu 1500 up
ip addr add 10.99.0.$me/24 dev vec0
ip link add dummy0 type dummy
ip link set dummy0 up
ip addr add 172.16.$me.1/24 dev dummy0
ip route add 172.16.$peer.0/24 dev vec0 src 172.16.$me.1
set -e
. "$C/$role.xfrm"
set +e
echo "--- ip xfrm state / policy (keys hidden) ---"
ip xfrm state | grep -v aead
ip xfrm policy | grep -E '^src|dir'
rc=0
if [ "$role" = b ]; then
    # TCP echo server on the protected address; then tell A we are ready and wait for it.
    /usr/bin/python3 "$UML_WORK/tcp_echo.py" 172.16.2.1 7777 &
    sleep 0.3
    touch "$C/b.ready"
    for i in $(seq 600); do [ -e "$C/a.done" ] && break; sleep 0.1; done
    [ -e "$C/a.done" ] || { echo "B: timed out waiting for A"; rc=1; }
else
    for i in $(seq 300); do [ -e "$C/b.ready" ] && break; sleep 0.1; done
    [ -e "$C/b.ready" ] || { echo "A: B never got ready"; touch "$C/a.done"; exit 1; }
    for i in $(seq 20); do ping -c 1 -W 1 -q 172.16.2.1 >/dev/null 2>&1 && break; done
    echo "--- ping -c 5 172.16.2.1 (from 172.16.1.1) ---"
    ping -c 5 -i 0.2 -W 2 -I 172.16.1.1 172.16.2.1 || rc=1
    /usr/bin/python3 "$UML_WORK/tcp_client.py" 172.16.1.1 172.16.2.1 7777 20000 || rc=1
    touch "$C/a.done"
fi
echo "--- ip -s xfrm state ---"
ip -s xfrm state | grep -v aead
exit $rc
EOF

# Packet counter of an SA in `ip -s xfrm state` output: xfrm_pkts OUTPUT SPI
xfrm_pkts() {
    awk -v spi="$2" '
        /^src / { cur = 0 }
        index($0, "spi " spi "(") || index($0, "spi " spi " ") { cur = 1 }
        cur && /lifetime current:/ {
            getline
            if (match($0, /[0-9]+\(packets\)/)) { print substr($0, RSTART, RLENGTH - 9); exit }
        }
    ' <<<"$1"
}

n=0
for c in $CASES; do
    IFS=: read -r mode esn bits <<<"$c"
    bits=${bits:-128}
    n=$((n + 1))
    name="$mode-esn$esn"
    [[ $bits == 128 ]] || name+="-aes$bits"
    C=$UML_WORK/$name
    mkdir -p "$C"
    spi_ab=$(printf '0x%08x' $((0xa000 + n)))
    spi_ba=$(printf '0x%08x' $((0xb000 + n)))
    uml_keygen "$C/k_ab" $((bits / 8 + 4))
    uml_keygen "$C/k_ba" $((bits / 8 + 4))
    encap=none
    [[ $mode == udp ]] && encap=udp
    uml_xfrm_conf "$C/a.xfrm" local=10.99.0.1 remote=10.99.0.2 local_net=172.16.1.0/24 \
        remote_net=172.16.2.0/24 spi_out="$spi_ab" key_out="$C/k_ab" spi_in="$spi_ba" key_in="$C/k_ba" \
        encap=$encap esn="$esn" replay=1024
    uml_xfrm_conf "$C/b.xfrm" local=10.99.0.2 remote=10.99.0.1 local_net=172.16.2.0/24 \
        remote_net=172.16.1.0/24 spi_out="$spi_ba" key_out="$C/k_ba" spi_in="$spi_ab" key_in="$C/k_ab" \
        encap=$encap esn="$esn" replay=1024

    echo "=== case $name: mode $mode (encap $encap), ESN $esn, AES-$bits-GCM-16, SPIs $spi_ab (A->B) $spi_ba (B->A) ==="
    t_case=$SECONDS
    tcpdump -i "$IF_A" -n -U --immediate-mode -s 0 -w "$C/wire.pcap" >"$C/tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 50); do grep -q 'listening on' "$C/tcpdump.log" && break; sleep 0.1; done
    uml_start "b-$name" "$IF_B" "$MAC_B" "$GUEST_TIMEOUT" "$UML_WORK/guest.sh" b "$name"
    uml_start "a-$name" "$IF_A" "$MAC_A" "$GUEST_TIMEOUT" "$UML_WORK/guest.sh" a "$name"
    uml_wait "a-$name"
    RC_A=$UML_RC OUT_A=$UML_OUT S_A=$UML_SECS
    uml_wait "b-$name"
    RC_B=$UML_RC OUT_B=$UML_OUT S_B=$UML_SECS
    sleep 0.5
    kill "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=

    echo "--- guest A (exit $RC_A, ${S_A} s) ---"
    indent <<<"$OUT_A"
    echo "--- guest B (exit $RC_B, ${S_B} s) ---"
    indent <<<"$OUT_B" | tail -n 12
    check "$name: guest A's script succeeded (exit $RC_A)" test "$RC_A" = 0
    check "$name: guest B's script succeeded (exit $RC_B)" test "$RC_B" = 0
    check "$name: 5/5 pings 172.16.1.1 -> 172.16.2.1 through the tunnel" \
        grep -q '5 packets transmitted, 5 received' <<<"$OUT_A"
    check "$name: TCP exchange of 20000 bytes through the tunnel" grep -q '7777, 20000 bytes: echo 20000' <<<"$OUT_A"
    for spi in "$spi_ab" "$spi_ba"; do
        p=$(xfrm_pkts "$OUT_A" "$spi")
        check "$name: guest A's SA $spi counted packets (${p:-none})" test "${p:-0}" -ge 5
    done
    if [[ $esn == 1 ]]; then
        check "$name: the kernel's SAs have ESN on (flag esn)" grep -q 'flag.*esn' <<<"$OUT_A"
    fi
    if [[ $mode == udp ]]; then
        check "$name: the kernel's SAs have encap espinudp 4500 4500" grep -q 'encap type espinudp sport 4500 dport 4500' <<<"$OUT_A"
    fi

    # The wire: what crossed sdwx-ua.
    n_esp=$(tcpdump -r "$C/wire.pcap" -n 'ip proto 50' 2>/dev/null | wc -l)
    n_udp=$(tcpdump -r "$C/wire.pcap" -n 'udp port 4500' 2>/dev/null | wc -l)
    n_clear=$(tcpdump -r "$C/wire.pcap" -n 'net 172.16.0.0/16' 2>/dev/null | wc -l)
    info "wire: $n_esp ESP (proto 50), $n_udp UDP 4500, $n_clear cleartext 172.16/16"
    if [[ $mode == esp ]]; then
        check "$name: >= 10 ESP packets (IP proto 50) on the wire ($n_esp), no UDP 4500 ($n_udp)" \
            test "$n_esp" -ge 10 -a "$n_udp" -eq 0
    else
        check "$name: >= 10 UDP 4500 packets on the wire ($n_udp), no bare ESP ($n_esp)" \
            test "$n_udp" -ge 10 -a "$n_esp" -eq 0
    fi
    check "$name: no cleartext 172.16/16 packet on the wire ($n_clear)" test "$n_clear" -eq 0
    tcpdump -r "$C/wire.pcap" -n -c 4 'ip proto 50 or udp port 4500' 2>/dev/null | indent

    # tshark decrypts with the keys and checks the ICVs (esp.icv_good / esp.icv_bad).
    dec=$(uml_tshark_esp "$C/wire.pcap" "esp.spi esp.sequence ip.src ip.dst icmp.type esp.icv_good esp.icv_bad" \
        "10.99.0.1,10.99.0.2,$spi_ab,$C/k_ab" "10.99.0.2,10.99.0.1,$spi_ba,$C/k_ba" || true)
    echo "--- tshark ESP decryption (spi, seq, outer,inner src, dst, icmp.type, icv good, bad), first lines ---"
    grep -E '^0x' <<<"$dec" | head -n 4 | indent
    # Tab-separated; ip.src / ip.dst list the outer then the inner address ("outer,inner").
    n_req=$(awk -F'\t' '$3 ~ /,172\.16\.1\.1$/ && $4 ~ /,172\.16\.2\.1$/ && $5 == "8"' <<<"$dec" | wc -l)
    n_rep=$(awk -F'\t' '$3 ~ /,172\.16\.2\.1$/ && $4 ~ /,172\.16\.1\.1$/ && $5 == "0"' <<<"$dec" | wc -l)
    n_good=$(awk -F'\t' '$1 ~ /^0x/ && $6 == "1"' <<<"$dec" | wc -l)
    n_bad=$(awk -F'\t' '$1 ~ /^0x/ && $7 == "1"' <<<"$dec" | wc -l)
    info "tshark: $n_req decrypted echo requests A->B, $n_rep echo replies B->A; ICV good $n_good, bad $n_bad"
    check "$name: tshark decrypted ICMP echo both ways ($n_req requests, $n_rep replies, >= 5 each)" \
        test "$n_req" -ge 5 -a "$n_rep" -ge 5
    if [[ $esn == 0 ]]; then
        check "$name: tshark verified every ICV ($n_good good, $n_bad bad)" test "$n_good" -ge 10 -a "$n_bad" -eq 0
    else
        info "(ESN: Wireshark 4.0 computes the AES-GCM AAD without the high sequence bits, so it reports bad ICVs; not checked)"
    fi
    info "case $name took $((SECONDS - t_case)) s"
done

echo "=== $PASSED passed, $FAILED failed ($((SECONDS - T0)) s) ==="
[[ $FAILED -eq 0 ]]
