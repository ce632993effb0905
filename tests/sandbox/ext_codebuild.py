"""CodeBuild builds that run, as the CodeBuild API documentation describes.

Stock moto records StartBuild's project and source version only, and every
BatchGetBuilds call reports the build SUCCEEDED at once. This extension
replaces StartBuild, BatchGetBuilds and StopBuild so that:

- StartBuild keeps what it was given (sourceVersion, buildspecOverride,
  environmentVariablesOverride with their types, privilegedModeOverride,
  computeTypeOverride, environmentTypeOverride, imageOverride,
  timeoutInMinutesOverride, idempotencyToken) and shows it in the build
  (`source.buildspec`, `environment`, `timeoutInMinutes`). A repeated
  idempotencyToken with the same parameters returns the same build; with
  different parameters it is rejected, as CodeBuild does.
- A build moves through the documented phases (SUBMITTED, QUEUED,
  PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, BUILD, POST_BUILD,
  UPLOAD_ARTIFACTS, FINALIZING, COMPLETED), one every `phase_seconds`, on a
  background thread. Each finished phase carries durationInSeconds and, when
  it did not succeed, contexts with a statusCode and message.
- The build writes its log to moto's CloudWatch Logs, to the group and stream
  named in its `logs` field (`/aws/codebuild/<project>`, stream = the id after
  the colon): phase lines in CodeBuild's `[Container]` format, each buildspec
  command it "runs", and `log_lines` as the BUILD phase's output.
- It ends per the control `outcome`: SUCCEEDED, FAILED or TIMED_OUT in
  `fail_phase` (BUILD by default), or HANG (stays in that phase until
  StopBuild). StopBuild ends a running build STOPPED.
- At the end, each name in the buildspec's `env.exported-variables` is
  exported with the value given in `exported` (or empty), as
  exportedEnvironmentVariables.

Control endpoint (POST JSON):
- /_sandbox/codebuild/config {"phase_seconds": 0.05, "outcome": "FAILED",
  "fail_phase": "BUILD", "log_lines": [..], "exported": {"NAME": "value"},
  "throttle": {"BatchGetBuilds": 2, "GetLogEvents": 1},
  "exported_by_environment": {"ARM_CONTAINER": {"NAME": "value"}},
  "outcome_by_environment": {"ARM_CONTAINER": "FAILED"}} sets the configuration
  for builds started from now on (throttle: the next N calls of that
  operation answer ThrottlingException) and returns it.
- /_sandbox/codebuild/requests {} returns the StartBuild, BatchGetBuilds and
  StopBuild requests received, in order, as {"operation", "body"}.
- /_sandbox/codebuild/builds {} returns every sandbox build as BatchGetBuilds shows it.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import threading
import time
import uuid
from typing import Any

import yaml
from moto.codebuild import models as cb_models
from moto.codebuild import responses as cb_responses
from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
from moto.logs import models as logs_models
from moto.moto_server import werkzeug_app
from sandbox_control import handle_control, json_response

LOCK = threading.RLock()

CONFIG: dict[str, Any] = {
    "phase_seconds": 0.2,
    "outcome": "SUCCEEDED",
    "fail_phase": "BUILD",
    "log_lines": [],
    "exported": {},
    "throttle": {},
    "outcome_by_environment": {},
    "exported_by_environment": {},
}

# Phase order from the CodeBuild API reference (BuildPhase.phaseType).
PHASES = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
]
BUILDSPEC_PHASE = {"INSTALL": "install", "PRE_BUILD": "pre_build", "BUILD": "build", "POST_BUILD": "post_build"}

BUILDS: dict[str, "SandboxBuild"] = {}
TOKENS: dict[str, str] = {}
REQUESTS: list[dict[str, Any]] = []
BUILD_NUMBERS: dict[str, int] = {}


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d %H:%M:%S.%f")


class SandboxBuild:
    def __init__(self, backend: Any, project: Any, params: dict[str, Any], config: dict[str, Any]) -> None:
        name = project.project_metadata["name"]
        region, account = backend.region_name, backend.account_id
        stream = str(uuid.uuid4())
        self.id = f"{name}:{stream}"
        self.params = params
        self.config = config
        self.region, self.account = region, account
        self.stop_requested = threading.Event()
        self.group = f"/aws/codebuild/{name}"
        self.stream = stream
        BUILD_NUMBERS[name] = BUILD_NUMBERS.get(name, 0) + 1
        buildspec_text = params.get("buildspecOverride") or project.project_metadata.get("source", {}).get("buildspec") or ""
        try:
            self.buildspec = yaml.safe_load(buildspec_text) if buildspec_text else {}
        except yaml.YAMLError:
            self.buildspec = {}
        environment = copy.deepcopy(project.project_metadata.get("environment") or {})
        variables = {v["name"]: v for v in environment.get("environmentVariables", [])}
        for v in params.get("environmentVariablesOverride") or []:
            variables[v["name"]] = {"name": v["name"], "value": v["value"], "type": v.get("type", "PLAINTEXT")}
        environment["environmentVariables"] = list(variables.values())
        if params.get("privilegedModeOverride") is not None:
            environment["privilegedMode"] = params["privilegedModeOverride"]
        # StartBuild's environment overrides replace the project's for this
        # build only (the API reference's computeTypeOverride,
        # environmentTypeOverride and imageOverride).
        for key, field in (("computeTypeOverride", "computeType"), ("environmentTypeOverride", "type"), ("imageOverride", "image")):
            if params.get(key):
                environment[field] = params[key]
        # A build on another environment type (a native ARM build) can be
        # given an outcome and exports of its own, as a real ARM machine
        # would build and push its own image.
        for key in ("outcome", "exported"):
            by_type = config.get(f"{key}_by_environment") or {}
            if environment.get("type") in by_type:
                self.config[key] = by_type[environment["type"]]
        source = copy.deepcopy(project.project_metadata.get("source") or {})
        if buildspec_text:
            source["buildspec"] = buildspec_text
        now = time.time()
        self.data: dict[str, Any] = {
            "id": self.id,
            "arn": f"arn:aws:codebuild:{region}:{account}:build/{self.id}",
            "buildNumber": BUILD_NUMBERS[name],
            "startTime": now,
            "currentPhase": "QUEUED",
            "buildStatus": "IN_PROGRESS",
            "sourceVersion": params.get("sourceVersion") or project.project_metadata.get("sourceVersion") or "",
            "projectName": name,
            "phases": [
                {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now, "durationInSeconds": 0},
                {"phaseType": "QUEUED", "startTime": now},
            ],
            "source": source,
            "environment": environment,
            "serviceRole": project.project_metadata.get("serviceRole"),
            "logs": {
                "groupName": self.group,
                "streamName": stream,
                "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{self.group}/log-events/{stream}",
                "cloudWatchLogsArn": f"arn:aws:logs:{region}:{account}:log-group:{self.group}:log-stream:{stream}",
            },
            "timeoutInMinutes": params.get("timeoutInMinutesOverride") or project.project_metadata.get("timeoutInMinutes") or 60,
            "queuedTimeoutInMinutes": 480,
            "buildComplete": False,
            "initiator": "fastdeploy-sandbox",
            "exportedEnvironmentVariables": [],
        }
        logs = logs_models.logs_backends[account][region]
        if self.group not in logs.groups:
            logs.create_log_group(self.group, {})
        logs.create_log_stream(self.group, stream)

    # -- state, always under LOCK -------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with LOCK:
            return copy.deepcopy(self.data)

    def log(self, *messages: str) -> None:
        logs = logs_models.logs_backends[self.account][self.region]
        ms = int(time.time() * 1000)
        logs.put_log_events(self.group, self.stream, [{"timestamp": ms, "message": m + "\n"} for m in messages])

    def _finish_phase(self, status: str, contexts: list[dict[str, str]] | None = None) -> None:
        phase = self.data["phases"][-1]
        now = time.time()
        phase["phaseStatus"] = status
        phase["endTime"] = now
        phase["durationInSeconds"] = max(0, int(round(now - phase["startTime"])))
        phase["contexts"] = contexts or [{"statusCode": "", "message": ""}]
        self.log(f"[Container] {_stamp()} Phase complete: {phase['phaseType']} State: {status}")
        ctx = phase["contexts"][0]
        self.log(f"[Container] {_stamp()} Phase context status code: {ctx['statusCode']} Message: {ctx['message']}")

    def _enter(self, phase: str) -> None:
        self.data["phases"].append({"phaseType": phase, "startTime": time.time()})
        self.data["currentPhase"] = phase
        if phase != "COMPLETED":
            self.log(f"[Container] {_stamp()} Entering phase {phase}")

    def _complete(self, status: str) -> None:
        exported = self.buildspec.get("env", {}).get("exported-variables", []) if isinstance(self.buildspec, dict) else []
        self.data["exportedEnvironmentVariables"] = [
            {"name": n, "value": str(self.config["exported"].get(n, ""))} for n in exported
        ]
        self._enter("COMPLETED")
        self.data["buildStatus"] = status
        self.data["buildComplete"] = True
        self.data["endTime"] = time.time()

    def _commands(self, phase: str) -> list[str]:
        key = BUILDSPEC_PHASE.get(phase)
        if not key or not isinstance(self.buildspec, dict):
            return []
        return list(((self.buildspec.get("phases") or {}).get(key) or {}).get("commands") or [])

    # -- the run ------------------------------------------------------------

    def run(self) -> None:
        step = float(self.config["phase_seconds"])
        outcome = self.config["outcome"]
        fail_phase = self.config["fail_phase"]
        final = "SUCCEEDED"
        # Phases after a failed one still run up to FINALIZING, as CodeBuild's
        # post_build does; a timeout or stop skips straight to FINALIZING.
        skip_to_finalizing = False
        for phase in PHASES[1:-1]:
            if phase != "QUEUED":
                with LOCK:
                    if skip_to_finalizing and phase != "FINALIZING":
                        continue
                    self._enter(phase)
                    for cmd in self._commands(phase):
                        self.log(f"[Container] {_stamp()} Running command {cmd}")
                    if phase == "BUILD":
                        for line in self.config["log_lines"]:
                            self.log(line)
            if skip_to_finalizing:
                time.sleep(step)
                with LOCK:
                    self._finish_phase("SUCCEEDED")
                continue
            hang = outcome == "HANG" and phase == fail_phase
            stopped = self.stop_requested.wait(600 if hang else step)
            with LOCK:
                if stopped:
                    self._finish_phase("STOPPED", [{"statusCode": "BUILD_STOPPED", "message": "Build was stopped"}])
                    final, skip_to_finalizing = "STOPPED", True
                    continue
                if phase == fail_phase and outcome == "FAILED":
                    cmd = (self._commands(phase) or ["the build"])[0]
                    self.log(f"[Container] {_stamp()} Command did not exit successfully {cmd} exit status 1")
                    self._finish_phase(
                        "FAILED",
                        [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": f"Error while executing command: {cmd}. Reason: exit status 1"}],
                    )
                    final = "FAILED"
                elif phase == fail_phase and outcome in ("TIMED_OUT", "HANG"):
                    self._finish_phase("TIMED_OUT", [{"statusCode": "BUILD_TIMED_OUT", "message": "Build has timed out. "}])
                    final, skip_to_finalizing = "TIMED_OUT", True
                else:
                    self._finish_phase("SUCCEEDED")
        with LOCK:
            self._complete(final)


# ---------------------------------------------------------------------------
# The patched operations.


def _projects(self: Any) -> dict[str, Any]:
    return self.codebuild_backend.codebuild_projects


def start_build(self: Any) -> str:
    name = self._get_param("projectName")
    if not name:
        raise InvalidInputException("Project name is required")
    backend = self.codebuild_backend
    if name not in backend.codebuild_projects:
        raise ResourceNotFoundException(f"Project cannot be found: arn:aws:codebuild:{self.region}:{self.current_account}:project/{name}")
    params = {k: v for k, v in json.loads(self.body or "{}").items() if k != "idempotencyToken"}
    token = self._get_param("idempotencyToken")
    with LOCK:
        if token and token in TOKENS:
            existing = BUILDS[TOKENS[token]]
            if existing.params != params:
                raise InvalidInputException("Idempotent parameter mismatch: the idempotencyToken was used with different parameters")
            return json.dumps({"build": existing.snapshot()})
        build = SandboxBuild(backend, backend.codebuild_projects[name], params, copy.deepcopy(CONFIG))
        BUILDS[build.id] = build
        if token:
            TOKENS[token] = build.id
        backend.build_history.setdefault(name, []).append(build.id)
    threading.Thread(target=build.run, name=f"sandbox-build-{build.id}", daemon=True).start()
    return json.dumps({"build": build.snapshot()})


_orig_batch_get_builds = cb_responses.CodeBuildResponse.batch_get_builds
_orig_stop_build = cb_responses.CodeBuildResponse.stop_build


def batch_get_builds(self: Any) -> str:
    ids = self._get_param("ids") or []
    for build_id in ids:
        if ":" not in build_id:
            raise InvalidInputException("Invalid build ID provided")
    builds, not_found = [], []
    for build_id in ids:
        b = BUILDS.get(build_id)
        if b is not None:
            builds.append(b.snapshot())
        else:
            not_found.append(build_id)
    return json.dumps({"builds": builds, "buildsNotFound": not_found})


def stop_build(self: Any) -> str:
    build_id = self._get_param("id")
    b = BUILDS.get(build_id)
    if b is None:
        return _orig_stop_build(self)
    b.stop_requested.set()
    # StopBuild answers at once; the build reaches STOPPED shortly after.
    return json.dumps({"build": b.snapshot()})


cb_responses.CodeBuildResponse.start_build = start_build
cb_responses.CodeBuildResponse.batch_get_builds = batch_get_builds
cb_responses.CodeBuildResponse.stop_build = stop_build
_ = (cb_models, _orig_batch_get_builds)


# ---------------------------------------------------------------------------
# Throttling, request recording and the control endpoint. Chained like the
# other extensions: each takes only its own prefix and passes the rest on.

PREFIX = "/_sandbox/codebuild/"
TARGETS = {"CodeBuild_20161006.": "codebuild", "Logs_20140328.": "logs"}
RECORDED = {"StartBuild", "BatchGetBuilds", "StopBuild"}
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _control(command: str, body: dict[str, Any]) -> Any:
    with LOCK:
        if command == "config":
            for key in ("phase_seconds", "outcome", "fail_phase", "log_lines", "exported", "throttle", "outcome_by_environment", "exported_by_environment"):
                if key in body:
                    CONFIG[key] = body[key]
            return dict(CONFIG)
        if command == "requests":
            return list(REQUESTS)
        if command == "builds":
            return [b.snapshot() for b in BUILDS.values()]
        raise KeyError(command)


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix = next((p for p in TARGETS if target.startswith(p)), None)
    if prefix is not None:
        operation = target[len(prefix):]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        with LOCK:
            if operation in RECORDED:
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                REQUESTS.append({"operation": operation, "body": body})
            left = int(CONFIG["throttle"].get(operation, 0))
            if left > 0:
                CONFIG["throttle"][operation] = left - 1
                return json_response(
                    start_response,
                    "400 Bad Request",
                    {"__type": "ThrottlingException", "message": "Rate exceeded"},
                    "application/x-amz-json-1.1",
                )
    return _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
