//! `fastdeploy init` on real trees: what it finds, what it writes, that
//! `fastdeploy plan` accepts it and the workflow validates against the
//! schema, that it never overwrites, and that `--cluster` matches live
//! services (moto) to components by the repositories their images use.

use std::path::Path;
use std::process::Output;

use crate::support::sandbox::{Moto, block_on, commit_all, copy_dir, fastdeploy, repo_root};
use crate::support::triggers::{put_rule, rule_ecs_target, schedule_ecs_target};

fn init(ws: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    fastdeploy(ws)
        .arg("init")
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .unwrap()
}

fn plan(ws: &Path) -> Output {
    fastdeploy(ws)
        .args(["plan", "--builder", "buildah"])
        .output()
        .unwrap()
}

/// `fastdeploy plan` deploying to `environment` (outside Actions a run
/// deploys only where asked).
fn plan_for(ws: &Path, environment: &str) -> Output {
    fastdeploy(ws)
        .args(["plan", "--builder", "buildah", "--environment", environment])
        .output()
        .unwrap()
}

fn write(ws: &Path, rel: &str, text: &str) {
    let p = ws.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn schema_valid(path: &Path) {
    let config = action_validator::CliConfig {
        verbose: false,
        rootdir: Some(repo_root()),
        src: vec![path.to_path_buf()],
    };
    assert!(
        matches!(
            action_validator::cli::run(&config),
            action_validator::cli::RunResult::Success
        ),
        "{} is not a valid workflow",
        path.display()
    );
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A monorepo with two services, a Dockerfile variant, and a Dockerfile
/// inside node_modules that must not become a component.
fn monorepo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("shop");
    write(
        &ws,
        "backend/Dockerfile",
        "FROM python:3.12-slim AS build\nRUN pip wheel .\nFROM python:3.12-slim AS runtime\nCOPY --from=build /w /w\n",
    );
    write(&ws, "admin/Dockerfile", "FROM node:22-alpine\nCOPY . .\n");
    write(&ws, "tools/Dockerfile.migrate", "FROM python:3.12-slim\n");
    write(
        &ws,
        "admin/node_modules/left-pad/Dockerfile",
        "FROM scratch\n",
    );
    // BuildKit's ignore file for one Dockerfile: not a Dockerfile itself.
    write(
        &ws,
        "backend/Dockerfile.dockerignore",
        "node_modules\n.venv\n",
    );
    commit_all(&ws, "main", "Initial");
    dir
}

#[test]
fn init_on_a_monorepo_writes_a_config_plan_accepts_and_a_valid_workflow() {
    let dir = monorepo();
    let ws = dir.path().join("shop");
    let out = init(&ws, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(ws.join("fastdeploy.yml")).unwrap();
    assert!(
        config.contains(
            "  backend:\n    context: backend\n    target: runtime\n    repository: shop/backend"
        ),
        "{config}"
    );
    assert!(
        config.contains("  admin:\n    context: admin\n"),
        "{config}"
    );
    assert!(
        config.contains(
            "  tools-migrate:\n    context: tools\n    dockerfile: tools/Dockerfile.migrate"
        ),
        "{config}"
    );
    assert!(
        !config.contains("left-pad"),
        "node_modules is skipped: {config}"
    );
    assert!(
        !config.contains("dockerignore"),
        "Dockerfile.dockerignore is no component: {config}"
    );
    let workflow = ws.join(".github/workflows/deploy.yml");
    schema_valid(&workflow);
    let wf = std::fs::read_to_string(&workflow).unwrap();
    assert!(
        wf.contains(
            "group: deploy-${{ github.event.inputs.environment || (github.ref_name == 'main' && 'production') || (github.ref_name == 'develop' && 'staging') || github.ref }}"
        ) && wf.contains("id-token: write"),
        "{wf}"
    );

    let planned = plan(&ws);
    assert!(
        planned.status.success(),
        "plan accepts what init wrote: {}",
        text(&planned)
    );
    let printed = String::from_utf8_lossy(&planned.stdout);
    assert!(
        printed.contains("component backend") && printed.contains("target runtime"),
        "{printed}"
    );

    // Never overwrites without --force.
    let again = init(&ws, &[], &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("fastdeploy.yml already exists; fastdeploy init does not overwrite files")
    );
    let forced = init(&ws, &["--force"], &[]);
    assert!(forced.status.success(), "{}", text(&forced));
}

#[test]
fn init_on_the_example_app_writes_files_plan_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("shop");
    copy_dir(&repo_root().join("examples/shop"), &ws);
    std::fs::remove_file(ws.join("fastdeploy.yml")).unwrap();
    commit_all(&ws, "main", "Example");
    let out = init(&ws, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(ws.join("fastdeploy.yml")).unwrap();
    assert!(
        config.contains("  app:\n    context: .\n")
            && config.contains("  thumbs:\n    context: thumbs\n"),
        "{config}"
    );
    assert!(plan(&ws).status.success(), "{}", text(&plan(&ws)));
}

#[test]
fn init_with_a_cluster_matches_services_to_components_by_their_images() {
    let moto = Moto::start();
    block_on(async {
        use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Secret};
        let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .unwrap();
        for (family, container, image) in [
            (
                "backend",
                "app",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/backend:sha-1",
            ),
            ("worker", "worker", "public.ecr.aws/docker/library/redis:7"),
        ] {
            let kv = |n: &str, v: &str| KeyValuePair::builder().name(n).value(v).build();
            let secret =
                |n: &str, from: &str| Secret::builder().name(n).value_from(from).build().unwrap();
            let c = ContainerDefinition::builder()
                .name(container)
                .image(image)
                .memory(128)
                .environment(kv("LOG_LEVEL", "info"))
                .environment(kv("APP_VERSION", "1.10"))
                .environment(kv("STRIPE_API_KEY", "sk_live_do_not_copy"))
                .secrets(secret(
                    "DATABASE_URL",
                    "arn:aws:ssm:us-east-1:123456789012:parameter/shop/prod/database-url",
                ))
                .secrets(secret(
                    "SENTRY_DSN",
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/sentry-AbCdEf:dsn::",
                ))
                .build();
            ecs.register_task_definition()
                .family(family)
                .container_definitions(c)
                .send()
                .await
                .unwrap();
            ecs.create_service()
                .cluster("prod")
                .service_name(family)
                .task_definition(format!("{family}:1"))
                .desired_count(1)
                .send()
                .await
                .unwrap();
        }
    });
    let dir = monorepo();
    let ws = dir.path().join("shop");
    let out = init(&ws, &["--cluster", "prod"], &moto.env());
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("service backend runs shop/backend in container app: component backend"),
        "{printed}"
    );
    assert!(
        printed.contains("service worker: no component builds the images its task definition uses"),
        "{printed}"
    );
    let config = std::fs::read_to_string(ws.join("fastdeploy.yml")).unwrap();
    assert!(
        config.contains("  production:\n    branches: [main]\n    cluster: prod\n    overrides:\n      backend:\n        service: backend\n        container: [app]\n"),
        "the services found deploy from production: {config}"
    );
    // The service's environment and secrets, the secrets as references.
    for line in [
        "          LOG_LEVEL: 'info'\n",
        "          APP_VERSION: '1.10'\n",
        "          DATABASE_URL: 'ssm:/shop/prod/database-url'\n",
        "          SENTRY_DSN: 'secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/sentry-AbCdEf:dsn'\n",
        "          # STRIPE_API_KEY: (its value is not copied here",
    ] {
        assert!(config.contains(line), "{line} in {config}");
    }
    assert!(
        !config.contains("sk_live"),
        "a secret-looking value is never copied: {config}"
    );
    assert_eq!(
        config.matches("cluster: prod").count(),
        1,
        "staging does not get production's cluster: {config}"
    );
    let planned = plan_for(&ws, "production");
    assert!(planned.status.success(), "{}", text(&planned));
    let printed = String::from_utf8_lossy(&planned.stdout);
    assert!(
        printed.contains("deploy ECS service backend in cluster prod")
            && printed.contains("env APP_VERSION = \"1.10\" from `environments.production.overrides.backend.env.APP_VERSION`")
            && printed.contains("secret SENTRY_DSN from secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/sentry-AbCdEf:dsn"),
        "{}",
        text(&planned)
    );

    // Staging (develop's environment) deploys nothing to production's cluster.
    let git = std::process::Command::new("git")
        .arg("-C")
        .arg(&ws)
        .args(["checkout", "-q", "-b", "develop"])
        .status()
        .unwrap();
    assert!(git.success());
    let planned = plan_for(&ws, "staging");
    assert!(planned.status.success(), "{}", text(&planned));
    let printed = String::from_utf8_lossy(&planned.stdout);
    assert!(
        printed.contains("staging") && !printed.contains("cluster prod"),
        "{printed}"
    );
}

#[test]
fn init_with_a_cluster_proposes_targets_when_one_image_runs_in_several_places() {
    let moto = Moto::start();
    block_on(async {
        use aws_sdk_ecs::types::ContainerDefinition;
        let sdk = moto.sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .unwrap();
        let app = ContainerDefinition::builder()
            .name("app")
            .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/backend:sha-1")
            .memory(128)
            .build();
        ecs.register_task_definition()
            .family("backend")
            .container_definitions(app)
            .send()
            .await
            .unwrap();
        for service in ["backend", "backend-worker"] {
            ecs.create_service()
                .cluster("prod")
                .service_name(service)
                .task_definition("backend:1")
                .desired_count(1)
                .send()
                .await
                .unwrap();
        }
        let td = "arn:aws:ecs:us-east-1:123456789012:task-definition/backend:1";
        let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let cleanup = rule_ecs_target("cleanup", cluster, td).build().unwrap();
        put_rule(&events, "nightly-cleanup", "rate(1 day)", vec![cleanup]).await;
        let scheduler = aws_sdk_scheduler::Client::new(&sdk);
        scheduler
            .create_schedule_group()
            .name("reports")
            .send()
            .await
            .unwrap();
        scheduler
            .create_schedule()
            .name("nightly-report")
            .group_name("reports")
            .schedule_expression("rate(1 day)")
            .flexible_time_window(
                aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
                    .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
                    .build()
                    .unwrap(),
            )
            .target(schedule_ecs_target(cluster, td))
            .send()
            .await
            .unwrap();
    });
    let dir = monorepo();
    let ws = dir.path().join("shop");
    let out = init(&ws, &["--cluster", "prod"], &moto.env());
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("service backend-worker runs shop/backend too, in container app: component backend gets `targets:`")
            && printed.contains("rule nightly-cleanup runs shop/backend in container app: component backend gets `targets:`"),
        "{printed}"
    );
    let config = std::fs::read_to_string(ws.join("fastdeploy.yml")).unwrap();
    let services: Vec<&str> = ["backend", "backend-worker"]
        .into_iter()
        .filter(|s| {
            config.contains(&format!(
                "          - service: {s}\n            container: [app]\n"
            ))
        })
        .collect();
    assert_eq!(services.len(), 2, "{config}");
    assert!(
        config.contains("        targets:")
            && config.contains("          - rule: nightly-cleanup\n            container: [app]\n")
            && config.contains("          - schedule: nightly-report\n            group: reports\n            container: [app]\n")
            && !config.contains("        service: backend\n"),
        "{config}"
    );
    let planned = plan_for(&ws, "production");
    assert!(planned.status.success(), "{}", text(&planned));
    let printed = String::from_utf8_lossy(&planned.stdout);
    assert!(
        printed.contains("deploy ECS service backend-worker in cluster prod")
            && printed.contains("move EventBridge rule nightly-cleanup on event bus default")
            && printed
                .contains("move EventBridge Scheduler schedule nightly-report in group reports")
            && printed.contains("one verdict for every target"),
        "{}",
        text(&planned)
    );
}
