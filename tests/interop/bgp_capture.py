#!/usr/bin/python3
"""A passive BGP speaker that records every message a peer sends it, as hex.

It accepts one TCP connection, answers the peer's OPEN with its own (4-octet AS, the
multiprotocol families below, route refresh, enhanced route refresh, graceful restart so
that peers send End-of-RIB) and its own End-of-RIB markers, keeps the session up with
KEEPALIVEs and writes each received
message to the output file: a comment line `# <peer> <n> <TYPE>` and then the message, header
included, as one line of hex. It stops when the peer closes the connection or after
--duration seconds.

Used by tests/interop/bgp_capture.sh to produce control/tests/data/bgp/*.hex.
"""
import argparse
import socket
import struct
import sys
import time

TYPES = {1: 'OPEN', 2: 'UPDATE', 3: 'NOTIFICATION', 4: 'KEEPALIVE', 5: 'ROUTE-REFRESH'}
FAMILIES = [(1, 1), (2, 1), (1, 128), (2, 128), (1, 132)]


def message(kind, body):
    return b'\xff' * 16 + struct.pack('!HB', 19 + len(body), kind) + body


def our_open(asn, router_id, hold):
    caps = b''
    for afi, safi in FAMILIES:
        caps += struct.pack('!BBHBB', 1, 4, afi, 0, safi)
    caps += bytes([2, 0, 70, 0])  # route refresh, enhanced route refresh
    caps += struct.pack('!BBI', 65, 4, asn)
    gr = struct.pack('!H', 120)  # no flags, restart time 120 s
    for afi, safi in FAMILIES:
        gr += struct.pack('!HBB', afi, safi, 0)
    caps += bytes([64, len(gr)]) + gr
    params = bytes([2, len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack('!BHH4sB', 4, my_as, hold, socket.inet_aton(router_id), len(params))
    return message(1, body + params)


def end_of_rib(afi, safi):
    """RFC 4724 End-of-RIB: an empty UPDATE for IPv4 unicast, an empty MP_UNREACH otherwise."""
    if (afi, safi) == (1, 1):
        return message(2, b'\0\0\0\0')
    attr = struct.pack('!BBBHB', 0x80, 15, 3, afi, safi)
    return message(2, struct.pack('!H', 0) + struct.pack('!H', len(attr)) + attr)


def peer_families(open_msg):
    """The multiprotocol families of an OPEN (IPv4 unicast when it lists none)."""
    found = []
    params = open_msg[29 : 29 + open_msg[28]]
    while len(params) >= 2:
        ptype, plen, value, params = params[0], params[1], params[2 : 2 + params[1]], params[2 + params[1] :]
        while ptype == 2 and len(value) >= 2:
            code, clen, cval, value = value[0], value[1], value[2 : 2 + value[1]], value[2 + value[1] :]
            if code == 1 and clen == 4:
                found.append((struct.unpack('!H', cval[:2])[0], cval[3]))
    return found or [(1, 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--listen', default='0.0.0.0')
    ap.add_argument('--port', type=int, default=179)
    ap.add_argument('--asn', type=int, default=65000)
    ap.add_argument('--router-id', default='10.99.0.1')
    ap.add_argument('--peer-name', required=True, help='label written in the comments')
    ap.add_argument('--out', required=True)
    ap.add_argument('--duration', type=float, default=120)
    args = ap.parse_args()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, args.port))
    srv.listen(1)
    srv.settimeout(args.duration)
    deadline = time.monotonic() + args.duration
    conn, peer = srv.accept()
    conn.settimeout(1.0)
    out = open(args.out, 'w')
    buf = b''
    count = 0
    last_keepalive = 0.0
    established = False
    while time.monotonic() < deadline:
        if established and time.monotonic() - last_keepalive > 10:
            conn.sendall(message(4, b''))
            last_keepalive = time.monotonic()
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        buf += data
        while len(buf) >= 19:
            length = struct.unpack('!H', buf[16:18])[0]
            if length < 19 or buf[:16] != b'\xff' * 16:
                sys.exit('%s: not BGP: %s' % (args.peer_name, buf[:19].hex()))
            if len(buf) < length:
                break
            msg, buf = buf[:length], buf[length:]
            count += 1
            kind = TYPES.get(msg[18], str(msg[18]))
            out.write('# %s %d %s\n%s\n' % (args.peer_name, count, kind, msg.hex()))
            out.flush()
            if msg[18] == 1 and not established:
                # Our OPEN, a KEEPALIVE, and End-of-RIB for every family at once: a peer
                # doing graceful restart holds its routes back until it has them.
                # Only for families both sides listed: GoBGP 3.10 resets the session (with a
                # NOTIFICATION of code 0) on an MP_UNREACH of any other.
                theirs = peer_families(msg)
                eor = b''.join(end_of_rib(a, s) for a, s in FAMILIES if (a, s) in theirs)
                conn.sendall(our_open(args.asn, args.router_id, 90) + message(4, b'') + eor)
                last_keepalive = time.monotonic()
                established = True
    conn.close()
    out.close()
    print('%s: %d messages from %s' % (args.peer_name, count, peer[0]))


if __name__ == '__main__':
    main()
