//! Putting back what served: abort an update that still runs (not EB's own
//! revert of a failed one), wait for the environment to settle, and when EB
//! left our version on instances or the environment is on another label,
//! deploy the previous label again. "Rolled back" only when every instance
//! runs the previous label: EB sets the label when an update starts.

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::types::{EnvironmentStatus, InstancesHealthAttribute};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Environment;
use super::watch::{Followed, Following, describe};
use crate::deploy::{Context, Deploy, PutBack};
use crate::error::chain_message;
use crate::outcome::DeployReport;
use crate::wait::Waiter;

/// Where putting back left the environment.
struct Settled {
    /// The environment's version label, as last seen.
    serving: Option<String>,
    note: Option<String>,
    /// Every instance is known to run `serving` and EB is done.
    settled: bool,
}

impl Settled {
    fn unsettled(serving: Option<String>, note: impl Into<String>) -> Settled {
        Settled {
            serving,
            note: Some(note.into()),
            settled: false,
        }
    }
}

/// Aborts our update when it still runs (and `act`), then makes sure of
/// what serves, deploying the previous label again when `act`.
pub async fn put_back(e: &mut Environment<'_>, d: &mut Deploy<'_>, act: bool) -> PutBack {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    if act && !e.failed_by_eb {
        abort(e, cx).await;
    }
    let back = back_to_previous(e, cx, w, act, report).await;
    report.serving_revision = back.serving.clone();
    let mut notes = Vec::new();
    if let (Some(l), false) = (&back.serving, back.settled) {
        notes.push(format!(
            "the environment is set to version {l}, which not every instance may run yet"
        ));
    }
    notes.extend(back.note);
    if act {
        notes.extend(super::properties::put_back(e, cx, w, report).await);
    }
    PutBack {
        settled: back.settled,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// AbortEnvironmentUpdate while an abortable update runs.
async fn abort(e: &Environment<'_>, cx: &Context<'_>) {
    let Ok(env) = describe(e, cx).await else {
        return;
    };
    if env.status() != Some(&EnvironmentStatus::Updating) {
        return;
    }
    match cx
        .clients
        .beanstalk
        .abort_environment_update()
        .environment_name(e.env())
        .send()
        .await
    {
        Ok(_) => e.say(cx, "AbortEnvironmentUpdate accepted"),
        Err(err) => e.say(
            cx,
            &format!(
                "AbortEnvironmentUpdate refused: {}",
                err.message().unwrap_or("error")
            ),
        ),
    }
}

/// The label serving now, if it can be read.
async fn label_now(e: &Environment<'_>, cx: &Context<'_>) -> Option<String> {
    describe(e, cx)
        .await
        .ok()
        .and_then(|d| d.version_label().map(str::to_string))
}

/// Waits for the environment to settle and makes sure the previous label
/// serves on every instance, deploying it again when `redeploy`.
async fn back_to_previous(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    redeploy: bool,
    report: &mut DeployReport,
) -> Settled {
    let previous = report.previous_revision.clone();
    let waiting = "while EB ends the update; waiting for Ready to see what serves";
    let env = match w
        .until("waiting for the environment to settle", async || {
            e.ready(cx, waiting).await
        })
        .await
    {
        Ok(env) => env,
        Err(err) if crate::wait::Stopped::find(&err).is_some() => {
            let note = "the environment did not settle in time; what serves may still change";
            return Settled::unsettled(label_now(e, cx).await, note);
        }
        Err(err) => return Settled::unsettled(None, chain_message(&err)),
    };
    let now = env.version_label().map(str::to_string);
    let Some(previous) = previous else {
        return Settled::unsettled(now, "there is no earlier application version to go back to");
    };
    let stray = instances_not_on(e, cx, &previous).await;
    if now.as_deref() == Some(previous.as_str()) && stray.as_ref().is_some_and(Vec::is_empty) {
        return Settled {
            serving: now,
            note: None,
            settled: true,
        };
    }
    let left = match &stray {
        Some(s) if !s.is_empty() => format!("{} instance(s) run {}", s.len(), s.join(", ")),
        Some(_) => format!(
            "the environment is on {}",
            now.as_deref().unwrap_or("no version")
        ),
        None => "EB cannot say which version each instance runs (no enhanced health)".into(),
    };
    if !redeploy {
        let note =
            format!("{left}; `rollback` is off, so fastdeploy did not redeploy version {previous}");
        return Settled::unsettled(now, note);
    }
    e.say(cx, &format!("{left}: deploying version {previous} again"));
    redeploy_previous(e, cx, w, &previous, &left, now, report).await
}

/// UpdateEnvironment back to `previous`, followed to its end.
async fn redeploy_previous(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    previous: &str,
    left: &str,
    now: Option<String>,
    report: &mut DeployReport,
) -> Settled {
    let sent = e.update_to(cx, previous).await;
    let rid = match sent {
        Ok(out) => out.request_id().unwrap_or_default().to_string(),
        Err(err) => {
            let why = err.message().unwrap_or("error");
            return Settled::unsettled(
                now,
                format!("redeploying version {previous} failed: {why}"),
            );
        }
    };
    let mut seen = Following::default();
    let doing = format!("redeploying version {previous}");
    let followed = w
        .until(&doing, async || {
            e.follow(cx, &rid, previous, &mut seen, report).await
        })
        .await;
    match followed {
        Ok(Followed::Completed(env)) => Settled {
            settled: env.version_label() == Some(previous),
            serving: env.version_label().map(str::to_string),
            note: Some(format!(
                "fastdeploy deployed version {previous} again ({left})"
            )),
        },
        Ok(Followed::Failed(why)) => Settled::unsettled(
            label_now(e, cx).await,
            format!("redeploying version {previous} failed too: {why}"),
        ),
        Ok(Followed::Ended(env)) => Settled::unsettled(
            env.version_label().map(str::to_string),
            format!("redeploying version {previous} ended without a verdict"),
        ),
        Err(err) if crate::wait::Stopped::find(&err).is_some() => Settled::unsettled(
            label_now(e, cx).await,
            format!("redeploying version {previous} did not finish in time"),
        ),
        Err(err) => Settled::unsettled(label_now(e, cx).await, chain_message(&err)),
    }
}

/// Instances whose deployed version is not `label` (`None`: EB cannot say).
async fn instances_not_on(
    e: &Environment<'_>,
    cx: &Context<'_>,
    label: &str,
) -> Option<Vec<String>> {
    let out = cx
        .clients
        .beanstalk
        .describe_instances_health()
        .environment_name(e.env())
        .attribute_names(InstancesHealthAttribute::Deployment)
        .send()
        .await
        .ok()?;
    Some(
        out.instance_health_list()
            .iter()
            .filter_map(|i| {
                let on = i.deployment().and_then(|d| d.version_label())?;
                (on != label).then(|| format!("{} on {on}", i.instance_id().unwrap_or("?")))
            })
            .collect(),
    )
}
