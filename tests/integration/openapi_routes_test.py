#!/usr/bin/env python3
"""engine/server/openapi.yaml against a real `casebus serve`: every documented operation answers
as documented, and every route the server registers is documented.

usage: openapi_routes_test.py CASEBUS SOURCE_DIR

  1. Serves a fresh data dir (the sample city) with an access file holding one token per role.
     Makes the cases the probes name: "reported" (POST /v1/cases) and "dispatched" (reported,
     registered and dispatched); then adds a token for the department the dispatch named and
     reloads with SIGHUP.
  2. For every path x method of the document, sends the request its x-casebus-probe describes
     (the vocabulary is in the document's info.description) and checks: the status is `expect`
     and a documented response; the Content-Type is one documented for it; a JSON body has the
     documented schema's types and required properties (recursively), an XML body the schema's
     element names and required children; GET /v1/openapi.yaml is the source file byte for byte.
  3. For every secured operation, the same request without credentials: 401, documented, with
     its documented content type and schema (and WWW-Authenticate for bearer).
  4. Route("...") and RoutePrefix("...") in engine/server/*.cc (a string literal, or a constant
     of the same file) against the document's paths: an exact route is a documented path with
     the same methods; a prefix is documented by the paths under it, together with the same
     methods; every documented path is served by one or the other.
Prints one summary line with the number of checks. Exit 0 passed, 1 failed (reason on stderr).
"""
import glob
import http.client
import itertools
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

import yaml

ROLES = ("operator", "dispatcher", "leader", "admin", "reporter")  # department: after the dispatch
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Grids of the sample city, one per case made, so no report joins another.
GRID_REPORTED, GRID_DISPATCHED, GRID_PROBE = "330102001004001", "330102001004002", "330102001004003"
FAILED_AUTH_PAUSE_S = 0.12  # the server allows 10 failed authentications a second per address


class Failure(Exception):
    pass


class Checks:
    def __init__(self):
        self.count = 0

    def __call__(self, cond, msg):
        self.count += 1
        if not cond:
            raise Failure(msg)


check = Checks()


# ---- the server ------------------------------------------------------------------------------

class Server:
    def __init__(self, binary, tmp):
        self.binary, self.tmp = binary, tmp
        self.access = os.path.join(tmp, "access.yaml")
        self.lines, self.tokens = [], {}
        for role in ROLES:
            self.add_token(role, role)
        self.write_access()
        self.log_path = os.path.join(tmp, "serve.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", "--data", os.path.join(tmp, "data"), "--access", self.access,
                 "--endpoint", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                 "--http-file", os.path.join(tmp, "http")], stdout=log, stderr=log)
        self.addr = self.wait_address(os.path.join(tmp, "http"))

    def wait_address(self, path):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("casebus serve exited with status %d" % self.proc.returncode)
            if os.path.exists(path):
                text = open(path).read()
                if text.endswith("\n"):
                    return text.strip()
            time.sleep(0.1)
        raise Failure("no address in %s after 30 s" % path)

    def add_token(self, name, role, department=None):
        argv = [self.binary, "token", "new", "--name", name, "--role", role]
        if department:
            argv += ["--department", department]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
        self.tokens[role] = out[1].strip()
        self.lines += [line for line in out if line.startswith("  - {")]

    def write_access(self):
        with open(self.access, "w") as f:
            f.write("tokens:\n" + "".join(line + "\n" for line in self.lines))

    def request(self, method, path, headers=None, body=None):
        """(status, headers with lower-case names, body bytes)."""
        host, port = self.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def command(self, path, body, key):
        status, _, raw = self.request("POST", path, {
            "Authorization": "Bearer " + self.tokens["operator"], "Idempotency-Key": key,
            "Content-Type": "application/json"}, json.dumps(body))
        check(status in (200, 201), "setup POST %s: HTTP %d %s" % (path, status, raw[:300]))
        return json.loads(raw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def report(grid, description):
    return {"category": "100101", "place": {"grid": grid}, "source": "HOTLINE", "description": description}


def make_cases(server):
    """The probes' cases: {"reported": id, "dispatched": id}; adds the department's token."""
    reported = server.command("/v1/cases", report(GRID_REPORTED, "openapi: reported"), "setup-reported")
    made = server.command("/v1/cases", report(GRID_DISPATCHED, "openapi: dispatched"), "setup-dispatched")
    check(not reported.get("merged") and not made.get("merged"), "setup cases joined others")
    cid = made["case_id"]
    server.command("/v1/cases/%s:register" % cid, {}, "setup-register")
    dispatch = server.command("/v1/cases/%s:dispatch" % cid, {}, "setup-dispatch")
    department = dispatch.get("department")
    check(department, "the dispatch named no department: %s" % dispatch)
    server.add_token("department", "department", department)
    server.write_access()
    server.proc.send_signal(signal.SIGHUP)  # reload
    auth = {"Authorization": "Bearer " + server.tokens["department"]}
    deadline = time.monotonic() + 10
    while True:
        status, _, raw = server.request("GET", "/v1/workorders", auth)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check(status == 200, "the department token after SIGHUP: HTTP %d %s" % (status, raw[:200]))
    orders = json.loads(raw)["work_orders"]
    check([o["case_id"] for o in orders] == [cid], "%s's work orders: %s" % (department, orders))
    return {"reported": reported["case_id"], "dispatched": cid}, department


# ---- the document ----------------------------------------------------------------------------

def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        check(ref.startswith("#/"), "external $ref %s" % ref)
        node = doc
        for part in ref[2:].split("/"):
            check(isinstance(node, dict) and part in node, "dangling $ref %s" % ref)
            node = node[part]
    return node


def type_ok(t, v):
    return {"object": lambda: isinstance(v, dict), "array": lambda: isinstance(v, list),
            "string": lambda: isinstance(v, str), "boolean": lambda: isinstance(v, bool),
            "integer": lambda: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda: isinstance(v, (int, float)) and not isinstance(v, bool)}[t]()


def schema_errors(doc, schema, value, where):
    """What in a JSON value disagrees with the schema: type, enum, required, recursively."""
    schema = resolve(doc, schema)
    t = schema.get("type")
    if t and not type_ok(t, value):
        return ["%s: a %s, want %s" % (where, type(value).__name__, t)]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r is not one of %s" % (where, value, schema["enum"]))
    if isinstance(value, dict):
        errors += ["%s: lacks required %s" % (where, k) for k in schema.get("required", []) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errors += schema_errors(doc, sub, value[k], "%s.%s" % (where, k))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(doc, schema["items"], item, "%s[%d]" % (where, i))
    return errors


def xml_errors(doc, schema, element, where):
    """An XML body against the schema's xml names: the wrapper, its items, required children."""
    schema = resolve(doc, schema)
    name = schema.get("xml", {}).get("name")
    if name is None:
        return ["%s: the schema names no XML element" % where]
    if element.tag != name:
        return ["%s: <%s>, want <%s>" % (where, element.tag, name)]
    if schema.get("type") == "array":
        errors = []
        for i, child in enumerate(element):
            errors += xml_errors(doc, schema["items"], child, "%s/%s[%d]" % (where, name, i))
        return errors
    tags = {child.tag for child in element}
    return ["%s/%s: lacks <%s>" % (where, name, k) for k in schema.get("required", []) if k not in tags]


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


# ---- probes ----------------------------------------------------------------------------------

class Probe:
    """One request an operation's x-casebus-probe describes (one per value of a listed path
    parameter)."""

    def __init__(self, doc, path, method, op, params, cases, tokens):
        probe = op["x-casebus-probe"]
        self.where = "%s %s %s" % (method.upper(), path, params)
        self.method, self.op, self.expect = method.upper(), op, probe["expect"]
        form = {k: str(v) for k, v in probe.get("form", {}).items()}
        if "id" in probe:
            cid = cases[probe["id"]]
            slot = next((p for p in ("id", "service_request_id") if "{%s}" % p in path), None)
            if slot:
                params[slot] = cid
            else:
                form["service_request_id"] = cid
        if "action" in probe:
            params["action"] = probe["action"]
        missing = [p for p in re.findall(r"{(\w+)}", path) if p not in params]
        check(not missing, "%s: the probe leaves %s unfilled" % (self.where, missing))
        self.path = re.sub(r"{(\w+)}", lambda m: urllib.parse.quote(str(params[m.group(1)]), safe=""), path)
        self.query = {k: str(v) for k, v in probe.get("query", {}).items()}
        self.headers, self.body, self.form = {}, None, form if ("form" in probe or form) else None
        if "body" in probe:
            body = probe["body"]
            self.body = json.dumps(report(GRID_PROBE, "openapi: probe") if body == "report" else body)
            self.headers["Content-Type"] = "application/json"
        self.scheme = self.security_scheme(doc)
        self.token = tokens[probe["role"]] if "role" in probe else None
        check(bool(self.scheme) == bool(self.token),
              "%s: a role is given exactly when the operation is secured" % self.where)

    def security_scheme(self, doc):
        requirements = self.op.get("security", doc.get("security", []))
        if not requirements:
            return None
        name = next(iter(requirements[0]))
        return doc["components"]["securitySchemes"][name]

    def send(self, server, key, with_token=True):
        headers, query, form = dict(self.headers), dict(self.query), dict(self.form or {})
        if with_token and self.scheme and self.scheme["type"] == "http":
            headers["Authorization"] = "Bearer " + self.token
        elif with_token and self.scheme:  # apiKey: in the form if any (GeoReport v2), else the query
            (form if self.form is not None else query)[self.scheme["name"]] = self.token
        if self.method == "POST" and self.scheme and self.scheme["type"] == "http":
            headers["Idempotency-Key"] = key
        body = self.body
        if self.form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = self.path + ("?" + urllib.parse.urlencode(query) if query else "")
        return server.request(self.method, target, headers, body)


def check_answer(doc, op, where, status, headers, raw, source_text):
    """The answer is a documented response of the operation, in a documented form."""
    responses = op.get("responses", {})
    check(str(status) in responses, "%s: HTTP %d is not a documented response (%s)"
          % (where, status, sorted(responses)))
    documented = resolve(doc, responses[str(status)])
    content = documented.get("content", {})
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    check(ctype in content, "%s: Content-Type %r, documented %s" % (where, ctype, sorted(content)))
    schema = content[ctype].get("schema", {})
    text = raw.decode("utf-8")
    if ctype == "application/json":
        errors = schema_errors(doc, schema, json.loads(text), "body")
    elif ctype == "text/xml":
        errors = xml_errors(doc, schema, ET.fromstring(raw), "")
    elif ctype == "application/yaml":
        errors = [] if text == source_text else ["not engine/server/openapi.yaml (rebuild casebus?)"]
    else:
        errors = [] if text else ["an empty body"]
    check(not errors, "%s: HTTP %d body against the schema: %s\n%s" % (where, status, errors[:5], text[:300]))


def run_probes(server, doc, cases, source_text):
    """Every operation's probe, and for a secured one the same without credentials."""
    n_requests, n_unauthorized, n_ops = 0, 0, 0
    for path, method, op in operations(doc):
        check("x-casebus-probe" in op, "%s %s has no x-casebus-probe" % (method.upper(), path))
        n_ops += 1
        params = op["x-casebus-probe"].get("path", {})
        lists = [[(k, x) for x in (v if isinstance(v, list) else [v])] for k, v in params.items()]
        for combo in itertools.product(*lists):
            probe = Probe(doc, path, method, op, dict(combo), cases, server.tokens)
            n_requests += 1
            status, headers, raw = probe.send(server, "probe-%d" % n_requests)
            check(status == probe.expect, "%s: HTTP %d, expected %d: %s"
                  % (probe.where, status, probe.expect, raw[:300]))
            check_answer(doc, op, probe.where, status, headers, raw, source_text)
            if not probe.scheme:
                continue
            time.sleep(FAILED_AUTH_PAUSE_S)
            status, headers, raw = probe.send(server, "probe-%d-anonymous" % n_requests, with_token=False)
            where = probe.where + " without credentials"
            check(status == 401, "%s: HTTP %d, want 401: %s" % (where, status, raw[:300]))
            check_answer(doc, op, where, status, headers, raw, source_text)
            if probe.scheme["type"] == "http":
                check(headers.get("www-authenticate", "").startswith("Bearer"),
                      "%s: WWW-Authenticate %r" % (where, headers.get("www-authenticate")))
            n_unauthorized += 1
    return n_ops, n_requests, n_unauthorized


# ---- routes ----------------------------------------------------------------------------------

def registered_routes(source_dir):
    """{(kind, path): set of methods} from Route(...) / RoutePrefix(...) in engine/server/*.cc."""
    routes = {}
    pattern = re.compile(r'\b(Route|RoutePrefix)\(\s*("([^"]*)"|(\w+))\s*,\s*\{([^}]*)\}')
    for cc in sorted(glob.glob(os.path.join(source_dir, "engine", "server", "*.cc"))):
        text = open(cc, encoding="utf-8").read()
        for m in pattern.finditer(text):
            path = m.group(3)
            if path is None:  # a constant of the same file: constexpr const char* kBase = "...";
                const = re.search(r'\b%s\s*=\s*"([^"]*)"' % re.escape(m.group(4)), text)
                check(const, "%s: %s(%s, ...): the constant's value is not in the file"
                      % (os.path.basename(cc), m.group(1), m.group(4)))
                path = const.group(1)
            methods = {x.lower() for x in re.findall(r'"([A-Z]+)"', m.group(5))}
            routes[(m.group(1), path)] = methods
    check(routes, "no Route(...) found under %s/engine/server" % source_dir)
    return routes


def compare_routes(doc, routes):
    documented = {p: {m for m in METHODS if m in item} for p, item in doc["paths"].items()}
    exact = {p: m for (kind, p), m in routes.items() if kind == "Route"}
    prefixes = {p: m for (kind, p), m in routes.items() if kind == "RoutePrefix"}
    for path, methods in sorted(exact.items()):
        check(path in documented, "route %s is not documented in openapi.yaml" % path)
        check(documented[path] == methods, "route %s: serves %s, documented %s"
              % (path, sorted(methods), sorted(documented[path])))
    for prefix, methods in sorted(prefixes.items()):
        under = [p for p in documented if p.startswith(prefix) and p not in exact]
        check(under, "prefix route %s has no documented path under it" % prefix)
        union = set().union(*(documented[p] for p in under))
        check(union == methods, "prefix route %s: serves %s, its documented paths %s"
              % (prefix, sorted(methods), sorted(union)))
    for path in documented:
        check(path in exact or any(path.startswith(p) for p in prefixes),
              "documented path %s is served by no route" % path)
    return len(exact), len(prefixes)


def main():
    binary, source_dir = sys.argv[1], sys.argv[2]
    doc_path = os.path.join(source_dir, "engine", "server", "openapi.yaml")
    source_text = open(doc_path, encoding="utf-8").read()
    doc = yaml.safe_load(source_text)
    tmp = tempfile.mkdtemp(prefix="openapi-routes-")
    server = None
    try:
        n_exact, n_prefix = compare_routes(doc, registered_routes(source_dir))
        server = Server(binary, tmp)
        cases, department = make_cases(server)
        n_ops, n_requests, n_unauth = run_probes(server, doc, cases, source_text)
        print("openapi_routes: %d checks passed (%d operations, %d probe requests, %d secured ones "
              "refused without credentials; %d routes and %d prefixes = %d documented paths; "
              "department token for %s)" % (check.count, n_ops, n_requests, n_unauth, n_exact, n_prefix,
                                            len(doc["paths"]), department))
        return 0
    except (Failure, OSError, ValueError, KeyError, ET.ParseError) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if server is not None and os.path.exists(server.log_path):
            sys.stderr.write("--- serve log (tail) ---\n" + open(server.log_path).read()[-3000:])
        return 1
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
