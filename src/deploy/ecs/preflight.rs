//! Preflight, read-only: it runs before anything is built or registered: the cluster and
//! service exist and are ACTIVE, the service is deployed by ECS itself (not
//! CodeDeploy or an external controller), and the containers to update exist
//! in the task definition we will render from.

use anyhow::Context;
use aws_sdk_ecs::types::{DeploymentControllerType, DeploymentStrategy, Service};

use super::render;
use super::wire::{self, Described};
use crate::error::BadInput;
use crate::plan::{BeforeDeploy, EcsPlan};

/// What preflight found, reused by the deploy.
#[derive(Debug, Clone)]
pub struct LiveService {
    pub service: Service,
    /// The service's current task definition, as ECS describes it.
    pub current: Described,
    /// The RegisterTaskDefinition input to render from (current revision or the file).
    pub base: serde_json::Value,
    /// Containers whose image is replaced.
    pub containers: Vec<String>,
}

impl LiveService {
    /// The service's deployment strategy (ROLLING when unset).
    pub fn strategy(&self) -> DeploymentStrategy {
        self.service
            .deployment_configuration()
            .and_then(|c| c.strategy())
            .cloned()
            .unwrap_or(DeploymentStrategy::Rolling)
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    let text = format!("{e:?}");
    text.contains("ClusterNotFoundException") || text.contains("ServiceNotFoundException")
}

/// Checks the plan against ECS before anything is built or registered.
pub async fn check(ecs: &aws_sdk_ecs::Client, plan: &EcsPlan) -> anyhow::Result<LiveService> {
    let (cluster, name) = (&plan.cluster, &plan.service);
    let clusters = ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .with_context(|| format!("describing cluster {cluster} (ecs:DescribeClusters)"))?;
    match clusters.clusters().first() {
        Some(c) if c.status() == Some("ACTIVE") => {}
        Some(c) => {
            return Err(BadInput::other(format!(
                "ECS cluster {cluster} is {}, not ACTIVE; deploy to an active cluster (input `cluster`)",
                c.status().unwrap_or("in an unknown state")
            ))
            .into());
        }
        None => {
            return Err(BadInput::other(format!(
                "ECS cluster {cluster} does not exist in this account and region; check the `cluster` input and `aws-region`"
            ))
            .into());
        }
    }
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .map_err(anyhow::Error::new);
    let described = match described {
        Err(e) if is_not_found(&e) => {
            return Err(BadInput::other(format!(
                "ECS service {name} does not exist in cluster {cluster}; check the `service` input"
            ))
            .into());
        }
        other => other.with_context(|| {
            format!("describing service {name} in cluster {cluster} (ecs:DescribeServices)")
        })?,
    };
    let Some(service) = described.services().first().cloned() else {
        return Err(BadInput::other(format!(
            "ECS service {name} does not exist in cluster {cluster}; check the `service` input"
        ))
        .into());
    };
    match service.status() {
        Some("ACTIVE") => {}
        other => {
            return Err(BadInput::other(format!(
                "ECS service {name} in cluster {cluster} is {}, not ACTIVE: it is being deleted or was deleted; recreate it or deploy to another service",
                other.unwrap_or("in an unknown state")
            ))
            .into());
        }
    }
    match service.deployment_controller().map(|c| c.r#type()) {
        None | Some(DeploymentControllerType::Ecs) => {}
        Some(DeploymentControllerType::CodeDeploy) => {
            return Err(BadInput::other(format!(
                "ECS service {name} uses the CODE_DEPLOY deployment controller, so only CodeDeploy can change its task definition; \
                 switch it to the ECS controller with native blue/green (deploymentController type ECS, deploymentConfiguration.strategy BLUE_GREEN) \
                 to deploy it with fastdeploy"
            ))
            .into());
        }
        Some(other) => {
            return Err(BadInput::other(format!(
                "ECS service {name} uses the {} deployment controller; fastdeploy deploys services with the ECS controller \
                 (rolling, BLUE_GREEN, LINEAR or CANARY); change the service's deploymentController to ECS",
                other.as_str()
            ))
            .into());
        }
    }
    let current_arn = service
        .task_definition()
        .with_context(|| format!("service {name} has no task definition"))?
        .to_string();
    let current = wire::describe(ecs, &current_arn).await?;
    let base = match &plan.task_definition_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                BadInput::other(format!(
                    "cannot read task definition file {}: {e}",
                    path.display()
                ))
            })?;
            render::from_file(&text, &path.display().to_string())?
        }
        None => render::from_described(&current.task_definition, current.tags.as_ref()),
    };
    let family = render::family(&base).to_string();
    let containers = render::check_containers(&base, &plan.containers, &family)?;
    let pre = LiveService {
        service,
        current,
        base,
        containers,
    };
    if let Some(before) = &plan.before_deploy {
        container(before, &pre, &family)?;
    }
    Ok(pre)
}

/// `promote`'s source: the image by digest the service's current revision
/// runs in the component's containers (the same in each, else refused).
pub async fn serving_image(
    cx: &crate::deploy::Context<'_>,
    plan: &EcsPlan,
) -> anyhow::Result<crate::deploy::Image> {
    let pre = check(&cx.clients.ecs, plan).await?;
    let revision = crate::outcome::revision_label(pre.current.arn());
    let images: Vec<String> =
        render::container_images(&pre.current.task_definition, &pre.containers);
    let mut distinct = images.clone();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => crate::deploy::Image::from_uri(one, None).ok_or_else(|| {
            BadInput::other(format!(
                "service {} runs {one} on {revision}, an image by tag, not by digest: what the tag names may have moved                  since, so it is not promoted; deploy it by digest first",
                plan.service
            ))
            .into()
        }),
        _ => Err(BadInput::other(format!(
            "service {} runs different images in {} on {revision} ({}); promote takes one image per component",
            plan.service,
            pre.containers.join(", "),
            images.join(", ")
        ))
        .into()),
    }
}

/// The container `before-deploy` runs in: the one named, else the one whose
/// image is replaced.
pub fn container<'a>(
    b: &'a BeforeDeploy,
    pre: &'a LiveService,
    family: &str,
) -> Result<&'a str, BadInput> {
    let names = render::container_names(&pre.base);
    match &b.container {
        Some(c) if names.contains(c) => Ok(c),
        Some(c) => Err(BadInput::other(format!(
            "`before-deploy-container` is `{c}`, which is not a container of task definition {family}; its containers are: {}",
            names.join(", ")
        ))),
        None => match pre.containers.as_slice() {
            [only] => Ok(only),
            several => Err(BadInput::Missing {
                name: "before-deploy-container".into(),
                why: format!(
                    "when several containers are updated ({}): name the one `before-deploy` runs in",
                    several.join(", ")
                ),
            }),
        },
    }
}
