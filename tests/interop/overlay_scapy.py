#!/usr/bin/python3
"""scapy as an independent ESP implementation against the appliance's overlay
(ARCHITECTURE.md "Wire format": Eth | IP | UDP 4789 | VXLAN | Eth | IP loopbacks proto 50 | ESP).

  overlay_scapy.py decrypt PCAP --spi SPI --key-file F --loopbacks SRC DST --vni N
                   --inner-src A --inner-dst B --marker HEX
      Reads frames captured on a circuit, decrypts every ESP packet of SPI with scapy's own
      AES-GCM (RFC 4106, extended sequence numbers) and counts the ICMP echo requests from
      A to B whose payload carries MARKER. Prints one JSON line; exit 0 when at least one was
      found, every ESP packet of the SPI decrypted, and no frame carried MARKER in the clear.

  overlay_scapy.py inject --iface IF --dst-mac MAC --outer SRC DST --loopbacks SRC DST
                   --vni N --spi SPI --key-file F --seq N --inner-src A --inner-dst B
                   --marker HEX
      Builds an echo request A -> B, seals it with scapy (ESP tunnel mode between the
      loopbacks, AES-GCM, ESN), wraps it in VXLAN and sends it out of IF.

Keys are read from files (AES key then 4-byte salt, hex) and never printed. Run with Debian's
/usr/bin/python3 (python3-scapy, python3-cryptography).
"""

import argparse
import json
import sys

from scapy.all import ICMP, IP, UDP, Ether, Raw, rdpcap, sendp
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.vxlan import VXLAN


def key_from(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip().removeprefix("0x"))


def sa_for(args):
    return SecurityAssociation(
        ESP,
        spi=args.spi,
        crypt_algo="AES-GCM",
        crypt_key=key_from(args.key_file),
        auth_algo="NULL",
        tunnel_header=IP(src=args.loopbacks[0], dst=args.loopbacks[1]),
        esn_en=True,
        esn=0,
    )


def decrypt(args):
    sa = sa_for(args)
    marker = bytes.fromhex(args.marker)
    frames = esp = opened = matched = clear = 0
    for frame in rdpcap(args.pcap):
        frames += 1
        if marker in bytes(frame):
            clear += 1
        if VXLAN not in frame or frame[VXLAN].vni != args.vni:
            continue
        inner = frame[VXLAN].payload
        if IP not in inner or inner[IP].proto != 50:
            continue
        ip = inner[IP]
        if ESP not in ip or ip[ESP].spi != args.spi:
            continue
        esp += 1
        try:
            plain = sa.decrypt(IP(bytes(ip)))
        except Exception as e:  # an ICV failure or a bad trailer
            print(f"decrypt failed for seq {ip[ESP].seq}: {e}", file=sys.stderr)
            continue
        opened += 1
        if (
            plain.haslayer(ICMP)
            and plain[IP].src == args.inner_src
            and plain[IP].dst == args.inner_dst
            and plain[ICMP].type == 8
            and marker in bytes(plain[ICMP].payload)
        ):
            matched += 1
    print(json.dumps({"frames": frames, "esp": esp, "decrypted": opened,
                      "echo_requests_with_marker": matched, "marker_in_clear": clear}))
    return 0 if matched > 0 and opened == esp and clear == 0 else 1


def inject(args):
    sa = sa_for(args)
    marker = bytes.fromhex(args.marker)
    client = IP(src=args.inner_src, dst=args.inner_dst, ttl=64) / ICMP(type=8, id=0x5ca, seq=1) / Raw(marker * 4)
    sealed = sa.encrypt(client, seq_num=args.seq)
    frame = (
        Ether(dst=args.dst_mac)
        / IP(src=args.outer[0], dst=args.outer[1], flags="DF", ttl=64)
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=args.vni, flags=0x08)
        / Ether(src="02:00:0a:ff:00:01", dst="02:00:0a:ff:00:02")
        / sealed
    )
    sendp(frame, iface=args.iface, verbose=False)
    print(json.dumps({"sent": 1, "spi": args.spi, "seq": args.seq, "bytes": len(frame)}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("decrypt", "inject"):
        s = sub.add_parser(name)
        s.add_argument("--spi", type=lambda x: int(x, 0), required=True)
        s.add_argument("--key-file", required=True)
        s.add_argument("--loopbacks", nargs=2, required=True)
        s.add_argument("--vni", type=int, required=True)
        s.add_argument("--inner-src", required=True)
        s.add_argument("--inner-dst", required=True)
        s.add_argument("--marker", required=True)
    sub.choices["decrypt"].add_argument("pcap")
    i = sub.choices["inject"]
    i.add_argument("--iface", required=True)
    i.add_argument("--dst-mac", required=True)
    i.add_argument("--outer", nargs=2, required=True)
    i.add_argument("--seq", type=int, required=True)
    args = p.parse_args()
    return decrypt(args) if args.cmd == "decrypt" else inject(args)


if __name__ == "__main__":
    sys.exit(main())
