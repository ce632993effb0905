//! After a successful deploy: the versions fastdeploy published beyond the
//! newest `keep-revisions` deleted (Lambda's code storage is finite), never
//! the one that serves, the one a rollback would put back, or one any alias
//! points at or routes to.

use std::collections::BTreeSet;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Function;
use crate::aws::Explained;
use crate::deploy::Context;

/// Deletes fastdeploy's versions older than the newest `keep`, except
/// `protect` (version numbers) and every alias's; says what it removed.
pub async fn delete_old(
    f: &Function<'_>,
    cx: &Context<'_>,
    keep: u64,
    protect: &[String],
) -> anyhow::Result<()> {
    let name = f.name();
    let mut ours = versions(cx, name).await?;
    ours.sort_by_key(|v| std::cmp::Reverse(*v));
    let mut kept: BTreeSet<u64> = aliased(cx, name).await?;
    kept.extend(protect.iter().filter_map(|v| v.parse::<u64>().ok()));
    let mut deleted = Vec::new();
    for v in ours
        .into_iter()
        .skip(keep as usize)
        .filter(|v| !kept.contains(v))
    {
        let sent = cx
            .clients
            .lambda
            .delete_function()
            .function_name(name)
            .qualifier(v.to_string())
            .send()
            .await;
        match sent {
            Ok(_) => deleted.push(v.to_string()),
            // An alias moved to it meanwhile: it stays.
            Err(e) if e.code() == Some("ResourceConflictException") => continue,
            Err(e) => {
                return Err(e).explained("lambda:DeleteFunction", || {
                    format!("version {v} of Lambda function {name}")
                });
            }
        }
    }
    if !deleted.is_empty() {
        cx.actions.line(&format!(
            "deleted old versions {} of Lambda function {name} (keep-revisions: {keep})",
            deleted.join(", ")
        ));
    }
    Ok(())
}

/// The published versions whose description says fastdeploy published them.
async fn versions(cx: &Context<'_>, name: &str) -> anyhow::Result<Vec<u64>> {
    let mut found = Vec::new();
    let mut pages = cx
        .clients
        .lambda
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.explained("lambda:ListVersionsByFunction", || {
            format!("Lambda function {name}")
        })?;
        found.extend(
            page.versions()
                .iter()
                .filter(|v| {
                    v.description()
                        .is_some_and(|d| d.starts_with("fastdeploy "))
                })
                .filter_map(|v| v.version()?.parse::<u64>().ok()),
        );
    }
    Ok(found)
}

/// Every version an alias points at or routes weight to.
async fn aliased(cx: &Context<'_>, name: &str) -> anyhow::Result<BTreeSet<u64>> {
    let mut used = BTreeSet::new();
    let mut pages = cx
        .clients
        .lambda
        .list_aliases()
        .function_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.explained("lambda:ListAliases", || format!("Lambda function {name}"))?;
        for a in page.aliases() {
            used.extend(a.function_version().and_then(|v| v.parse::<u64>().ok()));
            if let Some(weights) = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
            {
                used.extend(weights.keys().filter_map(|v| v.parse::<u64>().ok()));
            }
        }
    }
    Ok(used)
}
