//! One component's deploy target in this run, or why it has none: an ECS
//! service (with its one-off task), a Lambda function, or an Elastic
//! Beanstalk environment — at most one, every key read through the
//! settings' one precedence rule, each error naming where a value came from.

use super::*;
use crate::settings::component::{ComponentKeys, Event, Minutes, Source, Sourced};
use crate::settings::config::CommandLine;
use crate::settings::runtime::RuntimeConfig;

/// The target keys a component set, with where each came from.
pub(super) struct Named {
    pub service: Option<Sourced<String>>,
    pub function: Option<Sourced<String>>,
    pub environment: Option<Sourced<String>>,
    pub application: Option<Sourced<String>>,
    /// `beanstalk-cname` (`strategy: swap`).
    pub cname: Option<Sourced<String>>,
}

/// A component's targets in this run, each with its `order` group, or
/// why it has none.
pub type Planned = (Vec<(TargetPlan, u32)>, Option<String>);

/// The component's targets in this run (one, or its `targets:`), or why
/// it has none.
pub fn plan(settings: &Settings, keys: &ComponentKeys<'_>) -> Result<Planned, BadInput> {
    match keys.get("targets")? {
        Some(list) => super::targets::plan(settings, keys, list),
        None => {
            single(settings, keys).map(|(t, why)| (t.into_iter().map(|t| (t, 1)).collect(), why))
        }
    }
}

/// Where the component deploys in this run, and how it is followed; `Err`:
/// why it deploys nowhere.
pub(super) fn deploys_where(
    settings: &Settings,
    keys: &ComponentKeys<'_>,
) -> Result<(String, WatchPlan), String> {
    let Some(env_name) = settings.target.environment() else {
        return Err(format!("build only: {}", settings.target.reason()));
    };
    let deploys_here = settings
        .environment_config()
        .and_then(|e| e.components.as_ref())
        .is_none_or(|list| list.iter().any(|c| c == keys.name));
    if !deploys_here {
        return Err(format!("not in `environments.{env_name}.components`"));
    }
    let watch = WatchPlan {
        wait_seconds: settings.wait_minutes * 60,
        poll_seconds: settings.poll_seconds,
        rollback: settings.rollback,
        smoke: None,
        alarms: None,
    };
    Ok((env_name.to_string(), watch))
}

/// `smoke-test-path` against the environment's URL (`environment-url`, else
/// `environments.<env>.url`); without one only an Elastic Beanstalk target
/// (its CNAME) or an ECS service (its test listener, checked at preflight)
/// may have a URL of its own, which `own_url` says.
pub(super) fn http_smoke(
    settings: &Settings,
    keys: &ComponentKeys<'_>,
    own_url: bool,
) -> Result<Option<HttpSmoke>, BadInput> {
    let Some(path) = keys.get::<String>("smoke-test-path")? else {
        return Ok(None);
    };
    let source = path.source.to_string();
    if !path.value.starts_with('/') {
        return Err(BadInput::other(format!(
            "{source} is `{}`: give a path on the environment's URL, starting with `/` (e.g. /health)",
            path.value
        )));
    }
    let base = settings
        .environment_url
        .clone()
        .or_else(|| settings.environment_config().and_then(|e| e.url.clone()));
    if base.is_none() && !own_url {
        return Err(BadInput::other(format!(
            "{source} is set for component `{}`, but there is no URL to reach: set `environment-url` (or `environments.<env>.url` in the config); an Elastic Beanstalk environment is checked at its own URL, an ECS blue/green service at its test listener",
            keys.name
        )));
    }
    Ok(Some(HttpSmoke {
        path: path.value,
        base,
        seconds: settings.smoke_test_seconds,
    }))
}

/// `alarms` and `bake-minutes`: the CloudWatch alarms the deploy watches
/// (checked to exist at preflight), or why the list cannot be one.
pub(super) fn alarms(keys: &ComponentKeys<'_>) -> Result<Option<AlarmPlan>, BadInput> {
    let bake = keys.get::<u64>("bake-minutes")?;
    if let Some(b) = &bake
        && b.value > 180
    {
        return Err(BadInput::other(format!(
            "{} is {}: give the minutes to watch the alarms after the rollout, from 0 to 180",
            b.source, b.value
        )));
    }
    let Some(list) = keys.get::<Vec<String>>("alarms")? else {
        return match bake {
            Some(b) if b.value > 0 => Err(BadInput::other(format!(
                "{} is {} for component `{}`, but it has no `alarms` to watch: name the CloudWatch alarms that say the deploy hurts (or a prefix ending in `*`), or remove bake-minutes",
                b.source, b.value, keys.name
            ))),
            _ => Ok(None),
        };
    };
    let source = list.source.to_string();
    let (mut names, mut prefixes) = (Vec::new(), Vec::new());
    for entry in list
        .value
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
    {
        let (name, prefix) = match entry.strip_suffix('*') {
            Some(p) => (p, true),
            None => (entry, false),
        };
        if name.is_empty() || name.contains('*') || name.chars().count() > 255 {
            return Err(BadInput::other(format!(
                "{source} has `{entry}`: give CloudWatch alarm names (up to 255 characters), or a prefix followed by one `*` (e.g. shop-prod-*); `*` alone would watch every alarm in the account"
            )));
        }
        if prefix { &mut prefixes } else { &mut names }.push(name.to_string());
    }
    if names.is_empty() && prefixes.is_empty() {
        return Err(BadInput::other(format!(
            "{source} is empty: name the CloudWatch alarms to watch, or remove it"
        )));
    }
    Ok(Some(AlarmPlan {
        names,
        prefixes,
        bake_seconds: bake.map_or(0, |b| b.value * 60),
        source,
    }))
}

/// The component's one target (the single-target keys), or why it has none.
fn single(
    settings: &Settings,
    keys: &ComponentKeys<'_>,
) -> Result<(Option<TargetPlan>, Option<String>), BadInput> {
    let name = keys.name;
    let named = Named {
        service: keys.get("service")?,
        function: keys.get("function")?,
        environment: keys.get("beanstalk-environment")?,
        application: keys.get("beanstalk-application")?,
        cname: keys.get("beanstalk-cname")?,
    };
    one_target(name, &named)?;
    let alias = keys.get::<String>("alias")?;
    if let Some(f) = &named.function {
        check_function_name(&f.value).map_err(|m| invalid(f, &m))?;
        if let Some(a) = &alias {
            check_alias_name(&a.value).map_err(|m| invalid(a, &m))?;
        }
    }
    let before_deploy = before_deploy(keys)?;
    let smoke_test_event = smoke_test_event(keys, named.function.as_ref())?;
    if named.function.is_none() {
        lambda_shift(keys, false)?;
    }
    let config = keys.runtime_config()?;
    if let Some(f) = &named.function {
        config.check_for_lambda(&f.value)?;
    }
    if let Some((_, source)) = &before_deploy
        && (named.function.is_some() || named.service.is_none())
    {
        let target = match &named.function {
            Some(f) => format!("it deploys to Lambda function `{}`", f.value),
            None => "it names no ECS `service`".to_string(),
        };
        return Err(BadInput::other(format!(
            "{source} is set for component `{name}`, but {target}: `before-deploy` runs a one-off ECS task on the new revision \
             before the service update; remove it, or run the command in the image's own start-up"
        )));
    }
    let (env_name, mut watch) = match deploys_where(settings, keys) {
        Ok(w) => w,
        Err(why) => return Ok((None, Some(why))),
    };
    let beanstalk_target = named.function.is_none()
        && (named.environment.is_some()
            || (named.application.is_some() && named.service.is_none()));
    let service_target = named.function.is_none() && !beanstalk_target && named.service.is_some();
    watch.smoke = http_smoke(settings, keys, beanstalk_target || service_target)?;
    watch.alarms = alarms(keys)?;
    let env_name = env_name.as_str();
    if let Some(f) = named.function {
        let alias = alias
            .map(|a| a.value)
            .unwrap_or_else(|| DEFAULT_ALIAS.to_string());
        let shift = lambda_shift(keys, true)?;
        let lambda = LambdaPlan {
            function: f.value,
            alias,
            keep_revisions: settings.keep_revisions,
            config,
            smoke_test_event,
            shift,
            watch,
        };
        return Ok((Some(TargetPlan::Lambda(lambda)), None));
    }
    if named.environment.is_some() || (named.application.is_some() && named.service.is_none()) {
        config.check_for_beanstalk()?;
        let keep = settings.keep_revisions;
        return beanstalk(keys, named, env_name, settings.strategy, keep, watch)
            .map(|p| (Some(with_config(p, config)), None));
    }
    let Some(service) = named.service else {
        let why =
            "no `service`, `function` or `beanstalk-environment` given: built and pushed only";
        return Ok((None, Some(why.to_string())));
    };
    let before_deploy = before_deploy.map(|(b, _)| b);
    ecs(
        settings,
        keys,
        service.value,
        env_name,
        before_deploy,
        watch,
    )
    .map(|p| (Some(with_config(p, config)), None))
}

/// The target's plan with the component's runtime configuration.
pub(super) fn with_config(mut p: TargetPlan, config: RuntimeConfig) -> TargetPlan {
    match &mut p {
        TargetPlan::Ecs(e) => e.config = config,
        TargetPlan::Lambda(l) => l.config = config,
        TargetPlan::Beanstalk(b) => b.config = config,
        TargetPlan::Rule(t) | TargetPlan::Schedule(t) => t.config = config,
    }
    p
}

pub(super) fn invalid(s: &Sourced<String>, accepts: &str) -> BadInput {
    BadInput::other(format!(
        "{} is {:?}, but it accepts {accepts}",
        s.source, s.value
    ))
}

/// A component deploys to one target at most.
fn one_target(name: &str, n: &Named) -> Result<(), BadInput> {
    if let (Some(service), Some(function)) = (&n.service, &n.function) {
        return Err(BadInput::other(format!(
            "component `{name}` names two deploy targets, ECS service `{}` ({}) and Lambda function `{}` ({}); \
             a component deploys to one: keep `service` or `function`, or split it into two components",
            service.value, service.source, function.value, function.source
        )));
    }
    let Some(environment) = &n.environment else {
        return Ok(());
    };
    let other = match (&n.service, &n.function) {
        (Some(s), _) => format!("ECS service `{}` ({})", s.value, s.source),
        (None, Some(f)) => format!("Lambda function `{}` ({})", f.value, f.source),
        (None, None) => return Ok(()),
    };
    Err(BadInput::other(format!(
        "component `{name}` names two deploy targets, {other} and Elastic Beanstalk environment `{}` ({}); \
         a component deploys to one: keep one, or split it into two components",
        environment.value, environment.source
    )))
}

/// An Elastic Beanstalk environment, with its application.
pub(super) fn beanstalk(
    keys: &ComponentKeys<'_>,
    named: Named,
    env_name: &str,
    strategy: Strategy,
    keep_revisions: Option<u64>,
    watch: WatchPlan,
) -> Result<TargetPlan, BadInput> {
    let name = keys.name;
    let cname = named.cname.clone();
    let (environment, application, swap) = match (named.environment, named.application) {
        (Some(e), Some(a)) => {
            let swap = swap(name, &e, cname, strategy)?;
            (e.value, a.value, swap)
        }
        (Some(e), None) => {
            return Err(BadInput::Missing {
                name: "beanstalk-application".into(),
                why: format!(
                    "to deploy component `{name}` to Elastic Beanstalk environment `{}` ({}); \
                     name the environment's application: the `beanstalk-application` input, or `beanstalk-application` for the component in the config",
                    e.value, e.source
                ),
            });
        }
        (None, a) => {
            let (application, source) = a
                .map(|a| (a.value, a.source.to_string()))
                .unwrap_or_default();
            return Err(BadInput::Missing {
                name: "beanstalk-environment".into(),
                why: format!(
                    "to deploy component `{name}` to Elastic Beanstalk application `{application}` ({source}) in `{env_name}`; \
                     name the environment (input `beanstalk-environment`, or `beanstalk-environment` under the component or `environments.{env_name}.overrides.{name}` in the config)"
                ),
            });
        }
    };
    let ports = keys.value::<Vec<u16>>("ports")?.unwrap_or_default();
    if let Some(p) = ports.iter().find(|p| **p == 0) {
        return Err(BadInput::other(format!(
            "`ports` of component `{name}` holds {p}; give the container ports the image listens on (1-65535)"
        )));
    }
    Ok(TargetPlan::Beanstalk(BeanstalkPlan {
        application,
        environment,
        bundle: keys.value("bundle")?.unwrap_or_default(),
        allow_yellow: keys.value("allow-yellow")?.unwrap_or(false),
        ports,
        keep_revisions,
        config: RuntimeConfig::default(),
        watch,
        swap,
    }))
}

/// `strategy: swap`'s pair and CNAME, or why `environment` and `cname`
/// do not make one (and, without swap, that they name one environment).
fn swap(
    name: &str,
    environment: &Sourced<String>,
    cname: Option<Sourced<String>>,
    strategy: Strategy,
) -> Result<Option<SwapPlan>, BadInput> {
    let names: Vec<&str> = environment
        .value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let source = &environment.source;
    if strategy != Strategy::Swap {
        if names.len() > 1 {
            return Err(BadInput::other(format!(
                "{source} names {} environments ({}): set `strategy: swap` to deploy to the idle one and swap CNAMEs, or name one",
                names.len(),
                names.join(", ")
            )));
        }
        if let Some(c) = cname {
            return Err(BadInput::other(format!(
                "{} is set for component `{name}`, but `strategy` is not swap: the CNAME is only swapped between two environments; set `strategy: swap` or remove it",
                c.source
            )));
        }
        return Ok(None);
    }
    let [a, b] = names[..] else {
        return Err(BadInput::other(format!(
            "{source} is `{}`, but `strategy: swap` needs exactly two environments of one application, the live one and the idle one: e.g. shop-blue,shop-green",
            environment.value
        )));
    };
    if a == b {
        return Err(BadInput::other(format!(
            "{source} names `{a}` twice: `strategy: swap` needs two different environments"
        )));
    }
    let Some(cname) = cname else {
        return Err(BadInput::Missing {
            name: "beanstalk-cname".into(),
            why: format!(
                "to swap component `{name}` between `{a}` and `{b}`: name the live CNAME's prefix (shop for shop.us-east-1.elasticbeanstalk.com), input `beanstalk-cname` or `beanstalk-cname` in the config"
            ),
        });
    };
    let prefix = cname.value.trim().trim_end_matches('.');
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(BadInput::other(format!(
            "{} is `{}`: give the CNAME's prefix only (letters, digits and hyphens: shop for shop.us-east-1.elasticbeanstalk.com)",
            cname.source, cname.value
        )));
    }
    Ok(Some(SwapPlan {
        pair: [a.to_string(), b.to_string()],
        cname: prefix.to_string(),
    }))
}

/// An ECS service in its cluster.
pub(super) fn ecs(
    settings: &Settings,
    keys: &ComponentKeys<'_>,
    service: String,
    env_name: &str,
    before_deploy: Option<BeforeDeploy>,
    watch: WatchPlan,
) -> Result<TargetPlan, BadInput> {
    let name = keys.name;
    let cluster = keys.value::<String>("cluster")?.ok_or_else(|| BadInput::Missing {
        name: "cluster".into(),
        why: format!(
            "to deploy component `{name}` to service `{service}` in `{env_name}`; set the `cluster` input or `environments.{env_name}.cluster` in the config"
        ),
    })?;
    if settings.strategy == Strategy::Swap {
        return Err(BadInput::other(format!(
            "input `strategy` is swap, Elastic Beanstalk's CNAME swap, but component `{name}` deploys to ECS service `{service}`: use `strategy: blue-green` (new tasks beside the old) or `service`"
        )));
    }
    let ws = &settings.context.workspace;
    Ok(TargetPlan::Ecs(EcsPlan {
        cluster,
        service,
        containers: keys.value("container")?.unwrap_or_default(),
        task_definition_file: keys
            .value::<String>("task-definition")?
            .map(|p| normalize(&ws.join(p))),
        strategy: settings.strategy,
        wait_until: settings.wait_until,
        keep_revisions: settings.keep_revisions,
        before_deploy,
        config: RuntimeConfig::default(),
        watch,
    }))
}

/// `smoke-test-event` as JSON text: Lambda only (it invokes the new
/// version). A string in the config is taken as JSON text.
pub(super) fn smoke_test_event(
    keys: &ComponentKeys<'_>,
    function: Option<&Sourced<String>>,
) -> Result<Option<String>, BadInput> {
    let Some(Sourced {
        value: Event(event),
        source,
    }) = keys.get::<Event>("smoke-test-event")?
    else {
        return Ok(None);
    };
    if function.is_none() {
        return Err(BadInput::other(format!(
            "{source} is set for component `{}`, which deploys to no Lambda function: `smoke-test-event` invokes the new Lambda version before its alias moves; remove it",
            keys.name
        )));
    }
    let event = match event {
        serde_json::Value::String(text) => serde_json::from_str(&text).map_err(|e| {
            BadInput::other(format!(
                "{source} is not JSON ({e}); give the event as a mapping, or as JSON text"
            ))
        })?,
        other => other,
    };
    Ok(Some(event.to_string()))
}

/// `lambda-shift` (`10%/5m`): the share of the alias's invocations the new
/// version takes, and for how long, before all of them.
pub(super) fn lambda_shift(
    keys: &ComponentKeys<'_>,
    lambda: bool,
) -> Result<Option<Shift>, BadInput> {
    let Some(Sourced { value, source }) = keys.get::<String>("lambda-shift")? else {
        return Ok(None);
    };
    if !lambda {
        return Err(BadInput::other(format!(
            "{source} is set for component `{}`, which deploys to no Lambda function: `lambda-shift` moves a Lambda alias gradually; remove it",
            keys.name
        )));
    }
    let bad = || {
        BadInput::other(format!(
            "{source} is `{value}`: give the share of invocations and the minutes to watch it, as `10%/5m` (1-99 %, 1-60 minutes)"
        ))
    };
    let (share, window) = value.trim().split_once('/').ok_or_else(bad)?;
    let percent: u8 = share
        .trim()
        .strip_suffix('%')
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(bad)?;
    let minutes: u64 = window
        .trim()
        .strip_suffix('m')
        .and_then(|m| m.trim().parse().ok())
        .ok_or_else(bad)?;
    if !(1..=99).contains(&percent) || !(1..=60).contains(&minutes) {
        return Err(bad());
    }
    Ok(Some(Shift {
        percent,
        seconds: minutes * 60,
    }))
}

/// `before-deploy` and its settings, with where the command came from.
pub(super) fn before_deploy(
    keys: &ComponentKeys<'_>,
) -> Result<Option<(BeforeDeploy, String)>, BadInput> {
    let Some(Sourced {
        value: command,
        source,
    }) = keys.get::<CommandLine>("before-deploy")?
    else {
        return Ok(None);
    };
    let source = source.to_string();
    let words = match command {
        CommandLine::Line(line) => shell_words::split(&line).map_err(|e| {
            BadInput::other(format!(
                "{source} is {line:?}, which cannot be split into words as a shell would ({e}); close the quote"
            ))
        })?,
        CommandLine::Words(words) => words,
    };
    if words.iter().all(|w| w.trim().is_empty()) {
        return Err(BadInput::other(format!(
            "{source} is empty; give the command to run before the deploy (e.g. `python manage.py migrate`) or remove it"
        )));
    }
    let minutes = match keys.get::<Minutes>("before-deploy-minutes")? {
        None => 30,
        Some(Sourced {
            value: Minutes(m), ..
        }) if (1..=360).contains(&m) => m,
        Some(Sourced {
            value: Minutes(m),
            source: Source::Input(_),
        }) => {
            let text = m.to_string();
            return Err(BadInput::invalid(
                "before-deploy-minutes",
                &text,
                "a whole number from 1 to 360",
            ));
        }
        Some(Sourced {
            value: Minutes(m), ..
        }) => {
            return Err(BadInput::other(format!(
                "`before-deploy-minutes` of component `{}` in the config is {m}, but it accepts a whole number from 1 to 360",
                keys.name
            )));
        }
    };
    let container = keys.value("before-deploy-container")?;
    Ok(Some((
        BeforeDeploy {
            command: words,
            container,
            wait_seconds: minutes * 60,
        },
        source,
    )))
}
