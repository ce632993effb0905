//! The rollback motion: the revision that served before the service's most
//! recent deploy, read from ECS's own deployment history (never "the
//! newest revision minus one"), or the one `to` names; then putting it back
//! with UpdateService and following that deployment like any other.

use aws_sdk_ecs::types::{ServiceDeploymentBrief, ServiceDeploymentStatus};
use serde_json::Value;

use super::Service as Target;
use super::preflight::LiveService;
use super::{apply, render, task, wire};
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Revision, Verdict};
use crate::error::BadInput;
use crate::outcome::revision_label;
use crate::plan::EcsPlan;

/// What served before the most recent deploy (or `to`), read-only.
pub async fn earlier(
    s: &Target<'_>,
    cx: &Context<'_>,
    to: Option<&str>,
) -> anyhow::Result<Revision> {
    let plan = s.plan;
    let pre = super::preflight::check(&cx.clients.ecs, plan).await?;
    let current = pre.current.arn().to_string();
    let family = render::family(&pre.current.task_definition).to_string();
    let (id, found) = match to {
        Some(to) => (
            named(cx, &family, to).await?,
            format!("named by `to` ({to})"),
        ),
        None => before_last_deploy(cx, plan, &current).await?,
    };
    if id == current {
        return Err(BadInput::other(format!(
            "`to` names {}, which service {} runs now: there is nothing to roll back to",
            revision_label(&id),
            plan.service
        ))
        .into());
    }
    let described = wire::describe(&cx.clients.ecs, &id).await?;
    if described
        .task_definition
        .get("status")
        .and_then(Value::as_str)
        == Some("INACTIVE")
    {
        return Err(BadInput::other(format!(
            "{} is INACTIVE (deregistered, perhaps by `keep-revisions`), and ECS updates no service to an inactive revision; \
             name an active one with `to`",
            revision_label(&id)
        ))
        .into());
    }
    Ok(Revision {
        image: image_of(&described.task_definition, &pre.containers),
        warning: schema_ahead(plan, &pre, &id),
        id,
        found,
    })
}

/// Puts `rev` back: UpdateService to it, and its deployment followed.
pub async fn restore(
    s: &mut Target<'_>,
    d: &mut Deploy<'_>,
    rev: &Revision,
) -> anyhow::Result<Verdict> {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let pre = s.live(cx).await?;
    let current = pre.current.arn().to_string();
    report.previous_revision = Some(current.clone());
    report.revision = Some(rev.id.clone());
    s.family = Some(render::family(&pre.current.task_definition).to_string());
    s.current = Some(current.clone());
    if current == rev.id {
        s.say(
            cx,
            &format!(
                "service {} runs {} already; nothing to roll back",
                s.plan.service,
                revision_label(&rev.id)
            ),
        );
        report.serving_revision = Some(current);
        return Ok(Verdict::Unchanged);
    }
    s.say(
        cx,
        &format!(
            "rolling back to {} ({})",
            revision_label(&rev.id),
            rev.found
        ),
    );
    let ours = apply::update(s, cx, &pre, &rev.id, &current).await?;
    apply::follow(s, cx, w, ours, report).await
}

/// The revision `to` names, in the service's family: a revision number, a
/// `family:revision`, an ARN, or an image digest one of its revisions runs.
async fn named(cx: &Context<'_>, family: &str, to: &str) -> anyhow::Result<String> {
    if to.starts_with("sha256:") {
        return by_digest(cx, family, to).await;
    }
    let id = match to.rsplit('/').next().unwrap_or(to).rsplit_once(':') {
        None if to.chars().all(|c| c.is_ascii_digit()) => format!("{family}:{to}"),
        Some((f, rev)) if f == family && rev.chars().all(|c| c.is_ascii_digit()) => to.to_string(),
        Some((f, _)) if f != family => {
            return Err(BadInput::other(format!(
                "`to` names a revision of task definition family `{f}`, but the service runs family `{family}`; \
                 name a revision of `{family}` (a number such as 7, `{family}:7`, or its ARN)"
            ))
            .into());
        }
        _ => {
            return Err(BadInput::other(format!(
                "`to` is \"{to}\": for an ECS service name a revision of `{family}` (7, `{family}:7` or its ARN) or an image digest (sha256:…)"
            ))
            .into());
        }
    };
    match cx.clients.ecs.describe_task_definition().task_definition(&id).send().await {
        // The service and its deployments name revisions by ARN.
        Ok(out) => Ok(out
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_string)
            .unwrap_or(id)),
        Err(e) if format!("{e:?}").contains("ClientException") => Err(BadInput::other(format!(
            "`to` names task definition {id}, which does not exist; list the family's revisions with \
             `aws ecs list-task-definitions --family-prefix {family}`"
        ))
        .into()),
        Err(e) => Err(e).explained("ecs:DescribeTaskDefinition", || format!("task definition {id}")),
    }
}

/// The family's newest active revision whose containers run `digest`.
async fn by_digest(cx: &Context<'_>, family: &str, digest: &str) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .max_results(50)
        .send()
        .await
        .explained("ecs:ListTaskDefinitions", || {
            format!("task definition family {family}")
        })?;
    for arn in out.task_definition_arns() {
        if render::family_of_arn(arn) != Some(family) {
            continue;
        }
        let d = wire::describe(&cx.clients.ecs, arn).await?;
        if images(&d.task_definition)
            .iter()
            .any(|(_, i)| i.ends_with(&format!("@{digest}")))
        {
            return Ok(arn.clone());
        }
    }
    Err(BadInput::other(format!(
        "`to` is {digest}, but none of the newest 50 revisions of `{family}` runs that image; name the revision instead"
    ))
    .into())
}

/// The revision the service's last completed deployment replaced.
async fn before_last_deploy(
    cx: &Context<'_>,
    plan: &EcsPlan,
    current: &str,
) -> anyhow::Result<(String, String)> {
    let ecs = &cx.clients.ecs;
    let what = || format!("ECS service {} in cluster {}", plan.service, plan.cluster);
    let mut briefs: Vec<ServiceDeploymentBrief> = Vec::new();
    let mut token = None;
    loop {
        let out = ecs
            .list_service_deployments()
            .cluster(&plan.cluster)
            .service(&plan.service)
            .set_next_token(token)
            .send()
            .await
            .explained("ecs:ListServiceDeployments", what)?;
        briefs.extend(out.service_deployments().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let at = |b: &ServiceDeploymentBrief| b.created_at().map(|t| t.as_secs_f64()).unwrap_or(0.0);
    briefs.sort_by(|a, b| at(b).total_cmp(&at(a)));
    let nothing = || {
        BadInput::other(format!(
            "nothing to roll back to: service {} has no completed deployment from an earlier revision in ECS's deployment history \
             (ListServiceDeployments); name the revision with `to`",
            plan.service
        ))
    };
    let last = briefs
        .iter()
        .find(|b| b.status() == Some(&ServiceDeploymentStatus::Successful))
        .and_then(|b| b.service_deployment_arn())
        .ok_or_else(nothing)?;
    let sd = ecs
        .describe_service_deployments()
        .service_deployment_arns(last)
        .send()
        .await
        .explained("ecs:DescribeServiceDeployments", what)?;
    let sd = sd
        .service_deployments()
        .first()
        .cloned()
        .ok_or_else(nothing)?;
    let target = sd
        .target_service_revision()
        .and_then(|r| r.arn())
        .unwrap_or_default()
        .to_string();
    let sources: Vec<String> = sd
        .source_service_revisions()
        .iter()
        .filter_map(|r| r.arn())
        .map(str::to_string)
        .collect();
    let mut arns = sources.clone();
    arns.push(target.clone());
    let revisions = ecs
        .describe_service_revisions()
        .set_service_revision_arns(Some(arns))
        .send()
        .await
        .explained("ecs:DescribeServiceRevisions", what)?;
    let td_of = |arn: &str| {
        revisions
            .service_revisions()
            .iter()
            .find(|r| r.service_revision_arn() == Some(arn))
            .and_then(|r| r.task_definition())
            .map(str::to_string)
    };
    if td_of(&target).as_deref() != Some(current) {
        return Err(BadInput::other(format!(
            "service {} runs {}, but its last completed deployment put {} in service: a deployment is under way or the \
             service was changed without one; wait for it to finish, or name the revision with `to`",
            plan.service,
            revision_label(current),
            td_of(&target).as_deref().map(revision_label).unwrap_or_else(|| "an unknown revision".into())
        ))
        .into());
    }
    let before = sources
        .iter()
        .filter_map(|a| td_of(a))
        .find(|td| td != current)
        .ok_or_else(nothing)?;
    let found = format!(
        "it served until service deployment {} put {} in service",
        last.rsplit('/').next().unwrap_or(last),
        revision_label(current)
    );
    Ok((before, found))
}

/// Every container's name and image in a described task definition.
fn images(td: &Value) -> Vec<(String, String)> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
            Some((s("name")?, s("image")?))
        })
        .collect()
}

/// The one image by digest the component's containers run in `td`.
fn image_of(td: &Value, containers: &[String]) -> Option<Image> {
    let mut images = render::container_images(td, containers);
    images.sort();
    images.dedup();
    match images.as_slice() {
        [one] => Image::from_uri(one, None),
        _ => None,
    }
}

/// A one-off task ran on the revision being replaced: its schema change may
/// be ahead of `id`'s code.
fn schema_ahead(plan: &EcsPlan, pre: &LiveService, id: &str) -> Option<String> {
    let before = plan.before_deploy.as_ref()?;
    let ran = task::ran_on(pre.current.tags.as_ref())?;
    Some(format!(
        "before-deploy `{}` ran on {} ({ran}), the revision being rolled back; if it changed the database schema, \
         {}'s code may not match it",
        shell_words::join(&before.command),
        revision_label(pre.current.arn()),
        revision_label(id)
    ))
}
