#!/usr/bin/python3
"""A stand-in for `casebus serve`'s metrics, to develop tests/integration/prometheus_test.py
without the engine.

Serves, on 127.0.0.1 (port 0 unless --port):
  GET /metrics                          Prometheus text exposition (format 0.0.4) of every
                                        casebus metric family, HELP and TYPE included
  GET /v1/metrics/closure?group_by=G    G = department | district: {"group_by", "as_of",
                                        "rows": [{"key", <counters>, "closure_rate",
                                        "on_time_closure_rate"}], "total"}, a rate being
                                        closed / due, or null when due = 0
Both answers are computed from one table of ledger counters, so they agree at any instant.
The table has a department and a district with nothing due (rate null; NaN in PromQL),
rates of exactly 0 and 1, and fractions with no short decimal form (2/3, 5/7).

For the first --settle-s seconds after start, one more case of drainage (district 330102)
becomes due and overdue every second, like escalation timers due at start-up firing during
the engine's first seconds. After that the numbers stay fixed.

Writes "127.0.0.1:PORT\n" to --http-file once listening (atomically, as `casebus serve
--http-file` does). Stops on SIGTERM.
"""
import argparse
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

COUNTERS = ["registered", "dispatched", "due", "closed", "closed_on_time", "overdue_open",
            "handle_due", "handled", "handled_on_time", "rework", "returned", "extended",
            "suspended", "escalated", "supervised"]


def ledger_row(registered, due, closed, on_time, **extra):
    """One department's or district's counters. The ones not given follow from the others."""
    row = {c: 0 for c in COUNTERS}
    row.update(registered=registered, dispatched=registered, due=due, closed=closed,
               closed_on_time=on_time, overdue_open=due - closed, handle_due=due,
               handled=closed, handled_on_time=on_time, escalated=due - on_time)
    row.update(extra)
    return row


# The ledger after a few days of a small city: (registered, due, closed, closed on time).
DEPARTMENTS = {
    "drainage": ledger_row(120, 90, 60, 45, rework=3, returned=1),         # 2/3
    "sanitation-330102": ledger_row(40, 7, 5, 5, extended=1),              # 5/7
    "enforce-330102": ledger_row(30, 13, 13, 12, supervised=2),            # 1
    "street-lighting": ledger_row(6, 3, 0, 0, suspended=1),                # 0
    "water-supply": ledger_row(25, 20, 19, 17),                            # 0.95
    "power-supply": ledger_row(4, 0, 0, 0),                                # null: nothing due
}
DISTRICTS = {
    "330102": ledger_row(110, 70, 51, 44),
    "330103": ledger_row(60, 41, 30, 22),
    "330104": ledger_row(55, 22, 16, 13),
    "330105": ledger_row(0, 0, 0, 0),                                      # null: nothing due
}
OPEN_STAGES = {"registered": 3, "dispatched": 17, "accepted": 31, "returned": 1,
               "suspended": 1, "resolved": 5, "verified": 0}


def rate(num, den):
    return None if den == 0 else num / den


class Ledger:
    """The counters as of now: the fixed table, plus the cases that became due while settling."""

    def __init__(self, settle_s):
        self.start = time.monotonic()
        self.settle_s = settle_s

    def snapshot(self):
        fired = min(int(time.monotonic() - self.start), self.settle_s)
        depts = {k: dict(v) for k, v in DEPARTMENTS.items()}
        dists = {k: dict(v) for k, v in DISTRICTS.items()}
        for row in (depts["drainage"], dists["330102"]):
            for counter in ("due", "overdue_open", "handle_due", "escalated"):
                row[counter] += fired
        return depts, dists

    def closure(self, group_by):
        depts, dists = self.snapshot()
        table = depts if group_by == "department" else dists
        rows = []
        total = {c: 0 for c in COUNTERS}
        for key in sorted(table):
            row = dict({"key": key}, **table[key])
            for c in COUNTERS:
                total[c] += row[c]
            rows.append(finish(row))
        return {"group_by": group_by,
                "as_of": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                "rows": rows, "total": finish(dict({"key": ""}, **total))}

    def exposition(self):
        depts, dists = self.snapshot()
        out = Exposition()
        out.family("casebus_department_cases", "gauge",
                   "Closure-ledger counters per department, all history, as of now.")
        for d in sorted(depts):
            for c in COUNTERS:
                out.sample("casebus_department_cases", {"department": d, "counter": c}, depts[d][c])
        out.family("casebus_district_cases", "gauge",
                   "Closure-ledger counters per district, all history, as of now.")
        for d in sorted(dists):
            for c in COUNTERS:
                out.sample("casebus_district_cases", {"district": d, "counter": c}, dists[d][c])
        out.family("casebus_open_cases", "gauge", "Open cases by stage.")
        for stage, n in OPEN_STAGES.items():
            out.sample("casebus_open_cases", {"stage": stage}, n)
        overdue = sum(r["overdue_open"] for r in depts.values())
        out.gauge("casebus_overdue_open_cases", "Open cases past a deadline.", overdue)
        out.gauge("casebus_supervisions_open", "Open supervision (督办) orders.", 2)

        out.family("casebus_escalations_total", "counter", "Escalation steps fired since start.")
        for stage, levels in (("accept", 3), ("handle", 4), ("verify", 2)):
            for level in range(1, levels + 1):
                out.sample("casebus_escalations_total", {"stage": stage, "level": str(level)},
                           12 // level)
        per_department = [
            ("casebus_deliveries_total", "counter", "Work orders delivered since start.",
             lambda d: depts[d]["dispatched"]),
            ("casebus_dead_letters_total", "counter", "Work orders dead-lettered since start.",
             lambda d: 0),
            ("casebus_delivery_pending", "gauge", "Work orders not yet delivered.", lambda d: 0),
            ("casebus_delivery_lag_seconds", "gauge",
             "Age of the oldest undelivered work order (0 when none).", lambda d: 0),
            ("casebus_delivery_breaker_open", "gauge",
             "1 while the department's circuit breaker is open.", lambda d: 0),
        ]
        for name, kind, help_text, value in per_department:
            out.family(name, kind, help_text)
            for d in sorted(depts):
                out.sample(name, {"department": d}, value(d))
        out.gauge("casebus_dead_letters", "Dead-letter rows stored now.", 0)
        out.counter("casebus_intake_requests_total", "Intake requests since start.", 1204)
        out.counter("casebus_intake_busy_total", "Intake requests refused BUSY since start.", 0)
        out.counter("casebus_commit_errors_total", "Failed journal commits since start.", 0)
        out.gauge("casebus_intake_queue_depth", "Commands waiting in the intake queue.", 0)
        out.gauge("casebus_store_healthy", "1 while the store accepts writes.", 1)

        out.histogram("casebus_accept_duration_seconds", "Dispatch to accept, wall time.",
                      [60, 300, 900, 1800, 3600, 7200, 14400, 28800],
                      [30, 200, 700, 1000, 2500, 5000, 9000, 20000, 40000])
        out.histogram("casebus_handle_duration_seconds", "Dispatch to resolve, wall time.",
                      [3600, 14400, 28800, 86400, 172800, 432000],
                      [2000, 7000, 20000, 50000, 90000, 300000, 600000])
        out.histogram("casebus_commit_batch_commands", "Commands per journal commit.",
                      [1, 4, 16, 64, 256, 1024], [1, 1, 3, 12, 40, 200, 900])
        out.histogram("casebus_commit_seconds", "Journal commit time, fsync included.",
                      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
                      [0.0003, 0.0004, 0.0008, 0.002, 0.004, 0.03, 0.2])
        return out.text()


def finish(row):
    row["closure_rate"] = rate(row["closed"], row["due"])
    row["on_time_closure_rate"] = rate(row["closed_on_time"], row["due"])
    return row


class Exposition:
    """Writes the Prometheus text format, one family at a time."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text):
        self.lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\")))
        self.lines.append("# TYPE %s %s" % (name, kind))

    def sample(self, name, labels, value):
        if labels:
            body = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
                            for k, v in labels.items())
            name = "%s{%s}" % (name, body)
        self.lines.append("%s %s" % (name, format_value(value)))

    def gauge(self, name, help_text, value):
        self.family(name, "gauge", help_text)
        self.sample(name, {}, value)

    def counter(self, name, help_text, value):
        self.family(name, "counter", help_text)
        self.sample(name, {}, value)

    def histogram(self, name, help_text, bounds, observations):
        self.family(name, "histogram", help_text)
        for le in bounds:
            self.sample(name + "_bucket", {"le": format_value(le)},
                        sum(1 for o in observations if o <= le))
        self.sample(name + "_bucket", {"le": "+Inf"}, len(observations))
        self.sample(name + "_sum", {}, sum(observations))
        self.sample(name + "_count", {}, len(observations))

    def text(self):
        return "\n".join(self.lines) + "\n"


def format_value(v):
    return str(v) if isinstance(v, int) else repr(float(v))


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-casebus-metrics/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_casebus_metrics: " + fmt % args + "\n")

    def send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/metrics":
            return self.send(200, self.server.ledger.exposition().encode(),
                             "text/plain; version=0.0.4; charset=utf-8")
        if url.path == "/v1/metrics/closure":
            group_by = parse_qs(url.query).get("group_by", [""])[-1]
            if group_by not in ("department", "district"):
                return self.send_json(400, {"error": {"field": "group_by",
                                                      "reason": "must be department or district"}})
            return self.send_json(200, self.server.ledger.closure(group_by))
        return self.send_json(404, {"error": {"field": "path", "reason": "no such resource"}})

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--http-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--settle-s", type=int, default=3)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.ledger = Ledger(args.settle_s)
    server.verbose = args.verbose
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    with open(args.http_file + ".tmp", "w") as f:
        f.write("127.0.0.1:%d\n" % server.server_address[1])
    os.replace(args.http_file + ".tmp", args.http_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
