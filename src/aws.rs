//! The one AWS `SdkConfig`, built at the edge: standard credential chain
//! (environment, web identity from configure-aws-credentials, profiles;
//! `role-to-assume` is [`crate::credentials`]'s), `AWS_ENDPOINT_URL`
//! honoured (the sandbox's moto), explicit retries.
//!
//! Also home of [`AwsFailure`], the one place an AWS SDK error of any service
//! is sorted into "retry it" (throttling, 5xx, timeouts, resets) and "tell the
//! user" (access denied with the refused IAM action and the principal, missing
//! or expired credentials, a resource that does not exist).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::BadInput;

/// Loads the shared SDK config for `region` (or the chain's default).
/// `clock` shrinks the retry back-off in tests ([`crate::clock::Clock::REAL`] in production).
pub async fn load(region: Option<&str>, clock: crate::clock::Clock) -> aws_config::SdkConfig {
    let scaled = |d: Duration| clock.of(d.as_secs_f64()).max(Duration::from_millis(1));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Standard retry: throttling, 5xx, timeouts and connection resets are
        // retried with jittered exponential back-off, bounded. Not adaptive:
        // its client-side rate limiter keeps slowing every later call for
        // tens of seconds after a few throttles, which turns a 5 s poll into
        // a 20 s one (measured against the sandbox).
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(scaled(Duration::from_millis(200)))
                .with_max_backoff(scaled(Duration::from_secs(10))),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}

// ---------------------------------------------------------------------------
// AWS errors people can act on.

/// What kind of failure an AWS call met, deciding retry or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling: retry after backing off.
    Throttled,
    /// 5xx, timeouts, connection resets: retry a bounded number of times.
    Transient,
    /// The principal lacks an IAM permission.
    AccessDenied,
    /// No credentials, invalid or expired ones.
    Credentials,
    /// The named resource does not exist.
    NotFound,
    /// The request was rejected as invalid (a name ECR refuses, ...).
    Invalid,
    Other,
}

/// An AWS SDK error reduced to what decides the next step.
#[derive(Debug, Clone)]
pub struct AwsFailure {
    pub kind: FailureKind,
    pub code: Option<String>,
    pub message: String,
    pub status: Option<u16>,
}

impl AwsFailure {
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, FailureKind::Throttled | FailureKind::Transient)
    }

    /// The ARN of the principal the message names (`User: arn:... is not authorized`).
    pub fn principal(&self) -> Option<&str> {
        principal_in(&self.message)
    }

    /// The IAM action the message names (`not authorized to perform: ecr:X`).
    pub fn refused_action(&self) -> Option<&str> {
        let rest = self.message.split("perform: ").nth(1)?;
        let action = rest
            .split_whitespace()
            .next()?
            .trim_end_matches([',', '.', ';']);
        action.contains(':').then_some(action)
    }

    /// Turns the failure into the error a user reads: the action (`ecr:CreateRepository`),
    /// the resource, and what to change. Configuration problems are [`BadInput`] (exit 2).
    pub fn explain(self, action: &str, resource: &str) -> anyhow::Error {
        let code = self.code.as_deref().unwrap_or("error");
        match self.kind {
            FailureKind::AccessDenied => {
                let refused = self.refused_action().unwrap_or(action).to_string();
                let who = self
                    .principal()
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_else(|| " for the credentials in use".to_string());
                BadInput::other(format!(
                    "AWS refused `{refused}` on {resource}{who}: allow `{refused}` in that role's IAM policy ({code}: {})",
                    self.message
                ))
                .into()
            }
            FailureKind::Credentials => {
                // Our own provider failed to refresh `role-to-assume`'s
                // credentials mid-run: not the user's configuration (that
                // was checked before building), so not bad input.
                if self.message.contains("role-to-assume") {
                    return anyhow::anyhow!(
                        "calling `{action}` on {resource}: {}; the role was assumed before the build, so re-running the job usually passes",
                        self.message
                    );
                }
                let hint = if is_expired(self.code.as_deref(), &self.message) {
                    "the AWS session token has expired; re-run aws-actions/configure-aws-credentials before fastdeploy or raise its role-duration-seconds"
                } else {
                    "no usable AWS credentials; configure them (aws-actions/configure-aws-credentials, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the region in `aws-region`"
                };
                BadInput::other(format!(
                    "calling `{action}` on {resource}: {hint} ({code}: {})",
                    self.message
                ))
                .into()
            }
            FailureKind::NotFound => BadInput::other(format!(
                "{resource} does not exist ({code}: {})",
                self.message
            ))
            .into(),
            FailureKind::Invalid => BadInput::other(format!(
                "AWS rejected `{action}` on {resource}: {}",
                self.message
            ))
            .into(),
            _ => AwsError {
                action: action.to_string(),
                resource: resource.to_string(),
                failure: self,
            }
            .into(),
        }
    }
}

/// An AWS call that failed for a reason that is not the user's to fix:
/// throttling, a server error, anything unexpected. Waits find it in an
/// error's chain to tell a look worth retrying from one that is not.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// `lambda:GetFunctionConfiguration`.
    pub action: String,
    pub resource: String,
    pub failure: AwsFailure,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.failure.kind {
            FailureKind::Throttled => "was throttled",
            _ => "failed",
        };
        let (action, resource, answer) = (&self.action, &self.resource, self.answer());
        write!(f, "`{action}` on {resource} {what}: {answer}")
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// What AWS answered: `TooManyRequestsException: Rate exceeded, HTTP 429`.
    pub fn answer(&self) -> String {
        let f = &self.failure;
        let code = f.code.as_deref().unwrap_or("error");
        let message = if f.message.is_empty() {
            "no message"
        } else {
            f.message.as_str()
        };
        let status = f.status.map(|s| format!(", HTTP {s}")).unwrap_or_default();
        format!("{code}: {message}{status}")
    }

    /// Throttling, a 5xx, a timeout or a reset connection: the next look may pass.
    pub fn is_retryable(&self) -> bool {
        self.failure.is_retryable()
    }
}

/// The AWS call in `e`'s chain, when it failed in a way worth retrying.
pub fn retryable(e: &anyhow::Error) -> Option<&AwsError> {
    e.chain()
        .find_map(|c| c.downcast_ref::<AwsError>())
        .filter(|a| a.is_retryable())
}

/// `.explained(action, resource)` on an SDK call's result: its error
/// classified and explained ([`AwsFailure::explain`]).
pub trait Explained<T> {
    fn explained(self, action: &str, resource: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E> Explained<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn explained(self, action: &str, resource: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| classify(&e).explain(action, &resource()))
    }
}

fn is_expired(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired")
    ) || message.contains("security token included in the request is expired")
}

fn principal_in(message: &str) -> Option<&str> {
    let start = message.find("arn:aws")?;
    let arn = &message[start..];
    let end = arn
        .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ')')
        .unwrap_or(arn.len());
    Some(&arn[..end])
}

/// Sorts an SDK error. Works for every service (codes are compared as strings).
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err {
        SdkError::ServiceError(_) => {
            let code = err.code().map(str::to_string);
            let message = err.message().unwrap_or_default().to_string();
            let kind = kind_for(code.as_deref(), &message, status);
            AwsFailure {
                kind,
                code,
                message,
                status,
            }
        }
        SdkError::TimeoutError(_) => AwsFailure {
            kind: FailureKind::Transient,
            code: None,
            message: "the request timed out".into(),
            status,
        },
        SdkError::DispatchFailure(d) => {
            let message = chain(err);
            let kind = if d.is_io() || d.is_timeout() {
                FailureKind::Transient
            } else if message.to_ascii_lowercase().contains("credential") {
                FailureKind::Credentials
            } else {
                FailureKind::Other
            };
            AwsFailure {
                kind,
                code: None,
                message,
                status,
            }
        }
        SdkError::ResponseError(_) => {
            let kind = if status.is_some_and(|s| s >= 500) {
                FailureKind::Transient
            } else {
                FailureKind::Other
            };
            AwsFailure {
                kind,
                code: None,
                message: chain(err),
                status,
            }
        }
        _ => {
            // ConstructionFailure: no region, a bad endpoint. Not retryable.
            let message = chain(err);
            let kind = if message.to_ascii_lowercase().contains("region") {
                FailureKind::Credentials
            } else {
                FailureKind::Other
            };
            AwsFailure {
                kind,
                code: None,
                message,
                status,
            }
        }
    }
}

fn kind_for(code: Option<&str>, message: &str, status: Option<u16>) -> FailureKind {
    let c = code.unwrap_or_default();
    // LimitExceededException is also a quota error; only "rate" makes it throttling.
    let rate_limited =
        c == "LimitExceededException" && message.to_ascii_lowercase().contains("rate");
    if c.contains("Throttl")
        || matches!(
            c,
            "TooManyRequestsException" | "RequestLimitExceeded" | "SlowDown"
        )
        || rate_limited
        || status == Some(429)
    {
        FailureKind::Throttled
    } else if c.starts_with("AccessDenied")
        || c == "UnauthorizedOperation"
        || c == "AuthorizationError"
    {
        FailureKind::AccessDenied
    } else if is_expired(code, message)
        || matches!(
            c,
            "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "InvalidSignatureException"
                | "MissingAuthenticationToken"
        )
    {
        FailureKind::Credentials
    } else if c.ends_with("NotFoundException") || c == "ResourceNotFound" {
        FailureKind::NotFound
    } else if matches!(
        c,
        "InternalFailure"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServerException"
            | "InternalServiceException"
    ) || status.is_some_and(|s| s >= 500)
    {
        FailureKind::Transient
    } else if c.starts_with("Invalid") || c == "ValidationException" {
        FailureKind::Invalid
    } else {
        FailureKind::Other
    }
}

pub fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        // Layers that wrap with the same words (the credentials chain's
        // "an error occurred while loading credentials") are said once.
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Back-off for retrying an AWS call: doubles from `base` up to `max`, with
/// ±20 % jitter so parallel components do not retry in lockstep.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let raw = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    raw.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// Retries `call` while it fails transiently (throttling, 5xx, timeouts), at
/// most `attempts` times, then explains the failure for `action` on `resource`.
pub async fn retrying<T, E, F, Fut>(
    action: &str,
    resource: &str,
    clock: crate::clock::Clock,
    attempts: u32,
    mut call: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let failure = classify(&e);
                attempt += 1;
                if !failure.is_retryable() || attempt >= attempts {
                    return Err(failure.explain(action, resource));
                }
                tracing::debug!(action, attempt, code = ?failure.code, "transient AWS failure; retrying");
                crate::timings::sleep("aws", backoff(attempt, clock.of(1.0), clock.of(20.0))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_refused_action_and_the_role() {
        let f = AwsFailure {
            kind: FailureKind::AccessDenied,
            code: Some("AccessDeniedException".into()),
            message: "User: arn:aws:sts::123456789012:assumed-role/deploy/GitHubActions is not authorized to perform: ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:123456789012:repository/app because no identity-based policy allows the ecr:CreateRepository action".into(),
            status: Some(400),
        };
        assert_eq!(
            f.principal(),
            Some("arn:aws:sts::123456789012:assumed-role/deploy/GitHubActions")
        );
        let err = f.explain("ecr:CreateRepository", "ECR repository `app`");
        assert_eq!(crate::error::exit_for(&err), crate::error::Exit::BadInput);
        let msg = err.to_string();
        assert!(
            msg.contains("`ecr:CreateRepository`")
                && msg.contains("assumed-role/deploy/GitHubActions"),
            "{msg}"
        );
    }

    #[test]
    fn a_failed_refresh_of_role_to_assume_is_not_bad_input_and_says_so() {
        let failure = |message: &str| AwsFailure {
            kind: FailureKind::Credentials,
            code: None,
            message: message.into(),
            status: None,
        };
        let refresh = failure(
            "dispatch failure: other: an error occurred while loading credentials: role-to-assume arn:aws:iam::123456789012:role/deploy: getting fresh credentials failed: the job's OIDC token endpoint did not answer",
        )
        .explain("ecs:DescribeServices", "service web");
        assert!(
            refresh.downcast_ref::<BadInput>().is_none(),
            "a refresh that failed mid-run is no input to fix: {refresh}"
        );
        let text = refresh.to_string();
        assert!(
            text.contains("getting fresh credentials failed")
                && !text.contains("configure-aws-credentials"),
            "{text}"
        );
        // Without role-to-assume, missing credentials stay bad input with the set-up advice.
        let missing = failure("dispatch failure: other: no credentials in the chain")
            .explain("ecs:DescribeServices", "service web");
        assert!(
            missing.downcast_ref::<BadInput>().is_some()
                && missing.to_string().contains("configure-aws-credentials"),
            "{missing}"
        );
    }

    #[test]
    fn codes_sort_into_retry_or_report() {
        assert_eq!(
            kind_for(Some("ThrottlingException"), "Rate exceeded", Some(400)),
            FailureKind::Throttled
        );
        assert_eq!(
            kind_for(Some("ServerException"), "", Some(500)),
            FailureKind::Transient
        );
        assert_eq!(kind_for(None, "", Some(503)), FailureKind::Transient);
        assert_eq!(
            kind_for(
                Some("ExpiredTokenException"),
                "The security token included in the request is expired",
                Some(400)
            ),
            FailureKind::Credentials
        );
        assert_eq!(
            kind_for(Some("UnrecognizedClientException"), "", Some(400)),
            FailureKind::Credentials
        );
        assert_eq!(
            kind_for(Some("RepositoryNotFoundException"), "", Some(400)),
            FailureKind::NotFound
        );
        assert_eq!(
            kind_for(Some("InvalidParameterException"), "", Some(400)),
            FailureKind::Invalid
        );
        assert_eq!(
            kind_for(Some("AccessDeniedException"), "", Some(400)),
            FailureKind::AccessDenied
        );
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert!(backoff(0, base, max) <= Duration::from_millis(120));
        assert!(backoff(3, base, max) >= Duration::from_millis(640));
        assert!(backoff(30, base, max) <= Duration::from_millis(1200));
    }
}
