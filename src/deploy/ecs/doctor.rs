//! The deploy-time doctor: before the rollout, it reads what paces an ECS
//! rolling update (the service's load balancers' target groups, its
//! deployment percents, desired count and grace period, the containers' stop
//! timeouts and health checks, the launch type, the image's size), estimates
//! the rollout from them and names the settings that dominate it, each with
//! its value, its cost for this deploy, the recommended value and where to
//! change it. Read-only and never a gate: what it cannot read is a notice.
//!
//! The model follows AWS's documentation of a rolling update ("Deploy Amazon
//! ECS services by replacing tasks", the ECS best-practices guide's "Optimize
//! load balancer connection draining parameters" and "Optimize load balancer
//! health check parameters", and the ELB user guide's "Health checks for
//! Application Load Balancer target groups"), pass by pass as the service
//! scheduler runs it ([`simulate`]): at most floor(D × maximumPercent / 100)
//! tasks run or start, old tasks stop only while ceil(D ×
//! minimumHealthyPercent / 100) healthy ones remain. A new task pulls its
//! image, starts, and is healthy once it passes one load balancer health
//! check (the first comes one interval after it registers; the healthy
//! threshold counts only when a target recovers from unhealthy) and its
//! container health check (Docker's first runs one interval after the
//! start). An old task drains for the target group's deregistration delay,
//! then gets SIGTERM and, if it does not exit, SIGKILL after its stopTimeout.
//! Without a load balancer and a container health check, ECS counts a task
//! healthy 40 s after it runs. The health check grace period costs nothing
//! while tasks get healthy: ECS only ignores failing checks during it.
//!
//! tests/sandbox/ext_ecs.py rolls services behind a load balancer out by the
//! same rules, so an estimate can be checked against a rollout whose true
//! durations are known.

use aws_sdk_ecs::types::{DeploymentStrategy, LaunchType, Service};

use crate::outcome::{DoctorReport, Phase, RolloutEstimate, SettingCost};

/// The doctor's checks, for `ignore-checks`, the plan and the README.
pub const RULES: &[(&str, &str)] = &[
    ("DEP001", "a target group's deregistration delay above 30 s"),
    (
        "DEP002",
        "a target group's health check interval above 10 s",
    ),
    ("DEP003", "a container stop timeout above 10 s"),
    ("DEP004", "an image over 200 MB to pull on every new task"),
    (
        "DEP005",
        "deployment percents that make the rollout take more than one batch",
    ),
    ("DEP006", "a container health check interval above 10 s"),
];

/// Image pull, as a model: a fixed start plus the compressed size at this
/// rate (about a minute for a 400 MB image on Fargate, which caches no layer).
pub const PULL_BASE_SECONDS: f64 = 3.0;
pub const PULL_BYTES_PER_SECOND: f64 = 7_000_000.0;
/// A container's own start after its image is pulled: the application's
/// start-up is not known to the doctor.
pub const START_SECONDS: f64 = 1.0;
/// ECS's wait after a task runs before counting it healthy when it has
/// neither a load balancer nor a container health check.
pub const NO_CHECK_SECONDS: f64 = 40.0;
/// The stop timeout when a container sets none (the ECS agent's
/// ECS_CONTAINER_STOP_TIMEOUT default, and Fargate's).
pub const DEFAULT_STOP_TIMEOUT: f64 = 30.0;

/// Recommended values (the ECS best-practices guide's), and the largest
/// value that draws no notice.
const DELAY_RECOMMENDED: f64 = 5.0;
const DELAY_ACCEPTABLE: f64 = 30.0;
const INTERVAL_RECOMMENDED: f64 = 5.0;
const INTERVAL_ACCEPTABLE: f64 = 10.0;
const STOP_RECOMMENDED: f64 = 2.0;
const STOP_ACCEPTABLE: f64 = 10.0;
const IMAGE_ACCEPTABLE_BYTES: u64 = 200_000_000;

/// A target group's settings that pace a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    /// `deregistration_delay.timeout_seconds`.
    pub deregistration_delay: f64,
    pub interval: f64,
    pub healthy_threshold: u32,
    pub timeout: f64,
    pub path: Option<String>,
    pub enabled: bool,
}

/// A container's stop timeout: its own, or ECS's default when unset.
#[derive(Debug, Clone, PartialEq)]
pub struct StopTimeout {
    pub container: String,
    pub seconds: f64,
    pub set: bool,
}

/// Everything the estimate is made of, read from AWS (or given by tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub service: String,
    pub cluster: String,
    pub desired: u32,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// `FARGATE`, `EC2`, `EXTERNAL`, or a capacity provider strategy's first provider.
    pub launch: String,
    pub grace_seconds: Option<i32>,
    pub target_groups: Vec<TargetGroup>,
    /// The running revision's containers (the old tasks stop by them).
    pub stops: Vec<StopTimeout>,
    /// The new revision's container health checks: (container, interval).
    pub container_checks: Vec<(String, f64)>,
    /// Compressed size of the image deployed.
    pub image_bytes: Option<u64>,
}

/// Per-task durations of the model, in real seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Times {
    pub pull: f64,
    pub start: f64,
    /// From running to healthy.
    pub healthy: f64,
    pub drain: f64,
    pub stop: f64,
}

impl Inputs {
    pub fn times(&self) -> Times {
        let pull = PULL_BASE_SECONDS + self.image_bytes.unwrap_or(0) as f64 / PULL_BYTES_PER_SECOND;
        let lb = self
            .target_groups
            .iter()
            .filter(|g| g.enabled)
            .map(|g| g.interval)
            .fold(None, max_opt);
        let container = self
            .container_checks
            .iter()
            .map(|(_, i)| *i)
            .fold(None, max_opt);
        let healthy = match (lb, container) {
            (None, None) => NO_CHECK_SECONDS,
            (a, b) => a.unwrap_or(0.0).max(b.unwrap_or(0.0)),
        };
        let drain = self
            .target_groups
            .iter()
            .map(|g| g.deregistration_delay)
            .fold(0.0, f64::max);
        let stop = self
            .stops
            .iter()
            .map(|s| s.seconds)
            .fold(None, max_opt)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        Times {
            pull,
            start: START_SECONDS,
            healthy,
            drain,
            stop,
        }
    }
}

fn max_opt(acc: Option<f64>, v: f64) -> Option<f64> {
    Some(acc.map_or(v, |a| a.max(v)))
}

/// Pull time of an image of `bytes` (compressed), as the model has it.
pub fn pull_seconds(bytes: u64) -> f64 {
    PULL_BASE_SECONDS + bytes as f64 / PULL_BYTES_PER_SECOND
}

/// A simulated rollout: when it completes, how many batches, and what each
/// task was doing when (the intervals [`super::timeline::partition`] splits into phases).
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    pub seconds: f64,
    pub batches: u32,
    pub intervals: Vec<(Phase, f64, f64)>,
}

/// A rolling update of `desired` tasks, pass by pass as ECS's scheduler runs
/// it, each pass at a moment a task changes state. `None` when the percents
/// let nothing stop and nothing start (100/100): ECS's documented deadlock.
pub fn simulate(
    desired: u32,
    maximum_percent: u32,
    minimum_healthy_percent: u32,
    t: Times,
) -> Option<Simulated> {
    let d = desired as usize;
    let maximum = desired as usize * maximum_percent as usize / 100;
    let minimum = (desired as usize * minimum_healthy_percent as usize).div_ceil(100);
    // New tasks: (placed, healthy at). Old tasks: drained at (None: still serving).
    let mut new: Vec<(f64, f64)> = Vec::new();
    let mut old: Vec<Option<f64>> = vec![None; d];
    let stopped = |at: f64| at + t.drain + t.stop;
    let mut now = 0.0_f64;
    let mut batches = 0;
    loop {
        let live_old = old
            .iter()
            .filter(|o| o.is_none_or(|at| stopped(at) > now))
            .count();
        let new_healthy = new.iter().filter(|(_, h)| *h <= now).count();
        if new.len() >= d && new_healthy >= d && live_old == 0 {
            break;
        }
        let serving = old.iter().filter(|o| o.is_none()).count();
        let can_stop = (new_healthy + serving).saturating_sub(minimum).min(serving);
        for o in old.iter_mut().filter(|o| o.is_none()).take(can_stop) {
            *o = Some(now);
        }
        let room = maximum.saturating_sub(new.len() + live_old);
        let start = d.saturating_sub(new.len()).min(room);
        if start > 0 {
            batches += 1;
            let healthy = now + t.pull + t.start + t.healthy;
            new.extend(std::iter::repeat_n((now, healthy), start));
        }
        let next = new
            .iter()
            .map(|(_, h)| *h)
            .chain(old.iter().flatten().map(|at| stopped(*at)))
            .filter(|at| *at > now)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.min(v)))
            });
        match next {
            Some(at) => now = at,
            None => return None,
        }
    }
    let mut intervals = Vec::new();
    for (placed, healthy) in &new {
        intervals.push((Phase::Pull, *placed, placed + t.pull));
        intervals.push((Phase::StartToHealthy, placed + t.pull, *healthy));
    }
    for at in old.iter().flatten() {
        intervals.push((Phase::Draining, *at, stopped(*at)));
    }
    Some(Simulated {
        seconds: now,
        batches,
        intervals,
    })
}

/// The rollout's estimate from `inputs`, or why there is none.
pub fn estimate(inputs: &Inputs) -> Result<RolloutEstimate, String> {
    let sim = simulate(inputs.desired, inputs.maximum_percent, inputs.minimum_healthy_percent, inputs.times()).ok_or_else(|| {
        format!(
            "no estimate: with minimumHealthyPercent {} and maximumPercent {} ECS can neither stop nor start a task of {}",
            inputs.minimum_healthy_percent, inputs.maximum_percent, inputs.service
        )
    })?;
    let parts = super::timeline::partition(0.0, sim.seconds, &sim.intervals);
    let part = |p| parts.get(&p).copied().unwrap_or(0.0);
    Ok(RolloutEstimate {
        seconds: sim.seconds,
        batches: sim.batches,
        pull: part(Phase::Pull),
        start_to_healthy: part(Phase::StartToHealthy),
        draining: part(Phase::Draining),
        waiting: part(Phase::Waiting),
    })
}

fn total(inputs: &Inputs) -> Option<f64> {
    estimate(inputs).ok().map(|e| e.seconds)
}

/// What `changed` saves against `inputs`, in the estimate's seconds.
fn saving(inputs: &Inputs, changed: Inputs) -> f64 {
    match (total(inputs), total(&changed)) {
        (Some(now), Some(then)) => (now - then).max(0.0),
        _ => 0.0,
    }
}

fn secs(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.1} s")
    }
}

/// Every setting that paces the rollout, with what it costs this deploy
/// (the estimate's seconds above what its recommended value would take),
/// flagged when beyond the recommended range and not in `ignore`.
pub fn findings(inputs: &Inputs, ignore: &[String]) -> Vec<SettingCost> {
    let on = |id: &str| !ignore.iter().any(|i| i == id);
    let mut out = target_groups_findings(inputs, &on);
    out.extend(stop_timeout(inputs, &on));
    out.extend(image_size(inputs, &on));
    let stuck = estimate(inputs).is_err();
    out.push(percents(inputs, &on));
    out.extend(container_checks(inputs, &on));
    out.extend(grace_period(inputs));
    // A setting that costs nothing is no finding, whatever its value.
    for s in &mut out {
        if s.cost_seconds < 0.5 && !(s.check.as_deref() == Some("DEP005") && stuck) {
            s.flagged = false;
        }
    }
    out.sort_by(|a, b| b.cost_seconds.total_cmp(&a.cost_seconds));
    out
}

/// DEP001 and DEP002: each target group's deregistration delay and health
/// check interval.
fn target_groups_findings(inputs: &Inputs, on: &dyn Fn(&str) -> bool) -> Vec<SettingCost> {
    let mut out = Vec::new();
    for (i, g) in inputs.target_groups.iter().enumerate() {
        let mut tuned = inputs.clone();
        tuned.target_groups[i].deregistration_delay = g.deregistration_delay.min(DELAY_RECOMMENDED);
        out.push(SettingCost {
            check: Some("DEP001".into()),
            setting: format!("deregistration delay of target group {}", g.name),
            value: secs(g.deregistration_delay),
            cost_seconds: saving(inputs, tuned),
            recommended: "5-30 s (5 s when every request finishes within a second; never below your longest request)".into(),
            change: format!(
                "target group attribute deregistration_delay.timeout_seconds: `aws elbv2 modify-target-group-attributes --target-group-arn {} --attributes Key=deregistration_delay.timeout_seconds,Value=5` (or EC2 console, Target groups, {}, Attributes)",
                g.arn, g.name
            ),
            flagged: g.deregistration_delay > DELAY_ACCEPTABLE && on("DEP001"),
            as_recommended: g.deregistration_delay <= DELAY_ACCEPTABLE,
        });
        let mut tuned = inputs.clone();
        tuned.target_groups[i].interval = g.interval.min(INTERVAL_RECOMMENDED);
        out.push(SettingCost {
            check: Some("DEP002".into()),
            setting: format!(
                "health check interval of target group {}{}",
                g.name,
                g.path.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
            value: format!("{} (healthy threshold {}, timeout {})", secs(g.interval), g.healthy_threshold, secs(g.timeout)),
            cost_seconds: if g.enabled { saving(inputs, tuned) } else { 0.0 },
            recommended: "5 s with a healthy threshold of 2, when the service starts in under 10 s (a new target needs one passing check; the threshold counts when one recovers)".into(),
            change: format!(
                "`aws elbv2 modify-target-group --target-group-arn {} --health-check-interval-seconds 5 --healthy-threshold-count 2` (or EC2 console, Target groups, {}, Health checks)",
                g.arn, g.name
            ),
            flagged: g.enabled && g.interval > INTERVAL_ACCEPTABLE && on("DEP002"),
            as_recommended: g.interval <= INTERVAL_RECOMMENDED && g.healthy_threshold <= 2,
        });
    }
    out
}

/// DEP003: the longest stop timeout of the running revision's containers.
fn stop_timeout(inputs: &Inputs, on: &dyn Fn(&str) -> bool) -> Option<SettingCost> {
    let longest = inputs
        .stops
        .iter()
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))?;
    let mut tuned = inputs.clone();
    for s in &mut tuned.stops {
        s.seconds = s.seconds.min(STOP_RECOMMENDED);
    }
    let value = if longest.set {
        secs(longest.seconds)
    } else {
        format!("{} (not set: ECS's default)", secs(longest.seconds))
    };
    Some(SettingCost {
            check: Some("DEP003".into()),
            setting: format!("stop timeout of container {}", longest.container),
            value,
            cost_seconds: saving(inputs, tuned),
            recommended: "2 s, or twice the application's shutdown time when it needs more than a second; an application that exits on SIGTERM pays none of it".into(),
            change: format!(
                "task definition: containerDefinitions[{}].stopTimeout (on EC2 also the agent's ECS_CONTAINER_STOP_TIMEOUT)",
                longest.container
            ),
            flagged: longest.seconds > STOP_ACCEPTABLE && on("DEP003"),
        as_recommended: longest.seconds <= STOP_RECOMMENDED,
        })
}

/// DEP004: the image every new task pulls.
fn image_size(inputs: &Inputs, on: &dyn Fn(&str) -> bool) -> Option<SettingCost> {
    let bytes = inputs.image_bytes?;
    let tuned = Inputs {
        image_bytes: Some(bytes.min(IMAGE_ACCEPTABLE_BYTES)),
        ..inputs.clone()
    };
    Some(SettingCost {
        check: Some("DEP004".into()),
        setting: "image pulled by every new task".into(),
        value: format!(
            "{} (about {} to pull)",
            crate::units::bytes(bytes),
            secs(pull_seconds(bytes).round())
        ),
        cost_seconds: saving(inputs, tuned),
        recommended:
            "under 200 MB compressed: a slim base and a multi-stage build (see DF001 and DF006)"
                .into(),
        change: "the component's Dockerfile".into(),
        flagged: bytes > IMAGE_ACCEPTABLE_BYTES && on("DEP004"),
        as_recommended: bytes <= IMAGE_ACCEPTABLE_BYTES,
    })
}

/// DEP005: the deployment percents, which decide how many batches it takes.
fn percents(inputs: &Inputs, on: &dyn Fn(&str) -> bool) -> SettingCost {
    let one_batch = Inputs {
        maximum_percent: inputs.maximum_percent.max(200),
        minimum_healthy_percent: 100,
        ..inputs.clone()
    };
    let batches = estimate(inputs).map(|e| e.batches).unwrap_or(0);
    let stuck = estimate(inputs).is_err();
    SettingCost {
        check: Some("DEP005".into()),
        setting: format!("deployment percents of service {} ({} tasks)", inputs.service, inputs.desired),
        value: if stuck {
            format!("minimum healthy {}%, maximum {}%: no task can stop or start", inputs.minimum_healthy_percent, inputs.maximum_percent)
        } else {
            format!(
                "minimum healthy {}%, maximum {}%: {batches} batch{}",
                inputs.minimum_healthy_percent,
                inputs.maximum_percent,
                if batches == 1 { "" } else { "es" }
            )
        },
        cost_seconds: saving(inputs, one_batch),
        recommended: "maximumPercent 200 with minimumHealthyPercent 100: every new task starts in one batch, when the cluster has room for twice the tasks".into(),
        change: format!(
            "`aws ecs update-service --cluster {} --service {} --deployment-configuration maximumPercent=200,minimumHealthyPercent=100`, or fastdeploy's `strategy: blue-green`",
            inputs.cluster, inputs.service
        ),
        flagged: (stuck || batches > 1) && on("DEP005"),
        as_recommended: inputs.maximum_percent >= 200 && inputs.minimum_healthy_percent == 100,
    }
}

/// DEP006: each container health check's interval.
fn container_checks(inputs: &Inputs, on: &dyn Fn(&str) -> bool) -> Vec<SettingCost> {
    let mut out = Vec::new();
    for (i, (container, interval)) in inputs.container_checks.iter().enumerate() {
        let mut tuned = inputs.clone();
        tuned.container_checks[i].1 = interval.min(INTERVAL_RECOMMENDED);
        out.push(SettingCost {
            check: Some("DEP006".into()),
            setting: format!("health check interval of container {container}"),
            value: secs(*interval),
            cost_seconds: saving(inputs, tuned),
            recommended: "5 s (ECS's minimum): Docker runs the first check one interval after the container starts".into(),
            change: format!("task definition: containerDefinitions[{container}].healthCheck.interval"),
            flagged: *interval > INTERVAL_ACCEPTABLE && on("DEP006"),
            as_recommended: *interval <= INTERVAL_RECOMMENDED,
        });
    }
    out
}

/// The grace period: listed (it costs nothing), never flagged.
fn grace_period(inputs: &Inputs) -> Option<SettingCost> {
    let grace = inputs.grace_seconds.filter(|g| *g > 0)?;
    Some(SettingCost {
            check: None,
            setting: format!("health check grace period of service {}", inputs.service),
            value: secs(f64::from(grace)),
            cost_seconds: 0.0,
            recommended: "as long as the application takes to start: ECS ignores failing checks during it, so it costs nothing while tasks get healthy, and a task that never does is replaced only after it".into(),
            change: format!("`aws ecs update-service --cluster {} --service {} --health-check-grace-period-seconds N`", inputs.cluster, inputs.service),
            flagged: false,
            // What the application needs to start is not known here.
            as_recommended: false,
        })
}

/// The doctor's report from `inputs`: the estimate, the settings, and what
/// the model assumes.
pub fn report(inputs: &Inputs, ignore: &[String]) -> DoctorReport {
    let mut notes = Vec::new();
    let estimate = match estimate(inputs) {
        Ok(e) => Some(e),
        Err(why) => {
            notes.push(why);
            None
        }
    };
    if inputs.image_bytes.is_none() {
        notes.push("the image's size is not known: the pull is counted as a fixed 3 s".into());
    }
    if inputs.launch != "FARGATE" {
        notes.push(format!(
            "launch type {}: the estimate pulls the whole image on every new task and assumes the cluster has room for the new tasks",
            inputs.launch
        ));
    }
    if inputs.stops.iter().any(|s| s.seconds > STOP_RECOMMENDED) {
        notes.push(
            "stopping counts the whole stop timeout, as for an application that ignores SIGTERM"
                .into(),
        );
    }
    DoctorReport {
        estimate,
        settings: findings(inputs, ignore),
        notes,
    }
}

/// The notice for a flagged setting: the setting, its value, its cost for
/// this deploy and the fix.
pub fn notice(service: &str, s: &SettingCost) -> String {
    // No estimate (percents that leave no room to roll, say): no cost to name.
    let cost = if s.cost_seconds > 0.0 {
        format!(
            "which costs this deploy about {} of its rollout",
            crate::units::duration(s.cost_seconds)
        )
    } else {
        "whose cost for this deploy the doctor cannot estimate".to_string()
    };
    format!(
        "{}{}: {} is {}, {cost}; recommended: {}; change it with {}",
        s.check
            .as_deref()
            .map(|c| format!("{c} "))
            .unwrap_or_default(),
        service,
        s.setting,
        s.value,
        s.recommended,
        s.change
    )
}

// ---------------------------------------------------------------------------
// Reading the inputs from AWS.

/// How long the doctor may take to read what paces the rollout: it runs
/// before the rollout, and a slow or unreachable endpoint must not hold the
/// deploy up (the SDK would retry each call for a minute or more).
const READ_SECONDS: u64 = 30;

/// A notice for each flagged setting.
pub fn notify(plan: &crate::plan::EcsPlan, report: &DoctorReport, actions: &crate::gha::Actions) {
    for s in report.settings.iter().filter(|s| s.flagged) {
        actions.notice(
            &notice(&plan.service, s),
            &crate::gha::Location {
                title: s.check.as_deref().or(Some("fastdeploy doctor")),
                ..Default::default()
            },
        );
    }
}

/// Reads what paces `plan`'s rollout (the service, its revision, its target
/// groups; `image_bytes` paces each pull) and says the estimate and the
/// settings, a line each. Never fails: what cannot be read is a notice and
/// a note. The notices for flagged settings are [`notify`]'s, once the
/// deploy is known to roll something out.
pub async fn assess(
    cx: &crate::deploy::Context<'_>,
    plan: &crate::plan::EcsPlan,
    image_bytes: Option<u64>,
    live: Option<&super::preflight::LiveService>,
) -> DoctorReport {
    let actions = cx.actions;
    let say = |s: &str| actions.line(&format!("doctor: {s}"));
    let unread = |what: &str, e: &anyhow::Error| {
        let m = format!(
            "deploy-time doctor for ECS service {}: {what}: {}; the deploy goes on without its estimate",
            plan.service,
            crate::error::chain_message(e)
        );
        actions.notice(
            &m,
            &crate::gha::Location {
                title: Some("fastdeploy doctor"),
                ..Default::default()
            },
        );
        DoctorReport {
            notes: vec![m],
            ..DoctorReport::default()
        }
    };
    let inputs = match tokio::time::timeout(
        std::time::Duration::from_secs(READ_SECONDS),
        read(cx, plan, image_bytes, live),
    )
    .await
    {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return unread("could not read what paces the rollout", &e),
        Err(_) => {
            let e = anyhow::anyhow!(
                "ECS and Elastic Load Balancing did not answer within {READ_SECONDS} s"
            );
            return unread("could not read what paces the rollout", &e);
        }
    };
    let inputs = match inputs {
        Reading::Rolling(i) => i,
        Reading::NotRolling(strategy) => {
            let note = format!(
                "{strategy} deployment: the doctor models rolling updates only; no estimate"
            );
            say(&note);
            return DoctorReport {
                notes: vec![note],
                ..DoctorReport::default()
            };
        }
    };
    let report = report(&inputs, cx.ignore_checks);
    if let Some(e) = &report.estimate {
        use crate::units::duration as d;
        say(&format!(
            "estimated rollout {} in {} batch{}: pull {}, start to healthy {}, draining the old tasks {}",
            d(e.seconds),
            e.batches,
            if e.batches == 1 { "" } else { "es" },
            d(e.pull),
            d(e.start_to_healthy),
            d(e.draining)
        ));
    }
    for n in &report.notes {
        say(n);
    }
    report
}

/// What the doctor read: a rolling update's inputs, or another strategy.
enum Reading {
    Rolling(Inputs),
    /// BLUE_GREEN, LINEAR, CANARY: not a rolling update.
    NotRolling(String),
}

async fn read(
    cx: &crate::deploy::Context<'_>,
    plan: &crate::plan::EcsPlan,
    image_bytes: Option<u64>,
    live: Option<&super::preflight::LiveService>,
) -> anyhow::Result<Reading> {
    let ecs = &cx.clients.ecs;
    use anyhow::Context;
    let service = match live {
        Some(l) => l.service.clone(),
        None => ecs
            .describe_services()
            .cluster(&plan.cluster)
            .services(&plan.service)
            .send()
            .await
            .with_context(|| format!("describing service {} (ecs:DescribeServices)", plan.service))?
            .services()
            .first()
            .cloned()
            .with_context(|| format!("service {} not found", plan.service))?,
    };
    let strategy = service
        .deployment_configuration()
        .and_then(|c| c.strategy())
        .cloned()
        .unwrap_or(DeploymentStrategy::Rolling);
    if strategy != DeploymentStrategy::Rolling {
        return Ok(Reading::NotRolling(strategy.as_str().to_string()));
    }
    let current = match live {
        Some(l) => l.current.clone(),
        None => {
            let arn = service
                .task_definition()
                .context("the service has no task definition")?;
            super::wire::describe(ecs, arn).await?
        }
    };
    let stops = containers(&current.task_definition)
        .iter()
        .map(|c| {
            let set = c.get("stopTimeout").and_then(serde_json::Value::as_f64);
            StopTimeout {
                container: name(c),
                seconds: set.unwrap_or(DEFAULT_STOP_TIMEOUT),
                set: set.is_some(),
            }
        })
        .collect();
    // The new tasks run what fastdeploy renders: the file when given, else the current revision.
    let rendered = match &plan.task_definition_file {
        Some(path) => std::fs::read_to_string(path)
            .ok()
            .and_then(|t| super::render::from_file(&t, &path.display().to_string()).ok())
            .unwrap_or_else(|| current.task_definition.clone()),
        None => current.task_definition.clone(),
    };
    let container_checks = containers(&rendered)
        .iter()
        .filter_map(|c| {
            Some((
                name(c),
                c.get("healthCheck")?
                    .get("interval")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(30.0),
            ))
        })
        .collect();
    let target_groups = target_groups(&cx.clients.elb, &service).await?;
    let (mut minimum, mut maximum) = service
        .deployment_configuration()
        .map(|c| {
            (
                c.minimum_healthy_percent().unwrap_or(100),
                c.maximum_percent().unwrap_or(200),
            )
        })
        .unwrap_or((100, 200));
    if plan.strategy == crate::settings::Strategy::BlueGreen {
        // `strategy: blue-green` sets these on the update (apply::deployment_configuration).
        (minimum, maximum) = (100, 200);
    }
    Ok(Reading::Rolling(Inputs {
        service: plan.service.clone(),
        cluster: plan.cluster.clone(),
        desired: service.desired_count().max(0) as u32,
        minimum_healthy_percent: minimum.max(0) as u32,
        maximum_percent: maximum.max(0) as u32,
        launch: launch(&service),
        grace_seconds: service.health_check_grace_period_seconds(),
        target_groups,
        stops,
        container_checks,
        image_bytes,
    }))
}

fn containers(td: &serde_json::Value) -> Vec<serde_json::Value> {
    td.get("containerDefinitions")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn name(c: &serde_json::Value) -> String {
    c.get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("?")
        .to_string()
}

fn launch(service: &Service) -> String {
    if let Some(l) = service.launch_type() {
        return match l {
            LaunchType::Fargate => "FARGATE".into(),
            other => other.as_str().to_string(),
        };
    }
    match service
        .capacity_provider_strategy()
        .first()
        .map(|p| p.capacity_provider())
    {
        Some(p) if p.starts_with("FARGATE") => "FARGATE".into(),
        Some(p) => format!("capacity provider {p}"),
        None => "EC2".into(),
    }
}

/// The service's target groups and their attributes. A refused
/// `elasticloadbalancing:Describe*` is an error naming the action.
async fn target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    service: &Service,
) -> anyhow::Result<Vec<TargetGroup>> {
    let arns: Vec<String> = service
        .load_balancers()
        .iter()
        .filter_map(|l| l.target_group_arn().map(str::to_string))
        .collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = elb
        .describe_target_groups()
        .set_target_group_arns(Some(arns.clone()))
        .send()
        .await
        .map_err(|e| {
            elb_error(
                "elasticloadbalancing:DescribeTargetGroups",
                &e,
                &arns.join(", "),
            )
        })?;
    let mut out = Vec::new();
    for g in described.target_groups() {
        let arn = g.target_group_arn().unwrap_or_default().to_string();
        let attrs = elb
            .describe_target_group_attributes()
            .target_group_arn(&arn)
            .send()
            .await
            .map_err(|e| {
                elb_error(
                    "elasticloadbalancing:DescribeTargetGroupAttributes",
                    &e,
                    &arn,
                )
            })?;
        let delay = attrs
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value()?.parse::<f64>().ok())
            .unwrap_or(300.0);
        out.push(TargetGroup {
            name: g.target_group_name().unwrap_or(&arn).to_string(),
            deregistration_delay: delay,
            interval: f64::from(g.health_check_interval_seconds().unwrap_or(30)),
            healthy_threshold: g.healthy_threshold_count().unwrap_or(5).max(0) as u32,
            timeout: f64::from(g.health_check_timeout_seconds().unwrap_or(5)),
            path: g.health_check_path().map(str::to_string),
            enabled: g.health_check_enabled().unwrap_or(true),
            arn,
        });
    }
    Ok(out)
}

/// An ELB answer the doctor cannot use: a refused permission names the action.
fn elb_error<E>(
    action: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
    arn: &str,
) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let f = crate::aws::classify(e);
    if f.kind == crate::aws::FailureKind::AccessDenied {
        anyhow::anyhow!(
            "AWS refused `{}` on target group {arn}: allow it (read-only) to see what paces the rollout",
            f.refused_action().unwrap_or(action)
        )
    } else {
        anyhow::anyhow!(
            "`{action}` on target group {arn} failed: {}: {}",
            f.code.as_deref().unwrap_or("error"),
            f.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(delay: f64, interval: f64) -> TargetGroup {
        TargetGroup {
            arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef".into(),
            name: "web".into(),
            deregistration_delay: delay,
            interval,
            healthy_threshold: 5,
            timeout: 5.0,
            path: Some("/health".into()),
            enabled: true,
        }
    }

    /// AWS's defaults: a 300 s delay, 30 s checks, stop timeout unset, a 400 MB image on Fargate, two tasks at 200/100.
    fn defaults() -> Inputs {
        Inputs {
            service: "web".into(),
            cluster: "c".into(),
            desired: 2,
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            launch: "FARGATE".into(),
            grace_seconds: Some(0),
            target_groups: vec![group(300.0, 30.0)],
            stops: vec![StopTimeout {
                container: "app".into(),
                seconds: 30.0,
                set: false,
            }],
            container_checks: vec![],
            image_bytes: Some(400_000_000),
        }
    }

    fn tuned() -> Inputs {
        Inputs {
            target_groups: vec![group(5.0, 5.0)],
            stops: vec![StopTimeout {
                container: "app".into(),
                seconds: 2.0,
                set: true,
            }],
            image_bytes: Some(100_000_000),
            ..defaults()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn one_batch_pulls_starts_checks_then_drains_and_stops() {
        let e = estimate(&defaults()).unwrap();
        let pull = 3.0 + 400.0 / 7.0;
        assert_eq!(e.batches, 1);
        assert!(close(e.pull, pull), "{e:?}");
        assert!(close(e.start_to_healthy, 1.0 + 30.0), "{e:?}");
        assert!(close(e.draining, 300.0 + 30.0), "{e:?}");
        assert!(close(e.waiting, 0.0), "{e:?}");
        assert!(close(e.seconds, pull + 31.0 + 330.0), "{e:?}");
        assert!(close(
            e.pull + e.start_to_healthy + e.draining + e.waiting,
            e.seconds
        ));
    }

    /// maximumPercent 100 with minimumHealthyPercent 50: one old task drains
    /// and stops before each new one can start, twice.
    #[test]
    fn without_room_to_surge_each_batch_drains_first() {
        let i = Inputs {
            minimum_healthy_percent: 50,
            maximum_percent: 100,
            ..defaults()
        };
        let e = estimate(&i).unwrap();
        let t = i.times();
        assert_eq!(e.batches, 2);
        let batch = t.drain + t.stop + t.pull + t.start + t.healthy;
        assert!(close(e.seconds, 2.0 * batch), "{e:?}");
        // The second drain runs beside nothing of ours after the first new task is healthy.
        assert!(close(e.draining, 2.0 * (t.drain + t.stop)), "{e:?}");
        // 100/100 lets nothing stop or start.
        let stuck = Inputs {
            minimum_healthy_percent: 100,
            maximum_percent: 100,
            ..defaults()
        };
        assert!(
            estimate(&stuck)
                .unwrap_err()
                .contains("neither stop nor start")
        );
        let dep005 = findings(&stuck, &[])
            .into_iter()
            .find(|s| s.check.as_deref() == Some("DEP005") && s.flagged)
            .unwrap();
        let text = notice("web", &dep005);
        assert!(
            text.contains("whose cost for this deploy the doctor cannot estimate")
                && !text.contains("0ms"),
            "{text}"
        );
    }

    #[test]
    fn four_tasks_at_150_percent_take_two_batches() {
        let i = Inputs {
            desired: 4,
            maximum_percent: 150,
            ..tuned()
        };
        let e = estimate(&i).unwrap();
        assert_eq!(e.batches, 2, "{e:?}");
        let t = i.times();
        assert!(
            close(
                e.seconds,
                2.0 * (t.pull + t.start + t.healthy + t.drain + t.stop)
            ),
            "{e:?}"
        );
    }

    /// A service whose settings already are what the guide recommends is
    /// not told to set them (the demo's 200 %/100 % service was).
    #[test]
    fn settings_already_as_recommended_are_not_recommended_again() {
        let check = |inputs: &Inputs, id: &str| {
            findings(inputs, &[])
                .into_iter()
                .find(|s| s.check.as_deref() == Some(id))
                .unwrap()
                .as_recommended
        };
        let tuned_group = TargetGroup {
            healthy_threshold: 2,
            ..group(5.0, 5.0)
        };
        let (defaults, tuned) = (
            defaults(),
            Inputs {
                target_groups: vec![tuned_group],
                ..tuned()
            },
        );
        assert!(
            check(&tuned, "DEP005") && check(&defaults, "DEP005"),
            "200 % / 100 %"
        );
        let tight = Inputs {
            maximum_percent: 100,
            ..tuned.clone()
        };
        assert!(!check(&tight, "DEP005"));
        for id in ["DEP001", "DEP002", "DEP003", "DEP004"] {
            assert!(check(&tuned, id) && !check(&defaults, id), "{id}");
        }
    }

    #[test]
    fn the_default_settings_are_named_with_their_cost_and_the_tuned_ones_are_not() {
        let found = findings(&defaults(), &[]);
        let flagged: Vec<&str> = found
            .iter()
            .filter(|s| s.flagged)
            .filter_map(|s| s.check.as_deref())
            .collect();
        assert_eq!(
            flagged,
            ["DEP001", "DEP004", "DEP003", "DEP002"],
            "{found:#?}"
        );
        let delay = &found[0];
        assert_eq!(delay.value, "300 s");
        assert!(close(delay.cost_seconds, 295.0), "{delay:?}");
        assert!(
            delay
                .change
                .contains("Key=deregistration_delay.timeout_seconds,Value=5")
                && delay.change.contains("targetgroup/web/")
        );
        let text = notice("web", delay);
        assert!(
            text.starts_with("DEP001 web: deregistration delay of target group web is 300 s, which costs this deploy about 4m 55s"),
            "{text}"
        );
        let stop = found
            .iter()
            .find(|s| s.check.as_deref() == Some("DEP003"))
            .unwrap();
        assert_eq!(stop.value, "30 s (not set: ECS's default)");
        assert!(close(stop.cost_seconds, 28.0), "{stop:?}");
        // The largest saving first.
        assert!(
            found
                .windows(2)
                .all(|w| w[0].cost_seconds >= w[1].cost_seconds)
        );

        assert!(
            findings(&tuned(), &[]).iter().all(|s| !s.flagged),
            "{:#?}",
            findings(&tuned(), &[])
        );
        // Silenced by id, still listed with its cost.
        let quiet = findings(&defaults(), &["DEP001".to_string()]);
        let delay = quiet
            .iter()
            .find(|s| s.check.as_deref() == Some("DEP001"))
            .unwrap();
        assert!(!delay.flagged && delay.cost_seconds > 290.0);
    }

    /// A setting whose value is beyond the range but costs this deploy
    /// nothing draws no notice: a long delay on a service without old tasks
    /// to drain is one.
    #[test]
    fn a_setting_that_costs_nothing_is_not_flagged() {
        let i = Inputs {
            desired: 0,
            ..defaults()
        };
        assert!(
            findings(&i, &[]).iter().all(|s| !s.flagged),
            "{:#?}",
            findings(&i, &[])
        );
    }

    #[test]
    fn without_a_load_balancer_ecs_waits_forty_seconds_or_the_container_check() {
        let i = Inputs {
            target_groups: vec![],
            container_checks: vec![],
            ..defaults()
        };
        assert!(close(i.times().healthy, 40.0));
        assert!(close(i.times().drain, 0.0));
        let checked = Inputs {
            container_checks: vec![("app".into(), 30.0)],
            ..i.clone()
        };
        assert!(close(checked.times().healthy, 30.0));
        let f = findings(&checked, &[]);
        let c = f
            .iter()
            .find(|s| s.check.as_deref() == Some("DEP006"))
            .unwrap();
        assert!(c.flagged && close(c.cost_seconds, 25.0), "{c:?}");
        // Behind a load balancer, the later of the two checks.
        let both = Inputs {
            container_checks: vec![("app".into(), 10.0)],
            ..tuned()
        };
        assert!(close(both.times().healthy, 10.0));
    }
}
