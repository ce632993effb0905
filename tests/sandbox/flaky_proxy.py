"""An HTTP reverse proxy in front of the sandbox registry that fails on demand.

Registries go away for a while (a deploy of the registry, a load balancer
draining, ECR throttling pushes). Put this proxy between fastdeploy and the
registry and tell it to fail the matching requests the next N times, for a
time window, or for good; everything else is forwarded unchanged (the Host
header too, so the registry's upload Locations name the proxy and the whole
push goes through it).

Faults:
- "status" (default): answer `status` (503 by default) with the registry's
  error body (`{"errors": [{"code": "UNAVAILABLE", ...}]}`, or
  TOOMANYREQUESTS for 429), as a registry behind a load balancer does.
- "reset": close the connection with a TCP reset, nothing answered.

With `"after": true` the answer is lost instead: the request is forwarded and
the registry applies it (a blob upload completes, a manifest is stored), then
the client gets the fault (the status, or the reset) instead of the
registry's answer. Such requests count as "lost" (and as "forwarded"); their
log entries read [method, path, "lost:<status|reset>", registry status].

Control endpoints (never forwarded):
  POST /__flaky/config  {"methods": ["POST", "PUT", "PATCH"], "path": "regex",
                         "times": 3 | "seconds": 2.5 | "forever": true,
                         "mode": "status" | "reset", "status": 503,
                         "after": false}
                        replaces the fault (an empty body clears it); methods
                        default to the writes (a push), path to any /v2/ path.
  GET  /__flaky/state   {"faulted": n, "forwarded": n, "lost": n,
                         "log": [[method, path, status], ...]}

Usage: python3 flaky_proxy.py PORT UPSTREAM_HOST:PORT
Prints "ready PORT" once it listens; exits when stdin closes.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULT: dict = {}
STATS = {"faulted": 0, "forwarded": 0, "lost": 0, "log": []}
UPSTREAM = ""
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def configure(body: dict) -> dict:
    fault = {}
    if body:
        fault = {
            "methods": [m.upper() for m in body.get("methods", ["POST", "PUT", "PATCH"])],
            "path": body.get("path", "/v2/.*"),
            "mode": body.get("mode", "status"),
            "status": int(body.get("status", 503)),
            "left": int(body["times"]) if "times" in body else None,
            "until": time.monotonic() + float(body["seconds"]) if "seconds" in body else None,
            "forever": bool(body.get("forever", False)),
            "after": bool(body.get("after", False)),
        }
        if fault["mode"] not in ("status", "reset"):
            raise ValueError("mode is status or reset")
        if fault["left"] is None and fault["until"] is None and not fault["forever"]:
            raise ValueError("say how long: times, seconds or forever")
    FAULT.clear()
    FAULT.update(fault)
    return dict(FAULT)


def take_fault(method: str, path: str) -> dict | None:
    """The fault for this request, if any (counting it down)."""
    if not FAULT or method not in FAULT["methods"] or not re.fullmatch(FAULT["path"], path):
        return None
    if FAULT["forever"]:
        return dict(FAULT)
    if FAULT["until"] is not None and time.monotonic() < FAULT["until"]:
        return dict(FAULT)
    if FAULT["left"]:
        FAULT["left"] -= 1
        return dict(FAULT)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]], head: bool = False, length: str | None = None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", length if head and length is not None else str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _handle(self):
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path.startswith("/__flaky/"):
            return self._control(path, body)
        with LOCK:
            fault = take_fault(self.command, path)
            if fault is not None:
                STATS["faulted"] += 1
                if not fault["after"]:
                    STATS["log"].append([self.command, path, "reset" if fault["mode"] == "reset" else fault["status"]])
        if fault is not None and not fault["after"]:
            return self._fail(fault)
        host, _, port = UPSTREAM.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            # Header by header: a client sends Accept several times, and the
            # registry picks the manifest type from all of them.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            with LOCK:
                STATS["forwarded"] += 1
                if fault is not None:
                    STATS["lost"] += 1
                    STATS["log"].append([self.command, path, f"lost:{'reset' if fault['mode'] == 'reset' else fault['status']}", resp.status])
                else:
                    STATS["log"].append([self.command, path, resp.status])
            if fault is not None:
                # The registry applied the request; its answer is lost.
                return self._fail(fault)
            self._send(resp.status, data, out_headers, head=self.command == "HEAD", length=resp.getheader("Content-Length"))
        finally:
            conn.close()

    def _fail(self, fault: dict):
        if fault["mode"] == "reset":
            # SO_LINGER 0: close with RST, as a dying load balancer does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        code = "TOOMANYREQUESTS" if fault["status"] == 429 else "UNAVAILABLE"
        data = json.dumps({"errors": [{"code": code, "message": "sandbox: the registry is unavailable", "detail": None}]}).encode()
        return self._send(fault["status"], data, [("Content-Type", "application/json"), ("Docker-Distribution-API-Version", "registry/2.0")])

    def _control(self, path: str, raw: bytes):
        with LOCK:
            try:
                if path == "/__flaky/config":
                    payload, status = configure(json.loads(raw or b"{}")), 200
                elif path == "/__flaky/state":
                    payload, status = {"faulted": STATS["faulted"], "forwarded": STATS["forwarded"], "lost": STATS["lost"],
                                       "log": list(STATS["log"])}, 200
                else:
                    payload, status = {"error": "unknown control path"}, 404
            except Exception as e:  # noqa: BLE001 - report anything to the test that asked
                payload, status = {"error": repr(e)}, 400
        self._send(status, json.dumps(payload).encode(), [("Content-Type", "application/json")])

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main():
    global UPSTREAM
    port, UPSTREAM = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"ready {port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
