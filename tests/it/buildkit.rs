//! The sandbox's real dockerd with BuildKit and buildx (tests/sandbox/dockerd.py):
//! the default builder pushes to the sandbox registry and exports and reuses
//! ECR-style registry cache.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::sandbox::{Docker, ECR_PASSWORD, ECR_USER, Registry, push_busybox_base};

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// The `#N` lines of `--progress=plain` output for the step named `step`.
fn step_lines<'a>(plain: &'a str, step: &str) -> Vec<&'a str> {
    let Some(number) = plain.lines().find_map(|l| {
        l.strip_suffix(step)
            .and_then(|head| head.split_whitespace().next())
    }) else {
        panic!("no step `{step}` in:\n{plain}")
    };
    let prefix = format!("{number} ");
    plain.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[test]
fn default_builder_pushes_and_reuses_registry_cache() {
    let docker = Docker::shared();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = push_busybox_base(&registry.host, work.path());
    let config = docker.new_config(work.path());

    let mut login = docker.command(&config);
    login
        .args([
            "login",
            "--username",
            ECR_USER,
            "--password-stdin",
            &registry.host,
        ])
        .stdin(Stdio::piped());
    let mut child = login
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), ECR_PASSWORD.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let context = work.path().join("app");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nRUN echo hi > /x\n"),
    )
    .unwrap();
    let cache = format!("{}/app:cache", registry.host);
    let build = |tag: &str, context: &Path| {
        let mut cmd = docker.command(&config);
        cmd.args([
            "buildx",
            "build",
            "--progress=plain",
            "--provenance=false",
            "--push",
        ])
        .arg("--tag")
        .arg(format!("{}/app:{tag}", registry.host))
        .arg("--cache-to")
        .arg(format!(
            "type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true"
        ))
        .arg("--cache-from")
        .arg(format!("type=registry,ref={cache}"))
        .arg(context);
        run(cmd, "docker buildx build")
    };

    let first = build("1", &context);
    assert!(
        first.contains(r#"building with "default" instance using docker driver"#),
        "{first}"
    );
    let run_step = step_lines(&first, "RUN echo hi > /x");
    assert!(
        run_step
            .iter()
            .any(|l| l.ends_with(" DONE") || l.contains(" DONE ")),
        "the first build ran the step:\n{first}"
    );
    assert!(
        !run_step.iter().any(|l| l.ends_with(" CACHED")),
        "the first build ran the step:\n{first}"
    );
    assert!(first.contains("exporting cache to registry"), "{first}");

    // The cache is an OCI image manifest (what ECR accepts) in the registry.
    let manifest: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v2/app/manifests/cache", registry.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("the cache manifest is in the registry");
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{manifest}"
    );
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.buildkit.cacheconfig.v0",
        "{manifest}"
    );

    let second = build("2", &context);
    let run_step = step_lines(&second, "RUN echo hi > /x");
    assert!(
        run_step.iter().any(|l| l.ends_with(" CACHED")),
        "the rebuild took the step from the cache:\n{second}"
    );
}
