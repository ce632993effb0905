//! `fastdeploy cache prune` against moto's ECR: the component's cache tags
//! go, its other tags stay, and a repository without cache is bad input.

use crate::support::run::run;
use crate::support::sandbox::{FullSandbox, REPOSITORY, block_on};

/// Puts an image (a small manifest of its own) into moto's ECR under `tags`.
async fn put(ecr: &aws_sdk_ecr::Client, repo: &str, n: u32, tags: &[&str]) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": n, "digest": format!("sha256:{n:064x}")},
        "layers": [],
    })
    .to_string();
    for tag in tags {
        ecr.put_image()
            .repository_name(repo)
            .image_manifest(&manifest)
            .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
            .image_tag(*tag)
            .send()
            .await
            .unwrap();
    }
}

async fn tags_of(ecr: &aws_sdk_ecr::Client, repo: &str) -> Vec<String> {
    let out = ecr
        .list_images()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<String> = out
        .image_ids()
        .iter()
        .filter_map(|i| i.image_tag().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

#[test]
fn prune_removes_the_cache_tags_keeps_the_rest_and_refuses_a_repository_without_cache() {
    let sb = FullSandbox::start();
    let ecr = block_on(async { aws_sdk_ecr::Client::new(&sb.moto.sdk_config().await) });
    block_on(async {
        ecr.create_repository()
            .repository_name(REPOSITORY)
            .send()
            .await
            .unwrap();
        put(&ecr, REPOSITORY, 1, &["cache-main"]).await;
        put(&ecr, REPOSITORY, 2, &["cache-feature-x"]).await;
        put(&ecr, REPOSITORY, 3, &["production", "sha-0123456789ab"]).await;
    });
    // The cache next to the images (as buildx and CodeBuild write it).
    let prune = |cache_repository: Option<&str>| {
        let mut cmd = sb.command_with(&["cache", "prune", "--component", "app"]);
        if let Some(r) = cache_repository {
            cmd.env("INPUT_CACHE_REPOSITORY", r);
        }
        run(cmd)
    };
    let ran = prune(Some(REPOSITORY));
    assert_eq!(ran.code, 0, "{}", ran.log());
    for tag in ["cache-main", "cache-feature-x"] {
        assert!(
            ran.stdout
                .contains(&format!("app: removed {REPOSITORY}:{tag} (sha256:")),
            "{tag}: {}",
            ran.log()
        );
    }
    assert_eq!(
        block_on(tags_of(&ecr, REPOSITORY)),
        ["production", "sha-0123456789ab"],
        "only the cache tags went"
    );

    // Nothing left to prune: bad input, naming the repository.
    let again = prune(Some(REPOSITORY));
    assert_eq!(again.code, 2, "{}", again.log());
    assert!(
        again.stderr.contains(&format!(
            "ECR repository `{REPOSITORY}` (component `app`) has no cache tags"
        )),
        "{}",
        again.log()
    );

    // buildah's cache repository of its own: every tag in it is cache; and
    // before it exists, the error names it.
    let buildcache = format!("{REPOSITORY}-buildcache");
    let missing = prune(None);
    assert_eq!(missing.code, 2, "{}", missing.log());
    assert!(
        missing
            .stderr
            .contains(&format!("ECR repository `{buildcache}` does not exist")),
        "{}",
        missing.log()
    );
    block_on(async {
        ecr.create_repository()
            .repository_name(&buildcache)
            .send()
            .await
            .unwrap();
        put(&ecr, &buildcache, 4, &["5e1f3a"]).await;
        put(&ecr, &buildcache, 5, &["9c0d2b"]).await;
    });
    let ran = prune(None);
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert!(block_on(tags_of(&ecr, &buildcache)).is_empty());
    assert!(
        ran.stdout
            .contains(&format!("app: removed {buildcache}:5e1f3a")),
        "{}",
        ran.log()
    );
}
