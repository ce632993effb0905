//! Amazon ECS: render the task definition by digest, update the service,
//! follow our own deployment to a verdict, roll back.
//!
//! - `preflight`: the cluster and service exist and are ACTIVE, the service
//!   is deployed by ECS itself, the containers to update exist.
//! - `apply`: render, register (once), the one-off task (`task`), UpdateService.
//! - `watch`: following the deployment this run started, events and counts
//!   as they happen.
//! - `rollback`: StopServiceDeployment(ROLLBACK), or UpdateService back.
//! - `restore`: the rollback motion: the revision before the last deploy,
//!   from ECS's deployment history, put back.
//! - `cleanup`: old revisions deregistered (`keep-revisions`).
//! - `doctor`: before the rollout, what paces it and its estimate;
//!   `timeline`: after it, where the deploy's time went, phase by phase.
//! - `render`, `wire`: the RegisterTaskDefinition input as ECS's JSON.

mod apply;
mod cleanup;
pub mod diff;
pub mod doctor;
mod preflight;
pub mod render;
mod restore;
mod rollback;
pub mod task;
mod test_traffic;
pub mod timeline;
pub mod watch;
pub mod wire;

use std::time::SystemTime;

use crate::deploy::{
    Change, Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict,
};
use crate::error::chain_message;
use crate::outcome::{
    DeployReport, DoctorReport, RolloutEstimate, RunResult, TargetRef, revision_label,
};
use crate::plan::{EcsPlan, WatchPlan};

pub use apply::deployment_configuration;
pub(crate) use apply::revision_of;
pub use preflight::{LiveService, check, one_image};

/// An ECS service, as one deploy changes it.
pub struct Service<'p> {
    plan: &'p EcsPlan,
    /// Our deployment, once UpdateService was accepted (or an unfinished
    /// one of ours is followed): what a rollback stops.
    ours: Option<watch::Ours>,
    /// The family rendered, and the revision that served before.
    family: Option<String>,
    current: Option<String>,
    /// What the doctor read before the rollout.
    doctor: Option<DoctorReport>,
    /// When the deploy's clock started (the timeline splits from there).
    started: Option<SystemTime>,
    /// The service as read just before the deploy (the doctor reads it,
    /// then the change starts from it): one read, not two.
    live: Option<LiveService>,
    /// The service as the look that judged the rollout saw it.
    seen: Option<aws_sdk_ecs::types::Service>,
    /// Our deployment completed (another target of the component may still
    /// ask for it to be put back): ECS stops no completed deployment.
    completed: bool,
    /// The plan's watch; without `smoke-test-path` once the smoke test
    /// runs on the test listener instead (`test`).
    watch: WatchPlan,
    /// `smoke-test-path` through the service's test listener (blue/green).
    test: Option<(test_traffic::TestListener, crate::plan::HttpSmoke)>,
}

impl<'p> Service<'p> {
    pub fn new(plan: &'p EcsPlan) -> Service<'p> {
        Service {
            plan,
            ours: None,
            family: None,
            current: None,
            doctor: None,
            started: None,
            live: None,
            seen: None,
            completed: false,
            watch: plan.watch.clone(),
            test: None,
        }
    }

    /// With `smoke-test-path`, the service's test listener when it has one
    /// (the smoke test runs there, before the deploy is done, instead of
    /// at `environment-url` after it); bad input when it has none and no
    /// `environment-url` was given.
    async fn test_listener(&mut self, cx: &Context<'_>, live: &LiveService) -> anyhow::Result<()> {
        let Some(smoke) = self.plan.watch.smoke.clone() else {
            return Ok(());
        };
        match test_traffic::find(cx, &live.service).await? {
            Some(test) => {
                self.watch.smoke = None;
                self.test = Some((test, smoke));
            }
            None if smoke.base.is_none() => {
                return Err(crate::error::BadInput::other(format!(
                    "`smoke-test-path` is set for ECS service {}, but there is no URL to reach: set `environment-url` (or `environments.<env>.url` in the config), or give the service a test listener (deployment strategy BLUE_GREEN with a `testListenerRule`)",
                    self.plan.service
                ))
                .into());
            }
            None => {}
        }
        Ok(())
    }

    /// The budget of the component's `before-deploy`, when this service runs it.
    pub fn before_deploy_seconds(&self) -> Option<u64> {
        self.plan.before_deploy.as_ref().map(|b| b.wait_seconds)
    }

    fn say(&self, cx: &Context<'_>, line: &str) {
        cx.actions.line(line);
    }

    /// The service as `prepare` read it, else read now (a read that failed
    /// there is made again, to fail with its own error).
    async fn live(&mut self, cx: &Context<'_>) -> anyhow::Result<LiveService> {
        match self.live.take() {
            Some(live) => Ok(live),
            None => check(&cx.clients.ecs, self.plan).await,
        }
    }

    /// After a rollout that did not succeed: its stopped tasks as evidence.
    async fn evidence(&self, cx: &Context<'_>, report: &mut DeployReport) {
        let Some(ours) = &self.ours else { return };
        let plan = self.plan;
        report.evidence =
            watch::stopped_tasks(cx, &plan.cluster, &plan.service, &ours.task_definition).await;
        for t in &report.evidence {
            self.say(cx, &format!("stopped task {t}"));
        }
    }

    /// After a success: revisions beyond `keep-revisions` deregistered.
    async fn clean_up(&self, cx: &Context<'_>, report: &DeployReport) {
        let (Some(keep), Some(family)) = (self.plan.keep_revisions, &self.family) else {
            return;
        };
        let protect: Vec<&str> = [report.revision.as_deref(), self.current.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if let Err(e) = cleanup::deregister_old(cx, family, keep, &protect).await {
            let message = format!("revision clean-up failed: {}", chain_message(&e));
            cx.actions.warning(&message, &Default::default());
        }
    }

    /// The doctor's notices (a deploy that rolled something out), and the
    /// timeline of a rollout that completed.
    async fn account(&mut self, cx: &Context<'_>, result: RunResult, report: &mut DeployReport) {
        let Some(doctor) = self.doctor.take() else {
            return;
        };
        // A deploy that changes nothing rolls nothing out: what the settings
        // would cost is no notice for it.
        if report.unchanged {
            return;
        }
        doctor::notify(self.plan, &doctor, cx.actions);
        // The timeline reads its phases from the events of a rollout that
        // completed (healthy, then draining the old tasks); a failed or
        // rolled back one has its own events, which it would misread.
        if result != RunResult::Success {
            self.say(cx, &format!(
                "no timeline: the rollout did not complete ({}); the timeline reads completed rollouts",
                result.as_str()
            ));
        } else if let Some(started) = self.started {
            // Beside the measured phases the estimate runs at the deploy's
            // pace: real seconds in production, the sandbox's in tests.
            let scaled = doctor.estimate.as_ref().map(|e| scale(e, cx.clock.scale()));
            report.timeline = timeline::read(
                &cx.clients.ecs,
                self.plan,
                report,
                self.seen.as_ref(),
                started,
                scaled.as_ref(),
                cx.actions,
            )
            .await;
            if let Some(t) = &report.timeline {
                self.say(cx, &t.line());
            }
        }
        report.doctor = Some(doctor);
    }
}

fn scale(e: &RolloutEstimate, by: f64) -> RolloutEstimate {
    RolloutEstimate {
        seconds: e.seconds * by,
        batches: e.batches,
        pull: e.pull * by,
        start_to_healthy: e.start_to_healthy * by,
        draining: e.draining * by,
        waiting: e.waiting * by,
    }
}

impl Target for Service<'_> {
    fn reference(&self) -> TargetRef {
        TargetRef::Ecs {
            cluster: self.plan.cluster.clone(),
            service: self.plan.service.clone(),
        }
    }

    fn watch(&self) -> &WatchPlan {
        &self.watch
    }

    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        let live = check(&cx.clients.ecs, self.plan).await?;
        Service::new(self.plan).test_listener(cx, &live).await?;
        let family = render::family(&live.base).to_string();
        let role = live.base.get("executionRoleArn").and_then(|r| r.as_str());
        let arch = live.base["runtimePlatform"]["cpuArchitecture"].as_str();
        let runs_on = arch.map(|a| crate::deploy::Platform {
            platform: if a == "ARM64" {
                "linux/arm64"
            } else {
                "linux/amd64"
            }
            .to_string(),
            why: format!("ECS task definition family {family} runs on {a} (runtimePlatform)"),
        });
        Ok(Found {
            execution_role: Some((family, role.map(str::to_string))),
            runs_on,
            ..Found::default()
        })
    }

    /// The doctor reads what paces the rollout; its own time is not the
    /// deploy's, and a cancellation ends it.
    async fn prepare(&mut self, cx: &Context<'_>, change: &Change) {
        let bytes = change.image().and_then(|i| i.bytes);
        self.live = tokio::select! {
            live = check(&cx.clients.ecs, self.plan) => live.ok(),
            _ = cx.cancel.cancelled() => None,
        };
        let live = self.live.as_ref();
        self.doctor = Some(tokio::select! {
            d = doctor::assess(cx, self.plan, bytes, live) => d,
            _ = cx.cancel.cancelled() => DoctorReport {
                notes: vec!["cancelled before the doctor finished".into()],
                ..DoctorReport::default()
            },
        });
        self.started = Some(SystemTime::now());
    }

    async fn apply(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict> {
        apply::apply(self, d, image).await
    }

    async fn earlier(&self, cx: &Context<'_>, to: Option<&str>) -> anyhow::Result<Revision> {
        restore::earlier(self, cx, to).await
    }

    async fn restore(&mut self, d: &mut Deploy<'_>, rev: &Revision) -> anyhow::Result<Verdict> {
        restore::restore(self, d, rev).await
    }

    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image> {
        preflight::serving_image(cx, self.plan).await
    }

    fn changed(&self) -> bool {
        self.ours.is_some()
    }

    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        match (&self.ours, act) {
            (Some(ours), true) => rollback::put_back(d, ours, self.completed).await,
            _ => PutBack::default(),
        }
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        let plan = self.plan;
        let described = cx
            .clients
            .ecs
            .describe_services()
            .cluster(&plan.cluster)
            .services(&plan.service)
            .send()
            .await;
        if let Ok(out) = described
            && let Some(service) = out.services().first()
        {
            report.serving_revision = watch::serving(service).or(report.serving_revision.take());
            report.serving_detail = Some(watch::running_text(service));
        }
    }

    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        let runs = match how {
            Serves::Now => "runs",
            Serves::Still => "still runs",
            Serves::Again => "is back on",
        };
        match revision {
            Some(r) => format!("service {} {runs} {}", self.plan.service, revision_label(r)),
            None => format!(
                "what service {} runs is unknown (ECS did not answer)",
                self.plan.service
            ),
        }
    }

    fn left_alone(&self) -> String {
        "ECS keeps deploying".into()
    }

    async fn finish(&mut self, d: &mut Deploy<'_>, result: RunResult) {
        let (cx, report) = (&d.cx, &mut d.report);
        if result == RunResult::Success {
            self.clean_up(cx, report).await;
        } else {
            self.evidence(cx, report).await;
        }
        self.account(cx, result, report).await;
    }
}
