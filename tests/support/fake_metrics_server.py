#!/usr/bin/python3
"""A stand-in for casebus's read API, to develop and test the dashboard page without the engine.

Serves, on 127.0.0.1 (port 0 unless --port):
  GET /dashboard                    the page file given by --page
  GET /v1/metrics/closure?group_by=G[&from=YYYY-MM-DD][&to=YYYY-MM-DD]
                                    the closure metrics contract the page reads (described at
                                    the top of engine/query/assets/dashboard.html), aggregated
                                    from a fixed synthetic case list, so every grouping and
                                    period agrees with the others.
Writes "127.0.0.1:PORT\n" to --http-file once listening (as `casebus serve --http-file` does).
Stops on SIGTERM.

The city holds hostile names (HTML and script markup) in a department and a category class, so
a page that renders names as markup is caught. --fail-group G answers 500 for that grouping,
to see the page's error display. as_of is fixed, or with --live-clock it moves on with real time
(as the engine's does), the counts staying put.
"""
import argparse
import datetime as dt
import json
import os
import random
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

AS_OF = dt.datetime(2026, 11, 27, 14, 3, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
AS_OF_DAY = dt.date(2026, 11, 27)
FIRST_DAY = dt.date(2026, 10, 1)
MIN_SAMPLE = 10
CITY = "Jinhe City (金河市)"
HOSTILE_DEPT = "<img src=x onerror=alert(1)>"
HOSTILE_CLASS = "</td><script>alert(\"x\")</script>"

DISTRICTS = {"330102": "鼓楼区", "330103": "临江区", "330104": "湖西区", "330105": "新城区"}
CLASSES = {"1001": "公用设施", "1002": "道路交通", "1003": "市容环境", "1004": "园林绿化",
           "1005": "房屋土地", "1006": "其他设施", "2001": "市容环境", "2002": "宣传广告",
           "2003": "施工管理", "2004": "突发事件", "2005": "街面秩序", "2006": "其他事件",
           "3001": "物业管理", "3002": "住房", "3003": "交通管理", "3004": "市场管理",
           "3005": "公共服务", "3006": "城乡建设与环境", "9001": HOSTILE_CLASS}
SOURCES = {"inspector": "监督员上报", "hotline": "12345热线", "app": "市民随手拍"}
DEPARTMENTS = {
    "command-330102": "鼓楼区城市运行管理服务中心", "command-330103": "临江区城市运行管理服务中心",
    "enforce-330102": "鼓楼区综合行政执法局", "enforce-330103": "临江区综合行政执法局",
    "enforce-330104": "湖西区综合行政执法局", "sanitation-330102": "鼓楼区环境卫生管理所",
    "sanitation-330105": "新城区环境卫生管理所", "municipal-facilities": "金河市市政设施管理中心",
    "street-lighting": "金河市路灯管理所", "landscaping": "金河市园林绿化管理中心",
    "property-330103": "临江区住建局物业管理办公室", "market-regulation": "金河市市场监督管理局",
    "water-supply": "金河水务集团供水分公司", "traffic-police-330102": "交警支队鼓楼大队",
    "drainage": "金河市排水有限公司", "traffic-police-330104": "交警支队湖西大队",
    "hostile": HOSTILE_DEPT,
    "gas": "金河燃气集团有限公司 & \"Partners\"",  # few cases: not ranked
    "power-supply": "国网金河供电公司",          # only cases not yet due: rates null
}
RANKED = {"department", "district", "street"}
GROUPINGS = {"department", "district", "street", "category", "class", "source", "day",
             "district_class"}
COUNTERS = ["registered", "dispatched", "due", "closed", "closed_on_time", "overdue_open",
            "handle_due", "handled", "handled_on_time", "rework", "rework_times", "returned",
            "extended", "suspended", "escalated", "supervised"]


def make_cases(seed=7):
    """A fixed list of cases, one dict of dimensions and 0/1 counters each."""
    rnd = random.Random(seed)
    depts = [d for d in DEPARTMENTS if d not in ("gas", "power-supply")]
    cases = []
    day = FIRST_DAY
    while day <= AS_OF_DAY:
        for _ in range(rnd.randint(40, 70)):
            cases.append(make_case(rnd, day, rnd.choice(depts)))
        day += dt.timedelta(days=1)
    for i in range(6):
        cases.append(make_case(rnd, AS_OF_DAY - dt.timedelta(days=3 + i), "gas"))
    for _ in range(4):
        case = make_case(rnd, AS_OF_DAY, "power-supply")
        case.update(due=0, closed=0, closed_on_time=0, overdue_open=0, handle_due=0, handled=0,
                    handled_on_time=0)
        cases.append(case)
    return cases


def make_case(rnd, day, dept):
    district = rnd.choice(sorted(DISTRICTS))
    cls = rnd.choice(sorted(CLASSES))
    skill = 0.75 + 0.2 * (zlib.crc32(dept.encode()) % 7) / 6.0 if dept != "hostile" else 0.6
    age = (AS_OF_DAY - day).days
    due = 1 if age >= rnd.randint(1, 4) else 0
    closed = 1 if due and rnd.random() < skill else 0
    on_time = 1 if closed and rnd.random() < skill else 0
    handled = 1 if due and (closed or rnd.random() < 0.5) else 0
    rework_times = rnd.choice([0] * 18 + [1, 2]) if handled else 0
    return {
        "day": day.isoformat(), "department": dept, "district": district,
        "street": district + rnd.choice(["001", "002", "003", "004"]), "class": cls,
        "category": cls + rnd.choice(["01", "02", "03"]), "source": rnd.choice(sorted(SOURCES)),
        "registered": 1, "dispatched": 1 if rnd.random() < 0.98 else 0, "due": due,
        "closed": closed, "closed_on_time": on_time, "overdue_open": due - closed,
        "handle_due": due, "handled": handled, "handled_on_time": 1 if handled and on_time else 0,
        "rework": 1 if rework_times else 0, "rework_times": rework_times,
        "returned": 1 if rnd.random() < 0.02 else 0, "extended": 1 if rnd.random() < 0.01 else 0,
        "suspended": 1 if rnd.random() < 0.005 else 0,
        "escalated": 1 if due and not on_time else 0,
        "supervised": 1 if rnd.random() < 0.01 else 0,
    }


def rate(num, den):
    return None if den == 0 else round(num / den, 4)


def finish(row):
    """Adds the rates, and an index when the row could be ranked."""
    row["closure_rate"] = rate(row["closed"], row["due"])
    row["on_time_closure_rate"] = rate(row["closed_on_time"], row["due"])
    row["handling_rate"] = rate(row["handled"], row["handle_due"])
    row["on_time_handling_rate"] = rate(row["handled_on_time"], row["handle_due"])
    row["rework_rate"] = rate(row["rework"], row["handled"])
    row["overdue_open_rate"] = rate(row["overdue_open"], row["due"])
    row["extension_rate"] = rate(row["extended"], row["dispatched"])
    row["index"] = None
    row["rank"] = None
    return row


def key_and_names(group_by, case):
    if group_by == "day":
        return case["day"], case["day"], {}
    if group_by == "district_class":
        d, c = case["district"], case["class"]
        return d + "/" + c, DISTRICTS[d] + " " + CLASSES[c], {
            "district": d, "district_name": DISTRICTS[d], "class": c, "class_name": CLASSES[c]}
    key = case[group_by]
    names = {"department": DEPARTMENTS, "district": DISTRICTS, "class": CLASSES,
             "source": SOURCES}.get(group_by)
    if names is not None:
        return key, names[key], {}
    if group_by == "street":
        return key, DISTRICTS[key[:6]] + "第" + key[6:] + "街道", {}
    return key, CLASSES[key[:4]] + "小类" + key[4:], {}


def aggregate(cases, group_by, date_from, date_to):
    rows = {}
    total = dict({"key": "", "name": CITY}, **{c: 0 for c in COUNTERS})
    for case in cases:
        if (date_from and case["day"] < date_from) or (date_to and case["day"] > date_to):
            continue
        key, name, extra = key_and_names(group_by, case)
        row = rows.setdefault(key, dict({"key": key, "name": name}, **extra,
                                        **{c: 0 for c in COUNTERS}))
        for c in COUNTERS:
            row[c] += case[c]
            total[c] += case[c]
    out = [finish(r) for _, r in sorted(rows.items())]
    finish(total)
    if group_by in RANKED:
        for r in out:
            if r["due"] >= MIN_SAMPLE:
                r["index"] = round(60 * r["on_time_closure_rate"] + 40 * r["closure_rate"], 1)
        ranked = sorted((r for r in out if r["index"] is not None),
                        key=lambda r: (-r["index"], r["key"]))
        for i, r in enumerate(ranked):
            r["rank"] = i + 1
    return out, total


def parse_date(text):
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-metrics/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_metrics: " + fmt % args + "\n")

    def send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json")

    def refuse(self, status, field, reason):
        self.send_json(status, {"error": {"field": field, "reason": reason}})

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/dashboard":
            return self.send(200, self.server.page, "text/html; charset=utf-8")
        if url.path != "/v1/metrics/closure":
            return self.refuse(404, "path", "no such resource")
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        group_by = query.get("group_by", "")
        if group_by not in GROUPINGS:
            return self.refuse(400, "group_by", "must be one of " + ", ".join(sorted(GROUPINGS)))
        if group_by == self.server.fail_group:
            return self.refuse(500, "group_by", "injected failure (--fail-group)")
        bounds = {}
        for field in ("from", "to"):
            if field in query:
                bounds[field] = parse_date(query[field])
                if bounds[field] is None:
                    return self.refuse(400, field, "must be a date YYYY-MM-DD")
        if bounds.get("from") and bounds.get("to") and bounds["from"] > bounds["to"]:
            return self.refuse(400, "to", "must not be before from")
        rows, total = aggregate(self.server.cases, group_by, bounds.get("from"), bounds.get("to"))
        self.send_json(200, {"group_by": group_by, "from": bounds.get("from"),
                             "to": bounds.get("to"), "as_of": self.server.as_of(),
                             "utc_offset_minutes": 480,
                             "min_sample": MIN_SAMPLE, "rows": rows, "total": total})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--page", required=True, help="the dashboard.html to serve at /dashboard")
    ap.add_argument("--http-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fail-group", default="")
    ap.add_argument("--live-clock", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    with open(args.page, "rb") as f:
        server.page = f.read()
    server.cases = make_cases()
    server.fail_group = args.fail_group
    server.verbose = args.verbose
    started = time.monotonic()
    server.as_of = lambda: (AS_OF + dt.timedelta(seconds=int(time.monotonic() - started)
                                                 if args.live_clock else 0)).isoformat()
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    with open(args.http_file + ".tmp", "w") as f:
        f.write("127.0.0.1:%d\n" % server.server_address[1])
    os.replace(args.http_file + ".tmp", args.http_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
