//! Command line: `fastdeploy run` and `fastdeploy plan`, with one flag per
//! action input (`--aws-region` is `with: aws-region`), generated from the
//! same table as `action.yml`. Inside a container action there is no
//! argument: the command defaults to `run` and inputs come from `INPUT_*`.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::BadInput;
use crate::settings::inputs::{INPUTS, RawInputs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    /// Build, push, deploy and report.
    Run,
    /// Print the plan and do nothing else.
    Plan,
    /// Write a starting fastdeploy.yml and workflow for this repository.
    Init,
    /// `cache prune`: delete the components' registry cache tags.
    CachePrune,
}

#[derive(Debug, Clone)]
pub struct Cli {
    pub command: Subcommand,
    /// Print the plan as JSON (plan / dry-run).
    pub json: bool,
    /// Values given as flags, by input name.
    pub flags: Vec<(&'static str, String)>,
    /// `init --force`: overwrite existing files.
    pub force: bool,
    /// `plan --diff`: what the deploy would change on each target, read
    /// from AWS, and what drifted there since fastdeploy's last deploy.
    pub diff: bool,
    /// `plan --diff --exit-code`: exit 3 when anything would change or drifted.
    pub exit_code: bool,
}

fn input_args() -> Vec<Arg> {
    INPUTS
        .iter()
        .map(|spec| {
            let mut arg = Arg::new(spec.name)
                .long(spec.name)
                .value_name("VALUE")
                .help(spec.description)
                .action(ArgAction::Set);
            if spec.name == "components" {
                arg = arg.alias("component").short('c');
            }
            if spec.name == "promote-from" {
                arg = arg.alias("from");
            }
            if let Some(d) = spec.default {
                arg = arg.help(format!("{} [default: {d}]", spec.description));
            }
            if spec.secret {
                arg = arg.hide_env_values(true);
            }
            // Booleans work bare (`--dry-run`) as well as `--rollback=false`.
            if matches!(spec.default, Some("true" | "false")) {
                arg = arg
                    .num_args(0..=1)
                    .default_missing_value("true")
                    .value_name("BOOL");
            }
            arg
        })
        .collect()
}

/// Examples and exit codes, after the flags.
const HELP_AFTER: &str = "\
Examples:
  fastdeploy init                                    write fastdeploy.yml and a workflow for this repository
  fastdeploy plan                                    what a run would do here, and nothing else
  fastdeploy plan --diff --environment production    what a deploy would change on each target, and what drifted
  fastdeploy run --component web                     build and push `web` (outside Actions a run deploys only where asked)
  fastdeploy run --environment staging               build, push and deploy every component to staging
  ENVIRONMENT=production fastdeploy run              the same, as fast-build.sh scripts write it
  fastdeploy rollback --environment production       put back what served before the last deploy (no build)
  fastdeploy promote --from staging --environment production   deploy what staging serves, by digest (no build)
  fastdeploy cache prune --component backend         delete backend's registry cache tags (the next build starts cold)

Exit codes: 0 success, 1 the build or deploy failed (or was rolled back), 2 bad input or configuration,
3 `plan --diff --exit-code` found changes or drift.
Every flag can also be given as an INPUT_<NAME> variable, as the GitHub Actions runner does.
AWS credentials: role-to-assume in Actions, else the standard chain (AWS_PROFILE, `aws sso login`, keys).";

pub fn command() -> Command {
    let json = Arg::new("json")
        .long("json")
        .action(ArgAction::SetTrue)
        .help("Print the plan as JSON");
    Command::new("fastdeploy")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Build, push to Amazon ECR and deploy to an ECS service, a Lambda function or an Elastic Beanstalk environment, with a verdict you can trust")
        .after_help(HELP_AFTER)
        .subcommand(Command::new("run").about("Build, push, deploy and report (the default)").args(input_args()))
        .subcommand(
            Command::new("plan")
                .about("Print what a run would do, and nothing else")
                .args(input_args())
                .arg(json.clone())
                .arg(Arg::new("diff").long("diff").action(ArgAction::SetTrue).help("Read each target and say what a deploy would change there (environment, secrets, CPU/memory) and what drifted since fastdeploy's last deploy (needs AWS credentials; changes nothing)"))
                .arg(Arg::new("exit-code").long("exit-code").action(ArgAction::SetTrue).requires("diff").help("With --diff: exit 3 when a deploy would change something or a target drifted, 0 when not")),
        )
        .subcommand(
            Command::new("rollback")
                .about("Put back, per component, what served before the most recent deploy (or --to); builds nothing")
                .args(input_args()),
        )
        .subcommand(
            Command::new("promote")
                .about("Deploy what another environment (--from) serves now, by digest; builds nothing")
                .args(input_args()),
        )
        .subcommand(
            Command::new("cache")
                .about("Registry cache of the components' builds")
                .subcommand_required(true)
                .subcommand(
                    Command::new("prune")
                        .about("Delete the components' registry cache tags (cache-<branch>) and say what was removed")
                        .args(input_args()),
                ),
        )
        .subcommand(
            Command::new("init")
                .about("Write a starting fastdeploy.yml and .github/workflows/deploy.yml for this repository")
                .arg(Arg::new("cluster").long("cluster").value_name("CLUSTER").help("ECS cluster whose services are matched to the components (needs AWS credentials)"))
                .arg(Arg::new("aws-region").long("aws-region").value_name("REGION").help("AWS region of the cluster"))
                .arg(Arg::new("force").long("force").action(ArgAction::SetTrue).help("Overwrite files that exist")),
        )
        .args(input_args())
        .arg(json)
}

/// Parses arguments. No subcommand means `run` (how the action invokes us).
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let m = command().try_get_matches_from(args)?;
    let (command, sub) = match m.subcommand() {
        Some(("plan", s)) => (Subcommand::Plan, s),
        Some(("run", s)) => (Subcommand::Run, s),
        Some(("cache", c)) => match c.subcommand() {
            Some(("prune", s)) => (Subcommand::CachePrune, s),
            _ => unreachable!("clap requires a `cache` subcommand"),
        },
        Some((motion @ ("rollback" | "promote"), s)) => {
            let mut flags = flags(s);
            match flags.iter().find(|(k, _)| *k == "command") {
                Some((_, given)) if given != motion => {
                    return Err(clap::Error::raw(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!(
                            "`fastdeploy {motion}` with `--command {given}`: drop `--command`\n"
                        ),
                    ));
                }
                Some(_) => {}
                None => flags.push(("command", motion.to_string())),
            }
            return Ok(Cli {
                command: Subcommand::Run,
                json: false,
                flags,
                force: false,
                diff: false,
                exit_code: false,
            });
        }
        Some(("init", s)) => {
            let flags = ["cluster", "aws-region"]
                .into_iter()
                .filter_map(|n| {
                    s.get_one::<String>(n).map(|v| {
                        (
                            if n == "cluster" {
                                "cluster"
                            } else {
                                "aws-region"
                            },
                            v.clone(),
                        )
                    })
                })
                .collect();
            return Ok(Cli {
                command: Subcommand::Init,
                json: false,
                flags,
                force: s.get_flag("force"),
                diff: false,
                exit_code: false,
            });
        }
        _ => (Subcommand::Run, &m),
    };
    let json = sub
        .try_get_one::<bool>("json")
        .ok()
        .flatten()
        .copied()
        .unwrap_or(false);
    let flag = |name: &str| {
        sub.try_get_one::<bool>(name)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    };
    Ok(Cli {
        command,
        json,
        flags: flags(sub),
        force: false,
        diff: flag("diff"),
        exit_code: flag("exit-code"),
    })
}

fn flags(m: &ArgMatches) -> Vec<(&'static str, String)> {
    INPUTS
        .iter()
        .filter_map(|s| m.get_one::<String>(s.name).map(|v| (s.name, v.clone())))
        .collect()
}

impl Cli {
    /// Overlays the flags on inputs read from the environment.
    pub fn apply(&self, raw: &mut RawInputs) -> Result<(), BadInput> {
        raw.overlay(self.flags.iter().map(|(k, v)| (*k, v.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_target_and_how_a_laptop_run_deploys() {
        let help = command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "an ECS service, a Lambda function or an Elastic Beanstalk environment",
            "fastdeploy init",
            "fastdeploy run --environment staging build, push and deploy",
            "ENVIRONMENT=production fastdeploy run",
            "Exit codes: 0 success",
        ] {
            assert!(help.contains(needle), "`{needle}` in:\n{help}");
        }
    }

    #[test]
    fn no_subcommand_means_run_and_flags_mirror_inputs() {
        let cli = parse_from([
            "fastdeploy",
            "--component",
            "backend",
            "--builder",
            "codebuild",
        ])
        .unwrap();
        assert_eq!(cli.command, Subcommand::Run);
        assert_eq!(
            cli.flags,
            vec![
                ("components", "backend".to_string()),
                ("builder", "codebuild".to_string())
            ]
        );
        let cli =
            parse_from(["fastdeploy", "plan", "--json", "--aws-region", "eu-west-1"]).unwrap();
        assert_eq!(cli.command, Subcommand::Plan);
        assert!(cli.json);
    }

    /// Regression: `fastdeploy plan --dry-run` failed with "a value is
    /// required for '--dry-run'".
    #[test]
    fn boolean_flags_work_bare_and_with_a_value() {
        let cli = parse_from([
            "fastdeploy",
            "plan",
            "--dry-run",
            "--rollback=false",
            "--provenance",
            "false",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            cli.flags,
            vec![
                ("provenance", "false".to_string()),
                ("rollback", "false".to_string()),
                ("dry-run", "true".to_string())
            ]
        );
        assert!(cli.json);
        let cli = parse_from(["fastdeploy", "run", "--rollback"]).unwrap();
        assert_eq!(cli.flags, vec![("rollback", "true".to_string())]);
    }

    #[test]
    fn every_input_is_a_flag() {
        let cmd = command();
        let run = cmd.find_subcommand("run").unwrap();
        for spec in INPUTS {
            assert!(
                run.get_arguments().any(|a| a.get_long() == Some(spec.name)),
                "--{} missing",
                spec.name
            );
        }
    }
}
