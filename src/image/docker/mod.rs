//! docker buildx: commands built as values, digest from `--metadata-file`,
//! cached/executed steps from `--progress=rawjson`.
//!
//! [`build_command`] is pure (CodeBuild renders the same argument list into
//! its buildspec). [`probe`] asks docker which builders there are (the plan
//! chooses); [`prepare_builder`] creates the planned builder when it must,
//! before anything is built; [`build`] runs one build with a per-build
//! `DOCKER_CONFIG` holding the registry's credentials and reads its results.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

mod progress;

pub use progress::RawProgress;

use super::{BuildOptions, BuildRequest, Steps};
use crate::image::registry::RegistryAuth;
use crate::plan::{BuildxBuilder, BuildxChoice, DEFAULT_BUILDKIT_IMAGE, DockerProbe};
use crate::process::{CommandSpec, Finished, Runner};

/// The builder fastdeploy creates when the default (`docker` driver) cannot
/// export a registry cache or build several platforms.
pub const BUILDER_NAME: &str = "fastdeploy";

/// Where the metadata file of a build goes.
pub fn metadata_path(work_dir: &Path) -> PathBuf {
    work_dir.join("buildx-metadata.json")
}

/// `docker buildx build ...` for one component. Pure: the same request gives
/// the same arguments. `builder` names the buildx builder (`None`: the
/// current one).
pub fn build_command(req: &BuildRequest<'_>, docker: &str, builder: Option<&str>) -> CommandSpec {
    let plan = req.plan;
    let mut cmd = CommandSpec::new(docker).args(["buildx", "build"]);
    if let Some(b) = builder {
        cmd = cmd.args(["--builder", b]);
    }
    cmd = cmd.arg("--file").arg(plan.dockerfile.display().to_string());
    if let Some(t) = &plan.target {
        cmd = cmd.args(["--target", t]);
    }
    for (k, v) in &plan.build_args {
        cmd = cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    for s in &plan.secrets {
        // Where the value is, never the value: buildx reads it itself.
        cmd = cmd.arg("--secret").arg(secret_flag(s));
    }
    if !plan.platforms.is_empty() {
        cmd = cmd.arg("--platform").arg(plan.platforms.join(","));
    }
    for (k, v) in &plan.labels {
        cmd = cmd.arg("--label").arg(format!("{k}={v}"));
    }
    for r in req.refs() {
        cmd = cmd.args(["--tag", &r]);
    }
    // Attestations turn a single-platform push into an index, which Lambda
    // and Inspector mishandle: off unless asked for.
    cmd = cmd.arg(if req.provenance {
        "--provenance=mode=max"
    } else {
        "--provenance=false"
    });
    for from in req.cache_from_refs() {
        cmd = cmd
            .arg("--cache-from")
            .arg(format!("type=registry,ref={from}"));
    }
    if let Some(to) = req.cache_to_ref() {
        // ECR needs an image manifest with OCI media types for cache
        // manifests; ignore-error keeps a cache hiccup from failing the build.
        cmd =
            cmd.arg("--cache-to").arg(format!("type=registry,ref={to},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"));
    }
    cmd = cmd.arg(if plan.push {
        "--output=type=image,push=true"
    } else {
        "--output=type=image,push=false"
    });
    cmd = cmd
        .arg("--metadata-file")
        .arg(metadata_path(req.work_dir).display().to_string());
    cmd.arg("--progress=rawjson")
        .arg(plan.context.display().to_string())
}

/// `--secret`'s value for buildx and buildah (they read the same form):
/// `id=<id>,env=<VAR>` or `id=<id>,src=<path>`. On CodeBuild a Parameter
/// Store or Secrets Manager secret arrives as the variable
/// [`secret_variable`] names.
pub fn secret_flag(s: &crate::plan::BuildSecret) -> String {
    use crate::settings::SecretSource;
    match &s.source {
        SecretSource::Env(var) => format!("id={},env={var}", s.id),
        SecretSource::File(path) => format!("id={},src={path}", s.id),
        SecretSource::ParameterStore(_) | SecretSource::SecretsManager(_) => {
            format!("id={},env={}", s.id, secret_variable(&s.id))
        }
    }
}

/// The CodeBuild environment variable a remote build secret is put in.
pub fn secret_variable(id: &str) -> String {
    let upper: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("FASTDEPLOY_SECRET_{upper}")
}

/// The builder a build runs on where nothing can be probed (CodeBuild's
/// docker, which lacks the containerd image store): the `buildx-builder`
/// input when given; a docker-container builder when the job needs one
/// (registry cache export, several platforms); else the current one.
pub fn builder_for(req: &BuildRequest<'_>) -> Option<String> {
    if let Some(b) = req.buildx_builder {
        return Some(b.to_string());
    }
    (req.cache_to_ref().is_some() || req.plan.platforms.len() > 1).then(|| BUILDER_NAME.to_string())
}

pub fn inspect_builder_command(docker: &str, name: &str) -> CommandSpec {
    CommandSpec::new(docker).args(["buildx", "inspect", name])
}

/// `docker buildx create` for a `docker-container` builder, from `image`
/// when given (else buildx's default, `moby/buildkit:buildx-stable-1`).
pub fn create_builder_command(docker: &str, name: &str, image: Option<&str>) -> CommandSpec {
    let mut cmd = CommandSpec::new(docker).args([
        "buildx",
        "create",
        "--name",
        name,
        "--driver",
        "docker-container",
    ]);
    if let Some(image) = image {
        cmd = cmd.arg("--driver-opt").arg(format!("image={image}"));
    }
    cmd.arg("--bootstrap")
}

/// Runs a probe command with its output captured and nothing logged:
/// `(success, stdout, stderr)`. A command that hangs (a remote builder
/// that does not answer) is given up after 30 s.
pub(crate) async fn quiet(spec: &CommandSpec) -> anyhow::Result<(bool, String, String)> {
    // Held, not entered: a wait on the builder for the command's lifetime (timings).
    let _wait = crate::timings::wait("builder");
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("`{}` did not answer in 30 s", spec.display()))?
        .with_context(|| format!("cannot start `{}`", spec.program))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// What docker says about its daemon and builders (see [`DockerProbe`]).
pub async fn probe(docker: &str, named: Option<&str>) -> DockerProbe {
    let cmd = |args: &[&str]| CommandSpec::new(docker).args(args.iter().copied());
    let (endpoint, server, buildx, current) = (
        cmd(&[
            "context",
            "inspect",
            "--format",
            "{{.Endpoints.docker.Host}}",
        ]),
        // `docker info` exits 0 when no daemon answers; `docker version` does not.
        cmd(&["version", "--format", "{{.Server.Version}}"]),
        cmd(&["buildx", "version"]),
        cmd(&["buildx", "inspect"]),
    );
    let said = |r: &anyhow::Result<(bool, String, String)>| match r {
        Ok((_, out, err)) => first_line(err)
            .or_else(|| first_line(out))
            .unwrap_or_else(|| "no answer".into()),
        Err(e) => format!("{e:#}"),
    };
    let (endpoint, server, buildx, current, named_inspect) = tokio::join!(
        quiet(&endpoint),
        quiet(&server),
        quiet(&buildx),
        quiet(&current),
        async {
            match named {
                Some(name) => Some(quiet(&inspect_builder_command(docker, name)).await),
                None => None,
            }
        }
    );
    let endpoint = match &endpoint {
        Ok((true, out, _)) if !out.trim().is_empty() => out.trim().to_string(),
        _ => "the docker CLI's default endpoint".to_string(),
    };
    let unavailable = match (&server, &buildx) {
        (Ok((true, version, _)), _) if version.trim().is_empty() => {
            Some(format!("no docker daemon answers at {endpoint}"))
        }
        (Ok((true, _, _)), Ok((true, _, _))) => None,
        (Ok((true, _, _)), b) => Some(format!(
            "docker at {endpoint} has no buildx plugin ({})",
            said(b)
        )),
        (s, _) => Some(format!(
            "no docker daemon answers at {endpoint} ({})",
            said(s)
        )),
    };
    let current = match &current {
        Ok((true, out, _)) => parse_inspect(out),
        _ => None,
    };
    let named = named_inspect.map(|r| match r {
        Ok((true, out, _)) => parse_inspect(&out)
            .ok_or_else(|| "buildx described it in a way fastdeploy cannot read".to_string()),
        other => Err(said(&other)),
    });
    // A remote BuildKit fleet (`buildx-builder` of the remote or kubernetes
    // driver) builds without a local daemon: buildx is all it needs.
    let unavailable = match (&named, &buildx) {
        (Some(Ok(b)), Ok((true, _, _))) if b.driver != "docker" => None,
        _ => unavailable,
    };
    DockerProbe {
        endpoint,
        unavailable,
        current,
        named,
    }
}

fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// A builder from `docker buildx inspect`'s text (buildx 0.10 to 0.2x
/// print the same `Name:`/`Driver:` header and worker labels; 0.13 has no
/// JSON form of it).
pub fn parse_inspect(text: &str) -> Option<BuildxBuilder> {
    let header = text.split("\nNodes:").next().unwrap_or(text);
    let field = |key: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    // Each node's `Platforms:` line, its own platform first.
    let nodes: Vec<Vec<String>> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Platforms:"))
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().trim_end_matches('*').to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .collect();
    Some(BuildxBuilder {
        name: field("Name:")?,
        driver: field("Driver:")?,
        snapshotter: text.lines().any(|l| {
            l.trim_start()
                .starts_with("org.mobyproject.buildkit.worker.snapshotter:")
        }),
        native: nodes.iter().filter_map(|n| n.first().cloned()).collect(),
        platforms: nodes.into_iter().flatten().collect(),
    })
}

/// A docker config for fastdeploy's own docker commands: the registry's
/// credentials written as `docker login` would write them (without its
/// "stored unencrypted" warning, the password never on a command line),
/// and everything of the user's config that decides where docker looks:
/// their CLI plugin directories (buildx may live in `~/.docker/cli-plugins`,
/// where Docker Desktop puts it), their builders and contexts, the current
/// context. Removed, credentials and all, when dropped.
struct DockerConfig {
    dir: PathBuf,
}

impl DockerConfig {
    fn write(
        dir: PathBuf,
        user_config: Option<&Path>,
        auth: &RegistryAuth,
    ) -> anyhow::Result<DockerConfig> {
        use base64::Engine;
        use secrecy::ExposeSecret;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = DockerConfig { dir };
        let user: serde_json::Value = user_config
            .and_then(|u| std::fs::read_to_string(u.join("config.json")).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let mut plugin_dirs: Vec<serde_json::Value> = user["cliPluginsExtraDirs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut json = serde_json::json!({});
        if let Some(user) = user_config {
            plugin_dirs.push(user.join("cli-plugins").display().to_string().into());
            // Builders live in buildx/: one created here must outlive the run.
            let _ = std::fs::create_dir_all(user.join("buildx"));
            for sub in ["buildx", "contexts"] {
                let (from, to) = (user.join(sub), config.dir.join(sub));
                if from.exists() && to.symlink_metadata().is_err() {
                    std::os::unix::fs::symlink(&from, &to).with_context(|| {
                        format!("linking {} into {}", from.display(), config.dir.display())
                    })?;
                }
            }
        }
        json["cliPluginsExtraDirs"] = plugin_dirs.into();
        if let Some(context) = user.get("currentContext") {
            json["currentContext"] = context.clone();
        }
        // Other registries keep their helpers (a private base image); this one
        // must use the credentials below, not a helper's or a store's.
        if let Some(helpers) = user.get("credHelpers").and_then(|h| h.as_object()) {
            let mut helpers = helpers.clone();
            helpers.remove(&auth.host);
            json["credHelpers"] = helpers.into();
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            auth.username,
            auth.password.expose_secret()
        ));
        json["auths"] = serde_json::json!({ auth.host.as_str(): { "auth": token } });
        let path = config.dir.join("config.json");
        let mut file = std::fs::OpenOptions::new();
        file.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        let mut f = file
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut f, json.to_string().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(config)
    }

    /// Runs `spec` with this config.
    fn apply(&self, spec: CommandSpec) -> CommandSpec {
        spec.env("DOCKER_CONFIG", self.dir.display().to_string())
    }
}

impl Drop for DockerConfig {
    fn drop(&mut self) {
        // The credentials first: the links inside are removed, never followed.
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes the planned builder ready before anything is built: a builder
/// fastdeploy creates is created here (once per runner: a later run finds
/// it), so an image that cannot be pulled is bad input, named, before any
/// build or push. The registry's credentials are there for an image
/// mirrored in it.
pub async fn prepare_builder(
    choice: &BuildxChoice,
    buildkit_image: Option<&str>,
    auth: &RegistryAuth,
    docker: &str,
    user_config: Option<&Path>,
    runner: &Runner,
) -> anyhow::Result<()> {
    let (Some(name), true) = (choice.builder.as_deref(), choice.create) else {
        return Ok(());
    };
    let work = tempfile::Builder::new()
        .prefix("fastdeploy-builder-")
        .tempdir()
        .context("creating a work directory")?;
    let config = DockerConfig::write(work.path().join("docker-config"), user_config, auth)?;
    if quiet(&config.apply(inspect_builder_command(docker, name)))
        .await
        .is_ok_and(|(found, _, _)| found)
    {
        (runner.sink)(
            crate::process::Stream::Stdout,
            &format!("buildx builder `{name}` exists: reusing it"),
        );
        return Ok(());
    }
    let create = config.apply(create_builder_command(docker, name, buildkit_image));
    let created = runner.run(&create).await?;
    if created.success {
        return Ok(());
    }
    // A builder that never started is removed, so the next run tries again.
    let _ = runner
        .run(&config.apply(CommandSpec::new(docker).args(["buildx", "rm", name])))
        .await;
    // buildx ends with `ERROR: <why>` (the pull's error, for an image that is not there).
    let lines = || {
        created
            .stderr_tail
            .iter()
            .rev()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with("---"))
    };
    let said = lines()
        .find(|l| l.starts_with("ERROR"))
        .or_else(|| lines().next())
        .unwrap_or("buildx said nothing")
        .to_string();
    let image = match buildkit_image {
        Some(i) => format!("`{i}` (the `buildkit-image` input)"),
        None => format!("`{DEFAULT_BUILDKIT_IMAGE}` from Docker Hub"),
    };
    Err(crate::error::BadInput::other(format!(
        "cannot start the docker-container buildx builder `{name}` from {image}: {said}; set `buildkit-image` to a BuildKit image this runner can pull (an ECR mirror of moby/buildkit), or build on a docker daemon with the containerd image store, whose own builder exports cache"
    ))
    .into())
}

pub(super) async fn build(
    req: &BuildRequest<'_>,
    auth: &RegistryAuth,
    runner: &Runner,
    opts: &BuildOptions,
) -> anyhow::Result<(String, Option<Steps>)> {
    let docker = opts.docker.as_str();
    let config = DockerConfig::write(
        docker_config_dir(req.work_dir),
        opts.docker_config.as_deref(),
        auth,
    )?;
    // Asked with the build's own config: the plugin must be found there too.
    let version = config.apply(CommandSpec::new(docker).args(["buildx", "version"]));
    // Asked quietly: the build log starts with BuildKit's lines.
    match quiet(&version).await {
        Ok((true, _, _)) => {}
        Ok((false, _, err)) => {
            return Err(crate::error::BadInput::other(format!(
                "`{docker} buildx` is not available ({}): install the docker-buildx-plugin package or run docker/setup-buildx-action before fastdeploy, or use `builder: buildah`",
                first_line(&err).unwrap_or_default()
            ))
            .into());
        }
        Err(e) => {
            return Err(crate::error::BadInput::other(format!(
                "{e:#}; install Docker with the buildx plugin (https://docs.docker.com/build/), or use `builder: buildah` or `codebuild`"
            ))
            .into());
        }
    }
    let metadata = metadata_path(req.work_dir);
    let _ = std::fs::remove_file(&metadata);
    let spec = config.apply(build_command(req, docker, req.buildx_builder));
    let progress = Arc::new(Mutex::new(RawProgress::default()));
    let observed = super::observing_runner(runner, progress.clone(), RawProgress::observe);
    let done = observed.run(&spec).await?;
    drop(config);
    let (rest, tail, steps) = {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        (p.finish(), p.tail(), p.steps())
    };
    for line in rest {
        (runner.sink)(crate::process::Stream::Stderr, &line);
    }
    // The error quotes the readable lines (the failing step's log, BuildKit's
    // error), not the JSON buildx wrote.
    Finished {
        stderr_tail: tail,
        ..done
    }
    .check(&spec)
    .with_context(|| format!("building component `{}` with buildx", req.component))?;

    let text = std::fs::read_to_string(&metadata)
        .with_context(|| format!("buildx wrote no metadata file {}", metadata.display()))?;
    let digest =
        parse_metadata(&text).with_context(|| format!("reading {}", metadata.display()))?;
    Ok((digest, Some(steps)))
}

/// The per-build `DOCKER_CONFIG` (removed when the build ends).
pub fn docker_config_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("docker-config")
}

/// The image digest from a `--metadata-file`.
pub fn parse_metadata(json: &str) -> anyhow::Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(json).context("the buildx metadata file is not JSON")?;
    v.get("containerimage.digest")
        .and_then(|d| d.as_str())
        .or_else(|| {
            v.pointer("/containerimage.descriptor/digest")
                .and_then(|d| d.as_str())
        })
        .map(str::to_string)
        .context("the buildx metadata file has no `containerimage.digest`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BuildPlan, CachePlan};
    use std::collections::BTreeMap;

    fn plan() -> BuildPlan {
        BuildPlan {
            context: "/w/app".into(),
            dockerfile: "/w/app/Dockerfile".into(),
            target: None,
            build_args: BTreeMap::new(),
            platforms: vec![],
            repository: "shop/api".into(),
            tags: vec![
                "sha-0123456789ab".into(),
                "production".into(),
                "main".into(),
            ],
            labels: BTreeMap::from([(
                "org.opencontainers.image.revision".to_string(),
                "0123456789abcdef".to_string(),
            )]),
            cache: None,
            push: true,
            secrets: vec![],
        }
    }

    fn req<'a>(
        plan: &'a BuildPlan,
        provenance: bool,
        builder: Option<&'a str>,
    ) -> BuildRequest<'a> {
        BuildRequest {
            component: "api",
            plan,
            registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            content_tag: Some("content-abc".into()),
            provenance,
            buildx_builder: builder,
            work_dir: Path::new("/tmp/fd/api"),
            bases: None,
            force: false,
        }
    }

    fn with_cache(mut p: BuildPlan, to: Option<&str>) -> BuildPlan {
        p.cache = Some(CachePlan {
            repository: "shop/api".into(),
            from_tags: vec!["cache-feature-x".into(), "cache-main".into()],
            to_tag: to.map(str::to_string),
        });
        p
    }

    const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/api";

    #[test]
    fn plain_push_without_cache() {
        let p = plan();
        let cmd = build_command(&req(&p, false, None), "docker", None);
        let expected: Vec<String> = [
            "buildx",
            "build",
            "--file",
            "/w/app/Dockerfile",
            "--label",
            "org.opencontainers.image.revision=0123456789abcdef",
            "--tag",
            &format!("{IMAGE}:sha-0123456789ab"),
            "--tag",
            &format!("{IMAGE}:production"),
            "--tag",
            &format!("{IMAGE}:main"),
            "--tag",
            &format!("{IMAGE}:content-abc"),
            "--provenance=false",
            "--output=type=image,push=true",
            "--metadata-file",
            "/tmp/fd/api/buildx-metadata.json",
            "--progress=rawjson",
            "/w/app",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(cmd.program, "docker");
        assert_eq!(cmd.args, expected);
        assert_eq!(builder_for(&req(&p, false, None)), None);
    }

    #[test]
    fn branch_push_reads_both_caches_and_writes_the_branch_cache() {
        let p = with_cache(plan(), Some("cache-feature-x"));
        let r = req(&p, false, None);
        let builder = builder_for(&r);
        assert_eq!(
            builder.as_deref(),
            Some(BUILDER_NAME),
            "registry cache export needs a docker-container builder"
        );
        let args = build_command(&r, "docker", builder.as_deref()).args;
        assert_eq!(
            &args[2..4],
            &["--builder".to_string(), BUILDER_NAME.to_string()]
        );
        let i = args.iter().position(|a| a == "--cache-from").unwrap();
        assert_eq!(
            args[i + 1],
            format!("type=registry,ref={IMAGE}:cache-feature-x")
        );
        assert_eq!(args[i + 2], "--cache-from");
        assert_eq!(args[i + 3], format!("type=registry,ref={IMAGE}:cache-main"));
        let j = args.iter().position(|a| a == "--cache-to").unwrap();
        assert_eq!(
            args[j + 1],
            format!(
                "type=registry,ref={IMAGE}:cache-feature-x,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"
            )
        );
    }

    #[test]
    fn pull_request_reads_cache_never_writes_it_and_does_not_push() {
        let mut p = with_cache(plan(), None);
        p.push = false;
        let r = req(&p, false, None);
        assert_eq!(
            builder_for(&r),
            None,
            "reading a registry cache works on the default builder"
        );
        let args = build_command(&r, "docker", None).args;
        assert!(args.contains(&"--cache-from".to_string()));
        assert!(!args.contains(&"--cache-to".to_string()));
        assert!(args.contains(&"--output=type=image,push=false".to_string()));
        assert!(!args.contains(&"--output=type=image,push=true".to_string()));
    }

    #[test]
    fn provenance_is_opt_in() {
        let p = plan();
        assert!(
            build_command(&req(&p, false, None), "docker", None)
                .args
                .contains(&"--provenance=false".to_string())
        );
        let on = build_command(&req(&p, true, None), "docker", None).args;
        assert!(
            on.contains(&"--provenance=mode=max".to_string())
                && !on.contains(&"--provenance=false".to_string())
        );
    }

    #[test]
    fn an_existing_remote_builder_is_honoured_even_with_cache_export() {
        let p = with_cache(plan(), Some("cache-main"));
        let r = req(&p, false, Some("team-fleet"));
        assert_eq!(builder_for(&r).as_deref(), Some("team-fleet"));
        let args = build_command(&r, "/usr/bin/docker", builder_for(&r).as_deref()).args;
        assert_eq!(
            &args[2..4],
            &["--builder".to_string(), "team-fleet".to_string()]
        );
    }

    #[test]
    fn target_build_args_and_platforms() {
        let mut p = plan();
        p.target = Some("runtime".into());
        p.build_args = BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "x y".to_string()),
        ]);
        p.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        let r = req(&p, false, None);
        assert_eq!(
            builder_for(&r).as_deref(),
            Some(BUILDER_NAME),
            "several platforms need a docker-container builder"
        );
        let cmd = build_command(&r, "docker", None);
        let s = cmd.display();
        assert!(s.contains("--target runtime"), "{s}");
        assert!(s.contains("--build-arg A=1 --build-arg 'B=x y'"), "{s}");
        assert!(s.contains("--platform linux/amd64,linux/arm64"), "{s}");
    }

    #[test]
    fn the_build_config_holds_the_login_and_where_docker_looks_and_goes_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("home/.docker");
        std::fs::create_dir_all(user.join("contexts")).unwrap();
        std::fs::write(
            user.join("config.json"),
            r#"{"auths": {"ghcr.io": {"auth": "eDp5"}}, "credsStore": "desktop", "currentContext": "desktop-linux",
                "cliPluginsExtraDirs": ["/opt/plugins"], "credHelpers": {"h.example": "ecr-login", "other.example": "gcloud"}}"#,
        )
        .unwrap();
        let auth = RegistryAuth {
            host: "h.example".into(),
            username: "AWS".into(),
            password: secrecy::SecretString::from("pa55word-xyz"),
            insecure: false,
        };
        let dir = tmp.path().join("work/docker-config");
        let config = DockerConfig::write(dir.clone(), Some(&user), &auth).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        // `AWS:pa55word-xyz`, as `docker login` stores it; none of the user's own auths.
        assert_eq!(
            json["auths"],
            serde_json::json!({"h.example": {"auth": "QVdTOnBhNTV3b3JkLXh5eg=="}})
        );
        assert_eq!(
            json["cliPluginsExtraDirs"],
            serde_json::json!([
                "/opt/plugins",
                user.join("cli-plugins").display().to_string()
            ])
        );
        assert_eq!(json["currentContext"], "desktop-linux");
        assert_eq!(
            json["credHelpers"],
            serde_json::json!({"other.example": "gcloud"}),
            "this registry's helper would shadow the login"
        );
        assert!(
            json.get("credsStore").is_none(),
            "a store would shadow the login"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.join("config.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_link(dir.join("buildx")).unwrap(),
            user.join("buildx"),
            "builders outlive the run"
        );
        assert_eq!(
            std::fs::read_link(dir.join("contexts")).unwrap(),
            user.join("contexts")
        );
        let spec = config.apply(CommandSpec::new("docker").args(["buildx", "build"]));
        assert!(
            !spec.display().contains("pa55word"),
            "the password is never on a command line"
        );
        assert_eq!(
            spec.env,
            [("DOCKER_CONFIG".to_string(), dir.display().to_string())]
        );
        drop(config);
        assert!(!dir.exists(), "the credentials are gone");
        assert!(
            user.join("buildx").is_dir() && user.join("config.json").is_file(),
            "the user's config is untouched"
        );
    }

    #[test]
    fn builder_creation_uses_the_docker_container_driver() {
        assert_eq!(
            create_builder_command("docker", "fastdeploy", None).args,
            [
                "buildx",
                "create",
                "--name",
                "fastdeploy",
                "--driver",
                "docker-container",
                "--bootstrap"
            ]
        );
        let mirror = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/buildkit:v0.13.2";
        let args = create_builder_command("docker", "fastdeploy-1", Some(mirror)).args;
        assert_eq!(
            args[6..],
            [
                "--driver-opt".to_string(),
                format!("image={mirror}"),
                "--bootstrap".to_string()
            ]
        );
    }

    #[test]
    fn builders_are_read_from_buildx_inspect() {
        // The sandbox's dockerd 26.1 with the containerd image store, buildx 0.13.
        let text = fixture("versions-0.13.txt");
        let inspect = text
            .split("$ docker buildx inspect\n")
            .nth(1)
            .unwrap()
            .split("\n$ ")
            .next()
            .unwrap();
        let b = parse_inspect(inspect).unwrap();
        assert_eq!(
            (b.name.as_str(), b.driver.as_str(), b.snapshotter),
            ("default", "docker", true)
        );
        assert!(b.exports_cache());
        assert_eq!(b.native, ["linux/amd64"]);
        assert_eq!(
            b.platforms,
            [
                "linux/amd64",
                "linux/amd64/v2",
                "linux/amd64/v3",
                "linux/amd64/v4"
            ]
        );
        // This runner has no binfmt: arm64 is refused with the fix, before
        // anything is pushed.
        let facts = crate::plan::BuilderPlatforms {
            all: b.platforms.clone(),
            native: b.native.clone(),
            exact: true,
            builder: b.name.clone(),
        };
        let arm = ["linux/arm64".to_string()];
        let err = crate::plan::check_buildx_platforms(&facts, "api", &arm).unwrap_err();
        assert!(
            err.to_string().contains(
                "buildx builder `default` cannot run (its platforms: linux/amd64, linux/amd64/v2"
            ) && err
                .to_string()
                .contains("tonistiigi/binfmt --install arm64")
                && err.to_string().contains("`builder: codebuild`"),
            "{err}"
        );
        let amd = ["linux/amd64".to_string()];
        assert_eq!(
            crate::plan::check_buildx_platforms(&facts, "api", &amd).unwrap(),
            (vec![], vec![]),
            "native: nothing to say"
        );
        // A builder fastdeploy will create only has the current one's list
        // to go by: a warning, not a refusal.
        let inexact = crate::plan::BuilderPlatforms {
            exact: false,
            ..facts.clone()
        };
        let (_, warned) = crate::plan::check_buildx_platforms(&inexact, "api", &arm).unwrap();
        assert_eq!(warned.len(), 1);
        // Emulated (listed, not native; binfmt could not be registered in
        // this sandbox, so the list is built here): a notice of the cost.
        let emulating = crate::plan::BuilderPlatforms {
            all: vec![
                "linux/amd64".into(),
                "linux/arm64".into(),
                "linux/arm/v7".into(),
            ],
            ..facts
        };
        let (noticed, _) = crate::plan::check_buildx_platforms(&emulating, "api", &arm).unwrap();
        assert!(
            noticed[0].contains("linux/arm64 builds under QEMU emulation"),
            "{noticed:?}"
        );
        // A docker-container builder that has not started has no labels to show.
        let idle = "Name:          fastdeploy\nDriver:        docker-container\n\nNodes:\nName:      fastdeploy0\nEndpoint:  unix:///var/run/docker.sock\nStatus:    inactive\n";
        let b = parse_inspect(idle).unwrap();
        assert_eq!(
            (b.name.as_str(), b.driver.as_str(), b.snapshotter),
            ("fastdeploy", "docker-container", false)
        );
        assert!(b.exports_cache());
        assert_eq!(parse_inspect("ERROR: no builder \"x\" found"), None);
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/buildx")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn metadata_file_from_the_buildx_docs() {
        assert_eq!(
            parse_metadata(&fixture("metadata.json")).unwrap(),
            "sha256:19ffeab6f8bc9293ac2c3fdf94ebe28396254c993aea0b5a542cfb02e0883fa3"
        );
        assert!(
            parse_metadata("{}")
                .unwrap_err()
                .to_string()
                .contains("containerimage.digest")
        );
    }

    #[test]
    fn metadata_file_of_a_real_push_names_the_pushed_manifest() {
        // buildx 0.13 on the docker driver: the digest of the Docker v2
        // manifest it pushed, beside the cache manifest's descriptor.
        assert_eq!(
            parse_metadata(&fixture("metadata-0.13.json")).unwrap(),
            "sha256:e39e18865adcd5b933331655e5279a2d338046a4b7ec1fa85fcc71bebd956998"
        );
    }

    #[test]
    fn build_secrets_are_named_never_their_values() {
        use crate::plan::BuildSecret;
        use crate::settings::SecretSource;
        let mut p = plan();
        p.secrets = vec![
            BuildSecret {
                id: "npm".into(),
                source: SecretSource::Env("NPM_TOKEN".into()),
            },
            BuildSecret {
                id: "pip".into(),
                source: SecretSource::File("/w/app/pip.conf".into()),
            },
        ];
        let args = build_command(&req(&p, false, None), "docker", None).args;
        let at = args.iter().position(|a| a == "--secret").unwrap();
        assert_eq!(
            &args[at..at + 4],
            [
                "--secret",
                "id=npm,env=NPM_TOKEN",
                "--secret",
                "id=pip,src=/w/app/pip.conf"
            ]
        );
        assert!(
            !args.iter().any(|a| a.contains("--build-arg")),
            "never a build argument"
        );
        let remote = BuildSecret {
            id: "npm-token".into(),
            source: SecretSource::ParameterStore("/ci/npm".into()),
        };
        assert_eq!(
            secret_flag(&remote),
            "id=npm-token,env=FASTDEPLOY_SECRET_NPM_TOKEN"
        );
    }
}
