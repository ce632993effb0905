//! The smoke test (`smoke-test-event`): the version just published is
//! invoked with the event (RequestResponse, log tail requested) before the
//! alias moves, so a handler that throws never gets traffic. A function
//! error (`X-Amz-Function-Error`, with the error type and message of the
//! payload), a timeout (Lambda reports it as an Unhandled error "Task timed
//! out after …") or a status outside 2xx fails the deploy; the alias stays.
//!
//! The invocation runs once: a retry after an answer that was lost (a 5xx,
//! a dropped connection) could run the event twice, so the SDK's retries
//! are off for it; only Lambda's throttle (`TooManyRequestsException`,
//! which runs nothing) is tried again, a few times. Its attempt may last as
//! long as the function's own timeout.

use std::time::Duration;

use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_types::Blob;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use base64::Engine;

use super::Function;
use crate::deploy::Context;
use crate::error::chain_message;
use crate::outcome::DeployReport;
use crate::wait::Waiter;

/// The log lines kept from the tail Lambda returns.
const TAIL_LINES: usize = 8;
/// Tries of an invocation Lambda throttled (a throttle runs nothing).
const THROTTLED_TRIES: u32 = 3;

/// Invokes `version` with `event`. `Err(why)` when the function failed,
/// timed out or answered outside 2xx; an error of the call itself
/// (throttled, refused) is a failure too, said as such.
pub async fn invoke(
    f: &Function<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    version: &str,
    event: &str,
    report: &mut DeployReport,
) -> anyhow::Result<Result<(), String>> {
    w.check(&format!("before the smoke test of version {version}"))?;
    let timeout = super::watch::configuration(f, cx, Some(version))
        .await
        .ok()
        .and_then(|c| c.timeout())
        .map(|s| s.max(1) as u64)
        .unwrap_or(900);
    f.say(
        cx,
        &format!("smoke test: invoking version {version} with the event (up to {timeout} s)"),
    );
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let sent = send(f, cx, version, event, timeout).await;
        match sent {
            Ok(out) => break out,
            Err(e) if e.code() == Some("TooManyRequestsException") && attempt < THROTTLED_TRIES => {
                f.say(cx, &format!("smoke test: Lambda throttled the invocation (nothing ran); trying again ({attempt} of {THROTTLED_TRIES})"));
                w.pause(&format!("the smoke test of version {version}"))
                    .await?;
            }
            Err(e) => {
                let failure = crate::aws::classify(&e);
                let code = failure.code.as_deref().unwrap_or("no answer");
                let text = match failure.message.is_empty() {
                    true => chain_message(&anyhow::Error::new(e)),
                    false => failure.message,
                };
                return Ok(Err(format!(
                    "invoking version {version} failed ({code}: {text}); it is not sent again, since it may have run"
                )));
            }
        }
    };
    let tail = out.log_result().map(log_tail).unwrap_or_default();
    let status = out.status_code();
    let verdict = match out.function_error() {
        Some(kind) => Err(format!(
            "version {version} answered with a function error ({kind}): {}",
            error_text(out.payload().map(|p| p.as_ref()).unwrap_or_default())
        )),
        None if !(200..300).contains(&status) => {
            Err(format!("version {version} answered HTTP {status}"))
        }
        None => Ok(()),
    };
    match &verdict {
        Ok(()) => f.say(
            cx,
            &format!("smoke test passed: version {version} answered {status}"),
        ),
        Err(why) => {
            f.say(cx, &format!("smoke test failed: {why}"));
            for line in &tail {
                f.say(cx, &format!("  {line}"));
                report.evidence.push(line.clone());
            }
        }
    }
    Ok(verdict.map_err(|why| match tail.is_empty() {
        true => why,
        false => format!("{why}; log tail: {}", tail.join(" / ")),
    }))
}

/// One invocation, without the SDK's retries, for up to the function's timeout.
async fn send(
    f: &Function<'_>,
    cx: &Context<'_>,
    version: &str,
    event: &str,
    timeout: u64,
) -> Result<
    aws_sdk_lambda::operation::invoke::InvokeOutput,
    aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>,
> {
    cx.clients
        .lambda
        .invoke()
        .function_name(f.name())
        .qualifier(version)
        .invocation_type(InvocationType::RequestResponse)
        .log_type(LogType::Tail)
        .payload(Blob::new(event.as_bytes().to_vec()))
        .customize()
        .config_override(
            aws_sdk_lambda::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(Duration::from_secs(timeout + 30))
                        .build(),
                ),
        )
        .send()
        .await
}

/// The error type and message of a Lambda error payload
/// (`{"errorType": …, "errorMessage": …}`), or the payload's start.
fn error_text(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    match (field("errorType"), field("errorMessage")) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (None, Some(m)) => m,
        _ => text.chars().take(300).collect(),
    }
}

/// The last lines of the base64 log tail, without Lambda's START/END/REPORT lines.
fn log_tail(encoded: &str) -> Vec<String> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("START RequestId")
                && !l.starts_with("END RequestId")
                && !l.starts_with("REPORT RequestId")
        })
        .map(str::to_string)
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_payload_and_a_log_tail_are_read_as_lambda_writes_them() {
        let payload = br#"{"errorMessage": "'bucket'", "errorType": "KeyError", "stackTrace": []}"#;
        assert_eq!(error_text(payload), "KeyError: 'bucket'");
        let timeout = br#"{"errorMessage": "2026-12-06T22:00:00.000Z 1b2c Task timed out after 3.00 seconds"}"#;
        assert!(error_text(timeout).ends_with("Task timed out after 3.00 seconds"));
        let log = "START RequestId: 1 Version: 3\n[ERROR] KeyError: 'bucket'\nTraceback (most recent call last):\nEND RequestId: 1\nREPORT RequestId: 1\tDuration: 2 ms\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(log);
        assert_eq!(
            log_tail(&encoded),
            [
                "[ERROR] KeyError: 'bucket'",
                "Traceback (most recent call last):"
            ]
        );
    }
}
