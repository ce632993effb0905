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
//! - [`preflight`]: the function exists, is an Image function, and which
//!   architecture (so the build makes one platform for it).
//! - [`deploy`]: the pushed image checked first (one manifest, the
//!   function's architecture), then update → applied → publish → active →
//!   alias, each wait bounded by the plan's one deadline.

use std::time::{Duration, Instant};

use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, PackageType, State};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::build::registry::{self, ImageShape};
use crate::cancel::Cancel;
use crate::deploy::{DeployOutcome, Pace, Stop, settle_deadline};
use crate::error::{BadInput, chain_message};
use crate::gha::Actions;
use crate::outcome::{DeployReport, RunResult, TargetRef, revision_label};
use crate::plan::LambdaPlan;

/// What preflight learnt, read-only, before anything is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub function_arn: String,
    /// Lambda's name for it: `x86_64` or `arm64`.
    pub architecture: String,
    /// The one platform the image is built for (`linux/amd64`, `linux/arm64`).
    pub platform: String,
}

/// The build platform for a Lambda architecture.
pub fn platform_for(architecture: &str) -> Option<&'static str> {
    match architecture {
        "x86_64" => Some("linux/amd64"),
        "arm64" => Some("linux/arm64"),
        _ => None,
    }
}

/// An image config's `architecture` in Lambda's words (`amd64` is `x86_64`).
fn lambda_architecture(oci_architecture: &str) -> &str {
    match oci_architecture {
        "amd64" => "x86_64",
        other => other,
    }
}

fn not_found<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

/// Checks the plan against Lambda before anything is built.
pub async fn preflight(
    lambda: &aws_sdk_lambda::Client,
    plan: &LambdaPlan,
) -> anyhow::Result<Preflight> {
    let f = &plan.function;
    let out = match lambda.get_function().function_name(f).send().await {
        Ok(out) => out,
        Err(e) if not_found(&e) => {
            return Err(BadInput::other(format!(
                "Lambda function {f} does not exist in this account and region; check the `function` setting and `aws-region`, \
                 or create the function (package type Image) first"
            ))
            .into());
        }
        Err(e) => {
            return Err(crate::aws::classify(&e)
                .explain("lambda:GetFunction", &format!("Lambda function {f}")));
        }
    };
    let config = out
        .configuration()
        .cloned()
        .unwrap_or_else(|| FunctionConfiguration::builder().build());
    if config.package_type() != Some(&PackageType::Image) {
        return Err(BadInput::other(format!(
            "Lambda function {f} is a Zip function, and fastdeploy deploys container images; a function's package type \
             cannot change: create a function with package type Image and name it in `function`, or drop `function` to build and push only"
        ))
        .into());
    }
    let architecture = config
        .architectures()
        .first()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| "x86_64".into());
    let platform = platform_for(&architecture)
        .ok_or_else(|| anyhow::anyhow!("Lambda function {f} runs on architecture {architecture}, which fastdeploy cannot build for"))?;
    Ok(Preflight {
        function_arn: config.function_arn().unwrap_or(f).to_string(),
        architecture,
        platform: platform.to_string(),
    })
}

/// The pushed image a deploy uses.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// `registry/repository@sha256:...`, what Lambda is given.
    pub uri: &'a str,
    pub repository: &'a str,
    /// `sha256:...`
    pub digest: &'a str,
}

impl Image<'_> {
    /// Lambda's `CodeSha256` of an image function: the manifest digest's hex.
    fn code_sha256(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(self.digest)
    }
}

/// Deploys `image` to the plan's function and alias, and watches it to a
/// verdict. Never returns without saying what the alias serves.
pub async fn deploy(
    lambda: &aws_sdk_lambda::Client,
    registry: &registry::Client,
    plan: &LambdaPlan,
    image: Image<'_>,
    delay_scale: f64,
    cancel: &Cancel,
    actions: &Actions,
) -> DeployOutcome {
    let started = Instant::now();
    let target = TargetRef::Lambda {
        function: plan.function.clone(),
        alias: plan.alias.clone(),
    };
    let mut run = Run {
        lambda,
        plan,
        image,
        actions,
        cancel,
        pace: Pace {
            poll: Duration::from_secs_f64(plan.watch.poll_seconds.max(0.0) * delay_scale),
            scale: delay_scale,
            deadline: Instant::now()
                + Duration::from_secs_f64(plan.watch.wait_seconds as f64 * delay_scale),
        },
        report: DeployReport {
            target,
            ..DeployReport::default()
        },
        last_status: None,
        function_arn: None,
        settling: false,
        latest_changed: false,
    };
    let verdict = match run.run(registry).await {
        Ok(v) => v,
        Err(e) => Verdict::Failed(chain_message(&e)),
    };
    let (result, failure) = run.settle(verdict).await;
    run.report.seconds = Some(started.elapsed().as_secs_f64());
    let serving = run.report.serving_revision.as_deref().map(revision_label);
    let serving = match serving {
        Some(s) => format!("alias {} serves {s}", plan.alias),
        None => format!(
            "alias {} serves no version (Lambda did not say, or it does not exist yet)",
            plan.alias
        ),
    };
    run.say(&format!("result: {}; {serving}", result.as_str()));
    if let Some(f) = &failure {
        run.say(f);
    }
    DeployOutcome {
        result,
        report: run.report,
        failure,
    }
}

/// How the deploy went, before the rollback decision.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// The alias points at our version, which is Active.
    Succeeded,
    /// Nothing to do: the alias already serves this image.
    Unchanged,
    /// The image was refused before Lambda was touched.
    Refused(String),
    /// Lambda applied nothing of ours that serves: the update or the
    /// version failed (`reason`), the alias never moved.
    LambdaFailed {
        reason: String,
        latest_changed: bool,
    },
    /// A wait ran out of time or the workflow was cancelled.
    Stopped {
        stop: Stop,
        doing: String,
        latest_changed: bool,
    },
    /// Anything else (an AWS call that failed after retries).
    Failed(String),
}

struct Run<'a> {
    lambda: &'a aws_sdk_lambda::Client,
    plan: &'a LambdaPlan,
    image: Image<'a>,
    actions: &'a Actions,
    cancel: &'a Cancel,
    pace: Pace,
    report: DeployReport,
    /// The last `LastUpdateStatus` line shown, so each change shows once.
    last_status: Option<String>,
    /// The unqualified function ARN, once preflight has read it.
    function_arn: Option<String>,
    /// Rolling back after a stop: waits end at the settle deadline only,
    /// not at the cancellation that started the rollback.
    settling: bool,
    /// UpdateFunctionCode was accepted: `$LATEST` holds our code, whatever
    /// ends the run afterwards.
    latest_changed: bool,
}

/// The alias as read: the version it points at and its revision id.
#[derive(Debug, Clone)]
struct Alias {
    version: String,
    revision_id: Option<String>,
}

impl Run<'_> {
    fn say(&self, line: &str) {
        self.actions
            .line(&format!("[{}] {line}", self.report.target.short()));
    }

    fn function(&self) -> &str {
        &self.plan.function
    }

    /// `arn:...:function:name:7` for a version number.
    fn version_arn(&self, version: &str) -> String {
        format!(
            "{}:{version}",
            self.function_arn.as_deref().unwrap_or(self.function())
        )
    }

    async fn run(&mut self, registry: &registry::Client) -> anyhow::Result<Verdict> {
        let pre = preflight(self.lambda, self.plan).await?;
        self.function_arn = Some(pre.function_arn.clone());
        // Before Lambda is touched: Lambda refuses an index, and runs an
        // image of another architecture until the first invoke fails with
        // `exec format error`.
        match registry
            .image_shape(self.image.repository, self.image.digest)
            .await
        {
            Ok(ImageShape::Single { os, architecture })
                if lambda_architecture(&architecture) == pre.architecture && os == "linux" => {}
            Ok(ImageShape::Single { os, architecture }) => {
                return Ok(Verdict::Refused(format!(
                    "the image {} is built for {os}/{architecture}, but Lambda function {} runs on {} ({}); \
                     nothing was changed: build it for {} (fastdeploy does when it picks the platform; check `platforms`)",
                    self.image.uri,
                    self.function(),
                    pre.architecture,
                    pre.platform,
                    pre.platform
                )));
            }
            Ok(ImageShape::Index {
                media_type,
                platforms,
            }) => {
                return Ok(Verdict::Refused(format!(
                    "the image {} is an image index ({media_type}, listing {}), and Lambda accepts only a single image manifest; \
                     nothing was changed: build one platform ({}) with attestations off (`provenance: false`)",
                    self.image.uri,
                    platforms.join(", "),
                    pre.platform
                )));
            }
            Err(e) => {
                return Ok(Verdict::Refused(format!(
                    "cannot read the pushed image {} from the registry to check it before deploying ({}); nothing was changed",
                    self.image.uri,
                    chain_message(&e)
                )));
            }
        }

        let before = self.alias().await?;
        if let Some(a) = &before {
            let arn = self.version_arn(&a.version);
            self.report.previous_revision = Some(arn.clone());
            self.report.serving_revision = Some(arn);
            let config = self.configuration(Some(&a.version)).await?;
            if config.code_sha256() == Some(self.image.code_sha256()) {
                self.say(&format!(
                    "alias {} already serves version {} with {}; nothing to update or publish",
                    self.plan.alias, a.version, self.image.uri
                ));
                self.report.revision = self.report.serving_revision.clone();
                self.report.unchanged = true;
                return Ok(Verdict::Unchanged);
            }
        }

        // 1. The code of $LATEST, by digest, once no other update runs.
        let mut latest = match self.wait_idle().await? {
            Ok(c) => c,
            Err(stop) => {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: "waiting for another update to finish".into(),
                    latest_changed: false,
                });
            }
        };
        let mut latest_changed = false;
        if self.cancel.is_cancelled() {
            return Ok(Verdict::Stopped {
                stop: Stop::Cancelled,
                doing: "before the code update".into(),
                latest_changed,
            });
        }
        if latest.code_sha256() == Some(self.image.code_sha256()) {
            self.say(&format!(
                "$LATEST already holds {} (an earlier run updated it); publishing it",
                self.image.uri
            ));
        } else {
            if let Err(stop) = self.update_code(latest).await? {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: "starting the code update".into(),
                    latest_changed: false,
                });
            }
            latest_changed = true;
            self.latest_changed = true;
            match self.wait_applied().await? {
                Ok(Ok(c)) => latest = c,
                Ok(Err(reason)) => {
                    return Ok(Verdict::LambdaFailed {
                        reason,
                        latest_changed: false,
                    });
                }
                Err(stop) => {
                    return Ok(Verdict::Stopped {
                        stop,
                        doing: "waiting for Lambda to apply the update".into(),
                        latest_changed,
                    });
                }
            }
        }

        // 2. A version of exactly that code (Lambda returns the existing
        //    one when nothing changed since the last publish).
        let version = match self.publish(&latest).await? {
            Ok(v) => v,
            Err(stop) => {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: "publishing a version".into(),
                    latest_changed,
                });
            }
        };
        let version_arn = self.version_arn(&version);
        self.report.revision = Some(version_arn.clone());
        match self.wait_active(&version).await? {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Ok(Verdict::LambdaFailed {
                    reason,
                    latest_changed,
                });
            }
            Err(stop) => {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: format!("waiting for version {version} to be Active"),
                    latest_changed,
                });
            }
        }

        // 3. The alias, last: from here on our version serves.
        if self.cancel.is_cancelled() {
            return Ok(Verdict::Stopped {
                stop: Stop::Cancelled,
                doing: format!(
                    "before moving alias {} to version {version}",
                    self.plan.alias
                ),
                latest_changed,
            });
        }
        self.move_alias(before.as_ref(), &version).await?;
        match self.alias().await? {
            Some(a) if a.version == version => {
                self.report.serving_revision = Some(version_arn);
                Ok(Verdict::Succeeded)
            }
            other => Ok(Verdict::Failed(format!(
                "alias {} was moved to version {version}, but Lambda now reports it on {}",
                self.plan.alias,
                other
                    .map(|a| format!("version {}", a.version))
                    .unwrap_or_else(|| "no version".into())
            ))),
        }
    }

    /// Turns the verdict into a result, rolling back when asked.
    async fn settle(&mut self, verdict: Verdict) -> (RunResult, Option<String>) {
        let alias = &self.plan.alias;
        let previous = self.report.previous_revision.as_deref().map(revision_label);
        let still = |prev: &Option<String>| match prev {
            Some(p) => format!("alias {alias} still serves {p}"),
            None => format!("alias {alias} does not exist yet, so no version serves through it"),
        };
        match verdict {
            Verdict::Succeeded => {
                self.say(&format!(
                    "deployed: alias {alias} serves {}",
                    self.report
                        .serving_revision
                        .as_deref()
                        .map(revision_label)
                        .unwrap_or_default()
                ));
                (RunResult::Success, None)
            }
            Verdict::Unchanged => (RunResult::Skipped, None),
            Verdict::Refused(why) => {
                self.report.evidence.push(why.clone());
                (
                    RunResult::Failure,
                    Some(format!("{why}; {}", still(&previous))),
                )
            }
            Verdict::Failed(why) => {
                // An AWS call that failed after the update (PublishVersion,
                // the alias): the alias never moved; $LATEST goes back as
                // for any other failure when asked.
                let restored = if self.latest_changed && self.plan.watch.rollback {
                    self.restore_latest(false).await
                } else {
                    None
                };
                let mut why = format!("{why}; {}", still(&previous));
                if let Some(r) = restored {
                    why.push_str(&format!("; {r}"));
                }
                (RunResult::Failure, Some(why))
            }
            Verdict::LambdaFailed {
                reason,
                latest_changed,
            } => {
                self.report.evidence.push(reason.clone());
                let restored = if latest_changed && self.plan.watch.rollback {
                    self.restore_latest(false).await
                } else {
                    None
                };
                // The alias never moved; what it serves, as read now.
                if let Ok(now) = self.alias().await {
                    self.report.serving_revision = now.map(|a| self.version_arn(&a.version));
                }
                let serving = self.report.serving_revision.as_deref().map(revision_label);
                let result = if previous.is_some() && serving == previous {
                    RunResult::RolledBack
                } else {
                    RunResult::Failure
                };
                let mut why = format!(
                    "Lambda did not apply {}: {reason}; {}",
                    self.image.uri,
                    still(&serving)
                );
                if let Some(r) = restored {
                    why.push_str(&format!("; {r}"));
                }
                (result, Some(why))
            }
            Verdict::Stopped {
                stop,
                doing,
                latest_changed,
            } => {
                let what = stop.explain(self.plan.watch.wait_seconds, &doing);
                if !self.plan.watch.rollback {
                    let latest = if latest_changed {
                        "; $LATEST keeps the new code, and Lambda keeps applying it"
                    } else {
                        ""
                    };
                    return (
                        RunResult::Failure,
                        Some(format!(
                            "{what} and `rollback` is off; {}{latest}",
                            still(&previous)
                        )),
                    );
                }
                self.say(&format!("{what}: rolling back"));
                let restored = if latest_changed {
                    self.restore_latest(stop == Stop::Cancelled).await
                } else {
                    None
                };
                // The alias never moved; make sure of it, and of what it serves.
                if let Ok(now) = self.alias().await {
                    self.report.serving_revision = now.map(|a| self.version_arn(&a.version));
                }
                let serving = self.report.serving_revision.as_deref().map(revision_label);
                let mut why = format!("{what}; fastdeploy rolled back: {}", still(&serving));
                if let Some(r) = restored {
                    why.push_str(&format!("; {r}"));
                }
                let result = if previous.is_some() && serving == previous {
                    RunResult::RolledBack
                } else {
                    RunResult::Failure
                };
                (result, Some(why))
            }
        }
    }

    // -- Lambda calls -------------------------------------------------------

    async fn alias(&self) -> anyhow::Result<Option<Alias>> {
        match self
            .lambda
            .get_alias()
            .function_name(self.function())
            .name(&self.plan.alias)
            .send()
            .await
        {
            Ok(a) => Ok(Some(Alias {
                version: a.function_version().unwrap_or_default().to_string(),
                revision_id: a.revision_id().map(str::to_string),
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(crate::aws::classify(&e).explain(
                "lambda:GetAlias",
                &format!(
                    "alias {} of Lambda function {}",
                    self.plan.alias,
                    self.function()
                ),
            )),
        }
    }

    async fn configuration(
        &self,
        qualifier: Option<&str>,
    ) -> anyhow::Result<FunctionConfiguration> {
        self.lambda
            .get_function_configuration()
            .function_name(self.function())
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| {
                crate::aws::classify(&e).explain(
                    "lambda:GetFunctionConfiguration",
                    &format!("Lambda function {}", self.function()),
                )
            })
            .map(|out| {
                // The output mirrors FunctionConfiguration field by field.
                FunctionConfiguration::builder()
                    .set_function_arn(out.function_arn().map(str::to_string))
                    .set_version(out.version().map(str::to_string))
                    .set_code_sha256(out.code_sha256().map(str::to_string))
                    .set_revision_id(out.revision_id().map(str::to_string))
                    .set_state(out.state().cloned())
                    .set_state_reason(out.state_reason().map(str::to_string))
                    .set_state_reason_code(out.state_reason_code().cloned())
                    .set_last_update_status(out.last_update_status().cloned())
                    .set_last_update_status_reason(
                        out.last_update_status_reason().map(str::to_string),
                    )
                    .set_last_update_status_reason_code(
                        out.last_update_status_reason_code().cloned(),
                    )
                    .build()
            })
    }

    /// Sleeps one poll, or stops at the deadline or on cancellation (while
    /// settling, at the settle deadline only).
    async fn pause(&self) -> Result<(), Stop> {
        if self.settling {
            return crate::deploy::settle_pause(&self.pace).await;
        }
        crate::deploy::pause(&self.pace, self.cancel).await
    }

    /// Shows a change of `LastUpdateStatus` once, and keeps it as an event.
    fn note_status(&mut self, what: &str, c: &FunctionConfiguration) {
        let status = c
            .last_update_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        let reason = c
            .last_update_status_reason()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let line = format!("{what}: LastUpdateStatus {status}{reason}");
        if self.last_status.as_deref() != Some(line.as_str()) {
            self.say(&line);
            self.report.events.push(line.clone());
            self.last_status = Some(line);
        }
    }

    /// Waits until no update of the function runs (another deploy's, or a
    /// configuration change) and the function is no longer being created
    /// (`State` Pending has no `LastUpdateStatus` yet), so ours does not meet
    /// ResourceConflictException.
    async fn wait_idle(&mut self) -> anyhow::Result<Result<FunctionConfiguration, Stop>> {
        loop {
            let c = self.configuration(None).await?;
            let pending = c.state() == Some(&State::Pending);
            if c.last_update_status() != Some(&LastUpdateStatus::InProgress) && !pending {
                return Ok(Ok(c));
            }
            if pending {
                let line = format!(
                    "the function is still being created (State Pending: {}); waiting",
                    c.state_reason().unwrap_or("-")
                );
                if self.last_status.as_deref() != Some(line.as_str()) {
                    self.say(&line);
                    self.last_status = Some(line);
                }
            } else {
                self.note_status("another update of the function is running; waiting", &c);
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    /// UpdateFunctionCode by digest, guarded by the RevisionId just read. A
    /// conflict (an update started meanwhile) waits and tries again.
    async fn update_code(
        &mut self,
        mut latest: FunctionConfiguration,
    ) -> anyhow::Result<Result<FunctionConfiguration, Stop>> {
        loop {
            let sent = self
                .lambda
                .update_function_code()
                .function_name(self.function())
                .image_uri(self.image.uri)
                .set_revision_id(latest.revision_id().map(str::to_string))
                .publish(false)
                .send()
                .await;
            match sent {
                Ok(out) => {
                    self.say(&format!(
                        "UpdateFunctionCode accepted: {} (not applied yet)",
                        self.image.uri
                    ));
                    let c = FunctionConfiguration::builder()
                        .set_revision_id(out.revision_id().map(str::to_string))
                        .set_last_update_status(out.last_update_status().cloned())
                        .set_last_update_status_reason(
                            out.last_update_status_reason().map(str::to_string),
                        )
                        .build();
                    self.note_status("update", &c);
                    return Ok(Ok(c));
                }
                Err(e)
                    if matches!(
                        e.code(),
                        Some("ResourceConflictException" | "PreconditionFailedException")
                    ) =>
                {
                    self.say(&format!(
                        "{} changed or is being updated by someone else ({}); reading it again",
                        self.function(),
                        e.code().unwrap_or_default()
                    ));
                    if let Err(stop) = self.pause().await {
                        return Ok(Err(stop));
                    }
                    latest = match self.wait_idle().await? {
                        Ok(c) => c,
                        Err(stop) => return Ok(Err(stop)),
                    };
                    if latest.code_sha256() == Some(self.image.code_sha256()) {
                        return Ok(Ok(latest));
                    }
                }
                Err(e) => {
                    return Err(crate::aws::classify(&e).explain(
                        "lambda:UpdateFunctionCode",
                        &format!("Lambda function {}", self.function()),
                    ));
                }
            }
        }
    }

    /// Polls until Lambda has applied the update: `Successful`, or `Failed`
    /// with its reason and code.
    async fn wait_applied(
        &mut self,
    ) -> anyhow::Result<Result<Result<FunctionConfiguration, String>, Stop>> {
        loop {
            let c = self.configuration(None).await?;
            self.note_status("update", &c);
            match c.last_update_status() {
                Some(LastUpdateStatus::Successful) => {
                    if c.code_sha256() == Some(self.image.code_sha256()) {
                        return Ok(Ok(Ok(c)));
                    }
                    // Someone else's update finished after ours.
                    return Ok(Ok(Err(format!(
                        "the update finished, but $LATEST holds code {} instead of {} (another deploy updated the function meanwhile)",
                        c.code_sha256().unwrap_or("?"),
                        self.image.code_sha256()
                    ))));
                }
                Some(LastUpdateStatus::Failed) => {
                    let code = c
                        .last_update_status_reason_code()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "no code".into());
                    let reason = c.last_update_status_reason().unwrap_or("no reason given");
                    return Ok(Ok(Err(format!("the update failed: {reason} ({code})"))));
                }
                _ => {}
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    /// PublishVersion of exactly the code we applied (CodeSha256 and
    /// RevisionId guard against another update slipping in between).
    async fn publish(
        &mut self,
        latest: &FunctionConfiguration,
    ) -> anyhow::Result<Result<String, Stop>> {
        loop {
            let sent = self
                .lambda
                .publish_version()
                .function_name(self.function())
                .code_sha256(self.image.code_sha256())
                .set_revision_id(latest.revision_id().map(str::to_string))
                .description(format!("fastdeploy {}", self.image.uri))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let version = out.version().unwrap_or_default().to_string();
                    self.say(&format!("published version {version}"));
                    return Ok(Ok(version));
                }
                Err(e) if e.code() == Some("ResourceConflictException") => {
                    if let Err(stop) = self.pause().await {
                        return Ok(Err(stop));
                    }
                }
                Err(e) if e.code() == Some("PreconditionFailedException") => {
                    anyhow::bail!(
                        "Lambda function {} changed between the update and PublishVersion (another deploy?): {}",
                        self.function(),
                        e.message().unwrap_or_default()
                    );
                }
                Err(e) => {
                    return Err(crate::aws::classify(&e).explain(
                        "lambda:PublishVersion",
                        &format!("Lambda function {}", self.function()),
                    ));
                }
            }
        }
    }

    /// A version of an image function is `Pending` until Lambda has
    /// optimised the image; an alias on it would not serve.
    async fn wait_active(
        &mut self,
        version: &str,
    ) -> anyhow::Result<Result<Result<(), String>, Stop>> {
        let mut shown = None;
        loop {
            let c = self.configuration(Some(version)).await?;
            let state = c
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "Active".into());
            if shown.as_deref() != Some(state.as_str()) {
                let line = format!("version {version}: State {state}");
                self.say(&line);
                self.report.events.push(line);
                shown = Some(state.clone());
            }
            match c.state() {
                None | Some(State::Active) => return Ok(Ok(Ok(()))),
                Some(State::Failed | State::Inactive) => {
                    let code = c
                        .state_reason_code()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "no code".into());
                    let reason = c.state_reason().unwrap_or("no reason given");
                    return Ok(Ok(Err(format!(
                        "version {version} is {state}: {reason} ({code})"
                    ))));
                }
                _ => {}
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    /// Points the alias at `version`, creating it on the first deploy. An
    /// error answer is checked against the alias itself: when the SDK
    /// retried a move whose answer was lost, Lambda answers the retry with
    /// PreconditionFailed (the revision id moved) or "Alias already exists",
    /// though the alias already points where we sent it.
    async fn move_alias(&mut self, before: Option<&Alias>, version: &str) -> anyhow::Result<()> {
        let alias = self.plan.alias.clone();
        let resource = format!("alias {alias} of Lambda function {}", self.function());
        let (action, sent) = match before {
            Some(a) => (
                "lambda:UpdateAlias",
                self.lambda
                    .update_alias()
                    .function_name(self.function())
                    .name(&alias)
                    .function_version(version)
                    .set_revision_id(a.revision_id.clone())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::aws::classify(&e).explain("lambda:UpdateAlias", &resource)),
            ),
            None => (
                "lambda:CreateAlias",
                self.lambda
                    .create_alias()
                    .function_name(self.function())
                    .name(&alias)
                    .function_version(version)
                    .description("moved by fastdeploy")
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::aws::classify(&e).explain("lambda:CreateAlias", &resource)),
            ),
        };
        if let Err(e) = sent {
            match self.alias().await {
                Ok(Some(now)) if now.version == version => {
                    self.say(&format!(
                        "{action} answered an error ({}), but alias {alias} points at version {version}: the move took",
                        chain_message(&e)
                    ));
                }
                _ => return Err(e),
            }
        }
        match before {
            Some(a) => self.say(&format!("alias {alias}: version {} → {version}", a.version)),
            None => self.say(&format!("alias {alias} created on version {version}")),
        }
        Ok(())
    }

    /// Puts the previous version's image back on `$LATEST`, so unqualified
    /// invocations stop running the code that did not take. Best effort within
    /// the settle budget; says what it did.
    async fn restore_latest(&mut self, cancelled: bool) -> Option<String> {
        let previous = self.report.previous_revision.clone()?;
        let version = previous.rsplit(':').next()?.to_string();
        let image = match self
            .lambda
            .get_function()
            .function_name(self.function())
            .qualifier(&version)
            .send()
            .await
        {
            Ok(out) => out
                .code()
                .and_then(|c| c.image_uri().or(c.resolved_image_uri()))
                .map(str::to_string),
            Err(e) => {
                return Some(format!(
                    "$LATEST not restored: reading version {version} failed ({})",
                    e.code().unwrap_or("error")
                ));
            }
        }?;
        self.pace.deadline = settle_deadline(cancelled, self.pace.scale);
        self.settling = true;
        let idle = self.wait_idle().await;
        self.settling = false;
        let latest = match idle {
            Ok(Ok(c)) => c,
            _ => {
                return Some(format!(
                    "$LATEST not restored to {image}: an update was still running"
                ));
            }
        };
        let sent = self
            .lambda
            .update_function_code()
            .function_name(self.function())
            .image_uri(&image)
            .set_revision_id(latest.revision_id().map(str::to_string))
            .send()
            .await;
        match sent {
            Ok(_) => {
                self.say(&format!(
                    "$LATEST set back to {image} (the code of version {version}); Lambda applies it"
                ));
                Some(format!(
                    "$LATEST set back to the image of version {version} (Lambda accepted the update)"
                ))
            }
            Err(e) => Some(format!(
                "$LATEST not restored to {image}: {}",
                e.code().unwrap_or("error")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_build_platforms() {
        assert_eq!(platform_for("x86_64"), Some("linux/amd64"));
        assert_eq!(platform_for("arm64"), Some("linux/arm64"));
        assert_eq!(platform_for("mips"), None);
        assert_eq!(lambda_architecture("amd64"), "x86_64");
        assert_eq!(lambda_architecture("arm64"), "arm64");
    }

    #[test]
    fn code_sha256_is_the_digest_hex() {
        let image = Image {
            uri: "r/x@sha256:abc",
            repository: "x",
            digest: "sha256:abc",
        };
        assert_eq!(image.code_sha256(), "abc");
    }
}
