r"""Lambda functions whose updates take time and can fail, as the Lambda documentation describes.

Stock moto makes a function Active at once, reports every update Successful,
has no RevisionId, hashes the ImageUri string for CodeSha256, lets a published
version share its code with $LATEST (a later update changes the version's
ImageUri too), ignores PublishVersion's and UpdateAlias's preconditions
and runs an invoked function in docker. This extension patches moto's Lambda
backend and responses, following the Lambda API reference
(UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion,
GetFunction, CreateAlias, GetAlias, UpdateAlias, Invoke), the "Lambda
function states" and "Troubleshoot invocation issues" guides and responses
recorded from AWS (LocalStack's snapshot tests, answers quoted in public
issues). What the sandbox had to guess is marked GUESS.

Functions and their states (progress is computed lazily from wall-clock
time when a Lambda request arrives, no background thread; a function settles
`create_steps` or `steps` times `step_seconds` after it started):
- CreateFunction (PackageType Image with Code.ImageUri needs no docker; Zip
  works as in moto) answers 201 with State Pending, StateReason "The function
  is being created.", StateReasonCode Creating, a RevisionId and no
  LastUpdateStatus ("first set to Successful after function creation
  completes"). After `create_steps` it is State Active, LastUpdateStatus
  Successful, with a new RevisionId. An image matching a marker (below) ends
  State Failed instead, with StateReason/StateReasonCode and LastUpdateStatus
  Failed with LastUpdateStatusReason/LastUpdateStatusReasonCode.
- CodeSha256 of an image function is the hex of the image digest: the
  `sha256:` part of an `...@sha256:<hex>` ImageUri, or for a tag the digest of
  that tag in moto's ECR (its registry's account and region), or, when ECR does
  not have it, the sha256 of the URI (GUESS: Lambda refuses an image that does
  not exist; the sandbox does not check). CodeSize is 0. GetFunction's Code is
  {RepositoryType ECR, ImageUri as given, ResolvedImageUri
  <repository>@sha256:<CodeSha256>}. LastModified is in Lambda's format
  (2024-01-02T03:04:05.678+0000).
- UpdateFunctionCode (ImageUri for Image functions; ZipFile/S3 for Zip ones:
  "Please provide ImageUri when updating a function with packageType Image." /
  "Please don't provide ImageUri when updating a function with packageType
  Zip.", InvalidParameterValueException) and UpdateFunctionConfiguration
  answer 200 with the new code/configuration, LastUpdateStatus InProgress,
  LastUpdateStatusReason "The function is being created.",
  LastUpdateStatusReasonCode Creating (as AWS answers; "Creating" is not in
  the service model's LastUpdateStatusReasonCode enum, so the Rust SDK reads
  it as Unknown("Creating")) and a new RevisionId; a request Lambda rejects
  changes nothing. After `steps` the update is Successful and the RevisionId
  changes again (so
  the RevisionId to publish with comes from the GetFunction that saw
  Successful, not from UpdateFunctionCode's answer). Architectures in
  UpdateFunctionCode are applied. DryRun changes nothing and answers the
  configuration with the new image's CodeSha256.
- An image matching a marker ends the update LastUpdateStatus Failed with the
  marker's LastUpdateStatusReason and LastUpdateStatusReasonCode, State stays
  Active and, as the guide says ("Lambda aborts the update and the function's
  previous code and configuration remain available"), $LATEST reports its
  previous code again: GetFunction's Code.ImageUri/ResolvedImageUri and
  CodeSha256 (and Architectures) are the ones from before the update, which
  did not count as a change for PublishVersion (GUESS: AWS may keep showing
  the attempted ImageUri; the guide only says the previous code is served).
  A later UpdateFunctionCode is accepted.
- While $LATEST is Pending, Failed or its update InProgress,
  UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion answer
  409 ResourceConflictException: "The operation cannot be performed at this
  time. An update is in progress for resource: <unqualified function arn>"
  (InProgress, the text recorded from AWS) or "The operation cannot be
  performed at this time. The resource <arn> is currently in the following
  state: 'Pending'. StateReasonCode: 'Creating'" (GUESS for 'Failed'). The
  state is checked before the RevisionId (GUESS: AWS's order is not
  documented).
- A RevisionId that is not the current one (UpdateFunctionCode,
  UpdateFunctionConfiguration, PublishVersion: $LATEST's; UpdateAlias: the
  alias's) answers 412 PreconditionFailedException "The Revision Id provided
  does not match the latest Revision Id. Call the GetFunction/GetAlias API to
  retrieve the latest Revision Id".

Versions and aliases
- PublishVersion answers 201 with a snapshot of $LATEST (its own RevisionId,
  State Active, LastUpdateStatus Successful, qualified FunctionArn): later
  updates do not change it. Version numbers count up and are never reused.
  A CodeSha256 that is not $LATEST's: 400 InvalidParameterValueException
  "CodeSHA256 (<given>) is different from current CodeSHA256 in $LATEST
  (<current>). Please try again with the CodeSHA256 in $LATEST.". When no
  UpdateFunctionCode/UpdateFunctionConfiguration has been accepted since the
  last published version, it answers that version again (201) and publishes
  nothing (as AWS does, which counts update calls, not content). Publishing a
  new version gives $LATEST a new RevisionId (as recorded from AWS).
  UpdateFunctionCode with Publish=true publishes at once from the new code,
  CreateFunction with Publish=true publishes version 1.
- A version's own State: a version of an image function is Pending until
  Lambda has optimised its image, then Active or Failed (the service model's
  PublishedVersionActive waiter: Pending retries, Active succeeds, Failed
  fails). With `version_steps` 0 (the default) a version is Active at once;
  otherwise it answers PublishVersion and GetFunctionConfiguration(Qualifier)
  with State Pending, StateReason "The function is being created.",
  StateReasonCode Creating and no LastUpdateStatus (GUESS: what a version
  says while Pending is not documented; these are a function's while it is
  created) for `version_steps` steps, then Active with LastUpdateStatus
  Successful. A version whose image matches a `version_markers` entry ends
  in that entry's State instead: Failed (StateReason/StateReasonCode, and
  LastUpdateStatus Failed with the same reason and code) or Inactive
  (StateReasonCode Idle by default; GUESS: Lambda documents Inactive for
  functions idle long enough to lose their resources, not for a version
  just published, and no StateReason text for it).
- CreateAlias (201): the version must exist ("Function not found:
  <arn>:<version>", 404); an existing name is 409 ResourceConflictException
  "Alias already exists: <alias arn>". GetAlias (200) of a missing alias: 404
  ResourceNotFoundException "Cannot find alias arn: <alias arn>". UpdateAlias
  (200) checks RevisionId, the target version, answers 404 "Alias not found:
  <alias arn>" for a missing alias and gives the alias a new RevisionId.
  DeleteAlias answers 204. RoutingConfig is left out when not set.

Invoke (POST /2015-03-31/functions/{FunctionName}/invocations)
- Nothing runs: no docker, no image pull. What the function "does" is
  decided by `invoke_markers` (below) matched against the ImageUri of the
  version invoked (for $LATEST while an update is InProgress, the previous
  code, as the guide says invocations keep using it until the update
  completes; a Zip function has no image and succeeds).
- FunctionName is a name, ARN or partial ARN, optionally `name:qualifier`;
  the `Qualifier` query parameter is a version number, `$LATEST` or an alias
  name (an alias runs its FunctionVersion; GUESS: the primary version always,
  an alias's RoutingConfig weights are not drawn). A qualifier in the name
  that differs from `Qualifier`: 400 InvalidParameterValueException "The
  derived qualifier from the function name does not match the specified
  qualifier.". An unknown function, version or alias: 404
  ResourceNotFoundException "Function not found: <function arn>:<qualifier>"
  ($LATEST when no qualifier is given; as LocalStack's snapshots record).
- The version's State must be Active. Pending: 409
  ResourceConflictException "The operation cannot be performed at this
  time. The function is currently in the following state: Pending" (the
  text of the "Troubleshoot invocation issues" guide). Failed: the same
  with "Failed" (GUESS: the reference names no error for a Failed function;
  LocalStack answers this). Inactive: 502 ResourceNotReadyException (the
  reference's error for an inactive function) with the reference's text
  "The function is inactive and its VPC connection is no longer available.
  Wait for the VPC connection to reestablish and try again." (GUESS: the
  reference documents it for VPC functions; an inactive image function was
  seen answering CodeArtifactUserPendingException "ERROR: Lambda is
  initializing your function. It will be ready to invoke shortly.", which
  is not in the service model). As the guide says, invoking an Inactive
  version sets it Pending (StateReasonCode Restoring, GUESS: no StateReason
  text is documented) while Lambda recreates its resources; the sandbox's
  recreation fails (the marker still matches), so after `version_steps`
  steps it is Inactive again. These checks come before the payload's and
  before DryRun (as LocalStack orders them).
- The payload must be JSON (empty counts as {}): otherwise 400
  InvalidRequestContentException "Could not parse request body into json:
  Could not parse payload into json: <reason>" (GUESS: the reason is
  Python's, not Lambda's Jackson message). Larger than 6291456 bytes
  (RequestResponse) or 1048576 bytes (Event, the API reference's 1 MB): 413
  RequestTooLargeException "Request must be smaller than <limit> bytes for
  the InvokeFunction operation" (GUESS for Event's text, and that the size
  is checked before anything else).
- X-Amz-Invocation-Type RequestResponse (default): 200 with the payload
  (Content-Type application/json), X-Amz-Executed-Version (the version that
  ran: the alias's version for an alias, `$LATEST` for $LATEST), an
  x-amzn-RequestId that is the invocation's request id, and for a failure
  X-Amz-Function-Error. Event: 202 with no body and none of these headers
  (the function's outcome is only in the call log). DryRun: 204, nothing
  run. (GUESS: an InvocationType outside these three is not checked.)
- Outcomes (an `invoke_markers` entry's `outcome`):
  - ok (no marker matches): the function returns {"statusCode": 200,
    "body": "ok"} (GUESS: a stand-in answer; a marker with outcome ok and a
    `payload` returns that instead).
  - error: the handler raised. X-Amz-Function-Error: Unhandled and the
    Python runtime's error object {"errorMessage": "'bucket'", "errorType":
    "KeyError", "requestId": "<request id>", "stackTrace": ["  File
    \"/var/task/app.py\", line 12, in handler\n    bucket =
    event['bucket']\n"]} (type, message and stack trace from the marker;
    these are the defaults).
  - handled: the same payload with X-Amz-Function-Error: Handled (GUESS:
    the reference describes Handled as an error "the runtime caught" and
    formatted; current runtimes report Unhandled for a raised exception,
    Handled is what older Node.js runtimes sent for callback(error)).
  - timeout: the function ran past its Timeout. X-Amz-Function-Error:
    Unhandled and {"errorType":"Sandbox.Timedout","errorMessage":"RequestId:
    <request id> Error: Task timed out after 3.00 seconds"} (compact, as
    Lambda writes it; 3.00 is the version's Timeout). This is the shape
    Lambda answers today (quoted in public write-ups of `aws lambda invoke`);
    older answers were {"errorMessage": "<RFC3339 time> <request id> Task
    timed out after 3.00 seconds"}; both carry "Task timed out after".
  Answered at once (GUESS: the sandbox does not make the caller wait the
  Timeout).
- X-Amz-Log-Type Tail (RequestResponse only): X-Amz-Log-Result, the base64
  of the last 4 KB of the invocation's log: "START RequestId: <id> Version:
  <version>\n", for an error the runtime's "[ERROR] KeyError:
  'bucket'\nTraceback (most recent call last):\n  File
  \"/var/task/app.py\", line 12, in handler\n    bucket =
  event['bucket']\n", for a timeout "<RFC3339 time> <id> Task timed out
  after 3.00 seconds\n", then "END RequestId: <id>\nREPORT RequestId:
  <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: <MemorySize>
  MB\tMax Memory Used: 40 MB\t\n" (the REPORT line ends with a tab, as Lambda
  writes it; a timeout's Duration is the Timeout: 3000.00 ms, Billed 3000
  ms). GUESS: the durations and memory are fixed stand-ins, no Init
  Duration (every invocation is warm), no runtime LAMBDA_WARNING line, and
  the timeout line comes before END (older logs had it after REPORT).
- Every Invoke is in the call log (/_sandbox/lambda/calls, action
  "Invoke") with "qualifier" (as given, None for none), "invocation_type",
  "log_type", "payload" (the JSON sent, or its text when it is not JSON)
  and, once it ran (Event included), "executed_version", "outcome",
  "function_error" and "request_id". ext_faults throttles, fails or loses
  the answer of Invoke like any Lambda action (it matches the operation by
  botocore's route, and moto still routes the request to this Invoke).

Errors are shaped as Lambda sends them: the HTTP status, an
`X-Amzn-ErrorType: <Code>` header and a JSON body {"Type": "User",
"message": ...} ("Message" for ResourceNotFoundException and
ServiceException, as the service model has it); moto's own Lambda errors are
rewritten to that shape too.

Control endpoint (POST JSON):
- /_sandbox/lambda/config {"step_seconds": 0.2, "steps": 3, "create_steps": 2,
  "version_steps": 0, "markers": [{"marker": "badimage", "code":
  "InvalidImage", "reason": "..."}], "version_markers": [{"marker":
  "brokenversion", "state": "Failed", "code": "InvalidImage", "reason":
  "..."}], "invoke_markers": [{"marker": "smokefail", "outcome": "error",
  "error_type": "KeyError", "error_message": "'bucket'", "stack_trace":
  ["..."]}, {"marker": "slow", "outcome": "timeout"}, {"marker": "canned",
  "outcome": "ok", "payload": {"answer": 42}}]} sets what is given and
  returns the configuration in force (defaults: step_seconds 0.5, steps 3,
  create_steps 2, version_steps 0, markers "badimage" InvalidImage and
  "deniedimage" ImageAccessDenied, no version markers, invoke markers
  "smokefail" error, "smoketimeout" timeout, "smokehandled" handled). `markers` replaces the list; a marker matches when it is
  a substring of the ImageUri; `code` must be a LastUpdateStatusReasonCode of
  the service model (e.g. InvalidImage, ImageAccessDenied, ImageDeleted);
  `reason` defaults to Lambda's text for the code and may contain {image}.
  `version_markers` likewise, matched against the image of the version
  being published: `state` Failed or Inactive, `code` a StateReasonCode of
  the service model. `invoke_markers` likewise replaces its list, matched
  against the invoked version's image, first match wins: `outcome` ok,
  error (the default), handled or timeout; error and handled take
  `error_type`, `error_message` and `stack_trace` (a list of strings),
  defaulting to the KeyError above; any outcome may set `payload` (any
  JSON) to answer instead of its default payload. New timings apply to creations, updates and versions
  started afterwards; 0 steps settle at the next Lambda request (the answer
  to the request itself still says Pending/InProgress).
  (Throttling and lost answers for Lambda actions: ext_faults.)
- /_sandbox/lambda/interleave {"before": "UpdateFunctionCode", "function":
  "f", "configuration": {"MemorySize": 256}, "settled": false}: someone
  else's UpdateFunctionConfiguration lands just before the next
  UpdateFunctionCode (or PublishVersion, UpdateAlias) request to function f,
  once: the race between a client's look and its call. Unsettled, its update
  is InProgress when our request arrives (so ours meets 409
  ResourceConflictException) and runs `steps` steps; settled, it has already
  completed (so our RevisionId is stale: 412 PreconditionFailedException). It
  is applied as Lambda serves UpdateFunctionConfiguration (refused while the
  function is not mutable) and logged in the calls with "interleaved": true.
- /_sandbox/lambda/reset {} restores the default configuration and clears the
  call log (moto's /moto-api/reset drops the functions).
- /_sandbox/lambda/calls {"action": "UpdateFunctionCode", "function": "f",
  "clear": false} returns the Lambda requests seen, in order, as {"action",
  "function", "qualifier", "status", "error", "time", "body"} (optionally
  filtered by action and/or function name; body without ZipFile), then clears
  the log when "clear" is true.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.core.exceptions import JsonRESTError
from moto.ecr import models as ecr_models
from moto.moto_server import werkzeug_app
from moto.utilities.utils import get_partition
from sandbox_control import handle_control

LOCK = threading.RLock()

# Lambda's own texts for the reason codes a marker is likely to use.
REASONS = {
    "InvalidImage": "The image manifest, config or layer media type for the source image {image} is not supported.",
    "ImageAccessDenied": "Lambda does not have permission to access the ECR image. Check the ECR permissions.",
    "ImageDeleted": "The function is trying to use a deleted image.",
}
# What an invoked handler raises by default: the Python runtime's error object.
DEFAULT_ERROR: dict[str, Any] = {
    "error_type": "KeyError",
    "error_message": "'bucket'",
    "stack_trace": ["  File \"/var/task/app.py\", line 12, in handler\n    bucket = event['bucket']\n"],
}
# GUESS: a stand-in for what a healthy function returns.
OK_PAYLOAD: dict[str, Any] = {"statusCode": 200, "body": "ok"}
INVOKE_OUTCOMES = ("ok", "error", "handled", "timeout")
DEFAULTS: dict[str, Any] = {
    "step_seconds": 0.5,
    "steps": 3,
    "create_steps": 2,
    "version_steps": 0,
    "markers": [
        {"marker": "badimage", "code": "InvalidImage", "reason": REASONS["InvalidImage"]},
        {"marker": "deniedimage", "code": "ImageAccessDenied", "reason": REASONS["ImageAccessDenied"]},
    ],
    "version_markers": [],
    "invoke_markers": [
        {"marker": "smokefail", "outcome": "error", **DEFAULT_ERROR},
        {"marker": "smoketimeout", "outcome": "timeout"},
        {"marker": "smokehandled", "outcome": "handled", **DEFAULT_ERROR},
    ],
}
CONFIG: dict[str, Any] = copy.deepcopy(DEFAULTS)
CALLS: list[dict[str, Any]] = []
# Someone else's UpdateFunctionConfiguration, each applied once just before
# the next request of its action to its function (/_sandbox/lambda/interleave).
INTERLEAVED: list[dict[str, Any]] = []

_MODEL = botocore.session.get_session().get_service_model("lambda")
REASON_CODES = set(_MODEL.shape_for("LastUpdateStatusReasonCode").enum)
STATE_REASON_CODES = set(_MODEL.shape_for("StateReasonCode").enum)
# GUESS: Lambda's StateReason for an idle (Inactive) function is not documented.
STATE_REASONS = {**REASONS, "Idle": "The function is inactive because it has been idle."}

CREATING = {"status": "InProgress", "reason": "The function is being created.", "code": "Creating"}

Function = lambda_models.LambdaFunction
Backend = lambda_models.LambdaBackend
Response = lambda_responses.LambdaResponse


class LambdaError(JsonRESTError):
    """An error as Lambda sends it: X-Amzn-ErrorType header, {"Type", "message"} body."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(error_type, message)
        self.code = status
        key = "Message" if error_type in ("ResourceNotFoundException", "ServiceException") else "message"
        self.description = json.dumps({"Type": "User" if status < 500 else "Service", key: message})


def _conflict(message: str) -> LambdaError:
    return LambdaError(409, "ResourceConflictException", message)


def _not_found(message: str) -> LambdaError:
    return LambdaError(404, "ResourceNotFoundException", message)


def _invalid(message: str) -> LambdaError:
    return LambdaError(400, "InvalidParameterValueException", message)


def _rev() -> str:
    return str(uuid.uuid4())


def _lambda_date() -> str:
    # Lambda's LastModified: 2024-01-02T03:04:05.678+0000
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _due(steps_key: str) -> float:
    return time.time() + int(CONFIG[steps_key]) * float(CONFIG["step_seconds"])


# ---------------------------------------------------------------------------
# Images: digest, repository, markers.

_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def _split_tag(uri: str) -> tuple[str, str]:
    """registry/repo:tag -> (registry/repo, tag); a registry port is not a tag."""
    head, _, last = uri.rpartition("/")
    if ":" in last:
        name, _, tag = last.rpartition(":")
        return (f"{head}/{name}" if head else name), tag
    return uri, "latest"


def _repository_of(uri: str) -> str:
    return uri.split("@", 1)[0] if "@" in uri else _split_tag(uri)[0]


def _image_digest(account: str, region: str, uri: str) -> str:
    """The hex digest Lambda reports as CodeSha256 for an image."""
    if "@" in uri:
        digest = uri.rsplit("@", 1)[1]
        return digest.split(":", 1)[1] if ":" in digest else digest
    repo, tag = _split_tag(uri)
    host, _, name = repo.partition("/")
    m = _ECR_HOST.match(host)
    if m:
        account, region = m.group(1), m.group(2)
    try:
        images = ecr_models.ecr_backends[account][region].batch_get_image(name, image_ids=[{"imageTag": tag}])["images"]
        if images:
            return images[0].get_image_digest().split(":", 1)[-1]
    except Exception:  # noqa: BLE001 - no such repository: fall back below
        pass
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


def _marker_for(image: str | None) -> dict[str, str] | None:
    if not image:
        return None
    for m in CONFIG["markers"]:
        if m["marker"] in image:
            return {"code": m["code"], "reason": m["reason"].replace("{image}", image)}
    return None


def _version_marker_for(image: str | None) -> dict[str, str] | None:
    if not image:
        return None
    for m in CONFIG["version_markers"]:
        if m["marker"] in image:
            return {"state": m["state"], "code": m["code"], "reason": m["reason"].replace("{image}", image)}
    return None


def _check_version_marker(m: Any) -> dict[str, str]:
    if not isinstance(m, dict) or not m.get("marker") or not isinstance(m["marker"], str):
        raise ValueError(f"a version marker needs a non-empty string 'marker': {m!r}")
    state = m.get("state", "Failed")
    if state not in ("Failed", "Inactive"):
        raise ValueError(f"a version marker's state is Failed or Inactive, not {state!r}")
    code = m.get("code", "InvalidImage" if state == "Failed" else "Idle")
    if code not in STATE_REASON_CODES:
        raise ValueError(f"unknown StateReasonCode {code!r}: use one of {sorted(STATE_REASON_CODES)}")
    reason = m.get("reason") or STATE_REASONS.get(code, f"{code}: the image {{image}} cannot be used.")
    return {"marker": m["marker"], "state": state, "code": code, "reason": str(reason)}


def _check_marker(m: Any) -> dict[str, str]:
    if not isinstance(m, dict) or not m.get("marker") or not isinstance(m["marker"], str):
        raise ValueError(f"a marker needs a non-empty string 'marker': {m!r}")
    code = m.get("code", "InvalidImage")
    if code not in REASON_CODES:
        raise ValueError(f"unknown LastUpdateStatusReasonCode {code!r}: use one of {sorted(REASON_CODES)}")
    return {"marker": m["marker"], "code": code, "reason": str(m.get("reason") or REASONS.get(code, f"{code}: the image {{image}} cannot be used."))}


def _check_invoke_marker(m: Any) -> dict[str, Any]:
    if not isinstance(m, dict) or not m.get("marker") or not isinstance(m["marker"], str):
        raise ValueError(f"an invoke marker needs a non-empty string 'marker': {m!r}")
    outcome = m.get("outcome", "error")
    if outcome not in INVOKE_OUTCOMES:
        raise ValueError(f"an invoke marker's outcome is one of {', '.join(INVOKE_OUTCOMES)}, not {outcome!r}")
    out: dict[str, Any] = {"marker": m["marker"], "outcome": outcome}
    if outcome in ("error", "handled"):
        trace = m.get("stack_trace", DEFAULT_ERROR["stack_trace"])
        if not isinstance(trace, list) or not all(isinstance(t, str) for t in trace):
            raise ValueError(f"an invoke marker's stack_trace is a list of strings: {trace!r}")
        out.update(
            error_type=str(m.get("error_type") or DEFAULT_ERROR["error_type"]),
            error_message=str(m.get("error_message") or DEFAULT_ERROR["error_message"]),
            stack_trace=list(trace),
        )
    if "payload" in m:
        out["payload"] = copy.deepcopy(m["payload"])
    return out


def _invoke_marker_for(image: str | None) -> dict[str, Any] | None:
    if not image:
        return None
    for m in CONFIG["invoke_markers"]:
        if m["marker"] in image:
            return m
    return None


# ---------------------------------------------------------------------------
# Sandbox state, kept on moto's LambdaFunction as `_sandbox`.

# What an aborted update puts back.
SNAPSHOT = (
    "code", "code_sha_256", "code_size", "code_digest", "code_bytes", "_architectures", "image_config",
    "description", "handler", "memory_size", "role", "run_time", "timeout", "_vpc_config", "environment_vars",
    "layers", "_ephemeral_storage",
)
# What a published version must not share with $LATEST.
DEEP = ("code", "_architectures", "image_config", "_vpc_config", "environment_vars", "layers", "tracing_config", "tags")


def _snapshot(fn: Function) -> dict[str, Any]:
    return {a: copy.deepcopy(getattr(fn, a)) for a in SNAPSHOT if hasattr(fn, a)}


def _restore(fn: Function, snap: dict[str, Any]) -> None:
    for a, v in snap.items():
        setattr(fn, a, v)


def _new_state(state: str, last_update: dict[str, str] | None) -> dict[str, Any]:
    return {
        "revision_id": _rev(),
        "state": state,
        "state_reason": None,
        "state_reason_code": None,
        "last_update": last_update,
        "pending": None,
        "serial": 0,
        "last_published": None,
        "next_version": 1,
    }


def _advance(fn: Function, now: float) -> None:
    st = getattr(fn, "_sandbox", None)
    if not st or not st["pending"] or st["pending"]["due"] > now:
        return
    p, st["pending"] = st["pending"], None
    st["revision_id"] = _rev()
    fail = p["fail"]
    if p["kind"] == "version":
        if fail:
            st.update(state=fail["state"], state_reason=fail["reason"], state_reason_code=fail["code"])
            # GUESS: a version that ends Failed reports its update Failed too,
            # as a function whose creation failed does; an Inactive one keeps
            # Successful (Lambda does not document a version's LastUpdateStatus).
            if fail["state"] == "Failed":
                st["last_update"] = {"status": "Failed", "reason": fail["reason"], "code": fail["code"]}
            else:
                st["last_update"] = {"status": "Successful"}
        else:
            st.update(state="Active", state_reason=None, state_reason_code=None)
            st["last_update"] = {"status": "Successful"}
    elif p["kind"] == "create":
        if fail:
            st.update(state="Failed", state_reason=fail["reason"], state_reason_code=fail["code"])
            st["last_update"] = {"status": "Failed", "reason": fail["reason"], "code": fail["code"]}
        else:
            st.update(state="Active", state_reason=None, state_reason_code=None)
            st["last_update"] = {"status": "Successful"}
    elif fail:
        _restore(fn, p["restore"])
        st["serial"] = p["serial_before"]
        st["last_update"] = {"status": "Failed", "reason": fail["reason"], "code": fail["code"]}
    else:
        st["last_update"] = {"status": "Successful"}


def _advance_all(backend: Backend) -> None:
    now = time.time()
    for group in list(backend._lambdas._functions.values()):
        if group.get("latest") is not None:
            _advance(group["latest"], now)
        for v in group.get("versions") or []:
            _advance(v, now)


def _start_update(fn: Function, snap: dict[str, Any], fail: dict[str, str] | None) -> None:
    st = fn._sandbox
    st["pending"] = {"kind": "update", "due": _due("steps"), "fail": fail, "restore": snap, "serial_before": st["serial"]}
    st["serial"] += 1
    st["revision_id"] = _rev()
    st["last_update"] = dict(CREATING)
    fn.last_modified = _lambda_date()


def _check_mutable(fn: Function) -> None:
    st = fn._sandbox
    if st["state"] != "Active":
        raise _conflict(
            f"The operation cannot be performed at this time. The resource {fn.function_arn} is currently in the "
            f"following state: '{st['state']}'. StateReasonCode: '{st['state_reason_code']}'"
        )
    if st["last_update"] and st["last_update"]["status"] == "InProgress":
        raise _conflict(f"The operation cannot be performed at this time. An update is in progress for resource: {fn.function_arn}")


def _check_revision(current: str, given: str | None) -> None:
    if given and given != current:
        raise LambdaError(
            412,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )


def _publish(backend: Backend, fn: Function, description: str | None) -> Function:
    storage = backend._lambdas
    st = fn._sandbox
    versions = storage._functions[fn.function_name]["versions"]
    last = st["last_published"]
    if last and last[0] == st["serial"] and any(v is last[1] for v in versions):
        return last[1]
    number = st["next_version"]
    st["next_version"] += 1
    v = copy.copy(fn)
    for a in DEEP:
        if hasattr(fn, a):
            setattr(v, a, copy.deepcopy(getattr(fn, a)))
    v.set_version(number)
    v.last_modified = fn.last_modified
    if description:
        v.description = description
    image = fn.code.get("ImageUri") if isinstance(fn.code, dict) else None
    fail = _version_marker_for(image)
    if int(CONFIG["version_steps"]) == 0 and fail is None:
        v._sandbox = _new_state("Active", {"status": "Successful"})
    else:
        # A version of an image function is Pending until Lambda has
        # optimised its image (the PublishedVersionActive waiter: Pending,
        # then Active or Failed). GUESS: the version's StateReason and code
        # while Pending are the ones of a function being created, and it has
        # no LastUpdateStatus until it settles.
        st_v = _new_state("Pending", None)
        st_v.update(state_reason="The function is being created.", state_reason_code="Creating")
        st_v["pending"] = {"kind": "version", "due": _due("version_steps"), "fail": fail}
        v._sandbox = st_v
    versions.append(v)
    storage._arns[v.function_arn] = v
    st["last_published"] = (st["serial"], v)
    # AWS gives $LATEST a new RevisionId when a version is published from it.
    st["revision_id"] = _rev()
    return v


# ---------------------------------------------------------------------------
# Model patches.

_orig_init = Function.__init__
_orig_set_function_code = Function._set_function_code
_orig_get_configuration = Function.get_configuration
_orig_get_code = Function.get_code


def _init(self: Function, account_id: str, spec: dict[str, Any], region: str, version: str | int = 1) -> None:
    _orig_init(self, account_id, spec, region, version)
    self.last_modified = _lambda_date()
    st = _new_state("Pending", None)
    st.update(state_reason="The function is being created.", state_reason_code="Creating")
    st["pending"] = {"kind": "create", "due": _due("create_steps"), "fail": _marker_for((spec.get("Code") or {}).get("ImageUri"))}
    self._sandbox = st


def _set_function_code(self: Function, updated_spec: dict[str, Any]) -> None:
    if "ImageUri" not in updated_spec:
        return _orig_set_function_code(self, updated_spec)
    from_update = updated_spec is not self.code
    if from_update and updated_spec.get("DryRun"):
        return None
    uri = updated_spec["ImageUri"]
    self.code_sha_256 = _image_digest(self.account_id, self.region, uri)
    self.code_size = 0
    if from_update:
        self.code["ImageUri"] = uri
    return None


def get_configuration(self: Function, on_create: bool = False) -> dict[str, Any]:
    config = _orig_get_configuration(self, on_create)
    st = getattr(self, "_sandbox", None)
    if st is not None:
        for key in ("StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode"):
            config.pop(key, None)
        config["RevisionId"] = st["revision_id"]
        config["State"] = st["state"]
        if st["state_reason"]:
            config["StateReason"] = st["state_reason"]
            config["StateReasonCode"] = st["state_reason_code"]
        lu = st["last_update"]
        if lu:
            config["LastUpdateStatus"] = lu["status"]
            if lu.get("reason"):
                config["LastUpdateStatusReason"] = lu["reason"]
                config["LastUpdateStatusReasonCode"] = lu["code"]
    # Lambda leaves out what is not set (Handler and Runtime of an image function).
    return {k: v for k, v in config.items() if v is not None}


def get_code(self: Function) -> dict[str, Any]:
    resp = _orig_get_code(self)
    uri = self.code.get("ImageUri") if isinstance(self.code, dict) else None
    if uri:
        resp["Code"] = {
            "RepositoryType": "ECR",
            "ImageUri": uri,
            "ResolvedImageUri": f"{_repository_of(uri)}@sha256:{self.code_sha_256}",
        }
    return resp


def _alias_to_json(self: lambda_models.LambdaAlias) -> dict[str, Any]:
    out = {
        "AliasArn": self.arn,
        "Description": self.description or "",
        "FunctionVersion": self.function_version,
        "Name": self.name,
        "RevisionId": self.revision_id,
    }
    if self.routing_config:
        out["RoutingConfig"] = self.routing_config
    return out


def publish_version(self: Backend, function_name: str, description: str = "") -> Function:
    # Also what CreateFunction(Publish=true) and CloudFormation call.
    with LOCK:
        fn = self._lambdas.get_function_by_name_or_arn_forbid_qualifier(function_name)
        return _publish(self, fn, description)


Function.__init__ = _init
Function._set_function_code = _set_function_code
Function.get_configuration = get_configuration
Function.get_code = get_code
lambda_models.LambdaAlias.to_json = _alias_to_json
Backend.publish_version = publish_version

_orig_delete_function = Backend.delete_function


def delete_function(self: Backend, function_name: str, qualifier: str | None = None) -> None:
    """DeleteFunction with a version Qualifier refuses a version an alias
    points at, or routes weight to: 409 ResourceConflictException "Unable to
    delete version because the following aliases reference it: [live]"
    (GUESS: the list's format)."""
    name = function_name.split(":function:")[-1].split(":")[0]
    if ":" in function_name.split(":function:")[-1]:
        qualifier = qualifier or function_name.split(":")[-1]
    if qualifier and qualifier != "$LATEST":
        with LOCK:
            aliases = self._lambdas._get_function_aliases(name)
            users = sorted(
                a.name for a in aliases.values()
                if str(a.function_version) == str(qualifier)
                or str(qualifier) in ((a.routing_config or {}).get("AdditionalVersionWeights") or {})
            )
        if users:
            raise _conflict(f"Unable to delete version because the following aliases reference it: [{', '.join(users)}]")
    return _orig_delete_function(self, function_name, qualifier)


Backend.delete_function = delete_function


# ---------------------------------------------------------------------------
# Response patches.


def _body(self: Response) -> dict[str, Any]:
    try:
        data = json.loads(self.body or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _fn_ref(self: Response) -> str:
    parts = self.path.split("/")
    return unquote(parts[parts.index("functions") + 1])


def _latest(self: Response) -> Function:
    return self.backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(_fn_ref(self))


def _alias_name(self: Response) -> str:
    return unquote(self.path.rstrip("/").rsplit("/", 1)[-1])


def _version_of(self: Response, fn: Function, version: str | None) -> None:
    if version == "$LATEST":
        return
    if not any(str(v.version) == str(version) for v in self.backend._lambdas._functions[fn.function_name]["versions"]):
        raise _not_found(f"Function not found: {fn.function_arn}:{version}")


def update_function_code(self: Response) -> Any:
    fn = _latest(self)
    body = _body(self)
    _check_mutable(fn)
    _check_revision(fn._sandbox["revision_id"], body.get("RevisionId"))
    image = body.get("ImageUri")
    if fn.package_type == "Image" and not image:
        raise _invalid("Please provide ImageUri when updating a function with packageType Image.")
    if fn.package_type != "Image" and image:
        raise _invalid("Please don't provide ImageUri when updating a function with packageType Zip.")
    if body.get("DryRun"):
        config = fn.get_configuration()
        if image:
            config["CodeSha256"] = _image_digest(fn.account_id, fn.region, image)
        return 200, {}, json.dumps(config)
    snap = _snapshot(fn)
    try:
        if body.get("Architectures"):
            fn.architectures = body["Architectures"]
        fn._set_function_code(body)
    except Exception:
        _restore(fn, snap)  # a rejected request changes nothing
        raise
    _start_update(fn, snap, _marker_for(image))
    if body.get("Publish"):
        return 200, {}, json.dumps(_publish(self.backend, fn, None).get_configuration())
    return 200, {}, json.dumps(fn.get_configuration())


def update_function_configuration(self: Response) -> Any:
    fn = _latest(self)
    body = _body(self)
    _check_mutable(fn)
    _check_revision(fn._sandbox["revision_id"], body.get("RevisionId"))
    snap = _snapshot(fn)
    try:
        fn.update_configuration(body)
        if "ImageConfig" in body:
            fn.image_config = lambda_models.ImageConfig(body["ImageConfig"] or {})
        if "EphemeralStorage" in body:
            fn.ephemeral_storage = body["EphemeralStorage"]["Size"]
    except Exception:
        _restore(fn, snap)  # a rejected request changes nothing
        raise
    _start_update(fn, snap, None)
    return 200, {}, json.dumps(fn.get_configuration())


def publish_version_response(self: Response) -> Any:
    fn = _latest(self)
    body = _body(self)
    _check_mutable(fn)
    _check_revision(fn._sandbox["revision_id"], body.get("RevisionId"))
    sha = body.get("CodeSha256")
    if sha and sha != fn.code_sha_256:
        raise _invalid(
            f"CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({fn.code_sha_256}). "
            "Please try again with the CodeSHA256 in $LATEST."
        )
    version = _publish(self.backend, fn, body.get("Description"))
    return 201, {"status": 201}, json.dumps(version.get_configuration())


def create_alias(self: Response) -> Any:
    fn = _latest(self)
    body = _body(self)
    name, version = body.get("Name"), body.get("FunctionVersion")
    _version_of(self, fn, version)
    aliases = self.backend._lambdas._get_function_aliases(fn.function_name)
    if name in aliases:
        raise _conflict(f"Alias already exists: {fn.function_arn}:{name}")
    alias = lambda_models.LambdaAlias(
        account_id=fn.account_id,
        region=fn.region,
        name=name,
        function_name=fn.function_name,
        function_version=version,
        description=body.get("Description") or "",
        routing_config=body.get("RoutingConfig"),
    )
    aliases[name] = alias
    return 201, {"status": 201}, json.dumps(alias.to_json())


def get_alias(self: Response) -> Any:
    fn = _latest(self)
    name = _alias_name(self)
    alias = self.backend._lambdas._get_function_aliases(fn.function_name).get(name)
    if alias is None:
        raise _not_found(f"Cannot find alias arn: {fn.function_arn}:{name}")
    return 200, {}, json.dumps(alias.to_json())


def update_alias(self: Response) -> Any:
    fn = _latest(self)
    name = _alias_name(self)
    body = _body(self)
    alias = self.backend._lambdas._get_function_aliases(fn.function_name).get(name)
    if alias is None:
        raise _not_found(f"Alias not found: {fn.function_arn}:{name}")
    _check_revision(alias.revision_id, body.get("RevisionId"))
    if body.get("FunctionVersion") is not None:
        _version_of(self, fn, body["FunctionVersion"])
    alias.update(body.get("Description"), body.get("FunctionVersion"), body.get("RoutingConfig"))
    alias.revision_id = _rev()
    return 200, {}, json.dumps(alias.to_json())


def delete_alias(self: Response) -> Any:
    fn = _latest(self)
    self.backend._lambdas._get_function_aliases(fn.function_name).pop(_alias_name(self), None)
    return 204, {"status": 204}, ""


# ---------------------------------------------------------------------------
# Invoke: nothing runs; the invoked version's image decides the outcome.

# Payload limits (the API reference: 6 MB synchronous, 1 MB asynchronous).
INVOKE_LIMITS = {"RequestResponse": 6291456, "DryRun": 6291456, "Event": 1048576}
NOT_READY = ("The function is inactive and its VPC connection is no longer available. "
             "Wait for the VPC connection to reestablish and try again.")


def _split_function_ref(ref: str) -> tuple[str, str | None]:
    """(name, qualifier) of a FunctionName: name, ARN or partial ARN, each optionally :qualifier."""
    if ":function:" in ref:
        ref = ref.split(":function:", 1)[1]
    name, _, qualifier = ref.partition(":")
    return name, qualifier or None


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _as_run(fn: Function) -> dict[str, Any]:
    """The code and configuration an invocation of `fn` runs: for $LATEST while
    an update is InProgress, the previous ones (the guide: invocations use the
    previous code and configuration until the update completes)."""
    p = (getattr(fn, "_sandbox", None) or {}).get("pending")
    snap = p["restore"] if p and p["kind"] == "update" else {}
    code = snap.get("code", fn.code)
    return {
        "image": code.get("ImageUri") if isinstance(code, dict) else None,
        "timeout": snap.get("timeout", fn.timeout) or 3,
        "memory": snap.get("memory_size", fn.memory_size) or 128,
    }


def _check_invocable(fn: Function) -> None:
    st = getattr(fn, "_sandbox", None)
    state = st["state"] if st else "Active"
    if state in ("Pending", "Failed"):
        # GUESS for Failed: the reference names no error for it (LocalStack's answer).
        raise _conflict(f"The operation cannot be performed at this time. The function is currently in the following state: {state}")
    if state == "Inactive":
        # The guide: the invocation fails and Lambda sets the function Pending
        # while it recreates the resources, Inactive again when that fails (the
        # marker that made it Inactive still matches). GUESS: StateReason text.
        fail = {"state": "Inactive", "code": st["state_reason_code"] or "Idle",
                "reason": st["state_reason"] or STATE_REASONS["Idle"]}
        st.update(state="Pending", state_reason="The function is being restored.", state_reason_code="Restoring")
        st["pending"] = {"kind": "version", "due": _due("version_steps"), "fail": fail}
        st["revision_id"] = _rev()
        raise LambdaError(502, "ResourceNotReadyException", NOT_READY)


def _run_function(run: dict[str, Any], version: str, rid: str, started: float) -> tuple[Any, str | None, str, str]:
    """(payload, X-Amz-Function-Error, log, outcome) of one invocation."""
    marker = _invoke_marker_for(run["image"])
    outcome = marker["outcome"] if marker else "ok"
    lines = [f"START RequestId: {rid} Version: {version}\n"]
    duration, billed = "12.34", "13"
    function_error = None
    if outcome == "ok":
        payload: Any = json.dumps(marker.get("payload", OK_PAYLOAD) if marker else OK_PAYLOAD)
    elif outcome == "timeout":
        function_error = "Unhandled"
        seconds = float(run["timeout"])
        payload = json.dumps({"errorType": "Sandbox.Timedout",
                              "errorMessage": f"RequestId: {rid} Error: Task timed out after {seconds:.2f} seconds"},
                             separators=(",", ":"))
        if "payload" in marker:
            payload = json.dumps(marker["payload"])
        lines.append(f"{_rfc3339(started + seconds)} {rid} Task timed out after {seconds:.2f} seconds\n")
        duration, billed = f"{seconds * 1000:.2f}", str(int(seconds * 1000))
    else:
        function_error = "Unhandled" if outcome == "error" else "Handled"
        error = {"errorMessage": marker["error_message"], "errorType": marker["error_type"], "requestId": rid,
                 "stackTrace": marker["stack_trace"]}
        payload = json.dumps(marker.get("payload", error))
        trace = [line for t in marker["stack_trace"] for line in (t.splitlines() or [""])]
        lines.append("\n".join([f"[ERROR] {marker['error_type']}: {marker['error_message']}",
                                "Traceback (most recent call last):", *trace]) + "\n")
    lines.append(f"END RequestId: {rid}\n")
    lines.append(f"REPORT RequestId: {rid}\tDuration: {duration} ms\tBilled Duration: {billed} ms\t"
                 f"Memory Size: {run['memory']} MB\tMax Memory Used: 40 MB\t\n")
    return payload, function_error, "".join(lines), outcome


def invoke(self: Response) -> Any:
    name, named_qualifier = _split_function_ref(_fn_ref(self))
    given = (parse_qs(self.parsed_url.query).get("Qualifier") or [None])[0]
    invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    log_type = self.headers.get("X-Amz-Log-Type") or "None"
    raw = self.raw_body or b""
    raw = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    text = raw.decode("utf-8", "replace")
    try:
        payload: Any = json.loads(text) if text.strip() else {}
        parse_error = None
    except ValueError as e:
        payload, parse_error = text, e
    limit = INVOKE_LIMITS.get(invocation_type, INVOKE_LIMITS["RequestResponse"])
    info: dict[str, Any] = {"invocation_type": invocation_type, "log_type": log_type,
                            "payload": payload if len(raw) <= limit else f"<{len(raw)} bytes>"}
    self._sandbox_invoke = info  # for the call log (call_action)
    # GUESS: the size is checked first, before the function is looked up.
    if len(raw) > limit:
        raise LambdaError(413, "RequestTooLargeException",
                          f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if named_qualifier and given and named_qualifier != given:
        raise _invalid("The derived qualifier from the function name does not match the specified qualifier.")
    qualifier = given or named_qualifier or "$LATEST"
    group = self.backend._lambdas._functions.get(name) or {}
    latest = group.get("latest")
    arn = (latest.function_arn if latest is not None
           else f"arn:{get_partition(self.region)}:lambda:{self.region}:{self.current_account}:function:{name}")
    version = qualifier
    if qualifier != "$LATEST" and not qualifier.isdigit():
        # GUESS: the alias's primary version; RoutingConfig weights are not drawn.
        alias = self.backend._lambdas._get_function_aliases(name).get(qualifier) if group else None
        version = str(alias.function_version) if alias is not None else None
    if version == "$LATEST":
        fn = latest
    else:
        fn = next((v for v in group.get("versions") or [] if str(v.version) == version), None)
    if fn is None:
        raise _not_found(f"Function not found: {arn}:{qualifier}")
    _check_invocable(fn)
    if parse_error is not None:
        raise LambdaError(400, "InvalidRequestContentException",
                          f"Could not parse request body into json: Could not parse payload into json: {parse_error}")
    if invocation_type == "DryRun":
        return 204, {"status": 204}, ""
    rid = str(uuid.uuid4())
    body, function_error, log, outcome = _run_function(_as_run(fn), version, rid, time.time())
    info.update(executed_version=version, outcome=outcome, function_error=function_error, request_id=rid)
    if invocation_type == "Event":
        return 202, {"status": 202}, ""
    headers = {"status": 200, "Content-Type": "application/json", "X-Amz-Executed-Version": version}
    if function_error:
        headers["X-Amz-Function-Error"] = function_error
    if log_type == "Tail":
        headers["X-Amz-Log-Result"] = base64.b64encode(log.encode("utf-8")[-4096:]).decode("ascii")
    return 200, headers, body


Response.update_function_code = update_function_code
Response.update_function_configuration = update_function_configuration
Response.publish_version = publish_version_response
Response.create_alias = create_alias
Response.get_alias = get_alias
Response.update_alias = update_alias
Response.delete_alias = delete_alias
Response.invoke = invoke


# ---------------------------------------------------------------------------
# Every Lambda request: advance the functions, shape errors as Lambda does,
# record the call.

_orig_call_action = Response.call_action


def _lambda_error_body(status: int, body: Any) -> tuple[str, str] | None:
    """moto's {"__type", "message"} error -> (code, Lambda-shaped body)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or "__type" not in data:
        return None
    code = str(data["__type"]).split("#")[-1]
    message = data.get("message") or data.get("Message") or ""
    key = "Message" if code in ("ResourceNotFoundException", "ServiceException") else "message"
    return code, json.dumps({"Type": "User" if status < 500 else "Service", key: message})


def _describe_call(self: Response, action: str | None) -> dict[str, Any]:
    function = qualifier = None
    body = _body(self) if self.method in ("POST", "PUT") else {}
    parts = self.path.split("/")
    if "functions" in parts and len(parts) > parts.index("functions") + 1 and parts[parts.index("functions") + 1]:
        function = _fn_ref(self)
    elif action == "CreateFunction":
        function = body.get("FunctionName")
    if function and function.startswith("arn:") and ":function:" in function:
        function = function.split(":function:", 1)[1]
    if function and ":" in function:
        function, qualifier = function.split(":", 1)
    q = self.querystring.get("Qualifier")
    if q:
        qualifier = q[0] if isinstance(q, list) else q
    body.pop("ZipFile", None)
    if isinstance(body.get("Code"), dict):
        body["Code"] = {k: v for k, v in body["Code"].items() if k != "ZipFile"}
    return {"action": action, "function": function, "qualifier": qualifier, "time": time.time(), "body": body}


def _someone_elses_update(backend: Backend, entry: dict[str, Any], at: float) -> None:
    """Applies another client's UpdateFunctionConfiguration as Lambda would
    have served it (refused while the function is not mutable), and records
    it in the call log with "interleaved": true."""
    record: dict[str, Any] = {"action": "UpdateFunctionConfiguration", "function": entry["function"], "qualifier": None,
                              "time": at, "body": copy.deepcopy(entry["configuration"]), "interleaved": True}
    try:
        fn = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(entry["function"])
        _check_mutable(fn)
        snap = _snapshot(fn)
        fn.update_configuration(entry["configuration"])
        _start_update(fn, snap, None)
        if entry["settled"]:
            # The other update ran its course between our look and our call.
            fn._sandbox["pending"]["due"] = at
            _advance(fn, at)
        record.update(status=200, error=None)
    except LambdaError as e:
        record.update(status=e.code, error=e.error_type)
    CALLS.append(record)


def _interleave(self: Response, record: dict[str, Any]) -> None:
    for i, entry in enumerate(INTERLEAVED):
        if entry["before"] == record["action"] and entry["function"] == record["function"]:
            del INTERLEAVED[i]
            _someone_elses_update(self.backend, entry, record["time"])
            return


def call_action(self: Response) -> Any:
    try:
        action = self._get_action()
    except Exception:  # noqa: BLE001 - record the call anyway
        action = None
    with LOCK:
        record = _describe_call(self, action)
        _advance_all(self.backend)
        _interleave(self, record)
        status, headers, body = _orig_call_action(self)
        invoked = getattr(self, "_sandbox_invoke", None)
        if invoked is not None:
            record.update(invoked)
            if invoked.get("request_id"):
                # The invocation's request id, which its log and error object carry.
                for key in [k for k in headers if k.lower() == "x-amzn-requestid"]:
                    del headers[key]
                headers["x-amzn-RequestId"] = invoked["request_id"]
        record["status"] = int(status)
        record["error"] = None
        if int(status) >= 400:
            shaped = _lambda_error_body(int(status), body)
            if shaped is not None:
                code, body = shaped
                for key in [k for k in headers if k.lower() == "x-amzn-errortype"]:
                    del headers[key]
                headers["X-Amzn-ErrorType"] = code
                headers["Content-Type"] = "application/json"
            record["error"] = next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), None)
        CALLS.append(record)
    return status, headers, body


Response.call_action = call_action


# ---------------------------------------------------------------------------
# Control endpoint: /_sandbox/lambda/<command>, chained like the other extensions.

PREFIX = "/_sandbox/lambda/"
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _control(command: str, body: dict[str, Any]) -> Any:
    with LOCK:
        if command == "config":
            for key, kind in (("step_seconds", float), ("steps", int), ("create_steps", int), ("version_steps", int)):
                if key in body:
                    value = kind(body[key])
                    if value < 0:
                        raise ValueError(f"{key} must not be negative")
                    CONFIG[key] = value
            if "markers" in body:
                CONFIG["markers"] = [_check_marker(m) for m in body["markers"]]
            if "version_markers" in body:
                CONFIG["version_markers"] = [_check_version_marker(m) for m in body["version_markers"]]
            if "invoke_markers" in body:
                CONFIG["invoke_markers"] = [_check_invoke_marker(m) for m in body["invoke_markers"]]
            return copy.deepcopy(CONFIG)
        if command == "interleave":
            before = body.get("before", "UpdateFunctionCode")
            if before not in ("UpdateFunctionCode", "PublishVersion", "UpdateAlias"):
                raise ValueError(f"interleave before UpdateFunctionCode, PublishVersion or UpdateAlias, not {before!r}")
            if not body.get("function"):
                raise ValueError("interleave needs the function's name")
            INTERLEAVED.append({
                "before": before,
                "function": body["function"],
                "configuration": dict(body.get("configuration") or {"Description": "changed by someone else"}),
                "settled": bool(body.get("settled", False)),
            })
            return [dict(e) for e in INTERLEAVED]
        if command == "reset":
            CONFIG.clear()
            CONFIG.update(copy.deepcopy(DEFAULTS))
            CALLS.clear()
            INTERLEAVED.clear()
            return copy.deepcopy(CONFIG)
        if command == "calls":
            out = [
                dict(c)
                for c in CALLS
                if (not body.get("action") or c["action"] == body["action"])
                and (not body.get("function") or c["function"] == body["function"])
            ]
            if body.get("clear"):
                CALLS.clear()
            return out
        raise KeyError(command)


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    return answered if answered is not None else _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
