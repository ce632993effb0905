//! Runtime configuration through the binary against the full sandbox:
//! `env` and `secrets` per environment, every reference checked (it exists;
//! the task execution role may read it, by IAM's policy simulation) before
//! anything is built or pushed, and rendered into the task definition the
//! service runs.

use serde_json::Value;

use crate::support::run::{Ran, ecs_view, registry_digest, run};
use crate::support::sandbox::{ACCOUNT, FullSandbox, REGION, REPOSITORY, block_on, create_role};

const EXECUTION_ROLE: &str = "shop-web-execution";

/// The shop's config with runtime configuration for `web`, rendered from
/// the repository's task definition file (it names the execution role).
fn config(extra_secret: &str) -> String {
    format!(
        "\
version: 1
components:
  web:
    context: .
    repository: acme/shop
    service: shop
    container: [web]
    task-definition: deploy/web-task.json
    env:
      LOG_LEVEL: info
      PORT: 8080
    secrets:
      DATABASE_URL: ssm:/shop/production/database-url{extra_secret}
  thumbs:
    context: thumbs
    repository: acme/shop-thumbs
    function: shop-thumbs
environments:
  production:
    branches: [main]
    cluster: demo
    overrides:
      web:
        env:
          LOG_LEVEL: warning
        secrets:
          STRIPE_KEY: secretsmanager:prod/stripe:key
"
    )
}

fn task_file() -> String {
    serde_json::json!({
        "family": "shop-web",
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/{EXECUTION_ROLE}"),
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [{
            "name": "web",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "essential": true,
            "memory": 128,
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "KEEP_ME", "value": "1"}, {"name": "LOG_LEVEL", "value": "debug"}]
        }]
    })
    .to_string()
}

/// The parameter and the secret the config names, as a team creates them.
fn seed_references(sb: &FullSandbox) -> String {
    block_on(async {
        let sdk = sb.moto.sdk_config().await;
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        ssm.put_parameter()
            .name("/shop/production/database-url")
            .value("postgres://shop:hunter2@db/shop")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        let out = sm
            .create_secret()
            .name("prod/stripe")
            .secret_string(r#"{"key":"sk_live_1"}"#)
            .send()
            .await
            .unwrap();
        out.arn().unwrap().to_string()
    })
}

/// An inline policy on the execution role, through IAM's query API.
fn allow_reads(sb: &FullSandbox) {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters",
             "Resource": format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/production/*")},
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/stripe-*")}
        ]
    });
    let resp = reqwest::blocking::Client::new()
        .post(&sb.moto.endpoint)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .form(&[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", EXECUTION_ROLE),
            ("PolicyName", "read-shop-secrets"),
            ("PolicyDocument", &policy.to_string()),
        ])
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{}",
        resp.text().unwrap_or_default()
    );
}

fn deploy(sb: &FullSandbox) -> Ran {
    let _ = std::fs::remove_file(sb.output_file());
    run(sb.config_command())
}

/// The `web` container of the service's task definition, as ECS describes it.
fn web_container(sb: &FullSandbox) -> Value {
    let arn = ecs_view(sb).task_definition;
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let td = ecs
            .describe_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .unwrap();
        let c = &td.task_definition().unwrap().container_definitions()[0];
        let env: serde_json::Map<String, Value> = c
            .environment()
            .iter()
            .map(|kv| (kv.name().unwrap().to_string(), kv.value().unwrap().into()))
            .collect();
        let secrets: serde_json::Map<String, Value> = c
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().into()))
            .collect();
        serde_json::json!({"environment": env, "secrets": secrets, "image": c.image()})
    })
}

#[test]
fn runtime_configuration_is_checked_before_building_and_reaches_the_task_definition() {
    let mut sb = FullSandbox::start_with_config();
    create_role(&sb.moto, EXECUTION_ROLE);
    let stripe_arn = seed_references(&sb);
    std::fs::create_dir_all(sb.workspace.join("deploy")).unwrap();
    std::fs::write(sb.workspace.join("deploy/web-task.json"), task_file()).unwrap();
    let missing = "\n      SENTRY_DSN: ssm:/shop/production/sentry-dsn";
    sb.commit_change("fastdeploy.yml", &config(missing));
    let revisions_before = ecs_view(&sb).revisions;

    // A parameter that does not exist: exit 2 before anything is built.
    let ran = deploy(&sb);
    assert_eq!(ran.code, 2, "{}", ran.log());
    for said in [
        "component `web`",
        "`SENTRY_DSN`",
        "SSM parameter /shop/production/sentry-dsn",
        "does not exist",
        "`components.web.secrets.SENTRY_DSN` (",
        "fastdeploy.yml line 14, column 19)",
    ] {
        assert!(ran.stderr.contains(said), "names {said}: {}", ran.log());
    }
    assert!(!ran.stdout.contains("::group::build"), "{}", ran.log());
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production"),
        None,
        "nothing pushed"
    );
    assert_eq!(ecs_view(&sb).revisions, revisions_before);

    // Every reference exists, but the execution role may not read them.
    sb.commit_change("fastdeploy.yml", &config(""));
    let ran = deploy(&sb);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        ran.stderr.contains(&format!(
            "task execution role arn:aws:iam::{ACCOUNT}:role/{EXECUTION_ROLE}"
        )) && ran.stderr.contains("`DATABASE_URL` (ssm:GetParameters on")
            && ran.stderr.contains("implicitDeny"),
        "names the role, the variable and the decision: {}",
        ran.log()
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production"),
        None,
        "nothing pushed"
    );

    // Allowed: the production override and both references reach the revision.
    allow_reads(&sb);
    let ran = deploy(&sb);
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert!(
        ran.stdout
            .contains("may read `DATABASE_URL`, `STRIPE_KEY` (IAM policy simulation)"),
        "{}",
        ran.log()
    );
    let web = web_container(&sb);
    assert_eq!(web["environment"]["LOG_LEVEL"], "warning", "{web}");
    assert_eq!(web["environment"]["PORT"], "8080", "{web}");
    assert_eq!(
        web["environment"]["KEEP_ME"], "1",
        "names not in the config are kept: {web}"
    );
    assert_eq!(
        web["secrets"]["DATABASE_URL"],
        format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/production/database-url"),
        "{web}"
    );
    assert_eq!(
        web["secrets"]["STRIPE_KEY"],
        format!("{stripe_arn}:key::"),
        "{web}"
    );
    assert!(web["image"].as_str().unwrap().contains("@sha256:"), "{web}");
    assert!(
        !ran.log().contains("hunter2") && !ran.log().contains("sk_live"),
        "fastdeploy never reads a secret's value: {}",
        ran.log()
    );
    let revisions = ecs_view(&sb).revisions;

    // A re-run changes nothing, even when IAM will not say what the role may do.
    sb.moto.control(
        "iam/config",
        serde_json::json!({"simulate": "access-denied"}),
    );
    let again = deploy(&sb);
    assert_eq!(again.code, 0, "{}", again.log());
    assert!(
        again.stdout.contains("::notice")
            && again
                .stdout
                .contains("could not check that task execution role")
            && again.stdout.contains("iam:SimulatePrincipalPolicy"),
        "says what it could not check: {}",
        again.log()
    );
    assert_eq!(
        ecs_view(&sb).revisions,
        revisions,
        "no new revision: {}",
        again.log()
    );
    sb.moto
        .control("iam/config", serde_json::json!({"reset": true}));

    // Nothing to change, nothing drifted.
    let diff = run(sb.config_command_with(&["plan", "--diff", "--exit-code"]));
    assert_eq!(diff.code, 0, "{}", diff.log());
    assert!(
        diff.stdout.contains("the deploy changes:\n    nothing\n"),
        "{}",
        diff.log()
    );

    // A console edit (a revision fastdeploy did not register) and a config change.
    console_edit(&sb);
    sb.commit_change(
        "fastdeploy.yml",
        &config("").replace("LOG_LEVEL: warning", "LOG_LEVEL: error"),
    );
    let diff = run(sb.config_command_with(&["plan", "--diff", "--exit-code"]));
    assert_eq!(diff.code, 3, "changes and drift: {}", diff.log());
    for said in [
        "web → ECS service shop in cluster demo",
        "container web: env LOG_LEVEL changed: \"warning\" → \"error\"",
        "container web: env HOTFIX removed",
        "drift since fastdeploy's last deploy (shop-web:3 runs, registered outside fastdeploy; fastdeploy's last: shop-web:2):\n    task memory: unset → 1024\n    container web: env HOTFIX added: \"1\"",
        "task memory: unset → 1024",
        "thumbs → Lambda function shop-thumbs (alias live)",
    ] {
        assert!(diff.stdout.contains(said), "{said}: {}", diff.log());
    }
    assert_eq!(
        ecs_view(&sb).revisions.len(),
        revisions.len() + 1,
        "the diff registered nothing"
    );
    let summary = std::fs::read_to_string(sb.summary_file()).unwrap_or_default();
    assert!(summary.contains("plan --diff: `production`"), "{summary}");

    // On a pull request, `plan --diff` compares with main's environment.
    let mut on_pr = pull_request(&sb, &["plan", "--diff", "--exit-code"]);
    on_pr.env_remove("INPUT_ENVIRONMENT");
    let diff = run(on_pr);
    assert_eq!(diff.code, 3, "{}", diff.log());
    assert!(
        diff.stdout.contains("environment `production`")
            && diff
                .stdout
                .contains("container web: env HOTFIX added: \"1\""),
        "{}",
        diff.log()
    );

    // A pull request's build carries the same diff, against main's environment.
    let ran = run(pull_request(&sb, &["run"]));
    assert_eq!(ran.code, 0, "{}", ran.log());
    let comment = sb
        .github
        .requests()
        .into_iter()
        .rev()
        .find(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("/issues/57/comments")
        })
        .map(|r| r["body"]["body"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    for said in [
        "What a deploy of this commit to <code>production</code> would change",
        "image of web: 127.0.0.1:",
        "container web: env LOG_LEVEL changed: \"warning\" → \"error\"",
        "drift since fastdeploy's last deploy",
    ] {
        assert!(
            comment.contains(said),
            "{said} in the PR comment: {comment}\n{}",
            ran.log()
        );
    }
    assert_eq!(
        ecs_view(&sb).revisions.len(),
        revisions.len() + 1,
        "a PR deploys nothing"
    );
}

/// `fastdeploy run` for a pull request into main at the workspace's commit.
fn pull_request(sb: &FullSandbox, args: &[&str]) -> std::process::Command {
    let fixture =
        crate::support::sandbox::repo_root().join("tests/fixtures/events/pull_request.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    event["pull_request"]["head"]["sha"] = sb.sha.clone().into();
    let path = sb.workspace.parent().unwrap().join("pr-event.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let mut cmd = sb.config_command_with(args);
    cmd.env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &path)
        .env("GITHUB_REF", "refs/pull/57/merge");
    cmd
}

/// What a console edit does: a new revision from the live one with a
/// variable and task memory added, and the service moved to it.
fn console_edit(sb: &FullSandbox) {
    let live = ecs_view(sb).task_definition;
    block_on(async {
        use aws_sdk_ecs::types::KeyValuePair;
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let td = ecs
            .describe_task_definition()
            .task_definition(&live)
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        let mut web = td.container_definitions()[0].clone();
        web.environment
            .get_or_insert_with(Vec::new)
            .push(KeyValuePair::builder().name("HOTFIX").value("1").build());
        let arn = ecs
            .register_task_definition()
            .family("shop-web")
            .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
            .set_network_mode(td.network_mode().cloned())
            .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
            .memory("1024")
            .container_definitions(web)
            .send()
            .await
            .unwrap()
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_string();
        ecs.update_service()
            .cluster(crate::support::sandbox::CLUSTER)
            .service(crate::support::sandbox::SERVICE)
            .task_definition(arn)
            .send()
            .await
            .unwrap();
    });
}
