//! Detection lag: the time from a rollout completing in the sandbox to the
//! watcher reporting it, for fastdeploy (5 s jittered poll) and for a 15 s
//! fixed poll on "services stable" (the ECS waiter's default), watching the
//! same deployments in one run.
//!
//! Time runs `SCALE` times faster than real (moto's steps, both polls); lags
//! are reported in real-world seconds. API round trips are scaled up with
//! them, so the numbers slightly overstate both lags.
//!
//! `cargo bench --bench deploy_lag` (needs python3 with moto, like the tests).

#[path = "../tests/it/sandbox.rs"]
mod sandbox;

use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::{ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState};
use fastdeploy::cancel::Cancel;
use fastdeploy::gha::Actions;
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};

const SCALE: f64 = 0.1;
const RUNS: usize = 15;
const FASTDEPLOY_POLL: f64 = 5.0;
const WAITER_POLL: f64 = 15.0;
const TARGET_MEDIAN: f64 = 6.0;

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A fixed 15 s poll (the ECS `services-stable` waiter's interval) on the
/// same completion signal fastdeploy judges: our deployment PRIMARY, alone,
/// rolloutState COMPLETED. (`services-stable` itself only compares counts,
/// which can turn true before the rollout is complete.)
async fn fixed_poll_waiter(ecs: aws_sdk_ecs::Client, service: String, ours: String) -> f64 {
    loop {
        let out = ecs.describe_services().cluster("bench").services(&service).send().await.unwrap();
        let s = &out.services()[0];
        let done = match s.deployments() {
            [d] => d.task_definition().is_some_and(|t| t.ends_with(&ours)) && d.rollout_state() == Some(&DeploymentRolloutState::Completed),
            _ => false,
        };
        if done {
            return secs(SystemTime::now());
        }
        tokio::time::sleep(Duration::from_secs_f64(WAITER_POLL * SCALE)).await;
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    let p90 = v[(v.len() * 9 / 10).min(v.len() - 1)];
    (median, p90, v[v.len() - 1])
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo test --all-targets` runs bench targets too (without `--bench`):
    // fifteen timed rollouts are a benchmark, not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("deploy_lag: benchmark skipped (run it with `cargo bench --bench deploy_lag`)");
        return;
    }
    let moto = sandbox::Moto::start();
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    ecs.create_cluster().cluster_name("bench").send().await.unwrap();
    let actions = Actions::default();
    let (mut ours_lag, mut waiter_lag) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        // A rollout of 4 steps, 1-10 real seconds each (4-40 s in all), so
        // completions land at every phase of both polls.
        let step = (1.0 + 9.0 * fastrand::f64()) * SCALE;
        tokio::task::block_in_place(|| moto.control("ecs/config", serde_json::json!({"step_seconds": step})));
        let (family, service) = (format!("bench{run}"), format!("svc{run}"));
        let c = ContainerDefinition::builder().name("app").image("old:1").memory(128).build();
        ecs.register_task_definition().family(&family).container_definitions(c).send().await.unwrap();
        ecs.create_service()
            .cluster("bench")
            .service_name(&service)
            .task_definition(format!("{family}:1"))
            .desired_count(2)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(true).rollback(true).build())
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
            watch: WatchPlan { wait_seconds: 600, poll_seconds: FASTDEPLOY_POLL, rollback: true },
        };
        let waiter = tokio::spawn(fixed_poll_waiter(ecs.clone(), service.clone(), format!("{family}:2")));
        let image = format!("repo/{family}@sha256:{:064x}", run);
        let out = fastdeploy::deploy::ecs::deploy(&ecs, &plan, &image, SCALE, &Cancel::never(), &actions).await;
        let reported = secs(SystemTime::now());
        assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
        let waited = waiter.await.unwrap();
        let listed = ecs.list_service_deployments().cluster("bench").service(&service).send().await.unwrap();
        let finished = listed.service_deployments().iter().filter_map(|d| d.finished_at()).map(|t| t.as_secs_f64()).fold(0.0, f64::max);
        ours_lag.push((reported - finished).max(0.0) / SCALE);
        waiter_lag.push((waited - finished).max(0.0) / SCALE);
    }
    let (m, p90, max) = stats(ours_lag);
    let (wm, wp90, wmax) = stats(waiter_lag);
    println!();
    println!("detection lag over {RUNS} rollouts (real-world seconds; the sandbox ran {:.0}x faster)", 1.0 / SCALE);
    println!("  fastdeploy ({FASTDEPLOY_POLL} s jittered poll): median {m:.1} s, p90 {p90:.1} s, max {max:.1} s");
    println!("  fixed {WAITER_POLL} s poll (waiter interval): median {wm:.1} s, p90 {wp90:.1} s, max {wmax:.1} s");
    println!("  target: median under {TARGET_MEDIAN} s: {}", if m < TARGET_MEDIAN { "met" } else { "NOT met" });
}
