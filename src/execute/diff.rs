//! `plan --diff`: each target read (nothing changed), what a deploy of
//! this commit would change there and what drifted since fastdeploy's last
//! deploy, printed and in the job summary. The references of the runtime
//! configuration are checked as a deploy checks them (a missing one is bad
//! input, exit 2).

use crate::error::Exit;
use crate::plan::Plan;

use super::Pipeline;

impl Pipeline<'_> {
    /// Prints every component's diff; `Exit::Changes` with `exit_code` when
    /// anything would change or drifted.
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
            let config = crate::deploy::references::resolve(&cx, &c.name, target.config()).await?;
            let mut c = c.clone();
            if let Some(t) = c.deploy.as_mut() {
                *t.config_mut() = config;
            }
            if let Some(d) = crate::deploy::diff::diff(&cx, &c).await? {
                any |= d.any();
                text.push_str(&d.render(&c.name));
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
}
