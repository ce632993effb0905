//! fastdeploy: build, push to Amazon ECR and deploy in one step.
//!
//! The folders follow the pipeline, and data flows one way (a stage reads
//! what the stages before it produced, never what comes after):
//!
//! - [`settings`]: action inputs, CLI flags, `fastdeploy.yml` and the GitHub
//!   event, resolved once into one validated struct;
//! - [`plan`]: everything the run will do, computed before any side effect;
//! - [`checks`]: the build context and the Dockerfile, before anything is spent;
//! - [`image`]: building the image (buildx, buildah or CodeBuild), the OCI
//!   registry and ECR (named `image`, not `build`: `build/` is in many global
//!   git-ignore files);
//! - [`deploy`]: one folder per deploy target (`ecs`, with its one-off tasks,
//!   doctor and timeline; `lambda`; `beanstalk`), each implementing one
//!   contract (the `Target` trait: preflight, apply, put back, observe) that
//!   one driver runs to a verdict;
//! - [`report`]: the job summary, Slack, GitHub deployments and the PR comment.
//!
//! [`execute`] runs a plan through those stages. Beside them: [`outcome`]
//! (what a run did, filled in by the stages, read by the reporters), [`gha`]
//! (the Actions runtime: every stage writes its log lines, annotations and
//! masks through it, so it sits below them all rather than under `report`),
//! and the plumbing every stage shares: [`aws`] (the one SDK config and AWS
//! error classification), [`credentials`] (the GitHub OIDC token and the
//! role it assumes), [`logs`] (CloudWatch Logs), [`process`], [`cancel`],
//! [`wait`] (the one way anything is polled: the pace, the time scale, the
//! tolerance of failed looks), [`timings`], [`units`] (one convention for
//! sizes and durations), [`error`] and [`env_vars`].
//! [`init`] is the `fastdeploy init` command, which writes a starting
//! `fastdeploy.yml` and workflow and never runs the pipeline.

pub mod aws;
pub mod cancel;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod credentials;
pub mod deploy;
pub mod env_vars;
pub mod error;
pub mod execute;
pub mod gha;
pub mod image;
pub mod init;
pub mod logs;
pub mod outcome;
pub mod plan;
pub mod process;
pub mod report;
pub mod settings;
pub mod timings;
pub mod units;
pub mod wait;
