//! Amazon ECS: render the task definition by digest, update the service, watch our own deployment to a verdict, roll back.
//!
//! - `render`: the RegisterTaskDefinition input, as ECS's JSON, with the image replaced by digest.
//! - `wire`: describing and registering task definitions as that JSON.
//! - `update`: preflight checks and UpdateService (strategy handling).
//! - `watch`: following the deployment this run started, events and counts as they happen.
//! - `rollback`: StopServiceDeployment(ROLLBACK) or UpdateService back, on timeout or cancellation.
//! - `doctor`: before the rollout, what paces it (target groups, percents, stop timeouts, image size) and its estimate.
//! - `timeline`: after the rollout, where the deploy's time went, phase by phase.

pub mod doctor;
pub mod render;
pub mod rollback;
pub mod task;
pub mod timeline;
pub mod update;
pub mod watch;
pub mod wire;

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_ecs::types::{DesiredStatus, SortOrder, TaskDefinitionStatus};

use crate::cancel::Cancel;
use crate::error::chain_message;
use crate::gha::Actions;
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::EcsPlan;
pub use update::{Preflight, preflight};
use watch::{Ours, Verdict};

use crate::deploy::{DeployOutcome, Pace};

/// Deploys `image` (`repository@sha256:...`) to the plan's service and
/// watches our deployment to a verdict. Never panics or returns early
/// without saying which revision serves.
pub async fn deploy(
    ecs: &aws_sdk_ecs::Client,
    tasks: &TaskEnv<'_>,
    plan: &EcsPlan,
    image: &str,
    delay_scale: f64,
    cancel: &Cancel,
    actions: &Actions,
) -> DeployOutcome {
    let started = Instant::now();
    let mut report = DeployReport {
        target: TargetRef::Ecs {
            cluster: plan.cluster.clone(),
            service: plan.service.clone(),
        },
        ..DeployReport::default()
    };
    let outcome = run(
        ecs,
        tasks,
        plan,
        image,
        delay_scale,
        cancel,
        actions,
        &mut report,
    )
    .await;
    report.seconds = Some(started.elapsed().as_secs_f64());
    let (result, failure) = match outcome {
        Ok(r) => r,
        Err(e) => (RunResult::Failure, Some(chain_message(&e))),
    };
    // What serves is what runs: one last look, whatever the verdict said,
    // unless the look that judged success showed the rollout settled.
    let judged_on_a_look = result == RunResult::Success && report.serving_detail.is_some();
    if !judged_on_a_look
        && let Ok(out) = ecs
            .describe_services()
            .cluster(&plan.cluster)
            .services(&plan.service)
            .send()
            .await
        && let Some(service) = out.services().first()
    {
        report.serving_revision = watch::serving(service).or(report.serving_revision.take());
        report.serving_detail = Some(watch::running_text(service));
    }
    let serving = report
        .serving_detail
        .as_deref()
        .or(report.serving_revision.as_deref())
        .unwrap_or("unknown (ECS did not answer)");
    actions.line(&format!(
        "[{}] result: {}; serving {serving}",
        plan.service,
        result.as_str()
    ));
    if let Some(f) = &failure {
        actions.line(&format!("[{}] {f}", plan.service));
    }
    DeployOutcome {
        result,
        report,
        failure,
    }
}

/// What a `before-deploy` task needs besides ECS: CloudWatch Logs for its
/// output, and what identifies this run (for the task's client token).
#[derive(Clone, Copy)]
pub struct TaskEnv<'a> {
    pub logs: &'a aws_sdk_cloudwatchlogs::Client,
    /// `<repository>/<run id>/<attempt>` in Actions; the commit on a laptop.
    pub run_key: &'a str,
    pub region: Option<&'a str>,
}

async fn run(
    ecs: &aws_sdk_ecs::Client,
    tasks: &TaskEnv<'_>,
    plan: &EcsPlan,
    image: &str,
    scale: f64,
    cancel: &Cancel,
    actions: &Actions,
    report: &mut DeployReport,
) -> anyhow::Result<(RunResult, Option<String>)> {
    let say = |s: &str| actions.line(&format!("[{}] {s}", plan.service));
    let pre = preflight(ecs, plan).await?;
    let current_arn = pre.current.arn().to_string();
    report.previous_revision = Some(current_arn.clone());

    let mut rendered = pre.base.clone();
    render::replace_images(&mut rendered, &pre.containers, image);
    let current_input =
        render::from_described(&pre.current.task_definition, pre.current.tags.as_ref());
    // The service may already be on this revision because an earlier run
    // of this commit was killed mid-rollout: then its deployment is ours to
    // follow to a verdict, not a reason to report success.
    let unfinished = if render::same_revision(&rendered, &current_input) {
        let primary = pre
            .service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        let done = primary.is_none_or(|d| {
            d.task_definition() == Some(current_arn.as_str())
                && d.rollout_state().is_none_or(|r| r.as_str() == "COMPLETED")
                && pre.service.deployments().len() == 1
        });
        if done {
            say(&format!(
                "{current_arn} already runs {image} in {}; nothing to register or deploy",
                pre.containers.join(", ")
            ));
            if let Some(before) = &plan.before_deploy {
                report.before_deploy =
                    already_done(before, &pre, render::family(&rendered), &current_arn, &say);
            }
            report.unchanged = true;
            report.revision = Some(current_arn.clone());
            report.serving_revision = Some(current_arn);
            return Ok((RunResult::Skipped, None));
        }
        say(&format!(
            "{current_arn} already holds {image}, but its rollout has not finished (an earlier run stopped watching it); following it"
        ));
        primary.cloned()
    } else {
        None
    };
    if let Some(primary) = unfinished {
        report.revision = Some(current_arn.clone());
        let previous = pre
            .service
            .deployments()
            .iter()
            .filter(|d| d.status() == Some("ACTIVE"))
            .find_map(|d| d.task_definition())
            .map(str::to_string);
        report.previous_revision = previous.clone();
        let ours = Ours {
            cluster: plan.cluster.clone(),
            service: plan.service.clone(),
            task_definition: current_arn.clone(),
            previous,
            service_deployment: pre.service.current_service_deployment().map(str::to_string),
            deployment_id: primary.id().map(str::to_string),
            started: primary.created_at().cloned(),
        };
        report.deployment_id = ours
            .deployment_id
            .clone()
            .or_else(|| ours.service_deployment.clone());
        return follow(
            ecs,
            plan,
            ours,
            scale,
            cancel,
            actions,
            report,
            &rendered,
            &current_arn,
        )
        .await;
    }
    let ours_td = match latest_identical(ecs, &rendered, &current_arn).await {
        Some(arn) => {
            say(&format!("reusing {arn}: it already holds this image"));
            arn
        }
        None => {
            let arn = register(ecs, &rendered, &current_arn, scale, actions, &plan.service).await?;
            say(&format!(
                "registered {arn} with {image} in {}",
                pre.containers.join(", ")
            ));
            arn
        }
    };
    report.revision = Some(ours_td.clone());

    // A one-off task (migrations) on our revision first: if it fails, the
    // service is never updated and keeps serving the previous revision.
    if let Some(before) = &plan.before_deploy {
        let task = task::Run {
            ecs,
            logs: tasks.logs,
            plan,
            before,
            pre: &pre,
            revision: &ours_td,
            rendered: &rendered,
            run_key: tasks.run_key,
            region: tasks.region,
            scale,
            cancel,
            actions,
        };
        let ran = task.run(render::family(&rendered)).await?;
        let failure = ran.failure.clone();
        report.before_deploy = Some(ran);
        if let Some(why) = failure {
            report.serving_revision = Some(current_arn.clone());
            // Why first: a GitHub deployment status keeps 140 characters.
            let short = crate::outcome::revision_label(&current_arn);
            return Ok((
                RunResult::Failure,
                Some(format!(
                    "before-deploy failed: {why}; service {} was not updated and still runs {short}",
                    plan.service
                )),
            ));
        }
    }

    let strategy = pre.strategy();
    say(&format!(
        "updating service {} in cluster {} to {ours_td} ({} deployment)",
        plan.service,
        plan.cluster,
        strategy.as_str()
    ));
    let asked_at = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let updated = update::update_service(ecs, &pre, plan, &ours_td).await?;
    let mut ours = Ours {
        cluster: plan.cluster.clone(),
        service: plan.service.clone(),
        task_definition: ours_td.clone(),
        previous: Some(current_arn.clone()),
        service_deployment: updated.current_service_deployment().map(str::to_string),
        deployment_id: updated
            .deployments()
            .iter()
            .find(|d| {
                d.status() == Some("PRIMARY") && d.task_definition() == Some(ours_td.as_str())
            })
            .and_then(|d| d.id())
            .map(str::to_string),
        started: Some(asked_at),
    };
    if ours.service_deployment.is_none() {
        ours.service_deployment = started_service_deployment(ecs, plan, asked_at).await;
    }
    report.deployment_id = ours
        .deployment_id
        .clone()
        .or_else(|| ours.service_deployment.clone());
    follow(
        ecs,
        plan,
        ours,
        scale,
        cancel,
        actions,
        report,
        &rendered,
        &current_arn,
    )
    .await
}

/// Watches our deployment to a verdict, rolls back when asked, and reports.
async fn follow(
    ecs: &aws_sdk_ecs::Client,
    plan: &EcsPlan,
    ours: Ours,
    scale: f64,
    cancel: &Cancel,
    actions: &Actions,
    report: &mut DeployReport,
    rendered: &serde_json::Value,
    current_arn: &str,
) -> anyhow::Result<(RunResult, Option<String>)> {
    let say = |s: &str| actions.line(&format!("[{}] {s}", plan.service));
    let ours_td = ours.task_definition.clone();
    say(&format!(
        "watching deployment {} (service deployment {}), up to {} s",
        ours.deployment_id.as_deref().unwrap_or("-"),
        ours.service_deployment.as_deref().unwrap_or("-"),
        plan.watch.wait_seconds
    ));

    let pace = Pace {
        poll: Duration::from_secs_f64(plan.watch.poll_seconds.max(0.0) * scale),
        scale,
        deadline: Instant::now() + Duration::from_secs_f64(plan.watch.wait_seconds as f64 * scale),
    };
    let verdict = watch::watch(ecs, &ours, plan.wait_until, pace, cancel, actions, report).await?;
    let verdict = match verdict {
        Verdict::TimedOut | Verdict::Cancelled if plan.watch.rollback => {
            let cancelled = verdict == Verdict::Cancelled;
            say(&if cancelled {
                "cancelled: rolling our deployment back".to_string()
            } else {
                format!(
                    "no verdict within {} s: rolling our deployment back",
                    plan.watch.wait_seconds
                )
            });
            let rolled = rollback::roll_back(
                ecs,
                &ours,
                crate::deploy::settle_pace(&pace, cancelled),
                actions,
                report,
            )
            .await;
            let why = if cancelled {
                "the workflow was cancelled"
            } else {
                "the deployment did not complete in time"
            };
            match rolled {
                Verdict::RolledBack { serving, .. } => Verdict::RolledBack {
                    serving,
                    reason: format!("{why}; fastdeploy rolled it back"),
                },
                Verdict::Failed { serving, reason } => Verdict::Failed {
                    serving,
                    reason: format!("{why}; rolling back: {reason}"),
                },
                other => other,
            }
        }
        other => other,
    };

    let (result, failure) = match verdict {
        Verdict::Succeeded { serving } => {
            say(&format!("deployment complete: {serving} serves"));
            report.serving_revision = Some(serving);
            (RunResult::Success, None)
        }
        Verdict::TrafficShifted { serving, stage } => {
            say(&format!(
                "production traffic is on {serving} ({stage}); not waiting for bake time (wait-until: traffic-shifted)"
            ));
            report.serving_revision = Some(serving);
            (RunResult::Success, None)
        }
        Verdict::RolledBack { serving, reason } => {
            report.serving_revision = serving.clone().or(report.serving_revision.take());
            let back_on = report
                .serving_revision
                .clone()
                .unwrap_or_else(|| "an unknown revision".into());
            (
                RunResult::RolledBack,
                Some(format!(
                    "deployment of {ours_td} rolled back ({reason}); the service is back on {back_on}"
                )),
            )
        }
        Verdict::Failed { serving, reason } => {
            if serving.is_some() {
                report.serving_revision = serving;
            }
            (
                RunResult::Failure,
                Some(format!("deployment of {ours_td} failed: {reason}")),
            )
        }
        Verdict::TimedOut => (
            RunResult::Failure,
            Some(format!(
                "deployment of {ours_td} did not complete within {} s and `rollback` is off; ECS keeps trying",
                plan.watch.wait_seconds
            )),
        ),
        Verdict::Cancelled => (
            RunResult::Failure,
            Some("the workflow was cancelled and `rollback` is off; ECS keeps deploying".into()),
        ),
    };
    if result != RunResult::Success {
        report.evidence = stopped_tasks(ecs, plan, &ours_td).await;
        for t in &report.evidence {
            say(&format!("stopped task {t}"));
        }
    } else if let Some(keep) = plan.keep_revisions {
        let protect = [Some(ours_td.as_str()), Some(current_arn)];
        if let Err(e) = deregister_old(ecs, render::family(rendered), keep, &protect, actions).await
        {
            actions.warning(
                &format!("revision clean-up failed: {}", chain_message(&e)),
                &Default::default(),
            );
        }
    }
    Ok((result, failure))
}

/// Registers `rendered`, converging when an answer is lost: after a failure
/// that may have registered it anyway, the family's newest revision is read
/// and reused when it is this one, so a retry never makes a second revision.
async fn register(
    ecs: &aws_sdk_ecs::Client,
    rendered: &serde_json::Value,
    current_arn: &str,
    scale: f64,
    actions: &Actions,
    service: &str,
) -> anyhow::Result<String> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failed = match wire::register_once(ecs, rendered).await? {
            wire::Registered::Arn(arn) => return Ok(arn),
            wire::Registered::MaybeApplied(e) => e,
        };
        if let Some(arn) = latest_identical(ecs, rendered, current_arn).await {
            actions.line(&format!(
                "[{service}] RegisterTaskDefinition failed ({}), but it registered {arn}; using it",
                chain_message(&failed)
            ));
            return Ok(arn);
        }
        if attempt >= ATTEMPTS {
            return Err(failed);
        }
        crate::timings::sleep(
            "aws",
            crate::aws::backoff(
                attempt,
                crate::aws::scaled(1.0, scale),
                crate::aws::scaled(20.0, scale),
            ),
        )
        .await;
    }
}

/// The family's newest ACTIVE revision, when it equals `rendered` and is not
/// the current one (a re-run after a rollback reuses it).
async fn latest_identical(
    ecs: &aws_sdk_ecs::Client,
    rendered: &serde_json::Value,
    current: &str,
) -> Option<String> {
    let family = render::family(rendered);
    let out = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .max_results(1)
        .send()
        .await
        .ok()?;
    let arn = out.task_definition_arns().first()?.clone();
    if arn == current {
        return None;
    }
    let d = wire::describe(ecs, &arn).await.ok()?;
    render::same_revision(
        rendered,
        &render::from_described(&d.task_definition, d.tags.as_ref()),
    )
    .then_some(arn)
}

/// The service deployment UpdateService started, when its response did not name it.
async fn started_service_deployment(
    ecs: &aws_sdk_ecs::Client,
    plan: &EcsPlan,
    asked_at: aws_smithy_types::DateTime,
) -> Option<String> {
    let after = aws_smithy_types::DateTime::from_secs_f64(asked_at.as_secs_f64() - 2.0);
    let out = ecs
        .list_service_deployments()
        .cluster(&plan.cluster)
        .service(&plan.service)
        .created_at(
            aws_sdk_ecs::types::CreatedAt::builder()
                .after(after)
                .build(),
        )
        .send()
        .await
        .map_err(|e| tracing::debug!("ListServiceDeployments unavailable: {e:?}"))
        .ok()?;
    out.service_deployments()
        .iter()
        .max_by(|a, b| {
            a.created_at()
                .map(|t| t.as_secs_f64())
                .partial_cmp(&b.created_at().map(|t| t.as_secs_f64()))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .and_then(|d| d.service_deployment_arn())
        .map(str::to_string)
}

/// Stopped tasks of our revision: why they stopped and their containers' exit codes.
async fn stopped_tasks(ecs: &aws_sdk_ecs::Client, plan: &EcsPlan, ours_td: &str) -> Vec<String> {
    let listed = ecs
        .list_tasks()
        .cluster(&plan.cluster)
        .service_name(&plan.service)
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await;
    let arns: Vec<String> = match listed {
        Ok(out) => out.task_arns().iter().take(100).cloned().collect(),
        Err(e) => {
            return vec![format!(
                "(could not list stopped tasks: {})",
                chain_message(&anyhow::Error::new(e))
            )];
        }
    };
    if arns.is_empty() {
        return Vec::new();
    }
    let described = match ecs
        .describe_tasks()
        .cluster(&plan.cluster)
        .set_tasks(Some(arns))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return vec![format!(
                "(could not describe stopped tasks: {})",
                chain_message(&anyhow::Error::new(e))
            )];
        }
    };
    let mut lines: Vec<String> = Vec::new();
    for t in described
        .tasks()
        .iter()
        .filter(|t| t.task_definition_arn() == Some(ours_td))
    {
        let id = t
            .task_arn()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or("?");
        let containers: Vec<String> = t
            .containers()
            .iter()
            .map(|c| {
                let exit = c
                    .exit_code()
                    .map(|x| format!("exit code {x}"))
                    .unwrap_or_else(|| "no exit code".into());
                let reason = c.reason().map(|r| format!(", {r}")).unwrap_or_default();
                format!("{} {exit}{reason}", c.name().unwrap_or("?"))
            })
            .collect();
        lines.push(format!(
            "{id}: {} ({})",
            t.stopped_reason().unwrap_or("no reason given"),
            containers.join("; ")
        ));
        if lines.len() >= 10 {
            break;
        }
    }
    lines
}

/// Deregisters ACTIVE revisions of `family` older than the newest `keep`,
/// never one in `protect`.
async fn deregister_old(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
    keep: u64,
    protect: &[Option<&str>],
    actions: &Actions,
) -> anyhow::Result<()> {
    let mut arns = Vec::new();
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .with_context(|| format!("listing revisions of {family} (ecs:ListTaskDefinitions)"))?;
        // familyPrefix matches prefixes: `web` also lists `web-worker`.
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| {
                    a.rsplit('/')
                        .next()
                        .and_then(|r| r.rsplit_once(':'))
                        .is_some_and(|(f, _)| f == family)
                })
                .cloned(),
        );
    }
    // Newest first by revision number, whatever order the pages came in.
    arns.sort_by_key(|a| {
        std::cmp::Reverse(
            a.rsplit(':')
                .next()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0),
        )
    });
    for arn in arns.iter().skip(keep as usize) {
        if protect.contains(&Some(arn.as_str())) {
            continue;
        }
        ecs.deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .with_context(|| format!("deregistering {arn} (ecs:DeregisterTaskDefinition)"))?;
        actions.line(&format!(
            "deregistered old revision {arn} (keep-revisions: {keep})"
        ));
    }
    Ok(())
}

/// On a service that already runs this revision nothing is deployed, so the
/// one-off task does not run; when an earlier run of this revision ran it,
/// the report says so (the summary's "already ran on this revision").
fn already_done(
    before: &crate::plan::BeforeDeploy,
    pre: &update::Preflight,
    family: &str,
    revision: &str,
    say: &impl Fn(&str),
) -> Option<crate::outcome::TaskReport> {
    let container = task::container(before, pre, family).ok()?;
    let done = task::already_ran(before, container, pre.current.tags.as_ref(), revision, say);
    if done.is_none() {
        say(&format!(
            "before-deploy `{}` not run: nothing is deployed, and no run of it on {} is recorded",
            shell_words::join(&before.command),
            crate::outcome::revision_label(revision)
        ));
    }
    done
}
