//! fastdeploy: build, push to Amazon ECR and deploy to ECS in one step.
//!
//! The shape: `settings` resolves inputs, config and the GitHub context once;
//! `plan` computes everything the run will do; `execute` carries it out
//! through one module per outside system; reporters read the `outcome`.

pub mod aws;
pub mod build;
pub mod cancel;
pub mod cli;
pub mod codebuild;
pub mod config;
pub mod context;
pub mod dockerfile;
pub mod ecr;
pub mod ecs;
pub mod env_vars;
pub mod error;
pub mod event;
pub mod execute;
pub mod gha;
pub mod github;
pub mod inputs;
pub mod logs;
pub mod notify;
pub mod outcome;
pub mod plan;
pub mod process;
pub mod registry;
pub mod settings;
pub mod slack;
pub mod summary;
pub mod timings;
