//! `plan --diff`: each target read (nothing changed), what a deploy of
//! this commit would change there and what drifted since fastdeploy's last
//! deploy, printed and in the job summary; and on a pull request the same
//! against the environment its base branch deploys to, in the PR comment.
//! The references of the runtime configuration are checked as a deploy
//! checks them.

use crate::error::{Exit, chain_message};
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
        let Some(env) = plan.environment() else {
            self.actions.line(&format!(
                "plan --diff: this run deploys nowhere ({}); name an environment (`--environment`) to compare with",
                plan.target.reason()
            ));
            return Ok(Exit::Success);
        };
        let aws = self.connect(plan).await?;
        let cx = self.deploy_context(&aws.clients, plan);
        let mut text = String::new();
        let mut any = false;
        for c in &plan.components {
            let Some(target) = &c.deploy else {
                let why = c.no_deploy_reason.as_deref().unwrap_or("build only");
                text.push_str(&format!("{}: no deploy ({why})\n", c.name));
                continue;
            };
            let d = crate::deploy::diff::diff(&cx, &c.name, target).await?;
            any |= d.any();
            text.push_str(&d.render(&c.name));
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

    /// A pull request: the diff against the environment the base branch
    /// deploys to, for the PR comment. What cannot be compared is said in
    /// the comment; it never fails the run.
    pub(super) async fn pr_diff(&self, aws: &Aws, plan: &Plan, notifier: &mut Notifier<'_>) {
        let base = plan.context.default_branch.as_deref().unwrap_or("main");
        let config = self.settings.config.as_ref();
        let Some(env) = config.and_then(|c| c.environment_for_branch(base)) else {
            return;
        };
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
        for (name, target) in targets {
            let Some(target) = target else { continue };
            match crate::deploy::diff::diff(&cx, &name, &target).await {
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
