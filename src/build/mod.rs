//! Local and remote builds: one build request executed by buildx (`docker`), buildah, or CodeBuild; tags, cache refs and content tags.
pub mod buildah;
pub mod docker;

use crate::plan::BuilderProbe;

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
    let docker =
        std::env::var(crate::env_vars::FASTDEPLOY_DOCKER).unwrap_or_else(|_| "docker".into());
    let buildah =
        std::env::var(crate::env_vars::FASTDEPLOY_BUILDAH).unwrap_or_else(|_| "buildah".into());
    let (buildx, daemon, buildah) = tokio::join!(
        ok(&docker, &["buildx", "version"]),
        ok(&docker, &["info", "--format", "{{.ServerVersion}}"]),
        ok(&buildah, &["--version"])
    );
    BuilderProbe {
        docker_buildx: buildx && daemon,
        buildah,
    }
}
