#!/usr/bin/env bash
# Loopback OPTIONS throughput, side by side in one run:
#   trunkprobe ping -i 0 and SIPp as UAC (bench/sipp/options_uac.xml), each against
#   a SIPp UAS and against Kamailio, over UDP (and TCP for trunkprobe vs SIPp UAS).
# Prints a markdown table (rate, failures, CPU seconds per 1,000 transactions, peak RSS)
# and writes it to bench/results/. Not run by CI: numbers on a shared machine vary,
# only the ratios measured in the same run mean much.
#
#   bash bench/throughput.sh            # N=20000 transactions per run, C=64 in flight
#   N=100000 C=128 bash bench/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
C=${C:-64}
bash .ci/install-peers >/dev/null
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/trunkprobe
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- peers ---------------------------------------------------------------------
SIPP_UDP=$(free_port); SIPP_TCP=$(free_port); KAM=$(free_port)
sipp -sf tests/peers/sipp/options_200.xml -i 127.0.0.1 -p "$SIPP_UDP" -t u1 -nostdin \
     -deadcall_wait 0 -buff_size 4194304 >"$WORK/sipp-uas-udp.log" 2>&1 &
PIDS+=($!)
sipp -sf tests/peers/sipp/options_200.xml -i 127.0.0.1 -p "$SIPP_TCP" -t t1 -nostdin \
     -deadcall_wait 0 -buff_size 4194304 -max_socket 100000 >"$WORK/sipp-uas-tcp.log" 2>&1 &
PIDS+=($!)
sed -e "s/@@TLS@@/no/; s/@@UDP_PORT@@/$KAM/; s/@@TCP_PORT@@/$KAM/" \
    -e "s#@@MPATH@@#/usr/lib/x86_64-linux-gnu/kamailio/modules#" \
    -e "s/@@EXTRA_HEADERS@@//; s/@@BODY@@//; s/@@REPLY_CODE@@/200/; s/@@REPLY_REASON@@/OK/" \
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
row() { # client peer transport elapsed user sys rss failed
  awk -v n="$N" -v c="$1" -v p="$2" -v t="$3" -v e="$4" -v u="$5" -v s="$6" -v m="$7" -v f="$8" \
    'BEGIN { printf "| %s | %s | %s | %d | %.0f | %s | %.3f | %.1f |\n", c, p, t, n, n/e, f, (u+s)/n*1000, m/1024 }'
}
tp() { # peer-port transport
  read -r e u s m < <(measure "$BIN" ping -q -c "$N" -i 0 --concurrency "$C" --timeout 5s "sip:127.0.0.1:$1;transport=$2")
  lost=$(grep -oE '[0-9]+ lost' "$WORK/out" | grep -oE '[0-9]+' || echo "?")
  echo "$e $u $s $m $lost"
}
sp() { # peer-port transport(u1|t1)
  read -r e u s m < <(measure timeout 300 sipp "127.0.0.1:$1" -sf bench/sipp/options_uac.xml -t "$2" \
       -m "$N" -r 1000000 -rp 1000 -l "$C" -nostdin -buff_size 4194304 -max_socket 100000 -trace_stat -stf "$WORK/stat.csv")
  failed=$(tail -1 "$WORK/stat.csv" 2>/dev/null | awk -F';' '{print $18}' || echo "?")
  echo "$e $u $s $m ${failed:-?}"
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
  echo "| client | peer | transport | transactions | rate /s | failed | CPU s / 1,000 | peak RSS MiB |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
  read -r e u s m f < <(tp "$SIPP_UDP" udp); row "trunkprobe ping" "SIPp UAS" udp "$e" "$u" "$s" "$m" "$f"
  read -r e u s m f < <(sp "$SIPP_UDP" u1);  row "SIPp UAC" "SIPp UAS" udp "$e" "$u" "$s" "$m" "$f"
  read -r e u s m f < <(tp "$KAM" udp);      row "trunkprobe ping" "Kamailio" udp "$e" "$u" "$s" "$m" "$f"
  read -r e u s m f < <(sp "$KAM" u1);       row "SIPp UAC" "Kamailio" udp "$e" "$u" "$s" "$m" "$f"
  read -r e u s m f < <(tp "$SIPP_TCP" tcp); row "trunkprobe ping" "SIPp UAS" tcp "$e" "$u" "$s" "$m" "$f"
  read -r e u s m f < <(tp "$KAM" tcp);      row "trunkprobe ping" "Kamailio" tcp "$e" "$u" "$s" "$m" "$f"
  echo
  echo "trunkprobe opens a new TCP connection per transaction (a probe measures the carrier as a"
  echo "new caller sees it); SIPp's t1 reuses one connection, so TCP rows are not a like-for-like pair."
} | tee "$OUT"
echo "written to $OUT"
