//! Rendering a task definition by digest, as JSON in ECS's own wire shape.
//!
//! Working on the JSON ECS speaks (rather than the SDK's typed structs) keeps
//! every field, known to this SDK version or not, exactly as the user or ECS
//! wrote it, and lets a repository's task definition file be checked against
//! the fields RegisterTaskDefinition accepts. Everything here is pure.

use serde_json::{Map, Value};

use crate::error::BadInput;
use crate::settings::runtime::RuntimeConfig;

/// Fields DescribeTaskDefinition returns that RegisterTaskDefinition refuses.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
];

/// The members of RegisterTaskDefinition's input (ECS API reference).
pub const REGISTER_FIELDS: &[&str] = &[
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// Builds a RegisterTaskDefinition input from DescribeTaskDefinition's
/// `taskDefinition` and `tags`.
pub fn from_described(task_definition: &Value, tags: Option<&Value>) -> Value {
    let mut out = Map::new();
    if let Some(obj) = task_definition.as_object() {
        for (k, v) in obj {
            if !READ_ONLY_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    // fastdeploy's own tags (`fastdeploy:…`) describe that revision alone
    // (a before-deploy run on it) and are never copied to the next one.
    let tags: Vec<Value> = tags
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|t| {
                    !t.get("key")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.starts_with("fastdeploy:"))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !tags.is_empty() {
        out.insert("tags".into(), Value::Array(tags));
    }
    Value::Object(out)
}

/// Parses a task definition file from the repository. Accepts the
/// RegisterTaskDefinition shape, or DescribeTaskDefinition's output (its
/// read-only fields are dropped, `{"taskDefinition": .., "tags": ..}` is
/// unwrapped). Anything else is an error naming the field.
pub fn from_file(text: &str, path: &str) -> Result<Value, BadInput> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        BadInput::other(format!("task definition file {path} is not valid JSON: {e}; fix the file or point `task-definition` at another"))
    })?;
    let Some(obj) = value.as_object() else {
        return Err(BadInput::other(format!(
            "task definition file {path} must hold a JSON object (a task definition), not {}",
            kind(&value)
        )));
    };
    let (td, tags) = match obj.get("taskDefinition") {
        Some(inner @ Value::Object(_)) => (inner, obj.get("tags")),
        _ => (&value, None),
    };
    let td_obj = td.as_object().expect("checked above");
    let mut unknown: Vec<&str> = td_obj
        .keys()
        .map(String::as_str)
        .filter(|k| !REGISTER_FIELDS.contains(k) && !READ_ONLY_FIELDS.contains(k))
        .collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        return Err(BadInput::other(format!(
            "task definition file {path} names unknown field(s) {}; RegisterTaskDefinition accepts: {}",
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            REGISTER_FIELDS.join(", ")
        )));
    }
    for required in ["family", "containerDefinitions"] {
        if !td_obj.contains_key(required) {
            return Err(BadInput::other(format!(
                "task definition file {path} has no `{required}`; a task definition needs one"
            )));
        }
    }
    if !td_obj["containerDefinitions"].as_array().is_some_and(|a| {
        a.iter()
            .all(|c| c.get("name").is_some_and(Value::is_string))
    }) {
        return Err(BadInput::other(format!(
            "task definition file {path}: `containerDefinitions` must be a list of objects, each with a `name`"
        )));
    }
    let tags = tags.or_else(|| td_obj.get("tags"));
    Ok(from_described(td, tags))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Container names of a task definition, in order.
pub fn container_names(td: &Value) -> Vec<String> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that the containers to update exist; empty `wanted` means "the
/// only container" and is an error when there are several. Returns the names
/// that will be updated.
pub fn check_containers(
    td: &Value,
    wanted: &[String],
    family: &str,
) -> Result<Vec<String>, BadInput> {
    let names = container_names(td);
    if wanted.is_empty() {
        return match names.as_slice() {
            [only] => Ok(vec![only.clone()]),
            [] => Err(BadInput::other(format!(
                "task definition {family} has no containers"
            ))),
            _ => Err(BadInput::Missing {
                name: "container".into(),
                why: format!(
                    "when task definition {family} has several containers; it has: {}",
                    names.join(", ")
                ),
            }),
        };
    }
    let missing: Vec<&String> = wanted.iter().filter(|w| !names.contains(w)).collect();
    if !missing.is_empty() {
        return Err(BadInput::other(format!(
            "container(s) {} not in task definition {family}; its containers are: {}",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        )));
    }
    Ok(wanted.to_vec())
}

/// Replaces the image of each named container with `image`
/// (`repository@sha256:...`).
pub fn replace_images(td: &mut Value, containers: &[String], image: &str) {
    if let Some(cs) = td
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    {
        for c in cs {
            let named = c
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| containers.iter().any(|w| w == n));
            if named && let Some(obj) = c.as_object_mut() {
                obj.insert("image".into(), Value::String(image.to_string()));
            }
        }
    }
}

/// Sets the runtime configuration in each named container: a variable of
/// `env` becomes an `environment` entry, one of `secrets` a `secrets`
/// entry with its `valueFrom` (the ARN the checks found); an entry of the
/// same name in either list is replaced where it stands, so a render of a
/// revision that already holds them is that revision. Names the config
/// does not mention are kept.
pub fn apply_config(td: &mut Value, containers: &[String], config: &RuntimeConfig) {
    let Some(cs) = td
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in cs {
        let named = c
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| containers.iter().any(|w| w == n));
        let Some(obj) = c.as_object_mut().filter(|_| named) else {
            continue;
        };
        for e in &config.env {
            let entry = serde_json::json!({ "name": e.name, "value": e.value });
            set_entry(obj, "environment", "secrets", &e.name, entry);
        }
        for s in &config.secrets {
            let from = s
                .value_from
                .clone()
                .unwrap_or_else(|| s.reference.spelled());
            let entry = serde_json::json!({ "name": s.name, "valueFrom": from });
            set_entry(obj, "secrets", "environment", &s.name, entry);
        }
    }
}

/// Puts `entry` under `list` in place of the entry named `name` (or at the
/// end), and takes an entry of that name out of `other`.
fn set_entry(obj: &mut Map<String, Value>, list: &str, other: &str, name: &str, entry: Value) {
    let is_named = |v: &Value| v.get("name").and_then(Value::as_str) == Some(name);
    if let Some(o) = obj.get_mut(other).and_then(Value::as_array_mut) {
        o.retain(|v| !is_named(v));
    }
    let items = obj.entry(list).or_insert_with(|| Value::Array(Vec::new()));
    if let Some(items) = items.as_array_mut() {
        match items.iter_mut().find(|v| is_named(v)) {
            Some(v) => *v = entry,
            None => items.push(entry),
        }
    }
}

/// Family of a rendered task definition.
pub fn family(td: &Value) -> &str {
    td.get("family").and_then(Value::as_str).unwrap_or_default()
}

/// The images of `containers` in `td`, in its order.
pub fn container_images(td: &Value, containers: &[String]) -> Vec<String> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| containers.iter().any(|x| x == n))
        })
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The family of a task definition ARN or `family:revision`.
pub fn family_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit('/').next()?.rsplit_once(':').map(|(f, _)| f)
}

/// Whether two RegisterTaskDefinition inputs describe the same revision.
/// ECS fills defaults on registration (`cpu: 0`, empty lists, `essential:
/// true`), so both sides are normalised first: a file without those fields
/// equals the revision ECS made from it.
pub fn same_revision(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: &Value) -> Value {
    fn walk(v: &Value, in_container: bool) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Array(items) => {
                let items: Vec<Value> = items.iter().filter_map(|i| walk(i, false)).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Value::Object(obj) => {
                let mut out = Map::new();
                for (k, v) in obj {
                    if in_container && filled_in_for_container(k, v) {
                        continue;
                    }
                    let nested = if k == "containerDefinitions" {
                        v.as_array().map(|cs| {
                            Value::Array(cs.iter().filter_map(|c| walk(c, true)).collect())
                        })
                    } else {
                        walk(v, false)
                    };
                    if let Some(n) = nested {
                        out.insert(k.clone(), n);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            other => Some(other.clone()),
        }
    }
    without_filled_in(&walk(v, false).unwrap_or(Value::Null))
}

/// Whether a container field holds the value ECS fills in when it is not
/// given (`cpu: 0`, `essential: true`): the same as not set.
pub fn filled_in_for_container(key: &str, value: &Value) -> bool {
    (key == "cpu" && value == &Value::from(0))
        || (key == "essential" && value == &Value::Bool(true))
}

/// `td` without what ECS fills in for a task definition that names none:
/// `networkMode: bridge` (Linux, not Fargate), so a file without it is the
/// revision ECS made of it.
pub fn without_filled_in(td: &Value) -> Value {
    let mut out = td.clone();
    let fargate = out
        .get("requiresCompatibilities")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|x| x == "FARGATE"));
    if let Some(obj) = out.as_object_mut().filter(|_| !fargate)
        && obj.get("networkMode") == Some(&Value::from("bridge"))
    {
        obj.remove("networkMode");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_file_without_network_mode_is_the_revision_ecs_made_of_it_with_bridge() {
        let file =
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "i"}]});
        let described = json!({"family": "web", "networkMode": "bridge", "containerDefinitions": [{"name": "web", "image": "i", "cpu": 0, "essential": true}]});
        assert!(same_revision(&file, &described));
        let awsvpc = json!({"family": "web", "networkMode": "awsvpc", "containerDefinitions": [{"name": "web", "image": "i"}]});
        assert!(!same_revision(&file, &awsvpc));
    }

    fn described() -> Value {
        json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE",
            "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}],
            "compatibilities": ["EC2", "FARGATE"], "registeredAt": 1.0, "registeredBy": "arn:aws:iam::1:user/x",
            "containerDefinitions": [
                {"name": "app", "image": "r/app:latest", "cpu": 0, "essential": true, "portMappings": [], "environment": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "cpu": "256", "memory": "512", "networkMode": "awsvpc"
        })
    }

    #[test]
    fn described_keeps_writable_fields_and_tags_and_drops_the_rest() {
        let out = from_described(&described(), Some(&json!([{"key": "team", "value": "a"}])));
        for f in READ_ONLY_FIELDS {
            assert!(out.get(*f).is_none(), "{f} must be dropped");
        }
        assert_eq!(out["family"], "web");
        assert_eq!(out["tags"][0]["key"], "team");
        assert_eq!(
            out["containerDefinitions"][0]["environment"][0]["value"],
            "1"
        );
    }

    #[test]
    fn only_named_containers_get_the_digest() {
        let mut td = from_described(&described(), None);
        let names = check_containers(&td, &["app".into()], "web").unwrap();
        replace_images(&mut td, &names, "r/app@sha256:abc");
        assert_eq!(td["containerDefinitions"][0]["image"], "r/app@sha256:abc");
        assert_eq!(td["containerDefinitions"][1]["image"], "envoy:1");
    }

    #[test]
    fn unknown_container_lists_the_ones_that_exist() {
        let td = from_described(&described(), None);
        let err = check_containers(&td, &["api".into()], "web")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`api`") && err.contains("app, sidecar"),
            "{err}"
        );
        let err = check_containers(&td, &[], "web").unwrap_err().to_string();
        assert!(
            err.contains("several containers") && err.contains("app, sidecar"),
            "{err}"
        );
    }

    #[test]
    fn a_rerun_with_the_same_digest_is_the_same_revision() {
        let mut once = from_described(&described(), None);
        replace_images(&mut once, &["app".into()], "r/app@sha256:abc");
        let mut twice = once.clone();
        replace_images(&mut twice, &["app".into()], "r/app@sha256:abc");
        assert!(same_revision(&once, &twice));
        replace_images(&mut twice, &["app".into()], "r/app@sha256:def");
        assert!(!same_revision(&once, &twice));
    }

    #[test]
    fn ecs_defaults_do_not_make_a_file_look_changed() {
        let file = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "x@sha256:1", "memory": 128}]});
        let registered = json!({"family": "web", "volumes": [], "placementConstraints": [],
            "containerDefinitions": [{"name": "app", "image": "x@sha256:1", "memory": 128, "cpu": 0, "essential": true, "portMappings": [], "mountPoints": []}]});
        assert!(same_revision(&file, &registered));
    }

    #[test]
    fn file_errors_name_the_problem() {
        let err = from_file("{not json", "td.json").unwrap_err().to_string();
        assert!(err.contains("td.json is not valid JSON"), "{err}");
        let err = from_file(
            r#"{"family":"web","containerDefinitions":[{"name":"a"}],"memmory":"512"}"#,
            "td.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`memmory`") && err.contains("memory"), "{err}");
        let err = from_file(r#"{"containerDefinitions":[]}"#, "td.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `family`"), "{err}");
        let err = from_file("[1]", "td.json").unwrap_err().to_string();
        assert!(err.contains("not a list"), "{err}");
    }

    #[test]
    fn describe_output_files_are_accepted() {
        let text = serde_json::to_string(
            &json!({"taskDefinition": described(), "tags": [{"key": "k", "value": "v"}]}),
        )
        .unwrap();
        let td = from_file(&text, "td.json").unwrap();
        assert!(td.get("revision").is_none());
        assert_eq!(td["tags"][0]["key"], "k");
    }
}
