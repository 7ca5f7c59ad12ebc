#!/usr/bin/env bash
# Before and after, on this machine, in one sitting: two casebus binaries (another commit's
# build and this one) alternated run by run, so the disk's drift hits both alike. Appends a
# section to bench/RESULTS.md: machine, command, every run's line, and the medians.
#
#   bench/ab.sh --before PATH [--after PATH] [--runs N] [--seconds N] [--rate R[,R...]]
#               [--tick-us T] [--throughput]
#
#   --before PATH  the casebus to compare against, e.g. a worktree's build:
#                    git worktree add /tmp/base REV && cmake -S /tmp/base -B /tmp/base/build -G Ninja
#                    -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C /tmp/base/build casebus
#   --after PATH   default: this tree's build/bin/casebus
#   --runs N       runs of each binary per rate (default 5)
#   --seconds N    measured seconds per run (default 8)
#   --rate LIST    e2e_latency offered rates, single-command frames (default 1000,10000)
#   --tick-us T    the latency clients wake once per T µs (e2e_latency --tick-us; default 0)
#   --throughput   also e2e_throughput with 100-command frames (4 clients, window 16)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CASEBUS_BUILD_DIR:-build}
BIN=$BUILD/bin
usage() { sed -n '6,17p' "$0" | sed 's/^# \{0,1\}//'; }

BEFORE="" AFTER=$BIN/casebus RUNS=5 SECS=8 RATES=1000,10000 THROUGHPUT=0 TICK=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --before) BEFORE=${2:?}; shift 2 ;;
    --after) AFTER=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seconds) SECS=${2:?}; shift 2 ;;
    --rate) RATES=${2:?}; shift 2 ;;
    --tick-us) TICK=${2:?}; shift 2 ;;
    --throughput) THROUGHPUT=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ -n $BEFORE ]] || { echo "$0: --before PATH is required" >&2; usage >&2; exit 2; }
for b in "$BEFORE" "$AFTER" "$BIN/e2e_latency"; do
  [[ -x $b ]] || { echo "$0: $b: not an executable (build it first)" >&2; exit 1; }
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $TICK =~ ^[0-9]+$ ]] || { echo "$0: --runs and --seconds take positive integers" >&2; exit 2; }

MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)"
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- engine protos || echo ' + uncommitted changes')"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
say() { echo "$@" | tee -a "$OUT"; }

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END{if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

say "## ab: before/after (bench/ab.sh) — started $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT"
say ""
say "- machine: $MACHINE"
say "- command: \`bench/ab.sh --before $BEFORE --after $AFTER --runs $RUNS --seconds $SECS --rate $RATES$( ((TICK)) && echo " --tick-us $TICK")$( ((THROUGHPUT)) && echo ' --throughput')\`"
say "- before: \`$BEFORE\`; after: \`$AFTER\`; runs alternate before, after, before, …"
say ""
say '```'
declare -A P50 P99
for rate in ${RATES//,/ }; do
  for ((i = 1; i <= RUNS; i++)); do
    for who in before after; do
      bin=$BEFORE; [[ $who == after ]] && bin=$AFTER
      line=$("$BIN/e2e_latency" --rates "$rate" --seconds "$SECS" --runs 1 --binary "$bin" --no-disk-floor --tick-us "$TICK" 2>&1 | grep "run 1:" || true)
      say "$(printf '%-6s %s' "$who" "${line:-no result}")"
      P50[$who,$rate]+="$(sed -n 's/.* p50 \+\([0-9][0-9.]*\) .*/\1/p' <<<"$line") "
      P99[$who,$rate]+="$(sed -n 's/.* p99 \+\([0-9][0-9.]*\) .*/\1/p' <<<"$line") "
    done
  done
done
if ((THROUGHPUT)); then
  for ((i = 1; i <= RUNS; i++)); do
    for who in before after; do
      bin=$BEFORE; [[ $who == after ]] && bin=$AFTER
      line=$("$BIN/e2e_throughput" --clients 4 --window 16 --frame 100 --seconds "$SECS" --runs 1 --binary "$bin" 2>&1 | grep -m1 "run 1" || true)
      say "$(printf '%-6s %s' "$who" "${line:-no result}")"
      P50[$who,tput]+="$(sed -n 's/.*run 1: *\([0-9]*\) acknowledged.*/\1/p' <<<"$line") "
    done
  done
fi
say '```'
say ""
say "| measure | before (median) | after (median) |"
say "|---|---|---|"
for rate in ${RATES//,/ }; do
  say "| ${rate}/s p50 ms | $(tr ' ' '\n' <<<"${P50[before,$rate]}" | grep . | median) | $(tr ' ' '\n' <<<"${P50[after,$rate]}" | grep . | median) |"
  say "| ${rate}/s p99 ms | $(tr ' ' '\n' <<<"${P99[before,$rate]}" | grep . | median) | $(tr ' ' '\n' <<<"${P99[after,$rate]}" | grep . | median) |"
done
if ((THROUGHPUT)); then
  say "| 100-command frames, commands/s | $(tr ' ' '\n' <<<"${P50[before,tput]}" | grep . | median) | $(tr ' ' '\n' <<<"${P50[after,tput]}" | grep . | median) |"
fi
say ""
say "finished $(date -u +%Y-%m-%dT%H:%MZ)"
{ echo; cat "$OUT"; } >>bench/RESULTS.md
echo "appended to bench/RESULTS.md"
