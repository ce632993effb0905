//! The looks an Elastic Beanstalk deploy makes while it waits: the
//! application version's status, the environment's status and label, our
//! request's events, and health — one look each, through the driver's
//! waiter.

use std::time::Instant;

use aws_sdk_elasticbeanstalk::types::{
    EnvironmentDescription, EnvironmentHealthAttribute, EnvironmentStatus, EventDescription,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Environment;
use super::events::{self, Meaning};
use crate::aws::Explained;
use crate::deploy::{Context, Verdict};
use crate::outcome::DeployReport;
use crate::wait::{Poll, Stop, Stopped, Tempo, Waiter};

/// How long health may take to turn Green after EB says the update
/// completed (within the one deadline): enhanced health reports every 10 s
/// and a fresh container may fail its first checks.
pub const HEALTH_WINDOW_SECONDS: f64 = 120.0;

/// How one request's update ended.
pub enum Followed {
    /// EB said it completed (or the environment is Ready on the label with
    /// no failure said).
    Completed(EnvironmentDescription),
    Failed(String),
    /// The environment is Ready on another label and EB said nothing.
    Ended(EnvironmentDescription),
}

/// The environment as EB describes it now.
pub async fn describe(
    e: &Environment<'_>,
    cx: &Context<'_>,
) -> anyhow::Result<EnvironmentDescription> {
    let out = cx
        .clients
        .beanstalk
        .describe_environments()
        .application_name(e.app())
        .environment_names(e.env())
        .include_deleted(false)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeEnvironments", || {
            format!("Elastic Beanstalk environment {}", e.env())
        })?;
    out.environments()
        .iter()
        .find(|d| d.environment_name() == Some(e.env()))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("Elastic Beanstalk environment {} is gone", e.env()))
}

impl Environment<'_> {
    /// One look: done when EB has processed the version (`Err(why)` when it
    /// failed it).
    pub(super) async fn processed(
        &mut self,
        cx: &Context<'_>,
        label: &str,
    ) -> anyhow::Result<Poll<Result<(), String>>> {
        let out = cx
            .clients
            .beanstalk
            .describe_application_versions()
            .application_name(self.app())
            .version_labels(label)
            .send()
            .await
            .explained("elasticbeanstalk:DescribeApplicationVersions", || {
                format!("application version {label}")
            })?;
        // EB sends the status in capitals, which the SDK's enum does not know.
        let status = out
            .application_versions()
            .first()
            .and_then(|v| v.status())
            .map(|s| s.as_str().to_ascii_uppercase());
        match status.as_deref() {
            Some(s @ ("PROCESSED" | "UNPROCESSED")) => {
                self.say(cx, &format!("version {label} is {s}"));
                Ok(Poll::Ready(Ok(())))
            }
            Some("FAILED") => Ok(Poll::Ready(Err(format!(
                "Elastic Beanstalk could not process application version {label} (status FAILED): the bundle is not a valid ZIP, \
                 or an .ebextensions file did not pass EB's validation"
            )))),
            None => anyhow::bail!("application version {label} is gone"),
            Some(other) => {
                self.say_once(cx, format!("version {label} is {other}; waiting"));
                Ok(Poll::Pending(Tempo::Steady))
            }
        }
    }

    /// One look: done when the environment is Ready (another update, or an
    /// abort, holds it in Updating/Aborting), saying what it waits for.
    pub(super) async fn ready(
        &mut self,
        cx: &Context<'_>,
        why: &str,
    ) -> anyhow::Result<Poll<EnvironmentDescription>> {
        let env = describe(self, cx).await?;
        match env.status() {
            Some(EnvironmentStatus::Ready) => Ok(Poll::Ready(env)),
            Some(EnvironmentStatus::Terminating | EnvironmentStatus::Terminated) => {
                anyhow::bail!(
                    "Elastic Beanstalk environment {} is being terminated",
                    self.env()
                )
            }
            other => {
                let status = other.map(|s| s.as_str()).unwrap_or("in an unknown state");
                self.say_once(cx, format!("environment is {status} {why}"));
                Ok(Poll::Pending(Tempo::Steady))
            }
        }
    }

    /// The events of `request_id` not shown yet, oldest first.
    async fn new_events(
        &mut self,
        cx: &Context<'_>,
        request_id: &str,
    ) -> anyhow::Result<Vec<EventDescription>> {
        let mut fresh = Vec::new();
        let mut token = None;
        for _ in 0..10 {
            let out = cx
                .clients
                .beanstalk
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
                .explained("elasticbeanstalk:DescribeEvents", || {
                    format!("Elastic Beanstalk environment {}", self.env())
                })?;
            let mut reached_seen = false;
            for ev in out.events() {
                if self.seen.contains(ev) {
                    reached_seen = true;
                } else {
                    fresh.push(ev.clone());
                }
            }
            match out.next_token() {
                Some(t) if !reached_seen && !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        fresh.reverse();
        fresh.retain(|ev| self.seen.first_time(ev));
        Ok(fresh)
    }

    /// One look at `request_id`'s update: done when EB says it completed or
    /// failed, or the environment is Ready again (events can trail the
    /// status by a poll; after three Ready looks, Ready on our label with no
    /// failure said is a completed update). `follow` keeps what earlier
    /// looks saw.
    pub(super) async fn follow(
        &mut self,
        cx: &Context<'_>,
        request_id: &str,
        label: &str,
        seen: &mut Following,
        report: &mut DeployReport,
    ) -> anyhow::Result<Poll<Followed>> {
        let mut failures = Vec::new();
        for ev in self.new_events(cx, request_id).await? {
            let line = events::line(&ev);
            self.say(cx, &line);
            report.events.push(line.clone());
            match events::meaning(
                ev.message().unwrap_or_default(),
                ev.severity().map(|s| s.as_str()),
            ) {
                Meaning::Failed => failures.push(line),
                Meaning::Completed => seen.completed = true,
                Meaning::Progress => {}
            }
        }
        if !failures.is_empty() {
            failures.truncate(3);
            return Ok(Poll::Ready(Followed::Failed(failures.join(" / "))));
        }
        let env = describe(self, cx).await?;
        if env.status() == Some(&EnvironmentStatus::Ready) {
            if seen.completed {
                return Ok(Poll::Ready(Followed::Completed(env)));
            }
            seen.ready_looks += 1;
            if seen.ready_looks >= 3 {
                return Ok(Poll::Ready(if env.version_label() == Some(label) {
                    Followed::Completed(env)
                } else {
                    Followed::Ended(env)
                }));
            }
        }
        Ok(Poll::Pending(Tempo::Steady))
    }

    /// Waits for health Green (or Yellow with `allow-yellow`) on our label,
    /// for the health window. A window that lapses is a failure with our
    /// label serving (EB deployed it; its health is the verdict); the run's
    /// deadline or a cancellation inside the window is a stop like any other
    /// (`rollback` puts the previous label back).
    pub(super) async fn health(
        &mut self,
        cx: &Context<'_>,
        w: &mut Waiter<'_>,
        label: &str,
        report: &mut DeployReport,
    ) -> anyhow::Result<Verdict> {
        let deadline = w.pace().deadline();
        let window = cx.clock.after(HEALTH_WINDOW_SECONDS).min(deadline);
        let wanted = if self.plan.allow_yellow {
            "Green or Yellow"
        } else {
            "Green"
        };
        let mut within = w.with_pace(w.pace().until(window));
        let mut last = (String::from("Grey"), String::new());
        let doing = format!("waiting for version {label}'s health to turn {wanted}");
        let looked = within
            .until(&doing, async || {
                self.healthy(cx, label, window, &mut last).await
            })
            .await;
        let stop = match looked {
            Ok(Verdict::Failed {
                reason,
                put_back: true,
            }) => {
                return eb_failed(self, cx, label, reason, report).await;
            }
            Ok(verdict) => return Ok(verdict),
            Err(err) => match Stopped::find(&err) {
                Some(s) => s.stop.clone(),
                None => return Err(err),
            },
        };
        let causes = self.causes(cx).await;
        report.evidence.extend(causes.iter().cloned());
        let (color, status) = last;
        if stop == Stop::TimedOut && Instant::now() < deadline {
            let hint = if color == "Yellow" {
                "; set `allow-yellow: true` to accept Yellow"
            } else {
                ""
            };
            return Ok(Verdict::Failed {
                reason: format!(
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
                ),
                put_back: false,
            });
        }
        Err(Stopped {
            stop,
            doing: format!("{doing}; it is {color}"),
        }
        .into())
    }

    /// One look at health on `label`: Green passes, and Yellow with
    /// `allow-yellow`. Green `Info` is EB still reporting the update itself;
    /// the new version's own health follows (basic health has no status).
    /// At the end of the window Green is Green.
    async fn healthy(
        &mut self,
        cx: &Context<'_>,
        label: &str,
        window: Instant,
        last: &mut (String, String),
    ) -> anyhow::Result<Poll<Verdict>> {
        let env = describe(self, cx).await?;
        if env.version_label() != Some(label) {
            return Ok(Poll::Ready(Verdict::Failed {
                reason: format!(
                    "the environment moved from version {label} to {} while its health was awaited",
                    env.version_label().unwrap_or("no version")
                ),
                put_back: true,
            }));
        }
        let color = env
            .health()
            .map(|h| h.as_str().to_string())
            .unwrap_or_else(|| "Grey".into());
        let status = env
            .health_status()
            .map(|h| h.as_str().to_string())
            .unwrap_or_default();
        *last = (color.clone(), status.clone());
        let shown = if status.is_empty() {
            String::new()
        } else {
            format!(" ({status})")
        };
        self.say_once(cx, format!("health {color}{shown}"));
        let waited_out = Instant::now() >= window && !cx.cancel.is_cancelled();
        let green = color == "Green" && (status != "Info" || waited_out);
        if green || (color == "Yellow" && self.plan.allow_yellow) {
            self.say(
                cx,
                &format!(
                    "deployed: environment {} is Ready on version {label}",
                    self.env()
                ),
            );
            return Ok(Poll::Ready(Verdict::Succeeded));
        }
        Ok(Poll::Pending(Tempo::Steady))
    }

    /// Enhanced health's causes (`DescribeEnvironmentHealth`), as lines.
    pub(super) async fn causes(&self, cx: &Context<'_>) -> Vec<String> {
        let asked = cx
            .clients
            .beanstalk
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
}

/// What the looks at one request's update have seen so far.
#[derive(Debug, Default)]
pub struct Following {
    /// EB said the update completed.
    pub completed: bool,
    /// Looks that found the environment Ready.
    pub ready_looks: u32,
}

/// EB failed or reverted our update: the reason and EB's health causes are
/// the evidence, and what served is put back (EB reverts it itself; the
/// driver makes sure of it).
pub(super) async fn eb_failed(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    label: &str,
    why: String,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    report.evidence.push(why.clone());
    let causes = e.causes(cx).await;
    for c in &causes {
        e.say(cx, c);
    }
    report.evidence.extend(causes);
    e.failed_by_eb = true;
    Ok(Verdict::Failed {
        reason: format!("EB did not deploy version {label}: {why}"),
        put_back: true,
    })
}
