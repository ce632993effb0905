//! `smoke-test-path` through the binary against the sandbox: the
//! environment's URL is a recording receiver answering as the new revision
//! would (503 while it warms up, 500 when it is broken), and the ECS
//! service is moto's. A deploy is called done only once the path answers
//! 2xx or 3xx; one that never does is rolled back.

use serde_json::json;

use crate::support::run::{ecs_view, run, task_definition_arn};
use crate::support::sandbox::{FullSandbox, Receiver};

fn with_smoke(sb: &FullSandbox, app: &Receiver) -> std::process::Command {
    let mut cmd = sb.command();
    cmd.env("INPUT_ENVIRONMENT_URL", &app.url)
        .env("INPUT_SMOKE_TEST_PATH", "/health")
        .env("INPUT_SMOKE_TEST_SECONDS", "60");
    cmd
}

fn fetched(app: &Receiver) -> usize {
    app.requests()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "/health")
        .count()
}

#[test]
fn the_deploy_is_done_once_the_path_answers_and_a_path_that_never_does_rolls_back() {
    let mut sb = FullSandbox::start();
    let app = Receiver::start();
    // Warming up: two 503s, then the default 200.
    app.script(
        json!([{"match": "GET /health", "status": 503, "body": {"ready": false}, "times": 2}]),
    );
    let ran = run(with_smoke(&sb, &app));
    assert_eq!(ran.code, 0, "{}", ran.log());
    let url = format!("{}/health", app.url);
    assert!(
        ran.stdout.contains(&format!(
            "smoke test: GET {url} answered 503 ({{\"ready\": false}}); trying again"
        )) && ran
            .stdout
            .contains(&format!("smoke test: GET {url} answered 200 (3 tries)")),
        "{}",
        ran.log()
    );
    assert_eq!(fetched(&app), 3);
    assert_eq!(ecs_view(&sb).task_definition, task_definition_arn(2));

    // The next commit's revision is broken behind the load balancer: the
    // path answers 500 for the whole minute (0.6 s here), so the service
    // goes back to revision 2.
    app.default_response(json!({"match": "GET /health", "status": 500, "body": "db down"}));
    sb.commit_change("app/pages/index.html", "<h1>broken</h1>\n");
    std::fs::remove_file(sb.output_file()).unwrap();
    let broken = run(with_smoke(&sb, &app));
    assert_eq!(broken.code, 1, "{}", broken.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("rolled-back"),
        "{}",
        broken.log()
    );
    assert!(
        broken.stdout.contains(&format!(
            "smoke test: GET {url} answered 500 (\"db down\") after 60 s and"
        )),
        "{}",
        broken.log()
    );
    assert!(broken.stdout.contains("rolling back"), "{}", broken.log());
    let view = ecs_view(&sb);
    assert_eq!(
        view.task_definition,
        task_definition_arn(2),
        "{:?}",
        view.deployments
    );
    assert!(
        sb.summary().contains("smoke test: GET"),
        "the summary says why: {}",
        sb.summary()
    );

    // Nothing listens at the URL: no answer is a failure too.
    sb.commit_change("app/pages/index.html", "<h1>unreachable</h1>\n");
    std::fs::remove_file(sb.output_file()).unwrap();
    let mut cmd = with_smoke(&sb, &app);
    cmd.env("INPUT_ENVIRONMENT_URL", "http://127.0.0.1:9");
    let silent = run(cmd);
    assert_eq!(silent.code, 1, "{}", silent.log());
    assert!(
        silent
            .stdout
            .contains("smoke test: GET http://127.0.0.1:9/health did not answer (")
            && silent.stdout.contains("fastdeploy rolled back"),
        "{}",
        silent.log()
    );
    assert_eq!(ecs_view(&sb).task_definition, task_definition_arn(2));
}

#[test]
fn a_smoke_test_path_without_a_url_is_bad_input_and_nothing_is_built() {
    let sb = FullSandbox::start();
    let mut cmd = sb.command();
    cmd.env_remove("INPUT_ENVIRONMENT_URL")
        .env("INPUT_SMOKE_TEST_PATH", "/health");
    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        // Read at preflight (the service could have a test listener), as
        // README.md's bad-input table quotes it.
        ran.stderr.contains("error: `smoke-test-path` is set for ECS service shop, but there is no URL to reach: set `environment-url` (or `environments.<env>.url` in the config), or give the service a test listener (deployment strategy BLUE_GREEN with a `testListenerRule`)"),
        "{}",
        ran.log()
    );
    let mut cmd = sb.command();
    cmd.env("INPUT_SMOKE_TEST_PATH", "health");
    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        ran.stderr.contains("input `smoke-test-path` is `health`: give a path on the environment's URL, starting with `/`"),
        "{}",
        ran.log()
    );
}

// ---------------------------------------------------------------------------
// An ECS blue/green service: the smoke test goes through its test listener
// once ECS shifted test traffic to the new revision (the sandbox's native
// blue/green, tests/sandbox/ext_ecs.py).

const BG_SERVICE: &str = "shop-bg";

/// A form-encoded EC2 query to moto (no EC2 SDK here): the answer's XML.
fn ec2_query(moto: &crate::support::sandbox::Moto, params: &[(&str, &str)]) -> String {
    reqwest::blocking::Client::new()
        .post(&moto.endpoint)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
        .form(&[&[("Version", "2016-11-15")], params].concat())
        .send()
        .and_then(|r| r.text())
        .unwrap()
}

/// The values of `<tag>` in `xml`, in order.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once('<').map(|(v, _)| v.to_string()))
        .collect()
}

/// What the sandbox's test and production listener rules forward to.
struct BlueGreen {
    dns: String,
    test_rule: String,
    prod_rule: String,
    blue: String,
}

/// An ALB (production listener :80, test listener :9000, a rule each
/// forwarding to `shop-blue`), target group `shop-green`, and service
/// `shop-bg` in the sandbox's cluster: deployment strategy BLUE_GREEN with
/// both rules, family `shop-bg` (container `web`, port 8080), one task.
fn blue_green_service(sb: &FullSandbox) -> BlueGreen {
    use aws_sdk_ecs::types::{
        AdvancedConfiguration, ContainerDefinition, DeploymentCircuitBreaker,
        DeploymentConfiguration, DeploymentStrategy, LoadBalancer, PortMapping,
    };
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
        LoadBalancerTypeEnum, ProtocolEnum, RuleCondition, TargetGroupTuple, TargetTypeEnum,
    };
    let vpcs = ec2_query(&sb.moto, &[("Action", "DescribeVpcs")]);
    let vpc = xml_values(&vpcs, "vpcId").remove(0);
    let subnets = ec2_query(
        &sb.moto,
        &[
            ("Action", "DescribeSubnets"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &vpc),
        ],
    );
    let subnets: Vec<String> = xml_values(&subnets, "subnetId")
        .into_iter()
        .take(2)
        .collect();
    crate::support::sandbox::block_on(async {
        let sdk = sb.moto.sdk_config().await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let lb = elb
            .create_load_balancer()
            .name("shop-alb")
            .set_subnets(Some(subnets))
            .r#type(LoadBalancerTypeEnum::Application)
            .send()
            .await
            .unwrap();
        let lb = &lb.load_balancers()[0];
        let (lb_arn, dns) = (
            lb.load_balancer_arn().unwrap(),
            lb.dns_name().unwrap().to_string(),
        );
        let mut groups = Vec::new();
        for name in ["shop-blue", "shop-green"] {
            let tg = elb
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Ip)
                .health_check_path("/health")
                .send()
                .await
                .unwrap();
            groups.push(
                tg.target_groups()[0]
                    .target_group_arn()
                    .unwrap()
                    .to_string(),
            );
        }
        let (blue, green) = (groups[0].clone(), groups[1].clone());
        let forward = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&blue)
                            .weight(100)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&green)
                            .weight(0)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut rules = Vec::new();
        for port in [80, 9000] {
            let not_found = Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("404")
                        .build(),
                )
                .build();
            let l = elb
                .create_listener()
                .load_balancer_arn(lb_arn)
                .protocol(ProtocolEnum::Http)
                .port(port)
                .default_actions(not_found)
                .send()
                .await
                .unwrap();
            let r = elb
                .create_rule()
                .listener_arn(l.listeners()[0].listener_arn().unwrap())
                .priority(1)
                .conditions(
                    RuleCondition::builder()
                        .field("path-pattern")
                        .values("/*")
                        .build(),
                )
                .actions(forward.clone())
                .send()
                .await
                .unwrap();
            rules.push(r.rules()[0].rule_arn().unwrap().to_string());
        }
        let app = ContainerDefinition::builder()
            .name("web")
            .image("shop:1")
            .memory(128)
            .port_mappings(PortMapping::builder().container_port(8080).build())
            .build();
        ecs.register_task_definition()
            .family(BG_SERVICE)
            .container_definitions(app)
            .send()
            .await
            .unwrap();
        let advanced = AdvancedConfiguration::builder()
            .alternate_target_group_arn(&green)
            .production_listener_rule(&rules[0])
            .test_listener_rule(&rules[1])
            .role_arn("arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers")
            .build();
        ecs.create_service()
            .cluster(crate::support::sandbox::CLUSTER)
            .service_name(BG_SERVICE)
            .task_definition(format!("{BG_SERVICE}:1"))
            .desired_count(1)
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&blue)
                    .container_name("web")
                    .container_port(8080)
                    .advanced_configuration(advanced)
                    .build(),
            )
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::BlueGreen)
                    .bake_time_in_minutes(1)
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
        BlueGreen {
            dns,
            test_rule: rules[1].clone(),
            prod_rule: rules[0].clone(),
            blue,
        }
    })
}

/// Where `rule` forwards now (the sandbox's `ecs/listener-rule`).
fn forwards_to(sb: &FullSandbox, rule: &str) -> String {
    sb.moto.control("ecs/listener-rule", json!({"rule": rule}))["target_group"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `fastdeploy run` for `shop-bg`, no `environment-url`, the receiver as
/// the run's HTTP proxy (it answers for the load balancer's name).
fn bg_command(sb: &FullSandbox, app: &Receiver) -> std::process::Command {
    let mut cmd = sb.command();
    cmd.env_remove("INPUT_ENVIRONMENT_URL")
        .env("INPUT_SERVICE", BG_SERVICE)
        .env("INPUT_SMOKE_TEST_PATH", "/health")
        .env("INPUT_SMOKE_TEST_SECONDS", "30");
    app.proxy_for(&mut cmd);
    cmd
}

#[test]
fn a_blue_green_service_is_smoke_tested_through_its_test_listener_before_production_traffic() {
    let mut sb = FullSandbox::start();
    let app = Receiver::start();
    let bg = blue_green_service(&sb);
    let test_host = format!("{}:9000", bg.dns);
    // A lifecycle hook holds the deployment after the test shift, as a team
    // that tests before production would set it; the new revision answers
    // 500 on the test listener.
    sb.moto.control(
        "ecs/config",
        json!({"blue_green_hold": "POST_TEST_TRAFFIC_SHIFT"}),
    );
    app.default_response(
        json!({"host": test_host, "match": "GET /health", "status": 500, "body": "db down"}),
    );
    let ran = run(bg_command(&sb, &app));
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("rolled-back"),
        "{}",
        ran.log()
    );
    let url = format!("http://{test_host}/health");
    assert!(
        ran.stdout.contains("test traffic is on the new revision, production traffic is not: smoke test through the test listener")
            && ran.stdout.contains(&format!("smoke test: GET {url} answered 500 (\"db down\") after 30 s and"))
            && ran.stdout.contains("with a rollback: smoke test: GET")
            && ran.stdout.contains("ECS rolled the deployment of shop-bg:2 back ("),
        "{}",
        ran.log()
    );
    // Production never left blue; the test listener is back on it too.
    assert_eq!(forwards_to(&sb, &bg.prod_rule), bg.blue);
    assert_eq!(forwards_to(&sb, &bg.test_rule), bg.blue);
    assert!(
        app.requests()
            .iter()
            .all(|r| r["host"] == test_host.as_str()),
        "{:?}",
        app.requests()
    );

    // The next revision answers: no hook holds it, test then production.
    sb.moto
        .control("ecs/config", json!({"blue_green_hold": null}));
    app.default_response(
        json!({"host": test_host, "match": "GET /health", "status": 200, "body": {"ok": true}}),
    );
    sb.commit_change("app/pages/index.html", "<h1>fixed</h1>\n");
    std::fs::remove_file(sb.output_file()).unwrap();
    let ran = run(bg_command(&sb, &app));
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert!(
        ran.stdout
            .contains(&format!("smoke test: GET {url} answered 200 (1 try)")),
        "{}",
        ran.log()
    );
    assert_ne!(
        forwards_to(&sb, &bg.prod_rule),
        bg.blue,
        "production moved to green"
    );
}
