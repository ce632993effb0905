//! Executes a plan: check, build, push, deploy, report. Side effects live
//! here and in the per-system modules this calls; the plan decides, this
//! module does. [`run`] reads as the pipeline, one call per phase, each
//! phase in a file of its own.

mod build;
mod cache;
mod check;
mod connect;
mod deploy;
mod diff;
mod finish;
mod init;
mod motion;
mod remote;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use crate::cancel::Cancel;
use crate::cli::{Cli, Subcommand};
use crate::clock::Clock;
use crate::env_vars;
use crate::error::Exit;
use crate::gha::Actions;
use crate::outcome::{RunReport, RunResult};
use crate::plan::{self, BuilderProbe, Plan};
use crate::report::notify::{LogStyle, Notifier};
use crate::settings::inputs::RawInputs;
use crate::settings::{BuilderInput, Motion, Settings};

/// Sets up tracing on stderr. Colour only on a terminal without `NO_COLOR`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let debug = std::env::var_os(env_vars::RUNNER_DEBUG).is_some_and(|v| v == "1");
    let default = if debug {
        "fastdeploy=debug"
    } else {
        "fastdeploy=info"
    };
    let filter = EnvFilter::try_from_env(env_vars::FASTDEPLOY_LOG)
        .unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal()
        && std::env::var_os(env_vars::NO_COLOR).is_none_or(|v| v.is_empty());
    use tracing_subscriber::prelude::*;
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .with_filter(crate::timings::hide_wait_spans(filter));
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(crate::timings::layer())
        .try_init();
}

/// Prints a fatal error once: an `::error::` annotation inside Actions.
pub fn report_fatal(message: &str) {
    if std::env::var(env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true") {
        let escaped = crate::gha::escape_data(message);
        let _ = crate::gha::print_data(&format!("::error title=fastdeploy::{escaped}\n"));
    }
    let _ = writeln!(std::io::stderr(), "error: {message}");
}

/// The process environment as a map (read once, here).
pub fn env_map() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Entry point behind `main`.
pub async fn main(cli: Cli) -> anyhow::Result<Exit> {
    let env = env_map();
    let cwd = std::env::current_dir()?;
    if cli.command == Subcommand::Init {
        return init::init(&cli, &env, &cwd).await;
    }
    let mut raw = RawInputs::from_env(&env);
    cli.apply(&mut raw)?;
    let settings = Settings::resolve(raw, &env, &cwd)?;
    let actions = Actions::new(
        settings.context.in_actions,
        settings.output_file.clone(),
        settings.summary_file.clone(),
    );
    settings.mask_secrets(&actions);
    let probe = if matches!(settings.builder, BuilderInput::Auto | BuilderInput::Buildx) {
        let buildx_builder = settings.buildx_builder.as_deref();
        crate::image::probe(
            &settings.docker_program,
            &settings.buildah_program,
            buildx_builder,
        )
        .await
    } else {
        BuilderProbe::default()
    };
    let plan = plan::build(&settings, &probe)?;
    if cli.command == Subcommand::CachePrune {
        return Pipeline::new(&settings, &plan, &actions).prune(&plan).await;
    }
    if cli.command == Subcommand::Plan && cli.diff {
        return Pipeline::new(&settings, &plan, &actions)
            .diff(&plan, cli.exit_code)
            .await;
    }
    if cli.command == Subcommand::Plan || settings.dry_run {
        print_plan(&plan, cli.json)?;
        write_plan_outputs(&actions, &plan)?;
        return Ok(Exit::Success);
    }
    let report = run(&settings, &plan, &actions).await?;
    Ok(if report.result.is_failure() {
        Exit::Failed
    } else {
        Exit::Success
    })
}

fn print_plan(plan: &Plan, json: bool) -> anyhow::Result<()> {
    let text = match json {
        true => format!("{}\n", serde_json::to_string_pretty(plan)?),
        false => plan.render_text(),
    };
    crate::gha::print_data(&text)?;
    Ok(())
}

/// A plan run writes what it resolved, so a workflow can branch on it.
fn write_plan_outputs(actions: &Actions, plan: &Plan) -> anyhow::Result<()> {
    actions.set_output("environment", plan.environment().unwrap_or(""))?;
    actions.set_output("result", RunResult::Skipped.as_str())?;
    let images: indexmap::IndexMap<&str, serde_json::Value> = plan
        .components
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::json!({ "repository": c.build.repository, "tags": c.build.tags }),
            )
        })
        .collect();
    actions.set_output("images", &serde_json::to_string(&images)?)?;
    actions.append_summary(&format!(
        "## fastdeploy plan\n\n```\n{}```\n",
        plan.render_text()
    ))?;
    Ok(())
}

/// What every phase of one run shares.
struct Pipeline<'a> {
    settings: &'a Settings,
    actions: &'a Actions,
    style: LogStyle,
    cancel: Cancel,
    clock: Clock,
    started: Instant,
    /// `<repository>/<run id>/<attempt>` in Actions, `local/<commit>` elsewhere.
    run_key: String,
}

/// Runs the plan and reports. Bad input found by the checks or the
/// preflight returns an error (exit 2) before anything is built or pushed;
/// a failed build or deploy is a report with a failing result (exit 1).
pub async fn run(settings: &Settings, plan: &Plan, actions: &Actions) -> anyhow::Result<RunReport> {
    let run = Pipeline::new(settings, plan, actions);
    let mut report = RunReport::new(
        plan.environment(),
        plan.components.iter().map(|c| c.name.as_str()),
    );
    if !plan.motion.builds() {
        return run_motion(&run, plan, report).await;
    }
    let checked = run.check(plan, &mut report)?;
    let aws = run.connect(plan).await?;
    let plan = &run.preflight(&aws, plan).await?;
    let auth = run.registry(&aws, plan).await?;
    let mut notifier = Notifier::new(plan, settings, actions);
    notifier.start(plan).await;
    run.build(&aws, &auth, plan, &checked, &mut report).await?;
    if plan.context.is_pull_request() {
        run.baselines(plan, &auth, &mut notifier).await;
        run.pr_diff(&aws, plan, &report, &mut notifier).await;
    }
    let built = run.built(&auth, plan, &report);
    let registry = crate::image::registry::Client::new(&auth, run.clock);
    run.deploy(&aws, Some(registry), plan, built, &mut report)
        .await;
    run.report(plan, &auth.host, notifier, &mut report).await?;
    Ok(report)
}

/// `rollback` and `promote`: nothing is checked, built or pushed. What each
/// component's target gets is found first, read-only (what is not there is
/// bad input, exit 2, before anything changes), then deployed and reported
/// as a deploy is.
async fn run_motion(
    run: &Pipeline<'_>,
    plan: &Plan,
    mut report: RunReport,
) -> anyhow::Result<RunReport> {
    run.announce(plan);
    let aws = run.connect(plan).await?;
    // A rollback's targets are read while its revisions are found; a
    // promote's destinations are checked first, as a deploy's are.
    let plan = &match plan.motion {
        Motion::Promote { .. } => run.preflight(&aws, plan).await?,
        _ => plan.clone(),
    };
    let auth = run.login_for_motion(&aws, plan).await?;
    let changes = run.resolve(&aws, auth.as_ref(), plan, &mut report).await?;
    let mut notifier = Notifier::new(plan, run.settings, run.actions);
    notifier.start(plan).await;
    let registry = auth
        .as_ref()
        .map(|a| crate::image::registry::Client::new(a, run.clock));
    run.deploy(&aws, registry, plan, changes, &mut report).await;
    let host = auth.map(|a| a.host).or_else(|| plan.registry.host.clone());
    run.report(
        plan,
        host.as_deref().unwrap_or_default(),
        notifier,
        &mut report,
    )
    .await?;
    Ok(report)
}

impl<'a> Pipeline<'a> {
    fn new(settings: &'a Settings, plan: &Plan, actions: &'a Actions) -> Pipeline<'a> {
        let ctx = &plan.context;
        let run_key = match (&ctx.repository, &ctx.run_id) {
            (Some(repo), Some(run)) => format!("{repo}/{run}/{}", ctx.run_attempt),
            _ => format!("local/{}", ctx.commit.sha),
        };
        Pipeline {
            settings,
            actions,
            style: LogStyle::detect(settings.no_color),
            cancel: Cancel::on_signals(),
            clock: settings.clock,
            started: Instant::now(),
            run_key,
        }
    }
}
