# shellcheck shell=bash
# Kernel XFRM peer inside user-mode-linux (UML): a sourceable bash library for interop tests.
#
# The host kernel has no ESP; a UML guest runs Debian's UML kernel (6.1) with the host's root file
# system mounted read-only (hostfs) and a script of ours as PID 1, so the guest's own kernel does
# ESP (XFRM). Its network interface vec0 is attached with UML's raw vector transport to a host
# veth (in the namespace uml_start runs in: the root namespace in the tests); the veth's peer can
# sit in any namespace (a DPDK net_af_packet port, or another guest's veth).
#
#   source tests/interop/uml.sh
#   uml_install                       # apt-get the tools when missing (linux.uml, kmod, tcpdump, tshark)
#   uml_init [DIR]                    # work folder (default /var/tmp/sdwx-uml.XXXXXX) + guest init
#   uml_veth_host IFNAME              # host-side settings a vec0 veth needs (offloads off, no IPv6)
#   uml_start NAME IFNAME MAC TIMEOUT SCRIPT [ARG...]   # boot a guest in the background
#   uml_wait NAME                     # wait for it; sets UML_RC and UML_OUT (the script's output)
#   uml_run NAME IFNAME MAC TIMEOUT SCRIPT [ARG...]     # uml_start + uml_wait
#   uml_stop_all                      # kill every guest this shell started (by process group)
#   uml_keygen FILE                   # 20 random bytes as 40 hex digits (AES-128 key || salt)
#   uml_xfrm_conf FILE key=value...   # guest-side snippet for one ESP tunnel (see below)
#   uml_tshark_esp PCAP FIELDS SA...  # decrypt ESP with tshark, keys read from files
#   uml_tcp_helpers                   # tcp_echo.py / tcp_client.py in $UML_WORK
#
# Inside the guest, the script runs under bash as root with PATH set, /proc, /sys, /dev, tmpfs on
# /run and /tmp, the UML modules loadable (plain `modprobe` works, and so does the kernel's own
# module autoloading), and these variables:
#   UML_NAME     the guest's name
#   UML_WORK     the work folder, the same path as on the host, mounted READ-WRITE (hostfs):
#                the way to pass files and markers both ways while the guest runs
#   UML_RESULTS  $UML_WORK/NAME: the guest's own folder (output, rc, console.log are written here)
# The host's root file system is otherwise read-only in the guest. Script arguments travel on the
# kernel command line: simple tokens only (no spaces; none starting with "console=", which init
# drops because UML appends console=tty0 to the command line).
# Its stdout and stderr go to $UML_RESULTS/output (written through as it runs); its exit status
# to $UML_RESULTS/rc; then the guest powers off (processes the script left running die with it).
# The guest's console (kernel messages) is in $UML_WORK/NAME/console.log.
#
# Timing on 2 cores: boot to the script about 1-2 s, power-off well under 1 s; a two-guest ESP
# case of tests/interop/uml_selftest.sh 7-9 s.

UML_KERNEL=${UML_KERNEL:-linux.uml}
UML_MEM=${UML_MEM:-256M}
UML_MODULES_HOST=${UML_MODULES_HOST:-/usr/lib/uml/modules}
# Modules loaded at boot (dependencies come with them: xfrm_algo, ipv6, udp_tunnel, gf128mul...).
# drbg hmac sha512_generic: without them adding an rfc4106 SA fails with "unable to initialize
# cryptographic operations" (the kernel's stdrng for seqiv). ESP in UDP needs no module of its
# own in this kernel (the UDP_ENCAP receive path is built in with CONFIG_XFRM; esp4 does the rest).
UML_MODULE_LIST=${UML_MODULE_LIST:-"xfrm_user esp4 esp6 xfrm4_tunnel gcm ghash-generic ctr seqiv drbg hmac sha512_generic dummy af_key"}
UML_WORK=${UML_WORK:-}
declare -A UML_PIDS=() UML_T0=()

# Host CPUs with more XSAVE state than UML 6.1 knows (AVX-512, AMX, PKRU, CET: x86/fpu lines in
# the host's dmesg) break Debian's UML kernel twice:
#  1. UML restores a guest process's FPU state with ptrace(PTRACE_SETREGSET, NT_X86_XSTATE) and a
#     832-byte buffer; the host kernel wants its whole XSAVE size (xstateregs_set: EFAULT), so the
#     first guest process dies: "userspace - ptrace set fp regs failed, errno = 14", "Kernel panic
#     - not syncing: Attempted to kill init! exitcode=0x0000000b". Workaround: a seccomp filter on
#     the UML process (inherited by its helpers) makes PTRACE_GETREGSET/SETREGSET of NT_X86_XSTATE
#     fail with EIO, so UML finds no XSTATE support at boot and uses PTRACE_GETFPREGS/SETFPREGS
#     (the 512-byte FXSAVE area: x87 + SSE), which the host accepts.
#  2. Then only x87/SSE state survives a guest page fault (UML restores registers after its
#     SIGSEGV stub handler ran; the host had reset the AVX/AVX-512 parts to their initial state):
#     glibc's AVX2/EVEX string functions corrupt data (python3: "Fatal Python error: error
#     evaluating path" or a busy loop; bash: "ambiguous redirect"). Workaround: GLIBC_TUNABLES in
#     the guest turn off glibc's AVX code paths (SSE2 variants are used).
# UML_XSTATE_WORKAROUND=0 leaves both out (hosts where UML works as it is).
UML_XSTATE_WORKAROUND=${UML_XSTATE_WORKAROUND:-1}
UML_GLIBC_TUNABLES=${UML_GLIBC_TUNABLES:-glibc.cpu.hwcaps=-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX_Fast_Unaligned_Load,-AVX,-FMA}

_uml_log() { echo "uml: $*" >&2; }

# Install what the library needs (only what is missing; apt-get update first).
uml_install() {
    local need=() t pkg
    for t in "linux.uml:user-mode-linux" "modprobe:kmod" "tcpdump:tcpdump" "tshark:tshark" \
        "/usr/bin/python3:python3" "ethtool:ethtool" "ip:iproute2"; do
        command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
    done
    [[ -d $UML_MODULES_HOST ]] || need+=(user-mode-linux)
    [[ ${#need[@]} -eq 0 ]] && return 0
    _uml_log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2046
    apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >&2
    for pkg in linux.uml modprobe tcpdump tshark; do
        command -v "$pkg" >/dev/null 2>&1 || { _uml_log "error: $pkg still missing"; return 1; }
    done
}

# uml_init [DIR]: create the work folder and the guest's init script. The folder must not be under
# /tmp or /run (the guest mounts tmpfs there); default /var/tmp/sdwx-uml.XXXXXX.
uml_init() {
    if [[ -n ${1:-} ]]; then
        UML_WORK=$1
        mkdir -p "$UML_WORK"
    else
        UML_WORK=$(mktemp -d /var/tmp/sdwx-uml.XXXXXX)
    fi
    UML_WORK=$(cd "$UML_WORK" && pwd -P)
    case $UML_WORK/ in
        /tmp/* | /run/* | /proc/* | /sys/* | /dev/*)
            _uml_log "error: UML_WORK=$UML_WORK is hidden in the guest (tmpfs on /tmp and /run)"
            return 1 ;;
    esac
    chmod 755 "$UML_WORK"
    mkdir -p "$UML_WORK/umldir"
    _uml_write_init "$UML_WORK/uml-init.sh"
    _uml_write_seccomp "$UML_WORK/uml-seccomp-exec.py"
}

# python3 uml-seccomp-exec.py CMD ARG...: exec CMD under a seccomp filter that answers EIO to
# ptrace(PTRACE_GETREGSET or PTRACE_SETREGSET, pid, NT_X86_XSTATE, ...) (see UML_XSTATE_WORKAROUND).
_uml_write_seccomp() {
    cat >"$1" <<'EOF'
import ctypes, os, struct, sys
def stmt(code, k): return struct.pack("HBBI", code, 0, 0, k)
def jump(code, k, jt, jf): return struct.pack("HBBI", code, jt, jf, k)
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
ALLOW, ERRNO_EIO = 0x7fff0000, 0x00050000 | 5
prog = b"".join([
    stmt(LD_W_ABS, 4), jump(JEQ_K, 0xc000003e, 0, 8),   # seccomp_data.arch == AUDIT_ARCH_X86_64
    stmt(LD_W_ABS, 0), jump(JEQ_K, 101, 0, 6),          # nr == __NR_ptrace
    stmt(LD_W_ABS, 32), jump(JEQ_K, 0x202, 0, 4),       # args[2] (addr) == NT_X86_XSTATE
    stmt(LD_W_ABS, 16), jump(JEQ_K, 0x4204, 1, 0),      # args[0] == PTRACE_GETREGSET
    jump(JEQ_K, 0x4205, 0, 1),                          #   or PTRACE_SETREGSET
    stmt(RET_K, ERRNO_EIO),
    stmt(RET_K, ALLOW),
])
buf = ctypes.create_string_buffer(prog, len(prog))
class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = SockFprog(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP SECCOMP_MODE_FILTER
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
    sys.exit("uml-seccomp-exec: prctl: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
EOF
}

_uml_write_init() {
    cat >"$1" <<EOF
#!/bin/bash
# PID 1 of a UML guest (written by tests/interop/uml.sh).
# argv: WORK NAME SCRIPT [ARG...]
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C
work=\$1 name=\$2 script=\$3
shift 3
# UML appends console=tty0 to the kernel command line, so to init's arguments: drop it.
args=()
for a in "\$@"; do [[ \$a == console=* ]] || args+=("\$a"); done
set -- "\${args[@]}"
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q ' /dev devtmpfs ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
# The work folder read-write at the same path as on the host.
mount -t hostfs hostfs "\$work" -o "\$work"
res=\$work/\$name
mkdir -p "\$res"
# UML kernel modules: modprobe -d M looks in M/lib/modules/\$(uname -r); the kernel's own
# autoloading goes through a wrapper that adds the -d.
M=/run/uml-modules
mkdir -p "\$M/lib/modules"
mount -t hostfs hostfs "\$M/lib/modules" -o $UML_MODULES_HOST
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "\$@"\n' "\$M" >/run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe >/proc/sys/kernel/modprobe
ln -sf /run/modprobe /run/modprobe-d
/run/modprobe -a $UML_MODULE_LIST >"\$res/modprobe.log" 2>&1 || echo "uml-init: modprobe failed: \$(cat "\$res/modprobe.log")"
# modprobe in the script: PATH finds the wrapper first.
mkdir -p /run/bin
ln -sf /run/modprobe /run/bin/modprobe
export PATH=/run/bin:\$PATH
hostname "\$name" 2>/dev/null || true
ip link set lo up
# No IPv6 on the wire (router solicitations, MLD reports) unless UML_GUEST_IPV6=1.
if [[ -d /proc/sys/net/ipv6 && \${UML_GUEST_IPV6:-0} != 1 ]]; then
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
fi
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 2>/dev/null || true
export UML_NAME=\$name UML_WORK=\$work UML_RESULTS=\$res
rm -f "\$res/rc"
# Straight into the file (hostfs writes through: the host can follow it live). Not through a
# pipe: a background process the script leaves running would keep it open, and init would wait.
cd /tmp
bash "\$script" "\$@" </dev/null >"\$res/output" 2>&1
echo \$? >"\$res/rc"
echo "uml-init: \$script exited with status \$(cat "\$res/rc")"
sync
/usr/bin/python3 -c 'import ctypes, os; os.sync(); ctypes.CDLL(None, use_errno=True).reboot(0x4321fedc)'
echo "uml-init: power off failed; halting"
echo o >/proc/sysrq-trigger 2>/dev/null
sleep 1000000
EOF
    chmod 755 "$1"
}

# uml_veth_host IFNAME: settings for a host veth a guest's vec0 attaches to. Without the offloads
# off, the guest's frames reach the veth with unfilled checksums and as TSO super-frames.
uml_veth_host() {
    local ifc=$1
    sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" >/dev/null 2>&1 || true
    ethtool -K "$ifc" tx off tso off gso off >/dev/null
    ethtool -K "$ifc" gro off >/dev/null 2>&1 || true
    ip link set "$ifc" mtu 1500 up
}

# uml_start NAME IFNAME MAC TIMEOUT SCRIPT [ARG...]: boot a guest in the background. Its vec0 is
# attached to host interface IFNAME with MAC (comma-separated lists give vec0, vec1, ...). The
# interfaces are those of the caller's network namespace. The guest is killed after TIMEOUT s.
uml_start() {
    local name=$1 ifname=$2 mac=$3 timeout=$4 script=$5
    shift 5
    [[ -n $UML_WORK && -x $UML_WORK/uml-init.sh ]] || { _uml_log "error: uml_init first"; return 1; }
    [[ $script == /* ]] || script=$(cd "$(dirname "$script")" && pwd -P)/$(basename "$script")
    local d=$UML_WORK/$name
    rm -rf "$d"
    mkdir -p "$d"
    # timeout(1) puts itself and UML (and all of UML's helper processes) in one process group:
    # on expiry it signals the whole group; uml_stop_all does the same.
    local wrap=() env=()
    if [[ $UML_XSTATE_WORKAROUND == 1 ]]; then
        wrap=(/usr/bin/python3 "$UML_WORK/uml-seccomp-exec.py")
        env=("GLIBC_TUNABLES=$UML_GLIBC_TUNABLES") # key=value before "--": init's environment
    fi
    [[ ${UML_GUEST_IPV6:-0} == 1 ]] && env+=(UML_GUEST_IPV6=1)
    local nets=() ifs macs i
    IFS=, read -ra ifs <<<"$ifname"
    IFS=, read -ra macs <<<"$mac"
    for i in "${!ifs[@]}"; do
        nets+=("vec$i:transport=raw,ifname=${ifs[$i]},mac=${macs[$i]:-02:00:00:77:01:0$i}")
    done
    timeout -k 5 "$timeout" "${wrap[@]}" "$UML_KERNEL" mem="$UML_MEM" umid="sdwx-$name-$$" \
        uml_dir="$UML_WORK/umldir" root=/dev/root rootfstype=hostfs rootflags=/ ro quiet \
        con=null con0=null,fd:1 \
        "${nets[@]}" "${env[@]}" \
        init="$UML_WORK/uml-init.sh" -- "$UML_WORK" "$name" "$script" "$@" \
        </dev/null >"$d/console.log" 2>&1 &
    UML_PIDS[$name]=$!
    echo "$!" >"$d/pid"
    UML_T0[$name]=$SECONDS
}

# uml_wait NAME: wait for the guest to end. Sets UML_RC (the guest script's exit status; 124 when
# the guest timed out before it ended, 125 when it ended without one) and UML_OUT (the script's
# output). Returns 0 (use UML_RC).
uml_wait() {
    local name=$1 d=$UML_WORK/$1 pid=${UML_PIDS[$1]:-} trc=0
    if [[ -n $pid ]]; then
        wait "$pid" 2>/dev/null || trc=$?
        unset "UML_PIDS[$name]"
    fi
    # shellcheck disable=SC2034 # UML_OUT, UML_RC, UML_SECS: this function's results
    UML_OUT=$(cat "$d/output" 2>/dev/null || true)
    if [[ -s $d/rc ]]; then
        UML_RC=$(<"$d/rc")
    elif [[ $trc -eq 124 || $trc -eq 137 ]]; then
        UML_RC=124
    else
        # shellcheck disable=SC2034
        UML_RC=125
    fi
    # shellcheck disable=SC2034
    UML_SECS=$((SECONDS - ${UML_T0[$name]:-$SECONDS}))
    return 0
}

uml_run() {
    uml_start "$@" || return 1
    uml_wait "$1"
}

# uml_stop_all: kill the guests this shell started that are still running (their process groups).
uml_stop_all() {
    local name pid
    for name in "${!UML_PIDS[@]}"; do
        pid=${UML_PIDS[$name]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || true
            sleep 0.5
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        unset "UML_PIDS[$name]"
    done
}

# uml_keygen FILE [BYTES]: random key material as hex digits (default 20 bytes: AES-128 key ||
# 4-byte salt; 36 for AES-256 || salt), no 0x, no newline. The file is mode 600.
uml_keygen() {
    local n=${2:-20}
    (umask 077 && od -An -tx1 -N"$n" /dev/urandom | tr -d ' \n' >"$1")
}

# uml_xfrm_conf FILE key=value...: write a bash snippet that the guest script sources to set up
# one ESP tunnel-mode SA pair and its policies in the guest's kernel. Keys:
#   local= remote=          outer (tunnel) addresses of the guest and of its peer      (required)
#   local_net= remote_net=  protected subnets behind each                              (required)
#   spi_out= key_out=       SPI and key file (hex key||salt) of what the guest sends   (required)
#   spi_in=  key_in=        SPI and key file of what the guest receives                (required)
#   encap=none|udp          udp: ESP in UDP 4500<->4500 (RFC 3948), with the UDP_ENCAP socket (none)
#   esn=0|1                 extended sequence numbers (kernel `flag esn`)               (0)
#   replay=N                replay window (both states; the kernel needs one with ESN)  (32)
#   icv=BITS                ICV length                                                  (128)
#   reqid=N                                                                             (1)
# The keys are read from the files in the guest, when the snippet runs (never printed).
uml_xfrm_conf() {
    local file=$1
    shift
    local -A c=([encap]=none [esn]=0 [replay]=32 [icv]=128 [reqid]=1)
    local kv k
    for kv in "$@"; do
        [[ $kv == *=* ]] || { _uml_log "uml_xfrm_conf: not key=value: $kv"; return 1; }
        c[${kv%%=*}]=${kv#*=}
    done
    for k in local remote local_net remote_net spi_out key_out spi_in key_in; do
        [[ -n ${c[$k]:-} ]] || { _uml_log "uml_xfrm_conf: $k= missing"; return 1; }
    done
    local common="reqid ${c[reqid]} mode tunnel replay-window ${c[replay]}"
    [[ ${c[esn]} == 1 ]] && common+=" flag esn"
    local encap=""
    [[ ${c[encap]} == udp ]] && encap="encap espinudp 4500 4500 0.0.0.0"
    local tmpl_out="tmpl src ${c[local]} dst ${c[remote]} proto esp reqid ${c[reqid]} mode tunnel"
    local tmpl_in="tmpl src ${c[remote]} dst ${c[local]} proto esp reqid ${c[reqid]} mode tunnel"
    {
        echo "# ESP tunnel ${c[local]} <-> ${c[remote]} (${c[local_net]} <-> ${c[remote_net]}),"
        echo "# encap ${c[encap]}, esn ${c[esn]}, replay ${c[replay]}: written by uml_xfrm_conf"
        printf '%s\n' "_k() { tr -d ' \\n' <\"\$1\"; }"
        echo "ip xfrm state add src ${c[local]} dst ${c[remote]} proto esp spi ${c[spi_out]} $common \\"
        echo "    aead 'rfc4106(gcm(aes))' 0x\$(_k ${c[key_out]}) ${c[icv]} $encap"
        echo "ip xfrm state add src ${c[remote]} dst ${c[local]} proto esp spi ${c[spi_in]} $common \\"
        echo "    aead 'rfc4106(gcm(aes))' 0x\$(_k ${c[key_in]}) ${c[icv]} $encap"
        echo "ip xfrm policy add src ${c[local_net]} dst ${c[remote_net]} dir out $tmpl_out"
        echo "ip xfrm policy add src ${c[remote_net]} dst ${c[local_net]} dir in $tmpl_in"
        echo "ip xfrm policy add src ${c[remote_net]} dst ${c[local_net]} dir fwd $tmpl_in"
        if [[ ${c[encap]} == udp ]]; then
            # The receiver of ESP in UDP: a UDP/4500 socket with UDP_ENCAP (SOL_UDP=17,
            # UDP_ENCAP=100) = UDP_ENCAP_ESPINUDP (2); the kernel then hands it every ESP packet
            # (non-zero first 4 bytes) arriving on that port. It stays open in the background.
            cat <<'PY'
rm -f /run/espinudp.ready
/usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 4500))
s.setsockopt(17, 100, 2)
open("/run/espinudp.ready", "w").close()
while True:
    time.sleep(3600)
' </dev/null >/run/espinudp.log 2>&1 &
echo $! >/run/espinudp.pid
for _i in $(seq 100); do [ -e /run/espinudp.ready ] && break; sleep 0.05; done
[ -e /run/espinudp.ready ] || { echo "espinudp socket did not open: $(cat /run/espinudp.log)"; false; }
PY
        fi
    } >"$file"
}

# uml_tcp_helpers: write $UML_WORK/tcp_echo.py and tcp_client.py (python3, usable on the host, in
# a namespace and in a guest):
#   tcp_echo.py ADDR PORT          serve forever: per connection, read up to a newline (or EOF)
#                                  and answer "echo N" (N bytes read)
#   tcp_client.py SRC DST PORT N   send N bytes (the last a newline) from SRC to DST:PORT, print
#                                  the answer; exit 0 when it is "echo N"
uml_tcp_helpers() {
    cat >"$UML_WORK/tcp_echo.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.settimeout(10)
    n = 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            n += len(d)
            if d.endswith(b"\n"):
                break
        c.sendall(b"echo %d\n" % n)
    except OSError as e:
        print("tcp_echo:", e, flush=True)
    c.close()
EOF
    cat >"$UML_WORK/tcp_client.py" <<'EOF'
import socket, sys
src, dst, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    c = socket.create_connection((dst, port), timeout=10, source_address=(src, 0))
    c.sendall(b"x" * (n - 1) + b"\n")
    r = c.makefile().readline().strip()
except OSError as e:
    r = "error: %s" % e
print("TCP %s -> %s:%d, %d bytes: %s" % (src, dst, port, n, r))
sys.exit(0 if r == "echo %d" % n else 1)
EOF
}

# uml_tshark_esp PCAP FIELDS SA...: tshark's ESP decryption of PCAP, printing the given fields
# tab-separated, one line per packet (FIELDS: a space-separated list, e.g. "esp.spi esp.sequence ip.src ip.dst icmp.type"). Each SA is
# "SRC,DST,SPI,KEYFILE" (SPI as 0x%08x; the key file holds hex key||salt: AES-GCM-16 of the key's
# length). The keys go into a private Wireshark configuration folder (esp_sa UAT file), not on the
# command line. The ICV is checked too: field esp.icv_good is 1 when it matched (AES-GCM: the AAD
# is SPI || 32-bit sequence number; Wireshark 4.0 knows no ESN, so with ESN the payload decrypts
# (CTR mode does not need the AAD) but esp.icv_bad is 1). Extra tshark options can come in
# UML_TSHARK_OPTS (an array).
uml_tshark_esp() {
    local pcap=$1 fields=$2
    shift 2
    local cfg sa src dst spi kf f args=()
    cfg=$(mktemp -d "${UML_WORK:-/tmp}/wireshark.XXXXXX")
    chmod 700 "$cfg"
    {
        for sa in "$@"; do
            IFS=, read -r src dst spi kf <<<"$sa"
            printf '"IPv4","%s","%s","%s","AES-GCM with 16 octet ICV [RFC4106]","0x%s","NULL",""\n' \
                "$src" "$dst" "$spi" "$(tr -d ' \n' <"$kf")"
        done
    } >"$cfg/esp_sa"
    printf 'esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n' >"$cfg/preferences"
    for f in $fields; do args+=(-e "$f"); done
    local rc=0
    WIRESHARK_CONFIG_DIR=$cfg tshark -n -r "$pcap" -o esp.enable_encryption_decode:TRUE \
        -o esp.enable_authentication_check:TRUE ${UML_TSHARK_OPTS[@]+"${UML_TSHARK_OPTS[@]}"} \
        -T fields -E separator=/t "${args[@]}" 2>"$cfg/stderr" || rc=$?
    grep -v 'Running as user "root"' "$cfg/stderr" >&2 || true
    rm -rf "$cfg"
    return $rc
}
