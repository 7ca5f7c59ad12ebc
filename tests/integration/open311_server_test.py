#!/usr/bin/env python3
"""Open311 GeoReport v2 conformance of `casebus serve` (/open311/v2/), with curl as the client.

usage: open311_server_test.py CASEBUS

Builds a store with the demo (2 days, 200 cases a day), serves it, reports one more case over
the CLI (coordinates, a hostile description), then checks every read endpoint in JSON and XML
against the GeoReport v2 field lists and filters, and the spec's error format.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code",
                  "description", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "media_url"]
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)$")
HOSTILE = "<script>alert('x')</script> & \"quotes\""
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


def curl(url, method="GET"):
    out = subprocess.run(["curl", "-s", "-X", method, "-w", "\n%{http_code} %{content_type}", url],
                         capture_output=True, check=True).stdout.decode("utf-8")
    body, _, tail = out.rpartition("\n")
    code, _, ctype = tail.partition(" ")
    return int(code), ctype, body


def get_json(url, want=200):
    code, ctype, body = curl(url)
    check(code == want, "%s: HTTP %d, want %d: %s" % (url, code, want, body[:200]))
    check(ctype.startswith("application/json"), "%s: content type %s" % (url, ctype))
    return json.loads(body)


def get_xml(url, want=200):
    code, ctype, body = curl(url)
    check(code == want, "%s: HTTP %d, want %d: %s" % (url, code, want, body[:200]))
    check(ctype.startswith("text/xml"), "%s: content type %s" % (url, ctype))
    return ET.fromstring(body.encode("utf-8"))


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


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="open311-test-")
    subprocess.run([binary, "demo", "--keep", tmp + "/data", "--days", "2", "--cases-per-day", "200"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(tmp + "/serve.log", "w")
    server = subprocess.Popen([binary, "serve", "--data", tmp + "/data", "--http", "127.0.0.1:0",
                               "--http-file", tmp + "/http", "--endpoint", "tcp://127.0.0.1:0",
                               "--endpoint-file", tmp + "/zmq"], stdout=log, stderr=log)
    try:
        for _ in range(300):
            if os.path.exists(tmp + "/http") and os.path.exists(tmp + "/zmq"):
                break
            time.sleep(0.1)
        base = "http://" + open(tmp + "/http").read().strip() + "/open311/v2/"
        endpoint = open(tmp + "/zmq").read().strip()

        # services, both formats, same content
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
        out = subprocess.run([binary, "report", "--endpoint", endpoint, "--category", code, "--grid",
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
        code_, _, body = curl(base + "requests")
        check(code_ == 404 and "json or .xml" in body, "no format: %d %s" % (code_, body))
        code_, _, body = curl(base + "requests.json", "POST")
        check(code_ == 403, "POST without api_key: %d" % code_)
        print("open311: %d checks passed (%d services, %d requests in the window)" % (checks, len(sj), len(allr)))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
