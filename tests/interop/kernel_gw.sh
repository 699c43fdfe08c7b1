#!/usr/bin/env bash
# A stand-in for sdwand AND sdwan-cli in tests/interop_xfrm.sh: the Linux kernel's XFRM, in a UML
# guest, plays the gateway, from the same configuration file. It checks the test's plumbing
# (namespaces, veths, guest scripts, captures, tshark, counters) without sdwand, and shows what a
# passing run looks like:
#
#   SDWAND=tests/interop/kernel_gw.sh CLI=tests/interop/kernel_gw.sh tests/interop_xfrm.sh
#
# As sdwand:  kernel_gw.sh --config FILE   (run in the gateway's namespace, as the test does)
#   Reads only what tests/interop_xfrm.sh writes (one lan and one wan port on net_af_packet, one
#   ipsec peer with one circuit, one SA pair, one route), boots a guest whose vec0 and vec1 are
#   attached to the lan and wan ports' interfaces, configures them with the ports' addresses and
#   the mirror XFRM states and policies, forwards between them, opens a UNIX socket at
#   management.socket (it only accepts), and stops on SIGTERM (exit 0).
# As sdwan-cli:  kernel_gw.sh --socket PATH show sa [--json] | show stats
#   prints the gateway's SAs from `ip -s xfrm state` (refreshed every 0.5 s) in the shape of
#   control/src/api.rs's Sa (spi, direction, kind, packets, bytes, auth_failed, replay_drops).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/interop/uml.sh
source "$HERE/uml.sh"

die() { echo "kernel_gw: $*" >&2; exit 2; }

cli_mode() {
    local sock=$1 cmd=$2 what=$3 json=${4:-}
    [[ $cmd == show ]] || die "usage: kernel_gw.sh --socket PATH show sa|stats [--json]"
    [[ -s $sock.kgw ]] || { echo "kernel_gw is not running: no $sock.kgw" >&2; exit 1; }
    local work
    work=$(<"$sock.kgw")
    case $what in
        sa | sas)
            /usr/bin/python3 - "$work/gw/xfrm.txt" "$(<"$work/local")" "$json" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read() if sys.argv[1] else ""
local, as_json = sys.argv[2], sys.argv[3] == "--json"
sas = []
for block in re.split(r"(?m)^(?=src )", text):
    m = re.match(r"src (\S+) dst (\S+)", block)
    s = re.search(r"spi 0x([0-9a-f]+)", block)
    if not m or not s:
        continue
    c = re.search(r"(\d+)\(bytes\), (\d+)\(packets\)", block)
    st = re.search(r"replay-window (\d+) replay (\d+) failed (\d+)", block)
    sas.append({
        "tenant": "blue", "peer": "kernel",
        "kind": "esp-udp" if "espinudp" in block else "esp",
        "direction": "out" if m.group(1) == local else "in",
        "spi": int(s.group(1), 16), "esn": bool(re.search(r"flag [^\n]*esn", block)),
        "packets": int(c.group(2)) if c else 0, "bytes": int(c.group(1)) if c else 0,
        "replay_drops": int(st.group(2)) if st else 0, "auth_failed": int(st.group(3)) if st else 0,
    })
if as_json:
    print(json.dumps(sas, indent=2))
else:
    print("Dir  SPI         Kind     Packets  Bytes  Replay  AuthFail")
    for s in sas:
        print("%-4s 0x%08x  %-8s %-8d %-6d %-7d %d" % (s["direction"], s["spi"], s["kind"],
              s["packets"], s["bytes"], s["replay_drops"], s["auth_failed"]))
EOF
            ;;
        *) echo "kernel_gw: (stand-in) nothing to show for '$what'" ;;
    esac
}

gw_mode() {
    local cfg=$1 dir
    [[ -f $cfg ]] || die "no configuration file $cfg"
    dir=$(cd "$(dirname "$cfg")" && pwd)
    # The few fields the test writes, with sed (this is no YAML parser).
    field() { sed -nE "$1" "$cfg" | head -n 1; }
    local sock lan_if wan_if lan_addr wan_addr remote remote_net encap esn replay spi_out key_out spi_in key_file
    sock=$(field 's/.*socket: *([^ },]+).*/\1/p')
    lan_if=$(field '/role: *lan/s/.*iface=([^",]+).*/\1/p')
    wan_if=$(field '/role: *wan/s/.*iface=([^",]+).*/\1/p')
    lan_addr=$(field '/role: *lan/s/.*addresses: *\[([^],]+).*/\1/p')
    wan_addr=$(field '/role: *wan/s/.*addresses: *\[([^],]+).*/\1/p')
    remote=$(field '/port: .*address:/s/.*address: *([0-9.]+).*/\1/p')
    remote_net=$(field 's/.*prefix: *([0-9./]+).*peer:.*/\1/p')
    encap=$(field 's/^ *encapsulation: *([a-z]+).*/\1/p')
    esn=$(field 's/^ *esn: *([a-z]+).*/\1/p')
    replay=$(field 's/^ *replay_window: *([0-9]+).*/\1/p')
    spi_out=$(field '/^ *out:/s/.*spi: *(0x[0-9a-fA-F]+).*/\1/p')
    key_out=$(field '/^ *out:/s/.*key: *"?0x([0-9a-fA-F]+).*/\1/p')
    spi_in=$(field '/^ *in:/s/.*spi: *(0x[0-9a-fA-F]+).*/\1/p')
    key_file=$(field '/^ *in:/s/.*key_file: *([^ },]+).*/\1/p')
    [[ $key_file == /* ]] || key_file=$dir/$key_file
    local v
    for v in sock lan_if wan_if lan_addr wan_addr remote remote_net spi_out key_out spi_in key_file; do
        [[ -n ${!v} ]] || die "$cfg: could not read $v"
    done
    local local_net
    local_net=$(/usr/bin/python3 -c 'import ipaddress, sys; print(ipaddress.ip_interface(sys.argv[1]).network)' "$lan_addr")

    uml_init "$(mktemp -d /var/tmp/sdwx-kgw.XXXXXX)"
    (umask 077 && printf '%s' "$key_out" >"$UML_WORK/k_out" \
        && sed -E 's/^0x//' "$key_file" | tr -d ' \n' >"$UML_WORK/k_in")
    echo "${wan_addr%/*}" >"$UML_WORK/local"
    uml_xfrm_conf "$UML_WORK/gw.xfrm" local="${wan_addr%/*}" remote="$remote" local_net="$local_net" \
        remote_net="$remote_net" spi_out="$spi_out" key_out="$UML_WORK/k_out" spi_in="$spi_in" \
        key_in="$UML_WORK/k_in" encap="$([[ $encap == udp ]] && echo udp || echo none)" \
        esn="$([[ $esn == true ]] && echo 1 || echo 0)" replay="${replay:-32}"
    cat >"$UML_WORK/gw.sh" <<EOF
ip link set vec0 mtu 1500 up
ip addr add $lan_addr dev vec0
ip link set vec1 mtu 1500 up
ip addr add $wan_addr dev vec1
sysctl -qw net.ipv4.ip_forward=1
ip route add $remote_net dev vec1 src ${lan_addr%/*}
set -e
. "$UML_WORK/gw.xfrm"
set +e
touch "$UML_WORK/ready"
while [ ! -e "$UML_WORK/stop" ]; do
    ip -s xfrm state | grep -v aead >"$UML_WORK/gw/xfrm.tmp" && mv "$UML_WORK/gw/xfrm.tmp" "$UML_WORK/gw/xfrm.txt"
    sleep 0.5
done
EOF
    echo "kernel_gw: booting the gateway guest (lan $lan_if $lan_addr, wan $wan_if $wan_addr, peer $remote, $remote_net, encap ${encap:-none}, esn ${esn:-false})"
    uml_start gw "$lan_if,$wan_if" "02:00:00:77:01:01,02:00:00:77:01:02" 86400 "$UML_WORK/gw.sh"
    local pid=${UML_PIDS[gw]} i
    for ((i = 0; i < 300; i++)); do
        [[ -e $UML_WORK/ready ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$UML_WORK/gw/output" 2>/dev/null; die "the gateway guest ended"; }
        sleep 0.1
    done
    [[ -e $UML_WORK/ready ]] || die "the gateway guest did not get ready"
    mkdir -p "$(dirname "$sock")"
    rm -f "$sock"
    echo "$UML_WORK" >"$sock.kgw"
    /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
while True:
    s.accept()[0].close()
' "$sock" &
    local lpid=$!
    # shellcheck disable=SC2317 # called by the trap
    stop() {
        touch "$UML_WORK/stop"
        uml_wait gw
        kill "$lpid" 2>/dev/null || true
        rm -f "$sock" "$sock.kgw"
        echo "kernel_gw: stopped (guest output in $UML_WORK/gw/output)"
        rm -rf "$UML_WORK"
        exit 0
    }
    trap stop TERM INT
    echo "kernel_gw: up; socket $sock"
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.5 &
        wait $! || true
    done
    die "the gateway guest ended on its own"
}

case ${1:-} in
    --config | -c) gw_mode "${2:?--config FILE}" ;;
    --socket) cli_mode "${2:?}" "${3:-}" "${4:-}" "${5:-}" ;;
    *) die "usage: kernel_gw.sh --config FILE | --socket PATH show sa [--json]" ;;
esac
