//! The GitHub context: the run's `GITHUB_*` variables and the event payload,
//! and the decision that follows from them (which environment, whether to
//! push and deploy).
//!
//! Outside Actions (a laptop run) the context falls back to the local git
//! checkout so `fastdeploy run --component backend` behaves like the
//! hand-written script it replaces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::BadInput;
use crate::settings::config::Config;

/// The `GITHUB_*` variables fastdeploy uses, read with `envy`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GithubEnv {
    pub github_actions: Option<String>,
    pub github_event_name: Option<String>,
    pub github_event_path: Option<PathBuf>,
    pub github_ref: Option<String>,
    pub github_sha: Option<String>,
    pub github_head_ref: Option<String>,
    pub github_repository: Option<String>,
    pub github_server_url: Option<String>,
    pub github_api_url: Option<String>,
    pub github_run_id: Option<String>,
    pub github_run_attempt: Option<String>,
    pub github_workflow: Option<String>,
    pub github_actor: Option<String>,
    pub github_workspace: Option<PathBuf>,
}

impl GithubEnv {
    pub fn from_map(env: &BTreeMap<String, String>) -> Result<Self, BadInput> {
        envy::from_iter(
            env.iter()
                .filter(|(k, v)| k.starts_with("GITHUB_") && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .map_err(|e| BadInput::other(format!("reading the GITHUB_* variables: {e}")))
    }
}

/// What the event payload tells us, beyond the variables.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Commit {
    pub sha: String,
    pub subject: Option<String>,
    pub author: Option<String>,
}

/// The resolved GitHub (or local) context of this run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunContext {
    /// `push`, `pull_request`, `workflow_dispatch`, ... or `local`.
    pub event: String,
    /// `refs/heads/main`, `refs/tags/v1`, `refs/pull/7/merge`.
    pub git_ref: Option<String>,
    /// Branch name for branch pushes and dispatches; the head branch for PRs.
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// The commit that is built: the head SHA for pull requests (not the
    /// merge SHA GitHub puts in `GITHUB_SHA`).
    pub commit: Commit,
    pub pull_request: Option<u64>,
    /// `environment` input of a `workflow_dispatch`.
    pub dispatch_environment: Option<String>,
    pub repository: Option<String>,
    pub default_branch: Option<String>,
    pub server_url: String,
    pub api_url: String,
    pub run_id: Option<String>,
    pub run_attempt: u32,
    pub workflow: Option<String>,
    pub actor: Option<String>,
    pub workspace: PathBuf,
    pub in_actions: bool,
}

impl RunContext {
    /// Short commit SHA (7 characters) for tags and messages.
    pub fn short_sha(&self) -> &str {
        let s = &self.commit.sha;
        &s[..s.len().min(7)]
    }

    /// Link to the workflow run, when inside Actions.
    pub fn run_url(&self) -> Option<String> {
        Some(format!(
            "{}/{}/actions/runs/{}",
            self.server_url,
            self.repository.as_ref()?,
            self.run_id.as_ref()?
        ))
    }

    /// Link to the commit.
    pub fn commit_url(&self) -> Option<String> {
        Some(format!(
            "{}/{}/commit/{}",
            self.server_url,
            self.repository.as_ref()?,
            self.commit.sha
        ))
    }

    /// Reads the context from the variables and the event file.
    pub fn from_env(env: &BTreeMap<String, String>, cwd: &Path) -> Result<Self, BadInput> {
        let gh = GithubEnv::from_map(env)?;
        let in_actions = gh.github_actions.as_deref() == Some("true");
        let workspace = gh
            .github_workspace
            .clone()
            .unwrap_or_else(|| cwd.to_path_buf());
        let payload = EventPayload::read(&gh)?;
        let event = gh
            .github_event_name
            .clone()
            .unwrap_or_else(|| "local".to_string());

        let local = if gh.github_sha.is_none() {
            LocalGit::read(&workspace)
        } else {
            LocalGit::default()
        };
        let git_ref = gh
            .github_ref
            .clone()
            .or_else(|| local.branch.as_ref().map(|b| format!("refs/heads/{b}")));
        let tag = git_ref
            .as_deref()
            .and_then(|r| r.strip_prefix("refs/tags/"))
            .map(str::to_string);
        let mut head = if event == "pull_request" || event == "pull_request_target" {
            Head::of_pull_request(&gh, &payload)?
        } else {
            Head::of_push(&gh, &local, &payload, git_ref.as_deref())
        };
        check_sha(&head.sha)?;
        if head.subject.is_none() && !in_actions {
            head.subject = local.subject.clone();
            head.author = head.author.or(local.author.clone());
        }

        let dispatch_environment = if event == "workflow_dispatch" {
            payload
                .typed_str("/inputs/environment", "inputs.environment")?
                .filter(|s| !s.is_empty())
        } else {
            None
        };
        let run_attempt = gh
            .github_run_attempt
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1);

        Ok(RunContext {
            event,
            git_ref,
            branch: head.branch,
            tag,
            commit: Commit {
                sha: head.sha.to_ascii_lowercase(),
                subject: head.subject,
                author: head.author,
            },
            pull_request: head.pull_request,
            dispatch_environment,
            default_branch: payload.str_at("/repository/default_branch"),
            repository: gh.github_repository.clone(),
            server_url: base_url(gh.github_server_url.as_deref(), "https://github.com"),
            api_url: base_url(gh.github_api_url.as_deref(), "https://api.github.com"),
            run_id: gh.github_run_id.clone(),
            run_attempt,
            workflow: gh.github_workflow.clone(),
            actor: gh.github_actor.clone(),
            workspace,
            in_actions,
        })
    }

    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some() || self.event.starts_with("pull_request")
    }
}

/// The event payload (JSON `null` when the run has none) and the file it
/// came from, which errors about it name.
struct EventPayload {
    value: serde_json::Value,
    path: PathBuf,
}

impl EventPayload {
    /// Reads the event file when the variables name an event and its file;
    /// an empty payload otherwise.
    fn read(gh: &GithubEnv) -> Result<Self, BadInput> {
        let value = match &gh.github_event_path {
            Some(path) if gh.github_event_name.is_some() => read_event(path)?,
            _ => serde_json::Value::Null,
        };
        Ok(EventPayload {
            value,
            path: gh.github_event_path.clone().unwrap_or_default(),
        })
    }

    /// The string at `ptr`; `None` when there is none or it is not a string.
    fn str_at(&self, ptr: &str) -> Option<String> {
        self.value
            .pointer(ptr)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// The string at `ptr`, `None` when absent or null, and an error naming
    /// `what` when it has another type: a value of the wrong type is named
    /// as such, never taken as absent.
    fn typed_str(&self, ptr: &str, what: &str) -> Result<Option<String>, BadInput> {
        match self.value.pointer(ptr) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(BadInput::Event {
                path: self.path.clone(),
                message: format!(
                    "`{what}` is {other}, not a string; is this the runner's event file?"
                ),
            }),
        }
    }
}

/// The commit a run builds and what it belongs to, before the SHA is checked.
struct Head {
    sha: String,
    subject: Option<String>,
    author: Option<String>,
    branch: Option<String>,
    pull_request: Option<u64>,
}

impl Head {
    /// The head of a push, dispatch or local run: `GITHUB_SHA` (or the
    /// checkout's), the branch of `git_ref`, and the pushed head commit's
    /// subject and author when the payload has them.
    fn of_push(
        gh: &GithubEnv,
        local: &LocalGit,
        payload: &EventPayload,
        git_ref: Option<&str>,
    ) -> Head {
        Head {
            sha: gh
                .github_sha
                .clone()
                .or(local.sha.clone())
                .unwrap_or_default(),
            subject: payload
                .str_at("/head_commit/message")
                .map(|m| m.lines().next().unwrap_or_default().to_string()),
            author: payload
                .str_at("/head_commit/author/name")
                .or_else(|| payload.str_at("/head_commit/author/username")),
            branch: git_ref
                .and_then(|r| r.strip_prefix("refs/heads/"))
                .map(str::to_string),
            pull_request: None,
        }
    }

    /// The head of a pull request: its head commit (not the merge commit in
    /// `GITHUB_SHA`), head branch, number, title and author; an error when
    /// the payload has no head SHA.
    fn of_pull_request(gh: &GithubEnv, payload: &EventPayload) -> Result<Head, BadInput> {
        let sha = payload
            .typed_str("/pull_request/head/sha", "pull_request.head.sha")?
            .ok_or_else(|| BadInput::Event {
                path: payload.path.clone(),
                message: "a pull_request event without `pull_request.head.sha`; is this the runner's event file?".into(),
            })?;
        Ok(Head {
            sha,
            subject: payload.str_at("/pull_request/title"),
            author: payload.str_at("/pull_request/user/login"),
            branch: payload
                .str_at("/pull_request/head/ref")
                .or(gh.github_head_ref.clone()),
            pull_request: payload
                .value
                .pointer("/pull_request/number")
                .and_then(|v| v.as_u64()),
        })
    }
}

/// Refuses an empty commit or one that is not a git SHA (7 or more hex
/// digits), naming where it came from.
fn check_sha(sha: &str) -> Result<(), BadInput> {
    if sha.is_empty() {
        return Err(BadInput::other(
            "no commit to build: GITHUB_SHA is unset and this is not a git checkout; run inside a repository or set GITHUB_SHA",
        ));
    }
    if !sha.chars().all(|c| c.is_ascii_hexdigit()) || sha.len() < 7 {
        return Err(BadInput::other(format!(
            "commit `{sha}` is not a git SHA; check GITHUB_SHA or the event file"
        )));
    }
    Ok(())
}

/// A base URL from the variable, or `default`, without a trailing slash.
fn base_url(value: Option<&str>, default: &str) -> String {
    value.unwrap_or(default).trim_end_matches('/').to_string()
}

fn read_event(path: &Path) -> Result<serde_json::Value, BadInput> {
    let text = std::fs::read_to_string(path).map_err(|e| BadInput::Event {
        path: path.to_path_buf(),
        message: format!(
            "cannot be read ({e}); GITHUB_EVENT_PATH must name the runner's event file"
        ),
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| BadInput::Event {
        path: path.to_path_buf(),
        message: format!(
            "is not valid JSON ({e}); GITHUB_EVENT_PATH must name the runner's event file"
        ),
    })?;
    if !value.is_object() {
        return Err(BadInput::Event {
            path: path.to_path_buf(),
            message: "is not a JSON object".into(),
        });
    }
    Ok(value)
}

/// What `git` says about a local checkout, for laptop runs.
#[derive(Debug, Default)]
struct LocalGit {
    sha: Option<String>,
    branch: Option<String>,
    subject: Option<String>,
    author: Option<String>,
}

impl LocalGit {
    fn read(dir: &Path) -> Self {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(dir)
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        LocalGit {
            sha: git(&["rev-parse", "HEAD"]),
            branch: git(&["symbolic-ref", "--short", "-q", "HEAD"]),
            subject: git(&["log", "-1", "--format=%s"]),
            author: git(&["log", "-1", "--format=%an"]),
        }
    }
}

/// What this run does, decided from the context and the config.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Target {
    /// Build, push and deploy to `environment`.
    Deploy { environment: String, reason: String },
    /// Build (and push unless a pull request), deploy nothing.
    BuildOnly { push: bool, reason: String },
}

impl Target {
    pub fn environment(&self) -> Option<&str> {
        match self {
            Target::Deploy { environment, .. } => Some(environment),
            Target::BuildOnly { .. } => None,
        }
    }
    pub fn pushes(&self) -> bool {
        match self {
            Target::Deploy { .. } => true,
            Target::BuildOnly { push, .. } => *push,
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Target::Deploy { reason, .. } | Target::BuildOnly { reason, .. } => reason,
        }
    }
}

/// Branches that deploy when the config has no `environments`.
pub const DEFAULT_BRANCH_MAP: &[(&str, &str)] = &[("main", "production"), ("develop", "staging")];

/// Outside GitHub Actions a run deploys only where asked: a developer on
/// `main` with credentials who types the tool's name to see what it does
/// must not ship to production. The branch map is said, with how to deploy.
fn local_build_only(ctx: &RunContext, config: Option<&Config>, has_envs: bool) -> Target {
    let mapped = ctx
        .branch
        .as_deref()
        .and_then(|branch| match config.filter(|_| has_envs) {
            Some(c) => c
                .environment_for_branch(branch)
                .map(|e| (branch, e.to_string())),
            None => DEFAULT_BRANCH_MAP
                .iter()
                .find(|(b, _)| *b == branch)
                .map(|(b, e)| (*b, e.to_string())),
        });
    let reason = match mapped {
        Some((branch, env)) => format!(
            "outside GitHub Actions a run deploys only where asked (branch `{branch}` maps to `{env}` in a workflow); \
             to deploy, pass `--environment {env}` or set ENVIRONMENT={env}"
        ),
        None => "outside GitHub Actions a run deploys only where asked; to deploy, pass `--environment <name>` or set ENVIRONMENT"
            .to_string(),
    };
    Target::BuildOnly { push: true, reason }
}

/// Decides the environment: the `environment` input first, then the
/// `workflow_dispatch` input, then the branch (or tag) map. Pull requests
/// build only, for their head commit, and push nothing.
pub fn resolve_target(
    ctx: &RunContext,
    config: Option<&Config>,
    explicit: Option<&str>,
) -> Result<Target, BadInput> {
    let has_envs = config.is_some_and(|c| !c.environments.is_empty());
    let check = |name: &str, source: &str| -> Result<String, BadInput> {
        if let Some(c) = config.filter(|_| has_envs)
            && !c.environments.contains_key(name)
        {
            return Err(BadInput::UnknownEnvironment {
                name: name.to_string(),
                known: format!(
                    "{source}, but the config defines: {}; add it under `environments` or pick one of those",
                    c.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(name.to_string())
    };
    if ctx.is_pull_request() {
        // An explicit environment on a PR workflow is a mistake we name rather
        // than act on: deploying unmerged code is never implied.
        return Ok(Target::BuildOnly {
            push: false,
            reason: format!(
                "pull request #{}: build only, for head commit {}",
                ctx.pull_request
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into()),
                ctx.short_sha()
            ),
        });
    }
    if let Some(env) = explicit {
        return Ok(Target::Deploy {
            environment: check(env, "the `environment` input asks for it")?,
            reason: "the `environment` input".into(),
        });
    }
    if let Some(env) = &ctx.dispatch_environment {
        return Ok(Target::Deploy {
            environment: check(env, "the workflow_dispatch input asks for it")?,
            reason: "the workflow_dispatch `environment` input".into(),
        });
    }
    if !ctx.in_actions {
        return Ok(local_build_only(ctx, config, has_envs));
    }
    if let Some(branch) = &ctx.branch {
        let mapped = match config.filter(|_| has_envs) {
            Some(c) => c.environment_for_branch(branch).map(str::to_string),
            None => DEFAULT_BRANCH_MAP
                .iter()
                .find(|(b, _)| b == branch)
                .map(|(_, e)| e.to_string()),
        };
        return Ok(match mapped {
            Some(environment) => Target::Deploy {
                reason: format!("branch `{branch}` maps to `{environment}`"),
                environment,
            },
            None => Target::BuildOnly {
                push: true,
                reason: format!("branch `{branch}` maps to no environment: build and push only"),
            },
        });
    }
    if let Some(tag) = &ctx.tag {
        return Ok(match config.and_then(|c| c.environment_for_tag(tag)) {
            Some(environment) => Target::Deploy {
                reason: format!("tag `{tag}` maps to `{environment}`"),
                environment: environment.to_string(),
            },
            None => Target::BuildOnly {
                push: true,
                reason: format!("tag `{tag}` maps to no environment: build and push only"),
            },
        });
    }
    Ok(Target::BuildOnly {
        push: true,
        reason: format!(
            "{} event on {}: build and push only",
            ctx.event,
            ctx.git_ref.as_deref().unwrap_or("no ref")
        ),
    })
}
