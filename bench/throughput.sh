#!/usr/bin/env bash
# Loopback OPTIONS throughput, side by side in one run:
#   trunkprobe ping -i 0 and SIPp as UAC (bench/sipp/options_uac.xml), each against
#   a SIPp UAS and against Kamailio over UDP; over TCP in like-for-like pairs against
#   the same peer (a SIPp UAS, Kamailio): trunkprobe's default (a connection per
#   request) vs SIPp -t tn (a socket per call), and ping --reuse-connection (one
#   connection, pipelined) vs SIPp -t t1.
# Prints a markdown table (rate, failures, connections, CPU seconds per 1,000
# transactions, peak RSS) and the trunkprobe/SIPp ratios of rate and CPU per
# transaction in each pair, and writes them to bench/results/. Not run by CI: numbers on
# a shared machine vary, only the ratios measured in the same run mean much.
#
#   bash bench/throughput.sh            # N=20000 transactions per run, C=64 in flight
#   N=100000 C=128 bash bench/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
C=${C:-64}
bash .ci/install-peers >/dev/null
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- peers ---------------------------------------------------------------------
# SIPp refuses a -max_socket above `ulimit -n`; 10000 is far above the C sockets in use.
SIPP_UDP=$(free_port); SIPP_T1=$(free_port); SIPP_TN=$(free_port); KAM=$(free_port)
sipp -sf tests/peers/sipp/options_200.xml -i 127.0.0.1 -p "$SIPP_UDP" -t u1 -nostdin \
     -deadcall_wait 0 -buff_size 4194304 >"$WORK/sipp-uas-udp.log" 2>&1 &
PIDS+=($!)
for t in t1 tn; do
  port=$SIPP_T1; [ "$t" = tn ] && port=$SIPP_TN
  sipp -sf tests/peers/sipp/options_200.xml -i 127.0.0.1 -p "$port" -t "$t" -nostdin \
       -deadcall_wait 0 -buff_size 4194304 -max_socket 10000 >"$WORK/sipp-uas-$t.log" 2>&1 &
  PIDS+=($!)
done
sed -e "s/@@TLS@@/no/; s/@@UDP_PORT@@/$KAM/; s/@@TCP_PORT@@/$KAM/" \
    -e "s#@@MPATH@@#/usr/lib/x86_64-linux-gnu/kamailio/modules#" \
    -e "s/@@EXTRA_HEADERS@@//; s/@@BODY@@//; s/@@REPLY_CODE@@/200/; s/@@REPLY_REASON@@/OK/; s/@@TCP_LIFETIME@@/3600/" \
    -e "s/^debug=2/debug=0/; s/^children=1/children=2/" \
    tests/peers/kamailio/kamailio.cfg.tmpl >"$WORK/kamailio.cfg"
echo "maxbuffer=4194304" >>"$WORK/kamailio.cfg"
kamailio -f "$WORK/kamailio.cfg" -DD -E -w "$WORK" >"$WORK/kamailio.log" 2>&1 &
PIDS+=($!)
sleep 2

# --- measurement -----------------------------------------------------------------
# measure NAME CMD... : runs CMD under /usr/bin/time, prints "elapsed user sys maxrss_kb".
measure() {
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || true
  cat "$WORK/time" | tail -1
}
row() { # client peer transport elapsed user sys rss failed connections
  awk -v n="$N" -v c="$1" -v p="$2" -v t="$3" -v e="$4" -v u="$5" -v s="$6" -v m="$7" -v f="$8" -v k="$9" \
    'BEGIN { printf "| %s | %s | %s | %d | %.0f | %s | %s | %.3f | %.1f |\n", c, p, t, n, n/e, f, k, (u+s)/n*1000, m/1024 }'
}
tp() { # peer-port transport [ping flags...]
  local port=$1 t=$2; shift 2
  read -r e u s m < <(measure "$BIN" ping -q -c "$N" -i 0 --concurrency "$C" --timeout 5s "$@" "sip:127.0.0.1:$port;transport=$t")
  lost=$(grep -oE '[0-9]+ lost' "$WORK/out" | grep -oE '[0-9]+' || echo "?")
  conns=$(grep -oE 'connections: [0-9]+' "$WORK/out" | grep -oE '[0-9]+' || echo "-")
  echo "$e $u $s $m $lost $conns"
}
sp() { # peer-port transport(u1|t1|tn)
  read -r e u s m < <(measure timeout 300 sipp "127.0.0.1:$1" -sf bench/sipp/options_uac.xml -t "$2" \
       -m "$N" -r 1000000 -rp 1000 -l "$C" -nostdin -buff_size 4194304 -max_socket 10000 -trace_stat -stf "$WORK/stat.csv")
  failed=$(tail -1 "$WORK/stat.csv" 2>/dev/null | awk -F';' '{print $18}' || echo "?")
  case $2 in t1) conns=1 ;; tn) conns="one per call" ;; *) conns="-" ;; esac
  echo "$e $u $s $m ${failed:-?} $conns"
}

# The ratios of each pair: trunkprobe's run (remembered) against SIPp's just after it.
TP_E=0 TP_CPU=0 RATIOS=""
remember() { TP_E=$1; TP_CPU=$(awk -v u="$2" -v s="$3" 'BEGIN { print u + s }'); }
ratio() { # label sipp-elapsed sipp-user sipp-sys
  RATIOS+=$(awk -v l="$1" -v te="$TP_E" -v tc="$TP_CPU" -v se="$2" -v u="$3" -v s="$4" \
    'BEGIN { printf "| %s | %.2f× | %.2f× |", l, se / te, tc / (u + s) }')$'\n'
}

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/throughput-$(date -u +%Y%m%d-%H%M).md
{
  echo "# OPTIONS throughput on loopback ($DATE)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)."
  echo "Command: \`N=$N C=$C bash bench/throughput.sh\` ($C transactions in flight, $N per run)."
  echo "trunkprobe $("$BIN" --version | awk '{print $2}') (release), SIPp $(sipp -v 2>&1 | grep -oE 'v[0-9.]+' | head -1), Kamailio $(kamailio -v | head -1 | awk '{print $3}')."
  echo
  echo "| client | peer | transport | transactions | rate /s | failed | connections | CPU s / 1,000 | peak RSS MiB |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  REUSE=--reuse-connection
  read -r e u s m f k < <(tp "$SIPP_UDP" udp); row "trunkprobe ping" "SIPp UAS" udp "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$SIPP_UDP" u1);  row "SIPp UAC" "SIPp UAS" udp "$e" "$u" "$s" "$m" "$f" "$k"; ratio "SIPp UAS, udp" "$e" "$u" "$s"
  read -r e u s m f k < <(tp "$KAM" udp);      row "trunkprobe ping" "Kamailio" udp "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$KAM" u1);       row "SIPp UAC" "Kamailio" udp "$e" "$u" "$s" "$m" "$f" "$k"; ratio "Kamailio, udp" "$e" "$u" "$s"
  read -r e u s m f k < <(tp "$SIPP_TN" tcp);  row "trunkprobe ping" "SIPp UAS -t tn" "tcp, a connection per request" "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$SIPP_TN" tn);   row "SIPp UAC -t tn" "SIPp UAS -t tn" "tcp, a connection per request" "$e" "$u" "$s" "$m" "$f" "$k"; ratio "SIPp UAS -t tn, tcp, a connection per request" "$e" "$u" "$s"
  read -r e u s m f k < <(tp "$SIPP_T1" tcp $REUSE); row "trunkprobe ping $REUSE" "SIPp UAS -t t1" "tcp, one connection" "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$SIPP_T1" t1);   row "SIPp UAC -t t1" "SIPp UAS -t t1" "tcp, one connection" "$e" "$u" "$s" "$m" "$f" "$k"; ratio "SIPp UAS -t t1, tcp, one connection" "$e" "$u" "$s"
  read -r e u s m f k < <(tp "$KAM" tcp);      row "trunkprobe ping" "Kamailio" "tcp, a connection per request" "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$KAM" tn);       row "SIPp UAC -t tn" "Kamailio" "tcp, a connection per request" "$e" "$u" "$s" "$m" "$f" "$k"; ratio "Kamailio, tcp, a connection per request" "$e" "$u" "$s"
  read -r e u s m f k < <(tp "$KAM" tcp $REUSE); row "trunkprobe ping $REUSE" "Kamailio" "tcp, one connection" "$e" "$u" "$s" "$m" "$f" "$k"; remember "$e" "$u" "$s"
  read -r e u s m f k < <(sp "$KAM" t1);       row "SIPp UAC -t t1" "Kamailio" "tcp, one connection" "$e" "$u" "$s" "$m" "$f" "$k"; ratio "Kamailio, tcp, one connection" "$e" "$u" "$s"
  echo
  echo "Ratios, trunkprobe over SIPp UAC in each pair (rate: above 1 is faster; CPU per transaction:"
  echo "below 1 is cheaper):"
  echo
  echo "| peer, transport | rate | CPU per transaction |"
  echo "| --- | ---: | ---: |"
  printf "%s" "$RATIOS"
  echo
  echo "TCP rows come in like-for-like pairs against the same peer: trunkprobe's default, a new"
  echo "connection per request (a probe measures the carrier as a new caller sees it), against SIPp -t tn"
  echo "(a socket per call); and ping --reuse-connection (one connection, up to $C requests pipelined on it)"
  echo "against SIPp -t t1. \"failed\" is trunkprobe's lost requests and SIPp's failed calls; \"connections\""
  echo "is what trunkprobe's summary reports, and SIPp's by its transport mode."
} | tee "$OUT"
echo "written to $OUT"
