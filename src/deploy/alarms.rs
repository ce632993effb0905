//! `alarms` and `bake-minutes`: a rollout the platform calls healthy may
//! still hurt (errors up, latency up), and the team's CloudWatch alarms say
//! so. The alarms named (or matched by a prefix) are checked to exist
//! before anything is built; while a deploy's change is applied (and smoke
//! tested) and for `bake-minutes` after it succeeded, they are read every
//! `poll-seconds`. One that goes to ALARM ends the deploy's current wait
//! with [`Stop::Alarm`] (through the [`crate::wait::Waiter`] every target
//! waits with), and the driver rolls the change back as any failed change,
//! naming the alarm and CloudWatch's reason.
//!
//! An alarm already in ALARM when the deploy starts (the incident a fix is
//! deployed for) is said, and counts only once it has left ALARM and come
//! back, or CloudWatch says its state changed after the watch began.
//! Reading the alarms failing [`MAX_FAILED_LOOKS`] times in a row (or once,
//! when retrying cannot help) ends the deploy too: a bake nobody watched
//! proves nothing.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use tokio::sync::watch;

use super::{Context, Deploy, Target, Verdict};
use crate::aws::Explained;
use crate::error::{BadInput, chain_message};
use crate::plan::AlarmPlan;
use crate::wait::{MAX_FAILED_LOOKS, Pace, Stop, Stopped};

/// One alarm, as a look sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub name: String,
    /// Its `StateValue` is `ALARM`.
    pub alarm: bool,
    /// CloudWatch's `StateReason`.
    pub reason: String,
    /// `StateUpdatedTimestamp`.
    pub since: Option<SystemTime>,
}

/// Every alarm `plan` names: by name (100 to a call), then each prefix's.
pub async fn look(
    client: &aws_sdk_cloudwatch::Client,
    plan: &AlarmPlan,
) -> anyhow::Result<Vec<State>> {
    let mut out = Vec::new();
    let mut requests = Vec::new();
    for chunk in plan.names.chunks(100) {
        requests.push(
            client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec())),
        );
    }
    for prefix in &plan.prefixes {
        requests.push(client.describe_alarms().alarm_name_prefix(prefix));
    }
    for request in requests {
        let pages: Vec<_> = request
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .explained("cloudwatch:DescribeAlarms", || {
                format!("CloudWatch alarms {}", plan.describe())
            })?;
        for page in pages {
            let metric = page.metric_alarms().iter().map(|a| {
                state(
                    a.alarm_name(),
                    a.state_value(),
                    a.state_reason(),
                    a.state_updated_timestamp(),
                )
            });
            let composite = page.composite_alarms().iter().map(|a| {
                state(
                    a.alarm_name(),
                    a.state_value(),
                    a.state_reason(),
                    a.state_updated_timestamp(),
                )
            });
            out.extend(metric.chain(composite));
        }
    }
    Ok(out)
}

fn state(
    name: Option<&str>,
    value: Option<&StateValue>,
    reason: Option<&str>,
    since: Option<&aws_smithy_types::DateTime>,
) -> State {
    State {
        name: name.unwrap_or_default().to_string(),
        alarm: value == Some(&StateValue::Alarm),
        reason: reason.unwrap_or("no reason given").to_string(),
        since: since.and_then(|t| SystemTime::try_from(*t).ok()),
    }
}

/// Preflight: every alarm named exists, and every prefix matches one.
pub async fn check(cx: &Context<'_>, plan: &AlarmPlan) -> anyhow::Result<()> {
    let found = look(&cx.clients.cloudwatch, plan).await?;
    let missing: Vec<&str> = plan
        .names
        .iter()
        .filter(|n| !found.iter().any(|s| &s.name == *n))
        .map(String::as_str)
        .collect();
    let empty: Vec<String> = plan
        .prefixes
        .iter()
        .filter(|p| !found.iter().any(|s| s.name.starts_with(p.as_str())))
        .map(|p| format!("{p}*"))
        .collect();
    if missing.is_empty() && empty.is_empty() {
        return Ok(());
    }
    let region = cx.region.unwrap_or("the run's region");
    let what = missing
        .iter()
        .map(|n| format!("alarm `{n}` does not exist"))
        .chain(empty.iter().map(|p| format!("no alarm matches `{p}`")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(BadInput::other(format!(
        "{}: {what} in {region}: check the names (CloudWatch alarm names are case-sensitive and belong to one region), or remove them",
        plan.source
    ))
    .into())
}

/// The watch under way; dropping it stops the looks.
pub(crate) struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching the target's alarms, when it has any: one look now
/// (alarms already in ALARM are said and set aside), then one every
/// `poll-seconds`, each signalled to `d.w`.
pub(crate) async fn start<T: Target>(t: &T, d: &mut Deploy<'_>) -> Option<Watch> {
    let plan = t.watch().alarms.clone()?;
    let started = SystemTime::now();
    let client = d.cx.clients.cloudwatch.clone();
    let mut seen_ok = HashSet::new();
    match look(&client, &plan).await {
        Ok(states) => {
            for s in states.iter().filter(|s| s.alarm) {
                d.cx.actions.warning(
                    &format!(
                        "alarm `{}` is already in ALARM ({}); it fails this deploy only if it leaves ALARM and returns",
                        s.name, s.reason
                    ),
                    &Default::default(),
                );
            }
            seen_ok.extend(states.into_iter().filter(|s| !s.alarm).map(|s| s.name));
            d.cx.actions.line(&format!(
                "watching alarms {} during the rollout",
                plan.describe()
            ));
        }
        Err(e) => d.cx.actions.line(&format!(
            "could not read alarms {} ({}); trying again while the rollout goes on",
            plan.describe(),
            chain_message(&e)
        )),
    }
    let (tx, rx) = watch::channel(None);
    d.w.watching(Some(rx));
    let every = d.cx.clock.of(t.watch().poll_seconds);
    let looks = Looks {
        client,
        plan,
        started,
        seen_ok,
    };
    Some(Watch(tokio::spawn(looks.run(every, tx))))
}

/// The watch's state between looks.
struct Looks {
    client: aws_sdk_cloudwatch::Client,
    plan: AlarmPlan,
    started: SystemTime,
    /// Alarms seen out of ALARM since the watch began.
    seen_ok: HashSet<String>,
}

impl Looks {
    /// Looks every `every` until an alarm fires or the looks keep failing,
    /// and says which on `tx`.
    async fn run(mut self, every: Duration, tx: watch::Sender<Option<Stop>>) {
        let mut failed = 0u32;
        loop {
            tokio::time::sleep(every).await;
            match look(&self.client, &self.plan).await {
                Ok(states) => {
                    failed = 0;
                    if let Some(stop) = self.fired(&states) {
                        let _ = tx.send(Some(stop));
                        return;
                    }
                }
                Err(e) => {
                    failed += 1;
                    if failed >= MAX_FAILED_LOOKS || crate::aws::retryable(&e).is_none() {
                        let _ = tx.send(Some(Stop::Unreachable {
                            call: "cloudwatch:DescribeAlarms".into(),
                            times: failed,
                            last: chain_message(&e),
                        }));
                        return;
                    }
                }
            }
        }
    }

    /// The first alarm in ALARM that went there since the watch began.
    fn fired(&mut self, states: &[State]) -> Option<Stop> {
        let ok = states.iter().filter(|s| !s.alarm);
        self.seen_ok.extend(ok.map(|s| s.name.clone()));
        states
            .iter()
            .find(|s| {
                s.alarm
                    && (self.seen_ok.contains(&s.name)
                        || s.since.is_some_and(|t| t >= self.started))
            })
            .map(|s| Stop::Alarm {
                alarm: s.name.clone(),
                reason: s.reason.clone(),
            })
    }
}

/// After a change that succeeded, `bake-minutes` of watching the alarms
/// before it is called done; any other verdict passes through.
pub(crate) async fn bake<T: Target>(
    t: &T,
    d: &mut Deploy<'_>,
    applied: anyhow::Result<Verdict>,
) -> anyhow::Result<Verdict> {
    let (Ok(Verdict::Succeeded), Some(plan)) = (&applied, &t.watch().alarms) else {
        return applied;
    };
    if plan.bake_seconds == 0 {
        return applied;
    }
    let minutes = format!("{} min", plan.bake_seconds / 60);
    d.cx.actions.line(&format!(
        "bake: watching alarms {} for {minutes} before the deploy is called done",
        plan.describe()
    ));
    let pace = Pace::new(d.cx.clock, t.watch().poll_seconds, plan.bake_seconds as f64);
    let doing = format!("baking for {minutes}");
    match d
        .w
        .with_pace(pace)
        .within(&doing, std::future::pending::<()>())
        .await
    {
        Err(e) if Stopped::find(&e).is_some_and(|s| s.stop == Stop::TimedOut) => {
            d.cx.actions.line(&format!(
                "bake: no watched alarm went to ALARM in {minutes}"
            ));
            Ok(Verdict::Succeeded)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(Verdict::Succeeded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, alarm: bool, since: Option<SystemTime>) -> State {
        State {
            name: name.into(),
            alarm,
            reason: "Threshold Crossed".into(),
            since,
        }
    }

    fn looks(started: SystemTime, seen_ok: &[&str]) -> Looks {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .build();
        Looks {
            client: aws_sdk_cloudwatch::Client::from_conf(conf),
            plan: AlarmPlan {
                names: vec!["api-5xx".into()],
                prefixes: vec![],
                bake_seconds: 0,
                source: "input `alarms`".into(),
            },
            started,
            seen_ok: seen_ok.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// Looks that keep failing end the watch (ten throttled looks in a
    /// row); one that retrying cannot help ends it at once.
    #[tokio::test]
    async fn looks_that_keep_failing_end_the_watch() {
        use aws_sdk_cloudwatch::config::retry::RetryConfig;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let throttled = |status: u16, code: &str| {
            let body = format!("__type={code}");
            mock!(aws_sdk_cloudwatch::Client::describe_alarms)
                .sequence()
                .http_response(move || {
                    aws_smithy_runtime_api::http::Response::new(
                        aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
                        aws_smithy_types::body::SdkBody::from(body.clone()),
                    )
                })
                .repeatedly()
                .build()
        };
        for (rule, times) in [
            (throttled(503, "ServiceUnavailable"), MAX_FAILED_LOOKS),
            (throttled(403, "AccessDenied"), 1),
        ] {
            let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&rule], |c| c
                .retry_config(RetryConfig::disabled()));
            let l = Looks {
                client,
                ..looks(SystemTime::now(), &[])
            };
            let (tx, mut rx) = watch::channel(None);
            l.run(Duration::from_millis(1), tx).await;
            let stop = rx.borrow_and_update().clone();
            assert!(
                matches!(&stop, Some(Stop::Unreachable { call, times: t, .. })
                    if call == "cloudwatch:DescribeAlarms" && *t == times),
                "{stop:?}"
            );
            assert_eq!(rule.num_calls(), times as usize);
        }
    }

    #[test]
    fn an_alarm_counts_once_it_went_to_alarm_after_the_watch_began() {
        let started = SystemTime::now();
        let before = started - Duration::from_secs(600);
        let after = started + Duration::from_secs(5);
        // Already in ALARM before the deploy, never seen OK: set aside.
        assert_eq!(
            looks(started, &[]).fired(&[s("api-5xx", true, Some(before))]),
            None
        );
        // Its state changed after the watch began.
        let fired = looks(started, &[]).fired(&[s("api-5xx", true, Some(after))]);
        assert_eq!(
            fired,
            Some(Stop::Alarm {
                alarm: "api-5xx".into(),
                reason: "Threshold Crossed".into()
            })
        );
        // Seen OK during the watch, now in ALARM (whatever the clocks say).
        let mut l = looks(started, &[]);
        assert_eq!(l.fired(&[s("api-5xx", false, Some(before))]), None);
        assert!(l.fired(&[s("api-5xx", true, Some(before))]).is_some());
        // OK throughout: nothing.
        assert_eq!(
            looks(started, &["api-5xx"]).fired(&[s("api-5xx", false, None)]),
            None
        );
    }
}
