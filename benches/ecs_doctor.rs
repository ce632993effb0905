//! ECS rollouts on AWS's default settings against the ECS best-practices
//! guide's: the same service (two Fargate tasks at 200/100 behind one target
//! group, a 200 MB image) deployed through fastdeploy's deploy, first with
//! the defaults (300 s deregistration delay, 30 s health checks with a
//! healthy threshold of 5, stop timeout unset: 30 s), then tuned (5 s delay,
//! 5 s checks with a threshold of 2, 2 s stop timeout), each several times
//! with a new image. For every deploy: the deploy-time doctor's estimate of
//! the rollout before it, and the rollout measured after it by the timeline
//! (from UpdateService to the verdict: pull, start to healthy, draining,
//! waiting), from ECS's own timestamps in the sandbox.
//!
//! The sandbox (tests/sandbox/ext_ecs.py, timed rollouts) paces the tasks by
//! the target group's and the task definition's settings as AWS documents
//! them, 100x faster than real time; every number here is scaled back to
//! real seconds. The estimate and the sandbox follow the same documented
//! rules, so their agreement checks the timeline's reading of a rollout whose
//! true durations are known, not AWS itself; the measured rollout also holds
//! what the model leaves out (the scheduler's passes, fastdeploy's last look).
//!
//!     cargo bench --bench ecs_doctor
//!
//! Writes target/bench-results/ecs_doctor.rows.md (its row of
//! docs/benchmarks.md) and ecs_doctor.md, and prints the row.

#[path = "../tests/it/support/sandbox.rs"]
mod sandbox;
#[path = "../tests/it/support/deploy.rs"]
mod support_deploy;

use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentConfiguration, LaunchType, LoadBalancer, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetGroupAttribute, TargetTypeEnum};
use fastdeploy::gha::Actions;
use fastdeploy::outcome::{Phase, RunResult, Timeline};
use fastdeploy::plan::{EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};

/// Sandbox seconds per real second, for the sandbox and fastdeploy's waits alike.
const SCALE: f64 = 0.01;
const RUNS: usize = 3;
const IMAGE_BYTES: u64 = 200_000_000;
/// The targets: the tuned rollout (UpdateService to the verdict) at least
/// this many times faster, and every estimate within this share of the
/// phases it models (pull, start to healthy, draining: the rollout less its
/// waiting, which holds the verdict's last look).
const SPEED_UP: f64 = 3.0;
const ESTIMATE_WITHIN: f64 = 0.10;

struct Setup {
    name: &'static str,
    what: &'static str,
    delay: Option<u32>,
    interval: Option<i32>,
    threshold: Option<i32>,
    stop_timeout: Option<i32>,
}

const DEFAULTS: Setup = Setup {
    name: "defaults",
    what: "AWS's defaults: 300 s deregistration delay, 30 s health checks with a healthy threshold of 5, stop timeout unset (30 s)",
    delay: None,
    interval: None,
    threshold: None,
    stop_timeout: None,
};
const TUNED: Setup = Setup {
    name: "tuned",
    what: "the ECS best-practices guide's: 5 s deregistration delay, 5 s health checks with a healthy threshold of 2, 2 s stop timeout",
    delay: Some(5),
    interval: Some(5),
    threshold: Some(2),
    stop_timeout: Some(2),
};

struct Run {
    estimate: f64,
    /// UpdateService to the verdict.
    rollout: f64,
    /// The rollout less its waiting: what the estimate models.
    modelled: f64,
    deploy: f64,
    timeline: Timeline,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn image(setup: &str, run: usize) -> String {
    let digest = format!("{:064x}", (run as u64 + 1) * 0x1111 + setup.len() as u64);
    format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{setup}@sha256:{digest}")
}

async fn create(moto: &sandbox::Moto, s: &Setup) -> anyhow::Result<()> {
    let config = moto.sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let vpc = {
        let endpoint = moto.endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let xml = reqwest::blocking::Client::new()
                .post(&endpoint)
                .header(
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
                )
                .form(&[("Action", "DescribeVpcs"), ("Version", "2016-11-15")])
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            let at = xml.find("<vpcId>").map(|i| i + "<vpcId>".len()).unwrap_or(0);
            xml[at..at + xml[at..].find('<').unwrap_or(0)].to_string()
        })
        .await?
    };
    let mut tg = elb
        .create_target_group()
        .name(s.name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path("/health");
    if let Some(i) = s.interval {
        tg = tg.health_check_interval_seconds(i);
    }
    if let Some(h) = s.threshold {
        tg = tg.healthy_threshold_count(h);
    }
    let arn = tg.send().await?.target_groups()[0]
        .target_group_arn()
        .context("no target group ARN")?
        .to_string();
    if let Some(d) = s.delay {
        elb.modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(d.to_string())
                    .build(),
            )
            .send()
            .await?;
    }
    let c = ContainerDefinition::builder()
        .name("app")
        .image(image(s.name, 0))
        .memory(512)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .set_stop_timeout(s.stop_timeout)
        .build();
    ecs.register_task_definition()
        .family(s.name)
        .container_definitions(c)
        .send()
        .await?;
    ecs.create_service()
        .cluster("bench")
        .service_name(s.name)
        .task_definition(format!("{}:1", s.name))
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .maximum_percent(200)
                .minimum_healthy_percent(100)
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&arn)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

async fn deploy(moto: &sandbox::Moto, s: &Setup, run: usize) -> anyhow::Result<Run> {
    let config = moto.sdk_config().await;
    // Its log lines are the deploy's; the bench prints its own.
    let deployer =
        support_deploy::Deployer::new(&config, None, SCALE).with_actions(Actions::capture().1);
    let plan = EcsPlan {
        cluster: "bench".into(),
        service: s.name.into(),
        containers: vec!["app".into()],
        task_definition_file: None,
        strategy: Strategy::Service,
        wait_until: WaitUntil::Completed,
        keep_revisions: None,
        before_deploy: None,
        config: Default::default(),
        watch: WatchPlan {
            wait_seconds: 1800,
            poll_seconds: 5.0,
            rollback: false,
            smoke: None,
            alarms: None,
        },
    };
    let image = fastdeploy::deploy::Image {
        bytes: Some(IMAGE_BYTES),
        ..support_deploy::image_of(&image(s.name, run + 1))
    };
    let out = deployer.ecs(&plan, &image).await;
    anyhow::ensure!(
        out.result == RunResult::Success,
        "{} deploy {run} did not succeed: {:?}",
        s.name,
        out.failure
    );
    let estimate = out
        .report
        .doctor
        .as_ref()
        .and_then(|d| d.estimate.as_ref())
        .context("no estimate")?
        .seconds;
    let timeline = out.report.timeline.clone().context("no timeline")?;
    let rollout = timeline
        .phases
        .iter()
        .filter(|p| p.estimate.is_some())
        .map(|p| p.seconds)
        .sum::<f64>()
        / SCALE;
    let waiting = timeline
        .phases
        .iter()
        .filter(|p| p.phase == Phase::Waiting)
        .map(|p| p.seconds)
        .sum::<f64>()
        / SCALE;
    Ok(Run {
        estimate,
        rollout,
        modelled: rollout - waiting,
        deploy: timeline.deploy_seconds / SCALE,
        timeline,
    })
}

fn phases(t: &Timeline) -> String {
    t.phases
        .iter()
        .map(|p| format!("{} {:.1} s", p.phase.as_str(), p.seconds / SCALE))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ecs_doctor: benchmark skipped (run it with `cargo bench --bench ecs_doctor`)");
        return Ok(());
    }
    let moto = tokio::task::block_in_place(sandbox::Moto::start);
    tokio::task::block_in_place(|| {
        moto.control("ecs/config", serde_json::json!({"step_seconds": 0.05, "time_scale": SCALE, "default_image_bytes": IMAGE_BYTES}))
    });
    aws_sdk_ecs::Client::new(&moto.sdk_config().await)
        .create_cluster()
        .cluster_name("bench")
        .send()
        .await?;
    let mut results: Vec<(&Setup, Vec<Run>)> = Vec::new();
    for s in [&DEFAULTS, &TUNED] {
        create(&moto, s).await?;
        let mut runs = Vec::new();
        for run in 0..RUNS {
            let r = deploy(&moto, s, run).await?;
            println!(
                "{} deploy {}: estimated rollout {:.1} s, measured {:.1} s (deploy {:.1} s: {})",
                s.name,
                run + 1,
                r.estimate,
                r.rollout,
                r.deploy,
                phases(&r.timeline)
            );
            runs.push(r);
        }
        results.push((s, runs));
    }
    let summary = |runs: &[Run]| {
        (
            median(runs.iter().map(|r| r.estimate).collect()),
            median(runs.iter().map(|r| r.rollout).collect()),
        )
    };
    let (d_est, d_meas) = summary(&results[0].1);
    let (t_est, t_meas) = summary(&results[1].1);
    let speed_up = d_meas / t_meas;
    let all: Vec<&Run> = results.iter().flat_map(|(_, runs)| runs.iter()).collect();
    let worst = all
        .iter()
        .map(|r| (r.modelled - r.estimate).abs() / r.modelled)
        .fold(0.0, f64::max);
    let worst_seconds = all
        .iter()
        .map(|r| (r.modelled - r.estimate).abs())
        .fold(0.0, f64::max);
    let waiting = all
        .iter()
        .map(|r| r.rollout - r.modelled)
        .fold(0.0, f64::max);
    let met = speed_up >= SPEED_UP && worst <= ESTIMATE_WITHIN;
    let phase = |runs: &[Run], p: Phase| {
        median(
            runs.iter()
                .map(|r| {
                    r.timeline
                        .phases
                        .iter()
                        .find(|x| x.phase == p)
                        .map_or(0.0, |x| x.seconds / SCALE)
                })
                .collect(),
        )
    };
    let row = format!(
        "| (h) | ECS rollout of the same service (2 Fargate tasks at 200/100 behind a target group, a 200 MB image) on the ECS best-practices guide's settings vs AWS's defaults: the doctor's estimate before it and the timeline's measurement after it, real seconds (sandbox 100x faster; median of {RUNS} deploys each) \
         | tuned: estimated {t_est:.0} s, measured {t_meas:.0} s (draining {:.0} s) \
         | defaults: estimated {d_est:.0} s, measured {d_meas:.0} s (draining {:.0} s) \
         | {speed_up:.1}x faster; every estimate within {worst_seconds:.1} s ({:.1}%) of the phases it models, the rollout's waiting (the verdict's last look) up to {waiting:.1} s more \
         | tuned at least {SPEED_UP:.0}x faster, every estimate within {:.0}% of pull + start to healthy + draining \
         | {} | `cargo bench --bench ecs_doctor` |\n",
        phase(&results[1].1, Phase::Draining),
        phase(&results[0].1, Phase::Draining),
        worst * 100.0,
        ESTIMATE_WITHIN * 100.0,
        if met { "met" } else { "**not met**" }
    );
    print!("{row}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let results_dir = target.join("bench-results");
    std::fs::create_dir_all(&results_dir)?;
    std::fs::write(results_dir.join("ecs_doctor.rows.md"), &row)?;
    let mut runs_text = String::new();
    for (s, runs) in &results {
        runs_text.push_str(&format!("{} ({}):\n", s.name, s.what));
        for (i, r) in runs.iter().enumerate() {
            runs_text.push_str(&format!(
                "  deploy {}: estimated rollout {:.1} s, measured {:.1} s; deploy {:.1} s = {}\n",
                i + 1,
                r.estimate,
                r.rollout,
                r.deploy,
                phases(&r.timeline)
            ));
        }
    }
    std::fs::write(
        results_dir.join("ecs_doctor.md"),
        format!(
            "### (h) ECS rollout: AWS's defaults vs the ECS best-practices guide's settings\n\n\
             benches/ecs_doctor.rs: the same service, two Fargate tasks at maximumPercent 200 and minimumHealthyPercent 100 \
             behind one target group, a 200 MB image, deployed {RUNS} times (a new image each time) through fastdeploy's deploy \
             with the deploy-time doctor before the rollout and the timeline after it (src/deploy/ecs/doctor.rs, timeline.rs). \
             The sandbox paces tasks by the target group's and the task definition's settings as AWS documents them \
             (tests/sandbox/ext_ecs.py, timed rollouts), 100x faster than real time; all numbers are real seconds. The \
             estimate and the sandbox follow the same documented rules, so their agreement checks the timeline's reading of a \
             rollout whose true durations are known; the measured rollout (UpdateService to the verdict) also holds what the \
             model leaves out: the scheduler's passes and fastdeploy's last look (waiting).\n\n```\n{runs_text}```\n"
        ),
    )?;
    anyhow::ensure!(
        met,
        "target not met: {speed_up:.1}x, estimates up to {worst_seconds:.1} s ({:.1}%) off",
        worst * 100.0
    );
    Ok(())
}
