//! The one integration test binary (matklad's "delete cargo integration
//! tests"): binary-level tests drive `fastdeploy` as the runner does, and
//! sandbox tests run against real moto, a real registry and buildah.

mod action;
mod alarms;
mod bases;
mod beanstalk;
mod before_deploy;
mod build;
mod buildkit;
mod buildkit_differential;
mod cache_prune;
mod codebuild;
mod context_guard;
mod credentials;
mod dockerfile;
mod dockerfile_corpus;
mod doctor;
mod e2e;
mod e2e_buildx;
mod ecr;
mod ecs;
mod faults;
mod hardening;
mod http_smoke;
mod init;
mod lambda;
mod lost_answers;
mod motions;
mod multiarch;
mod plan;
mod reporting;
mod runtime_config;
mod smoke;
mod support;
mod targets;
