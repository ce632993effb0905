//! `fastdeploy.yml`: named components and environments, parsed into typed
//! structs with serde-saphyr (maintained, safe; `serde_yaml` is archived).
//! Unknown keys are errors with line and column, so a typo never silently
//! deploys the wrong thing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::runtime::{EnvMap, SecretMap};
use crate::error::BadInput;

/// Default file name looked up in the workspace when `config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "fastdeploy.yml";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Schema version; only 1 exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Values every component and environment starts from.
    #[serde(default)]
    pub defaults: Defaults,
    /// In the order the file lists them: the first is the run's first.
    #[serde(default)]
    pub components: indexmap::IndexMap<String, ComponentConfig>,
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    pub aws_region: Option<String>,
    pub registry: Option<String>,
    pub builder: Option<String>,
    pub cache: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub codebuild_project: Option<String>,
    pub cluster: Option<String>,
    pub max_context_mb: Option<u64>,
    pub max_image_mb: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentConfig {
    /// Build context, relative to the workspace. Default: `.`.
    pub context: Option<String>,
    /// Dockerfile, relative to the workspace. Default: `<context>/Dockerfile`.
    pub dockerfile: Option<String>,
    /// Target stage.
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// ECR repository name. Default: `<github repo name>/<component>`.
    pub repository: Option<String>,
    pub platforms: Option<Vec<String>>,
    /// ECS service to deploy. A component names at most one target
    /// (`service` or `function`); with none it is built and pushed only.
    pub service: Option<String>,
    /// Container name(s) whose image is replaced.
    pub container: Option<Vec<String>>,
    /// Task definition JSON file to render instead of the service's current.
    pub task_definition: Option<String>,
    /// Build secrets, as the `build-secrets` input writes them
    /// (`id=ENV_VAR`, `id=file:PATH`, `id=ssm:/path`, `id=secretsmanager:name`).
    #[serde(default)]
    pub build_secrets: Vec<String>,
    /// Lambda function (name or ARN, package type Image) to deploy.
    pub function: Option<String>,
    /// Alias moved to the version published. Default: `live`.
    pub alias: Option<String>,
    /// Lambda: the event the new version is invoked with before the alias
    /// moves (a mapping, or JSON text).
    pub smoke_test_event: Option<serde_json::Value>,
    /// A path (`/health`) fetched after the rollout until it answers 2xx or
    /// 3xx; a failure rolls the deploy back.
    pub smoke_test_path: Option<String>,
    /// Lambda: the share of the alias's invocations on the new version and
    /// how long it is watched before all of them (`10%/5m`).
    pub lambda_shift: Option<String>,
    /// CloudWatch alarms (names, or prefixes ending in `*`) watched during
    /// the rollout and `bake-minutes` after it; one in ALARM rolls it back.
    pub alarms: Option<Vec<String>>,
    /// Minutes the alarms are watched after the rollout succeeded.
    pub bake_minutes: Option<u64>,
    /// A one-off ECS task run on the new revision before the service update
    /// (database migrations): a command line or a list of words.
    pub before_deploy: Option<CommandLine>,
    /// The container the command runs in. Default: the one whose image is replaced.
    pub before_deploy_container: Option<String>,
    /// How long the task may run. Default: 30.
    pub before_deploy_minutes: Option<u64>,
    /// Elastic Beanstalk application whose environment this component deploys to.
    pub beanstalk_application: Option<String>,
    /// Elastic Beanstalk environment (Docker platform) to deploy to.
    pub beanstalk_environment: Option<String>,
    /// `strategy: swap`: the live CNAME's prefix, held by one of the two
    /// environments `beanstalk-environment` names.
    pub beanstalk_cname: Option<String>,
    /// What the application version holds. Default: `image`.
    pub bundle: Option<Bundle>,
    /// Accept health Yellow after an Elastic Beanstalk deploy. Default: false.
    pub allow_yellow: Option<bool>,
    /// Container ports for `Dockerrun.aws.json`. Default: the Dockerfile's `EXPOSE`.
    pub ports: Option<Vec<u16>>,
    /// Several places the one image runs (services, a Lambda function, an
    /// Elastic Beanstalk environment, EventBridge rules and Scheduler
    /// schedules), instead of the single-target keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetItem>>,
    /// Environment variables the targets get (names set here replace the
    /// current revision's; others are kept). Read by [`super::runtime`].
    #[serde(default, skip_serializing)]
    pub env: EnvMap,
    /// Secrets the targets resolve: `ssm:/path` or `secretsmanager:name[:json-key]`.
    #[serde(default, skip_serializing)]
    pub secrets: SecretMap,
}

/// One item of a component's `targets:` list: one place the component's
/// image runs, named by exactly one of its kind keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetItem {
    /// An ECS service in the component's cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The containers whose image is replaced (services, rules, schedules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Vec<String>>,
    /// A Lambda function, with its `alias`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// An Elastic Beanstalk environment, with its application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beanstalk_environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beanstalk_cname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beanstalk_application: Option<String>,
    /// An EventBridge rule whose ECS targets run the task definition, on
    /// `event-bus` (default: `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_bus: Option<String>,
    /// An EventBridge Scheduler schedule with an ECS target, in `group`
    /// (default: `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Services, functions and environments move in `order` groups, the
    /// lowest first, each once the one before succeeded (default: 1, all
    /// together); rules and schedules always after them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
}

impl TargetItem {
    /// The kind keys it sets, with their values: exactly one is valid.
    pub fn kinds(&self) -> Vec<(&'static str, &str)> {
        [
            ("service", &self.service),
            ("function", &self.function),
            ("beanstalk-environment", &self.beanstalk_environment),
            ("rule", &self.rule),
            ("schedule", &self.schedule),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_deref()?)))
        .collect()
    }
}

/// What an Elastic Beanstalk application version holds.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Bundle {
    /// A `Dockerrun.aws.json` naming the pushed image by digest, with the
    /// component's `.ebextensions/` and `.platform/`.
    #[default]
    Image,
    /// The build context, built into an image on every instance.
    Source,
}

impl Bundle {
    /// As the `bundle` input spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bundle::Image => "image",
            Bundle::Source => "source",
        }
    }
}

/// A command as YAML gives it: one string split as a shell splits words, or
/// a list of words taken as they are.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Words(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvironmentConfig {
    /// Branches that deploy here on push.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Tag patterns (`v*`) that deploy here on push.
    #[serde(default)]
    pub tags: Vec<String>,
    pub cluster: Option<String>,
    pub aws_region: Option<String>,
    /// Shown in GitHub deployments and Slack.
    pub url: Option<String>,
    /// Components deployed here. Default: every component with a service.
    pub components: Option<Vec<String>>,
    /// Per-component overrides in this environment.
    #[serde(default)]
    pub overrides: BTreeMap<String, ComponentOverride>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentOverride {
    pub service: Option<String>,
    pub cluster: Option<String>,
    pub container: Option<Vec<String>>,
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    pub task_definition: Option<String>,
    pub function: Option<String>,
    pub alias: Option<String>,
    pub smoke_test_event: Option<serde_json::Value>,
    pub smoke_test_path: Option<String>,
    pub lambda_shift: Option<String>,
    pub alarms: Option<Vec<String>>,
    pub bake_minutes: Option<u64>,
    pub before_deploy: Option<CommandLine>,
    pub before_deploy_container: Option<String>,
    pub before_deploy_minutes: Option<u64>,
    pub beanstalk_application: Option<String>,
    pub beanstalk_environment: Option<String>,
    pub beanstalk_cname: Option<String>,
    pub bundle: Option<Bundle>,
    pub allow_yellow: Option<bool>,
    pub ports: Option<Vec<u16>>,
    /// Replaces the component's `targets` in this environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetItem>>,
    #[serde(default, skip_serializing)]
    pub env: EnvMap,
    #[serde(default, skip_serializing)]
    pub secrets: SecretMap,
}

/// Megabyte limits accepted in the config, as for the inputs.
pub const MB_RANGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;

impl Defaults {
    /// The same rules the matching inputs follow, naming `defaults.<key>`.
    fn validate(&self) -> Result<(), String> {
        let bad = |key: &str, value: &str, expected: &str| {
            Err(format!(
                "`defaults.{key}` is {value:?}, but it accepts {expected}"
            ))
        };
        if let Some(b) = &self.builder
            && !["auto", "buildx", "buildah", "codebuild"].contains(&b.as_str())
        {
            return bad("builder", b, "auto | buildx | buildah | codebuild");
        }
        if let Some(c) = &self.cache
            && !["registry", "none"].contains(&c.as_str())
        {
            return bad("cache", c, "registry | none");
        }
        if let Some(r) = &self.registry
            && !is_registry_host(r)
        {
            return bad(
                "registry",
                r,
                "a registry host such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com (no scheme, no path)",
            );
        }
        if let Some(r) = &self.aws_region
            && !is_region(r)
        {
            return bad("aws-region", r, "a region name such as eu-west-1");
        }
        for (key, value) in [
            ("max-context-mb", self.max_context_mb),
            ("max-image-mb", self.max_image_mb),
        ] {
            if let Some(v) = value
                && !MB_RANGE.contains(&v)
            {
                return bad(key, &v.to_string(), "a whole number from 1 to 1000000");
            }
        }
        Ok(())
    }
}

/// The first single-target key set among `service`, `function` and
/// `beanstalk-environment` (in that order), with its value.
fn single_target(values: [&Option<String>; 3]) -> Option<(&'static str, &str)> {
    ["service", "function", "beanstalk-environment"]
        .into_iter()
        .zip(values)
        .find_map(|(key, v)| Some((key, v.as_deref()?)))
}

/// An environment's override of component `c`: its `targets`, and no
/// single-target key where the component lists its places.
fn override_targets(
    env_name: &str,
    c: &str,
    o: &ComponentOverride,
    component: Option<&ComponentConfig>,
) -> Result<(), String> {
    if let Some(items) = &o.targets {
        check_targets(
            &format!("environments.{env_name}.overrides.{c}.targets"),
            items,
        )?;
    }
    let listed = o.targets.is_some() || component.is_some_and(|x| x.targets.is_some());
    match single_target([&o.service, &o.function, &o.beanstalk_environment]) {
        Some((key, v)) if listed => Err(format!(
            "in environment `{env_name}`, component `{c}` sets `{key}: {v}`, but the component names its places with `targets`: override `targets` instead"
        )),
        _ => Ok(()),
    }
}

/// A `targets:` list at `path`: not empty, each item one target with only
/// the keys its kind takes, no target twice.
fn check_targets(path: &str, items: &[TargetItem]) -> Result<(), String> {
    if items.is_empty() {
        return Err(format!(
            "`{path}` is an empty list; name at least one target, or remove the key"
        ));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let (kind, value) = match item.kinds().as_slice() {
            [] => {
                return Err(format!(
                    "`{at}` names no target: give it one of `service`, `function`, `beanstalk-environment`, `rule` or `schedule`"
                ));
            }
            [one] => *one,
            [(k1, v1), (k2, v2), ..] => {
                return Err(format!(
                    "`{at}` names two targets, `{k1}: {v1}` and `{k2}: {v2}`; an item names one: split it into two items"
                ));
            }
        };
        let stray = [
            (
                "container",
                item.container.is_some(),
                &["service", "rule", "schedule"][..],
            ),
            ("alias", item.alias.is_some(), &["function"][..]),
            (
                "beanstalk-application",
                item.beanstalk_application.is_some(),
                &["beanstalk-environment"][..],
            ),
            ("event-bus", item.event_bus.is_some(), &["rule"][..]),
            ("group", item.group.is_some(), &["schedule"][..]),
            (
                "order",
                item.order.is_some(),
                &["service", "function", "beanstalk-environment"][..],
            ),
        ]
        .into_iter()
        .find(|(_, set, kinds)| *set && !kinds.contains(&kind));
        if let Some((key, _, kinds)) = stray {
            return Err(format!(
                "`{at}` sets `{key}`, which only a `{}` item takes; remove it from this `{kind}` item",
                kinds.join("` or `")
            ));
        }
        if item.order == Some(0) {
            return Err(format!(
                "`{at}.order` is 0, but it accepts a whole number from 1: the group this target moves in, the lowest first"
            ));
        }
        if item.container.as_ref().is_some_and(Vec::is_empty) {
            return Err(format!(
                "`{at}.container` is an empty list; name at least one container or remove the key"
            ));
        }
        let place = item.event_bus.as_ref().or(item.group.as_ref());
        let key = format!(
            "{kind} `{value}`{}",
            place.map(|p| format!(" in `{p}`")).unwrap_or_default()
        );
        if let Some(first) = seen.insert(key.clone(), i) {
            return Err(format!(
                "`{at}` names {key} again (`{path}[{first}]` names it too); name each target once"
            ));
        }
    }
    Ok(())
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: lower-case words and digits.
pub fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.split('-').count() >= 3
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A host with an optional port; no scheme, no path.
pub fn is_registry_host(r: &str) -> bool {
    !r.is_empty() && !r.contains("://") && !r.contains('/') && !r.chars().any(char::is_whitespace)
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, BadInput> {
        let text = std::fs::read_to_string(path).map_err(|e| BadInput::Config {
            path: path.to_path_buf(),
            message: format!("cannot be read ({e}); check the `config` input or create the file"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, BadInput> {
        let err = |message: String| BadInput::Config {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str_with_options(text, yaml_options())
                .map_err(|e| err(explain_yaml_error(&e.to_string(), path)))?
        };
        config.validate().map_err(err)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(v) = self.version
            && v != 1
        {
            return Err(format!("version {v} is not supported; use `version: 1`"));
        }
        self.defaults.validate()?;
        for (name, c) in &self.components {
            check_name("component", name)?;
            if let Some(repo) = &c.repository {
                check_repository(repo)
                    .map_err(|m| format!("component `{name}`: repository {m}"))?;
            }
            let function_somewhere = c.function.is_some()
                || self
                    .environments
                    .values()
                    .any(|e| e.overrides.get(name).is_some_and(|o| o.function.is_some()));
            if c.alias.is_some() && !function_somewhere {
                return Err(format!(
                    "component `{name}` sets `alias` but no `function`; `alias` names the Lambda alias fastdeploy moves: add `function` or remove `alias`"
                ));
            }
            let targets: Vec<String> = [
                ("service", &c.service),
                ("function", &c.function),
                ("beanstalk-environment", &c.beanstalk_environment),
            ]
            .into_iter()
            .filter_map(|(key, v)| v.as_ref().map(|v| format!("`{key}: {v}`")))
            .collect();
            if let [first, second, ..] = targets.as_slice() {
                return Err(format!(
                    "component `{name}` names two deploy targets, {first} and {second}; a component deploys to one: keep one, or split it into two components"
                ));
            }
            if let Some(items) = &c.targets {
                let single = [&c.service, &c.function, &c.beanstalk_environment];
                if let Some((key, v)) = single_target(single) {
                    return Err(format!(
                        "component `{name}` sets both `targets` and `{key}: {v}`; `targets` names every place the image runs: move `{key}: {v}` into the list, or remove `targets`"
                    ));
                }
                check_targets(&format!("components.{name}.targets"), items)?;
            }
            if let Some(containers) = &c.container
                && containers.is_empty()
            {
                return Err(format!(
                    "component `{name}`: `container` is an empty list; name at least one container or remove the key"
                ));
            }
        }
        let known = || {
            self.components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut branch_owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (env_name, env) in &self.environments {
            check_name("environment", env_name)?;
            if let Some(r) = &env.aws_region
                && !is_region(r)
            {
                return Err(format!(
                    "`environments.{env_name}.aws-region` is {r:?}, but it accepts a region name such as eu-west-1"
                ));
            }
            for b in &env.branches {
                if let Some(other) = branch_owner.insert(b, env_name) {
                    return Err(format!(
                        "branch `{b}` maps to both environments `{other}` and `{env_name}`; keep it under one"
                    ));
                }
            }
            for (c, o) in &env.overrides {
                let component = self.components.get(c);
                override_targets(env_name, c, o, component)?;
                let service = o
                    .service
                    .as_ref()
                    .or(component.and_then(|x| x.service.as_ref()));
                let function = o
                    .function
                    .as_ref()
                    .or(component.and_then(|x| x.function.as_ref()));
                let beanstalk = o
                    .beanstalk_environment
                    .as_ref()
                    .or(component.and_then(|x| x.beanstalk_environment.as_ref()));
                let targets: Vec<String> = [
                    ("service", service),
                    ("function", function),
                    ("Elastic Beanstalk environment", beanstalk),
                ]
                .into_iter()
                .filter_map(|(kind, v)| v.map(|v| format!("{kind} `{v}`")))
                .collect();
                if let [first, second, ..] = targets.as_slice() {
                    return Err(format!(
                        "in environment `{env_name}`, component `{c}` names two deploy targets, {first} and {second}; a component deploys to one"
                    ));
                }
            }
            for c in env.components.iter().flatten().chain(env.overrides.keys()) {
                if !self.components.contains_key(c) {
                    return Err(format!(
                        "environment `{env_name}` names component `{c}`, which is not under `components` (defined: {})",
                        known()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Environment a pushed branch deploys to, if any.
    pub fn environment_for_branch(&self, branch: &str) -> Option<&str> {
        self.environments
            .iter()
            .find(|(_, e)| e.branches.iter().any(|b| glob_match(b, branch)))
            .map(|(n, _)| n.as_str())
    }

    /// Environment a pushed tag deploys to, if any.
    pub fn environment_for_tag(&self, tag: &str) -> Option<&str> {
        self.environments
            .iter()
            .find(|(_, e)| e.tags.iter().any(|t| glob_match(t, tag)))
            .map(|(n, _)| n.as_str())
    }
}

/// A config has hundreds of nodes; these limits stop a file that expands
/// through anchors, aliases or merge keys (a "billion laughs") in
/// milliseconds instead of letting it eat memory first.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 20_000;
    budget.max_events = 50_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_merge_keys = 200;
    budget.max_recorded_anchor_events = 20_000;
    budget.max_recorded_anchor_bytes = 1024 * 1024;
    budget.max_depth = 32;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Rewrites serde-saphyr's messages that speak to the Rust caller into
/// messages that speak to the person editing the file. The location and the
/// snippet that follow stay as they are.
fn explain_yaml_error(raw: &str, path: &Path) -> String {
    // The snippet's location names the file, not the parser's `<input>`.
    let located = raw.replace("--> <input>:", &format!("--> {}:", path.display()));
    let text = located.trim_start_matches("error: ");
    let first = text.lines().next().unwrap_or_default();
    // "line 3 column 5: <message>": keep the location, rewrite the message
    // (it is repeated under the snippet, so it is replaced everywhere).
    let message = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, m)) => m,
        None => first,
    };
    let fixed = if message.contains("Documents {") || message.contains("from_str_multiple") {
        "the file holds more than one YAML document (a `---` separator); keep one document"
            .to_string()
    } else if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or_default();
        format!("the key `{key}` appears twice in the same mapping; remove one")
    } else if message.contains("budget breached") {
        "the file expands too far (anchors, aliases or merge keys repeated, or too deeply nested); write the values out plainly".to_string()
    } else if let Some(fixed) = unknown_key(message) {
        fixed
    } else if message.starts_with("cannot deserialize null into") {
        "no value here; write \"\" for an empty one, or remove the key".to_string()
    } else if message == "expected string scalar" {
        "expected one value (text, a number or a word), not a list, a mapping or nothing; quote it if in doubt".to_string()
    } else if message.starts_with("invalid u") {
        "expected a whole number of 0 or more, and not too large".to_string()
    } else if message.starts_with("invalid i") || message.starts_with("invalid f") {
        "expected a number, and not too large".to_string()
    } else {
        return text.to_string();
    };
    if message.is_empty() {
        fixed
    } else {
        text.replace(message, &fixed)
    }
}

/// "unknown field `servce`, expected one of context, ..., service, ..." in
/// words, with the nearest known key when one is a typo away.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest
        .split_once("expected one of ")
        .map(|(_, list)| list.split(", ").map(|k| k.trim_matches('`')).collect())
        .unwrap_or_default();
    let nearest = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    let hint = match nearest {
        Some((_, k)) => format!("did you mean `{k}`? "),
        None => String::new(),
    };
    Some(format!(
        "unknown key `{key}`; {hint}the keys here are: {}",
        known.join(", ")
    ))
}

/// Levenshtein distance: the edits that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Names of components and environments: used in tags, log groups and ids.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind} name `{name}` must be 1-64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
        ))
    }
}

/// ECR's repository name rule: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2-256 chars.
pub fn check_repository(repo: &str) -> Result<(), String> {
    let re = regex::Regex::new(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
        .expect("static regex");
    if repo.len() < 2 || repo.len() > 256 || !re.is_match(repo) {
        return Err(format!(
            "`{repo}` is not a valid ECR repository name: use 2-256 lowercase letters, digits and `._-/`, with no separator at either end"
        ));
    }
    Ok(())
}

/// `*` matches any run of characters (including `/`), everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Resolves the config path: an explicit input must exist; the default is
/// optional.
pub fn locate(workspace: &Path, input: Option<&str>) -> Result<Option<PathBuf>, BadInput> {
    match input {
        Some(p) => {
            let path = workspace.join(p);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(BadInput::Config {
                    path,
                    message: "does not exist; fix the `config` input or remove it to run without a config".into(),
                })
            }
        }
        None => {
            let path = workspace.join(DEFAULT_CONFIG_FILE);
            Ok(path.is_file().then_some(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../fastdeploy.example.yml");

    /// A typo gets the nearest key and the file in the snippet's location.
    #[test]
    fn a_misspelt_key_gets_did_you_mean_and_the_file_in_the_location() {
        let text = "components:\n  web:\n    servce: web\n";
        let err = Config::parse(text, Path::new("/w/fastdeploy.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown key `servce`; did you mean `service`?"),
            "{err}"
        );
        assert!(
            err.contains("--> /w/fastdeploy.yml:3:5") && !err.contains("<input>"),
            "{err}"
        );
        let far =
            Config::parse("components:\n  web:\n    zzzzzz: 1\n", Path::new("f.yml")).unwrap_err();
        assert!(!far.to_string().contains("did you mean"), "{far}");
        assert_eq!(edit_distance("servce", "service"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn example_config_parses() {
        let c = Config::parse(EXAMPLE, Path::new("fastdeploy.example.yml")).unwrap();
        assert!(c.components.contains_key("backend"));
        assert_eq!(c.environment_for_branch("main"), Some("production"));
        assert_eq!(c.environment_for_branch("develop"), Some("staging"));
        assert_eq!(c.environment_for_branch("feature/x"), None);
    }

    #[test]
    fn unknown_key_is_an_error_with_line_and_column() {
        let text = "components:\n  backend:\n    contxt: backend\n";
        let err = Config::parse(text, Path::new("fastdeploy.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fastdeploy.yml"), "{err}");
        assert!(err.contains("contxt"), "{err}");
        assert!(
            err.contains("line 3") || err.contains("3:5"),
            "names the line: {err}"
        );
    }

    #[test]
    fn environment_naming_a_missing_component_is_rejected() {
        let text = "components:\n  backend: {}\nenvironments:\n  production:\n    branches: [main]\n    components: [frontend]\n";
        let err = Config::parse(text, Path::new("f.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("frontend") && err.contains("backend"), "{err}");
    }

    #[test]
    fn a_branch_in_two_environments_is_rejected() {
        let text = "environments:\n  a:\n    branches: [main]\n  b:\n    branches: [main]\n";
        assert!(Config::parse(text, Path::new("f.yml")).is_err());
    }

    #[test]
    fn repository_names_follow_ecr_rules() {
        assert!(check_repository("acme/backend").is_ok());
        assert!(check_repository("Acme/Backend").is_err());
        assert!(check_repository("acme//backend").is_err());
        assert!(check_repository("-x").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("v*", "v1.2.3"));
        assert!(glob_match("release/*", "release/2026-11"));
        assert!(!glob_match("v*", "x1"));
        assert!(glob_match("*-hotfix", "prod-hotfix"));
        assert!(glob_match("main", "main"));
    }
}
