//! Environment properties (`env` and `secrets` of the runtime
//! configuration): set with a configuration update (UpdateEnvironment with
//! option settings) before the version is deployed, since EB refuses both
//! in one request (InvalidParameterCombination). Values go in
//! `aws:elasticbeanstalk:application:environment`; secrets, as the ARN of
//! the parameter or secret, in `aws:elasticbeanstalk:application:environmentsecrets`
//! (EB fetches them on the instances, on platform versions from March 2025).
//! Settings applied through the API take precedence over `.ebextensions`.
//! Names the config does not mention are kept; a name moved between a value
//! and a secret is removed from the other namespace. A configuration update
//! EB fails, EB reverts itself.

use std::collections::BTreeMap;

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::types::{
    ConfigurationDeploymentStatus, ConfigurationOptionSetting, OptionSpecification,
};

use super::Environment;
use super::watch::{Followed, Following};
use crate::aws::Explained;
use crate::deploy::Context;
use crate::deploy::diff::variables;
use crate::outcome::DeployReport;
use crate::plan::BeanstalkPlan;
use crate::wait::Waiter;

pub const ENV_NAMESPACE: &str = "aws:elasticbeanstalk:application:environment";
pub const SECRETS_NAMESPACE: &str = "aws:elasticbeanstalk:application:environmentsecrets";

/// (namespace, name) → value.
type Options = BTreeMap<(String, String), String>;

/// What the configuration update sets and removes.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    pub set: Options,
    pub remove: Vec<(String, String)>,
}

/// The environment's deployed properties (both namespaces).
async fn current(plan: &BeanstalkPlan, cx: &Context<'_>) -> anyhow::Result<Options> {
    let (app, env) = (plan.application.clone(), plan.environment.clone());
    let out = cx
        .clients
        .beanstalk
        .describe_configuration_settings()
        .application_name(&app)
        .environment_name(&env)
        .send()
        .await
        .explained("elasticbeanstalk:DescribeConfigurationSettings", || {
            format!("Elastic Beanstalk environment {env}")
        })?;
    let deployed = out.configuration_settings().iter().find(|c| {
        c.deployment_status()
            .is_none_or(|s| s == &ConfigurationDeploymentStatus::Deployed)
    });
    Ok(deployed
        .map(|c| c.option_settings())
        .unwrap_or_default()
        .iter()
        .filter_map(|o| {
            let ns = o.namespace()?;
            let name = o.option_name()?;
            let ours = ns == ENV_NAMESPACE || ns == SECRETS_NAMESPACE;
            let value = o.value().unwrap_or_default().to_string();
            ours.then(|| ((ns.to_string(), name.to_string()), value))
        })
        .collect())
}

/// What the config asks of `now`; `None` when it holds it already.
pub fn wanted(config: &crate::settings::runtime::RuntimeConfig, now: &Options) -> Option<Change> {
    let mut change = Change::default();
    let mut want = |ns: &str, other: &str, name: &str, value: &str| {
        let key = (ns.to_string(), name.to_string());
        if now.get(&key).map(String::as_str) != Some(value) {
            change.set.insert(key, value.to_string());
        }
        let theirs = (other.to_string(), name.to_string());
        if now.contains_key(&theirs) {
            change.remove.push(theirs);
        }
    };
    for v in &config.env {
        want(ENV_NAMESPACE, SECRETS_NAMESPACE, &v.name, &v.value);
    }
    for s in &config.secrets {
        let arn = s.value_from.as_deref().unwrap_or_default();
        want(SECRETS_NAMESPACE, ENV_NAMESPACE, &s.name, arn);
    }
    (change != Change::default()).then_some(change)
}

/// Sets the config's properties on the environment when they differ, and
/// follows the configuration update to its end. `Err(reason)` when EB
/// failed it (and reverted it).
pub async fn apply(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    report: &mut DeployReport,
) -> anyhow::Result<Result<(), String>> {
    if e.plan.config.is_empty() {
        return Ok(Ok(()));
    }
    let now = current(&e.plan, cx).await?;
    let Some(change) = wanted(&e.plan.config, &now) else {
        e.say(cx, "environment properties already as configured");
        return Ok(Ok(()));
    };
    let names = names(&change);
    e.properties_before = Some(undo(&change, &now));
    Ok(
        match configure(e, cx, w, &change, "setting environment properties", report).await? {
            Followed::Completed(_) => {
                e.say(cx, &format!("environment properties set: {names}"));
                Ok(())
            }
            Followed::Failed(why) => Err(format!(
                "EB did not set the environment properties ({names}) and kept the previous ones: {why}"
            )),
            Followed::Ended(_) => Err(format!(
                "EB ended the update of the environment properties ({names}) without saying it completed"
            )),
        },
    )
}

/// The names a change sets or removes, sorted, in words.
fn names(change: &Change) -> String {
    let names: std::collections::BTreeSet<&str> = change
        .set
        .keys()
        .chain(change.remove.iter())
        .map(|(_, n)| n.as_str())
        .collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// A configuration update: once the environment is Ready, `change` is sent
/// and its request's events followed, on the version the environment runs.
async fn configure(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    change: &Change,
    doing: &str,
    report: &mut DeployReport,
) -> anyhow::Result<Followed> {
    let waiting = format!("(another update is running); waiting for Ready before {doing}");
    let env = w
        .until("waiting for the environment to be Ready", async || {
            e.ready(cx, &waiting).await
        })
        .await?;
    let rid = send(e, cx, change).await?;
    e.say(
        cx,
        &format!("UpdateEnvironment with environment properties {} accepted (request {rid}); following its events", names(change)),
    );
    let label = env.version_label().unwrap_or_default().to_string();
    let mut seen = Following::default();
    w.until(&format!("following the update {doing}"), async || {
        e.follow(cx, &rid, &label, &mut seen, report).await
    })
    .await
}

/// The change that puts `now` back after `change`: values set again,
/// names that were not there removed.
fn undo(change: &Change, now: &Options) -> Change {
    let mut back = Change::default();
    for key in change.set.keys().chain(change.remove.iter()) {
        match now.get(key) {
            Some(v) => {
                back.set.insert(key.clone(), v.clone());
            }
            None => back.remove.push(key.clone()),
        }
    }
    back
}

/// Putting back what served: the properties this deploy changed set back
/// as they were (a configuration update, followed within the settle
/// budget). Says what it did, or why not.
pub async fn put_back(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    report: &mut DeployReport,
) -> Option<String> {
    let back = e.properties_before.take()?;
    let doing = "setting the environment properties back";
    Some(match configure(e, cx, w, &back, doing, report).await {
        Ok(Followed::Completed(_)) => "environment properties set back as they were".to_string(),
        Ok(Followed::Failed(why)) => format!("environment properties not set back: {why}"),
        Ok(Followed::Ended(_)) => {
            "environment properties set back, but EB did not say the update completed".to_string()
        }
        Err(err) => format!(
            "environment properties not known to be set back: {}",
            crate::error::chain_message(&err)
        ),
    })
}

/// `plan --diff`: the properties a deploy would set, against the deployed
/// ones, as [`variables`] says a change of variables.
pub async fn diff(plan: &BeanstalkPlan, cx: &Context<'_>) -> anyhow::Result<Vec<String>> {
    let now = current(plan, cx).await?;
    let Some(change) = wanted(&plan.config, &now) else {
        return Ok(Vec::new());
    };
    let mut next = now.clone();
    for key in &change.remove {
        next.remove(key);
    }
    next.extend(change.set);
    let of = |options: &Options, ns: &str| -> BTreeMap<String, String> {
        options
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, name), v)| (name.clone(), v.clone()))
            .collect()
    };
    let mut lines = variables("env", &of(&now, ENV_NAMESPACE), &of(&next, ENV_NAMESPACE));
    lines.extend(variables(
        "secret",
        &of(&now, SECRETS_NAMESPACE),
        &of(&next, SECRETS_NAMESPACE),
    ));
    Ok(lines)
}

async fn send(e: &Environment<'_>, cx: &Context<'_>, change: &Change) -> anyhow::Result<String> {
    let settings = change
        .set
        .iter()
        .map(|((ns, name), value)| {
            ConfigurationOptionSetting::builder()
                .namespace(ns)
                .option_name(name)
                .value(value)
                .build()
        })
        .collect();
    let remove = change
        .remove
        .iter()
        .map(|(ns, name)| {
            OptionSpecification::builder()
                .namespace(ns)
                .option_name(name)
                .build()
        })
        .collect();
    let env = e.env().to_string();
    let out = cx
        .clients
        .beanstalk
        .update_environment()
        .application_name(e.app())
        .environment_name(&env)
        .set_option_settings(Some(settings))
        .set_options_to_remove(Some(remove))
        .send()
        .await
        .explained("elasticbeanstalk:UpdateEnvironment", || {
            format!("Elastic Beanstalk environment {env}")
        })?;
    Ok(out.request_id().unwrap_or_default().to_string())
}
