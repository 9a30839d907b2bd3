#!/usr/bin/env python3
"""RTP send pacing from a tcpdump capture (bench/calls.sh).

Reads a classic pcap of UDP datagrams (Ethernet, Linux cooked or raw IP link
types), groups the RTP packets sent to DST_PORT by source address and SSRC:
one stream per call (SIPp's rtp_stream sends every call from one port). For each stream, the gaps between consecutive packets;
prints one line: streams, packets, and the mean, p50, p99 and max of
|gap - 20 ms| in ms.

    python3 bench/rtp_pacing.py capture.pcap DST_PORT
"""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, caplen, _ = struct.unpack(endian + "IIII", rec)
            data = f.read(caplen)
            t = sec + frac / (1e9 if nano else 1e6)
            if linktype == 1:  # Ethernet
                ip = data[14:]
            elif linktype == 113:  # Linux cooked
                ip = data[16:]
            else:  # raw IP
                ip = data
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            src = ".".join(str(b) for b in ip[12:16])
            sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            rtp = ip[ihl + 8:]
            if len(rtp) < 12 or rtp[0] >> 6 != 2:
                continue
            ssrc = struct.unpack(">I", rtp[8:12])[0]
            yield t, (src, sport, ssrc), dport


def main():
    path, dst = sys.argv[1], int(sys.argv[2])
    streams = {}
    for t, src, dport in packets(path):
        if dport == dst:
            streams.setdefault(src, []).append(t)
    dev = []
    count = 0
    for times in streams.values():
        count += len(times)
        for a, b in zip(times, times[1:]):
            dev.append(abs((b - a) * 1000.0 - 20.0))
    if not dev:
        print("streams 0 packets 0")
        return
    dev.sort()
    pick = lambda q: dev[min(len(dev) - 1, int(q * len(dev)))]
    print(
        f"streams {len(streams)} packets {count} mean {sum(dev)/len(dev):.3f} "
        f"p50 {pick(0.5):.3f} p99 {pick(0.99):.3f} max {dev[-1]:.3f}"
    )


if __name__ == "__main__":
    main()
