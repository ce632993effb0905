//! Where an ECS deploy's time went, read after the rollout: from the
//! service's events (tasks started, targets registered, draining begun,
//! steady state) and DescribeTasks of the service's tasks (createdAt,
//! pullStartedAt, pullStoppedAt, startedAt, stoppingAt, stoppedAt), the
//! deploy splits into consecutive phases that add up to its reported time:
//! register (up to UpdateService), the before-deploy task, then the rollout
//! as [`partition`] splits it (the doctor's estimate is split
//! the same way, so the two compare phase by phase).
//!
//! No API says when a task turned healthy: it is taken as the first event
//! after the task started that ECS only sends once its new tasks count as
//! healthy ("has begun draining connections", "deregistered ... targets",
//! "has reached a steady state").

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::Context;
use aws_sdk_ecs::types::DesiredStatus;

use crate::outcome::{DeployReport, Phase, RolloutEstimate, Timeline, TimelinePhase};

/// A task of the new revision, its times in epoch seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTask {
    pub created: f64,
    pub pull_started: Option<f64>,
    pub pull_stopped: Option<f64>,
    pub started: Option<f64>,
    pub stopped: Option<f64>,
}

/// A task of an earlier revision that stopped during the rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OldTask {
    pub stopping: Option<f64>,
    pub stopped: Option<f64>,
}

/// What was read after the rollout, in epoch seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The deploy's start, and its time as reported.
    pub start: f64,
    pub seconds: f64,
    /// When ECS created our deployment (UpdateService).
    pub rollout_start: Option<f64>,
    pub before_deploy_seconds: Option<f64>,
    pub new_tasks: Vec<NewTask>,
    pub old_tasks: Vec<OldTask>,
    /// Service events, any order.
    pub events: Vec<(f64, String)>,
}

impl Observed {
    /// Every time as seconds since `start`.
    fn relative(&self) -> Observed {
        let r = |t: f64| t - self.start;
        let ro = |t: Option<f64>| t.map(r);
        Observed {
            start: 0.0,
            seconds: self.seconds,
            rollout_start: ro(self.rollout_start),
            before_deploy_seconds: self.before_deploy_seconds,
            new_tasks: self
                .new_tasks
                .iter()
                .map(|t| NewTask {
                    created: r(t.created),
                    pull_started: ro(t.pull_started),
                    pull_stopped: ro(t.pull_stopped),
                    started: ro(t.started),
                    stopped: ro(t.stopped),
                })
                .collect(),
            old_tasks: self
                .old_tasks
                .iter()
                .map(|t| OldTask {
                    stopping: ro(t.stopping),
                    stopped: ro(t.stopped),
                })
                .collect(),
            events: self
                .events
                .iter()
                .map(|(at, m)| (r(*at), m.clone()))
                .collect(),
        }
    }
}

fn healthy_sign(message: &str) -> bool {
    message.contains("has begun draining connections")
        || message.contains("deregistered")
        || message.contains("has reached a steady state")
}

fn drain_sign(message: &str) -> bool {
    message.contains("has begun draining connections") || message.contains("deregistered")
}

/// The phases of `o`, compared with `estimate`. They add up to `o.seconds`.
pub fn build(o: &Observed, estimate: Option<&RolloutEstimate>) -> Timeline {
    // Seconds since the deploy's start: epoch seconds would round its own
    // duration at 1e-7 s.
    let o = &o.relative();
    let (start, end) = (0.0, o.seconds.max(0.0));
    let within = |t: f64| t.clamp(start, end);
    let first_new = o
        .new_tasks
        .iter()
        .map(|t| t.created)
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))));
    let rollout_start = within(o.rollout_start.or(first_new).unwrap_or(end));
    let mut intervals = Vec::new();
    for t in &o.new_tasks {
        if let (Some(a), Some(b)) = (t.pull_started, t.pull_stopped) {
            intervals.push((Phase::Pull, a, b));
        }
        let from = t.pull_stopped.unwrap_or(t.created);
        let ran = t.started.unwrap_or(from);
        let healthy = o
            .events
            .iter()
            .filter(|(at, m)| *at >= ran && healthy_sign(m))
            .map(|(at, _)| *at)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))));
        let until = [healthy, t.stopped]
            .into_iter()
            .flatten()
            .fold(end, f64::min);
        intervals.push((Phase::StartToHealthy, from, until));
    }
    for t in &o.old_tasks {
        let Some(stop) = t.stopping.or(t.stopped) else {
            continue;
        };
        let drained = o
            .events
            .iter()
            .filter(|(at, m)| *at <= stop && *at >= rollout_start && drain_sign(m))
            .map(|(at, _)| *at)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
        intervals.push((
            Phase::Draining,
            drained.unwrap_or(stop),
            t.stopped.unwrap_or(end),
        ));
    }
    let before = o
        .before_deploy_seconds
        .unwrap_or(0.0)
        .clamp(0.0, rollout_start - start);
    let mut phases = vec![TimelinePhase {
        phase: Phase::Register,
        seconds: rollout_start - start - before,
        estimate: None,
    }];
    if o.before_deploy_seconds.is_some() {
        phases.push(TimelinePhase {
            phase: Phase::BeforeDeploy,
            seconds: before,
            estimate: None,
        });
    }
    let parts = partition(rollout_start, end, &intervals);
    for phase in [
        Phase::Pull,
        Phase::StartToHealthy,
        Phase::Draining,
        Phase::Waiting,
    ] {
        let estimate = estimate.map(|e| match phase {
            Phase::Pull => e.pull,
            Phase::StartToHealthy => e.start_to_healthy,
            Phase::Draining => e.draining,
            _ => e.waiting,
        });
        phases.push(TimelinePhase {
            phase,
            seconds: parts.get(&phase).copied().unwrap_or(0.0),
            estimate,
        });
    }
    let timeline = Timeline {
        phases,
        deploy_seconds: o.seconds,
        estimated_rollout: estimate.map(|e| e.seconds),
    };
    debug_assert!(
        (timeline.phases.iter().map(|p| p.seconds).sum::<f64>() - timeline.deploy_seconds).abs()
            < 1e-6,
        "the phases add up to the deploy time: {timeline:?}"
    );
    timeline
}

/// Splits `[from, to]` into phases: each moment counts for the first of
/// pull, start to healthy and draining under way then (in that order, so a
/// drain hidden behind new tasks starting is not counted twice), else for
/// waiting. The parts add up to `to - from`.
pub fn partition(from: f64, to: f64, intervals: &[(Phase, f64, f64)]) -> BTreeMap<Phase, f64> {
    let mut out = BTreeMap::new();
    if to <= from {
        return out;
    }
    let mut cuts: Vec<f64> = vec![from, to];
    for (_, a, b) in intervals {
        cuts.extend([a.clamp(from, to), b.clamp(from, to)]);
    }
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let mid = (a + b) / 2.0;
        let phase = [Phase::Pull, Phase::StartToHealthy, Phase::Draining]
            .into_iter()
            .find(|p| {
                intervals
                    .iter()
                    .any(|(q, s, e)| q == p && *s <= mid && mid < *e)
            })
            .unwrap_or(Phase::Waiting);
        *out.entry(phase).or_insert(0.0) += b - a;
    }
    out
}

fn secs(t: Option<&aws_smithy_types::DateTime>) -> Option<f64> {
    t.map(aws_smithy_types::DateTime::as_secs_f64)
}

/// Reads the rollout `report` describes and splits it into phases; `started`
/// is when the deploy began (its clock ran `report.seconds` from there).
/// `None` when nothing was deployed; what cannot be read is a notice.
pub async fn read(
    ecs: &aws_sdk_ecs::Client,
    plan: &crate::plan::EcsPlan,
    report: &DeployReport,
    seen: Option<&aws_sdk_ecs::types::Service>,
    started: SystemTime,
    estimate: Option<&RolloutEstimate>,
    actions: &crate::gha::Actions,
) -> Option<Timeline> {
    if report.unchanged {
        return None;
    }
    let seconds = report.seconds?;
    let start = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    match observe(ecs, plan, report, seen, start, seconds).await {
        Ok(o) => Some(build(&o, estimate)),
        Err(e) => {
            actions.notice(
                &format!(
                    "no timeline for ECS service {}: {} (the deploy's verdict stands)",
                    plan.service,
                    crate::error::chain_message(&e)
                ),
                &crate::gha::Location {
                    title: Some("fastdeploy timeline"),
                    ..Default::default()
                },
            );
            None
        }
    }
}

async fn observe(
    ecs: &aws_sdk_ecs::Client,
    plan: &crate::plan::EcsPlan,
    report: &DeployReport,
    seen: Option<&aws_sdk_ecs::types::Service>,
    start: f64,
    seconds: f64,
) -> anyhow::Result<Observed> {
    let (cluster, name) = (&plan.cluster, &plan.service);
    // The look that judged the rollout saw the service with its events;
    // only without it is the service read again.
    let described;
    let service = match seen {
        Some(s) => s,
        None => {
            described = ecs
                .describe_services()
                .cluster(cluster)
                .services(name)
                .send()
                .await
                .with_context(|| format!("describing service {name} (ecs:DescribeServices)"))?;
            described
                .services()
                .first()
                .with_context(|| format!("service {name} not found"))?
        }
    };
    let events = service
        .events()
        .iter()
        .filter_map(|e| Some((secs(e.created_at())?, e.message()?.to_string())))
        .filter(|(at, _)| *at >= start - 1.0)
        .collect();
    let ours = report.revision.as_deref();
    let rollout_start = service
        .deployments()
        .iter()
        .find(|d| {
            d.id()
                .is_some_and(|id| report.deployment_id.as_deref() == Some(id))
        })
        .or_else(|| {
            service
                .deployments()
                .iter()
                .find(|d| d.task_definition().is_some() && d.task_definition() == ours)
        })
        .and_then(|d| secs(d.created_at()))
        .filter(|at| *at >= start - 1.0);
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let mut pages = ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(name)
            .desired_status(status)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            arns.extend(
                page.with_context(|| {
                    format!("listing the tasks of service {name} (ecs:ListTasks)")
                })?
                .task_arns()
                .to_vec(),
            );
        }
    }
    let mut o = Observed {
        start,
        seconds,
        rollout_start,
        before_deploy_seconds: report.before_deploy.as_ref().and_then(|t| t.seconds),
        events,
        ..Observed::default()
    };
    for chunk in arns.chunks(100) {
        let described = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .with_context(|| {
                format!("describing the tasks of service {name} (ecs:DescribeTasks)")
            })?;
        for t in described.tasks() {
            let Some(created) = secs(t.created_at()) else {
                continue;
            };
            if ours.is_some() && t.task_definition_arn() == ours {
                if created >= start - 1.0 {
                    o.new_tasks.push(NewTask {
                        created,
                        pull_started: secs(t.pull_started_at()),
                        pull_stopped: secs(t.pull_stopped_at()),
                        started: secs(t.started_at()),
                        stopped: secs(t.stopped_at()),
                    });
                }
            } else {
                let task = OldTask {
                    stopping: secs(t.stopping_at()),
                    stopped: secs(t.stopped_at()),
                };
                let stopping_now = t.desired_status() == Some("STOPPED") && task.stopped.is_none();
                if task
                    .stopping
                    .or(task.stopped)
                    .is_some_and(|at| at >= start - 1.0)
                    || stopping_now
                {
                    o.old_tasks.push(task);
                }
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(t: &Timeline) -> f64 {
        t.phases.iter().map(|p| p.seconds).sum()
    }

    fn seconds(t: &Timeline, phase: Phase) -> f64 {
        t.phases
            .iter()
            .find(|p| p.phase == phase)
            .map(|p| p.seconds)
            .unwrap_or(f64::NAN)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// A 200/100 rollout of two tasks behind a target group, times as the
    /// sandbox makes them (relative to the deploy's start at 1000 s).
    fn rolled() -> Observed {
        let at = |s: f64| 1000.0 + s;
        let new = NewTask {
            created: at(2.0),
            pull_started: Some(at(2.0)),
            pull_stopped: Some(at(62.0)),
            started: Some(at(63.0)),
            stopped: None,
        };
        let old = OldTask {
            stopping: Some(at(393.0)),
            stopped: Some(at(423.0)),
        };
        Observed {
            start: at(0.0),
            seconds: 430.0,
            rollout_start: Some(at(2.0)),
            before_deploy_seconds: None,
            new_tasks: vec![new.clone(), new],
            old_tasks: vec![old.clone(), old],
            events: vec![
                (
                    at(2.0),
                    "(service web) has started 2 tasks: (task a) (task b).".into(),
                ),
                (
                    at(63.0),
                    "(service web) registered 2 targets in (target-group arn:tg)".into(),
                ),
                (
                    at(93.0),
                    "(service web) has begun draining connections on 2 tasks.".into(),
                ),
                (
                    at(93.0),
                    "(service web) deregistered 2 targets in (target-group arn:tg)".into(),
                ),
                (
                    at(393.0),
                    "(service web) has stopped 2 running tasks: (task c) (task d).".into(),
                ),
                (
                    at(423.0),
                    "(service web) has reached a steady state.".into(),
                ),
            ],
        }
    }

    #[test]
    fn a_rollout_splits_into_pull_start_drain_and_the_rest() {
        let t = build(&rolled(), None);
        assert!(
            close(sum(&t), 430.0) && close(t.deploy_seconds, 430.0),
            "{t:?}"
        );
        assert!(close(seconds(&t, Phase::Register), 2.0));
        assert!(close(seconds(&t, Phase::Pull), 60.0));
        assert!(close(seconds(&t, Phase::StartToHealthy), 31.0));
        assert!(close(seconds(&t, Phase::Draining), 330.0));
        assert!(close(seconds(&t, Phase::Waiting), 7.0));
        assert!(t.phases.iter().all(|p| p.phase != Phase::BeforeDeploy));
    }

    #[test]
    fn a_before_deploy_task_is_its_own_phase_within_the_time_before_the_update() {
        let mut o = rolled();
        o.rollout_start = Some(1030.0);
        o.before_deploy_seconds = Some(25.0);
        let t = build(&o, None);
        assert!(
            close(seconds(&t, Phase::Register), 5.0)
                && close(seconds(&t, Phase::BeforeDeploy), 25.0),
            "{t:?}"
        );
        assert!(close(sum(&t), 430.0));
        // A task longer than the time before the update cannot make the register phase negative.
        o.before_deploy_seconds = Some(99.0);
        let t = build(&o, None);
        assert!(
            close(seconds(&t, Phase::Register), 0.0) && close(sum(&t), 430.0),
            "{t:?}"
        );
    }

    /// Times from another clock (AWS's) outside the deploy are cut to it,
    /// and the phases still add up.
    #[test]
    fn times_outside_the_deploy_are_cut_to_it() {
        let mut o = rolled();
        o.seconds = 200.0;
        o.rollout_start = Some(990.0);
        let t = build(&o, None);
        assert!(
            close(sum(&t), 200.0) && close(seconds(&t, Phase::Register), 0.0),
            "{t:?}"
        );
        let empty = build(
            &Observed {
                start: 5.0,
                seconds: 4.0,
                ..Observed::default()
            },
            None,
        );
        assert!(
            close(sum(&empty), 4.0) && close(seconds(&empty, Phase::Register), 4.0),
            "{empty:?}"
        );
    }

    #[test]
    fn the_estimate_sits_beside_each_rollout_phase() {
        let e = RolloutEstimate {
            seconds: 421.0,
            batches: 1,
            pull: 60.0,
            start_to_healthy: 31.0,
            draining: 330.0,
            waiting: 0.0,
        };
        let t = build(&rolled(), Some(&e));
        assert_eq!(t.estimated_rollout, Some(421.0));
        let pull = t.phases.iter().find(|p| p.phase == Phase::Pull).unwrap();
        assert_eq!(pull.estimate, Some(60.0));
        assert_eq!(t.phases[0].estimate, None);
    }

    #[test]
    fn phases_partition_the_span_with_new_tasks_first() {
        let iv = [
            (Phase::Draining, 0.0, 10.0),
            (Phase::Pull, 2.0, 4.0),
            (Phase::StartToHealthy, 4.0, 6.0),
        ];
        let p = partition(0.0, 12.0, &iv);
        assert!(close(p[&Phase::Pull], 2.0) && close(p[&Phase::StartToHealthy], 2.0));
        assert!(close(p[&Phase::Draining], 6.0) && close(p[&Phase::Waiting], 2.0));
        assert!(close(p.values().sum::<f64>(), 12.0));
        // Intervals outside the span are cut to it.
        let p = partition(5.0, 7.0, &iv);
        assert!(close(p.values().sum::<f64>(), 2.0) && close(p[&Phase::StartToHealthy], 1.0));
    }
}
