//! What a run did: filled in by the executors phase by phase and read by
//! every reporter (outputs, job summary, Slack, GitHub). Reporters never
//! change it.

use std::collections::BTreeMap;

use serde::Serialize;

/// The run's (and each component's) result, as the `result` output spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// Nothing needed doing (unchanged image already deployed).
    Skipped,
    /// Built (and pushed) without a deploy.
    Built,
    /// Deployed, and the target reports our revision serving (ECS: rollout
    /// complete; Lambda: the alias on our version).
    Success,
    /// The deploy did not take and the previous revision serves again (ECS or
    /// fastdeploy rolled it back; Lambda kept the alias on the previous version).
    RolledBack,
    /// The build or deploy failed.
    Failure,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Skipped => "skipped",
            RunResult::Built => "built",
            RunResult::Success => "success",
            RunResult::RolledBack => "rolled-back",
            RunResult::Failure => "failure",
        }
    }
    pub fn is_failure(self) -> bool {
        matches!(self, RunResult::Failure | RunResult::RolledBack)
    }
}

/// A warning to show as an annotation, in the summary and in the PR comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Check id (`DF001`, `CTX001`, ...), when it comes from a check.
    pub rule: Option<String>,
    /// A notice for a finding whose fix is a policy choice (`DF004`).
    #[serde(skip_serializing_if = "Severity::is_warning")]
    pub severity: Severity,
    pub component: Option<String>,
    /// Path relative to the workspace.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

/// How loudly a finding is shown: `::warning` or `::notice`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Acting on it pays on every image it fires on.
    #[default]
    Warning,
    /// Worth knowing; whether to act is the team's policy.
    Notice,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }

    pub fn is_warning(&self) -> bool {
        *self == Severity::Warning
    }
}

/// Build facts of one component.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildReport {
    pub context_bytes: Option<u64>,
    pub context_files: Option<u64>,
    /// Content tag the build inputs hash to.
    pub content_tag: Option<String>,
    /// True when the registry already had the content tag and nothing was built.
    pub skipped: bool,
    pub seconds: Option<f64>,
    pub cached_steps: Option<u32>,
    pub total_steps: Option<u32>,
    /// `registry/repository` without tag.
    pub image: Option<String>,
    /// `sha256:...`
    pub digest: Option<String>,
    pub tags: Vec<String>,
    /// Compressed size as the registry stores it.
    pub image_bytes: Option<u64>,
    pub layers: Option<u32>,
    /// CodeBuild build id/ARN when built remotely.
    pub codebuild_build: Option<String>,
    /// Each CodeBuild build's billed minutes and cost (one per platform
    /// when several build natively).
    pub codebuild_billing: Vec<crate::image::billing::Billing>,
    /// The base images resolved for the build, by digest.
    pub bases: Vec<crate::image::bases::Resolved>,
    /// Why an image whose files did not change was built again.
    pub rebuilt_because: Option<String>,
    /// Bases that could not be resolved; moved to the run's warnings.
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

/// The deploy target of a component, as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetRef {
    Ecs {
        cluster: String,
        service: String,
    },
    Lambda {
        function: String,
        alias: String,
    },
    Beanstalk {
        application: String,
        environment: String,
    },
    Rule {
        event_bus: String,
        rule: String,
    },
    Schedule {
        group: String,
        schedule: String,
    },
}

impl TargetRef {
    /// `ECS service shop in cluster demo`, `Lambda function thumbs (alias live)`.
    pub fn describe(&self) -> String {
        match self {
            TargetRef::Ecs { cluster, service } => {
                format!("ECS service {service} in cluster {cluster}")
            }
            TargetRef::Lambda { function, alias } => {
                format!("Lambda function {function} (alias {alias})")
            }
            TargetRef::Beanstalk {
                application,
                environment,
            } => {
                format!("Elastic Beanstalk environment {environment} of application {application}")
            }
            TargetRef::Rule { event_bus, rule } => {
                format!("EventBridge rule {rule} on event bus {event_bus}")
            }
            TargetRef::Schedule { group, schedule } => {
                format!("EventBridge Scheduler schedule {schedule} in group {group}")
            }
        }
    }

    /// The target's page in the AWS console, named: (`ECS service shop`, URL).
    pub fn console_link(&self, region: &str) -> (String, String) {
        let home = format!("https://{region}.console.aws.amazon.com");
        match self {
            TargetRef::Ecs { cluster, service } => (
                format!("ECS service {service}"),
                format!(
                    "{home}/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}"
                ),
            ),
            TargetRef::Lambda { function, alias } => {
                let name = function.rsplit(':').next().unwrap_or(function);
                (
                    format!("Lambda function {name}"),
                    format!("{home}/lambda/home?region={region}#/functions/{name}/aliases/{alias}"),
                )
            }
            TargetRef::Beanstalk {
                application,
                environment,
            } => (
                format!("Elastic Beanstalk environment {environment}"),
                format!(
                    "{home}/elasticbeanstalk/home?region={region}#/application/overview?applicationName={application}"
                ),
            ),
            TargetRef::Rule { event_bus, rule } => (
                format!("EventBridge rule {rule}"),
                format!("{home}/events/home?region={region}#/eventbus/{event_bus}/rules/{rule}"),
            ),
            TargetRef::Schedule { group, schedule } => (
                format!("Scheduler schedule {schedule}"),
                format!("{home}/scheduler/home?region={region}#schedules/{group}/{schedule}"),
            ),
        }
    }

    /// The name log lines are prefixed with: the service, the function.
    pub fn short(&self) -> &str {
        match self {
            TargetRef::Ecs { service, .. } => service,
            TargetRef::Lambda { function, .. } => function.rsplit(':').next().unwrap_or(function),
            TargetRef::Beanstalk { environment, .. } => environment,
            TargetRef::Rule { rule, .. } => rule,
            TargetRef::Schedule { schedule, .. } => schedule,
        }
    }
}

impl Default for TargetRef {
    fn default() -> Self {
        TargetRef::Ecs {
            cluster: String::new(),
            service: String::new(),
        }
    }
}

/// Deploy facts of one component, the same for every target kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeployReport {
    pub target: TargetRef,
    /// How this target's deploy ended (a component with several targets
    /// has one verdict, and one of these per target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
    /// What this run deployed: the task definition revision ARN (ECS), the
    /// published version's ARN (Lambda), the application version label
    /// (Elastic Beanstalk).
    pub revision: Option<String>,
    /// What served before this run.
    pub previous_revision: Option<String>,
    /// What serves now, as last observed: ours on success, the previous one
    /// after a rollback. ECS: the revision with running tasks, not merely
    /// the newest deployment's.
    pub serving_revision: Option<String>,
    /// What serves, in words with counts (`web:1 (2 running); web:2
    /// started, 0 of 2 running`), when the target can say.
    pub serving_detail: Option<String>,
    /// ECS: the service deployment (or `ecs-svc/...` id) this run started.
    pub deployment_id: Option<String>,
    pub seconds: Option<f64>,
    /// The target's own events seen while watching, oldest first (ECS
    /// service events, Lambda's update status changes).
    pub events: Vec<String>,
    /// Evidence of a failure: stopped tasks' reasons and exit codes, Lambda's
    /// `LastUpdateStatusReason`.
    pub evidence: Vec<String>,
    /// True when nothing needed changing and nothing was deployed.
    pub unchanged: bool,
    /// The one-off task run before the update (`before-deploy`), when asked for.
    pub before_deploy: Option<TaskReport>,
    /// Where the target answers, when it says (Elastic Beanstalk: the
    /// environment's CNAME); GitHub deployments show it when no
    /// `environment-url` is set.
    pub url: Option<String>,
    /// ECS: what the deploy-time doctor read before the rollout, and what it expected.
    pub doctor: Option<DoctorReport>,
    /// ECS: where the deploy's time went, read after the rollout.
    pub timeline: Option<Timeline>,
}

/// The deploy-time doctor's reading of an ECS service before the rollout:
/// the settings that pace a rolling update, what each costs this deploy and
/// the rollout it expects from them. Read-only, never a gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DoctorReport {
    /// The rollout it expects; `None` when it cannot say (and `notes` says why).
    pub estimate: Option<RolloutEstimate>,
    /// Every setting read that paces the rollout, the costly first.
    pub settings: Vec<SettingCost>,
    /// What it assumed or could not read, in words.
    pub notes: Vec<String>,
}

/// A rolling update's expected duration in real seconds, split as the
/// timeline splits the measured one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RolloutEstimate {
    pub seconds: f64,
    /// Times the scheduler starts new tasks before the rollout completes.
    pub batches: u32,
    pub pull: f64,
    pub start_to_healthy: f64,
    pub draining: f64,
    pub waiting: f64,
}

/// One setting that paces the rollout, with its cost for this deploy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SettingCost {
    /// `DEP001`...: the check that names it, silenced by `ignore-checks`.
    pub check: Option<String>,
    /// `deregistration delay of target group web`.
    pub setting: String,
    /// `300 s`.
    pub value: String,
    /// Seconds of this deploy's estimated rollout above what the
    /// recommended value would take.
    pub cost_seconds: f64,
    pub recommended: String,
    /// Where to change it: the attribute, the console, the command.
    pub change: String,
    /// Beyond the recommended range and not silenced: a notice says so.
    pub flagged: bool,
    /// The setting already is what the recommendation says: nothing to change.
    pub as_recommended: bool,
}

/// Where an ECS deploy's time went: consecutive phases that add up to the
/// deploy time reported (`DeployReport::seconds`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub phases: Vec<TimelinePhase>,
    pub deploy_seconds: f64,
    /// The doctor's estimate of the rollout, for comparison.
    pub estimated_rollout: Option<f64>,
}

impl Timeline {
    /// The timeline in one line (logs, Slack): `register 0.4s · task pull
    /// 1m 00s · ... (rollout estimated 7m 01s)`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {}", p.phase.as_str(), crate::units::duration(p.seconds)))
            .collect();
        let estimate = self
            .estimated_rollout
            .map(|e| format!(" (rollout estimated {})", crate::units::duration(e)))
            .unwrap_or_default();
        format!(
            "deploy {}: {}{estimate}",
            crate::units::duration(self.deploy_seconds),
            parts.join(" · ")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePhase {
    pub phase: Phase,
    pub seconds: f64,
    /// The doctor's estimate for this phase, when it makes one.
    pub estimate: Option<f64>,
}

/// The phases of an ECS deploy, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// From the deploy's start to UpdateService: reading the service,
    /// registering the revision (the doctor runs before the deploy's clock).
    Register,
    /// The one-off `before-deploy` task.
    BeforeDeploy,
    /// New tasks pulling their image.
    Pull,
    /// New tasks from their image pulled to healthy (start, health checks).
    StartToHealthy,
    /// The previous revision's tasks draining from the load balancer and stopping.
    Draining,
    /// None of the above: placement, ECS's scheduler, the verdict's last look.
    Waiting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Register => "register",
            Phase::BeforeDeploy => "before-deploy task",
            Phase::Pull => "task pull",
            Phase::StartToHealthy => "task start to healthy",
            Phase::Draining => "draining the old tasks",
            Phase::Waiting => "waiting",
        }
    }
}

/// A one-off task run before a service update (database migrations).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskReport {
    /// The command, as a shell would print it.
    pub command: String,
    pub container: String,
    /// The task id, when one was started (or found done).
    pub task: Option<String>,
    /// `succeeded`, `failed`, `stopped` (timeout or cancellation) or
    /// `already-done` (an earlier run of this revision succeeded).
    pub outcome: String,
    pub exit_code: Option<i32>,
    /// Why it failed, in one line.
    pub failure: Option<String>,
    /// Its last log lines.
    pub last_lines: Vec<String>,
    pub seconds: Option<f64>,
}

impl DeployReport {
    /// What serves, as people read it: the counts when the target gave them
    /// (`web:1 (2 running); web:2 started, 0 of 2 running`), else the revision.
    pub fn serving_text(&self) -> Option<String> {
        self.serving_detail
            .clone()
            .or_else(|| self.serving_revision.as_deref().map(revision_label))
    }

    /// One line for a target among several: how its deploy ended and what
    /// it runs (`ECS service worker in cluster c: rolled-back, runs worker:1`).
    pub fn target_line(&self) -> String {
        let result = self.result.map_or("not deployed", RunResult::as_str);
        let runs = self.serving_revision.as_deref().map_or_else(
            || "what it runs is not known".into(),
            |r| format!("runs {}", revision_label(r)),
        );
        format!("{}: {result}, {runs}", self.target.describe())
    }
}

/// A revision as people read it: `shop-web:3` for a task definition ARN,
/// `thumbs:7` for a Lambda version ARN; anything else as it is.
pub fn revision_label(revision: &str) -> String {
    if let Some((_, rest)) = revision.split_once(":function:") {
        return rest.to_string();
    }
    revision.rsplit('/').next().unwrap_or(revision).to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentReport {
    pub name: String,
    pub result: RunResult,
    /// Why it failed, in one line, when it did.
    pub failure: Option<String>,
    pub build: BuildReport,
    pub deploy: Option<DeployReport>,
    /// The component's further targets (`targets:`), one report each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<DeployReport>,
}

impl ComponentReport {
    /// Every target's report, the first one included.
    pub fn targets(&self) -> impl Iterator<Item = &DeployReport> {
        self.deploy.iter().chain(&self.also)
    }

    pub fn new(name: &str) -> Self {
        ComponentReport {
            name: name.to_string(),
            result: RunResult::Skipped,
            failure: None,
            build: BuildReport::default(),
            deploy: None,
            also: Vec::new(),
        }
    }
}

/// Durations of the run's phases, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Phases {
    pub check: Option<f64>,
    pub build: Option<f64>,
    pub deploy: Option<f64>,
    pub total: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub result: RunResult,
    pub environment: Option<String>,
    pub components: Vec<ComponentReport>,
    pub warnings: Vec<Warning>,
    pub phases: Phases,
    /// One-line reason for a failed run (the first failure).
    pub failure: Option<String>,
    /// Links to show: label -> URL (ECS console, CodeBuild build, ECR image).
    pub links: BTreeMap<String, String>,
}

impl RunReport {
    /// A report before anything ran: every component skipped so far.
    pub fn new<'a>(
        environment: Option<&str>,
        components: impl Iterator<Item = &'a str>,
    ) -> RunReport {
        RunReport {
            result: RunResult::Skipped,
            environment: environment.map(str::to_string),
            components: components.map(ComponentReport::new).collect(),
            warnings: Vec::new(),
            phases: Phases::default(),
            failure: None,
            links: BTreeMap::new(),
        }
    }

    /// Combines component results: any failure fails the run; a rollback
    /// (and no other failure) makes it rolled-back.
    pub fn overall(components: &[ComponentReport]) -> RunResult {
        if components.iter().any(|c| c.result == RunResult::Failure) {
            RunResult::Failure
        } else if components.iter().any(|c| c.result == RunResult::RolledBack) {
            RunResult::RolledBack
        } else if components.iter().any(|c| c.result == RunResult::Success) {
            RunResult::Success
        } else if components.iter().any(|c| c.result == RunResult::Built) {
            RunResult::Built
        } else {
            RunResult::Skipped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(result: RunResult) -> ComponentReport {
        ComponentReport {
            result,
            ..ComponentReport::new("c")
        }
    }

    #[test]
    fn revisions_read_as_people_name_them() {
        assert_eq!(
            revision_label("arn:aws:ecs:us-east-1:123456789012:task-definition/shop-web:3"),
            "shop-web:3"
        );
        assert_eq!(
            revision_label("arn:aws:lambda:us-east-1:123456789012:function:thumbs:7"),
            "thumbs:7"
        );
        assert_eq!(revision_label("v42"), "v42");
    }

    #[test]
    fn any_failure_fails_the_run_and_rollback_outranks_success() {
        assert_eq!(
            RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Failure)]),
            RunResult::Failure
        );
        assert_eq!(
            RunReport::overall(&[comp(RunResult::Success), comp(RunResult::RolledBack)]),
            RunResult::RolledBack
        );
        assert_eq!(
            RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Built)]),
            RunResult::Success
        );
        assert_eq!(
            RunReport::overall(&[comp(RunResult::Skipped)]),
            RunResult::Skipped
        );
        assert_eq!(RunReport::overall(&[]), RunResult::Skipped);
    }
}
