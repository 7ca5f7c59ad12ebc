#!/usr/bin/env bash
# Runs the end-to-end throughput benchmark (median of 5 runs each) and appends the results
# to bench/RESULTS.md with the machine and the command. Usage: bench/run.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CASEBUS_BUILD_DIR:-build}
RUNS=5
[ "${1:-}" = "--runs" ] && RUNS=$2
BIN=$BUILD/bin/e2e_throughput
[ -x "$BIN" ] || { echo "build first: deploy/run.sh build" >&2; exit 1; }

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

{
  echo
  echo "## e2e_throughput — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r); RocksDB $(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null)."
  echo "Command: \`bench/run.sh --runs $RUNS\` (server and clients share the 2 cores)."
  echo
  echo '```'
  cat "$out"
  echo '```'
} >> bench/RESULTS.md
rm -f "$out"
echo "appended to bench/RESULTS.md"
