"""ECS deployments that move through their states, as the ECS documentation describes.

Stock moto stores services but never rolls anything out. This extension
patches moto's ECS backend so that:

- UpdateService with a new task definition (or forceNewDeployment) starts a
  new PRIMARY deployment (rolloutState IN_PROGRESS), turns the old one ACTIVE
  and records a service deployment (ListServiceDeployments,
  DescribeServiceDeployments) whose ARN is the service's
  currentServiceDeployment.
- Progress is computed lazily from wall-clock time on every read, one step
  every `step_seconds` (no background thread): tasks start, run, the old
  deployment drains, the service reaches a steady state and the deployment
  completes (rolloutState COMPLETED, service deployment SUCCESSFUL).
- An image containing a failure marker ("crashloop" by default) starts tasks
  that stop with "Essential container in task exited" and exit code 1;
  failedTasks grows; with the deployment circuit breaker on, it triggers at
  the documented threshold (half the desired count, at least 3, at most 200),
  the deployment turns FAILED and, with rollback on, ECS rolls back to the
  previous revision (a new PRIMARY deployment that completes; the service
  deployment ends ROLLBACK_SUCCESSFUL). Without the circuit breaker the
  deployment keeps failing until someone stops it.
- An image containing a hang marker ("hang" by default) never gets healthy.
- StopServiceDeployment (stopType ROLLBACK) rolls back to the source revision.
- ListTasks(desiredStatus=STOPPED, serviceName=...) and DescribeTasks show
  the stopped tasks with stoppedReason and container exit codes.
- ListTaskDefinitions honours sort, maxResults and nextToken.

Control endpoint (POST JSON):
- /_sandbox/ecs/config {"step_seconds": 0.2, "fail_markers": [..], "hang_markers": [..]}
  returns the configuration in force.
- /_sandbox/ecs/service-status {"cluster": c, "service": s, "status": "DRAINING", "region": r}
  sets a service's status (DRAINING/INACTIVE cannot be reached otherwise).
"""

from __future__ import annotations

import datetime
import logging
import json
import math
import threading
import uuid
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.moto_server import werkzeug_app
from sandbox_control import handle_control

CONFIG: dict[str, Any] = {
    "step_seconds": 1.0,
    "fail_markers": ["crashloop"],
    "hang_markers": ["hang"],
}
LOCK = threading.RLock()
# One line per request drowns the test output; errors still show.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

Backend = ecs_models.EC2ContainerServiceBackend
Service = ecs_models.Service

IN_PROGRESS_STATES = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")


class ServiceDeploymentNotFoundException(ServiceException):
    def __init__(self, arn: str) -> None:
        super().__init__("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")


class ConflictException(ServiceException):
    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message)


def _now() -> datetime.datetime:
    return utcnow()


def _step() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(CONFIG["step_seconds"]))


def _short_id() -> str:
    return uuid.uuid4().hex[:22]


def _deployment_id() -> str:
    return f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"


# ---------------------------------------------------------------------------
# Per-service sandbox state, kept on the moto Service object.


class SandboxTask:
    """A task of a service deployment, shaped like moto's Task for serialisation."""

    def __init__(self, backend: Backend, service: Service, task_definition_arn: str, deployment_id: str, at: datetime.datetime):
        self.id = uuid.uuid4().hex
        self.cluster_name = service.cluster_name
        self.cluster_arn = service.cluster_arn
        self.region_name = service.region_name
        self.task_arn = f"arn:aws:ecs:{service.region_name}:{backend.account_id}:task/{service.cluster_name}/{self.id}"
        self.task_definition_arn = task_definition_arn
        self.container_instance_arn = None
        self.group = f"service:{service.name}"
        self.started_by = deployment_id
        self.launch_type = service.launch_type
        self.last_status = "PENDING"
        self.desired_status = "RUNNING"
        self.created_at = at
        self.started_at = None
        self.stopped_at = None
        self.stopping_at = None
        self.stopped_reason = None
        self.stop_code = None
        self.tags: list[dict[str, str]] = []
        self.overrides: dict[str, Any] = {}
        self.attachments: list[Any] = []
        task_def = backend.describe_task_definition(task_definition_arn)
        self.containers = [
            {
                "containerArn": f"arn:aws:ecs:{service.region_name}:{backend.account_id}:container/{service.cluster_name}/{self.id}/{uuid.uuid4()}",
                "taskArn": self.task_arn,
                "name": c.get("name"),
                "image": c.get("image"),
                "lastStatus": "PENDING",
                "essential": c.get("essential", True),
            }
            for c in task_def.container_definitions
        ]

    def advance(self) -> None:
        pass

    def run(self, at: datetime.datetime) -> None:
        self.last_status = "RUNNING"
        self.started_at = at
        for c in self.containers:
            c["lastStatus"] = "RUNNING"

    def stop(self, at: datetime.datetime, reason: str, exit_code: int | None, code: str) -> None:
        self.last_status = "STOPPED"
        self.desired_status = "STOPPED"
        self.stopping_at = at
        self.stopped_at = at
        self.stopped_reason = reason
        self.stop_code = code
        for c in self.containers:
            c["lastStatus"] = "STOPPED"
            if exit_code is not None:
                c["exitCode"] = exit_code
                c["reason"] = None


def _state(service: Service) -> dict[str, Any]:
    st = getattr(service, "_sandbox", None)
    if st is None:
        st = {"deployments": [], "revisions": {}, "next_revision": 1, "tasks": {}}
        service._sandbox = st
    return st


def _revision_arn(backend: Backend, service: Service, task_definition_arn: str) -> str:
    st = _state(service)
    rev = st["revisions"].get(task_definition_arn)
    if rev is None:
        rev = st["next_revision"]
        st["next_revision"] += 1
        st["revisions"][task_definition_arn] = rev
    return f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-revision/{service.cluster_name}/{service.name}/{rev}"


def _revision_summary(backend: Backend, service: Service, task_definition_arn: str, requested: int) -> dict[str, Any]:
    return {
        "arn": _revision_arn(backend, service, task_definition_arn),
        "requestedTaskCount": requested,
        "runningTaskCount": 0,
        "pendingTaskCount": 0,
        "_taskDefinition": task_definition_arn,
    }


def _event(service: Service, at: datetime.datetime, message: str) -> None:
    # DescribeServices returns events newest first.
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": at, "message": f"(service {service.name}) {message}"})
    del service.events[100:]


def _deployment_config(service: Service) -> dict[str, Any]:
    dc = getattr(service, "deployment_configuration", None) or {}
    if "deploymentCircuitBreaker" not in dc:
        dc["deploymentCircuitBreaker"] = {"enable": False, "rollback": False}
    dc.setdefault("maximumPercent", 200)
    dc.setdefault("minimumHealthyPercent", 100)
    dc.setdefault("strategy", "ROLLING")
    service.deployment_configuration = dc
    return dc


def _marker(task_definition_arn: str, backend: Backend, key: str) -> bool:
    try:
        td = backend.describe_task_definition(task_definition_arn)
    except Exception:  # noqa: BLE001 - a deregistered or unknown revision simply has no marker
        return False
    images = [str(c.get("image", "")) for c in td.container_definitions]
    return any(m in image for m in CONFIG[key] for image in images)


def _threshold(desired: int) -> int:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
    return min(max(3, math.ceil(desired * 0.5)), 200)


def _new_deployment(service: Service, task_definition_arn: str, at: datetime.datetime) -> dict[str, Any]:
    for d in service.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = at
    d = {
        "id": _deployment_id(),
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": at,
        "updatedAt": at,
        "launchType": service.launch_type,
        "platformFamily": "FARGATE" if service.launch_type == "FARGATE" else "EC2",
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment in progress.",
    }
    d["rolloutStateReason"] = f"ECS deployment {d['id']} in progress."
    service.deployments.insert(0, d)
    service.task_definition = task_definition_arn
    return d


def _start_service_deployment(backend: Backend, service: Service, target_td: str, at: datetime.datetime) -> dict[str, Any]:
    st = _state(service)
    for old in st["deployments"]:
        if old["status"] in IN_PROGRESS_STATES:
            old["status"] = "STOPPED"
            old["statusReason"] = "Superseded by a newer service deployment."
            old["stoppedAt"] = at
            old["updatedAt"] = at
    sources = []
    for d in service.deployments:
        if d["status"] in ("PRIMARY", "ACTIVE") and d["taskDefinition"] != target_td:
            s = _revision_summary(backend, service, d["taskDefinition"], d["desiredCount"])
            s["runningTaskCount"] = d["runningCount"]
            sources.append(s)
    dep = _new_deployment(service, target_td, at)
    dc = _deployment_config(service)
    sd = {
        "serviceDeploymentArn": f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-deployment/{service.cluster_name}/{service.name}/{_short_id()}",
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "createdAt": at,
        "startedAt": at,
        "updatedAt": at,
        "sourceServiceRevisions": sources,
        "targetServiceRevision": _revision_summary(backend, service, target_td, service.desired_count),
        "status": "IN_PROGRESS",
        "deploymentConfiguration": json.loads(json.dumps(dc)),
        "deploymentCircuitBreaker": {
            "status": "MONITORING" if dc["deploymentCircuitBreaker"].get("enable") else "DISABLED",
            "failureCount": 0,
            "threshold": _threshold(service.desired_count),
        },
        "_deployment": dep,
        "_rollback_deployment": None,
        "_next_at": at + _step(),
        "_phase": "launch",
    }
    st["deployments"].insert(0, sd)
    service.current_service_deployment = sd["serviceDeploymentArn"]
    return sd


def _public(sd: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in sd.items() if not k.startswith("_")}
    for key in ("targetServiceRevision",):
        if out.get(key):
            out[key] = {k: v for k, v in out[key].items() if not k.startswith("_")}
    out["sourceServiceRevisions"] = [{k: v for k, v in s.items() if not k.startswith("_")} for s in sd.get("sourceServiceRevisions", [])]
    return out


def _brief(sd: dict[str, Any]) -> dict[str, Any]:
    return {
        "serviceDeploymentArn": sd["serviceDeploymentArn"],
        "serviceArn": sd["serviceArn"],
        "clusterArn": sd["clusterArn"],
        "startedAt": sd.get("startedAt"),
        "createdAt": sd["createdAt"],
        "finishedAt": sd.get("finishedAt"),
        "targetServiceRevisionArn": sd["targetServiceRevision"]["arn"],
        "status": sd["status"],
        "statusReason": sd.get("statusReason"),
    }


def _launch(backend: Backend, service: Service, dep: dict[str, Any], at: datetime.datetime, count: int) -> list[SandboxTask]:
    st = _state(service)
    tasks = [SandboxTask(backend, service, dep["taskDefinition"], dep["id"], at) for _ in range(count)]
    for t in tasks:
        st["tasks"][t.task_arn] = t
        backend.tasks.setdefault(service.cluster_name, {})[t.task_arn] = t
    dep["pendingCount"] += count
    dep["updatedAt"] = at
    _event(service, at, f"has started {count} tasks: {' '.join(f'(task {t.id})' for t in tasks)}.")
    return tasks


def _deployment_tasks(service: Service, dep: dict[str, Any], status: str) -> list[SandboxTask]:
    return [t for t in _state(service)["tasks"].values() if t.started_by == dep["id"] and t.last_status == status]


def _drain_others(service: Service, keep: dict[str, Any], at: datetime.datetime) -> None:
    stopped = []
    for d in list(service.deployments):
        if d is keep:
            continue
        for t in _deployment_tasks(service, d, "RUNNING") + _deployment_tasks(service, d, "PENDING"):
            t.stop(at, "Scaling activity initiated by (deployment %s)" % keep["id"], 0, "ServiceSchedulerInitiated")
            stopped.append(t)
        service.deployments.remove(d)
    if stopped:
        _event(service, at, f"has stopped {len(stopped)} running tasks: {' '.join(f'(task {t.id})' for t in stopped)}.")


def _run_pending(service: Service, dep: dict[str, Any], at: datetime.datetime) -> None:
    for t in _deployment_tasks(service, dep, "PENDING"):
        t.run(at)
    dep["runningCount"] = len(_deployment_tasks(service, dep, "RUNNING"))
    dep["pendingCount"] = len(_deployment_tasks(service, dep, "PENDING"))
    dep["updatedAt"] = at


def _complete(service: Service, dep: dict[str, Any], at: datetime.datetime) -> None:
    dep["rolloutState"] = "COMPLETED"
    dep["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
    dep["updatedAt"] = at
    _event(service, at, "has reached a steady state.")
    _event(service, at, f"deployment {dep['id']} deployment completed.")


def _sync_counts(service: Service, sd: dict[str, Any]) -> None:
    dep = sd["_deployment"]
    sd["targetServiceRevision"]["runningTaskCount"] = dep["runningCount"]
    sd["targetServiceRevision"]["pendingTaskCount"] = dep["pendingCount"]
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = sum(d["pendingCount"] for d in service.deployments)


def _begin_rollback(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime, reason: str) -> None:
    sources = sd["sourceServiceRevisions"]
    if not sources:
        sd["status"] = "ROLLBACK_FAILED"
        sd["statusReason"] = "There is no previous service revision to roll back to."
        sd["finishedAt"] = at
        return
    previous = sources[0]["_taskDefinition"]
    sd["status"] = "ROLLBACK_IN_PROGRESS"
    sd["statusReason"] = reason
    sd["rollback"] = {"reason": reason, "startedAt": at, "serviceRevisionArn": sources[0]["arn"]}
    sd["updatedAt"] = at
    old = {d["taskDefinition"]: d for d in service.deployments}
    rb = _new_deployment(service, previous, at)
    # The old tasks that still run keep serving: the rollback deployment adopts them.
    if previous in old and old[previous] is not rb:
        for t in _deployment_tasks(service, old[previous], "RUNNING"):
            t.started_by = rb["id"]
        service.deployments.remove(old[previous])
    _run_pending(service, rb, at)
    sd["_rollback_deployment"] = rb
    _event(service, at, f"rolling back to deployment {rb['id']}.")


def _step_deployment(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime) -> None:
    dep = sd["_deployment"]
    desired = service.desired_count
    phase = sd["_phase"]
    if sd["status"] == "ROLLBACK_REQUESTED":
        _begin_rollback(backend, service, sd, at, sd.get("statusReason") or "Rollback requested by StopServiceDeployment.")
        sd["_phase"] = "rollback"
        return
    if phase == "rollback":
        rb = sd["_rollback_deployment"]
        missing = desired - rb["runningCount"] - rb["pendingCount"]
        if missing > 0:
            _launch(backend, service, rb, at, missing)
            return
        if rb["pendingCount"]:
            _run_pending(service, rb, at)
            return
        _drain_others(service, rb, at)
        _complete(service, rb, at)
        sd["status"] = "ROLLBACK_SUCCESSFUL"
        sd["finishedAt"] = at
        sd["updatedAt"] = at
        sd["_phase"] = "done"
        return
    fails = _marker(dep["taskDefinition"], backend, "fail_markers")
    hangs = _marker(dep["taskDefinition"], backend, "hang_markers")
    if phase == "launch":
        _launch(backend, service, dep, at, desired)
        sd["_phase"] = "fail" if fails else ("hang" if hangs else "run")
    elif phase == "run":
        _run_pending(service, dep, at)
        sd["_phase"] = "drain"
    elif phase == "drain":
        _drain_others(service, dep, at)
        sd["_phase"] = "steady"
    elif phase == "steady":
        _complete(service, dep, at)
        sd["status"] = "SUCCESSFUL"
        sd["finishedAt"] = at
        sd["updatedAt"] = at
        if sd["deploymentCircuitBreaker"]["status"] == "MONITORING":
            sd["deploymentCircuitBreaker"]["status"] = "MONITORING_COMPLETE"
        sd["_phase"] = "done"
    elif phase == "hang":
        dep["updatedAt"] = at
    elif phase == "fail":
        failed = _deployment_tasks(service, dep, "PENDING")
        for t in failed:
            t.stop(at, "Essential container in task exited", 1, "EssentialContainerExited")
        dep["failedTasks"] += len(failed)
        dep["pendingCount"] = 0
        cb = sd["deploymentCircuitBreaker"]
        cb["failureCount"] = dep["failedTasks"]
        breaker = sd["deploymentConfiguration"]["deploymentCircuitBreaker"]
        if breaker.get("enable") and cb["failureCount"] >= cb["threshold"]:
            cb["status"] = "TRIGGERED"
            dep["rolloutState"] = "FAILED"
            dep["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
            _event(service, at, f"(deployment {dep['id']}) deployment failed: tasks failed to start.")
            if breaker.get("rollback"):
                _begin_rollback(backend, service, sd, at, "ECS deployment circuit breaker: tasks failed to start.")
                sd["_phase"] = "rollback"
            else:
                sd["status"] = "STOPPED"
                sd["statusReason"] = "ECS deployment circuit breaker: tasks failed to start."
                sd["stoppedAt"] = at
                sd["_phase"] = "done"
        else:
            _launch(backend, service, dep, at, desired)
    sd["updatedAt"] = at


def _advance(backend: Backend, service: Service) -> None:
    now = _now()
    for sd in _state(service)["deployments"]:
        while sd["status"] in IN_PROGRESS_STATES and sd["_phase"] != "done" and sd["_next_at"] <= now:
            at = sd["_next_at"]
            sd["_next_at"] = at + _step()
            _step_deployment(backend, service, sd, at)
            _sync_counts(service, sd)


def _advance_all(backend: Backend) -> None:
    for service in list(backend.services.values()):
        _advance(backend, service)


# ---------------------------------------------------------------------------
# Backend patches.

_orig_create_service = Backend.create_service
_orig_update_service = Backend.update_service
_orig_describe_services = Backend.describe_services
_orig_list_tasks = Backend.list_tasks
_orig_describe_tasks = Backend.describe_tasks


def create_service(self: Backend, *args: Any, **kwargs: Any) -> Service:
    with LOCK:
        service = _orig_create_service(self, *args, **kwargs)
        # A freshly created service is settled on its revision so tests start
        # from a steady state; later deployments roll out step by step.
        service.current_service_deployment = None
        for d in service.deployments:
            d["runningCount"] = service.desired_count
            d["pendingCount"] = 0
            d["rolloutState"] = "COMPLETED"
            d["rolloutStateReason"] = f"ECS deployment {d['id']} completed."
        service.running_count = service.desired_count
        service.pending_count = 0
        if service.task_definition and service.deployments:
            at = _now()
            dep = service.deployments[0]
            tasks = [SandboxTask(self, service, service.task_definition, dep["id"], at) for _ in range(service.desired_count)]
            for t in tasks:
                t.run(at)
                _state(service)["tasks"][t.task_arn] = t
                self.tasks.setdefault(service.cluster_name, {})[t.task_arn] = t
            _revision_arn(self, service, service.task_definition)
            _event(service, at, "has reached a steady state.")
        return service


def update_service(self: Backend, service_properties: dict[str, Any]) -> Service:
    with LOCK:
        cluster_str = service_properties.get("cluster", "default")
        name = service_properties["service"].split("/")[-1]
        service = self._get_service(cluster_str, name)
        _advance(self, service)
        if service.status != "ACTIVE":
            raise ServiceException("ServiceNotActiveException", "Service was not ACTIVE.")
        if service.deployment_controller.get("type") != "ECS" and service_properties.get("task_definition"):
            raise InvalidParameterException(
                "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."
            )
        force = bool(service_properties.pop("force_new_deployment", False))
        before = service.task_definition
        # moto copies every property as an attribute; keep the running counts ours.
        desired_before = service.desired_count
        running, pending = service.running_count, service.pending_count
        out = _orig_update_service(self, service_properties)
        service.running_count, service.pending_count = running, pending
        target = self.describe_task_definition(service.task_definition).arn if service.task_definition else None
        service.task_definition = before
        if target != before or force or service.desired_count != desired_before:
            if target != before or force:
                _start_service_deployment(self, service, target, _now())
            else:
                for d in service.deployments:
                    if d["status"] == "PRIMARY":
                        d["desiredCount"] = service.desired_count
        return out


def describe_services(self: Backend, cluster_str: str, names: list[str]) -> Any:
    with LOCK:
        _advance_all(self)
        return _orig_describe_services(self, cluster_str, names)


def list_tasks(self: Backend, cluster_str: str | None = None, container_instance: str | None = None, family: str | None = None,
               started_by: str | None = None, service_name: str | None = None, desiredStatus: str | None = None) -> Any:
    with LOCK:
        _advance_all(self)
        tasks = _orig_list_tasks(self, cluster_str, container_instance, family, started_by, service_name, desiredStatus)
        if service_name:
            group = f"service:{service_name.split('/')[-1]}"
            tasks = [t for t in tasks if getattr(t, "group", None) == group]
        return tasks


def describe_tasks(self: Backend, cluster_str: str, tasks: list[str]) -> Any:
    with LOCK:
        _advance_all(self)
        return _orig_describe_tasks(self, cluster_str, tasks)


def _find_service_deployment(self: Backend, arn: str) -> tuple[Service, dict[str, Any]] | None:
    for service in self.services.values():
        for sd in _state(service)["deployments"]:
            if sd["serviceDeploymentArn"] == arn:
                return service, sd
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)


def list_service_deployments(self: Backend, cluster: str | None, service_name: str, status: list[str] | None,
                             created_at: dict[str, Any] | None) -> list[dict[str, Any]]:
    with LOCK:
        service = self._get_service(cluster or "default", service_name.split("/")[-1])
        _advance(self, service)
        out = []
        for sd in _state(service)["deployments"]:
            if status and sd["status"] not in status:
                continue
            if created_at:
                after, before = created_at.get("after"), created_at.get("before")
                ts = sd["createdAt"].replace(tzinfo=datetime.timezone.utc).timestamp()
                if after is not None and ts < _epoch(after):
                    continue
                if before is not None and ts > _epoch(before):
                    continue
            out.append(_brief(sd))
        return out


def describe_service_deployments(self: Backend, arns: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    with LOCK:
        found, failures = [], []
        for arn in arns:
            hit = _find_service_deployment(self, arn)
            if hit is None:
                failures.append({"arn": arn, "reason": "MISSING", "detail": "The service deployment does not exist."})
                continue
            service, sd = hit
            _advance(self, service)
            found.append(_public(sd))
        return found, failures


def stop_service_deployment(self: Backend, arn: str, stop_type: str | None) -> str:
    with LOCK:
        hit = _find_service_deployment(self, arn)
        if hit is None:
            raise ServiceDeploymentNotFoundException(arn)
        service, sd = hit
        _advance(self, service)
        if (stop_type or "ROLLBACK") != "ROLLBACK":
            raise InvalidParameterException("The sandbox supports stopType ROLLBACK only.")
        if sd["status"] in ("PENDING", "IN_PROGRESS"):
            sd["status"] = "ROLLBACK_REQUESTED"
            sd["statusReason"] = "Rollback requested by StopServiceDeployment."
            sd["updatedAt"] = _now()
            sd["_next_at"] = _now()
            sd["_phase"] = "requested"
        elif sd["status"] not in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):
            raise ConflictException(f"The service deployment is {sd['status']} and can no longer be stopped.")
        return arn


Backend.create_service = create_service
Backend.update_service = update_service
Backend.describe_services = describe_services
Backend.list_tasks = list_tasks
Backend.describe_tasks = describe_tasks
Backend.list_service_deployments = list_service_deployments
Backend.describe_service_deployments = describe_service_deployments
Backend.stop_service_deployment = stop_service_deployment


# ---------------------------------------------------------------------------
# Response handlers for the operations stock moto lacks, and the fields it drops.

Response = ecs_responses.EC2ContainerServiceResponse
_orig_create_service_response = Response.create_service


def _create_service_response(self: Response) -> ActionResult:
    result = _orig_create_service_response(self)
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
    dc = self._get_param("deploymentConfiguration")
    if dc:
        service.deployment_configuration = dc
    _deployment_config(service)
    return result


def _list_service_deployments(self: Response) -> ActionResult:
    items = self.ecs_backend.list_service_deployments(
        self._get_param("cluster"), self._get_param("service"), self._get_param("status"), self._get_param("createdAt")
    )
    return ActionResult({"serviceDeployments": items})


def _describe_service_deployments(self: Response) -> ActionResult:
    found, failures = self.ecs_backend.describe_service_deployments(self._get_param("serviceDeploymentArns", []))
    return ActionResult({"serviceDeployments": found, "failures": failures})


def _stop_service_deployment(self: Response) -> ActionResult:
    arn = self.ecs_backend.stop_service_deployment(self._get_param("serviceDeploymentArn"), self._get_param("stopType"))
    return ActionResult({"serviceDeploymentArn": arn})


def _list_task_definitions_response(self: Response) -> ActionResult:
    # Stock moto ignores sort, maxResults and nextToken; ECS sorts by family,
    # then revision, ASC unless sort is DESC.
    arns = self.ecs_backend.list_task_definitions(self._get_param("familyPrefix"), self._get_param("status", "ACTIVE"))

    def key(arn: str) -> tuple[str, int]:
        family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
        return family, int(revision)

    arns = sorted(arns, key=key, reverse=self._get_param("sort") == "DESC")
    start = int(self._get_param("nextToken") or 0)
    size = int(self._get_param("maxResults") or 100)
    page = arns[start : start + size]
    result: dict[str, Any] = {"taskDefinitionArns": page}
    if start + size < len(arns):
        result["nextToken"] = str(start + size)
    return ActionResult(result)


Response.create_service = _create_service_response
Response.list_task_definitions = _list_task_definitions_response
Response.list_service_deployments = _list_service_deployments
Response.describe_service_deployments = _describe_service_deployments
Response.stop_service_deployment = _stop_service_deployment


# ---------------------------------------------------------------------------
# Control endpoint: /_sandbox/ecs/<command>. Other extensions chain the same
# way, each taking only its own prefix.

PREFIX = "/_sandbox/ecs/"
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            for key in ("step_seconds", "fail_markers", "hang_markers"):
                if key in body:
                    CONFIG[key] = body[key]
            return dict(CONFIG)
        if command == "service-status":
            backend = ecs_models.ecs_backends[body.get("account", DEFAULT_ACCOUNT_ID)][body.get("region", "us-east-1")]
            service = backend._get_service(body["cluster"], body["service"])
            service.status = body["status"]
            return {"service": service.name, "status": service.status}
        raise KeyError(command)


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    return answered if answered is not None else _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
