//! Local and remote builds: one build request executed by buildx (`docker`),
//! buildah, or CodeBuild; tags, cache refs and content tags.
//!
//! [`build_component`] is the one entry point for local builds: it skips
//! what the registry already holds (the content tag), runs the chosen
//! builder, tags and measures the pushed image. Each call keeps its state in
//! its own work directory and its own registry client, so the executor can
//! run several at once.

pub mod bases;
pub mod billing;
pub mod buildah;
pub mod codebuild;
pub mod docker;
pub mod ecr;
pub mod native;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::BadInput;
use crate::plan::{BuildPlan, BuilderKind, BuilderProbe};
use crate::process::{Runner, Stream};
use registry::{ImageSize, RegistryAuth};

/// Everything a builder needs for one component, resolved at run time (the
/// registry host is known only after ECR login).
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    pub component: &'a str,
    pub plan: &'a BuildPlan,
    /// Registry host, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`.
    pub registry: &'a str,
    /// Content tag the build inputs hash to (`content-<hash>`), pushed too.
    pub content_tag: Option<String>,
    pub provenance: bool,
    /// The buildx builder to build on (`--builder`: the plan's choice);
    /// `None`: the current builder.
    pub buildx_builder: Option<&'a str>,
    /// Scratch directory for metadata files, digest files and logs.
    pub work_dir: &'a Path,
    /// The bases resolved for this build; the Dockerfile built is the
    /// pinned text when there is one.
    pub bases: Option<&'a bases::Identity>,
    /// `rebuild: true`: build even when the content tag is in the registry.
    pub force: bool,
}

impl BuildRequest<'_> {
    /// `registry/repository`.
    pub fn image(&self) -> String {
        format!("{}/{}", self.registry, self.plan.repository)
    }

    /// Every `image:tag` pushed: the plan's tags and the content tag.
    pub fn refs(&self) -> Vec<String> {
        let image = self.image();
        self.plan
            .tags
            .iter()
            .chain(self.content_tag.iter())
            .map(|t| format!("{image}:{t}"))
            .collect()
    }

    /// Cache refs read, in order (branch first, then default branch).
    pub fn cache_from_refs(&self) -> Vec<String> {
        let Some(cache) = &self.plan.cache else {
            return Vec::new();
        };
        cache
            .from_tags
            .iter()
            .map(|t| format!("{}/{}:{t}", self.registry, cache.repository))
            .collect()
    }

    /// Cache ref written, if any (never on pull requests).
    pub fn cache_to_ref(&self) -> Option<String> {
        let cache = self.plan.cache.as_ref()?;
        cache
            .to_tag
            .as_ref()
            .map(|t| format!("{}/{}:{t}", self.registry, cache.repository))
    }
}

/// What a finished build reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutput {
    /// `sha256:...` of the pushed manifest (or local image when not pushed).
    pub digest: String,
    pub cached_steps: Option<u32>,
    pub total_steps: Option<u32>,
    pub seconds: f64,
    /// True when the registry already had the content tag: nothing was
    /// built, the plan's tags were put on the existing manifest.
    pub skipped: bool,
    /// Read from the registry after the push (`None` when not pushed).
    pub size: Option<ImageSize>,
    /// Why an image whose files did not change was built again
    /// (`base `python:3.12-slim` moved to sha256:…`).
    pub rebuilt_because: Option<String>,
    /// A CodeBuild build's billed minutes and cost.
    pub billing: Option<billing::Billing>,
}

/// How builders are run here; resolved once by the executor from settings
/// (nothing in this module reads the environment).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The docker CLI (`FASTDEPLOY_DOCKER`).
    pub docker: String,
    /// buildah (`FASTDEPLOY_BUILDAH`).
    pub buildah: String,
    /// Global flags put before buildah's subcommand (`FASTDEPLOY_BUILDAH_FLAGS`,
    /// e.g. `--storage-driver vfs`).
    pub buildah_flags: Vec<String>,
    /// `buildah bud --isolation` (`chroot` where user namespaces are missing).
    pub buildah_isolation: Option<String>,
    /// The user's docker config directory (`DOCKER_CONFIG` or `~/.docker`):
    /// its buildx builders and CLI plugins stay visible while logins go to a
    /// per-build config in the work directory.
    pub docker_config: Option<PathBuf>,
    /// The time scale of registry retry delays (tests run faster).
    pub clock: crate::clock::Clock,
    /// `max-image-mb` in bytes: a pushed image over it fails the build.
    pub max_image_bytes: Option<u64>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            docker: "docker".into(),
            buildah: "buildah".into(),
            buildah_flags: Vec::new(),
            buildah_isolation: None,
            docker_config: None,
            clock: crate::clock::Clock::REAL,
            max_image_bytes: None,
        }
    }
}

/// The pushed image is over `max-image-mb`. Carries the size so the report
/// can still show it.
#[derive(Debug, thiserror::Error)]
#[error(
    "component `{component}`: the image is {}, over max-image-mb ({}); shrink the largest layers (multi-stage builds, fewer build tools in the final stage) or raise max-image-mb:\n{}",
    crate::units::bytes(size.bytes), crate::units::bytes(*max_bytes), size.breakdown()
)]
pub struct ImageTooLarge {
    pub component: String,
    pub size: ImageSize,
    pub max_bytes: u64,
    pub digest: String,
}

/// Content tag of a component's build inputs: the build context (its file
/// set and contents, hashed by the context guard), the Dockerfile, target,
/// build args, platforms and the digests its base images resolved to.
/// Labels are left out on purpose: `created` changes on every run and
/// `revision` on every commit, and a commit that does not touch the inputs
/// should reuse the image. Without bases the tag is what it was before
/// bases counted, so images built then are still found.
pub fn content_tag(
    context_hash: &str,
    plan: &BuildPlan,
    dockerfile_bytes: &[u8],
    bases: &[bases::Resolved],
) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        // Length-prefixed so no two different inputs hash the same.
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("v", b"fastdeploy-content-1");
    field("context", context_hash.as_bytes());
    field("dockerfile", dockerfile_bytes);
    field("target", plan.target.as_deref().unwrap_or("").as_bytes());
    for (k, v) in &plan.build_args {
        field("arg-name", k.as_bytes());
        field("arg-value", v.as_bytes());
    }
    for p in &plan.platforms {
        field("platform", p.as_bytes());
    }
    for b in bases {
        field("base", b.reference.as_bytes());
        field("base-digest", b.digest.as_bytes());
    }
    format!("content-{}", &hex::encode(h.finalize())[..32])
}

/// Builds (or reuses) one component's image and reports its digest, cache
/// use and size. Safe to run concurrently for different components: give
/// each its own `req.work_dir`.
pub async fn build_component(
    kind: BuilderKind,
    req: &BuildRequest<'_>,
    auth: &RegistryAuth,
    runner: &Runner,
    opts: &BuildOptions,
) -> anyhow::Result<BuildOutput> {
    let started = Instant::now();
    std::fs::create_dir_all(req.work_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the build work directory {}: {e}",
            req.work_dir.display()
        )
    })?;
    let client = registry::Client::new(auth, opts.clock);
    let rebuilt_because = match reuse(&client, req, runner).await? {
        Reuse::Existing(digest) => {
            let size = measure(&client, req, &digest, runner, opts).await?;
            return Ok(BuildOutput {
                digest,
                seconds: started.elapsed().as_secs_f64(),
                skipped: true,
                size,
                ..Default::default()
            });
        }
        Reuse::Build { because } => because,
    };
    let pinned_plan = pinned_plan(req)?;
    let req = &BuildRequest {
        plan: pinned_plan.as_ref().unwrap_or(req.plan),
        ..req.clone()
    };
    let (digest, steps) = match kind {
        BuilderKind::Buildx => docker::build(req, auth, runner, opts).await?,
        BuilderKind::Buildah => buildah::build(req, auth, runner, opts, &client).await?,
        BuilderKind::Codebuild => anyhow::bail!(
            "CodeBuild builds run through crate::image::codebuild, not build_component"
        ),
    };
    let size = if req.plan.push {
        measure(&client, req, &digest, runner, opts).await?
    } else if kind == BuilderKind::Buildah {
        // Pull request builds push nothing; their size still matters (the
        // PR comment compares it with the default branch's).
        match buildah::local_size(req, opts, runner, &digest).await {
            Ok(size) => Some(size),
            Err(e) => {
                tracing::warn!(
                    "cannot measure the image of component `{}`: {e:#}",
                    req.component
                );
                None
            }
        }
    } else {
        None
    };
    Ok(BuildOutput {
        digest,
        cached_steps: steps.map(|s| s.cached),
        total_steps: steps.map(|s| s.total),
        seconds: started.elapsed().as_secs_f64(),
        skipped: false,
        size,
        rebuilt_because,
        billing: None,
    })
}

/// Whether a build is needed: the registry may hold the content tag already.
pub enum Reuse {
    /// The content tag's manifest, now carrying the plan's tags too.
    Existing(String),
    /// Build; `because` says why when only the bases changed.
    Build { because: Option<String> },
}

/// Looks up the content tag: found, the plan's tags are put on its manifest
/// and nothing is built. Not found, the build runs, and when the image the
/// plan's tags hold now was built from the same files on other bases, the
/// log says which base moved. Not knowing only costs a build.
pub async fn reuse(
    client: &registry::Client,
    req: &BuildRequest<'_>,
    runner: &Runner,
) -> anyhow::Result<Reuse> {
    let repo = req.plan.repository.as_str();
    let (true, Some(content)) = (req.plan.push, &req.content_tag) else {
        return Ok(Reuse::Build { because: None });
    };
    if req.force {
        (runner.sink)(
            Stream::Stdout,
            "rebuilding: `rebuild` is true, the content tag is not looked up",
        );
        return Ok(Reuse::Build {
            because: Some("`rebuild` is true".into()),
        });
    }
    match client.manifest_digest(repo, content).await {
        Ok(Some(digest)) => {
            (runner.sink)(
                Stream::Stdout,
                &format!(
                    "{}:{content} is already in the registry ({digest}): nothing to build",
                    req.image()
                ),
            );
            client.tag(repo, &digest, &req.plan.tags).await?;
            return Ok(Reuse::Existing(digest));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot look up {repo}:{content}, building: {e:#}"),
    }
    let because = match req.bases {
        Some(id) => id.why_rebuilt(client, repo, &req.plan.tags).await,
        None => None,
    };
    if let Some(why) = &because {
        (runner.sink)(Stream::Stdout, &format!("rebuilding: {why}"));
    }
    Ok(Reuse::Build { because })
}

/// The plan with its Dockerfile swapped for the pinned text, written next
/// to the build's other files (with the Dockerfile's own ignore file, which
/// BuildKit looks for beside it); `None` when nothing is pinned.
fn pinned_plan(req: &BuildRequest<'_>) -> anyhow::Result<Option<BuildPlan>> {
    let Some(text) = req.bases.and_then(|b| b.pinned.as_deref()) else {
        return Ok(None);
    };
    let dir = req.work_dir.join("pinned");
    let name = req
        .plan
        .dockerfile
        .file_name()
        .unwrap_or(std::ffi::OsStr::new("Dockerfile"));
    let path = dir.join(name);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, text)?;
        let mut ignore = req.plan.dockerfile.as_os_str().to_owned();
        ignore.push(".dockerignore");
        let ignore = PathBuf::from(ignore);
        if ignore.is_file() {
            let mut copy = path.as_os_str().to_owned();
            copy.push(".dockerignore");
            std::fs::copy(&ignore, copy)?;
        }
        Ok(())
    };
    write().map_err(|e| {
        anyhow::anyhow!(
            "cannot write the Dockerfile with pinned bases to {}: {e}",
            path.display()
        )
    })?;
    Ok(Some(BuildPlan {
        dockerfile: path,
        ..req.plan.clone()
    }))
}

/// Reads the pushed image's size and enforces `max-image-mb`. A registry
/// that cannot say is a warning, not a failed build.
async fn measure(
    client: &registry::Client,
    req: &BuildRequest<'_>,
    digest: &str,
    runner: &Runner,
    opts: &BuildOptions,
) -> anyhow::Result<Option<ImageSize>> {
    let size = match client.image_size(&req.plan.repository, digest).await {
        Ok(size) => size,
        Err(e) => {
            tracing::warn!("cannot read the size of {}@{digest}: {e:#}", req.image());
            return Ok(None);
        }
    };
    for line in format!("image {}@{digest}: {}", req.image(), size.breakdown()).lines() {
        (runner.sink)(Stream::Stdout, line);
    }
    if let Some(max) = opts.max_image_bytes
        && size.bytes > max
    {
        return Err(ImageTooLarge {
            component: req.component.to_string(),
            size,
            max_bytes: max,
            digest: digest.to_string(),
        }
        .into());
    }
    Ok(Some(size))
}

/// Cached and total build steps (Dockerfile instructions other than `FROM`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    pub cached: u32,
    pub total: u32,
}

/// A runner whose sink also hands every line to `observe` (which may
/// rewrite it for the log: `None` drops the line). Per build, so parallel
/// builds never share what they observe.
pub(crate) fn observing_runner<S: Send + 'static>(
    runner: &Runner,
    state: Arc<Mutex<S>>,
    observe: fn(&mut S, Stream, &str) -> Vec<String>,
) -> Runner {
    let inner = runner.sink.clone();
    Runner {
        sink: Arc::new(move |stream, line| {
            let out = observe(
                &mut state.lock().unwrap_or_else(|e| e.into_inner()),
                stream,
                line,
            );
            for l in out {
                inner(stream, &l);
            }
        }),
        tail_lines: runner.tail_lines,
    }
}

/// A builder program that cannot be started is something the user fixes.
pub(crate) async fn require_program(
    runner: &Runner,
    spec: &crate::process::CommandSpec,
    how_to_get: &str,
) -> anyhow::Result<bool> {
    match runner.run(spec).await {
        Ok(done) => Ok(done.success),
        Err(e) => Err(BadInput::other(format!("{e:#}; {how_to_get}")).into()),
    }
}

/// Probes what can build here: a docker daemon with buildx (and its
/// builders: the current one, and `buildx_builder` when given), or buildah.
/// Looks only: nothing is created or started.
pub async fn probe(docker: &str, buildah: &str, buildx_builder: Option<&str>) -> BuilderProbe {
    let (docker, buildah) = tokio::join!(docker::probe(docker, buildx_builder), async {
        let spec = crate::process::CommandSpec::new(buildah).arg("--version");
        docker::quiet(&spec).await.is_ok_and(|(ok, _, _)| ok)
    });
    BuilderProbe {
        docker_buildx: docker.unavailable.is_none(),
        buildah,
        docker: Some(docker),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan() -> BuildPlan {
        BuildPlan {
            context: "/w".into(),
            dockerfile: "/w/Dockerfile".into(),
            target: None,
            build_args: BTreeMap::new(),
            platforms: vec![],
            repository: "app".into(),
            tags: vec!["sha-1".into()],
            labels: BTreeMap::from([(
                "org.opencontainers.image.created".to_string(),
                "2024-01-01T00:00:00Z".to_string(),
            )]),
            cache: None,
            push: true,
            secrets: vec![],
        }
    }

    fn content_tag_of(context: &str, plan: &BuildPlan, dockerfile: &[u8]) -> String {
        content_tag(context, plan, dockerfile, &[])
    }

    #[test]
    fn content_tag_changes_when_a_base_moves() {
        let base = |digest: &str| bases::Resolved {
            reference: "python:3.12-slim".into(),
            digest: digest.into(),
        };
        let before = content_tag("c", &plan(), b"F", &[base("sha256:1")]);
        assert_ne!(before, content_tag("c", &plan(), b"F", &[base("sha256:2")]));
        assert_eq!(before, content_tag("c", &plan(), b"F", &[base("sha256:1")]));
        assert_ne!(before, content_tag_of("c", &plan(), b"F"));
    }

    #[test]
    fn content_tag_changes_with_every_build_input() {
        let base = content_tag_of("ctx1", &plan(), b"FROM x");
        assert!(
            base.starts_with("content-") && base.len() == "content-".len() + 32,
            "{base}"
        );
        assert_eq!(
            base,
            content_tag_of("ctx1", &plan(), b"FROM x"),
            "deterministic"
        );
        assert_ne!(base, content_tag_of("ctx2", &plan(), b"FROM x"));
        assert_ne!(base, content_tag_of("ctx1", &plan(), b"FROM y"));
        let mut p = plan();
        p.target = Some("t".into());
        assert_ne!(base, content_tag_of("ctx1", &p, b"FROM x"));
        let mut p = plan();
        p.build_args.insert("A".into(), "1".into());
        assert_ne!(base, content_tag_of("ctx1", &p, b"FROM x"));
        let mut p = plan();
        p.platforms = vec!["linux/arm64".into()];
        assert_ne!(base, content_tag_of("ctx1", &p, b"FROM x"));
    }

    #[test]
    fn content_tag_ignores_labels_and_tags() {
        // A new commit (new revision label, new tags) with unchanged inputs reuses the image.
        let mut p = plan();
        p.labels
            .insert("org.opencontainers.image.revision".into(), "abc".into());
        p.tags = vec!["sha-2".into(), "main".into()];
        assert_eq!(
            content_tag_of("ctx", &plan(), b"F"),
            content_tag_of("ctx", &p, b"F")
        );
    }

    #[test]
    fn build_args_cannot_collide_by_concatenation() {
        let mut a = plan();
        a.build_args.insert("AB".into(), "C".into());
        let mut b = plan();
        b.build_args.insert("A".into(), "BC".into());
        assert_ne!(content_tag_of("c", &a, b""), content_tag_of("c", &b, b""));
    }

    #[test]
    fn image_too_large_names_the_limit_and_the_largest_layers() {
        let e = ImageTooLarge {
            component: "api".into(),
            size: ImageSize {
                bytes: 300_000_000,
                layers: 2,
                largest: vec![(250_000_000, "RUN apt-get install build-essential".into())],
            },
            max_bytes: 200_000_000,
            digest: "sha256:x".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("300.0 MB")
                && msg.contains("max-image-mb (200.0 MB)")
                && msg.contains("RUN apt-get install"),
            "{msg}"
        );
    }
}
