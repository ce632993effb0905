//! Watching our own deployment to a verdict.
//!
//! One look every `poll` seconds (jittered, never more than 15 s, no
//! back-off): DescribeServices for events and per-deployment counts, and
//! DescribeServiceDeployments for the service deployment this run started.
//! Only that deployment is judged; a look that fails (throttling, a network
//! blip) is reported and the next look tries again.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use aws_sdk_ecs::types::{
    Deployment, DeploymentRolloutState, Service, ServiceDeployment, ServiceDeploymentLifecycleStage,
    ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus,
};

use crate::cancel::Cancel;
use crate::deploy::Pace;
use crate::error::chain_message;
use crate::gha::Actions;
use crate::outcome::DeployReport;
use crate::settings::WaitUntil;

/// The deployment this run started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ours {
    pub cluster: String,
    pub service: String,
    /// Our task definition revision.
    pub task_definition: String,
    /// The revision the service ran before (the rollback target).
    pub previous: Option<String>,
    /// Service deployment ARN (ListServiceDeployments / currentServiceDeployment).
    pub service_deployment: Option<String>,
    /// `ecs-svc/...` id of our entry in the service's `deployments`.
    pub deployment_id: Option<String>,
    /// When we asked for it; events before this are not ours to show.
    pub started: Option<aws_smithy_types::DateTime>,
}

/// How a watch ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Rollout complete and the service runs our revision.
    Succeeded { serving: String },
    /// Production traffic is on our revision; bake time continues (`wait-until: traffic-shifted`).
    TrafficShifted { serving: String, stage: String },
    /// ECS rolled our deployment back; the service runs `serving`.
    RolledBack { serving: Option<String>, reason: String },
    /// Failed without a completed rollback.
    Failed { serving: Option<String>, reason: String },
    /// `wait-minutes` passed.
    TimedOut,
    /// The workflow was cancelled (SIGTERM/SIGINT).
    Cancelled,
}

/// What one look saw.
#[derive(Debug, Clone)]
pub struct Look {
    pub service: Service,
    pub service_deployment: Option<ServiceDeployment>,
    /// DescribeServiceDeployments answered that our service deployment does not exist.
    pub service_deployment_missing: bool,
}

/// One look: DescribeServices and, when we know it, DescribeServiceDeployments.
pub async fn look(ecs: &aws_sdk_ecs::Client, ours: &Ours) -> anyhow::Result<Look> {
    let out = ecs
        .describe_services()
        .cluster(&ours.cluster)
        .services(&ours.service)
        .send()
        .await
        .with_context(|| format!("describing service {} in cluster {} (ecs:DescribeServices)", ours.service, ours.cluster))?;
    let service = out.services().first().cloned().with_context(|| {
        format!("service {} in cluster {} is gone (DescribeServices returned it as missing)", ours.service, ours.cluster)
    })?;
    let (mut service_deployment, mut missing) = (None, false);
    if let Some(arn) = &ours.service_deployment {
        let out = ecs
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .with_context(|| format!("describing service deployment {arn} (ecs:DescribeServiceDeployments)"))?;
        service_deployment = out.service_deployments().first().cloned();
        missing = service_deployment.is_none() && out.failures().iter().any(|f| f.arn() == Some(arn.as_str()));
    }
    Ok(Look { service, service_deployment, service_deployment_missing: missing })
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn primary(service: &Service) -> Option<&Deployment> {
    service.deployments().iter().find(|d| d.status() == Some("PRIMARY"))
}

/// The revision that serves: the one whose deployment runs the most tasks
/// (the PRIMARY on a tie). A hung rollout's new revision with no task
/// running serves nothing while the previous one's tasks take the traffic.
/// With no running task at all, the PRIMARY's (or the service's) revision.
pub fn serving(service: &Service) -> Option<String> {
    let running = service
        .deployments()
        .iter()
        .filter(|d| d.running_count() > 0)
        .max_by_key(|d| (d.running_count(), d.status() == Some("PRIMARY")))
        .and_then(Deployment::task_definition);
    running.or(primary(service).and_then(Deployment::task_definition)).or(service.task_definition()).map(str::to_string)
}

/// What runs, per revision, in words: `web:1 (2 running); web:2 started,
/// 0 of 2 running`. A revision still rolling out (or short of its desired
/// count) says how far it got; one at its count just says how many run.
pub fn running_text(service: &Service) -> String {
    let mut parts = Vec::new();
    for d in service.deployments() {
        let rev = short(d.task_definition().unwrap_or("?")).to_string();
        let (running, desired) = (d.running_count(), d.desired_count());
        let rolling = d.rollout_state().is_some_and(|r| r != &DeploymentRolloutState::Completed);
        if d.status() == Some("PRIMARY") && (rolling || running < desired) {
            parts.push(format!("{rev} started, {running} of {desired} running"));
        } else if running > 0 || d.status() == Some("PRIMARY") {
            parts.push(format!("{rev} ({running} running)"));
        }
    }
    if parts.is_empty() {
        service.task_definition().map(|t| format!("{} (no deployment listed)", short(t))).unwrap_or_else(|| "nothing".into())
    } else {
        parts.join("; ")
    }
}

/// Judges one look. `None` means "keep watching".
pub fn judge(look: &Look, ours: &Ours, wait_until: WaitUntil) -> Option<Verdict> {
    let service = &look.service;
    let now_serving = serving(service);
    let ours_in_list = ours.deployment_id.as_deref().and_then(|id| service.deployments().iter().find(|d| d.id() == Some(id)));

    if look.service_deployment_missing {
        return Some(Verdict::Failed {
            serving: now_serving.clone(),
            reason: format!(
                "our service deployment {} vanished (DescribeServiceDeployments no longer knows it); the service is on {}",
                ours.service_deployment.as_deref().unwrap_or("-"),
                now_serving.as_deref().map(short).unwrap_or("an unknown revision")
            ),
        });
    }

    if let Some(sd) = &look.service_deployment {
        let reason = || sd.status_reason().map(str::to_string);
        let rollback_reason = || {
            sd.rollback()
                .and_then(|r| r.reason())
                .map(str::to_string)
                .or_else(reason)
                .unwrap_or_else(|| "ECS rolled the deployment back".to_string())
        };
        return match sd.status()? {
            ServiceDeploymentStatus::Successful => {
                if now_serving.as_deref() == Some(ours.task_definition.as_str()) {
                    Some(Verdict::Succeeded { serving: ours.task_definition.clone() })
                } else {
                    Some(Verdict::Failed {
                        serving: now_serving.clone(),
                        reason: format!(
                            "our deployment is SUCCESSFUL but the service runs {}, not our {}: another deployment replaced it",
                            now_serving.as_deref().map(short).unwrap_or("-"),
                            short(&ours.task_definition)
                        ),
                    })
                }
            }
            ServiceDeploymentStatus::RollbackSuccessful => Some(Verdict::RolledBack { serving: now_serving, reason: rollback_reason() }),
            ServiceDeploymentStatus::RollbackFailed => Some(Verdict::Failed {
                serving: now_serving,
                reason: format!("the deployment failed and ECS could not roll it back: {}", rollback_reason()),
            }),
            ServiceDeploymentStatus::Stopped => Some(Verdict::Failed {
                serving: now_serving,
                reason: format!("the deployment was stopped: {}", reason().unwrap_or_else(|| "no reason given".into())),
            }),
            ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending => {
                let shifted = matches!(
                    sd.lifecycle_stage(),
                    Some(
                        ServiceDeploymentLifecycleStage::PostProductionTrafficShift
                            | ServiceDeploymentLifecycleStage::BakeTime
                            | ServiceDeploymentLifecycleStage::CleanUp
                    )
                );
                if wait_until == WaitUntil::TrafficShifted && shifted {
                    Some(Verdict::TrafficShifted {
                        serving: ours.task_definition.clone(),
                        stage: sd.lifecycle_stage().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    })
                } else {
                    None
                }
            }
            // ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, STOP_REQUESTED: failure is
            // known, the verdict waits until ECS says where the service ends up.
            _ => None,
        };
    }

    // No service deployment API: judge by the service's deployments list.
    match ours_in_list {
        Some(d) => {
            let is_primary = d.status() == Some("PRIMARY");
            match d.rollout_state() {
                Some(DeploymentRolloutState::Completed) if is_primary && now_serving.as_deref() == Some(ours.task_definition.as_str()) => {
                    Some(Verdict::Succeeded { serving: ours.task_definition.clone() })
                }
                Some(DeploymentRolloutState::Failed) => {
                    let reason = d.rollout_state_reason().unwrap_or("the deployment failed").to_string();
                    let rolling_back = service
                        .deployment_configuration()
                        .and_then(|c| c.deployment_circuit_breaker())
                        .is_some_and(|cb| cb.enable() && cb.rollback());
                    if rolling_back {
                        settled_rollback(service, ours, reason)
                    } else {
                        Some(Verdict::Failed { serving: now_serving, reason })
                    }
                }
                None if is_primary
                    && service.deployments().len() == 1
                    && d.running_count() == d.desired_count()
                    && now_serving.as_deref() == Some(ours.task_definition.as_str()) =>
                {
                    // Services behind a Classic Load Balancer report no rolloutState.
                    Some(Verdict::Succeeded { serving: ours.task_definition.clone() })
                }
                _ if !is_primary => settled_rollback(service, ours, "ECS replaced our deployment".into()),
                _ => None,
            }
        }
        None if ours.deployment_id.is_some() => {
            if now_serving.is_some() && now_serving == ours.previous {
                settled_rollback(service, ours, "ECS rolled our deployment back".into())
            } else {
                Some(Verdict::Failed {
                    serving: now_serving.clone(),
                    reason: format!(
                        "our deployment {} vanished from the service; it now runs {}",
                        ours.deployment_id.as_deref().unwrap_or("-"),
                        now_serving.as_deref().map(short).unwrap_or("an unknown revision")
                    ),
                })
            }
        }
        None => None,
    }
}

/// A rollback ECS runs as a new PRIMARY deployment: settled when that one completes.
fn settled_rollback(service: &Service, ours: &Ours, reason: String) -> Option<Verdict> {
    let p = primary(service)?;
    if p.task_definition() == Some(ours.task_definition.as_str()) {
        return None;
    }
    (p.rollout_state() == Some(&DeploymentRolloutState::Completed) && service.deployments().len() == 1)
        .then(|| Verdict::RolledBack { serving: p.task_definition().map(str::to_string), reason })
}

/// Streams what a look shows that we have not shown yet.
#[derive(Debug, Default)]
pub struct Narrator {
    seen_events: HashSet<String>,
    counts: BTreeMap<String, (i32, i32, i32, String)>,
    sd_state: Option<String>,
}

impl Narrator {
    pub fn show(&mut self, look: &Look, ours: &Ours, actions: &Actions, report: &mut DeployReport) {
        let mut events: Vec<_> = look
            .service
            .events()
            .iter()
            .filter(|e| match (e.created_at(), ours.started) {
                (Some(at), Some(start)) => at.as_secs_f64() >= start.as_secs_f64() - 1.0,
                _ => true,
            })
            .filter(|e| e.id().is_none_or(|id| !self.seen_events.contains(id)))
            .collect();
        // DescribeServices lists events newest first.
        events.reverse();
        for e in events {
            if let Some(id) = e.id() {
                self.seen_events.insert(id.to_string());
            }
            let msg = e.message().unwrap_or_default();
            actions.line(&format!("[{}] ecs: {msg}", ours.service));
            report.events.push(msg.to_string());
        }
        for d in look.service.deployments() {
            let id = d.id().unwrap_or("?").to_string();
            let rollout = d.rollout_state().map(|r| r.as_str().to_string()).unwrap_or_default();
            let now = (d.running_count(), d.pending_count(), d.failed_tasks(), rollout.clone());
            if self.counts.get(&id) != Some(&now) {
                let mark = if ours.deployment_id.as_deref() == Some(id.as_str()) { " (ours)" } else { "" };
                actions.line(&format!(
                    "[{}] deployment {id}{mark} {} {}: {} running, {} pending, {} failed{}",
                    ours.service,
                    d.status().unwrap_or("?"),
                    d.task_definition().map(short).unwrap_or("?"),
                    now.0,
                    now.1,
                    now.2,
                    if rollout.is_empty() { String::new() } else { format!(", rollout {rollout}") }
                ));
                self.counts.insert(id, now);
            }
        }
        if let Some(sd) = &look.service_deployment {
            let mut state = sd.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            if let Some(stage) = sd.lifecycle_stage() {
                state.push_str(&format!(" at {}", stage.as_str()));
            }
            if let Some(cb) = sd.deployment_circuit_breaker()
                && cb.status() == Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered)
            {
                state.push_str(&format!(", circuit breaker TRIGGERED ({} of {} tasks failed)", cb.failure_count(), cb.threshold()));
            }
            if self.sd_state.as_deref() != Some(state.as_str()) {
                let reason = sd.status_reason().map(|r| format!(": {r}")).unwrap_or_default();
                actions.line(&format!(
                    "[{}] service deployment {} is {state}{reason}",
                    ours.service,
                    short(sd.service_deployment_arn().unwrap_or("-"))
                ));
                self.sd_state = Some(state);
            }
        }
    }
}

/// Watches until a verdict, the deadline or cancellation.
pub async fn watch(
    ecs: &aws_sdk_ecs::Client,
    ours: &Ours,
    wait_until: WaitUntil,
    pace: Pace,
    cancel: &Cancel,
    actions: &Actions,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    const MAX_FAILED_LOOKS: u32 = 5;
    let mut narrator = Narrator::default();
    let mut failed_looks = 0;
    loop {
        match look(ecs, ours).await {
            Ok(l) => {
                failed_looks = 0;
                narrator.show(&l, ours, actions, report);
                report.serving_revision = serving(&l.service);
                if let Some(v) = judge(&l, ours, wait_until) {
                    return Ok(v);
                }
            }
            Err(e) => {
                failed_looks += 1;
                if failed_looks >= MAX_FAILED_LOOKS {
                    return Err(e.context(format!("{MAX_FAILED_LOOKS} looks at the deployment in a row failed")));
                }
                actions.line(&format!("[{}] could not look at the deployment ({}); trying again", ours.service, chain_message(&e)));
            }
        }
        if cancel.is_cancelled() {
            return Ok(Verdict::Cancelled);
        }
        let now = Instant::now();
        if now >= pace.deadline {
            return Ok(Verdict::TimedOut);
        }
        let pause = pace.next_pause().min(pace.deadline - now);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => return Ok(Verdict::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, status: &str, td: &str, rollout: DeploymentRolloutState) -> Deployment {
        Deployment::builder().id(id).status(status).task_definition(td).rollout_state(rollout).desired_count(1).running_count(1).build()
    }

    fn ours() -> Ours {
        Ours { task_definition: "td:2".into(), previous: Some("td:1".into()), deployment_id: Some("ecs-svc/2".into()), ..Ours::default() }
    }

    fn look_of(deps: Vec<Deployment>) -> Look {
        let td = deps.iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.task_definition()).unwrap_or("td:1").to_string();
        Look {
            service: Service::builder().task_definition(td).set_deployments(Some(deps)).build(),
            service_deployment: None,
            service_deployment_missing: false,
        }
    }

    #[test]
    fn without_service_deployments_a_completed_primary_of_ours_succeeds() {
        let l = look_of(vec![dep("ecs-svc/2", "PRIMARY", "td:2", DeploymentRolloutState::Completed)]);
        assert_eq!(judge(&l, &ours(), WaitUntil::Completed), Some(Verdict::Succeeded { serving: "td:2".into() }));
        let l = look_of(vec![
            dep("ecs-svc/2", "PRIMARY", "td:2", DeploymentRolloutState::InProgress),
            dep("ecs-svc/1", "ACTIVE", "td:1", DeploymentRolloutState::Completed),
        ]);
        assert_eq!(judge(&l, &ours(), WaitUntil::Completed), None);
    }

    #[test]
    fn without_service_deployments_a_vanished_deployment_is_a_rollback_or_a_failure() {
        let back = look_of(vec![dep("ecs-svc/3", "PRIMARY", "td:1", DeploymentRolloutState::Completed)]);
        assert!(matches!(judge(&back, &ours(), WaitUntil::Completed), Some(Verdict::RolledBack { serving: Some(s), .. }) if s == "td:1"));
        let other = look_of(vec![dep("ecs-svc/4", "PRIMARY", "td:9", DeploymentRolloutState::Completed)]);
        assert!(
            matches!(judge(&other, &ours(), WaitUntil::Completed), Some(Verdict::Failed { reason, .. }) if reason.contains("vanished"))
        );
    }
}
