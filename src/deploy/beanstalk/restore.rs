//! The rollback motion: the application version the environment ran
//! before the most recent deploy (every deploy records it in the version's
//! description, `fastdeploy [before: <label>]: …`, with
//! UpdateApplicationVersion, so a reused version records its latest
//! predecessor), or the one `to` names; put back through the same update,
//! events and health as a deploy.

use aws_sdk_elasticbeanstalk::types::ApplicationVersionDescription;

use super::Environment;
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Revision, Verdict};
use crate::error::BadInput;
use crate::error::chain_message;

/// EB keeps 200 characters of a version's description.
const MAX_DESCRIPTION: usize = 200;

/// A version's description: what it holds (`body`), and what served
/// before it first, so a cut at EB's limit keeps the record.
pub(super) fn description(body: &str, before: Option<&str>) -> String {
    let text = match before {
        Some(b) => format!("fastdeploy [before: {b}]: {body}"),
        None => format!("fastdeploy: {body}"),
    };
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// What a description records: the label before it, and what it holds.
fn parse(description: &str) -> (Option<&str>, &str) {
    if let Some(rest) = description.strip_prefix("fastdeploy [before: ")
        && let Some((before, body)) = rest.split_once("]: ")
    {
        return (Some(before), body);
    }
    (
        None,
        description
            .strip_prefix("fastdeploy: ")
            .unwrap_or(description),
    )
}

/// The image by digest a version's description names (`bundle: image`).
fn image_in(description: &str) -> Option<Image> {
    let (_, body) = parse(description);
    let uri = body.split_whitespace().next()?;
    Image::from_uri(uri, None)
}

/// Records `before` on version `label`; a failure is a warning (the deploy
/// goes on; a later rollback names the version with `to`).
pub(super) async fn record_before(
    e: &Environment<'_>,
    cx: &Context<'_>,
    label: &str,
    before: Option<&str>,
) {
    let Some(before) = before else { return };
    let recorded = async {
        let v = version(e, cx, label).await?;
        let (_, body) = parse(v.as_ref().and_then(|v| v.description()).unwrap_or_default());
        cx.clients
            .beanstalk
            .update_application_version()
            .application_name(e.app())
            .version_label(label)
            .description(description(body, Some(before)))
            .send()
            .await
            .explained("elasticbeanstalk:UpdateApplicationVersion", || {
                format!("application version {label}")
            })
    };
    if let Err(err) = recorded.await {
        cx.actions.warning(
            &format!(
                "could not record on version {label} that {before} served before it ({}); a rollback will need `to`",
                chain_message(&err)
            ),
            &Default::default(),
        );
    }
}

/// The application version `label`, when it exists.
async fn version(
    e: &Environment<'_>,
    cx: &Context<'_>,
    label: &str,
) -> anyhow::Result<Option<ApplicationVersionDescription>> {
    let out = cx
        .clients
        .beanstalk
        .describe_application_versions()
        .application_name(e.app())
        .version_labels(label)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeApplicationVersions", || {
            format!("Elastic Beanstalk application {}", e.app())
        })?;
    Ok(out.application_versions().first().cloned())
}

/// What ran before the most recent deploy (or `to`), read-only.
pub async fn earlier(
    e: &Environment<'_>,
    cx: &Context<'_>,
    to: Option<&str>,
) -> anyhow::Result<Revision> {
    let pre = super::preflight::environment(&cx.clients.beanstalk, &e.plan).await?;
    let Some(current) = pre.version_label else {
        return Err(BadInput::other(format!(
            "nothing to roll back to: environment {} runs EB's sample application, no version of its own",
            e.env()
        ))
        .into());
    };
    let (label, found) = match to {
        Some(to) if to.starts_with("sha256:") => {
            (by_digest(e, cx, to).await?, format!("named by `to` ({to})"))
        }
        Some(to) => (to.to_string(), format!("named by `to` ({to})")),
        None => {
            let v = version(e, cx, &current).await?;
            let before = v.as_ref().and_then(|v| {
                parse(v.description().unwrap_or_default())
                    .0
                    .map(str::to_string)
            });
            let before = before.ok_or_else(|| {
                BadInput::other(format!(
                    "nothing to roll back to: version {current}, which environment {} runs, records no version before it \
                     (fastdeploy did not deploy it, or it was the environment's first); name one with `to`",
                    e.env()
                ))
            })?;
            (
                before,
                format!(
                    "environment {} ran it before version {current} (the version's description says)",
                    e.env()
                ),
            )
        }
    };
    if label == current {
        return Err(BadInput::other(format!(
            "environment {} runs version {label} already: there is nothing to roll back to",
            e.env()
        ))
        .into());
    }
    let Some(v) = version(e, cx, &label).await? else {
        return Err(BadInput::other(format!(
            "application version {label} does not exist in application {}; list them with \
             `aws elasticbeanstalk describe-application-versions --application-name {}`",
            e.app(),
            e.app()
        ))
        .into());
    };
    Ok(Revision {
        image: image_in(v.description().unwrap_or_default()),
        id: label,
        found,
        warning: None,
    })
}

/// The newest version whose description names the image `digest`.
async fn by_digest(e: &Environment<'_>, cx: &Context<'_>, digest: &str) -> anyhow::Result<String> {
    let out = cx
        .clients
        .beanstalk
        .describe_application_versions()
        .application_name(e.app())
        .send()
        .await
        .explained("elasticbeanstalk:DescribeApplicationVersions", || {
            format!("Elastic Beanstalk application {}", e.app())
        })?;
    let mut versions = out.application_versions().to_vec();
    versions.sort_by_key(|v| std::cmp::Reverse(v.date_created().map(|d| d.secs())));
    versions
        .iter()
        .find(|v| image_in(v.description().unwrap_or_default()).is_some_and(|i| i.digest == digest))
        .and_then(|v| v.version_label())
        .map(str::to_string)
        .ok_or_else(|| {
            BadInput::other(format!(
                "`to` is {digest}, but no application version of {} names that image; name the version label instead",
                e.app()
            ))
            .into()
        })
}

/// Puts version `rev` back: the same update, events and health as a deploy.
pub async fn restore(
    e: &mut Environment<'_>,
    d: &mut Deploy<'_>,
    rev: &Revision,
) -> anyhow::Result<Verdict> {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let pre = super::preflight::environment(&cx.clients.beanstalk, &e.plan).await?;
    report.url = pre.cname.as_deref().map(|c| format!("http://{c}"));
    report.previous_revision = pre.version_label.clone();
    report.serving_revision = pre.version_label.clone();
    report.revision = Some(rev.id.clone());
    if pre.version_label.as_deref() == Some(rev.id.as_str()) {
        e.say(
            cx,
            &format!(
                "environment {} runs version {} already; nothing to roll back",
                e.env(),
                rev.id
            ),
        );
        return Ok(Verdict::Unchanged);
    }
    e.say(
        cx,
        &format!("rolling back to version {} ({})", rev.id, rev.found),
    );
    e.label = Some(rev.id.clone());
    super::apply::deploy_label(e, cx, w, &rev.id, pre.version_label.as_deref(), report).await
}

/// `promote`'s source: the image the environment's version names by digest.
pub async fn serving_image(e: &Environment<'_>, cx: &Context<'_>) -> anyhow::Result<Image> {
    let pre = super::preflight::environment(&cx.clients.beanstalk, &e.plan).await?;
    let label = pre.version_label.ok_or_else(|| {
        BadInput::other(format!(
            "environment {} runs EB's sample application: nothing of ours to promote",
            e.env()
        ))
    })?;
    let v = version(e, cx, &label).await?;
    v.as_ref()
        .and_then(|v| image_in(v.description().unwrap_or_default()))
        .ok_or_else(|| {
            BadInput::other(format!(
                "environment {} runs version {label}, which names no image by digest (a source bundle EB builds on each \
                 instance, or not deployed by fastdeploy): promote moves images; deploy it with `bundle: image`",
                e.env()
            ))
            .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_records_what_served_before_within_ebs_limit() {
        let body = "r.example/acme/shop@sha256:abcd at 0123456789ab";
        let d = description(body, Some("sha-1-2"));
        assert_eq!(
            d,
            "fastdeploy [before: sha-1-2]: r.example/acme/shop@sha256:abcd at 0123456789ab"
        );
        assert_eq!(parse(&d), (Some("sha-1-2"), body));
        assert_eq!(parse(&description(body, None)), (None, body));
        assert_eq!(
            image_in(&d).map(|i| i.digest),
            Some("sha256:abcd".to_string())
        );
        assert_eq!(image_in("fastdeploy: source of 0123456789ab"), None);
        let long = description(&"x".repeat(400), Some("v1"));
        assert_eq!(long.chars().count(), MAX_DESCRIPTION);
        assert_eq!(parse(&long).0, Some("v1"));
    }
}
