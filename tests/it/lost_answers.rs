//! Writes that happen and whose answer is lost. The sandbox applies
//! the request, then answers 500 (or drops the connection); fastdeploy must
//! converge on one revision, one deployment, one repository, one build, one
//! GitHub deployment, where the service offers a way to tell, and say so
//! where it cannot.

use serde_json::{Value, json};

use crate::support::run::{
    ecs_view, github_deployments, github_states, run, slack_messages, task_definition_arn,
};
use crate::support::sandbox::{FullSandbox, http_get_json};

fn faults(sb: &FullSandbox, rules: Value) {
    let answer = sb.moto.control("faults/config", json!({ "rules": rules }));
    assert!(answer.get("error").is_none(), "{answer}");
}

fn lost(sb: &FullSandbox, action: &str) -> u64 {
    sb.moto.control("faults/state", json!({}))["lost"][action]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn lost_answers_to_aws_writes_leave_one_revision_one_deployment_and_one_repository() {
    let sb = FullSandbox::start();
    faults(
        &sb,
        json!([
            {"action": "CreateRepository", "mode": "lost-answer", "times": 1},
            {"action": "RegisterTaskDefinition", "mode": "lost-answer", "times": 1},
            {"action": "UpdateService", "mode": "lost-answer", "kind": "drop", "times": 1},
        ]),
    );
    let ran = run(sb.command());
    assert_eq!(ran.code, 0, "{}", ran.log());
    for action in [
        "CreateRepository",
        "RegisterTaskDefinition",
        "UpdateService",
    ] {
        assert_eq!(
            lost(&sb, action),
            1,
            "the {action} answer was lost once: {}",
            sb.moto.control("faults/state", json!({}))
        );
    }
    let ecs = ecs_view(&sb);
    assert_eq!(
        ecs.revisions,
        vec![task_definition_arn(1), task_definition_arn(2)],
        "one new revision, not two"
    );
    assert_eq!(ecs.task_definition, task_definition_arn(2));
    assert_eq!(sb.output("result").as_deref(), Some("success"));
}

#[test]
fn lost_answers_from_github_leave_one_deployment_with_its_statuses() {
    let sb = FullSandbox::start();
    sb.github.script(json!([
        {"match": "POST /repos/acme/shop/deployments", "after": true, "times": 1},
        {"match": "POST /repos/acme/shop/deployments/\\d+/statuses", "after": true, "times": 1},
    ]));
    let ran = run(sb.command());
    assert_eq!(ran.code, 0, "{}", ran.log());
    let faults = http_get_json(&format!("{}/__faults", sb.github.url));
    assert_eq!(faults["lost"], 2, "{faults}\n{}", ran.log());
    let deployments = github_deployments(&sb);
    assert_eq!(
        deployments.len(),
        1,
        "one GitHub deployment, not two: {deployments:#?}"
    );
    let states = github_states(&sb, &deployments[0]);
    assert_eq!(
        states.last().map(String::as_str),
        Some("success"),
        "{states:?}"
    );
}

/// Slack offers no way to tell whether a post whose answer was lost went
/// through (no idempotency key, no lookup a webhook may use): the retry may
/// post twice, and the run says so.
#[test]
fn a_lost_answer_from_slack_may_post_twice_and_the_run_says_so() {
    let sb = FullSandbox::start();
    sb.slack
        .script(json!([{"match": "POST /services/.*", "after": true, "times": 1}]));
    let ran = run(sb.command());
    assert_eq!(ran.code, 0, "{}", ran.log());
    let faults = http_get_json(&format!("{}/__faults", sb.slack.url));
    assert_eq!(faults["lost"], 1, "{faults}");
    assert_eq!(
        slack_messages(&sb).len(),
        2,
        "posted, answer lost, posted again"
    );
    assert!(
        ran.stderr.contains("the message may show twice"),
        "{}",
        ran.log()
    );
}
