//! Multi-platform images from native builds: one CodeBuild build per
//! platform, started together, each on a machine of that architecture
//! (`ARM_CONTAINER` for arm64), each pushing a single-platform image under a
//! tag of its own; then one image index over them, written to the registry
//! by digest under the plan's tags. No build emulates another architecture,
//! so two platforms take as long as the slower one, not the sum of both
//! under QEMU.

use serde_json::json;

use crate::plan::{BuildPlan, CachePlan};

use super::registry::{DOCKER_LIST, DOCKER_MANIFEST, Manifest, OCI_INDEX};

/// CodeBuild's curated images (the "Docker images provided by CodeBuild"
/// list) for a build that overrides the project's environment.
pub const X86_IMAGE: &str = "aws/codebuild/amazonlinux2-x86_64-standard:5.0";
pub const ARM_IMAGE: &str = "aws/codebuild/amazonlinux2-aarch64-standard:3.0";

/// The platforms CodeBuild builds natively.
pub const NATIVE: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// The environment a platform's build runs on: `None` when the project's
/// own is that architecture already, else the environment type and image
/// to override it with.
pub fn environment_for(
    platform: &str,
    project_environment: &str,
) -> Result<Option<(&'static str, &'static str)>, String> {
    let (wanted, image) = match platform {
        "linux/amd64" => ("LINUX_CONTAINER", X86_IMAGE),
        "linux/arm64" | "linux/arm64/v8" => ("ARM_CONTAINER", ARM_IMAGE),
        other => {
            return Err(format!(
                "CodeBuild has no native builders for {other}; it builds {}",
                NATIVE.join(" and ")
            ));
        }
    };
    Ok((project_environment != wanted).then_some((wanted, image)))
}

/// `amd64`, `arm64`, `arm-v7`: the platform in a tag.
pub fn arch_suffix(platform: &str) -> String {
    let mut parts = platform.split('/');
    let _os = parts.next();
    parts.collect::<Vec<_>>().join("-")
}

/// The tag a platform's image is pushed under: the content tag and the
/// architecture, so a re-run finds each platform's image too.
pub fn platform_tag(content_tag: &str, platform: &str) -> String {
    format!("{content_tag}-{}", arch_suffix(platform))
}

/// One platform's build: that platform alone, pushed under its own tag only
/// (the plan's tags go on the index), with a cache of its own (each
/// architecture's layers differ, and one cache ref would be overwritten by
/// the other build).
pub fn platform_plan(plan: &BuildPlan, platform: &str) -> BuildPlan {
    let suffix = arch_suffix(platform);
    BuildPlan {
        platforms: vec![platform.to_string()],
        tags: Vec::new(),
        cache: plan.cache.as_ref().map(|c| CachePlan {
            repository: c.repository.clone(),
            from_tags: c
                .from_tags
                .iter()
                .map(|t| format!("{t}-{suffix}"))
                .collect(),
            to_tag: c.to_tag.as_ref().map(|t| format!("{t}-{suffix}")),
        }),
        ..plan.clone()
    }
}

/// The image index over the platform images, each named by its platform:
/// an OCI index, or a Docker manifest list when the images are Docker
/// manifests (registries refuse a mix). Returns the bytes and media type.
pub fn index(images: &[(String, Manifest)]) -> (Vec<u8>, &'static str) {
    let docker = images.iter().all(|(_, m)| m.media_type == DOCKER_MANIFEST);
    let media_type = if docker { DOCKER_LIST } else { OCI_INDEX };
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|(platform, m)| {
            let mut parts = platform.split('/');
            let os = parts.next().unwrap_or("linux");
            let architecture = parts.next().unwrap_or_default();
            let mut p = json!({"os": os, "architecture": architecture});
            if let Some(variant) = parts.next() {
                p["variant"] = variant.into();
            }
            json!({
                "mediaType": m.media_type,
                "digest": m.digest,
                "size": m.bytes.len(),
                "platform": p,
            })
        })
        .collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    });
    (
        serde_json::to_vec(&doc).expect("an index serialises"),
        media_type,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_builds_on_its_own_architecture() {
        assert_eq!(environment_for("linux/amd64", "LINUX_CONTAINER"), Ok(None));
        assert_eq!(
            environment_for("linux/arm64", "LINUX_CONTAINER"),
            Ok(Some(("ARM_CONTAINER", ARM_IMAGE)))
        );
        assert_eq!(environment_for("linux/arm64", "ARM_CONTAINER"), Ok(None));
        assert_eq!(
            environment_for("linux/amd64", "ARM_CONTAINER"),
            Ok(Some(("LINUX_CONTAINER", X86_IMAGE)))
        );
        let err = environment_for("linux/s390x", "LINUX_CONTAINER").unwrap_err();
        assert!(err.contains("linux/amd64 and linux/arm64"), "{err}");
    }

    #[test]
    fn a_platform_build_pushes_only_its_tag_and_keeps_its_own_cache() {
        let plan = BuildPlan {
            context: "/w".into(),
            dockerfile: "/w/Dockerfile".into(),
            target: None,
            build_args: Default::default(),
            platforms: NATIVE.iter().map(|p| p.to_string()).collect(),
            repository: "shop".into(),
            tags: vec!["sha-1".into(), "production".into()],
            labels: Default::default(),
            cache: Some(CachePlan {
                repository: "shop".into(),
                from_tags: vec!["cache-main".into()],
                to_tag: Some("cache-main".into()),
            }),
            push: true,
            secrets: vec![],
        };
        let arm = platform_plan(&plan, "linux/arm64");
        assert_eq!(arm.platforms, ["linux/arm64"]);
        assert!(arm.tags.is_empty());
        let cache = arm.cache.unwrap();
        assert_eq!(cache.from_tags, ["cache-main-arm64"]);
        assert_eq!(cache.to_tag.as_deref(), Some("cache-main-arm64"));
        assert_eq!(
            platform_tag("content-ab", "linux/arm/v7"),
            "content-ab-arm-v7"
        );
    }

    #[test]
    fn the_index_names_each_image_by_platform_and_matches_their_media_type() {
        let m = |digest: &str, media: &str| Manifest {
            bytes: b"{}".to_vec(),
            media_type: media.into(),
            digest: digest.into(),
        };
        let (bytes, media) = index(&[
            (
                "linux/amd64".into(),
                m("sha256:a", super::super::registry::OCI_MANIFEST),
            ),
            (
                "linux/arm64".into(),
                m("sha256:b", super::super::registry::OCI_MANIFEST),
            ),
        ]);
        assert_eq!(media, OCI_INDEX);
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(doc["manifests"][1]["digest"], "sha256:b");
        assert_eq!(doc["manifests"][0]["size"], 2);
        let (_, media) = index(&[("linux/amd64".into(), m("sha256:a", DOCKER_MANIFEST))]);
        assert_eq!(media, DOCKER_LIST);
    }
}
