//! EventBridge rules and Scheduler schedules that run a component's ECS
//! tasks: a schedule left on last month's revision runs last month's code,
//! so they move with the component.
//!
//! - `preflight`: the rule or schedule exists, has an ECS target, and the
//!   family it runs holds the component's containers.
//! - `apply`: the ECS target's `TaskDefinitionArn` moves to this run's
//!   revision of the family it runs (found by family, whatever revision it
//!   named): the one a service of the component rolled out, else rendered
//!   and registered here; every other field of the target kept; read back.
//! - `put_back`: the targets as they were read, written back, read back.
//!
//! `rule` (EventBridge) and `schedule` (Scheduler) read and write; this
//! module holds what they share.

mod rule;
mod schedule;

use std::collections::BTreeMap;

use crate::aws::Explained;

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;

use super::ecs::{render, wire};
use super::{Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict};
use crate::error::{BadInput, chain_message};
use crate::outcome::{DeployReport, TargetRef, revision_label};
use crate::plan::{TargetPlan, TriggerPlan, WatchPlan};

/// The family of a task definition ARN or `family:revision`.
pub fn family_of(arn: &str) -> &str {
    render::family_of_arn(arn).unwrap_or(arn)
}

/// What a rule or schedule holds: what is read, moved and written back.
#[derive(Debug, Clone)]
enum Held {
    Rule(Vec<aws_sdk_eventbridge::types::Target>),
    Schedule(Box<GetScheduleOutput>),
}

impl Held {
    /// The task definitions its ECS targets run.
    fn task_definitions(&self) -> Vec<String> {
        match self {
            Held::Rule(t) => rule::task_definitions(t),
            Held::Schedule(s) => schedule::task_definitions(s),
        }
    }

    /// The families those belong to, each once, in order.
    fn families(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for arn in self.task_definitions() {
            let family = family_of(&arn).to_string();
            if !out.contains(&family) {
                out.push(family);
            }
        }
        out
    }

    /// The same, its ECS targets running `family` moved to `arn`.
    fn moved(&self, family: &str, arn: &str) -> Held {
        match self {
            Held::Rule(t) => Held::Rule(rule::moved(t, family, arn)),
            Held::Schedule(s) => Held::Schedule(Box::new(schedule::moved(s, family, arn))),
        }
    }
}

/// A rule or a schedule, as one deploy moves it.
pub struct Trigger<'p> {
    plan: &'p TriggerPlan,
    rule: bool,
    /// What it held before this deploy wrote it: what `put_back` writes.
    before: Option<Held>,
    /// A write was sent (its answer may have been lost).
    sent: bool,
}

impl<'p> Trigger<'p> {
    pub fn rule(plan: &'p TriggerPlan) -> Trigger<'p> {
        Trigger {
            plan,
            rule: true,
            before: None,
            sent: false,
        }
    }

    pub fn schedule(plan: &'p TriggerPlan) -> Trigger<'p> {
        Trigger {
            rule: false,
            ..Trigger::rule(plan)
        }
    }

    /// `rule nightly`, `schedule nightly-report`.
    fn name(&self) -> String {
        let kind = if self.rule { "rule" } else { "schedule" };
        format!("{kind} {}", self.plan.name)
    }

    fn plan_ref(&self) -> TargetPlan {
        match self.rule {
            true => TargetPlan::Rule(self.plan.clone()),
            false => TargetPlan::Schedule(self.plan.clone()),
        }
    }

    async fn read(&self, cx: &Context<'_>) -> anyhow::Result<Held> {
        Ok(match self.rule {
            true => Held::Rule(rule::read(cx, self.plan).await?),
            false => Held::Schedule(Box::new(schedule::read(cx, self.plan).await?)),
        })
    }

    async fn write(&self, cx: &Context<'_>, held: &Held) -> anyhow::Result<()> {
        match held {
            Held::Rule(t) => rule::write(cx, self.plan, t).await,
            Held::Schedule(s) => schedule::write(cx, self.plan, s).await,
        }
    }

    /// Writes `to` and reads it back. An error answer is checked against
    /// what the rule or schedule now holds: an answer lost after the write
    /// took is no failure.
    async fn converge(&mut self, cx: &Context<'_>, to: &Held) -> anyhow::Result<()> {
        self.sent = true;
        let sent = self.write(cx, to).await;
        let now = self.read(cx).await?.task_definitions();
        let wanted = to.task_definitions();
        match sent {
            Ok(()) if now == wanted => Ok(()),
            Err(e) if now == wanted => {
                cx.actions.line(&format!(
                    "{} answered an error ({}), but reads back {}: the write took",
                    self.name(),
                    chain_message(&e),
                    labels(&now)
                ));
                Ok(())
            }
            Err(e) => {
                // Refused, and nothing moved: what serves is what served.
                if self.before.as_ref().map(Held::task_definitions) == Some(now) {
                    self.sent = false;
                }
                Err(e)
            }
            Ok(()) => anyhow::bail!(
                "{} was written with {}, but reads back {}",
                self.name(),
                labels(&wanted),
                labels(&now)
            ),
        }
    }

    /// This run's revision of `family`: the one a target of the component
    /// rolled out, else rendered from the family's newest and registered
    /// once.
    async fn revision(
        &self,
        d: &Deploy<'_>,
        family: &str,
        image: &Image,
    ) -> anyhow::Result<String> {
        let cx = d.cx;
        if let Some(t) = d.together
            && let Some(arn) = t.rolled_out(family).await
        {
            return Ok(arn);
        }
        let make = self.render_family(&cx, family, image);
        match d.together {
            Some(t) => t.revision(family, make).await,
            None => make.await,
        }
    }

    async fn render_family(
        &self,
        cx: &Context<'_>,
        family: &str,
        image: &Image,
    ) -> anyhow::Result<String> {
        let current = wire::describe(&cx.clients.ecs, family).await?;
        let base = render::from_described(&current.task_definition, current.tags.as_ref());
        let containers = render::check_containers(&base, &self.plan.containers, family)?;
        let mut rendered = base.clone();
        render::replace_images(&mut rendered, &containers, &image.uri);
        render::apply_config(&mut rendered, &containers, &self.plan.config);
        if render::same_revision(&rendered, &base) {
            return Ok(current.arn().to_string());
        }
        let say = |line: &str| cx.actions.line(line);
        super::ecs::revision_of(cx, &rendered, current.arn(), image, &containers, &say).await
    }

    /// Moves what it holds (`held`) to `to`, to a verdict.
    async fn move_to(
        &mut self,
        d: &mut Deploy<'_>,
        held: Held,
        to: Held,
    ) -> anyhow::Result<Verdict> {
        let cx = d.cx;
        let (was, now) = (held.task_definitions(), to.task_definitions());
        d.report.previous_revision = was.first().cloned();
        d.report.serving_revision = was.first().cloned();
        d.report.revision = now.first().cloned();
        if was == now {
            cx.actions.line(&format!(
                "{} already runs {}; nothing to move",
                self.name(),
                labels(&now)
            ));
            return Ok(Verdict::Unchanged);
        }
        d.w.check(&format!("moving {}", self.name()))?;
        self.before = Some(held);
        self.converge(&cx, &to).await?;
        cx.actions.line(&format!(
            "{}: {} → {}",
            self.name(),
            labels(&was),
            labels(&now)
        ));
        d.report.serving_revision = now.first().cloned();
        Ok(Verdict::Succeeded)
    }

    /// `rollback`: what it ran before the last deploy. It keeps no history:
    /// it goes back with the component's service of the family it runs
    /// (`by_family`), or to `to`.
    pub async fn earlier_with(
        &self,
        cx: &Context<'_>,
        by_family: &BTreeMap<String, Revision>,
        to: Option<&str>,
    ) -> anyhow::Result<Revision> {
        let held = self.read(cx).await?;
        let Some(family) = held.families().first().cloned() else {
            return Err(self.no_ecs_target().into());
        };
        if let Some(rev) = by_family.get(&family) {
            return Ok(Revision {
                found: format!("with the service that runs {family}: {}", rev.found),
                warning: None,
                ..rev.clone()
            });
        }
        let Some(to) = to else {
            return self.before_current(cx, &held, &family).await;
        };
        let named = wire::describe(&cx.clients.ecs, to).await?;
        if family_of(named.arn()) != family {
            return Err(BadInput::other(format!(
                "`to` is {to}, which is not a revision of {family}, the family {} runs",
                self.name()
            ))
            .into());
        }
        Ok(Revision {
            id: named.arn().to_string(),
            image: None,
            found: format!("named by `to` ({to})"),
            warning: None,
        })
    }

    /// What it ran before, when no service of the component runs its
    /// family: it keeps no history, so the family's newest ACTIVE revision
    /// older than the one it runs now.
    async fn before_current(
        &self,
        cx: &Context<'_>,
        held: &Held,
        family: &str,
    ) -> anyhow::Result<Revision> {
        let current = held.task_definitions().first().cloned().unwrap_or_default();
        let number = |arn: &str| arn.rsplit(':').next().and_then(|n| n.parse::<u64>().ok());
        let now = number(&current).unwrap_or(0);
        let listed = cx
            .clients
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .sort(aws_sdk_ecs::types::SortOrder::Desc)
            .send()
            .await
            .explained("ecs:ListTaskDefinitions", || {
                format!("task definition family {family}")
            })?;
        let older = listed
            .task_definition_arns()
            .iter()
            .filter(|a| family_of(a) == family)
            .find(|a| number(a).is_some_and(|n| n < now));
        match older {
            Some(arn) => Ok(Revision {
                id: arn.clone(),
                image: None,
                found: format!(
                    "the newest ACTIVE revision of {family} before {}: {} keeps no history of its own",
                    revision_label(&current),
                    self.name()
                ),
                warning: None,
            }),
            None => Err(BadInput::other(format!(
                "{} runs {}, and {family} has no older ACTIVE revision to go back to; pass `to` to name one",
                self.plan_ref().describe(),
                revision_label(&current)
            ))
            .into()),
        }
    }

    /// `plan --diff`: what it runs now; its ECS target moves to this
    /// run's revision of that family.
    pub async fn diff(&self, cx: &Context<'_>) -> anyhow::Result<super::diff::TargetDiff> {
        let mut d = super::diff::TargetDiff::new(self.plan_ref().describe());
        let held = self.read(cx).await?;
        let runs = held.task_definitions();
        d.notes.push(format!(
            "runs {}; its ECS target moves to this run's revision of {}, every other field kept",
            labels(&runs),
            held.families().join(", ")
        ));
        Ok(d)
    }

    fn no_ecs_target(&self) -> BadInput {
        BadInput::other(format!(
            "{}: {} has no ECS target; fastdeploy moves the task definition an ECS target runs: give it one, or remove the item",
            self.plan.at,
            self.plan_ref().describe()
        ))
    }
}

/// `web:7, web:7` for a list of task definition ARNs.
fn labels(arns: &[String]) -> String {
    let labels: Vec<String> = arns.iter().map(|a| revision_label(a)).collect();
    labels.join(", ")
}

/// AWS said it does not exist (the error is already bad input, unnamed).
fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<BadInput>().is_some() && chain_message(e).contains("does not exist")
}

impl Target for Trigger<'_> {
    fn reference(&self) -> TargetRef {
        self.plan_ref().reference()
    }

    fn watch(&self) -> &WatchPlan {
        &self.plan.watch
    }

    /// It exists, has an ECS target, and each family it runs holds the
    /// component's containers.
    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        let at = &self.plan.at;
        let held = match self.read(cx).await {
            Err(e) if is_not_found(&e) => {
                return Err(BadInput::other(format!(
                    "{at}: {} does not exist in this account and region; check its name (and `{}`)",
                    self.plan_ref().describe(),
                    if self.rule { "event-bus" } else { "group" }
                ))
                .into());
            }
            other => other?,
        };
        let families = held.families();
        if families.is_empty() {
            return Err(self.no_ecs_target().into());
        }
        for family in families {
            let current = wire::describe(&cx.clients.ecs, &family).await?;
            let base = render::from_described(&current.task_definition, current.tags.as_ref());
            render::check_containers(&base, &self.plan.containers, &family).map_err(|e| {
                BadInput::other(format!(
                    "{at}: {} runs task definition family {family}, which does not run the component's image: {e}",
                    self.name()
                ))
            })?;
        }
        Ok(Found::default())
    }

    async fn apply(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict> {
        let held = self.read(&d.cx).await?;
        let mut to = held.clone();
        for family in held.families() {
            let arn = self.revision(d, &family, image).await?;
            to = to.moved(&family, &arn);
        }
        self.move_to(d, held, to).await
    }

    async fn earlier(&self, cx: &Context<'_>, to: Option<&str>) -> anyhow::Result<Revision> {
        self.earlier_with(cx, &BTreeMap::new(), to).await
    }

    async fn restore(&mut self, d: &mut Deploy<'_>, rev: &Revision) -> anyhow::Result<Verdict> {
        let held = self.read(&d.cx).await?;
        let to = held.moved(family_of(&rev.id), &rev.id);
        self.move_to(d, held, to).await
    }

    /// The image, by digest, the family it runs holds in the component's
    /// containers.
    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image> {
        let held = self.read(cx).await?;
        let arn = held
            .task_definitions()
            .first()
            .cloned()
            .ok_or_else(|| self.no_ecs_target())?;
        let current = wire::describe(&cx.clients.ecs, &arn).await?;
        let containers = render::check_containers(
            &render::from_described(&current.task_definition, None),
            &self.plan.containers,
            family_of(&arn),
        )?;
        Ok(super::ecs::one_image(&current, &containers, &self.name())?)
    }

    fn changed(&self) -> bool {
        self.sent
    }

    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        let cx = d.cx;
        let before = match (&self.before, act) {
            (Some(before), true) => before.clone(),
            _ => {
                self.observe(&cx, &mut d.report).await;
                return PutBack {
                    settled: true,
                    note: None,
                };
            }
        };
        match self.converge(&cx, &before).await {
            Ok(()) => {
                d.report.serving_revision = before.task_definitions().first().cloned();
                PutBack {
                    settled: true,
                    note: None,
                }
            }
            Err(e) => PutBack {
                settled: false,
                note: Some(format!(
                    "{} was not put back: {}",
                    self.name(),
                    chain_message(&e)
                )),
            },
        }
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        if let Ok(held) = self.read(cx).await {
            report.serving_revision = held.task_definitions().first().cloned();
        }
    }

    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        let what = revision
            .map(revision_label)
            .unwrap_or_else(|| "a task definition fastdeploy could not read".into());
        let name = self.name();
        match how {
            Serves::Now => format!("{name} runs {what}"),
            Serves::Still => format!("{name} still runs {what}"),
            Serves::Again => format!("{name} runs {what} again"),
        }
    }

    fn left_alone(&self) -> String {
        format!("{} keeps what it was last given", self.name())
    }
}
