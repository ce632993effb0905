//! The check phase: each component's Dockerfile and build context, local and
//! free, before anything is spent. Anything wrong here is the user's to fix.

use crate::gha::{Actions, Location};
use crate::outcome::{RunReport, Severity, Warning};
use crate::plan::{ComponentPlan, Plan};
use crate::report::notify::{PhaseEnd, PhaseLog};

use super::Pipeline;

/// What the check phase learnt about one component, used by the build.
pub struct BuildInputs {
    pub context_hash: String,
    pub dockerfile_bytes: Vec<u8>,
    /// The base images of the stages built, resolved at build time.
    pub bases: Vec<crate::image::bases::BaseUse>,
}

impl Pipeline<'_> {
    /// Checks every component; the first that fails stops the run (exit 2).
    pub(super) fn check(
        &self,
        plan: &Plan,
        report: &mut RunReport,
    ) -> anyhow::Result<Vec<BuildInputs>> {
        let phase = PhaseLog::open(self.actions, self.style, "check", None);
        let mut checked = Vec::new();
        for (c, rep) in plan.components.iter().zip(report.components.iter_mut()) {
            match check_component(c, plan, self.actions, &mut report.warnings) {
                Ok((ch, bytes, files)) => {
                    rep.build.context_bytes = Some(bytes);
                    rep.build.context_files = Some(files);
                    checked.push(ch);
                }
                Err(e) => {
                    phase.close(PhaseEnd::Failed(format!("component `{}`", c.name)));
                    return Err(e.context(format!("checking component `{}`", c.name)));
                }
            }
        }
        report.phases.check = Some(phase.close(PhaseEnd::Done).as_secs_f64());
        Ok(checked)
    }
}

/// One component: its Dockerfile's findings, its context's size and
/// offenders, each an annotation; the context's content hash, bytes and files.
fn check_component(
    c: &ComponentPlan,
    plan: &Plan,
    actions: &Actions,
    warnings: &mut Vec<Warning>,
) -> anyhow::Result<(BuildInputs, u64, u64)> {
    let b = &c.build;
    let df = crate::checks::dockerfile::load_with_args(&b.dockerfile, &b.build_args)?;
    df.final_stage(b.target.as_deref())?;
    let runs = match c.deploys_to_lambda() {
        _ if !b.push => crate::checks::dockerfile::Runs::Nowhere,
        true => crate::checks::dockerfile::Runs::AsNonRoot,
        false => crate::checks::dockerfile::Runs::AsImageSays,
    };
    let ignore = &plan.limits.ignore_checks;
    let findings = crate::checks::dockerfile::check_image(&df, b.target.as_deref(), runs, ignore);
    let workspace = &plan.context.workspace;
    let mut found =
        crate::checks::dockerfile::to_warnings(&findings, &b.dockerfile, workspace, Some(&c.name));
    // The file set is the one the chosen builder sends (BuildKit and buildah
    // read exception patterns differently in corners).
    let matching = crate::checks::context::Matching::from(plan.builder.kind);
    let scan = crate::checks::context::scan_for(&b.context, &b.dockerfile, matching)?;
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
            .strip_prefix(workspace)
            .unwrap_or(&ignore_path)
            .display()
            .to_string(),
    );
    let limits = &plan.limits;
    let context_warnings = crate::checks::context::check_limits(
        &scan,
        limits.warn_context_bytes,
        limits.max_context_bytes,
    )?;
    // Context findings can be silenced by id too (a team that ships `dist/` on purpose).
    found.extend(
        context_warnings
            .into_iter()
            .filter(|w| w.rule.as_ref().is_none_or(|r| !ignore.contains(r)))
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
    let checked = BuildInputs {
        context_hash: crate::checks::context::content_hash(&scan)?,
        dockerfile_bytes: df.source().as_bytes().to_vec(),
        bases: crate::image::bases::uses(&df, b.target.as_deref()),
    };
    Ok((checked, scan.total_bytes, scan.file_count))
}
