//! Preflight checks and UpdateService.
//!
//! Preflight runs before anything is built or registered: the cluster and
//! service exist and are ACTIVE, the service is deployed by ECS itself (not
//! CodeDeploy or an external controller), and the containers to update exist
//! in the task definition we will render from.

use anyhow::Context;
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentControllerType,
    DeploymentStrategy, Service,
};

use super::render;
use super::wire::{self, Described};
use crate::error::BadInput;
use crate::plan::EcsPlan;
use crate::settings::Strategy;

/// What preflight found, reused by the deploy.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub service: Service,
    /// The service's current task definition, as ECS describes it.
    pub current: Described,
    /// The RegisterTaskDefinition input to render from (current revision or the file).
    pub base: serde_json::Value,
    /// Containers whose image is replaced.
    pub containers: Vec<String>,
}

impl Preflight {
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
pub async fn preflight(ecs: &aws_sdk_ecs::Client, plan: &EcsPlan) -> anyhow::Result<Preflight> {
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
    let pre = Preflight {
        service,
        current,
        base,
        containers,
    };
    if let Some(before) = &plan.before_deploy {
        super::task::container(before, &pre, &family)?;
    }
    Ok(pre)
}

/// Deployment configuration for `strategy: blue-green` on a rolling service:
/// the new tasks start beside the old before any is drained, and the circuit
/// breaker watches them. Native BLUE_GREEN, LINEAR and CANARY services keep
/// their own configuration.
pub fn deployment_configuration(
    pre: &Preflight,
    plan: &EcsPlan,
) -> Option<DeploymentConfiguration> {
    if plan.strategy != Strategy::BlueGreen || pre.strategy() != DeploymentStrategy::Rolling {
        return None;
    }
    let current = pre
        .service
        .deployment_configuration()
        .cloned()
        .unwrap_or_else(|| DeploymentConfiguration::builder().build());
    let mut b = DeploymentConfiguration::builder()
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(plan.watch.rollback)
                .build(),
        )
        .set_alarms(current.alarms().cloned());
    if let Some(s) = current.strategy() {
        b = b.strategy(s.clone());
    }
    Some(b.build())
}

/// UpdateService to `task_definition`. Returns the service as ECS answered.
pub async fn update_service(
    ecs: &aws_sdk_ecs::Client,
    pre: &Preflight,
    plan: &EcsPlan,
    task_definition: &str,
) -> anyhow::Result<Service> {
    let out = ecs
        .update_service()
        .cluster(&plan.cluster)
        .service(&plan.service)
        .task_definition(task_definition)
        .set_deployment_configuration(deployment_configuration(pre, plan))
        .send()
        .await
        .with_context(|| {
            format!(
                "updating service {} in cluster {} to {task_definition} (ecs:UpdateService)",
                plan.service, plan.cluster
            )
        })?;
    out.service()
        .cloned()
        .context("UpdateService returned no service")
}
