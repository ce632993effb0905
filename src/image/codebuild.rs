//! AWS CodeBuild: remote builds from the same plan, with live logs, phases, cancellation and the pushed digest.
//!
//! The buildspec is generated from the same [`BuildRequest`] a local build
//! runs: `crate::image::docker::build_command` renders the buildx argument
//! list (same tags, same ECR cache flags) and this module writes it into the
//! buildspec with paths relative to the source CodeBuild checks out. Secrets
//! never travel as plaintext: build args whose value is `ssm:<parameter>` or
//! `secretsmanager:<secret-id>` become PARAMETER_STORE / SECRETS_MANAGER
//! environment overrides that CodeBuild resolves, and buildx reads them from
//! the environment (`--build-arg NAME` without a value).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use aws_sdk_codebuild::types::{Build, EnvironmentVariable, EnvironmentVariableType, StatusType};
use serde::Serialize;
use sha2::Digest as _;

use crate::aws::{FailureKind, backoff, classify};
use crate::cancel::Cancel;
use crate::clock::Clock;
use crate::error::BadInput;
use crate::gha::Actions;
use crate::image::{BuildOutput, BuildRequest, docker};
use crate::logs::LogTail;
use crate::process::shell_quote;
use crate::wait::{Pace, Poll, Stop, Stopped, Tempo, Waiter};

/// Exported variable carrying the pushed manifest's digest.
pub const DIGEST_VARIABLE: &str = "FASTDEPLOY_IMAGE_DIGEST";
/// Plaintext override naming the registry the build logs in to.
pub const REGISTRY_VARIABLE: &str = "FASTDEPLOY_REGISTRY";
/// Scratch directory inside the build container (metadata file).
pub const REMOTE_WORK_DIR: &str = "/tmp/fastdeploy";
/// Seconds between BatchGetBuilds polls (scaled, jittered).
pub const POLL_SECONDS: f64 = 5.0;
/// Grace past `codebuild-timeout-minutes` for queueing and provisioning
/// before fastdeploy stops the build itself.
pub const TIMEOUT_GRACE_SECONDS: f64 = 300.0;
/// Consecutive transient failures of the status poll before giving up.
const MAX_TRANSIENT: u32 = 6;

/// A build-arg value CodeBuild resolves from a secret store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `ssm:/path/to/parameter`
    ParameterStore(String),
    /// `secretsmanager:secret-id[:json-key[:version-stage[:version-id]]]`
    SecretsManager(String),
}

impl SecretRef {
    pub fn parse(value: &str) -> Option<SecretRef> {
        if let Some(name) = value.strip_prefix("ssm:").filter(|n| !n.is_empty()) {
            Some(SecretRef::ParameterStore(name.to_string()))
        } else {
            value
                .strip_prefix("secretsmanager:")
                .filter(|n| !n.is_empty())
                .map(|id| SecretRef::SecretsManager(id.to_string()))
        }
    }

    fn variable(&self, name: &str) -> anyhow::Result<EnvironmentVariable> {
        let (kind, value) = match self {
            SecretRef::ParameterStore(v) => (EnvironmentVariableType::ParameterStore, v),
            SecretRef::SecretsManager(v) => (EnvironmentVariableType::SecretsManager, v),
        };
        Ok(EnvironmentVariable::builder()
            .name(name)
            .value(value)
            .r#type(kind)
            .build()?)
    }
}

/// What StartBuild is given besides the project and commit.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    pub buildspec: String,
    pub environment: Vec<EnvironmentVariable>,
    /// The buildx command as it runs in CodeBuild (for logs and tests).
    pub command: Vec<String>,
}

#[derive(Serialize)]
struct Buildspec {
    version: &'static str,
    env: BuildspecEnv,
    phases: BuildspecPhases,
}

#[derive(Serialize)]
struct BuildspecEnv {
    shell: &'static str,
    #[serde(rename = "exported-variables")]
    exported_variables: Vec<&'static str>,
}

#[derive(Serialize)]
struct BuildspecPhases {
    pre_build: Phase,
    build: Phase,
}

#[derive(Serialize)]
struct Phase {
    #[serde(rename = "on-failure", skip_serializing_if = "Option::is_none")]
    on_failure: Option<&'static str>,
    commands: Vec<String>,
}

/// Generates the buildspec and environment overrides for one component.
/// Pure. `source_root` is the workspace the plan's paths are under (CodeBuild
/// checks the same commit out into `$CODEBUILD_SRC_DIR` and runs from there).
pub fn remote_spec(req: &BuildRequest<'_>, source_root: &Path) -> anyhow::Result<RemoteSpec> {
    let mut plan = req.plan.clone();
    plan.context = relative_to(source_root, &req.plan.context, "build context")?;
    plan.dockerfile = relative_to(source_root, &req.plan.dockerfile, "Dockerfile")?;
    let pinned = req.bases.and_then(|b| b.pinned.as_deref());
    let write_pinned = pinned.map(|text| {
        let at = pinned_path(&plan.dockerfile);
        let commands = pinned_commands(text, &plan.dockerfile, &at, source_root);
        plan.dockerfile = at;
        commands
    });
    let environment = environment_overrides(req)?;
    let remote = BuildRequest {
        plan: &plan,
        work_dir: Path::new(REMOTE_WORK_DIR),
        ..req.clone()
    };
    let builder = docker::builder_for(&remote);
    let command = remote_command(&remote, builder.as_deref(), &secret_arg_names(req));
    let mut pre_build = pre_build_commands(builder.as_deref());
    pre_build.extend(write_pinned.into_iter().flatten());
    let buildspec = render_buildspec(pre_build, build_commands(&command))?;
    Ok(RemoteSpec {
        buildspec,
        environment,
        command,
    })
}

/// Where the build's Dockerfile with pinned bases is written in CodeBuild.
fn pinned_path(dockerfile: &Path) -> PathBuf {
    let name = dockerfile
        .file_name()
        .unwrap_or(std::ffi::OsStr::new("Dockerfile"));
    Path::new(REMOTE_WORK_DIR).join("pinned").join(name)
}

/// pre_build commands that write the pinned Dockerfile `text` to `at` (as
/// base64: the buildspec is YAML and the text may hold anything), and copy
/// the Dockerfile's own ignore file beside it when the repository has one.
fn pinned_commands(text: &str, dockerfile: &Path, at: &Path, source_root: &Path) -> Vec<String> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let dir = at.parent().unwrap_or(Path::new(REMOTE_WORK_DIR));
    let mut commands = vec![
        format!("mkdir -p {}", shell_quote(&dir.display().to_string())),
        format!(
            "echo {encoded} | base64 -d > {}",
            shell_quote(&at.display().to_string())
        ),
    ];
    let ignore = format!("{}.dockerignore", dockerfile.display());
    if source_root.join(&ignore).is_file() {
        commands.push(format!(
            "cp {} {}",
            shell_quote(&ignore),
            shell_quote(&format!("{}.dockerignore", at.display()))
        ));
    }
    commands
}

/// `path` relative to `source_root` (`.` for the root itself); a bad-input
/// error naming `what` when it lies outside.
fn relative_to(source_root: &Path, path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let rel = path.strip_prefix(source_root).map_err(|_| {
        BadInput::other(format!(
            "the {what} {} is outside the workspace {}; CodeBuild can only build from the checked-out repository",
            path.display(),
            source_root.display()
        ))
    })?;
    Ok(if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel.to_path_buf()
    })
}

/// The environment overrides StartBuild is given: the registry, then one
/// secret-store variable per secret build arg and per build secret.
fn environment_overrides(req: &BuildRequest<'_>) -> anyhow::Result<Vec<EnvironmentVariable>> {
    let mut environment = vec![
        EnvironmentVariable::builder()
            .name(REGISTRY_VARIABLE)
            .value(req.registry)
            .r#type(EnvironmentVariableType::Plaintext)
            .build()?,
    ];
    for (name, value) in &req.plan.build_args {
        if let Some(secret) = SecretRef::parse(value) {
            environment.push(secret.variable(name)?);
        }
    }
    // Build secrets: CodeBuild puts each in a variable of its own, which
    // the build's `--secret id=<id>,env=<variable>` reads.
    for secret in &req.plan.secrets {
        let reference = match &secret.source {
            crate::settings::SecretSource::ParameterStore(p) => {
                SecretRef::ParameterStore(p.clone())
            }
            crate::settings::SecretSource::SecretsManager(s) => {
                SecretRef::SecretsManager(s.clone())
            }
            // The plan refuses runner-side sources for CodeBuild.
            other => anyhow::bail!(
                "build secret `{}` comes from {other:?}, which CodeBuild cannot read",
                secret.id
            ),
        };
        environment.push(reference.variable(&docker::secret_variable(&secret.id))?);
    }
    Ok(environment)
}

/// The `--build-arg` values of secret build args (`NAME=ssm:...`) mapped to
/// the bare `NAME` that makes buildx read the value from the environment.
fn secret_arg_names(req: &BuildRequest<'_>) -> BTreeMap<String, String> {
    req.plan
        .build_args
        .iter()
        .filter(|(_, value)| SecretRef::parse(value).is_some())
        .map(|(name, value)| (format!("{name}={value}"), name.clone()))
        .collect()
}

/// The buildx command as it runs in CodeBuild: the local build's, with
/// secret build args read from the environment and plain progress.
fn remote_command(
    remote: &BuildRequest<'_>,
    builder: Option<&str>,
    secret_args: &BTreeMap<String, String>,
) -> Vec<String> {
    let spec = docker::build_command(remote, "docker", builder);
    std::iter::once(spec.program.clone())
        .chain(spec.args.iter().map(|a| {
            // Secret values come from the environment CodeBuild fills in.
            if let Some(name) = secret_args.get(a) {
                return name.clone();
            }
            // Plain progress reads well in CloudWatch; rawjson is for our own parser.
            if a == "--progress=rawjson" {
                "--progress=plain".to_string()
            } else {
                a.clone()
            }
        }))
        .collect()
}

/// The pre_build phase's commands: log in to the registry, make the scratch
/// directory, and create the buildx builder unless it exists.
fn pre_build_commands(builder: Option<&str>) -> Vec<String> {
    let mut pre_build = vec![
        // The password goes through a pipe, never onto a command line.
        format!(
            "aws ecr get-login-password --region \"$AWS_REGION\" | docker login --username AWS --password-stdin \"${REGISTRY_VARIABLE}\""
        ),
        format!("mkdir -p {REMOTE_WORK_DIR}"),
    ];
    if let Some(b) = builder {
        let inspect = docker::inspect_builder_command("docker", b);
        let create = docker::create_builder_command("docker", b, None);
        pre_build.push(format!(
            "{} >/dev/null 2>&1 || {}",
            inspect.display(),
            create.display()
        ));
    }
    pre_build
}

/// The build phase's commands: run `command`, then export and echo the
/// pushed digest from buildx's metadata file.
fn build_commands(command: &[String]) -> Vec<String> {
    let metadata = docker::metadata_path(Path::new(REMOTE_WORK_DIR));
    vec![
        command
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        format!(
            "{DIGEST_VARIABLE}=$(jq -r '.\"containerimage.digest\" // empty' {})",
            shell_quote(&metadata.display().to_string())
        ),
        format!("echo \"fastdeploy: pushed digest ${DIGEST_VARIABLE}\""),
    ]
}

/// The buildspec YAML with the two phases; pre_build aborts the build when
/// it fails.
fn render_buildspec(pre_build: Vec<String>, build: Vec<String>) -> anyhow::Result<String> {
    let spec = Buildspec {
        version: "0.2",
        env: BuildspecEnv {
            shell: "bash",
            exported_variables: vec![DIGEST_VARIABLE],
        },
        phases: BuildspecPhases {
            pre_build: Phase {
                on_failure: Some("ABORT"),
                commands: pre_build,
            },
            build: Phase {
                on_failure: None,
                commands: build,
            },
        },
    };
    // One line per command: folded scalars would read badly in the build's record.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(&spec, options)
        .context("rendering the CodeBuild buildspec")
}

/// Same project, commit, component and buildspec give the same token, so a
/// retried StartBuild (ours or the SDK's) never launches a second build.
pub fn idempotency_token(project: &str, commit: &str, component: &str, buildspec: &str) -> String {
    let mut h = sha2::Sha256::new();
    for part in [project, commit, component, buildspec] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())[..32].to_string()
}

/// A remote build that ended without success. Carries the build id so the
/// report can link it.
#[derive(Debug, thiserror::Error)]
#[error("CodeBuild build {build_id} {what}{}", tail_text(.last_lines))]
pub struct RemoteBuildFailed {
    pub build_id: String,
    /// `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`, or `CANCELLED` (we stopped it).
    pub status: String,
    pub what: String,
    pub last_lines: Vec<String>,
    /// What the build was billed, when it ended on its own.
    pub billing: Option<super::billing::Billing>,
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last log lines:\n{}", lines.join("\n"))
    }
}

/// Checks that `project` exists before anything is created or pushed, so a
/// wrong `codebuild-project` is bad input with nothing half-done.
pub async fn preflight(
    cb: &aws_sdk_codebuild::Client,
    project: &str,
    compute_type: Option<&str>,
) -> anyhow::Result<ProjectFacts> {
    let resource = format!("CodeBuild project `{project}`");
    let out = cb
        .batch_get_projects()
        .names(project)
        .send()
        .await
        .map_err(|e| classify(&e).explain("codebuild:BatchGetProjects", &resource))?;
    // BatchGetProjects lists a missing name under `projectsNotFound`; a
    // project can be named by its name or its ARN.
    let Some(found) = out
        .projects()
        .iter()
        .find(|p| p.name() == Some(project) || p.arn() == Some(project))
    else {
        return Err(BadInput::other(format!(
            "CodeBuild project `{project}` does not exist in this account and region; create it (its source: this repository) or fix `codebuild-project`"
        ))
        .into());
    };
    let facts = ProjectFacts {
        environment_type: found
            .environment()
            .map_or("LINUX_CONTAINER", |e| e.r#type().as_str())
            .to_string(),
        compute_type: found
            .environment()
            .map_or("BUILD_GENERAL1_SMALL", |e| e.compute_type().as_str())
            .to_string(),
    };
    if let Some(compute) = compute_type {
        compute_fits(compute, &facts.environment_type).map_err(|why| {
            BadInput::other(format!(
                "codebuild-compute-type `{compute}` {why} (CodeBuild project `{project}`)"
            ))
        })?;
    }
    Ok(facts)
}

/// What a project's builds run on, read by the preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFacts {
    /// `LINUX_CONTAINER`, `ARM_CONTAINER`, ...
    pub environment_type: String,
    pub compute_type: String,
}

/// Whether builds of `environment` type can run on `compute`: the Lambda
/// compute types only on the Lambda environment types, the general ones
/// only off them (the ProjectEnvironment reference).
pub fn compute_fits(compute: &str, environment: &str) -> Result<(), String> {
    let lambda_compute = compute.starts_with("BUILD_LAMBDA_");
    let lambda_environment = environment.ends_with("_LAMBDA_CONTAINER");
    match (lambda_compute, lambda_environment) {
        (true, false) => Err(format!(
            "runs only on a Lambda environment (LINUX_LAMBDA_CONTAINER or ARM_LAMBDA_CONTAINER), and the project's is {environment}; pick a BUILD_GENERAL1_ type"
        )),
        (false, true) => Err(format!(
            "does not run on the project's {environment} environment; pick a BUILD_LAMBDA_ type"
        )),
        _ => Ok(()),
    }
}

/// A CodeBuild project and what its builds need: the clients, the
/// timeout, the time scale.
pub struct Remote {
    pub codebuild: aws_sdk_codebuild::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub project: String,
    /// `codebuild-timeout-minutes`.
    pub timeout_minutes: u32,
    /// `codebuild-compute-type`: each build's computeTypeOverride.
    pub compute_type: Option<String>,
    /// A native build for another architecture than the project's: the
    /// environment type and image StartBuild overrides the project's with.
    pub environment: Option<(String, String)>,
    pub clock: Clock,
}

impl Remote {
    /// Runs one component's build in CodeBuild and returns what it pushed
    /// and the build id.
    ///
    /// Starts the project at `commit` with the generated buildspec, polls
    /// the build through a [`Waiter`] (jittered; a throttled look waits
    /// longer), streams its CloudWatch log into the action log, reports each
    /// phase with its duration, and stops the build when `cancel` fires or
    /// the timeout passes.
    pub async fn build(
        &self,
        req: &BuildRequest<'_>,
        commit: &str,
        source_root: &Path,
        cancel: &Cancel,
        actions: &Actions,
    ) -> anyhow::Result<(BuildOutput, String)> {
        let started = Instant::now();
        let spec = remote_spec(req, source_root)?;
        tracing::debug!(component = req.component, buildspec = %spec.buildspec, "CodeBuild buildspec");
        let id = self.start(req, commit, &spec).await?;
        // In the build's log group (groups do not nest), each line the
        // build's: the component's name before it.
        let actions = &actions.prefixed(&format!("[{}] ", req.component));
        actions.line(&format!(
            "started CodeBuild build {id} of project {} at {commit}",
            self.project
        ));
        let finished = self.watch(&id, cancel, actions).await?;
        let digest = self.digest(req, &id, &finished).await?;
        if !digest.is_empty() {
            actions.line(&format!("{}@{digest}", req.image()));
        }
        let billing = super::billing::of_build(&finished);
        if let Some(b) = &billing {
            actions.line(&format!(
                "CodeBuild billed {} minute(s) on {} ({})",
                b.billed_minutes,
                b.compute_type,
                super::billing::cost_text(b)
            ));
        }
        Ok((
            BuildOutput {
                digest,
                seconds: started.elapsed().as_secs_f64(),
                billing,
                ..Default::default()
            },
            id,
        ))
    }

    /// StartBuild with the buildspec and an idempotency token (a retried
    /// start returns the build already started); the build's id.
    async fn start(
        &self,
        req: &BuildRequest<'_>,
        commit: &str,
        spec: &RemoteSpec,
    ) -> anyhow::Result<String> {
        let project = &self.project;
        let token = idempotency_token(project, commit, req.component, &spec.buildspec);
        let mut attempt = 0;
        loop {
            let res = self
                .codebuild
                .start_build()
                .project_name(project)
                .source_version(commit)
                .buildspec_override(&spec.buildspec)
                .set_environment_variables_override(Some(spec.environment.clone()))
                .privileged_mode_override(true)
                .set_compute_type_override(
                    self.compute_type
                        .as_deref()
                        .map(aws_sdk_codebuild::types::ComputeType::from),
                )
                .set_environment_type_override(
                    self.environment
                        .as_ref()
                        .map(|(t, _)| aws_sdk_codebuild::types::EnvironmentType::from(t.as_str())),
                )
                .set_image_override(self.environment.as_ref().map(|(_, i)| i.clone()))
                .timeout_in_minutes_override(
                    i32::try_from(self.timeout_minutes).unwrap_or(i32::MAX),
                )
                .idempotency_token(&token)
                .send()
                .await;
            let failure = match res {
                Ok(out) => {
                    let build = out
                        .build_value()
                        .context("CodeBuild StartBuild returned no build")?;
                    let id = build
                        .id()
                        .context("CodeBuild StartBuild returned a build without an id")?;
                    return Ok(id.to_string());
                }
                Err(e) => classify(&e),
            };
            attempt += 1;
            if failure.is_retryable() && attempt < MAX_TRANSIENT {
                crate::timings::sleep(
                    "aws",
                    backoff(attempt, self.clock.of(1.0), self.clock.of(20.0)),
                )
                .await;
                continue;
            }
            if failure.kind == FailureKind::NotFound {
                return Err(BadInput::other(format!(
                    "CodeBuild project `{project}` does not exist in this account and region; create it (its source: this repository) or fix `codebuild-project` ({})",
                    failure.message
                ))
                .into());
            }
            return Err(failure.explain(
                "codebuild:StartBuild",
                &format!("CodeBuild project `{project}`"),
            ));
        }
    }

    /// The digest the build exported, else the one ECR's commit tag names
    /// (an older buildspec, jq missing); empty when nothing was pushed.
    async fn digest(
        &self,
        req: &BuildRequest<'_>,
        id: &str,
        finished: &Build,
    ) -> anyhow::Result<String> {
        let exported = finished
            .exported_environment_variables()
            .iter()
            .find(|v| v.name() == Some(DIGEST_VARIABLE))
            .and_then(|v| v.value())
            .filter(|v| v.starts_with("sha256:"));
        if let Some(d) = exported {
            return Ok(d.to_string());
        }
        if !req.plan.push {
            return Ok(String::new());
        }
        let tag = req
            .plan
            .tags
            .first()
            .context("the build plan has no tags")?;
        let repo = &req.plan.repository;
        let details = crate::image::ecr::image_details(&self.ecr, repo, tag, self.clock).await.with_context(|| {
            format!("CodeBuild build {id} succeeded but exported no digest, and ECR has no {repo}:{tag}")
        })?;
        Ok(details.digest)
    }

    /// Polls one build to its end. Returns the finished build on success.
    async fn watch(&self, id: &str, cancel: &Cancel, actions: &Actions) -> anyhow::Result<Build> {
        let wait = f64::from(self.timeout_minutes) * 60.0 + TIMEOUT_GRACE_SECONDS;
        let mut w = Waiter::new(Pace::new(self.clock, POLL_SECONDS, wait), cancel, actions);
        let mut tail: Option<LogTail> = None;
        let mut phases = PhaseReport::default();
        let doing = format!("waiting for CodeBuild build {id}");
        let looked = w
            .until(&doing, async || {
                self.look(id, &mut tail, &mut phases, actions).await
            })
            .await;
        let b = match looked {
            Ok(b) => b,
            Err(e) => {
                let (status, what) = match Stopped::find(&e).map(|s| &s.stop) {
                    Some(Stop::Cancelled) => (
                        "CANCELLED",
                        "was stopped because the workflow was cancelled".to_string(),
                    ),
                    Some(Stop::TimedOut) => (
                        "TIMED_OUT",
                        format!(
                            "did not finish within codebuild-timeout-minutes ({}) and was stopped",
                            self.timeout_minutes
                        ),
                    ),
                    _ => {
                        stop(&self.codebuild, id, actions).await;
                        return Err(e);
                    }
                };
                stop(&self.codebuild, id, actions).await;
                drain(tail.as_mut(), &self.logs, actions).await;
                let (build_id, last_lines) = (id.to_string(), last_lines(&tail));
                return Err(RemoteBuildFailed {
                    build_id,
                    status: status.into(),
                    what,
                    last_lines,
                    billing: None,
                }
                .into());
            }
        };
        drain(tail.as_mut(), &self.logs, actions).await;
        actions.line(&format!("phases: {}", phases.summary()));
        let status = b.build_status().cloned().unwrap_or(StatusType::InProgress);
        if status == StatusType::Succeeded {
            return Ok(b);
        }
        Err(self.failed(id, &b, status, &tail).into())
    }

    /// One look: the build's status and phases, then its new log lines
    /// (phases first: the status was read before the log, so its lines
    /// never run ahead of the log's). Done when the build is complete.
    async fn look(
        &self,
        id: &str,
        tail: &mut Option<LogTail>,
        phases: &mut PhaseReport,
        actions: &Actions,
    ) -> anyhow::Result<Poll<Build>> {
        let out = self
            .codebuild
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(|e| {
                classify(&e).explain("codebuild:BatchGetBuilds", &format!("CodeBuild build {id}"))
            })?;
        let Some(b) = out.builds().first() else {
            anyhow::bail!("CodeBuild no longer knows build {id} (BatchGetBuilds returned nothing)");
        };
        if tail.is_none()
            && let Some(l) = b.logs()
            && let (Some(group), Some(stream)) = (l.group_name(), l.stream_name())
        {
            *tail = Some(LogTail::new(group, stream));
        }
        for line in phases.update(b) {
            actions.line(&line);
        }
        let mut tempo = Tempo::Steady;
        if let Some(t) = tail.as_mut() {
            let polled = t.poll(&self.logs).await?;
            for line in &polled.lines {
                actions.line(line);
            }
            if polled.throttled {
                tempo = Tempo::Slow;
            }
        }
        Ok(if b.build_complete() {
            Poll::Ready(b.clone())
        } else {
            Poll::Pending(tempo)
        })
    }

    /// A finished build that did not succeed, with the phase that failed.
    fn failed(
        &self,
        id: &str,
        b: &Build,
        status: StatusType,
        tail: &Option<LogTail>,
    ) -> RemoteBuildFailed {
        let failed_phase = b
            .phases()
            .iter()
            .find(|p| p.phase_status().is_some_and(|s| s.as_str() != "SUCCEEDED"))
            .map(|p| {
                let why = p
                    .contexts()
                    .iter()
                    .filter_map(|c| c.message())
                    .filter(|m| !m.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                let phase = p.phase_type().map(|t| t.as_str()).unwrap_or("?");
                if why.is_empty() {
                    format!(" in phase {phase}")
                } else {
                    format!(" in phase {phase}: {why}")
                }
            })
            .unwrap_or_default();
        let what = match status {
            StatusType::TimedOut => {
                format!(
                    "timed out{failed_phase} (codebuild-timeout-minutes is {})",
                    self.timeout_minutes
                )
            }
            StatusType::Stopped => format!("was stopped{failed_phase}"),
            StatusType::Fault => format!("hit a CodeBuild fault{failed_phase}"),
            _ => format!("failed{failed_phase}"),
        };
        RemoteBuildFailed {
            build_id: id.to_string(),
            status: status.as_str().to_string(),
            what,
            last_lines: last_lines(tail),
            billing: super::billing::of_build(b),
        }
    }
}

fn last_lines(tail: &Option<LogTail>) -> Vec<String> {
    tail.as_ref()
        .map(|t| t.last_lines().into_iter().rev().take(20).rev().collect())
        .unwrap_or_default()
}

/// Reads what the log stream still holds after the build ended (CloudWatch
/// delivers the last events a moment late).
async fn drain(
    tail: Option<&mut LogTail>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    actions: &Actions,
) {
    let Some(t) = tail else { return };
    for _ in 0..3 {
        match t.poll(logs).await {
            Ok(p) if !p.lines.is_empty() => p.lines.iter().for_each(|l| actions.line(l)),
            Ok(_) => break,
            Err(e) => {
                tracing::debug!("log tail after the build: {e:#}");
                break;
            }
        }
    }
}

/// Stops the build; a failure to stop is reported, never hidden.
async fn stop(cb: &aws_sdk_codebuild::Client, id: &str, actions: &Actions) {
    match cb.stop_build().id(id).send().await {
        Ok(_) => actions.line(&format!("stopped CodeBuild build {id}")),
        Err(e) => {
            let f = classify(&e);
            actions.warning(
                &format!(
                    "could not stop CodeBuild build {id} ({}: {}); stop it in the console so it does not push",
                    f.code.as_deref().unwrap_or("error"),
                    f.message
                ),
                &Default::default(),
            );
        }
    }
}

/// Phases reported so far: each finished phase once, with its duration.
#[derive(Debug, Default)]
struct PhaseReport {
    done: usize,
    current: Option<String>,
    durations: Vec<(String, i64)>,
}

impl PhaseReport {
    fn update(&mut self, b: &Build) -> Vec<String> {
        let mut lines = Vec::new();
        let phases = b.phases();
        while let Some(p) = phases.get(self.done) {
            let Some(status) = p.phase_status() else {
                break;
            };
            let name = p
                .phase_type()
                .map(|t| t.as_str())
                .unwrap_or("?")
                .to_string();
            let secs = p.duration_in_seconds().unwrap_or(0);
            lines.push(format!("phase {name} {} in {secs}s", status.as_str()));
            self.durations.push((name, secs));
            self.done += 1;
        }
        let current = b.current_phase().map(str::to_string);
        if current != self.current
            && let Some(c) = &current
            && c != "COMPLETED"
        {
            lines.push(format!("phase {c} started"));
        }
        self.current = current;
        lines
    }

    fn summary(&self) -> String {
        self.durations
            .iter()
            .filter(|(n, _)| n != "SUBMITTED")
            .map(|(n, s)| format!("{n} {s}s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BuildPlan, CachePlan};

    pub(crate) fn sample_plan(root: &Path) -> BuildPlan {
        BuildPlan {
            context: root.join("backend"),
            dockerfile: root.join("backend/Dockerfile"),
            target: Some("runtime".into()),
            build_args: BTreeMap::from([
                ("NODE_ENV".to_string(), "production".to_string()),
                ("NPM_TOKEN".to_string(), "ssm:/ci/npm-token".to_string()),
                (
                    "SENTRY_DSN".to_string(),
                    "secretsmanager:prod/sentry:dsn".to_string(),
                ),
            ]),
            platforms: vec![],
            repository: "shop/backend".into(),
            tags: vec![
                "sha-0123456789ab".into(),
                "production".into(),
                "main".into(),
            ],
            labels: BTreeMap::from([(
                "org.opencontainers.image.revision".to_string(),
                "0123456789abcdef".to_string(),
            )]),
            cache: Some(CachePlan {
                repository: "shop/backend".into(),
                from_tags: vec!["cache-main".into()],
                to_tag: Some("cache-main".into()),
            }),
            push: true,
            secrets: vec![],
        }
    }

    #[test]
    fn buildspec_runs_the_local_buildx_command_with_relative_paths_and_no_plaintext_secret() {
        let root = Path::new("/home/runner/work/shop/shop");
        let plan = sample_plan(root);
        let req = BuildRequest {
            component: "backend",
            plan: &plan,
            registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            content_tag: None,
            provenance: false,
            bases: None,
            force: false,
            buildx_builder: None,
            work_dir: Path::new("/tmp/local-work"),
        };
        let spec = remote_spec(&req, root).unwrap();
        let parsed: serde_json::Value = serde_saphyr::from_str(&spec.buildspec).unwrap();
        assert_eq!(parsed["version"], "0.2", "{}", spec.buildspec);
        assert_eq!(parsed["env"]["exported-variables"][0], DIGEST_VARIABLE);
        let build = parsed["phases"]["build"]["commands"][0].as_str().unwrap();
        // Same tags and ECR cache flags as the local command.
        let local = docker::build_command(&req, "docker", docker::builder_for(&req).as_deref());
        for r in req.refs() {
            assert!(build.contains(&format!("--tag {r}")), "{build}");
        }
        let cache_to = local
            .args
            .iter()
            .find(|a| a.starts_with("type=registry,ref=") && a.contains("image-manifest=true"))
            .unwrap();
        assert!(build.contains(cache_to.as_str()), "{build}");
        assert!(
            build.contains("--file backend/Dockerfile") && build.ends_with(" backend"),
            "{build}"
        );
        assert!(build.contains("--build-arg NODE_ENV=production"));
        assert!(
            build.contains("--build-arg NPM_TOKEN ") && !build.contains("ssm:"),
            "{build}"
        );
        assert!(
            !spec.buildspec.contains("/home/runner"),
            "{}",
            spec.buildspec
        );
        // Password via a pipe, never argv.
        let pre = parsed["phases"]["pre_build"]["commands"][0]
            .as_str()
            .unwrap();
        assert!(pre.contains("--password-stdin"), "{pre}");

        let kinds: BTreeMap<&str, (&str, &str)> = spec
            .environment
            .iter()
            .map(|v| (v.name(), (v.r#type().unwrap().as_str(), v.value())))
            .collect();
        assert_eq!(kinds["NPM_TOKEN"], ("PARAMETER_STORE", "/ci/npm-token"));
        assert_eq!(kinds["SENTRY_DSN"], ("SECRETS_MANAGER", "prod/sentry:dsn"));
        assert_eq!(kinds[REGISTRY_VARIABLE].0, "PLAINTEXT");
        assert!(!kinds.contains_key("NODE_ENV"));
    }

    #[test]
    fn a_context_outside_the_workspace_is_bad_input() {
        let root = Path::new("/w");
        let mut plan = sample_plan(root);
        plan.context = PathBuf::from("/elsewhere");
        let req = BuildRequest {
            component: "backend",
            plan: &plan,
            registry: "r",
            content_tag: None,
            provenance: false,
            bases: None,
            force: false,
            buildx_builder: None,
            work_dir: Path::new("/tmp"),
        };
        let err = remote_spec(&req, root).unwrap_err();
        assert_eq!(crate::error::exit_for(&err), crate::error::Exit::BadInput);
    }

    #[test]
    fn the_idempotency_token_is_stable_per_build_and_differs_between_builds() {
        let a = idempotency_token("p", "abc", "backend", "spec");
        assert_eq!(a, idempotency_token("p", "abc", "backend", "spec"));
        assert_ne!(a, idempotency_token("p", "abd", "backend", "spec"));
        assert_ne!(a, idempotency_token("p", "abc", "frontend", "spec"));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn secret_refs_parse() {
        assert_eq!(
            SecretRef::parse("ssm:/a/b"),
            Some(SecretRef::ParameterStore("/a/b".into()))
        );
        assert_eq!(
            SecretRef::parse("secretsmanager:x:k"),
            Some(SecretRef::SecretsManager("x:k".into()))
        );
        assert_eq!(SecretRef::parse("ssm:"), None);
        assert_eq!(SecretRef::parse("plain"), None);
    }

    #[test]
    fn remote_build_secrets_come_from_codebuilds_secret_stores_by_variable() {
        use crate::plan::BuildSecret;
        use crate::settings::SecretSource;
        let root = Path::new("/w");
        let mut plan = sample_plan(root);
        plan.secrets = vec![BuildSecret {
            id: "npm".into(),
            source: SecretSource::ParameterStore("/ci/npm-token".into()),
        }];
        let req = BuildRequest {
            component: "api",
            plan: &plan,
            registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            content_tag: None,
            provenance: false,
            bases: None,
            force: false,
            buildx_builder: None,
            work_dir: Path::new("/tmp/w"),
        };
        let spec = remote_spec(&req, root).unwrap();
        let var = spec
            .environment
            .iter()
            .find(|v| v.name() == "FASTDEPLOY_SECRET_NPM")
            .expect("a variable for the secret");
        assert_eq!(var.value(), "/ci/npm-token");
        assert_eq!(var.r#type(), Some(&EnvironmentVariableType::ParameterStore));
        assert!(
            spec.command
                .windows(2)
                .any(|w| w == ["--secret", "id=npm,env=FASTDEPLOY_SECRET_NPM"]),
            "{:?}",
            spec.command
        );
        assert!(
            !spec.buildspec.contains("/ci/npm-token"),
            "the buildspec names the variable, not where it comes from"
        );
    }
}
