//! The plan: everything a run will do, computed before any side effect.
//!
//! `fastdeploy plan` (and `dry-run: true`) prints it; `fastdeploy run`
//! executes it. It is pure data: executors take it and talk to the outside.
//!
//! - `builder`: which builder runs the builds;
//! - `component`: each component's build (context, tags, cache, secrets);
//! - `target`: each component's deploy target in this run, or why none;
//! - `text`: the plan in words.

mod builder;
pub use builder::check_buildx_platforms;
mod component;
mod target;
mod targets;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::BadInput;
use crate::settings::config::Bundle;
use crate::settings::event::{RunContext, Target};
use crate::settings::runtime::RuntimeConfig;
use crate::settings::{BuilderInput, Motion, Settings, SlackOn, Strategy, WaitUntil};

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
    /// `codebuild-compute-type`: StartBuild's computeTypeOverride.
    pub codebuild_compute_type: Option<String>,
    /// The CodeBuild project's environment type and compute type, read by
    /// the preflight (native builds for other architectures override them).
    pub codebuild_environment: Option<(String, String)>,
    /// What the buildx builder builds natively and by emulation, when known.
    pub buildx_platforms: Option<BuilderPlatforms>,
    pub provenance: bool,
    /// `rebuild`: build even when the registry holds the content tag.
    pub rebuild: bool,
}

/// The platforms a buildx builder can build, as `docker buildx inspect`
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuilderPlatforms {
    pub all: Vec<String>,
    pub native: Vec<String>,
    /// Read from the builder the builds run on; false when the current
    /// builder (same daemon) stands in for one fastdeploy creates.
    pub exact: bool,
    pub builder: String,
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
    /// An EventBridge rule whose ECS targets run the component's task
    /// definition family (`targets:` only).
    Rule(TriggerPlan),
    /// An EventBridge Scheduler schedule with an ECS target (`targets:` only).
    Schedule(TriggerPlan),
}

impl TargetPlan {
    /// How long, how often and whether to roll back: the same for every target.
    pub fn watch(&self) -> &WatchPlan {
        match self {
            TargetPlan::Ecs(p) => &p.watch,
            TargetPlan::Lambda(p) => &p.watch,
            TargetPlan::Beanstalk(p) => &p.watch,
            TargetPlan::Rule(p) | TargetPlan::Schedule(p) => &p.watch,
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
            TargetPlan::Rule(p) => TargetRef::Rule {
                event_bus: p.place(),
                rule: p.name.clone(),
            },
            TargetPlan::Schedule(p) => TargetRef::Schedule {
                group: p.place(),
                schedule: p.name.clone(),
            },
        }
    }

    /// The runtime configuration the target gets.
    pub fn config(&self) -> &RuntimeConfig {
        match self {
            TargetPlan::Ecs(p) => &p.config,
            TargetPlan::Lambda(p) => &p.config,
            TargetPlan::Beanstalk(p) => &p.config,
            TargetPlan::Rule(p) | TargetPlan::Schedule(p) => &p.config,
        }
    }

    pub fn config_mut(&mut self) -> &mut RuntimeConfig {
        match self {
            TargetPlan::Ecs(p) => &mut p.config,
            TargetPlan::Lambda(p) => &mut p.config,
            TargetPlan::Beanstalk(p) => &mut p.config,
            TargetPlan::Rule(p) | TargetPlan::Schedule(p) => &mut p.config,
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
    /// `smoke-test-path`: fetched after the rollout before it is called done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<HttpSmoke>,
    /// `alarms`: watched during the rollout and `bake-minutes` after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarms: Option<AlarmPlan>,
}

/// CloudWatch alarms a deploy watches (`alarms`, `bake-minutes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmPlan {
    /// Alarm names, each exact.
    pub names: Vec<String>,
    /// Name prefixes (an entry `shop-prod-*` is the prefix `shop-prod-`).
    pub prefixes: Vec<String>,
    /// How long they are watched after the rollout succeeded.
    pub bake_seconds: u64,
    /// Where the list came from (``input `alarms` ``), for errors.
    #[serde(skip)]
    pub source: String,
}

impl AlarmPlan {
    /// The list as the user wrote it: `api-5xx, shop-prod-*`.
    pub fn describe(&self) -> String {
        let prefixes = self.prefixes.iter().map(|p| format!("{p}*"));
        let all: Vec<String> = self.names.iter().cloned().chain(prefixes).collect();
        all.join(", ")
    }
}

/// An HTTP smoke test after the rollout (`smoke-test-path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpSmoke {
    /// `/health`.
    pub path: String,
    /// The environment's URL; `None`: the target's own (an Elastic
    /// Beanstalk environment's CNAME).
    pub base: Option<String>,
    pub seconds: u64,
}

impl HttpSmoke {
    /// The URL fetched, against `base` or the target's `own` URL.
    pub fn url(&self, own: Option<&str>) -> Option<String> {
        let base = self.base.as_deref().or(own)?;
        Some(format!("{}{}", base.trim_end_matches('/'), self.path))
    }
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
    /// `env` and `secrets` (names set replace the current revision's).
    #[serde(skip_serializing_if = "RuntimeConfig::is_empty")]
    pub config: RuntimeConfig,
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
    /// Versions fastdeploy published kept after a success (`keep-revisions`).
    pub keep_revisions: Option<u64>,
    /// `env` and `secrets` (names set replace the current revision's).
    #[serde(skip_serializing_if = "RuntimeConfig::is_empty")]
    pub config: RuntimeConfig,
    /// JSON the new version is invoked with before the alias moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke_test_event: Option<String>,
    /// `lambda-shift`: a share of the alias's invocations on the new version
    /// for a while, watched, before all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<Shift>,
    pub watch: WatchPlan,
}

/// A gradual shift of a Lambda alias (`lambda-shift: 10%/5m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shift {
    /// The share of invocations on the new version, 1-99.
    pub percent: u8,
    /// How long that share is watched before all traffic moves.
    pub seconds: u64,
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
    /// Application versions fastdeploy made kept after a success, with
    /// their bundles (`keep-revisions`).
    pub keep_revisions: Option<u64>,
    /// `env` and `secrets` (names set replace the current revision's).
    #[serde(skip_serializing_if = "RuntimeConfig::is_empty")]
    pub config: RuntimeConfig,
    pub watch: WatchPlan,
    /// `strategy: swap`: `environment` names a pair; the idle one is
    /// deployed and the CNAMEs swapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapPlan>,
}

/// Elastic Beanstalk blue/green by CNAME swap (`strategy: swap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwapPlan {
    /// The two environments of one application (`shop-blue`, `shop-green`).
    pub pair: [String; 2],
    /// The live CNAME's prefix (`beanstalk-cname`): `shop` for
    /// `shop.us-east-1.elasticbeanstalk.com`.
    pub cname: String,
}

/// An EventBridge rule or Scheduler schedule that runs ECS tasks: its ECS
/// target moves to the new revision of the family it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerPlan {
    /// The rule's or schedule's name.
    pub name: String,
    /// Where it is named in the config (`components.api.targets[2]`).
    #[serde(skip)]
    pub at: String,
    /// The event bus (rule) or schedule group; `None`: `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Containers whose image is replaced; empty: the family's only one.
    pub containers: Vec<String>,
    /// `env` and `secrets`, rendered into the family's revision.
    #[serde(skip_serializing_if = "RuntimeConfig::is_empty")]
    pub config: RuntimeConfig,
    pub watch: WatchPlan,
}

impl TriggerPlan {
    /// The event bus or schedule group, `default` when unnamed.
    pub fn place(&self) -> String {
        self.within.clone().unwrap_or_else(|| "default".into())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentPlan {
    pub name: String,
    pub build: BuildPlan,
    /// `None`: built and pushed only. With `targets:`, the first of them.
    pub deploy: Option<TargetPlan>,
    /// The component's further targets (`targets:`): deployed with
    /// `deploy` as one, one verdict and one rollback for all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<TargetPlan>,
    /// Why there is no deploy, in words (`plan` prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_deploy_reason: Option<String>,
    /// `promote`: the component's target in `promote-from`, whose serving
    /// image is deployed here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promote_from: Option<TargetPlan>,
    /// With `targets:`, each target's `order` group, by the index of
    /// [`ComponentPlan::targets`]: a group moves once the lower ones
    /// succeeded. Empty: one group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<u32>,
}

impl ComponentPlan {
    /// Every place the component deploys to, in the order declared.
    pub fn targets(&self) -> impl Iterator<Item = &TargetPlan> {
        self.deploy.iter().chain(&self.also)
    }

    /// Whether one of its targets is a Lambda function (which takes one
    /// image, no index, and runs as a non-root user).
    /// The `order` group of the `i`th target (1 unless set).
    pub fn order_of(&self, i: usize) -> u32 {
        self.order.get(i).copied().unwrap_or(1)
    }

    pub fn deploys_to_lambda(&self) -> bool {
        self.targets().any(|t| matches!(t, TargetPlan::Lambda(_)))
    }
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
    /// `command`: deploy this commit, roll back, or promote.
    pub motion: Motion,
    pub aws_region: Option<String>,
    /// Where the region came from, for `plan`.
    pub aws_region_source: Option<String>,
    pub builder: BuilderChoice,
    pub registry: RegistryPlan,
    pub max_parallel: usize,
    pub limits: Limits,
    pub components: Vec<ComponentPlan>,
    pub notifications: Notifications,
    /// Where the environment answers (`environment-url`, else the config's
    /// `environments.<name>.url`): the summary and GitHub deployments link it.
    pub environment_url: Option<String>,
}

impl Plan {
    pub fn environment(&self) -> Option<&str> {
        self.target.environment()
    }
}

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
    /// What its nodes build: every platform they list, and each node's
    /// first (BuildKit lists the worker's own platform first, then those
    /// it emulates through binfmt).
    pub platforms: Vec<String>,
    pub native: Vec<String>,
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

pub use crate::settings::component::SINGLE_COMPONENT;

/// `rollback` and `promote` change only components with a target here
/// (bad input when none has one); `promote` finds each one's target in
/// `promote-from` too, in the same region.
fn motion_components(
    settings: &Settings,
    components: Vec<ComponentPlan>,
) -> Result<Vec<ComponentPlan>, BadInput> {
    let env = settings.target.environment().unwrap_or_default();
    let mut deploying: Vec<ComponentPlan> = components
        .into_iter()
        .filter(|c| c.deploy.is_some())
        .collect();
    let verb = match &settings.motion {
        Motion::Rollback { .. } => "roll back",
        _ => "promote",
    };
    if deploying.is_empty() {
        return Err(BadInput::other(format!(
            "nothing to {verb}: no selected component deploys to environment `{env}`"
        )));
    }
    if let Motion::Rollback { to: Some(to) } = &settings.motion
        && deploying.len() > 1
    {
        return Err(BadInput::other(format!(
            "`to` is {to}, one revision, but {} components deploy to `{env}` ({}): select one with `components`",
            deploying.len(),
            deploying
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let Motion::Promote { from } = &settings.motion else {
        return Ok(deploying);
    };
    let source = settings.for_environment(from)?;
    let keys = source.selected_components()?;
    for c in deploying.iter_mut() {
        let found = keys.iter().find(|k| k.name == c.name);
        let target = match found {
            Some(k) => target::plan(&source, k)?
                .0
                .into_iter()
                .next()
                .map(|(t, _)| t),
            None => None,
        };
        let target = target.ok_or_else(|| {
            BadInput::other(format!(
                "component `{}` is not deployed in `{from}` (promote-from), so there is nothing of it to promote; \
                 deploy it there first, or select the components `{from}` has with `components`",
                c.name
            ))
        })?;
        if Some(target.reference()) == c.deploy.as_ref().map(TargetPlan::reference) {
            return Err(BadInput::other(format!(
                "component `{}` deploys to the same target in `{from}` and `{env}` ({}): there is nothing to promote; \
                 give `{env}` its own with `environments.{env}.overrides`",
                c.name,
                target.describe()
            )));
        }
        c.promote_from = Some(target);
    }
    Ok(deploying)
}

/// The selected components' targets in `environment` (a pull request's
/// diff against the environment its base branch deploys to).
pub fn targets_in(
    settings: &Settings,
    environment: &str,
) -> Result<Vec<(String, Vec<TargetPlan>)>, BadInput> {
    let other = settings.for_environment(environment)?;
    let keys = other.selected_components()?;
    keys.iter()
        .map(|k| {
            let targets = target::plan(&other, k)?.0.into_iter().map(|(t, _)| t);
            Ok((k.name.to_string(), targets.collect()))
        })
        .collect()
}

/// Builds the plan. Pure: reads only `settings` and `probe`.
pub fn build(settings: &Settings, probe: &BuilderProbe) -> Result<Plan, BadInput> {
    let ctx = &settings.context;
    let mut builder = builder::choose_builder(settings, probe)?;
    let env_cfg = settings.environment_config();
    let components = settings
        .selected_components()?
        .iter()
        .map(|keys| component::plan(settings, builder.kind, keys))
        .collect::<Result<Vec<_>, _>>()?;
    if builder.kind == BuilderKind::Buildx {
        let choice = builder::choose_buildx(settings, probe, &components)?;
        builder.buildx_platforms = builder::platforms_of(&choice, probe);
        builder.buildx = Some(choice);
    }

    let environment_url = settings
        .environment_url
        .clone()
        .or_else(|| env_cfg.and_then(|e| e.url.clone()));
    let github = settings.github_token.is_some().then(|| GithubPlan {
        deployments: settings.target.environment().is_some()
            && components.iter().any(|c| c.deploy.is_some()),
        pr_comment: ctx.pull_request,
        environment_url: environment_url.clone(),
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

    let components = match &settings.motion {
        Motion::Deploy => components,
        _ => motion_components(settings, components)?,
    };
    Ok(Plan {
        context: ctx.clone(),
        target: settings.target.clone(),
        motion: settings.motion.clone(),
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
        environment_url,
    })
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
