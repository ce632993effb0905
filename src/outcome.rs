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
    /// Deployed and ECS reports the rollout complete on our revision.
    Success,
    /// ECS (or we) rolled the deployment back; the service is on the previous revision.
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

/// Deploy facts of one component.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeployReport {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: Option<String>,
    pub previous_task_definition_arn: Option<String>,
    pub deployment_id: Option<String>,
    /// Revision serving when we stopped looking (ours on success, the previous after a rollback).
    pub serving_task_definition_arn: Option<String>,
    pub seconds: Option<f64>,
    /// Service events seen while watching, oldest first.
    pub events: Vec<String>,
    /// Stopped tasks' reasons and exit codes on failure.
    pub stopped_tasks: Vec<String>,
    /// True when no new revision was needed and nothing was deployed.
    pub unchanged: bool,
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
    fn any_failure_fails_the_run_and_rollback_outranks_success() {
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Failure)]), RunResult::Failure);
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::RolledBack)]), RunResult::RolledBack);
        assert_eq!(RunReport::overall(&[comp(RunResult::Success), comp(RunResult::Built)]), RunResult::Success);
        assert_eq!(RunReport::overall(&[comp(RunResult::Skipped)]), RunResult::Skipped);
        assert_eq!(RunReport::overall(&[]), RunResult::Skipped);
    }
}
