//! `fastdeploy run` end to end, as the Actions runner starts it, against the
//! whole sandbox: a real buildah build pushed to a real registry,
//! ECS deployments that roll out or fail in moto, Slack and GitHub recorded.
//! Each test asserts what the run left behind: exit code, `$GITHUB_OUTPUT`,
//! the job summary, what the receivers got and what ECS now runs.
//!
//! Needs: buildah, busybox-static, docker-registry, apache2-utils, git, moto.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::run::{
    assert_groups_never_nest, ecs_view, github_deployments, github_states, image_output,
    registry_digest, run, slack_messages, task_definition_arn,
};
use crate::support::sandbox::{
    ACCOUNT, CLUSTER, ECR_PASSWORD, ECR_USER, FullSandbox, REGION, REPOSITORY, SERVICE,
    base64_encode, block_on,
};

#[test]
fn a_good_deploy_succeeds_and_ecs_runs_the_pushed_digest() {
    let sb = FullSandbox::start();
    let ran = run(sb.command());
    assert_eq!(ran.code, 0, "{}", ran.log());

    // Outputs agree with each other and with the registry.
    assert_eq!(
        sb.output("result").as_deref(),
        Some("success"),
        "{}",
        ran.log()
    );
    assert_eq!(sb.output("environment").as_deref(), Some("production"));
    let digest = sb.output("digest").unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "digest output {digest:?}"
    );
    let image = sb.output("image").unwrap();
    assert_eq!(image, format!("{}/{REPOSITORY}@{digest}", sb.registry.host));
    let sha_tag = format!("sha-{}", &sb.sha[..12]);
    assert_eq!(
        registry_digest(&sb, REPOSITORY, &sha_tag).as_deref(),
        Some(digest.as_str()),
        "the pushed tag names the digest"
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production").as_deref(),
        Some(digest.as_str())
    );
    let td = sb.output("task-definition-arn").unwrap();
    assert_eq!(td, task_definition_arn(2), "one new revision of the family");
    assert_eq!(
        sb.output("previous-task-definition-arn").as_deref(),
        Some(task_definition_arn(1).as_str())
    );
    assert!(
        sb.output("deployment-id")
            .is_some_and(|d| d.starts_with("ecs-svc/"))
    );
    let app = image_output(&sb);
    assert_eq!(app["result"], "success");
    assert_eq!(app["digest"], digest.as_str());
    assert_eq!(app["build-skipped"], false);
    assert_eq!(app["task-definition-arn"], td.as_str());

    // ECS serves exactly what the outputs say.
    let ecs = ecs_view(&sb);
    assert_eq!(ecs.task_definition, td);
    assert_eq!(ecs.images, vec![image.clone()]);
    assert_eq!(
        ecs.deployments.len(),
        1,
        "the old deployment drained: {:?}",
        ecs.deployments
    );
    assert_eq!(
        ecs.deployments[0],
        ("PRIMARY".into(), td.clone(), "COMPLETED".into())
    );

    // The job summary.
    let summary = sb.summary();
    assert!(
        summary.contains("success")
            && summary.contains("production")
            && summary.contains(&sb.sha[..7]),
        "{summary}"
    );
    assert!(
        summary.contains(&digest[..19]),
        "the summary names the digest: {summary}"
    );

    // Slack: one message to the webhook, about this commit.
    let slack = slack_messages(&sb);
    assert_eq!(slack.len(), 1, "{slack:#?}");
    assert_eq!(slack[0]["path"], "/services/T000/B000/XXXXE2E");
    assert!(
        slack[0]["body"].to_string().contains(&sb.sha[..7]),
        "{}",
        slack[0]["body"]
    );

    // GitHub: one deployment of this commit to production, in progress then success.
    let deployments = github_deployments(&sb);
    assert_eq!(deployments.len(), 1, "{deployments:#?}");
    assert_eq!(deployments[0]["sha"], sb.sha.as_str());
    assert_eq!(deployments[0]["environment"], "production");
    assert_eq!(
        github_states(&sb, &deployments[0]),
        ["in_progress", "success"]
    );
    assert!(ran.stdout.contains("result: success"), "{}", ran.log());
}

#[test]
fn an_unchanged_rerun_skips_the_build_registers_nothing_and_reuses_the_github_deployment() {
    let sb = FullSandbox::start();
    let first = run(sb.command());
    assert_eq!(first.code, 0, "{}", first.log());
    let digest = sb.output("digest").unwrap();
    let after_first = ecs_view(&sb);
    assert_eq!(after_first.revisions.len(), 2);

    // The same run (id and attempt) again, as when a killed run is restarted.
    std::fs::remove_file(sb.output_file()).unwrap();
    let second = run(sb.command());
    assert_eq!(second.code, 0, "{}", second.log());
    let app = image_output(&sb);
    assert_eq!(
        app["build-skipped"],
        true,
        "the content tag was found: {app}\n{}",
        second.log()
    );
    assert_eq!(
        sb.output("digest").as_deref(),
        Some(digest.as_str()),
        "the same image"
    );
    let result = sb.output("result").unwrap();
    assert!(
        result == "success" || result == "skipped",
        "nothing failed: {result}"
    );

    let after_second = ecs_view(&sb);
    assert_eq!(
        after_second.revisions, after_first.revisions,
        "no new task definition revision"
    );
    assert_eq!(after_second.task_definition, task_definition_arn(2));
    assert_eq!(
        after_second.deployments.len(),
        1,
        "no new deployment: {:?}",
        after_second.deployments
    );

    let deployments = github_deployments(&sb);
    assert_eq!(
        deployments.len(),
        1,
        "one GitHub deployment per run id and attempt: {deployments:#?}"
    );
    let created = sb
        .github
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/repos/acme/shop/deployments")
        .count();
    assert_eq!(created, 1);
}

/// A run killed outright and run again converges. The re-run
/// finds the GitHub deployment the first run made live, and the service
/// still serves exactly that commit's image, so the deployment must end
/// `success` again. Marking it `inactive` tells GitHub the environment no
/// longer runs the commit it runs.
#[test]
fn a_rerun_of_a_live_deploy_leaves_its_github_deployment_successful() {
    let sb = FullSandbox::start();
    let first = run(sb.command());
    assert_eq!(first.code, 0, "{}", first.log());
    let second = run(sb.command());
    assert_eq!(second.code, 0, "{}", second.log());
    assert!(
        second.stdout.contains("nothing to register or deploy"),
        "{}",
        second.log()
    );
    let deployments = github_deployments(&sb);
    assert_eq!(deployments.len(), 1);
    let states = github_states(&sb, &deployments[0]);
    assert_eq!(
        states.last().map(String::as_str),
        Some("success"),
        "{states:?}\n{}",
        second.log()
    );
}

#[test]
fn a_crashing_image_is_rolled_back_and_the_service_is_back_on_the_previous_revision() {
    let sb = FullSandbox::start();
    // Every image pushed to acme/shop crashes on start (the ECS sandbox's fail marker).
    sb.moto.control(
        "ecs/config",
        serde_json::json!({"fail_markers": [REPOSITORY]}),
    );
    let ran = run(sb.command());
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("rolled-back"),
        "{}",
        ran.log()
    );
    assert_eq!(
        sb.output("task-definition-arn").as_deref(),
        Some(task_definition_arn(2).as_str())
    );
    assert_eq!(image_output(&sb)["result"], "rolled-back");

    // The log says why: ECS's events and the stopped tasks' reasons.
    for needle in [
        "has started 2 tasks",
        "circuit breaker",
        "Essential container in task exited",
        "rolled back",
    ] {
        assert!(
            ran.stdout.contains(needle),
            "the log names `{needle}`:\n{}",
            ran.log()
        );
    }
    assert!(
        ran.stdout.contains(&format!(
            "service {SERVICE} is back on {}",
            fastdeploy::outcome::revision_label(&task_definition_arn(1))
        )),
        "{}",
        ran.log()
    );
    assert!(
        ran.stdout.contains("::error"),
        "the failure is an annotation:\n{}",
        ran.stdout
    );

    let ecs = ecs_view(&sb);
    assert_eq!(
        ecs.task_definition,
        task_definition_arn(1),
        "{:?}",
        ecs.deployments
    );
    assert_eq!(ecs.images, ["public.ecr.aws/nginx/nginx:1.27"]);
    assert!(
        ecs.deployments
            .iter()
            .any(|(s, td, r)| s == "PRIMARY" && *td == task_definition_arn(1) && r == "COMPLETED"),
        "{:?}",
        ecs.deployments
    );

    let summary = sb.summary();
    assert!(summary.contains("rolled"), "{summary}");
    let deployments = github_deployments(&sb);
    assert_eq!(deployments.len(), 1);
    assert_eq!(
        github_states(&sb, &deployments[0]),
        ["in_progress", "failure"]
    );
    assert_eq!(slack_messages(&sb).len(), 1, "the failure is posted");
}

/// No secret reaches the log, the summary or the outputs.
///
/// A secret may appear in exactly one place: the `::add-mask::<value>`
/// workflow command. That line is how the runner is told what to scrub; the
/// runner consumes it and never shows it, and it must carry the value (there
/// is no other way to register a mask). Every other line must not hold it,
/// because a value printed before its mask, or to stderr (which the runner
/// also shows), or into the summary/outputs files (which the runner does not
/// scrub), is a leak. RUNNER_DEBUG=1 turns on fastdeploy's debug tracing, as
/// a "re-run with debug logging" does, so debug detail is held to it too.
#[test]
fn no_secret_appears_outside_add_mask_commands() {
    let sb = FullSandbox::start();
    let webhook = format!("{}/services/T000/B000/XXXXSECRETHOOK", sb.slack.url);
    let bot_token = "xoxb-1234567890-secretBotTokenNotReal";
    let github_token = "ghs_secretGithubTokenNotReal0000000";
    let mut cmd = sb.command();
    cmd.env("INPUT_SLACK_WEBHOOK_URL", &webhook)
        .env("INPUT_SLACK_BOT_TOKEN", bot_token)
        .env("INPUT_SLACK_CHANNEL", "#deploys")
        .env("INPUT_GITHUB_TOKEN", github_token)
        .env("RUNNER_DEBUG", "1");
    let ran = run(cmd);
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert_eq!(sb.output("result").as_deref(), Some("success"));

    // The secrets were used (else their absence proves nothing).
    let slack = sb.slack.requests();
    assert!(
        slack.iter().any(|r| r["headers"]["authorization"].as_str() == Some(&format!("Bearer {bot_token}"))),
        "the bot token reached Slack: {slack:#?}"
    );
    let github = sb.github.requests();
    assert!(
        github.iter().any(|r| r["headers"]["authorization"]
            .as_str()
            .is_some_and(|a| a.contains(github_token))),
        "the GitHub token reached GitHub: {github:#?}"
    );

    let ecr_token = base64_encode(&format!("{ECR_USER}:{ECR_PASSWORD}"));
    let secrets = [
        webhook.as_str(),
        bot_token,
        github_token,
        ECR_PASSWORD,
        ecr_token.as_str(),
    ];
    let outputs = std::fs::read_to_string(sb.output_file()).unwrap();
    let summary = sb.summary();
    assert!(!summary.is_empty() && !outputs.is_empty());
    for secret in secrets {
        for (name, text) in [
            ("stdout", &ran.stdout),
            ("stderr", &ran.stderr),
            ("summary", &summary),
            ("outputs", &outputs),
        ] {
            for line in text.lines() {
                if name == "stdout" && line.starts_with("::add-mask::") {
                    continue;
                }
                assert!(
                    !line.contains(secret),
                    "{name} shows the secret {secret:?} in: {line}"
                );
            }
        }
    }
    // Each secret fastdeploy handles is masked (the ECR password in both forms).
    for secret in secrets {
        assert!(
            ran.stdout
                .lines()
                .any(|l| l == format!("::add-mask::{secret}")),
            "{secret:?} is never masked:\n{}",
            ran.stdout
        );
    }
}

/// The components of one run deploy concurrently and each is
/// judged on its own. `app` deploys fine while `worker`'s image crashes: the
/// run ends rolled-back (exit 1), `app` is live on its new revision, `worker`
/// is back on its previous one, and the outputs and summary say which is which.
#[test]
fn two_services_are_judged_on_their_own_and_the_run_fails_if_one_does() {
    use aws_sdk_ecs::types::{
        ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration,
    };
    let sb = FullSandbox::start();
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        ecs.register_task_definition()
            .family("worker")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("public.ecr.aws/nginx/nginx:1.27")
                    .essential(true)
                    .memory(128)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name("worker")
            .task_definition("worker:1")
            .desired_count(2)
            .deployment_configuration(
                DeploymentConfiguration::builder()
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
    });
    // Only images pushed to acme/worker crash.
    sb.moto.control(
        "ecs/config",
        serde_json::json!({"fail_markers": ["acme/worker"]}),
    );
    std::fs::write(
        sb.workspace.join("fastdeploy.yml"),
        "components:\n  app:\n    repository: acme/shop\n    service: shop\n    container: [web]\n  \
         worker:\n    repository: acme/worker\n    service: worker\n    container: [web]\n",
    )
    .unwrap();
    let mut cmd = sb.command();
    // The single-component inputs would be ambiguous with two components.
    for k in ["INPUT_REPOSITORY", "INPUT_SERVICE", "INPUT_CONTAINER"] {
        cmd.env_remove(k);
    }
    let ran = run(cmd);
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("rolled-back"),
        "{}",
        ran.log()
    );
    // Two builds and two deploys at once: one group per phase, never one
    // opened inside another (GitHub does not nest them).
    assert_groups_never_nest(&ran.stdout);
    let images: Value = serde_json::from_str(&sb.output("images").unwrap()).unwrap();
    assert_eq!(images["app"]["result"], "success", "{images:#}");
    assert_eq!(images["worker"]["result"], "rolled-back", "{images:#}");
    assert_ne!(
        images["app"]["digest"], images["worker"]["digest"],
        "each component pushed its own image: {images:#}"
    );

    let ecs = ecs_view(&sb);
    assert_eq!(
        ecs.task_definition,
        task_definition_arn(2),
        "app is live on its new revision: {:?}",
        ecs.deployments
    );
    let worker = block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let out = ecs
            .describe_services()
            .cluster(CLUSTER)
            .services("worker")
            .send()
            .await
            .unwrap();
        out.services()[0].task_definition().unwrap().to_string()
    });
    assert_eq!(
        worker,
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/worker:1"),
        "worker is back on its previous revision"
    );

    let summary = sb.summary();
    for needle in ["app", "worker", "rolled"] {
        assert!(
            summary.contains(needle),
            "the summary names `{needle}`:\n{summary}"
        );
    }
    assert!(
        ran.stdout.contains("::error") && ran.stdout.contains("worker"),
        "the failing component is annotated:\n{}",
        ran.stdout
    );
}

/// The README's first command (`scripts/demo`, which runs
/// tests/sandbox/demo.py on the built binary) completes the main job:
/// build → push → deploy → notify, and prints the summary.
#[test]
fn the_readme_demo_runs_the_main_job_against_the_sandbox() {
    let out =
        Command::new(std::env::var("FASTDEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(crate::support::sandbox::repo_root().join("tests/sandbox/demo.py"))
            .arg(env!("CARGO_BIN_EXE_fastdeploy"))
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = format!(
        "{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the demo failed:\n{log}");
    for needle in [
        "fastdeploy: success",
        "production",
        "result<<",
        "slack:  POST",
        "github: POST /repos/acme/shop/deployments",
        "| web |",
        "| thumbs |",
        "alias live created on version 1",
        "fastdeploy exited 0",
        "the sandbox runs ECS and Lambda on a fast clock",
        "kept in target/demo/",
        "`fastdeploy init`",
    ] {
        assert!(
            stdout.contains(needle),
            "the demo prints `{needle}`:\n{log}"
        );
    }
    // Workflow commands are shown as GitHub's log view shows them.
    for hidden in ["::add-mask::", "::group::", "::endgroup::"] {
        assert!(
            !stdout.contains(hidden),
            "the demo hides `{hidden}`:\n{log}"
        );
    }
    assert!(stdout.contains("\n▸ build"), "groups are headings:\n{log}");
    let kept = crate::support::sandbox::repo_root().join("target/demo/summary.md");
    let summary = std::fs::read_to_string(&kept).expect("the job summary is kept");
    assert!(summary.contains("| web |"), "{summary}");
    // The `image` output is the first component's in fastdeploy.yml (`web`),
    // not the alphabetically first (`thumbs`).
    let outputs = std::fs::read_to_string(kept.with_file_name("output")).unwrap();
    // `name<<delimiter`, the value, the delimiter (GITHUB_OUTPUT's multi-line form).
    let mut lines = outputs.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with("image<<"))
        .unwrap_or_else(|| panic!("an image output: {outputs}"));
    let image = lines.next().unwrap();
    assert!(
        image.contains("/acme/shop@sha256:") && !image.contains("thumbs"),
        "{image}"
    );
}

/// A `codebuild-project` that does not exist is bad input found before
/// anything is created, pushed or announced: exit 2, the project named, no
/// ECR repository, no GitHub deployment, no Slack message.
#[test]
fn a_missing_codebuild_project_exits_2_before_any_side_effect() {
    let sb = FullSandbox::start();
    let mut cmd = sb.command();
    cmd.env("INPUT_BUILDER", "codebuild")
        .env("INPUT_CODEBUILD_PROJECT", "no-such-project");
    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        ran.stderr.contains("no-such-project") && ran.stderr.contains("codebuild-project"),
        "{}",
        ran.log()
    );
    let repositories = block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&sb.moto.sdk_config().await);
        ecr.describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .len()
    });
    assert_eq!(repositories, 0, "no repository was created");
    assert!(
        github_deployments(&sb).is_empty(),
        "no GitHub deployment was created"
    );
    assert!(
        slack_messages(&sb).is_empty(),
        "nothing was posted to Slack"
    );
}

/// The ECS task definition's `runtimePlatform` decides what the build is
/// for when `platforms` is not set (said in the log, kept in the new
/// revision); `platforms` that leave it out are bad input before anything is
/// pushed, since the service could not run the image.
#[test]
fn the_task_definitions_runtime_platform_decides_the_build_platform() {
    use aws_sdk_ecs::types::{ContainerDefinition, CpuArchitecture, OsFamily, RuntimePlatform};
    let sb = FullSandbox::start();
    let register = |arch: CpuArchitecture| {
        block_on(async {
            let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
            let td = ecs
                .register_task_definition()
                .family("shop-web")
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("web")
                        .image("public.ecr.aws/nginx/nginx:1.27")
                        .essential(true)
                        .memory(128)
                        .build(),
                )
                .runtime_platform(
                    RuntimePlatform::builder()
                        .cpu_architecture(arch)
                        .operating_system_family(OsFamily::Linux)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let arn = td
                .task_definition()
                .unwrap()
                .task_definition_arn()
                .unwrap()
                .to_string();
            ecs.update_service()
                .cluster(CLUSTER)
                .service(SERVICE)
                .task_definition(&arn)
                .send()
                .await
                .unwrap();
        })
    };
    register(CpuArchitecture::Arm64);
    let mut amd_only = sb.command();
    amd_only.env("INPUT_PLATFORMS", "linux/amd64");
    let ran = run(amd_only);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        ran.stderr.contains("component `app` builds for linux/amd64, but ECS task definition family shop-web runs on ARM64 (runtimePlatform) and cannot run it; add linux/arm64 to `platforms` or remove `platforms`"),
        "{}",
        ran.log()
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, &format!("sha-{}", &sb.sha[..12])),
        None,
        "nothing was pushed"
    );

    register(CpuArchitecture::X8664);
    let ran = run(sb.command());
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert!(
        ran.stdout.contains("[app] ECS task definition family shop-web runs on X86_64 (runtimePlatform): building for linux/amd64"),
        "{}",
        ran.log()
    );
}
