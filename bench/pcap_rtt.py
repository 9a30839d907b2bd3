#!/usr/bin/env python3
"""Wire round trips from a loopback capture, and how far each tool's reported RTT is from them.

    pcap_rtt.py wire CAPTURE.pcap UAS_PORT            -> "call-id wire_ms" per transaction
    pcap_rtt.py compare WIRE.txt REPORTED.txt paired|quantiles -> error distribution (µs)

The wire round trip of a transaction is the first request carrying its Call-ID sent to
UAS_PORT to the first final response with that Call-ID coming back, at the capture's
(nanosecond) timestamps. REPORTED.txt holds "call-id reported_ms" (paired) or just
"reported_ms" per line (quantiles: sorted against sorted wire values, for tools that do
not say which transaction a time belongs to)."""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    link = struct.unpack("<I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack("<IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        l2 = 14 if link == 1 else (16 if link == 113 else 0)
        ip = frame[l2:]
        if not ip or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack(">HH", ip[ihl : ihl + 4])
        yield sec + frac * scale, sport, dport, ip[ihl + 8 :]


def call_id(payload):
    for line in payload.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode(errors="replace")
    return None


def wire(path, port):
    sent, done = {}, {}
    for t, sport, dport, payload in packets(path):
        cid = call_id(payload)
        if cid is None:
            continue
        if dport == port and payload.startswith(b"OPTIONS"):
            sent.setdefault(cid, t)
        elif sport == port and payload.startswith(b"SIP/2.0 ") and payload[8:9] in b"23456":
            done.setdefault(cid, t)
    for cid, t0 in sent.items():
        if cid in done:
            print(cid, f"{(done[cid] - t0) * 1000:.6f}")


def pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))]


def compare(wire_path, rep_path, mode):
    w = dict(l.split() for l in open(wire_path) if l.strip())
    if mode == "paired":
        rep = [l.split() for l in open(rep_path) if len(l.split()) == 2]
        err = [(float(ms) - float(w[cid])) * 1000 for cid, ms in rep if cid in w]
    else:
        r = sorted(float(l.split()[-1]) for l in open(rep_path) if l.strip())
        ws = sorted(float(v) for v in w.values())
        n = min(len(r), len(ws))
        err = [(r[int(i * len(r) / n)] - ws[int(i * len(ws) / n)]) * 1000 for i in range(n)]
    if not err:
        print("0 - - - - -")
        return
    a = sorted(abs(e) for e in err)
    s = sorted(err)
    print(len(err), f"{sum(err) / len(err):.1f}", f"{pct(s, 0.5):.1f}", f"{pct(a, 0.5):.1f}", f"{pct(a, 0.99):.1f}", f"{a[-1]:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "wire":
        wire(sys.argv[2], int(sys.argv[3]))
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
