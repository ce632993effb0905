//! Watching our own deployment to a verdict.
//!
//! A look is DescribeServices for events and per-deployment counts, and
//! DescribeServiceDeployments for the service deployment this run started.
//! Only that deployment is judged. The looks go through the driver's waiter
//! ([`crate::wait::Waiter::until`]): a look that fails with an error worth
//! retrying is said and made again, and the pace follows the rollout's
//! stage ([`Stage`], as a [`Tempo`]): while our tasks start, the rollout
//! cannot finish before they run and the old ones drain, so it looks every
//! three intervals (at most every 15 s, the ECS waiter's interval); while
//! the old tasks drain, every interval; once only ECS's steady-state step is
//! left, every 0.4 interval, spending the looks saved earlier — never more
//! looks than a fixed poll every interval would have made by then.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_ecs::types::{
    Deployment, DeploymentRolloutState, Service, ServiceDeployment,
    ServiceDeploymentLifecycleStage, ServiceDeploymentRollbackMonitorsStatus,
    ServiceDeploymentStatus,
};

use crate::aws::Explained;
use crate::deploy::Context;
use crate::error::chain_message;
use crate::gha::Actions;
use crate::outcome::DeployReport;
use crate::settings::WaitUntil;
use crate::wait::{Poll, Tempo, Waiter};

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

/// How a rollout ends, as ECS shows it (a watch that runs out of time or
/// is cancelled ends with a [`crate::wait::Stopped`] error instead).
#[derive(Debug, Clone, PartialEq)]
pub enum Rollout {
    /// Rollout complete and the service runs our revision.
    Succeeded { serving: String },
    /// Production traffic is on our revision; bake time continues (`wait-until: traffic-shifted`).
    TrafficShifted { serving: String, stage: String },
    /// ECS rolled our deployment back; the service runs `serving`.
    RolledBack {
        serving: Option<String>,
        reason: String,
    },
    /// Failed without a completed rollback.
    Failed {
        serving: Option<String>,
        reason: String,
    },
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
/// Should our service deployment turn SUCCESSFUL between the two, the
/// service is described again, so the look's events and counts show the
/// rollout it judges complete.
pub async fn look(ecs: &aws_sdk_ecs::Client, ours: &Ours) -> anyhow::Result<Look> {
    let mut service = describe_service(ecs, ours).await?;
    let (mut service_deployment, mut missing) = (None, false);
    if let Some(arn) = &ours.service_deployment {
        let out = ecs
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .explained("ecs:DescribeServiceDeployments", || {
                format!("service deployment {arn}")
            })?;
        service_deployment = out.service_deployments().first().cloned();
        missing = service_deployment.is_none()
            && out.failures().iter().any(|f| f.arn() == Some(arn.as_str()));
    }
    let succeeded = service_deployment
        .as_ref()
        .and_then(ServiceDeployment::status)
        == Some(&ServiceDeploymentStatus::Successful);
    if succeeded && !settled_on(&service, &ours.task_definition) {
        service = describe_service(ecs, ours).await?;
    }
    Ok(Look {
        service,
        service_deployment,
        service_deployment_missing: missing,
    })
}

async fn describe_service(ecs: &aws_sdk_ecs::Client, ours: &Ours) -> anyhow::Result<Service> {
    let out = ecs
        .describe_services()
        .cluster(&ours.cluster)
        .services(&ours.service)
        .send()
        .await
        .explained("ecs:DescribeServices", || {
            format!("ECS service {} in cluster {}", ours.service, ours.cluster)
        })?;
    out.services().first().cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "service {} in cluster {} is gone (DescribeServices returned it as missing)",
            ours.service,
            ours.cluster
        )
    })
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
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
    running
        .or(primary(service).and_then(Deployment::task_definition))
        .or(service.task_definition())
        .map(str::to_string)
}

/// What runs, per revision, in words: `web:1 (2 running); web:2 started,
/// 0 of 2 running`. A revision still rolling out (or short of its desired
/// count) says how far it got; one at its count just says how many run.
pub fn running_text(service: &Service) -> String {
    let mut parts = Vec::new();
    for d in service.deployments() {
        let rev = short(d.task_definition().unwrap_or("?")).to_string();
        let (running, desired) = (d.running_count(), d.desired_count());
        let rolling = d
            .rollout_state()
            .is_some_and(|r| r != &DeploymentRolloutState::Completed);
        if d.status() == Some("PRIMARY") && (rolling || running < desired) {
            parts.push(format!("{rev} started, {running} of {desired} running"));
        } else if running > 0 || d.status() == Some("PRIMARY") {
            parts.push(format!("{rev} ({running} running)"));
        }
    }
    if parts.is_empty() {
        service
            .task_definition()
            .map(|t| format!("{} (no deployment listed)", short(t)))
            .unwrap_or_else(|| "nothing".into())
    } else {
        parts.join("; ")
    }
}

/// Whether the service runs `task_definition` alone, its rollout complete
/// (or, behind a Classic Load Balancer, with no rollout state, at its count).
fn settled_on(service: &Service, task_definition: &str) -> bool {
    match service.deployments() {
        [d] => {
            d.task_definition() == Some(task_definition)
                && match d.rollout_state() {
                    Some(r) => r == &DeploymentRolloutState::Completed,
                    None => d.running_count() == d.desired_count(),
                }
        }
        _ => false,
    }
}

/// Judges one look. `None` means "keep watching".
pub fn judge(look: &Look, ours: &Ours, wait_until: WaitUntil) -> Option<Rollout> {
    let now_serving = serving(&look.service);
    if look.service_deployment_missing {
        return Some(Rollout::Failed {
            serving: now_serving.clone(),
            reason: format!(
                "our service deployment {} vanished (DescribeServiceDeployments no longer knows it); the service is on {}",
                ours.service_deployment.as_deref().unwrap_or("-"),
                now_serving
                    .as_deref()
                    .map(short)
                    .unwrap_or("an unknown revision")
            ),
        });
    }
    match &look.service_deployment {
        Some(sd) => by_service_deployment(sd, now_serving, ours, wait_until),
        // No service deployment API: judge by the service's deployments list.
        None => by_deployments(&look.service, now_serving, ours),
    }
}

/// Judges by our service deployment's status, as ECS states it.
fn by_service_deployment(
    sd: &ServiceDeployment,
    now_serving: Option<String>,
    ours: &Ours,
    wait_until: WaitUntil,
) -> Option<Rollout> {
    let reason = || sd.status_reason().map(str::to_string);
    let rollback_reason = || {
        sd.rollback()
            .and_then(|r| r.reason())
            .map(str::to_string)
            .or_else(reason)
            .unwrap_or_else(|| "ECS rolled the deployment back".to_string())
    };
    let ours_serves = now_serving.as_deref() == Some(ours.task_definition.as_str());
    match sd.status()? {
        ServiceDeploymentStatus::Successful if ours_serves => Some(Rollout::Succeeded {
            serving: ours.task_definition.clone(),
        }),
        ServiceDeploymentStatus::Successful => Some(Rollout::Failed {
            reason: format!(
                "our deployment is SUCCESSFUL but the service runs {}, not our {}: another deployment replaced it",
                now_serving.as_deref().map(short).unwrap_or("-"),
                short(&ours.task_definition)
            ),
            serving: now_serving,
        }),
        ServiceDeploymentStatus::RollbackSuccessful => Some(Rollout::RolledBack {
            serving: now_serving,
            reason: rollback_reason(),
        }),
        ServiceDeploymentStatus::RollbackFailed => Some(Rollout::Failed {
            serving: now_serving,
            reason: format!(
                "the deployment failed and ECS could not roll it back: {}",
                rollback_reason()
            ),
        }),
        ServiceDeploymentStatus::Stopped => Some(Rollout::Failed {
            serving: now_serving,
            reason: format!(
                "the deployment was stopped: {}",
                reason().unwrap_or_else(|| "no reason given".into())
            ),
        }),
        ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending => {
            let stage = sd.lifecycle_stage();
            let shifted = matches!(
                stage,
                Some(
                    ServiceDeploymentLifecycleStage::PostProductionTrafficShift
                        | ServiceDeploymentLifecycleStage::BakeTime
                        | ServiceDeploymentLifecycleStage::CleanUp
                )
            );
            (wait_until == WaitUntil::TrafficShifted && shifted).then(|| Rollout::TrafficShifted {
                serving: ours.task_definition.clone(),
                stage: stage.map(|s| s.as_str().to_string()).unwrap_or_default(),
            })
        }
        // ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, STOP_REQUESTED: failure is
        // known, the verdict waits until ECS says where the service ends up.
        _ => None,
    }
}

/// Judges by the service's deployments list, where the service deployment
/// API is not there to ask.
fn by_deployments(service: &Service, now_serving: Option<String>, ours: &Ours) -> Option<Rollout> {
    let ours_serves = now_serving.as_deref() == Some(ours.task_definition.as_str());
    let id = ours.deployment_id.as_deref()?;
    let Some(d) = service.deployments().iter().find(|d| d.id() == Some(id)) else {
        if now_serving.is_some() && now_serving == ours.previous {
            return settled_rollback(service, ours, "ECS rolled our deployment back".into());
        }
        return Some(Rollout::Failed {
            reason: format!(
                "our deployment {id} vanished from the service; it now runs {}",
                now_serving
                    .as_deref()
                    .map(short)
                    .unwrap_or("an unknown revision")
            ),
            serving: now_serving,
        });
    };
    let is_primary = d.status() == Some("PRIMARY");
    match d.rollout_state() {
        Some(DeploymentRolloutState::Completed) if is_primary && ours_serves => {
            Some(Rollout::Succeeded {
                serving: ours.task_definition.clone(),
            })
        }
        Some(DeploymentRolloutState::Failed) => {
            let reason = d
                .rollout_state_reason()
                .unwrap_or("the deployment failed")
                .to_string();
            // The circuit breaker's or the deployment alarms' rollback.
            let config = service.deployment_configuration();
            let rolling_back = config
                .and_then(|c| c.deployment_circuit_breaker())
                .is_some_and(|cb| cb.enable() && cb.rollback())
                || config
                    .and_then(|c| c.alarms())
                    .is_some_and(|a| a.enable() && a.rollback());
            if rolling_back {
                settled_rollback(service, ours, reason)
            } else {
                Some(Rollout::Failed {
                    serving: now_serving,
                    reason,
                })
            }
        }
        // Services behind a Classic Load Balancer report no rolloutState.
        None if is_primary
            && service.deployments().len() == 1
            && d.running_count() == d.desired_count()
            && ours_serves =>
        {
            Some(Rollout::Succeeded {
                serving: ours.task_definition.clone(),
            })
        }
        _ if !is_primary => settled_rollback(service, ours, "ECS replaced our deployment".into()),
        _ => None,
    }
}

/// A rollback ECS runs as a new PRIMARY deployment: settled when that one completes.
fn settled_rollback(service: &Service, ours: &Ours, reason: String) -> Option<Rollout> {
    let p = primary(service)?;
    if p.task_definition() == Some(ours.task_definition.as_str()) {
        return None;
    }
    (p.rollout_state() == Some(&DeploymentRolloutState::Completed)
        && service.deployments().len() == 1)
        .then(|| Rollout::RolledBack {
            serving: p.task_definition().map(str::to_string),
            reason,
        })
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
            actions.line(&format!("ecs: {msg}"));
            report.events.push(msg.to_string());
        }
        for d in look.service.deployments() {
            let id = d.id().unwrap_or("?").to_string();
            let rollout = d
                .rollout_state()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default();
            let now = (
                d.running_count(),
                d.pending_count(),
                d.failed_tasks(),
                rollout.clone(),
            );
            if self.counts.get(&id) != Some(&now) {
                let mark = if ours.deployment_id.as_deref() == Some(id.as_str()) {
                    " (ours)"
                } else {
                    ""
                };
                actions.line(&format!(
                    "deployment {id}{mark} {} {}: {} running, {} pending, {} failed{}",
                    d.status().unwrap_or("?"),
                    d.task_definition().map(short).unwrap_or("?"),
                    now.0,
                    now.1,
                    now.2,
                    if rollout.is_empty() {
                        String::new()
                    } else {
                        format!(", rollout {rollout}")
                    }
                ));
                self.counts.insert(id, now);
            }
        }
        if let Some(sd) = &look.service_deployment {
            let mut state = sd
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if let Some(stage) = sd.lifecycle_stage() {
                state.push_str(&format!(" at {}", stage.as_str()));
            }
            if let Some(cb) = sd.deployment_circuit_breaker()
                && cb.status() == Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered)
            {
                state.push_str(&format!(
                    ", circuit breaker TRIGGERED ({} of {} tasks failed)",
                    cb.failure_count(),
                    cb.threshold()
                ));
            }
            if self.sd_state.as_deref() != Some(state.as_str()) {
                let reason = sd
                    .status_reason()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                actions.line(&format!(
                    "service deployment {} is {state}{reason}",
                    short(sd.service_deployment_arn().unwrap_or("-"))
                ));
                self.sd_state = Some(state);
            }
        }
    }
}

/// Where our rollout stands, as far as pacing the looks goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Our deployment's tasks do not all run yet: the rollout cannot finish
    /// before they run and the previous revision's tasks drain.
    Starting,
    /// Our tasks all run and the previous revision's still run (draining).
    Draining,
    /// Our tasks all run and no other deployment's do: only ECS's
    /// steady-state step is left.
    Settling,
    /// Anything else: a rollback, a failure ECS is settling, a look that failed.
    Other,
}

/// The stage of our deployment in `look`.
pub fn stage(look: &Look, ours: &Ours) -> Stage {
    if look
        .service_deployment
        .as_ref()
        .and_then(ServiceDeployment::status)
        .is_some_and(|s| {
            !matches!(
                s,
                ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending
            )
        })
    {
        return Stage::Other;
    }
    let deployments = look.service.deployments();
    let mine = match &ours.deployment_id {
        Some(id) => deployments.iter().find(|d| d.id() == Some(id.as_str())),
        None => deployments.iter().find(|d| {
            d.status() == Some("PRIMARY")
                && d.task_definition() == Some(ours.task_definition.as_str())
        }),
    };
    let Some(mine) = mine else {
        return Stage::Other;
    };
    let rolling = mine
        .rollout_state()
        .is_none_or(|r| r == &DeploymentRolloutState::InProgress);
    if mine.status() != Some("PRIMARY") || !rolling {
        return Stage::Other;
    }
    if mine.running_count() < mine.desired_count() || mine.pending_count() > 0 {
        return Stage::Starting;
    }
    let others_run = deployments
        .iter()
        .any(|d| d.id() != mine.id() && d.running_count() > 0);
    if others_run {
        Stage::Draining
    } else {
        Stage::Settling
    }
}

impl Stage {
    /// How soon the next look is worth making at this stage.
    pub fn tempo(self) -> Tempo {
        match self {
            Stage::Starting => Tempo::Slow,
            Stage::Draining | Stage::Other => Tempo::Steady,
            Stage::Settling => Tempo::Quick,
        }
    }
}

/// Follows `ours` to the rollout's end, one look at a time through `w`:
/// events and counts as they change, what serves after each look.
pub async fn follow(
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    ours: &Ours,
    wait_until: WaitUntil,
    report: &mut DeployReport,
) -> anyhow::Result<Rollout> {
    follow_seen(cx, w, ours, wait_until, report, &mut None).await
}

/// [`follow`], keeping the service as the look that judged it saw it (the
/// timeline reads its events from there instead of asking again).
pub async fn follow_seen(
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    ours: &Ours,
    wait_until: WaitUntil,
    report: &mut DeployReport,
    seen: &mut Option<aws_sdk_ecs::types::Service>,
) -> anyhow::Result<Rollout> {
    let mut narrator = Narrator::default();
    let doing = format!(
        "watching deployment {}",
        ours.deployment_id
            .as_deref()
            .or(ours.service_deployment.as_deref())
            .unwrap_or("-")
    );
    w.until(&doing, async || {
        let l = look(&cx.clients.ecs, ours).await?;
        narrator.show(&l, ours, cx.actions, report);
        report.serving_revision = serving(&l.service);
        let Some(v) = judge(&l, ours, wait_until) else {
            return Ok(Poll::Pending(stage(&l, ours).tempo()));
        };
        // What serves, said from this look when it shows the rollout
        // settled on ours; else the driver looks again.
        if matches!(v, Rollout::Succeeded { .. }) && settled_on(&l.service, &ours.task_definition) {
            report.serving_detail = Some(running_text(&l.service));
        }
        *seen = Some(l.service);
        Ok(Poll::Ready(v))
    })
    .await
}

/// The stopped tasks of `ours_td`, with their reasons and exit codes (at
/// most ten): the evidence of a failed rollout.
pub async fn stopped_tasks(
    cx: &Context<'_>,
    cluster: &str,
    service: &str,
    ours_td: &str,
) -> Vec<String> {
    let ecs = &cx.clients.ecs;
    let listed = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await;
    let arns = match listed {
        // DescribeTasks takes 100 at most.
        Ok(out) => out
            .task_arns()
            .iter()
            .take(100)
            .cloned()
            .collect::<Vec<_>>(),
        Err(e) => {
            let e = anyhow::Error::new(e);
            return vec![format!(
                "(could not list stopped tasks: {})",
                chain_message(&e)
            )];
        }
    };
    if arns.is_empty() {
        return Vec::new();
    }
    let described = match ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let e = anyhow::Error::new(e);
            return vec![format!(
                "(could not describe stopped tasks: {})",
                chain_message(&e)
            )];
        }
    };
    described
        .tasks()
        .iter()
        .filter(|t| t.task_definition_arn() == Some(ours_td))
        .take(10)
        .map(|t| {
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
            format!(
                "{id}: {} ({})",
                t.stopped_reason().unwrap_or("no reason given"),
                containers.join("; ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, status: &str, td: &str, rollout: DeploymentRolloutState) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(td)
            .rollout_state(rollout)
            .desired_count(1)
            .running_count(1)
            .build()
    }

    fn ours() -> Ours {
        Ours {
            task_definition: "td:2".into(),
            previous: Some("td:1".into()),
            deployment_id: Some("ecs-svc/2".into()),
            ..Ours::default()
        }
    }

    fn look_of(deps: Vec<Deployment>) -> Look {
        let td = deps
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .and_then(|d| d.task_definition())
            .unwrap_or("td:1")
            .to_string();
        Look {
            service: Service::builder()
                .task_definition(td)
                .set_deployments(Some(deps))
                .build(),
            service_deployment: None,
            service_deployment_missing: false,
        }
    }

    fn counts(id: &str, status: &str, td: &str, running: i32, pending: i32) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(td)
            .rollout_state(if status == "PRIMARY" {
                DeploymentRolloutState::InProgress
            } else {
                DeploymentRolloutState::Completed
            })
            .desired_count(if status == "PRIMARY" { 2 } else { running })
            .running_count(running)
            .pending_count(pending)
            .build()
    }

    /// The stages of a rolling update (200/100, two tasks), as ECS shows them.
    #[test]
    fn a_rolling_update_is_starting_then_draining_then_settling() {
        let at = |deps| stage(&look_of(deps), &ours());
        let old = |running| counts("ecs-svc/1", "ACTIVE", "td:1", running, 0);
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 0, 0), old(2)]),
            Stage::Starting
        );
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 0, 2), old(2)]),
            Stage::Starting
        );
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 2, 0), old(2)]),
            Stage::Draining
        );
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 2, 0), old(1)]),
            Stage::Draining
        );
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 2, 0), old(0)]),
            Stage::Settling
        );
        assert_eq!(
            at(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 2, 0)]),
            Stage::Settling
        );
        // Not ours to hurry: a rollback under way, or our deployment gone.
        let mut rolled = counts("ecs-svc/2", "ACTIVE", "td:2", 0, 0);
        rolled.rollout_state = Some(DeploymentRolloutState::Failed);
        assert_eq!(
            at(vec![counts("ecs-svc/3", "PRIMARY", "td:1", 2, 0), rolled]),
            Stage::Other
        );
        assert_eq!(
            at(vec![counts("ecs-svc/3", "PRIMARY", "td:1", 2, 0)]),
            Stage::Other
        );
        let mut l = look_of(vec![counts("ecs-svc/2", "PRIMARY", "td:2", 2, 0)]);
        l.service_deployment = Some(
            ServiceDeployment::builder()
                .status(ServiceDeploymentStatus::RollbackInProgress)
                .build(),
        );
        assert_eq!(stage(&l, &ours()), Stage::Other);
    }

    #[test]
    fn without_service_deployments_a_completed_primary_of_ours_succeeds() {
        let l = look_of(vec![dep(
            "ecs-svc/2",
            "PRIMARY",
            "td:2",
            DeploymentRolloutState::Completed,
        )]);
        assert_eq!(
            judge(&l, &ours(), WaitUntil::Completed),
            Some(Rollout::Succeeded {
                serving: "td:2".into()
            })
        );
        let l = look_of(vec![
            dep(
                "ecs-svc/2",
                "PRIMARY",
                "td:2",
                DeploymentRolloutState::InProgress,
            ),
            dep(
                "ecs-svc/1",
                "ACTIVE",
                "td:1",
                DeploymentRolloutState::Completed,
            ),
        ]);
        assert_eq!(judge(&l, &ours(), WaitUntil::Completed), None);
    }

    #[test]
    fn without_service_deployments_a_vanished_deployment_is_a_rollback_or_a_failure() {
        let back = look_of(vec![dep(
            "ecs-svc/3",
            "PRIMARY",
            "td:1",
            DeploymentRolloutState::Completed,
        )]);
        assert!(
            matches!(judge(&back, &ours(), WaitUntil::Completed), Some(Rollout::RolledBack { serving: Some(s), .. }) if s == "td:1")
        );
        let other = look_of(vec![dep(
            "ecs-svc/4",
            "PRIMARY",
            "td:9",
            DeploymentRolloutState::Completed,
        )]);
        assert!(
            matches!(judge(&other, &ours(), WaitUntil::Completed), Some(Rollout::Failed { reason, .. }) if reason.contains("vanished"))
        );
    }
}
