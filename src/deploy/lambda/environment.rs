//! The function's environment variables (`env` of the runtime
//! configuration): set on `$LATEST` with UpdateFunctionConfiguration before
//! the code, so the version published next holds both. Names the config
//! does not mention are kept. Lambda applies a configuration update as it
//! does a code update (`LastUpdateStatus` InProgress, then Successful or
//! Failed), and refuses a second update while one runs.

use std::collections::HashMap;

use aws_sdk_lambda::types::{Environment, FunctionConfiguration, LastUpdateStatus};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Function;
use super::watch::configuration;
use crate::aws::Explained;
use crate::deploy::Context;
use crate::outcome::DeployReport;
use crate::wait::{Poll, Tempo, Waiter};

/// The variables `c` should hold after the config is applied, when they
/// differ from what it holds.
pub fn wanted(f: &Function<'_>, c: &FunctionConfiguration) -> Option<HashMap<String, String>> {
    if f.plan.config.env.is_empty() {
        return None;
    }
    let current = c
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let mut merged = current.clone();
    for e in &f.plan.config.env {
        merged.insert(e.name.clone(), e.value.clone());
    }
    (merged != current).then_some(merged)
}

/// Sets the config's variables on `$LATEST` (guarded by its RevisionId;
/// an update started meanwhile is waited out and the variables read again)
/// and waits for Lambda to apply them. `Err(reason)` when Lambda failed it.
pub async fn configure(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    mut latest: FunctionConfiguration,
    report: &mut DeployReport,
) -> anyhow::Result<Result<FunctionConfiguration, String>> {
    loop {
        let Some(vars) = wanted(f, &latest) else {
            return Ok(Ok(latest));
        };
        let names = changed_names(&latest, &vars);
        let sent = cx
            .clients
            .lambda
            .update_function_configuration()
            .function_name(f.name())
            .environment(Environment::builder().set_variables(Some(vars)).build())
            .set_revision_id(latest.revision_id().map(str::to_string))
            .send()
            .await;
        match sent {
            Ok(_) => {
                f.say(cx, &format!("UpdateFunctionConfiguration accepted: environment variables {names} (not applied yet)"));
                f.latest_changed = true;
                break;
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some("ResourceConflictException" | "PreconditionFailedException")
                ) =>
            {
                w.pause("waiting for another update to finish").await?;
                latest = w
                    .until("waiting for another update to finish", async || {
                        f.idle(cx, report).await
                    })
                    .await?;
            }
            Err(e) => {
                let name = f.name().to_string();
                return Err(e).explained("lambda:UpdateFunctionConfiguration", || {
                    format!("Lambda function {name}")
                });
            }
        }
    }
    let doing = "waiting for Lambda to apply the environment variables";
    w.until(doing, async || configured(f, cx, report).await)
        .await
}

/// One look: done when Lambda applied the configuration (`Successful`) or
/// failed it (`Failed`, with its reason and code).
async fn configured(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    report: &mut DeployReport,
) -> anyhow::Result<Poll<Result<FunctionConfiguration, String>>> {
    let c = configuration(f, cx, None).await?;
    f.note_status(cx, "configuration update", &c, report);
    Ok(Poll::Ready(match c.last_update_status() {
        Some(LastUpdateStatus::Successful) => Ok(c),
        Some(LastUpdateStatus::Failed) => {
            let code = c
                .last_update_status_reason_code()
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| "no code".into());
            let reason = c.last_update_status_reason().unwrap_or("no reason given");
            Err(format!(
                "the environment variables were not applied: {reason} ({code})"
            ))
        }
        _ => return Ok(Poll::Pending(Tempo::Steady)),
    }))
}

/// The names the update sets or changes, for the log line.
fn changed_names(c: &FunctionConfiguration, vars: &HashMap<String, String>) -> String {
    let current = c.environment().and_then(|e| e.variables());
    let mut names: Vec<&str> = vars
        .iter()
        .filter(|(k, v)| current.and_then(|m| m.get(*k)) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    names.sort_unstable();
    names.join(", ")
}

impl Function<'_> {
    /// `plan --diff`: the variables the alias's version serves against what
    /// the next deploy publishes.
    pub async fn diff(
        &self,
        cx: &Context<'_>,
        image: Option<&crate::deploy::Image>,
    ) -> anyhow::Result<crate::deploy::diff::TargetDiff> {
        use crate::deploy::diff::{TargetDiff, variables};
        let mut d = TargetDiff::new(format!(
            "Lambda function {} (alias {})",
            self.name(),
            self.plan.alias
        ));
        let serving = super::watch::alias(self, cx).await?;
        let qualifier = serving.as_ref().map(|a| a.version.clone());
        let c = configuration(self, cx, qualifier.as_deref()).await?;
        let sorted = |m: &HashMap<String, String>| -> std::collections::BTreeMap<_, _> {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let now = c.environment().and_then(|e| e.variables());
        let now = now.map(sorted).unwrap_or_default();
        let next = wanted(self, &c)
            .map(|m| sorted(&m))
            .unwrap_or_else(|| now.clone());
        d.changes = variables("env", &now, &next);
        if let Some(new) = image.filter(|i| c.code_sha256() != Some(i.digest_hex())) {
            let old = c
                .code_sha256()
                .map(|s| format!("sha256:{s}"))
                .unwrap_or_else(|| "none".into());
            d.changes.insert(0, format!("image: {old} → {}", new.uri));
        }
        d.notes.push(match qualifier {
            Some(v) => format!("alias {} serves version {v}; a deploy publishes this commit's build as a new version", self.plan.alias),
            None => format!("alias {} does not exist yet: the first deploy creates it", self.plan.alias),
        });
        Ok(d)
    }
}
