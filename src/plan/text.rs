//! `fastdeploy plan` in words: what the run will build, where it deploys,
//! and why, as people read it.

use super::*;

impl Plan {
    /// Human-readable rendering for `fastdeploy plan`.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fastdeploy plan for {} {} ({})",
            self.context.event,
            self.context.git_ref.as_deref().unwrap_or("-"),
            self.context.short_sha()
        );
        match &self.target {
            Target::Deploy {
                environment,
                reason,
            } => {
                let _ = writeln!(s, "  deploy to environment `{environment}` ({reason})");
            }
            Target::BuildOnly { push, reason } => {
                let _ = writeln!(
                    s,
                    "  build only{} ({reason})",
                    if *push { " and push" } else { ", no push" }
                );
            }
        }
        let _ = writeln!(
            s,
            "  builder: {} ({})",
            self.builder.kind.as_str(),
            self.builder.reason
        );
        if let Some(b) = &self.builder.buildx {
            let name = b
                .builder
                .as_deref()
                .map_or_else(|| "the current builder".to_string(), |n| format!("`{n}`"));
            let _ = writeln!(
                s,
                "  buildx builder: {name}{} ({})",
                if b.create {
                    ", created unless it exists"
                } else {
                    ""
                },
                b.reason
            );
        }
        let registry = self
            .registry
            .host
            .clone()
            .unwrap_or_else(|| "<ECR registry from GetAuthorizationToken>".into());
        let _ = writeln!(s, "  registry: {registry}");
        let _ = match (&self.aws_region, &self.aws_region_source) {
            (Some(r), Some(source)) => writeln!(s, "  region: {r} (from {source})"),
            (Some(r), None) => writeln!(s, "  region: {r}"),
            _ => writeln!(
                s,
                "  region: none set (no `aws-region` input, AWS_REGION or AWS_DEFAULT_REGION); only an AWS profile's region can save the run"
            ),
        };
        for c in &self.components {
            let b = &c.build;
            let _ = writeln!(s, "  component {}:", c.name);
            let _ = writeln!(
                s,
                "    context {} dockerfile {}{}",
                b.context.display(),
                b.dockerfile.display(),
                b.target
                    .as_deref()
                    .map(|t| format!(" target {t}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                s,
                "    image {registry}/{} tags {}",
                b.repository,
                b.tags.join(", ")
            );
            if !b.secrets.is_empty() {
                use crate::settings::SecretSource;
                let list: Vec<String> = b
                    .secrets
                    .iter()
                    .map(|x| match &x.source {
                        SecretSource::Env(v) => format!("{} (from ${v})", x.id),
                        SecretSource::File(p) => format!("{} (file {p})", x.id),
                        SecretSource::ParameterStore(p) => {
                            format!("{} (Parameter Store {p})", x.id)
                        }
                        SecretSource::SecretsManager(p) => {
                            format!("{} (Secrets Manager {p})", x.id)
                        }
                    })
                    .collect();
                let _ = writeln!(s, "    build secrets: {}", list.join(", "));
            }
            if let Some(cache) = &b.cache {
                let _ = if self.builder.kind == BuilderKind::Buildah {
                    // buildah names its cache entries by layer, in a repository of their own.
                    writeln!(
                        s,
                        "    cache in {registry}/{} (read{})",
                        cache.repository,
                        if cache.to_tag.is_some() {
                            " and written"
                        } else {
                            " only"
                        }
                    )
                } else {
                    writeln!(
                        s,
                        "    cache from {} to {}",
                        cache
                            .from_tags
                            .iter()
                            .map(|t| format!("{}:{t}", cache.repository))
                            .collect::<Vec<_>>()
                            .join(", "),
                        cache
                            .to_tag
                            .as_deref()
                            .map(|t| format!("{}:{t}", cache.repository))
                            .unwrap_or_else(|| "(not written)".into())
                    )
                };
            }
            match &c.deploy {
                Some(TargetPlan::Ecs(d)) => {
                    let _ = writeln!(
                        s,
                        "    deploy ECS service {} in cluster {} (strategy {}, wait {}s, rollback {})",
                        d.service,
                        d.cluster,
                        d.strategy.as_str(),
                        d.watch.wait_seconds,
                        d.watch.rollback
                    );
                    let doctor: Vec<&str> = crate::settings::inputs::CHECK_IDS
                        .iter()
                        .copied()
                        .filter(|id| {
                            id.starts_with("DEP")
                                && !self.limits.ignore_checks.iter().any(|i| i == id)
                        })
                        .collect();
                    let _ = writeln!(
                        s,
                        "    deploy-time doctor before the rollout: checks {}; the target groups, percents, stop timeouts and desired count it reads live in AWS, so the plan cannot estimate the rollout",
                        if doctor.is_empty() {
                            "none (all silenced)".to_string()
                        } else {
                            doctor.join(", ")
                        }
                    );
                    if let Some(b) = &d.before_deploy {
                        let _ = writeln!(
                            s,
                            "    before the update: run `{}` once on the new revision in container {} (up to {}s)",
                            shell_words::join(&b.command),
                            b.container
                                .as_deref()
                                .unwrap_or("the one whose image is replaced"),
                            b.wait_seconds
                        );
                    }
                }
                Some(TargetPlan::Lambda(d)) => {
                    let _ = writeln!(
                        s,
                        "    deploy Lambda function {} through alias {} (wait {}s, rollback {}); platform from the function's architecture, no attestations",
                        d.function, d.alias, d.watch.wait_seconds, d.watch.rollback
                    );
                }
                Some(TargetPlan::Beanstalk(d)) => {
                    let bundle = match d.bundle {
                        Bundle::Image => "a Dockerrun.aws.json naming the image by digest",
                        Bundle::Source => "the build context, built on each instance",
                    };
                    let _ = writeln!(
                        s,
                        "    deploy Elastic Beanstalk environment {} of application {}: bundle {} ({bundle}), health Green{} (wait {}s, rollback {})",
                        d.environment,
                        d.application,
                        d.bundle.as_str(),
                        if d.allow_yellow { " or Yellow" } else { "" },
                        d.watch.wait_seconds,
                        d.watch.rollback
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "    no deploy ({})",
                        c.no_deploy_reason.as_deref().unwrap_or("build only")
                    );
                }
            }
        }
        let n = &self.notifications;
        let slack = match &n.slack {
            Some(SlackPlan::Webhook { on }) => format!("webhook (on {})", on.as_str()),
            Some(SlackPlan::Bot { channel, on }) => {
                format!("bot to {channel} (on {})", on.as_str())
            }
            None => "off".into(),
        };
        let _ = writeln!(
            s,
            "  notify: slack {slack}; github {}; summary {}",
            if n.github.is_some() { "on" } else { "off" },
            if n.summary { "on" } else { "off" }
        );
        s
    }
}
