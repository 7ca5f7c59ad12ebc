#!/usr/bin/env python3
"""Reload of a running `casebus serve`: SIGHUP and POST /v1/admin/reload.

usage: reload_test.py CASEBUS SOURCE_DIR

Serves a copy of the sample city with an access file, then:
  1. adds a token to the access file and sends SIGHUP: the new token works, the old ones too;
  2. doubles a category's handle limit in the config and reloads over HTTP: a case dispatched
     after it gets the longer deadline, one dispatched before keeps its own;
  3. breaks the config (YAML error), then makes it incompatible (a department removed), then
     breaks the access file: each reload is refused (SIGHUP: logged; HTTP: 422 naming why) and
     every token and rule in force before keeps working;
  4. a token's role may not reload (403).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import urllib.error

checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)


def new_token(binary, name, role, department=None):
    args = [binary, "token", "new", "--name", name, "--role", role]
    if department:
        args += ["--department", department]
    out = subprocess.run(args, capture_output=True, check=True, text=True).stdout.splitlines()
    line = [l for l in out if "sha256:" in l][0]
    return out[1].strip(), line


def call(http, method, path, token, body=None, key=None):
    req = urllib.request.Request("http://%s%s" % (http, path), method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    binary, source = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="casebus-reload-")
    config = os.path.join(tmp, "city.yaml")
    shutil.copy(os.path.join(source, "deploy/config/sample-city.yaml"), config)
    original = open(config, encoding="utf-8").read()
    access = os.path.join(tmp, "access.yaml")
    op, op_line = new_token(binary, "op", "operator")
    admin, admin_line = new_token(binary, "admin", "admin")
    leader, leader_line = new_token(binary, "leader", "leader")
    lines = [op_line, admin_line, leader_line]

    def write_access(extra=()):
        with open(access, "w") as f:
            f.write("tokens:\n" + "\n".join(list(lines) + list(extra)) + "\n")

    write_access()
    http_file = os.path.join(tmp, "http.txt")
    log = open(os.path.join(tmp, "serve.log"), "w+")
    serve = subprocess.Popen([binary, "serve", "--config", config, "--access", access, "--data", tmp + "/data",
                              "--endpoint", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--http-file", http_file],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if os.path.exists(http_file):
                break
            time.sleep(0.05)
        http = open(http_file).read().strip()

        def report(n, key):
            status, r = call(http, "POST", "/v1/cases", op,
                             {"category": "200404", "place": {"grid": grids[n]}, "source": "HOTLINE"}, key)
            check(status == 201, "report %s: %d %s" % (key, status, r))
            cid = r["case_id"]
            for action in ("register", "dispatch"):
                status, r = call(http, "POST", "/v1/cases/%s:%s" % (cid, action), op, {}, key + action)
                check(status == 200, "%s %s: %d %s" % (action, cid, status, r))
            status, r = call(http, "GET", "/v1/cases/" + cid, op)
            return cid, int(r["case"]["handle_deadline_ms"])

        grids = re.findall(r'\{code: "(\d{15})"', original)
        first, first_deadline = report(0, "r1")  # grids far apart: no duplicate merging

        # 1. A new token through SIGHUP.
        dispatcher, line = new_token(binary, "disp", "dispatcher")
        check(call(http, "GET", "/v1/status", dispatcher)[0] == 401, "unknown token before reload")
        lines.append(line)
        write_access()
        serve.send_signal(signal.SIGHUP)
        ok = False
        for _ in range(100):
            if call(http, "GET", "/v1/status", dispatcher)[0] == 200:
                ok = True
                break
            time.sleep(0.05)
        check(ok, "the token added by SIGHUP works")
        check(call(http, "GET", "/v1/status", admin)[0] == 200, "old tokens still work")

        # 2. A longer limit over HTTP.
        doubled = re.sub(r'(- code: "200404"\n(?:.*\n)*?      handle:\n        value: )([0-9.]+)',
                         lambda m: m.group(1) + str(float(m.group(2)) * 2), original, count=1)
        check(doubled != original, "the test found the drain category's handle limit")
        open(config, "w", encoding="utf-8").write(doubled)
        status, r = call(http, "POST", "/v1/admin/reload", admin, {})
        check(status == 200 and r.get("reloaded") is True, "reload: %d %s" % (status, r))
        second, second_deadline = report(40, "r2")
        check(second_deadline > first_deadline, "the longer limit applies after the reload (%d vs %d)"
              % (second_deadline, first_deadline))
        status, r = call(http, "GET", "/v1/cases/" + first, op)
        check(int(r["case"]["handle_deadline_ms"]) == first_deadline, "a deadline set before stays")

        # 3. Refusals keep everything in force.
        refusals = [
            ("YAML error", lambda: open(config, "w").write(doubled + "\n  : : [\n"), "city.yaml"),
            ("department removed",
             lambda: open(config, "w", encoding="utf-8").write(
                 re.sub(r'  - id: "command-330105"\n(?:    .*\n)+', "", doubled, count=1)), "command-330105"),
            ("access file broken", lambda: (open(config, "w", encoding="utf-8").write(doubled),
                                            open(access, "a").write("  - {name: x, role: nobody}\n")), "access.yaml"),
        ]
        for name, breakit, want in refusals:
            breakit()
            status, r = call(http, "POST", "/v1/admin/reload", admin, {})
            check(status == 422, "%s: reload answered %d %s" % (name, status, r))
            reason = r.get("error", {}).get("reason", "")
            check(want in reason, "%s: the refusal names %r: %s" % (name, want, reason))
            serve.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            log.seek(0)
            check("reload refused" in log.read(), "%s: SIGHUP refusal logged" % name)
            for tok in (op, admin, leader, dispatcher):
                check(call(http, "GET", "/v1/cases?limit=1", tok)[0] in (200, 403), "%s: tokens still known" % name)
            check(call(http, "GET", "/v1/status", dispatcher)[0] == 200, "%s: dispatcher still works" % name)
        write_access()
        _, third_deadline = report(80, "r3")
        check(third_deadline - second_deadline >= 0, "the doubled limit is still in force")

        # 4. Only admin reloads.
        for tok in (op, leader, dispatcher):
            check(call(http, "POST", "/v1/admin/reload", tok, {})[0] == 403, "only admin reloads")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
    print("reload: %d checks passed" % checks)


if __name__ == "__main__":
    main()
