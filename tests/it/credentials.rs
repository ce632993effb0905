//! `role-to-assume`: the step's own AWS credentials from the job's GitHub
//! OIDC token (the recording receiver serves the token endpoint, moto's STS
//! with the sandbox's extension assumes the role), refreshed when the run
//! outlives its session.

use serde_json::{Value, json};

use crate::support::run::{Ran, run};
use crate::support::sandbox::{FullSandbox, http_get_json};

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";
const REQUEST_TOKEN: &str = "oidc-request-token-e2e";

/// `fastdeploy run` with no AWS keys in its environment, only the job's
/// OIDC endpoint and `role-to-assume`.
fn oidc_command(sb: &FullSandbox) -> std::process::Command {
    let mut cmd = sb.command();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    cmd.env("INPUT_ROLE_TO_ASSUME", ROLE)
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!(
                "{}/_apis/pipelines/1/runs/7/idtoken?api-version=2.0",
                sb.slack.url
            ),
        )
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .env("AWS_CONFIG_FILE", sb.dir.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            sb.dir.path().join("no-aws-credentials"),
        );
    cmd
}

fn token_requests(sb: &FullSandbox) -> Vec<Value> {
    sb.slack
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/idtoken")))
        .collect()
}

fn assumptions(sb: &FullSandbox) -> Vec<Value> {
    sb.moto.control("sts/calls", json!({}))["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_run_with_only_role_to_assume_deploys_and_refreshes_credentials_that_expire_mid_run() {
    let sb = FullSandbox::start();
    crate::support::sandbox::http_post_json(
        &format!("{}/__oidc", sb.slack.url),
        &json!({"request_token": REQUEST_TOKEN}),
    );
    // Sessions of 12 s, shorter than the run: the SDK refreshes them 10 s
    // before they end, so the run needs more than one.
    sb.moto
        .control("sts/config", json!({"session_seconds": 12}));
    let ran: Ran = run(oidc_command(&sb));
    assert_eq!(ran.code, 0, "{}", ran.log());
    assert_eq!(
        sb.output("result").as_deref(),
        Some("success"),
        "{}",
        ran.log()
    );

    let requests = token_requests(&sb);
    assert!(!requests.is_empty(), "the OIDC token was requested");
    for r in &requests {
        assert!(
            r["query"]
                .as_str()
                .unwrap()
                .contains("audience=sts.amazonaws.com"),
            "{r}"
        );
        assert_eq!(
            r["headers"]["authorization"],
            format!("Bearer {REQUEST_TOKEN}"),
            "{r}"
        );
    }
    let calls = assumptions(&sb);
    // The check before building assumes the role once and hands those
    // credentials to the SDK; a refresh is an assumption made once the first
    // credentials were within the SDK's 10 s refresh window, 2 s or more
    // after them (sessions of 12 s: its expiration 2 s or more later).
    assert!(
        calls.len() >= 2,
        "the credentials were refreshed: {calls:#?}"
    );
    let expiration = |c: &Value| {
        let text = c["expiration"]
            .as_str()
            .unwrap()
            .trim_end_matches("+00:00")
            .trim_end_matches('Z')
            .to_string();
        chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    };
    let first = expiration(&calls[0]);
    assert!(
        calls
            .iter()
            .skip(1)
            .any(|c| (expiration(c) - first).num_milliseconds() >= 1900),
        "a later assumption refreshed the first credentials as they neared expiry: {calls:#?}"
    );
    assert_eq!(
        requests.len(),
        calls.len(),
        "a fresh token for every assumption"
    );
    for c in &calls {
        assert_eq!(c["role_arn"], ROLE);
        assert_eq!(c["session_name"], "fastdeploy-1001-1");
        assert_eq!(c["duration"], 3600);
        assert_eq!(c["claims"]["aud"], "sts.amazonaws.com");
    }
    assert!(
        ran.stdout
            .contains("role arn:aws:iam::123456789012:role/deploy assumed"),
        "{}",
        ran.log()
    );
    // The token and the secret key are masked as soon as they are known.
    let masks = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("::add-mask::"))
        .count();
    assert!(
        masks >= 3 * calls.len(),
        "token, secret key and session token masked each time: {}",
        ran.stdout
    );
}

fn bad_input(sb: &FullSandbox, cmd: std::process::Command, expected: &str) {
    let ran = run(cmd);
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(ran.stderr.contains(expected), "{expected}: {}", ran.log());
    assert!(sb.registry_tags_empty(), "nothing was pushed");
}

#[test]
fn role_to_assume_problems_are_bad_input_before_anything_is_built() {
    let sb = FullSandbox::start();
    // No `id-token: write`: the runner sets no token endpoint.
    let mut cmd = oidc_command(&sb);
    cmd.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    bad_input(&sb, cmd, "give the job `permissions: id-token: write`");
    // A pull request (a fork's gets no token whatever the permissions): the error says so.
    let event = sb
        .workspace
        .parent()
        .unwrap()
        .join("pull-request-event.json");
    let pr = json!({"pull_request": {"number": 7, "head": {"sha": "0123456789abcdef0123456789abcdef01234567", "ref": "feature"}}});
    std::fs::write(&event, pr.to_string()).unwrap();
    let mut cmd = oidc_command(&sb);
    cmd.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event);
    bad_input(
        &sb,
        cmd,
        "a pull request from a fork gets no token whatever the permissions: skip the step for forks",
    );
    // Not a role ARN.
    let mut cmd = oidc_command(&sb);
    cmd.env("INPUT_ROLE_TO_ASSUME", "deploy");
    bad_input(
        &sb,
        cmd,
        "input `role-to-assume` is \"deploy\", but it accepts an IAM role ARN",
    );
    // A session longer than STS allows.
    let mut cmd = oidc_command(&sb);
    cmd.env("INPUT_ROLE_DURATION_SECONDS", "86400");
    bad_input(
        &sb,
        cmd,
        "input `role-duration-seconds` is \"86400\", but it accepts a whole number from 900 to 43200",
    );
    // The token endpoint refuses the request token.
    let mut cmd = oidc_command(&sb);
    cmd.env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong");
    bad_input(
        &sb,
        cmd,
        "the job's OIDC token endpoint refused the request (HTTP 401",
    );
    // An audience the role's trust does not accept (the sandbox's STS wants sts.amazonaws.com).
    crate::support::sandbox::http_post_json(
        &format!("{}/__oidc", sb.slack.url),
        &json!({"request_token": REQUEST_TOKEN}),
    );
    let mut cmd = oidc_command(&sb);
    cmd.env("INPUT_AUDIENCE", "https://github.com/acme");
    bad_input(&sb, cmd, "InvalidIdentityToken: Incorrect token audience");
    let faults = http_get_json(&format!("{}/__requests", sb.github.url));
    assert!(
        faults.as_array().unwrap().is_empty(),
        "no GitHub deployment was started: {faults}"
    );
}

/// Without `role-to-assume` the standard chain is asked once before
/// anything is built: no credentials is exit 2 with the way to get them
/// where the run is (a job: role-to-assume or configure-aws-credentials; a
/// laptop: the profile named, `aws configure sso` or `aws sso login`).
#[test]
fn missing_credentials_are_bad_input_before_anything_is_built_with_advice_for_where_it_runs() {
    let sb = FullSandbox::start();
    let aws = sb.dir.path().join("aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile dev]\nsso_session = acme\nsso_account_id = 123456789012\nsso_role_name = Deploy\nregion = us-east-1\n\n\
         [sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let no_keys = |cmd: &mut std::process::Command| {
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_CONFIG_FILE", aws.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
            .env("HOME", &aws);
    };
    // In a job.
    let mut cmd = sb.command();
    no_keys(&mut cmd);
    bad_input(&sb, cmd, "no usable AWS credentials (");
    let mut cmd = sb.command();
    no_keys(&mut cmd);
    bad_input(
        &sb,
        cmd,
        "give the job credentials: set `role-to-assume` (with `permissions: id-token: write`), or run aws-actions/configure-aws-credentials before this step",
    );
    // On a laptop, a profile that does not exist.
    let laptop = |profile: &str| {
        let mut cmd = sb.command();
        no_keys(&mut cmd);
        cmd.env_remove("GITHUB_ACTIONS")
            .env("ENVIRONMENT", "production")
            .env("AWS_PROFILE", profile);
        cmd
    };
    bad_input(
        &sb,
        laptop("prod"),
        "AWS_PROFILE is `prod`, but neither the AWS config file nor the credentials file defines a profile of that name: \
         create it with `aws configure sso --profile prod`",
    );
    // A profile that exists, without a signed-in SSO session.
    let ran = run(laptop("dev"));
    assert_eq!(ran.code, 2, "{}", ran.log());
    assert!(
        ran.stderr
            .contains("sign in to profile `dev` with `aws sso login --profile dev`")
            && !ran.stderr.contains("configure-aws-credentials"),
        "{}",
        ran.log()
    );
    assert!(sb.registry_tags_empty(), "nothing was pushed");
}
