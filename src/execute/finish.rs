//! The report phase: the overall result, console links, the step outputs
//! (written first: they must be there even if reporting is interrupted),
//! annotations, Slack and GitHub, and the job summary. Reporting never
//! fails a deploy.

use crate::error::chain_message;
use crate::gha::{Actions, Location};
use crate::outcome::{ComponentReport, RunReport, TargetRef};
use crate::plan::Plan;
use crate::report::notify::{Notifier, PhaseEnd, PhaseLog};

use super::Pipeline;

impl Pipeline<'_> {
    pub(super) async fn report(
        &self,
        plan: &Plan,
        registry: &str,
        mut notifier: Notifier<'_>,
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        report.result = RunReport::overall(&report.components);
        report.failure = report
            .components
            .iter()
            .find_map(|c| c.failure.as_ref().map(|f| format!("{}: {f}", c.name)));
        report.phases.total = Some(self.started.elapsed().as_secs_f64());
        add_links(plan, registry, report);
        write_outputs(self.actions, plan, report, registry)?;
        for c in &report.components {
            if let Some(f) = &c.failure {
                let at = Location {
                    title: Some("fastdeploy"),
                    ..Location::default()
                };
                self.actions.error(&format!("{}: {f}", c.name), &at);
            }
        }
        let phase = PhaseLog::open(self.actions, self.style, "report", None);
        // finish() has shown each warning already; the summary lists them too.
        for w in notifier.finish(plan, report).await {
            if !report.warnings.contains(&w) {
                report.warnings.push(w);
            }
        }
        let end = match self
            .actions
            .append_summary(&crate::report::summary::render(plan, report))
        {
            Ok(()) => PhaseEnd::Done,
            Err(e) => {
                let message = format!(
                    "the job summary could not be written: {}",
                    chain_message(&e)
                );
                self.actions.warning(&message, &Location::default());
                PhaseEnd::Failed(message)
            }
        };
        phase.close(end);
        self.actions
            .line(&format!("result: {}", report.result.as_str()));
        Ok(())
    }
}

/// Console links: each target, each CodeBuild build, each ECR image.
fn add_links(plan: &Plan, registry: &str, report: &mut RunReport) {
    let region = plan.aws_region.as_deref().unwrap_or("us-east-1");
    let home = format!("https://{region}.console.aws.amazon.com");
    for (c, rep) in plan.components.iter().zip(report.components.iter()) {
        if let Some(d) = &c.deploy {
            let (name, url) = d.reference().console_link(region);
            report.links.insert(name, url);
        }
        if let Some(id) = &rep.build.codebuild_build {
            let project = plan
                .builder
                .codebuild_project
                .as_deref()
                .unwrap_or_default();
            let build = id.rsplit('/').next().unwrap_or(id);
            report.links.insert(
                format!("CodeBuild build {}", c.name),
                format!(
                    "{home}/codesuite/codebuild/projects/{project}/build/{build}/?region={region}"
                ),
            );
        }
        if rep.build.digest.is_some() && registry.contains(".dkr.ecr.") {
            let account = registry.split('.').next().unwrap_or_default();
            report.links.insert(
                format!("ECR image {}", c.name),
                format!(
                    "{home}/ecr/repositories/private/{account}/{}?region={region}",
                    c.build.repository
                ),
            );
        }
    }
}

/// A component's entry in the `images` output.
fn image_entry(c: &ComponentReport, image: Option<String>) -> serde_json::Value {
    let d = c.deploy.as_ref();
    let of_kind = |ecs: bool, lambda: bool| {
        d.filter(|d| match d.target {
            TargetRef::Ecs { .. } => ecs,
            TargetRef::Lambda { .. } => lambda,
            TargetRef::Beanstalk { .. } => !ecs && !lambda,
            TargetRef::Rule { .. } | TargetRef::Schedule { .. } => false,
        })
    };
    serde_json::json!({
        "image": image,
        "digest": c.build.digest,
        // Every tag pushed, the content tag included.
        "tags": c.build.tags.iter().chain(c.build.content_tag.iter()).collect::<Vec<_>>(),
        "context-bytes": c.build.context_bytes,
        "image-bytes": c.build.image_bytes,
        "build-skipped": c.build.skipped,
        "rebuilt-because": c.build.rebuilt_because,
        "codebuild": c.build.codebuild_billing,
        // What each base image resolved to (`FROM` pinned by digest).
        "bases": c.build.bases,
        "result": c.result.as_str(),
        "target": d.map(|d| &d.target),
        "revision": d.and_then(|d| d.revision.clone()),
        "previous-revision": d.and_then(|d| d.previous_revision.clone()),
        "serving-revision": d.and_then(|d| d.serving_revision.clone()),
        "serving": d.and_then(|d| d.serving_text()),
        "task-definition-arn": of_kind(true, false).and_then(|d| d.revision.clone()),
        "deployment-id": d.and_then(|d| d.deployment_id.clone()),
        "function-version": of_kind(false, true)
            .and_then(|d| d.revision.as_deref())
            .and_then(|r| r.rsplit(':').next()),
        "version-label": of_kind(false, false).and_then(|d| d.revision.clone()),
        "url": d.and_then(|d| d.url.clone()),
        // With several targets (`targets:`), one entry each, the first included.
        "targets": (!c.also.is_empty()).then(|| {
            d.into_iter().chain(&c.also).map(|d| serde_json::json!({
                "target": &d.target,
                "result": d.result.map(crate::outcome::RunResult::as_str),
                "revision": d.revision,
                "previous-revision": d.previous_revision,
                "serving-revision": d.serving_revision,
            })).collect::<Vec<_>>()
        }),
    })
}

/// The step outputs. `image`, `digest`, `context-bytes` and `image-bytes`
/// are the first component's (the first in the config, or the only one);
/// `images` lists every component in the config's order.
fn write_outputs(
    actions: &Actions,
    plan: &Plan,
    report: &RunReport,
    registry: &str,
) -> anyhow::Result<()> {
    actions.set_output("environment", plan.environment().unwrap_or(""))?;
    actions.set_output("result", report.result.as_str())?;
    let first = report.components.first();
    let image_of = |c: &ComponentReport| {
        let plan_c = plan.components.iter().find(|p| p.name == c.name)?;
        Some(format!(
            "{registry}/{}@{}",
            plan_c.build.repository,
            c.build.digest.as_deref()?
        ))
    };
    actions.set_output("image", &first.and_then(image_of).unwrap_or_default())?;
    actions.set_output(
        "digest",
        first.and_then(|c| c.build.digest.as_deref()).unwrap_or(""),
    )?;
    let images: indexmap::IndexMap<&str, serde_json::Value> = report
        .components
        .iter()
        .map(|c| (c.name.as_str(), image_entry(c, image_of(c))))
        .collect();
    actions.set_output("images", &serde_json::to_string(&images)?)?;
    let deployed = report.components.iter().find_map(|c| c.deploy.as_ref());
    let ecs = report
        .components
        .iter()
        .filter_map(|c| c.deploy.as_ref())
        .find(|d| matches!(d.target, TargetRef::Ecs { .. }));
    let or_empty = |v: Option<&String>| v.map(String::as_str).unwrap_or("").to_string();
    actions.set_output(
        "revision",
        &or_empty(deployed.and_then(|d| d.revision.as_ref())),
    )?;
    actions.set_output(
        "previous-revision",
        &or_empty(deployed.and_then(|d| d.previous_revision.as_ref())),
    )?;
    actions.set_output(
        "serving-revision",
        &or_empty(deployed.and_then(|d| d.serving_revision.as_ref())),
    )?;
    actions.set_output(
        "task-definition-arn",
        &or_empty(ecs.and_then(|d| d.revision.as_ref())),
    )?;
    actions.set_output(
        "previous-task-definition-arn",
        &or_empty(ecs.and_then(|d| d.previous_revision.as_ref())),
    )?;
    actions.set_output(
        "deployment-id",
        &or_empty(ecs.and_then(|d| d.deployment_id.as_ref())),
    )?;
    let secs = |s: Option<f64>| s.map(|s| format!("{s:.1}")).unwrap_or_default();
    actions.set_output("build-seconds", &secs(report.phases.build))?;
    actions.set_output("deploy-seconds", &secs(report.phases.deploy))?;
    let bytes = |b: Option<u64>| b.map(|b| b.to_string()).unwrap_or_default();
    actions.set_output(
        "context-bytes",
        &bytes(first.and_then(|c| c.build.context_bytes)),
    )?;
    actions.set_output(
        "image-bytes",
        &bytes(first.and_then(|c| c.build.image_bytes)),
    )?;
    Ok(())
}
