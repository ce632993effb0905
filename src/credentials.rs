//! The step's own AWS credentials: `role-to-assume` with the job's GitHub
//! OIDC token, so no `configure-aws-credentials` step is needed before
//! fastdeploy, and a run longer than the role session keeps working.
//!
//! [`WebIdentityRole`] is a credentials provider the SDK's identity cache
//! calls when it has no credentials or they are about to expire: each call
//! asks for a fresh web identity token (the job's OIDC endpoint with the
//! audience, or the token file) and assumes the role with STS
//! `AssumeRoleWithWebIdentity`. The token and the credentials are masked as
//! soon as they are known and never written anywhere another step can read.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use secrecy::ExposeSecret;

use crate::error::BadInput;
use crate::gha::Actions;
use crate::settings::{AssumeRole, TokenSource};

/// Loads the shared SDK config for `region` (or the chain's default), with
/// the credentials of `role` when given (`role-to-assume`): the SDK's cache
/// asks [`WebIdentityRole`] for new ones before the
/// session ends. `clock` shrinks the retry back-off in tests.
pub async fn load(
    region: Option<&str>,
    clock: crate::clock::Clock,
    role: Option<&crate::settings::AssumeRole>,
    actions: &crate::gha::Actions,
) -> (
    aws_config::SdkConfig,
    Option<std::sync::Arc<WebIdentityRole>>,
) {
    let Some(role) = role else {
        return (crate::aws::load(region, clock).await, None);
    };
    // STS's AssumeRoleWithWebIdentity is not signed: its client needs no credentials.
    let mut unsigned = aws_config::defaults(aws_config::BehaviorVersion::latest()).no_credentials();
    if let Some(r) = region {
        unsigned = unsigned.region(aws_config::Region::new(r.to_string()));
    }
    let sts = aws_sdk_sts::Client::new(&unsigned.load().await);
    let provider = std::sync::Arc::new(WebIdentityRole::new(
        role.clone(),
        sts,
        actions.clone(),
        clock,
    ));
    let config = crate::aws::load(region, clock).await;
    // The SDK's identity cache gives a credentials load 5 s by default; a
    // refresh asks GitHub for a token (30 s timeout, retried) and then STS,
    // so it gets the time those take instead of failing the deploy mid-run.
    let config = config
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(SharedRole(
                provider.clone(),
            )),
        )
        .identity_cache(
            aws_config::identity::IdentityCache::lazy()
                .load_timeout(std::time::Duration::from_secs(120))
                .build(),
        )
        .build();
    (config, Some(provider))
}

/// The provider, shared with the executor (which checks it before building).
#[derive(Debug)]
struct SharedRole(std::sync::Arc<WebIdentityRole>);

impl aws_credential_types::provider::ProvideCredentials for SharedRole {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

/// The standard credential chain (environment, profile, SSO, container,
/// instance) asked once before anything is built, so a laptop without a
/// session or a job without credentials stops at exit 2 with the way to
/// get them, instead of at the first AWS call after the build.
pub async fn check_chain(
    sdk: &aws_config::SdkConfig,
    in_actions: bool,
    profile: Option<&crate::settings::AwsProfile>,
) -> Result<(), BadInput> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = sdk.credentials_provider() else {
        return Ok(());
    };
    // The chain's last link asks the instance metadata service, which
    // answers within seconds or not at all.
    let limit = Duration::from_secs(30);
    let failure = match tokio::time::timeout(limit, provider.provide_credentials()).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => crate::aws::chain(&e),
        Err(_) => format!("no credentials within {} s", limit.as_secs()),
    };
    Err(BadInput::other(format!(
        "no usable AWS credentials ({failure}); {}",
        credentials_hint(in_actions, profile)
    )))
}

/// How to give fastdeploy credentials where it runs.
fn credentials_hint(in_actions: bool, profile: Option<&crate::settings::AwsProfile>) -> String {
    if in_actions {
        return "give the job credentials: set `role-to-assume` (with `permissions: id-token: write`), or run \
                aws-actions/configure-aws-credentials before this step"
            .to_string();
    }
    match profile {
        Some(p) if p.defined == Some(false) => format!(
            "AWS_PROFILE is `{0}`, but neither the AWS config file nor the credentials file defines a profile of that name: \
             create it with `aws configure sso --profile {0}` (or `aws configure --profile {0}` for access keys), or set AWS_PROFILE to one that exists",
            p.name
        ),
        Some(p) => format!(
            "sign in to profile `{0}` with `aws sso login --profile {0}` (or check its keys with `aws configure list --profile {0}`)",
            p.name
        ),
        None => "on a laptop, set AWS_PROFILE to a profile (`aws configure sso` creates one; `aws sso login` signs in), \
                 or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            .to_string(),
    }
}

/// Assumes `role` with a fresh web identity token each time the SDK asks.
#[derive(Debug)]
pub struct WebIdentityRole {
    role: AssumeRole,
    sts: aws_sdk_sts::Client,
    http: reqwest::Client,
    actions: Actions,
    clock: crate::clock::Clock,
    /// The credentials [`WebIdentityRole::check`] obtained, handed to the
    /// SDK's first ask so a run assumes the role once, not twice, before it
    /// starts; every later ask is a refresh.
    primed: std::sync::Mutex<Option<Credentials>>,
}

impl WebIdentityRole {
    /// `sts` must be a client that does not itself need these credentials
    /// (AssumeRoleWithWebIdentity is not signed).
    pub fn new(
        role: AssumeRole,
        sts: aws_sdk_sts::Client,
        actions: Actions,
        clock: crate::clock::Clock,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("fastdeploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        WebIdentityRole {
            role,
            sts,
            http,
            actions,
            clock,
            primed: std::sync::Mutex::new(None),
        }
    }

    /// A fresh web identity token, masked.
    async fn token(&self) -> Result<String, TokenError> {
        let token = match &self.role.token {
            TokenSource::File(path) => std::fs::read_to_string(path).map(|t| t.trim().to_string()).map_err(|e| {
                TokenError::User(format!(
                    "cannot read the web identity token file {} ({e}); check AWS_WEB_IDENTITY_TOKEN_FILE",
                    path.display()
                ))
            })?,
            TokenSource::Actions { url, request_token } => self.oidc_token(url, request_token.expose_secret()).await?,
        };
        self.actions.add_mask(&token);
        Ok(token)
    }

    /// GitHub's OIDC endpoint: GET `<url>&audience=<aud>` with the request
    /// token as bearer; `{"value": "<JWT>"}`. Transient failures are retried.
    async fn oidc_token(&self, url: &str, request_token: &str) -> Result<String, TokenError> {
        let mut url = url::Url::parse(url).map_err(|e| {
            TokenError::User(format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL ({e})"))
        })?;
        url.query_pairs_mut()
            .append_pair("audience", &self.role.audience);
        let mut last = String::new();
        for attempt in 1..=3u32 {
            match self
                .http
                .get(url.clone())
                .bearer_auth(request_token)
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => {
                    #[derive(serde::Deserialize)]
                    struct Answer {
                        value: String,
                    }
                    return resp.json::<Answer>().await.map(|a| a.value).map_err(|e| {
                        TokenError::Transient(format!(
                            "the OIDC token endpoint answered no token ({e})"
                        ))
                    });
                }
                Ok(resp) if resp.status().is_client_error() => {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    return Err(TokenError::User(format!(
                        "the job's OIDC token endpoint refused the request (HTTP {status}: {}); the job needs `permissions: id-token: write`, \
                         and `audience` must be one the role's trust policy accepts",
                        crate::process::shorten(body.trim(), 200)
                    )));
                }
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                Err(e) => last = crate::error::source_chain(&e.without_url()),
            }
            tokio::time::sleep(self.clock.of(f64::from(attempt))).await;
        }
        Err(TokenError::Transient(format!(
            "the job's OIDC token endpoint did not answer ({last})"
        )))
    }

    async fn assume(&self) -> Result<Credentials, TokenError> {
        let token = self.token().await?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role.role_arn)
            .role_session_name(&self.role.session_name)
            .web_identity_token(token)
            .duration_seconds(self.role.duration_seconds as i32)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("error").to_string();
                let message = e.message().unwrap_or_default().to_string();
                let fix = match code.as_str() {
                    "AccessDenied" => "the role's trust policy must trust token.actions.githubusercontent.com for this repository (its `sub` and `aud` conditions)",
                    "InvalidIdentityToken" | "IDPRejectedClaim" => "check `audience` and the role's trust policy (`aud` condition)",
                    "ValidationError" => "check `role-duration-seconds` against the role's maximum session duration, and `role-session-name`",
                    _ => "",
                };
                let what = format!("assuming role {} with the web identity token (sts:AssumeRoleWithWebIdentity): {code}: {message}", self.role.role_arn);
                if fix.is_empty() { TokenError::Transient(what) } else { TokenError::User(format!("{what}; {fix}")) }
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| TokenError::Transient("STS answered no credentials".into()))?;
        self.actions.add_mask(c.secret_access_key());
        self.actions.add_mask(c.session_token());
        let expires = std::time::SystemTime::try_from(*c.expiration()).ok();
        tracing::debug!(role = %self.role.role_arn, ?expires, "assumed the role");
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expires,
            "fastdeploy-web-identity",
        ))
    }

    /// The first credentials, before anything is built: what the user must
    /// fix (a refused token request, a role that does not trust this
    /// repository) is bad input, exit 2.
    pub async fn check(&self) -> anyhow::Result<()> {
        match self.assume().await {
            Ok(c) => {
                *self.primed.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                Ok(())
            }
            Err(TokenError::User(m)) => {
                Err(BadInput::other(format!("input `role-to-assume`: {m}")).into())
            }
            Err(TokenError::Transient(m)) => Err(anyhow::anyhow!("input `role-to-assume`: {m}")),
        }
    }
}

#[derive(Debug)]
enum TokenError {
    /// Something the user fixes (permissions, trust policy, inputs).
    User(String),
    /// Might pass on a later try.
    Transient(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::User(m) | TokenError::Transient(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TokenError {}

impl ProvideCredentials for WebIdentityRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            if let Some(c) = self.primed.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Ok(c);
            }
            // Named, so a refresh that fails mid-run is told apart from
            // missing credentials (crate::aws::AwsFailure::explain).
            self.assume().await.map_err(|e| {
                CredentialsError::provider_error(TokenError::Transient(format!(
                    "role-to-assume {}: getting fresh credentials failed: {e}",
                    self.role.role_arn
                )))
            })
        })
    }
}
