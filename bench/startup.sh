#!/usr/bin/env bash
# Start-up of a one-shot probe, side by side in one run: the whole process of
# `trunkprobe ping -c 1`, `sipsak -s` and SIPp as UAC with `-m 1`, each sending one
# OPTIONS over loopback UDP to the same SIPp UAS and exiting on its 200. Runs are
# interleaved (R rounds, one run of each client per round) so a noisy neighbour
# slows all three alike. Prints a markdown table (median, min and p90 wall time,
# median peak RSS) and writes it to bench/results/. Not run by CI.
#
#   bash bench/startup.sh          # R=30 rounds
#   R=100 bash bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
R=${R:-30}
bash .ci/install-peers >/dev/null
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d)
UAS_PID=
cleanup() { [ -n "$UAS_PID" ] && kill "$UAS_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sipp -sf tests/peers/sipp/options_200.xml -i 127.0.0.1 -p "$PORT" -t u1 -nostdin \
     -deadcall_wait 0 >"$WORK/uas.log" 2>&1 &
UAS_PID=$!
sleep 1

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/startup-$(date -u +%Y%m%d-%H%M).md
python3 - "$R" "$BIN" "$PORT" "$WORK" "$DATE" <<'EOF' | tee "$OUT"
import os, platform, statistics, subprocess, sys, time

rounds, binary, port, work, date = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
uri = f"sip:127.0.0.1:{port}"
clients = {
    "trunkprobe ping -c 1": [binary, "ping", "-c", "1", "--timeout", "2s", uri],
    "sipsak -s": ["sipsak", "-s", uri],
    "SIPp UAC -m 1": ["sipp", f"127.0.0.1:{port}", "-sf", "bench/sipp/options_uac.xml",
                      "-t", "u1", "-m", "1", "-nostdin", "-timeout", "2s"],
}
walls = {name: [] for name in clients}
rss = {name: [] for name in clients}
failed = {name: 0 for name in clients}
timefile = os.path.join(work, "time")
for _ in range(rounds):
    for name, cmd in clients.items():
        started = time.perf_counter()
        rc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", timefile] + cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=os.getcwd()).returncode
        walls[name].append((time.perf_counter() - started) * 1000)
        if rc != 0:
            failed[name] += 1
        with open(timefile) as f:
            rss[name].append(int(f.read().split()[-1]) / 1024)

def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.9 * len(xs)))]

ref = statistics.median(walls["trunkprobe ping -c 1"])
print(f"# One-shot probe start-up ({date})")
print()
print(f"Machine: {os.cpu_count()} cores, {platform.release()}. Binary: {binary}.")
print(f"Command: `R={rounds} bash bench/startup.sh` ({rounds} interleaved rounds; each run is the")
print("whole process: exec, one OPTIONS over loopback UDP to a SIPp UAS, its 200, exit;")
print("wall time includes `/usr/bin/time`'s fork and exec, the same for every client).")
print()
print("| client | runs | failed | median ms | min ms | p90 ms | median vs trunkprobe | median peak RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in clients:
    w = walls[name]
    m = statistics.median(w)
    print(f"| {name} | {len(w)} | {failed[name]} | {m:.1f} | {min(w):.1f} | {p90(w):.1f} | "
          f"{m / ref:.2f}× | {statistics.median(rss[name]):.1f} |")
EOF
echo "written to $OUT"
