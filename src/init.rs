//! `fastdeploy init`: looks at a repository and writes a starting
//! `fastdeploy.yml` and `.github/workflows/deploy.yml`.
//!
//! One component per Dockerfile found (skipping dependency and build
//! directories), with its context and target stage. With `--cluster` (and AWS
//! credentials) it reads the cluster's services and matches each to the
//! component whose repository its task definition's image uses, as
//! `ecspresso init` does from a live service. It never overwrites a file
//! without `--force`. What it writes passes `fastdeploy plan`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::error::BadInput;
use crate::plan::sanitize_repository;

/// Directories never searched for Dockerfiles: dependencies, virtualenvs,
/// build output and VCS data.
const SKIP_DIRS: &[&str] = &[
    "node_modules",
    ".venv",
    "venv",
    ".git",
    "vendor",
    "target",
    "dist",
    "build",
    "__pycache__",
    ".tox",
    ".terraform",
    ".next",
];
/// How deep to look (a monorepo's services are rarely deeper).
const MAX_DEPTH: usize = 6;

/// What `init` was asked.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub workspace: PathBuf,
    /// ECS cluster whose services are matched to components.
    pub cluster: Option<String>,
    pub force: bool,
    /// `owner/name` (from `GITHUB_REPOSITORY` or the directory name), for repository names.
    pub repository: Option<String>,
}

/// A component found in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// Relative to the workspace (`.` for the root).
    pub context: String,
    /// Relative path, when not `<context>/Dockerfile`.
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub repository: String,
    /// ECS service and container matched with `--cluster`.
    pub service: Option<(String, String)>,
    /// Further places the same image runs (another service, an EventBridge
    /// rule, a Scheduler schedule): proposed together as `targets:`.
    pub also: Vec<Place>,
    /// That container's environment (name, value) and secrets (name, the
    /// config's reference), as the service runs them.
    pub env: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
}

/// A place a component's image runs besides its first service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The item's key: `service`, `rule` or `schedule`.
    pub key: &'static str,
    pub name: String,
    /// The container running the image.
    pub container: String,
    /// The schedule's group, when not `default`.
    pub group: Option<String>,
}

/// The Dockerfiles under `root`, relative, sorted, skipping [`SKIP_DIRS`].
pub fn dockerfiles(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if depth < MAX_DEPTH
                    && !SKIP_DIRS.contains(&name.as_str())
                    && !name.starts_with('.')
                {
                    walk(root, &e.path(), depth + 1, out);
                }
            } else if kind.is_file()
                && (name == "Dockerfile" || name.ends_with(".Dockerfile") || name.starts_with("Dockerfile."))
                // `Dockerfile.dockerignore` is BuildKit's ignore file for that Dockerfile.
                && !name.ends_with(".dockerignore")
                && let Ok(rel) = e.path().strip_prefix(root)
            {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, 0, &mut out);
    out.sort();
    out
}

/// A component per Dockerfile, named after its directory (or the
/// Dockerfile's suffix), with the final stage as target when it is named.
pub fn components(root: &Path, repository: &str) -> Vec<Found> {
    let base = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_ascii_lowercase();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for rel in dockerfiles(root) {
        let dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let file = rel
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let suffix = file
            .strip_prefix("Dockerfile.")
            .or_else(|| file.strip_suffix(".Dockerfile"))
            .map(str::to_string);
        let dir_name = dir.file_name().map(|d| d.to_string_lossy().to_string());
        let raw_name = match (&suffix, &dir_name) {
            (Some(s), Some(d)) => format!("{d}-{s}"),
            (Some(s), None) => s.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "app".to_string(),
        };
        let mut name: String = raw_name
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name = name.trim_matches('-').to_string();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            name = "app".into();
        }
        name.truncate(64);
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            name = format!("{name}-{n}");
        }
        let context = if dir.as_os_str().is_empty() {
            ".".to_string()
        } else {
            dir.display().to_string()
        };
        let dockerfile = (file != "Dockerfile").then(|| rel.display().to_string());
        let target = crate::checks::dockerfile::load(&root.join(&rel))
            .ok()
            .and_then(|df| {
                df.stages()
                    .last()
                    .and_then(|s| s.name.clone())
                    .filter(|_| df.stages().len() > 1)
            });
        let repository = sanitize_repository(&format!("{base}/{name}"));
        out.push(Found {
            name,
            context,
            dockerfile,
            target,
            repository,
            service: None,
            also: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
        });
    }
    out
}

/// The ECR repository path of an image reference
/// (`123.dkr.ecr.eu-west-1.amazonaws.com/acme/backend:1` → `acme/backend`).
pub fn image_repository(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let (host, path) = without_digest.split_once('/')?;
    if !host.contains('.') && !host.contains(':') && host != "localhost" {
        return None;
    }
    let path = match path.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p,
        _ => path,
    };
    Some(path.to_string())
}

/// Matches the cluster's services to components by the repositories their
/// task definitions' containers use.
pub async fn match_services(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    found: &mut [Found],
) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let mut notes = Vec::new();
    let mut arns = Vec::new();
    let mut pages = ecs.list_services().cluster(cluster).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            crate::aws::classify(&e).explain("ecs:ListServices", &format!("ECS cluster {cluster}"))
        })?;
        arns.extend(page.service_arns().iter().cloned());
    }
    for chunk in arns.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .with_context(|| {
                format!("describing the services of cluster {cluster} (ecs:DescribeServices)")
            })?;
        for service in out.services() {
            let name = service.service_name().unwrap_or_default().to_string();
            let Some(td) = service.task_definition() else {
                continue;
            };
            let described = ecs
                .describe_task_definition()
                .task_definition(td)
                .send()
                .await
                .with_context(|| format!("describing {td} (ecs:DescribeTaskDefinition)"))?;
            let containers = described
                .task_definition()
                .map(|t| t.container_definitions().to_vec())
                .unwrap_or_default();
            match component_for(found, &containers) {
                Some((i, c, repo)) if found[i].service.is_some() || !found[i].also.is_empty() => {
                    let container = c.name().unwrap_or_default().to_string();
                    notes.push(format!(
                        "service {name} runs {repo} too, in container {container}: component {} gets `targets:`",
                        found[i].name
                    ));
                    found[i].also.push(Place {
                        key: "service",
                        name,
                        container,
                        group: None,
                    });
                }
                Some((i, c, repo)) => {
                    let container = c.name().unwrap_or_default().to_string();
                    notes.push(format!(
                        "service {name} runs {repo} in container {container}: component {}",
                        found[i].name
                    ));
                    found[i].repository = repo;
                    found[i].service = Some((name, container));
                    found[i].env = c
                        .environment()
                        .iter()
                        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                        .collect();
                    found[i].secrets = c
                        .secrets()
                        .iter()
                        .map(|s| (s.name().to_string(), reference_of(s.value_from())))
                        .collect();
                }
                None => notes.push(format!(
                    "service {name}: no component builds the images its task definition uses"
                )),
            }
        }
    }
    Ok(notes)
}

/// The component whose image one of `containers` runs: by repository, or
/// by a repository ending in the component's name.
fn component_for<'c>(
    found: &[Found],
    containers: &'c [aws_sdk_ecs::types::ContainerDefinition],
) -> Option<(usize, &'c aws_sdk_ecs::types::ContainerDefinition, String)> {
    containers.iter().find_map(|c| {
        let repo = image_repository(c.image()?)?;
        let i = found
            .iter()
            .position(|f| f.repository == repo || repo.ends_with(&format!("/{}", f.name)))?;
        Some((i, c, repo))
    })
}

/// The containers of task definition `td` (any revision), read from ECS.
async fn containers_of(
    ecs: &aws_sdk_ecs::Client,
    td: &str,
) -> anyhow::Result<Vec<aws_sdk_ecs::types::ContainerDefinition>> {
    use anyhow::Context;
    let described = ecs
        .describe_task_definition()
        .task_definition(td)
        .send()
        .await
        .with_context(|| format!("describing {td} (ecs:DescribeTaskDefinition)"))?;
    Ok(described
        .task_definition()
        .map(|t| t.container_definitions().to_vec())
        .unwrap_or_default())
}

/// EventBridge rules (default event bus) and Scheduler schedules whose ECS
/// target runs a component's image: proposed under its `targets:`. What
/// cannot be read is a note, not an error: the config is still written.
pub async fn match_triggers(
    clients: (
        &aws_sdk_ecs::Client,
        &aws_sdk_eventbridge::Client,
        &aws_sdk_scheduler::Client,
    ),
    found: &mut [Found],
) -> Vec<String> {
    let (ecs, events, scheduler) = clients;
    let mut notes = Vec::new();
    let mut runs: Vec<(&'static str, String, Option<String>, String)> = Vec::new();
    match rules_running(events).await {
        Ok(rules) => runs.extend(rules.into_iter().map(|(name, td)| ("rule", name, None, td))),
        Err(e) => notes.push(format!(
            "EventBridge rules not read ({}): none proposed",
            crate::error::chain_message(&e)
        )),
    }
    match schedules_running(scheduler).await {
        Ok(s) => runs.extend(
            s.into_iter()
                .map(|(group, name, td)| ("schedule", name, group, td)),
        ),
        Err(e) => notes.push(format!(
            "Scheduler schedules not read ({}): none proposed",
            crate::error::chain_message(&e)
        )),
    }
    for (key, name, group, td) in runs {
        let Ok(containers) = containers_of(ecs, &td).await else {
            notes.push(format!(
                "{key} {name} runs {td}, which cannot be read: not proposed"
            ));
            continue;
        };
        if let Some((i, c, repo)) = component_for(found, &containers) {
            let container = c.name().unwrap_or_default().to_string();
            notes.push(format!(
                "{key} {name} runs {repo} in container {container}: component {} gets `targets:`",
                found[i].name
            ));
            found[i].also.push(Place {
                key,
                name,
                container,
                group,
            });
        }
    }
    notes
}

/// Each rule of the default event bus with an ECS target: (rule, task definition).
async fn rules_running(
    events: &aws_sdk_eventbridge::Client,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = events
            .list_rules()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                crate::aws::classify(&e).explain("events:ListRules", "the default event bus")
            })?;
        for rule in page.rules() {
            let Some(name) = rule.name() else { continue };
            let targets = events
                .list_targets_by_rule()
                .rule(name)
                .send()
                .await
                .map_err(|e| {
                    crate::aws::classify(&e)
                        .explain("events:ListTargetsByRule", &format!("rule {name}"))
                })?;
            out.extend(targets.targets().iter().filter_map(|t| {
                Some((
                    name.to_string(),
                    t.ecs_parameters.as_ref()?.task_definition_arn.clone(),
                ))
            }));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Each schedule with an ECS target: (group unless `default`, schedule, task definition).
async fn schedules_running(
    scheduler: &aws_sdk_scheduler::Client,
) -> anyhow::Result<Vec<(Option<String>, String, String)>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = scheduler
            .list_schedules()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                crate::aws::classify(&e)
                    .explain("scheduler:ListSchedules", "the account's schedules")
            })?;
        for s in page.schedules() {
            let (Some(name), group) = (s.name(), s.group_name().unwrap_or("default")) else {
                continue;
            };
            let got = scheduler
                .get_schedule()
                .name(name)
                .group_name(group)
                .send()
                .await
                .map_err(|e| {
                    crate::aws::classify(&e)
                        .explain("scheduler:GetSchedule", &format!("schedule {name}"))
                })?;
            let td = got
                .target
                .and_then(|t| t.ecs_parameters)
                .map(|e| e.task_definition_arn);
            if let Some(td) = td {
                let group = (group != "default").then(|| group.to_string());
                out.push((group, name.to_string(), td));
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// A secret's `valueFrom` as the config spells it: `ssm:/path` for a
/// parameter (by ARN or name), `secretsmanager:<arn>[:json-key]` for a secret.
pub fn reference_of(value_from: &str) -> String {
    if let Some(rest) = value_from
        .strip_prefix("arn:")
        .filter(|r| r.contains(":ssm:"))
        .and_then(|r| r.split_once(":parameter"))
    {
        return format!("ssm:{}", rest.1);
    }
    if value_from.contains(":secretsmanager:") {
        // arn:aws:secretsmanager:r:a:secret:name-AbCdEf[:json-key:stage:version]
        let parts: Vec<&str> = value_from.split(':').collect();
        let arn = parts.iter().take(7).copied().collect::<Vec<_>>().join(":");
        return match parts.get(7).filter(|k| !k.is_empty()) {
            Some(key) => format!("secretsmanager:{arn}:{key}"),
            None => format!("secretsmanager:{arn}"),
        };
    }
    format!("ssm:{value_from}")
}

/// A component's environment and secrets under its override, as the
/// service runs them; a value whose name looks secret is left out with a
/// hint to move it to `secrets`.
fn render_runtime(y: &mut String, f: &Found) {
    if !f.env.is_empty() {
        let _ = writeln!(
            y,
            "        env:                 # as the service runs them now; edit here from now on"
        );
        for (name, value) in &f.env {
            if crate::settings::runtime::looks_secret(name) {
                let _ = writeln!(
                    y,
                    "          # {name}: (its value is not copied here: the name looks secret; store it in SSM or Secrets Manager and list it under `secrets`)"
                );
            } else {
                let _ = writeln!(
                    y,
                    "          {}: '{}'",
                    yaml_str(name),
                    value.replace('\'', "''")
                );
            }
        }
    }
    if !f.secrets.is_empty() {
        let _ = writeln!(
            y,
            "        secrets:             # references only; fastdeploy never reads the values"
        );
        for (name, reference) in &f.secrets {
            let _ = writeln!(y, "          {}: {}", yaml_str(name), yaml_str(reference));
        }
    }
}

/// Where a component deploys: `service` and `container` for one service,
/// `targets:` when its image runs in several places.
fn render_places(y: &mut String, f: &Found) {
    if f.also.is_empty()
        && let Some((service, container)) = &f.service
    {
        let _ = writeln!(y, "        service: {}", yaml_str(service));
        let _ = writeln!(y, "        container: [{}]", yaml_str(container));
        return;
    }
    let _ = writeln!(
        y,
        "        targets:             # one image, every place it runs: moved together, one verdict"
    );
    let first = f.service.as_ref().map(|(name, container)| Place {
        key: "service",
        name: name.clone(),
        container: container.clone(),
        group: None,
    });
    for p in first.iter().chain(&f.also) {
        let _ = writeln!(y, "          - {}: {}", p.key, yaml_str(&p.name));
        if let Some(g) = &p.group {
            let _ = writeln!(y, "            group: {}", yaml_str(g));
        }
        let _ = writeln!(y, "            container: [{}]", yaml_str(&p.container));
    }
}

/// The `fastdeploy.yml` for what was found.
pub fn render_config(found: &[Found], cluster: Option<&str>) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `fastdeploy init`: one component per Dockerfile found. Edit freely;"
    );
    let _ = writeln!(
        y,
        "# `fastdeploy plan` shows what a run would do. Unknown keys are errors."
    );
    let _ = writeln!(y, "version: 1\n\ncomponents:");
    for f in found {
        let _ = writeln!(y, "  {}:", f.name);
        let _ = writeln!(y, "    context: {}", yaml_str(&f.context));
        if let Some(d) = &f.dockerfile {
            let _ = writeln!(y, "    dockerfile: {}", yaml_str(d));
        }
        if let Some(t) = &f.target {
            let _ = writeln!(y, "    target: {}", yaml_str(t));
        }
        let _ = writeln!(y, "    repository: {}", yaml_str(&f.repository));
        if f.service.is_none() {
            let _ = writeln!(
                y,
                "    # service: <ECS service>     # or function: <Lambda function>; without either: build and push only"
            );
        }
    }
    let _ = write!(y, "\nenvironments:\n  production:\n    branches: [main]\n");
    match cluster {
        // The services were read from this one cluster: they deploy from
        // production only, so a push to develop never updates them.
        Some(c) => {
            let _ = writeln!(y, "    cluster: {}", yaml_str(c));
            let matched: Vec<&Found> = found
                .iter()
                .filter(|f| f.service.is_some() || !f.also.is_empty())
                .collect();
            if !matched.is_empty() {
                let _ = writeln!(y, "    overrides:");
                for f in matched {
                    let _ = writeln!(y, "      {}:", f.name);
                    render_places(&mut y, f);
                    render_runtime(&mut y, f);
                }
            }
            let _ = write!(
                y,
                "  staging:\n    branches: [develop]\n    # The services above run in cluster {c}, production's: staging builds and pushes\n    \
                 # until it has its own, e.g.\n    # cluster: <staging ECS cluster>\n    # overrides:\n    #   <component>:\n    \
                 #     service: <staging service>\n"
            );
        }
        None => {
            let _ = write!(
                y,
                "    # cluster: <ECS cluster>\n  staging:\n    branches: [develop]\n    # cluster: <ECS cluster>\n"
            );
        }
    }
    y
}

/// The workflow: push to main → production, develop → staging, pull
/// requests build only, a manual run deploys where asked; one deploy per
/// environment at a time.
pub fn render_workflow() -> String {
    r#"# Written by `fastdeploy init`. Push to main deploys production, push to
# develop deploys staging, a pull request builds only (and gets a comment
# with image sizes), a manual run deploys where asked.
name: deploy
on:
  push:
    branches: [main, develop]
  pull_request:
  workflow_dispatch:
    inputs:
      environment:
        description: Environment to deploy to
        type: choice
        options: [staging, production]
        required: true
permissions:
  contents: read
  id-token: write        # fastdeploy assumes role-to-assume with the job's OIDC token
  deployments: write     # GitHub deployments on the Environments page
  pull-requests: write   # the build-size comment on pull requests
concurrency:
  # One deploy per environment at a time (a manual run and a push to the
  # same environment included); a second one waits its turn. Pull requests
  # build only, one group per pull request.
  group: deploy-${{ github.event.inputs.environment || (github.ref_name == 'main' && 'production') || (github.ref_name == 'develop' && 'staging') || github.ref }}
  cancel-in-progress: false
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: deploy
        uses: fastdeploy/fastdeploy@v1
        with:
          role-to-assume: ${{ vars.AWS_ROLE_ARN }}
          aws-region: ${{ vars.AWS_REGION }}
          slack-webhook-url: ${{ secrets.SLACK_WEBHOOK_URL }}
          github-token: ${{ github.token }}
"#
    .to_string()
}

fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Writes the files; refuses to overwrite without `force`. Returns what was written.
pub fn write_files(
    opts: &InitOptions,
    config: &str,
    workflow: &str,
) -> Result<Vec<PathBuf>, BadInput> {
    let files = [
        (
            opts.workspace
                .join(crate::settings::config::DEFAULT_CONFIG_FILE),
            config,
        ),
        (
            opts.workspace.join(".github/workflows/deploy.yml"),
            workflow,
        ),
    ];
    if !opts.force
        && let Some((path, _)) = files.iter().find(|(p, _)| p.exists())
    {
        return Err(BadInput::other(format!(
            "{} already exists; fastdeploy init does not overwrite files: move it away, or run `fastdeploy init --force`",
            path.display()
        )));
    }
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| BadInput::other(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| BadInput::other(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_repositories_are_read_from_registry_references() {
        assert_eq!(
            image_repository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/backend:1")
                .as_deref(),
            Some("acme/backend")
        );
        assert_eq!(
            image_repository("127.0.0.1:5000/acme/api@sha256:abc").as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            image_repository("nginx:1.27"),
            None,
            "a Docker Hub name is no repository of ours"
        );
    }

    #[test]
    fn yaml_values_are_quoted_only_when_needed() {
        assert_eq!(yaml_str("backend"), "backend");
        assert_eq!(yaml_str("on"), "'on'");
        assert_eq!(yaml_str("it's"), "'it''s'");
    }
}
