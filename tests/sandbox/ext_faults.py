"""Faults on chosen AWS JSON-protocol actions, as AWS returns them.

AWS throttles and fails requests now and then; fastdeploy must retry with
back-off and reach the same verdict. This extension answers chosen actions
(ECS, ECR, or any awsJson service, named by their X-Amz-Target) with a fault
the next N times they are called, before moto sees the request, so the
request has no effect (a failed RegisterTaskDefinition registers nothing):

- "throttle": HTTP 400 with `{"__type": "ThrottlingException", "message":
  "Rate exceeded"}`, which is how the awsJson protocols report throttling
  (the SDKs retry it as a throttling error).
- "5xx": HTTP 500 (or the rule's `status`) with `{"__type": "ServerException"}`,
  ECS's and ECR's server-side error (the SDKs retry 500, 502, 503, 504).

Control endpoint (POST JSON):
- /_sandbox/faults/config {"rules": [{"action": "UpdateService", "kind":
  "throttle", "times": 2}, {"action": "DescribeServices", "kind": "5xx",
  "status": 503, "times": 1}]} adds rules (an action is matched against the
  part of X-Amz-Target after the dot; "service" may narrow it to a target
  prefix such as "AmazonEC2ContainerServiceV20141113"); {"reset": true}
  clears rules and counts first. Returns the state.
- /_sandbox/faults/state {} returns {"rules": [...with "left"...],
  "injected": {action: n}, "calls": {action: n}}: every awsJson call seen,
  faulted or not, so a test can tell that a faulted call was retried.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server import werkzeug_app
from sandbox_control import handle_control, json_response

PREFIX = "/_sandbox/faults/"
LOCK = threading.Lock()
RULES: list[dict[str, Any]] = []
INJECTED: dict[str, int] = {}
CALLS: dict[str, int] = {}

_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _state() -> dict[str, Any]:
    return {"rules": [dict(r) for r in RULES], "injected": dict(INJECTED), "calls": dict(CALLS)}


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            if body.get("reset"):
                RULES.clear()
                INJECTED.clear()
                CALLS.clear()
            for rule in body.get("rules", []):
                kind = rule.get("kind", "throttle")
                if kind not in ("throttle", "5xx"):
                    raise ValueError(f"unknown fault kind {kind!r}: use throttle or 5xx")
                RULES.append(
                    {
                        "action": rule["action"],
                        "service": rule.get("service", ""),
                        "kind": kind,
                        "status": int(rule.get("status", 500)),
                        "left": int(rule.get("times", 1)),
                    }
                )
            return _state()
        if command == "state":
            return _state()
        raise KeyError(command)


def _fault(target: str) -> dict[str, Any] | None:
    service, _, action = target.partition(".")
    with LOCK:
        CALLS[action] = CALLS.get(action, 0) + 1
        for rule in RULES:
            if rule["left"] > 0 and rule["action"] == action and service.startswith(rule["service"]):
                rule["left"] -= 1
                INJECTED[action] = INJECTED.get(action, 0) + 1
                return dict(rule)
    return None


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        rule = _fault(target)
        if rule is not None:
            # Drain the body so a kept-alive connection stays in step; the
            # request itself never reaches moto.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)
            if rule["kind"] == "throttle":
                return json_response(
                    start_response,
                    "400 Bad Request",
                    {"__type": "ThrottlingException", "message": "Rate exceeded"},
                    "application/x-amz-json-1.1",
                )
            reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
            return json_response(
                start_response,
                f"{rule['status']} {reason.get(rule['status'], 'Server Error')}",
                {"__type": "ServerException", "message": "Service encountered an internal error (sandbox fault)"},
                "application/x-amz-json-1.1",
            )
    return _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
