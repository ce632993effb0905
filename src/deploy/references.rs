//! The runtime configuration's references, checked before anything is
//! built or pushed: every parameter (SSM Parameter Store, `GetParameter`
//! without decryption) and secret (Secrets Manager, `DescribeSecret`) the
//! config names exists, and is found by the ARN ECS's `valueFrom` takes;
//! and, where IAM lets the deploy role ask (`SimulatePrincipalPolicy`), the
//! ECS task execution role may read each one. fastdeploy never reads a
//! secret's value.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Context;
use crate::aws::{FailureKind, classify};
use crate::error::BadInput;
use crate::gha::Location;
use crate::settings::runtime::{RuntimeConfig, Secret, SecretRef};

/// `config` with every secret's `value_from` found; a reference that does
/// not exist is bad input naming the component, the variable and the
/// reference.
pub async fn resolve(
    cx: &Context<'_>,
    component: &str,
    config: &RuntimeConfig,
) -> anyhow::Result<RuntimeConfig> {
    let mut out = config.clone();
    for s in out.secrets.iter_mut() {
        s.value_from = Some(match &s.reference {
            SecretRef::Ssm { parameter } => parameter_arn(cx, component, s, parameter).await?,
            SecretRef::SecretsManager { secret, json_key } => {
                let arn = secret_arn(cx, component, s, secret).await?;
                match json_key {
                    // ECS: arn:...:secret:name-AbCdEf:json-key:version-stage:version-id
                    Some(k) => format!("{arn}:{k}::"),
                    None => arn,
                }
            }
        });
    }
    Ok(out)
}

fn missing(component: &str, s: &Secret, what: &str) -> anyhow::Error {
    BadInput::other(format!(
        "component `{component}`: secret `{}` names {what}, which does not exist in this account and region; \
         create it, or fix {}",
        s.name, s.written
    ))
    .into()
}

fn unreadable(
    component: &str,
    s: &Secret,
    action: &str,
    what: &str,
    message: &str,
) -> anyhow::Error {
    BadInput::other(format!(
        "component `{component}`: fastdeploy checks that secret `{}` ({}) exists before building, but AWS refused `{action}` on {what} \
         for the credentials in use ({message}); allow `{action}` on it in the deploy role's policy (it reads no value)",
        s.name,
        s.reference.spelled(),
    ))
    .into()
}

async fn parameter_arn(
    cx: &Context<'_>,
    component: &str,
    s: &Secret,
    parameter: &str,
) -> anyhow::Result<String> {
    let what = format!("SSM parameter {parameter}");
    let got = cx
        .clients
        .ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(false)
        .send()
        .await;
    match got {
        Ok(o) => Ok(o
            .parameter()
            .and_then(|p| p.arn())
            .unwrap_or(parameter)
            .to_string()),
        Err(e) if e.code() == Some("ParameterNotFound") => Err(missing(component, s, &what)),
        Err(e) => {
            let f = classify(&e);
            if f.kind == FailureKind::AccessDenied {
                return Err(unreadable(
                    component,
                    s,
                    "ssm:GetParameter",
                    &what,
                    &f.message,
                ));
            }
            Err(f.explain("ssm:GetParameter", &what))
        }
    }
}

async fn secret_arn(
    cx: &Context<'_>,
    component: &str,
    s: &Secret,
    secret: &str,
) -> anyhow::Result<String> {
    let what = format!("Secrets Manager secret {secret}");
    let got = cx
        .clients
        .secrets
        .describe_secret()
        .secret_id(secret)
        .send()
        .await;
    match got {
        Ok(o) if o.deleted_date().is_some() => Err(BadInput::other(format!(
            "component `{component}`: secret `{}` names {what}, which is scheduled for deletion; restore it (RestoreSecret) or fix {}",
            s.name, s.written
        ))
        .into()),
        Ok(o) => Ok(o.arn().unwrap_or(secret).to_string()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => {
            Err(missing(component, s, &what))
        }
        Err(e) => {
            let f = classify(&e);
            if f.kind == FailureKind::AccessDenied {
                let action = "secretsmanager:DescribeSecret";
                return Err(unreadable(component, s, action, &what, &f.message));
            }
            Err(f.explain("secretsmanager:DescribeSecret", &what))
        }
    }
}

/// The IAM action ECS's agent calls to read a reference.
fn read_action(s: &Secret) -> &'static str {
    match s.reference {
        SecretRef::Ssm { .. } => "ssm:GetParameters",
        SecretRef::SecretsManager { .. } => "secretsmanager:GetSecretValue",
    }
}

/// The ARN IAM evaluates for a reference: the secret's, without the JSON
/// key ECS's `valueFrom` carries.
fn resource_arn(s: &Secret) -> Option<String> {
    let v = s.value_from.as_deref()?;
    Some(match &s.reference {
        SecretRef::SecretsManager {
            json_key: Some(_), ..
        } => v.split(':').take(7).collect::<Vec<_>>().join(":"),
        _ => v.to_string(),
    })
}

/// ECS reads a task's secrets with its task execution role: that it has
/// one, and (where the deploy role may simulate its policies) that it is
/// allowed to read each. A denial is bad input; a simulation IAM refuses is
/// a notice that it could not be checked.
pub async fn execution_role_reads(
    cx: &Context<'_>,
    target: &str,
    family: &str,
    role: Option<&str>,
    config: &RuntimeConfig,
) -> anyhow::Result<()> {
    if config.secrets.is_empty() {
        return Ok(());
    }
    let Some(role) = role else {
        return Err(BadInput::other(format!(
            "{target} gets secrets ({}), but task definition family {family} has no `executionRoleArn`; \
             ECS reads secrets with the task execution role: give the task definition one that may read them",
            names(config.secrets.iter())
        ))
        .into());
    };
    let mut denied = Vec::new();
    for s in &config.secrets {
        let Some(resource) = resource_arn(s) else {
            continue;
        };
        let asked = cx
            .clients
            .iam
            .simulate_principal_policy()
            .policy_source_arn(role)
            .action_names(read_action(s))
            .resource_arns(&resource)
            .send()
            .await;
        let answer = match asked {
            Ok(a) => a,
            Err(e) => {
                let f = classify(&e);
                cx.actions.notice(
                    &format!(
                        "could not check that task execution role {role} may read the secrets of {target}: \
                         `iam:SimulatePrincipalPolicy` answered {}: {}; allow it to the deploy role to have this checked before building",
                        f.code.as_deref().unwrap_or("an error"),
                        f.message
                    ),
                    &Location::default(),
                );
                return Ok(());
            }
        };
        let decision = answer
            .evaluation_results()
            .iter()
            .map(|r| r.eval_decision().as_str().to_string())
            .find(|d| d != "allowed");
        if let Some(d) = decision {
            denied.push(format!(
                "`{}` ({} on {resource}: {d})",
                s.name,
                read_action(s)
            ));
        }
    }
    if denied.is_empty() {
        cx.actions.line(&format!(
            "task execution role {role} may read {} (IAM policy simulation)",
            names(config.secrets.iter())
        ));
        return Ok(());
    }
    Err(BadInput::other(format!(
        "{target}: task execution role {role} of task definition family {family} may not read {}; \
         its tasks would fail to start (ResourceInitializationError): allow those actions on those resources in the role's policy",
        denied.join(", ")
    ))
    .into())
}

fn names<'a>(secrets: impl Iterator<Item = &'a Secret>) -> String {
    secrets
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::runtime::Written;

    fn secret(reference: SecretRef, value_from: &str) -> Secret {
        Secret {
            name: "DB".into(),
            reference,
            written: Written {
                path: "components.api.secrets.DB".into(),
                file: None,
                line: 3,
                column: 9,
            },
            value_from: Some(value_from.into()),
        }
    }

    #[test]
    fn the_simulated_resource_is_the_secret_without_its_json_key() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";
        let s = secret(
            SecretRef::SecretsManager {
                secret: "prod/db".into(),
                json_key: Some("password".into()),
            },
            &format!("{arn}:password::"),
        );
        assert_eq!(resource_arn(&s).as_deref(), Some(arn));
        assert_eq!(read_action(&s), "secretsmanager:GetSecretValue");
        let p = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db";
        let s = secret(
            SecretRef::Ssm {
                parameter: "/app/db".into(),
            },
            p,
        );
        assert_eq!(resource_arn(&s).as_deref(), Some(p));
        assert_eq!(read_action(&s), "ssm:GetParameters");
    }
}
