//! Putting back what served: StopServiceDeployment with stop type ROLLBACK,
//! which ECS runs to the previous service revision; where that is
//! unavailable (no service deployment ARN, a deployment that completed —
//! another target of the component failed after it —, or ECS refuses),
//! UpdateService back to the previous task definition. Either way the rollback is
//! followed within the settle budget, and what serves is said.

use aws_sdk_ecs::types::StopServiceDeploymentStopType;

use super::watch::{self, Ours, Rollout};
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, PutBack};
use crate::error::chain_message;
use crate::outcome::DeployReport;
use crate::settings::WaitUntil;
use crate::wait::{Stopped, Waiter};

/// Rolls `ours` back and follows it within `w`; `completed`: it finished,
/// so ECS stops it no more and the service is updated back.
pub async fn put_back(d: &mut Deploy<'_>, ours: &Ours, completed: bool) -> PutBack {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let rolled = match roll_back(cx, w, ours, completed, report).await {
        Ok(r) => r,
        Err(e) => {
            let note = match Stopped::find(&e) {
                Some(_) => "the rollback did not settle in time".to_string(),
                None => format!("rolling back: {}", chain_message(&e)),
            };
            return PutBack {
                settled: false,
                note: Some(note),
            };
        }
    };
    match rolled {
        Rollout::RolledBack { serving, .. } => {
            report.serving_revision = serving.or(report.serving_revision.take());
            PutBack {
                settled: true,
                note: None,
            }
        }
        Rollout::Succeeded { serving } | Rollout::TrafficShifted { serving, .. }
            if Some(&serving) == ours.previous.as_ref() =>
        {
            report.serving_revision = Some(serving);
            PutBack {
                settled: true,
                note: None,
            }
        }
        Rollout::Succeeded { serving } | Rollout::TrafficShifted { serving, .. } => {
            report.serving_revision = Some(serving);
            let note = "the deployment completed before the rollback took effect".to_string();
            PutBack {
                settled: false,
                note: Some(note),
            }
        }
        Rollout::Failed { serving, reason } => {
            if serving.is_some() {
                report.serving_revision = serving;
            }
            PutBack {
                settled: false,
                note: Some(format!("rolling back: {reason}")),
            }
        }
    }
}

/// StopServiceDeployment with `ROLLBACK`: ECS puts back the deployment
/// that completed before (on blue/green, the listeners too).
pub(super) async fn stop_with_rollback(cx: &Context<'_>, arn: &str) -> anyhow::Result<()> {
    cx.clients
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .explained("ecs:StopServiceDeployment", || {
            format!("service deployment {arn}")
        })?;
    Ok(())
}

async fn roll_back(
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    ours: &Ours,
    completed: bool,
    report: &mut DeployReport,
) -> anyhow::Result<Rollout> {
    let ecs = &cx.clients.ecs;
    let say = |line: &str| cx.actions.line(line);
    if let Some(arn) = ours.service_deployment.as_ref().filter(|_| !completed) {
        say(&format!(
            "rolling back: stopping service deployment {arn} with rollback (ecs:StopServiceDeployment)"
        ));
        match stop_with_rollback(cx, arn).await {
            Ok(()) => return watch::follow(cx, w, ours, WaitUntil::Completed, report).await,
            Err(e) => say(&format!(
                "  {}; updating the service back to the previous revision instead",
                chain_message(&e)
            )),
        }
    }
    let Some(previous) = ours.previous.clone() else {
        anyhow::bail!("there is no previous revision to roll back to");
    };
    say(&format!(
        "rolling back: updating service {} to {previous} (ecs:UpdateService)",
        ours.service
    ));
    let started = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let updated = ecs
        .update_service()
        .cluster(&ours.cluster)
        .service(&ours.service)
        .task_definition(&previous)
        .send()
        .await
        .explained("ecs:UpdateService", || {
            format!("ECS service {} (back to {previous})", ours.service)
        })?;
    let service = updated.service();
    let back = Ours {
        task_definition: previous.clone(),
        previous: None,
        service_deployment: service
            .and_then(|s| s.current_service_deployment())
            .map(str::to_string),
        deployment_id: service
            .and_then(|s| {
                s.deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
                    .and_then(|d| d.id())
            })
            .map(str::to_string),
        started: Some(started),
        ..ours.clone()
    };
    watch::follow(cx, w, &back, WaitUntil::Completed, report).await
}
