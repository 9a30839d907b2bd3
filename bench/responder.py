#!/usr/bin/env python3
"""Bench-only UAS: answers every SIP OPTIONS with 200 OK from the very address it was
sent to. Bound to 0.0.0.0:PORT, it stands for any number of gateways spread over
127.0.0.0/8 (IP_PKTINFO gives each request's destination; the reply leaves from it,
so trunkprobe's exact source-address match holds). Not a test peer: SIPp bound to
0.0.0.0 would answer from 127.0.0.1 only.

    python3 bench/responder.py PORT [COUNT_FILE]

With COUNT_FILE, two numbers are written there (at most once a second): the new
transactions answered so far (a Via branch not seen in the last 10 to 20 s) and the
retransmissions answered (a branch seen then). bench/vs_dispatcher.sh counts the probes
each prober really sent with the first: Kamailio retransmits over UDP (Timer A) when a
burst of 10,000 pings outruns this responder, and those are not more probes.
"""
import os
import socket
import struct
import sys
import time

IP_PKTINFO = 8  # linux/in.h; the socket module does not export it
COPY = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")


def answer(req: bytes) -> bytes | None:
    head = req.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    if not head or not head[0].startswith(b"OPTIONS "):
        return None
    out = [b"SIP/2.0 200 OK"]
    for line in head[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in COPY:
            if name in (b"to", b"t") and b"tag=" not in line:
                line += b";tag=bench"
            out.append(line)
    out += [b"Server: trunkprobe-bench-responder", b"Content-Length: 0", b"", b""]
    return b"\r\n".join(out)


def branch(req: bytes) -> bytes:
    """The top Via's branch parameter (b"" without one)."""
    for line in req.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"via", b"v"):
            at = value.find(b"branch=")
            if at < 0:
                return b""
            rest = value[at + 7:]
            for stop in (b";", b",", b" "):
                rest = rest.split(stop, 1)[0]
            return rest
    return b""


def main() -> None:
    port = int(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", port))
    count_file = sys.argv[2] if len(sys.argv) > 2 else None
    answered, retransmitted, written = 0, 0, 0.0
    # Branches seen, in two generations rotated every 10 s: memory stays bounded.
    seen, older, rotated = set(), set(), time.monotonic()
    # Woken at least twice a second, so the counts are current between bursts too.
    s.settimeout(0.5)
    while True:
        try:
            data, anc, _, peer = s.recvmsg(65535, 256)
        except TimeoutError:
            data, anc, peer = b"", [], None
        now = time.monotonic()
        if count_file and now - written >= 1.0 or (peer is None and count_file):
            written = now
            with open(count_file + ".tmp", "w") as f:
                f.write(f"{answered} {retransmitted}\n")
            os.replace(count_file + ".tmp", count_file)
        if peer is None:
            continue
        reply = answer(data)
        if reply is None:
            continue
        b = branch(data)
        if b and (b in seen or b in older):
            retransmitted += 1
        else:
            answered += 1
            seen.add(b)
        if now - rotated >= 10.0:
            older, seen, rotated = seen, set(), now
        cmsg = []
        for level, kind, blob in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                _ifindex, _spec, dst = struct.unpack("I4s4s", blob[:12])
                cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("I4s4s", 0, dst, b"\0" * 4))]
        s.sendmsg([reply], cmsg, 0, peer)


if __name__ == "__main__":
    main()
