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
//! - [`preflight`]: the bundle's local checks (nothing is read from S3 or
//!   uploaded), then the application and environment: they exist, the
//!   environment runs a Docker platform and is not terminated.
//! - [`deploy`]: bundle → S3 (content-addressed, so a re-run uploads nothing)
//!   → application version (processed) → wait for Ready → update → events
//!   → Ready on our label → health; on timeout or cancellation with
//!   `rollback`, abort the update and make sure the previous label serves.

pub mod bundle;
pub mod events;

use std::time::{Duration, Instant};

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::types::{
    ApplicationVersionDescription, EnvironmentDescription, EnvironmentHealthAttribute,
    EnvironmentStatus, InstancesHealthAttribute, S3Location,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cancel::Cancel;
use crate::deploy::{DeployOutcome, Pace, Stop, settle_deadline};
use crate::error::{BadInput, chain_message};
use crate::gha::Actions;
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::{BeanstalkPlan, BuildPlan};
use crate::settings::config::Bundle;

use bundle::Contents;
use events::{Meaning, Seen};

/// How long health may take to turn Green after EB says the update
/// completed (within the one deadline): enhanced health reports every 10 s
/// and a fresh container may fail its first checks.
const HEALTH_WINDOW_SECONDS: f64 = 120.0;

/// What preflight learnt about the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub environment_id: String,
    /// `<prefix>.<id>.<region>.elasticbeanstalk.com`
    pub cname: Option<String>,
    /// The application version it runs (`None`: EB's sample application).
    pub version_label: Option<String>,
    pub status: String,
    /// `64bit Amazon Linux 2023 v4.3.0 running Docker`
    pub platform: String,
}

/// The container ports of a `bundle: image` deploy: the config's, else the
/// Dockerfile's `EXPOSE`. Bad input when there are none.
pub fn ports(plan: &BeanstalkPlan, build: &BuildPlan, component: &str) -> anyhow::Result<Vec<u16>> {
    if !plan.ports.is_empty() {
        return Ok(plan.ports.clone());
    }
    let df = crate::checks::dockerfile::load_with_args(&build.dockerfile, &build.build_args)?;
    match bundle::exposed_ports(&df, build.target.as_deref()) {
        Ok(p) if !p.is_empty() => Ok(p),
        Ok(_) => Err(BadInput::other(format!(
            "component `{component}` deploys `bundle: image` to Elastic Beanstalk environment {}, whose Dockerrun.aws.json needs the \
             container port, but Dockerfile {} exposes none; add `EXPOSE <port>` to it or set `ports: [<port>]` for the component in the config",
            plan.environment,
            build.dockerfile.display()
        ))
        .into()),
        Err(word) => Err(BadInput::other(format!(
            "component `{component}` deploys `bundle: image` to Elastic Beanstalk environment {}, whose Dockerrun.aws.json needs the \
             container port, but Dockerfile {} has {word}, which cannot be read before the build; set `ports: [<port>]` for the component in the config",
            plan.environment,
            build.dockerfile.display()
        ))
        .into()),
    }
}

/// What the bundle holds, checked: for `bundle: image` with a placeholder
/// `Dockerrun.aws.json` (the digest is known after the push).
fn contents(
    plan: &BeanstalkPlan,
    build: &BuildPlan,
    component: &str,
    image_uri: Option<&str>,
) -> anyhow::Result<Contents> {
    let what = format!(
        "the {} bundle of component `{component}` for Elastic Beanstalk environment {}",
        plan.bundle.as_str(),
        plan.environment
    );
    match plan.bundle {
        Bundle::Image => {
            let ports = ports(plan, build, component)?;
            let uri = image_uri.unwrap_or("<the pushed image>@sha256:");
            let c = bundle::image_contents(&build.context, &bundle::dockerrun(uri, &ports))?;
            bundle::check_config(&c, &what)?;
            Ok(c)
        }
        Bundle::Source => {
            let c = bundle::source_contents(&build.context, &build.dockerfile)?;
            bundle::check_source(&c, component, &build.dockerfile, &what)?;
            Ok(c)
        }
    }
}

/// Checks the bundle and the environment before anything is built or
/// uploaded. What the user can fix is [`BadInput`].
pub async fn preflight(
    eb: &aws_sdk_elasticbeanstalk::Client,
    plan: &BeanstalkPlan,
    build: &BuildPlan,
    component: &str,
) -> anyhow::Result<Preflight> {
    contents(plan, build, component, None)?;
    environment(eb, plan).await
}

/// Reads the application and environment; bad input when either is missing,
/// terminated or not on a Docker platform.
async fn environment(
    eb: &aws_sdk_elasticbeanstalk::Client,
    plan: &BeanstalkPlan,
) -> anyhow::Result<Preflight> {
    let (app, env) = (&plan.application, &plan.environment);
    let apps = eb
        .describe_applications()
        .application_names(app)
        .send()
        .await
        .map_err(|e| {
            crate::aws::classify(&e).explain(
                "elasticbeanstalk:DescribeApplications",
                &format!("Elastic Beanstalk application {app}"),
            )
        })?;
    if !apps
        .applications()
        .iter()
        .any(|a| a.application_name() == Some(app.as_str()))
    {
        return Err(BadInput::other(format!(
            "Elastic Beanstalk application {app} does not exist in this account and region; check `beanstalk-application` and `aws-region`, \
             or create the application first"
        ))
        .into());
    }
    let found = eb
        .describe_environments()
        .application_name(app)
        .include_deleted(true)
        .send()
        .await
        .map_err(|e| {
            crate::aws::classify(&e).explain(
                "elasticbeanstalk:DescribeEnvironments",
                &format!("Elastic Beanstalk application {app}"),
            )
        })?;
    let all = found.environments();
    let live = all
        .iter()
        .find(|e| e.environment_name() == Some(env.as_str()) && !is_terminated(e));
    let Some(e) = live else {
        if all
            .iter()
            .any(|e| e.environment_name() == Some(env.as_str()))
        {
            return Err(BadInput::other(format!(
                "Elastic Beanstalk environment {env} of application {app} is terminated; restore it or create it again \
                 (Docker platform), or name a running environment in `beanstalk-environment`"
            ))
            .into());
        }
        let mut names: Vec<&str> = all
            .iter()
            .filter(|e| !is_terminated(e))
            .filter_map(|e| e.environment_name())
            .collect();
        names.sort_unstable();
        names.dedup();
        let known = if names.is_empty() {
            "it has none".to_string()
        } else {
            format!("its environments: {}", names.join(", "))
        };
        return Err(BadInput::other(format!(
            "Elastic Beanstalk environment {env} does not exist in application {app} ({known}); check `beanstalk-environment`, \
             or create the environment on a Docker platform first"
        ))
        .into());
    };
    let platform = e
        .solution_stack_name()
        .or(e.platform_arn())
        .unwrap_or("an unknown platform")
        .to_string();
    if !is_docker(e) {
        let which = if platform.contains("Multi-container Docker")
            || platform.contains("running ECS")
        {
            "the ECS-based multicontainer Docker platform, which takes a Dockerrun.aws.json version 2"
        } else {
            "not a Docker platform"
        };
        return Err(BadInput::other(format!(
            "Elastic Beanstalk environment {env} runs on `{platform}`, {which}; fastdeploy deploys a container image to the Docker platform \
             (`... running Docker`): deploy to an environment on it, or create one"
        ))
        .into());
    }
    Ok(Preflight {
        environment_id: e.environment_id().unwrap_or_default().to_string(),
        cname: e.cname().map(str::to_string),
        version_label: e.version_label().map(str::to_string),
        status: e
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        platform,
    })
}

fn is_terminated(e: &EnvironmentDescription) -> bool {
    matches!(
        e.status(),
        Some(EnvironmentStatus::Terminated | EnvironmentStatus::Terminating)
    )
}

/// `64bit Amazon Linux 2023 v4.3.0 running Docker` or its platform ARN
/// (`.../platform/Docker running on 64bit Amazon Linux 2023/4.3.0`).
fn is_docker(e: &EnvironmentDescription) -> bool {
    let stack = e.solution_stack_name().unwrap_or_default();
    let arn = e.platform_arn().unwrap_or_default();
    stack
        .rsplit_once(" running ")
        .is_some_and(|(_, name)| name.starts_with("Docker"))
        || arn.contains("platform/Docker running on ")
}

/// The pushed image a deploy uses.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// `registry/repository@sha256:...`
    pub uri: &'a str,
    /// `sha256:...`
    pub digest: &'a str,
}

/// Deploys the component's bundle to the plan's environment and watches it
/// to a verdict. Never returns without saying which version label serves.
pub async fn deploy(
    eb: &aws_sdk_elasticbeanstalk::Client,
    s3: &aws_sdk_s3::Client,
    plan: &BeanstalkPlan,
    build: &BuildPlan,
    component: &str,
    image: Image<'_>,
    commit: &str,
    delay_scale: f64,
    cancel: &Cancel,
    actions: &Actions,
) -> DeployOutcome {
    let started = Instant::now();
    let target = TargetRef::Beanstalk {
        application: plan.application.clone(),
        environment: plan.environment.clone(),
    };
    let mut run = Run {
        eb,
        s3,
        plan,
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
        seen: Seen::default(),
        label: None,
        shown: None,
        since: None,
        settling: false,
    };
    let verdict = match run.run(build, component, image, commit).await {
        Ok(v) => v,
        Err(e) => Verdict::Failed(chain_message(&e)),
    };
    let (result, failure) = run.settle(verdict).await;
    run.report.seconds = Some(started.elapsed().as_secs_f64());
    let serving = match &run.report.serving_revision {
        Some(l) => format!("environment {} serves version {l}", plan.environment),
        None => format!(
            "environment {} serves no application version of its own (EB's sample application)",
            plan.environment
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
    /// Ready on our label, health Green (or Yellow when allowed).
    Succeeded,
    /// The environment already runs this content's version.
    Unchanged,
    /// EB refused the version before the environment was touched.
    Refused(String),
    /// EB failed or reverted our update.
    EbFailed(String),
    /// Our label serves, but health did not turn Green in the window.
    Unhealthy(String),
    /// A wait ran out of time or the workflow was cancelled; `updated`:
    /// UpdateEnvironment had been accepted.
    Stopped {
        stop: Stop,
        doing: String,
        updated: bool,
    },
    /// Anything else (an AWS call that failed after retries).
    Failed(String),
}

/// How one request's update ended.
enum Followed {
    /// EB said it completed (or the environment is Ready on the label with
    /// no failure said).
    Completed(EnvironmentDescription),
    Failed(String),
    /// The environment is Ready on another label and EB said nothing.
    Ended(EnvironmentDescription),
}

/// Where a rollback left the environment.
struct Back {
    /// The environment's version label, as last seen.
    serving: Option<String>,
    note: Option<String>,
    /// Every instance is known to run `serving` and EB is done: the label
    /// truly serves. Not so when the redeploy failed, did not finish in
    /// time, or was not made: EB sets the label when an update starts.
    settled: bool,
}

impl Back {
    fn unsettled(serving: Option<String>, note: impl Into<String>) -> Back {
        Back {
            serving,
            note: Some(note.into()),
            settled: false,
        }
    }

    /// The previous label serves on every instance: a true rollback.
    fn is_previous(&self, previous: &Option<String>) -> bool {
        self.settled && previous.is_some() && &self.serving == previous
    }

    /// What serves, said no stronger than what is known.
    fn state(&self, still: &impl Fn(&Option<String>) -> String) -> String {
        match (&self.serving, self.settled) {
            (Some(l), false) => format!(
                "the environment is set to version {l}, which not every instance may run yet"
            ),
            _ => still(&self.serving),
        }
    }
}

struct Run<'a> {
    eb: &'a aws_sdk_elasticbeanstalk::Client,
    s3: &'a aws_sdk_s3::Client,
    plan: &'a BeanstalkPlan,
    actions: &'a Actions,
    cancel: &'a Cancel,
    pace: Pace,
    report: DeployReport,
    seen: Seen,
    /// Our version label, once known.
    label: Option<String>,
    /// The last waiting line shown, so each shows once.
    shown: Option<String>,
    /// Shortly before the last UpdateEnvironment.
    since: Option<aws_smithy_types::DateTime>,
    /// Rolling back: waits end at the settle deadline only, not at the
    /// cancellation that started the rollback.
    settling: bool,
}

impl Run<'_> {
    fn say(&self, line: &str) {
        self.actions
            .line(&format!("[{}] {line}", self.plan.environment));
    }

    /// Says `line` unless it was the last one said this way.
    fn say_once(&mut self, line: String) {
        if self.shown.as_deref() != Some(line.as_str()) {
            self.say(&line);
            self.shown = Some(line);
        }
    }

    fn env(&self) -> &str {
        &self.plan.environment
    }

    fn app(&self) -> &str {
        &self.plan.application
    }

    async fn run(
        &mut self,
        build: &BuildPlan,
        component: &str,
        image: Image<'_>,
        commit: &str,
    ) -> anyhow::Result<Verdict> {
        let contents = contents(self.plan, build, component, Some(image.uri))?;
        let pre = environment(self.eb, self.plan).await?;
        self.report.url = pre.cname.as_deref().map(|c| format!("http://{c}"));
        self.report.previous_revision = pre.version_label.clone();
        self.report.serving_revision = pre.version_label.clone();
        if self.plan.bundle == Bundle::Source {
            if build.target.is_some() {
                self.say("note: EB builds the Dockerfile's last stage on each instance; the `target` setting does not apply to it");
            }
            if !build.build_args.is_empty() {
                let names: Vec<&str> = build.build_args.keys().map(String::as_str).collect();
                self.say(&format!(
                    "note: EB builds on each instance without build args ({}); the Dockerfile's defaults apply",
                    names.join(", ")
                ));
            }
        }

        // 1. The bundle, content-addressed.
        let work = tempfile::Builder::new()
            .prefix("fastdeploy-eb-")
            .tempdir()?;
        let zip_path = work.path().join("bundle.zip");
        let zipped = tokio::task::block_in_place(|| bundle::write_zip(&contents, &zip_path))?;
        self.say(&format!(
            "bundle: {} ({} files, {} zipped, sha256 {})",
            self.plan.bundle.as_str(),
            zipped.members,
            crate::checks::context::human_bytes(zipped.bytes),
            &zipped.sha256[..12]
        ));
        if zipped.bytes > bundle::MAX_BUNDLE_BYTES {
            return Ok(Verdict::Refused(format!(
                "the bundle is {} zipped, above Elastic Beanstalk's limit of 524,288,000 bytes; nothing was uploaded",
                crate::checks::context::human_bytes(zipped.bytes)
            )));
        }
        let bucket = self.storage().await?;
        let key = format!("fastdeploy/{}/{}.zip", self.app(), zipped.sha256);

        // 2. The application version: the one made before for this content, or a new one.
        let existing = self.version_with(&bucket, &key).await?;
        if let Some(v) = &existing {
            let label = v.version_label().unwrap_or_default().to_string();
            if pre.version_label.as_deref() == Some(label.as_str()) && pre.status == "Ready" {
                self.say(&format!("version {label} holds this bundle and the environment already runs it; nothing to upload or deploy"));
                self.report.revision = Some(label);
                self.report.unchanged = true;
                return Ok(Verdict::Unchanged);
            }
            self.say(&format!(
                "version {label} already holds this bundle (s3://{bucket}/{key}); reusing it"
            ));
        }
        let label = match existing {
            Some(v) => v.version_label().unwrap_or_default().to_string(),
            None => {
                self.upload(&bucket, &key, &zipped).await?;
                let short = match self.plan.bundle {
                    Bundle::Image => image
                        .digest
                        .strip_prefix("sha256:")
                        .unwrap_or(image.digest)
                        .chars()
                        .take(12)
                        .collect::<String>(),
                    Bundle::Source => format!("src-{}", &zipped.sha256[..12]),
                };
                let label = format!("sha-{}-{short}", &commit[..commit.len().min(12)]);
                self.create_version(&label, &bucket, &key, commit, image.uri, &zipped.sha256)
                    .await?
            }
        };
        self.label = Some(label.clone());
        self.report.revision = Some(label.clone());
        match self.wait_processed(&label).await? {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Ok(Verdict::Refused(why)),
            Err(stop) => {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: format!("waiting for EB to process version {label}"),
                    updated: false,
                });
            }
        }

        // 3. The update, once the environment is Ready.
        let request_id = loop {
            match self
                .wait_ready("(another update is running); waiting for Ready before deploying")
                .await?
            {
                // Another run of the same content deployed it meanwhile: its
                // health is still ours to judge.
                Ok(env) if env.version_label() == Some(label.as_str()) => {
                    self.say(&format!("the environment runs version {label} already (another run deployed it meanwhile)"));
                    self.report.serving_revision = Some(label.clone());
                    return self.health(&label).await;
                }
                Ok(_) => {}
                Err(stop) => {
                    return Ok(Verdict::Stopped {
                        stop,
                        doing: "waiting for the environment to be Ready".into(),
                        updated: false,
                    });
                }
            }
            self.since = Some(aws_smithy_types::DateTime::from(
                std::time::SystemTime::now() - Duration::from_secs(5),
            ));
            let sent = self
                .eb
                .update_environment()
                .application_name(self.app())
                .environment_name(self.env())
                .version_label(&label)
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let rid = out.request_id().unwrap_or_default().to_string();
                    self.say(&format!("UpdateEnvironment to version {label} accepted (request {rid}); following its events"));
                    break rid;
                }
                Err(e) if is_not_ready(&e) => {
                    self.say(&format!(
                        "EB refused the update: {}; waiting again",
                        e.message().unwrap_or_default()
                    ));
                    if let Err(stop) = self.pause().await {
                        return Ok(Verdict::Stopped {
                            stop,
                            doing: "waiting for the environment to be Ready".into(),
                            updated: false,
                        });
                    }
                }
                Err(e) => {
                    return Err(crate::aws::classify(&e).explain(
                        "elasticbeanstalk:UpdateEnvironment",
                        &format!("Elastic Beanstalk environment {}", self.env()),
                    ));
                }
            }
        };
        self.report.deployment_id = Some(request_id.clone());

        // 4. Our request's events, to a verdict.
        let env = match self.follow(&request_id, &label).await? {
            Ok(Followed::Completed(env)) => env,
            Ok(Followed::Failed(why)) => return Ok(Verdict::EbFailed(why)),
            Ok(Followed::Ended(env)) => {
                return Ok(Verdict::EbFailed(format!(
                    "EB ended the update Ready on {} without saying it failed",
                    env.version_label()
                        .map(|l| format!("version {l}"))
                        .unwrap_or_else(|| "no version".into())
                )));
            }
            Err(stop) => {
                return Ok(Verdict::Stopped {
                    stop,
                    doing: format!("following the update to version {label}"),
                    updated: true,
                });
            }
        };
        if env.version_label() != Some(label.as_str())
            || env.status() != Some(&EnvironmentStatus::Ready)
        {
            return Ok(Verdict::EbFailed(format!(
                "EB said the update completed, but the environment is {} on {}, not on version {label}",
                env.status().map(|s| s.as_str()).unwrap_or("?"),
                env.version_label().unwrap_or("no version")
            )));
        }
        self.report.serving_revision = Some(label.clone());

        // 5. Health, within a bounded window.
        self.health(&label).await
    }

    /// Turns the verdict into a result, rolling back when asked.
    async fn settle(&mut self, verdict: Verdict) -> (RunResult, Option<String>) {
        let previous = self.report.previous_revision.clone();
        let still = |serving: &Option<String>| match serving {
            Some(l) => format!("version {l} serves"),
            None => {
                "no application version of its own serves (EB's sample application)".to_string()
            }
        };
        match verdict {
            Verdict::Succeeded => {
                let label = self.label.clone().unwrap_or_default();
                self.say(&format!(
                    "deployed: environment {} is Ready on version {label}",
                    self.env()
                ));
                (RunResult::Success, None)
            }
            Verdict::Unchanged => (RunResult::Skipped, None),
            Verdict::Refused(why) => {
                self.report.evidence.push(why.clone());
                (
                    RunResult::Failure,
                    Some(format!(
                        "{why}; the environment was not updated: {}",
                        still(&previous)
                    )),
                )
            }
            Verdict::Failed(why) => {
                let serving = self
                    .observe()
                    .await
                    .or(self.report.serving_revision.clone());
                self.report.serving_revision = serving.clone();
                (
                    RunResult::Failure,
                    Some(format!("{why}; {}", still(&serving))),
                )
            }
            Verdict::Unhealthy(why) => (RunResult::Failure, Some(why)),
            Verdict::EbFailed(reason) => {
                self.report.evidence.push(reason.clone());
                self.causes_as_evidence().await;
                let deadline = settle_deadline(false, self.pace.scale);
                let back = self
                    .back_to_previous(deadline, self.plan.watch.rollback)
                    .await;
                self.report.serving_revision = back.serving.clone();
                let ours = self.label.clone().unwrap_or_default();
                let mut why = format!(
                    "EB did not deploy version {ours}: {reason}; {}",
                    back.state(&still)
                );
                if let Some(n) = &back.note {
                    why.push_str(&format!("; {n}"));
                }
                let result = if back.is_previous(&previous) {
                    RunResult::RolledBack
                } else {
                    RunResult::Failure
                };
                (result, Some(why))
            }
            Verdict::Stopped {
                stop,
                doing,
                updated,
            } => {
                let what = stop.explain(self.plan.watch.wait_seconds, &doing);
                if !updated {
                    return (
                        RunResult::Failure,
                        Some(format!(
                            "{what}; the environment was not updated: {}",
                            still(&previous)
                        )),
                    );
                }
                if !self.plan.watch.rollback {
                    let serving = self.observe().await;
                    self.report.serving_revision = serving.clone();
                    return (
                        RunResult::Failure,
                        Some(format!(
                            "{what} and `rollback` is off; EB goes on with the update; last seen: {}",
                            still(&serving)
                        )),
                    );
                }
                self.say(&format!("{what}: rolling back"));
                self.abort().await;
                let deadline = settle_deadline(stop == Stop::Cancelled, self.pace.scale);
                let back = self.back_to_previous(deadline, true).await;
                self.report.serving_revision = back.serving.clone();
                let done = if back.settled {
                    "fastdeploy rolled back"
                } else {
                    "fastdeploy's rollback did not finish"
                };
                let mut why = format!("{what}; {done}: {}", back.state(&still));
                if let Some(n) = &back.note {
                    why.push_str(&format!("; {n}"));
                }
                let result = if back.is_previous(&previous) {
                    RunResult::RolledBack
                } else {
                    RunResult::Failure
                };
                (result, Some(why))
            }
        }
    }

    // -- Steps --------------------------------------------------------------

    async fn storage(&self) -> anyhow::Result<String> {
        let out = self
            .eb
            .create_storage_location()
            .send()
            .await
            .map_err(|e| {
                crate::aws::classify(&e).explain(
                    "elasticbeanstalk:CreateStorageLocation",
                    "Elastic Beanstalk's storage location",
                )
            })?;
        out.s3_bucket()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("CreateStorageLocation named no bucket"))
    }

    /// The application version whose source bundle is `bucket/key`, if any.
    async fn version_with(
        &self,
        bucket: &str,
        key: &str,
    ) -> anyhow::Result<Option<ApplicationVersionDescription>> {
        let mut token = None;
        loop {
            let out = self
                .eb
                .describe_application_versions()
                .application_name(self.app())
                .max_records(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    crate::aws::classify(&e).explain(
                        "elasticbeanstalk:DescribeApplicationVersions",
                        &format!("Elastic Beanstalk application {}", self.app()),
                    )
                })?;
            let hit = out.application_versions().iter().find(|v| {
                v.source_bundle()
                    .is_some_and(|s| s.s3_bucket() == Some(bucket) && s.s3_key() == Some(key))
                    && !v
                        .status()
                        .is_some_and(|s| s.as_str().eq_ignore_ascii_case("failed"))
            });
            if let Some(v) = hit {
                return Ok(Some(v.clone()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn upload(&self, bucket: &str, key: &str, zipped: &bundle::Zipped) -> anyhow::Result<()> {
        let resource = format!("s3://{bucket}/{key}");
        if self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
        {
            self.say(&format!(
                "{resource} already holds this bundle; not uploaded again"
            ));
            return Ok(());
        }
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&zipped.path).await?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/zip")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::aws::classify(&e).explain("s3:PutObject", &resource))?;
        self.say(&format!(
            "uploaded {} to {resource}",
            crate::checks::context::human_bytes(zipped.bytes)
        ));
        Ok(())
    }

    /// CreateApplicationVersion with Process=true; a label already taken by
    /// other content gets the bundle's hash appended.
    async fn create_version(
        &mut self,
        label: &str,
        bucket: &str,
        key: &str,
        commit: &str,
        image: &str,
        sha: &str,
    ) -> anyhow::Result<String> {
        let mut label = label.to_string();
        for attempt in 0..2 {
            let source = S3Location::builder().s3_bucket(bucket).s3_key(key).build();
            let description = match self.plan.bundle {
                Bundle::Image => {
                    format!("fastdeploy: {image} at {}", &commit[..commit.len().min(12)])
                }
                Bundle::Source => {
                    format!("fastdeploy: source of {}", &commit[..commit.len().min(12)])
                }
            };
            let sent = self
                .eb
                .create_application_version()
                .application_name(self.app())
                .version_label(&label)
                .description(description.chars().take(200).collect::<String>())
                .source_bundle(source)
                .process(true)
                .send()
                .await;
            match sent {
                Ok(_) => {
                    self.say(&format!("application version {label} created from s3://{bucket}/{key}; EB is processing it"));
                    return Ok(label);
                }
                Err(e)
                    if attempt == 0
                        && e.message().is_some_and(|m| m.contains("already exists")) =>
                {
                    // Another run of the same content made it meanwhile: reuse it.
                    if self
                        .version_with(bucket, key)
                        .await?
                        .and_then(|v| v.version_label().map(str::to_string))
                        .as_deref()
                        == Some(label.as_str())
                    {
                        self.say(&format!("application version {label} was just created for this bundle by another run; reusing it"));
                        return Ok(label);
                    }
                    label = format!("{label}-{}", &sha[..8]);
                }
                Err(e) => {
                    let message = e.message().unwrap_or_default().to_string();
                    return Err(anyhow::anyhow!(
                        "Elastic Beanstalk refused application version {label} (CreateApplicationVersion: {}: {message})",
                        e.code().unwrap_or("error")
                    ));
                }
            }
        }
        anyhow::bail!("application versions {label} already exist with other content")
    }

    /// Waits until EB has processed the version: `Ok(Err(why))` when it failed it.
    async fn wait_processed(
        &mut self,
        label: &str,
    ) -> anyhow::Result<Result<Result<(), String>, Stop>> {
        loop {
            let out = self
                .eb
                .describe_application_versions()
                .application_name(self.app())
                .version_labels(label)
                .send()
                .await
                .map_err(|e| {
                    crate::aws::classify(&e).explain(
                        "elasticbeanstalk:DescribeApplicationVersions",
                        &format!("application version {label}"),
                    )
                })?;
            // EB sends the status in capitals, which the SDK's enum does not know.
            let status = out
                .application_versions()
                .first()
                .and_then(|v| v.status())
                .map(|s| s.as_str().to_ascii_uppercase());
            match status.as_deref() {
                Some("PROCESSED" | "UNPROCESSED") => {
                    self.say(&format!(
                        "version {label} is {}",
                        status.unwrap_or_default()
                    ));
                    return Ok(Ok(Ok(())));
                }
                Some("FAILED") => {
                    return Ok(Ok(Err(format!(
                        "Elastic Beanstalk could not process application version {label} (status FAILED): the bundle is not a valid ZIP, \
                         or an .ebextensions file did not pass EB's validation"
                    ))));
                }
                None => anyhow::bail!("application version {label} is gone"),
                Some(other) => self.say_once(format!("version {label} is {other}; waiting")),
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    async fn describe(&self) -> anyhow::Result<EnvironmentDescription> {
        let out = self
            .eb
            .describe_environments()
            .application_name(self.app())
            .environment_names(self.env())
            .include_deleted(false)
            .send()
            .await
            .map_err(|e| {
                crate::aws::classify(&e).explain(
                    "elasticbeanstalk:DescribeEnvironments",
                    &format!("Elastic Beanstalk environment {}", self.env()),
                )
            })?;
        out.environments()
            .iter()
            .find(|e| e.environment_name() == Some(self.env()))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("Elastic Beanstalk environment {} is gone", self.env()))
    }

    /// The label the environment runs now, if it can be read.
    async fn observe(&self) -> Option<String> {
        self.describe()
            .await
            .ok()
            .and_then(|e| e.version_label().map(str::to_string))
    }

    /// Waits until the environment is Ready (another update, or an abort,
    /// holds it in Updating/Aborting), saying what it waits for.
    async fn wait_ready(
        &mut self,
        why: &str,
    ) -> anyhow::Result<Result<EnvironmentDescription, Stop>> {
        loop {
            let env = self.describe().await?;
            match env.status() {
                Some(EnvironmentStatus::Ready) => return Ok(Ok(env)),
                Some(EnvironmentStatus::Terminating | EnvironmentStatus::Terminated) => {
                    anyhow::bail!(
                        "Elastic Beanstalk environment {} is being terminated",
                        self.env()
                    )
                }
                other => {
                    let status = other.map(|s| s.as_str()).unwrap_or("in an unknown state");
                    self.say_once(format!("environment is {status} {why}"));
                }
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    /// The events of `request_id` not shown yet, oldest first.
    async fn new_events(
        &mut self,
        request_id: &str,
    ) -> anyhow::Result<Vec<aws_sdk_elasticbeanstalk::types::EventDescription>> {
        let mut fresh = Vec::new();
        let mut token = None;
        for _ in 0..10 {
            let out = self
                .eb
                .describe_events()
                .application_name(self.app())
                .environment_name(self.env())
                // EB always answers with a RequestId; should one be missing,
                // the environment's events since the update stand in.
                .set_request_id(Some(request_id.to_string()).filter(|r| !r.is_empty()))
                .set_start_time(request_id.is_empty().then(|| {
                    self.since
                        .unwrap_or(aws_smithy_types::DateTime::from_secs(0))
                }))
                .max_records(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    crate::aws::classify(&e).explain(
                        "elasticbeanstalk:DescribeEvents",
                        &format!("Elastic Beanstalk environment {}", self.env()),
                    )
                })?;
            let mut reached_seen = false;
            for e in out.events() {
                if self.seen.contains(e) {
                    reached_seen = true;
                } else {
                    fresh.push(e.clone());
                }
            }
            match out.next_token() {
                Some(t) if !reached_seen && !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        fresh.reverse();
        fresh.retain(|e| self.seen.first_time(e));
        Ok(fresh)
    }

    /// Follows `request_id`'s events until EB says the update completed or
    /// failed, or the environment is Ready again.
    async fn follow(
        &mut self,
        request_id: &str,
        label: &str,
    ) -> anyhow::Result<Result<Followed, Stop>> {
        let mut completed = false;
        let mut ready_polls = 0;
        loop {
            let mut failures = Vec::new();
            for e in self.new_events(request_id).await? {
                let line = events::line(&e);
                self.say(&line);
                self.report.events.push(line.clone());
                match events::meaning(
                    e.message().unwrap_or_default(),
                    e.severity().map(|s| s.as_str()),
                ) {
                    Meaning::Failed => failures.push(line),
                    Meaning::Completed => completed = true,
                    Meaning::Progress => {}
                }
            }
            if !failures.is_empty() {
                failures.truncate(3);
                return Ok(Ok(Followed::Failed(failures.join(" / "))));
            }
            let env = self.describe().await?;
            if env.status() == Some(&EnvironmentStatus::Ready) {
                if completed {
                    return Ok(Ok(Followed::Completed(env)));
                }
                // Events can trail the status by a poll; after that, Ready
                // on our label with no failure said is a completed update.
                ready_polls += 1;
                if ready_polls >= 3 {
                    return Ok(Ok(if env.version_label() == Some(label) {
                        Followed::Completed(env)
                    } else {
                        Followed::Ended(env)
                    }));
                }
            }
            if let Err(stop) = self.pause().await {
                return Ok(Err(stop));
            }
        }
    }

    /// Waits for health Green (or Yellow with `allow-yellow`) on our label,
    /// for the health window. A window that lapses is a failure with our
    /// label serving (EB deployed it; its health is the verdict); the run's
    /// deadline or a cancellation inside the window is a stop like any other
    /// (`rollback` puts the previous label back).
    async fn health(&mut self, label: &str) -> anyhow::Result<Verdict> {
        let window =
            Instant::now() + Duration::from_secs_f64(HEALTH_WINDOW_SECONDS * self.pace.scale);
        let deadline = window.min(self.pace.deadline);
        let wanted = if self.plan.allow_yellow {
            "Green or Yellow"
        } else {
            "Green"
        };
        loop {
            let env = self.describe().await?;
            if env.version_label() != Some(label) {
                return Ok(Verdict::EbFailed(format!(
                    "the environment moved from version {label} to {} while its health was awaited",
                    env.version_label().unwrap_or("no version")
                )));
            }
            let color = env
                .health()
                .map(|h| h.as_str().to_string())
                .unwrap_or_else(|| "Grey".into());
            let status = env
                .health_status()
                .map(|h| h.as_str().to_string())
                .unwrap_or_default();
            self.say_once(format!(
                "health {color}{}",
                if status.is_empty() {
                    String::new()
                } else {
                    format!(" ({status})")
                }
            ));
            let now = Instant::now();
            let stop = if self.cancel.is_cancelled() {
                Some(Stop::Cancelled)
            } else if now >= self.pace.deadline {
                Some(Stop::TimedOut)
            } else {
                None
            };
            // Green `Info` is EB still reporting the update itself; the new
            // version's own health follows (basic health has no status). At
            // the end of the wait Green is Green.
            let waited_out = now >= deadline && stop != Some(Stop::Cancelled);
            if (color == "Green" && (status != "Info" || waited_out))
                || (color == "Yellow" && self.plan.allow_yellow)
            {
                return Ok(Verdict::Succeeded);
            }
            if let Some(stop) = stop {
                let causes = self.causes().await;
                self.report.evidence.extend(causes.iter().cloned());
                return Ok(Verdict::Stopped {
                    stop,
                    doing: format!(
                        "waiting for version {label}'s health to turn {wanted}; it is {color}"
                    ),
                    updated: true,
                });
            }
            if now >= window {
                let causes = self.causes().await;
                self.report.evidence.extend(causes.iter().cloned());
                let hint = if color == "Yellow" {
                    "; set `allow-yellow: true` to accept Yellow"
                } else {
                    ""
                };
                return Ok(Verdict::Unhealthy(format!(
                    "version {label} serves, but its health stayed {color}{} instead of {wanted} for {} s after the update{}{hint}",
                    if status.is_empty() {
                        String::new()
                    } else {
                        format!(" ({status})")
                    },
                    HEALTH_WINDOW_SECONDS as u64,
                    if causes.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", causes.join(" "))
                    }
                )));
            }
            let pause = self
                .pace
                .next_pause()
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = crate::timings::sleep("aws", pause) => {}
                _ = self.cancel.cancelled() => {}
            }
        }
    }

    /// Enhanced health's causes (`DescribeEnvironmentHealth`), as lines.
    async fn causes(&self) -> Vec<String> {
        let asked = self
            .eb
            .describe_environment_health()
            .environment_name(self.env())
            .attribute_names(EnvironmentHealthAttribute::All)
            .send()
            .await;
        match asked {
            Ok(h) => {
                let color = h.color().unwrap_or("?");
                let status = h.health_status().unwrap_or("?");
                let mut out = vec![format!("health {color} ({status})")];
                out.extend(h.causes().iter().map(|c| format!("cause: {c}")));
                out
            }
            // Basic health has no causes to give.
            Err(e) => vec![format!(
                "no health causes: {}",
                e.message().unwrap_or("DescribeEnvironmentHealth failed")
            )],
        }
    }

    async fn causes_as_evidence(&mut self) {
        let causes = self.causes().await;
        for c in &causes {
            self.say(c);
        }
        self.report.evidence.extend(causes);
    }

    /// AbortEnvironmentUpdate while an abortable update runs.
    async fn abort(&mut self) {
        let Ok(env) = self.describe().await else {
            return;
        };
        if env.status() != Some(&EnvironmentStatus::Updating) {
            return;
        }
        match self
            .eb
            .abort_environment_update()
            .environment_name(self.env())
            .send()
            .await
        {
            Ok(_) => self.say("AbortEnvironmentUpdate accepted"),
            Err(e) => self.say(&format!(
                "AbortEnvironmentUpdate refused: {}",
                e.message().unwrap_or("error")
            )),
        }
    }

    /// Makes sure the previous label serves: waits for the environment to
    /// settle, and when EB left our version on instances (a failed or aborted
    /// deployment) or the environment is on another label, deploys the
    /// previous label again (`redeploy`). Returns the label serving and a note.
    async fn back_to_previous(&mut self, deadline: Instant, redeploy: bool) -> Back {
        let saved = self.pace.deadline;
        self.pace.deadline = deadline;
        self.settling = true;
        let out = self.back_to_previous_inner(redeploy).await;
        self.settling = false;
        self.pace.deadline = saved;
        out
    }

    async fn back_to_previous_inner(&mut self, redeploy: bool) -> Back {
        let previous = self.report.previous_revision.clone();
        let env = match self
            .wait_ready("while EB ends the update; waiting for Ready to see what serves")
            .await
        {
            Ok(Ok(env)) => env,
            Ok(Err(_)) => {
                return Back::unsettled(
                    self.observe().await,
                    "the environment did not settle in time; what serves may still change",
                );
            }
            Err(e) => return Back::unsettled(None, chain_message(&e)),
        };
        let now = env.version_label().map(str::to_string);
        let Some(previous) = previous else {
            return Back::unsettled(now, "there is no earlier application version to go back to");
        };
        let stray = self.instances_not_on(&previous).await;
        let consistent =
            now.as_deref() == Some(previous.as_str()) && stray.as_ref().is_some_and(Vec::is_empty);
        if consistent {
            return Back {
                serving: now,
                note: None,
                settled: true,
            };
        }
        let left = match &stray {
            Some(s) if !s.is_empty() => format!("{} instance(s) run {}", s.len(), s.join(", ")),
            Some(_) => format!(
                "the environment is on {}",
                now.as_deref().unwrap_or("no version")
            ),
            None => "EB cannot say which version each instance runs (no enhanced health)".into(),
        };
        if !redeploy {
            return Back::unsettled(
                now,
                format!(
                    "{left}; `rollback` is off, so fastdeploy did not redeploy version {previous}"
                ),
            );
        }
        self.say(&format!("{left}: deploying version {previous} again"));
        self.since = Some(aws_smithy_types::DateTime::from(
            std::time::SystemTime::now() - Duration::from_secs(5),
        ));
        let rid = match self
            .eb
            .update_environment()
            .application_name(self.app())
            .environment_name(self.env())
            .version_label(&previous)
            .send()
            .await
        {
            Ok(out) => out.request_id().unwrap_or_default().to_string(),
            Err(e) => {
                return Back::unsettled(
                    now,
                    format!(
                        "redeploying version {previous} failed: {}",
                        e.message().unwrap_or("error")
                    ),
                );
            }
        };
        match self.follow(&rid, &previous).await {
            Ok(Ok(Followed::Completed(env))) => Back {
                settled: env.version_label() == Some(previous.as_str()),
                serving: env.version_label().map(str::to_string),
                note: Some(format!(
                    "fastdeploy deployed version {previous} again ({left})"
                )),
            },
            Ok(Ok(Followed::Failed(why))) => Back::unsettled(
                self.observe().await,
                format!("redeploying version {previous} failed too: {why}"),
            ),
            Ok(Ok(Followed::Ended(env))) => Back::unsettled(
                env.version_label().map(str::to_string),
                format!("redeploying version {previous} ended without a verdict"),
            ),
            Ok(Err(_)) => Back::unsettled(
                self.observe().await,
                format!("redeploying version {previous} did not finish in time"),
            ),
            Err(e) => Back::unsettled(self.observe().await, chain_message(&e)),
        }
    }

    /// Instances whose deployed version is not `label` (`None`: EB cannot say).
    async fn instances_not_on(&self, label: &str) -> Option<Vec<String>> {
        let out = self
            .eb
            .describe_instances_health()
            .environment_name(self.env())
            .attribute_names(InstancesHealthAttribute::Deployment)
            .send()
            .await
            .ok()?;
        Some(
            out.instance_health_list()
                .iter()
                .filter_map(|i| {
                    let on = i.deployment().and_then(|d| d.version_label())?;
                    (on != label).then(|| format!("{} on {on}", i.instance_id().unwrap_or("?")))
                })
                .collect(),
        )
    }

    /// Sleeps one poll, or stops at the deadline or on cancellation.
    async fn pause(&self) -> Result<(), Stop> {
        if self.settling {
            return crate::deploy::settle_pause(&self.pace).await;
        }
        crate::deploy::pause(&self.pace, self.cancel).await
    }
}

/// UpdateEnvironment's "Environment named X is in an invalid state for this
/// operation. Must be Ready.": someone else's update started meanwhile.
fn is_not_ready<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.message()
        .is_some_and(|m| m.contains("invalid state for this operation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(stack: Option<&str>, arn: Option<&str>) -> EnvironmentDescription {
        EnvironmentDescription::builder()
            .set_solution_stack_name(stack.map(str::to_string))
            .set_platform_arn(arn.map(str::to_string))
            .build()
    }

    #[test]
    fn docker_platforms_are_told_from_the_others() {
        assert!(is_docker(&env(
            Some("64bit Amazon Linux 2023 v4.3.0 running Docker"),
            None
        )));
        assert!(is_docker(&env(
            None,
            Some(
                "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.3.0"
            )
        )));
        assert!(!is_docker(&env(
            Some("64bit Amazon Linux 2023 v4.3.0 running Python 3.11"),
            None
        )));
        assert!(!is_docker(&env(
            Some("64bit Amazon Linux 2 v3.5.0 running ECS"),
            None
        )));
        assert!(!is_docker(&env(
            Some(
                "64bit Amazon Linux 2018.03 v2.26.0 running Multi-container Docker 20.10.13-ce (Generic)"
            ),
            None
        )));
    }
}
