//! Settings resolved once: action inputs (or CLI flags), the config file and
//! the GitHub context merge into one validated struct. Nothing downstream
//! reads the environment.

pub mod component;
pub mod config;
pub mod event;
pub mod inputs;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::env_vars;
use crate::error::BadInput;
use crate::settings::event::{RunContext, Target, resolve_target};
use crate::settings::inputs::RawInputs;
use config::Config;
use serde::Serialize;

/// `builder` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderInput {
    Auto,
    Buildx,
    Buildah,
    Codebuild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Keep the service's own deployment configuration.
    Service,
    /// Start new tasks alongside the old (max 200 %, min healthy 100 %) with the circuit breaker on.
    BlueGreen,
    /// Elastic Beanstalk: deploy to the idle environment of a pair, then
    /// swap CNAMEs.
    Swap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    Completed,
    TrafficShifted,
}

impl Strategy {
    /// As the `strategy` input spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Service => "service",
            Strategy::BlueGreen => "blue-green",
            Strategy::Swap => "swap",
        }
    }
}

impl WaitUntil {
    /// As the `wait-until` input spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitUntil::Completed => "completed",
            WaitUntil::TrafficShifted => "traffic-shifted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlackOn {
    Always,
    Failure,
    Success,
}

impl SlackOn {
    /// As the `slack-on` input spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SlackOn::Always => "always",
            SlackOn::Failure => "failure",
            SlackOn::Success => "success",
        }
    }
}

/// Every setting, typed and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub raw: RawInputs,
    pub config: Option<Config>,
    pub config_path: Option<PathBuf>,
    pub context: RunContext,
    pub target: Target,
    /// `command`: deploy this commit, roll back, or promote.
    pub motion: Motion,
    /// Components selected by the `components` input (empty: all).
    pub components: Vec<String>,
    pub builder: BuilderInput,
    /// Why the builder input is what it is (e.g. `USE_CODEBUILD=true`).
    pub builder_source: String,
    pub buildx_builder: Option<String>,
    /// `buildkit-image`: the image of a docker-container builder fastdeploy creates.
    pub buildkit_image: Option<String>,
    pub provenance: bool,
    /// `rebuild`: build even when the content tag is in the registry.
    pub rebuild: bool,
    pub aws_region: Option<String>,
    /// `role-to-assume` and how to get the web identity token for it.
    pub assume_role: Option<AssumeRole>,
    /// `AWS_PROFILE`, and whether the AWS CLI's files define it (`None`:
    /// they could not be read), for errors that name it.
    pub aws_profile: Option<AwsProfile>,
    /// Values of the variables `build-secrets` names, to mask; they reach
    /// the builders through the environment they inherit, never an argument.
    pub build_secret_values: BTreeMap<String, secrecy::SecretString>,
    /// Where `aws_region` came from (`input `aws-region``, `the AWS_REGION
    /// variable`, ...); `None` leaves it to the AWS profile, if any.
    pub aws_region_source: Option<String>,
    pub registry: Option<String>,
    pub cache: bool,
    pub warn_context_mb: u64,
    pub max_context_mb: u64,
    pub max_image_mb: Option<u64>,
    pub max_parallel: usize,
    pub ignore_checks: Vec<String>,
    pub create_repository: bool,
    pub cache_repository: Option<String>,
    pub fail_on_severity: Option<String>,
    pub codebuild_project: Option<String>,
    pub codebuild_timeout_minutes: u32,
    /// `codebuild-compute-type`: each build's compute type, over the project's.
    pub codebuild_compute_type: Option<String>,
    pub strategy: Strategy,
    pub wait_until: WaitUntil,
    pub wait_minutes: u64,
    pub poll_seconds: f64,
    /// `smoke-test-seconds`: how long `smoke-test-path` may take.
    pub smoke_test_seconds: u64,
    pub rollback: bool,
    pub keep_revisions: Option<u64>,
    pub environment_url: Option<String>,
    pub slack_on: SlackOn,
    pub dry_run: bool,
    /// The time scale of every poll and retry delay (`FASTDEPLOY_DELAY_SCALE`,
    /// tests only; real time in production).
    pub clock: crate::clock::Clock,
    pub output_file: Option<PathBuf>,
    pub summary_file: Option<PathBuf>,
    /// `github-token` input, else `GITHUB_TOKEN` (deployments, PR comment).
    pub github_token: Option<secrecy::SecretString>,
    /// `slack-webhook-url`, `slack-bot-token` and `slack-channel`.
    pub slack_webhook_url: Option<secrecy::SecretString>,
    pub slack_bot_token: Option<secrecy::SecretString>,
    pub slack_channel: Option<String>,
    pub slack_api_url: String,
    /// How builders are invoked here (`FASTDEPLOY_DOCKER`, `FASTDEPLOY_BUILDAH`,
    /// `FASTDEPLOY_BUILDAH_FLAGS`).
    pub docker_program: String,
    pub buildah_program: String,
    pub buildah_flags: Vec<String>,
    /// The `registry` host speaks plain HTTP (the sandbox; never ECR).
    pub registry_insecure: bool,
    pub buildah_isolation: Option<String>,
    /// `NO_COLOR` is set (https://no-color.org).
    pub no_color: bool,
    /// The user's docker config directory (`DOCKER_CONFIG`, else
    /// `~/.docker`), where their buildx builders and plugins live.
    pub docker_config: Option<PathBuf>,
}

impl Settings {
    /// Resolves settings from raw inputs, the process environment (as a map)
    /// and the working directory.
    pub fn resolve(
        raw: RawInputs,
        env: &BTreeMap<String, String>,
        cwd: &Path,
    ) -> Result<Settings, BadInput> {
        let context = RunContext::from_env(env, cwd)?;
        let config_path = config::locate(&context.workspace, raw.get("config"))?;
        let config = config_path.as_deref().map(Config::load).transpose()?;
        let defaults = config
            .as_ref()
            .map(|c| c.defaults.clone())
            .unwrap_or_default();
        // Outside Actions, ENVIRONMENT stands in for the input, as teams'
        // scripts write it.
        let local = env
            .get(env_vars::ENVIRONMENT)
            .filter(|e| !context.in_actions && !e.is_empty());
        let explicit = raw.get("environment").or(local.map(String::as_str));
        let target = resolve_target(&context, config.as_ref(), explicit)?;
        let motion = motion(&raw, &context, &target, config.as_ref())?;
        let (builder, builder_source) = builder_input(&raw, env, &defaults)?;
        let env_region =
            target_env(&config, target.environment()).and_then(|e| e.aws_region.clone());
        let (aws_region, aws_region_source) = region(&raw, env, &target, env_region, &defaults)?;
        let mb = Megabytes::resolve(&raw, &defaults)?;
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        Ok(Settings {
            builder,
            builder_source,
            buildx_builder: raw.get("buildx-builder").map(str::to_string),
            buildkit_image: raw.get("buildkit-image").map(str::to_string),
            provenance: raw.bool("provenance")?,
            rebuild: raw.bool("rebuild")?,
            assume_role: assume_role(&raw, env, &context)?,
            aws_profile: AwsProfile::from_env(env),
            build_secret_values: build_secret_values(
                &raw,
                config.as_ref(),
                env,
                &context.workspace,
            )?,
            aws_region,
            aws_region_source,
            registry: registry_host(&raw, &defaults)?,
            cache: cache_on(&raw, &defaults)?,
            warn_context_mb: mb.warn_context,
            max_context_mb: mb.max_context,
            max_image_mb: mb.max_image,
            max_parallel: raw.u64_in("max-parallel", 1..=32)?.unwrap_or(3) as usize,
            ignore_checks: check_ids(&raw)?,
            create_repository: raw.bool("create-repository")?,
            cache_repository: cache_repository(&raw)?,
            fail_on_severity: fail_on_severity(&raw)?,
            codebuild_project: raw
                .get("codebuild-project")
                .map(str::to_string)
                .or(defaults.codebuild_project),
            codebuild_compute_type: codebuild_compute_type(&raw)?,
            codebuild_timeout_minutes: raw
                .u64_in("codebuild-timeout-minutes", 5..=2160)?
                .unwrap_or(60) as u32,
            strategy: match raw.choice("strategy", &["service", "blue-green", "swap"])? {
                Some("blue-green") => Strategy::BlueGreen,
                Some("swap") => Strategy::Swap,
                _ => Strategy::Service,
            },
            wait_until: match raw.choice("wait-until", &["completed", "traffic-shifted"])? {
                Some("traffic-shifted") => WaitUntil::TrafficShifted,
                _ => WaitUntil::Completed,
            },
            wait_minutes: raw.u64_in("wait-minutes", 1..=360)?.unwrap_or(30),
            poll_seconds: raw.seconds_in("poll-seconds", 0.1, 15.0)?.unwrap_or(5.0),
            smoke_test_seconds: raw.u64_in("smoke-test-seconds", 1..=900)?.unwrap_or(60),
            rollback: raw.bool("rollback")?,
            keep_revisions: raw.u64_in("keep-revisions", 1..=1000)?,
            environment_url: environment_url(&raw)?,
            slack_on: match raw.choice("slack-on", &["always", "failure", "success"])? {
                Some("failure") => SlackOn::Failure,
                Some("success") => SlackOn::Success,
                _ => SlackOn::Always,
            },
            dry_run: raw.bool("dry-run")?,
            clock: crate::clock::Clock::scaled(delay_scale(env)?),
            slack_webhook_url: raw
                .get("slack-webhook-url")
                .map(secrecy::SecretString::from),
            slack_bot_token: raw.get("slack-bot-token").map(secrecy::SecretString::from),
            slack_channel: raw.get("slack-channel").map(str::to_string),
            output_file: var(env_vars::GITHUB_OUTPUT).map(PathBuf::from),
            summary_file: var(env_vars::GITHUB_STEP_SUMMARY).map(PathBuf::from),
            github_token: raw
                .get("github-token")
                .map(str::to_string)
                .or_else(|| var(env_vars::GITHUB_TOKEN))
                .map(secrecy::SecretString::from),
            docker_program: var(env_vars::FASTDEPLOY_DOCKER).unwrap_or_else(|| "docker".into()),
            buildah_program: var(env_vars::FASTDEPLOY_BUILDAH).unwrap_or_else(|| "buildah".into()),
            buildah_flags: var(env_vars::FASTDEPLOY_BUILDAH_FLAGS)
                .map(|f| f.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            no_color: var(env_vars::NO_COLOR).is_some(),
            buildah_isolation: var(env_vars::FASTDEPLOY_BUILDAH_ISOLATION),
            registry_insecure: var(env_vars::FASTDEPLOY_REGISTRY_INSECURE)
                .is_some_and(|v| v == "true" || v == "1"),
            // Where docker looks: DOCKER_CONFIG, else ~/.docker.
            docker_config: var(env_vars::DOCKER_CONFIG)
                .map(PathBuf::from)
                .or_else(|| var(env_vars::HOME).map(|h| Path::new(&h).join(".docker"))),
            slack_api_url: var(env_vars::FASTDEPLOY_SLACK_API_URL)
                .unwrap_or_else(|| "https://slack.com/api".into()),
            components: selected_names(&raw, config.as_ref())?,
            target,
            motion,
            context,
            config,
            config_path,
            raw,
        })
    }

    /// The environment's config section, when deploying to a configured one.
    /// The same settings deploying to `environment` (`promote-from`'s
    /// targets), which must be in this run's region: one run, one region.
    pub fn for_environment(&self, environment: &str) -> Result<Settings, BadInput> {
        let mut other = self.clone();
        other.target = Target::Deploy {
            environment: environment.to_string(),
            reason: "`promote-from`".into(),
        };
        let theirs = other
            .environment_config()
            .and_then(|e| e.aws_region.clone());
        if self.raw.get("aws-region").is_none()
            && let Some(theirs) = theirs
            && Some(&theirs) != self.aws_region.as_ref()
        {
            return Err(BadInput::other(format!(
                "environment `{environment}` (promote-from) is in {theirs}, but this run deploys in {}; \
                 promote within one region (copy the image to the other region's registry and deploy it there)",
                self.aws_region.as_deref().unwrap_or("no region")
            )));
        }
        Ok(other)
    }

    pub fn environment_config(&self) -> Option<&config::EnvironmentConfig> {
        let env = self.target.environment()?;
        self.config.as_ref()?.environments.get(env)
    }

    /// Masks every secret value the run was given, once, before anything
    /// is printed.
    pub fn mask_secrets(&self, actions: &crate::gha::Actions) {
        for secret in self.secrets() {
            actions.add_mask(secret);
        }
    }

    /// Every secret value the run was given: secret inputs, the GitHub
    /// token, build secrets' values.
    pub fn secrets(&self) -> Vec<&str> {
        use secrecy::ExposeSecret;
        let mut out = self.raw.secrets();
        out.extend(self.github_token.iter().map(|t| t.expose_secret()));
        out.extend(self.build_secret_values.values().map(|v| v.expose_secret()));
        out.retain(|v| !v.is_empty());
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The `builder` input (or the config's `defaults.builder`), unless
/// `USE_CODEBUILD=true` forces CodeBuild as teams' scripts write it; and
/// where the choice came from.
fn builder_input(
    raw: &RawInputs,
    env: &BTreeMap<String, String>,
    defaults: &config::Defaults,
) -> Result<(BuilderInput, String), BadInput> {
    let use_codebuild = env
        .get(env_vars::USE_CODEBUILD)
        .map(|v| v.trim().to_ascii_lowercase());
    match use_codebuild.as_deref() {
        Some("true" | "1") => {
            return Ok((BuilderInput::Codebuild, "USE_CODEBUILD=true".to_string()));
        }
        Some("" | "false" | "0") | None => {}
        Some(other) => {
            return Err(BadInput::invalid(
                env_vars::USE_CODEBUILD,
                other,
                "true or false",
            ));
        }
    }
    let (value, source) = match (raw.get("builder"), defaults.builder.as_deref()) {
        (Some(v), _) => (v, "the `builder` input"),
        (None, Some(v)) => (v, "the config's defaults.builder"),
        (None, None) => ("auto", "auto"),
    };
    let builder = match value {
        "auto" => BuilderInput::Auto,
        "buildx" => BuilderInput::Buildx,
        "buildah" => BuilderInput::Buildah,
        "codebuild" => BuilderInput::Codebuild,
        other => {
            return Err(BadInput::invalid(
                "builder",
                other,
                "auto | buildx | buildah | codebuild",
            ));
        }
    };
    Ok((builder, source.to_string()))
}

/// `cache`: `registry` (default) or `none`, the input before `defaults.cache`.
fn cache_on(raw: &RawInputs, defaults: &config::Defaults) -> Result<bool, BadInput> {
    match raw
        .get("cache")
        .or(defaults.cache.as_deref())
        .unwrap_or("registry")
    {
        "registry" => Ok(true),
        "none" => Ok(false),
        other => Err(BadInput::invalid("cache", other, "registry | none")),
    }
}

/// The AWS region and where it came from, so a bad value names its source:
/// the input, the environment's, the config's default, then the variables.
fn region(
    raw: &RawInputs,
    env: &BTreeMap<String, String>,
    target: &Target,
    env_region: Option<String>,
    defaults: &config::Defaults,
) -> Result<(Option<String>, Option<String>), BadInput> {
    let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
    let environment = target.environment().unwrap_or_default();
    let sources = [
        (
            raw.get("aws-region").map(str::to_string),
            "input `aws-region`".to_string(),
        ),
        (
            env_region,
            format!("`environments.{environment}.aws-region` in the config"),
        ),
        (
            defaults.aws_region.clone(),
            "`defaults.aws-region` in the config".to_string(),
        ),
        (
            var(env_vars::AWS_REGION),
            format!("the {} variable", env_vars::AWS_REGION),
        ),
        (
            var(env_vars::AWS_DEFAULT_REGION),
            format!("the {} variable", env_vars::AWS_DEFAULT_REGION),
        ),
    ];
    match sources
        .into_iter()
        .find_map(|(v, source)| v.map(|v| (v, source)))
    {
        Some((r, source)) if config::is_region(&r) => Ok((Some(r), Some(source))),
        Some((r, source)) => Err(BadInput::other(format!(
            "{source} is {r:?}, but it accepts a region name such as eu-west-1"
        ))),
        None => Ok((None, None)),
    }
}

/// `registry`: a host overriding the one ECR reports.
fn registry_host(raw: &RawInputs, defaults: &config::Defaults) -> Result<Option<String>, BadInput> {
    let registry = raw
        .get("registry")
        .map(str::to_string)
        .or(defaults.registry.clone());
    match registry {
        Some(r) if !config::is_registry_host(&r) => Err(BadInput::invalid(
            "registry",
            &r,
            "a registry host such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com (no scheme, no path)",
        )),
        other => Ok(other),
    }
}

/// The size limits, in megabytes.
struct Megabytes {
    warn_context: u64,
    max_context: u64,
    max_image: Option<u64>,
}

impl Megabytes {
    /// A limit set as an input wins over the config's `defaults`, which wins
    /// over the input's own default (same range everywhere).
    fn resolve(raw: &RawInputs, defaults: &config::Defaults) -> Result<Megabytes, BadInput> {
        let megabytes = |name: &str, from_config: Option<u64>| match (raw.get(name), from_config) {
            (None, Some(mb)) => Ok(Some(mb)),
            _ => raw.u64_in(name, config::MB_RANGE),
        };
        let max_context = megabytes("max-context-mb", defaults.max_context_mb)?.unwrap_or(1024);
        Ok(Megabytes {
            warn_context: megabytes("warn-context-mb", None)?
                .unwrap_or(200)
                .min(max_context),
            max_context,
            max_image: megabytes("max-image-mb", defaults.max_image_mb)?,
        })
    }
}

/// `cache-repository`, checked as ECR checks a repository name.
fn cache_repository(raw: &RawInputs) -> Result<Option<String>, BadInput> {
    let Some(r) = raw.get("cache-repository") else {
        return Ok(None);
    };
    config::check_repository(r)
        .map_err(|m| BadInput::other(format!("input `cache-repository`: {m}")))?;
    Ok(Some(r.to_string()))
}

/// `fail-on-severity` as ECR spells severities; `none` is no gate.
fn fail_on_severity(raw: &RawInputs) -> Result<Option<String>, BadInput> {
    let levels = ["none", "informational", "low", "medium", "high", "critical"];
    Ok(match raw.choice("fail-on-severity", &levels)? {
        None | Some("none") => None,
        Some(s) => Some(s.to_ascii_uppercase()),
    })
}

/// `environment-url`, an absolute URL.
fn environment_url(raw: &RawInputs) -> Result<Option<String>, BadInput> {
    let Some(u) = raw.get("environment-url") else {
        return Ok(None);
    };
    url::Url::parse(u)
        .map_err(|e| BadInput::invalid("environment-url", u, &format!("an absolute URL ({e})")))?;
    Ok(Some(u.to_string()))
}

/// The `components` input: names of the config's components (one name
/// without a config).
fn selected_names(raw: &RawInputs, config: Option<&Config>) -> Result<Vec<String>, BadInput> {
    let components = raw.list("components");
    match config.filter(|c| !c.components.is_empty()) {
        Some(cfg) => {
            if let Some(c) = components.iter().find(|c| !cfg.components.contains_key(*c)) {
                let known = cfg
                    .components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(BadInput::UnknownComponent {
                    name: c.clone(),
                    known,
                });
            }
        }
        None if components.len() > 1 => {
            return Err(BadInput::invalid(
                "components",
                &components.join(","),
                "one name when there is no config file; define several components in fastdeploy.yml",
            ));
        }
        None => {}
    }
    Ok(components)
}

/// `FASTDEPLOY_DELAY_SCALE`: the tests' time scale (above 0, at most 1).
fn delay_scale(env: &BTreeMap<String, String>) -> Result<f64, BadInput> {
    let Some(v) = env
        .get(env_vars::FASTDEPLOY_DELAY_SCALE)
        .filter(|v| !v.is_empty())
    else {
        return Ok(1.0);
    };
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1.0)
        .ok_or_else(|| {
            BadInput::invalid(
                env_vars::FASTDEPLOY_DELAY_SCALE,
                v,
                "a number above 0 and at most 1",
            )
        })
}

/// What a run does to its environment (`command`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Motion {
    /// Build this commit, push it and deploy it.
    Deploy,
    /// Put back what served before the most recent deploy (or `to`).
    Rollback { to: Option<String> },
    /// Deploy what environment `from` serves now, by digest.
    Promote { from: String },
}

impl Motion {
    /// Whether the run builds (only `deploy` does).
    pub fn builds(&self) -> bool {
        *self == Motion::Deploy
    }

    /// The motion in words for reports, when it is not a plain deploy:
    /// "rollback", "promote from `staging`".
    pub fn label(&self) -> Option<String> {
        match self {
            Motion::Deploy => None,
            Motion::Rollback { .. } => Some("rollback".into()),
            Motion::Promote { from } => Some(format!("promote from `{from}`")),
        }
    }
}

/// `command`, `promote-from` and `to`, checked against each other and the
/// run: rollback and promote change an environment, so they need one, and
/// a pull request never gets one.
fn motion(
    raw: &RawInputs,
    context: &RunContext,
    target: &Target,
    config: Option<&Config>,
) -> Result<Motion, BadInput> {
    let command = raw.choice("command", &["deploy", "rollback", "promote"])?;
    let (from, to) = (raw.get("promote-from"), raw.get("to"));
    let motion = match (command.unwrap_or("deploy"), from, to) {
        ("deploy", None, None) => return Ok(Motion::Deploy),
        ("deploy", Some(_), _) => {
            return Err(BadInput::other(
                "`promote-from` is set, but `command` is deploy: set `command: promote` (fastdeploy promote --from <environment>)",
            ));
        }
        ("deploy", _, Some(_)) | ("promote", _, Some(_)) => {
            return Err(BadInput::other(
                "`to` is set, but `command` is not rollback: `to` names the revision a rollback puts back (fastdeploy rollback --to <revision>)",
            ));
        }
        ("rollback", Some(_), _) => {
            return Err(BadInput::other(
                "`promote-from` is set, but `command` is rollback: a rollback puts back this environment's own earlier revision;                  to deploy another environment's, use `command: promote`",
            ));
        }
        ("rollback", None, to) => Motion::Rollback {
            to: to.map(str::to_string),
        },
        (_, None, _) => {
            return Err(BadInput::Missing {
                name: "promote-from".into(),
                why: "with `command: promote`: name the environment whose images to deploy (fastdeploy promote --from staging)".into(),
            });
        }
        (_, Some(from), _) => Motion::Promote {
            from: from.to_string(),
        },
    };
    let verb = if matches!(motion, Motion::Rollback { .. }) {
        "rollback"
    } else {
        "promote"
    };
    if context.is_pull_request() {
        return Err(BadInput::other(format!(
            "`command: {verb}` on a pull request: a pull request builds only; run {verb} on push or workflow_dispatch"
        )));
    }
    let Some(environment) = target.environment() else {
        return Err(BadInput::Missing {
            name: "environment".into(),
            why: format!(
                "with `command: {verb}`: name the environment to change ({})",
                target.reason()
            ),
        });
    };
    if let Motion::Promote { from } = &motion {
        if from == environment {
            return Err(BadInput::other(format!(
                "`promote-from` is `{from}`, the environment being deployed to; promote from another one"
            )));
        }
        if let Some(c) = config.filter(|c| !c.environments.is_empty())
            && !c.environments.contains_key(from)
        {
            return Err(BadInput::UnknownEnvironment {
                name: from.clone(),
                known: format!(
                    "`promote-from` names it, but the config defines: {}",
                    c.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(motion)
}

/// The AWS profile the credential chain will use, as the environment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsProfile {
    pub name: String,
    /// Whether `~/.aws/config` (`[profile NAME]`) or `~/.aws/credentials`
    /// (`[NAME]`) defines it; `None` when neither file could be read.
    pub defined: Option<bool>,
}

impl AwsProfile {
    /// `AWS_PROFILE`, looked up in the files `AWS_CONFIG_FILE` and
    /// `AWS_SHARED_CREDENTIALS_FILE` name (default: `~/.aws/config`,
    /// `~/.aws/credentials`).
    fn from_env(env: &BTreeMap<String, String>) -> Option<AwsProfile> {
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let name = var(env_vars::AWS_PROFILE)?;
        let home = var(env_vars::HOME).map(PathBuf::from);
        let file = |var_name: &str, default: &str| {
            var(var_name)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let sections: Vec<String> = [
            file(env_vars::AWS_CONFIG_FILE, "config"),
            file(env_vars::AWS_SHARED_CREDENTIALS_FILE, "credentials"),
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix('[')?
                        .strip_suffix(']')
                        .map(str::trim)
                        .map(str::to_string)
                })
                .collect::<Vec<_>>()
        })
        .collect();
        let read_any = !sections.is_empty();
        let defined = sections.iter().any(|s| {
            s == &name || s.strip_prefix("profile ").map(str::trim) == Some(name.as_str())
        });
        Some(AwsProfile {
            name,
            defined: (read_any || defined).then_some(defined),
        })
    }
}

/// Where a build secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "name")]
pub enum SecretSource {
    /// An environment variable of the step (`id=NPM_TOKEN`).
    Env(String),
    /// A file in the workspace (`id=file:.npmrc`), as a path relative to it.
    File(String),
    /// CodeBuild resolves it from Parameter Store (`id=ssm:/ci/npm-token`).
    ParameterStore(String),
    /// CodeBuild resolves it from Secrets Manager (`id=secretsmanager:npm`).
    SecretsManager(String),
}

/// One `build-secrets` line: `id=ENV_VAR`, `id=file:PATH`, `id=ssm:/path`
/// or `id=secretsmanager:name`. The error says what is accepted.
pub fn parse_build_secret(line: &str) -> Result<(String, SecretSource), String> {
    const ACCEPTED: &str =
        "one `id=ENV_VAR`, `id=file:PATH`, `id=ssm:/path` or `id=secretsmanager:name` per line";
    let (id, source) = line.split_once('=').ok_or_else(|| ACCEPTED.to_string())?;
    let (id, source) = (id.trim(), source.trim());
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !id_ok || source.is_empty() {
        return Err(ACCEPTED.to_string());
    }
    let source = if let Some(path) = source.strip_prefix("file:") {
        SecretSource::File(path.to_string())
    } else if let Some(p) = source.strip_prefix("ssm:") {
        SecretSource::ParameterStore(p.to_string())
    } else if let Some(s) = source.strip_prefix("secretsmanager:") {
        SecretSource::SecretsManager(s.to_string())
    } else if source
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        SecretSource::Env(source.to_string())
    } else {
        return Err(ACCEPTED.to_string());
    };
    if matches!(&source, SecretSource::File(p) | SecretSource::ParameterStore(p) | SecretSource::SecretsManager(p) if p.is_empty())
    {
        return Err(ACCEPTED.to_string());
    }
    Ok((id.to_string(), source))
}

/// Every `build-secrets` line of the input and the config, checked: the
/// variables named are set, the files exist. Returns the variables' values
/// (to mask). Where a line came from is named in each error.
fn build_secret_values(
    raw: &RawInputs,
    config: Option<&Config>,
    env: &BTreeMap<String, String>,
    workspace: &Path,
) -> Result<BTreeMap<String, secrecy::SecretString>, BadInput> {
    let mut lines: Vec<(String, String)> = raw
        .get("build-secrets")
        .map(|v| {
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| (l.to_string(), "input `build-secrets`".to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (name, c) in config.map(|c| &c.components).into_iter().flatten() {
        lines.extend(c.build_secrets.iter().map(|l| {
            (
                l.clone(),
                format!("`components.{name}.build-secrets` in the config"),
            )
        }));
    }
    let mut values = BTreeMap::new();
    for (line, source) in lines {
        let (id, from) = parse_build_secret(&line).map_err(|accepted| {
            BadInput::other(format!("{source} has {line:?}, but it accepts {accepted}"))
        })?;
        match from {
            SecretSource::Env(var) => match env.get(&var).filter(|v| !v.is_empty()) {
                Some(v) => {
                    values.insert(var, secrecy::SecretString::from(v.clone()));
                }
                None => {
                    return Err(BadInput::other(format!(
                        "{source}: build secret `{id}` comes from the variable {var}, which is not set; add it to the step's `env:` (e.g. `{var}: ${{{{ secrets.{var} }}}}`)"
                    )));
                }
            },
            SecretSource::File(path) => {
                let full = workspace.join(&path);
                if !full.is_file() {
                    return Err(BadInput::other(format!(
                        "{source}: build secret `{id}` comes from the file {}, which does not exist; write it in an earlier step or fix the path",
                        full.display()
                    )));
                }
            }
            SecretSource::ParameterStore(_) | SecretSource::SecretsManager(_) => {}
        }
    }
    Ok(values)
}

/// A role assumed with a web identity token (GitHub's OIDC token in Actions).
#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: String,
    pub duration_seconds: u32,
    pub audience: String,
    pub token: TokenSource,
}

/// Where the web identity token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// The job's OIDC endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` and its bearer token).
    Actions {
        url: String,
        request_token: secrecy::SecretString,
    },
    /// A file holding the token (`AWS_WEB_IDENTITY_TOKEN_FILE`), read at each refresh.
    File(PathBuf),
}

/// `role-to-assume` and its companions, with where the token comes from.
fn assume_role(
    raw: &RawInputs,
    env: &BTreeMap<String, String>,
    context: &RunContext,
) -> Result<Option<AssumeRole>, BadInput> {
    let Some(role_arn) = raw.get("role-to-assume") else {
        return Ok(None);
    };
    let arn = regex::Regex::new(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$")
        .expect("static regex");
    if !arn.is_match(role_arn) {
        return Err(BadInput::invalid(
            "role-to-assume",
            role_arn,
            "an IAM role ARN such as arn:aws:iam::123456789012:role/deploy",
        ));
    }
    let duration_seconds = raw
        .u64_in("role-duration-seconds", 900..=43200)?
        .unwrap_or(3600) as u32;
    let session_name = match raw.get("role-session-name") {
        Some(s) => s.to_string(),
        None => match &context.run_id {
            Some(run) => format!("fastdeploy-{run}-{}", context.run_attempt),
            None => "fastdeploy-local".to_string(),
        },
    };
    if !regex::Regex::new(r"^[A-Za-z0-9_+=,.@-]{2,64}$")
        .expect("static regex")
        .is_match(&session_name)
    {
        return Err(BadInput::invalid(
            "role-session-name",
            &session_name,
            "2-64 letters, digits or `+=,.@_-`",
        ));
    }
    let audience = raw
        .get_or_default("audience")
        .unwrap_or("sts.amazonaws.com")
        .to_string();
    let var = |k: &str| env.get(k).filter(|v| !v.is_empty());
    let token = match (
        var(env_vars::ACTIONS_ID_TOKEN_REQUEST_URL),
        var(env_vars::ACTIONS_ID_TOKEN_REQUEST_TOKEN),
    ) {
        (Some(url), Some(t)) => TokenSource::Actions {
            url: url.clone(),
            request_token: secrecy::SecretString::from(t.clone()),
        },
        (Some(_), None) => {
            return Err(BadInput::other(format!(
                "input `role-to-assume` needs the job's OIDC token, but {} is set without {}; run fastdeploy as a step of the job, not in a container of its own",
                env_vars::ACTIONS_ID_TOKEN_REQUEST_URL,
                env_vars::ACTIONS_ID_TOKEN_REQUEST_TOKEN
            )));
        }
        (None, _) if context.in_actions => {
            // GitHub gives a pull request from a fork no OIDC token, whatever
            // the workflow's permissions say.
            let fork = if env
                .get("GITHUB_EVENT_NAME")
                .is_some_and(|e| e == "pull_request")
            {
                "; a pull request from a fork gets no token whatever the permissions: skip the step for forks \
                 (`if: github.event.pull_request.head.repo.full_name == github.repository`)"
            } else {
                ""
            };
            return Err(BadInput::other(format!(
                "input `role-to-assume` needs the job's OIDC token, but {} is not set: give the job `permissions: id-token: write` (and keep the permissions the run needs, e.g. `contents: read`){fork}",
                env_vars::ACTIONS_ID_TOKEN_REQUEST_URL
            )));
        }
        (None, _) => match var(env_vars::AWS_WEB_IDENTITY_TOKEN_FILE) {
            Some(file) => TokenSource::File(PathBuf::from(file)),
            None => {
                return Err(BadInput::other(format!(
                    "input `role-to-assume` needs a web identity token: outside GitHub Actions set {} to a file holding one, or drop `role-to-assume` to use your AWS profile",
                    env_vars::AWS_WEB_IDENTITY_TOKEN_FILE
                )));
            }
        },
    };
    Ok(Some(AssumeRole {
        role_arn: role_arn.to_string(),
        session_name,
        duration_seconds,
        audience,
        token,
    }))
}

/// `ignore-checks`, upper-cased; an id no check has is an error (a typo would
/// otherwise silence nothing, quietly).
fn check_ids(raw: &RawInputs) -> Result<Vec<String>, BadInput> {
    let known = inputs::CHECK_IDS;
    raw.list("ignore-checks")
        .into_iter()
        .map(|given| {
            let id = given.to_ascii_uppercase();
            if known.contains(&id.as_str()) {
                Ok(id)
            } else {
                // Quote the id as the user wrote it, so they find it.
                Err(BadInput::invalid(
                    "ignore-checks",
                    &given,
                    &format!("check ids: {}", known.join(", ")),
                ))
            }
        })
        .collect()
}

fn target_env<'a>(
    config: &'a Option<Config>,
    explicit: Option<&str>,
) -> Option<&'a config::EnvironmentConfig> {
    config.as_ref()?.environments.get(explicit?)
}

/// `codebuild-compute-type`: one of CodeBuild's on-demand compute types.
fn codebuild_compute_type(raw: &RawInputs) -> Result<Option<String>, BadInput> {
    let Some(v) = raw.get("codebuild-compute-type") else {
        return Ok(None);
    };
    use aws_sdk_codebuild::types::ComputeType;
    let known = ComputeType::values();
    // Fleets' own types are set on the fleet, not per build.
    let on_demand: Vec<&str> = known
        .iter()
        .copied()
        .filter(|t| t.starts_with("BUILD_"))
        .collect();
    let wanted = v.trim().to_ascii_uppercase();
    if on_demand.contains(&wanted.as_str()) {
        return Ok(Some(wanted));
    }
    Err(BadInput::invalid(
        "codebuild-compute-type",
        v,
        &on_demand.join(" | "),
    ))
}
