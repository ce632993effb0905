//! The action's inputs: one table that drives `action.yml`, the CLI flags and
//! the reading of `INPUT_*` variables, so the three cannot drift apart (a test
//! compares this table with `action.yml`).
//!
//! Raw values are strings; `settings` turns them into typed values and names
//! the input in every error.

use std::collections::BTreeMap;

use crate::env_vars::INPUT_PREFIX;
use crate::error::BadInput;

/// One input of the action (and flag of the CLI).
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// kebab-case name, as written under `with:`.
    pub name: &'static str,
    pub description: &'static str,
    /// The default when nothing sets it; `None` means empty (unset).
    pub default: Option<&'static str>,
    /// Whether `action.yml` declares the default. Not for inputs that the
    /// config can also set: the runner would pass the default as if the user
    /// had written it, and the config's value would never apply.
    pub default_in_action: bool,
    /// Whether the value is a secret (masked, never printed).
    pub secret: bool,
}

const fn input(name: &'static str, description: &'static str) -> InputSpec {
    InputSpec {
        name,
        description,
        default: None,
        default_in_action: false,
        secret: false,
    }
}
const fn with_default(
    name: &'static str,
    default: &'static str,
    description: &'static str,
) -> InputSpec {
    InputSpec {
        name,
        description,
        default: Some(default),
        default_in_action: true,
        secret: false,
    }
}
/// An input the config can also set: its default applies after the config's
/// value, so `action.yml` does not declare it.
const fn config_default(
    name: &'static str,
    default: &'static str,
    description: &'static str,
) -> InputSpec {
    InputSpec {
        name,
        description,
        default: Some(default),
        default_in_action: false,
        secret: false,
    }
}
const fn secret(name: &'static str, description: &'static str) -> InputSpec {
    InputSpec {
        name,
        description,
        default: None,
        default_in_action: false,
        secret: true,
    }
}

/// Every input, in the order `action.yml` lists them.
pub const INPUTS: &[InputSpec] = &[
    input(
        "config",
        "Path of the fastdeploy config file. Default: fastdeploy.yml when it exists; single-component use needs none.",
    ),
    input(
        "components",
        "Components to build and deploy (comma or newline separated). Default: all in the config.",
    ),
    with_default(
        "command",
        "deploy",
        "deploy | rollback | promote. deploy builds this commit and deploys it; rollback puts back, per component, what served before the most recent deploy (or `to`); promote deploys what `promote-from` serves now, by digest. rollback and promote build nothing.",
    ),
    input(
        "promote-from",
        "With command: promote, the environment whose serving images are deployed to `environment` (CLI: fastdeploy promote --from staging).",
    ),
    input(
        "to",
        "With command: rollback, the revision to put back instead of the one before the most recent deploy: an ECS task definition revision, a Lambda version, an Elastic Beanstalk version label, or an image digest (sha256:...). One component at a time.",
    ),
    input(
        "environment",
        "Environment to deploy to. Default: in Actions, the workflow_dispatch input, then the branch map (main: production, develop: staging); outside Actions none (ENVIRONMENT, else build and push only).",
    ),
    config_default(
        "builder",
        "auto",
        "auto | buildx | buildah | codebuild. auto picks buildx when a docker daemon answers, else buildah, else CodeBuild when a project is set.",
    ),
    input(
        "buildx-builder",
        "Name of an existing buildx builder (e.g. a remote BuildKit fleet) to build on instead of choosing one.",
    ),
    input(
        "buildkit-image",
        "BuildKit image for the docker-container builder fastdeploy creates when the current builder cannot export cache (e.g. an ECR mirror of moby/buildkit). Default: moby/buildkit:buildx-stable-1.",
    ),
    with_default(
        "provenance",
        "false",
        "Attach provenance attestations (turns a single-platform push into an index; off by default for ECS and Lambda).",
    ),
    with_default(
        "rebuild",
        "false",
        "Build even when the registry holds the content tag (the build inputs and base image digests); the new image gets the content tag.",
    ),
    input(
        "aws-region",
        "AWS region. Default: AWS_REGION, then AWS_DEFAULT_REGION.",
    ),
    input(
        "role-to-assume",
        "IAM role to assume with the job's GitHub OIDC token (needs `permissions: id-token: write`); credentials are refreshed for runs longer than the session. Default: the standard credential chain.",
    ),
    input(
        "role-session-name",
        "Session name for `role-to-assume`. Default: fastdeploy-<run id>-<attempt>.",
    ),
    with_default(
        "role-duration-seconds",
        "3600",
        "Session length for `role-to-assume`, in seconds (900-43200).",
    ),
    with_default(
        "audience",
        "sts.amazonaws.com",
        "Audience of the OIDC token requested for `role-to-assume`.",
    ),
    input(
        "registry",
        "Registry host overriding the one ECR reports (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com).",
    ),
    input(
        "repository",
        "ECR repository for a single-component run. Default: the GitHub repository name.",
    ),
    config_default(
        "context",
        ".",
        "Build context directory for a single-component run.",
    ),
    input(
        "dockerfile",
        "Dockerfile for a single-component run. Default: Dockerfile in the context.",
    ),
    input("target", "Target stage to build."),
    input("build-args", "Build arguments, one KEY=VALUE per line."),
    input(
        "build-secrets",
        "Build secrets for RUN --mount=type=secret,id=<id>, one per line: id=ENV_VAR (from the step's environment) or id=file:PATH (in the workspace); with CodeBuild id=ssm:/path or id=secretsmanager:name. Never a build argument, never on a command line; masked.",
    ),
    input(
        "platforms",
        "Target platforms, comma separated (e.g. linux/amd64,linux/arm64). On CodeBuild each builds natively (arm64 on ARM_CONTAINER) and one index joins them. Default: the target's (a Lambda function's architecture, an ECS task definition's runtimePlatform), else the builder's.",
    ),
    config_default(
        "cache",
        "registry",
        "registry | none. Registry cache in ECR-compatible form (image-manifest=true, oci-mediatypes=true).",
    ),
    config_default(
        "max-context-mb",
        "1024",
        "Fail before building when the build context is larger than this, in MB (1 MB = 1,000,000 bytes, as docker counts).",
    ),
    with_default(
        "warn-context-mb",
        "200",
        "Warn when the build context is larger than this, in MB.",
    ),
    input(
        "max-image-mb",
        "Fail when the pushed image is larger than this (compressed), in MB. Default: no limit.",
    ),
    with_default(
        "max-parallel",
        "3",
        "How many components build and deploy at once.",
    ),
    input(
        "ignore-checks",
        "Check ids to silence, comma separated: Dockerfile DF001-DF007, build context CTX001-CTX002, deploy-time doctor DEP001-DEP006 (e.g. DF003,CTX002,DEP003).",
    ),
    with_default(
        "create-repository",
        "true",
        "Create missing ECR repositories with scan-on-push and a lifecycle policy.",
    ),
    input(
        "cache-repository",
        "ECR repository for registry cache (needed when the image repository is IMMUTABLE).",
    ),
    with_default(
        "fail-on-severity",
        "none",
        "Wait for the ECR scan and fail on findings at or above: none | informational | low | medium | high | critical.",
    ),
    input(
        "codebuild-project",
        "AWS CodeBuild project that builds remotely (builder: codebuild).",
    ),
    with_default(
        "codebuild-timeout-minutes",
        "60",
        "Timeout of the CodeBuild build, in minutes (5-2160).",
    ),
    input(
        "codebuild-compute-type",
        "CodeBuild compute type for each build (e.g. BUILD_GENERAL1_LARGE), overriding the project's. Default: the project's.",
    ),
    input(
        "cluster",
        "ECS cluster. Default: the environment's in the config.",
    ),
    input("service", "ECS service for a single-component run."),
    input(
        "container",
        "Container name(s) in the task definition whose image is replaced, comma separated. Default: the service's only container.",
    ),
    input(
        "task-definition",
        "Task definition JSON file to render instead of the service's current one.",
    ),
    input(
        "function",
        "Lambda function (name or ARN, package type Image) for a single-component run: update its code by digest, publish a version, move the alias.",
    ),
    config_default(
        "alias",
        "live",
        "Lambda alias moved to the published version (created on the first deploy).",
    ),
    input(
        "before-deploy",
        "Command run once per deploy as a one-off ECS task on the new revision before the service update (e.g. python manage.py migrate); the deploy stops if it fails.",
    ),
    input(
        "before-deploy-container",
        "Container the before-deploy command runs in. Default: the one whose image is replaced.",
    ),
    config_default(
        "before-deploy-minutes",
        "30",
        "How long the before-deploy task may run (1-360).",
    ),
    input(
        "beanstalk-application",
        "Elastic Beanstalk application for a single-component run (with beanstalk-environment): a new application version, deployed to the environment.",
    ),
    input(
        "beanstalk-environment",
        "Elastic Beanstalk environment (Docker platform) the application version is deployed to.",
    ),
    input(
        "beanstalk-cname",
        "strategy: swap: the live CNAME's prefix (shop for shop.us-east-1.elasticbeanstalk.com), held by one of the two environments in beanstalk-environment.",
    ),
    config_default(
        "bundle",
        "image",
        "Elastic Beanstalk bundle: image (a Dockerrun.aws.json naming the pushed image by digest, with .ebextensions and .platform) | source (the build context, built on each instance).",
    ),
    input(
        "smoke-test-path",
        "A path (e.g. /health) fetched at the environment's URL (`environment-url`, `environments.<env>.url`, or an Elastic Beanstalk environment's own) right after the rollout, until it answers 2xx or 3xx or smoke-test-seconds pass; otherwise the deploy fails and is rolled back. The run says which URL it checked and what it answered.",
    ),
    with_default(
        "smoke-test-seconds",
        "60",
        "How long smoke-test-path may take to answer 2xx or 3xx (1-900).",
    ),
    input(
        "lambda-shift",
        "Lambda: move the alias gradually, e.g. 10%/5m: that share of its invocations goes to the new version (RoutingConfig) while the alarms and the new version's Errors metric are watched for those minutes, then all of them; an error or an alarm sets the routing back.",
    ),
    input(
        "alarms",
        "CloudWatch alarm names (comma- or newline-separated; a name ending in * matches a prefix) watched during the rollout and for bake-minutes after it: one that goes to ALARM fails the deploy and rolls it back, naming the alarm and its reason. An alarm already in ALARM when the deploy starts counts once it leaves ALARM and returns.",
    ),
    input(
        "bake-minutes",
        "Minutes the alarms are watched after the rollout succeeded before the deploy is called done (0-180; needs alarms).",
    ),
    input(
        "smoke-test-event",
        "Lambda: a JSON event the new version is invoked with (RequestResponse, log tail) before the alias moves; a function error, a timeout or a status outside 2xx fails the deploy and the alias stays where it was.",
    ),
    config_default(
        "allow-yellow",
        "false",
        "Elastic Beanstalk: accept health Yellow as well as Green after the deploy.",
    ),
    with_default(
        "strategy",
        "service",
        "service (keep the service's deployment strategy) | blue-green (ECS: new tasks alongside the old before any drain) | swap (Elastic Beanstalk: beanstalk-environment names two environments; the one not holding beanstalk-cname is deployed and smoke tested, then the CNAMEs are swapped, the other kept running for a rollback by swapping back).",
    ),
    with_default(
        "wait-until",
        "completed",
        "completed | traffic-shifted (blue-green services with a long bake time).",
    ),
    with_default(
        "wait-minutes",
        "30",
        "How long to wait for the deploy's verdict, one deadline over all of it (1-360).",
    ),
    with_default(
        "poll-seconds",
        "5",
        "Seconds between looks at the deployment (0.1-15, jittered).",
    ),
    with_default("rollback", "true", "Roll back on timeout or cancellation."),
    input(
        "keep-revisions",
        "After a success, remove what fastdeploy made beyond the newest N: ECS task definition revisions (deregistered), Lambda versions, Elastic Beanstalk application versions with their S3 bundles; never what serves, what a rollback would put back, or what an alias or environment uses. Default: keep all.",
    ),
    input(
        "environment-url",
        "URL of the deployed environment, shown in GitHub deployments and Slack.",
    ),
    secret(
        "slack-webhook-url",
        "Slack incoming webhook URL: the result is posted there.",
    ),
    secret(
        "slack-bot-token",
        "Slack bot token: a message is posted when the run starts and updated with the result.",
    ),
    input("slack-channel", "Slack channel for the bot token."),
    with_default("slack-on", "always", "always | failure | success."),
    secret(
        "github-token",
        "Token for GitHub deployments and the pull request comment. Default: GITHUB_TOKEN.",
    ),
    with_default("dry-run", "false", "Print the plan and do nothing else."),
];

/// The check ids `ignore-checks` accepts: the Dockerfile checks, the build
/// context checks and the deploy-time doctor's. Kept here, with the input, so
/// settings validate it without reaching into the checks or deploy stages; a
/// test in `checks` keeps this list equal to the checks that exist.
pub const CHECK_IDS: &[&str] = &[
    "DF001", "DF002", "DF003", "DF004", "DF005", "DF006", "DF007", "CTX001", "CTX002", "DEP001",
    "DEP002", "DEP003", "DEP004", "DEP005", "DEP006",
];

/// Looks up an input by name. Panics are impossible for names in [`INPUTS`];
/// callers pass literals, so a typo shows in tests at once.
pub fn spec(name: &str) -> Option<&'static InputSpec> {
    INPUTS.iter().find(|s| s.name == name)
}

/// The environment variable the runner (or `action.yml`'s `runs.env`) uses.
pub fn env_name(name: &str) -> String {
    format!(
        "{INPUT_PREFIX}{}",
        name.replace('-', "_").to_ascii_uppercase()
    )
}

/// The runner's own spelling, which keeps hyphens.
pub fn env_name_hyphenated(name: &str) -> String {
    format!("{INPUT_PREFIX}{}", name.to_ascii_uppercase())
}

/// Raw input values as strings, empty treated as unset.
#[derive(Debug, Clone, Default)]
pub struct RawInputs {
    values: BTreeMap<&'static str, String>,
}

impl RawInputs {
    /// Reads every input from an environment (a map so tests need no process
    /// environment). `INPUT_AWS_REGION` wins over `INPUT_AWS-REGION` when both
    /// are set and non-empty.
    pub fn from_env(env: &BTreeMap<String, String>) -> Self {
        let mut values = BTreeMap::new();
        for spec in INPUTS {
            let value = [env_name(spec.name), env_name_hyphenated(spec.name)]
                .iter()
                .filter_map(|k| env.get(k))
                .map(|v| v.trim())
                .find(|v| !v.is_empty());
            if let Some(v) = value {
                values.insert(spec.name, v.to_string());
            }
        }
        RawInputs { values }
    }

    /// Overlays values (from CLI flags); empty values are ignored.
    pub fn overlay<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Result<(), BadInput> {
        for (name, value) in pairs {
            let spec = spec(name).ok_or_else(|| BadInput::UnknownInput {
                name: name.to_string(),
            })?;
            if !value.trim().is_empty() {
                self.values.insert(spec.name, value.trim().to_string());
            }
        }
        Ok(())
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.values.insert(name, value.into());
    }

    /// The raw value, or `None` when unset or empty (defaults not applied).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value, falling back to the input's default.
    pub fn get_or_default(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| spec(name).and_then(|s| s.default))
    }

    /// Parses `true`/`false` (only those, as the Actions YAML 1.2 core schema
    /// writes them), naming the input otherwise.
    pub fn bool(&self, name: &str) -> Result<bool, BadInput> {
        match self.get_or_default(name) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(BadInput::invalid(name, other, "true or false")),
        }
    }

    /// Parses a whole number within `range`.
    pub fn u64_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, BadInput> {
        let Some(raw) = self.get_or_default(name) else {
            return Ok(None);
        };
        let expected = || format!("a whole number from {} to {}", range.start(), range.end());
        let n: u64 = raw
            .parse()
            .map_err(|_| BadInput::invalid(name, raw, &expected()))?;
        if !range.contains(&n) {
            return Err(BadInput::invalid(name, raw, &expected()));
        }
        Ok(Some(n))
    }

    /// Parses a number of seconds within `min..=max` (decimals allowed).
    pub fn seconds_in(&self, name: &str, min: f64, max: f64) -> Result<Option<f64>, BadInput> {
        let Some(raw) = self.get_or_default(name) else {
            return Ok(None);
        };
        let expected = || format!("a number of seconds from {min} to {max}");
        let n: f64 = raw
            .parse()
            .map_err(|_| BadInput::invalid(name, raw, &expected()))?;
        if !n.is_finite() || n < min || n > max {
            return Err(BadInput::invalid(name, raw, &expected()));
        }
        Ok(Some(n))
    }

    /// Parses one of `choices`, naming them all in the error.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, BadInput> {
        let Some(raw) = self.get_or_default(name) else {
            return Ok(None);
        };
        choices
            .iter()
            .copied()
            .find(|c| *c == raw)
            .map(Some)
            .ok_or_else(|| BadInput::invalid(name, raw, &choices.join(" | ")))
    }

    /// Splits a comma- or newline-separated list, dropping empty items.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get_or_default(name)
            .map(split_list)
            .unwrap_or_default()
    }

    /// Secret values that are set, for masking.
    pub fn secrets(&self) -> Vec<&str> {
        INPUTS
            .iter()
            .filter(|s| s.secret)
            .filter_map(|s| self.get(s.name))
            .collect()
    }
}

/// Splits `a, b\nc` into `["a", "b", "c"]`.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The public image `action.yml` runs (published by the release workflow).
pub const ACTION_IMAGE: &str = "docker://ghcr.io/fastdeploy/fastdeploy:v1";

/// Renders `action.yml` from [`INPUTS`] and [`crate::gha::OUTPUTS`]. The file
/// in the repository is this text; a test fails when they differ
/// (`FASTDEPLOY_BLESS=1 cargo test action_yml` rewrites it).
pub fn render_action_yml() -> String {
    use std::fmt::Write;
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut y = String::new();
    y.push_str("# Generated from src/settings/inputs.rs and src/gha.rs; edit those, then run\n");
    y.push_str("# `FASTDEPLOY_BLESS=1 cargo test --test it action_yml`.\n");
    y.push_str("name: fastdeploy\n");
    y.push_str("description: Build, push to Amazon ECR and deploy to ECS, Lambda or Elastic Beanstalk in one step, with a verdict you can trust.\n");
    y.push_str("author: fastdeploy\n");
    y.push_str("branding:\n  icon: upload-cloud\n  color: orange\n");
    y.push_str("inputs:\n");
    for s in INPUTS {
        let _ = writeln!(y, "  {}:", s.name);
        let _ = writeln!(y, "    description: {}", q(s.description));
        let _ = writeln!(y, "    required: false");
        if let Some(d) = s.default.filter(|_| s.default_in_action) {
            let _ = writeln!(y, "    default: {}", q(d));
        }
    }
    y.push_str("outputs:\n");
    for (name, description) in crate::gha::OUTPUTS {
        let _ = writeln!(y, "  {name}:\n    description: {}", q(description));
    }
    y.push_str("runs:\n  using: docker\n");
    let _ = writeln!(y, "  image: {}", q(ACTION_IMAGE));
    y.push_str("  # Exit codes: 0 success, 1 the build or deploy failed (or was rolled back),\n");
    y.push_str("  # 2 bad input or configuration (nothing was changed).\n");
    y.push_str("  # Every input is mapped explicitly: hyphenated inputs are reported not to\n");
    y.push_str("  # reach container actions (github/docs#32671).\n");
    y.push_str("  env:\n");
    for s in INPUTS {
        let _ = writeln!(y, "    {}: ${{{{ inputs.{} }}}}", env_name(s.name), s.name);
    }
    y
}

/// The README's inputs and outputs tables (kept equal to the file by a test).
pub fn render_readme_tables() -> String {
    use std::fmt::Write;
    let cell = |s: &str| s.replace('|', "\\|");
    let mut md = String::from("| input | default | description |\n|---|---|---|\n");
    for s in INPUTS {
        let _ = writeln!(
            md,
            "| `{}` | {} | {}{} |",
            s.name,
            s.default.map(|d| format!("`{d}`")).unwrap_or_default(),
            cell(s.description),
            if s.secret { " (secret: masked)" } else { "" }
        );
    }
    md.push_str("\n| output | description |\n|---|---|\n");
    for (name, d) in crate::gha::OUTPUTS {
        let _ = writeln!(md, "| `{name}` | {} |", cell(d));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_both_spellings_and_treats_empty_as_unset() {
        let raw = RawInputs::from_env(&env(&[
            ("INPUT_AWS-REGION", "eu-west-1"),
            ("INPUT_WAIT_MINUTES", ""),
        ]));
        assert_eq!(raw.get("aws-region"), Some("eu-west-1"));
        assert_eq!(raw.get("wait-minutes"), None);
        assert_eq!(raw.get_or_default("wait-minutes"), Some("30"));

        let raw = RawInputs::from_env(&env(&[
            ("INPUT_AWS-REGION", "eu-west-1"),
            ("INPUT_AWS_REGION", "us-east-1"),
        ]));
        assert_eq!(
            raw.get("aws-region"),
            Some("us-east-1"),
            "the snake-case mapping from runs.env wins"
        );

        let raw = RawInputs::from_env(&env(&[
            ("INPUT_AWS_REGION", "  "),
            ("INPUT_AWS-REGION", "eu-west-2"),
        ]));
        assert_eq!(
            raw.get("aws-region"),
            Some("eu-west-2"),
            "blank is unset, so the other spelling is used"
        );
    }

    #[test]
    fn booleans_accept_only_true_and_false() {
        let raw = RawInputs::from_env(&env(&[("INPUT_ROLLBACK", "yes")]));
        let err = raw.bool("rollback").unwrap_err().to_string();
        assert!(
            err.contains("rollback") && err.contains("true or false"),
            "{err}"
        );
        let raw = RawInputs::from_env(&env(&[("INPUT_DRY_RUN", "true")]));
        assert!(raw.bool("dry-run").unwrap());
        assert!(raw.bool("rollback").unwrap(), "default true");
    }

    #[test]
    fn numbers_are_range_checked_and_named() {
        let raw = RawInputs::from_env(&env(&[("INPUT_WAIT_MINUTES", "0")]));
        let err = raw.u64_in("wait-minutes", 1..=360).unwrap_err().to_string();
        assert!(
            err.contains("wait-minutes") && err.contains("1 to 360"),
            "{err}"
        );
        let raw = RawInputs::from_env(&env(&[("INPUT_POLL_SECONDS", "20")]));
        assert!(raw.seconds_in("poll-seconds", 0.1, 15.0).is_err());
        let raw = RawInputs::from_env(&env(&[("INPUT_POLL_SECONDS", "NaN")]));
        assert!(raw.seconds_in("poll-seconds", 0.1, 15.0).is_err());
    }

    #[test]
    fn choices_list_what_is_accepted() {
        let raw = RawInputs::from_env(&env(&[("INPUT_BUILDER", "kaniko")]));
        let err = raw
            .choice("builder", &["auto", "buildx", "buildah", "codebuild"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auto | buildx | buildah | codebuild"), "{err}");
    }

    #[test]
    fn lists_split_on_commas_and_newlines() {
        assert_eq!(
            split_list("backend, lambda\nadmin-frontend\n\n"),
            ["backend", "lambda", "admin-frontend"]
        );
    }

    #[test]
    fn every_input_name_is_kebab_case_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for s in INPUTS {
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                s.name
            );
            assert!(seen.insert(s.name), "duplicate input {}", s.name);
        }
    }
}
