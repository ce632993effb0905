//! Detection lag: the time from a rollout completing in the sandbox to the
//! watcher reporting it, and what the watching costs in API calls, for
//! fastdeploy (5 s base interval, paced by the rollout's stage) and for a
//! fixed 5 s poll making the same look (DescribeServices and
//! DescribeServiceDeployments), watching the same deployments in one run.
//! A fixed 15 s poll on "services stable" (the ECS waiter's interval) watches
//! them too, for reference. The sandbox counts every call per action
//! (tests/sandbox/ext_faults.py); fastdeploy's calls are the sandbox's count
//! for its deploy minus the pollers' own, which they count themselves.
//!
//! Lambda: the time from an image update being applied (`LastUpdateStatus`
//! Successful) to fastdeploy reporting the deploy (version published and
//! Active, alias moved), against a fixed 5 s poll of GetFunction for the
//! same update, and against the anchors (aws-actions/aws-lambda-deploy,
//! appleboy/lambda-action), which report when UpdateFunctionCode is
//! accepted: before the update applies, so their "success" can still turn
//! into `Failed`.
//!
//! Time runs `SCALE` times faster than real (moto's steps, both polls); lags
//! are reported in real-world seconds. API round trips are scaled up with
//! them, so the numbers slightly overstate every lag.
//!
//! `cargo bench --bench deploy_lag` (needs python3 with moto, like the tests).

#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;
#[path = "../tests/it/support/deploy.rs"]
mod support_deploy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState,
};
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};

const SCALE: f64 = 0.1;
const RUNS: usize = 21;
const FASTDEPLOY_POLL: f64 = 5.0;
const FIXED_POLL: f64 = 5.0;
const WAITER_POLL: f64 = 15.0;
const TARGET_MEDIAN: f64 = 2.0;
/// The actions a look makes, counted per rollout.
const LOOK_ACTIONS: [&str; 2] = ["DescribeServices", "DescribeServiceDeployments"];

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Whether the service has completed the rollout to `ours`: our deployment
/// PRIMARY, alone, rolloutState COMPLETED (what fastdeploy judges, read
/// from the deployments list; `services-stable` itself only compares
/// counts, which can turn true before the rollout is complete).
fn complete(s: &aws_sdk_ecs::types::Service, ours: &str) -> bool {
    match s.deployments() {
        [d] => {
            d.task_definition().is_some_and(|t| t.ends_with(ours))
                && d.rollout_state() == Some(&DeploymentRolloutState::Completed)
        }
        _ => false,
    }
}

/// A fixed poll every `every` real seconds from now until the rollout to
/// `ours` completes; with `describe_deployment` each look also describes
/// the service's current service deployment, as fastdeploy's look does.
/// Returns when it noticed, and counts its calls in `calls`.
async fn fixed_poll(
    ecs: aws_sdk_ecs::Client,
    service: String,
    ours: String,
    every: f64,
    describe_deployment: bool,
    calls: Arc<AtomicU64>,
) -> f64 {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(every * SCALE));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let out = ecs
            .describe_services()
            .cluster("bench")
            .services(&service)
            .send()
            .await
            .unwrap();
        calls.fetch_add(1, Ordering::Relaxed);
        let s = &out.services()[0];
        if describe_deployment && let Some(arn) = s.current_service_deployment() {
            ecs.describe_service_deployments()
                .service_deployment_arns(arn)
                .send()
                .await
                .unwrap();
            calls.fetch_add(1, Ordering::Relaxed);
        }
        if complete(s, &ours) {
            return secs(SystemTime::now());
        }
    }
}

/// The sandbox's count of DescribeServices and DescribeServiceDeployments calls so far.
fn look_calls(moto: &sandbox::Moto) -> u64 {
    let state = moto.control("faults/state", serde_json::json!({}));
    LOOK_ACTIONS
        .iter()
        .map(|a| state["calls"][a].as_u64().unwrap_or(0))
        .sum()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    let p90 = v[(v.len() * 9 / 10).min(v.len() - 1)];
    (median, p90, v[v.len() - 1])
}

/// Per-rollout calls: median, mean and total.
fn call_stats(v: &[u64]) -> (f64, f64, u64) {
    let (median, _, _) = stats(v.iter().map(|&c| c as f64).collect());
    let total: u64 = v.iter().sum();
    (median, total as f64 / v.len() as f64, total)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo test --all-targets` runs bench targets too (without `--bench`):
    // timed rollouts are a benchmark, not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("deploy_lag: benchmark skipped (run it with `cargo bench --bench deploy_lag`)");
        return;
    }
    let moto = sandbox::Moto::start();
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    let deployer = support_deploy::Deployer::new(&moto.sdk_config().await, None, SCALE);
    ecs.create_cluster()
        .cluster_name("bench")
        .send()
        .await
        .unwrap();

    let (mut ours_lag, mut fixed_lag, mut waiter_lag) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_calls, mut fixed_calls, mut waiter_calls) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        // A rollout of 4 steps, 1-10 real seconds each (4-40 s in all), so
        // completions land at every phase of the polls.
        let step = (1.0 + 9.0 * fastrand::f64()) * SCALE;
        tokio::task::block_in_place(|| {
            moto.control("ecs/config", serde_json::json!({"step_seconds": step}))
        });
        let (family, service) = (format!("bench{run}"), format!("svc{run}"));
        let c = ContainerDefinition::builder()
            .name("app")
            .image("old:1")
            .memory(128)
            .build();
        ecs.register_task_definition()
            .family(&family)
            .container_definitions(c)
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster("bench")
            .service_name(&service)
            .task_definition(format!("{family}:1"))
            .desired_count(2)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let plan = EcsPlan {
            cluster: "bench".into(),
            service: service.clone(),
            containers: vec!["app".into()],
            task_definition_file: None,
            strategy: Strategy::Service,
            wait_until: WaitUntil::Completed,
            keep_revisions: None,
            before_deploy: None,
            config: Default::default(),
            watch: WatchPlan {
                wait_seconds: 600,
                poll_seconds: FASTDEPLOY_POLL,
                rollback: true,
                smoke: None,
                alarms: None,
            },
        };
        let calls_before = tokio::task::block_in_place(|| look_calls(&moto));
        let (fixed_count, waiter_count) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let ours_td = format!("{family}:2");
        let fixed = tokio::spawn(fixed_poll(
            ecs.clone(),
            service.clone(),
            ours_td.clone(),
            FIXED_POLL,
            true,
            fixed_count.clone(),
        ));
        let waiter = tokio::spawn(fixed_poll(
            ecs.clone(),
            service.clone(),
            ours_td,
            WAITER_POLL,
            false,
            waiter_count.clone(),
        ));
        let image = format!("repo/{family}@sha256:{:064x}", run);
        let out = deployer.ecs(&plan, &support_deploy::image_of(&image)).await;
        let reported = secs(SystemTime::now());
        assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
        let (fixed_at, waited) = (fixed.await.unwrap(), waiter.await.unwrap());
        let all_calls = tokio::task::block_in_place(|| look_calls(&moto)) - calls_before;
        let (fixed_n, waiter_n) = (
            fixed_count.load(Ordering::Relaxed),
            waiter_count.load(Ordering::Relaxed),
        );
        let listed = ecs
            .list_service_deployments()
            .cluster("bench")
            .service(&service)
            .send()
            .await
            .unwrap();
        let finished = listed
            .service_deployments()
            .iter()
            .filter_map(|d| d.finished_at())
            .map(|t| t.as_secs_f64())
            .fold(0.0, f64::max);
        ours_lag.push((reported - finished).max(0.0) / SCALE);
        fixed_lag.push((fixed_at - finished).max(0.0) / SCALE);
        waiter_lag.push((waited - finished).max(0.0) / SCALE);
        ours_calls.push(all_calls - fixed_n - waiter_n);
        fixed_calls.push(fixed_n);
        waiter_calls.push(waiter_n);
        println!(
            "rollout {run}: {:.1} s; lag fastdeploy {:.1} s ({} calls), fixed {FIXED_POLL} s poll {:.1} s ({fixed_n} calls)",
            4.0 * step / SCALE,
            ours_lag[run],
            ours_calls[run],
            fixed_lag[run]
        );
    }
    let (m, p90, max) = stats(ours_lag);
    let (fm, fp90, fmax) = stats(fixed_lag);
    let (wm, wp90, wmax) = stats(waiter_lag);
    let ((oc_med, oc_mean, oc_sum), (fc_med, fc_mean, fc_sum), (wc_med, wc_mean, wc_sum)) = (
        call_stats(&ours_calls),
        call_stats(&fixed_calls),
        call_stats(&waiter_calls),
    );
    let met = m <= TARGET_MEDIAN && oc_sum <= fc_sum;
    println!();
    println!(
        "detection lag over {RUNS} rollouts (real-world seconds; the sandbox ran {:.0}x faster)",
        1.0 / SCALE
    );
    println!(
        "  fastdeploy ({FASTDEPLOY_POLL} s base poll, paced by the rollout's stage): median {m:.1} s, p90 {p90:.1} s, max {max:.1} s; \
         calls per rollout median {oc_med:.0}, mean {oc_mean:.1}, total {oc_sum} (all its DescribeServices and DescribeServiceDeployments in the deploy, \
         the read before the update included)"
    );
    println!(
        "  fixed {FIXED_POLL} s poll (the same look): median {fm:.1} s, p90 {fp90:.1} s, max {fmax:.1} s; calls per rollout median {fc_med:.0}, mean {fc_mean:.1}, total {fc_sum}"
    );
    println!(
        "  fixed {WAITER_POLL} s poll (waiter interval, DescribeServices only): median {wm:.1} s, p90 {wp90:.1} s, max {wmax:.1} s; \
         calls per rollout median {wc_med:.0}, mean {wc_mean:.1}, total {wc_sum}"
    );
    println!(
        "  target: median lag at most {TARGET_MEDIAN} s with no more calls per rollout (on average over the same rollouts) than the fixed {FIXED_POLL} s poll: {}",
        if met { "met" } else { "NOT met" }
    );
    lambda_lag(&moto).await;
}

/// A fixed 5 s poll of GetFunction until our update is applied.
async fn lambda_fixed_poll(
    lambda: aws_sdk_lambda::Client,
    function: String,
    code_sha256: String,
) -> f64 {
    loop {
        let c = lambda
            .get_function_configuration()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        if c.last_update_status() == Some(&aws_sdk_lambda::types::LastUpdateStatus::Successful)
            && c.code_sha256() == Some(code_sha256.as_str())
        {
            return secs(SystemTime::now());
        }
        tokio::time::sleep(Duration::from_secs_f64(LAMBDA_FIXED_POLL * SCALE)).await;
    }
}

const LAMBDA_FIXED_POLL: f64 = 5.0;
const LAMBDA_STEPS: u32 = 3;

async fn lambda_lag(moto: &sandbox::Moto) {
    use fastdeploy::image::registry::Client;
    use fastdeploy::plan::LambdaPlan;
    let registry = tokio::task::block_in_place(sandbox::Registry::start);
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    tokio::task::block_in_place(|| sandbox::create_role(moto, "bench"));
    let first = tokio::task::block_in_place(|| sandbox::push_tiny_image(&registry, "bench/fn", 0));
    tokio::task::block_in_place(|| {
        moto.control(
            "lambda/config",
            serde_json::json!({"step_seconds": SCALE, "create_steps": 1}),
        )
    });
    lambda
        .create_function()
        .function_name("bench")
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(format!("{}/bench/fn@{first}", registry.host))
                .build(),
        )
        .role("arn:aws:iam::123456789012:role/bench")
        .send()
        .await
        .unwrap();
    let client = Client::new(&registry.auth(), fastdeploy::clock::Clock::scaled(SCALE));
    let deployer = support_deploy::Deployer::new(&moto.sdk_config().await, Some(client), SCALE);
    let plan = LambdaPlan {
        function: "bench".into(),
        alias: "live".into(),
        keep_revisions: None,
        config: Default::default(),
        smoke_test_event: None,
        shift: None,
        watch: WatchPlan {
            wait_seconds: 600,
            poll_seconds: FASTDEPLOY_POLL,
            rollback: true,
            smoke: None,
            alarms: None,
        },
    };
    let (mut ours, mut fixed, mut early) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        // An update of 3 steps, 1-10 real seconds each (3-30 s in all).
        let step = (1.0 + 9.0 * fastrand::f64()) * SCALE;
        tokio::task::block_in_place(|| {
            moto.control(
                "lambda/config",
                serde_json::json!({"step_seconds": step, "steps": LAMBDA_STEPS}),
            )
        });
        let digest =
            tokio::task::block_in_place(|| sandbox::push_tiny_image(&registry, "bench/fn", run));
        let uri = format!("{}/bench/fn@{digest}", registry.host);
        let hex = digest.trim_start_matches("sha256:").to_string();
        // Starts with fastdeploy, as a workflow's waiter step would after its update.
        let poller = tokio::spawn(lambda_fixed_poll(lambda.clone(), "bench".into(), hex));
        let out = deployer
            .lambda(&plan, &support_deploy::image_of(&uri))
            .await;
        let reported = secs(SystemTime::now());
        assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
        let polled = poller.await.unwrap();
        let calls = tokio::task::block_in_place(|| {
            moto.control(
                "lambda/calls",
                serde_json::json!({"action": "UpdateFunctionCode"}),
            )
        });
        let accepted = calls.as_array().unwrap().last().unwrap()["time"]
            .as_f64()
            .unwrap();
        let applied = accepted + f64::from(LAMBDA_STEPS) * step;
        ours.push((reported - applied).max(0.0) / SCALE);
        fixed.push((polled - applied).max(0.0) / SCALE);
        early.push((applied - accepted) / SCALE);
    }
    let (m, p90, max) = stats(ours);
    let (fm, fp90, fmax) = stats(fixed);
    let (em, _, emax) = stats(early);
    println!();
    println!(
        "lambda: update applied to reported over {RUNS} updates of 3-30 s (real-world seconds; the sandbox ran {:.0}x faster)",
        1.0 / SCALE
    );
    println!(
        "  fastdeploy ({FASTDEPLOY_POLL} s jittered poll, then publish, Active, alias): median {m:.1} s, p90 {p90:.1} s, max {max:.1} s"
    );
    println!(
        "  fixed {LAMBDA_FIXED_POLL} s poll of GetFunction: median {fm:.1} s, p90 {fp90:.1} s, max {fmax:.1} s"
    );
    println!(
        "  at acceptance (the anchors): reported median {em:.1} s, max {emax:.1} s before the update applied"
    );
}
