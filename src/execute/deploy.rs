//! The deploy phase: every built component with a target deployed
//! concurrently, each judged on its own by the deploy driver.

use std::time::Instant;

use futures::StreamExt;

use crate::deploy::{Change, Clients, Context, DeployOutcome, Image};
use crate::image::registry::RegistryAuth;
use crate::outcome::{RunReport, RunResult};
use crate::plan::{ComponentPlan, Plan};
use crate::report::notify::{PhaseEnd, PhaseLog};

use super::Pipeline;
use super::connect::Aws;

impl Pipeline<'_> {
    /// The deploy context every target gets.
    pub(super) fn deploy_context<'a>(
        &'a self,
        clients: &'a Clients,
        plan: &'a Plan,
    ) -> Context<'a> {
        Context {
            clients,
            cancel: &self.cancel,
            actions: self.actions,
            clock: self.clock,
            commit: &plan.context.commit.sha,
            run_key: &self.run_key,
            region: plan.aws_region.as_deref(),
            ignore_checks: &plan.limits.ignore_checks,
        }
    }

    /// One component's deploy in its log group (alone), or its closing line
    /// among the others'.
    async fn deploy_logged(
        &self,
        cx: &Context<'_>,
        c: &ComponentPlan,
        change: &Change,
        parallel: bool,
    ) -> Option<DeployOutcome> {
        let group =
            (!parallel).then(|| PhaseLog::open(self.actions, self.style, "deploy", Some(&c.name)));
        let started = Instant::now();
        let outcome = crate::deploy::deploy(cx, c, change).await;
        let end = match &outcome {
            Some(o) if o.failure.is_some() => {
                PhaseEnd::Failed(o.failure.clone().unwrap_or_default())
            }
            Some(o) if o.report.unchanged => PhaseEnd::Skipped("already serving this image".into()),
            _ => PhaseEnd::Done,
        };
        match group {
            Some(g) => {
                g.close(end);
            }
            None => self.actions.line(&crate::report::notify::closing_line(
                self.style,
                "deploy",
                Some(&c.name),
                &end,
                started.elapsed(),
            )),
        }
        outcome
    }

    /// What `deploy` deploys: the image each component with a target built.
    pub(super) fn built(
        &self,
        auth: &RegistryAuth,
        plan: &Plan,
        report: &RunReport,
    ) -> Vec<(usize, Change)> {
        plan.components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.deploy.is_some())
            .filter_map(|(i, c)| {
                let rep = &report.components[i];
                if rep.result != RunResult::Built || self.cancel.is_cancelled() {
                    return None;
                }
                let digest = rep.build.digest.as_deref()?;
                let bytes = rep.build.image_bytes;
                let image = Image::new(&auth.host, &c.build.repository, digest, bytes);
                Some((i, Change::Image(image)))
            })
            .collect()
    }

    /// Puts each component's change in service, concurrently; a component
    /// built but left undeployed (the run was cancelled between the phases)
    /// fails.
    pub(super) async fn deploy(
        &self,
        aws: &Aws,
        registry: Option<crate::image::registry::Client>,
        plan: &Plan,
        to_deploy: Vec<(usize, Change)>,
        report: &mut RunReport,
    ) {
        let started = Instant::now();
        if !to_deploy.is_empty() {
            let clients = Clients {
                registry,
                ..aws.clients.clone()
            };
            let cx = self.deploy_context(&clients, plan);
            // Concurrent deploys share one log group (their lines carry the
            // target's name; groups do not nest); a lone deploy gets its own.
            let parallel = to_deploy.len() > 1 && plan.max_parallel > 1;
            let all = parallel.then(|| PhaseLog::open(self.actions, self.style, "deploy", None));
            let outcomes = futures::stream::iter(to_deploy)
                .map(|(i, change)| {
                    let (cx, c) = (&cx, &plan.components[i]);
                    async move { (i, self.deploy_logged(cx, c, &change, parallel).await) }
                })
                .buffer_unordered(plan.max_parallel.max(1))
                .collect::<Vec<_>>()
                .await;
            if let Some(g) = all {
                let failed = outcomes
                    .iter()
                    .any(|(_, o)| o.as_ref().is_some_and(|o| o.failure.is_some()));
                g.close(if failed {
                    PhaseEnd::Failed("see the components above".into())
                } else {
                    PhaseEnd::Done
                });
            }
            for (i, outcome) in outcomes {
                let (rep, Some(outcome)) = (&mut report.components[i], outcome) else {
                    continue;
                };
                rep.result = outcome.result;
                rep.failure = outcome.failure.or(rep.failure.take());
                rep.deploy = Some(outcome.report);
                rep.also = outcome.also;
            }
            report.phases.deploy = Some(started.elapsed().as_secs_f64());
        }
        for (c, rep) in plan.components.iter().zip(report.components.iter_mut()) {
            if rep.result == RunResult::Built && c.deploy.is_some() {
                rep.result = RunResult::Failure;
                rep.failure
                    .get_or_insert_with(|| "cancelled before the deploy started".into());
            }
        }
    }
}
