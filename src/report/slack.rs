//! Slack: Block Kit messages by webhook or bot token, with retries; never a gate.
//!
//! Messages are built in code from the plan and the report (never from
//! user-supplied JSON), escaped and cut to Block Kit's limits. The client
//! honours 429 Retry-After, retries 5xx and timeouts a bounded number of
//! times, and turns Slack's answers into errors that name the fix. Callers
//! (`notify`) turn those errors into warnings.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::outcome::{ComponentReport, RunReport, RunResult};
use crate::plan::Plan;
use crate::report::summary::{component_result, events_title, icon, phases_text, short_digest};
use crate::settings::SlackOn;

/// Block Kit: a section's text is at most 3000 characters.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Block Kit: a section field is at most 2000 characters.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Block Kit: a header's text is at most 150 characters.
pub const MAX_HEADER_CHARS: usize = 150;
/// Block Kit: a message has at most 50 blocks.
pub const MAX_BLOCKS: usize = 50;
/// Appended where text was cut to fit.
pub const TRUNCATED: &str = "… (truncated)";

/// A message: fallback text (notifications, screen readers) and blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Vec<Value>,
}

/// Whether `slack-on` wants a message for this result.
pub fn wanted(on: &SlackOn, result: RunResult) -> bool {
    match on {
        SlackOn::Always => true,
        SlackOn::Failure => result.is_failure(),
        SlackOn::Success => !result.is_failure(),
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts already-escaped text to `max` characters, marker included, never
/// inside an `&amp;`-style entity.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    let mut cut: String = s.chars().take(keep).collect();
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push_str(TRUNCATED);
    cut
}

fn link(url: &str, label: &str) -> String {
    // `|` and `>` end a link; URLs we build never contain them unescaped.
    format!("<{}|{}>", escape(url), escape(label))
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SECTION_CHARS)}})
}

fn fields(items: Vec<String>) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .take(10)
        .map(|t| json!({"type": "mrkdwn", "text": truncate(&t, MAX_FIELD_CHARS)}))
        .collect();
    json!({"type": "section", "fields": items})
}

fn header(text: &str) -> Value {
    // Header text is plain_text: no mrkdwn escaping, only the length limit.
    json!({"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER_CHARS), "emoji": true}})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&text, MAX_SECTION_CHARS)}]})
}

/// Keeps a message within 50 blocks, saying how many were left out.
fn limit_blocks(mut blocks: Vec<Value>) -> Vec<Value> {
    if blocks.len() > MAX_BLOCKS {
        let dropped = blocks.len() - (MAX_BLOCKS - 1);
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(context(format!(
            "{TRUNCATED}: {dropped} more blocks not shown; see the job summary"
        )));
    }
    blocks
}

fn target_words(plan: &Plan) -> String {
    plan.environment()
        .map(str::to_string)
        .unwrap_or_else(|| "build only".into())
}

/// Commit and run fields shared by both messages.
fn about_fields(plan: &Plan) -> Vec<String> {
    let ctx = &plan.context;
    let sha = match ctx.commit_url() {
        Some(url) => link(&url, ctx.short_sha()),
        None => format!("`{}`", escape(ctx.short_sha())),
    };
    let mut commit = sha;
    if let Some(subject) = &ctx.commit.subject {
        commit.push(' ');
        commit.push_str(&escape(subject));
    }
    if let Some(author) = &ctx.commit.author {
        commit.push_str(&format!(" — {}", escape(author)));
    }
    let mut out = vec![
        format!("*Environment*\n{}", escape(&target_words(plan))),
        format!("*Commit*\n{commit}"),
    ];
    if let Some(url) = ctx.run_url() {
        let label = format!(
            "{} #{}",
            ctx.workflow.as_deref().unwrap_or("workflow run"),
            ctx.run_id.as_deref().unwrap_or_default()
        );
        out.push(format!("*Workflow run*\n{}", link(&url, &label)));
    }
    out
}

/// The bot's "deploying" message, posted when the run starts.
pub fn deploying_message(plan: &Plan) -> Message {
    let target = target_words(plan);
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    let title = match (plan.environment(), plan.motion.label()) {
        (Some(env), Some(motion)) => format!("🚀 {motion} of {env}"),
        (Some(env), None) => format!("🚀 Deploying to {env}"),
        (None, _) => "🔨 Building".to_string(),
    };
    let mut about = about_fields(plan);
    about.push("*Result*\nin progress".to_string());
    let blocks = vec![
        header(&title),
        fields(about),
        context(format!("Components: {}", escape(&names.join(", ")))),
    ];
    Message {
        text: format!(
            "fastdeploy: deploying {} to {}",
            plan.context.short_sha(),
            target
        ),
        blocks: limit_blocks(blocks),
    }
}

/// The result message: per component digest, size and durations; on failure
/// the reason and the last service events; on rollback the revision serving.
pub fn result_message(plan: &Plan, report: &RunReport) -> Message {
    let mut about = about_fields(plan);
    about.push(format!("*Result*\n{}", report.result.as_str()));
    let mut blocks = vec![header(&result_title(plan, report)), fields(about)];
    blocks.extend(report.components.iter().map(component_section));
    if report.result.is_failure() {
        blocks.extend(failure_sections(report));
    }
    let phases = phases_text(report);
    if !phases.is_empty() {
        blocks.push(context(format!("Phases: {phases}")));
    }
    let text = format!(
        "fastdeploy: {} {} at {}",
        target_words(plan),
        report.result.as_str(),
        plan.context.short_sha()
    );
    Message {
        text,
        blocks: limit_blocks(blocks),
    }
}

/// The result message's header: what happened, and where when it deployed.
fn result_title(plan: &Plan, report: &RunReport) -> String {
    if let (Some(motion), Some(env)) = (plan.motion.label(), plan.environment()) {
        return format!(
            "{} {motion} of {env}: {}",
            icon(report.result),
            report.result.as_str()
        );
    }
    match (report.result, plan.environment()) {
        (RunResult::Success, Some(env)) => format!("{} Deployed to {env}", icon(report.result)),
        (RunResult::Failure, Some(env)) => {
            format!("{} Deploy to {env} failed", icon(report.result))
        }
        (RunResult::RolledBack, Some(env)) => {
            format!("{} Deploy to {env} rolled back", icon(report.result))
        }
        (RunResult::Failure, None) => format!("{} Build failed", icon(report.result)),
        (r, _) => format!("{} fastdeploy: {}", icon(r), r.as_str()),
    }
}

/// One component's section: its facts on a line, then its timeline and
/// why it failed, when known.
fn component_section(c: &ComponentReport) -> Value {
    let mut text = format!("*{}*  {}", escape(&c.name), component_facts(c).join(" · "));
    if let Some(t) = c.deploy.as_ref().and_then(|d| d.timeline.as_ref()) {
        text.push_str(&format!("\n{}", escape(&t.line())));
    }
    if !c.also.is_empty() {
        for d in c.targets() {
            text.push_str(&format!("\n• {}", escape(&d.target_line())));
        }
    }
    if let Some(why) = &c.failure {
        text.push_str(&format!("\n{}", escape(why)));
    }
    section(text)
}

/// A component's digest, size, build, before-deploy and deploy, as far as
/// they are known, and its result last.
fn component_facts(c: &ComponentReport) -> Vec<String> {
    let b = &c.build;
    let mut facts = Vec::new();
    if let Some(d) = &b.digest {
        facts.push(format!("`{}`", escape(&short_digest(d))));
    }
    if let Some(n) = b.image_bytes {
        facts.push(crate::units::bytes(n));
    }
    if b.skipped {
        facts.push("build unchanged".into());
    } else if let Some(s) = b.seconds {
        facts.push(format!("build {}", crate::units::duration(s)));
    }
    for billed in &b.codebuild_billing {
        let on = billed
            .platform
            .as_deref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default();
        facts.push(format!(
            "CodeBuild{on} {} min ({})",
            billed.billed_minutes,
            escape(&crate::image::billing::cost_text(billed))
        ));
    }
    if let Some(why) = &b.rebuilt_because {
        facts.push(format!("rebuilt: {}", escape(why)));
    }
    if let Some(t) = c.deploy.as_ref().and_then(|d| d.before_deploy.as_ref()) {
        facts.push(match t.outcome.as_str() {
            "succeeded" => "before-deploy exited 0".to_string(),
            "already-done" => "before-deploy already done".to_string(),
            _ => format!(
                "before-deploy failed{}",
                t.exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default()
            ),
        });
    }
    if let Some(d) = &c.deploy {
        if d.unchanged {
            facts.push("deploy unchanged".into());
        } else if let Some(s) = d.seconds {
            facts.push(format!("deploy {}", crate::units::duration(s)));
        }
    }
    facts.push(escape(&component_result(c)));
    facts
}

/// The sections a failed run adds: why it failed, then per failed component
/// the last lines of a failed before-deploy task, then the target's last
/// events and the evidence.
fn failure_sections(report: &RunReport) -> Vec<Value> {
    let mut blocks = Vec::new();
    if let Some(why) = &report.failure {
        blocks.push(section(format!("*Why it failed*\n{}", escape(why))));
    }
    let failed = || report.components.iter().filter(|c| c.result.is_failure());
    blocks.extend(failed().filter_map(before_deploy_lines));
    blocks.extend(failed().flat_map(deploy_events));
    blocks
}

/// The last lines of a component's failed before-deploy task; `None` when
/// no task failed or it printed nothing.
fn before_deploy_lines(c: &ComponentReport) -> Option<Value> {
    let t = c
        .deploy
        .as_ref()
        .and_then(|d| d.before_deploy.as_ref())
        .filter(|t| t.failure.is_some())?;
    if t.last_lines.is_empty() {
        return None;
    }
    let head = format!("*Last lines of before-deploy of {}*\n```", escape(&c.name));
    let lines: Vec<&String> = t.last_lines.iter().rev().take(10).rev().collect();
    Some(code_section(&head, &lines))
}

/// A component's last events and the deploy's evidence, one section per
/// target that has something to show.
fn deploy_events(c: &ComponentReport) -> Vec<Value> {
    c.targets().filter_map(|d| target_events(c, d)).collect()
}

fn target_events(c: &ComponentReport, d: &crate::outcome::DeployReport) -> Option<Value> {
    let lines: Vec<&String> = d
        .events
        .iter()
        .rev()
        .take(5)
        .rev()
        .chain(d.evidence.iter())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let of = match c.also.is_empty() {
        true => c.name.clone(),
        false => format!("{} ({})", c.name, d.target.short()),
    };
    let head = format!("*{} of {}*\n```", events_title(&d.target), escape(&of));
    Some(code_section(&head, &lines))
}

/// A section of `head` (which opens a code block) and `lines`, escaped, the
/// lines cut so the closing ``` always fits; a ``` inside a line becomes '''
/// so it cannot end the block early.
fn code_section(head: &str, lines: &[&String]) -> Value {
    let tail = "```";
    // A very long head (a component's name) leaves no room, never an overflow.
    let room = MAX_SECTION_CHARS.saturating_sub(head.chars().count() + tail.chars().count() + 2);
    let body = lines
        .iter()
        .map(|l| escape(l).replace("```", "'''"))
        .collect::<Vec<_>>()
        .join("\n");
    section(format!("{head}\n{}\n{tail}", truncate(&body, room)))
}

// ---------------------------------------------------------------------------
// The client.

/// Retry policy. Delays follow the clock so tests never sleep for
/// real, except for Retry-After, which is Slack's instruction and honoured as given.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff after a 5xx or a timeout; doubles each time.
    pub backoff: Duration,
    /// Longest Retry-After we are willing to wait; beyond it we give up.
    pub max_retry_after: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Retry {
    pub fn scaled(clock: crate::clock::Clock) -> Self {
        Retry {
            attempts: 4,
            backoff: clock.of(1.0),
            max_retry_after: Duration::from_secs(30),
            timeout: clock.of(10.0).max(Duration::from_millis(500)),
        }
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Destination {
    Webhook {
        url: SecretString,
    },
    Bot {
        api_url: String,
        token: SecretString,
        channel: String,
    },
}

/// A message the bot posted: `chat.update` needs the channel id Slack
/// answered with, not the channel name we posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// What went wrong, worded so the reader knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error(
        "`slack-webhook-url` is not an http(s) URL; paste the incoming webhook URL (https://hooks.slack.com/services/...) into the secret"
    )]
    InvalidWebhookUrl,
    #[error("Slack rejected the incoming webhook (HTTP {status}: {body}); {fix}")]
    Webhook {
        status: u16,
        body: String,
        fix: &'static str,
    },
    #[error("Slack's {method} answered `{code}`; {fix}")]
    Api {
        method: &'static str,
        code: String,
        fix: String,
    },
    #[error("Slack answered HTTP {status} to {what}: {body}")]
    Http {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error(
        "Slack could not be reached for {what} after {attempts} attempts ({last}); the message was not sent"
    )]
    GaveUp {
        what: &'static str,
        attempts: u32,
        last: String,
    },
    #[error(
        "Slack asked to wait {seconds}s before {what}, longer than we wait; the message was not sent"
    )]
    RetryAfterTooLong { what: &'static str, seconds: u64 },
}

#[derive(Debug, Deserialize)]
struct ApiAnswer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

/// Slack's Web API and incoming webhooks over one HTTP client.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    retry: Retry,
}

impl SlackClient {
    pub fn new(retry: Retry) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .user_agent(concat!("fastdeploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the Slack HTTP client: {}", e.without_url()))?;
        Ok(SlackClient { http, retry })
    }

    /// Sends `msg` to `dest`: posts to the webhook, posts as the bot, or
    /// (bot with `update`) replaces the earlier message.
    pub async fn send(
        &self,
        dest: &Destination,
        msg: &Message,
        update: Option<&Posted>,
    ) -> Result<Option<Posted>, SlackError> {
        match dest {
            Destination::Webhook { url } => self.post_webhook(url, msg).await.map(|()| None),
            Destination::Bot {
                api_url,
                token,
                channel,
            } => match update {
                Some(posted) => self
                    .update_message(api_url, token, posted, msg)
                    .await
                    .map(|()| Some(posted.clone())),
                None => self
                    .post_message(api_url, token, channel, msg)
                    .await
                    .map(Some),
            },
        }
    }

    pub async fn post_webhook(&self, url: &SecretString, msg: &Message) -> Result<(), SlackError> {
        let url = url.expose_secret();
        if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(SlackError::InvalidWebhookUrl);
        }
        let body = json!({"text": msg.text, "blocks": msg.blocks});
        let (status, text) = self
            .execute("the webhook post", || self.http.post(url).json(&body))
            .await?;
        if status.is_success() {
            return Ok(());
        }
        let code = text.trim().to_string();
        let fix = match (status.as_u16(), code.as_str()) {
            (404, _)
            | (403, _)
            | (_, "no_service" | "invalid_token" | "no_team" | "team_disabled") => {
                "the webhook was removed or is wrong: create a new incoming webhook in the Slack app and update the `slack-webhook-url` secret"
            }
            (410, _) | (_, "channel_is_archived" | "channel_not_found") => {
                "the webhook's channel is archived or gone: create a webhook for a live channel and update `slack-webhook-url`"
            }
            (400, _) => {
                "Slack refused the message; this is a fastdeploy bug, please report it with the run's log"
            }
            _ => "try again later; Slack's status is at https://slack-status.com",
        };
        Err(SlackError::Webhook {
            status: status.as_u16(),
            body: clip(&code),
            fix,
        })
    }

    pub async fn post_message(
        &self,
        api_url: &str,
        token: &SecretString,
        channel: &str,
        msg: &Message,
    ) -> Result<Posted, SlackError> {
        let body = json!({"channel": channel, "text": msg.text, "blocks": msg.blocks, "unfurl_links": false});
        let answer = self
            .call(api_url, "chat.postMessage", token, &body, channel)
            .await?;
        match (answer.channel, answer.ts) {
            (Some(channel), Some(ts)) => Ok(Posted { channel, ts }),
            _ => Err(SlackError::Api {
                method: "chat.postMessage",
                code: "no ts in the answer".into(),
                fix: "is `FASTDEPLOY_SLACK_API_URL` pointing at Slack's Web API?".into(),
            }),
        }
    }

    pub async fn update_message(
        &self,
        api_url: &str,
        token: &SecretString,
        posted: &Posted,
        msg: &Message,
    ) -> Result<(), SlackError> {
        let body = json!({"channel": posted.channel, "ts": posted.ts, "text": msg.text, "blocks": msg.blocks});
        self.call(api_url, "chat.update", token, &body, &posted.channel)
            .await
            .map(|_| ())
    }

    async fn call(
        &self,
        api_url: &str,
        method: &'static str,
        token: &SecretString,
        body: &Value,
        channel: &str,
    ) -> Result<ApiAnswer, SlackError> {
        let url = format!("{}/{method}", api_url.trim_end_matches('/'));
        let (status, text) = self
            .execute(method, || {
                let mut auth = reqwest::header::HeaderValue::from_str(&format!(
                    "Bearer {}",
                    token.expose_secret()
                ))
                .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Bearer invalid"));
                auth.set_sensitive(true);
                self.http
                    .post(&url)
                    .header(reqwest::header::AUTHORIZATION, auth)
                    .json(body)
            })
            .await?;
        let answer: Option<ApiAnswer> = serde_json::from_str(&text).ok();
        match answer {
            Some(a) if a.ok => Ok(a),
            Some(a) => {
                let code = a.error.unwrap_or_else(|| "unknown_error".into());
                let fix = api_fix(&code, channel);
                Err(SlackError::Api { method, code, fix })
            }
            None => Err(SlackError::Http {
                what: method,
                status: status.as_u16(),
                body: clip(&text),
            }),
        }
    }

    /// Sends with retries: 429 waits Retry-After, 5xx and transport errors
    /// back off; anything else is returned as is.
    async fn execute(
        &self,
        what: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), SlackError> {
        let mut last = String::new();
        let mut backoff = self.retry.backoff;
        // A 5xx, or a connection lost after the request went out, may come
        // after Slack posted the message; Slack offers no way to tell (no
        // idempotency key), so a retry that succeeds says it may be a double.
        let mut maybe_posted = false;
        for attempt in 1..=self.retry.attempts {
            let wait = match crate::timings::waiting("notify", request().send()).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        last = "HTTP 429 rate limited".into();
                        match retry_after {
                            Some(s) if Duration::from_secs(s) > self.retry.max_retry_after => {
                                return Err(SlackError::RetryAfterTooLong { what, seconds: s });
                            }
                            Some(s) => Duration::from_secs(s),
                            None => backoff,
                        }
                    } else if status.is_server_error() {
                        last = format!("HTTP {}", status.as_u16());
                        maybe_posted = true;
                        backoff
                    } else {
                        if maybe_posted && status.is_success() {
                            tracing::warn!(
                                "Slack: {what} succeeded after an earlier attempt failed with {last} once sent; \
                                 Slack cannot say whether that attempt posted, so the message may show twice"
                            );
                        }
                        return Ok((status, text));
                    }
                }
                // `without_url`: the webhook URL is the secret.
                Err(e) => {
                    let e = e.without_url();
                    maybe_posted |= !e.is_connect();
                    last = if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        error_chain(&e)
                    };
                    backoff
                }
            };
            if attempt < self.retry.attempts {
                tracing::debug!(what, attempt, %last, ?wait, "slack: retrying");
                crate::timings::sleep("notify", wait).await;
                backoff *= 2;
            }
        }
        Err(SlackError::GaveUp {
            what,
            attempts: self.retry.attempts,
            last,
        })
    }
}

fn api_fix(code: &str, channel: &str) -> String {
    match code {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "Slack rejected `slack-bot-token`: put the bot's xoxb- token (the Slack app's OAuth & Permissions page) into the secret".into()
        }
        "channel_not_found" => format!(
            "the bot cannot see channel `{channel}`: check `slack-channel` (a name such as #deploys or an id such as C0123) and invite the bot to it"
        ),
        "not_in_channel" => format!("invite the bot to `{channel}` (/invite @your-app) or give it the chat:write.public scope"),
        "is_archived" => format!("channel `{channel}` is archived: choose a live channel in `slack-channel`"),
        "missing_scope" => "add the chat:write scope to the Slack app and reinstall it to the workspace".into(),
        "message_not_found" | "cant_update_message" => "the start message is gone; the result was not posted".into(),
        "invalid_blocks" | "invalid_blocks_format" | "msg_too_long" => {
            "Slack refused the message layout; this is a fastdeploy bug, please report it with the run's log".into()
        }
        _ => "see https://api.slack.com/methods for what it means".into(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    crate::error::source_chain(e)
}

fn clip(s: &str) -> String {
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_three_control_characters() {
        assert_eq!(escape("a & b <c> d"), "a &amp; b &lt;c&gt; d");
    }

    #[test]
    fn truncation_keeps_the_limit_and_never_splits_an_entity() {
        let long = escape(&"x&".repeat(4000));
        let cut = truncate(&long, MAX_SECTION_CHARS);
        assert!(cut.chars().count() <= MAX_SECTION_CHARS);
        assert!(cut.ends_with(TRUNCATED));
        let body = cut.trim_end_matches(TRUNCATED);
        assert!(
            body.ends_with("&amp;") || body.ends_with('x'),
            "cut inside an entity: {}",
            &body[body.len() - 10..]
        );
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn more_than_fifty_blocks_are_cut_with_a_marker() {
        let blocks = (0..70).map(|i| section(format!("b{i}"))).collect();
        let out = limit_blocks(blocks);
        assert_eq!(out.len(), MAX_BLOCKS);
        assert!(out[49].to_string().contains("21 more blocks"));
    }

    #[test]
    fn slack_on_filters_by_result() {
        assert!(wanted(&SlackOn::Failure, RunResult::RolledBack));
        assert!(!wanted(&SlackOn::Failure, RunResult::Success));
        assert!(wanted(&SlackOn::Success, RunResult::Built));
        assert!(!wanted(&SlackOn::Success, RunResult::Failure));
        assert!(wanted(&SlackOn::Always, RunResult::Failure));
    }
}
