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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Check id (`DF001`, `CTX001`, ...), when it comes from a check.
    pub rule: Option<String>,
    pub component: Option<String>,
    /// Path relative to the workspace.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
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
}

/// The deploy target of a component, as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetRef {
    Ecs { cluster: String, service: String },
    Lambda { function: String, alias: String },
    Beanstalk { application: String, environment: String },
}

impl TargetRef {
    /// `ECS service shop in cluster demo`, `Lambda function thumbs (alias live)`.
    pub fn describe(&self) -> String {
        match self {
            TargetRef::Ecs { cluster, service } => format!("ECS service {service} in cluster {cluster}"),
            TargetRef::Lambda { function, alias } => format!("Lambda function {function} (alias {alias})"),
            TargetRef::Beanstalk { application, environment } => {
                format!("Elastic Beanstalk environment {environment} of application {application}")
            }
        }
    }

    /// The name log lines are prefixed with: the service, the function.
    pub fn short(&self) -> &str {
        match self {
            TargetRef::Ecs { service, .. } => service,
            TargetRef::Lambda { function, .. } => function.rsplit(':').next().unwrap_or(function),
            TargetRef::Beanstalk { environment, .. } => environment,
        }
    }
}

impl Default for TargetRef {
    fn default() -> Self {
        TargetRef::Ecs { cluster: String::new(), service: String::new() }
    }
}

/// Deploy facts of one component, the same for every target kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeployReport {
    pub target: TargetRef,
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
        self.serving_detail.clone().or_else(|| self.serving_revision.as_deref().map(revision_label))
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
}

impl ComponentReport {
    pub fn new(name: &str) -> Self {
        ComponentReport { name: name.to_string(), result: RunResult::Skipped, failure: None, build: BuildReport::default(), deploy: None }
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
        ComponentReport { result, ..ComponentReport::new("c") }
    }

    #[test]
    fn revisions_read_as_people_name_them() {
        assert_eq!(revision_label("arn:aws:ecs:us-east-1:123456789012:task-definition/shop-web:3"), "shop-web:3");
        assert_eq!(revision_label("arn:aws:lambda:us-east-1:123456789012:function:thumbs:7"), "thumbs:7");
        assert_eq!(revision_label("v42"), "v42");
    }

    #[test]
    fn any_failure_fails_the_run_and_rollback_outranks_success() {
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Failure)]), RunResult::Failure);
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::RolledBack)]), RunResult::RolledBack);
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Built)]), RunResult::Success);
        assert_eq!(RunReport::overall(&[comp(RunResult::Skipped)]), RunResult::Skipped);
        assert_eq!(RunReport::overall(&[]), RunResult::Skipped);
    }
}
