"""CloudWatch over Smithy RPC v2 CBOR, alarms in the states AWS gives them, and CloudWatch requests recorded.

aws-sdk-cloudwatch speaks `smithy-rpc-v2-cbor` to CloudWatch: `POST
/service/GraniteServiceVersion20100801/operation/<Op>` with `smithy-protocol:
rpc-v2-cbor` and a CBOR body (botocore 1.43 can, but ranks awsJson first;
awsJson requests reach moto untouched). moto 5.2.1 reads no CBOR but
answers CloudWatch in awsJson 1.0, so this extension translates: the CBOR
input becomes the awsJson document (timestamps, CBOR tag 1, become epoch
seconds; byte strings base64), moto answers it, and the answer goes back as
CBOR shaped by the operation's output in botocore's model: timestamps as tag 1
over a float64 of epoch seconds (moto gives epoch seconds with milliseconds;
aws-smithy-cbor reads a tag-1 timestamp and a double only as a CBOR float, so
both are always floats), integers as integers, blobs as byte strings.
Responses carry `smithy-protocol: rpc-v2-cbor`, `Content-Type:
application/cbor` and moto's `x-amzn-RequestId`; an operation without output
(SetAlarmState, PutMetricAlarm, ...) answers 200 with an empty body, as the
protocol says.

Errors keep moto's HTTP status; the body is `{"__type":
"com.amazonaws.cloudwatch#<error shape>", "message": ...}` (`Message` where the
shape names it so) and, CloudWatch being awsQueryCompatible, the header
`x-amzn-query-error: <query code>;Sender` (Receiver for 5xx), from which the
SDKs take the error code (SetAlarmState on a missing alarm: 404,
`#ResourceNotFound`, `ResourceNotFound;Sender`). GUESS: for an error that is
not in the model (moto's ValidationError) the shape name is the code itself.

moto's alarms are made to follow the PutMetricAlarm reference: a new alarm is
INSUFFICIENT_DATA ("When this operation creates an alarm, the alarm state is
immediately set to INSUFFICIENT_DATA"), and putting an existing alarm again
leaves its state as it was ("its state is left unchanged"); moto started every
put at OK. StateUpdatedTimestamp moves on every state update (moto's own
update_state; GUESS: also when SetAlarmState repeats the state it has);
StateTransitionedTimestamp, which moto lacked, moves only when StateValue
changes. GUESS: StateTransitionedTimestamp of a new alarm is its creation time.
PutCompositeAlarm, which moto lacks, stores a composite alarm (its rule is
kept, never evaluated: set-state moves it) that DescribeAlarms lists under
CompositeAlarms. A request moto fails on (an operation it lacks) is a 500
`InternalFailure` in CBOR rather than werkzeug's HTML page.

ext_faults, loaded after this one, sees the CBOR request first and does not
recognise it (no X-Amz-Target, no Action): its rules do not fire for
CloudWatch.

Control endpoint (POST JSON):
- /_sandbox/cloudwatch/requests {} returns the CloudWatch requests received
  over CBOR, in order, as {"operation", "body"} (body as awsJson).
- /_sandbox/cloudwatch/set-state {"name", "state", "reason", "reason_data"?,
  "region"? ("us-east-1"), "account"? ("123456789012")} sets an alarm's state
  as the alarm's own evaluation would (StateUpdatedTimestamp now), checked as
  SetAlarmState checks it (an unknown alarm is a 400 naming ResourceNotFound);
  returns {"name", "state", "reason", "updated" (epoch seconds)}.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import threading
from typing import Any

import cbor2
from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.core.responses import EmptyResult
from moto.moto_server import werkzeug_app
from sandbox_control import handle_control

PREFIX = "/_sandbox/cloudwatch/"
SERVICE = "GraniteServiceVersion20100801"
PATH = f"/service/{SERVICE}/operation/"
NAMESPACE = "com.amazonaws.cloudwatch"
LOCK = threading.Lock()
REQUESTS: list[dict[str, Any]] = []
_MODEL: list[Any] = []


def _model() -> Any:
    with LOCK:
        if not _MODEL:
            import botocore.session

            _MODEL.append(botocore.session.get_session().get_service_model("cloudwatch"))
        return _MODEL[0]


# --- moto's alarms, as the PutMetricAlarm reference has them --------------

_orig_put = cw_models.CloudWatchBackend.put_metric_alarm
_orig_update = cw_models.Alarm.update_state


def _put_metric_alarm(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    old = self.alarms.get(name)
    alarm = _orig_put(self, name, *args, **kwargs)
    if old is not None:
        for attr in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
            setattr(alarm, attr, getattr(old, attr))
        alarm.state_transitioned_timestamp = getattr(old, "state_transitioned_timestamp", old.state_updated_timestamp)
    else:
        alarm.state_value = "INSUFFICIENT_DATA"
        alarm.state_transitioned_timestamp = alarm.state_updated_timestamp
    return alarm


def _update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
    changed = state_value != self.state_value
    _orig_update(self, reason, reason_data, state_value)
    if changed:
        self.state_transitioned_timestamp = self.state_updated_timestamp


def _put_composite_alarm(self: Any) -> Any:
    """PutCompositeAlarm, which moto 5.2.1 lacks: its backend keeps composite
    alarms as alarms with a rule, and DescribeAlarms lists them apart."""
    alarm = self.cloudwatch_backend.put_metric_alarm(
        name=self._get_param("AlarmName"), namespace=None, metric_name=None, comparison_operator=None,
        evaluation_periods=None, period=None, threshold=None, statistic=None,
        description=self._get_param("AlarmDescription"), dimensions=[], alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions"), insufficient_data_actions=self._get_param("InsufficientDataActions"),
        actions_enabled=self._get_param("ActionsEnabled"), rule=self._get_param("AlarmRule"), tags=self._get_param("Tags", []))
    alarm.alarm_rule = alarm.rule
    return EmptyResult()


cw_models.CloudWatchBackend.put_metric_alarm = _put_metric_alarm
cw_models.Alarm.update_state = _update_state
cw_responses.CloudWatchResponse.put_composite_alarm = _put_composite_alarm


# --- CBOR <-> awsJson ------------------------------------------------------

def _to_json(value: Any) -> Any:
    """A decoded CBOR input as the awsJson document moto reads."""
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items() if v is not None and v is not cbor2.undefined}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _to_cbor(shape: Any, value: Any) -> Any:
    """moto's awsJson answer as rpcv2Cbor encodes `shape` (None: as it is)."""
    kind = shape.type_name if shape is not None else None
    if isinstance(value, dict):
        if kind == "structure":
            return {k: _to_cbor(shape.members.get(k), v) for k, v in value.items() if v is not None}
        inner = shape.value if kind == "map" else None
        return {k: _to_cbor(inner, v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_to_cbor(shape.member if kind == "list" else None, v) for v in value]
    if value is None or kind is None:
        return value
    if kind == "timestamp":
        return cbor2.CBORTag(1, _epoch(value))
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else value
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    return value


def _error(operation: str, status: int, headers: dict[str, str], raw: bytes) -> tuple[dict[str, Any], str]:
    """(CBOR error body, x-amzn-query-error) for moto's awsJson error."""
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    fallback = "InternalFailure" if status >= 500 else "ValidationError"
    code = str(doc.get("__type") or headers.get("x-amzn-errortype") or fallback).split(":", 1)[0].rsplit("#", 1)[-1]
    query = headers.get("x-amzn-query-error") or f"{code};{'Receiver' if status >= 500 else 'Sender'}"
    query_code = query.split(";", 1)[0]
    model = _model()
    op_errors = model.operation_model(operation).error_shapes if operation in model.operation_names else []
    named = [s for s in model.error_shapes if s.name == query_code]
    shape = next((s for s in op_errors + named + model.error_shapes
                  if s.metadata.get("error", {}).get("code", s.name) == query_code), None)
    body = _to_cbor(shape, {k: v for k, v in doc.items() if k not in ("__type", "message", "Message")})
    body["__type"] = f"{NAMESPACE}#{shape.name if shape is not None else code}"
    message = doc.get("message") or doc.get("Message")
    if message is not None:
        body["Message" if shape is not None and "Message" in shape.members else "message"] = message
    return body, query


# --- the dispatcher ----------------------------------------------------------

def _control(command: str, body: dict[str, Any]) -> Any:
    if command == "requests":
        with LOCK:
            return list(REQUESTS)
    if command == "set-state":
        backend = cw_models.cloudwatch_backends[body.get("account", "123456789012")][body.get("region", "us-east-1")]
        backend.set_alarm_state(body["name"], body["reason"], body.get("reason_data", "{}"), body["state"])
        alarm = backend.alarms[body["name"]]
        updated = alarm.state_updated_timestamp.replace(tzinfo=datetime.timezone.utc).timestamp()
        return {"name": alarm.name, "state": alarm.state_value, "reason": alarm.state_reason, "updated": updated}
    raise KeyError(command)


_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    path = environ.get("PATH_INFO", "")
    if not path.startswith(PATH):
        return _orig_call(self, environ, start_response)
    operation = path[len(PATH):].strip("/")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    body = _to_json(cbor2.loads(raw)) if raw else {}
    with LOCK:
        REQUESTS.append({"operation": operation, "body": body})
    data = json.dumps(body).encode()
    environ.update({"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-amz-json-1.0",
                    "HTTP_X_AMZ_TARGET": f"{SERVICE}.{operation}", "wsgi.input": io.BytesIO(data),
                    "CONTENT_LENGTH": str(len(data))})
    seen: dict[str, Any] = {}

    def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, headers
        return lambda chunk: None

    try:
        result = _orig_call(self, environ, capture)
        try:
            answer = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    except Exception as e:  # noqa: BLE001 - moto's own failure, answered as the protocol answers errors
        seen["status"], seen["headers"] = "500 Internal Server Error", []
        answer = json.dumps({"__type": "InternalFailure", "message": f"sandbox: moto failed: {e!r}"}).encode()
    status = int(seen["status"].split(" ", 1)[0])
    moto_headers = {k.lower(): v for k, v in seen["headers"]}
    headers = [("smithy-protocol", "rpc-v2-cbor")]
    if "x-amzn-requestid" in moto_headers:
        headers.append(("x-amzn-RequestId", moto_headers["x-amzn-requestid"]))
    if status >= 300:
        payload, query = _error(operation, status, moto_headers, answer)
        headers.append(("x-amzn-query-error", query))
    else:
        model = _model()
        output = model.operation_model(operation).output_shape if operation in model.operation_names else None
        payload = _to_cbor(output, json.loads(answer or b"{}")) if output is not None else None
    out = b"" if payload is None else cbor2.dumps(payload)
    if out:
        headers.append(("Content-Type", "application/cbor"))
    start_response(seen["status"], headers + [("Content-Length", str(len(out)))])
    return [out]


werkzeug_app.DomainDispatcherApplication.__call__ = _call
