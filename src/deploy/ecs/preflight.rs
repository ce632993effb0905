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
    let who = format!("service {}", plan.service);
    Ok(one_image(&pre.current, &pre.containers, &who)?)
}

/// The one image by digest revision `td` runs in `containers` (the same
/// in each), for `promote`; `who` runs it (`service web`, `rule nightly`).
pub fn one_image(
    td: &wire::Described,
    containers: &[String],
    who: &str,
) -> Result<crate::deploy::Image, BadInput> {
    let revision = crate::outcome::revision_label(td.arn());
    let images: Vec<String> = render::container_images(&td.task_definition, containers);
    let mut distinct = images.clone();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => crate::deploy::Image::from_uri(one, None).ok_or_else(|| {
            BadInput::other(format!(
                "{who} runs {one} on {revision}, an image by tag, not by digest: what the tag names may have moved \
                 since, so it is not promoted; deploy it by digest first"
            ))
        }),
        _ => Err(BadInput::other(format!(
            "{who} runs different images in {} on {revision} ({}); promote takes one image per component",
            containers.join(", "),
            images.join(", ")
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn revision(images: &[(&str, &str)]) -> wire::Described {
        let containers: Vec<_> = images
            .iter()
            .map(|(name, image)| json!({"name": name, "image": image}))
            .collect();
        wire::Described {
            task_definition: json!({
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
                "containerDefinitions": containers,
            }),
            tags: None,
        }
    }

    #[test]
    fn promote_takes_the_one_image_by_digest_the_containers_run() {
        let by_digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let same = revision(&[
            ("app", by_digest),
            ("worker", by_digest),
            ("proxy", "nginx:1"),
        ]);
        let image = one_image(&same, &names(&["app", "worker"]), "service web").unwrap();
        assert_eq!(image.uri, by_digest);

        let tagged = revision(&[("app", "shop:latest")]);
        let e = one_image(&tagged, &names(&["app"]), "rule nightly").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rule nightly runs shop:latest on web:7, an image by tag, not by digest: what the tag names may have moved \
             since, so it is not promoted; deploy it by digest first"
        );

        let mixed = revision(&[("app", by_digest), ("worker", "shop:latest")]);
        let e = one_image(&mixed, &names(&["app", "worker"]), "service web").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "service web runs different images in app, worker on web:7 ({by_digest}, shop:latest); promote takes one image per component"
            )
        );
    }
}
