//! Amazon ECR: authorization token, repository creation and hygiene, image size and scan findings.

use anyhow::Context;
use aws_sdk_ecr::types::{
    ImageIdentifier, ImageScanningConfiguration, ImageTagMutability, ScanStatus,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::aws::{FailureKind, classify, retrying};
use crate::cancel::Cancel;
use crate::clock::Clock;
use crate::error::BadInput;
use crate::gha::Actions;
use crate::image::registry::RegistryAuth;
use crate::plan::BuildPlan;
use crate::process::CommandSpec;
use crate::wait::{Pace, Poll, Stop, Stopped, Tempo, Waiter};

// ---------------------------------------------------------------------------
// Login.

/// Gets one ECR authorization token and turns it into registry credentials.
///
/// The registry host comes from the token's proxy endpoint unless
/// `registry_override` names one (`insecure` marks a plain-HTTP sandbox
/// registry). The password is masked at once; call this once per run and
/// hand the same [`RegistryAuth`] to every component.
pub async fn login(
    ecr: &aws_sdk_ecr::Client,
    registry_override: Option<&str>,
    insecure: bool,
    actions: &Actions,
) -> anyhow::Result<RegistryAuth> {
    let out = retrying(
        "ecr:GetAuthorizationToken",
        "the ECR registry",
        crate::clock::Clock::REAL,
        1,
        || ecr.get_authorization_token().send(),
    )
    .await?;
    let data = out
        .authorization_data()
        .first()
        .context("ECR GetAuthorizationToken returned no authorization data")?;
    let token = data
        .authorization_token()
        .context("ECR GetAuthorizationToken returned no token")?;
    // Mask before anything else can print it, in both forms.
    actions.add_mask(token);
    let (username, password) = decode_token(token)?;
    actions.add_mask(password.expose_secret());
    let host = match registry_override {
        Some(h) => h.trim().to_string(),
        None => {
            let endpoint = data
                .proxy_endpoint()
                .context("ECR GetAuthorizationToken returned no proxy endpoint")?;
            registry_host(endpoint)
        }
    };
    if let Some(expires) = data.expires_at() {
        tracing::debug!(%host, expires = %expires, "ECR token issued");
    }
    Ok(RegistryAuth {
        host,
        username,
        password,
        insecure,
    })
}

/// Decodes `base64(user:password)`.
pub fn decode_token(token: &str) -> anyhow::Result<(String, SecretString)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| anyhow::anyhow!("the ECR authorization token is not base64"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the ECR authorization token is not UTF-8"))?;
    let (user, password) = text
        .split_once(':')
        .context("the ECR authorization token is not `user:password`")?;
    Ok((user.to_string(), SecretString::from(password.to_string())))
}

/// `https://123.dkr.ecr.r.amazonaws.com/` → `123.dkr.ecr.r.amazonaws.com`.
pub fn registry_host(endpoint: &str) -> String {
    endpoint
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// `<program> login --username U --password-stdin HOST`: the password goes
/// on stdin, never on the command line. `extra` carries builder flags
/// (buildah's `--tls-verify=false` for the plain-HTTP sandbox).
pub fn login_command(program: &str, extra: &[String], auth: &RegistryAuth) -> CommandSpec {
    CommandSpec::new(program)
        .arg("login")
        .args(extra.iter().cloned())
        .args([
            "--username",
            auth.username.as_str(),
            "--password-stdin",
            auth.host.as_str(),
        ])
        .stdin(auth.password.clone())
}

// ---------------------------------------------------------------------------
// Repositories.

/// Days after which untagged images expire.
pub const UNTAGGED_EXPIRE_DAYS: u32 = 7;
/// Days after which a cache tag that no build rewrote expires.
pub const STALE_CACHE_DAYS: u32 = 30;
/// Prefix of cache tags (`crate::plan::cache_tag`).
pub const CACHE_TAG_PREFIX: &str = "cache-";

/// The lifecycle policy fastdeploy puts on repositories it creates.
/// Lifecycle policy of a repository that holds only build cache (buildah
/// names its cache tags by content hash, which no prefix can select): every
/// cache entry no build pushed for [`STALE_CACHE_DAYS`] days expires. Never
/// applied to a repository that holds deployable images.
pub fn cache_lifecycle_policy() -> String {
    serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("fastdeploy: expire build cache no build pushed for {STALE_CACHE_DAYS} days"),
                "selection": { "tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": STALE_CACHE_DAYS },
                "action": { "type": "expire" }
            }
        ]
    })
    .to_string()
}

pub fn lifecycle_policy() -> String {
    serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("fastdeploy: expire untagged images after {UNTAGGED_EXPIRE_DAYS} days"),
                "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": UNTAGGED_EXPIRE_DAYS },
                "action": { "type": "expire" }
            },
            {
                "rulePriority": 2,
                "description": format!("fastdeploy: expire cache tags no build rewrote for {STALE_CACHE_DAYS} days"),
                "selection": { "tagStatus": "tagged", "tagPrefixList": [CACHE_TAG_PREFIX], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": STALE_CACHE_DAYS },
                "action": { "type": "expire" }
            }
        ]
    })
    .to_string()
}

/// What [`ensure_repository`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub name: String,
    /// `123.dkr.ecr.r.amazonaws.com/name`.
    pub uri: Option<String>,
    pub created: bool,
    pub mutability: String,
    pub scan_on_push: bool,
    /// The cache repository, when it is not the image repository.
    pub cache_repository: Option<String>,
}

/// Makes sure the component's repository (and a separate cache repository)
/// exists; creates missing ones with scan-on-push and the lifecycle policy
/// when `create`, otherwise names the missing one. Refuses, before anything
/// is built, an IMMUTABLE repository that the plan would rewrite tags in.
pub async fn ensure_repository(
    ecr: &aws_sdk_ecr::Client,
    plan: &BuildPlan,
    create: bool,
    actions: &Actions,
) -> anyhow::Result<RepositoryInfo> {
    let repo = plan.repository.as_str();
    let (found, created) = describe_or_create(ecr, repo, create, false, actions).await?;
    let cache_repository = plan
        .cache
        .as_ref()
        .map(|c| c.repository.clone())
        .filter(|r| r != repo);
    if let Some(cache_repo) = &cache_repository {
        let (cache_found, _) = describe_or_create(ecr, cache_repo, create, true, actions).await?;
        // The cache tag is rewritten every build.
        let cache_tags: Vec<String> = plan.cache.iter().filter_map(|c| c.to_tag.clone()).collect();
        check_mutability(cache_repo, &cache_found, &cache_tags)?;
    }
    let rewritten = rewritten_tags(plan);
    check_mutability(repo, &found, &rewritten)?;
    Ok(RepositoryInfo {
        name: repo.to_string(),
        uri: found.repository_uri().map(str::to_string),
        created,
        mutability: found
            .image_tag_mutability()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "MUTABLE".into()),
        scan_on_push: found
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        cache_repository,
    })
}

/// Tags a run pushes again on the next build: every tag but the commit and
/// content tags, plus the cache tag when it lives in the image repository.
pub fn rewritten_tags(plan: &BuildPlan) -> Vec<String> {
    let mut tags: Vec<String> = plan
        .tags
        .iter()
        .filter(|t| !t.starts_with("sha-") && !t.starts_with("content-"))
        .cloned()
        .collect();
    if let Some(cache) = &plan.cache
        && cache.repository == plan.repository
        && let Some(t) = &cache.to_tag
    {
        tags.push(t.clone());
    }
    tags
}

async fn describe_or_create(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    create: bool,
    cache_only: bool,
    actions: &Actions,
) -> anyhow::Result<(aws_sdk_ecr::types::Repository, bool)> {
    let resource = format!("ECR repository `{repo}`");
    match ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
    {
        Ok(out) => {
            let r = out
                .repositories()
                .first()
                .cloned()
                .with_context(|| format!("ECR described no repository `{repo}`"))?;
            return Ok((r, false));
        }
        Err(e) => {
            let failure = classify(&e);
            match failure.kind {
                FailureKind::NotFound => {}
                FailureKind::Invalid => return Err(invalid_name(repo, &failure.message)),
                _ => return Err(failure.explain("ecr:DescribeRepositories", &resource)),
            }
        }
    }
    if !create {
        return Err(BadInput::other(format!(
            "ECR repository `{repo}` does not exist and `create-repository` is false; create it (aws ecr create-repository --repository-name {repo}) or set `create-repository: true`"
        ))
        .into());
    }
    let created = match ecr
        .create_repository()
        .repository_name(repo)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .image_tag_mutability(ImageTagMutability::Mutable)
        .tags(
            aws_sdk_ecr::types::Tag::builder()
                .key("managed-by")
                .value("fastdeploy")
                .build()?,
        )
        .send()
        .await
    {
        Ok(out) => out
            .repository()
            .cloned()
            .with_context(|| format!("ECR created `{repo}` but returned no repository"))?,
        Err(e) => {
            let failure = classify(&e);
            if failure.code.as_deref() == Some("RepositoryAlreadyExistsException") {
                // A parallel run created it between our describe and create.
                let out = ecr
                    .describe_repositories()
                    .repository_names(repo)
                    .send()
                    .await
                    .map_err(|e| classify(&e).explain("ecr:DescribeRepositories", &resource))?;
                return Ok((
                    out.repositories()
                        .first()
                        .cloned()
                        .context("ECR described no repository")?,
                    false,
                ));
            }
            if failure.kind == FailureKind::Invalid {
                return Err(invalid_name(repo, &failure.message));
            }
            return Err(failure.explain("ecr:CreateRepository", &resource));
        }
    };
    ecr.put_lifecycle_policy()
        .repository_name(repo)
        .lifecycle_policy_text(if cache_only {
            cache_lifecycle_policy()
        } else {
            lifecycle_policy()
        })
        .send()
        .await
        .map_err(|e| classify(&e).explain("ecr:PutLifecyclePolicy", &resource))?;
    actions.line(&format!(
        "created ECR repository {repo} (scan on push; untagged images expire after {UNTAGGED_EXPIRE_DAYS} days, stale cache tags after {STALE_CACHE_DAYS})"
    ));
    Ok((created, true))
}

fn invalid_name(repo: &str, message: &str) -> anyhow::Error {
    BadInput::invalid(
        "repository",
        repo,
        &format!(
            "a name ECR accepts: 2-256 lower-case letters, digits and `._-/`, starting with a letter or digit, no `//` or trailing `/` (ECR said: {message})"
        ),
    )
    .into()
}

/// Refuses tags an IMMUTABLE repository would reject on the next build, and
/// says exactly what to change.
fn check_mutability(
    repo: &str,
    r: &aws_sdk_ecr::types::Repository,
    rewritten: &[String],
) -> anyhow::Result<()> {
    let mutability = r
        .image_tag_mutability()
        .cloned()
        .unwrap_or(ImageTagMutability::Mutable);
    let excluded: Vec<String> = r
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter().to_string())
        .collect();
    let blocked: Vec<&String> = match mutability {
        ImageTagMutability::Immutable => rewritten.iter().collect(),
        ImageTagMutability::ImmutableWithExclusion => rewritten
            .iter()
            .filter(|t| !excluded.iter().any(|f| wildcard_match(f, t)))
            .collect(),
        _ => Vec::new(),
    };
    if blocked.is_empty() {
        return Ok(());
    }
    let filters: Vec<String> = blocked
        .iter()
        .map(|t| exclusion_filter(t))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let filter_args = filters
        .iter()
        .map(|f| format!("filterType=WILDCARD,filter='{f}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cache_hint = if blocked.iter().any(|t| t.starts_with(CACHE_TAG_PREFIX)) {
        " or set `cache-repository` to a separate (mutable) repository for the cache,"
    } else {
        ""
    };
    Err(BadInput::other(format!(
        "ECR repository `{repo}` is {} and every build rewrites the tags {}: exclude them from immutability \
         (aws ecr put-image-tag-mutability --repository-name {repo} --image-tag-mutability IMMUTABLE_WITH_EXCLUSION \
         --image-tag-mutability-exclusion-filters {filter_args}),{cache_hint} or make the repository MUTABLE",
        mutability.as_str(),
        blocked.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
    ))
    .into())
}

/// The exclusion filter for a rewritten tag: `cache-*` for cache tags, the tag itself otherwise.
fn exclusion_filter(tag: &str) -> String {
    if tag.starts_with(CACHE_TAG_PREFIX) {
        format!("{CACHE_TAG_PREFIX}*")
    } else {
        tag.to_string()
    }
}

/// ECR's WILDCARD filter: `*` matches any run of characters, as the
/// config's branch patterns do.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    crate::settings::config::glob_match(pattern, text)
}

// ---------------------------------------------------------------------------
// Images: size and scan findings.

/// A pushed image as ECR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetails {
    pub digest: String,
    /// Compressed size as ECR stores it.
    pub bytes: Option<u64>,
    pub tags: Vec<String>,
    pub pushed_at: Option<String>,
}

// ---------------------------------------------------------------------------
// Cache prune.

/// The tags of `repo` that are registry cache refs, with the digest each
/// names, sorted; every page of ListImages read. In a repository of its own
/// (`only_cache`: buildah's `-buildcache`, or `cache-repository`) every tag
/// is cache (buildah tags each layer by its cache key); next to the images,
/// the `cache-<branch>` tags are.
pub async fn cache_tags(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    only_cache: bool,
    clock: Clock,
) -> anyhow::Result<Vec<(String, String)>> {
    use aws_sdk_ecr::types::{ListImagesFilter, TagStatus};
    let resource = format!("ECR repository `{repo}`");
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = retrying("ecr:ListImages", &resource, clock, 4, || {
            ecr.list_images()
                .repository_name(repo)
                .filter(
                    ListImagesFilter::builder()
                        .tag_status(TagStatus::Tagged)
                        .build(),
                )
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for id in page.image_ids() {
            if let (Some(tag), Some(digest)) = (id.image_tag(), id.image_digest())
                && (only_cache || tag.starts_with("cache-"))
            {
                found.push((tag.to_string(), digest.to_string()));
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    found.sort();
    Ok(found)
}

/// Deletes `tags` from `repo` (BatchDeleteImage by tag, 100 a call: an
/// image loses the tag, and goes when no tag is left). Returns the tags ECR
/// could not delete, each with ECR's reason.
pub async fn delete_tags(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    tags: &[String],
    clock: Clock,
) -> anyhow::Result<Vec<String>> {
    let resource = format!("ECR repository `{repo}`");
    let mut failed = Vec::new();
    for chunk in tags.chunks(100) {
        let ids: Vec<ImageIdentifier> = chunk
            .iter()
            .map(|t| ImageIdentifier::builder().image_tag(t).build())
            .collect();
        let out = retrying("ecr:BatchDeleteImage", &resource, clock, 4, || {
            ecr.batch_delete_image()
                .repository_name(repo)
                .set_image_ids(Some(ids.clone()))
                .send()
        })
        .await?;
        for f in out.failures() {
            let tag = f
                .image_id()
                .and_then(|i| i.image_tag())
                .unwrap_or("?")
                .to_string();
            let code = f.failure_code().map(|c| c.as_str()).unwrap_or("error");
            failed.push(format!(
                "{tag}: {code} ({})",
                f.failure_reason().unwrap_or_default()
            ));
        }
    }
    Ok(failed)
}

/// DescribeImages for one image, by digest (`sha256:...`) or tag.
pub async fn image_details(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest_or_tag: &str,
    clock: Clock,
) -> anyhow::Result<ImageDetails> {
    let id = image_id(digest_or_tag);
    let resource = format!("image {repo}@{digest_or_tag}");
    let out = retrying("ecr:DescribeImages", &resource, clock, 4, || {
        ecr.describe_images()
            .repository_name(repo)
            .image_ids(id.clone())
            .send()
    })
    .await?;
    let d = out
        .image_details()
        .first()
        .with_context(|| format!("ECR describes no {resource}"))?;
    Ok(ImageDetails {
        digest: d.image_digest().unwrap_or_default().to_string(),
        bytes: d.image_size_in_bytes().and_then(|b| u64::try_from(b).ok()),
        tags: d.image_tags().to_vec(),
        pushed_at: d.image_pushed_at().map(|t| t.to_string()),
    })
}

fn image_id(digest_or_tag: &str) -> ImageIdentifier {
    if digest_or_tag.starts_with("sha256:") {
        ImageIdentifier::builder()
            .image_digest(digest_or_tag)
            .build()
    } else {
        ImageIdentifier::builder().image_tag(digest_or_tag).build()
    }
}

/// ECR severities, lowest first. `UNDEFINED` never fails a run.
pub const SEVERITIES: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

pub fn severity_rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(s))
}

/// One scan finding at or above the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub severity: String,
    pub package: Option<String>,
    pub uri: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.severity, self.name)?;
        if let Some(p) = &self.package {
            write!(f, " in {p}")?;
        }
        if let Some(u) = &self.uri {
            write!(f, " ({u})")?;
        }
        Ok(())
    }
}

/// Seconds between scan polls, and how long a scan may take.
const SCAN_POLL_SECONDS: f64 = 5.0;
const SCAN_WAIT_SECONDS: f64 = 15.0 * 60.0;

/// Waits for the image's scan and fails when it found anything at or above
/// `severity`, listing the findings. A scan ECR cannot run (unsupported image,
/// scan failed) is a warning, not a failure.
pub async fn check_scan(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
    severity: &str,
    clock: Clock,
    cancel: &Cancel,
    actions: &Actions,
) -> anyhow::Result<Vec<Finding>> {
    let threshold = severity_rank(severity).ok_or_else(|| {
        BadInput::invalid(
            "fail-on-severity",
            severity,
            "none | informational | low | medium | high | critical",
        )
    })?;
    let resource = format!("image {repo}@{digest}");
    let pace = Pace::new(clock, SCAN_POLL_SECONDS, SCAN_WAIT_SECONDS);
    let mut w = Waiter::new(pace, cancel, actions);
    let mut started = false;
    let doing = format!("waiting for the ECR scan of {resource}");
    let scanned = w
        .until(&doing, async || {
            scan_look(ecr, repo, digest, &resource, &mut started).await
        })
        .await;
    let (status, findings) = match scanned {
        Ok(done) => done,
        Err(e) => {
            return Err(match Stopped::find(&e).map(|s| &s.stop) {
                Some(Stop::TimedOut) => anyhow::anyhow!(
                    "the ECR scan of {resource} did not complete in {} minutes",
                    SCAN_WAIT_SECONDS / 60.0
                ),
                Some(Stop::Cancelled) => {
                    anyhow::anyhow!("cancelled while waiting for the ECR scan of {resource}")
                }
                _ => e,
            });
        }
    };
    if status != ScanStatus::Complete {
        actions.warning(
            &format!(
                "ECR could not scan {resource} ({}); fail-on-severity was not applied",
                status.as_str()
            ),
            &Default::default(),
        );
        return Ok(Vec::new());
    }
    let at_or_above: Vec<Finding> = findings
        .into_iter()
        .filter(|f| severity_rank(&f.severity).is_some_and(|r| r >= threshold))
        .collect();
    if at_or_above.is_empty() {
        actions.line(&format!(
            "scan of {repo}@{digest}: nothing at or above {severity}"
        ));
        return Ok(Vec::new());
    }
    let list = at_or_above
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n");
    anyhow::bail!(
        "the ECR scan of {resource} found {} finding(s) at or above {severity} (fail-on-severity):\n{list}",
        at_or_above.len()
    );
}

/// One look at the scan: done when it completed (with every page of its
/// findings) or ECR cannot run it. A repository without scan-on-push gets
/// its scan started once.
async fn scan_look(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
    resource: &str,
    started: &mut bool,
) -> anyhow::Result<Poll<(ScanStatus, Vec<Finding>)>> {
    let mut findings = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let res = ecr
            .describe_image_scan_findings()
            .repository_name(repo)
            .image_id(image_id(digest))
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) if e.code() == Some("ScanNotFoundException") => {
                if !*started {
                    *started = true;
                    let sent = ecr
                        .start_image_scan()
                        .repository_name(repo)
                        .image_id(image_id(digest))
                        .send()
                        .await;
                    if let Err(e) = sent
                        && e.code() != Some("LimitExceededException")
                    {
                        return Err(classify(&e).explain("ecr:StartImageScan", resource));
                    }
                }
                return Ok(Poll::Pending(Tempo::Steady));
            }
            Err(e) => return Err(classify(&e).explain("ecr:DescribeImageScanFindings", resource)),
        };
        let status = out.image_scan_status().and_then(|s| s.status().cloned());
        if let Some(f) = out.image_scan_findings() {
            findings.extend(f.findings().iter().map(basic_finding));
            findings.extend(f.enhanced_findings().iter().map(enhanced_finding));
        }
        token = out.next_token().map(str::to_string);
        match status {
            Some(ScanStatus::Complete) if token.is_some() => continue,
            Some(
                s @ (ScanStatus::Complete
                | ScanStatus::Failed
                | ScanStatus::UnsupportedImage
                | ScanStatus::ScanEligibilityExpired),
            ) => return Ok(Poll::Ready((s, findings))),
            _ => return Ok(Poll::Pending(Tempo::Steady)),
        }
    }
}

fn basic_finding(x: &aws_sdk_ecr::types::ImageScanFinding) -> Finding {
    Finding {
        name: x.name().unwrap_or("unnamed finding").to_string(),
        severity: x
            .severity()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        package: package_of(x.attributes()),
        uri: x.uri().map(str::to_string),
    }
}

fn enhanced_finding(x: &aws_sdk_ecr::types::EnhancedImageScanFinding) -> Finding {
    let details = x.package_vulnerability_details();
    let package = details
        .and_then(|p| p.vulnerable_packages().first())
        .map(|p| {
            format!(
                "{} {}",
                p.name().unwrap_or_default(),
                p.version().unwrap_or_default()
            )
            .trim()
            .to_string()
        });
    Finding {
        name: details
            .and_then(|p| p.vulnerability_id())
            .or(x.title())
            .unwrap_or("unnamed finding")
            .to_string(),
        severity: x.severity().unwrap_or_default().to_string(),
        package,
        uri: details.and_then(|p| p.source_url()).map(str::to_string),
    }
}

fn package_of(attributes: &[aws_sdk_ecr::types::Attribute]) -> Option<String> {
    let get = |k: &str| {
        attributes
            .iter()
            .find(|a| a.key() == k)
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    match (get("package_name"), get("package_version")) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (Some(n), None) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_to_user_and_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:123456789012-auth-token");
        let (user, password) = decode_token(&token).unwrap();
        assert_eq!(user, "AWS");
        assert_eq!(password.expose_secret(), "123456789012-auth-token");
        assert!(decode_token("not base64 !").is_err());
        assert_eq!(
            registry_host("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn login_command_keeps_the_password_off_the_command_line() {
        let auth = RegistryAuth {
            host: "127.0.0.1:5000".into(),
            username: "AWS".into(),
            password: SecretString::from("s3cret-token".to_string()),
            insecure: true,
        };
        let spec = login_command("buildah", &["--tls-verify=false".into()], &auth);
        assert_eq!(
            spec.args,
            [
                "login",
                "--tls-verify=false",
                "--username",
                "AWS",
                "--password-stdin",
                "127.0.0.1:5000"
            ]
        );
        assert!(!spec.display().contains("s3cret"));
        assert_eq!(
            spec.stdin
                .as_ref()
                .map(|s| s.expose_secret().to_string())
                .as_deref(),
            Some("s3cret-token")
        );
    }

    #[test]
    fn wildcards_match_like_ecr_exclusion_filters() {
        assert!(wildcard_match("cache-*", "cache-main"));
        assert!(!wildcard_match("cache-*", "main"));
        assert!(wildcard_match("*-dev", "feature-dev"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(wildcard_match("main", "main"));
        assert!(!wildcard_match("main", "main2"));
    }

    #[test]
    fn lifecycle_policy_expires_untagged_images_and_stale_cache_tags() {
        let v: serde_json::Value = serde_json::from_str(&lifecycle_policy()).unwrap();
        let rules = v["rules"].as_array().unwrap();
        assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(rules[1]["selection"]["tagPrefixList"][0], "cache-");
        assert_eq!(
            crate::plan::cache_tag("main"),
            format!("{CACHE_TAG_PREFIX}main")
        );
    }
}
