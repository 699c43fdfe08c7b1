#!/usr/bin/env python3
"""A numbered UDP stream for failover tests (sender and receiver in different namespaces of
one host, so CLOCK_MONOTONIC is shared).

  udpstream.py recv PORT SECONDS OUT.json       count what arrives; write the analysis
  udpstream.py send DST PORT PPS SECONDS [--at S CMD...]
                                                send packets numbered from 0 at PPS; with --at,
                                                run CMD (a shell command) S seconds in and
                                                record when it started and ended
  udpstream.py analyze SEND.json RECV.json [K]  loss, duplicates, reordering, and around the
                                                cut: the packets lost, the outage, and the
                                                time from the cut to the first packet after it;
                                                with K, the losses per group of K packets
                                                (0..K-1, K..2K-1, ...: FEC groups)

Each packet: seq (u64), send time (f64 monotonic), padding to 64 bytes (zeros, or the string in
$UDPSTREAM_MARK repeated). A sender that falls more than MAX_BEHIND_S behind its schedule (the
host did not run it) does not catch up with a burst, which would overflow the rings of a
loaded host and show as a loss of the network; it goes on from now and records the stall
("stalls": [[seq, seconds], ...]): those packets were never sent, so they are not lost. The
receiver's JSON:
sent-side numbers are read from the sender's log (send writes it to stdout as JSON at the end),
so the test joins them: see tests/lab_multipath.sh.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

FMT = "!Qd"
# How far behind its schedule the sender still catches up (a burst of at most this much).
MAX_BEHIND_S = 0.1


def recv(port, seconds, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    # Tell the test the socket is bound (a loaded machine can take long to start Python).
    with open(out + ".ready", "w") as f:
        f.write("ready\n")
    arrivals = []  # (seq, sent_at, arrived_at)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        now = time.monotonic()
        if len(data) >= struct.calcsize(FMT):
            seq, sent = struct.unpack_from(FMT, data)
            arrivals.append((seq, sent, now))
    with open(out, "w") as f:
        json.dump({"arrivals": arrivals}, f)


def send(dst, port, pps, seconds, at=None, cmd=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    interval = 1.0 / pps
    start_wall = time.time()
    start = time.monotonic()
    seq = 0
    cut = None
    stalls = []  # [seq, seconds]: where the sender skipped ahead instead of bursting
    skipped = 0.0  # their sum: the schedule's shift (the stream still ends on time)
    errors = {}  # send errors by message
    # The padding: zeros, or a marker to look for on the wire ($UDPSTREAM_MARK).
    mark = os.environ.get("UDPSTREAM_MARK", "").encode()
    pad = (mark * 64)[: 64 - struct.calcsize(FMT)] if mark else b"\0" * (64 - struct.calcsize(FMT))
    while True:
        due = start + skipped + seq * interval
        now = time.monotonic()
        if now - start >= seconds:
            break
        if cmd is not None and cut is None and now - start >= at:
            t0 = time.monotonic()
            rc = subprocess.call(cmd, shell=True, stdout=subprocess.DEVNULL)
            cut = {"start": t0, "end": time.monotonic(), "rc": rc, "seq_before": seq}
            continue
        if now < due:
            time.sleep(min(due - now, 0.0005))
            continue
        if now - due > MAX_BEHIND_S:
            stalls.append([seq, round(now - due, 4)])
            skipped += now - due
        try:
            s.sendto(struct.pack(FMT, seq, now) + pad, (dst, port))
        except OSError as e:
            # Not sent (a full queue, the gateway's address unresolved): counted, still a
            # number the receiver will miss.
            errors[e.strerror] = errors.get(e.strerror, 0) + 1
        seq += 1
    json.dump(
        {
            "sent": seq,
            "pps": pps,
            "start": start,
            "start_wall": start_wall,
            "cut": cut,
            "stalls": stalls,
            "send_errors": errors,
        },
        sys.stdout,
    )
    print()


def analyze(send_file, recv_file, k=None):
    with open(send_file) as f:
        snd = json.load(f)
    with open(recv_file) as f:
        arrivals = json.load(f)["arrivals"]
    sent = snd["sent"]
    seen = {}
    dups = 0
    reordered = 0
    top = -1
    for seq, sent_at, arrived in arrivals:
        if seq in seen:
            dups += 1
            continue
        seen[seq] = (sent_at, arrived)
        if seq < top:
            reordered += 1
        top = max(top, seq)
    lost = [q for q in range(sent) if q not in seen]
    out = {
        "sent": sent,
        "received": len(seen),
        "lost": len(lost),
        "duplicates": dups,
        "reordered": reordered,
    }
    if k:
        per_group = {}
        for q in lost:
            per_group[q // k] = per_group.get(q // k, 0) + 1
        out["groups"] = (sent + k - 1) // k
        out["groups_with_losses"] = len(per_group)
        out["groups_with_one_lost"] = sum(1 for n in per_group.values() if n == 1)
    # The runs of lost packets (at most 8): first and last sequence, and the wall-clock time
    # the first was due (the sender paces at PPS from its start), to set against the logs.
    gaps = []
    for q in lost:
        if gaps and q == gaps[-1][1] + 1:
            gaps[-1][1] = q
        else:
            gaps.append([q, q])
    if snd.get("send_errors"):
        out["send_errors"] = snd["send_errors"]
    stalls = snd.get("stalls", [])
    if stalls:
        out["sender_stalls"] = len(stalls)
        out["sender_stalled_s"] = round(sum(s for _, s in stalls), 3)

    def due_s(q):  # when packet q was due, from the start (the sender's stalls shift it)
        return q / snd["pps"] + sum(s for at, s in stalls if at <= q)

    if gaps:
        wall = snd.get("start_wall")
        out["gaps"] = [
            {
                "from": a,
                "to": b,
                "at_s": round(due_s(a), 2),
                **({"wall": round(wall + due_s(a), 3)} if wall is not None else {}),
            }
            for a, b in gaps[:8]
        ]
    cut = snd.get("cut")
    if cut:
        out["cut_command_ms"] = round((cut["end"] - cut["start"]) * 1000, 2)
        # Losses from the cut on (a few packets in flight when it struck may be lost too).
        around = [q for q in lost if q >= cut["seq_before"] - 50]
        out["lost_at_cut"] = len(around)
        if around:
            first, last = around[0], around[-1]
            after = [q for q in range(last + 1, sent) if q in seen]
            before = [q for q in range(first - 1, -1, -1) if q in seen]
            if after:
                t_after = seen[after[0]]
                out["failover_ms"] = round((t_after[1] - cut["start"]) * 1000, 1)
                if before:
                    # Sending time from the last packet delivered before the gap to the first
                    # after it: how long the application saw nothing.
                    out["outage_ms"] = round((t_after[0] - seen[before[0]][0]) * 1000, 1)
            out["lost_contiguous"] = last - first + 1 == len(around)
        else:
            out["failover_ms"] = 0.0
            out["outage_ms"] = 0.0
    json.dump(out, sys.stdout)
    print()


def main(argv):
    if len(argv) >= 4 and argv[0] == "recv":
        recv(int(argv[1]), float(argv[2]), argv[3])
    elif len(argv) >= 5 and argv[0] == "send":
        at, cmd = None, None
        if len(argv) >= 7 and argv[5] == "--at":
            at, cmd = float(argv[6]), " ".join(argv[7:])
        send(argv[1], int(argv[2]), float(argv[3]), float(argv[4]), at, cmd)
    elif len(argv) in (3, 4) and argv[0] == "analyze":
        analyze(argv[1], argv[2], int(argv[3]) if len(argv) == 4 else None)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
