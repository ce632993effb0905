//! Amazon EventBridge Scheduler: a schedule, read and written. UpdateSchedule
//! replaces the whole schedule (a field left out is reset to its
//! default), so every field read is written back, the target's task
//! definition the only one changed.

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;

use crate::aws::Explained;
use crate::deploy::Context;
use crate::plan::TriggerPlan;

/// The schedule as Scheduler describes it.
pub async fn read(cx: &Context<'_>, plan: &TriggerPlan) -> anyhow::Result<GetScheduleOutput> {
    cx.clients
        .scheduler
        .get_schedule()
        .name(&plan.name)
        .group_name(plan.place())
        .send()
        .await
        .explained("scheduler:GetSchedule", || resource(plan))
}

/// Writes `schedule` back whole.
pub async fn write(
    cx: &Context<'_>,
    plan: &TriggerPlan,
    s: &GetScheduleOutput,
) -> anyhow::Result<()> {
    cx.clients
        .scheduler
        .update_schedule()
        .name(&plan.name)
        .group_name(plan.place())
        .set_schedule_expression(s.schedule_expression.clone())
        .set_schedule_expression_timezone(s.schedule_expression_timezone.clone())
        .set_start_date(s.start_date)
        .set_end_date(s.end_date)
        .set_description(s.description.clone())
        .set_state(s.state.clone())
        .set_kms_key_arn(s.kms_key_arn.clone())
        .set_target(s.target.clone())
        .set_flexible_time_window(s.flexible_time_window.clone())
        .set_action_after_completion(s.action_after_completion.clone())
        .send()
        .await
        .explained("scheduler:UpdateSchedule", || resource(plan))?;
    Ok(())
}

/// The task definition of the schedule's ECS target, if it has one.
pub fn task_definitions(s: &GetScheduleOutput) -> Vec<String> {
    s.target
        .as_ref()
        .and_then(|t| t.ecs_parameters.as_ref())
        .map(|e| vec![e.task_definition_arn.clone()])
        .unwrap_or_default()
}

/// The schedule with its ECS target moved to `arn` when it runs `family`.
pub fn moved(s: &GetScheduleOutput, family: &str, arn: &str) -> GetScheduleOutput {
    let mut s = s.clone();
    if let Some(ecs) = s.target.as_mut().and_then(|t| t.ecs_parameters.as_mut())
        && super::family_of(&ecs.task_definition_arn) == family
    {
        ecs.task_definition_arn = arn.to_string();
    }
    s
}

fn resource(plan: &TriggerPlan) -> String {
    format!("schedule {} in group {}", plan.name, plan.place())
}
