//! Running the `fastdeploy` binary as the runner does, and reading what a
//! run left behind: its exit and streams, what ECS, the registry, GitHub and
//! Slack now hold; and a test of this binary run in a child process, for
//! the log it prints.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::sandbox::{
    ACCOUNT, CLUSTER, ECR_PASSWORD, ECR_USER, FAMILY, FullSandbox, REGION, SERVICE, block_on,
    http_get_json,
};

/// What one `fastdeploy run` printed and how it ended.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Both streams, for failure messages.
    pub fn log(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(mut cmd: Command) -> Ran {
    let out = cmd.stdin(Stdio::null()).output().expect("fastdeploy runs");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn task_definition_arn(revision: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:{revision}")
}

/// What ECS holds for the sandbox's service, read back with the SDK.
pub struct EcsView {
    /// The service's task definition (what it runs, or is rolling out).
    pub task_definition: String,
    /// Images of that task definition's containers.
    pub images: Vec<String>,
    /// `(status, taskDefinition, rolloutState)` of each deployment.
    pub deployments: Vec<(String, String, String)>,
    /// Every revision of the family, ACTIVE or not.
    pub revisions: Vec<String>,
}

pub fn ecs_view(sb: &FullSandbox) -> EcsView {
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sb.moto.sdk_config().await);
        let out = ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
        let service = out
            .services()
            .first()
            .expect("the sandbox service exists")
            .clone();
        let task_definition = service.task_definition().unwrap().to_string();
        let td = ecs
            .describe_task_definition()
            .task_definition(&task_definition)
            .send()
            .await
            .unwrap();
        let images = td
            .task_definition()
            .unwrap()
            .container_definitions()
            .iter()
            .filter_map(|c| c.image().map(str::to_string))
            .collect();
        let deployments = service
            .deployments()
            .iter()
            .map(|d| {
                (
                    d.status().unwrap_or_default().to_string(),
                    d.task_definition().unwrap_or_default().to_string(),
                    d.rollout_state()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let mut revisions = Vec::new();
        for status in [
            aws_sdk_ecs::types::TaskDefinitionStatus::Active,
            aws_sdk_ecs::types::TaskDefinitionStatus::Inactive,
        ] {
            let list = ecs
                .list_task_definitions()
                .family_prefix(FAMILY)
                .status(status)
                .send()
                .await
                .unwrap();
            revisions.extend(list.task_definition_arns().iter().cloned());
        }
        revisions.sort();
        EcsView {
            task_definition,
            images,
            deployments,
            revisions,
        }
    })
}

/// The digest the registry holds for `repository:tag`, asked directly (not
/// through any proxy a test put in front of it).
pub fn registry_digest(sb: &FullSandbox, repository: &str, tag: &str) -> Option<String> {
    let resp = reqwest::blocking::Client::new()
        .head(format!("{}/v2/{repository}/manifests/{tag}", sb.registry.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .unwrap();
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(
        resp.status().is_success(),
        "registry HEAD {repository}:{tag}: {}",
        resp.status()
    );
    resp.headers()
        .get("Docker-Content-Digest")
        .map(|v| v.to_str().unwrap().to_string())
}

/// The GitHub deployments the emulated API holds, newest first.
pub fn github_deployments(sb: &FullSandbox) -> Vec<Value> {
    http_get_json(&format!("{}/repos/acme/shop/deployments", sb.github.url))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A deployment's status states, oldest first.
pub fn github_states(sb: &FullSandbox, deployment: &Value) -> Vec<String> {
    let id = deployment["id"].as_u64().unwrap();
    let statuses = http_get_json(&format!(
        "{}/repos/acme/shop/deployments/{id}/statuses",
        sb.github.url
    ));
    statuses
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

/// The `images` output for the one component, `app`.
pub fn image_output(sb: &FullSandbox) -> Value {
    let images: Value =
        serde_json::from_str(&sb.output("images").expect("the images output is written")).unwrap();
    images["app"].clone()
}

/// Requests the Slack receiver got that are messages (not control calls).
pub fn slack_messages(sb: &FullSandbox) -> Vec<Value> {
    sb.slack
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .collect()
}

/// Runs `test` (an ignored test of this binary) in a child process and
/// returns whether it passed and everything it printed: the action log.
pub fn run_child(test: &str) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Asserts no line of `log` shows `secret`, except the `::add-mask::` line
/// that hands it to the runner (which must be there).
pub fn assert_no_secret(log: &str, secret: &str) {
    let mask = format!("::add-mask::{secret}");
    // The test harness may print its `test name ... ` in front of the first line.
    assert!(
        log.lines().any(|l| l.ends_with(&mask)),
        "the secret was never masked:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.trim_end_matches(&mask).contains(secret),
            "a log line shows a secret: {line}"
        );
    }
}

/// Asserts that the workflow commands in `log` never open a log group inside
/// another: GitHub does not nest groups, so a group opened before the last
/// one ended puts one phase's lines under another's heading.
pub fn assert_groups_never_nest(log: &str) {
    let mut open: Option<&str> = None;
    for line in log.lines() {
        if let Some(title) = line.strip_prefix("::group::") {
            assert!(
                open.is_none(),
                "group `{title}` opened inside `{}`:\n{log}",
                open.unwrap_or_default()
            );
            open = Some(title);
        } else if line == "::endgroup::" {
            open = None;
        }
    }
}
