//! One component's build: its context and Dockerfile inside the workspace,
//! build args, secrets, platforms, repository, tags, labels and cache refs,
//! every key read through the settings' one precedence rule.

use std::collections::BTreeMap;

use super::*;
use crate::settings::SecretSource;
use crate::settings::component::{ComponentKeys, Lines, Source, Sourced};

/// The component's plan: its build, and its deploy target in this run.
pub fn plan(
    settings: &Settings,
    kind: BuilderKind,
    keys: &ComponentKeys<'_>,
) -> Result<ComponentPlan, BadInput> {
    let build = build_plan(settings, kind, keys)?;
    let (targets, no_deploy_reason) = super::target::plan(settings, keys)?;
    let (targets, order): (Vec<TargetPlan>, Vec<u32>) = targets.into_iter().unzip();
    let order = if order.iter().any(|o| *o != 1) {
        order
    } else {
        Vec::new()
    };
    let mut targets = targets.into_iter();
    Ok(ComponentPlan {
        name: keys.name.to_string(),
        build,
        deploy: targets.next(),
        also: targets.collect(),
        no_deploy_reason,
        promote_from: None,
        order,
    })
}

fn build_plan(
    settings: &Settings,
    kind: BuilderKind,
    keys: &ComponentKeys<'_>,
) -> Result<BuildPlan, BadInput> {
    let (context, dockerfile) = paths(settings, keys)?;
    let repository = repository(settings, keys)?;
    let push = settings.target.pushes();
    Ok(BuildPlan {
        context,
        dockerfile,
        target: keys.value("target")?,
        build_args: keys.build_args()?,
        platforms: platforms(keys)?,
        cache: cache(settings, &repository, kind, push),
        tags: tags(settings),
        labels: labels(settings, keys.name),
        repository,
        push,
        secrets: build_secrets(settings, kind, keys)?,
    })
}

/// The build context (inside the workspace) and the Dockerfile.
fn paths(settings: &Settings, keys: &ComponentKeys<'_>) -> Result<(PathBuf, PathBuf), BadInput> {
    let ws = &settings.context.workspace;
    let given = keys.get::<String>("context")?;
    let relative = given
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_else(|| ".".into());
    let context = normalize(&ws.join(&relative));
    if !context.starts_with(normalize(ws)) {
        return Err(match (given.map(|g| g.source), &settings.config_path) {
            (Some(Source::Config(key)), Some(path)) => BadInput::Config {
                path: path.clone(),
                message: format!(
                    "`{key}` is {relative:?}, outside the workspace; use a directory inside the repository"
                ),
            },
            _ => BadInput::invalid("context", &relative, "a directory inside the workspace"),
        });
    }
    let dockerfile = match keys.value::<String>("dockerfile")? {
        Some(d) => normalize(&ws.join(d)),
        None => context.join("Dockerfile"),
    };
    Ok((context, dockerfile))
}

fn platforms(keys: &ComponentKeys<'_>) -> Result<Vec<String>, BadInput> {
    let platforms = keys.value::<Vec<String>>("platforms")?.unwrap_or_default();
    match platforms.iter().find(|p| !known_platform(p)) {
        Some(p) => Err(BadInput::invalid(
            "platforms",
            p,
            "platforms such as linux/amd64,linux/arm64",
        )),
        None => Ok(platforms),
    }
}

/// An OCI platform a builder can target: `os/arch[/variant]` with an
/// architecture Go (and so BuildKit and buildah) knows.
fn known_platform(p: &str) -> bool {
    const ARCHES: [&str; 9] = [
        "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
    ];
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] | [os, arch, _] => matches!(*os, "linux" | "windows") && ARCHES.contains(arch),
        _ => false,
    }
}

/// The ECR repository: given, else `<repository name>/<component>` (or the
/// repository name alone without a config), as ECR accepts it.
fn repository(settings: &Settings, keys: &ComponentKeys<'_>) -> Result<String, BadInput> {
    let ctx = &settings.context;
    let given = keys.value::<String>("repository")?;
    let repository = match &given {
        Some(r) => r.to_ascii_lowercase(),
        None => {
            let base = ctx
                .repository
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_string)
                .or_else(|| {
                    ctx.workspace
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                })
                .unwrap_or_else(|| "app".into())
                .to_ascii_lowercase();
            let name = keys.name;
            sanitize_repository(&if keys.configured {
                format!("{base}/{name}")
            } else {
                base
            })
        }
    };
    crate::settings::config::check_repository(&repository).map_err(|m| {
        let source = match given {
            Some(_) => "",
            None => " (derived from the repository or directory name; set the `repository` input)",
        };
        BadInput::other(format!(
            "repository for component `{}`: {m}{source}",
            keys.name
        ))
    })?;
    Ok(repository)
}

/// The commit's tag, the environment's, and the branch's (not on a pull request).
fn tags(settings: &Settings) -> Vec<String> {
    let ctx = &settings.context;
    let mut tags = vec![commit_tag(&ctx.commit.sha)];
    tags.extend(settings.target.environment().map(sanitize_tag));
    if let Some(branch) = ctx.branch.as_deref().filter(|_| !ctx.is_pull_request()) {
        let t = sanitize_tag(branch);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// OCI labels: the source, the revision, when, and the component.
fn labels(settings: &Settings, name: &str) -> BTreeMap<String, String> {
    let ctx = &settings.context;
    let mut labels = BTreeMap::new();
    if let Some(repo) = &ctx.repository {
        labels.insert(
            "org.opencontainers.image.source".into(),
            format!("{}/{repo}", ctx.server_url),
        );
    }
    labels.insert(
        "org.opencontainers.image.revision".into(),
        ctx.commit.sha.clone(),
    );
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    labels.insert("org.opencontainers.image.created".into(), created);
    labels.insert("dev.fastdeploy.component".into(), name.to_string());
    labels
}

/// Registry cache: read from the branch's and the default branch's refs,
/// written to the branch's (not on a pull request, nor without a push).
fn cache(
    settings: &Settings,
    repository: &str,
    kind: BuilderKind,
    push: bool,
) -> Option<CachePlan> {
    let ctx = &settings.context;
    settings.cache.then(|| {
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
                .unwrap_or_else(|| default_cache_repository(repository, kind)),
            to_tag: (push && !ctx.is_pull_request()).then(|| cache_tag(branch)),
            from_tags,
        }
    })
}

/// The component's build secrets, each from a source the chosen builder can
/// read: the step's environment or workspace locally, Parameter Store or
/// Secrets Manager on CodeBuild. Settings checked that variables are set and
/// files exist.
fn build_secrets(
    settings: &Settings,
    kind: BuilderKind,
    keys: &ComponentKeys<'_>,
) -> Result<Vec<BuildSecret>, BadInput> {
    let Some(Sourced {
        value: Lines(lines),
        source,
    }) = keys.get::<Lines>("build-secrets")?
    else {
        return Ok(Vec::new());
    };
    let mut secrets: Vec<BuildSecret> = Vec::new();
    for line in lines {
        let (id, from) = crate::settings::parse_build_secret(&line).map_err(|accepted| {
            BadInput::other(format!("{source} has {line:?}, but it accepts {accepted}"))
        })?;
        let from = secret_for(settings, kind, &source, &line, &id, from)?;
        if secrets.iter().any(|s| s.id == id) {
            return Err(BadInput::other(format!(
                "{source} names build secret `{id}` twice; keep one line per id"
            )));
        }
        secrets.push(BuildSecret { id, source: from });
    }
    Ok(secrets)
}

/// Where build secret `id` comes from, when the builder can read it there.
fn secret_for(
    settings: &Settings,
    kind: BuilderKind,
    source: &Source,
    line: &str,
    id: &str,
    from: SecretSource,
) -> Result<SecretSource, BadInput> {
    let remote = kind == BuilderKind::Codebuild;
    match from {
        SecretSource::Env(_) | SecretSource::File(_) if remote => Err(BadInput::other(format!(
            "{source}: build secret `{id}` comes from the runner ({line}), which CodeBuild cannot read; store it in Parameter Store or Secrets Manager and write `{id}=ssm:/path` or `{id}=secretsmanager:name`"
        ))),
        SecretSource::ParameterStore(_) | SecretSource::SecretsManager(_) if !remote => {
            Err(BadInput::other(format!(
                "{source}: build secret `{id}` comes from {line}, which only CodeBuild resolves; with builder {} use `{id}=ENV_VAR` or `{id}=file:PATH`",
                kind.as_str()
            )))
        }
        SecretSource::File(path) => Ok(SecretSource::File(
            normalize(&settings.context.workspace.join(path))
                .display()
                .to_string(),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::known_platform;

    #[test]
    fn platforms_are_os_and_an_architecture_builders_know() {
        for good in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "windows/amd64",
            "linux/arm64/v8",
        ] {
            assert!(known_platform(good), "{good}");
        }
        for bad in [
            "linux/amd65",
            "amd64",
            "darwin/arm64",
            "linux/",
            "linux/arm64/v8/x",
            "arm64/linux",
        ] {
            assert!(!known_platform(bad), "{bad}");
        }
    }
}
