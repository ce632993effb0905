//! One image, every place it runs (`targets:`): two services sharing a task
//! definition family, a worker service, an EventBridge rule and a Scheduler
//! schedule, deployed as one component against moto (with the sandbox's
//! ECS rollouts, and its faults for refused and lost answers).

use aws_sdk_ecs::types::{ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration};
use aws_sdk_eventbridge::types::Target as RuleTarget;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode};
use fastdeploy::deploy::{self, Change, DeployOutcome};
use fastdeploy::outcome::RunResult;
use fastdeploy::plan::{ComponentPlan, EcsPlan, TargetPlan, TriggerPlan, WatchPlan};
use fastdeploy::settings::{Strategy, WaitUntil};
use serde_json::json;

use crate::support::deploy::{Deployer, image_of};
use crate::support::sandbox::Moto;
use crate::support::triggers::{TASKS_ROLE, put_rule, rule_ecs_target, schedule_ecs_target};

const SCALE: f64 = 0.01;
const GOOD: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/c";
const AUDIT: &str = "arn:aws:lambda:us-east-1:123456789012:function:audit";

struct Env {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    ecs: aws_sdk_ecs::Client,
    events: aws_sdk_eventbridge::Client,
    scheduler: aws_sdk_scheduler::Client,
}

fn control(moto: &Moto, path: &str, body: serde_json::Value) -> serde_json::Value {
    tokio::task::block_in_place(|| moto.control(path, body))
}

async fn register(ecs: &aws_sdk_ecs::Client, family: &str) {
    let app = ContainerDefinition::builder()
        .name("app")
        .image("old-image:1")
        .memory(128)
        .build();
    ecs.register_task_definition()
        .family(family)
        .container_definitions(app)
        .send()
        .await
        .unwrap();
}

async fn service(ecs: &aws_sdk_ecs::Client, name: &str, family: &str) {
    let breaker = DeploymentCircuitBreaker::builder()
        .enable(true)
        .rollback(true)
        .build();
    ecs.create_service()
        .cluster("c")
        .service_name(name)
        .task_definition(format!("{family}:1"))
        .desired_count(1)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(breaker)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn td_arn(label: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{label}")
}

/// Services `web` and `api` (family `web`) and `worker` (family `worker`);
/// rule `nightly` runs `worker:1` beside a Lambda target; schedule
/// `report` runs `reports:1`, a family no service runs.
async fn env() -> Env {
    let moto = Moto::start();
    control(&moto, "ecs/config", json!({"step_seconds": 0.05}));
    let sdk = moto.sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster().cluster_name("c").send().await.unwrap();
    for family in ["web", "worker", "reports"] {
        register(&ecs, family).await;
    }
    service(&ecs, "web", "web").await;
    service(&ecs, "api", "web").await;
    service(&ecs, "worker", "worker").await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let cleanup = rule_ecs_target("cleanup", CLUSTER_ARN, &td_arn("worker:1"))
        .input(r#"{"containerOverrides":[{"name":"app","command":["cleanup"]}]}"#)
        .build()
        .unwrap();
    let audit = RuleTarget::builder()
        .id("audit")
        .arn(AUDIT)
        .build()
        .unwrap();
    put_rule(
        &events,
        "nightly",
        "cron(0 3 * * ? *)",
        vec![cleanup, audit],
    )
    .await;
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    scheduler
        .create_schedule()
        .name("report")
        .schedule_expression("rate(1 day)")
        .description("the nightly report")
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(15)
                .build()
                .unwrap(),
        )
        .target(schedule_ecs_target(CLUSTER_ARN, &td_arn("reports:1")))
        .send()
        .await
        .unwrap();
    Env {
        moto,
        sdk,
        ecs,
        events,
        scheduler,
    }
}

fn watch() -> WatchPlan {
    WatchPlan {
        wait_seconds: 1800,
        poll_seconds: 5.0,
        rollback: true,
        smoke: None,
        alarms: None,
    }
}

fn service_plan(name: &str) -> TargetPlan {
    TargetPlan::Ecs(EcsPlan {
        cluster: "c".into(),
        service: name.into(),
        containers: vec!["app".into()],
        task_definition_file: None,
        strategy: Strategy::Service,
        wait_until: WaitUntil::Completed,
        keep_revisions: None,
        before_deploy: None,
        config: Default::default(),
        watch: watch(),
    })
}

fn trigger(name: &str, i: usize) -> TriggerPlan {
    TriggerPlan {
        name: name.into(),
        at: format!("components.shop.targets[{i}]"),
        within: None,
        containers: vec!["app".into()],
        config: Default::default(),
        watch: watch(),
    }
}

/// Component `shop`: services web, api and worker, rule nightly, schedule report.
fn component() -> ComponentPlan {
    let targets = vec![
        service_plan("web"),
        service_plan("api"),
        service_plan("worker"),
        TargetPlan::Rule(trigger("nightly", 3)),
        TargetPlan::Schedule(trigger("report", 4)),
    ];
    crate::support::deploy::component("shop", "shop", targets)
}

impl Env {
    async fn deploy(&self, change: &Change) -> DeployOutcome {
        self.deploy_component(&component(), change).await
    }

    async fn deploy_component(&self, c: &ComponentPlan, change: &Change) -> DeployOutcome {
        let d = Deployer::new(&self.sdk, None, SCALE);
        deploy::deploy(&d.cx(), c, change).await.unwrap()
    }

    async fn service_td(&self, name: &str) -> String {
        let out = self
            .ecs
            .describe_services()
            .cluster("c")
            .services(name)
            .send()
            .await
            .unwrap();
        label(out.services()[0].task_definition().unwrap())
    }

    async fn revisions(&self, family: &str) -> Vec<String> {
        let out = self
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .send()
            .await
            .unwrap();
        out.task_definition_arns()
            .iter()
            .map(|a| label(a))
            .collect()
    }

    async fn rule_targets(&self) -> Vec<RuleTarget> {
        let out = self
            .events
            .list_targets_by_rule()
            .rule("nightly")
            .send()
            .await
            .unwrap();
        out.targets().to_vec()
    }

    async fn rule_td(&self) -> String {
        let targets = self.rule_targets().await;
        let ecs = targets.iter().find(|t| t.id == "cleanup").unwrap();
        label(&ecs.ecs_parameters.as_ref().unwrap().task_definition_arn)
    }

    async fn schedule(&self) -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
        self.scheduler
            .get_schedule()
            .name("report")
            .send()
            .await
            .unwrap()
    }

    async fn schedule_td(&self) -> String {
        let s = self.schedule().await;
        label(
            &s.target
                .unwrap()
                .ecs_parameters
                .unwrap()
                .task_definition_arn,
        )
    }

    /// Where every target is: web, api, worker, the rule, the schedule.
    async fn places(&self) -> [String; 5] {
        [
            self.service_td("web").await,
            self.service_td("api").await,
            self.service_td("worker").await,
            self.rule_td().await,
            self.schedule_td().await,
        ]
    }

    async fn image_of(&self, label: &str) -> String {
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(label)
            .send()
            .await
            .unwrap();
        let td = out.task_definition().unwrap();
        td.container_definitions()[0].image().unwrap().to_string()
    }
}

fn label(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

fn results(out: &DeployOutcome) -> Vec<(String, Option<RunResult>)> {
    std::iter::once(&out.report)
        .chain(&out.also)
        .map(|r| (r.target.short().to_string(), r.result))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_target_runs_the_new_digest_after_one_run_and_a_rerun_changes_nothing() {
    let e = env().await;
    let out = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert!(out.failure.is_none(), "{:?}", out.failure);
    let each = results(&out);
    assert_eq!(each.len(), 5, "{each:?}");
    assert!(
        each.iter().all(|(_, r)| *r == Some(RunResult::Success)),
        "{each:?}"
    );
    // One registration per family: web and api share web:2.
    assert_eq!(
        e.places().await,
        ["web:2", "web:2", "worker:2", "worker:2", "reports:2"].map(String::from)
    );
    assert_eq!(e.revisions("web").await, ["web:1", "web:2"]);
    for td in ["web:2", "worker:2", "reports:2"] {
        assert_eq!(e.image_of(td).await, GOOD, "{td}");
    }
    // Every other field of the rule's targets and of the schedule is kept.
    let targets = e.rule_targets().await;
    let cleanup = targets.iter().find(|t| t.id == "cleanup").unwrap();
    assert_eq!(cleanup.role_arn.as_deref(), Some(TASKS_ROLE));
    assert!(cleanup.input.as_deref().unwrap().contains("cleanup"));
    let audit = targets.iter().find(|t| t.id == "audit").unwrap();
    assert_eq!(audit.arn, AUDIT);
    let s = e.schedule().await;
    assert_eq!(s.description.as_deref(), Some("the nightly report"));
    assert_eq!(s.schedule_expression.as_deref(), Some("rate(1 day)"));
    let window = s.flexible_time_window.unwrap();
    assert_eq!(window.mode, FlexibleTimeWindowMode::Flexible);
    assert_eq!(window.maximum_window_in_minutes, Some(15));
    assert_eq!(s.target.unwrap().role_arn, TASKS_ROLE);

    let again = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(again.result, RunResult::Skipped, "{:?}", again.failure);
    assert!(
        results(&again)
            .iter()
            .all(|(_, r)| *r == Some(RunResult::Skipped)),
        "{:?}",
        results(&again)
    );
    assert_eq!(e.revisions("web").await, ["web:1", "web:2"]);
    assert_eq!(e.revisions("reports").await, ["reports:1", "reports:2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_worker_puts_the_services_back_and_the_rule_and_schedule_never_move() {
    let e = env().await;
    control(&e.moto, "ecs/config", json!({"fail_after": {"worker": 1}}));
    let out = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert_eq!(
        e.places().await,
        ["web:1", "web:1", "worker:1", "worker:1", "reports:1"].map(String::from)
    );
    let failure = out.failure.clone().unwrap();
    assert!(
        failure.contains("worker: deployment of worker:2")
            && failure.contains("web: put back with the component: worker did not succeed")
            && failure.contains("nightly: not moved"),
        "{failure}"
    );
    let each = results(&out);
    assert_eq!(
        each,
        [
            ("web".to_string(), Some(RunResult::RolledBack)),
            ("api".to_string(), Some(RunResult::RolledBack)),
            ("worker".to_string(), Some(RunResult::RolledBack)),
            ("nightly".to_string(), Some(RunResult::Skipped)),
            ("report".to_string(), Some(RunResult::Skipped)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_schedule_puts_back_the_rule_and_every_service() {
    let e = env().await;
    control(
        &e.moto,
        "faults/config",
        json!({"rules": [{"action": "UpdateSchedule", "kind": "5xx", "status": 400,
            "code": "AccessDeniedException", "message": "not authorized to perform: scheduler:UpdateSchedule", "times": 100}]}),
    );
    let out = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert_eq!(
        e.places().await,
        ["web:1", "web:1", "worker:1", "worker:1", "reports:1"].map(String::from)
    );
    let failure = out.failure.clone().unwrap();
    assert!(
        failure.contains("report: ")
            && failure.contains("scheduler:UpdateSchedule")
            && failure.contains("nothing was changed: schedule report still runs reports:1")
            && failure.contains("nightly: put back with the component: report did not succeed"),
        "{failure}"
    );
    // The services' deployments had completed: each is updated back, not stopped.
    let state = control(&e.moto, "faults/state", json!({}));
    assert!(state["calls"]["StopServiceDeployment"].is_null(), "{state}");
    let rule = &out.also[2];
    assert_eq!(rule.result, Some(RunResult::RolledBack));
    assert_eq!(
        rule.serving_revision.as_deref().map(label).as_deref(),
        Some("worker:1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_put_targets_answer_converges_on_what_the_rule_holds() {
    let e = env().await;
    control(
        &e.moto,
        "faults/config",
        json!({"rules": [{"action": "PutTargets", "mode": "lost-answer", "times": 100}]}),
    );
    let out = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    assert_eq!(e.rule_td().await, "worker:2");
    let state = control(&e.moto, "faults/state", json!({}));
    assert!(
        state["lost"]["PutTargets"].as_u64().unwrap() >= 1,
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_puts_every_target_back_where_it_was_before_the_last_deploy() {
    let e = env().await;
    let out = e.deploy(&Change::Image(image_of(GOOD))).await;
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let d = Deployer::new(&e.sdk, None, SCALE);
    let revs = deploy::earlier(&d.cx(), &component(), None).await.unwrap();
    let ids: Vec<String> = revs.iter().map(|r| label(&r.id)).collect();
    assert_eq!(ids, ["web:1", "web:1", "worker:1", "worker:1", "reports:1"]);
    assert!(
        revs[3].found.contains("with the service that runs worker"),
        "{}",
        revs[3].found
    );
    assert!(
        revs[4]
            .found
            .contains("newest ACTIVE revision of reports before reports:2"),
        "{}",
        revs[4].found
    );
    let back = e.deploy(&Change::Revisions(revs)).await;
    assert_eq!(back.result, RunResult::Success, "{:?}", back.failure);
    assert_eq!(
        e.places().await,
        ["web:1", "web:1", "worker:1", "worker:1", "reports:1"].map(String::from)
    );
}

/// The shop's `web` with `targets:`: service `shop` and service
/// `shop-worker` (one family, `shop-web`), and rule `nightly` running it.
const TARGETS_CONFIG: &str = r#"version: 1
components:
  web:
    context: .
    repository: acme/shop
    container: [web]
    targets:
      - service: shop
      - service: shop-worker
      - rule: nightly
environments:
  production:
    branches: [main]
    cluster: demo
"#;

#[test]
fn through_the_binary_a_component_with_targets_is_built_once_and_reported_per_target() {
    use crate::support::run::run;
    use crate::support::sandbox::{CLUSTER, FAMILY, FullSandbox, block_on};
    let mut sb = FullSandbox::start();
    block_on(async {
        let sdk = sb.moto.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name("shop-worker")
            .task_definition(format!("{FAMILY}:1"))
            .desired_count(1)
            .send()
            .await
            .unwrap();
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let cluster = format!("arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}");
        let td = td_arn(&format!("{FAMILY}:1"));
        let job = rule_ecs_target("job", &cluster, &td).build().unwrap();
        put_rule(&events, "nightly", "cron(0 3 * * ? *)", vec![job]).await;
    });
    sb.commit_change("fastdeploy.yml", TARGETS_CONFIG);
    let diff = run(sb.config_command_with(&["plan", "--diff"]));
    assert_eq!(diff.code, 0, "{}", diff.log());
    assert!(
        diff.stdout.contains("web → ECS service shop-worker in cluster demo")
            && diff.stdout.contains(&format!(
                "runs {FAMILY}:1; its ECS target moves to this run's revision of {FAMILY}, every other field kept"
            )),
        "{}",
        diff.log()
    );
    let ran = run(sb.config_command());
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert_eq!(
        ran.stdout.matches("::group::build").count(),
        1,
        "built once: {}",
        ran.log()
    );
    let images: serde_json::Value = serde_json::from_str(&sb.output("images").unwrap()).unwrap();
    let targets = images["web"]["targets"]
        .as_array()
        .expect("one entry per target");
    let runs: Vec<(String, String)> = targets
        .iter()
        .map(|t| {
            let kind = t["target"]["kind"].as_str().unwrap().to_string();
            (kind, label(t["serving-revision"].as_str().unwrap()))
        })
        .collect();
    let new = format!("{FAMILY}:2");
    assert_eq!(
        runs,
        [
            ("ecs".into(), new.clone()),
            ("ecs".into(), new.clone()),
            ("rule".into(), new.clone())
        ],
        "{images}"
    );
    assert!(targets.iter().all(|t| t["result"] == "success"), "{images}");
    let summary = sb.summary();
    assert!(
        summary.contains("#### Targets of web")
            && summary.contains(&format!(
                "| EventBridge rule nightly on event bus default | `{FAMILY}:1` | `{FAMILY}:2` |"
            )),
        "{summary}"
    );
    let slack = serde_json::Value::from(crate::support::run::slack_messages(&sb)).to_string();
    assert!(
        slack.contains("EventBridge rule nightly on event bus default: success, runs shop-web:2"),
        "{slack}"
    );

    // A re-run builds nothing new and moves nothing.
    let again = run(sb.config_command());
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("skipped"),
        "{}",
        again.log()
    );
}

const BASE: &str = r#"version: 1
components:
  api:
    repository: acme/api
COMPONENT
environments:
  production:
    branches: [main]
    cluster: demo
OVERRIDE"#;

fn config(component: &str, over: &str) -> String {
    BASE.replace("COMPONENT", component)
        .replace("OVERRIDE", over)
}

#[test]
fn targets_are_planned_in_order_and_an_environment_replaces_the_list() {
    let c = config(
        "    container: [app]\n    targets:\n      - service: web\n      - service: worker\n        order: 2\n        container: [app, sidecar]\n      - rule: nightly\n        event-bus: jobs\n      - schedule: report\n      - function: thumbs\n        alias: live",
        "",
    );
    let plan = crate::hardening::resolve(&[], Some(&c)).unwrap();
    let api = &plan.components[0];
    let kinds: Vec<String> = api.targets().map(TargetPlan::describe).collect();
    assert_eq!(
        kinds,
        [
            "ECS service web in cluster demo",
            "ECS service worker in cluster demo",
            "EventBridge rule nightly on event bus jobs",
            "EventBridge Scheduler schedule report in group default",
            "Lambda function thumbs (alias live)",
        ]
    );
    match &api.also[0] {
        TargetPlan::Ecs(w) => assert_eq!(w.containers, ["app", "sidecar"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(api.order, [1, 2, 1, 1, 1]);
    match &api.also[1] {
        TargetPlan::Rule(r) => assert_eq!(
            (r.containers.as_slice(), r.at.as_str()),
            (&["app".to_string()][..], "components.api.targets[2]")
        ),
        other => panic!("{other:?}"),
    }
    let over = "    overrides:\n      api:\n        targets:\n          - service: web-prod\n";
    let plan = crate::hardening::resolve(
        &[],
        Some(&config(
            "    targets:\n      - service: web\n      - rule: nightly",
            over,
        )),
    )
    .unwrap();
    let kinds: Vec<String> = plan.components[0]
        .targets()
        .map(TargetPlan::describe)
        .collect();
    assert_eq!(kinds, ["ECS service web-prod in cluster demo"]);
}

#[test]
fn bad_targets_are_refused_before_anything_runs_naming_the_item() {
    /// The component's lines, the environment's override, the inputs, the message.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "    service: web\n    targets:\n      - service: worker",
            "",
            &[],
            "component `api` sets both `targets` and `service: web`; `targets` names every place the image runs: move `service: web` into the list, or remove `targets`",
        ),
        (
            "    targets:\n      - service: web\n      - service: worker\n        rule: nightly",
            "",
            &[],
            "`components.api.targets[1]` names two targets, `service: worker` and `rule: nightly`; an item names one: split it into two items",
        ),
        (
            "    targets:\n      - container: [app]",
            "",
            &[],
            "`components.api.targets[0]` names no target: give it one of `service`, `function`, `beanstalk-environment`, `rule` or `schedule`",
        ),
        (
            "    targets:\n      - service: web\n      - service: web",
            "",
            &[],
            "`components.api.targets[1]` names service `web` again (`components.api.targets[0]` names it too); name each target once",
        ),
        (
            "    targets:\n      - rule: nightly\n        order: 2",
            "",
            &[],
            "`components.api.targets[0]` sets `order`, which only a `service` or `function` or `beanstalk-environment` item takes; remove it from this `rule` item",
        ),
        (
            "    targets:\n      - service: web\n        order: 0",
            "",
            &[],
            "`components.api.targets[0].order` is 0, but it accepts a whole number from 1",
        ),
        (
            "    before-deploy: python manage.py migrate\n    targets:\n      - service: web\n        order: 2\n      - function: thumbs",
            "",
            &[],
            "`components.api.targets[1]` is in order group 1, before `components.api.targets[0]` (group 2), the service that runs `before-deploy`",
        ),
        (
            "    targets: []",
            "",
            &[],
            "`components.api.targets` is an empty list; name at least one target, or remove the key",
        ),
        (
            "    targets:\n      - service: web\n        alias: live",
            "",
            &[],
            "`components.api.targets[0]` sets `alias`, which only a `function` item takes; remove it from this `service` item",
        ),
        (
            "    targets:\n      - service: web\n      - rule: nightly",
            "",
            &[("INPUT_SERVICE", "web")],
            "input `service` is \"web\", but component `api` names its targets with `components.api.targets` in the config; remove the input, or add the target to the list",
        ),
        (
            "    targets:\n      - service: web",
            "    overrides:\n      api:\n        service: web-prod\n",
            &[],
            "in environment `production`, component `api` sets `service: web-prod`, but the component names its places with `targets`: override `targets` instead",
        ),
        (
            "    before-deploy: python manage.py migrate\n    targets:\n      - function: thumbs\n      - rule: nightly",
            "",
            &[],
            "names no ECS `service`: `before-deploy` runs a one-off ECS task",
        ),
    ];
    for (component, over, inputs, expected) in cases {
        let c = config(component, over);
        let err = crate::hardening::resolve(inputs, Some(&c)).expect_err(&c);
        assert!(err.contains(expected), "{c}\n---\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_or_schedule_that_is_missing_has_no_ecs_target_or_runs_another_family_is_bad_input()
{
    let e = env().await;
    let d = Deployer::new(&e.sdk, None, SCALE);
    let audit = RuleTarget::builder()
        .id("audit")
        .arn(AUDIT)
        .build()
        .unwrap();
    put_rule(&e.events, "audit-only", "rate(1 hour)", vec![audit]).await;
    let cases = [
        (
            TargetPlan::Rule(trigger("gone", 1)),
            "components.shop.targets[1]: EventBridge rule gone on event bus default does not exist in this account and region; check its name (and `event-bus`)",
        ),
        (
            TargetPlan::Schedule(trigger("gone", 1)),
            "components.shop.targets[1]: EventBridge Scheduler schedule gone in group default does not exist in this account and region; check its name (and `group`)",
        ),
        (
            TargetPlan::Rule(trigger("audit-only", 1)),
            "components.shop.targets[1]: EventBridge rule audit-only on event bus default has no ECS target",
        ),
        (
            TargetPlan::Rule(TriggerPlan {
                containers: vec!["web".into()],
                ..trigger("nightly", 1)
            }),
            "components.shop.targets[1]: rule nightly runs task definition family worker, which does not run the component's image: container(s) `web` not in task definition worker",
        ),
    ];
    for (plan, expected) in cases {
        let mut c = component();
        c.also = vec![plan];
        let err = deploy::preflight(&d.cx(), &c).await.expect_err(expected);
        let is_bad_input = err
            .chain()
            .any(|c| c.downcast_ref::<fastdeploy::error::BadInput>().is_some());
        let text = fastdeploy::error::chain_message(&err);
        assert!(is_bad_input && text.contains(expected), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn order_groups_move_one_after_the_other_and_a_failed_group_stops_the_next() {
    let e = env().await;
    let mut c = component();
    // web and api first; worker once they succeeded; the rule and schedule last.
    c.order = vec![1, 1, 2, 1, 1];
    let (log, actions) = fastdeploy::gha::Actions::capture();
    let d = Deployer::new(&e.sdk, None, SCALE).with_actions(actions);
    let out = deploy::deploy(&d.cx(), &c, &Change::Image(image_of(GOOD)))
        .await
        .unwrap();
    let lines = log.lines().join("\n");
    assert_eq!(out.result, RunResult::Success, "{:?}", out.failure);
    let at = |needle: &str| {
        lines
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {lines}"))
    };
    let worker = at("[shop/worker] updating service worker");
    assert!(
        at("[shop/web] deployment complete") < worker
            && at("[shop/api] deployment complete") < worker,
        "{lines}"
    );
    assert!(
        worker < at("[shop/nightly] rule nightly: worker:1 → worker:2"),
        "{lines}"
    );

    // A failing first group: the worker never moves, web and api go back.
    control(&e.moto, "ecs/config", json!({"fail_after": {"web": 2}}));
    let out = e
        .deploy_component(&c, &Change::Image(image_of(OTHER)))
        .await;
    assert_eq!(out.result, RunResult::RolledBack, "{:?}", out.failure);
    assert_eq!(
        e.places().await,
        ["web:2", "web:2", "worker:2", "worker:2", "reports:2"].map(String::from)
    );
    assert_eq!(
        out.also[1].result,
        Some(RunResult::Skipped),
        "{:?}",
        out.failure
    );
    assert!(
        out.failure
            .unwrap()
            .contains("worker: not moved: web, api did not succeed first")
    );
}
