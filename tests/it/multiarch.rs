//! Several platforms built natively on CodeBuild: one build per platform,
//! started together (arm64 on `ARM_CONTAINER`), one image index over what
//! they pushed, deployed to ECS by the index's digest. The sandbox's builds
//! are timed phases (they build nothing): each "pushes" an image the test
//! put in the registry first, as a real build on that architecture would,
//! and the index fastdeploy writes is checked by the real registry, which
//! refuses an index naming manifests it does not hold.

use serde_json::{Value, json};

use crate::support::run::{image_output, registry_digest, run};
use crate::support::sandbox::{
    FullSandbox, REPOSITORY, block_on, create_codebuild_project, http_post_json, push_base_as,
    push_busybox_base,
};

const PROJECT: &str = "shop-images";

/// Pushes the base image buildah holds now to `acme/shop:<tag>`; its digest.
fn push_fixture(sb: &FullSandbox, tag: &str) -> String {
    push_base_as(sb, REPOSITORY, tag);
    registry_digest(sb, REPOSITORY, tag).unwrap()
}

fn codebuild(sb: &FullSandbox, command: &str) -> Value {
    http_post_json(
        &format!("{}/_sandbox/codebuild/{command}", sb.moto.endpoint),
        &json!({}),
    )
}

fn manifest(sb: &FullSandbox, reference: &str) -> Value {
    let res = reqwest::blocking::Client::new()
        .get(format!("{}/v2/{REPOSITORY}/manifests/{reference}", sb.registry.url()))
        .basic_auth(
            crate::support::sandbox::ECR_USER,
            Some(crate::support::sandbox::ECR_PASSWORD),
        )
        .header(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{reference}: {}", res.status());
    res.json().unwrap()
}

#[test]
fn two_platforms_build_natively_at_once_and_ecs_gets_one_index() {
    let mut sb = FullSandbox::start();
    let amd = push_fixture(&sb, "fixture-amd64");
    push_busybox_base(&sb.registry.host, sb.dir.path());
    let arm = push_fixture(&sb, "fixture-arm64");
    assert_ne!(amd, arm);
    sb.moto.control(
        "codebuild/config",
        json!({
            "phase_seconds": 0.05,
            "exported": {"FASTDEPLOY_IMAGE_DIGEST": amd},
            "exported_by_environment": {"ARM_CONTAINER": {"FASTDEPLOY_IMAGE_DIGEST": arm}},
        }),
    );
    block_on(create_codebuild_project(&sb.moto, PROJECT));
    let command = |sb: &FullSandbox, platforms: &str| {
        let mut cmd = sb.command();
        cmd.env("INPUT_BUILDER", "codebuild")
            .env("INPUT_CODEBUILD_PROJECT", PROJECT)
            .env("INPUT_PLATFORMS", platforms);
        cmd
    };

    // A platform CodeBuild has no machines for: bad input, no build started.
    let bad = run(command(&sb, "linux/amd64,linux/s390x"));
    assert_eq!(bad.code, 2, "{}", bad.log());
    assert!(
        bad.stderr.contains("component `app` builds for linux/amd64,linux/s390x natively on CodeBuild, one build per platform: CodeBuild has no native builders for linux/s390x; it builds linux/amd64 and linux/arm64"),
        "{}",
        bad.log()
    );
    assert!(codebuild(&sb, "requests").as_array().unwrap().is_empty());

    let ran = run(command(&sb, "linux/amd64,linux/arm64"));
    assert_eq!(ran.code, 0, "{}", ran.log());
    let starts: Vec<Value> = codebuild(&sb, "requests")
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "StartBuild")
        .map(|r| r["body"].clone())
        .collect();
    assert_eq!(starts.len(), 2, "one build per platform: {starts:#?}");
    let on_arm: Vec<&Value> = starts
        .iter()
        .filter(|s| s["environmentTypeOverride"] == "ARM_CONTAINER")
        .collect();
    assert_eq!(on_arm.len(), 1, "{starts:#?}");
    assert_eq!(
        on_arm[0]["imageOverride"],
        fastdeploy::image::native::ARM_IMAGE
    );
    let arm_spec = on_arm[0]["buildspecOverride"].as_str().unwrap();
    assert!(
        arm_spec.contains("--platform linux/arm64") && !arm_spec.contains("linux/amd64"),
        "{arm_spec}"
    );
    let x86 = starts
        .iter()
        .find(|s| s["environmentTypeOverride"].is_null())
        .unwrap();
    assert!(
        x86["buildspecOverride"]
            .as_str()
            .unwrap()
            .contains("--platform linux/amd64"),
        "the project's own (x86) environment builds amd64"
    );
    // Started together: the second did not wait for the first.
    let builds = codebuild(&sb, "builds");
    let started: Vec<f64> = builds
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["startTime"].as_f64().unwrap())
        .collect();
    assert_eq!(started.len(), 2);
    assert!((started[0] - started[1]).abs() < 1.0, "started {started:?}");

    // One index over both, under the environment tag, deployed by digest.
    let digest = sb.output("digest").unwrap();
    let index = manifest(&sb, "production");
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(
        entries,
        [
            ("amd64".to_string(), amd.clone()),
            ("arm64".to_string(), arm.clone())
        ]
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production").as_deref(),
        Some(digest.as_str())
    );
    let view = crate::support::run::ecs_view(&sb);
    assert!(
        view.images
            .iter()
            .any(|i| i.ends_with(&format!("{REPOSITORY}@{digest}"))),
        "ECS runs the index: {:?}",
        view.images
    );
    let app = image_output(&sb);
    let billed = app["codebuild"].as_array().unwrap();
    assert_eq!(billed.len(), 2, "{app}");
    let summary = sb.summary();
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            summary.contains(&format!("| app ({platform}) | BUILD_GENERAL1_SMALL |")),
            "{summary}"
        );
    }

    // The ARM build fails: the component fails, nothing moves.
    sb.moto.control(
        "codebuild/config",
        json!({"outcome_by_environment": {"ARM_CONTAINER": "FAILED"}}),
    );
    sb.commit_change("app/pages/multiarch.html", "<h1>changed</h1>\n");
    std::fs::remove_file(sb.output_file()).unwrap();
    let failed = run(command(&sb, "linux/amd64,linux/arm64"));
    assert_eq!(failed.code, 1, "{}", failed.log());
    assert_eq!(sb.output("result").as_deref(), Some("failure"));
    assert!(
        failed.stdout.contains("[app@arm64]") && failed.stdout.contains("failed in phase BUILD"),
        "{}",
        failed.log()
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production").as_deref(),
        Some(digest.as_str()),
        "the environment tag still names the last good index"
    );
}
