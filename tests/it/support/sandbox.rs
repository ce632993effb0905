//! The test sandbox: real parts started on free loopback ports and stopped
//! when dropped.
//!
//! - [`Moto`]: moto in server mode (AWS APIs), with the `tests/sandbox/ext_*.py`
//!   extensions that move ECS deployments and CodeBuild builds through their states.
//! - [`Registry`]: the `docker-registry` package (CNCF distribution) with
//!   htpasswd auth accepting the credentials moto's ECR token decodes to.
//! - [`Receiver`]: a recording HTTP receiver for Slack and the GitHub API.
//! - [`Docker`]: a private dockerd with BuildKit and the buildx plugin
//!   (`tests/sandbox/dockerd.py`), one per test binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's default account; its ECR token decodes to `AWS:<account>-auth-token`.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const ECR_USER: &str = "AWS";
pub const ECR_PASSWORD: &str = "123456789012-auth-token";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that printed `ready` and is killed on drop.
pub struct Proc {
    child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Starts `cmd` and waits for a line starting with `ready` on stdout.
    fn start_ready(name: &'static str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("sandbox: cannot start {name}: {e} (run .ci/run or see README to install it)")
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.starts_with("ready") {
                    let _ = tx.send(());
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("sandbox: {name} did not become ready in 60 s"));
        Proc { child, name }
    }

    /// Starts `cmd` and waits until `port` accepts connections.
    fn start_port(name: &'static str, mut cmd: Command, port: u16) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("sandbox: cannot start {name}: {e} (run .ci/run or see README to install it)")
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sandbox: {name} did not listen on {port} in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Proc { child, name }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("FASTDEPLOY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// moto server with the sandbox extensions.
pub struct Moto {
    _proc: Proc,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/sandbox/moto_server.py"))
            .arg(port.to_string());
        let proc = Proc::start_ready("moto", cmd);
        Moto {
            _proc: proc,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Environment that points the AWS SDK (and fastdeploy) at this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// An SDK config for talking to this moto directly from tests.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        // The SDK's standard retries (3 attempts), with back-off in
        // milliseconds: a throttled call costs the tests no real seconds.
        let retries = aws_config::retry::RetryConfig::standard()
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(50));
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .retry_config(retries)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "sandbox",
            ))
            .load()
            .await
    }

    /// Sandbox control endpoint of the extensions (`/_sandbox/...`), e.g. to
    /// make the next deployment fail.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        http_post_json(
            &format!(
                "{}/_sandbox/{}",
                self.endpoint,
                path.trim_start_matches('/')
            ),
            &body,
        )
    }
}

/// A real OCI registry (CNCF distribution from the `docker-registry` package).
pub struct Registry {
    _proc: Proc,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// The sandbox's credentials for this registry (plain HTTP), as a run
    /// logs in to ECR.
    pub fn auth(&self) -> fastdeploy::image::registry::RegistryAuth {
        fastdeploy::image::registry::RegistryAuth {
            host: self.host.clone(),
            username: ECR_USER.into(),
            password: secrecy::SecretString::from(ECR_PASSWORD),
            insecure: true,
        }
    }

    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let htpasswd = dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", ECR_USER, ECR_PASSWORD])
            .output()
            .expect("htpasswd (apache2-utils) is installed");
        assert!(out.status.success());
        std::fs::write(&htpasswd, &out.stdout).unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: sandbox\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(registry_binary());
        cmd.arg("serve").arg(&config);
        let proc = Proc::start_port("docker-registry", cmd, port);
        Registry {
            _proc: proc,
            host: format!("127.0.0.1:{port}"),
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }
}

fn registry_binary() -> String {
    for p in ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "docker-registry".into()
}

/// A recording receiver (Slack or GitHub API stand-in).
pub struct Receiver {
    _proc: Proc,
    pub url: String,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_with(&[])
    }

    /// A receiver that also emulates GitHub's deployments and comments,
    /// keeping state across runs (see tests/sandbox/github_api.py).
    pub fn start_github() -> Receiver {
        Self::start_with(&["--github"])
    }

    fn start_with(flags: &[&str]) -> Receiver {
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/sandbox/receiver.py"))
            .arg(port.to_string())
            .args(flags);
        let proc = Proc::start_ready("receiver", cmd);
        Receiver {
            _proc: proc,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Everything recorded so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let v = http_get_json(&format!("{}/__requests", self.url));
        v.as_array().cloned().unwrap_or_default()
    }

    /// Queues scripted responses (see receiver.py).
    pub fn script(&self, rules: serde_json::Value) {
        http_post_json(&format!("{}/__script", self.url), &rules);
    }

    /// Sets default responses for matching requests.
    pub fn default_response(&self, rules: serde_json::Value) {
        http_post_json(&format!("{}/__default", self.url), &rules);
    }

    /// `cmd` with this receiver as its HTTP proxy, the sandbox's own
    /// loopback services reached directly: it answers for names nothing
    /// resolves here (an environment's CNAME, a load balancer's), by host.
    pub fn proxy_for(&self, cmd: &mut Command) {
        for (name, value) in [
            ("HTTP_PROXY", self.url.as_str()),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ] {
            cmd.env(name, value).env(name.to_lowercase(), value);
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn http_get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn http_post_json(url: &str, body: &serde_json::Value) -> serde_json::Value {
    client()
        .post(url)
        .json(body)
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// `fastdeploy` as the runner invokes it: a clean environment (no GITHUB_*
/// or AWS_* leaking in from the machine running the tests).
pub fn fastdeploy(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastdeploy"));
    cmd.env_clear().current_dir(cwd);
    for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

// ---------------------------------------------------------------------------
// The whole sandbox for binary-level end-to-end runs (tests/it/e2e.rs,
// tests/it/faults.rs): what tests/sandbox/demo.py starts, as Rust.

/// The flaky HTTP proxy (tests/sandbox/flaky_proxy.py) in front of a registry.
pub struct FlakyProxy {
    _proc: Proc,
    pub host: String,
}

impl FlakyProxy {
    pub fn start(upstream: &str) -> FlakyProxy {
        let port = free_port();
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/sandbox/flaky_proxy.py"))
            .arg(port.to_string())
            .arg(upstream);
        let proc = Proc::start_ready("flaky proxy", cmd);
        FlakyProxy {
            _proc: proc,
            host: format!("127.0.0.1:{port}"),
        }
    }

    /// Replaces the fault (see flaky_proxy.py), e.g. `{"times": 3}`.
    pub fn fault(&self, body: serde_json::Value) -> serde_json::Value {
        let answer = http_post_json(&format!("http://{}/__flaky/config", self.host), &body);
        assert!(
            answer.get("error").is_none(),
            "flaky proxy refused {body}: {answer}"
        );
        answer
    }

    /// `{"faulted": n, "forwarded": n, "log": [[method, path, status], ...]}`.
    pub fn state(&self) -> serde_json::Value {
        http_get_json(&format!("http://{}/__flaky/state", self.host))
    }
}

/// At most this many full sandboxes run at once (each is moto, a registry,
/// two receivers and a buildah build): on a 2-core machine more only makes
/// every ECS step and build time out together.
fn full_sandbox_permit() -> Permit {
    let limit = std::env::var("FASTDEPLOY_TEST_E2E_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize)
        .max(1);
    let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    while *used >= limit {
        used = FREED.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += 1;
    Permit
}

static SLOTS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

struct Permit;

impl Drop for Permit {
    fn drop(&mut self) {
        *SLOTS.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}

/// Moto (with the extensions, ECS seeded), a registry holding a busybox base
/// image, a Slack receiver and a stateful GitHub receiver, and a git
/// workspace holding examples/shop committed once: everything `fastdeploy
/// run` needs for a push to main, on its own ports and directories.
///
/// The ECS service is `shop` in cluster `demo`, on `shop-web:1` (an nginx
/// image), circuit breaker with rollback on, 2 tasks; the component is `app`,
/// pushed to `acme/shop`.
pub struct FullSandbox {
    // Dropped first: the processes stop before their directories go.
    pub moto: Moto,
    pub registry: Registry,
    pub slack: Receiver,
    pub github: Receiver,
    /// `<registry>/base:1`, the Dockerfile's `BASE`.
    pub base: String,
    /// The commit `run` deploys.
    pub sha: String,
    pub workspace: PathBuf,
    pub dir: tempfile::TempDir,
    _permit: Permit,
}

pub const CLUSTER: &str = "demo";
pub const SERVICE: &str = "shop";
pub const FAMILY: &str = "shop-web";
pub const REPOSITORY: &str = "acme/shop";
pub const RUN_ID: &str = "1001";

pub const FUNCTION: &str = "shop-thumbs";
pub const FUNCTION_REPOSITORY: &str = "acme/shop-thumbs";

impl FullSandbox {
    /// The single-component sandbox: examples/shop without its
    /// fastdeploy.yml, deployed through inputs (`app` to the `shop` service).
    pub fn start() -> FullSandbox {
        let mut sb = Self::start_inner();
        std::fs::remove_file(sb.workspace.join("fastdeploy.yml")).unwrap();
        sb.sha = commit_all(&sb.workspace, "main", "Faster checkout");
        sb.rewrite_event();
        sb
    }

    /// examples/shop as it is, with its fastdeploy.yml: `web` on the ECS
    /// service `shop` and `thumbs` on the Lambda function `shop-thumbs`
    /// (package type Image, x86_64, first deployed from the base image).
    /// Run it with [`FullSandbox::config_command`].
    pub fn start_with_config() -> FullSandbox {
        let sb = Self::start_inner();
        seed_lambda(&sb.moto, &sb.registry, &sb.base);
        sb
    }

    fn start_inner() -> FullSandbox {
        let permit = full_sandbox_permit();
        let dir = tempfile::Builder::new()
            .prefix("fastdeploy-e2e-")
            .tempdir()
            .unwrap();
        let moto = Moto::start();
        let registry = Registry::start();
        let slack = Receiver::start();
        let github = Receiver::start_github();
        let base = push_busybox_base(&registry.host, dir.path());
        seed_ecs(&moto);
        let (workspace, sha) = shop_workspace(dir.path());
        let event: serde_json::Value = {
            let mut e: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(repo_root().join("tests/fixtures/events/push-main.json"))
                    .unwrap(),
            )
            .unwrap();
            e["after"] = sha.clone().into();
            e["head_commit"]["id"] = sha.clone().into();
            e["head_commit"]["message"] = "Faster checkout".into();
            e
        };
        std::fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
        FullSandbox {
            moto,
            registry,
            slack,
            github,
            base,
            sha,
            workspace,
            dir,
            _permit: permit,
        }
    }

    /// Commits `text` to `file` in the workspace and points the push event
    /// at that commit: the next run builds and deploys it.
    pub fn commit_change(&mut self, file: &str, text: &str) {
        std::fs::write(self.workspace.join(file), text).unwrap();
        self.sha = commit_all(&self.workspace, "main", &format!("Change {file}"));
        self.rewrite_event();
    }

    /// Checks out `sha` in the workspace and points the push event at it (a
    /// redeploy of an earlier commit).
    pub fn checkout(&mut self, sha: &str) {
        let status = Command::new("git")
            .args(["-c", "advice.detachedHead=false", "checkout", "-q", sha])
            .current_dir(&self.workspace)
            .status()
            .expect("git is installed");
        assert!(status.success(), "git checkout {sha}");
        self.sha = sha.to_string();
        self.rewrite_event();
    }

    /// Points the push event at the workspace's current commit.
    fn rewrite_event(&self) {
        let sha = self.sha.clone();
        let path = self.dir.path().join("event.json");
        let mut e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        e["after"] = sha.clone().into();
        e["head_commit"]["id"] = sha.into();
        std::fs::write(path, e.to_string()).unwrap();
    }

    /// `fastdeploy run` for the config's components: [`FullSandbox::command`]
    /// without the single-component inputs (the config names them).
    pub fn config_command(&self) -> Command {
        self.config_command_with(&["run"])
    }

    /// [`FullSandbox::config_command`] with other arguments than `run`.
    pub fn config_command_with(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_with(args);
        for name in [
            "INPUT_REPOSITORY",
            "INPUT_CLUSTER",
            "INPUT_SERVICE",
            "INPUT_CONTAINER",
        ] {
            cmd.env_remove(name);
        }
        cmd
    }

    pub fn output_file(&self) -> PathBuf {
        self.dir.path().join("output")
    }

    pub fn summary_file(&self) -> PathBuf {
        self.dir.path().join("summary.md")
    }

    /// buildah's storage for fastdeploy's builds (one per sandbox; a second
    /// run reuses it as a runner's cache would).
    pub fn buildah_flags(&self) -> String {
        let s = self.dir.path().join("containers");
        format!(
            "--root {} --runroot {} --storage-driver vfs",
            s.join("root").display(),
            s.join("run").display()
        )
    }

    /// `fastdeploy run` exactly as the Actions runner starts it for a push
    /// to main, pointed at this sandbox: webhook Slack, GitHub deployments,
    /// delays scaled down 100× (a 5 s poll is 50 ms, the 30 min wait 18 s).
    /// Tests add or override env before running it.
    pub fn command(&self) -> Command {
        self.command_with(&["run"])
    }

    /// [`FullSandbox::command`] with other arguments than `run`.
    pub fn command_with(&self, args: &[&str]) -> Command {
        let mut cmd = fastdeploy(&self.workspace);
        cmd.args(args);
        let env: Vec<(String, String)> = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("GITHUB_EVENT_NAME".into(), "push".into()),
            (
                "GITHUB_EVENT_PATH".into(),
                self.dir.path().join("event.json").display().to_string(),
            ),
            ("GITHUB_REF".into(), "refs/heads/main".into()),
            ("GITHUB_SHA".into(), self.sha.clone()),
            ("GITHUB_REPOSITORY".into(), "acme/shop".into()),
            ("GITHUB_SERVER_URL".into(), "https://github.com".into()),
            ("GITHUB_API_URL".into(), self.github.url.clone()),
            ("GITHUB_RUN_ID".into(), RUN_ID.into()),
            ("GITHUB_RUN_ATTEMPT".into(), "1".into()),
            (
                "GITHUB_WORKSPACE".into(),
                self.workspace.display().to_string(),
            ),
            (
                "GITHUB_OUTPUT".into(),
                self.output_file().display().to_string(),
            ),
            (
                "GITHUB_STEP_SUMMARY".into(),
                self.summary_file().display().to_string(),
            ),
            ("FASTDEPLOY_SLACK_API_URL".into(), self.slack.url.clone()),
            ("FASTDEPLOY_REGISTRY_INSECURE".into(), "true".into()),
            ("FASTDEPLOY_BUILDAH_FLAGS".into(), self.buildah_flags()),
            ("FASTDEPLOY_BUILDAH_ISOLATION".into(), "chroot".into()),
            ("FASTDEPLOY_DELAY_SCALE".into(), "0.01".into()),
            ("INPUT_BUILDER".into(), "buildah".into()),
            ("INPUT_REGISTRY".into(), self.registry.host.clone()),
            ("INPUT_REPOSITORY".into(), REPOSITORY.into()),
            ("INPUT_BUILD_ARGS".into(), format!("BASE={}", self.base)),
            ("INPUT_CLUSTER".into(), CLUSTER.into()),
            ("INPUT_SERVICE".into(), SERVICE.into()),
            ("INPUT_CONTAINER".into(), "web".into()),
            ("INPUT_POLL_SECONDS".into(), "5".into()),
            (
                "INPUT_SLACK_WEBHOOK_URL".into(),
                format!("{}/services/T000/B000/XXXXE2E", self.slack.url),
            ),
            (
                "INPUT_GITHUB_TOKEN".into(),
                "ghs_e2eTokenNotReal000000000000".into(),
            ),
            (
                "INPUT_ENVIRONMENT_URL".into(),
                "https://shop.example.com".into(),
            ),
        ];
        cmd.envs(env).envs(self.moto.env());
        cmd
    }

    /// The step outputs written so far (`$GITHUB_OUTPUT`).
    pub fn outputs(&self) -> Vec<(String, String)> {
        fastdeploy::gha::parse_output_file(
            &std::fs::read_to_string(self.output_file()).unwrap_or_default(),
        )
    }

    pub fn output(&self, name: &str) -> Option<String> {
        self.outputs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.summary_file()).unwrap_or_default()
    }

    /// True when nothing was pushed to the app's repository yet.
    pub fn registry_tags_empty(&self) -> bool {
        let resp = client()
            .get(format!("{}/v2/{REPOSITORY}/tags/list", self.registry.url()))
            .basic_auth(ECR_USER, Some(ECR_PASSWORD))
            .send()
            .unwrap();
        resp.status() == reqwest::StatusCode::NOT_FOUND
            || resp.json::<serde_json::Value>().unwrap()["tags"]
                .as_array()
                .is_none_or(|t| t.is_empty())
    }
}

/// buildah on the storage `push_busybox_base` keeps in `work` (vfs, no
/// daemon), so a test can build variants on the base it pushed.
pub fn base_buildah(work: &Path, args: &[&str]) -> String {
    let storage = work.join("base-storage");
    let out = Command::new("buildah")
        .args(["--storage-driver", "vfs", "--root"])
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("buildah is installed");
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A containers-auth file in `work` with the sandbox's ECR credentials
/// for `registry`; returns its path.
pub fn registry_authfile(registry: &str, work: &Path, name: &str) -> String {
    let path = work.join(name);
    let auth = serde_json::json!({"auths": {registry: {"auth": base64_encode(&format!("{ECR_USER}:{ECR_PASSWORD}"))}}});
    std::fs::write(&path, auth.to_string()).unwrap();
    path.display().to_string()
}

/// Pushes the base image buildah holds now (the last [`push_busybox_base`])
/// to `<registry>/<repo>:<tag>` as well; the reference pushed.
pub fn push_base_as(sb: &FullSandbox, repo: &str, tag: &str) -> String {
    let work = sb.dir.path();
    let authfile = registry_authfile(&sb.registry.host, work, "push-as-auth.json");
    let reference = format!("{}/{repo}:{tag}", sb.registry.host);
    base_buildah(
        work,
        &[
            "push",
            "--authfile",
            &authfile,
            "--tls-verify=false",
            "localhost/fd-base:1",
            &format!("docker://{reference}"),
        ],
    );
    reference
}

/// Builds busybox on scratch (nothing can be pulled here) and pushes it as
/// `<registry>/base:1`, keeping buildah's storage under `work`.
pub fn push_busybox_base(registry: &str, work: &Path) -> String {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (apt-get install busybox-static)");
    let buildah = |args: &[&str]| base_buildah(work, args);
    let authfile = registry_authfile(registry, work, "base-auth.json");
    let authfile = authfile.as_str();
    let ctr = buildah(&["from", "scratch"]);
    buildah(&["copy", &ctr, busybox, "/bin/busybox"]);
    // A layer of its own: the sandbox's dockerd is shared by the tests, and
    // BuildKit would share identical busybox layers (and every cache key
    // built on them) between builds from different registries, pulling a
    // blob with another build's credentials and counting another test's
    // steps as cached.
    let id = work.join("base-id");
    std::fs::write(&id, format!("{registry} {}\n", fastrand::u64(..))).unwrap();
    buildah(&["copy", &ctr, id.to_str().unwrap(), "/etc/sandbox-base-id"]);
    buildah(&[
        "run",
        "--isolation",
        "chroot",
        &ctr,
        "/bin/busybox",
        "--install",
        "-s",
        "/bin",
    ]);
    buildah(&["config", "--cmd", "/bin/sh", &ctr]);
    buildah(&["commit", "-q", &ctr, "localhost/fd-base:1"]);
    let base = format!("{registry}/base:1");
    buildah(&[
        "push",
        "--authfile",
        authfile,
        "--tls-verify=false",
        "localhost/fd-base:1",
        &format!("docker://{base}"),
    ]);
    base
}

/// Creates a CodeBuild project in moto, as a team's would look.
pub async fn create_codebuild_project(moto: &Moto, name: &str) {
    use aws_sdk_codebuild::types::{ProjectArtifacts, ProjectEnvironment, ProjectSource};
    let cb = aws_sdk_codebuild::Client::new(&moto.sdk_config().await);
    cb.create_project()
        .name(name)
        .source(
            ProjectSource::builder()
                .r#type("GITHUB".into())
                .location("https://github.com/acme/shop")
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type("NO_ARTIFACTS".into())
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type("LINUX_CONTAINER".into())
                .image("aws/codebuild/standard:7.0")
                .compute_type("BUILD_GENERAL1_SMALL".into())
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/codebuild-shop")
        .send()
        .await
        .unwrap();
}

pub fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Cluster `demo`, service `shop` on `shop-web:1` (2 tasks, circuit breaker
/// with rollback), as tests/sandbox/demo.py seeds it; ECS steps every 0.1 s.
fn seed_ecs(moto: &Moto) {
    use aws_sdk_ecs::types::{
        ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, PortMapping,
    };
    moto.control("ecs/config", serde_json::json!({"step_seconds": 0.1}));
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
        ecs.create_cluster()
            .cluster_name(CLUSTER)
            .send()
            .await
            .unwrap();
        ecs.register_task_definition()
            .family(FAMILY)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("public.ecr.aws/nginx/nginx:1.27")
                    .essential(true)
                    .memory(128)
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Ec2)
            .tags(
                aws_sdk_ecs::types::Tag::builder()
                    .key("team")
                    .value("shop")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name(SERVICE)
            .task_definition(format!("{FAMILY}:1"))
            .desired_count(2)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build(),
                    )
                    .maximum_percent(200)
                    .minimum_healthy_percent(100)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
}

/// Runs a future on a fresh current-thread runtime (tests are plain `#[test]`s).
/// Captured output and a cancellation that fires once a line containing
/// `needle` has been printed, as a workflow cancelled at that moment; await
/// the handle after the run.
pub fn cancel_on_line(
    needle: &'static str,
) -> (
    fastdeploy::gha::Captured,
    fastdeploy::gha::Actions,
    fastdeploy::cancel::Cancel,
    tokio::task::JoinHandle<()>,
) {
    let (captured, actions) = fastdeploy::gha::Actions::capture();
    let (handle, cancel) = fastdeploy::cancel::Cancel::new();
    let watcher = captured.clone();
    let canceller = tokio::spawn(async move {
        while !watcher.lines().iter().any(|l| l.contains(needle)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        handle.cancel();
    });
    (captured, actions, cancel, canceller)
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An IAM role in moto (Lambda's CreateFunction checks that its role exists),
/// created through IAM's query API as the AWS CLI would.
pub fn create_role(moto: &Moto, name: &str) {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let resp = client()
        .post(&moto.endpoint)
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .form(&[("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", name), ("AssumeRolePolicyDocument", policy)])
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "iam:CreateRole {name}: {}",
        resp.text().unwrap_or_default()
    );
}

/// The first subnet and security group of moto's default VPC, read through
/// EC2's query API (the tests need no EC2 SDK for two ids).
pub fn default_subnet_and_security_group(moto: &Moto) -> (String, String) {
    let ask = |action: &str| -> String {
        client()
            .post(&moto.endpoint)
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
            )
            .form(&[("Action", action), ("Version", "2016-11-15")])
            .send()
            .and_then(|r| r.text())
            .unwrap()
    };
    let first = |xml: &str, tag: &str| -> String {
        let open = format!("<{tag}>");
        let at = xml
            .find(&open)
            .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
            + open.len();
        xml[at..at + xml[at..].find('<').unwrap()].to_string()
    };
    (
        first(&ask("DescribeSubnets"), "subnetId"),
        first(&ask("DescribeSecurityGroups"), "groupId"),
    )
}

/// The Lambda function of examples/shop's `thumbs` component, created from
/// the base image as a team's first deploy by hand would; updates take 3
/// steps of 0.1 s.
fn seed_lambda(moto: &Moto, registry: &Registry, base: &str) {
    moto.control(
        "lambda/config",
        serde_json::json!({"step_seconds": 0.1, "steps": 3, "create_steps": 1}),
    );
    let digest = registry_manifest_digest(registry, "base", "1");
    let image = format!(
        "{base_repo}@{digest}",
        base_repo = base.trim_end_matches(":1")
    );
    create_role(moto, "shop-thumbs");
    block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
        lambda
            .create_function()
            .function_name(FUNCTION)
            .package_type(aws_sdk_lambda::types::PackageType::Image)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .image_uri(image)
                    .build(),
            )
            .role(format!("arn:aws:iam::{ACCOUNT}:role/shop-thumbs"))
            .architectures(aws_sdk_lambda::types::Architecture::X8664)
            .send()
            .await
            .unwrap();
    });
}

/// The digest the registry holds for `repository:tag`.
pub fn registry_manifest_digest(registry: &Registry, repository: &str, tag: &str) -> String {
    let resp = client()
        .head(format!("{}/v2/{repository}/manifests/{tag}", registry.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "registry HEAD {repository}:{tag}: {}",
        resp.status()
    );
    resp.headers()
        .get("Docker-Content-Digest")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// examples/shop committed once on `main`; returns the workspace and the commit.
fn shop_workspace(work: &Path) -> (PathBuf, String) {
    let ws = work.join("shop");
    copy_dir(&repo_root().join("examples/shop"), &ws);
    let sha = commit_all(&ws, "main", "Faster checkout");
    (ws, sha)
}

/// Makes `dir` a git repository on `branch` with everything in it committed
/// once by Dana Scully; returns the commit.
pub fn commit_all(dir: &Path, branch: &str, message: &str) -> String {
    let git = |args: &[&str]| -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Dana Scully",
                "-c",
                "user.email=dana@acme.example",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git is installed");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", branch]);
    git(&["add", "."]);
    git(&["commit", "-qm", message]);
    git(&["rev-parse", "HEAD"])
}

/// Copies a directory tree (fixtures into a test's workspace).
pub fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dest.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// A real docker daemon for the buildx path.

/// Where scripts/install-sandbox unpacks Debian 13's docker.io, docker-cli,
/// containerd and docker-buildx.
pub fn docker_dir() -> PathBuf {
    std::env::var_os("FASTDEPLOY_SANDBOX_DOCKER_DIR").map_or_else(
        || PathBuf::from("/opt/fastdeploy-sandbox/docker"),
        PathBuf::from,
    )
}

/// A private dockerd (BuildKit, containerd image store, so the default
/// `docker`-driver builder exports registry cache) with the buildx plugin:
/// `tests/sandbox/dockerd.py` on its own socket, data, bridge and
/// `DOCKER_CONFIG`. Needs root, like dockerd.
pub struct Docker {
    proc: Proc,
    /// `DOCKER_HOST`: `unix://<dir>/docker.sock`.
    pub host: String,
    /// A `DOCKER_CONFIG` whose `cli-plugins/` links docker-buildx. Shared by
    /// every test of the binary: log in with [`Docker::new_config`]'s instead.
    pub docker_config: PathBuf,
    /// The docker CLI of the daemon's version.
    pub docker: PathBuf,
    /// The daemon's directory (removed when it stops).
    pub dir: PathBuf,
}

impl Docker {
    /// The test binary's daemon, started on first use. Tests share it; it
    /// stops (and its directory goes) when the test binary exits and so
    /// closes dockerd.py's stdin.
    pub fn shared() -> &'static Docker {
        static SHARED: std::sync::OnceLock<Docker> = std::sync::OnceLock::new();
        SHARED.get_or_init(Docker::start)
    }

    /// A daemon of its own, stopped when dropped.
    pub fn start() -> Docker {
        Self::start_with(&[])
    }

    /// A daemon of its own on dockerd's classic image store (docker 26's
    /// default without the containerd feature): its default builder cannot
    /// export registry cache.
    pub fn start_classic() -> Docker {
        Self::start_with(&["--classic-store"])
    }

    fn start_with(flags: &[&str]) -> Docker {
        let dir = tempfile::Builder::new()
            .prefix("fastdeploy-docker-")
            .tempdir()
            .unwrap()
            .keep();
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("tests/sandbox/dockerd.py"))
            .arg(&dir)
            .arg("--remove-dir")
            .args(flags);
        let proc = Proc::start_ready("dockerd", cmd);
        Docker {
            proc,
            host: format!("unix://{}", dir.join("docker.sock").display()),
            docker_config: dir.join("config"),
            docker: docker_dir().join("usr/bin/docker"),
            dir,
        }
    }

    /// Environment that points fastdeploy (and the docker CLI) at this daemon.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DOCKER_HOST".into(), self.host.clone()),
            (
                "DOCKER_CONFIG".into(),
                self.docker_config.display().to_string(),
            ),
            (
                "FASTDEPLOY_DOCKER".into(),
                self.docker.display().to_string(),
            ),
        ]
    }

    /// A fresh `DOCKER_CONFIG` under `dir` with the buildx plugin linked in,
    /// so a test's logins and builders stay its own.
    pub fn new_config(&self, dir: &Path) -> PathBuf {
        let config = dir.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let plugins = config.join("cli-plugins");
        if !plugins.exists() {
            std::os::unix::fs::symlink(self.docker_config.join("cli-plugins"), &plugins).unwrap();
        }
        config
    }

    /// The docker CLI on this daemon with `config` as its `DOCKER_CONFIG`.
    pub fn command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(&self.docker);
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", config)
            .stdin(Stdio::null());
        cmd
    }

    /// Writes the sandbox registry's credentials into `config`'s
    /// config.json as `docker login` would, without its "stored
    /// unencrypted" warning.
    pub fn write_auth(config: &Path, registry: &str) {
        let file = config.join("config.json");
        let mut json: serde_json::Value = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        json["auths"][registry] =
            serde_json::json!({"auth": base64_encode(&format!("{ECR_USER}:{ECR_PASSWORD}"))});
        std::fs::write(&file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Closing stdin lets dockerd.py stop dockerd and clean up before
        // Proc's drop kills it.
        drop(self.proc.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(self.proc.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Pushes a one-config, no-layer image for linux/amd64 (its own digest per
/// `n`) to the sandbox registry; returns the digest.
pub fn push_tiny_image(registry: &Registry, repo: &str, n: usize) -> String {
    use sha2::Digest;
    let http = reqwest::blocking::Client::new();
    let auth = |r: reqwest::blocking::RequestBuilder| r.basic_auth(ECR_USER, Some(ECR_PASSWORD));
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"n": n.to_string()}}, "rootfs": {"type": "layers", "diff_ids": []}}).to_string();
    let config_digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(config.as_bytes()))
    );
    let start = auth(http.post(format!("{}/v2/{repo}/blobs/uploads/", registry.url())))
        .send()
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{}{location}", registry.url())
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = auth(http.put(format!("{location}{sep}digest={config_digest}")))
        .body(config.clone())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "config blob: {}", put.status());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": []
    })
    .to_string();
    let put = auth(http.put(format!("{}/v2/{repo}/manifests/{n}", registry.url())))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "manifest: {}", put.status());
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(manifest.as_bytes()))
    )
}
