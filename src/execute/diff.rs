//! `plan --diff`: each target read (nothing changed), what a deploy of
//! this commit would change there and what drifted since fastdeploy's last
//! deploy, printed and in the job summary; and on a pull request the same
//! against the environment its base branch deploys to, in the PR comment.
//! The references of the runtime configuration are checked as a deploy
//! checks them.

use std::collections::BTreeMap;

use crate::deploy::Image;
use crate::error::{Exit, chain_message};
use crate::outcome::RunReport;
use crate::plan::Plan;
use crate::report::notify::Notifier;
use crate::report::summary::EnvDiff;

use super::Pipeline;
use super::connect::Aws;

impl Pipeline<'_> {
    /// Prints every component's diff (a missing reference is bad input,
    /// exit 2); `Exit::Changes` with `exit_code` when anything would
    /// change or drifted.
    pub(super) async fn diff(&self, plan: &Plan, exit_code: bool) -> anyhow::Result<Exit> {
        let (env, targets) = match plan.environment() {
            Some(env) => {
                let targets = plan
                    .components
                    .iter()
                    .map(|c| (c.name.clone(), c.targets().cloned().collect()))
                    .collect();
                (env.to_string(), targets)
            }
            // A pull request: against the environment its base branch deploys to.
            None => match self.base_environment(plan) {
                Some(env) if plan.context.is_pull_request() => {
                    let targets = crate::plan::targets_in(self.settings, &env)?;
                    (env, targets)
                }
                _ => {
                    self.actions.line(&format!(
                        "plan --diff: this run deploys nowhere ({}); name an environment (`--environment`) to compare with",
                        plan.target.reason()
                    ));
                    return Ok(Exit::Success);
                }
            },
        };
        let aws = self.connect(plan).await?;
        let images = self.existing_images(&aws, plan).await?;
        let cx = self.deploy_context(&aws.clients, plan);
        let mut text = String::new();
        let mut any = false;
        for (name, targets) in targets {
            if targets.is_empty() {
                text.push_str(&format!("{name}: no deploy\n"));
            }
            let image = images.get(&name);
            for target in targets {
                let d = crate::deploy::diff::diff(&cx, &name, &target, image).await?;
                any |= d.any();
                text.push_str(&d.render(&name));
            }
        }
        crate::gha::print_data(&format!(
            "fastdeploy plan --diff: environment `{env}`\n{text}"
        ))?;
        self.actions.append_summary(&format!(
            "## fastdeploy plan --diff: `{env}`\n\n```\n{text}```\n"
        ))?;
        Ok(if any && exit_code {
            Exit::Changes
        } else {
            Exit::Success
        })
    }

    /// This commit's images where the registry already holds them (a build
    /// of the same content was made): the checks' content tag, looked up.
    async fn existing_images(
        &self,
        aws: &Aws,
        plan: &Plan,
    ) -> anyhow::Result<BTreeMap<String, Image>> {
        let names = plan.components.iter().map(|c| c.name.as_str());
        let mut report = RunReport::new(plan.environment(), names);
        let checked = self.check(plan, &mut report)?;
        let host = plan.registry.host.as_deref();
        let insecure = self.settings.registry_insecure;
        let auth = crate::image::ecr::login(&aws.ecr, host, insecure, self.actions).await?;
        let registry = crate::image::registry::Client::new(&auth, self.clock);
        let mut out = BTreeMap::new();
        for (c, ch) in plan.components.iter().zip(&checked) {
            let identity = self.identity(c, ch, &auth).await;
            let tag = crate::image::content_tag(
                &ch.context_hash,
                &c.build,
                &ch.dockerfile_bytes,
                &identity.resolved,
            );
            if let Ok(Some(digest)) = registry.manifest_digest(&c.build.repository, &tag).await {
                let image = Image::new(&auth.host, &c.build.repository, &digest, None);
                out.insert(c.name.clone(), image);
            }
        }
        Ok(out)
    }

    /// The environment the repository's default branch deploys to.
    fn base_environment(&self, plan: &Plan) -> Option<String> {
        let base = plan.context.default_branch.as_deref().unwrap_or("main");
        let config = self.settings.config.as_ref()?;
        config.environment_for_branch(base).map(str::to_string)
    }

    /// A pull request: the diff against the environment the base branch
    /// deploys to, for the PR comment. What cannot be compared is said in
    /// the comment; it never fails the run.
    pub(super) async fn pr_diff(
        &self,
        aws: &Aws,
        plan: &Plan,
        report: &RunReport,
        notifier: &mut Notifier<'_>,
    ) {
        let Some(env) = self.base_environment(plan) else {
            return;
        };
        let env = env.as_str();
        let mut d = EnvDiff {
            environment: env.to_string(),
            text: String::new(),
            any: false,
        };
        let targets = match crate::plan::targets_in(self.settings, env) {
            Ok(t) => t,
            Err(e) => {
                d.text = format!("not compared: {e}\n");
                notifier.set_diff(d);
                return;
            }
        };
        let cx = self.deploy_context(&aws.clients, plan);
        let each = targets
            .into_iter()
            .flat_map(|(name, targets)| targets.into_iter().map(move |t| (name.clone(), t)));
        for (name, target) in each {
            let built = report.components.iter().find(|c| c.name == name);
            let image = built.and_then(|c| {
                let b = &c.build;
                Image::from_uri(
                    &format!("{}@{}", b.image.as_deref()?, b.digest.as_deref()?),
                    None,
                )
            });
            match crate::deploy::diff::diff(&cx, &name, &target, image.as_ref()).await {
                Ok(t) => {
                    d.any |= t.any();
                    d.text.push_str(&t.render(&name));
                }
                Err(e) => {
                    d.any = true;
                    d.text
                        .push_str(&format!("{name}: not compared: {}\n", chain_message(&e)));
                }
            }
        }
        notifier.set_diff(d);
    }
}
