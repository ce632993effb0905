//! Rolling our deployment back (timeout or cancellation with `rollback: true`).
//!
//! Preferred: StopServiceDeployment with stop type ROLLBACK, which ECS runs
//! to the previous service revision. Where that is unavailable (no service
//! deployment ARN, or ECS refuses), UpdateService back to the previous task
//! definition. Either way we wait for it to settle, within a budget, and say
//! which revision serves.

use anyhow::Context;
use aws_sdk_ecs::types::StopServiceDeploymentStopType;

use super::watch::{self, Ours, Verdict};
use crate::cancel::Cancel;
use crate::deploy::Pace;
use crate::error::chain_message;
use crate::gha::Actions;
use crate::outcome::DeployReport;
use crate::settings::WaitUntil;

/// Rolls back and waits until `pace.deadline` for it to settle.
pub async fn roll_back(
    ecs: &aws_sdk_ecs::Client,
    ours: &Ours,
    pace: Pace,
    actions: &Actions,
    report: &mut DeployReport,
) -> Verdict {
    let never = Cancel::never();
    if let Some(arn) = &ours.service_deployment {
        actions.line(&format!("rolling back: stopping service deployment {arn} with rollback (ecs:StopServiceDeployment)"));
        match ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
            .await
        {
            Ok(_) => {
                return settle(
                    watch::watch(
                        ecs,
                        ours,
                        WaitUntil::Completed,
                        pace,
                        &never,
                        actions,
                        report,
                    )
                    .await,
                    ours,
                );
            }
            Err(e) => {
                let e = anyhow::Error::new(e).context("stopping the service deployment");
                actions.line(&format!(
                    "  {}; updating the service back to the previous revision instead",
                    chain_message(&e)
                ));
            }
        }
    }
    let Some(previous) = ours.previous.clone() else {
        return Verdict::Failed {
            serving: report.serving_revision.clone(),
            reason: "there is no previous revision to roll back to".into(),
        };
    };
    actions.line(&format!(
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
        .with_context(|| format!("updating service {} back to {previous}", ours.service));
    let service = match updated {
        Ok(out) => out.service().cloned(),
        Err(e) => {
            return Verdict::Failed {
                serving: report.serving_revision.clone(),
                reason: chain_message(&e),
            };
        }
    };
    let back = Ours {
        task_definition: previous.clone(),
        previous: None,
        service_deployment: service
            .as_ref()
            .and_then(|s| s.current_service_deployment())
            .map(str::to_string),
        deployment_id: service
            .as_ref()
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
    match watch::watch(
        ecs,
        &back,
        WaitUntil::Completed,
        pace,
        &never,
        actions,
        report,
    )
    .await
    {
        Ok(Verdict::Succeeded { serving }) => Verdict::RolledBack {
            serving: Some(serving),
            reason: "rolled back by fastdeploy".into(),
        },
        other => settle(other, ours),
    }
}

fn settle(v: anyhow::Result<Verdict>, ours: &Ours) -> Verdict {
    match v {
        Ok(Verdict::RolledBack { serving, .. }) => Verdict::RolledBack {
            serving,
            reason: "rolled back by fastdeploy".into(),
        },
        Ok(Verdict::Succeeded { serving }) if Some(&serving) != ours.previous.as_ref() => {
            Verdict::Failed {
                serving: Some(serving),
                reason: "the deployment completed before the rollback took effect".into(),
            }
        }
        Ok(Verdict::TimedOut) => Verdict::Failed {
            serving: None,
            reason: "the rollback did not settle in time".into(),
        },
        Ok(other) => other,
        Err(e) => Verdict::Failed {
            serving: None,
            reason: format!("watching the rollback: {}", chain_message(&e)),
        },
    }
}
