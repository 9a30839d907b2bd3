#!/usr/bin/env bash
# Daemon scale: `trunkprobe serve` with 10,000 and 100,000 UDP targets spread over
# 127.0.0.0/8, all answered by one responder bound to 0.0.0.0 (bench/responder.py,
# which replies from each request's own destination address), at qualify_frequency
# FREQ. Measures CPU share (whole run and steady state after the first interval, when
# the jittered first probes are all out), peak RSS, p50/p99 lateness of probes against
# their schedule (trunkprobe_probe_lateness_seconds), /metrics render time and size,
# failed probes, and start-up time: until /-/ready and until the first probe is sent (the
# daemon's "first probe sent" log line; binaries older than that line: its first "target
# up/down" line, i.e. the first answer). Writes bench/results/daemon-scale-*.md.
#
#   bash bench/daemon_scale.sh                       # SIZES="10000 100000" FREQ=60 DURATION=150
#   SIZES=100000 DURATION=400 bash bench/daemon_scale.sh
#   SERVE_ARGS="--rtt-histogram trunk" bash bench/daemon_scale.sh   # extra `serve` flags
#   TRUNKPROBE_BIN=/path/to/trunkprobe bash bench/daemon_scale.sh   # another build, not rebuilt
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000"}
FREQ=${FREQ:-60}
DURATION=${DURATION:-150}
GW_PER_TRUNK=${GW_PER_TRUNK:-4}
SERVE_ARGS=${SERVE_ARGS:-}
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICK" '{print ($14+$15)/t}' "/proc/$1/stat"; }

UAS=$(free_port)
python3 bench/responder.py "$UAS" &
PIDS+=($!)
RESP=$!
sleep 0.5

gen() { # N FILE: N gateways over 127.1.0.0 upwards, GW_PER_TRUNK per trunk
  python3 - "$1" "$2" "$UAS" "$FREQ" "$GW_PER_TRUNK" <<'PY'
import json, sys
n, path, port, freq, per = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
trunks = []
for t in range((n + per - 1) // per):
    gws = []
    for g in range(per):
        i = t * per + g
        if i >= n:
            break
        a = 1 + i // 65024
        b, c = (i % 65024) // 254, 1 + (i % 65024) % 254
        gws.append({"gateway_address": f"127.{a}.{b}.{c}", "port": port, "priority": 1})
    trunks.append({"id": f"bench{t:06d}", "name": f"bench trunk {t}", "provider": "custom",
                   "auth_type": "ip-based", "ip_identifiers": ["127.0.0.0/8"], "gateways": gws,
                   "transport": "transport-udp", "qualify_frequency": freq, "is_active": True})
json.dump(trunks, open(path, "w"))
PY
}

first_probe() { # T0 LOG: seconds from T0 (epoch) to the first probe sent, from the JSON log
  python3 - "$1" "$2" <<'PY'
import json, sys
from datetime import datetime
t0, fallback = float(sys.argv[1]), None
for line in open(sys.argv[2]):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    msg = rec.get("fields", {}).get("message", "")
    at = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp() - t0
    if msg == "first probe sent":
        print(f"{at:.2f}s")
        break
    if fallback is None and msg in ("target up", "target down"):
        fallback = at
else:
    print("?" if fallback is None else f"{fallback:.2f}s(1st-answer)")
PY
}

quantiles() { # histogram-metric-name file: p50 p99 count from cumulative buckets (upper bounds)
  grep "^$1_bucket" "$2" | sed -E 's/.*le="([^"]+)"\} ([0-9.e+]+)/\1 \2/' | awk '
    { le[NR]=$1; c[NR]=$2 } END { n=c[NR]; p50="?"; p99="?";
      for (i=1;i<=NR;i++) { if (p50=="?" && c[i]>=0.5*n) p50=le[i]; if (p99=="?" && c[i]>=0.99*n) p99=le[i] }
      printf "%s %s %d\n", p50, p99, n }'
}

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/daemon-scale-$(date -u +%Y%m%d-%H%M).md
ROWS=()
for N in $SIZES; do
  gen "$N" "$WORK/trunks.json"
  MP=$(free_port)
  T0=$(date +%s.%N)
  # Only OPTIONS are measured: no UDP size ladder, and no origination probe (loopback only).
  "$BIN" serve --trunks "$WORK/trunks.json" --listen "127.0.0.1:$MP" --log-format json \
    --concurrency 256 --mtu-interval 0 --no-origination $SERVE_ARGS 2>"$WORK/serve.log" &
  SERVE=$!
  PIDS+=($SERVE)
  until curl -sf "http://127.0.0.1:$MP/-/ready" >/dev/null 2>&1; do sleep 0.05; done
  READY=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
  RSS_READY=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE/status")
  sleep "$FREQ"
  RSS_INT=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE/status")
  C1=$(cpu_s "$SERVE"); W1=$(date +%s.%N)
  R1=$(cpu_s "$RESP")
  sleep $(( DURATION > FREQ ? DURATION - FREQ : 1 ))
  C2=$(cpu_s "$SERVE"); W2=$(date +%s.%N)
  R2=$(cpu_s "$RESP")
  TOTAL_CPU=$C2
  WALL=$(awk -v a="$T0" -v b="$W2" 'BEGIN{print b-a}')
  HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE/status")
  BEST=999; SIZE=0
  # Timed with the body discarded, as a scraper holds it in memory: writing 150-400 MB
  # to a file took the client ~100 ms more. One more fetch is kept for the analysis.
  for i in 1 2 3; do
    read -r t s < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$MP/metrics")
    BEST=$(awk -v a="$BEST" -v b="$t" 'BEGIN{print (b<a)?b:a}'); SIZE=$s
  done
  curl -s -o "$WORK/metrics.txt" "http://127.0.0.1:$MP/metrics"
  HWM_SCRAPED=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE/status")
  read -r P50 P99 COUNT < <(quantiles trunkprobe_probe_lateness_seconds "$WORK/metrics.txt")
  read -r OK BAD < <(grep '^trunkprobe_options_probes_total' "$WORK/metrics.txt" |
    awk '/outcome="ok"/ {ok+=$NF; next} {bad+=$NF} END {printf "%d %d\n", ok, bad}')
  kill "$SERVE"; wait "$SERVE" 2>/dev/null || true
  FIRST=$(first_probe "$T0" "$WORK/serve.log")
  ROWS+=("$(awk -v n="$N" -v r="$READY" -v first="$FIRST" -v c1="$C1" -v c2="$C2" -v w1="$W1" -v w2="$W2" -v tc="$TOTAL_CPU" -v wall="$WALL" \
      -v hwm="$HWM" -v hs="$HWM_SCRAPED" -v rr="$RSS_READY" -v ri="$RSS_INT" -v p50="$P50" -v p99="$P99" -v cnt="$COUNT" -v ok="$OK" -v bad="$BAD" \
      -v mt="$BEST" -v ms="$SIZE" -v r1="$R1" -v r2="$R2" 'BEGIN {
      printf "| %d | %.2f s | %s | %.1f%% | %.1f%% | %.0f | %.0f | %.0f | %.0f | %s / %s | %d / %d | %.0f ms | %.1f MB | %.1f%% |",
        n, r, first, 100*tc/wall, 100*(c2-c1)/(w2-w1), rr/1024, ri/1024, hwm/1024, hs/1024, p50*1000 " ms", p99*1000 " ms", ok, bad, mt*1000, ms/1e6, 100*(r2-r1)/(w2-w1) }')")
done
{
  echo "# Daemon scale ($DATE)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); shared with other work."
  echo "Binary: $BIN"
  echo "Command: \`SIZES=\"$SIZES\" FREQ=$FREQ DURATION=$DURATION GW_PER_TRUNK=$GW_PER_TRUNK SERVE_ARGS=\"$SERVE_ARGS\" bash bench/daemon_scale.sh\`"
  echo "(\`serve --trunks FILE --concurrency 256 --mtu-interval 0 --no-origination $SERVE_ARGS\`, UDP targets 127.x.y.z answered by bench/responder.py)."
  echo
  echo "| targets | start-up to ready | start-up to 1st probe sent | CPU (whole run) | CPU (steady, after 1st interval) | RSS at ready MiB | RSS after 1st interval MiB | peak RSS MiB | peak RSS after 4 scrapes MiB | lateness p50 / p99 (bucket bound) | probes ok / not ok | /metrics best of 3 | /metrics size | responder CPU |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo
  echo "RSS after the 1st interval: every target probed once (its series exist); at ready they may not be."
  echo "CPU is a share of one core. Lateness: start of each probe (after its --concurrency slot) minus its"
  echo "scheduled time, from the trunkprobe_probe_lateness_seconds histogram; the value shown is the upper"
  echo "bound of the bucket holding the quantile."
} | tee "$OUT"
echo "written to $OUT"
