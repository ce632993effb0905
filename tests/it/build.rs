//! Real builds with buildah against the sandbox registry, and the registry
//! client against the registry and a scripted receiver.
//!
//! No base image can be pulled here, so each test builds a tiny busybox
//! base itself (`buildah from scratch` + the host's static busybox) and
//! pushes it to the sandbox registry. Needs: buildah, busybox-static.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fastdeploy::image::registry::{Client, RegistryAuth};
use fastdeploy::image::{
    BuildOptions, BuildOutput, BuildRequest, ImageTooLarge, build_component, content_tag,
};
use fastdeploy::plan::{BuildPlan, BuilderKind, CachePlan};
use fastdeploy::process::Runner;
use secrecy::SecretString;

use crate::support::sandbox::{ECR_PASSWORD, ECR_USER, Receiver, Registry, repo_root};

const REPO: &str = "shop/app";

fn auth(host: &str) -> RegistryAuth {
    RegistryAuth {
        host: host.into(),
        username: ECR_USER.into(),
        password: SecretString::from(ECR_PASSWORD),
        insecure: true,
    }
}

/// buildah with its own storage under `dir`: a fresh `dir` is a runner that
/// has never built anything (every cache hit must come from the registry).
fn opts(storage: &Path) -> BuildOptions {
    BuildOptions {
        buildah_flags: vec![
            "--storage-driver".into(),
            "vfs".into(),
            "--root".into(),
            storage.join("root").display().to_string(),
            "--runroot".into(),
            storage.join("run").display().to_string(),
        ],
        buildah_isolation: Some("chroot".into()),
        clock: fastdeploy::clock::Clock::scaled(0.001),
        ..Default::default()
    }
}

/// Pushes `<registry>/base:1` (busybox on scratch; nothing can be pulled here).
fn push_base_image(reg: &Registry, work: &Path) -> String {
    crate::support::sandbox::push_busybox_base(&reg.host, work)
}

/// The example app copied somewhere a test may change it.
fn copy_app(dest: &Path) -> PathBuf {
    let src = repo_root().join("tests/fixtures/apps/multistage");
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
    dest.to_path_buf()
}

/// Stand-in for the context guard's hash: names and contents, sorted.
fn context_hash(dir: &Path) -> String {
    use sha2::Digest;
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut h = sha2::Sha256::new();
    for n in names {
        h.update(n.as_encoded_bytes());
        h.update(std::fs::read(dir.join(&n)).unwrap());
    }
    hex::encode(h.finalize())
}

fn plan(app: &Path, base: &str, sha: &str, repo: &str) -> BuildPlan {
    BuildPlan {
        context: app.to_path_buf(),
        dockerfile: app.join("Dockerfile"),
        target: None,
        build_args: BTreeMap::from([("BASE".to_string(), base.to_string())]),
        platforms: vec![],
        repository: repo.into(),
        tags: vec![format!("sha-{sha}"), "production".into(), "main".into()],
        labels: BTreeMap::from([
            (
                "org.opencontainers.image.revision".to_string(),
                sha.to_string(),
            ),
            (
                "org.opencontainers.image.source".to_string(),
                "https://github.com/acme/shop".to_string(),
            ),
        ]),
        cache: Some(CachePlan {
            repository: repo.into(),
            from_tags: vec!["cache-main".into()],
            to_tag: Some("cache-main".into()),
        }),
        push: true,
        secrets: vec![],
    }
}

fn recording_runner() -> (Runner, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    (
        Runner::with_sink(Arc::new(move |_, line| {
            l.lock().unwrap().push(line.to_string())
        })),
        lines,
    )
}

async fn build(
    plan: &BuildPlan,
    reg: &Registry,
    work: &Path,
    storage: &Path,
    opts_fn: impl Fn(BuildOptions) -> BuildOptions,
) -> (anyhow::Result<BuildOutput>, Vec<String>) {
    let dockerfile = std::fs::read(&plan.dockerfile).unwrap();
    let req = BuildRequest {
        component: "app",
        plan,
        registry: &reg.host,
        content_tag: Some(content_tag(
            &context_hash(&plan.context),
            plan,
            &dockerfile,
            &[],
        )),
        provenance: false,
        bases: None,
        force: false,
        buildx_builder: None,
        work_dir: work,
    };
    let (runner, lines) = recording_runner();
    let out = build_component(
        BuilderKind::Buildah,
        &req,
        &auth(&reg.host),
        &runner,
        &opts_fn(opts(storage)),
    )
    .await;
    let lines = lines.lock().unwrap().clone();
    (out, lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn buildah_builds_pushes_skips_unchanged_commits_and_reuses_the_registry_cache() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app = copy_app(&tmp.path().join("app"));
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));

    // 1. First build: everything executes, the image is pushed under every tag.
    let p1 = plan(&app, &base, "aaaaaaaaaaaa", REPO);
    let (out, log) = build(
        &p1,
        &reg,
        &tmp.path().join("w1"),
        &tmp.path().join("s1"),
        |o| o,
    )
    .await;
    let first = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert!(first.digest.starts_with("sha256:") && !first.skipped);
    for tag in ["sha-aaaaaaaaaaaa", "production", "main"] {
        assert_eq!(
            client.manifest_digest(REPO, tag).await.unwrap().as_deref(),
            Some(first.digest.as_str()),
            "tag {tag}"
        );
    }
    assert_eq!(
        first.total_steps,
        Some(9),
        "non-FROM steps of both stages plus a LABEL step per label: {}",
        log.join("\n")
    );
    assert_eq!(
        first.cached_steps,
        Some(0),
        "nothing was cached yet: {}",
        log.join("\n")
    );
    let size = first.size.clone().expect("the pushed image is measured");
    assert!(size.layers >= 2 && size.bytes > 100_000, "{size:?}");
    assert!(
        size.largest.iter().any(|(_, i)| i.contains("COPY")),
        "layers name their instruction: {size:?}"
    );
    assert!(
        log.iter().all(|l| !l.contains(ECR_PASSWORD)),
        "the password never reaches the log"
    );

    // 2. The same commit again, on a runner that has never built it: nothing is built.
    let (out, log) = build(
        &p1,
        &reg,
        &tmp.path().join("w2"),
        &tmp.path().join("s2"),
        |o| o,
    )
    .await;
    let again = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert!(
        again.skipped,
        "an unchanged commit builds nothing: {}",
        log.join("\n")
    );
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.total_steps, None);
    assert!(
        !tmp.path().join("s2/root").exists(),
        "buildah was never run"
    );

    // 3. One file changed, new commit, fresh runner: the steps before the
    //    change come from the registry cache.
    std::fs::write(app.join("main.txt"), "main v2\n").unwrap();
    let p3 = plan(&app, &base, "bbbbbbbbbbbb", REPO);
    let (out, log) = build(
        &p3,
        &reg,
        &tmp.path().join("w3"),
        &tmp.path().join("s3"),
        |o| o,
    )
    .await;
    let third = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert!(!third.skipped);
    assert_ne!(third.digest, first.digest);
    assert_eq!(
        third.cached_steps,
        Some(3),
        "WORKDIR, COPY lib.txt and its RUN come from the cache: {}",
        log.join("\n")
    );
    assert_eq!(third.total_steps, Some(9));
    assert!(
        log.iter().any(|l| l.contains("Cache pulled from remote")),
        "the hits came from the registry"
    );
    assert_eq!(
        client
            .manifest_digest(REPO, "production")
            .await
            .unwrap()
            .as_deref(),
        Some(third.digest.as_str()),
        "moving tag moved"
    );
    assert_eq!(
        client
            .manifest_digest(REPO, "sha-aaaaaaaaaaaa")
            .await
            .unwrap()
            .as_deref(),
        Some(first.digest.as_str()),
        "commit tag kept"
    );

    // 4. The same image over max-image-mb fails with the breakdown (and the size).
    let (out, _) = build(
        &p3,
        &reg,
        &tmp.path().join("w4"),
        &tmp.path().join("s4"),
        |o| BuildOptions {
            max_image_bytes: Some(1000),
            ..o
        },
    )
    .await;
    let err = out.unwrap_err();
    let too_large = err
        .downcast_ref::<ImageTooLarge>()
        .expect("an ImageTooLarge error");
    assert_eq!(too_large.digest, third.digest);
    assert!(
        err.to_string().contains("max-image-mb") && err.to_string().contains("COPY"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn components_build_in_parallel_with_separate_work_dirs() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app_a = copy_app(&tmp.path().join("a"));
    let app_b = copy_app(&tmp.path().join("b"));
    std::fs::write(app_b.join("main.txt"), "worker\n").unwrap();
    let pa = plan(&app_a, &base, "cccccccccccc", "shop/api");
    let pb = plan(&app_b, &base, "cccccccccccc", "shop/worker");
    // One storage root, as on a real runner; separate work dirs.
    let storage = tmp.path().join("storage");
    let (a, b) = {
        let (wa, wb) = (tmp.path().join("wa"), tmp.path().join("wb"));
        tokio::join!(
            build(&pa, &reg, &wa, &storage, |o| o),
            build(&pb, &reg, &wb, &storage, |o| o)
        )
    };
    let a = a.0.unwrap_or_else(|e| panic!("{e:#}\n{}", a.1.join("\n")));
    let b = b.0.unwrap_or_else(|e| panic!("{e:#}\n{}", b.1.join("\n")));
    assert_ne!(a.digest, b.digest);
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));
    assert_eq!(
        client.manifest_digest("shop/api", "main").await.unwrap(),
        Some(a.digest)
    );
    assert_eq!(
        client.manifest_digest("shop/worker", "main").await.unwrap(),
        Some(b.digest)
    );
}

/// Pull request builds push nothing, yet the PR comment needs their size:
/// it is measured from a local OCI layout, compressed as a registry stores it.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_that_is_not_pushed_is_still_measured_and_leaves_the_registry_untouched() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app = copy_app(&tmp.path().join("app"));
    let mut p = plan(&app, &base, "dddddddddddd", "shop/pr");
    p.push = false;
    if let Some(cache) = p.cache.as_mut() {
        cache.to_tag = None;
    }
    let (out, lines) = build(
        &p,
        &reg,
        &tmp.path().join("w"),
        &tmp.path().join("storage"),
        |o| o,
    )
    .await;
    let out = out.unwrap_or_else(|e| panic!("{e:#}\n{}", lines.join("\n")));
    let size = out
        .size
        .expect("a pull request build reports its image size");
    assert!(
        size.bytes > 100_000,
        "busybox alone is bigger than that: {size:?}"
    );
    assert!(size.layers >= 2, "{size:?}");
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));
    assert_eq!(
        client.manifest_digest("shop/pr", "main").await.unwrap(),
        None,
        "nothing was pushed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_builder_is_named_with_how_to_get_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = plan(tmp.path(), "base", "dddddddddddd", REPO);
    p.push = false;
    let req = BuildRequest {
        component: "app",
        plan: &p,
        registry: "127.0.0.1:1",
        content_tag: None,
        provenance: false,
        bases: None,
        force: false,
        buildx_builder: None,
        work_dir: tmp.path(),
    };
    let opts = BuildOptions {
        buildah: "no-such-buildah".into(),
        docker: "no-such-docker".into(),
        ..Default::default()
    };
    let runner = Runner::with_sink(Arc::new(|_, _| {}));
    let err = build_component(
        BuilderKind::Buildah,
        &req,
        &auth("127.0.0.1:1"),
        &runner,
        &opts,
    )
    .await
    .unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    assert!(
        err.to_string().contains("no-such-buildah")
            && err.to_string().contains("apt-get install buildah"),
        "{err}"
    );
    let err = build_component(
        BuilderKind::Buildx,
        &req,
        &auth("127.0.0.1:1"),
        &runner,
        &opts,
    )
    .await
    .unwrap_err();
    assert_eq!(
        fastdeploy::error::exit_for(&err),
        fastdeploy::error::Exit::BadInput
    );
    assert!(
        err.to_string().contains("no-such-docker") && err.to_string().contains("buildx"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The registry client against a scripted receiver.

fn receiver_host(r: &Receiver) -> String {
    r.url.trim_start_matches("http://").to_string()
}

fn manifest_body() -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c0", "size": 10},
        "layers": []
    })
}

/// Runs one client call; the receiver's own (blocking) calls stay outside a runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn registry_refusing_for_a_while_is_retried_and_succeeds() {
    let r = Receiver::start();
    r.script(serde_json::json!([
        {"match": "GET /v2/shop/app/manifests/t1", "status": 503, "body": {"errors": [{"code": "UNAVAILABLE"}]}, "times": 2},
        {"match": "GET /v2/shop/app/manifests/t1", "drop": true, "times": 1},
    ]));
    r.default_response(serde_json::json!({"match": "GET /v2/shop/app/manifests/t1", "status": 200, "body": manifest_body(),
        "headers": {"Docker-Content-Digest": "sha256:feed"}}));
    let client = Client::new(
        &auth(&receiver_host(&r)),
        fastdeploy::clock::Clock::scaled(0.001),
    );
    // HEAD is not implemented by the receiver (501): the client asks with GET.
    assert_eq!(
        block_on(client.manifest_digest("shop/app", "t1"))
            .unwrap()
            .as_deref(),
        Some("sha256:feed")
    );
    let gets = r
        .requests()
        .iter()
        .filter(|q| q["path"] == "/v2/shop/app/manifests/t1")
        .count();
    assert_eq!(gets, 4, "two 503s and a reset, then success");
}

#[test]
fn registry_that_never_recovers_fails_naming_the_registry() {
    let r = Receiver::start();
    r.default_response(serde_json::json!({"match": "GET /v2/.*", "status": 502, "body": {"message": "bad gateway"}}));
    let host = receiver_host(&r);
    let client = Client::new(&auth(&host), fastdeploy::clock::Clock::scaled(0.001));
    let err = format!(
        "{:#}",
        block_on(client.get_manifest("shop/app", "t")).unwrap_err()
    );
    assert!(
        err.contains(&format!("registry {host}"))
            && err.contains("502")
            && err.contains("bad gateway"),
        "{err}"
    );
    assert_eq!(
        r.requests().len(),
        4,
        "bounded: four attempts, then the error"
    );
}

#[test]
fn bearer_challenge_fetches_a_token_with_the_credentials() {
    let r = Receiver::start();
    let realm = format!("{}/token", r.url);
    r.script(serde_json::json!([
        {"match": "GET /v2/shop/app/manifests/t", "status": 401, "times": 1, "body": {"errors": [{"code": "UNAUTHORIZED"}]},
         "headers": {"Www-Authenticate": format!("Bearer realm=\"{realm}\",service=\"sandbox-registry\",scope=\"repository:shop/app:pull\"")}},
    ]));
    r.default_response(serde_json::json!([
        {"match": "GET /token", "status": 200, "body": {"token": "tkn-abc123"}},
        {"match": "GET /v2/shop/app/manifests/t", "status": 200, "body": manifest_body()},
    ]));
    let client = Client::new(
        &auth(&receiver_host(&r)),
        fastdeploy::clock::Clock::scaled(0.001),
    );
    let m = block_on(client.get_manifest("shop/app", "t")).unwrap();
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m.digest,
        fastdeploy::image::registry::sha256_digest(&m.bytes),
        "digest over the verbatim bytes without a header"
    );
    let reqs = r.requests();
    let token = reqs
        .iter()
        .find(|q| q["path"] == "/token")
        .expect("a token request");
    assert!(
        token["query"]
            .as_str()
            .unwrap()
            .contains("scope=repository%3Ashop%2Fapp%3Apull"),
        "{token}"
    );
    assert!(
        token["query"]
            .as_str()
            .unwrap()
            .contains("service=sandbox-registry"),
        "{token}"
    );
    assert!(
        token["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic "),
        "the token is fetched with the credentials"
    );
    let last = reqs
        .iter()
        .rev()
        .find(|q| q["path"] == "/v2/shop/app/manifests/t")
        .unwrap();
    assert_eq!(last["headers"]["authorization"], "Bearer tkn-abc123");
    assert!(
        last["headers"]["accept"]
            .as_str()
            .unwrap()
            .contains("application/vnd.docker.distribution.manifest.list.v2+json")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retagging_puts_the_same_manifest_under_new_tags_on_a_real_registry() {
    let reg = Registry::start();
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));
    assert_eq!(
        client.manifest_digest("shop/app", "nope").await.unwrap(),
        None,
        "a missing tag is None, not an error"
    );
    // Push a minimal image through the API: an empty config blob and a manifest.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#;
    let config_digest = fastdeploy::image::registry::sha256_digest(config);
    let http = reqwest::Client::new();
    let start = http
        .post(format!("{}/v2/shop/app/blobs/uploads/", reg.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{}{location}", reg.url())
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let done = http
        .put(format!("{location}{sep}digest={config_digest}"))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201, "{}", done.text().await.unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": []
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let pushed = http
        .put(format!("{}/v2/shop/app/manifests/v1", reg.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201, "{}", pushed.text().await.unwrap());
    let digest = fastdeploy::image::registry::sha256_digest(&bytes);
    assert_eq!(
        client
            .manifest_digest("shop/app", "v1")
            .await
            .unwrap()
            .as_deref(),
        Some(digest.as_str())
    );
    client
        .tag("shop/app", &digest, &["production".into(), "main".into()])
        .await
        .unwrap();
    for tag in ["production", "main"] {
        assert_eq!(
            client
                .manifest_digest("shop/app", tag)
                .await
                .unwrap()
                .as_deref(),
            Some(digest.as_str()),
            "{tag}"
        );
    }
    let size = client.image_size("shop/app", &digest).await.unwrap();
    assert_eq!((size.bytes, size.layers), (0, 0));
}

// ---------------------------------------------------------------------------
// The same with buildx, against the sandbox's dockerd (BuildKit, containerd
// image store): the current builder, no builder created.

/// The docker CLI pointed at the sandbox's daemon, as a program fastdeploy
/// runs (`BuildOptions::docker`), recording every call's arguments and the
/// config.json a build sees.
struct BuildxHarness {
    dir: tempfile::TempDir,
    docker: PathBuf,
    /// The user's `DOCKER_CONFIG` (buildx linked into its cli-plugins).
    user_config: PathBuf,
}

impl BuildxHarness {
    fn new() -> BuildxHarness {
        let daemon = crate::support::sandbox::Docker::shared();
        let dir = tempfile::tempdir().unwrap();
        let user_config = daemon.new_config(dir.path());
        let docker = dir.path().join("docker");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{calls}'\n\
             if [ \"$1 $2\" = 'buildx build' ]; then cp \"$DOCKER_CONFIG/config.json\" '{seen}'; fi\n\
             export DOCKER_HOST='{host}'\nexec '{cli}' \"$@\"\n",
            calls = dir.path().join("calls").display(),
            seen = dir.path().join("seen-config.json").display(),
            host = daemon.host,
            cli = daemon.docker.display(),
        );
        std::fs::write(&docker, script).unwrap();
        std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        BuildxHarness {
            dir,
            docker,
            user_config,
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The config.json the last `buildx build` ran with.
    fn seen_config(&self) -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("seen-config.json")).unwrap(),
        )
        .unwrap()
    }

    async fn build(
        &self,
        plan: &BuildPlan,
        reg: &Registry,
        work: &Path,
    ) -> (anyhow::Result<BuildOutput>, Vec<String>) {
        let dockerfile = std::fs::read(&plan.dockerfile).unwrap();
        let req = BuildRequest {
            component: "app",
            plan,
            registry: &reg.host,
            content_tag: Some(content_tag(
                &context_hash(&plan.context),
                plan,
                &dockerfile,
                &[],
            )),
            provenance: false,
            bases: None,
            force: false,
            buildx_builder: None,
            work_dir: work,
        };
        let opts = BuildOptions {
            docker: self.docker.display().to_string(),
            docker_config: Some(self.user_config.clone()),
            clock: fastdeploy::clock::Clock::scaled(0.001),
            ..Default::default()
        };
        let (runner, lines) = recording_runner();
        let out =
            build_component(BuilderKind::Buildx, &req, &auth(&reg.host), &runner, &opts).await;
        let lines = lines.lock().unwrap().clone();
        (out, lines)
    }
}

/// `#N` lines of the step named `name` (BuildKit's plain rendering).
fn step_lines(log: &[String], name: &str) -> Vec<String> {
    let number = log
        .iter()
        .find_map(|l| {
            l.strip_suffix(name)
                .and_then(|head| head.strip_prefix('#'))
                .map(|n| n.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no step `{name}` in:\n{}", log.join("\n")));
    log.iter()
        .filter(|l| l.starts_with(&format!("#{number} ")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn buildx_builds_pushes_skips_unchanged_commits_and_counts_cached_steps() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app = copy_app(&tmp.path().join("app"));
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));
    let buildx = BuildxHarness::new();

    // 1. First build: every step runs; the digest buildx wrote to the
    //    metadata file is what the registry serves under every tag.
    let p1 = plan(&app, &base, "aaaaaaaaaaaa", REPO);
    let w1 = tmp.path().join("w1");
    let (out, log) = buildx.build(&p1, &reg, &w1).await;
    let first = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert!(first.digest.starts_with("sha256:") && !first.skipped);
    for tag in ["sha-aaaaaaaaaaaa", "production", "main"] {
        assert_eq!(
            client.manifest_digest(REPO, tag).await.unwrap().as_deref(),
            Some(first.digest.as_str()),
            "tag {tag}"
        );
    }
    assert_eq!(
        (first.cached_steps, first.total_steps),
        (Some(0), Some(6)),
        "WORKDIR, COPY, RUN, COPY, RUN of `build` and the final COPY --from, none cached:\n{}",
        log.join("\n")
    );
    assert!(
        first.size.as_ref().is_some_and(|s| s.layers >= 2),
        "the pushed image is measured: {:?}",
        first.size
    );
    // BuildKit's readable lines, not the JSON buildx wrote.
    let run = step_lines(
        &log,
        "[build 4/6] RUN cat lib.txt > lib.out && echo \"library built\"",
    );
    assert!(
        run.iter().any(|l| l.ends_with(" library built")),
        "the step's output, decoded: {run:#?}"
    );
    assert!(run.iter().any(|l| l.contains(" DONE ")), "{run:#?}");
    assert!(
        log.iter()
            .all(|l| !l.trim_start().starts_with('{') && !l.contains("\"vertexes\"")),
        "no JSON:\n{}",
        log.join("\n")
    );
    // The login is a file, never an argument, and it is gone after the build.
    let seen = buildx.seen_config();
    assert_eq!(
        seen["auths"][&reg.host]["auth"],
        crate::support::sandbox::base64_encode(&format!("{ECR_USER}:{ECR_PASSWORD}"))
    );
    assert!(
        buildx.calls().iter().all(|c| !c.contains(ECR_PASSWORD)),
        "{:#?}",
        buildx.calls()
    );
    assert!(
        !buildx.calls().iter().any(|c| c.starts_with("login")),
        "no `docker login` (it warns about unencrypted storage)"
    );
    assert!(
        log.iter()
            .all(|l| !l.contains(ECR_PASSWORD) && !l.contains("unencrypted")),
        "{}",
        log.join("\n")
    );
    assert!(
        !w1.join("docker-config").exists(),
        "the credential file is removed when the build ends"
    );
    // The registry cache, as ECR takes it: an OCI image manifest.
    let cache = client.get_manifest(REPO, "cache-main").await.unwrap();
    assert_eq!(
        cache.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );

    // 2. The same commit on another runner: the content tag is there, nothing is built.
    let builds = buildx
        .calls()
        .iter()
        .filter(|c| c.starts_with("buildx build"))
        .count();
    let (out, log) = buildx.build(&p1, &reg, &tmp.path().join("w2")).await;
    let again = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert!(
        again.skipped && again.digest == first.digest,
        "{}",
        log.join("\n")
    );
    assert_eq!(
        buildx
            .calls()
            .iter()
            .filter(|c| c.starts_with("buildx build"))
            .count(),
        builds,
        "buildx was not run"
    );

    // 3. One file changed: the steps before its COPY come from the cache.
    std::fs::write(app.join("main.txt"), "main v2\n").unwrap();
    let p3 = plan(&app, &base, "bbbbbbbbbbbb", REPO);
    let (out, log) = buildx.build(&p3, &reg, &tmp.path().join("w3")).await;
    let third = out.unwrap_or_else(|e| panic!("{e:#}\n{}", log.join("\n")));
    assert_ne!(third.digest, first.digest);
    assert_eq!(
        (third.cached_steps, third.total_steps),
        (Some(3), Some(6)),
        "WORKDIR, COPY lib.txt and its RUN:\n{}",
        log.join("\n")
    );
    assert!(
        step_lines(&log, "[build 2/6] WORKDIR /src")
            .iter()
            .any(|l| l.ends_with(" CACHED")),
        "{}",
        log.join("\n")
    );
    assert_eq!(
        client
            .manifest_digest(REPO, "production")
            .await
            .unwrap()
            .as_deref(),
        Some(third.digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_buildx_run_step_fails_with_its_last_log_lines() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app = copy_app(&tmp.path().join("app"));
    std::fs::write(
        app.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nRUN echo 'running the tests' && echo 'boom: 3 tests failed' && exit 3\n",
    )
    .unwrap();
    let buildx = BuildxHarness::new();
    let p = plan(&app, &base, "cccccccccccc", REPO);
    let (out, log) = buildx.build(&p, &reg, &tmp.path().join("w")).await;
    let err = format!("{:#}", out.expect_err("the RUN exits 3"));
    assert!(
        err.contains("building component `app` with buildx"),
        "{err}"
    );
    assert!(
        err.contains(" running the tests") && err.contains(" boom: 3 tests failed"),
        "the step's last log lines: {err}"
    );
    assert!(
        err.contains("did not complete successfully: exit code: 3"),
        "{err}"
    );
    assert!(
        !err.contains("\"vertexes\"") && !err.contains("\"digest\""),
        "no JSON in the error: {err}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("ERROR: failed to solve")),
        "buildx's own error passes through:\n{}",
        log.join("\n")
    );
    assert!(
        !tmp.path().join("w/docker-config").exists(),
        "the credential file is removed after a failure too"
    );
}

/// Build secrets reach `RUN --mount=type=secret` from the environment and
/// from a file, with buildah for real, and never as an argument: the step
/// fails unless it reads exactly the values, and no layer holds them.
#[tokio::test(flavor = "multi_thread")]
async fn buildah_mounts_build_secrets_from_the_environment_and_a_file() {
    use fastdeploy::plan::BuildSecret;
    use fastdeploy::settings::SecretSource;
    // The builder inherits fastdeploy's environment, so a variable of this
    // test process stands for the step's secret (unsafe_code is forbidden,
    // so no set_var): cargo sets CARGO_MANIFEST_DIR for the tests it runs.
    let (var, env_value) = ["CARGO_MANIFEST_DIR", "HOME"]
        .iter()
        .find_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|x| !x.is_empty() && !x.contains('\''))
                .map(|x| (v.to_string(), x))
        })
        .expect("the test process has CARGO_MANIFEST_DIR or HOME");
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = push_base_image(&reg, tmp.path());
    let app = tmp.path().join("secret-app");
    std::fs::create_dir_all(&app).unwrap();
    let file_value = format!("s3cr3t-pip-{}", std::process::id());
    // The Dockerfile holds only the values' hashes (it is printed in the log).
    let sha = |v: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(v.as_bytes()))
    };
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\n\
             RUN --mount=type=secret,id=env_secret --mount=type=secret,id=file_secret \
             test \"$(sha256sum < /run/secrets/env_secret | cut -d' ' -f1)\" = {} && \
             test \"$(sha256sum < /run/secrets/file_secret | cut -d' ' -f1)\" = {} && echo seen > /ok\n",
            sha(&env_value),
            sha(&file_value)
        ),
    )
    .unwrap();
    let secret_file = tmp.path().join("pip.conf");
    std::fs::write(&secret_file, &file_value).unwrap();
    let mut p = plan(&app, &base, "cccccccccccc", "shop/secrets");
    p.cache = None;
    p.secrets = vec![
        BuildSecret {
            id: "env_secret".into(),
            source: SecretSource::Env(var),
        },
        BuildSecret {
            id: "file_secret".into(),
            source: SecretSource::File(secret_file.display().to_string()),
        },
    ];
    let (out, log) = build(
        &p,
        &reg,
        &tmp.path().join("w"),
        &tmp.path().join("s"),
        |o| o,
    )
    .await;
    let built = out.unwrap_or_else(|e| {
        panic!(
            "the RUN step did not read the secrets: {e:#}\n{}",
            log.join("\n")
        )
    });
    assert!(built.digest.starts_with("sha256:"));
    assert!(
        log.iter().all(|l| !l.contains(&file_value)),
        "no log line carries a secret: {}",
        log.join("\n")
    );
    // No layer or config holds the file's value: every blob of the pushed image, read back.
    let client = Client::new(&auth(&reg.host), fastdeploy::clock::Clock::scaled(0.001));
    let manifest = client
        .get_manifest("shop/secrets", &built.digest)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let http = reqwest::Client::new();
    for blob in doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&doc["config"]))
    {
        let digest = blob["digest"].as_str().unwrap();
        let bytes = http
            .get(format!("{}/v2/shop/secrets/blobs/{digest}", reg.url()))
            .basic_auth(ECR_USER, Some(ECR_PASSWORD))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut text = Vec::new();
        if blob["mediaType"]
            .as_str()
            .is_some_and(|m| m.contains("gzip"))
        {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                .unwrap();
        } else {
            text = bytes.to_vec();
        }
        assert!(
            !String::from_utf8_lossy(&text).contains(&file_value),
            "blob {digest} holds a secret"
        );
    }
}
