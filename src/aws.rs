//! The one AWS `SdkConfig`, built at the edge: standard credential chain
//! (environment, web identity from configure-aws-credentials, profiles),
//! `AWS_ENDPOINT_URL` honoured (the sandbox's moto), explicit retries.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Loads the shared SDK config for `region` (or the chain's default).
pub async fn load(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Adaptive retry backs off on throttling and 5xx with jitter, bounded.
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).operation_attempt_timeout(Duration::from_secs(60)).build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}
