//! Start and finish notifications (Slack, GitHub deployments, the pull
//! request comment), orchestrated so that a reporting failure is only ever a
//! warning: nothing here changes the run's result or returns an error.
//!
//! Also the log helpers the executor uses for its output: one group per
//! phase and component, one line per event, the duration on the closing line.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::gha::{Actions, Location};
use crate::outcome::{RunReport, RunResult, Severity, Warning};
use crate::plan::{GithubPlan, Plan, SlackPlan};
use crate::report::github::{
    DeploymentState, GithubClient, GithubError, NewDeployment, NewStatus, RunId,
};
use crate::report::slack::{self, Destination, Posted, Retry, SlackClient, SlackError};
use crate::report::summary::{self, Baseline};
use crate::settings::Settings;
use crate::settings::SlackOn;

struct SlackSetup {
    client: SlackClient,
    dest: Destination,
    on: SlackOn,
    /// Where we post, for log lines ("#deploys" or "the webhook").
    label: String,
}

/// The client is built on first use, inside the async runtime: octocrab
/// spawns its worker on the runtime current when it is built.
struct GithubSetup {
    api_url: String,
    token: SecretString,
    repository: String,
    plan: GithubPlan,
    clock: crate::clock::Clock,
}

/// Reporting for one run. Built at the edge from the plan and settings.
pub struct Notifier<'a> {
    actions: &'a Actions,
    slack: Option<SlackSetup>,
    github: Option<GithubSetup>,
    /// The GitHub deployment `start` created (or found).
    deployment: Option<u64>,
    /// The bot's "deploying" message, updated at the end.
    posted: Option<Posted>,
    baselines: BTreeMap<String, Baseline>,
    /// A pull request's diff against its base branch's environment.
    diff: Option<summary::EnvDiff>,
    /// Every warning shown so far; `finish` returns them.
    warnings: Vec<Warning>,
}

impl<'a> Notifier<'a> {
    /// Reads the secrets from the settings, masks them and builds the
    /// clients. Problems become warnings (shown now, returned by `finish`).
    pub fn new(plan: &Plan, settings: &Settings, actions: &'a Actions) -> Notifier<'a> {
        let mut n = Notifier {
            actions,
            slack: None,
            github: None,
            deployment: None,
            posted: None,
            baselines: BTreeMap::new(),
            diff: None,
            warnings: Vec::new(),
        };

        if let Some(slack_plan) = &plan.notifications.slack {
            let (dest, on, label) = match slack_plan {
                SlackPlan::Webhook { on } => {
                    let url = settings.slack_webhook_url.clone().unwrap_or_default();
                    (
                        Destination::Webhook { url },
                        on.clone(),
                        "the Slack webhook".to_string(),
                    )
                }
                SlackPlan::Bot { channel, on } => {
                    let token = settings.slack_bot_token.clone().unwrap_or_default();
                    let dest = Destination::Bot {
                        api_url: settings.slack_api_url.clone(),
                        token,
                        channel: channel.clone(),
                    };
                    (dest, on.clone(), format!("Slack channel {channel}"))
                }
            };
            let valid = match &dest {
                Destination::Webhook { url } => url::Url::parse(url.expose_secret())
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
                Destination::Bot { .. } => true,
            };
            if !valid {
                n.warn("Slack", SlackError::InvalidWebhookUrl.to_string());
            } else {
                match SlackClient::new(Retry::scaled(settings.clock)) {
                    Ok(client) => {
                        n.slack = Some(SlackSetup {
                            client,
                            dest,
                            on,
                            label,
                        })
                    }
                    Err(e) => n.warn("Slack", format!("{e:#}; Slack is off for this run")),
                }
            }
        }

        if let Some(gh_plan) = &plan.notifications.github {
            match (&settings.github_token, plan.context.repository.as_deref()) {
                (Some(token), Some(repo)) => {
                    n.github = Some(GithubSetup {
                        api_url: plan.context.api_url.clone(),
                        token: token.clone(),
                        repository: repo.to_string(),
                        plan: gh_plan.clone(),
                        clock: settings.clock,
                    })
                }
                (_, None) => tracing::debug!("no GITHUB_REPOSITORY: GitHub reporting is off"),
                (None, _) => tracing::debug!("no GitHub token: GitHub reporting is off"),
            }
        }
        n
    }

    /// The default branch's last build of `component`, for the PR comment's
    /// "change against" columns (the executor looks it up when it can).
    pub fn set_diff(&mut self, diff: summary::EnvDiff) {
        self.diff = Some(diff);
    }

    pub fn set_baseline(&mut self, component: &str, baseline: Baseline) {
        self.baselines.insert(component.to_string(), baseline);
    }

    /// Announces the run: the bot's "deploying" message (only with
    /// `slack-on: always`, so a filtered run leaves no dangling message) and
    /// the GitHub deployment, set in progress.
    pub async fn start(&mut self, plan: &Plan) {
        if let Some(s) = &self.slack
            && s.on == SlackOn::Always
            && matches!(s.dest, Destination::Bot { .. })
        {
            match s
                .client
                .send(&s.dest, &slack::deploying_message(plan), None)
                .await
            {
                Ok(posted) => {
                    self.actions
                        .line(&format!("Slack: posted \"deploying\" to {}", s.label));
                    self.posted = posted;
                }
                Err(e) => {
                    // A rejected token or unknown channel will not get
                    // better by the end of the run: one warning, then off.
                    if matches!(e, SlackError::Api { .. } | SlackError::InvalidWebhookUrl) {
                        self.slack = None;
                    }
                    self.warn("Slack", e.to_string());
                }
            }
        }

        let Some((client, gh_plan)) = self.github_client() else {
            return;
        };
        let (true, Some(environment)) = (gh_plan.deployments, plan.environment()) else {
            return;
        };
        let Some(run) = run_id(plan) else {
            tracing::debug!("no GITHUB_RUN_ID: no GitHub deployment");
            return;
        };
        let new = NewDeployment {
            sha: &plan.context.commit.sha,
            environment,
            run,
            components: plan
                .components
                .iter()
                .filter(|c| c.deploy.is_some())
                .map(|c| c.name.clone())
                .collect(),
            description: format!("fastdeploy: {} to {environment}", plan.context.short_sha()),
        };
        let result = match client.find_or_create_deployment(&new).await {
            Ok(id) => {
                let status = NewStatus {
                    state: DeploymentState::InProgress,
                    log_url: plan.context.run_url(),
                    environment_url: None,
                    description: format!("deploying {}", plan.context.short_sha()),
                    auto_inactive: true,
                };
                client.set_status(id, &status).await.map(|()| id)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(id) => {
                self.actions.line(&format!(
                    "GitHub: deployment {id} to {environment} is in progress"
                ));
                self.deployment = Some(id);
            }
            Err(e) => self.github_failed(e),
        }
    }

    /// Reports the result everywhere configured. Never fails: each problem
    /// is shown as a `::warning::` at once and returned (with any earlier
    /// ones) so the executor can list them in the summary without showing
    /// them again.
    pub async fn finish(&mut self, plan: &Plan, report: &RunReport) -> Vec<Warning> {
        if let Some(s) = &self.slack {
            if slack::wanted(&s.on, report.result) {
                let msg = slack::result_message(plan, report);
                match s.client.send(&s.dest, &msg, self.posted.as_ref()).await {
                    Ok(_) => {
                        let how = if self.posted.is_some() {
                            "updated the message in"
                        } else {
                            "posted the result to"
                        };
                        self.actions.line(&format!("Slack: {how} {}", s.label));
                    }
                    Err(e) => self.warn("Slack", e.to_string()),
                }
            } else {
                tracing::debug!(
                    result = report.result.as_str(),
                    "slack-on filters this result out"
                );
            }
        }

        let Some((client, gh_plan)) = self.github_client() else {
            return self.warnings.clone();
        };
        if let Some(id) = self.deployment {
            // A re-run that found its image already serving leaves this
            // commit live: that is a successful deployment of it.
            let already_serving = report.result == RunResult::Skipped
                && report
                    .components
                    .iter()
                    .any(|c| c.deploy.as_ref().is_some_and(|d| d.unchanged));
            let state = match report.result {
                RunResult::Success => DeploymentState::Success,
                RunResult::Skipped if already_serving => DeploymentState::Success,
                RunResult::Failure | RunResult::RolledBack => DeploymentState::Failure,
                // Nothing new went live: the earlier deployment still is.
                RunResult::Skipped | RunResult::Built => DeploymentState::Inactive,
            };
            let description = match report.result {
                RunResult::RolledBack => {
                    let serving = report
                        .components
                        .iter()
                        .filter(|c| c.result == RunResult::RolledBack)
                        .find_map(|c| c.deploy.as_ref()?.serving_text());
                    match serving {
                        Some(r) => format!("rolled back; {r} is serving"),
                        None => "rolled back".to_string(),
                    }
                }
                _ if already_serving => format!(
                    "{} is already serving; nothing to deploy",
                    plan.context.short_sha()
                ),
                _ => report.failure.clone().unwrap_or_else(|| {
                    format!("{} {}", report.result.as_str(), plan.context.short_sha())
                }),
            };
            let status = NewStatus {
                state,
                log_url: plan.context.run_url(),
                // The target's own URL (an Elastic Beanstalk environment's
                // CNAME) when no `environment-url` is set.
                environment_url: gh_plan
                    .environment_url
                    .clone()
                    .or_else(|| {
                        report
                            .components
                            .iter()
                            .find_map(|c| c.deploy.as_ref()?.url.clone())
                    })
                    .filter(|_| state == DeploymentState::Success),
                description,
                auto_inactive: true,
            };
            match client.set_status(id, &status).await {
                Ok(()) => self.actions.line(&format!(
                    "GitHub: deployment {id} marked {}",
                    json_name(state)
                )),
                Err(e) => self.github_failed(e),
            }
        }
        if self.github.is_some()
            && let Some(number) = gh_plan.pr_comment
        {
            let body = summary::pr_comment(plan, report, &self.baselines, self.diff.as_ref());
            match client
                .upsert_pr_comment(number, summary::PR_COMMENT_MARKER, &body)
                .await
            {
                Ok(id) => self.actions.line(&format!(
                    "GitHub: pull request #{number} comment {id} is up to date"
                )),
                Err(e) => self.github_failed(e),
            }
        }
        self.warnings.clone()
    }

    /// The GitHub client, built now (inside the runtime); a client that
    /// cannot be built is one warning and GitHub reporting off.
    fn github_client(&mut self) -> Option<(GithubClient, GithubPlan)> {
        let gh = self.github.as_ref()?;
        match GithubClient::new(&gh.api_url, &gh.token, &gh.repository) {
            Ok(client) => Some((client.with_clock(gh.clock), gh.plan.clone())),
            Err(e) => {
                self.github = None;
                self.warn(
                    "GitHub",
                    format!("{e:#}; GitHub reporting is off for this run"),
                );
                None
            }
        }
    }

    fn github_failed(&mut self, e: GithubError) {
        // A missing permission fails every later call the same way.
        if matches!(e, GithubError::Permission { .. }) {
            self.github = None;
        }
        self.warn("GitHub", e.to_string());
    }

    fn warn(&mut self, system: &str, message: String) {
        let message = self.actions.scrub(&message);
        let title = format!("fastdeploy: {system} reporting");
        self.actions.warning(
            &message,
            &Location {
                title: Some(&title),
                ..Location::default()
            },
        );
        self.warnings.push(Warning {
            rule: None,
            severity: Severity::Warning,
            component: None,
            file: None,
            line: None,
            message,
        });
    }
}

fn run_id(plan: &Plan) -> Option<RunId> {
    Some(RunId {
        run_id: plan.context.run_id.clone()?,
        run_attempt: plan.context.run_attempt,
    })
}

fn json_name(state: DeploymentState) -> &'static str {
    match state {
        DeploymentState::InProgress => "in_progress",
        DeploymentState::Success => "success",
        DeploymentState::Failure => "failure",
        DeploymentState::Inactive => "inactive",
    }
}

// ---------------------------------------------------------------------------
// Log output: one group per phase and component, one line per event.

/// Whether log lines carry ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStyle {
    pub color: bool,
}

impl LogStyle {
    /// Colour only on a terminal and never with `NO_COLOR` set (https://no-color.org).
    pub fn detect(no_color: bool) -> Self {
        LogStyle {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// How a phase ended, for its closing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseEnd {
    Done,
    Skipped(String),
    Failed(String),
}

/// `build backend: done in 1m 02s` — the closing line of a phase group.
pub fn closing_line(
    style: LogStyle,
    phase: &str,
    component: Option<&str>,
    end: &PhaseEnd,
    elapsed: Duration,
) -> String {
    let name = match component {
        Some(c) => format!("{phase} {c}"),
        None => phase.to_string(),
    };
    let took = crate::units::duration(elapsed.as_secs_f64());
    match end {
        PhaseEnd::Done => format!("{name}: {} in {took}", style.paint("32", "done")),
        PhaseEnd::Skipped(why) => {
            format!("{name}: {} ({why}) in {took}", style.paint("33", "skipped"))
        }
        PhaseEnd::Failed(why) => format!(
            "{name}: {} after {took}: {why}",
            style.paint("31", "failed")
        ),
    }
}

/// An open log group for one phase (and component). Close it with
/// [`PhaseLog::close`]; dropped unclosed (an early return), it still closes
/// its group with the time it ran.
pub struct PhaseLog<'a> {
    actions: &'a Actions,
    style: LogStyle,
    phase: String,
    component: Option<String>,
    started: Instant,
    closed: bool,
}

impl<'a> PhaseLog<'a> {
    pub fn open(
        actions: &'a Actions,
        style: LogStyle,
        phase: &str,
        component: Option<&str>,
    ) -> Self {
        let title = match component {
            Some(c) => format!("{phase} {c}"),
            None => phase.to_string(),
        };
        actions.group(&title);
        PhaseLog {
            actions,
            style,
            phase: phase.to_string(),
            component: component.map(str::to_string),
            started: Instant::now(),
            closed: false,
        }
    }

    /// One event, one line.
    pub fn event(&self, text: &str) {
        for line in text.lines() {
            self.actions.line(line);
        }
    }

    /// Prints the closing line with the duration and ends the group;
    /// returns the duration for the report.
    pub fn close(mut self, end: PhaseEnd) -> Duration {
        self.finish(&end)
    }

    fn finish(&mut self, end: &PhaseEnd) -> Duration {
        let elapsed = self.started.elapsed();
        if !self.closed {
            self.closed = true;
            self.actions.line(&closing_line(
                self.style,
                &self.phase,
                self.component.as_deref(),
                end,
                elapsed,
            ));
            self.actions.end_group();
        }
        elapsed
    }
}

impl Drop for PhaseLog<'_> {
    fn drop(&mut self) {
        self.finish(&PhaseEnd::Failed("ended early".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_lines_carry_the_duration_and_colour_only_when_asked() {
        let plain = LogStyle { color: false };
        let d = Duration::from_millis(62_400);
        assert_eq!(
            closing_line(plain, "build", Some("backend"), &PhaseEnd::Done, d),
            "build backend: done in 1m 02s"
        );
        assert_eq!(
            closing_line(
                plain,
                "deploy",
                None,
                &PhaseEnd::Failed("circuit breaker".into()),
                Duration::from_secs(5)
            ),
            "deploy: failed after 5.0s: circuit breaker"
        );
        let coloured = closing_line(LogStyle { color: true }, "check", None, &PhaseEnd::Done, d);
        assert!(coloured.contains("\x1b[32mdone\x1b[0m"));
        assert!(
            !closing_line(LogStyle::detect(true), "x", None, &PhaseEnd::Done, d).contains('\x1b')
        );
    }
}
