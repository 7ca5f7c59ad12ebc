#!/usr/bin/python3
"""A real Prometheus scrapes a real `casebus serve` and evaluates deploy/prometheus/alerts.yml.

Usage: prometheus_test.py [--fake] CASEBUS SOURCE_DIR OUT_DIR

  1. `CASEBUS demo --keep TMP/data --days 3 --cases-per-day 300` leaves a store with history,
     then `CASEBUS serve --data TMP/data --access TMP/access.yaml --http 127.0.0.1:0 ...` serves
     it. The access file holds one leader token (`CASEBUS token new`), which every request to
     /v1/metrics/closure sends; /metrics, which Prometheus scrapes, needs none.
     With --fake, tests/support/fake_casebus_metrics.py serves instead, and CASEBUS is unused
     (pass "-"). That is how this harness was developed before the engine served /metrics.
  2. GET /metrics is saved to OUT_DIR/metrics.txt, and `promtool check metrics` must accept it
     (exit 0: no parse error and no lint problem).
  3. Prometheus (TMP/prometheus.yml: job "casebus", scrape and rule evaluation every second,
     rule file SOURCE_DIR/deploy/prometheus/alerts.yml) scrapes it until up{job="casebus"} is 1.
  4. Once the engine's numbers are stable (two GETs of /v1/metrics/closure 1 s apart agree;
     timers due at start fire during the first seconds), and Prometheus has scraped and
     evaluated the rules since, for department and for district:
       - PromQL closed/due, and the recording rule casebus:<group>_closure_rate, must match
         every row's closure_rate of the JSON API (|diff| < 1e-9). A null rate (nothing due)
         must be NaN or have no sample in Prometheus;
       - the JSON fetched just before and just after the PromQL queries must be equal (rows
         compared, so an as_of timestamp may differ), which proves the numbers were stable;
       - the counters of every JSON row must equal casebus_<group>_cases in /metrics, fetched
         between the two.
     Also: /api/v1/rules lists every rule of alerts.yml, all healthy; casebus_store_healthy is
     1; no engine-level critical alert is pending or firing.
  5. Prometheus and casebus are stopped by pid (SIGTERM, then SIGKILL after 10 s).

OUT_DIR keeps metrics.txt, the Prometheus config, the PromQL answers and every process's log.
Exit 0 = passed, 1 = failed (reason on stderr), 77 = skipped: promtool or prometheus is not
installed (Debian package `prometheus`).
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

SCRAPE_S = 1             # scrape and rule-evaluation interval of the test's Prometheus
RATE_TOLERANCE = 1e-9    # JSON closure_rate vs PromQL closed/due
SKIPPED = 77             # ctest: set_tests_properties(... SKIP_RETURN_CODE 77)
GROUPINGS = (            # (group_by, label, metric, recording rule)
    ("department", "department", "casebus_department_cases", "casebus:department_closure_rate"),
    ("district", "district", "casebus_district_cases", "casebus:district_closure_rate"),
)
# Alerts that must be neither pending nor firing on a healthy engine that was just started.
ENGINE_CRITICAL = ("CasebusDown", "CasebusCommitErrors", "CasebusStoreUnhealthy")


class Failure(Exception):
    """A failed check; the message says what was expected and what was seen."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def ok(message):
    print("ok   " + message, flush=True)


# ------------------------------------------------------------------------------ processes
class Process:
    """A child process whose output goes to a log file; stopped by pid."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    def running(self):
        return self.popen.poll() is None

    def stop(self):
        if self.running():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print("%s (pid %d) ignored SIGTERM for 10 s: SIGKILL" % (self.name, self.popen.pid),
                      file=sys.stderr)
                self.popen.kill()
                self.popen.wait()
        self.log.close()

    def tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(what, timeout_s, probe, interval_s=0.2, proc=None):
    """Calls probe() until it returns something other than None; fails after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        if proc is not None and not proc.running():
            raise Failure("%s exited (status %s) while waiting for %s"
                          % (proc.name, proc.popen.returncode, what))
        try:
            result = probe()
            if result is not None:
                return result
        except (OSError, ValueError, urllib.error.URLError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise Failure("timed out after %d s waiting for %s%s" % (
                timeout_s, what, "" if last_error is None else " (last error: %s)" % last_error))
        time.sleep(interval_s)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ HTTP
def http_get(url, headers=(), timeout_s=10):
    request = urllib.request.Request(url)
    for name, value in headers:
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


class Casebus:
    """The HTTP side of a casebus server (or of the fake) at addr."""

    def __init__(self, addr, headers):
        self.base = "http://" + addr
        self.headers = headers

    def metrics(self):
        return http_get(self.base + "/metrics", self.headers).decode("utf-8")

    def closure_rows(self, group_by):
        """GET /v1/metrics/closure: {key: row}. Only the rows are compared across calls, so a
        timestamp elsewhere in the answer may change."""
        body = json.loads(http_get("%s/v1/metrics/closure?group_by=%s" % (self.base, group_by),
                                   self.headers))
        check(isinstance(body.get("rows"), list),
              "/v1/metrics/closure?group_by=%s: no rows list in %s" % (group_by, str(body)[:300]))
        rows = {}
        for row in body["rows"]:
            check("key" in row and "closure_rate" in row,
                  "group_by=%s: a row lacks key or closure_rate: %s" % (group_by, row))
            check(row["key"] not in rows, "group_by=%s: key %r twice" % (group_by, row["key"]))
            rows[row["key"]] = row
        return rows


class Prometheus:
    """The HTTP API of the test's Prometheus."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def api(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        body = json.loads(http_get(url))
        check(body.get("status") == "success", "%s: %s" % (url, body))
        return body["data"]

    def query(self, expr):
        """An instant query returning a vector: [(labels, float)], NaN as float('nan')."""
        data = self.api("/api/v1/query", query=expr)
        check(data["resultType"] == "vector", "%s: result is a %s" % (expr, data["resultType"]))
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def scalar(self, expr):
        """The value of a query with at most one sample, or None without one."""
        samples = self.query(expr)
        check(len(samples) <= 1, "%s: %d samples, want at most 1" % (expr, len(samples)))
        return samples[0][1] if samples else None


# ------------------------------------------------------------------------------ exposition
SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
LABEL_ESCAPE = re.compile(r'\\(.)')   # the format escapes only \\, \" and \n in label values


def unescape(m):
    return "\n" if m.group(1) == "n" else m.group(1)


def parse_exposition(text):
    """{metric name: [(labels, float)]} from the text format (enough for these checks; the
    format itself is promtool's job)."""
    families = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_LINE.match(line)
        check(m is not None, "unparsable exposition line: %r" % line)
        labels = {k: LABEL_ESCAPE.sub(unescape, v) for k, v in LABEL_PAIR.findall(m.group(2) or "")}
        families.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return families


def promtool_check_metrics(promtool, text, out_dir):
    path = os.path.join(out_dir, "metrics.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    with open(path, "rb") as f:
        result = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True,
                                timeout=60)
    output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    check(result.returncode == 0, "promtool check metrics < %s: exit %d\n%s"
          % (path, result.returncode, output))
    ok("promtool check metrics accepts /metrics (%d lines, saved to %s)"
       % (text.count("\n"), path))


def rule_names(alerts_path):
    """(alert names, recording rule names) in alerts.yml, read without a YAML parser."""
    with open(alerts_path, encoding="utf-8") as f:
        text = f.read()
    alerts = re.findall(r"^\s*-\s*alert:\s*(\S+)\s*$", text, re.M)
    records = re.findall(r"^\s*-\s*record:\s*(\S+)\s*$", text, re.M)
    check(alerts, "no alert found in %s" % alerts_path)
    return set(alerts), set(records)


# ------------------------------------------------------------------------------ comparisons
def compare_rates(what, rows, samples, label):
    """Every JSON row's closure_rate against Prometheus samples keyed by `label`."""
    prom = {}
    for metric, value in samples:
        key = metric.get(label)
        check(key is not None, "%s: a sample without label %s: %s" % (what, label, metric))
        check(key not in prom, "%s: two samples for %s=%r" % (what, label, key))
        prom[key] = value
    for key, row in sorted(rows.items()):
        want, got = row["closure_rate"], prom.get(key)
        if want is None:
            check(got is None or math.isnan(got),
                  "%s: %s=%r has closure_rate null in the JSON (nothing due) but %r in "
                  "Prometheus, want NaN or no sample" % (what, label, key, got))
        else:
            check(got is not None, "%s: %s=%r has closure_rate %r in the JSON but no sample in "
                  "Prometheus" % (what, label, key, want))
            check(not math.isnan(got) and abs(got - want) < RATE_TOLERANCE,
                  "%s: %s=%r: JSON closure_rate %r, Prometheus %r (|diff| must be < %g)"
                  % (what, label, key, want, got, RATE_TOLERANCE))
    extra = sorted(k for k, v in prom.items() if k not in rows and not math.isnan(v))
    check(not extra, "%s: Prometheus has rates for %s=%s, which the JSON API does not list"
          % (what, label, extra))
    rated = sum(1 for r in rows.values() if r["closure_rate"] is not None)
    return "%d %ss (%d with a rate, %d null)" % (len(rows), label, rated, len(rows) - rated)


def compare_counters(rows, families, label, metric):
    """The JSON rows' counters against the gauges of the exposition."""
    exposed = {}
    for labels, value in families.get(metric, []):
        check(label in labels and "counter" in labels, "%s without %s or counter: %s"
              % (metric, label, labels))
        exposed.setdefault(labels[label], {})[labels["counter"]] = value
    check(exposed, "/metrics has no %s" % metric)
    compared = 0
    for key, row in rows.items():
        if key == "":
            # Cases not yet dispatched have no department: the JSON lists them under "", the
            # exposition leaves them out (an empty label value is no label in Prometheus).
            continue
        check(key in exposed, "/metrics has no %s{%s=%r}" % (metric, label, key))
        for counter, value in exposed[key].items():
            if counter in row:
                check(row[counter] == value, "%s{%s=%r,counter=%r} is %r, the JSON says %r"
                      % (metric, label, key, counter, value, row[counter]))
                compared += 1
    for key, counters in exposed.items():
        check(key in rows or counters.get("due", 0) == 0,
              "/metrics has %s=%r with due > 0, which the JSON API does not list" % (label, key))
    check(compared > 0, "no counter of %s matched a JSON field" % metric)
    return compared


# ------------------------------------------------------------------------------ the steps
def leader_access(casebus, tmp):
    """An access file with one leader token: (path, token)."""
    out = subprocess.run([casebus, "token", "new", "--name", "prometheus-test", "--role", "leader"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    path = os.path.join(tmp, "access.yaml")
    with open(path, "w") as f:
        f.write("tokens:\n" + "".join(line + "\n" for line in out if line.startswith("  - {")))
    return path, out[1].strip()


def start_engine(args, tmp, out_dir, procs):
    """Starts casebus serve (after the demo), or the fake. Returns its HTTP address; adds the
    leader token's Authorization header to args.header."""
    http_file = os.path.join(tmp, "http")
    if args.fake:
        fake = os.path.join(args.source_dir, "tests", "support", "fake_casebus_metrics.py")
        argv = [sys.executable, fake, "--http-file", http_file]
        name = "fake_casebus_metrics"
    else:
        data = os.path.join(tmp, "data")
        demo_log = os.path.join(out_dir, "casebus-demo.log")
        with open(demo_log, "wb") as log:
            demo = subprocess.run([args.casebus, "demo", "--keep", data, "--days", "3",
                                   "--cases-per-day", "300"],
                                  stdout=log, stderr=subprocess.STDOUT, timeout=600)
        check(demo.returncode == 0, "casebus demo exited %d; see %s" % (demo.returncode, demo_log))
        ok("casebus demo --keep: a store with 3 days of history")
        access, token = leader_access(args.casebus, tmp)
        args.header.append(("Authorization", "Bearer " + token))
        argv = [args.casebus, "serve", "--data", data, "--access", access, "--http", "127.0.0.1:0",
                "--http-file", http_file, "--endpoint", "tcp://127.0.0.1:0",
                "--endpoint-file", os.path.join(tmp, "zmq")]
        name = "casebus"
    proc = Process(name, argv, os.path.join(out_dir, name + ".log"))
    procs.append(proc)

    def address():
        with open(http_file) as f:
            text = f.read()
        return text.strip() if text.endswith("\n") else None  # written whole, newline last

    addr = wait_for("%s to write %s" % (name, http_file), 30, address, proc=proc)
    ok("%s serves HTTP at %s (pid %d)" % (name, addr, proc.popen.pid))
    return addr


def start_prometheus(prometheus_bin, target, alerts_path, tmp, out_dir, procs):
    port = free_port()
    config = os.path.join(out_dir, "prometheus.yml")
    with open(config, "w") as f:
        f.write("# Written by tests/integration/prometheus_test.py\n"
                "global:\n"
                "  scrape_interval: %ds\n"
                "  scrape_timeout: %ds\n"
                "  evaluation_interval: %ds\n"
                "rule_files:\n"
                "  - %s\n"
                "scrape_configs:\n"
                "  - job_name: casebus\n"
                "    static_configs:\n"
                "      - targets: ['%s']\n"
                % (SCRAPE_S, SCRAPE_S, SCRAPE_S, json.dumps(alerts_path), target))
    proc = Process("prometheus", [prometheus_bin, "--config.file=" + config,
                                  "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                                  "--web.listen-address=127.0.0.1:%d" % port],
                   os.path.join(out_dir, "prometheus.log"))
    procs.append(proc)
    prom = Prometheus(port)
    wait_for("Prometheus to be ready on port %d" % port, 60,
             lambda: True if http_get(prom.base + "/-/ready") else None, proc=proc)
    wait_for('up{job="casebus"} == 1', 60,
             lambda: True if prom.scalar('up{job="casebus"}') == 1 else None,
             interval_s=0.5, proc=proc)
    ok('Prometheus (pid %d, port %d) scrapes the target: up{job="casebus"} = 1'
       % (proc.popen.pid, port))
    return prom


def check_needs_token(addr):
    """/v1/metrics/closure refuses a request without the token (so the test's token is what
    lets it read), and /metrics, which Prometheus scrapes, needs none."""
    try:
        http_get("http://%s/v1/metrics/closure?group_by=department" % addr)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    check(status == 401, "/v1/metrics/closure without a token: HTTP %d, want 401" % status)
    check(http_get("http://%s/metrics" % addr), "/metrics without a token: empty")
    ok("/v1/metrics/closure needs the leader token (401 without); /metrics needs none")


def check_rules(prom, alerts_path, proc):
    alerts, records = rule_names(alerts_path)

    def evaluated():
        rules = [r for g in prom.api("/api/v1/rules")["groups"] for r in g["rules"]]
        return rules if rules and all(r.get("health") != "unknown" for r in rules) else None

    rules = wait_for("every rule to be evaluated once", 30, evaluated, interval_s=0.5, proc=proc)
    loaded_alerts = {r["name"] for r in rules if r["type"] == "alerting"}
    loaded_records = {r["name"] for r in rules if r["type"] == "recording"}
    check(alerts <= loaded_alerts, "alerts.yml alerts missing from /api/v1/rules: %s"
          % sorted(alerts - loaded_alerts))
    check(records <= loaded_records, "alerts.yml recording rules missing from /api/v1/rules: %s"
          % sorted(records - loaded_records))
    broken = ["%s: %s" % (r["name"], r.get("lastError", "")) for r in rules if r["health"] != "ok"]
    check(not broken, "rules failing on real data: %s" % broken)
    ok("/api/v1/rules: all %d alerts and %d recording rules of alerts.yml loaded, all healthy"
       % (len(alerts), len(records)))


def wait_stable(engine):
    """Waits until two reads 1 s apart agree; returns the time of the second one."""
    def read():
        return {g: engine.closure_rows(g) for g, _, _, _ in GROUPINGS}

    previous = [read()]

    def stable():
        time.sleep(1)
        current = read()
        if current == previous[0]:
            return time.time()
        previous[0] = current
        return None

    started = time.monotonic()
    t = wait_for("the closure numbers to stop changing", 60, stable, interval_s=0)
    ok("closure numbers stable (after %.1f s)" % (time.monotonic() - started))
    return t


def wait_fresh(prom, stable_at, records):
    """Waits for a scrape that started after stable_at, then for rule evaluations after it."""
    time.sleep(2 * SCRAPE_S + 0.2)
    scraped_at = wait_for("a scrape after the numbers were stable", 30,
                          lambda: _at_least(prom.scalar('timestamp(up{job="casebus"})'), stable_at))
    for record in records:
        wait_for("an evaluation of %s after that scrape" % record, 30,
                 lambda: _at_least(prom.scalar("max(timestamp(%s))" % record),
                                   scraped_at + SCRAPE_S))
    ok("Prometheus has scraped (at %.3f) and evaluated the rules since" % scraped_at)


def _at_least(value, bound):
    return value if value is not None and value >= bound else None


def check_grouping(prom, engine, out_dir, group_by, label, metric, record):
    promql = ('sum by (%s) (%s{counter="closed"}) / sum by (%s) (%s{counter="due"})'
              % (label, metric, label, metric))
    before = engine.closure_rows(group_by)
    direct = prom.query(promql)
    recorded = prom.query(record)
    families = parse_exposition(engine.metrics())
    after = engine.closure_rows(group_by)
    with open(os.path.join(out_dir, "promql-%s.json" % group_by), "w") as f:
        json.dump({"promql": promql, "result": direct, "record": record, "recorded": recorded,
                   "json_rows": before}, f, indent=1, ensure_ascii=False, default=str)
    check(before == after, "group_by=%s: the JSON changed while Prometheus was queried; "
          "not stable" % group_by)
    check(before, "group_by=%s: the JSON API lists no rows" % group_by)
    summary = compare_rates("PromQL closed/due by %s" % label, before, direct, label)
    ok("PromQL closed/due = JSON closure_rate for all %s" % summary)
    compare_rates(record, before, recorded, label)
    ok("%s = JSON closure_rate for every %s" % (record, label))
    compared = compare_counters(before, families, label, metric)
    ok("%d %s counters in /metrics = the JSON rows" % (compared, metric))
    ok("group_by=%s JSON identical before and after the queries" % group_by)


def check_engine_health(prom):
    healthy = prom.query('casebus_store_healthy{job="casebus"}')
    check(len(healthy) == 1 and healthy[0][1] == 1,
          "casebus_store_healthy: want one sample = 1, got %s" % healthy)
    ok("casebus_store_healthy = 1")
    active = prom.query('ALERTS{alertname=~"%s"}' % "|".join(ENGINE_CRITICAL))
    check(not active, "engine alerts active on a healthy engine: %s" % [s[0] for s in active])
    ok("no %s pending or firing" % "/".join(ENGINE_CRITICAL))


def run(args, tmp, procs):
    promtool, prometheus_bin = shutil.which("promtool"), shutil.which("prometheus")
    if not promtool or not prometheus_bin:
        print("SKIP: promtool and prometheus are needed (Debian package `prometheus`)",
              file=sys.stderr)
        return SKIPPED
    alerts_path = os.path.abspath(os.path.join(args.source_dir, "deploy", "prometheus",
                                               "alerts.yml"))
    check(os.path.isfile(alerts_path), "no %s" % alerts_path)
    os.makedirs(args.out_dir, exist_ok=True)

    addr = start_engine(args, tmp, args.out_dir, procs)
    engine = Casebus(addr, args.header)
    if not args.fake:
        check_needs_token(addr)
    promtool_check_metrics(promtool, engine.metrics(), args.out_dir)
    prom = start_prometheus(prometheus_bin, addr, alerts_path, tmp, args.out_dir, procs)
    prom_proc = procs[-1]
    check_rules(prom, alerts_path, prom_proc)

    stable_at = wait_stable(engine)
    wait_fresh(prom, stable_at, [g[3] for g in GROUPINGS])
    for group_by, label, metric, record in GROUPINGS:
        check_grouping(prom, engine, args.out_dir, group_by, label, metric, record)
    check_engine_health(prom)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fake", action="store_true",
                    help="serve tests/support/fake_casebus_metrics.py instead of casebus")
    ap.add_argument("--keep-tmp", action="store_true", help="leave the temporary directory")
    ap.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                    help="an HTTP header for every request to casebus (e.g. a token)")
    ap.add_argument("casebus")
    ap.add_argument("source_dir")
    ap.add_argument("out_dir")
    args = ap.parse_args()
    args.header = [tuple(part.strip() for part in h.split(":", 1)) for h in args.header]
    args.out_dir = os.path.abspath(args.out_dir)

    tmp = tempfile.mkdtemp(prefix="casebus-prometheus-")
    procs = []
    status = 1
    try:
        status = run(args, tmp, procs)
    except Exception as e:  # noqa: BLE001 - any error fails the test, with the logs
        if isinstance(e, Failure):
            print("FAIL: %s" % e, file=sys.stderr)
        else:
            traceback.print_exc()
            print("FAIL: unexpected %s" % type(e).__name__, file=sys.stderr)
        for proc in procs:
            print("--- last lines of %s (%s)\n%s" % (proc.name, proc.log_path, proc.tail()),
                  file=sys.stderr)
    finally:
        for proc in reversed(procs):   # Prometheus first, then the engine it scrapes
            proc.stop()
        if args.keep_tmp:
            print("temporary directory kept: " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if status == 0:
        print("prometheus_test: passed%s" % (" (against the fake)" if args.fake else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
