#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (README.md here).
#   tests/fuzz/run.sh --smoke [options] [target...]   each target ~15 s (ctest fuzz_smoke)
#   tests/fuzz/run.sh --long  [options] [target...]   each target until 1,000,000 executions
# Options: --build-dir DIR (default $CASEBUS_FUZZ_BUILD_DIR or build/fuzz-clang),
#          --seconds N (smoke, per target), --runs N (long, per target),
#          --fork N (libFuzzer's -fork=N: N worker processes, executions counted across them).
# Configures the clang-14 build (CASEBUS_FUZZ=ON) when DIR has none, then builds what is stale
# of `fuzz_targets` only. Each target starts from its committed corpus (corpus/<name>/, read
# only) plus a working corpus under DIR/fuzz-work/<name>/, where new inputs, the log
# (<mode>-<UTC time>.log) and any crash artifact go. Prints executions, seconds, exec/s and the
# result per target; exits 1 when any target crashed, leaked, timed out (-timeout=2) or ran
# out of memory (-rss_limit_mb=1024).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${CASEBUS_FUZZ_BUILD_DIR:-$ROOT/build/fuzz-clang}
ALL_TARGETS=(frame city_config spool_reply http_request)
mode=""
seconds=15
runs=1000000
fork=0
targets=()

usage() {
  echo "usage: tests/fuzz/run.sh --smoke|--long [--build-dir DIR] [--seconds N] [--runs N]" \
       "[--fork N] [target...]" >&2
  echo "targets: ${ALL_TARGETS[*]}" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --long) mode=long ;;
    --build-dir) BUILD=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --runs) runs=$2; shift ;;
    --fork) fork=$2; shift ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ -n "$mode" ] || usage
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

log() { printf '[fuzz] %s\n' "$*" >&2; }

build() {
  command -v clang++-14 >/dev/null || { log "clang++-14 is missing (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
  if [ ! -f "$BUILD/build.ninja" ]; then
    log "configuring the clang-14 fuzz build in $BUILD"
    mkdir -p "$BUILD"
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCASEBUS_FUZZ=ON \
      -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >"$BUILD/fuzz-configure.log" 2>&1 ||
      { cat "$BUILD/fuzz-configure.log" >&2; exit 1; }
  fi
  log "building fuzz_targets (only what is stale)"
  ninja -C "$BUILD" -j2 fuzz_targets >"$BUILD/fuzz-build.log" 2>&1 ||
    { tail -n 60 "$BUILD/fuzz-build.log" >&2; exit 1; }
}

# run_target NAME: fuzzes one target; appends its result line to `results`.
run_target() {
  local name=$1
  local bin="$BUILD/tests/fuzz/${name}_fuzz"
  local seeds="$HERE/corpus/$name"
  local work="$BUILD/fuzz-work/$name"
  mkdir -p "$work/corpus" "$work/artifacts"
  local args=(-timeout=2 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1
              -artifact_prefix="$work/artifacts/")
  [ -f "$HERE/$name.dict" ] && args+=(-dict="$HERE/$name.dict")
  if [ "$mode" = smoke ]; then args+=(-max_total_time="$seconds"); else args+=(-runs="$runs"); fi
  [ "$fork" -gt 0 ] && args+=(-fork="$fork")
  local logfile
  logfile="$work/$mode-$(date -u +%Y%m%dT%H%M%S).log"
  log "$name: $bin ${args[*]} $work/corpus $seeds"
  local start end rc=0
  start=$(date +%s.%N)
  "$bin" "${args[@]}" "$work/corpus" "$seeds" >"$logfile" 2>&1 || rc=$?
  end=$(date +%s.%N)
  local execs secs rate result crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)
  # -fork prints no final stats; its last "#N:" line counts every worker's executions.
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$logfile" | tail -n 1)
  [ -n "$execs" ] || execs=0
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v n="$execs" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  if [ $rc -eq 0 ]; then
    result=ok; crashes=0
  else
    crashes=1
    result="FAILED rc=$rc: $(grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY|ALARM|out-of-memory|leak' "$logfile" || echo "see log")"
    result+=" (log $logfile; artifacts $work/artifacts/)"
    failed=1
  fi
  results+=("$(printf '%-13s %12s %9s %9s %7s  %s' "$name" "$execs" "$secs" "$rate" "$crashes" "$result")")
}

build
results=()
failed=0
for t in "${targets[@]}"; do
  [ -x "$BUILD/tests/fuzz/${t}_fuzz" ] || { log "no such target: $t"; usage; }
  run_target "$t"
done
printf '%-13s %12s %9s %9s %7s  %s\n' target executions seconds exec/s crashes result
printf '%s\n' "${results[@]}"
printf 'mode %s, %s, clang-14 %s%s\n' "$mode" "$(date -u +%Y-%m-%d)" \
  "$( [ "$mode" = smoke ] && echo "-max_total_time=$seconds" || echo "-runs=$runs")" \
  "$( [ "$fork" -gt 0 ] && echo " -fork=$fork")"
exit $failed
