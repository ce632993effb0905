//! The plan: everything a run will do, computed before any side effect.
//!
//! `fastdeploy plan` (and `dry-run: true`) prints it; `fastdeploy run`
//! executes it. It is pure data: executors take it and talk to the outside.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::settings::config::Bundle;
use crate::settings::event::{RunContext, Target};
use crate::settings::{SlackOn, Strategy, WaitUntil};

/// Which builder runs the builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuilderKind {
    Buildx,
    Buildah,
    Codebuild,
}

impl BuilderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuilderKind::Buildx => "buildx",
            BuilderKind::Buildah => "buildah",
            BuilderKind::Codebuild => "codebuild",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuilderChoice {
    pub kind: BuilderKind,
    /// Why this builder: "builder input", "docker daemon with buildx answered", ...
    pub reason: String,
    /// Existing buildx builder to use (`buildx-builder` input).
    pub buildx_builder: Option<String>,
    /// BuildKit image of a builder fastdeploy creates (`buildkit-image`
    /// input; buildx's default, `moby/buildkit:buildx-stable-1`, when unset).
    pub buildkit_image: Option<String>,
    /// `builder: buildx`: the builder the builds run on, and why.
    pub buildx: Option<BuildxChoice>,
    /// CodeBuild project for remote builds.
    pub codebuild_project: Option<String>,
    pub codebuild_timeout_minutes: u32,
    pub provenance: bool,
}

/// The buildx builder of a run, decided from what the probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildxChoice {
    /// `--builder`; `None` runs on the current builder.
    pub builder: Option<String>,
    /// fastdeploy creates the builder (`docker-container` driver) unless it
    /// exists, before anything is built; components and later runs reuse it.
    pub create: bool,
    pub reason: String,
}

/// Where images go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryPlan {
    /// Host from the `registry` input; `None` means "from ECR's
    /// GetAuthorizationToken at run time".
    pub host: Option<String>,
    pub create_repositories: bool,
    /// Separate repository for cache refs (IMMUTABLE image repositories).
    pub cache_repository: Option<String>,
    /// Wait for the ECR scan and fail at or above this severity.
    pub fail_on_severity: Option<String>,
}

/// Registry cache refs, as tags in the component's (or the cache) repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CachePlan {
    /// Repository holding the cache tags.
    pub repository: String,
    /// Tags read, in order: this branch's, then the default branch's.
    pub from_tags: Vec<String>,
    /// Tag written; `None` on pull requests (never write cache from PRs).
    pub to_tag: Option<String>,
}

/// One component's build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildPlan {
    /// Absolute context directory.
    pub context: PathBuf,
    /// Absolute Dockerfile path.
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// ECR repository (lower-case).
    pub repository: String,
    /// Tags pushed: commit, environment, branch.
    pub tags: Vec<String>,
    /// OCI labels.
    pub labels: BTreeMap<String, String>,
    /// `None` when `cache: none`.
    pub cache: Option<CachePlan>,
    /// Whether the image is pushed (false on pull requests).
    pub push: bool,
    /// Build secrets (`RUN --mount=type=secret,id=<id>`): where each value
    /// comes from, never the value.
    pub secrets: Vec<BuildSecret>,
}

/// One build secret of a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSecret {
    pub id: String,
    pub source: crate::settings::SecretSource,
}

/// Where a component deploys: at most one target. Each kind has its own
/// module under `src/deploy/` exposing the same contract (preflight, deploy,
/// watch to a verdict, roll back); the executor matches on this.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetPlan {
    /// An ECS service.
    Ecs(EcsPlan),
    /// A Lambda function deployed from a container image, through an alias.
    Lambda(LambdaPlan),
    /// An Elastic Beanstalk environment on the Docker platform.
    Beanstalk(BeanstalkPlan),
}

impl TargetPlan {
    /// How long, how often and whether to roll back: the same for every target.
    pub fn watch(&self) -> &WatchPlan {
        match self {
            TargetPlan::Ecs(p) => &p.watch,
            TargetPlan::Lambda(p) => &p.watch,
            TargetPlan::Beanstalk(p) => &p.watch,
        }
    }

    /// The target as the reports name it.
    pub fn reference(&self) -> crate::outcome::TargetRef {
        use crate::outcome::TargetRef;
        match self {
            TargetPlan::Ecs(p) => TargetRef::Ecs {
                cluster: p.cluster.clone(),
                service: p.service.clone(),
            },
            TargetPlan::Lambda(p) => TargetRef::Lambda {
                function: p.function.clone(),
                alias: p.alias.clone(),
            },
            TargetPlan::Beanstalk(p) => TargetRef::Beanstalk {
                application: p.application.clone(),
                environment: p.environment.clone(),
            },
        }
    }

    /// The target in words, for plans and log lines.
    pub fn describe(&self) -> String {
        self.reference().describe()
    }
}

/// Following a deploy to its verdict, shared by every target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchPlan {
    /// The one deadline over the whole deploy (`wait-minutes`).
    pub wait_seconds: u64,
    /// Time between looks (`poll-seconds`, jittered).
    pub poll_seconds: f64,
    /// Roll back on timeout or cancellation.
    pub rollback: bool,
}

/// One component's deploy to an ECS service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcsPlan {
    pub cluster: String,
    pub service: String,
    /// Container names whose image is replaced; empty means "the task
    /// definition's only container".
    pub containers: Vec<String>,
    /// Task definition file to render instead of the service's current one.
    pub task_definition_file: Option<PathBuf>,
    pub strategy: Strategy,
    pub wait_until: WaitUntil,
    pub keep_revisions: Option<u64>,
    /// A one-off task run on the new revision before the service update.
    pub before_deploy: Option<BeforeDeploy>,
    pub watch: WatchPlan,
}

/// A one-off ECS task (database migrations) run on the revision fastdeploy
/// just registered, with the service's networking, before `UpdateService`.
/// It runs once per revision: a re-run finds it done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeforeDeploy {
    /// The command, as words (the container override's `command`).
    pub command: Vec<String>,
    /// Container to run it in; `None`: the one whose image is replaced.
    pub container: Option<String>,
    /// Its own deadline (`before-deploy-minutes`).
    pub wait_seconds: u64,
}

/// One component's deploy to a Lambda function (package type Image): update
/// the code by digest, publish a version, move the alias.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaPlan {
    /// Function name or ARN, unqualified.
    pub function: String,
    /// Alias moved to the published version (created on the first deploy).
    pub alias: String,
    pub watch: WatchPlan,
}

/// One component's deploy to an Elastic Beanstalk environment (Docker
/// platform): an application version (a `Dockerrun.aws.json` naming the
/// image by digest, or the build context), then `UpdateEnvironment`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeanstalkPlan {
    pub application: String,
    pub environment: String,
    pub bundle: Bundle,
    /// Health Yellow passes the verdict too (`allow-yellow`).
    pub allow_yellow: bool,
    /// Container ports for `Dockerrun.aws.json` from the config; empty: the
    /// Dockerfile's `EXPOSE`.
    pub ports: Vec<u16>,
    pub watch: WatchPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentPlan {
    pub name: String,
    pub build: BuildPlan,
    /// `None`: built and pushed only.
    pub deploy: Option<TargetPlan>,
    /// Why there is no deploy, in words (`plan` prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_deploy_reason: Option<String>,
}

/// Limits the checks enforce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    pub warn_context_bytes: u64,
    pub max_context_bytes: u64,
    pub max_image_bytes: Option<u64>,
    /// Dockerfile check ids silenced.
    pub ignore_checks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum SlackPlan {
    /// Post the result to an incoming webhook.
    Webhook { on: SlackOn },
    /// Post "deploying" at the start, update it with the result.
    Bot { channel: String, on: SlackOn },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GithubPlan {
    /// Create a Deployment with statuses (deploy runs with a token).
    pub deployments: bool,
    /// Pull request whose fastdeploy comment is created or updated.
    pub pr_comment: Option<u64>,
    pub environment_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notifications {
    pub slack: Option<SlackPlan>,
    pub github: Option<GithubPlan>,
    /// Whether a job summary is written ($GITHUB_STEP_SUMMARY is set).
    pub summary: bool,
}

/// Everything one run does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub context: RunContext,
    pub target: Target,
    pub aws_region: Option<String>,
    /// Where the region came from, for `plan`.
    pub aws_region_source: Option<String>,
    pub builder: BuilderChoice,
    pub registry: RegistryPlan,
    pub max_parallel: usize,
    pub limits: Limits,
    pub components: Vec<ComponentPlan>,
    pub notifications: Notifications,
}

impl Plan {
    pub fn environment(&self) -> Option<&str> {
        self.target.environment()
    }

    /// Human-readable rendering for `fastdeploy plan`.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fastdeploy plan for {} {} ({})",
            self.context.event,
            self.context.git_ref.as_deref().unwrap_or("-"),
            self.context.short_sha()
        );
        match &self.target {
            Target::Deploy {
                environment,
                reason,
            } => {
                let _ = writeln!(s, "  deploy to environment `{environment}` ({reason})");
            }
            Target::BuildOnly { push, reason } => {
                let _ = writeln!(
                    s,
                    "  build only{} ({reason})",
                    if *push { " and push" } else { ", no push" }
                );
            }
        }
        let _ = writeln!(
            s,
            "  builder: {} ({})",
            self.builder.kind.as_str(),
            self.builder.reason
        );
        if let Some(b) = &self.builder.buildx {
            let name = b
                .builder
                .as_deref()
                .map_or_else(|| "the current builder".to_string(), |n| format!("`{n}`"));
            let _ = writeln!(
                s,
                "  buildx builder: {name}{} ({})",
                if b.create {
                    ", created unless it exists"
                } else {
                    ""
                },
                b.reason
            );
        }
        let registry = self
            .registry
            .host
            .clone()
            .unwrap_or_else(|| "<ECR registry from GetAuthorizationToken>".into());
        let _ = writeln!(s, "  registry: {registry}");
        let _ = match (&self.aws_region, &self.aws_region_source) {
            (Some(r), Some(source)) => writeln!(s, "  region: {r} (from {source})"),
            (Some(r), None) => writeln!(s, "  region: {r}"),
            _ => writeln!(
                s,
                "  region: none set (no `aws-region` input, AWS_REGION or AWS_DEFAULT_REGION); only an AWS profile's region can save the run"
            ),
        };
        for c in &self.components {
            let b = &c.build;
            let _ = writeln!(s, "  component {}:", c.name);
            let _ = writeln!(
                s,
                "    context {} dockerfile {}{}",
                b.context.display(),
                b.dockerfile.display(),
                b.target
                    .as_deref()
                    .map(|t| format!(" target {t}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "    image {registry}/{} tags {}",
                b.repository,
                b.tags.join(", ")
            );
            if !b.secrets.is_empty() {
                use crate::settings::SecretSource;
                let list: Vec<String> = b
                    .secrets
                    .iter()
                    .map(|x| match &x.source {
                        SecretSource::Env(v) => format!("{} (from ${v})", x.id),
                        SecretSource::File(p) => format!("{} (file {p})", x.id),
                        SecretSource::ParameterStore(p) => {
                            format!("{} (Parameter Store {p})", x.id)
                        }
                        SecretSource::SecretsManager(p) => {
                            format!("{} (Secrets Manager {p})", x.id)
                        }
                    })
                    .collect();
                let _ = writeln!(s, "    build secrets: {}", list.join(", "));
            }
            if let Some(cache) = &b.cache {
                let _ = if self.builder.kind == BuilderKind::Buildah {
                    // buildah names its cache entries by layer, in a repository of their own.
                    writeln!(
                        s,
                        "    cache in {registry}/{} (read{})",
                        cache.repository,
                        if cache.to_tag.is_some() {
                            " and written"
                        } else {
                            " only"
                        }
                    )
                } else {
                    writeln!(
                        s,
                        "    cache from {} to {}",
                        cache
                            .from_tags
                            .iter()
                            .map(|t| format!("{}:{t}", cache.repository))
                            .collect::<Vec<_>>()
                            .join(", "),
                        cache
                            .to_tag
                            .as_deref()
                            .map(|t| format!("{}:{t}", cache.repository))
                            .unwrap_or_else(|| "(not written)".into())
                    )
                };
            }
            match &c.deploy {
                Some(TargetPlan::Ecs(d)) => {
                    let _ = writeln!(
                        s,
                        "    deploy ECS service {} in cluster {} (strategy {}, wait {}s, rollback {})",
                        d.service,
                        d.cluster,
                        d.strategy.as_str(),
                        d.watch.wait_seconds,
                        d.watch.rollback
                    );
                    let doctor: Vec<&str> = crate::settings::inputs::CHECK_IDS
                        .iter()
                        .copied()
                        .filter(|id| {
                            id.starts_with("DEP")
                                && !self.limits.ignore_checks.iter().any(|i| i == id)
                        })
                        .collect();
                    let _ = writeln!(
                        s,
                        "    deploy-time doctor before the rollout: checks {}; the target groups, percents, stop timeouts and desired count it reads live in AWS, so the plan cannot estimate the rollout",
                        if doctor.is_empty() {
                            "none (all silenced)".to_string()
                        } else {
                            doctor.join(", ")
                        }
                    );
                    if let Some(b) = &d.before_deploy {
                        let _ = writeln!(
                            s,
                            "    before the update: run `{}` once on the new revision in container {} (up to {}s)",
                            shell_words::join(&b.command),
                            b.container
                                .as_deref()
                                .unwrap_or("the one whose image is replaced"),
                            b.wait_seconds
                        );
                    }
                }
                Some(TargetPlan::Lambda(d)) => {
                    let _ = writeln!(
                        s,
                        "    deploy Lambda function {} through alias {} (wait {}s, rollback {}); platform from the function's architecture, no attestations",
                        d.function, d.alias, d.watch.wait_seconds, d.watch.rollback
                    );
                }
                Some(TargetPlan::Beanstalk(d)) => {
                    let bundle = match d.bundle {
                        Bundle::Image => "a Dockerrun.aws.json naming the image by digest",
                        Bundle::Source => "the build context, built on each instance",
                    };
                    let _ = writeln!(
                        s,
                        "    deploy Elastic Beanstalk environment {} of application {}: bundle {} ({bundle}), health Green{} (wait {}s, rollback {})",
                        d.environment,
                        d.application,
                        d.bundle.as_str(),
                        if d.allow_yellow { " or Yellow" } else { "" },
                        d.watch.wait_seconds,
                        d.watch.rollback
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "    no deploy ({})",
                        c.no_deploy_reason.as_deref().unwrap_or("build only")
                    );
                }
            }
        }
        let n = &self.notifications;
        let slack = match &n.slack {
            Some(SlackPlan::Webhook { on }) => format!("webhook (on {})", on.as_str()),
            Some(SlackPlan::Bot { channel, on }) => {
                format!("bot to {channel} (on {})", on.as_str())
            }
            None => "off".into(),
        };
        let _ = writeln!(
            s,
            "  notify: slack {slack}; github {}; summary {}",
            if n.github.is_some() { "on" } else { "off" },
            if n.summary { "on" } else { "off" }
        );
        s
    }
}

// ---------------------------------------------------------------------------
// Building the plan from settings.

use crate::error::BadInput;
use crate::settings::{BuilderInput, Settings};

/// What is installed, probed at the edge (a side-effect-free look) and passed
/// in so planning stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderProbe {
    /// `docker buildx version` and `docker version` answered.
    pub docker_buildx: bool,
    /// `buildah --version` answered.
    pub buildah: bool,
    /// What docker said, when it was asked (`builder: auto` or `buildx`).
    pub docker: Option<DockerProbe>,
}

/// What the docker CLI said about its daemon and buildx builders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerProbe {
    /// The daemon's address (`DOCKER_HOST`, else the docker context's).
    pub endpoint: String,
    /// Why buildx cannot build here, in docker's words (no daemon answers,
    /// no buildx plugin); `None` when it can.
    pub unavailable: Option<String>,
    /// The current builder (`docker buildx inspect`).
    pub current: Option<BuildxBuilder>,
    /// The `buildx-builder` input's builder: buildx's answer when it has
    /// none by that name.
    pub named: Option<Result<BuildxBuilder, String>>,
}

/// A buildx builder as `docker buildx inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildxBuilder {
    pub name: String,
    /// `docker`, `docker-container`, `remote`, `kubernetes`.
    pub driver: String,
    /// Its BuildKit worker names a snapshotter
    /// (`org.mobyproject.buildkit.worker.snapshotter`): on the `docker`
    /// driver, a daemon with the containerd image store. buildx reads the same
    /// label to decide that the `docker` driver exports cache and builds
    /// several platforms.
    pub snapshotter: bool,
}

impl BuildxBuilder {
    /// Whether it exports registry cache and builds several platforms.
    pub fn exports_cache(&self) -> bool {
        self.driver != "docker" || self.snapshotter
    }

    fn describe(&self) -> String {
        match self.driver.as_str() {
            "docker" if self.snapshotter => format!(
                "`{}` (docker driver on the containerd image store)",
                self.name
            ),
            "docker" => format!(
                "`{}` (docker driver without the containerd image store)",
                self.name
            ),
            driver => format!("`{}` ({driver} driver)", self.name),
        }
    }
}

/// The builder fastdeploy creates when the current one cannot do the job,
/// one per BuildKit image so a changed `buildkit-image` never reuses a
/// builder of another image.
pub fn created_buildx_builder(buildkit_image: Option<&str>) -> String {
    use sha2::Digest;
    match buildkit_image {
        None => "fastdeploy".to_string(),
        Some(image) => format!(
            "fastdeploy-{}",
            &hex::encode(sha2::Sha256::digest(image.as_bytes()))[..12]
        ),
    }
}

/// buildx's own choice of image for a `docker-container` builder.
pub const DEFAULT_BUILDKIT_IMAGE: &str = "moby/buildkit:buildx-stable-1";

/// Name of the component in single-component use (no config components).
pub const SINGLE_COMPONENT: &str = "app";

/// Builds the plan. Pure: reads only `settings` and `probe`.
pub fn build(settings: &Settings, probe: &BuilderProbe) -> Result<Plan, BadInput> {
    let ctx = &settings.context;
    let mut builder = choose_builder(settings, probe)?;
    let env_cfg = settings.environment_config();
    let push = settings.target.pushes();

    let config_components = settings
        .config
        .as_ref()
        .map(|c| &c.components)
        .filter(|c| !c.is_empty());
    let mut components = Vec::new();
    match config_components {
        Some(all) => {
            let selected: Vec<&String> = if settings.components.is_empty() {
                all.keys().collect()
            } else {
                settings.components.iter().collect()
            };
            let single = selected.len() == 1;
            if !single {
                for name in [
                    "context",
                    "dockerfile",
                    "repository",
                    "service",
                    "container",
                    "task-definition",
                    "function",
                    "alias",
                    "before-deploy",
                    "before-deploy-container",
                    "beanstalk-application",
                    "beanstalk-environment",
                    "bundle",
                    "allow-yellow",
                ] {
                    if settings.raw.get(name).is_some() {
                        return Err(BadInput::invalid(
                            name,
                            settings.raw.get(name).unwrap_or_default(),
                            "a value only when one component is selected; set it per component in the config instead",
                        ));
                    }
                }
            }
            for name in selected {
                let c = &all[name];
                components.push(component(
                    settings,
                    builder.kind,
                    name,
                    Some(c),
                    env_cfg,
                    single,
                    push,
                )?);
            }
        }
        None => {
            let name = settings
                .components
                .first()
                .map(String::as_str)
                .unwrap_or(SINGLE_COMPONENT);
            components.push(component(
                settings,
                builder.kind,
                name,
                None,
                env_cfg,
                true,
                push,
            )?);
        }
    }

    if builder.kind == BuilderKind::Buildx {
        builder.buildx = Some(choose_buildx(settings, probe, &components)?);
    }

    let github = settings.github_token.is_some().then(|| GithubPlan {
        deployments: settings.target.environment().is_some()
            && components.iter().any(|c| c.deploy.is_some()),
        pr_comment: ctx.pull_request,
        environment_url: settings
            .environment_url
            .clone()
            .or_else(|| env_cfg.and_then(|e| e.url.clone())),
    });
    let slack = match (
        &settings.slack_bot_token,
        settings.slack_channel.as_deref(),
        &settings.slack_webhook_url,
    ) {
        (Some(_), Some(channel), _) => Some(SlackPlan::Bot {
            channel: channel.to_string(),
            on: settings.slack_on.clone(),
        }),
        (_, _, Some(_)) => Some(SlackPlan::Webhook {
            on: settings.slack_on.clone(),
        }),
        (Some(_), None, None) => {
            return Err(BadInput::Missing {
                name: "slack-channel".into(),
                why: "with `slack-bot-token`: name the channel to post to (e.g. #deploys)".into(),
            });
        }
        _ => None,
    };

    Ok(Plan {
        context: ctx.clone(),
        target: settings.target.clone(),
        aws_region: settings.aws_region.clone(),
        aws_region_source: settings.aws_region_source.clone(),
        builder,
        registry: RegistryPlan {
            host: settings.registry.clone(),
            create_repositories: settings.create_repository,
            cache_repository: settings.cache_repository.clone(),
            fail_on_severity: settings.fail_on_severity.clone(),
        },
        max_parallel: settings.max_parallel,
        limits: Limits {
            warn_context_bytes: crate::units::megabytes(settings.warn_context_mb),
            max_context_bytes: crate::units::megabytes(settings.max_context_mb),
            max_image_bytes: settings.max_image_mb.map(crate::units::megabytes),
            ignore_checks: settings.ignore_checks.clone(),
        },
        components,
        notifications: Notifications {
            slack,
            github,
            summary: settings.summary_file.is_some(),
        },
    })
}

fn choose_builder(settings: &Settings, probe: &BuilderProbe) -> Result<BuilderChoice, BadInput> {
    let (kind, reason) = match settings.builder {
        BuilderInput::Buildx => (BuilderKind::Buildx, settings.builder_source.clone()),
        BuilderInput::Buildah => (BuilderKind::Buildah, settings.builder_source.clone()),
        BuilderInput::Codebuild => (BuilderKind::Codebuild, settings.builder_source.clone()),
        BuilderInput::Auto => {
            if probe.docker_buildx {
                (
                    BuilderKind::Buildx,
                    "auto: a docker daemon with buildx answered".to_string(),
                )
            } else if probe.buildah {
                (
                    BuilderKind::Buildah,
                    "auto: no docker daemon answered; buildah is installed".to_string(),
                )
            } else if settings.codebuild_project.is_some() {
                (
                    BuilderKind::Codebuild,
                    "auto: no docker daemon and no buildah here; a CodeBuild project is configured"
                        .to_string(),
                )
            } else {
                return Err(BadInput::other(
                    "no builder is available: no docker daemon with buildx answered, buildah is not installed and no `codebuild-project` is set; \
                     install docker with buildx (https://docs.docker.com/build/), or buildah (apt-get install buildah), or set `codebuild-project`",
                ));
            }
        }
    };
    if kind == BuilderKind::Codebuild && settings.codebuild_project.is_none() {
        return Err(BadInput::Missing {
            name: "codebuild-project".into(),
            why: format!(
                "to build on CodeBuild ({reason}); name the project, or choose another builder"
            ),
        });
    }
    if kind == BuilderKind::Buildx
        && let Some(unavailable) = probe.docker.as_ref().and_then(|d| d.unavailable.as_ref())
    {
        return Err(BadInput::other(format!(
            "`builder: buildx` ({reason}) cannot build here: {unavailable}; start a docker daemon with the buildx plugin, point DOCKER_HOST at one, or choose `builder: buildah` or `codebuild`"
        )));
    }
    Ok(BuilderChoice {
        kind,
        reason,
        buildx_builder: settings.buildx_builder.clone(),
        buildkit_image: settings.buildkit_image.clone(),
        buildx: None,
        codebuild_project: settings.codebuild_project.clone(),
        codebuild_timeout_minutes: settings.codebuild_timeout_minutes,
        provenance: settings.provenance,
    })
}

/// The buildx builder: the `buildx-builder` input's; else the current one
/// when its driver does what the builds ask (export registry cache, build
/// several platforms), which costs nothing and pulls nothing; else a
/// `docker-container` builder fastdeploy creates once and reuses.
fn choose_buildx(
    settings: &Settings,
    probe: &BuilderProbe,
    components: &[ComponentPlan],
) -> Result<BuildxChoice, BadInput> {
    let exports_cache = components.iter().any(|c| {
        c.build
            .cache
            .as_ref()
            .is_some_and(|cache| cache.to_tag.is_some())
    });
    let platforms = components.iter().any(|c| c.build.platforms.len() > 1);
    let needs = match (exports_cache, platforms) {
        (true, true) => "registry cache export and several platforms",
        (true, false) => "registry cache export",
        (false, true) => "several platforms",
        (false, false) => "",
    };
    let docker = probe.docker.as_ref();
    if let Some(name) = &settings.buildx_builder {
        let builder = match docker.and_then(|d| d.named.clone()) {
            Some(Err(said)) => {
                return Err(BadInput::other(format!(
                    "input `buildx-builder` names `{name}`, but docker has no builder by that name ({said}); create it first (docker buildx create --name {name} ...) or remove the input to let fastdeploy choose"
                )));
            }
            Some(Ok(b)) => b,
            None => {
                return Ok(BuildxChoice {
                    builder: Some(name.clone()),
                    create: false,
                    reason: "the `buildx-builder` input".into(),
                });
            }
        };
        if !needs.is_empty() && !builder.exports_cache() {
            return Err(BadInput::other(format!(
                "input `buildx-builder` names {}, which cannot do {needs}; name a builder of the docker-container, remote or kubernetes driver, or remove the input to let fastdeploy choose",
                builder.describe()
            )));
        }
        return Ok(BuildxChoice {
            builder: Some(name.clone()),
            create: false,
            reason: format!("the `buildx-builder` input: {}", builder.describe()),
        });
    }
    let current = docker.and_then(|d| d.current.as_ref());
    match current {
        Some(b) if needs.is_empty() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: format!(
                "the current builder {}: the builds need nothing more",
                b.describe()
            ),
        }),
        Some(b) if b.exports_cache() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: format!("the current builder {} does {needs}", b.describe()),
        }),
        None if needs.is_empty() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: "the current builder".into(),
        }),
        _ => {
            let image = settings.buildkit_image.as_deref();
            let why = match current {
                Some(b) => format!("the current builder {} cannot do {needs}", b.describe()),
                None => format!("the builds need {needs} and the current builder is unknown"),
            };
            let from = match image {
                Some(i) => format!("{i} (the `buildkit-image` input)"),
                None => format!(
                    "{DEFAULT_BUILDKIT_IMAGE} (set `buildkit-image` to a mirror where Docker Hub is out of reach)"
                ),
            };
            Ok(BuildxChoice {
                builder: Some(created_buildx_builder(image)),
                create: true,
                reason: format!(
                    "{why}: a docker-container builder from {from}, created once and reused"
                ),
            })
        }
    }
}

fn component(
    settings: &Settings,
    builder_kind: BuilderKind,
    name: &str,
    cfg: Option<&crate::settings::config::ComponentConfig>,
    env_cfg: Option<&crate::settings::config::EnvironmentConfig>,
    single: bool,
    push: bool,
) -> Result<ComponentPlan, BadInput> {
    let ctx = &settings.context;
    let raw = &settings.raw;
    let ws = &ctx.workspace;
    let over = env_cfg.and_then(|e| e.overrides.get(name));
    let input = |n: &str| {
        if single {
            raw.get(n).map(str::to_string)
        } else {
            None
        }
    };

    let from_input = input("context");
    let context_rel = from_input
        .clone()
        .or_else(|| cfg.and_then(|c| c.context.clone()))
        .unwrap_or_else(|| ".".into());
    let context = normalize(&ws.join(&context_rel));
    if !context.starts_with(normalize(ws)) {
        return Err(match (&from_input, &settings.config_path) {
            (None, Some(path)) => BadInput::Config {
                path: path.clone(),
                message: format!(
                    "`components.{name}.context` is {context_rel:?}, outside the workspace; use a directory inside the repository"
                ),
            },
            _ => BadInput::invalid("context", &context_rel, "a directory inside the workspace"),
        });
    }
    let dockerfile = match input("dockerfile").or_else(|| cfg.and_then(|c| c.dockerfile.clone())) {
        Some(d) => normalize(&ws.join(d)),
        None => context.join("Dockerfile"),
    };
    let target = raw
        .get("target")
        .map(str::to_string)
        .or_else(|| over.and_then(|o| o.target.clone()))
        .or_else(|| cfg.and_then(|c| c.target.clone()));

    let mut build_args = cfg.map(|c| c.build_args.clone()).unwrap_or_default();
    if let Some(o) = over {
        build_args.extend(o.build_args.clone());
    }
    if let Some(lines) = raw.get("build-args") {
        for line in lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| BadInput::invalid("build-args", line, "one KEY=VALUE per line"))?;
            if k.trim().is_empty() {
                return Err(BadInput::invalid(
                    "build-args",
                    line,
                    "one KEY=VALUE per line",
                ));
            }
            build_args.insert(k.trim().to_string(), v.to_string());
        }
    }

    let secrets = build_secrets(settings, builder_kind, name, cfg, &input)?;

    let platforms = match raw.get("platforms") {
        Some(_) => raw.list("platforms"),
        None => cfg
            .and_then(|c| c.platforms.clone())
            .or_else(|| {
                settings
                    .config
                    .as_ref()
                    .and_then(|c| c.defaults.platforms.clone())
            })
            .unwrap_or_default(),
    };
    for p in &platforms {
        if !p.starts_with("linux/") && !p.starts_with("windows/") {
            return Err(BadInput::invalid(
                "platforms",
                p,
                "platforms such as linux/amd64,linux/arm64",
            ));
        }
    }

    let repo_default = || {
        let base = ctx
            .repository
            .as_deref()
            .and_then(|r| r.rsplit('/').next())
            .map(str::to_string)
            .or_else(|| ws.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_else(|| "app".into())
            .to_ascii_lowercase();
        if cfg.is_some() {
            format!("{base}/{name}")
        } else {
            base
        }
    };
    let given = input("repository").or_else(|| cfg.and_then(|c| c.repository.clone()));
    let repository = match &given {
        Some(r) => r.to_ascii_lowercase(),
        None => sanitize_repository(&repo_default()),
    };
    crate::settings::config::check_repository(&repository).map_err(|m| {
        let source = if given.is_some() {
            ""
        } else {
            " (derived from the repository or directory name; set the `repository` input)"
        };
        BadInput::other(format!("repository for component `{name}`: {m}{source}"))
    })?;

    let mut tags = vec![commit_tag(&ctx.commit.sha)];
    if let Some(env) = settings.target.environment() {
        tags.push(sanitize_tag(env));
    }
    if let Some(branch) = &ctx.branch
        && !ctx.is_pull_request()
    {
        let t = sanitize_tag(branch);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }

    let mut labels = BTreeMap::new();
    if let Some(repo) = &ctx.repository {
        labels.insert(
            "org.opencontainers.image.source".to_string(),
            format!("{}/{repo}", ctx.server_url),
        );
    }
    labels.insert(
        "org.opencontainers.image.revision".to_string(),
        ctx.commit.sha.clone(),
    );
    labels.insert(
        "org.opencontainers.image.created".to_string(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    labels.insert("dev.fastdeploy.component".to_string(), name.to_string());

    let cache = settings.cache.then(|| {
        let branch = ctx.branch.as_deref().unwrap_or("local");
        let default_branch = ctx.default_branch.as_deref().unwrap_or("main");
        let mut from_tags = vec![cache_tag(branch)];
        if cache_tag(default_branch) != from_tags[0] {
            from_tags.push(cache_tag(default_branch));
        }
        CachePlan {
            repository: settings
                .cache_repository
                .clone()
                .unwrap_or_else(|| default_cache_repository(&repository, builder_kind)),
            to_tag: (push && !ctx.is_pull_request()).then(|| cache_tag(branch)),
            from_tags,
        }
    });

    let (deploy, no_deploy_reason) = deploy_target(settings, name, cfg, env_cfg, over, &input)?;
    Ok(ComponentPlan {
        name: name.to_string(),
        build: BuildPlan {
            context,
            dockerfile,
            target,
            build_args,
            platforms,
            repository,
            tags,
            labels,
            cache,
            push,
            secrets,
        },
        deploy,
        no_deploy_reason,
    })
}

/// The component's build secrets (the input for a single component, else the
/// config's), each from a source the chosen builder can read: the step's
/// environment or workspace locally, Parameter Store or Secrets Manager on
/// CodeBuild. Settings checked that variables are set and files exist.
fn build_secrets(
    settings: &Settings,
    builder: BuilderKind,
    name: &str,
    cfg: Option<&crate::settings::config::ComponentConfig>,
    input: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<BuildSecret>, BadInput> {
    use crate::settings::SecretSource;
    let (lines, source): (Vec<String>, String) = match input("build-secrets") {
        Some(v) => (
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
            "input `build-secrets`".into(),
        ),
        None => (
            cfg.map(|c| c.build_secrets.clone()).unwrap_or_default(),
            format!("`components.{name}.build-secrets` in the config"),
        ),
    };
    let mut secrets = Vec::new();
    for line in lines {
        let (id, from) = crate::settings::parse_build_secret(&line).map_err(|accepted| {
            BadInput::other(format!("{source} has {line:?}, but it accepts {accepted}"))
        })?;
        let remote = builder == BuilderKind::Codebuild;
        let from = match from {
            SecretSource::Env(_) | SecretSource::File(_) if remote => {
                return Err(BadInput::other(format!(
                    "{source}: build secret `{id}` comes from the runner ({line}), which CodeBuild cannot read; store it in Parameter Store or Secrets Manager and write `{id}=ssm:/path` or `{id}=secretsmanager:name`"
                )));
            }
            SecretSource::ParameterStore(_) | SecretSource::SecretsManager(_) if !remote => {
                return Err(BadInput::other(format!(
                    "{source}: build secret `{id}` comes from {line}, which only CodeBuild resolves; with builder {} use `{id}=ENV_VAR` or `{id}=file:PATH`",
                    builder.as_str()
                )));
            }
            SecretSource::File(path) => SecretSource::File(
                normalize(&settings.context.workspace.join(path))
                    .display()
                    .to_string(),
            ),
            other => other,
        };
        if secrets.iter().any(|s: &BuildSecret| s.id == id) {
            return Err(BadInput::other(format!(
                "{source} names build secret `{id}` twice; keep one line per id"
            )));
        }
        secrets.push(BuildSecret { id, source: from });
    }
    Ok(secrets)
}

/// The component's deploy target in this run, or why it has none. A
/// component names at most one target (`service` or `function`).
fn deploy_target(
    settings: &Settings,
    name: &str,
    cfg: Option<&crate::settings::config::ComponentConfig>,
    env_cfg: Option<&crate::settings::config::EnvironmentConfig>,
    over: Option<&crate::settings::config::ComponentOverride>,
    input: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<TargetPlan>, Option<String>), BadInput> {
    let raw = &settings.raw;
    let ws = &settings.context.workspace;
    let service = input("service")
        .or_else(|| over.and_then(|o| o.service.clone()))
        .or_else(|| cfg.and_then(|c| c.service.clone()));
    let env_key = settings
        .target
        .environment()
        .map(|e| format!("environments.{e}.overrides.{name}"))
        .unwrap_or_default();
    // Each value with where it came from, so an error names what to edit.
    let sourced = |key: &str, from_override: Option<String>, from_component: Option<String>| {
        input(key)
            .map(|v| (v, format!("input `{key}`")))
            .or_else(|| from_override.map(|v| (v, format!("`{env_key}.{key}` in the config"))))
            .or_else(|| {
                from_component.map(|v| (v, format!("`components.{name}.{key}` in the config")))
            })
    };
    let function = sourced(
        "function",
        over.and_then(|o| o.function.clone()),
        cfg.and_then(|c| c.function.clone()),
    );
    if let (Some(service), Some((function, _))) = (&service, &function) {
        return Err(BadInput::other(format!(
            "component `{name}` names two deploy targets, ECS service `{service}` and Lambda function `{function}`; \
             a component deploys to one: keep `service` or `function`, or split it into two components"
        )));
    }
    let beanstalk_env = sourced(
        "beanstalk-environment",
        over.and_then(|o| o.beanstalk_environment.clone()),
        cfg.and_then(|c| c.beanstalk_environment.clone()),
    );
    if let Some((environment, _)) = &beanstalk_env {
        let other = match (&service, &function) {
            (Some(s), _) => Some(format!("ECS service `{s}`")),
            (None, Some((f, _))) => Some(format!("Lambda function `{f}`")),
            (None, None) => None,
        };
        if let Some(other) = other {
            return Err(BadInput::other(format!(
                "component `{name}` names two deploy targets, {other} and Elastic Beanstalk environment `{environment}`; \
                 a component deploys to one: keep one, or split it into two components"
            )));
        }
    }
    let alias = sourced(
        "alias",
        over.and_then(|o| o.alias.clone()),
        cfg.and_then(|c| c.alias.clone()),
    );
    if let Some((function, source)) = &function {
        check_function_name(function).map_err(|m| {
            BadInput::other(format!("{source} is {function:?}, but it accepts {m}"))
        })?;
        if let Some((alias, source)) = &alias {
            check_alias_name(alias).map_err(|m| {
                BadInput::other(format!("{source} is {alias:?}, but it accepts {m}"))
            })?;
        }
    }
    let function = function.map(|(f, _)| f);
    let alias = alias
        .map(|(a, _)| a)
        .unwrap_or_else(|| DEFAULT_ALIAS.to_string());
    let before_deploy = before_deploy(settings, name, cfg, over, input)?;
    if let Some((_, source)) = &before_deploy
        && (function.is_some() || service.is_none())
    {
        let target = match &function {
            Some(f) => format!("it deploys to Lambda function `{f}`"),
            None => "it names no ECS `service`".to_string(),
        };
        return Err(BadInput::other(format!(
            "{source} is set for component `{name}`, but {target}: `before-deploy` runs a one-off ECS task on the new revision \
             before the service update; remove it, or run the command in the image's own start-up"
        )));
    }
    let before_deploy = before_deploy.map(|(b, _)| b);
    let Some(env_name) = settings.target.environment() else {
        return Ok((
            None,
            Some(format!("build only: {}", settings.target.reason())),
        ));
    };
    let deploys_here = env_cfg
        .and_then(|e| e.components.as_ref())
        .is_none_or(|list| list.iter().any(|c| c == name));
    if !deploys_here {
        return Ok((
            None,
            Some(format!("not in `environments.{env_name}.components`")),
        ));
    }
    let watch = WatchPlan {
        wait_seconds: settings.wait_minutes * 60,
        poll_seconds: settings.poll_seconds,
        rollback: settings.rollback,
    };
    if let Some(function) = function {
        return Ok((
            Some(TargetPlan::Lambda(LambdaPlan {
                function,
                alias,
                watch,
            })),
            None,
        ));
    }
    let application = sourced(
        "beanstalk-application",
        over.and_then(|o| o.beanstalk_application.clone()),
        cfg.and_then(|c| c.beanstalk_application.clone()),
    );
    match (beanstalk_env, application) {
        (Some((environment, _)), Some((application, _))) => {
            let bundle = match input("bundle") {
                Some(_) => match raw.choice("bundle", &["image", "source"])? {
                    Some("source") => Bundle::Source,
                    _ => Bundle::Image,
                },
                None => over
                    .and_then(|o| o.bundle)
                    .or_else(|| cfg.and_then(|c| c.bundle))
                    .unwrap_or_default(),
            };
            let allow_yellow = match input("allow-yellow") {
                Some(_) => raw.bool("allow-yellow")?,
                None => over
                    .and_then(|o| o.allow_yellow)
                    .or_else(|| cfg.and_then(|c| c.allow_yellow))
                    .unwrap_or(false),
            };
            let ports = over
                .and_then(|o| o.ports.clone())
                .or_else(|| cfg.and_then(|c| c.ports.clone()))
                .unwrap_or_default();
            if let Some(p) = ports.iter().find(|p| **p == 0) {
                return Err(BadInput::other(format!(
                    "`ports` of component `{name}` holds {p}; give the container ports the image listens on (1-65535)"
                )));
            }
            return Ok((
                Some(TargetPlan::Beanstalk(BeanstalkPlan {
                    application,
                    environment,
                    bundle,
                    allow_yellow,
                    ports,
                    watch,
                })),
                None,
            ));
        }
        (Some((environment, source)), None) => {
            return Err(BadInput::Missing {
                name: "beanstalk-application".into(),
                why: format!(
                    "to deploy component `{name}` to Elastic Beanstalk environment `{environment}` ({source}); \
                     name the environment's application: the `beanstalk-application` input, or `beanstalk-application` for the component in the config"
                ),
            });
        }
        (None, Some((application, source))) if service.is_none() => {
            return Err(BadInput::Missing {
                name: "beanstalk-environment".into(),
                why: format!(
                    "to deploy component `{name}` to Elastic Beanstalk application `{application}` ({source}) in `{env_name}`; \
                     name the environment (input `beanstalk-environment`, or `beanstalk-environment` under the component or `environments.{env_name}.overrides.{name}` in the config)"
                ),
            });
        }
        _ => {}
    }
    let Some(service) = service else {
        return Ok((
            None,
            Some(
                "no `service`, `function` or `beanstalk-environment` given: built and pushed only"
                    .to_string(),
            ),
        ));
    };
    let cluster = raw
        .get("cluster")
        .map(str::to_string)
        .or_else(|| over.and_then(|o| o.cluster.clone()))
        .or_else(|| env_cfg.and_then(|e| e.cluster.clone()))
        .or_else(|| settings.config.as_ref().and_then(|c| c.defaults.cluster.clone()))
        .ok_or_else(|| BadInput::Missing {
            name: "cluster".into(),
            why: format!(
                "to deploy component `{name}` to service `{service}` in `{env_name}`; set the `cluster` input or `environments.{env_name}.cluster` in the config"
            ),
        })?;
    let containers = match input("container") {
        Some(_) => raw.list("container"),
        None => over
            .and_then(|o| o.container.clone())
            .or_else(|| cfg.and_then(|c| c.container.clone()))
            .unwrap_or_default(),
    };
    let task_definition_file = input("task-definition")
        .or_else(|| over.and_then(|o| o.task_definition.clone()))
        .or_else(|| cfg.and_then(|c| c.task_definition.clone()))
        .map(|p| normalize(&ws.join(p)));
    Ok((
        Some(TargetPlan::Ecs(EcsPlan {
            cluster,
            service,
            containers,
            task_definition_file,
            strategy: settings.strategy,
            wait_until: settings.wait_until,
            keep_revisions: settings.keep_revisions,
            before_deploy,
            watch,
        })),
        None,
    ))
}

/// `before-deploy` and its settings, with where the command came from.
fn before_deploy(
    settings: &Settings,
    name: &str,
    cfg: Option<&crate::settings::config::ComponentConfig>,
    over: Option<&crate::settings::config::ComponentOverride>,
    input: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(BeforeDeploy, String)>, BadInput> {
    use crate::settings::config::CommandLine;
    let env_key = settings
        .target
        .environment()
        .map(|e| format!("environments.{e}.overrides.{name}"))
        .unwrap_or_default();
    let command = input("before-deploy")
        .map(|v| (CommandLine::Line(v), "input `before-deploy`".to_string()))
        .or_else(|| {
            over.and_then(|o| o.before_deploy.clone())
                .map(|c| (c, format!("`{env_key}.before-deploy` in the config")))
        })
        .or_else(|| {
            cfg.and_then(|c| c.before_deploy.clone()).map(|c| {
                (
                    c,
                    format!("`components.{name}.before-deploy` in the config"),
                )
            })
        });
    let Some((command, source)) = command else {
        return Ok(None);
    };
    let words = match &command {
        CommandLine::Line(line) => shell_words::split(line).map_err(|e| {
            BadInput::other(format!("{source} is {line:?}, which cannot be split into words as a shell would ({e}); close the quote"))
        })?,
        CommandLine::Words(words) => words.clone(),
    };
    if words.is_empty() || words.iter().all(|w| w.trim().is_empty()) {
        return Err(BadInput::other(format!(
            "{source} is empty; give the command to run before the deploy (e.g. `python manage.py migrate`) or remove it"
        )));
    }
    let container = input("before-deploy-container")
        .or_else(|| over.and_then(|o| o.before_deploy_container.clone()))
        .or_else(|| cfg.and_then(|c| c.before_deploy_container.clone()));
    let minutes = match (
        input("before-deploy-minutes"),
        over.and_then(|o| o.before_deploy_minutes)
            .or(cfg.and_then(|c| c.before_deploy_minutes)),
    ) {
        (Some(_), _) | (None, None) => settings
            .raw
            .u64_in("before-deploy-minutes", 1..=360)?
            .unwrap_or(30),
        (None, Some(m)) if (1..=360).contains(&m) => m,
        (None, Some(m)) => {
            return Err(BadInput::other(format!(
                "`before-deploy-minutes` of component `{name}` in the config is {m}, but it accepts a whole number from 1 to 360"
            )));
        }
    };
    Ok(Some((
        BeforeDeploy {
            command: words,
            container,
            wait_seconds: minutes * 60,
        },
        source,
    )))
}

/// The alias a Lambda deploy moves when none is given.
pub const DEFAULT_ALIAS: &str = "live";

/// A function name, partial ARN or ARN, unqualified (Lambda's `FunctionName`
/// pattern without the `:version` or `:alias` suffix: the alias is ours to
/// move). The error says what is accepted.
pub fn check_function_name(function: &str) -> Result<(), String> {
    let re =
        regex::Regex::new(r"^(arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:function:|\d{12}:function:)?[a-zA-Z0-9_-]{1,64}$")
            .expect("static regex");
    if re.is_match(function) {
        return Ok(());
    }
    let qualified = regex::Regex::new(
        r"^(arn:[^:]+:lambda:[^:]+:\d{12}:function:|\d{12}:function:)?[a-zA-Z0-9_-]{1,64}:[^:]+$",
    )
    .expect("static regex");
    if qualified.is_match(function) {
        Err("a function without a version or alias (fastdeploy publishes the version and moves the alias named by `alias`)".to_string())
    } else {
        Err("a Lambda function name (1-64 letters, digits, `-` or `_`) or ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
            .to_string())
    }
}

/// Lambda's alias name rule: 1-128 of `[a-zA-Z0-9_-]`, not all digits (that
/// would be a version). The error says what is accepted.
pub fn check_alias_name(alias: &str) -> Result<(), String> {
    let ok = !alias.is_empty()
        && alias.len() <= 128
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !alias.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(
            "1-128 letters, digits, `-` or `_`, not only digits (digits alone name a version)"
                .to_string(),
        )
    }
}

/// Where registry cache goes when `cache-repository` is not set. buildx
/// writes one `cache-<branch>` tag beside the image; buildah writes one tag
/// per layer, named by content hash, so its cache gets a repository of its
/// own rather than burying the image's tags (and its lifecycle policy can
/// expire entries no prefix could select).
pub fn default_cache_repository(repository: &str, builder: BuilderKind) -> String {
    match builder {
        BuilderKind::Buildah => format!("{repository}-buildcache"),
        BuilderKind::Buildx | BuilderKind::Codebuild => repository.to_string(),
    }
}

/// Immutable tag naming the commit: `sha-` and the first 12 hex digits.
pub fn commit_tag(sha: &str) -> String {
    format!("sha-{}", &sha[..sha.len().min(12)])
}

/// Cache tag for a branch.
pub fn cache_tag(branch: &str) -> String {
    sanitize_tag(&format!("cache-{branch}"))
}

/// Makes a valid OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, lower-cased.
pub fn sanitize_tag(s: &str) -> String {
    let mut t: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while t.starts_with(['.', '-']) {
        t.remove(0);
    }
    t.truncate(128);
    if t.is_empty() { "untagged".into() } else { t }
}

/// Turns a directory or repository name into an ECR repository name:
/// lower-case, runs of other characters become `-`, no separator at either end.
pub fn sanitize_repository(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_ascii_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '.' {
            c
        } else {
            '-'
        };
        if !(matches!(c, '-' | '.' | '_') && out.ends_with(['-', '.', '_', '/'])) {
            out.push(c);
        }
    }
    out.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Lexically normalises a path (`a/./b/../c` → `a/c`) without touching disk.
pub fn normalize(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_valid_oci_tags() {
        assert_eq!(sanitize_tag("feature/New-Login"), "feature-new-login");
        assert_eq!(sanitize_tag("-x"), "x");
        assert_eq!(sanitize_tag(&"a".repeat(300)).len(), 128);
        assert_eq!(commit_tag("0123456789abcdef0123"), "sha-0123456789ab");
        assert_eq!(cache_tag("release/1.2"), "cache-release-1.2");
    }

    #[test]
    fn derived_repository_names_are_valid() {
        assert_eq!(sanitize_repository(".tmpAbC12"), "tmpabc12");
        assert_eq!(sanitize_repository("My Shop!"), "my-shop");
        assert_eq!(sanitize_repository("acme/Shop__x"), "acme/shop_x");
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(
            normalize(std::path::Path::new("/w/a/./b/../c")),
            PathBuf::from("/w/a/c")
        );
        assert_eq!(
            normalize(std::path::Path::new("/w/../etc")),
            PathBuf::from("/etc")
        );
    }
}
