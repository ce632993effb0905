//! `fastdeploy plan` driven exactly as the runner drives the action: `INPUT_*`
//! variables, `GITHUB_*` variables, the event file and the runner's output and
//! summary files. Real event payloads of each kind resolve the environment.

use std::path::PathBuf;
use std::process::Output;

use crate::support::sandbox::{fastdeploy, repo_root};

struct Runner {
    workspace: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Runner {
    /// A workspace holding the example config and its component directories.
    fn new() -> Runner {
        let workspace = tempfile::tempdir().unwrap();
        std::fs::copy(
            repo_root().join("fastdeploy.example.yml"),
            workspace.path().join("fastdeploy.yml"),
        )
        .unwrap();
        for dir in ["backend", "lambda", "admin"] {
            std::fs::create_dir_all(workspace.path().join(dir)).unwrap();
            std::fs::write(
                workspace.path().join(dir).join("Dockerfile"),
                "FROM scratch\n",
            )
            .unwrap();
        }
        Runner {
            workspace,
            files: tempfile::tempdir().unwrap(),
        }
    }

    fn output_file(&self) -> PathBuf {
        self.files.path().join("output")
    }
    fn summary_file(&self) -> PathBuf {
        self.files.path().join("summary")
    }

    /// Runs `fastdeploy <args>` for `event` with the payload fixture.
    fn run(
        &self,
        event: &str,
        fixture: &str,
        git_ref: &str,
        sha: &str,
        args: &[&str],
        inputs: &[(&str, &str)],
    ) -> Output {
        let mut cmd = fastdeploy(self.workspace.path());
        cmd.args(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", event)
            .env(
                "GITHUB_EVENT_PATH",
                repo_root().join("tests/fixtures/events").join(fixture),
            )
            .env("GITHUB_REF", git_ref)
            .env("GITHUB_SHA", sha)
            .env("GITHUB_REPOSITORY", "acme/shop")
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_WORKSPACE", self.workspace.path())
            .env("GITHUB_OUTPUT", self.output_file())
            .env("GITHUB_STEP_SUMMARY", self.summary_file())
            .env("INPUT_BUILDER", "buildah");
        for (k, v) in inputs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn outputs(&self) -> Vec<(String, String)> {
        fastdeploy::gha::parse_output_file(
            &std::fs::read_to_string(self.output_file()).unwrap_or_default(),
        )
    }

    fn output(&self, name: &str) -> Option<String> {
        self.outputs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn plan_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plan --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const MAIN_SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

#[test]
fn push_to_main_deploys_production() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(plan["target"]["mode"], "deploy");
    assert_eq!(plan["target"]["environment"], "production");
    let backend = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "backend")
        .unwrap();
    assert_eq!(backend["deploy"]["cluster"], "prod");
    assert_eq!(backend["deploy"]["service"], "backend");
    assert_eq!(
        backend["build"]["tags"],
        serde_json::json!(["sha-a1b2c3d4e5f6", "production", "main"])
    );
    assert_eq!(backend["build"]["cache"]["to_tag"], "cache-main");
    let lambda = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lambda")
        .unwrap();
    assert_eq!(lambda["deploy"]["kind"], "lambda");
    assert_eq!(lambda["deploy"]["function"], "acme-thumbnails");
    assert_eq!(lambda["deploy"]["alias"], "live");
    // The config's mapping, as the JSON the version is invoked with.
    assert_eq!(
        lambda["deploy"]["smoke_test_event"],
        r#"{"bucket":"acme-uploads","key":"smoke/sample.jpg"}"#
    );
    let backend_env = &backend["deploy"]["config"]["env"];
    assert_eq!(backend_env[0]["name"], "LOG_LEVEL", "{backend_env}");
    assert_eq!(
        plan["context"]["commit"]["subject"],
        "Merge pull request #42 from acme/feature/faster-checkout"
    );
    assert_eq!(r.output("environment").as_deref(), Some("production"));
    let summary = std::fs::read_to_string(r.summary_file()).unwrap();
    assert!(summary.contains("production"), "{summary}");
}

#[test]
fn push_to_develop_deploys_staging_with_its_overrides() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "push",
        "push-develop.json",
        "refs/heads/develop",
        "b2c3d4e5f60718293a4b5c6d7e8f901234567890",
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(plan["target"]["environment"], "staging");
    let backend = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "backend")
        .unwrap();
    assert_eq!(backend["deploy"]["service"], "backend-staging");
    assert_eq!(backend["deploy"]["cluster"], "staging");
    let lambda = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lambda")
        .unwrap();
    assert_eq!(
        lambda["deploy"]["function"], "acme-thumbnails-staging",
        "per environment through overrides, like service"
    );
    assert_eq!(r.output("environment").as_deref(), Some("staging"));
}

/// The text plan says what each component deploys to, as users write it,
/// and why a component does not deploy.
#[test]
fn the_text_plan_names_each_target_and_why_one_does_not_deploy() {
    let r = Runner::new();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("deploy ECS service backend in cluster prod (strategy service,"),
        "{text}"
    );
    assert!(
        text.contains("deploy Lambda function acme-thumbnails through alias live"),
        "{text}"
    );
    assert!(
        text.contains("region: eu-west-1 (from `defaults.aws-region` in the config)"),
        "{text}"
    );
    let pr = r.run(
        "pull_request",
        "pull_request.json",
        "refs/pull/57/merge",
        MAIN_SHA,
        &["plan"],
        &[],
    );
    let text = String::from_utf8_lossy(&pr.stdout);
    assert!(text.contains("no deploy (build only: "), "{text}");
}

#[test]
fn a_component_with_two_targets_is_rejected_before_anything_runs() {
    let r = Runner::new();
    let cfg = r.workspace.path().join("fastdeploy.yml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "    function: acme-thumbnails ",
        "    service: thumbs\n    function: acme-thumbnails ",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("component `lambda` names two deploy targets, `service: thumbs` and `function: acme-thumbnails`"), "{err}");

    // The same through inputs, for a single component.
    let r = Runner::new();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[("INPUT_COMPONENTS", "lambda"), ("INPUT_SERVICE", "thumbs")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "names two deploy targets, ECS service `thumbs` (input `service`) and Lambda function `acme-thumbnails` (`components.lambda.function` in the config)"
        ),
        "{err}"
    );
}

#[test]
fn lambda_names_lambda_rejects_are_bad_input() {
    for (inputs, expected) in [
        (
            vec![("INPUT_ALIAS", "42")],
            "input `alias` is \"42\", but it accepts 1-128 letters, digits",
        ),
        (
            vec![("INPUT_ALIAS", "live:x")],
            "input `alias` is \"live:x\", but it accepts 1-128 letters",
        ),
        (
            vec![("INPUT_FUNCTION", "thumbs:live")],
            "input `function` is \"thumbs:live\", but it accepts a function without a version or alias",
        ),
        (
            vec![("INPUT_FUNCTION", "thumbs nails")],
            "input `function` is \"thumbs nails\", but it accepts a Lambda function name",
        ),
    ] {
        let r = Runner::new();
        let mut all = vec![("INPUT_COMPONENTS", "lambda")];
        all.extend(inputs);
        let out = r.run(
            "push",
            "push-main.json",
            "refs/heads/main",
            MAIN_SHA,
            &["plan"],
            &all,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    // A full ARN is fine.
    let r = Runner::new();
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:acme-thumbnails";
    let plan = plan_json(&r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[("INPUT_COMPONENTS", "lambda"), ("INPUT_FUNCTION", arn)],
    ));
    assert_eq!(plan["components"][0]["deploy"]["function"], arn);
}

#[test]
fn pull_request_builds_its_head_commit_and_neither_pushes_nor_deploys() {
    let r = Runner::new();
    // GITHUB_SHA is the merge commit for pull requests; the head SHA must be built.
    let plan = plan_json(&r.run(
        "pull_request",
        "pull_request.json",
        "refs/pull/57/merge",
        "f60718293a4b5c6d7e8f90123456789012345678",
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(plan["target"]["mode"], "build-only");
    assert_eq!(plan["target"]["push"], false);
    assert_eq!(
        plan["context"]["commit"]["sha"],
        "e5f60718293a4b5c6d7e8f901234567890123456"
    );
    assert_eq!(plan["context"]["pull_request"], 57);
    for c in plan["components"].as_array().unwrap() {
        assert!(c["deploy"].is_null());
        assert_eq!(c["build"]["push"], false);
        assert!(
            c["build"]["cache"]["to_tag"].is_null(),
            "pull requests never write the cache"
        );
        assert_eq!(
            c["build"]["cache"]["from_tags"],
            serde_json::json!(["cache-feature-pip-cache", "cache-main"])
        );
    }
    assert_eq!(r.output("environment").as_deref(), Some(""));
}

#[test]
fn workflow_dispatch_deploys_where_asked() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "workflow_dispatch",
        "workflow_dispatch.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(
        plan["target"]["environment"], "staging",
        "the dispatch input beats the branch map"
    );
    assert_eq!(r.output("environment").as_deref(), Some("staging"));
}

#[test]
fn the_environment_input_beats_everything_but_pull_requests() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "workflow_dispatch",
        "workflow_dispatch.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[("INPUT_ENVIRONMENT", "production")],
    ));
    assert_eq!(plan["target"]["environment"], "production");
}

#[test]
fn tag_push_resolves_as_the_config_says_and_other_refs_build_only() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "push",
        "push-tag.json",
        "refs/tags/v1.4.0",
        "d4e5f60718293a4b5c6d7e8f9012345678901234",
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(
        plan["target"]["environment"], "production",
        "tags: [\"v*\"] maps to production"
    );
    let plan = plan_json(&r.run(
        "push",
        "push-feature.json",
        "refs/heads/feature/login",
        "c3d4e5f60718293a4b5c6d7e8f90123456789012",
        &["plan", "--json"],
        &[],
    ));
    assert_eq!(plan["target"]["mode"], "build-only");
    assert_eq!(plan["target"]["push"], true);
}

#[test]
fn dry_run_prints_the_plan_for_people_and_does_nothing_else() {
    let r = Runner::new();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &[],
        &[("INPUT_DRY-RUN", "true")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deploy to environment `production`"),
        "{text}"
    );
    assert!(text.contains("component backend"), "{text}");
    assert_eq!(r.output("result").as_deref(), Some("skipped"));
}

fn expect_bad_input(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {stderr}",
        out.status.code()
    );
    for n in needles {
        assert!(stderr.contains(n), "error should mention {n:?}: {stderr}");
    }
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "the error chain is printed once: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::error"),
        "an annotation is written inside Actions: {stdout}"
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_input_and_the_fix() {
    let r = Runner::new();
    let go = |inputs: &[(&str, &str)]| {
        r.run(
            "push",
            "push-main.json",
            "refs/heads/main",
            MAIN_SHA,
            &["plan"],
            inputs,
        )
    };
    expect_bad_input(
        &go(&[("INPUT_WAIT_MINUTES", "0")]),
        &["wait-minutes", "1 to 360"],
    );
    expect_bad_input(
        &go(&[("INPUT_ROLLBACK", "yes")]),
        &["rollback", "true or false"],
    );
    expect_bad_input(
        &go(&[("INPUT_BUILDER", "kaniko")]),
        &["builder", "auto | buildx | buildah | codebuild"],
    );
    expect_bad_input(
        &go(&[("INPUT_COMPONENTS", "frontend")]),
        &["frontend", "backend"],
    );
    expect_bad_input(
        &go(&[("INPUT_ENVIRONMENT", "qa")]),
        &["qa", "production", "staging"],
    );
    expect_bad_input(
        &go(&[("INPUT_CONFIG", "missing.yml")]),
        &["missing.yml", "config"],
    );
    expect_bad_input(
        &go(&[
            ("INPUT_CONTEXT", "../outside"),
            ("INPUT_COMPONENTS", "backend"),
        ]),
        &["context", "inside the workspace"],
    );
    // A typo in a silenced check id would otherwise silence nothing, quietly.
    expect_bad_input(
        &go(&[("INPUT_IGNORE_CHECKS", "DF03")]),
        &["ignore-checks", "DF03", "DF001", "CTX002"],
    );
    expect_bad_input(
        &go(&[("INPUT_CACHE_REPOSITORY", "Shop//Cache")]),
        &["cache-repository", "not a valid ECR repository name"],
    );
}

#[test]
fn a_malformed_event_file_exits_2_naming_the_file() {
    let r = Runner::new();
    let bad = r.files.path().join("event.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let mut cmd = fastdeploy(r.workspace.path());
    let out = cmd
        .args(["plan"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &bad)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_SHA", MAIN_SHA)
        .env("GITHUB_WORKSPACE", r.workspace.path())
        .output()
        .unwrap();
    expect_bad_input(&out, &["event.json", "not valid JSON"]);
}

#[test]
fn a_config_typo_names_line_and_column() {
    let r = Runner::new();
    std::fs::write(
        r.workspace.path().join("fastdeploy.yml"),
        "components:\n  backend:\n    servce: api\n",
    )
    .unwrap();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[],
    );
    expect_bad_input(&out, &["fastdeploy.yml", "servce"]);
}

#[test]
fn single_component_use_needs_no_config() {
    let r = Runner::new();
    std::fs::remove_file(r.workspace.path().join("fastdeploy.yml")).unwrap();
    std::fs::write(r.workspace.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let plan = plan_json(&r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[
            ("INPUT_CLUSTER", "prod"),
            ("INPUT_SERVICE", "shop"),
            ("INPUT_AWS-REGION", "eu-west-1"),
        ],
    ));
    assert_eq!(
        plan["target"]["environment"], "production",
        "default branch map: main -> production"
    );
    let c = &plan["components"][0];
    assert_eq!(c["name"], "app");
    assert_eq!(c["build"]["repository"], "shop");
    assert_eq!(c["deploy"]["service"], "shop");
    assert_eq!(plan["aws_region"], "eu-west-1");
}

#[test]
fn laptop_runs_read_the_local_checkout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    crate::support::sandbox::commit_all(dir.path(), "develop", "first");
    let out = fastdeploy(dir.path())
        .args([
            "plan",
            "--json",
            "--builder",
            "codebuild",
            "--codebuild-project",
            "builds",
        ])
        .output()
        .unwrap();
    let plan = plan_json(&out);
    assert_eq!(plan["context"]["event"], "local");
    assert_eq!(plan["context"]["branch"], "develop");
    // Outside Actions the branch map is said, not acted on.
    assert_eq!(plan["target"]["mode"], "build-only");
    assert!(
        plan["target"]["reason"]
            .as_str()
            .unwrap()
            .contains("`--environment staging`"),
        "{plan:#}"
    );
    assert_eq!(plan["builder"]["kind"], "codebuild");
    assert_eq!(plan["context"]["commit"]["subject"], "first");
    assert_eq!(plan["context"]["commit"]["author"], "Dana Scully");
}

#[test]
fn use_codebuild_forces_codebuild_and_the_plan_says_why() {
    let r = Runner::new();
    let plan = plan_json(&r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[
            ("USE_CODEBUILD", "true"),
            ("INPUT_CODEBUILD-PROJECT", "shop-builds"),
        ],
    ));
    assert_eq!(plan["builder"]["kind"], "codebuild");
    assert_eq!(plan["builder"]["reason"], "USE_CODEBUILD=true");
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[("USE_CODEBUILD", "true")],
    );
    expect_bad_input(&out, &["codebuild-project"]);
}

/// Regression: action.yml passed every input's default as if the user had
/// written it (`context: .`, `builder: auto`, ...), so a config's value for a
/// single selected component (its `context`, `defaults.builder`,
/// `defaults.max-context-mb`) never applied inside Actions.
#[test]
fn inputs_as_the_runner_passes_them_leave_the_configs_values_alone() {
    let r = Runner::new();
    let cfg = r.workspace.path().join("fastdeploy.yml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("  cache: registry ", "  builder: buildah\n  cache: none ");
    assert!(text.contains("builder: buildah"));
    std::fs::write(&cfg, text).unwrap();
    // Every input as action.yml's `runs.env` maps it: the declared default, else empty.
    let mut inputs: Vec<(String, String)> = fastdeploy::settings::inputs::INPUTS
        .iter()
        .map(|spec| {
            let value = spec
                .default
                .filter(|_| spec.default_in_action)
                .unwrap_or("");
            (
                fastdeploy::settings::inputs::env_name(spec.name),
                value.to_string(),
            )
        })
        .collect();
    inputs.push(("INPUT_COMPONENTS".into(), "backend".into()));
    let inputs: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let plan = plan_json(&r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &inputs,
    ));
    let backend = &plan["components"][0];
    assert_eq!(
        backend["build"]["context"],
        r.workspace.path().join("backend").display().to_string(),
        "components.backend.context"
    );
    assert!(backend["build"]["cache"].is_null(), "defaults.cache: none");
    assert_eq!(plan["builder"]["kind"], "buildah", "defaults.builder");
    assert_eq!(
        plan["limits"]["max_context_bytes"], 500_000_000,
        "defaults.max-context-mb (decimal MB)"
    );
}

#[test]
fn before_deploy_needs_an_ecs_target_a_command_and_a_sane_deadline() {
    for (inputs, expected) in [
        (
            vec![
                ("INPUT_COMPONENTS", "lambda"),
                ("INPUT_BEFORE_DEPLOY", "python manage.py migrate"),
            ],
            "input `before-deploy` is set for component `lambda`, but it deploys to Lambda function `acme-thumbnails`",
        ),
        (
            vec![
                ("INPUT_COMPONENTS", "backend"),
                ("INPUT_BEFORE_DEPLOY", "  ''  "),
            ],
            "input `before-deploy` is empty",
        ),
        (
            vec![
                ("INPUT_COMPONENTS", "backend"),
                ("INPUT_BEFORE_DEPLOY", "sh -c 'migrate"),
            ],
            "cannot be split into words as a shell would",
        ),
        (
            vec![
                ("INPUT_COMPONENTS", "backend"),
                ("INPUT_BEFORE_DEPLOY", "migrate"),
                ("INPUT_BEFORE_DEPLOY_MINUTES", "0"),
            ],
            "input `before-deploy-minutes` is \"0\", but it accepts a whole number from 1 to 360",
        ),
    ] {
        let r = Runner::new();
        let out = r.run(
            "push",
            "push-main.json",
            "refs/heads/main",
            MAIN_SHA,
            &["plan"],
            &inputs,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    // A YAML list is taken word for word, and plan says what will run.
    let r = Runner::new();
    let cfg = r.workspace.path().join("fastdeploy.yml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "    container: [app]",
        "    container: [app]\n    before-deploy: [python, manage.py, migrate, --noinput]",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[("INPUT_COMPONENTS", "backend")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "before the update: run `python manage.py migrate --noinput` once on the new revision"
        ),
        "{text}"
    );
}

/// The plan says which deploy-time doctor checks will run (the silenced
/// ones left out) and that their values live in AWS; an unknown DEP id is
/// bad input like a DF one.
#[test]
fn the_plan_lists_the_doctors_checks_and_refuses_an_unknown_one() {
    let r = Runner::new();
    let go = |inputs: &[(&str, &str)]| {
        r.run(
            "push",
            "push-main.json",
            "refs/heads/main",
            MAIN_SHA,
            &["plan"],
            inputs,
        )
    };
    let out = go(&[("INPUT_IGNORE_CHECKS", "dep003,DF001")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("deploy-time doctor before the rollout: checks DEP001, DEP002, DEP004, DEP005, DEP006; the target groups"),
        "{text}"
    );
    assert!(
        text.contains("live in AWS, so the plan cannot estimate the rollout"),
        "{text}"
    );
    expect_bad_input(
        &go(&[("INPUT_IGNORE_CHECKS", "DEP009")]),
        &["ignore-checks", "DEP009", "DEP001", "DEP006"],
    );
}

#[test]
fn build_secrets_name_their_source_and_bad_lines_are_bad_input() {
    let r = Runner::new();
    let ok = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan"],
        &[
            ("INPUT_COMPONENTS", "backend"),
            ("INPUT_BUILD_SECRETS", "npm=NPM_TOKEN"),
            ("NPM_TOKEN", "npm-s3cr3t"),
        ],
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        text.contains("build secrets: npm (from $NPM_TOKEN)"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "::add-mask::npm-s3cr3t"),
        "the value is masked: {text}"
    );
    assert!(
        text.lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .all(|l| !l.contains("npm-s3cr3t")),
        "and never printed: {text}"
    );
    for (inputs, expected) in [
        (
            vec![("INPUT_BUILD_SECRETS", "npm")],
            "input `build-secrets` has \"npm\", but it accepts one `id=ENV_VAR`, `id=file:PATH`",
        ),
        (
            vec![("INPUT_BUILD_SECRETS", "npm=UNSET_NPM_TOKEN")],
            "build secret `npm` comes from the variable UNSET_NPM_TOKEN, which is not set",
        ),
        (
            vec![("INPUT_BUILD_SECRETS", "pip=file:nowhere/pip.conf")],
            "nowhere/pip.conf, which does not exist",
        ),
        (
            vec![("INPUT_BUILD_SECRETS", "npm=ssm:/ci/npm")],
            "which only CodeBuild resolves; with builder buildah use `npm=ENV_VAR` or `npm=file:PATH`",
        ),
        (
            vec![
                ("INPUT_BUILD_SECRETS", "npm=NPM_TOKEN"),
                ("NPM_TOKEN", "x"),
                ("INPUT_BUILDER", "codebuild"),
                ("INPUT_CODEBUILD_PROJECT", "p"),
            ],
            "which CodeBuild cannot read; store it in Parameter Store or Secrets Manager",
        ),
    ] {
        let mut all = vec![("INPUT_COMPONENTS", "backend")];
        all.extend(inputs);
        let out = r.run(
            "push",
            "push-main.json",
            "refs/heads/main",
            MAIN_SHA,
            &["plan"],
            &all,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

/// `fastdeploy plan --json | head -1`: a reader that goes away before the
/// plan is written ends the command quietly with 0, as Rust CLIs do, not
/// with a panic about a broken pipe (exit 101).
#[test]
fn a_closed_pipe_ends_plan_quietly() {
    use std::io::Read;
    let r = Runner::new();
    let mut child = fastdeploy(r.workspace.path())
        .args(["plan", "--json"])
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader leaves before the first byte, as `head` does after its line.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

/// Components come in the order the config lists them (backend, lambda,
/// admin-frontend), not sorted by name: the plan, and the `images` output,
/// whose first entry is the component the `image` output of a run names.
#[test]
fn components_keep_the_configs_order_in_the_plan_and_the_images_output() {
    let r = Runner::new();
    let out = r.run(
        "push",
        "push-main.json",
        "refs/heads/main",
        MAIN_SHA,
        &["plan", "--json"],
        &[],
    );
    let plan = plan_json(&out);
    let names: Vec<&str> = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["backend", "lambda", "admin-frontend"]);
    let images = r.output("images").expect("the images output");
    let order: Vec<usize> = ["\"backend\"", "\"lambda\"", "\"admin-frontend\""]
        .iter()
        .map(|k| images.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{images}");
}

/// On a laptop, `fastdeploy plan` (or `run`) on `main` deploys nothing unless
/// asked: a developer who types the tool's name to see what it does must not
/// ship to production. `--environment` or ENVIRONMENT (as teams' scripts
/// write it) asks; inside Actions the branch map decides, as before.
#[test]
fn outside_actions_a_run_on_main_deploys_only_where_asked() {
    let r = Runner::new();
    let local = |extra: &[(&str, &str)], args: &[&str]| {
        let mut cmd = fastdeploy(r.workspace.path());
        cmd.args(["plan", "--json"])
            .args(args)
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", MAIN_SHA)
            .env("INPUT_BUILDER", "buildah")
            .env_remove("GITHUB_ACTIONS");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        plan_json(&cmd.output().unwrap())
    };
    let plan = local(&[], &[]);
    assert_eq!(plan["target"]["mode"], "build-only", "{plan:#}");
    let reason = plan["target"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("branch `main` maps to `production`")
            && reason.contains("pass `--environment production` or set ENVIRONMENT=production"),
        "{reason}"
    );
    assert!(
        plan["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["deploy"].is_null()),
        "{plan:#}"
    );
    for (extra, args) in [
        (vec![("ENVIRONMENT", "production")], vec![]),
        (vec![], vec!["--environment", "production"]),
    ] {
        let plan = local(&extra, &args);
        assert_eq!(
            (
                plan["target"]["mode"].as_str(),
                plan["target"]["environment"].as_str()
            ),
            (Some("deploy"), Some("production"))
        );
    }
    // Inside Actions, ENVIRONMENT is the runner's business, not an input.
    let plan = plan_json(&r.run(
        "push",
        "push-develop.json",
        "refs/heads/develop",
        MAIN_SHA,
        &["plan", "--json"],
        &[("ENVIRONMENT", "production")],
    ));
    assert_eq!(plan["target"]["environment"], "staging", "{plan:#}");
}
