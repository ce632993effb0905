//! `plan --diff`: what a deploy would change on each target, read from
//! the target (read-only), and what drifted there since fastdeploy's last
//! deploy (a console edit the next render would carry forward). Values of
//! `env` are shown unless the name looks secret; a secret's value is never
//! read, only its reference compared.

use std::collections::BTreeMap;

use super::{Context, Image, beanstalk, ecs, lambda};
use crate::plan::TargetPlan;
use crate::settings::runtime::show;

/// One target's differences, in words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetDiff {
    /// The target: "ECS service shop in cluster demo".
    pub target: String,
    /// What the deploy would change.
    pub changes: Vec<String>,
    /// What differs in the live revision from what fastdeploy last deployed.
    pub drift: Vec<String>,
    /// Which two revisions the drift compares, in words.
    pub drift_between: Option<String>,
    /// What is not a change but worth knowing (the image, what was not compared).
    pub notes: Vec<String>,
}

impl TargetDiff {
    pub fn new(target: String) -> TargetDiff {
        TargetDiff {
            target,
            ..TargetDiff::default()
        }
    }

    /// Whether anything would change, or drifted.
    pub fn any(&self) -> bool {
        !self.changes.is_empty() || !self.drift.is_empty()
    }

    /// The diff as `plan --diff` prints it (and the job summary shows it).
    pub fn render(&self, component: &str) -> String {
        let mut s = format!("{component} → {}\n", self.target);
        let mut section = |title: &str, lines: &[String], none: &str| {
            s.push_str(&format!("  {title}:\n"));
            if lines.is_empty() {
                s.push_str(&format!("    {none}\n"));
            }
            for l in lines {
                s.push_str(&format!("    {l}\n"));
            }
        };
        section("the deploy changes", &self.changes, "nothing");
        let title = match &self.drift_between {
            Some(b) => format!("drift since fastdeploy's last deploy ({b})"),
            None => "drift since fastdeploy's last deploy".to_string(),
        };
        section(&title, &self.drift, "none");
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        s
    }
}

/// What a deploy of component `name` would change on `target`, with the
/// references of its runtime configuration found first (a missing one is
/// bad input, as for a deploy).
/// `image`: this commit's build, when known (built, or already in the
/// registry under its content tag).
pub async fn diff(
    cx: &Context<'_>,
    name: &str,
    target: &TargetPlan,
    image: Option<&Image>,
) -> anyhow::Result<TargetDiff> {
    let mut target = target.clone();
    let config = super::references::resolve(cx, name, target.config()).await?;
    *target.config_mut() = config;
    Ok(match &target {
        TargetPlan::Ecs(p) => ecs::diff::diff(cx, p, image).await?,
        TargetPlan::Lambda(p) => lambda::Function::new(p).diff(cx, image).await?,
        TargetPlan::Beanstalk(p) => {
            let mut d = TargetDiff::new(target.describe());
            d.changes = beanstalk::properties::diff(p, cx).await?;
            d.notes
                .push("the application version is replaced by this commit's build".into());
            d
        }
        TargetPlan::Rule(p) => super::trigger::Trigger::rule(p).diff(cx).await?,
        TargetPlan::Schedule(p) => super::trigger::Trigger::schedule(p).diff(cx).await?,
    })
}

/// The variables added, changed and removed from `before` to `after`, as
/// lines prefixed with `kind` (`env`, `secret`); `shown` tells whether
/// values may be shown (never for secrets' values: only references).
pub fn variables(
    kind: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let value = |name: &str, v: &str| match kind {
        "env" => show(name, v),
        _ => v.to_string(),
    };
    let mut out = Vec::new();
    for (name, v) in after {
        match before.get(name) {
            None => out.push(format!("{kind} {name} added: {}", value(name, v))),
            Some(old) if old != v => out.push(format!(
                "{kind} {name} changed: {} → {}",
                value(name, old),
                value(name, v)
            )),
            Some(_) => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        out.push(format!("{kind} {name} removed"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_say_what_was_added_changed_and_removed_hiding_secret_looking_values() {
        let before = map(&[("LOG_LEVEL", "info"), ("API_TOKEN", "abc"), ("OLD", "1")]);
        let after = map(&[("LOG_LEVEL", "debug"), ("API_TOKEN", "def"), ("NEW", "x")]);
        let lines = variables("env", &before, &after);
        assert!(
            lines.contains(&"env LOG_LEVEL changed: \"info\" → \"debug\"".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"env NEW added: \"x\"".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"env OLD removed".to_string()), "{lines:?}");
        let token = lines.iter().find(|l| l.contains("API_TOKEN")).unwrap();
        assert!(!token.contains("abc") && !token.contains("def"), "{token}");
        assert!(variables("env", &after, &after).is_empty());
    }
}
