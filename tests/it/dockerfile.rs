//! The Dockerfile parser against a real builder, and bad Dockerfiles through
//! the binary.
//!
//! Differential: buildah builds `FROM scratch` Dockerfiles full of parser
//! corners (escape directive, continuations with comments and blank lines,
//! ARG in FROM, JSON form, `--from` by name and index, targets); the image's
//! history must list exactly the instructions `image_instructions` returns,
//! in order, with the same COPY destinations. The image-size report relies
//! on that mapping. (buildah 1.28 predates heredocs, so they are covered by
//! unit tests only. buildah also matches stage names case-sensitively where
//! BuildKit does not, so the names here are lower-case.)

use std::path::Path;
use std::process::Command;

use fastdeploy::checks::dockerfile::{self, Args, Keyword};

use crate::support::sandbox::fastdeploy;

fn buildah(storage: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args(["--storage-driver", "vfs"]);
    cmd
}

/// Builds `dir/Dockerfile` (at `target`) and returns the history's `created_by` lines.
fn built_history(storage: &Path, dir: &Path, target: Option<&str>, tag: &str) -> Vec<String> {
    let mut bud = buildah(storage);
    bud.args(["bud", "--isolation", "chroot", "-q", "-t", tag]);
    if let Some(t) = target {
        bud.args(["--target", t]);
    }
    let out = bud
        .arg(dir)
        .output()
        .expect("buildah is required (CI installs it; `apt-get install buildah`)");
    assert!(
        out.status.success(),
        "buildah bud failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = buildah(storage)
        .args(["inspect", "--type", "image", tag])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    image["OCIv1"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `COPY` + destination (or `LABEL`, `WORKDIR`, ...) for one of our instructions.
fn describe(ins: &dockerfile::Instruction) -> (String, Option<String>) {
    let dest = match ins.keyword {
        Keyword::Copy | Keyword::Add => ins.copy_paths().1,
        _ => None,
    };
    (ins.keyword.as_str().to_string(), dest)
}

/// The same from a history line: `/bin/sh -c #(nop) COPY file:... in /etc/ `.
fn describe_history(created_by: &str) -> (String, Option<String>) {
    let nop = created_by
        .split("#(nop) ")
        .nth(1)
        .unwrap_or(created_by)
        .trim();
    let keyword = nop.split_whitespace().next().unwrap_or("").to_string();
    let dest = (keyword == "COPY" || keyword == "ADD")
        .then(|| nop.rsplit(" in ").next().unwrap_or("").trim().to_string());
    (keyword, dest)
}

const CORNERS: &str = r#"# escape=`
ARG BASE=scratch
FROM ${BASE} AS first
COPY a.txt `
  # a comment inside the continuation

  /a.txt
FROM first as second
COPY ["a.txt", "/c.txt"]
LABEL stage=second
FROM scratch
COPY --from=second /a.txt /etc/
COPY --from=0 /a.txt /from-index.txt
LABEL x=y `
      z=w
COPY --chown=1:1 a.txt /b.txt
WORKDIR /app
ENV A=1
"#;

#[test]
fn image_history_matches_the_parsed_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let storage = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
    std::fs::write(dir.path().join("Dockerfile"), CORNERS).unwrap();
    let df = dockerfile::load(&dir.path().join("Dockerfile")).unwrap();
    assert_eq!(df.escape, '`');

    for (target, tag) in [
        (None, "localhost/df-final"),
        (Some("second"), "localhost/df-second"),
    ] {
        let ours: Vec<_> = df
            .image_instructions(target)
            .unwrap()
            .into_iter()
            .map(describe)
            .collect();
        let theirs: Vec<_> = built_history(storage.path(), dir.path(), target, tag)
            .iter()
            .map(|h| describe_history(h))
            .collect();
        assert_eq!(ours, theirs, "target {target:?}");
    }
    // The continuation's destination came after a comment and a blank line.
    let first = &df.stages()[0];
    assert_eq!(
        first.instructions[0].copy_paths(),
        (vec!["a.txt".to_string()], Some("/a.txt".to_string()))
    );
    assert!(matches!(&df.stages()[2].instructions[2].args, Args::Shell(s) if s.contains("z=w")));
}

// ------------------------------------------------------------ through the binary

/// `fastdeploy run` for a single component in `workspace`, as the runner
/// would start it. Checks come first, so nothing here reaches AWS.
fn run(workspace: &Path, inputs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = fastdeploy(workspace);
    cmd.arg("run")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env(
            "GITHUB_EVENT_PATH",
            crate::support::sandbox::repo_root().join("tests/fixtures/events/push-main.json"),
        )
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_SHA", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_WORKSPACE", workspace)
        .env("INPUT_BUILDER", "buildah")
        .env("INPUT_CLUSTER", "prod")
        .env("INPUT_SERVICE", "shop")
        .env("INPUT_AWS-REGION", "eu-west-1")
        // Nowhere to go: if a check let the run through, it fails fast instead of exit 2.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    for (k, v) in inputs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn expect_exit_2(out: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status.code()
    );
    let all = format!("{stdout}{stderr}");
    for n in needles {
        assert!(all.contains(n), "output lacks {n:?}:\n{all}");
    }
}

#[test]
fn a_malformed_dockerfile_exits_2_naming_file_and_line_before_building() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(
        ws.path().join("Dockerfile"),
        "FROM alpine:3.20\nRUN <<EOF\necho hi\n\nRUNN true\n",
    )
    .unwrap();
    let out = run(ws.path(), &[]);
    expect_exit_2(
        &out,
        &["Dockerfile", "line 2", "heredoc <<EOF is not terminated"],
    );

    std::fs::write(
        ws.path().join("Dockerfile"),
        "FROM alpine:3.20\n\nRUNN true\n",
    )
    .unwrap();
    expect_exit_2(
        &run(ws.path(), &[]),
        &["line 3", "unknown instruction \"RUNN\""],
    );
}

#[test]
fn a_missing_target_stage_exits_2_listing_the_stages() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(
        ws.path().join("Dockerfile"),
        "FROM alpine:3.20 AS build\nFROM scratch AS runtime\nCOPY --from=build /bin/sh /sh\n",
    )
    .unwrap();
    let out = run(ws.path(), &[("INPUT_TARGET", "prod")]);
    expect_exit_2(
        &out,
        &["target stage `prod`", "build (line 1)", "runtime (line 2)"],
    );
}

#[test]
fn a_missing_dockerfile_exits_2_naming_it() {
    let ws = tempfile::tempdir().unwrap();
    let out = run(
        ws.path(),
        &[("INPUT_DOCKERFILE", "services/api/Dockerfile")],
    );
    expect_exit_2(&out, &["services/api/Dockerfile"]);
}

/// DF004 (root) is a policy choice: a `::notice`, while DF003 stays a
/// `::warning`; a pull request's build is not pushed, so it gets no DF004.
#[test]
fn findings_are_warnings_or_notices_and_an_unpushed_build_gets_no_df004() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(
        ws.path().join("Dockerfile"),
        "FROM python:3.12-slim\nRUN pip install flask\nCMD [\"python\"]\n",
    )
    .unwrap();
    let annotations = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                l.starts_with("::warning file=Dockerfile")
                    || l.starts_with("::notice file=Dockerfile")
            })
            .map(|l| l.split("::").take(2).collect::<Vec<_>>().join("::"))
            .collect()
    };
    let pushed = annotations(&run(ws.path(), &[]));
    assert_eq!(
        pushed,
        [
            "::notice file=Dockerfile,line=1,title=DF004",
            "::warning file=Dockerfile,line=2,title=DF003"
        ]
    );

    let pr_event =
        crate::support::sandbox::repo_root().join("tests/fixtures/events/pull_request.json");
    let pull_request = run(
        ws.path(),
        &[
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_EVENT_PATH", pr_event.to_str().unwrap()),
            ("GITHUB_REF", "refs/pull/7/merge"),
        ],
    );
    assert_eq!(
        annotations(&pull_request),
        ["::warning file=Dockerfile,line=2,title=DF003"]
    );
}
