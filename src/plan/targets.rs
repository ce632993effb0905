//! A component's `targets:`: every place its one image runs (services, a
//! Lambda function, an Elastic Beanstalk environment, EventBridge rules,
//! Scheduler schedules), each item planned as the single-target keys plan
//! one, with the component's other keys (cluster, `env`, `before-deploy`)
//! shared. The config's own rules (one kind per item, no target twice, no
//! single-target key beside the list) are checked where the file is read.

use super::target::{
    Named, alarms, beanstalk, before_deploy, deploys_where, ecs, http_smoke, lambda_shift,
    smoke_test_event, with_config,
};
use super::*;
use crate::settings::component::{ComponentKeys, Source, Sourced};
use crate::settings::config::TargetItem;

/// The component's targets from its `targets:` list, or why it has none.
pub fn plan(
    settings: &Settings,
    keys: &ComponentKeys<'_>,
    list: Sourced<Vec<TargetItem>>,
) -> Result<super::target::Planned, BadInput> {
    let name = keys.name;
    let path = match &list.source {
        Source::Config(path) => path.clone(),
        Source::Input(key) => key.clone(),
    };
    for key in ["service", "function", "beanstalk-environment"] {
        if let Some(Sourced {
            value,
            source: Source::Input(_),
        }) = keys.get::<String>(key)?
        {
            return Err(BadInput::other(format!(
                "input `{key}` is {value:?}, but component `{name}` names its targets with `{path}` in the config; \
                 remove the input, or add the target to the list"
            )));
        }
    }
    let items = list.value;
    let kind = |i: &TargetItem| i.kinds().first().map(|(k, _)| *k).unwrap_or_default();
    let before = before_deploy(keys)?;
    if let Some((_, source)) = &before
        && !items.iter().any(|i| kind(i) == "service")
    {
        return Err(BadInput::other(format!(
            "{source} is set for component `{name}`, but `{path}` names no ECS `service`: `before-deploy` runs a one-off ECS task on the new revision \
             before the services move; remove it, or add a service to the list"
        )));
    }
    let function = items.iter().enumerate().find_map(|(i, item)| {
        Some(Sourced {
            value: item.function.clone()?,
            source: Source::Config(format!("{path}[{i}].function")),
        })
    });
    let smoke = smoke_test_event(keys, function.as_ref())?;
    let config = keys.runtime_config()?;
    let (env_name, mut watch) = match deploys_where(settings, keys) {
        Ok(w) => w,
        Err(why) => return Ok((Vec::new(), Some(why))),
    };
    // Each target is checked at the environment's URL; without one, every
    // target must have its own (an Elastic Beanstalk CNAME, an ECS test
    // listener; rules and schedules are not checked).
    let all_own = items.iter().all(|i| i.function.is_none());
    watch.smoke = http_smoke(settings, keys, all_own)?;
    watch.alarms = alarms(keys)?;
    if before.is_some() {
        runs_first(&items, &path)?;
    }
    let mut before = before.map(|(b, _)| b);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{path}[{i}]");
        let one = Item {
            settings,
            keys,
            env_name: &env_name,
            watch: &watch,
            at,
        };
        let order = item.order.unwrap_or(1);
        let target = match kind(&item) {
            "service" => one.service(item, before.take())?,
            "function" => one.function(item, smoke.clone(), &config)?,
            "beanstalk-environment" => {
                config.check_for_beanstalk()?;
                one.beanstalk(item)?
            }
            "rule" | "schedule" => one.trigger(item),
            other => unreachable!("the config admits no item of kind {other:?}"),
        };
        out.push((with_config(target, config.clone()), order));
    }
    Ok((out, None))
}

/// `before-deploy` runs with the first service, before any target moves:
/// no target may be in an earlier `order` group than that service.
fn runs_first(items: &[TargetItem], path: &str) -> Result<(), BadInput> {
    let group = |i: &TargetItem| i.order.unwrap_or(1);
    let Some((s, service)) = items.iter().enumerate().find(|(_, i)| i.service.is_some()) else {
        return Ok(());
    };
    let earlier = items
        .iter()
        .enumerate()
        .find(|(_, i)| i.rule.is_none() && i.schedule.is_none() && group(i) < group(service));
    match earlier {
        Some((e, item)) => Err(BadInput::other(format!(
            "`{path}[{e}]` is in order group {}, before `{path}[{s}]` (group {}), the service that runs `before-deploy`; \
             before-deploy runs before any target moves: put that service in the lowest group",
            group(item),
            group(service)
        ))),
        None => Ok(()),
    }
}

/// One item of the list, with what every item shares.
struct Item<'a> {
    settings: &'a Settings,
    keys: &'a ComponentKeys<'a>,
    env_name: &'a str,
    watch: &'a WatchPlan,
    /// `components.api.targets[2]`
    at: String,
}

impl Item<'_> {
    /// An ECS service; the first one runs `before-deploy`.
    fn service(
        &self,
        item: TargetItem,
        before: Option<BeforeDeploy>,
    ) -> Result<TargetPlan, BadInput> {
        let service = item.service.unwrap_or_default();
        let mut plan = ecs(
            self.settings,
            self.keys,
            service,
            self.env_name,
            before,
            self.watch.clone(),
        )?;
        if let (TargetPlan::Ecs(p), Some(containers)) = (&mut plan, item.container) {
            p.containers = containers;
        }
        Ok(plan)
    }

    fn function(
        &self,
        item: TargetItem,
        smoke_test_event: Option<String>,
        config: &crate::settings::runtime::RuntimeConfig,
    ) -> Result<TargetPlan, BadInput> {
        let at = &self.at;
        let function = item.function.unwrap_or_default();
        check_function_name(&function).map_err(|m| {
            BadInput::other(format!(
                "`{at}.function` is {function:?}, but it accepts {m}"
            ))
        })?;
        config.check_for_lambda(&function)?;
        let alias = match item.alias {
            Some(a) => a,
            None => self
                .keys
                .value("alias")?
                .unwrap_or_else(|| DEFAULT_ALIAS.to_string()),
        };
        check_alias_name(&alias).map_err(|m| {
            BadInput::other(format!("`{at}.alias` is {alias:?}, but it accepts {m}"))
        })?;
        Ok(TargetPlan::Lambda(LambdaPlan {
            function,
            alias,
            keep_revisions: self.settings.keep_revisions,
            config: Default::default(),
            smoke_test_event,
            shift: lambda_shift(self.keys, true)?,
            watch: self.watch.clone(),
        }))
    }

    fn beanstalk(&self, item: TargetItem) -> Result<TargetPlan, BadInput> {
        let at = |key: &str| Source::Config(format!("{}.{key}", self.at));
        let application = match item.beanstalk_application {
            Some(value) => Some(Sourced {
                value,
                source: at("beanstalk-application"),
            }),
            None => self.keys.get("beanstalk-application")?,
        };
        let named = Named {
            service: None,
            function: None,
            environment: item.beanstalk_environment.map(|value| Sourced {
                value,
                source: at("beanstalk-environment"),
            }),
            application,
            cname: match item.beanstalk_cname {
                Some(value) => Some(Sourced {
                    value,
                    source: at("beanstalk-cname"),
                }),
                None => self.keys.get("beanstalk-cname")?,
            },
        };
        let (keep, strategy) = (self.settings.keep_revisions, self.settings.strategy);
        beanstalk(
            self.keys,
            named,
            self.env_name,
            strategy,
            keep,
            self.watch.clone(),
        )
    }

    /// A rule or a schedule: its containers are the item's, else the
    /// component's `container`.
    fn trigger(&self, item: TargetItem) -> TargetPlan {
        let containers = item
            .container
            .or_else(|| self.keys.value("container").ok().flatten())
            .unwrap_or_default();
        let rule = item.rule.is_some();
        let plan = TriggerPlan {
            name: item.rule.or(item.schedule).unwrap_or_default(),
            at: self.at.clone(),
            within: item.event_bus.or(item.group),
            containers,
            config: Default::default(),
            watch: self.watch.clone(),
        };
        match rule {
            true => TargetPlan::Rule(plan),
            false => TargetPlan::Schedule(plan),
        }
    }
}
