//! The change: the pushed image checked, `$LATEST` updated by digest and
//! applied, a version published and `Active`, the alias moved to it — each
//! wait a look through the driver's waiter, the alias last.

use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionConfiguration};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Function;
use super::preflight::lambda_architecture;
use super::watch::{Alias, alias, configuration};
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Verdict};
use crate::error::chain_message;
use crate::image::registry::ImageShape;
use crate::outcome::DeployReport;
use crate::wait::Waiter;

/// Deploys `image` to the function and alias, to a verdict.
pub async fn apply(
    f: &mut Function<'_>,
    d: &mut Deploy<'_>,
    image: &Image,
) -> anyhow::Result<Verdict> {
    if let Some(why) = d.ready().await? {
        return Ok(Verdict::Refused(format!(
            "before-deploy did not succeed ({why}); function {} was not updated",
            f.plan.function
        )));
    }
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let checked = super::preflight::check(&cx.clients.lambda, f.plan).await?;
    f.arn = Some(checked.function_arn.clone());
    if let Some(why) = refusal(f, cx, image, &checked).await {
        return Ok(Verdict::Refused(why));
    }
    let before = alias(f, cx).await?;
    if let Some(a) = &before {
        let arn = f.version_arn(&a.version);
        report.previous_revision = Some(arn.clone());
        report.serving_revision = Some(arn);
        let config = configuration(f, cx, Some(&a.version)).await?;
        let same_env = super::environment::wanted(f, &config).is_none();
        if config.code_sha256() == Some(image.digest_hex()) && same_env {
            f.say(
                cx,
                &format!(
                    "alias {} already serves version {} with {}; nothing to update or publish",
                    f.plan.alias, a.version, image.uri
                ),
            );
            report.revision = report.serving_revision.clone();
            return Ok(Verdict::Unchanged);
        }
    }
    let latest = match update(f, cx, w, image, report).await? {
        Ok(latest) => latest,
        Err(reason) => {
            report.evidence.push(reason.clone());
            let reason = format!("Lambda did not apply {}: {reason}", image.uri);
            return Ok(Verdict::Failed {
                reason,
                put_back: true,
            });
        }
    };
    // A version of exactly that code (Lambda returns the existing one when
    // nothing changed since the last publish).
    let was = before.as_ref().map(|a| a.version.as_str());
    let version = publish(f, cx, w, image, &latest, was).await?;
    report.revision = Some(f.version_arn(&version));
    let doing = format!("waiting for version {version} to be Active");
    let active = w.until(&doing, async || f.active(cx, &version, report).await);
    if let Err(reason) = active.await? {
        report.evidence.push(reason.clone());
        return Ok(Verdict::Failed {
            reason: format!("Lambda did not apply {}: {reason}", image.uri),
            put_back: true,
        });
    }
    if let Some(event) = &f.plan.smoke_test_event
        && let Err(why) = super::smoke::invoke(f, cx, w, &version, event, report).await?
    {
        return Ok(Verdict::Failed {
            reason: format!(
                "the smoke test of version {version} failed, so alias {} was not moved: {why}",
                f.plan.alias
            ),
            put_back: true,
        });
    }
    w.check(&format!(
        "before moving alias {} to version {version}",
        f.plan.alias
    ))?;
    move_to(f, cx, w, before, &version, report).await
}

/// Moves the alias to `version` (gradually, with `lambda-shift`), to a verdict.
async fn move_to(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    w: &Waiter<'_>,
    mut before: Option<Alias>,
    version: &str,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    if let (Some(shift), Some(a)) = (f.plan.shift, &before) {
        f.shifting = true;
        if let Err(why) = super::shift::canary(f, cx, w, a, version, shift).await? {
            report.evidence.push(why.clone());
            return Ok(Verdict::Failed {
                reason: format!("{why}; alias {} did not move", f.plan.alias),
                put_back: true,
            });
        }
        // The routing moved the alias's revision.
        before = alias(f, cx).await?;
    } else if f.plan.shift.is_some() {
        f.say(cx, &format!(
            "alias {} does not exist yet: it is created on version {version} with all invocations (lambda-shift moves an alias that serves)",
            f.plan.alias
        ));
    }
    move_alias(f, cx, before.as_ref(), version).await?;
    let said = format!("deployed: alias {} serves version {version}", f.plan.alias);
    alias_moved(f, cx, version, &said, true, report).await
}

/// The verdict once the alias was moved to `version`, read back: it
/// serves there (`said` says so), or Lambda reports it elsewhere.
pub(super) async fn alias_moved(
    f: &Function<'_>,
    cx: &Context<'_>,
    version: &str,
    said: &str,
    put_back: bool,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    match alias(f, cx).await? {
        Some(a) if a.version == version => {
            report.serving_revision = report.revision.clone();
            f.say(cx, said);
            Ok(Verdict::Succeeded)
        }
        other => Ok(Verdict::Failed {
            reason: format!(
                "alias {} was moved to version {version}, but Lambda now reports it on {}",
                f.plan.alias,
                other
                    .map(|a| format!("version {}", a.version))
                    .unwrap_or_else(|| "no version".into())
            ),
            put_back,
        }),
    }
}

/// Why the pushed image cannot go to this function, read before Lambda is
/// touched: Lambda refuses an index, and runs an image of another
/// architecture until the first invoke fails with `exec format error`.
async fn refusal(
    f: &Function<'_>,
    cx: &Context<'_>,
    image: &Image,
    checked: &super::preflight::LiveFunction,
) -> Option<String> {
    let Some(registry) = &cx.clients.registry else {
        return Some(format!(
            "no registry client to read the pushed image {} with; nothing was changed",
            image.uri
        ));
    };
    let (arch, platform) = (&checked.architecture, &checked.platform);
    match registry.image_shape(&image.repository, &image.digest).await {
        Ok(ImageShape::Single { os, architecture })
            if lambda_architecture(&architecture) == arch && os == "linux" =>
        {
            None
        }
        Ok(ImageShape::Single { os, architecture }) => Some(format!(
            "the image {} is built for {os}/{architecture}, but Lambda function {} runs on {arch} ({platform}); \
             build it for {platform} (fastdeploy does when it picks the platform; check `platforms`)",
            image.uri,
            f.name(),
        )),
        Ok(ImageShape::Index {
            media_type,
            platforms,
        }) => Some(format!(
            "the image {} is an image index ({media_type}, listing {}), and Lambda accepts only a single image manifest; \
             build one platform ({platform}) with attestations off (`provenance: false`)",
            image.uri,
            platforms.join(", "),
        )),
        Err(e) => Some(format!(
            "cannot read the pushed image {} from the registry to check it before deploying ({})",
            image.uri,
            chain_message(&e)
        )),
    }
}

/// `$LATEST` on our code: updated once no other update runs, and applied.
/// `Err(reason)` when Lambda failed the update (it keeps the previous code).
async fn update(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    image: &Image,
    report: &mut DeployReport,
) -> anyhow::Result<Result<FunctionConfiguration, String>> {
    let idle = "waiting for another update to finish";
    let latest = w.until(idle, async || f.idle(cx, report).await).await?;
    let latest = match super::environment::configure(f, cx, w, latest, report).await? {
        Ok(latest) => latest,
        Err(reason) => return Ok(Err(reason)),
    };
    w.check("before the code update")?;
    if latest.code_sha256() == Some(image.digest_hex()) {
        f.say(
            cx,
            &format!(
                "$LATEST already holds {} (an earlier run updated it); publishing it",
                image.uri
            ),
        );
        return Ok(Ok(latest));
    }
    update_code(f, cx, w, image, latest, report).await?;
    f.latest_changed = true;
    let applied = w.until("waiting for Lambda to apply the update", async || {
        f.applied(cx, image, report).await
    });
    let applied = applied.await?;
    if applied.is_err() {
        // A failed update leaves the previous code on `$LATEST`.
        f.latest_changed = false;
    }
    Ok(applied)
}

/// UpdateFunctionCode by digest, guarded by the RevisionId just read. A
/// conflict (an update started meanwhile) waits and tries again.
async fn update_code(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    image: &Image,
    mut latest: FunctionConfiguration,
    report: &mut DeployReport,
) -> anyhow::Result<()> {
    loop {
        let sent = cx
            .clients
            .lambda
            .update_function_code()
            .function_name(f.name())
            .image_uri(&image.uri)
            .set_revision_id(latest.revision_id().map(str::to_string))
            .publish(false)
            .send()
            .await;
        match sent {
            Ok(out) => {
                f.say(
                    cx,
                    &format!(
                        "UpdateFunctionCode accepted: {} (not applied yet)",
                        image.uri
                    ),
                );
                let c = FunctionConfiguration::builder()
                    .set_last_update_status(out.last_update_status().cloned())
                    .set_last_update_status_reason(
                        out.last_update_status_reason().map(str::to_string),
                    )
                    .build();
                f.note_status(cx, "update", &c, report);
                return Ok(());
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some("ResourceConflictException" | "PreconditionFailedException")
                ) =>
            {
                f.say(
                    cx,
                    &format!(
                        "{} changed or is being updated by someone else ({}); reading it again",
                        f.name(),
                        e.code().unwrap_or_default()
                    ),
                );
                w.pause("waiting for another update to finish").await?;
                latest = w
                    .until("waiting for another update to finish", async || {
                        f.idle(cx, report).await
                    })
                    .await?;
                if latest.code_sha256() == Some(image.digest_hex()) {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(e).explained("lambda:UpdateFunctionCode", || {
                    format!("Lambda function {}", f.name())
                });
            }
        }
    }
}

/// PublishVersion of exactly the code we applied (CodeSha256 and RevisionId
/// guard against another update slipping in between).
async fn publish(
    f: &Function<'_>,
    cx: &Context<'_>,
    w: &Waiter<'_>,
    image: &Image,
    latest: &FunctionConfiguration,
    before: Option<&str>,
) -> anyhow::Result<String> {
    loop {
        let sent = cx
            .clients
            .lambda
            .publish_version()
            .function_name(f.name())
            .code_sha256(image.digest_hex())
            .set_revision_id(latest.revision_id().map(str::to_string))
            .description(super::restore::description(image, &f.plan.alias, before))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let version = out.version().unwrap_or_default().to_string();
                f.say(cx, &format!("published version {version}"));
                return Ok(version);
            }
            Err(e) if e.code() == Some("ResourceConflictException") => {
                w.pause("publishing a version").await?;
            }
            Err(e) if e.code() == Some("PreconditionFailedException") => {
                anyhow::bail!(
                    "Lambda function {} changed between the update and PublishVersion (another deploy?): {}",
                    f.name(),
                    e.message().unwrap_or_default()
                );
            }
            Err(e) => {
                return Err(e).explained("lambda:PublishVersion", || {
                    format!("Lambda function {}", f.name())
                });
            }
        }
    }
}

/// Points the alias at `version`, creating it on the first deploy. An error
/// answer is checked against the alias itself: when the SDK retried a move
/// whose answer was lost, Lambda answers the retry with PreconditionFailed
/// (the revision id moved) or "Alias already exists", though the alias
/// already points where we sent it.
pub(super) async fn move_alias(
    f: &Function<'_>,
    cx: &Context<'_>,
    before: Option<&Alias>,
    version: &str,
) -> anyhow::Result<()> {
    let name = &f.plan.alias;
    let resource = || format!("alias {name} of Lambda function {}", f.name());
    let lambda = &cx.clients.lambda;
    let (action, sent) = match before {
        Some(a) => (
            "lambda:UpdateAlias",
            lambda
                .update_alias()
                .function_name(f.name())
                .name(name)
                .function_version(version)
                // All invocations on `version`: no routing left from a
                // gradual shift (an empty RoutingConfig clears it).
                .routing_config(AliasRoutingConfiguration::builder().build())
                .set_revision_id(a.revision_id.clone())
                .send()
                .await
                .map(|_| ())
                .explained("lambda:UpdateAlias", resource),
        ),
        None => (
            "lambda:CreateAlias",
            lambda
                .create_alias()
                .function_name(f.name())
                .name(name)
                .function_version(version)
                .description("moved by fastdeploy")
                .send()
                .await
                .map(|_| ())
                .explained("lambda:CreateAlias", resource),
        ),
    };
    if let Err(e) = sent {
        match alias(f, cx).await {
            Ok(Some(now)) if now.version == version => f.say(cx, &format!(
                "{action} answered an error ({}), but alias {name} points at version {version}: the move took",
                chain_message(&e)
            )),
            _ => return Err(e),
        }
    }
    match before {
        Some(a) if a.version == version => f.say(
            cx,
            &format!("alias {name}: all invocations on version {version}, no routing"),
        ),
        Some(a) => f.say(
            cx,
            &format!("alias {name}: version {} → {version}", a.version),
        ),
        None => f.say(cx, &format!("alias {name} created on version {version}")),
    }
    Ok(())
}
