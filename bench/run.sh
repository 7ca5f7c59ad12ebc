#!/usr/bin/env bash
# Runs the end-to-end throughput benchmark (median of 5 runs each) and appends the results
# to bench/RESULTS.md with the machine and the command. Usage: bench/run.sh [--runs N]
# (bench/run.sh timers [--runs N]: the escalation timer benchmark, below)
# (bench/run.sh ledger [--runs N]: ledger query latency at 1M and 10M cases of history, below)
# (bench/run.sh compare [--runs N] [--seconds N] [--quick] [--smoke]: the whole comparison with
#  the peers, bench/compare.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "compare" ]; then
  shift
  exec bench/compare.sh "$@"
fi
BUILD=${CASEBUS_BUILD_DIR:-build}

# The code measured is what was checked out when the run began (runs can take an hour).
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- engine protos bench adapters || echo ' + uncommitted changes')"
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)"

# append_results TITLE MACHINE_NOTE COMMAND_NOTE OUTPUT_FILE: one section of bench/RESULTS.md.
append_results() {
  {
    echo
    echo "## $1 — started $STARTED, finished $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT"
    echo
    echo "Machine: $MACHINE$2"
    echo "Command: $3"
    echo
    echo '```'
    cat "$4"
    echo '```'
  } >> bench/RESULTS.md
  rm -f "$4"
  echo "appended to bench/RESULTS.md"
}

# bench/run.sh timers [--runs N]: escalation timers at 1M, 2M and 4M open cases (4M is skipped,
# with the numbers, when it cannot fit in memory), then 1M with twice the steps due.
if [ "${1:-}" = "timers" ]; then
  RUNS=5
  [ "${2:-}" = "--runs" ] && RUNS=$3
  BIN=$BUILD/bin/timer_bench
  [ -x "$BIN" ] || { echo "build first: ninja -C $BUILD bench_targets (or deploy/run.sh bench timers)" >&2; exit 1; }
  out=$(mktemp)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  for args in "--cases 1000000,2000000,4000000" "--cases 1000000 --active 20000"; do
    echo "\$ $BIN --runs $RUNS $args" | tee -a "$out"
    # shellcheck disable=SC2086
    "$BIN" --runs "$RUNS" $args | tee -a "$out"
    echo >> "$out"
  done
  append_results "timer_bench" \
    ". Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; CPU time is this thread's own)." \
    "\`bench/run.sh timers --runs $RUNS\` (in-process CaseMachine on the sample city, no store; see bench/timer_bench.cc)." \
    "$out"
  exit 0
fi
# bench/run.sh ledger [--runs N]: ledger query latency (a month, a year, all history, the whole
# metrics answer) at 1M and 10M cases of history, each run a child process; the table holds the
# medians of the runs. About 40 s and 250 MiB per 10M run.
if [ "${1:-}" = "ledger" ]; then
  RUNS=3
  [ "${2:-}" = "--runs" ] && RUNS=$3
  BIN=$BUILD/bin/ledger_query_bench
  [ -x "$BIN" ] || { echo "build first: ninja -C $BUILD bench_targets (or deploy/run.sh bench ledger)" >&2; exit 1; }
  out=$(mktemp)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "\$ $BIN --runs $RUNS --cases 1000000,10000000" | tee -a "$out"
  "$BIN" --runs "$RUNS" --cases 1000000,10000000 | tee -a "$out"   # progress goes to stderr
  echo >> "$out"
  append_results "ledger_query_bench" \
    ". Load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; latencies are wall-clock)." \
    "\`bench/run.sh ledger --runs $RUNS\` (in-process core::Ledger on the sample city, no store; see bench/ledger_query_bench.cc)." \
    "$out"
  exit 0
fi
RUNS=5
[ "${1:-}" = "--runs" ] && RUNS=$2
BIN=$BUILD/bin/e2e_throughput
[ -x "$BIN" ] || { echo "build first: ninja -C $BUILD bench_targets (or deploy/run.sh bench)" >&2; exit 1; }

out=$(mktemp)
run() {
  echo "\$ $BIN $*" | tee -a "$out"
  "$BIN" --runs "$RUNS" "$@" | tee -a "$out"
  echo >> "$out"
}
run --clients 8 --window 128 --frame 1 --seconds 10     # many operators' clients, one command per frame
run --clients 4 --window 16 --frame 20 --seconds 10     # gateways: 20 commands per frame, each acked
run --clients 4 --window 64 --frame 1 --seconds 10      # fewer requests in flight: latency-bound
run --clients 8 --window 128 --frame 1 --seconds 10 --no-sync   # reference: no fsync (never in production)

append_results e2e_throughput \
  "; RocksDB $(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null)." \
  "\`bench/run.sh --runs $RUNS\` (server and clients share the 2 cores)." \
  "$out"
