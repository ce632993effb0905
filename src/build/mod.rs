//! Local and remote builds: one build request executed by buildx (`docker`),
//! buildah, or CodeBuild; tags, cache refs and content tags.

pub mod buildah;
pub mod docker;

use std::path::Path;

use crate::plan::{BuildPlan, BuilderProbe};

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
    /// Existing buildx builder (`buildx-builder` input).
    pub buildx_builder: Option<&'a str>,
    /// Scratch directory for metadata files, digest files and logs.
    pub work_dir: &'a Path,
}

impl BuildRequest<'_> {
    /// `registry/repository`.
    pub fn image(&self) -> String {
        format!("{}/{}", self.registry, self.plan.repository)
    }

    /// Every `image:tag` pushed: the plan's tags and the content tag.
    pub fn refs(&self) -> Vec<String> {
        let image = self.image();
        self.plan.tags.iter().chain(self.content_tag.iter()).map(|t| format!("{image}:{t}")).collect()
    }

    /// Cache refs read, in order (branch first, then default branch).
    pub fn cache_from_refs(&self) -> Vec<String> {
        let Some(cache) = &self.plan.cache else { return Vec::new() };
        cache.from_tags.iter().map(|t| format!("{}/{}:{t}", self.registry, cache.repository)).collect()
    }

    /// Cache ref written, if any (never on pull requests).
    pub fn cache_to_ref(&self) -> Option<String> {
        let cache = self.plan.cache.as_ref()?;
        cache.to_tag.as_ref().map(|t| format!("{}/{}:{t}", self.registry, cache.repository))
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
}

/// Probes what can build here: a docker daemon with buildx, or buildah.
pub async fn probe() -> BuilderProbe {
    async fn ok(program: &str, args: &[&str]) -> bool {
        tokio::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }
    let docker = std::env::var(crate::env_vars::FASTDEPLOY_DOCKER).unwrap_or_else(|_| "docker".into());
    let buildah = std::env::var(crate::env_vars::FASTDEPLOY_BUILDAH).unwrap_or_else(|_| "buildah".into());
    let (buildx, daemon, buildah) = tokio::join!(
        ok(&docker, &["buildx", "version"]),
        ok(&docker, &["info", "--format", "{{.ServerVersion}}"]),
        ok(&buildah, &["--version"])
    );
    BuilderProbe { docker_buildx: buildx && daemon, buildah }
}
