//! AWS Elastic Beanstalk, Docker platform: an application version (a
//! `Dockerrun.aws.json` naming the pushed image by digest, or the build
//! context) deployed to an environment with `UpdateEnvironment`, followed
//! through EB's own events to a verdict that checks what serves.
//!
//! EB accepts an update long before it has tried it, reports failures in
//! events (not in the call's answer), puts the previous version label back
//! when a deployment fails, and can end an update Ready and Green without our
//! version (a reverted configuration). So the verdict reads the events of our
//! own request (its `RequestId`, as the EB CLI does), fails at once on EB's
//! failure texts, and succeeds only when the environment is Ready on our
//! label and its health is Green (or Yellow with `allow-yellow`) within a
//! bounded window. One deadline (`wait-minutes`) covers all of it.
//!
//! - `preflight`: the bundle's local checks (nothing is read from S3 or
//!   uploaded), then the application and environment: they exist, the
//!   environment runs a Docker platform and is not terminated.
//! - `apply`: bundle → S3 (content-addressed, so a re-run uploads nothing)
//!   → application version (processed) → Ready → update → our request's
//!   events → Ready on our label → health.
//! - `watch`: the looks those waits make (the environment, its events, its
//!   health).
//! - `rollback`: abort an update that still runs and make sure the previous
//!   label serves on every instance, deploying it again when needed.
//! - `cleanup`: old versions and their bundles deleted after a success
//!   (`keep-revisions`).
//! - `restore`: the rollback motion: the version that ran before (each
//!   deploy records it on its version), deployed again.
//! - `swap`: `strategy: swap`, the idle one of two environments deployed
//!   as above, then the CNAMEs swapped (a target of its own, over this one).
//! - `bundle`, `events`: what the bundle holds, and what EB's events mean.

mod apply;
pub mod bundle;
mod cleanup;
pub mod events;
mod preflight;
pub mod properties;
mod restore;
mod rollback;
mod swap;
mod watch;

use crate::deploy::{Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict};
use crate::error::chain_message;
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::{BeanstalkPlan, ComponentPlan, WatchPlan};

pub use preflight::ports;
pub use swap::Swap;

/// An Elastic Beanstalk environment, as one deploy changes it.
pub struct Environment<'p> {
    /// The plan, or (one of a swap's pair) a copy naming that environment.
    plan: std::borrow::Cow<'p, BeanstalkPlan>,
    /// The component whose bundle is deployed (its build context and Dockerfile).
    component: &'p ComponentPlan,
    seen: events::Seen,
    /// Our version label, once known.
    label: Option<String>,
    /// The last waiting line shown, so each shows once.
    shown: Option<String>,
    /// Shortly before the last UpdateEnvironment.
    since: Option<aws_smithy_types::DateTime>,
    /// UpdateEnvironment to our label was accepted.
    updated: bool,
    /// EB failed our update and reverts it itself: putting back waits for
    /// EB, it does not abort EB's own revert.
    failed_by_eb: bool,
    /// The environment properties as they were, when this deploy changed them.
    properties_before: Option<properties::Change>,
}

impl<'p> Environment<'p> {
    pub fn new(plan: &'p BeanstalkPlan, component: &'p ComponentPlan) -> Environment<'p> {
        Environment::of(std::borrow::Cow::Borrowed(plan), component)
    }

    /// Environment `name` of a swap's pair, deployed as `plan` says.
    pub fn one_of(
        plan: &BeanstalkPlan,
        name: &str,
        component: &'p ComponentPlan,
    ) -> Environment<'p> {
        let plan = BeanstalkPlan {
            environment: name.to_string(),
            swap: None,
            ..plan.clone()
        };
        Environment::of(std::borrow::Cow::Owned(plan), component)
    }

    fn of(
        plan: std::borrow::Cow<'p, BeanstalkPlan>,
        component: &'p ComponentPlan,
    ) -> Environment<'p> {
        Environment {
            plan,
            component,
            seen: events::Seen::default(),
            label: None,
            shown: None,
            since: None,
            updated: false,
            failed_by_eb: false,
            properties_before: None,
        }
    }

    fn env(&self) -> &str {
        &self.plan.environment
    }

    fn app(&self) -> &str {
        &self.plan.application
    }

    fn say(&self, cx: &Context<'_>, line: &str) {
        cx.actions.line(line);
    }

    /// Sends UpdateEnvironment to `label`; the environment's events from a
    /// few seconds before it (clocks differ) are the ones that tell how it goes.
    async fn update_to(
        &mut self,
        cx: &Context<'_>,
        label: &str,
    ) -> Result<
        aws_sdk_elasticbeanstalk::operation::update_environment::UpdateEnvironmentOutput,
        aws_sdk_elasticbeanstalk::error::SdkError<
            aws_sdk_elasticbeanstalk::operation::update_environment::UpdateEnvironmentError,
        >,
    > {
        self.since = Some(aws_smithy_types::DateTime::from(
            std::time::SystemTime::now() - std::time::Duration::from_secs(5),
        ));
        cx.clients
            .beanstalk
            .update_environment()
            .application_name(self.app())
            .environment_name(self.env())
            .version_label(label)
            .send()
            .await
    }

    /// Says `line` unless it was the last one said this way.
    fn say_once(&mut self, cx: &Context<'_>, line: String) {
        if self.shown.as_deref() != Some(line.as_str()) {
            self.say(cx, &line);
            self.shown = Some(line);
        }
    }
}

impl Target for Environment<'_> {
    fn reference(&self) -> TargetRef {
        TargetRef::Beanstalk {
            application: self.plan.application.clone(),
            environment: self.plan.environment.clone(),
        }
    }

    fn watch(&self) -> &WatchPlan {
        &self.plan.watch
    }

    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        preflight::contents(&self.plan, self.component, None)?;
        preflight::environment(&cx.clients.beanstalk, &self.plan).await?;
        Ok(Found::default())
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
        restore::serving_image(self, cx).await
    }

    fn changed(&self) -> bool {
        self.updated
    }

    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        rollback::put_back(self, d, act).await
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        if let Ok(env) = watch::describe(self, cx).await {
            report.serving_revision = env.version_label().map(str::to_string);
        }
    }

    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        let (still, again) = match how {
            Serves::Now => ("", ""),
            Serves::Still => ("still ", ""),
            Serves::Again => ("", " again"),
        };
        match revision {
            Some(l) => format!(
                "environment {} {still}serves version {l}{again}",
                self.env()
            ),
            None => format!(
                "environment {} serves no application version of its own (EB's sample application)",
                self.env()
            ),
        }
    }

    fn left_alone(&self) -> String {
        "EB goes on with the update".into()
    }

    /// After a success: versions beyond `keep-revisions` deleted.
    async fn finish(&mut self, d: &mut Deploy<'_>, result: RunResult) {
        let Some(keep) = self
            .plan
            .keep_revisions
            .filter(|_| result == RunResult::Success)
        else {
            return;
        };
        let protect: Vec<String> = [&d.report.serving_revision, &d.report.previous_revision]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Err(e) = cleanup::delete_old(self, &d.cx, keep, &protect).await {
            let message = format!("version clean-up failed: {}", chain_message(&e));
            d.cx.actions.warning(&message, &Default::default());
        }
    }
}

/// UpdateEnvironment's "Environment named X is in an invalid state for this
/// operation. Must be Ready.": someone else's update started meanwhile.
fn is_not_ready<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> bool {
    e.message()
        .is_some_and(|m| m.contains("invalid state for this operation"))
}
