//! The looks a Lambda deploy makes while it waits: one
//! `GetFunctionConfiguration` (or `GetAlias`) each, judged as Lambda states
//! it, through the driver's waiter.

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationError;
use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, State};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::Function;
use super::preflight::not_found;
use crate::aws::Explained;
use crate::deploy::{Context, Image};
use crate::outcome::DeployReport;
use crate::wait::{Poll, Tempo};

/// The alias as read: the version it points at and its revision id.
#[derive(Debug, Clone)]
pub struct Alias {
    pub version: String,
    pub revision_id: Option<String>,
}

/// The alias, or `None` when it does not exist yet.
pub async fn alias(f: &Function<'_>, cx: &Context<'_>) -> anyhow::Result<Option<Alias>> {
    let sent = cx
        .clients
        .lambda
        .get_alias()
        .function_name(f.name())
        .name(&f.plan.alias)
        .send()
        .await;
    match sent {
        Ok(a) => Ok(Some(Alias {
            version: a.function_version().unwrap_or_default().to_string(),
            revision_id: a.revision_id().map(str::to_string),
        })),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e).explained("lambda:GetAlias", || {
            format!("alias {} of Lambda function {}", f.plan.alias, f.name())
        }),
    }
}

/// The function's configuration (`$LATEST`, or a version).
pub async fn configuration(
    f: &Function<'_>,
    cx: &Context<'_>,
    qualifier: Option<&str>,
) -> anyhow::Result<FunctionConfiguration> {
    let out = cx
        .clients
        .lambda
        .get_function_configuration()
        .function_name(f.name())
        .set_qualifier(qualifier.map(str::to_string))
        .send()
        .await
        .map_err(|e| with_throttle_reason(e, f.name()))?;
    // The output mirrors FunctionConfiguration field by field.
    Ok(FunctionConfiguration::builder()
        .set_function_arn(out.function_arn().map(str::to_string))
        .set_version(out.version().map(str::to_string))
        .set_code_sha256(out.code_sha256().map(str::to_string))
        .set_revision_id(out.revision_id().map(str::to_string))
        .set_state(out.state().cloned())
        .set_state_reason(out.state_reason().map(str::to_string))
        .set_state_reason_code(out.state_reason_code().cloned())
        .set_last_update_status(out.last_update_status().cloned())
        .set_last_update_status_reason(out.last_update_status_reason().map(str::to_string))
        .set_last_update_status_reason_code(out.last_update_status_reason_code().cloned())
        .set_environment(out.environment().cloned())
        .build())
}

/// Lambda's throttle names its reason in a field of its own
/// (`CallerRateLimitExceeded`), not in the message: the explanation keeps it.
fn with_throttle_reason(
    e: SdkError<GetFunctionConfigurationError, HttpResponse>,
    function: &str,
) -> anyhow::Error {
    let mut failure = crate::aws::classify(&e);
    if let Some(GetFunctionConfigurationError::TooManyRequestsException(t)) = e.as_service_error()
        && let Some(reason) = t.reason()
    {
        failure.message = format!("{} (Reason: {})", failure.message, reason.as_str());
    }
    failure.explain(
        "lambda:GetFunctionConfiguration",
        &format!("Lambda function {function}"),
    )
}

impl Function<'_> {
    /// Shows a change of `LastUpdateStatus` once, and keeps it as an event.
    pub(super) fn note_status(
        &mut self,
        cx: &Context<'_>,
        what: &str,
        c: &FunctionConfiguration,
        report: &mut DeployReport,
    ) {
        let status = c
            .last_update_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".into());
        let reason = c
            .last_update_status_reason()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        self.say_once(
            cx,
            format!("{what}: LastUpdateStatus {status}{reason}"),
            Some(report),
        );
    }

    /// One look: done when no update of the function runs (another
    /// deploy's, or a configuration change) and the function is no longer
    /// being created (`State` Pending has no `LastUpdateStatus` yet), so an
    /// update does not meet ResourceConflictException.
    pub(super) async fn idle(
        &mut self,
        cx: &Context<'_>,
        report: &mut DeployReport,
    ) -> anyhow::Result<Poll<FunctionConfiguration>> {
        let c = configuration(self, cx, None).await?;
        if let Some(why) = super::preflight::creation_failed(self.name(), &c) {
            anyhow::bail!(why);
        }
        let pending = c.state() == Some(&State::Pending);
        if c.last_update_status() != Some(&LastUpdateStatus::InProgress) && !pending {
            return Ok(Poll::Ready(c));
        }
        if pending {
            let why = c.state_reason().unwrap_or("-");
            self.say_once(
                cx,
                format!("the function is still being created (State Pending: {why}); waiting"),
                None,
            );
        } else {
            self.note_status(
                cx,
                "another update of the function is running; waiting",
                &c,
                report,
            );
        }
        Ok(Poll::Pending(Tempo::Steady))
    }

    /// One look: done when Lambda has applied our update (`Successful`), or
    /// failed it (`Failed`, with its reason and code).
    pub(super) async fn applied(
        &mut self,
        cx: &Context<'_>,
        image: &Image,
        report: &mut DeployReport,
    ) -> anyhow::Result<Poll<Result<FunctionConfiguration, String>>> {
        let c = configuration(self, cx, None).await?;
        self.note_status(cx, "update", &c, report);
        Ok(Poll::Ready(match c.last_update_status() {
            Some(LastUpdateStatus::Successful) if c.code_sha256() == Some(image.digest_hex()) => {
                Ok(c)
            }
            // Someone else's update finished after ours.
            Some(LastUpdateStatus::Successful) => Err(format!(
                "the update finished, but $LATEST holds code {} instead of {} (another deploy updated the function meanwhile)",
                c.code_sha256().unwrap_or("?"),
                image.digest_hex()
            )),
            Some(LastUpdateStatus::Failed) => {
                let code = c
                    .last_update_status_reason_code()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_else(|| "no code".into());
                let reason = c.last_update_status_reason().unwrap_or("no reason given");
                Err(format!("the update failed: {reason} ({code})"))
            }
            _ => return Ok(Poll::Pending(Tempo::Steady)),
        }))
    }

    /// One look: done when the published `version` is `Active` (a version of
    /// an image function is `Pending` until Lambda has optimised the image;
    /// an alias on it would not serve), or `Failed`/`Inactive`.
    pub(super) async fn active(
        &mut self,
        cx: &Context<'_>,
        version: &str,
        report: &mut DeployReport,
    ) -> anyhow::Result<Poll<Result<(), String>>> {
        let c = configuration(self, cx, Some(version)).await?;
        let state = c
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Active".into());
        self.say_once(
            cx,
            format!("version {version}: State {state}"),
            Some(report),
        );
        Ok(Poll::Ready(match c.state() {
            None | Some(State::Active) => Ok(()),
            Some(
                State::Failed
                | State::Inactive
                | State::Deactivating
                | State::Deactivated
                | State::ActiveNonInvocable
                | State::Deleting,
            ) => {
                let code = c
                    .state_reason_code()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_else(|| "no code".into());
                let reason = c.state_reason().unwrap_or("no reason given");
                Err(format!("version {version} is {state}: {reason} ({code})"))
            }
            _ => return Ok(Poll::Pending(Tempo::Steady)),
        }))
    }
}
