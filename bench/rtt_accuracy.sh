#!/usr/bin/env bash
# RTT accuracy against the wire: a SIPp UAS answers every OPTIONS after PAUSE ms
# (bench/sipp/options_pause.xml); tcpdump captures the loopback with nanosecond
# timestamps while trunkprobe ping (RATE/s, paired with the capture by Call-ID via
# --show-call-id), SIPp as UAC (RATE/s, its -trace_rtt response times, quantile-matched:
# SIPp does not say which call a time belongs to) and sipsak (one process per request,
# SIPSAK_N sequential requests, paired by Call-ID) probe it. Prints the error of the
# reported RTT against the capture's request-to-response time, in microseconds.
# Needs tcpdump (apt-get install tcpdump; bench only, not CI) and root.
#
#   bash bench/rtt_accuracy.sh               # N=5000 at RATE=1000/s, PAUSE=20 ms, SIPSAK_N=300
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RATE=${RATE:-1000}
PAUSE=${PAUSE:-20}
SIPSAK_N=${SIPSAK_N:-300}
command -v tcpdump >/dev/null || apt-get install -y tcpdump >/dev/null
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d); [ -z "${KEEP:-}" ] || echo "work dir: $WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UAS=$(free_port)
sed "s/@@PAUSE@@/$PAUSE/" bench/sipp/options_pause.xml >"$WORK/uas.xml"
sipp -sf "$WORK/uas.xml" -i 127.0.0.1 -p "$UAS" -t u1 -nostdin \
     -deadcall_wait 0 -buff_size 4194304 >"$WORK/uas.log" 2>&1 &
PIDS+=($!)
sleep 1

capture() { # NAME: starts tcpdump, leaves its pid in CAP
  tcpdump -i lo -nn -s 2048 -B 16384 --immediate-mode -U --time-stamp-precision=nano -w "$WORK/$1.pcap" "udp port $UAS" 2>"$WORK/$1.tcpdump" &
  CAP=$!
  until grep -q listening "$WORK/$1.tcpdump" 2>/dev/null; do sleep 0.05; done
}
stop_capture() { sleep 0.5; kill -INT "$CAP"; wait "$CAP" 2>/dev/null || true; }
trap 'kill "${CAP:-}" 2>/dev/null || true; cleanup' EXIT
INTERVAL=$(awk -v r="$RATE" 'BEGIN{printf "%.6f", 1/r}')

capture tp
"$BIN" ping -c "$N" -i "$INTERVAL" --concurrency 256 --show-call-id "sip:127.0.0.1:$UAS" >"$WORK/tp.out" || true
stop_capture
grep -oE 'time=[0-9.]+ ms.*call-id=[^ ]+' "$WORK/tp.out" |
  sed -E 's/time=([0-9.]+) ms.*call-id=([^ ]+)/\2 \1/' >"$WORK/tp.rep"
ACHIEVED=$(grep -oE 'rate [0-9.]+/s' "$WORK/tp.out")

capture sipp
(cd "$WORK" && sipp "127.0.0.1:$UAS" -sf "$OLDPWD/bench/sipp/options_uac.xml" -t u1 -m "$N" -r "$RATE" -l 256 \
   -nostdin -trace_rtt -rtt_freq 1 >/dev/null 2>&1) || true
stop_capture
tail -n +2 "$WORK"/options_uac_*_rtt.csv | awk -F';' '{print $2}' >"$WORK/sipp.rep"

capture sipsak
for _ in $(seq "$SIPSAK_N"); do
  sipsak -vvv -s "sip:127.0.0.1:$UAS" 2>&1 | awk '{sub(/\r$/, "")} /^Call-ID:/ && !id {id=$2} /reply received after/ {ms=$5} END {if (id && ms) print id, ms}'
done >"$WORK/sipsak.rep"
stop_capture

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/rtt-accuracy-$(date -u +%Y%m%d-%H%M).md
{
  echo "# RTT accuracy against a loopback capture ($DATE)"
  echo
  echo "Machine: $(nproc) cores, $(uname -r); shared with other work. UAS: SIPp answering after $PAUSE ms."
  echo "Command: \`N=$N RATE=$RATE PAUSE=$PAUSE SIPSAK_N=$SIPSAK_N bash bench/rtt_accuracy.sh\`; trunkprobe achieved $ACHIEVED."
  echo
  echo "Error = reported RTT − capture's request→response time, in µs."
  echo
  echo "| client | pairing | transactions | mean | median | median abs | p99 abs | max abs |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for c in tp:trunkprobe:paired sipp:SIPp:quantiles sipsak:sipsak:paired; do
    IFS=: read -r k name mode <<<"$c"
    python3 bench/pcap_rtt.py wire "$WORK/$k.pcap" "$UAS" >"$WORK/$k.wire"
    read -r n mean med amed a99 amax < <(python3 bench/pcap_rtt.py compare "$WORK/$k.wire" "$WORK/$k.rep" "$mode")
    echo "| $name | $mode | $n | $mean | $med | $amed | $a99 | $amax |"
  done
  echo
  echo "trunkprobe and sipsak are paired per transaction by Call-ID (ping --show-call-id, sipsak -vvv);"
  echo "SIPp's -trace_rtt does not name the call, so its sorted times are matched against the sorted wire times."
} | tee "$OUT"
echo "written to $OUT"
