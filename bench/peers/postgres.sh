#!/usr/bin/env bash
# A throw-away PostgreSQL server for the peer benchmarks (README.md), on loopback only.
#
#   postgres.sh start DIR PORT   initdb into DIR/pg on first use (as user postgres: the server
#                                refuses root, so DIR is chowned to it), start, create database
#                                "peers", print the postmaster PID. Already running: print it.
#   postgres.sh stop DIR         pg_ctl -m fast stop, then kill the postmaster if still alive.
#                                Nothing running: does nothing. Safe in a trap.
#
# Settings as BASELINES.md §4: shared_buffers=4GB, synchronous_commit=on, fsync=on,
# full_page_writes=on, max_wal_size=8GB, checkpoint_timeout=15min, jit=off; TCP on 127.0.0.1
# only, the unix socket in DIR; trust authentication (loopback, a scratch cluster).
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }

pg_bindir() {
  local d
  if command -v pg_config >/dev/null && d=$(pg_config --bindir) && [[ -x $d/postgres ]]; then
    echo "$d"; return
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n $d && -x $d/postgres ]] || { echo "$0: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }
  echo "$d"
}

as_postgres() { runuser -u postgres -- "$@"; }

# The postmaster PID from DIR/pg/postmaster.pid when that process is alive and is a postgres
# serving DIR/pg (a stale file's PID may belong to another process by now).
running_pid() {
  local data=$1 pid
  [[ -f $data/postmaster.pid ]] || return 1
  pid=$(head -1 "$data/postmaster.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "postgres.*$data" || return 1
  echo "$pid"
}

start() {
  local dir port bin data pid
  dir=$(realpath -m "$1"); port=$2
  [[ $port =~ ^[0-9]+$ ]] || usage
  bin=$(pg_bindir); data=$dir/pg
  mkdir -p "$dir"
  chown postgres: "$dir"
  as_postgres test -w "$dir" || {
    echo "$0: user postgres cannot reach $dir (a parent directory is closed to it); use e.g. mktemp -d /tmp/pg-XXXXXX" >&2
    exit 1
  }
  if pid=$(running_pid "$data"); then echo "$pid"; return; fi
  if [[ ! -f $data/PG_VERSION ]]; then
    as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<EOF
# bench/peers/postgres.sh (BASELINES.md §4)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_buffers = 4GB
effective_cache_size = 16GB
work_mem = 64MB
max_wal_size = 8GB
checkpoint_timeout = 15min
jit = off
synchronous_commit = on
fsync = on
full_page_writes = on
commit_delay = 0
wal_sync_method = fdatasync
EOF
  fi
  # The port may differ from the one initdb saw: -o wins over the file.
  as_postgres "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 120 -o "-p $port" start \
    >/dev/null || { tail -20 "$dir/postgres.log" >&2; exit 1; }
  if [[ -z $(as_postgres "$bin/psql" -h "$dir" -p "$port" -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'peers'") ]]; then
    as_postgres "$bin/createdb" -h "$dir" -p "$port" peers
  fi
  running_pid "$data"
}

stop() {
  local dir data pid bin
  dir=$(realpath -m "$1"); data=$dir/pg
  pid=$(running_pid "$data") || return 0
  bin=$(pg_bindir)
  as_postgres "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -QUIT "$pid" 2>/dev/null || true  # immediate shutdown
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

case ${1:-} in
  start) [[ $# -eq 3 ]] || usage; start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
  *) usage ;;
esac
