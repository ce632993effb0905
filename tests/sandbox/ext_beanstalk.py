"""Elastic Beanstalk deployments that move through their states, as EB reports them.

Stock moto stores applications and environments only (every environment Ready
with Health Grey, no versions, no events, no deployments). This extension
patches moto's Elastic Beanstalk responses, following the EB API reference,
the EB developer guide (deployment policies, aborting updates, enhanced health
colours and statuses, the Docker platform) and event texts taken from real EB
output (the EB CLI's sources and fixtures, issue threads quoting `eb deploy`
and `eb events`). What the sandbox had to guess is marked GUESS.

Storage and versions
- CreateStorageLocation returns `elasticbeanstalk-<region>-<account>` and
  creates that bucket in moto's S3 (served by the same process) when missing.
- CreateApplicationVersion stores the version (ApplicationVersionArn,
  SourceBundle, Description, DateCreated/DateUpdated) and logs EB's events
  ("createApplicationVersion is starting.", "Created new Application Version:
  <label>", "createApplicationVersion completed successfully."). EB checks the
  bundle synchronously: the call fails and nothing is stored when the label is
  over 100 characters (ValidationError "1 validation error detected: ..."),
  the application is unknown ("No Application named '<app>' found."), the
  label exists ("Application Version <label> already exists."), bucket or key
  is missing ("Both S3 bucket and key must be specified."), the S3 object or
  bucket does not exist (InvalidParameterCombination "Unable to download from
  S3 location (Bucket: <b>  Key: <k>). Reason: Not Found"), or the object is
  empty or over `max_bundle_bytes` ("Source bundle is empty or exceeds
  maximum allowed size: 524288000"); all InvalidParameterValue unless said.
- Status goes on the wire in capitals, as EB sends it (the model's enum is
  capitalised, so the Rust SDK reports e.g. Unknown("PROCESSED"): compare
  `as_str()`). Process=false: UNPROCESSED. Process=true: PROCESSING, and `process_steps`
  steps (default one) later PROCESSED, or FAILED when the bundle is not a ZIP (a bare
  Dockerrun.aws.json, which the Docker platform accepts, passes) or an
  `.ebextensions/*.config` is not valid YAML/JSON ("configuration files didn't
  pass validation"). EB gives no reason for FAILED, nor does the sandbox.
  Processing cannot check for Dockerfile/Dockerrun.aws.json/docker-compose.yml
  since a version belongs to no platform: EB finds that when it deploys to a
  Docker environment (below).
- DescribeApplications honours ApplicationNames (stock moto ignores it) and
  lists each application's Versions.
- DescribeApplicationVersions filters by ApplicationName and VersionLabels,
  newest first, MaxRecords/NextToken. DeleteApplicationVersion refuses a
  version an environment runs (GUESS: wording); with DeleteSourceBundle true
  it deletes the bundle's S3 object too. UpdateApplicationVersion changes
  the Description. A Description longer than 200 characters is a
  ValidationError, as the API reference's length limit says.

Environments
- CreateEnvironment takes SolutionStackName or PlatformArn and derives the
  other ("64bit Amazon Linux 2023 v4.3.0 running Docker" <->
  "arn:aws:elasticbeanstalk:<region>::platform/Docker running on 64bit Amazon
  Linux 2023/4.3.0"), so a Docker environment and, say, a Python one differ in
  both. It reports EnvironmentId (e-xxxxxxxxxx), CNAME
  (<name>.eba-xxxxxxxx.<region>.elasticbeanstalk.com, "generated automatically
  by appending a random alphanumeric string to the environment name" as the
  API reference says; with CNAMEPrefix <prefix>.<region>.elasticbeanstalk.com,
  without the random part, as on EB), EndpointURL (an ELB
  DNS name, an IP when aws:elasticbeanstalk:environment EnvironmentType is
  SingleInstance), Status Ready, Health Green, HealthStatus Ok, VersionLabel
  (the version it was created with, or none) and EnvironmentArn. It runs
  aws:autoscaling:asg MinSize instances (else `instances`). Errors: "No
  Application Version named '<label>' found.", "Environment <name> already
  exists.", a CNAMEPrefix an environment (not Terminated) holds: "DNS name
  (<prefix>.<region>.elasticbeanstalk.com) is not available." (EB's text),
  a CNAMEPrefix outside 4-63 characters: ValidationError.
- CheckDNSAvailability answers Available and FullyQualifiedCNAME
  (<prefix>.<region>.elasticbeanstalk.com): false while an environment that is
  not Terminated holds that CNAME, by creation or by a swap (GUESS: a
  Terminating environment still holds it).
- TerminateEnvironment answers Status Terminating, Health Grey; a step later
  the environment is Terminated ("terminateEnvironment is starting.",
  "terminateEnvironment completed successfully."), its name is free again, and
  DescribeEnvironments still lists it: IncludeDeleted defaults to true,
  IncludeDeleted=false hides it, IncludedDeletedBackTo narrows it. While an
  update runs: "Cannot terminate environment named <name>. It is currently
  pending deployment.".
- DescribeEnvironments honours ApplicationName, VersionLabel,
  EnvironmentIds/Names, IncludeDeleted, MaxRecords/NextToken.

Deployments (UpdateEnvironment with VersionLabel)
- Errors: not Ready -> "Environment named <name> is in an invalid state for
  this operation. Must be Ready."; unknown environment -> "No Environment
  found for EnvironmentName = '<name>'." (or EnvironmentId = '<id>'); unknown
  label -> "No Application Version named '<label>' found."; VersionLabel with
  OptionSettings/OptionsToRemove/TemplateName -> InvalidParameterCombination (the API
  reference forbids it; GUESS: wording); a FAILED or PROCESSING version is
  refused (EB's API refuses it; GUESS: "Application version <label> cannot be
  deployed: its status is FAILED.").
- Every EB response carries a fresh UUID RequestId (ResponseMetadata and
  x-amzn-RequestId; moto's is neither fresh per call nor a UUID). The events
  of an update carry the RequestId of the UpdateEnvironment that caused them;
  health transitions carry none, as on EB. The answer is EB's: Status
  Updating, Health Grey (no HealthStatus), VersionLabel the NEW label,
  AbortableOperationInProgress true. DescribeEnvironments shows the new label
  while Updating too; when the deployment fails EB puts the previous label back
  (so "VersionLabel is mine and Ready" means success only after Ready).
- Progress is computed lazily from wall-clock time on every request (and
  control call), one step every `step_seconds`, no thread. All at once (the
  default policy): step 0 "Environment update is starting."; 1 "Deploying new
  version to instance(s).", health Ok -> Info (Green, per the enhanced health
  docs; not Grey) "Environment health has transitioned from Ok to Info.
  Application update in progress on 1 instance. 0 out of 1 instance completed
  (running for N seconds)."; 2 "Instance deployment completed successfully."
  once per instance; 3 "New application version was deployed to running EC2
  instances.", "Environment update completed successfully.", Ready; 4 health
  Info -> Ok "... Application update completed N seconds ago and took M
  seconds." (GUESS: that sentence, modelled on EB's "Initialization completed
  26 seconds ago and took 5 minutes.").
- Rolling (aws:elasticbeanstalk:command DeploymentPolicy Rolling or
  RollingWithAdditionalBatch; BatchSizeType Percentage|Fixed, BatchSize), one
  step to start and one to finish each batch: "Batch n: Starting application
  deployment on instance(s) [i-a, i-b].", "Batch n: Starting application
  deployment command execution.", then "Instance deployment completed
  successfully.", "Batch n: Completed application deployment command
  execution.", "Command execution completed on k of N instances in
  environment.", "Batch n: Registering instance(s) with the load balancer and
  waiting for them to be healthy.", "Batch n: Completed application
  deployment.". Immutable and TrafficSplitting are not modelled (they run as
  All at once).
- A bad image: the bundle's image (Dockerrun.aws.json Image.Name, v2
  containerDefinitions[].image, docker-compose.yml services.*.image, or a
  Dockerfile FROM) contains a `fail_markers` entry ("crashloop", "badimage"),
  so the instance command fails. Amazon Linux 2/2023 Docker platforms say so
  generically and leave the detail (the docker pull or run that failed) in
  eb-engine.log: ERROR "Instance deployment failed. For details, see
  'eb-engine.log'.", ERROR "[Instance: i-...] Command failed on instance.
  Return code: 1 Output: Engine execution has encountered an error..", INFO
  "Command execution completed on all instances. Summary: [Successful: 0,
  Failed: 1].", ERROR "Unsuccessful command execution on instance id(s)
  'i-...'. Aborting the operation." (several ids: GUESS ", "-joined), health
  Info -> Degraded (Red) "Command failed on all instances. Incorrect
  application version found on all instances. Expected version "<old>"
  (deployment N)."; next step ERROR "Failed to deploy application." and Ready,
  with the PREVIOUS VersionLabel and Red/Degraded health that stays until a
  good deployment. EB does not redeploy the previous version after an all at
  once or rolling failure (the deployment policies table: rollback is a
  "manual redeploy"); instances record the failed deployment ("Incorrect
  application version "<new>" (deployment 3). Expected version "<old>"
  (deployment 2)."). With Rolling, the batches that finished before the
  failing one (`fail_from_batch`, default 1) run the new version, the rest the
  old one: mixed, as DescribeInstancesHealth shows. Legacy Amazon Linux AMI
  (2018.03) Docker stacks named the image in an event instead: "Failed to
  pull Docker image <image>: Error response from daemon: pull access denied
  for <repo>, repository does not exist or may require 'docker login'. Check
  snapshot logs for details." and a 03build.sh hook failure as output.
- A Docker bundle with none of Dockerfile, Dockerrun.aws.json,
  docker-compose.yml at the ZIP root fails the same way, after ERROR "Instance
  deployment: Both 'Dockerfile' and 'Dockerrun.aws.json' are missing in your
  source bundle. Include at least one of them. The deployment failed.". A
  bundle that is no ZIP (nor a bare Dockerrun.aws.json), or whose S3 object
  has gone, fails generically, as does a bundle without Dockerrun.aws.json on
  the ECS (multicontainer) platform.
- `rollback_markers` ("rollback"): the version's configuration change fails
  and EB reverts it, the trap of Ready + Green without our version, in the
  texts of a real reverted update: "Updating environment <env>'s
  configuration settings.", ERROR "Service:AmazonCloudFormation, Message:Stack
  named 'awseb-<env-id>-stack' aborted operation. Current state:
  'UPDATE_ROLLBACK_IN_PROGRESS' Reason: The following resource(s) failed to
  update: [AWSEBAutoScalingGroup].", ERROR "Failed to deploy configuration.",
  INFO "The environment was reverted to the previous configuration setting.",
  then Ready, health unchanged (Green/Ok), the PREVIOUS VersionLabel, and
  neither "Failed to deploy application." nor "Environment update completed
  successfully.".
- `degrade_markers` ("unhealthy"): the deployment succeeds (our label,
  Ready), then health goes Info -> Severe (Red) "100.0 % of the requests are
  failing with HTTP 5xx. ELB processes are not healthy on all instances." and
  stays.
- AbortEnvironmentUpdate: only while an abortable update runs, else
  "Environment named <name> is in an invalid state for this operation. Must
  be pending deployment." (EB's text). Status Aborting, a step later Ready
  with the previous VersionLabel. Per the guide, aborting an application
  deployment "simply stops the deployment; some instances will have the new
  application version and others will continue to run the existing
  application version": instances already done keep the new version (health
  Degraded, incorrect version). GUESS: the events, after EB's "<operation> is
  starting." pattern: "abortEnvironmentUpdate is starting.",
  "abortEnvironmentUpdate completed successfully.".
- UpdateEnvironment with OptionSettings and/or OptionsToRemove only is a
  configuration update (DeploymentPolicy and the like are kept): "Environment
  update is starting.", "Updating environment <env>'s configuration
  settings.", a step later "Successfully deployed new configuration to
  environment." and Ready. See Configuration settings below.

Swapping CNAMEs (SwapEnvironmentCNAMEs)
- Parameters as the API reference has them: SourceEnvironmentName or
  SourceEnvironmentId, DestinationEnvironmentName or DestinationEnvironmentId
  (both of a side may be given). Errors, nothing starts: a name outside 4-40
  characters, ValidationError; a side with neither, MissingParameter "You must
  specify at least the SourceEnvironmentId or the SourceEnvironmentName."
  (Destination likewise); a name without the other side's name, or an id
  without the other side's id (the reference: "You must specify the
  SourceEnvironmentName with the DestinationEnvironmentName", ids likewise),
  InvalidParameterCombination "You must specify the SourceEnvironmentName with
  the DestinationEnvironmentName." (GUESS: the messages); an unknown or
  Terminated environment, "No Environment found for EnvironmentName =
  '<name>'." (or EnvironmentId); both the same environment, "Cannot swap CNAMEs
  of environment <name> with itself." (GUESS); two applications' environments,
  "Environments <a> and <b> do not belong to the same application." (GUESS:
  the console offers only the application's environments; wording and the
  API's check guessed); either not Ready (Updating, Aborting, Terminating...),
  "Environment named <name> is in an invalid state for this operation. Must be
  Ready." (EB's text for other operations; GUESS: that swaps use it), all
  InvalidParameterValue unless said.
- Asynchronous, as on EB: the call answers at once (no result, a RequestId)
  and both environments are Updating (AbortableOperationInProgress false, so
  AbortEnvironmentUpdate, UpdateEnvironment, TerminateEnvironment without
  ForceTerminate and another swap are refused). Events, from the EB CLI's
  `eb swap` output in the guide and a real blue/green walkthrough: step 0
  "swapEnvironmentCNAMEs is starting."; step 1 "Swapping CNAMEs for
  environments '<source>' and '<destination>'."; step 2 the CNAMEs are
  exchanged, "'<its new CNAME>' now points to '<its EndpointURL>'.", "Completed
  swapping CNAMEs for environments '<source>' and '<destination>'." (the EB
  CLI's success test, `swap.success`), and both are Ready. EB logs no
  "swapEnvironmentCNAMEs completed successfully.", nor does the sandbox. GUESS:
  every event is logged on both environments (the EB CLI follows one), each
  with the swap's RequestId, so DescribeEvents by RequestId lists each
  message twice, once per EnvironmentName; the "now points to" event names
  each environment's own new CNAME and endpoint. Health is left as it is
  (basic health shows Grey while Updating, as for any update).
- DescribeEnvironments shows the old CNAMEs while Updating and the exchanged
  ones from the step the swap completes (environment A then has B's old
  CNAME), as EB's environment descriptions change when the swap completes.
  The API has no CNAME filter: find the environment holding a prefix by
  listing the application's environments and matching
  CNAME.startswith("<prefix>.").
- `swap_failure` (control config, text, true or null, read when the swap
  starts): the swap fails at step 2 with ERROR "<text>" (true: "Unable to
  update the DNS records of the environments."), ERROR "Failed to swap CNAMEs
  for environments '<source>' and '<destination>'." (GUESS: both texts), then
  both Ready with their CNAMEs unchanged. An environment force-terminated
  mid-swap leaves the other one to fail the same way (without the first
  event).

Configuration settings
- An environment's configuration is the OptionSettings it was created with,
  changed by configuration updates: OptionsToRemove.member.N {Namespace,
  OptionName} drops options, OptionSettings.member.N sets (adds or replaces)
  them. GUESS: an option both removed and set in one request ends up set.
  GUESS: EB's own defaults (the hundreds of options real EB lists) are not
  listed, only the options set by requests. ResourceName is ignored.
- DescribeConfigurationSettings (ApplicationName, EnvironmentName) answers
  ConfigurationSettings.member.N of ConfigurationSettingsDescription
  {SolutionStackName, PlatformArn, ApplicationName, EnvironmentName,
  Description (the environment's), DeploymentStatus, DateCreated,
  DateUpdated, OptionSettings {Namespace, OptionName, Value}}: first the
  "deployed" configuration (DateCreated the environment's creation,
  DateUpdated its last successful configuration update), then, as the API
  reference describes, the draft a configuration update created: "pending"
  while the update runs, "failed" once it failed (or was aborted; GUESS).
  The new settings become the deployed ones only when the update succeeds.
  Per DeleteEnvironmentConfiguration's reference a failed draft "remains in
  existence until it is deleted" with DeleteEnvironmentConfiguration
  (GUESS: or replaced by the next configuration update's draft; deleting a
  pending draft is refused with the "Must be Ready." error). Errors: unknown
  environment (or one of another application) "No Environment found for
  EnvironmentName = '<name>'.", unknown application "No Application named
  '<app>' found."; TemplateName: saved configurations are not modelled, so
  "No Configuration Template named '<app>/<template>' found." (GUESS);
  EnvironmentName and TemplateName together InvalidParameterCombination,
  neither MissingRequiredParameter (codes from the API reference; GUESS:
  the messages).
- Validation, synchronous, nothing starts (CreateEnvironment and
  UpdateEnvironment), InvalidParameterValue (400; GUESS: real EB may answer
  option validation failures as ConfigurationValidationException
  "Configuration validation exception: ..."): in
  aws:elasticbeanstalk:application:environmentsecrets the Value must be the
  ARN of an SSM Parameter Store parameter (arn:aws:ssm:<region>:<account>:
  parameter/<name>) or a Secrets Manager secret
  (arn:aws:secretsmanager:<region>:<account>:secret:<name>), as the guide
  ("Fetching secrets and parameters to Elastic Beanstalk environment
  variables") asks; GUESS: the message "Invalid option value: '<value>'
  (Namespace: '...', OptionName: '<name>'): Value must be the ARN of ...",
  after EB's wording for other invalid option values, and how strict the ARN
  pattern is (any partition, 12-digit account). An environment property
  (application:environment, GUESS: environmentsecrets too) name over 128
  characters, the guide's limit for keys: "Invalid option specification
  (Namespace: '...', OptionName: '<name>'): Environment property name
  exceeds the maximum length of 128 characters." (GUESS: wording). The
  guide's other limits (values, 4,096 bytes in all) are not checked.
- `config_update_failure` (control config, text or null): every
  configuration update started while it is set fails a step later with
  ERROR "<text>", ERROR "Failed to deploy configuration." (GUESS: the
  sandbox's text first; no "The environment was reverted to the previous
  configuration setting." event is logged, unlike `rollback_markers`), then
  Ready; the previous configuration stays deployed, the draft is "failed",
  health is left as it was.

Health
- Basic health: an environment whose options set
  aws:elasticbeanstalk:healthreporting:system SystemType to basic (at
  CreateEnvironment or by a configuration update) reports basic health. Its
  DescribeEnvironments has Health (a colour) and no HealthStatus, Grey while
  an update runs (the API reference: health checks "are suspended during an
  UpdateEnvironment or RestartEnvironment request"); DescribeEnvironmentHealth
  answers InvalidRequestException "DescribeEnvironmentHealth is not
  supported." (EB's answer for basic health, as quoted on AWS re:Post) and
  DescribeInstancesHealth "DescribeInstancesHealth is not supported." (GUESS:
  by analogy). Health transitions log no events (GUESS: basic health's
  wording is not documented). GUESS: the colour follows the same instance
  state as enhanced health (a failed deployment turns it Red), where EB's
  basic health only sees load balancer health checks. Without SystemType the
  sandbox reports enhanced health, as environments created by the console or
  the EB CLI do (the EB API's own default is basic).
- DescribeEnvironments Health (Green/Yellow/Red/Grey) and HealthStatus (Ok,
  Info, Warning, Degraded, Severe, Pending, Unknown, NoData, Suspended), with
  the documented colours (Info is Green, Warning Yellow, Degraded and Severe
  Red, Pending/Unknown/NoData/Suspended Grey).
- DescribeEnvironmentHealth (AttributeNames, All by default) returns
  EnvironmentName, Status (the environment's status, "Ready", as EB returns it
  though the model types it as a colour), Color, HealthStatus, Causes (none
  when Ok), InstancesHealth counts, ApplicationMetrics, RefreshedAt.
  DescribeInstancesHealth returns each instance's HealthStatus, Color, Causes,
  LaunchedAt, AvailabilityZone, InstanceType and Deployment (VersionLabel,
  DeploymentId, Status Deployed/In Progress/Failed, DeploymentTime). An
  unknown environment is InvalidRequestException.
- Transitions log "Environment health has transitioned from A to B.
  <causes>", INFO towards Ok/Info/Pending, WARN otherwise.

DescribeEvents filters by ApplicationName, EnvironmentName/Id, VersionLabel,
RequestId, Severity (that severity or higher), StartTime (on or after),
EndTime (before), newest first, MaxRecords/NextToken (the token names the
last event returned, so new events do not shift pages). Events logged in one
step are a millisecond apart. As on EB, an environment's events name the
application and environment but no VersionLabel (only application version
events carry one), so find a deployment's events by its RequestId.

Control endpoint (POST JSON):
- /_sandbox/beanstalk/config {"step_seconds": 0.2, "fail_markers": [..],
  "rollback_markers": [..], "degrade_markers": [..], "max_bundle_bytes": n,
  "instances": 1, "fail_from_batch": 1, "process_steps": 1, "throttle":
  {"DescribeEvents": 2}, "config_update_failure": null, "swap_failure": null}
  returns the configuration in force (`process_steps`: how many steps a
  version stays PROCESSING, for versions created afterwards;
  `config_update_failure`: see Configuration settings; `swap_failure`: see
  Swapping CNAMEs); `throttle` answers the next N calls of an operation with
  Throttling "Rate exceeded" (HTTP 400), as the query protocol throttles
  (ext_faults only sees awsJson calls), before they take effect.
- /_sandbox/beanstalk/calls {} returns every Elastic Beanstalk request
  received, in order, as {"operation", "params", "request_id", "at",
  "status", "error"}; {"reset": true} clears the list first.
- /_sandbox/beanstalk/health {"environment": name, "status": "Warning",
  "cause": "...", "steps": 3, "when": "now"|"next_deploy"}: the environment's
  health goes to that status (Warning is Yellow) with the cause (a default one
  per status), for `steps` steps then back to Ok, or for good without
  `steps`. "next_deploy" applies it, instead of Ok, when the next successful
  deployment's health settles.
- /_sandbox/beanstalk/env-status {"environment": name, "status": "Updating",
  "steps": 3, "abortable": false, "when": "now"}: someone else's
  configuration update holds the environment in that status for `steps`
  steps (for good without), with EB's events for it, then Ready: a second
  deploy must wait for it. "when": "next_update" starts it just before the
  next UpdateEnvironment with a VersionLabel is served, once (the race
  between a deploy's look at Ready and its update), so EB refuses that
  request: "Environment named <name> is in an invalid state for this
  operation. Must be Ready.".
- /_sandbox/beanstalk/environments {} returns every environment as the
  sandbox holds it (instances, pending steps, causes).
The environment commands take an optional "region" and "account" (default:
search them all).
"""

from __future__ import annotations

import datetime
import io
import json
import math
import random
import re
import string
import threading
import uuid
import zipfile
from typing import Any, Callable

import yaml
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.elasticbeanstalk import models as eb_models
from moto.elasticbeanstalk import responses as eb_responses
from moto.elasticbeanstalk.utils import make_arn
from moto.moto_server import werkzeug_app
from moto.s3 import models as s3_models
from sandbox_control import handle_control

CONFIG: dict[str, Any] = {
    "step_seconds": 1.0,
    "fail_markers": ["crashloop", "badimage"],
    "rollback_markers": ["rollback"],
    "degrade_markers": ["unhealthy"],
    "max_bundle_bytes": 524288000,
    "instances": 1,
    "fail_from_batch": 1,
    "process_steps": 1,
    "throttle": {},
    "config_update_failure": None,
    "swap_failure": None,
}
LOCK = threading.RLock()
CALLS: list[dict[str, Any]] = []

Backend = eb_models.EBBackend
Environment = eb_models.Environment
Response = eb_responses.EBResponse

SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
COLORS = {
    "Ok": "Green",
    "Info": "Green",
    "Warning": "Yellow",
    "Degraded": "Red",
    "Severe": "Red",
    "Pending": "Grey",
    "Unknown": "Grey",
    "NoData": "Grey",
    "Suspended": "Grey",
}
INSTANCE_HEALTH_KEYS = ["NoData", "Unknown", "Pending", "Ok", "Info", "Warning", "Degraded", "Severe"]


class EBError(ServiceException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def _invalid(message: str) -> EBError:
    return EBError("InvalidParameterValue", message)


# ---------------------------------------------------------------------------
# Time and identifiers.


def _now() -> datetime.datetime:
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _step() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(CONFIG["step_seconds"]))


def _naive(value: Any) -> datetime.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _rand(chars: str, n: int) -> str:
    return "".join(random.choice(chars) for _ in range(n))


def _instance_id() -> str:
    return "i-" + _rand("0123456789abcdef", 17)


def _seconds(delta: datetime.timedelta) -> str:
    secs = max(1, int(round(delta.total_seconds())))
    return f"{secs} second{'s' if secs != 1 else ''}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


# ---------------------------------------------------------------------------
# Platforms: SolutionStackName <-> PlatformArn, and what kind of platform.

STACK_RE = re.compile(r"^64bit (?P<os>.+?) v(?P<ver>\d+(?:\.\d+)*) running (?P<name>.+)$")
ARN_RE = re.compile(r"platform/(?P<name>.+) running on 64bit (?P<os>.+)/(?P<ver>\d+(?:\.\d+)*)$")
AMAZON_LINUX_AMI = re.compile(r"Amazon Linux 20\d\d\.\d\d")  # the pre-2 AMI, "Amazon Linux 2018.03"


def _platform(region: str, stack: str | None, arn: str | None) -> tuple[str | None, str | None]:
    if stack and not arn:
        m = STACK_RE.match(stack)
        if m:
            name, os_ = m["name"], m["os"]
            if AMAZON_LINUX_AMI.fullmatch(os_):
                # Amazon Linux AMI platform ARNs name neither the AMI's year
                # nor the Docker version: ".../Docker running on 64bit Amazon Linux/2.16.0".
                os_ = "Amazon Linux"
                name = re.sub(r" \d+\.\d+\.\d+-ce( \(Generic\))?$", "", name)
            arn = f"arn:aws:elasticbeanstalk:{region}::platform/{name} running on 64bit {os_}/{m['ver']}"
    elif arn and not stack:
        m = ARN_RE.search(arn)
        if m:
            stack = f"64bit {m['os']} v{m['ver']} running {m['name']}"
    return stack, arn


def _platform_kind(stack: str | None) -> str:
    m = STACK_RE.match(stack or "")
    if not m:
        return "other"
    name = m["name"]
    if name.startswith("Multi-container Docker") or name.startswith("ECS"):
        return "ecs"
    if name.startswith("Docker"):
        # The Amazon Linux AMI (2018.03 and older) Docker platform reported
        # Docker failures in events; Amazon Linux 2 and 2023 point to eb-engine.log.
        return "docker-al1" if AMAZON_LINUX_AMI.fullmatch(m["os"]) else "docker"
    return "other"


# ---------------------------------------------------------------------------
# Sandbox state kept on moto's objects.


def _store(backend: Backend) -> dict[str, Any]:
    st = getattr(backend, "_sandbox", None)
    if st is None:
        st = {"versions": {}, "events": [], "terminated": [], "event_seq": 0}
        backend._sandbox = st
    return st


def _env_state(env: Environment) -> dict[str, Any]:
    return env._sandbox


def _event(backend: Backend, at: datetime.datetime, message: str, severity: str = "INFO", *, app: str | None = None,
           env: Environment | None = None, version: str | None = None, request_id: str | None = None) -> None:
    st = _store(backend)
    st["event_seq"] += 1
    st["events"].append(
        {
            "EventDate": at,
            "Message": message,
            "ApplicationName": app if app is not None else (env.application_name if env is not None else None),
            "VersionLabel": version,
            "EnvironmentName": env.environment_name if env is not None else None,
            "RequestId": request_id,
            "Severity": severity,
            "_env_id": env.environment_id if env is not None else None,
            "_seq": st["event_seq"],
        }
    )


class Timeline:
    """Events of one step get distinct times, a millisecond apart, as EB's do."""

    def __init__(self, at: datetime.datetime) -> None:
        self.at = at
        self.n = 0

    def next(self) -> datetime.datetime:
        t = self.at + datetime.timedelta(milliseconds=self.n)
        self.n += 1
        return t


def _schedule(env: Environment, due: datetime.datetime, fn: Callable[[datetime.datetime], None]) -> None:
    st = _env_state(env)
    st["seq"] += 1
    st["queue"].append((due, st["seq"], fn))
    st["queue"].sort(key=lambda item: (item[0], item[1]))


def _advance(env: Environment) -> None:
    st = _env_state(env)
    now = _now()
    while st["queue"] and st["queue"][0][0] <= now:
        due, _, fn = st["queue"].pop(0)
        fn(due)


def _advance_backend(backend: Backend) -> None:
    for app in list(backend.applications.values()):
        for env in list(app.environments.values()):
            if hasattr(env, "_sandbox"):
                _advance(env)


def _set_status(env: Environment, status: str, at: datetime.datetime) -> None:
    env.status = status
    env.date_updated = at


def _basic_health(env: Environment) -> bool:
    """The environment reports basic health (aws:elasticbeanstalk:healthreporting:system
    SystemType basic) instead of enhanced health."""
    st = getattr(env, "_sandbox", None)
    if st is None:
        return False
    return (_option(st["settings"], "aws:elasticbeanstalk:healthreporting:system", "SystemType") or "").lower() == "basic"


def _set_health(backend: Backend, env: Environment, status: str, causes: list[str], at: datetime.datetime,
                note: str | None = None) -> None:
    """Sets the environment's health; `note` is said in the transition event
    only (EB reports no Causes for an environment that is Ok)."""
    st = _env_state(env)
    before = env.health_status
    env.health_status = status
    env.health = COLORS[status]
    st["causes"] = list(causes)
    st["refreshed_at"] = at
    if before != status and not _basic_health(env):
        message = f"Environment health has transitioned from {before} to {status}."
        if causes or note:
            message += " " + " ".join(causes + ([note] if note else []))
        _event(backend, at, message, "INFO" if status in ("Ok", "Info", "Pending") else "WARN", env=env)


def _deployment_health(env: Environment) -> tuple[str, list[str]]:
    """Environment health from its instances after a deployment ended."""
    st = _env_state(env)
    instances = st["instances"]
    expected = env.version_label
    wrong = [i for i in instances if i["version"] != expected]
    failed = [i for i in instances if i["deployment_status"] == "Failed"]
    causes = []
    if failed:
        causes.append("Command failed on all instances." if len(failed) == len(instances)
                      else f"Command failed on {len(failed)} out of {_plural(len(instances), 'instance')}.")
    if wrong:
        where = "all instances" if len(wrong) == len(instances) else f"{len(wrong)} out of {_plural(len(instances), 'instance')}"
        if expected:
            causes.append(f'Incorrect application version found on {where}. Expected version "{expected}" (deployment {st["good_deployment"]}).')
        else:
            causes.append(f"Incorrect application version found on {where}. Expected version n/a.")
    return ("Degraded" if causes else "Ok"), causes


def _instance(version: str | None, deployment_id: int, at: datetime.datetime) -> dict[str, Any]:
    return {
        "id": _instance_id(),
        "launched_at": at,
        "version": version,
        "deployment_id": deployment_id,
        "deployment_status": "Deployed",
        "deployment_time": at,
        "health": "Ok",
        "causes": [],
        "az": "a",
    }


def _busy(instances: list[dict[str, Any]]) -> None:
    for inst in instances:
        inst["deployment_status"] = "In Progress"
        inst["health"] = "Info"
        inst["causes"] = ["Performing application deployment (running for 1 second)."]


def _idle(instances: list[dict[str, Any]]) -> None:
    """Instances a stopped deployment never reached keep serving their version."""
    for inst in instances:
        if inst["deployment_status"] == "In Progress":
            inst["deployment_status"] = "Deployed"
        if inst["deployment_status"] == "Deployed" and inst["health"] == "Info":
            inst["health"], inst["causes"] = "Ok", []


def _mark_wrong_version(env: Environment) -> None:
    """Instances that finished a deployment EB then gave up (or that was
    aborted) run a version the environment does not expect."""
    st = _env_state(env)
    expected = env.version_label
    for inst in st["instances"]:
        if inst["deployment_status"] == "Deployed" and inst["version"] != expected:
            inst["health"] = "Degraded"
            inst["causes"] = [f'Incorrect application version "{inst["version"]}" (deployment {inst["deployment_id"]}). '
                              f'Expected version "{expected or "n/a"}" (deployment {st["good_deployment"]}).']


def _option(settings: list[dict[str, Any]], namespace: str, name: str) -> str | None:
    for o in settings:
        if o.get("Namespace") == namespace and o.get("OptionName") == name:
            return o.get("Value")
    return None


# ---------------------------------------------------------------------------
# Option settings: what a configuration update asks for, and what EB refuses.

ENV_PROPERTIES = "aws:elasticbeanstalk:application:environment"
ENV_SECRETS = "aws:elasticbeanstalk:application:environmentsecrets"
MAX_PROPERTY_NAME = 128
# An SSM Parameter Store parameter or a Secrets Manager secret, in any partition.
SECRET_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?:ssm:[a-z0-9-]+:\d{12}:parameter/\S+|secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+)$"
)


def _stored_option(o: dict[str, Any]) -> dict[str, Any]:
    out = {"Namespace": o.get("Namespace"), "OptionName": o.get("OptionName"), "Value": o.get("Value")}
    if o.get("ResourceName"):
        out["ResourceName"] = o["ResourceName"]
    return out


def _check_options(settings: list[dict[str, Any]]) -> None:
    """EB's synchronous checks of environment properties and secrets
    (InvalidParameterValue; nothing starts)."""
    for o in settings:
        namespace, name, value = o.get("Namespace"), o.get("OptionName") or "", o.get("Value") or ""
        if namespace not in (ENV_PROPERTIES, ENV_SECRETS):
            continue
        if len(name) > MAX_PROPERTY_NAME:
            raise _invalid(f"Invalid option specification (Namespace: '{namespace}', OptionName: '{name}'): "
                           f"Environment property name exceeds the maximum length of {MAX_PROPERTY_NAME} characters.")
        if namespace == ENV_SECRETS and not SECRET_ARN.match(value):
            raise _invalid(f"Invalid option value: '{value}' (Namespace: '{namespace}', OptionName: '{name}'): "
                           "Value must be the ARN of an AWS Secrets Manager secret (arn:aws:secretsmanager:...:secret:...) "
                           "or an AWS Systems Manager Parameter Store parameter (arn:aws:ssm:...:parameter/...).")


def _merged_options(current: list[dict[str, Any]], settings: list[dict[str, Any]],
                    removals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configuration a configuration update asks for: the deployed one
    without OptionsToRemove, with OptionSettings set (added or replaced)."""
    key = lambda o: (o.get("Namespace"), o.get("OptionName"))  # noqa: E731
    drop = {key(o) for o in removals} | {key(o) for o in settings}
    return [o for o in current if key(o) not in drop] + [_stored_option(o) for o in settings]


# ---------------------------------------------------------------------------
# Source bundles, read from moto's S3.


def _s3_object(account: str, bucket: str, key: str) -> Any:
    backend = s3_models.s3_backends[account]["aws"]
    try:
        return backend.get_object(bucket, key)
    except Exception:  # noqa: BLE001 - a missing bucket is "Not Found" to EB
        return None


def _images_from_compose(text: str) -> list[str]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return []
    services = doc.get("services") if isinstance(doc, dict) else None
    return [str(s.get("image")) for s in (services or {}).values() if isinstance(s, dict) and s.get("image")]


def _images_from_dockerrun(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return []
    images = []
    if isinstance(doc.get("Image"), dict) and doc["Image"].get("Name"):
        images.append(str(doc["Image"]["Name"]))
    for c in doc.get("containerDefinitions") or []:
        if isinstance(c, dict) and c.get("image"):
            images.append(str(c["image"]))
    return images


def _images_from_dockerfile(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"(?im)^\s*FROM\s+(?:--\S+\s+)*(\S+)", text)]


def _analyse(data: bytes | None) -> dict[str, Any]:
    """What EB would find in a source bundle."""
    if data is None:
        return {"kind": "missing", "root": set(), "images": [], "config_ok": True}
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except zipfile.BadZipFile:
        try:
            doc = json.loads(data)
        except ValueError:
            return {"kind": "invalid", "root": set(), "images": [], "config_ok": False}
        if isinstance(doc, dict) and "AWSEBDockerrunVersion" in doc:
            return {"kind": "dockerrun", "root": {"Dockerrun.aws.json"}, "images": _images_from_dockerrun(doc), "config_ok": True}
        return {"kind": "invalid", "root": set(), "images": [], "config_ok": False}
    root = {n for n in names if "/" not in n.rstrip("/") and not n.endswith("/")}
    images: list[str] = []
    config_ok = True
    for name in names:
        if name.startswith(".ebextensions/") and name.endswith(".config"):
            try:
                yaml.safe_load(zf.read(name))
            except yaml.YAMLError:
                config_ok = False
    for name, parse in (("Dockerrun.aws.json", None), ("docker-compose.yml", _images_from_compose), ("Dockerfile", _images_from_dockerfile)):
        if name not in root:
            continue
        text = zf.read(name).decode("utf-8", "replace")
        if parse is None:
            try:
                images += _images_from_dockerrun(json.loads(text))
            except ValueError:
                pass
        else:
            images += parse(text)
    return {"kind": "zip", "root": root, "images": images, "config_ok": config_ok}


def _bundle(account: str, version: dict[str, Any] | None) -> dict[str, Any]:
    if version is None or not version.get("SourceBundle"):
        # No bundle: EB deploys its sample application.
        return {"kind": "sample", "root": set(), "images": [], "config_ok": True}
    sb = version["SourceBundle"]
    obj = _s3_object(account, sb["S3Bucket"], sb["S3Key"])
    return _analyse(obj.value if obj is not None else None)


def _marked(images: list[str], key: str) -> str | None:
    for image in images:
        if any(m and m in image for m in CONFIG[key]):
            return image
    return None


# ---------------------------------------------------------------------------
# Application versions.


def _version_status(version: dict[str, Any]) -> str:
    ready = version.get("_ready_at")
    if ready is not None and ready <= _now():
        version["Status"] = version.pop("_final")
        version["DateUpdated"] = ready
        version.pop("_ready_at")
    return version["Status"]


def _version_public(version: dict[str, Any]) -> dict[str, Any]:
    _version_status(version)
    return {k: v for k, v in version.items() if not k.startswith("_") and v is not None}


def _check_label(label: str | None, field: str = "versionLabel") -> None:
    _check_length(label, field, 0, 100)


def _check_length(value: str | None, field: str, low: int, high: int) -> None:
    """The API reference's length constraints, checked before anything else."""
    if value is not None and not low <= len(value) <= high:
        bound = f"greater than or equal to {low}" if len(value) < low else f"less than or equal to {high}"
        raise EBError("ValidationError", f"1 validation error detected: Value '{value}' at '{field}' "
                                         f"failed to satisfy constraint: Member must have length {bound}")


# ---------------------------------------------------------------------------
# Environments.


def _init_env(backend: Backend, env: Environment, stack: str | None, arn: str | None, version: str | None,
              settings: list[dict[str, Any]], cname_prefix: str | None, description: str | None,
              at: datetime.datetime) -> None:
    region = backend.region_name
    env.environment_id = "e-" + _rand(string.ascii_lowercase + string.digits, 10)
    env.solution_stack_name, env.platform_arn_value = _platform(region, stack, arn)
    env.version_label = version
    env.description = description
    env.status = "Ready"
    env.health = "Green"
    env.health_status = "Ok"
    env.abortable_operation_in_progress = False
    env.date_created = at
    env.date_updated = at
    env.cname = _fqdn(region, cname_prefix) if cname_prefix else \
        f"{env.environment_name}.eba-{_rand(string.ascii_lowercase + string.digits, 8)}.{region}.elasticbeanstalk.com"
    single = _option(settings, "aws:elasticbeanstalk:environment", "EnvironmentType") == "SingleInstance"
    if single:
        env.endpoint_url = f"54.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        count = 1
    else:
        env.endpoint_url = f"awseb--AWSEB-{_rand(string.ascii_letters + string.digits, 12)}-{random.randint(10**9, 10**10 - 1)}.{region}.elb.amazonaws.com"
        count = int(_option(settings, "aws:autoscaling:asg", "MinSize") or CONFIG["instances"])
    env._sandbox = {
        "queue": [],
        "seq": 0,
        # The deployed configuration (DescribeConfigurationSettings "deployed");
        # a configuration update's requested settings wait in "draft".
        "settings": [_stored_option(o) for o in settings],
        "settings_created": at,
        "settings_updated": at,
        "draft": None,
        "deployment_id": 1,
        "good_deployment": 1,
        "instances": [_instance(version, 1, at) for _ in range(max(1, count))],
        "causes": [],
        "refreshed_at": at,
        "op": None,
        "flap": None,
        "terminated_at": None,
    }
    for i, inst in enumerate(env._sandbox["instances"]):
        inst["az"] = f"{region}{'abc'[i % 3]}"


def _describe(env: Environment) -> dict[str, Any]:
    st = _env_state(env)
    out = {
        "EnvironmentName": env.environment_name,
        "EnvironmentId": env.environment_id,
        "ApplicationName": env.application_name,
        "VersionLabel": env.version_label,
        "SolutionStackName": env.solution_stack_name,
        "PlatformArn": env.platform_arn_value,
        "Description": env.description,
        "EndpointURL": env.endpoint_url,
        "CNAME": env.cname,
        "DateCreated": env.date_created,
        "DateUpdated": env.date_updated,
        "Status": env.status,
        "AbortableOperationInProgress": env.abortable_operation_in_progress,
        "Health": env.health,
        "HealthStatus": env.health_status,
        "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
        "EnvironmentLinks": [],
        "EnvironmentArn": env.environment_arn,
    }
    if env.status == "Terminated":
        out["DateUpdated"] = st["terminated_at"]
    if _basic_health(env):
        # Basic health has a colour only; Grey while an update suspends the
        # health checks.
        out.pop("HealthStatus", None)
        if env.status in ("Launching", "Updating", "Aborting"):
            out["Health"] = "Grey"
    return {k: v for k, v in out.items() if v is not None}


def _find_env(backend: Backend, name: str | None, env_id: str | None, app_name: str | None = None) -> Environment:
    _advance_backend(backend)
    for app in backend.applications.values():
        if app_name and app.application_name != app_name:
            continue
        for env in app.environments.values():
            if (name and env.environment_name == name) or (env_id and env.environment_id == env_id):
                return env
    if env_id and not name:
        raise _invalid(f"No Environment found for EnvironmentId = '{env_id}'.")
    raise _invalid(f"No Environment found for EnvironmentName = '{name}'.")


def _fqdn(region: str, prefix: str) -> str:
    """The CNAME a CNAMEPrefix asks for (no random part, unlike a generated one)."""
    return f"{prefix}.{region}.elasticbeanstalk.com"


def _cname_holder(backend: Backend, cname: str) -> Environment | None:
    """The environment, not yet Terminated, that holds this CNAME."""
    return next((e for e in _all_environments(backend)
                 if e.status != "Terminated" and (e.cname or "").lower() == cname.lower()), None)


def _begin(env: Environment, kind: str, request_id: str, at: datetime.datetime, abortable: bool, **extra: Any) -> dict[str, Any]:
    op = {"kind": kind, "request_id": request_id, "started": at, "abortable": abortable, "aborted": False, **extra}
    st = _env_state(env)
    st["op"] = op
    _set_status(env, "Updating", at)
    env.abortable_operation_in_progress = abortable
    return op


def _end(env: Environment, op: dict[str, Any], at: datetime.datetime) -> None:
    st = _env_state(env)
    if st["op"] is op:
        st["op"] = None
    _set_status(env, "Ready", at)
    env.abortable_operation_in_progress = False


def _batches(env: Environment) -> list[list[dict[str, Any]]]:
    st = _env_state(env)
    instances = st["instances"]
    policy = _option(st["settings"], "aws:elasticbeanstalk:command", "DeploymentPolicy") or "AllAtOnce"
    if policy not in ("Rolling", "RollingWithAdditionalBatch") or len(instances) < 2:
        return [instances]
    kind = _option(st["settings"], "aws:elasticbeanstalk:command", "BatchSizeType") or "Percentage"
    size = int(_option(st["settings"], "aws:elasticbeanstalk:command", "BatchSize") or (100 if kind == "Percentage" else 1))
    per = max(1, math.ceil(len(instances) * size / 100) if kind == "Percentage" else size)
    return [instances[i:i + per] for i in range(0, len(instances), per)]


def _start_deployment(backend: Backend, env: Environment, label: str, version: dict[str, Any] | None,
                      request_id: str, at: datetime.datetime) -> None:
    st = _env_state(env)
    account = backend.account_id
    previous = env.version_label
    bundle = _bundle(account, version)
    kind = _platform_kind(env.solution_stack_name)
    docker = kind in ("docker", "docker-al1", "ecs")
    missing_files = False
    if docker and bundle["kind"] == "zip":
        wanted = {"Dockerrun.aws.json"} if kind == "ecs" else {"Dockerfile", "Dockerrun.aws.json", "docker-compose.yml"}
        missing_files = not (bundle["root"] & wanted)
    fail_image = _marked(bundle["images"], "fail_markers") if docker else None
    broken = bundle["kind"] in ("missing", "invalid") or missing_files or fail_image is not None
    revert = (_marked(bundle["images"], "rollback_markers") if docker else None) is not None
    degrade = (_marked(bundle["images"], "degrade_markers") if docker else None) is not None

    op = _begin(env, "deploy", request_id, at, True, label=label, previous=previous)
    env.version_label = label
    st["deployment_id"] += 1
    deployment_id = st["deployment_id"]
    step = _step()
    ev = lambda t, msg, sev="INFO": _event(backend, t, msg, sev, env=env, request_id=request_id)  # noqa: E731
    ev(at, "Environment update is starting.")

    def alive() -> bool:
        return st["op"] is op and not op["aborted"]

    if revert:
        def configure(t: datetime.datetime) -> None:
            if alive():
                ev(t, f"Updating environment {env.environment_name}'s configuration settings.")

        def fail_config(t: datetime.datetime) -> None:
            if not alive():
                return
            tl = Timeline(t)
            ev(tl.next(), f"Service:AmazonCloudFormation, Message:Stack named 'awseb-{env.environment_id}-stack' aborted operation. "
                          "Current state: 'UPDATE_ROLLBACK_IN_PROGRESS' Reason: The following resource(s) failed to update: [AWSEBAutoScalingGroup].", "ERROR")
            ev(tl.next(), "Failed to deploy configuration.", "ERROR")

        def reverted(t: datetime.datetime) -> None:
            if not alive():
                return
            ev(t, "The environment was reverted to the previous configuration setting.")
            env.version_label = previous
            _end(env, op, t)

        _schedule(env, at + step, configure)
        _schedule(env, at + 2 * step, fail_config)
        _schedule(env, at + 3 * step, reverted)
        return

    batches = _batches(env)
    rolling = len(batches) > 1
    total = len(st["instances"])

    def deploying(t: datetime.datetime) -> None:
        if not alive():
            return
        tl = Timeline(t)
        ev(tl.next(), "Deploying new version to instance(s).")
        if not rolling:
            _busy(st["instances"])
        _set_health(backend, env, "Info", [
            f"Application update in progress on {_plural(total, 'instance')}. 0 out of {_plural(total, 'instance')} completed "
            f"(running for {_seconds(t - at)})."], tl.next())

    def fail_batch(batch: list[dict[str, Any]], t: datetime.datetime) -> None:
        tl = Timeline(t)
        ids = [i["id"] for i in batch]
        causes = ["Command failed on instance."]
        if previous:
            # The instance-level wording of EB's enhanced health.
            causes.append(f'Incorrect application version "{label}" (deployment {deployment_id}). '
                          f'Expected version "{previous}" (deployment {st["good_deployment"]}).')
        for inst in batch:
            inst.update(version=label, deployment_id=deployment_id, deployment_status="Failed", deployment_time=t,
                        health="Severe", causes=list(causes))
        if kind == "docker-al1":
            image = fail_image or "the image"
            repo = image.rsplit(":", 1)[0]
            detail = (f"Failed to pull Docker image {image}: Error response from daemon: pull access denied for {repo}, "
                      "repository does not exist or may require 'docker login'. Check snapshot logs for details.")
            ev(tl.next(), detail, "ERROR")
            for i in ids:
                ev(tl.next(), f"[Instance: {i}] Command failed on instance. Return code: 1 Output: (TRUNCATED)...{detail[-60:]} "
                              "Hook /opt/elasticbeanstalk/hooks/appdeploy/pre/03build.sh failed. For more detail, check "
                              "/var/log/eb-activity.log using console or EB CLI.", "ERROR")
        else:
            if missing_files and kind == "docker":
                ev(tl.next(), "Instance deployment: Both 'Dockerfile' and 'Dockerrun.aws.json' are missing in your source bundle. "
                              "Include at least one of them. The deployment failed.", "ERROR")
            ev(tl.next(), "Instance deployment failed. For details, see 'eb-engine.log'.", "ERROR")
            for i in ids:
                ev(tl.next(), f"[Instance: {i}] Command failed on instance. Return code: 1 Output: Engine execution has encountered an error..", "ERROR")
        ev(tl.next(), f"Command execution completed on all instances. Summary: [Successful: 0, Failed: {len(ids)}].")
        ev(tl.next(), f"Unsuccessful command execution on instance id(s) '{', '.join(ids)}'. Aborting the operation.", "ERROR")
        # Until EB gives up, the environment still expects the old version.
        env.version_label = previous
        health, causes = _deployment_health(env)
        env.version_label = label
        _set_health(backend, env, health, causes, tl.next())

    def give_up(t: datetime.datetime) -> None:
        if not alive():
            return
        ev(t, "Failed to deploy application.", "ERROR")
        env.version_label = previous
        _idle(st["instances"])
        _mark_wrong_version(env)
        _end(env, op, t)
        health, causes = _deployment_health(env)
        _set_health(backend, env, health, causes, t + datetime.timedelta(milliseconds=1))

    def deploy_batch(n: int, batch: list[dict[str, Any]], done_before: int) -> tuple[Callable[..., None], Callable[..., None]]:
        def start(t: datetime.datetime) -> None:
            if not alive() or not rolling:
                return
            tl = Timeline(t)
            ev(tl.next(), f"Batch {n}: Starting application deployment on instance(s) [{', '.join(i['id'] for i in batch)}].")
            ev(tl.next(), f"Batch {n}: Starting application deployment command execution.")
            _busy(batch)

        def finish(t: datetime.datetime) -> None:
            if not alive():
                return
            if broken and n >= int(CONFIG["fail_from_batch"]):
                fail_batch(batch, t)
                op["failed"] = True
                return
            tl = Timeline(t)
            for inst in batch:
                inst.update(version=label, deployment_id=deployment_id, deployment_status="Deployed", deployment_time=t,
                            health="Ok", causes=[])
                ev(tl.next(), "Instance deployment completed successfully.")
            if rolling:
                ev(tl.next(), f"Batch {n}: Completed application deployment command execution.")
                ev(tl.next(), f"Command execution completed on {done_before + len(batch)} of {total} instances in environment.")
                ev(tl.next(), f"Batch {n}: Registering instance(s) with the load balancer and waiting for them to be healthy.")
                ev(tl.next(), f"Batch {n}: Completed application deployment.")

        return start, finish

    def complete(t: datetime.datetime) -> None:
        if not alive() or op.get("failed"):
            return
        tl = Timeline(t)
        ev(tl.next(), "New application version was deployed to running EC2 instances.")
        ev(tl.next(), "Environment update completed successfully.")
        st["good_deployment"] = deployment_id
        _end(env, op, t)
        op["completed_at"] = t

    def settle(t: datetime.datetime) -> None:
        if op.get("completed_at") is None or op["aborted"]:
            return
        took = _seconds(op["completed_at"] - at)
        if degrade:
            for inst in st["instances"]:
                inst["health"] = "Severe"
                inst["causes"] = ["100.0 % of the requests are failing with HTTP 5xx."]
            _set_health(backend, env, "Severe", ["100.0 % of the requests are failing with HTTP 5xx.",
                                                 "ELB processes are not healthy on all instances."], t)
            return
        flap = st.get("flap")
        if flap and flap["when"] == "next_deploy":
            st["flap"] = None
            _apply_flap(backend, env, flap, t)
            return
        _set_health(backend, env, "Ok", [], t, note=f"Application update completed {_seconds(t - op['completed_at'])} ago and took {took}.")

    _schedule(env, at + step, deploying)
    k = 2
    done = 0
    for n, batch in enumerate(batches, start=1):
        start, finish = deploy_batch(n, batch, done)
        if rolling:
            _schedule(env, at + k * step, start)
            k += 1
        _schedule(env, at + k * step, finish)
        k += 1
        done += len(batch)
        if broken and n >= int(CONFIG["fail_from_batch"]):
            break
    if broken:
        _schedule(env, at + k * step, give_up)
    else:
        _schedule(env, at + k * step, complete)
        _schedule(env, at + (k + 1) * step, settle)


def _apply_flap(backend: Backend, env: Environment, flap: dict[str, Any], at: datetime.datetime) -> None:
    status = flap["status"]
    cause = flap.get("cause") or {
        "Warning": "Impaired services on 1 out of 1 instance.",
        "Degraded": "50.0 % of the requests are failing with HTTP 5xx.",
        "Severe": "100.0 % of the requests are failing with HTTP 5xx.",
    }.get(status, "")
    _set_health(backend, env, status, [cause] if cause else [], at)
    steps = flap.get("steps")
    if steps:
        def recover(t: datetime.datetime) -> None:
            if env.health_status == status:
                _set_health(backend, env, "Ok", [], t)

        _schedule(env, at + int(steps) * _step(), recover)


def _start_config_update(backend: Backend, env: Environment, request_id: str, at: datetime.datetime,
                         status: str = "Updating", steps: int | None = 1, abortable: bool = True,
                         settings: list[dict[str, Any]] | None = None) -> None:
    """A configuration update. `settings` (an UpdateEnvironment's) is the
    whole configuration asked for: a "pending" draft until the update ends,
    then the deployed configuration, or a "failed" draft when
    `config_update_failure` (read now) fails it. Without `settings` (someone
    else's update, the env-status control) no draft is kept."""
    st = _env_state(env)
    op = _begin(env, "config", request_id, at, abortable)
    env.status = status
    failure = CONFIG.get("config_update_failure") if settings is not None else None
    if settings is not None:
        op["draft"] = st["draft"] = {"settings": settings, "status": "pending", "created": at, "updated": at}
    ev = lambda t, msg, sev="INFO": _event(backend, t, msg, sev, env=env, request_id=request_id)  # noqa: E731
    if status == "Updating":
        ev(at, "Environment update is starting.")
        ev(at + datetime.timedelta(milliseconds=1), f"Updating environment {env.environment_name}'s configuration settings.")
    if steps is None:
        return

    def done(t: datetime.datetime) -> None:
        if st["op"] is not op or op["aborted"]:
            return
        draft = op.get("draft")
        if failure:
            # EB keeps the previous configuration deployed and the draft as
            # "failed"; health is left as it was.
            tl = Timeline(t)
            ev(tl.next(), str(failure), "ERROR")
            ev(tl.next(), "Failed to deploy configuration.", "ERROR")
            if draft is not None and st["draft"] is draft:
                draft["status"], draft["updated"] = "failed", t
            _end(env, op, t)
            return
        if status == "Updating":
            ev(t, "Successfully deployed new configuration to environment.")
        if draft is not None:
            st["settings"] = draft["settings"]
            st["settings_updated"] = t
            if st["draft"] is draft:
                st["draft"] = None
        _end(env, op, t)

    _schedule(env, at + int(steps) * _step(), done)


# ---------------------------------------------------------------------------
# The operations.


def _request_id(self: Response) -> str:
    rid = getattr(self, "_sandbox_request_id", None)
    if rid is None:
        rid = self._sandbox_request_id = str(uuid.uuid4())
    return rid


def _backend(self: Response) -> Backend:
    return self.elasticbeanstalk_backend


def create_storage_location(self: Response) -> ActionResult:
    name = f"elasticbeanstalk-{self.region}-{self.current_account}"
    s3 = s3_models.s3_backends[self.current_account]["aws"]
    if name not in s3.buckets:
        s3.create_bucket(name, self.region)
    return ActionResult({"S3Bucket": name})


def _application(backend: Backend, app: Any) -> dict[str, Any]:
    labels = [label for (name, label), v in sorted(_store(backend)["versions"].items(), key=lambda kv: kv[1]["DateCreated"], reverse=True)
              if name == app.application_name]
    return {k: v for k, v in {
        "ApplicationArn": app.arn,
        "ApplicationName": app.application_name,
        "Description": getattr(app, "description", None),
        "DateCreated": getattr(app, "date_created", None),
        "DateUpdated": getattr(app, "date_created", None),
        "Versions": labels,
        "ConfigurationTemplates": [],
    }.items() if v is not None}


def create_application(self: Response) -> ActionResult:
    backend = _backend(self)
    with LOCK:
        app = backend.create_application(application_name=self._get_param("ApplicationName"))
        app.description = self._get_param("Description")
        app.date_created = _now()
        return ActionResult({"Application": _application(backend, app)})


def describe_applications(self: Response) -> ActionResult:
    # Stock moto ignores ApplicationNames.
    backend = _backend(self)
    names = self._get_param("ApplicationNames") or []
    with LOCK:
        apps = [a for a in backend.applications.values() if not names or a.application_name in names]
        return ActionResult({"Applications": [_application(backend, a) for a in apps]})


def create_application_version(self: Response) -> ActionResult:
    backend = _backend(self)
    app_name = self._get_param("ApplicationName")
    label = self._get_param("VersionLabel")
    _check_label(label)
    with LOCK:
        if app_name not in backend.applications:
            if self._get_param("AutoCreateApplication"):
                backend.create_application(app_name)
            else:
                raise _invalid(f"No Application named '{app_name}' found.")
        versions = _store(backend)["versions"]
        if (app_name, label) in versions:
            raise _invalid(f"Application Version {label} already exists.")
        _check_description(self._get_param("Description"))
        sb = self._get_param("SourceBundle") or None
        data = None
        if sb:
            bucket, key = sb.get("S3Bucket"), sb.get("S3Key")
            if not bucket or not key:
                raise _invalid("Both S3 bucket and key must be specified.")
            obj = _s3_object(self.current_account, bucket, key)
            if obj is None:
                raise EBError("InvalidParameterCombination",
                              f"Unable to download from S3 location (Bucket: {bucket}  Key: {key}). Reason: Not Found")
            if obj.size == 0 or obj.size > int(CONFIG["max_bundle_bytes"]):
                raise _invalid(f"Source bundle is empty or exceeds maximum allowed size: {int(CONFIG['max_bundle_bytes'])}")
            data = obj.value
            sb = {"S3Bucket": bucket, "S3Key": key}
        at = _now()
        version: dict[str, Any] = {
            "ApplicationVersionArn": make_arn(self.region, self.current_account, "applicationversion", f"{app_name}/{label}"),
            "ApplicationName": app_name,
            "Description": self._get_param("Description"),
            "VersionLabel": label,
            "SourceBundle": sb,
            "DateCreated": at,
            "DateUpdated": at,
            "Status": "UNPROCESSED",
        }
        if self._get_param("Process"):
            bundle = _analyse(data) if sb else {"kind": "sample", "config_ok": True}
            ok = bundle["kind"] in ("zip", "dockerrun", "sample") and bundle["config_ok"]
            version["Status"] = "PROCESSING"
            version["_final"] = "PROCESSED" if ok else "FAILED"
            version["_ready_at"] = at + int(CONFIG["process_steps"]) * _step()
        versions[(app_name, label)] = version
        rid = _request_id(self)
        tl = Timeline(at)
        for message in ("createApplicationVersion is starting.", f"Created new Application Version: {label}",
                        "createApplicationVersion completed successfully."):
            _event(backend, tl.next(), message, app=app_name, version=label, request_id=rid)
        return ActionResult({"ApplicationVersion": _version_public(version)})


def describe_application_versions(self: Response) -> ActionResult:
    backend = _backend(self)
    app_name = self._get_param("ApplicationName")
    labels = self._get_param("VersionLabels") or []
    with LOCK:
        found = [
            v for (app, label), v in _store(backend)["versions"].items()
            if (not app_name or app == app_name) and (not labels or label in labels)
        ]
        found.sort(key=lambda v: v["DateCreated"], reverse=True)
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxRecords") or 1000)
        result: dict[str, Any] = {"ApplicationVersions": [_version_public(v) for v in found[start:start + size]]}
        if start + size < len(found):
            result["NextToken"] = str(start + size)
        return ActionResult(result)


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > 200:
        raise EBError(
            "ValidationError",
            f"1 validation error detected: Value '{description}' at 'description' failed to satisfy constraint: "
            "Member must have length less than or equal to 200",
        )


def update_application_version(self: Response) -> ActionResult:
    """UpdateApplicationVersion: only the Description changes."""
    backend = _backend(self)
    app_name, label = self._get_param("ApplicationName"), self._get_param("VersionLabel")
    description = self._get_param("Description")
    _check_description(description)
    with LOCK:
        version = _store(backend)["versions"].get((app_name, label))
        if version is None:
            raise _invalid(f"No Application Version named '{label}' found.")
        if description is not None:
            version["Description"] = description
        version["DateUpdated"] = _now()
        return ActionResult({"ApplicationVersion": _version_public(version)})


def delete_application_version(self: Response) -> EmptyResult:
    """DeleteApplicationVersion; DeleteSourceBundle=true deletes the bundle's S3 object too."""
    backend = _backend(self)
    app_name, label = self._get_param("ApplicationName"), self._get_param("VersionLabel")
    with LOCK:
        _advance_backend(backend)
        app = backend.applications.get(app_name)
        for env in (app.environments.values() if app else []):
            if env.version_label == label:
                raise _invalid(f"Unable to delete application version {label} because it is being used by environment {env.environment_name}.")
        version = _store(backend)["versions"].pop((app_name, label), None)
        if version is None:
            raise _invalid(f"No Application Version named '{label}' found.")
        sb = version.get("SourceBundle")
        if sb and str(self._get_param("DeleteSourceBundle")).lower() == "true":
            try:
                s3_models.s3_backends[self.current_account]["aws"].delete_object(sb["S3Bucket"], sb["S3Key"])
            except Exception:  # noqa: BLE001 - EB ignores a bundle already gone
                pass
        return EmptyResult()


def create_environment(self: Response) -> ActionResult:
    backend = _backend(self)
    app_name = self._get_param("ApplicationName")
    name = self._get_param("EnvironmentName")
    label = self._get_param("VersionLabel")
    _check_label(label)
    with LOCK:
        _advance_backend(backend)
        app = backend.applications.get(app_name)
        if app is None:
            raise _invalid(f"No Application named '{app_name}' found.")
        if name in app.environments or any(
            name in a.environments for a in backend.applications.values()
        ):
            raise _invalid(f"Environment {name} already exists.")
        if label and (app_name, label) not in _store(backend)["versions"]:
            raise _invalid(f"No Application Version named '{label}' found.")
        prefix = self._get_param("CNAMEPrefix")
        _check_length(prefix, "cNAMEPrefix", 4, 63)
        if prefix and _cname_holder(backend, _fqdn(self.region, prefix)):
            raise _invalid(f"DNS name ({_fqdn(self.region, prefix)}) is not available.")
        _check_options(self._get_param("OptionSettings") or [])
        tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", []) or []}
        env = app.create_environment(environment_name=name, solution_stack_name=self._get_param("SolutionStackName"), tags=tags)
        at = _now()
        _init_env(backend, env, self._get_param("SolutionStackName"), self._get_param("PlatformArn"), label,
                  self._get_param("OptionSettings") or [], prefix, self._get_param("Description"), at)
        rid = _request_id(self)
        tl = Timeline(at)
        _event(backend, tl.next(), "createEnvironment is starting.", env=env, request_id=rid)
        _event(backend, tl.next(), f"Successfully launched environment: {name}", env=env, request_id=rid)
        return ActionResult(_describe(env))


def _all_environments(backend: Backend) -> list[Environment]:
    live = [env for app in backend.applications.values() for env in app.environments.values() if hasattr(env, "_sandbox")]
    return live + list(_store(backend)["terminated"])


def describe_environments(self: Response) -> ActionResult:
    backend = _backend(self)
    app_name = self._get_param("ApplicationName")
    label = self._get_param("VersionLabel")
    ids = self._get_param("EnvironmentIds") or []
    names = self._get_param("EnvironmentNames") or []
    include_deleted = self._get_param("IncludeDeleted")
    back_to = _naive(self._get_param("IncludedDeletedBackTo"))
    with LOCK:
        _advance_backend(backend)
        out = []
        for env in _all_environments(backend):
            if app_name and env.application_name != app_name:
                continue
            if label and env.version_label != label:
                continue
            if ids and env.environment_id not in ids:
                continue
            if names and env.environment_name not in names:
                continue
            if env.status == "Terminated":
                if include_deleted is False or str(include_deleted).lower() == "false":
                    continue
                if back_to and _env_state(env)["terminated_at"] < back_to:
                    continue
            out.append(_describe(env))
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxRecords") or 1000)
        result: dict[str, Any] = {"Environments": out[start:start + size]}
        if start + size < len(out):
            result["NextToken"] = str(start + size)
        return ActionResult(result)


def update_environment(self: Response) -> ActionResult:
    backend = _backend(self)
    label = self._get_param("VersionLabel")
    _check_label(label)
    settings = self._get_param("OptionSettings") or []
    removals = self._get_param("OptionsToRemove") or []
    with LOCK:
        env = _find_env(backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId"))
        if label and (settings or removals or self._get_param("TemplateName")):
            raise EBError("InvalidParameterCombination",
                          "Cannot update the application version and the configuration of an environment in the same request.")
        _check_options(settings)
        other = _env_state(env).pop("next_update", None) if label else None
        if other is not None:
            # Someone else's update landed a moment before this request.
            _start_config_update(backend, env, str(uuid.uuid4()), _now(), other["status"], other["steps"], other["abortable"])
        if env.status != "Ready":
            raise _invalid(f"Environment named {env.environment_name} is in an invalid state for this operation. Must be Ready.")
        rid = _request_id(self)
        at = _now()
        if self._get_param("Description") is not None:
            env.description = self._get_param("Description")
        if label:
            version = _store(backend)["versions"].get((env.application_name, label))
            if version is None:
                raise _invalid(f"No Application Version named '{label}' found.")
            status = _version_status(version)
            if status in ("FAILED", "PROCESSING", "BUILDING"):
                raise _invalid(f"Application version {label} cannot be deployed: its status is {status}.")
            _start_deployment(backend, env, label, version, rid, at)
        elif settings or removals:
            requested = _merged_options(_env_state(env)["settings"], settings, removals)
            _start_config_update(backend, env, rid, at, settings=requested)
        out = _describe(env)
        if label or settings or removals:
            # EB answers an update with the environment's health not yet known.
            out["Health"] = "Grey"
            out.pop("HealthStatus", None)
        return ActionResult(out)


def _configuration(env: Environment, settings: list[dict[str, Any]], status: str,
                   created: datetime.datetime, updated: datetime.datetime) -> dict[str, Any]:
    out = {
        "SolutionStackName": env.solution_stack_name,
        "PlatformArn": env.platform_arn_value,
        "ApplicationName": env.application_name,
        "EnvironmentName": env.environment_name,
        "Description": env.description,
        "DeploymentStatus": status,
        "DateCreated": created,
        "DateUpdated": updated,
        "OptionSettings": [{k: v for k, v in o.items() if k != "ResourceName" and v is not None} for o in settings],
    }
    return {k: v for k, v in out.items() if v is not None}


def _config_env(self: Response, backend: Backend) -> Environment:
    """The environment a DescribeConfigurationSettings/DeleteEnvironmentConfiguration names."""
    app_name, name = self._get_param("ApplicationName"), self._get_param("EnvironmentName")
    if app_name and app_name not in backend.applications:
        raise _invalid(f"No Application named '{app_name}' found.")
    return _find_env(backend, name, None, app_name)


def describe_configuration_settings(self: Response) -> ActionResult:
    """DescribeConfigurationSettings of an environment: the deployed
    configuration, then the draft of a configuration update ("pending" while
    it runs, "failed" after it failed, until DeleteEnvironmentConfiguration
    or the next configuration update)."""
    backend = _backend(self)
    app_name = self._get_param("ApplicationName")
    name, template = self._get_param("EnvironmentName"), self._get_param("TemplateName")
    if name and template:
        raise EBError("InvalidParameterCombination", "You cannot specify both an environment name and a template name.")
    if not name and not template:
        raise EBError("MissingRequiredParameter", "You must specify either an environment name or a template name.")
    with LOCK:
        if template:
            if app_name and app_name not in backend.applications:
                raise _invalid(f"No Application named '{app_name}' found.")
            # Saved configurations are not modelled: no template exists.
            raise _invalid(f"No Configuration Template named '{app_name}/{template}' found.")
        env = _config_env(self, backend)
        st = _env_state(env)
        out = [_configuration(env, st["settings"], "deployed", st.get("settings_created") or env.date_created,
                              st.get("settings_updated") or env.date_updated)]
        draft = st.get("draft")
        if draft is not None:
            out.append(_configuration(env, draft["settings"], draft["status"], draft["created"], draft["updated"]))
        return ActionResult({"ConfigurationSettings": out})


def delete_environment_configuration(self: Response) -> EmptyResult:
    """DeleteEnvironmentConfiguration: drops the draft configuration."""
    backend = _backend(self)
    with LOCK:
        env = _config_env(self, backend)
        st = _env_state(env)
        draft = st.get("draft")
        if draft is not None and draft["status"] == "pending":
            raise _invalid(f"Environment named {env.environment_name} is in an invalid state for this operation. Must be Ready.")
        st["draft"] = None
        return EmptyResult()


def terminate_environment(self: Response) -> ActionResult:
    backend = _backend(self)
    with LOCK:
        env = _find_env(backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId"))
        if env.status in ("Updating", "Aborting") and not self._get_param("ForceTerminate"):
            raise _invalid(f"Cannot terminate environment named {env.environment_name}. It is currently pending deployment.")
        if env.status in ("Terminating", "Terminated"):
            raise _invalid(f"Environment named {env.environment_name} is in an invalid state for this operation. Must be Ready.")
        rid = _request_id(self)
        at = _now()
        st = _env_state(env)
        st["op"] = None
        st["draft"] = None
        st["queue"].clear()
        _set_status(env, "Terminating", at)
        env.abortable_operation_in_progress = False
        env.health = "Grey"
        env.health_status = "Unknown"
        _event(backend, at, "terminateEnvironment is starting.", env=env, request_id=rid)

        def terminated(t: datetime.datetime) -> None:
            _set_status(env, "Terminated", t)
            st["terminated_at"] = t
            st["instances"] = []
            _event(backend, t, "terminateEnvironment completed successfully.", env=env, request_id=rid)
            app = backend.applications.get(env.application_name)
            if app is not None and app.environments.get(env.environment_name) is env:
                del app.environments[env.environment_name]
            _store(backend)["terminated"].append(env)

        _schedule(env, at + _step(), terminated)
        return ActionResult(_describe(env))


def abort_environment_update(self: Response) -> EmptyResult:
    backend = _backend(self)
    with LOCK:
        env = _find_env(backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId"))
        st = _env_state(env)
        op = st["op"]
        if op is None or not op["abortable"] or env.status != "Updating":
            raise _invalid(f"Environment named {env.environment_name} is in an invalid state for this operation. Must be pending deployment.")
        rid = _request_id(self)
        at = _now()
        op["aborted"] = True
        _set_status(env, "Aborting", at)
        env.abortable_operation_in_progress = False
        _event(backend, at, "abortEnvironmentUpdate is starting.", env=env, request_id=rid)

        def aborted(t: datetime.datetime) -> None:
            if op["kind"] == "deploy":
                env.version_label = op["previous"]
                _idle(st["instances"])
                _mark_wrong_version(env)
            draft = op.get("draft")
            if draft is not None and st["draft"] is draft:
                # The aborted configuration was never deployed.
                draft["status"], draft["updated"] = "failed", t
            st["op"] = None
            _set_status(env, "Ready", t)
            tl = Timeline(t)
            _event(backend, tl.next(), "abortEnvironmentUpdate completed successfully.", env=env, request_id=rid)
            if op["kind"] == "deploy":
                health, causes = _deployment_health(env)
                _set_health(backend, env, health, causes, tl.next())

        _schedule(env, at + _step(), aborted)
        return EmptyResult()


def _swap_envs(self: Response, backend: Backend) -> tuple[Environment, Environment]:
    """The two environments of a SwapEnvironmentCNAMEs, checked as EB checks them."""
    given = {k: self._get_param(k) for k in ("SourceEnvironmentName", "SourceEnvironmentId",
                                             "DestinationEnvironmentName", "DestinationEnvironmentId")}
    for key in ("SourceEnvironmentName", "DestinationEnvironmentName"):
        _check_length(given[key], key[0].lower() + key[1:], 4, 40)
    for side in ("Source", "Destination"):
        if not (given[f"{side}EnvironmentName"] or given[f"{side}EnvironmentId"]):
            raise EBError("MissingParameter", f"You must specify at least the {side}EnvironmentId or the {side}EnvironmentName.")
    for kind in ("Name", "Id"):
        # The API reference pairs them: a source name with a destination name, ids with ids.
        if bool(given[f"SourceEnvironment{kind}"]) != bool(given[f"DestinationEnvironment{kind}"]):
            raise EBError("InvalidParameterCombination",
                          f"You must specify the SourceEnvironment{kind} with the DestinationEnvironment{kind}.")
    src = _find_env(backend, given["SourceEnvironmentName"], given["SourceEnvironmentId"])
    dst = _find_env(backend, given["DestinationEnvironmentName"], given["DestinationEnvironmentId"])
    if src is dst:
        raise _invalid(f"Cannot swap CNAMEs of environment {src.environment_name} with itself.")
    if src.application_name != dst.application_name:
        raise _invalid(f"Environments {src.environment_name} and {dst.environment_name} do not belong to the same application.")
    for env in (src, dst):
        if env.status != "Ready":
            raise _invalid(f"Environment named {env.environment_name} is in an invalid state for this operation. Must be Ready.")
    return src, dst


def swap_environment_cnames(self: Response) -> EmptyResult:
    """SwapEnvironmentCNAMEs: both environments Updating at once, the CNAMEs
    exchanged two steps later (or not, with `swap_failure`), then Ready."""
    backend = _backend(self)
    with LOCK:
        envs = _swap_envs(self, backend)
        rid, at, step = _request_id(self), _now(), _step()
        failure = CONFIG.get("swap_failure")
        ops = [_begin(env, "swap", rid, at, False) for env in envs]
        names = f"'{envs[0].environment_name}' and '{envs[1].environment_name}'"

        def holders() -> list[Environment]:
            # A ForceTerminate takes an environment out of the swap.
            return [env for env, op in zip(envs, ops) if _env_state(env)["op"] is op]

        def log(tl: Timeline, message: str | Callable[[Environment], str], severity: str = "INFO") -> None:
            for env in holders():
                _event(backend, tl.next(), message(env) if callable(message) else message, severity, env=env, request_id=rid)

        def swapping(t: datetime.datetime) -> None:
            log(Timeline(t), f"Swapping CNAMEs for environments {names}.")

        def finish(t: datetime.datetime) -> None:
            tl, live = Timeline(t), holders()
            if failure or len(live) < 2:
                if failure:
                    log(tl, str(failure) if failure is not True else "Unable to update the DNS records of the environments.", "ERROR")
                log(tl, f"Failed to swap CNAMEs for environments {names}.", "ERROR")
            else:
                envs[0].cname, envs[1].cname = envs[1].cname, envs[0].cname
                log(tl, lambda env: f"'{env.cname}' now points to '{env.endpoint_url}'.")
                log(tl, f"Completed swapping CNAMEs for environments {names}.")
            for env, op in zip(envs, ops):
                if env in live:
                    _end(env, op, t)

        log(Timeline(at), "swapEnvironmentCNAMEs is starting.")
        for k, fn in ((1, swapping), (2, finish)):
            # On both queues, run once: the swap goes on if one of them is terminated.
            once = _once(fn)
            for env in envs:
                _schedule(env, at + k * step, once)
        return EmptyResult()


def _once(fn: Callable[[datetime.datetime], None]) -> Callable[[datetime.datetime], None]:
    done: list[bool] = []

    def run(t: datetime.datetime) -> None:
        if not done:
            done.append(True)
            fn(t)

    return run


def check_dns_availability(self: Response) -> ActionResult:
    """CheckDNSAvailability: free unless an environment (not Terminated) holds
    <prefix>.<region>.elasticbeanstalk.com, by creation or by a swap."""
    backend = _backend(self)
    prefix = self._get_param("CNAMEPrefix")
    _check_length(prefix, "cNAMEPrefix", 4, 63)
    if not prefix:
        raise EBError("MissingParameter", "The request must contain the parameter CNAMEPrefix.")
    with LOCK:
        _advance_backend(backend)
        cname = _fqdn(self.region, prefix)
        return ActionResult({"Available": _cname_holder(backend, cname) is None, "FullyQualifiedCNAME": cname})


def _health_attributes(self: Response) -> set[str]:
    names = set(self._get_param("AttributeNames") or [])
    return set() if not names or "All" in names else names


def _enhanced_only(env: Environment, operation: str) -> None:
    if _basic_health(env):
        raise EBError("InvalidRequestException", f"{operation} is not supported.")


def describe_environment_health(self: Response) -> ActionResult:
    backend = _backend(self)
    with LOCK:
        try:
            env = _find_env(backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId"))
        except EBError as e:
            raise EBError("InvalidRequestException", e.message)
        _enhanced_only(env, "DescribeEnvironmentHealth")
        st = _env_state(env)
        counts = {k: 0 for k in INSTANCE_HEALTH_KEYS}
        for inst in st["instances"]:
            counts[inst["health"] if inst["health"] in counts else "Unknown"] += 1
        full = {
            "EnvironmentName": env.environment_name,
            "HealthStatus": env.health_status,
            "Status": env.status,
            "Color": env.health,
            "Causes": list(st["causes"]),
            "ApplicationMetrics": {"RequestCount": 0},
            "InstancesHealth": counts,
            "RefreshedAt": _now().replace(microsecond=0),
        }
        wanted = _health_attributes(self)
        out = {k: v for k, v in full.items() if not wanted or k in wanted or k == "EnvironmentName"}
        return ActionResult(out)


def describe_instances_health(self: Response) -> ActionResult:
    backend = _backend(self)
    with LOCK:
        try:
            env = _find_env(backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId"))
        except EBError as e:
            raise EBError("InvalidRequestException", e.message)
        _enhanced_only(env, "DescribeInstancesHealth")
        wanted = _health_attributes(self)
        out = []
        for inst in _env_state(env)["instances"]:
            full = {
                "InstanceId": inst["id"],
                "HealthStatus": inst["health"],
                "Color": COLORS.get(inst["health"], "Grey"),
                "Causes": list(inst["causes"]),
                "LaunchedAt": inst["launched_at"],
                "Deployment": {k: v for k, v in {
                    "VersionLabel": inst["version"],
                    "DeploymentId": inst["deployment_id"],
                    "Status": inst["deployment_status"],
                    "DeploymentTime": inst["deployment_time"],
                }.items() if v is not None},
                "AvailabilityZone": inst["az"],
                "InstanceType": "t3.micro",
            }
            out.append({k: v for k, v in full.items() if not wanted or k in wanted or k == "InstanceId"})
        return ActionResult({"InstanceHealthList": out, "RefreshedAt": _now().replace(microsecond=0)})


def describe_events(self: Response) -> ActionResult:
    backend = _backend(self)
    severity = self._get_param("Severity") or "TRACE"
    floor = SEVERITIES.index(severity) if severity in SEVERITIES else 0
    start_time = _naive(self._get_param("StartTime"))
    end_time = _naive(self._get_param("EndTime"))
    filters = {
        "ApplicationName": self._get_param("ApplicationName"),
        "EnvironmentName": self._get_param("EnvironmentName"),
        "VersionLabel": self._get_param("VersionLabel"),
        "RequestId": self._get_param("RequestId"),
        "_env_id": self._get_param("EnvironmentId"),
    }
    with LOCK:
        _advance_backend(backend)
        events = []
        for e in _store(backend)["events"]:
            if any(v and e.get(k) != v for k, v in filters.items()):
                continue
            if SEVERITIES.index(e["Severity"]) < floor:
                continue
            if start_time and e["EventDate"] < start_time:
                continue
            if end_time and e["EventDate"] >= end_time:
                continue
            events.append(e)
        events.sort(key=lambda e: (e["EventDate"], e["_seq"]), reverse=True)
        token = self._get_param("NextToken")
        if token:
            # The token names the last event returned, so events logged
            # between two pages do not shift the next page.
            try:
                last = int(token)
            except ValueError:
                raise _invalid("Invalid NextToken.")
            keys = [i for i, e in enumerate(events) if e["_seq"] == last]
            events = events[keys[0] + 1:] if keys else []
        size = int(self._get_param("MaxRecords") or 1000)
        page = [{k: v for k, v in e.items() if not k.startswith("_") and v is not None} for e in events[:size]]
        result: dict[str, Any] = {"Events": page}
        if len(events) > size:
            result["NextToken"] = str(events[size - 1]["_seq"])
        return ActionResult(result)


# Every response carries its own RequestId (moto's fixed one, rewritten to a
# random non-UUID string, is replaced), and every request is recorded.
_orig_call_action = Response.call_action


def call_action(self: Response) -> Any:
    rid = _request_id(self)
    operation = self._get_action()
    try:
        params = self.params.original_dict() if hasattr(self.params, "original_dict") else dict(self.params or {})
    except Exception:  # noqa: BLE001 - record what we can
        params = {}
    record = {"operation": operation, "params": _jsonable(params), "request_id": rid, "at": _now().isoformat() + "Z"}
    with LOCK:
        CALLS.append(record)
        _advance_backend(self.elasticbeanstalk_backend)
        left = int(CONFIG["throttle"].get(operation, 0))
        if left > 0:
            # How the query protocol throttles: HTTP 400, code Throttling.
            CONFIG["throttle"][operation] = left - 1
            status, headers, body = self.serialized(ActionResult(EBError("Throttling", "Rate exceeded")))
            headers, body = self._enrich_response(headers, body)
        else:
            status, headers, body = _orig_call_action(self)
    record["status"] = int(status)
    if int(status) >= 400:
        m = re.search(r"<Code>([^<]+)</Code>", body if isinstance(body, str) else body.decode("utf-8", "replace"))
        record["error"] = m.group(1) if m else None
    return status, headers, body


def _enrich_response(self: Response, headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
    if "status" in headers:
        headers["status"] = str(headers["status"])
    rid = _request_id(self)
    headers["x-amzn-RequestId"] = rid
    headers.pop("x-amzn-requestid", None)
    if isinstance(body, str):
        # Only the response's own RequestId (moto's placeholder), not the
        # RequestIds of the events a DescribeEvents answer carries.
        body = body.replace("<RequestId>request-id</RequestId>", f"<RequestId>{rid}</RequestId>")
    return headers, body


Response.call_action = call_action
Response._enrich_response = _enrich_response
Response.create_application = create_application
Response.describe_applications = describe_applications
Response.create_storage_location = create_storage_location
Response.create_application_version = create_application_version
Response.describe_application_versions = describe_application_versions
Response.delete_application_version = delete_application_version
Response.update_application_version = update_application_version
Response.create_environment = create_environment
Response.describe_environments = describe_environments
Response.update_environment = update_environment
Response.describe_configuration_settings = describe_configuration_settings
Response.delete_environment_configuration = delete_environment_configuration
Response.terminate_environment = terminate_environment
Response.abort_environment_update = abort_environment_update
Response.swap_environment_cnam_es = swap_environment_cnames  # moto's name for SwapEnvironmentCNAMEs
Response.check_dns_availability = check_dns_availability
Response.describe_environment_health = describe_environment_health
Response.describe_instances_health = describe_instances_health
Response.describe_events = describe_events


# ---------------------------------------------------------------------------
# Control endpoint: /_sandbox/beanstalk/<command>.

PREFIX = "/_sandbox/beanstalk/"
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _backends(body: dict[str, Any]) -> list[Backend]:
    out = []
    for account, regions in list(eb_models.eb_backends.items()):
        if body.get("account") and account != body["account"]:
            continue
        for region, backend in list(regions.items()):
            if body.get("region") and region != body["region"]:
                continue
            out.append(backend)
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() + "Z" if isinstance(v, datetime.datetime) else str(v)))


def _control_env(body: dict[str, Any]) -> tuple[Backend, Environment]:
    for backend in _backends(body):
        _advance_backend(backend)
        for app in backend.applications.values():
            env = app.environments.get(body["environment"])
            if env is not None and hasattr(env, "_sandbox"):
                return backend, env
    raise ValueError(f"no environment named {body['environment']!r}")


def _control(command: str, body: dict[str, Any]) -> Any:
    with LOCK:
        if command == "config":
            for key in CONFIG:
                if key in body:
                    CONFIG[key] = body[key]
            return dict(CONFIG)
        if command == "calls":
            if body.get("reset"):
                CALLS.clear()
            return list(CALLS)
        if command == "health":
            backend, env = _control_env(body)
            status = body["status"]
            if status not in COLORS:
                raise ValueError(f"unknown health status {status!r}: use one of {sorted(COLORS)}")
            flap = {"status": status, "cause": body.get("cause"), "steps": body.get("steps"), "when": body.get("when", "now")}
            if flap["when"] == "next_deploy":
                _env_state(env)["flap"] = flap
            else:
                _apply_flap(backend, env, flap, _now())
            return _jsonable(_describe(env))
        if command == "env-status":
            backend, env = _control_env(body)
            steps = body.get("steps")
            other = {"status": body.get("status", "Updating"), "steps": int(steps) if steps is not None else None,
                     "abortable": bool(body.get("abortable", False))}
            when = body.get("when", "now")
            if when == "next_update":
                _env_state(env)["next_update"] = other
            elif when == "now":
                _start_config_update(backend, env, str(uuid.uuid4()), _now(), other["status"], other["steps"], other["abortable"])
            else:
                raise ValueError(f"env-status `when` is now or next_update, not {when!r}")
            return _jsonable(_describe(env))
        if command == "environments":
            out = []
            for backend in _backends(body):
                _advance_backend(backend)
                for env in _all_environments(backend):
                    st = _env_state(env)
                    d = _jsonable(_describe(env))
                    d["Instances"] = _jsonable(st["instances"])
                    d["PendingSteps"] = len(st["queue"])
                    d["Causes"] = list(st["causes"])
                    out.append(d)
            return out
        raise KeyError(command)


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    return answered if answered is not None else _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
