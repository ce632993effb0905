//! Runtime configuration: what a component's targets get besides the
//! image. `env` (names to values) and `secrets` (names to where the value
//! lives: `ssm:/path`, `secretsmanager:name[:json-key]`), set on the
//! component and overridden per environment
//! (`environments.<env>.overrides.<name>.env`), the more specific layer
//! winning per name. Each setting keeps where it was written (key path,
//! line and column) so every error points at the line to edit.
//!
//! Names set here replace those of the target's current revision; names not
//! mentioned are kept. fastdeploy never reads a secret's value: the target
//! resolves it (ECS `secrets.valueFrom`, Elastic Beanstalk's environment
//! secrets), and the checks only ask that it exists.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::BadInput;

/// Where a secret's value lives. fastdeploy never reads the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "store", rename_all = "kebab-case")]
pub enum SecretRef {
    /// `ssm:/path` (a parameter name, or its ARN).
    Ssm { parameter: String },
    /// `secretsmanager:name[:json-key]` (a name, or its ARN).
    SecretsManager {
        secret: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        json_key: Option<String>,
    },
}

const SECRET_SPELLINGS: &str = "`ssm:/parameter/path` or `secretsmanager:secret-name[:json-key]` (a name or an ARN after the colon)";

impl SecretRef {
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let bad = || format!("{text:?} is not a secret reference; write {SECRET_SPELLINGS}");
        if let Some(p) = text.strip_prefix("ssm:") {
            return match p.trim() {
                "" => Err(bad()),
                p => Ok(SecretRef::Ssm {
                    parameter: p.to_string(),
                }),
            };
        }
        let Some(rest) = text.strip_prefix("secretsmanager:").map(str::trim) else {
            return Err(bad());
        };
        // An ARN has seven colon-separated fields
        // (arn:aws:secretsmanager:region:account:secret:name-suffix).
        let fields = if rest.starts_with("arn:") { 7 } else { 1 };
        let parts: Vec<&str> = rest.splitn(fields + 1, ':').collect();
        if parts.len() < fields || parts.iter().take(fields).any(|p| p.is_empty()) {
            return Err(bad());
        }
        let secret = parts[..fields].join(":");
        let json_key = parts.get(fields).map(|k| k.to_string());
        if json_key
            .as_deref()
            .is_some_and(|k| k.is_empty() || k.contains(':'))
        {
            return Err(format!(
                "{text:?}: after the secret comes one JSON key (`secretsmanager:name:key`), nothing more"
            ));
        }
        Ok(SecretRef::SecretsManager { secret, json_key })
    }

    /// As the config spells it.
    pub fn spelled(&self) -> String {
        match self {
            SecretRef::Ssm { parameter } => format!("ssm:{parameter}"),
            SecretRef::SecretsManager { secret, json_key } => match json_key {
                Some(k) => format!("secretsmanager:{secret}:{k}"),
                None => format!("secretsmanager:{secret}"),
            },
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = ConfigText::deserialize(d)?;
        SecretRef::parse(&text.0).map_err(de::Error::custom)
    }
}

/// A value of `env`: a YAML scalar, as its text (`8000` and `true` are
/// taken as written). A list, a mapping or an empty value is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigText(pub String);

impl<'de> Deserialize<'de> for ConfigText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = ConfigText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string (quote it; write \"\" for an empty value)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigText, E> {
                Ok(ConfigText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ConfigText, E> {
                Ok(ConfigText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigText, E> {
                Ok(ConfigText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigText, E> {
                Ok(ConfigText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigText, E> {
                // YAML reads `1.10` as the number 1.1: taking it would change
                // the value the user wrote.
                Err(E::custom(format!(
                    "YAML reads this value as the number {v}, which may not be what is written (1.10 is read as 1.1); quote it"
                )))
            }
        }
        d.deserialize_string(Text)
    }
}

/// `env` as a config layer writes it.
pub type EnvMap = indexmap::IndexMap<String, Spanned<ConfigText>>;
/// `secrets` as a config layer writes it.
pub type SecretMap = indexmap::IndexMap<String, Spanned<SecretRef>>;

/// Where a setting was written: its key path, and its line and column in
/// the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub path: String,
    /// The config file, as the run names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self
            .file
            .as_deref()
            .map(|f| format!("{f} "))
            .unwrap_or_default();
        write!(
            f,
            "`{}` ({file}line {}, column {})",
            self.path, self.line, self.column
        )
    }
}

/// One environment variable a target gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(skip)]
    pub value: String,
    /// The value as plans show it ([`show`]).
    pub shown: String,
    pub written: Written,
}

/// One secret a target gets, by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub name: String,
    pub reference: SecretRef,
    pub written: Written,
    /// What the target is given to resolve it (ECS `valueFrom`): the
    /// parameter's or secret's ARN, found by the checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<String>,
}

/// A component's runtime configuration in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
}

/// Whether a name looks like it holds a secret: its value is not shown.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "KEY",
        "CREDENTIAL",
        "PRIVATE",
        "DSN",
        "AUTH",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A value as plans and diffs show it.
pub fn show(name: &str, value: &str) -> String {
    if looks_secret(name) {
        "(hidden: the name looks secret)".to_string()
    } else {
        format!("{value:?}")
    }
}

impl RuntimeConfig {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.secrets.is_empty()
    }

    /// The config's layers merged, least specific first: each layer is
    /// (key path, its `env`, its `secrets`); a name set again replaces the
    /// earlier, whether as a value or a secret. One layer naming the same
    /// variable in `env` and `secrets` is bad input.
    pub fn merge(
        file: Option<&str>,
        layers: &[(String, &EnvMap, &SecretMap)],
    ) -> Result<RuntimeConfig, BadInput> {
        let written = |path: &str, key: &str, name: &str, line: u32, column: u32| Written {
            path: format!("{path}.{key}.{name}"),
            file: file.map(str::to_string),
            line,
            column,
        };
        let at = |s: &serde_saphyr::Location| (s.line() as u32, s.column() as u32);
        let mut out = RuntimeConfig::default();
        for (path, env, secrets) in layers {
            for (name, s) in secrets.iter() {
                if let Some(v) = env.get(name) {
                    return Err(BadInput::other(format!(
                        "{} and {} both set `{name}`; a variable is either a value (`env`) or a secret (`secrets`): keep one",
                        written(path, "env", name, at(&v.referenced).0, at(&v.referenced).1),
                        written(
                            path,
                            "secrets",
                            name,
                            at(&s.referenced).0,
                            at(&s.referenced).1
                        )
                    )));
                }
            }
            for (name, v) in env.iter() {
                let (line, column) = at(&v.referenced);
                check_name(name, &written(path, "env", name, line, column))?;
                out.secrets.retain(|s| &s.name != name);
                out.env.retain(|e| &e.name != name);
                out.env.push(EnvVar {
                    name: name.clone(),
                    value: v.value.0.clone(),
                    shown: show(name, &v.value.0),
                    written: written(path, "env", name, line, column),
                });
            }
            for (name, s) in secrets.iter() {
                let (line, column) = at(&s.referenced);
                check_name(name, &written(path, "secrets", name, line, column))?;
                out.env.retain(|e| &e.name != name);
                out.secrets.retain(|x| &x.name != name);
                out.secrets.push(Secret {
                    name: name.clone(),
                    reference: s.value.clone(),
                    written: written(path, "secrets", name, line, column),
                    value_from: None,
                });
            }
        }
        Ok(out)
    }

    /// Lambda: names its API accepts (letters, digits and `_`, starting
    /// with a letter) and not one of the names Lambda reserves; no
    /// `secrets` (Lambda has no reference a function's environment resolves).
    pub fn check_for_lambda(&self, function: &str) -> Result<(), BadInput> {
        if let Some(s) = self.secrets.first() {
            return Err(BadInput::other(format!(
                "{} sets secret `{}` for Lambda function `{function}`, but Lambda does not resolve secrets in a function's environment \
                 (its variables are stored with the function, readable to anyone who can read its configuration); \
                 read it in the function (the AWS Parameters and Secrets Lambda Extension, or the SDK), passing the name in `env` \
                 (e.g. `{}_PARAMETER: {}`)",
                s.written,
                s.name,
                s.name,
                match &s.reference {
                    SecretRef::Ssm { parameter } => parameter.clone(),
                    SecretRef::SecretsManager { secret, .. } => secret.clone(),
                }
            )));
        }
        for e in &self.env {
            let ok = e
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && e.name.len() >= 2
                && e.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(BadInput::other(format!(
                    "{}: Lambda accepts variable names of letters, digits and `_`, starting with a letter, at least two characters; rename `{}`",
                    e.written, e.name
                )));
            }
            if LAMBDA_RESERVED.contains(&e.name.as_str()) {
                return Err(BadInput::other(format!(
                    "{}: Lambda reserves `{}` and sets it itself (UpdateFunctionConfiguration refuses it); remove it or rename it",
                    e.written, e.name
                )));
            }
        }
        Ok(())
    }

    /// Elastic Beanstalk: environment property names its option settings
    /// accept, and secrets as whole secrets (EB takes an ARN, no JSON key).
    pub fn check_for_beanstalk(&self) -> Result<(), BadInput> {
        let keyed = self.secrets.iter().find(|s| {
            matches!(
                &s.reference,
                SecretRef::SecretsManager {
                    json_key: Some(_),
                    ..
                }
            )
        });
        if let Some(s) = keyed {
            return Err(BadInput::other(format!(
                "{}: secret `{}` names a JSON key ({}), but Elastic Beanstalk takes a secret by its ARN and sets the whole secret as the variable; \
                 drop the `:key`, or store that value as a secret or parameter of its own",
                s.written,
                s.name,
                s.reference.spelled()
            )));
        }
        let names = self
            .env
            .iter()
            .map(|e| (&e.name, &e.written))
            .chain(self.secrets.iter().map(|s| (&s.name, &s.written)));
        for (name, w) in names {
            let ok = name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:/+\\-@".contains(c));
            if !ok {
                return Err(BadInput::other(format!(
                    "{w}: Elastic Beanstalk environment property names hold letters, digits and _ . : / + \\ - @ (128 at most); rename `{name}`"
                )));
            }
        }
        Ok(())
    }
}

/// Names Lambda sets itself and refuses in a function's configuration
/// (Lambda developer guide, "Defined runtime environment variables").
pub const LAMBDA_RESERVED: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// A name every target accepts: not empty, no `=`, no spaces or control
/// characters (a process environment could not hold it).
fn check_name(name: &str, w: &Written) -> Result<(), BadInput> {
    if name.is_empty()
        || name.contains('=')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(BadInput::other(format!(
            "{w}: {name:?} is not a variable name; use letters, digits and `_` (no `=`, no spaces)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_are_parsed_as_build_secrets_spell_them() {
        assert_eq!(
            SecretRef::parse("ssm:/app/db").unwrap(),
            SecretRef::Ssm {
                parameter: "/app/db".into()
            }
        );
        assert_eq!(
            SecretRef::parse("secretsmanager:prod/app:password").unwrap(),
            SecretRef::SecretsManager {
                secret: "prod/app".into(),
                json_key: Some("password".into())
            }
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-AbCdEf";
        assert_eq!(
            SecretRef::parse(&format!("secretsmanager:{arn}:dsn")).unwrap(),
            SecretRef::SecretsManager {
                secret: arn.into(),
                json_key: Some("dsn".into())
            }
        );
        for bad in ["vault:x", "ssm:", "secretsmanager:", "/app/db"] {
            let e = SecretRef::parse(bad).unwrap_err();
            assert!(e.contains("ssm:/parameter/path"), "{bad}: {e}");
        }
        let e = SecretRef::parse("secretsmanager:a:b:c").unwrap_err();
        assert!(e.contains("one JSON key"), "{e}");
        assert_eq!(
            SecretRef::parse("secretsmanager:prod/app:password")
                .unwrap()
                .spelled(),
            "secretsmanager:prod/app:password"
        );
    }

    fn layers(text: &str, env: &str) -> Result<RuntimeConfig, String> {
        let c =
            crate::settings::config::Config::parse(text, std::path::Path::new("fastdeploy.yml"))
                .map_err(|e| e.to_string())?;
        let api = &c.components["api"];
        let mut layers = vec![("components.api".to_string(), &api.env, &api.secrets)];
        if let Some(o) = c.environments.get(env).and_then(|e| e.overrides.get("api")) {
            let path = format!("environments.{env}.overrides.api");
            layers.push((path, &o.env, &o.secrets));
        }
        RuntimeConfig::merge(None, &layers).map_err(|e| e.to_string())
    }

    const CONFIG: &str = "\
components:
  api:
    service: api
    env:
      LOG_LEVEL: info
      PORT: 8000
      DEBUG: false
    secrets:
      DATABASE_URL: ssm:/shop/staging/database-url
environments:
  production:
    branches: [main]
    overrides:
      api:
        env:
          LOG_LEVEL: warning
          DATABASE_URL: inline-now
        secrets:
          STRIPE_KEY: secretsmanager:prod/stripe:key
";

    #[test]
    fn the_environment_override_wins_per_name_and_keeps_where_each_was_written() {
        let staging = layers(CONFIG, "staging").unwrap();
        let env: Vec<(&str, &str)> = staging
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            env,
            [("LOG_LEVEL", "info"), ("PORT", "8000"), ("DEBUG", "false")]
        );
        assert_eq!(staging.secrets[0].name, "DATABASE_URL");
        assert_eq!(staging.secrets[0].written.line, 9);
        let prod = layers(CONFIG, "production").unwrap();
        let level = prod.env.iter().find(|e| e.name == "LOG_LEVEL").unwrap();
        assert_eq!(level.value, "warning");
        assert_eq!(
            level.written.path,
            "environments.production.overrides.api.env.LOG_LEVEL"
        );
        assert_eq!((level.written.line, level.written.column), (16, 22));
        // A value in the override replaces the component's secret of that name.
        assert!(prod.secrets.iter().all(|s| s.name != "DATABASE_URL"));
        assert!(prod.env.iter().any(|e| e.name == "DATABASE_URL"));
        assert_eq!(
            prod.secrets[0].reference.spelled(),
            "secretsmanager:prod/stripe:key"
        );
    }

    #[test]
    fn bad_values_and_spellings_are_errors_at_their_line() {
        let list = "components:\n  api:\n    env:\n      HOSTS: [a, b]\n";
        let e = layers(list, "x").unwrap_err();
        assert!(e.contains("4:") || e.contains("line 4"), "{e}");
        assert!(e.contains("expected one value"), "{e}");
        let as_written = "components:\n  api:\n    env:\n      VERSION: 1.10\n      CODE: 007\n      ON: yes\n      PORT: 8080\n";
        let c = layers(as_written, "x").unwrap();
        let values: Vec<(&str, &str)> = c
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [
                ("VERSION", "1.10"),
                ("CODE", "007"),
                ("ON", "yes"),
                ("PORT", "8080")
            ],
            "scalars are taken as written"
        );
        let empty = "components:\n  api:\n    env:\n      EMPTY:\n";
        let e = layers(empty, "x").unwrap_err();
        assert!(e.contains("no value here"), "{e}");
        let spelling = "components:\n  api:\n    secrets:\n      DB: vault:/x\n";
        let e = layers(spelling, "x").unwrap_err();
        assert!(e.contains("line 4") || e.contains("4:"), "{e}");
        assert!(e.contains("ssm:/parameter/path"), "{e}");
        let both = "components:\n  api:\n    env:\n      DB: x\n    secrets:\n      DB: ssm:/db\n";
        let e = layers(both, "x").unwrap_err();
        assert!(e.contains("line 4") && e.contains("line 6"), "{e}");
        assert!(e.contains("either a value"), "{e}");
        let spaced = "components:\n  api:\n    env:\n      \"A B\": x\n";
        let e = layers(spaced, "x").unwrap_err();
        assert!(
            e.contains("not a variable name") && e.contains("line 4"),
            "{e}"
        );
    }

    #[test]
    fn lambda_refuses_reserved_names_and_secrets_with_the_reason() {
        let reserved = layers("components:\n  api:\n    env:\n      AWS_REGION: x\n", "x").unwrap();
        let e = reserved.check_for_lambda("thumbs").unwrap_err().to_string();
        assert!(
            e.contains("reserves `AWS_REGION`") && e.contains("line 4"),
            "{e}"
        );
        let keyed = layers(CONFIG, "production").unwrap();
        let e = keyed.check_for_beanstalk().unwrap_err().to_string();
        assert!(e.contains("STRIPE_KEY") && e.contains("JSON key"), "{e}");
        let dotted = layers("components:\n  api:\n    env:\n      a.b: x\n", "x").unwrap();
        assert!(dotted.check_for_lambda("thumbs").is_err());
        assert!(dotted.check_for_beanstalk().is_ok());
        let secret = layers(CONFIG, "staging").unwrap();
        let e = secret.check_for_lambda("thumbs").unwrap_err().to_string();
        assert!(e.contains("Lambda does not resolve secrets"), "{e}");
        assert!(
            e.contains("DATABASE_URL_PARAMETER: /shop/staging/database-url"),
            "{e}"
        );
    }

    #[test]
    fn secret_looking_names_hide_their_values() {
        assert!(looks_secret("STRIPE_API_KEY"));
        assert!(looks_secret("db_password"));
        assert!(!looks_secret("LOG_LEVEL"));
        assert_eq!(show("LOG_LEVEL", "debug"), "\"debug\"");
        assert!(!show("SENTRY_DSN", "https://x@y").contains("https"));
    }
}
