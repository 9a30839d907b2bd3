#!/usr/bin/env bash
# Where the CPU of one pipelined TCP connection goes: trunkprobe ping --reuse-connection
# against SIPp's UAC -t t1, both against the same Kamailio (the pair of bench/throughput.sh
# where trunkprobe used more CPU per transaction than SIPp). For each client, in one run:
#   1. a plain run under /usr/bin/time: rate, user and system CPU-seconds per 1,000;
#   2. a run under `strace -c -f`: system calls per 1,000 transactions (reads, writes,
#      epoll_wait), and how many answers one read brings on average;
#   3. a run under `perf record -e cpu-clock`: the share of samples in the kernel, in
#      the client's own code and in its libraries.
# strace and perf slow the client; only run 1 gives CPU, runs 2 and 3 give shapes.
# Writes bench/results/tcp-reuse-profile-*.md.
#
#   bash bench/tcp_reuse_profile.sh          # N=20000 transactions per run, C=64 in flight
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
C=${C:-64}
bash .ci/install-peers >/dev/null
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null
. bench/common.sh
BIN=$(trunkprobe_bin)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

KAM=$(free_port)
sed -e "s/@@TLS@@/no/; s/@@UDP_PORT@@/$KAM/; s/@@TCP_PORT@@/$KAM/" \
    -e "s#@@MPATH@@#/usr/lib/x86_64-linux-gnu/kamailio/modules#" \
    -e "s/@@EXTRA_HEADERS@@//; s/@@BODY@@//; s/@@REPLY_CODE@@/200/; s/@@REPLY_REASON@@/OK/; s/@@TCP_LIFETIME@@/3600/" \
    -e "s/^debug=2/debug=0/; s/^children=1/children=2/" \
    tests/peers/kamailio/kamailio.cfg.tmpl >"$WORK/kamailio.cfg"
echo "maxbuffer=4194304" >>"$WORK/kamailio.cfg"
kamailio -f "$WORK/kamailio.cfg" -DD -E -w "$WORK" >"$WORK/kamailio.log" 2>&1 &
PIDS+=($!)
sleep 2

tp_cmd=("$BIN" ping -q -c "$N" -i 0 --concurrency "$C" --timeout 5s --reuse-connection "sip:127.0.0.1:$KAM;transport=tcp")
sp_cmd=(sipp "127.0.0.1:$KAM" -sf bench/sipp/options_uac.xml -t t1 -m "$N" -r 1000000 -rp 1000 -l "$C"
        -nostdin -buff_size 4194304 -max_socket 10000)

# profile NAME CMD...: prints one table row.
profile() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || true
  read -r e u s < <(tail -1 "$WORK/time")
  strace -f -c -o "$WORK/strace" "$@" >/dev/null 2>&1 || true
  # strace -c: "% time seconds usecs/call calls errors syscall"; errors may be empty.
  calls() { awk -v pat="$1" '$NF ~ pat { n += $4 } END { print n + 0 }' "$WORK/strace"; }
  local reads writes polls
  reads=$(calls '^(read|recvfrom|recvmsg|readv)$')
  writes=$(calls '^(write|sendto|sendmsg|writev)$')
  polls=$(calls '^(epoll_wait|epoll_pwait|poll|select|pselect6)$')
  perf record -q -e cpu-clock -F 2999 -o "$WORK/perf.data" -- "$@" >/dev/null 2>&1 || true
  perf report -i "$WORK/perf.data" --sort dso --stdio 2>/dev/null | awk '/^ +[0-9.]+%/ { print }' >"$WORK/dso"
  local kernel own libs
  kernel=$(awk '/kernel/ { s += $1 } END { printf "%.0f", s }' "$WORK/dso")
  own=$(awk -v b="$(basename "$1")" '$2 == b { s += $1 } END { printf "%.0f", s }' "$WORK/dso")
  libs=$(awk -v k="$kernel" -v o="$own" 'BEGIN { printf "%.0f", 100 - k - o }')
  awk -v name="$name" -v n="$N" -v e="$e" -v u="$u" -v s="$s" -v r="$reads" -v w="$writes" -v p="$polls" \
      -v k="$kernel" -v o="$own" -v l="$libs" 'BEGIN {
    printf "| %s | %.0f | %.3f | %.3f | %.3f | %.0f | %.0f | %.0f | %.2f | %s%% / %s%% / %s%% |\n",
      name, n / e, u / n * 1000, s / n * 1000, (u + s) / n * 1000, r / n * 1000, w / n * 1000, p / n * 1000,
      (r > 0) ? n / r : 0, k, o, l }'
}

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
OUT=bench/results/tcp-reuse-profile-$(date -u +%Y%m%d-%H%M).md
{
  echo "# One pipelined TCP connection against Kamailio: where the CPU goes ($DATE)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r); shared with other work."
  echo "Command: \`N=$N C=$C bash bench/tcp_reuse_profile.sh\`; trunkprobe $("$BIN" --version | awk '{print $2}') (release),"
  echo "SIPp $(sipp -v 2>&1 | grep -oE 'v[0-9.]+' | head -1), Kamailio $(kamailio -v | head -1 | awk '{print $3}') (children=2, tcp_children=1)."
  echo
  echo "| client | rate /s | user CPU-s / 1,000 | system CPU-s / 1,000 | total | reads / 1,000 | writes / 1,000 | epoll_waits / 1,000 | answers per read | perf samples: kernel / own code / libraries |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  profile "trunkprobe ping --reuse-connection" "${tp_cmd[@]}"
  profile "SIPp UAC -t t1" "${sp_cmd[@]}"
  echo
  echo "CPU and rate from the plain run; system calls from a run under strace -c -f (all threads);"
  echo "perf samples (cpu-clock) from a third run. \"answers per read\" is transactions over reads"
  echo "(trunkprobe's one read per wake-up, SIPp's reads also include its own bookkeeping)."
} | tee "$OUT"
echo "written to $OUT"
