//! The Lambda target against the sandbox: moto's Lambda with the sandbox's
//! extension (updates that take time, fail for images it marks bad, 409
//! while one runs), images pushed to a real registry by buildah.
//!
//! The first half calls `deploy::lambda` directly; the end-to-end tests at
//! the bottom run the binary on examples/shop, whose config deploys `web` to
//! ECS and `thumbs` to Lambda in one run.

use std::path::Path;
use std::process::Command;

use aws_sdk_lambda::types::{Architecture, FunctionCode, PackageType};
use fastdeploy::deploy::DeployOutcome;
use fastdeploy::gha::Actions;
use fastdeploy::image::registry;
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{LambdaPlan, WatchPlan};
use serde_json::{Value, json};

use crate::support::deploy::{Deployer, image};
use crate::support::run::{Ran, run, slack_messages};
use crate::support::sandbox::{
    ACCOUNT, FUNCTION, FUNCTION_REPOSITORY, FullSandbox, Moto, REPOSITORY, Registry, base_buildah,
    block_on, create_role, push_busybox_base, registry_authfile, registry_manifest_digest,
};

const SCALE: f64 = 0.01;

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    registry: Registry,
    lambda: aws_sdk_lambda::Client,
    client: registry::Client,
    work: tempfile::TempDir,
}

/// Moto (Lambda updates: 3 steps of 0.05 s), a registry with the busybox
/// base, and a function `thumbs` (Image, `architecture`) created from it.
async fn env(architecture: Architecture) -> Env {
    let (moto, registry, work, first) = tokio::task::block_in_place(|| {
        let moto = Moto::start();
        let registry = Registry::start();
        let work = tempfile::tempdir().unwrap();
        push_busybox_base(&registry.host, work.path());
        moto.control(
            "lambda/config",
            json!({"step_seconds": 0.05, "steps": 3, "create_steps": 1}),
        );
        create_role(&moto, "thumbs");
        let first = push_variant(&registry, work.path(), "acme/thumbs", "first", "amd64");
        (moto, registry, work, first)
    });
    let sdk = moto.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    lambda
        .create_function()
        .function_name("thumbs")
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(format!("{}/acme/thumbs@{first}", registry.host))
                .build(),
        )
        .role(format!("arn:aws:iam::{ACCOUNT}:role/thumbs"))
        .architectures(architecture)
        .send()
        .await
        .unwrap();
    let client = registry::Client::new(&registry.auth(), fastdeploy::clock::Clock::scaled(SCALE));
    Env {
        moto,
        sdk,
        registry,
        lambda,
        client,
        work,
    }
}

/// Blocking sandbox calls (buildah, the registry, moto's control routes)
/// from an async test.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn buildah(work: &Path, args: &[&str]) -> String {
    base_buildah(work, args)
}

fn authfile(registry: &Registry, work: &Path) -> String {
    registry_authfile(&registry.host, work, "variant-auth.json")
}

/// The base image with a label (so each variant has its own digest) and the
/// given architecture in its config, pushed as `repo:tag`; returns the digest.
fn push_variant(registry: &Registry, work: &Path, repo: &str, tag: &str, arch: &str) -> String {
    let ctr = buildah(work, &["from", "localhost/fd-base:1"]);
    buildah(
        work,
        &[
            "config",
            "--label",
            &format!("variant={tag}"),
            "--arch",
            arch,
            &ctr,
        ],
    );
    let local = format!("localhost/variant-{tag}:1");
    buildah(work, &["commit", "-q", &ctr, &local]);
    let auth = authfile(registry, work);
    buildah(
        work,
        &[
            "push",
            "--authfile",
            &auth,
            "--tls-verify=false",
            &local,
            &format!("docker://{}/{repo}:{tag}", registry.host),
        ],
    );
    registry_manifest_digest(registry, repo, tag)
}

fn plan(function: &str) -> LambdaPlan {
    LambdaPlan {
        function: function.into(),
        alias: "live".into(),
        keep_revisions: None,
        config: Default::default(),
        smoke_test_event: None,
        shift: None,
        watch: WatchPlan {
            wait_seconds: 600,
            poll_seconds: 5.0,
            rollback: true,
            smoke: None,
            alarms: None,
        },
    }
}

impl Env {
    /// A deployer on the sandbox with the registry's client, time at `scale`.
    fn deployer(&self, scale: f64) -> Deployer {
        Deployer::new(&self.sdk, Some(self.client.clone()), scale)
    }
}

async fn deploy(e: &Env, plan: &LambdaPlan, repo: &str, digest: &str) -> DeployOutcome {
    e.deployer(SCALE)
        .lambda(plan, &image(&e.registry.host, repo, digest))
        .await
}

async fn alias_version(e: &Env) -> Option<String> {
    let out = e
        .lambda
        .get_alias()
        .function_name("thumbs")
        .name("live")
        .send()
        .await
        .ok()?;
    out.function_version().map(str::to_string)
}

/// The Lambda calls the sandbox saw, by action name.
fn calls(moto: &Moto, action: &str) -> Vec<Value> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return blocking(|| calls_now(moto, action));
    }
    calls_now(moto, action)
}

fn calls_now(moto: &Moto, action: &str) -> Vec<Value> {
    moto.control("lambda/calls", json!({"action": action}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn version_of(revision: &Option<String>) -> &str {
    revision
        .as_deref()
        .and_then(|r| r.rsplit(':').next())
        .unwrap_or("-")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_updates_by_digest_publishes_a_version_and_moves_the_alias_then_a_rerun_changes_nothing()
 {
    let e = env(Architecture::X8664).await;
    let digest =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &digest).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(version_of(&out.report.revision), "1", "{:?}", out.report);
    assert_eq!(out.report.serving_revision, out.report.revision);
    assert_eq!(
        out.report.previous_revision, None,
        "the alias did not exist before the first deploy"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));

    // Lambda was given the digest, and the version holds exactly that code.
    let updates = calls(&e.moto, "UpdateFunctionCode");
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0]["body"]["ImageUri"],
        format!("{}/acme/thumbs@{digest}", e.registry.host)
    );
    let v1 = e
        .lambda
        .get_function_configuration()
        .function_name("thumbs")
        .qualifier("1")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.code_sha256(), digest.strip_prefix("sha256:"));
    // The verdict waited for Lambda to apply the update, not for acceptance.
    assert!(
        out.report
            .events
            .iter()
            .any(|e| e.contains("LastUpdateStatus InProgress")),
        "{:?}",
        out.report.events
    );
    assert!(
        out.report
            .events
            .iter()
            .any(|e| e.contains("LastUpdateStatus Successful")),
        "{:?}",
        out.report.events
    );

    // The same digest again: nothing updated, nothing published.
    let again = deploy(&e, &plan("thumbs"), "acme/thumbs", &digest).await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert!(again.report.unchanged);
    assert_eq!(
        calls(&e.moto, "UpdateFunctionCode").len(),
        1,
        "no second update"
    );
    assert_eq!(
        calls(&e.moto, "PublishVersion").len(),
        1,
        "no second version"
    );

    // A new image: version 2, and the previous one is named.
    let third =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "third", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &third).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(version_of(&out.report.previous_revision), "1");
    assert_eq!(version_of(&out.report.revision), "2");
    assert_eq!(alias_version(&e).await.as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_lambda_fails_keeps_the_alias_on_the_previous_version_and_says_why() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    // The sandbox fails updates to images whose URI holds its marker.
    let bad = blocking(|| {
        push_variant(
            &e.registry,
            e.work.path(),
            "acme/badimage-thumbs",
            "bad",
            "amd64",
        )
    });
    let out = deploy(&e, &plan("thumbs"), "acme/badimage-thumbs", &bad).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("the update failed") && why.contains("InvalidImage"),
        "{why}"
    );
    assert!(why.contains("alias live still serves thumbs:1"), "{why}");
    assert_eq!(version_of(&out.report.serving_revision), "1");
    assert!(
        out.report
            .evidence
            .iter()
            .any(|l| l.contains("InvalidImage")),
        "{:?}",
        out.report.evidence
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    assert_eq!(
        calls(&e.moto, "PublishVersion").len(),
        1,
        "nothing published for the failed update"
    );
}

/// The statuses Lambda answered `action` with, in order (someone else's
/// interleaved calls left out).
fn statuses(moto: &Moto, action: &str) -> Vec<u64> {
    calls(moto, action)
        .iter()
        .filter(|c| c["interleaved"] != true)
        .filter_map(|c| c["status"].as_u64())
        .collect()
}

/// The time (seconds since the epoch) of the first `action` call Lambda saw.
fn first_call_at(moto: &Moto, action: &str) -> f64 {
    calls(moto, action)
        .first()
        .and_then(|c| c["time"].as_f64())
        .unwrap_or_else(|| panic!("no {action} call"))
}

/// A published version of an image function is `Pending` until Lambda has
/// optimised its image (the PublishedVersionActive waiter): the alias must
/// not move to it before it is `Active`, or it would point at a version that
/// does not serve. Pins `active`'s Pending look: the deploy waits it out,
/// says each state once, and moves the alias only afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_published_version_that_stays_pending_is_waited_for_before_the_alias_moves() {
    let e = env(Architecture::X8664).await;
    let (step, steps) = (0.05, 6);
    blocking(|| {
        e.moto.control(
            "lambda/config",
            json!({"step_seconds": step, "version_steps": steps}),
        )
    });
    let digest =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &digest).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(version_of(&out.report.revision), "1");
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    let states: Vec<&String> = out
        .report
        .events
        .iter()
        .filter(|l| l.starts_with("version 1: State"))
        .collect();
    assert_eq!(
        states,
        ["version 1: State Pending", "version 1: State Active"],
        "each state said once, Pending first: {:?}",
        out.report.events
    );
    // The alias moved no sooner than the version turned Active.
    let published = first_call_at(&e.moto, "PublishVersion");
    let moved = first_call_at(&e.moto, "CreateAlias");
    assert!(
        moved - published >= step * f64::from(steps),
        "the alias moved {:.3} s after PublishVersion; the version was Pending for {:.3} s",
        moved - published,
        step * f64::from(steps)
    );
}

/// A published version that ends `Failed` or `Inactive` instead of `Active`
/// (`active`'s Failed/Inactive arm): the alias never moves to it, the
/// deploy rolls back (`$LATEST` set back to the previous version's image)
/// and the reason names the version, its state, Lambda's StateReason and
/// StateReasonCode.
#[tokio::test(flavor = "multi_thread")]
async fn a_published_version_that_ends_failed_or_inactive_rolls_back_with_its_state_reason() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    blocking(|| {
        e.moto.control(
            "lambda/config",
            json!({"version_steps": 2, "version_markers": [
                {"marker": "brokenversion", "state": "Failed", "code": "InvalidImage", "reason": "Lambda could not optimise the image."},
                {"marker": "idleversion", "state": "Inactive", "code": "Idle", "reason": "The function is inactive."}
            ]}),
        )
    });
    for (repo, version, state, reason) in [
        (
            "acme/brokenversion-thumbs",
            "2",
            "Failed",
            "Lambda could not optimise the image. (InvalidImage)",
        ),
        (
            "acme/idleversion-thumbs",
            "3",
            "Inactive",
            "The function is inactive. (Idle)",
        ),
    ] {
        let tag = state.to_lowercase();
        let digest = blocking(|| push_variant(&e.registry, e.work.path(), repo, &tag, "amd64"));
        let out = deploy(&e, &plan("thumbs"), repo, &digest).await;
        assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
        let why = out.failure.unwrap();
        assert!(
            why.contains(&format!("version {version} is {state}: {reason}")),
            "{why}"
        );
        assert!(
            why.contains("fastdeploy rolled back: alias live still serves thumbs:1")
                && why.contains("$LATEST set back to the image of version 1"),
            "{why}"
        );
        assert_eq!(version_of(&out.report.revision), version);
        assert_eq!(version_of(&out.report.serving_revision), "1");
        assert!(
            out.report
                .events
                .contains(&format!("version {version}: State Pending")),
            "{:?}",
            out.report.events
        );
        assert!(
            out.report
                .evidence
                .iter()
                .any(|l| l.contains(&format!("is {state}"))),
            "{:?}",
            out.report.evidence
        );
        // The next deploy's look at $LATEST waits for the restore to apply.
        assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_arm64_function_fed_an_amd64_image_stops_before_update_function_code() {
    let e = env(Architecture::Arm64).await;
    let amd64 =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "amd", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &amd64).await;
    assert_eq!(out.result, RunResult::Failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains(
            "is built for linux/amd64, but Lambda function thumbs runs on arm64 (linux/arm64)"
        ),
        "{why}"
    );
    assert!(why.contains("nothing was changed"), "{why}");
    assert!(
        calls(&e.moto, "UpdateFunctionCode").is_empty(),
        "Lambda was not touched"
    );

    // The same image built for arm64 deploys.
    let arm64 =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "arm", "arm64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &arm64).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_index_is_refused_before_lambda_is_touched() {
    let e = env(Architecture::X8664).await;
    let index = blocking(|| {
        push_variant(&e.registry, e.work.path(), "acme/thumbs", "amd", "amd64");
        push_variant(&e.registry, e.work.path(), "acme/thumbs", "arm", "arm64");
        let w = e.work.path();
        buildah(w, &["manifest", "create", "localhost/thumbs-index:1"]);
        buildah(
            w,
            &[
                "manifest",
                "add",
                "localhost/thumbs-index:1",
                "localhost/variant-amd:1",
            ],
        );
        buildah(
            w,
            &[
                "manifest",
                "add",
                "localhost/thumbs-index:1",
                "localhost/variant-arm:1",
            ],
        );
        let auth = authfile(&e.registry, w);
        let dest = format!("docker://{}/acme/thumbs:index", e.registry.host);
        buildah(
            w,
            &[
                "manifest",
                "push",
                "--all",
                "--authfile",
                &auth,
                "--tls-verify=false",
                "localhost/thumbs-index:1",
                &dest,
            ],
        );
        registry_manifest_digest(&e.registry, "acme/thumbs", "index")
    });
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &index).await;
    assert_eq!(out.result, RunResult::Failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("is an image index") && why.contains("linux/amd64, linux/arm64"),
        "{why}"
    );
    assert!(
        calls(&e.moto, "UpdateFunctionCode").is_empty(),
        "Lambda was not touched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_waits_for_an_update_already_running() {
    let e = env(Architecture::X8664).await;
    let digest =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    // Someone changes the configuration just before: that update runs for 0.9 s.
    blocking(|| {
        e.moto
            .control("lambda/config", json!({"step_seconds": 0.3}))
    });
    e.lambda
        .update_function_configuration()
        .function_name("thumbs")
        .memory_size(256)
        .send()
        .await
        .unwrap();
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &digest).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let conflicts: Vec<Value> = calls(&e.moto, "UpdateFunctionCode")
        .into_iter()
        .filter(|c| c["status"].as_u64() == Some(409))
        .collect();
    assert!(
        conflicts.is_empty(),
        "fastdeploy waited instead of meeting ResourceConflictException: {conflicts:?}"
    );
    assert!(
        out.report
            .events
            .iter()
            .any(|e| e.contains("another update of the function is running")),
        "{:?}",
        out.report.events
    );
}

/// A function still being created (`State` Pending on `$LATEST`, no
/// `LastUpdateStatus` yet) refuses updates with ResourceConflictException:
/// `idle`'s Pending look waits until creation ends, says why once, and only
/// then sends UpdateFunctionCode.
#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_to_a_function_still_being_created_waits_for_it_before_updating() {
    let e = env(Architecture::X8664).await;
    let digest =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let (step, create_steps) = (0.05, 8);
    blocking(|| {
        e.moto.control(
            "lambda/config",
            json!({"step_seconds": step, "create_steps": create_steps}),
        )
    });
    e.lambda
        .create_function()
        .function_name("fresh")
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(format!("{}/acme/thumbs:first", e.registry.host))
                .build(),
        )
        .role(format!("arn:aws:iam::{ACCOUNT}:role/thumbs"))
        .send()
        .await
        .unwrap();
    let (log, actions) = Actions::capture();
    let out = e
        .deployer(SCALE)
        .with_actions(actions)
        .lambda(
            &plan("fresh"),
            &image(&e.registry.host, "acme/thumbs", &digest),
        )
        .await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert_eq!(
        lines
            .matches("[fresh] the function is still being created (State Pending: The function is being created.); waiting")
            .count(),
        1,
        "said once: {lines}"
    );
    let updates: Vec<Value> = calls(&e.moto, "UpdateFunctionCode")
        .into_iter()
        .filter(|c| c["function"] == "fresh")
        .collect();
    assert_eq!(updates.len(), 1, "no update met the creation: {updates:?}");
    assert_eq!(updates[0]["status"], 200);
    let created = calls(&e.moto, "CreateFunction")
        .into_iter()
        .find(|c| c["function"] == "fresh")
        .unwrap();
    let waited = updates[0]["time"].as_f64().unwrap() - created["time"].as_f64().unwrap();
    assert!(
        waited >= step * f64::from(create_steps),
        "UpdateFunctionCode came {waited:.3} s after CreateFunction, before creation ended"
    );
}

/// A function whose creation failed (`State` Failed on `$LATEST`: "you
/// must delete and recreate the function", as the Lambda guide says) can
/// take no update; `idle` must not read it as idle. The deploy should stop
/// at once, naming the state and Lambda's StateReason, instead of sending
/// UpdateFunctionCode every poll until `wait-minutes` (each answered 409)
/// and then blaming "another update".
#[tokio::test(flavor = "multi_thread")]
async fn a_function_whose_creation_failed_stops_the_deploy_at_once_naming_its_state() {
    let e = env(Architecture::X8664).await;
    let (digest, bad) = blocking(|| {
        (
            push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"),
            push_variant(
                &e.registry,
                e.work.path(),
                "acme/badimage-thumbs",
                "bad",
                "amd64",
            ),
        )
    });
    // The sandbox fails the creation of a function whose image holds its marker.
    e.lambda
        .create_function()
        .function_name("broken")
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(format!("{}/acme/badimage-thumbs@{bad}", e.registry.host))
                .build(),
        )
        .role(format!("arn:aws:iam::{ACCOUNT}:role/thumbs"))
        .send()
        .await
        .unwrap();
    loop {
        let c = e
            .lambda
            .get_function_configuration()
            .function_name("broken")
            .send()
            .await
            .unwrap();
        if c.state() == Some(&aws_sdk_lambda::types::State::Failed) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let p = LambdaPlan {
        watch: WatchPlan {
            wait_seconds: 60,
            ..plan("broken").watch
        },
        ..plan("broken")
    };
    let out = deploy(&e, &p, "acme/thumbs", &digest).await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("Failed") && why.contains("InvalidImage") && !why.contains("no verdict"),
        "{why}"
    );
    let updates = calls(&e.moto, "UpdateFunctionCode")
        .into_iter()
        .filter(|c| c["function"] == "broken")
        .count();
    assert_eq!(updates, 0, "UpdateFunctionCode sent {updates} times");

    // Still being created when the deploy starts, failed while it waits:
    // the wait for creation ends at the failure, not at the deadline.
    blocking(|| {
        e.moto.control(
            "lambda/config",
            json!({"step_seconds": 0.05, "create_steps": 8}),
        )
    });
    e.lambda
        .create_function()
        .function_name("dying")
        .package_type(PackageType::Image)
        .code(
            FunctionCode::builder()
                .image_uri(format!("{}/acme/badimage-thumbs@{bad}", e.registry.host))
                .build(),
        )
        .role(format!("arn:aws:iam::{ACCOUNT}:role/thumbs"))
        .send()
        .await
        .unwrap();
    let p = LambdaPlan {
        watch: WatchPlan {
            wait_seconds: 60,
            ..plan("dying").watch
        },
        ..plan("dying")
    };
    let (log, actions) = Actions::capture();
    let out = e
        .deployer(SCALE)
        .with_actions(actions)
        .lambda(&p, &image(&e.registry.host, "acme/thumbs", &digest))
        .await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("Lambda function dying is in State Failed") && why.contains("InvalidImage"),
        "{why}"
    );
    let lines = log.lines().join("\n");
    assert!(
        lines.contains("[dying] the function is still being created"),
        "it waited for the creation first: {lines}"
    );
    let updates = calls(&e.moto, "UpdateFunctionCode")
        .into_iter()
        .filter(|c| c["function"] == "dying")
        .count();
    assert_eq!(updates, 0, "UpdateFunctionCode sent {updates} times");
}

/// Someone else's configuration change lands between our look at
/// `$LATEST` and our UpdateFunctionCode: still running, Lambda answers 409
/// ResourceConflictException; already finished, our RevisionId is stale and
/// Lambda answers 412 PreconditionFailedException. Either way `update_code`
/// says so, waits for the function to be idle, reads it again and retries
/// with the new RevisionId; the deploy succeeds and the other change stays.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_meets_a_409_or_412_from_someone_elses_change_reads_again_and_retries() {
    let e = env(Architecture::X8664).await;
    for (settled, memory, status, code) in [
        (false, 256, 409, "ResourceConflictException"),
        (true, 384, 412, "PreconditionFailedException"),
    ] {
        let tag = format!("raced-{status}");
        let digest =
            blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", &tag, "amd64"));
        blocking(|| {
            e.moto.control(
                "lambda/interleave",
                json!({"before": "UpdateFunctionCode", "function": "thumbs",
                       "configuration": {"MemorySize": memory}, "settled": settled}),
            );
            e.moto.control("lambda/calls", json!({"clear": true}))
        });
        let (log, actions) = Actions::capture();
        let out = e
            .deployer(SCALE)
            .with_actions(actions)
            .lambda(
                &plan("thumbs"),
                &image(&e.registry.host, "acme/thumbs", &digest),
            )
            .await;
        let lines = log.lines().join("\n");
        assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
        assert_eq!(
            statuses(&e.moto, "UpdateFunctionCode"),
            [status, 200],
            "refused once, then accepted: {lines}"
        );
        assert!(
            lines.contains(&format!(
                "[thumbs] thumbs changed or is being updated by someone else ({code}); reading it again"
            )),
            "{lines}"
        );
        let latest = e
            .lambda
            .get_function_configuration()
            .function_name("thumbs")
            .send()
            .await
            .unwrap();
        assert_eq!(latest.code_sha256(), digest.strip_prefix("sha256:"));
        assert_eq!(
            latest.memory_size(),
            Some(memory),
            "the other change was kept"
        );
        assert_eq!(
            alias_version(&e).await.as_deref(),
            Some(version_of(&out.report.revision))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_rolls_back_the_alias_stays_and_latest_is_set_back() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    // Updates now take 2 s; the deploy waits 60 s × 0.01.
    blocking(|| {
        e.moto
            .control("lambda/config", json!({"step_seconds": 0.5, "steps": 4}))
    });
    let slow =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "slow", "amd64"));
    let p = LambdaPlan {
        watch: WatchPlan {
            wait_seconds: 60,
            ..plan("thumbs").watch
        },
        ..plan("thumbs")
    };
    let out = deploy(&e, &p, "acme/thumbs", &slow).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("no verdict within 60 s") && why.contains("alias live still serves thumbs:1"),
        "{why}"
    );
    assert!(why.contains("$LATEST set back"), "{why}");
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    let latest = calls(&e.moto, "UpdateFunctionCode");
    let last = latest.last().unwrap();
    assert!(
        last["body"]["ImageUri"].as_str().unwrap().ends_with(&good),
        "$LATEST goes back to version 1's image: {last}"
    );

    // Without rollback the same timeout is a failure that says what serves.
    let slower =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "slower", "amd64"));
    let p = LambdaPlan {
        watch: WatchPlan {
            wait_seconds: 60,
            rollback: false,
            ..plan("thumbs").watch
        },
        ..plan("thumbs")
    };
    // Let the restore above finish first.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let out = deploy(&e, &p, "acme/thumbs", &slower).await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("`rollback` is off") && why.contains("alias live still serves thumbs:1"),
        "{why}"
    );
}

/// The alias moved but its answer was lost: the SDK's retry meets a changed
/// revision id (UpdateAlias) or an existing alias (CreateAlias). The alias
/// points at our version, and the run says so instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_to_moving_or_creating_the_alias_is_checked_against_the_alias() {
    let e = env(Architecture::X8664).await;
    let first =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    blocking(|| {
        e.moto.control(
            "faults/config",
            json!({"rules": [{"action": "CreateAlias", "mode": "lost-answer", "times": 1}]}),
        )
    });
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &first).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(
        alias_version(&e).await.as_deref(),
        Some(version_of(&out.report.revision))
    );

    let second =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    blocking(|| {
        e.moto.control(
            "faults/config",
            json!({"rules": [{"action": "UpdateAlias", "mode": "lost-answer", "times": 1}]}),
        )
    });
    let (log, actions) = Actions::capture();
    let second = image(&e.registry.host, "acme/thumbs", &second);
    let out = e
        .deployer(SCALE)
        .with_actions(actions)
        .lambda(&plan("thumbs"), &second)
        .await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert!(
        lines.contains("lambda:UpdateAlias answered an error") && lines.contains("the move took"),
        "{lines}"
    );
    assert_eq!(
        alias_version(&e).await.as_deref(),
        Some(version_of(&out.report.revision))
    );
    assert_eq!(out.report.serving_revision, out.report.revision);
}

/// Lambda throttles a stretch of `GetFunctionConfiguration` calls (429
/// `TooManyRequestsException`, `Reason: CallerRateLimitExceeded`) while the
/// update applies, each look outlasting the SDK's three attempts. Seven
/// failed looks in a row are ridden out and the deploy succeeds; a run of
/// `MAX_FAILED_LOOKS` ends it, naming the call and the throttle, and rolls
/// back as a timeout would.
#[tokio::test(flavor = "multi_thread")]
async fn throttled_looks_are_ridden_out_and_only_a_run_of_them_ends_the_deploy_with_a_rollback() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    // Throttled from the third call on: after the version check and the
    // look that finds no other update running, every look at the update.
    let throttle = |looks: u32| {
        let rule = json!({"action": "GetFunctionConfiguration", "kind": "throttle", "skip": 2, "times": looks * 3});
        blocking(|| {
            e.moto
                .control("faults/config", json!({"reset": true, "rules": [rule]}))
        })
    };
    throttle(7);
    let second =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let (log, actions) = Actions::capture();
    let second = image(&e.registry.host, "acme/thumbs", &second);
    let out = e
        .deployer(SCALE)
        .with_actions(actions)
        .lambda(&plan("thumbs"), &second)
        .await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert_eq!(lines.matches("could not look (").count(), 7, "{lines}");
    assert!(
        lines.contains("TooManyRequestsException: Rate exceeded (Reason: CallerRateLimitExceeded)"),
        "the throttle is named: {lines}"
    );

    let looks = fastdeploy::wait::MAX_FAILED_LOOKS;
    throttle(looks);
    let third =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "third", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &third).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.starts_with(&format!(
            "`lambda:GetFunctionConfiguration` failed {looks} times in a row (waiting for Lambda to apply the update)"
        )) && why.contains("TooManyRequestsException"),
        "{why}"
    );
    assert!(
        why.contains("fastdeploy rolled back: alias live still serves thumbs:2")
            && why.contains("$LATEST set back to the image of version 2"),
        "{why}"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("2"));
}

/// PublishVersion refused after the update applied: the alias never moved,
/// and `$LATEST` goes back to the previous version's image.
#[tokio::test(flavor = "multi_thread")]
async fn a_publish_that_fails_after_the_update_sets_latest_back() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    let next =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "next", "amd64"));
    blocking(|| {
        e.moto.control(
            "faults/config",
            json!({"rules": [{"action": "PublishVersion", "status": 400, "code": "InvalidParameterValueException", "message": "refused by the test", "times": 10}]}),
        )
    });
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &next).await;
    // The alias never moved and `$LATEST` is back: the previous version
    // serves as before, which is a rollback.
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("refused by the test") && why.contains("alias live still serves thumbs:1"),
        "{why}"
    );
    assert!(
        why.contains("$LATEST set back to the image of version 1"),
        "{why}"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    let last = calls(&e.moto, "UpdateFunctionCode")
        .last()
        .cloned()
        .unwrap();
    assert!(
        last["body"]["ImageUri"].as_str().unwrap().ends_with(&good),
        "$LATEST goes back to version 1's image: {last}"
    );
}

/// Someone else's configuration change starts just before our
/// PublishVersion: Lambda answers 409 ResourceConflictException while it
/// runs, and `publish` waits and tries again. Once it has finished, the
/// RevisionId we publish with is stale (412), so the version would not be
/// exactly what we applied: the deploy ends rolled back, saying the
/// function changed between the update and PublishVersion; nothing was
/// published and the alias never moved.
#[tokio::test(flavor = "multi_thread")]
async fn a_publish_that_meets_a_409_from_someone_elses_change_waits_then_refuses_the_changed_function()
 {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    let next =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "next", "amd64"));
    blocking(|| {
        e.moto.control(
            "lambda/interleave",
            json!({"before": "PublishVersion", "function": "thumbs", "configuration": {"MemorySize": 512}}),
        );
        e.moto.control("lambda/calls", json!({"clear": true}))
    });
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &next).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let publishes = statuses(&e.moto, "PublishVersion");
    assert!(
        publishes.len() >= 2
            && publishes[..publishes.len() - 1].iter().all(|s| *s == 409)
            && publishes.last() == Some(&412),
        "409 while the other update ran, then 412 for the stale RevisionId: {publishes:?}"
    );
    let why = out.failure.unwrap();
    assert!(
        why.starts_with(
            "Lambda function thumbs changed between the update and PublishVersion (another deploy?)"
        ),
        "{why}"
    );
    assert!(
        why.contains("fastdeploy rolled back: alias live still serves thumbs:1")
            && why.contains("$LATEST set back to the image of version 1"),
        "{why}"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
}

/// Cancelled while Lambda applies the update: the alias never moves, and
/// `$LATEST` is set back to the previous version's image even though the
/// run is cancelled (the rollback's own waits end at its settle deadline).
#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_while_the_update_applies_sets_latest_back_and_leaves_the_alias() {
    let e = env(Architecture::X8664).await;
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "good", "amd64"));
    assert_eq!(
        deploy(&e, &plan("thumbs"), "acme/thumbs", &good)
            .await
            .result,
        RunResult::Success
    );
    // The next update takes 0.4 s (4 steps of 0.1 s); the cancel comes as it
    // starts. Time runs at 0.1 here, so a cancelled run's settle budget (6 s)
    // is 0.6 s: enough for that update to end and $LATEST to be set back.
    blocking(|| {
        e.moto
            .control("lambda/config", json!({"step_seconds": 0.1, "steps": 4}))
    });
    let slow =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "slow", "amd64"));
    let (log, actions, cancel, canceller) =
        crate::support::sandbox::cancel_on_line("LastUpdateStatus InProgress");
    let slow = image(&e.registry.host, "acme/thumbs", &slow);
    let deployer = e.deployer(0.1).with_actions(actions).with_cancel(cancel);
    let out = deployer.lambda(&plan("thumbs"), &slow).await;
    canceller.await.unwrap();
    let lines = log.lines().join("\n");
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{lines}",
        out.failure
    );
    let why = out.failure.unwrap();
    assert!(
        why.contains("the workflow was cancelled")
            && why.contains("alias live still serves thumbs:1"),
        "{why}"
    );
    assert!(
        why.contains("$LATEST set back to the image of version 1"),
        "{why}"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    let last = calls(&e.moto, "UpdateFunctionCode")
        .last()
        .cloned()
        .unwrap();
    assert!(
        last["body"]["ImageUri"].as_str().unwrap().ends_with(&good),
        "$LATEST goes back to version 1's image: {last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_rejects_a_missing_function_and_a_zip_function_as_bad_input() {
    let e = env(Architecture::X8664).await;
    let err = e
        .deployer(SCALE)
        .preflight_lambda(&plan("nope"))
        .await
        .unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    assert!(
        err.to_string()
            .contains("Lambda function nope does not exist in this account and region"),
        "{err}"
    );

    blocking(|| create_role(&e.moto, "zipped"));
    e.lambda
        .create_function()
        .function_name("zipped")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(format!("arn:aws:iam::{ACCOUNT}:role/zipped"))
        .code(
            FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_with_one_file()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let err = e
        .deployer(SCALE)
        .preflight_lambda(&plan("zipped"))
        .await
        .unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    assert!(
        err.to_string()
            .contains("Lambda function zipped is a Zip function"),
        "{err}"
    );

    let found = e
        .deployer(SCALE)
        .preflight_lambda(&plan("thumbs"))
        .await
        .unwrap();
    let platform = found.platform.unwrap();
    assert_eq!(
        (platform.why.as_str(), platform.platform.as_str()),
        ("Lambda function thumbs runs on x86_64", "linux/amd64")
    );
}

/// A ZIP archive holding `app.py`, stored (no compression), as CreateFunction takes it.
pub(crate) fn zip_with_one_file() -> Vec<u8> {
    let body = b"def handler(event, context):\n    return 1\n";
    let name = b"app.py";
    let crc = crc32(body);
    let mut z = Vec::new();
    let local = |z: &mut Vec<u8>| {
        z.extend_from_slice(&0x04034b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(body.len() as u32).to_le_bytes());
        z.extend_from_slice(&(body.len() as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name);
        z.extend_from_slice(body);
    };
    local(&mut z);
    let central_at = z.len() as u32;
    z.extend_from_slice(&0x02014b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&(body.len() as u32).to_le_bytes());
    z.extend_from_slice(&(body.len() as u32).to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name);
    let central_len = z.len() as u32 - central_at;
    z.extend_from_slice(&0x06054b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central_at.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------
// The binary, on examples/shop: `web` to ECS and `thumbs` to Lambda in one run.

fn images_output(sb: &FullSandbox) -> Value {
    serde_json::from_str(&sb.output("images").expect("the images output is written")).unwrap()
}

fn alias_of(sb: &FullSandbox) -> Option<String> {
    block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&sb.moto.sdk_config().await);
        let out = lambda
            .get_alias()
            .function_name(FUNCTION)
            .name("live")
            .send()
            .await
            .ok()?;
        out.function_version().map(str::to_string)
    })
}

fn run_config(sb: &FullSandbox) -> Ran {
    run(sb.config_command())
}

#[test]
fn one_run_deploys_the_ecs_and_the_lambda_component_and_a_second_run_changes_nothing() {
    let sb = FullSandbox::start_with_config();
    let ran = run_config(&sb);
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert_eq!(sb.output("result").as_deref(), Some("success"));
    let images = images_output(&sb);
    assert_eq!(images["web"]["result"], "success", "{images}");
    assert_eq!(images["web"]["target"]["kind"], "ecs");
    assert_eq!(images["thumbs"]["result"], "success", "{images}");
    assert_eq!(
        images["thumbs"]["target"],
        json!({"kind": "lambda", "function": FUNCTION, "alias": "live"})
    );
    assert_eq!(images["thumbs"]["function-version"], "1");
    let tags: Vec<&str> = images["thumbs"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tags.iter().any(|t| t.starts_with("content-")) && tags.contains(&"production"),
        "every tag pushed, the content tag too: {tags:?}"
    );
    let digest = images["thumbs"]["digest"].as_str().unwrap();
    assert_eq!(
        images["thumbs"]["image"],
        format!("{}/{FUNCTION_REPOSITORY}@{digest}", sb.registry.host)
    );
    assert_eq!(alias_of(&sb).as_deref(), Some("1"));
    let updates = calls(&sb.moto, "UpdateFunctionCode");
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0]["body"]["ImageUri"], images["thumbs"]["image"],
        "Lambda got the digest that was pushed"
    );
    assert!(
        ran.stdout
            .contains("Lambda function shop-thumbs runs on x86_64: building for linux/amd64"),
        "{}",
        ran.log()
    );
    // The web component went to its ECS service, by digest.
    let web = images["web"]["image"].as_str().unwrap();
    assert!(
        web.starts_with(&format!("{}/{REPOSITORY}@sha256:", sb.registry.host)),
        "{web}"
    );

    // Reports name both, alike.
    let summary = sb.summary();
    assert!(
        summary.contains("| web |") && summary.contains("| thumbs |"),
        "{summary}"
    );
    let slack = slack_messages(&sb);
    let text = slack.last().unwrap()["body"].to_string();
    assert!(text.contains("thumbs") && text.contains("web"), "{text}");

    // A second run of the same commit: nothing rebuilt, updated or published.
    let again = run_config(&sb);
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(
        calls(&sb.moto, "UpdateFunctionCode").len(),
        1,
        "no second update: {}",
        again.log()
    );
    assert_eq!(
        calls(&sb.moto, "PublishVersion").len(),
        1,
        "no second version"
    );
    assert_eq!(alias_of(&sb).as_deref(), Some("1"));
    assert_eq!(images_output(&sb)["thumbs"]["result"], "skipped");
}

#[test]
fn a_lambda_update_the_sandbox_fails_ends_rolled_back_with_the_reason_in_the_log_summary_and_slack()
{
    let sb = FullSandbox::start_with_config();
    assert_eq!(run_config(&sb).code, 0);
    // The next thumbs image fails to apply: the sandbox marks every URI.
    sb.moto.control(
        "lambda/config",
        json!({"markers": [{"marker": "shop-thumbs", "code": "InvalidImage"}]}),
    );
    std::fs::write(
        sb.workspace.join("thumbs/handler.sh"),
        "#!/bin/sh\necho '{\"statusCode\": 200, \"body\": \"v2\"}'\n",
    )
    .unwrap();
    crate::support::sandbox::commit_all(&sb.workspace, "main", "Thumbnails v2");
    let mut cmd = sb.config_command();
    let sha = String::from_utf8_lossy(
        &Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&sb.workspace)
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    cmd.env("GITHUB_SHA", &sha);
    let ran = run(cmd);
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("rolled-back"),
        "{}",
        ran.log()
    );
    assert!(
        ran.stdout.contains("InvalidImage"),
        "the reason is in the log: {}",
        ran.log()
    );
    assert!(
        ran.stdout.contains("alias live still serves shop-thumbs:1"),
        "{}",
        ran.log()
    );
    let summary = sb.summary();
    assert!(
        summary.contains("InvalidImage") && summary.contains("serving shop-thumbs:1"),
        "{summary}"
    );
    let text = slack_messages(&sb).last().unwrap()["body"].to_string();
    assert!(
        text.contains("InvalidImage") && text.contains("shop-thumbs:1"),
        "{text}"
    );
    assert_eq!(alias_of(&sb).as_deref(), Some("1"));
    assert_eq!(
        images_output(&sb)["web"]["result"],
        "skipped",
        "the ECS component is judged on its own"
    );
}

/// The versions of the function, as Lambda lists them (without `$LATEST`).
async fn versions(e: &Env) -> Vec<String> {
    let out = e
        .lambda
        .list_versions_by_function()
        .function_name("thumbs")
        .send()
        .await
        .unwrap();
    let mut v: Vec<String> = out
        .versions()
        .iter()
        .filter_map(|c| c.version())
        .filter(|v| *v != "$LATEST")
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// `keep-revisions: 1` deletes fastdeploy's older versions after a
/// success, but never the one that serves, the one before it (what a
/// rollback moves the alias back to) or one another alias points at (which
/// Lambda refuses to delete anyway); then a rollback moves the alias back
/// to the version its serving version recorded.
#[tokio::test(flavor = "multi_thread")]
async fn keep_revisions_deletes_old_versions_but_never_an_aliased_one_and_rollback_moves_the_alias_back()
 {
    let e = env(Architecture::X8664).await;
    let p = LambdaPlan {
        keep_revisions: Some(1),
        ..plan("thumbs")
    };
    let mut digests = Vec::new();
    for tag in ["k1", "k2", "k3", "k4"] {
        digests.push(blocking(|| {
            push_variant(&e.registry, e.work.path(), "acme/thumbs", tag, "amd64")
        }));
    }
    let out = deploy(&e, &p, "acme/thumbs", &digests[0]).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    e.lambda
        .create_alias()
        .function_name("thumbs")
        .name("beta")
        .function_version("1")
        .send()
        .await
        .unwrap();
    // Lambda itself refuses to delete a version an alias uses.
    let refused = e
        .lambda
        .delete_function()
        .function_name("thumbs")
        .qualifier("1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&refused),
        Some("ResourceConflictException")
    );
    for d in &digests[1..] {
        let out = deploy(&e, &p, "acme/thumbs", d).await;
        assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    }
    assert_eq!(
        versions(&e).await,
        ["1", "3", "4"],
        "4 serves, 3 served before it, beta uses 1; 2 was deleted"
    );
    let deletes: Vec<Value> = calls(&e.moto, "DeleteFunction");
    let statuses: Vec<(String, u64)> = deletes
        .iter()
        .map(|c| {
            (
                c["qualifier"].as_str().unwrap_or_default().to_string(),
                c["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("1".to_string(), 409), ("2".to_string(), 204)],
        "the test's own refused delete, then fastdeploy's one: no refused delete was tried"
    );

    // What promote would take from it: the image version 4 runs, by digest.
    let (log, actions) = Actions::capture();
    let deployer = e.deployer(SCALE).with_actions(actions);
    {
        use fastdeploy::deploy::Target;
        let f = fastdeploy::deploy::lambda::Function::new(&p);
        let serving = f.serving_image(&deployer.cx()).await.unwrap();
        assert_eq!(serving.digest, digests[3]);
        assert!(
            serving
                .uri
                .ends_with(&format!("acme/thumbs@{}", digests[3])),
            "{serving:?}"
        );
    }

    // Rollback: back to 3, as version 4's description records.
    let mut f = fastdeploy::deploy::lambda::Function::new(&p);
    let back = deployer.roll_back(&mut f, None).await.unwrap();
    let lines = log.lines().join("\n");
    assert_eq!(back.result, RunResult::Success, "{lines}");
    assert_eq!(alias_version(&e).await.as_deref(), Some("3"), "{lines}");
    assert!(
        lines.contains("rolling back alias live to version 3"),
        "{lines}"
    );
    // By digest: the newest version running that image.
    let mut f = fastdeploy::deploy::lambda::Function::new(&p);
    let by_digest = deployer.roll_back(&mut f, Some(&digests[3])).await.unwrap();
    assert_eq!(by_digest.result, RunResult::Success);
    assert_eq!(alias_version(&e).await.as_deref(), Some("4"));
}

/// `env` of the runtime configuration as the config would give it.
fn with_env(vars: &[(&str, &str)]) -> LambdaPlan {
    use fastdeploy::settings::runtime::{EnvVar, RuntimeConfig, Written};
    let env = vars
        .iter()
        .enumerate()
        .map(|(i, (name, value))| EnvVar {
            name: name.to_string(),
            value: value.to_string(),
            shown: format!("{value:?}"),
            written: Written {
                path: format!("components.thumbs.env.{name}"),
                file: None,
                line: 5 + i as u32,
                column: 9,
            },
        })
        .collect();
    LambdaPlan {
        config: RuntimeConfig {
            env,
            secrets: vec![],
        },
        ..plan("thumbs")
    }
}

async fn variables(e: &Env, qualifier: &str) -> std::collections::HashMap<String, String> {
    let c = e
        .lambda
        .get_function_configuration()
        .function_name("thumbs")
        .qualifier(qualifier)
        .send()
        .await
        .unwrap();
    c.environment()
        .and_then(|v| v.variables())
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn env_is_set_before_the_code_so_the_version_holds_both_and_other_variables_are_kept() {
    let e = env(Architecture::X8664).await;
    // A variable set by hand once the function is created, its update still
    // running when the deploy starts.
    for _ in 0..100 {
        let c = e
            .lambda
            .get_function_configuration()
            .function_name("thumbs")
            .send()
            .await
            .unwrap();
        if c.state() == Some(&aws_sdk_lambda::types::State::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    e.lambda
        .update_function_configuration()
        .function_name("thumbs")
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("KEEP_ME", "1")
                .variables("LOG_LEVEL", "warning")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let digest =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let plan = with_env(&[("LOG_LEVEL", "debug"), ("FEATURE_X", "on")]);
    let out = deploy(&e, &plan, "acme/thumbs", &digest).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out);
    let v1 = variables(&e, "1").await;
    assert_eq!(
        v1.get("LOG_LEVEL").map(String::as_str),
        Some("debug"),
        "{v1:?}"
    );
    assert_eq!(
        v1.get("FEATURE_X").map(String::as_str),
        Some("on"),
        "{v1:?}"
    );
    assert_eq!(
        v1.get("KEEP_ME").map(String::as_str),
        Some("1"),
        "kept: {v1:?}"
    );
    let configs = calls(&e.moto, "UpdateFunctionConfiguration");
    assert_eq!(configs.len(), 2, "the hand's and ours: {configs:?}");
    assert!(
        configs[1]["body"]["RevisionId"].is_string(),
        "guarded by the RevisionId just read: {configs:?}"
    );
    assert!(
        out.report
            .events
            .iter()
            .any(|l| l.contains("configuration update: LastUpdateStatus Successful")),
        "waited for Lambda to apply it: {:?}",
        out.report.events
    );

    // The same image and variables: nothing to do.
    let again = deploy(&e, &plan, "acme/thumbs", &digest).await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert_eq!(calls(&e.moto, "UpdateFunctionConfiguration").len(), 2);

    // Only a variable changed: a new version of the same code.
    let info = with_env(&[("LOG_LEVEL", "info"), ("FEATURE_X", "on")]);
    let changed = deploy(&e, &info, "acme/thumbs", &digest).await;
    assert_eq!(changed.result, RunResult::Success, "{:?}", changed);
    assert_eq!(version_of(&changed.report.revision), "2");
    assert_eq!(
        calls(&e.moto, "UpdateFunctionCode").len(),
        1,
        "the code was not sent again"
    );
    let v2 = variables(&e, "2").await;
    assert_eq!(
        v2.get("LOG_LEVEL").map(String::as_str),
        Some("info"),
        "{v2:?}"
    );
    assert_eq!(alias_version(&e).await.as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_smoke_test_invokes_the_new_version_before_the_alias_moves_and_a_failing_one_leaves_the_alias()
 {
    let e = env(Architecture::X8664).await;
    let event = r#"{"bucket": "uploads", "key": "smoke.jpg"}"#;
    let plan = LambdaPlan {
        smoke_test_event: Some(event.into()),
        ..plan("thumbs")
    };
    let good =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let out = deploy(&e, &plan, "acme/thumbs", &good).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out);
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));
    let invokes = calls(&e.moto, "Invoke");
    assert_eq!(invokes.len(), 1, "{invokes:?}");
    assert_eq!(
        invokes[0]["qualifier"], "1",
        "the new version, not the alias: {invokes:?}"
    );
    assert_eq!(invokes[0]["invocation_type"], "RequestResponse");
    assert_eq!(invokes[0]["log_type"], "Tail");
    assert!(
        invokes[0]["payload"].to_string().contains("smoke.jpg"),
        "{invokes:?}"
    );
    // The alias was created after the invocation answered.
    let alias_at = calls(&e.moto, "CreateAlias")[0]["time"].as_f64().unwrap();
    assert!(invokes[0]["time"].as_f64().unwrap() < alias_at);

    // A handler that throws: its version is published and invoked, the
    // alias stays, and the error and the log tail say why.
    let failing = blocking(|| {
        push_variant(
            &e.registry,
            e.work.path(),
            "acme/thumbs-smokefail",
            "third",
            "amd64",
        )
    });
    let out = deploy(&e, &plan, "acme/thumbs-smokefail", &failing).await;
    assert_ne!(out.result, RunResult::Success, "{:?}", out);
    let why = out.failure.clone().unwrap_or_default();
    assert!(
        why.contains("the smoke test of version 2 failed, so alias live was not moved")
            && why.contains("function error (Unhandled): KeyError: 'bucket'")
            && why.contains("[ERROR] KeyError: 'bucket'"),
        "{why}"
    );
    assert_eq!(
        alias_version(&e).await.as_deref(),
        Some("1"),
        "the alias stays"
    );
    assert!(
        out.report.evidence.iter().any(|l| l.contains("Traceback")),
        "{:?}",
        out.report.evidence
    );

    // A timeout is a failure too.
    let slow = blocking(|| {
        push_variant(
            &e.registry,
            e.work.path(),
            "acme/thumbs-smoketimeout",
            "fourth",
            "amd64",
        )
    });
    let out = deploy(&e, &plan, "acme/thumbs-smoketimeout", &slow).await;
    assert_ne!(out.result, RunResult::Success, "{:?}", out);
    let why = out.failure.clone().unwrap_or_default();
    assert!(why.contains("Task timed out after"), "{why}");
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));

    // Lambda throttling the invocation ran nothing: it is tried again.
    blocking(|| {
        e.moto.control(
            "faults/config",
            json!({"reset": true, "rules": [{"action": "Invoke", "kind": "throttle", "times": 1}]}),
        )
    });
    let fifth =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "fifth", "amd64"));
    let before = calls(&e.moto, "Invoke").len();
    let out = deploy(&e, &plan, "acme/thumbs", &fifth).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out);
    assert_eq!(calls(&e.moto, "Invoke").len(), before + 1, "run once");
    assert_eq!(alias_version(&e).await.as_deref(), Some("4"));

    // An answer lost after the function ran: never sent again.
    blocking(|| {
        e.moto.control(
            "faults/config",
            json!({"reset": true, "rules": [{"action": "Invoke", "kind": "5xx", "mode": "lost-answer", "times": 1}]}),
        )
    });
    let sixth =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "sixth", "amd64"));
    let before = calls(&e.moto, "Invoke").len();
    let out = deploy(&e, &plan, "acme/thumbs", &sixth).await;
    blocking(|| e.moto.control("faults/config", json!({"reset": true})));
    assert_ne!(out.result, RunResult::Success, "{:?}", out);
    let why = out.failure.clone().unwrap_or_default();
    assert!(
        why.contains("it is not sent again, since it may have run"),
        "{why}"
    );
    assert_eq!(calls(&e.moto, "Invoke").len(), before + 1, "sent once");
    assert_eq!(
        alias_version(&e).await.as_deref(),
        Some("4"),
        "the alias stays"
    );
}

/// With `targets:`, a function whose alias moved goes back to the version
/// it was on when another target of the component fails.
#[tokio::test(flavor = "multi_thread")]
async fn with_targets_the_alias_moves_back_when_a_service_of_the_component_fails() {
    use fastdeploy::plan::TargetPlan;
    let e = env(Architecture::X8664).await;
    let (second, third) = tokio::task::block_in_place(|| {
        (
            push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"),
            push_variant(&e.registry, e.work.path(), "acme/thumbs", "third", "amd64"),
        )
    });
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &second).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(alias_version(&e).await.as_deref(), Some("1"));

    let web =
        crate::support::deploy::failing_service(&e.moto, &e.sdk, "web", plan("thumbs").watch).await;
    let targets = vec![TargetPlan::Lambda(plan("thumbs")), TargetPlan::Ecs(web)];
    let component = crate::support::deploy::component("thumbs", "acme/thumbs", targets);
    let d = e.deployer(SCALE);
    let change = fastdeploy::deploy::Change::Image(image(&e.registry.host, "acme/thumbs", &third));
    let out = fastdeploy::deploy::deploy(&d.cx(), &component, &change)
        .await
        .unwrap();
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert_eq!(
        alias_version(&e).await.as_deref(),
        Some("1"),
        "{:?}",
        out.failure
    );
    assert_eq!(out.report.result, Some(RunResult::RolledBack));
    let failure = out.failure.unwrap();
    assert!(
        failure.contains("thumbs: put back with the component: web did not succeed")
            && failure.contains("fastdeploy rolled back: alias live serves thumbs:1 again"),
        "{failure}"
    );
}

/// The alias's version and its routing (version → weight).
async fn alias_routing(e: &Env) -> (String, Vec<(String, f64)>) {
    let a = e
        .lambda
        .get_alias()
        .function_name("thumbs")
        .name("live")
        .send()
        .await
        .unwrap();
    let mut weights: Vec<(String, f64)> = a
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    (
        a.function_version().unwrap_or_default().to_string(),
        weights,
    )
}

/// Waits until the alias routes a share to `version`, then, with `errors`,
/// puts that many `Errors` for it as Lambda publishes them for a weighted
/// alias (FunctionName, Resource `thumbs:live`, ExecutedVersion).
async fn when_routed(e: &Env, version: &str, errors: Option<f64>) -> Vec<(String, f64)> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    for _ in 0..500 {
        let (_, weights) = alias_routing(e).await;
        if weights.iter().any(|(v, _)| v == version) {
            if let Some(n) = errors {
                let cw = aws_sdk_cloudwatch::Client::new(&e.sdk);
                let dim = |k: &str, v: &str| Dimension::builder().name(k).value(v).build();
                cw.put_metric_data()
                    .namespace("AWS/Lambda")
                    .metric_data(
                        MetricDatum::builder()
                            .metric_name("Errors")
                            .dimensions(dim("FunctionName", "thumbs"))
                            .dimensions(dim("Resource", "thumbs:live"))
                            .dimensions(dim("ExecutedVersion", version))
                            .value(n)
                            .timestamp(std::time::SystemTime::now().into())
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
            }
            return weights;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "alias live never routed a share to version {version}: {:?}",
        alias_routing(e).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gradual_shift_routes_a_share_then_moves_the_alias_and_errors_set_the_routing_back() {
    let e = env(Architecture::X8664).await;
    let second =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "second", "amd64"));
    let out = deploy(&e, &plan("thumbs"), "acme/thumbs", &second).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(alias_routing(&e).await, ("1".into(), vec![]));
    // 10% for 2 minutes (1.2 s here).
    let plan = LambdaPlan {
        shift: Some(fastdeploy::plan::Shift {
            percent: 10,
            seconds: 120,
        }),
        ..plan("thumbs")
    };
    let third =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "third", "amd64"));
    let (lines, actions) = Actions::capture();
    let d = e.deployer(SCALE).with_actions(actions);
    let img = image(&e.registry.host, "acme/thumbs", &third);
    let (out, routed) = tokio::join!(d.lambda(&plan, &img), when_routed(&e, "2", None));
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(
        routed,
        vec![("2".to_string(), 0.1)],
        "10% to the new version"
    );
    assert_eq!(
        alias_routing(&e).await,
        ("2".into(), vec![]),
        "all of it, no routing left"
    );
    let said = lines.lines().join("\n");
    assert!(
        said.contains(
            "alias live: 10% of invocations to version 2, the rest on version 1, for 2 min"
        ) && said.contains("no errors on version 2 in 2 min: all invocations move")
            && said.contains("alias live: version 1 → 2"),
        "{said}"
    );

    // The next version errs in its share: the routing is set back.
    let fourth =
        blocking(|| push_variant(&e.registry, e.work.path(), "acme/thumbs", "fourth", "amd64"));
    let img = image(&e.registry.host, "acme/thumbs", &fourth);
    let d = e.deployer(SCALE);
    let (out, _) = tokio::join!(d.lambda(&plan, &img), when_routed(&e, "3", Some(3.0)));
    assert_ne!(out.result, RunResult::Success, "{:?}", out);
    let why = out.failure.unwrap();
    assert!(
        why.starts_with("version 3 had 3 errors in its 10% share of alias live's invocations (AWS/Lambda Errors, ExecutedVersion 3); alias live did not move"),
        "{why}"
    );
    assert_eq!(
        alias_routing(&e).await,
        ("2".into(), vec![]),
        "back on version 2, routing cleared"
    );
}
