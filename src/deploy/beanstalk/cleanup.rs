//! After a successful deploy: the application versions fastdeploy made
//! beyond the newest `keep-revisions` deleted with their source bundles (EB
//! refuses new versions at 1,000 per account and region), never one an
//! environment of the application runs, the one that served before (what a
//! rollback puts back), or one whose bundle a kept version still uses.

use std::collections::BTreeSet;

use aws_sdk_elasticbeanstalk::types::ApplicationVersionDescription;

use super::Environment;
use crate::aws::Explained;
use crate::deploy::Context;

/// Deletes fastdeploy's versions older than the newest `keep`, except
/// `protect` (labels) and what any environment runs; says what it removed.
pub async fn delete_old(
    e: &Environment<'_>,
    cx: &Context<'_>,
    keep: u64,
    protect: &[String],
) -> anyhow::Result<()> {
    let app = e.app();
    let mut ours: Vec<ApplicationVersionDescription> = versions(cx, app)
        .await?
        .into_iter()
        .filter(|v| v.description().is_some_and(|d| d.starts_with("fastdeploy")))
        .collect();
    ours.sort_by_key(|v| std::cmp::Reverse(v.date_created().map(|d| d.as_secs_f64() as i64)));
    let mut kept: BTreeSet<String> = running(cx, app).await?;
    kept.extend(protect.iter().cloned());
    let (old, newest): (Vec<_>, Vec<_>) = ours.into_iter().enumerate().partition(|(i, v)| {
        *i >= keep as usize && !v.version_label().is_some_and(|l| kept.contains(l))
    });
    let kept_bundles: BTreeSet<String> = newest.iter().filter_map(|(_, v)| bundle(v)).collect();
    let mut deleted = Vec::new();
    for (_, v) in old {
        let label = v.version_label().unwrap_or_default();
        let shared = bundle(&v).is_some_and(|b| kept_bundles.contains(&b));
        cx.clients
            .beanstalk
            .delete_application_version()
            .application_name(app)
            .version_label(label)
            .delete_source_bundle(!shared)
            .send()
            .await
            .explained("elasticbeanstalk:DeleteApplicationVersion", || {
                format!("application version {label} of {app}")
            })?;
        deleted.push(label.to_string());
    }
    if !deleted.is_empty() {
        cx.actions.line(&format!(
            "deleted old application versions {} of {app} with their bundles (keep-revisions: {keep})",
            deleted.join(", ")
        ));
    }
    Ok(())
}

/// `s3://bucket/key` of a version's bundle.
fn bundle(v: &ApplicationVersionDescription) -> Option<String> {
    let b = v.source_bundle()?;
    Some(format!("s3://{}/{}", b.s3_bucket()?, b.s3_key()?))
}

/// Every version of the application.
async fn versions(
    cx: &Context<'_>,
    app: &str,
) -> anyhow::Result<Vec<ApplicationVersionDescription>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = cx
            .clients
            .beanstalk
            .describe_application_versions()
            .application_name(app)
            .set_next_token(token)
            .send()
            .await
            .explained("elasticbeanstalk:DescribeApplicationVersions", || {
                format!("Elastic Beanstalk application {app}")
            })?;
        found.extend(out.application_versions().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// The labels the application's environments (not terminated) run.
async fn running(cx: &Context<'_>, app: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = cx
        .clients
        .beanstalk
        .describe_environments()
        .application_name(app)
        .include_deleted(false)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeEnvironments", || {
            format!("the environments of Elastic Beanstalk application {app}")
        })?;
    Ok(out
        .environments()
        .iter()
        .filter_map(|e| e.version_label().map(str::to_string))
        .collect())
}
