//! Reporting against the sandbox's recording receivers: the Slack payloads,
//! the GitHub deployment, status and comment requests, the job summary, and
//! that no reporting failure ever changes a run's result or leaks a secret.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fastdeploy::gha::Actions;
use fastdeploy::outcome::{
    BuildReport, ComponentReport, DeployReport, Phases, RunReport, RunResult, TargetRef, Warning,
};
use fastdeploy::plan::{self, BuilderProbe, Plan};
use fastdeploy::report::notify::Notifier;
use fastdeploy::report::summary;
use fastdeploy::settings::Settings;
use fastdeploy::settings::inputs::RawInputs;
use serde_json::{Value, json};

use crate::support::sandbox::Receiver;

const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const PR_SHA: &str = "e5f60718293a4b5c6d7e8f901234567890123456";
const RUN_ID: &str = "9876543210";
const GITHUB_TOKEN: &str = "ghs_S3cretTokenValue0123456789abcdef";
const BOT_TOKEN: &str = "xoxb-1111-2222-S3cretBotToken";
/// The secret part of the webhook URL (Slack's is the last path segment).
const WEBHOOK_SECRET: &str = "Zk8TcHookSecret4242xyz";

const CONFIG: &str = "\
components:
  backend:
    context: backend
    service: shop-backend
  frontend:
    context: frontend
    service: shop-frontend
environments:
  production:
    branches: [main]
    cluster: shop-prod
    url: https://shop.example.com
";

/// A workspace with the config and an event file, and the runner's
/// environment pointing GitHub and Slack at the receivers.
struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Fixture {
    fn push(github: &str, slack: &str) -> Fixture {
        let event = json!({
            "ref": "refs/heads/main",
            "after": SHA,
            "head_commit": {"id": SHA, "message": "Cache pip wheels <fast> & small\n\nLonger body.", "author": {"name": "Dana Scully", "username": "dana"}},
            "repository": {"full_name": "acme/shop", "default_branch": "main"}
        });
        Fixture::new(github, slack, "push", "refs/heads/main", SHA, event)
    }

    fn pull_request(github: &str, slack: &str) -> Fixture {
        let event = json!({
            "number": 57,
            "pull_request": {"number": 57, "title": "Cache pip wheels", "user": {"login": "fox"},
                             "head": {"sha": PR_SHA, "ref": "feature/pip-cache"}, "base": {"ref": "main"}},
            "repository": {"full_name": "acme/shop", "default_branch": "main"}
        });
        Fixture::new(
            github,
            slack,
            "pull_request",
            "refs/pull/57/merge",
            "ffffffffffffffffffffffffffffffffffffffff",
            event,
        )
    }

    fn new(
        github: &str,
        slack: &str,
        event_name: &str,
        git_ref: &str,
        sha: &str,
        event: Value,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        for c in ["backend", "frontend"] {
            std::fs::create_dir_all(ws.join(c)).unwrap();
            std::fs::write(ws.join(c).join("Dockerfile"), "FROM alpine:3.20\n").unwrap();
        }
        std::fs::write(ws.join("fastdeploy.yml"), CONFIG).unwrap();
        let event_path = dir.path().join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        let env: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("GITHUB_EVENT_NAME", event_name.into()),
            ("GITHUB_EVENT_PATH", event_path.display().to_string()),
            ("GITHUB_REF", git_ref.into()),
            ("GITHUB_SHA", sha.into()),
            ("GITHUB_REPOSITORY", "acme/shop".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            // GHES-style API path, so the base URL's path is shown to be kept.
            ("GITHUB_API_URL", format!("{github}/api/v3")),
            ("GITHUB_RUN_ID", RUN_ID.into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_WORKFLOW", "deploy".into()),
            ("GITHUB_WORKSPACE", ws.display().to_string()),
            ("GITHUB_TOKEN", GITHUB_TOKEN.into()),
            ("FASTDEPLOY_SLACK_API_URL", format!("{slack}/api")),
            ("FASTDEPLOY_DELAY_SCALE", "0.001".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Fixture { dir, env }
    }

    fn webhook(mut self, slack: &str) -> Self {
        self.env
            .insert("INPUT_SLACK_WEBHOOK_URL".into(), webhook_url(slack));
        self
    }

    fn bot(mut self, channel: &str) -> Self {
        self.env
            .insert("INPUT_SLACK_BOT_TOKEN".into(), BOT_TOKEN.into());
        self.env
            .insert("INPUT_SLACK_CHANNEL".into(), channel.into());
        self
    }

    fn input(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    fn settings(&self) -> Settings {
        let ws = self.dir.path().join("ws");
        Settings::resolve(RawInputs::from_env(&self.env), &self.env, &ws)
            .expect("fixture settings resolve")
    }

    fn plan(&self, settings: &Settings) -> Plan {
        plan::build(
            settings,
            &BuilderProbe {
                docker_buildx: false,
                buildah: true,
                docker: None,
            },
        )
        .expect("fixture plan builds")
    }
}

fn webhook_url(slack: &str) -> String {
    format!("{slack}/services/T0001/B0002/{WEBHOOK_SECRET}")
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn arn(revision: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{revision}")
}

fn component(name: &str, result: RunResult, d: char, serving: &str) -> ComponentReport {
    ComponentReport {
        name: name.into(),
        result,
        failure: None,
        build: BuildReport {
            context_bytes: Some(12_582_912),
            context_files: Some(412),
            content_tag: Some(format!("content-{d}{d}{d}")),
            skipped: false,
            seconds: Some(62.4),
            cached_steps: Some(7),
            total_steps: Some(9),
            image: Some(format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/{name}"
            )),
            digest: Some(digest(d)),
            tags: vec!["a1b2c3d".into(), "production".into(), "main".into()],
            image_bytes: Some(89_443_532),
            layers: Some(6),
            codebuild_build: None,
            ..BuildReport::default()
        },
        deploy: Some(DeployReport {
            target: TargetRef::Ecs {
                cluster: "shop-prod".into(),
                service: format!("shop-{name}"),
            },
            result: None,
            revision: Some(arn(&format!("shop-{name}:43"))),
            previous_revision: Some(arn(&format!("shop-{name}:42"))),
            deployment_id: Some(format!("ecs-svc/{name}1234")),
            serving_revision: Some(arn(&format!("shop-{name}:{serving}"))),
            seconds: Some(130.0),
            events: vec![
                format!("(service shop-{name}) has started 2 tasks: (task 1a2b) (task 3c4d)."),
                format!("(service shop-{name}) registered 2 targets in (target-group tg-{name})"),
            ],
            evidence: vec![],
            unchanged: false,
            before_deploy: None,
            serving_detail: None,
            url: None,
            doctor: None,
            timeline: None,
        }),
        also: vec![],
    }
}

/// A realistic report: two components deployed, in one of three endings.
fn report(result: RunResult) -> RunReport {
    let mut backend = component("backend", RunResult::Success, 'b', "43");
    let frontend = component("frontend", RunResult::Success, 'f', "43");
    let mut failure = None;
    match result {
        RunResult::Failure => {
            backend.result = RunResult::Failure;
            let why =
                "ECS deployment circuit breaker: 3 tasks failed their health checks (exit code 1)"
                    .to_string();
            backend.failure = Some(why.clone());
            let d = backend.deploy.as_mut().unwrap();
            d.serving_revision = Some(arn("shop-backend:42"));
            d.events
                .push("(service shop-backend) (task 5e6f) failed container health checks.".into());
            d.events.push("(service shop-backend) deployment ecs-svc/backend1234 deployment failed: tasks failed to start.".into());
            d.evidence.push(
                "task 5e6f: Essential container in task exited (exit code 1) <OOM?> & restarted"
                    .into(),
            );
            failure = Some(format!("backend: {why}"));
        }
        RunResult::RolledBack => {
            backend.result = RunResult::RolledBack;
            let d = backend.deploy.as_mut().unwrap();
            d.serving_revision = Some(arn("shop-backend:42"));
            d.events.push(
                "(service shop-backend) rolling back to deployment ecs-svc/backend0999.".into(),
            );
            failure =
                Some("backend: ECS rolled the deployment back; shop-backend:42 is serving".into());
        }
        _ => {}
    }
    let components = vec![backend, frontend];
    RunReport {
        result: RunReport::overall(&components),
        environment: Some("production".into()),
        components,
        warnings: vec![
            Warning {
                rule: Some("DF003".into()),
                severity: fastdeploy::outcome::Severity::Warning,
                component: Some("backend".into()),
                file: Some("backend/Dockerfile".into()),
                line: Some(4),
                message: "apt lists left in the layer; add `rm -rf /var/lib/apt/lists/*` in the same RUN".into(),
            },
            Warning {
                rule: Some("CTX001".into()),
                severity: fastdeploy::outcome::Severity::Warning,
                component: Some("frontend".into()),
                file: None,
                line: None,
                message: "build context is 210.0 MB (warn at 200 MB); node_modules is not in .dockerignore".into(),
            },
        ],
        phases: Phases { check: Some(1.2), build: Some(64.0), deploy: Some(131.5), total: Some(197.1) },
        failure,
        links: [
            (
                "ECS service shop-backend".to_string(),
                "https://console.aws.amazon.com/ecs/v2/clusters/shop-prod/services/shop-backend?region=us-east-1".to_string(),
            ),
            (
                "ECR image backend".to_string(),
                "https://console.aws.amazon.com/ecr/repositories/private/123456789012/shop/backend?region=us-east-1".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

/// insta settings that redact what changes between runs (or would make the
/// snapshot about the fixture rather than the layout): digests, durations,
/// receiver ports, Slack timestamps.
fn redacted() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"sha256:[0-9a-f]{12,64}", "sha256:[digest]");
    s.add_filter(
        r"\b\d+m \d{2}s\b|\b\d+h \d{2}m\b|\b\d+(\.\d+)?(ms|s)\b",
        "[duration]",
    );
    s.add_filter(r"127\.0\.0\.1:\d+", "[receiver]");
    s.add_filter(r"\b\d{10}\.\d{6}\b", "[ts]");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Recorded requests as method, path, query and body (headers vary with
/// versions and are asserted separately).
fn calls(r: &Receiver) -> Vec<Value> {
    r.requests()
        .into_iter()
        .map(|q| json!({"call": format!("{} {}{}", q["method"].as_str().unwrap(), q["path"].as_str().unwrap(), if q["query"].as_str().unwrap_or("").is_empty() { String::new() } else { format!("?{}", q["query"].as_str().unwrap()) }), "body": q["body"]}))
        .collect()
}

/// Realistic GitHub answers for what octocrab deserialises.
fn github_defaults(github: &Receiver) {
    github.default_response(json!([
        {"match": "GET /api/v3/repos/acme/shop/deployments", "status": 200, "body": []},
        {"match": "POST /api/v3/repos/acme/shop/deployments", "status": 201,
         "body": {"id": 4242, "sha": SHA, "ref": SHA, "task": "deploy", "environment": "production", "payload": {}}},
        {"match": "POST /api/v3/repos/acme/shop/deployments/\\d+/statuses", "status": 201,
         "body": {"id": "{{n}}", "state": "in_progress"}},
        {"match": "GET /api/v3/repos/acme/shop/issues/\\d+/comments", "status": 200, "body": []},
        {"match": "POST /api/v3/repos/acme/shop/issues/\\d+/comments", "status": 201, "body": {"id": 9001, "body": "created"}},
        {"match": "PATCH /api/v3/repos/acme/shop/issues/comments/\\d+", "status": 200, "body": {"id": "{{n}}", "body": "updated"}},
    ]));
}

fn slack_bot_defaults(slack: &Receiver) {
    slack.default_response(json!([
        {"match": "POST /api/chat.postMessage", "status": 200, "body": {"ok": true, "channel": "C0DEPLOYS", "ts": "1700000000.000100"}},
        {"match": "POST /api/chat.update", "status": 200, "body": {"ok": true, "channel": "C0DEPLOYS", "ts": "1700000000.000100"}},
    ]));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn quiet_actions() -> Actions {
    Actions::new(false, None, None)
}

#[test]
fn slack_webhook_payloads_for_success_failure_and_rollback() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    github_defaults(&github);
    let fx = Fixture::push(&github.url, &slack.url).webhook(&slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    for (name, result) in [
        ("success", RunResult::Success),
        ("failure", RunResult::Failure),
        ("rollback", RunResult::RolledBack),
    ] {
        let report = report(result);
        let mut n = Notifier::new(&plan, &settings, &actions);
        let warnings = rt().block_on(async {
            n.start(&plan).await;
            n.finish(&plan, &report).await
        });
        assert_eq!(warnings, vec![], "{name}: Slack reporting warned");
        let recorded: Vec<Value> = slack
            .requests()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap().starts_with("/services/"))
            .collect();
        assert_eq!(recorded.len(), 1, "{name}: one webhook post per run");
        let body = &recorded[0]["body"];
        let text = body.to_string();
        assert!(
            text.contains("&lt;fast&gt; &amp; small"),
            "{name}: commit subject is escaped: {text}"
        );
        assert!(!text.contains("<fast>"));
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        redacted().bind(|| insta::assert_json_snapshot!(format!("slack_webhook_{name}"), body));
        http_reset(&slack);
    }
    // Only the rollback names what is serving; only the failure shows events.
    let rollback = fastdeploy::report::slack::result_message(&plan, &report(RunResult::RolledBack));
    assert!(
        serde_json::to_string(&rollback.blocks)
            .unwrap()
            .contains("rolled-back (serving shop-backend:42)")
    );
    let failure = fastdeploy::report::slack::result_message(&plan, &report(RunResult::Failure));
    assert!(
        serde_json::to_string(&failure.blocks)
            .unwrap()
            .contains("Last service events of backend")
    );
}

fn http_reset(r: &Receiver) {
    crate::support::sandbox::http_post_json(&format!("{}/__reset", r.url), &json!({}));
}

#[test]
fn slack_bot_posts_deploying_then_updates_that_message() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    slack_bot_defaults(&slack);
    github_defaults(&github);
    let fx = Fixture::push(&github.url, &slack.url).bot("#deploys");
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let mut n = Notifier::new(&plan, &settings, &actions);
    let rt = rt();
    rt.block_on(n.start(&plan));
    // The start message is out before the deploy ends.
    assert_eq!(slack.requests().len(), 1);
    let warnings = rt.block_on(n.finish(&plan, &report(RunResult::Success)));
    assert_eq!(warnings, vec![]);
    let requests = slack.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r["headers"]["authorization"], format!("Bearer {BOT_TOKEN}"));
    }
    assert_eq!(requests[0]["path"], "/api/chat.postMessage");
    assert_eq!(requests[0]["body"]["channel"], "#deploys");
    // chat.update needs the channel id Slack answered with, and the ts.
    assert_eq!(requests[1]["path"], "/api/chat.update");
    assert_eq!(requests[1]["body"]["channel"], "C0DEPLOYS");
    assert_eq!(requests[1]["body"]["ts"], "1700000000.000100");
    redacted().bind(|| insta::assert_json_snapshot!("slack_bot_start_then_update", calls(&slack)));
}

#[test]
fn slack_on_failure_skips_a_success_and_posts_no_start_message() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    slack_bot_defaults(&slack);
    github_defaults(&github);
    let fx = Fixture::push(&github.url, &slack.url)
        .bot("#deploys")
        .input("INPUT_SLACK_ON", "failure");
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let rt = rt();
    let mut n = Notifier::new(&plan, &settings, &actions);
    rt.block_on(async {
        n.start(&plan).await;
        n.finish(&plan, &report(RunResult::Success)).await
    });
    assert_eq!(
        slack.requests().len(),
        0,
        "slack-on: failure posted for a success"
    );
    let mut n = Notifier::new(&plan, &settings, &actions);
    rt.block_on(async {
        n.start(&plan).await;
        n.finish(&plan, &report(RunResult::RolledBack)).await
    });
    let paths: Vec<String> = slack
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, vec!["/api/chat.postMessage"]);
}

#[test]
fn github_deployment_and_statuses_for_success_and_rollback() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    github_defaults(&github);
    let fx = Fixture::push(&github.url, &slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    for (name, result) in [
        ("success", RunResult::Success),
        ("rollback", RunResult::RolledBack),
    ] {
        let mut n = Notifier::new(&plan, &settings, &actions);
        let warnings = rt().block_on(async {
            n.start(&plan).await;
            n.finish(&plan, &report(result)).await
        });
        assert_eq!(warnings, vec![], "{name}");
        let requests = github.requests();
        for r in &requests {
            assert_eq!(
                r["headers"]["authorization"],
                format!("Bearer {GITHUB_TOKEN}")
            );
        }
        let statuses: Vec<&Value> = requests
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/statuses"))
            .collect();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0]["body"]["state"], "in_progress");
        let last = &statuses[1]["body"];
        assert_eq!(
            last["log_url"],
            format!("https://github.com/acme/shop/actions/runs/{RUN_ID}")
        );
        match result {
            RunResult::Success => {
                assert_eq!(last["state"], "success");
                assert_eq!(last["environment_url"], "https://shop.example.com");
            }
            _ => {
                assert_eq!(last["state"], "failure");
                assert!(last.get("environment_url").is_none());
                assert!(
                    last["description"]
                        .as_str()
                        .unwrap()
                        .contains("shop-backend:42")
                );
            }
        }
        redacted().bind(|| {
            insta::assert_json_snapshot!(format!("github_deployment_{name}"), calls(&github))
        });
        http_reset(&github);
        github_defaults(&github);
    }
}

/// A run killed and started again must not create a second
/// deployment for the same run attempt.
#[test]
fn github_rerun_of_the_same_attempt_reuses_its_deployment() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    github_defaults(&github);
    github.script(json!([{
        "match": "GET /api/v3/repos/acme/shop/deployments", "status": 200, "times": 2,
        "body": [
            {"id": 778, "sha": SHA, "environment": "production", "payload": {"fastdeploy": {"run_id": RUN_ID, "run_attempt": 2}}},
            {"id": 777, "sha": SHA, "environment": "production", "payload": {"fastdeploy": {"run_id": RUN_ID, "run_attempt": 1}}},
            {"id": 700, "sha": SHA, "environment": "production", "payload": "{}"}
        ]
    }]));
    let fx = Fixture::push(&github.url, &slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let rt = rt();
    let mut n = Notifier::new(&plan, &settings, &actions);
    rt.block_on(n.start(&plan));
    let requests = github.requests();
    let query = requests[0]["query"].as_str().unwrap();
    assert!(
        query.contains(&format!("sha={SHA}")) && query.contains("environment=production"),
        "{query}"
    );
    assert!(
        !requests.iter().any(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/deployments")),
        "created a duplicate"
    );
    assert_eq!(
        requests.last().unwrap()["path"],
        "/api/v3/repos/acme/shop/deployments/777/statuses"
    );

    // Attempt 3 is a new attempt: it gets its own deployment.
    http_reset(&github);
    github_defaults(&github);
    let fx3 = Fixture::push(&github.url, &slack.url).input("GITHUB_RUN_ATTEMPT", "3");
    let settings3 = fx3.settings();
    let plan3 = fx3.plan(&settings3);
    let mut n3 = Notifier::new(&plan3, &settings3, &actions);
    rt.block_on(n3.start(&plan3));
    let created: Vec<Value> = github
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/deployments"))
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["body"]["payload"]["fastdeploy"]["run_attempt"],
        3
    );
    assert_eq!(created[0]["body"]["ref"], SHA);
    assert_eq!(created[0]["body"]["required_contexts"], json!([]));
}

#[test]
fn pull_request_comment_is_updated_not_repeated() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    github_defaults(&github);
    let fx = Fixture::pull_request(&github.url, &slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    assert_eq!(
        plan.notifications.github.as_ref().unwrap().pr_comment,
        Some(57)
    );
    let actions = quiet_actions();
    let mut built = report(RunResult::Built);
    for c in &mut built.components {
        c.result = RunResult::Built;
        c.deploy = None;
    }
    built.result = RunResult::Built;
    built.environment = None;

    // First push: no comment of ours yet, so one is created.
    let rt = rt();
    let mut n = Notifier::new(&plan, &settings, &actions);
    n.set_baseline(
        "backend",
        summary::Baseline {
            branch: "main".into(),
            image_bytes: Some(88_080_384),
            context_bytes: Some(12_582_912),
        },
    );
    let warnings = rt.block_on(async {
        n.start(&plan).await;
        n.finish(&plan, &built).await
    });
    assert_eq!(warnings, vec![]);
    let requests = github.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r["path"].as_str().unwrap().contains("/deployments")),
        "a PR build made a deployment"
    );
    let posted: Vec<&Value> = requests.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0]["path"],
        "/api/v3/repos/acme/shop/issues/57/comments"
    );
    let body = posted[0]["body"]["body"].as_str().unwrap().to_string();
    assert!(body.starts_with(summary::PR_COMMENT_MARKER));
    assert!(
        body.contains("+1.4 MB"),
        "change against main is shown: {body}"
    );
    assert!(body.contains("DF003"));
    redacted().bind(|| insta::assert_snapshot!("github_pr_comment", body));

    // Next push: the comment with our marker (among others) is updated.
    http_reset(&github);
    github_defaults(&github);
    github.script(json!([{
        "match": "GET /api/v3/repos/acme/shop/issues/57/comments", "status": 200,
        "body": [{"id": 31, "body": "LGTM"}, {"id": 32, "body": format!("{}\nold numbers", summary::PR_COMMENT_MARKER)}]
    }]));
    let mut n = Notifier::new(&plan, &settings, &actions);
    let warnings = rt.block_on(n.finish(&plan, &built));
    assert_eq!(warnings, vec![]);
    let requests = github.requests();
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r["method"] != "GET")
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        writes,
        vec!["PATCH /api/v3/repos/acme/shop/issues/comments/32"]
    );
}

#[test]
fn job_summary_for_success_failure_and_rollback() {
    let fx = Fixture::push("http://127.0.0.1:9", "http://127.0.0.1:9");
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    for (name, result) in [
        ("success", RunResult::Success),
        ("failure", RunResult::Failure),
        ("rollback", RunResult::RolledBack),
    ] {
        let md = summary::render(&plan, &report(result));
        let table_rows = md.lines().filter(|l| l.starts_with("| ")).count();
        assert_eq!(table_rows, 3, "header and one row per component:\n{md}");
        let warnings_at = md.find("#### Warnings").expect("warnings section");
        let links_at = md.find("#### Links").expect("links section");
        assert!(md.find("| backend").unwrap() < warnings_at && warnings_at < links_at);
        assert!(
            md.contains("[production](https://shop.example.com)"),
            "the environment's URL: {md}"
        );
        redacted().bind(|| insta::assert_snapshot!(format!("job_summary_{name}"), md));
    }
}

/// CodeBuild builds are billed in the summary: one row per build with its
/// compute type, time, billed minutes and cost, the run's total, the price
/// table's region and date, and a rebuild's reason under the components.
#[test]
fn job_summary_shows_codebuild_minutes_cost_and_why_a_component_was_rebuilt() {
    use fastdeploy::image::billing::Billing;
    let fx = Fixture::push("http://127.0.0.1:9", "http://127.0.0.1:9");
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let mut r = report(RunResult::Success);
    let billing = |compute: &str, seconds: f64, minutes: u32, cost: Option<f64>| Billing {
        compute_type: compute.into(),
        environment_type: "LINUX_CONTAINER".into(),
        seconds,
        billed_minutes: minutes,
        cost_usd: cost,
        price_region: "us-east-1",
        platform: None,
    };
    r.components[0].build.codebuild_billing =
        vec![billing("BUILD_GENERAL1_MEDIUM", 130.0, 3, Some(0.03))];
    r.components[1].build.codebuild_billing = vec![billing("BUILD_GENERAL1_LARGE", 50.0, 1, None)];
    r.components[0].build.rebuilt_because =
        Some("base `python:3.12-slim` moved to sha256:abc".into());
    let md = summary::render(&plan, &r);
    for line in [
        "| CodeBuild build | Compute type | Time | Billed minutes | Cost |",
        "| backend | BUILD_GENERAL1_MEDIUM | 2m 10s | 3 | $0.030 |",
        "| frontend | BUILD_GENERAL1_LARGE | 50.0s | 1 | no price for BUILD_GENERAL1_LARGE in fastdeploy's table |",
        "| **total** | | | 4 | $0.030 for the priced builds |",
        "- `backend` rebuilt: base `python:3.12-slim` moved to sha256:abc",
    ] {
        assert!(md.lines().any(|l| l == line), "missing {line:?} in:\n{md}");
    }
    let region = plan.aws_region.as_deref().unwrap_or("us-east-1");
    let note = if region == "us-east-1" {
        String::new()
    } else {
        format!("; {region}'s prices differ")
    };
    assert!(
        md.contains(&format!(
            "prices: us-east-1 on-demand, as of 2026-12{note}."
        )),
        "{md}"
    );
}

#[test]
fn slack_503_twice_then_200_delivers_the_message_once() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    slack.script(json!([{"match": "POST /services/.*", "status": 503, "body": {"error": "unavailable"}, "times": 2}]));
    let fx = Fixture::push(&github.url, &slack.url).webhook(&slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let mut n = Notifier::new(&plan, &settings, &actions);
    let started = Instant::now();
    let warnings = rt().block_on(n.finish(&plan, &report(RunResult::Success)));
    assert_eq!(warnings, vec![]);
    // Backoff is scaled by FASTDEPLOY_DELAY_SCALE: no real sleeping.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let requests = slack.requests();
    assert_eq!(requests.len(), 3, "two 503s then the delivery");
    assert!(
        requests.windows(2).all(|w| w[0]["body"] == w[1]["body"]),
        "the retried message changed"
    );
}

#[test]
fn slack_429_with_retry_after_waits_and_delivers_once() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    slack_bot_defaults(&slack);
    slack.script(json!([{"match": "POST /api/chat.postMessage", "status": 429, "headers": {"Retry-After": "1"},
                         "body": {"ok": false, "error": "ratelimited"}}]));
    let fx = Fixture::push(&github.url, &slack.url)
        .bot("#deploys")
        .input("INPUT_SLACK_ON", "failure");
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let mut n = Notifier::new(&plan, &settings, &actions);
    let started = Instant::now();
    let warnings = rt().block_on(n.finish(&plan, &report(RunResult::Failure)));
    let waited = started.elapsed();
    assert_eq!(warnings, vec![]);
    // Retry-After is Slack's instruction: honoured as given, not scaled.
    assert!(
        waited >= Duration::from_secs(1),
        "did not wait for Retry-After: {waited:?}"
    );
    let paths: Vec<String> = slack
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        vec!["/api/chat.postMessage", "/api/chat.postMessage"]
    );
}

/// Runs the reporting scenarios below in a child process of this test
/// binary, so the test sees exactly what a runner's log would show (stdout
/// with workflow commands, stderr with debug tracing).
#[test]
fn reporting_failures_are_warnings_and_no_log_line_carries_a_secret() {
    let (github, slack) = (Receiver::start(), Receiver::start());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "reporting::child_reporting_failures",
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FASTDEPLOY_REPORTING_GITHUB", &github.url)
        .env("FASTDEPLOY_REPORTING_SLACK", &slack.url)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("child scenarios done"),
        "the child ran no scenarios:\n{stdout}"
    );

    // The runner swallows `::add-mask::` lines; every other line is shown.
    for (line_no, line) in stdout.lines().chain(stderr.lines()).enumerate() {
        if line.starts_with("::add-mask::") {
            continue;
        }
        for secret in [
            WEBHOOK_SECRET,
            BOT_TOKEN,
            GITHUB_TOKEN,
            "S3cret",
            "hooks.example/services",
        ] {
            assert!(
                !line.contains(secret),
                "log line {line_no} carries a secret: {line}"
            );
        }
    }
    for secret in [WEBHOOK_SECRET, BOT_TOKEN, GITHUB_TOKEN] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("::add-mask::") && l.contains(secret)),
            "{secret} was never masked"
        );
    }
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::warning"))
        .collect();
    let expect = [
        "Slack could not be reached", // 503 for good
        "Slack could not be reached", // nothing listening
        "`slack-webhook-url` is not an http(s) URL",
        "check `slack-channel`",                 // channel_not_found
        "put the bot's xoxb- token",             // invalid_auth
        "add `permissions: deployments: write`", // 403
    ];
    assert_eq!(
        warnings.len(),
        expect.len(),
        "one warning per problem:\n{}",
        warnings.join("\n")
    );
    for (w, e) in warnings.iter().zip(expect) {
        assert!(w.contains(e), "expected `{e}` in {w}");
    }
}

#[test]
#[ignore = "run as a child process by reporting_failures_are_warnings_and_no_log_line_carries_a_secret"]
fn child_reporting_failures() {
    let github = ExternalReceiver(
        std::env::var("FASTDEPLOY_REPORTING_GITHUB").expect("run by the parent test"),
    );
    let slack = ExternalReceiver(
        std::env::var("FASTDEPLOY_REPORTING_SLACK").expect("run by the parent test"),
    );
    // libtest printed `test ... ` without a newline; start on a fresh line.
    println!("\nchild start");
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("debug")
        .try_init();
    let actions = Actions::new(true, None, None);
    let rt = rt();
    github.post("__default", json!([
        {"match": "GET /api/v3/repos/acme/shop/deployments", "status": 200, "body": []},
        {"match": "POST /api/v3/repos/acme/shop/deployments", "status": 403,
         "body": {"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment", "status": "403"}},
    ]));
    slack.post(
        "__default",
        json!([
            {"match": "POST /services/.*", "status": 503, "body": {"error": "down"}},
            {"match": "POST /api/chat.postMessage", "status": 200, "body": {"ok": false, "error": "invalid_auth"}},
        ]),
    );
    slack.post(
        "__script",
        json!([{"match": "POST /api/chat.postMessage", "status": 200, "times": 1, "body": {"ok": false, "error": "channel_not_found"}}]),
    );

    let (gh, sl) = (github.0.as_str(), slack.0.as_str());
    let run = |fx: Fixture, result: RunResult| -> Vec<Warning> {
        let settings = fx.settings();
        let plan = fx.plan(&settings);
        // `finish` takes the report by shared reference: reporting cannot
        // change the run's result, whatever happens here.
        let report = report(result);
        settings.mask_secrets(&actions);
        let mut n = Notifier::new(&plan, &settings, &actions);
        rt.block_on(async {
            n.start(&plan).await;
            n.finish(&plan, &report).await
        })
    };
    let no_github = |fx: Fixture| fx.input("GITHUB_TOKEN", "");

    // Slack down for good (503 on every attempt): the deploy still succeeds.
    let w = run(
        no_github(Fixture::push(gh, sl).webhook(sl)),
        RunResult::Success,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    // Nothing listening at all.
    let dead = format!(
        "http://127.0.0.1:{}/services/T0001/B0002/{WEBHOOK_SECRET}",
        crate::support::sandbox::free_port()
    );
    let w = run(
        no_github(Fixture::push(gh, sl).input("INPUT_SLACK_WEBHOOK_URL", &dead)),
        RunResult::Success,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    // A webhook URL without a scheme.
    let bad = format!("hooks.example/services/T0001/B0002/{WEBHOOK_SECRET}");
    let w = run(
        no_github(Fixture::push(gh, sl).input("INPUT_SLACK_WEBHOOK_URL", &bad)),
        RunResult::Failure,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    // Channel that does not exist (scripted once), then a rejected token:
    // each one warning, and no second try at the end of the run.
    let w = run(
        no_github(Fixture::push(gh, sl).bot("#nope")),
        RunResult::Success,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    let w = run(
        no_github(Fixture::push(gh, sl).bot("#deploys")),
        RunResult::RolledBack,
    );
    assert_eq!(w.len(), 1, "{w:?}");
    // A GitHub token without `deployments: write`.
    let w = run(Fixture::push(gh, sl), RunResult::Success);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].message.contains("deployments: write"));
    println!("child scenarios done");
}

/// A receiver started by the parent test, addressed by URL.
struct ExternalReceiver(String);

impl ExternalReceiver {
    fn post(&self, control: &str, body: Value) {
        crate::support::sandbox::http_post_json(&format!("{}/{control}", self.0), &body);
    }
}

/// End to end, against the stateful GitHub emulation: a run killed
/// after `start` and started again (same attempt) leaves one deployment,
/// finished by the second run; two pushes to a PR leave one comment.
#[test]
fn killed_and_rerun_attempt_leaves_one_deployment_and_one_pr_comment() {
    let (github, slack) = (Receiver::start_github(), Receiver::start());
    let fx = Fixture::push(&github.url, &slack.url);
    let settings = fx.settings();
    let plan = fx.plan(&settings);
    let actions = quiet_actions();
    let rt = rt();
    // First run: started, then killed before `finish`.
    let mut killed = Notifier::new(&plan, &settings, &actions);
    rt.block_on(killed.start(&plan));
    drop(killed);
    let mut again = Notifier::new(&plan, &settings, &actions);
    let warnings = rt.block_on(async {
        again.start(&plan).await;
        again.finish(&plan, &report(RunResult::Success)).await
    });
    assert_eq!(warnings, vec![]);
    let api = format!("{}/api/v3/repos/acme/shop", github.url);
    let deployments = crate::support::sandbox::http_get_json(&format!(
        "{api}/deployments?sha={SHA}&environment=production"
    ));
    let deployments = deployments.as_array().unwrap();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let id = deployments[0]["id"].as_u64().unwrap();
    let statuses =
        crate::support::sandbox::http_get_json(&format!("{api}/deployments/{id}/statuses"));
    let states: Vec<&str> = statuses
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["in_progress", "in_progress", "success"]);

    let pr = Fixture::pull_request(&github.url, &slack.url);
    let pr_settings = pr.settings();
    let pr_plan = pr.plan(&pr_settings);
    let mut built = report(RunResult::Built);
    for c in &mut built.components {
        c.result = RunResult::Built;
        c.deploy = None;
    }
    built.result = RunResult::Built;
    for image_bytes in [89_443_532, 99_443_532] {
        built.components[0].build.image_bytes = Some(image_bytes);
        let mut n = Notifier::new(&pr_plan, &pr_settings, &actions);
        let warnings = rt.block_on(n.finish(&pr_plan, &built));
        assert_eq!(warnings, vec![]);
    }
    let comments = crate::support::sandbox::http_get_json(&format!("{api}/issues/57/comments"));
    let comments = comments.as_array().unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0]["body"].as_str().unwrap().contains("99.4 MB"),
        "the comment shows the latest push"
    );
}
