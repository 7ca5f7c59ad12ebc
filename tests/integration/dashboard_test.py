#!/usr/bin/python3
"""The leadership dashboard in a real browser: every number the page shows equals the API's.

Usage:
  dashboard_test.py <casebus-binary> <out-dir>   a demo city (casebus demo --keep), then
                                                 casebus serve on loopback, port 0
  dashboard_test.py --fake <out-dir>             tests/support/fake_metrics_server.py instead

The API needs a token: casebus serves with an access file holding a leader token (and a reporter
token, whose role may not read metrics), and the page is loaded as /dashboard#token=<leader token>
(the page sends it in the Authorization header; the fragment never reaches the server).
Headless Chromium (Debian's `chromium`, or --chromium / $CHROMIUM) renders GET /dashboard twice,
the default period (the month holding as_of) and ?period=all, and dumps the DOM; a third run saves
<out-dir>/dashboard.png. The page without a token, with an unknown one (401) and with the
reporter's (403) must show the page's message saying so and draw nothing (the last two against
casebus only: the fake checks no token). For every element carrying data-group/data-key/data-field/data-value
(the page's contract, see engine/query/assets/dashboard.html) the test fetches the query its
section names in data-query and compares the value exactly and the text as formatted. It also
checks coverage (every department row, the city total, day columns, district x class cells), the
default period, the rank order, and that no markup from the API became elements: one <script>
only (the page's own), no <img>, no on* attributes.

Exit status: 0 passed; 1 failed (the reason on stderr); 77 Chromium not found (skipped).
"""
import argparse
import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAGE = os.path.join(REPO, "engine", "query", "assets", "dashboard.html")
FAKE_SERVER = os.path.join(REPO, "tests", "support", "fake_metrics_server.py")
API = "/v1/metrics/closure"
SKIP = 77
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
TOTAL_FIELDS = ["registered", "due", "closed", "closure_rate", "on_time_closure_rate",
                "overdue_open"]


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- processes -------------------------------------------------------------------------------

def run(cmd, timeout, **kw):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, timeout=timeout, **kw)


def stop(proc):
    """SIGTERM, then SIGKILL after 10 s; by PID only."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for_address(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check(proc.poll() is None, "the server exited early with status %s" % proc.returncode)
        try:
            with open(path) as f:
                text = f.read()
            if re.fullmatch(r"127\.0\.0\.1:\d+\n", text):
                return text.strip()
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise Failure("no address in %s after %d s" % (path, timeout))


def make_access(binary, tmp):
    """An access file with a leader and a reporter token: (path, {role: token})."""
    path, lines, tokens = os.path.join(tmp, "access.yaml"), [], {}
    for role in ("leader", "reporter"):
        out = subprocess.run([binary, "token", "new", "--name", "dashboard-" + role, "--role", role],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        tokens[role] = out[1].strip()
        lines += [line for line in out if line.startswith("  - {")]
    with open(path, "w") as f:
        f.write("tokens:\n" + "".join(line + "\n" for line in lines))
    return path, tokens


def start_server(args, tmp):
    """Starts casebus (or the fake): (process, http file, {role: token})."""
    http_file = os.path.join(tmp, "http")
    tokens = {"leader": "fake-token"}
    if args.fake:
        cmd = [sys.executable, FAKE_SERVER, "--page", PAGE, "--http-file", http_file,
               "--live-clock"]
    else:
        data = os.path.join(tmp, "data")
        demo = run([args.binary, "demo", "--keep", data, "--days", "3", "--cases-per-day", "300"],
                   timeout=600, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(demo.stdout[-3000:])
        check(demo.returncode == 0, "casebus demo exited with status %d" % demo.returncode)
        access, tokens = make_access(args.binary, tmp)
        cmd = [args.binary, "serve", "--data", data, "--access", access, "--http", "127.0.0.1:0",
               "--http-file", http_file, "--endpoint", "tcp://127.0.0.1:0",
               "--endpoint-file", os.path.join(tmp, "zmq")]
    print("$ " + " ".join(cmd), flush=True)
    log = open(os.path.join(tmp, "server.log"), "wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), http_file, tokens


# ---- the API ---------------------------------------------------------------------------------

class Api:
    def __init__(self, base, token):
        self.base = base
        self.token = token
        self.cache = {}

    def get(self, path, cached=True):
        if cached and path in self.cache:
            return self.cache[path]
        request = urllib.request.Request(self.base + path,
                                         headers={"Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise Failure("GET %s: HTTP %d %s" % (path, e.code, e.read()[:300]))
        self.cache[path] = body
        return body


def month_query(group_by, as_of):
    """The query of the page's default period: the calendar month holding as_of."""
    y, m = int(as_of[0:4]), int(as_of[5:7])
    return "%s?group_by=%s&from=%04d-%02d-01&to=%04d-%02d-%02d" % (
        API, group_by, y, m, y, m, calendar.monthrange(y, m)[1])


def snapshot(api):
    """Every answer the page can draw (both periods), read now; as_of excluded from comparison."""
    as_of = api.get(API + "?group_by=department", cached=False)["as_of"]
    queries = [q for g in ("department", "day", "district_class")
               for q in (API + "?group_by=" + g, month_query(g, as_of))]
    return {q: api.get(q, cached=False) for q in queries}


def same_data(a, b):
    return all(a[q]["rows"] == b[q]["rows"] and a[q]["total"] == b[q]["total"] for q in a)


def wait_stable(api, timeout=60):
    """Timers due at start fire in the first seconds: wait until two reads 1 s apart agree."""
    deadline = time.monotonic() + timeout
    prev = api.get(API + "?group_by=department", cached=False)["rows"]
    while time.monotonic() < deadline:
        time.sleep(1)
        cur = api.get(API + "?group_by=department", cached=False)["rows"]
        if cur == prev:
            return
        prev = cur
    raise Failure("the API did not settle within %d s" % timeout)


# ---- the browser -----------------------------------------------------------------------------

def chromium_cmd(args, tmp, name):
    return [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--user-data-dir=" + os.path.join(tmp, "chrome-" + name),
            "--virtual-time-budget=15000"]


def dump_dom(args, tmp, url, name):
    res = run(chromium_cmd(args, tmp, name) + ["--dump-dom", url], timeout=180,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(res.returncode == 0, "chromium --dump-dom exited %d: %s"
          % (res.returncode, res.stderr.decode(errors="replace")[-2000:]))
    return res.stdout.decode("utf-8")


def screenshot(args, tmp, url, png):
    res = run(chromium_cmd(args, tmp, "shot") + ["--hide-scrollbars", "--window-size=1400,1600",
                                                 "--screenshot=" + png, url],
              timeout=180, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(res.returncode == 0, "chromium --screenshot exited %d: %s"
          % (res.returncode, res.stderr.decode(errors="replace")[-2000:]))
    check(os.path.exists(png), "no screenshot at " + png)
    with open(png, "rb") as f:
        head = f.read(8)
    check(head == b"\x89PNG\r\n\x1a\n", png + " is not a PNG")
    size = os.path.getsize(png)
    check(size > 10 * 1024, "%s is only %d bytes" % (png, size))
    return size


# ---- the DOM ---------------------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.text = []

    def query(self):
        node = self
        while node is not None and "data-query" not in node.attrs:
            node = node.parent
        return None if node is None else node.attrs["data-query"]


class Dom(HTMLParser):
    """The elements of a serialized DOM, each with its parent and its whole text."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.nodes, self.stack = [], []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.stack[-1] if self.stack else None)
        self.nodes.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.nodes.append(Node(tag, dict(attrs), self.stack[-1] if self.stack else None))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        for node in self.stack:
            node.text.append(data)

    def find(self, tag):
        return [n for n in self.nodes if n.tag == tag]


def expected_text(field, value):
    """The page's formatting: JavaScript's toFixed rounds the exact double half up."""
    if value is None:
        return "—"
    if field.endswith("_rate"):
        return str(Decimal(value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + "%"
    if field == "index":
        return str(Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    check(float(value).is_integer(), "count %s is not an integer" % value)
    return str(int(value))


def same_json(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if a is None or b is None:
        return a is b
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b


def api_value(api, node):
    group, key, field = (node.attrs["data-group"], node.attrs["data-key"],
                         node.attrs["data-field"])
    where = "%s[%s].%s" % (group, key, field)
    url = node.query()
    check(url, where + ": no data-query on its section")
    resp = api.get(url)
    if group == "total":
        row = resp["total"]
    elif key == "@answer":
        row = resp  # an answer-level field such as min_sample
    else:
        rows = [r for r in resp["rows"] if r.get("key") == key]
        check(len(rows) == 1, "%s: %d rows with that key in %s" % (where, len(rows), url))
        row = rows[0]
    check(field in row, "%s: no field %r in the answer of %s" % (where, field, url))
    return row[field], where, url


def check_hostile(html, dom):
    scripts = dom.find("script")
    check(len(scripts) == 1 and "src" not in scripts[0].attrs,
          "expected the page's one inline <script>, found %d" % len(scripts))
    check(len(re.findall(r"<script\b", html, re.I)) == 1, "'<script' appears more than once")
    check(not dom.find("img"), "an <img> element: API text was parsed as markup")
    on_attrs = [(n.tag, a) for n in dom.nodes for a in n.attrs if a.lower().startswith("on")]
    check(not on_attrs, "event-handler attributes in the DOM: %s" % on_attrs[:5])


def check_page(api, html, page, as_of_bounds, fake):
    dom = Dom(html)
    body = dom.find("body")
    check(body, page + ": no <body> in the dump")
    body = body[0].attrs
    check("data-error" not in body, page + ": the page shows an error: " + str(body.get("data-error")))
    check(body.get("data-ready") == "1", page + ": data-ready is not 1 (the page never rendered)")
    check_hostile(html, dom)

    seen = {}  # (group, key, field) -> count
    numbers = [n for n in dom.nodes if "data-value" in n.attrs]
    for node in numbers:
        for attr in ("data-group", "data-key", "data-field"):
            check(attr in node.attrs, "%s: a data-value element without %s" % (page, attr))
        value, where, url = api_value(api, node)
        shown = json.loads(node.attrs["data-value"])
        check(same_json(shown, value), "%s %s: data-value %s but %s says %s"
              % (page, where, node.attrs["data-value"], url, json.dumps(value)))
        text = "".join(node.text).strip()
        want = expected_text(node.attrs["data-field"], value)
        check(text == want, "%s %s: shows %r, expected %r" % (page, where, text, want))
        k = (node.attrs["data-group"], node.attrs["data-key"], node.attrs["data-field"])
        seen[k] = seen.get(k, 0) + 1

    queries = {n.attrs.get("id"): n.attrs["data-query"] for n in dom.nodes if "data-query" in n.attrs}
    for sid in ("totals", "departments", "days", "matrix"):
        check(sid in queries, "%s: section #%s has no data-query" % (page, sid))
    dept = api.get(queries["departments"])
    for field in TOTAL_FIELDS:
        check(("total", "", field) in seen, "%s: the header lacks total %s" % (page, field))
    for row in dept["rows"]:
        for field in ("closure_rate", "on_time_closure_rate"):
            check(("department", row["key"], field) in seen,
                  "%s: department %s has no %s" % (page, row["key"], field))
    order = [n.attrs["data-key"] for n in numbers
             if n.attrs["data-group"] == "department" and n.attrs["data-field"] == "closure_rate"]
    ranks = {r["key"]: r["rank"] for r in dept["rows"]}
    shown_ranks = [ranks[k] if ranks[k] is not None else float("inf") for k in order]
    check(shown_ranks == sorted(shown_ranks), "%s: departments not in rank order: %s"
          % (page, order))
    for row in api.get(queries["days"])["rows"]:
        check(("day", row["key"], "overdue_open") in seen, "%s: no column for day %s"
              % (page, row["key"]))
    for row in api.get(queries["matrix"])["rows"]:
        check(("district_class", row["key"], "registered") in seen, "%s: no cell for %s"
              % (page, row["key"]))

    as_of = "".join(t for n in dom.nodes if n.attrs.get("id") == "as-of" for t in n.text).strip()
    lo, hi = as_of_bounds
    check(lo <= as_of <= hi, "%s: shows as of %r, the API said %s .. %s" % (page, as_of, lo, hi))
    if "period=all" in page:
        want_q = API + "?group_by=department"
    else:
        want_q = month_query("department", as_of)
    check(queries["departments"] == want_q, "%s: the departments section read %s, expected %s"
          % (page, queries["departments"], want_q))
    if fake:
        texts = "".join(t for n in dom.nodes if n.tag == "body" for t in n.text)
        check("<img src=x onerror=alert(1)>" in texts, "the hostile department name is not "
              "shown as text")
    return seen


def count(seen, group):
    return sum(v for k, v in seen.items() if k[0] == group)


def render_settled(args, tmp, api, url, label):
    """Dumps the page while the API holds still: same answers before and after the browser ran.
    Leaves those answers in api's cache, and returns the DOM with the as_of range seen."""
    for attempt in range(3):
        before = snapshot(api)
        html = dump_dom(args, tmp, url, "dom-%s-%d" % (label, attempt))
        after = snapshot(api)
        if same_data(before, after):
            api.cache = dict(after)
            as_ofs = [r["as_of"] for r in list(before.values()) + list(after.values())]
            return html, (min(as_ofs), max(as_ofs))
        print("the API changed while the page loaded; again", flush=True)
    raise Failure("the API kept changing while %s loaded" % url)


def check_refused(args, tmp, base, fragment, auth, words):
    """The page loaded with `fragment` shows its token message (data-auth) and draws nothing."""
    label = "auth-%s-%s" % (auth, re.sub(r"\W", "", words[0]))
    html = dump_dom(args, tmp, base + "/dashboard" + fragment, "dom-" + label)
    with open(os.path.join(args.out_dir, "dom-%s.html" % label), "w") as f:
        f.write(html)
    dom = Dom(html)
    body = dom.find("body")[0].attrs
    where = "/dashboard%s" % (fragment.split("=")[0] + "=..." if fragment else "")
    check(body.get("data-auth") == auth, "%s: data-auth %r, want %r" % (where, body.get("data-auth"), auth))
    check(body.get("data-ready") != "1", where + ": rendered data without an accepted token")
    check(not [n for n in dom.nodes if "data-value" in n.attrs], where + ": shows numbers")
    shown = "".join(t for n in dom.nodes if n.attrs.get("id") == "error" for t in n.text)
    check("hidden" not in next(n for n in dom.nodes if n.attrs.get("id") == "error").attrs,
          where + ": the message is hidden")
    for word in ["#token="] + words:
        check(word in shown, "%s: the message %r does not say %r" % (where, shown, word))
    print("%-28s says: %s" % (where, shown[:110]))


def check_auth(args, tmp, base, tokens):
    check_refused(args, tmp, base, "", "missing", ["no access token"])
    if args.fake:
        return 1
    check_refused(args, tmp, base, "#token=cbt_not-a-token", "refused", ["401"])
    check_refused(args, tmp, base, "#token=" + tokens["reporter"], "refused", ["403"])
    return 3


def run_checks(args, tmp):
    proc = None
    try:
        proc, http_file, tokens = start_server(args, tmp)
        base = "http://" + wait_for_address(http_file, proc)
        api = Api(base, tokens["leader"])
        wait_stable(api)
        refusals = check_auth(args, tmp, base, tokens)
        fragment = "#token=" + urllib.parse.quote(tokens["leader"], safe="")
        total_numbers = 0
        for label, page in (("month", "/dashboard"), ("all", "/dashboard?period=all")):
            html, bounds = render_settled(args, tmp, api, base + page + fragment, label)
            with open(os.path.join(args.out_dir, "dom-%s.html" % label), "w") as f:
                f.write(html)
            check(tokens["leader"] not in html, page + ": the token appears in the page")
            seen = check_page(api, html, page, bounds, args.fake)
            n = sum(seen.values())
            total_numbers += n
            print("%-24s %4d numbers checked: %d department, %d day, %d district x class, "
                  "%d total" % (page, n, count(seen, "department"), count(seen, "day"),
                                count(seen, "district_class"), count(seen, "total")))
            if "period=all" in page:
                check(count(seen, "day") >= 1, page + ": no day column")
                check(count(seen, "district_class") >= 1, page + ": no district x class cell")
        png = os.path.join(args.out_dir, "dashboard.png")
        size = screenshot(args, tmp, base + "/dashboard" + fragment, png)
        print("screenshot %s (%d bytes)" % (png, size))
        print("dashboard: %d numbers checked against the API; %d token refusals shown"
              % (total_numbers, refusals))
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fake", action="store_true", help="use the fake metrics server")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    ap.add_argument("paths", nargs="+", metavar="PATH", help="<casebus-binary> <out-dir>, or "
                    "<out-dir> with --fake")
    args = ap.parse_args()
    if len(args.paths) not in ((1, 2) if args.fake else (2,)):
        ap.error("expected <casebus-binary> <out-dir>, or --fake <out-dir>")
    args.binary, args.out_dir = (None, args.paths[-1]) if args.fake else args.paths
    found = shutil.which(args.chromium)
    if not found:
        print("SKIPPED: %s not found (apt-get install chromium)" % args.chromium)
        return SKIP
    args.chromium = found
    os.makedirs(args.out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dashboard_test.") as tmp:
        try:
            run_checks(args, tmp)
        except (Failure, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
            print("FAILED: %s" % e, file=sys.stderr)
            log = os.path.join(tmp, "server.log")
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    sys.stderr.write("--- server log (tail) ---\n" + f.read()[-3000:])
            return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
