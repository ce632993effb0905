//! ECR against moto and the sandbox registry: repository creation with
//! scan-on-push and a lifecycle policy, login with moto's token, a real push
//! with buildah, digest and size read back, scan findings, IMMUTABLE
//! repositories and the errors people act on.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use aws_sdk_ecr::types::{
    ImageTagMutability, ImageTagMutabilityExclusionFilter, ImageTagMutabilityExclusionFilterType,
};
use fastdeploy::cancel::Cancel;
use fastdeploy::error::{Exit, exit_for};
use fastdeploy::gha::Actions;
use fastdeploy::image::ecr;
use fastdeploy::plan::{BuildPlan, CachePlan};
use fastdeploy::process::{CommandSpec, Runner};
use secrecy::ExposeSecret;

use crate::support::run::{assert_no_secret, run_child};
use crate::support::sandbox::{ECR_PASSWORD, ECR_USER, Moto, Registry, http_post_json};

pub fn plan(repository: &str, tags: &[&str], cache: Option<CachePlan>) -> BuildPlan {
    BuildPlan {
        context: "/w".into(),
        dockerfile: "/w/Dockerfile".into(),
        target: None,
        build_args: BTreeMap::new(),
        platforms: vec![],
        repository: repository.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        labels: BTreeMap::new(),
        cache,
        push: true,
        secrets: vec![],
    }
}

fn cache_in(repository: &str) -> Option<CachePlan> {
    Some(CachePlan {
        repository: repository.into(),
        from_tags: vec!["cache-main".into()],
        to_tag: Some("cache-main".into()),
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// buildah with its own storage, auth file and plain-HTTP registry access.
struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Buildah {
        Buildah {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn global(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--root".into(),
            d.join("root").display().to_string(),
            "--runroot".into(),
            d.join("run").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
        ]
    }
    fn authfile(&self) -> String {
        self.dir.path().join("auth.json").display().to_string()
    }
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("buildah")
            .args(self.global())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
    /// A tiny image pushed to `reference`; returns the pushed digest.
    fn push_tiny(&self, reference: &str, content: &str) -> String {
        let ctr = self.cmd(&["from", "scratch"]);
        let file = self.dir.path().join("payload");
        std::fs::write(&file, content).unwrap();
        self.cmd(&["copy", &ctr, &file.display().to_string(), "/payload"]);
        self.cmd(&["commit", &ctr, "tiny"]);
        let digestfile = self.dir.path().join("digest");
        self.cmd(&[
            "push",
            "--tls-verify=false",
            "--authfile",
            &self.authfile(),
            "--digestfile",
            &digestfile.display().to_string(),
            "tiny",
            &format!("docker://{reference}"),
        ]);
        std::fs::read_to_string(digestfile)
            .unwrap()
            .trim()
            .to_string()
    }
}

/// What ECR records on a push: the manifest the registry holds, put into
/// moto's ECR under the same tag and digest.
fn mirror_push(moto: &Moto, registry: &Registry, repository: &str, tag: &str, digest: &str) {
    let client = reqwest::blocking::Client::new();
    let res = client
        .get(format!("{}/v2/{repository}/manifests/{digest}", registry.url()))
        .basic_auth(ECR_USER, Some(ECR_PASSWORD))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .unwrap();
    assert!(
        res.status().is_success(),
        "manifest {repository}@{digest}: {}",
        res.status()
    );
    let media = res.headers()["content-type"].to_str().unwrap().to_string();
    let manifest = res.text().unwrap();
    rt().block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        ecr.put_image()
            .repository_name(repository)
            .image_manifest(manifest)
            .image_manifest_media_type(media)
            .image_tag(tag)
            .image_digest(digest)
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn a_run_creates_repositories_logs_in_once_pushes_and_reports_digest_and_size() {
    let (ok, log) = run_child("ecr::child_push_flow");
    assert!(ok, "the push flow failed:\n{log}");
    assert!(log.contains("created ECR repository shop/backend"), "{log}");
    assert!(
        log.contains("created ECR repository shop/frontend"),
        "{log}"
    );
    assert_no_secret(&log, ECR_PASSWORD);
    use base64::Engine as _;
    assert_no_secret(
        &log,
        &base64::engine::general_purpose::STANDARD.encode(format!("{ECR_USER}:{ECR_PASSWORD}")),
    );
}

#[test]
#[ignore = "run by a_run_creates_repositories_logs_in_once_pushes_and_reports_digest_and_size, which checks its log for secrets"]
fn child_push_flow() {
    let moto = Moto::start();
    let registry = Registry::start();
    let rt = rt();
    let actions = Actions::new(true, None, None);
    let buildah = Buildah::new();
    let components = [
        ("shop/backend", "backend v1"),
        ("shop/frontend", "frontend v1"),
    ];

    let auth = rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        let auth = ecr::login(&ecr, Some(&registry.host), true, &actions)
            .await
            .unwrap();
        assert_eq!(
            (auth.host.as_str(), auth.username.as_str()),
            (registry.host.as_str(), ECR_USER)
        );
        assert_eq!(
            auth.password.expose_secret(),
            ECR_PASSWORD,
            "the password is the one moto's token decodes to"
        );
        assert_eq!(actions.scrub(&format!("pw={ECR_PASSWORD}")), "pw=***");
        // Without an override the registry is the token's proxy endpoint.
        let ecr_auth = ecr::login(&ecr, None, false, &actions).await.unwrap();
        assert_eq!(
            ecr_auth.host,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );

        for (repo, _) in components {
            let p = plan(repo, &["sha-0123456789ab", "main"], cache_in(repo));
            let info = ecr::ensure_repository(&ecr, &p, true, &actions)
                .await
                .unwrap();
            assert!(info.created && info.scan_on_push, "{info:?}");
            let described = ecr
                .describe_repositories()
                .repository_names(repo)
                .send()
                .await
                .unwrap();
            let r = &described.repositories()[0];
            assert!(r.image_scanning_configuration().unwrap().scan_on_push());
            let policy = ecr
                .get_lifecycle_policy()
                .repository_name(repo)
                .send()
                .await
                .unwrap();
            let policy: serde_json::Value =
                serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
            assert_eq!(policy["rules"][0]["selection"]["tagStatus"], "untagged");
            assert_eq!(
                policy["rules"][1]["selection"]["tagPrefixList"][0],
                "cache-"
            );
            // A second run finds it and creates nothing.
            assert!(
                !ecr::ensure_repository(&ecr, &p, true, &actions)
                    .await
                    .unwrap()
                    .created
            );
        }
        auth
    });

    let token_calls = || {
        let requests = http_post_json(
            &format!("{}/_sandbox/ecr/requests", moto.endpoint),
            &serde_json::json!({}),
        );
        requests
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["operation"] == "GetAuthorizationToken")
            .count()
    };
    assert_eq!(token_calls(), 2, "the two explicit logins above");

    // Each component's builder logs in with the one token: password on stdin.
    let runner = Runner::with_sink(Arc::new(|_, line| println!("{line}")));
    let extra = vec![
        "--tls-verify=false".to_string(),
        "--authfile".to_string(),
        buildah.authfile(),
    ];
    for (repo, content) in components {
        let login = ecr::login_command("buildah", &extra, &auth);
        let login = CommandSpec {
            args: [buildah.global(), login.args].concat(),
            ..login
        };
        assert!(!login.display().contains(ECR_PASSWORD));
        rt.block_on(runner.run(&login))
            .unwrap()
            .check(&login)
            .unwrap();
        let digest = buildah.push_tiny(&format!("{}/{repo}:sha-0123456789ab", auth.host), content);
        mirror_push(&moto, &registry, repo, "sha-0123456789ab", &digest);
        rt.block_on(async {
            let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
            let details =
                ecr::image_details(&ecr, repo, &digest, fastdeploy::clock::Clock::scaled(0.001))
                    .await
                    .unwrap();
            assert_eq!(details.digest, digest);
            let bytes = details.bytes.expect("ECR reports a size");
            assert!(bytes > 0 && bytes < 10_000, "{bytes}");
            println!("pushed {}/{repo}@{digest} ({bytes} bytes)", auth.host);
        });
    }
    assert_eq!(
        token_calls(),
        2,
        "both components pushed with the one token: no further GetAuthorizationToken"
    );
}

#[test]
fn scan_findings_at_or_above_the_threshold_fail_with_their_names() {
    let moto = Moto::start();
    let rt = rt();
    let actions = Actions::new(false, None, None);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "1".repeat(64)), "size": 100 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", "2".repeat(64)), "size": 2048 }]
    })
    .to_string();
    rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        ecr::ensure_repository(&ecr, &plan("scanned", &["sha-1"], None), true, &actions)
            .await
            .unwrap();
        let put = ecr
            .put_image()
            .repository_name("scanned")
            .image_manifest(&manifest)
            .image_tag("sha-1")
            .send()
            .await
            .unwrap();
        let digest = put
            .image()
            .unwrap()
            .image_id()
            .unwrap()
            .image_digest()
            .unwrap()
            .to_string();
        assert_eq!(
            ecr::image_details(
                &ecr,
                "scanned",
                &digest,
                fastdeploy::clock::Clock::scaled(0.001)
            )
            .await
            .unwrap()
            .bytes,
            Some(2048)
        );

        // moto's scan reports one HIGH finding (CVE-9999-9999 in moto_fake).
        let err = ecr::check_scan(
            &ecr,
            "scanned",
            &digest,
            "HIGH",
            fastdeploy::clock::Clock::scaled(0.001),
            &Cancel::never(),
            &actions,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("CVE-9999-9999")
                && err.contains("moto_fake")
                && err.contains("at or above HIGH"),
            "{err}"
        );
        let ok = ecr::check_scan(
            &ecr,
            "scanned",
            &digest,
            "CRITICAL",
            fastdeploy::clock::Clock::scaled(0.001),
            &Cancel::never(),
            &actions,
        )
        .await
        .unwrap();
        assert!(ok.is_empty());
    });
}

#[test]
fn immutable_repositories_are_refused_with_the_exact_fix_unless_the_cache_lives_elsewhere() {
    let moto = Moto::start();
    let rt = rt();
    let actions = Actions::new(false, None, None);
    rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        ecr.create_repository()
            .repository_name("locked")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
        let err = ecr::ensure_repository(
            &ecr,
            &plan("locked", &["sha-1", "main"], cache_in("locked")),
            true,
            &actions,
        )
        .await
        .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput);
        let msg = err.to_string();
        assert!(
            msg.contains("IMMUTABLE_WITH_EXCLUSION")
                && msg.contains("filter='cache-*'")
                && msg.contains("filter='main'"),
            "{msg}"
        );
        assert!(msg.contains("cache-repository"), "{msg}");

        // Only the commit tag in the image repository, the cache in its own: fine.
        let separate = Some(CachePlan {
            repository: "locked-cache".into(),
            from_tags: vec!["cache-main".into()],
            to_tag: Some("cache-main".into()),
        });
        let info =
            ecr::ensure_repository(&ecr, &plan("locked", &["sha-1"], separate), true, &actions)
                .await
                .unwrap();
        assert_eq!(info.cache_repository.as_deref(), Some("locked-cache"));
        assert_eq!(info.mutability, "IMMUTABLE");
        ecr.describe_repositories()
            .repository_names("locked-cache")
            .send()
            .await
            .expect("the cache repository was created");

        // IMMUTABLE_WITH_EXCLUSION covering the rewritten tags: fine.
        let filter = |f: &str| {
            ImageTagMutabilityExclusionFilter::builder()
                .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
                .filter(f)
                .build()
                .unwrap()
        };
        ecr.create_repository()
            .repository_name("excluded")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(filter("cache-*"))
            .image_tag_mutability_exclusion_filters(filter("main"))
            .send()
            .await
            .unwrap();
        ecr::ensure_repository(
            &ecr,
            &plan("excluded", &["sha-1", "main"], cache_in("excluded")),
            true,
            &actions,
        )
        .await
        .unwrap();
    });
}

#[test]
fn missing_or_invalid_repositories_and_missing_credentials_are_bad_input() {
    let moto = Moto::start();
    let rt = rt();
    let actions = Actions::new(false, None, None);
    rt.block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        let err =
            ecr::ensure_repository(&ecr, &plan("not-there", &["sha-1"], None), false, &actions)
                .await
                .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput);
        assert!(
            err.to_string().contains("`not-there` does not exist")
                && err.to_string().contains("create-repository"),
            "{err}"
        );

        let err =
            ecr::ensure_repository(&ecr, &plan("bad//name", &["sha-1"], None), true, &actions)
                .await
                .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput, "{err:#}");
        assert!(err.to_string().contains("bad//name"), "{err}");

        // A region without credentials.
        let conf = aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .region(aws_sdk_ecr::config::Region::new("us-east-1"))
            .endpoint_url(&moto.endpoint)
            .build();
        let err = ecr::login(&aws_sdk_ecr::Client::from_conf(conf), None, false, &actions)
            .await
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput, "{err:#}");
        assert!(err.to_string().contains("credentials"), "{err}");
    });
}

#[test]
fn an_expired_token_and_access_denied_say_what_to_change() {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    fn error(code: &str, message: &str) -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                serde_json::json!({ "__type": code, "message": message }).to_string(),
            ),
        )
    }
    let expired = mock!(aws_sdk_ecr::Client::get_authorization_token).then_http_response(|| {
        error(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
    });
    let not_found = mock!(aws_sdk_ecr::Client::describe_repositories).then_http_response(|| {
        error(
            "RepositoryNotFoundException",
            "The repository with name 'app' does not exist",
        )
    });
    let denied = mock!(aws_sdk_ecr::Client::create_repository).then_http_response(|| {
        error(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/deploy/GitHubActions is not authorized to perform: ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:123456789012:repository/app because no identity-based policy allows the ecr:CreateRepository action",
        )
    });
    let ecr = mock_client!(
        aws_sdk_ecr,
        RuleMode::Sequential,
        [&expired, &not_found, &denied]
    );
    let actions = Actions::new(false, None, None);
    rt().block_on(async {
        let err = ecr::login(&ecr, None, false, &actions).await.unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput);
        assert!(
            err.to_string().contains("expired")
                && err.to_string().contains("configure-aws-credentials"),
            "{err}"
        );

        let err = ecr::ensure_repository(&ecr, &plan("app", &["sha-1"], None), true, &actions)
            .await
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput);
        let msg = err.to_string();
        assert!(
            msg.contains("`ecr:CreateRepository`")
                && msg.contains("arn:aws:sts::123456789012:assumed-role/deploy/GitHubActions"),
            "{msg}"
        );
    });
}
