//! Before anything is built or uploaded: the bundle's own checks (nothing is
//! read from S3), then the application and the environment.

use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EnvironmentStatus};

use super::bundle::{self, Contents};
use crate::aws::Explained;
use crate::error::BadInput;
use crate::plan::{BeanstalkPlan, ComponentPlan};
use crate::settings::config::Bundle;

/// What preflight learnt about the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEnvironment {
    pub environment_id: String,
    /// `<prefix>.<region>.elasticbeanstalk.com` (given a CNAME prefix), else
    /// `<name>.eba-<random>.<region>.elasticbeanstalk.com`
    pub cname: Option<String>,
    /// The application version it runs (`None`: EB's sample application).
    pub version_label: Option<String>,
    pub status: String,
    /// `64bit Amazon Linux 2023 v4.3.0 running Docker`
    pub platform: String,
}

/// The container ports of a `bundle: image` deploy: the config's, else the
/// Dockerfile's `EXPOSE`. Bad input when there are none.
pub fn ports(plan: &BeanstalkPlan, component: &ComponentPlan) -> anyhow::Result<Vec<u16>> {
    if !plan.ports.is_empty() {
        return Ok(plan.ports.clone());
    }
    let (build, name) = (&component.build, &component.name);
    let df = crate::checks::dockerfile::load_with_args(&build.dockerfile, &build.build_args)?;
    let why = match bundle::exposed_ports(&df, build.target.as_deref()) {
        Ok(p) if !p.is_empty() => return Ok(p),
        Ok(_) => format!(
            "but Dockerfile {} exposes none; add `EXPOSE <port>` to it or set `ports: [<port>]` for the component in the config",
            build.dockerfile.display()
        ),
        Err(word) => format!(
            "but Dockerfile {} has {word}, which cannot be read before the build; set `ports: [<port>]` for the component in the config",
            build.dockerfile.display()
        ),
    };
    Err(BadInput::other(format!(
        "component `{name}` deploys `bundle: image` to Elastic Beanstalk environment {}, whose Dockerrun.aws.json needs the \
         container port, {why}",
        plan.environment,
    ))
    .into())
}

/// What the bundle holds, checked: for `bundle: image` with a placeholder
/// `Dockerrun.aws.json` (the digest is known after the push).
pub fn contents(
    plan: &BeanstalkPlan,
    component: &ComponentPlan,
    image_uri: Option<&str>,
) -> anyhow::Result<Contents> {
    let (build, name) = (&component.build, &component.name);
    let what = format!(
        "the {} bundle of component `{name}` for Elastic Beanstalk environment {}",
        plan.bundle.as_str(),
        plan.environment
    );
    match plan.bundle {
        Bundle::Image => {
            let ports = ports(plan, component)?;
            let uri = image_uri.unwrap_or("<the pushed image>@sha256:");
            let c = bundle::image_contents(&build.context, &bundle::dockerrun(uri, &ports))?;
            bundle::check_config(&c, &what)?;
            Ok(c)
        }
        Bundle::Source => {
            let c = bundle::source_contents(&build.context, &build.dockerfile)?;
            bundle::check_source(&c, name, &build.dockerfile, &what)?;
            Ok(c)
        }
    }
}

/// Reads the application and environment; bad input when either is missing,
/// terminated or not on a Docker platform.
pub async fn environment(
    eb: &aws_sdk_elasticbeanstalk::Client,
    plan: &BeanstalkPlan,
) -> anyhow::Result<LiveEnvironment> {
    let (app, env) = (&plan.application, &plan.environment);
    let resource = || format!("Elastic Beanstalk application {app}");
    let apps = eb
        .describe_applications()
        .application_names(app)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeApplications", resource)?;
    if !apps
        .applications()
        .iter()
        .any(|a| a.application_name() == Some(app.as_str()))
    {
        return Err(BadInput::other(format!(
            "Elastic Beanstalk application {app} does not exist in this account and region; check `beanstalk-application` and `aws-region`, \
             or create the application first"
        ))
        .into());
    }
    let found = eb
        .describe_environments()
        .application_name(app)
        .include_deleted(true)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeEnvironments", resource)?;
    let all = found.environments();
    let live = all
        .iter()
        .find(|e| e.environment_name() == Some(env.as_str()) && !is_terminated(e));
    let Some(e) = live else {
        return Err(missing(plan, all).into());
    };
    let platform = e
        .solution_stack_name()
        .or(e.platform_arn())
        .unwrap_or("an unknown platform")
        .to_string();
    if !is_docker(e) {
        let which = if platform.contains("Multi-container Docker")
            || platform.contains("running ECS")
        {
            "the ECS-based multicontainer Docker platform, which takes a Dockerrun.aws.json version 2"
        } else {
            "not a Docker platform"
        };
        return Err(BadInput::other(format!(
            "Elastic Beanstalk environment {env} runs on `{platform}`, {which}; fastdeploy deploys a container image to the Docker platform \
             (`... running Docker`): deploy to an environment on it, or create one"
        ))
        .into());
    }
    Ok(LiveEnvironment {
        environment_id: e.environment_id().unwrap_or_default().to_string(),
        cname: e.cname().map(str::to_string),
        version_label: e.version_label().map(str::to_string),
        status: e
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        platform,
    })
}

/// The environment named is terminated, or not in the application.
fn missing(plan: &BeanstalkPlan, all: &[EnvironmentDescription]) -> BadInput {
    let (app, env) = (&plan.application, &plan.environment);
    if all
        .iter()
        .any(|e| e.environment_name() == Some(env.as_str()))
    {
        return BadInput::other(format!(
            "Elastic Beanstalk environment {env} of application {app} is terminated; restore it or create it again \
             (Docker platform), or name a running environment in `beanstalk-environment`"
        ));
    }
    let mut names: Vec<&str> = all
        .iter()
        .filter(|e| !is_terminated(e))
        .filter_map(|e| e.environment_name())
        .collect();
    names.sort_unstable();
    names.dedup();
    let known = if names.is_empty() {
        "it has none".to_string()
    } else {
        format!("its environments: {}", names.join(", "))
    };
    BadInput::other(format!(
        "Elastic Beanstalk environment {env} does not exist in application {app} ({known}); check `beanstalk-environment`, \
         or create the environment on a Docker platform first"
    ))
}

fn is_terminated(e: &EnvironmentDescription) -> bool {
    matches!(
        e.status(),
        Some(EnvironmentStatus::Terminated | EnvironmentStatus::Terminating)
    )
}

/// `64bit Amazon Linux 2023 v4.3.0 running Docker` or its platform ARN
/// (`.../platform/Docker running on 64bit Amazon Linux 2023/4.3.0`).
fn is_docker(e: &EnvironmentDescription) -> bool {
    let stack = e.solution_stack_name().unwrap_or_default();
    let arn = e.platform_arn().unwrap_or_default();
    stack
        .rsplit_once(" running ")
        .is_some_and(|(_, name)| name.starts_with("Docker"))
        || arn.contains("platform/Docker running on ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(stack: Option<&str>, arn: Option<&str>) -> EnvironmentDescription {
        EnvironmentDescription::builder()
            .set_solution_stack_name(stack.map(str::to_string))
            .set_platform_arn(arn.map(str::to_string))
            .build()
    }

    #[test]
    fn docker_platforms_are_told_from_the_others() {
        assert!(is_docker(&env(
            Some("64bit Amazon Linux 2023 v4.3.0 running Docker"),
            None
        )));
        assert!(is_docker(&env(
            None,
            Some(
                "arn:aws:elasticbeanstalk:eu-west-1::platform/Docker running on 64bit Amazon Linux 2023/4.3.0"
            )
        )));
        assert!(!is_docker(&env(
            Some("64bit Amazon Linux 2023 v4.3.0 running Python 3.11"),
            None
        )));
        assert!(!is_docker(&env(
            Some("64bit Amazon Linux 2 v3.5.0 running ECS"),
            None
        )));
        assert!(!is_docker(&env(
            Some(
                "64bit Amazon Linux 2018.03 v2.26.0 running Multi-container Docker 20.10.13-ce (Generic)"
            ),
            None
        )));
    }
}
