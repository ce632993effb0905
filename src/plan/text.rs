//! `fastdeploy plan` in words: what the run will build, where it deploys,
//! and why, as people read it.

use std::fmt::Write;

use super::*;
use crate::settings::SecretSource;
use crate::settings::runtime::RuntimeConfig;

impl Plan {
    /// Human-readable rendering for `fastdeploy plan`.
    pub fn render_text(&self) -> String {
        let mut s = self.header();
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
            let _ = writeln!(s, "  component {}:", c.name);
            if self.motion.builds() {
                s.push_str(&self.build_text(&c.build, &registry));
            }
            if let Some(source) = &c.promote_from {
                let _ = writeln!(s, "    image: what {} serves now", source.describe());
            }
            s.push_str(&self.deploy_text(c));
        }
        let n = &self.notifications;
        let slack = match &n.slack {
            Some(SlackPlan::Webhook { on }) => format!("webhook (on {})", on.as_str()),
            Some(SlackPlan::Bot { channel, on }) => {
                format!("bot to {channel} (on {})", on.as_str())
            }
            None => "off".into(),
        };
        let on = |b: bool| if b { "on" } else { "off" };
        let _ = writeln!(
            s,
            "  notify: slack {slack}; github {}; summary {}",
            on(n.github.is_some()),
            on(n.summary)
        );
        s
    }

    /// The event, what the run will do with it, and the builder.
    fn header(&self) -> String {
        let mut s = String::new();
        let ctx = &self.context;
        let at = ctx.git_ref.as_deref().unwrap_or("-");
        let _ = writeln!(
            s,
            "fastdeploy plan for {} {at} ({})",
            ctx.event,
            ctx.short_sha()
        );
        let _ = match &self.target {
            Target::Deploy {
                environment,
                reason,
            } => {
                writeln!(s, "  deploy to environment `{environment}` ({reason})")
            }
            Target::BuildOnly { push, reason } => {
                let push = if *push { " and push" } else { ", no push" };
                writeln!(s, "  build only{push} ({reason})")
            }
        };
        let _ = match &self.motion {
            Motion::Deploy => Ok(()),
            Motion::Rollback { to: None } => writeln!(
                s,
                "  rollback: each component's target gets back what served before its most recent deploy; nothing is built"
            ),
            Motion::Rollback { to: Some(to) } => {
                writeln!(s, "  rollback to {to}; nothing is built")
            }
            Motion::Promote { from } => writeln!(
                s,
                "  promote from `{from}`: each component gets the image its target there serves now, by digest; nothing is built"
            ),
        };
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
                .map_or_else(|| "the current builder".into(), |n| format!("`{n}`"));
            let created = if b.create {
                ", created unless it exists"
            } else {
                ""
            };
            let _ = writeln!(s, "  buildx builder: {name}{created} ({})", b.reason);
        }
        s
    }

    /// A component's build: context, image and tags, secrets, cache.
    fn build_text(&self, b: &BuildPlan, registry: &str) -> String {
        let mut s = String::new();
        let target = b
            .target
            .as_deref()
            .map(|t| format!(" target {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    context {} dockerfile {}{target}",
            b.context.display(),
            b.dockerfile.display()
        );
        let _ = writeln!(
            s,
            "    image {registry}/{} tags {}",
            b.repository,
            b.tags.join(", ")
        );
        if !b.secrets.is_empty() {
            let list: Vec<String> = b
                .secrets
                .iter()
                .map(|x| match &x.source {
                    SecretSource::Env(v) => format!("{} (from ${v})", x.id),
                    SecretSource::File(p) => format!("{} (file {p})", x.id),
                    SecretSource::ParameterStore(p) => format!("{} (Parameter Store {p})", x.id),
                    SecretSource::SecretsManager(p) => format!("{} (Secrets Manager {p})", x.id),
                })
                .collect();
            let _ = writeln!(s, "    build secrets: {}", list.join(", "));
        }
        let Some(cache) = &b.cache else { return s };
        let at = |t: &str| format!("{}:{t}", cache.repository);
        let _ = if self.builder.kind == BuilderKind::Buildah {
            // buildah names its cache entries by layer, in a repository of their own.
            let written = if cache.to_tag.is_some() {
                " and written"
            } else {
                " only"
            };
            writeln!(
                s,
                "    cache in {registry}/{} (read{written})",
                cache.repository
            )
        } else {
            let from: Vec<String> = cache.from_tags.iter().map(|t| at(t)).collect();
            let to = cache
                .to_tag
                .as_deref()
                .map(at)
                .unwrap_or_else(|| "(not written)".into());
            writeln!(s, "    cache from {} to {to}", from.join(", "))
        };
        s
    }

    /// A component's deploy target, or why it has none.
    fn deploy_text(&self, c: &ComponentPlan) -> String {
        let mut s = self.target_text(c);
        if let Some(config) = c.deploy.as_ref().map(TargetPlan::config) {
            s.push_str(&config_text(config));
        }
        s
    }

    fn target_text(&self, c: &ComponentPlan) -> String {
        let Some(first) = &c.deploy else {
            return self.one_target_text(c, None);
        };
        let mut s = String::new();
        for (i, t) in std::iter::once(first).chain(&c.also).enumerate() {
            s.push_str(&self.one_target_text(c, Some(t)));
            let trigger = matches!(t, TargetPlan::Rule(_) | TargetPlan::Schedule(_));
            if !c.order.is_empty() && !trigger {
                let _ = writeln!(s, "      in order group {}", c.order_of(i));
            }
        }
        if !c.also.is_empty() {
            s.push_str(
                "    one verdict for every target: if one fails, those that moved are put back\n",
            );
        }
        if let Some(smoke) = &first.watch().smoke {
            let at = smoke
                .url(None)
                .unwrap_or_else(|| format!("the environment's own URL + {}", smoke.path));
            let _ = writeln!(
                s,
                "    after the rollout: GET {at} until it answers 2xx or 3xx (up to {} s), else roll back",
                smoke.seconds
            );
        }
        if let Some(alarms) = &first.watch().alarms {
            let bake = match alarms.bake_seconds / 60 {
                0 => String::new(),
                m => format!(" and for {m} min after it"),
            };
            let _ = writeln!(
                s,
                "    watch alarms {} during the rollout{bake}: one in ALARM rolls it back",
                alarms.describe()
            );
        }
        s
    }

    fn one_target_text(&self, c: &ComponentPlan, target: Option<&TargetPlan>) -> String {
        let mut s = String::new();
        let _ = match target {
            Some(TargetPlan::Ecs(d)) => return self.ecs_text(d),
            Some(t @ (TargetPlan::Rule(d) | TargetPlan::Schedule(d))) => writeln!(
                s,
                "    move {}: its ECS target runs this run's revision of its task definition family{}",
                t.describe(),
                match d.containers.as_slice() {
                    [] => String::new(),
                    names => format!(" (containers {})", names.join(", ")),
                }
            ),
            Some(TargetPlan::Lambda(d)) => {
                let _ = writeln!(
                    s,
                    "    deploy Lambda function {} through alias {} (wait {}s, rollback {}); platform from the function's architecture, no attestations",
                    d.function, d.alias, d.watch.wait_seconds, d.watch.rollback
                );
                if let Some(e) = &d.smoke_test_event {
                    let _ = writeln!(
                        s,
                        "    before the alias moves: invoke the new version with {e} (a function error or timeout fails the deploy)"
                    );
                }
                match d.shift {
                    Some(shift) => writeln!(
                        s,
                        "    move the alias gradually: {}% of invocations to the new version for {} min, watching its Errors, then all",
                        shift.percent,
                        shift.seconds / 60
                    ),
                    None => Ok(()),
                }
            }
            Some(TargetPlan::Beanstalk(d)) => {
                let bundle = match d.bundle {
                    Bundle::Image => "a Dockerrun.aws.json naming the image by digest",
                    Bundle::Source => "the build context, built on each instance",
                };
                let yellow = if d.allow_yellow { " or Yellow" } else { "" };
                if let Some(swap) = &d.swap {
                    let _ = writeln!(
                        s,
                        "    swap: deploy the one of {} that does not hold CNAME `{}`, then swap the CNAMEs (the other keeps running)",
                        swap.pair.join(" and "),
                        swap.cname
                    );
                }
                writeln!(
                    s,
                    "    deploy Elastic Beanstalk environment {} of application {}: bundle {} ({bundle}), health Green{yellow} (wait {}s, rollback {})",
                    d.environment,
                    d.application,
                    d.bundle.as_str(),
                    d.watch.wait_seconds,
                    d.watch.rollback
                )
            }
            None => writeln!(
                s,
                "    no deploy ({})",
                c.no_deploy_reason.as_deref().unwrap_or("build only")
            ),
        };
        s
    }

    /// An ECS target: the service, the doctor's checks, the one-off task.
    fn ecs_text(&self, d: &EcsPlan) -> String {
        let mut s = String::new();
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
                id.starts_with("DEP") && !self.limits.ignore_checks.iter().any(|i| i == id)
            })
            .collect();
        let checks = if doctor.is_empty() {
            "none (all silenced)".to_string()
        } else {
            doctor.join(", ")
        };
        let _ = writeln!(
            s,
            "    deploy-time doctor before the rollout: checks {checks}; the target groups, percents, stop timeouts and desired count it reads live in AWS, so the plan cannot estimate the rollout"
        );
        if let Some(b) = &d.before_deploy {
            let container = b
                .container
                .as_deref()
                .unwrap_or("the one whose image is replaced");
            let _ = writeln!(
                s,
                "    before the update: run `{}` once on the new revision in container {container} (up to {}s)",
                shell_words::join(&b.command),
                b.wait_seconds
            );
        }
        s
    }
}

/// `env` and `secrets`: each name, what it gets, and where it was written.
fn config_text(config: &RuntimeConfig) -> String {
    let mut s = String::new();
    if config.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "    runtime configuration (set on the target; names not listed keep their current values):"
    );
    for e in &config.env {
        let _ = writeln!(s, "      env {} = {} from {}", e.name, e.shown, e.written);
    }
    for x in &config.secrets {
        let _ = writeln!(
            s,
            "      secret {} from {} ({}; checked before building)",
            x.name,
            x.reference.spelled(),
            x.written
        );
    }
    s
}
