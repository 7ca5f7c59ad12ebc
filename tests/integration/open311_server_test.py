#!/usr/bin/env python3
"""Open311 GeoReport v2 conformance of `casebus serve` (/open311/v2/), with curl as the client.

usage: open311_server_test.py CASEBUS

Builds a store with the demo (2 days, 200 cases a day) and serves it with an access file
(operator, reporter, leader and admin tokens; department tokens are added once a dispatch has
named the department, then reloaded with POST /v1/admin/reload). Then:
  - reads: one more case reported over the CLI (coordinates, a hostile description), every read
    endpoint in JSON and XML against the GeoReport v2 field lists and filters;
  - POST requests.{json,xml}: the spec's example request (api_key, service_code, lat/long,
    address_string, email, first/last name, phone, description, media_url, device_id,
    account_id), address_id and attribute[condition]; the response fields; reading the request
    back with GET requests/{id}.{json,xml} (and the reporter through /v1/cases/{id}); the same
    POST byte for byte is the same request; a report of the same problem joins it;
  - the errors in the spec's format: api_key missing, unknown or of a role that may not report,
    service_code missing or unknown, no location, lat/long outside the city, a non-form body;
  - mySociety's POST servicerequestupdates.{json,xml} by the department a case was dispatched to
    (over the JSON API): IN_PROGRESS accepts, FIXED resolves (media_url or the update id as
    evidence), NOT_RESPONSIBLE returns, anything else adds a note; a repeated update_id is
    idempotent; another department's key gets 404; GET answers 405.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code",
                  "description", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "media_url"]
CREATED_FIELDS = ["service_request_id", "service_notice", "account_id"]
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)$")
HOSTILE = "<script>alert('x')</script> & \"quotes\""
# Grids of the sample city (deploy/config/sample-city.yaml) and their centroids.
GRID_EXAMPLE = ("330102001001005", 30.279503, 120.135880)
GRID_CONDITION = "330102001002005"
GRIDS_UPDATES = ["330102001002001", "330102001002002", "330102001002003"]
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


class Reply:
    def __init__(self, code, ctype, allow, body):
        self.code, self.ctype, self.allow, self.body = code, ctype, allow, body

    def json(self):
        return json.loads(self.body)

    def xml(self):
        return ET.fromstring(self.body.encode("utf-8"))


def curl(url, method="GET", body=None, headers=()):
    """One request; body (str) is sent byte for byte, form-encoded unless a header says else."""
    argv = ["curl", "-s", "-X", method, "-w", "\n%{http_code}|%{content_type}|%header{allow}", url]
    for h in headers:
        argv += ["-H", h]
    if body is not None:
        argv += ["--data-binary", "@-"]
    out = subprocess.run(argv, input=None if body is None else body.encode("utf-8"),
                         capture_output=True, check=True).stdout.decode("utf-8")
    text, _, tail = out.rpartition("\n")
    code, ctype, allow = tail.split("|", 2)
    return Reply(int(code), ctype, allow, text)


def get_json(url, want=200):
    r = curl(url)
    check(r.code == want, "%s: HTTP %d, want %d: %s" % (url, r.code, want, r.body[:200]))
    check(r.ctype.startswith("application/json"), "%s: content type %s" % (url, r.ctype))
    return r.json()


def get_xml(url, want=200):
    r = curl(url)
    check(r.code == want, "%s: HTTP %d, want %d: %s" % (url, r.code, want, r.body[:200]))
    check(r.ctype.startswith("text/xml"), "%s: content type %s" % (url, r.ctype))
    return r.xml()


def xml_items(root, list_tag, item_tag):
    check(root.tag == list_tag, "root %s, want %s" % (root.tag, list_tag))
    return [{c.tag: (c.text or "") for c in item} for item in root.findall(item_tag)]


def check_request(r, where):
    for f in REQUEST_FIELDS:
        check(f in r, "%s: request lacks %s: %s" % (where, f, r))
    check(r["status"] in ("open", "closed"), "%s: status %r" % (where, r["status"]))
    for f in ("requested_datetime", "updated_datetime"):
        check(W3C.match(r[f]), "%s: %s %r is not W3C" % (where, f, r[f]))
    check(r["expected_datetime"] == "" or W3C.match(r["expected_datetime"]), where + ": expected_datetime")


# ---- the server and its tokens ---------------------------------------------------------------

class Server:
    """casebus serve on loopback with an access file; tokens by name."""

    def __init__(self, binary, tmp):
        self.binary, self.tmp = binary, tmp
        self.access = os.path.join(tmp, "access.yaml")
        self.lines, self.tokens = [], {}
        for role in ("operator", "reporter", "leader", "admin"):
            self.add_token(role, role)
        self.write_access()
        self.log = open(os.path.join(tmp, "serve.log"), "w")
        self.proc = subprocess.Popen([binary, "serve", "--data", tmp + "/data", "--access", self.access,
                                      "--http", "127.0.0.1:0", "--http-file", tmp + "/http",
                                      "--endpoint", "tcp://127.0.0.1:0", "--endpoint-file", tmp + "/zmq"],
                                     stdout=self.log, stderr=self.log)
        for _ in range(300):
            if os.path.exists(tmp + "/http") and os.path.exists(tmp + "/zmq"):
                break
            if self.proc.poll() is not None:
                fail("casebus serve exited %d; see %s/serve.log" % (self.proc.returncode, tmp))
            time.sleep(0.1)
        self.http = "http://" + open(tmp + "/http").read().strip()
        self.endpoint = open(tmp + "/zmq").read().strip()

    def add_token(self, name, role, department=None):
        argv = [self.binary, "token", "new", "--name", name, "--role", role]
        if department:
            argv += ["--department", department]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
        self.tokens[name] = out[1].strip()
        self.lines += [line for line in out if line.startswith("  - {")]

    def write_access(self):
        with open(self.access, "w") as f:
            f.write("tokens:\n" + "".join(line + "\n" for line in self.lines))

    def reload(self):
        r = curl(self.http + "/v1/admin/reload", "POST", "", ["Authorization: Bearer " + self.tokens["admin"]])
        check(r.code == 200 and r.json() == {"reloaded": True}, "reload: %d %s" % (r.code, r.body))

    def api(self, method, path, body=None, token="operator", key=None):
        """The JSON API as `token`; a command gets Idempotency-Key `key`."""
        headers = ["Authorization: Bearer " + self.tokens[token], "Content-Type: application/json"]
        if key:
            headers.append("Idempotency-Key: " + key)
        r = curl(self.http + path, method, None if body is None else json.dumps(body), headers)
        check(r.code in (200, 201), "%s %s: HTTP %d %s" % (method, path, r.code, r.body[:300]))
        return r.json()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- reads -----------------------------------------------------------------------------------

def read_checks(binary, server, base):
    """The read endpoints. Returns (the service code with conditions, services, requests)."""
    sj = get_json(base + "services.json")
    sx = xml_items(get_xml(base + "services.xml"), "services", "service")
    check(len(sj) > 100 and len(sj) == len(sx), "services: %d json, %d xml" % (len(sj), len(sx)))
    for s in sj:
        for f in SERVICE_FIELDS:
            check(f in s, "service lacks %s: %s" % (f, s))
        check(isinstance(s["metadata"], bool) and s["type"] in ("realtime", "batch", "blackbox"), str(s))
    check([s["service_code"] for s in sj] == [s["service_code"] for s in sx], "json and xml services differ")
    with_conditions = [s for s in sj if s["metadata"]]
    code = (with_conditions or sj)[0]["service_code"]
    d = get_json(base + "services/%s.json" % code)
    check(d["service_code"] == code and isinstance(d["attributes"], list), "definition: %s" % d)
    if with_conditions:
        a = d["attributes"][0]
        check(a["datatype"] == "singlevaluelist" and a["code"] == "condition" and a["values"], str(a))
    dx = get_xml(base + "services/%s.xml" % code)
    check(dx.tag == "service_definition" and dx.findtext("service_code") == code, "xml definition")
    err = get_json(base + "services/nonesuch.json", 404)
    check(isinstance(err, list) and err[0]["code"] == 404 and err[0]["description"], "error format: %s" % err)
    ex = get_xml(base + "services/nonesuch.xml", 404)
    check(ex.tag == "errors" and ex.find("error/code").text == "404", "xml error format")

    # one more case, over the CLI: coordinates and a hostile description
    out = subprocess.run([binary, "report", "--endpoint", server.endpoint, "--category", code, "--grid",
                          "330102001001001", "--source", "app", "--lat", "30.2701", "--lon", "120.1503",
                          "--description", HOSTILE], capture_output=True, text=True)
    check(out.returncode == 0, "report: " + out.stdout + out.stderr)
    new_id = re.search(r"case (\d+)", out.stdout).group(1)

    one = get_json(base + "requests/%s.json" % new_id)
    check(len(one) == 1, "one request: %s" % one)
    check_request(one[0], "requests/%s.json" % new_id)
    check(one[0]["description"] == HOSTILE and one[0]["status"] == "open", str(one[0]))
    check(abs(one[0]["lat"] - 30.2701) < 1e-6 and abs(one[0]["long"] - 120.1503) < 1e-6, "lat/long")
    onex = xml_items(get_xml(base + "requests/%s.xml" % new_id), "service_requests", "request")
    check(onex[0]["description"] == HOSTILE, "xml escaping: %r" % onex[0]["description"])
    check_request(onex[0], "requests/%s.xml" % new_id)
    check(get_json(base + "requests/999999.json", 404)[0]["code"] == 404, "unknown id")
    check(get_json(base + "requests/abc.json", 404)[0]["code"] == 404, "bad id")

    # lists and filters (the demo's cases are from 2026-11-16, so give the window)
    window = "start_date=2026-11-15T00:00:00%2B08:00&end_date=2026-12-31T00:00:00%2B08:00"
    allr = get_json(base + "requests.json?" + window)
    check(len(allr) > 100, "requests in the window: %d" % len(allr))
    for r in allr:
        check_request(r, "requests.json")
    allx = xml_items(get_xml(base + "requests.xml?" + window), "service_requests", "request")
    check([r["service_request_id"] for r in allr] == [r["service_request_id"] for r in allx], "json/xml lists")
    opened = get_json(base + "requests.json?status=open&" + window)
    closed = get_json(base + "requests.json?status=closed&" + window)
    check(opened and closed and all(r["status"] == "open" for r in opened)
          and all(r["status"] == "closed" for r in closed), "status filter")
    check(len(opened) + len(closed) <= len(allr), "open + closed within all")
    sc = allr[0]["service_code"]
    by_code = get_json(base + "requests.json?service_code=%s&%s" % (sc, window))
    check(by_code and all(r["service_code"] == sc for r in by_code), "service_code filter")
    early = get_json(base + "requests.json?start_date=2026-11-16T00:00:00%2B08:00"
                     "&end_date=2026-11-16T06:00:00%2B08:00")
    check(all("2026-11-16T00" <= r["requested_datetime"] <= "2026-11-16T06:00:00+08:00" for r in early)
          and len(early) < len(allr), "date window")
    ids = [allr[0]["service_request_id"], allr[1]["service_request_id"], new_id]
    listed = get_json(base + "requests.json?service_request_id=" + ",".join(ids))
    check([r["service_request_id"] for r in listed] == ids, "id list: %s" % [r["service_request_id"] for r in listed])
    check(get_json(base + "requests.json?status=pending", 400)[0]["code"] == 400, "bad status")
    check(get_json(base + "requests.json?start_date=yesterday", 400)[0]["code"] == 400, "bad date")
    check(get_json(base + "requests.json?service_request_id=1,,2", 400)[0]["code"] == 400, "bad id list")
    r = curl(base + "requests")
    check(r.code == 404 and "json or .xml" in r.body, "no format: %d %s" % (r.code, r.body))
    return code, sj, allr


# ---- POST requests ---------------------------------------------------------------------------

def spec_error(r, fmt, statuses, where):
    """An answer in the spec's error format, one of `statuses`; returns its description."""
    check(r.code in statuses, "%s: HTTP %d, want one of %s: %s" % (where, r.code, statuses, r.body[:300]))
    if fmt == "json":
        check(r.ctype.startswith("application/json"), "%s: content type %s" % (where, r.ctype))
        e = r.json()
        check(isinstance(e, list) and len(e) == 1 and e[0].get("code") == r.code
              and isinstance(e[0].get("description"), str) and e[0]["description"],
              "%s: not the spec's error format: %s" % (where, r.body[:300]))
        return e[0]["description"]
    check(r.ctype.startswith("text/xml"), "%s: content type %s" % (where, r.ctype))
    root = r.xml()
    check(root.tag == "errors" and len(root.findall("error")) == 1
          and root.findtext("error/code") == str(r.code) and root.findtext("error/description"),
          "%s: not the spec's error format: %s" % (where, r.body[:300]))
    return root.findtext("error/description")


def created(r, fmt, want, where):
    """The service_requests answer of a POST; returns its one item as a dict."""
    check(r.code == want, "%s: HTTP %d, want %d: %s" % (where, r.code, want, r.body[:300]))
    if fmt == "json":
        check(r.ctype.startswith("application/json"), "%s: content type %s" % (where, r.ctype))
        items = r.json()
        check(isinstance(items, list) and len(items) == 1, "%s: %s" % (where, r.body))
        item = items[0]
    else:
        check(r.ctype.startswith("text/xml"), "%s: content type %s" % (where, r.ctype))
        items = xml_items(r.xml(), "service_requests", "request")
        check(len(items) == 1, "%s: %s" % (where, r.body))
        item = items[0]
    for f in CREATED_FIELDS:
        check(f in item, "%s: the answer lacks %s: %s" % (where, f, item))
    check(re.fullmatch(r"[1-9][0-9]*", str(item["service_request_id"])), "%s: id %r" % (where, item))
    item["service_request_id"] = str(item["service_request_id"])
    return item


def read_back(server, base, rid, want):
    """GET requests/{rid}.json and .xml agree with `want` (field → value; lat/long approximate)."""
    one = get_json(base + "requests/%s.json" % rid)
    check(len(one) == 1, "requests/%s.json: %s" % (rid, one))
    check_request(one[0], "requests/%s.json" % rid)
    onex = xml_items(get_xml(base + "requests/%s.xml" % rid), "service_requests", "request")
    check(len(onex) == 1, "requests/%s.xml: %s" % (rid, onex))
    check_request(onex[0], "requests/%s.xml" % rid)
    for f, v in want.items():
        for fmt, got in (("json", one[0].get(f)), ("xml", onex[0].get(f))):
            if f in ("lat", "long"):
                check(got is not None and abs(float(got) - v) < 1e-6, "%s %s: %s %r, posted %r" % (rid, fmt, f, got, v))
            else:
                check(got == v, "requests/%s.%s: %s is %r, posted %r" % (rid, fmt, f, got, v))
    return one[0]


def post_checks(server, base, conditioned):
    """POST requests.{json,xml}: creation, read-back, retry, joining, errors. Returns the ids made."""
    key = server.tokens["reporter"]
    grid, lat, lon = GRID_EXAMPLE
    description = "A large sinkhole is destroying the street 路面塌陷 & <b>深坑</b>"
    # The spec's example request, in its order (attribute[...] comes after; device_id and
    # account_id are accepted and ignored).
    example = [("api_key", key), ("service_code", "100101"), ("lat", "%.6f" % lat), ("long", "%.6f" % lon),
               ("address_string", "1234 5th street 鼓楼区"), ("email", "smith@domain.com"),
               ("device_id", "tt222111"), ("account_id", "123456"), ("first_name", "john"),
               ("last_name", "smith"), ("phone", "111111111"), ("description", description),
               ("media_url", "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg")]
    body = urllib.parse.urlencode(example)
    first = created(curl(base + "requests.json", "POST", body), "json", 201, "POST requests.json (spec example)")
    rid = first["service_request_id"]
    read_back(server, base, rid, {"service_code": "100101", "description": description, "status": "open",
                                  "address": "1234 5th street 鼓楼区", "address_id": grid, "lat": lat, "long": lon})
    case = server.api("GET", "/v1/cases/" + rid)["case"]
    reporter = case["reporters"][0]
    check(reporter.get("name") == "john smith" and reporter.get("contact") == "smith@domain.com"
          and case["source"] == "OPEN311", "the reporter of %s: %s" % (rid, case["reporters"]))

    # The same POST byte for byte: the same request (a client's retry), in either format.
    again = created(curl(base + "requests.json", "POST", body), "json", 200, "the same POST again")
    check(again["service_request_id"] == rid, "retry: id %s, first %s" % (again["service_request_id"], rid))
    againx = created(curl(base + "requests.xml", "POST", body), "xml", 200, "the same POST to requests.xml")
    check(againx["service_request_id"] == rid, "retry (xml): id %s, first %s" % (againx["service_request_id"], rid))
    # Another report of the same problem at the same place joins the open request.
    joined = created(curl(base + "requests.xml", "POST", urllib.parse.urlencode(
        [("api_key", key), ("service_code", "100101"), ("address_id", grid), ("phone", "13900000000"),
         ("description", "second report")])), "xml", 200, "POST requests.xml (the same problem)")
    check(joined["service_request_id"] == rid and joined["service_notice"], "joined: %s" % joined)
    count = server.api("GET", "/v1/cases/" + rid)["case"].get("report_count")
    check(count == 2, "case %s: report_count %s after a report, 2 retries and a joining report" % (rid, count))

    # XML, address_id and attribute[condition]; phone as the contact when there is no email.
    values = get_json(base + "services/%s.json" % conditioned)["attributes"][0]["values"]
    condition = values[-1]["key"]
    form = [("api_key", key), ("service_code", conditioned), ("address_id", GRID_CONDITION),
            ("attribute[condition]", condition), ("first_name", "王"), ("phone", "13800000000"),
            ("description", "灯杆倾斜 <pole> & wire")]
    made = created(curl(base + "requests.xml", "POST", urllib.parse.urlencode(form)), "xml", 201,
                   "POST requests.xml (address_id, attribute[condition])")
    rid2 = made["service_request_id"]
    check(rid2 != rid and made["service_notice"] == "", "a new request: %s" % made)
    read_back(server, base, rid2, {"service_code": conditioned, "address_id": GRID_CONDITION,
                                   "description": "灯杆倾斜 <pole> & wire", "status": "open"})
    case = server.api("GET", "/v1/cases/" + rid2)["case"]
    check(case.get("condition") == condition and case["reporters"][0].get("name") == "王"
          and case["reporters"][0].get("contact") == "13800000000", "case %s: %s" % (rid2, case))
    post_errors(server, base, example)
    return rid, rid2


def post_errors(server, base, example):
    """The refusals of POST requests, each in the spec's error format, JSON and XML."""
    def without(*names):
        return [(k, v) for k, v in example if k not in names]

    def replaced(**values):
        return [(k, values.get(k, v)) for k, v in example]

    cases = [  # (what, form or raw body, statuses, a word the description must hold)
        ("no api_key", without("api_key"), (401, 403), "api_key"),
        ("an unknown api_key", replaced(api_key="cbt_not-a-key"), (401, 403), "api_key"),
        ("a leader's key (may not report)", replaced(api_key=server.tokens["leader"]), (403,), "report"),
        ("no service_code", without("service_code"), (400,), "service_code"),
        ("an unknown service_code", replaced(service_code="999999"), (400,), "service_code"),
        ("no location", without("lat", "long"), (400,), "address_id"),
        ("only lat", without("long"), (400,), "lat"),
        ("the spec's lat/long (San Francisco)", replaced(lat="37.76524078", long="-122.4212043"), (400,),
         "lat/long"),
        ("lat out of range", replaced(lat="91"), (400,), "lat"),
        ("an unknown address_id", without("lat", "long") + [("address_id", "999")], (400,), "grid"),
        ("an unknown condition", example + [("attribute[condition]", "nonesuch")], (400,), "condition"),
        ("a JSON body", json.dumps(dict(example)), (400,), "form"),
    ]
    for fmt in ("json", "xml"):
        for what, form, statuses, word in cases:
            body = form if isinstance(form, str) else urllib.parse.urlencode(form)
            headers = ["Content-Type: application/json"] if isinstance(form, str) else []
            r = curl(base + "requests." + fmt, "POST", body, headers)
            desc = spec_error(r, fmt, statuses, "POST requests.%s with %s" % (fmt, what))
            check(word in desc, "POST requests.%s with %s: %r does not name %s" % (fmt, what, desc, word))
    # An operator (who takes reports) may file one through Open311 too.
    r = curl(base + "requests.json", "POST",
             urllib.parse.urlencode(replaced(api_key=server.tokens["operator"], address_string="1 Operator Lane")))
    check(r.code in (200, 201), "POST requests.json with an operator's key: %d %s" % (r.code, r.body))


# ---- POST servicerequestupdates --------------------------------------------------------------

def dispatched_case(server, grid, n, department=None):
    """A case reported, registered and dispatched over the JSON API: (id, department)."""
    made = server.api("POST", "/v1/cases", {"category": "100101", "place": {"grid": grid}, "source": "HOTLINE",
                                            "description": "update case %d" % n}, key="upd-report-%d" % n)
    cid = made["case_id"]
    check(not made.get("merged"), "case at %s joined another: %s" % (grid, made))
    server.api("POST", "/v1/cases/%s:register" % cid, {}, key="upd-register-%d" % n)
    res = server.api("POST", "/v1/cases/%s:dispatch" % cid, {"department": department} if department else {},
                     key="upd-dispatch-%d" % n)
    check(res.get("department") and res.get("work_order_id"), "dispatch of %s: %s" % (cid, res))
    return cid, res["department"]


def update(server, base, fmt, token, fields, want=200):
    body = urllib.parse.urlencode([("api_key", server.tokens[token])] + fields)
    r = curl(base + "servicerequestupdates." + fmt, "POST", body)
    where = "POST servicerequestupdates.%s %s" % (fmt, dict(fields))
    if want != 200:
        return spec_error(r, fmt, (want,), where)
    check(r.code == 200, "%s: HTTP %d %s" % (where, r.code, r.body[:300]))
    if fmt == "json":
        check(r.ctype.startswith("application/json"), where + ": " + r.ctype)
        items = r.json()
    else:
        check(r.ctype.startswith("text/xml"), where + ": " + r.ctype)
        items = xml_items(r.xml(), "service_request_updates", "request_update")
    check(len(items) == 1 and items[0].get("update_id"), "%s: %s" % (where, r.body))
    return items[0]["update_id"]


def events(server, cid, kind):
    return [e for e in server.api("GET", "/v1/cases/" + cid)["case"]["history"] if e["type"] == kind]


def state_of(server, cid):
    return server.api("GET", "/v1/cases/" + cid)["case"]["state"]


def update_checks(server, base):
    c1, dept = dispatched_case(server, GRIDS_UPDATES[0], 1)
    c2, _ = dispatched_case(server, GRIDS_UPDATES[1], 2, dept)
    c3, _ = dispatched_case(server, GRIDS_UPDATES[2], 3, dept)
    other = "command-330102" if dept != "command-330102" else "water-supply"
    server.add_token("dept", "department", dept)
    server.add_token("other", "department", other)
    server.write_access()
    server.reload()

    # Another department's key: the case does not exist for it.
    for fmt in ("json", "xml"):
        update(server, base, fmt, "other", [("service_request_id", c1), ("update_id", "x1"),
                                            ("status", "IN_PROGRESS")], want=404)
    check(state_of(server, c1) == "DISPATCHED", "another department changed %s" % c1)
    # IN_PROGRESS accepts the work order.
    u1 = update(server, base, "json", "dept", [("service_request_id", c1), ("update_id", "wo-1"),
                                               ("status", "IN_PROGRESS"), ("description", "crew on the way")])
    check(state_of(server, c1) == "ACCEPTED", "IN_PROGRESS did not accept %s" % c1)
    check(get_json(base + "requests/%s.json" % c1)[0]["status_notes"] == "accepted", "status_notes of %s" % c1)
    # Any other status adds a note; the same update_id again is the same update.
    note = [("service_request_id", c1), ("update_id", "wo-2"), ("status", "OPEN"),
            ("description", "管道已隔离 pipe isolated")]
    u2 = update(server, base, "xml", "dept", note)
    check(update(server, base, "xml", "dept", note) == u2 and u2 != u1, "note retry: a new update id")
    notes = [e for e in events(server, c1, "EV_NOTE") if e.get("reason") == "管道已隔离 pipe isolated"]
    check(len(notes) == 1, "the note of %s recorded %d times" % (c1, len(notes)))
    # FIXED resolves, with media_url as the evidence; repeated, nothing more happens.
    fixed = [("service_request_id", c1), ("update_id", "wo-3"), ("status", "FIXED"),
             ("description", "cover replaced"), ("media_url", "http://photos.example/after.jpg")]
    u3 = update(server, base, "json", "dept", fixed)
    check(update(server, base, "json", "dept", fixed) == u3, "FIXED retry: a new update id")
    resolved = events(server, c1, "EV_RESOLVED")
    check(state_of(server, c1) == "RESOLVED" and len(resolved) == 1
          and resolved[0].get("evidence") == ["http://photos.example/after.jpg"], "FIXED: %s" % resolved)
    # FIXED without media_url: the update id is the evidence.
    update(server, base, "json", "dept", [("service_request_id", c3), ("update_id", "wo-4"), ("status", "in_progress")])
    update(server, base, "xml", "dept", [("service_request_id", c3), ("update_id", "wo-5"), ("status", "FIXED")])
    resolved = events(server, c3, "EV_RESOLVED")
    check(len(resolved) == 1 and resolved[0].get("evidence") == ["open311-update:wo-5"], "evidence: %s" % resolved)
    # NOT_RESPONSIBLE returns the work order.
    back = [("service_request_id", c2), ("update_id", "wo-6"), ("status", "NOT_RESPONSIBLE"),
            ("description", "not our pipe")]
    u6 = update(server, base, "json", "dept", back)
    check(update(server, base, "json", "dept", back) == u6, "NOT_RESPONSIBLE retry")
    check(state_of(server, c2) == "RETURNED" and len(events(server, c2, "EV_RETURNED")) == 1, "return of %s" % c2)
    update_errors(server, base, c1)
    return dept


def update_errors(server, base, cid):
    for fmt in ("json", "xml"):
        url = base + "servicerequestupdates." + fmt
        r = curl(url)
        spec_error(r, fmt, (405,), "GET servicerequestupdates." + fmt)
        check(r.allow.strip() == "POST", "GET servicerequestupdates.%s: Allow %r" % (fmt, r.allow))
        fields = [("service_request_id", cid), ("update_id", "e1"), ("status", "OPEN")]
        spec_error(curl(url, "POST", urllib.parse.urlencode(fields)), fmt, (401, 403), "update without api_key")
        spec_error(curl(url, "POST", urllib.parse.urlencode([("api_key", "cbt_nope")] + fields)), fmt, (401, 403),
                   "update with an unknown api_key")
        for name in ("service_request_id", "update_id", "status"):
            desc = update(server, base, fmt, "dept", [f for f in fields if f[0] != name], want=400)
            check(name in desc, "update without %s: %r" % (name, desc))
        update(server, base, fmt, "dept", [("service_request_id", "999999"), ("update_id", "e2"),
                                           ("status", "OPEN")], want=404)
        spec_error(curl(url, "POST", json.dumps(dict(fields)), ["Content-Type: application/json"]), fmt, (400,),
                   "update with a JSON body")


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="open311-test-")
    subprocess.run([binary, "demo", "--keep", tmp + "/data", "--days", "2", "--cases-per-day", "200"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(binary, tmp)
    try:
        base = server.http + "/open311/v2/"
        conditioned, services, in_window = read_checks(binary, server, base)
        reads = checks
        post_checks(server, base, conditioned)
        posts = checks - reads
        dept = update_checks(server, base)
        print("open311: %d checks passed (reads %d, POST requests %d, servicerequestupdates %d; "
              "%d services, %d requests in the window; updates by %s)"
              % (checks, reads, posts, checks - reads - posts, len(services), len(in_window), dept))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
