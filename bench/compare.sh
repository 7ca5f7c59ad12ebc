#!/usr/bin/env bash
# The whole performance comparison in one command: casebus beside its peers (bench/peers: a
# PostgreSQL ticket store and NATS JetStream) on this machine, in one sitting. Each section is
# appended to bench/RESULTS.md: machine, exact command, every run's line, medians, ratios, and
# which peers were measured in the same run.
#
#   bench/compare.sh [--runs N] [--seconds N] [--quick] [--smoke] [--only LIST]
#   deploy/run.sh bench compare [...]           (builds first)
#
#   --runs N     runs per measure, medians over them (env RUNS, default 5)
#   --seconds N  seconds per timed run (env SECONDS_PER_RUN, default 10)
#   --quick      closure query at 1M cases of history only (PostgreSQL's 10M load takes minutes)
#   --smoke      1 run, 2 s each, 100,000-case sizes instead of 1M and more: checks this script
#                end to end in under 3 minutes (its numbers say nothing)
#   --only LIST  these sections only, comma-separated, in the usual order: throughput, closure,
#                latency, restart, replay, apply, timers (the peers start only for the first two)
#
# Order: PostgreSQL and nats-server start from a temp dir (bench/peers/*.sh; stopped by PID on
# any exit); (a) durable throughput — casebus with 1 and 100 commands per frame, pg_ticket_store
# --style app and tuned, jetstream_publish — interleaved run by run, so that the disk's fsync
# latency drift hits all alike; (c) closure query, ledger_query_bench beside pg_ticket_store
# --closure-query. The peers are then stopped, so their background work (checkpoints,
# autovacuum) cannot disturb the casebus-only measures: (b) open-loop latency, (d) restart time,
# (d2) replay of a journal with history, (e) apply and replay speed, (f) escalation firing cost. Over an hour with the defaults on this
# 2-core machine (estimated from the smoke run): the 1M and 5M restarts take about half of it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CASEBUS_BUILD_DIR:-build}
BIN=$BUILD/bin

usage() { sed -n '7,16p' "$0" | sed 's/^# \{0,1\}//'; }

RUNS=${RUNS:-5}
SECS=${SECONDS_PER_RUN:-10}
QUICK=0
SMOKE=0
ONLY=""
FLAGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=${2:?--runs needs a value}; FLAGS+=("$1" "$2"); shift 2 ;;
    --seconds) SECS=${2:?--seconds needs a value}; FLAGS+=("$1" "$2"); shift 2 ;;
    --quick) QUICK=1; FLAGS+=("$1"); shift ;;
    --smoke) SMOKE=1; FLAGS+=("$1"); shift ;;
    --only) ONLY=${2:?--only needs a list}; FLAGS+=("$1" "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ ]] || { echo "$0: --runs and --seconds take positive integers" >&2; exit 2; }
ALL_SECTIONS=(throughput closure latency restart replay apply timers)
for s in ${ONLY//,/ }; do
  [[ " ${ALL_SECTIONS[*]} " == *" $s "* ]] || { echo "$0: --only: no section '$s' (sections: ${ALL_SECTIONS[*]})" >&2; exit 2; }
done
# wanted SECTION: true when the run includes it.
wanted() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }

WARMUP=2
CLOSURE_SIZES=1000000,10000000
RESTART_SIZES=1000000,5000000
REPLAY_OPEN=1000000  # open cases of the history journal, 2 closed beside each (17M records)
TIMER_ARGS=()  # timer_bench's default sizes
APPLY_ARGS=()  # apply_bench's default journal
if ((QUICK)); then CLOSURE_SIZES=1000000; fi
if ((SMOKE)); then
  RUNS=1 SECS=2 WARMUP=1
  CLOSURE_SIZES=100000 RESTART_SIZES=100000 REPLAY_OPEN=100000
  TIMER_ARGS=(--cases 100000) APPLY_ARGS=(--commands 200000)
fi

missing=()
for t in e2e_throughput e2e_latency ledger_query_bench restart_bench apply_bench timer_bench \
         pg_ticket_store jetstream_publish; do
  [[ -x $BIN/$t ]] || missing+=("$t")
done
if ((${#missing[@]})); then
  echo "$0: build first: ninja -C $BUILD bench_targets (deploy/run.sh bench compare builds them); missing: ${missing[*]}" >&2
  exit 1
fi
command -v nats-server >/dev/null || { echo "$0: nats-server not found (apt-get install nats-server)" >&2; exit 1; }

# The code measured is what was checked out when the run began.
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- engine protos bench adapters || echo ' + uncommitted changes')"
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r); RocksDB $(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || echo '?')"
COMMAND="\`bench/compare.sh${FLAGS[*]:+ ${FLAGS[*]}}\` (RUNS=$RUNS, SECONDS_PER_RUN=$SECS)"

STEP=0
STEPS=1
for s in "${ALL_SECTIONS[@]}"; do if wanted "$s"; then STEPS=$((STEPS + 1)); fi; done
step() { STEP=$((STEP + 1)); echo "[compare $STEP/$STEPS $(date -u +%H:%M:%S)] $*" >&2; }
note() { echo "[compare $STEP/$STEPS $(date -u +%H:%M:%S)]   $*" >&2; }

# A loopback port nothing listens on, from $1 up.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

WORK=$(mktemp -d /tmp/casebus-compare-XXXXXX)
chmod 711 "$WORK"  # user postgres must reach $WORK/pg
PG_DIR=$WORK/pg
NATS_DIR=$WORK/nats
PG_PID=
PG_SERVER=
NATS_PID=

# The scripts stop the PID their directory records (checked to be theirs); ours is the fallback.
stop_peers() {
  bench/peers/postgres.sh stop "$PG_DIR" >/dev/null 2>&1 || true
  bench/peers/nats.sh stop "$NATS_DIR" >/dev/null 2>&1 || true
  local pid
  for pid in $PG_PID $NATS_PID; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  PG_PID=''
  NATS_PID=''
}
cleanup() {
  local rc=$?
  trap - EXIT
  stop_peers
  rm -rf "$WORK"
  ((rc == 0)) || echo "[compare] stopped with status $rc; sections finished before it are in bench/RESULTS.md" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run OUT CMD...: runs a measure, its stdout to OUT (and the terminal, as progress), with the
# command line first.
run() {
  local out=$1
  shift
  echo "\$ $*" >>"$out"
  "$@" | tee -a "$out" >&2
}

# median / min / max of the numbers in a file, one a line (the median as the benchmarks take
# it: element n/2 of the sorted values).
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }
minimum() { sort -g "$1" | head -1; }
maximum() { sort -g "$1" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

SECTION_STARTED=
LOAD_BEFORE=
begin_section() {
  step "$1"
  SECTION_STARTED=$(date -u +%Y-%m-%dT%H:%MZ)
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
}

# append_section TITLE PEERS_NOTE FILE: one section of bench/RESULTS.md.
append_section() {
  {
    echo
    echo "## compare: $1 — started $SECTION_STARTED, finished $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT"
    echo
    echo "Machine: $MACHINE. Load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared by server, load generator and peers)."
    echo "Command: $COMMAND, comparison run started $STARTED; the section's commands are below."
    echo "Peers measured in the same run: $2"
    echo
    echo '```'
    cat "$3"
    echo '```'
  } >>bench/RESULTS.md
  note "appended to bench/RESULTS.md"
}
NO_PEER="none for this measure. This run's peer figures (PostgreSQL, JetStream) are in its durable throughput and closure query sections; the peers were stopped before this section."

# ---- peers ----------------------------------------------------------------------------------
if wanted throughput || wanted closure; then
step "starting PostgreSQL and nats-server in $WORK"
PG_PORT=$(free_port 15433)
NATS_PORT=$(free_port 14222)
PG_PID=$(bench/peers/postgres.sh start "$PG_DIR" "$PG_PORT" | tail -1)
NATS_PID=$(bench/peers/nats.sh start "$NATS_DIR" "$NATS_PORT" | tail -1)
PG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=postgres dbname=peers"
NATS_VERSION=$(nats-server --version 2>&1 | head -1)
note "PostgreSQL PID $PG_PID on 127.0.0.1:$PG_PORT, nats-server PID $NATS_PID on 127.0.0.1:$NATS_PORT"
else
  STEPS=$((STEPS - 1))
fi

# ---- (a) durable throughput, interleaved ----------------------------------------------------
if wanted throughput; then
MEASURES=(casebus-frame1 casebus-frame100 pg-app pg-tuned jetstream)
declare -A LABEL=(
  [casebus-frame1]="casebus, 1 command/frame, 8 clients x 128 in flight"
  [casebus-frame100]="casebus, 100 commands/frame, 4 clients x 16 in flight"
  [pg-app]="PostgreSQL ticket store, --style app"
  [pg-tuned]="PostgreSQL ticket store, --style tuned"
  [jetstream]="JetStream publish (acks BEFORE fsync)"
)
# Sets CMD to one run of measure $1.
measure_cmd() {
  case $1 in
    casebus-frame1) CMD=("$BIN/e2e_throughput" --clients 8 --window 128 --frame 1) ;;
    casebus-frame100) CMD=("$BIN/e2e_throughput" --clients 4 --window 16 --frame 100) ;;
    pg-app) CMD=("$BIN/pg_ticket_store" --conninfo "$PG_CONNINFO" --style app) ;;
    pg-tuned) CMD=("$BIN/pg_ticket_store" --conninfo "$PG_CONNINFO" --style tuned) ;;
    jetstream) CMD=("$BIN/jetstream_publish" --url "nats://127.0.0.1:$NATS_PORT") ;;
  esac
  CMD+=(--seconds "$SECS" --warmup "$WARMUP" --runs 1)
}

begin_section "durable throughput: ${#MEASURES[@]} measures x $RUNS runs, interleaved, $SECS s each"
for ((r = 1; r <= RUNS; r++)); do
  for m in "${MEASURES[@]}"; do
    note "run $r of $RUNS: $m"
    measure_cmd "$m"
    out=$WORK/tp-$m-$r.out
    "${CMD[@]}" >"$out"
    rate=$(awk '/^  run 1:/ { print $3; exit }' "$out")
    [[ $rate =~ ^[0-9.]+$ ]] || { cat "$out" >&2; echo "$0: no rate in the output of ${CMD[*]}" >&2; exit 1; }
    note "  $rate commands/s"
    echo "$rate" >>"$WORK/tp-$m.rates"
    {
      if ((r == 1)); then
        echo "\$ ${CMD[*]}   (run $RUNS time(s), interleaved with the other measures)"
        grep -v -e '^  run 1:' -e '^median:' "$out" || true
      fi
      sed -n "s/^  run 1:/  run $r:/p" "$out"
    } >>"$WORK/tp-$m.log"
  done
done
PG_SERVER=$(sed -n 's/^server: //p' "$WORK/tp-pg-app-1.out")
tp=$WORK/throughput.txt
for m in "${MEASURES[@]}"; do
  cat "$WORK/tp-$m.log"
  echo "median: $(median "$WORK/tp-$m.rates") commands/s (min $(minimum "$WORK/tp-$m.rates"), max $(maximum "$WORK/tp-$m.rates"), n=$RUNS)"
  echo
done >"$tp"
declare -A MED
for m in "${MEASURES[@]}"; do MED[$m]=$(median "$WORK/tp-$m.rates"); done
{
  echo "medians, lifecycle commands acknowledged per second (casebus and PostgreSQL: after fsync):"
  for m in "${MEASURES[@]}"; do printf '  %-56s %10.0f\n' "${LABEL[$m]}" "${MED[$m]}"; done
  echo "ratios (casebus / peer):"
  for c in casebus-frame1 casebus-frame100; do
    for p in pg-app pg-tuned jetstream; do
      printf '  %-56s %10s\n' "$c / $p" "$(ratio "${MED[$c]}" "${MED[$p]}")"
    done
  done
  echo "JetStream: $NATS_VERSION acknowledges a publish before fsync (it syncs every 2 min;"
  echo "sync_interval: always is rejected): weaker durability than casebus and PostgreSQL, and it"
  echo "keeps no case state (no routing, merging or checks) — a ceiling for a bus, not a like-for-like."
} >>"$tp"
append_section "durable throughput (casebus beside PostgreSQL and JetStream)" \
  "PostgreSQL ($PG_SERVER; bench/peers/postgres.sh settings) and $NATS_VERSION with JetStream (file storage; acks before fsync), from bench/peers, started by this run in $WORK; each run of each measure in turn." \
  "$tp"
fi

# ---- (c) closure query ----------------------------------------------------------------------
if wanted closure; then
begin_section "closure query against history size ($CLOSURE_SIZES cases)"
cq=$WORK/closure.txt
run "$cq" "$BIN/ledger_query_bench" --runs "$RUNS" --cases "$CLOSURE_SIZES"
echo >>"$cq"
note "pg_ticket_store --closure-query --history $CLOSURE_SIZES (a 10M load takes minutes)"
run "$cq" "$BIN/pg_ticket_store" --conninfo "$PG_CONNINFO" --closure-query --history "$CLOSURE_SIZES" --repeat 20
summary=$WORK/closure-summary.txt
{
  echo
  echo "closure rate by department for one month, ms (casebus: median over runs of each run's p50;"
  echo "PostgreSQL: median of 20 executions of BASELINES §4 query (c), March 2026, index scan):"
  printf '  %12s %14s %14s %12s %12s %12s\n' cases "casebus answer" "answer+JSON" PostgreSQL "PG/answer" "PG/+JSON"
  IFS=, read -r -a sizes <<<"$CLOSURE_SIZES"
  for i in "${!sizes[@]}"; do
    answer=$(awk -v k=$((2 * i + 1)) 'index($0, "metrics answer, department, month") == 1 { split(substr($0, 43), f, " "); printf "%.3f", f[k] / 1000 }' "$cq")
    json=$(awk -v k=$((2 * i + 1)) 'index($0, "answer + JSON (GET /v1/metrics/closure)") == 1 { split(substr($0, 43), f, " "); printf "%.3f", f[k] / 1000 }' "$cq")
    pg=$(awk -v n="${sizes[$i]}" '$2 == "cases:" && $3 == "loaded" { size = $1 } /closure rate by department/ && size == n { for (j = 1; j < NF; j++) if ($j == "median") print $(j + 1) }' "$cq")
    printf '  %12s %14s %14s %12s %12s %12s\n' "${sizes[$i]}" "${answer:-?}" "${json:-?}" "${pg:-?}" \
      "$(ratio "${pg:-0}" "${answer:-0}")" "$(ratio "${pg:-0}" "${json:-0}")"
  done
  echo "casebus answers from maintained counters (the current month of a history ending 2026-11-17);"
  echo "PostgreSQL aggregates the month's rows. Ratios > 1: casebus is faster."
} >"$summary"
cat "$summary" >>"$cq"
PG_SERVER=${PG_SERVER:-$(sed -n 's/^server: //p' "$cq" | head -1)}  # set by throughput when it ran
append_section "closure query (casebus ledger beside PostgreSQL)" \
  "PostgreSQL ($PG_SERVER), bench/peers/postgres.sh settings, started by this run; the same city config (departments, categories, grids)." \
  "$cq"
fi

note "stopping the peers before the casebus-only sections"
stop_peers

# ---- (b) latency ----------------------------------------------------------------------------
if wanted latency; then
begin_section "open-loop latency at 1k, 10k, 50k, 100k commands/s offered"
lat=$WORK/latency.txt
run "$lat" "$BIN/e2e_latency" --rates 1000,10000,50000,100000 --seconds "$SECS" --warmup "$WARMUP" --runs "$RUNS"
# Gateways (a hotline bridge, a sensor hub) sending 20 commands a frame; each command's wait
# at the gateway for its frame to fill counts in its latency.
run "$lat" "$BIN/e2e_latency" --rates 10000,50000 --frame 20 --seconds "$SECS" --warmup "$WARMUP" --runs "$RUNS" --no-disk-floor
# Single-command frames again, the clients paced by a 1 ms tick: each wakes once a millisecond
# and sends the frames due by then (their wait for the tick counts in their latency). Paced
# frame by frame, the four clients and their ZeroMQ I/O threads took a whole core at 50k/s.
run "$lat" "$BIN/e2e_latency" --rates 10000,50000 --tick-us 1000 --seconds "$SECS" --warmup "$WARMUP" --runs "$RUNS" --no-disk-floor
append_section "open-loop latency (e2e_latency)" "$NO_PEER" "$lat"
fi

# ---- (d) restart ----------------------------------------------------------------------------
if wanted restart; then
begin_section "restart time against open cases ($RESTART_SIZES)"
rs=$WORK/restart.txt
run "$rs" "$BIN/restart_bench" --open "$RESTART_SIZES" --runs "$RUNS"
append_section "restart time against open cases (restart_bench)" "$NO_PEER" "$rs"
fi

# ---- (d2) replay of a journal with history ----------------------------------------------------
if wanted replay; then
begin_section "journal replay with history ($REPLAY_OPEN open cases, 2 closed beside each)"
rp=$WORK/replay.txt
run "$rp" "$BIN/restart_bench" --open "$REPLAY_OPEN" --closed-per-open 2 --from journal --runs "$RUNS"
append_section "journal replay with history: restart from the journal alone (restart_bench)" "$NO_PEER" "$rp"
fi

# ---- (e) apply and replay -------------------------------------------------------------------
if wanted apply; then
begin_section "apply and replay speed (apply_bench)"
ap=$WORK/apply.txt
run "$ap" "$BIN/apply_bench" --runs "$RUNS" "${APPLY_ARGS[@]}"
append_section "apply and journal replay speed (apply_bench, in-process)" "$NO_PEER" "$ap"
fi

# ---- (f) escalation firing ------------------------------------------------------------------
if wanted timers; then
begin_section "escalation firing cost against open cases (timer_bench)"
tb=$WORK/timers.txt
run "$tb" "$BIN/timer_bench" --runs "$RUNS" "${TIMER_ARGS[@]}"
append_section "escalation firing cost against open cases (timer_bench, in-process)" "$NO_PEER" "$tb"
fi

echo "[compare] done: $STEP steps, started $STARTED, finished $(date -u +%Y-%m-%dT%H:%MZ); see bench/RESULTS.md" >&2
