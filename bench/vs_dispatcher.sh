#!/usr/bin/env bash
# trunkprobe serve next to Kamailio's dispatcher module (ds_probing_mode=1,
# ds_ping_interval=FREQ), one after the other on this machine, pinging the same N UDP
# destinations spread over 127.0.0.0/8, all answered by one responder bound to 0.0.0.0
# (bench/responder.py, which replies from each request's own destination address and
# counts what it answered). Per prober: CPU (steady, after the first interval, % of one
# core; Kamailio: all its processes), peak memory (trunkprobe VmHWM; Kamailio the sum of
# its processes' PSS at their largest, its shared memory counted once), OPTIONS per
# second counted at the responder, and trunkprobe's p99 lateness. Then the ratios
# trunkprobe/Kamailio. Writes bench/results/vs-dispatcher-*.md.
#
#   bash bench/vs_dispatcher.sh                  # SIZES="10000 100000" FREQ=60 DURATION=150
#   SIZES=10000 DURATION=120 bash bench/vs_dispatcher.sh
#   TRUNKPROBE_BIN=/path/to/trunkprobe bash bench/vs_dispatcher.sh
#
# TLS destinations are not in this script yet (see the README's Performance section).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000"}
FREQ=${FREQ:-60}
DURATION=${DURATION:-150}
. bench/common.sh
BIN=$(trunkprobe_bin)
KAMAILIO=${KAMAILIO:-kamailio}
MPATH=${MPATH:-/usr/lib/x86_64-linux-gnu/kamailio/modules}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$WORK/kamailio.cfg" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TICK=$(getconf CLK_TCK)
# CPU seconds of a set of pids (user + system).
cpu_s() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk -v t="$TICK" '{s+=$14+$15} END {print s/t}'; }
# PSS of a set of pids, KiB (shared memory counted once across them).
pss_kb() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s+=$1} END {print s+0}'; }
# New transactions answered so far, and retransmissions answered (bench/responder.py).
answered() { awk '{print $1}' "$WORK/count" 2>/dev/null || echo 0; }
retransmitted() { awk '{print $2}' "$WORK/count" 2>/dev/null || echo 0; }

UAS=$(free_port)
python3 bench/responder.py "$UAS" "$WORK/count" &
PIDS+=($!)
sleep 0.5

addr() { # i -> 127.a.b.c, as bench/daemon_scale.sh spreads them
  awk -v i="$1" 'BEGIN { a=1+int(i/65024); r=i%65024; printf "127.%d.%d.%d", a, int(r/254), 1+r%254 }'
}
gen() { # N: trunks.json for trunkprobe, dispatcher.list for Kamailio, same destinations
  python3 - "$1" "$WORK" "$UAS" "$FREQ" <<'PY'
import json, sys
n, work, port, freq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
trunks, lines = [], []
for t in range((n + 3) // 4):
    gws = []
    for i in range(t * 4, min(n, t * 4 + 4)):
        a = 1 + i // 65024
        b, c = (i % 65024) // 254, 1 + (i % 65024) % 254
        gws.append({"gateway_address": f"127.{a}.{b}.{c}", "port": port, "priority": 1})
        lines.append(f"1 sip:127.{a}.{b}.{c}:{port}")
    trunks.append({"id": f"bench{t:06d}", "name": f"bench trunk {t}", "auth_type": "ip-based",
                   "ip_identifiers": ["127.0.0.0/8"], "gateways": gws,
                   "transport": "transport-udp", "qualify_frequency": freq, "is_active": True})
json.dump(trunks, open(f"{work}/trunks.json", "w"))
open(f"{work}/dispatcher.list", "w").write("\n".join(lines) + "\n")
PY
}

kamailio_cfg() { # N PORT
  cat >"$WORK/kamailio.cfg" <<CFG
#!KAMAILIO
debug=0
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:$2
mpath="$MPATH"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "$WORK/dispatcher.list")
modparam("dispatcher", "ds_ping_interval", $FREQ)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:dispatcher@127.0.0.1")
request_route {
  sl_send_reply("404", "Not here");
}
CFG
}

# Measures one prober whose processes are "$@" (re-read with PIDS_OF) over whole intervals,
# from half an interval after its first one ends: Kamailio pings all destinations in one
# burst per interval, so a window of k intervals that starts and ends between bursts holds
# exactly k of them (a window of 1.5 intervals held one or two, and its rate was off by a
# third). cpu%, probes/s at the responder, peak memory (max over 1 s samples of MEM_OF).
measure() {
  sleep $(( FREQ + FREQ / 2 ))
  local c1 w1 n1 r1 c2 w2 n2 r2 peak=0 m t_end k
  k=$(( (DURATION - FREQ - FREQ / 2) / FREQ )); [ "$k" -ge 1 ] || k=1
  c1=$(cpu_s $($PIDS_OF)); w1=$(date +%s.%N); n1=$(answered); r1=$(retransmitted)
  t_end=$(( $(date +%s) + k * FREQ ))
  while [ "$(date +%s)" -lt "$t_end" ]; do
    m=$($MEM_OF); [ "$m" -gt "$peak" ] && peak=$m
    sleep 1
  done
  c2=$(cpu_s $($PIDS_OF)); w2=$(date +%s.%N); n2=$(answered); r2=$(retransmitted)
  awk -v c1="$c1" -v c2="$c2" -v w1="$w1" -v w2="$w2" -v n1="$n1" -v n2="$n2" -v peak="$peak" \
    -v r1="$r1" -v r2="$r2" \
    'BEGIN { printf "%.2f %.1f %.1f %.1f\n", 100*(c2-c1)/(w2-w1), (n2-n1)/(w2-w1), peak/1024, (r2-r1)/(w2-w1) }'
}

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/vs-dispatcher-$(date -u +%Y%m%d-%H%M).md
ROWS=()
for N in $SIZES; do
  gen "$N"
  # trunkprobe serve: only OPTIONS (no ladder, no origination), its own histogram of lateness.
  MP=$(free_port)
  "$BIN" serve --trunks "$WORK/trunks.json" --listen "127.0.0.1:$MP" --log-format json \
    --concurrency 256 --mtu-interval 0 --no-origination --history-limit 0 2>"$WORK/serve.log" &
  SERVE=$!
  PIDS+=($SERVE)
  until curl -sf "http://127.0.0.1:$MP/-/ready" >/dev/null 2>&1; do sleep 0.05; done
  tp_pids() { echo "$SERVE"; }
  tp_mem() { awk '/VmHWM/ {print $2}' "/proc/$SERVE/status"; }
  PIDS_OF=tp_pids
  MEM_OF=tp_mem
  read -r TP_CPU TP_RATE TP_MEM TP_RETX < <(measure)
  curl -s -o "$WORK/metrics.txt" "http://127.0.0.1:$MP/metrics"
  TP_P99=$(grep '^trunkprobe_probe_lateness_seconds_bucket' "$WORK/metrics.txt" |
    sed -E 's/.*le="([^"]+)"\} ([0-9.e+]+)/\1 \2/' |
    awk '{ le[NR]=$1; c[NR]=$2 } END { for (i=1;i<=NR;i++) if (c[i]>=0.99*c[NR]) { print le[i]*1000 " ms"; exit } }')
  kill "$SERVE"; wait "$SERVE" 2>/dev/null || true

  # Kamailio's dispatcher: the same destinations in its list file, the same interval.
  KP=$(free_port)
  kamailio_cfg "$N" "$KP"
  SHM=$(( 64 + N / 200 ))
  mkdir -p "$WORK/run"
  "$KAMAILIO" -f "$WORK/kamailio.cfg" -DD -E -Y "$WORK/run" -P "$WORK/kamailio.pid" \
    -m "$SHM" -M 16 2>"$WORK/kamailio.log" &
  KAM=$!
  PIDS+=($KAM)
  sleep 2
  kids() { echo "$KAM $(pgrep -P "$KAM" | tr '\n' ' ')"; }
  kam_mem() { pss_kb $(kids); }
  PIDS_OF=kids
  MEM_OF=kam_mem
  read -r KA_CPU KA_RATE KA_MEM KA_RETX < <(measure)
  kill "$KAM"; wait "$KAM" 2>/dev/null || true

  ROWS+=("$(awk -v n="$N" -v tc="$TP_CPU" -v kc="$KA_CPU" -v tr="$TP_RATE" -v kr="$KA_RATE" -v tm="$TP_MEM" -v km="$KA_MEM" -v p99="$TP_P99" -v f="$FREQ" -v tx="$TP_RETX" -v kx="$KA_RETX" 'BEGIN {
    printf "| %d | %.2f%% | %.2f%% | %.2f | %.1f | %.1f | %.0f | %.1f / %.1f | %.1f | %.1f | %.2f | %s | %.2f / %.2f |",
      n, tc, kc, (kc>0)?tc/kc:0, tr, kr, n/f, tx, kx, tm, km, (km>0)?tm/km:0, p99, tm*1024/n, km*1024/n }')")
done
{
  echo "# trunkprobe serve vs Kamailio dispatcher ($DATE)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); shared with other work."
  echo "trunkprobe: $BIN; Kamailio: $("$KAMAILIO" -v 2>/dev/null | head -1)"
  echo "Command: \`SIZES=\"$SIZES\" FREQ=$FREQ DURATION=$DURATION bash bench/vs_dispatcher.sh\`"
  echo
  echo "| UDP destinations | trunkprobe CPU | Kamailio CPU | CPU ratio | trunkprobe OPTIONS/s | Kamailio OPTIONS/s | expected/s | retransmissions/s (trunkprobe / Kamailio) | trunkprobe peak MiB | Kamailio peak MiB | memory ratio | trunkprobe p99 lateness | KiB per destination (trunkprobe / Kamailio) |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo
  echo "CPU: share of one core over whole intervals, from 1.5 intervals after start (Kamailio: all its"
  echo "processes). OPTIONS/s: new transactions answered by the responder in that window (retransmissions,"
  echo "counted apart, are the same probes sent again). Memory: trunkprobe's VmHWM; Kamailio's"
  echo "largest sum of PSS over its processes (its shared memory counted once). Kamailio pings every"
  echo "destination at once each interval (its dispatcher timer); trunkprobe spreads them (jittered,"
  echo "on a 20 ms grid). Kamailio's lateness is not measurable from outside."
} | tee "$OUT"
echo "written to $OUT"
