//! `rollback` and `promote`: what each component's target gets, found
//! read-only before anything changes — the revision that served before its
//! most recent deploy, or the image the source environment serves now.

use crate::deploy::{Change, Clients};
use crate::image::registry::RegistryAuth;
use crate::outcome::{RunReport, RunResult};
use crate::plan::{ComponentPlan, Plan};
use crate::report::notify::{PhaseEnd, PhaseLog};
use crate::settings::Motion;

use super::Pipeline;
use super::connect::Aws;

impl Pipeline<'_> {
    /// The run's first line: what it does, and to what.
    pub(super) fn announce(&self, plan: &Plan) {
        let env = plan.environment().unwrap_or_default();
        let line = match &plan.motion {
            Motion::Deploy => return,
            Motion::Rollback { to: None } => format!(
                "fastdeploy rollback: environment `{env}` gets back, per component, what served before its most recent deploy; nothing is built"
            ),
            Motion::Rollback { to: Some(to) } => {
                format!("fastdeploy rollback: environment `{env}` gets back {to}; nothing is built")
            }
            Motion::Promote { from } => format!(
                "fastdeploy promote: environment `{env}` gets, per component, the image `{from}` serves now, by digest; nothing is built"
            ),
        };
        self.actions.line(&line);
    }

    /// A promote to Lambda reads the image's manifest before the function
    /// is touched (one platform, its architecture): the registry login it
    /// needs, and nothing else of the registry phase.
    pub(super) async fn login_for_motion(
        &self,
        aws: &Aws,
        plan: &Plan,
    ) -> anyhow::Result<Option<RegistryAuth>> {
        let lambda = plan.components.iter().any(ComponentPlan::deploys_to_lambda);
        if !matches!(plan.motion, Motion::Promote { .. }) || !lambda {
            return Ok(None);
        }
        let host = plan.registry.host.as_deref();
        let insecure = self.settings.registry_insecure;
        let auth = crate::image::ecr::login(&aws.ecr, host, insecure, self.actions).await?;
        Ok(Some(auth))
    }

    /// Each component's change, found read-only; what is not there is bad
    /// input (exit 2) and nothing has changed yet.
    pub(super) async fn resolve(
        &self,
        aws: &Aws,
        auth: Option<&RegistryAuth>,
        plan: &Plan,
        report: &mut RunReport,
    ) -> anyhow::Result<Vec<(usize, Change)>> {
        let name = match plan.motion {
            Motion::Promote { .. } => "promote",
            _ => "rollback",
        };
        let phase = PhaseLog::open(self.actions, self.style, name, None);
        let clients = Clients {
            registry: auth.map(|a| crate::image::registry::Client::new(a, self.clock)),
            ..aws.clients.clone()
        };
        let cx = self.deploy_context(&clients, plan);
        let mut changes = Vec::new();
        for (i, c) in plan.components.iter().enumerate() {
            let found = match (&plan.motion, &c.promote_from) {
                (Motion::Promote { from }, Some(source)) => {
                    crate::deploy::serving_image(&cx, c, source)
                        .await
                        .map(|image| {
                            let line =
                                format!("[{}] {} serves {}: promoting it", c.name, from, image.uri);
                            (Change::Image(image), line)
                        })
                }
                (Motion::Rollback { to }, _) => crate::deploy::earlier(&cx, c, to.as_deref())
                    .await
                    .map(|mut revs| {
                        let lines: Vec<String> = revs
                            .iter()
                            .map(|rev| format!("[{}] puts back {} ({})", c.name, rev.id, rev.found))
                            .collect();
                        let change = match revs.len() {
                            1 => Change::Revision(revs.remove(0)),
                            _ => Change::Revisions(revs),
                        };
                        (change, lines.join("\n"))
                    }),
                _ => continue,
            };
            let (change, line) = match found {
                Ok(found) => found,
                Err(e) => {
                    phase.close(PhaseEnd::Failed(c.name.clone()));
                    return Err(e.context(format!("{name} of component `{}`", c.name)));
                }
            };
            self.actions.line(&line);
            let rep = &mut report.components[i];
            if let Some(image) = change.image() {
                let name = image.uri.split_once('@').map(|(n, _)| n);
                rep.build.image = Some(name.unwrap_or(&image.uri).to_string());
                rep.build.digest = Some(image.digest.clone());
            }
            rep.result = RunResult::Built;
            changes.push((i, change));
        }
        phase.close(PhaseEnd::Done);
        Ok(changes)
    }
}
