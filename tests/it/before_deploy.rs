//! `before-deploy`: a one-off ECS task (database migrations) on the new
//! revision before the service update, against the sandbox's ECS (tasks that
//! live through their lifecycle, exit with the code their command asks for,
//! and write their awslogs lines to moto's CloudWatch Logs).

use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
    LogConfiguration, LogDriver, NetworkConfiguration, NetworkMode,
};
use fastdeploy::cancel::Cancel;
use fastdeploy::deploy::DeployOutcome;
use fastdeploy::deploy::ecs;
use fastdeploy::gha::Actions;
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{BeforeDeploy, EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};
use serde_json::{Value, json};

use crate::support::deploy::{Deployer, image_of};
use crate::support::sandbox::{Moto, REGION};

const SCALE: f64 = 0.01;
const IMAGE: &str =
    "repo/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    ecs: aws_sdk_ecs::Client,
    subnet: String,
    group: String,
}

impl Env {
    fn control(&self, path: &str, body: Value) -> Value {
        tokio::task::block_in_place(|| self.moto.control(path, body))
    }

    /// RunTask calls the sandbox saw.
    fn run_tasks(&self) -> Vec<Value> {
        let calls = self.control("ecs-tasks/calls", json!({}));
        calls["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["action"] == "RunTask")
            .collect()
    }

    async fn service_revision(&self) -> String {
        let out = self
            .ecs
            .describe_services()
            .cluster("c")
            .services("web")
            .send()
            .await
            .unwrap();
        out.services()[0]
            .task_definition()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    }
}

/// A Fargate service `web` (awsvpc in moto's default subnet and security
/// group, platform 1.4.0) on `web:1`, whose container `app` logs to
/// `/ecs/web` with the prefix `ecs`; ECS steps every 0.05 s.
async fn env() -> Env {
    let moto = tokio::task::block_in_place(Moto::start);
    let (subnet, group) = tokio::task::block_in_place(|| {
        moto.control("ecs/config", json!({"step_seconds": 0.05}));
        crate::support::sandbox::default_subnet_and_security_group(&moto)
    });
    let config = moto.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    logs.create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    ecs.create_cluster().cluster_name("c").send().await.unwrap();
    ecs.register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("old-image:1")
                .essential(true)
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", "/ecs/web")
                        .options("awslogs-stream-prefix", "ecs")
                        .options("awslogs-region", REGION)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster("c")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .platform_version("1.4.0")
        .network_configuration(network(&subnet, &group))
        .send()
        .await
        .unwrap();
    Env {
        moto,
        sdk: config,
        ecs,
        subnet,
        group,
    }
}

fn network(subnet: &str, group: &str) -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets(subnet)
                .security_groups(group)
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .unwrap(),
        )
        .build()
}

fn plan(command: &[&str]) -> EcsPlan {
    EcsPlan {
        cluster: "c".into(),
        service: "web".into(),
        containers: vec!["app".into()],
        task_definition_file: None,
        strategy: Strategy::Service,
        wait_until: WaitUntil::Completed,
        keep_revisions: None,
        before_deploy: Some(BeforeDeploy {
            command: command.iter().map(|s| s.to_string()).collect(),
            container: None,
            wait_seconds: 1800,
        }),
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

async fn deploy(
    e: &Env,
    plan: &EcsPlan,
    image: &str,
    run_key: &str,
    cancel: &Cancel,
    actions: &Actions,
) -> DeployOutcome {
    let mut d = Deployer::new(&e.sdk, None, SCALE)
        .with_cancel(cancel.clone())
        .with_actions(actions.clone());
    d.run_key = run_key.to_string();
    d.ecs(plan, &image_of(image)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_migration_runs_on_the_new_revision_with_the_services_networking_then_the_service_updates()
 {
    let e = env().await;
    let (log, actions) = Actions::capture();
    let out = deploy(
        &e,
        &plan(&["python", "manage.py", "migrate"]),
        IMAGE,
        "acme/shop/1001/1",
        &Cancel::never(),
        &actions,
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(
        e.service_revision().await,
        "web:2",
        "the service was updated after the task"
    );

    let runs = e.run_tasks();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let r = &runs[0]["request"];
    assert!(
        r["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/web:2"),
        "the new revision: {r}"
    );
    assert_eq!(
        r["overrides"]["containerOverrides"][0],
        json!({"name": "app", "command": ["python", "manage.py", "migrate"]})
    );
    assert_eq!(r["launchType"], "FARGATE");
    assert_eq!(r["platformVersion"], "1.4.0");
    assert_eq!(r["startedBy"], "fastdeploy");
    assert!(
        r["clientToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("fastdeploy-")),
        "{r}"
    );
    let vpc = &r["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(vpc["subnets"], json!([e.subnet]));
    assert_eq!(vpc["securityGroups"], json!([e.group]));
    assert_eq!(vpc["assignPublicIp"], "DISABLED");

    let task = out.report.before_deploy.expect("the task is reported");
    assert_eq!(task.outcome, "succeeded");
    assert_eq!(task.exit_code, Some(0));
    assert!(
        task.last_lines.iter().any(|l| l.contains("Applying")),
        "{:?}",
        task.last_lines
    );
    let printed = log.lines();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("before-deploy | ") && l.contains("Running migrations")),
        "its log is streamed: {printed:#?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.contains("before-deploy: running `python manage.py migrate`")),
        "the command is said where it starts: {printed:#?}"
    );
    assert!(
        !printed
            .iter()
            .any(|l| l.starts_with("::group::before-deploy")),
        "no group of its own: groups do not nest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_migration_stops_the_deploy_before_update_service() {
    let e = env().await;
    let p = plan(&["sh", "-c", "python manage.py migrate && exit 3"]);
    let out = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1002/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains("container app exited with code 3") && why.contains("was not updated"),
        "{why}"
    );
    assert!(
        why.starts_with("before-deploy failed: container app exited with code 3;"),
        "why first: {why}"
    );
    assert!(
        why.ends_with("the service was not updated; service web still runs web:1"),
        "{why}"
    );
    assert_eq!(e.service_revision().await, "web:1", "no UpdateService");
    assert_eq!(
        out.report
            .serving_revision
            .as_deref()
            .map(fastdeploy::outcome::revision_label)
            .as_deref(),
        Some("web:1")
    );
    let task = out.report.before_deploy.unwrap();
    assert_eq!((task.outcome.as_str(), task.exit_code), ("failed", Some(3)));
    assert!(
        task.last_lines
            .iter()
            .any(|l| l.contains("exited with status 3")),
        "the last lines are kept: {:?}",
        task.last_lines
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_for_the_same_revision_does_not_run_the_migration_again() {
    let e = env().await;
    // The first run's rollout hangs after the migration succeeded and is
    // rolled back: the revision stays, with its migration done.
    let hang =
        "repo/web-hang@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let p = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 40,
            ..plan(&[]).watch
        },
        ..plan(&["python", "manage.py", "migrate"])
    };
    let first = deploy(
        &e,
        &p,
        hang,
        "acme/shop/1003/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(first.result, RunResult::RolledBack, "{:?}", first.failure);
    assert_eq!(first.report.before_deploy.unwrap().outcome, "succeeded");
    assert_eq!(e.run_tasks().len(), 1);

    // A re-run (another attempt) of the same image once the service can take it.
    e.control("ecs/config", json!({"hang_markers": []}));
    let (log, actions) = Actions::capture();
    let again = deploy(&e, &p, hang, "acme/shop/1003/2", &Cancel::never(), &actions).await;
    assert_eq!(again.result, RunResult::Success, "{:?}", again.failure);
    assert_eq!(
        e.run_tasks().len(),
        1,
        "no second task for the same revision"
    );
    assert_eq!(again.report.before_deploy.unwrap().outcome, "already-done");
    assert!(
        log.lines()
            .iter()
            .any(|l| l.contains("already ran on web:2")),
        "{:#?}",
        log.lines()
    );
}

/// A re-run of a deploy that succeeded finds the service on its revision:
/// nothing is deployed, the task does not run again, and the report says it
/// already ran there.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_success_deploys_nothing_and_says_the_migration_already_ran() {
    let e = env().await;
    let p = plan(&["python", "manage.py", "migrate"]);
    let first = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1009/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(first.result, RunResult::Success, "{:?}", first.failure);
    let (log, actions) = Actions::capture();
    let again = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1009/2",
        &Cancel::never(),
        &actions,
    )
    .await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert_eq!(e.run_tasks().len(), 1, "no second task");
    let task = again
        .report
        .before_deploy
        .expect("the report says what became of the task");
    assert_eq!(
        (task.outcome.as_str(), task.command.as_str()),
        ("already-done", "python manage.py migrate")
    );
    assert_eq!(
        task.task,
        first.report.before_deploy.unwrap().task,
        "the task that ran it"
    );
    let line = fastdeploy::report::summary::task_text(&task);
    assert!(
        line.contains("already ran on this revision (task ") && line.ends_with("; not run again"),
        "the summary's line: {line}"
    );
    assert!(
        log.lines()
            .iter()
            .any(|l| l.contains("already ran on web:2")),
        "{:#?}",
        log.lines()
    );
}

/// A job killed mid-task (the runner's timeout, SIGKILL) neither stops its
/// task nor records it done; the next attempt follows that task instead of
/// running the migration a second time beside it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_a_killed_attempt_follows_the_task_still_running_instead_of_starting_another()
{
    let e = env().await;
    // The task runs for a second (20 steps of 0.05 s): long enough to outlive the first attempt.
    e.control("ecs-tasks/config", json!({"run_steps": 20}));
    let p = plan(&["python", "manage.py", "migrate"]);
    let (first_log, first_actions) = Actions::capture();
    let never = Cancel::never();
    tokio::select! {
        out = deploy(&e, &p, IMAGE, "acme/shop/1006/1", &never, &first_actions) => {
            panic!("the first attempt should have been killed mid-task: {:?}", out.result)
        }
        _ = async {
            while !first_log.lines().iter().any(|l| l.contains("before-deploy: started task")) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }
    assert_eq!(e.run_tasks().len(), 1);

    let (log, actions) = Actions::capture();
    let again = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1006/2",
        &Cancel::never(),
        &actions,
    )
    .await;
    let lines = log.lines().join("\n");
    assert_eq!(
        again.result,
        RunResult::Success,
        "{:?}\n{lines}",
        again.failure
    );
    assert_eq!(
        e.run_tasks().len(),
        1,
        "no second task beside the first: {lines}"
    );
    assert!(lines.contains("started by an earlier attempt, still runs `python manage.py migrate` on web:2; following it"), "{lines}");
    let task = again.report.before_deploy.unwrap();
    assert_eq!(
        (task.outcome.as_str(), task.exit_code),
        ("succeeded", Some(0))
    );
    assert_eq!(
        e.service_revision().await,
        "web:2",
        "updated after the task it followed succeeded"
    );
}

/// Looks at the task that fail with a throttle outlasting the SDK's own
/// retries (3 attempts a look) are said and tried again; only a run of them
/// ends the wait, with the task left running and the service untouched.
#[tokio::test(flavor = "multi_thread")]
async fn failed_looks_at_the_task_are_ridden_out_and_only_a_run_of_them_fails_the_deploy() {
    let throttled = |looks: u32| json!({"rules": [{"action": "DescribeTasks", "kind": "throttle", "times": looks * 3}]});
    let e = env().await;
    e.control("faults/config", throttled(3));
    let (log, actions) = Actions::capture();
    let out = deploy(
        &e,
        &plan(&["python", "manage.py", "migrate"]),
        IMAGE,
        "acme/shop/1007/1",
        &Cancel::never(),
        &actions,
    )
    .await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert_eq!(lines.matches("could not look (").count(), 3, "{lines}");
    assert!(
        lines.contains("ThrottlingException: Rate exceeded"),
        "{lines}"
    );
    assert_eq!(out.report.before_deploy.unwrap().exit_code, Some(0));

    let e = env().await;
    e.control("faults/config", throttled(100));
    let out = deploy(
        &e,
        &plan(&["python", "manage.py", "migrate"]),
        IMAGE,
        "acme/shop/1008/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Failure);
    let why = out.failure.unwrap();
    assert!(
        why.contains(&format!(
            "{} looks at task",
            fastdeploy::wait::MAX_FAILED_LOOKS
        )) && why.contains("ThrottlingException")
            && why.contains("it may still run"),
        "{why}"
    );
    assert!(
        why.ends_with("the service was not updated; service web still runs web:1"),
        "{why}"
    );
    assert_eq!(
        out.report.before_deploy.unwrap().outcome,
        "failed",
        "the task's report is kept for the summary"
    );
    assert_eq!(e.service_revision().await, "web:1");
    let stops = e.control("ecs-tasks/calls", json!({}))["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "StopTask")
        .count();
    assert_eq!(
        stops, 0,
        "a task fastdeploy cannot see is not stopped halfway"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_run_task_answer_starts_one_task_not_two() {
    let e = env().await;
    e.control(
        "faults/config",
        json!({"rules": [{"action": "RunTask", "mode": "lost-answer", "times": 1}]}),
    );
    let out = deploy(
        &e,
        &plan(&["python", "manage.py", "migrate"]),
        IMAGE,
        "acme/shop/1004/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let started: std::collections::BTreeSet<String> = e
        .run_tasks()
        .iter()
        .flat_map(|c| c["taskArns"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert_eq!(
        started.len(),
        1,
        "the retried RunTask (same client token) returned the task it had started: {:#?}",
        e.run_tasks()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_during_the_task_stops_it_and_leaves_the_service_alone() {
    let e = env().await;
    let (handle, cancel) = Cancel::new();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        handle.cancel();
    });
    let out = deploy(
        &e,
        &plan(&["sh", "-c", "sleep-forever"]),
        IMAGE,
        "acme/shop/1005/1",
        &cancel,
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Failure);
    let task = out.report.before_deploy.unwrap();
    assert_eq!(task.outcome, "stopped");
    assert!(
        task.failure
            .unwrap()
            .contains("the workflow was cancelled; fastdeploy stopped task")
    );
    let calls = e.control("ecs-tasks/calls", json!({}));
    let stops: Vec<&Value> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "StopTask")
        .collect();
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert_eq!(e.service_revision().await, "web:1");
}

/// A task that runs (RUNNING) past `before-deploy-minutes` is stopped with
/// the reason that it ran too long, not that it never started, and the
/// service is not updated.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_runs_past_before_deploy_minutes_is_stopped_as_running_too_long() {
    let e = env().await;
    let mut p = plan(&["sh", "-c", "sleep-forever"]);
    p.before_deploy.as_mut().unwrap().wait_seconds = 60;
    let (log, actions) = Actions::capture();
    let out = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1012/1",
        &Cancel::never(),
        &actions,
    )
    .await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Failure, "{lines}");
    let task = out.report.before_deploy.expect("the task is reported");
    let id = task.task.clone().expect("the task that was started");
    assert_eq!(task.outcome, "stopped");
    assert!(
        lines.contains(&format!("before-deploy: task {id} RUNNING")),
        "{lines}"
    );
    let why = out.failure.unwrap();
    assert!(
        why.starts_with(&format!(
            "before-deploy failed: it ran longer than before-deploy-minutes; fastdeploy stopped task {id}"
        )) && why.ends_with("the service was not updated; service web still runs web:1"),
        "{why}"
    );
    let stops = stop_tasks(&e);
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert_eq!(
        stops[0]["reason"],
        "fastdeploy: it ran longer than before-deploy-minutes"
    );
    assert_eq!(e.service_revision().await, "web:1");
}

/// StopTask calls the sandbox saw.
fn stop_tasks(e: &Env) -> Vec<Value> {
    e.control("ecs-tasks/calls", json!({}))["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["action"] == "StopTask")
        .collect()
}

/// RunTask can start no task at all: Fargate without capacity answers 200
/// with `failures` and an empty `tasks`. The task never runs, so there is
/// nothing to follow or stop: the before-deploy fails with ECS's reason,
/// the service is not updated, and the report keeps the failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_ecs_cannot_start_fails_the_deploy_with_ecs_reason_before_update_service() {
    let e = env().await;
    e.control(
        "ecs-tasks/config",
        json!({"fargate_capacity": "unavailable"}),
    );
    let out = deploy(
        &e,
        &plan(&["python", "manage.py", "migrate"]),
        IMAGE,
        "acme/shop/1010/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Failure, "{:?}", out.failure);
    let why = out.failure.unwrap();
    assert!(
        why.starts_with(
            "before-deploy failed: ECS could not start the task: Capacity is unavailable at this time. \
             Please try again later or in a different availability zone"
        ),
        "{why}"
    );
    assert!(
        why.ends_with("the service was not updated; service web still runs web:1"),
        "{why}"
    );
    let runs = e.run_tasks();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["taskArns"], json!([]), "no task started");
    let task = out.report.before_deploy.expect("the task is reported");
    assert_eq!(
        (task.outcome.as_str(), task.task.as_deref(), task.exit_code),
        ("failed", None, None)
    );
    assert!(stop_tasks(&e).is_empty(), "no task to stop");
    assert_eq!(e.service_revision().await, "web:1");
}

/// A task that never leaves PROVISIONING (its ENI cannot be attached) or
/// PENDING (no resources) runs into `before-deploy-minutes`: the task's own
/// deadline ends the wait, fastdeploy stops it with StopTask (with the
/// reason), waits for it to be STOPPED, and the service is not updated.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_stuck_before_running_is_stopped_at_before_deploy_minutes_and_the_service_left_alone()
 {
    let e = env().await;
    for (n, (held, status)) in [
        ("provisioning_steps", "PROVISIONING"),
        ("pending_steps", "PENDING"),
    ]
    .into_iter()
    .enumerate()
    {
        e.control("ecs-tasks/config", json!({"reset": true, held: null}));
        e.control("ecs-tasks/calls", json!({"clear": true}));
        let mut p = plan(&["python", "manage.py", "migrate"]);
        p.before_deploy.as_mut().unwrap().wait_seconds = 60;
        let (log, actions) = Actions::capture();
        let out = deploy(
            &e,
            &p,
            IMAGE,
            &format!("acme/shop/1011/{}", n + 1),
            &Cancel::never(),
            &actions,
        )
        .await;
        let lines = log.lines().join("\n");
        assert_eq!(out.result, RunResult::Failure, "{:?}\n{lines}", out.failure);
        let task = out.report.before_deploy.expect("the task is reported");
        let id = task.task.clone().expect("the task that was started");
        assert_eq!((task.outcome.as_str(), task.exit_code), ("stopped", None));
        let why = out.failure.unwrap();
        assert!(
            why.starts_with(&format!(
                "before-deploy failed: it did not start within before-deploy-minutes (last status {status}); fastdeploy stopped task {id}"
            )),
            "{why}"
        );
        assert!(
            why.ends_with("the service was not updated; service web still runs web:1"),
            "{why}"
        );
        assert!(
            lines.contains(&format!("before-deploy: task {id} {status}")),
            "{lines}"
        );
        assert!(
            !lines.contains(&format!("before-deploy: task {id} RUNNING")),
            "it never ran: {lines}"
        );
        assert!(
            lines
                .contains(&format!("before-deploy: it did not start within before-deploy-minutes (last status {status}): StopTask sent"))
                && lines.contains("before-deploy: task STOPPED"),
            "{lines}"
        );
        let stops = stop_tasks(&e);
        assert_eq!(stops.len(), 1, "{stops:#?}");
        assert!(
            stops[0]["task"].as_str().unwrap().ends_with(&id),
            "{stops:#?}"
        );
        assert_eq!(
            stops[0]["reason"],
            format!(
                "fastdeploy: it did not start within before-deploy-minutes (last status {status})"
            )
        );
        let tasks = e.control("ecs-tasks/tasks", json!({}));
        let state = tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["taskArn"].as_str().unwrap().ends_with(&id))
            .cloned()
            .unwrap();
        assert_eq!(
            (state["lastStatus"].as_str(), state["stopCode"].as_str()),
            (Some("STOPPED"), Some("UserInitiated")),
            "{state}"
        );
        assert_eq!(e.service_revision().await, "web:1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_before_deploy_container_not_in_the_task_definition_is_bad_input() {
    let e = env().await;
    let mut p = plan(&["migrate"]);
    p.before_deploy.as_mut().unwrap().container = Some("worker".into());
    let err = ecs::check(&e.ecs, &p).await.unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    assert!(
        err.to_string()
            .contains("`before-deploy-container` is `worker`, which is not a container of task definition web; its containers are: app"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The binary, as the runner starts it.

#[test]
fn a_failing_migration_fails_the_run_with_its_exit_code_named_everywhere_and_the_service_untouched()
{
    use crate::support::run::{
        ecs_view, github_deployments, github_states, run, slack_messages, task_definition_arn,
    };
    let sb = crate::support::sandbox::FullSandbox::start();
    // The sandbox's service runs on EC2 without container instances.
    sb.moto
        .control("ecs-tasks/config", json!({"ec2_placement": "virtual"}));
    let mut cmd = sb.command();
    cmd.env(
        "INPUT_BEFORE_DEPLOY",
        "sh -c 'python manage.py migrate && exit 3'",
    );
    let ran = run(cmd);
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(sb.output("result").as_deref(), Some("failure"));
    assert!(
        ran.stdout.contains("container web exited with code 3"),
        "{}",
        ran.log()
    );
    assert_eq!(
        ecs_view(&sb).task_definition,
        task_definition_arn(1),
        "the service still runs its previous revision"
    );
    let summary = sb.summary();
    assert!(
        summary.contains("before-deploy") && summary.contains("exited with code 3"),
        "{summary}"
    );
    assert!(summary.contains("the service was not updated"), "{summary}");
    let slack = slack_messages(&sb).last().unwrap()["body"].to_string();
    assert!(slack.contains("before-deploy failed (exit 3)"), "{slack}");
    let deployment = github_deployments(&sb)
        .into_iter()
        .next()
        .expect("a GitHub deployment");
    assert_eq!(
        github_states(&sb, &deployment).last().map(String::as_str),
        Some("failure")
    );
    // The status's description (140 characters at most) names the exit code.
    let id = deployment["id"].as_u64().unwrap();
    let statuses = crate::support::sandbox::http_get_json(&format!(
        "{}/repos/acme/shop/deployments/{id}/statuses",
        sb.github.url
    ));
    let description = statuses[0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        description.contains("before-deploy failed: container web exited with code 3"),
        "{description}"
    );
    assert!(description.chars().count() <= 140, "{description}");
}

/// A rollback to the revision before one whose migration ran warns that
/// the schema may be ahead of the code it puts back, and still rolls back:
/// what is safe is the team's call, not the tool's.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_past_a_migration_warns_that_the_schema_may_be_ahead() {
    let e = env().await;
    let p = plan(&["python", "manage.py", "migrate"]);
    let out = deploy(
        &e,
        &p,
        IMAGE,
        "acme/shop/1020/1",
        &Cancel::never(),
        &Actions::default(),
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(e.service_revision().await, "web:2");

    let (log, actions) = Actions::capture();
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let mut service = ecs::Service::new(&p);
    let back = d.roll_back(&mut service, None).await.unwrap();
    let lines = log.lines().join("\n");
    assert_eq!(back.result, RunResult::Success, "{lines}");
    assert_eq!(e.service_revision().await, "web:1", "{lines}");
    assert!(
        lines.contains(
            "before-deploy `python manage.py migrate` ran on web:2 (",
        ) && lines.contains("the revision being rolled back; if it changed the database schema, web:1's code may not match it"),
        "{lines}"
    );
    assert_eq!(e.run_tasks().len(), 1, "a rollback runs no one-off task");
}

/// Component `shop`: service `web` runs `before-deploy`, service `worker`
/// (same family) waits for it; the deploy's own deadline is `wait_seconds`.
async fn with_worker(
    e: &Env,
    command: &[&str],
    wait_seconds: u64,
) -> fastdeploy::plan::ComponentPlan {
    e.ecs
        .create_service()
        .cluster("c")
        .service_name("worker")
        .task_definition("web:1")
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .platform_version("1.4.0")
        .network_configuration(network(&e.subnet, &e.group))
        .send()
        .await
        .unwrap();
    let mut web = plan(command);
    web.watch.wait_seconds = wait_seconds;
    let mut worker = plan(command);
    worker.service = "worker".into();
    worker.before_deploy = None;
    worker.watch.wait_seconds = wait_seconds;
    use fastdeploy::plan::TargetPlan::Ecs;
    crate::support::deploy::component("shop", "repo/web", vec![Ecs(web), Ecs(worker)])
}

async fn deploy_component(
    e: &Env,
    c: &fastdeploy::plan::ComponentPlan,
    actions: &Actions,
) -> DeployOutcome {
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions.clone());
    let change = fastdeploy::deploy::Change::Image(image_of(IMAGE));
    fastdeploy::deploy::deploy(&d.cx(), c, &change)
        .await
        .unwrap()
}

impl Env {
    async fn revision_of(&self, service: &str) -> String {
        let out = self
            .ecs
            .describe_services()
            .cluster("c")
            .services(service)
            .send()
            .await
            .unwrap();
        let arn = out.services()[0].task_definition().unwrap();
        arn.rsplit('/').next().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_several_targets_before_deploy_runs_once_and_the_others_move_after_it() {
    let e = env().await;
    let c = with_worker(&e, &["python", "manage.py", "migrate"], 1800).await;
    let (log, actions) = Actions::capture();
    let out = deploy_component(&e, &c, &actions).await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}\n{lines}", out.failure);
    assert_eq!(e.run_tasks().len(), 1, "one task for the component");
    assert_eq!(e.revision_of("web").await, "web:2");
    assert_eq!(e.revision_of("worker").await, "web:2");
    let ran = lines
        .find("before-deploy: `python manage.py migrate` exited 0")
        .expect(&lines);
    let worker = lines
        .find("[shop/worker] updating service worker")
        .expect(&lines);
    assert!(ran < worker, "the worker moves after the task: {lines}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_several_targets_a_failed_before_deploy_moves_none_of_them() {
    let e = env().await;
    let c = with_worker(
        &e,
        &["sh", "-c", "python manage.py migrate && exit 3"],
        1800,
    )
    .await;
    let (log, actions) = Actions::capture();
    let out = deploy_component(&e, &c, &actions).await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Failure, "{lines}");
    assert_eq!(e.revision_of("web").await, "web:1");
    assert_eq!(e.revision_of("worker").await, "web:1");
    let failure = out.failure.unwrap();
    assert!(
        failure.contains("web: before-deploy failed")
            && failure.contains("worker: before-deploy did not succeed")
            && failure.contains("service worker was not updated; nothing was changed"),
        "{failure}"
    );
}

/// The others wait for `before-deploy` on its own budget, not the deploy's
/// `wait-minutes` (as the service that runs it does): a task that runs past
/// its budget is stopped, and they hear it failed and stay.
#[tokio::test(flavor = "multi_thread")]
async fn with_several_targets_the_others_wait_on_before_deploys_own_budget() {
    let e = env().await;
    let mut c = with_worker(&e, &["sh", "-c", "sleep-forever"], 60).await;
    if let Some(fastdeploy::plan::TargetPlan::Ecs(web)) = c.deploy.as_mut() {
        web.before_deploy.as_mut().unwrap().wait_seconds = 120;
    }
    let (log, actions) = Actions::capture();
    let out = deploy_component(&e, &c, &actions).await;
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Failure, "{lines}");
    assert_eq!(e.revision_of("worker").await, "web:1");
    let worker = &out.also[0];
    assert_eq!(worker.result, Some(RunResult::Failure));
    let failure = out.failure.unwrap();
    assert!(
        failure.contains("worker: before-deploy did not succeed (before-deploy failed: it ran longer than before-deploy-minutes")
            && failure.contains("service worker was not updated"),
        "{failure}"
    );
}
