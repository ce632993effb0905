"""A recording HTTP receiver standing in for Slack or the GitHub API.

Records every request (method, path, query, headers, JSON or text body) and
answers from a script of responses, so tests can see exactly what fastdeploy
sent and make the service fail, throttle or recover.

Control endpoints (never used by fastdeploy itself):
  GET  /__requests        -> JSON list of recorded requests
  POST /__script          -> body: [{"match": "POST /api/chat.postMessage",
                                     "status": 503, "headers": {}, "body": {...},
                                     "times": 2}]  queued responses, first match wins
  POST /__default         -> body: {"match": "...", "status": 200, "body": {...}}
                             a response used whenever no scripted one matches
  POST /__reset           -> clears requests, scripts and fault counts
  GET  /__faults          -> {"lost": n, "dropped": n, "log": [{"method", "path",
                             "answered": status | "dropped", "applied": status}]}:
                             how often a write was applied and its answer lost

A rule with "host" matches only requests for that host (the Host header, or
the URL in the request line when the receiver stands in as an HTTP proxy:
`HTTP_PROXY` pointing at it, so a test can answer for any hostname, such as
an Elastic Beanstalk environment's CNAME); each request records its "host".

A scripted rule answers instead of the service: the request is recorded but
not applied (GitHub creates no deployment). `"drop": true` closes the
connection without an answer instead.

A scripted rule with `"after": true` (or `"mode": "lost-answer"`) loses the
answer of a write that happened: the request is recorded and applied first
(with `--github`, POST /repos/<o>/<r>/deployments creates the deployment and
POST .../deployments/<id>/statuses the status; a Slack webhook or
chat.postMessage is recorded, i.e. posted), then the answer is replaced by the
rule's `status` (500 by default) and `body` (by default GitHub's
`{"message": "Server Error"}` with `--github`, else Slack's
`{"ok": false, "error": "fatal_error"}`), or, with `"drop": true`, the
connection is closed without an answer. Such requests are recorded with
`"lost": true` and counted in /__faults (when the service applied them, i.e.
would have answered below 400), so a test can assert that a write happened
exactly once.

GitHub's OIDC token endpoint (what ACTIONS_ID_TOKEN_REQUEST_URL names inside
a job with `id-token: write`): GET .../_apis/<anything>/idtoken?api-version=2.0&audience=<aud>
with `Authorization: bearer <request token>` answers, as the Actions runtime
does, `{"count": 1, "value": "<JWT>"}`, a JWT (unsigned here) whose `aud` is
the audience asked for, `sub` `repo:acme/shop:ref:refs/heads/main` and
`iss` `https://token.actions.githubusercontent.com`; a missing or wrong bearer
token is 401. The request token it expects is set with
  POST /__oidc            -> body: {"request_token": "..."} (default "oidc-request-token")
Each request is recorded like any other.

Without a script or default, it answers 200 with `{"ok": true}`; started with
`--github`, it first emulates the GitHub REST API's deployments and comments
(github_api.py), keeping state across runs.
Templates in bodies: "{{n}}" becomes a counter, "{{path}}" the request path.

Usage: python3 receiver.py PORT
"""

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
REQUESTS: list = []
SCRIPT: list = []
DEFAULTS: list = []
COUNTER = [0]
OIDC = {"request_token": "oidc-request-token", "issued": 0}
FAULTS: dict = {"lost": 0, "dropped": 0, "log": []}
GITHUB = "--github" in sys.argv
if GITHUB:
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import github_api  # noqa: E402


def matches(rule: dict, method: str, path: str, host: str = "") -> bool:
    if rule.get("host") not in (None, host):
        return False
    m = rule.get("match", "")
    if not m:
        return True
    want_method, _, want_path = m.partition(" ")
    if want_method not in ("*", method):
        return False
    return re.fullmatch(want_path, path) is not None if want_path else True


def oidc_token(authorization: str, query: dict) -> dict:
    """The Actions runtime's answer to an ID token request (caller holds LOCK)."""
    import base64
    import time

    if authorization.split(" ", 1) != ["bearer", OIDC["request_token"]] and authorization != f"Bearer {OIDC['request_token']}":
        return {"status": 401, "body": {"message": "Unauthorized: bad or missing ACTIONS_ID_TOKEN_REQUEST_TOKEN"}}
    audience = (query.get("audience") or [None])[0]
    OIDC["issued"] += 1
    now = int(time.time())
    claims = {"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/shop:ref:refs/heads/main",
              "aud": audience or "https://github.com/acme", "iat": now, "nbf": now, "exp": now + 300,
              "jti": f"sandbox-{OIDC['issued']}", "repository": "acme/shop"}
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return {"status": 200, "body": {"count": 1, "value": f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.sandbox-signature"}}


def render(value, path):
    if isinstance(value, str):
        COUNTER[0] += 1 if "{{n}}" in value else 0
        v = value.replace("{{n}}", str(COUNTER[0])).replace("{{path}}", path)
        return int(v) if value == "{{n}}" else v
    if isinstance(value, list):
        return [render(v, path) for v in value]
    if isinstance(value, dict):
        return {k: render(v, path) for k, v in value.items()}
    return value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, status: int, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        if path.startswith("/__"):
            return self._control(path, raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"form": {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}} if raw else None
            if body and not body["form"]:
                body = {"text": raw.decode(errors="replace")}
        with LOCK:
            # As a proxy, the request line holds the whole URL
            # (`GET http://shop.example.com/health`): its host is recorded.
            host = split.netloc or self.headers.get("Host", "")
            record = {
                "method": self.command,
                "host": host,
                "path": path,
                "query": split.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            REQUESTS.append(record)
            rule = None
            for r in SCRIPT:
                if matches(r, self.command, path, host):
                    rule = r
                    r["times"] = r.get("times", 1) - 1
                    if r["times"] <= 0:
                        SCRIPT.remove(r)
                    break
            lost = rule if rule is not None and (rule.get("after") or rule.get("mode") == "lost-answer") else None
            if lost is not None:
                rule = None
            if rule is None:
                rule = next((d for d in DEFAULTS if matches(d, self.command, path, host)), None)
            if rule is None and re.fullmatch(r"/_apis/.*/idtoken", path):
                rule = oidc_token(self.headers.get("Authorization", ""), parse_qs(split.query))
            if rule is None and GITHUB:
                answer = github_api.handle(self.command, path, {k: v[0] for k, v in parse_qs(split.query).items()}, body)
                if answer is not None:
                    rule = {"status": answer[0], "body": answer[1]}
            if rule is None:
                rule = {"status": 200, "body": {"ok": True}}
            body_out = render(rule.get("body", {"ok": True}), path)
            if lost is not None:
                # The write happened (above); its answer is lost.
                applied = rule.get("status", 200)
                default = {"message": "Server Error"} if GITHUB else {"ok": False, "error": "fatal_error"}
                rule = {"status": lost.get("status", 500), "body": lost.get("body", default), "headers": lost.get("headers"),
                        "drop": lost.get("drop", False)}
                body_out = render(rule["body"], path)
                if int(applied) < 400:
                    record["lost"] = True
                    FAULTS["lost"] += 1
                FAULTS["log"].append({"method": self.command, "path": path, "answered": "dropped" if rule["drop"] else rule["status"],
                                      "applied": applied})
            if rule.get("drop"):
                FAULTS["dropped"] += 1
        if rule.get("drop"):
            # Close without answering: the client sees the connection end
            # before any response.
            self.close_connection = True
            return
        self._reply(rule.get("status", 200), body_out, rule.get("headers"))

    def _control(self, path, raw):
        with LOCK:
            if path == "/__requests":
                return self._reply(200, REQUESTS)
            if path == "/__script":
                SCRIPT.extend(json.loads(raw))
                return self._reply(200, {"ok": True})
            if path == "/__default":
                rules = json.loads(raw)
                DEFAULTS[:0] = rules if isinstance(rules, list) else [rules]
                return self._reply(200, {"ok": True})
            if path == "/__reset":
                REQUESTS.clear()
                SCRIPT.clear()
                DEFAULTS.clear()
                FAULTS.update({"lost": 0, "dropped": 0, "log": []})
                return self._reply(200, {"ok": True})
            if path == "/__oidc":
                OIDC.update(json.loads(raw or b"{}"))
                return self._reply(200, {"ok": True, "issued": OIDC["issued"]})
            if path == "/__faults":
                return self._reply(200, {"lost": FAULTS["lost"], "dropped": FAULTS["dropped"], "log": list(FAULTS["log"])})
        return self._reply(404, {"error": "unknown control path"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"ready {port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
