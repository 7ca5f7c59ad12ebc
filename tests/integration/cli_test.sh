#!/usr/bin/env bash
# The operator's view: a real `casebus serve` and the CLI verbs against it over ZeroMQ.
# Usage: cli_test.sh CASEBUS_BINARY SOURCE_DIR
set -uo pipefail
B=$1
SRC=$2
d=$(mktemp -d /tmp/casebus-cli-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- server log" >&2; cat "$d/log" >&2; exit 1; }

# run NAME EXPECTED_EXIT PATTERN -- casebus args...
run() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$B" "$@" 2>&1)
  rc=$?
  [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want; output: $out"
  grep -qE -- "$pattern" <<<"$out" || fail "$name: output lacks /$pattern/: $out"
  echo "ok   $name"
}

"$B" serve --data "$d/data" --endpoint 'tcp://127.0.0.1:*' --endpoint-file "$d/ep" --http 127.0.0.1:0 --http-file "$d/http" >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$d/ep" ] && break; sleep 0.1; done
[ -s "$d/ep" ] || fail "server did not start"
export CASEBUS_ENDPOINT=$(cat "$d/ep")

G=330102001001001
run report 0 '^ok: case 1$' -- report --category 200404 --grid $G --source inspector --lat 30.2701 --lon 120.1503 --description "storm drain clogged" --request-id r-1
run retry 0 'case 1 \(retry: original result\)' -- report --category 200404 --grid $G --source inspector --lat 30.2701 --lon 120.1503 --description "storm drain clogged" --request-id r-1
run reused-id 1 'ALREADY_EXISTS.*request_id' -- report --category 200404 --grid $G --source hotline --request-id r-1
run duplicate 0 'case 1 \(merged as a duplicate report\)' -- report --category 200404 --grid $G --source hotline --lat 30.27015 --lon 120.15035
run far-away 0 '^ok: case 2$' -- report --category 200404 --grid $G --source hotline --lat 30.2721 --lon 120.1503
run bad-grid 1 'INVALID_ARGUMENT.*field report.place.grid' -- report --category 200404 --grid 999999999999999 --source inspector
run bad-source 2 'source' -- report --category 200404 --grid $G --source pigeon
run register 0 '^ok: case 1$' -- register 1
run dispatch 0 'case 1 → drainage \(work order 1-1\)' -- dispatch 1
run resolve-early 1 'case 1 is dispatched; resolve needs it accepted' -- resolve 1 --evidence p --actor drainage
run foreign-dept 1 'not with department water-supply' -- accept 1 --actor water-supply
run accept 0 '^ok: case 1$' -- accept 1 --actor drainage
run resolve 0 '^ok: case 1$' -- resolve 1 --evidence photo://1/after.jpg --actor drainage
run verify 0 '^ok: case 1$' -- verify 1 --pass
run close 0 '^ok: case 1$' -- close 1
run show 0 'rule r-drain' -- show 1
run show-history 0 'closed +by operator' -- show 1
run list 0 '1 case\(s\)' -- list --state closed
run list-empty 0 '0 case\(s\)' -- list --department fire-rescue
run closure 0 'drainage .* 100\.0%' -- closure
run status 0 'healthy: +yes' -- status
run status-delivery 0 'drainage +0 +0 s +closed +0 +1 +0' -- status
run deadletter-list 0 '^0 dead letter\(s\)' -- deadletter list
run deadletter-retry-none 1 'NOT_FOUND.*no dead letter 9-1' -- deadletter retry 9-1
run deadletter-bad-action 2 "action 'resend' is not list, retry or drop" -- deadletter resend 9-1
run deadletter-drop-nothing 2 'drop needs ids or --all' -- deadletter drop
run unknown-case 1 'case 99 does not exist' -- show 99
run unknown-flag 2 'unknown flag --colour' -- list --colour red
run check-config 0 'ok' -- check-config "$SRC/deploy/config/sample-city.yaml"
printf 'name: x\ndepartmnts: []\n' >"$d/bad.yaml"
run check-config-bad 1 'bad.yaml:2: .*departmnts' -- check-config "$d/bad.yaml"

[ -f "$d/data/spool/drainage/1-1.json" ] || sleep 1
[ -f "$d/data/spool/drainage/1-1.json" ] || fail "work order 1-1 not in the drainage spool"
grep -q '"case_id":"1"' "$d/data/spool/drainage/1-1.json" || fail "work order file content"
echo "ok   work order delivered to spool"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "serve exited $rc on SIGTERM"
grep -q "stopped" "$d/log" || fail "no stop message"
echo "ok   SIGTERM: clean exit"

# The department console on the zmq gateway: keys from `casebus keygen`, drainage on zmq.
"$B" keygen >"$d/server.keys" || fail "keygen"
"$B" keygen >"$d/drainage.keys" || fail "keygen"
grep -qE '^public: .{40}$' "$d/server.keys" || fail "keygen output: $(cat "$d/server.keys")"
SERVER_PUB=$(sed -n 's/^public: //p' "$d/server.keys")
sed -n 's/^secret: //p' "$d/server.keys" >"$d/server.secret"
DRAIN_PUB=$(sed -n 's/^public: //p' "$d/drainage.keys")
sed -n 's/^secret: //p' "$d/drainage.keys" >"$d/drainage.secret"
GW_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$SRC/deploy/config/sample-city.yaml" "$d/zmq-city.yaml" "$DRAIN_PUB" "$GW_PORT" "$d/server.secret" <<'PY'
import sys
src, out, key, port, secret = sys.argv[1:]
text = open(src).read()
old = '      spool:\n        directory: "spool/drainage"\n'
assert old in text
text = text.replace(old, '      zmq:\n        client_keys: ["%s"]\n' % key)
text += '\nzmq_gateway:\n  endpoint: "tcp://127.0.0.1:%s"\n  secret_key_file: "%s"\n' % (port, secret)
open(out, "w").write(text)
PY
run check-zmq-config 0 'ok' -- check-config "$d/zmq-city.yaml"
rm -f "$d/ep"
"$B" serve --config "$d/zmq-city.yaml" --data "$d/data2" --endpoint 'tcp://127.0.0.1:*' --endpoint-file "$d/ep" >"$d/log2" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$d/ep" ] && break; sleep 0.1; done
[ -s "$d/ep" ] || fail "zmq server did not start: $(cat "$d/log2")"
export CASEBUS_ENDPOINT=$(cat "$d/ep")
DEPT=(dept --department drainage --gateway "tcp://127.0.0.1:$GW_PORT" --server-key "$SERVER_PUB" --key-file "$d/drainage.secret")
run zmq-report 0 '^ok: case 1$' -- report --category 200404 --grid $G --source inspector --description "drain"
run zmq-register 0 '^ok: case 1$' -- register 1
run zmq-dispatch 0 'case 1 → drainage' -- dispatch 1
run dept-inbox 0 '1 work order\(s\)' -- "${DEPT[@]}" inbox --wait 3
run dept-accept 0 '^ok: case 1$' -- "${DEPT[@]}" accept 1
run dept-resolve 0 '^ok: case 1$' -- "${DEPT[@]}" resolve 1 --evidence photo://fixed.jpg
run dept-show 0 'resolved' -- show 1
run dept-bad-key 2 'key-file' -- dept --department drainage --gateway "tcp://127.0.0.1:$GW_PORT" --server-key "$SERVER_PUB" --key-file /nonexistent accept 1
kill -TERM "$pid"
wait "$pid"
pid=
echo "ok   department console on the zmq gateway"
