//! GitHub: deployments and statuses, the pull request comment, through octocrab; never a gate.
//!
//! The base URL comes from `GITHUB_API_URL`, so GitHub Enterprise Server
//! works. Requests and answers use our own small serde types (only the
//! fields we read), which keeps us independent of octocrab's full models and
//! of what a GHES version leaves out.

use octocrab::Octocrab;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Key in a deployment's payload under which we record the run that made it.
pub const PAYLOAD_KEY: &str = "fastdeploy";

/// Deployment status states we set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    InProgress,
    Success,
    Failure,
    Inactive,
}

/// The run that creates a deployment; a re-run of the same attempt finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId {
    pub run_id: String,
    pub run_attempt: u32,
}

/// What a deployment is for.
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    pub sha: &'a str,
    pub environment: &'a str,
    pub run: RunId,
    pub components: Vec<String>,
    pub description: String,
}

/// One status update.
#[derive(Debug, Clone, Serialize)]
pub struct NewStatus {
    pub state: DeploymentState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_url: Option<String>,
    /// At most 140 characters (GitHub's limit).
    pub description: String,
    /// Earlier deployments of the environment become inactive on success
    /// (GitHub's default, stated so the intent is visible).
    pub auto_inactive: bool,
}

#[derive(Debug, Deserialize)]
struct DeploymentRecord {
    id: u64,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct CommentRecord {
    id: u64,
    #[serde(default)]
    body: Option<String>,
}

/// What went wrong, worded so the reader knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error(
        "GitHub refused to {what} (HTTP {status}: {message}); the workflow token lacks permission: add `permissions: {permission}` to the job (with `contents: read`), or pass a token that has it as `github-token`"
    )]
    Permission {
        what: String,
        status: u16,
        message: String,
        permission: &'static str,
    },
    #[error("GitHub answered HTTP {status} to {what}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
    },
    #[error("GitHub could not be reached to {what}: {message}")]
    Transport { what: String, message: String },
    #[error("`GITHUB_REPOSITORY` is `{0}`, not owner/name; GitHub reporting is off")]
    BadRepository(String),
}

/// The repository's REST API, through one octocrab client.
#[derive(Debug, Clone)]
pub struct GithubClient {
    crab: Octocrab,
    repo_path: String,
    /// The time scale of the pause between attempts (tests run faster).
    clock: crate::clock::Clock,
}

/// Attempts per call. octocrab's own retries are off: it would send a POST
/// again after a 5xx whose write may have happened (a second deployment);
/// these retries look first.
const ATTEMPTS: u32 = 3;

fn retryable(e: &GithubError) -> bool {
    match e {
        GithubError::Http { status, .. } => *status >= 500 || *status == 429,
        GithubError::Transport { .. } => true,
        _ => false,
    }
}

impl GithubClient {
    /// Builds the client for `repository` (`owner/name`) at `api_url`.
    pub fn new(api_url: &str, token: &SecretString, repository: &str) -> anyhow::Result<Self> {
        let (owner, name) = repository
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| GithubError::BadRepository(repository.to_string()))?;
        let crab = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("GITHUB_API_URL `{api_url}` is not a URL ({e})"))?
            .personal_token(token.clone())
            .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .build()
            .map_err(|e| anyhow::anyhow!("building the GitHub client: {e}"))?;
        Ok(GithubClient {
            crab,
            repo_path: format!("/repos/{owner}/{name}"),
            clock: crate::clock::Clock::REAL,
        })
    }

    /// Same client, pauses between attempts on `clock` (tests).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    async fn pause(&self, attempt: u32) {
        crate::timings::sleep("notify", self.clock.of(f64::from(attempt))).await;
    }

    /// A read, retried on 5xx, 429 and transport errors.
    async fn read<T: serde::de::DeserializeOwned, Q: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        query: Option<&Q>,
        what: &str,
        permission: &'static str,
    ) -> Result<T, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match crate::timings::waiting("notify", self.crab.get(path, query))
                .await
                .map_err(|e| classify(e, what, permission))
            {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => self.pause(attempt).await,
                other => return other,
            }
        }
    }

    /// Finds the deployment this run attempt already created for
    /// `sha`+`environment` (a killed run started again), or creates one.
    pub async fn find_or_create_deployment(
        &self,
        d: &NewDeployment<'_>,
    ) -> Result<u64, GithubError> {
        if let Some(id) = self.find_deployment(d.sha, d.environment, &d.run).await? {
            tracing::debug!(id, "github: reusing this run attempt's deployment");
            return Ok(id);
        }
        let body = json!({
            "ref": d.sha,
            "environment": d.environment,
            "task": "deploy",
            "description": clip(&d.description, 140),
            // Our own build is the check that matters; commit statuses of
            // other checks must not block recording what is live.
            "required_contexts": [],
            "auto_merge": false,
            "payload": {PAYLOAD_KEY: {"run_id": d.run.run_id, "run_attempt": d.run.run_attempt, "components": d.components}},
        });
        let what = format!("create a deployment for environment `{}`", d.environment);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent: Result<Created, _> = crate::timings::waiting(
                "notify",
                self.crab
                    .post(format!("{}/deployments", self.repo_path), Some(&body)),
            )
            .await
            .map_err(|e| classify(e, &what, "deployments: write"));
            match sent {
                Ok(created) => return Ok(created.id),
                Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                    // The deployment may exist though the answer was lost:
                    // its payload names this run attempt.
                    self.pause(attempt).await;
                    if let Ok(Some(id)) = self.find_deployment(d.sha, d.environment, &d.run).await {
                        tracing::debug!(
                            id,
                            "github: the deployment was created though its answer was lost"
                        );
                        return Ok(id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The deployment whose payload names this run id and attempt.
    pub async fn find_deployment(
        &self,
        sha: &str,
        environment: &str,
        run: &RunId,
    ) -> Result<Option<u64>, GithubError> {
        let what = format!("list deployments of environment `{environment}`");
        let list: Vec<DeploymentRecord> = self
            .read(
                &format!("{}/deployments", self.repo_path),
                Some(&[
                    ("sha", sha),
                    ("environment", environment),
                    ("per_page", "100"),
                ]),
                &what,
                "deployments: read",
            )
            .await?;
        Ok(list
            .into_iter()
            .find(|d| payload_run(&d.payload).as_ref() == Some(run))
            .map(|d| d.id))
    }

    pub async fn set_status(&self, deployment: u64, status: &NewStatus) -> Result<(), GithubError> {
        let mut status = status.clone();
        status.description = clip(&status.description, 140);
        let what = format!("set deployment {deployment} to {:?}", status.state).to_lowercase();
        let path = format!("{}/deployments/{deployment}/statuses", self.repo_path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent: Result<Value, _> =
                crate::timings::waiting("notify", self.crab.post(&path, Some(&status)))
                    .await
                    .map_err(|e| classify(e, &what, "deployments: write"));
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                    // Posted though the answer was lost? The newest status says.
                    self.pause(attempt).await;
                    let newest: Result<Vec<Value>, _> = self
                        .read(
                            &path,
                            Some(&[("per_page", "1")]),
                            &what,
                            "deployments: read",
                        )
                        .await;
                    let same = |v: &Value| {
                        v.get("state").and_then(Value::as_str)
                            == serde_json::to_value(status.state)
                                .ok()
                                .as_ref()
                                .and_then(Value::as_str)
                            && v.get("description").and_then(Value::as_str)
                                == Some(status.description.as_str())
                    };
                    if newest
                        .ok()
                        .and_then(|l| l.into_iter().next())
                        .is_some_and(|v| same(&v))
                    {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates or updates our comment on pull request `number`, found by the
    /// hidden `marker` in its body. Returns the comment id.
    pub async fn upsert_pr_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<u64, GithubError> {
        // Each attempt looks for the comment first, so a POST whose answer
        // was lost is found and updated rather than posted again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upsert_once(number, marker, body).await {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => self.pause(attempt).await,
                other => return other,
            }
        }
    }

    async fn upsert_once(&self, number: u64, marker: &str, body: &str) -> Result<u64, GithubError> {
        let what = format!("comment on pull request #{number}");
        let mut page = 1u32;
        let existing = loop {
            let page_s = page.to_string();
            let comments: Vec<CommentRecord> = self
                .read(
                    &format!("{}/issues/{number}/comments", self.repo_path),
                    Some(&[("per_page", "100"), ("page", page_s.as_str())]),
                    &what,
                    "pull-requests: write",
                )
                .await?;
            let n = comments.len();
            if let Some(c) = comments
                .into_iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
            {
                break Some(c.id);
            }
            // Bounded: a PR with more than 2000 comments gets a new one.
            if n < 100 || page >= 20 {
                break None;
            }
            page += 1;
        };
        let payload = json!({ "body": body });
        let sent: Result<Created, _> = match existing {
            Some(id) => crate::timings::waiting(
                "notify",
                self.crab.patch(
                    format!("{}/issues/comments/{id}", self.repo_path),
                    Some(&payload),
                ),
            )
            .await
            .map_err(|e| classify(e, &what, "pull-requests: write")),
            None => crate::timings::waiting(
                "notify",
                self.crab.post(
                    format!("{}/issues/{number}/comments", self.repo_path),
                    Some(&payload),
                ),
            )
            .await
            .map_err(|e| classify(e, &what, "pull-requests: write")),
        };
        sent.map(|c| c.id)
    }
}

/// Reads `{"fastdeploy": {"run_id", "run_attempt"}}` from a payload, which
/// GitHub returns as an object (or, for some clients' deployments, a string).
fn payload_run(payload: &Value) -> Option<RunId> {
    let parsed;
    let payload = match payload {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        v => v,
    };
    let ours = payload.get(PAYLOAD_KEY)?;
    let run_id = match ours.get("run_id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let run_attempt = ours.get("run_attempt")?.as_u64()? as u32;
    Some(RunId {
        run_id,
        run_attempt,
    })
}

fn classify(e: octocrab::Error, what: &str, permission: &'static str) -> GithubError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = source.message.clone();
            if status == 403 {
                GithubError::Permission {
                    what: what.to_string(),
                    status,
                    message,
                    permission,
                }
            } else {
                GithubError::Http {
                    what: what.to_string(),
                    status,
                    message,
                }
            }
        }
        other => GithubError::Transport {
            what: what.to_string(),
            message: error_chain(&other),
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    // Only the first line: octocrab's errors can carry whole response bodies.
    crate::error::source_chain(e)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_run_in_object_and_string_payloads() {
        let want = Some(RunId {
            run_id: "42".into(),
            run_attempt: 2,
        });
        assert_eq!(
            payload_run(&json!({"fastdeploy": {"run_id": "42", "run_attempt": 2}})),
            want
        );
        assert_eq!(
            payload_run(&json!({"fastdeploy": {"run_id": 42, "run_attempt": 2}})),
            want
        );
        assert_eq!(
            payload_run(&json!(
                "{\"fastdeploy\":{\"run_id\":\"42\",\"run_attempt\":2}}"
            )),
            want
        );
        assert_eq!(payload_run(&json!({})), None);
        assert_eq!(payload_run(&json!("")), None);
    }

    #[test]
    fn descriptions_fit_githubs_limit() {
        assert_eq!(clip(&"x".repeat(200), 140).chars().count(), 140);
    }
}
