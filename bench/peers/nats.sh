#!/usr/bin/env bash
# A throw-away nats-server with JetStream for the peer benchmarks (README.md), on loopback.
#
#   nats.sh start DIR PORT   nats-server -js -a 127.0.0.1 -p PORT -sd DIR/js in the background,
#                            PID in DIR/nats.pid (-P), log in DIR/nats.log; waits until it accepts
#                            connections and prints the PID. Already running: print it.
#   nats.sh stop DIR         SIGTERM the PID, then SIGKILL if still alive after 5 s.
#                            Nothing running: does nothing. Safe in a trap.
#
# Durability: nats-server 2.9 acknowledges a JetStream publish before fsync (it syncs every
# 2 minutes by default, and rejects `sync_interval: always`); BASELINES.md caveat 2.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }

# The PID in DIR/nats.pid when that process is alive and is a nats-server of DIR.
running_pid() {
  local dir=$1 pid
  [[ -f $dir/nats.pid ]] || return 1
  pid=$(cat "$dir/nats.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "nats-server.*$dir/js" || return 1
  echo "$pid"
}

start() {
  local dir port pid
  dir=$(realpath -m "$1"); port=$2
  [[ $port =~ ^[0-9]+$ ]] || usage
  command -v nats-server >/dev/null || { echo "$0: nats-server not found (apt-get install nats-server)" >&2; exit 1; }
  mkdir -p "$dir/js"
  if pid=$(running_pid "$dir"); then echo "$pid"; return; fi
  rm -f "$dir/nats.pid"
  # The server writes its own PID file (-P): right whether or not setsid had to fork.
  setsid nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/js" -P "$dir/nats.pid" \
    </dev/null >"$dir/nats.log" 2>&1 &
  for _ in $(seq 100); do
    if grep -q "Server is ready" "$dir/nats.log" && pid=$(running_pid "$dir"); then
      echo "$pid"; return
    fi
    if grep -qi "fatal\|error" "$dir/nats.log"; then tail -20 "$dir/nats.log" >&2; stop "$dir"; exit 1; fi
    sleep 0.1
  done
  echo "$0: nats-server did not come up on 127.0.0.1:$port in 10 s" >&2
  stop "$dir"; exit 1
}

stop() {
  local dir pid
  dir=$(realpath -m "$1")
  pid=$(running_pid "$dir") || { rm -f "$dir/nats.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$dir/nats.pid"
}

case ${1:-} in
  start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac
