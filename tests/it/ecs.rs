//! ECS deploys against moto (with the sandbox extension that rolls
//! deployments out, fails and rolls them back), and, for sequences moto
//! cannot produce, against aws-smithy-mocks.

use std::time::Duration;

use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentController,
    DeploymentControllerType,
};
use fastdeploy::cancel::Cancel;
use fastdeploy::deploy::DeployOutcome;
use fastdeploy::deploy::ecs;
use fastdeploy::error::{Exit, exit_for};
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{EcsPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};
use serde_json::json;

use crate::support::deploy::{Deployer, image_of};
use crate::support::sandbox::Moto;

/// Real-world delays times this: a 5 s poll becomes 50 ms.
const SCALE: f64 = 0.01;
const GOOD: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const CRASH: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-crashloop@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const OTHER: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:4444444444444444444444444444444444444444444444444444444444444444";
const HANG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web-hang@sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn control(moto: &Moto, path: &str, body: serde_json::Value) -> serde_json::Value {
    tokio::task::block_in_place(|| moto.control(path, body))
}

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    ecs: aws_sdk_ecs::Client,
}

impl Env {
    fn deployer(&self) -> Deployer {
        Deployer::new(&self.sdk, None, SCALE)
    }
}

/// A cluster `c` with service `web` (2 tasks of `web:1`), circuit breaker as given.
async fn env(breaker: bool) -> Env {
    let moto = Moto::start();
    control(&moto, "ecs/config", json!({"step_seconds": 0.05}));
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    ecs.create_cluster().cluster_name("c").send().await.unwrap();
    register(&ecs, "web", "old-image:1").await;
    ecs.create_service()
        .cluster("c")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(2)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(breaker)
                        .rollback(breaker)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sdk = moto.sdk_config().await;
    Env { moto, sdk, ecs }
}

async fn register(ecs: &aws_sdk_ecs::Client, family: &str, image: &str) -> String {
    let c = ContainerDefinition::builder()
        .name("app")
        .image(image)
        .memory(128)
        .build();
    let out = ecs
        .register_task_definition()
        .family(family)
        .container_definitions(c)
        .send()
        .await
        .unwrap();
    out.task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string()
}

fn plan() -> EcsPlan {
    EcsPlan {
        cluster: "c".into(),
        service: "web".into(),
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

async fn deploy(e: &Env, plan: &EcsPlan, image: &str) -> DeployOutcome {
    e.deployer().ecs(plan, &image_of(image)).await
}

async fn revisions(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    ecs.list_task_definitions()
        .family_prefix("web")
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec()
}

async fn service_td(ecs: &aws_sdk_ecs::Client) -> String {
    let out = ecs
        .describe_services()
        .cluster("c")
        .services("web")
        .send()
        .await
        .unwrap();
    out.services()[0].task_definition().unwrap().to_string()
}

fn rev(arn: &Option<String>) -> &str {
    arn.as_deref()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("-")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_image_deploys_and_succeeds_when_the_rollout_completes() {
    let e = env(true).await;
    let out = deploy(&e, &plan(), GOOD).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(rev(&out.report.revision), "web:2");
    assert_eq!(rev(&out.report.previous_revision), "web:1");
    assert_eq!(rev(&out.report.serving_revision), "web:2");
    assert!(
        out.report
            .deployment_id
            .as_deref()
            .is_some_and(|d| d.starts_with("ecs-svc/")),
        "{:?}",
        out.report.deployment_id
    );
    let events = out.report.events.join("\n");
    assert!(
        events.contains("has started 2 tasks") && events.contains("deployment completed"),
        "{events}"
    );
    // Rendered by digest, everything else kept.
    let td = e
        .ecs
        .describe_task_definition()
        .task_definition("web:2")
        .send()
        .await
        .unwrap();
    let c = &td.task_definition().unwrap().container_definitions()[0];
    assert_eq!((c.image(), c.memory()), (Some(GOOD), Some(128)));
    assert!(
        out.report.seconds.unwrap() < 10.0,
        "the verdict came {:?} s after the start",
        out.report.seconds
    );
    assert!(out.failure.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_whose_tasks_fail_ends_rolled_back_on_the_previous_revision() {
    let e = env(true).await;
    let out = deploy(&e, &plan(), CRASH).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert!(out.result.is_failure(), "a rollback exits 1");
    assert_eq!(rev(&out.report.serving_revision), "web:1");
    assert_eq!(service_td(&e.ecs).await.rsplit('/').next(), Some("web:1"));
    let failure = out.failure.unwrap();
    assert!(
        failure.contains("rolled back")
            && failure.contains("circuit breaker")
            && failure.contains("web:1"),
        "{failure}"
    );
    let events = out.report.events.join("\n");
    assert!(
        events.contains("deployment failed: tasks failed to start")
            && events.contains("rolling back to deployment"),
        "{events}"
    );
    let stopped = out.report.evidence.join("\n");
    assert!(
        stopped.contains("Essential container in task exited")
            && stopped.contains("app exit code 1"),
        "{stopped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_with_rollback_stops_our_deployment_and_rolls_back() {
    let e = env(false).await;
    let plan = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 30,
            ..plan().watch
        },
        ..plan()
    };
    let out = deploy(&e, &plan, HANG).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert!(
        out.failure
            .as_deref()
            .unwrap()
            .contains("no verdict within 30 s (watching deployment"),
        "{:?}",
        out.failure
    );
    assert_eq!(rev(&out.report.serving_revision), "web:1");
    assert_eq!(service_td(&e.ecs).await.rsplit('/').next(), Some("web:1"));
    let listed = e
        .ecs
        .list_service_deployments()
        .cluster("c")
        .service("web")
        .send()
        .await
        .unwrap();
    let ours = listed
        .service_deployments()
        .iter()
        .find(|d| {
            d.target_service_revision_arn()
                .is_some_and(|a| a.ends_with("/2"))
        })
        .unwrap();
    assert_eq!(
        ours.status().map(|s| s.as_str()),
        Some("ROLLBACK_SUCCESSFUL")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_without_rollback_fails_and_says_what_serves() {
    let e = env(false).await;
    let plan = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 20,
            rollback: false,
            ..plan().watch
        },
        ..plan()
    };
    let out = deploy(&e, &plan, HANG).await;
    assert_eq!(out.result, RunResult::Failure);
    assert!(
        out.failure
            .as_deref()
            .unwrap()
            .contains("`rollback` is off"),
        "{:?}",
        out.failure
    );
    // What serves is what runs: the previous revision's tasks, not the hung
    // PRIMARY deployment's revision.
    assert_eq!(
        rev(&out.report.serving_revision),
        "web:1",
        "{:?}",
        out.report
    );
    let detail = out.report.serving_detail.as_deref().unwrap();
    assert!(
        detail.contains("web:1 (2 running)") && detail.contains("web:2 started, 0 of 2 running"),
        "{detail}"
    );
    assert!(
        out.report
            .serving_text()
            .unwrap()
            .contains("web:1 (2 running)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_rolls_our_deployment_back() {
    let e = env(false).await;
    let (handle, cancel) = Cancel::new();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.cancel();
    });
    let out = e
        .deployer()
        .with_cancel(cancel)
        .ecs(&plan(), &image_of(HANG))
        .await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert!(
        out.failure.as_deref().unwrap().contains("cancelled"),
        "{:?}",
        out.failure
    );
    assert_eq!(rev(&out.report.serving_revision), "web:1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_with_the_same_digest_registers_nothing() {
    let e = env(true).await;
    assert_eq!(deploy(&e, &plan(), GOOD).await.result, RunResult::Success);
    let before = revisions(&e.ecs).await;
    let again = deploy(&e, &plan(), GOOD).await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert!(again.report.unchanged);
    assert_eq!(revisions(&e.ecs).await, before);
    let listed = e
        .ecs
        .list_service_deployments()
        .cluster("c")
        .service("web")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.service_deployments().len(),
        1,
        "no second deployment was started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_a_rollback_reuses_the_identical_revision() {
    let e = env(true).await;
    assert_eq!(
        deploy(&e, &plan(), CRASH).await.result,
        RunResult::RolledBack
    );
    let before = revisions(&e.ecs).await;
    let again = deploy(&e, &plan(), CRASH).await;
    assert_eq!(
        revisions(&e.ecs).await,
        before,
        "web:2 already holds this image"
    );
    assert_eq!(rev(&again.report.revision), "web:2");
}

#[tokio::test(flavor = "multi_thread")]
async fn strategy_blue_green_starts_new_tasks_beside_the_old_with_the_circuit_breaker_on() {
    let e = env(false).await;
    let out = deploy(
        &e,
        &EcsPlan {
            strategy: Strategy::BlueGreen,
            ..plan()
        },
        GOOD,
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let svc = e
        .ecs
        .describe_services()
        .cluster("c")
        .services("web")
        .send()
        .await
        .unwrap();
    let dc = svc.services()[0].deployment_configuration().unwrap();
    assert_eq!(
        (dc.maximum_percent(), dc.minimum_healthy_percent()),
        (Some(200), Some(100))
    );
    let cb = dc.deployment_circuit_breaker().unwrap();
    assert!(cb.enable() && cb.rollback());
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_revisions_deregisters_older_revisions_of_the_family() {
    let e = env(true).await;
    for tag in ["a", "b"] {
        register(&e.ecs, "web", &format!("other:{tag}")).await;
    }
    // web:1 serves; web:2 and web:3 are unused; ours becomes web:4.
    let out = deploy(
        &e,
        &EcsPlan {
            keep_revisions: Some(2),
            ..plan()
        },
        GOOD,
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let active: Vec<String> = revisions(&e.ecs)
        .await
        .iter()
        .map(|a| a.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        active,
        ["web:1", "web:3", "web:4"],
        "newest two kept, and the previous (rollback target) too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_definition_file_is_rendered_instead_of_the_current_revision() {
    let e = env(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(
        &path,
        json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "placeholder", "memory": 256}], "tags": [{"key": "team", "value": "a"}]})
            .to_string(),
    )
    .unwrap();
    let out = deploy(
        &e,
        &EcsPlan {
            task_definition_file: Some(path),
            ..plan()
        },
        GOOD,
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let td = e
        .ecs
        .describe_task_definition()
        .task_definition("web:2")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert_eq!(
        td.task_definition().unwrap().container_definitions()[0].memory(),
        Some(256)
    );
    assert_eq!(td.tags()[0].key(), Some("team"));
}

/// Bad input fails preflight with exit 2, before anything is registered.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_anything_is_registered() {
    let e = env(true).await;
    e.ecs
        .create_service()
        .cluster("c")
        .service_name("legacy")
        .task_definition("web:1")
        .desired_count(1)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    e.ecs
        .create_service()
        .cluster("c")
        .service_name("going")
        .task_definition("web:1")
        .desired_count(1)
        .send()
        .await
        .unwrap();
    control(
        &e.moto,
        "ecs/service-status",
        json!({"cluster": "c", "service": "going", "status": "DRAINING"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"family\": \"web\",").unwrap();
    let unknown_field = dir.path().join("unknown.json");
    std::fs::write(
        &unknown_field,
        r#"{"family":"web","containerDefinitions":[{"name":"app","image":"x"}],"cpuu":"256"}"#,
    )
    .unwrap();

    let cases: Vec<(EcsPlan, &str)> = vec![
        (
            EcsPlan {
                cluster: "nope".into(),
                ..plan()
            },
            "cluster nope does not exist",
        ),
        (
            EcsPlan {
                service: "nope".into(),
                ..plan()
            },
            "service nope does not exist",
        ),
        (
            EcsPlan {
                service: "going".into(),
                ..plan()
            },
            "is DRAINING, not ACTIVE",
        ),
        (
            EcsPlan {
                service: "legacy".into(),
                ..plan()
            },
            "CODE_DEPLOY deployment controller",
        ),
        (
            EcsPlan {
                containers: vec!["api".into()],
                ..plan()
            },
            "its containers are: app",
        ),
        (
            EcsPlan {
                task_definition_file: Some(broken),
                ..plan()
            },
            "is not valid JSON",
        ),
        (
            EcsPlan {
                task_definition_file: Some(unknown_field),
                ..plan()
            },
            "unknown field(s) `cpuu`",
        ),
    ];
    let before = revisions(&e.ecs).await;
    for (p, expected) in cases {
        let err = ecs::check(&e.ecs, &p).await.expect_err(expected);
        let msg = fastdeploy::error::chain_message(&err);
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
        assert_eq!(exit_for(&err), Exit::BadInput, "{msg}");
        let out = deploy(&e, &p, GOOD).await;
        assert_eq!(out.result, RunResult::Failure);
    }
    assert_eq!(revisions(&e.ecs).await, before);
}

// ---------------------------------------------------------------------------
// Sequences moto cannot produce.

mod mocked {
    use super::*;
    use aws_sdk_ecs::operation::describe_service_deployments::DescribeServiceDeploymentsOutput;
    use aws_sdk_ecs::operation::describe_services::{
        DescribeServicesError, DescribeServicesOutput,
    };
    use aws_sdk_ecs::types::{
        Deployment, DeploymentRolloutState, Failure, Service, ServiceDeployment,
        ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;
    use fastdeploy::deploy::ecs::watch::{self, Ours, Rollout};
    use fastdeploy::outcome::DeployReport;
    use fastdeploy::wait::{Pace, Stop, Stopped, Waiter};

    const SD: &str = "arn:aws:ecs:us-east-1:1:service-deployment/c/web/abc";

    fn ours() -> Ours {
        Ours {
            cluster: "c".into(),
            service: "web".into(),
            task_definition: "arn:td/web:2".into(),
            previous: Some("arn:td/web:1".into()),
            service_deployment: Some(SD.into()),
            deployment_id: Some("ecs-svc/2".into()),
            started: None,
        }
    }

    fn services(td: &str, rollout: DeploymentRolloutState) -> DescribeServicesOutput {
        let d = Deployment::builder()
            .id("ecs-svc/2")
            .status("PRIMARY")
            .task_definition(td)
            .rollout_state(rollout)
            .build();
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_name("web")
                    .task_definition(td)
                    .deployments(d)
                    .build(),
            )
            .build()
    }

    fn sd(
        status: ServiceDeploymentStatus,
        stage: Option<ServiceDeploymentLifecycleStage>,
    ) -> DescribeServiceDeploymentsOutput {
        DescribeServiceDeploymentsOutput::builder()
            .service_deployments(
                ServiceDeployment::builder()
                    .service_deployment_arn(SD)
                    .status(status)
                    .set_lifecycle_stage(stage)
                    .build(),
            )
            .build()
    }

    /// Follows `ours()` with `client` for ECS, polling every 5 ms, up to
    /// `seconds` (real); `Err` is the stop that ended the watch.
    async fn run(
        client: &aws_sdk_ecs::Client,
        wait_until: WaitUntil,
        seconds: f64,
    ) -> (Result<Rollout, Stop>, DeployReport) {
        let mut d = crate::support::deploy::offline(0.001);
        d.clients.ecs = client.clone();
        let cx = d.cx();
        let mut w = Waiter::new(
            Pace::new(d.clock, 5.0, seconds / 0.001),
            &d.cancel,
            &d.actions,
        );
        let mut report = DeployReport::default();
        let v = watch::follow(&cx, &mut w, &ours(), wait_until, &mut report).await;
        let v = v.map_err(|e| {
            Stopped::find(&e)
                .map(|s| s.stop.clone())
                .expect("a stop, not an error")
        });
        (v, report)
    }

    fn no_retries(c: aws_sdk_ecs::config::Builder) -> aws_sdk_ecs::config::Builder {
        c.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
    }

    #[tokio::test]
    async fn throttling_mid_wait_is_reported_and_the_watch_carries_on() {
        let described = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| services("arn:td/web:2", DeploymentRolloutState::InProgress))
            .error(|| {
                DescribeServicesError::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .times(2)
            .output(|| services("arn:td/web:2", DeploymentRolloutState::Completed))
            .build();
        let deployments = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| sd(ServiceDeploymentStatus::InProgress, None))
            .output(|| sd(ServiceDeploymentStatus::Successful, None))
            .build();
        let client = mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&described, &deployments],
            no_retries
        );
        let (v, _) = run(&client, WaitUntil::Completed, 10.0).await;
        assert_eq!(
            v.unwrap(),
            Rollout::Succeeded {
                serving: "arn:td/web:2".into()
            }
        );
        assert_eq!(
            described.num_calls(),
            4,
            "one look, two throttled, one more"
        );
    }

    #[tokio::test]
    async fn a_deployment_that_vanishes_fails_the_deploy() {
        let described = mock!(aws_sdk_ecs::Client::describe_services)
            .then_output(|| services("arn:td/web:2", DeploymentRolloutState::InProgress));
        let deployments = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| sd(ServiceDeploymentStatus::InProgress, None))
            .output(|| {
                DescribeServiceDeploymentsOutput::builder()
                    .failures(Failure::builder().arn(SD).reason("MISSING").build())
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&described, &deployments]);
        let (v, _) = run(&client, WaitUntil::Completed, 10.0).await;
        assert!(
            matches!(&v, Ok(Rollout::Failed { reason, .. }) if reason.contains("vanished")),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn a_blue_green_deployment_in_bake_time_is_done_for_traffic_shifted_only() {
        let described = mock!(aws_sdk_ecs::Client::describe_services)
            .then_output(|| services("arn:td/web:2", DeploymentRolloutState::InProgress));
        let deployments = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| {
                sd(
                    ServiceDeploymentStatus::InProgress,
                    Some(ServiceDeploymentLifecycleStage::TestTrafficShift),
                )
            })
            .output(|| {
                sd(
                    ServiceDeploymentStatus::InProgress,
                    Some(ServiceDeploymentLifecycleStage::BakeTime),
                )
            })
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&described, &deployments]);
        let (v, _) = run(&client, WaitUntil::TrafficShifted, 10.0).await;
        assert_eq!(
            v.unwrap(),
            Rollout::TrafficShifted {
                serving: "arn:td/web:2".into(),
                stage: "BAKE_TIME".into()
            }
        );
        assert_eq!(deployments.num_calls(), 2);

        // `wait-until: completed` keeps watching through bake time.
        let (v, _) = run(&client, WaitUntil::Completed, 0.1).await;
        assert_eq!(v, Err(Stop::TimedOut));
    }

    #[tokio::test]
    async fn an_ecs_rollback_is_judged_only_once_it_settles() {
        let described = mock!(aws_sdk_ecs::Client::describe_services)
            .sequence()
            .output(|| services("arn:td/web:2", DeploymentRolloutState::Failed))
            .output(|| services("arn:td/web:1", DeploymentRolloutState::Completed))
            .build();
        let deployments = mock!(aws_sdk_ecs::Client::describe_service_deployments)
            .sequence()
            .output(|| sd(ServiceDeploymentStatus::RollbackInProgress, None))
            .output(|| sd(ServiceDeploymentStatus::RollbackSuccessful, None))
            .build();
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&described, &deployments]);
        let (v, _) = run(&client, WaitUntil::Completed, 10.0).await;
        assert!(
            matches!(&v, Ok(Rollout::RolledBack { serving: Some(s), .. }) if s == "arn:td/web:1"),
            "{v:?}"
        );
    }
}

/// A service at 100 % / 100 % cannot replace a task without breaking one of
/// the two (ECS's documented deadlock). The sandbox's rollouts honour the
/// percents, so this can fail: `strategy: service` stalls (and is rolled
/// back at the deadline, with ECS's own event as the evidence), while
/// `strategy: blue-green` starts the new tasks beside the old and deploys.
#[tokio::test(flavor = "multi_thread")]
async fn new_tasks_start_beside_the_old_only_with_room_for_them() {
    async fn tight(e: &Env) {
        let config = DeploymentConfiguration::builder()
            .maximum_percent(100)
            .minimum_healthy_percent(100)
            .build();
        e.ecs
            .update_service()
            .cluster("c")
            .service("web")
            .deployment_configuration(config)
            .send()
            .await
            .unwrap();
    }
    let e = env(false).await;
    tight(&e).await;
    let stall = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 30,
            ..plan().watch
        },
        ..plan()
    };
    let out = deploy(&e, &stall, GOOD).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert!(
        out.report
            .events
            .iter()
            .any(|ev| ev.contains("was unable to stop or start tasks during a deployment")),
        "{:?}",
        out.report.events
    );
    assert_eq!(rev(&out.report.serving_revision), "web:1");

    let e = env(false).await;
    tight(&e).await;
    let out = deploy(
        &e,
        &EcsPlan {
            strategy: Strategy::BlueGreen,
            ..plan()
        },
        GOOD,
    )
    .await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(rev(&out.report.serving_revision), "web:2");
}

/// A cluster without room for the new tasks: the rollout cannot place them,
/// and the run says why (ECS's placement event) instead of waiting blind.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_without_capacity_stalls_the_rollout_and_the_run_says_why() {
    let e = env(false).await;
    control(
        &e.moto,
        "ecs/capacity",
        json!({"cluster": "c", "max_tasks": 2}),
    );
    let p = EcsPlan {
        watch: WatchPlan {
            wait_seconds: 30,
            ..plan().watch
        },
        ..plan()
    };
    let out = deploy(&e, &p, GOOD).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert!(
        out.report
            .events
            .iter()
            .any(|ev| ev.contains("was unable to place a task")),
        "{:?}",
        out.report.events
    );
    assert!(
        out.report
            .serving_detail
            .as_deref()
            .is_some_and(|d| d.contains("web:1 (2 running)")),
        "{:?}",
        out.report.serving_detail
    );
}

/// The tags of a task definition revision, as `key=value`.
async fn tags_of(ecs: &aws_sdk_ecs::Client, arn: &str) -> Vec<String> {
    let out = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fastdeploy_tags_the_revisions_it_registers_and_registers_untagged_when_tagging_is_refused()
{
    let e = env(true).await;
    let out = deploy(&e, &plan(), GOOD).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let ours = out.report.revision.clone().unwrap();
    let tags = tags_of(&e.ecs, &ours).await;
    assert!(
        tags.iter().any(|t| t.starts_with("fastdeploy:registered=")),
        "{tags:?}"
    );

    // A deploy role without ecs:TagResource: the deploy still goes through.
    control(
        &e.moto,
        "ecs/config",
        serde_json::json!({"deny_tagging": true}),
    );
    let (captured, actions) = fastdeploy::gha::Actions::capture();
    let out = e
        .deployer()
        .with_actions(actions)
        .ecs(&plan(), &image_of(OTHER))
        .await;
    control(
        &e.moto,
        "ecs/config",
        serde_json::json!({"deny_tagging": false}),
    );
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let log = captured.lines().join("\n");
    assert!(
        log.contains("ECS refused fastdeploy's tag on the new revision")
            && log.contains("ecs:TagResource"),
        "{log}"
    );
    let untagged = out.report.revision.clone().unwrap();
    assert_ne!(untagged, ours);
    assert!(
        tags_of(&e.ecs, &untagged)
            .await
            .iter()
            .all(|t| !t.starts_with("fastdeploy:")),
        "registered without our tag"
    );
}
