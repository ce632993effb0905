//! `alarms` and `bake-minutes` against the sandbox: moto's CloudWatch
//! (spoken to in Smithy RPC v2 CBOR, as the SDK speaks it, through the
//! sandbox's `ext_cloudwatch`) holds the alarms, and a test moves one to
//! ALARM with `SetAlarmState` while an ECS deploy rolls out or bakes, as an
//! alarm's own evaluation would.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use fastdeploy::error::{Exit, exit_for};
use fastdeploy::gha::{Actions, Captured};
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{AlarmPlan, EcsPlan, TargetPlan, WatchPlan};

use crate::support::deploy::{Deployer, component, image_of, service};
use crate::support::sandbox::Moto;

const SCALE: f64 = 0.01;
const GOOD: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const HANG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-hang@sha256:3333333333333333333333333333333333333333333333333333333333333333";
const REASON: &str = "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0).";

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    cw: aws_sdk_cloudwatch::Client,
    ecs: aws_sdk_ecs::Client,
}

/// Service `web` (one task of `web:1`) and alarms `api-5xx` and
/// `api-latency` (OK).
async fn env() -> Env {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for name in ["api-5xx", "api-latency"] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
        set(
            &cw,
            name,
            StateValue::Ok,
            "Threshold Crossed: no datapoints were received",
        )
        .await;
    }
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    Env { moto, sdk, cw, ecs }
}

async fn set(cw: &aws_sdk_cloudwatch::Client, name: &str, state: StateValue, reason: &str) {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .unwrap();
}

fn watch(names: &[&str], prefixes: &[&str], bake_seconds: u64, rollback: bool) -> WatchPlan {
    WatchPlan {
        wait_seconds: 1800,
        poll_seconds: 5.0,
        rollback,
        smoke: None,
        alarms: Some(AlarmPlan {
            names: names.iter().map(|n| n.to_string()).collect(),
            prefixes: prefixes.iter().map(|n| n.to_string()).collect(),
            bake_seconds,
            source: "input `alarms`".into(),
        }),
    }
}

async fn plan(e: &Env, watch: WatchPlan) -> EcsPlan {
    service(&e.moto, &e.sdk, "web", watch, None).await
}

async fn serving(e: &Env) -> String {
    let out = e
        .ecs
        .describe_services()
        .cluster("c")
        .services("web")
        .send()
        .await
        .unwrap();
    let td = out.services()[0].task_definition().unwrap_or_default();
    td.rsplit('/').next().unwrap_or_default().to_string()
}

/// Sets `name` to ALARM once the deploy has said `line`.
async fn alarm_once_said(
    cw: &aws_sdk_cloudwatch::Client,
    lines: &Captured,
    line: &str,
    name: &str,
) {
    for _ in 0..600 {
        if lines.lines().iter().any(|l| l.contains(line)) {
            set(cw, name, StateValue::Alarm, REASON).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the deploy never said {line:?}: {:#?}", lines.lines());
}

fn deployer(e: &Env) -> (Deployer, Captured) {
    let (lines, actions) = Actions::capture();
    (
        Deployer::new(&e.sdk, None, SCALE).with_actions(actions),
        lines,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_that_goes_to_alarm_during_the_bake_rolls_the_deploy_back() {
    let e = env().await;
    // Ten minutes of bake: 6 s here.
    let plan = plan(&e, watch(&["api-5xx"], &["api-lat"], 600, true)).await;
    let (d, lines) = deployer(&e);
    let image = image_of(GOOD);
    let (out, ()) = tokio::join!(
        d.ecs(&plan, &image),
        alarm_once_said(&e.cw, &lines, "bake: watching alarms", "api-5xx"),
    );
    assert_eq!(out.result, RunResult::RolledBack, "{:#?}", lines.lines());
    let failure = out.failure.unwrap();
    assert!(
        failure.starts_with(&format!(
            "alarm `api-5xx` went to ALARM (baking for 10 min): {REASON}"
        )) && failure.contains("fastdeploy rolled back")
            && failure.contains("web:1"),
        "{failure}"
    );
    assert_eq!(serving(&e).await, "web:1");
    let said = lines.lines().join("\n");
    assert!(
        said.contains("watching alarms api-5xx, api-lat* during the rollout")
            && said.contains("deployment complete")
            && !said.contains("no watched alarm went to ALARM"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_during_the_rollout_ends_it_there_and_without_rollback_says_what_serves() {
    let e = env().await;
    // The new tasks never get healthy: the rollout would wait 30 minutes.
    let plan = plan(&e, watch(&["api-5xx"], &[], 0, true)).await;
    let (d, lines) = deployer(&e);
    let image = image_of(HANG);
    let (out, ()) = tokio::join!(
        d.ecs(&plan, &image),
        alarm_once_said(&e.cw, &lines, "watching deployment", "api-5xx"),
    );
    assert_eq!(out.result, RunResult::RolledBack, "{:#?}", lines.lines());
    let failure = out.failure.unwrap();
    assert!(
        failure.starts_with("alarm `api-5xx` went to ALARM (") && failure.contains(REASON),
        "{failure}"
    );
    assert!(
        out.report.seconds.unwrap() < 10.0,
        "the alarm ended the 30-minute wait: {:?} s",
        out.report.seconds
    );
    assert_eq!(serving(&e).await, "web:1");

    // With `rollback` off, an alarm is still a verdict: the run fails and
    // says what serves (not "ECS keeps deploying").
    set(&e.cw, "api-5xx", StateValue::Ok, "recovered").await;
    let plan = EcsPlan {
        watch: watch(&["api-5xx"], &[], 0, false),
        ..plan
    };
    let (d, lines) = deployer(&e);
    let image = image_of(HANG);
    let (out, ()) = tokio::join!(
        d.ecs(&plan, &image),
        alarm_once_said(&e.cw, &lines, "watching deployment", "api-5xx"),
    );
    assert_eq!(out.result, RunResult::Failure, "{:#?}", lines.lines());
    let failure = out.failure.unwrap();
    assert!(
        failure.starts_with("alarm `api-5xx` went to ALARM (")
            && failure.contains("service web ")
            && !failure.contains("keeps deploying"),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_already_in_alarm_is_said_and_a_quiet_bake_succeeds() {
    let e = env().await;
    set(
        &e.cw,
        "api-latency",
        StateValue::Alarm,
        "the incident this deploy fixes",
    )
    .await;
    let plan = plan(&e, watch(&["api-5xx", "api-latency"], &[], 60, true)).await;
    let (d, lines) = deployer(&e);
    let out = d.ecs(&plan, &image_of(GOOD)).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(serving(&e).await, "web:2");
    let said = lines.lines().join("\n");
    assert!(
        said.contains("alarm `api-latency` is already in ALARM (the incident this deploy fixes); it fails this deploy only if it leaves ALARM and returns")
            && said.contains("bake: watching alarms api-5xx, api-latency for 1 min")
            && said.contains("bake: no watched alarm went to ALARM in 1 min"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_that_do_not_exist_are_bad_input_before_anything_is_built() {
    let e = env().await;
    let plan = plan(&e, watch(&["api-5xx", "api-5XX"], &["shop-prod-"], 0, true)).await;
    let c = component("web", "web", vec![TargetPlan::Ecs(plan.clone())]);
    let d = Deployer::new(&e.sdk, None, SCALE);
    let err = fastdeploy::deploy::preflight(&d.cx(), &c)
        .await
        .unwrap_err();
    assert_eq!(exit_for(&err), Exit::BadInput, "{err:#}");
    assert_eq!(
        err.to_string(),
        "input `alarms`: alarm `api-5XX` does not exist; no alarm matches `shop-prod-*` in us-east-1: check the names (CloudWatch alarm names are case-sensitive and belong to one region), or remove them"
    );
    // The ones that exist pass.
    let ok = EcsPlan {
        watch: watch(&["api-5xx"], &["api-"], 0, true),
        ..plan
    };
    let c = component("web", "web", vec![TargetPlan::Ecs(ok)]);
    fastdeploy::deploy::preflight(&d.cx(), &c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_services_own_deployment_alarms_are_the_reason_when_ecs_rolls_back() {
    use aws_sdk_ecs::types::{DeploymentAlarms, DeploymentConfiguration};
    let e = env().await;
    // fastdeploy watches nothing itself: ECS watches `api-5xx`.
    let plan = plan(
        &e,
        WatchPlan {
            alarms: None,
            ..watch(&[], &[], 0, true)
        },
    )
    .await;
    let alarms = DeploymentAlarms::builder()
        .alarm_names("api-5xx")
        .enable(true)
        .rollback(true)
        .build()
        .unwrap();
    e.ecs
        .update_service()
        .cluster("c")
        .service("web")
        .deployment_configuration(DeploymentConfiguration::builder().alarms(alarms).build())
        .send()
        .await
        .unwrap();
    // ECS watches the alarms once a new task runs, and through its bake.
    tokio::task::block_in_place(|| {
        e.moto
            .control("ecs/config", serde_json::json!({"alarm_bake_steps": 20}))
    });
    let (d, lines) = deployer(&e);
    let image = image_of(GOOD);
    let (out, ()) = tokio::join!(
        d.ecs(&plan, &image),
        alarm_once_said(&e.cw, &lines, "watching deployment", "api-5xx"),
    );
    assert_eq!(out.result, RunResult::RolledBack, "{:#?}", lines.lines());
    let failure = out.failure.unwrap();
    assert!(
        failure.contains("rolled back (ECS deployment alarms: alarm detected (api-5xx).)")
            && failure.contains(&format!(
                "; the service's deployment alarm `api-5xx` is in ALARM: {REASON}"
            )),
        "{failure}"
    );
    assert_eq!(serving(&e).await, "web:1");
}
