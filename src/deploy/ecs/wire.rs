//! Task definitions as ECS's JSON, through the SDK client.
//!
//! DescribeTaskDefinition's response body is read as JSON after the SDK has
//! deserialised it, and RegisterTaskDefinition's request body is the rendered
//! JSON, swapped in before the request is signed. The SDK still does
//! endpoints, credentials, signing and retries; we only keep the document
//! whole (see `render`).

use std::sync::{Arc, Mutex};

use anyhow::Context;
use aws_sdk_ecs::types::TaskDefinitionField;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

/// Keeps a copy of the response body.
#[derive(Debug, Clone, Default)]
struct CaptureBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "fastdeploy::CaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// A task definition as DescribeTaskDefinition returns it.
#[derive(Debug, Clone)]
pub struct Described {
    pub task_definition: Value,
    pub tags: Option<Value>,
}

impl Described {
    pub fn arn(&self) -> &str {
        self.task_definition
            .get("taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// DescribeTaskDefinition (with tags) as JSON.
pub async fn describe(
    ecs: &aws_sdk_ecs::Client,
    task_definition: &str,
) -> anyhow::Result<Described> {
    let capture = CaptureBody::default();
    let out = ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .include(TaskDefinitionField::Tags)
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .with_context(|| {
            format!("describing task definition {task_definition} (ecs:DescribeTaskDefinition)")
        })?;
    let body = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(body) = body else {
        anyhow::bail!(
            "describing task definition {task_definition}: the response body was not available (got {:?})",
            out.task_definition().and_then(|t| t.task_definition_arn())
        );
    };
    let mut doc: Value = serde_json::from_slice(&body).with_context(|| {
        format!("DescribeTaskDefinition for {task_definition} did not return JSON")
    })?;
    let task_definition_doc = doc
        .get_mut("taskDefinition")
        .map(Value::take)
        .unwrap_or(Value::Null);
    anyhow::ensure!(
        task_definition_doc.is_object(),
        "DescribeTaskDefinition for {task_definition} returned no task definition"
    );
    Ok(Described {
        task_definition: task_definition_doc,
        tags: doc.get_mut("tags").map(Value::take),
    })
}

/// How one RegisterTaskDefinition call ended.
pub enum Registered {
    Arn(String),
    /// It failed in a way that may have registered the revision anyway (a
    /// 5xx, a timeout, a dropped connection): look before trying again.
    MaybeApplied(anyhow::Error),
}

/// RegisterTaskDefinition with `input` as the request body, once: the SDK
/// does not retry it, because a write whose answer was lost would register a
/// second revision. The caller looks for the revision before retrying.
pub async fn register_once(ecs: &aws_sdk_ecs::Client, input: &Value) -> anyhow::Result<Registered> {
    let family = super::render::family(input).to_string();
    let body = serde_json::to_vec(input)?;
    let sent = ecs
        .register_task_definition()
        .family(&family)
        .set_container_definitions(Some(Vec::new()))
        .customize()
        .config_override(
            aws_sdk_ecs::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .mutate_request(move |req| {
            let len = body.len();
            *req.body_mut() = SdkBody::from(body.clone());
            req.headers_mut().insert("content-length", len.to_string());
        })
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            let failure = crate::aws::classify(&e);
            let what = format!(
                "registering a new revision of task definition family {family} (ecs:RegisterTaskDefinition)"
            );
            return Ok(if failure.is_retryable() {
                Registered::MaybeApplied(anyhow::Error::new(e).context(what))
            } else {
                return Err(failure.explain(
                    "ecs:RegisterTaskDefinition",
                    &format!("task definition family {family}"),
                ));
            });
        }
    };
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(|a| Registered::Arn(a.to_string()))
        .with_context(|| format!("RegisterTaskDefinition for {family} returned no ARN"))
}
