#!/usr/bin/env bash
# Test calls side by side in one run: C concurrent 10 s calls with RTP both ways,
#   trunkprobe: C `trunkprobe call` processes at once (each one call, its own RTP);
#   SIPp:       one SIPp UAC placing the same C calls (bench/sipp/call_uac_rtp.xml,
#               rtp_stream of a G.711 tone),
# both against the same SIPp UAS with -rtp_echo (tests/peers/sipp/invite_answer_echo.xml)
# on loopback. Prints a markdown table (calls answered, CPU seconds per call, peak RSS,
# RTP send pacing: |gap - 20 ms| mean/p50/p99/max from a tcpdump capture of what reached
# the UAS's media port) and the trunkprobe/SIPp ratios, and writes them to bench/results/.
# Not run by CI: only the ratios measured in the same run mean much on a shared machine.
#
#   bash bench/calls.sh                 # C=50 calls of D=10 s
#   C=20 D=5 bash bench/calls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-50}
D=${D:-10}
bash .ci/install-peers >/dev/null
command -v tcpdump >/dev/null || apt-get install -y tcpdump >/dev/null
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the carrier ---------------------------------------------------------------------
UAS=$(free_port); UAS_MEDIA=$(free_port)
sipp -sf tests/peers/sipp/invite_answer_echo.xml -i 127.0.0.1 -p "$UAS" -mi 127.0.0.1 \
     -mp "$UAS_MEDIA" -rtp_echo -nostdin -aa -buff_size 4194304 >"$WORK/uas.log" 2>&1 &
PIDS+=($!)
sleep 1

# --- the G.711 tone SIPp streams (WAVE_FORMAT_MULAW, 8 kHz mono) ------------------------
python3 - "$WORK/tone.wav" "$((D + 2))" <<'PY'
import math, struct, sys
def ulaw(s):
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), 32635) + 0x84
    exp, mask = 7, 0x4000
    while exp > 0 and not (s & mask):
        exp -= 1; mask >>= 1
    return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF
n = 8000 * int(sys.argv[2])
data = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 1004 * i / 8000))) for i in range(n))
fmt = struct.pack('<HHIIHHH', 7, 1, 8000, 8000, 1, 8, 0)
riff = (b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'fact' + struct.pack('<II', 4, n)
        + b'data' + struct.pack('<I', n) + data)
open(sys.argv[1], 'wb').write(b'RIFF' + struct.pack('<I', len(riff)) + riff)
PY
sed -e "s#@@RTP_FILE@@#$WORK/tone.wav#" -e "s#@@CALL_MS@@#$((D * 1000))#" \
    bench/sipp/call_uac_rtp.xml >"$WORK/uac.xml"

capture() { # file: starts tcpdump on lo for what reaches the UAS media port
  tcpdump -i lo -n -s 96 -B 32768 -w "$1" "udp and dst port $UAS_MEDIA" >"$1.log" 2>&1 &
  CAP=$!
  sleep 1
}
stop_capture() { sleep 1; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; }

# --- trunkprobe: C call processes at once ----------------------------------------------
capture "$WORK/tp.pcap"
for i in $(seq 1 "$C"); do
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/tp-$i.time" \
    "$BIN" call --gateway "127.0.0.1:$UAS" --to "$((1000 + i))" --duration "${D}s" \
    --max-duration "$((D * 3))s" --format json >"$WORK/tp-$i.json" 2>"$WORK/tp-$i.err" &
done
wait_calls() { for i in $(seq 1 "$C"); do while [ ! -s "$WORK/tp-$i.time" ]; do sleep 0.2; done; done; }
wait_calls
stop_capture
TP_OK=$(grep -l '"verdict": "two_way_audio"' "$WORK"/tp-*.json | wc -l)
TP_CPU=$(cat "$WORK"/tp-*.time | awk -v c="$C" '{ s += $2 + $3 } END { printf "%.4f", s / c }')
TP_RSS=$(cat "$WORK"/tp-*.time | awk '{ if ($4 > m) m = $4; s += $4 } END { printf "%.1f %.1f", m / 1024, s / 1024 }')
TP_PACE=$(python3 bench/rtp_pacing.py "$WORK/tp.pcap" "$UAS_MEDIA")

# --- SIPp: one UAC placing the same C calls --------------------------------------------
UAC=$(free_port); UAC_MEDIA=$(free_port)
capture "$WORK/sipp.pcap"
/usr/bin/time -f "%e %U %S %M" -o "$WORK/sipp.time" \
  sipp -sf "$WORK/uac.xml" -i 127.0.0.1 -p "$UAC" -mi 127.0.0.1 -mp "$UAC_MEDIA" \
  -m "$C" -l "$C" -r "$C" -rp 1000 -nostdin -trace_stat -stf "$WORK/uac.csv" \
  "127.0.0.1:$UAS" >"$WORK/uac.log" 2>&1 || true
stop_capture
SIPP_OK=$(grep -a "Successful call" "$WORK/uac.log" | tail -1 | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
SIPP_CPU=$(awk -v c="$C" '{ printf "%.4f", ($2 + $3) / c }' "$WORK/sipp.time")
SIPP_RSS=$(awk '{ printf "%.1f", $4 / 1024 }' "$WORK/sipp.time")
SIPP_PACE=$(python3 bench/rtp_pacing.py "$WORK/sipp.pcap" "$UAS_MEDIA")

# --- report ------------------------------------------------------------------------------
field() { echo "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
STAMP=$(date -u +%Y%m%d-%H%M)
OUT="bench/results/calls-$STAMP.md"
{
  echo "# Test calls: trunkprobe call vs SIPp UAC ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r))"
  echo
  echo "$C concurrent calls of $D s, RTP both ways, to one SIPp UAS with -rtp_echo on loopback."
  echo "Pacing: |gap between consecutive RTP packets of one call - 20 ms|, at the UAS, in ms."
  echo
  echo "| caller | answered | CPU s/call | peak RSS MiB (one process) | RSS MiB (all) | streams | pacing mean | p50 | p99 | max |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  echo "| trunkprobe call × $C | $TP_OK/$C | $TP_CPU | ${TP_RSS% *} | ${TP_RSS#* } | $(field "$TP_PACE" streams) | $(field "$TP_PACE" mean) | $(field "$TP_PACE" p50) | $(field "$TP_PACE" p99) | $(field "$TP_PACE" max) |"
  echo "| SIPp UAC (one process) | $SIPP_OK/$C | $SIPP_CPU | $SIPP_RSS | $SIPP_RSS | $(field "$SIPP_PACE" streams) | $(field "$SIPP_PACE" mean) | $(field "$SIPP_PACE" p50) | $(field "$SIPP_PACE" p99) | $(field "$SIPP_PACE" max) |"
  echo
  awk -v a="$TP_CPU" -v b="$SIPP_CPU" -v p="$(field "$TP_PACE" p99)" -v q="$(field "$SIPP_PACE" p99)" \
    'BEGIN { printf "Ratios trunkprobe/SIPp: CPU per call %.2f×, pacing p99 %.2f×\n", a / b, p / q }'
} | tee "$OUT"
