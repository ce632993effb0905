//! One-off tasks before the service update (`before-deploy`): database
//! migrations run on the revision this deploy just registered, followed to a
//! verdict, so a failed migration stops the deploy before `UpdateService`.
//!
//! The task gets the service's network configuration, launch type or
//! capacity provider strategy and platform version; its container's
//! `awslogs` stream is followed while it runs. Success is only the named
//! container exiting 0. A run is once per revision: a client token derived
//! from the run and the revision makes a retried RunTask return the task it
//! already started, and success is recorded as a tag on the revision
//! (`fastdeploy:before-deploy`), so a re-run finds it done.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{ContainerOverride, Task, TaskOverride};
use serde_json::Value;
use sha2::Digest;

use super::preflight::{LiveService, container};
use crate::aws::Explained;
use crate::deploy::Context;
use crate::error::chain_message;
use crate::gha::Location;
use crate::logs::LogTail;
use crate::outcome::TaskReport;
use crate::plan::{BeforeDeploy, EcsPlan};
use crate::wait::{Pace, Poll, Stop, Stopped, Tempo, Waiter, settle_deadline};

/// The tag that records a successful `before-deploy` on a revision. Tags of
/// this prefix are fastdeploy's own and never copied to a new revision.
pub const DONE_TAG: &str = "fastdeploy:before-deploy";
/// `startedBy` on the task (ECS allows 36 characters).
pub const STARTED_BY: &str = "fastdeploy";

/// What identifies this command in this container: the done tag's value
/// starts with it, and it is part of the client token.
pub fn fingerprint(container: &str, command: &[String]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(container.as_bytes());
    for word in command {
        h.update([0]);
        h.update(word.as_bytes());
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// RunTask's client token: the run, the revision and the command. A retried
/// call (or a lost answer) within this run returns the task already started.
pub fn client_token(run_key: &str, revision: &str, fingerprint: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(run_key.as_bytes());
    h.update([0]);
    h.update(revision.as_bytes());
    h.update([0]);
    h.update(fingerprint.as_bytes());
    format!("fastdeploy-{}", &hex::encode(h.finalize())[..40])
}

/// The done tag's value on `tags` (DescribeTaskDefinition's), when it
/// records this command.
pub fn done_on(tags: Option<&Value>, fingerprint: &str) -> Option<String> {
    tags?
        .as_array()?
        .iter()
        .find(|t| t.get("key").and_then(Value::as_str) == Some(DONE_TAG))
        .and_then(|t| t.get("value").and_then(Value::as_str))
        .filter(|v| v.starts_with(fingerprint))
        .map(str::to_string)
}

/// The done tag's value on `tags`, whatever command it records.
pub fn ran_on(tags: Option<&Value>) -> Option<String> {
    tags?
        .as_array()?
        .iter()
        .find(|t| t.get("key").and_then(Value::as_str) == Some(DONE_TAG))
        .and_then(|t| t.get("value").and_then(Value::as_str))
        .map(str::to_string)
}

/// The container's `awslogs` group, stream prefix and region, from the
/// rendered task definition.
fn awslogs(td: &Value, container: &str) -> Option<(String, Option<String>, Option<String>)> {
    let c = td
        .get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
    let lc = c.get("logConfiguration")?;
    if lc.get("logDriver").and_then(Value::as_str) != Some("awslogs") {
        return None;
    }
    let opt = |k: &str| {
        lc.get("options")
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some((
        opt("awslogs-group")?,
        opt("awslogs-stream-prefix"),
        opt("awslogs-region"),
    ))
}

/// The report of a run of `before` in `container` that the revision's tags
/// record as done (an earlier run of this revision), said in the log; none
/// when no run is recorded.
pub fn already_ran(
    before: &BeforeDeploy,
    container: &str,
    tags: Option<&Value>,
    revision: &str,
    say: impl Fn(&str),
) -> Option<TaskReport> {
    let done = done_on(tags, &fingerprint(container, &before.command))?;
    let command = shell_words::join(&before.command);
    say(&format!(
        "before-deploy `{command}` already ran on {} ({done}); not running it again",
        crate::outcome::revision_label(revision)
    ));
    Some(TaskReport {
        command,
        container: container.to_string(),
        task: done.split_whitespace().nth(1).map(str::to_string),
        outcome: "already-done".into(),
        ..TaskReport::default()
    })
}

/// On a service that already runs this revision nothing is deployed, so the
/// one-off task does not run; when an earlier run of this revision ran it,
/// the report says so (the summary's "already ran on this revision").
pub fn already_done(
    before: &BeforeDeploy,
    pre: &LiveService,
    family: &str,
    revision: &str,
    say: &impl Fn(&str),
) -> Option<TaskReport> {
    let container = container(before, pre, family).ok()?;
    let done = already_ran(before, container, pre.current.tags.as_ref(), revision, say);
    if done.is_none() {
        say(&format!(
            "before-deploy `{}` not run: nothing is deployed, and no run of it on {} is recorded",
            shell_words::join(&before.command),
            crate::outcome::revision_label(revision)
        ));
    }
    done
}

/// One run of the `before-deploy` command on our revision, and what it needs.
pub struct OneOff<'a> {
    pub cx: &'a Context<'a>,
    pub plan: &'a EcsPlan,
    pub before: &'a BeforeDeploy,
    pub pre: &'a LiveService,
    /// Our revision (task definition ARN) and its rendered JSON.
    pub revision: &'a str,
    pub rendered: &'a Value,
}

impl OneOff<'_> {
    fn say(&self, line: &str) {
        self.cx.actions.line(line);
    }

    /// Runs the command once on our revision, or finds it done. `Err` is a
    /// failure of fastdeploy's own calls; the task's own failure is in the
    /// report (`outcome` "failed", "stopped") with `Ok`.
    pub async fn run(&self, w: &Waiter<'_>, family: &str) -> anyhow::Result<TaskReport> {
        let container = container(self.before, self.pre, family)?;
        let command = shell_words::join(&self.before.command);
        let print = fingerprint(container, &self.before.command);
        let mut report = TaskReport {
            command: command.clone(),
            container: container.to_string(),
            ..TaskReport::default()
        };

        let described = super::wire::describe(&self.cx.clients.ecs, self.revision).await?;
        if let Some(done) = already_ran(
            self.before,
            container,
            described.tags.as_ref(),
            self.revision,
            |l| self.say(l),
        ) {
            return Ok(done);
        }

        // Inside the deploy's log group (groups do not nest, and parallel
        // deploys share one), each line says it is the one-off task's.
        self.say(&format!(
            "before-deploy: running `{command}` on {}",
            crate::outcome::revision_label(self.revision)
        ));
        self.start_and_follow(w, family, container, &print, &mut report)
            .await?;
        if report.outcome == "succeeded" {
            let value = format!("{print} {} exit 0", report.task.as_deref().unwrap_or("-"));
            let tagged = self
                .cx
                .clients
                .ecs
                .tag_resource()
                .resource_arn(self.revision)
                .tags(
                    aws_sdk_ecs::types::Tag::builder()
                        .key(DONE_TAG)
                        .value(value)
                        .build(),
                )
                .send()
                .await;
            if let Err(e) = tagged {
                // Only costs a second run of an idempotent migration on a re-run.
                self.cx.actions.warning(
                    &format!(
                        "could not record the before-deploy run on {} (ecs:TagResource: {}); a re-run of this deploy would run it again",
                        self.revision,
                        chain_message(&anyhow::Error::new(e))
                    ),
                    &Location::default(),
                );
            }
        }
        Ok(report)
    }

    /// A before-deploy task that an earlier attempt of this deploy started
    /// on our revision with our command and that still runs (the job was
    /// killed mid-task, so it neither stopped the task nor recorded it as
    /// done). Following it beats running the migration a second time beside
    /// it. What cannot be listed is a warning, and a new task starts.
    async fn earlier_task(&self, family: &str, container: &str) -> Option<String> {
        let listed = self
            .cx
            .clients
            .ecs
            .list_tasks()
            .cluster(&self.plan.cluster)
            .family(family)
            .started_by(STARTED_BY)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .send()
            .await;
        let arns = match listed {
            Ok(out) => out.task_arns().to_vec(),
            Err(e) => {
                self.could_not_look("ecs:ListTasks", anyhow::Error::new(e));
                return None;
            }
        };
        if arns.is_empty() {
            return None;
        }
        let described = match self
            .cx
            .clients
            .ecs
            .describe_tasks()
            .cluster(&self.plan.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                self.could_not_look("ecs:DescribeTasks", anyhow::Error::new(e));
                return None;
            }
        };
        described
            .tasks()
            .iter()
            .find(|t| {
                t.task_definition_arn() == Some(self.revision)
                    && t.overrides().is_some_and(|o| {
                        o.container_overrides().iter().any(|c| {
                            c.name() == Some(container)
                                && c.command() == self.before.command.as_slice()
                        })
                    })
            })
            .and_then(|t| t.task_arn().map(str::to_string))
    }

    fn could_not_look(&self, action: &str, e: anyhow::Error) {
        self.cx.actions.warning(
            &format!(
                "could not look for a before-deploy task still running from an earlier attempt ({action}: {}); starting one",
                chain_message(&e)
            ),
            &Location::default(),
        );
    }

    async fn start_and_follow(
        &self,
        w: &Waiter<'_>,
        family: &str,
        container: &str,
        print: &str,
        report: &mut TaskReport,
    ) -> anyhow::Result<()> {
        if let Some(arn) = self.earlier_task(family, container).await {
            let id = arn.rsplit('/').next().unwrap_or(&arn).to_string();
            self.say(&format!(
                "before-deploy: task {id}, started by an earlier attempt, still runs `{}` on {}; following it instead of starting it again",
                shell_words::join(&self.before.command),
                self.revision.rsplit('/').next().unwrap_or("")
            ));
            return self.follow(w, arn, container, report).await;
        }
        let service = &self.pre.service;
        let token = client_token(self.cx.run_key, self.revision, print);
        let mut req = self
            .cx
            .clients
            .ecs
            .run_task()
            .cluster(&self.plan.cluster)
            .task_definition(self.revision)
            .count(1)
            .started_by(STARTED_BY)
            .client_token(&token)
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(container)
                            .set_command(Some(self.before.command.clone()))
                            .build(),
                    )
                    .build(),
            )
            .set_network_configuration(service.network_configuration().cloned());
        if !service.capacity_provider_strategy().is_empty() {
            req = req.set_capacity_provider_strategy(Some(
                service.capacity_provider_strategy().to_vec(),
            ));
        } else if let Some(lt) = service.launch_type() {
            req = req.launch_type(lt.clone());
        }
        if let Some(pv) = service.platform_version() {
            req = req.platform_version(pv);
        }
        let out = req.send().await.map_err(|e| {
            crate::aws::classify(&e).explain(
                "ecs:RunTask",
                &format!(
                    "the before-deploy task of service {} in cluster {}",
                    self.plan.service, self.plan.cluster
                ),
            )
        })?;
        let Some(task) = out.tasks().first() else {
            let why = out
                .failures()
                .iter()
                .map(|f| match f.detail().filter(|d| !d.is_empty()) {
                    Some(detail) => format!("{} ({detail})", f.reason().unwrap_or("no reason")),
                    None => f.reason().unwrap_or("no reason").to_string(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let why = if why.is_empty() {
                "RunTask returned neither a task nor a failure".to_string()
            } else {
                why
            };
            report.outcome = "failed".into();
            report.failure = Some(format!("ECS could not start the task: {why}"));
            return Ok(());
        };
        let arn = task.task_arn().unwrap_or_default().to_string();
        self.say(&format!(
            "before-deploy: started task {} on {} in container {container}",
            arn.rsplit('/').next().unwrap_or(&arn),
            self.revision.rsplit('/').next().unwrap_or("")
        ));
        self.follow(w, arn, container, report).await
    }

    /// Follows the task to a verdict: its status and log lines as they come,
    /// StopTask on timeout or cancellation. A look that keeps failing ends
    /// the wait with the task left alone: a migration fastdeploy cannot see
    /// is not one to kill halfway.
    async fn follow(
        &self,
        w: &Waiter<'_>,
        arn: String,
        container: &str,
        report: &mut TaskReport,
    ) -> anyhow::Result<()> {
        let id = arn.rsplit('/').next().unwrap_or(&arn).to_string();
        report.task = Some(id.clone());
        let mut tail = self.log_tail(container, &id);
        let started = Instant::now();
        let cx = self.cx;
        let pace = Pace::new(
            cx.clock,
            self.plan.watch.poll_seconds,
            self.before.wait_seconds as f64,
        );
        let mut tw = w.with_pace(pace);
        // A migration is never stopped half-way by an alarm: the service
        // update after it is, before it starts.
        tw.watching(None);
        let mut last_status = String::new();
        let doing = format!("waiting for the before-deploy task {id}");
        let looked = tw
            .until(&doing, async || {
                let task = self.describe(&arn).await?;
                let status = task.last_status().unwrap_or("UNKNOWN").to_string();
                if status != last_status {
                    self.say(&format!("before-deploy: task {id} {status}"));
                    last_status = status.clone();
                }
                self.follow_logs(&mut tail, report).await;
                Ok(if status == "STOPPED" {
                    Poll::Ready(task)
                } else {
                    Poll::Pending(Tempo::Steady)
                })
            })
            .await;
        let stopped = match looked {
            Ok(task) => task,
            Err(e) => {
                let Some(s) = Stopped::find(&e) else {
                    return Err(e);
                };
                report.seconds = Some(started.elapsed().as_secs_f64());
                let why = match &s.stop {
                    Stop::Unreachable { times, last, .. } => {
                        report.outcome = "failed".into();
                        report.failure = Some(format!(
                            "{times} looks at task {id} in a row failed, the last: {last}; it may still run (fastdeploy did not stop it)"
                        ));
                        return Ok(());
                    }
                    Stop::Cancelled => "the workflow was cancelled".to_string(),
                    Stop::Alarm { alarm, .. } => format!("alarm `{alarm}` went to ALARM"),
                    // A task ECS could not place or pull for never ran at all.
                    Stop::TimedOut if never_ran(&last_status) => format!(
                        "it did not start within before-deploy-minutes (last status {})",
                        if last_status.is_empty() {
                            "unknown"
                        } else {
                            &last_status
                        }
                    ),
                    Stop::TimedOut => "it ran longer than before-deploy-minutes".to_string(),
                };
                report.outcome = "stopped".into();
                report.failure = Some(format!("{why}; fastdeploy stopped task {id}"));
                self.stop(&tw, &arn, &why, &mut tail, report).await;
                return Ok(());
            }
        };
        // What the task wrote last may land after it stopped.
        crate::timings::sleep("aws", cx.clock.of(1.0).min(Duration::from_secs(1))).await;
        self.follow_logs(&mut tail, report).await;
        report.seconds = Some(started.elapsed().as_secs_f64());
        self.judge(&stopped, container, report);
        Ok(())
    }

    /// The task's log stream, when its container logs to awslogs with a
    /// stream prefix in this region; else says why its output is not shown.
    fn log_tail(&self, container: &str, id: &str) -> Option<LogTail> {
        match awslogs(self.rendered, container) {
            None => {
                self.say(&format!("before-deploy: container {container} has no awslogs log configuration; its output is not shown"));
                None
            }
            Some((group, None, _)) => {
                self.say(&format!(
                    "before-deploy: logs go to {group} without a stream prefix; the stream cannot be named, so they are not shown"
                ));
                None
            }
            Some((group, Some(_), Some(region))) if Some(region.as_str()) != self.cx.region => {
                self.say(&format!(
                    "before-deploy: logs go to {group} in {region}, another region; not shown here"
                ));
                None
            }
            Some((group, Some(prefix), _)) => {
                Some(LogTail::new(group, format!("{prefix}/{container}/{id}")))
            }
        }
    }

    async fn describe(&self, arn: &str) -> anyhow::Result<Task> {
        let out = self
            .cx
            .clients
            .ecs
            .describe_tasks()
            .cluster(&self.plan.cluster)
            .tasks(arn)
            .send()
            .await
            .explained("ecs:DescribeTasks", || {
                format!("the before-deploy task {arn}")
            })?;
        out.tasks()
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("ECS no longer knows the before-deploy task {arn}"))
    }

    async fn follow_logs(&self, tail: &mut Option<LogTail>, report: &mut TaskReport) {
        let Some(t) = tail.as_mut() else { return };
        match t.poll(&self.cx.clients.logs).await {
            Ok(polled) => {
                for line in polled.lines {
                    self.say(&format!("before-deploy | {line}"));
                }
                report.last_lines = t.last_lines();
            }
            Err(e) => {
                self.say(&format!(
                    "before-deploy: its log cannot be read ({}); following the task without it",
                    chain_message(&e)
                ));
                *tail = None;
            }
        }
    }

    /// StopTask, then a short wait for STOPPED (longer after a timeout than
    /// after a cancellation, when the runner kills the job soon).
    async fn stop(
        &self,
        w: &Waiter<'_>,
        arn: &str,
        why: &str,
        tail: &mut Option<LogTail>,
        report: &mut TaskReport,
    ) {
        let sent = self
            .cx
            .clients
            .ecs
            .stop_task()
            .cluster(&self.plan.cluster)
            .task(arn)
            .reason(format!("fastdeploy: {why}"))
            .send()
            .await;
        if let Err(e) = sent {
            let e = anyhow::Error::new(e);
            self.say(&format!(
                "before-deploy: StopTask failed: {}",
                chain_message(&e)
            ));
            return;
        }
        self.say(&format!("before-deploy: {why}: StopTask sent"));
        let mut settle = w.settling(settle_deadline(
            self.cx.clock,
            self.cx.cancel.is_cancelled(),
        ));
        let stopped = settle
            .until("waiting for the stopped task", async || {
                let stopped =
                    matches!(self.describe(arn).await, Ok(t) if t.last_status() == Some("STOPPED"));
                Ok(if stopped {
                    Poll::Ready(())
                } else {
                    Poll::Pending(Tempo::Steady)
                })
            })
            .await;
        if stopped.is_ok() {
            self.say("before-deploy: task STOPPED");
        }
        self.follow_logs(tail, report).await;
    }

    /// Success only when the named container exited 0.
    fn judge(&self, task: &Task, container: &str, report: &mut TaskReport) {
        let c = task
            .containers()
            .iter()
            .find(|c| c.name() == Some(container));
        let exit = c.and_then(|c| c.exit_code());
        report.exit_code = exit;
        if exit == Some(0) {
            report.outcome = "succeeded".into();
            self.say(&format!("before-deploy: `{}` exited 0", report.command));
            return;
        }
        let mut why = Vec::new();
        match exit {
            Some(code) => why.push(format!("container {container} exited with code {code}")),
            None => why.push(format!("container {container} has no exit code")),
        }
        if let Some(code) = task.stop_code() {
            why.push(format!("stop code {}", code.as_str()));
        }
        if let Some(r) = task.stopped_reason() {
            why.push(format!("stopped reason: {r}"));
        }
        if let Some(r) = c.and_then(|c| c.reason()) {
            why.push(format!("container reason: {r}"));
        }
        report.outcome = "failed".into();
        report.failure = Some(why.join("; "));
    }
}

/// Whether a task last seen in `status` never got as far as running: ECS
/// moves a task PROVISIONING → PENDING → ACTIVATING → RUNNING.
fn never_ran(status: &str) -> bool {
    matches!(status, "" | "PROVISIONING" | "PENDING" | "ACTIVATING")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_change_with_the_run_the_revision_and_the_command() {
        let a = client_token(
            "acme/shop/1001/1",
            "arn:td/web:2",
            &fingerprint("app", &["migrate".into()]),
        );
        assert!(a.len() <= 64 && a.is_ascii(), "{a}");
        assert_eq!(
            a,
            client_token(
                "acme/shop/1001/1",
                "arn:td/web:2",
                &fingerprint("app", &["migrate".into()])
            )
        );
        assert_ne!(
            a,
            client_token(
                "acme/shop/1001/2",
                "arn:td/web:2",
                &fingerprint("app", &["migrate".into()])
            )
        );
        assert_ne!(
            a,
            client_token(
                "acme/shop/1001/1",
                "arn:td/web:3",
                &fingerprint("app", &["migrate".into()])
            )
        );
        assert_ne!(
            a,
            client_token(
                "acme/shop/1001/1",
                "arn:td/web:2",
                &fingerprint("app", &["migrate".into(), "--fake".into()])
            )
        );
        // Words are kept apart: ["a b"] is not ["a", "b"].
        assert_ne!(
            fingerprint("app", &["a b".into()]),
            fingerprint("app", &["a".into(), "b".into()])
        );
    }

    #[test]
    fn the_done_tag_counts_only_for_the_same_command() {
        let print = fingerprint("app", &["migrate".into()]);
        let tags = serde_json::json!([{"key": "team", "value": "shop"}, {"key": DONE_TAG, "value": format!("{print} abc123 exit 0")}]);
        assert_eq!(
            done_on(Some(&tags), &print).as_deref(),
            Some(format!("{print} abc123 exit 0").as_str())
        );
        assert_eq!(
            done_on(Some(&tags), &fingerprint("app", &["other".into()])),
            None
        );
        assert_eq!(done_on(None, &print), None);
    }

    #[test]
    fn awslogs_options_are_read_from_the_container() {
        let td = serde_json::json!({"containerDefinitions": [
            {"name": "app", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs", "awslogs-region": "eu-west-1"}}},
            {"name": "sidecar", "logConfiguration": {"logDriver": "json-file"}}
        ]});
        assert_eq!(
            awslogs(&td, "app"),
            Some((
                "/ecs/web".into(),
                Some("ecs".into()),
                Some("eu-west-1".into())
            ))
        );
        assert_eq!(awslogs(&td, "sidecar"), None);
        assert_eq!(awslogs(&td, "nope"), None);
    }
}
