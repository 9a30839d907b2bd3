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
#   ROUNDS=3 SIZES=10000 TLS_SIZES= bash bench/vs_dispatcher.sh   # 3 alternating rounds, medians
#   TRUNKPROBE_BIN=/path/to/trunkprobe bash bench/vs_dispatcher.sh
#
#
# Then TLS_SIZES (default 10000) TLS destinations, named gwI.bench.test (a dnsmasq started
# here answers them, a wildcard certificate from a CA made here covers them; Kamailio,
# which does not verify, gets the addresses), answered by bench/responder_tls.py, which
# counts TLS handshakes: per prober, handshakes per second in the window next to OPTIONS
# per second. TLS_SIZES= skips them. Debian 12's Kamailio 5.6.3 crashes there at 1,000 TLS
# destinations and more (kamailio#3791, see below); a Kamailio >= 5.8 built apart can run
# that stage alone (its tls_threads_mode = 2 is the fix; the UDP stages keep Debian's):
#
#   TLS_KAMAILIO=/opt/kam58/sbin/kamailio TLS_MPATH=/opt/kam58/modules bash bench/vs_dispatcher.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES-"10000 100000"}
TLS_SIZES=${TLS_SIZES-10000}
FREQ=${FREQ:-60}
DURATION=${DURATION:-150}
# UDP stages: ROUNDS of trunkprobe then Kamailio, each round a row, then the medians.
ROUNDS=${ROUNDS:-1}
. bench/common.sh
BIN=$(trunkprobe_bin)
KAMAILIO=${KAMAILIO:-kamailio}
MPATH=${MPATH:-/usr/lib/x86_64-linux-gnu/kamailio/modules}
TLS_KAMAILIO=${TLS_KAMAILIO:-$KAMAILIO}
TLS_MPATH=${TLS_MPATH:-$MPATH}
# A Kamailio installed under a prefix finds its own libraries (dispatcher.so needs
# libsrdb1.so.1) only through LD_LIBRARY_PATH: <prefix>/lib when it exists.
# A Kamailio that is not there must stop the run here, not give a row of zeros later.
for k in "$KAMAILIO" ${TLS_SIZES:+"$TLS_KAMAILIO"}; do
  command -v "$k" >/dev/null || { echo "vs_dispatcher.sh: no Kamailio at '$k' (KAMAILIO / TLS_KAMAILIO)" >&2; exit 2; }
done
TLS_LD_PATH=${TLS_LD_PATH-$( d="$(dirname "$(command -v "$TLS_KAMAILIO")")/../lib"; [ "$TLS_KAMAILIO" != "$KAMAILIO" ] && [ -d "$d" ] && (cd "$d" && pwd) || true )}
# A Kamailio binary's version (5.6.3), and whether version $1 >= $2.
kamailio_version() { "$1" -v 2>/dev/null | awk '/^version:/ { print $3; exit }'; }
version_at_least() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$WORK/kamailio.cfg" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# SIGTERM, then SIGKILL after 10 s: a Kamailio whose TCP queues are full can take long to exit.
stop() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
TICK=$(getconf CLK_TCK)
# CPU seconds of a set of pids (user + system).
# A process that has exited counts nothing (and fails nothing: pipefail is on).
cpu_s() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done | awk -v t="$TICK" '{s+=$14+$15} END {print s/t}'; }
# PSS of a set of pids, KiB (shared memory counted once across them).
pss_kb() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true; done | awk '{s+=$1} END {print s+0}'; }
# New transactions answered so far, and retransmissions answered (bench/responder.py);
# with COUNT=$WORK/tls-count, OPTIONS answered and TLS handshakes (bench/responder_tls.py).
COUNT=$WORK/count
answered() { awk '{print $1}' "$COUNT" 2>/dev/null || echo 0; }
retransmitted() { awk '{print $2}' "$COUNT" 2>/dev/null || echo 0; }

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

# Kamailio's processes (the one started last, $KAM, and its children) and their memory.
kids() { echo "$KAM $(pgrep -P "$KAM" | tr '\n' ' ' || true)"; }
kam_mem() { pss_kb $(kids); }

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/vs-dispatcher-$(date -u +%Y%m%d-%H%M).md
# The results file, rewritten after every row: a run that fails later keeps what it measured.
report() {
  {
    echo "# trunkprobe serve vs Kamailio dispatcher ($DATE)"
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); shared with other work."
    echo "trunkprobe: $BIN; Kamailio: $("$KAMAILIO" -v 2>/dev/null | head -1)"
    [ "$TLS_KAMAILIO" = "$KAMAILIO" ] || echo "Kamailio for TLS: $TLS_KAMAILIO, $("$TLS_KAMAILIO" -v 2>/dev/null | head -1)"
    tls_env=""
    [ "$TLS_KAMAILIO" = "$KAMAILIO" ] || tls_env="TLS_KAMAILIO=$TLS_KAMAILIO TLS_MPATH=$TLS_MPATH "
    echo "Command: \`${tls_env}ROUNDS=$ROUNDS SIZES=\"$SIZES\" TLS_SIZES=\"$TLS_SIZES\" FREQ=$FREQ DURATION=$DURATION bash bench/vs_dispatcher.sh\`"
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
    echo "on a 250 ms grid). Kamailio's lateness is not measurable from outside."
    if [ "${#TLS_ROWS[@]}" -gt 0 ]; then
      echo
      echo "| TLS destinations | trunkprobe CPU | Kamailio CPU | CPU ratio | trunkprobe OPTIONS/s | Kamailio OPTIONS/s | expected/s | trunkprobe handshakes/s | Kamailio handshakes/s | handshakes per probe (trunkprobe / Kamailio) | trunkprobe peak MiB | Kamailio peak MiB | memory ratio | trunkprobe probes ok | Kamailio processes crashed |"
      echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
      for r in "${TLS_ROWS[@]}"; do echo "$r"; done
      echo
      echo "TLS: both keep one connection per destination (trunkprobe \`--tcp-connections kept\`, Kamailio's"
      echo "TCP connection reuse); handshakes counted by the responder in the same window. trunkprobe verifies"
      echo "each certificate against the bench CA and resolves gwI.bench.test through a local dnsmasq;"
      echo "Kamailio (verify_certificate = no) dials the addresses. Kamailio 5.6.3 runs with one worker of"
      echo "each kind and tcp_async=no: with more, its TLS client corrupts memory under OpenSSL 3 and"
      echo "crashes (kamailio#3791); 5.8 and later run two of each with tls_threads_mode = 2. A crash"
      echo "count above 0 means its row is not a steady state."
    fi
    for n in "${NOTES[@]}"; do echo; echo "$n"; done
  } >"$OUT"
}
ROWS=()
TLS_ROWS=()
NOTES=()
row() { # N-label TP_CPU KA_CPU TP_RATE KA_RATE TP_MEM KA_MEM P99 TP_RETX KA_RETX N
  awk -v l="$1" -v tc="$2" -v kc="$3" -v tr="$4" -v kr="$5" -v tm="$6" -v km="$7" -v p99="$8" -v tx="$9" -v kx="${10}" -v n="${11}" -v f="$FREQ" 'BEGIN {
    printf "| %s | %.2f%% | %.2f%% | %.2f | %.1f | %.1f | %.0f | %.1f / %.1f | %.1f | %.1f | %.2f | %s | %.2f / %.2f |",
      l, tc, kc, (kc>0)?tc/kc:0, tr, kr, n/f, tx, kx, tm, km, (km>0)?tm/km:0, p99, tm*1024/n, km*1024/n }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR]=$1 } END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
for N in $SIZES; do
  gen "$N"
  declare -A M=()
  for R in $(seq "$ROUNDS"); do
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
    read -r TP_CPU TP_RATE TP_MEM TP_RETX < <(measure) || true
    curl -s -o "$WORK/metrics.txt" "http://127.0.0.1:$MP/metrics"
    TP_P99=$(grep '^trunkprobe_probe_lateness_seconds_bucket' "$WORK/metrics.txt" |
      sed -E 's/.*le="([^"]+)"\} ([0-9.e+]+)/\1 \2/' |
      awk '{ le[NR]=$1; c[NR]=$2 } END { for (i=1;i<=NR;i++) if (c[i]>=0.99*c[NR]) { print le[i]*1000 " ms"; exit } }')
    stop "$SERVE"

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
    PIDS_OF=kids
    MEM_OF=kam_mem
    read -r KA_CPU KA_RATE KA_MEM KA_RETX < <(measure) || true
    stop "$KAM"; pkill -9 -f "$WORK/kamailio" 2>/dev/null || true

    LABEL=$N; [ "$ROUNDS" -gt 1 ] && LABEL="$N (round $R of $ROUNDS)"
    ROWS+=("$(row "$LABEL" "$TP_CPU" "$KA_CPU" "$TP_RATE" "$KA_RATE" "$TP_MEM" "$KA_MEM" "$TP_P99" "$TP_RETX" "$KA_RETX" "$N")")
    for v in TP_CPU KA_CPU TP_RATE KA_RATE TP_MEM KA_MEM TP_RETX KA_RETX; do M[$v]+="${!v:-0} "; done
    M[P99]+="${TP_P99%% ms} "
    report
  done
  if [ "$ROUNDS" -gt 1 ]; then
    # Rounds alternate the two probers, so both see the machine's quiet and busy spells;
    # the ratios of the medians are the comparison.
    for v in "${!M[@]}"; do eval "MED_$v=\$(median ${M[$v]})"; done
    ROWS+=("$(row "**$N, median of $ROUNDS**" "$MED_TP_CPU" "$MED_KA_CPU" "$MED_TP_RATE" "$MED_KA_RATE" "$MED_TP_MEM" "$MED_KA_MEM" "$MED_P99 ms" "$MED_TP_RETX" "$MED_KA_RETX" "$N")")
    report
  fi
  unset M
done

# --- TLS: kept connections on both sides, handshakes counted at the responder ---
if [ -n "$TLS_SIZES" ]; then
  # A CA and a wildcard leaf (P-256: the handshakes cost what a carrier's would, not RSA-4096).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -subj "/CN=trunkprobe bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/gw.key" -out "$WORK/gw.csr" -subj "/CN=*.bench.test" 2>/dev/null
  printf 'subjectAltName=DNS:*.bench.test\nbasicConstraints=CA:FALSE\n' >"$WORK/gw.ext"
  openssl x509 -req -in "$WORK/gw.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/gw.ext" -out "$WORK/gw.pem" 2>/dev/null
  TLS_UAS=$(free_port)
  COUNT=$WORK/tls-count
  python3 bench/responder_tls.py "$TLS_UAS" "$WORK/gw.pem" "$WORK/gw.key" "$COUNT" &
  PIDS+=($!)
  # Ready when it accepts (free_port checked UDP; a taken TCP port fails here, not later).
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2).close()" "$TLS_UAS" 2>/dev/null && break
    sleep 0.1
  done
  DNS=$(free_port)
fi
for N in $TLS_SIZES; do
  python3 - "$N" "$WORK" "$TLS_UAS" "$FREQ" <<'PY'
import json, sys
n, work, port, freq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
trunks, lines, hosts = [], [], []
for t in range((n + 3) // 4):
    gws = []
    for i in range(t * 4, min(n, t * 4 + 4)):
        a = 1 + i // 65024
        b, c = (i % 65024) // 254, 1 + (i % 65024) % 254
        gws.append({"gateway_address": f"gw{i}.bench.test", "port": port, "priority": 1})
        lines.append(f"1 sip:127.{a}.{b}.{c}:{port};transport=tls")
        hosts.append(f"127.{a}.{b}.{c} gw{i}.bench.test")
    trunks.append({"id": f"tls{t:06d}", "name": f"bench tls trunk {t}", "auth_type": "ip-based",
                   "ip_identifiers": ["127.0.0.0/8"], "gateways": gws,
                   "transport": "transport-tls", "qualify_frequency": freq, "is_active": True})
json.dump(trunks, open(f"{work}/tls-trunks.json", "w"))
open(f"{work}/tls-dispatcher.list", "w").write("\n".join(lines) + "\n")
open(f"{work}/tls-hosts", "w").write("\n".join(hosts) + "\n")
PY
  cat >"$WORK/dnsmasq.conf" <<DNS
no-resolv
no-hosts
local=/bench.test/
addn-hosts=$WORK/tls-hosts
local-ttl=3600
DNS
  pkill -f "$WORK/dnsmasq.conf" 2>/dev/null || true
  dnsmasq --conf-file="$WORK/dnsmasq.conf" --port="$DNS" --listen-address=127.0.0.1 \
    --bind-interfaces --keep-in-foreground --user=root --pid-file 2>"$WORK/dnsmasq.log" &
  PIDS+=($!)
  sleep 0.5

  MP=$(free_port)
  "$BIN" serve --trunks "$WORK/tls-trunks.json" --listen "127.0.0.1:$MP" --log-format json \
    --dns-server "127.0.0.1:$DNS" --ca-file "$WORK/ca.pem" \
    --concurrency 256 --mtu-interval 0 --no-origination --history-limit 0 2>"$WORK/serve-tls.log" &
  SERVE=$!
  PIDS+=($SERVE)
  until curl -sf "http://127.0.0.1:$MP/-/ready" >/dev/null 2>&1; do sleep 0.05; done
  tp_pids() { echo "$SERVE"; }
  tp_mem() { awk '/VmHWM/ {print $2}' "/proc/$SERVE/status"; }
  PIDS_OF=tp_pids
  MEM_OF=tp_mem
  read -r TP_CPU TP_RATE TP_MEM TP_HS < <(measure) || true
  curl -s -o "$WORK/metrics-tls.txt" "http://127.0.0.1:$MP/metrics"
  TP_OK=$(awk '/^trunkprobe_options_probes_total\{/ && /outcome="ok"/ {s+=$NF} END {print s+0}' "$WORK/metrics-tls.txt")
  TP_ALL=$(awk '/^trunkprobe_options_probes_total\{/ {s+=$NF} END {print s+0}' "$WORK/metrics-tls.txt")
  stop "$SERVE"
  sleep 1

  KP=$(free_port); KTP=$(free_port)
  cat >"$WORK/tls.cfg" <<TLSCFG
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $WORK/gw.key
certificate = $WORK/gw.pem

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
TLSCFG
  TLS_KV=$(kamailio_version "$TLS_KAMAILIO")
  if version_at_least "${TLS_KV:-0}" 5.8; then
    # 5.8 and later: the workers of the UDP stages, OpenSSL's per-thread state set up in
    # each process after fork (tls_threads_mode = 2).
    KAM_WORKERS="children=2
tcp_children=2
tls_threads_mode=2"
  else
    # Kamailio 5.6.3 with OpenSSL 3 (Debian 12) corrupts its TLS state when several
    # processes work one TLS connection ("freeing already freed pointer ... tls_init.c",
    # then a crash: kamailio#3791; 5.8's tls_threads_mode is the fix, Debian 12 has none).
    # One worker of each kind and synchronous sends keep it up long enough to measure.
    KAM_WORKERS="children=1
tcp_children=1
tcp_async=no"
  fi
  cat >"$WORK/kamailio-tls.cfg" <<CFG
#!KAMAILIO
debug=0
log_stderror=yes
$KAM_WORKERS
auto_aliases=no
enable_tls=yes
tcp_max_connections=$(( N + 2000 ))
tls_max_connections=$(( N + 2000 ))
open_files_limit=$(( N + 4000 ))
tcp_connection_lifetime=3605
listen=udp:127.0.0.1:$KP
listen=tls:127.0.0.1:$KTP
mpath="$TLS_MPATH"
loadmodule "tls.so"
modparam("tls", "config", "$WORK/tls.cfg")
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "$WORK/tls-dispatcher.list")
modparam("dispatcher", "ds_ping_interval", $FREQ)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:dispatcher@127.0.0.1")
request_route {
  sl_send_reply("404", "Not here");
}
CFG
  mkdir -p "$WORK/run"
  # OpenSSL holds ~30 KiB of shared memory per connection.
  LD_LIBRARY_PATH="${TLS_LD_PATH}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$TLS_KAMAILIO" -f "$WORK/kamailio-tls.cfg" -DD -E -Y "$WORK/run" -P "$WORK/kamailio-tls.pid" \
    -m $(( 128 + N / 20 )) -M 16 2>"$WORK/kamailio-tls.log" &
  KAM=$!
  PIDS+=($KAM)
  sleep 2
  if ! kill -0 "$KAM" 2>/dev/null; then
    # A Kamailio that did not start would give a row of zeros that reads like a result.
    echo "Kamailio for TLS did not start; its log:" >&2
    tail -5 "$WORK/kamailio-tls.log" >&2
    NOTES+=("$N TLS destinations: Kamailio ($TLS_KAMAILIO) did not start: \"$(grep -a -m1 -E 'ERROR|CRITICAL' "$WORK/kamailio-tls.log" | sed 's/^ *[0-9]*([0-9]*) //')\"; its row is not a measurement.")
  fi
  PIDS_OF=kids
  MEM_OF=kam_mem
  read -r KA_CPU KA_RATE KA_MEM KA_HS < <(measure) || true
  KA_CRASH=$(grep -a -c "exited by a signal" "$WORK/kamailio-tls.log" || true)
  if [ "$KA_CRASH" -gt 0 ]; then
    NOTES+=("$N TLS destinations: Kamailio's log had $(grep -a -c 'queue full' "$WORK/kamailio-tls.log" || true) \"send2child(): tcp child 0 ... queue full\" lines, then \"$(grep -a -m1 'exited by a signal' "$WORK/kamailio-tls.log" | sed 's/.*handle_sigs(): //')\"; the responder had counted $(awk '{print $2}' "$COUNT") handshakes in all (trunkprobe's included).")
  fi
  stop "$KAM"; pkill -9 -f "$WORK/kamailio" 2>/dev/null || true

  TLS_ROWS+=("$(awk -v n="$N" -v tc="$TP_CPU" -v kc="$KA_CPU" -v tr="$TP_RATE" -v kr="$KA_RATE" -v tm="$TP_MEM" -v km="$KA_MEM" -v f="$FREQ" -v th="$TP_HS" -v kh="$KA_HS" -v ok="$TP_OK" -v all="$TP_ALL" -v crash="$KA_CRASH" 'BEGIN {
    printf "| %d | %.2f%% | %.2f%% | %.2f | %.1f | %.1f | %.0f | %.2f | %.2f | %.3f / %.3f | %.1f | %.1f | %.2f | %d of %d | %d |",
      n, tc, kc, (kc>0)?tc/kc:0, tr, kr, n/f, th, kh, (tr>0)?th/tr:0, (kr>0)?kh/kr:0, tm, km, (km>0)?tm/km:0, ok, all, crash }')")
  report
done
cat "$OUT"
echo "written to $OUT"
