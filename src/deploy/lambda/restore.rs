//! The rollback motion: the version the alias pointed at before the most
//! recent deploy (each version fastdeploy publishes records it in its
//! description), or the one `to` names; put back by moving the alias to it
//! once it is `Active`. `$LATEST` is left as it is: the alias is what serves.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Function;
use super::preflight::not_found;
use super::watch::alias;
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Revision, Verdict};
use crate::error::BadInput;

/// What a version's description records of the alias before it:
/// `fastdeploy <image>; before: <alias> on <version>`.
pub(super) fn description(image: &Image, alias: &str, before: Option<&str>) -> String {
    let before = before.unwrap_or("none");
    format!("fastdeploy {}; before: {alias} on {before}", image.uri)
}

/// The version a description records as served before it.
fn recorded_before(description: &str, alias: &str) -> Option<String> {
    let (_, rest) = description.rsplit_once(&format!("; before: {alias} on "))?;
    let v = rest.trim();
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit())).then(|| v.to_string())
}

/// What the alias served before the most recent deploy (or `to`), read-only.
pub async fn earlier(
    f: &Function<'_>,
    cx: &Context<'_>,
    to: Option<&str>,
) -> anyhow::Result<Revision> {
    let (name, alias_name) = (f.name(), &f.plan.alias);
    let Some(now) = alias(f, cx).await? else {
        return Err(BadInput::other(format!(
            "nothing to roll back to: alias {alias_name} of Lambda function {name} does not exist (nothing was deployed to it)"
        ))
        .into());
    };
    let (version, found) = match to {
        Some(to) => (named(f, cx, to).await?, format!("named by `to` ({to})")),
        None => {
            let current = version_description(f, cx, &now.version).await?;
            let before = recorded_before(&current, alias_name).ok_or_else(|| {
                BadInput::other(format!(
                    "nothing to roll back to: version {} of Lambda function {name}, which alias {alias_name} serves, records no version \
                     before it (fastdeploy did not publish it, or it was the alias's first); name one with `to`",
                    now.version
                ))
            })?;
            let found = format!(
                "alias {alias_name} pointed at it before version {} (its description says)",
                now.version
            );
            (before, found)
        }
    };
    if version == now.version {
        return Err(BadInput::other(format!(
            "alias {alias_name} of Lambda function {name} serves version {version} already: there is nothing to roll back to"
        ))
        .into());
    }
    Ok(Revision {
        image: resolved_image(f, cx, &version).await?,
        id: version,
        found,
        warning: None,
    })
}

/// Moves the alias back to `rev` once that version is `Active`.
pub async fn restore(
    f: &mut Function<'_>,
    d: &mut Deploy<'_>,
    rev: &Revision,
) -> anyhow::Result<Verdict> {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let checked = super::preflight::check(&cx.clients.lambda, f.plan).await?;
    f.arn = Some(checked.function_arn.clone());
    let before = alias(f, cx).await?;
    let version = &rev.id;
    report.revision = Some(f.version_arn(version));
    if let Some(a) = &before {
        report.previous_revision = Some(f.version_arn(&a.version));
        report.serving_revision = report.previous_revision.clone();
        if &a.version == version {
            f.say(
                cx,
                &format!(
                    "alias {} serves version {version} already; nothing to roll back",
                    f.plan.alias
                ),
            );
            return Ok(Verdict::Unchanged);
        }
    }
    f.say(
        cx,
        &format!(
            "rolling back alias {} to version {version} ({})",
            f.plan.alias, rev.found
        ),
    );
    let doing = format!("waiting for version {version} to be Active");
    if let Err(reason) = w
        .until(&doing, async || f.active(cx, version, report).await)
        .await?
    {
        return Ok(Verdict::Refused(format!(
            "version {version} cannot serve: {reason}"
        )));
    }
    super::apply::move_alias(f, cx, before.as_ref(), version).await?;
    let said = format!(
        "rolled back: alias {} serves version {version} ($LATEST keeps its code; the alias is what serves)",
        f.plan.alias
    );
    super::apply::alias_moved(f, cx, version, &said, false, report).await
}

/// The version `to` names: a version number, a qualified ARN of this
/// function, or an image digest one of its versions runs.
async fn named(f: &Function<'_>, cx: &Context<'_>, to: &str) -> anyhow::Result<String> {
    let name = f.name();
    if let Some(hex) = to.strip_prefix("sha256:") {
        return by_digest(f, cx, hex).await;
    }
    let version = match to.rsplit_once(':') {
        None => to.to_string(),
        Some((arn, v)) if arn.ends_with(&format!(":function:{name}")) => v.to_string(),
        Some(_) => {
            return Err(BadInput::other(format!(
                "`to` is \"{to}\", which is not a version of Lambda function {name}; name a version number, its ARN, or an image digest"
            ))
            .into());
        }
    };
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
        return Err(BadInput::other(format!(
            "`to` is \"{to}\": for a Lambda function name a published version (a number such as 7), its ARN or an image digest (sha256:…)"
        ))
        .into());
    }
    version_description(f, cx, &version).await?;
    Ok(version)
}

/// The newest published version whose code is the image `hex`.
async fn by_digest(f: &Function<'_>, cx: &Context<'_>, hex: &str) -> anyhow::Result<String> {
    let mut newest: Option<u64> = None;
    let mut marker = None;
    loop {
        let out = cx
            .clients
            .lambda
            .list_versions_by_function()
            .function_name(f.name())
            .set_marker(marker)
            .send()
            .await
            .explained("lambda:ListVersionsByFunction", || {
                format!("Lambda function {}", f.name())
            })?;
        for v in out.versions() {
            let number = v.version().and_then(|n| n.parse::<u64>().ok());
            if v.code_sha256() == Some(hex) && number > newest {
                newest = number;
            }
        }
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    newest.map(|n| n.to_string()).ok_or_else(|| {
        BadInput::other(format!(
            "`to` is sha256:{hex}, but no published version of Lambda function {} runs that image; name the version instead",
            f.name()
        ))
        .into()
    })
}

/// A version's description; a version that does not exist is bad input.
async fn version_description(
    f: &Function<'_>,
    cx: &Context<'_>,
    version: &str,
) -> anyhow::Result<String> {
    match cx.clients.lambda.get_function_configuration().function_name(f.name()).qualifier(version).send().await {
        Ok(c) => Ok(c.description().unwrap_or_default().to_string()),
        Err(e) if not_found(&e) => Err(BadInput::other(format!(
            "version {version} of Lambda function {} does not exist; list them with `aws lambda list-versions-by-function --function-name {}`",
            f.name(),
            f.name()
        ))
        .into()),
        Err(e) => Err(e).explained("lambda:GetFunctionConfiguration", || {
            format!("version {version} of Lambda function {}", f.name())
        }),
    }
}

/// The image a version runs, by digest (`Code.ResolvedImageUri`).
pub(super) async fn resolved_image(
    f: &Function<'_>,
    cx: &Context<'_>,
    version: &str,
) -> anyhow::Result<Option<Image>> {
    let out = cx
        .clients
        .lambda
        .get_function()
        .function_name(f.name())
        .qualifier(version)
        .send()
        .await
        .map_err(|e| {
            let code = e.code().unwrap_or("error").to_string();
            anyhow::Error::new(e).context(format!(
                "reading version {version} of Lambda function {} ({code})",
                f.name()
            ))
        })?;
    Ok(out
        .code()
        .and_then(|c| c.resolved_image_uri())
        .and_then(|uri| Image::from_uri(uri, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_records_the_version_before_it() {
        let image = Image::new("r.example", "acme/thumbs", "sha256:ab", None);
        let d = description(&image, "live", Some("7"));
        assert_eq!(
            d,
            "fastdeploy r.example/acme/thumbs@sha256:ab; before: live on 7"
        );
        assert_eq!(recorded_before(&d, "live").as_deref(), Some("7"));
        assert_eq!(recorded_before(&d, "beta"), None);
        assert_eq!(
            recorded_before(&description(&image, "live", None), "live"),
            None
        );
        assert_eq!(
            recorded_before("fastdeploy r.example/acme/thumbs@sha256:ab", "live"),
            None
        );
    }
}
