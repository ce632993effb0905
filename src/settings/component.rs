//! A component's settings, every key looked up by one precedence rule (as
//! uv resolves its settings from its layers): the input (or CLI flag), then
//! the environment's override of the component
//! (`environments.<env>.overrides.<name>`), then the component in the
//! config (`components.<name>`), then the environment (`environments.<env>`:
//! its `cluster`), then the config's `defaults` (`cluster`, `platforms`).
//! Each value keeps where it came from, so an error names what to edit.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Settings;
use super::config::{Bundle, CommandLine};
use super::inputs::{RawInputs, split_list};
use super::runtime::{EnvMap, RuntimeConfig, SecretMap};
use crate::error::BadInput;

/// Keys an input may set only when the run selects one component: with
/// several, they would name one component's target for all of them.
pub const ONE_COMPONENT_INPUTS: &[&str] = &[
    "context",
    "dockerfile",
    "repository",
    "service",
    "container",
    "task-definition",
    "function",
    "alias",
    "before-deploy",
    "before-deploy-container",
    "beanstalk-application",
    "beanstalk-environment",
    "beanstalk-cname",
    "bundle",
    "allow-yellow",
    "smoke-test-event",
    "smoke-test-path",
    "lambda-shift",
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An input (or the CLI flag of the same name).
    Input(String),
    /// A key of the config file, by its path.
    Config(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Input(key) => write!(f, "input `{key}`"),
            Source::Config(path) => write!(f, "`{path}` in the config"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// A type a key can hold: read from an input's text, or from the config.
pub trait KeyValue: DeserializeOwned + Sized {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput>;
}

impl KeyValue for String {
    fn from_input(_: &str, text: &str) -> Result<Self, BadInput> {
        Ok(text.to_string())
    }
}

impl KeyValue for Vec<String> {
    fn from_input(_: &str, text: &str) -> Result<Self, BadInput> {
        Ok(split_list(text))
    }
}

impl KeyValue for bool {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(BadInput::invalid(key, other, "true or false")),
        }
    }
}

impl KeyValue for u64 {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        text.parse()
            .map_err(|_| BadInput::invalid(key, text, "a whole number"))
    }
}

impl KeyValue for Bundle {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        match text {
            "image" => Ok(Bundle::Image),
            "source" => Ok(Bundle::Source),
            other => Err(BadInput::invalid(key, other, "image | source")),
        }
    }
}

impl KeyValue for Vec<super::config::TargetItem> {
    fn from_input(key: &str, _: &str) -> Result<Self, BadInput> {
        Err(BadInput::other(format!(
            "`{key}` is a key of the config file (fastdeploy.yml), not an input: list the component's targets under `components.<name>.targets`"
        )))
    }
}

impl KeyValue for CommandLine {
    fn from_input(_: &str, text: &str) -> Result<Self, BadInput> {
        Ok(CommandLine::Line(text.to_string()))
    }
}

impl KeyValue for Vec<u16> {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        split_list(text)
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|_| BadInput::invalid(key, text, "port numbers (1-65535)"))
            })
            .collect()
    }
}

/// Minutes: a whole number (the range is the caller's to check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Minutes(pub u64);

impl KeyValue for Minutes {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        text.parse()
            .map(Minutes)
            .map_err(|_| BadInput::invalid(key, text, "a whole number from 1 to 360"))
    }
}

/// A Lambda event: an input's JSON text, or the config's mapping (or its
/// JSON text), as one JSON document.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct Event(pub serde_json::Value);

impl KeyValue for Event {
    fn from_input(key: &str, text: &str) -> Result<Self, BadInput> {
        serde_json::from_str(text)
            .map(Event)
            .map_err(|e| BadInput::other(format!(
                "input `{key}` is not JSON ({e}); give the event the function is invoked with, e.g. {{\"bucket\": \"uploads\", \"key\": \"smoke.jpg\"}}"
            )))
    }
}

/// Lines of text: an input's lines (blank ones and `#` comments dropped),
/// or the config's list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Lines(pub Vec<String>);

impl KeyValue for Lines {
    fn from_input(_: &str, text: &str) -> Result<Self, BadInput> {
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        Ok(Lines(lines.map(str::to_string).collect()))
    }
}

/// One component's keys, looked up through its layers.
#[derive(Debug, Clone)]
pub struct ComponentKeys<'a> {
    pub name: &'a str,
    /// Whether the component is in the config (else: a single-component run
    /// from inputs alone).
    pub configured: bool,
    inputs: &'a RawInputs,
    /// The config's layers, most specific first: (path, keys).
    layers: Vec<(String, Map<String, Value>)>,
    /// The layers' `env` and `secrets`, least specific first.
    runtime: Vec<(String, &'a EnvMap, &'a SecretMap)>,
    /// The config file they were read from.
    config_file: Option<&'a std::path::Path>,
}

impl<'a> ComponentKeys<'a> {
    /// The layers of component `name` in `settings` (its config section, if any).
    pub fn new(settings: &'a Settings, name: &'a str) -> ComponentKeys<'a> {
        let config = settings.config.as_ref();
        let env = settings.target.environment();
        let env_cfg = settings.environment_config();
        let object = |v: Value| match v {
            Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            _ => Map::new(),
        };
        let mut layers = Vec::new();
        let mut runtime = Vec::new();
        let component = config.and_then(|c| c.components.get(name));
        if let Some(c) = component {
            runtime.push((format!("components.{name}"), &c.env, &c.secrets));
        }
        if let (Some(env), Some(over)) = (env, env_cfg.and_then(|e| e.overrides.get(name))) {
            let keys = object(serde_json::to_value(over).unwrap_or_default());
            let path = format!("environments.{env}.overrides.{name}");
            runtime.push((path.clone(), &over.env, &over.secrets));
            layers.push((path, keys));
        }
        if let Some(c) = component {
            layers.push((
                format!("components.{name}"),
                object(serde_json::to_value(c).unwrap_or_default()),
            ));
        }
        if let (Some(env), Some(e)) = (env, env_cfg) {
            let keys = object(serde_json::json!({ "cluster": e.cluster }));
            layers.push((format!("environments.{env}"), keys));
        }
        if let Some(d) = config.map(|c| &c.defaults) {
            let keys =
                object(serde_json::json!({ "cluster": d.cluster, "platforms": d.platforms }));
            layers.push(("defaults".into(), keys));
        }
        ComponentKeys {
            name,
            configured: component.is_some(),
            inputs: &settings.raw,
            layers,
            runtime,
            config_file: settings.config_path.as_deref(),
        }
    }

    /// `env` and `secrets` of every layer, the environment's override
    /// winning per name.
    pub fn runtime_config(&self) -> Result<RuntimeConfig, BadInput> {
        let file = self.config_file.map(|p| p.display().to_string());
        RuntimeConfig::merge(file.as_deref(), &self.runtime)
    }

    /// `key`'s value and where it came from: the input, else the first
    /// layer of the config that sets it.
    pub fn get<T: KeyValue>(&self, key: &str) -> Result<Option<Sourced<T>>, BadInput> {
        if let Some(text) = self.inputs.get(key) {
            let value = T::from_input(key, text)?;
            return Ok(Some(Sourced {
                value,
                source: Source::Input(key.to_string()),
            }));
        }
        for (path, keys) in &self.layers {
            let Some(v) = keys.get(key) else { continue };
            let path = format!("{path}.{key}");
            let value = serde_json::from_value(v.clone())
                .map_err(|e| BadInput::other(format!("`{path}` in the config: {e}")))?;
            return Ok(Some(Sourced {
                value,
                source: Source::Config(path),
            }));
        }
        Ok(None)
    }

    /// `key`'s value, wherever it came from.
    pub fn value<T: KeyValue>(&self, key: &str) -> Result<Option<T>, BadInput> {
        Ok(self.get(key)?.map(|s| s.value))
    }

    /// The build args of every layer, the more specific winning per name:
    /// the component's, the environment's override, then the input's lines.
    pub fn build_args(&self) -> Result<BTreeMap<String, String>, BadInput> {
        let mut args = BTreeMap::new();
        for (_, keys) in self.layers.iter().rev() {
            if let Some(Value::Object(m)) = keys.get("build-args") {
                args.extend(
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))),
                );
            }
        }
        let Some(lines) = self.inputs.get("build-args") else {
            return Ok(args);
        };
        for line in lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| BadInput::invalid("build-args", line, "one KEY=VALUE per line"))?;
            args.insert(k.trim().to_string(), v.to_string());
        }
        Ok(args)
    }
}

impl Settings {
    /// The components the run selects (the `components` input, else all in
    /// the config, else the one the inputs describe), each with its keys.
    /// With several, an input that names one component's target is bad input.
    pub fn selected_components(&self) -> Result<Vec<ComponentKeys<'_>>, BadInput> {
        let all = self
            .config
            .as_ref()
            .map(|c| &c.components)
            .filter(|c| !c.is_empty());
        let Some(all) = all else {
            let name = self
                .components
                .first()
                .map(String::as_str)
                .unwrap_or(SINGLE_COMPONENT);
            return Ok(vec![ComponentKeys::new(self, name)]);
        };
        let names: Vec<&String> = if self.components.is_empty() {
            all.keys().collect()
        } else {
            self.components.iter().collect()
        };
        if names.len() > 1
            && let Some((key, value)) = ONE_COMPONENT_INPUTS
                .iter()
                .find_map(|k| Some((*k, self.raw.get(k)?)))
        {
            return Err(BadInput::invalid(
                key,
                value,
                "a value only when one component is selected; set it per component in the config instead",
            ));
        }
        Ok(names
            .into_iter()
            .map(|n| ComponentKeys::new(self, n))
            .collect())
    }
}

/// Name of the component in single-component use (no config components).
pub const SINGLE_COMPONENT: &str = "app";
