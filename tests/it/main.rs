//! The one integration test binary (matklad's "delete cargo integration
//! tests"): binary-level tests drive `fastdeploy` as the runner does, and
//! sandbox tests run against real moto, a real registry and buildah.

mod build;
mod context_guard;
mod dockerfile;
mod ecs;
mod sandbox;
mod smoke;
mod action;
mod plan;
mod reporting;
mod ecr;
mod codebuild;
mod hardening;
mod e2e;
mod faults;
