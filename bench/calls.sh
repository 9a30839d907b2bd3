#!/usr/bin/env bash
# Test calls side by side in one run: C concurrent 10 s calls with RTP both ways,
#   trunkprobe: C `trunkprobe call` processes at once (each one call, its own RTP);
#   trunkprobe: one `trunkprobe call --calls C --call-rate C` (the same C calls from
#               one process, started within a second as SIPp's are);
#   SIPp:       one SIPp UAC placing the same C calls (bench/sipp/call_uac_rtp.xml,
#               rtp_stream of a G.711 tone),
# the last two alternating for ROUNDS (default 3) rounds, each round in the table and the
# ratio taken of the medians; all against the same SIPp UAS with -rtp_echo (tests/peers/sipp/invite_answer_echo.xml)
# on loopback. Prints a markdown table (calls answered, CPU seconds per call, peak RSS,
# RTP send pacing: |gap - 20 ms| mean/p50/p99/max from a tcpdump capture of what reached
# the UAS's media port) and the trunkprobe/SIPp ratios, and writes them to bench/results/.
# Not run by CI: only the ratios measured in the same run mean much on a shared machine.
#
#   bash bench/calls.sh                 # C=50 calls of D=10 s
#   C=20 D=5 ROUNDS=5 bash bench/calls.sh
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

# --- one process each, R interleaved rounds: trunkprobe --calls C, then SIPp's UAC ------
# A shared machine moves both sides from run to run; alternating them and reporting every
# round (and the median) keeps the comparison within the same minutes.
one_round() { # round
  local r=$1
  capture "$WORK/one-$r.pcap"
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/one-$r.time" \
    "$BIN" call --gateway "127.0.0.1:$UAS" --to 1000 --calls "$C" --call-rate "$C" \
    --duration "${D}s" --max-duration "$((D * 3))s" --format json >"$WORK/one-$r.json" \
    2>"$WORK/one-$r.err" || true
  stop_capture
  ONE_OK[$r]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["verdicts"].get("two_way_audio", 0))' "$WORK/one-$r.json")
  ONE_CPU[$r]=$(awk -v c="$C" '{ printf "%.4f", ($2 + $3) / c }' "$WORK/one-$r.time")
  ONE_RSS[$r]=$(awk '{ printf "%.1f", $4 / 1024 }' "$WORK/one-$r.time")
  ONE_PACE[$r]=$(python3 bench/rtp_pacing.py "$WORK/one-$r.pcap" "$UAS_MEDIA")

  local uac uac_media
  uac=$(free_port); uac_media=$(free_port)
  capture "$WORK/sipp-$r.pcap"
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/sipp-$r.time" \
    sipp -sf "$WORK/uac.xml" -i 127.0.0.1 -p "$uac" -mi 127.0.0.1 -mp "$uac_media" \
    -m "$C" -l "$C" -r "$C" -rp 1000 -nostdin -trace_stat -stf "$WORK/uac-$r.csv" \
    "127.0.0.1:$UAS" >"$WORK/uac-$r.log" 2>&1 || true
  stop_capture
  SIPP_OK[$r]=$(grep -a "Successful call" "$WORK/uac-$r.log" | tail -1 | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
  SIPP_CPU[$r]=$(awk -v c="$C" '{ printf "%.4f", ($2 + $3) / c }' "$WORK/sipp-$r.time")
  SIPP_RSS[$r]=$(awk '{ printf "%.1f", $4 / 1024 }' "$WORK/sipp-$r.time")
  SIPP_PACE[$r]=$(python3 bench/rtp_pacing.py "$WORK/sipp-$r.pcap" "$UAS_MEDIA")
}
ROUNDS=${ROUNDS:-3}
declare -a ONE_OK ONE_CPU ONE_RSS ONE_PACE SIPP_OK SIPP_CPU SIPP_RSS SIPP_PACE
for r in $(seq 1 "$ROUNDS"); do one_round "$r"; done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

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
  for r in $(seq 1 "$ROUNDS"); do
    p=${ONE_PACE[$r]}; q=${SIPP_PACE[$r]}
    echo "| trunkprobe call --calls $C (one process), round $r | ${ONE_OK[$r]}/$C | ${ONE_CPU[$r]} | ${ONE_RSS[$r]} | ${ONE_RSS[$r]} | $(field "$p" streams) | $(field "$p" mean) | $(field "$p" p50) | $(field "$p" p99) | $(field "$p" max) |"
    echo "| SIPp UAC (one process), round $r | ${SIPP_OK[$r]}/$C | ${SIPP_CPU[$r]} | ${SIPP_RSS[$r]} | ${SIPP_RSS[$r]} | $(field "$q" streams) | $(field "$q" mean) | $(field "$q" p50) | $(field "$q" p99) | $(field "$q" max) |"
  done
  echo
  ONE_MED=$(median "${ONE_CPU[@]}"); SIPP_MED=$(median "${SIPP_CPU[@]}")
  ONE_P99=$(for p in "${ONE_PACE[@]}"; do field "$p" p99; done); ONE_P99=$(median $ONE_P99)
  SIPP_P99=$(for p in "${SIPP_PACE[@]}"; do field "$p" p99; done); SIPP_P99=$(median $SIPP_P99)
  echo
  awk -v a="$TP_CPU" -v b="$SIPP_MED" \
    'BEGIN { printf "Ratio trunkprobe/SIPp, a process per call: CPU per call %.2f× (SIPp: its median)\n", a / b }'
  echo
  awk -v a="$ONE_MED" -v b="$SIPP_MED" -v p="$ONE_P99" -v q="$SIPP_P99" -v ra="${ONE_RSS[1]}" -v rb="${SIPP_RSS[1]}" \
    'BEGIN { printf "Ratios trunkprobe/SIPp, one process, medians of the rounds: CPU per call %.4f / %.4f = %.2f×, pacing p99 %.3f / %.3f ms, peak RSS %.2f×\n", a, b, a / b, p, q, ra / rb }'
} | tee "$OUT"
