//! Executes a plan: check, build, push, deploy, report. Side effects live
//! here and in the per-system modules this calls; the plan decides, this
//! module does.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use tracing::Instrument;

use crate::build::registry::RegistryAuth;
use crate::build::{BuildOptions, BuildRequest};
use crate::cancel::Cancel;
use crate::cli::{Cli, Subcommand};
use crate::env_vars;
use crate::error::{Exit, chain_message};
use crate::gha::{Actions, Location};
use crate::outcome::{
    BuildReport, ComponentReport, Phases, RunReport, RunResult, Severity, TargetRef, Warning,
};
use crate::plan::{self, BuilderKind, BuilderProbe, ComponentPlan, Plan, TargetPlan};
use crate::process::Runner;
use crate::report::notify::{LogStyle, Notifier, PhaseEnd, PhaseLog};
use crate::settings::inputs::RawInputs;
use crate::settings::{BuilderInput, Settings};
use crate::timings::wait;

/// Sets up tracing on stderr. Colour only on a terminal without `NO_COLOR`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if std::env::var_os(env_vars::RUNNER_DEBUG).is_some_and(|v| v == "1") {
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
        println!(
            "::error title=fastdeploy::{}",
            crate::gha::escape_data(message)
        );
    }
    eprintln!("error: {message}");
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
        return init(&cli, &env, &cwd).await;
    }
    let mut raw = RawInputs::from_env(&env);
    cli.apply(&mut raw)?;
    let settings = Settings::resolve(raw, &env, &cwd)?;
    let actions = Actions::new(
        settings.context.in_actions,
        settings.output_file.clone(),
        settings.summary_file.clone(),
    );
    for secret in settings.raw.secrets() {
        actions.add_mask(secret);
    }
    for value in settings.build_secret_values.values() {
        actions.add_mask(secrecy::ExposeSecret::expose_secret(value));
    }
    let probe = if matches!(settings.builder, BuilderInput::Auto | BuilderInput::Buildx) {
        crate::build::probe(
            &settings.docker_program,
            &settings.buildah_program,
            settings.buildx_builder.as_deref(),
        )
        .await
    } else {
        BuilderProbe::default()
    };
    let plan = plan::build(&settings, &probe)?;

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

/// `fastdeploy init`: needs no config, event or inputs, only the checkout
/// (and AWS credentials with `--cluster`).
async fn init(
    cli: &Cli,
    env: &BTreeMap<String, String>,
    cwd: &std::path::Path,
) -> anyhow::Result<Exit> {
    let flag = |name: &str| {
        cli.flags
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let workspace = env
        .get(env_vars::GITHUB_WORKSPACE)
        .filter(|w| !w.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cwd.to_path_buf());
    let repository = env
        .get(env_vars::GITHUB_REPOSITORY)
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| {
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
        return Err(crate::error::BadInput::other(format!(
            "no Dockerfile under {} (node_modules, .venv and build directories are skipped); fastdeploy init writes one component per Dockerfile",
            workspace.display()
        ))
        .into());
    }
    for f in &found {
        println!(
            "found component {}: context {}{}",
            f.name,
            f.context,
            f.target
                .as_deref()
                .map(|t| format!(", target {t}"))
                .unwrap_or_default()
        );
    }
    if let Some(cluster) = &opts.cluster {
        let region = flag("aws-region")
            .or_else(|| {
                env.get(env_vars::AWS_REGION)
                    .filter(|r| !r.is_empty())
                    .cloned()
            })
            .or_else(|| {
                env.get(env_vars::AWS_DEFAULT_REGION)
                    .filter(|r| !r.is_empty())
                    .cloned()
            });
        let sdk = crate::aws::load(region.as_deref(), 1.0).await;
        if sdk.region().is_none() {
            return Err(crate::error::BadInput::other(
                "no AWS region to read the cluster in: pass --aws-region or set AWS_REGION",
            )
            .into());
        }
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        for note in crate::init::match_services(&ecs, cluster, &mut found).await? {
            println!("{note}");
        }
    }
    let config = crate::init::render_config(&found, opts.cluster.as_deref());
    let written = crate::init::write_files(&opts, &config, &crate::init::render_workflow())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    println!(
        "next: `fastdeploy plan` shows what a run would do; set the repository variables AWS_ROLE_ARN and AWS_REGION for the workflow"
    );
    Ok(Exit::Success)
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
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::json!({ "repository": c.build.repository, "tags": c.build.tags }),
            )
        })
        .collect();
    actions.set_output("images", &serde_json::to_string(&images)?)?;
    let mut md = String::from("## fastdeploy plan\n\n```\n");
    md.push_str(&plan.render_text());
    md.push_str("```\n");
    actions.append_summary(&md)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The run: check → login → build → deploy → report.

/// What the check phase learnt about one component, used by the build.
struct Checked {
    context_hash: String,
    dockerfile_bytes: Vec<u8>,
    context_bytes: u64,
    context_files: u64,
}

/// Runs the plan and reports. Bad input found by the checks returns an error
/// (exit 2) before anything is built or pushed; a failed build or deploy is
/// a report with a failing result (exit 1).
pub async fn run(settings: &Settings, plan: &Plan, actions: &Actions) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let style = LogStyle::detect(settings.no_color);
    let cancel = Cancel::on_signals();
    let mut report = RunReport {
        result: RunResult::Skipped,
        environment: plan.environment().map(str::to_string),
        components: plan
            .components
            .iter()
            .map(|c| ComponentReport::new(&c.name))
            .collect(),
        warnings: Vec::new(),
        phases: Phases::default(),
        failure: None,
        links: BTreeMap::new(),
    };

    // 1. Checks: local and free. Anything wrong here is the user's to fix.
    let phase = PhaseLog::open(actions, style, "check", None);
    let mut checked = Vec::new();
    for (c, rep) in plan.components.iter().zip(report.components.iter_mut()) {
        match check_component(c, plan, actions, &mut report.warnings) {
            Ok(ch) => {
                rep.build.context_bytes = Some(ch.context_bytes);
                rep.build.context_files = Some(ch.context_files);
                checked.push(ch);
            }
            Err(e) => {
                phase.close(PhaseEnd::Failed(format!("component `{}`", c.name)));
                return Err(e.context(format!("checking component `{}`", c.name)));
            }
        }
    }
    report.phases.check = Some(phase.close(PhaseEnd::Done).as_secs_f64());

    // 2. AWS clients, built once at the edge.
    let (sdk, role) = crate::aws::load_with(
        plan.aws_region.as_deref(),
        settings.delay_scale,
        settings.assume_role.as_ref(),
        actions,
    )
    .await;
    if sdk.region().is_none() {
        // Without it every AWS call fails with "Missing Region", after the
        // checks and as a failed deploy; it is the user's to set.
        return Err(crate::error::BadInput::other(
            "no AWS region: set the `aws-region` input (or AWS_REGION or AWS_DEFAULT_REGION, or a region in the AWS profile in use)",
        )
        .into());
    }
    if let Some(role) = &role {
        // The first credentials now, before anything is built: a refused
        // token or a role that does not trust this repository is exit 2.
        role.check().instrument(wait("aws")).await?;
        actions.line(&format!(
            "AWS credentials: role {} assumed with the job's web identity token (refreshed before the session ends)",
            settings.assume_role.as_ref().map(|r| r.role_arn.as_str()).unwrap_or_default()
        ));
    }
    // Each client's requests are waits on AWS (timings).
    let ecr = crate::aws_client!(aws_sdk_ecr, &sdk);
    let ecs = crate::aws_client!(aws_sdk_ecs, &sdk);
    let lambda = crate::aws_client!(aws_sdk_lambda, &sdk);
    let beanstalk = crate::aws_client!(aws_sdk_elasticbeanstalk, &sdk);
    // Path-style addressing where an endpoint is set (the sandbox's moto
    // serves no bucket subdomains); AWS's own endpoints take either.
    let s3 = crate::aws_client!(aws_sdk_s3, &sdk, |b: aws_sdk_s3::config::Builder| b
        .force_path_style(sdk.endpoint_url().is_some()));

    // The CodeBuild project and the deploy targets are validated before
    // anything is created, built or pushed. What a target needs of the build
    // (Lambda: one platform, its architecture) is settled here too.
    let mut resolved = plan.clone();
    let remote_project = plan
        .builder
        .codebuild_project
        .as_deref()
        .filter(|_| plan.builder.kind == BuilderKind::Codebuild);
    if plan.components.iter().any(|c| c.deploy.is_some()) || remote_project.is_some() {
        let phase = PhaseLog::open(actions, style, "preflight", None);
        if let Some(project) = remote_project
            && let Err(e) = crate::build::codebuild::preflight(
                &crate::aws_client!(aws_sdk_codebuild, &sdk),
                project,
            )
            .await
        {
            phase.close(PhaseEnd::Failed(format!("CodeBuild project `{project}`")));
            return Err(e);
        }
        for c in resolved.components.iter_mut() {
            let checked = match &c.deploy {
                None => Ok(()),
                Some(TargetPlan::Ecs(d)) => {
                    crate::deploy::ecs::preflight(&ecs, d).await.map(|_| ())
                }
                Some(TargetPlan::Lambda(d)) => crate::deploy::lambda::preflight(&lambda, d)
                    .await
                    .and_then(|pre| build_for_function(c, &pre, actions)),
                Some(TargetPlan::Beanstalk(d)) => {
                    crate::deploy::beanstalk::preflight(&beanstalk, d, &c.build, &c.name)
                        .await
                        .map(|_| ())
                }
            };
            if let Err(e) = checked {
                let target = c
                    .deploy
                    .as_ref()
                    .map(TargetPlan::describe)
                    .unwrap_or_default();
                phase.close(PhaseEnd::Failed(target));
                return Err(e);
            }
        }
        phase.close(PhaseEnd::Done);
    }
    let plan = &resolved;

    let phase = PhaseLog::open(actions, style, "registry", None);
    let auth = match crate::build::ecr::login(
        &ecr,
        plan.registry.host.as_deref(),
        settings.registry_insecure,
        actions,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            phase.close(PhaseEnd::Failed("login".into()));
            return Err(e);
        }
    };
    // A buildx builder fastdeploy must create is created before anything is
    // pushed (an image that cannot be pulled is bad input), with the
    // registry's credentials at hand for an image mirrored there.
    if let Some(buildx) = &plan.builder.buildx {
        let log = actions.clone();
        let runner = Runner::with_sink(std::sync::Arc::new(move |_, line: &str| log.line(line)));
        let image = plan.builder.buildkit_image.as_deref();
        if let Err(e) = crate::build::docker::prepare_builder(
            buildx,
            image,
            &auth,
            &settings.docker_program,
            settings.docker_config.as_deref(),
            &runner,
        )
        .await
        {
            phase.close(PhaseEnd::Failed("buildx builder".into()));
            return Err(e);
        }
    }
    if plan.target.pushes() {
        for c in &plan.components {
            if let Err(e) = crate::build::ecr::ensure_repository(
                &ecr,
                &c.build,
                plan.registry.create_repositories,
                actions,
            )
            .await
            {
                phase.close(PhaseEnd::Failed(format!(
                    "repository `{}`",
                    c.build.repository
                )));
                return Err(e);
            }
        }
    }
    phase.close(PhaseEnd::Done);

    let mut notifier = Notifier::new(plan, settings, actions);
    notifier.start(plan).await;

    // 3. Builds, concurrently up to max-parallel.
    let build_started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("fastdeploy-")
        .tempdir()
        .context("creating a work directory")?;
    let opts = BuildOptions {
        docker: settings.docker_program.clone(),
        buildah: settings.buildah_program.clone(),
        buildah_flags: settings.buildah_flags.clone(),
        buildah_isolation: settings.buildah_isolation.clone(),
        docker_config: settings.docker_config.clone(),
        delay_scale: settings.delay_scale,
        max_image_bytes: plan.limits.max_image_bytes,
    };
    let sdk_ref = &sdk;
    let parallel = plan.components.len() > 1 && plan.max_parallel > 1;
    let all_group = parallel.then(|| PhaseLog::open(actions, style, "build", None));
    let builds = futures::stream::iter(plan.components.iter().zip(checked.iter()).enumerate())
        .map(|(i, (c, ch))| {
            let work_dir = work.path().join(&c.name);
            let auth = &auth;
            let ecr = &ecr;
            let opts = &opts;
            let cancel = &cancel;
            async move {
                // Concurrent builds share one group (their lines carry the
                // component's name); a lone build gets a group of its own.
                let group =
                    (!parallel).then(|| PhaseLog::open(actions, style, "build", Some(&c.name)));
                let t = Instant::now();
                let result = build_one(
                    plan, c, ch, auth, ecr, sdk_ref, opts, &work_dir, cancel, actions,
                )
                .await;
                let end = match &result {
                    Ok(b) if b.skipped => PhaseEnd::Skipped(format!(
                        "{} is already in the registry",
                        b.content_tag.as_deref().unwrap_or("the content tag")
                    )),
                    Ok(_) => PhaseEnd::Done,
                    Err(e) => PhaseEnd::Failed(chain_message(e)),
                };
                match group {
                    Some(g) => {
                        g.close(end);
                    }
                    None => actions.line(&crate::report::notify::closing_line(
                        style,
                        "build",
                        Some(&c.name),
                        &end,
                        t.elapsed(),
                    )),
                }
                (i, result)
            }
        })
        .buffer_unordered(plan.max_parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    if let Some(g) = all_group {
        g.close(if builds.iter().any(|(_, r)| r.is_err()) {
            PhaseEnd::Failed("see the components above".into())
        } else {
            PhaseEnd::Done
        });
    }
    for (i, result) in builds {
        let rep = &mut report.components[i];
        match result {
            Ok(b) => {
                rep.build = BuildReport {
                    context_bytes: rep.build.context_bytes,
                    context_files: rep.build.context_files,
                    ..b
                };
                rep.result = RunResult::Built;
            }
            Err(e) => {
                // What was made is still reported: an image over the limit
                // has a digest and a size, a remote build has a link.
                if let Some(big) = e.downcast_ref::<crate::build::ImageTooLarge>() {
                    rep.build.digest = Some(big.digest.clone());
                    rep.build.image_bytes = Some(big.size.bytes);
                    rep.build.layers = Some(big.size.layers);
                }
                if let Some(remote) = e.downcast_ref::<crate::build::codebuild::RemoteBuildFailed>()
                {
                    rep.build.codebuild_build = Some(remote.build_id.clone());
                }
                rep.result = RunResult::Failure;
                rep.failure = Some(chain_message(&e));
            }
        }
    }
    report.phases.build = Some(build_started.elapsed().as_secs_f64());
    if plan.context.is_pull_request() {
        set_baselines(plan, &auth, settings.delay_scale, &mut notifier).await;
    }

    // 4. Deploys, concurrently, each judged on its own.
    let deploy_started = Instant::now();
    let to_deploy: Vec<(usize, &TargetPlan, String)> = plan
        .components
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let d = c.deploy.as_ref()?;
            let rep = &report.components[i];
            if rep.result != RunResult::Built || cancel.is_cancelled() {
                return None;
            }
            Some((i, d, rep.build.digest.clone()?))
        })
        .collect();
    if !to_deploy.is_empty() {
        let registry = crate::build::registry::Client::new(&auth, settings.delay_scale);
        let logs = crate::aws_client!(aws_sdk_cloudwatchlogs, &sdk);
        let run_key = match (&plan.context.repository, &plan.context.run_id) {
            (Some(repo), Some(run)) => format!("{repo}/{run}/{}", plan.context.run_attempt),
            _ => format!("local/{}", plan.context.commit.sha),
        };
        let tasks = crate::deploy::ecs::TaskEnv {
            logs: &logs,
            run_key: &run_key,
            region: plan.aws_region.as_deref(),
        };
        // The deploy-time doctor reads ECS services' target groups; an image's size paces its pull.
        let elb = crate::aws_client!(aws_sdk_elasticloadbalancingv2, &sdk);
        let image_bytes: Vec<Option<u64>> = report
            .components
            .iter()
            .map(|c| c.build.image_bytes)
            .collect();
        let deploys = futures::stream::iter(to_deploy)
            .map(|(i, d, digest)| {
                let (ecs, lambda, registry, tasks, beanstalk, s3) =
                    (&ecs, &lambda, &registry, &tasks, &beanstalk, &s3);
                let (elb, image_bytes) = (&elb, image_bytes[i]);
                let cancel = &cancel;
                let c = &plan.components[i];
                let image = format!("{}/{}@{digest}", auth.host, c.build.repository);
                async move {
                    let phase = PhaseLog::open(actions, style, "deploy", Some(&c.name));
                    let scale = settings.delay_scale;
                    let outcome = match d {
                        TargetPlan::Ecs(d) => {
                            let ignore = &plan.limits.ignore_checks;
                            let doctor = crate::deploy::ecs::doctor::Examine {
                                elb,
                                image_bytes,
                                ignore,
                            };
                            crate::deploy::ecs::doctor::deploy_examined(
                                ecs, &doctor, tasks, d, &image, scale, cancel, actions,
                            )
                            .await
                        }
                        TargetPlan::Lambda(d) => {
                            let image = crate::deploy::lambda::Image {
                                uri: &image,
                                repository: &c.build.repository,
                                digest: &digest,
                            };
                            crate::deploy::lambda::deploy(
                                lambda, registry, d, image, scale, cancel, actions,
                            )
                            .await
                        }
                        TargetPlan::Beanstalk(d) => {
                            let image = crate::deploy::beanstalk::Image {
                                uri: &image,
                                digest: &digest,
                            };
                            let commit = &plan.context.commit.sha;
                            crate::deploy::beanstalk::deploy(
                                beanstalk, s3, d, &c.build, &c.name, image, commit, scale, cancel,
                                actions,
                            )
                            .await
                        }
                    };
                    let end = match &outcome.failure {
                        Some(f) => PhaseEnd::Failed(f.clone()),
                        None if outcome.report.unchanged => {
                            PhaseEnd::Skipped("already serving this image".into())
                        }
                        None => PhaseEnd::Done,
                    };
                    phase.close(end);
                    (i, outcome)
                }
            })
            .buffer_unordered(plan.max_parallel.max(1))
            .collect::<Vec<_>>()
            .await;
        for (i, outcome) in deploys {
            let rep = &mut report.components[i];
            rep.result = outcome.result;
            rep.failure = outcome.failure.or(rep.failure.take());
            rep.deploy = Some(outcome.report);
        }
        report.phases.deploy = Some(deploy_started.elapsed().as_secs_f64());
    }
    for (c, rep) in plan.components.iter().zip(report.components.iter_mut()) {
        if rep.result == RunResult::Built && c.deploy.is_some() {
            // Built but never deployed: the run was cancelled between phases.
            rep.result = RunResult::Failure;
            rep.failure
                .get_or_insert_with(|| "cancelled before the deploy started".into());
        }
    }

    report.result = RunReport::overall(&report.components);
    report.failure = report
        .components
        .iter()
        .find_map(|c| c.failure.as_ref().map(|f| format!("{}: {f}", c.name)));
    report.phases.total = Some(started.elapsed().as_secs_f64());
    add_links(plan, &auth.host, &mut report);

    // 5. Report. Outputs first: they must be written even if reporting is
    // interrupted.
    write_outputs(actions, plan, &report, &auth.host)?;
    for c in &report.components {
        if let Some(f) = &c.failure {
            actions.error(
                &format!("{}: {f}", c.name),
                &Location {
                    title: Some("fastdeploy"),
                    ..Location::default()
                },
            );
        }
    }
    let phase = PhaseLog::open(actions, style, "report", None);
    let extra = notifier.finish(plan, &report).await;
    // finish() has shown each warning already; the summary lists them too.
    for w in extra {
        if !report.warnings.contains(&w) {
            report.warnings.push(w);
        }
    }
    // The summary is reporting too: failing to write it is a warning, never
    // a failed deploy.
    let end = match actions.append_summary(&crate::report::summary::render(plan, &report)) {
        Ok(()) => PhaseEnd::Done,
        Err(e) => {
            let message = format!(
                "the job summary could not be written: {}",
                chain_message(&e)
            );
            actions.warning(&message, &Location::default());
            PhaseEnd::Failed(message)
        }
    };
    phase.close(end);
    actions.line(&format!("result: {}", report.result.as_str()));
    Ok(report)
}

fn check_component(
    c: &ComponentPlan,
    plan: &Plan,
    actions: &Actions,
    warnings: &mut Vec<Warning>,
) -> anyhow::Result<Checked> {
    let b = &c.build;
    let df = crate::checks::dockerfile::load_with_args(&b.dockerfile, &b.build_args)?;
    df.final_stage(b.target.as_deref())?;
    let runs = match &c.deploy {
        _ if !b.push => crate::checks::dockerfile::Runs::Nowhere,
        Some(TargetPlan::Lambda(_)) => crate::checks::dockerfile::Runs::AsNonRoot,
        _ => crate::checks::dockerfile::Runs::AsImageSays,
    };
    let findings = crate::checks::dockerfile::check_image(
        &df,
        b.target.as_deref(),
        runs,
        &plan.limits.ignore_checks,
    );
    let mut found = crate::checks::dockerfile::to_warnings(
        &findings,
        &b.dockerfile,
        &plan.context.workspace,
        Some(&c.name),
    );
    // The file set is the one the chosen builder sends (BuildKit and buildah
    // read exception patterns differently in corners).
    let scan = crate::checks::context::scan_for(
        &b.context,
        &b.dockerfile,
        crate::checks::context::Matching::from(plan.builder.kind),
    )?;
    actions.line(&format!(
        "{}: {}",
        c.name,
        crate::checks::context::summary_line(&scan)
    ));
    // Context findings point at the ignore file to edit (or where it belongs).
    let ignore_path = scan
        .ignore_file
        .clone()
        .unwrap_or_else(|| b.context.join(".dockerignore"));
    let ignore_file = Some(
        ignore_path
            .strip_prefix(&plan.context.workspace)
            .unwrap_or(&ignore_path)
            .display()
            .to_string(),
    );
    let context_warnings = crate::checks::context::check_limits(
        &scan,
        plan.limits.warn_context_bytes,
        plan.limits.max_context_bytes,
    )?;
    // Context findings can be silenced by id too (a team that ships `dist/` on purpose).
    found.extend(
        context_warnings
            .into_iter()
            .filter(|w| {
                w.rule
                    .as_ref()
                    .is_none_or(|r| !plan.limits.ignore_checks.contains(r))
            })
            .map(|w| Warning {
                component: Some(c.name.clone()),
                file: w.file.or_else(|| ignore_file.clone()),
                ..w
            }),
    );
    for w in &found {
        let at = Location {
            file: w.file.as_deref(),
            line: w.line,
            title: w.rule.as_deref(),
        };
        match w.severity {
            Severity::Warning => actions.warning(&w.message, &at),
            Severity::Notice => actions.notice(&w.message, &at),
        }
    }
    warnings.extend(found);
    Ok(Checked {
        context_hash: crate::checks::context::content_hash(&scan)?,
        dockerfile_bytes: df.source().as_bytes().to_vec(),
        context_bytes: scan.total_bytes,
        context_files: scan.file_count,
    })
}

/// A Lambda function takes one image manifest for its own architecture: the
/// component is built for that one platform. A `platforms` setting that says
/// otherwise is the user's to fix, before anything is built.
fn build_for_function(
    c: &mut ComponentPlan,
    pre: &crate::deploy::lambda::Preflight,
    actions: &Actions,
) -> anyhow::Result<()> {
    let wanted = vec![pre.platform.clone()];
    let function = match &c.deploy {
        Some(TargetPlan::Lambda(d)) => d.function.clone(),
        _ => pre.function_arn.clone(),
    };
    if !c.build.platforms.is_empty() && c.build.platforms != wanted {
        return Err(crate::error::BadInput::other(format!(
            "component `{}` sets `platforms` to {}, but Lambda function {} runs on {} and takes one image for {}; \
             remove `platforms` (fastdeploy builds for the function's architecture) or set it to {}",
            c.name,
            c.build.platforms.join(","),
            function,
            pre.architecture,
            pre.platform,
            pre.platform
        ))
        .into());
    }
    if c.build.platforms.is_empty() {
        actions.line(&format!(
            "[{}] Lambda function {function} runs on {}: building for {}",
            c.name, pre.architecture, pre.platform
        ));
    }
    c.build.platforms = wanted;
    Ok(())
}

/// Builds one component with the plan's builder and reads back its image.
async fn build_one(
    plan: &Plan,
    c: &ComponentPlan,
    ch: &Checked,
    auth: &RegistryAuth,
    ecr: &aws_sdk_ecr::Client,
    sdk: &aws_config::SdkConfig,
    opts: &BuildOptions,
    work_dir: &std::path::Path,
    cancel: &Cancel,
    actions: &Actions,
) -> anyhow::Result<BuildReport> {
    let content_tag = crate::build::content_tag(&ch.context_hash, &c.build, &ch.dockerfile_bytes);
    let req = BuildRequest {
        component: &c.name,
        plan: &c.build,
        registry: &auth.host,
        content_tag: Some(content_tag.clone()),
        // Attestations make an image index, which Lambda refuses.
        provenance: plan.builder.provenance && !matches!(c.deploy, Some(TargetPlan::Lambda(_))),
        buildx_builder: plan
            .builder
            .buildx
            .as_ref()
            .and_then(|b| b.builder.as_deref()),
        work_dir,
    };
    // Parallel builds share the log: each line says whose it is.
    let prefix = if plan.components.len() > 1 {
        format!("[{}] ", c.name)
    } else {
        String::new()
    };
    let log = actions.clone();
    let runner = Runner::with_sink(std::sync::Arc::new(move |_, line: &str| {
        log.line(&format!("{prefix}{line}"))
    }));
    let mut out = BuildReport {
        content_tag: Some(content_tag),
        image: Some(req.image()),
        tags: c.build.tags.clone(),
        ..BuildReport::default()
    };
    match plan.builder.kind {
        BuilderKind::Codebuild => {
            let cb = crate::aws_client!(aws_sdk_codebuild, sdk);
            let logs = crate::aws_client!(aws_sdk_cloudwatchlogs, sdk);
            let project = plan
                .builder
                .codebuild_project
                .as_deref()
                .unwrap_or_default();
            let (built, build_id) = crate::build::codebuild::build(
                &cb,
                &logs,
                ecr,
                project,
                &req,
                &plan.context.commit.sha,
                &plan.context.workspace,
                plan.builder.codebuild_timeout_minutes,
                opts.delay_scale,
                cancel,
                actions,
            )
            .await?;
            out.codebuild_build = Some(build_id);
            out.digest = Some(built.digest.clone());
            out.seconds = Some(built.seconds);
            out.cached_steps = built.cached_steps;
            out.total_steps = built.total_steps;
            if let Ok(d) = crate::build::ecr::image_details(
                ecr,
                &c.build.repository,
                &built.digest,
                opts.delay_scale,
            )
            .await
            {
                out.image_bytes = d.bytes;
            }
        }
        kind => {
            let built = crate::build::build_component(kind, &req, auth, &runner, opts).await?;
            out.digest = Some(built.digest.clone());
            out.seconds = Some(built.seconds);
            out.cached_steps = built.cached_steps;
            out.total_steps = built.total_steps;
            out.skipped = built.skipped;
            if let Some(size) = &built.size {
                out.image_bytes = Some(size.bytes);
                out.layers = Some(size.layers);
            }
        }
    }
    if let (Some(severity), Some(digest)) = (&plan.registry.fail_on_severity, &out.digest)
        && c.build.push
    {
        let findings = crate::build::ecr::check_scan(
            ecr,
            &c.build.repository,
            digest,
            severity,
            opts.delay_scale,
            cancel,
            actions,
        )
        .await?;
        if !findings.is_empty() {
            anyhow::bail!(
                "the image scan found {} finding(s) at or above {severity}:\n{}",
                findings.len(),
                findings
                    .iter()
                    .map(|f| format!("  {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    Ok(out)
}

/// The default branch's last build of each component, for the pull request
/// comment's "change against" columns. Unknown is fine: the columns say so.
async fn set_baselines(
    plan: &Plan,
    auth: &RegistryAuth,
    delay_scale: f64,
    notifier: &mut Notifier<'_>,
) {
    let branch = plan
        .context
        .default_branch
        .clone()
        .unwrap_or_else(|| "main".into());
    let client = crate::build::registry::Client::new(auth, delay_scale);
    for c in &plan.components {
        let tag = plan::sanitize_tag(&branch);
        let image_bytes = match client.manifest_digest(&c.build.repository, &tag).await {
            Ok(Some(digest)) => client
                .image_size(&c.build.repository, &digest)
                .await
                .ok()
                .map(|s| s.bytes),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!("no baseline for {}: {e:#}", c.name);
                None
            }
        };
        if image_bytes.is_some() {
            notifier.set_baseline(
                &c.name,
                crate::report::summary::Baseline {
                    branch: branch.clone(),
                    image_bytes,
                    context_bytes: None,
                },
            );
        }
    }
}

fn add_links(plan: &Plan, registry: &str, report: &mut RunReport) {
    let region = plan.aws_region.as_deref().unwrap_or("us-east-1");
    for (c, rep) in plan.components.iter().zip(report.components.iter()) {
        match &c.deploy {
            Some(TargetPlan::Ecs(d)) => {
                report.links.insert(
                    format!("ECS service {}", d.service),
                    format!(
                        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={region}",
                        d.cluster, d.service
                    ),
                );
            }
            Some(TargetPlan::Lambda(d)) => {
                let name = d.function.rsplit(':').next().unwrap_or(&d.function);
                report.links.insert(
                    format!("Lambda function {name}"),
                    format!("https://{region}.console.aws.amazon.com/lambda/home?region={region}#/functions/{name}/aliases/{}", d.alias),
                );
            }
            Some(TargetPlan::Beanstalk(d)) => {
                report.links.insert(
                    format!("Elastic Beanstalk environment {}", d.environment),
                    format!(
                        "https://{region}.console.aws.amazon.com/elasticbeanstalk/home?region={region}#/application/overview?applicationName={}",
                        d.application
                    ),
                );
            }
            None => {}
        }
        if let Some(id) = &rep.build.codebuild_build {
            report.links.insert(
                format!("CodeBuild build {}", c.name),
                format!(
                    "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{}/build/{}/?region={region}",
                    plan.builder.codebuild_project.as_deref().unwrap_or_default(),
                    id.rsplit('/').next().unwrap_or(id)
                ),
            );
        }
        if rep.build.digest.is_some() && registry.contains(".dkr.ecr.") {
            report.links.insert(
                format!("ECR image {}", c.name),
                format!(
                    "https://{region}.console.aws.amazon.com/ecr/repositories/private/{}/{}?region={region}",
                    registry.split('.').next().unwrap_or_default(),
                    c.build.repository
                ),
            );
        }
    }
}

fn write_outputs(
    actions: &Actions,
    plan: &Plan,
    report: &RunReport,
    registry: &str,
) -> anyhow::Result<()> {
    actions.set_output("environment", plan.environment().unwrap_or(""))?;
    actions.set_output("result", report.result.as_str())?;
    let first = report.components.first();
    let image_of = |c: &ComponentReport| {
        let plan_c = plan.components.iter().find(|p| p.name == c.name)?;
        Some(format!(
            "{registry}/{}@{}",
            plan_c.build.repository,
            c.build.digest.as_deref()?
        ))
    };
    actions.set_output("image", &first.and_then(image_of).unwrap_or_default())?;
    actions.set_output(
        "digest",
        first.and_then(|c| c.build.digest.as_deref()).unwrap_or(""),
    )?;
    let images: BTreeMap<&str, serde_json::Value> = report
        .components
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                serde_json::json!({
                    "image": image_of(c),
                    "digest": c.build.digest,
                    // Every tag pushed, the content tag included.
                    "tags": c.build.tags.iter().chain(c.build.content_tag.iter()).collect::<Vec<_>>(),
                    "context-bytes": c.build.context_bytes,
                    "image-bytes": c.build.image_bytes,
                    "build-skipped": c.build.skipped,
                    "result": c.result.as_str(),
                    "target": c.deploy.as_ref().map(|d| &d.target),
                    "revision": c.deploy.as_ref().and_then(|d| d.revision.clone()),
                    "previous-revision": c.deploy.as_ref().and_then(|d| d.previous_revision.clone()),
                    "serving-revision": c.deploy.as_ref().and_then(|d| d.serving_revision.clone()),
                    "serving": c.deploy.as_ref().and_then(|d| d.serving_text()),
                    "task-definition-arn": c.deploy.as_ref().filter(|d| matches!(d.target, TargetRef::Ecs { .. })).and_then(|d| d.revision.clone()),
                    "deployment-id": c.deploy.as_ref().and_then(|d| d.deployment_id.clone()),
                    "function-version": c.deploy.as_ref()
                        .filter(|d| matches!(d.target, TargetRef::Lambda { .. }))
                        .and_then(|d| d.revision.as_deref())
                        .and_then(|r| r.rsplit(':').next()),
                    "version-label": c.deploy.as_ref()
                        .filter(|d| matches!(d.target, TargetRef::Beanstalk { .. }))
                        .and_then(|d| d.revision.clone()),
                    "url": c.deploy.as_ref().and_then(|d| d.url.clone()),
                }),
            )
        })
        .collect();
    actions.set_output("images", &serde_json::to_string(&images)?)?;
    let deployed = report.components.iter().find_map(|c| c.deploy.as_ref());
    let ecs = report
        .components
        .iter()
        .filter_map(|c| c.deploy.as_ref())
        .find(|d| matches!(d.target, TargetRef::Ecs { .. }));
    actions.set_output(
        "revision",
        deployed.and_then(|d| d.revision.as_deref()).unwrap_or(""),
    )?;
    actions.set_output(
        "previous-revision",
        deployed
            .and_then(|d| d.previous_revision.as_deref())
            .unwrap_or(""),
    )?;
    actions.set_output(
        "serving-revision",
        deployed
            .and_then(|d| d.serving_revision.as_deref())
            .unwrap_or(""),
    )?;
    actions.set_output(
        "task-definition-arn",
        ecs.and_then(|d| d.revision.as_deref()).unwrap_or(""),
    )?;
    actions.set_output(
        "previous-task-definition-arn",
        ecs.and_then(|d| d.previous_revision.as_deref())
            .unwrap_or(""),
    )?;
    actions.set_output(
        "deployment-id",
        ecs.and_then(|d| d.deployment_id.as_deref()).unwrap_or(""),
    )?;
    let secs = |s: Option<f64>| s.map(|s| format!("{s:.1}")).unwrap_or_default();
    actions.set_output("build-seconds", &secs(report.phases.build))?;
    actions.set_output("deploy-seconds", &secs(report.phases.deploy))?;
    actions.set_output(
        "context-bytes",
        &first
            .and_then(|c| c.build.context_bytes)
            .map(|b| b.to_string())
            .unwrap_or_default(),
    )?;
    actions.set_output(
        "image-bytes",
        &first
            .and_then(|c| c.build.image_bytes)
            .map(|b| b.to_string())
            .unwrap_or_default(),
    )?;
    Ok(())
}
