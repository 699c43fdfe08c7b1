#!/usr/bin/python3
"""Decode BGP messages with ExaBGP's own parser and print ExaBGP's JSON, one line each.

For what `exabgp --decode` cannot do in ExaBGP 4.2: it decodes UPDATEs only (its check_open
is a no-op, KEEPALIVE and ROUTE-REFRESH are refused) and it reads a NOTIFICATION one byte too
early (it passes the message from the type byte on, so the type is taken for the code), and
its shutdown communication parser fails under Python 3, so NOTIFICATION data stays hex.
This script feeds the same ExaBGP classes the body after the 19-byte header and prints what
ExaBGP's API JSON encoder makes of them, which is what an ExaBGP peer would log.

Usage: exabgp_decode.py HEX [HEX ...]   (whole messages, header included)
Used by control/tests/exabgp_decode.rs; needs the exabgp package (Debian: exabgp).
"""
import sys
import types

from exabgp.configuration.setup import environment

environment.setup('')

from exabgp.bgp.message.keepalive import KeepAlive  # noqa: E402
from exabgp.bgp.message.notification import Notification  # noqa: E402
from exabgp.bgp.message.open import Open  # noqa: E402
from exabgp.bgp.message.refresh import RouteRefresh  # noqa: E402
from exabgp.reactor.api.response.json import JSON  # noqa: E402

NEIGHBOR = types.SimpleNamespace(
    uid='1', local_address='127.0.0.1', peer_address='127.0.0.2', local_as=65000, peer_as=65000
)


def decode(msg):
    if msg[:16] != b'\xff' * 16 or len(msg) < 19:
        raise SystemExit('not a BGP message: %s' % msg.hex())
    header, body, kind = msg[:19], msg[19:], msg[18]
    json = JSON('4.0.1')
    if kind == 1:
        return json.open(NEIGHBOR, 'in', Open.unpack_message(body), None, header, body)
    if kind == 3:
        # parse_data=False: ExaBGP 4.2's reading of a shutdown communication fails under
        # Python 3 (bytes % str), so the data goes out as hex for the caller to check.
        n = Notification(body[0], body[1], body[2:], False)
        return json.notification(NEIGHBOR, 'in', n, None, header, body)
    if kind == 4:
        KeepAlive.unpack_message(body, 'in', None)
        return json.keepalive(NEIGHBOR, 'in', None, header, body)
    if kind == 5:
        out = json.refresh(NEIGHBOR, 'in', RouteRefresh.unpack_message(body), None, header, body)
        # ExaBGP 4.2 quotes these strings twice ("afi": ""ipv4""); nothing else in a refresh
        # is an empty string, so undoubling is safe.
        return out.replace('""', '"')
    raise SystemExit('message type %d: use exabgp --decode for UPDATEs' % kind)


for arg in sys.argv[1:]:
    print(decode(bytes.fromhex(arg)))
