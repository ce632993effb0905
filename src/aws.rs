//! The one AWS `SdkConfig`, built at the edge: standard credential chain
//! (environment, web identity from configure-aws-credentials, profiles),
//! `AWS_ENDPOINT_URL` honoured (the sandbox's moto), explicit retries.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Loads the shared SDK config for `region` (or the chain's default).
/// `delay_scale` shrinks the retry back-off in tests (1.0 in production).
pub async fn load(region: Option<&str>, delay_scale: f64) -> aws_config::SdkConfig {
    let scaled = |d: Duration| Duration::from_secs_f64((d.as_secs_f64() * delay_scale).max(0.001));
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
            TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).operation_attempt_timeout(Duration::from_secs(60)).build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}
