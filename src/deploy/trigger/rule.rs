//! Amazon EventBridge: a rule's targets, read and written. Only its ECS
//! targets are ever written, each whole, with every field as read.

use aws_sdk_eventbridge::types::Target;

use crate::aws::Explained;
use crate::deploy::Context;
use crate::plan::TriggerPlan;

/// The rule's targets (ListTargetsByRule; a rule has at most five).
pub async fn read(cx: &Context<'_>, plan: &TriggerPlan) -> anyhow::Result<Vec<Target>> {
    let out = cx
        .clients
        .events
        .list_targets_by_rule()
        .rule(&plan.name)
        .event_bus_name(plan.place())
        .send()
        .await
        .explained("events:ListTargetsByRule", || resource(plan))?;
    Ok(out.targets().to_vec())
}

/// Writes `targets` (PutTargets replaces each by its id); a target the
/// answer lists as failed is an error naming its code.
pub async fn write(cx: &Context<'_>, plan: &TriggerPlan, targets: &[Target]) -> anyhow::Result<()> {
    let out = cx
        .clients
        .events
        .put_targets()
        .rule(&plan.name)
        .event_bus_name(plan.place())
        .set_targets(Some(targets.to_vec()))
        .send()
        .await
        .explained("events:PutTargets", || resource(plan))?;
    if out.failed_entry_count() > 0 {
        let failed: Vec<String> = out
            .failed_entries()
            .iter()
            .map(|e| {
                format!(
                    "target {}: {} ({})",
                    e.target_id().unwrap_or("?"),
                    e.error_message().unwrap_or("no message"),
                    e.error_code().unwrap_or("no code")
                )
            })
            .collect();
        anyhow::bail!(
            "events:PutTargets on {} refused {}",
            resource(plan),
            failed.join("; ")
        );
    }
    Ok(())
}

/// The task definitions of the rule's ECS targets.
pub fn task_definitions(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter_map(|t| Some(t.ecs_parameters.as_ref()?.task_definition_arn.clone()))
        .collect()
}

/// The rule's ECS targets, those running `family` moved to `arn`.
pub fn moved(targets: &[Target], family: &str, arn: &str) -> Vec<Target> {
    targets
        .iter()
        .filter(|t| t.ecs_parameters.is_some())
        .map(|t| {
            let mut t = t.clone();
            if let Some(ecs) = t.ecs_parameters.as_mut()
                && super::family_of(&ecs.task_definition_arn) == family
            {
                ecs.task_definition_arn = arn.to_string();
            }
            t
        })
        .collect()
}

fn resource(plan: &TriggerPlan) -> String {
    format!("rule {} on event bus {}", plan.name, plan.place())
}
