//! `plan --diff` for an ECS service: the revision the next deploy would
//! register (rendered as a deploy renders it, the image aside) against the
//! one the service runs; and, when the service runs a revision fastdeploy
//! did not register (a console edit, `aws ecs update-service`), how it
//! differs from the newest one fastdeploy did.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{check, render, wire};
use crate::deploy::diff::{TargetDiff, variables};
use crate::deploy::{Context, Image};
use crate::plan::EcsPlan;

/// The tag fastdeploy puts on every revision it registers (its value: the
/// commit deployed), so drift can be told from its own revisions.
pub const REGISTERED_TAG: &str = "fastdeploy:registered";

/// How many of the family's newest revisions are read to find fastdeploy's last.
const LOOK_BACK: i32 = 20;

pub async fn diff(
    cx: &Context<'_>,
    plan: &EcsPlan,
    image: Option<&Image>,
) -> anyhow::Result<TargetDiff> {
    let live = check(&cx.clients.ecs, plan).await?;
    let current = render::from_described(&live.current.task_definition, live.current.tags.as_ref());
    let mut next = live.base.clone();
    render::apply_config(&mut next, &live.containers, &plan.config);
    let mut d = TargetDiff::new(format!(
        "ECS service {} in cluster {}",
        plan.service, plan.cluster
    ));
    let now = render::container_images(&current, &live.containers);
    let containers = live.containers.join(", ");
    d.changes = compare(&current, &next, &live.containers);
    match image {
        Some(new) if now.iter().any(|i| i != &new.uri) => d.changes.insert(
            0,
            format!("image of {containers}: {} → {}", now.join(", "), new.uri),
        ),
        Some(_) => {}
        None => d.notes.push(format!(
            "{} runs {}; this commit's image is not built yet: a deploy replaces the image of {containers} with its build",
            live.current.arn(),
            now.join(", ")
        )),
    }
    if registered_by_us(live.current.tags.as_ref()) {
        return Ok(d);
    }
    let family = render::family(&current).to_string();
    match last_ours(cx, &family).await? {
        Some(ours) => {
            let theirs = render::container_names(&current);
            d.drift = compare(&ours.1, &current, &theirs);
            d.drift_between = Some(format!(
                "{} runs, registered outside fastdeploy; fastdeploy's last: {}",
                crate::outcome::revision_label(live.current.arn()),
                crate::outcome::revision_label(&ours.0)
            ));
            if d.drift.is_empty() {
                d.notes.push(format!("the service runs {}, registered outside fastdeploy, with the settings of fastdeploy's {}", live.current.arn(), ours.0));
            }
        }
        None => d.notes.push(format!(
            "no revision of {family} among its newest {LOOK_BACK} was registered by fastdeploy: nothing to tell drift from"
        )),
    }
    Ok(d)
}

fn registered_by_us(tags: Option<&Value>) -> bool {
    tags.and_then(Value::as_array).is_some_and(|tags| {
        tags.iter()
            .any(|t| t.get("key").and_then(Value::as_str) == Some(REGISTERED_TAG))
    })
}

/// The family's newest revision fastdeploy registered, as a
/// RegisterTaskDefinition input.
async fn last_ours(cx: &Context<'_>, family: &str) -> anyhow::Result<Option<(String, Value)>> {
    let list = cx
        .clients
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .max_results(LOOK_BACK)
        .send()
        .await?;
    for arn in list.task_definition_arns() {
        if render::family_of_arn(arn) != Some(family) {
            continue;
        }
        let described = wire::describe(&cx.clients.ecs, arn).await?;
        if registered_by_us(described.tags.as_ref()) {
            let input = render::from_described(&described.task_definition, described.tags.as_ref());
            return Ok(Some((arn.clone(), input)));
        }
    }
    Ok(None)
}

/// What differs from `a` to `b`: per container of `containers`, the
/// environment, the secrets' references, CPU and memory; the task's CPU
/// and memory; and other fields by name (images aside).
pub fn compare(a: &Value, b: &Value, containers: &[String]) -> Vec<String> {
    let (a, b) = (&render::without_filled_in(a), &render::without_filled_in(b));
    let mut out = Vec::new();
    for field in ["cpu", "memory"] {
        if let Some(l) = field_change(&format!("task {field}"), a.get(field), b.get(field)) {
            out.push(l);
        }
    }
    for name in containers {
        let (ca, cb) = (container(a, name), container(b, name));
        let (ca, cb) = (ca.as_ref(), cb.as_ref());
        let lines = variables(
            "env",
            &vars(ca, "environment", "value"),
            &vars(cb, "environment", "value"),
        )
        .into_iter()
        .chain(variables(
            "secret",
            &vars(ca, "secrets", "valueFrom"),
            &vars(cb, "secrets", "valueFrom"),
        ));
        out.extend(lines.map(|l| format!("container {name}: {l}")));
        for field in ["cpu", "memory", "memoryReservation"] {
            let label = format!("container {name}: {field}");
            if let Some(l) = field_change(
                &label,
                ca.and_then(|c| c.get(field)),
                cb.and_then(|c| c.get(field)),
            ) {
                out.push(l);
            }
        }
        let others = other_fields(
            ca,
            cb,
            &[
                "environment",
                "secrets",
                "cpu",
                "memory",
                "memoryReservation",
                "image",
            ],
        );
        if !others.is_empty() {
            out.push(format!("container {name}: {} differ", others.join(", ")));
        }
    }
    let others = other_fields(
        Some(a),
        Some(b),
        &["containerDefinitions", "cpu", "memory", "tags"],
    );
    if !others.is_empty() {
        out.push(format!("task definition: {} differ", others.join(", ")));
    }
    out
}

/// The container named `name`, without the fields ECS fills in with
/// their defaults (`cpu: 0`, `essential: true`), as `render::same_revision`
/// compares them.
fn container(td: &Value, name: &str) -> Option<Value> {
    let c = td
        .get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))?;
    let mut c = c.clone();
    if let Some(obj) = c.as_object_mut() {
        obj.retain(|k, v| !render::filled_in_for_container(k, v));
    }
    Some(c)
}

fn vars(c: Option<&Value>, list: &str, value: &str) -> BTreeMap<String, String> {
    c.and_then(|c| c.get(list))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let n = i.get("name")?.as_str()?;
                    Some((n.to_string(), i.get(value)?.as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn field_change(label: &str, a: Option<&Value>, b: Option<&Value>) -> Option<String> {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "unset".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    (text(a) != text(b)).then(|| format!("{label}: {} → {}", text(a), text(b)))
}

/// Names of the other fields whose values differ (a field ECS fills in
/// with its default, such as an empty list, is taken as unset).
fn other_fields(a: Option<&Value>, b: Option<&Value>, skip: &[&str]) -> Vec<String> {
    let empty = serde_json::Map::new();
    let obj = |v: Option<&Value>| {
        v.and_then(Value::as_object)
            .cloned()
            .unwrap_or(empty.clone())
    };
    let (a, b) = (obj(a), obj(b));
    let unset = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(x)) => x.is_empty(),
        Some(Value::Object(x)) => x.is_empty(),
        _ => false,
    };
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| !skip.contains(&k.as_str()))
        .filter(|k| {
            let (x, y) = (a.get(*k), b.get(*k));
            !(unset(x) && unset(y)) && x != y
        })
        .map(|k| format!("`{k}`"))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_edit_is_named_field_by_field() {
        let ours = serde_json::json!({
            "family": "web", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "a", "environment": [{"name": "LOG_LEVEL", "value": "info"}],
                "secrets": [{"name": "DB", "valueFrom": "arn:1"}], "mountPoints": []}]
        });
        let edited = serde_json::json!({
            "family": "web", "cpu": "512", "memory": "512", "networkMode": "awsvpc",
            "containerDefinitions": [{"name": "web", "image": "b", "environment": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "HOTFIX", "value": "1"}],
                "secrets": [{"name": "DB", "valueFrom": "arn:2"}], "command": ["x"]}]
        });
        let lines = compare(&ours, &edited, &["web".into()]);
        for want in [
            "task cpu: 256 → 512",
            "container web: env LOG_LEVEL changed: \"info\" → \"debug\"",
            "container web: env HOTFIX added: \"1\"",
            "container web: secret DB changed: arn:1 → arn:2",
            "container web: `command` differ",
            "task definition: `networkMode` differ",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want} in {lines:?}");
        }
        assert!(compare(&ours, &ours, &["web".into()]).is_empty());
    }
}
