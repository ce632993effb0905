//! The deploy-time doctor and the timeline against the sandbox: moto's ELBv2
//! target groups, and ECS services behind them that roll out at the pace
//! their settings give (tests/sandbox/ext_ecs.py, timed rollouts).

use aws_sdk_ecs::types::{ContainerDefinition, DeploymentConfiguration, LoadBalancer, PortMapping};
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetGroupAttribute, TargetTypeEnum};
use fastdeploy::deploy::ecs::doctor;
use fastdeploy::gha::Actions;
use fastdeploy::outcome::{Phase, RunResult};
use fastdeploy::plan::{EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};
use serde_json::json;

use crate::support::deploy::{Deployer, image_of};
use crate::support::sandbox::{Moto, block_on};

/// Real seconds times this in the sandbox and in fastdeploy's waits.
const SCALE: f64 = 0.01;
const MB: u64 = 1_000_000;
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn control(moto: &Moto, path: &str, body: serde_json::Value) -> serde_json::Value {
    tokio::task::block_in_place(|| moto.control(path, body))
}

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl Env {
    /// A deployer on the sandbox, its lines captured into `actions`.
    fn deployer(&self, actions: &Actions, ignore: &[&str]) -> Deployer {
        let mut d = Deployer::new(&self.sdk, None, SCALE).with_actions(actions.clone());
        d.ignore_checks = ignore.iter().map(|s| s.to_string()).collect();
        d
    }

    /// The doctor before a deploy of an image of `image_bytes`, with its notices.
    async fn examine(
        &self,
        plan: &EcsPlan,
        image_bytes: Option<u64>,
        ignore: &[&str],
        actions: &Actions,
    ) -> fastdeploy::outcome::DoctorReport {
        let d = self.deployer(actions, ignore);
        let report = doctor::assess(&d.cx(), plan, image_bytes, None).await;
        doctor::notify(plan, &report, actions);
        report
    }
}

/// A target group's settings and the running revision's stop timeout.
struct Tuning {
    delay: Option<u32>,
    interval: Option<i32>,
    threshold: Option<i32>,
    stop_timeout: Option<i32>,
}

/// AWS's defaults: nothing set.
const DEFAULTS: Tuning = Tuning {
    delay: None,
    interval: None,
    threshold: None,
    stop_timeout: None,
};
/// The ECS best-practices guide's values.
const TUNED: Tuning = Tuning {
    delay: Some(5),
    interval: Some(5),
    threshold: Some(2),
    stop_timeout: Some(2),
};

async fn env() -> Env {
    let moto = Moto::start();
    // Every new task pulls a 400 MB image (about a minute), whatever it is.
    control(
        &moto,
        "ecs/config",
        json!({"step_seconds": 0.05, "time_scale": SCALE, "default_image_bytes": 400 * MB}),
    );
    let config = moto.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    ecs.create_cluster().cluster_name("c").send().await.unwrap();
    Env {
        ecs,
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
        sdk: config.clone(),
        moto,
    }
}

fn vpc(moto: &Moto) -> String {
    tokio::task::block_in_place(|| vpc_at(&moto.endpoint))
}

/// Target group `name` tuned as given, and service `name` (2 tasks at
/// 200/100) behind it on a revision of family `name` with the stop timeout given.
async fn service(e: &Env, name: &str, t: &Tuning) -> String {
    let mut tg = e
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc(&e.moto))
        .target_type(TargetTypeEnum::Ip)
        .health_check_path("/health");
    if let Some(i) = t.interval {
        tg = tg.health_check_interval_seconds(i);
    }
    if let Some(h) = t.threshold {
        tg = tg.healthy_threshold_count(h);
    }
    let arn = tg.send().await.unwrap().target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    if let Some(d) = t.delay {
        e.elb
            .modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(d.to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let c = ContainerDefinition::builder()
        .name("app")
        .image("old-image:1")
        .memory(128)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .set_stop_timeout(t.stop_timeout)
        .build();
    e.ecs
        .register_task_definition()
        .family(name)
        .container_definitions(c)
        .send()
        .await
        .unwrap();
    e.ecs
        .create_service()
        .cluster("c")
        .service_name(name)
        .task_definition(format!("{name}:1"))
        .desired_count(2)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
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
        .await
        .unwrap();
    arn
}

fn plan(service: &str) -> EcsPlan {
    EcsPlan {
        cluster: "c".into(),
        service: service.into(),
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
            rollback: true,
            smoke: None,
            alarms: None,
        },
    }
}

fn notices(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("::notice")).collect()
}

/// The "done when": a service behind a target group with the
/// default 300 s delay gets a notice naming the target group, the delay,
/// its cost for this deploy and the fix; after tuning, no notice.
#[tokio::test(flavor = "multi_thread")]
async fn the_default_delay_draws_a_notice_with_its_cost_and_fix_and_a_tuned_service_none() {
    let e = env().await;
    let arn = service(&e, "web", &DEFAULTS).await;
    service(&e, "tuned", &TUNED).await;
    let (captured, actions) = Actions::capture();
    let report = e.examine(&plan("web"), Some(400 * MB), &[], &actions).await;
    let lines = captured.lines();
    let found = notices(&lines);
    let delay = found
        .iter()
        .find(|l| l.contains("DEP001"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        delay.starts_with(
            "::notice title=DEP001::DEP001 web: deregistration delay of target group web is 300 s"
        ),
        "{delay}"
    );
    // One batch drains for 300 s where 5 s would do.
    assert!(
        delay.contains("which costs this deploy about 4m 55s of its rollout"),
        "{delay}"
    );
    assert!(
        delay.contains(&format!(
            "--target-group-arn {arn} --attributes Key=deregistration_delay.timeout_seconds,Value=5"
        )),
        "{delay}"
    );
    let ids: Vec<&str> = report
        .settings
        .iter()
        .filter(|s| s.flagged)
        .filter_map(|s| s.check.as_deref())
        .collect();
    assert_eq!(ids, ["DEP001", "DEP004", "DEP003", "DEP002"], "{report:#?}");
    assert_eq!(found.len(), 4, "{found:#?}");
    let estimate = report.estimate.unwrap();
    assert_eq!(estimate.batches, 1);
    // Pull 3 s + 400 MB at 7 MB/s, start 1 s, one 30 s check, drain 300 s, stop 30 s.
    assert!(
        (estimate.seconds - (3.0 + 400.0 / 7.0 + 1.0 + 30.0 + 300.0 + 30.0)).abs() < 1e-6,
        "{estimate:?}"
    );

    let (captured, actions) = Actions::capture();
    let report = e
        .examine(&plan("tuned"), Some(100 * MB), &[], &actions)
        .await;
    assert!(
        notices(&captured.lines()).is_empty(),
        "{:#?}",
        captured.lines()
    );
    assert!(report.settings.iter().all(|s| !s.flagged), "{report:#?}");
    assert!(
        (report.estimate.unwrap().seconds - (3.0 + 100.0 / 7.0 + 1.0 + 5.0 + 5.0 + 2.0)).abs()
            < 1e-6
    );

    // Silenced by id: listed, no notice.
    let (captured, actions) = Actions::capture();
    e.examine(&plan("web"), Some(400 * MB), &["DEP001"], &actions)
        .await;
    assert!(
        notices(&captured.lines())
            .iter()
            .all(|l| !l.contains("DEP001")),
        "{:#?}",
        captured.lines()
    );
}

/// A role without `elasticloadbalancing:Describe*` still deploys: the doctor
/// says which action AWS refused, as a notice, and makes no estimate.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_target_group_read_is_a_notice_naming_the_action_and_the_deploy_goes_on() {
    let e = env().await;
    service(&e, "web", &TUNED).await;
    control(
        &e.moto,
        "faults/config",
        json!({"rules": [{"action": "DescribeTargetGroups", "kind": "5xx", "status": 403, "code": "AccessDenied", "times": 5,
            "message": "User: arn:aws:sts::123456789012:assumed-role/deploy/gha is not authorized to perform: elasticloadbalancing:DescribeTargetGroups because no identity-based policy allows the elasticloadbalancing:DescribeTargetGroups action"}]}),
    );
    let image_bytes: Option<u64> = None;
    let (captured, actions) = Actions::capture();
    let image = fastdeploy::deploy::Image {
        bytes: image_bytes,
        ..image_of(IMAGE)
    };
    let out = e.deployer(&actions, &[]).ecs(&plan("web"), &image).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let lines = captured.lines();
    let notice = notices(&lines)
        .into_iter()
        .find(|l| l.contains("doctor"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        notice.contains("AWS refused `elasticloadbalancing:DescribeTargetGroups`"),
        "{notice}"
    );
    assert!(
        notice.contains("the deploy goes on without its estimate"),
        "{notice}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("::error") || l.starts_with("::warning")),
        "{lines:#?}"
    );
    let doctor = out.report.doctor.unwrap();
    assert!(
        doctor.estimate.is_none()
            && doctor.notes[0].contains("elasticloadbalancing:DescribeTargetGroups"),
        "{doctor:?}"
    );
    // The timeline does not need the target groups.
    assert!(out.report.timeline.is_some());
}

/// A rollout that never completes (its tasks never get healthy) times out
/// and rolls back: its events are not those of a completed rollout, so no
/// timeline is made of them, and the log says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_that_did_not_complete_gets_no_timeline() {
    let e = env().await;
    service(&e, "web", &TUNED).await;
    let image_bytes: Option<u64> = None;
    let (captured, actions) = Actions::capture();
    let hang =
        "repo/web-hang@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let p = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 300,
            ..plan("web").watch
        },
        ..plan("web")
    };
    let image = fastdeploy::deploy::Image {
        bytes: image_bytes,
        ..image_of(hang)
    };
    let out = e.deployer(&actions, &[]).ecs(&p, &image).await;
    assert_ne!(out.result, RunResult::Success, "{:?}", out.failure);
    assert!(out.report.timeline.is_none(), "{:?}", out.report.timeline);
    assert!(out.report.doctor.is_some(), "the doctor's estimate is kept");
    let lines = captured.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("no timeline: the rollout did not complete")),
        "{lines:#?}"
    );
}

/// A real sandbox rollout on AWS's defaults: the sandbox paces the tasks by
/// the target group's and the task definition's settings, the timeline's
/// phases add up to the deploy time reported, and each rollout phase meets
/// the doctor's estimate.
#[tokio::test(flavor = "multi_thread")]
async fn the_timeline_of_a_sandbox_rollout_adds_up_to_the_deploy_time_and_meets_the_estimate() {
    let e = env().await;
    service(&e, "web", &DEFAULTS).await;
    let image_bytes: Option<u64> = Some(400 * MB);
    let (captured, actions) = Actions::capture();
    let image = fastdeploy::deploy::Image {
        bytes: image_bytes,
        ..image_of(IMAGE)
    };
    let out = e.deployer(&actions, &[]).ecs(&plan("web"), &image).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let t = out
        .report
        .timeline
        .clone()
        .unwrap_or_else(|| panic!("{:#?}", captured.lines()));
    let sum: f64 = t.phases.iter().map(|p| p.seconds).sum();
    assert!(
        (sum - out.report.seconds.unwrap()).abs() < 1e-6,
        "phases {sum} s, deploy {:?} s: {t:#?}",
        out.report.seconds
    );
    assert_eq!(t.deploy_seconds, out.report.seconds.unwrap());
    let phase = |p: Phase| t.phases.iter().find(|x| x.phase == p).unwrap().clone();
    // Each phase as the sandbox lived it, in real seconds, against the
    // estimate: within 2 real seconds (timestamps are the sandbox's own).
    for p in [Phase::Pull, Phase::StartToHealthy, Phase::Draining] {
        let x = phase(p);
        let (measured, estimated) = (x.seconds / SCALE, x.estimate.unwrap() / SCALE);
        assert!(
            (measured - estimated).abs() < 2.0,
            "{p:?}: measured {measured:.1} s, estimated {estimated:.1} s; {t:#?}"
        );
    }
    assert!(
        (phase(Phase::Draining).seconds / SCALE - 330.0).abs() < 2.0,
        "300 s delay and 30 s stop: {t:#?}"
    );
    let rollout: f64 = t
        .phases
        .iter()
        .filter(|p| p.phase != Phase::Register)
        .map(|p| p.seconds)
        .sum();
    assert!(
        rollout >= t.estimated_rollout.unwrap() - 2.0 * SCALE,
        "{t:#?}"
    );
    // The tasks say so too: the old ones drained 300 s, then took their 30 s stop timeout and were killed.
    let stopped = e
        .ecs
        .list_tasks()
        .cluster("c")
        .service_name("web")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .unwrap();
    let described = e
        .ecs
        .describe_tasks()
        .cluster("c")
        .set_tasks(Some(stopped.task_arns().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(described.tasks().len(), 2);
    for task in described.tasks() {
        let (stopping, stopped) = (
            task.stopping_at().unwrap().as_secs_f64(),
            task.stopped_at().unwrap().as_secs_f64(),
        );
        assert!(
            ((stopped - stopping) / SCALE - 30.0).abs() < 0.5,
            "{task:?}"
        );
        assert_eq!(task.containers()[0].exit_code(), Some(137));
    }
    let events = out.report.events.join("\n");
    assert!(
        events.contains("has begun draining connections on 2 tasks")
            && events.contains("registered 2 targets"),
        "{events}"
    );
    let line = captured
        .lines()
        .into_iter()
        .find(|l| l.contains("task pull"))
        .unwrap_or_default();
    assert!(
        line.contains("draining the old tasks") && line.contains("rollout estimated"),
        "{line}"
    );
}

/// The whole run as the runner starts it: the notice before the rollout,
/// the timeline of a real sandbox rollout in the job summary (its phases
/// adding up to the deploy time the summary reports) and in Slack; then the
/// same service tuned as AWS's guide says deploys again without a notice.
#[test]
fn a_run_notices_the_defaults_and_its_summary_shows_where_the_time_went() {
    let mut sb = crate::support::sandbox::FullSandbox::start();
    let arn = block_on(async {
        let config = sb.moto.sdk_config().await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let tg = elb
            .create_target_group()
            .name("shop")
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(
                tokio::task::spawn_blocking({
                    let endpoint = sb.moto.endpoint.clone();
                    move || vpc_at(&endpoint)
                })
                .await
                .unwrap(),
            )
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .unwrap();
        let arn = tg.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        let ecs = aws_sdk_ecs::Client::new(&config);
        ecs.update_service()
            .cluster(crate::support::sandbox::CLUSTER)
            .service(crate::support::sandbox::SERVICE)
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&arn)
                    .container_name("web")
                    .container_port(8080)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        arn
    });
    let out = sb.command().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let delay = stdout
        .lines()
        .find(|l| l.starts_with("::notice title=DEP001::"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(delay.contains("deregistration delay of target group shop is 300 s, which costs this deploy about 4m 55s"), "{delay}");
    assert!(delay.contains(&arn) && delay.contains("Value=5"), "{delay}");

    let summary = sb.summary();
    let section = &summary[summary
        .find("#### Where the deploy time of app went")
        .unwrap_or_else(|| panic!("{summary}"))..];
    // The deploy column of the run's table, and the timeline's total.
    let deploy_cell = summary
        .lines()
        .find(|l| l.starts_with("| app |"))
        .unwrap()
        .split('|')
        .nth(7)
        .unwrap()
        .trim()
        .to_string();
    let total = section
        .lines()
        .find(|l| l.starts_with("| **deploy** |"))
        .unwrap_or_else(|| panic!("{section}"));
    assert!(
        total.starts_with(&format!("| **deploy** | **{deploy_cell}** |")),
        "{total} vs {deploy_cell}"
    );
    let rows: Vec<&str> = section
        .lines()
        .take_while(|l| !l.starts_with("| **deploy**"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Phase"))
        .collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(
        names,
        [
            "build and push",
            "register",
            "task pull",
            "task start to healthy",
            "draining the old tasks",
            "waiting"
        ],
        "{section}"
    );
    // The phases (not the build) add up to the deploy time, to the summary's rounding.
    let seconds = |cell: &str| -> f64 {
        let cell = cell.trim().trim_matches('*');
        if let Some(ms) = cell.strip_suffix("ms") {
            ms.parse::<f64>().unwrap() / 1000.0
        } else if let Some((m, s)) = cell.split_once("m ") {
            m.parse::<f64>().unwrap() * 60.0 + s.trim_end_matches('s').parse::<f64>().unwrap()
        } else {
            cell.trim_end_matches('s').parse::<f64>().unwrap()
        }
    };
    let phases: f64 = rows[1..]
        .iter()
        .map(|r| seconds(r.split('|').nth(2).unwrap()))
        .sum();
    let deploy = seconds(&deploy_cell);
    assert!(
        (phases - deploy).abs() <= 0.05 * rows.len() as f64 + 1e-9,
        "phases {phases} s vs deploy {deploy} s\n{section}"
    );
    assert!(
        seconds(rows[4].split('|').nth(2).unwrap()) > 3.0,
        "a 300 s drain is 3 s in the sandbox: {section}"
    );
    assert!(
        section.contains(
            "| ⚠️ | DEP001 | deregistration delay of target group shop | 300 s | 4m 55s |"
        ),
        "{section}"
    );
    assert!(section.contains('█'), "bars: {section}");
    let slack = sb
        .slack
        .requests()
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        slack.contains("task pull") && slack.contains("draining the old tasks"),
        "{slack}"
    );

    // An unchanged re-run rolls nothing out: no notice of what the settings
    // would cost, no doctor's estimate in its summary.
    std::fs::remove_file(sb.summary_file()).unwrap();
    let out = sb.command().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("nothing to register or deploy"),
        "{stdout}"
    );
    assert!(!stdout.contains("::notice title=DEP"), "{stdout}");
    let summary = sb.summary();
    assert!(!summary.contains("deploy-time doctor"), "{summary}");

    // Tuned as the guide says: 5 s delay, 5 s checks, 2 s stop timeout.
    block_on(async {
        let config = sb.moto.sdk_config().await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        elb.modify_target_group_attributes()
            .target_group_arn(&arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value("5")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        elb.modify_target_group()
            .target_group_arn(&arn)
            .health_check_interval_seconds(5)
            .healthy_threshold_count(2)
            .send()
            .await
            .unwrap();
        let ecs = aws_sdk_ecs::Client::new(&config);
        let current = ecs
            .describe_services()
            .cluster(crate::support::sandbox::CLUSTER)
            .services(crate::support::sandbox::SERVICE)
            .send()
            .await
            .unwrap();
        let td = current.services()[0].task_definition().unwrap().to_string();
        let described = ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .unwrap();
        let mut c = described.task_definition().unwrap().container_definitions()[0].clone();
        c.stop_timeout = Some(2);
        let registered = ecs
            .register_task_definition()
            .family(crate::support::sandbox::FAMILY)
            .container_definitions(c)
            .send()
            .await
            .unwrap();
        let tuned = registered
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_string();
        ecs.update_service()
            .cluster(crate::support::sandbox::CLUSTER)
            .service(crate::support::sandbox::SERVICE)
            .task_definition(&tuned)
            .send()
            .await
            .unwrap();
        // Its rollout drains the old tasks (300 s then): wait for it.
        for _ in 0..200 {
            let s = ecs
                .describe_services()
                .cluster(crate::support::sandbox::CLUSTER)
                .services(crate::support::sandbox::SERVICE)
                .send()
                .await
                .unwrap();
            if s.services()[0].deployments().len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    recommit(&mut sb, "app/pages/tuned.html", "Tuned");
    std::fs::remove_file(sb.summary_file()).unwrap();
    let out = sb.command().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("::notice title=DEP"), "{stdout}");
    let summary = sb.summary();
    assert!(
        summary.contains("| draining the old tasks |") && !summary.contains("⚠️"),
        "{summary}"
    );
}

fn vpc_at(endpoint: &str) -> String {
    let xml = reqwest::blocking::Client::new()
        .post(endpoint)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
        .form(&[("Action", "DescribeVpcs"), ("Version", "2016-11-15")])
        .send()
        .and_then(|r| r.text())
        .unwrap();
    let at = xml.find("<vpcId>").unwrap() + "<vpcId>".len();
    xml[at..at + xml[at..].find('<').unwrap()].to_string()
}

/// Commits a new page (a new image) and points the push event at it.
fn recommit(sb: &mut crate::support::sandbox::FullSandbox, file: &str, message: &str) {
    std::fs::write(sb.workspace.join(file), format!("<p>{message}</p>\n")).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=Dana Scully",
                "-c",
                "user.email=dana@acme.example",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&sb.workspace)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["add", "."]);
    git(&["commit", "-qm", message]);
    sb.sha = git(&["rev-parse", "HEAD"]);
    let path = sb.dir.path().join("event.json");
    let mut e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    e["after"] = sb.sha.clone().into();
    e["head_commit"]["id"] = sb.sha.clone().into();
    e["head_commit"]["message"] = message.into();
    std::fs::write(path, e.to_string()).unwrap();
}
