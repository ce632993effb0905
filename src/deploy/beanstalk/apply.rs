//! The change: the bundle zipped and uploaded (content-addressed), an
//! application version made (or reused) and processed, the environment
//! updated once it is Ready, our request's events followed, then health —
//! each wait a look through the driver's waiter.

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::types::{
    ApplicationVersionDescription, EnvironmentStatus, S3Location,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Environment;
use super::bundle::{self, Contents};
use super::watch::{Followed, Following, eb_failed};
use crate::aws::Explained;
use crate::deploy::{Context, Deploy, Image, Verdict};
use crate::outcome::DeployReport;
use crate::settings::config::Bundle;
use crate::wait::Waiter;

/// Deploys the component's bundle to the environment, to a verdict.
pub async fn apply(
    e: &mut Environment<'_>,
    d: &mut Deploy<'_>,
    image: &Image,
) -> anyhow::Result<Verdict> {
    if let Some(why) = d.ready().await? {
        return Ok(Verdict::Refused(format!(
            "before-deploy did not succeed ({why}); environment {} was not updated",
            e.plan.environment
        )));
    }
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let contents = super::preflight::contents(&e.plan, e.component, Some(&image.uri))?;
    let pre = super::preflight::environment(&cx.clients.beanstalk, &e.plan).await?;
    report.url = pre.cname.as_deref().map(|c| format!("http://{c}"));
    report.previous_revision = pre.version_label.clone();
    report.serving_revision = pre.version_label.clone();
    note_source_build(e, cx);
    if let Err(reason) = super::properties::apply(e, cx, w, report).await? {
        report.evidence.push(reason.clone());
        return Ok(Verdict::Failed {
            reason,
            put_back: false,
        });
    }
    let label = match version(e, cx, w, image, &contents, &pre, report).await? {
        Ok(label) => label,
        Err(verdict) => return Ok(verdict),
    };
    deploy_label(e, cx, w, &label, pre.version_label.as_deref(), report).await
}

/// The environment updated to the processed version `label` once it is
/// Ready, our request's events followed, then health: the verdict. The
/// version records `before` (what served) for a later rollback.
pub(super) async fn deploy_label(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    label: &str,
    before: Option<&str>,
    report: &mut DeployReport,
) -> anyhow::Result<Verdict> {
    let label = label.to_string();
    if before != Some(label.as_str()) {
        super::restore::record_before(e, cx, &label, before).await;
    }
    let request_id = match update(e, cx, w, &label, report).await? {
        Some(rid) => rid,
        // Another run of the same content deployed it meanwhile: its
        // health is still ours to judge.
        None => return e.health(cx, w, &label, report).await,
    };
    let doing = format!("following the update to version {label}");
    let mut seen = Following::default();
    let followed = w.until(&doing, async || {
        e.follow(cx, &request_id, &label, &mut seen, report).await
    });
    let env = match followed.await? {
        Followed::Completed(env) => env,
        Followed::Failed(why) => return eb_failed(e, cx, &label, why, report).await,
        Followed::Ended(env) => {
            let on = env
                .version_label()
                .map(|l| format!("version {l}"))
                .unwrap_or_else(|| "no version".into());
            let why = format!("EB ended the update Ready on {on} without saying it failed");
            return eb_failed(e, cx, &label, why, report).await;
        }
    };
    if env.version_label() != Some(label.as_str())
        || env.status() != Some(&EnvironmentStatus::Ready)
    {
        let why = format!(
            "EB said the update completed, but the environment is {} on {}, not on version {label}",
            env.status().map(|s| s.as_str()).unwrap_or("?"),
            env.version_label().unwrap_or("no version")
        );
        return eb_failed(e, cx, &label, why, report).await;
    }
    report.serving_revision = Some(label.clone());
    e.health(cx, w, &label, report).await
}

/// EB builds a source bundle on each instance, from the Dockerfile's last
/// stage and without build args: said, since the build settings differ.
fn note_source_build(e: &Environment<'_>, cx: &Context<'_>) {
    if e.plan.bundle != Bundle::Source {
        return;
    }
    let build = &e.component.build;
    if build.target.is_some() {
        e.say(cx, "note: EB builds the Dockerfile's last stage on each instance; the `target` setting does not apply to it");
    }
    if !build.build_args.is_empty() {
        let names: Vec<&str> = build.build_args.keys().map(String::as_str).collect();
        e.say(cx, &format!(
            "note: EB builds on each instance without build args ({}); the Dockerfile's defaults apply",
            names.join(", ")
        ));
    }
}

/// The bundle zipped and uploaded, and the application version holding it,
/// processed: its label, or the verdict that ends the deploy here (nothing
/// to do, or EB refused the version).
async fn version(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    image: &Image,
    contents: &Contents,
    pre: &super::preflight::LiveEnvironment,
    report: &mut DeployReport,
) -> anyhow::Result<Result<String, Verdict>> {
    let work = tempfile::Builder::new()
        .prefix("fastdeploy-eb-")
        .tempdir()?;
    let zip_path = work.path().join("bundle.zip");
    let zipped = tokio::task::block_in_place(|| bundle::write_zip(contents, &zip_path))?;
    let size = crate::units::bytes(zipped.bytes);
    e.say(
        cx,
        &format!(
            "bundle: {} ({} files, {size} zipped, sha256 {})",
            e.plan.bundle.as_str(),
            zipped.members,
            &zipped.sha256[..12]
        ),
    );
    if zipped.bytes > bundle::MAX_BUNDLE_BYTES {
        return Ok(Err(Verdict::Refused(format!(
            "the bundle is {size} zipped, above Elastic Beanstalk's limit of 524,288,000 bytes; nothing was uploaded"
        ))));
    }
    let bucket = storage(cx).await?;
    let key = format!("fastdeploy/{}/{}.zip", e.app(), zipped.sha256);
    let existing = version_with(e, cx, &bucket, &key).await?;
    let label = match existing.as_ref().and_then(|v| v.version_label()) {
        Some(label) if pre.version_label.as_deref() == Some(label) && pre.status == "Ready" => {
            e.say(cx, &format!("version {label} holds this bundle and the environment already runs it; nothing to upload or deploy"));
            report.revision = Some(label.to_string());
            return Ok(Err(Verdict::Unchanged));
        }
        Some(label) => {
            e.say(
                cx,
                &format!(
                    "version {label} already holds this bundle (s3://{bucket}/{key}); reusing it"
                ),
            );
            label.to_string()
        }
        None => {
            upload(e, cx, &bucket, &key, &zipped).await?;
            let short: String = match e.plan.bundle {
                Bundle::Image => image.digest_hex().chars().take(12).collect(),
                Bundle::Source => format!("src-{}", &zipped.sha256[..12]),
            };
            let commit = cx.commit;
            let label = format!("sha-{}-{short}", &commit[..commit.len().min(12)]);
            create_version(
                e,
                cx,
                &label,
                &S3Location::builder()
                    .s3_bucket(&bucket)
                    .s3_key(&key)
                    .build(),
                image,
                &zipped.sha256,
            )
            .await?
        }
    };
    e.label = Some(label.clone());
    report.revision = Some(label.clone());
    let doing = format!("waiting for EB to process version {label}");
    match w
        .until(&doing, async || e.processed(cx, &label).await)
        .await?
    {
        Ok(()) => Ok(Ok(label)),
        Err(why) => Ok(Err(Verdict::Refused(why))),
    }
}

/// UpdateEnvironment to `label` once the environment is Ready: the
/// request's id, or `None` when the environment already runs the label
/// (another run deployed it meanwhile).
async fn update(
    e: &mut Environment<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    label: &str,
    report: &mut DeployReport,
) -> anyhow::Result<Option<String>> {
    let waiting = "(another update is running); waiting for Ready before deploying";
    loop {
        let ready = w.until("waiting for the environment to be Ready", async || {
            e.ready(cx, waiting).await
        });
        let env = ready.await?;
        if env.version_label() == Some(label) {
            e.say(cx, &format!("the environment runs version {label} already (another run deployed it meanwhile)"));
            report.serving_revision = Some(label.to_string());
            return Ok(None);
        }
        let sent = e.update_to(cx, label).await;
        match sent {
            Ok(out) => {
                let rid = out.request_id().unwrap_or_default().to_string();
                e.say(cx, &format!("UpdateEnvironment to version {label} accepted (request {rid}); following its events"));
                e.updated = true;
                report.deployment_id = Some(rid.clone());
                return Ok(Some(rid));
            }
            Err(err) if super::is_not_ready(&err) => {
                e.say(
                    cx,
                    &format!(
                        "EB refused the update: {}; waiting again",
                        err.message().unwrap_or_default()
                    ),
                );
                w.pause("waiting for the environment to be Ready").await?;
            }
            Err(err) => {
                let env = e.env().to_string();
                return Err(err).explained("elasticbeanstalk:UpdateEnvironment", || {
                    format!("Elastic Beanstalk environment {env}")
                });
            }
        }
    }
}

async fn storage(cx: &Context<'_>) -> anyhow::Result<String> {
    let out = cx
        .clients
        .beanstalk
        .create_storage_location()
        .send()
        .await
        .explained("elasticbeanstalk:CreateStorageLocation", || {
            "Elastic Beanstalk's storage location".into()
        })?;
    out.s3_bucket()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("CreateStorageLocation named no bucket"))
}

/// The application version whose source bundle is `bucket/key`, if any.
pub(super) async fn version_with(
    e: &Environment<'_>,
    cx: &Context<'_>,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<ApplicationVersionDescription>> {
    let mut token = None;
    loop {
        let out = cx
            .clients
            .beanstalk
            .describe_application_versions()
            .application_name(e.app())
            .max_records(1000)
            .set_next_token(token)
            .send()
            .await
            .explained("elasticbeanstalk:DescribeApplicationVersions", || {
                format!("Elastic Beanstalk application {}", e.app())
            })?;
        let hit = out.application_versions().iter().find(|v| {
            v.source_bundle()
                .is_some_and(|s| s.s3_bucket() == Some(bucket) && s.s3_key() == Some(key))
                && !v
                    .status()
                    .is_some_and(|s| s.as_str().eq_ignore_ascii_case("failed"))
        });
        if let Some(v) = hit {
            return Ok(Some(v.clone()));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
}

async fn upload(
    e: &Environment<'_>,
    cx: &Context<'_>,
    bucket: &str,
    key: &str,
    zipped: &bundle::Zipped,
) -> anyhow::Result<()> {
    let resource = format!("s3://{bucket}/{key}");
    let s3 = &cx.clients.s3;
    if s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        e.say(
            cx,
            &format!("{resource} already holds this bundle; not uploaded again"),
        );
        return Ok(());
    }
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&zipped.path).await?;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .body(body)
        .send()
        .await
        .explained("s3:PutObject", || resource.clone())?;
    e.say(
        cx,
        &format!(
            "uploaded {} to {resource}",
            crate::units::bytes(zipped.bytes)
        ),
    );
    Ok(())
}

/// CreateApplicationVersion with Process=true; a label already taken by
/// other content gets the bundle's hash appended.
async fn create_version(
    e: &Environment<'_>,
    cx: &Context<'_>,
    label: &str,
    source: &S3Location,
    image: &Image,
    sha: &str,
) -> anyhow::Result<String> {
    let commit = &cx.commit[..cx.commit.len().min(12)];
    let description = super::restore::description(
        &match e.plan.bundle {
            Bundle::Image => format!("{} at {commit}", image.uri),
            Bundle::Source => format!("source of {commit}"),
        },
        None,
    );
    let (bucket, key) = (
        source.s3_bucket().unwrap_or_default(),
        source.s3_key().unwrap_or_default(),
    );
    let mut label = label.to_string();
    for attempt in 0..2 {
        let sent = cx
            .clients
            .beanstalk
            .create_application_version()
            .application_name(e.app())
            .version_label(&label)
            .description(&description)
            .source_bundle(source.clone())
            .process(true)
            .send()
            .await;
        match sent {
            Ok(_) => {
                e.say(cx, &format!("application version {label} created from s3://{bucket}/{key}; EB is processing it"));
                return Ok(label);
            }
            Err(err)
                if attempt == 0 && err.message().is_some_and(|m| m.contains("already exists")) =>
            {
                // Another run of the same content made it meanwhile: reuse it.
                let made = version_with(e, cx, bucket, key).await?;
                if made.as_ref().and_then(|v| v.version_label()) == Some(label.as_str()) {
                    e.say(cx, &format!("application version {label} was just created for this bundle by another run; reusing it"));
                    return Ok(label);
                }
                label = format!("{label}-{}", &sha[..8]);
            }
            Err(err) => {
                let message = err.message().unwrap_or_default().to_string();
                return Err(anyhow::anyhow!(
                    "Elastic Beanstalk refused application version {label} (CreateApplicationVersion: {}: {message})",
                    err.code().unwrap_or("error")
                ));
            }
        }
    }
    anyhow::bail!("application versions {label} already exist with other content")
}
