//! `fastdeploy run` with `builder: buildx`, end to end against the sandbox's
//! real dockerd (BuildKit, containerd image store, buildx 0.13): the build
//! log, the builder the plan picks, the push read back from the registry,
//! the content-tag skip, cached steps in the summary, a failing `RUN`, the
//! ECS deploy, and bad builder input stopping the run before anything is
//! pushed. There is no Docker Hub here, so every run also shows that buildx
//! with registry cache needs none.
//!
//! Needs: the sandbox's docker (scripts/install-sandbox), docker-registry,
//! apache2-utils, busybox-static, buildah (for the base image), git, moto.

use std::process::Command;

use crate::support::run::{Ran, ecs_view, image_output, registry_digest, run, task_definition_arn};
use crate::support::sandbox::{
    Docker, ECR_PASSWORD, ECR_USER, FullSandbox, REPOSITORY, commit_all, repo_root,
};

/// `fastdeploy run` for a push to main, building with buildx on the shared
/// daemon (`DOCKER_HOST`, `DOCKER_CONFIG` with the buildx plugin).
fn buildx_command(sb: &FullSandbox) -> Command {
    let mut cmd = sb.command();
    cmd.envs(Docker::shared().env())
        .env("INPUT_BUILDER", "buildx");
    cmd
}

/// `fastdeploy plan --json`'s `builder` with the same environment as `cmd`.
fn planned_builder(cmd: Command) -> serde_json::Value {
    // `run` is the first argument the sandbox gives; the plan takes its place.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_os_string()).collect();
    assert_eq!(args, ["run"]);
    let mut plan = Command::new(cmd.get_program());
    plan.env_clear()
        .current_dir(cmd.get_current_dir().unwrap())
        .args(["plan", "--json"]);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            plan.env(k, v);
        }
    }
    let out = plan.output().unwrap();
    assert!(
        out.status.success(),
        "fastdeploy plan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Inside Actions the secrets' `::add-mask::` commands come first.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: String = stdout
        .lines()
        .filter(|l| !l.starts_with("::"))
        .collect::<Vec<_>>()
        .join("\n");
    let plan: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    plan["builder"].clone()
}

/// How many ECR repositories moto holds.
fn repositories(sb: &FullSandbox) -> usize {
    crate::support::sandbox::block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&sb.moto.sdk_config().await);
        ecr.describe_repositories()
            .send()
            .await
            .map(|r| r.repositories().len())
            .unwrap_or(0)
    })
}

/// What a run logged, both streams.
fn logged(ran: &Ran) -> String {
    format!("{}\n{}", ran.stdout, ran.stderr)
}

/// The `#N` lines of the build step named `name`, in BuildKit's plain form.
fn step_lines<'a>(log: &'a str, name: &str) -> Vec<&'a str> {
    let number = log
        .lines()
        .find_map(|l| {
            l.strip_suffix(name)
                .and_then(|head| head.trim_end().rsplit(' ').next())
                .filter(|n| n.starts_with('#'))
        })
        .unwrap_or_else(|| panic!("no step `{name}` in the log:\n{log}"));
    let prefix = format!("{number} ");
    log.lines().filter(|l| l.contains(&prefix)).collect()
}

fn assert_no_json(log: &str) {
    let json: Vec<_> = log
        .lines()
        .filter(|l| l.trim_start().starts_with('{') || l.contains("\"vertexes\""))
        .collect();
    assert!(
        json.is_empty(),
        "buildx's JSON reached the log: {json:#?}\n{log}"
    );
}

#[test]
fn a_buildx_deploy_builds_on_the_current_builder_and_ecs_runs_the_pushed_digest() {
    let sb = FullSandbox::start();
    let cmd = buildx_command(&sb);
    let builder = planned_builder(buildx_command(&sb));
    assert_eq!(builder["kind"], "buildx");
    assert_eq!(
        builder["buildx"]["builder"],
        serde_json::Value::Null,
        "the current builder: {builder}"
    );
    assert_eq!(builder["buildx"]["create"], false);
    let reason = builder["buildx"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("docker driver on the containerd image store")
            && reason.contains("registry cache export"),
        "{reason}"
    );

    let ran = run(cmd);
    assert_eq!(ran.code, 0, "{}", ran.log());
    let log = logged(&ran);

    // Outputs, the registry and ECS agree on the digest.
    let digest = sb.output("digest").unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let sha_tag = format!("sha-{}", &sb.sha[..12]);
    assert_eq!(
        registry_digest(&sb, REPOSITORY, &sha_tag).as_deref(),
        Some(digest.as_str()),
        "--metadata-file named the pushed manifest"
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, "production").as_deref(),
        Some(digest.as_str())
    );
    let image = format!("{}/{REPOSITORY}@{digest}", sb.registry.host);
    assert_eq!(sb.output("image").as_deref(), Some(image.as_str()));
    let ecs = ecs_view(&sb);
    assert_eq!(ecs.task_definition, task_definition_arn(2));
    assert_eq!(ecs.images, vec![image]);
    assert_eq!(sb.output("result").as_deref(), Some("success"));

    // BuildKit's readable lines, and nothing of the JSON behind them.
    let run_step = step_lines(&log, "[build 4/5] RUN sh build.sh /out");
    assert!(
        run_step.iter().any(|l| l.contains(" DONE ")),
        "{run_step:#?}"
    );
    assert!(log.contains("exporting cache to registry"), "{log}");
    assert_no_json(&log);
    assert_eq!(image_output(&sb)["build-skipped"], false);
    // No `docker login`, so no warning about unencrypted credentials, and no password.
    let shown = log.lines().filter(|l| !l.starts_with("::add-mask::"));
    assert!(
        shown
            .clone()
            .all(|l| !l.contains("unencrypted") && !l.contains(ECR_PASSWORD)),
        "{log}"
    );

    // Registry cache without Docker Hub and without a builder of our own:
    // the cache manifest is in the registry, as ECR takes it.
    let cache = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v2/{REPOSITORY}/manifests/cache-main",
            sb.registry.url()
        ))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json::<serde_json::Value>())
        .expect("the registry cache was written");
    assert_eq!(
        cache["config"]["mediaType"], "application/vnd.buildkit.cacheconfig.v0",
        "{cache}"
    );
    let docker = Docker::shared();
    let ls = docker
        .command(&docker.docker_config)
        .args(["buildx", "ls"])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(!ls.contains("fastdeploy"), "no builder was created:\n{ls}");
}

/// A laptop: buildx lives in `~/.docker/cli-plugins` (where Docker Desktop
/// puts it) and `DOCKER_CONFIG` is unset. The per-build docker config used
/// to hide the plugin: the probe saw buildx, then the build failed with
/// `docker: unknown command: docker buildx`.
#[test]
fn buildx_in_the_home_plugin_dir_builds_skips_an_unchanged_rerun_and_counts_cached_steps() {
    let sb = FullSandbox::start();
    let home = sb.dir.path().join("home");
    std::fs::create_dir_all(home.join(".docker/cli-plugins")).unwrap();
    std::os::unix::fs::symlink(
        crate::support::sandbox::docker_dir().join("usr/libexec/docker/cli-plugins/docker-buildx"),
        home.join(".docker/cli-plugins/docker-buildx"),
    )
    .unwrap();
    let laptop = |sb: &FullSandbox| {
        let mut cmd = buildx_command(sb);
        cmd.env_remove("DOCKER_CONFIG").env("HOME", &home);
        cmd
    };

    let first = run(laptop(&sb));
    assert_eq!(first.code, 0, "{}", first.log());
    assert!(
        !logged(&first).contains("unknown command"),
        "{}",
        first.log()
    );
    let digest = sb.output("digest").unwrap();

    // The same commit again: the content tag is in the registry.
    std::fs::remove_file(sb.output_file()).unwrap();
    let again = run(laptop(&sb));
    assert_eq!(again.code, 0, "{}", again.log());
    assert_eq!(image_output(&sb)["build-skipped"], true, "{}", again.log());
    assert_eq!(sb.output("digest").as_deref(), Some(digest.as_str()));
    assert!(
        !logged(&again).contains("[build 2/5]"),
        "nothing was built:\n{}",
        again.log()
    );

    // One page changed in a new commit: the steps before `COPY app/pages/`
    // come from the cache, and the summary says how many.
    std::fs::write(
        sb.workspace.join("app/pages/index.html"),
        "<h1>Shop, now faster</h1>\n",
    )
    .unwrap();
    let sha = commit_all(&sb.workspace, "main", "Faster pages");
    let event = sb.dir.path().join("event-2.json");
    let mut e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.dir.path().join("event.json")).unwrap())
            .unwrap();
    e["after"] = sha.clone().into();
    e["head_commit"]["id"] = sha.clone().into();
    std::fs::write(&event, e.to_string()).unwrap();
    std::fs::remove_file(sb.output_file()).unwrap();
    let _ = std::fs::remove_file(sb.summary_file());
    let mut cmd = laptop(&sb);
    cmd.env("GITHUB_SHA", &sha).env("GITHUB_EVENT_PATH", &event);
    let third = run(cmd);
    assert_eq!(third.code, 0, "{}", third.log());
    let log = logged(&third);
    assert_ne!(sb.output("digest").as_deref(), Some(digest.as_str()));
    for step in [
        "[build 2/5] WORKDIR /src",
        "[build 3/5] COPY app/build.sh ./",
        "[build 4/5] RUN sh build.sh /out",
    ] {
        assert!(
            step_lines(&log, step)
                .iter()
                .any(|l| l.ends_with(" CACHED")),
            "{step} came from the cache:\n{log}"
        );
    }
    assert!(
        step_lines(&log, "[build 5/5] COPY app/pages/ /out/")
            .iter()
            .any(|l| l.contains(" DONE ")),
        "{log}"
    );
    assert_no_json(&log);
    let summary = sb.summary();
    let row = summary
        .lines()
        .find(|l| l.starts_with("| app |"))
        .unwrap_or_else(|| panic!("no row for app:\n{summary}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(
        cells[4], "3/5",
        "WORKDIR, COPY build.sh and its RUN of 5 steps came from the cache: {row}"
    );
}

#[test]
fn a_failing_run_step_fails_the_build_with_its_last_log_lines() {
    let sb = FullSandbox::start();
    let dockerfile = sb.workspace.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap().replace(
        "RUN sh build.sh /out\n",
        "RUN sh build.sh /out\nRUN echo 'checking 2 pages' && echo 'boom: index.html has no title' && exit 3\n",
    );
    std::fs::write(&dockerfile, text).unwrap();
    let sha = commit_all(&sb.workspace, "main", "Check pages");
    let ran = run({
        let mut cmd = buildx_command(&sb);
        cmd.env("GITHUB_SHA", &sha);
        cmd
    });
    assert_eq!(ran.code, 1, "{}", ran.log());
    assert_eq!(sb.output("result").as_deref(), Some("failure"));
    // The failure names the step's last log lines and BuildKit's reason, not JSON.
    let error = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no error annotation:\n{}", ran.log()));
    assert!(
        error.contains("boom: index.html has no title") && error.contains("checking 2 pages"),
        "{error}"
    );
    assert!(error.contains("exit code: 3"), "{error}");
    assert!(!error.contains("vertexes"), "{error}");
    assert_no_json(&logged(&ran));
    assert_eq!(ecs_view(&sb).revisions.len(), 1, "nothing was deployed");
}

/// On docker's classic image store the default builder cannot export
/// cache: the plan creates a docker-container builder, from `buildkit-image`.
/// One that cannot be pulled stops the run (exit 2, the input named) before
/// any repository is created or image pushed.
#[test]
fn a_buildkit_image_that_cannot_be_pulled_exits_2_before_anything_is_pushed() {
    let sb = FullSandbox::start();
    let classic = Docker::start_classic();
    let image = format!("{}/mirror/buildkit:v0.13.2", sb.registry.host);
    let mut cmd = sb.command();
    cmd.envs(classic.env())
        .env("INPUT_BUILDER", "buildx")
        .env("INPUT_BUILDKIT_IMAGE", &image);
    let mut plan_cmd = sb.command();
    plan_cmd
        .envs(classic.env())
        .env("INPUT_BUILDER", "buildx")
        .env("INPUT_BUILDKIT_IMAGE", &image);
    let builder = planned_builder(plan_cmd);
    let name = fastdeploy::plan::created_buildx_builder(Some(&image));
    assert_eq!(builder["buildx"]["builder"], name.as_str(), "{builder}");
    assert_eq!(builder["buildx"]["create"], true);
    let reason = builder["buildx"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "(docker driver without the containerd image store) cannot do registry cache export"
        ),
        "{reason}"
    );
    assert!(reason.contains(&image), "{reason}");

    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    let error = ran
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", ran.log()));
    assert!(
        error.contains(&format!("`{image}` (the `buildkit-image` input)"))
            && error.contains("not found"),
        "{error}"
    );
    assert!(
        error.contains("set `buildkit-image` to a BuildKit image this runner can pull"),
        "{error}"
    );
    assert_eq!(
        registry_digest(&sb, REPOSITORY, &format!("sha-{}", &sb.sha[..12])),
        None,
        "nothing was pushed"
    );
    assert_eq!(repositories(&sb), 0, "no repository was created");
    // The builder that never started is not left behind for the next run.
    let ls = classic
        .command(&classic.docker_config)
        .args(["buildx", "ls"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains(&name),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
}

/// `buildx-builder` naming a builder that exists is used, a remote one even
/// with no docker daemon; one that does not exist, and a daemon that does not
/// answer, stop the plan (exit 2).
#[test]
fn an_existing_buildx_builder_is_used_even_without_a_daemon_and_a_missing_one_is_bad_input() {
    let docker = Docker::shared();
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let plan = |inputs: &[(&str, &str)]| {
        let mut cmd = crate::support::sandbox::fastdeploy(ws.path());
        cmd.args(["plan", "--json"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env(
                "GITHUB_EVENT_PATH",
                repo_root().join("tests/fixtures/events/push-main.json"),
            )
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
            .env("GITHUB_REPOSITORY", "acme/shop")
            .env("GITHUB_WORKSPACE", ws.path())
            .env("INPUT_BUILDER", "buildx")
            .envs(docker.env())
            .envs(inputs.iter().copied());
        cmd.output().unwrap()
    };
    let out = plan(&[("INPUT_BUILDX_BUILDER", "default")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["builder"]["buildx"]["builder"], "default");
    assert!(
        p["builder"]["buildx"]["reason"]
            .as_str()
            .unwrap()
            .contains("the `buildx-builder` input"),
        "{}",
        p["builder"]
    );

    let out = plan(&[("INPUT_BUILDX_BUILDER", "team-fleet")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "input `buildx-builder` names `team-fleet`, but docker has no builder by that name"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("no builder \"team-fleet\" found"),
        "buildx's own words: {stderr}"
    );

    // A remote BuildKit fleet needs no local daemon: buildx alone talks to it.
    let config = docker.new_config(ws.path());
    let created = docker
        .command(&config)
        .args([
            "buildx",
            "create",
            "--name",
            "fleet",
            "--driver",
            "remote",
            "tcp://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let config = config.display().to_string();
    let no_daemon = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = plan(&[
        no_daemon,
        ("DOCKER_CONFIG", config.as_str()),
        ("INPUT_BUILDX_BUILDER", "fleet"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["builder"]["buildx"]["builder"], "fleet");
    assert!(
        p["builder"]["buildx"]["reason"]
            .as_str()
            .unwrap()
            .contains("`fleet` (remote driver)"),
        "{}",
        p["builder"]
    );

    let out = plan(&[no_daemon]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no docker daemon answers at unix:///nonexistent/docker.sock")
            && stderr.contains("DOCKER_HOST"),
        "{stderr}"
    );
}

/// A platform the builder can neither build natively nor emulate (this
/// daemon has no binfmt) is bad input naming the fixes, before anything is
/// pushed or created; the platform it runs natively builds as before.
#[test]
fn a_platform_the_builder_cannot_run_exits_2_naming_qemu_and_codebuild() {
    let sb = FullSandbox::start();
    let mut cmd = buildx_command(&sb);
    cmd.env("INPUT_PLATFORMS", "linux/arm64");
    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    let error = ran
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{}", ran.log()));
    assert!(
        error.contains("component `app` builds for linux/arm64, which buildx builder `default` cannot run (its platforms: linux/amd64")
            && error.contains("docker/setup-qemu-action")
            && error.contains("`builder: codebuild`"),
        "{error}"
    );
    assert_eq!(repositories(&sb), 0, "no repository was created");
}
