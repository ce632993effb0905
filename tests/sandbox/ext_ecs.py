"""ECS deployments that move through their states, as the ECS documentation describes.

Stock moto stores services but never rolls anything out. This extension
patches moto's ECS backend so that:

- UpdateService with a new task definition (or forceNewDeployment) starts a
  new PRIMARY deployment (rolloutState IN_PROGRESS), turns the old one ACTIVE
  and records a service deployment (ListServiceDeployments,
  DescribeServiceDeployments, its revisions in DescribeServiceRevisions)
  whose ARN is the service's currentServiceDeployment. CreateService
  records none (GUESS: ECS records the creation as a deployment with no
  source revision; nothing the sandbox serves reads it).
- Progress is computed lazily from wall-clock time on every read, one step
  every `step_seconds` (no background thread). Each step is one pass of the
  service scheduler's rolling update (deployment type ECS), honouring the
  deployment configuration as the ECS developer guide describes it
  ("Deploy Amazon ECS services by replacing tasks"), with D the desired count:
  at most floor(D * maximumPercent / 100) tasks of the service are RUNNING or
  PENDING, and old tasks are stopped only while at least
  ceil(D * minimumHealthyPercent / 100) healthy tasks remain. In one pass:
  1. the new deployment's tasks placed at an earlier pass turn RUNNING (or
     fail, or hang: markers below);
  2. the old deployments' PENDING tasks stop (they are not healthy), and their
     RUNNING tasks stop as far as the minimum allows; healthy means RUNNING
     since an earlier pass (a task that just started is not counted yet, as
     ECS waits for health checks or the grace period): "has stopped N running
     tasks: (task ..) ..";
  3. new tasks start, as many as the maximum and the cluster's capacity
     (below) allow: "has started N tasks: (task ..) ..".
  When only the new deployment's D tasks run, the next pass completes it:
  "has reached a steady state." and "deployment <id> deployment completed.";
  the old deployments, their tasks all stopped, leave the list.
  With the default 200/100 and D=2 that is today's four steps: start 2 beside
  the 2 old, run them, stop the 2 old, complete. With maximumPercent 100 and
  minimumHealthyPercent 50 one old task stops first and one new starts, then
  the other pair. With 100/100 nothing may stop and nothing may start: the
  deployment stays IN_PROGRESS with the documented event "(service s) was
  unable to stop or start tasks during a deployment because of the service
  deployment configuration. Update the minimumHealthyPercent or maximumPercent
  value and try again." until it is stopped (a deadline's rollback).
  Capacity: with a per-cluster limit (/_sandbox/ecs/capacity), a task that
  would take the cluster's non-STOPPED tasks (every service's and RunTask's)
  above `max_tasks` is not placed (no task is created, as with the EC2 launch
  type's placement) and the service says "(service s) was unable to place a
  task because no container instance met all of its requirements." (for a
  FARGATE service: "(service s) was unable to place a task. Reason: You've
  reached the limit on the number of tasks you can run concurrently");
  placement is tried again every step. Placement failures do not count
  towards the circuit breaker. Like ECS (which omits duplicates until the
  cause is resolved), each of these two events is said once until a step
  makes progress. The old deployment's desiredCount falls as its tasks stop.
  Changed from the earlier sandbox, which started all D new tasks at once
  whatever the configuration and drained every old task in one step: the
  default configuration keeps its timing; rollbacks now roll the same way,
  and still settle in the pass that stops the last old task (so a rollback
  from tasks that hang takes one step after it begins, as before).
- An image containing a failure marker ("crashloop" by default) starts tasks
  that stop with "Essential container in task exited" and exit code 1;
  failedTasks grows; with the deployment circuit breaker on, it triggers at
  the documented threshold (half the desired count, at least 3, at most 200),
  the deployment turns FAILED and, with rollback on, ECS rolls back to the
  previous revision (a new PRIMARY deployment that completes; the service
  deployment ends ROLLBACK_SUCCESSFUL). Without the circuit breaker the
  deployment keeps failing until someone stops it.
- An image containing a hang marker ("hang" by default) never gets healthy.
- Deployment alarms ("How CloudWatch alarms detect Amazon ECS deployment
  failures", API DeploymentAlarms / ServiceDeploymentAlarms): CreateService
  and UpdateService keep `deploymentConfiguration.alarms` {alarmNames, enable,
  rollback}, {"alarmNames": [], "enable": false, "rollback": false} when not
  given (as DescribeServices shows it in the AWS CLI examples); an
  UpdateService configuration is merged over the service's, so an update
  without `alarms` keeps them (moto replaced it whole). A deployment of a
  service with alarms.enable gets `alarms` {"status": "MONITORING",
  "alarmNames": [..], "triggeredAlarmNames": []} in DescribeServiceDeployments
  ({"status": "DISABLED"} without: AWS CLI example; the empty list is a GUESS).
  Once a task of the new revision runs (AWS blog "Automate rollbacks for
  Amazon ECS rolling deployments with CloudWatch alarms") every step reads the
  named alarms from moto's CloudWatch (same account and region; an alarm that
  does not exist counts as not in ALARM, GUESS). When the rollout is done
  the deployment stays IN_PROGRESS for a bake of `alarm_bake_steps` steps (2;
  GUESS: ECS computes it from the alarms' evaluation periods), the old
  deployment still listed with no task, and is watched still; then it
  completes as usual (alarms status MONITORING_COMPLETE). Any named alarm in
  ALARM fails it: rolloutState FAILED, rolloutStateReason "ECS deployment
  alarms: alarm detected (<names in ALARM>)." (GUESS: ECS's wording is not
  published), the event "(deployment <id>) deployment failed: alarm
  detected." (seen on AWS: aws/copilot-cli stream tests, a user's capture),
  alarms {"status": "TRIGGERED", "triggeredAlarmNames": [..]}; with
  alarms.rollback the circuit breaker's rollback follows ("rolling back to
  deployment <id>.", ROLLBACK_IN_PROGRESS then ROLLBACK_SUCCESSFUL,
  statusReason and rollback.reason the rolloutStateReason, GUESS), without it
  the service deployment is STOPPED (stoppedAt, statusReason the same: the API
  reference's stoppedAt names this case) and nothing more moves. Not modelled:
  the rollback deployment is not watched; alarms already in ALARM when the
  deployment starts count like any other.
- StopServiceDeployment (stopType ROLLBACK) rolls back to the source revision
  (a deployment PENDING or IN_PROGRESS; one already rolling back goes on; any
  other answers ConflictException, GUESS: its wording; an unknown ARN
  ServiceDeploymentNotFoundException; another stopType InvalidParameterException).
- Services behind a load balancer (a `loadBalancers` entry whose
  targetGroupArn is one of moto's ELBv2 target groups) roll out in time
  rather than in steps: their tasks and the rollout's pace follow the target
  groups' and the task definitions' settings, each real-world second lasting
  `time_scale` seconds (0.01 by default: a 300 s deregistration delay takes
  3 s). A scheduler pass runs when a task changes state (and every
  `step_seconds`), with the limits above. Documents followed: "Optimize load
  balancer connection draining parameters", "Optimize load balancer health
  check parameters", "Amazon ECS task lifecycle" (ECS developer guide) and
  "Health checks for Application Load Balancer target groups" (ELB user guide).
  A task the scheduler places (createdAt, "has started N tasks") pulls its
  image at once: pullStartedAt, then pullStoppedAt after `pull_base_seconds`
  plus the image's compressed size (`image_bytes`, by image substring, else
  `default_image_bytes`) at `pull_mb_per_second` (largest image of the task);
  its containers start `start_seconds` later: RUNNING, startedAt, and
  "registered 1 targets in (target-group arn)" for each target group. After
  registering, a target must pass one health check to be healthy (ELB user
  guide; the healthy threshold counts only when an unhealthy target
  recovers): the first comes HealthCheckIntervalSeconds after registration.
  A container health check in the task definition makes the task's
  healthStatus HEALTHY `interval` seconds (30 by default) after the
  container starts, as Docker runs the first check; the task is healthy when
  every check it has passed (the later of the two). healthCheckGracePeriodSeconds
  is stored and returned but paces nothing here: ECS only ignores failing
  checks during it, and these tasks pass. Stopping a RUNNING task of the
  service drains it: desiredStatus STOPPED, lastStatus DEACTIVATING, "has
  begun draining connections on N tasks." and "deregistered N targets in
  (target-group arn)"; after the longest deregistration_delay.timeout_seconds
  of its target groups, STOPPING (stoppingAt, "has stopped N running
  tasks: ..."); after the task's stop time, STOPPED (stoppedAt,
  executionStoppedAt, exit code 137: SIGKILL). The stop time is the longest
  container stopTimeout of the task's revision (30 s when unset, the ECS
  agent's and Fargate's default), or `sigterm_seconds` when set and shorter
  (an application that exits on SIGTERM, exit code 143). DEACTIVATING and
  STOPPING tasks are neither RUNNING nor healthy but still hold their place
  against maximumPercent and the cluster's capacity until STOPPED; the
  deployment completes in the pass where the new tasks are all healthy and
  no other task of the service is left, and the old deployment then leaves
  the list. The failure marker stops a new task when its containers start;
  a task of the hang marker never passes a health check. Services without a
  load balancer keep the step-by-step rollout above.
- Blue/green ("Amazon ECS blue/green deployments", "Amazon ECS blue/green
  service deployments workflow", "Application Load Balancer resources for
  blue/green deployments" in the developer guide; API DeploymentConfiguration,
  AdvancedConfiguration, ServiceDeployment.lifecycleStage): CreateService and
  UpdateService keep deploymentConfiguration.strategy ("ROLLING" when not
  given) and bakeTimeInMinutes, and loadBalancers[].advancedConfiguration
  {alternateTargetGroupArn, productionListenerRule, testListenerRule,
  roleArn} as given (moto stores both; DescribeServices returns them; the
  deploymentController stays ECS; loadBalancers is not rewritten after a
  deployment, GUESS). A new deployment of a BLUE_GREEN service (UpdateService
  with a new task definition, or forceNewDeployment) is recorded as for
  rolling updates (PRIMARY/ACTIVE deployments, the service deployment and its
  revisions, circuit breaker, alarms) and moves through `lifecycleStage`
  (DescribeServiceDeployments), one stage at a time, each lasting at least
  `blue_green_stage_steps` steps (1; GUESS: ECS's own pace is not published):
  RECONCILE_SERVICE (only when tasks other than blue's run, e.g. a deployment
  superseded midway: they stop, the test rule goes back to blue; GUESS) or
  PRE_SCALE_UP; SCALE_UP (green, the new revision, starts its full desired
  count at once beside blue, registering in the green target group; the
  stage lasts until every green task is healthy, with the task machinery
  above: timed when the service has a target group, step by step otherwise;
  the failure and hang markers, `fail_after`, the cluster's capacity and the
  circuit breaker apply; maximumPercent and minimumHealthyPercent do not);
  POST_SCALE_UP; TEST_TRAFFIC_SHIFT (the test listener rule forwards to
  green); POST_TEST_TRAFFIC_SHIFT; PRODUCTION_TRAFFIC_SHIFT (the production
  listener rule forwards to green); POST_PRODUCTION_TRAFFIC_SHIFT; BAKE_TIME
  (bakeTimeInMinutes x `bake_steps_per_minute` steps, 1 per minute, at least
  one; GUESS); CLEAN_UP (blue's tasks drain from blue's target group and
  stop; the old deployment's desiredCount falls to 0); then SUCCESSFUL (the
  stage stays CLEAN_UP, GUESS) and the deployment COMPLETED as in a rolling
  update. Blue is the target group the production rule forwards to when the
  deployment starts (without a production rule: where the last deployment
  left production, at first the service's targetGroupArn); green is the
  other of targetGroupArn and alternateTargetGroupArn, so deployments
  alternate between the two. Shifting traffic rewrites the rule's forward
  action in moto's ELBv2 as ECS does on AWS (users' reports: the rule's
  TargetGroupArn goes, a weighted ForwardConfig over both target groups
  remains, weights swung on every deployment): green weight 100, blue 0
  (an NLB's listener ARN in place of a rule: its default actions). Rules
  without a forward action, or that no longer exist, are left alone (GUESS:
  ECS fails such deployments). ELBv2 DescribeRules and DescribeListeners
  first move the same region's deployments, so a rule read there is as
  current as one read through ECS. Deployment alarms are watched from the
  first green task running through BAKE_TIME. Failure (circuit breaker,
  alarm) or StopServiceDeployment ROLLBACK: ROLLBACK_REQUESTED (after
  StopServiceDeployment only, for one step; GUESS), then ROLLBACK_IN_PROGRESS
  with `rollback` {reason, startedAt, serviceRevisionArn (blue's)}: both
  rules forward to blue again, a new PRIMARY deployment of blue's revision
  adopts blue's tasks (and starts any CLEAN_UP already stopped), green's
  tasks drain and stop, then ROLLBACK_SUCCESSFUL with the service back on
  blue's revision; lifecycleStage keeps the stage reached (GUESS). A circuit
  breaker or alarm without rollback leaves the deployment STOPPED where it
  was, traffic included. Lifecycle hooks (deploymentConfiguration.lifecycleHooks)
  are stored but never invoked: `blue_green_hold` stands in for a hook that
  has not answered yet (ECS waits at a hooked stage until the hook returns
  SUCCEEDED): a deployment at a held stage stays there, its stage's work done
  (at TEST_TRAFFIC_SHIFT the test rule already forwards to green), until the
  hold is lifted; then it goes on at the next step. LINEAR and CANARY are
  stored but roll out as ROLLING.
- ListTasks(desiredStatus=STOPPED, serviceName=...) and DescribeTasks show
  the stopped tasks with stoppedReason and container exit codes.
- ListTaskDefinitions honours sort, maxResults and nextToken.

Control endpoint (POST JSON):
- /_sandbox/ecs/config {"step_seconds": 0.2, "fail_markers": [..], "hang_markers": [..],
  "time_scale": 0.01, "pull_base_seconds": 3, "pull_mb_per_second": 7,
  "image_bytes": {"web-big": 400000000}, "default_image_bytes": 0,
  "start_seconds": 1, "sigterm_seconds": null, "alarm_bake_steps": 2,
  "blue_green_stage_steps": 1, "bake_steps_per_minute": 1, "blue_green_hold": null} returns the configuration in
  force (the timed keys pace services behind a load balancer; seconds are
  real-world seconds).
- /_sandbox/ecs/config {"fail_after": {"worker": 1}}: tasks of a revision of
  family `worker` newer than `worker:1` fail as the failure marker's do. It
  stands for a change that crashes one family's tasks and not another's
  though they run the same image (a worker whose command or configuration
  does not start), which the sandbox cannot run; `{}` lifts it.
- /_sandbox/ecs/capacity {"cluster": "demo", "max_tasks": 2, "region": r}
  limits how many tasks (not STOPPED) the cluster runs at once; "max_tasks":
  null lifts the limit; without "max_tasks" it only reports. Returns
  {"cluster", "max_tasks", "used"}. CreateService still seeds its tasks
  whatever the limit (they count towards it); RunTask is not limited by it
  (ext_ecs_tasks places one-off tasks on container instances).
- /_sandbox/ecs/service-status {"cluster": c, "service": s, "status": "DRAINING", "region": r}
  sets a service's status (DRAINING/INACTIVE cannot be reached otherwise).
- /_sandbox/ecs/config {"blue_green_hold": "POST_TEST_TRAFFIC_SHIFT"} holds
  blue/green deployments at that lifecycle stage (a list holds at each; only
  the stages a lifecycle hook may run at: RECONCILE_SERVICE, PRE_SCALE_UP,
  POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT,
  PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT); null releases.
  "blue_green_stage_steps" and "bake_steps_per_minute" pace them (above).
- /_sandbox/ecs/listener-rule {"rule": arn, "region": r} reports where a
  listener rule (or an NLB listener) forwards now: {"rule", "listener",
  "port", "protocol", "load_balancer", "dns_name", "target_group" (the one
  with the highest weight), "weights": [{"target_group", "weight"}],
  "task_definitions" (of the RUNNING service tasks registered in that target
  group, draining ones left out), "task_definition" (the one, else null)}:
  what a test answers HTTP by. The same comes from moto: ELBv2 DescribeRules
  (RuleArns=[arn]) for the forward action's weights; the rule's listener is
  the rule ARN with "listener-rule/" as "listener/" and its last path segment
  dropped, DescribeListeners(ListenerArns=[..]) gives its Port and
  LoadBalancerArn, DescribeLoadBalancers(LoadBalancerArns=[..]) its DNSName.
  An unknown ARN answers 404.
- /_sandbox/ecs/config {"deny_tagging": true}: the caller lacks
  `ecs:TagResource`, as a deploy role without it under ECS's tagging
  authorization: RegisterTaskDefinition with tags and TagResource answer 400
  AccessDeniedException "User: <caller> is not authorized to perform:
  ecs:TagResource on resource: <arn> because no identity-based policy allows
  the ecs:TagResource action" and change nothing (GUESS: the resource named
  for a revision not yet registered is the family's ARN without revision).
"""

from __future__ import annotations

import datetime
import logging
import json
import math
import sys
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
    # Timed rollouts (services behind a load balancer), in real-world seconds.
    "time_scale": 0.01,
    "pull_base_seconds": 3.0,
    "pull_mb_per_second": 7.0,
    "image_bytes": {},
    "default_image_bytes": 0,
    "start_seconds": 1.0,
    "sigterm_seconds": None,
    "deny_tagging": False,
    "fail_after": {},
    # Deployment alarms: sandbox steps a deployment stays watched after its rollout (GUESS).
    "alarm_bake_steps": 2,
    # Blue/green (strategy BLUE_GREEN): the fewest steps each lifecycle stage lasts, steps per
    # minute of bakeTimeInMinutes (both GUESS), and the stage(s) deployments are held at.
    "blue_green_stage_steps": 1,
    "bake_steps_per_minute": 1,
    "blue_green_hold": None,
}
TIMED_KEYS = ("time_scale", "pull_base_seconds", "pull_mb_per_second", "image_bytes", "default_image_bytes", "start_seconds",
              "sigterm_seconds")
LOCK = threading.RLock()
# One line per request drowns the test output; errors still show.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

Backend = ecs_models.EC2ContainerServiceBackend
Service = ecs_models.Service

IN_PROGRESS_STATES = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")
# ServiceDeploymentLifecycleStage, in the order a blue/green deployment goes through them.
BG_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
             "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP")
# The stages a lifecycle hook may run at (API DeploymentLifecycleHook.lifecycleStages): the ones blue_green_hold takes.
BG_HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
                  "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")


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
        self.execution_stopped_at = None
        self.pull_started_at = None
        self.pull_stopped_at = None
        self.health_status = "UNKNOWN"
        self.stopped_reason = None
        self.stop_code = None
        # Timed rollouts: when this task's next states are due (see _plan_task).
        self._t: dict[str, Any] | None = None
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
    dc.setdefault("alarms", {"alarmNames": [], "enable": False, "rollback": False})
    service.deployment_configuration = dc
    return dc


def _marker(task_definition_arn: str, backend: Backend, key: str) -> bool:
    try:
        td = backend.describe_task_definition(task_definition_arn)
    except Exception:  # noqa: BLE001 - a deregistered or unknown revision simply has no marker
        return False
    images = [str(c.get("image", "")) for c in td.container_definitions]
    if key == "fail_markers" and td.revision > CONFIG["fail_after"].get(td.family, td.revision):
        return True
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
        "alarms": ({"status": "MONITORING", "alarmNames": list(dc["alarms"].get("alarmNames") or []), "triggeredAlarmNames": []}
                   if dc["alarms"].get("enable") else {"status": "DISABLED"}),
        "_deployment": dep,
        "_rollback_deployment": None,
        # A timed rollout's first pass is the update itself; its later ones follow the tasks.
        "_next_at": at if _target_groups(backend, service) else at + _step(),
        "_phase": "rolling",
        # Event messages said and not resolved since (see _say).
        "_said": set(),
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
    dep["updatedAt"] = at
    _event(service, at, f"has started {count} tasks: {' '.join(f'(task {t.id})' for t in tasks)}.")
    return tasks


def _deployment_tasks(service: Service, dep: dict[str, Any], status: str) -> list[SandboxTask]:
    return [t for t in _state(service)["tasks"].values() if t.started_by == dep["id"] and t.last_status == status]


def _recount(service: Service) -> None:
    """Every deployment's runningCount/pendingCount from its tasks, and the service's totals."""
    for d in service.deployments:
        d["runningCount"] = len(_deployment_tasks(service, d, "RUNNING"))
        d["pendingCount"] = len(_deployment_tasks(service, d, "PENDING"))
    service.running_count = sum(d["runningCount"] for d in service.deployments)
    service.pending_count = sum(d["pendingCount"] for d in service.deployments)


def _complete(service: Service, dep: dict[str, Any], at: datetime.datetime) -> None:
    # Only deployments without tasks are left beside `dep` (see _roll): ECS drops them.
    for d in [d for d in service.deployments if d is not dep]:
        service.deployments.remove(d)
    dep["rolloutState"] = "COMPLETED"
    dep["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
    dep["updatedAt"] = at
    _event(service, at, "has reached a steady state.")
    _event(service, at, f"deployment {dep['id']} deployment completed.")


def _sync_counts(service: Service, sd: dict[str, Any]) -> None:
    _recount(service)
    dep = sd["_deployment"]
    sd["targetServiceRevision"]["runningTaskCount"] = dep["runningCount"]
    sd["targetServiceRevision"]["pendingTaskCount"] = dep["pendingCount"]
    for s in sd["sourceServiceRevisions"]:
        live = [d for d in service.deployments if d["taskDefinition"] == s["_taskDefinition"] and d is not dep]
        s["runningTaskCount"] = sum(d["runningCount"] for d in live)
        s["pendingTaskCount"] = sum(d["pendingCount"] for d in live)


# ---------------------------------------------------------------------------
# The rolling update (deployment type ECS), one scheduler pass per step.
#
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html:
# minimumHealthyPercent is "the lower limit on the number of tasks that should
# be running and healthy ... as a percent of the desired number of tasks ...
# This value is rounded up"; maximumPercent "the upper limit on the number of
# tasks that should be running ... This value is rounded down"; the
# API reference counts RUNNING or PENDING tasks against the maximum.

CAPACITY: dict[tuple[str, str, str], int] = {}

MSG_NO_PLACE_EC2 = "was unable to place a task because no container instance met all of its requirements."
MSG_NO_PLACE_FARGATE = "was unable to place a task. Reason: You've reached the limit on the number of tasks you can run concurrently"
MSG_CONFIG_STUCK = (
    "was unable to stop or start tasks during a deployment because of the service deployment configuration. "
    "Update the minimumHealthyPercent or maximumPercent value and try again."
)


def _limits(desired: int, dc: dict[str, Any]) -> tuple[int, int]:
    """(maximum RUNNING+PENDING tasks, minimum healthy tasks) for `desired` tasks."""
    maximum = desired * int(dc.get("maximumPercent", 200)) // 100
    minimum = -(-desired * int(dc.get("minimumHealthyPercent", 100)) // 100)
    return maximum, minimum


def _cluster_used(backend: Backend, cluster_name: str) -> int:
    """Tasks that hold capacity in the cluster: every task not STOPPED (services' and RunTask's)."""
    # One-off tasks (ext_ecs_tasks, loaded after this module) move lazily on
    # their own reads: bring them up to now so a task that stopped frees its place.
    one_off = sys.modules.get("ext_ecs_tasks")
    if one_off is not None and hasattr(one_off, "_advance_all"):
        one_off._advance_all()
    return sum(1 for t in backend.tasks.get(cluster_name, {}).values() if getattr(t, "last_status", "STOPPED") != "STOPPED")


def _capacity_left(backend: Backend, cluster_name: str) -> int | None:
    limit = CAPACITY.get((backend.account_id, backend.region_name, cluster_name))
    if limit is None:
        return None
    return max(0, limit - _cluster_used(backend, cluster_name))


def _placeable(backend: Backend, service: Service, missing: int, room: int) -> tuple[int, int]:
    """Of `missing` tasks, how many the percents leave room for and how many
    of those the cluster's capacity places: (wanted, placed)."""
    want = min(missing, room)
    left = _capacity_left(backend, service.cluster_name)
    return want, (want if left is None else min(want, left))


def _no_place(service: Service) -> str:
    return MSG_NO_PLACE_FARGATE if service.launch_type == "FARGATE" else MSG_NO_PLACE_EC2


def _say(service: Service, sd: dict[str, Any], said: set[str], at: datetime.datetime, message: str) -> None:
    """An event ECS repeats only once its cause was resolved (service event docs: duplicate messages are omitted)."""
    said.add(message)
    if message not in sd["_said"]:
        _event(service, at, message)


def _stop_old(service: Service, target: dict[str, Any], tasks: list[SandboxTask], at: datetime.datetime) -> None:
    for t in tasks:
        ran = t.last_status == "RUNNING"
        t.stop(at, "Scaling activity initiated by (deployment %s)" % target["id"], 0 if ran else None, "ServiceSchedulerInitiated")
    _event(service, at, f"has stopped {len(tasks)} running tasks: {' '.join(f'(task {t.id})' for t in tasks)}.")
    for d in service.deployments:
        if d is not target:
            d["desiredCount"] = len(_deployment_tasks(service, d, "RUNNING")) + len(_deployment_tasks(service, d, "PENDING"))
            d["updatedAt"] = at


def _roll(backend: Backend, service: Service, sd: dict[str, Any], target: dict[str, Any], at: datetime.datetime,
          breaker: dict[str, Any] | None, settle_now: bool = False) -> str:
    """One pass of the service scheduler towards `target` (the deployment whose
    tasks should run). Returns "steady" when only the target's desired tasks
    run (at the start of the pass, or, with `settle_now`, at its end too),
    "failed" when the circuit breaker (if given) triggered, else ""."""
    groups = _target_groups(backend, service)
    if groups:
        return _roll_timed(backend, service, sd, target, at, breaker, groups)
    desired = service.desired_count
    maximum, minimum = _limits(desired, sd["deploymentConfiguration"])
    others = [d for d in service.deployments if d is not target]
    t_running = _deployment_tasks(service, target, "RUNNING")
    t_pending = _deployment_tasks(service, target, "PENDING")
    o_running = [t for d in others for t in _deployment_tasks(service, d, "RUNNING")]
    o_pending = [t for d in others for t in _deployment_tasks(service, d, "PENDING")]
    if len(t_running) >= desired and not t_pending and not o_running and not o_pending:
        return "steady"
    # Tasks that were RUNNING before this pass are the healthy ones: a task
    # that just started is not counted yet (ECS waits for its health checks or
    # grace period before counting it towards the minimum).
    healthy = len(t_running) + len(o_running)
    moved = False
    said: set[str] = set()

    # 1. The target's tasks placed at an earlier pass start, fail or hang.
    fails = _marker(target["taskDefinition"], backend, "fail_markers")
    hangs = not fails and _marker(target["taskDefinition"], backend, "hang_markers")
    if t_pending and not hangs:
        moved = True
        if fails:
            for t in t_pending:
                t.stop(at, "Essential container in task exited", 1, "EssentialContainerExited")
            target["failedTasks"] += len(t_pending)
            if breaker is not None:
                breaker["failureCount"] = target["failedTasks"]
                enabled = sd["deploymentConfiguration"]["deploymentCircuitBreaker"].get("enable")
                if enabled and breaker["failureCount"] >= breaker["threshold"]:
                    return "failed"
        else:
            for t in t_pending:
                t.run(at)
        target["updatedAt"] = at

    # 2. Old tasks stop: PENDING ones at once (they are not healthy), RUNNING
    # ones as far as the minimum healthy percent allows.
    stop_running = o_running[: max(0, healthy - minimum)]
    if o_pending or stop_running:
        moved = True
        _stop_old(service, target, o_pending + stop_running, at)

    # 3. New tasks start, as far as the maximum percent and the cluster's
    # capacity allow.
    t_active = len(_deployment_tasks(service, target, "RUNNING")) + len(_deployment_tasks(service, target, "PENDING"))
    total = t_active + len(o_running) - len(stop_running)
    missing = desired - t_active
    room = maximum - total
    if missing > 0 and room > 0:
        want, placed = _placeable(backend, service, missing, room)
        if placed > 0:
            moved = True
            _launch(backend, service, target, at, placed)
        if placed < want:
            _say(service, sd, said, at, _no_place(service))
    elif missing > 0 and not moved and not t_pending:
        # Nothing may stop (minimum) and nothing may start (maximum): the
        # documented deadlock, e.g. maximumPercent 100 with minimumHealthyPercent 100.
        _say(service, sd, said, at, MSG_CONFIG_STUCK)
    sd["_said"] = said if moved else sd["_said"] | said
    if settle_now and not t_pending and len(_deployment_tasks(service, target, "RUNNING")) >= desired and not any(
        _deployment_tasks(service, d, "RUNNING") or _deployment_tasks(service, d, "PENDING") for d in others
    ):
        return "steady"
    return ""


# ---------------------------------------------------------------------------
# Timed rollouts: services behind a load balancer (see the module docstring).


def _target_groups(backend: Backend, service: Service) -> list[Any]:
    """The moto ELBv2 target groups of the service's load balancers."""
    arns = [lb.get("targetGroupArn") for lb in (getattr(service, "load_balancers", None) or []) if isinstance(lb, dict)]
    arns = [a for a in arns if a]
    if not arns:
        return []
    from moto.elbv2.models import elbv2_backends

    groups = elbv2_backends[backend.account_id][backend.region_name].target_groups
    return [groups[a] for a in arns if a in groups]


def _real(seconds: float) -> datetime.timedelta:
    """A real-world duration as the sandbox lives it."""
    return datetime.timedelta(seconds=float(seconds) * float(CONFIG["time_scale"]))


def _group_delay(group: Any) -> float:
    return float(group.attributes.get("deregistration_delay.timeout_seconds", 300))


def _group_interval(group: Any) -> float:
    return float(group.health_check_interval_seconds or 30)


def _containers(backend: Backend, task_definition_arn: str) -> list[dict[str, Any]]:
    try:
        return list(backend.describe_task_definition(task_definition_arn).container_definitions)
    except Exception:  # noqa: BLE001 - a deregistered revision: ECS's defaults
        return []


def _stop_seconds(backend: Backend, task_definition_arn: str) -> tuple[float, int]:
    """(seconds from SIGTERM to the task stopping, the exit code)."""
    timeout = max([float(c.get("stopTimeout") or 30) for c in _containers(backend, task_definition_arn)] or [30.0])
    handled = CONFIG["sigterm_seconds"]
    if handled is not None and float(handled) < timeout:
        return float(handled), 143
    return timeout, 137


def _pull_seconds(backend: Backend, task_definition_arn: str) -> float:
    def size(image: str) -> int:
        for marker, n in CONFIG["image_bytes"].items():
            if marker in image:
                return int(n)
        return int(CONFIG["default_image_bytes"])

    biggest = max([size(str(c.get("image", ""))) for c in _containers(backend, task_definition_arn)] or [0])
    return float(CONFIG["pull_base_seconds"]) + biggest / (float(CONFIG["pull_mb_per_second"]) * 1e6)


def _plan_task(backend: Backend, task: SandboxTask, groups: list[Any], at: datetime.datetime) -> None:
    """When a newly placed task pulls, starts and passes its health checks."""
    td = task.task_definition_arn
    task.pull_started_at = at
    task.pull_stopped_at = at + _real(_pull_seconds(backend, td))
    started = task.pull_stopped_at + _real(float(CONFIG["start_seconds"]))
    checks = [max([_group_interval(g) for g in groups if g.health_check_enabled] or [0.0])]
    container_checks = [float(c["healthCheck"].get("interval") or 30) for c in _containers(backend, td) if c.get("healthCheck")]
    checks.extend(container_checks)
    hangs = _marker(td, backend, "hang_markers")
    task._t = {
        "started": started,
        "healthy": None if hangs else started + _real(max(checks)),
        "container_checks": bool(container_checks),
        "fails": _marker(td, backend, "fail_markers"),
        # The target groups it registers in (a blue/green service's green tasks: the green one only).
        "groups": [g.arn for g in groups],
    }


def _healthy(task: SandboxTask, at: datetime.datetime) -> bool:
    if task.last_status != "RUNNING":
        return False
    # Tasks that ran before the service had a load balancer (or were seeded) count as healthy.
    return task._t is None or (task._t["healthy"] is not None and task._t["healthy"] <= at)


def _due(task: SandboxTask) -> tuple[datetime.datetime, str] | None:
    """The task's next timed change: (when, what)."""
    t = task._t
    if t is None:
        return None
    if task.last_status == "PENDING" and t.get("started"):
        return t["started"], "start"
    if task.last_status == "RUNNING" and t.get("healthy") is not None and not t.get("healthy_seen"):
        return t["healthy"], "healthy"
    if task.last_status == "DEACTIVATING":
        return t["stopping"], "stopping"
    if task.last_status == "STOPPING":
        return t["stopped"], "stopped"
    return None


def _next_due(service: Service) -> datetime.datetime | None:
    times = [d[0] for d in (_due(t) for t in _state(service)["tasks"].values()) if d is not None]
    return min(times) if times else None


def _apply_due(backend: Backend, service: Service, upto: datetime.datetime) -> None:
    """Every timed change due by `upto`, in time order; tasks changing at the
    same moment share their service event, as ECS words it."""
    groups = _target_groups(backend, service)
    while True:
        due = [(d, t) for t in _state(service)["tasks"].values() if (d := _due(t)) is not None and d[0] <= upto]
        if not due:
            return
        at = min(d[0] for d, _ in due)
        now = [(d[1], t) for d, t in due if d[0] == at]
        for kind in ("start", "healthy", "stopping", "stopped"):
            tasks = [t for k, t in now if k == kind]
            if tasks:
                _change(backend, service, groups, tasks, kind, at)


def _change(backend: Backend, service: Service, groups: list[Any], tasks: list[SandboxTask], kind: str,
            at: datetime.datetime) -> None:
    if kind == "start":
        deployments = {d["id"]: d for d in service.deployments}
        started = []
        for t in tasks:
            if t._t["fails"]:
                t.stop(at, "Essential container in task exited", 1, "EssentialContainerExited")
                t.execution_stopped_at = at
                dep = deployments.get(t.started_by)
                if dep is not None:
                    dep["failedTasks"] += 1
            else:
                t.run(at)
                started.append(t)
        arns = [g.arn for g in groups]
        for t in started:
            arns.extend(a for a in t._t.get("groups", []) if a not in arns)
        for arn in arns:
            n = sum(1 for t in started if arn in t._t.get("groups", [g.arn for g in groups]))
            if n:
                _event(service, at, f"registered {n} targets in (target-group {arn})")
    elif kind == "healthy":
        for t in tasks:
            t._t["healthy_seen"] = True
            if t._t["container_checks"]:
                t.health_status = "HEALTHY"
                for c in t.containers:
                    c["healthStatus"] = "HEALTHY"
    elif kind == "stopping":
        for t in tasks:
            t.last_status = "STOPPING"
            t.stopping_at = at
        _event(service, at, f"has stopped {len(tasks)} running tasks: {' '.join(f'(task {t.id})' for t in tasks)}.")
    elif kind == "stopped":
        for t in tasks:
            t.last_status = "STOPPED"
            t.stopped_at = at
            t.execution_stopped_at = at
            for c in t.containers:
                c["lastStatus"] = "STOPPED"
                c["exitCode"] = t._t["exit_code"]


def _drain(backend: Backend, service: Service, groups: list[Any], target: dict[str, Any], tasks: list[SandboxTask],
           at: datetime.datetime) -> None:
    """Deregisters RUNNING tasks from the target groups: they stop once drained."""
    delay = max(_group_delay(g) for g in groups)
    for t in tasks:
        seconds, exit_code = _stop_seconds(backend, t.task_definition_arn)
        t._t = dict(t._t or {})
        t._t.update(stopping=at + _real(delay), stopped=at + _real(delay) + _real(seconds), exit_code=exit_code)
        t.desired_status = "STOPPED"
        t.last_status = "DEACTIVATING"
        t.stopped_reason = "Scaling activity initiated by (deployment %s)" % target["id"]
        t.stop_code = "ServiceSchedulerInitiated"
    _event(service, at, f"has begun draining connections on {len(tasks)} tasks.")
    for g in groups:
        _event(service, at, f"deregistered {len(tasks)} targets in (target-group {g.arn})")


def _roll_timed(backend: Backend, service: Service, sd: dict[str, Any], target: dict[str, Any], at: datetime.datetime,
                breaker: dict[str, Any] | None, groups: list[Any]) -> str:
    """One scheduler pass of a timed rollout towards `target` (see _roll)."""
    desired = service.desired_count
    maximum, minimum = _limits(desired, sd["deploymentConfiguration"])

    def live() -> tuple[list[SandboxTask], list[SandboxTask]]:
        tasks = [t for t in _state(service)["tasks"].values() if t.last_status != "STOPPED"]
        return [t for t in tasks if t.started_by == target["id"]], [t for t in tasks if t.started_by != target["id"]]

    def steady() -> bool:
        mine, others = live()
        return not others and len(mine) >= desired and all(_healthy(t, at) for t in mine)

    if steady():
        return "steady"
    if breaker is not None:
        breaker["failureCount"] = target["failedTasks"]
        enabled = sd["deploymentConfiguration"]["deploymentCircuitBreaker"].get("enable")
        if enabled and breaker["failureCount"] >= breaker["threshold"]:
            return "failed"
    mine, others = live()
    said: set[str] = set()
    moved = False
    serving = [t for t in others if _healthy(t, at)]
    healthy = sum(1 for t in mine if _healthy(t, at)) + len(serving)
    # Old tasks not yet running stop at once; running ones that are not
    # healthy drain first; healthy ones drain as far as the minimum allows.
    pending = [t for t in others if t.last_status == "PENDING"]
    if pending:
        moved = True
        for t in pending:
            t.stop(at, "Scaling activity initiated by (deployment %s)" % target["id"], None, "ServiceSchedulerInitiated")
        _event(service, at, f"has stopped {len(pending)} running tasks: {' '.join(f'(task {t.id})' for t in pending)}.")
    unhealthy = [t for t in others if t.last_status == "RUNNING" and not _healthy(t, at)]
    drain = unhealthy + serving[: max(0, healthy - minimum)]
    if drain:
        moved = True
        _drain(backend, service, groups, target, drain, at)
    mine, others = live()
    for d in service.deployments:
        if d is not target:
            d["desiredCount"] = sum(1 for t in others if t.started_by == d["id"] and t.last_status in ("RUNNING", "PENDING"))
            d["updatedAt"] = at
    missing = desired - len(mine)
    room = maximum - len(mine) - len(others)
    if missing > 0 and room > 0:
        want, placed = _placeable(backend, service, missing, room)
        if placed > 0:
            moved = True
            for t in _launch(backend, service, target, at, placed):
                _plan_task(backend, t, groups, at)
        if placed < want:
            _say(service, sd, said, at, _no_place(service))
    elif missing > 0 and not moved and all(_healthy(t, at) for t in mine) and not any(
        t.last_status in ("DEACTIVATING", "STOPPING") for t in others
    ):
        # Nothing in flight, nothing may stop and nothing may start.
        _say(service, sd, said, at, MSG_CONFIG_STUCK)
    sd["_said"] = said if moved else sd["_said"] | said
    return "steady" if steady() else ""


def _begin_rollback(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime, reason: str) -> None:
    sources = sd["sourceServiceRevisions"]
    if not sources:
        sd["status"] = "ROLLBACK_FAILED"
        sd["statusReason"] = "There is no previous service revision to roll back to."
        sd["finishedAt"] = at
        sd["_phase"] = "done"
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
        for t in _deployment_tasks(service, old[previous], "RUNNING") + _deployment_tasks(service, old[previous], "PENDING"):
            t.started_by = rb["id"]
        service.deployments.remove(old[previous])
    sd["_rollback_deployment"] = rb
    sd["_said"] = set()
    sd["_phase"] = "rollback"
    _event(service, at, f"rolling back to deployment {rb['id']}.")


def _step_deployment(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime) -> None:
    if sd.get("_bg") is not None:
        _bg_step(backend, service, sd, at)
        return
    dep = sd["_deployment"]
    if sd["status"] == "ROLLBACK_REQUESTED":
        _begin_rollback(backend, service, sd, at, sd.get("statusReason") or "Rollback requested by StopServiceDeployment.")
        return
    if sd["_phase"] == "rollback":
        rb = sd["_rollback_deployment"]
        # A rollback settles in the pass that stops the last old task, as it
        # always has in the sandbox (fastdeploy gives a cancelled run's
        # rollback a few scaled seconds).
        if _roll(backend, service, sd, rb, at, None, settle_now=True) == "steady":
            _complete(service, rb, at)
            sd["status"] = "ROLLBACK_SUCCESSFUL"
            sd["finishedAt"] = at
            sd["updatedAt"] = at
            sd["_phase"] = "done"
        return
    cb, al = sd["deploymentCircuitBreaker"], sd["alarms"]
    # Deployment alarms are watched once a task of the new revision runs, and through the bake.
    if al["status"] == "MONITORING" and (sd["_phase"] == "bake" or _deployment_tasks(service, dep, "RUNNING")):
        firing = _alarms_firing(backend, al["alarmNames"])
        if firing:
            al["status"], al["triggeredAlarmNames"] = "TRIGGERED", firing
            _fail(backend, service, sd, at, f"ECS deployment alarms: alarm detected ({', '.join(firing)}).", "alarm detected",
                  sd["deploymentConfiguration"]["alarms"].get("rollback"))
            return
    if sd["_phase"] == "bake":
        if at >= sd["_bake_until"]:
            _succeed(service, sd, at)
        return
    outcome = _roll(backend, service, sd, dep, at, cb)
    if outcome == "steady" and al["status"] == "MONITORING" and int(CONFIG["alarm_bake_steps"]) > 0:
        # The bake: the rollout is done, the old deployment (no task left) stays listed, still IN_PROGRESS.
        sd["_phase"], sd["_bake_until"] = "bake", at + _step() * int(CONFIG["alarm_bake_steps"])
    elif outcome == "steady":
        _succeed(service, sd, at)
    elif outcome == "failed":
        cb["status"] = "TRIGGERED"
        _fail(backend, service, sd, at, "ECS deployment circuit breaker: tasks failed to start.", "tasks failed to start",
              sd["deploymentConfiguration"]["deploymentCircuitBreaker"].get("rollback"))
    sd["updatedAt"] = at


def _succeed(service: Service, sd: dict[str, Any], at: datetime.datetime) -> None:
    _complete(service, sd["_deployment"], at)
    sd["status"] = "SUCCESSFUL"
    sd["finishedAt"] = at
    sd["updatedAt"] = at
    for monitor in (sd["deploymentCircuitBreaker"], sd["alarms"]):
        if monitor["status"] == "MONITORING":
            monitor["status"] = "MONITORING_COMPLETE"
    sd["_phase"] = "done"


def _fail(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime, reason: str, why: str,
          rollback: bool | None) -> None:
    """The deployment failed (circuit breaker or alarm): FAILED, then a rollback or a stop."""
    dep = sd["_deployment"]
    dep["rolloutState"] = "FAILED"
    dep["rolloutStateReason"] = reason
    dep["updatedAt"] = at
    _event(service, at, f"(deployment {dep['id']}) deployment failed: {why}.")
    if rollback:
        (_bg_begin_rollback if sd.get("_bg") is not None else _begin_rollback)(backend, service, sd, at, reason)
    else:
        sd["status"] = "STOPPED"
        sd["statusReason"] = reason
        sd["stoppedAt"] = at
        sd["_phase"] = "done"
    sd["updatedAt"] = at


def _alarms_firing(backend: Backend, names: list[str]) -> list[str]:
    """Those of `names` whose CloudWatch alarm (moto's, same account and region) is in ALARM."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[backend.account_id][backend.region_name].alarms
    return [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]


# ---------------------------------------------------------------------------
# Blue/green deployments (deploymentConfiguration.strategy BLUE_GREEN): see the
# module docstring. A service deployment's `_bg` holds its blue/green state.


def _is_blue_green(service: Service) -> bool:
    return _deployment_config(service).get("strategy") == "BLUE_GREEN"


def _bg_lb(service: Service) -> dict[str, str | None]:
    """The service's primary target group and its advancedConfiguration (the
    first loadBalancers entry that has one, else the first entry)."""
    lbs = [lb for lb in (getattr(service, "load_balancers", None) or []) if isinstance(lb, dict)]
    lb = next((lb for lb in lbs if lb.get("advancedConfiguration")), lbs[0] if lbs else {})
    adv = lb.get("advancedConfiguration") or {}
    return {
        "primary": lb.get("targetGroupArn"),
        "alternate": adv.get("alternateTargetGroupArn"),
        "prod_rule": adv.get("productionListenerRule"),
        "test_rule": adv.get("testListenerRule"),
    }


def _elbv2(account_id: str, region_name: str) -> Any:
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account_id][region_name]


def _find_rule(elb: Any, arn: str) -> tuple[Any, Any, Any]:
    """(load balancer, listener, rule) for a listener rule ARN (an ALB's
    productionListenerRule/testListenerRule), or for a listener ARN (an NLB's:
    rule None, its default actions are the ones that forward); Nones when unknown."""
    for lb in elb.load_balancers.values():
        for listener in lb.listeners.values():
            if listener.arn == arn:
                return lb, listener, None
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return lb, listener, rule
    return None, None, None


def _actions(listener: Any, rule: Any) -> list[Any]:
    return rule.actions if rule is not None else listener.default_actions


def _forward(actions: list[Any]) -> tuple[int | None, list[tuple[str, int]]]:
    """(index of the forward action, [(target group ARN, weight)]) of a rule's actions."""
    for i, action in enumerate(actions):
        data = getattr(action, "data", action)
        if data.get("Type") != "forward":
            continue
        groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            return i, [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
        if data.get("TargetGroupArn"):
            return i, [(data["TargetGroupArn"], 1)]
    return None, []


def _forwards_to(weights: list[tuple[str, int]]) -> str | None:
    """The target group a forward action sends (all, or most of) its traffic to."""
    if not weights:
        return None
    best = max(w for _, w in weights)
    return next(arn for arn, w in weights if w == best)


def _rule_target(backend: Backend, arn: str | None) -> str | None:
    if not arn:
        return None
    _, listener, rule = _find_rule(_elbv2(backend.account_id, backend.region_name), arn)
    if listener is None:
        return None
    return _forwards_to(_forward(_actions(listener, rule))[1])


def _point(backend: Backend, arn: str | None, to: str | None, other: str | None) -> None:
    """ECS's traffic shift on an ELBv2 listener rule (or an NLB listener): the
    forward action becomes a weighted ForwardConfig over both target groups,
    `to` weight 100 and `other` 0 (seen on AWS: the rule's TargetGroupArn goes
    and the weights swing on every deployment; 100/0 as users report it)."""
    from moto.elbv2.models import FakeAction

    if not arn or not to:
        return
    _, listener, rule = _find_rule(_elbv2(backend.account_id, backend.region_name), arn)
    if listener is None:
        return  # GUESS: a rule deleted under the service is left alone (ECS would fail the deployment)
    actions = _actions(listener, rule)
    i, weights = _forward(actions)
    if i is None:
        return  # not a forwarding rule (ECS does not support those for blue/green)
    order = [a for a, _ in weights]
    for a in (to, other):
        if a and a not in order:
            order.append(a)
    old = dict(getattr(actions[i], "data", actions[i]))
    old.pop("TargetGroupArn", None)
    stickiness = (old.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {"Enabled": False}
    old["ForwardConfig"] = {
        "TargetGroups": [{"TargetGroupArn": a, "Weight": 100 if a == to else 0} for a in order],
        "TargetGroupStickinessConfig": stickiness,
    }
    actions[i] = FakeAction(old)
    if rule is None:
        # An NLB listener: its default rule shows the same actions.
        for default in listener._default_rule.values():
            if default.actions is not actions:
                default.actions[i] = actions[i]


def _task_tg(service: Service, task: SandboxTask) -> str | None:
    """The target group a task of the service registers in: its own (a
    blue/green task) or the service's primary one."""
    return getattr(task, "_tg", None) or _bg_lb(service)["primary"]


def _live(service: Service) -> list[SandboxTask]:
    """The service's tasks that run or are about to (not stopping)."""
    return [t for t in _state(service)["tasks"].values() if t.last_status in ("PENDING", "RUNNING")]


def _held(stage: str) -> bool:
    hold = CONFIG["blue_green_hold"]
    return stage == hold if isinstance(hold, str) else bool(hold) and stage in hold


def _bg_init(backend: Backend, service: Service, sd: dict[str, Any], before_td: str | None, at: datetime.datetime) -> None:
    """A new service deployment of a BLUE_GREEN service: which side is blue."""
    lb = _bg_lb(service)
    st = _state(service)
    # Blue is where production traffic goes now: the production rule's target
    # group, else (no rule) where the last deployment left it.
    blue_tg = _rule_target(backend, lb["prod_rule"]) or st.get("bg_live_tg") or lb["primary"]
    green_tg = next((a for a in (lb["primary"], lb["alternate"]) if a and a != blue_tg), blue_tg)
    target = sd["_deployment"]
    others = [t for t in _live(service) if t.started_by != target["id"]]
    blue = [t for t in others if _task_tg(service, t) == blue_tg]
    blue_td = blue[0].task_definition_arn if blue else before_td
    # RECONCILE_SERVICE "only happens when you start a new service deployment
    # with more than 1 service revision in an ACTIVE state": tasks of another
    # revision than blue's, or outside blue's target group (a deployment superseded midway).
    reconcile = any(t not in blue or t.task_definition_arn != blue_td for t in others)
    sd["_bg"] = {
        "blue_tg": blue_tg,
        "green_tg": green_tg,
        "prod_rule": lb["prod_rule"],
        "test_rule": lb["test_rule"],
        "blue_td": blue_td,
        "leaving": [],
        "stage_until": at,
        "requested_until": None,
    }
    sd["_phase"] = "blue_green"
    sd["_next_at"] = at + _step()
    _bg_enter(backend, service, sd, "RECONCILE_SERVICE" if reconcile else "PRE_SCALE_UP", at)


def _bg_enter(backend: Backend, service: Service, sd: dict[str, Any], stage: str, at: datetime.datetime) -> None:
    bg = sd["_bg"]
    steps = max(1, int(CONFIG["blue_green_stage_steps"]))
    if stage == "BAKE_TIME":
        minutes = float(sd["deploymentConfiguration"].get("bakeTimeInMinutes") or 0)
        steps = max(1, math.ceil(minutes * float(CONFIG["bake_steps_per_minute"])))
    sd["lifecycleStage"] = stage
    sd["updatedAt"] = at
    bg["stage_until"] = at + _step() * steps
    target = sd["_deployment"]
    if stage == "RECONCILE_SERVICE":
        # Only blue keeps running; test traffic goes back to it (GUESS).
        bg["leaving"] = [t for t in _live(service) if t.started_by != target["id"]
                         and (_task_tg(service, t) != bg["blue_tg"] or t.task_definition_arn != bg["blue_td"])]
        _bg_retire(backend, service, target, bg["leaving"], at)
        _point(backend, bg["test_rule"], bg["blue_tg"], bg["green_tg"])
    elif stage == "SCALE_UP":
        _bg_scale(backend, service, sd, at)
    elif stage == "TEST_TRAFFIC_SHIFT":
        _point(backend, bg["test_rule"], bg["green_tg"], bg["blue_tg"])
    elif stage == "PRODUCTION_TRAFFIC_SHIFT":
        _point(backend, bg["prod_rule"], bg["green_tg"], bg["blue_tg"])
        _state(service)["bg_live_tg"] = bg["green_tg"]
    elif stage == "CLEAN_UP":
        bg["leaving"] = [t for t in _live(service) if t.started_by != target["id"]]
        _bg_retire(backend, service, target, bg["leaving"], at)


def _bg_retire(backend: Backend, service: Service, target: dict[str, Any], tasks: list[SandboxTask], at: datetime.datetime) -> None:
    """Stops tasks that are not `target`'s: those registered in a target group
    drain first (timed services), the others stop at once."""
    groups = _target_groups(backend, service)
    if tasks and not groups:
        _stop_old(service, target, tasks, at)
    pending = [t for t in tasks if t.last_status == "PENDING"] if groups else []
    if pending:
        for t in pending:
            t.stop(at, "Scaling activity initiated by (deployment %s)" % target["id"], None, "ServiceSchedulerInitiated")
        _event(service, at, f"has stopped {len(pending)} running tasks: {' '.join(f'(task {t.id})' for t in pending)}.")
    running = [t for t in tasks if t.last_status == "RUNNING"] if groups else []
    elb = _elbv2(backend.account_id, backend.region_name)
    by_group: dict[str, list[SandboxTask]] = {}
    for t in running:
        by_group.setdefault(_task_tg(service, t) or "", []).append(t)
    for arn, ts in by_group.items():
        group = elb.target_groups.get(arn)
        _drain(backend, service, [group] if group is not None else groups, target, ts, at)
    for d in service.deployments:
        n = sum(1 for t in _live(service) if t.started_by == d["id"])
        if d is not target and d["desiredCount"] != n:
            d["desiredCount"] = n
            d["updatedAt"] = at


def _bg_launch(backend: Backend, service: Service, sd: dict[str, Any], dep: dict[str, Any], tg: str | None,
               at: datetime.datetime, said: set[str]) -> bool:
    """Places the missing tasks of `dep` in target group `tg`, as far as the
    cluster's capacity allows (maximumPercent does not apply: blue/green needs
    room for both revisions). Returns whether any was placed."""
    missing = service.desired_count - sum(1 for t in _live(service) if t.started_by == dep["id"])
    if missing <= 0:
        return False
    want, placed = _placeable(backend, service, missing, missing)
    if placed > 0:
        groups = _target_groups(backend, service)
        group = _elbv2(backend.account_id, backend.region_name).target_groups.get(tg) if tg else None
        for t in _launch(backend, service, dep, at, placed):
            t._tg = tg
            if groups:
                _plan_task(backend, t, [group] if group is not None else groups, at)
    if placed < want:
        _say(service, sd, said, at, _no_place(service))
    return placed > 0


def _bg_ready(backend: Backend, service: Service, dep: dict[str, Any], at: datetime.datetime) -> bool:
    """Whether `dep` has the desired number of healthy tasks (a service
    without a target group: RUNNING since an earlier step, as in rolling updates)."""
    timed = bool(_target_groups(backend, service))
    mine = [t for t in _live(service) if t.started_by == dep["id"]]
    healthy = [t for t in mine if (_healthy(t, at) if timed else t.last_status == "RUNNING" and t.started_at < at)]
    return len(healthy) >= service.desired_count


def _bg_start_pending(backend: Backend, service: Service, dep: dict[str, Any], at: datetime.datetime) -> int:
    """A service without a target group: `dep`'s tasks placed at an earlier step
    start, fail or hang (as in a rolling update's pass). Returns how many failed."""
    if _target_groups(backend, service):
        return 0
    pending = [t for t in _live(service) if t.started_by == dep["id"] and t.last_status == "PENDING" and t.created_at < at]
    fails = _marker(dep["taskDefinition"], backend, "fail_markers")
    if not pending or (not fails and _marker(dep["taskDefinition"], backend, "hang_markers")):
        return 0
    for t in pending:
        if fails:
            t.stop(at, "Essential container in task exited", 1, "EssentialContainerExited")
        else:
            t.run(at)
    dep["updatedAt"] = at
    if fails:
        dep["failedTasks"] += len(pending)
        return len(pending)
    return 0


def _bg_scale(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime) -> str:
    """One pass of SCALE_UP: green tasks start beside blue. Returns "failed"
    when the circuit breaker triggered, "ready" when green is all healthy, else ""."""
    bg, dep, cb = sd["_bg"], sd["_deployment"], sd["deploymentCircuitBreaker"]
    _bg_start_pending(backend, service, dep, at)
    cb["failureCount"] = dep["failedTasks"]
    if sd["deploymentConfiguration"]["deploymentCircuitBreaker"].get("enable") and cb["failureCount"] >= cb["threshold"]:
        return "failed"
    said: set[str] = set()
    moved = _bg_launch(backend, service, sd, dep, bg["green_tg"], at, said)
    sd["_said"] = said if moved else sd["_said"] | said
    return "ready" if _bg_ready(backend, service, dep, at) else ""


def _bg_step(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime) -> None:
    """One pass of a blue/green deployment: at most one lifecycle stage further."""
    bg, dep = sd["_bg"], sd["_deployment"]
    if sd["status"] == "ROLLBACK_REQUESTED":
        if bg["requested_until"] is None or at >= bg["requested_until"]:
            _bg_begin_rollback(backend, service, sd, at, sd.get("statusReason") or "Rollback requested by StopServiceDeployment.")
        return
    if sd["_phase"] == "rollback":
        _bg_rollback_pass(backend, service, sd, at)
        return
    stage = sd["lifecycleStage"]
    cb, al = sd["deploymentCircuitBreaker"], sd["alarms"]
    # Deployment alarms are watched once a green task runs, until the clean-up.
    watched = BG_STAGES.index("SCALE_UP") <= BG_STAGES.index(stage) <= BG_STAGES.index("BAKE_TIME")
    if al["status"] == "MONITORING" and watched and _deployment_tasks(service, dep, "RUNNING"):
        firing = _alarms_firing(backend, al["alarmNames"])
        if firing:
            al["status"], al["triggeredAlarmNames"] = "TRIGGERED", firing
            _fail(backend, service, sd, at, f"ECS deployment alarms: alarm detected ({', '.join(firing)}).", "alarm detected",
                  sd["deploymentConfiguration"]["alarms"].get("rollback"))
            return
    if stage == "SCALE_UP":
        outcome = _bg_scale(backend, service, sd, at)
        if outcome == "failed":
            cb["status"] = "TRIGGERED"
            _fail(backend, service, sd, at, "ECS deployment circuit breaker: tasks failed to start.", "tasks failed to start",
                  sd["deploymentConfiguration"]["deploymentCircuitBreaker"].get("rollback"))
            return
        done = outcome == "ready"
    elif stage in ("RECONCILE_SERVICE", "CLEAN_UP"):
        done = all(t.last_status == "STOPPED" for t in bg["leaving"])
    else:
        done = True
    # A stage with a lifecycle hook lasts until the hook answers (blue_green_hold stands in for one that has not).
    if not done or at < bg["stage_until"] or _held(stage):
        return
    if stage == "CLEAN_UP":
        _succeed(service, sd, at)
        return
    _bg_enter(backend, service, sd, BG_STAGES[BG_STAGES.index(stage) + 1], at)


def _bg_begin_rollback(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime, reason: str) -> None:
    """Traffic back to blue, green's tasks stopped, the service back on blue's revision."""
    bg, target = sd["_bg"], sd["_deployment"]
    blue_td = bg["blue_td"]
    if not blue_td:
        sd["status"] = "ROLLBACK_FAILED"
        sd["statusReason"] = "There is no previous service revision to roll back to."
        sd["finishedAt"] = at
        sd["_phase"] = "done"
        return
    sd["status"] = "ROLLBACK_IN_PROGRESS"
    sd["statusReason"] = reason
    sd["rollback"] = {"reason": reason, "startedAt": at, "serviceRevisionArn": _revision_arn(backend, service, blue_td)}
    sd["updatedAt"] = at
    _point(backend, bg["prod_rule"], bg["blue_tg"], bg["green_tg"])
    _point(backend, bg["test_rule"], bg["blue_tg"], bg["green_tg"])
    _state(service)["bg_live_tg"] = bg["blue_tg"]
    # As in a rolling update's rollback: a deployment of blue's revision adopts blue's tasks.
    blue = [t for t in _live(service) if t.started_by != target["id"] and _task_tg(service, t) == bg["blue_tg"]
            and t.task_definition_arn == blue_td]
    rb = _new_deployment(service, blue_td, at)
    for t in blue:
        t.started_by = rb["id"]
    for d in [d for d in service.deployments if d is not rb and d is not target]:
        if not any(t.started_by == d["id"] for t in _state(service)["tasks"].values() if t.last_status != "STOPPED"):
            service.deployments.remove(d)
    sd["_rollback_deployment"] = rb
    sd["_said"] = set()
    sd["_phase"] = "rollback"
    _event(service, at, f"rolling back to deployment {rb['id']}.")
    _bg_retire(backend, service, rb, [t for t in _live(service) if t.started_by != rb["id"]], at)


def _bg_rollback_pass(backend: Backend, service: Service, sd: dict[str, Any], at: datetime.datetime) -> None:
    bg, rb = sd["_bg"], sd["_rollback_deployment"]
    _bg_retire(backend, service, rb, [t for t in _live(service) if t.started_by != rb["id"]], at)
    # Blue tasks already stopped by the clean-up come back (in blue's target group).
    _bg_start_pending(backend, service, rb, at)
    said: set[str] = set()
    moved = _bg_launch(backend, service, sd, rb, bg["blue_tg"], at, said)
    sd["_said"] = said if moved else sd["_said"] | said
    others = [t for t in _state(service)["tasks"].values() if t.started_by != rb["id"] and t.last_status != "STOPPED"]
    if not others and _bg_ready(backend, service, rb, at):
        _complete(service, rb, at)
        sd["status"] = "ROLLBACK_SUCCESSFUL"
        sd["finishedAt"] = at
        sd["updatedAt"] = at
        sd["_phase"] = "done"


def _advance(backend: Backend, service: Service) -> None:
    now = _now()
    timed = bool(_target_groups(backend, service))
    for sd in _state(service)["deployments"]:
        while sd["status"] in IN_PROGRESS_STATES and sd["_phase"] != "done":
            at, periodic = sd["_next_at"], True
            if timed:
                # A timed rollout's scheduler passes when a task changes state.
                due = _next_due(service)
                if due is not None and due < at:
                    at, periodic = due, False
            if at > now:
                break
            if timed:
                _apply_due(backend, service, at)
            if periodic:
                sd["_next_at"] = at + _step()
            _step_deployment(backend, service, sd, at)
            _sync_counts(service, sd)
    if timed:
        # Tasks still stopping after their deployment settled.
        _apply_due(backend, service, now)
        _recount(service)


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
        if service_properties.get("deployment_configuration") is not None:
            # moto replaces the whole configuration; ECS keeps what the update leaves out (an
            # update without `alarms` keeps the service's alarms: aws/copilot-cli#4565).
            service_properties["deployment_configuration"] = {**_deployment_config(service), **service_properties["deployment_configuration"]}
        out = _orig_update_service(self, service_properties)
        service.running_count, service.pending_count = running, pending
        target = self.describe_task_definition(service.task_definition).arn if service.task_definition else None
        service.task_definition = before
        if target != before or force or service.desired_count != desired_before:
            if target != before or force:
                at = _now()
                sd = _start_service_deployment(self, service, target, at)
                if _is_blue_green(service):
                    _bg_init(self, service, sd, before, at)
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


def describe_service_revisions(self: Backend, arns: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """DescribeServiceRevisions: the task definition and the container images
    of each revision a service deployment named (sourceServiceRevisions,
    targetServiceRevision). imageDigest is the image's own digest when it is
    given by digest (GUESS: ECS resolves a tag to a digest when the revision
    is deployed; the sandbox resolves nothing and leaves it out)."""
    with LOCK:
        found, failures = [], []
        for arn in arns:
            hit = None
            for service in self.services.values():
                for td_arn in _state(service)["revisions"]:
                    if _revision_arn(self, service, td_arn) == arn:
                        hit = (service, td_arn)
            if hit is None:
                failures.append({"arn": arn, "reason": "MISSING", "detail": "The service revision does not exist."})
                continue
            service, td_arn = hit
            td = self.describe_task_definition(td_arn)
            images = []
            for c in td.container_definitions:
                image = c.get("image", "")
                entry = {"containerName": c.get("name"), "image": image}
                if "@sha256:" in image:
                    entry["imageDigest"] = image.split("@", 1)[1]
                images.append(entry)
            found.append({
                "serviceRevisionArn": arn,
                "serviceArn": service.arn,
                "clusterArn": service.cluster_arn,
                "taskDefinition": td_arn,
                "launchType": service.launch_type or "EC2",
                "containerImages": images,
                "createdAt": _state(service).setdefault("revision_created", {}).setdefault(td_arn, _now()),
            })
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
            if sd.get("_bg") is not None:
                # A blue/green deployment shows ROLLBACK_REQUESTED for a step before rolling back (GUESS).
                sd["_bg"]["requested_until"] = _now() + _step()
        elif sd["status"] not in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):
            raise ConflictException(f"The service deployment is {sd['status']} and can no longer be stopped.")
        return arn


def _elbv2_read(name: str) -> None:
    """ELBv2 reads of rules and listeners first let blue/green deployments of
    the same account and region catch up: ECS shifts traffic in the background,
    while the sandbox moves deployments on reads (of ECS, or these)."""
    from moto.elbv2.models import ELBv2Backend

    original = getattr(ELBv2Backend, name)

    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        with LOCK:
            if self.account_id in ecs_models.ecs_backends and self.region_name in ecs_models.ecs_backends[self.account_id]:
                _advance_all(ecs_models.ecs_backends[self.account_id][self.region_name])
            return original(self, *args, **kwargs)

    setattr(ELBv2Backend, name, read)


for _name in ("describe_rules", "describe_listeners"):
    _elbv2_read(_name)

Backend.create_service = create_service
Backend.update_service = update_service
Backend.describe_services = describe_services
Backend.list_tasks = list_tasks
Backend.describe_tasks = describe_tasks
Backend.list_service_deployments = list_service_deployments
Backend.describe_service_deployments = describe_service_deployments
Backend.stop_service_deployment = stop_service_deployment
Backend.describe_service_revisions = describe_service_revisions


# ---------------------------------------------------------------------------
# Response handlers for the operations stock moto lacks, and the fields it drops.

Response = ecs_responses.EC2ContainerServiceResponse
_orig_create_service_response = Response.create_service
_orig_register_task_definition = Response.register_task_definition
_orig_tag_resource = Response.tag_resource


class AccessDeniedException(ServiceException):
    def __init__(self, resource: str) -> None:
        super().__init__(
            "AccessDeniedException",
            f"User: arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/deploy is not authorized to perform: ecs:TagResource on resource: "
            f"{resource} because no identity-based policy allows the ecs:TagResource action",
        )


def _register_task_definition_response(self: Response) -> ActionResult:
    if CONFIG["deny_tagging"] and self._get_param("tags"):
        family = self._get_param("family")
        raise AccessDeniedException(f"arn:aws:ecs:{self.region}:{self.current_account}:task-definition/{family}")
    return _orig_register_task_definition(self)


def _tag_resource_response(self: Response) -> ActionResult:
    if CONFIG["deny_tagging"]:
        raise AccessDeniedException(self._get_param("resourceArn"))
    return _orig_tag_resource(self)


def _create_service_response(self: Response) -> ActionResult:
    result = _orig_create_service_response(self)
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
    dc = self._get_param("deploymentConfiguration")
    if dc:
        service.deployment_configuration = dc
    _deployment_config(service)
    # Stock moto drops it; ECS defaults it to 0 for a service with a load balancer.
    grace = self._get_param("healthCheckGracePeriodSeconds")
    service.health_check_grace_period_seconds = grace if grace is not None else (0 if service.load_balancers else None)
    return result


def _list_service_deployments(self: Response) -> ActionResult:
    items = self.ecs_backend.list_service_deployments(
        self._get_param("cluster"), self._get_param("service"), self._get_param("status"), self._get_param("createdAt")
    )
    return ActionResult({"serviceDeployments": items})


def _describe_service_deployments(self: Response) -> ActionResult:
    found, failures = self.ecs_backend.describe_service_deployments(self._get_param("serviceDeploymentArns", []))
    return ActionResult({"serviceDeployments": found, "failures": failures})


def _describe_service_revisions(self: Response) -> ActionResult:
    found, failures = self.ecs_backend.describe_service_revisions(self._get_param("serviceRevisionArns", []))
    return ActionResult({"serviceRevisions": found, "failures": failures})


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
Response.register_task_definition = _register_task_definition_response
Response.tag_resource = _tag_resource_response
Response.list_task_definitions = _list_task_definitions_response
Response.list_service_deployments = _list_service_deployments
Response.describe_service_deployments = _describe_service_deployments
Response.stop_service_deployment = _stop_service_deployment
Response.describe_service_revisions = _describe_service_revisions


# ---------------------------------------------------------------------------
# Control endpoint: /_sandbox/ecs/<command>. Other extensions chain the same
# way, each taking only its own prefix.

PREFIX = "/_sandbox/ecs/"
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            if "blue_green_hold" in body:
                hold = body["blue_green_hold"]
                stages = [hold] if isinstance(hold, str) else list(hold or [])
                wrong = [x for x in stages if x not in BG_HOOK_STAGES]
                if wrong:
                    raise ValueError(f"blue_green_hold takes a lifecycle stage a hook can run at ({', '.join(BG_HOOK_STAGES)}), "
                                     f"a list of them or null, not {wrong}")
                # Deployments already past their steps due still are, under the hold in force until now.
                for backend in _all_ecs_backends():
                    _advance_all(backend)
            for key in ("step_seconds", "fail_markers", "hang_markers", "deny_tagging", "fail_after", "alarm_bake_steps",
                        "blue_green_stage_steps", "bake_steps_per_minute", "blue_green_hold") + TIMED_KEYS:
                if key in body:
                    CONFIG[key] = body[key]
            return dict(CONFIG)
        if command == "listener-rule":
            return _listener_rule_report(body["rule"], body.get("account", DEFAULT_ACCOUNT_ID), body.get("region", "us-east-1"))
        if command == "capacity":
            backend = ecs_models.ecs_backends[body.get("account", DEFAULT_ACCOUNT_ID)][body.get("region", "us-east-1")]
            cluster = backend._get_cluster(body["cluster"])
            # Steps due so far ran under the old limit.
            _advance_all(backend)
            key = (backend.account_id, backend.region_name, cluster.name)
            if "max_tasks" in body:
                if body["max_tasks"] is None:
                    CAPACITY.pop(key, None)
                else:
                    if int(body["max_tasks"]) < 0:
                        raise ValueError("max_tasks is a number of tasks, 0 or more, or null for no limit")
                    CAPACITY[key] = int(body["max_tasks"])
            return {"cluster": cluster.name, "max_tasks": CAPACITY.get(key), "used": _cluster_used(backend, cluster.name)}
        if command == "service-status":
            backend = ecs_models.ecs_backends[body.get("account", DEFAULT_ACCOUNT_ID)][body.get("region", "us-east-1")]
            service = backend._get_service(body["cluster"], body["service"])
            service.status = body["status"]
            return {"service": service.name, "status": service.status}
        raise KeyError(command)


def _all_ecs_backends() -> list[Backend]:
    """The ECS backends moto has made so far (every account and region used)."""
    return [b for regions in list(dict.values(ecs_models.ecs_backends)) for b in list(dict.values(regions))]


def _listener_rule_report(arn: str, account: str, region: str) -> dict[str, Any]:
    """Where a listener rule (or an NLB listener) forwards now, and which
    revisions serve that target group: what a test answers HTTP by."""
    elb = _elbv2(account, region)
    lb, listener, rule = _find_rule(elb, arn)
    if listener is None:
        raise KeyError(f"no listener rule or listener {arn}")
    backend = ecs_models.ecs_backends[account][region]
    _advance_all(backend)
    weights = _forward(_actions(listener, rule))[1]
    target = _forwards_to(weights)
    serving = []
    for service in backend.services.values():
        for t in _state(service)["tasks"].values():
            if t.last_status == "RUNNING" and _task_tg(service, t) == target and t.task_definition_arn not in serving:
                serving.append(t.task_definition_arn)
    return {
        "rule": arn,
        "listener": listener.arn,
        "port": int(listener.port) if listener.port is not None else None,
        "protocol": listener.protocol,
        "load_balancer": lb.arn,
        "dns_name": lb.dns_name,
        "target_group": target,
        "weights": [{"target_group": a, "weight": w} for a, w in weights],
        # Task definitions of the RUNNING service tasks registered in that target group
        # (draining ones excluded), and the one when there is one.
        "task_definitions": serving,
        "task_definition": serving[0] if len(serving) == 1 else None,
    }


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    return answered if answered is not None else _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
