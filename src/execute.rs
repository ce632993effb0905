//! Executes a plan: check, build, push, deploy, report. Side effects live
//! here and in the per-system modules this calls; the plan decides, this
//! module does.

use std::collections::BTreeMap;

use crate::cli::{Cli, Subcommand};
use crate::env_vars;
use crate::error::Exit;
use crate::gha::{Actions, Location};
use crate::inputs::RawInputs;
use crate::outcome::RunResult;
use crate::plan::{self, BuilderProbe, Plan};
use crate::settings::{BuilderInput, Settings};

/// Sets up tracing on stderr. Colour only on a terminal without `NO_COLOR`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if std::env::var_os(env_vars::RUNNER_DEBUG).is_some_and(|v| v == "1") { "fastdeploy=debug" } else { "fastdeploy=info" };
    let filter = EnvFilter::try_from_env(env_vars::FASTDEPLOY_LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os(env_vars::NO_COLOR).is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Prints a fatal error once: an `::error::` annotation inside Actions.
pub fn report_fatal(message: &str) {
    if std::env::var(env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true") {
        println!("::error title=fastdeploy::{}", crate::gha::escape_data(message));
    }
    eprintln!("error: {message}");
}

/// The process environment as a map (read once, here).
pub fn env_map() -> BTreeMap<String, String> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// Entry point behind `main`.
pub async fn main(cli: Cli) -> anyhow::Result<Exit> {
    let env = env_map();
    let cwd = std::env::current_dir()?;
    let mut raw = RawInputs::from_env(&env);
    cli.apply(&mut raw)?;
    let settings = Settings::resolve(raw, &env, &cwd)?;
    let actions = Actions::new(settings.context.in_actions, settings.output_file.clone(), settings.summary_file.clone());
    for secret in settings.raw.secrets() {
        actions.add_mask(secret);
    }
    let probe = if settings.builder == BuilderInput::Auto { crate::build::probe().await } else { BuilderProbe::default() };
    let plan = plan::build(&settings, &probe)?;

    if cli.command == Subcommand::Plan || settings.dry_run {
        print_plan(&plan, cli.json)?;
        write_plan_outputs(&actions, &plan)?;
        return Ok(Exit::Success);
    }
    let report = run(&settings, &plan, &actions).await?;
    Ok(if report.result.is_failure() { Exit::Failed } else { Exit::Success })
}

fn print_plan(plan: &Plan, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
    } else {
        print!("{}", plan.render_text());
    }
    Ok(())
}

/// A plan run writes what it resolved, so a workflow can branch on it.
fn write_plan_outputs(actions: &Actions, plan: &Plan) -> anyhow::Result<()> {
    actions.set_output("environment", plan.environment().unwrap_or(""))?;
    actions.set_output("result", RunResult::Skipped.as_str())?;
    let images: BTreeMap<&str, serde_json::Value> = plan
        .components
        .iter()
        .map(|c| (c.name.as_str(), serde_json::json!({ "repository": c.build.repository, "tags": c.build.tags })))
        .collect();
    actions.set_output("images", &serde_json::to_string(&images)?)?;
    let mut md = String::from("## fastdeploy plan\n\n```\n");
    md.push_str(&plan.render_text());
    md.push_str("```\n");
    actions.append_summary(&md)?;
    let _ = Location::default();
    Ok(())
}

/// Runs the plan. Filled in phase by phase.
pub async fn run(_settings: &Settings, _plan: &Plan, _actions: &Actions) -> anyhow::Result<crate::outcome::RunReport> {
    anyhow::bail!("the run phase is being assembled; use `fastdeploy plan`")
}
