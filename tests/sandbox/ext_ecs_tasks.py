"""One-off ECS tasks (RunTask) that move through the task lifecycle, as the ECS documentation describes.

Stock moto's RunTask creates tasks that are RUNNING at once and never stop.
This extension, loaded after ext_ecs.py (module order is by name), chains
what ext_ecs patched and turns every task started by RunTask into a task
that lives through the documented lifecycle
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html).
Tasks of service deployments (ext_ecs's SandboxTask) are left exactly as
ext_ecs makes them.

Progress is computed lazily from wall-clock time on every ECS read
(DescribeTasks, ListTasks, RunTask, StopTask), one transition every
`step_seconds` (by default ext_ecs's, set with /_sandbox/ecs/config). With
step N counted from RunTask (N=0), an awsvpc (Fargate) task that succeeds:

  N=0  PROVISIONING  desiredStatus RUNNING; createdAt; ENI attachment PRECREATED;
                     containers PENDING. (Not awsvpc: starts in PENDING.)
  N=1  PENDING       attachment ATTACHED; connectivity CONNECTED, connectivityAt.
  N=2  ACTIVATING    pullStartedAt (ECS pulls images in this state).
  N=3  RUNNING       pullStoppedAt, startedAt; containers RUNNING; log streams
                     created and the first log lines written.
  N=3+k              (k < run_steps) more log lines each step.
  N=3+run_steps      the essential container exits: its lastStatus STOPPED and
                     exitCode; task desiredStatus STOPPED, lastStatus DEACTIVATING,
                     stopCode EssentialContainerExited, stoppedReason
                     "Essential container in task exited".
                     executionStoppedAt once no container runs.
  next               STOPPING, stoppingAt.
  next               DEPROVISIONING (awsvpc only), attachment DETACHING.
  next               STOPPED, stoppedAt; attachment DELETED, the ENI is deleted
                     from moto's EC2; an EC2 task frees its container instance.
`version` grows by one with every change.

A task may stay longer in a start-up status: `provisioning_steps` (awsvpc:
ECS creating and attaching the ENI) and `pending_steps` (waiting for
resources, the agent, the image) are how many steps it spends in
PROVISIONING and PENDING (default 1 each, as above); null keeps it there
until StopTask, as a task whose ENI cannot be attached or that finds no
resources stays (the task lifecycle: "A task stays in the pending state until
there are available resources for the task"). GUESS: ECS gives such a task
no time limit of its own; the sandbox never fails it by itself. The counts
in force at RunTask apply to that task.

What the task does comes from the task definition and the RunTask overrides:
- Command: `containerOverrides[].command` for the container, else the task
  definition's `command`. Joined with spaces, the first match of the regex
  `\\bexit\\s+(\\d+)` gives the exit code (modulo 256), so
  ["sh","-c","python manage.py migrate && exit 3"] and ["exit","3"] exit 3;
  without a match the exit code is 0.
- A command containing a hang marker not inside a longer word (`hang_markers`,
  default "sleep-forever", "hang"; "--hang" counts, "changes" does not) never
  exits: a task whose essential containers all hang stays RUNNING until StopTask.
- An image (task definition container) containing a pull-failure marker
  (`pull_fail_markers`, default "cannotpull", substring) fails to start at the
  step that would have made it RUNNING: pullStartedAt but no pullStoppedAt, no
  startedAt, no exit codes; stopCode TaskFailedToStart; stoppedReason and the
  container's reason are
  "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref <image>: <image>: not found"
  (Fargate, platform version 1.4.0) or, for EC2/EXTERNAL tasks,
  "CannotPullContainerError: Error response from daemon: manifest for <image> not found: manifest unknown: manifest unknown".
  The task then goes STOPPING -> DEPROVISIONING (awsvpc) -> STOPPED.
- Logs: for a container with `logConfiguration` logDriver `awslogs`, the
  stream `<awslogs-stream-prefix>/<container name>/<task id>` (without a
  prefix: the container's runtimeId) is created in `awslogs-group` of
  `awslogs-region` (default the task's region) in moto's CloudWatch Logs when
  the task turns RUNNING. A missing group is created when
  `awslogs-create-group` is "true"; otherwise the task fails to start like
  ECS: stopCode TaskFailedToStart, stoppedReason
  "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1"
  (EC2: "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.")
  unless `missing_log_group` is "skip" (then nothing is logged).
  The containers that log are the ones with a command override (or, with no
  command override, the essential containers); other containers get their
  stream but no lines. They write, with the step's timestamp: at RUNNING
  `+ <command>` (shell-quoted, as `sh -x` echoes it) and the first share of
  `log_lines`, then a share of `log_lines` every step (spread over
  `run_steps` steps, so a follower sees them arrive); a non-zero exit writes
  "Error: <command> exited with status N" just before the container stops.
- StopTask on a task that is not stopping yet: at once desiredStatus STOPPED,
  stopCode UserInitiated, stoppedReason = the given reason, or
  "Task stopped by user" without one (lastStatus unchanged in the answer).
  A RUNNING task then goes DEACTIVATING, then STOPPING (stoppingAt; ECS sends
  SIGTERM): a container whose command contains a SIGTERM marker
  (`sigterm_markers`, default "handles-sigterm", matched like hang markers) exits 143
  (128+SIGTERM) one step later; any other container is killed after the stop
  timeout, `stop_timeout_steps` steps later (default 2), with exit code 137
  (128+SIGKILL) -- a shell as PID 1 ignores SIGTERM. executionStoppedAt when
  the last one stops; the step after, DEPROVISIONING (awsvpc), then STOPPED. A task stopped before it ran goes
  STOPPING (containers STOPPED, no exit code) -> DEPROVISIONING -> STOPPED.
  Stopping a task that is already stopping or stopped changes nothing and
  returns it. An unknown task is InvalidParameterException "The referenced
  task was not found.". Service tasks are stopped by moto as before.
- When an essential container exits, the other containers still running are
  stopped the same way (143 with the marker after one step, else 137 after
  `stop_timeout_steps`). Non-essential containers that exit do not stop the task.

RunTask, as the ECS API reference describes it:
- `clientToken` (up to 64 characters in 33-126, else InvalidParameterException):
  a retry in the same cluster with the same token and the same parameters
  (everything in the request but the token) within `client_token_ttl_seconds`
  (24 hours, as documented) returns the same tasks, as they are now, and starts
  nothing. The same token with different parameters is a ConflictException
  whose `resourceIds` are the task ARNs the token started. A failed RunTask
  does not use up its token. (The SDKs send a generated token when none is given.)
- `launchType` together with `capacityProviderStrategy`: InvalidParameterException
  "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
  Neither: the cluster's defaultCapacityProviderStrategy, else EC2.
  A strategy may only name capacity providers associated with the cluster
  (CreateCluster capacityProviders / PutClusterCapacityProviders), else
  InvalidParameterException "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again."
  The provider with the largest base (then weight) is used: FARGATE and
  FARGATE_SPOT give launchType FARGATE and capacityProviderName; others EC2.
- FARGATE needs a task definition with networkMode awsvpc, else ClientException
  "Task definition does not support launch_type FARGATE."; awsvpc needs
  networkConfiguration (InvalidParameterException "Network Configuration must
  be provided when networkMode 'awsvpc' is specified.", as moto words it) with
  subnets ("subnets can not be empty."); subnets and security groups must exist
  in moto's EC2 (InvalidParameterException naming the missing one). The task's
  ENI is created in the first subnet and deleted when the task stops.
- `count` 1 to 10 (InvalidParameterException otherwise).
- `fargate_capacity` "unavailable": a FARGATE RunTask starts no task and
  answers 200 with `failures` [{"reason": "Capacity is unavailable at this
  time. Please try again later or in a different availability zone"}], the
  reason ECS gives when Fargate has no capacity (AWS Knowledge Center
  "ecs-fargate-runtask-capacity"); the failure names no resource `arn`, as in
  RunTask answers recorded in public issue logs (gchq/sleeper#904). It does
  not use up the client token.
- An INACTIVE task definition: ClientException "TaskDefinition is inactive".
- A container override naming no container: InvalidParameterException
  "Override for container named <name> is not a container in the TaskDefinition."
- EC2/EXTERNAL tasks need a registered ACTIVE container instance
  (RegisterContainerInstance); with none, InvalidParameterException "No
  Container Instances were found in your cluster." They are placed as moto
  places them (each instance filled in turn, its CPU/MEMORY/PORTS taken, and
  given back when the task stops; containers without cpu/memory count the
  task-level values shared out). Tasks that find no room are left out and
  RunTask's `failures` name each instance with "RESOURCE:CPU",
  "RESOURCE:MEMORY" or "RESOURCE:PORTS". `ec2_placement` "virtual" places
  EC2/EXTERNAL tasks on no container instance at all (containerInstanceArn
  absent), for tests that do not register one.
- DescribeTasks returns overrides (as sent, with inferenceAcceleratorOverrides),
  group (`family:<family>` unless `group` was given), startedBy, launchType,
  capacityProviderName, platformVersion (as sent; "LATEST" or none on Fargate
  reads "1.4.0", as ECS resolves it), platformFamily (Linux on Fargate),
  attachments (the ENI), availabilityZone (the subnet's), cpu,
  memory, containers (with runtimeId, networkInterfaces, exitCode, reason), and
  a `failures` entry {"arn", "reason": "MISSING"} for every asked-for task it
  does not know.
- ListTasks: startedBy, family and desiredStatus filter one-off tasks; without
  desiredStatus a one-off task is listed only while its desiredStatus is
  RUNNING (the documented default filter). Service tasks are listed as ext_ecs
  lists them.

Control endpoint (POST JSON):
- /_sandbox/ecs-tasks/config {"step_seconds": null | s, "run_steps": 3,
  "stop_timeout_steps": 2, "hang_markers": [..], "sigterm_markers": [..],
  "pull_fail_markers": [..], "log_lines": [..], "missing_log_group":
  "fail" | "skip", "ec2_placement": "instances" | "virtual",
  "client_token_ttl_seconds": 86400, "fargate_capacity": "available" |
  "unavailable", "provisioning_steps": 1 | null, "pending_steps": 1 | null}
  sets what is given ({"reset": true}
  restores the defaults first) and returns the configuration in force.
- /_sandbox/ecs-tasks/calls {} returns {"calls": [...]}: every RunTask and
  StopTask that reached the sandbox, oldest first, each with "action", "at",
  "outcome" ("started", "failures" (RunTask started no task and answered
  only failures), "idempotent", "stopping", "unchanged" or "error"),
  "error" (code: message) when it failed, "taskArns", RunTask's "failures",
  the whole "request", and
  at top level (null when not sent) for RunTask: cluster, clientToken,
  taskDefinition, overrides, networkConfiguration, launchType,
  capacityProviderStrategy, platformVersion, startedBy, group, count, tags;
  for StopTask: cluster, task, reason. {"clear": true} empties the log after
  answering.
- /_sandbox/ecs-tasks/tasks {} returns {"tasks": [...]}: every one-off task's
  taskArn, lastStatus, desiredStatus, phase, nextAt, stopCode, stoppedReason
  and, per container, the plan (essential, hang, exit, sigterm, logs, awslogs
  {region, group, stream}), for debugging a test.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import re
import shlex
import uuid
from typing import Any

import ext_ecs
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import EcsClientException, InvalidParameterException
from moto.logs.models import logs_backends
from moto.moto_server import werkzeug_app
from sandbox_control import handle_control

# One lock with ext_ecs: both read and write the same backend.tasks.
LOCK = ext_ecs.LOCK

DEFAULTS: dict[str, Any] = {
    "step_seconds": None,  # None: ext_ecs's CONFIG["step_seconds"]
    "run_steps": 3,
    "stop_timeout_steps": 2,
    "hang_markers": ["sleep-forever", "hang"],
    "sigterm_markers": ["handles-sigterm"],
    "pull_fail_markers": ["cannotpull"],
    "log_lines": [
        "Operations to perform:",
        "  Apply all migrations: app",
        "Running migrations:",
        "  Applying app.0001_initial... OK",
        "  Applying app.0002_add_index... OK",
    ],
    "missing_log_group": "fail",
    "ec2_placement": "instances",
    "client_token_ttl_seconds": 86400,
    "fargate_capacity": "available",
    "provisioning_steps": 1,
    "pending_steps": 1,
}
CONFIG: dict[str, Any] = copy.deepcopy(DEFAULTS)

CALLS: list[dict[str, Any]] = []
# (account, region, cluster name, token) -> {"params", "arns", "expires"}
TOKENS: dict[tuple[str, str, str, str], dict[str, Any]] = {}
# task ARN -> OneOffTask, every one-off task of every backend.
ONE_OFF: dict[str, "OneOffTask"] = {}

Backend = ecs_models.EC2ContainerServiceBackend
Response = ecs_responses.EC2ContainerServiceResponse

EXIT_RE = re.compile(r"\bexit\s+(\d+)")
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
# RunTask's failure reason when Fargate has no capacity (AWS Knowledge Center,
# "ecs-fargate-runtask-capacity").
NO_FARGATE_CAPACITY = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
FARGATE_PLATFORM_VERSION = "1.4.0"


class ConflictException(ServiceException):
    """RunTask's clientToken reused with different parameters; resourceIds are
    the task ARNs already associated with the token (ECS API reference)."""

    def __init__(self, resource_ids: list[str]) -> None:
        super().__init__(
            "ConflictException",
            "The specified client token has already been used in a RunTask request with different parameters.",
        )
        self.resourceIds = resource_ids


def _step() -> datetime.timedelta:
    seconds = CONFIG["step_seconds"]
    if seconds is None:
        seconds = ext_ecs.CONFIG["step_seconds"]
    return datetime.timedelta(seconds=float(seconds))


def _millis(at: datetime.datetime) -> int:
    return int(at.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def _word_marker(text: str, markers: list[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text) for m in markers)


def _iso(at: datetime.datetime) -> str:
    return at.replace(tzinfo=datetime.timezone.utc).isoformat()


# ---------------------------------------------------------------------------
# The task.


class OneOffTask:
    """A task started by RunTask, shaped like moto's Task for serialisation
    (attributes are the Task shape's members in snake_case)."""

    def __init__(self, backend: Backend, cluster: Any, td: Any, body: dict[str, Any], launch_type: str,
                 capacity_provider: str | None, platform_version: str | None, container_instance_arn: str | None,
                 at: datetime.datetime) -> None:
        self._backend = backend
        self._account_id = backend.account_id
        self.id = uuid.uuid4().hex
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.region_name = cluster.region_name
        if backend.enable_long_arn_for_name(name="taskLongArnFormat"):
            self.task_arn = f"arn:aws:ecs:{self.region_name}:{self._account_id}:task/{cluster.name}/{self.id}"
        else:
            self.task_arn = f"arn:aws:ecs:{self.region_name}:{self._account_id}:task/{self.id}"
        self.task_definition_arn = td.arn
        self.container_instance_arn = container_instance_arn
        self.resource_requirements = _resource_requirements(td)
        self.group = body.get("group") or f"family:{td.family}"
        self.started_by = body.get("startedBy") or None
        self.launch_type = launch_type
        self.capacity_provider_name = capacity_provider
        self.platform_version = platform_version
        self.platform_family = "Linux" if launch_type == "FARGATE" else None
        given = copy.deepcopy(body.get("overrides") or {})
        given.setdefault("containerOverrides", [])
        given.setdefault("inferenceAcceleratorOverrides", [])
        self.overrides = given
        self.tags = copy.deepcopy(body.get("tags") or [])
        self.attachments = _attach_eni(backend, self, body) if td.network_mode == "awsvpc" else []
        self._awsvpc = td.network_mode == "awsvpc"
        self.cpu = td.cpu
        self.memory = td.memory
        self.availability_zone = _availability_zone(backend, self.attachments)
        self.last_status = "PROVISIONING" if self._awsvpc else "PENDING"
        self.desired_status = "RUNNING"
        self.health_status = "UNKNOWN"
        self.enable_execute_command = False
        self.version = 1
        self.created_at = at
        self.connectivity = None
        self.connectivity_at = None
        self.pull_started_at = None
        self.pull_stopped_at = None
        self.started_at = None
        self.stopping_at = None
        self.stopped_at = None
        self.execution_stopped_at = None
        self.stopped_reason = None
        self.stop_code = None

        overrides_by_name = {o.get("name"): o for o in given.get("containerOverrides", [])}
        commanded = {n for n, o in overrides_by_name.items() if o.get("command")}
        eni = _eni_details(self.attachments)
        self.containers: list[dict[str, Any]] = []
        self._plans: list[dict[str, Any]] = []
        for c in td.container_definitions:
            name = c.get("name")
            command = list(overrides_by_name.get(name, {}).get("command") or c.get("command") or [])
            joined = " ".join(str(x) for x in command)
            essential = c.get("essential", True)
            runtime_id = f"{self.id}-{random.randint(10**9, 10**10 - 1)}"
            container: dict[str, Any] = {
                "containerArn": f"arn:aws:ecs:{self.region_name}:{self._account_id}:container/{self.cluster_name}/{self.id}/{uuid.uuid4()}",
                "taskArn": self.task_arn,
                "name": name,
                "image": c.get("image"),
                "runtimeId": runtime_id,
                "lastStatus": "PENDING",
                "networkBindings": [],
                "networkInterfaces": [{"attachmentId": eni["attachmentId"], "privateIpv4Address": eni["privateIPv4Address"]}] if eni else [],
                "healthStatus": "UNKNOWN",
                "cpu": str(c.get("cpu", 0)),
            }
            if c.get("memory") is not None:
                container["memory"] = str(c["memory"])
            if c.get("memoryReservation") is not None:
                container["memoryReservation"] = str(c["memoryReservation"])
            match = EXIT_RE.search(joined)
            self.containers.append(container)
            self._plans.append({
                "name": name,
                "image": str(c.get("image", "")),
                "command": command,
                "essential": essential,
                "hang": _word_marker(joined, CONFIG["hang_markers"]),
                "exit": int(match.group(1)) % 256 if match else 0,
                "sigterm": _word_marker(joined, CONFIG["sigterm_markers"]),
                "talks": (name in commanded) if commanded else essential,
                "log": _log_target(c, self, runtime_id),
                "kill_step": None,
            })
        self._phase = "provisioning" if self._awsvpc else "pending"
        self._next_at: datetime.datetime | None = at + _step()
        self._run_step = 0
        self._stop_step = 0
        self._stop_request: tuple[str, str] | None = None
        # Steps spent in the current start-up status (PROVISIONING, PENDING)
        # and how many it takes (None: until StopTask), fixed at RunTask.
        self._held = 0
        self._hold = {"provisioning": CONFIG["provisioning_steps"], "pending": CONFIG["pending_steps"]}

    # moto's DescribeTasks calls advance() on every task it returns.
    def advance(self) -> None:
        pass

    def public_state(self) -> dict[str, Any]:
        return {
            "taskArn": self.task_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "phase": self._phase,
            "nextAt": _iso(self._next_at) if self._next_at else None,
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "containers": [
                {"name": p["name"], "essential": p["essential"], "hang": p["hang"], "exit": p["exit"], "sigterm": p["sigterm"],
                 "logs": bool(p["talks"]),
                 "awslogs": {"region": p["log"][0], "group": p["log"][1], "stream": p["log"][2]} if p["log"] else None}
                for p in self._plans
            ],
        }


def _eni_details(attachments: list[dict[str, Any]]) -> dict[str, str] | None:
    for a in attachments:
        if a.get("type") == "ElasticNetworkInterface":
            details = {d["name"]: d["value"] for d in a.get("details", [])}
            return {"attachmentId": a["id"], **details}
    return None


def _attach_eni(backend: Backend, task: "OneOffTask", body: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's elastic network interface, created in moto's EC2 in the
    first subnet as ECS does, and its attachment (PRECREATED until PENDING)."""
    conf = body["networkConfiguration"]["awsvpcConfiguration"]
    attachment_id = str(uuid.uuid4())
    eni = ec2_backends[backend.account_id][backend.region_name].create_network_interface(
        subnet=conf["subnets"][0], private_ip_address=None, group_ids=conf.get("securityGroups") or [],
        description=f"arn:aws:ecs:{task.region_name}:{backend.account_id}:attachment/{attachment_id}",
    )
    eni.status = "in-use"
    eni.device_index = 1
    ip = eni.private_ip_address
    dns = getattr(eni, "private_dns_name", None) or f"ip-{ip.replace('.', '-')}.ec2.internal"
    return [{
        "id": attachment_id,
        "type": "ElasticNetworkInterface",
        "status": "PRECREATED",
        "details": [
            {"name": "subnetId", "value": conf["subnets"][0]},
            {"name": "networkInterfaceId", "value": eni.id},
            {"name": "macAddress", "value": eni.mac_address},
            {"name": "privateDnsName", "value": dns},
            {"name": "privateIPv4Address", "value": ip},
        ],
    }]


def _availability_zone(backend: Backend, attachments: list[dict[str, Any]]) -> str | None:
    eni = _eni_details(attachments)
    if not eni or "subnetId" not in eni:
        return None
    try:
        return ec2_backends[backend.account_id][backend.region_name].get_subnet(eni["subnetId"]).availability_zone
    except Exception:  # noqa: BLE001 - the subnet is checked before; never fail a read over it
        return None


def _log_target(c: dict[str, Any], task: OneOffTask, runtime_id: str) -> tuple[str, str, str, bool] | None:
    lc = c.get("logConfiguration") or {}
    if lc.get("logDriver") != "awslogs":
        return None
    opts = lc.get("options") or {}
    group = opts.get("awslogs-group")
    if not group:
        return None
    region = opts.get("awslogs-region") or task.region_name
    prefix = opts.get("awslogs-stream-prefix")
    stream = f"{prefix}/{c.get('name')}/{task.id}" if prefix else runtime_id
    create = str(opts.get("awslogs-create-group", "false")).lower() == "true"
    return region, group, stream, create


def _logs(task: OneOffTask, region: str) -> Any:
    return logs_backends[task._account_id][region]


def _write(task: OneOffTask, plan: dict[str, Any], at: datetime.datetime, messages: list[str]) -> None:
    if not plan["log"] or not messages or not plan.get("stream_ready"):
        return
    region, group, stream, _ = plan["log"]
    try:
        log_stream = _logs(task, region).groups[group].streams[stream]
    except KeyError:  # deleted by the test meanwhile: the agent's writes would fail too
        return
    base = _millis(at)
    log_stream.put_log_events([{"timestamp": base + i, "message": m} for i, m in enumerate(messages)])


def _open_streams(task: OneOffTask) -> str | None:
    """Creates the awslogs streams as the container starts; returns the
    failure reason when a log group is missing and may not be created."""
    for p in task._plans:
        if not p["log"]:
            continue
        region, group, stream, create = p["log"]
        logs = _logs(task, region)
        if group not in logs.groups:
            if create:
                logs.ensure_log_group(group)
            elif CONFIG["missing_log_group"] == "skip":
                continue
            elif task.launch_type == "FARGATE":
                return ("ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
                        "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1")
            else:
                return ("CannotStartContainerError: Error response from daemon: failed to initialize logging driver: "
                        "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.")
        logs.ensure_log_stream(group, stream)
        p["stream_ready"] = True
    return None


def _chunks(lines: list[str], parts: int) -> list[list[str]]:
    parts = max(parts, 1)
    size, extra = divmod(len(lines), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(lines[start:end])
        start = end
    return out


# ---------------------------------------------------------------------------
# The lifecycle, one transition per step.


def _changed(task: OneOffTask, status: str | None = None) -> None:
    if status:
        task.last_status = status
    task.version += 1


def _schedule(task: OneOffTask, at: datetime.datetime) -> None:
    task._next_at = at + _step()


def _stop_container(task: OneOffTask, i: int, exit_code: int | None, reason: str | None = None) -> None:
    c = task.containers[i]
    c["lastStatus"] = "STOPPED"
    if exit_code is not None:
        c["exitCode"] = exit_code
    if reason is not None:
        c["reason"] = reason


def _running(task: OneOffTask) -> list[int]:
    return [i for i, c in enumerate(task.containers) if c["lastStatus"] == "RUNNING"]


def _fail_start(task: OneOffTask, at: datetime.datetime, reason: str, culprit: int | None) -> None:
    task.desired_status = "STOPPED"
    task.stop_code = "TaskFailedToStart"
    task.stopped_reason = reason
    for i in range(len(task.containers)):
        _stop_container(task, i, None, reason if (culprit is None or i == culprit) else None)
    task.stopping_at = at
    task.execution_stopped_at = at
    task._phase = "stopping"
    _changed(task, "STOPPING")
    _schedule(task, at)


def _pull_failure(task: OneOffTask) -> tuple[int, str] | None:
    for i, p in enumerate(task._plans):
        if any(m in p["image"] for m in CONFIG["pull_fail_markers"]):
            image = p["image"]
            if task.launch_type == "FARGATE":
                return i, f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {image}: {image}: not found"
            return i, f"CannotPullContainerError: Error response from daemon: manifest for {image} not found: manifest unknown: manifest unknown"
    return None


def _start_running(task: OneOffTask, at: datetime.datetime) -> None:
    pulled = _pull_failure(task)
    if pulled:
        _fail_start(task, at, pulled[1], pulled[0])
        return
    task.pull_stopped_at = at
    failed = _open_streams(task)
    if failed:
        _fail_start(task, at, failed, None)
        return
    task.started_at = at
    for c in task.containers:
        c["lastStatus"] = "RUNNING"
    task._phase = "running"
    task._run_step = 0
    _changed(task, "RUNNING")
    _run_tick(task, at)


def _run_tick(task: OneOffTask, at: datetime.datetime) -> None:
    """RUNNING step `_run_step`: log lines, then, after run_steps, the exits."""
    steps = max(int(CONFIG["run_steps"]), 1)
    k = task._run_step
    if k < steps:
        share = _chunks(list(CONFIG["log_lines"]), steps)[k]
        for p in task._plans:
            if not p["talks"]:
                continue
            lines = list(share)
            if k == 0 and p["command"]:
                lines.insert(0, "+ " + shlex.join(str(x) for x in p["command"]))
            _write(task, p, at, lines)
        task._run_step += 1
        _schedule(task, at)
        return
    # The commands finish.
    essential_exited = False
    for i, p in enumerate(task._plans):
        if p["hang"] or task.containers[i]["lastStatus"] != "RUNNING":
            continue
        if p["talks"] and p["exit"]:
            _write(task, p, at, [f"Error: {shlex.join(str(x) for x in p['command'])} exited with status {p['exit']}"])
        _stop_container(task, i, p["exit"])
        essential_exited = essential_exited or p["essential"]
    if essential_exited:
        task.desired_status = "STOPPED"
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        task._phase = "deactivating"
        _changed(task, "DEACTIVATING")
        if not _running(task):
            task.execution_stopped_at = at
        _schedule(task, at)
    else:
        # Essential containers hang: the task runs until StopTask.
        task._phase = "running-idle"
        task._next_at = None
        if any(c["lastStatus"] == "STOPPED" for c in task.containers):
            _changed(task)


def _signal(task: OneOffTask) -> None:
    """ECS sends SIGTERM to what still runs; SIGKILL after the stop timeout."""
    for i in _running(task):
        p = task._plans[i]
        p["kill_step"] = 1 if p["sigterm"] else max(int(CONFIG["stop_timeout_steps"]), 1)


def _holds(task: OneOffTask, phase: str, at: datetime.datetime) -> bool:
    """Whether the task stays in its start-up status one more step (or, with
    no step count, until StopTask: no next step is scheduled)."""
    steps = task._hold[phase]
    if steps is None:
        task._next_at = None
        return True
    task._held += 1
    if task._held < max(int(steps), 1):
        _schedule(task, at)
        return True
    task._held = 0
    return False


def _step_task(task: OneOffTask, at: datetime.datetime) -> None:
    phase = task._phase
    if task._stop_request and phase in ("provisioning", "pending", "activating"):
        # Stopped before it ran: nothing was started, no exit codes.
        for i in range(len(task.containers)):
            _stop_container(task, i, None)
        task.stopping_at = at
        task.execution_stopped_at = at
        task._phase = "stopping"
        _changed(task, "STOPPING")
        _schedule(task, at)
        return
    if task._stop_request and phase in ("running", "running-idle"):
        task._phase = "deactivating"
        _changed(task, "DEACTIVATING")
        _schedule(task, at)
        return
    if phase in ("provisioning", "pending") and _holds(task, phase, at):
        return
    if phase == "provisioning":
        for a in task.attachments:
            a["status"] = "ATTACHED"
        task.connectivity, task.connectivity_at = "CONNECTED", at
        task._phase = "pending"
        _changed(task, "PENDING")
        _schedule(task, at)
    elif phase == "pending":
        if task.connectivity is None:
            task.connectivity, task.connectivity_at = "CONNECTED", at
        task.pull_started_at = at
        task._phase = "activating"
        _changed(task, "ACTIVATING")
        _schedule(task, at)
    elif phase == "activating":
        _start_running(task, at)
    elif phase == "running":
        _run_tick(task, at)
    elif phase == "deactivating":
        task.stopping_at = at
        _signal(task)
        task._phase = "stopping"
        task._stop_step = 0
        _changed(task, "STOPPING")
        _schedule(task, at)
    elif phase == "stopping":
        running = _running(task)
        if running:
            task._stop_step += 1
            for i in running:
                p = task._plans[i]
                if p["kill_step"] is not None and task._stop_step >= p["kill_step"]:
                    _stop_container(task, i, 143 if p["sigterm"] else 137)
            if not _running(task):
                task.execution_stopped_at = at
            _changed(task)
            _schedule(task, at)
            return
        if task.execution_stopped_at is None:
            task.execution_stopped_at = at
        if task._awsvpc:
            for a in task.attachments:
                a["status"] = "DETACHING"
            task._phase = "deprovisioning"
            _changed(task, "DEPROVISIONING")
            _schedule(task, at)
        else:
            _finish(task, at)
    elif phase == "deprovisioning":
        _finish(task, at)


def _finish(task: OneOffTask, at: datetime.datetime) -> None:
    task.stopped_at = at
    task._phase = "stopped"
    task._next_at = None
    for a in task.attachments:
        a["status"] = "DELETED"
    eni = _eni_details(task.attachments)
    if eni and eni.get("networkInterfaceId"):
        try:
            ec2_backends[task._account_id][task.region_name].delete_network_interface(eni["networkInterfaceId"])
        except Exception:  # noqa: BLE001 - a test may have deleted it; ECS would not care either
            pass
    backend = task._backend
    if task.container_instance_arn:
        try:
            ci = backend.container_instances[task.cluster_name][task.container_instance_arn.split("/")[-1]]
            backend.update_container_instance_resources(ci, task.resource_requirements, removing=True)
            backend.update_cluster_resources(backend._get_cluster(task.cluster_name), -1, task_state="RUNNING")
        except Exception:  # noqa: BLE001 - the instance may be gone; nothing left to free
            pass
    _changed(task, "STOPPED")


def _advance_all() -> None:
    now = utcnow()
    for task in list(ONE_OFF.values()):
        while task._next_at is not None and task._next_at <= now:
            at = task._next_at
            task._next_at = None
            _step_task(task, at)


# ---------------------------------------------------------------------------
# RunTask.


def _validate_token(token: Any) -> None:
    if not isinstance(token, str) or not 1 <= len(token) <= 64 or any(not 33 <= ord(ch) <= 126 for ch in token):
        raise InvalidParameterException(
            "clientToken must be 1 to 64 characters long, each in the ASCII range 33-126."
        )


def _launch(backend: Backend, cluster: Any, body: dict[str, Any]) -> tuple[str, str | None]:
    launch_type = body.get("launchType")
    strategy = body.get("capacityProviderStrategy")
    if launch_type and strategy:
        raise InvalidParameterException(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
        )
    if launch_type:
        if launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise InvalidParameterException("launch type should be one of [EC2,FARGATE,EXTERNAL]")
        return launch_type, None
    if not strategy:
        strategy = cluster.default_capacity_provider_strategy or []
    if not strategy:
        return "EC2", None
    associated = [p.split("/")[-1] for p in (cluster.capacity_providers or [])]
    for item in strategy:
        if item.get("capacityProvider", "").split("/")[-1] not in associated:
            raise InvalidParameterException(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. "
                "Associate the capacity provider with the cluster or specify a valid capacity provider and try again."
            )
    chosen = max(strategy, key=lambda i: (int(i.get("base", 0) or 0), int(i.get("weight", 0) or 0)))["capacityProvider"].split("/")[-1]
    return ("FARGATE" if chosen in FARGATE_PROVIDERS else "EC2"), chosen


def _check_network(backend: Backend, body: dict[str, Any]) -> None:
    conf = (body.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    for subnet in conf.get("subnets") or []:
        try:
            ec2.get_subnet(subnet)
        except Exception:  # noqa: BLE001 - moto's InvalidSubnetIdError
            raise InvalidParameterException(
                f"Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' does not exist (ErrorCode: InvalidSubnetID.NotFound)"
            )
    for group in conf.get("securityGroups") or []:
        if ec2.get_security_group_from_id(group) is None:
            raise InvalidParameterException(
                f"Error retrieving security group information for [{group}]: The security group '{group}' does not exist (ErrorCode: InvalidGroup.NotFound)"
            )


def _resource_requirements(task_definition: Any) -> dict[str, Any]:
    """moto's placement arithmetic, which fails on containers without
    memory/cpu (allowed when the task definition sets them at task level):
    those count the task-level value shared out, else 0."""
    defs = task_definition.container_definitions
    share_cpu = int(task_definition.cpu or 0) // max(len(defs), 1)
    share_mem = int(task_definition.memory or 0) // max(len(defs), 1)
    patched = []
    for c in defs:
        c = dict(c)
        if c.get("cpu", c.get("Cpu")) is None:
            c["cpu"] = share_cpu
        if all(c.get(k) is None for k in ("memory", "memoryReservation", "Memory", "MemoryReservation")):
            c["memory"] = share_mem
        patched.append(c)
    shim = copy.copy(task_definition)
    shim.container_definitions = patched
    return Backend._calculate_task_resource_requirements(shim)


def _shortfall(instance: Any, needs: dict[str, Any]) -> str:
    remaining = {r.get("name"): r for r in instance.remaining_resources}
    if needs["CPU"] > remaining.get("CPU", {}).get("integerValue", 0):
        return "RESOURCE:CPU"
    if needs["MEMORY"] > remaining.get("MEMORY", {}).get("integerValue", 0):
        return "RESOURCE:MEMORY"
    return "RESOURCE:PORTS"


def _place(backend: Backend, cluster: Any, td: Any, count: int, launch_type: str) -> tuple[list[str | None], list[dict[str, str]]]:
    """Container instances for `count` tasks, as moto places them (each
    instance filled in turn); Fargate and "virtual" EC2 need none. Returns the
    placements and RunTask failures for the tasks that found no room."""
    if launch_type == "FARGATE" or CONFIG["ec2_placement"] == "virtual":
        return [None] * count, []
    instances = [ci for ci in backend.container_instances.get(cluster.name, {}).values() if ci.status == "ACTIVE"]
    if not instances:
        raise InvalidParameterException("No Container Instances were found in your cluster.")
    needs = _resource_requirements(td)
    placed: list[str | None] = []
    for ci in instances:
        while len(placed) < count and backend._can_be_placed(ci, needs):
            backend.update_container_instance_resources(ci, needs)
            backend.update_cluster_resources(cluster, 1)
            placed.append(ci.container_instance_arn)
    failures = []
    if len(placed) < count:
        failures = [{"arn": ci.container_instance_arn, "reason": _shortfall(ci, needs)} for ci in instances]
    return placed, failures


def run_one_off(backend: Backend, body: dict[str, Any], entry: dict[str, Any]) -> tuple[list[OneOffTask], list[dict[str, str]]]:
    with LOCK:
        _advance_all()
        cluster = backend._get_cluster(body.get("cluster") or "default")
        token = body.get("clientToken")
        params = json.dumps({k: v for k, v in body.items() if k != "clientToken"}, sort_keys=True)
        key = None
        now = utcnow()
        if token is not None:
            _validate_token(token)
            key = (backend.account_id, backend.region_name, cluster.name, token)
            hit = TOKENS.get(key)
            if hit and hit["expires"] > now:
                if hit["params"] != params:
                    raise ConflictException(list(hit["arns"]))
                entry["outcome"] = "idempotent"
                entry["taskArns"] = list(hit["arns"])
                return [ONE_OFF[a] for a in hit["arns"] if a in ONE_OFF], []
        td = backend.describe_task_definition(body.get("taskDefinition") or "")
        if td.status != "ACTIVE":
            raise EcsClientException("TaskDefinition is inactive")
        names = {c.get("name") for c in td.container_definitions}
        for o in (body.get("overrides") or {}).get("containerOverrides") or []:
            if o.get("name") not in names:
                raise InvalidParameterException(f"Override for container named {o.get('name')} is not a container in the TaskDefinition.")
        launch_type, provider = _launch(backend, cluster, body)
        if launch_type == "FARGATE" and td.network_mode != "awsvpc":
            raise EcsClientException("Task definition does not support launch_type FARGATE.")
        if td.network_mode == "awsvpc":
            conf = (body.get("networkConfiguration") or {}).get("awsvpcConfiguration")
            if not conf:
                raise InvalidParameterException("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
            if not conf.get("subnets"):
                raise InvalidParameterException("subnets can not be empty.")
            _check_network(backend, body)
        if launch_type == "FARGATE":
            asked = body.get("platformVersion")
            platform_version = FARGATE_PLATFORM_VERSION if asked in (None, "LATEST") else asked
        else:
            platform_version = body.get("platformVersion")
        count = int(body.get("count") or 1)
        if not 1 <= count <= 10:
            raise InvalidParameterException("count must be between 1 and 10.")
        if launch_type == "FARGATE" and CONFIG["fargate_capacity"] == "unavailable":
            # Answered 200 with no task; the failure names no resource.
            placements, failures = [], [{"reason": NO_FARGATE_CAPACITY}]
        else:
            placements, failures = _place(backend, cluster, td, count, launch_type)
        at = utcnow()
        tasks = []
        for ci_arn in placements:
            t = OneOffTask(backend, cluster, td, body, launch_type, provider, platform_version, ci_arn, at)
            backend.tasks.setdefault(cluster.name, {})[t.task_arn] = t
            ONE_OFF[t.task_arn] = t
            tasks.append(t)
        entry["failures"] = failures
        entry["outcome"] = "started" if tasks else "failures"
        entry["taskArns"] = [t.task_arn for t in tasks]
        if key is not None and tasks:
            TOKENS[key] = {
                "params": params,
                "arns": [t.task_arn for t in tasks],
                "expires": now + datetime.timedelta(seconds=float(CONFIG["client_token_ttl_seconds"])),
            }
        return tasks, failures


# ---------------------------------------------------------------------------
# Backend patches, chained over ext_ecs's.

_prev_describe_tasks = Backend.describe_tasks
_prev_list_tasks = Backend.list_tasks
_prev_stop_task = Backend.stop_task


def describe_tasks(self: Backend, cluster_str: str, tasks: list[str]) -> Any:
    with LOCK:
        _advance_all()
        return _prev_describe_tasks(self, cluster_str, tasks)


def list_tasks(self: Backend, cluster_str: str | None = None, container_instance: str | None = None, family: str | None = None,
               started_by: str | None = None, service_name: str | None = None, desiredStatus: str | None = None) -> Any:
    with LOCK:
        _advance_all()
        tasks = _prev_list_tasks(self, cluster_str, container_instance, family, started_by, service_name, desiredStatus)
        if desiredStatus is None:
            tasks = [t for t in tasks if not (isinstance(t, OneOffTask) and t.desired_status != "RUNNING")]
        return tasks


def stop_task(self: Backend, cluster_str: str, task_str: str, reason: str | None) -> Any:
    with LOCK:
        _advance_all()
        cluster = self._get_cluster(cluster_str or "default")
        task_id = (task_str or "").split("/")[-1]
        found = None
        for arn, t in self.tasks.get(cluster.name, {}).items():
            if task_id and arn.split("/")[-1] == task_id:
                found = t
                break
        if found is None:
            raise InvalidParameterException("The referenced task was not found.")
        if not isinstance(found, OneOffTask):
            return _prev_stop_task(self, cluster_str, task_str, reason)
        if found.desired_status == "STOPPED" or found._stop_request:
            return found
        found._stop_request = ("UserInitiated", reason or "Task stopped by user")
        found.desired_status = "STOPPED"
        found.stop_code, found.stopped_reason = found._stop_request
        found.version += 1
        if found._next_at is None:
            found._next_at = utcnow() + _step()
        return found


Backend.describe_tasks = describe_tasks
Backend.list_tasks = list_tasks
Backend.stop_task = stop_task


# ---------------------------------------------------------------------------
# Responses: RunTask reads every parameter (clientToken, capacityProviderStrategy
# are lost on moto's way); the call log; DescribeTasks failures.

RUN_TASK_FIELDS = ("cluster", "clientToken", "taskDefinition", "overrides", "networkConfiguration", "launchType",
                   "capacityProviderStrategy", "platformVersion", "startedBy", "group", "count", "tags")
STOP_TASK_FIELDS = ("cluster", "task", "reason")


def _body(self: Response) -> dict[str, Any]:
    raw = self.body
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        body = json.loads(raw or "{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def _record(action: str, body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    entry: dict[str, Any] = {"action": action, "at": _iso(utcnow()), "outcome": None, "taskArns": []}
    for f in fields:
        entry[f] = copy.deepcopy(body.get(f))
    entry["request"] = copy.deepcopy(body)
    with LOCK:
        CALLS.append(entry)
    return entry


def _failed(entry: dict[str, Any], e: Exception) -> None:
    entry["outcome"] = "error"
    entry["error"] = f"{getattr(e, 'code', type(e).__name__)}: {getattr(e, 'message', str(e))}"


def _run_task_response(self: Response) -> ActionResult:
    body = _body(self)
    entry = _record("RunTask", body, RUN_TASK_FIELDS)
    try:
        tasks, failures = run_one_off(self.ecs_backend, body, entry)
    except Exception as e:
        _failed(entry, e)
        raise
    return ActionResult({"tasks": tasks, "failures": failures})


_prev_stop_task_response = Response.stop_task


def _stop_task_response(self: Response) -> ActionResult:
    body = _body(self)
    entry = _record("StopTask", body, STOP_TASK_FIELDS)
    try:
        with LOCK:
            before = None
            for t in ONE_OFF.values():
                if body.get("task") and t.task_arn.split("/")[-1] == str(body["task"]).split("/")[-1]:
                    before = t.desired_status == "STOPPED" or bool(t._stop_request)
            result = _prev_stop_task_response(self)
    except Exception as e:
        _failed(entry, e)
        raise
    task = result.result.get("task") if isinstance(result.result, dict) else None
    entry["taskArns"] = [task.task_arn] if task is not None else []
    entry["outcome"] = "unchanged" if before else "stopping"
    return result


_prev_describe_tasks_response = Response.describe_tasks


def _describe_tasks_response(self: Response) -> ActionResult:
    result = _prev_describe_tasks_response(self)
    out = result.result
    if isinstance(out, dict):
        known = set()
        for t in out.get("tasks", []):
            known.add(t.task_arn)
            known.add(t.task_arn.split("/")[-1])
        out["failures"] = [{"arn": a, "reason": "MISSING"} for a in self._get_param("tasks", []) if a not in known and a.split("/")[-1] not in known]
    return result


Response.run_task = _run_task_response
Response.stop_task = _stop_task_response
Response.describe_tasks = _describe_tasks_response


# ---------------------------------------------------------------------------
# Control endpoint: /_sandbox/ecs-tasks/<command>.

PREFIX = "/_sandbox/ecs-tasks/"
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            if body.get("reset"):
                CONFIG.clear()
                CONFIG.update(copy.deepcopy(DEFAULTS))
            for key, value in body.items():
                if key == "reset":
                    continue
                if key not in DEFAULTS:
                    raise KeyError(key)
                if key == "missing_log_group" and value not in ("fail", "skip"):
                    raise ValueError("missing_log_group is fail or skip")
                if key == "ec2_placement" and value not in ("instances", "virtual"):
                    raise ValueError("ec2_placement is instances or virtual")
                if key == "fargate_capacity" and value not in ("available", "unavailable"):
                    raise ValueError("fargate_capacity is available or unavailable")
                if key in ("provisioning_steps", "pending_steps") and value is not None and int(value) < 1:
                    raise ValueError(f"{key} is a number of steps (1 or more) or null")
                CONFIG[key] = value
            return copy.deepcopy(CONFIG)
        if command == "calls":
            out = {"calls": copy.deepcopy(CALLS)}
            if body.get("clear"):
                CALLS.clear()
            return out
        if command == "tasks":
            _advance_all()
            return {"tasks": [t.public_state() for t in ONE_OFF.values()]}
        raise KeyError(command)


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    return answered if answered is not None else _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
