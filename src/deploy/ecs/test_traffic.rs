//! `smoke-test-path` on an ECS blue/green service (deployment strategy
//! BLUE_GREEN with a test listener rule): the new revision is fetched
//! through the load balancer's test listener once ECS has shifted test
//! traffic to it, before the deploy is called done. A path that does not
//! answer 2xx/3xx stops the service deployment with a rollback
//! (`StopServiceDeployment`, `ROLLBACK`), and ECS moves the listeners back.
//!
//! ECS moves production traffic on its own after the test shift unless a
//! lifecycle hook holds it (`POST_TEST_TRAFFIC_SHIFT`): without one the
//! check races the production shift, and a failure is a rollback of
//! traffic that already moved. The run says which happened.

use aws_sdk_ecs::types::{
    Service, ServiceDeploymentLifecycleStage as Stage, ServiceDeploymentStatus,
};

use super::watch::{Ours, look};
use crate::aws::Explained;
use crate::deploy::Context;
use crate::wait::{Poll, Tempo, Waiter};

/// The service's test listener, as a URL to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestListener {
    /// `http://<load balancer DNS name>:<port>`.
    pub url: String,
    /// The test listener rule ECS moves to the new revision.
    pub rule: String,
}

/// The listener a rule belongs to, from the rule's ARN
/// (`...:listener-rule/app/<lb>/<id>/<listener>/<rule>`).
fn listener_of(rule: &str) -> Option<String> {
    let (head, path) = rule.split_once(":listener-rule/")?;
    let (listener, _) = path.rsplit_once('/')?;
    Some(format!("{head}:listener/{listener}"))
}

/// The test listener of a blue/green service (read-only); `None` when the
/// service has none.
pub async fn find(cx: &Context<'_>, service: &Service) -> anyhow::Result<Option<TestListener>> {
    let Some(rule) = service
        .load_balancers()
        .iter()
        .find_map(|lb| lb.advanced_configuration()?.test_listener_rule())
    else {
        return Ok(None);
    };
    let elb = &cx.clients.elb;
    let what = || {
        format!(
            "the test listener rule {rule} of ECS service {}",
            service.service_name().unwrap_or("-")
        )
    };
    let Some(listener) = listener_of(rule) else {
        anyhow::bail!("{} is not a listener rule ARN", what());
    };
    let l = elb
        .describe_listeners()
        .listener_arns(&listener)
        .send()
        .await
        .explained("elasticloadbalancing:DescribeListeners", what)?;
    let Some(l) = l.listeners().first() else {
        anyhow::bail!("{}: its listener {listener} does not exist", what());
    };
    let lb = elb
        .describe_load_balancers()
        .load_balancer_arns(l.load_balancer_arn().unwrap_or_default())
        .send()
        .await
        .explained("elasticloadbalancing:DescribeLoadBalancers", what)?;
    let dns = lb
        .load_balancers()
        .first()
        .and_then(|b| b.dns_name())
        .ok_or_else(|| anyhow::anyhow!("{}: its load balancer has no DNS name", what()))?;
    let scheme = match l.protocol().map(|p| p.as_str()) {
        Some("HTTPS") => "https",
        _ => "http",
    };
    Ok(Some(TestListener {
        url: format!("{scheme}://{dns}:{}", l.port().unwrap_or(80)),
        rule: rule.to_string(),
    }))
}

/// Where the rollout was when the wait for test traffic ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Reached {
    /// Test traffic is on our revision; production is not yet.
    TestOnly,
    /// Production traffic already moved too (no lifecycle hook held it).
    Production,
    /// The deployment ended first (failed, rolled back, stopped): the
    /// rollout's own verdict says how.
    Ended,
}

/// Waits until ECS has shifted test traffic to our revision, or the
/// deployment ended.
pub async fn test_traffic(
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    ours: &Ours,
) -> anyhow::Result<Reached> {
    let doing = format!(
        "waiting for ECS to shift test traffic to {}",
        super::revision_label(&ours.task_definition)
    );
    w.until(&doing, async || {
        let l = look(&cx.clients.ecs, ours).await?;
        let Some(sd) = &l.service_deployment else {
            return Ok(Poll::Ready(Reached::Ended));
        };
        if !matches!(
            sd.status(),
            Some(ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending)
        ) {
            return Ok(Poll::Ready(Reached::Ended));
        }
        Ok(match sd.lifecycle_stage() {
            Some(Stage::PostTestTrafficShift) => Poll::Ready(Reached::TestOnly),
            Some(
                Stage::ProductionTrafficShift
                | Stage::PostProductionTrafficShift
                | Stage::BakeTime
                | Stage::CleanUp,
            ) => Poll::Ready(Reached::Production),
            _ => Poll::Pending(Tempo::Steady),
        })
    })
    .await
}

/// Stops our service deployment with a rollback: ECS moves the listeners
/// back to the revision that served.
pub async fn roll_back(cx: &Context<'_>, ours: &Ours, why: &str) -> anyhow::Result<()> {
    let Some(arn) = &ours.service_deployment else {
        anyhow::bail!("no service deployment to stop ({why})");
    };
    super::rollback::stop_with_rollback(cx, arn).await?;
    cx.actions.line(&format!(
        "stopped service deployment {arn} with a rollback: {why}"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_listener_is_its_arn_without_the_rule() {
        assert_eq!(
            listener_of(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
            )
            .as_deref(),
            Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
        assert_eq!(
            listener_of("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y"),
            None
        );
    }
}
