//! After a successful deploy: task definition revisions beyond the newest
//! `keep-revisions` deregistered, never what serves or what served before.

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionStatus};

use crate::aws::Explained;
use crate::deploy::Context;

/// Deregisters ACTIVE revisions of `family` older than the newest `keep`,
/// never one in `protect`.
pub async fn deregister_old(
    cx: &Context<'_>,
    family: &str,
    keep: u64,
    protect: &[&str],
) -> anyhow::Result<()> {
    let ecs = &cx.clients.ecs;
    let mut arns = Vec::new();
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.explained("ecs:ListTaskDefinitions", || {
            format!("the revisions of {family}")
        })?;
        // familyPrefix matches prefixes: `web` also lists `web-worker`.
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| family_of(a) == Some(family))
                .cloned(),
        );
    }
    // Newest first by revision number, whatever order the pages came in.
    arns.sort_by_key(|a| {
        std::cmp::Reverse(
            a.rsplit(':')
                .next()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0),
        )
    });
    for arn in arns.iter().skip(keep as usize) {
        if protect.contains(&arn.as_str()) {
            continue;
        }
        ecs.deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .explained("ecs:DeregisterTaskDefinition", || {
                format!("task definition {arn}")
            })?;
        cx.actions.line(&format!(
            "deregistered old revision {arn} (keep-revisions: {keep})"
        ));
    }
    Ok(())
}

/// `web` for `arn:...:task-definition/web:3`.
fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit('/')
        .next()
        .and_then(|r| r.rsplit_once(':'))
        .map(|(f, _)| f)
}
