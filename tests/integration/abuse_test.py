#!/usr/bin/env python3
"""Hostile clients against a real `casebus serve` HTTP API (RELIABILITY.md §3, OWASP API4).

usage: abuse_test.py CASEBUS

Real sockets on loopback, standard library only. Each attack must be refused with the documented
status and a JSON error naming the limit, and a well-behaved client (GET /v1/cases?limit=1 with a
valid token, answered 200 within 1 s) must be served after each attack and during the slow ones.
Linux routes all of 127/8 to lo, so binding a client to 127.0.0.2 gives it its own address for the
per-address limits. A case made before the attacks is read back unchanged afterwards, the serve
process's peak RSS is checked, and a summary table is printed. One failed attack does not stop
the others; any failure makes the exit status 1.
"""
import http.client
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPORT = {"category": "100101", "place": {"grid": "330102001001001"}, "source": "HOTLINE"}
RATE, BURST = 20, 40              # written into the access file: per token
FAIL_RATE, FAIL_BURST = 10, 20    # failed authentications per client address (http_access.cc)
PER_ADDRESS = 64                  # connections from one client address
READ_TIMEOUT = 15.0               # a whole request must arrive within this
VICTIM_DEADLINE = 1.0             # the well-behaved client's answer, seconds
PEAK_RSS_LIMIT_MB = 512

rows = []      # the summary: (attack, result, figures)
failures = []


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


# ---------------------------------------------------------------- the server and its clients

class Server:
    """casebus serve with an access file of four operator tokens; stopped by PID."""

    def __init__(self, binary, tmp):
        self.tokens = {}
        lines = ["rate_per_second: %d" % RATE, "burst: %d" % BURST, "tokens:"]
        for name in ("victim", "attacker", "burster", "bystander"):
            out = subprocess.run([binary, "token", "new", "--name", name, "--role", "operator"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
            self.tokens[name] = out[1].strip()
            lines += [l for l in out if l.startswith("  - {")]
        with open(os.path.join(tmp, "access.yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(tmp, "serve.log")
        http_file = os.path.join(tmp, "http")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", "--data", os.path.join(tmp, "data"), "--access",
                 os.path.join(tmp, "access.yaml"), "--endpoint", "tcp://127.0.0.1:0",
                 "--http", "127.0.0.1:0", "--http-file", http_file], stdout=log, stderr=log)
        try:
            self.addr = self.wait_for_address(http_file)
        except BaseException:
            self.stop()
            raise

    def wait_for_address(self, http_file):
        for _ in range(300):
            if os.path.exists(http_file) and open(http_file).read().strip():
                host, port = open(http_file).read().strip().rsplit(":", 1)
                return host, int(port)
            check(self.alive(), "serve exited at start: " + self.log_tail())
            time.sleep(0.05)
        raise Failed("serve did not write --http-file in 15 s: " + self.log_tail())

    def alive(self):
        return self.proc.poll() is None

    def memory_kb(self):
        fields = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0])
        return fields

    def stop(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, n=30):
        """The last n lines of the log that are not audit lines, and how many audit lines."""
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        other = [l for l in lines if not l.startswith("casebus audit:")]
        return "\n".join(other[-n:] + ["(%d audit lines)" % (len(lines) - len(other))])


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def error(self):
        """The {"error": {...}} object of a JSON error body, or None."""
        try:
            return json.loads(self.body)["error"]
        except (ValueError, KeyError, TypeError):
            return None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.body[:200])


def call(server, method, path, token=None, body=None, headers=None, src="127.0.0.1", timeout=5.0,
         conn=None):
    """One request; with conn, over that keep-alive connection."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        h.setdefault("Content-Type", "application/json")
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(*server.addr, timeout=timeout, source_address=(src, 0))
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        if own:
            conn.close()


def connect(server, src="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(server.addr)
    return s


def read_reply(sock):
    """Reads one response from a raw socket (until its Content-Length or EOF)."""
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            if len(rest) >= int(headers.get("content-length", "0")):
                return Reply(int(lines[0].split()[1]), headers, rest)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            check(False, "the connection closed without a complete response; got %r" % data[:200])
        data += chunk


def raw(server, data, src="127.0.0.1"):
    s = connect(server, src)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: the reply is in the receive queue
        return read_reply(s)
    finally:
        s.close()


def expect_error(reply, status, code=None, field=None, reason_prefix=None):
    """reply is `status` with a JSON error that names the limit (code) or the field."""
    check(reply.status == status, "want HTTP %d, got %r" % (status, reply))
    check(reply.headers.get("content-type", "").startswith("application/json"),
          "error not JSON: %r" % reply.headers.get("content-type"))
    e = reply.error()
    check(isinstance(e, dict) and e.get("reason"), "not a JSON error: %r" % reply.body[:200])
    check(e.get("code") or e.get("field"), "the error names neither a limit nor a field: %s" % e)
    if code is not None:
        check(e.get("code") == code, "want code %s: %s" % (code, e))
    if field is not None:
        check(e.get("field") == field, "want field %s: %s" % (field, e))
    if reason_prefix is not None:
        check(e["reason"].startswith(reason_prefix), "reason should start %r: %s" % (reason_prefix, e))
    return e


def victim_ok(server, src="127.0.0.1"):
    """The well-behaved client: a fresh connection, 200 within 1 s. Returns the seconds taken."""
    t0 = time.monotonic()
    try:
        r = call(server, "GET", "/v1/cases?limit=1", server.tokens["victim"], src=src,
                 timeout=VICTIM_DEADLINE)
    except (OSError, http.client.HTTPException) as e:
        raise Failed("victim from %s: %r after %.2f s" % (src, e, time.monotonic() - t0))
    took = time.monotonic() - t0
    check(r.status == 200, "victim from %s: %r" % (src, r))
    check(took < VICTIM_DEADLINE, "victim from %s answered in %.2f s" % (src, took))
    return took


class Victim(threading.Thread):
    """Polls victim_ok every `period` s until stopped; keeps every latency and problem."""

    def __init__(self, server, src, period):
        super().__init__(daemon=True)
        self.server, self.src, self.period = server, src, period
        self.latencies, self.problems = [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.latencies.append(victim_ok(self.server, self.src))
            except Failed as e:
                self.problems.append(str(e))
            self.halt.wait(self.period)

    def finish(self):
        self.halt.set()
        self.join()
        check(not self.problems, "victim not served during the attack: %s" % self.problems[:3])
        check(self.latencies, "victim made no request")
        return "victim %d x 200, max %.0f ms" % (len(self.latencies), 1000 * max(self.latencies))


def attack(name):
    """Runs one attack; records its row; a failure is kept and the next attack still runs."""
    def wrap(fn):
        def run(server):
            try:
                figures = fn(server)
                check(server.alive(), "serve died")
                figures += "; after: victim %.0f ms" % (1000 * victim_ok(server))
                rows.append((name, "refused", figures))
            except (Failed, OSError, http.client.HTTPException) as e:
                rows.append((name, "FAIL", str(e)[:300]))
                failures.append("%s: %s" % (name, e))
        return run
    return wrap


# ---------------------------------------------------------------- the attacks

def stream_body(server, framing, block):
    """POSTs a report declared as 100 MB (`framing` is its length header), streaming `block`
    from another thread while reading the reply. Returns (reply, body bytes the kernel took
    from us, seconds to the reply)."""
    s = connect(server, timeout=10)
    s.sendall(("POST /v1/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIdempotency-Key: big\r\n"
               "Content-Type: application/json\r\n%s\r\n\r\n" % (server.tokens["attacker"], framing)).encode())
    sent, done = [0], threading.Event()

    def pump():
        try:
            while sent[0] < 100 * 1024 * 1024 and not done.is_set():
                sent[0] += s.send(block)
        except OSError:
            pass  # the server closed: what we wanted

    t0 = time.monotonic()
    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        reply = read_reply(s)
        took = time.monotonic() - t0
    finally:
        done.set()
        pumper.join(10)
        s.close()
    return reply, sent[0], took


@attack("100 MB body")
def big_body(server):
    figures = []
    for framing, block in (("Content-Length: 104857600", b"a" * 65536),
                           ("Transfer-Encoding: chunked", b"10000\r\n" + b"a" * 65536 + b"\r\n")):
        reply, sent, took = stream_body(server, framing, block)
        expect_error(reply, 413, code="max_body_bytes")
        # The bound leaves room for the kernel's socket buffers; the server reads at most 64 KiB.
        check(sent < 8 * 1024 * 1024, "%s: %d bytes accepted before the 413" % (framing, sent))
        figures.append("%s: %d bytes accepted, 413 after %.0f ms" % (framing.split(":")[0], sent, 1000 * took))
    return "; ".join(figures)


@attack("JSON nested 10,000 deep")
def deep_json(server):
    deep = b"[" * 10000 + b"]" * 10000
    head = b'{"category":"100101","place":'
    bodies = [("POST", "/v1/cases", deep), ("POST", "/v1/cases", head + deep + b"}"),
              ("POST", "/v1/cases/%d:note" % deep_json.case_id, deep),
              ("POST", "/v1/cases/%d:note" % deep_json.case_id, b'{"text":' + deep + b"}")]
    for i, (method, path, body) in enumerate(bodies):
        r = call(server, method, path, server.tokens["attacker"], body, {"Idempotency-Key": "deep-%d" % i})
        expect_error(r, 400, field="body", reason_prefix="max_json_depth")
    return "%d bodies (report, note) -> 400 max_json_depth" % len(bodies)


def header_request(server, fields):
    """A GET whose header has exactly `fields` fields (Host and Authorization included)."""
    lines = ["GET /v1/cases?limit=1 HTTP/1.1", "Host: x", "Authorization: Bearer " + server.tokens["attacker"]]
    lines += ["X-F%d: v" % i for i in range(fields - 2)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@attack("10,000 header fields")
def many_headers(server):
    req = header_request(server, 10000)
    expect_error(raw(server, req), 431, code="max_header_bytes")
    return "%d bytes of header -> 431 max_header_bytes" % len(req)


@attack("101 small header fields")
def header_count(server):
    req = header_request(server, 101)
    check(len(req) < 8192, "the request should be under 8 KiB: %d bytes" % len(req))
    expect_error(raw(server, req), 431, code="max_header_fields")
    ok = raw(server, header_request(server, 100))
    check(ok.status == 200, "100 header fields should be served: %r" % ok)
    return "%d bytes -> 431 max_header_fields; 100 fields -> 200" % len(req)


@attack("slowloris from 127.0.0.2")
def slowloris(server):
    victim = Victim(server, "127.0.0.1", 0.25)
    victim.start()
    opened = []
    try:
        for _ in range(PER_ADDRESS + 16):
            opened.append([connect(server, "127.0.0.2"), time.monotonic(), None])
        time.sleep(0.3)
        slow = [c for c in opened if not closed_by_peer(c[0])]
        refused = len(opened) - len(slow)
        check(refused == 16 and len(slow) == PER_ADDRESS, "want %d connections held and 16 refused at accept; "
              "got %d and %d" % (PER_ADDRESS, len(slow), refused))
        drip(slow, b"GET /v1/cases?limit=1 HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 64, READ_TIMEOUT + 5)
    finally:
        victim_figures = victim.finish()
        for c in opened:
            c[0].close()
    open_left = [c for c in slow if c[2] is None]
    check(not open_left, "%d slow connections still open after %.0f s" % (len(open_left), READ_TIMEOUT + 5))
    closes = sorted(c[2] - c[1] for c in slow)
    check(closes[0] > READ_TIMEOUT - 1.5 and closes[-1] < READ_TIMEOUT + 3,
          "slow connections closed after %.1f..%.1f s, want about %.0f s" % (closes[0], closes[-1], READ_TIMEOUT))
    victim_ok(server, "127.0.0.2")  # the address's slots were given back
    return "%d held, %d refused at accept; closed after %.1f..%.1f s; %s" % (
        len(slow), refused, closes[0], closes[-1], victim_figures)


def closed_by_peer(s):
    """True when the server has closed s (EOF or reset); never blocks."""
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def drip(conns, request, deadline):
    """One byte a second to each open connection until all are closed or `deadline` s pass;
    records when each one is closed (EOF or reset) in its third slot."""
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < deadline:
        live = [c for c in conns if c[2] is None]
        if not live:
            return
        for c in live:
            try:
                c[0].send(request[i % len(request):i % len(request) + 1])
            except OSError:
                c[2] = time.monotonic()
        i += 1
        tick = time.monotonic() + 1.0
        while time.monotonic() < tick:
            live = [c for c in conns if c[2] is None]
            if not live:
                return
            ready, _, _ = select.select([c[0] for c in live], [], [], max(0.0, tick - time.monotonic()))
            for c in live:
                if c[0] in ready and closed_by_peer(c[0]):
                    c[2] = time.monotonic()


@attack("token flood from 127.0.0.4")
def token_flood(server):
    victim = Victim(server, "127.0.0.3", 0.2)
    victim.start()
    counts = {}
    lock = threading.Lock()

    def flood(n):
        conn = http.client.HTTPConnection(*server.addr, timeout=5, source_address=("127.0.0.4", 0))
        for _ in range(n):
            r = call(server, "GET", "/v1/cases?limit=1", "cbt_" + secrets.token_urlsafe(32), conn=conn)
            e = r.error() or {}
            key = (r.status, e.get("code"), "retry-after" in r.headers)
            with lock:
                counts[key] = counts.get(key, 0) + 1
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=flood, args=(750,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    victim_figures = victim.finish()
    unauthorized = counts.get((401, "invalid_token", False), 0)
    limited = counts.get((429, "failed_auth_rate", True), 0)
    check(unauthorized + limited == 3000, "unexpected answers: %s" % counts)
    allowed = FAIL_BURST + FAIL_RATE * took + 2
    check(0 < unauthorized <= allowed, "%d x 401 in %.1f s; at most %.0f expected" % (unauthorized, took, allowed))
    return "3000 random tokens in %.1f s: %d x 401, %d x 429 failed_auth_rate; %s" % (
        took, unauthorized, limited, victim_figures)


@attack("valid token over its rate")
def token_rate(server):
    conn = http.client.HTTPConnection(*server.addr, timeout=5)
    statuses, limited = [], None
    t0 = time.monotonic()
    for i in range(100):
        r = call(server, "GET", "/v1/cases?limit=1", server.tokens["burster"], conn=conn)
        statuses.append(r.status)
        if r.status == 429 and limited is None:
            limited = r
        if i % 20 == 10:
            r2 = call(server, "GET", "/v1/cases?limit=1", server.tokens["bystander"])
            check(r2.status == 200, "another token was limited too: %r" % r2)
    took = time.monotonic() - t0
    conn.close()
    ok = statuses.count(200)
    check(limited is not None, "100 requests in %.1f s and none was refused" % took)
    expect_error(limited, 429, code="rate_per_second")
    retry = int(limited.headers.get("retry-after", "0"))
    check(retry >= 1, "429 without a Retry-After of at least 1 s: %r" % limited.headers)
    check(statuses.count(429) + ok == 100, "statuses: %s" % statuses)
    check(ok <= BURST + RATE * took + 2, "%d x 200 in %.1f s exceeds burst %d + %d/s" % (ok, took, BURST, RATE))
    time.sleep(retry)
    again = call(server, "GET", "/v1/cases?limit=1", server.tokens["burster"])
    check(again.status == 200, "after Retry-After: %r" % again)
    return "100 in %.2f s: %d x 200, %d x 429 rate_per_second, Retry-After %d; bystander token 200" % (
        took, ok, 100 - ok, retry)


def report_body(**extra):
    return json.dumps(dict(REPORT, **extra)).encode()


@attack("malformed requests and bodies")
def malformed(server):
    def line(data):
        return lambda: raw(server, data)

    keys = itertools.count()

    def post(body):
        key = "bad-%d" % next(keys)
        return lambda: call(server, "POST", "/v1/cases", server.tokens["attacker"], body, {"Idempotency-Key": key})

    def get(path):
        return lambda: call(server, "GET", path, server.tokens["attacker"])

    def text(raw_bytes):  # a report whose description is these bytes
        return report_body(description="@").replace(b'"@"', b'"' + raw_bytes + b'"')

    # name, request, then what the 400 must say: field, code, start of the reason, words in it
    cases = [
        ("malformed request line", line(b"GARBAGE\r\n\r\n"), None, None, None, ""),
        ("bad HTTP version", line(b"GET /v1/cases HTTP/9.9\r\nHost: x\r\n\r\n"), None, None, None, ""),
        ("absolute-form target", line(b"GET http://127.0.0.1/v1/cases HTTP/1.1\r\nHost: x\r\n\r\n"),
         "target", None, None, ""),
        ("asterisk-form target", line(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"), "target", None, None, ""),
        ("authority-form target", line(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
         "target", None, None, ""),
        ("invalid UTF-8 in JSON", post(text(b"\xff\xfe")), "body", None, None, ""),
        ("UTF-8 surrogate in JSON", post(text(b"\xed\xa0\x80")), "body", None, None, ""),
        ("duplicate JSON keys", post(b'{"category":"100101",' + report_body()[1:]), "body", None, None, "duplicate"),
        ("20 KB string", post(report_body(description="x" * 20000)), "body", None, "max_json_string_bytes", ""),
        ("10,001 JSON elements", post(b"[" + b"0," * 10000 + b"0]"), "body", None, "max_json_elements", ""),
        ("unknown JSON field", post(report_body(bogus=1)), "body", None, None, "bogus"),
        ("unknown query parameter", get("/v1/cases?colour=red"), "colour", None, None, ""),
        ("limit=100000", get("/v1/cases?limit=100000"), "limit", "max_page_size", None, ""),
    ]
    wrong = []
    for name, send, field, code, prefix, words in cases:
        try:
            e = expect_error(send(), 400, code=code, field=field, reason_prefix=prefix)
            check(words in e["reason"], "the reason does not say %r: %s" % (words, e))
        except (Failed, OSError, http.client.HTTPException) as err:
            wrong.append("%s: %s" % (name, err))
    check(not wrong, "; ".join(wrong))
    return "%d kinds -> 400 JSON naming the field or limit" % len(cases)


# ---------------------------------------------------------------- main

def case_ids(server):
    r = call(server, "GET", "/v1/cases?limit=1000", server.tokens["victim"])
    check(r.status == 200, "list: %r" % r)
    return [c["id"] for c in json.loads(r.body)["cases"]]


def print_summary(memory):
    print("\n%-30s %-8s %s" % ("attack", "result", "figures"))
    print("-" * 110)
    for name, result, figures in rows:
        print("%-30s %-8s %s" % (name, result, figures))
    if memory:
        print("%-30s %-8s VmHWM %.1f MB, VmRSS %.1f MB (limit %d MB)" % (
            "serve memory", "ok" if memory["VmHWM"] < PEAK_RSS_LIMIT_MB * 1024 else "FAIL",
            memory["VmHWM"] / 1024, memory["VmRSS"] / 1024, PEAK_RSS_LIMIT_MB))


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="casebus-abuse-")
    server, memory = None, None
    started = time.monotonic()
    try:
        server = Server(binary, tmp)
        first = call(server, "POST", "/v1/cases", server.tokens["victim"], report_body(description="before"),
                     {"Idempotency-Key": "abuse-before"})
        check(first.status == 201, "the case before the attacks: %r" % first)
        case_id = int(json.loads(first.body)["case_id"])
        before = call(server, "GET", "/v1/cases/%d" % case_id, server.tokens["victim"]).body
        ids_before = case_ids(server)
        deep_json.case_id = case_id
        for run in (big_body, deep_json, many_headers, header_count, malformed, token_flood,
                    token_rate, slowloris):
            run(server)
        after = call(server, "GET", "/v1/cases/%d" % case_id, server.tokens["victim"]).body
        check(after == before, "case %d changed:\nbefore %s\nafter  %s" % (case_id, before, after))
        # Another category, so it is not merged into the first case as a duplicate report.
        later = call(server, "POST", "/v1/cases", server.tokens["victim"],
                     dict(REPORT, category="200404", description="after: caf\u00e9 \u2713"),
                     {"Idempotency-Key": "abuse-after"})
        check(later.status == 201, "a valid report (UTF-8 text) after the attacks: %r" % later)
        ids_after = case_ids(server)
        check(ids_after[:len(ids_before)] == ids_before and len(ids_after) == len(ids_before) + 1,
              "cases before %s, after %s (one valid report was made)" % (ids_before, ids_after))
        rows.append(("case made before", "intact", "case %d unchanged; a new UTF-8 report 201; %d case(s) in all" % (
            case_id, len(ids_after))))
    except (Failed, OSError, http.client.HTTPException) as e:
        failures.append(str(e))
    finally:
        if server and server.alive():
            memory = server.memory_kb()
            if memory["VmHWM"] >= PEAK_RSS_LIMIT_MB * 1024:
                failures.append("peak RSS %.1f MB" % (memory["VmHWM"] / 1024))
        print_summary(memory)
        print("%.1f s in all" % (time.monotonic() - started), flush=True)
        if server:
            server.stop()
            if failures:
                sys.stderr.write("--- serve log (tail) ---\n" + server.log_tail() + "\n")
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
