//! Before anything is built: the function exists, is an Image function, and
//! runs on an architecture fastdeploy builds for.

use aws_sdk_lambda::types::{FunctionConfiguration, PackageType};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::deploy::{Found, Platform};
use crate::error::BadInput;
use crate::plan::LambdaPlan;

/// What preflight learnt, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFunction {
    pub function_arn: String,
    /// Lambda's name for it: `x86_64` or `arm64`.
    pub architecture: String,
    /// The one platform the image is built for (`linux/amd64`, `linux/arm64`).
    pub platform: String,
}

impl From<LiveFunction> for Found {
    fn from(c: LiveFunction) -> Found {
        let name = c
            .function_arn
            .rsplit(':')
            .next()
            .unwrap_or(&c.function_arn)
            .to_string();
        Found {
            platform: Some(Platform {
                platform: c.platform,
                why: format!("Lambda function {name} runs on {}", c.architecture),
            }),
            config: None,
            execution_role: None,
            runs_on: None,
        }
    }
}

/// The build platform for a Lambda architecture.
pub fn platform_for(architecture: &str) -> Option<&'static str> {
    match architecture {
        "x86_64" => Some("linux/amd64"),
        "arm64" => Some("linux/arm64"),
        _ => None,
    }
}

/// An image config's `architecture` in Lambda's words (`amd64` is `x86_64`).
pub fn lambda_architecture(oci_architecture: &str) -> &str {
    match oci_architecture {
        "amd64" => "x86_64",
        other => other,
    }
}

pub fn not_found<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

/// Checks the plan against Lambda before anything is built.
pub async fn check(
    lambda: &aws_sdk_lambda::Client,
    plan: &LambdaPlan,
) -> anyhow::Result<LiveFunction> {
    let f = &plan.function;
    let out = match lambda.get_function().function_name(f).send().await {
        Ok(out) => out,
        Err(e) if not_found(&e) => {
            return Err(BadInput::other(format!(
                "Lambda function {f} does not exist in this account and region; check the `function` setting and `aws-region`, \
                 or create the function (package type Image) first"
            ))
            .into());
        }
        Err(e) => {
            return Err(crate::aws::classify(&e)
                .explain("lambda:GetFunction", &format!("Lambda function {f}")));
        }
    };
    let config = out
        .configuration()
        .cloned()
        .unwrap_or_else(|| FunctionConfiguration::builder().build());
    if config.package_type() != Some(&PackageType::Image) {
        return Err(BadInput::other(format!(
            "Lambda function {f} is a Zip function, and fastdeploy deploys container images; a function's package type \
             cannot change: create a function with package type Image and name it in `function`, or drop `function` to build and push only"
        ))
        .into());
    }
    if let Some(why) = creation_failed(f, &config) {
        return Err(anyhow::anyhow!(why));
    }
    let architecture = config
        .architectures()
        .first()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| "x86_64".into());
    let platform = platform_for(&architecture).ok_or_else(|| {
        anyhow::anyhow!(
            "Lambda function {f} runs on architecture {architecture}, which fastdeploy cannot build for"
        )
    })?;
    Ok(LiveFunction {
        function_arn: config.function_arn().unwrap_or(f).to_string(),
        architecture,
        platform: platform.to_string(),
    })
}

/// Why the function can take no update: its creation failed (`State`
/// Failed on `$LATEST`; a failed update leaves the state `Active` and only
/// `LastUpdateStatus` Failed). Lambda answers every update 409 until the
/// function is deleted and created again.
pub(super) fn creation_failed(name: &str, c: &FunctionConfiguration) -> Option<String> {
    if c.state() != Some(&aws_sdk_lambda::types::State::Failed) {
        return None;
    }
    let code = c
        .state_reason_code()
        .map(|r| r.as_str().to_string())
        .unwrap_or_else(|| "no code".into());
    let reason = c.state_reason().unwrap_or("no reason given");
    Some(format!(
        "Lambda function {name} is in State Failed: {reason} ({code}); its creation failed, and Lambda updates no such function: \
         delete it and create it again (package type Image), then deploy"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_build_platforms() {
        assert_eq!(platform_for("x86_64"), Some("linux/amd64"));
        assert_eq!(platform_for("arm64"), Some("linux/arm64"));
        assert_eq!(platform_for("mips"), None);
        assert_eq!(lambda_architecture("amd64"), "x86_64");
        assert_eq!(lambda_architecture("arm64"), "arm64");
    }
}
