//! Deploy targets, one folder each, behind one contract in code.
//!
//! ## Design
//!
//! The contract is the [`Target`] trait; `ecs::Service`, `lambda::Function`,
//! `beanstalk::Environment`, `beanstalk::Swap` (a pair of environments and
//! a CNAME swap) and `trigger::Trigger` (EventBridge rules and Scheduler
//! schedules) implement it, and [`any::Any`] is the one place a
//! [`TargetPlan`] is matched to its implementation (as cargo-dist has one
//! enum and one module per installer). A trait rather than an enum of
//! functions, because the driver is one generic function over it: what
//! every target does alike is written once, in [`drive`] (and, for a
//! component with several targets, in [`together::drive_all`], which runs
//! each target through the same steps and adds the order and one verdict):
//!
//! - the one deadline (`wait-minutes`), cancellation and the pace, in the
//!   [`Waiter`] the driver builds from the plan's [`WatchPlan`] and hands to
//!   the target: every wait of every target is one look at a time through
//!   [`Waiter::until`], which owns the pauses and the tolerance of failed
//!   looks (the same rule everywhere, [`crate::wait`]);
//! - what proves a change forward before it is called done, for every
//!   target alike: `smoke-test-path` (`http_smoke`) and the CloudWatch
//!   `alarms`, watched through the waiter while the change is applied and
//!   for `bake-minutes` after it (`alarms`, a [`crate::wait::Stop`] like a
//!   deadline);
//! - the verdict ([`Verdict`]) and what it means: which result, whether to
//!   put back what served (`rollback`), the settle wait after a rollback
//!   (a waiter with the settle budget that a cancellation does not cut
//!   short), the last look at what serves, the "result ...; serves ..."
//!   line and [`DeployOutcome`].
//!
//! A target keeps what is its own: how it applies an image (ECS renders and
//! registers a revision and updates the service; Lambda updates the code,
//! publishes a version and moves the alias; Elastic Beanstalk uploads a
//! bundle and updates the environment), what one look sees, and how it puts
//! back what served. It says so through the same few functions with the
//! same shapes: [`Target::preflight`] (read-only, before anything is built),
//! [`Target::apply`] (change the target and follow the change to a
//! verdict), [`Target::put_back`] (what served before, serving again) and
//! [`Target::observe`] (one look at what serves now). A target's own pacing
//! (ECS looks less often while its tasks start) is a [`crate::wait::Tempo`]
//! its looks return to the driver's loop, not a second loop.
//!
//! Each target folder has the same files where they do the same job:
//! `mod.rs` (the contract), `preflight.rs`, `apply.rs` (the change and its
//! steps), `watch.rs` (the looks that follow it) and `rollback.rs`
//! (putting back what served).

pub mod alarms;
pub mod any;
pub mod beanstalk;
pub mod diff;
pub mod ecs;
mod http_smoke;
pub mod lambda;
pub mod references;
pub mod together;
pub mod trigger;

use std::time::Instant;

use crate::cancel::Cancel;
use crate::clock::Clock;
use crate::error::chain_message;
use crate::gha::Actions;
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::{ComponentPlan, TargetPlan, WatchPlan};
use crate::wait::{Pace, Stop, Stopped, Waiter, settle_deadline};

/// The AWS clients and the registry every target may use, built once at the edge.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub beanstalk: aws_sdk_elasticbeanstalk::Client,
    pub s3: aws_sdk_s3::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// The runtime configuration's references (checked, never read).
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub iam: aws_sdk_iam::Client,
    /// Rules and schedules that run the component's tasks (`targets:`).
    pub events: aws_sdk_eventbridge::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// The alarms a deploy watches (`alarms`).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The registry the images were pushed to (Lambda reads the pushed
    /// manifest before the function is touched); `None` where no image is
    /// read back.
    pub registry: Option<crate::image::registry::Client>,
}

impl Clients {
    /// Every client from one SDK config, each request a wait on AWS (timings).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        registry: Option<crate::image::registry::Client>,
    ) -> Clients {
        // Path-style S3 addressing where an endpoint is set (the sandbox's
        // moto serves no bucket subdomains); AWS's own endpoints take either.
        let path_style = sdk.endpoint_url().is_some();
        Clients {
            ecs: crate::aws_client!(aws_sdk_ecs, sdk),
            lambda: crate::aws_client!(aws_sdk_lambda, sdk),
            beanstalk: crate::aws_client!(aws_sdk_elasticbeanstalk, sdk),
            s3: crate::aws_client!(aws_sdk_s3, sdk, |b: aws_sdk_s3::config::Builder| b
                .force_path_style(path_style)),
            logs: crate::aws_client!(aws_sdk_cloudwatchlogs, sdk),
            elb: crate::aws_client!(aws_sdk_elasticloadbalancingv2, sdk),
            ssm: crate::aws_client!(aws_sdk_ssm, sdk),
            secrets: crate::aws_client!(aws_sdk_secretsmanager, sdk),
            iam: crate::aws_client!(aws_sdk_iam, sdk),
            events: crate::aws_client!(aws_sdk_eventbridge, sdk),
            scheduler: crate::aws_client!(aws_sdk_scheduler, sdk),
            cloudwatch: crate::aws_client!(aws_sdk_cloudwatch, sdk),
            registry,
        }
    }
}

/// What every deploy of a run shares: the clients, cancellation, the
/// Actions runtime, the time scale, and what identifies the run.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub clients: &'a Clients,
    pub cancel: &'a Cancel,
    pub actions: &'a Actions,
    pub clock: Clock,
    /// The commit deployed (Elastic Beanstalk version labels).
    pub commit: &'a str,
    /// `<repository>/<run id>/<attempt>` in Actions, `local/<commit>`
    /// elsewhere: one-off tasks' client tokens.
    pub run_key: &'a str,
    pub region: Option<&'a str>,
    /// `ignore-checks` (the ECS doctor's ids among them).
    pub ignore_checks: &'a [String],
}

/// The pushed image a deploy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `registry/repository@sha256:...`
    pub uri: String,
    pub repository: String,
    /// `sha256:...`
    pub digest: String,
    /// Compressed size as the registry stores it, when the build measured it
    /// (the ECS doctor paces each task's pull with it).
    pub bytes: Option<u64>,
}

impl Image {
    pub fn new(registry: &str, repository: &str, digest: &str, bytes: Option<u64>) -> Image {
        Image {
            uri: format!("{registry}/{repository}@{digest}"),
            repository: repository.to_string(),
            digest: digest.to_string(),
            bytes,
        }
    }

    /// `registry/repository@sha256:...` as an image; `None` for an image
    /// by tag (what a tag names may have moved).
    pub fn from_uri(uri: &str, bytes: Option<u64>) -> Option<Image> {
        let (name, digest) = uri.split_once('@')?;
        let (registry, repository) = name.split_once('/')?;
        digest
            .starts_with("sha256:")
            .then(|| Image::new(registry, repository, digest, bytes))
    }

    /// The digest's hex (Lambda's `CodeSha256` of an image function).
    pub fn digest_hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// What a read-only preflight found that the build must honour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The one platform the target runs, when it takes one image for it
    /// (Lambda: its architecture).
    pub platform: Option<Platform>,
    /// The runtime configuration with its references found (each secret's
    /// `valueFrom`), for the plan the deploy runs.
    pub config: Option<crate::settings::runtime::RuntimeConfig>,
    /// ECS: the task definition family rendered and its task execution
    /// role (which reads the secrets), checked once the references are found.
    pub execution_role: Option<(String, Option<String>)>,
    /// The platform the target runs on when it also takes an index (ECS:
    /// the task definition's `runtimePlatform`): the build is for it when
    /// `platforms` is not set, and `platforms` must include it.
    pub runs_on: Option<Platform>,
}

/// A platform a target runs on, in the build's words and the target's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux/arm64`
    pub platform: String,
    /// The target and what it calls it: `Lambda function thumbs runs on arm64`.
    pub why: String,
}

/// How one component's deploy ended, whatever its target.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployOutcome {
    pub result: RunResult,
    pub report: DeployReport,
    /// One line saying why, when it did not succeed.
    pub failure: Option<String>,
    /// The component's further targets (`targets:`), as each ended.
    pub also: Vec<DeployReport>,
}

/// How a target's change ended, as the target judges it. A wait that ended
/// early (deadline, cancellation, looks that kept failing) is no verdict:
/// it is a [`Stopped`] error, and the driver decides what it means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Our revision serves.
    Succeeded,
    /// Nothing needed changing: the target already serves this image.
    Unchanged,
    /// Refused before the target was touched.
    Refused(String),
    /// The platform put the previous revision back itself, and it serves
    /// (ECS's circuit breaker).
    RolledBack(String),
    /// Our change failed. `put_back`: what serves may still hold some of
    /// it, so the driver puts back what served (when `rollback` is on) and
    /// makes sure of what serves; otherwise it only says what serves.
    Failed { reason: String, put_back: bool },
}

/// Where putting back what served left the target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutBack {
    /// What serves is known to be what served before, everywhere (every
    /// task, every instance, the alias): a true rollback.
    pub settled: bool,
    /// What was done, or what is not known, in words.
    pub note: Option<String>,
}

/// One deploy under way: what every step of a target works with.
pub struct Deploy<'a> {
    pub cx: Context<'a>,
    /// Every wait goes through it: the deploy's one deadline while the
    /// change is applied, the settle budget while what served is put back.
    pub w: Waiter<'a>,
    /// What the deploy found and did, as the target learns it.
    pub report: DeployReport,
    /// What the component's other targets share with this one, when it
    /// has several (`targets:`): one registration per task definition
    /// family, and `before-deploy` that the others wait for.
    pub together: Option<&'a together::Together>,
}

impl<'a> Deploy<'a> {
    /// A deploy of `t` whose clock starts now.
    pub fn start<T: Target>(
        cx: &Context<'a>,
        t: &T,
        together: Option<&'a together::Together>,
    ) -> Deploy<'a> {
        let watch = t.watch();
        let pace = Pace::new(cx.clock, watch.poll_seconds, watch.wait_seconds as f64);
        Deploy {
            cx: *cx,
            w: Waiter::new(pace, cx.cancel, cx.actions),
            report: DeployReport {
                target: t.reference(),
                ..DeployReport::default()
            },
            together,
        }
    }

    /// Before the first step that changes the target: waits for the
    /// component's `before-deploy` when another target runs it. `Some`:
    /// it failed, and this target must not move (the reason).
    pub async fn ready(&mut self) -> anyhow::Result<Option<String>> {
        match self.together {
            Some(t) => t.ready(&mut self.w).await,
            None => Ok(None),
        }
    }
}

/// What a deploy puts in service: the motion, for the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An image (`deploy`: the one this run built; `promote`: the one
    /// another environment serves).
    Image(Image),
    /// A revision the target served before (`rollback`), put back as it was.
    Revision(Revision),
    /// `rollback` of a component with several targets: each target's own
    /// revision, in the order the targets are declared.
    Revisions(Vec<Revision>),
}

impl Change {
    /// The image it puts in service, when known.
    pub fn image(&self) -> Option<&Image> {
        match self {
            Change::Image(i) => Some(i),
            Change::Revision(r) => r.image.as_ref(),
            Change::Revisions(r) => r.first().and_then(|r| r.image.as_ref()),
        }
    }
}

/// A revision a target served, as `rollback` finds it (read-only).
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The target's own name for it: a task definition ARN, a Lambda
    /// version number, an Elastic Beanstalk version label.
    pub id: String,
    /// The image it runs, when the target says.
    pub image: Option<Image>,
    /// How it was found, in words ("served before the service deployment
    /// of web:7 replaced it").
    pub found: String,
    /// What the user should know before it serves again (a one-off task
    /// ran on a newer revision: the schema may be ahead of this code).
    pub warning: Option<String>,
}

/// How a sentence about what serves is said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// What serves now.
    Now,
    /// What served before still serves: the change never reached it.
    Still,
    /// What served before serves again: fastdeploy put it back.
    Again,
}

/// The contract every deploy target implements. The driver calls
/// [`Target::prepare`] before the deploy's clock starts, then
/// [`Target::apply`], then (when the verdict asks for it)
/// [`Target::put_back`], then [`Target::observe`] and [`Target::finish`].
// Driven in place by `drive` (never spawned), so the futures need no `Send`
// bound: native `async fn` in the trait is enough.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// The target as the reports name it.
    fn reference(&self) -> TargetRef;

    /// How long, how often, and whether to roll back.
    fn watch(&self) -> &WatchPlan;

    /// Read-only, before anything is built: what the user can fix is
    /// [`crate::error::BadInput`] (exit 2).
    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found>;

    /// Before the deploy's clock starts (the ECS doctor reads what paces
    /// the rollout); its time is not the deploy's.
    async fn prepare(&mut self, _cx: &Context<'_>, _change: &Change) {}

    /// Changes the target to the image and follows the change to a
    /// verdict, every wait a look through `d.w`. Sets what served before
    /// (`previous_revision`), what this deploy made (`revision`) and what
    /// serves as it learns it.
    async fn apply(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict>;

    /// `rollback`, read-only: what served before the most recent deploy,
    /// as the target's own history says (or `to`, checked to be one of
    /// its revisions). What is not there is [`crate::error::BadInput`].
    async fn earlier(&self, cx: &Context<'_>, to: Option<&str>) -> anyhow::Result<Revision>;

    /// Puts `rev` back in service and follows it to a verdict, as
    /// [`Target::apply`] does an image.
    async fn restore(&mut self, d: &mut Deploy<'_>, rev: &Revision) -> anyhow::Result<Verdict>;

    /// `promote`, read-only: the image this target serves now, by digest,
    /// read from the target (not from a tag that may have moved).
    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image>;

    /// Whether what serves may hold something of this deploy (after a stop
    /// or an error, the driver puts back what served only then).
    fn changed(&self) -> bool;

    /// Makes what served before serve again, within `d.w` (now the settle
    /// budget); with `act` false (`rollback` is off) only looks at what
    /// serves and says what it would have done.
    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack;

    /// One look at what serves now: `serving_revision`, and
    /// `serving_detail` with counts where the target can count.
    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport);

    /// `revision` serving, in words: "alias live serves thumbs:3".
    fn serves(&self, revision: Option<&str>, how: Serves) -> String;

    /// What goes on without fastdeploy when it stops watching and
    /// `rollback` is off: "ECS keeps deploying".
    fn left_alone(&self) -> String;

    /// After the verdict and the deploy's clock: evidence for a failure,
    /// clean-up after a success, where the time went.
    async fn finish(&mut self, _d: &mut Deploy<'_>, _result: RunResult) {}
}

/// Checks the component's targets before anything is built: each target
/// itself, then the references of its runtime configuration (found by
/// ARN) and, for ECS, that each task execution role may read them.
pub async fn preflight(cx: &Context<'_>, component: &ComponentPlan) -> anyhow::Result<Found> {
    let mut found = Vec::new();
    for plan in component.targets() {
        found.push((plan, any::Any::new(plan, component).preflight(cx).await?));
    }
    let Some((first, _)) = found.first() else {
        return Ok(Found::default());
    };
    if let Some(plan) = &first.watch().alarms {
        alarms::check(cx, plan).await?;
    }
    let config = references::resolve(cx, &component.name, first.config()).await?;
    for (plan, f) in &found {
        if let Some((family, role)) = &f.execution_role {
            let who = plan.describe();
            references::execution_role_reads(cx, &who, family, role.as_deref(), &config).await?;
        }
    }
    let platform = together::one_platform(&component.name, found.iter().map(|(_, f)| f))?;
    // Services on different architectures need `platforms` naming both;
    // the first one's is the default.
    let runs_on = found.iter().find_map(|(_, f)| f.runs_on.clone());
    Ok(Found {
        platform,
        config: Some(config),
        execution_role: None,
        runs_on,
    })
}

/// `rollback`'s revision for each of the component's targets (read-only),
/// in the order declared.
pub async fn earlier(
    cx: &Context<'_>,
    component: &ComponentPlan,
    to: Option<&str>,
) -> anyhow::Result<Vec<Revision>> {
    together::earlier(cx, component, to).await
}

/// `promote`'s image: what `target` (the source environment's) serves now.
pub async fn serving_image(
    cx: &Context<'_>,
    component: &ComponentPlan,
    target: &TargetPlan,
) -> anyhow::Result<Image> {
    any::Any::new(target, component).serving_image(cx).await
}

/// Puts `change` in service on the component's targets and follows it to a
/// verdict. `None` when the component has no target. Never returns without
/// saying what serves.
pub async fn deploy(
    cx: &Context<'_>,
    component: &ComponentPlan,
    change: &Change,
) -> Option<DeployOutcome> {
    // Every line of a component's deploy starts with its name, as its
    // build's do: several deploy side by side in one log group.
    let actions = cx.actions.prefixed(&format!("[{}] ", component.name));
    let cx = &Context {
        actions: &actions,
        ..*cx
    };
    let first = component.deploy.as_ref()?;
    Some(if component.also.is_empty() {
        drive(cx, &mut any::Any::new(first, component), change).await
    } else {
        together::drive_all(cx, component, change).await
    })
}

/// The one driver: apply (or restore), judge, put back when asked, look at
/// what serves, say it.
pub async fn drive<T: Target>(cx: &Context<'_>, t: &mut T, change: &Change) -> DeployOutcome {
    t.prepare(cx, change).await;
    let started = Instant::now();
    let mut d = Deploy::start(cx, t, None);
    let applied = run(t, &mut d, change).await;
    let (result, failure) = judge(t, &mut d, applied).await;
    close(t, d, result, failure, started).await
}

/// Applies the image, or restores the revision, to a verdict.
pub(crate) async fn run<T: Target>(
    t: &mut T,
    d: &mut Deploy<'_>,
    change: &Change,
) -> anyhow::Result<Verdict> {
    match change {
        Change::Image(image) => {
            // Alarms watch a change going forward, not a revision put back.
            let watch = alarms::start(t, d).await;
            let applied = t.apply(d, image).await;
            let applied = http_smoke::gate(t, d, applied).await;
            let applied = alarms::bake(t, d, applied).await;
            d.w.watching(None);
            drop(watch);
            applied
        }
        Change::Revision(rev) => {
            if let Some(w) = &rev.warning {
                d.cx.actions.warning(w, &Default::default());
            }
            t.restore(d, rev).await
        }
        Change::Revisions(_) => anyhow::bail!("several revisions for one target"),
    }
}

/// After the verdict: one last look at what serves, the target's finish,
/// and the "result ...; serving ..." line.
pub(crate) async fn close<T: Target>(
    t: &mut T,
    mut d: Deploy<'_>,
    result: RunResult,
    failure: Option<String>,
    started: Instant,
) -> DeployOutcome {
    let cx = d.cx;
    // What serves is what runs: one last look, whatever the verdict said,
    // unless the look that judged success showed it with its counts.
    if !(result == RunResult::Success && d.report.serving_detail.is_some()) {
        t.observe(&cx, &mut d.report).await;
    }
    d.report.seconds = Some(started.elapsed().as_secs_f64());
    d.report.result = Some(result);
    t.finish(&mut d, result).await;
    let serving = match &d.report.serving_detail {
        Some(detail) => format!("serving {detail}"),
        None => t.serves(d.report.serving_revision.as_deref(), Serves::Now),
    };
    let say = |line: &str| cx.actions.line(line);
    say(&format!("result: {}; {serving}", result.as_str()));
    if let Some(f) = &failure {
        say(f);
    }
    DeployOutcome {
        result,
        report: d.report,
        failure,
        also: Vec::new(),
    }
}

/// What ended a change that did not succeed, as the driver weighs it.
pub(crate) struct Failing {
    pub why: String,
    /// What serves may hold some of the change.
    pub put_back: bool,
    /// A wait ended it (deadline, cancellation, looks that kept failing).
    pub stop: Option<Stop>,
}

/// Turns what `apply` returned into a result and a failure line, putting
/// back what served when the verdict and `rollback` ask for it.
pub(crate) async fn judge<T: Target>(
    t: &mut T,
    d: &mut Deploy<'_>,
    applied: anyhow::Result<Verdict>,
) -> (RunResult, Option<String>) {
    let wait_seconds = t.watch().wait_seconds;
    let previous = d.report.previous_revision.clone();
    let failing = match applied {
        Ok(Verdict::Succeeded) => return (RunResult::Success, None),
        Ok(Verdict::Unchanged) => {
            d.report.unchanged = true;
            return (RunResult::Skipped, None);
        }
        Ok(Verdict::Refused(why)) => {
            d.report.evidence.push(why.clone());
            let serves = t.serves(previous.as_deref(), Serves::Still);
            return (
                RunResult::Failure,
                Some(format!("{why}; nothing was changed: {serves}")),
            );
        }
        Ok(Verdict::RolledBack(why)) => {
            let serves = t.serves(d.report.serving_revision.as_deref(), Serves::Again);
            return (RunResult::RolledBack, Some(format!("{why}; {serves}")));
        }
        Ok(Verdict::Failed { reason, put_back }) => Failing {
            why: reason,
            put_back,
            stop: None,
        },
        Err(e) => {
            let stop = Stopped::find(&e).map(|s| s.stop.clone());
            let why = match Stopped::find(&e) {
                Some(s) => s.stop.explain(wait_seconds, &s.doing),
                None => chain_message(&e),
            };
            if !t.changed() {
                let serves = t.serves(previous.as_deref(), Serves::Still);
                return (
                    RunResult::Failure,
                    Some(format!("{why}; nothing was changed: {serves}")),
                );
            }
            Failing {
                why,
                put_back: true,
                stop,
            }
        }
    };
    settle(t, d, failing).await
}

/// A change that did not succeed: what serves, made sure of (and put back
/// when `rollback` is on and the change may have reached it).
pub(crate) async fn settle<T: Target>(
    t: &mut T,
    d: &mut Deploy<'_>,
    f: Failing,
) -> (RunResult, Option<String>) {
    let previous = d.report.previous_revision.clone();
    let still = |serving: &Option<String>| {
        if serving.is_some() && *serving == previous {
            Serves::Still
        } else {
            Serves::Now
        }
    };
    let why = f.why;
    let act = t.watch().rollback;
    // An alarm is a verdict on the change, not a wait cut short: with
    // `rollback` off it is said as a failure, not as "left alone".
    let alarm = matches!(f.stop, Some(Stop::Alarm { .. }));
    if !f.put_back || (f.stop.is_some() && !act) {
        t.observe(&d.cx, &mut d.report).await;
        let serving = d.report.serving_revision.clone();
        let serves = t.serves(serving.as_deref(), still(&serving));
        let line = match f.stop {
            Some(_) if !alarm => format!(
                "{why} and `rollback` is off; {}; last seen: {serves}",
                t.left_alone()
            ),
            _ => format!("{why}; {serves}"),
        };
        return (RunResult::Failure, Some(line));
    }
    if act {
        d.cx.actions.line(&format!("{why}: rolling back"));
    }
    let cancelled = f.stop == Some(Stop::Cancelled);
    d.w = d.w.settling(settle_deadline(d.cx.clock, cancelled));
    let back = t.put_back(d, act).await;
    let serving = d.report.serving_revision.clone();
    let rolled_back = back.settled && previous.is_some() && serving == previous;
    // What serves is said only when the target is sure of it; else its note
    // says what is known.
    let how = match (rolled_back, act) {
        (true, true) => Serves::Again,
        (true, false) => Serves::Still,
        (false, _) => Serves::Now,
    };
    let serves = back.settled.then(|| t.serves(serving.as_deref(), how));
    let head = match (act, rolled_back) {
        (true, true) => Some("fastdeploy rolled back"),
        (true, false) if f.stop.is_some() => Some("fastdeploy's rollback did not finish"),
        _ => None,
    };
    let mut line = why;
    match (head, serves) {
        (Some(h), Some(s)) => line.push_str(&format!("; {h}: {s}")),
        (Some(h), None) => line.push_str(&format!("; {h}")),
        (None, Some(s)) => line.push_str(&format!("; {s}")),
        (None, None) => {}
    }
    if let Some(note) = &back.note {
        line.push_str(&format!("; {note}"));
    }
    (
        if rolled_back {
            RunResult::RolledBack
        } else {
            RunResult::Failure
        },
        Some(line),
    )
}
