//! Every environment variable fastdeploy reads, in one place.
//!
//! Nothing outside `settings`, `event` and `aws` reads the environment: the
//! values are resolved once into `Settings` and passed down.

/// Prefix the Actions runner gives to `with:` inputs. `action.yml` maps each
/// kebab-case input to `INPUT_<UPPER_SNAKE>` explicitly (hyphenated names are
/// reported not to reach container actions, github/docs#32671); the runner's
/// own `INPUT_<UPPER-WITH-HYPHENS>` spelling is accepted too.
pub const INPUT_PREFIX: &str = "INPUT_";

/// The job's OIDC token endpoint; set only with `permissions: id-token: write`.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// The bearer token for that endpoint.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// A file holding a web identity token (outside Actions: EKS, another CI).
pub const AWS_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";

/// `true` when running inside GitHub Actions.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// Name of the event that triggered the workflow (`push`, `pull_request`, ...).
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";
/// Path of the JSON file with the full event payload.
pub const GITHUB_EVENT_PATH: &str = "GITHUB_EVENT_PATH";
/// Fully-formed ref (`refs/heads/main`, `refs/tags/v1`, `refs/pull/7/merge`).
pub const GITHUB_REF: &str = "GITHUB_REF";
/// Commit SHA that triggered the workflow (the merge SHA for pull requests).
pub const GITHUB_SHA: &str = "GITHUB_SHA";
/// Head branch of a pull request.
pub const GITHUB_HEAD_REF: &str = "GITHUB_HEAD_REF";
/// `owner/name` of the repository.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
/// `https://github.com` or the GitHub Enterprise Server URL.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
/// REST API base URL (`https://api.github.com` or GHES `/api/v3`).
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// Unique id of the workflow run.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";
/// Attempt number of the workflow run (re-runs increase it).
pub const GITHUB_RUN_ATTEMPT: &str = "GITHUB_RUN_ATTEMPT";
/// Name of the job/workflow, used in messages.
pub const GITHUB_WORKFLOW: &str = "GITHUB_WORKFLOW";
/// Login of the person or app that started the run.
pub const GITHUB_ACTOR: &str = "GITHUB_ACTOR";
/// Checkout directory; contexts must stay inside it.
pub const GITHUB_WORKSPACE: &str = "GITHUB_WORKSPACE";
/// File the step writes `name=value` outputs to.
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// File the step appends its Markdown job summary to.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// Token fallback when the `github-token` input is empty.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// Teams already write `USE_CODEBUILD=true` in their scripts; it forces the
/// CodeBuild builder.
pub const USE_CODEBUILD: &str = "USE_CODEBUILD";
/// Outside Actions, the environment to deploy to, as teams' scripts write
/// it (`ENVIRONMENT=production ./fast-build.sh`); the `environment` input
/// (`--environment`) wins over it. Inside Actions it is not read: the event
/// and the `environment` input decide.
pub const ENVIRONMENT: &str = "ENVIRONMENT";
/// Region fallbacks, in the order the AWS CLI uses them.
pub const AWS_REGION: &str = "AWS_REGION";
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// Standard SDK endpoint override; the test sandbox points it at moto.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// https://no-color.org
pub const NO_COLOR: &str = "NO_COLOR";
/// Set by the runner when debug logging is enabled for a re-run.
pub const RUNNER_DEBUG: &str = "RUNNER_DEBUG";
/// `tracing` filter override, e.g. `FASTDEPLOY_LOG=fastdeploy=debug`.
pub const FASTDEPLOY_LOG: &str = "FASTDEPLOY_LOG";
/// Path of the docker CLI (defaults to `docker` on `PATH`).
pub const FASTDEPLOY_DOCKER: &str = "FASTDEPLOY_DOCKER";
/// Path of buildah (defaults to `buildah` on `PATH`).
pub const FASTDEPLOY_BUILDAH: &str = "FASTDEPLOY_BUILDAH";
/// Extra global flags for buildah, e.g. `--storage-driver vfs` on hosts
/// without overlayfs (the test sandbox sets it).
pub const FASTDEPLOY_BUILDAH_FLAGS: &str = "FASTDEPLOY_BUILDAH_FLAGS";
/// Slack API base URL (the sandbox points it at its recording receiver).
pub const FASTDEPLOY_SLACK_API_URL: &str = "FASTDEPLOY_SLACK_API_URL";
/// Speeds up polls and retries for tests: a multiplier on every delay
/// (`0.01` makes a 5 s poll 50 ms). Never set in production.
pub const FASTDEPLOY_DELAY_SCALE: &str = "FASTDEPLOY_DELAY_SCALE";
/// Registry scheme override (`http`) for a plain-HTTP sandbox registry.
pub const FASTDEPLOY_REGISTRY_INSECURE: &str = "FASTDEPLOY_REGISTRY_INSECURE";
/// `buildah bud --isolation` value (`chroot` where user namespaces are missing).
pub const FASTDEPLOY_BUILDAH_ISOLATION: &str = "FASTDEPLOY_BUILDAH_ISOLATION";
/// The docker CLI's config directory (buildx builders, plugins).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The user's home: docker's config is `~/.docker` when `DOCKER_CONFIG` is unset.
pub const HOME: &str = "HOME";
/// The AWS profile the standard credential chain uses; named in errors when
/// it does not exist.
pub const AWS_PROFILE: &str = "AWS_PROFILE";
/// Where the AWS CLI's config and credentials files are, when not in `~/.aws`.
pub const AWS_CONFIG_FILE: &str = "AWS_CONFIG_FILE";
pub const AWS_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
/// Benchmarks only: a path where `run` writes, at exit, its wall time, the
/// time spent waiting on outside systems and its peak RSS (see `timings`).
pub const FASTDEPLOY_TIMINGS_FILE: &str = "FASTDEPLOY_TIMINGS_FILE";
