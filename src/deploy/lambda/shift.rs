//! `lambda-shift: 10%/5m`: the alias moves gradually. It keeps its version
//! and sends that share of its invocations to the new one (the alias's
//! `RoutingConfig`, `AdditionalVersionWeights`); for the window fastdeploy
//! reads the new version's `Errors` (namespace `AWS/Lambda`, dimensions
//! `FunctionName`, `Resource` `<function>:<alias>` and `ExecutedVersion`,
//! as Lambda publishes them for a weighted alias) every `poll-seconds`, and
//! the `alarms` stop the wait as any other. No error in the window: the
//! alias moves to the new version with no routing left. An error, an alarm
//! or a stop: the driver puts the alias back on its version, routing
//! cleared.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_sdk_lambda::types::AliasRoutingConfiguration;

use super::Function;
use super::watch::Alias;
use crate::aws::Explained;
use crate::deploy::Context;
use crate::plan::Shift;
use crate::wait::{Pace, Stop, Stopped, Waiter};

/// Sends `shift.percent` of the alias's invocations to `version`, watches
/// the window, and says how it went: `Err` the errors the new version had.
pub(super) async fn canary(
    f: &Function<'_>,
    cx: &Context<'_>,
    w: &Waiter<'_>,
    before: &Alias,
    version: &str,
    shift: Shift,
) -> anyhow::Result<Result<(), String>> {
    let name = &f.plan.alias;
    let weight = f64::from(shift.percent) / 100.0;
    cx.clients
        .lambda
        .update_alias()
        .function_name(f.name())
        .name(name)
        .function_version(&before.version)
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights(version, weight)
                .build(),
        )
        .set_revision_id(before.revision_id.clone())
        .send()
        .await
        .explained("lambda:UpdateAlias", || {
            format!("alias {name} of Lambda function {}", f.name())
        })?;
    let minutes = shift.seconds / 60;
    f.say(
        cx,
        &format!(
            "alias {name}: {}% of invocations to version {version}, the rest on version {}, for {minutes} min",
            shift.percent, before.version
        ),
    );
    let started = SystemTime::now();
    let window = w.with_pace(Pace::new(
        cx.clock,
        f.plan.watch.poll_seconds,
        shift.seconds as f64,
    ));
    let doing = format!("watching version {version}'s share of alias {name} for {minutes} min");
    loop {
        let errors = errors_since(f, cx, version, started).await?;
        if errors > 0.0 {
            return Ok(Err(format!(
                "version {version} had {errors} error{} in its {}% share of alias {name}'s invocations (AWS/Lambda Errors, ExecutedVersion {version})",
                if errors == 1.0 { "" } else { "s" },
                shift.percent
            )));
        }
        match window.pause(&doing).await {
            Ok(()) => {}
            Err(e) if Stopped::find(&e).is_some_and(|s| s.stop == Stop::TimedOut) => break,
            Err(e) => return Err(e),
        }
    }
    // One last read, for errors published at the end of the window.
    let errors = errors_since(f, cx, version, started).await?;
    if errors > 0.0 {
        return Ok(Err(format!(
            "version {version} had {errors} errors in its {}% share of alias {name}'s invocations at the end of the window",
            shift.percent
        )));
    }
    f.say(
        cx,
        &format!("no errors on version {version} in {minutes} min: all invocations move"),
    );
    Ok(Ok(()))
}

/// The sum of the new version's `Errors` since `since` (a minute earlier,
/// for datapoints stamped at the start of their minute).
async fn errors_since(
    f: &Function<'_>,
    cx: &Context<'_>,
    version: &str,
    since: SystemTime,
) -> anyhow::Result<f64> {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let metric = Metric::builder()
        .namespace("AWS/Lambda")
        .metric_name("Errors")
        .dimensions(dimension("FunctionName", f.name()))
        .dimensions(dimension(
            "Resource",
            &format!("{}:{}", f.name(), f.plan.alias),
        ))
        .dimensions(dimension("ExecutedVersion", version))
        .build();
    let query = MetricDataQuery::builder()
        .id("errors")
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(60)
                .stat("Sum")
                .build(),
        )
        .build();
    let start = since - Duration::from_secs(60);
    let end = SystemTime::now() + Duration::from_secs(60);
    let out = cx
        .clients
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(start.into())
        .end_time(end.into())
        .send()
        .await
        .explained("cloudwatch:GetMetricData", || {
            format!(
                "the Errors metric of version {version} of Lambda function {}",
                f.name()
            )
        })?;
    Ok(out
        .metric_data_results()
        .iter()
        .flat_map(|r| r.values())
        .sum())
}
