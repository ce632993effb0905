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
