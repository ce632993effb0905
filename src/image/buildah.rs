//! buildah (daemonless): `bud --layers` with registry cache, `--digestfile`, push.
//!
//! For self-hosted runners without a docker socket. Logins go to a per-build
//! auth file in the work directory (`--authfile`), so parallel builds never
//! share credentials state. buildah's registry cache is content-keyed: every
//! layer is pushed as a tag named by its cache key into the cache
//! repository, so a branch and the default branch share hits naturally.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::{BuildOptions, BuildRequest, Steps};
use crate::error::BadInput;
use crate::image::registry::{self, RegistryAuth};
use crate::process::{CommandSpec, Runner, Stream};

/// Attempts buildah makes per push (`--retry`).
pub const PUSH_RETRIES: u32 = 4;

/// The per-build files buildah reads and writes.
#[derive(Debug, Clone)]
pub struct Files {
    pub authfile: PathBuf,
    pub iidfile: PathBuf,
    pub digestfile: PathBuf,
}

impl Files {
    pub fn in_dir(work_dir: &Path) -> Files {
        Files {
            authfile: work_dir.join("buildah-auth.json"),
            iidfile: work_dir.join("buildah-image-id"),
            digestfile: work_dir.join("buildah-digest"),
        }
    }
}

fn base(opts: &BuildOptions) -> CommandSpec {
    CommandSpec::new(&opts.buildah).args(opts.buildah_flags.iter().cloned())
}

fn tls(auth: &RegistryAuth) -> &'static str {
    if auth.insecure {
        "--tls-verify=false"
    } else {
        "--tls-verify=true"
    }
}

/// `buildah login` with the password on stdin only, into the per-build auth file.
pub fn login_command(opts: &BuildOptions, auth: &RegistryAuth, files: &Files) -> CommandSpec {
    base(opts)
        .arg("login")
        .arg("--authfile")
        .arg(files.authfile.display().to_string())
        .arg(tls(auth))
        .args(["--username", &auth.username, "--password-stdin", &auth.host])
        .stdin(auth.password.clone())
}

/// `buildah bud` for one component. `cache` false leaves the registry cache
/// out (the retry after a cache failure).
pub fn bud_command(
    req: &BuildRequest<'_>,
    opts: &BuildOptions,
    auth: &RegistryAuth,
    files: &Files,
    cache: bool,
) -> CommandSpec {
    let plan = req.plan;
    let mut cmd = base(opts).args(["bud", "--layers"]);
    // Pulls of the base image and of the registry cache, and cache pushes.
    cmd = cmd
        .args(["--retry", &PUSH_RETRIES.to_string()])
        .arg("--retry-delay")
        .arg(delay_arg(retry_delay(opts.clock)));
    if let Some(iso) = &opts.buildah_isolation {
        cmd = cmd.arg("--isolation").arg(iso);
    }
    cmd = cmd
        .arg("--authfile")
        .arg(files.authfile.display().to_string())
        .arg(tls(auth));
    cmd = cmd.arg("--file").arg(plan.dockerfile.display().to_string());
    if let Some(t) = &plan.target {
        cmd = cmd.args(["--target", t]);
    }
    for (k, v) in &plan.build_args {
        cmd = cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    for secret in &plan.secrets {
        // Where the value is, never the value: buildah reads it itself.
        cmd = cmd.arg("--secret").arg(super::docker::secret_flag(secret));
    }
    if let Some(p) = plan.platforms.first() {
        cmd = cmd.args(["--platform", p]);
    }
    for (k, v) in &plan.labels {
        cmd = cmd.arg("--label").arg(format!("{k}={v}"));
    }
    if cache && let Some(repo) = cache_repository(req) {
        cmd = cmd.arg("--cache-from").arg(&repo);
        if req.cache_to_ref().is_some() {
            cmd = cmd.arg("--cache-to").arg(&repo);
        }
    }
    cmd = cmd
        .arg("--iidfile")
        .arg(files.iidfile.display().to_string());
    for r in req.refs() {
        cmd = cmd.args(["--tag", &r]);
    }
    cmd.arg(plan.context.display().to_string())
}

/// buildah names a cache *repository* (it picks the tags); the plan's cache
/// repository on the same registry.
pub fn cache_repository(req: &BuildRequest<'_>) -> Option<String> {
    req.plan
        .cache
        .as_ref()
        .map(|c| format!("{}/{}", req.registry, c.repository))
}

/// `buildah push` of the built image to `dest`, writing the pushed digest.
/// buildah retries transient failures itself, `retry_delay` apart.
pub fn push_command(
    opts: &BuildOptions,
    auth: &RegistryAuth,
    files: &Files,
    image: &str,
    dest: &str,
    retry_delay: std::time::Duration,
) -> CommandSpec {
    base(opts)
        .arg("push")
        .arg("--authfile")
        .arg(files.authfile.display().to_string())
        .arg(tls(auth))
        .args(["--retry", &PUSH_RETRIES.to_string()])
        .arg("--retry-delay")
        .arg(delay_arg(retry_delay))
        .arg("--digestfile")
        .arg(files.digestfile.display().to_string())
        .arg(image)
        .arg(format!("docker://{dest}"))
}

/// The delay between buildah's own retries: 2 s times the delay scale.
pub fn retry_delay(clock: crate::clock::Clock) -> std::time::Duration {
    clock.of(2.0)
}

fn delay_arg(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Whether a failed `bud` failed on the registry cache (buildah 1.28 fails
/// the build when a cache push fails: "failed pushing cache to ...").
pub fn failed_on_cache(stderr_tail: &[String]) -> bool {
    stderr_tail.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("pushing cache")
            || l.contains("pulling cache")
            || l.contains("cache-to")
            || l.contains("cache-from")
    })
}

pub(super) async fn build(
    req: &BuildRequest<'_>,
    auth: &RegistryAuth,
    runner: &Runner,
    opts: &BuildOptions,
    client: &registry::Client,
) -> anyhow::Result<(String, Option<Steps>)> {
    if req.plan.platforms.len() > 1 {
        return Err(BadInput::other(format!(
            "component `{}` builds for {} platforms; the buildah builder builds one: use `builder: buildx` or `codebuild` for multi-platform images",
            req.component,
            req.plan.platforms.join(",")
        ))
        .into());
    }
    let version = base(opts).arg("--version");
    super::require_program(
        runner,
        &version,
        "install buildah (Debian/Ubuntu: apt-get install buildah; Fedora/RHEL: dnf install buildah), or use `builder: buildx` or `codebuild`",
    )
    .await?;
    let files = Files::in_dir(req.work_dir);
    let login = login_command(opts, auth, &files);
    runner
        .run(&login)
        .await?
        .check(&login)
        .with_context(|| format!("logging in to registry {}", auth.host))?;

    let steps = Arc::new(Mutex::new(StepCounter::default()));
    let observed = super::observing_runner(runner, steps.clone(), StepCounter::observe);
    let with_cache = req.plan.cache.is_some();
    let bud = bud_command(req, opts, auth, &files, with_cache);
    let done = observed.run(&bud).await?;
    if !done.success {
        // A cache failure never fails a build: build again without the
        // registry cache when the failure was about the cache.
        if with_cache && failed_on_cache(&done.stderr_tail) {
            (runner.sink)(
                Stream::Stderr,
                "the registry cache failed; building again without it",
            );
            *steps.lock().unwrap_or_else(|e| e.into_inner()) = StepCounter::default();
            let bud = bud_command(req, opts, auth, &files, false);
            observed
                .run(&bud)
                .await?
                .check(&bud)
                .with_context(|| format!("building component `{}` with buildah", req.component))?;
        } else {
            done.check(&bud)
                .with_context(|| format!("building component `{}` with buildah", req.component))?;
        }
    }
    let steps = steps.lock().unwrap_or_else(|e| e.into_inner()).steps();
    let image_id = read_trimmed(&files.iidfile)?;

    if !req.plan.push {
        return Ok((image_id, Some(steps)));
    }
    let refs = req.refs();
    let first = refs.first().context("the plan has no tags to push")?;
    let _ = std::fs::remove_file(&files.digestfile);
    let push = push_command(
        opts,
        auth,
        &files,
        &image_id,
        first,
        retry_delay(opts.clock),
    );
    // buildah's own --retry covers resets and 429s but not a 5xx answer
    // (buildah 1.28 gives up on the first 503), so transient registry
    // answers are retried here too, with back-off.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let done = runner.run(&push).await?;
        if done.success {
            break;
        }
        if attempt < PUSH_RETRIES && is_transient_registry_failure(&done.stderr_tail) {
            (runner.sink)(
                Stream::Stderr,
                &format!(
                    "registry {} answered with a temporary error; pushing again (attempt {})",
                    auth.host,
                    attempt + 1
                ),
            );
            crate::timings::sleep("registry", registry::backoff(attempt, opts.clock)).await;
            continue;
        }
        done.check(&push).with_context(|| {
            format!(
                "pushing {first} to registry {} failed after {attempt} attempt(s)",
                auth.host
            )
        })?;
    }
    let digest = read_trimmed(&files.digestfile)?;
    // The other tags name the same manifest: PUT it under each, nothing re-pushed.
    let rest: Vec<String> = req
        .plan
        .tags
        .iter()
        .chain(req.content_tag.iter())
        .skip(1)
        .cloned()
        .collect();
    client
        .tag(&req.plan.repository, &digest, &rest)
        .await
        .with_context(|| format!("tagging {}@{digest}", req.image()))?;
    Ok((digest, Some(steps)))
}

/// `buildah push --compression-format gzip IMAGE oci:DIR`: the image as a
/// registry would store it, written locally to be measured.
pub fn oci_layout_command(opts: &BuildOptions, image_id: &str, dir: &Path) -> CommandSpec {
    CommandSpec::new(&opts.buildah)
        .args(opts.buildah_flags.iter().cloned())
        .args(["push", "--compression-format", "gzip", image_id])
        .arg(format!("oci:{}", dir.display()))
}

/// Compressed size of an image that was built but not pushed.
pub async fn local_size(
    req: &BuildRequest<'_>,
    opts: &BuildOptions,
    runner: &Runner,
    image_id: &str,
) -> anyhow::Result<registry::ImageSize> {
    let dir = req.work_dir.join("oci-layout");
    let _ = std::fs::remove_dir_all(&dir);
    let cmd = oci_layout_command(opts, image_id, &dir);
    runner
        .run(&cmd)
        .await?
        .check(&cmd)
        .with_context(|| format!("measuring the image of component `{}`", req.component))?;
    let size = crate::image::registry::oci_layout_size(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    size
}

/// Whether a failed push's last output shows a registry that may recover:
/// a 5xx or 429 answer, a reset or dropped connection, a timeout.
pub fn is_transient_registry_failure(stderr_tail: &[String]) -> bool {
    const MARKERS: &[&str] = &[
        "503",
        "502",
        "504",
        "500 Internal",
        "429",
        "Service Unavailable",
        "Too Many Requests",
        "connection reset",
        "broken pipe",
        "unexpected EOF",
        "i/o timeout",
        "TLS handshake timeout",
        "connection refused",
    ];
    stderr_tail
        .iter()
        .any(|l| MARKERS.iter().any(|m| l.contains(m)))
}

fn read_trimmed(path: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("buildah wrote no {}", path.display()))?;
    let s = s.trim();
    Ok(if s.starts_with("sha256:") {
        s.to_string()
    } else {
        format!("sha256:{s}")
    })
}

/// Counts steps from buildah's output: `[1/2] STEP 3/6: COPY . .` starts
/// one; `--> Using cache <id>` marks it cached. `FROM` steps are not counted.
#[derive(Debug, Default)]
pub struct StepCounter {
    total: u32,
    cached: u32,
    current_counts: bool,
    current_cached: bool,
}

impl StepCounter {
    pub fn observe(&mut self, _stream: Stream, line: &str) -> Vec<String> {
        let t = line.trim();
        if let Some(instruction) = step_instruction(t) {
            let counts = !instruction.to_ascii_uppercase().starts_with("FROM ");
            self.total += u32::from(counts);
            self.current_counts = counts;
            self.current_cached = false;
        } else if t.starts_with("--> Using cache") && self.current_counts && !self.current_cached {
            self.cached += 1;
            self.current_cached = true;
        }
        vec![line.to_string()]
    }

    pub fn steps(&self) -> Steps {
        Steps {
            cached: self.cached,
            total: self.total,
        }
    }
}

/// The instruction of a `STEP n/m: ...` line (with or without a `[i/j] ` stage prefix).
fn step_instruction(line: &str) -> Option<&str> {
    let rest = match line.strip_prefix('[') {
        Some(r) => r.split_once("] ")?.1,
        None => line,
    };
    let rest = rest.strip_prefix("STEP ")?;
    let (counter, instruction) = rest.split_once(": ")?;
    counter
        .split_once('/')
        .filter(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())?;
    Some(instruction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BuildPlan, CachePlan};
    use std::collections::BTreeMap;

    fn plan(cache_to: Option<&str>, push: bool) -> BuildPlan {
        BuildPlan {
            context: "/w/app".into(),
            dockerfile: "/w/app/Dockerfile".into(),
            target: Some("runtime".into()),
            build_args: BTreeMap::from([("BASE".to_string(), "r/base:1".to_string())]),
            platforms: vec!["linux/amd64".into()],
            repository: "shop/api".into(),
            tags: vec!["sha-0123456789ab".into(), "main".into()],
            labels: BTreeMap::from([(
                "org.opencontainers.image.revision".to_string(),
                "0123".to_string(),
            )]),
            cache: Some(CachePlan {
                repository: "shop/api".into(),
                from_tags: vec!["cache-main".into()],
                to_tag: cache_to.map(str::to_string),
            }),
            push,
            secrets: vec![],
        }
    }

    fn auth(insecure: bool) -> RegistryAuth {
        RegistryAuth {
            host: "127.0.0.1:5000".into(),
            username: "AWS".into(),
            password: secrecy::SecretString::from("s3cret-pw"),
            insecure,
        }
    }

    fn opts() -> BuildOptions {
        BuildOptions {
            buildah_flags: vec!["--storage-driver".into(), "vfs".into()],
            buildah_isolation: Some("chroot".into()),
            ..Default::default()
        }
    }

    fn req(p: &BuildPlan) -> BuildRequest<'_> {
        BuildRequest {
            component: "api",
            plan: p,
            registry: "127.0.0.1:5000",
            content_tag: Some("content-abc".into()),
            provenance: false,
            bases: None,
            force: false,
            buildx_builder: None,
            work_dir: Path::new("/tmp/fd/api"),
        }
    }

    #[test]
    fn bud_on_a_push_reads_and_writes_the_registry_cache() {
        let p = plan(Some("cache-main"), true);
        let files = Files::in_dir(Path::new("/tmp/fd/api"));
        let cmd = bud_command(&req(&p), &opts(), &auth(true), &files, true);
        assert_eq!(
            cmd.display(),
            "buildah --storage-driver vfs bud --layers --retry 4 --retry-delay 2000ms --isolation chroot --authfile /tmp/fd/api/buildah-auth.json --tls-verify=false \
             --file /w/app/Dockerfile --target runtime --build-arg BASE=r/base:1 --platform linux/amd64 \
             --label org.opencontainers.image.revision=0123 --cache-from 127.0.0.1:5000/shop/api --cache-to 127.0.0.1:5000/shop/api \
             --iidfile /tmp/fd/api/buildah-image-id --tag 127.0.0.1:5000/shop/api:sha-0123456789ab --tag 127.0.0.1:5000/shop/api:main \
             --tag 127.0.0.1:5000/shop/api:content-abc /w/app"
        );
    }

    #[test]
    fn bud_on_a_pull_request_only_reads_the_cache() {
        let p = plan(None, false);
        let cmd = bud_command(
            &req(&p),
            &opts(),
            &auth(false),
            &Files::in_dir(Path::new("/w")),
            true,
        );
        assert!(cmd.args.contains(&"--cache-from".to_string()));
        assert!(!cmd.args.contains(&"--cache-to".to_string()));
        assert!(cmd.args.contains(&"--tls-verify=true".to_string()));
    }

    #[test]
    fn bud_without_cache_after_a_cache_failure() {
        let p = plan(Some("cache-main"), true);
        let cmd = bud_command(
            &req(&p),
            &opts(),
            &auth(true),
            &Files::in_dir(Path::new("/w")),
            false,
        );
        assert!(!cmd.args.iter().any(|a| a.starts_with("--cache")));
    }

    #[test]
    fn temporary_registry_answers_are_retried_and_others_are_not() {
        let tail = |l: &str| vec![l.to_string()];
        assert!(is_transient_registry_failure(&tail(
            "Error: writing blob: initiating layer upload to /v2/shop/blobs/uploads/ in 127.0.0.1:5000: received unexpected HTTP status: 503 Service Unavailable"
        )));
        assert!(is_transient_registry_failure(&tail(
            "Error: reading blob: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"
        )));
        assert!(!is_transient_registry_failure(&tail(
            "Error: authentication required"
        )));
        assert!(!is_transient_registry_failure(&tail(
            "Error: denied: requested access to the resource is denied"
        )));
    }

    #[test]
    fn a_cache_push_failure_is_recognised() {
        // buildah 1.28's last line when the cache registry refused the push.
        let tail = vec![r#"Error: failed pushing cache to {{{"127.0.0.1:1" "app"}} "b4e4"}}: trying to reuse blob sha256:8ca6 at destination: pinging container registry 127.0.0.1:1: connect: connection refused"#.to_string()];
        assert!(failed_on_cache(&tail));
        let tail = vec!["error building at STEP \"RUN make\": exit status 2".to_string()];
        assert!(!failed_on_cache(&tail), "a failing RUN is not retried");
    }

    #[test]
    fn login_and_push_keep_the_password_off_the_command_line() {
        let files = Files::in_dir(Path::new("/w"));
        let login = login_command(&opts(), &auth(true), &files);
        assert_eq!(
            login.display(),
            "buildah --storage-driver vfs login --authfile /w/buildah-auth.json --tls-verify=false --username AWS --password-stdin 127.0.0.1:5000"
        );
        assert!(login.stdin.is_some());
        let push = push_command(
            &opts(),
            &auth(true),
            &files,
            "sha256:abc",
            "127.0.0.1:5000/shop/api:sha-1",
            std::time::Duration::from_millis(3),
        );
        assert_eq!(
            push.display(),
            "buildah --storage-driver vfs push --authfile /w/buildah-auth.json --tls-verify=false --retry 4 --retry-delay 3ms \
             --digestfile /w/buildah-digest sha256:abc docker://127.0.0.1:5000/shop/api:sha-1"
        );
    }

    #[test]
    fn steps_are_counted_from_buildah_output() {
        // buildah 1.28 output of a two-stage build where the first stage's
        // first three steps came from the registry cache.
        let out = "[1/2] STEP 1/6: FROM 127.0.0.1:5987/base:1 AS build
Trying to pull 127.0.0.1:5987/base:1...
[1/2] STEP 2/6: WORKDIR /src
--> Cache pulled from remote 127.0.0.1:5987/app:b4e44896c0edf2d3f86b03feb78069e1f67773ec5eada873e603adad8737ee3e
--> Using cache 26e81ca2df897d71494597f4b8b90bd2451fec0a9b181db07ea8e68e7fc8d64e
--> 26e81ca2df8
[1/2] STEP 3/6: COPY lib.txt ./
--> Using cache f5f8893f64dd820e8003dbbdf9beeee9a7f1e182867c606328b831f9f84a6089
--> f5f8893f64d
[1/2] STEP 4/6: RUN cat lib.txt > /src/lib.out
--> Using cache b85c6f2c7b2b60461986aba60aeb4ca98878cbe4a460c0ecf9ba1c214fb6c254
--> b85c6f2c7b2
[1/2] STEP 5/6: COPY main.txt ./
--> Pushing cache 127.0.0.1:5987/app:ccd0e42ef00a2c190564c94418cd42117ca16a045d994be1b7c60ba30d7ebf61
--> 98442eb6a15
[1/2] STEP 6/6: RUN cat lib.out main.txt > app.out
--> 99765636d6d
[2/2] STEP 1/4: FROM 127.0.0.1:5987/base:1
[2/2] STEP 2/4: COPY --from=build /src/app.out /app/app.out
--> e3ecffa4e28
[2/2] STEP 3/4: CMD [\"cat\", \"/app/app.out\"]
--> 8bd6c6b4c43
[2/2] STEP 4/4: LABEL \"a\"=\"b\"
[2/2] COMMIT 127.0.0.1:5987/app:sha-2
--> e18757b4875";
        let mut c = StepCounter::default();
        for l in out.lines() {
            c.observe(Stream::Stdout, l);
        }
        assert_eq!(
            c.steps(),
            Steps {
                cached: 3,
                total: 8
            }
        );
        assert_eq!(step_instruction("STEP 2/3: RUN make"), Some("RUN make"));
        assert_eq!(step_instruction("STEP x: RUN make"), None);
    }
}
