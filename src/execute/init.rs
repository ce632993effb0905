//! `fastdeploy init`: needs no config, event or inputs, only the checkout
//! (and AWS credentials with `--cluster`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::Cli;
use crate::env_vars;
use crate::error::{BadInput, Exit};

/// One line of `init`'s report on stdout.
fn say(line: &str) -> std::io::Result<()> {
    crate::gha::print_data(&format!("{line}\n"))
}

pub async fn init(cli: &Cli, env: &BTreeMap<String, String>, cwd: &Path) -> anyhow::Result<Exit> {
    let flag = |name: &str| {
        cli.flags
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let set = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
    let workspace = set(env_vars::GITHUB_WORKSPACE)
        .map(PathBuf::from)
        .unwrap_or_else(|| cwd.to_path_buf());
    let repository = set(env_vars::GITHUB_REPOSITORY).unwrap_or_else(|| {
        workspace
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "app".into())
    });
    let opts = crate::init::InitOptions {
        workspace: workspace.clone(),
        cluster: flag("cluster"),
        force: cli.force,
        repository: Some(repository.clone()),
    };
    let mut found = crate::init::components(&workspace, &repository);
    if found.is_empty() {
        return Err(BadInput::other(format!(
            "no Dockerfile under {} (node_modules, .venv and build directories are skipped); fastdeploy init writes one component per Dockerfile",
            workspace.display()
        ))
        .into());
    }
    for f in &found {
        let target = f
            .target
            .as_deref()
            .map(|t| format!(", target {t}"))
            .unwrap_or_default();
        say(&format!(
            "found component {}: context {}{target}",
            f.name, f.context
        ))?;
    }
    if let Some(cluster) = &opts.cluster {
        let region = flag("aws-region")
            .or_else(|| set(env_vars::AWS_REGION))
            .or_else(|| set(env_vars::AWS_DEFAULT_REGION));
        let sdk = crate::aws::load(region.as_deref(), crate::clock::Clock::REAL).await;
        if sdk.region().is_none() {
            return Err(BadInput::other(
                "no AWS region to read the cluster in: pass --aws-region or set AWS_REGION",
            )
            .into());
        }
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        for note in crate::init::match_services(&ecs, cluster, &mut found).await? {
            say(&note)?;
        }
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let scheduler = aws_sdk_scheduler::Client::new(&sdk);
        for note in crate::init::match_triggers((&ecs, &events, &scheduler), &mut found).await {
            say(&note)?;
        }
    }
    let config = crate::init::render_config(&found, opts.cluster.as_deref());
    let written = crate::init::write_files(&opts, &config, &crate::init::render_workflow())?;
    for path in written {
        say(&format!("wrote {}", path.display()))?;
    }
    say(
        "next: `fastdeploy plan` shows what a run would do; set the repository variables AWS_ROLE_ARN and AWS_REGION for the workflow",
    )?;
    Ok(Exit::Success)
}
