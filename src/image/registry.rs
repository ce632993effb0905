//! The OCI distribution API (manifests, tags, sizes) spoken directly to ECR
//! or the sandbox registry.
//!
//! The client answers three questions the builders cannot: does the registry
//! already hold this content tag (skip the build), put these tags on that
//! manifest (retag without pulling or pushing a layer), and how big is the
//! pushed image and which instructions made it so. It handles both
//! authentication styles registries use (Basic, as ECR does with its token,
//! and the Bearer token challenge of distribution and Docker Hub) and retries
//! transient failures with a bounded back-off whose scale is a parameter.

use std::time::Duration;

use anyhow::Context;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Digest as _;

/// Credentials for one registry host, from ECR's GetAuthorizationToken (or
/// the sandbox). The password is a secret: it is masked and only ever fed to
/// builders on stdin.
#[derive(Clone)]
pub struct RegistryAuth {
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `127.0.0.1:5000`.
    pub host: String,
    pub username: String,
    pub password: SecretString,
    /// Plain HTTP (the sandbox registry); never true for ECR.
    pub insecure: bool,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"***")
            .field("insecure", &self.insecure)
            .finish()
    }
}

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Every manifest type we read, so the registry never falls back to schema 1.
const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Attempts per request (the first try and three retries).
const ATTEMPTS: u32 = 4;
/// How many of the largest layers a size report names.
pub const LARGEST_LAYERS: usize = 5;

/// A pushed image's size as the registry stores it (compressed).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImageSize {
    /// Sum of the compressed layer sizes.
    pub bytes: u64,
    pub layers: u32,
    /// The largest layers, largest first, with the instruction that made
    /// each (from the image config's history; empty when it has none).
    pub largest: Vec<(u64, String)>,
}

impl ImageSize {
    /// One line per large layer, for logs and the size-limit error.
    pub fn breakdown(&self) -> String {
        let mut s = format!(
            "{} in {} layers",
            crate::units::bytes(self.bytes),
            self.layers
        );
        for (bytes, instruction) in &self.largest {
            let what = if instruction.is_empty() {
                "(no history)"
            } else {
                instruction.as_str()
            };
            s.push_str(&format!(
                "\n  {:>10}  {}",
                crate::units::bytes(*bytes),
                crate::process::shorten(what, 120)
            ));
        }
        s
    }
}

/// A manifest as fetched: its bytes (kept verbatim: the digest is over them),
/// its media type and digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

#[derive(Debug, Deserialize)]
struct ConfigDoc {
    #[serde(default)]
    history: Vec<History>,
    #[serde(default)]
    config: Option<RunConfig>,
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

/// The image config's `config`: what the image runs with (its labels here).
#[derive(Debug, Default, Deserialize)]
struct RunConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

/// What a pushed reference is, as a runtime that takes one platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageShape {
    /// One image manifest, for `os`/`architecture` as its config says.
    Single { os: String, architecture: String },
    /// An image index (or Docker manifest list): the platforms it lists,
    /// attestation manifests counted as `unknown/unknown`.
    Index {
        media_type: String,
        platforms: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
struct History {
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    empty_layer: bool,
}

/// How to authenticate, learned from the registry's first 401.
#[derive(Debug, Clone, Default)]
enum Scheme {
    /// Nothing learned yet: try anonymously first (a challenge tells us more).
    #[default]
    Unknown,
    Basic,
    /// A bearer token per scope (`repository:x:pull,push`).
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// OCI distribution client for one registry host. Cheap to clone; clones
/// share nothing mutable but the connection pool, so concurrent components
/// never see each other's tokens.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    auth: RegistryAuth,
    base: String,
    clock: crate::clock::Clock,
    scheme: std::sync::Arc<std::sync::Mutex<Scheme>>,
    tokens: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, SecretString>>>,
}

impl Client {
    /// Retry delays follow `clock` (in production: 0.5 s, 1 s, 2 s; tests
    /// run faster).
    pub fn new(auth: &RegistryAuth, clock: crate::clock::Clock) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("fastdeploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        let scheme = if auth.insecure { "http" } else { "https" };
        Client {
            http,
            base: format!("{scheme}://{}", auth.host),
            auth: auth.clone(),
            clock,
            scheme: Default::default(),
            tokens: Default::default(),
        }
    }

    /// Same client, different base URL (tests point it at a recording receiver).
    pub fn with_base_url(mut self, base: &str) -> Client {
        self.base = base.trim_end_matches('/').to_string();
        self
    }

    pub fn host(&self) -> &str {
        &self.auth.host
    }

    /// Digest of `repo:tag`, or `None` when the registry has no such tag.
    pub async fn manifest_digest(&self, repo: &str, tag: &str) -> anyhow::Result<Option<String>> {
        let path = format!("/v2/{repo}/manifests/{tag}");
        let resp = self
            .send(Method::HEAD, &path, repo, false, |r| {
                r.header(ACCEPT, ACCEPT_ALL)
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {
                if let Some(d) = header_str(resp.headers(), "docker-content-digest") {
                    return Ok(Some(d));
                }
            }
            // Some registries (and proxies) refuse HEAD: GET answers the same question.
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {}
            _ => {
                return Err(self
                    .http_error(resp, &format!("looking up {repo}:{tag}"))
                    .await);
            }
        }
        match self.get_manifest(repo, tag).await {
            Ok(m) => Ok(Some(m.digest)),
            Err(e) if e.downcast_ref::<NotFound>().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches a manifest (by tag or digest), verbatim.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> anyhow::Result<Manifest> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self
            .send(Method::GET, &path, repo, false, |r| {
                r.header(ACCEPT, ACCEPT_ALL)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(anyhow::Error::new(NotFound(format!(
                "{}/{repo}:{reference}",
                self.auth.host
            ))));
        }
        if !resp.status().is_success() {
            return Err(self
                .http_error(
                    resp,
                    &format!("fetching the manifest of {repo}:{reference}"),
                )
                .await);
        }
        let header_type = header_str(resp.headers(), "content-type");
        let header_digest = header_str(resp.headers(), "docker-content-digest");
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the manifest of {repo}:{reference}"))?
            .to_vec();
        let body_type = serde_json::from_slice::<ManifestDoc>(&bytes)
            .ok()
            .and_then(|d| d.media_type);
        let media_type = body_type
            .or(header_type.filter(|t| t.contains("manifest") || t.contains("index")))
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let digest = header_digest.unwrap_or_else(|| sha256_digest(&bytes));
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Puts `new_tags` on the manifest `digest` of `repo`: the same manifest
    /// bytes PUT under each tag, so nothing is pulled or pushed but the
    /// manifest itself.
    pub async fn tag(&self, repo: &str, digest: &str, new_tags: &[String]) -> anyhow::Result<()> {
        if new_tags.is_empty() {
            return Ok(());
        }
        let manifest = self.get_manifest(repo, digest).await?;
        for tag in new_tags {
            self.put_manifest(repo, tag, &manifest.bytes, &manifest.media_type)
                .await
                .with_context(|| format!("tagging {repo}@{digest} as {tag}"))?;
        }
        Ok(())
    }

    /// Writes `bytes` (a manifest or an index of `media_type`) to `repo` by
    /// its digest, then under each of `tags`; returns the digest.
    pub async fn put(
        &self,
        repo: &str,
        bytes: &[u8],
        media_type: &str,
        tags: &[String],
    ) -> anyhow::Result<String> {
        let digest = sha256_digest(bytes);
        for reference in std::iter::once(&digest).chain(tags) {
            self.put_manifest(repo, reference, bytes, media_type)
                .await?;
        }
        Ok(digest)
    }

    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> anyhow::Result<()> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let (body, media_type) = (bytes.to_vec(), media_type.to_string());
        let resp = self
            .send(Method::PUT, &path, repo, true, move |r| {
                r.header(CONTENT_TYPE, media_type.clone())
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .http_error(resp, &format!("writing the manifest {repo}:{reference}"))
                .await);
        }
        Ok(())
    }

    /// Compressed size, layer count and the largest layers of the image
    /// `digest` (for an index: its linux/amd64 image, else the first).
    pub async fn image_size(&self, repo: &str, digest: &str) -> anyhow::Result<ImageSize> {
        let mut manifest = self.get_manifest(repo, digest).await?;
        let mut doc: ManifestDoc = serde_json::from_slice(&manifest.bytes)
            .with_context(|| format!("the manifest of {repo}@{digest} is not JSON"))?;
        if manifest.media_type == OCI_INDEX
            || manifest.media_type == DOCKER_LIST
            || !doc.manifests.is_empty()
        {
            let images: Vec<&Descriptor> = doc
                .manifests
                .iter()
                .filter(|m| {
                    m.annotations
                        .get("vnd.docker.reference.type")
                        .is_none_or(|t| t != "attestation-manifest")
                })
                .filter(|m| m.platform.as_ref().is_none_or(|p| p.os != "unknown"))
                .collect();
            let pick = images
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or(images.first())
                .with_context(|| format!("the index {repo}@{digest} lists no image"))?;
            manifest = self.get_manifest(repo, &pick.digest).await?;
            doc = serde_json::from_slice(&manifest.bytes)
                .with_context(|| format!("the manifest of {repo}@{} is not JSON", pick.digest))?;
        }
        let history = match &doc.config {
            Some(config) => self
                .config_history(repo, &config.digest)
                .await
                .unwrap_or_else(|e| {
                    tracing::debug!("no history for {repo}@{digest}: {e:#}");
                    Vec::new()
                }),
            None => Vec::new(),
        };
        Ok(size_of(
            &doc.layers.iter().map(|l| l.size).collect::<Vec<_>>(),
            &history,
        ))
    }

    /// The labels of `repo:reference`'s image config (an index: its first
    /// image's). Empty when the image has none.
    pub async fn labels(
        &self,
        repo: &str,
        reference: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let manifest = self.get_manifest(repo, reference).await?;
        let mut doc: ManifestDoc = serde_json::from_slice(&manifest.bytes)
            .with_context(|| format!("the manifest of {repo}:{reference} is not JSON"))?;
        if let Some(first) = doc.manifests.first() {
            let inner = self.get_manifest(repo, &first.digest).await?;
            doc = serde_json::from_slice(&inner.bytes)
                .with_context(|| format!("the manifest of {repo}@{} is not JSON", first.digest))?;
        }
        let Some(config) = doc.config else {
            return Ok(Default::default());
        };
        let config = self.config_doc(repo, &config.digest).await?;
        Ok(config.config.and_then(|c| c.labels).unwrap_or_default())
    }

    /// Whether `repo@digest` is a single image and for which platform, read
    /// from its manifest and image config.
    pub async fn image_shape(&self, repo: &str, digest: &str) -> anyhow::Result<ImageShape> {
        let manifest = self.get_manifest(repo, digest).await?;
        let doc: ManifestDoc = serde_json::from_slice(&manifest.bytes)
            .with_context(|| format!("the manifest of {repo}@{digest} is not JSON"))?;
        if manifest.media_type == OCI_INDEX
            || manifest.media_type == DOCKER_LIST
            || !doc.manifests.is_empty()
        {
            let platforms = doc
                .manifests
                .iter()
                .map(|m| {
                    m.platform
                        .as_ref()
                        .map(|p| format!("{}/{}", p.os, p.architecture))
                        .unwrap_or_else(|| "unknown".into())
                })
                .collect();
            return Ok(ImageShape::Index {
                media_type: manifest.media_type,
                platforms,
            });
        }
        let config = doc
            .config
            .with_context(|| format!("the manifest of {repo}@{digest} names no image config"))?;
        let config = self.config_doc(repo, &config.digest).await?;
        Ok(ImageShape::Single {
            os: config.os,
            architecture: config.architecture,
        })
    }

    async fn config_history(
        &self,
        repo: &str,
        config_digest: &str,
    ) -> anyhow::Result<Vec<History>> {
        Ok(self.config_doc(repo, config_digest).await?.history)
    }

    async fn config_doc(&self, repo: &str, config_digest: &str) -> anyhow::Result<ConfigDoc> {
        let path = format!("/v2/{repo}/blobs/{config_digest}");
        let resp = self.send(Method::GET, &path, repo, false, |r| r).await?;
        if !resp.status().is_success() {
            return Err(self
                .http_error(
                    resp,
                    &format!("fetching the image config {config_digest} of {repo}"),
                )
                .await);
        }
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).context("the image config is not JSON")
    }

    /// Sends one request with authentication and retries. `build` adds
    /// headers and body; it is called again for each attempt.
    async fn send(
        &self,
        method: Method,
        path: &str,
        repo: &str,
        push: bool,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let scope = format!(
            "repository:{repo}:{}",
            if push { "pull,push" } else { "pull" }
        );
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = self
                .authorize(build(self.http.request(method.clone(), &url)), &scope)
                .await?;
            let result = crate::timings::waiting("registry", req.send()).await;
            match result {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !challenged => {
                    challenged = true;
                    self.learn_challenge(resp.headers(), &scope).await?;
                    attempt -= 1;
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(self
                        .http_error(resp, &format!("{method} {path}"))
                        .await
                        .context(format!(
                            "registry {} refused the credentials for user `{}`",
                            self.auth.host, self.auth.username
                        )));
                }
                Ok(resp) if transient_status(resp.status()) && attempt < ATTEMPTS => {
                    tracing::debug!(
                        "{method} {url}: {} (attempt {attempt}); retrying",
                        resp.status()
                    );
                }
                Ok(resp) if transient_status(resp.status()) => {
                    let status = resp.status();
                    return Err(self
                        .http_error(resp, &format!("{method} {path}"))
                        .await
                        .context(format!(
                            "registry {} kept failing ({status}) after {ATTEMPTS} attempts",
                            self.auth.host
                        )));
                }
                Ok(resp) => return Ok(resp),
                Err(e) if attempt < ATTEMPTS => {
                    tracing::debug!("{method} {url}: {e} (attempt {attempt}); retrying");
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot reach registry {} ({method} {path}) after {ATTEMPTS} attempts",
                        self.auth.host
                    )));
                }
            }
            crate::timings::sleep("registry", backoff(attempt, self.clock)).await;
        }
    }

    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        scope: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let scheme = self
            .scheme
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(match scheme {
            Scheme::Unknown => req,
            Scheme::Basic => req.basic_auth(
                &self.auth.username,
                Some(self.auth.password.expose_secret()),
            ),
            Scheme::Bearer { .. } => {
                let token = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(scope)
                    .cloned();
                match token {
                    Some(t) => req.header(
                        reqwest::header::AUTHORIZATION,
                        sensitive(&format!("Bearer {}", t.expose_secret()))?,
                    ),
                    None => req,
                }
            }
        })
    }

    /// Reads a 401's `Www-Authenticate`: Basic, or Bearer with a token
    /// fetched from the realm using our credentials.
    async fn learn_challenge(&self, headers: &HeaderMap, scope: &str) -> anyhow::Result<()> {
        let challenge =
            header_str(headers, WWW_AUTHENTICATE.as_str()).unwrap_or_else(|| "Basic".into());
        let (kind, params) = parse_challenge(&challenge);
        let scheme = if kind.eq_ignore_ascii_case("bearer") {
            let realm = params
                .iter()
                .find(|(k, _)| k == "realm")
                .map(|(_, v)| v.clone())
                .with_context(|| {
                    format!(
                        "registry {} sent a Bearer challenge without a realm: {challenge}",
                        self.auth.host
                    )
                })?;
            let service = params
                .iter()
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.clone());
            let scheme = Scheme::Bearer { realm, service };
            self.fetch_token(&scheme, scope).await?;
            scheme
        } else {
            Scheme::Basic
        };
        *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) = scheme;
        Ok(())
    }

    async fn fetch_token(&self, scheme: &Scheme, scope: &str) -> anyhow::Result<()> {
        let Scheme::Bearer { realm, service } = scheme else {
            return Ok(());
        };
        let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
        if let Some(s) = service {
            query.push(("service", s));
        }
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let mut request = self.http.get(realm).query(&query);
            // Anonymous (a public base image): no credentials at all, as
            // token services refuse an empty Basic header.
            if !self.auth.username.is_empty() {
                request = request.basic_auth(
                    &self.auth.username,
                    Some(self.auth.password.expose_secret()),
                );
            }
            let result = request.send();
            let result = crate::timings::waiting("registry", result).await;
            match result {
                Ok(r) if transient_status(r.status()) && attempt < ATTEMPTS => {}
                Ok(r) => break r,
                Err(_) if attempt < ATTEMPTS => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot reach the token service {realm}")));
                }
            }
            crate::timings::sleep("registry", backoff(attempt, self.clock)).await;
        };
        if !resp.status().is_success() {
            return Err(self
                .http_error(resp, &format!("getting a token from {realm} for {scope}"))
                .await);
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = resp.json().await.with_context(|| {
            format!("the token service {realm} answered something that is not a token")
        })?;
        let token = t
            .token
            .or(t.access_token)
            .with_context(|| format!("the token service {realm} answered without a token"))?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.to_string(), SecretString::from(token));
        Ok(())
    }

    /// An error naming the registry, the operation, the status and the body.
    async fn http_error(&self, resp: reqwest::Response, what: &str) -> anyhow::Error {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let hint = match status {
            StatusCode::FORBIDDEN => {
                "; the credentials lack permission (ECR: ecr:BatchGetImage, ecr:PutImage)"
            }
            StatusCode::UNAUTHORIZED => "; log in again (ECR tokens last 12 hours)",
            _ => "",
        };
        anyhow::anyhow!(
            "registry {}: {what} answered {status}{hint}: {}",
            self.auth.host,
            crate::process::shorten(body.trim(), 500)
        )
    }
}

/// The registry has no such manifest.
#[derive(Debug, thiserror::Error)]
#[error("no manifest {0}")]
pub struct NotFound(pub String);

fn transient_status(s: StatusCode) -> bool {
    s.is_server_error() && s != StatusCode::NOT_IMPLEMENTED || s == StatusCode::TOO_MANY_REQUESTS
}

/// 0.5 s, 1 s, 2 s, ... times `scale`, with a little jitter.
pub fn backoff(attempt: u32, clock: crate::clock::Clock) -> Duration {
    let base = 0.5 * 2f64.powi(attempt.saturating_sub(1) as i32);
    clock.of(base * (0.75 + fastrand::f64() * 0.5))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn sensitive(value: &str) -> anyhow::Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value)
        .context("a registry token with characters no header can carry")?;
    v.set_sensitive(true);
    Ok(v)
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Splits `Bearer realm="https://x/token",service="x",scope="a:b:c"` into
/// the scheme and its parameters (quoted values may hold commas).
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (kind, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key, value));
    }
    (kind.to_string(), params)
}

/// Pairs layer sizes with the history entries that made a layer (those not
/// marked `empty_layer`), in order.
/// Compressed size of an image written as an OCI image layout directory
/// (`buildah push IMAGE oci:DIR`): what a registry would store, measured
/// without pushing (pull request builds push nothing).
pub fn oci_layout_size(dir: &std::path::Path) -> anyhow::Result<ImageSize> {
    let blob = |digest: &str| -> anyhow::Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("unsupported digest {digest} in {}", dir.display()))?;
        std::fs::read(dir.join("blobs/sha256").join(hex))
            .with_context(|| format!("reading blob {digest} in {}", dir.display()))
    };
    let index: ManifestDoc = serde_json::from_slice(
        &std::fs::read(dir.join("index.json"))
            .with_context(|| format!("reading {}/index.json", dir.display()))?,
    )
    .with_context(|| format!("{}/index.json is not JSON", dir.display()))?;
    let first = index
        .manifests
        .first()
        .with_context(|| format!("{}/index.json lists no image", dir.display()))?;
    let manifest: ManifestDoc =
        serde_json::from_slice(&blob(&first.digest)?).context("the image manifest is not JSON")?;
    let history = match &manifest.config {
        Some(c) => serde_json::from_slice::<ConfigDoc>(&blob(&c.digest)?)
            .map(|c| c.history)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(size_of(
        &manifest.layers.iter().map(|l| l.size).collect::<Vec<_>>(),
        &history,
    ))
}

fn size_of(layer_sizes: &[u64], history: &[History]) -> ImageSize {
    let makers: Vec<String> = history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| {
            h.created_by
                .as_deref()
                .map(clean_instruction)
                .unwrap_or_default()
        })
        .collect();
    // History and layers disagree in count when the history was squashed or
    // omitted: then only the sizes are reported.
    let aligned = makers.len() == layer_sizes.len();
    let mut largest: Vec<(u64, String)> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            (
                *size,
                if aligned {
                    makers[i].clone()
                } else {
                    String::new()
                },
            )
        })
        .collect();
    largest.sort_by_key(|l| std::cmp::Reverse(l.0));
    largest.truncate(LARGEST_LAYERS);
    ImageSize {
        bytes: layer_sizes.iter().sum(),
        layers: layer_sizes.len() as u32,
        largest,
    }
}

/// `/bin/sh -c #(nop) COPY file:abc in /app` → `COPY file:abc in /app`;
/// BuildKit's `RUN /bin/sh -c make # buildkit` → `RUN /bin/sh -c make`.
fn clean_instruction(created_by: &str) -> String {
    let s = created_by.trim();
    let s = s
        .strip_prefix("/bin/sh -c #(nop)")
        .map(str::trim)
        .unwrap_or(s);
    let s = s.strip_suffix("# buildkit").map(str::trim).unwrap_or(s);
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_with_quoted_commas() {
        let (kind, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(kind, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(parse_challenge(r#"Basic realm="sandbox""#).0, "Basic");
    }

    #[test]
    fn sizes_pair_layers_with_the_instructions_that_made_them() {
        let history = vec![
            History {
                created_by: Some("/bin/sh -c #(nop) ADD file:0a in / ".into()),
                empty_layer: false,
            },
            History {
                created_by: Some("/bin/sh -c #(nop)  CMD [\"sh\"]".into()),
                empty_layer: true,
            },
            History {
                created_by: Some("RUN /bin/sh -c make # buildkit".into()),
                empty_layer: false,
            },
            History {
                created_by: Some("COPY /out /app # buildkit".into()),
                empty_layer: false,
            },
        ];
        let size = size_of(&[100, 5000, 20], &history);
        assert_eq!(size.bytes, 5120);
        assert_eq!(size.layers, 3);
        assert_eq!(size.largest[0], (5000, "RUN /bin/sh -c make".to_string()));
        assert_eq!(size.largest[1], (100, "ADD file:0a in /".to_string()));
        assert!(
            size.breakdown().contains("RUN /bin/sh -c make"),
            "{}",
            size.breakdown()
        );
    }

    #[test]
    fn sizes_without_matching_history_still_count_layers() {
        let size = size_of(&[1, 2], &[]);
        assert_eq!(size.largest, vec![(2, String::new()), (1, String::new())]);
    }

    #[test]
    fn backoff_grows_and_scales() {
        use crate::clock::Clock;
        assert!(
            backoff(1, Clock::REAL) >= Duration::from_millis(375)
                && backoff(1, Clock::REAL) <= Duration::from_millis(625)
        );
        assert!(backoff(3, Clock::REAL) >= Duration::from_millis(1500));
        assert!(backoff(3, Clock::scaled(0.001)) < Duration::from_millis(5));
    }

    #[test]
    fn transient_statuses_are_5xx_and_429_but_not_501() {
        assert!(transient_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(transient_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!transient_status(StatusCode::NOT_IMPLEMENTED));
        assert!(!transient_status(StatusCode::NOT_FOUND));
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let auth = RegistryAuth {
            host: "h".into(),
            username: "AWS".into(),
            password: SecretString::from("tok3n-value"),
            insecure: false,
        };
        assert!(!format!("{auth:?}").contains("tok3n"));
        assert!(!format!("{:?}", Client::new(&auth, crate::clock::Clock::REAL)).contains("tok3n"));
    }
}
