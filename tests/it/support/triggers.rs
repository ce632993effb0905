//! EventBridge rules and Scheduler schedules in moto that run ECS tasks,
//! as a team sets them up by hand (the targets `targets:` moves).

#![allow(dead_code)]

use aws_sdk_eventbridge::types::{EcsParameters, Target as RuleTarget, builders::TargetBuilder};
use aws_sdk_scheduler::types::{EcsParameters as ScheduleEcs, Target as ScheduleTarget};

/// The role EventBridge and Scheduler run the tasks as.
pub const TASKS_ROLE: &str = "arn:aws:iam::123456789012:role/runs-tasks";

/// A rule's ECS target `id`: one task of `td` on `cluster` (an ARN), as
/// [`TASKS_ROLE`]; a builder, for the fields a test adds (`input`).
pub fn rule_ecs_target(id: &str, cluster: &str, td: &str) -> TargetBuilder {
    let ecs = EcsParameters::builder()
        .task_definition_arn(td)
        .task_count(1)
        .build()
        .unwrap();
    RuleTarget::builder()
        .id(id)
        .arn(cluster)
        .role_arn(TASKS_ROLE)
        .ecs_parameters(ecs)
}

/// Rule `name` on the default event bus, on `expression`, with `targets`.
pub async fn put_rule(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    expression: &str,
    targets: Vec<RuleTarget>,
) {
    events
        .put_rule()
        .name(name)
        .schedule_expression(expression)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(name)
        .set_targets(Some(targets))
        .send()
        .await
        .unwrap();
}

/// A schedule's ECS target: one task of `td` on `cluster`, as [`TASKS_ROLE`].
pub fn schedule_ecs_target(cluster: &str, td: &str) -> ScheduleTarget {
    let ecs = ScheduleEcs::builder()
        .task_definition_arn(td)
        .task_count(1)
        .build()
        .unwrap();
    ScheduleTarget::builder()
        .arn(cluster)
        .role_arn(TASKS_ROLE)
        .ecs_parameters(ecs)
        .build()
        .unwrap()
}
