"""Faults on chosen AWS actions, as AWS returns them, before or after the request takes effect.

AWS throttles and fails requests now and then; fastdeploy must retry with
back-off and reach the same verdict. This extension answers chosen actions
with a fault the next N times they are called. It is loaded after every other
extension (moto_server.py), so it sees every request first, whichever
extension serves it.

Actions are named as in the API reference, for any service and protocol:
- awsJson (ECS, ECR, CodeBuild, CloudWatch Logs, ...): the part of
  X-Amz-Target after the dot;
- query (Elastic Beanstalk, IAM, STS, ...) and ec2: the Action parameter, in
  the query string or the form-encoded body;
- rest-json and rest-xml (Lambda, S3, ...): the operation whose HTTP method
  and requestUri (botocore's service model, as moto itself routes them) match
  the request; the service is the one in the request's SigV4 credential scope
  (`Credential=<key>/<date>/<region>/<service>/aws4_request`).

Two moments (a rule's "mode"):

- "before" (default): the fault answers before moto sees the request, so the
  request has no effect (a failed RegisterTaskDefinition registers nothing).
  Kinds:
  - "throttle": the protocol's throttling error: awsJson HTTP 400
    `{"__type": "ThrottlingException", "message": "Rate exceeded"}` (the SDKs
    retry it as a throttling error); query 400 `Throttling` (Elastic
    Beanstalk's "Rate exceeded"); ec2 503 `RequestLimitExceeded`; rest-json
    429 `TooManyRequestsException` (Lambda's, whose body also names the
    throttle: `{"Reason": "CallerRateLimitExceeded", "Type": "User",
    "message": "Rate exceeded"}`, with a `Retry-After: 1` header: the fields
    of the API reference's TooManyRequestsException; the header's value is a
    guess); rest-xml 503 `SlowDown` (S3's).
    A rule's "times" counts every call, the SDK's retries included, so a
    test can throttle a stretch of looks longer than the SDK's retries.
  - "5xx": HTTP 500 (or the rule's `status`) with, for awsJson,
    `{"__type": "ServerException"}` (ECS's and ECR's server-side error; the
    SDKs retry 500, 502, 503, 504); InternalFailure (query, rest-json) or
    InternalError (ec2, rest-xml) otherwise.
  - "drop": the connection is closed without an answer; nothing is applied.
- "lost-answer" (or `"after": true`): the request reaches moto and is applied
  (RegisterTaskDefinition registers a revision, UpdateService starts a
  deployment, RunTask starts tasks, CreateRepository creates it, StartBuild
  starts a build, UpdateFunctionCode/PublishVersion/UpdateAlias change the
  function, CreateApplicationVersion/UpdateEnvironment happen); only then is
  the answer lost. Kinds:
  - "5xx" (default): moto's answer is thrown away and the client gets HTTP
    500 (or `status`) `InternalFailure` (the common error "The request
    processing has failed because of an unknown error, exception or
    failure"), shaped as the protocol shapes errors: awsJson
    `{"__type": "InternalFailure", "message": ...}` with the request's
    x-amz-json content type; rest-json an `x-amzn-ErrorType: InternalFailure`
    header and `{"message": ...}`; query
    `<ErrorResponse xmlns=<service namespace>><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>`;
    ec2 `<Response><Errors><Error><Code>InternalError</Code>..`; rest-xml
    `<Error><Code>InternalError</Code>..`.
  - "drop": moto's answer is thrown away and the connection closed without
    an answer (the client sees the connection end before a response).
  Every rule may set `code` and `message` to use another error code.

Control endpoint (POST JSON):
- /_sandbox/faults/config {"rules": [{"action": "UpdateService", "kind":
  "throttle", "times": 2}, {"action": "DescribeServices", "kind": "5xx",
  "status": 503, "times": 1}, {"action": "RegisterTaskDefinition", "mode":
  "lost-answer", "times": 1}, {"action": "UpdateFunctionCode", "after": true,
  "kind": "drop"}]} adds rules (first match wins; "service" may narrow a rule
  to an X-Amz-Target prefix such as "AmazonEC2ContainerServiceV20141113" or to
  a credential-scope service such as "lambda" or "elasticbeanstalk"; "skip"
  lets that many matching calls through before the rule fires, so a fault
  can start mid-deploy);
  {"reset": true} clears rules and counts first. Returns the state.
- /_sandbox/faults/state {} returns {"rules": [...with "left" and "fired"...],
  "injected": {action: n} (faults of either mode), "lost": {action: n} (answers
  lost after moto applied the request, i.e. answered it with a success: how
  many times the write happened unanswered), "calls": {action: n} (every call seen, faulted or not, so a
  test can tell that a faulted call was retried), "log": [{"action",
  "service", "mode", "kind", "answered" (status or "dropped"), "applied"
  (moto's own status for a lost answer, else null)}]}.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.moto_server import werkzeug_app
from sandbox_control import handle_control

PREFIX = "/_sandbox/faults/"
LOCK = threading.Lock()
RULES: list[dict[str, Any]] = []
INJECTED: dict[str, int] = {}
LOST: dict[str, int] = {}
CALLS: dict[str, int] = {}
LOG: list[dict[str, Any]] = []

KINDS = {"before": ("throttle", "5xx", "drop"), "lost-answer": ("5xx", "drop")}
REASONS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}

_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _state() -> dict[str, Any]:
    return {"rules": [dict(r) for r in RULES], "injected": dict(INJECTED), "lost": dict(LOST), "calls": dict(CALLS),
            "log": [dict(e) for e in LOG]}


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            if body.get("reset"):
                RULES.clear()
                INJECTED.clear()
                LOST.clear()
                CALLS.clear()
                LOG.clear()
            for rule in body.get("rules", []):
                mode = rule.get("mode") or ("lost-answer" if rule.get("after") else "before")
                if mode not in KINDS:
                    raise ValueError(f"unknown fault mode {mode!r}: use before or lost-answer")
                kind = rule.get("kind", "throttle" if mode == "before" else "5xx")
                if kind not in KINDS[mode]:
                    raise ValueError(f"fault kind {kind!r} does not fit mode {mode}: use {' or '.join(KINDS[mode])}")
                RULES.append(
                    {
                        "action": rule["action"],
                        "service": rule.get("service", ""),
                        "mode": mode,
                        "kind": kind,
                        "status": int(rule["status"]) if "status" in rule else None,
                        "code": rule.get("code"),
                        "message": rule.get("message"),
                        "left": int(rule.get("times", 1)),
                        "skip": int(rule.get("skip", 0)),
                        "fired": 0,
                    }
                )
            return _state()
        if command == "state":
            return _state()
        raise KeyError(command)


# ---------------------------------------------------------------------------
# Which action, of which service, in which protocol.

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
_SESSION: list[Any] = []


def _uri_regex(path: str) -> tuple[re.Pattern[str], int]:
    out, pos, literal = "", 0, 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        out += re.escape(path[pos:m.start()])
        literal += m.start() - pos
        out += ".+" if m.group(1).endswith("+") else "[^/]+"
        pos = m.end()
    out += re.escape(path[pos:])
    literal += len(path) - pos
    return re.compile(f"^{out}$"), literal


def _model(service: str) -> dict[str, Any] | None:
    """Protocol, XML namespace and HTTP routes of a botocore service model, cached."""
    with _MODELS_LOCK:
        if service in _MODELS:
            return _MODELS[service]
        info = None
        try:
            if not _SESSION:
                import botocore.session

                _SESSION.append(botocore.session.get_session())
            model = _SESSION[0].get_service_model(service)
            routes = []
            for name in model.operation_names:
                http = model.operation_model(name).http
                path, _, query = http.get("requestUri", "/").partition("?")
                regex, literal = _uri_regex(path)
                required = {k: (v[0] if v else None) for k, v in parse_qs(query, keep_blank_values=True).items()}
                routes.append((http.get("method", "POST"), regex, required, literal + 100 * len(required), name))
            routes.sort(key=lambda r: -r[3])
            info = {"protocol": model.metadata.get("protocol"), "xmlns": model.metadata.get("xmlNamespace"), "routes": routes}
        except Exception:  # noqa: BLE001 - an unknown service simply has no model
            info = None
        _MODELS[service] = info
        return info


def _scope_service(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if not m:
        m = re.search(r"X-Amz-Credential=[^&]*?%2F\d{8}%2F[^%]+%2F([^%]+)%2Faws4_request", environ.get("QUERY_STRING", ""))
    return m.group(1) if m else ""


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for whoever reads it next."""
    if "sandbox.faults.body" in environ:
        return environ["sandbox.faults.body"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["sandbox.faults.body"] = raw
    return raw


def _identify(environ: dict[str, Any]) -> tuple[str, str, str, str | None] | None:
    """(action, service, protocol, xml namespace) of an AWS request, or None."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, action = target.partition(".")
        return action, prefix, "json", None
    service = _scope_service(environ)
    if not service:
        return None
    info = _model(service)
    protocol = info["protocol"] if info else "query"
    xmlns = info["xmlns"] if info else None
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if protocol in ("query", "ec2") or "Action" in query:
        action = (query.get("Action") or [""])[0]
        ctype = environ.get("CONTENT_TYPE", "")
        if not action and ctype.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(_read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
            action = (form.get("Action") or [""])[0]
        return (action, service, protocol if protocol in ("query", "ec2") else "query", xmlns) if action else None
    if info is None or protocol not in ("rest-json", "rest-xml"):
        return None
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    for want_method, regex, required, _, name in info["routes"]:
        if want_method != method or not regex.match(path):
            continue
        if all(k in query and (v in (None, "") or query[k][0] == v) for k, v in required.items()):
            return name, service, protocol, xmlns
    return None


def _take(action: str, service: str) -> dict[str, Any] | None:
    with LOCK:
        CALLS[action] = CALLS.get(action, 0) + 1
        for rule in RULES:
            if rule["left"] > 0 and rule["action"] == action and (not rule["service"] or service.startswith(rule["service"])):
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    return None
                rule["left"] -= 1
                rule["fired"] += 1
                INJECTED[action] = INJECTED.get(action, 0) + 1
                return dict(rule)
    return None


# ---------------------------------------------------------------------------
# Answers.


def _error(start_response: Any, environ: dict[str, Any], protocol: str, xmlns: str | None, status: int, code: str,
           message: str) -> list[bytes]:
    rid = str(uuid.uuid4())
    line = f"{status} {REASONS.get(status, 'Server Error')}"
    if protocol == "json":
        ctype = environ.get("CONTENT_TYPE", "")
        if not ctype.startswith("application/x-amz-json"):
            ctype = "application/x-amz-json-1.1"
        data = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", ctype), ("x-amzn-RequestId", rid)]
    elif protocol == "rest-json":
        body = {"message": message}
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", rid)]
        if code == "TooManyRequestsException":
            body.update({"Reason": "CallerRateLimitExceeded", "Type": "User"})
            headers.append(("Retry-After", "1"))
        data = json.dumps(body).encode()
    elif protocol == "ec2":
        data = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>").encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif protocol == "rest-xml":
        data = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                f"<RequestId>{rid}</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", rid)]
    else:  # query
        ns = f' xmlns="{escape(xmlns)}"' if xmlns else ""
        kind = "Receiver" if status >= 500 else "Sender"
        data = (f"<ErrorResponse{ns}>\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{escape(code)}</Code>\n"
                f"    <Message>{escape(message)}</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)]
    start_response(line, headers + [("Content-Length", str(len(data)))])
    return [data]


def _fault_answer(rule: dict[str, Any], protocol: str) -> tuple[int, str, str]:
    """(status, code, message) a rule answers with."""
    if rule["kind"] == "throttle":
        status, code = {"json": (400, "ThrottlingException"), "query": (400, "Throttling"), "ec2": (503, "RequestLimitExceeded"),
                        "rest-json": (429, "TooManyRequestsException"), "rest-xml": (503, "SlowDown")}[protocol]
        message = "Rate exceeded"
    elif rule["mode"] == "before":
        status = 500
        code = {"json": "ServerException", "ec2": "InternalError", "rest-xml": "InternalError"}.get(protocol, "InternalFailure")
        message = "Service encountered an internal error (sandbox fault)"
    else:
        status = 500
        code = {"ec2": "InternalError", "rest-xml": "InternalError"}.get(protocol, "InternalFailure")
        message = "The request processing has failed because of an unknown error, exception or failure. (sandbox: lost answer)"
    return rule["status"] or status, rule["code"] or code, rule["message"] or message


def _drop(environ: dict[str, Any]) -> None:
    """Close the connection without an answer. Shutting the socket down (not
    closing it) lets werkzeug's handler see the end of the connection and
    leave quietly; the ConnectionAbortedError is how a WSGI app tells werkzeug
    the connection is gone (it is caught as a dropped connection)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("sandbox fault: connection dropped without an answer")


def _log(rule: dict[str, Any], action: str, service: str, answered: Any, applied: int | None) -> None:
    with LOCK:
        LOG.append({"action": action, "service": service, "mode": rule["mode"], "kind": rule["kind"], "answered": answered,
                    "applied": applied})
        del LOG[:-500]


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    if environ.get("PATH_INFO", "").startswith("/_sandbox/"):
        return _orig_call(self, environ, start_response)
    try:
        found = _identify(environ)
    except Exception:  # noqa: BLE001 - never let the fault layer break a request
        found = None
    if found is None:
        return _orig_call(self, environ, start_response)
    action, service, protocol, xmlns = found
    rule = _take(action, service)
    if rule is None:
        return _orig_call(self, environ, start_response)
    if rule["mode"] == "before":
        # Drain the body so a kept-alive connection stays in step; the
        # request itself never reaches moto.
        _read_body(environ)
        if rule["kind"] == "drop":
            _log(rule, action, service, "dropped", None)
            _drop(environ)
        status, code, message = _fault_answer(rule, protocol)
        _log(rule, action, service, status, None)
        return _error(start_response, environ, protocol, xmlns, status, code, message)
    # Lost answer: moto applies the request; its answer never leaves.
    seen: dict[str, Any] = {}

    def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["status"] = status
        return lambda data: None

    result = _orig_call(self, environ, capture)
    try:
        for _ in result:
            pass
    finally:
        if hasattr(result, "close"):
            result.close()
    applied = int(str(seen.get("status", "0")).split(" ", 1)[0] or 0)
    if 0 < applied < 400:
        with LOCK:
            LOST[action] = LOST.get(action, 0) + 1
    if rule["kind"] == "drop":
        _log(rule, action, service, "dropped", applied)
        _drop(environ)
    status, code, message = _fault_answer(rule, protocol)
    _log(rule, action, service, status, applied)
    return _error(start_response, environ, protocol, xmlns, status, code, message)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
