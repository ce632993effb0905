//! AWS Lambda, container-image functions: update the code by digest, wait
//! until Lambda has applied it, publish a version, move the alias.
//!
//! The verdict is Lambda's own state, not the acceptance of a call:
//! `UpdateFunctionCode` only starts an update (`LastUpdateStatus`
//! `InProgress`; `ImageAccessDenied`, `InvalidImage` and the like surface
//! later as `Failed`), and a published version of an image function is
//! `Pending` until Lambda has optimised it. What serves is what the alias
//! points at, so the alias moves last, only to an `Active` version whose
//! code is ours; until then the previous version keeps serving, and that is
//! what a rollback restores (and `$LATEST` with it).
//!
//! - `preflight`: the function exists, is an Image function, and which
//!   architecture (so the build makes one platform for it).
//! - `apply`: the pushed image checked first (one manifest, the function's
//!   architecture), then update → applied → publish → active → alias.
//! - `watch`: the looks those waits make (`GetFunctionConfiguration`,
//!   `GetAlias`).
//! - `rollback`: `$LATEST` set back to the previous version's image.
//! - `cleanup`: old versions deleted after a success (`keep-revisions`).
//! - `restore`: the rollback motion: the alias moved back to the version it
//!   pointed at before (each published version records it).

mod apply;
mod cleanup;
mod environment;
mod preflight;
mod restore;
mod rollback;
mod shift;
mod smoke;
mod watch;

use crate::deploy::{Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict};
use crate::error::BadInput;
use crate::error::chain_message;
use crate::outcome::{DeployReport, RunResult, TargetRef, revision_label};
use crate::plan::{LambdaPlan, WatchPlan};

pub use preflight::platform_for;

/// A Lambda function and alias, as one deploy changes them.
pub struct Function<'p> {
    plan: &'p LambdaPlan,
    /// The unqualified function ARN, once preflight has read it.
    arn: Option<String>,
    /// UpdateFunctionCode was accepted: `$LATEST` holds our code, whatever
    /// ends the deploy afterwards.
    latest_changed: bool,
    /// The alias was moved back to the version before (another target of
    /// the component failed after it moved).
    moved_back: bool,
    /// The last waiting line shown, so each change shows once.
    shown: Option<String>,
    /// `lambda-shift` routed a share of the alias to our version: putting
    /// back clears the routing.
    shifting: bool,
}

impl<'p> Function<'p> {
    pub fn new(plan: &'p LambdaPlan) -> Function<'p> {
        Function {
            plan,
            arn: None,
            latest_changed: false,
            moved_back: false,
            shown: None,
            shifting: false,
        }
    }

    fn name(&self) -> &str {
        &self.plan.function
    }

    fn say(&self, cx: &Context<'_>, line: &str) {
        cx.actions.line(line);
    }

    /// Says `line` unless it was the last one said this way; keeps it as an
    /// event of the deploy when `report` is given.
    fn say_once(&mut self, cx: &Context<'_>, line: String, report: Option<&mut DeployReport>) {
        if self.shown.as_deref() != Some(line.as_str()) {
            self.say(cx, &line);
            if let Some(r) = report {
                r.events.push(line.clone());
            }
            self.shown = Some(line);
        }
    }

    /// `arn:...:function:name:7` for a version number.
    fn version_arn(&self, version: &str) -> String {
        format!("{}:{version}", self.arn.as_deref().unwrap_or(self.name()))
    }
}

impl Target for Function<'_> {
    fn reference(&self) -> TargetRef {
        TargetRef::Lambda {
            function: self.plan.function.clone(),
            alias: self.plan.alias.clone(),
        }
    }

    fn watch(&self) -> &WatchPlan {
        &self.plan.watch
    }

    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        let found = preflight::check(&cx.clients.lambda, self.plan).await?;
        Ok(found.into())
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

    /// The image of the version the alias serves, by digest.
    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image> {
        let (name, alias) = (self.name(), &self.plan.alias);
        let Some(now) = watch::alias(self, cx).await? else {
            return Err(BadInput::other(format!(
                "alias {alias} of Lambda function {name} does not exist: nothing of it to promote"
            ))
            .into());
        };
        restore::resolved_image(self, cx, &now.version).await?.ok_or_else(|| {
            BadInput::other(format!(
                "version {} of Lambda function {name} (alias {alias}) names no image by digest: nothing to promote",
                now.version
            ))
            .into()
        })
    }

    fn changed(&self) -> bool {
        self.latest_changed
    }

    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        rollback::put_back(self, d, act).await
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        if let Ok(alias) = watch::alias(self, cx).await {
            report.serving_revision = alias.map(|a| self.version_arn(&a.version));
        }
    }

    /// The alias only ever moves to a version that is ready, so what
    /// served before is never put back: it still serves.
    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        let alias = &self.plan.alias;
        let (still, again) = match how {
            Serves::Now => ("", ""),
            Serves::Again if self.moved_back => ("", " again"),
            _ => ("still ", ""),
        };
        match revision {
            Some(r) => format!("alias {alias} {still}serves {}{again}", revision_label(r)),
            None => format!(
                "alias {alias} serves no version (it does not exist, or Lambda did not say)"
            ),
        }
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
        let version = |r: &Option<String>| {
            r.as_deref()
                .and_then(|r| r.rsplit(':').next())
                .map(str::to_string)
        };
        let protect: Vec<String> = [
            version(&d.report.serving_revision),
            version(&d.report.previous_revision),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Err(e) = cleanup::delete_old(self, &d.cx, keep, &protect).await {
            let message = format!("version clean-up failed: {}", chain_message(&e));
            d.cx.actions.warning(&message, &Default::default());
        }
    }

    fn left_alone(&self) -> String {
        if self.latest_changed {
            "the alias was not moved; $LATEST keeps the new code, and Lambda keeps applying it"
                .into()
        } else {
            "the alias was not moved".into()
        }
    }
}
