//! A component with several targets (`targets:`): one image in every place
//! it runs, deployed as one.
//!
//! Each target is still a [`Target`] followed by the same steps as a
//! single one ([`super::run`], [`super::judge`], [`super::settle`],
//! [`super::close`]); what this module adds is the order and the one
//! verdict:
//!
//! - services, Lambda functions and Elastic Beanstalk environments move
//!   together, under one deadline; the component's `before-deploy` runs
//!   once (with the first service) and the others wait for it in
//!   [`Deploy::ready`];
//! - a task definition family is registered once ([`Together::revision`]),
//!   whichever target asks first, and every target running it gets that
//!   revision;
//! - EventBridge rules and Scheduler schedules move after those succeed,
//!   to the revision of the family they run;
//! - when any target fails, every target that moved is put back (when
//!   `rollback` is on), and the component's result is the worst of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::any::Any;
use super::{
    Change, Context, Deploy, DeployOutcome, Failing, Found, Platform, Revision, Target, Verdict,
};
use crate::clock::Clock;
use crate::error::{BadInput, chain_message};
use crate::outcome::RunResult;
use crate::plan::ComponentPlan;
use crate::wait::Waiter;

/// What the targets of one component share while they deploy.
pub struct Together {
    /// Task definition family -> the revision this run rolls out.
    families: tokio::sync::Mutex<BTreeMap<String, String>>,
    /// `before-deploy`: `None` until it ended, then `Err(why)` if it failed.
    gate: tokio::sync::watch::Sender<Option<Result<(), String>>>,
    /// When a target runs `before-deploy`: how long the others wait for it
    /// at most (its own budget, `before-deploy-minutes`, and a minute for
    /// stopping a task that ran too long), scaled.
    gate_budget: Option<Duration>,
}

impl Together {
    /// `before_deploy_seconds`: the budget of the `before-deploy` one of
    /// the targets runs, if any.
    pub fn new(clock: Clock, before_deploy_seconds: Option<u64>) -> Together {
        Together {
            families: Default::default(),
            gate: tokio::sync::watch::Sender::new(None),
            gate_budget: before_deploy_seconds.map(|s| clock.of(s as f64 + 60.0)),
        }
    }

    /// The revision of `family` this run rolls out: the first target to
    /// ask makes it (`make`: reuse or register), the others get its answer
    /// while the first is still making it they wait.
    pub async fn revision(
        &self,
        family: &str,
        make: impl Future<Output = anyhow::Result<String>>,
    ) -> anyhow::Result<String> {
        let mut families = self.families.lock().await;
        if let Some(arn) = families.get(family) {
            return Ok(arn.clone());
        }
        let arn = make.await?;
        families.insert(family.to_string(), arn.clone());
        Ok(arn)
    }

    /// What a target rolling out `family` found already serving it (its
    /// service runs this image): the revision the others get too.
    pub async fn serving(&self, family: &str, arn: &str) {
        let mut families = self.families.lock().await;
        families
            .entry(family.to_string())
            .or_insert_with(|| arn.to_string());
    }

    /// The revision of `family` a target of this component rolled out.
    pub async fn rolled_out(&self, family: &str) -> Option<String> {
        self.families.lock().await.get(family).cloned()
    }

    /// `before-deploy` ended (the first word wins): the waiting targets go
    /// on, or (`Err`) stay as they are.
    pub fn before_deploy_ended(&self, how: Result<(), String>) {
        self.gate.send_if_modified(|v| {
            let first = v.is_none();
            if first {
                *v = Some(how.clone());
            }
            first
        });
    }

    /// Waits for `before-deploy` within its own budget (cancellation ends
    /// the wait as any); the time it took is not `w`'s, as the task's is
    /// not the target's that runs it. `Some(why)` when it failed.
    pub(super) async fn ready(&self, w: &mut Waiter<'_>) -> anyhow::Result<Option<String>> {
        let Some(budget) = self.gate_budget else {
            return Ok(None);
        };
        let started = Instant::now();
        let gate = w.with_pace(w.pace().until(started + budget));
        let mut rx = self.gate.subscribe();
        let ended = gate
            .within("waiting for before-deploy", async move {
                rx.wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|v| v.clone())
            })
            .await?;
        w.postpone(started.elapsed());
        Ok(match ended {
            Some(Ok(())) => None,
            Some(Err(why)) => Some(why),
            None => Some("before-deploy never ran".into()),
        })
    }
}

/// The platform every target runs, when any says (Lambda's architecture):
/// one image serves them all, so they must agree.
pub fn one_platform<'f>(
    component: &str,
    found: impl Iterator<Item = &'f Found>,
) -> Result<Option<Platform>, BadInput> {
    let mut first: Option<&Platform> = None;
    for p in found.filter_map(|f| f.platform.as_ref()) {
        match first {
            Some(f) if f.platform != p.platform => {
                return Err(BadInput::other(format!(
                    "component `{component}` builds one image, but its targets run on different platforms: {} and {}; \
                     split the component, or make the targets' architectures match",
                    f.why, p.why
                )));
            }
            Some(_) => {}
            None => first = Some(p),
        }
    }
    Ok(first.cloned())
}

/// `rollback`: each target's revision from before the last deploy. A rule
/// or schedule keeps no history: it goes back with the component's service
/// of the family it runs.
pub async fn earlier(
    cx: &Context<'_>,
    component: &ComponentPlan,
    to: Option<&str>,
) -> anyhow::Result<Vec<Revision>> {
    let targets: Vec<Any<'_>> = component
        .targets()
        .map(|p| Any::new(p, component))
        .collect();
    let mut by_family: BTreeMap<String, Revision> = BTreeMap::new();
    let mut found: Vec<Option<Revision>> = Vec::new();
    for t in &targets {
        if let Any::Trigger(_) = t {
            found.push(None);
            continue;
        }
        let rev = t.earlier(cx, to).await?;
        if let Some(family) = super::ecs::render::family_of_arn(&rev.id) {
            by_family.entry(family.to_string()).or_insert(rev.clone());
        }
        found.push(Some(rev));
    }
    let mut out = Vec::new();
    for (t, rev) in targets.iter().zip(found) {
        out.push(match (t, rev) {
            (_, Some(rev)) => rev,
            (Any::Trigger(trigger), None) => trigger.earlier_with(cx, &by_family, to).await?,
            (_, None) => unreachable!("every target but a trigger has its revision"),
        });
    }
    Ok(out)
}

/// Deploys `change` to every target of the component, to one verdict.
pub async fn drive_all(
    cx: &Context<'_>,
    component: &ComponentPlan,
    change: &Change,
) -> DeployOutcome {
    let mut targets: Vec<Any<'_>> = component
        .targets()
        .map(|p| Any::new(p, component))
        .collect();
    let before = targets.iter().find_map(Any::before_deploy_seconds);
    let together = Together::new(cx.clock, before);
    let changes = each_change(change, targets.len());
    // Each target's lines name it: `[shop/worker] ...`.
    let actions: Vec<_> = targets
        .iter()
        .map(|t| {
            let name = format!("[{}/{}] ", component.name, t.reference().short());
            cx.actions.prefixed(&name)
        })
        .collect();
    let cxs: Vec<Context<'_>> = actions
        .iter()
        .map(|actions| Context { actions, ..*cx })
        .collect();
    for ((t, change), cx) in targets.iter_mut().zip(&changes).zip(&cxs) {
        t.prepare(cx, change).await;
    }
    let started = Instant::now();
    let mut deploys: Vec<Deploy<'_>> = targets
        .iter()
        .zip(&cxs)
        .map(|(t, cx)| Deploy::start(cx, t, Some(&together)))
        .collect();
    let mut applied: Vec<Option<anyhow::Result<Verdict>>> = targets.iter().map(|_| None).collect();
    let stage = stages(component, &targets);
    let mut stages = stage.clone();
    stages.sort_unstable();
    stages.dedup();
    for now in stages {
        if !applied.iter().flatten().all(moved_well) {
            break;
        }
        let phase = Phase {
            together: &together,
            stage: &stage,
            now,
        };
        phase
            .apply(&mut targets, &mut deploys, &changes, &mut applied)
            .await;
    }
    let failed: Vec<String> = targets
        .iter()
        .zip(&applied)
        .filter(|(_, a)| a.as_ref().is_some_and(|a| !moved_well(a)))
        .map(|(t, _)| t.reference().short().to_string())
        .collect();
    // Every target that moved is put back at once, as they moved.
    let concluded = targets
        .iter_mut()
        .zip(deploys)
        .zip(applied)
        .map(|((t, d), applied)| conclude(t, d, applied, &failed, started));
    one_outcome(futures::future::join_all(concluded).await)
}

/// Each target's change: the one image for all, or (`rollback`) each its
/// own revision.
fn each_change(change: &Change, n: usize) -> Vec<Change> {
    (0..n)
        .map(|i| match change {
            Change::Revisions(revs) => revs
                .get(i)
                .cloned()
                .map(Change::Revision)
                .unwrap_or_else(|| change.clone()),
            other => other.clone(),
        })
        .collect()
}

/// Each target's stage: its `order` group, lowest first, then rules and
/// schedules; a stage moves once every one before it succeeded.
fn stages(component: &ComponentPlan, targets: &[Any<'_>]) -> Vec<u32> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| match t.follows() {
            true => u32::MAX,
            false => component.order_of(i),
        })
        .collect()
}

/// Whether a target's change went as it should (moved, or already there).
fn moved_well(applied: &anyhow::Result<Verdict>) -> bool {
    matches!(applied, Ok(Verdict::Succeeded | Verdict::Unchanged))
}

/// One stage of the targets' moves: those whose stage is `now`.
struct Phase<'a> {
    together: &'a Together,
    /// Each target's stage: its `order` group, rules and schedules last.
    stage: &'a [u32],
    now: u32,
}

impl Phase<'_> {
    /// Applies the change to this stage's targets, concurrently.
    async fn apply(
        &self,
        targets: &mut [Any<'_>],
        deploys: &mut [Deploy<'_>],
        changes: &[Change],
        applied: &mut [Option<anyhow::Result<Verdict>>],
    ) {
        let together = self.together;
        let runs = targets
            .iter_mut()
            .zip(deploys.iter_mut())
            .zip(changes)
            .enumerate()
            .filter(|(i, _)| self.stage[*i] == self.now)
            .map(|(i, ((t, d), change))| async move {
                let gate = t.runs_before_deploy();
                let result = super::run(t, d, change).await;
                if gate {
                    // Whatever ended it, the targets waiting for before-deploy
                    // hear: an unchanged service's task ran on an earlier run.
                    together.before_deploy_ended(match &result {
                        Ok(Verdict::Succeeded | Verdict::Unchanged) => Ok(()),
                        Ok(Verdict::Failed { reason, .. } | Verdict::Refused(reason)) => {
                            Err(reason.clone())
                        }
                        Ok(Verdict::RolledBack(why)) => Err(why.clone()),
                        Err(e) => Err(chain_message(e)),
                    });
                }
                (i, result)
            });
        for (i, result) in futures::future::join_all(runs).await {
            applied[i] = Some(result);
        }
    }
}

/// One target's verdict within the component's: its own when it failed,
/// put back when it moved but another failed, nothing to do when it never
/// moved.
async fn conclude(
    t: &mut Any<'_>,
    mut d: Deploy<'_>,
    applied: Option<anyhow::Result<Verdict>>,
    failed: &[String],
    started: Instant,
) -> DeployOutcome {
    let others = || {
        let me = t.reference().short().to_string();
        let names: Vec<&str> = failed
            .iter()
            .filter(|n| **n != me)
            .map(String::as_str)
            .collect();
        names.join(", ")
    };
    let (result, failure) = match applied {
        None => {
            let why = format!("not moved: {} did not succeed first", others());
            (RunResult::Skipped, Some(why))
        }
        Some(Ok(Verdict::Succeeded)) if !failed.is_empty() && t.watch().rollback => {
            let why = format!("put back with the component: {} did not succeed", others());
            let f = Failing {
                why,
                put_back: true,
                stop: None,
            };
            super::settle(t, &mut d, f).await
        }
        Some(applied) => super::judge(t, &mut d, applied).await,
    };
    super::close(t, d, result, failure, started).await
}

/// Whether a target ended where it started or where it should: it
/// succeeded, was rolled back, never moved, or failed while what served
/// before still serves.
fn back_or_fine(o: &DeployOutcome) -> bool {
    let r = &o.report;
    match o.result {
        RunResult::Failure => {
            r.serving_revision.is_some() && r.serving_revision == r.previous_revision
        }
        _ => true,
    }
}

/// The component's one outcome from its targets': success only when every
/// target succeeded (or already served the image), rolled back when some
/// target was put back and every target serves what it served before,
/// failure otherwise (a failure that moved nothing is a failure).
fn one_outcome(outcomes: Vec<DeployOutcome>) -> DeployOutcome {
    let results: Vec<RunResult> = outcomes.iter().map(|o| o.result).collect();
    let ok = |r: &RunResult| matches!(r, RunResult::Success | RunResult::Skipped);
    let result = if results.iter().all(ok) && outcomes.iter().all(|o| o.failure.is_none()) {
        if results.contains(&RunResult::Success) {
            RunResult::Success
        } else {
            RunResult::Skipped
        }
    } else if outcomes.iter().all(back_or_fine) && results.contains(&RunResult::RolledBack) {
        RunResult::RolledBack
    } else {
        RunResult::Failure
    };
    let lines: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            Some(format!(
                "{}: {}",
                o.report.target.short(),
                o.failure.as_ref()?
            ))
        })
        .collect();
    let mut reports = outcomes.into_iter().map(|o| o.report);
    let report = reports.next().unwrap_or_default();
    DeployOutcome {
        result,
        failure: (!lines.is_empty()).then(|| lines.join("; ")),
        report,
        also: reports.collect(),
    }
}
