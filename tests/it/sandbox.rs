//! The test sandbox: real parts started on free loopback ports and stopped
//! when dropped.
//!
//! - [`Moto`]: moto in server mode (AWS APIs), with the `tests/sandbox/ext_*.py`
//!   extensions that move ECS deployments and CodeBuild builds through their states.
//! - [`Registry`]: the `docker-registry` package (CNCF distribution) with
//!   htpasswd auth accepting the credentials moto's ECR token decodes to.
//! - [`Receiver`]: a recording HTTP receiver for Slack and the GitHub API.

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
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process that printed `ready` and is killed on drop.
pub struct Proc {
    child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Starts `cmd` and waits for a line starting with `ready` on stdout.
    fn start_ready(name: &'static str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("sandbox: cannot start {name}: {e} (run .ci/run or see README to install it)"));
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
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("sandbox: {name} did not become ready in 60 s"));
        Proc { child, name }
    }

    /// Starts `cmd` and waits until `port` accepts connections.
    fn start_port(name: &'static str, mut cmd: Command, port: u16) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("sandbox: cannot start {name}: {e} (run .ci/run or see README to install it)"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sandbox: {name} did not listen on {port} in 30 s");
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
        cmd.arg(repo_root().join("tests/sandbox/moto_server.py")).arg(port.to_string());
        let proc = Proc::start_ready("moto", cmd);
        Moto { _proc: proc, endpoint: format!("http://127.0.0.1:{port}") }
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
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "sandbox"))
            .load()
            .await
    }

    /// Sandbox control endpoint of the extensions (`/_sandbox/...`), e.g. to
    /// make the next deployment fail.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        http_post_json(&format!("{}/_sandbox/{}", self.endpoint, path.trim_start_matches('/')), &body)
    }
}

/// A real OCI registry (CNCF distribution from the `docker-registry` package).
pub struct Registry {
    _proc: Proc,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let htpasswd = dir.path().join("htpasswd");
        let out = Command::new("htpasswd").args(["-Bbn", ECR_USER, ECR_PASSWORD]).output().expect("htpasswd (apache2-utils) is installed");
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
        Registry { _proc: proc, host: format!("127.0.0.1:{port}"), dir }
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
        cmd.arg(repo_root().join("tests/sandbox/receiver.py")).arg(port.to_string()).args(flags);
        let proc = Proc::start_ready("receiver", cmd);
        Receiver { _proc: proc, url: format!("http://127.0.0.1:{port}") }
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
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

pub fn http_get_json(url: &str) -> serde_json::Value {
    client().get(url).send().and_then(|r| r.json()).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn http_post_json(url: &str, body: &serde_json::Value) -> serde_json::Value {
    client().post(url).json(body).send().and_then(|r| r.json()).unwrap_or_else(|e| panic!("POST {url}: {e}"))
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
