#!/usr/bin/python3
"""A small Open311 GeoReport v2 server on loopback, for the open311 adapter's tests.

GeoReport v2 (JSON only), under any path prefix (e.g. /open311/v2/):
  GET  {prefix}services.json           the service list (--services)
  POST {prefix}requests.json           form-encoded; checks api_key (403 with an error array),
                                       jurisdiction_id (when --jurisdiction is given) and
                                       service_code (400 with an error array); answers
                                       [{"service_request_id":"638344","service_notice":"..."}],
                                       or [{"token":"..."}] in token mode
  GET  {prefix}tokens/{token}.json     [{"service_request_id":...,"token":...}]
  GET  {prefix}requests/{id}.json      [{"service_request_id":...,"status":"open",...}]

Control endpoints, for the test (JSON in and out):
  POST /control/requests/{id}   {"status":..., "status_notes":..., "agency_responsible":...,
                                "fail_get": 500}: changes a request (updated_datetime moves
                                on); fail_get (0: off) makes GETs of it answer that status
  POST /control/mode            {"post": MODE, "get": MODE, "token": bool}: how the next
                                answers misbehave until changed. POST modes: ok, garbage
                                (200 with a non-JSON body), noid (200, [{}]), 500 (with
                                Retry-After: 7), 400, slow (--slow-s, then ok), huge (200 with
                                a 2 MiB body). GET modes: ok, garbage, wrongshape ({"a":1}),
                                badstatus ("status":"pending"), otherid, 500, slow, huge.
  GET  /control/log             {"posts": [{"path":..., "form": {name: value}}...],
                                 "gets": {path: count}}
The port is written to --port-file once listening. Stops on SIGTERM.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TZ = timezone(timedelta(hours=-8))
SERVICES = [
    {"service_code": "001", "service_name": "Cans left out 24x7", "description": "Garbage",
     "metadata": False, "type": "realtime", "keywords": "", "group": "sanitation"},
    {"service_code": "drain-blocked", "service_name": "Blocked drain", "description": "Drains",
     "metadata": False, "type": "realtime", "keywords": "drain", "group": "streets"},
]


def now_iso():
    return datetime.now(TZ).replace(microsecond=0).isoformat()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--jurisdiction", default="")
    ap.add_argument("--slow-s", type=float, default=2.0)
    ap.add_argument("--first-id", type=int, default=638344)
    args = ap.parse_args()

    lock = threading.Lock()
    state = {"next": args.first_id, "requests": {}, "tokens": {}, "posts": [], "gets": {},
             "mode": {"post": "ok", "get": "ok", "token": False}}
    codes = {s["service_code"] for s in SERVICES}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def answer(self, status, body, headers=None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def error(self, status, description):
            self.answer(status, [{"code": status, "description": description}])

        def read_body(self):
            return self.rfile.read(int(self.headers.get("content-length", "0")))

        def do_GET(self):
            url = urlsplit(self.path)
            path = url.path
            if path == "/control/log":
                with lock:
                    return self.answer(200, {"posts": state["posts"], "gets": state["gets"]})
            with lock:
                state["gets"][path] = state["gets"].get(path, 0) + 1
                mode = state["mode"]["get"]
            query = parse_qs(url.query)
            if args.jurisdiction and query.get("jurisdiction_id", [""])[0] != args.jurisdiction:
                return self.error(404, "jurisdiction_id not found")
            if path.endswith("/services.json"):
                return self.answer(200, SERVICES)
            if "/tokens/" in path and path.endswith(".json"):
                token = path.rsplit("/", 1)[1][:-5]
                with lock:
                    rid = state["tokens"].get(token)
                if rid is None:
                    return self.error(404, "token not found")
                return self.answer(200, [{"service_request_id": rid, "token": token}])
            if "/requests/" in path and path.endswith(".json"):
                return self.get_request(path.rsplit("/", 1)[1][:-5], mode)
            self.error(404, "no such resource")

        def get_request(self, rid, mode):
            if mode == "slow":
                time.sleep(args.slow_s)
            elif mode == "500":
                return self.error(500, "database unavailable")
            elif mode == "garbage":
                return self.answer(200, b"<html>maintenance</html>")
            elif mode == "wrongshape":
                return self.answer(200, {"a": 1})
            elif mode == "huge":
                return self.answer(200, b"[" + b" " * (2 << 20) + b"]")
            with lock:
                r = state["requests"].get(rid)
                r = dict(r) if r else None
            if r is None:
                return self.error(404, "service request %s not found" % rid)
            fail = r.pop("fail_get", None)
            if fail:
                return self.error(int(fail), "cannot read request %s" % rid)
            if mode == "badstatus":
                r["status"] = "pending"
            elif mode == "otherid":
                r["service_request_id"] = "999999"
            self.answer(200, [r])

        def do_POST(self):
            url = urlsplit(self.path)
            body = self.read_body()
            if url.path == "/control/mode":
                with lock:
                    state["mode"].update(json.loads(body or b"{}"))
                return self.answer(200, state["mode"])
            if url.path.startswith("/control/requests/"):
                return self.control_request(url.path.rsplit("/", 1)[1], json.loads(body or b"{}"))
            if not url.path.endswith("/requests.json"):
                return self.error(404, "no such resource")
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            with lock:
                state["posts"].append({"path": url.path, "form": form,
                                       "content_type": self.headers.get("content-type", "")})
                mode = dict(state["mode"])
            self.post_request(form, mode)

        def post_request(self, form, mode):
            if mode["post"] == "slow":
                time.sleep(args.slow_s)
            elif mode["post"] == "500":
                return self.answer(500, b"oops", {"Retry-After": "7"})
            elif mode["post"] == "400":
                return self.error(400, "lat/long out of the jurisdiction")
            elif mode["post"] == "garbage":
                return self.answer(200, b"<html>Service temporarily unavailable</html>")
            elif mode["post"] == "noid":
                return self.answer(200, [{}])
            elif mode["post"] == "huge":
                return self.answer(200, b"[" + b" " * (2 << 20) + b"]")
            if form.get("api_key") != args.api_key:
                return self.error(403, "Invalid api_key")
            if args.jurisdiction and form.get("jurisdiction_id") != args.jurisdiction:
                return self.error(404, "jurisdiction_id not found")
            code = form.get("service_code", "")
            if code not in codes:
                return self.error(400, "Service code %s is invalid" % code if code else "service_code is required")
            with lock:
                rid = str(state["next"])
                state["next"] += 1
                service = next(s for s in SERVICES if s["service_code"] == code)
                t = now_iso()
                state["requests"][rid] = {
                    "service_request_id": rid, "status": "open", "status_notes": None,
                    "service_name": service["service_name"], "service_code": code,
                    "description": form.get("description", ""),
                    "agency_responsible": "Jinhe Drainage Works", "service_notice": "",
                    "address": form.get("address_string", ""),
                    "requested_datetime": t, "updated_datetime": t, "expected_datetime": None,
                    "lat": float(form["lat"]) if "lat" in form else None,
                    "long": float(form["long"]) if "long" in form else None,
                }
                if mode.get("token"):
                    token = "tok-" + rid
                    state["tokens"][token] = rid
            if mode.get("token"):
                return self.answer(200, [{"token": token}])
            self.answer(200, [{"service_request_id": rid,
                               "service_notice": "Will be handled within 3 working days"}])

        def control_request(self, rid, change):
            with lock:
                r = state["requests"].get(rid)
                if r is None:
                    return self.error(404, "no request %s" % rid)
                for k in ("status", "status_notes", "agency_responsible", "fail_get"):
                    if k in change:
                        r[k] = change[k]
                r["updated_datetime"] = now_iso()
                out = dict(r)
            self.answer(200, out)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    server = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
