//! The Elastic Beanstalk target against the sandbox: moto's Elastic Beanstalk
//! with tests/sandbox/ext_beanstalk.py (storage location, application
//! versions processed with EB's checks, updates that move through Updating
//! to Ready with events carrying their RequestId, health, aborts, and images
//! the sandbox marks bad), and moto's S3 for the bundles.
//!
//! Most tests call `deploy::beanstalk` directly on a workspace of their own;
//! the end-to-end test at the bottom runs the binary on examples/shop for a
//! push to main (buildah build, real registry, Slack and GitHub recorded).

use std::io::Read;
use std::path::Path;

use aws_sdk_elasticbeanstalk::types::{ConfigurationOptionSetting, S3Location};
use fastdeploy::deploy::{DeployOutcome, Image};
use fastdeploy::gha::Actions;
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{BeanstalkPlan, BuildPlan, ComponentPlan, TargetPlan, WatchPlan};
use fastdeploy::settings::config::Bundle;
use serde_json::{Value, json};

use crate::support::deploy::Deployer;
use crate::support::run::{Ran, github_deployments, run, slack_messages};
use crate::support::sandbox::{FullSandbox, Moto};

const SCALE: f64 = 0.01;
const APP: &str = "shop";
const ENV: &str = "shop-prod";
const STACK: &str = "64bit Amazon Linux 2023 v4.3.0 running Docker";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The label the environment was created with (nginx from a bare Dockerrun.aws.json).
const FIRST: &str = "v1";

/// Blocking sandbox calls from an async test (or from a plain one).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    eb: aws_sdk_elasticbeanstalk::Client,
    s3: aws_sdk_s3::Client,
    /// The component's build context: a Dockerfile exposing 8080, `.ebextensions/`.
    work: tempfile::TempDir,
}

async fn clients(moto: &Moto) -> (aws_sdk_elasticbeanstalk::Client, aws_sdk_s3::Client) {
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    (aws_sdk_elasticbeanstalk::Client::new(&sdk), s3)
}

/// Application `shop` with environment `shop-prod` on the Docker platform,
/// created with version `v1` (a bare Dockerrun.aws.json of nginx, as a team's
/// first deploy by hand would be). Set the sandbox's pace first
/// (`beanstalk/config`).
pub async fn seed(moto: &Moto, options: Vec<ConfigurationOptionSetting>) {
    let (eb, s3) = clients(moto).await;
    eb.create_application()
        .application_name(APP)
        .send()
        .await
        .unwrap();
    let bucket = eb
        .create_storage_location()
        .send()
        .await
        .unwrap()
        .s3_bucket()
        .unwrap()
        .to_string();
    let first = json!({"AWSEBDockerrunVersion": "1", "Image": {"Name": "public.ecr.aws/nginx/nginx:1.27"}, "Ports": [{"ContainerPort": 80}]});
    s3.put_object()
        .bucket(&bucket)
        .key("manual/v1.json")
        .body(aws_sdk_s3::primitives::ByteStream::from(
            first.to_string().into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    eb.create_application_version()
        .application_name(APP)
        .version_label(FIRST)
        .source_bundle(
            S3Location::builder()
                .s3_bucket(&bucket)
                .s3_key("manual/v1.json")
                .build(),
        )
        .process(true)
        .send()
        .await
        .unwrap();
    eb.create_environment()
        .application_name(APP)
        .environment_name(ENV)
        .solution_stack_name(STACK)
        .version_label(FIRST)
        .set_option_settings(Some(options))
        .send()
        .await
        .unwrap();
}

async fn env_with(step: f64, options: Vec<ConfigurationOptionSetting>) -> Env {
    let moto = blocking(Moto::start);
    blocking(|| moto.control("beanstalk/config", json!({"step_seconds": step})));
    seed(&moto, options).await;
    let (eb, s3) = clients(&moto).await;
    let sdk = moto.sdk_config().await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("Dockerfile"),
        "FROM busybox\nCOPY . /srv\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(work.path().join(".ebextensions")).unwrap();
    std::fs::write(
        work.path().join(".ebextensions/01-env.config"),
        "option_settings:\n  aws:elasticbeanstalk:application:environment:\n    SHOP_MODE: production\n",
    )
    .unwrap();
    std::fs::write(work.path().join("index.html"), "<h1>shop</h1>\n").unwrap();
    Env {
        moto,
        sdk,
        eb,
        s3,
        work,
    }
}

async fn env() -> Env {
    env_with(0.05, vec![]).await
}

fn plan(bundle: Bundle) -> BeanstalkPlan {
    BeanstalkPlan {
        application: APP.into(),
        environment: ENV.into(),
        bundle,
        allow_yellow: false,
        ports: vec![],
        keep_revisions: None,
        config: Default::default(),
        watch: WatchPlan {
            wait_seconds: 600,
            poll_seconds: 5.0,
            rollback: true,
            smoke: None,
            alarms: None,
        },
        swap: None,
    }
}

fn build_plan(context: &Path) -> BuildPlan {
    BuildPlan {
        context: context.to_path_buf(),
        dockerfile: context.join("Dockerfile"),
        target: None,
        build_args: Default::default(),
        platforms: vec![],
        repository: "acme/web".into(),
        tags: vec![],
        labels: Default::default(),
        cache: None,
        push: true,
        secrets: vec![],
    }
}

/// The component `web` deploying to `plan` from the build context `context`.
fn component(plan: &BeanstalkPlan, context: &Path) -> ComponentPlan {
    ComponentPlan {
        name: "web".into(),
        build: build_plan(context),
        deploy: Some(TargetPlan::Beanstalk(plan.clone())),
        also: vec![],
        no_deploy_reason: None,
        promote_from: None,
        order: vec![],
    }
}

/// A digest made of one hex digit, and the image by digest in `repository`.
fn image(repository: &str, digit: char) -> Image {
    let digest = format!("sha256:{}", digit.to_string().repeat(64));
    Image::new(REGISTRY, repository, &digest, None)
}

/// What the executor checks before building: the bundle, the application,
/// the environment.
async fn preflight(
    e: &Env,
    plan: &BeanstalkPlan,
    context: &Path,
) -> anyhow::Result<fastdeploy::deploy::Found> {
    let deployer = Deployer::new(&e.sdk, None, SCALE);
    fastdeploy::deploy::preflight(&deployer.cx(), &component(plan, context)).await
}

/// Deploys (time `scale` times real) and returns the outcome with the lines it printed.
async fn deploy_scaled(
    e: &Env,
    plan: &BeanstalkPlan,
    repository: &str,
    digit: char,
    scale: f64,
) -> (DeployOutcome, Vec<String>) {
    let (captured, actions) = Actions::capture();
    let deployer = Deployer::new(&e.sdk, None, scale).with_actions(actions);
    let component = component(plan, e.work.path());
    let out = deployer
        .beanstalk(plan, &component, &image(repository, digit))
        .await;
    (out, captured.lines())
}

async fn deploy(
    e: &Env,
    plan: &BeanstalkPlan,
    repository: &str,
    digit: char,
) -> (DeployOutcome, Vec<String>) {
    deploy_scaled(e, plan, repository, digit, SCALE).await
}

/// The Elastic Beanstalk calls the sandbox saw, by operation.
fn calls(moto: &Moto, operation: &str) -> Vec<Value> {
    let all = blocking(|| moto.control("beanstalk/calls", json!({})));
    all.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["operation"] == operation)
        .collect()
}

/// The environment as the sandbox holds it (instances and their versions too).
fn sandbox_env(moto: &Moto) -> Value {
    let all = blocking(|| moto.control("beanstalk/environments", json!({})));
    all.as_array()
        .unwrap()
        .iter()
        .find(|e| e["EnvironmentName"] == ENV && e["Status"] != "Terminated")
        .cloned()
        .unwrap()
}

fn instance_versions(moto: &Moto) -> Vec<String> {
    sandbox_env(moto)["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["version"].as_str().unwrap_or("-").to_string())
        .collect()
}

/// The files of the bundle behind `label`, read back from S3.
async fn bundle_files(e: &Env, label: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let v =
        e.eb.describe_application_versions()
            .application_name(APP)
            .version_labels(label)
            .send()
            .await
            .unwrap();
    let sb = v.application_versions()[0].source_bundle().unwrap().clone();
    let obj =
        e.s3.get_object()
            .bucket(sb.s3_bucket().unwrap())
            .key(sb.s3_key().unwrap())
            .send()
            .await
            .unwrap();
    let data = obj.body.collect().await.unwrap().into_bytes().to_vec();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut body = Vec::new();
        f.read_to_end(&mut body).unwrap();
        out.insert(f.name().unwrap().to_string(), body);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_bundle_deploys_when_our_label_serves_ready_and_green_and_a_rerun_reuses_it_and_changes_nothing()
 {
    let e = env().await;
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let label = format!("sha-{}-{}", &COMMIT[..12], "a".repeat(12));
    assert_eq!(
        out.report.revision.as_deref(),
        Some(label.as_str()),
        "the label names the commit and the digest"
    );
    assert_eq!(out.report.serving_revision, out.report.revision);
    assert_eq!(out.report.previous_revision.as_deref(), Some(FIRST));
    let env = sandbox_env(&e.moto);
    assert_eq!(
        (
            env["Status"].as_str(),
            env["VersionLabel"].as_str(),
            env["Health"].as_str()
        ),
        (Some("Ready"), Some(label.as_str()), Some("Green"))
    );
    assert_eq!(
        out.report.url,
        Some(format!("http://{}", env["CNAME"].as_str().unwrap()))
    );

    // The bundle: Dockerrun.aws.json naming the image by digest with the
    // Dockerfile's port, and the component's .ebextensions, nothing else.
    let files = bundle_files(&e, &label).await;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [".ebextensions/01-env.config", "Dockerrun.aws.json"]
    );
    let dockerrun: Value = serde_json::from_slice(&files["Dockerrun.aws.json"]).unwrap();
    assert_eq!(dockerrun["AWSEBDockerrunVersion"], "1");
    assert_eq!(dockerrun["Image"]["Name"], image("acme/web", 'a').uri);
    assert_eq!(dockerrun["Ports"], json!([{"ContainerPort": 8080}]));

    // The verdict followed our own request's events, each once.
    let updates = calls(&e.moto, "UpdateEnvironment");
    assert_eq!(updates.len(), 1);
    assert_eq!(
        out.report.deployment_id.as_deref(),
        updates[0]["request_id"].as_str(),
        "the RequestId of our UpdateEnvironment"
    );
    for text in [
        "Environment update is starting.",
        "Deploying new version to instance(s).",
        "Environment update completed successfully.",
    ] {
        assert_eq!(
            out.report
                .events
                .iter()
                .filter(|l| l.ends_with(text))
                .count(),
            1,
            "{text} once: {:?}",
            out.report.events
        );
    }
    let events = calls(&e.moto, "DescribeEvents");
    assert!(
        events
            .iter()
            .all(|c| c["params"]["RequestId"] == updates[0]["request_id"]),
        "only our request's events: {events:?}"
    );
    let created = calls(&e.moto, "CreateApplicationVersion");
    assert_eq!(created.len(), 2, "v1 by hand, then ours");
    assert_eq!(
        created[1]["params"]["VersionLabel"].as_str(),
        Some(label.as_str())
    );
    assert_eq!(created[1]["params"]["Process"], true);
    let ours =
        e.eb.describe_application_versions()
            .application_name(APP)
            .version_labels(&label)
            .send()
            .await
            .unwrap();
    let status = ours.application_versions()[0]
        .status()
        .map(|s| s.as_str().to_string());
    assert_eq!(
        status.as_deref(),
        Some("PROCESSED"),
        "created with Process=true and processed before the update"
    );

    // The same image again: the label is found by its content, nothing is
    // uploaded, created or updated.
    let (again, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert!(again.report.unchanged);
    assert_eq!(again.report.revision.as_deref(), Some(label.as_str()));
    assert!(
        log.iter()
            .any(|l| l.contains("already runs it; nothing to upload or deploy")),
        "{}",
        log.join("\n")
    );
    assert_eq!(
        calls(&e.moto, "CreateApplicationVersion").len(),
        2,
        "no version of ours but the first"
    );
    assert_eq!(
        calls(&e.moto, "UpdateEnvironment").len(),
        1,
        "no second update"
    );
}

/// Elastic Beanstalk throttles a stretch of `DescribeEnvironments` calls
/// (400 `Throttling: Rate exceeded`) while the update runs, each look
/// outlasting the SDK's three attempts. Seven failed looks in a row are
/// ridden out and the deploy succeeds; a run of `MAX_FAILED_LOOKS` ends it,
/// naming the call and the throttle, and puts the previous label back as a
/// timeout would.
/// Every application version of the app and every bundle object in S3.
async fn versions_and_bundles(e: &Env) -> (Vec<(String, String)>, Vec<String>) {
    let out =
        e.eb.describe_application_versions()
            .application_name(APP)
            .send()
            .await
            .unwrap();
    let versions = out
        .application_versions()
        .iter()
        .map(|v| {
            let b = v.source_bundle().unwrap();
            (
                v.version_label().unwrap().to_string(),
                format!("{}/{}", b.s3_bucket().unwrap(), b.s3_key().unwrap()),
            )
        })
        .collect();
    let mut objects = Vec::new();
    for bucket in e.s3.list_buckets().send().await.unwrap().buckets() {
        let name = bucket.name().unwrap();
        let list = e.s3.list_objects_v2().bucket(name).send().await.unwrap();
        objects.extend(
            list.contents()
                .iter()
                .map(|o| format!("{name}/{}", o.key().unwrap()))
                .filter(|k| k.contains("/fastdeploy/")),
        );
    }
    objects.sort();
    (versions, objects)
}

/// Three deploys with `keep-revisions: 1` leave the version that serves
/// and the one before it (what a rollback puts back), each with its
/// bundle, and no bundle without a version; then `rollback` finds the one
/// before in the serving version's record and deploys it again.
#[tokio::test(flavor = "multi_thread")]
async fn keep_revisions_keeps_what_serves_and_what_a_rollback_puts_back_and_rollback_does() {
    let e = env().await;
    let p = BeanstalkPlan {
        keep_revisions: Some(1),
        ..plan(Bundle::Image)
    };
    let mut labels = Vec::new();
    for digit in ['a', 'b', 'c'] {
        let (out, log) = deploy(&e, &p, "acme/web", digit).await;
        assert_eq!(out.result, RunResult::Success, "{log:#?}");
        labels.push(out.report.revision.clone().unwrap());
    }
    let (versions, bundles) = versions_and_bundles(&e).await;
    let mut kept: Vec<&str> = versions.iter().map(|(l, _)| l.as_str()).collect();
    kept.sort();
    let mut want = vec![labels[1].as_str(), labels[2].as_str(), FIRST];
    want.sort();
    assert_eq!(
        kept, want,
        "the serving and the previous version stay, and the version fastdeploy did not make"
    );
    let mut referenced: Vec<String> = versions
        .iter()
        .map(|(_, b)| b.clone())
        .filter(|b| b.contains("/fastdeploy/"))
        .collect();
    referenced.sort();
    assert_eq!(
        bundles, referenced,
        "each kept version has its bundle, and no bundle is orphaned"
    );
    let deletes = calls(&e.moto, "DeleteApplicationVersion");
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0]["params"]["VersionLabel"], labels[0].as_str());
    assert_eq!(deletes[0]["params"]["DeleteSourceBundle"], json!(true));

    // What promote would take from it: the image c's version names, by digest.
    let component = component(&p, e.work.path());
    {
        use fastdeploy::deploy::Target;
        let deployer = Deployer::new(&e.sdk, None, SCALE);
        let env = fastdeploy::deploy::beanstalk::Environment::new(&p, &component);
        let serving = env.serving_image(&deployer.cx()).await.unwrap();
        assert_eq!(serving, image("acme/web", 'c'));
    }

    // Rollback: back to b, found in c's record, through the same update and health.
    let (captured, actions) = Actions::capture();
    let deployer = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let mut target = fastdeploy::deploy::beanstalk::Environment::new(&p, &component);
    let back = deployer.roll_back(&mut target, None).await.unwrap();
    let log = captured.lines().join("\n");
    assert_eq!(back.result, RunResult::Success, "{log}");
    assert_eq!(
        sandbox_env(&e.moto)["VersionLabel"],
        labels[1].as_str(),
        "{log}"
    );
    assert!(
        log.contains(&format!("rolling back to version {}", labels[1])),
        "{log}"
    );
    // Named: forward to c again, one that does not exist is bad input.
    let mut target = fastdeploy::deploy::beanstalk::Environment::new(&p, &component);
    let again = deployer
        .roll_back(&mut target, Some(&labels[2]))
        .await
        .unwrap();
    assert_eq!(again.result, RunResult::Success);
    let mut target = fastdeploy::deploy::beanstalk::Environment::new(&p, &component);
    let missing = deployer
        .roll_back(&mut target, Some(&labels[0]))
        .await
        .unwrap_err();
    assert!(
        missing
            .downcast_ref::<fastdeploy::error::BadInput>()
            .is_some()
            && missing
                .to_string()
                .contains("does not exist in application shop"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_looks_are_ridden_out_and_only_a_run_of_them_ends_the_deploy_with_a_rollback() {
    let e = env().await;
    // Throttled from the third call on: after the preflight's and the look
    // that finds the environment Ready, every look at the update.
    let throttle = |looks: u32| {
        let rule = json!({"action": "DescribeEnvironments", "kind": "throttle", "skip": 2, "times": looks * 3});
        blocking(|| {
            e.moto
                .control("faults/config", json!({"reset": true, "rules": [rule]}))
        })
    };
    throttle(7);
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    let lines = log.join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert_eq!(lines.matches("could not look (").count(), 7, "{lines}");
    assert!(
        lines.contains("Throttling: Rate exceeded"),
        "the throttle is named: {lines}"
    );
    let previous = out.report.revision.clone().unwrap();

    let looks = fastdeploy::wait::MAX_FAILED_LOOKS;
    throttle(looks);
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'b').await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let why = out.failure.unwrap();
    assert!(
        why.starts_with(&format!(
            "`elasticbeanstalk:DescribeEnvironments` failed {looks} times in a row"
        )) && why.contains("Throttling"),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "fastdeploy rolled back: environment {ENV} serves version {previous} again"
        )),
        "{why}"
    );
    assert_eq!(instance_versions(&e.moto), [previous.as_str()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_image_ends_rolled_back_with_the_previous_label_serving_and_eb_events_in_the_log() {
    let e = env().await;
    let (good, _) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(good.result, RunResult::Success, "{:?}", good.failure);
    let previous = good.report.revision.clone().unwrap();
    // The sandbox fails deployments of images whose name holds its marker.
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/badimage-web", 'b').await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    assert_eq!(
        out.report.serving_revision.as_deref(),
        Some(previous.as_str())
    );
    let why = out.failure.clone().unwrap();
    assert!(
        why.contains("Instance deployment failed. For details, see 'eb-engine.log'."),
        "EB's own text: {why}"
    );
    assert!(why.contains(&format!("serves version {previous}")), "{why}");
    // EB's events are in the log as EB wrote them.
    assert!(
        log.iter()
            .any(|l| l.contains("ERROR Instance deployment failed")),
        "{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("Command failed on instance")),
        "{}",
        log.join("\n")
    );
    // EB left the failed version on the instance: it was redeployed, so the
    // previous label serves on every instance and health is Green again.
    let env = sandbox_env(&e.moto);
    assert_eq!(
        (env["Status"].as_str(), env["VersionLabel"].as_str()),
        (Some("Ready"), Some(previous.as_str()))
    );
    assert_eq!(instance_versions(&e.moto), [previous.as_str()]);
    assert_eq!(env["Health"], "Green", "{env}");
    let updates: Vec<String> = calls(&e.moto, "UpdateEnvironment")
        .iter()
        .map(|c| c["params"]["VersionLabel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        updates[1..],
        [out.report.revision.clone().unwrap(), previous.clone()],
        "ours, then the previous one again"
    );
    assert!(
        out.report
            .evidence
            .iter()
            .any(|l| l.contains("Incorrect application version")),
        "health causes: {:?}",
        out.report.evidence
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eb_reverting_the_update_ready_and_green_on_the_previous_label_is_not_a_success() {
    // The trap: EB fails the configuration change, reverts it and ends Ready
    // and Green, on the previous label, with no "Failed to deploy application.".
    let e = env().await;
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/rollback-web", 'c').await;
    assert_ne!(out.result, RunResult::Success, "{}", log.join("\n"));
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("Failed to deploy configuration.") || why.contains("reverted"),
        "{why}"
    );
    assert_eq!(out.report.serving_revision.as_deref(), Some(FIRST));
    let env = sandbox_env(&e.moto);
    assert_eq!(
        (
            env["Status"].as_str(),
            env["VersionLabel"].as_str(),
            env["Health"].as_str()
        ),
        (Some("Ready"), Some(FIRST), Some("Green"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_that_stays_red_after_the_update_fails_with_enhanced_health_causes() {
    let e = env().await;
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/unhealthy-web", 'd').await;
    assert_eq!(out.result, RunResult::Failure, "{}", log.join("\n"));
    let why = out.failure.unwrap();
    assert!(
        why.contains("its health stayed Red (Severe) instead of Green"),
        "{why}"
    );
    assert!(
        why.contains("100.0 % of the requests are failing with HTTP 5xx."),
        "the causes: {why}"
    );
    assert_eq!(
        out.report.serving_revision, out.report.revision,
        "ours serves, unhealthy"
    );
}

/// An environment on basic health (no health agent: EB answers
/// DescribeEnvironmentHealth and DescribeInstancesHealth with
/// InvalidRequestException "... is not supported.", and DescribeEnvironments
/// has a colour but no HealthStatus). A deploy is judged by the colour
/// alone (`healthy` with no status: Green passes at once). A failed deploy
/// has no enhanced causes to give, and putting back cannot read which
/// version each instance runs (`instances_not_on` is None), so the previous
/// label is deployed again rather than trusted, and the run says why.
#[tokio::test(flavor = "multi_thread")]
async fn basic_health_judges_by_the_colour_and_a_rollback_redeploys_the_previous_label_unseen() {
    let basic = ConfigurationOptionSetting::builder()
        .namespace("aws:elasticbeanstalk:healthreporting:system")
        .option_name("SystemType")
        .value("basic")
        .build();
    let e = env_with(0.05, vec![basic]).await;
    let (good, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(
        good.result,
        RunResult::Success,
        "{:?}\n{}",
        good.failure,
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.ends_with("] health Green")),
        "a colour, no status: {}",
        log.join("\n")
    );
    let previous = good.report.revision.clone().unwrap();
    let env = sandbox_env(&e.moto);
    assert_eq!(
        (env["VersionLabel"].as_str(), env["Health"].as_str()),
        (Some(previous.as_str()), Some("Green"))
    );
    assert!(env.get("HealthStatus").is_none(), "basic health: {env}");

    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/badimage-web", 'b').await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let why = out.failure.unwrap();
    assert!(
        why.contains("Instance deployment failed. For details, see 'eb-engine.log'."),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "fastdeploy rolled back: environment {ENV} serves version {previous} again"
        )),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "fastdeploy deployed version {previous} again (EB cannot say which version each instance runs (no enhanced health))"
        )),
        "{why}"
    );
    assert!(
        out.report
            .evidence
            .iter()
            .any(|l| l == "no health causes: DescribeEnvironmentHealth is not supported."),
        "{:?}",
        out.report.evidence
    );
    let asked = calls(&e.moto, "DescribeInstancesHealth");
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|c| c["error"] == "InvalidRequestException"),
        "{asked:?}"
    );
    let updates: Vec<String> = calls(&e.moto, "UpdateEnvironment")
        .iter()
        .map(|c| c["params"]["VersionLabel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        updates[1..],
        [out.report.revision.clone().unwrap(), previous.clone()],
        "ours, then the previous one again"
    );
    assert_eq!(
        out.report.serving_revision.as_deref(),
        Some(previous.as_str())
    );
    assert_eq!(instance_versions(&e.moto), [previous.as_str()]);
}

/// The deadline (`wait-minutes`) or a cancellation that lands while health
/// is awaited is a stop like any other: with `rollback` the previous label is
/// deployed again, and the run claims it serves only once every instance
/// runs it.
#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_or_a_cancellation_in_the_health_wait_rolls_back_and_an_unfinished_rollback_says_so()
 {
    // Time runs at 0.02: the update completes within about 0.4 s, the health
    // window would last 2.4 s (120 s) from then, the deadline comes at 2.0 s
    // (100 s) from the start.
    let e = env().await;
    let p = BeanstalkPlan {
        watch: WatchPlan {
            wait_seconds: 100,
            ..plan(Bundle::Image).watch
        },
        ..plan(Bundle::Image)
    };
    let (out, log) = deploy_scaled(&e, &p, "acme/unhealthy-web", 'd', 0.02).await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let why = out.failure.unwrap();
    assert!(
        why.contains("no verdict within 100 s (waiting for version")
            && why.contains("health to turn Green; it is Red)"),
        "{why}"
    );
    assert!(
        why.contains(&format!("serves version {FIRST}"))
            && why.contains("deployed version v1 again"),
        "{why}"
    );
    assert!(
        out.report
            .evidence
            .iter()
            .any(|l| l.contains("100.0 % of the requests are failing with HTTP 5xx.")),
        "{:?}",
        out.report.evidence
    );
    assert_eq!(out.report.serving_revision.as_deref(), Some(FIRST));
    assert_eq!(
        instance_versions(&e.moto),
        [FIRST],
        "the instance back on the previous label"
    );

    // Cancelled once the run has said the health it sees (so inside the
    // health wait, with the deadline far off): the rollback redeploys v1
    // within a cancelled run's settle budget (6 s) when EB is quick enough
    // (time at 0.1: 0.6 s), and says it did not finish when it is not (time
    // at 0.01: 0.06 s), rather than claiming v1 serves.
    let (out, log) = cancel_in_the_health_wait(0.1).await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{log}",
        out.failure
    );
    let why = out.failure.unwrap();
    assert!(
        why.contains("the workflow was cancelled (waiting for version")
            && why
                .contains("fastdeploy rolled back: environment shop-prod serves version v1 again"),
        "{why}"
    );

    let (out, log) = cancel_in_the_health_wait(0.01).await;
    assert_eq!(out.result, RunResult::Failure, "{:?}\n{log}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("fastdeploy's rollback did not finish; the environment is set to version v1, which not every instance may run yet")
            && why.contains("redeploying version v1 did not finish in time"),
        "{why}"
    );
    assert!(!log.contains("rolled-back"), "{log}");
}

/// Deploys an image whose health turns Red, cancelling the run once it has
/// said so; returns the outcome and the log.
async fn cancel_in_the_health_wait(scale: f64) -> (DeployOutcome, String) {
    let e = env().await;
    let (captured, actions, cancel, canceller) =
        crate::support::sandbox::cancel_on_line("health Red");
    let deployer = Deployer::new(&e.sdk, None, scale)
        .with_actions(actions)
        .with_cancel(cancel);
    let plan = plan(Bundle::Image);
    let component = component(&plan, e.work.path());
    let out = deployer
        .beanstalk(&plan, &component, &image("acme/unhealthy-web", 'e'))
        .await;
    canceller.await.unwrap();
    let updates: Vec<String> = calls(&e.moto, "UpdateEnvironment")
        .iter()
        .map(|c| c["params"]["VersionLabel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        updates,
        [out.report.revision.clone().unwrap(), FIRST.to_string()],
        "ours, then v1 again"
    );
    (out, captured.lines().join("\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn yellow_health_passes_only_with_allow_yellow() {
    let e = env().await;
    blocking(|| {
        e.moto.control(
            "beanstalk/health",
            json!({"environment": ENV, "status": "Warning", "when": "next_deploy"}),
        )
    });
    let (out, _) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(out.result, RunResult::Failure);
    assert!(
        out.failure
            .as_deref()
            .unwrap()
            .contains("set `allow-yellow: true`"),
        "{:?}",
        out.failure
    );
    assert!(
        out.report
            .evidence
            .iter()
            .any(|l| l.contains("Impaired services on 1 out of 1 instance.")),
        "{:?}",
        out.report.evidence
    );

    blocking(|| {
        e.moto.control(
            "beanstalk/health",
            json!({"environment": ENV, "status": "Warning", "when": "next_deploy"}),
        )
    });
    let yellow = BeanstalkPlan {
        allow_yellow: true,
        ..plan(Bundle::Image)
    };
    let (out, log) = deploy(&e, &yellow, "acme/web", 'e').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("health Yellow (Warning)")),
        "{}",
        log.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_started_while_the_environment_is_updating_waits_then_deploys() {
    let e = env().await;
    // Someone else's configuration update holds the environment for 60
    // steps (3 s): long enough that the deploy, however loaded the machine,
    // reaches its look at the environment while the update still runs.
    blocking(|| {
        e.moto.control(
            "beanstalk/env-status",
            json!({"environment": ENV, "status": "Updating", "steps": 60}),
        )
    });
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("environment is Updating (another update is running); waiting for Ready before deploying")),
        "it said what it waited for: {}",
        log.join("\n")
    );
    let updates = calls(&e.moto, "UpdateEnvironment");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        updates[0]["status"], 200,
        "never refused with `Must be Ready`: {updates:?}"
    );
    assert_eq!(
        sandbox_env(&e.moto)["VersionLabel"],
        out.report.revision.unwrap()
    );
}

/// Someone else's update starts between the deploy's look at Ready and
/// its UpdateEnvironment, and EB refuses ours: "Environment named ... is in
/// an invalid state for this operation. Must be Ready.". `update` says so,
/// waits for Ready again and sends the update once more; the deploy
/// succeeds on our label.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_refused_because_another_update_just_started_waits_for_ready_and_is_sent_again() {
    let e = env().await;
    blocking(|| {
        e.moto.control(
            "beanstalk/env-status",
            json!({"environment": ENV, "status": "Updating", "steps": 4, "when": "next_update"}),
        )
    });
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let label = out.report.revision.clone().unwrap();
    let updates: Vec<(Value, Value)> = calls(&e.moto, "UpdateEnvironment")
        .into_iter()
        .map(|c| (c["status"].clone(), c["error"].clone()))
        .collect();
    assert_eq!(
        updates,
        [
            (json!(400), json!("InvalidParameterValue")),
            (json!(200), Value::Null)
        ],
        "refused once, then accepted"
    );
    let text = log.join("\n");
    assert!(
        text.contains(&format!(
            "EB refused the update: Environment named {ENV} is in an invalid state for this operation. Must be Ready.; waiting again"
        )),
        "{text}"
    );
    assert!(
        text.contains("environment is Updating (another update is running); waiting for Ready before deploying"),
        "{text}"
    );
    assert_eq!(sandbox_env(&e.moto)["VersionLabel"], label);
    assert_eq!(instance_versions(&e.moto), [label.as_str()]);
}

/// EB processes a new application version (Process=true) before it can be
/// deployed, and refuses to deploy one still PROCESSING. A version that
/// stays PROCESSING for several looks is waited for (`processed`'s pending
/// look, said once); the update is sent only once it is PROCESSED.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_stays_processing_is_waited_for_before_the_update() {
    let e = env().await;
    blocking(|| {
        e.moto
            .control("beanstalk/config", json!({"process_steps": 6}))
    });
    let (out, log) = deploy(&e, &plan(Bundle::Image), "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let label = out.report.revision.clone().unwrap();
    let said = |needle: String| log.iter().filter(|l| l.ends_with(&needle)).count();
    assert_eq!(
        said(format!("version {label} is PROCESSING; waiting")),
        1,
        "{}",
        log.join("\n")
    );
    assert_eq!(
        said(format!("version {label} is PROCESSED")),
        1,
        "{}",
        log.join("\n")
    );
    let looks = calls(&e.moto, "DescribeApplicationVersions")
        .iter()
        .filter(|c| c["params"].to_string().contains(&label))
        .count();
    assert!(looks >= 2, "looked again while it was PROCESSING: {looks}");
    let updates = calls(&e.moto, "UpdateEnvironment");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        updates[0]["status"], 200,
        "never sent for a version still processing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_of_the_same_content_at_once_make_one_version_and_one_update() {
    // A re-run started while the first run still deploys (a retried job, two
    // pushes of the same tree): both find or make the same version, one
    // updates, the other waits and judges the environment it leaves.
    let e = env().await;
    let p = plan(Bundle::Image);
    let ((a, log_a), (b, log_b)) = tokio::join!(
        deploy(&e, &p, "acme/web", 'a'),
        deploy(&e, &p, "acme/web", 'a')
    );
    assert_eq!(
        a.result,
        RunResult::Success,
        "{:?}\n{}",
        a.failure,
        log_a.join("\n")
    );
    assert_eq!(
        b.result,
        RunResult::Success,
        "{:?}\n{}",
        b.failure,
        log_b.join("\n")
    );
    assert_eq!(a.report.revision, b.report.revision);
    let label = a.report.revision.unwrap();
    let made: Vec<Value> = calls(&e.moto, "CreateApplicationVersion")
        .into_iter()
        .filter(|c| c["status"] == 200 && c["params"]["VersionLabel"] != FIRST)
        .collect();
    assert_eq!(made.len(), 1, "one version for one content: {made:?}");
    let updates: Vec<Value> = calls(&e.moto, "UpdateEnvironment")
        .into_iter()
        .filter(|c| c["status"] == 200)
        .collect();
    assert_eq!(updates.len(), 1, "one update: {updates:?}");
    assert_eq!(sandbox_env(&e.moto)["VersionLabel"], label);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_aborts_the_update_and_redeploys_the_previous_label_ebs_abort_left_half_applied()
{
    // Rolling, one instance per batch: the abort comes after batch 1, whose
    // instance keeps the new version (EB: "some instances will have the new
    // application version").
    let rolling = |ns: &str, name: &str, value: &str| {
        ConfigurationOptionSetting::builder()
            .namespace(ns)
            .option_name(name)
            .value(value)
            .build()
    };
    let e = env_with(
        0.5,
        vec![
            rolling("aws:autoscaling:asg", "MinSize", "2"),
            rolling(
                "aws:elasticbeanstalk:command",
                "DeploymentPolicy",
                "Rolling",
            ),
            rolling("aws:elasticbeanstalk:command", "BatchSizeType", "Fixed"),
            rolling("aws:elasticbeanstalk:command", "BatchSize", "1"),
        ],
    )
    .await;
    // Time runs at 0.02: the update starts about 0.6 s in (EB processes the
    // version for a step), batch 1 finishes 1.5 s after it and batch 2 2.5 s
    // after it; the deploy gives up at 2.6 s (130 s × 0.02), between the two,
    // and its rollback has 6 s (300 s × 0.02) to abort and redeploy.
    let p = BeanstalkPlan {
        watch: WatchPlan {
            wait_seconds: 130,
            ..plan(Bundle::Image).watch
        },
        ..plan(Bundle::Image)
    };
    let (out, log) = deploy_scaled(&e, &p, "acme/web", 'a', 0.02).await;
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let why = out.failure.unwrap();
    assert!(
        why.contains("no verdict within 130 s") && why.contains(&format!("serves version {FIRST}")),
        "{why}"
    );
    assert_eq!(calls(&e.moto, "AbortEnvironmentUpdate").len(), 1);
    let updates: Vec<String> = calls(&e.moto, "UpdateEnvironment")
        .iter()
        .map(|c| c["params"]["VersionLabel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        updates,
        [out.report.revision.clone().unwrap(), FIRST.to_string()],
        "ours, then v1 again after the abort"
    );
    assert!(why.contains("deployed version v1 again"), "{why}");
    assert_eq!(
        instance_versions(&e.moto),
        [FIRST, FIRST],
        "every instance back on the previous label"
    );
    assert_eq!(sandbox_env(&e.moto)["VersionLabel"], FIRST);

    // Without rollback the same timeout only says what it saw.
    let slow = BeanstalkPlan {
        watch: WatchPlan {
            wait_seconds: 60,
            rollback: false,
            ..p.watch.clone()
        },
        ..p.clone()
    };
    let (out, _) = deploy_scaled(&e, &slow, "acme/web", 'f', 0.02).await;
    assert_eq!(out.result, RunResult::Failure);
    assert!(out.failure.unwrap().contains("`rollback` is off"));
    assert_eq!(
        calls(&e.moto, "AbortEnvironmentUpdate").len(),
        1,
        "no abort without rollback"
    );
}

/// A file of `len` bytes that takes no space (a hole).
fn sparse(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_600_mb_source_bundle_stops_before_anything_is_uploaded_naming_the_offenders_and_the_limit()
 {
    let e = env().await;
    let ctx = e.work.path();
    sparse(
        &ctx.join(".venv/lib/python3.12/site-packages/torch/lib/libtorch_cpu.so"),
        320 << 20,
    );
    sparse(
        &ctx.join("node_modules/@next/swc-linux-x64-gnu/next-swc.linux-x64-gnu.node"),
        280 << 20,
    );
    blocking(|| e.moto.control("beanstalk/calls", json!({"reset": true})));
    let err = preflight(&e, &plan(Bundle::Source), ctx).await.unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    let text = err.to_string();
    // Sizes as every report spells them.
    let (venv, node, all) = (
        fastdeploy::units::bytes(320 << 20),
        fastdeploy::units::bytes(280 << 20),
        fastdeploy::units::bytes(600 << 20),
    );
    assert!(text.contains(&format!("would hold {all}")), "{text}");
    assert!(
        text.contains("above Elastic Beanstalk's limit of 524,288,000 bytes"),
        "{text}"
    );
    assert!(
        text.contains(&format!(".venv/ {venv}")) && text.contains(&format!("node_modules/ {node}")),
        "names the offenders: {text}"
    );
    assert!(
        text.contains(&format!("`.venv` ({venv})"))
            && text.contains(&format!("`node_modules` ({node})")),
        "with the lines that exclude them: {text}"
    );
    assert!(text.contains("or use `bundle: image`"), "{text}");
    let seen = blocking(|| e.moto.control("beanstalk/calls", json!({})));
    assert_eq!(
        seen,
        json!([]),
        "nothing was asked of Elastic Beanstalk, let alone uploaded"
    );

    // Excluded, the same context deploys as a source bundle built on the instance.
    std::fs::write(ctx.join(".dockerignore"), ".venv\nnode_modules\n").unwrap();
    let (out, log) = deploy(&e, &plan(Bundle::Source), "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let label = out.report.revision.unwrap();
    assert!(
        label.starts_with(&format!("sha-{}-src-", &COMMIT[..12])),
        "{label}"
    );
    let files = bundle_files(&e, &label).await;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            ".dockerignore",
            ".ebextensions/01-env.config",
            "Dockerfile",
            "index.html"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_what_eb_cannot_take_as_bad_input() {
    let e = env().await;
    let bad = |p: BeanstalkPlan| {
        let e = &e;
        async move {
            let err = preflight(e, &p, e.work.path()).await.unwrap_err();
            assert_eq!(
                fastdeploy::error::exit_for(&err),
                fastdeploy::error::Exit::BadInput,
                "{err}"
            );
            err.to_string()
        }
    };
    let text = bad(BeanstalkPlan {
        application: "nope".into(),
        ..plan(Bundle::Image)
    })
    .await;
    assert!(
        text.contains("Elastic Beanstalk application nope does not exist"),
        "{text}"
    );
    let text = bad(BeanstalkPlan {
        environment: "shop-qa".into(),
        ..plan(Bundle::Image)
    })
    .await;
    assert!(
        text.contains(
            "environment shop-qa does not exist in application shop (its environments: shop-prod)"
        ),
        "{text}"
    );

    e.eb.create_environment()
        .application_name(APP)
        .environment_name("py")
        .solution_stack_name("64bit Amazon Linux 2023 v4.3.0 running Python 3.11")
        .send()
        .await
        .unwrap();
    let text = bad(BeanstalkPlan {
        environment: "py".into(),
        ..plan(Bundle::Image)
    })
    .await;
    assert!(
        text.contains(
            "runs on `64bit Amazon Linux 2023 v4.3.0 running Python 3.11`, not a Docker platform"
        ),
        "{text}"
    );

    e.eb.create_environment()
        .application_name(APP)
        .environment_name("gone")
        .solution_stack_name(STACK)
        .send()
        .await
        .unwrap();
    e.eb.terminate_environment()
        .environment_name("gone")
        .send()
        .await
        .unwrap();
    let text = bad(BeanstalkPlan {
        environment: "gone".into(),
        ..plan(Bundle::Image)
    })
    .await;
    assert!(
        text.contains("environment gone of application shop is terminated"),
        "{text}"
    );

    std::fs::write(
        e.work.path().join(".ebextensions/02-bad.config"),
        "packages:\n  yum:\n    git: []\n   jq: []\n",
    )
    .unwrap();
    let text = bad(plan(Bundle::Image)).await;
    assert!(
        text.contains("02-bad.config: line 4"),
        "the file and line: {text}"
    );
    std::fs::remove_file(e.work.path().join(".ebextensions/02-bad.config")).unwrap();

    std::fs::write(
        e.work.path().join("Dockerfile"),
        "FROM busybox\nCMD [\"true\"]\n",
    )
    .unwrap();
    let text = bad(plan(Bundle::Image)).await;
    assert!(text.contains("exposes none; add `EXPOSE <port>`"), "{text}");
    let ports = BeanstalkPlan {
        ports: vec![9000],
        ..plan(Bundle::Image)
    };
    let found = preflight(&e, &ports, e.work.path()).await.unwrap();
    assert_eq!(
        found.platform, None,
        "EB's Docker platform takes any image the instances can run"
    );
}

// ---------------------------------------------------------------------------
// The plan: keys per component and per environment, with their sources.

const CONFIG: &str = "\
version: 1
components:
  web:
    repository: acme/web
    beanstalk-application: shop
    ports: [8080]
environments:
  production:
    branches: [main]
    overrides:
      web:
        beanstalk-environment: shop-prod
  staging:
    branches: [develop]
    overrides:
      web:
        beanstalk-environment: shop-staging
        bundle: source
        allow-yellow: true
";

/// `fastdeploy plan --json` (or `plan`) for a push to `branch` of a workspace holding `config`.
fn plan_run(
    config: &str,
    branch: &str,
    args: &[&str],
    inputs: &[(&str, &str)],
) -> std::process::Output {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("fastdeploy.yml"), config).unwrap();
    std::fs::write(ws.path().join("Dockerfile"), "FROM busybox\nEXPOSE 8080\n").unwrap();
    let fixture = if branch == "main" {
        "push-main.json"
    } else {
        "push-develop.json"
    };
    let mut cmd = crate::support::sandbox::fastdeploy(ws.path());
    cmd.args(args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env(
            "GITHUB_EVENT_PATH",
            crate::support::sandbox::repo_root()
                .join("tests/fixtures/events")
                .join(fixture),
        )
        .env("GITHUB_REF", format!("refs/heads/{branch}"))
        .env("GITHUB_SHA", COMMIT)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_WORKSPACE", ws.path())
        .env("INPUT_BUILDER", "buildah")
        .envs(inputs.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn the_plan_resolves_the_environment_per_branch_with_bundle_and_allow_yellow_from_the_overrides() {
    let deploy_of = |branch: &str| {
        let out = plan_run(CONFIG, branch, &["plan", "--json"], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        plan["components"][0]["deploy"].clone()
    };
    let prod = deploy_of("main");
    assert_eq!(prod["kind"], "beanstalk");
    assert_eq!(
        (prod["application"].as_str(), prod["environment"].as_str()),
        (Some(APP), Some(ENV))
    );
    assert_eq!(
        (prod["bundle"].as_str(), prod["allow_yellow"].as_bool()),
        (Some("image"), Some(false))
    );
    assert_eq!(prod["ports"], json!([8080]));
    let staging = deploy_of("develop");
    assert_eq!(
        (staging["environment"].as_str(), staging["bundle"].as_str()),
        (Some("shop-staging"), Some("source"))
    );
    assert_eq!(staging["allow_yellow"], true);
    let text =
        String::from_utf8_lossy(&plan_run(CONFIG, "develop", &["plan"], &[]).stdout).into_owned();
    assert!(
        text.contains(
            "deploy Elastic Beanstalk environment shop-staging of application shop: bundle source"
        ),
        "{text}"
    );

    // An input overrides the config's choice, and only accepts what it names.
    let out = plan_run(
        CONFIG,
        "develop",
        &["plan", "--json"],
        &[("INPUT_BUNDLE", "image")],
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["components"][0]["deploy"]["bundle"], "image");
    let out = plan_run(CONFIG, "main", &["plan"], &[("INPUT_BUNDLE", "zip")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("input `bundle` is \"zip\", but it accepts image | source")
    );
    let out = plan_run(
        &CONFIG.replace("bundle: source", "bundle: zip"),
        "main",
        &["plan"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 18 column 17: unknown variant `zip`, expected one of image, source"),
        "the config's line: {err}"
    );

    // One target per component.
    let two = CONFIG.replace(
        "    ports: [8080]",
        "    ports: [8080]\n    beanstalk-environment: shop-prod\n    function: thumbs",
    );
    let out = plan_run(&two, "main", &["plan"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("component `web` names two deploy targets, `function: thumbs` and `beanstalk-environment: shop-prod`"), "{err}");
}

// ---------------------------------------------------------------------------
// The binary, for a push to main: examples/shop to an Elastic Beanstalk environment.

/// `fastdeploy run` for the shop deployed to `shop-prod` instead of ECS,
/// without `environment-url` (the environment's CNAME stands in).
fn beanstalk_command(sb: &FullSandbox) -> std::process::Command {
    let mut cmd = sb.command();
    for name in [
        "INPUT_CLUSTER",
        "INPUT_SERVICE",
        "INPUT_CONTAINER",
        "INPUT_ENVIRONMENT_URL",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("INPUT_BEANSTALK_APPLICATION", APP)
        .env("INPUT_BEANSTALK_ENVIRONMENT", ENV);
    cmd
}

fn images_output(sb: &FullSandbox) -> Value {
    serde_json::from_str(&sb.output("images").expect("the images output is written")).unwrap()
}

#[test]
fn a_push_to_main_deploys_the_image_bundle_reports_it_everywhere_and_a_rerun_changes_nothing() {
    let sb = FullSandbox::start();
    sb.moto
        .control("beanstalk/config", json!({"step_seconds": 0.05}));
    crate::support::sandbox::block_on(seed(&sb.moto, vec![]));
    let ran: Ran = run(beanstalk_command(&sb));
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("success"),
        "{}",
        ran.log()
    );
    let images = images_output(&sb);
    let app = &images["app"];
    assert_eq!(
        app["target"],
        json!({"kind": "beanstalk", "application": APP, "environment": ENV})
    );
    let digest = app["digest"].as_str().unwrap();
    let label = format!("sha-{}-{}", &sb.sha[..12], &digest[7..19]);
    assert_eq!(app["version-label"], label);
    assert_eq!(app["revision"], label);
    assert_eq!(app["serving-revision"], label);
    assert_eq!(app["previous-revision"], FIRST);
    assert_eq!(
        sb.output("serving-revision").as_deref(),
        Some(label.as_str())
    );
    let env = crate::support::sandbox::block_on(async {
        let (eb, _) = clients(&sb.moto).await;
        eb.describe_environments()
            .environment_names(ENV)
            .send()
            .await
            .unwrap()
            .environments()[0]
            .clone()
    });
    assert_eq!(env.version_label(), Some(label.as_str()));
    let url = format!("http://{}", env.cname().unwrap());
    assert_eq!(app["url"], url);
    // The Dockerrun.aws.json names the pushed image by digest, port from EXPOSE.
    assert!(
        ran.stdout
            .contains(&format!("UpdateEnvironment to version {label} accepted")),
        "{}",
        ran.log()
    );
    assert!(
        ran.stdout
            .contains("Environment update completed successfully."),
        "EB's events in the log: {}",
        ran.log()
    );

    // Reported like every target: summary row, Slack, the GitHub deployment
    // with the environment's CNAME as its URL.
    let summary = sb.summary();
    assert!(
        summary.contains("| app |") && summary.contains("success"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("Elastic Beanstalk environment {ENV}")),
        "the console link: {summary}"
    );
    let slack = slack_messages(&sb);
    assert!(
        slack.last().unwrap()["body"]
            .to_string()
            .contains("Deployed to production"),
        "{slack:?}"
    );
    let deployment = &github_deployments(&sb)[0];
    let id = deployment["id"].as_u64().unwrap();
    let statuses = crate::support::sandbox::http_get_json(&format!(
        "{}/repos/acme/shop/deployments/{id}/statuses",
        sb.github.url
    ));
    let last = &statuses.as_array().unwrap()[0];
    assert_eq!(last["state"], "success", "{statuses}");
    assert_eq!(last["environment_url"], url, "{statuses}");

    // The same commit again: nothing rebuilt, uploaded, created or deployed.
    let again = run(beanstalk_command(&sb));
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(
        images_output(&sb)["app"]["result"],
        "skipped",
        "{}",
        again.log()
    );
    assert_eq!(
        calls(&sb.moto, "CreateApplicationVersion").len(),
        2,
        "v1 and ours, no third: {}",
        again.log()
    );
    assert_eq!(
        calls(&sb.moto, "UpdateEnvironment").len(),
        1,
        "no second update"
    );
}

/// `plan` with the runtime configuration's env and secrets (each secret
/// already found by its ARN, as the checks find it).
fn with_properties(env: &[(&str, &str)], secrets: &[(&str, &str)]) -> BeanstalkPlan {
    use fastdeploy::settings::runtime::{EnvVar, RuntimeConfig, Secret, SecretRef, Written};
    let written = |name: &str| Written {
        path: format!("components.web.env.{name}"),
        file: None,
        line: 7,
        column: 9,
    };
    let config = RuntimeConfig {
        env: env
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.to_string(),
                shown: format!("{v:?}"),
                written: written(n),
            })
            .collect(),
        secrets: secrets
            .iter()
            .map(|(n, arn)| Secret {
                name: n.to_string(),
                reference: SecretRef::Ssm {
                    parameter: arn.to_string(),
                },
                written: written(n),
                value_from: Some(arn.to_string()),
            })
            .collect(),
    };
    BeanstalkPlan {
        config,
        ..plan(Bundle::Image)
    }
}

/// The environment's deployed properties: `env:NAME` and `secret:NAME`.
async fn properties(e: &Env) -> std::collections::BTreeMap<String, String> {
    let out =
        e.eb.describe_configuration_settings()
            .application_name(APP)
            .environment_name(ENV)
            .send()
            .await
            .unwrap();
    let deployed = out
        .configuration_settings()
        .iter()
        .find(|c| c.deployment_status().map(|s| s.as_str()) == Some("deployed"))
        .expect("a deployed configuration");
    deployed
        .option_settings()
        .iter()
        .filter_map(|o| {
            let kind = match o.namespace()? {
                "aws:elasticbeanstalk:application:environment" => "env",
                "aws:elasticbeanstalk:application:environmentsecrets" => "secret",
                _ => return None,
            };
            Some((
                format!("{kind}:{}", o.option_name()?),
                o.value()?.to_string(),
            ))
        })
        .collect()
}

/// UpdateEnvironment calls that set options (configuration updates).
fn configuration_updates(moto: &Moto) -> usize {
    calls(moto, "UpdateEnvironment")
        .iter()
        .filter(|c| c["params"].get("VersionLabel").is_none_or(Value::is_null))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn env_and_secrets_are_set_as_environment_properties_before_the_version_and_put_back_on_rollback()
 {
    let e = env().await;
    let db = "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db";
    let first = with_properties(&[("LOG_LEVEL", "debug")], &[("DATABASE_URL", db)]);
    let (out, log) = deploy(&e, &first, "acme/web", 'a').await;
    assert_eq!(
        out.result,
        RunResult::Success,
        "{:?}\n{}",
        out.failure,
        log.join("\n")
    );
    let props = properties(&e).await;
    assert_eq!(
        props.get("env:LOG_LEVEL").map(String::as_str),
        Some("debug"),
        "{props:?}"
    );
    assert_eq!(
        props.get("secret:DATABASE_URL").map(String::as_str),
        Some(db),
        "{props:?}"
    );
    assert_eq!(
        configuration_updates(&e.moto),
        1,
        "one configuration update, then the version"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("environment properties set: DATABASE_URL, LOG_LEVEL")),
        "{}",
        log.join("\n")
    );

    // `plan --diff`: a value changed, and a secret turned into a value.
    let next = with_properties(
        &[
            ("LOG_LEVEL", "info"),
            ("DATABASE_URL", "postgres://db/shop"),
        ],
        &[],
    );
    let deployer = Deployer::new(&e.sdk, None, SCALE);
    let d =
        fastdeploy::deploy::diff::diff(&deployer.cx(), "web", &TargetPlan::Beanstalk(next), None)
            .await
            .unwrap();
    for line in [
        "env LOG_LEVEL changed: \"debug\" → \"info\"",
        "env DATABASE_URL added: \"postgres://db/shop\"",
        "secret DATABASE_URL removed",
    ] {
        assert!(
            d.changes.iter().any(|l| l == line),
            "{line} in {:?}",
            d.changes
        );
    }
    assert_eq!(
        configuration_updates(&e.moto),
        1,
        "the diff changed nothing"
    );

    // Nothing changed: no configuration update.
    let (again, log) = deploy(&e, &first, "acme/web", 'a').await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert_eq!(configuration_updates(&e.moto), 1, "{}", log.join("\n"));

    // A version that fails: the label and the properties are put back.
    let info = with_properties(
        &[("LOG_LEVEL", "info"), ("NEW_FLAG", "1")],
        &[("DATABASE_URL", db)],
    );
    let (bad, log) = deploy(&e, &info, "acme/badimage-web", 'b').await;
    assert_eq!(
        bad.result,
        RunResult::RolledBack,
        "{:?}\n{}",
        bad.failure,
        log.join("\n")
    );
    let props = properties(&e).await;
    assert_eq!(
        props.get("env:LOG_LEVEL").map(String::as_str),
        Some("debug"),
        "{props:?}\n{}",
        log.join("\n")
    );
    assert!(
        !props.contains_key("env:NEW_FLAG"),
        "a name that was not there is removed again: {props:?}"
    );
    assert!(
        bad.failure
            .as_deref()
            .unwrap_or_default()
            .contains("environment properties set back as they were")
            || log
                .iter()
                .any(|l| l.contains("environment properties set back as they were")),
        "{:?}\n{}",
        bad.failure,
        log.join("\n")
    );

    // EB failing the configuration update: nothing else is sent, and EB's
    // revert leaves the previous properties.
    let versions = calls(&e.moto, "UpdateEnvironment").len() - configuration_updates(&e.moto);
    blocking(|| {
        e.moto.control(
            "beanstalk/config",
            json!({"config_update_failure": "Configuration validation exception: Invalid option value"}),
        )
    });
    let (refused, log) = deploy(&e, &info, "acme/web", 'c').await;
    assert_eq!(
        refused.result,
        RunResult::Failure,
        "{:?}\n{}",
        refused.failure,
        log.join("\n")
    );
    let why = refused.failure.clone().unwrap_or_default();
    assert!(
        why.contains("EB did not set the environment properties (LOG_LEVEL, NEW_FLAG)"),
        "{why}"
    );
    assert_eq!(
        calls(&e.moto, "UpdateEnvironment").len() - configuration_updates(&e.moto),
        versions,
        "no version deployed after the failed configuration update"
    );
    assert_eq!(
        properties(&e)
            .await
            .get("env:LOG_LEVEL")
            .map(String::as_str),
        Some("debug")
    );
    blocking(|| {
        e.moto
            .control("beanstalk/config", json!({"config_update_failure": null}))
    });
}

/// With `targets:`, an environment whose update succeeded goes back to the
/// label it ran when another target of the component fails.
#[tokio::test(flavor = "multi_thread")]
async fn with_targets_the_environment_goes_back_when_a_service_of_the_component_fails() {
    let e = env().await;
    let eb = plan(Bundle::Image);
    let worker =
        crate::support::deploy::failing_service(&e.moto, &e.sdk, "worker", eb.watch.clone()).await;
    let mut c = component(&eb, e.work.path());
    c.also = vec![TargetPlan::Ecs(worker)];
    let (captured, actions) = Actions::capture();
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let change = fastdeploy::deploy::Change::Image(image("acme/web", '2'));
    let out = fastdeploy::deploy::deploy(&d.cx(), &c, &change)
        .await
        .unwrap();
    let lines = captured.lines().join("\n");
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{lines}",
        out.failure
    );
    let label =
        e.eb.describe_environments()
            .environment_names(ENV)
            .send()
            .await
            .unwrap()
            .environments()[0]
            .version_label()
            .map(str::to_string);
    assert_eq!(label.as_deref(), Some(FIRST), "{lines}");
    assert_eq!(
        out.report.result,
        Some(RunResult::RolledBack),
        "{:?}",
        out.failure
    );
    assert!(
        out.failure
            .as_deref()
            .unwrap_or_default()
            .contains("shop-prod: put back with the component: worker did not succeed"),
        "{:?}",
        out.failure
    );
}

// ---------------------------------------------------------------------------
// `strategy: swap`: the idle one of two environments deployed, then the
// CNAMEs swapped (the sandbox's SwapEnvironmentCNAMEs).

const BLUE: &str = "shop-blue";
const GREEN: &str = "shop-green";
/// The live CNAME's prefix.
const LIVE: &str = "shop-live";

/// `shop-blue` holding `shop-live.us-east-1.elasticbeanstalk.com` and
/// `shop-green` (CNAME `shop-green-idle...`), both running v1.
async fn pair() -> Env {
    let e = env().await;
    create_pair(&e.eb).await;
    e
}

/// `shop-blue` (CNAME prefix `shop-live`) and `shop-green` (`shop-green-idle`)
/// in application `shop`, both on v1.
async fn create_pair(eb: &aws_sdk_elasticbeanstalk::Client) {
    for (name, prefix) in [(BLUE, LIVE), (GREEN, "shop-green-idle")] {
        eb.create_environment()
            .application_name(APP)
            .environment_name(name)
            .solution_stack_name(STACK)
            .version_label(FIRST)
            .cname_prefix(prefix)
            .send()
            .await
            .unwrap();
    }
}

fn swap_plan() -> BeanstalkPlan {
    BeanstalkPlan {
        environment: format!("{BLUE},{GREEN}"),
        swap: Some(fastdeploy::plan::SwapPlan {
            pair: [BLUE.into(), GREEN.into()],
            cname: LIVE.into(),
        }),
        ..plan(Bundle::Image)
    }
}

/// Each environment of the pair: (name, status, version label, CNAME).
async fn pair_now(eb: &aws_sdk_elasticbeanstalk::Client) -> Vec<(String, String, String, String)> {
    let out = eb
        .describe_environments()
        .application_name(APP)
        .environment_names(BLUE)
        .environment_names(GREEN)
        .send()
        .await
        .unwrap();
    let mut all: Vec<_> = out
        .environments()
        .iter()
        .map(|d| {
            (
                d.environment_name().unwrap_or_default().to_string(),
                d.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                d.version_label().unwrap_or_default().to_string(),
                d.cname().unwrap_or_default().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

/// The environment holding the live CNAME, and its version label.
async fn live(eb: &aws_sdk_elasticbeanstalk::Client) -> (String, String) {
    let now = pair_now(eb).await;
    let holder = now
        .iter()
        .find(|(_, _, _, cname)| cname.starts_with(&format!("{LIVE}.")))
        .unwrap_or_else(|| panic!("nobody holds {LIVE}: {now:?}"));
    (holder.0.clone(), holder.2.clone())
}

async fn swap_deploy(e: &Env, d: &Deployer, repository: &str, digit: char) -> DeployOutcome {
    let plan = swap_plan();
    d.swap(
        &plan,
        &component(&plan, e.work.path()),
        &image(repository, digit),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_deploy_moves_the_live_cname_to_the_idle_environment_and_a_rollback_swaps_back() {
    let e = pair().await;
    let (lines, actions) = Actions::capture();
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let out = swap_deploy(&e, &d, "acme/web", 'a').await;
    let said = lines.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{said}", out.failure);
    let ours = out.report.revision.clone().unwrap();
    assert_eq!(out.report.previous_revision.as_deref(), Some(FIRST));
    assert_eq!(out.report.serving_revision.as_deref(), Some(ours.as_str()));
    assert_eq!(live(&e.eb).await, (GREEN.to_string(), ours.clone()));
    // The environment that served keeps running, Ready, on v1.
    let blue = pair_now(&e.eb)
        .await
        .into_iter()
        .find(|p| p.0 == BLUE)
        .unwrap();
    assert_eq!((blue.1.as_str(), blue.2.as_str()), ("Ready", FIRST));
    assert!(
        said.contains(&format!(
            "{BLUE} holds `{LIVE}` (version {FIRST}); deploying to the idle environment {GREEN}"
        )) && said.contains(&format!(
            "swapping the CNAMEs of {BLUE} and {GREEN}: `{LIVE}` moves to {GREEN}"
        )) && said.contains(&format!(
            "swapped: `{LIVE}` points to {GREEN} (version {ours}); DNS clients follow within the record's TTL"
        )) && said.contains(&format!("{BLUE} keeps running version {FIRST}: a rollback swaps back")),
        "{said}"
    );
    assert_eq!(calls(&e.moto, "SwapEnvironmentCNAMEs").len(), 1);

    // `rollback`: what the idle environment runs, put back by a swap.
    let plan = swap_plan();
    let c = component(&plan, e.work.path());
    let pair = plan.swap.as_ref().unwrap();
    let mut t = fastdeploy::deploy::beanstalk::Swap::new(&plan, pair, &c);
    let back = d.roll_back(&mut t, None).await.unwrap();
    assert_eq!(back.result, RunResult::Success, "{:?}", back.failure);
    assert_eq!(back.report.serving_revision.as_deref(), Some(FIRST));
    assert_eq!(live(&e.eb).await, (BLUE.to_string(), FIRST.to_string()));
    assert_eq!(calls(&e.moto, "SwapEnvironmentCNAMEs").len(), 2);
    // `to` naming what the idle environment does not run is bad input.
    let err = d.roll_back(&mut t, Some("v0")).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "`to` is v0, but the idle environment {GREEN} runs version {ours}"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_swap_deploy_leaves_the_live_cname_where_it_was() {
    let e = pair().await;
    let d = Deployer::new(&e.sdk, None, SCALE);
    // EB fails the idle environment's deployment: no swap is asked.
    let out = swap_deploy(&e, &d, "acme/badimage-web", 'b').await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let failure = out.failure.unwrap();
    assert!(
        failure.contains(&format!(
            "(on the idle environment {GREEN}; the live CNAME `{LIVE}` never moved)"
        )) && failure.ends_with(&format!(
            "the live CNAME `{LIVE}` still serves version {FIRST}"
        )),
        "{failure}"
    );
    assert_eq!(live(&e.eb).await, (BLUE.to_string(), FIRST.to_string()));
    assert!(calls(&e.moto, "SwapEnvironmentCNAMEs").is_empty());

    // EB fails the swap itself: the CNAME stays, and the run says EB's event.
    blocking(|| {
        e.moto
            .control("beanstalk/config", json!({"swap_failure": true}))
    });
    let out = swap_deploy(&e, &d, "acme/web", 'c').await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let failure = out.failure.unwrap();
    assert!(
        failure.starts_with("EB did not swap the CNAMEs: ")
            && failure.contains("Failed to swap CNAMEs")
            && failure.ends_with(&format!(
                "the live CNAME `{LIVE}` still serves version {FIRST}"
            )),
        "{failure}"
    );
    assert_eq!(live(&e.eb).await, (BLUE.to_string(), FIRST.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_pair_that_is_not_one_is_bad_input_before_anything_is_built() {
    let e = pair().await;
    let check = |plan: BeanstalkPlan| {
        let e = &e;
        async move {
            let d = Deployer::new(&e.sdk, None, SCALE);
            let err = fastdeploy::deploy::preflight(&d.cx(), &component(&plan, e.work.path()))
                .await
                .unwrap_err();
            assert_eq!(
                fastdeploy::error::exit_for(&err),
                fastdeploy::error::Exit::BadInput,
                "{err:#}"
            );
            err.to_string()
        }
    };
    let nobody = BeanstalkPlan {
        swap: Some(fastdeploy::plan::SwapPlan {
            pair: [BLUE.into(), GREEN.into()],
            cname: "shop-www".into(),
        }),
        ..swap_plan()
    };
    let text = check(nobody).await;
    // As README.md's bad-input table quotes it.
    assert_eq!(
        text,
        format!(
            "neither of {BLUE} (shop-live.us-east-1.elasticbeanstalk.com) and {GREEN} (shop-green-idle.us-east-1.elasticbeanstalk.com) holds the CNAME `shop-www` (`beanstalk-cname`): name the prefix of the live one's CNAME"
        )
    );
    let elsewhere = BeanstalkPlan {
        swap: Some(fastdeploy::plan::SwapPlan {
            pair: [BLUE.into(), "shop-orange".into()],
            cname: LIVE.into(),
        }),
        ..swap_plan()
    };
    let text = check(elsewhere).await;
    assert!(text.contains("shop-orange"), "{text}");
    // The pair that is one passes.
    let d = Deployer::new(&e.sdk, None, SCALE);
    let plan = swap_plan();
    fastdeploy::deploy::preflight(&d.cx(), &component(&plan, e.work.path()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_in_the_bake_after_a_swap_swaps_back() {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
    let e = pair().await;
    let cw = aws_sdk_cloudwatch::Client::new(&e.sdk);
    cw.put_metric_alarm()
        .alarm_name("shop-5xx")
        .namespace("AWS/ElasticBeanstalk")
        .metric_name("ApplicationRequests5xx")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let mut plan = swap_plan();
    plan.watch.alarms = Some(fastdeploy::plan::AlarmPlan {
        names: vec!["shop-5xx".into()],
        prefixes: vec![],
        bake_seconds: 600,
        source: "input `alarms`".into(),
    });
    let (lines, actions) = Actions::capture();
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let c = component(&plan, e.work.path());
    let img = image("acme/web", 'a');
    let alarm = async {
        for _ in 0..1000 {
            if lines
                .lines()
                .iter()
                .any(|l| l.contains("bake: watching alarms"))
            {
                cw.set_alarm_state()
                    .alarm_name("shop-5xx")
                    .state_value(StateValue::Alarm)
                    .state_reason("Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).")
                    .send()
                    .await
                    .unwrap();
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no bake: {:#?}", lines.lines());
    };
    let (out, ()) = tokio::join!(d.swap(&plan, &c, &img), alarm);
    let said = lines.lines().join("\n");
    assert_eq!(
        out.result,
        RunResult::RolledBack,
        "{:?}\n{said}",
        out.failure
    );
    let failure = out.failure.unwrap();
    assert!(
        failure
            .starts_with("alarm `shop-5xx` went to ALARM (baking for 10 min): Threshold Crossed")
            && failure.ends_with(&format!(
                "fastdeploy rolled back: the live CNAME `{LIVE}` serves version {FIRST} again"
            )),
        "{failure}"
    );
    assert_eq!(live(&e.eb).await, (BLUE.to_string(), FIRST.to_string()));
    assert_eq!(
        calls(&e.moto, "SwapEnvironmentCNAMEs").len(),
        2,
        "there and back"
    );
}

/// `fastdeploy run` with `strategy: swap` between `shop-blue` and
/// `shop-green` and `smoke-test-path: /health`; the run's HTTP proxy is
/// `app`, which answers for the environments' CNAMEs (nothing resolves
/// them here, as on a runner behind a proxy).
fn swap_command(
    sb: &FullSandbox,
    app: &crate::support::sandbox::Receiver,
) -> std::process::Command {
    let mut cmd = beanstalk_command(sb);
    cmd.env("INPUT_BEANSTALK_ENVIRONMENT", format!("{BLUE},{GREEN}"))
        .env("INPUT_BEANSTALK_CNAME", LIVE)
        .env("INPUT_STRATEGY", "swap")
        .env("INPUT_SMOKE_TEST_PATH", "/health")
        .env("INPUT_SMOKE_TEST_SECONDS", "30");
    app.proxy_for(&mut cmd);
    cmd
}

#[test]
fn a_swap_run_smoke_tests_the_idle_environment_before_its_cname_goes_live() {
    let sb = FullSandbox::start();
    let app = crate::support::sandbox::Receiver::start();
    sb.moto
        .control("beanstalk/config", json!({"step_seconds": 0.05}));
    let (eb, _) = crate::support::sandbox::block_on(clients(&sb.moto));
    crate::support::sandbox::block_on(async {
        seed(&sb.moto, vec![]).await;
        create_pair(&eb).await;
    });
    let idle = "shop-green-idle.us-east-1.elasticbeanstalk.com";
    // The new version answers 500 at the idle environment's URL: the CNAME
    // never moves.
    app.default_response(
        json!({"host": idle, "match": "GET /health", "status": 500, "body": "db down"}),
    );
    let ran = run(swap_command(&sb, &app));
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert!(
        ran.stdout.contains(&format!(
            "smoke test: GET http://{idle}/health answered 500 (\"db down\") after 30 s and"
        )) && ran
            .stdout
            .contains(&format!("the live CNAME `{LIVE}` never moved")),
        "{}",
        ran.log()
    );
    let served = crate::support::sandbox::block_on(live(&eb));
    assert_eq!(served, (BLUE.to_string(), FIRST.to_string()));
    assert!(calls(&sb.moto, "SwapEnvironmentCNAMEs").is_empty());
    assert!(
        app.requests().iter().all(|r| r["host"] == idle),
        "only the idle environment was fetched: {:?}",
        app.requests()
    );

    // Fixed: the idle environment answers, then the CNAME moves to it.
    app.default_response(
        json!({"host": idle, "match": "GET /health", "status": 200, "body": {"ok": true}}),
    );
    std::fs::remove_file(sb.output_file()).unwrap();
    let ran = run(swap_command(&sb, &app));
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert!(
        ran.stdout.contains(&format!(
            "smoke test: GET http://{idle}/health answered 200 (1 try)"
        )) && ran
            .stdout
            .contains(&format!("swapped: `{LIVE}` points to {GREEN}")),
        "{}",
        ran.log()
    );
    let (holder, label) = crate::support::sandbox::block_on(live(&eb));
    assert_eq!(holder, GREEN);
    assert_eq!(sb.output("serving-revision"), Some(label));
    assert_eq!(sb.output("previous-revision").as_deref(), Some(FIRST));
    assert_eq!(calls(&sb.moto, "SwapEnvironmentCNAMEs").len(), 1);
}
