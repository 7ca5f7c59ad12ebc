#!/usr/bin/python3
"""A flaky webhook receiver for the webhook delivery tests: a real HTTP server on loopback
whose answer to each request follows a seeded script.

Per request, in arrival order, a random.Random(seed) draws one action:
  ok        read the body, answer 200
  500       read the body, answer 500
  503ra     read the body, answer 503 with Retry-After: <retry-after>
  429       read the body, answer 429 (no Retry-After)
  slow      read the body, wait --slow-s (longer than the sender's timeout), answer 200
  reset     read half the body, then reset the connection (RST)
  drop      read the body ("processed"), then close without answering
Ids whose CRC-32 is divisible by --poison-every always get 400 (a non-retryable refusal).
Requests numbered [--outage-from, --outage-from + --outage-count) all get 503 without
Retry-After (a burst outage that trips the sender's circuit breakers).

Every request is logged as one JSON line to --log: n, t (Unix seconds, float), path, id,
timestamp and signature headers, the body (base64; complete only when body_complete), the
action. The port is written to --port-file once listening. Stops on SIGTERM.
"""
import argparse
import base64
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACTIONS = [("ok", 70), ("500", 7), ("503ra", 1), ("429", 5), ("slow", 2), ("reset", 6), ("drop", 9)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--poison-every", type=int, default=97)
    ap.add_argument("--slow-s", type=float, default=0.6)
    ap.add_argument("--retry-after", default="1")
    ap.add_argument("--outage-from", type=int, default=-1)
    ap.add_argument("--outage-count", type=int, default=0)
    ap.add_argument("--all-ok", action="store_true", help="answer 200 to everything but poison")
    ap.add_argument("--port", type=int, default=0, help="listen here (0: any free port)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    lock = threading.Lock()
    counter = [0]
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            wid = self.headers.get("webhook-id", "")
            length = int(self.headers.get("content-length", "0"))
            with lock:
                n = counter[0]
                counter[0] += 1
                action = "ok" if args.all_ok else rng.choices(names, weights)[0]
            if wid and zlib.crc32(wid.encode()) % args.poison_every == 0:
                action = "400"
            elif args.outage_from <= n < args.outage_from + args.outage_count:
                action = "503"
            complete = action != "reset"
            body = self.rfile.read(length if complete else length // 2)
            entry = {"n": n, "t": time.time(), "path": self.path, "id": wid,
                     "ts": self.headers.get("webhook-timestamp", ""),
                     "sig": self.headers.get("webhook-signature", ""),
                     "body": base64.b64encode(body).decode(), "body_complete": complete,
                     "action": action}
            with lock:
                log.write(json.dumps(entry) + "\n")
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if action == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if action == "slow":
                time.sleep(args.slow_s)
            status = {"ok": 200, "slow": 200, "500": 500, "503ra": 503, "503": 503, "429": 429,
                      "400": 400}[action]
            self.send_response(status)
            if action == "503ra":
                self.send_header("Retry-After", args.retry_after)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", args.port), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
