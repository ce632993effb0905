//! docker buildx: commands built as values, digest from `--metadata-file`,
//! cached/executed steps from `--progress=rawjson`.
//!
//! [`build_command`] is pure (CodeBuild renders the same argument list into
//! its buildspec). [`build`] logs in with a per-build `DOCKER_CONFIG`, picks
//! or creates the builder, runs the build and reads its results.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

mod progress;

pub use progress::RawProgress;

use super::{BuildOptions, BuildRequest, Steps};
use crate::build::registry::RegistryAuth;
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
    cmd = cmd.arg(if req.provenance { "--provenance=mode=max" } else { "--provenance=false" });
    for from in req.cache_from_refs() {
        cmd = cmd.arg("--cache-from").arg(format!("type=registry,ref={from}"));
    }
    if let Some(to) = req.cache_to_ref() {
        // ECR needs an image manifest with OCI media types for cache
        // manifests; ignore-error keeps a cache hiccup from failing the build.
        cmd =
            cmd.arg("--cache-to").arg(format!("type=registry,ref={to},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"));
    }
    cmd = cmd.arg(if plan.push { "--output=type=image,push=true" } else { "--output=type=image,push=false" });
    cmd = cmd.arg("--metadata-file").arg(metadata_path(req.work_dir).display().to_string());
    cmd.arg("--progress=rawjson").arg(plan.context.display().to_string())
}

/// The builder a request runs on: the `buildx-builder` input when given;
/// fastdeploy's docker-container builder when the default driver could not
/// do the job (registry cache export, several platforms); else the current.
pub fn builder_for(req: &BuildRequest<'_>) -> Option<String> {
    if let Some(b) = req.buildx_builder {
        return Some(b.to_string());
    }
    (req.cache_to_ref().is_some() || req.plan.platforms.len() > 1).then(|| BUILDER_NAME.to_string())
}

/// `docker login` with the password on stdin only.
pub fn login_command(docker: &str, auth: &RegistryAuth, docker_config: &Path) -> CommandSpec {
    CommandSpec::new(docker)
        .args(["login", "--username", &auth.username, "--password-stdin", &auth.host])
        .env("DOCKER_CONFIG", docker_config.display().to_string())
        .stdin(auth.password.clone())
}

pub fn inspect_builder_command(docker: &str, name: &str) -> CommandSpec {
    CommandSpec::new(docker).args(["buildx", "inspect", name])
}

pub fn create_builder_command(docker: &str, name: &str) -> CommandSpec {
    CommandSpec::new(docker).args(["buildx", "create", "--name", name, "--driver", "docker-container", "--bootstrap"])
}

/// A per-build docker config: logins land here, so parallel builds and the
/// user's own config never clash; the user's builders and plugins are linked in.
fn prepare_docker_config(work_dir: &Path, user_config: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = work_dir.join("docker-config");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(user) = user_config {
        for sub in ["buildx", "cli-plugins", "contexts"] {
            let (from, to) = (user.join(sub), dir.join(sub));
            if from.exists() && !to.exists() {
                #[cfg(unix)]
                std::os::unix::fs::symlink(&from, &to).with_context(|| format!("linking {} into {}", from.display(), dir.display()))?;
            }
        }
    }
    Ok(dir)
}

pub(super) async fn build(
    req: &BuildRequest<'_>,
    auth: &RegistryAuth,
    runner: &Runner,
    opts: &BuildOptions,
) -> anyhow::Result<(String, Option<Steps>)> {
    let docker = opts.docker.as_str();
    let version = CommandSpec::new(docker).args(["buildx", "version"]);
    if !super::require_program(
        runner,
        &version,
        "install Docker with the buildx plugin (https://docs.docker.com/build/), or use `builder: buildah` or `codebuild`",
    )
    .await?
    {
        return Err(crate::error::BadInput::other(format!(
            "`{docker} buildx` is not available: install the docker-buildx-plugin package or run docker/setup-buildx-action before fastdeploy, or use `builder: buildah`"
        ))
        .into());
    }
    let config = prepare_docker_config(req.work_dir, opts.docker_config.as_deref())?;
    let env = |spec: CommandSpec| spec.env("DOCKER_CONFIG", config.display().to_string());
    runner
        .run(&login_command(docker, auth, &config))
        .await?
        .check(&CommandSpec::new(docker).args(["login", &auth.host]))
        .with_context(|| format!("logging in to registry {}", auth.host))?;

    let builder = builder_for(req);
    if let Some(name) = builder.as_deref()
        && req.buildx_builder.is_none()
    {
        let inspect = env(inspect_builder_command(docker, name));
        if !runner.run(&inspect).await?.success {
            let create = env(create_builder_command(docker, name));
            let created = runner.run(&create).await?;
            // Another component may have created it meanwhile.
            if !created.success && !runner.run(&inspect).await?.success {
                created.check(&create).context("creating a docker-container buildx builder for registry cache export")?;
            }
        }
    }

    let metadata = metadata_path(req.work_dir);
    let _ = std::fs::remove_file(&metadata);
    let spec = env(build_command(req, docker, builder.as_deref()));
    let progress = Arc::new(Mutex::new(RawProgress::default()));
    let observed = super::observing_runner(runner, progress.clone(), RawProgress::observe);
    let done = observed.run(&spec).await?;
    let (rest, tail, steps) = {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        (p.finish(), p.tail(), p.steps())
    };
    for line in rest {
        (runner.sink)(crate::process::Stream::Stderr, &line);
    }
    // The error quotes the readable lines (the failing step's log, BuildKit's
    // error), not the JSON buildx wrote.
    Finished { stderr_tail: tail, ..done }.check(&spec).with_context(|| format!("building component `{}` with buildx", req.component))?;

    let text = std::fs::read_to_string(&metadata).with_context(|| format!("buildx wrote no metadata file {}", metadata.display()))?;
    let digest = parse_metadata(&text).with_context(|| format!("reading {}", metadata.display()))?;
    Ok((digest, Some(steps)))
}

/// The image digest from a `--metadata-file`.
pub fn parse_metadata(json: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(json).context("the buildx metadata file is not JSON")?;
    v.get("containerimage.digest")
        .and_then(|d| d.as_str())
        .or_else(|| v.pointer("/containerimage.descriptor/digest").and_then(|d| d.as_str()))
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
            tags: vec!["sha-0123456789ab".into(), "production".into(), "main".into()],
            labels: BTreeMap::from([("org.opencontainers.image.revision".to_string(), "0123456789abcdef".to_string())]),
            cache: None,
            push: true,
        }
    }

    fn req<'a>(plan: &'a BuildPlan, provenance: bool, builder: Option<&'a str>) -> BuildRequest<'a> {
        BuildRequest {
            component: "api",
            plan,
            registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            content_tag: Some("content-abc".into()),
            provenance,
            buildx_builder: builder,
            work_dir: Path::new("/tmp/fd/api"),
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
        assert_eq!(builder.as_deref(), Some(BUILDER_NAME), "registry cache export needs a docker-container builder");
        let args = build_command(&r, "docker", builder.as_deref()).args;
        assert_eq!(&args[2..4], &["--builder".to_string(), BUILDER_NAME.to_string()]);
        let i = args.iter().position(|a| a == "--cache-from").unwrap();
        assert_eq!(args[i + 1], format!("type=registry,ref={IMAGE}:cache-feature-x"));
        assert_eq!(args[i + 2], "--cache-from");
        assert_eq!(args[i + 3], format!("type=registry,ref={IMAGE}:cache-main"));
        let j = args.iter().position(|a| a == "--cache-to").unwrap();
        assert_eq!(
            args[j + 1],
            format!("type=registry,ref={IMAGE}:cache-feature-x,mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true")
        );
    }

    #[test]
    fn pull_request_reads_cache_never_writes_it_and_does_not_push() {
        let mut p = with_cache(plan(), None);
        p.push = false;
        let r = req(&p, false, None);
        assert_eq!(builder_for(&r), None, "reading a registry cache works on the default builder");
        let args = build_command(&r, "docker", None).args;
        assert!(args.contains(&"--cache-from".to_string()));
        assert!(!args.contains(&"--cache-to".to_string()));
        assert!(args.contains(&"--output=type=image,push=false".to_string()));
        assert!(!args.contains(&"--output=type=image,push=true".to_string()));
    }

    #[test]
    fn provenance_is_opt_in() {
        let p = plan();
        assert!(build_command(&req(&p, false, None), "docker", None).args.contains(&"--provenance=false".to_string()));
        let on = build_command(&req(&p, true, None), "docker", None).args;
        assert!(on.contains(&"--provenance=mode=max".to_string()) && !on.contains(&"--provenance=false".to_string()));
    }

    #[test]
    fn an_existing_remote_builder_is_honoured_even_with_cache_export() {
        let p = with_cache(plan(), Some("cache-main"));
        let r = req(&p, false, Some("team-fleet"));
        assert_eq!(builder_for(&r).as_deref(), Some("team-fleet"));
        let args = build_command(&r, "/usr/bin/docker", builder_for(&r).as_deref()).args;
        assert_eq!(&args[2..4], &["--builder".to_string(), "team-fleet".to_string()]);
    }

    #[test]
    fn target_build_args_and_platforms() {
        let mut p = plan();
        p.target = Some("runtime".into());
        p.build_args = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".to_string(), "x y".to_string())]);
        p.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        let r = req(&p, false, None);
        assert_eq!(builder_for(&r).as_deref(), Some(BUILDER_NAME), "several platforms need a docker-container builder");
        let cmd = build_command(&r, "docker", None);
        let s = cmd.display();
        assert!(s.contains("--target runtime"), "{s}");
        assert!(s.contains("--build-arg A=1 --build-arg 'B=x y'"), "{s}");
        assert!(s.contains("--platform linux/amd64,linux/arm64"), "{s}");
    }

    #[test]
    fn login_puts_the_password_on_stdin_only() {
        let auth = RegistryAuth {
            host: "h.example".into(),
            username: "AWS".into(),
            password: secrecy::SecretString::from("pa55word-xyz"),
            insecure: false,
        };
        let cmd = login_command("docker", &auth, Path::new("/tmp/w/docker-config"));
        assert!(cmd.args.iter().all(|a| !a.contains("pa55word")));
        assert_eq!(cmd.args, ["login", "--username", "AWS", "--password-stdin", "h.example"]);
        assert!(cmd.stdin.is_some());
        assert_eq!(cmd.env, vec![("DOCKER_CONFIG".to_string(), "/tmp/w/docker-config".to_string())]);
    }

    #[test]
    fn builder_creation_uses_the_docker_container_driver() {
        assert_eq!(
            create_builder_command("docker", "fastdeploy").args,
            ["buildx", "create", "--name", "fastdeploy", "--driver", "docker-container", "--bootstrap"]
        );
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildx").join(name)).unwrap()
    }

    #[test]
    fn metadata_file_from_the_buildx_docs() {
        assert_eq!(
            parse_metadata(&fixture("metadata.json")).unwrap(),
            "sha256:19ffeab6f8bc9293ac2c3fdf94ebe28396254c993aea0b5a542cfb02e0883fa3"
        );
        assert!(parse_metadata("{}").unwrap_err().to_string().contains("containerimage.digest"));
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
}
