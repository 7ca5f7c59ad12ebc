#!/usr/bin/env bash
# The benchmark programs refuse a flag they cannot use, naming it and saying why, with exit
# status 2, before they start a server or measure anything: a typo must not run a benchmark
# on a default and leave its figures to be read as the ones asked for.
#   bad_flags_test.sh E2E_THROUGHPUT E2E_LATENCY APPLY_BENCH
set -uo pipefail
tp=$1 lat=$2 apply=$3
failed=0
# expect EXIT PATTERN PROGRAM ARGS...: the program exits with EXIT and its output matches PATTERN
# (grep -E), and it never printed a benchmark's header line.
expect() {
  local want=$1 pattern=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -ne $want ]] || ! grep -qE -- "$pattern" <<<"$out" || grep -qE '^(e2e_throughput|e2e_latency|apply_bench): [0-9]+ (clients|commands)|^e2e_latency: open loop' <<<"$out"; then
    echo "FAIL: $(basename "$1") ${*:2}: exit $rc (want $want), output:"
    sed 's/^/    /' <<<"$out"
    failed=1
  else
    echo "ok:   $(basename "$1") ${*:2}"
  fi
}
expect 0 '^usage: e2e_throughput'                                   "$tp" --help
expect 2 "--frame: 'abc' is not a whole number from 1 to"            "$tp" --frame abc
expect 2 "--frame: '0' is not a whole number"                        "$tp" --frame 0
expect 2 "--clients: '4x' is not a whole number"                     "$tp" --clients 4x
expect 2 "--seconds: '' is not a whole number"                       "$tp" --seconds ''
expect 2 '--window needs a value'                                    "$tp" --window
expect 2 'unknown option --rate'                                     "$tp" --rate 5000
expect 2 "--seed: '-1' is not a whole number"                        "$tp" --seed -1
expect 2 "--runs: '99999999999999999999' is not a whole number"      "$tp" --runs 99999999999999999999
expect 0 '^usage: e2e_latency'                                       "$lat" --help
expect 2 "--seconds: '-1' is not a whole number from 1 to"           "$lat" --seconds -1
expect 2 "--tick-us: '1ms' is not a whole number"                    "$lat" --tick-us 1ms
expect 2 "--rates: '50k' is not a list of positive commands/s"       "$lat" --rates 50k
expect 2 '--frame needs a value'                                     "$lat" --rates 1000 --frame
expect 2 'unknown option --throughput'                               "$lat" --throughput 1
expect 0 '^usage: apply_bench'                                       "$apply" --help
expect 2 "--commands: 'lots' is not a whole number"                  "$apply" --commands lots
expect 2 '--runs needs a value'                                      "$apply" --runs
expect 2 'unknown option --frame'                                    "$apply" --frame 10
exit $failed
