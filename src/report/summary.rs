//! The Markdown job summary and PR comment body rendered from a run report,
//! and the small formatters (sizes, durations, digests, revisions) every
//! reporter shares so Slack, GitHub and the summary spell things alike.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::outcome::{ComponentReport, RunReport, RunResult, Severity, Warning};
use crate::plan::Plan;
use crate::units::duration;

/// Hidden marker that identifies fastdeploy's pull request comment, so each
/// push updates the one comment instead of adding another.
pub const PR_COMMENT_MARKER: &str = "<!-- fastdeploy:pr-comment -->";

/// The default branch's last build of a component, when the executor could
/// look it up; the PR comment shows the change against it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// Branch the numbers come from (usually the default branch).
    pub branch: String,
    pub image_bytes: Option<u64>,
    pub context_bytes: Option<u64>,
}

/// Renders the job summary: one table per run, then warnings, then links.
pub fn render(plan: &Plan, report: &RunReport) -> String {
    let mut s = String::new();
    heading(&mut s, plan, report);
    components_table(&mut s, report);
    codebuild_table(&mut s, plan, report);
    targets_tables(&mut s, report);
    pushed_list(&mut s, report);
    let phases = phases_text(report);
    if !phases.is_empty() {
        let _ = writeln!(s, "Phases: {phases}\n");
    }
    deploy_time_sections(&mut s, plan, report);
    if let Some(why) = &report.failure {
        let _ = writeln!(s, "**Why it failed:** {}\n", cell(why));
    }
    before_deploy_section(&mut s, report);
    failed_deploy_events(&mut s, report);
    findings_lists(&mut s, &report.warnings);
    links_section(&mut s, report);
    s
}

/// Writes the summary's title (result, environment, commit) and the line
/// about the commit and the workflow run under it.
fn heading(s: &mut String, plan: &Plan, report: &RunReport) {
    let ctx = &plan.context;
    let where_ = report
        .environment
        .as_deref()
        .map(|e| format!(" → `{}`", cell(e)))
        .unwrap_or_default();
    let motion = plan
        .motion
        .label()
        .map(|m| format!(" {m}"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "### {} fastdeploy{motion}: {}{where_} at `{}`",
        icon(report.result),
        report.result.as_str(),
        ctx.short_sha()
    );
    let _ = writeln!(s);
    let mut about = Vec::new();
    if let Some(subject) = &ctx.commit.subject {
        about.push(format!("“{}”", cell(subject)));
    }
    if let Some(author) = &ctx.commit.author {
        about.push(format!("by {}", cell(author)));
    }
    if let Some(url) = ctx.commit_url() {
        about.push(format!("[commit]({url})"));
    }
    if let Some(url) = ctx.run_url() {
        about.push(format!("[workflow run]({url})"));
    }
    if let Some(url) = &plan.environment_url {
        about.push(format!(
            "[{}]({url})",
            report
                .environment
                .as_deref()
                .map(cell)
                .unwrap_or("environment".into())
        ));
    }
    if !about.is_empty() {
        let _ = writeln!(s, "{}\n", about.join(" · "));
    }
}

/// Writes what the run's CodeBuild builds were billed: one row per build
/// (compute type, time, billed minutes, cost), then the total.
fn codebuild_table(s: &mut String, plan: &Plan, report: &RunReport) {
    use crate::image::billing;
    let billed: Vec<(String, &billing::Billing)> = report
        .components
        .iter()
        .flat_map(|c| {
            c.build.codebuild_billing.iter().map(|b| {
                let name = match &b.platform {
                    Some(p) => format!("{} ({p})", c.name),
                    None => c.name.clone(),
                };
                (name, b)
            })
        })
        .collect();
    if billed.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "| CodeBuild build | Compute type | Time | Billed minutes | Cost |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (name, b) in &billed {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            cell(name),
            cell(&b.compute_type),
            duration(b.seconds),
            b.billed_minutes,
            cell(&billing::cost_text(b))
        );
    }
    let minutes: u32 = billed.iter().map(|(_, b)| b.billed_minutes).sum();
    let priced: Vec<f64> = billed.iter().filter_map(|(_, b)| b.cost_usd).collect();
    let cost = match priced.len() {
        0 => "–".to_string(),
        n if n == billed.len() => format!("${:.3}", priced.iter().sum::<f64>()),
        _ => format!("${:.3} for the priced builds", priced.iter().sum::<f64>()),
    };
    let _ = writeln!(s, "| **total** | | | {minutes} | {cost} |");
    let region = plan.aws_region.as_deref().unwrap_or(billing::PRICES_REGION);
    let note = if region == billing::PRICES_REGION {
        String::new()
    } else {
        format!("; {region}'s prices differ")
    };
    let _ = writeln!(
        s,
        "\nMinutes as CodeBuild bills them (submitted to finished, rounded up); prices: {} on-demand, as of {}{note}.\n",
        billing::PRICES_REGION,
        billing::PRICES_AS_OF
    );
}

/// Writes the table with one row per component: context, build, cache,
/// image, digest, deploy and result.
fn components_table(s: &mut String, report: &RunReport) {
    let _ = writeln!(
        s,
        "| Component | Context | Build | Cached steps | Image | Digest | Deploy | Result |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &report.components {
        let _ = writeln!(s, "{}", component_row(c));
    }
    let _ = writeln!(s);
    for c in &report.components {
        if let Some(why) = &c.build.rebuilt_because {
            let _ = writeln!(s, "- `{}` rebuilt: {}", c.name, cell(why));
        }
    }
    if report
        .components
        .iter()
        .any(|c| c.build.rebuilt_because.is_some())
    {
        let _ = writeln!(s);
    }
}

/// One component's row of the components table, `–` where a value is unknown.
fn component_row(c: &ComponentReport) -> String {
    let b = &c.build;
    let context = match (b.context_bytes, b.context_files) {
        (Some(bytes), Some(files)) => format!("{} ({files} files)", crate::units::bytes(bytes)),
        (Some(bytes), None) => crate::units::bytes(bytes),
        _ => "–".into(),
    };
    let build = if b.skipped {
        "unchanged, not rebuilt".to_string()
    } else {
        b.seconds.map(duration).unwrap_or_else(|| "–".into())
    };
    let cached = match (b.cached_steps, b.total_steps) {
        (Some(c), Some(t)) => format!("{c}/{t}"),
        (Some(c), None) => c.to_string(),
        _ => "–".into(),
    };
    let image = b
        .image_bytes
        .map(crate::units::bytes)
        .unwrap_or_else(|| "–".into());
    let digest = b
        .digest
        .as_deref()
        .map(|d| format!("`{}`", short_digest(d)))
        .unwrap_or_else(|| "–".into());
    let deploy = match &c.deploy {
        Some(d) if d.unchanged => "unchanged".to_string(),
        Some(d) => d.seconds.map(duration).unwrap_or_else(|| "–".into()),
        None => "–".into(),
    };
    format!(
        "| {} | {context} | {build} | {cached} | {image} | {digest} | {deploy} | {} |",
        cell(&c.name),
        cell(&component_result(c))
    )
}

/// Writes, per component with several targets (`targets:`), one row per
/// target: what ran before, what runs now, the deploy's time and result.
fn targets_tables(s: &mut String, report: &RunReport) {
    for c in report.components.iter().filter(|c| !c.also.is_empty()) {
        let _ = writeln!(
            s,
            "#### Targets of {}
",
            cell(&c.name)
        );
        let _ = writeln!(s, "| Target | Before | Now | Deploy | Result |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for d in c.targets() {
            let label = |r: &Option<String>| {
                r.as_deref()
                    .map_or_else(|| "–".into(), |r| format!("`{}`", cell(&revision(r))))
            };
            let deploy = match d.unchanged {
                true => "unchanged".to_string(),
                false => d.seconds.map(duration).unwrap_or_else(|| "–".into()),
            };
            let result = d
                .result
                .map_or_else(|| "–".into(), |r| format!("{} {}", icon(r), r.as_str()));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {deploy} | {result} |",
                cell(&d.target.describe()),
                label(&d.previous_revision),
                label(&d.serving_revision)
            );
        }
        let _ = writeln!(s);
    }
}

/// Writes what was pushed and deployed, by name, one line per component
/// that pushed an image: a reader copies these.
fn pushed_list(s: &mut String, report: &RunReport) {
    let pushed: Vec<String> = report.components.iter().filter_map(pushed_line).collect();
    if !pushed.is_empty() {
        let _ = writeln!(s, "{}\n", pushed.join("\n"));
    }
}

/// The image, digest and tags a component pushed, and the revision it
/// deployed; `None` when it pushed nothing.
fn pushed_line(c: &ComponentReport) -> Option<String> {
    let b = &c.build;
    let image = b.image.as_deref()?;
    let at = b
        .digest
        .as_deref()
        .map(|d| format!("@{}", short_digest(d)))
        .unwrap_or_default();
    let tags: Vec<String> = b
        .tags
        .iter()
        .chain(b.content_tag.iter())
        .map(|t| format!("`{}`", cell(t)))
        .collect();
    let deployed: String = c
        .targets()
        .filter_map(|d| {
            Some(format!(
                "; {}: `{}`",
                d.target.describe(),
                cell(&revision(d.revision.as_deref()?))
            ))
        })
        .collect();
    Some(format!(
        "- **{}**: `{}{at}` tagged {}{deployed}",
        cell(&c.name),
        cell(image),
        tags.join(", ")
    ))
}

/// Writes, per component whose deploy has a timeline or a doctor's
/// reading, where the deploy time went.
fn deploy_time_sections(s: &mut String, plan: &Plan, report: &RunReport) {
    for c in &report.components {
        if let Some(d) = c
            .deploy
            .as_ref()
            .filter(|d| d.timeline.is_some() || d.doctor.is_some())
        {
            let _ = writeln!(
                s,
                "#### Where the deploy time of {} went ({})\n",
                cell(&c.name),
                cell(&d.target.describe())
            );
            if let Some(t) = &d.timeline {
                timeline_table(s, &c.build, t);
            }
            if let Some(doctor) = &d.doctor {
                doctor_section(s, doctor, &plan.limits.ignore_checks);
            }
        }
    }
}

/// Writes how each before-deploy task ended, then the last lines of those
/// that failed; nothing when no component ran one.
fn before_deploy_section(s: &mut String, report: &RunReport) {
    let tasks: Vec<(&str, &crate::outcome::TaskReport)> = report
        .components
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.deploy.as_ref()?.before_deploy.as_ref()?)))
        .collect();
    if tasks.is_empty() {
        return;
    }
    let _ = writeln!(s, "Before the update:\n");
    for (name, t) in &tasks {
        let _ = writeln!(
            s,
            "- `{}` `{}` (container `{}`): {}",
            cell(name),
            cell(&t.command),
            cell(&t.container),
            task_text(t)
        );
    }
    let _ = writeln!(s);
    for (name, t) in tasks
        .iter()
        .filter(|(_, t)| t.failure.is_some() && !t.last_lines.is_empty())
    {
        let title = format!("Last lines of before-deploy of {}", cell(name));
        details_block(s, &title, last(&t.last_lines, 20).iter());
    }
}

/// Writes, per failed component, the target's last events and the evidence
/// the deploy gathered.
fn failed_deploy_events(s: &mut String, report: &RunReport) {
    for c in report.components.iter().filter(|c| c.result.is_failure()) {
        for d in c.targets() {
            let events = last(&d.events, 5);
            if !events.is_empty() || !d.evidence.is_empty() {
                let of = match c.also.is_empty() {
                    true => c.name.clone(),
                    false => format!("{} ({})", c.name, d.target.short()),
                };
                let title = format!("{} of {}", events_title(&d.target), cell(&of));
                details_block(s, &title, events.iter().chain(d.evidence.iter()));
            }
        }
    }
}

/// Writes `lines` as a code block folded under `title`; a ``` inside a line
/// becomes ''' so it cannot end the block early.
fn details_block<'a>(s: &mut String, title: &str, lines: impl Iterator<Item = &'a String>) {
    let _ = writeln!(s, "<details><summary>{title}</summary>\n\n```");
    for l in lines {
        let _ = writeln!(s, "{}", l.replace("```", "'''"));
    }
    let _ = writeln!(s, "```\n</details>\n");
}

/// Writes the run's links under their heading; nothing when there are none.
fn links_section(s: &mut String, report: &RunReport) {
    if report.links.is_empty() {
        return;
    }
    let _ = writeln!(s, "#### Links\n");
    for (label, url) in &report.links {
        let _ = writeln!(s, "- [{}]({url})", cell(label));
    }
    let _ = writeln!(s);
}

/// Renders the pull request comment: sizes per component with the change
/// against the default branch's last build, then the Dockerfile warnings.
/// A pull request's `plan --diff` against the environment its base branch
/// deploys to.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvDiff {
    pub environment: String,
    pub text: String,
    /// Anything would change, or drifted.
    pub any: bool,
}

pub fn pr_comment(
    plan: &Plan,
    report: &RunReport,
    baselines: &BTreeMap<String, Baseline>,
    diff: Option<&EnvDiff>,
) -> String {
    let ctx = &plan.context;
    let mut s = String::new();
    let _ = writeln!(s, "{PR_COMMENT_MARKER}");
    let _ = writeln!(
        s,
        "### {} fastdeploy build of `{}`: {}\n",
        icon(report.result),
        ctx.short_sha(),
        report.result.as_str()
    );
    let base_branch = baselines
        .values()
        .map(|b| b.branch.as_str())
        .next()
        .or(ctx.default_branch.as_deref())
        .unwrap_or("main");
    let _ = writeln!(
        s,
        "| Component | Image size | vs `{base_branch}` | Context size | vs `{base_branch}` | Result |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in &report.components {
        let base = baselines.get(&c.name);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&c.name),
            c.build
                .image_bytes
                .map(crate::units::bytes)
                .unwrap_or_else(|| "–".into()),
            change_text(c.build.image_bytes, base.and_then(|b| b.image_bytes)),
            c.build
                .context_bytes
                .map(crate::units::bytes)
                .unwrap_or_else(|| "–".into()),
            change_text(c.build.context_bytes, base.and_then(|b| b.context_bytes)),
            cell(&component_result(c)),
        );
    }
    let _ = writeln!(s);
    if let Some(why) = &report.failure {
        let _ = writeln!(s, "**Why it failed:** {}\n", cell(why));
    }
    if report
        .warnings
        .iter()
        .all(|w| w.severity == Severity::Notice)
    {
        let _ = writeln!(s, "No Dockerfile or context warnings.\n");
    }
    findings_lists(&mut s, &report.warnings);
    if let Some(d) = diff {
        let open = if d.any { " open" } else { "" };
        let nothing = if d.any { "" } else { ": nothing" };
        let _ = writeln!(
            s,
            "<details{open}><summary>What a deploy of this commit to <code>{}</code> would change{nothing}</summary>\n\n```text\n{}```\n</details>\n",
            d.environment,
            d.text.replace("```", "'''")
        );
    }
    let run = match ctx.run_url() {
        Some(url) => format!(
            "[run {}]({url}), attempt {}",
            ctx.run_id.as_deref().unwrap_or_default(),
            ctx.run_attempt
        ),
        None => "a local run".to_string(),
    };
    let _ = writeln!(
        s,
        "<sub>Updated on each push by fastdeploy from {run}.</sub>"
    );
    s
}

/// A bar of `seconds` against `longest`, 20 cells wide at most, in eighths.
pub fn bar(seconds: f64, longest: f64) -> String {
    if !(seconds > 0.0 && longest > 0.0) {
        return String::new();
    }
    let eighths = ((seconds / longest) * 160.0).round().max(1.0) as usize;
    let mut out = "█".repeat(eighths / 8);
    out.push_str(["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8]);
    out
}

/// The timeline as a table with bars: the build first (it is not the
/// deploy's), then the deploy's phases, which add up to its time.
fn timeline_table(
    s: &mut String,
    build: &crate::outcome::BuildReport,
    t: &crate::outcome::Timeline,
) {
    let build_seconds = build.seconds.filter(|_| !build.skipped);
    let longest = t
        .phases
        .iter()
        .map(|p| p.seconds)
        .chain(build_seconds)
        .fold(0.0, f64::max);
    let _ = writeln!(s, "| Phase | Time | Estimated | |");
    let _ = writeln!(s, "|---|---|---|---|");
    if build.skipped {
        let _ = writeln!(s, "| build and push | unchanged, not rebuilt | | |");
    } else if let Some(b) = build_seconds {
        let _ = writeln!(
            s,
            "| build and push | {} | | {} |",
            duration(b),
            bar(b, longest)
        );
    }
    for p in &t.phases {
        let estimate = p.estimate.map(duration).unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {estimate} | {} |",
            p.phase.as_str(),
            duration(p.seconds),
            bar(p.seconds, longest)
        );
    }
    let rollout: f64 = t
        .phases
        .iter()
        .filter(|p| p.estimate.is_some())
        .map(|p| p.seconds)
        .sum();
    let estimated = t
        .estimated_rollout
        .map(|e| format!("rollout {} (measured {})", duration(e), duration(rollout)))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "| **deploy** | **{}** | {estimated} | |\n",
        duration(t.deploy_seconds)
    );
}

/// What the deploy-time doctor read before the rollout: its estimate, then
/// every setting that paces the rollout with its cost.
fn doctor_section(s: &mut String, d: &crate::outcome::DoctorReport, ignored: &[String]) {
    match &d.estimate {
        Some(e) => {
            let _ = writeln!(
                s,
                "Before the rollout, the deploy-time doctor estimated it at **{}** in {} batch{}: pull {}, start to healthy {}, draining the old tasks {}.\n",
                duration(e.seconds),
                e.batches,
                if e.batches == 1 { "" } else { "es" },
                duration(e.pull),
                duration(e.start_to_healthy),
                duration(e.draining)
            );
        }
        None => {
            let _ = writeln!(s, "The deploy-time doctor made no estimate.\n");
        }
    }
    if !d.settings.is_empty() {
        let _ = writeln!(
            s,
            "| | Check | Setting | Value | Costs this deploy | Recommended | Where to change it |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for x in &d.settings {
            let check = x.check.as_deref().unwrap_or("");
            let mark = if x.flagged {
                "⚠️"
            } else if ignored.iter().any(|i| i == check) {
                "🔇"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "| {mark} | {} | {} | {} | {} | {} | {} |",
                cell(check),
                cell(&x.setting),
                cell(&x.value),
                if x.cost_seconds < 0.5 {
                    "none".to_string()
                } else {
                    duration(x.cost_seconds)
                },
                if x.as_recommended {
                    "as recommended".to_string()
                } else {
                    cell(&x.recommended)
                },
                if x.as_recommended {
                    "–".to_string()
                } else {
                    cell(&x.change)
                }
            );
        }
        let _ = writeln!(s);
    }
    for n in &d.notes {
        let _ = writeln!(s, "- {}", cell(n));
    }
    if !d.notes.is_empty() {
        let _ = writeln!(s);
    }
}

/// A before-deploy task's ending in words.
pub fn task_text(t: &crate::outcome::TaskReport) -> String {
    let task = t
        .task
        .as_deref()
        .map(|id| format!(" (task {id})"))
        .unwrap_or_default();
    let took = t
        .seconds
        .map(|s| format!(" in {}", duration(s)))
        .unwrap_or_default();
    match t.outcome.as_str() {
        "succeeded" => format!("✅ exited 0{took}{task}"),
        "already-done" => format!("⏭️ already ran on this revision{task}; not run again"),
        _ => format!(
            "❌ {}{task}; the service was not updated",
            t.failure.as_deref().unwrap_or("failed")
        ),
    }
}

/// What a target's events are called: ECS service events, Lambda's update states.
pub fn events_title(target: &crate::outcome::TargetRef) -> &'static str {
    match target {
        crate::outcome::TargetRef::Ecs { .. } => "Last service events",
        crate::outcome::TargetRef::Lambda { .. } => "Last Lambda update states",
        crate::outcome::TargetRef::Beanstalk { .. } => "Last Elastic Beanstalk events",
        crate::outcome::TargetRef::Rule { .. } | crate::outcome::TargetRef::Schedule { .. } => {
            "Last events"
        }
    }
}

/// The result of one component in words, with what serves now after a
/// deploy that did not succeed (the revisions with running tasks).
pub fn component_result(c: &ComponentReport) -> String {
    let base = format!("{} {}", icon(c.result), c.result.as_str());
    match c
        .deploy
        .as_ref()
        .and_then(|d| d.serving_text())
        .filter(|_| c.result.is_failure())
    {
        Some(serving) => format!("{base} (serving {serving})"),
        None => base,
    }
}

pub fn icon(result: RunResult) -> &'static str {
    match result {
        RunResult::Success => "✅",
        RunResult::Built => "📦",
        RunResult::Skipped => "⏭️",
        RunResult::RolledBack => "↩️",
        RunResult::Failure => "❌",
    }
}

/// `check 1.2s · build 1m 02s · deploy 2m 10s · total 3m 14s`
pub fn phases_text(report: &RunReport) -> String {
    let p = &report.phases;
    [
        ("check", p.check),
        ("build", p.build),
        ("deploy", p.deploy),
        ("total", p.total),
    ]
    .into_iter()
    .filter_map(|(name, secs)| secs.map(|s| format!("{name} {}", duration(s))))
    .collect::<Vec<_>>()
    .join(" · ")
}

/// The warnings, then the notices (findings whose fix is a policy choice)
/// under their own heading, so the ones to act on are not lost among them.
fn findings_lists(s: &mut String, findings: &[Warning]) {
    for (severity, heading) in [
        (Severity::Warning, "Warnings"),
        (Severity::Notice, "Notices"),
    ] {
        let mut listed = findings
            .iter()
            .filter(|w| w.severity == severity)
            .peekable();
        if listed.peek().is_none() {
            continue;
        }
        let _ = writeln!(s, "#### {heading}\n");
        for w in listed {
            let _ = writeln!(s, "- {}", warning_text(w));
        }
        let _ = writeln!(s);
    }
}

/// A warning as one Markdown line: rule, component, place, message.
pub fn warning_text(w: &Warning) -> String {
    let mut s = String::new();
    if let Some(rule) = &w.rule {
        let _ = write!(s, "**{}** ", cell(rule));
    }
    if let Some(c) = &w.component {
        let _ = write!(s, "`{}` ", cell(c));
    }
    match (&w.file, w.line) {
        (Some(f), Some(l)) => {
            let _ = write!(s, "{}:{l}: ", cell(f));
        }
        (Some(f), None) => {
            let _ = write!(s, "{}: ", cell(f));
        }
        _ => {}
    }
    s.push_str(&cell(&w.message));
    s
}

/// `sha256:0123456789abcdef...` → `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", &hex[..hex.len().min(12)]),
        None => digest[..digest.len().min(19)].to_string(),
    }
}

/// `arn:aws:ecs:eu-west-1:1234:task-definition/backend:42` → `backend:42`.
pub fn revision(revision: &str) -> String {
    crate::outcome::revision_label(revision)
}

/// `+1.2 MB (+1.5%)` against a baseline; `–` when either side is unknown.
pub fn change_text(now: Option<u64>, before: Option<u64>) -> String {
    let (Some(now), Some(before)) = (now, before) else {
        return "–".into();
    };
    if now == before {
        return "no change".into();
    }
    let sign = if now > before { "+" } else { "−" };
    let diff = now.abs_diff(before);
    let pct = if before == 0 {
        String::new()
    } else {
        format!(" ({sign}{:.1}%)", diff as f64 * 100.0 / before as f64)
    };
    format!("{sign}{}{pct}", crate::units::bytes(diff))
}

fn last(items: &[String], n: usize) -> &[String] {
    &items[items.len().saturating_sub(n)..]
}

/// Makes text safe inside a Markdown table cell (and from being read as
/// HTML, which GitHub's Markdown would otherwise swallow).
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(125.0), "2m 05s");
        assert_eq!(duration(3720.0), "1h 02m");
    }

    #[test]
    fn digests_revisions_and_changes_are_short() {
        assert_eq!(
            short_digest("sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
        assert_eq!(
            revision("arn:aws:ecs:eu-west-1:123456789012:task-definition/backend:42"),
            "backend:42"
        );
        assert_eq!(change_text(Some(2000), Some(1000)), "+1.0 kB (+100.0%)");
        assert_eq!(change_text(Some(1000), Some(2000)), "−1.0 kB (−50.0%)");
        assert_eq!(change_text(Some(1), None), "–");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc <b>"), "a\\|b c &lt;b&gt;");
    }

    /// DF004 is a notice: listed after the warnings, under its own heading,
    /// so a reader sees first what to act on.
    #[test]
    fn notices_are_listed_apart_after_the_warnings() {
        let w = |rule: &str, severity| Warning {
            rule: Some(rule.into()),
            severity,
            component: None,
            file: None,
            line: None,
            message: "m".into(),
        };
        let mut s = String::new();
        findings_lists(
            &mut s,
            &[w("DF004", Severity::Notice), w("DF003", Severity::Warning)],
        );
        assert_eq!(
            s,
            "#### Warnings\n\n- **DF003** m\n\n#### Notices\n\n- **DF004** m\n\n"
        );
        let mut only_notices = String::new();
        findings_lists(&mut only_notices, &[w("DF004", Severity::Notice)]);
        assert!(!only_notices.contains("Warnings"), "{only_notices}");
    }
}
