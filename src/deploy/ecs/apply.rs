//! The change: the task definition rendered from the service's current
//! revision with the image replaced by digest, registered once, the
//! one-off task run on it first (`before-deploy`), then UpdateService and
//! our deployment followed to its end.

use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentStrategy, Service, SortOrder,
    TaskDefinitionStatus,
};

use super::Service as Target;
use super::preflight::LiveService;
use super::test_traffic::{self, Reached, TestListener};
use super::watch::{self, Ours, Rollout};
use super::{render, task, wire};
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Verdict};
use crate::error::chain_message;
use crate::outcome::{DeployReport, revision_label};
use crate::plan::EcsPlan;
use crate::settings::Strategy;
use crate::wait::Waiter;

/// Deploys `image` to the service, to a verdict.
pub async fn apply(
    s: &mut Target<'_>,
    d: &mut Deploy<'_>,
    image: &Image,
) -> anyhow::Result<Verdict> {
    let (cx, together) = (d.cx, d.together);
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let plan = s.plan;
    let pre = s.live(cx).await?;
    s.test_listener(cx, &pre).await?;
    let current_arn = pre.current.arn().to_string();
    report.previous_revision = Some(current_arn.clone());
    let mut rendered = pre.base.clone();
    render::replace_images(&mut rendered, &pre.containers, &image.uri);
    render::apply_config(&mut rendered, &pre.containers, &plan.config);
    s.family = Some(render::family(&rendered).to_string());
    s.current = Some(current_arn.clone());
    let current_input =
        render::from_described(&pre.current.task_definition, pre.current.tags.as_ref());
    let family = render::family(&rendered).to_string();
    if render::same_revision(&rendered, &current_input) {
        if let Some(t) = together {
            t.serving(&family, &current_arn).await;
        }
        // The service may already be on this revision because an earlier
        // run of this commit was killed mid-rollout: then its deployment is
        // ours to follow to a verdict, not a reason to report success.
        return match unfinished(&pre) {
            None => Ok(unchanged(s, cx, &pre, &rendered, image, report)),
            Some(ours) => {
                s.say(cx, &format!(
                    "{current_arn} already holds {}, but its rollout has not finished (an earlier run stopped watching it); following it",
                    image.uri
                ));
                report.revision = Some(current_arn);
                report.previous_revision = ours.previous.clone();
                follow(s, cx, w, ours, report).await
            }
        };
    }
    let say = |line: &str| cx.actions.line(line);
    let make = revision_of(cx, &rendered, &current_arn, image, &pre.containers, &say);
    let revision = match together {
        Some(t) => t.revision(&family, make).await?,
        None => make.await?,
    };
    report.revision = Some(revision.clone());
    // A one-off task (migrations) on our revision first: if it fails, the
    // service is never updated and keeps serving the previous revision.
    if let Some(before) = &plan.before_deploy {
        let run = task::OneOff {
            cx,
            plan,
            before,
            pre: &pre,
            revision: &revision,
            rendered: &rendered,
        };
        let started = std::time::Instant::now();
        let ran = run.run(w, render::family(&rendered)).await?;
        // The task had its own budget (`before-deploy-minutes`).
        w.postpone(started.elapsed());
        let failure = ran.failure.clone();
        report.before_deploy = Some(ran);
        if let Some(why) = failure {
            // Why first: a GitHub deployment status keeps 140 characters.
            let reason = format!("before-deploy failed: {why}; the service was not updated");
            return Ok(Verdict::Failed {
                reason,
                put_back: false,
            });
        }
        if let Some(t) = together {
            t.before_deploy_ended(Ok(()));
        }
    } else if let Some(t) = together
        && let Some(why) = t.ready(w).await?
    {
        return Ok(Verdict::Refused(format!(
            "before-deploy did not succeed ({why}); service {} was not updated",
            plan.service
        )));
    }
    let ours = update(s, cx, &pre, &revision, &current_arn).await?;
    follow(s, cx, w, ours, report).await
}

/// The deployment an earlier run of this revision left rolling, when the
/// service's PRIMARY runs the current revision without having finished.
fn unfinished(pre: &LiveService) -> Option<Ours> {
    let current_arn = pre.current.arn();
    let deployments = pre.service.deployments();
    let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"))?;
    let done = primary.task_definition() == Some(current_arn)
        && primary
            .rollout_state()
            .is_none_or(|r| r.as_str() == "COMPLETED")
        && deployments.len() == 1;
    if done {
        return None;
    }
    let previous = deployments
        .iter()
        .filter(|d| d.status() == Some("ACTIVE"))
        .find_map(|d| d.task_definition())
        .map(str::to_string);
    Some(Ours {
        cluster: pre
            .service
            .cluster_arn()
            .map(str::to_string)
            .unwrap_or_default(),
        service: pre
            .service
            .service_name()
            .map(str::to_string)
            .unwrap_or_default(),
        task_definition: current_arn.to_string(),
        previous,
        service_deployment: pre.service.current_service_deployment().map(str::to_string),
        deployment_id: primary.id().map(str::to_string),
        started: primary.created_at().cloned(),
    })
}

/// The service already runs this image: nothing is registered or deployed,
/// and a `before-deploy` that ran on the revision is reported as done.
fn unchanged(
    s: &Target<'_>,
    cx: &Context<'_>,
    pre: &LiveService,
    rendered: &serde_json::Value,
    image: &Image,
    report: &mut DeployReport,
) -> Verdict {
    let current_arn = pre.current.arn().to_string();
    s.say(
        cx,
        &format!(
            "{current_arn} already runs {} in {}; nothing to register or deploy",
            image.uri,
            pre.containers.join(", ")
        ),
    );
    if let Some(before) = &s.plan.before_deploy {
        let say = |l: &str| s.say(cx, l);
        report.before_deploy =
            task::already_done(before, pre, render::family(rendered), &current_arn, &say);
    }
    report.revision = Some(current_arn.clone());
    report.serving_revision = Some(current_arn);
    Verdict::Unchanged
}

/// UpdateService to `revision`: our deployment, as the answer (or
/// ListServiceDeployments) names it.
pub(super) async fn update(
    s: &mut Target<'_>,
    cx: &Context<'_>,
    pre: &LiveService,
    revision: &str,
    current_arn: &str,
) -> anyhow::Result<Ours> {
    let plan = s.plan;
    s.say(
        cx,
        &format!(
            "updating service {} in cluster {} to {revision} ({} deployment)",
            plan.service,
            plan.cluster,
            pre.strategy().as_str()
        ),
    );
    let asked_at = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let updated = update_service(&cx.clients.ecs, pre, plan, revision).await?;
    let mut ours = Ours {
        cluster: plan.cluster.clone(),
        service: plan.service.clone(),
        task_definition: revision.to_string(),
        previous: Some(current_arn.to_string()),
        service_deployment: updated.current_service_deployment().map(str::to_string),
        deployment_id: updated
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY") && d.task_definition() == Some(revision))
            .and_then(|d| d.id())
            .map(str::to_string),
        started: Some(asked_at),
    };
    if ours.service_deployment.is_none() {
        ours.service_deployment = started_service_deployment(cx, plan, asked_at).await;
    }
    Ok(ours)
}

/// Follows our deployment to the end of its rollout, as the verdict.
pub(super) async fn follow(
    s: &mut Target<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    mut ours: Ours,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    let plan = s.plan;
    // The unfinished deployment of an earlier run names the cluster by ARN.
    ours.cluster = plan.cluster.clone();
    ours.service = plan.service.clone();
    report.deployment_id = ours
        .deployment_id
        .clone()
        .or_else(|| ours.service_deployment.clone());
    s.say(
        cx,
        &format!(
            "watching deployment {} (service deployment {}), up to {} s",
            ours.deployment_id.as_deref().unwrap_or("-"),
            ours.service_deployment.as_deref().unwrap_or("-"),
            plan.watch.wait_seconds
        ),
    );
    s.ours = Some(ours.clone());
    let td = revision_label(&ours.task_definition);
    let smoke_failed = match s.test.clone() {
        Some(test) => smoke_test(cx, w, &ours, &test).await?,
        None => None,
    };
    let rollout = watch::follow_seen(cx, w, &ours, plan.wait_until, report, &mut s.seen).await?;
    if let Some(why) = smoke_failed {
        report.evidence.push(why.clone());
        return Ok(after_failed_smoke(why, rollout, &td, report));
    }
    Ok(match rollout {
        Rollout::Succeeded { serving } => {
            s.say(cx, &format!("deployment complete: {serving} serves"));
            s.completed = true;
            report.serving_revision = Some(serving);
            Verdict::Succeeded
        }
        Rollout::TrafficShifted { serving, stage } => {
            s.say(cx, &format!(
                "production traffic is on {serving} ({stage}); not waiting for bake time (wait-until: traffic-shifted)"
            ));
            report.serving_revision = Some(serving);
            Verdict::Succeeded
        }
        Rollout::RolledBack { serving, reason } => {
            report.serving_revision = serving.or(report.serving_revision.take());
            let alarms = service_alarms(cx, s.seen.as_ref()).await;
            Verdict::RolledBack(format!("deployment of {td} rolled back ({reason}){alarms}"))
        }
        Rollout::Failed { serving, reason } => {
            if serving.is_some() {
                report.serving_revision = serving;
            }
            let alarms = service_alarms(cx, s.seen.as_ref()).await;
            Verdict::Failed {
                reason: format!("deployment of {td} failed: {reason}{alarms}"),
                put_back: false,
            }
        }
    })
}

/// `smoke-test-path` through the test listener once ECS has shifted test
/// traffic to our revision: `Some(why)` when it failed, and the service
/// deployment was stopped with a rollback.
async fn smoke_test(
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    ours: &Ours,
    (test, smoke): &(TestListener, crate::plan::HttpSmoke),
) -> anyhow::Result<Option<String>> {
    let reached = test_traffic::test_traffic(cx, w, ours).await?;
    match reached {
        Reached::Ended => return Ok(None),
        Reached::TestOnly => cx.actions.line(
            "test traffic is on the new revision, production traffic is not: smoke test through the test listener",
        ),
        Reached::Production => cx.actions.line(
            "ECS moved production traffic before the smoke test could run (no lifecycle hook holds it after the test shift): a failure now rolls back traffic that moved",
        ),
    }
    let url = format!("{}{}", test.url.trim_end_matches('/'), smoke.path);
    match crate::deploy::http_smoke::fetch_until_good(cx, w, &url, smoke).await? {
        Ok(line) => {
            cx.actions.line(&line);
            Ok(None)
        }
        Err(why) => {
            test_traffic::roll_back(cx, ours, &why).await?;
            Ok(Some(why))
        }
    }
}

/// The verdict after a failed smoke test stopped the deployment: ECS's
/// rollback when it finished one, else a failure for the driver to put back.
fn after_failed_smoke(
    why: String,
    rollout: Rollout,
    td: &str,
    report: &mut DeployReport,
) -> Verdict {
    match rollout {
        Rollout::RolledBack { serving, reason } => {
            report.serving_revision = serving.or(report.serving_revision.take());
            Verdict::RolledBack(format!(
                "{why}; ECS rolled the deployment of {td} back ({reason})"
            ))
        }
        Rollout::Failed { serving, reason } => {
            if serving.is_some() {
                report.serving_revision = serving;
            }
            Verdict::Failed {
                reason: format!("{why}; {reason}"),
                put_back: false,
            }
        }
        // ECS finished before the stop reached it: ours serves, and is put back.
        Rollout::Succeeded { .. } | Rollout::TrafficShifted { .. } => Verdict::Failed {
            reason: why,
            put_back: true,
        },
    }
}

/// The service's own deployment alarms (`deploymentConfiguration.alarms`)
/// that are in ALARM, with CloudWatch's reason: why ECS failed the
/// deployment, as `; ...` to append (empty when none is, or they cannot
/// be read).
async fn service_alarms(cx: &Context<'_>, service: Option<&Service>) -> String {
    let Some(alarms) = service
        .and_then(|s| s.deployment_configuration())
        .and_then(|c| c.alarms())
        .filter(|a| a.enable() && !a.alarm_names().is_empty())
    else {
        return String::new();
    };
    let plan = crate::plan::AlarmPlan {
        names: alarms.alarm_names().to_vec(),
        prefixes: vec![],
        bake_seconds: 0,
        source: "the service's deployment alarms".into(),
    };
    let Ok(states) = crate::deploy::alarms::look(&cx.clients.cloudwatch, &plan).await else {
        return String::new();
    };
    states
        .iter()
        .filter(|a| a.alarm)
        .map(|a| {
            format!(
                "; the service's deployment alarm `{}` is in ALARM: {}",
                a.name, a.reason
            )
        })
        .collect()
}

/// The revision holding `rendered`: the family's newest when it already
/// holds it, else registered now.
pub(crate) async fn revision_of(
    cx: &Context<'_>,
    rendered: &serde_json::Value,
    current_arn: &str,
    image: &Image,
    containers: &[String],
    say: &impl Fn(&str),
) -> anyhow::Result<String> {
    if let Some(arn) = latest_identical(cx, rendered, current_arn).await {
        say(&format!("reusing {arn}: it already holds this image"));
        return Ok(arn);
    }
    let arn = register(cx, rendered, current_arn, say).await?;
    say(&format!(
        "registered {arn} with {} in {}",
        image.uri,
        containers.join(", ")
    ));
    Ok(arn)
}

/// Registers `rendered`, converging when an answer is lost: after a failure
/// that may have registered it anyway, the family's newest revision is read
/// and reused when it is this one, so a retry never makes a second revision.
async fn register(
    cx: &Context<'_>,
    rendered: &serde_json::Value,
    current_arn: &str,
    say: &impl Fn(&str),
) -> anyhow::Result<String> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 0;
    let mut input = tagged(rendered, cx.commit);
    loop {
        attempt += 1;
        let sent = match wire::register_once(&cx.clients.ecs, &input).await {
            // A deploy role without ecs:TagResource may still register: our
            // tag only serves `plan --diff`, never the deploy.
            Err(e) if &input != rendered && chain_message(&e).contains("ecs:TagResource") => {
                say(&format!(
                    "ECS refused fastdeploy's tag on the new revision ({}); registering it untagged: `plan --diff` will take it for a revision registered outside fastdeploy. Allow ecs:TagResource on task definitions to the deploy role to keep them apart",
                    chain_message(&e)
                ));
                input = rendered.clone();
                attempt -= 1;
                continue;
            }
            other => other?,
        };
        let failed = match sent {
            wire::Registered::Arn(arn) => return Ok(arn),
            wire::Registered::MaybeApplied(e) => e,
        };
        if let Some(arn) = latest_identical(cx, rendered, current_arn).await {
            say(&format!(
                "RegisterTaskDefinition failed ({}), but it registered {arn}; using it",
                chain_message(&failed)
            ));
            return Ok(arn);
        }
        if attempt >= ATTEMPTS {
            return Err(failed);
        }
        let pause = crate::aws::backoff(attempt, cx.clock.of(1.0), cx.clock.of(20.0));
        crate::timings::sleep("aws", pause).await;
    }
}

/// `rendered` with fastdeploy's tag (the commit), so `plan --diff` tells
/// its revisions from a console edit's. Never part of a comparison:
/// fastdeploy's own tags are not carried from one revision to the next.
fn tagged(rendered: &serde_json::Value, commit: &str) -> serde_json::Value {
    let mut out = rendered.clone();
    let tag = serde_json::json!({"key": super::diff::REGISTERED_TAG, "value": commit});
    match out.get_mut("tags").and_then(|t| t.as_array_mut()) {
        Some(tags) => tags.push(tag),
        None => {
            if let Some(obj) = out.as_object_mut() {
                obj.insert("tags".into(), serde_json::Value::Array(vec![tag]));
            }
        }
    }
    out
}

/// The family's newest ACTIVE revision, when it equals `rendered` and is not
/// the current one (a re-run after a rollback reuses it).
async fn latest_identical(
    cx: &Context<'_>,
    rendered: &serde_json::Value,
    current: &str,
) -> Option<String> {
    let ecs = &cx.clients.ecs;
    let out = ecs
        .list_task_definitions()
        .family_prefix(render::family(rendered))
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
    cx: &Context<'_>,
    plan: &EcsPlan,
    asked_at: aws_smithy_types::DateTime,
) -> Option<String> {
    let after = aws_smithy_types::DateTime::from_secs_f64(asked_at.as_secs_f64() - 2.0);
    let out = cx
        .clients
        .ecs
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
            let at = |d: &aws_sdk_ecs::types::ServiceDeploymentBrief| {
                d.created_at().map(|t| t.as_secs_f64())
            };
            at(a)
                .partial_cmp(&at(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .and_then(|d| d.service_deployment_arn())
        .map(str::to_string)
}

/// Deployment configuration for `strategy: blue-green` on a rolling service:
/// the new tasks start beside the old before any is drained, and the circuit
/// breaker watches them. Native BLUE_GREEN, LINEAR and CANARY services keep
/// their own configuration.
pub fn deployment_configuration(
    pre: &LiveService,
    plan: &EcsPlan,
) -> Option<DeploymentConfiguration> {
    if plan.strategy != Strategy::BlueGreen || pre.strategy() != DeploymentStrategy::Rolling {
        return None;
    }
    let current = pre
        .service
        .deployment_configuration()
        .cloned()
        .unwrap_or_else(|| DeploymentConfiguration::builder().build());
    let breaker = DeploymentCircuitBreaker::builder()
        .enable(true)
        .rollback(plan.watch.rollback)
        .build();
    let mut b = DeploymentConfiguration::builder()
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .deployment_circuit_breaker(breaker)
        .set_alarms(current.alarms().cloned());
    if let Some(s) = current.strategy() {
        b = b.strategy(s.clone());
    }
    Some(b.build())
}

/// UpdateService to `task_definition`. Returns the service as ECS answered.
async fn update_service(
    ecs: &aws_sdk_ecs::Client,
    pre: &LiveService,
    plan: &EcsPlan,
    task_definition: &str,
) -> anyhow::Result<Service> {
    let out = ecs
        .update_service()
        .cluster(&plan.cluster)
        .service(&plan.service)
        .task_definition(task_definition)
        .set_deployment_configuration(deployment_configuration(pre, plan))
        .send()
        .await
        .explained("ecs:UpdateService", || {
            format!(
                "ECS service {} in cluster {} (to {task_definition})",
                plan.service, plan.cluster
            )
        })?;
    out.service()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("UpdateService returned no service"))
}
